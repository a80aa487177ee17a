//! The upload URL: UpChunk/GCS resumable chunks, plain PUT, CORS, bad input and expiry.

use reqwest::Method;
use serde_json::json;

use crate::support::{clip_bytes, put_chunk, TestApp};

#[tokio::test]
async fn upchunk_sequence_with_resent_chunk_creates_asset_with_exact_bytes() {
    let app = TestApp::spawn().await;
    let upload = app
        .create_upload(
            json!({"cors_origin": "https://app.example", "new_asset_settings":
            {"playback_policy": ["public"], "passthrough": "user-42"}}),
        )
        .await;
    assert_eq!(upload["status"], "waiting");
    assert_eq!(upload["timeout"], 3600);
    assert_eq!(
        upload["new_asset_settings"]["playback_policies"],
        json!(["public"])
    );
    let url = upload["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&app.base_url) && url.contains("token="),
        "{url}"
    );

    let data = clip_bytes();
    let chunk = data.len() / 4 + 1;
    let r = put_chunk(&app.client, &url, &data, 0, chunk).await;
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["range"], format!("bytes=0-{}", chunk - 1));
    assert!(r.headers().get("location").is_none());
    let r = put_chunk(&app.client, &url, &data, chunk, 2 * chunk).await;
    assert_eq!(r.status(), 308);
    // The acknowledgement of chunk 2 was "lost": UpChunk sends it again; nothing may change.
    let r = put_chunk(&app.client, &url, &data, chunk, 2 * chunk).await;
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["range"], format!("bytes=0-{}", 2 * chunk - 1));
    // A chunk overlapping what is held: only the new part is written.
    let r = put_chunk(&app.client, &url, &data, chunk + 10, 3 * chunk).await;
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["range"], format!("bytes=0-{}", 3 * chunk - 1));
    let r = put_chunk(&app.client, &url, &data, 3 * chunk, data.len()).await;
    assert_eq!(r.status(), 200);
    // A resend of the final chunk after completion is still a success.
    let r = put_chunk(&app.client, &url, &data, 3 * chunk, data.len()).await;
    assert_eq!(r.status(), 200);

    let upload = app.get_upload(upload["id"].as_str().unwrap()).await;
    assert_eq!(upload["status"], "asset_created");
    assert!(
        upload.get("url").is_none(),
        "a finished upload hands out no URL: {upload}"
    );
    let asset_id = upload["asset_id"].as_str().unwrap().to_owned();
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(asset["status"], "preparing");
    assert_eq!(asset["upload_id"], upload["id"]);
    assert_eq!(asset["passthrough"], "user-42");
    assert_eq!(asset["ingest_type"], "on_demand_direct_upload");
    assert_eq!(asset["playback_ids"][0]["policy"], "public");

    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    let duration = asset["duration"].as_f64().unwrap();
    assert!((duration - 2.0).abs() < 0.1, "{asset}");
    assert_eq!(asset["aspect_ratio"], "4:3");
    assert_eq!(asset["tracks"][0]["type"], "video");
    assert_eq!(asset["tracks"][0]["max_width"], 160);
    assert_eq!(asset["tracks"][1]["type"], "audio");
    assert_eq!(app.download_master(&asset_id).await, data);
}

#[tokio::test]
async fn single_plain_put_uploads_whole_file() {
    let app = TestApp::spawn().await;
    let upload = app.create_upload(json!({})).await;
    let data = clip_bytes();
    let r = app
        .client
        .put(upload["url"].as_str().unwrap())
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let upload = app.get_upload(upload["id"].as_str().unwrap()).await;
    let asset_id = upload["asset_id"].as_str().unwrap();
    assert_eq!(app.download_master(asset_id).await, data);
}

#[tokio::test]
async fn zero_byte_and_non_media_files_error_the_asset_clearly() {
    let app = TestApp::spawn().await;
    let empty = app.create_upload(json!({})).await;
    let r = app
        .client
        .put(empty["url"].as_str().unwrap())
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = app.create_upload(json!({})).await;
    let r = app
        .client
        .put(text["url"].as_str().unwrap())
        .body("this is not a video\n".repeat(100))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.run_jobs_until_idle().await;
    for upload in [empty, text] {
        let upload = app.get_upload(upload["id"].as_str().unwrap()).await;
        let asset = app.get_asset(upload["asset_id"].as_str().unwrap()).await;
        assert_eq!(asset["status"], "errored", "{asset}");
        assert_eq!(asset["errors"]["type"], "invalid_input");
        let message = asset["errors"]["messages"][0].as_str().unwrap();
        assert!(message.contains("not a media file"), "{message}");
        assert_eq!(asset["progress"]["state"], "errored");
    }
}

