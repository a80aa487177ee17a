//! `kill -9` of the real server process in the middle of an upload, then a resume.

use std::process::Stdio;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{clip_bytes, eventually, put_chunk};

struct Server {
    child: tokio::process::Child,
    base_url: String,
}

async fn start(data_dir: &std::path::Path) -> Server {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--data-dir",
        ])
        .arg(data_dir)
        .env_remove("OPENVOD_CONFIG")
        .env("OPENVOD_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openvod starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines
        .next_line()
        .await
        .unwrap()
        .expect("server prints its URL");
    let base_url = first
        .strip_prefix("openvod listening on ")
        .expect(&first)
        .trim_end_matches('/')
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, base_url }
}

#[tokio::test]
async fn kill_9_mid_upload_then_resume_keeps_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
        .args(["tokens", "create", "--name", "crash", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (
        token["id"].as_str().unwrap().to_owned(),
        token["secret"].as_str().unwrap().to_owned(),
    );
    let client = reqwest::Client::new();

    let mut server = start(dir.path()).await;
    let health = client
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let created: serde_json::Value = client
        .post(format!("{}/video/v1/uploads", server.base_url))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"new_asset_settings": {"playback_policy": "public"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload_id = created["data"]["id"].as_str().unwrap().to_owned();
    let url = created["data"]["url"].as_str().unwrap().to_owned();
    let data = clip_bytes();
    let chunk = data.len() / 4;
    assert_eq!(
        put_chunk(&client, &url, &data, 0, chunk).await.status(),
        308
    );
    assert_eq!(
        put_chunk(&client, &url, &data, chunk, 2 * chunk)
            .await
            .status(),
        308
    );

    // Chunk 3 arrives half-way, then the server dies without warning.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let torn = client
        .put(&url)
        .header(
            "content-range",
            format!("bytes {}-{}/{}", 2 * chunk, 3 * chunk - 1, data.len()),
        )
        .header("content-length", chunk.to_string())
        .body(body)
        .send();
    let torn = tokio::spawn(torn);
    tx.send(Ok(data[2 * chunk..2 * chunk + chunk / 2].to_vec()))
        .await
        .unwrap();
    let staged = dir.path().join("staging").join(&upload_id);
    eventually("half a chunk staged", || {
        let staged = staged.clone();
        async move {
            std::fs::metadata(&staged)
                .map(|m| m.len() as usize > 2 * chunk)
                .unwrap_or(false)
        }
    })
    .await;
    server.child.start_kill().unwrap(); // SIGKILL
    server.child.wait().await.unwrap();
    drop(tx);
    let _ = torn.await; // The request died with the server; its outcome is irrelevant.

    let server = start(dir.path()).await;
    let old_base = url.split("/upload/").next().unwrap().to_owned();
    let url = url.replace(&old_base, &server.base_url);
    let probe = client
        .put(&url)
        .header("content-range", format!("bytes */{}", data.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 308);
    assert_eq!(
        probe.headers()["range"],
        format!("bytes=0-{}", 2 * chunk - 1),
        "only acknowledged bytes count"
    );
    assert_eq!(
        put_chunk(&client, &url, &data, 2 * chunk, 3 * chunk)
            .await
            .status(),
        308
    );
    assert_eq!(
        put_chunk(&client, &url, &data, 3 * chunk, data.len())
            .await
            .status(),
        200
    );

    let get = |path: String| {
        let client = client.clone();
        let (id, secret) = (id.clone(), secret.clone());
        let base = server.base_url.clone();
        async move {
            client
                .get(format!("{base}{path}"))
                .basic_auth(id, Some(secret))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let upload = get(format!("/video/v1/uploads/{upload_id}")).await;
    assert_eq!(upload["data"]["status"], "asset_created");
    let asset_id = upload["data"]["asset_id"].as_str().unwrap().to_owned();
    eventually("the in-process worker probes the asset", || {
        let get = &get;
        let asset_id = asset_id.clone();
        async move { get(format!("/video/v1/assets/{asset_id}")).await["data"]["duration"].is_number() }
    })
    .await;
    let master: serde_json::Value = client
        .put(format!(
            "{}/video/v1/assets/{asset_id}/master-access",
            server.base_url
        ))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"master_access": "temporary"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bytes = client
        .get(master["data"]["master"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        bytes.to_vec(),
        data,
        "the asset holds exactly the original bytes"
    );
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
