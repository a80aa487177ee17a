//! What browsers do, in Debian's Chromium driven by playwright-core (`tests/browser/`, installed by
//! `scripts/test`): @mux/upchunk uploads and hls.js playback.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{clip, slow_clip, TestApp};

/// Runs `tests/browser/<script>` with node against `app`; returns the JSON it prints.
async fn run_browser_script(app: &TestApp, script: &str, clip: &std::path::Path) -> Value {
    run_browser_script_with(app, script, &[("OPENVOD_CLIP", clip.as_os_str())]).await
}

pub async fn run_browser_script_with(
    app: &TestApp,
    script: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser test packages are not installed: run `npm ci --prefix tests/browser` \
         (scripts/test does, and installs Debian's chromium)"
    );
    let output = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .env("OPENVOD_BASE", &app.base_url)
        .env("OPENVOD_TOKEN_ID", &app.token_id)
        .env("OPENVOD_TOKEN_SECRET", &app.token_secret)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("{script} printed no JSON report ({e}):\n{stdout}");
    });
    assert!(report.get("failure").is_none(), "{report:#}");
    report
}

/// The scenario of a new user: a page on the app's own origin uploads with UpChunk in chunks
/// (cross-origin, CORS), the asset is encoded (the clip is MPEG-4 Part 2, not streamable), and at
/// `ready` hls.js sees a VOD of the whole duration with every rung, plays from the start and plays
/// on after a seek to 80 % (to segments the encoder may not have reached yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upchunk_upload_then_hls_js_plays_the_whole_video_and_seeks() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    let clip = slow_clip();
    let report = run_browser_script(&app, "upload_and_play.mjs", &clip).await;

    let upload = &report["upload"];
    assert_eq!(upload["ok"], true, "{report:#}");
    assert_eq!(
        upload["size"].as_u64().unwrap(),
        std::fs::metadata(&clip).unwrap().len()
    );
    let progress = upload["progress"].as_array().unwrap();
    assert!(progress.len() > 2, "several chunks: {progress:?}");
    assert_eq!(progress.last().unwrap(), 100);

    assert_eq!(report["asset"]["status"], "ready", "{report:#}");
    assert!(
        !report["console"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("pageerror")),
        "uncaught errors in the page: {report:#}"
    );
    let play = &report["play"];
    assert!(play.get("hls_supported").is_none(), "{report:#}");
    assert!(
        play.get("fatal").is_none() && play.get("timed_out").is_none(),
        "{report:#}"
    );
    assert_eq!(play["live"], false, "a VOD playlist, not live: {report:#}");
    assert_eq!(play["playlist_type"], "VOD", "{report:#}");
    let total = play["total_duration"].as_f64().unwrap();
    assert!((total - 12.0).abs() < 0.1, "the whole timeline: {total} s");
    let media = play["media_duration"].as_f64().unwrap();
    assert!(
        (media - 12.0).abs() < 0.2,
        "the player's duration: {media} s"
    );
    let heights: Vec<u64> = play["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["height"].as_u64().unwrap())
        .collect();
    assert_eq!(heights.len(), 3, "every rung at ready: {report:#}");
    for h in [540, 360, 270] {
        assert!(heights.contains(&h), "{heights:?}");
    }
    assert!(play["played_from_start"].as_f64().unwrap() >= 0.5);
    let after = play["played_after_seek"].as_f64().unwrap();
    assert!(
        after >= 0.8 * 12.0 + 0.5,
        "played on after the seek: {after}"
    );
}

