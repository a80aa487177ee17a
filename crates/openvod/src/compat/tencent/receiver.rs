//! `openvod tencent-receiver`: Tencent VOD's "event notification receipt service", in Rust.
//! Reads the demo's `config.json` (`secret_id`, `secret_key`, `region`, `subappid`, `definitions`, and
//! optionally `endpoint`), answers v3 notifications: `NewFileUpload` → `ProcessMedia` with the
//! configured definitions; `ProcedureStateChanged` → one log line per transcode output.
//! 200 for events handled or ignored, 400 for malformed ones; repeats (same FileId / TaskId) are
//! acknowledged without acting twice.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::sign;

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("invalid config.json: {0}")]
    Config(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReceiverConfig {
    pub secret_id: String,
    pub secret_key: String,
    #[serde(default)]
    pub region: String,
    /// Copied into ProcessMedia as it is (the installer writes the string "0").
    #[serde(default)]
    pub subappid: Option<Value>,
    pub definitions: Vec<u32>,
    /// openvod extension: where the API is (default Tencent's).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

fn default_endpoint() -> String {
    "https://vod.tencentcloudapi.com".to_owned()
}

impl ReceiverConfig {
    pub fn load(path: &Path) -> Result<ReceiverConfig, ReceiverError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReceiverError::Read(path.display().to_string(), e))?;
        let config: ReceiverConfig =
            serde_json::from_str(&text).map_err(|e| ReceiverError::Config(e.to_string()))?;
        if config.secret_id.trim().is_empty() || config.secret_key.trim().is_empty() {
            return Err(ReceiverError::Config(
                "secret_id and secret_key must be set".to_owned(),
            ));
        }
        url::Url::parse(&config.endpoint)
            .map_err(|e| ReceiverError::Config(format!("endpoint: {e}")))?;
        Ok(config)
    }
}

struct Receiver {
    config: ReceiverConfig,
    client: reqwest::Client,
    seen_uploads: Mutex<HashSet<String>>,
    seen_tasks: Mutex<HashSet<String>>,
}

fn bad_request() -> Response {
    (StatusCode::BAD_REQUEST, "Bad Request").into_response()
}

/// Serves until `shutdown` fires.
pub async fn run(
    config: ReceiverConfig,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), ReceiverError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ReceiverError::Bind(listen, e))?;
    let local = listener
        .local_addr()
        .map_err(|e| ReceiverError::Bind(listen, e))?;
    println!("tencent-receiver listening on http://{local}/");
    let receiver = Arc::new(Receiver {
        config,
        client: reqwest::Client::new(),
        seen_uploads: Mutex::default(),
        seen_tasks: Mutex::default(),
    });
    let app = Router::new().fallback(handle).with_state(receiver);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(ReceiverError::Serve)
}

async fn handle(State(receiver): State<Arc<Receiver>>, body: Bytes) -> Response {
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request();
    };
    match event.get("EventType").and_then(Value::as_str) {
        Some("NewFileUpload") => new_file_upload(&receiver, &event).await,
        Some("ProcedureStateChanged") => procedure_state_changed(&receiver, &event),
        _ => StatusCode::OK.into_response(),
    }
}

async fn new_file_upload(receiver: &Receiver, event: &serde_json::Map<String, Value>) -> Response {
    let Some(file_id) = event
        .get("FileUploadEvent")
        .and_then(|e| e.get("FileId"))
        .and_then(Value::as_str)
    else {
        return bad_request();
    };
    if receiver
        .seen_uploads
        .lock()
        .expect("not poisoned")
        .contains(file_id)
    {
        println!("upload_repeated file_id={file_id}");
        return StatusCode::OK.into_response();
    }
    let mut params = json!({
        "FileId": file_id,
        "MediaProcessTask": {"TranscodeTaskSet": receiver.config.definitions.iter().map(|d| json!({"Definition": d})).collect::<Vec<_>>()},
    });
    if let Some(sub) = &receiver.config.subappid {
        params["SubAppId"] = sub.clone();
    }
    match process_media(receiver, &params).await {
        Ok(task_id) => {
            receiver
                .seen_uploads
                .lock()
                .expect("not poisoned")
                .insert(file_id.to_owned());
            println!("process_media file_id={file_id} task_id={task_id}");
            StatusCode::OK.into_response()
        }
        Err(e) => {
            println!("process_media_failed file_id={file_id} error={e:?}");
            bad_request()
        }
    }
}

