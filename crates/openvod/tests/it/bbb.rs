//! `openvod bbb render` on synthetic recordings (tests/py/bbb_recording.py), checked on the output
//! itself: decoded frames at chosen times, the audio, the streams and the duration.

use std::path::{Path, PathBuf};

use serde_json::Value;

pub const RECORD_ID: &str = "183f0bf3a0982a127bdb8161e0c44eb696b3e75c-1531240585189";

fn python() -> String {
    std::env::var("OPENVOD_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Writes a synthetic recording under `dir` and returns its folder and expect.json.
pub fn make_recording(dir: &Path, args: &[&str]) -> (PathBuf, Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/py/bbb_recording.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg("--out")
        .arg(dir)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expect: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
    (dir.join(RECORD_ID), expect)
}

fn openvod() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"));
    command
        .env_remove("OPENVOD_CONFIG")
        .env("OPENVOD_OUTBOUND__ALLOW_PRIVATE_ADDRESSES", "true")
        .kill_on_drop(true);
    command
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn render(args: &[&str]) -> Run {
    let out = openvod()
        .args(["bbb", "render"])
        .args(args)
        .output()
        .await
        .expect("openvod runs");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

struct Frame {
    width: usize,
    rgb: Vec<u8>,
}

impl Frame {
    /// The picture shown at `t` (the output is variable-frame-rate: the last frame starting at
    /// or before `t`, which is what `fps` repeats).
    fn at(video: &Path, t: f64) -> Frame {
        let out = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(video)
            .args(["-vf", "fps=25", "-ss", &format!("{t:.3}")])
            .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "no frame at {t}"
        );
        let width = 1280;
        assert_eq!(out.stdout.len(), width * 720 * 3);
        Frame {
            width,
            rgb: out.stdout,
        }
    }

    fn px(&self, x: f64, y: f64) -> [u8; 3] {
        let i = (y.round() as usize * self.width + x.round() as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// How many of a 3x3 grid of points spread over the square of half-size `r` around (x, y)
    /// match `want`.
    fn matches(&self, x: f64, y: f64, r: f64, want: impl Fn([u8; 3]) -> bool) -> usize {
        let mut n = 0;
        for dy in [-r, 0.0, r] {
            for dx in [-r, 0.0, r] {
                if want(self.px(x + dx, y + dy)) {
                    n += 1;
                }
            }
        }
        n
    }

    fn count(&self, x0: f64, y0: f64, x1: f64, y1: f64, want: impl Fn([u8; 3]) -> bool) -> usize {
        let mut n = 0;
        for y in (y0 as usize)..(y1 as usize) {
            for x in (x0 as usize)..(x1 as usize) {
                if want(self.px(x as f64, y as f64)) {
                    n += 1;
                }
            }
        }
        n
    }
}

fn near(want: [u8; 3]) -> impl Fn([u8; 3]) -> bool {
    move |got| (0..3).all(|i| (i32::from(got[i]) - i32::from(want[i])).abs() <= 40)
}

fn rgb(v: &Value) -> [u8; 3] {
    let a = v.as_array().unwrap();
    [0, 1, 2].map(|i| a[i].as_u64().unwrap() as u8)
}

fn is_red(c: [u8; 3]) -> bool {
    c[0] > 190 && c[1] < 90 && c[2] < 90
}

fn is_yellow(c: [u8; 3]) -> bool {
    c[0] > 190 && c[1] > 190 && c[2] < 90
}

fn is_dark(c: [u8; 3]) -> bool {
    c.iter().all(|v| *v < 90)
}

/// The slide area of a 1280x720 output and where a 1600x900 slide's point lands in it.
struct Geometry {
    area_w: f64,
    area_h: f64,
}

impl Geometry {
    fn point(&self, view: [f64; 4], x: f64, y: f64) -> (f64, f64) {
        let s = (self.area_w / view[2]).min(self.area_h / view[3]);
        let ox = (self.area_w - view[2] * s) / 2.0 - view[0] * s;
        let oy = (self.area_h - view[3] * s) / 2.0 - view[1] * s;
        (ox + x * s, oy + y * s)
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// RMS of 16-bit mono audio per second.
fn audio_rms_per_second(path: &Path) -> Vec<f64> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a:0", "-ac", "1", "-ar", "8000", "-f", "s16le", "-",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let samples: Vec<f64> = out
        .stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
        .collect();
    samples
        .chunks(8000)
        .filter(|c| c.len() > 4000)
        .map(|c| (c.iter().map(|s| s * s).sum::<f64>() / c.len() as f64).sqrt())
        .collect()
}

fn stream_of<'a>(probe: &'a Value, kind: &str) -> Option<&'a Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_slides_zoom_annotations_cursor_screenshare_webcams_chat_and_captions() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, expect) = make_recording(
        &dir.path().join("src"),
        &[
            "--duration",
            "24",
            "--slides",
            "3",
            "--repeat-first",
            "--annotations",
            "6",
            "--cursor-every",
            "1",
            "--deskshare",
            "6.5:7.5,13:15",
            "--chat",
            "3",
            "--captions",
            "--zoom",
            "10:12",
        ],
    );
    let out = dir.path().join("lecture.mp4");
    let run = render(&[p(&rec), "-o", p(&out)]).await;
    assert!(run.ok, "render failed: {}", run.stderr);
    let line: Value = serde_json::from_str(run.stdout.trim()).expect("one JSON line");
    assert_eq!(line["output"], p(&out));
    assert_eq!(line["duration_s"], 24.0);
    assert_eq!(
        (line["width"].as_u64(), line["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert!(f(&line["render_s"]) > 0.0 && f(&line["speed_x"]) > 0.0);

    let probe = crate::support::ffprobe(&out);
    let video = stream_of(&probe, "video").expect("video");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(stream_of(&probe, "audio").unwrap()["codec_name"], "aac");
    assert_eq!(
        stream_of(&probe, "subtitle").expect("captions track")["codec_name"],
        "mov_text"
    );
    let video_duration: f64 = video["duration"].as_str().unwrap().parse().unwrap();
    assert!(
        (video_duration - 24.0).abs() <= 1.0 / 15.0 + 0.01,
        "{video_duration}"
    );
    let vtt = dir.path().join("lecture.en-US.vtt");
    assert_eq!(
        std::fs::read(&vtt).unwrap(),
        std::fs::read(rec.join("caption_en-US.vtt")).unwrap()
    );

    // Webcams and chat take a right-hand column: the slide area is 960x720.
    let g = Geometry {
        area_w: 960.0,
        area_h: 720.0,
    };
    let full = [0.0, 0.0, 1600.0, 900.0];
    let quadrant_centres = [
        (400.0, 225.0),
        (1200.0, 225.0),
        (400.0, 675.0),
        (1200.0, 675.0),
    ];
    let slides = expect["slides"].as_array().unwrap();

    // Each slide shows at its time, slide 1 twice (two `in` values).
    for (index, t) in [(0, 3.0), (1, 9.0), (2, 16.5), (0, 22.5)] {
        let frame = Frame::at(&out, t);
        let quadrants = slides[index]["quadrants"].as_array().unwrap();
        for (q, (x, y)) in quadrant_centres.iter().enumerate() {
            let (px, py) = g.point(full, *x, *y);
            let hits = frame.matches(px, py, 60.0, near(rgb(&quadrants[q])));
            assert!(hits >= 7, "slide {index} quadrant {q} at {t}s: {hits}/9");
        }
    }

    // The zoom into slide 2's bottom-right quadrant fills the area with that quadrant.
    let zoomed = Frame::at(&out, 11.0);
    let br = rgb(&slides[1]["quadrants"][3]);
    for (x, y) in [(200.0, 200.0), (480.0, 360.0), (760.0, 520.0)] {
        assert_eq!(zoomed.matches(x, y, 40.0, near(br)), 9, "zoom at ({x},{y})");
    }

    // Screenshare replaces the slide area during its periods only.
    for (t, shown) in [
        (7.0, true),
        (14.0, true),
        (8.5, false),
        (12.5, false),
        (5.0, false),
    ] {
        let frame = Frame::at(&out, t);
        let hits = frame.matches(480.0, 360.0, 100.0, is_yellow);
        assert_eq!(hits == 9, shown, "screenshare at {t}s: {hits}/9");
    }

    // Annotations: visible from their timestamp, hidden at undo or when a newer version replaces them.
    let annotations = expect["annotations"].as_array().unwrap();
    let undone = annotations
        .iter()
        .find(|a| f(&a["undo"]) > 0.0)
        .expect("an annotation with undo");
    let updated = annotations
        .iter()
        .find(|a| !a["superseded_at"].is_null())
        .expect("an annotation with a newer version");
    let newer = annotations
        .iter()
        .find(|a| a["shape"] == updated["shape"] && a["superseded_at"].is_null())
        .unwrap();
    let magenta = near([255, 0, 255]);
    let centre = |a: &Value| {
        let r = a["rect"].as_array().unwrap();
        g.point(full, f(&r[0]) + f(&r[2]) / 2.0, f(&r[1]) + f(&r[3]) / 2.0)
    };
    let (ux, uy) = centre(undone);
    let (start, undo) = (f(&undone["start"]), f(&undone["undo"]));
    assert!(Frame::at(&out, start + 0.5).matches(ux, uy, 20.0, &magenta) >= 8);
    assert!(Frame::at(&out, start - 0.5).matches(ux, uy, 20.0, &magenta) == 0);
    assert!(Frame::at(&out, undo + 0.3).matches(ux, uy, 20.0, &magenta) == 0);
    let (ax, ay) = centre(updated);
    let (bx, by) = centre(newer);
    let (first, second) = (f(&updated["start"]), f(&newer["start"]));
    let before = Frame::at(&out, first + 0.5);
    assert!(before.matches(ax, ay, 20.0, &magenta) >= 8);
    assert_eq!(before.matches(bx, by, 20.0, &magenta), 0);
    let after = Frame::at(&out, second + 0.5);
    assert_eq!(
        after.matches(ax, ay, 20.0, &magenta),
        0,
        "only the latest version shows"
    );
    assert!(after.matches(bx, by, 20.0, &magenta) >= 8);

    // The text tool's annotation (XHTML in foreignObject) is drawn as text on slide 1.
    let text = Frame::at(&out, 1.0);
    let (x0, y0) = g.point(full, 80.0, 45.0);
    let (x1, y1) = g.point(full, 880.0, 225.0);
    assert!(
        text.count(x0, y0, x1, y1, is_dark) > 200,
        "text annotation drawn"
    );

    // The cursor: the last event at or before t, in the view's coordinates; hidden by -1 -1.
    let cursor = expect["cursor"].as_array().unwrap();
    let event = cursor.iter().find(|c| f(&c[0]) == 2.0).unwrap();
    let (cx, cy) = g.point(full, f(&event[1]) * 1600.0, f(&event[2]) * 900.0);
    let frame = Frame::at(&out, 2.5);
    assert!(
        frame.matches(cx, cy, 2.0, is_red) >= 8,
        "cursor at ({cx},{cy})"
    );
    assert!(
        frame.count(0.0, 0.0, 960.0, 720.0, is_red) < 400,
        "one small cursor dot"
    );
    let hidden = Frame::at(&out, 23.0);
    assert_eq!(
        hidden.count(0.0, 0.0, 960.0, 720.0, is_red),
        0,
        "cursor hidden"
    );

    // Chat lines appear in the side panel at their time.
    let first_chat = f(&expect["chat"][0]["at"]);
    let chat_dark = |t: f64| Frame::at(&out, t).count(962.0, 250.0, 1278.0, 718.0, is_dark);
    assert_eq!(chat_dark(first_chat - 0.7), 0);
    assert!(chat_dark(first_chat + 0.5) > 100);

    // Audio across the whole duration.
    let rms = audio_rms_per_second(&out);
    assert!(rms.len() >= 23, "{} seconds of audio", rms.len());
    assert!(rms.iter().all(|r| *r > 1000.0), "silent second in {rms:?}");
}

/// Serves `root/RECORD_ID/...` at BBB's paths (`/presentation/RECORD_ID/FILE`), answering 404 for
/// the files in `missing`; returns the base URL.
pub async fn serve_recordings(root: PathBuf, missing: Vec<String>) -> String {
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let root = std::sync::Arc::new(root);
    let missing = std::sync::Arc::new(missing);
    let app = axum::Router::new().fallback(move |request: Request| {
        let root = root.clone();
        let missing = missing.clone();
        async move {
            let path = request.uri().path().to_owned();
            let Some(rest) = path.strip_prefix("/presentation/") else {
                return StatusCode::NOT_FOUND.into_response();
            };
            if rest.split('/').any(|s| s == ".." || s.is_empty())
                || missing.iter().any(|m| rest.ends_with(m.as_str()))
            {
                return StatusCode::NOT_FOUND.into_response();
            }
            match tokio::fs::read(root.join(rest)).await {
                Ok(bytes) => bytes.into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_webm_from_a_playback_url_with_tldraw_and_keeps_the_assets() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (_, expect) = make_recording(
        &src,
        &[
            "--duration",
            "10",
            "--slides",
            "2",
            "--annotations",
            "2",
            "--media",
            "audio",
            "--tldraw",
            "--captions",
        ],
    );
    let base = serve_recordings(src.clone(), vec![]).await;
    let out = dir.path().join("talk.webm");
    let keep = dir.path().join("backup");
    let url = format!("{base}/playback/presentation/2.3/{RECORD_ID}");
    let run = render(&[&url, "-o", p(&out), "--keep-assets", p(&keep)]).await;
    assert!(run.ok, "render failed: {}", run.stderr);
    // One warning for the one tldraw shape type that is not drawn.
    assert_eq!(
        run.stderr.matches("tldraw shape type \"video\"").count(),
        1,
        "{}",
        run.stderr
    );

    let probe = crate::support::ffprobe(&out);
    assert_eq!(stream_of(&probe, "video").unwrap()["codec_name"], "vp9");
    assert_eq!(stream_of(&probe, "audio").unwrap()["codec_name"], "opus");
    assert_eq!(
        stream_of(&probe, "subtitle").unwrap()["codec_name"],
        "webvtt"
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 10.0).abs() < 0.25, "{duration}");
    let rms = audio_rms_per_second(&out);
    assert!(rms.len() >= 9 && rms.iter().all(|r| *r > 1000.0), "{rms:?}");

    // The backup holds everything the recording references.
    for file in [
        "metadata.xml",
        "shapes.svg",
        "panzooms.xml",
        "cursor.xml",
        "tldraw.json",
        "captions.json",
        "caption_en-US.vtt",
        "audio/audio.webm",
        "presentation/d2d9a672040fbde2a47a10bf6c37b6a4b5ae187f-1530718721134/slide-1.png",
        "presentation/d2d9a672040fbde2a47a10bf6c37b6a4b5ae187f-1530718721134/slide-2.png",
    ] {
        let kept = keep.join(file);
        assert!(kept.is_file(), "{file} kept");
        assert_eq!(
            std::fs::read(&kept).unwrap(),
            std::fs::read(src.join(RECORD_ID).join(file)).unwrap()
        );
    }
    let leftovers: Vec<_> = walk(&keep)
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // No webcams and no chat: the slide fills 1280x720. The tldraw rectangle shows from its time.
    let g = Geometry {
        area_w: 1280.0,
        area_h: 720.0,
    };
    let shape = &expect["annotations"][0];
    let r = shape["rect"].as_array().unwrap();
    let (x, y) = g.point(
        [0.0, 0.0, 1600.0, 900.0],
        f(&r[0]) + f(&r[2]) / 2.0,
        f(&r[1]) + f(&r[3]) / 2.0,
    );
    let violet = near([0xae, 0x3e, 0xc9]);
    let start = f(&shape["start"]);
    assert!(Frame::at(&out, start + 0.5).matches(x, y, 20.0, &violet) >= 8);
    assert_eq!(Frame::at(&out, start - 0.5).matches(x, y, 20.0, &violet), 0);

    // The 2.0 player URL names the same recording.
    let mp4 = dir.path().join("talk.mp4");
    let url = format!("{base}/playback/presentation/2.0/playback.html?meetingId={RECORD_ID}");
    let run = render(&[
        &url,
        "-o",
        p(&mp4),
        "--no-cursor",
        "--width",
        "640",
        "--height",
        "360",
    ])
    .await;
    assert!(run.ok, "{}", run.stderr);
    let probe = crate::support::ffprobe(&mp4);
    assert_eq!(stream_of(&probe, "video").unwrap()["width"], 640);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_recordings_fail_with_a_message_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, _) = make_recording(
        &dir.path().join("src"),
        &[
            "--duration",
            "3",
            "--slides",
            "1",
            "--annotations",
            "1",
            "--media",
            "audio",
        ],
    );
    let copy = |name: &str| -> PathBuf {
        let target = dir.path().join(name).join(RECORD_ID);
        std::fs::create_dir_all(&target).unwrap();
        for file in walk(&rec) {
            let rel = file.strip_prefix(&rec).unwrap();
            std::fs::create_dir_all(target.join(rel).parent().unwrap()).unwrap();
            std::fs::copy(&file, target.join(rel)).unwrap();
        }
        target
    };
    let out = dir.path().join("out.mp4");
    let fails = |run: &Run, needle: &str| {
        assert!(!run.ok, "should fail: {}", run.stdout);
        assert!(
            run.stdout.is_empty(),
            "no JSON line on failure: {}",
            run.stdout
        );
        assert!(
            run.stderr.contains(needle),
            "stderr should name {needle:?}: {}",
            run.stderr
        );
    };

    let no_shapes = copy("no-shapes");
    std::fs::remove_file(no_shapes.join("shapes.svg")).unwrap();
    fails(&render(&[p(&no_shapes), "-o", p(&out)]).await, "shapes.svg");

    let no_audio = copy("no-audio");
    std::fs::remove_dir_all(no_audio.join("audio")).unwrap();
    fails(&render(&[p(&no_audio), "-o", p(&out)]).await, "audio");

    let traversal = copy("traversal");
    let shapes = std::fs::read_to_string(traversal.join("shapes.svg")).unwrap();
    let evil = shapes.replacen(
        "presentation/d2d9a672040fbde2a47a10bf6c37b6a4b5ae187f-1530718721134/slide-1.png",
        "../../../outside.png",
        1,
    );
    std::fs::write(traversal.join("shapes.svg"), evil).unwrap();
    fails(
        &render(&[p(&traversal), "-o", p(&out)]).await,
        "not a file inside the recording",
    );

    let bomb = copy("bomb");
    std::fs::write(
        bomb.join("metadata.xml"),
        r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><recording>&c;</recording>"#,
    )
    .unwrap();
    fails(&render(&[p(&bomb), "-o", p(&out)]).await, "metadata.xml");

    fails(
        &render(&["ftp://bbb.example/presentation/x/", "-o", p(&out)]).await,
        "http",
    );
    fails(
        &render(&[p(&rec), "-o", p(&dir.path().join("out.avi"))]).await,
        ".mp4",
    );

    // A 404 in the middle of the download names the file; nothing is left half-written.
    let base = serve_recordings(dir.path().join("src"), vec!["slide-1.png".to_owned()]).await;
    let keep = dir.path().join("partial-backup");
    let url = format!("{base}/presentation/{RECORD_ID}/");
    fails(
        &render(&[&url, "-o", p(&out), "--keep-assets", p(&keep)]).await,
        "slide-1.png",
    );
    assert!(walk(&keep)
        .iter()
        .all(|f| !f.to_string_lossy().ends_with(".part")));
    assert!(!out.exists(), "no output from failed renders");
    assert!(!dir.path().join("outside.png").exists());
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.starts_with("bbb-render"))
        .collect();
    assert!(stray.is_empty(), "scratch files left: {stray:?}");

    // Optional files may be missing: the recording renders without them.
    let minimal = copy("minimal");
    for optional in [
        "cursor.xml",
        "panzooms.xml",
        "slides_new.xml",
        "deskshare.xml",
    ] {
        std::fs::remove_file(minimal.join(optional)).unwrap();
    }
    let run = render(&[p(&minimal), "-o", p(&out), "--no-chat"]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(out.is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_render_api_creates_an_asset_in_a_job() {
    use crate::support::TestApp;
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_recording(
        &src,
        &[
            "--duration",
            "6",
            "--slides",
            "2",
            "--annotations",
            "2",
            "--cursor-every",
            "1",
        ],
    );
    let base = serve_recordings(src.clone(), vec![]).await;
    let (status, created) = app
        .api_json(
            Method::POST,
            "/openvod/v1/bbb/renders",
            Some(serde_json::json!({
                "source": format!("{base}/playback/presentation/2.3/{RECORD_ID}"),
                "new_asset_settings": {"playback_policy": ["public"], "passthrough": "physics-101"},
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let render = &created["data"];
    assert_eq!(render["status"], "preparing");
    assert_eq!(render["asset"]["passthrough"], "physics-101");
    let id = render["id"].as_str().unwrap();
    app.run_jobs_until_idle().await;
    let (status, done) = app
        .api_json(Method::GET, &format!("/openvod/v1/bbb/renders/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(done["data"]["status"], "ready", "{done}");
    let asset = app.get_asset(id).await;
    // An asset that did not come from a render is not a render.
    let uploaded = app
        .upload_file(
            crate::support::clip(),
            serde_json::json!({"playback_policy": ["public"]}),
        )
        .await;
    let (status, error) = app
        .api_json(
            Method::GET,
            &format!("/openvod/v1/bbb/renders/{uploaded}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "{error}");
    let duration = f(&asset["duration"]);
    assert!((duration - 6.0).abs() < 0.2, "{duration}");
    let playback = asset["playback_ids"][0]["id"].as_str().unwrap();
    let master = app
        .client
        .get(format!("{}/{playback}.m3u8", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(master.status(), 200);

    // A recording that cannot be rendered errors its asset with a message naming the file.
    let broken = serve_recordings(src, vec!["slide-2.png".to_owned()]).await;
    let (_, created) = app
        .api_json(
            Method::POST,
            "/openvod/v1/bbb/renders",
            Some(serde_json::json!({"source": format!("{broken}/presentation/{RECORD_ID}/")})),
        )
        .await;
    let id = created["data"]["id"].as_str().unwrap();
    app.run_jobs_until_idle().await;
    let asset = app.get_asset(id).await;
    assert_eq!(asset["status"], "errored");
    let message = asset["errors"]["messages"][0].as_str().unwrap();
    assert!(message.contains("slide-2.png"), "{message}");

    // Bad requests are refused with a JSON error naming the problem.
    for (body, needle) in [
        (
            serde_json::json!({"source": "/var/bigbluebutton/published/presentation/x"}),
            "http",
        ),
        (
            serde_json::json!({"source": "ftp://bbb.example/presentation/x/"}),
            "http",
        ),
        (
            serde_json::json!({"source": "https://bbb.example/nothing/here"}),
            "presentation",
        ),
        (serde_json::json!({}), "source"),
        (
            serde_json::json!({"source": format!("{base}/presentation/{RECORD_ID}/"), "colour": 1}),
            "colour",
        ),
        (
            serde_json::json!({"source": format!("{base}/presentation/{RECORD_ID}/"),
                "new_asset_settings": {"input": "https://example.com/x.mp4"}}),
            "input",
        ),
    ] {
        let (status, error) = app
            .api_json(Method::POST, "/openvod/v1/bbb/renders", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body} → {error}");
        assert!(error.to_string().contains(needle), "{body} → {error}");
    }
}
