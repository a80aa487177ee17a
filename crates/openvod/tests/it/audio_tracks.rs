//! Audio tracks (Mux's `type: audio` inputs and tracks): another language's sound, fetched and
//! encoded by a job into an HLS rendition as long as the asset, offered in the master playlist as
//! an alternate of the `AUDIO` group beside the variants' own sound, deleted; hls.js switches to
//! it in Chromium.

use std::path::{Path, PathBuf};

use axum::routing::get;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{generate, h264_clip, playlist_uris as uris, TestApp};

/// A 5 s stereo 880 Hz tone in AAC: shorter than the videos it is added to, and unlike their own
/// 440 Hz mono tone.
fn french_audio() -> PathBuf {
    generate(
        "audio-track-fr.m4a",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:duration=5",
            "-ac",
            "2",
            "-c:a",
            "aac",
        ],
    )
}

/// A video without sound: not an audio track.
fn silent_video() -> PathBuf {
    generate(
        "audio-track-silent.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x64:rate=10:duration=2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    )
}

/// `/fr.m4a`, `/silent.mp4`, `/notes.txt`.
async fn serve_audio() -> String {
    let fr = std::fs::read(french_audio()).unwrap();
    let silent = std::fs::read(silent_video()).unwrap();
    let router = axum::Router::new()
        .route("/fr.m4a", get(move || async move { fr.clone() }))
        .route("/silent.mp4", get(move || async move { silent.clone() }))
        .route("/notes.txt", get(|| async { "not a sound\n" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn audio_tracks(asset: &Value) -> Vec<Value> {
    asset["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "audio")
        .cloned()
        .collect()
}

async fn get_bytes(app: &TestApp, url: &str) -> (u16, Vec<u8>) {
    let response = app.fetch(url).await;
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// The sound of a media file as 48 kHz mono samples.
fn pcm(path: &Path) -> Vec<f32> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a:0", "-f", "f32le", "-ac", "1", "-ar", "48000", "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The frequency of a tone, from its zero crossings.
fn tone_hz(samples: &[f32]) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 48_000.0)
}

/// An asset uploaded with a French audio track (queued once the upload is probed), then given a
/// text file and a silent video as audio tracks: the first is encoded as long as the video
/// (padded with silence), in sync with the video's segments and with its own sound; the other two
/// error on their own; the track deleted is gone everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_tracks_are_encoded_listed_played_in_sync_and_deleted() {
    let app = TestApp::spawn().await;
    let origin = serve_audio().await;
    let clip = h264_clip("audio-tracks.mp4", "320x180", 25, 8, &[]);
    let asset_id = app
        .upload_file(
            &clip,
            json!({"playback_policy": ["public"], "input": [{"type": "audio",
                "url": format!("{origin}/fr.m4a"), "language_code": "fr", "name": "Français",
                "passthrough": "fr-dub"}]}),
        )
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(asset["status"], "ready", "{asset:#}");
    let audio = audio_tracks(&asset);
    assert_eq!(
        audio.len(),
        2,
        "the asset's own sound and the French: {asset:#}"
    );
    assert_eq!(audio[0]["primary"], true);
    let fr = &audio[1];
    assert_eq!(fr["status"], "ready", "{fr}");
    assert_eq!(fr["primary"], false);
    assert_eq!(fr["language_code"], "fr");
    assert_eq!(fr["name"], "Français");
    assert_eq!(fr["passthrough"], "fr-dub");
    assert!(fr.get("text_type").is_none(), "{fr}");
    let fr_id = fr["id"].as_str().unwrap().to_owned();

    // Files that hold no sound, through the tracks API: each errors alone.
    let mut bad = Vec::new();
    for file in ["notes.txt", "silent.mp4"] {
        let (status, json) = app
            .api_json(
                Method::POST,
                &format!("/video/v1/assets/{asset_id}/tracks"),
                Some(json!({"url": format!("{origin}/{file}"), "type": "audio", "language_code": "de"})),
            )
            .await;
        assert_eq!(status, 201, "{json}");
        assert_eq!(json["data"]["type"], "audio");
        assert_eq!(json["data"]["status"], "preparing");
        bad.push(json["data"]["id"].as_str().unwrap().to_owned());
    }
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(
        asset["status"], "ready",
        "a bad track does not error its asset"
    );
    for (id, why) in bad.iter().zip(["not audio", "no audio stream"]) {
        let track = audio_tracks(&asset)
            .into_iter()
            .find(|t| t["id"] == id.as_str())
            .unwrap();
        assert_eq!(track["status"], "errored", "{track}");
        assert!(track["error"].as_str().unwrap().contains(why), "{track}");
    }

    // The master playlist: the variants' own sound stays the default; the French is an alternate.
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap().to_owned();
    let master = String::from_utf8(get_bytes(&app, &format!("/{pid}.m3u8")).await.1).unwrap();
    let media: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .collect();
    assert_eq!(media.len(), 2, "{master}");
    assert!(
        media[0].contains("DEFAULT=YES") && !media[0].contains("URI="),
        "{master}"
    );
    assert!(
        media[1].contains("NAME=\"Français\",LANGUAGE=\"fr\",DEFAULT=NO"),
        "{master}"
    );
    for line in master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
    {
        assert!(line.contains("AUDIO=\"audio\""), "{line}");
    }
    let parsed = m3u8_rs::parse_master_playlist_res(master.as_bytes()).unwrap();
    assert_eq!(parsed.alternatives.len(), 2, "{master}");

    // Its media playlist covers the whole 8 s video, in the video's 4 s segments.
    let fr_uri = uris(&master)
        .into_iter()
        .find(|u| u.contains(&format!("/audio/{fr_id}/")))
        .unwrap();
    let (status, playlist) = get_bytes(&app, &format!("/{fr_uri}")).await;
    assert_eq!(status, 200);
    let playlist = m3u8_rs::parse_media_playlist_res(&playlist).unwrap();
    assert!(playlist.end_list);
    let durations: Vec<f32> = playlist.segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations.len(), 2, "{durations:?}");
    assert!(
        (durations.iter().sum::<f32>() - 8.0).abs() < 0.1,
        "{durations:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let base = fr_uri.rsplit_once('/').unwrap().0;
    let mut joined = Vec::new();
    for segment in &playlist.segments {
        let (status, bytes) = get_bytes(&app, &format!("/{base}/{}", segment.uri)).await;
        assert_eq!(status, 200, "{}", segment.uri);
        joined.extend_from_slice(&bytes);
    }
    let fr_file = dir.path().join("fr.ts");
    std::fs::write(&fr_file, &joined).unwrap();
    let probed = crate::support::ffprobe(&fr_file);
    let streams = probed["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "sound only: {probed:#}");
    assert_eq!(streams[0]["codec_name"], "aac");
    assert_eq!(streams[0]["channels"], 2, "the track's own channels");
    assert_eq!(streams[0]["sample_rate"], "48000");
    let samples = pcm(&fr_file);
    let secs = samples.len() as f64 / 48_000.0;
    assert!((secs - 8.0).abs() < 0.1, "as long as the video: {secs} s");
    let hz = tone_hz(&samples[48_000..4 * 48_000]);
    assert!(
        (860.0..900.0).contains(&hz),
        "the French file's tone: {hz} Hz"
    );
    let tail = &samples[(5.2 * 48_000.0) as usize..];
    assert!(
        tail.iter().all(|s| s.abs() < 0.01),
        "silence past the file's 5 s"
    );

    // In sync: its first segment starts when the video's does.
    let variant = uris(&master)
        .into_iter()
        .find(|u| u.ends_with("/index.m3u8") && !u.contains("/audio/"))
        .unwrap();
    let (_, video_playlist) = get_bytes(&app, &format!("/{variant}")).await;
    let video_playlist = m3u8_rs::parse_media_playlist_res(&video_playlist).unwrap();
    let video_base = variant.rsplit_once('/').unwrap().0;
    let (_, first) = get_bytes(
        &app,
        &format!("/{video_base}/{}", video_playlist.segments[0].uri),
    )
    .await;
    let video_file = dir.path().join("video.ts");
    std::fs::write(&video_file, &first).unwrap();
    let start = |probed: &Value| {
        probed["format"]["start_time"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let video_start = start(&crate::support::ffprobe(&video_file));
    assert!(
        (start(&probed) - video_start).abs() < 0.05,
        "audio starts at {}, video at {video_start}",
        start(&probed)
    );
    let own = pcm(&video_file);
    let own_hz = tone_hz(&own[..48_000]);
    assert!(
        (430.0..450.0).contains(&own_hz),
        "the variant keeps its own sound: {own_hz} Hz"
    );

    // Track events, with the track as the object.
    let (_, events) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/events?type=video.asset.track.ready&object_id={asset_id}"),
            None,
        )
        .await;
    let ready = events["data"].as_array().unwrap();
    assert_eq!(ready.len(), 1, "{events:#}");
    assert_eq!(ready[0]["data"]["id"], fr_id.as_str());
    assert_eq!(ready[0]["data"]["type"], "audio");

    // Deleted: gone from the asset, the master playlist and the store.
    let response = app
        .api(
            Method::DELETE,
            &format!("/video/v1/assets/{asset_id}/tracks/{fr_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let asset = app.get_asset(&asset_id).await;
    assert!(audio_tracks(&asset)
        .iter()
        .all(|t| t["id"] != fr_id.as_str()));
    let master = String::from_utf8(get_bytes(&app, &format!("/{pid}.m3u8")).await.1).unwrap();
    assert!(
        !master.contains("TYPE=AUDIO") && !master.contains("AUDIO=\""),
        "{master}"
    );
    assert_eq!(get_bytes(&app, &format!("/{fr_uri}")).await.0, 404);
    assert!(app
        .stored(&format!("assets/{asset_id}/audio/{fr_id}/index.m3u8"))
        .await
        .is_none());
}

/// hls.js lists the audio tracks by name and language, switches to the added one and keeps
/// playing from its segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_switches_to_an_added_audio_track() {
    let app = TestApp::spawn().await;
    let origin = serve_audio().await;
    let clip = h264_clip("audio-tracks-play.mp4", "320x180", 25, 12, &[]);
    let asset_id = app
        .upload_file(
            &clip,
            json!({"playback_policy": ["public"], "input": [{"type": "audio",
                "url": format!("{origin}/fr.m4a"), "language_code": "fr", "name": "Français"}]}),
        )
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let master = format!("{}/{pid}.m3u8", app.base_url);
    let report = crate::browser::run_browser_script_with(
        &app,
        "audio_tracks.mjs",
        &[("OPENVOD_MASTER", std::ffi::OsStr::new(&master))],
    )
    .await;
    let play = &report["play"];
    assert!(
        play.get("fatal").is_none() && play.get("timed_out").is_none(),
        "{report:#}"
    );
    assert_eq!(
        play["tracks"],
        json!([{"name": "Default", "lang": ""}, {"name": "Français", "lang": "fr"}]),
        "{report:#}"
    );
    assert_eq!(play["switched_to"], 1, "{report:#}");
    assert!(
        play["alternate_fragments"].as_u64().unwrap() >= 1,
        "segments of the French track were loaded: {report:#}"
    );
    assert!(
        play["played_after_switch"].as_f64().unwrap() >= 1.0,
        "{report:#}"
    );
}
