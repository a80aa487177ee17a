//! The crash soak: rounds of start the real server, drive chunked uploads, transcodes, BBB renders
//! and webhook deliveries, `kill -9` it at a random moment, restart; then the invariants of ARCHITECTURE.md:
//! every acknowledged upload byte is there, every asset reaches a terminal state exactly once,
//! every event is delivered at least once, no scratch file outlives its process, no job is stuck.
//!
//! `OPENVOD_TEST_SOAK_ROUNDS` rounds (3 by default; `scripts/crash-soak N` runs N). Every violation is
//! collected and printed with the count, then the test fails if there was any.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::crash::{create_token, start_with, Server};
use crate::support::clip_bytes;
use crate::webhooks::Receiver;

#[derive(Clone)]
struct Upload {
    /// The upload URL's path and query (the server's port changes at every start).
    path: String,
    data: Arc<Vec<u8>>,
    /// Bytes the server acknowledged (a 308 whose Range covered them, or the final 200).
    acked: usize,
    done: bool,
}

struct Soak {
    id: String,
    secret: String,
    client: reqwest::Client,
    uploads: Mutex<HashMap<String, Upload>>,
    /// The renders the server acknowledged (a 201), by id (the id of the asset they make).
    renders: Mutex<Vec<String>>,
}

impl Soak {
    /// Makes uploads and sends their chunks until the server stops answering.
    async fn drive(&self, base: &str, uploads: usize) {
        let data = Arc::new(clip_bytes());
        let chunk = data.len().div_ceil(4);
        for _ in 0..uploads {
            let Ok(r) = self
                .client
                .post(format!("{base}/video/v1/uploads"))
                .basic_auth(&self.id, Some(&self.secret))
                .json(&json!({"new_asset_settings": {"playback_policy": ["public"]}}))
                .send()
                .await
            else {
                return;
            };
            let Ok(created) = r.json::<Value>().await else {
                return;
            };
            let id = created["data"]["id"].as_str().unwrap().to_owned();
            let url = created["data"]["url"].as_str().unwrap().to_owned();
            let path = url.strip_prefix(base).unwrap().to_owned();
            self.uploads.lock().unwrap().insert(
                id.clone(),
                Upload {
                    path,
                    data: data.clone(),
                    acked: 0,
                    done: false,
                },
            );
            let mut start = 0;
            while start < data.len() {
                let end = (start + chunk).min(data.len());
                let sent = self
                    .client
                    .put(&url)
                    .header(
                        "content-range",
                        format!("bytes {}-{}/{}", start, end - 1, data.len()),
                    )
                    .body(data[start..end].to_vec())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 308 || r.status() == 200 => {
                        let mut uploads = self.uploads.lock().unwrap();
                        let upload = uploads.get_mut(&id).unwrap();
                        upload.acked = end;
                        upload.done = r.status() == 200;
                    }
                    _ => return,
                }
                start = end;
                // Paced like a client on a real network, so that kills land mid-upload too.
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 150)).await;
            }
        }
    }

    /// After a restart: checks that each unfinished upload holds at least what was acknowledged,
    /// then finishes it from what the server holds.
    async fn resume(&self, base: &str, violations: &mut Vec<String>) {
        let pending: Vec<(String, Upload)> = self
            .uploads
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, u)| !u.done)
            .map(|(id, u)| (id.clone(), u.clone()))
            .collect();
        for (id, upload) in pending {
            let url = format!("{base}{}", upload.path);
            let total = upload.data.len();
            let probe = self
                .client
                .put(&url)
                .header("content-range", format!("bytes */{total}"))
                .send()
                .await
                .unwrap();
            let held = match probe.status().as_u16() {
                200 => total,
                308 => probe
                    .headers()
                    .get("range")
                    .map(|r| {
                        let r = r.to_str().unwrap();
                        r.rsplit('-').next().unwrap().parse::<usize>().unwrap() + 1
                    })
                    .unwrap_or(0),
                other => {
                    violations.push(format!("upload {id}: probe answered {other}"));
                    continue;
                }
            };
            if held < upload.acked {
                violations.push(format!(
                    "upload {id}: {} bytes acknowledged, {held} held after the crash",
                    upload.acked
                ));
            }
            if held < total {
                let r = self
                    .client
                    .put(&url)
                    .header(
                        "content-range",
                        format!("bytes {held}-{}/{total}", total - 1),
                    )
                    .body(upload.data[held..].to_vec())
                    .send()
                    .await
                    .unwrap();
                if r.status() != 200 {
                    violations.push(format!("upload {id}: the rest answered {}", r.status()));
                    continue;
                }
            }
            let mut uploads = self.uploads.lock().unwrap();
            let upload = uploads.get_mut(&id).unwrap();
            upload.acked = total;
            upload.done = true;
        }
    }

    /// Asks for a render of the BBB recording at `source`; remembers it if acknowledged.
    async fn render(&self, base: &str, source: &str) {
        let Ok(r) = self
            .client
            .post(format!("{base}/openvod/v1/bbb/renders"))
            .basic_auth(&self.id, Some(&self.secret))
            .json(&json!({"source": source, "new_asset_settings": {"playback_policy": ["public"]}}))
            .send()
            .await
        else {
            return;
        };
        if r.status() != reqwest::StatusCode::CREATED {
            return;
        }
        if let Ok(created) = r.json::<Value>().await {
            let id = created["data"]["id"].as_str().unwrap().to_owned();
            self.renders.lock().unwrap().push(id);
        }
    }

    async fn api(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .client
            .request(method, format!("{base}{path}"))
            .basic_auth(&self.id, Some(&self.secret));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().json().await.unwrap()
    }
}