#[tokio::test]
async fn bad_chunks_are_refused_with_json_and_leave_stored_bytes_intact() {
    let app = TestApp::spawn().await;
    let upload = app.create_upload(json!({"cors_origin": "*"})).await;
    let url = upload["url"].as_str().unwrap().to_owned();
    let data = clip_bytes();
    let half = data.len() / 2;
    assert_eq!(
        put_chunk(&app.client, &url, &data, 0, half).await.status(),
        308
    );

    let send = |content_range: String, body: Vec<u8>| {
        let client = app.client.clone();
        let url = url.clone();
        async move {
            let r = client
                .put(&url)
                .header("content-range", content_range)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert_eq!(
                r.headers()["access-control-allow-origin"],
                "*",
                "CORS on errors too"
            );
            let body: serde_json::Value = r.json().await.unwrap();
            (
                status,
                body["error"]["messages"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    let total = data.len();
    let (s, m) = send("bytes zero-ten/5".into(), vec![0; 11]).await;
    assert_eq!(
        (s, m.contains("malformed Content-Range")),
        (400, true),
        "{m}"
    );
    let (s, m) = send(
        format!("bytes {}-{}/{}", half + 10, half + 19, total),
        vec![0; 10],
    )
    .await;
    assert_eq!(
        (s, m.contains(&format!("send from byte {half}"))),
        (409, true),
        "{m}"
    );
    let (s, m) = send(
        format!("bytes {}-{}/{}", half, half + 9, total + 1),
        vec![0; 10],
    )
    .await;
    assert_eq!((s, m.contains("differs")), (400, true), "{m}");
    let (s, m) = send(
        format!("bytes {}-{}/{}", half, total, total),
        vec![0; total - half + 1],
    )
    .await;
    assert_eq!(
        (s, m.contains("malformed Content-Range")),
        (400, true),
        "{m}"
    );
    // Declared 100 bytes, sent 10: nothing of it is kept.
    let r = app
        .client
        .put(&url)
        .header(
            "content-range",
            format!("bytes {}-{}/{}", half, half + 99, total),
        )
        .header("content-length", "10")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let tampered = url.replace("token=", "token=1");
    let r = app
        .client
        .put(&tampered)
        .body(vec![1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .put(url.split('?').next().unwrap())
        .body(vec![1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["messages"][0]
            .as_str()
            .unwrap()
            .contains("no token"),
        "{body}"
    );

    // The upload still completes with exactly the original bytes.
    let probe = app
        .client
        .put(&url)
        .header("content-range", format!("bytes */{total}"))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 308);
    assert_eq!(probe.headers()["range"], format!("bytes=0-{}", half - 1));
    assert_eq!(
        put_chunk(&app.client, &url, &data, half, total)
            .await
            .status(),
        200
    );
    let upload = app.get_upload(upload["id"].as_str().unwrap()).await;
    assert_eq!(
        app.download_master(upload["asset_id"].as_str().unwrap())
            .await,
        data
    );
}

#[tokio::test]
async fn cors_preflight_and_origin_matching() {
    let app = TestApp::spawn().await;
    let upload = app
        .create_upload(json!({"cors_origin": "https://app.example"}))
        .await;
    let url = upload["url"].as_str().unwrap();
    let r = app
        .client
        .request(Method::OPTIONS, url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-range, x-custom")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        r.headers()["access-control-allow-headers"],
        "content-range, x-custom"
    );
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PUT"));
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("Range"));
    let r = app
        .client
        .put(url)
        .header("origin", "https://evil.example")
        .body(vec![])
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn oversize_uploads_get_413() {
    let app = TestApp::spawn_with(0, |c| c.uploads.max_size_bytes = 1000).await;
    let upload = app.create_upload(json!({})).await;
    let r = app
        .client
        .put(upload["url"].as_str().unwrap())
        .header("content-range", "bytes 0-99/5000")
        .body(vec![0u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["messages"][0]
        .as_str()
        .unwrap()
        .contains("exceeds the maximum of 1000 bytes"));
}

#[tokio::test]
async fn cancel_and_expiry_stop_uploads_and_remove_staged_bytes() {
    let app = TestApp::spawn().await;
    let data = clip_bytes();
    let staging = app.config.staging_dir();

    let cancelled = app.create_upload(json!({})).await;
    let id = cancelled["id"].as_str().unwrap();
    let url = cancelled["url"].as_str().unwrap();
    assert_eq!(
        put_chunk(&app.client, url, &data, 0, 100).await.status(),
        308
    );
    assert!(staging.join(id).exists());
    let (status, json) = app
        .api_json(Method::PUT, &format!("/video/v1/uploads/{id}/cancel"), None)
        .await;
    assert_eq!(
        (status, json["data"]["status"].as_str()),
        (200, Some("cancelled"))
    );
    assert!(!staging.join(id).exists());
    assert_eq!(
        put_chunk(&app.client, url, &data, 100, 200).await.status(),
        410
    );

    let expiring = app.create_upload(json!({"timeout": 60})).await;
    let id = expiring["id"].as_str().unwrap();
    let url = expiring["url"].as_str().unwrap();
    assert_eq!(
        put_chunk(&app.client, url, &data, 0, 100).await.status(),
        308
    );
    let expired = app
        .state
        .ingest
        .expire_uploads(openvod::id::now_unix() + 61)
        .await
        .unwrap();
    assert_eq!(expired, 1);
    assert!(!staging.join(id).exists());
    assert_eq!(app.get_upload(id).await["status"], "timed_out");
    assert_eq!(
        put_chunk(&app.client, url, &data, 100, 200).await.status(),
        410
    );

    let done = app.create_upload(json!({})).await;
    let id = done["id"].as_str().unwrap();
    assert_eq!(
        app.client
            .put(done["url"].as_str().unwrap())
            .body(data.clone())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, json) = app
        .api_json(Method::PUT, &format!("/video/v1/uploads/{id}/cancel"), None)
        .await;
    assert_eq!(status, 403, "{json}");
}

/// Two `openvod serve` instances on one data folder (one SQLite database, one staging folder, one
/// store), as behind a load balancer on one machine: an upload's chunks alternate between them (one
/// sent to both at once) and the file arrives exact, finished once, visible from both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_alternating_between_two_servers_on_one_data_folder_arrive_exact() {
    let shared = tempfile::tempdir().unwrap();
    let data_dir = shared.path().to_path_buf();
    let a = TestApp::spawn_with(0, {
        let d = data_dir.clone();
        move |c| c.data_dir = d
    })
    .await;
    let (database, storage) = (a.config.database.clone(), a.config.storage.clone());
    let b = TestApp::spawn_with(0, move |c| {
        c.data_dir = data_dir;
        (c.database, c.storage) = (database, storage);
    })
    .await;
    let upload = a
        .create_upload(json!({"new_asset_settings": {"playback_policy": ["public"]}}))
        .await;
    let url_a = upload["url"].as_str().unwrap().to_owned();
    let url_b = url_a.replacen(&a.base_url, &b.base_url, 1);
    assert_ne!(url_a, url_b);

    let data = clip_bytes();
    let chunk = data.len() / 6 + 1;
    // A chunk sent to both at once (a client retrying through the other server): the two
    // writes are serialized across the servers (flock on the shared staging folder), so one
    // stores it and the other finds it held.
    let (first, second) = tokio::join!(
        put_chunk(&a.client, &url_a, &data, 0, chunk),
        put_chunk(&b.client, &url_b, &data, 0, chunk)
    );
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (308, 308)
    );
    let mut start = chunk;
    let mut turn = 1;
    while start < data.len() {
        let end = (start + chunk).min(data.len());
        let url = if turn % 2 == 0 { &url_a } else { &url_b };
        let r = put_chunk(&a.client, url, &data, start, end).await;
        let expected = if end == data.len() { 200 } else { 308 };
        assert_eq!(r.status(), expected, "chunk {turn} to {url}");
        start = end;
        turn += 1;
    }
    let id = upload["id"].as_str().unwrap();
    let seen_by_b = b.get_upload(id).await;
    assert_eq!(seen_by_b["status"], "asset_created");
    let asset_id = seen_by_b["asset_id"].as_str().unwrap();
    assert_eq!(a.download_master(asset_id).await, data);
    let (_, events) = b
        .api_json(
            Method::GET,
            &format!("/openvod/v1/events?type=video.upload.asset_created&object_id={id}"),
            None,
        )
        .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "finished once");
}
