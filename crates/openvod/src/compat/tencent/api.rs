//! `POST /` — the TencentCloud API 3.0 surface for VOD (version 2018-07-17), routed by `X-TC-Action`.
//! Every answer is HTTP 200 with `Content-Type: application/json` exactly (the SDK ignores errors
//! otherwise) and `{"Response": {..., "RequestId"}}`; errors carry Tencent's codes.

use std::time::Duration;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Method;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use super::events::{iso_seconds, procedure_task};
use super::sign::{date_of, signature, Authorization, Request};
use super::templates;
use crate::http::AppState;
use crate::id::{now_unix, uuid_v4};
use crate::processing::{OutputRequest, ProcessingError, TaskStatus};

const VERSION: &str = "2018-07-17";
const MAX_SKEW_SECS: i64 = 300;
/// Reliable-mode limits, as Tencent's.
const PULL_LIMIT: u32 = 16;
const PULL_WAIT: Duration = Duration::from_secs(5);
const PULL_VISIBILITY: Duration = Duration::from_secs(30);

pub fn routes() -> Router<AppState> {
    // `/` also answers the upload target's bucket-level listing, which browsers call.
    Router::new()
        .route("/", any(handle))
        .layer(super::cos::cors())
}

/// Largest accepted request body.
const MAX_BODY: usize = 1024 * 1024;

/// The parameters each action takes. Anything else is `UnknownParameter`, which also stops a signed
/// request from being replayed under another `X-TC-Action` (the SDK does not sign that header).
fn known_parameters(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "ProcessMedia" => &[
            "FileId",
            "SubAppId",
            "MediaProcessTask",
            "AiContentReviewTask",
            "AiAnalysisTask",
            "AiRecognitionTask",
            "TasksPriority",
            "TasksNotifyMode",
            "SessionContext",
            "SessionId",
            "ExtInfo",
        ],
        "DescribeTaskDetail" => &["TaskId", "SubAppId"],
        "DescribeMediaInfos" => &["FileIds", "Filters", "SubAppId"],
        "DeleteMedia" => &["FileId", "DeleteParts", "SubAppId"],
        "DescribeTranscodeTemplates" => &[
            "Definitions",
            "Type",
            "ContainerType",
            "TEHDType",
            "Offset",
            "Limit",
            "SubAppId",
        ],
        "PullEvents" => &["SubAppId"],
        "ConfirmEvents" => &["EventHandles", "ExtInfo", "SubAppId"],
        "ModifyEventConfig" => &[
            "Mode",
            "NotificationUrl",
            "UploadMediaCompleteEventSwitch",
            "DeleteMediaCompleteEventSwitch",
            "PersistenceCompleteEventSwitch",
            "SignKey",
            "SubAppId",
        ],
        "DescribeEventConfig" => &["SubAppId"],
        "ApplyUpload" => &[
            "MediaType",
            "MediaName",
            "CoverType",
            "Procedure",
            "ExpireTime",
            "StorageRegion",
            "ClassId",
            "SourceContext",
            "SessionContext",
            "ExtInfo",
            "SubAppId",
            "MediaStoragePath",
        ],
        "CommitUpload" => &["VodSessionKey", "SubAppId", "ExtInfo"],
        "PullUpload" => &[
            "MediaUrl",
            "MediaType",
            "MediaName",
            "CoverUrl",
            "Procedure",
            "ExpireTime",
            "StorageRegion",
            "ClassId",
            "SessionContext",
            "SessionId",
            "ExtInfo",
            "SourceContext",
            "MediaStoragePath",
            "SubAppId",
        ],
        "DescribeEventsState" => &["SubAppId"],
        "SearchMedia" => &[
            "Text",
            "Names",
            "NamePrefixes",
            "Descriptions",
            "FileIds",
            "Categories",
            "SourceTypes",
            "CreateTime",
            "StartTime",
            "EndTime",
            "Sort",
            "Offset",
            "Limit",
            "Filters",
            "SubAppId",
        ],
        "ModifyMediaInfo" => &[
            "FileId",
            "Name",
            "Description",
            "ClassId",
            "ExpireTime",
            "CoverData",
            "SubAppId",
        ],
        _ => return None,
    })
}

/// A Tencent error: `Response.Error {Code, Message}`.
#[derive(Debug)]
pub struct TcError {
    pub code: String,
    pub message: String,
}

