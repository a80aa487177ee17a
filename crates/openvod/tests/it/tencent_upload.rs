//! Tencent VOD's upload protocol: ApplyUpload → the SDK's COS requests to openvod's storage
//! target → CommitUpload → NewFileUpload. The real vod-python-sdk does the happy paths
//! (`tests/py/vod_upload_check.py`); here, requests signed by hand try what must be refused.

use reqwest::StatusCode;
use serde_json::{json, Value};

use openvod::compat::tencent::cos_sign::cos_authorization;
use openvod::compat::tencent::upload::{apply_upload, commit_upload, TempCredential};

use crate::support::{generate, TestApp};

fn large_clip() -> std::path::PathBuf {
    // About 2.5 MB: more than the SDK's 1 MB single-PUT limit, so it takes the multipart path.
    generate(
        "tencent-large.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "6M",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    )
}

fn cover() -> std::path::PathBuf {
    generate(
        "tencent-cover.jpg",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180",
            "-frames:v",
            "1",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vod_python_sdk_uploads_pulls_searches_and_modifies_media() {
    let app = TestApp::spawn_with(1, |c| {
        c.tencent.procedures.insert("flow1".into(), vec![100010]);
    })
    .await;
    let large = large_clip();
    assert!(std::fs::metadata(&large).unwrap().len() > 1 << 20);
    let cover = cover();
    let cover_png = generate(
        "tencent-cover.png",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90",
            "-frames:v",
            "1",
        ],
    );
    let pull_url = format!("{}/clip.mp4", crate::assets::serve_clip().await);
    crate::python_clients::run_script(
        "vod_upload_check.py",
        &[
            ("OPENVOD_URL", app.base_url.as_str()),
            ("OPENVOD_TOKEN_ID", app.token_id.as_str()),
            ("OPENVOD_TOKEN_SECRET", app.token_secret.as_str()),
            ("OPENVOD_SMALL", crate::support::clip().to_str().unwrap()),
            ("OPENVOD_LARGE", large.to_str().unwrap()),
            ("OPENVOD_COVER", cover.to_str().unwrap()),
            ("OPENVOD_PROCEDURE", "flow1"),
            ("OPENVOD_COVER_PNG", cover_png.to_str().unwrap()),
            ("OPENVOD_PULL_URL", pull_url.as_str()),
        ],
    )
    .await;
}

struct Applied {
    upload_id: String,
    media_path: String,
    cover_path: String,
    session_key: String,
    credential: TempCredential,
}

async fn apply(app: &TestApp, params: Value) -> Applied {
    let r = apply_upload(&app.state, &params).await.unwrap();
    let media_path = r["MediaStoragePath"].as_str().unwrap().to_owned();
    let upload_id = media_path.split('/').nth(2).unwrap().to_owned();
    let c = &r["TempCertificate"];
    Applied {
        credential: TempCredential {
            secret_id: c["SecretId"].as_str().unwrap().to_owned(),
            secret_key: c["SecretKey"].as_str().unwrap().to_owned(),
            token: c["Token"].as_str().unwrap().to_owned(),
            expires: c["ExpiredTime"].as_i64().unwrap(),
        },
        upload_id,
        media_path,
        cover_path: r["CoverStoragePath"].as_str().unwrap().to_owned(),
        session_key: r["VodSessionKey"].as_str().unwrap().to_owned(),
    }
}

/// A PUT of `body` to `path`, signed with `credential` the way the COS SDKs sign, with the
/// security token `token`.
async fn put(
    app: &TestApp,
    path: &str,
    credential: &TempCredential,
    token: &str,
    body: &'static [u8],
    tamper: bool,
) -> (StatusCode, String) {
    let now = openvod::id::now_unix();
    let window = format!("{};{}", now - 60, now + 600);
    put_signed_for(app, path, credential, token, body, tamper, &window).await
}

/// `put` with the signature's `q-sign-time` window given.
async fn put_signed_for(
    app: &TestApp,
    path: &str,
    credential: &TempCredential,
    token: &str,
    body: &'static [u8],
    tamper: bool,
    window: &str,
) -> (StatusCode, String) {
    let auth = |auth: String| {
        if !tamper {
            return auth;
        }
        let mut auth = auth;
        let last = auth.pop().unwrap();
        auth.push(if last == '0' { '1' } else { '0' });
        auth
    };
    cos_request(
        app,
        reqwest::Method::PUT,
        path,
        &[],
        credential,
        token,
        body,
        window,
        auth,
    )
    .await
}

/// A COS request of `method` to `path?query`, signed with `credential` as the COS SDKs sign
/// (over the query's parameters, `host`, `content-length` and the security token); `auth` may
/// alter the `Authorization` header made.
#[allow(clippy::too_many_arguments)]
async fn cos_request(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    credential: &TempCredential,
    token: &str,
    body: &'static [u8],
    window: &str,
    auth: impl FnOnce(String) -> String,
) -> (StatusCode, String) {
    let request = signed_cos_request(
        &app.client,
        &app.base_url,
        method,
        path,
        query,
        (credential, token),
        body.len(),
        window,
        auth,
    );
    let r = request.body(body).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// The request `cos_request` sends, to the server at `base`, for a body of `length` bytes (not
/// yet attached, so it can be a stream).
#[allow(clippy::too_many_arguments)]
fn signed_cos_request(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    (credential, token): (&TempCredential, &str),
    length: usize,
    window: &str,
    auth: impl FnOnce(String) -> String,
) -> reqwest::RequestBuilder {
    let mut url = reqwest::Url::parse(&format!("{}{path}", base.trim_end_matches('/'))).unwrap();
    for (name, value) in query {
        if value.is_empty() {
            // `?uploads`, as the SDKs send it: a name without `=`.
            let joined = match url.query() {
                Some(q) => format!("{q}&{name}"),
                None => (*name).to_owned(),
            };
            url.set_query(Some(&joined));
        } else {
            url.query_pairs_mut().append_pair(name, value);
        }
    }
    let mut headers = vec![
        ("host".to_owned(), url.host_str().unwrap().to_owned()),
        ("x-cos-security-token".to_owned(), token.to_owned()),
    ];
    // reqwest sends no content-length for an empty body, so none is signed then.
    if length > 0 {
        headers.push(("content-length".to_owned(), length.to_string()));
    }
    let params: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let authorization = auth(cos_authorization(
        &credential.secret_id,
        &credential.secret_key,
        method.as_str(),
        path,
        &params,
        &headers,
        window,
    ));
    let request = client
        .request(method, url)
        .header("authorization", authorization)
        .header("x-cos-security-token", token);
    if length > 0 {
        request.header("content-length", length)
    } else {
        request
    }
}

/// The `UploadId` of an `InitiateMultipartUploadResult`.
fn upload_id_in(body: &str) -> String {
    body.split("<UploadId>")
        .nth(1)
        .and_then(|rest| rest.split("</UploadId>").next())
        .unwrap_or_else(|| panic!("no UploadId in {body}"))
        .to_owned()
}

/// The multipart calls an SDK makes to resume or give up, over HTTP: parts already sent are
/// listed with their ETags and sizes, the unfinished upload is listed under its key, and an
/// abort removes it so that neither a listing nor a further part finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_parts_are_listed_for_resume_and_an_abort_removes_them() {
    let app = TestApp::spawn().await;
    let a = apply(&app, json!({"MediaType": "mp4"})).await;
    let (c, token) = (&a.credential, a.credential.token.clone());
    let now = openvod::id::now_unix();
    let window = format!("{};{}", now - 60, now + 600);
    let path = a.media_path.as_str();
    // Every call here is signed correctly; only what it asks for changes.
    let send = |method, path: &str, query: &[(&str, &str)], body: &'static [u8]| {
        let path = path.to_owned();
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (app, c, token, window) = (&app, c, token.clone(), window.clone());
        async move {
            let query: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            cos_request(app, method, &path, &query, c, &token, body, &window, |a| a).await
        }
    };
    let (status, body) = send(reqwest::Method::POST, path, &[("uploads", "")], b"").await;
    assert_eq!(status, 200, "{body}");
    let id = upload_id_in(&body);
    let part: &'static [u8] = b"the first part of a resumed upload";
    let (status, body) = send(
        reqwest::Method::PUT,
        path,
        &[("partNumber", "1"), ("uploadId", &id)],
        part,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let md5 = format!("{:x}", <md5::Md5 as md5::Digest>::digest(part));
    let (status, listed) = send(reqwest::Method::GET, path, &[("uploadId", &id)], b"").await;
    assert_eq!(status, 200, "{listed}");
    assert!(listed.contains("<PartNumber>1</PartNumber>"), "{listed}");
    assert!(
        listed.contains(&format!("<ETag>&quot;{md5}&quot;</ETag>")),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("<Size>{}</Size>", part.len())),
        "{listed}"
    );
    let prefix = path.trim_start_matches('/');
    let (status, uploads) = send(
        reqwest::Method::GET,
        "/",
        &[("uploads", ""), ("prefix", prefix)],
        b"",
    )
    .await;
    assert_eq!(status, 200, "{uploads}");
    assert!(
        uploads.contains(&format!("<UploadId>{id}</UploadId>")),
        "{uploads}"
    );

    let (status, body) = send(reqwest::Method::DELETE, path, &[("uploadId", &id)], b"").await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = send(reqwest::Method::GET, path, &[("uploadId", &id)], b"").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("NoSuchUpload"), "{body}");
    let (status, body) = send(
        reqwest::Method::PUT,
        path,
        &[("partNumber", "2"), ("uploadId", &id)],
        part,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (_, uploads) = send(
        reqwest::Method::GET,
        "/",
        &[("uploads", ""), ("prefix", prefix)],
        b"",
    )
    .await;
    assert!(
        !uploads.contains(&id),
        "an aborted upload is still listed: {uploads}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cos_requests_are_refused_unless_signed_scoped_and_current() {
    let app = TestApp::spawn().await;
    let a = apply(&app, json!({"MediaType": "mp4", "CoverType": "jpg"})).await;
    let b = apply(&app, json!({"MediaType": "mp4"})).await;
    let objects = app.state.ingest.objects();
    let stored = |upload: String| async move {
        objects.path(&upload, "media.mp4").await.is_some()
            || objects.path(&upload, "cover.jpg").await.is_some()
    };

    // Tampered signature.
    let (status, body) = put(
        &app,
        &a.media_path,
        &a.credential,
        &a.credential.token,
        b"xx",
        true,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );
    // Another upload's credential for this path.
    let (status, body) = put(
        &app,
        &a.media_path,
        &b.credential,
        &b.credential.token,
        b"xx",
        false,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>AccessDenied</Code>") && body.contains("not valid for this path"),
        "{body}"
    );
    // The right credential with another credential's token.
    let (status, body) = put(
        &app,
        &a.media_path,
        &a.credential,
        &b.credential.token,
        b"xx",
        false,
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>InvalidToken</Code>"), "{body}");
    // An object ApplyUpload did not hand out.
    let other = a.media_path.replace("media.mp4", "other.mp4");
    let (status, _) = put(
        &app,
        &other,
        &a.credential,
        &a.credential.token,
        b"xx",
        false,
    )
    .await;
    assert_eq!(status, 403);
    // An expired credential (ours, validly signed, past its time).
    let expired = app
        .state
        .vod_uploads
        .credential(&a.upload_id, openvod::id::now_unix() - 5);
    let (status, body) = put(&app, &a.media_path, &expired, &expired.token, b"xx", false).await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>ExpiredToken</Code>"), "{body}");
    // A made-up SecretId.
    let mut made_up = a.credential.clone();
    made_up.secret_id = "AKIDnotours".into();
    let (status, body) = put(
        &app,
        &a.media_path,
        &made_up,
        &a.credential.token,
        b"xx",
        false,
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>InvalidAccessKeyId</Code>"), "{body}");
    // A signature whose q-sign-time window is over (a replayed request), or absurd.
    let now = openvod::id::now_unix();
    for window in [
        format!("{};{}", now - 7200, now - 3600),
        format!("{};{}", now + 3600, now + 7200),
        format!("{};{}", i64::MIN, now - 3600),
    ] {
        let (status, body) = put_signed_for(
            &app,
            &a.media_path,
            &a.credential,
            &a.credential.token,
            b"xx",
            false,
            &window,
        )
        .await;
        assert_eq!(status, 403, "{window}: {body}");
        assert!(body.contains("<Code>"), "{window}: {body}");
    }
    assert!(
        !stored(a.upload_id.clone()).await,
        "nothing stored by refused requests"
    );

    // Commit before the media file arrives, and with a forged session key.
    let commit = |key: String| {
        let state = app.state.clone();
        async move { commit_upload(&state, &json!({ "VodSessionKey": key })).await }
    };
    let early = commit(a.session_key.clone()).await.unwrap_err();
    assert_eq!(early.code, "FailedOperation", "{early:?}");
    assert!(early.message.contains("was not uploaded"), "{early:?}");
    let forged = commit(format!("x{}", a.session_key)).await.unwrap_err();
    assert_eq!(forged.code, "InvalidParameterValue.VodSessionKey");

    // The right request is stored; a cover is required once CoverType was given.
    let (status, _) = put(
        &app,
        &a.media_path,
        &a.credential,
        &a.credential.token,
        b"not a video",
        false,
    )
    .await;
    assert_eq!(status, 200);
    let no_cover = commit(a.session_key.clone()).await.unwrap_err();
    assert!(no_cover.message.contains("cover"), "{no_cover:?}");
    let (status, _) = put(
        &app,
        &a.cover_path,
        &a.credential,
        &a.credential.token,
        b"jpeg",
        false,
    )
    .await;
    assert_eq!(status, 200);

    // A session never committed expires: its bytes go, its key and credential stop working.
    let (status, _) = put(
        &app,
        &b.media_path,
        &b.credential,
        &b.credential.token,
        b"bytes",
        false,
    )
    .await;
    assert_eq!(status, 200);
    assert!(stored(b.upload_id.clone()).await);
    app.state
        .ingest
        .expire_uploads(openvod::id::now_unix() + 2 * 3600)
        .await
        .unwrap();
    assert!(
        !stored(b.upload_id.clone()).await,
        "an expired session's bytes are removed"
    );
    let late = commit(b.session_key.clone()).await.unwrap_err();
    assert_eq!(late.code, "InvalidParameterValue.VodSessionKey", "{late:?}");

    // The sweep expired `a` too, though its file and cover had arrived: never committed, refused.
    let swept = commit(a.session_key.clone()).await.unwrap_err();
    assert_eq!(
        swept.code, "InvalidParameterValue.VodSessionKey",
        "{swept:?}"
    );
    assert!(!stored(a.upload_id.clone()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_is_idempotent_and_makes_one_media_file() {
    let app = TestApp::spawn().await;
    let a = apply(
        &app,
        json!({"MediaType": "mp4", "MediaName": "Lecture 1", "SourceContext": "ctx-1", "ExpireTime": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let (status, _) = put(
        &app,
        &a.media_path,
        &a.credential,
        &a.credential.token,
        b"some bytes",
        false,
    )
    .await;
    assert_eq!(status, 200);
    let first = commit_upload(&app.state, &json!({"VodSessionKey": a.session_key}))
        .await
        .unwrap();
    let again = commit_upload(&app.state, &json!({"VodSessionKey": a.session_key}))
        .await
        .unwrap();
    assert_eq!(first["FileId"], again["FileId"]);
    let media = app.fetch(first["MediaUrl"].as_str().unwrap()).await;
    assert_eq!(media.bytes().await.unwrap().as_ref(), b"some bytes");
    let (_, assets) = app
        .api_json(reqwest::Method::GET, "/video/v1/assets", None)
        .await;
    let list = assets["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{assets}");
    assert_eq!(list[0]["meta"]["title"], "Lecture 1");
    assert_eq!(list[0]["passthrough"], "ctx-1");
    let asset = app
        .state
        .assets
        .get_by_file_id(first["FileId"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        asset.settings.expire_at,
        Some(4_070_908_800),
        "ExpireTime of ApplyUpload"
    );
    // The credential stops working once the upload is committed.
    let (status, _) = put(
        &app,
        &a.media_path,
        &a.credential,
        &a.credential.token,
        b"more",
        false,
    )
    .await;
    assert_eq!(status, 403);
    // Bad ApplyUpload input is refused with Tencent's codes.
    for (params, code) in [
        (json!({}), "MissingParameter"),
        (
            json!({"MediaType": "m p4"}),
            "InvalidParameterValue.MediaType",
        ),
        (
            json!({"MediaType": "mp4", "Procedure": "nope"}),
            "InvalidParameterValue.Procedure",
        ),
        (
            json!({"MediaType": "mp4", "SourceContext": "x".repeat(251)}),
            "InvalidParameterValue.SourceContext",
        ),
    ] {
        let e = apply_upload(&app.state, &params).await.unwrap_err();
        assert_eq!(e.code, code, "{params}");
    }
}

/// Key Hotlink Protection: with `[tencent] hotlink_key`, media URLs need a current signature over
/// their directory, as Tencent's `anti_leech_sign` demo computes it, and are played from no more
/// client addresses than their `rlimit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotlink_protected_urls_need_a_current_signature() {
    use openvod::compat::tencent::hotlink::sign;
    let app = TestApp::spawn_with(0, |c| {
        c.tencent.hotlink_key = Some("s3cret-key".into());
        c.tencent.hotlink_viewer_header = Some("x-real-ip".into());
    })
    .await;
    let a = apply(&app, json!({"MediaType": "mp4"})).await;
    let (status, _) = put(
        &app,
        &a.media_path,
        &a.credential,
        &a.credential.token,
        b"protected",
        false,
    )
    .await;
    assert_eq!(status, 200);
    let committed = commit_upload(&app.state, &json!({"VodSessionKey": a.session_key}))
        .await
        .unwrap();
    let url = reqwest::Url::parse(committed["MediaUrl"].as_str().unwrap()).unwrap();
    let path = url.path().to_owned();
    let get_from = |query: String, viewer: Option<&'static str>| {
        let mut url = url.clone();
        url.set_query(Some(&query).filter(|q| !q.is_empty()).map(String::as_str));
        let mut request = app.client.get(url);
        if let Some(ip) = viewer {
            request = request.header("x-real-ip", ip);
        }
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.bytes().await.unwrap())
        }
    };
    let get = |query: String| get_from(query, None);
    let t = format!("{:x}", openvod::id::now_unix() + 300);
    let good = sign("s3cret-key", &path, &t, "", "2", "r4nd");
    let query = format!("t={t}&rlimit=2&us=r4nd&sign={good}");
    let (status, body) = get(query.clone()).await;
    assert_eq!((status, body.as_ref()), (StatusCode::OK, &b"protected"[..]));
    // rlimit=2: this machine (the peer address) and one more viewer; then no one new.
    let (status, _) = get_from(query.clone(), Some("192.0.2.1")).await;
    assert_eq!(status, 200, "a second viewer");
    let (status, body) = get_from(query.clone(), Some("192.0.2.2")).await;
    assert_eq!(status, 403, "a third viewer");
    assert!(
        String::from_utf8_lossy(&body).contains("rlimit"),
        "{body:?}"
    );
    let (status, _) = get(query.clone()).await;
    assert_eq!(status, 200, "a counted viewer comes back");
    let (status, _) = get_from(query.clone(), Some("198.51.100.7, 192.0.2.1")).await;
    assert_eq!(status, 200, "the proxy's last entry is the viewer");
    // The count is the database's: a second server on it admits no one new either, and admits
    // the counted viewers.
    let second = TestApp::spawn_with(0, |c| {
        c.data_dir = app.config.data_dir.clone();
        c.database = app.config.database.clone();
        c.storage = app.config.storage.clone();
        c.tencent = app.config.tencent.clone();
    })
    .await;
    let on_second = |query: &str, viewer: &'static str| {
        let mut url = reqwest::Url::parse(&second.base_url)
            .unwrap()
            .join(&path)
            .unwrap();
        url.set_query(Some(query));
        let request = second.client.get(url).header("x-real-ip", viewer);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(on_second(&query, "192.0.2.3").await, 403, "a third viewer");
    assert_eq!(on_second(&query, "192.0.2.1").await, 200, "a counted one");
    let other = sign("s3cret-key", &path, &t, "", "2", "other");
    let (status, _) = get_from(
        format!("t={t}&rlimit=2&us=other&sign={other}"),
        Some("192.0.2.2"),
    )
    .await;
    assert_eq!(status, 200, "another signed URL counts its own viewers");
    let (status, body) = get(String::new()).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("hotlink-protection signature"));
    let (status, _) = get(format!("t={t}&rlimit=3&us=r4nd&sign={good}")).await;
    assert_eq!(status, 403, "a tampered parameter");
    let (status, _) = get(format!(
        "t={t}&rlimit=2&us=r4nd&sign={}",
        sign("other", &path, &t, "", "2", "r4nd")
    ))
    .await;
    assert_eq!(status, 403, "signed with another key");
    let old = format!("{:x}", openvod::id::now_unix() - 1);
    let (status, body) = get(format!(
        "t={old}&sign={}",
        sign("s3cret-key", &path, &old, "", "", "")
    ))
    .await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("expired"));
}

/// Media whose ExpireTime has passed are deleted by the periodic upkeep; later ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_past_their_expire_time_are_deleted() {
    let app = TestApp::spawn().await;
    let mut file_ids = Vec::new();
    for _ in 0..2 {
        let a = apply(&app, json!({"MediaType": "mp4"})).await;
        let (status, _) = put(
            &app,
            &a.media_path,
            &a.credential,
            &a.credential.token,
            b"x",
            false,
        )
        .await;
        assert_eq!(status, 200);
        let c = commit_upload(&app.state, &json!({"VodSessionKey": a.session_key}))
            .await
            .unwrap();
        file_ids.push(c["FileId"].as_str().unwrap().to_owned());
    }
    for (file_id, expire) in file_ids
        .iter()
        .zip(["2020-01-01T00:00:00Z", "2099-01-01T00:00:00+08:00"])
    {
        openvod::compat::tencent::media::modify_media_info(
            &app.state,
            &json!({"FileId": file_id, "ExpireTime": expire}),
        )
        .await
        .unwrap();
    }
    let bad = openvod::compat::tencent::media::modify_media_info(
        &app.state,
        &json!({"FileId": file_ids[1], "ExpireTime": "tomorrow"}),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code, "InvalidParameterValue.ExpireTime");
    let deleted = app
        .state
        .assets
        .delete_expired(openvod::id::now_unix())
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(app.state.assets.get_by_file_id(&file_ids[0]).await.is_err());
    let kept = app.state.assets.get_by_file_id(&file_ids[1]).await.unwrap();
    assert_eq!(kept.settings.expire_at, Some(4_070_880_000));
}

/// An upload signature as the app's server makes it for `vod-js-sdk-v6`:
/// `base64(HMAC-SHA1(SecretKey, original) ‖ original)`.
fn ugc_signature(secret_id: &str, secret_key: &str, expire_in: i64, extra: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let now = openvod::id::now_unix();
    let original = format!(
        "secretId={secret_id}&currentTimeStamp={now}&expireTime={}&random=12345{extra}",
        now + expire_in
    );
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret_key.as_bytes()).unwrap();
    mac.update(original.as_bytes());
    let mut raw = mac.finalize().into_bytes().to_vec();
    raw.extend_from_slice(original.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

async fn ugc(app: &TestApp, action: &str, body: Value) -> Value {
    let r = app
        .client
        .post(format!("{}/v3/index.php?Action={action}", app.base_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    r.json().await.unwrap()
}

/// The browser upload API: signatures made by the app's server are checked (tampered, expired,
/// unknown key, reused one-time), and a good one leads to a media file with the signature's
/// task flow and contexts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ugc_upload_signatures_are_verified_and_lead_to_a_media_file() {
    let app = TestApp::spawn_with(0, |c| {
        c.tencent.procedures.insert("flow1".into(), vec![100010]);
    })
    .await;
    let (id, key) = (app.token_id.clone(), app.token_secret.clone());
    let good = ugc_signature(
        &id,
        &key,
        600,
        "&procedure=flow1&sourceContext=from-web&oneTimeValid=1",
    );

    let tampered = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut raw = engine.decode(&good).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        engine.encode(raw)
    };
    for (signature, code, words) in [
        (tampered, 10002, "invalid signature"),
        (
            ugc_signature(&id, "not the secret", 600, ""),
            10002,
            "invalid signature",
        ),
        (
            ugc_signature("AKIDunknown", &key, 600, ""),
            10002,
            "invalid signature",
        ),
        (ugc_signature(&id, &key, -1, ""), 10003, "signature expired"),
        ("not base64!".to_owned(), 10002, "invalid signature"),
    ] {
        let r = ugc(
            &app,
            "ApplyUploadUGC",
            json!({"signature": signature, "videoName": "a", "videoType": "mp4"}),
        )
        .await;
        assert_eq!(r["code"], code, "{r}");
        assert!(r["message"].as_str().unwrap().contains(words), "{r}");
    }

    let applied = ugc(
        &app,
        "ApplyUploadUGC",
        json!({"signature": good, "videoName": "From the browser", "videoType": "video/mp4", "videoSize": 10}),
    )
    .await;
    assert_eq!(applied["code"], 0, "{applied}");
    let data = &applied["data"];
    assert_eq!(
        format!(
            "{}-{}",
            data["storageBucket"].as_str().unwrap(),
            data["storageAppId"]
        ),
        "openvod-1250000000"
    );
    // The signature was valid once.
    let again = ugc(
        &app,
        "ApplyUploadUGC",
        json!({"signature": good, "videoType": "mp4"}),
    )
    .await;
    assert_eq!(again["code"], 10002, "{again}");
    assert!(
        again["message"].as_str().unwrap().contains("used"),
        "{again}"
    );

    let c = &data["tempCertificate"];
    let credential = TempCredential {
        secret_id: c["secretId"].as_str().unwrap().to_owned(),
        secret_key: c["secretKey"].as_str().unwrap().to_owned(),
        token: c["token"].as_str().unwrap().to_owned(),
        expires: c["expiredTime"].as_i64().unwrap(),
    };
    let path = data["video"]["storagePath"].as_str().unwrap();
    let (status, _) = put(
        &app,
        path,
        &credential,
        &credential.token,
        b"web bytes",
        false,
    )
    .await;
    assert_eq!(status, 200);
    let committed = ugc(
        &app,
        "CommitUploadUGC",
        json!({"signature": ugc_signature(&id, &key, 600, ""), "vodSessionKey": data["vodSessionKey"]}),
    )
    .await;
    assert_eq!(committed["code"], 0, "{committed}");
    let file_id = committed["data"]["fileId"].as_str().unwrap();
    let asset = app.state.assets.get_by_file_id(file_id).await.unwrap();
    assert_eq!(
        asset.settings.meta.title.as_deref(),
        Some("From the browser")
    );
    assert_eq!(asset.passthrough.as_deref(), Some("from-web"));
    let procedure = asset.settings.procedure.expect("the signature's task flow");
    assert_eq!(procedure.outputs.len(), 1);
    let media = app
        .fetch(committed["data"]["video"]["url"].as_str().unwrap())
        .await;
    assert_eq!(media.bytes().await.unwrap().as_ref(), b"web bytes");
    // An app server's signature cannot commit someone else's session key.
    let forged = ugc(
        &app,
        "CommitUploadUGC",
        json!({"signature": ugc_signature(&id, &key, 600, ""), "vodSessionKey": "x.y.z"}),
    )
    .await;
    assert_eq!(forged["code"], 10001, "{forged}");
}

/// Tencent's browser SDK, vod-js-sdk-v6, unchanged, uploads from an app's page in Chromium with a
/// signature from the app's server; the file becomes a media file with the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vod_js_sdk_uploads_from_a_page_in_chromium() {
    let app = TestApp::spawn().await;
    let report = crate::browser::run_browser_script_with(
        &app,
        "vod_js_sdk.mjs",
        &[("OPENVOD_CLIP", crate::support::clip().as_os_str())],
    )
    .await;
    assert_eq!(report["problems"], json!([]), "{report:#}");
    let file_id = report["result"]["fileId"].as_str().expect("a FileId");
    let asset = app.state.assets.get_by_file_id(file_id).await.unwrap();
    assert_eq!(asset.passthrough.as_deref(), Some("from-the-browser"));
    let media = app.fetch(report["result"]["url"].as_str().unwrap()).await;
    assert_eq!(
        media.bytes().await.unwrap().as_ref(),
        crate::support::clip_bytes()
    );
    let routed = report["routed"].as_array().unwrap();
    assert!(
        routed
            .iter()
            .any(|r| r.as_str().unwrap().contains("ApplyUploadUGC"))
            && routed
                .iter()
                .any(|r| r.as_str().unwrap().contains(".myqcloud.com/cos/")),
        "{report:#}"
    );
}

/// What browsers ask before the SDK's cross-origin calls: preflights of the upload target, of
/// the bucket-level listing at `/` and of the browser upload API are answered for any origin,
/// and answers carry the headers the SDK reads.
#[tokio::test]
async fn browser_preflights_are_answered_and_answers_readable() {
    let app = TestApp::spawn().await;
    for (path, method, headers) in [
        (
            "/cos/abc/media.mp4",
            "PUT",
            "authorization,x-cos-security-token,content-type",
        ),
        (
            "/?uploads&prefix=cos/abc/media.mp4",
            "GET",
            "authorization,x-cos-security-token",
        ),
        (
            "/v3/index.php?Action=ApplyUploadUGC",
            "POST",
            "content-type",
        ),
    ] {
        let r = app
            .client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base_url))
            .header("origin", "https://app.example")
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
        let allowed = r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap();
        assert!(allowed.contains(method), "{path}: {allowed}");
        // Named, not `*`: a wildcard does not cover Authorization.
        let allowed_headers = r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_owned();
        for asked in headers.split(',') {
            assert!(allowed_headers.contains(asked), "{path}: {allowed_headers}");
        }
    }
    // A refused COS request is still readable by the page, ETag exposed.
    let r = app
        .client
        .put(format!("{}/cos/abc/media.mp4", app.base_url))
        .header("origin", "https://app.example")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("etag"));
}

/// Key Hotlink Protection's `exper`: a URL signed for a preview serves only the first that many
/// seconds of the video (cut once, without re-encoding); the same file's full URL stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotlink_exper_urls_serve_only_the_first_seconds() {
    use openvod::compat::tencent::hotlink::sign;
    let app = TestApp::spawn_with(0, |c| c.tencent.hotlink_key = Some("s3cret-key".into())).await;
    let clip = crate::support::h264_clip("preview-source.mp4", "160x120", 15, 6, &[]);
    let asset_id = app.upload_file(&clip, json!({})).await;
    let file_id = app.get_asset(&asset_id).await["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/vod/{file_id}/src.mp4");
    let t = format!("{:x}", openvod::id::now_unix() + 300);
    let dir = tempfile::tempdir().unwrap();
    let fetch = |query: String| {
        let url = format!("{}{path}?{query}", app.base_url);
        let client = app.client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status(), r.bytes().await.unwrap())
        }
    };
    let duration = |bytes: &[u8], name: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        crate::support::ffprobe(&file)["format"]["duration"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let whole = sign("s3cret-key", &path, &t, "", "", "");
    let (status, full) = fetch(format!("t={t}&sign={whole}")).await;
    assert_eq!(status, 200);
    assert_eq!(full.as_ref(), std::fs::read(&clip).unwrap().as_slice());
    assert!(duration(&full, "full.mp4") > 5.5);

    let preview = sign("s3cret-key", &path, &t, "2", "", "");
    // Four first requests at once take turns on the cut: each gets the one stored preview.
    let first: Vec<_> = futures_util::future::join_all(
        (0..4).map(|_| fetch(format!("t={t}&exper=2&sign={preview}"))),
    )
    .await;
    for (status, bytes) in &first {
        assert_eq!(*status, 200);
        assert_eq!(
            bytes, &first[0].1,
            "every first request gets the same preview"
        );
    }
    for round in ["stored", "again"] {
        let (status, bytes) = fetch(format!("t={t}&exper=2&sign={preview}")).await;
        assert_eq!(status, 200, "{round}");
        let secs = duration(&bytes, &format!("{round}.mp4"));
        assert!(
            (1.5..=2.5).contains(&secs),
            "{round}: a 2 s preview lasts {secs} s"
        );
        let probed = crate::support::ffprobe(&dir.path().join(format!("{round}.mp4")));
        assert_eq!(
            probed["streams"].as_array().unwrap().len(),
            2,
            "video and audio"
        );
    }
    let (status, _) = fetch(format!("t={t}&exper=5&sign={preview}")).await;
    assert_eq!(status, 403, "a longer preview than signed");
    let bad = sign("s3cret-key", &path, &t, "soon", "", "");
    let (status, body) = fetch(format!("t={t}&exper=soon&sign={bad}")).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("exper"), "{body:?}");
    // exper=0 is the whole file, as without it.
    let zero = sign("s3cret-key", &path, &t, "0", "", "");
    let (status, bytes) = fetch(format!("t={t}&exper=0&sign={zero}")).await;
    assert_eq!((status, bytes.len()), (StatusCode::OK, full.len()));
}

