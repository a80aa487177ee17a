//! Playback: images and their cache, HTTP semantics, and signed access with RS256 and HS256 tokens.

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{clip, ffprobe, scale_out, TestApp};

async fn ready_clip(app: &TestApp, policy: &str) -> (String, String) {
    let asset_id = app
        .upload_file(
            clip(),
            json!({"playback_policy": policy, "static_renditions": [{"resolution": "highest"}]}),
        )
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(asset["status"], "ready", "{asset}");
    (
        asset_id,
        asset["playback_ids"][0]["id"].as_str().unwrap().to_owned(),
    )
}

async fn image_size(app: &TestApp, url: &str) -> (u64, u64, String) {
    let r = app.fetch(url).await;
    assert_eq!(r.status(), 200, "{url}: {}", r.text().await.unwrap());
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    let probe = crate::support::ffprobe_bytes(&r.bytes().await.unwrap());
    let s = &probe["streams"][0];
    (
        s["width"].as_u64().unwrap(),
        s["height"].as_u64().unwrap(),
        content_type,
    )
}

#[tokio::test]
async fn thumbnails_animated_and_storyboards() {
    let app = TestApp::spawn().await;
    let (asset_id, pid) = ready_clip(&app, "public").await;
    assert_eq!(
        image_size(&app, &format!("/{pid}/thumbnail.jpg")).await,
        (160, 120, "image/jpeg".into())
    );
    assert_eq!(
        image_size(&app, &format!("/{pid}/thumbnail.png?width=100&time=1")).await,
        (100, 76, "image/png".into())
    );
    assert_eq!(
        image_size(
            &app,
            &format!("/{pid}/thumbnail.webp?width=64&height=64&fit_mode=crop")
        )
        .await,
        (64, 64, "image/webp".into())
    );
    assert_eq!(
        image_size(
            &app,
            &format!("/{pid}/thumbnail.jpg?width=90&height=40&fit_mode=pad&rotate=90")
        )
        .await,
        (40, 90, "image/jpeg".into())
    );
    let (w, h, t) = image_size(&app, &format!("/{pid}/animated.gif?width=120&end=1")).await;
    assert_eq!((w, t.as_str()), (120, "image/gif"));
    assert_eq!(h, 90);
    assert_eq!(
        image_size(&app, &format!("/{pid}/animated.webp?width=80&fps=5"))
            .await
            .2,
        "image/webp"
    );
    let vtt = app
        .fetch(&format!("/{pid}/storyboard.vtt"))
        .await
        .text()
        .await
        .unwrap();
    assert!(vtt.starts_with("WEBVTT"));
    assert_eq!(vtt.matches("-->").count(), 50);
    assert!(
        vtt.contains(&format!(
            "{}/{pid}/storyboard.jpg#xywh=256,0,256,192",
            app.base_url
        )),
        "{vtt}"
    );
    assert_eq!(
        image_size(&app, &format!("/{pid}/storyboard.jpg")).await.0,
        2560
    );

    for bad in [
        "thumbnail.jpg?width=0",
        "thumbnail.jpg?fit_mode=zoom",
        "animated.gif?end=30",
        "thumbnail.bmp",
    ] {
        let status = app.fetch(&format!("/{pid}/{bad}")).await.status();
        assert!(status == 400 || status == 404, "{bad}: {status}");
    }

    // Concurrent requests for one new image render it once; later requests come from the store.
    let url = format!("{}/{pid}/thumbnail.jpg?width=50", app.base_url);
    let responses =
        futures_util::future::join_all((0..4).map(|_| app.client.get(&url).send())).await;
    let etags: Vec<String> = responses
        .into_iter()
        .map(|r| r.unwrap().headers()["etag"].to_str().unwrap().to_owned())
        .collect();
    assert!(etags.windows(2).all(|w| w[0] == w[1]));
    if !scale_out() {
        // (A bucket is not listed here; the rendering-once logic is the same with either store.)
        let images = std::fs::read_dir(app.media_dir().join(format!("assets/{asset_id}/images")))
            .unwrap()
            .count();
        assert_eq!(images, 8, "one stored file per distinct image");
    }
    let r = app
        .client
        .get(&url)
        .header("if-none-match", &etags[0])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test]
