//! The pipeline end to end: real ffmpeg on generated clips, checked with ffprobe and m3u8-rs.

use std::path::PathBuf;

use serde_json::json;

use crate::support::{eventually, ffprobe, generate, TestApp};

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
            let channels = a["channels"].as_u64().unwrap();
            assert!(
                (1..=2).contains(&channels),
                "mono or stereo AAC: {channels}"
            );
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
    h264_720p("720p.mp4", "2")
}

/// 6 s of 1280x720 H.264 (x264 ultrafast) with AAC of `channels` channels: streamable.
fn h264_720p(name: &str, channels: &str) -> PathBuf {
    crate::support::h264_clip(name, "1280x720", 30, 6, &["-ac", channels])
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
    for (name, height) in [
        ("highest.mp4", Some(720)),
        ("360p.mp4", Some(360)),
        ("audio.m4a", None),
    ] {
        let r = app.fetch(&format!("/{pid}/{name}")).await;
        assert_eq!(r.status(), 200, "{name}");
        let probe = crate::support::ffprobe_bytes(&r.bytes().await.unwrap());
        let duration = crate::support::probed_duration(&probe);
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

/// Polls until the asset is `ready` (failing on `errored`).
async fn first_ready(app: &TestApp, asset_id: &str) -> serde_json::Value {
    for _ in 0..3000 {
        let asset = app.get_asset(asset_id).await;
        assert_ne!(asset["status"], "errored", "{asset}");
        if asset["status"] == "ready" {
            return asset;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{asset_id} never became ready");
}

/// What a player sees at the first `ready`: every variant of the master, each media playlist
/// (VOD, the whole timeline), and every segment fetched last first (the furthest from the
/// encoder, so they are waited for). Returns (variant, segment URL path, bytes) per segment.
async fn play_everything_at_ready(
    app: &TestApp,
    asset: &serde_json::Value,
    duration: f64,
) -> (m3u8_rs::MasterPlaylist, Vec<(usize, String, Vec<u8>)>) {
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let master_url = url::Url::parse(&format!("{}/{pid}.m3u8", app.base_url)).unwrap();
    let body = app.fetch(master_url.as_str()).await.bytes().await.unwrap();
    let m3u8_rs::Playlist::MasterPlaylist(master) = m3u8_rs::parse_playlist_res(&body).unwrap()
    else {
        panic!("not a master playlist");
    };
    let mut urls = Vec::new();
    for (i, variant) in master.variants.iter().enumerate() {
        let child_url = master_url.join(&variant.uri).unwrap();
        let r = app.fetch(child_url.as_str()).await;
        assert_eq!(r.status(), 200);
        assert_ne!(
            r.headers()["cache-control"],
            "no-cache",
            "playlists are final"
        );
        let text = r.text().await.unwrap();
        assert!(
            text.contains("#EXT-X-PLAYLIST-TYPE:VOD")
                && text.trim_end().ends_with("#EXT-X-ENDLIST"),
            "{}: {text}",
            variant.uri
        );
        let m3u8_rs::Playlist::MediaPlaylist(media) =
            m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap()
        else {
            panic!("not a media playlist");
        };
        let total: f64 = media.segments.iter().map(|s| s.duration as f64).sum();
        assert!(
            (total - duration).abs() <= 1.0 / 30.0 + 1e-3,
            "{}: {total} s listed for a {duration} s input",
            variant.uri
        );
        for segment in &media.segments {
            urls.push((i, child_url.join(&segment.uri).unwrap().path().to_owned()));
        }
    }
    let mut fetched = Vec::new();
    for (i, path) in urls.into_iter().rev() {
        let r = app.fetch(&path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "video/mp2t");
        fetched.push((i, path, r.bytes().await.unwrap().to_vec()));
    }
    fetched.reverse();
    (master, fetched)
}

/// Each variant's segments, concatenated, decode to the whole duration.
fn check_variants_play(fetched: &[(usize, String, Vec<u8>)], variants: usize, duration: f64) {
    let dir = tempfile::tempdir().unwrap();
    for v in 0..variants {
        let path = dir.path().join(format!("{v}.ts"));
        let bytes: Vec<u8> = fetched
            .iter()
            .filter(|(i, _, _)| *i == v)
            .flat_map(|(_, _, b)| b.clone())
            .collect();
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(out.status.success(), "variant {v} does not decode");
        let d = crate::support::probed_duration(&ffprobe(&path));
        assert!((d - duration).abs() < 0.2, "variant {v} plays {d} s");
    }
}

/// `ready` means the whole video: for a source that must be encoded, the master lists every rung
/// the plan will produce at the first `ready`, each media playlist is VOD with the whole
/// timeline, segments not yet encoded are waited for, and the bytes a player got are the ones
/// that stay in the store once the encode ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_lists_every_rung_and_the_whole_timeline() {
    let app = TestApp::spawn_with(1, |_| {}).await;
    let asset_id = app
        .upload_file(
            &crate::support::slow_clip(),
            json!({"playback_policy": "public"}),
        )
        .await;
    let asset = first_ready(&app, &asset_id).await;
    let (master, fetched) = play_everything_at_ready(&app, &asset, 12.0).await;
    let sizes: Vec<String> = master
        .variants
        .iter()
        .map(|v| {
            v.resolution
                .map(|r| format!("{}x{}", r.width, r.height))
                .unwrap()
        })
        .collect();
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    for size in ["960x540", "640x360", "480x270"] {
        assert!(sizes.contains(&size.to_owned()), "{sizes:?}");
    }
    for v in &master.variants {
        let codecs = v.codecs.as_deref().unwrap();
        assert!(
            codecs.starts_with("avc1.64") && codecs.ends_with(",mp4a.40.2"),
            "{codecs}"
        );
        assert!(v.bandwidth > 100_000);
    }
    check_variants_play(&fetched, 3, 12.0);
    // Once the encode is over, the store holds exactly the bytes that were served.
    eventually("the ladder is measured", || {
        let app = &app;
        let pid = asset["playback_ids"][0]["id"].as_str().unwrap().to_owned();
        let before: Vec<u64> = master.variants.iter().map(|v| v.bandwidth).collect();
        async move {
            let body = app
                .fetch(&format!("/{pid}.m3u8"))
                .await
                .bytes()
                .await
                .unwrap();
            let m3u8_rs::Playlist::MasterPlaylist(now) =
                m3u8_rs::parse_playlist_res(&body).unwrap()
            else {
                return false;
            };
            now.variants.iter().map(|v| v.bandwidth).collect::<Vec<_>>() != before
        }
    })
    .await;
    for (_, path, bytes) in &fetched {
        let mut parts = path.rsplit('/');
        let (file, rendition) = (parts.next().unwrap(), parts.next().unwrap());
        let stored = app
            .stored(&format!("assets/{asset_id}/hls/{rendition}/{file}"))
            .await
            .unwrap();
        assert!(stored == *bytes, "{path} changed after it was served");
    }
}

/// H.264 with mono AAC is streamable: remuxed (its own stream, not re-encoded to High profile),
/// ready at once with every lower rung planned, and the ladder keeps it mono.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mono_aac_h264_is_remuxed_and_lists_every_rung_at_ready() {
    let clip = h264_720p("720p-mono.mp4", "1");
    let app = TestApp::spawn_with(1, |_| {}).await;
    let asset_id = app
        .upload_file(&clip, json!({"playback_policy": "public"}))
        .await;
    let asset = first_ready(&app, &asset_id).await;
    let (master, fetched) = play_everything_at_ready(&app, &asset, 6.0).await;
    assert_eq!(master.variants.len(), 4, "720p remuxed + 540p, 360p, 270p");
    let top = master
        .variants
        .iter()
        .position(|v| v.resolution.is_some_and(|r| r.height == 720))
        .unwrap();
    assert!(
        master.variants[top]
            .codecs
            .as_deref()
            .unwrap()
            .starts_with("avc1.42"),
        "the source's own stream (x264 ultrafast: Constrained Baseline), remuxed: {:?}",
        master.variants
    );
    check_variants_play(&fetched, 4, 6.0);
    for v in 0..4 {
        let (_, _, bytes) = fetched.iter().find(|(i, _, _)| *i == v).unwrap();
        let probed = crate::support::ffprobe_bytes(bytes);
        let audio = probed["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_type"] == "audio")
            .unwrap()
            .clone();
        assert_eq!(audio["channels"], 1, "variant {v}");
    }
}

/// An ffmpeg in `dir` that holds every run but the quick first-segment pass (the one with `-t`)
/// until the file `gate` (returned with it) exists; each held run appends its pid to `dir/pids`
/// (it then `exec`s ffmpeg, so the pid stays the encoder's).
fn gated_ffmpeg(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let gate = dir.join("open");
    let wrapper = dir.join("ffmpeg");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \" $* \" in\n  *\" -t \"*) ;;\n  *) echo $$ >> '{}'; while [ ! -e '{}' ]; do sleep 0.05; done ;;\nesac\nexec ffmpeg \"$@\"\n",
            dir.join("pids").display(),
            gate.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, gate)
}

