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
    fn at(video: &Path, t: f64) -> Frame {
        let out = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-ss", &format!("{t:.3}"), "-i"])
            .arg(video)
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
    assert_eq!(frame.count(0.0, 0.0, 960.0, 720.0, is_red) < 400, true);
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
