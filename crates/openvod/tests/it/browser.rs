//! What browsers do, in Debian's Chromium driven by playwright-core (`tests/browser/`, installed by
//! `scripts/test`): @mux/upchunk uploads and hls.js playback.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{slow_clip, TestApp};

/// Runs `tests/browser/<script>` with node against `app`; returns the JSON it prints.
async fn run_browser_script(app: &TestApp, script: &str, clip: &std::path::Path) -> Value {
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
        .env("OPENVOD_CLIP", clip)
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
