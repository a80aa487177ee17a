//! The pipeline end to end: real ffmpeg on generated clips, checked with ffprobe and m3u8-rs.

use std::path::PathBuf;

use serde_json::json;

use crate::support::{ffprobe, generate, TestApp};

/// A fetched and checked HLS rendition.
#[derive(Debug)]
pub struct CheckedRendition {
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub duration: f64,
    pub codecs: String,
}

fn keyframe_first(path: &std::path::Path) -> bool {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=key_frame",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().and_then(|l| l.split(',').next()) == Some("1")
}

/// Fetches `master_url`, every rendition playlist and every segment; asserts that the master's
/// attributes match the files and that each segment starts on a keyframe.
pub async fn check_hls(app: &TestApp, master_url: &str) -> Vec<CheckedRendition> {
    let r = app.fetch(master_url).await;
    assert_eq!(r.status(), 200, "{master_url}: {}", r.text().await.unwrap());
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let master_url = r.url().clone();
    let body = r.bytes().await.unwrap();
    let m3u8_rs::Playlist::MasterPlaylist(master) = m3u8_rs::parse_playlist_res(&body).unwrap()
    else {
        panic!("not a master playlist");
    };
    let dir = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for (i, variant) in master.variants.iter().enumerate() {
        let child_url = master_url.join(&variant.uri).unwrap();
        // Players drop the query string: the child URL must work without it.
        assert!(child_url.query().is_none(), "{child_url}");
        let child = app.fetch(child_url.as_str()).await;
        assert_eq!(child.status(), 200, "{child_url}");
        let text = child.bytes().await.unwrap();
        let m3u8_rs::Playlist::MediaPlaylist(media) = m3u8_rs::parse_playlist_res(&text).unwrap()
        else {
            panic!("not a media playlist");
        };
        assert!(media.end_list, "VOD playlists end");
        let mut duration = 0.0;
        let mut first_segment: Option<PathBuf> = None;
        for (n, segment) in media.segments.iter().enumerate() {
            let url = child_url.join(&segment.uri).unwrap();
            let r = app.fetch(url.as_str()).await;
            assert_eq!(r.status(), 200, "{url}");
            assert_eq!(r.headers()["content-type"], "video/mp2t");
            let path = dir.path().join(format!("{i}-{n}.ts"));
            std::fs::write(&path, r.bytes().await.unwrap()).unwrap();
            if variant.resolution.is_some() {
                assert!(
                    keyframe_first(&path),
                    "segment {n} of {} starts without a keyframe",
                    variant.uri
                );
            }
            first_segment.get_or_insert(path);
            duration += segment.duration as f64;
        }
        let probe = ffprobe(first_segment.as_ref().expect("segments"));
        let streams = probe["streams"].as_array().unwrap();
        let codecs = variant.codecs.clone().unwrap_or_default();
        if let Some(res) = &variant.resolution {
            let v = streams
                .iter()
                .find(|s| s["codec_type"] == "video")
                .expect("video stream");
            assert_eq!(
                (v["width"].as_u64(), v["height"].as_u64()),
                (Some(res.width), Some(res.height)),
                "RESOLUTION matches"
            );
            assert_eq!(res.width % 2 + res.height % 2, 0, "even dimensions");
            let expected = format!(
                "avc1.{}",
                match v["profile"].as_str().unwrap() {
                    "High" => "6400",
                    "Main" => "4d40",
                    _ => "42e0",
                }
            );
            assert!(
                codecs.starts_with(&expected),
                "CODECS {codecs} vs profile {}",
                v["profile"]
            );
            assert!(
                codecs.ends_with(&format!("{:02x}", v["level"].as_u64().unwrap()))
                    || codecs.contains(&format!("{:02x},", v["level"].as_u64().unwrap())),
                "{codecs}"
            );
        }
        if streams.iter().any(|s| s["codec_type"] == "audio") {
            assert!(codecs.contains("mp4a.40.2"), "{codecs}");
            let a = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
            assert_eq!(a["channels"], 2, "stereo AAC");
        }
        assert!(variant.bandwidth > 0);
        checked.push(CheckedRendition {
            width: variant.resolution.as_ref().map(|r| r.width),
            height: variant.resolution.as_ref().map(|r| r.height),
            duration,
            codecs,
        });
    }
    checked
}

