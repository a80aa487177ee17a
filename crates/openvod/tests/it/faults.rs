//! Bad networks: uploads (UpChunk's protocol and tus) and webhook deliveries through a proxy that
//! cuts, resets, stalls and delays connections. Each upload ends with exactly its bytes; each
//! event is delivered at least once, always with the same id; a stalled client holds nothing.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::fault_proxy::{Fault, FaultProxy};
use crate::support::TestApp;
use crate::webhooks::Receiver;

/// Every kind of fault, each on its own connection, then healthy connections.
fn faults() -> Vec<Fault> {
    vec![
        Fault::TruncateAfter(3_000),
        Fault::ResetAfter(40_000),
        Fault::DropResponse,
        Fault::StallAfter(2_000),
        Fault::TruncateAfter(200),
        Fault::ResetAfter(100),
        Fault::Delay(Duration::from_millis(5)),
    ]
}

/// A client that opens a new connection for every request (so every request meets the next
/// fault) and gives up on a request after a few seconds, as upload clients do.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(4))
        .build()
        .unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i * 13 % 253) as u8).collect()
}

fn through(proxy: &FaultProxy, app: &TestApp, url: &str) -> String {
    url.replacen(&app.base_url, &proxy.url, 1)
}

async fn stored_original(app: &TestApp, upload_id: &str) -> Vec<u8> {
    app.stored(&format!("uploads/{upload_id}/original"))
        .await
        .expect("the finished upload's bytes are stored")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upchunk_uploads_through_a_faulty_network_arrive_exact() {
    let app = TestApp::spawn_with(0, |c| c.limits.body_idle_timeout_secs = 1).await;
    let proxy = FaultProxy::start(app.base_url.trim_start_matches("http://"), &faults()).await;
    let client = fresh_connections();
    let data = data(300_000);
    let upload = app.create_upload(json!({})).await;
    let url = through(&proxy, &app, upload["url"].as_str().unwrap());
    let chunk = 64 * 1024;
    let mut start = 0;
    let mut attempts = 0;
    // UpChunk's way: a chunk that fails is sent again, whole; the server keeps what it has.
    while start < data.len() {
        attempts += 1;
        assert!(attempts < 60, "the upload never got through");
        let end = (start + chunk).min(data.len());
        let sent = client
            .put(&url)
            .header(
                "content-range",
                format!("bytes {}-{}/{}", start, end - 1, data.len()),
            )
            .body(data[start..end].to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 308 || r.status() == 200 => start = end,
            Ok(r) => assert!(
                r.status().is_client_error() && r.status() != 409,
                "a fault is never answered with {}: {:?}",
                r.status(),
                r.text().await
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(proxy.pending(), 0, "every fault was met");
    let upload = app.get_upload(upload["id"].as_str().unwrap()).await;
    assert_eq!(upload["status"], "asset_created", "{upload}");
    assert_eq!(
        stored_original(&app, upload["id"].as_str().unwrap()).await,
        data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_uploads_through_a_faulty_network_resume_from_the_servers_offset_and_arrive_exact() {
    let app = TestApp::spawn_with(0, |c| c.limits.body_idle_timeout_secs = 1).await;
    let proxy = FaultProxy::start(app.base_url.trim_start_matches("http://"), &faults()).await;
    let client = fresh_connections();
    let data = data(250_000);
    let upload = app.create_upload(json!({})).await;
    let url = through(&proxy, &app, upload["url"].as_str().unwrap());
    let mut offset: Option<u64> = None;
    let mut attempts = 0;
    // tus's way: ask the server where it is (HEAD), then PATCH the rest from there.
    loop {
        attempts += 1;
        assert!(attempts < 80, "the upload never got through");
        let known = match offset {
            Some(o) => o,
            None => {
                let head = client
                    .head(&url)
                    .header("tus-resumable", "1.0.0")
                    .send()
                    .await;
                match head {
                    Ok(r) if r.status() == 200 => r.headers()["upload-offset"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap(),
                    Ok(r) => panic!("HEAD answered {}", r.status()),
                    Err(_) => continue,
                }
            }
        };
        if known == data.len() as u64 {
            break;
        }
        let mut patch = client
            .patch(&url)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", known.to_string())
            .header("content-type", "application/offset+octet-stream");
        if known == 0 {
            patch = patch.header("upload-length", data.len().to_string());
        }
        let end = (known as usize + 80_000).min(data.len());
        match patch.body(data[known as usize..end].to_vec()).send().await {
            Ok(r) if r.status() == 204 => {
                offset = Some(
                    r.headers()["upload-offset"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap(),
                );
            }
            // A lost answer, a cut body, a stalled one: ask again where the server is.
            Ok(r) => {
                assert!(
                    r.status().is_client_error(),
                    "a fault is never answered with {}",
                    r.status()
                );
                offset = None;
            }
            Err(_) => offset = None,
        }
    }
    assert_eq!(proxy.pending(), 0, "every fault was met");
    let id = upload["id"].as_str().unwrap();
    let upload = app.get_upload(id).await;
    assert_eq!(upload["status"], "asset_created", "{upload}");
    assert_eq!(stored_original(&app, id).await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_through_a_faulty_network_are_each_delivered_at_least_once_with_one_id() {
    let app = TestApp::spawn_with(0, |c| {
        c.webhooks.retry_schedule = ["0s", "1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s"]
            .map(str::to_owned)
            .to_vec();
        c.webhooks.timeout_secs = 2;
        c.webhooks.concurrency = 1;
    })
    .await;
    let receiver = Receiver::start(Vec::new()).await;
    let upstream = receiver
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/hook")
        .to_owned();
    let proxy = FaultProxy::start(
        &upstream,
        &[
            Fault::ResetAfter(50),
            Fault::DropResponse,
            Fault::StallAfter(100),
            Fault::TruncateAfter(20),
            Fault::DropResponse,
        ],
    )
    .await;
    let (status, body) = app
        .api_json(
            Method::POST,
            "/openvod/v1/webhook-endpoints",
            Some(json!({"url": format!("{}/hook", proxy.url), "format": "standard"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(
            app.create_upload(json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Every upload's creation event arrives, however many attempts it takes.
    for _ in 0..150 {
        app.deliver_webhooks().await;
        let got: Vec<String> = receiver
            .all()
            .iter()
            .map(|r| r.json()["data"]["id"].as_str().unwrap_or("").to_owned())
            .collect();
        if created.iter().all(|id| got.contains(id)) && proxy.pending() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(proxy.pending(), 0, "every fault was met");
    let all = receiver.all();
    let mut ids_by_upload: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in &all {
        let event = r.json();
        if event["type"] == "video.upload.created" {
            ids_by_upload
                .entry(event["data"]["id"].as_str().unwrap().to_owned())
                .or_default()
                .push(r.headers["webhook-id"].clone());
        }
    }
    for id in &created {
        let ids = ids_by_upload
            .get(id)
            .unwrap_or_else(|| panic!("upload {id}'s event never arrived: {all:?}"));
        assert!(
            ids.iter().all(|i| i == &ids[0]),
            "one event, one id, however often it is sent: {ids:?}"
        );
    }
    // A dropped answer means the receiver saw an event twice: at least once, never lost.
    let repeated = ids_by_upload.values().filter(|ids| ids.len() > 1).count();
    assert!(
        repeated >= 1,
        "the dropped answers made repeats: {ids_by_upload:?}"
    );
}

/// The URL of a fresh PostgreSQL database reached through a fault proxy, and the proxy.
async fn database_behind_fault_proxy() -> (String, FaultProxy) {
    let (proxied, proxy, _) = database_and_fault_proxy().await;
    (proxied, proxy)
}

/// A scratch PostgreSQL database: its URL through a fault proxy, the proxy, and its direct URL.
async fn database_and_fault_proxy() -> (String, FaultProxy, String) {
    let direct = openvod::db::postgres::scratch_database_url().await;
    let mut database = url::Url::parse(&direct).unwrap();
    let upstream = format!(
        "{}:{}",
        database.host_str().unwrap(),
        database.port().unwrap_or(5432)
    );
    let proxy = FaultProxy::start(&upstream, &[]).await;
    let proxied = url::Url::parse(&proxy.url).unwrap();
    database.set_port(proxied.port()).unwrap();
    (database.to_string(), proxy, direct)
}

/// The webhook dispatcher's query is waiting for PostgreSQL's answer when the network loses its
/// connections without a word (the answer never comes, the socket stays open): the step is
/// dropped once it outlives its lease, and the next one, on a new connection, delivers. Without
/// the bound the dispatcher waited for that answer for good and no webhook went out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_whose_database_connection_dies_silently_carries_on() {
    use sqlx::Connection;
    let (database, proxy, direct) = database_and_fault_proxy().await;
    let app = TestApp::spawn_with(0, |c| {
        c.database.url = Some(database);
        c.database.acquire_timeout_secs = 2;
        c.webhooks.timeout_secs = 1;
    })
    .await;
    let receiver = Receiver::start(vec![]).await;
    crate::webhooks::create_endpoint(&app, json!({"url": receiver.url, "format": "mux"})).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let dispatcher = app.dispatcher.clone();
    let running = {
        let cancel = cancel.clone();
        tokio::spawn(async move { dispatcher.run(cancel).await })
    };
    // Deliveries locked by another session: the dispatcher's next claim waits on the lock.
    let mut locker = sqlx::PgConnection::connect(&direct).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%deliveries%'";
    let mut watcher = sqlx::PgConnection::connect(&direct).await.unwrap();
    let mut blocked = false;
    for _ in 0..100 {
        let n: i64 = sqlx::query_scalar(waiting)
            .fetch_one(&mut watcher)
            .await
            .unwrap();
        if n > 0 {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(blocked, "the dispatcher's claim waits on the lock");
    // Its connection now goes silent for good; then the lock goes.
    proxy.freeze_open();
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();

    let mut created = None;
    for _ in 0..60 {
        let r = app
            .api(Method::POST, "/video/v1/uploads")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if r.status() == 201 {
            let body: serde_json::Value = r.json().await.unwrap();
            created = Some(body["data"]["id"].as_str().unwrap().to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let upload_id = created.expect("uploads can be created on new connections");
    let delivered = async {
        while !receiver.all().iter().any(|r| {
            r.json()["type"] == "video.upload.created"
                && r.json()["object"]["id"] == upload_id.as_str()
        }) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), delivered)
        .await
        .expect("the dispatcher delivers again");
    cancel.cancel();
    running.await.unwrap();
}

/// PostgreSQL stops answering in the middle of calls (its connections stay open, nothing moves,
/// as when a network stalls): once `[limits] api_timeout_secs` has passed, Mux API calls are
/// answered 503 with `Retry-After` and Tencent API calls with its `InternalError`, not left
/// hanging for the connection wait (a minute here) or forever; when the network moves again,
/// calls succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_mid_call_gets_503_not_a_hang() {
    let (database, proxy) = database_behind_fault_proxy().await;
    let app = TestApp::spawn_with(0, |c| {
        c.database.url = Some(database);
        c.database.acquire_timeout_secs = 60;
        c.limits.api_timeout_secs = 2;
    })
    .await;
    let upload = app.create_upload(json!({})).await;
    let get = format!("/video/v1/uploads/{}", upload["id"].as_str().unwrap());
    let within = Duration::from_secs(20);

    proxy.pause();
    for (method, path) in [
        (Method::GET, get.as_str()),
        (Method::POST, "/video/v1/uploads"),
    ] {
        let r = tokio::time::timeout(within, app.api(method, path).json(&json!({})).send())
            .await
            .unwrap_or_else(|_| panic!("{path} was left hanging"))
            .unwrap();
        crate::support::assert_unavailable(r, "took longer than 2 s").await;
    }
    // The Tencent API answers in its own shape (HTTP 200, `Response.Error`).
    let answer = tokio::time::timeout(
        within,
        crate::tencent::tc_call(&app, "SearchMedia", json!({})),
    )
    .await
    .expect("the Tencent API call was left hanging");
    assert_eq!(answer["Error"]["Code"], "InternalError", "{answer}");
    assert!(
        answer["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("took longer than 2 s"),
        "{answer}"
    );

    proxy.resume();
    let mut status = None;
    for _ in 0..100 {
        let r = app.api(Method::GET, &get).send().await.unwrap();
        status = Some(r.status());
        if r.status() == 200 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["data"]["id"], upload["id"], "{body}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, Some(reqwest::StatusCode::OK), "calls succeed again");
}

/// PostgreSQL behind a network that resets every connection for a while: requests are told to come
/// back (503 with `Retry-After`, in Mux's error shape), not that the server failed, and nothing
/// acknowledged before is lost; once the database answers again, the chunk sent again completes
/// the upload with exact bytes and the background work carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_out_of_reach_gets_503_and_loses_nothing_acknowledged() {
    let (database, proxy) = database_behind_fault_proxy().await;
    let app = TestApp::spawn_with(0, |c| {
        c.database.url = Some(database);
        c.database.acquire_timeout_secs = 2;
    })
    .await;
    let data = crate::support::clip_bytes();
    let half = data.len() / 2;
    let upload = app
        .create_upload(json!({"new_asset_settings": {"playback_policy": "public"}}))
        .await;
    let upload_id = upload["id"].as_str().unwrap().to_owned();
    let url = upload["url"].as_str().unwrap().to_owned();
    let put = |start: usize, end: usize| {
        app.client
            .put(&url)
            .header(
                "content-range",
                format!("bytes {start}-{}/{}", end - 1, data.len()),
            )
            .body(data[start..end].to_vec())
            .send()
    };
    assert_eq!(put(0, half).await.unwrap().status(), 308);

    // The database goes out of reach: every open connection is cut, every new one reset.
    proxy.fault_next(&[Fault::ResetAfter(0); 100_000]);
    let unavailable = |r| crate::support::assert_unavailable(r, "temporarily unavailable");
    unavailable(put(half, data.len()).await.unwrap()).await;
    unavailable(
        app.api(Method::GET, &format!("/video/v1/uploads/{upload_id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    unavailable(
        app.api(Method::POST, "/video/v1/uploads")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // Back: the chunk sent again, as UpChunk does, completes the upload with exact bytes.
    proxy.clear();
    let mut answered = None;
    for _ in 0..50 {
        match put(half, data.len()).await {
            Ok(r) if r.status() == 503 => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(r) => {
                answered = Some(r.status());
                break;
            }
            Err(e) => panic!("the server dropped the request: {e}"),
        }
    }
    assert!(
        matches!(answered, Some(s) if s.is_success()),
        "the resent chunk answered {answered:?}"
    );
    let upload = app.get_upload(&upload_id).await;
    assert_eq!(upload["status"], "asset_created", "{upload}");
    assert_eq!(stored_original(&app, &upload_id).await, data);
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(upload["asset_id"].as_str().unwrap()).await;
    assert_eq!(asset["status"], "ready", "{asset}");
}

/// The embedded SQLite file write-locked by another process (an `openvod` command, a backup tool)
/// for longer than `[database] acquire_timeout_secs`: a write is told to come back (503 with
/// `Retry-After`), reads go on (WAL), and once the lock is gone the same request succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_locked_elsewhere_gets_503_for_writes_and_reads_go_on() {
    use sqlx::Connection;
    let app = TestApp::spawn_with(0, |c| {
        c.database.url = None;
        c.database.acquire_timeout_secs = 1;
    })
    .await;
    let upload = app.create_upload(json!({})).await;
    let path = app.config.database_path();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let create = || {
        app.api(Method::POST, "/video/v1/uploads")
            .json(&json!({}))
            .send()
    };
    let r = create().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "unavailable", "{body}");
    let read = app.get_upload(upload["id"].as_str().unwrap()).await;
    assert_eq!(read["status"], "waiting", "{read}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let r = create().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}
