//! Hostile input at the API, each refused with a clear 4xx and nothing stored: internal addresses
//! in every URL a client hands us (inputs, tracks, watermarks, webhooks), names that try to
//! climb out of the store, tampered capability URLs, JSON built to exhaust the parser, and BBB
//! sources (the old server, a recording to render) at internal addresses.
//! (JWT refusals are in playback.rs, slow clients in edge.rs, parser fuzzing in fuzz/.)

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::TestApp;

/// Addresses that reach this machine or its network, spelled the ways SSRF payloads spell them.
const INTERNAL: &[&str] = &[
    "http://127.0.0.1:9/x.mp4",
    "http://127.1/x.mp4",
    "http://2130706433/x.mp4",
    "http://0x7f000001/x.mp4",
    "http://0.0.0.0/x.mp4",
    "http://localhost./x.mp4",
    "http://[::1]/x.mp4",
    "http://[::ffff:127.0.0.1]/x.mp4",
    "http://[::ffff:7f00:1]/x.mp4",
    "http://[fe80::1]/x.mp4",
    "http://[fd00::1]/x.mp4",
    "http://10.0.0.1/x.mp4",
    "http://172.16.5.4/x.mp4",
    "http://192.168.1.1/x.mp4",
    "http://100.64.0.1/x.mp4",
    "http://169.254.169.254/latest/meta-data/",
];

async fn count(app: &TestApp, path: &str) -> usize {
    let (status, list) = app.api_json(Method::GET, path, None).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().len()
}

fn message(body: &Value) -> &str {
    body["error"]["messages"][0].as_str().unwrap_or("")
}

#[tokio::test]
async fn internal_addresses_are_refused_wherever_a_url_is_taken() {
    let app = TestApp::spawn_with(0, |c| c.outbound.allow_private_addresses = false).await;
    for url in INTERNAL {
        let bodies = [
            ("/video/v1/assets", json!({"input": [{"url": url}]})),
            (
                "/video/v1/assets",
                json!({"input": [
                    {"url": "https://example.com/v.mp4"},
                    {"url": url, "type": "text", "text_type": "subtitles", "language_code": "en"}
                ]}),
            ),
            (
                "/video/v1/assets",
                json!({"input": [
                    {"url": "https://example.com/v.mp4"},
                    {"url": url, "overlay_settings": {"vertical_align": "top", "horizontal_align": "left"}}
                ]}),
            ),
            ("/openvod/v1/webhook-endpoints", json!({"url": url})),
        ];
        for (path, body) in bodies {
            let (status, answer) = app.api_json(Method::POST, path, Some(body)).await;
            assert_eq!(status, 400, "{path} with {url}: {answer}");
            assert!(
                message(&answer).contains("address") || message(&answer).contains("URL"),
                "{path} with {url}: {answer}"
            );
        }
    }
    assert_eq!(count(&app, "/video/v1/assets").await, 0);
    assert_eq!(count(&app, "/openvod/v1/webhook-endpoints").await, 0);
}

#[tokio::test]
async fn names_that_climb_out_of_the_store_are_refused() {
    let app = TestApp::spawn().await;
    let upload = app.create_upload(json!({})).await;
    let url = upload["url"].as_str().unwrap();
    let token = url.split("token=").nth(1).unwrap();
    // ("../" itself is resolved away by every HTTP client before it is sent.)
    for id in [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F",
        "a%00b",
        "x%2F..%2F..%2Fstaging",
    ] {
        let r = app
            .client
            .put(format!("{}/upload/{id}?token={token}", app.base_url))
            .body("data")
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error(),
            "upload id {id}: {}",
            r.status()
        );
    }
    for path in [
        "/..%2F..%2Fetc%2Fpasswd.m3u8",
        "/x/../../etc/passwd",
        "/vod/..%2F..%2Fopenvod.db",
        "/cos/..%2F..%2Fopenvod.db/media.mp4",
        "/cos/x/..%2F..%2Fmedia.mp4",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
        let body = r.bytes().await.unwrap();
        assert!(
            !String::from_utf8_lossy(&body).contains("SQLite format"),
            "{path} served the database"
        );
    }
    // The real upload is untouched by all of it.
    let upload = app.get_upload(upload["id"].as_str().unwrap()).await;
    assert_eq!(upload["status"], "waiting", "{upload}");
}

