//! Processes on one PostgreSQL database and one S3 bucket that share no folder, as on several
//! machines: a server and two `openvod worker`s share out the jobs, and a worker killed with -9 in
//! the middle of a transcode loses only its lease.

use std::sync::{Arc, Mutex};

use openvod::config::DatabaseConfig;

use crate::crash::processes_mentioning;
use crate::support::{backend_env, clip, eventually, raw_db, slow_clip, test_bucket, TestApp};

/// An `openvod worker` process with a data folder of its own, its log lines collected.
struct Worker {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
    log: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    async fn start(app: &TestApp) -> Worker {
        use tokio::io::AsyncBufReadExt;
        let dir = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
            .env_remove("OPENVOD_CONFIG")
            .envs(backend_env(&app.config.database, &app.config.storage))
            .env("OPENVOD_PUBLIC_URL", &app.base_url)
            .env("OPENVOD_JOBS__LEASE_SECS", "3")
            .env("OPENVOD_LOG", "info")
            .env("NO_COLOR", "1")
            .args(["worker", "--workers", "1", "--data-dir"])
            .arg(dir.path())
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
