//! Processes on one PostgreSQL database and one S3 bucket that share no folder, as on several
//! machines: a server and two `openvod worker`s share out the jobs, and a worker killed with -9 in
//! the middle of a transcode loses only its lease.

use std::sync::{Arc, Mutex};

use openvod::config::DatabaseConfig;

use crate::crash::processes_mentioning;
use crate::support::{backend_env, clip, eventually, raw_db, slow_clip, test_bucket, TestApp};

/// Starts `command` with its log (stderr) collected line by line.
fn spawn_logged(
    command: &mut tokio::process::Command,
) -> (tokio::process::Child, Arc<Mutex<Vec<String>>>) {
    use tokio::io::AsyncBufReadExt;
    let mut child = command
        .env("OPENVOD_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    (child, log)
}

/// An `openvod worker` process with a data folder of its own, its log lines collected.
struct Worker {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
    log: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    async fn start(app: &TestApp) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let (child, log) = spawn_logged(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
                .env_remove("OPENVOD_CONFIG")
                .envs(backend_env(&app.config.database, &app.config.storage))
                .env("OPENVOD_PUBLIC_URL", &app.base_url)
                .env("OPENVOD_JOBS__LEASE_SECS", "3")
                .args(["worker", "--workers", "1", "--data-dir"])
                .arg(dir.path()),
        );
        Worker { child, dir, log }
    }

    fn jobs_done(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains("job done")).count()
    }

    /// Whether an ffmpeg of this worker (writing in its scratch folder) is running.
    fn encoding(&self) -> bool {
        processes_mentioning(&format!("{}/tmp/", self.dir.path().display())) > 0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_without_a_shared_folder_share_jobs_and_survive_a_kill_9() {
    let database = DatabaseConfig {
        url: Some(openvod::db::postgres::scratch_database_url().await),
        ..Default::default()
    };
    let storage = test_bucket(&format!("workers-{}", openvod::id::random_id()));
    // The API server runs no jobs itself.
    let app = TestApp::spawn_with(0, move |c| (c.database, c.storage) = (database, storage)).await;
    let mut workers = [Worker::start(&app).await, Worker::start(&app).await];

    let mut assets = Vec::new();
    for _ in 0..4 {
        assets.push(
            app.upload_file(clip(), serde_json::json!({"playback_policy": "public"}))
                .await,
        );
    }
    for id in &assets {
        eventually("every asset is ready", || async {
            app.get_asset(id).await["status"] == "ready"
        })
        .await;
    }
    let done = workers.each_ref().map(Worker::jobs_done);
    assert!(
        done.iter().all(|&n| n > 0),
        "both workers ran jobs: {done:?}"
    );

    // A long transcode; the worker encoding it is killed with -9.
    let slow = app
        .upload_file(
            &slow_clip(),
            serde_json::json!({"playback_policy": "public"}),
        )
        .await;
    eventually("a worker encodes the slow clip", || async {
        workers.iter().any(Worker::encoding)
    })
    .await;
    let victim = workers.iter().position(Worker::encoding).unwrap();
    workers[victim].child.start_kill().unwrap();
    workers[victim].child.wait().await.unwrap();
    eventually("the other worker takes the job over", || async {
        let asset = app.get_asset(&slow).await;
        assert_ne!(asset["status"], "errored", "{asset}");
        asset["status"] == "ready"
    })
    .await;
    // Ready comes with the first rung; the job goes on with the others.
    let db = raw_db(&app.config.database, &app.config.data_dir).await;
    let transcodes = || async {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT state, attempts FROM jobs WHERE kind = 'transcode' AND payload LIKE $1",
        )
        .bind(format!("%{slow}%"))
        .fetch_all(&db)
        .await
        .unwrap()
    };
    eventually("the transcode job ends", || async {
        transcodes()
            .await
            .iter()
            .all(|(state, _)| state != "running")
    })
    .await;
    assert_eq!(
        transcodes().await,
        [("done".to_owned(), 2)],
        "killed once, taken over, finished once"
    );
    let survivor = &workers[1 - victim];
    assert!(
        survivor.jobs_done() > done[1 - victim],
        "the survivor finished it"
    );
}

/// An `openvod worker --server URL --token ID:SECRET`: no database, no store, only HTTP.
fn remote_worker(
    app: &TestApp,
    dir: &std::path::Path,
) -> (tokio::process::Child, Arc<Mutex<Vec<String>>>) {
    remote_worker_of(&app.base_url, app, dir)
}

