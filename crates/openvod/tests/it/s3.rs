//! Media in a real S3-compatible server (SeaweedFS, started by `scripts/test`; its endpoint in
//! `OPENVOD_TEST_S3_ENDPOINT`, credentials in the AWS_* variables): the store on its own, and a
//! whole upload → encode → play → delete with `[storage] url = "s3://..."`.

use openvod::storage::s3::S3Store;
use openvod::storage::{Store, StoreKey};

use crate::support::{clip, eventually, test_bucket, TestApp};

fn key(k: &str) -> StoreKey {
    StoreKey::parse(k).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_store_writes_reads_ranges_and_deletes_prefixes() {
    let prefix = format!("store-{}", openvod::id::random_id());
    let store = S3Store::new(&test_bucket(&prefix)).unwrap();
    store.ensure_bucket().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 20 MiB + 3: more than one ranged read and a multipart write.
    let data: Vec<u8> = (0..(20 << 20) + 3)
        .map(|i: u32| (i * 7 % 251) as u8)
        .collect();
    let source = dir.path().join("big.bin");
    std::fs::write(&source, &data).unwrap();
    assert_eq!(
        store.put_file(&key("a/big.bin"), &source).await.unwrap(),
        data.len() as u64
    );
    assert!(
        !source.exists(),
        "the source is consumed, as with the local store"
    );
    assert_eq!(
        store.size(&key("a/big.bin")).await.unwrap(),
        Some(data.len() as u64)
    );
    assert_eq!(store.size(&key("a/missing")).await.unwrap(), None);

    let whole = store.get(&key("a/big.bin"), 0, None).await.unwrap();
    assert_eq!(whole.len, data.len() as u64);
    assert_eq!(whole.into_bytes().await.unwrap().as_ref(), &data[..]);
    let range = store
        .get(&key("a/big.bin"), 9_000_000, Some(17_000_001))
        .await
        .unwrap()
        .into_bytes()
        .await
        .unwrap();
    assert_eq!(range.as_ref(), &data[9_000_000..17_000_001]);
    assert!(matches!(
        store.get(&key("a/missing"), 0, None).await,
        Err(openvod::storage::StorageError::NotFound(_))
    ));

    let local = store.local_file(&key("a/big.bin")).await.unwrap();
    assert_eq!(std::fs::read(local.path()).unwrap(), data);

    let small = dir.path().join("s");
    std::fs::write(&small, b"x").unwrap();
    store.put_file(&key("a/b/c.txt"), &small).await.unwrap();
    store.delete(&key("a/")).await.unwrap();
    assert_eq!(store.size(&key("a/big.bin")).await.unwrap(), None);
    assert_eq!(store.size(&key("a/b/c.txt")).await.unwrap(), None);
    store.delete(&key("a/never-there")).await.unwrap();
}

/// The whole path with media in S3: upload, encode (originals and segments in the bucket), play
/// the master and a segment, then delete: nothing of the asset is left in the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_encoded_played_and_deleted_with_media_in_s3() {
    let prefix = format!("app-{}", openvod::id::random_id());
    let config = test_bucket(&prefix);
    let app = TestApp::spawn_with(1, {
        let config = config.clone();
        move |c| c.storage = config
    })
    .await;
    let asset_id = app
        .upload_file(clip(), serde_json::json!({"playback_policy": "public"}))
        .await;
    eventually("the asset is ready", || async {
        app.get_asset(&asset_id).await["status"] == "ready"
    })
    .await;
    let asset = app.get_asset(&asset_id).await;
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let master_url = reqwest::Url::parse(&format!("{}/{pid}.m3u8", app.base_url)).unwrap();
    let first_uri = |playlist: &str| {
        playlist
            .lines()
            .find(|l| !l.starts_with('#') && !l.is_empty())
            .expect("a URI")
            .to_owned()
    };
    let master = app.fetch(master_url.as_str()).await.text().await.unwrap();
    let media_url = master_url.join(&first_uri(&master)).unwrap();
    let playlist = app.fetch(media_url.as_str()).await.text().await.unwrap();
    let segment_url = media_url.join(&first_uri(&playlist)).unwrap();
    let segment = app.fetch(segment_url.as_str()).await;
    assert_eq!(segment.status(), 200);
    let bytes = segment.bytes().await.unwrap();
    assert_eq!(bytes[0], 0x47, "an MPEG-TS segment from the bucket");

    // The keys in the bucket: `uploads/<id>/original` and `assets/<id>/hls/<rendition>/<file>`.
    let store = S3Store::new(&config).unwrap();
    let original_key = key(&format!(
        "uploads/{}/original",
        asset["upload_id"].as_str().unwrap()
    ));
    let mut parts = segment_url.path().rsplit('/');
    let (file, rendition) = (parts.next().unwrap(), parts.next().unwrap());
    let segment_key = key(&openvod::assets::model::Asset::hls_key(
        &asset_id, rendition, file,
    ));
    assert!(store.size(&original_key).await.unwrap().is_some());
    assert!(store.size(&segment_key).await.unwrap().is_some());

    let (status, _) = app
        .api_json(
            reqwest::Method::DELETE,
            &format!("/video/v1/assets/{asset_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    eventually("the asset's media are gone from the bucket", || async {
        store.size(&segment_key).await.unwrap().is_none()
            && store.size(&original_key).await.unwrap().is_none()
    })
    .await;
}