pub(super) fn err(code: &str, message: impl Into<String>) -> TcError {
    TcError {
        code: code.to_owned(),
        message: message.into(),
    }
}

fn respond(request_id: &str, result: Result<Value, TcError>) -> Response {
    let mut inner = match result {
        Ok(Value::Object(map)) => map,
        Ok(_) => Map::new(),
        Err(e) => {
            let mut map = Map::new();
            map.insert(
                "Error".into(),
                json!({"Code": e.code, "Message": e.message}),
            );
            map
        }
    };
    inner.insert("RequestId".into(), json!(request_id));
    let mut response = serde_json::to_vec(&json!({ "Response": inner }))
        .expect("JSON")
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The upload target's bucket-level listing shares the root path with the API.
    if method == Method::GET
        && url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .any(|(k, _)| k == "uploads")
    {
        return super::cos::list_multipart_uploads(&state, &method, &uri, &headers).await;
    }
    let request_id = uuid_v4();
    let call = async {
        if method != Method::POST {
            return Err(err(
                "UnsupportedProtocol",
                "the API takes POST requests with a JSON body",
            ));
        }
        let body: Bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            err(
                "InvalidParameter",
                format!("the body is unreadable or larger than {MAX_BODY} bytes"),
            )
        })?;
        if headers.contains_key("authorization") {
            authenticate(&state, &uri, &headers, &body).await?;
        } else {
            console_session(&state, &headers).await?;
        }
        if header(&headers, "x-tc-version") != Some(VERSION) {
            return Err(err(
                "NoSuchVersion",
                format!("X-TC-Version must be {VERSION}"),
            ));
        }
        let action = header(&headers, "x-tc-action").unwrap_or("");
        let params: Value = serde_json::from_slice(&body)
            .map_err(|e| err("InvalidParameter", format!("the body is not JSON: {e}")))?;
        if !params.is_object() {
            return Err(err("InvalidParameter", "the body must be a JSON object"));
        }
        sub_app(&params)?;
        let known = known_parameters(action).ok_or_else(|| {
            err(
                "InvalidAction",
                format!("action {action:?} is not supported"),
            )
        })?;
        if let Some(unknown) = params
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .find(|k| !known.contains(&k.as_str()))
        {
            return Err(err(
                "UnknownParameter",
                format!("{action} has no parameter {unknown}"),
            ));
        }
        match action {
            "ProcessMedia" => process_media(&state, &params).await,
            "DescribeTaskDetail" => describe_task_detail(&state, &params).await,
            "DescribeMediaInfos" => super::media::describe_media_infos(&state, &params).await,
            "SearchMedia" => super::media::search_media(&state, &params).await,
            "ModifyMediaInfo" => super::media::modify_media_info(&state, &params).await,
            "DeleteMedia" => delete_media(&state, &params).await,
            "DescribeTranscodeTemplates" => describe_transcode_templates(&params),
            "PullEvents" => pull_events(&state).await,
            "ConfirmEvents" => confirm_events(&state, &params).await,
            "ModifyEventConfig" => modify_event_config(&state, &params).await,
            "DescribeEventConfig" => describe_event_config(&state).await,
            "ApplyUpload" => super::upload::apply_upload(&state, &params).await,
            "CommitUpload" => super::upload::commit_upload(&state, &params).await,
            "PullUpload" => super::upload::pull_upload(&state, &params).await,
            "DescribeEventsState" => describe_events_state(&state).await,
            other => Err(err(
                "InvalidAction",
                format!("action {other:?} is not supported"),
            )),
        }
    };
    let result = match state.limits.within_api_timeout(call).await {
        Ok(result) => result,
        Err(message) => Err(err("InternalError", message)),
    };
    respond(&request_id, result)
}

/// The console calls this API with its session instead of a TC3 signature (it holds no secret):
/// admins only, since the VOD API has no notion of per-user media, and with the CSRF token.
async fn console_session(state: &AppState, headers: &HeaderMap) -> Result<(), TcError> {
    let no_auth = || {
        err(
            "AuthFailure.InvalidAuthorization",
            "Authorization must be a TC3-HMAC-SHA256 signature",
        )
    };
    let who = crate::accounts::http::signed_in(state, headers)
        .await
        .ok_or_else(no_auth)?
        .map_err(|_| no_auth())?;
    who.check_csrf(header(headers, crate::accounts::http::CSRF_HEADER))
        .map_err(|e| err("AuthFailure.UnauthorizedOperation", e.to_string()))?;
    if who.role != crate::accounts::model::Role::Admin {
        return Err(err(
            "AuthFailure.UnauthorizedOperation",
            "the VOD API is for admins when called from the console",
        ));
    }
    Ok(())
}