/// A server (configured by `configure` too) whose ffmpeg is `gated_ffmpeg`, and an asset uploaded
/// to it from the slow clip: (the gate's folder, the gate, the server, the asset's id).
async fn upload_behind_gate(
    configure: impl FnOnce(&mut openvod::config::Config),
) -> (tempfile::TempDir, PathBuf, TestApp, String) {
    let gate_dir = tempfile::tempdir().unwrap();
    let (wrapper, gate) = gated_ffmpeg(gate_dir.path());
    let app = TestApp::spawn_with(1, move |c| {
        c.media.ffmpeg_path = wrapper;
        configure(c);
    })
    .await;
    let asset_id = app
        .upload_file(
            &crate::support::slow_clip(),
            json!({"playback_policy": "public"}),
        )
        .await;
    (gate_dir, gate, app, asset_id)
}

/// Whether process `pid` is gone (or a zombie not yet reaped).
fn process_gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

/// A worker whose lease is taken over stops the job at once (its ffmpeg killed) instead of
/// working on for a result that would be refused; once the lease lapses the job is run again and
/// finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_is_taken_over_stops_its_job() {
    let (gate_dir, gate, app, asset_id) = upload_behind_gate(|c| c.jobs.lease_secs = 3).await;
    let pids = gate_dir.path().join("pids");
    eventually("the full pass is held", || async { pids.exists() }).await;
    let held = std::fs::read_to_string(&pids).unwrap();
    let db = crate::support::raw_db_writable(&app.config.database, &app.config.data_dir).await;
    let taken = sqlx::query("UPDATE jobs SET lease_token = 'taken-over' WHERE state = 'running'")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(taken.rows_affected(), 1, "one job runs: the held encode");
    eventually("the held encode is killed", || async {
        held.lines().all(process_gone)
    })
    .await;
    std::fs::write(&gate, "").unwrap();
    eventually("the job is run again and every job is done", || async {
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state <> 'done'")
            .fetch_one(&db)
            .await
            .unwrap();
        let asset = app.get_asset(&asset_id).await;
        assert_ne!(asset["status"], "errored", "{asset}");
        open == 0 && asset["status"] == "ready"
    })
    .await;
}

