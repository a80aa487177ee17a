//! Tencent VOD's event flow end to end with `openvod tencent-receiver`: upload → NewFileUpload →
//! the receiver calls ProcessMedia → ProcedureStateChanged → the receiver logs the output URLs.

use serde_json::json;

use crate::support::{eventually, ffprobe_bytes, spawn_announcing, Spawned, TestApp};

async fn start_receiver(config: &std::path::Path, listen: &str) -> Spawned {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"));
    command
        .args(["tencent-receiver", "--listen", listen, "--config"])
        .arg(config)
        .env("OPENVOD_LOG", "warn");
    spawn_announcing(command, "tencent-receiver listening on ").await
}

/// A 3 s 1280x720 H.264/stereo AAC clip (the Tencent tests' upload).
pub fn clip_720p() -> std::path::PathBuf {
    crate::support::h264_clip("tencent720.mp4", "1280x720", 25, 3, &["-ac", "2"])
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
}

#[tokio::test]
async fn upload_to_transcode_outputs_through_the_receiver() {
    // The receiver needs the server's URL and credentials; the server needs the receiver's URL.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let placeholder = json!({"secret_id": "x", "secret_key": "y", "region": "ap-guangzhou", "subappid": "0",
        "definitions": [100010, 100020], "endpoint": "http://127.0.0.1:1"});
    std::fs::write(&config, placeholder.to_string()).unwrap();
    let probe_receiver = start_receiver(&config, "127.0.0.1:0").await;
    let receiver_url = probe_receiver.announced.clone();
    drop(probe_receiver);

    let app = TestApp::spawn_with(1, |c| {
        c.webhooks.endpoints = vec![openvod::config::ConfiguredEndpoint {
            url: receiver_url.clone(),
            format: "tencent-v3".into(),
            events: None,
            secret: None,
        }];
    })
    .await;
    std::fs::write(
        &config,
        json!({"secret_id": app.token_id, "secret_key": app.token_secret, "region": "ap-guangzhou", "subappid": "0",
            "definitions": [100010, 100020], "endpoint": app.base_url})
        .to_string(),
    )
    .unwrap();
    // Start the real receiver on the same port the endpoint points at.
    let listen = receiver_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let receiver = start_receiver(&config, &listen).await;
    let lines = receiver.lines.clone();

    let clip = clip_720p();
    let asset_id = app
        .upload_file(&clip, json!({"playback_policy": "public"}))
        .await;
    let file_id = app.get_asset(&asset_id).await["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("both transcode outputs are logged", || {
        let lines = lines.clone();
        async move {
            lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("transcode "))
                .count()
                == 2
        }
    })
    .await;
    let logged = lines.lock().unwrap().clone();
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with("process_media ") && field(l, "file_id") == Some(&file_id)),
        "{logged:?}"
    );
    for (definition, height) in [("100010", 360), ("100020", 540)] {
        let line = logged
            .iter()
            .find(|l| l.starts_with("transcode ") && field(l, "definition") == Some(definition))
            .unwrap();
        assert_eq!(field(line, "status"), Some("SUCCESS"), "{line}");
        assert_eq!(field(line, "file_id"), Some(file_id.as_str()));
        let url = field(line, "url").unwrap();
        let body = app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let probe = ffprobe_bytes(&body);
        let video = probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_type"] == "video")
            .unwrap()
            .clone();
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (Some(height * 16 / 9), Some(height)),
            "{definition}"
        );
        assert_eq!(probe["format"]["format_name"], "mov,mp4,m4a,3gp,3g2,mj2");
    }

    // A repeated notification is acknowledged without a second ProcessMedia.
    let (_, events) = app
        .api_json(
            reqwest::Method::GET,
            "/openvod/v1/events?type=vod.file.uploaded",
            None,
        )
        .await;
    let upload_event = events["data"][0].clone();
    assert_eq!(upload_event["EventType"], "NewFileUpload", "{upload_event}");
    assert!(
        upload_event["FileUploadEvent"]["MediaBasicInfo"]["MediaUrl"]
            .as_str()
            .unwrap()
            .contains(&file_id)
    );
    let r = app
        .client
        .post(&receiver_url)
        .json(&upload_event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(&receiver_url)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .client
        .post(&receiver_url)
        .json(&json!({"EventType": "ProcedureStateChanged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .client
        .post(&receiver_url)
        .json(&json!({"EventType": "FileDeleted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let process_calls = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("process_media "))
        .count();
    assert_eq!(process_calls, 1, "idempotent on a repeated NewFileUpload");
}

#[tokio::test]
async fn configured_procedure_runs_on_every_upload() {
    let app = TestApp::spawn_with(0, |c| c.tencent.procedure = vec![100010]).await;
    let clip = clip_720p();
    let asset_id = app.upload_file(&clip, json!({})).await;
    app.run_jobs_until_idle().await;
    let (_, events) = app
        .api_json(
            reqwest::Method::GET,
            "/openvod/v1/events?type=vod.procedure.changed",
            None,
        )
        .await;
    let event = &events["data"][0];
    assert_eq!(event["EventType"], "ProcedureStateChanged", "{events}");
    let procedure = &event["ProcedureStateChangeEvent"];
    assert_eq!(procedure["Status"], "FINISH");
    assert_eq!(procedure["ErrCode"], 0);
    assert_eq!(
        procedure["FileId"],
        app.get_asset(&asset_id).await["file_id"]
    );
    let transcode = &procedure["MediaProcessResultSet"][0]["TranscodeTask"];
    assert_eq!(transcode["Input"]["Definition"], 100010);
    assert_eq!(transcode["Output"]["Height"], 360);
    assert_eq!(
        app.fetch(transcode["Output"]["Url"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[test]
fn a_procedure_of_unknown_templates_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openvod.toml");
    std::fs::write(&file, "[tencent]\nprocedure = [100210]\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("100210 is not an MP4 preset"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_python_receiver_following_the_demo_runs_unchanged() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        json!({"secret_id": app.token_id, "secret_key": app.token_secret, "region": "ap-guangzhou",
            "subappid": "0", "definitions": [100010, 100020]})
        .to_string(),
    )
    .unwrap();
    let python = std::env::var("OPENVOD_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/py/tencent_demo_receiver.py");
    let mut command = tokio::process::Command::new(python);
    command
        .arg(script)
        .current_dir(dir.path())
        .env(
            "OPENVOD_TC_ENDPOINT",
            app.base_url.trim_start_matches("http://"),
        )
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy");
    let receiver = spawn_announcing(command, "listening on ").await;
    let (url, lines) = (receiver.announced.clone(), receiver.lines.clone());
    let (status, _) = app
        .api_json(
            reqwest::Method::POST,
            "/openvod/v1/webhook-endpoints",
            Some(json!({"url": url, "format": "tencent-v3"})),
        )
        .await;
    assert_eq!(status, 201);
    let clip = clip_720p();
    let asset_id = app.upload_file(&clip, json!({})).await;
    let file_id = app.get_asset(&asset_id).await["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..300 {
        let done = lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("Transcode succeeded."))
            .count();
        if done == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let logged = lines.lock().unwrap().clone();
    for definition in ["100010", "100020"] {
        let line = logged
            .iter()
            .find(|l| l.contains(&format!("Definition: {definition},")))
            .unwrap_or_else(|| panic!("no line for {definition}: {logged:?}"));
        assert!(line.contains(&format!("FileId: {file_id}")), "{line}");
        let url = line.split("Url: ").nth(1).unwrap();
        assert_eq!(app.fetch(url).await.status(), 200);
    }
}

/// Calls the Tencent API directly, TC3-signed with the app's token.
pub async fn tc_call(app: &TestApp, action: &str, params: serde_json::Value) -> serde_json::Value {
    let host = app.base_url.trim_start_matches("http://").to_owned();
    let body = serde_json::to_vec(&params).unwrap();
    let ts = openvod::id::now_unix();
    let auth = openvod::compat::tencent::sign::authorization(
        &app.token_id,
        &app.token_secret,
        &host,
        ts,
        &body,
    );
    let r = app
        .client
        .post(format!("{}/", app.base_url))
        .header("content-type", "application/json")
        .header("x-tc-action", action)
        .header("x-tc-version", "2018-07-17")
        .header("x-tc-timestamp", ts.to_string())
        .header("authorization", auth)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json::<serde_json::Value>().await.unwrap()["Response"].clone()
}

#[tokio::test]
async fn hls_templates_snapshots_and_change_notifications() {
    let app = TestApp::spawn().await;
    let asset_id = app.upload_file(&clip_720p(), json!({})).await;
    app.run_jobs_until_idle().await;
    let file_id = app.get_asset(&asset_id).await["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rsp = tc_call(&app, "ProcessMedia", json!({"FileId": file_id, "TasksNotifyMode": "Change", "SessionContext": "ctx-7",
        "MediaProcessTask": {"TranscodeTaskSet": [{"Definition": 100210}],
            "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s", "50%"]}]}}))
    .await;
    let task_id = rsp["TaskId"]
        .as_str()
        .unwrap_or_else(|| panic!("{rsp}"))
        .to_owned();
    for (action, params, code) in [
        (
            "ProcessMedia",
            json!({"FileId": file_id, "MediaProcessTask": {"TranscodeTaskSet": [{"Definition": 999}]}}),
            "ResourceNotFound.TemplateNotExist",
        ),
        (
            "ProcessMedia",
            json!({"FileId": file_id, "SubAppId": 3, "MediaProcessTask": {"TranscodeTaskSet": [{"Definition": 100010}]}}),
            "InvalidParameterValue.SubAppId",
        ),
        ("NoSuchThing", json!({}), "InvalidAction"),
        (
            "DeleteMedia",
            json!({"FileId": file_id, "MediaProcessTask": {}}),
            "UnknownParameter",
        ),
        (
            "DescribeTaskDetail",
            json!({"TaskId": "nope"}),
            "InvalidParameterValue.TaskId",
        ),
    ] {
        let r = tc_call(&app, action, params).await;
        assert_eq!(r["Error"]["Code"], code, "{r}");
        assert!(r["RequestId"].is_string());
    }
    app.run_jobs_until_idle().await;
    let (_, events) = app
        .api_json(
            reqwest::Method::GET,
            "/openvod/v1/events?type=vod.procedure.changed",
            None,
        )
        .await;
    let statuses: Vec<String> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["ProcedureStateChangeEvent"]["Status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("PROCESSING"),
        "{statuses:?}"
    );
    assert_eq!(statuses.last().map(String::as_str), Some("FINISH"));
    assert!(
        statuses.len() >= 3,
        "Change mode reports every sub-task: {statuses:?}"
    );
    let last = &events["data"].as_array().unwrap().last().unwrap()["ProcedureStateChangeEvent"];
    assert_eq!(last["TaskId"], task_id.as_str());
    assert_eq!(last["SessionContext"], "ctx-7");
    let results = last["MediaProcessResultSet"].as_array().unwrap();
    let hls = &results.iter().find(|r| r["Type"] == "Transcode").unwrap()["TranscodeTask"];
    assert_eq!(hls["Status"], "SUCCESS", "{hls}");
    let url = hls["Output"]["Url"].as_str().unwrap();
    assert!(url.ends_with("v.f100210.m3u8"), "{url}");
    assert_eq!(hls["Output"]["Height"], 360);
    let playlist = app.fetch(url).await.text().await.unwrap();
    let segment = playlist.lines().find(|l| l.ends_with(".ts")).unwrap();
    assert_eq!(
        app.fetch(&url.replace("v.f100210.m3u8", segment))
            .await
            .status(),
        200
    );
    let snaps = &results
        .iter()
        .find(|r| r["Type"] == "SnapshotByTimeOffset")
        .unwrap()["SnapshotByTimeOffsetTask"];
    let pics = snaps["Output"]["PicInfoSet"].as_array().unwrap();
    assert_eq!(pics.len(), 2);
    assert_eq!(pics[1]["TimeOffset"], 1500, "50% of a 3 s clip");
    for pic in pics {
        let r = app.fetch(pic["Url"].as_str().unwrap()).await;
        assert_eq!(r.headers()["content-type"], "image/jpeg");
    }
    let get = app.fetch("/").await;
    assert_eq!(get.headers()["content-type"], "application/json");
    let get: serde_json::Value = get.json().await.unwrap();
    assert_eq!(get["Response"]["Error"]["Code"], "UnsupportedProtocol");
    let detail = tc_call(&app, "DescribeTaskDetail", json!({"TaskId": task_id})).await;
    assert_eq!(detail["Status"], "FINISH");
    assert_eq!(
        detail["ProcedureTask"]["MediaProcessResultSet"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// DescribeMediaInfos keeps only the parts its Filters name (and refuses an unknown one);
/// DescribeEventsState counts the events waiting to be pulled until they are confirmed.
#[tokio::test]
async fn media_info_filters_and_the_events_waiting() {
    let app = TestApp::spawn().await;
    let mode = tc_call(
        &app,
        "ModifyEventConfig",
        serde_json::json!({"Mode": "PULL", "UploadMediaCompleteEventSwitch": "ON"}),
    )
    .await;
    assert!(mode.get("Error").is_none(), "{mode}");
    let first = tc_call(&app, "PullEvents", serde_json::json!({})).await;
    assert_eq!(
        first["Error"]["Code"], "ResourceNotFound",
        "nothing yet, as Tencent answers: {first}"
    );
    app.upload_file(
        crate::support::clip(),
        serde_json::json!({"playback_policy": "public"}),
    )
    .await;
    app.run_jobs_until_idle().await;
    let found = tc_call(&app, "SearchMedia", serde_json::json!({})).await;
    let file_id = found["MediaInfoSet"][0]["FileId"]
        .as_str()
        .unwrap_or_else(|| panic!("{found}"))
        .to_owned();

    let waiting = tc_call(&app, "DescribeEventsState", serde_json::json!({})).await;
    let count = waiting["CountOfEventsToPull"]
        .as_i64()
        .unwrap_or_else(|| panic!("{waiting}"));
    assert!(
        count >= 1,
        "the upload's events wait to be pulled: {waiting}"
    );
    let pulled = tc_call(&app, "PullEvents", serde_json::json!({})).await;
    let handles: Vec<String> = pulled["EventSet"]
        .as_array()
        .unwrap_or_else(|| panic!("{pulled}"))
        .iter()
        .map(|e| e["EventHandle"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(handles.len() as i64, count, "{pulled}");
    let confirmed = tc_call(
        &app,
        "ConfirmEvents",
        serde_json::json!({"EventHandles": handles}),
    )
    .await;
    assert!(confirmed.get("Error").is_none(), "{confirmed}");
    let waiting = tc_call(&app, "DescribeEventsState", serde_json::json!({})).await;
    assert_eq!(waiting["CountOfEventsToPull"], 0, "{waiting}");

    for (filter, kept, dropped) in [
        ("basicInfo", "BasicInfo", "MetaData"),
        ("metaData", "MetaData", "BasicInfo"),
        ("transcodeInfo", "TranscodeInfo", "MetaData"),
    ] {
        let infos = tc_call(
            &app,
            "DescribeMediaInfos",
            serde_json::json!({"FileIds": [file_id], "Filters": [filter]}),
        )
        .await;
        let info = &infos["MediaInfoSet"][0];
        assert!(info[kept].is_object(), "{filter} keeps {kept}: {infos}");
        assert!(info[dropped].is_null(), "{filter} drops {dropped}: {infos}");
    }
    let infos = tc_call(
        &app,
        "DescribeMediaInfos",
        serde_json::json!({"FileIds": [file_id], "Filters": ["basicInfo", "metaData"]}),
    )
    .await;
    let info = &infos["MediaInfoSet"][0];
    assert!(
        info["BasicInfo"].is_object() && info["MetaData"].is_object(),
        "{infos}"
    );
    assert!(
        info["MetaData"]["Duration"].as_f64().unwrap() > 1.5,
        "{infos}"
    );
    let refused = tc_call(
        &app,
        "DescribeMediaInfos",
        serde_json::json!({"FileIds": [file_id], "Filters": ["everything"]}),
    )
    .await;
    let code = refused["Error"]["Code"]
        .as_str()
        .unwrap_or_else(|| panic!("{refused}"));
    assert!(code.starts_with("InvalidParameter"), "{refused}");
    assert!(
        refused["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("everything"),
        "the unknown filter is named: {refused}"
    );
}