/// Where the console test leaves its screenshots (kept by CI; named in the README).
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// The console in Chromium, as a user: log in (a wrong password first), upload two files at once
/// (tus) with the connection of one reset on the way, see both turn "Normal" without a reload,
/// play one, rename it, see the list on a phone-sized screen, reload in the middle of a third
/// upload and resume it by picking the file again, log out. The stored originals are the exact
/// bytes of the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_uploads_watches_and_plays_in_chromium() {
    let console = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../console/dist/index.html");
    assert!(
        console.is_file(),
        "the console is not built: scripts/test builds it (npm ci && npm run build in console/)"
    );
    let app = TestApp::spawn_with(1, |_| {}).await;
    app.state
        .accounts
        .create_user(
            "ann",
            openvod::accounts::model::Role::User,
            Some("ann's long password"),
        )
        .await
        .unwrap();
    let clips = [slow_clip(), clip().to_path_buf()];
    let joined = format!("{}|{}", clips[0].display(), clips[1].display());
    let others = app
        .upload_file(clip(), serde_json::json!({"meta": {"creator_id": "ben"}}))
        .await;
    let shots = screenshot_dir();
    let report = run_browser_script_with(
        &app,
        "console.mjs",
        &[
            ("OPENVOD_USERNAME", "ann".as_ref()),
            ("OPENVOD_PASSWORD", "ann's long password".as_ref()),
            ("OPENVOD_CLIPS", joined.as_ref()),
            ("OPENVOD_OTHERS_ASSET", others.as_ref()),
            ("OPENVOD_SCREENSHOTS", shots.as_os_str()),
        ],
    )
    .await;
    assert!(
        report["problems"].as_array().unwrap().is_empty(),
        "errors in the page: {report:#}"
    );
    assert_eq!(report["bad_login_message"], "invalid username or password");
    assert!(report["empty_state"]
        .as_str()
        .unwrap()
        .contains("No videos yet"));
    assert_eq!(report["who"], "ann (user)");
    assert_eq!(report["dropped_chunks"], 1, "{report:#}");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report:#}");
    for row in rows {
        assert_eq!(row["label"], "Normal", "{report:#}");
    }
    assert_eq!(report["search_hits"], 1, "{report:#}");
    assert!(
        report["errored_filter"]
            .as_str()
            .unwrap()
            .contains("No video matches"),
        "{report:#}"
    );
    assert!(report["played_to"].as_f64().unwrap() > 1.0);
    let previews = report["previews"].as_array().unwrap();
    assert!(
        previews.iter().all(|w| w.as_u64().unwrap() > 0),
        "{report:#}"
    );
    assert!(
        report["renditions"].as_array().unwrap().len() > 1,
        "Auto and the rungs"
    );
    assert_eq!(report["horizontal_overflow"], false, "fits a 375 px screen");
    assert_eq!(
        report["steps"].as_array().unwrap().last().unwrap()["name"],
        "logged out"
    );

    // Exact bytes, and owned by the person who uploaded them.
    for row in rows {
        let asset = app.get_asset(row["id"].as_str().unwrap()).await;
        assert_eq!(asset["meta"]["creator_id"], "ann");
        let upload_id = asset["upload_id"].as_str().unwrap();
        let stored = app
            .stored(&format!("uploads/{upload_id}/original"))
            .await
            .unwrap();
        let title = asset["meta"]["title"].as_str().unwrap();
        let source = clips
            .iter()
            .find(|c| c.file_name().unwrap().to_str() == Some(title))
            .or_else(|| (title == "Renamed in the console").then_some(&clips[0]))
            .or_else(|| (title == "Renamed in the console").then_some(&clips[1]))
            .unwrap();
        if title != "Renamed in the console" {
            assert!(
                stored == std::fs::read(source).unwrap(),
                "{title}: bytes differ"
            );
        } else {
            assert!(
                clips.iter().any(|c| std::fs::read(c).unwrap() == stored),
                "renamed: bytes differ from both files"
            );
        }
    }
    // The upload cut by a reload resumed (not restarted) and holds the exact bytes.
    assert!(
        report["before_reload"].as_f64().unwrap() < 100.0,
        "{report:#}"
    );
    assert_eq!(report["resumed"], "true", "{report:#}");
    assert_eq!(report["rows_after_resume"], 3, "{report:#}");
    assert!(
        report["others_video"]
            .as_str()
            .unwrap()
            .contains("not found")
            || report["others_video"]
                .as_str()
                .unwrap()
                .contains("no asset"),
        "{report:#}"
    );

    let (_, all) = app
        .api_json(reqwest::Method::GET, "/video/v1/assets", None)
        .await;
    let known: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let third = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["meta"]["creator_id"] == "ann" && !known.contains(&a["id"].as_str().unwrap()))
        .expect("the resumed upload's asset");
    let stored = app
        .stored(&format!(
            "uploads/{}/original",
            third["upload_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert!(
        stored == std::fs::read(&clips[0]).unwrap(),
        "resumed upload: bytes differ"
    );
    for shot in [
        "1-login.png",
        "3-videos.png",
        "4-video.png",
        "5-videos-375px.png",
    ] {
        assert!(shots.join(shot).is_file(), "{shot}");
    }
}

/// The console as an admin: Tencent's ProcessMedia with two MP4 templates from the video page and
/// its outputs in Quick View (each URL serves a file); a webhook endpoint added in the page receives the upload's
/// events and its delivered attempts are listed; a signing key is created (private key shown once)
/// and deleted; an API token is created (secret shown once, works) and revoked (stops working);
/// the recordings page shows its empty states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_settings_add_a_webhook_and_list_its_attempts() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    app.state
        .accounts
        .create_user(
            "ada",
            openvod::accounts::model::Role::Admin,
            Some("ada's long password"),
        )
        .await
        .unwrap();
    let receiver = crate::webhooks::Receiver::start(vec![]).await;
    let shots = screenshot_dir();
    let report = run_browser_script_with(
        &app,
        "console_admin.mjs",
        &[
            ("OPENVOD_USERNAME", "ada".as_ref()),
            ("OPENVOD_PASSWORD", "ada's long password".as_ref()),
            ("OPENVOD_CLIP", clip().as_os_str()),
            ("OPENVOD_RECEIVER", receiver.url.as_ref()),
            ("OPENVOD_SCREENSHOTS", shots.as_os_str()),
        ],
    )
    .await;
    assert!(
        report["problems"].as_array().unwrap().is_empty(),
        "errors in the page: {report:#}"
    );
    assert!(report["no_endpoints"]
        .as_str()
        .unwrap()
        .contains("No webhook endpoints"));
    assert!(
        report["secret"].as_str().unwrap().starts_with("whsec_"),
        "{report:#}"
    );
    let attempts = report["attempts"].as_array().unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a.as_str().unwrap().contains("delivered (200)")),
        "{report:#}"
    );
    assert!(
        !receiver.all().is_empty(),
        "the receiver got the deliveries"
    );
    assert_eq!(report["private_key_shown"], true);
    assert_eq!(report["keys_before_delete"], 1);
    assert!(report["recordings_empty"]
        .as_str()
        .unwrap()
        .contains("No external recordings"));
    assert!(report["claims_empty"]
        .as_str()
        .unwrap()
        .contains("Nothing to claim"));
    assert!(app.state.playback.keys.list().await.unwrap().is_empty());
    assert!(
        report["process_status"]
            .as_str()
            .unwrap()
            .starts_with("Task "),
        "{report:#}"
    );
    // Each output Quick View listed was fetched (before the video was deleted): real files.
    let fetched = report["quick_view_fetched"].as_array().unwrap();
    for definition in ["100010", "100020"] {
        let row = fetched
            .iter()
            .find(|o| o["definition"] == definition)
            .unwrap_or_else(|| panic!("Quick View lists {definition}: {report:#}"));
        assert_eq!(row["status"], 200, "{report:#}");
        assert!(row["bytes"].as_u64().unwrap() > 1000, "{report:#}");
    }
    assert_eq!(report["ready_attempts_after_resend"], 2, "{report:#}");
    // A replay from the first event queues every event the endpoint took again (one of those
    // delivered was the resend), and each is delivered once more.
    let before = report["delivered_before_replay"].as_u64().unwrap();
    let queued = report["replay_queued"].as_u64().unwrap();
    assert!(queued >= before - 1, "{report:#}");
    assert!(
        report["delivered_after_replay"].as_u64().unwrap() >= before + queued,
        "{report:#}"
    );
    assert!(
        report["replay_status"]
            .as_str()
            .unwrap()
            .contains("queued for delivery again"),
        "{report:#}"
    );
    assert_eq!(report["owner_filter_empty"], 0, "{report:#}");
    assert_eq!(report["owner_filter_ada"], 1, "{report:#}");
    let types = report["asset_event_types"].as_array().unwrap();
    assert!(
        types.contains(&"video.asset.created".into())
            && types.contains(&"video.asset.ready".into()),
        "{report:#}"
    );
    assert!(
        report["ready_attempts"][0]
            .as_str()
            .unwrap()
            .contains("delivered (200)"),
        "{report:#}"
    );
    assert!(
        report["delete_question"]
            .as_str()
            .unwrap()
            .contains("cannot be undone"),
        "{report:#}"
    );
    assert!(report["after_delete"]
        .as_str()
        .unwrap()
        .contains("No videos yet"));
    assert_eq!(report["new_person_login"], 200, "{report:#}");
    assert_eq!(report["old_password_after_reset"], 401, "{report:#}");
    assert_eq!(report["new_password_after_reset"], 200, "{report:#}");
    assert!(
        report["ended"]
            .as_str()
            .unwrap()
            .starts_with("1 session(s)"),
        "{report:#}"
    );
    assert_eq!(report["vod_mode"], "PULL", "{report:#}");
    assert_eq!(report["vod_upload_events"], true, "{report:#}");
    assert_eq!(report["token_works"], 200, "{report:#}");
    assert_eq!(report["token_after_revoke"], 401, "{report:#}");
}

