//! `kill -9` of the real server process in the middle of an upload, then a resume.

use std::time::Duration;

use serde_json::json;

use crate::support::{backend_env, backend_for, clip_bytes, eventually, put_chunk, raw_db};

pub(crate) struct Server {
    pub child: tokio::process::Child,
    pub base_url: String,
}

pub(crate) async fn start(data_dir: &std::path::Path) -> Server {
    start_with(data_dir, &[]).await
}

pub(crate) async fn start_with(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let (database, storage) = backend_for(data_dir).await;
    let spawned = crate::support::serve_on(&database, &storage, data_dir, 1, env).await;
    Server {
        child: spawned.child,
        base_url: spawned.announced.trim_end_matches('/').to_owned(),
    }
}

#[tokio::test]
async fn kill_9_mid_upload_then_resume_keeps_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = create_token(dir.path()).await;
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

pub(crate) async fn create_token(data_dir: &std::path::Path) -> (String, String) {
    let (database, storage) = backend_for(data_dir).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
        .envs(backend_env(&database, &storage))
        .args(["tokens", "create", "--name", "crash", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        token["id"].as_str().unwrap().to_owned(),
        token["secret"].as_str().unwrap().to_owned(),
    )
}

/// Processes whose command line mentions `needle` (the ffmpeg children of a server).
pub fn processes_mentioning(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| {
            String::from_utf8_lossy(cmdline).contains(needle)
                && !String::from_utf8_lossy(cmdline).contains("openvod")
        })
        .count()
}

