//! `openvod bbb migrate` in its two stateful modes, end to end: the fake BBB server of
//! `bbb_migrate`, real Moodle databases (PostgreSQL and MariaDB, `moodle_db`), real playbacks
//! (a synthetic presentation rendered in a job, a video playback downloaded), then the claim
//! queue and the external recordings over HTTP. Reruns, dry runs and a kill -9 must never
//! duplicate or write anything they should not.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::bbb::{make_recording, RECORD_ID};
use crate::bbb_migrate::{openvod, serve, FakeBbb, Protection};
use crate::moodle_db::{exec, fresh_moodle, query_strings, Engine};
use crate::support::{clip, eventually, raw_db, scale_out, test_bucket, TestApp};
use openvod::config::{DatabaseConfig, StorageConfig};

fn rid(i: u64) -> String {
    format!(
        "{:040x}-{}",
        0xabc00 + i,
        1_700_000_000_000u64 + i * 86_400_000
    )
}

fn recording(
    record_id: &str,
    meeting_id: &str,
    name: &str,
    origin: &str,
    playback: &str,
) -> String {
    let start = record_id.rsplit('-').next().unwrap();
    format!(
        "<recording><recordID>{record_id}</recordID><meetingID>{meeting_id}</meetingID>\
         <internalMeetingID>{record_id}</internalMeetingID><name><![CDATA[{name}]]></name>\
         <published>true</published><state>published</state><startTime>{start}</startTime>\
         <endTime>0</endTime><metadata><bbb-origin>Moodle</bbb-origin>\
         <bbb-origin-server-name>{origin}</bbb-origin-server-name></metadata>\
         <playback>{playback}</playback></recording>"
    )
}

fn presentation(server: &str, id: &str) -> String {
    format!("<format><type>presentation</type><url>{server}playback/presentation/2.3/{id}</url></format>")
}

async fn write_config(dir: &Path, server: &str, extra: &str) -> PathBuf {
    let path = dir.join("openvod.toml");
    let extra = format!("{extra}{}", scale_out_config().await);
    std::fs::write(
        &path,
        format!(
            "data_dir = \"{data}\"\n[outbound]\nallow_private_addresses = true\n[bbb]\n\
             server_url = \"{server}\"\nsecret = \"s3cret\"\ncache_file = \"{cache}\"\n{extra}",
            data = dir.join("data").display(),
            cache = dir.join("getRecordings.xml").display(),
        ),
    )
    .unwrap();
    path
}

