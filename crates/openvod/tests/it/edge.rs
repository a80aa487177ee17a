//! The HTTP edge against slow and greedy clients: header and body timeouts, the upload limit and
//! the per-token rate, each answered with a clear status and never at the cost of stored bytes.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{put_chunk, TestApp};

fn host_port(base_url: &str) -> String {
    base_url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_client_slow_to_send_its_headers_is_cut_off_and_others_are_served() {
    let app = TestApp::spawn_with(0, |c| c.limits.header_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(host_port(&app.base_url)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // Meanwhile a normal client is answered.
    let r = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    let answer = read_until_closed(&mut slow, Duration::from_secs(10))
        .await
        .expect("the server closes a connection whose headers never end");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains("200 OK"),
        "an unfinished request was never served: {text}"
    );
}

#[tokio::test]
async fn a_stalled_chunk_gives_back_its_slot_and_the_upload_finishes_exact() {
    let app = TestApp::spawn_with(0, |c| {
        c.limits.body_idle_timeout_secs = 1;
        c.limits.concurrent_uploads = 1;
    })
    .await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let upload = app.create_upload(json!({})).await;
    let url = upload["url"].as_str().unwrap().to_owned();
    let path = url.strip_prefix(&app.base_url).unwrap().to_owned();

    // A chunk whose body stops after 10 bytes, its connection left open.
    let mut stalled = TcpStream::connect(host_port(&app.base_url)).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Range: bytes 0-99999/{}\r\nContent-Length: 100000\r\n\r\n",
        data.len()
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&data[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The only upload slot is held: another chunk is told to come back, with Retry-After.
    let r = put_chunk(&app.client, &url, &data, 0, 100_000).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "too_many_requests", "{body}");

    // The stalled request fails once its body has been quiet for a second, freeing the slot.
    let answer = read_until_closed(&mut stalled, Duration::from_secs(10))
        .await
        .expect("a stalled body does not hold its request for ever");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "a stalled chunk is refused: {answer}"
    );
    let r = put_chunk(&app.client, &url, &data, 0, 100_000).await;
    assert_eq!(r.status(), 308, "{:?}", r.text().await);
    let r = put_chunk(&app.client, &url, &data, 100_000, data.len()).await;
    assert_eq!(r.status(), 200);
    let upload = app.get_upload(upload["id"].as_str().unwrap()).await;
    let stored = app
        .stored(&format!(
            "uploads/{}/original",
            upload["id"].as_str().unwrap()
        ))
        .await
        .expect("the upload's bytes are stored");
    assert_eq!(stored, data, "exact bytes after the stall");
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after_and_other_tokens_do_not() {
    let app = TestApp::spawn_with(0, |c| {
        c.limits.requests_per_second_per_token = 1;
        c.limits.request_burst_per_token = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = app
            .api(reqwest::Method::GET, "/video/v1/assets")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["type"], "too_many_requests", "{body}");
            assert!(
                body["error"]["messages"][0]
                    .as_str()
                    .unwrap()
                    .contains(&app.token_id),
                "{body}"
            );
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "the burst is allowed");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    // Another token has its own allowance.
    let other = app.state.tokens.create("other").await.unwrap();
    let r = app
        .client
        .get(format!("{}/video/v1/assets", app.base_url))
        .basic_auth(&other.id, Some(&other.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Wrong credentials are a 401 whatever the rate (they are not counted as the token's).
    let r = app
        .client
        .get(format!("{}/video/v1/assets", app.base_url))
        .basic_auth(&app.token_id, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // After a wait the token is served again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app
        .api(reqwest::Method::GET, "/video/v1/assets")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_json_body_over_the_limit_is_refused_by_name_and_nothing_is_created() {
    let app = TestApp::spawn_with(0, |c| c.limits.max_json_body_bytes = 2048).await;
    let passthrough = "x".repeat(4096);
    let (status, body) = app
        .api_json(
            reqwest::Method::POST,
            "/video/v1/uploads",
            Some(json!({"new_asset_settings": {"passthrough": passthrough}})),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["messages"][0]
            .as_str()
            .unwrap()
            .contains("max_json_body_bytes"),
        "{body}"
    );
    let (_, list) = app
        .api_json(reqwest::Method::GET, "/video/v1/uploads", None)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
}