/// A remote worker of the server at `server` (which shares `app`'s database and tokens).
fn remote_worker_of(
    server: &str,
    app: &TestApp,
    dir: &std::path::Path,
) -> (tokio::process::Child, Arc<Mutex<Vec<String>>>) {
    spawn_logged(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
            .env_remove("OPENVOD_CONFIG")
            .env(
                "OPENVOD_WORKER_TOKEN",
                format!("{}:{}", app.token_id, app.token_secret),
            )
            .args(["worker", "--workers", "1", "--server", server, "--data-dir"])
            .arg(dir),
    )
}

/// Waits up to `secs` for `check`.
async fn within<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..secs * 10 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// With `[media] parallel_min_secs = 1`, a short input is encoded as one piece, so a remote
/// worker does all of the ladder's encoding (README's recipe); the asset plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_workers_encode_short_inputs_too_when_every_input_is_split() {
    let app = TestApp::spawn_with(1, |c| {
        c.media.parallel_min_secs = 1;
        c.media.x264_preset = "ultrafast".into();
        c.jobs.remote_only = vec!["transcode_piece".into()];
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (_worker, log) = remote_worker(&app, dir.path());
    let db = raw_db(&app.config.database, &app.config.data_dir).await;
    let input = crate::support::mpeg4_clip("320x180", 25, 6);
    let asset_id = app
        .upload_file(&input, serde_json::json!({"playback_policy": "public"}))
        .await;
    within(120, "the one piece is done", || async {
        let states: Vec<String> = sqlx::query_scalar(
            "SELECT state FROM jobs WHERE kind = 'transcode_piece' AND payload LIKE $1",
        )
        .bind(format!("%{asset_id}%"))
        .fetch_all(&db)
        .await
        .unwrap();
        states == ["done"]
    })
    .await;
    within(10, "the worker logs it", || async {
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("remote job done"))
    })
    .await;
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(asset["status"], "ready", "{asset}");
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let master_url = url::Url::parse(&format!("{}/{pid}.m3u8", app.base_url)).unwrap();
    let master = app.fetch(master_url.as_str()).await.text().await.unwrap();
    let children: Vec<&str> = master.lines().filter(|l| l.ends_with(".m3u8")).collect();
    assert!(!children.is_empty(), "{master}");
    for child in children {
        let child = master_url.join(child).unwrap();
        let playlist = app.fetch(child.as_str()).await.text().await.unwrap();
        let segments: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
        assert_eq!(segments.len(), 2, "{playlist}");
        for segment in segments {
            let url = child.join(segment).unwrap();
            assert_eq!(app.fetch(url.as_str()).await.status(), 200, "{url}");
        }
    }
}

