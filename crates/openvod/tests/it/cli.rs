//! The `openvod` binary: token management and configuration layering.

use std::process::Command;

fn openvod() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_openvod"));
    command.env_remove("OPENVOD_CONFIG");
    command
}

#[test]
fn tokens_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let out = openvod()
        .args(["tokens", "create", "--name", "ci", "--data-dir", data_dir])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one JSON object: {stdout}"
    );
    let token: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let id = token["id"].as_str().unwrap();
    assert!(token["secret"].as_str().unwrap().len() >= 40);
    assert_eq!(token.as_object().unwrap().len(), 2);

    let list = openvod()
        .args(["tokens", "list", "--data-dir", data_dir])
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains(id) && list.contains("\"revoked\":false"),
        "{list}"
    );
    assert!(
        !list.contains(token["secret"].as_str().unwrap()),
        "secrets are never listed"
    );

    assert!(openvod()
        .args(["tokens", "revoke", id, "--data-dir", data_dir])
        .status()
        .unwrap()
        .success());
    let list = String::from_utf8(
        openvod()
            .args(["tokens", "list", "--data-dir", data_dir])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(list.contains("\"revoked\":true"), "{list}");
    let again = openvod()
        .args(["tokens", "revoke", id, "--data-dir", data_dir])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no active token"));
}

#[test]
fn config_layers_defaults_file_env_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openvod.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\n[uploads]\nmax_size_bytes = 5\ndefault_timeout_secs = 120\n").unwrap();
    let show = |extra_env: &[(&str, &str)], extra_args: &[&str]| {
        let mut command = openvod();
        command
            .args(["config", "show", "--config", file.to_str().unwrap()])
            .args(extra_args);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let config = show(&[], &[]);
    assert_eq!(config["listen"], "127.0.0.1:9000");
    assert_eq!(config["uploads"]["max_size_bytes"], 5);
    assert_eq!(
        config["uploads"]["sweep_interval_secs"], 60,
        "defaults fill the rest"
    );
    let config = show(
        &[
            ("OPENVOD_UPLOADS__MAX_SIZE_BYTES", "7"),
            ("OPENVOD_DATA_DIR", "/from/env"),
        ],
        &[],
    );
    assert_eq!(config["uploads"]["max_size_bytes"], 7);
    assert_eq!(config["uploads"]["default_timeout_secs"], 120);
    assert_eq!(config["data_dir"], "/from/env");
    let config = show(
        &[("OPENVOD_DATA_DIR", "/from/env")],
        &["--data-dir", "/from/flag"],
    );
    assert_eq!(config["data_dir"], "/from/flag");

    std::fs::write(&file, "[uploads]\nmax_size_byte = 5\n").unwrap();
    let out = openvod()
        .args(["config", "show", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max_size_byte"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = openvod()
        .args(["config", "show", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
