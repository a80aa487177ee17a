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

/// Creates an asset from a URL (never fetched: these tests run no jobs) and returns its `data`.
async fn create_url_asset(app: &TestApp, extra: serde_json::Value) -> serde_json::Value {
    let mut body =
        json!({"input": [{"url": "http://127.0.0.1:9/clip.mp4"}], "playback_policy": ["public"]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, json) = app
        .api_json(Method::POST, "/video/v1/assets", Some(body))
        .await;
    assert_eq!(status, 201, "{json}");
    json["data"].clone()
}

async fn patch_asset(app: &TestApp, id: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    app.api_json(Method::PATCH, &format!("/video/v1/assets/{id}"), Some(body))
        .await
}

/// The ids `GET /video/v1/assets?{query}` lists, sorted.
async fn listed(app: &TestApp, query: &str) -> Vec<String> {
    let (status, json) = app
        .api_json(Method::GET, &format!("/video/v1/assets?{query}"), None)
        .await;
    assert_eq!(status, 200, "{query}: {json}");
    let mut ids: Vec<String> = json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&serde_json::Value]) -> Vec<String> {
    let mut ids: Vec<String> = ids
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn asset_meta_is_stored_returned_and_patched() {
    let app = TestApp::spawn().await;
    let meta =
        json!({"title": "Lecture 1", "creator_id": "teacher-7", "external_id": "course-42/rec-1"});
    let created = create_url_asset(&app, json!({"meta": meta})).await;
    assert_eq!(created["meta"], meta, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get_asset(&id).await["meta"], meta);

    // Mux leaves `meta` out of an asset that has none.
    let plain = create_url_asset(&app, json!({})).await;
    assert!(plain.get("meta").is_none(), "{plain}");
    let blank = create_url_asset(&app, json!({"meta": {"title": ""}})).await;
    assert!(
        blank.get("meta").is_none(),
        "empty strings are unset: {blank}"
    );

    // PATCH replaces the fields it gives and keeps the others; "" clears a field.
    let (status, json) = patch_asset(&app, &id, json!({"meta": {"creator_id": "teacher-8"}})).await;
    assert_eq!(status, 200, "{json}");
    let expected =
        json!({"title": "Lecture 1", "creator_id": "teacher-8", "external_id": "course-42/rec-1"});
    assert_eq!(json["data"]["meta"], expected);
    assert_eq!(app.get_asset(&id).await["meta"], expected);
    let (status, json) = patch_asset(
        &app,
        &id,
        json!({"passthrough": "p-1", "meta": {"title": "", "external_id": "course-42/rec-2"}}),
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let expected = json!({"creator_id": "teacher-8", "external_id": "course-42/rec-2"});
    assert_eq!(
        (&json["data"]["meta"], &json["data"]["passthrough"]),
        (&expected, &json!("p-1"))
    );
    let after = app.get_asset(&id).await;
    assert_eq!(
        (&after["meta"], &after["passthrough"]),
        (&expected, &json!("p-1"))
    );
    // A PATCH without meta leaves it alone.
    let (_, json) = patch_asset(&app, &id, json!({"passthrough": "p-2"})).await;
    assert_eq!(json["data"]["meta"], expected);

    // Each PATCH is one `video.asset.updated`, whose data carries the meta as it became.
    let (_, events) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/events?type=video.asset.updated&object_id={id}"),
            None,
        )
        .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["data"]["meta"]["creator_id"], "teacher-8");
    assert_eq!(events[1]["data"]["meta"], expected);
    assert_eq!(events[1]["data"]["passthrough"], "p-1");

    let (status, json) = patch_asset(&app, "doesnotexist", json!({"meta": {"title": "x"}})).await;
    assert_eq!(
        (status, json["error"]["type"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn assets_are_listed_by_meta_external_id_and_creator_id() {
    let app = TestApp::spawn().await;
    let a = create_url_asset(
        &app,
        json!({"meta": {"creator_id": "alice", "external_id": "e1"}}),
    )
    .await;
    let b = create_url_asset(
        &app,
        json!({"meta": {"creator_id": "alice", "external_id": "e2"}}),
    )
    .await;
    let c = create_url_asset(
        &app,
        json!({"meta": {"creator_id": "bob", "external_id": "e1"}}),
    )
    .await;
    let d = create_url_asset(&app, json!({"meta": {"title": "alice"}})).await;
    let _none = create_url_asset(&app, json!({})).await;

    assert_eq!(listed(&app, "creator_id=alice").await, sorted(&[&a, &b]));
    assert_eq!(listed(&app, "external_id=e1").await, sorted(&[&a, &c]));
    assert_eq!(
        listed(&app, "external_id=e1&creator_id=bob").await,
        sorted(&[&c])
    );
    assert!(listed(&app, "external_id=e1&creator_id=nobody")
        .await
        .is_empty());
    assert!(
        listed(&app, "creator_id=Alice").await.is_empty(),
        "exact match"
    );
    assert!(
        listed(&app, "external_id=alice").await.is_empty(),
        "titles are not ids"
    );
    assert_eq!(listed(&app, "").await.len(), 5);
    // Title search (part of the title, ASCII case ignored) and status, on the server.
    assert_eq!(listed(&app, "title=LIC").await, sorted(&[&d]));
    assert!(listed(&app, "title=bob").await.is_empty());
    assert_eq!(listed(&app, "status=preparing").await.len(), 5);
    assert!(listed(&app, "status=ready").await.is_empty());
    assert_eq!(
        listed(&app, "status=preparing&title=ali&limit=1").await,
        sorted(&[&d])
    );
    let (status, body) = app
        .api_json(Method::GET, "/video/v1/assets?status=done", None)
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["messages"][0]
        .as_str()
        .unwrap()
        .contains("preparing, ready or errored"));

    // Pages and cursors walk the filtered set only.
    assert_eq!(
        listed(&app, "creator_id=alice&limit=1&page=2").await.len(),
        1
    );
    let (_, first) = app
        .api_json(
            Method::GET,
            "/video/v1/assets?creator_id=alice&limit=1",
            None,
        )
        .await;
    assert_eq!(first["data"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = app
        .api_json(
            Method::GET,
            &format!("/video/v1/assets?creator_id=alice&limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(
        sorted(&[&first["data"][0], &second["data"][0]]),
        sorted(&[&a, &b]),
        "the two pages hold both of alice's assets: {first} {second}"
    );

    // A PATCH moves an asset between filters at once.
    let (status, _) = patch_asset(
        &app,
        a["id"].as_str().unwrap(),
        json!({"meta": {"creator_id": "bob"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed(&app, "creator_id=alice").await, sorted(&[&b]));
    assert_eq!(listed(&app, "creator_id=bob").await, sorted(&[&a, &c]));

    let (status, json) = app
        .api_json(Method::GET, "/video/v1/assets?external_id=", None)
        .await;
    assert_eq!(status, 400, "{json}");
    assert!(json["error"]["messages"][0]
        .as_str()
        .unwrap()
        .contains("external_id"));
}

#[tokio::test]
async fn upload_meta_is_echoed_and_carried_to_its_asset() {
    let app = TestApp::spawn().await;
    let meta = json!({"title": "Recording", "creator_id": "u-1", "external_id": "ext-9"});
    let upload = app
        .create_upload(json!({"new_asset_settings": {"playback_policy": "public", "meta": meta}}))
        .await;
    assert_eq!(upload["new_asset_settings"]["meta"], meta, "{upload}");
    let upload_id = upload["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_upload(&upload_id).await["new_asset_settings"]["meta"],
        meta
    );
    let plain = app.create_upload(json!({})).await;
    assert!(plain["new_asset_settings"].get("meta").is_none(), "{plain}");

    let r = app
        .client
        .put(upload["url"].as_str().unwrap())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let asset_id = app.get_upload(&upload_id).await["asset_id"]
        .as_str()
        .expect("the upload made an asset")
        .to_owned();
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(
        (&asset["meta"], &asset["upload_id"]),
        (&meta, &json!(upload_id))
    );
    assert_eq!(
        listed(&app, &format!("upload_id={upload_id}&external_id=ext-9")).await,
        vec![asset_id.clone()]
    );
    assert!(
        listed(&app, &format!("upload_id={upload_id}&external_id=other"))
            .await
            .is_empty()
    );
    let (_, events) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/events?type=video.asset.created&object_id={asset_id}"),
            None,
        )
        .await;
    assert_eq!(events["data"][0]["data"]["meta"], meta, "{events}");
}

#[tokio::test]
async fn bad_meta_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let long_title = "t".repeat(513);
    let long_id = "i".repeat(129);
    let id = create_url_asset(&app, json!({"meta": {"title": "kept"}})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let input = json!([{"url": "http://127.0.0.1:9/clip.mp4"}]);
    let cases = [
        (
            Method::POST,
            "/video/v1/assets".to_owned(),
            json!({"input": input, "meta": {"title": long_title}}),
            "meta.title",
        ),
        (
            Method::POST,
            "/video/v1/assets".to_owned(),
            json!({"input": input, "meta": {"external_id": long_id}}),
            "meta.external_id",
        ),
        (
            Method::POST,
            "/video/v1/assets".to_owned(),
            json!({"input": input, "meta": {"titel": "typo"}}),
            "meta.titel",
        ),
        (
            Method::POST,
            "/video/v1/uploads".to_owned(),
            json!({"new_asset_settings": {"meta": {"creator_id": long_id}}}),
            "new_asset_settings.meta.creator_id",
        ),
        (
            Method::POST,
            "/video/v1/uploads".to_owned(),
            json!({"new_asset_settings": {"meta": {"owner": "x"}}}),
            "new_asset_settings.meta.owner",
        ),
        (
            Method::PATCH,
            format!("/video/v1/assets/{id}"),
            json!({"meta": {"title": long_title}}),
            "meta.title",
        ),
        (
            Method::PATCH,
            format!("/video/v1/assets/{id}"),
            json!({"meta": {"title": "ok", "tags": ["a"]}}),
            "meta.tags",
        ),
        (
            Method::PATCH,
            format!("/video/v1/assets/{id}"),
            json!({"meta": {"creator_id": 7}}),
            "meta.creator_id",
        ),
        (
            Method::PATCH,
            format!("/video/v1/assets/{id}"),
            json!({"meta": "a title"}),
            "meta: invalid type",
        ),
    ];
    for (method, path, body, needle) in cases {
        let (status, json) = app
            .api_json(method.clone(), &path, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{method} {path} {body} -> {json}");
        assert_eq!(json["error"]["type"], "invalid_parameters", "{json}");
        let message = json["error"]["messages"][0].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    assert_eq!(app.get_asset(&id).await["meta"], json!({"title": "kept"}));
    let (_, list) = app.api_json(Method::GET, "/video/v1/assets", None).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "refused requests create nothing"
    );

    // The limits count code points, not bytes: 512 two-byte characters are a valid title.
    let title = "é".repeat(512);
    let (status, json) = patch_asset(
        &app,
        &id,
        json!({"meta": {"title": title, "creator_id": "c".repeat(128)}}),
    )
    .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["data"]["meta"]["title"], title);
}

/// Whatever the mistake, the answer is Mux's JSON error shape with the status the SDKs expect:
/// an unknown route 404, a known route with another method 405 (and `Allow`), never an empty body.
#[tokio::test]
async fn wrong_routes_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    for (method, path, status, kind) in [
        (Method::GET, "/video/v1/no-such-thing", 404, "not_found"),
        (Method::PUT, "/video/v1/assets", 405, "method_not_allowed"),
        (
            Method::PATCH,
            "/video/v1/uploads",
            405,
            "method_not_allowed",
        ),
        (
            Method::DELETE,
            "/system/v1/signing-keys",
            405,
            "method_not_allowed",
        ),
    ] {
        let r = app.api(method.clone(), path).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        if status == 405 {
            let allow = r.headers().get("allow").expect("Allow is listed");
            assert!(allow.to_str().unwrap().contains("GET"), "{allow:?}");
        }
        let body: serde_json::Value = r.json().await.expect("a JSON body");
        assert_eq!(body["error"]["type"], kind, "{method} {path}: {body}");
        assert!(
            body["error"]["messages"][0]
                .as_str()
                .is_some_and(|m| m.contains(path.rsplit('/').next().unwrap())),
            "{body}"
        );
    }
}

/// Input info lists the input once it is probed: nothing before (the SDK test checks the tracks
/// of a probed one); another caller's or a missing asset is a JSON 404.
#[tokio::test]
async fn input_info_is_empty_until_probed() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .api_json(
            Method::POST,
            "/video/v1/assets",
            Some(json!({"input": [{"url": "https://example.com/clip.mp4"}]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap();
    let (status, info) = app
        .api_json(
            Method::GET,
            &format!("/video/v1/assets/{id}/input-info"),
            None,
        )
        .await;
    assert_eq!((status, info), (200, json!({"data": []})));
    let (status, body) = app
        .api_json(Method::GET, "/video/v1/assets/nope/input-info", None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["type"], "not_found");
}

/// The static-renditions API refuses what Mux refuses, each by name: an unknown resolution, the
/// same one twice, one beside mp4_support, deleting one that is not there. (The mux-python SDK
/// test makes, downloads and deletes one.)
#[tokio::test]
async fn static_rendition_requests_are_checked() {
    let app = TestApp::spawn().await;
    let (_, created) = app
        .api_json(
            Method::POST,
            "/video/v1/assets",
            Some(json!({"input": [{"url": "https://example.com/clip.mp4"}]})),
        )
        .await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let base = format!("/video/v1/assets/{id}");
    let post = |body: serde_json::Value| {
        let (app, url) = (&app, format!("{base}/static-renditions"));
        async move { app.api_json(Method::POST, &url, Some(body)).await }
    };
    let (status, body) = post(json!({"resolution": "999p"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["messages"][0]
        .as_str()
        .unwrap()
        .contains("resolution"));
    let (status, body) = post(json!({"resolution": "highest"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["data"]["id"].as_str(), body["data"]["status"].as_str()),
        (Some("highest"), Some("preparing"))
    );
    let (status, _) = post(json!({"resolution": "highest"})).await;
    assert_eq!(status, 409);
    let (status, listed) = app
        .api_json(Method::GET, &format!("{base}/static-renditions"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"][0]["name"], "highest.mp4");
    let (status, body) = app
        .api_json(
            Method::PUT,
            &format!("{base}/mp4-support"),
            Some(json!({"mp4_support": "standard"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .api_json(
            Method::DELETE,
            &format!("{base}/static-renditions/1080p"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .api_json(
            Method::DELETE,
            &format!("{base}/static-renditions/highest"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, listed) = app
        .api_json(Method::GET, &format!("{base}/static-renditions"), None)
        .await;
    assert_eq!(listed["data"], json!([]));
}

/// `/metrics` is Prometheus text for tokens (401 without one), with what happened: requests by
/// route pattern and status, upload and playback bytes, ffmpeg seconds, jobs by kind and state.
#[tokio::test]
async fn metrics_count_what_happened() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let asset_id = app
        .upload_file(crate::support::clip(), json!({"playback_policy": "public"}))
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let thumb = app.fetch(&format!("/{pid}/thumbnail.jpg?width=40")).await;
    assert_eq!(thumb.status(), 200);
    let r = app.api(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let clip_len = std::fs::metadata(crate::support::clip()).unwrap().len() as f64;
    assert!(value("openvod_upload_bytes_total") >= clip_len);
    assert!(value("openvod_playback_bytes_total") > 0.0);
    assert!(value("openvod_ffmpeg_seconds_total") > 0.0);
    // (Counters are the process's: other tests' servers in this process add to them.)
    assert!(
        value(
            r#"openvod_http_requests_total{method="POST",route="/video/v1/uploads",status="201"}"#
        ) >= 1.0
    );
    assert!(
        value(
            r#"openvod_http_requests_total{method="GET",route="/video/v1/assets/{id}",status="200"}"#
        ) >= 1.0
    );
    assert_eq!(value(r#"openvod_jobs{kind="transcode",state="done"}"#), 1.0);
    assert_eq!(value("openvod_queue_depth"), 0.0);
}

/// A Mux field openvod does not do yet is refused by name when set, never dropped; unset ones
/// (what SDKs send as defaults) pass.
#[tokio::test]
async fn unsupported_fields_are_named_not_ignored() {
    let app = TestApp::spawn().await;
    let url = "https://example.com/clip.mp4";
    for (body, named) in [
        (
            json!({"input": [{"url": url, "generated_subtitles": [{"language_code": "en"}]}]}),
            "input[0].generated_subtitles",
        ),
        (
            json!({"input": [{"url": url, "start_time": 1.5}]}),
            "input[0].start_time",
        ),
        (
            json!({"input": [{"url": url}, {"url": "https://example.com/en.m4a", "type": "audio", "language_code": "en", "text_type": "subtitles"}]}),
            "input[1].text_type: only for text tracks",
        ),
        (
            json!({"input": url, "per_title_encode": true}),
            "per_title_encode",
        ),
    ] {
        let (status, answer) = app
            .api_json(Method::POST, "/video/v1/assets", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["messages"][0].as_str().unwrap();
        assert!(message.contains(named), "{body}: {message}");
    }
    let (status, answer) = app
        .api_json(
            Method::POST,
            "/video/v1/assets",
            Some(json!({"input": [{"url": url, "overlay_settings": null}],
                        "per_title_encode": false, "normalize_audio": true})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
}

/// Each static file has its own events: created when asked for, ready when made, deleted when
/// dropped, with the file as the object and its asset's id in the data.
#[tokio::test]
async fn static_renditions_have_their_own_events() {
    let app = TestApp::spawn().await;
    let asset_id = app
        .upload_file(
            crate::support::clip(),
            json!({"playback_policy": ["public"]}),
        )
        .await;
    app.run_jobs_until_idle().await;
    let base = format!("/video/v1/assets/{asset_id}/static-renditions");
    let (status, json) = app
        .api_json(
            Method::POST,
            &base,
            Some(json!({"resolution": "audio-only"})),
        )
        .await;
    assert_eq!(status, 201, "{json}");
    app.run_jobs_until_idle().await;
    let (status, _) = app
        .api_json(Method::DELETE, &format!("{base}/audio"), None)
        .await;
    assert_eq!(status, 204);
    for kind in ["created", "ready", "deleted"] {
        let (_, events) = app
            .api_json(
                Method::GET,
                &format!(
                    "/openvod/v1/events?type=video.asset.static_rendition.{kind}&object_id={asset_id}"
                ),
                None,
            )
            .await;
        let event = &events["data"][0];
        assert_eq!(
            event["object"]["type"], "static_rendition",
            "{kind}: {events:#}"
        );
        assert_eq!(event["object"]["id"], "audio", "{kind}: {event:#}");
        assert_eq!(event["data"]["name"], "audio.m4a", "{kind}: {event:#}");
        assert_eq!(
            event["data"]["asset_id"],
            asset_id.as_str(),
            "{kind}: {event:#}"
        );
        assert_eq!(
            events["data"].as_array().unwrap().len(),
            1,
            "{kind}: {events:#}"
        );
    }
}

/// Static renditions asked for when the asset is created get their `created` event with the
/// asset's, then `ready` once made.
#[tokio::test]
async fn static_renditions_asked_at_creation_announce_themselves() {
    let app = TestApp::spawn().await;
    let asset_id = app
        .upload_file(
            crate::support::clip(),
            json!({"playback_policy": ["public"], "static_renditions": [{"resolution": "highest"}]}),
        )
        .await;
    app.run_jobs_until_idle().await;
    let (_, events) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/events?object_id={asset_id}"),
            None,
        )
        .await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        // (Tencent-shaped events of the same asset carry EventType instead.)
        .filter_map(|e| e["type"].as_str())
        .filter(|t| t.starts_with("video.asset.static_rendition.") || *t == "video.asset.created")
        .collect();
    assert_eq!(
        kinds,
        [
            "video.asset.created",
            "video.asset.static_rendition.created",
            "video.asset.static_rendition.ready"
        ],
        "{events:#}"
    );
    let created = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "video.asset.static_rendition.created")
        .unwrap();
    assert_eq!(created["object"]["id"], "highest", "{created:#}");
    assert_eq!(created["data"]["status"], "preparing", "{created:#}");
}