/// The pieces of a long input go to two remote workers over HTTP (the server's own worker
/// leaves them); the asset plays. One remote worker killed with -9 mid-piece loses only its
/// lease: the other takes the piece over, and a late call with the lost lease is refused (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_workers_take_pieces_over_http_and_a_killed_one_loses_only_its_lease() {
    let app = TestApp::spawn_with(1, |c| {
        c.media.parallel_min_secs = 20;
        c.media.piece_secs = 8;
        c.media.x264_preset = "ultrafast".into();
        c.jobs.remote_only = vec!["transcode_piece".into()];
        c.jobs.lease_secs = 3;
    })
    .await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut workers: Vec<_> = dirs.iter().map(|d| remote_worker(&app, d.path())).collect();
    let db = raw_db(&app.config.database, &app.config.data_dir).await;
    let pieces_done = |asset: String| {
        let db = db.clone();
        async move {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT state, attempts FROM jobs WHERE kind = 'transcode_piece' AND payload LIKE $1 ORDER BY id",
            )
            .bind(format!("%{asset}%"))
            .fetch_all(&db)
            .await
            .unwrap()
        }
    };

    let input = crate::support::mpeg4_clip("480x270", 25, 30);
    let first = app
        .upload_file(&input, serde_json::json!({"playback_policy": "public"}))
        .await;
    let done_per_worker = |workers: &[(tokio::process::Child, Arc<Mutex<Vec<String>>>)]| {
        workers
            .iter()
            .map(|(_, log)| {
                log.lock()
                    .unwrap()
                    .iter()
                    .filter(|l| l.contains("remote job done"))
                    .count()
            })
            .collect::<Vec<usize>>()
    };
    within(120, "the pieces are done", || async {
        let jobs = pieces_done(first.clone()).await;
        jobs.len() == 4 && jobs.iter().all(|(state, _)| state == "done")
    })
    .await;
    // A worker logs a job once the server has recorded it done: wait for the last line too.
    within(10, "the workers log their pieces", || async {
        done_per_worker(&workers).iter().sum::<usize>() >= 4
    })
    .await;
    let done = done_per_worker(&workers);
    assert_eq!(
        done.iter().sum::<usize>(),
        4,
        "every piece ran remotely: {done:?}"
    );
    assert!(
        done.iter().all(|&n| n > 0),
        "both workers took pieces: {done:?}"
    );
    let asset = app.get_asset(&first).await;
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let master_url = url::Url::parse(&format!("{}/{pid}.m3u8", app.base_url)).unwrap();
    let master = app.fetch(master_url.as_str()).await.text().await.unwrap();
    let child = master_url
        .join(master.lines().find(|l| l.ends_with(".m3u8")).unwrap())
        .unwrap();
    let playlist = app.fetch(child.as_str()).await.text().await.unwrap();
    let segments: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
    assert_eq!(segments.len(), 8, "{playlist}");
    for segment in segments {
        let url = child.join(segment).unwrap();
        assert_eq!(app.fetch(url.as_str()).await.status(), 200, "{url}");
    }

    // Kill -9 a remote worker in the middle of a piece (a larger picture: pieces take longer).
    let input = crate::support::mpeg4_clip("960x540", 25, 30);
    let second = app
        .upload_file(
            &input,
            serde_json::json!({"playback_policy": "public", "passthrough": "2"}),
        )
        .await;
    let encoding =
        |i: usize| processes_mentioning(&format!("{}/tmp/", dirs[i].path().display())) > 0;
    within(60, "a remote worker encodes a piece", || async {
        encoding(0) || encoding(1)
    })
    .await;
    let victim = if encoding(0) { 0 } else { 1 };
    // The leases in force at the kill: the victim's is among them.
    let leases: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, lease_token FROM jobs WHERE kind = 'transcode_piece' AND state = 'running' AND lease_token IS NOT NULL",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(!leases.is_empty(), "a piece is leased while it encodes");
    workers[victim].0.start_kill().unwrap();
    workers[victim].0.wait().await.unwrap();
    within(120, "the other worker finishes every piece", || async {
        let jobs = pieces_done(second.clone()).await;
        jobs.len() == 4 && jobs.iter().all(|(state, _)| state == "done")
    })
    .await;
    let jobs = pieces_done(second.clone()).await;
    assert!(
        jobs.iter().any(|(_, attempts)| *attempts == 2),
        "the killed piece was taken over: {jobs:?}"
    );
    // A late call under a lease that was taken over (or whose job is finished) is fenced off,
    // and stores nothing.
    for (id, lease) in &leases {
        let late = app
            .client
            .put(format!(
                "{}/openvod/v1/worker-jobs/{id}/files/270p/seg_00000.ts",
                app.base_url
            ))
            .basic_auth(&app.token_id, Some(&app.token_secret))
            .header("x-openvod-lease", lease)
            .body("not a segment")
            .send()
            .await
            .unwrap();
        assert_eq!(late.status(), 409, "job {id} under its old lease");
    }
    within(60, "the second asset is ready", || async {
        app.get_asset(&second).await["status"] == "ready"
    })
    .await;
    let pid = app.get_asset(&second).await["playback_ids"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let master_url = url::Url::parse(&format!("{}/{pid}.m3u8", app.base_url)).unwrap();
    let master = app.fetch(master_url.as_str()).await.text().await.unwrap();
    let child = master_url
        .join(master.lines().find(|l| l.ends_with(".m3u8")).unwrap())
        .unwrap();
    let playlist = app.fetch(child.as_str()).await.text().await.unwrap();
    for segment in playlist.lines().filter(|l| l.ends_with(".ts")) {
        let body = app
            .fetch(child.join(segment).unwrap().as_str())
            .await
            .bytes()
            .await
            .unwrap();
        assert_ne!(&body[..], b"not a segment", "a fenced write never lands");
    }
}

/// A second `openvod serve` process on `app`'s database, store and data folder (so it shares the
/// staging folder, as API servers behind a load balancer share it over NFS).
async fn second_server(app: &TestApp) -> crate::support::Spawned {
    crate::support::serve_process(
        app,
        &[
            ("OPENVOD_OUTBOUND__ALLOW_PRIVATE_ADDRESSES", "true"),
            ("OPENVOD_MEDIA__X264_PRESET", "ultrafast"),
            ("OPENVOD_JOBS__LEASE_SECS", "3"),
        ],
    )
    .await
}

