//! The Mux API surface: auth, envelopes, status codes and request validation.

use reqwest::Method;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn credentials_are_required_and_checked() {
    let app = TestApp::spawn().await;
    let url = format!("{}/video/v1/assets", app.base_url);
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "unauthorized");
    let r = app
        .client
        .get(&url)
        .basic_auth(&app.token_id, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(&url)
        .basic_auth("nonexistent", Some(&app.token_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        app.api(Method::GET, "/video/v1/assets")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(app.state.tokens.revoke(&app.token_id).await.unwrap());
    assert_eq!(
        app.api(Method::GET, "/video/v1/assets")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn bad_requests_name_the_problem() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"new_asset_settings": {"playback_policy": ["fancy"]}}),
            "fancy",
        ),
        (
            json!({"new_asset_settings": {"mp4_support": "highest"}}),
            "mp4_support",
        ),
        (
            json!({"new_asset_settings": {"video_quality": "ultra"}}),
            "video_quality",
        ),
        (json!({"timeout": 5}), "timeout"),
        (json!({"timeout": "soon"}), "timeout"),
        (
            json!({"new_asset_settings": {"mp4_support": "standard", "static_renditions": [{"resolution": "highest"}]}}),
            "cannot both",
        ),
        (
            json!({"new_asset_settings": {"passthrough": "x".repeat(300)}}),
            "passthrough",
        ),
    ];
    for (body, needle) in cases {
        let (status, json) = app
            .api_json(Method::POST, "/video/v1/uploads", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body} -> {json}");
        assert_eq!(json["error"]["type"], "invalid_parameters");
        let message = json["error"]["messages"][0].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let r = app
        .api(Method::POST, "/video/v1/uploads")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["messages"][0]
        .as_str()
        .unwrap()
        .contains("invalid JSON"));
    let r = app
        .api(Method::POST, "/video/v1/uploads")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let (status, _) = app
        .api_json(Method::GET, "/video/v1/assets?limit=abc", None)
        .await;
    assert_eq!(status, 400);
    let (status, json) = app
        .api_json(Method::GET, "/video/v1/uploads/doesnotexist", None)
        .await;
    assert_eq!(
        (status, json["error"]["type"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = app
        .api_json(Method::GET, "/video/v1/assets/..%2Fetc", None)
        .await;
    assert_eq!(status, 404);
    let (status, json) = app.api_json(Method::GET, "/video/v1/nothing", None).await;
    assert_eq!(
        (status, json["error"]["type"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn sdk_defaults_and_aliases_are_accepted() {
    let app = TestApp::spawn().await;
    // Exactly what mux-python 5.1.2 sends, plus a bare-string policy.
    let upload = app
        .create_upload(json!({"timeout": 3600, "cors_origin": "*", "new_asset_settings":
            {"playback_policy": "signed", "normalize_audio": false, "copy_overlays": true, "encoding_tier": "baseline"}}))
        .await;
    assert_eq!(
        upload["new_asset_settings"]["playback_policies"],
        json!(["signed"])
    );
    assert_eq!(upload["new_asset_settings"]["video_quality"], "basic");
    assert_eq!(upload["cors_origin"], "*");
    // A host configured with a trailing slash makes mux-python request `//video/v1/...`.
    let r = app
        .client
        .get(format!("{}//video/v1/uploads", app.base_url))
        .basic_auth(&app.token_id, Some(&app.token_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: serde_json::Value = r.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], upload["id"]);
}

#[tokio::test]
async fn uploads_list_pages() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.create_upload(json!({})).await;
    }
    let (_, page1) = app
        .api_json(Method::GET, "/video/v1/uploads?limit=2&page=1", None)
        .await;
    let (_, page2) = app
        .api_json(Method::GET, "/video/v1/uploads?limit=2&page=2", None)
        .await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_ne!(page1["data"][0]["id"], page2["data"][0]["id"]);
}

#[tokio::test]
async fn assets_list_by_cursor() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let upload = app.create_upload(json!({})).await;
        app.client
            .put(upload["url"].as_str().unwrap())
            .body("x")
            .send()
            .await
            .unwrap();
        ids.push(
            app.get_upload(upload["id"].as_str().unwrap()).await["asset_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (_, first) = app
        .api_json(Method::GET, "/video/v1/assets?limit=2", None)
        .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a full page has a next cursor")
        .to_owned();
    let (_, second) = app
        .api_json(
            Method::GET,
            &format!("/video/v1/assets?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    let mut seen: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        second["next_cursor"],
        serde_json::Value::Null,
        "the last page ends the walk"
    );
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "every asset exactly once");
    let (status, json) = app
        .api_json(Method::GET, "/video/v1/assets?cursor=bogus", None)
        .await;
    assert_eq!(status, 400, "{json}");
}
