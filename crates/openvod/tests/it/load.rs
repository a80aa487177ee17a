//! Load: a thousand concurrent chunked uploads and two hundred players against one server. Over
//! capacity the only answer allowed is 429 with `Retry-After` (the clients back off and retry,
//! as UpChunk and tus clients do); never a 5xx or a dropped connection, and every upload's bytes
//! are exact. Nothing here is timed: the figures it prints are what `bench/load` reports.
//!
//! `OPENVOD_TEST_LOAD_UPLOADS`, `OPENVOD_TEST_LOAD_PLAYERS` and `OPENVOD_TEST_LOAD_SECS` set the sizes;
//! `OPENVOD_TEST_LOAD_URL` with `OPENVOD_TEST_LOAD_TOKEN=ID:SECRET` points it at a running server instead of
//! one it starts (how `bench/load` measures a release build). The server it starts is an `openvod
//! serve` process of its own, so that its peak memory is its alone: it must stay under
//! `MAX_SERVER_RSS_MIB` (memory, not time, so the bound does not depend on the machine's speed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{clip, TestApp};

/// The server's peak memory allowed through the run (a debug build; a release build held 91 MiB
/// at `bench/load`'s sizes). What it bounds: memory growing with the number of uploads, players
/// or bytes in flight.
const MAX_SERVER_RSS_MIB: f64 = 300.0;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

/// The server under load and how to call it.
struct Target {
    base: String,
    id: String,
    secret: String,
    client: reqwest::Client,
}

#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    too_many: AtomicU64,
    chunk_latencies: Mutex<Vec<Duration>>,
}

impl Target {
    /// Sends what `make` builds until it is not a 429, sleeping the `Retry-After` it is given
    /// (spread a little so that refused clients do not all come back at once).
    async fn send(
        &self,
        tally: &Tally,
        what: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> reqwest::Response {
        loop {
            let started = Instant::now();
            let response = make()
                .send()
                .await
                .unwrap_or_else(|e| panic!("{what}: the connection failed: {e:?}"));
            tally.answered.fetch_add(1, Ordering::Relaxed);
            let status = response.status();
            if status == 429 {
                tally.too_many.fetch_add(1, Ordering::Relaxed);
                let secs: f64 = response
                    .headers()
                    .get("retry-after")
                    .unwrap_or_else(|| panic!("{what}: a 429 without Retry-After"))
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let jitter = 0.25 + rand::random::<f64>() * 0.75;
                tokio::time::sleep(Duration::from_secs_f64(secs * jitter)).await;
                continue;
            }
            assert!(
                !status.is_server_error(),
                "{what}: {status} {}",
                response.text().await.unwrap_or_default()
            );
            if what == "chunk" {
                tally
                    .chunk_latencies
                    .lock()
                    .unwrap()
                    .push(started.elapsed());
            }
            return response;
        }
    }

    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.id, Some(&self.secret))
    }
}

/// One upload of `data` in `chunk`-byte pieces; returns the upload id.
async fn upload(target: &Target, tally: &Tally, data: &[u8], chunk: usize) -> String {
    let r = target
        .send(tally, "create upload", || {
            target
                .api(reqwest::Method::POST, "/video/v1/uploads")
                .json(&json!({"new_asset_settings": {"playback_policy": ["public"]}}))
        })
        .await;
    assert_eq!(r.status(), 201);
    let upload: Value = r.json().await.unwrap();
    let url = upload["data"]["url"].as_str().unwrap().to_owned();
    let mut start = 0;
    while start < data.len() {
        let end = (start + chunk).min(data.len());
        let r = target
            .send(tally, "chunk", || {
                target
                    .client
                    .put(&url)
                    .header(
                        "content-range",
                        format!("bytes {}-{}/{}", start, end - 1, data.len()),
                    )
                    .body(data[start..end].to_vec())
            })
            .await;
        let expected = if end == data.len() { 200 } else { 308 };
        assert_eq!(r.status(), expected, "chunk {start}-{end}");
        start = end;
    }
    upload["data"]["id"].as_str().unwrap().to_owned()
}