/// With `redirect_reads`, large reads (a master download, a Tencent-style file) answer 302 to a
/// presigned URL of the bucket, which serves the bytes; segments stay served by openvod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_reads_redirect_to_presigned_bucket_urls_when_asked() {
    let prefix = format!("redirect-{}", openvod::id::random_id());
    let mut config = test_bucket(&prefix);
    config.redirect_reads = true;
    let app = TestApp::spawn_with(1, move |c| c.storage = config).await;
    let asset_id = app
        .upload_file(clip(), serde_json::json!({"playback_policy": "public"}))
        .await;
    eventually("the asset is ready", || async {
        app.get_asset(&asset_id).await["status"] == "ready"
    })
    .await;
    let (_, json) = app
        .api_json(
            reqwest::Method::PUT,
            &format!("/video/v1/assets/{asset_id}/master-access"),
            Some(serde_json::json!({"master_access": "temporary"})),
        )
        .await;
    let master_url = json["data"]["master"]["url"].as_str().unwrap().to_owned();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let endpoint = std::env::var("OPENVOD_TEST_S3_ENDPOINT").unwrap();
    for url in [
        master_url,
        format!(
            "{}/vod/{}/src.mp4",
            app.base_url,
            app.get_asset(&asset_id).await["file_id"].as_str().unwrap()
        ),
    ] {
        let r = no_redirects.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 302, "{url}");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&endpoint), "{location}");
        let bytes = no_redirects.get(&location).send().await.unwrap();
        assert_eq!(bytes.status(), 200, "{location}");
        assert_eq!(
            bytes.bytes().await.unwrap().as_ref(),
            crate::support::clip_bytes()
        );
    }
    // Playlists and segments are served by openvod itself.
    let pid = app.get_asset(&asset_id).await["playback_ids"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let master_url = reqwest::Url::parse(&format!("{}/{pid}.m3u8", app.base_url)).unwrap();
    let first_uri = |text: &str| {
        text.lines()
            .find(|l| !l.starts_with('#') && !l.is_empty())
            .expect("a URI")
            .to_owned()
    };
    let master = no_redirects.get(master_url.clone()).send().await.unwrap();
    assert_eq!(master.status(), 200);
    let media_url = master_url
        .join(&first_uri(&master.text().await.unwrap()))
        .unwrap();
    let playlist = no_redirects.get(media_url.clone()).send().await.unwrap();
    let segment_url = media_url
        .join(&first_uri(&playlist.text().await.unwrap()))
        .unwrap();
    let segment = no_redirects.get(segment_url).send().await.unwrap();
    assert_eq!(segment.status(), 200);
    assert_eq!(segment.bytes().await.unwrap()[0], 0x47);
}

/// Points `config` at its bucket through a fault proxy that meets its first requests with
/// `faults` (and what a test asks for later).
async fn through_fault_proxy(
    config: &mut openvod::config::StorageConfig,
    faults: &[crate::fault_proxy::Fault],
) -> crate::fault_proxy::FaultProxy {
    let upstream = config
        .endpoint
        .clone()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let proxy = crate::fault_proxy::FaultProxy::start(&upstream, faults).await;
    config.endpoint = Some(proxy.url.clone());
    proxy
}

/// A server whose bucket (a fresh one, made through a clean network) is reached through a fault
/// proxy: the faults a test asks for meet the server's own requests.
async fn app_behind_fault_proxy(name: &str) -> (TestApp, crate::fault_proxy::FaultProxy) {
    let mut config = test_bucket(&format!("{name}-{}", openvod::id::random_id()));
    let proxy = through_fault_proxy(&mut config, &[]).await;
    let app = TestApp::spawn_with(1, move |c| c.storage = config).await;
    (app, proxy)
}

