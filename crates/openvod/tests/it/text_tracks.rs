//! Text tracks (Mux's subtitles): added at creation (`input[]` of `type: text`) or later
//! (`POST /video/v1/assets/{id}/tracks`), fetched and converted to WebVTT by a job, listed on the
//! asset, offered in the master playlist as an HLS subtitles group with segmented WebVTT, served
//! whole at `/{playback_id}/text/{track_id}.vtt`, deleted; hls.js shows them in Chromium.

use axum::routing::get;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{h264_clip, playlist_uris as uris, TestApp};

const SRT: &str = "1\r\n00:00:01,000 --> 00:00:02,500\r\n<font color=\"#ff0\">Hello</font> <i>there</i>\r\n\r\n2\r\n00:00:05,000 --> 00:00:07,000\r\nSecond cue\r\nTwo lines\r\n";
const VTT_FR: &str = "WEBVTT\n\nNOTE from the test\n\n00:00.500 --> 00:03.000 line:10%\nBonjour\n\n00:11.000 --> 00:12.000\nFin\n";

/// `/subs.srt`, `/subs.vtt`, `/notes.txt` (not subtitles); anything else 404.
async fn serve_subtitles() -> String {
    let router = axum::Router::new()
        .route("/subs.srt", get(|| async { SRT }))
        .route("/subs.vtt", get(|| async { VTT_FR }))
        .route(
            "/notes.txt",
            get(|| async { "just some notes\nno times here\n" }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn text_tracks(asset: &Value) -> Vec<Value> {
    asset["tracks"]
        .as_array()
        .map(|tracks| {
            tracks
                .iter()
                .filter(|t| t["type"] == "text")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

async fn get_text(app: &TestApp, url: &str) -> (u16, String) {
    let response = app.fetch(url).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// An asset uploaded with an English SRT track, then given a French WebVTT one and a file that
/// is not subtitles: the first two are served (master playlist, media playlist, segments, whole
/// file), the third errors on its own; a track deleted is gone everywhere.
#[tokio::test]
async fn text_tracks_are_fetched_converted_listed_played_and_deleted() {
    let app = TestApp::spawn().await;
    let origin = serve_subtitles().await;
    let clip = h264_clip("text-tracks.mp4", "320x180", 25, 14, &[]);
    let asset_id = app
        .upload_file(
            &clip,
            json!({"playback_policy": ["public"], "input": [{"type": "text", "text_type": "subtitles",
                "url": format!("{origin}/subs.srt"), "language_code": "en", "name": "English",
                "closed_captions": true, "passthrough": "en-track"}]}),
        )
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    let tracks = text_tracks(&asset);
    assert_eq!(tracks.len(), 1, "{asset:#}");
    let en = &tracks[0];
    assert_eq!(en["status"], "ready", "{en}");
    assert_eq!(en["text_type"], "subtitles");
    assert_eq!(en["text_source"], "uploaded");
    assert_eq!(en["language_code"], "en");
    assert_eq!(en["name"], "English");
    assert_eq!(en["closed_captions"], true);
    assert_eq!(en["passthrough"], "en-track");
    let en_id = en["id"].as_str().unwrap().to_owned();

    // A second track through the tracks API, and a file that is not subtitles.
    let (status, json) = app
        .api_json(
            Method::POST,
            &format!("/video/v1/assets/{asset_id}/tracks"),
            Some(json!({"url": format!("{origin}/subs.vtt"), "type": "text", "text_type": "subtitles",
                "language_code": "fr", "name": "Français"})),
        )
        .await;
    assert_eq!(status, 201, "{json}");
    assert_eq!(json["data"]["status"], "preparing");
    let fr_id = json["data"]["id"].as_str().unwrap().to_owned();
    let (status, json) = app
        .api_json(
            Method::POST,
            &format!("/video/v1/assets/{asset_id}/tracks"),
            Some(json!({"url": format!("{origin}/notes.txt"), "type": "text", "language_code": "de"})),
        )
        .await;
    assert_eq!(status, 201, "{json}");
    let bad_id = json["data"]["id"].as_str().unwrap().to_owned();
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(
        asset["status"], "ready",
        "a bad track does not error its asset"
    );
    let by_id = |id: &str| {
        text_tracks(&asset)
            .into_iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("track {id} listed: {asset:#}"))
    };
    assert_eq!(by_id(&fr_id)["status"], "ready");
    assert_eq!(by_id(&fr_id)["name"], "Français");
    let bad = by_id(&bad_id);
    assert_eq!(bad["status"], "errored", "{bad}");
    assert_eq!(bad["name"], "de", "the name defaults to the language code");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("neither WebVTT nor SRT"),
        "{bad}"
    );

    // The whole file, as WebVTT (the SRT converted).
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap().to_owned();
    let (status, vtt) = get_text(&app, &format!("/{pid}/text/{en_id}.vtt")).await;
    assert_eq!(status, 200, "{vtt}");
    assert_eq!(
        vtt,
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello <i>there</i>\n\n00:00:05.000 --> 00:00:07.000\nSecond cue\nTwo lines\n\n"
    );
    let (status, _) = get_text(&app, &format!("/{pid}/text/{bad_id}.vtt")).await;
    assert_eq!(status, 404, "an errored track has no file");

    // The master playlist offers the two ready tracks as one subtitles group.
    let (status, master) = get_text(&app, &format!("/{pid}.m3u8")).await;
    assert_eq!(status, 200, "{master}");
    let media: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES"))
        .collect();
    assert_eq!(media.len(), 2, "{master}");
    assert!(
        media[0].contains("NAME=\"English\",LANGUAGE=\"en\""),
        "{master}"
    );
    assert!(
        media[0].contains("CHARACTERISTICS=\"public.accessibility.transcribes-spoken-dialog"),
        "closed captions are marked: {master}"
    );
    assert!(
        media[1].contains("NAME=\"Français\",LANGUAGE=\"fr\""),
        "{master}"
    );
    assert!(!media[1].contains("CHARACTERISTICS"), "{master}");
    for line in master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
    {
        assert!(line.contains("SUBTITLES=\"subs\""), "{line}");
    }
    let master_parsed = m3u8_rs::parse_master_playlist_res(master.as_bytes()).unwrap();
    assert_eq!(master_parsed.alternatives.len(), 2);

    // The French media playlist: 10 s WebVTT segments over the whole 14 s video.
    let fr_uri = uris(&master)
        .into_iter()
        .find(|u| u.ends_with(&format!("/text/{fr_id}.m3u8")))
        .unwrap();
    let (status, playlist) = get_text(&app, &format!("/{fr_uri}")).await;
    assert_eq!(status, 200, "{playlist}");
    let parsed = m3u8_rs::parse_media_playlist_res(playlist.as_bytes()).unwrap();
    assert!(parsed.end_list);
    let durations: Vec<f32> = parsed.segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations.len(), 2, "{playlist}");
    assert!(
        (durations.iter().sum::<f32>() - 14.0).abs() < 0.1,
        "{playlist}"
    );
    let dir = fr_uri.rsplit_once('/').unwrap().0;
    let (status, seg0) = get_text(&app, &format!("/{dir}/{}", parsed.segments[0].uri)).await;
    assert_eq!(status, 200);
    assert!(
        seg0.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n"),
        "{seg0}"
    );
    assert!(
        seg0.contains("00:00:00.500 --> 00:00:03.000 line:10%\nBonjour"),
        "{seg0}"
    );
    assert!(!seg0.contains("Fin"), "{seg0}");
    let (_, seg1) = get_text(&app, &format!("/{dir}/{}", parsed.segments[1].uri)).await;
    assert!(seg1.contains("Fin") && !seg1.contains("Bonjour"), "{seg1}");
    let (status, _) = get_text(&app, &format!("/{dir}/{fr_id}-2.vtt")).await;
    assert_eq!(status, 404, "past the last segment");
    let (status, _) = get_text(&app, &format!("/{dir}/{bad_id}.m3u8")).await;
    assert_eq!(status, 404, "an errored track has no playlist");

    // Track events, with the track as the object.
    let (_, events) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/events?type=video.asset.track.ready&object_id={asset_id}"),
            None,
        )
        .await;
    let ready: Vec<&Value> = events["data"].as_array().unwrap().iter().collect();
    assert_eq!(ready.len(), 2, "{events:#}");
    for event in &ready {
        assert_eq!(event["object"]["type"], "track", "{event}");
        assert_eq!(event["data"]["asset_id"], asset_id.as_str(), "{event}");
        assert_eq!(event["object"]["id"], event["data"]["id"], "{event}");
    }
    let (_, errored) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/events?type=video.asset.track.errored&object_id={asset_id}"),
            None,
        )
        .await;
    assert_eq!(
        errored["data"][0]["data"]["id"],
        bad_id.as_str(),
        "{errored}"
    );

    // Deleted: gone from the asset, the master playlist and the file route.
    let response = app
        .api(
            Method::DELETE,
            &format!("/video/v1/assets/{asset_id}/tracks/{en_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let asset = app.get_asset(&asset_id).await;
    assert!(text_tracks(&asset)
        .iter()
        .all(|t| t["id"] != en_id.as_str()));
    let (_, master) = get_text(&app, &format!("/{pid}.m3u8")).await;
    assert_eq!(master.matches("TYPE=SUBTITLES").count(), 1, "{master}");
    let (status, _) = get_text(&app, &format!("/{pid}/text/{en_id}.vtt")).await;
    assert_eq!(status, 404);
    assert!(app
        .stored(&format!("assets/{asset_id}/text/{en_id}.vtt"))
        .await
        .is_none());
    let (status, json) = app
        .api_json(
            Method::DELETE,
            &format!("/video/v1/assets/{asset_id}/tracks/{en_id}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "{json}");
    assert!(json["error"]["messages"][0]
        .as_str()
        .unwrap()
        .contains(&en_id));
}

/// Bad track requests are refused naming the field, and nothing is added.
#[tokio::test]
async fn bad_track_requests_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let clip = h264_clip("text-tracks-bad.mp4", "160x90", 25, 2, &[]);
    let asset_id = app
        .upload_file(&clip, json!({"playback_policy": ["public"]}))
        .await;
    let url = "http://127.0.0.1:9/subs.vtt";
    let cases = [
        (json!({"url": url, "type": "text"}), "language_code"),
        (json!({"type": "text", "language_code": "en"}), "url"),
        (json!({"type": "audio", "language_code": "en"}), "url"),
        (
            json!({"url": url, "type": "audio", "language_code": "en", "closed_captions": true}),
            "closed_captions",
        ),
        (json!({"url": url, "type": "audio"}), "language_code"),
        (
            json!({"url": url, "type": "video", "language_code": "en"}),
            "type",
        ),
        (
            json!({"url": url, "type": "text", "text_type": "captions", "language_code": "en"}),
            "text_type",
        ),
        (
            json!({"url": url, "type": "text", "language_code": "not a tag"}),
            "language_code",
        ),
        (
            json!({"url": url, "type": "text", "language_code": "en", "name": "a\"b"}),
            "name",
        ),
        (
            json!({"url": url, "type": "text", "language_code": "en", "generated_subtitles": [{"x": 1}]}),
            "generated_subtitles",
        ),
    ];
    for (body, named) in cases {
        let (status, json) = app
            .api_json(
                Method::POST,
                &format!("/video/v1/assets/{asset_id}/tracks"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}: {json}");
        let message = json["error"]["messages"][0].as_str().unwrap();
        assert!(message.contains(named), "{body}: {message}");
    }
    let (status, json) = app
        .api_json(
            Method::POST,
            "/video/v1/assets/nosuchasset/tracks",
            Some(json!({"url": url, "type": "text", "language_code": "en"})),
        )
        .await;
    assert_eq!(status, 404, "{json}");
    // Tracks at creation are checked the same way, before the upload exists.
    let (status, json) = app
        .api_json(
            Method::POST,
            "/video/v1/uploads",
            Some(json!({"new_asset_settings": {"input": [{"type": "text", "url": url}]}})),
        )
        .await;
    assert_eq!(status, 400, "{json}");
    assert!(json["error"]["messages"][0]
        .as_str()
        .unwrap()
        .contains("new_asset_settings.input[0].language_code"));
    assert!(text_tracks(&app.get_asset(&asset_id).await).is_empty());
}

/// hls.js lists the subtitle tracks by name and language and shows the cue due at the playhead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_lists_and_shows_subtitles() {
    let app = TestApp::spawn().await;
    let origin = serve_subtitles().await;
    let clip = h264_clip("text-tracks-play.mp4", "320x180", 25, 14, &[]);
    let asset_id = app
        .upload_file(
            &clip,
            json!({"playback_policy": ["public"], "input": [
                {"type": "text", "url": format!("{origin}/subs.srt"), "language_code": "en", "name": "English"},
                {"type": "text", "url": format!("{origin}/subs.vtt"), "language_code": "fr", "name": "Français"}]}),
        )
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let master = format!("{}/{pid}.m3u8", app.base_url);
    let report = crate::browser::run_browser_script_with(
        &app,
        "subtitles.mjs",
        &[
            ("OPENVOD_MASTER", std::ffi::OsStr::new(&master)),
            ("OPENVOD_CUE_AT", std::ffi::OsStr::new("5.5")),
        ],
    )
    .await;
    let play = &report["play"];
    assert!(
        play.get("fatal").is_none() && play.get("timed_out").is_none(),
        "{report:#}"
    );
    assert_eq!(
        play["tracks"],
        json!([{"name": "English", "lang": "en"}, {"name": "Français", "lang": "fr"}]),
        "{report:#}"
    );
    assert_eq!(
        play["active"],
        json!(["Second cue\nTwo lines"]),
        "{report:#}"
    );
    assert_eq!(play["language"], "en", "{report:#}");
}