/// The original bytes of the asset made from `upload_id`, through the API.
async fn master_bytes(target: &Target, tally: &Tally, upload_id: &str) -> Vec<u8> {
    let r = target
        .send(tally, "get upload", || {
            target.api(
                reqwest::Method::GET,
                &format!("/video/v1/uploads/{upload_id}"),
            )
        })
        .await;
    let upload: Value = r.json().await.unwrap();
    let asset_id = upload["data"]["asset_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a finished upload has an asset: {upload}"))
        .to_owned();
    let r = target
        .send(tally, "master access", || {
            target
                .api(
                    reqwest::Method::PUT,
                    &format!("/video/v1/assets/{asset_id}/master-access"),
                )
                .json(&json!({"master_access": "temporary"}))
        })
        .await;
    let asset: Value = r.json().await.unwrap();
    let url = asset["data"]["master"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{asset}"))
        .to_owned();
    let r = target
        .send(tally, "master", || target.client.get(&url))
        .await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

/// The data of upload number `i`: distinct per upload, so that a byte landing in another
/// upload's file shows.
fn payload(i: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|j| ((i * 31 + j * 7 + j / 251) % 256) as u8)
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Plays `pid` (master, one media playlist, its segments over and over) until `until`; returns
/// how many segments it fetched.
async fn play(target: &Target, tally: &Tally, pid: &str, until: Instant) -> u64 {
    let base = url::Url::parse(&format!("{}/", target.base)).unwrap();
    let master_url = base.join(&format!("{pid}.m3u8")).unwrap();
    let master = target
        .send(tally, "master playlist", || {
            target.client.get(master_url.clone())
        })
        .await;
    assert_eq!(master.status(), 200);
    let master = master.text().await.unwrap();
    let variant = master.lines().find(|l| !l.starts_with('#')).unwrap();
    let media_url = master_url.join(variant).unwrap();
    let media = target
        .send(tally, "media playlist", || {
            target.client.get(media_url.clone())
        })
        .await;
    assert_eq!(media.status(), 200);
    let media = media.text().await.unwrap();
    let segments: Vec<url::Url> = media
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| media_url.join(l).unwrap())
        .collect();
    assert!(!segments.is_empty(), "{media}");
    let mut sizes = vec![None; segments.len()];
    let mut fetched = 0;
    'playing: loop {
        for (i, segment) in segments.iter().enumerate() {
            // At least one segment each, however long the playlists took under the upload load
            // (a 3 s window on a loaded 2-core machine was sometimes spent before the first one):
            // the test counts errors, not speed.
            if fetched > 0 && Instant::now() >= until {
                break 'playing;
            }
            let r = target
                .send(tally, "segment", || target.client.get(segment.clone()))
                .await;
            assert_eq!(r.status(), 200, "{segment}");
            let len = r.bytes().await.unwrap().len();
            assert!(len > 0);
            // The same segment is the same bytes every time it is served.
            assert_eq!(*sizes[i].get_or_insert(len), len, "{segment}");
            fetched += 1;
        }
    }
    fetched
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_uploads_and_two_hundred_players_get_no_error_beyond_the_limits() {
    let uploads = env_or("OPENVOD_TEST_LOAD_UPLOADS", 1000);
    let players = env_or("OPENVOD_TEST_LOAD_PLAYERS", 200);
    let secs = env_or("OPENVOD_TEST_LOAD_SECS", 3);
    let size = env_or("OPENVOD_TEST_LOAD_UPLOAD_BYTES", 48 * 1024) as usize;
    let chunk = size.div_ceil(3);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .unwrap();
    // A server process of its own (on an in-process app's database and folders: its token, and
    // its worker for the clip to play) unless pointed at a running server.
    let (_app, server, target) = match std::env::var("OPENVOD_TEST_LOAD_URL") {
        Ok(base) => {
            let token = std::env::var("OPENVOD_TEST_LOAD_TOKEN")
                .expect("OPENVOD_TEST_LOAD_TOKEN=ID:SECRET");
            let (id, secret) = token.split_once(':').expect("ID:SECRET");
            let target = Target {
                base: base.trim_end_matches('/').to_owned(),
                id: id.to_owned(),
                secret: secret.to_owned(),
                client,
            };
            (None, None, target)
        }
        Err(_) => {
            let app = TestApp::spawn().await;
            // Fewer upload slots than uploads, so that the limit is reached and answered.
            let server = crate::support::serve_process(
                &app,
                &[("OPENVOD_LIMITS__CONCURRENT_UPLOADS", "64")],
            )
            .await;
            let target = Target {
                base: server.announced.trim_end_matches('/').to_owned(),
                id: app.token_id.clone(),
                secret: app.token_secret.clone(),
                client,
            };
            (Some(app), Some(server), target)
        }
    };
    let target = Arc::new(target);
    let tally = Arc::new(Tally::default());

    // Something to play: one clip, encoded.
    let played = {
        let data = std::fs::read(clip()).unwrap();
        let upload_id = upload(&target, &tally, &data, data.len()).await;
        if let Some(app) = &_app {
            app.run_jobs_until_idle().await;
        }
        let r = target
            .send(&tally, "get upload", || {
                target.api(
                    reqwest::Method::GET,
                    &format!("/video/v1/uploads/{upload_id}"),
                )
            })
            .await;
        let upload: Value = r.json().await.unwrap();
        let asset_id = upload["data"]["asset_id"].as_str().unwrap().to_owned();
        let mut asset = Value::Null;
        for _ in 0..600 {
            let r = target
                .send(&tally, "get asset", || {
                    target.api(
                        reqwest::Method::GET,
                        &format!("/video/v1/assets/{asset_id}"),
                    )
                })
                .await;
            asset = r.json().await.unwrap();
            if asset["data"]["status"] == "ready" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(asset["data"]["status"], "ready", "{asset}");
        asset["data"]["playback_ids"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut playing = Vec::new();
    for _ in 0..players {
        let (target, tally, pid) = (target.clone(), tally.clone(), played.clone());
        playing.push(tokio::spawn(async move {
            play(&target, &tally, &pid, until).await
        }));
    }
    let mut uploading = Vec::new();
    for i in 0..uploads {
        let (target, tally) = (target.clone(), tally.clone());
        uploading.push(tokio::spawn(async move {
            let data = payload(i, size);
            let id = upload(&target, &tally, &data, chunk).await;
            (id, data)
        }));
    }
    let mut done = Vec::new();
    for task in uploading {
        done.push(task.await.expect("an upload task panicked"));
    }
    let upload_secs = started.elapsed().as_secs_f64();
    let mut segments = 0;
    for task in playing {
        segments += task.await.expect("a player panicked");
    }
    let play_secs = started.elapsed().as_secs_f64().max(secs as f64);
    let refused = tally.too_many.load(Ordering::Relaxed);

    // Every upload's bytes, exact.
    for (id, data) in &done {
        let stored = master_bytes(&target, &tally, id).await;
        assert!(stored == *data, "upload {id}: the stored bytes differ");
    }
    let mut latencies = tally.chunk_latencies.lock().unwrap().clone();
    latencies.sort();
    println!(
        "load: {uploads} concurrent uploads of {size} bytes in {secs_u:.1} s ({ups:.0} uploads/s), \
         chunk latency p50 {p50:.1} ms p99 {p99:.1} ms, {refused} answers 429; \
         {players} players fetched {segments} segments ({sps:.0}/s)",
        secs_u = upload_secs,
        ups = uploads as f64 / upload_secs,
        p50 = percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        p99 = percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        sps = segments as f64 / play_secs,
    );
    assert!(segments >= players, "every player got at least one segment");
    if let Some(server) = &server {
        let peak = crate::support::peak_rss_mib(server.child.id().expect("the server runs"));
        println!("load: server peak RSS {peak:.1} MiB");
        assert!(
            peak < MAX_SERVER_RSS_MIB,
            "the server held {peak:.1} MiB (at most {MAX_SERVER_RSS_MIB} MiB)"
        );
    }
    if _app.is_some() && uploads > 64 {
        assert!(
            refused > 0,
            "64 upload slots for {uploads} uploads: some had to wait"
        );
    }
}
