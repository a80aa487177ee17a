//! Events and webhooks: signed deliveries to a real local receiver, retries, the attempt log, resend,
//! endpoint management and the pull API.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{clip, TestApp};

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status the receiver answered; 0 when it never answered (the request hung).
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    Hang(Duration),
    Redirect,
}

/// A local webhook receiver on port 0 that records every request and answers from a script
/// (then 200).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(script: Vec<Reply>) -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Default::default();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (r, s) = (received.clone(), script.clone());
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (r, s) = (r.clone(), s.clone());
            async move {
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let reply = s.lock().unwrap().pop_front();
                let status = match &reply {
                    None => 200,
                    Some(Reply::Status(code)) => *code,
                    Some(Reply::Hang(_)) => 0,
                    Some(Reply::Redirect) => 302,
                };
                r.lock().unwrap().push(Received {
                    headers,
                    body: body.to_vec(),
                    status,
                });
                match reply {
                    None => StatusCode::OK.into_response(),
                    Some(Reply::Status(code)) => {
                        StatusCode::from_u16(code).unwrap().into_response()
                    }
                    Some(Reply::Hang(d)) => {
                        tokio::time::sleep(d).await;
                        StatusCode::OK.into_response()
                    }
                    Some(Reply::Redirect) => {
                        let mut response: Response = StatusCode::FOUND.into_response();
                        response
                            .headers_mut()
                            .insert("location", "http://127.0.0.1:1/elsewhere".parse().unwrap());
                        response
                    }
                }
            }
        };
        let router = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver { url, received }
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn types(&self) -> Vec<String> {
        self.all()
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Checks a `Mux-Signature` with Mux's documented algorithm.
pub fn verify_mux(secret: &str, received: &Received) -> bool {
    let header = &received.headers["mux-signature"];
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1.push(value.to_owned()),
            _ => {}
        }
    }
    let t = t.expect("t in Mux-Signature");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&received.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    let age = openvod::id::now_unix() - t.parse::<i64>().unwrap();
    v1.contains(&expected) && age <= 300
}

pub(crate) async fn create_endpoint(app: &TestApp, body: Value) -> Value {
    let (status, json) = app
        .api_json(Method::POST, "/openvod/v1/webhook-endpoints", Some(body))
        .await;
    assert_eq!(status, 201, "{json}");
    json["data"].clone()
}

fn schedule(c: &mut openvod::config::Config, steps: &[&str]) {
    c.webhooks.retry_schedule = steps.iter().map(|s| s.to_string()).collect();
    c.webhooks.timeout_secs = 1;
}

