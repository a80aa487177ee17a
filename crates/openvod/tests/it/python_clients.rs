//! The real third-party clients our users run: mux-python and tuspy (see `tests/py/`).

use std::path::PathBuf;

use crate::support::{clip, TestApp};

async fn run_python(app: &TestApp, script: &str) {
    run_python_with(app, script, &[]).await;
}

async fn run_python_with(app: &TestApp, script: &str, env: &[(&str, &str)]) {
    let mut all = vec![
        ("OPENVOD_URL", app.base_url.as_str()),
        ("OPENVOD_TOKEN_ID", app.token_id.as_str()),
        ("OPENVOD_TOKEN_SECRET", app.token_secret.as_str()),
    ];
    all.extend_from_slice(env);
    run_script(script, &all).await;
}

/// Runs `tests/py/<script>` with `env` and asserts that it printed its success line.
pub async fn run_script(script: &str, env: &[(&str, &str)]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/py")
        .join(script);
    let python = std::env::var("OPENVOD_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = tokio::process::Command::new(python)
        .arg(&path)
        .env("OPENVOD_CLIP", clip())
        // The Tencent SDK routes plain-http calls through HTTP_PROXY itself; loopback must not be proxied.
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ALL CHECKS PASSED"), "{stdout}");
}

#[tokio::test]
async fn mux_python_sdk_works_unchanged() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    run_python(&app, "mux_sdk_check.py").await;
}

/// The same, with the unmodified @mux/mux-node SDK (run by node from `tests/browser/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mux_node_sdk_works_unchanged() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    let report = crate::browser::run_browser_script_with(
        &app,
        "mux_node_sdk.mjs",
        &[("OPENVOD_CLIP", clip().as_os_str())],
    )
    .await;
    assert!(
        report["checks"].as_array().unwrap().len() >= 20,
        "{report:#}"
    );
}

#[tokio::test]
async fn tuspy_client_uploads_with_checksums() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    run_python(&app, "tus_check.py").await;
}

#[tokio::test]
async fn pyjwt_signed_tokens_play_signed_ids() {
    let app = TestApp::spawn().await;
    let asset_id = app
        .upload_file(clip(), serde_json::json!({"playback_policy": "signed"}))
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    run_python_with(
        &app,
        "signed_playback_check.py",
        &[("OPENVOD_PLAYBACK_ID", pid)],
    )
    .await;
}

#[tokio::test]
async fn tencent_sdk_works_unchanged_but_for_the_endpoint() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    let clip = crate::tencent::clip_720p();
    run_python_with(
        &app,
        "tencent_sdk_check.py",
        &[("OPENVOD_CLIP", clip.to_str().unwrap())],
    )
    .await;
}

/// schemathesis (PyPI) generates requests for every operation of `/openapi.json`: no 5xx, and every
/// answer's status, content type and body as the document says.
#[tokio::test]
async fn schemathesis_finds_nothing_against_the_openapi_document() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    run_python(&app, "schemathesis_check.py").await;
}