/// TC3-HMAC-SHA256 over the raw body and the received headers (Host as received, port included).
async fn authenticate(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), TcError> {
    let auth = header(headers, "authorization")
        .and_then(Authorization::parse)
        .ok_or_else(|| {
            err(
                "AuthFailure.InvalidAuthorization",
                "Authorization must be a TC3-HMAC-SHA256 signature",
            )
        })?;
    let timestamp: i64 = header(headers, "x-tc-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            err(
                "AuthFailure.InvalidAuthorization",
                "X-TC-Timestamp is missing or not a number",
            )
        })?;
    let secret = state
        .tokens
        .secret_of(&auth.secret_id)
        .await
        .map_err(|e| err("InternalError", e.to_string()))?
        .ok_or_else(|| {
            err(
                "AuthFailure.SecretIdNotFound",
                "the SecretId is not an active openvod API token",
            )
        })?;
    if now_unix()
        .checked_sub(timestamp)
        .is_none_or(|skew| skew.unsigned_abs() > MAX_SKEW_SECS as u64)
    {
        return Err(err(
            "AuthFailure.SignatureExpire",
            "the request timestamp is more than 300 s away from the server's clock",
        ));
    }
    if auth.service != "vod" || auth.date != date_of(timestamp) {
        return Err(err(
            "AuthFailure.SignatureFailure",
            "the credential scope must be <date of X-TC-Timestamp>/vod/tc3_request",
        ));
    }
    let mut signed = Vec::new();
    for name in &auth.signed_headers {
        let value = header(headers, name).ok_or_else(|| {
            err(
                "AuthFailure.SignatureFailure",
                format!("signed header {name} is missing"),
            )
        })?;
        signed.push((name.clone(), value.to_owned()));
    }
    let unsigned = header(headers, "x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD");
    let expected = signature(
        &secret,
        &Request {
            method: "POST",
            canonical_query: uri.query().unwrap_or(""),
            headers: signed,
            payload: (!unsigned).then_some(body),
            timestamp,
            service: "vod",
        },
    );
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        return Err(err(
            "AuthFailure.SignatureFailure",
            "the request signature does not match",
        ));
    }
    // Tencent answers a caller over its rate with this code (and HTTP 200, like every API error).
    state
        .limits
        .check_rate(&auth.secret_id)
        .map_err(|e| err("RequestLimitExceeded", e.message))?;
    Ok(())
}

/// An integer parameter, also accepted as a numeric string (`"SubAppId": "0"`).
pub(super) fn int(params: &Value, name: &str) -> Result<Option<i64>, TcError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            err(
                "InvalidParameterValue",
                format!("{name} must be an integer"),
            )
        }),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
            err(
                "InvalidParameterValue",
                format!("{name} must be an integer, got {s:?}"),
            )
        }),
        Some(_) => Err(err(
            "InvalidParameterValue",
            format!("{name} must be an integer"),
        )),
    }
}

pub(super) fn string(params: &Value, name: &str) -> Result<Option<String>, TcError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(err(
            "InvalidParameterValue",
            format!("{name} must be a string"),
        )),
    }
}

fn required(params: &Value, name: &str) -> Result<String, TcError> {
    string(params, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err("MissingParameter", format!("{name} is required")))
}

/// `SubAppId` 0 (or absent) is the default application, the only one.
fn sub_app(params: &Value) -> Result<(), TcError> {
    match int(params, "SubAppId").map_err(|e| err("InvalidParameterValue.SubAppId", e.message))? {
        None | Some(0) => Ok(()),
        Some(other) => Err(err(
            "InvalidParameterValue.SubAppId",
            format!("SubAppId {other} does not exist; use 0, the default application"),
        )),
    }
}

fn list<'a>(params: &'a Value, name: &str) -> Result<&'a [Value], TcError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(err(
            "InvalidParameterValue",
            format!("{name} must be an array"),
        )),
    }
}