/// Calls ProcessMedia, TC3-signed; the TaskId, or the error.
async fn process_media(receiver: &Receiver, params: &Value) -> Result<String, String> {
    let config = &receiver.config;
    let url = url::Url::parse(&config.endpoint).map_err(|e| e.to_string())?;
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let body = serde_json::to_vec(params).expect("JSON");
    let timestamp = crate::id::now_unix();
    let mut request = receiver
        .client
        .post(url.as_str())
        .header("content-type", "application/json")
        .header("host", &host)
        .header("x-tc-action", "ProcessMedia")
        .header("x-tc-version", "2018-07-17")
        .header("x-tc-timestamp", timestamp.to_string())
        .header(
            "authorization",
            sign::authorization(
                &config.secret_id,
                &config.secret_key,
                &host,
                timestamp,
                &body,
            ),
        );
    if !config.region.is_empty() {
        request = request.header("x-tc-region", &config.region);
    }
    let response: Value = request
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let inner = &response["Response"];
    if let Some(error) = inner.get("Error") {
        return Err(format!(
            "{}: {}",
            error["Code"].as_str().unwrap_or(""),
            error["Message"].as_str().unwrap_or("")
        ));
    }
    inner["TaskId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the answer has no TaskId".to_owned())
}

fn procedure_state_changed(
    receiver: &Receiver,
    event: &serde_json::Map<String, Value>,
) -> Response {
    let Some(Value::Object(procedure)) = event.get("ProcedureStateChangeEvent") else {
        return bad_request();
    };
    match procedure.get("Status").and_then(Value::as_str) {
        Some("FINISH") => {}
        Some(_) => return StatusCode::OK.into_response(),
        None => return bad_request(),
    }
    let (Some(task_id), Some(file_id), Some(err_code)) = (
        procedure.get("TaskId").and_then(Value::as_str),
        procedure.get("FileId").and_then(Value::as_str),
        procedure.get("ErrCode").and_then(Value::as_i64),
    ) else {
        return bad_request();
    };
    let Some(results) = procedure
        .get("MediaProcessResultSet")
        .and_then(Value::as_array)
    else {
        return bad_request();
    };
    if !receiver
        .seen_tasks
        .lock()
        .expect("not poisoned")
        .insert(task_id.to_owned())
    {
        println!("procedure_repeated task_id={task_id}");
        return StatusCode::OK.into_response();
    }
    if err_code != 0 {
        let message = procedure
            .get("Message")
            .and_then(Value::as_str)
            .unwrap_or("");
        println!("procedure_failed file_id={file_id} task_id={task_id} err_code={err_code} message={message:?}");
        return StatusCode::OK.into_response();
    }
    for item in results {
        if item.get("Type").and_then(Value::as_str) != Some("Transcode") {
            continue;
        }
        let Some(task) = item.get("TranscodeTask").filter(|t| !t.is_null()) else {
            continue;
        };
        let definition = task["Input"]["Definition"].as_i64().unwrap_or(0);
        let status = task["Status"].as_str().unwrap_or("");
        if task["ErrCode"].as_i64().unwrap_or(-1) == 0 {
            let url = task["Output"]["Url"].as_str().unwrap_or("");
            println!("transcode file_id={file_id} task_id={task_id} definition={definition} status={status} url={url}");
        } else {
            let code = task["ErrCodeExt"].as_str().unwrap_or("");
            println!("transcode_failed file_id={file_id} task_id={task_id} definition={definition} status={status} error={code}");
        }
    }
    StatusCode::OK.into_response()
}
