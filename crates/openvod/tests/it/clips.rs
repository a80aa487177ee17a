//! Clips (Mux's `input: [{"url": "mux://assets/{id}", "start_time", "end_time"}]`): a new asset
//! cut from an existing one, exactly where asked: packets copied when the cut starts on a keyframe,
//! else only the frames up to the next keyframe encoded and the rest copied.

use reqwest::Method;
use serde_json::json;

use crate::support::{ffprobe_bytes, h264_clip, probed_duration, TestApp};

async fn create(app: &TestApp, input: serde_json::Value) -> (u16, serde_json::Value) {
    app.api_json(
        Method::POST,
        "/video/v1/assets",
        Some(json!({"input": [input], "playback_policy": ["public"]})),
    )
    .await
}

/// The video packets of a file in decoding order: (pts seconds, keyframe, MD5 of the data).
fn video_packets(path: &std::path::Path) -> Vec<(f64, bool, String)> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_data_hash",
            "MD5",
        ])
        .args([
            "-show_entries",
            "packet=pts_time,flags,data_hash",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (
                fields[0].parse().unwrap(),
                fields[1].contains('K'),
                fields[2].to_owned(),
            )
        })
        .collect()
}

/// What ffmpeg reports decoding the whole file (nothing when it decodes cleanly).
fn decode_errors(path: &std::path::Path) -> String {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn clips_cut_the_asked_range_and_refuse_bad_ranges() {
    let app = TestApp::spawn().await;
    // 12 s, a keyframe every second (x264's -g 25 at 25 fps).
    let source = h264_clip("clip-source.mp4", "320x180", 25, 12, &["-g", "25"]);
    let source_id = app
        .upload_file(&source, json!({"playback_policy": ["public"]}))
        .await;
    app.run_jobs_until_idle().await;

    // Between keyframes (spliced), on one (packets copied), and within one GOP (encoded).
    for (start, end, name) in [
        (2.5, 7.3, "mid-gop"),
        (4.0, 9.0, "keyframe"),
        (2.2, 2.8, "inside-a-gop"),
    ] {
        let (status, json) = create(
            &app,
            json!({"url": format!("mux://assets/{source_id}"), "start_time": start, "end_time": end}),
        )
        .await;
        assert_eq!(status, 201, "{json}");
        assert_eq!(json["data"]["ingest_type"], "on_demand_clip");
        assert_eq!(json["data"]["source_asset_id"], source_id.as_str());
        let clip_id = json["data"]["id"].as_str().unwrap().to_owned();
        app.run_jobs_until_idle().await;
        let clip = app.get_asset(&clip_id).await;
        assert_eq!(clip["status"], "ready", "{clip:#}");
        let master = app.download_master(&clip_id).await;
        let probed = ffprobe_bytes(&master);
        let duration = probed_duration(&probed);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &master).unwrap();
        assert_eq!(decode_errors(file.path()), "", "{name}: decodes cleanly");
        if name == "mid-gop" {
            // Frames 2.52..2.96 s encoded; from the keyframe at 3 s on, the source's own packets.
            let clip = video_packets(file.path());
            let copied_from = clip.iter().skip(1).position(|p| p.1).unwrap() + 1;
            assert!(
                (11..=13).contains(&copied_from),
                "{copied_from} frames encoded"
            );
            let source_packets = video_packets(&source);
            let keyframe = source_packets
                .iter()
                .position(|p| p.1 && (p.0 - 3.0).abs() < 0.001)
                .unwrap();
            // (Keyframes also carry the source's parameter sets in band.)
            let hashes = |packets: &[(f64, bool, String)]| -> Vec<String> {
                let hash = |p: &(f64, bool, String)| if p.1 { "key".into() } else { p.2.clone() };
                packets.iter().take(100).map(hash).collect()
            };
            assert_eq!(
                hashes(&clip[copied_from..]),
                hashes(&source_packets[keyframe..]),
                "the packets from the keyframe on are the source's"
            );
            assert!(
                (clip[copied_from].0 - 0.5).abs() < 0.021,
                "{:?}",
                clip[copied_from]
            );
        }
        assert!(
            (duration - (end - start)).abs() < 0.1,
            "{name}: {duration} s, not {} s: {probed:#}",
            end - start
        );
        let streams = probed["streams"].as_array().unwrap();
        assert!(
            streams.iter().any(|s| s["codec_type"] == "audio"),
            "{probed:#}"
        );
        let asset_duration = clip["duration"].as_f64().unwrap();
        assert!((asset_duration - (end - start)).abs() < 0.1, "{clip:#}");
    }

    // Without end_time: to the end of the source.
    let (status, json) = create(
        &app,
        json!({"url": format!("mux://assets/{source_id}"), "start_time": 10}),
    )
    .await;
    assert_eq!(status, 201, "{json}");
    let tail_id = json["data"]["id"].as_str().unwrap().to_owned();
    app.run_jobs_until_idle().await;
    let tail = app.get_asset(&tail_id).await;
    assert!(
        (tail["duration"].as_f64().unwrap() - 2.0).abs() < 0.1,
        "{tail:#}"
    );

    for (input, named) in [
        (
            json!({"url": format!("mux://assets/{source_id}"), "start_time": 5, "end_time": 4}),
            "end_time",
        ),
        (
            json!({"url": format!("mux://assets/{source_id}"), "start_time": 30}),
            "start_time",
        ),
        (
            json!({"url": format!("mux://assets/{source_id}"), "start_time": -1}),
            "start_time",
        ),
        (
            json!({"url": "mux://assets/doesnotexist", "start_time": 1}),
            "does not exist",
        ),
        (json!({"url": "mux://uploads/x"}), "mux://assets/{asset_id}"),
        (
            json!({"url": "http://127.0.0.1:9/x.mp4", "start_time": 1}),
            "start_time",
        ),
    ] {
        let (status, json) = create(&app, input.clone()).await;
        assert_eq!(status, 400, "{input}: {json}");
        let message = json["error"]["messages"][0].as_str().unwrap();
        assert!(message.contains(named), "{input}: {message}");
    }

    // A source not probed yet cannot be clipped.
    let (_, pending) = create(&app, json!({"url": "http://127.0.0.1:9/later.mp4"})).await;
    let pending_id = pending["data"]["id"].as_str().unwrap();
    let (status, json) = create(
        &app,
        json!({"url": format!("mux://assets/{pending_id}"), "start_time": 1}),
    )
    .await;
    assert_eq!(status, 400, "{json}");
    assert!(json["error"]["messages"][0]
        .as_str()
        .unwrap()
        .contains("until it is ready"));
}