async fn asset_by_file_id(
    state: &AppState,
    file_id: &str,
) -> Result<crate::assets::model::Asset, TcError> {
    state.assets.get_by_file_id(file_id).await.map_err(|_| {
        err(
            "ResourceNotFound.FileNotExist",
            format!("FileId {file_id} does not exist"),
        )
    })
}

/// A time offset for snapshots: `"3.5s"` or `"10%"` of `duration`.
fn ext_offset(value: &str, duration: f64) -> Option<f64> {
    let v = value.trim();
    if let Some(p) = v.strip_suffix('%') {
        return p
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p))
            .map(|p| p / 100.0 * duration);
    }
    v.strip_suffix('s')
        .unwrap_or(v)
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.0)
}

async fn process_media(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let file_id = required(params, "FileId")?;
    let asset = asset_by_file_id(state, &file_id).await?;
    let duration = asset
        .source
        .as_ref()
        .and_then(|s| s.duration)
        .unwrap_or(0.0);
    let task = params
        .get("MediaProcessTask")
        .cloned()
        .unwrap_or(Value::Null);
    let mut outputs = Vec::new();
    for item in list(&task, "TranscodeTaskSet")? {
        let definition = int(item, "Definition")?.ok_or_else(|| {
            err(
                "MissingParameter",
                "TranscodeTaskSet[].Definition is required",
            )
        })?;
        let preset = u32::try_from(definition)
            .ok()
            .and_then(templates::find)
            .ok_or_else(|| {
                err(
                    "ResourceNotFound.TemplateNotExist",
                    format!("transcoding template {definition} does not exist"),
                )
            })?;
        outputs.push(OutputRequest::Mp4 {
            preset: preset.0,
            height: preset.3,
            video_kbps: preset.4,
            audio_kbps: preset.5,
            fps: templates::FPS,
            hls: preset.2 == "hls",
        });
    }
    for item in list(&task, "SnapshotByTimeOffsetTaskSet")? {
        let definition = int(item, "Definition")?.ok_or_else(|| {
            err(
                "MissingParameter",
                "SnapshotByTimeOffsetTaskSet[].Definition is required",
            )
        })?;
        let mut times = Vec::new();
        for t in list(item, "ExtTimeOffsetSet")? {
            let text = t.as_str().unwrap_or_default();
            times.push(ext_offset(text, duration).ok_or_else(|| {
                err(
                    "InvalidParameterValue",
                    format!("ExtTimeOffsetSet: {text:?} is not like 3.5s or 10%"),
                )
            })?);
        }
        for t in list(item, "TimeOffsetSet")? {
            times.push(
                t.as_f64().ok_or_else(|| {
                    err("InvalidParameterValue", "TimeOffsetSet holds milliseconds")
                })? / 1000.0,
            );
        }
        if times.is_empty() {
            return Err(err(
                "MissingParameter",
                "SnapshotByTimeOffsetTaskSet[] needs ExtTimeOffsetSet or TimeOffsetSet",
            ));
        }
        outputs.push(OutputRequest::Snapshots {
            preset: definition as u32,
            times,
        });
    }
    for item in list(&task, "CoverBySnapshotTaskSet")? {
        let definition = int(item, "Definition")?.ok_or_else(|| {
            err(
                "MissingParameter",
                "CoverBySnapshotTaskSet[].Definition is required",
            )
        })?;
        let value = item
            .get("PositionValue")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let time = match string(item, "PositionType")?.as_deref() {
            Some("Percent") => value / 100.0 * duration,
            Some("Time") | None => value,
            Some(other) => {
                return Err(err(
                    "InvalidParameterValue",
                    format!("PositionType {other:?} must be Time or Percent"),
                ))
            }
        };
        outputs.push(OutputRequest::Cover {
            preset: definition as u32,
            time,
        });
    }
    if outputs.is_empty() {
        return Err(err("MissingParameter", "MediaProcessTask needs at least one task (TranscodeTaskSet, SnapshotByTimeOffsetTaskSet, CoverBySnapshotTaskSet)"));
    }
    let session_context = string(params, "SessionContext")?.unwrap_or_default();
    if session_context.chars().count() > 1000 {
        return Err(err(
            "InvalidParameterValue.SessionContextTooLong",
            "SessionContext is limited to 1000 characters",
        ));
    }
    let session_id = string(params, "SessionId")?.filter(|s| !s.is_empty());
    if session_id.as_ref().is_some_and(|s| s.chars().count() > 50) {
        return Err(err(
            "InvalidParameterValue.SessionIdTooLong",
            "SessionId is limited to 50 characters",
        ));
    }
    let priority = int(params, "TasksPriority")?.unwrap_or(0);
    if !(-10..=10).contains(&priority) {
        return Err(err(
            "InvalidParameterValue",
            "TasksPriority must be between -10 and 10",
        ));
    }
    let notify = string(params, "TasksNotifyMode")?.unwrap_or_else(|| "Finish".to_owned());
    if !matches!(notify.as_str(), "Finish" | "Change" | "None") {
        return Err(err(
            "InvalidParameterValue",
            "TasksNotifyMode must be Finish, Change or None",
        ));
    }
    let context = json!({"SessionContext": session_context, "SessionId": session_id.clone().unwrap_or_default(),
        "TasksPriority": priority, "TasksNotifyMode": notify});
    let task = state
        .processing
        .create(&asset.id, outputs, context, session_id)
        .await
        .map_err(|e| match e {
            ProcessingError::DuplicateSession(id) => err(
                "InvalidParameterValue.SessionId",
                format!("SessionId {id:?} was already used"),
            ),
            other => err("InternalError", other.to_string()),
        })?;
    Ok(json!({"TaskId": task.id}))
}

