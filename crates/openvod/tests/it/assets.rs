//! Assets: URL inputs, playback ids, updates, master access and deletion.

use axum::routing::get;
use reqwest::Method;
use serde_json::json;

use crate::support::{clip_bytes, TestApp};

/// A local file server: `/clip.mp4` serves the clip, `/missing` answers 404.
pub async fn serve_clip() -> String {
    let data = clip_bytes();
    let router = axum::Router::new().route("/clip.mp4", get(move || async move { data.clone() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn asset_from_url_is_pulled_and_probed() {
    let app = TestApp::spawn().await;
    let origin = serve_clip().await;
    let (status, json) = app
        .api_json(Method::POST, "/video/v1/assets", Some(json!({
            "input": [{"url": format!("{origin}/clip.mp4")}], "playback_policy": ["public", "signed"],
            "passthrough": "from-url"})))
        .await;
    assert_eq!(status, 201, "{json}");
    let asset_id = json["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(json["data"]["status"], "preparing");
    assert_eq!(json["data"]["ingest_type"], "on_demand_url");
    assert_eq!(json["data"]["playback_ids"].as_array().unwrap().len(), 2);
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    assert!(asset["duration"].as_f64().unwrap() > 1.9, "{asset}");
    assert_eq!(app.download_master(&asset_id).await, clip_bytes());

    let (status, json) = app
        .api_json(
            Method::POST,
            "/video/v1/assets",
            Some(json!({"input": format!("{origin}/missing")})),
        )
        .await;
    assert_eq!(status, 201);
    let missing_id = json["data"]["id"].as_str().unwrap().to_owned();
    app.run_jobs_until_idle().await;
    let missing = app.get_asset(&missing_id).await;
    assert_eq!(missing["status"], "errored");
    assert_eq!(missing["errors"]["type"], "download_failed");
    assert!(
        missing["errors"]["messages"][0]
            .as_str()
            .unwrap()
            .contains("404"),
        "{missing}"
    );
}

#[tokio::test]
async fn private_input_urls_are_refused_by_default() {
    let app = TestApp::spawn_with(0, |c| c.outbound.allow_private_addresses = false).await;
    for url in [
        "http://127.0.0.1:1/x.mp4",
        "http://localhost/x.mp4",
        "http://[::1]/x.mp4",
        "http://169.254.169.254/latest",
    ] {
        let (status, json) = app
            .api_json(
                Method::POST,
                "/video/v1/assets",
                Some(json!({"input": [{"url": url}]})),
            )
            .await;
        assert_eq!(status, 400, "{url}: {json}");
        assert!(
            json["error"]["messages"][0]
                .as_str()
                .unwrap()
                .contains("internal address"),
            "{json}"
        );
    }
    let (status, json) = app
        .api_json(
            Method::POST,
            "/video/v1/assets",
            Some(json!({"input": [{"url": "file:///etc/passwd"}]})),
        )
        .await;
    assert_eq!(status, 400, "{json}");
    let (status, _) = app
        .api_json(
            Method::POST,
            "/video/v1/assets",
            Some(json!({"playback_policy": "public"})),
        )
        .await;
    assert_eq!(status, 400);
    let (_, list) = app.api_json(Method::GET, "/video/v1/assets", None).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "refused requests create nothing"
    );
}

#[tokio::test]
async fn playback_ids_passthrough_master_access_and_delete() {
    let app = TestApp::spawn().await;
    let upload = app
        .create_upload(json!({"new_asset_settings": {"playback_policy": "public"}}))
        .await;
    let data = clip_bytes();
    app.client
        .put(upload["url"].as_str().unwrap())
        .body(data.clone())
        .send()
        .await
        .unwrap();
    let upload_id = upload["id"].as_str().unwrap();
    let asset_id = app.get_upload(upload_id).await["asset_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.run_jobs_until_idle().await;

    let base = format!("/video/v1/assets/{asset_id}");
    let (status, json) = app
        .api_json(
            Method::POST,
            &format!("{base}/playback-ids"),
            Some(json!({"policy": "signed"})),
        )
        .await;
    assert_eq!(status, 201, "{json}");
    let pid = json["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(json["data"]["policy"], "signed");
    let (status, json) = app
        .api_json(Method::GET, &format!("{base}/playback-ids/{pid}"), None)
        .await;
    assert_eq!(
        (status, json["data"]["policy"].as_str()),
        (200, Some("signed"))
    );
    let (status, _) = app
        .api_json(
            Method::POST,
            &format!("{base}/playback-ids"),
            Some(json!({"policy": "drm"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        app.get_asset(&asset_id).await["playback_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, _) = app
        .api_json(Method::DELETE, &format!("{base}/playback-ids/{pid}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .api_json(Method::GET, &format!("{base}/playback-ids/{pid}"), None)
        .await;
    assert_eq!(status, 404);

    let (status, json) = app
        .api_json(
            Method::PATCH,
            &base,
            Some(json!({"passthrough": "renamed"})),
        )
        .await;
    assert_eq!(
        (status, json["data"]["passthrough"].as_str()),
        (200, Some("renamed"))
    );

    let (_, filtered) = app
        .api_json(
            Method::GET,
            &format!("/video/v1/assets?upload_id={upload_id}"),
            None,
        )
        .await;
    assert_eq!(filtered["data"][0]["id"], asset_id.as_str());
    assert!(filtered.get("next_cursor").is_some());

    let master = app.download_master(&asset_id).await;
    assert_eq!(master, data);
    let (_, json) = app
        .api_json(
            Method::PUT,
            &format!("{base}/master-access"),
            Some(json!({"master_access": "temporary"})),
        )
        .await;
    let master_url = json["data"]["master"]["url"].as_str().unwrap().to_owned();
    let r = app
        .client
        .get(&master_url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().to_vec(), data[10..20].to_vec());
    let (_, json) = app
        .api_json(
            Method::PUT,
            &format!("{base}/master-access"),
            Some(json!({"master_access": "none"})),
        )
        .await;
    assert_eq!(json["data"]["master_access"], "none");
    assert_eq!(
        app.client.get(&master_url).send().await.unwrap().status(),
        404
    );
    let (status, _) = app
        .api_json(
            Method::PUT,
            &format!("{base}/master-access"),
            Some(json!({"master_access": "forever"})),
        )
        .await;
    assert_eq!(status, 400);

    let stored = format!("uploads/{upload_id}/original");
    assert!(app.stored(&stored).await.is_some());
    let (status, _) = app.api_json(Method::DELETE, &base, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.api_json(Method::GET, &base, None).await;
    assert_eq!(status, 404);
    app.run_jobs_until_idle().await;
    assert!(
        app.stored(&stored).await.is_none(),
        "media removed with the asset"
    );
    let (status, _) = app.api_json(Method::DELETE, &base, None).await;
    assert_eq!(status, 404);
}