#[tokio::test]
async fn upload_lifecycle_is_delivered_signed_in_both_formats() {
    let app = TestApp::spawn().await;
    let mux = Receiver::start(vec![]).await;
    let standard = Receiver::start(vec![]).await;
    let mux_ep = create_endpoint(&app, json!({"url": mux.url, "format": "mux"})).await;
    let std_ep = create_endpoint(
        &app,
        json!({"url": standard.url, "format": "standard",
        "events": ["video.asset.ready", "video.upload.asset_created"]}),
    )
    .await;
    assert!(std_ep["secret"].as_str().unwrap().starts_with("whsec_"));

    let asset_id = app
        .upload_file(
            clip(),
            json!({"playback_policy": "public", "mp4_support": "standard", "passthrough": "p1"}),
        )
        .await;
    app.run_jobs_until_idle().await;
    app.deliver_webhooks().await;

    // Events about one object arrive in order; different objects are delivered independently.
    let of = |kind: &str| {
        mux.all()
            .into_iter()
            .filter(|r| r.json()["object"]["type"] == kind)
            .map(|r| r.json()["type"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("upload"),
        ["video.upload.created", "video.upload.asset_created"]
    );
    assert_eq!(
        of("asset"),
        [
            "video.asset.created",
            "video.asset.ready",
            "video.asset.static_renditions.ready"
        ]
    );
    for r in mux.all() {
        assert!(
            verify_mux(mux_ep["secret"].as_str().unwrap(), &r),
            "Mux-Signature verifies"
        );
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let ready = mux
        .all()
        .into_iter()
        .find(|r| r.json()["type"] == "video.asset.ready")
        .unwrap()
        .json();
    let pid = app.get_asset(&asset_id).await["playback_ids"][0]["id"].clone();
    assert_eq!(ready["data"]["playback_ids"][0]["id"], pid);
    assert_eq!(ready["data"]["status"], "ready");
    assert!(ready["data"]["upload_id"].is_string());
    assert_eq!(ready["data"]["passthrough"], "p1");
    assert!(
        ready["data"]["created_at"].is_i64(),
        "webhook data.created_at is an integer"
    );
    assert_eq!(ready["object"], json!({"type": "asset", "id": asset_id}));
    assert!(ready["created_at"].as_str().unwrap().ends_with("000Z"));
    assert_eq!(
        of("static_rendition"),
        ["video.asset.static_rendition.ready"],
        "the legacy mp4_support file has its own ready event"
    );
    let upload_created = mux
        .all()
        .into_iter()
        .find(|r| r.json()["type"] == "video.upload.created")
        .unwrap()
        .json();
    assert!(
        upload_created["data"].get("url").is_none(),
        "webhook copies of an upload carry no URL"
    );

    let mut types = standard.types();
    types.sort();
    assert_eq!(
        types,
        ["video.asset.ready", "video.upload.asset_created"],
        "the events filter applies"
    );
    // Verify the Standard Webhooks deliveries with the reference library.
    let dir = tempfile::tempdir().unwrap();
    let captured: Vec<Value> = standard
        .all()
        .iter()
        .map(|r| json!({"headers": r.headers, "body": String::from_utf8(r.body.clone()).unwrap()}))
        .collect();
    let file = dir.path().join("deliveries.json");
    std::fs::write(&file, serde_json::to_vec(&captured).unwrap()).unwrap();
    crate::python_clients::run_script(
        "standard_webhooks_check.py",
        &[
            ("WEBHOOK_SECRET", std_ep["secret"].as_str().unwrap()),
            ("WEBHOOK_CAPTURE", file.to_str().unwrap()),
        ],
    )
    .await;

    // The attempt log has one successful attempt per delivery.
    let (_, attempts) = app
        .api_json(
            Method::GET,
            &format!(
                "/openvod/v1/webhook-endpoints/{}/attempts",
                mux_ep["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let attempts = attempts["data"].as_array().unwrap();
    assert_eq!(attempts.len(), 6);
    assert!(attempts
        .iter()
        .all(|a| a["success"] == true && a["response_status_code"] == 200));
}

#[tokio::test]
async fn failures_are_retried_on_schedule_with_the_same_event_id() {
    let app = TestApp::spawn_with(0, |c| schedule(c, &["0s", "1s", "1s", "1s"])).await;
    let receiver = Receiver::start(vec![
        Reply::Status(500),
        Reply::Hang(Duration::from_secs(3)),
        Reply::Redirect,
    ])
    .await;
    let endpoint = create_endpoint(
        &app,
        json!({"url": receiver.url, "format": "standard", "events": ["video.upload.created"]}),
    )
    .await;
    app.create_upload(json!({})).await;
    for _ in 0..100 {
        app.deliver_webhooks().await;
        if receiver.all().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = receiver.all();
    assert_eq!(
        all.len(),
        4,
        "500, timeout, redirect (not followed), then delivered"
    );
    let ids: Vec<&str> = all
        .iter()
        .map(|r| r.headers["webhook-id"].as_str())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "the same event id on every attempt: {ids:?}"
    );
    assert_eq!(
        all.iter()
            .map(|r| r.json()["id"].clone())
            .collect::<Vec<_>>()
            .len(),
        4
    );
    assert_eq!(all[0].json()["attempts"], json!([]));
    let last_attempts = all[3].json()["attempts"].clone();
    assert_eq!(
        last_attempts.as_array().unwrap().len(),
        3,
        "a retried payload lists earlier attempts: {last_attempts}"
    );
    assert_eq!(last_attempts[0]["response_status_code"], 500);
    let signatures: Vec<&str> = all
        .iter()
        .map(|r| r.headers["webhook-signature"].as_str())
        .collect();
    let timestamps: Vec<i64> = all
        .iter()
        .map(|r| r.headers["webhook-timestamp"].parse().unwrap())
        .collect();
    assert!(
        timestamps.windows(2).all(|w| w[0] < w[1]),
        "a fresh timestamp per attempt: {timestamps:?}"
    );
    assert!(signatures.windows(2).all(|w| w[0] != w[1]));

    let (_, attempts) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/events/{}/attempts", ids[0]),
            None,
        )
        .await;
    let mut attempts = attempts["data"].as_array().unwrap().clone();
    attempts.reverse();
    let codes: Vec<Value> = attempts
        .iter()
        .map(|a| a["response_status_code"].clone())
        .collect();
    assert_eq!(codes, [json!(500), Value::Null, json!(302), json!(200)]);
    assert!(attempts[1]["error"]
        .as_str()
        .unwrap()
        .contains("no answer within"));
    let (_, ep) = app
        .api_json(
            Method::GET,
            &format!(
                "/openvod/v1/webhook-endpoints/{}",
                endpoint["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        ep["data"]["failing_since"],
        Value::Null,
        "a success clears the failure streak"
    );

    // Resending a past event delivers it again with the same id.
    let (status, _) = app
        .api_json(
            Method::POST,
            &format!("/openvod/v1/events/{}/resend", ids[0]),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 202);
    app.deliver_webhooks().await;
    assert_eq!(receiver.all().last().unwrap().headers["webhook-id"], ids[0]);
}

#[tokio::test]
async fn exhausted_retries_give_up_and_failing_endpoints_are_disabled() {
    let app = TestApp::spawn_with(0, |c| {
        schedule(c, &["0s", "1s"]);
        c.webhooks.disable_after_secs = 1;
    })
    .await;
    let receiver = Receiver::start(vec![Reply::Status(503); 10]).await;
    let endpoint = create_endpoint(&app, json!({"url": receiver.url})).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    app.create_upload(json!({})).await;
    app.deliver_webhooks().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.deliver_webhooks().await;
    assert_eq!(receiver.all().len(), 2, "two attempts, then given up");
    let (_, ep) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_eq!(ep["data"]["enabled"], false, "{ep}");
    assert!(ep["data"]["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("failed since"));
    // Disabled endpoints receive nothing; re-enabling by hand clears the failure state.
    app.create_upload(json!({})).await;
    app.deliver_webhooks().await;
    assert_eq!(receiver.all().len(), 2);
    let (status, ep) = app
        .api_json(
            Method::PATCH,
            &format!("/openvod/v1/webhook-endpoints/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(
        (status, ep["data"]["disabled_reason"].clone()),
        (200, Value::Null)
    );
}

#[tokio::test]
async fn endpoint_management_and_validation() {
    let app = TestApp::spawn_with(0, |c| c.outbound.allow_private_addresses = false).await;
    let cases = [
        (
            json!({"url": "http://127.0.0.1:9/hook"}),
            "internal address",
        ),
        (json!({"url": "ftp://example.com/x"}), "http"),
        (
            json!({"url": "https://example.com/x", "format": "xml"}),
            "format",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["video.asset.exploded"]}),
            "video.asset.exploded",
        ),
        (json!({"format": "mux"}), "url"),
    ];
    for (body, needle) in cases {
        let (status, json) = app
            .api_json(
                Method::POST,
                "/openvod/v1/webhook-endpoints",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            json["error"]["messages"][0]
                .as_str()
                .unwrap()
                .contains(needle),
            "{body}: {json}"
        );
    }
    let (_, list) = app
        .api_json(Method::GET, "/openvod/v1/webhook-endpoints", None)
        .await;
    assert_eq!(list["data"], json!([]));
    let app_private = TestApp::spawn().await;
    let created = create_endpoint(&app_private, json!({"url": "http://127.0.0.1:9/hook"})).await;
    let id = created["id"].as_str().unwrap();
    let (status, patched) = app_private
        .api_json(
            Method::PATCH,
            &format!("/openvod/v1/webhook-endpoints/{id}"),
            Some(json!({"format": "standard"})),
        )
        .await;
    assert_eq!(status, 200);
    let secret = patched["data"]["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let (_, fetched) = app_private
        .api_json(
            Method::GET,
            &format!("/openvod/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    // Shown once: later reads give only its end.
    assert!(fetched["data"].get("secret").is_none(), "{fetched}");
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert_eq!(fetched["data"]["secret_hint"], format!("…{tail}"));
    let (_, listed) = app_private
        .api_json(Method::GET, "/openvod/v1/webhook-endpoints", None)
        .await;
    assert!(listed["data"][0].get("secret").is_none(), "{listed}");
    // A change that keeps the secret does not show it; rotating shows the new one, once.
    let (_, renamed) = app_private
        .api_json(
            Method::PATCH,
            &format!("/openvod/v1/webhook-endpoints/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert!(renamed["data"].get("secret").is_none(), "{renamed}");
    let (status, rotated) = app_private
        .api_json(
            Method::PATCH,
            &format!("/openvod/v1/webhook-endpoints/{id}"),
            Some(json!({"rotate_secret": true})),
        )
        .await;
    assert_eq!(status, 200);
    let rotated = rotated["data"]["secret"].as_str().unwrap();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    let (status, _) = app
        .api_json(Method::GET, "/openvod/v1/webhook-endpoints/nope", None)
        .await;
    assert_eq!(status, 404);
    let unauth = app
        .client
        .get(format!("{}/openvod/v1/events", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);
}

#[tokio::test]
async fn config_declared_endpoints_keep_their_secret() {
    let receiver = Receiver::start(vec![]).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(0, move |c| {
        c.webhooks.endpoints = vec![openvod::config::ConfiguredEndpoint {
            url,
            format: "mux".into(),
            events: None,
            secret: Some("s3cret".into()),
        }];
    })
    .await;
    let (_, list) = app
        .api_json(Method::GET, "/openvod/v1/webhook-endpoints", None)
        .await;
    assert_eq!(list["data"][0]["source"], "config");
    app.create_upload(json!({})).await;
    app.deliver_webhooks().await;
    assert!(verify_mux("s3cret", &receiver.all()[0]));
}

#[tokio::test]
async fn pull_api_pages_filters_and_long_polls() {
    let app = TestApp::spawn().await;
    let first = app.create_upload(json!({})).await;
    let second = app.create_upload(json!({})).await;
    app.api_json(
        Method::PUT,
        &format!(
            "/video/v1/uploads/{}/cancel",
            second["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let (_, all) = app.api_json(Method::GET, "/openvod/v1/events", None).await;
    let types: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "video.upload.created",
            "video.upload.created",
            "video.upload.cancelled"
        ]
    );
    let (_, page) = app
        .api_json(Method::GET, "/openvod/v1/events?limit=1", None)
        .await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/events?after={cursor}"),
            None,
        )
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 2, "stable cursors");
    let (_, filtered) = app
        .api_json(
            Method::GET,
            "/openvod/v1/events?type=video.upload.cancelled",
            None,
        )
        .await;
    assert_eq!(filtered["data"][0]["object"]["id"], second["id"]);
    let (_, by_object) = app
        .api_json(
            Method::GET,
            &format!(
                "/openvod/v1/events?object_id={}",
                first["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(by_object["data"].as_array().unwrap().len(), 1);
    let (_, one) = app
        .api_json(
            Method::GET,
            &format!(
                "/openvod/v1/events/{}",
                filtered["data"][0]["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(one["data"]["type"], "video.upload.cancelled");

    // A long poll waiting past the last event returns the next one when it happens.
    let last = all["next_cursor"].as_str().unwrap().to_owned();
    let poll = app
        .api(
            Method::GET,
            &format!("/openvod/v1/events?after={last}&wait=30"),
        )
        .send();
    let poll = tokio::spawn(poll);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = app.create_upload(json!({})).await;
    let polled: Value = poll.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(polled["data"][0]["object"]["id"], third["id"]);
    let (status, _) = app
        .api_json(Method::GET, "/openvod/v1/events?wait=999", None)
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn many_endpoints_many_events_all_delivered_in_order_per_object() {
    let app = TestApp::spawn().await;
    let mut receivers = Vec::new();
    for i in 0..5 {
        let r = Receiver::start(vec![]).await;
        create_endpoint(
            &app,
            json!({"url": r.url, "format": if i % 2 == 0 { "mux" } else { "standard" }}),
        )
        .await;
        receivers.push(r);
    }
    let mut uploads = Vec::new();
    for _ in 0..20 {
        uploads.push(
            app.create_upload(json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in uploads.iter().step_by(2) {
        app.api_json(Method::PUT, &format!("/video/v1/uploads/{id}/cancel"), None)
            .await;
    }
    app.deliver_webhooks().await;
    for r in &receivers {
        let got = r.all();
        assert_eq!(got.len(), 30, "20 created + 10 cancelled");
        let mut per_object: HashMap<String, Vec<String>> = HashMap::new();
        for g in &got {
            let j = g.json();
            per_object
                .entry(j["object"]["id"].as_str().unwrap().to_owned())
                .or_default()
                .push(j["type"].as_str().unwrap().to_owned());
        }
        for (id, types) in per_object {
            if types.len() == 2 {
                assert_eq!(
                    types,
                    ["video.upload.created", "video.upload.cancelled"],
                    "{id}"
                );
            }
        }
    }
    let (_, attempts) = app
        .api_json(Method::GET, "/openvod/v1/events?limit=1000", None)
        .await;
    assert_eq!(attempts["data"].as_array().unwrap().len(), 30);
    let mut total = 0;
    for ep in app
        .api_json(Method::GET, "/openvod/v1/webhook-endpoints", None)
        .await
        .1["data"]
        .as_array()
        .unwrap()
    {
        let (_, a) = app
            .api_json(
                Method::GET,
                &format!(
                    "/openvod/v1/webhook-endpoints/{}/attempts?limit=1000",
                    ep["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        total += a["data"].as_array().unwrap().len();
    }
    assert_eq!(total, 150, "one attempt logged per delivery");
}