/// A segment the encoder has not reached is waited for (bounded by `segment_wait_secs`), then
/// refused with 503, `Retry-After` and a JSON error naming it; a player that retries gets it once
/// it is encoded. The full pass is held back by a gate in front of ffmpeg, so the timing is the
/// test's, not the machine's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_not_yet_encoded_is_waited_for_then_503_with_retry_after() {
    let (_gate_dir, gate, app, asset_id) =
        upload_behind_gate(|c| c.media.segment_wait_secs = 1).await;
    let asset = first_ready(&app, &asset_id).await;
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let master = app
        .fetch(&format!("/{pid}.m3u8"))
        .await
        .text()
        .await
        .unwrap();
    let children: Vec<&str> = master
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(children.len(), 3, "{master}");
    let segment = |child: &str, file: &str| {
        let dir = child.rsplit_once('/').unwrap().0;
        if dir.starts_with('/') || dir.starts_with("http") {
            format!("{dir}/{file}")
        } else {
            format!("/{dir}/{file}")
        }
    };
    // The lowest rung's first segment is what made the asset ready: served at once.
    let lowest = children
        .iter()
        .find(|c| c.contains("270p"))
        .expect("a 270p rung");
    let r = app.fetch(&segment(lowest, "seg_00000.ts")).await;
    assert_eq!(r.status(), 200);
    // The top rung's second segment is planned (listed) but the full pass has not started.
    let top = children.iter().find(|c| c.contains("540p")).unwrap();
    let listed = app
        .fetch(&format!("/{}", top.trim_start_matches('/')))
        .await;
    assert!(listed.text().await.unwrap().contains("seg_00001.ts"));
    let late = segment(top, "seg_00001.ts");
    let asked = std::time::Instant::now();
    let r = app.fetch(&late).await;
    let waited = asked.elapsed();
    assert_eq!(r.status(), 503, "{late}");
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "answered after {waited:?}: it must wait first"
    );
    assert_eq!(r.headers()["retry-after"], "2");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "retry_later", "{body}");
    assert!(
        body["error"]["messages"][0]
            .as_str()
            .unwrap()
            .contains("seg_00001.ts"),
        "{body}"
    );
    // A segment nobody listed is a plain 404, not a wait.
    let r = app.fetch(&segment(top, "seg_00099.ts")).await;
    assert_eq!(r.status(), 404);
    // The encoder goes on; the player retries as told and gets the segment.
    std::fs::write(&gate, b"").unwrap();
    let mut bytes = None;
    for _ in 0..60 {
        let r = app.fetch(&late).await;
        match r.status().as_u16() {
            200 => {
                bytes = Some(r.bytes().await.unwrap());
                break;
            }
            503 => assert_eq!(r.headers()["retry-after"], "2"),
            other => panic!("{late}: {other}"),
        }
    }
    let bytes = bytes.expect("the segment arrives once encoded");
    assert!(bytes.len() > 1000 && bytes[0] == 0x47, "an MPEG-TS segment");
}

