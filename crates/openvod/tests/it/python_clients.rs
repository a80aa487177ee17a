//! The real third-party clients our users run: mux-python and tuspy (see `tests/py/`).

use std::path::PathBuf;

use crate::support::{clip, TestApp};

async fn run_python(app: &TestApp, script: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/py")
        .join(script);
    let python = std::env::var("OPENVOD_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = tokio::process::Command::new(python)
        .arg(&path)
        .env("OPENVOD_URL", &app.base_url)
        .env("OPENVOD_TOKEN_ID", &app.token_id)
        .env("OPENVOD_TOKEN_SECRET", &app.token_secret)
        .env("OPENVOD_CLIP", clip())
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

#[tokio::test]
async fn tuspy_client_uploads_with_checksums() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    run_python(&app, "tus_check.py").await;
}