/// A copy of an MP4 whose (only) track carries a 90° display matrix, as phones write them.
/// ffmpeg 5.1 cannot write one, so the `tkhd` box is patched.
fn rotated(path: PathBuf) -> PathBuf {
    let mut data = std::fs::read(&path).unwrap();
    let at = data
        .windows(4)
        .position(|w| w == b"tkhd")
        .expect("tkhd box")
        + 4;
    assert_eq!(data[at], 0, "version 0 tkhd");
    let matrix_at = at + 4 + 4 * 5 + 8 + 2 * 4;
    let matrix: [i32; 9] = [0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x4000_0000];
    for (i, v) in matrix.iter().enumerate() {
        data[matrix_at + 4 * i..matrix_at + 4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    let out = path.with_file_name("rotated.mp4");
    std::fs::write(&out, data).unwrap();
    assert_ne!(
        ffprobe(&out)["streams"][0]["side_data_list"],
        serde_json::Value::Null,
        "rotation written"
    );
    out
}

async fn ready_asset(app: &TestApp, asset_id: &str) -> serde_json::Value {
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(asset_id).await;
    assert_eq!(asset["status"], "ready", "{asset}");
    asset
}

fn clip_720p() -> PathBuf {
    generate(
        "720p.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",
            "2",
            "-shortest",
        ],
    )
}

#[tokio::test]
async fn streamable_720p_source_gets_full_ladder_with_aligned_keyframes() {
    let app = TestApp::spawn().await;
    let asset_id = app
        .upload_file(&clip_720p(), json!({"playback_policy": "public"}))
        .await;
    let asset = ready_asset(&app, &asset_id).await;
    assert_eq!(asset["resolution_tier"], "720p");
    assert_eq!(asset["max_stored_resolution"], "HD");
    assert_eq!(asset["aspect_ratio"], "16:9");
    assert_eq!(asset["max_stored_frame_rate"], 30.0);
    assert_eq!(asset["progress"]["state"], "completed");
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let renditions = check_hls(&app, &format!("/{pid}.m3u8")).await;
    let mut heights: Vec<u64> = renditions.iter().filter_map(|r| r.height).collect();
    heights.sort_unstable();
    assert_eq!(
        heights,
        [270, 360, 540, 720],
        "never upscaled, every rung below the source"
    );
    assert_eq!(renditions[0].height, Some(720), "720p is listed first");
    for r in &renditions {
        assert!(
            (r.duration - 6.0).abs() <= 1.0 / 30.0 + 0.05,
            "{r:?} plays to the end"
        );
        assert!(
            r.width.unwrap() * 9 == r.height.unwrap() * 16,
            "{r:?} keeps 16:9"
        );
    }
}

#[tokio::test]
async fn non_streamable_and_odd_inputs_reach_ready() {
    let app = TestApp::spawn().await;
    type Check = Box<dyn Fn(&[CheckedRendition])>;
    let cases: Vec<(&str, PathBuf, Check)> = vec![
        (
            "mpeg4 odd size, no audio",
            generate(
                "odd.mp4",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=161x91:rate=25:duration=3",
                    "-c:v",
                    "mpeg4",
                ],
            ),
            Box::new(|r| {
                assert_eq!(r.len(), 1);
                assert!(r[0].width.unwrap() <= 161 && r[0].height.unwrap() <= 91);
                assert!(!r[0].codecs.contains("mp4a"), "no audio track invented");
            }),
        ),
        (
            "10-bit with 5.1 audio",
            generate(
                "10bit51.mkv",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=640x360:rate=24:duration=3",
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=frequency=500:duration=3",
                    "-filter_complex",
                    "[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[a]",
                    "-map",
                    "0:v",
                    "-map",
                    "[a]",
                    "-c:v",
                    "ffv1",
                    "-pix_fmt",
                    "yuv420p10le",
                    "-c:a",
                    "flac",
                ],
            ),
            Box::new(|r| {
                let heights: Vec<_> = r.iter().filter_map(|r| r.height).collect();
                assert_eq!(heights, [360, 270]);
            }),
        ),
        (
            "rotated portrait",
            rotated(generate(
                "landscape.mp4",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=640x360:rate=30:duration=3",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-pix_fmt",
                    "yuv420p",
                ],
            )),
            Box::new(|r| {
                assert!(
                    r.iter().all(|r| r.height > r.width),
                    "{r:?} is portrait after rotation"
                );
            }),
        ),
        (
            "variable frame rate",
            generate(
                "vfr.mp4",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=320x240:rate=30:duration=3",
                    "-vf",
                    "select='lt(n\\,15)+not(mod(n\\,4))'",
                    "-vsync",
                    "vfr",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-pix_fmt",
                    "yuv420p",
                ],
            ),
            Box::new(|r| assert_eq!(r.iter().filter_map(|r| r.height).collect::<Vec<_>>(), [240])),
        ),
        (
            "audio only",
            generate(
                "audio.m4a",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=frequency=440:duration=3",
                    "-c:a",
                    "aac",
                ],
            ),
            Box::new(|r| {
                assert_eq!(r.len(), 1);
                assert!(r[0].height.is_none() && r[0].codecs == "mp4a.40.2", "{r:?}");
            }),
        ),
    ];
    for (name, path, check) in cases {
        let asset_id = app
            .upload_file(&path, json!({"playback_policy": "public"}))
            .await;
        app.run_jobs_until_idle().await;
        let asset = app.get_asset(&asset_id).await;
        assert_eq!(asset["status"], "ready", "{name}: {asset}");
        let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
        let renditions = check_hls(&app, &format!("/{pid}.m3u8")).await;
        for r in &renditions {
            assert!((r.duration - 3.0).abs() < 0.2, "{name}: {r:?}");
        }
        check(&renditions);
    }
}