#[tokio::test]
async fn tampered_capability_urls_store_nothing() {
    let app = TestApp::spawn().await;
    let upload = app.create_upload(json!({})).await;
    let url = upload["url"].as_str().unwrap().to_owned();
    let id = upload["id"].as_str().unwrap().to_owned();
    let other = app.create_upload(json!({})).await;
    let other_token = other["url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let (base, token) = url.split_once("token=").unwrap();
    let mut flipped = token.to_owned().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    for tampered in [
        format!("{base}token={}", String::from_utf8(flipped).unwrap()),
        format!("{base}token="),
        base.trim_end_matches(['?', '&']).to_owned(),
        format!("{base}token={other_token}"),
    ] {
        let r = app
            .client
            .put(&tampered)
            .body("not yours")
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 401 | 403),
            "{tampered}: {}",
            r.status()
        );
        let body: Value = r.json().await.unwrap();
        assert!(!message(&body).is_empty(), "{body}");
    }
    assert_eq!(app.get_upload(&id).await["status"], "waiting");
    assert!(app
        .stored(&format!("uploads/{id}/original"))
        .await
        .is_none());
}

#[tokio::test]
async fn json_built_to_exhaust_the_parser_is_refused() {
    let app = TestApp::spawn().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!(
        "{{\"new_asset_settings\": {}1{}}}",
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    let huge = format!("{{\"cors_origin\": \"{}\"}}", "x".repeat(4 * 1024 * 1024));
    for (name, body, status) in [
        ("deeply nested arrays", deep, 400),
        ("deeply nested objects", deep_object, 400),
        ("a 4 MiB string", huge, 413),
        ("not JSON", "{\"new_asset_settings\": ".to_owned(), 400),
    ] {
        let r = app
            .api(Method::POST, "/video/v1/uploads")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{name}");
        let answer: Value = r.json().await.unwrap();
        assert!(!message(&answer).is_empty(), "{name}: {answer}");
    }
    assert_eq!(count(&app, "/video/v1/uploads").await, 0);
    let r = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the server is still up");
}

/// Runs `openvod ARGS`, which must fail saying the address is internal.
async fn refused_as_internal(args: &[&str]) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
        .args(args)
        .env_remove("OPENVOD_CONFIG")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "openvod {args:?}: {stderr}");
    assert!(
        stderr.contains("internal address"),
        "openvod {args:?}: {stderr}"
    );
}

/// The old BBB server and a recording's source, as the migration and `bbb render` take them: an
/// internal address is refused before anything is fetched, with a message saying why.
#[tokio::test]
async fn bbb_sources_at_internal_addresses_are_refused() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // Something does listen there, so a fetch that got through would succeed and be counted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("localhost:{port}"),
    ] {
        let config = dir.path().join("openvod.toml");
        std::fs::write(
            &config,
            format!(
                "[bbb]\nserver_url = \"http://{host}/bigbluebutton/\"\nsecret = \"s3cret\"\n\
                 cache_file = {:?}\n",
                dir.path().join("listing.xml")
            ),
        )
        .unwrap();
        let data = dir.path().join("data");
        let data = data.display().to_string();
        refused_as_internal(&[
            "bbb",
            "list",
            "--config",
            &config.display().to_string(),
            "--data-dir",
            &data,
        ])
        .await;
        let output = dir.path().join("out.mp4");
        refused_as_internal(&[
            "bbb",
            "render",
            &format!("http://{host}/presentation/0123456789abcdef0123456789abcdef01234567-1600000000000/"),
            "--data-dir",
            &data,
            "-o",
            &output.display().to_string(),
        ])
        .await;
        assert!(!output.exists(), "nothing written for {host}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "nothing reached the listener"
    );
}
