//! Console accounts: the `users` command, login sessions in an HttpOnly cookie, CSRF on every
//! state change made with the cookie, logout, revocation and the lockout after failed logins.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::header::{COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{json, Value};

use crate::support::{raw_db, TestApp};

fn users(app: &TestApp, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_openvod"))
        .env_remove("OPENVOD_CONFIG")
        .envs(app.cli_env())
        .arg("users")
        .args(args)
        .arg("--data-dir")
        .arg(&app.config.data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/console/api/session", app.base_url))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

/// The `name=value` part of the session cookie a response sets.
fn session_cookie(response: &reqwest::Response) -> String {
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_command_creates_accounts_that_log_in() {
    let app = TestApp::spawn().await;
    let (ok, stdout, stderr) = users(
        &app,
        &["create", "--username", "alice", "--role", "staff"],
        None,
    );
    assert!(ok, "{stderr}");
    let password = stdout.trim();
    assert!(
        password.len() >= 16,
        "a generated one-time password: {stdout:?}"
    );
    let (ok, stdout, _) = users(
        &app,
        &["create", "--username", "bob", "--password-stdin"],
        Some("correct horse battery\n"),
    );
    assert!(ok && stdout.is_empty(), "a given password is not printed");

    for (args, stdin, expect) in [
        (vec!["create", "--username", "alice"], None, "taken"),
        (
            vec!["create", "--username", "eve", "--role", "root"],
            None,
            "admin, staff or user",
        ),
        (
            vec!["create", "--username", "../x"],
            None,
            "username must be",
        ),
        (
            vec!["create", "--username", "carol", "--password-stdin"],
            Some("short\n"),
            "at least 10",
        ),
        (
            vec!["set-password", "--username", "nobody"],
            None,
            "no user named nobody",
        ),
    ] {
        let (ok, _, stderr) = users(&app, &args, stdin);
        assert!(!ok && stderr.contains(expect), "{args:?}: {stderr}");
    }

    // Stored as Argon2id, never as the password.
    let list = users(&app, &["list"], None).1;
    assert!(
        list.contains("\"username\":\"alice\"") && list.contains("\"role\":\"staff\""),
        "{list}"
    );
    assert!(!list.contains(password));
    let db = raw_db(&app.config.database, &app.config.data_dir).await;
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'alice'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains(password),
        "{hash}"
    );

    let r = login(&app, "alice", password).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["username"], "alice");
    assert_eq!(body["data"]["role"], "staff");
    assert_eq!(
        login(&app, "bob", "correct horse battery").await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_need_csrf_for_changes_and_end_on_logout() {
    let app = TestApp::spawn().await;
    app.state
        .accounts
        .create_user(
            "dana",
            openvod::accounts::model::Role::User,
            Some("a long password"),
        )
        .await
        .unwrap();

    for (user, password) in [("dana", "wrong password"), ("nobody", "a long password")] {
        let r = login(&app, user, password).await;
        assert_eq!(r.status(), 401);
        assert!(
            r.headers().get(WWW_AUTHENTICATE).is_none(),
            "no browser password dialog over the console"
        );
        assert!(r.headers().get(SET_COOKIE).is_none());
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["messages"][0], "invalid username or password");
    }

    let r = login(&app, "dana", "a long password").await;
    assert_eq!(r.status(), 200);
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = session_cookie(&r);
    let csrf = r.json::<Value>().await.unwrap()["data"]["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let url = |path: &str| format!("{}{path}", app.base_url);
    // Reads with the cookie alone.
    let r = app
        .client
        .get(url("/video/v1/assets"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(url("/console/api/session"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["username"], "dana");

    // Changes need the CSRF token too: a cross-site form or fetch carries the cookie, not it.
    let create = json!({"new_asset_settings": {"playback_policy": ["public"]}});
    for token in [None, Some("forged"), Some("")] {
        let mut request = app
            .client
            .post(url("/video/v1/uploads"))
            .header(COOKIE, &cookie)
            .json(&create);
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 403, "{token:?}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["messages"][0]
                .as_str()
                .unwrap()
                .contains("X-CSRF-Token"),
            "{body}"
        );
    }
    let r = app
        .client
        .post(url("/video/v1/uploads"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Neither a cookie nor a token: refused, as before.
    let r = app
        .client
        .post(url("/video/v1/uploads"))
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A made-up session cookie is no session.
    let r = app
        .client
        .get(url("/video/v1/assets"))
        .header(COOKIE, "openvod_session=made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Logout needs the CSRF token, clears the cookie and ends the session for good.
    let r = app
        .client
        .delete(url("/console/api/session"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .delete(url("/console/api/session"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = app
        .client
        .get(url("/video/v1/assets"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_lock_the_account_until_an_admin_resets_it() {
    let app = TestApp::spawn().await;
    let accounts = &app.state.accounts;
    accounts
        .create_user(
            "erin",
            openvod::accounts::model::Role::Admin,
            Some("first password"),
        )
        .await
        .unwrap();
    let first = login(&app, "erin", "first password").await;
    let old_cookie = session_cookie(&first);

    for _ in 0..5 {
        assert_eq!(login(&app, "erin", "guess").await.status(), 401);
    }
    // Locked: even the right password is refused until the lock ends.
    let r = login(&app, "erin", "first password").await;
    assert_eq!(r.status(), 429);
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    // Every attempt while locked is refused without checking the password.
    assert_eq!(login(&app, "erin", "guess").await.status(), 429);

    // An admin sets a new password: the lock is lifted and old sessions end.
    let (ok, _, stderr) = users(
        &app,
        &["set-password", "--username", "erin", "--password-stdin"],
        Some("second password\n"),
    );
    assert!(ok, "{stderr}");
    let r = app
        .client
        .get(format!("{}/console/api/session", app.base_url))
        .header(COOKIE, &old_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "sessions end when the password changes");
    assert_eq!(login(&app, "erin", "first password").await.status(), 401);
    assert_eq!(login(&app, "erin", "second password").await.status(), 200);
    let (ok, _, stderr) = users(&app, &["revoke-sessions", "--username", "erin"], None);
    assert!(ok && stderr.contains("1 session(s)"), "{stderr}");
}

/// A console session for `username` (created with `role`): its cookie and CSRF token.
async fn session_of(
    app: &TestApp,
    username: &str,
    role: openvod::accounts::model::Role,
) -> (String, String) {
    app.state
        .accounts
        .create_user(username, role, Some("a long password"))
        .await
        .unwrap();
    let r = login(app, username, "a long password").await;
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r);
    let csrf = r.json::<Value>().await.unwrap()["data"]["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

/// Sends `method path` with a session (cookie + CSRF token); returns status and JSON body.
async fn as_person(
    app: &TestApp,
    session: &(String, String),
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base_url))
        .header(COOKIE, &session.0)
        .header("x-csrf-token", &session.1);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Users and staff see and act on their own videos only (others' are 404, as if absent); new
/// videos are theirs whatever the request says; settings are for admins; the claim queue for
/// staff and admins. Checked against the API itself: the console has no other door.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_and_acts_only_on_their_own_videos() {
    use openvod::accounts::model::Role;
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let clip = crate::support::clip();
    let anns = app
        .upload_file(
            clip,
            json!({"meta": {"creator_id": "ann", "title": "Ann's"}}),
        )
        .await;
    let bens = app
        .upload_file(
            clip,
            json!({"meta": {"creator_id": "ben", "title": "Ben's"}}),
        )
        .await;
    let ann = session_of(&app, "ann", Role::User).await;
    let sam = session_of(&app, "sam", Role::Staff).await;
    let ada = session_of(&app, "ada", Role::Admin).await;

    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = as_person(&app, &ann, Method::GET, "/video/v1/assets", None).await;
    assert_eq!((status, ids(&body)), (200, vec![anns.clone()]));
    let (status, body) = as_person(&app, &ada, Method::GET, "/video/v1/assets", None).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body).len(), 2, "admins see everything");
    let (status, _) = as_person(
        &app,
        &ann,
        Method::GET,
        "/video/v1/assets?creator_id=ben",
        None,
    )
    .await;
    assert_eq!(status, 403);

    for (method, path, body) in [
        (Method::GET, format!("/video/v1/assets/{bens}"), None),
        (
            Method::PATCH,
            format!("/video/v1/assets/{bens}"),
            Some(json!({"passthrough": "x"})),
        ),
        (Method::DELETE, format!("/video/v1/assets/{bens}"), None),
        (
            Method::POST,
            format!("/video/v1/assets/{bens}/playback-ids"),
            Some(json!({"policy": "public"})),
        ),
    ] {
        let (status, _) = as_person(&app, &ann, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    assert_eq!(app.get_asset(&bens).await["id"], bens, "still there");
    let (status, _) = as_person(
        &app,
        &ann,
        Method::PATCH,
        &format!("/video/v1/assets/{anns}"),
        Some(json!({"meta": {"creator_id": "ben"}})),
    )
    .await;
    assert_eq!(status, 403, "a user cannot give a video away");
    let (status, body) = as_person(
        &app,
        &ann,
        Method::PATCH,
        &format!("/video/v1/assets/{anns}"),
        Some(json!({"meta": {"title": "Renamed"}})),
    )
    .await;
    assert_eq!(
        (status, body["data"]["meta"]["title"].as_str()),
        (200, Some("Renamed"))
    );

    // New uploads are the caller's own.
    let (status, body) = as_person(
        &app,
        &ann,
        Method::POST,
        "/video/v1/uploads",
        Some(json!({"new_asset_settings": {"playback_policy": ["public"]}})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        body["data"]["new_asset_settings"]["meta"]["creator_id"], "ann",
        "{body}"
    );
    let (status, _) = as_person(
        &app,
        &ann,
        Method::POST,
        "/video/v1/uploads",
        Some(json!({"new_asset_settings": {"meta": {"creator_id": "ben"}}})),
    )
    .await;
    assert_eq!(status, 403);
    let (_, uploads) = as_person(&app, &ann, Method::GET, "/video/v1/uploads", None).await;
    for upload in uploads["data"].as_array().unwrap() {
        assert_eq!(
            upload["new_asset_settings"]["meta"]["creator_id"], "ann",
            "{upload}"
        );
    }

    // Settings are for admins; the claim queue for staff and admins.
    for path in [
        "/openvod/v1/webhook-endpoints",
        "/system/v1/signing-keys",
        "/openvod/v1/tokens",
        "/openvod/v1/users",
        "/openvod/v1/bbb/claims",
    ] {
        let (status, body) = as_person(&app, &ann, Method::GET, path, None).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    for (who, path, expect) in [
        (&sam, "/openvod/v1/bbb/claims", 200),
        (&sam, "/openvod/v1/webhook-endpoints", 403),
        (&ada, "/openvod/v1/webhook-endpoints", 200),
        (&ann, "/openvod/v1/external-recordings?owner=ben", 403),
        (&ann, "/openvod/v1/external-recordings", 200),
    ] {
        let (status, body) = as_person(&app, who, Method::GET, path, None).await;
        assert_eq!(status, expect, "{path}: {body}");
    }

    // The Tencent VOD API takes a console session only from admins, and only with the CSRF token.
    let vod = |session: &(String, String), csrf: bool| {
        let mut request = app
            .client
            .post(format!("{}/", app.base_url))
            .header(COOKIE, &session.0)
            .header("x-tc-action", "DescribeTranscodeTemplates")
            .header("x-tc-version", "2018-07-17")
            .json(&json!({}));
        if csrf {
            request = request.header("x-csrf-token", &session.1);
        }
        request.send()
    };
    for (session, csrf, expect) in [
        (&ann, true, Some("AuthFailure.UnauthorizedOperation")),
        (&ada, false, Some("AuthFailure.UnauthorizedOperation")),
        (&ada, true, None),
    ] {
        let body: Value = vod(session, csrf).await.unwrap().json().await.unwrap();
        assert_eq!(body["Response"]["Error"]["Code"].as_str(), expect, "{body}");
    }
}

/// Invite links are made by admins only; one expired, or spent, is refused with a message that
/// says what to do; accepting one ends the sessions the account had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_links_are_for_admins_and_work_once_before_they_expire() {
    use openvod::accounts::model::{Invite, Role};
    use sha2::{Digest, Sha256};
    let app = TestApp::spawn().await;
    let user = session_of(&app, "uma", Role::User).await;
    let (status, body) = as_person(
        &app,
        &user,
        reqwest::Method::POST,
        "/openvod/v1/users/uma/invites",
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // An expired invite, as stored.
    let expired_token = "an-expired-invite-token";
    let db = openvod::app::open_db(&app.config).await.unwrap();
    db.create_invite(&Invite {
        token_sha256: Sha256::digest(expired_token.as_bytes()).to_vec(),
        username: "uma".to_owned(),
        created_by: None,
        created_at: 1,
        expires_at: 2,
        used_at: None,
    })
    .await
    .unwrap();
    for (method, path) in [
        (
            reqwest::Method::GET,
            format!("/openvod/v1/invites/{expired_token}"),
        ),
        (
            reqwest::Method::POST,
            format!("/openvod/v1/invites/{expired_token}/accept"),
        ),
        (
            reqwest::Method::GET,
            "/openvod/v1/invites/made-up".to_owned(),
        ),
    ] {
        let r = app
            .client
            .request(method, format!("{}{path}", app.base_url))
            .json(&json!({"password": "a fine long password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["messages"][0]
                .as_str()
                .unwrap()
                .contains("unknown, used or expired"),
            "{body}"
        );
    }

    let (status, body) = app
        .api_json(reqwest::Method::POST, "/openvod/v1/users/uma/invites", None)
        .await;
    assert_eq!(status, 201, "{body}");
    let path = body["data"]["path"].as_str().unwrap().to_owned();
    let token = path.rsplit('/').next().unwrap();
    let r = app
        .client
        .post(format!(
            "{}/openvod/v1/invites/{token}/accept",
            app.base_url
        ))
        .json(&json!({"password": "uma chose this one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = as_person(
        &app,
        &user,
        reqwest::Method::GET,
        "/console/api/session",
        None,
    )
    .await;
    assert_eq!(status, 401, "the account's earlier sessions ended");
    assert_eq!(login(&app, "uma", "a long password").await.status(), 401);
    assert_eq!(login(&app, "uma", "uma chose this one").await.status(), 200);
}
