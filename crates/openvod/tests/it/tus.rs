//! tus 1.0 at the protocol level (the real tuspy client is exercised in `python_clients`).

use base64::Engine;
use reqwest::Method;
use sha1::Digest;

use crate::support::{clip_bytes, TestApp};

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

async fn create(app: &TestApp, length: usize, metadata: &str) -> reqwest::Response {
    app.api(Method::POST, "/tus/")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", length.to_string())
        .header("upload-metadata", metadata)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn options_advertises_extensions() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .request(Method::OPTIONS, format!("{}/tus/", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    let ext = r.headers()["tus-extension"].to_str().unwrap();
    for e in [
        "creation",
        "creation-with-upload",
        "expiration",
        "checksum",
        "termination",
    ] {
        assert!(ext.split(',').any(|x| x == e), "{ext}");
    }
    assert_eq!(r.headers()["tus-checksum-algorithm"], "sha1,sha256");
}

#[tokio::test]
async fn create_patch_head_with_checksums_and_metadata() {
    let app = TestApp::spawn().await;
    let data = clip_bytes();
    let metadata = format!(
        "filename {},passthrough {},playback_policy {}",
        b64(b"clip.mp4"),
        b64(b"p-1"),
        b64(b"signed")
    );
    let r = create(&app, data.len(), &metadata).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    assert!(r.headers().contains_key("upload-expires"));
    let location = r.headers()["location"].to_str().unwrap().to_owned();

    let half = data.len() / 2;
    let patch = |offset: usize, body: Vec<u8>, checksum: Option<String>| {
        let mut request = app
            .client
            .patch(&location)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string());
        if let Some(c) = checksum {
            request = request.header("upload-checksum", c);
        }
        request.body(body).send()
    };
    let sha1 = |d: &[u8]| format!("sha1 {}", b64(&sha1::Sha1::digest(d)));
    let sha256 = |d: &[u8]| format!("sha256 {}", b64(&sha2::Sha256::digest(d)));

    let r = patch(0, data[..half].to_vec(), Some(sha1(&data[..half])))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], half.to_string());
    // Wrong checksum: 460 and nothing kept.
    let r = patch(half, data[half..].to_vec(), Some(sha256(b"other")))
        .await
        .unwrap();
    assert_eq!(r.status(), 460);
    // Wrong offset: 409.
    let r = patch(half + 1, data[half + 1..].to_vec(), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = app
        .client
        .head(&location)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["upload-offset"], half.to_string());
    assert_eq!(r.headers()["upload-length"], data.len().to_string());
    assert_eq!(r.headers()["upload-metadata"], metadata);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = patch(half, data[half..].to_vec(), Some(sha256(&data[half..])))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], data.len().to_string());

    let (_, list) = app.api_json(Method::GET, "/video/v1/assets", None).await;
    let asset = &list["data"][0];
    assert_eq!(asset["passthrough"], "p-1");
    assert_eq!(asset["playback_ids"][0]["policy"], "signed");
    assert_eq!(
        app.download_master(asset["id"].as_str().unwrap()).await,
        data
    );
}

#[tokio::test]
async fn creation_with_upload_termination_and_errors() {
    let app = TestApp::spawn().await;
    let data = clip_bytes();
    let r = app
        .api(Method::POST, "/tus/")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", data.len().to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(data[..100].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["upload-offset"], "100");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = app
        .client
        .delete(&location)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .client
        .head(&location)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);

    // Creation needs API credentials, a supported version and a length.
    let r = app
        .client
        .post(format!("{}/tus/", app.base_url))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .api(Method::POST, "/tus/")
        .header("tus-resumable", "0.2.0")
        .header("upload-length", "5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = app
        .api(Method::POST, "/tus/")
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = create(&app, 10, &format!("playback_policy {}", b64(b"bogus"))).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["messages"][0]
            .as_str()
            .unwrap()
            .contains("bogus"),
        "{body}"
    );
    let r = create(&app, 100 * 1024 * 1024 * 1024 * 1024, "").await;
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn an_upload_whose_finalization_failed_is_finished_by_the_next_head() {
    // The fault is a file in the way in the media folder, which only the embedded setup has.
    let app = TestApp::spawn_with(0, |c| (c.database, c.storage) = Default::default()).await;
    let data = clip_bytes();
    let r = create(&app, data.len(), "").await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    // Break the store: a file where the uploads folder should be makes moving the bytes fail.
    let blocker = app.media_dir().join("uploads");
    std::fs::create_dir_all(app.media_dir()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let r = app
        .client
        .patch(&location)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        500,
        "the bytes are committed but the asset could not be made"
    );
    let id = location
        .split("/upload/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(app.get_upload(&id).await["status"], "waiting");

    std::fs::remove_file(&blocker).unwrap();
    // tus clients resume with HEAD; it finds every byte held and finishes the upload.
    let r = app
        .client
        .head(&location)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["upload-offset"], data.len().to_string());
    let upload = app.get_upload(&id).await;
    assert_eq!(upload["status"], "asset_created", "{upload}");
    assert_eq!(
        app.download_master(upload["asset_id"].as_str().unwrap())
            .await,
        data
    );
}