/// Two `openvod serve` processes and two remote workers, one on each, on one database: an upload
/// whose chunks alternate between the servers arrives exact and its pieces are encoded by both
/// workers; a server killed with -9 in the middle of a chunk loses nothing acknowledged, and the
/// upload finishes on the other server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_and_two_remote_workers_share_uploads_and_jobs_and_survive_a_server_kill_9() {
    let a = TestApp::spawn_with(1, |c| {
        c.media.parallel_min_secs = 20;
        c.media.piece_secs = 8;
        c.media.x264_preset = "ultrafast".into();
        c.jobs.remote_only = vec!["transcode_piece".into()];
        c.jobs.lease_secs = 3;
    })
    .await;
    let mut b = second_server(&a).await;
    let b_url = b.announced.trim_end_matches('/').to_owned();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // B's worker starts first; A's joins once B's holds a piece, so the two must share them
    // (started together, the worker on the server that queued the pieces is woken at once and
    // can finish them all before the other's next poll).
    let worker_b = remote_worker_of(&b_url, &a, dirs[1].path());
    let bases = [a.base_url.clone(), b_url.clone()];

    // Chunks alternate between the servers.
    let data = std::fs::read(crate::support::mpeg4_clip("480x270", 25, 30)).unwrap();
    let upload = a
        .create_upload(serde_json::json!({"new_asset_settings": {"playback_policy": "public"}}))
        .await;
    let path = upload["url"]
        .as_str()
        .unwrap()
        .strip_prefix(&a.base_url)
        .unwrap()
        .to_owned();
    let chunk = data.len().div_ceil(6);
    for (i, start) in (0..data.len()).step_by(chunk).enumerate() {
        let end = (start + chunk).min(data.len());
        let url = format!("{}{path}", bases[i % 2]);
        let r = crate::support::put_chunk(&a.client, &url, &data, start, end).await;
        assert_eq!(
            r.status(),
            if end == data.len() { 200 } else { 308 },
            "chunk {i}"
        );
    }
    let upload = a.get_upload(upload["id"].as_str().unwrap()).await;
    let asset_id = upload["asset_id"].as_str().unwrap().to_owned();
    assert_eq!(a.download_master(&asset_id).await, data, "exact bytes");
    within(120, "B's worker holds a piece", || async {
        worker_b
            .1
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("remote job") && !l.contains("remote job done"))
    })
    .await;
    let _workers = [remote_worker(&a, dirs[0].path()), worker_b];
    let db = raw_db(&a.config.database, &a.config.data_dir).await;
    within(180, "the pieces are done", || async {
        let jobs: Vec<(String,)> = sqlx::query_as(
            "SELECT state FROM jobs WHERE kind = 'transcode_piece' AND payload LIKE $1",
        )
        .bind(format!("%{asset_id}%"))
        .fetch_all(&db)
        .await
        .unwrap();
        jobs.len() == 4 && jobs.iter().all(|(s,)| s == "done")
    })
    .await;
    within(10, "both workers took pieces", || async {
        _workers.iter().all(|(_, log)| {
            log.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("remote job done"))
        })
    })
    .await;
    within(60, "the asset is ready", || async {
        a.get_asset(&asset_id).await["status"] == "ready"
    })
    .await;
    // Both servers see it.
    let r = a
        .client
        .get(format!("{b_url}/video/v1/assets/{asset_id}"))
        .basic_auth(&a.token_id, Some(&a.token_secret))
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["data"]["status"], "ready", "{seen}");

    // Server B dies in the middle of a chunk; the upload carries on at A.
    let data = crate::support::clip_bytes();
    let upload = a.create_upload(serde_json::json!({})).await;
    let path = upload["url"]
        .as_str()
        .unwrap()
        .strip_prefix(&a.base_url)
        .unwrap()
        .to_owned();
    let half = data.len() / 2;
    let r =
        crate::support::put_chunk(&a.client, &format!("{b_url}{path}"), &data, 0, half / 2).await;
    assert_eq!(r.status(), 308);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let torn = a
        .client
        .put(format!("{b_url}{path}"))
        .header(
            "content-range",
            format!("bytes {}-{}/{}", half / 2, half - 1, data.len()),
        )
        .header("content-length", (half - half / 2).to_string())
        .body(reqwest::Body::wrap_stream(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        )))
        .send();
    let torn = tokio::spawn(torn);
    tx.send(Ok(data[half / 2..half / 2 + 100].to_vec()))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    b.child.start_kill().unwrap(); // SIGKILL
    b.child.wait().await.unwrap();
    drop(tx);
    let _ = torn.await;
    let url = format!("{}{path}", a.base_url);
    let probe = a
        .client
        .put(&url)
        .header("content-range", format!("bytes */{}", data.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 308);
    let held = probe.headers().get("range").map_or(0, |r| {
        r.to_str()
            .unwrap()
            .rsplit('-')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
            + 1
    });
    assert!(
        held >= half / 2,
        "the acknowledged chunk survived the kill: {held}"
    );
    let r = crate::support::put_chunk(&a.client, &url, &data, held, data.len()).await;
    assert_eq!(r.status(), 200);
    let upload = a.get_upload(upload["id"].as_str().unwrap()).await;
    assert_eq!(
        a.download_master(upload["asset_id"].as_str().unwrap())
            .await,
        data,
        "exact bytes after the other server died"
    );
}