/// `kill -9` of the server while a multipart part is being written in place: the parts it
/// acknowledged are listed after the restart with their ETags, the half-written one is not, and
/// the upload resumes (the slot it half-filled is not reused: the part comes again as a file of
/// its own) and completes with exactly the file's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_parts_survive_a_server_kill_9_and_the_upload_resumes() {
    let app = TestApp::spawn().await;
    let a = apply(&app, json!({"MediaType": "mp4"})).await;
    let credential = (&a.credential, a.credential.token.as_str());
    let now = openvod::id::now_unix();
    let window = format!("{};{}", now - 60, now + 600);
    let path = a.media_path.as_str();
    const PART: usize = 256 * 1024;
    let file: Vec<u8> = (0..3 * PART + 1000).map(|i| (i * 7 % 251) as u8).collect();
    let part = |n: usize| file[(n - 1) * PART..(n * PART).min(file.len())].to_vec();
    let md5_of = |b: &[u8]| format!("{:x}", <md5::Md5 as md5::Digest>::digest(b));
    let send = |base: String, method, query: Vec<(String, String)>, body: Vec<u8>| {
        let (client, window) = (app.client.clone(), window.clone());
        async move {
            let query: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let r = signed_cos_request(
                &client,
                &base,
                method,
                path,
                &query,
                credential,
                body.len(),
                &window,
                |a| a,
            )
            .body(body)
            .send()
            .await
            .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };

    let mut server = crate::support::serve_process(&app, &[]).await;
    let base = server.announced.trim_end_matches('/').to_owned();
    let (status, body) = send(
        base.clone(),
        reqwest::Method::POST,
        q(&[("uploads", "")]),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = upload_id_in(&body);
    let put_part = |base: String, n: usize| {
        let query = q(&[("partNumber", &n.to_string()), ("uploadId", &id)]);
        let sent = send(base, reqwest::Method::PUT, query, part(n));
        async move {
            let (status, body) = sent.await;
            assert_eq!(status, 200, "part {n}: {body}");
        }
    };
    for n in [1, 2] {
        put_part(base.clone(), n).await;
    }
    // Part 3 arrives half, then the server dies.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let half = part(3)[..PART / 2].to_vec();
    tx.send(Ok(half)).await.unwrap();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let in_flight = {
        let query = q(&[("partNumber", "3"), ("uploadId", &id)]);
        let query: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        signed_cos_request(
            &app.client,
            &base,
            reqwest::Method::PUT,
            path,
            &query,
            credential,
            PART,
            &window,
            |a| a,
        )
        .body(reqwest::Body::wrap_stream(stream))
        .send()
    };
    let in_flight = tokio::spawn(in_flight);
    let log = app
        .config
        .staging_dir()
        .join(format!("{}.objects", a.upload_id))
        .join(format!("mp-{id}"))
        .join("parts.log");
    // The slot of part 3 is claimed (its claim byte set) once its bytes are being written.
    let claimed = async {
        while std::fs::read(&log).map_or(true, |bytes| bytes.get(8 + 2) != Some(&1)) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), claimed)
        .await
        .expect("part 3 takes its slot");
    server.child.start_kill().unwrap(); // SIGKILL
    server.child.wait().await.unwrap();
    drop(tx);
    let answer = in_flight.await.unwrap();
    assert!(answer.is_err(), "part 3 was not acknowledged: {answer:?}");

    let server = crate::support::serve_process(&app, &[]).await;
    let base = server.announced.trim_end_matches('/').to_owned();
    let (status, listed) = send(
        base.clone(),
        reqwest::Method::GET,
        q(&[("uploadId", &id)]),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    for n in [1, 2] {
        assert!(
            listed.contains(&format!("<PartNumber>{n}</PartNumber><LastModified>"))
                && listed.contains(&format!("<ETag>&quot;{}&quot;</ETag>", md5_of(&part(n)))),
            "part {n} is listed after the restart: {listed}"
        );
    }
    assert!(!listed.contains("<PartNumber>3</PartNumber>"), "{listed}");
    for n in [3, 4] {
        put_part(base.clone(), n).await;
    }
    let own_files: Vec<String> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("part-"))
        .collect();
    assert!(
        own_files.len() == 1 && own_files[0].starts_with("part-00003-"),
        "only the resent part 3 is a file of its own (its slot was taken): {own_files:?}"
    );
    let complete: String = (1..=4)
        .map(|n| {
            format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>\"{}\"</ETag></Part>",
                md5_of(&part(n))
            )
        })
        .collect();
    let (status, body) = send(
        base,
        reqwest::Method::POST,
        q(&[("uploadId", &id)]),
        format!("<CompleteMultipartUpload>{complete}</CompleteMultipartUpload>").into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let object = app
        .state
        .ingest
        .objects()
        .path(&a.upload_id, path.rsplit('/').next().unwrap())
        .await
        .expect("the object is staged");
    assert!(
        std::fs::read(object).unwrap() == file,
        "the object is exactly the file"
    );
}