/// The packets of an MPEG-TS segment, as `(stream type, pts)`: what a player gets from it.
fn packets(bytes: &[u8]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment.ts");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=codec_type,pts_time"])
        .args(["-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(','))
        .map(|(kind, pts)| (kind.to_owned(), pts.to_owned()))
        .collect()
}

/// A long input is encoded in pieces that the workers share (two here), its audio encoded once;
/// what players get is what a one-pass encode gives: the same playlists, and segment by segment
/// the same video frames at the same times and the same audio packets at the same times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_inputs_are_encoded_in_pieces_that_play_like_one_pass() {
    let input = crate::support::mpeg4_clip("480x270", 25, 30);
    let split = TestApp::spawn_with(2, |c| {
        c.media.parallel_min_secs = 20;
        c.media.piece_secs = 8;
        c.media.x264_preset = "ultrafast".into();
    })
    .await;
    let whole = TestApp::spawn_with(1, |c| {
        c.media.parallel_min_secs = 0;
        c.media.x264_preset = "ultrafast".into();
    })
    .await;
    let mut played = Vec::new();
    for app in [&split, &whole] {
        let id = app
            .upload_file(&input, json!({"playback_policy": "public"}))
            .await;
        let db = crate::support::raw_db(&app.config.database, &app.config.data_dir).await;
        eventually("every job is done", || async {
            let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state <> 'done'")
                .fetch_one(&db)
                .await
                .unwrap();
            let asset = app.get_asset(&id).await;
            assert_ne!(asset["status"], "errored", "{asset}");
            open == 0 && asset["status"] == "ready"
        })
        .await;
        let pieces: Vec<String> = sqlx::query_scalar(
            "SELECT payload FROM jobs WHERE kind = 'transcode_piece' ORDER BY id",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let work = openvod::assets::model::Asset::work_key(&id, "audio.aac");
        assert!(
            app.stored(&work).await.is_none(),
            "the split's work files go"
        );
        played.push((
            pieces,
            play_everything_at_ready(app, &app.get_asset(&id).await, 30.0).await,
        ));
    }
    let (pieces, (split_master, split_segments)) = &played[0];
    let (none, (whole_master, whole_segments)) = &played[1];
    assert_eq!(pieces.len(), 4, "30 s in pieces of 8 s: {pieces:?}");
    assert!(none.is_empty());
    assert_eq!(split_master.variants.len(), whole_master.variants.len());
    assert_eq!(split_segments.len(), whole_segments.len());
    let mut audio_packets = 0;
    for ((_, path, split_bytes), (_, _, whole_bytes)) in split_segments.iter().zip(whole_segments) {
        let (split, whole) = (packets(split_bytes), packets(whole_bytes));
        let kinds = |p: &[(String, String)], kind: &str| -> Vec<String> {
            p.iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, pts)| pts.clone())
                .collect()
        };
        let (split_video, whole_video) = (kinds(&split, "video"), kinds(&whole, "video"));
        assert_eq!(split_video.len(), whole_video.len(), "{path}: frames");
        let mut split_sorted = split_video.clone();
        let mut whole_sorted = whole_video.clone();
        split_sorted.sort();
        whole_sorted.sort();
        assert_eq!(split_sorted, whole_sorted, "{path}: frame times");
        assert_eq!(
            kinds(&split, "audio"),
            kinds(&whole, "audio"),
            "{path}: audio packets"
        );
        audio_packets += kinds(&split, "audio").len();
    }
    // 30 s of 48 kHz AAC: 1407 frames and the priming one, each in exactly one segment.
    assert!(audio_packets >= 1400, "{audio_packets}");
}