/// The bucket behind a network that cuts, resets and loses answers: an upload still ends with
/// exactly its bytes in the bucket, and the asset is encoded and plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_network_to_the_bucket_loses_no_upload() {
    use crate::fault_proxy::Fault;
    let (app, proxy) = app_behind_fault_proxy("faults").await;
    let data = crate::support::clip_bytes();
    proxy.fault_next(&[
        Fault::ResetAfter(300),
        Fault::TruncateAfter(1_000),
        Fault::DropResponse,
        Fault::ResetAfter(5_000),
    ]);
    let asset_id = app
        .upload_file(clip(), serde_json::json!({"playback_policy": "public"}))
        .await;
    eventually("the asset is ready", || async {
        let status = app.get_asset(&asset_id).await["status"].clone();
        assert_ne!(status, "errored", "a faulty network errored the asset");
        status == "ready"
    })
    .await;
    assert_eq!(proxy.pending(), 0, "the faults were not all met");
    assert_eq!(app.download_master(&asset_id).await, data);
}

/// A bucket that stays unreachable past every retry: the uploader is told to come back (503 with
/// `Retry-After`, in Mux's error shape), not that the server failed; sent again once the bucket
/// answers, as UpChunk and tus clients do, the upload completes with exact bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_down_past_every_retry_gets_503_and_the_resent_upload_is_exact() {
    use crate::fault_proxy::Fault;
    let (app, proxy) = app_behind_fault_proxy("down").await;
    let upload = app
        .create_upload(serde_json::json!({"new_asset_settings": {"playback_policy": "public"}}))
        .await;
    let url = upload["url"].as_str().unwrap().to_owned();
    let data = crate::support::clip_bytes();
    let send = || app.client.put(&url).body(data.clone()).send();
    // More resets than the store's retries (and the S3 client's own) can use up.
    proxy.fault_next(&[Fault::ResetAfter(0); 40]);
    crate::support::assert_unavailable(send().await.unwrap(), "temporarily unavailable").await;
    assert!(proxy.pending() < 40, "the faults were met");
    proxy.clear();
    let r = send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let asset_id = app.get_upload(upload["id"].as_str().unwrap()).await["asset_id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the asset is ready", || async {
        let status = app.get_asset(&asset_id).await["status"].clone();
        assert_ne!(status, "errored");
        status == "ready"
    })
    .await;
    assert_eq!(app.download_master(&asset_id).await, data);
}

/// A multipart initiation whose answer is lost is retried, and the upload the bucket made for the
/// lost answer is aborted once the object is written: no open upload is left to cost storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_initiation_answer_leaves_no_open_upload_behind() {
    use crate::fault_proxy::Fault;
    let mut config = test_bucket(&format!("initiate-{}", openvod::id::random_id()));
    S3Store::new(&config)
        .unwrap()
        .ensure_bucket()
        .await
        .unwrap();
    // The first request of a multipart write is its initiation.
    let proxy = through_fault_proxy(&mut config, &[Fault::DropResponse]).await;
    let store = S3Store::new(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..(9 << 20) + 5)
        .map(|i: u32| (i * 11 % 249) as u8)
        .collect();
    let source = dir.path().join("big.bin");
    std::fs::write(&source, &data).unwrap();
    let big = key("big.bin");
    store.put_file(&big, &source).await.unwrap();
    assert_eq!(proxy.pending(), 0, "the initiation's answer was lost");
    let open = store.uploads_in_progress(&big).await.unwrap();
    assert!(
        open.is_empty(),
        "the upload of the lost answer was aborted: {open:?}"
    );
    let stored = store
        .get(&big, 0, None)
        .await
        .unwrap()
        .into_bytes()
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), &data[..]);
}

/// Another writer's upload open on the same key (a late worker's, say) is not aborted by a write
/// whose initiation went through at once: only the leftovers of lost initiation answers are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_leaves_another_writers_open_upload_of_its_key_alone() {
    let prefix = format!("other-writer-{}", openvod::id::random_id());
    let config = test_bucket(&prefix);
    let store = S3Store::new(&config).unwrap();
    store.ensure_bucket().await.unwrap();
    let other = s3::Bucket::new(
        "openvod-test",
        s3::Region::Custom {
            region: "us-east-1".into(),
            endpoint: config.endpoint.clone().unwrap(),
        },
        s3::creds::Credentials::new(None, None, None, None, None).unwrap(),
    )
    .unwrap()
    .with_path_style();
    let theirs = other
        .initiate_multipart_upload(&format!("/{prefix}/big.bin"), "application/octet-stream")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("big.bin");
    std::fs::write(&source, vec![5u8; (9 << 20) + 3]).unwrap();
    let big = key("big.bin");
    store.put_file(&big, &source).await.unwrap();
    let open: Vec<String> = store
        .uploads_in_progress(&big)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(
        open,
        vec![theirs.upload_id.clone()],
        "the other writer's upload is still open"
    );
    other
        .abort_upload(&format!("/{prefix}/big.bin"), &theirs.upload_id)
        .await
        .unwrap();
}