async fn migrate(dir: &Path, cfg: &Path, args: &[&str]) -> crate::bbb_migrate::Run {
    let mut all = vec!["bbb", "migrate", "--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    openvod(dir, &all).await
}

/// A server on the state the CLI runs of `write_config`'s file left (its data folder, and in the
/// scale-out pass its database and bucket).
async fn app_on(dir: &Path, workers: usize) -> TestApp {
    let data = dir.join("data");
    let backend = cli_backend(dir);
    TestApp::spawn_with(workers, move |c| {
        c.data_dir = data;
        (c.database, c.storage) = backend;
    })
    .await
}

/// The database and media store of `write_config`'s file in `dir`.
fn cli_backend(dir: &Path) -> (DatabaseConfig, StorageConfig) {
    let file = openvod::config::Config::load(
        Some(&dir.join("openvod.toml")),
        &openvod::config::Overrides::default(),
    )
    .expect("write_config's file loads");
    (file.database, file.storage)
}

/// In the scale-out pass, the config file's lines for a fresh database and bucket prefix.
async fn scale_out_config() -> String {
    if !scale_out() {
        return String::new();
    }
    let bucket = test_bucket(&format!("cli-{}", openvod::id::random_id()));
    format!(
        "[database]\nurl = \"{}\"\n[storage]\nurl = \"{}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\npath_style = true\n",
        openvod::db::postgres::scratch_database_url().await,
        bucket.url.unwrap(),
        bucket.endpoint.unwrap(),
    )
}

async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.api_json(reqwest::Method::GET, path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn post(app: &TestApp, path: &str, body: Option<Value>) -> Value {
    let (status, body) = app.api_json(reqwest::Method::POST, path, body).await;
    assert!(
        status == 200 || status == 201,
        "POST {path}: {status} {body}"
    );
    body
}

async fn external(app: &TestApp, owner: &str) -> Vec<Value> {
    let body = get(
        app,
        &format!("/openvod/v1/external-recordings?owner={owner}"),
    )
    .await;
    body["data"].as_array().unwrap().clone()
}

/// Waits until the external recording `id` is imported.
async fn imported(app: &TestApp, id: &str) {
    eventually("the import is done", || async move {
        get(app, &format!("/openvod/v1/external-recordings/{id}")).await["data"]["state"]
            == "imported"
    })
    .await;
}

fn record_ids(list: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = list
        .iter()
        .map(|e| e["record_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Moodle's state a migration may touch: every activity's intro.
async fn intros(url: &str, prefix: &str) -> Vec<Vec<Option<String>>> {
    query_strings(
        url,
        &format!("SELECT id, intro FROM {prefix}bigbluebuttonbn ORDER BY id"),
    )
    .await
}

async fn check_owners(app: &TestApp) {
    assert_eq!(
        record_ids(&external(app, "jdupont").await),
        vec![rid(1), rid(5)]
    );
    assert_eq!(
        record_ids(&external(app, "mmartin").await),
        vec![rid(1), rid(5)]
    );
    // A role rule: the editing teachers of the course.
    assert_eq!(record_ids(&external(app, "ppetit").await), vec![rid(2)]);
    // NULL participants, a dismissed recording, an ignored server: the admin owner.
    assert_eq!(
        record_ids(&external(app, "admin").await),
        vec![rid(3), rid(4), rid(6)]
    );
    assert!(
        external(app, "lleroy").await.is_empty(),
        "a viewer owns nothing"
    );
}

/// Every Moodle moderator the run found has an account nobody can log in to until an admin
/// sends an invite link (the admin owner is no moderator: no account made for it); the invited
/// person chooses a password with the link, once, and sees their recordings. Admins list every
/// recording of the migration with owners and what was done.
async fn moderators_have_accounts_and_admins_see_the_migration(app: &TestApp) {
    let users = get(app, "/openvod/v1/users").await["data"].clone();
    let mut accounts: Vec<(String, bool)> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap().to_owned(),
                u["can_log_in"].as_bool().unwrap(),
            )
        })
        .collect();
    accounts.sort();
    let expected: Vec<(String, bool)> = ["jdupont", "mmartin", "ppetit"]
        .iter()
        .map(|u| (u.to_string(), false))
        .collect();
    assert_eq!(accounts, expected);

    let invite = post(app, "/openvod/v1/users/ppetit/invites", None).await["data"].clone();
    let path = invite["path"].as_str().unwrap();
    assert!(invite["url"].as_str().unwrap().ends_with(path), "{invite}");
    let token = path.strip_prefix("/console/#/invite/").unwrap();
    let shown = get(app, &format!("/openvod/v1/invites/{token}")).await;
    assert_eq!(shown["data"]["username"], "ppetit");
    let accept = |password: &'static str| {
        let url = format!("{}/openvod/v1/invites/{token}/accept", app.base_url);
        async move {
            app.client
                .post(url)
                .json(&serde_json::json!({ "password": password }))
                .send()
                .await
                .unwrap()
        }
    };
    let weak = accept("short").await;
    assert_eq!(weak.status(), 400);
    assert!(weak.text().await.unwrap().contains("at least 10"));
    let accepted = accept("ppetit's own password").await;
    assert_eq!(accepted.status(), 200);
    let cookie = accepted.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let mine: Value = app
        .client
        .get(format!("{}/openvod/v1/external-recordings", app.base_url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record_ids(mine["data"].as_array().unwrap()), vec![rid(2)]);
    // Spent: the link works once.
    let again = accept("another long password").await;
    assert_eq!(again.status(), 404);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("ask an admin for a new one"));
    let r = app
        .client
        .post(format!("{}/console/api/session", app.base_url))
        .json(&serde_json::json!({"username": "ppetit", "password": "ppetit's own password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = app
        .api_json(
            reqwest::Method::POST,
            "/openvod/v1/users/nobody/invites",
            None,
        )
        .await;
    assert_eq!(status, 404);

    let listed = app
        .client
        .get(format!(
            "{}/openvod/v1/bbb/recordings?limit=4&page=2",
            app.base_url
        ))
        .basic_auth(&app.token_id, Some(&app.token_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.headers()["x-total-count"], "6");
    let page: Value = listed.json().await.unwrap();
    let page = page["data"].as_array().unwrap();
    // Newest first: the second page of four holds the two oldest.
    assert_eq!(
        page.iter()
            .map(|r| r["record_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![rid(2), rid(1)]
    );
    let first = &page[1];
    let owners: Vec<&str> = first["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["username"].as_str().unwrap())
        .collect();
    assert_eq!(owners, vec!["jdupont", "mmartin"]);
    assert_eq!(first["owners"][0]["origin"], "moodle");
    assert_eq!(first["actions"][0]["mode"], "import_video");
    assert_eq!(first["actions"][0]["state"], "done");
    let (status, body) = app
        .api_json(
            reqwest::Method::GET,
            "/openvod/v1/bbb/recordings?sort=x",
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

async fn import_video_with_moodle(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let db1 = fresh_moodle(engine, "mdl_").await;
    let db2 = fresh_moodle(engine, "m2_").await;
    let row = |course: u32, activity: u32, record: &str, status: u32| {
        format!("({course}, {activity}, '{record}', {status})")
    };
    exec(
        &db1,
        &format!(
            "INSERT INTO mdl_bigbluebuttonbn_recordings (courseid, bigbluebuttonbnid, recordingid, status) VALUES {}, {}, {}, {}, {}",
            row(7, 11, &rid(1), 2),
            row(7, 12, &rid(2), 2),
            row(8, 13, &rid(3), 2),
            row(7, 11, &rid(4), 1),
            row(7, 11, &rid(6), 2),
        ),
    )
    .await;
    exec(
        &db2,
        &format!(
            "INSERT INTO m2_bigbluebuttonbn_recordings (courseid, bigbluebuttonbnid, recordingid, status) VALUES {}",
            row(7, 11, &rid(5), 2)
        ),
    )
    .await;
    let server_placeholder = "https://old.example/";
    let origins = [
        "moodle.example.org",
        "moodle.example.org",
        "moodle.example.org",
        "moodle.example.org",
        "moodle2.example.org",
        "ignored.example.org",
    ];
    let recordings: Vec<String> = (1..=6)
        .map(|i| {
            recording(
                &rid(i),
                &format!("meeting-7-1{i}"),
                &format!("Cours {i}"),
                origins[i as usize - 1],
                &presentation(server_placeholder, &rid(i)),
            )
        })
        .collect();
    let url = serve(FakeBbb {
        secret: "s3cret".to_owned(),
        page_cap: Some(4),
        recordings: Arc::new(recordings),
        files: None,
        protected: None,
    })
    .await;
    let cfg = write_config(
        dir.path(),
        &url,
        &format!(
            "admin_owner = \"admin\"\ninform_message = \"<p>Moved to openvod</p>\"\n\
             ignored_servers = [\"ignored.example.org\"]\n\
             [bbb.moodle.default]\nurl = \"{db1}\"\n\
             [bbb.moodle.\"moodle2.example.org\"]\nurl = \"{db2}\"\ntable_prefix = \"m2_\"\n"
        ),
    )
    .await;
    let args = ["--use-import-video", "--use-database-moodle"];

    // A dry run reads Moodle and the server, and writes nothing anywhere.
    let before = (intros(&db1, "mdl_").await, intros(&db2, "m2_").await);
    let dry = migrate(dir.path(), &cfg, &[&args[..], &["--dry"]].concat()).await;
    assert!(dry.ok, "{}", dry.stderr);
    assert!(
        dry.stderr.contains("would create 2 external recording(s)"),
        "{}",
        dry.stderr
    );
    assert_eq!(
        before,
        (intros(&db1, "mdl_").await, intros(&db2, "m2_").await)
    );
    assert!(
        !dir.path().join("data").exists(),
        "a dry run creates no database (nor data folder)"
    );
    assert!(
        !dir.path().join("getRecordings.xml").exists(),
        "nor the cache file"
    );

    let run = migrate(dir.path(), &cfg, &args).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{} ", rid(1)))
            && run
                .stderr
                .contains("Jean Dupont (jdupont) (moodle), Marie Martin (mmartin) (moodle)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("listed 6, in range 6, done 6, skipped as already done 0, failed 0"),
        "{}",
        run.stderr
    );

    let app = app_on(dir.path(), 0).await;
    check_owners(&app).await;
    moderators_have_accounts_and_admins_see_the_migration(&app).await;
    let one = &external(&app, "ppetit").await[0];
    assert_eq!(one["type"], "bigbluebutton");
    assert_eq!(one["name"], "Cours 2");
    assert_eq!(one["state"], "not imported");
    assert_eq!(one["start_at"], "2023-11-16T22:13:20.000000Z");
    assert!(one["source_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/2.3/{}", rid(2))));

    let informed = intros(&db1, "mdl_").await;
    assert_eq!(
        informed[0],
        vec![
            Some("11".to_owned()),
            Some("<p>Intro A</p><br><p>Moved to openvod</p>".to_owned())
        ]
    );
    assert_eq!(informed[1][1].as_deref(), Some("<p>Moved to openvod</p>"));
    // The activity is told even when its recording went to the admin owner (NULL participants).
    assert_eq!(informed[2][1].as_deref(), Some("<p>Moved to openvod</p>"));
    assert_eq!(
        informed[3][1].as_deref(),
        Some("<p>D</p>"),
        "no recording of activity 14"
    );
    assert_eq!(
        intros(&db2, "m2_").await[0][1].as_deref(),
        Some("<p>Intro A</p><br><p>Moved to openvod</p>")
    );

    // A second run finds everything done: nothing new, the message not appended twice.
    let again = migrate(dir.path(), &cfg, &args).await;
    assert!(again.ok, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("done 0, skipped as already done 6, failed 0"),
        "{}",
        again.stderr
    );
    check_owners(&app).await;
    assert_eq!(informed, intros(&db1, "mdl_").await);

    // The CSV with Moodle owners (Pod's extra column, a Python list).
    let csv = migrate(
        dir.path(),
        &cfg,
        &[
            "--use-export-csv",
            "--use-database-moodle",
            "--record-id",
            &rid(1),
        ],
    )
    .await;
    assert!(csv.ok, "{}", csv.stderr);
    let text = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(lines[0].ends_with(";source_url;Moodle_owners"), "{text}");
    assert!(
        lines[1].ends_with(&format!(
            "/2.3/{};['Jean Dupont (jdupont)', 'Marie Martin (mmartin)']",
            rid(1)
        )),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "one recording and the final CRLF: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_video_finds_moodle_owners_on_postgresql() {
    import_video_with_moodle(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_video_finds_moodle_owners_on_mariadb() {
    import_video_with_moodle(Engine::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve(FakeBbb {
        secret: "s3cret".to_owned(),
        page_cap: None,
        recordings: Arc::new(Vec::new()),
        files: None,
        protected: None,
    })
    .await;
    let cfg = write_config(
        dir.path(),
        &url,
        "[bbb.moodle.default]\nurl = \"postgres://nobody:x@127.0.0.1:1/moodle\"\n",
    )
    .await;
    let run = migrate(
        dir.path(),
        &cfg,
        &["--use-export-csv", "--use-database-moodle"],
    )
    .await;
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("Moodle database default: cannot connect"),
        "{}",
        run.stderr
    );
    let run = migrate(dir.path(), &cfg, &["--use-import-video"]).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("set [bbb] admin_owner"),
        "{}",
        run.stderr
    );
    let run = migrate(
        dir.path(),
        &cfg,
        &["--use-manual-claim", "--use-import-video"],
    )
    .await;
    assert!(
        !run.ok && run.stderr.contains("cannot be used with"),
        "{}",
        run.stderr
    );
}

/// The old server's playbacks: the synthetic presentation, and a "video" playback page whose
/// `<source>` is a real MP4.
fn playbacks(root: &Path) -> String {
    let (_, _) = make_recording(
        &root.join("presentation"),
        &["--duration", "6", "--media", "audio"],
    );
    let video_id = rid(9);
    let page = root.join("playback/video").join(&video_id);
    std::fs::create_dir_all(&page).unwrap();
    std::fs::write(
        page.join("index.html"),
        "<html><body><video controls><source src=\"video-0.m4v\" type=\"video/mp4\"></video></body></html>",
    )
    .unwrap();
    std::fs::copy(clip(), page.join("video-0.m4v")).unwrap();
    video_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_claim_and_import_make_assets_in_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("old-server");
    let video_id = playbacks(&files);
    let fake = |server: &str| {
        FakeBbb {
        secret: "s3cret".to_owned(),
        page_cap: None,
        recordings: Arc::new(vec![
            recording(RECORD_ID, "m-1", "Physique 1", "moodle.example.org", &presentation(server, RECORD_ID)),
            recording(
                &video_id,
                "m-2",
                "Chimie 2",
                "moodle.example.org",
                &format!("<format><type>video</type><url>{server}playback/video/{video_id}/</url></format>"),
            ),
        ]),
        files: Some(Arc::new(files.clone())),
        protected: None,
    }
    };
    // First a server for the files alone, whose address the listing then names.
    let files_url = serve(fake("http://unused.invalid/")).await;
    let url = serve(fake(&files_url)).await;
    let cfg = write_config(dir.path(), &url, "admin_owner = \"admin\"\n").await;

    let run = migrate(dir.path(), &cfg, &["--use-manual-claim"]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains("waiting in the claim queue"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("presentations to render 1"),
        "{}",
        run.stderr
    );

    let app = app_on(dir.path(), 1).await;
    let claims = get(&app, "/openvod/v1/bbb/claims").await;
    let claims = claims["data"].as_array().unwrap().clone();
    assert_eq!(claims.len(), 2, "{claims:?}");
    for claim in &claims {
        let id = claim["asset_id"].as_str().unwrap().to_owned();
        eventually("the migrated recording is ready", || {
            let app = &app;
            let id = id.clone();
            async move { app.get_asset(&id).await["status"] == "ready" }
        })
        .await;
        let asset = app.get_asset(&id).await;
        assert_eq!(asset["meta"]["external_id"], claim["record_id"]);
        assert!(asset["meta"].get("creator_id").is_none(), "{asset}");
        let title = asset["meta"]["title"].as_str().unwrap();
        assert!(title == "Physique 1" || title == "Chimie 2", "{asset}");
        // The downloaded video keeps its 2 s; the render is the synthetic recording's length.
        assert!(asset["duration"].as_f64().unwrap() > 1.5, "{asset}");
    }

    // Claiming gives the asset an owner and takes it off the queue.
    let video_claim = claims
        .iter()
        .find(|c| c["record_id"] == video_id.as_str())
        .unwrap();
    let asset_id = video_claim["asset_id"].as_str().unwrap();
    let claimed = post(
        &app,
        &format!("/openvod/v1/bbb/claims/{asset_id}"),
        Some(serde_json::json!({"owner": "jdupont"})),
    )
    .await;
    assert_eq!(
        claimed["data"]["meta"]["creator_id"], "jdupont",
        "{claimed}"
    );
    let left = get(&app, "/openvod/v1/bbb/claims").await;
    assert_eq!(left["data"].as_array().unwrap().len(), 1);
    let mine = get(&app, "/video/v1/assets?creator_id=jdupont").await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine["data"][0]["id"], asset_id);
    for (body, status) in [
        (serde_json::json!({"owner": "not a name!"}), 400),
        (serde_json::json!({"owner": "someone-else"}), 400),
        (serde_json::json!({"who": "x"}), 400),
    ] {
        let r = app
            .api(
                reqwest::Method::POST,
                &format!("/openvod/v1/bbb/claims/{asset_id}"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        let error: Value = r.json().await.unwrap();
        assert!(error["error"]["messages"][0].as_str().is_some());
    }
    let r = app
        .api(reqwest::Method::POST, "/openvod/v1/bbb/claims/nosuchasset")
        .json(&serde_json::json!({"owner": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // A rerun creates nothing.
    let again = migrate(dir.path(), &cfg, &["--use-manual-claim"]).await;
    assert!(again.ok, "{}", again.stderr);
    assert!(
        again.stderr.contains("done 0, skipped as already done 2"),
        "{}",
        again.stderr
    );
    let all = get(&app, "/video/v1/assets").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);

    // Import mode: external recordings for the admin owner, imported on request.
    let run = migrate(dir.path(), &cfg, &["--use-import-video"]).await;
    assert!(run.ok, "{}", run.stderr);
    let list = external(&app, "admin").await;
    assert_eq!(list.len(), 2);
    let video = list
        .iter()
        .find(|e| e["record_id"] == video_id.as_str())
        .unwrap();
    let id = video["id"].as_str().unwrap().to_owned();
    let started = post(
        &app,
        &format!("/openvod/v1/external-recordings/{id}/import"),
        None,
    )
    .await;
    let asset_id = started["data"]["asset_id"].as_str().unwrap().to_owned();
    let twice = post(
        &app,
        &format!("/openvod/v1/external-recordings/{id}/import"),
        None,
    )
    .await;
    assert_eq!(
        twice["data"]["asset_id"],
        asset_id.as_str(),
        "one import, however often asked"
    );
    imported(&app, &id).await;
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(asset["meta"]["creator_id"], "admin");
    assert_eq!(asset["meta"]["external_id"], video_id.as_str());
    let r = app
        .api(
            reqwest::Method::POST,
            "/openvod/v1/external-recordings/nosuch/import",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// Scalelite's protected recordings: the one-time token URLs a listing gives have expired by the
/// time the jobs run (Pod stored them as `source_url` and its imports then failed). The migration
/// stores no token; each job asks the old server for a fresh one right before it fetches, consumes
/// it in a session of its own, and fetches every file of the recording with the cookie it grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_recordings_are_fetched_with_fresh_tokens() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("old-server");
    let video_id = playbacks(&files);
    let protection = Arc::new(Protection::default());
    let fake = |server: &str| {
        FakeBbb {
        secret: "s3cret".to_owned(),
        page_cap: None,
        recordings: Arc::new(vec![
            recording(
                RECORD_ID,
                "m-1",
                "Physique 1",
                "moodle.example.org",
                &format!("<format><type>presentation</type><url>{server}recording/{RECORD_ID}/presentation?token=@TOKEN@</url></format>"),
            ),
            recording(
                &video_id,
                "m-2",
                "Chimie 2",
                "moodle.example.org",
                &format!("<format><type>video</type><url>{server}recording/{video_id}/video?token=@TOKEN@</url></format>"),
            ),
        ]),
        files: Some(Arc::new(files.clone())),
        protected: Some(protection.clone()),
    }
    };
    let files_url = serve(fake("http://unused.invalid/")).await;
    let url = serve(fake(&files_url)).await;
    let cfg = write_config(dir.path(), &url, "admin_owner = \"admin\"\n").await;

    // Without the session's cookie the old server refuses the files.
    let refused = reqwest::get(format!("{files_url}presentation/{RECORD_ID}/metadata.xml"))
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);

    for mode in ["--use-manual-claim", "--use-import-video"] {
        let run = migrate(dir.path(), &cfg, &[mode]).await;
        assert!(run.ok, "{mode}: {}", run.stderr);
    }
    assert_eq!(
        protection.consumed.load(Ordering::SeqCst),
        0,
        "listing spends no token"
    );
    protection.expire_tokens();

    // A token URL given by hand is consumed once; spent, it is refused with a clear error, and
    // without [bbb] no fresh one can be had.
    let out = dir.path().join("out.mp4");
    let bare = dir.path().join("no-bbb.toml");
    std::fs::write(&bare, "[outbound]\nallow_private_addresses = true\n").unwrap();
    let render = |source: String| {
        let (dir, bare, out) = (dir.path().to_owned(), bare.clone(), out.clone());
        async move {
            let args = [
                "bbb",
                "render",
                "--config",
                bare.to_str().unwrap(),
                &source,
                "-o",
                out.to_str().unwrap(),
            ];
            openvod(&dir, &args).await
        }
    };
    let spent = format!("{files_url}recording/{RECORD_ID}/presentation?token=00ff");
    let run = render(spent).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("HTTP 404") && !run.stderr.contains("00ff"),
        "{}",
        run.stderr
    );
    let run = render(format!("{files_url}recording/{RECORD_ID}/presentation")).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("[bbb] server_url"), "{}", run.stderr);
    assert!(!out.exists());

    let data = dir.path().join("data");
    let server = url.clone();
    let backend = cli_backend(dir.path());
    let app = TestApp::spawn_with(1, move |c| {
        c.data_dir = data;
        (c.database, c.storage) = backend;
        c.bbb.server_url = Some(server);
        c.bbb.secret = Some("s3cret".to_owned());
    })
    .await;
    let claims = get(&app, "/openvod/v1/bbb/claims").await;
    let claims = claims["data"].as_array().unwrap().clone();
    assert_eq!(claims.len(), 2, "{claims:?}");
    for claim in &claims {
        let id = claim["asset_id"].as_str().unwrap().to_owned();
        eventually("the protected recording is ready", || {
            let app = &app;
            let id = id.clone();
            async move {
                let asset = app.get_asset(&id).await;
                assert_ne!(asset["status"], "errored", "{asset}");
                asset["status"] == "ready"
            }
        })
        .await;
    }
    assert_eq!(protection.consumed.load(Ordering::SeqCst), 2);

    // The external recordings hold the URL without its token; the import mints another.
    let list = external(&app, "admin").await;
    assert_eq!(list.len(), 2);
    for ext in &list {
        let source = ext["source_url"].as_str().unwrap();
        assert!(
            source.starts_with(&format!("{files_url}recording/")) && !source.contains("token"),
            "{ext}"
        );
    }
    let video = list
        .iter()
        .find(|e| e["record_id"] == video_id.as_str())
        .unwrap();
    let id = video["id"].as_str().unwrap().to_owned();
    post(
        &app,
        &format!("/openvod/v1/external-recordings/{id}/import"),
        None,
    )
    .await;
    imported(&app, &id).await;
    assert_eq!(protection.consumed.load(Ordering::SeqCst), 3);
    assert_eq!(
        protection.refused.load(Ordering::SeqCst),
        1,
        "every file was fetched within its session"
    );
}

/// The keys of everything the migration run with `write_config`'s file in `dir` wrote, to compare
/// runs.
async fn state_of(dir: &Path) -> Vec<String> {
    use sqlx::Row as _;
    let database = cli_backend(dir).0;
    let external_id = match database.url {
        Some(_) => "(settings::jsonb #>> '{meta,external_id}')",
        None => "json_extract(settings, '$.meta.external_id')",
    };
    let db = raw_db(&database, &dir.join("data")).await;
    let sql = format!(
        "SELECT 'asset|' || {external_id} FROM assets
         UNION ALL SELECT 'action|' || record_id || ' ' || mode || ' ' || state || ' ' || COALESCE(asset_id, '') FROM bbb_actions
         UNION ALL SELECT 'job|' || kind FROM jobs
         UNION ALL SELECT 'recording|' || record_id || ' ' || listed_at FROM bbb_recordings ORDER BY 1"
    );
    let rows = sqlx::query(&sql).fetch_all(&db).await.unwrap();
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_resumes_without_duplicates_and_dry_runs_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let n = 400;
    let recordings: Vec<String> = (1..=n)
        .map(|i| {
            recording(
                &rid(i),
                "m",
                &format!("R {i}"),
                "moodle.example.org",
                &presentation("https://old.example/", &rid(i)),
            )
        })
        .collect();
    let url = serve(FakeBbb {
        secret: "s3cret".to_owned(),
        page_cap: Some(100),
        recordings: Arc::new(recordings),
        files: None,
        protected: None,
    })
    .await;
    let cfg = write_config(dir.path(), &url, "").await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
        .env_remove("OPENVOD_CONFIG")
        .current_dir(dir.path())
        .args([
            "bbb",
            "migrate",
            "--config",
            cfg.to_str().unwrap(),
            "--use-manual-claim",
        ])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut created = 0;
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(" created (") {
                created += 1;
                if created == 25 {
                    break;
                }
            }
        }
        assert_eq!(created, 25, "the run started creating assets");
        child.start_kill().unwrap();
    }
    child.wait().await.unwrap();
    let partial = state_of(dir.path()).await;
    assert!(partial.iter().filter(|l| l.starts_with("asset|")).count() >= 25);

    let rerun = migrate(dir.path(), &cfg, &["--use-manual-claim"]).await;
    assert!(rerun.ok, "{}", rerun.stderr);
    let state = state_of(dir.path()).await;
    let assets: Vec<&String> = state.iter().filter(|l| l.starts_with("asset|")).collect();
    let mut unique = assets.clone();
    unique.dedup();
    assert_eq!(assets.len(), n as usize, "one asset per recording");
    assert_eq!(unique.len(), n as usize, "no recording twice");
    assert_eq!(
        state.iter().filter(|l| l.starts_with("job|")).count(),
        n as usize
    );

    // A dry run changes nothing in the database.
    let dry = migrate(dir.path(), &cfg, &["--use-manual-claim", "--dry"]).await;
    assert!(dry.ok, "{}", dry.stderr);
    assert!(
        dry.stderr.contains(&format!("skipped as already done {n}")),
        "{}",
        dry.stderr
    );
    assert_eq!(state, state_of(dir.path()).await);
}

/// A site older than Moodle 4 has no recordings table: the activity is the one Moodle's meetingID
/// names (`<meetingid>-<course>-<instance>[group]`), on MariaDB here, with another table prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_before_moodle_4_are_matched_by_meeting_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_moodle(Engine::Mysql, "m3_").await;
    exec(&db, "DROP TABLE m3_bigbluebuttonbn_recordings").await;
    let server = "https://old.example/";
    let recordings = vec![
        recording(
            &rid(1),
            "a1b2c3-7-11[0]",
            "Old A",
            "moodle.example.org",
            &presentation(server, &rid(1)),
        ),
        recording(
            &rid(2),
            "d4e5f6-7-12",
            "Old B",
            "moodle.example.org",
            &presentation(server, &rid(2)),
        ),
        // The right instance with another activity's meetingid: no owner.
        recording(
            &rid(3),
            "zzz-7-11",
            "Forged",
            "moodle.example.org",
            &presentation(server, &rid(3)),
        ),
    ];
    let url = serve(FakeBbb {
        secret: "s3cret".to_owned(),
        page_cap: None,
        recordings: Arc::new(recordings),
        files: None,
        protected: None,
    })
    .await;
    let cfg = write_config(
        dir.path(),
        &url,
        &format!("[bbb.moodle.default]\nurl = \"{db}\"\ntable_prefix = \"m3_\"\n"),
    )
    .await;
    let run = migrate(
        dir.path(),
        &cfg,
        &["--use-export-csv", "--use-database-moodle"],
    )
    .await;
    assert!(run.ok, "{}", run.stderr);
    let text = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let owners: Vec<&str> = text
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.rsplit(';').next().unwrap())
        .collect();
    assert_eq!(
        owners,
        vec![
            "['Jean Dupont (jdupont)', 'Marie Martin (mmartin)']",
            "['Paul Petit (ppetit)']",
            "[]"
        ],
        "{text}"
    );
}

/// The BBB pages of the console in Chromium: a staff member claims the migrated recording from the
/// claim queue (it becomes theirs), and the owner the old server named imports their external
/// recording and watches it become "imported" (it becomes theirs too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_claim_and_owner_import_in_the_console() {
    use openvod::accounts::model::Role;
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("old-server");
    let video_id = playbacks(&files);
    let fake = |server: &str| FakeBbb {
        secret: "s3cret".to_owned(),
        page_cap: None,
        recordings: Arc::new(vec![recording(
            &video_id,
            "m-2",
            "Chimie 2",
            "moodle.example.org",
            &format!(
                "<format><type>video</type><url>{server}playback/video/{video_id}/</url></format>"
            ),
        )]),
        files: Some(Arc::new(files.clone())),
        protected: None,
    };
    let files_url = serve(fake("http://unused.invalid/")).await;
    let url = serve(fake(&files_url)).await;
    let cfg = write_config(dir.path(), &url, "admin_owner = \"lea\"\n").await;
    for mode in ["--use-manual-claim", "--use-import-video"] {
        let run = migrate(dir.path(), &cfg, &[mode]).await;
        assert!(run.ok, "{mode}: {}", run.stderr);
    }

    let app = app_on(dir.path(), 1).await;
    for (name, role) in [("sam", Role::Staff), ("ada", Role::Admin)] {
        app.state
            .accounts
            .create_user(name, role, Some("a long password"))
            .await
            .unwrap();
    }
    // The owner has an account without a password (as the migration makes for a Moodle
    // moderator): they get in through an invite link.
    let db = openvod::app::open_db(&app.config).await.unwrap();
    assert!(openvod::accounts::create_passwordless(&*db, "lea")
        .await
        .unwrap());
    let report = crate::browser::run_browser_script_with(
        &app,
        "console_bbb.mjs",
        &[
            ("OPENVOD_STAFF", "sam".as_ref()),
            ("OPENVOD_ADMIN", "ada".as_ref()),
            ("OPENVOD_OWNER", "lea".as_ref()),
            ("OPENVOD_PASSWORD", "a long password".as_ref()),
            (
                "OPENVOD_SCREENSHOTS",
                crate::browser::screenshot_dir().as_os_str(),
            ),
        ],
    )
    .await;
    assert!(
        report["problems"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    assert_eq!(
        report["claims"],
        serde_json::json!(["Chimie 2"]),
        "{report:#}"
    );
    assert!(report["claims_after"]
        .as_str()
        .unwrap()
        .contains("Nothing to claim"));
    assert_eq!(report["owner_sees_claims"], 0, "users have no claim queue");
    // Staff see the migration: one recording, both modes done, the claim asset processing or
    // ready (a job renders it), the external recordings made.
    let migration = report["migration"].as_array().unwrap();
    assert_eq!(migration.len(), 1, "{report:#}");
    let state = migration[0].as_str().unwrap();
    assert!(
        state.contains("manual claim: ")
            && state.contains("import video: external recordings for lea"),
        "{state}"
    );
    assert_eq!(report["invite_is_a_console_link"], true, "{report:#}");
    assert_eq!(report["invite_heading"], "Welcome, lea", "{report:#}");
    assert_eq!(
        report["external_before"],
        serde_json::json!(["not imported"])
    );
    assert_eq!(report["external_after"], serde_json::json!(["imported"]));

    // Both assets belong to the people who claimed and imported them.
    let (_, assets) = app
        .api_json(reqwest::Method::GET, "/video/v1/assets", None)
        .await;
    let mut owners: Vec<String> = assets["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["meta"]["creator_id"].as_str().unwrap_or("").to_owned())
        .collect();
    owners.sort();
    assert_eq!(owners, ["lea", "sam"], "{assets}");
}