async fn segments_support_ranges_and_deleted_ids_vanish() {
    let app = TestApp::spawn().await;
    let (asset_id, pid) = ready_clip(&app, "public").await;
    let mp4 = app.fetch(&format!("/{pid}/highest.mp4")).await;
    assert_eq!(mp4.headers()["content-type"], "video/mp4");
    assert!(mp4.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("public"));
    let whole = mp4.bytes().await.unwrap();
    let r = app
        .client
        .get(format!("{}/{pid}/highest.mp4", app.base_url))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 100-199/{}", whole.len())
    );
    assert_eq!(r.bytes().await.unwrap(), whole.slice(100..200));
    let r = app
        .client
        .get(format!("{}/{pid}/highest.mp4", app.base_url))
        .header("range", format!("bytes={}-", whole.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = app
        .client
        .request(Method::OPTIONS, format!("{}/{pid}.m3u8", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    let master = app
        .fetch(&format!("/{pid}.m3u8"))
        .await
        .text()
        .await
        .unwrap();
    let child = master
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .to_owned();
    assert_eq!(app.fetch(&format!("/{child}")).await.status(), 200);
    assert_eq!(
        app.fetch(&format!(
            "/{}",
            child.replace("index.m3u8", "../../etc/passwd")
        ))
        .await
        .status(),
        404
    );
    assert_eq!(
        app.fetch(&format!("/{}", child.replace("index.m3u8", "seg_99999.ts")))
            .await
            .status(),
        404
    );

    let (status, _) = app
        .api_json(
            Method::DELETE,
            &format!("/video/v1/assets/{asset_id}/playback-ids/{pid}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.fetch(&format!("/{pid}.m3u8")).await.status(), 404);
    assert_eq!(app.fetch(&format!("/{child}")).await.status(), 404);
    assert_eq!(
        app.fetch(&format!("/{pid}/thumbnail.jpg")).await.status(),
        404
    );

    let (_, pid2) = ready_clip(&app, "public").await;
    let asset2 = app
        .api_json(Method::GET, &format!("/video/v1/playback-ids/{pid2}"), None)
        .await
        .1;
    let asset2_id = asset2["data"]["object"]["id"].as_str().unwrap().to_owned();
    app.api_json(
        Method::DELETE,
        &format!("/video/v1/assets/{asset2_id}"),
        None,
    )
    .await;
    assert_eq!(app.fetch(&format!("/{pid2}.m3u8")).await.status(), 404);
}

#[tokio::test]
async fn preparing_and_errored_assets_are_not_playable() {
    let app = TestApp::spawn().await;
    let asset_id = app
        .upload_file(clip(), json!({"playback_policy": "public"}))
        .await;
    let pid = app.get_asset(&asset_id).await["playback_ids"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.fetch(&format!("/{pid}.m3u8")).await.status(), 412);
    let upload = app
        .create_upload(json!({"new_asset_settings": {"playback_policy": "public"}}))
        .await;
    app.client
        .put(upload["url"].as_str().unwrap())
        .body("not media")
        .send()
        .await
        .unwrap();
    app.run_jobs_until_idle().await;
    let bad = app.get_upload(upload["id"].as_str().unwrap()).await;
    let bad = app.get_asset(bad["asset_id"].as_str().unwrap()).await;
    let bad_pid = bad["playback_ids"][0]["id"].as_str().unwrap();
    assert_eq!(app.fetch(&format!("/{bad_pid}.m3u8")).await.status(), 412);
    assert_eq!(
        app.fetch(&format!("/{bad_pid}/thumbnail.jpg"))
            .await
            .status(),
        400
    );
}

struct Keys {
    rs_id: String,
    rs_private: EncodingKey,
    rs_public_pem: Vec<u8>,
    hs_id: String,
    hs_secret: String,
}

async fn make_keys(app: &TestApp) -> Keys {
    let (status, rs) = app
        .api_json(Method::POST, "/system/v1/signing-keys", None)
        .await;
    assert_eq!(status, 201, "{rs}");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(rs["data"]["private_key"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8_lossy(&pem).starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let (status, hs) = app
        .api_json(
            Method::POST,
            "/system/v1/signing-keys",
            Some(json!({"algorithm": "HS256"})),
        )
        .await;
    assert_eq!(status, 201, "{hs}");
    let (_, listed) = app
        .api_json(Method::GET, "/system/v1/signing-keys", None)
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert!(
        listed["data"][0].get("private_key").is_none(),
        "private keys are shown once"
    );
    let private =
        rsa::pkcs1::DecodeRsaPrivateKey::from_pkcs1_pem(std::str::from_utf8(&pem).unwrap())
            .unwrap();
    let public: rsa::RsaPublicKey = rsa::RsaPrivateKey::to_public_key(&private);
    let public_pem =
        rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(&public, rsa::pkcs1::LineEnding::LF).unwrap();
    Keys {
        rs_id: rs["data"]["id"].as_str().unwrap().to_owned(),
        rs_private: EncodingKey::from_rsa_pem(&pem).unwrap(),
        rs_public_pem: public_pem.into_bytes(),
        hs_id: hs["data"]["id"].as_str().unwrap().to_owned(),
        hs_secret: hs["data"]["private_key"].as_str().unwrap().to_owned(),
    }
}

fn claims(pid: &str, aud: &str, exp_in: i64, extra: Value) -> Value {
    let mut c = json!({"sub": pid, "aud": aud, "exp": openvod::id::now_unix() + exp_in});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

fn rs(keys: &Keys, kid_in_header: bool, c: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    let mut c = c.clone();
    if kid_in_header {
        header.kid = Some(keys.rs_id.clone());
    } else {
        c["kid"] = json!(keys.rs_id);
    }
    encode(&header, &c, &keys.rs_private).unwrap()
}

fn hs(keys: &Keys, secret: &str, c: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(keys.hs_id.clone());
    encode(&header, c, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn unsigned(kid: &str, c: &Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(c)
    )
}

#[tokio::test]
async fn signed_playback_token_matrix() {
    let app = TestApp::spawn().await;
    let keys = make_keys(&app).await;
    let (_, pid) = ready_clip(&app, "signed").await;
    let v = claims(&pid, "v", 600, json!({}));
    let status = |url: String| {
        let app = &app;
        async move { app.fetch(&url).await.status().as_u16() }
    };

    // Accepted: RS256 with kid in the header or the payload, HS256 signed with the secret string's bytes.
    for token in [
        rs(&keys, true, &v),
        rs(&keys, false, &v),
        hs(&keys, &keys.hs_secret, &v),
    ] {
        let master = app.fetch(&format!("/{pid}.m3u8?token={token}")).await;
        assert_eq!(master.status(), 200);
        assert!(master.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private"));
        let body = master.text().await.unwrap();
        let child = body
            .lines()
            .find(|l| !l.starts_with('#'))
            .unwrap()
            .to_owned();
        // The player drops ?token=; the child playlist and its segments still play.
        let media = app.fetch(&format!("/{child}")).await;
        assert_eq!(media.status(), 200);
        let media = media.text().await.unwrap();
        let segment = media.lines().find(|l| !l.starts_with('#')).unwrap();
        let segment_url = format!("/{}", child.replace("index.m3u8", segment));
        assert_eq!(status(segment_url.clone()).await, 200);
        let tampered = segment_url.replacen("/g/", "/g/1", 1);
        assert_eq!(status(tampered).await, 403);
        // A signed id does not accept the grant of public ids.
        let grant = child
            .split("/g/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        assert_eq!(status(segment_url.replace(grant, "public")).await, 403);
    }

    // Refused, each with 403 and a body that says why.
    let other = claims("SomeOtherPlaybackId", "v", 600, json!({}));
    let cases = [
        ("no token", String::new(), "signed"),
        ("alg none", unsigned(&keys.rs_id, &v), "algorithm"),
        (
            "unknown kid",
            {
                let mut h = Header::new(Algorithm::HS256);
                h.kid = Some("nope".into());
                encode(&h, &v, &EncodingKey::from_secret(b"x")).unwrap()
            },
            "unknown signing key",
        ),
        ("wrong secret", hs(&keys, "guessed", &v), "signature"),
        (
            "wrong aud",
            rs(&keys, true, &claims(&pid, "t", 600, json!({}))),
            "audience",
        ),
        ("wrong sub", rs(&keys, true, &other), "another playback id"),
        (
            "expired",
            rs(&keys, true, &claims(&pid, "v", -3600, json!({}))),
            "expired",
        ),
        (
            "no exp",
            {
                let mut c = v.clone();
                c.as_object_mut().unwrap().remove("exp");
                rs(&keys, true, &c)
            },
            "exp",
        ),
        // Algorithm confusion: an HS256 token keyed with the RS256 key's public PEM.
        (
            "alg confusion",
            {
                let mut h = Header::new(Algorithm::HS256);
                h.kid = Some(keys.rs_id.clone());
                encode(&h, &v, &EncodingKey::from_secret(&keys.rs_public_pem)).unwrap()
            },
            "RS256",
        ),
        ("garbage", "not.a.jwt".to_owned(), "malformed"),
        (
            "no kid",
            encode(&Header::new(Algorithm::RS256), &v, &keys.rs_private).unwrap(),
            "no kid",
        ),
    ];
    for (name, token, why) in cases {
        let r = app.fetch(&format!("/{pid}.m3u8?token={token}")).await;
        assert_eq!(r.status(), 403, "{name}");
        let body: Value = r.json().await.unwrap();
        let message = body["error"]["messages"][0].as_str().unwrap();
        assert!(message.contains(why), "{name}: {message}");
    }

    // A token valid for ten years still gets child URLs whose grant ends within a week, and a grant
    // whose expiry is moved is refused.
    let far = rs(
        &keys,
        true,
        &claims(&pid, "v", 10 * 365 * 24 * 3600, json!({})),
    );
    let master = app.fetch(&format!("/{pid}.m3u8?token={far}")).await;
    assert_eq!(master.status(), 200);
    let body = master.text().await.unwrap();
    let child = body
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .to_owned();
    let grant = child
        .split("/g/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (_, signed) = grant.split_once('~').unwrap();
    let (expires, tag) = signed.split_once('.').unwrap();
    let expires: i64 = expires.parse().unwrap();
    let week = 7 * 24 * 3600;
    assert!(
        expires <= openvod::id::now_unix() + week + 5,
        "grant capped at a week: {grant}"
    );
    assert_eq!(status(format!("/{child}")).await, 200);
    let moved = child.replace(
        &grant,
        &grant.replace(
            &format!("~{expires}.{tag}"),
            &format!("~{}.{tag}", expires + 3600),
        ),
    );
    assert_eq!(status(format!("/{moved}")).await, 403);

    // Each resource class needs its own audience; transformation parameters come from the claims.
    let t = rs(&keys, true, &claims(&pid, "t", 600, json!({"width": "40"})));
    let r = app.fetch(&format!("/{pid}/thumbnail.jpg?token={t}")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("private"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.jpg"), r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        ffprobe(&dir.path().join("t.jpg"))["streams"][0]["width"],
        40
    );
    assert_eq!(
        status(format!(
            "/{pid}/thumbnail.jpg?token={}",
            rs(&keys, true, &v)
        ))
        .await,
        403
    );
    assert_eq!(status(format!("/{pid}/thumbnail.jpg")).await, 403);
    assert_eq!(
        status(format!("/{pid}/highest.mp4?token={}", rs(&keys, true, &v))).await,
        200
    );
    assert_eq!(status(format!("/{pid}/highest.mp4?token={t}")).await, 403);
    assert_eq!(status(format!("/{pid}/highest.mp4")).await, 403);
    // The tokenless Tencent-style URLs do not open a signed-only asset.
    let owner = app
        .api_json(Method::GET, &format!("/video/v1/playback-ids/{pid}"), None)
        .await
        .1;
    let asset = app
        .get_asset(owner["data"]["object"]["id"].as_str().unwrap())
        .await;
    assert_eq!(
        status(format!(
            "/vod/{}/src.mp4",
            asset["file_id"].as_str().unwrap()
        ))
        .await,
        404
    );
    let g = rs(&keys, true, &claims(&pid, "g", 600, json!({"end": 1})));
    assert_eq!(status(format!("/{pid}/animated.gif?token={g}")).await, 200);
    let s = rs(&keys, true, &claims(&pid, "s", 600, json!({})));
    let vtt = app
        .fetch(&format!("/{pid}/storyboard.vtt?token={s}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        vtt.contains(&format!("storyboard.jpg?token={s}#xywh=")),
        "sprite URLs carry the token"
    );
    assert_eq!(
        status(format!("/{pid}/storyboard.jpg?token={s}")).await,
        200
    );

    // A deleted key stops verifying.
    let (status_code, _) = app
        .api_json(
            Method::DELETE,
            &format!("/system/v1/signing-keys/{}", keys.hs_id),
            None,
        )
        .await;
    assert_eq!(status_code, 204);
    assert_eq!(
        status(format!(
            "/{pid}.m3u8?token={}",
            hs(&keys, &keys.hs_secret, &v)
        ))
        .await,
        403
    );
}

/// A token bound to a playback restriction plays only from the allowed sites and clients, on the
/// master playlist, the segments its grant reaches and the images; updating the restriction takes
/// effect at once; a token naming a restriction that does not exist plays nowhere.
#[tokio::test]
async fn playback_restrictions_refuse_other_sites_and_clients_everywhere() {
    let app = TestApp::spawn().await;
    let keys = make_keys(&app).await;
    let (_, pid) = ready_clip(&app, "signed").await;
    let (status, created) = app
        .api_json(
            Method::POST,
            "/video/v1/playback-restrictions",
            Some(json!({
                "referrer": {"allowed_domains": ["*.example.com"], "allow_no_referrer": false},
                "user_agent": {"allow_no_user_agent": false, "allow_high_risk_user_agent": false}
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let rid = created["data"]["id"].as_str().unwrap().to_owned();
    let bound = |aud: &str| {
        rs(
            &keys,
            true,
            &claims(&pid, aud, 600, json!({"playback_restriction_id": rid})),
        )
    };
    let (v, t) = (bound("v"), bound("t"));
    let get = |url: String, referer: Option<&'static str>, agent: Option<&'static str>| {
        let app = &app;
        async move {
            let mut request = app.client.get(format!("{}{url}", app.base_url));
            if let Some(referer) = referer {
                request = request.header("referer", referer);
            }
            if let Some(agent) = agent {
                request = request.header("user-agent", agent);
            }
            request.send().await.unwrap()
        }
    };
    const SITE: Option<&str> = Some("https://app.example.com/watch");
    const BROWSER: Option<&str> = Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0");

    let master = get(format!("/{pid}.m3u8?token={v}"), SITE, BROWSER).await;
    assert_eq!(master.status(), 200);
    let body = master.text().await.unwrap();
    let child = body
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .to_owned();
    let media = get(format!("/{child}"), SITE, BROWSER).await;
    assert_eq!(media.status(), 200);
    let media = media.text().await.unwrap();
    let segment = media.lines().find(|l| !l.starts_with('#')).unwrap();
    let segment = format!("/{}", child.replace("index.m3u8", segment));
    assert_eq!(get(segment.clone(), SITE, BROWSER).await.status(), 200);
    let thumbnail = format!("/{pid}/thumbnail.jpg?width=40&token={t}");
    assert_eq!(get(thumbnail.clone(), SITE, BROWSER).await.status(), 200);

    for (what, referer, agent) in [
        ("another site", Some("https://evil.test/"), BROWSER),
        (
            "the bare parent domain",
            Some("https://example.com/"),
            BROWSER,
        ),
        ("no referrer", None, BROWSER),
        ("no user agent", SITE, None),
        ("a download tool", SITE, Some("curl/8.5.0")),
    ] {
        for url in [
            format!("/{pid}.m3u8?token={v}"),
            segment.clone(),
            format!("/{child}"),
            thumbnail.clone(),
        ] {
            let r = get(url.clone(), referer, agent).await;
            assert_eq!(r.status(), 403, "{what}: {url}");
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"]["messages"][0]
                    .as_str()
                    .unwrap()
                    .contains("restriction"),
                "{what}: {body}"
            );
        }
    }

    // Any site, from now on.
    let (status, updated) = app
        .api_json(
            Method::PUT,
            &format!("/video/v1/playback-restrictions/{rid}/referrer"),
            Some(json!({"allowed_domains": ["*"], "allow_no_referrer": true})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        get(segment.clone(), Some("https://evil.test/"), BROWSER)
            .await
            .status(),
        200
    );
    // Bad domains are refused by name; a deleted restriction plays nowhere.
    let (status, body) = app
        .api_json(
            Method::PUT,
            &format!("/video/v1/playback-restrictions/{rid}/referrer"),
            Some(json!({"allowed_domains": ["https://not a domain"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .api_json(
            Method::DELETE,
            &format!("/video/v1/playback-restrictions/{rid}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(get(segment, SITE, BROWSER).await.status(), 403);
}