/// Integrated loudness (EBU R128) of a media file, in LUFS, as ffmpeg's `ebur128` measures it.
fn loudness(bytes: &[u8]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.m4a");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostats", "-i"])
        .arg(&path)
        .args(["-af", "ebur128", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let summary = log.rsplit("Integrated loudness:").next().unwrap();
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("I:"))
        .and_then(|v| v.trim().trim_end_matches("LUFS").trim().parse().ok())
        .unwrap_or_else(|| panic!("no loudness in {log}"))
}

/// `normalize_audio` brings a quiet input to −23 LUFS within 1 LU in the encode; without it the
/// level is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalize_audio_reaches_ebu_r128() {
    let input = crate::support::h264_clip("quiet.mp4", "320x240", 25, 8, &["-af", "volume=0.05"]);
    let app = TestApp::spawn().await;
    for (normalize, range) in [(true, -24.0..-22.0), (false, -60.0..-40.0)] {
        let id = app
            .upload_file(
                &input,
                json!({"playback_policy": "public", "normalize_audio": normalize,
                       "static_renditions": [{"resolution": "audio-only"}]}),
            )
            .await;
        app.run_jobs_until_idle().await;
        let asset = app.get_asset(&id).await;
        assert_eq!(asset["normalize_audio"], normalize);
        let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
        let m4a = app.fetch(&format!("/{pid}/audio.m4a")).await;
        assert_eq!(m4a.status(), 200, "{asset}");
        let lufs = loudness(&m4a.bytes().await.unwrap());
        assert!(
            range.contains(&lufs),
            "normalize_audio {normalize}: {lufs} LUFS"
        );
    }
}

/// Mean brightness (0..255) of the top eighth of the first frame of a video file's bytes.
fn top_band_brightness(bytes: &[u8]) -> u8 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args([
            "-frames:v",
            "1",
            "-vf",
            "crop=iw:ih/10:0:0,scale=1:1",
            "-pix_fmt",
            "gray",
        ])
        .args(["-f", "rawvideo", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout[0]
}

/// A test asset (`test: true`) is ten seconds long whatever its input, watermarked (a light band
/// across the top of the picture), and set to go after a day, as Mux's are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_assets_are_short_watermarked_and_expire() {
    let input = crate::support::mpeg4_clip("480x270", 25, 30);
    let app = TestApp::spawn().await;
    let id = app
        .upload_file(&input, json!({"playback_policy": "public", "test": true}))
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&id).await;
    assert_eq!(
        (asset["status"].as_str(), asset["test"].as_bool()),
        (Some("ready"), Some(true))
    );
    // Every variant's playlist lists ten seconds (checked within a frame).
    let (_, fetched) = play_everything_at_ready(&app, &asset, 10.0).await;
    let watermarked = top_band_brightness(&fetched[0].2);
    let source = top_band_brightness(&std::fs::read(&input).unwrap());
    assert!(
        watermarked >= 200 && source < 200,
        "top band: {watermarked} encoded, {source} in the source"
    );
    let db = crate::support::raw_db(&app.config.database, &app.config.data_dir).await;
    let (created, settings): (i64, String) =
        sqlx::query_as("SELECT created_at, settings FROM assets WHERE id = $1")
            .bind(&id)
            .fetch_one(&db)
            .await
            .unwrap();
    let settings: serde_json::Value = serde_json::from_str(&settings).unwrap();
    assert_eq!(settings["expire_at"], created + 24 * 3600);
}