#[tokio::test]
async fn kill_9_during_transcode_is_taken_over_and_ready_once() {
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = create_token(dir.path()).await;
    let env = [("OPENVOD_JOBS__LEASE_SECS", "3")];
    let mut server = start_with(dir.path(), &env).await;
    let client = reqwest::Client::new();
    // Not streamable (MPEG-4 Part 2), so the whole ladder is encoded, which takes a few seconds.
    let clip = crate::support::slow_clip();
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
    let url = created["data"]["url"].as_str().unwrap();
    assert_eq!(
        client
            .put(url)
            .body(std::fs::read(&clip).unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let tmp = dir.path().join("tmp");
    let tmp_str = tmp.to_str().unwrap().to_owned();
    let upload_path = format!(
        "/video/v1/uploads/{}",
        created["data"]["id"].as_str().unwrap()
    );
    let asset_of = |base: String| {
        let (client, upload_path, id, secret) = (
            client.clone(),
            upload_path.clone(),
            id.clone(),
            secret.clone(),
        );
        async move {
            let upload = get_json(&client, &format!("{base}{upload_path}"), &id, &secret).await;
            match upload["data"]["asset_id"].as_str() {
                Some(asset_id) => get_json(
                    &client,
                    &format!("{base}/video/v1/assets/{asset_id}"),
                    &id,
                    &secret,
                )
                .await["data"]
                    .clone(),
                None => serde_json::Value::Null,
            }
        }
    };
    // Killed after `ready` (every rung listed) while the ladder is still being encoded.
    let base = server.base_url.clone();
    eventually("ready while ffmpeg encodes", || {
        let (asset_of, tmp_str, base) = (&asset_of, tmp_str.clone(), base.clone());
        async move {
            asset_of(base).await["status"] == "ready"
                && processes_mentioning(&format!("{tmp_str}/")) > 0
                && processes_mentioning("transcode-") > 0
        }
    })
    .await;
    let asset = asset_of(base.clone()).await;
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap().to_owned();
    let master = get_text(&client, &format!("{base}/{pid}.m3u8")).await;
    let children: Vec<String> = master
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(children.len(), 3, "every rung at ready:\n{master}");
    let mut playlists = Vec::new();
    for child in &children {
        let text = get_text(&client, &format!("{base}/{child}")).await;
        assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
        playlists.push(text);
    }
    let lowest = children.iter().position(|c| c.contains("/270p/")).unwrap();
    let first_segment = |base: String| {
        let (client, url) = (
            client.clone(),
            format!(
                "{base}/{}",
                children[lowest].replace("index.m3u8", "seg_00000.ts")
            ),
        );
        async move {
            let r = client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        }
    };
    let served_before = first_segment(base.clone()).await;
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    eventually("the orphaned ffmpeg exits with its parent", || {
        let tmp_str = tmp_str.clone();
        async move { processes_mentioning(&format!("{tmp_str}/")) == 0 }
    })
    .await;

    let server = start_with(dir.path(), &env).await;
    let upload: serde_json::Value = client
        .get(format!(
            "{}/video/v1/uploads/{}",
            server.base_url,
            created["data"]["id"].as_str().unwrap()
        ))
        .basic_auth(&id, Some(&secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let asset_url = format!(
        "{}/video/v1/assets/{}",
        server.base_url,
        upload["data"]["asset_id"].as_str().unwrap()
    );
    let get_asset = || {
        let (client, asset_url, id, secret) = (
            client.clone(),
            asset_url.clone(),
            id.clone(),
            secret.clone(),
        );
        async move {
            client
                .get(asset_url)
                .basic_auth(id, Some(secret))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    // Every rung was listed at ready; wait for the takeover to finish encoding them.
    eventually("the reclaimed transcode finishes", || {
        let get_asset = &get_asset;
        async move {
            get_asset().await["data"]["playback_ids"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        }
    })
    .await;
    let pid = get_asset().await["data"]["playback_ids"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let master_url = format!("{}/{pid}.m3u8", server.base_url);
    eventually("all three rungs are published", || {
        let (client, master_url) = (client.clone(), master_url.clone());
        async move {
            let r = client.get(master_url).send().await.unwrap();
            r.status() == 200 && r.text().await.unwrap().matches("#EXT-X-STREAM-INF").count() == 3
        }
    })
    .await;
    // Wait out the static/final publish, then check the outcome.
    let asset = get_asset().await;
    let pid = asset["data"]["playback_ids"][0]["id"].as_str().unwrap();
    let master = get_text(&client, &format!("{}/{pid}.m3u8", server.base_url)).await;
    assert_eq!(
        master.matches("#EXT-X-STREAM-INF").count(),
        3,
        "540p, 360p, 270p once each:\n{master}"
    );

    // The playlists published before the kill are unchanged, every segment they list exists,
    // and a segment served before the kill has the same bytes.
    for (child, before) in children.iter().zip(&playlists) {
        let url = format!("{}/{child}", server.base_url);
        let now = get_text(&client, &url).await;
        assert_eq!(&now, before, "{child} changed after ready");
        for segment in now.lines().filter(|l| l.ends_with(".ts")) {
            let r = client
                .get(url.replace("index.m3u8", segment))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{child} {segment}");
        }
    }
    assert!(
        first_segment(server.base_url.clone()).await == served_before,
        "a served segment changed"
    );

    // The job ran twice (killed, then taken over) and finished once; nothing is left in scratch space.
    let db = raw_db(&backend_for(dir.path()).await.0, dir.path()).await;
    let transcode_jobs = || {
        let db = db.clone();
        async move {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT state, attempts FROM jobs WHERE kind = 'transcode'",
            )
            .fetch_all(&db)
            .await
            .unwrap()
        }
    };
    eventually("the transcode job is recorded done", || {
        let transcode_jobs = &transcode_jobs;
        async move {
            transcode_jobs()
                .await
                .iter()
                .all(|(state, _)| state == "done")
        }
    })
    .await;
    assert_eq!(transcode_jobs().await, [("done".to_owned(), 2)]);
    let leftovers: Vec<_> = walk(&tmp);
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn kill_9_with_webhooks_pending_and_in_flight_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = create_token(dir.path()).await;
    // The receiver hangs on the first delivery (in flight when the server dies), then answers 200.
    let receiver = crate::webhooks::Receiver::start(vec![crate::webhooks::Reply::Hang(
        Duration::from_secs(30),
    )])
    .await;
    let config = dir.path().join("openvod.toml");
    std::fs::write(
        &config,
        format!(
            "[outbound]\nallow_private_addresses = true\n[webhooks]\ntimeout_secs = 2\nretry_schedule = [\"0s\", \"1s\", \"1s\", \"1s\", \"1s\"]\n[[webhooks.endpoints]]\nurl = \"{}\"\n",
            receiver.url
        ),
    )
    .unwrap();
    let env = [("OPENVOD_CONFIG", config.to_str().unwrap())];
    let mut server = start_with(dir.path(), &env).await;
    let client = reqwest::Client::new();
    let mut upload_ids = Vec::new();
    for _ in 0..3 {
        let created: serde_json::Value = client
            .post(format!("{}/video/v1/uploads", server.base_url))
            .basic_auth(&id, Some(&secret))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        upload_ids.push(created["data"]["id"].as_str().unwrap().to_owned());
    }
    eventually("a delivery is in flight", || {
        let receiver = receiver.clone();
        async move { !receiver.all().is_empty() }
    })
    .await;
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();

    let _server = start_with(dir.path(), &env).await;
    eventually("every event is delivered after the restart", || {
        let receiver = receiver.clone();
        let upload_ids = upload_ids.clone();
        async move {
            let delivered: Vec<String> = receiver
                .all()
                .iter()
                .filter(|r| r.status == 200)
                .map(|r| r.json()["object"]["id"].as_str().unwrap().to_owned())
                .collect();
            upload_ids.iter().all(|u| delivered.contains(u))
        }
    })
    .await;
    let ids: Vec<String> = receiver
        .all()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        3,
        "three events, each delivered at least once: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_bbb_render_is_taken_over_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (id, secret) = create_token(&data).await;
    let env = [
        ("OPENVOD_JOBS__LEASE_SECS", "3"),
        ("OPENVOD_OUTBOUND__ALLOW_PRIVATE_ADDRESSES", "true"),
    ];
    let mut server = start_with(&data, &env).await;
    let src = dir.path().join("src");
    crate::bbb::make_recording(
        &src,
        &[
            "--duration",
            "60",
            "--slides",
            "4",
            "--annotations",
            "8",
            "--cursor-every",
            "0.5",
        ],
    );
    let recordings = crate::bbb::serve_recordings(src, vec![]).await;
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{}/openvod/v1/bbb/renders", server.base_url))
        .basic_auth(&id, Some(&secret))
        .json(&json!({
            "source": format!("{recordings}/playback/presentation/2.3/{}", crate::bbb::RECORD_ID),
            "new_asset_settings": {"playback_policy": "public"},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let asset_id = created["data"]["id"].as_str().unwrap().to_owned();
    eventually("the render's ffmpeg runs", || async {
        processes_mentioning("bbb-job-") > 0
    })
    .await;
    server.child.start_kill().unwrap(); // SIGKILL
    server.child.wait().await.unwrap();
    eventually(
        "the render's ffmpeg processes exit with their parent",
        || async { processes_mentioning("bbb-job-") == 0 },
    )
    .await;

    let server = start_with(&data, &env).await;
    let render_url = format!("{}/openvod/v1/bbb/renders/{asset_id}", server.base_url);
    for _ in 0..600 {
        let render = get_json(&client, &render_url, &id, &secret).await;
        match render["data"]["status"].as_str() {
            Some("ready") => break,
            Some("preparing") => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("render ended {other:?}: {render}"),
        }
    }
    let db = raw_db(&backend_for(&data).await.0, &data).await;
    let jobs: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, attempts FROM jobs WHERE kind = 'render_bbb'")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        jobs,
        [("done".to_owned(), 2)],
        "killed once, then taken over"
    );
    let asset_url = format!("{}/video/v1/assets/{asset_id}", server.base_url);
    let asset = get_json(&client, &asset_url, &id, &secret).await;
    let duration = asset["data"]["duration"].as_f64().unwrap();
    assert!((duration - 60.0).abs() < 0.2, "{duration}");
    // The transcode that follows the render may still be using scratch space: wait for the
    // queue to drain (a loaded machine takes a while), then nothing may be left.
    for _ in 0..1800 {
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state <> 'done'")
            .fetch_one(&db)
            .await
            .unwrap();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("scratch space is empty", || async {
        walk(&data.join("tmp")).is_empty()
    })
    .await;
}

async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

async fn get_json(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    secret: &str,
) -> serde_json::Value {
    client
        .get(url)
        .basic_auth(id, Some(secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