/// Accessibility and layout, audited in Chromium on a phone and a desktop viewport: no WCAG 2.1
/// A/AA violation found by axe-core on the main pages, no sideways scrolling, no layout shift as
/// data arrives (CLS < 0.1, Google's "good"), keyboard-only login and navigation, and times in
/// the viewer's time zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_accessible_on_a_phone_and_a_desktop() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    app.state
        .accounts
        .create_user(
            "ada",
            openvod::accounts::model::Role::Admin,
            Some("ada's long password"),
        )
        .await
        .unwrap();
    let asset_id = app
        .upload_file(
            clip(),
            serde_json::json!({"playback_policy": "public", "meta": {"title": "A lecture"}}),
        )
        .await;
    crate::support::eventually("the video is ready", || async {
        app.get_asset(&asset_id).await["status"] == "ready"
    })
    .await;
    let report = run_browser_script_with(
        &app,
        "console_a11y.mjs",
        &[
            ("OPENVOD_USERNAME", "ada".as_ref()),
            ("OPENVOD_PASSWORD", "ada's long password".as_ref()),
            ("OPENVOD_ASSET", asset_id.as_ref()),
            ("OPENVOD_SCREENSHOTS", screenshot_dir().as_os_str()),
        ],
    )
    .await;
    for viewport in ["phone", "desktop"] {
        assert_eq!(
            report[format!("{viewport}_problems")],
            serde_json::json!([]),
            "{report:#}"
        );
        assert_eq!(
            report[format!("{viewport}_tab_reaches")],
            serde_json::json!(["#/videos", "#/recordings", "#/settings", "Log out"]),
            "{report:#}"
        );
    }
    let audits = report["audits"].as_object().unwrap();
    assert_eq!(audits.len(), 8, "{report:#}");
    let mut failures = Vec::new();
    for (page, audit) in audits {
        if audit["violations"] != serde_json::json!([]) {
            failures.push(format!("{page}: axe-core finds {}", audit["violations"]));
        }
        if audit["overflow"].as_i64().unwrap() > 0 {
            failures.push(format!(
                "{page} scrolls sideways by {} px",
                audit["overflow"]
            ));
        }
        if audit["cls"].as_f64().unwrap() >= 0.1 {
            failures.push(format!("{page} shifts as it loads: CLS {}", audit["cls"]));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(report["token_time_is_local"], true, "{report:#}");
}