async fn describe_events_state(state: &AppState) -> Result<Value, TcError> {
    let count = state
        .events
        .pullable()
        .await
        .map_err(|e| err("InternalError", e.to_string()))?;
    Ok(json!({ "CountOfEventsToPull": count }))
}

async fn describe_task_detail(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let task_id = required(params, "TaskId")?;
    if let Some(pull) = super::upload::pull_task_detail(state, &task_id).await {
        return pull;
    }
    let task = state.processing.get(&task_id).await.map_err(|_| {
        err(
            "InvalidParameterValue.TaskId",
            format!("task {task_id} does not exist"),
        )
    })?;
    let asset = state.assets.get(&task.asset_id).await.ok();
    let status = match task.status {
        TaskStatus::Waiting => "WAITING",
        TaskStatus::Processing => "PROCESSING",
        TaskStatus::Finish => "FINISH",
    };
    Ok(json!({
        "TaskType": "Procedure",
        "Status": status,
        "CreateTime": iso_seconds(task.created_at_ms),
        "BeginProcessTime": task.begin_ms.map_or("0000-00-00T00:00:00Z".to_owned(), iso_seconds),
        "FinishTime": task.finish_ms.map_or("0000-00-00T00:00:00Z".to_owned(), iso_seconds),
        "ProcedureTask": asset.map(|a| procedure_task(&state.public_url, &task, &a)),
    }))
}

async fn delete_media(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let file_id = required(params, "FileId")?;
    let asset = asset_by_file_id(state, &file_id).await?;
    state
        .assets
        .delete(&asset.id)
        .await
        .map_err(|e| err("InternalError", e.to_string()))?;
    Ok(json!({}))
}

fn describe_transcode_templates(params: &Value) -> Result<Value, TcError> {
    let wanted: Vec<i64> = list(params, "Definitions")?
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    let set: Vec<Value> = templates::PRESETS
        .iter()
        .filter(|p| wanted.is_empty() || wanted.contains(&(p.0 as i64)))
        .map(|(definition, name, container, height, video, audio)| {
            json!({
                "Definition": definition, "Type": "Preset", "Name": name, "Comment": "", "Container": container,
                "RemoveVideo": 0, "RemoveAudio": 0,
                "VideoTemplate": {"Codec": "libx264", "Fps": templates::FPS, "Bitrate": video, "ResolutionAdaptive": "open",
                    "Width": 0, "Height": height, "FillType": "black"},
                "AudioTemplate": {"Codec": "libfdk_aac", "Bitrate": audio, "SampleRate": 44100, "AudioChannel": 2},
                "ContainerType": "Video",
                "CreateTime": "2019-01-01T00:00:00Z", "UpdateTime": "2019-01-01T00:00:00Z",
            })
        })
        .collect();
    Ok(json!({"TotalCount": set.len(), "TranscodeTemplateSet": set}))
}