fn queue_depth(metrics: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("queue_depth"))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Files under `dir` (recursively).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kill_9_rounds_keep_every_invariant() {
    let rounds: usize = std::env::var("OPENVOD_TEST_SOAK_ROUNDS")
        .ok()
        .map(|r| r.parse().expect("OPENVOD_TEST_SOAK_ROUNDS is a number"))
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = create_token(dir.path()).await;
    let receiver = Receiver::start(Vec::new()).await;
    let config = dir.path().join("openvod.toml");
    std::fs::write(
        &config,
        format!(
            "[outbound]\nallow_private_addresses = true\n[jobs]\nlease_secs = 4\n\
             [webhooks]\ntimeout_secs = 2\nretry_schedule = [\"0s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\"]\n\
             [[webhooks.endpoints]]\nurl = \"{}\"\n",
            receiver.url
        ),
    )
    .unwrap();
    let env = [("OPENVOD_CONFIG", config.to_str().unwrap())];
    let soak = Arc::new(Soak {
        id,
        secret,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        uploads: Mutex::new(HashMap::new()),
        renders: Mutex::new(Vec::new()),
    });
    // A short synthetic BBB recording, one render of it asked for in every round.
    let recording = dir.path().join("recording");
    crate::bbb::make_recording(&recording, &["--duration", "4", "--slides", "2"]);
    let recordings = crate::bbb::serve_recordings(recording, vec![]).await;
    let source = format!(
        "{recordings}/playback/presentation/2.3/{}",
        crate::bbb::RECORD_ID
    );
    let mut violations = Vec::new();
    let started = Instant::now();
    let mut server: Server = start_with(dir.path(), &env).await;
    for round in 0..rounds {
        let base = server.base_url.clone();
        soak.resume(&base, &mut violations).await;
        let mut drivers: Vec<_> = (0..3)
            .map(|_| {
                let (soak, base) = (soak.clone(), base.clone());
                tokio::spawn(async move { soak.drive(&base, 4).await })
            })
            .collect();
        drivers.push({
            let (soak, base, source) = (soak.clone(), base.clone(), source.clone());
            tokio::spawn(async move { soak.render(&base, &source).await })
        });
        // Somewhere in the middle of uploads, encodes and deliveries.
        let moment = Duration::from_millis(200 + rand::random::<u64>() % 3000);
        tokio::time::sleep(moment).await;
        server.child.start_kill().unwrap(); // SIGKILL
        server.child.wait().await.unwrap();
        for driver in drivers {
            let _ = driver.await;
        }
        let unfinished = soak
            .uploads
            .lock()
            .unwrap()
            .values()
            .filter(|u| !u.done)
            .count();
        println!(
            "soak round {}: killed after {moment:?} with {unfinished} uploads unfinished",
            round + 1
        );
        server = start_with(dir.path(), &env).await;
    }
    let base = server.base_url.clone();
    soak.resume(&base, &mut violations).await;

    // Everything settles: every upload's asset terminal, nothing queued, every event delivered.
    let uploads: Vec<(String, Upload)> = soak
        .uploads
        .lock()
        .unwrap()
        .iter()
        .map(|(id, u)| (id.clone(), u.clone()))
        .collect();
    let renders = soak.renders.lock().unwrap().clone();
    // Many rounds leave a backlog that a slow machine works off for minutes: the wait ends when
    // everything settled, or when nothing has progressed for two minutes (something is stuck).
    let mut assets = HashMap::new();
    let (mut terminal, mut last_progress) = (0, Instant::now());
    loop {
        let mut settled = true;
        for (upload_id, _) in &uploads {
            let upload = soak
                .api(
                    &base,
                    reqwest::Method::GET,
                    &format!("/video/v1/uploads/{upload_id}"),
                    None,
                )
                .await;
            let Some(asset_id) = upload["data"]["asset_id"].as_str() else {
                settled = false;
                continue;
            };
            assets.insert(asset_id.to_owned(), String::new());
        }
        assets.extend(renders.iter().map(|id| (id.clone(), String::new())));
        for (asset_id, status) in assets.iter_mut() {
            let asset = soak
                .api(
                    &base,
                    reqwest::Method::GET,
                    &format!("/video/v1/assets/{asset_id}"),
                    None,
                )
                .await;
            *status = asset["data"]["status"].as_str().unwrap_or("").to_owned();
            settled &= status == "ready" || status == "errored";
        }
        let metrics = server_metrics(&soak, &base).await;
        settled &= queue_depth(&metrics) == Some(0.0);
        let now_terminal = assets
            .values()
            .filter(|s| *s == "ready" || *s == "errored")
            .count();
        if now_terminal > terminal {
            (terminal, last_progress) = (now_terminal, Instant::now());
        }
        if settled || last_progress.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (upload_id, upload) in &uploads {
        if !upload.done {
            violations.push(format!("upload {upload_id} never finished"));
        }
    }
    for (asset_id, status) in &assets {
        if status != "ready" {
            violations.push(format!("asset {asset_id} ended {status:?}, not ready"));
        }
    }
    if queue_depth(&server_metrics(&soak, &base).await) != Some(0.0) {
        violations.push("jobs are still queued or running after the soak settled".to_owned());
    }
    // Exact bytes for every upload.
    for (upload_id, upload) in &uploads {
        let Some(asset_id) = soak
            .api(
                &base,
                reqwest::Method::GET,
                &format!("/video/v1/uploads/{upload_id}"),
                None,
            )
            .await["data"]["asset_id"]
            .as_str()
            .map(str::to_owned)
        else {
            continue;
        };
        let master = soak
            .api(
                &base,
                reqwest::Method::PUT,
                &format!("/video/v1/assets/{asset_id}/master-access"),
                Some(json!({"master_access": "temporary"})),
            )
            .await;
        let Some(url) = master["data"]["master"]["url"].as_str() else {
            violations.push(format!("asset {asset_id}: no master: {master}"));
            continue;
        };
        let bytes = soak
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        if bytes.as_ref() != upload.data.as_slice() {
            violations.push(format!("asset {asset_id}: the original's bytes differ"));
        }
    }
    // Every asset's events: created and ready delivered, ready exactly once (one event id).
    // (Again until done or a minute without a new delivery.)
    let (mut delivered, mut last_delivery) = (0, Instant::now());
    let by_asset = loop {
        let mut by_asset: HashMap<String, HashMap<String, HashSet<String>>> = HashMap::new();
        for r in receiver.all().iter().filter(|r| r.status == 200) {
            let event = r.json();
            let (Some(kind), Some(object), Some(id)) = (
                event["type"].as_str(),
                event["object"]["id"].as_str(),
                event["id"].as_str(),
            ) else {
                continue;
            };
            by_asset
                .entry(object.to_owned())
                .or_default()
                .entry(kind.to_owned())
                .or_default()
                .insert(id.to_owned());
        }
        let complete = assets.keys().all(|a| {
            by_asset.get(a).is_some_and(|kinds| {
                kinds.contains_key("video.asset.created") && kinds.contains_key("video.asset.ready")
            })
        });
        let now_delivered = receiver.all().len();
        if now_delivered > delivered {
            (delivered, last_delivery) = (now_delivered, Instant::now());
        }
        if complete || last_delivery.elapsed() > Duration::from_secs(60) {
            break by_asset;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for asset_id in assets.keys() {
        let kinds = by_asset.get(asset_id).cloned().unwrap_or_default();
        for kind in ["video.asset.created", "video.asset.ready"] {
            match kinds.get(kind).map(HashSet::len) {
                None => violations.push(format!("asset {asset_id}: {kind} never delivered")),
                Some(1) => {}
                Some(n) => {
                    violations.push(format!("asset {asset_id}: {n} different {kind} events"))
                }
            }
        }
    }
    // No scratch file of a dead process, no staged bytes of a finished upload. An ffmpeg child of a
    // killed server may write until its next progress write fails, so the server gets two of its
    // maintenance rounds (2 s each here) to sweep what it wrote.
    let live_scratch = dir
        .path()
        .join("tmp")
        .join(server.child.id().unwrap().to_string());
    let deadline = Instant::now() + Duration::from_secs(5);
    let orphans = loop {
        let orphans: Vec<_> = files_under(&dir.path().join("tmp"))
            .into_iter()
            .filter(|file| !file.starts_with(&live_scratch))
            .collect();
        if orphans.is_empty() || Instant::now() > deadline {
            break orphans;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for file in orphans {
        violations.push(format!("orphaned scratch file {}", file.display()));
    }
    for file in files_under(&dir.path().join("staging")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if uploads
            .iter()
            .any(|(id, u)| u.done && name.starts_with(id.as_str()))
        {
            violations.push(format!(
                "staged bytes left for a finished upload: {}",
                file.display()
            ));
        }
    }
    println!(
        "crash soak: {rounds} rounds, {} uploads, {} BBB renders, {} assets, {} webhook deliveries, {} invariant violations in {:.0} s",
        uploads.len(),
        renders.len(),
        assets.len(),
        receiver.all().len(),
        violations.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        violations.is_empty(),
        "invariant violations:\n{}",
        violations.join("\n")
    );
}

async fn server_metrics(soak: &Soak, base: &str) -> String {
    soak.client
        .get(format!("{base}/metrics"))
        .basic_auth(&soak.id, Some(&soak.secret))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
