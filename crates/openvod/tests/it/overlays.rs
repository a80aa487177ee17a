//! Watermarks (Mux's `overlay_settings` input): the image is burned into every rendition at the
//! position, size and opacity asked; bad settings are refused by name.

use reqwest::Method;
use serde_json::json;

use crate::support::{generate, TestApp};

/// `/mark.png` (a 40×40 pure red square) and `/not-a-picture.png` (text).
async fn serve_images() -> String {
    let png = std::fs::read(generate(
        "red-mark.png",
        &["-f", "lavfi", "-i", "color=c=red:s=40x40", "-frames:v", "1"],
    ))
    .unwrap();
    let router = axum::Router::new()
        .route(
            "/mark.png",
            axum::routing::get(move || async move { png.clone() }),
        )
        .route(
            "/not-a-picture.png",
            axum::routing::get(|| async { "hello" }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// The first frame of the first (highest) rendition of `pid`, as RGB24, with its size.
async fn first_frame(app: &TestApp, pid: &str) -> (u32, u32, Vec<u8>) {
    let master = app
        .fetch(&format!("/{pid}.m3u8"))
        .await
        .text()
        .await
        .unwrap();
    let variant = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap()
        .to_owned();
    let playlist = app
        .fetch(&format!("/{variant}"))
        .await
        .text()
        .await
        .unwrap();
    let segment = playlist
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    let dir = variant.rsplit_once('/').unwrap().0;
    let bytes = app
        .fetch(&format!("/{dir}/{segment}"))
        .await
        .bytes()
        .await
        .unwrap();
    let path = std::env::temp_dir().join(format!("openvod-overlay-{}.ts", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let probed = crate::support::ffprobe(&path);
    let video = probed["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap()
        .clone();
    let (w, h) = (
        video["width"].as_u64().unwrap() as u32,
        video["height"].as_u64().unwrap() as u32,
    );
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), (w * h * 3) as usize);
    (w, h, out.stdout)
}

#[tokio::test]
async fn the_watermark_is_burned_in_where_asked() {
    let app = TestApp::spawn().await;
    let origin = serve_images().await;
    let black = generate(
        "black-320x180.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=320x180:r=25:d=4",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    );
    // Bottom right, 10 % in from each edge, a quarter of the width, half transparent.
    let asset_id = app
        .upload_file(
            &black,
            json!({"playback_policy": ["public"], "input": [{"url": format!("{origin}/mark.png"),
                "overlay_settings": {"vertical_align": "bottom", "vertical_margin": "10%",
                    "horizontal_align": "right", "horizontal_margin": "10%", "width": "25%",
                    "opacity": "50%"}}]}),
        )
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(asset["status"], "ready", "{asset:#}");
    let pid = asset["playback_ids"][0]["id"].as_str().unwrap();
    let (w, h, rgb) = first_frame(&app, pid).await;
    // On the source's 320×180: the mark is 80×80 at x 208..288, y 82..162.
    let pixel = |x: u32, y: u32| {
        let (x, y) = (x * w / 320, y * h / 180);
        let at = ((y * w + x) * 3) as usize;
        (rgb[at], rgb[at + 1], rgb[at + 2])
    };
    let (r, g, b) = pixel(248, 122);
    assert!(
        (100..=160).contains(&r) && g < 40 && b < 40,
        "half-transparent red at the mark's centre, got {:?}",
        (r, g, b)
    );
    for (x, y) in [(40, 40), (160, 90), (300, 122), (248, 30), (248, 172)] {
        let (r, g, b) = pixel(x, y);
        assert!(
            r < 40 && g < 40 && b < 40,
            "black at ({x}, {y}): {:?}",
            (r, g, b)
        );
    }
}

#[tokio::test]
async fn bad_overlays_are_refused() {
    let app = TestApp::spawn().await;
    let origin = serve_images().await;
    let mark = format!("{origin}/mark.png");
    for (overlay, named) in [
        (
            json!({"url": mark, "overlay_settings": {"width": "wide"}}),
            "overlay_settings.width",
        ),
        (
            json!({"url": mark, "overlay_settings": {"opacity": "20px"}}),
            "overlay_settings.opacity",
        ),
        (
            json!({"url": mark, "overlay_settings": {"vertical_align": "up"}}),
            "overlay_settings.vertical_align",
        ),
        (
            json!({"url": mark, "overlay_settings": {"rotation": 90}}),
            "rotation",
        ),
        (json!({"overlay_settings": {}}), "url"),
    ] {
        let (status, json) = app
            .api_json(
                Method::POST,
                "/video/v1/uploads",
                Some(json!({"new_asset_settings": {"input": [overlay.clone()]}})),
            )
            .await;
        assert_eq!(status, 400, "{overlay}: {json}");
        let message = json["error"]["messages"][0].as_str().unwrap();
        assert!(message.contains(named), "{overlay}: {message}");
    }
    // An image that is not a picture errors the asset, naming the watermark.
    let black = generate(
        "black-160x90.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=160x90:r=25:d=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let asset_id = app
        .upload_file(
            &black,
            json!({"input": [{"url": format!("{origin}/not-a-picture.png"), "overlay_settings": {}}]}),
        )
        .await;
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(&asset_id).await;
    assert_eq!(asset["status"], "errored", "{asset:#}");
    assert_eq!(asset["errors"]["type"], "invalid_input");
    assert!(
        asset["errors"]["messages"][0]
            .as_str()
            .unwrap()
            .contains("overlay_settings image"),
        "{asset:#}"
    );
}