async fn pull_events(state: &AppState) -> Result<Value, TcError> {
    let events = state
        .events
        .pull(PULL_LIMIT, PULL_WAIT, PULL_VISIBILITY)
        .await
        .map_err(|e| err("InternalError", e.to_string()))?;
    if events.is_empty() {
        // What Tencent answers on an empty queue, after holding the request.
        return Err(err("ResourceNotFound", "no events to pull"));
    }
    let set: Vec<Value> = events
        .into_iter()
        .map(|(handle, event)| {
            let mut body = state
                .events
                .render
                .render(crate::events::model::WebhookFormat::TencentV3, &event);
            body["EventHandle"] = json!(handle);
            body
        })
        .collect();
    Ok(json!({"EventSet": set}))
}

async fn confirm_events(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let handles: Vec<String> = list(params, "EventHandles")?
        .iter()
        .filter_map(|h| h.as_str().map(str::to_owned))
        .collect();
    if handles.is_empty() || handles.len() > 16 {
        return Err(err(
            "InvalidParameterValue.EventHandles",
            "EventHandles takes 1 to 16 handles",
        ));
    }
    state
        .events
        .confirm(&handles)
        .await
        .map_err(|e| err("InvalidParameterValue.EventHandles", e.to_string()))?;
    Ok(json!({}))
}

fn switch(params: &Value, name: &str, current: bool) -> Result<bool, TcError> {
    match string(params, name)?.as_deref() {
        None => Ok(current),
        Some("ON") => Ok(true),
        Some("OFF") => Ok(false),
        Some(other) => Err(err(
            "InvalidParameterValue",
            format!("{name} must be ON or OFF, got {other:?}"),
        )),
    }
}

async fn modify_event_config(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let mut config = state
        .events
        .tencent_config()
        .await
        .map_err(|e| err("InternalError", e.to_string()))?;
    match string(params, "Mode")?.as_deref() {
        None => {}
        Some("PUSH") => config.pull = false,
        Some("PULL") => config.pull = true,
        Some(other) => {
            return Err(err(
                "InvalidParameterValue",
                format!("Mode must be PUSH or PULL, got {other:?}"),
            ))
        }
    }
    if let Some(url) = string(params, "NotificationUrl")? {
        config.url = url;
    }
    config.upload_events = switch(
        params,
        "UploadMediaCompleteEventSwitch",
        config.upload_events,
    )?;
    config.delete_events = switch(
        params,
        "DeleteMediaCompleteEventSwitch",
        config.delete_events,
    )?;
    if let Some(key) = string(params, "SignKey")? {
        config.sign_key = key;
    }
    state
        .events
        .set_tencent_config(&config)
        .await
        .map_err(|e| err("InvalidParameterValue", e.to_string()))?;
    Ok(json!({}))
}

async fn describe_event_config(state: &AppState) -> Result<Value, TcError> {
    let c = state
        .events
        .tencent_config()
        .await
        .map_err(|e| err("InternalError", e.to_string()))?;
    let on = |b: bool| if b { "ON" } else { "OFF" };
    Ok(json!({
        "Mode": if c.pull { "PULL" } else { "PUSH" },
        "NotificationUrl": c.url,
        "UploadMediaCompleteEventSwitch": on(c.upload_events),
        "DeleteMediaCompleteEventSwitch": on(c.delete_events),
        "PersistenceCompleteEventSwitch": "OFF",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_accept_numeric_strings() {
        let p = json!({"SubAppId": "0", "A": 5, "B": "x", "C": null});
        assert_eq!(int(&p, "SubAppId").unwrap(), Some(0));
        assert_eq!(int(&p, "A").unwrap(), Some(5));
        assert!(int(&p, "B").is_err());
        assert_eq!(int(&p, "C").unwrap(), None);
        assert!(sub_app(&json!({"SubAppId": "0"})).is_ok());
        assert_eq!(
            sub_app(&json!({"SubAppId": 7})).unwrap_err().code,
            "InvalidParameterValue.SubAppId"
        );
    }

    #[test]
    fn snapshot_offsets() {
        assert_eq!(ext_offset("3.5s", 10.0), Some(3.5));
        assert_eq!(ext_offset("50%", 10.0), Some(5.0));
        assert_eq!(ext_offset("150%", 10.0), None);
        assert_eq!(ext_offset("soon", 10.0), None);
    }

    #[test]
    fn error_envelope_has_exact_content_type() {
        let r = respond("rid", Err(err("InvalidAction", "nope")));
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.status(), 200);
    }
}