#[tokio::test]
async fn truncated_input_and_limits_error_clearly() {
    let app = TestApp::spawn_with(0, |c| c.media.max_duration_secs = 5).await;
    let full = std::fs::read(clip_720p()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let truncated_id = app.upload_file(&truncated, json!({})).await;
    let long_id = app.upload_file(&clip_720p(), json!({})).await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&truncated_id).await;
    assert_eq!(asset["status"], "errored", "{asset}");
    assert_eq!(asset["errors"]["type"], "invalid_input");
    let asset = app.get_asset(&long_id).await;
    assert_eq!(asset["status"], "errored", "{asset}");
    let message = asset["errors"]["messages"][0].as_str().unwrap();
    assert!(message.contains("limit is 5 s"), "{message}");
}

#[tokio::test]
async fn static_renditions_come_from_the_same_encode() {
    let app = TestApp::spawn().await;
    let asset_id = app
        .upload_file(&clip_720p(), json!({"playback_policy": "public", "static_renditions": [{"resolution": "highest"}, {"resolution": "audio-only"}, {"resolution": "360p"}]}))
        .await;
    let asset = ready_asset(&app, &asset_id).await;
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, height) in [
        ("highest.mp4", Some(720)),
        ("360p.mp4", Some(360)),
        ("audio.m4a", None),
    ] {
        let r = app.fetch(&format!("/{pid}/{name}")).await;
        assert_eq!(r.status(), 200, "{name}");
        let path = dir.path().join(name);
        std::fs::write(&path, r.bytes().await.unwrap()).unwrap();
        let probe = ffprobe(&path);
        let duration: f64 = probe["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((duration - 6.0).abs() < 0.1, "{name}: {duration}");
        let video = probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_type"] == "video")
            .map(|v| v["height"].as_u64().unwrap());
        assert_eq!(video, height, "{name}");
    }
    assert_eq!(app.fetch(&format!("/{pid}/1080p.mp4")).await.status(), 404);
    let legacy = app
        .upload_file(
            &clip_720p(),
            json!({"playback_policy": "public", "mp4_support": "standard"}),
        )
        .await;
    let asset = ready_asset(&app, &legacy).await;
    assert_eq!(asset["mp4_support"], "standard");
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    for name in ["high.mp4", "medium.mp4", "low.mp4"] {
        assert_eq!(
            app.fetch(&format!("/{pid}/{name}")).await.status(),
            200,
            "{name}"
        );
    }
}

#[tokio::test]
async fn non_streamable_source_plays_its_lowest_rung_while_the_ladder_encodes() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    let slow = crate::support::slow_clip();
    let asset_id = app
        .upload_file(&slow, json!({"playback_policy": "public"}))
        .await;
    let mut early: Option<String> = None;
    let mut asset;
    loop {
        asset = app.get_asset(&asset_id).await;
        assert_ne!(asset["status"], "errored", "{asset}");
        if asset["status"] == "ready" {
            let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
            let master = app
                .fetch(&format!("/{pid}.m3u8"))
                .await
                .text()
                .await
                .unwrap();
            if master.matches("#EXT-X-STREAM-INF").count() == 3 {
                break;
            }
            if early.is_none() {
                let child = master.lines().find(|l| !l.starts_with('#')).unwrap();
                let r = app.fetch(&format!("/{child}")).await;
                assert_eq!(
                    r.headers()["cache-control"],
                    "no-cache",
                    "a growing playlist is not cached"
                );
                early = Some(r.text().await.unwrap());
                assert!(
                    master.contains("RESOLUTION=480x270"),
                    "the lowest rung comes first:\n{master}"
                );
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let early = early.expect("the asset became ready before the whole ladder was published");
    assert!(
        early.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !early.contains("#EXT-X-ENDLIST"),
        "{early}"
    );
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let renditions = check_hls(&app, &format!("/{pid}.m3u8")).await;
    assert_eq!(renditions.len(), 3);
    for r in &renditions {
        assert!((r.duration - 12.0).abs() < 0.1, "{r:?}");
    }
}
