//! One render: a published recording folder in, one MP4 (H.264/AAC) or WebM (VP9/Opus) out.
//!
//! Three ffmpeg processes, two of them at once: the video (composed frames from a pipe, with the
//! screenshare and webcams videos overlaid) and the audio are encoded in parallel, then muxed
//! with the captions (`-c copy`, `+faststart`). Memory is bounded: frames are streamed one at a
//! time and only the current slide is kept decoded.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::compose::{Composer, Layout};
use super::fetch::{self, Fetcher};
use super::mkv::MkvWriter;
use super::recording::Recording;
use super::source::Source;
use super::timeline::{self, TimelineOptions};
use super::BbbError;
use crate::media::ffmpeg::{self, FedError};
use crate::media::probe::{self, MediaInfo};
use crate::outbound::Outbound;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Webm,
}

impl Container {
    pub fn from_path(path: &Path) -> Result<Container, BbbError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("mp4") => Ok(Container::Mp4),
            Some("webm") => Ok(Container::Webm),
            _ => Err(BbbError::InvalidSource(format!(
                "output {} must end in .mp4 (H.264 + AAC) or .webm (VP9 + Opus)",
                path.display()
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub width: u32,
    pub height: u32,
    pub webcams: bool,
    pub chat: bool,
    pub cursor: bool,
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    pub probe_timeout: Duration,
    /// An ffmpeg run may take this many times the recording's duration (at least ten minutes).
    pub timeout_factor: f64,
    pub x264_preset: String,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            width: 1280,
            height: 720,
            webcams: true,
            chat: true,
            cursor: true,
            ffmpeg: PathBuf::from("ffmpeg"),
            ffprobe: PathBuf::from("ffprobe"),
            probe_timeout: Duration::from_secs(60),
            timeout_factor: 4.0,
            x264_preset: "veryfast".to_owned(),
        }
    }
}

impl RenderOptions {
    fn validate(&self) -> Result<(), BbbError> {
        let ok = |v: u32| (16..=7680).contains(&v) && v % 2 == 0;
        if !ok(self.width) || !ok(self.height) {
            return Err(BbbError::InvalidSource(format!(
                "output size {}x{} must be even numbers between 16 and 7680",
                self.width, self.height
            )));
        }
        Ok(())
    }
}

/// Progress of a render, reported about twice a second.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub frames: u64,
    pub total_frames: u64,
    /// Recording time composed so far, in seconds.
    pub media_s: f64,
    pub duration_s: f64,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Rendered {
    pub output: PathBuf,
    pub duration_s: f64,
    pub width: u32,
    pub height: u32,
    pub render_s: f64,
    pub speed_x: f64,
    pub frames: u64,
    pub captions: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Renders `source` (URL or folder) to `output`. A URL's files are downloaded into `keep_assets`
/// when given (kept), else into a folder under `scratch` (removed); a local folder is read in
/// place and copied to `keep_assets` when given.
pub async fn render_source(
    source: &Source,
    output: &Path,
    keep_assets: Option<&Path>,
    scratch: &Path,
    outbound: &Outbound,
    opts: &RenderOptions,
    progress: Option<ProgressFn>,
) -> Result<Rendered, BbbError> {
    let started = Instant::now();
    // Refuse a bad output name or size before downloading anything.
    Container::from_path(output)?;
    opts.validate()?;
    let work = tempfile::Builder::new()
        .prefix("bbb-render-")
        .tempdir_in(scratch)
        .map_err(|e| BbbError::io(scratch, e))?;
    let mut fetch_warnings = Vec::new();
    let dir: PathBuf = match (source, keep_assets) {
        (Source::Dir(dir), None) => dir.clone(),
        (origin, keep) => {
            let target = match keep {
                Some(k) => k.to_path_buf(),
                None => work.path().join("assets"),
            };
            let fetcher = match origin {
                Source::Http { base, .. } => Fetcher::http(outbound, base.clone()),
                Source::Dir(dir) => Fetcher::local(dir.clone()),
            };
            fetch_warnings = fetch::fetch_recording(&fetcher, &target).await?;
            target
        }
    };
    let mut rendered = render_dir(&dir, output, work.path(), opts, progress, started).await?;
    fetch_warnings.append(&mut rendered.warnings);
    rendered.warnings = fetch_warnings;
    Ok(rendered)
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

async fn probe_file(opts: &RenderOptions, path: &Path) -> Result<MediaInfo, BbbError> {
    Ok(probe::probe(&opts.ffprobe, path, opts.probe_timeout).await?)
}

/// Renders a local published recording folder (`render_source` has checked `output` and `opts`).
async fn render_dir(
    dir: &Path,
    output: &Path,
    scratch: &Path,
    opts: &RenderOptions,
    progress: Option<ProgressFn>,
    started: Instant,
) -> Result<Rendered, BbbError> {
    let container = Container::from_path(output)?;
    let mut rec = {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Recording::load(&dir))
            .await
            .map_err(|e| BbbError::Render(e.to_string()))??
    };
    let duration = rec.meta.duration;
    let media_rel = rec
        .media
        .clone()
        .ok_or_else(|| BbbError::Missing("audio (video/webcams.* or audio/audio.*)".to_owned()))?;
    let media_path = dir.join(&media_rel);
    let media = probe_file(opts, &media_path).await?;
    let webcams = opts.webcams && media.video.is_some() && media_rel.starts_with("video/");
    let cam_fps = media
        .video
        .as_ref()
        .and_then(|v| v.frame_rate)
        .filter(|f| *f > 0.0)
        .map_or(15.0, |f| f.min(30.0));
    let deskshare = match &rec.deskshare_video {
        Some(rel) => {
            let info = probe_file(opts, &dir.join(rel)).await?;
            match info.video {
                Some(v) => Some((
                    rel.clone(),
                    v.frame_rate.filter(|f| *f > 0.0).unwrap_or(5.0),
                )),
                None => {
                    rec.warnings
                        .push(format!("{rel} has no video; rendered without screenshare"));
                    None
                }
            }
        }
        None => None,
    };
    if deskshare.is_none() {
        rec.deskshare.clear();
    }
    if media.audio.is_empty() {
        rec.warnings
            .push(format!("{media_rel} has no audio; the output is silent"));
    }
    let show_chat = opts.chat && !rec.chat.is_empty();
    let layout = Layout::new(opts.width, opts.height, webcams, show_chat);
    let timeline_opts = TimelineOptions {
        cursor: opts.cursor,
        chat: show_chat,
        // With webcams ffmpeg makes the stream constant-rate; without, screenshare needs frames.
        deskshare_fps: if webcams {
            None
        } else {
            deskshare.as_ref().map(|(_, fps)| fps.min(15.0))
        },
    };
    let frames = timeline::frames(&rec, &timeline_opts);
    let total_frames = frames.len() as u64;
    let timeout = Duration::from_secs_f64((duration * opts.timeout_factor).max(600.0));

    let video_path = scratch.join("video.mkv");
    let audio_path = scratch.join(match container {
        Container::Mp4 => "audio.m4a",
        Container::Webm => "audio.mka",
    });

    // Video: frames on stdin, overlays from the screenshare and webcams files.
    let mut args = os(&["-f", "matroska", "-i", "pipe:0"]);
    let mut next_input = 1;
    // Convert each composed frame once, before `fps` repeats it for the webcams' frame rate.
    let mut graph = String::from("[0:v]format=yuv420p");
    if webcams {
        graph.push_str(&format!(",fps={cam_fps:.3}"));
    }
    graph.push_str("[base0]");
    let mut last = "base0".to_owned();
    if let Some((rel, _)) = &deskshare {
        args.extend(os(&["-i"]));
        args.push(dir.join(rel).into_os_string());
        let a = layout.slides;
        let enable: Vec<String> = rec
            .deskshare
            .iter()
            .map(|(s, e)| format!("gte(t,{s:.3})*lt(t,{e:.3})"))
            .collect();
        graph.push_str(&format!(
            ";[{next_input}:v]scale={}:{}:force_original_aspect_ratio=decrease,setsar=1[desk];\
             [{last}][desk]overlay=x={}+({}-overlay_w)/2:y={}+({}-overlay_h)/2:eof_action=pass:enable='{}'[base1]",
            a.w,
            a.h,
            a.x,
            a.w,
            a.y,
            a.h,
            enable.join("+")
        ));
        last = "base1".to_owned();
        next_input += 1;
    }
    if let (true, Some(cam)) = (webcams, layout.webcams) {
        args.extend(os(&["-i"]));
        args.push(media_path.clone().into_os_string());
        graph.push_str(&format!(
            ";[{next_input}:v]scale={}:{}:force_original_aspect_ratio=decrease,setsar=1[cams];\
             [{last}][cams]overlay=x={}+({}-overlay_w)/2:y={}+({}-overlay_h)/2:eof_action=pass[base2]",
            cam.w, cam.h, cam.x, cam.w, cam.y, cam.h
        ));
        last = "base2".to_owned();
    }
    graph.push_str(&format!(";[{last}]null[v]"));
    args.extend(os(&["-filter_complex", &graph, "-map", "[v]", "-an"]));
    let keyframes = "expr:gte(t,n_forced*10)";
    match container {
        Container::Mp4 => args.extend(os(&[
            "-c:v",
            "libx264",
            "-preset",
            &opts.x264_preset,
            "-tune",
            "stillimage",
            "-crf",
            "23",
            // Without B-frames decode order is display order, so a sparse (VFR) stream's track
            // duration reaches its last frame.
            "-bf",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])),
        Container::Webm => args.extend(os(&[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
            "-b:v",
            "0",
            "-crf",
            "36",
            "-pix_fmt",
            "yuv420p",
        ])),
    }
    args.extend(os(&[
        "-force_key_frames",
        keyframes,
        "-fps_mode",
        if webcams { "cfr" } else { "vfr" },
        "-t",
        &format!("{duration:.3}"),
        "-f",
        "matroska",
    ]));
    args.push(video_path.clone().into_os_string());

    // Audio: the whole duration, padded with silence if the file is shorter.
    let mut audio_args = Vec::new();
    if media.audio.is_empty() {
        audio_args.extend(os(&["-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono"]));
    } else {
        audio_args.extend(os(&["-i"]));
        audio_args.push(media_path.clone().into_os_string());
    }
    audio_args.extend(os(&[
        "-map",
        "0:a:0",
        "-vn",
        "-af",
        "apad",
        "-t",
        &format!("{duration:.3}"),
    ]));
    match container {
        Container::Mp4 => audio_args.extend(os(&["-c:a", "aac", "-b:a", "96k", "-f", "mp4"])),
        Container::Webm => {
            audio_args.extend(os(&["-c:a", "libopus", "-b:a", "64k", "-f", "matroska"]))
        }
    }
    audio_args.push(audio_path.clone().into_os_string());

    let composed = Arc::new(AtomicU64::new(0));
    let composed_ms = Arc::new(AtomicU64::new(0));
    let feed = {
        let dir = dir.to_path_buf();
        let rec = rec.clone();
        let composed = composed.clone();
        let composed_ms = composed_ms.clone();
        move |pipe: std::fs::File| -> Result<(), BbbError> {
            let mut composer = Composer::new(&rec, &dir, layout)?;
            let out = std::io::BufWriter::with_capacity(1 << 20, pipe);
            let pipe_error = |e: std::io::Error| BbbError::Render(format!("writing frames: {e}"));
            let mut mkv = MkvWriter::new(out, layout.width, layout.height).map_err(pipe_error)?;
            let end_ms = (rec.meta.duration * 1000.0).round() as u64;
            for (i, (at_ms, state)) in frames.iter().enumerate() {
                let next_ms = frames.get(i + 1).map_or(end_ms, |(t, _)| *t);
                let rgba = composer.frame(state)?;
                mkv.frame(*at_ms, next_ms.saturating_sub(*at_ms).max(1), rgba)
                    .map_err(pipe_error)?;
                composed.fetch_add(1, Ordering::Relaxed);
                composed_ms.store(*at_ms, Ordering::Relaxed);
            }
            mkv.finish().map_err(pipe_error)?;
            Ok(())
        }
    };
    let reporter = progress.clone().map(|report| {
        let composed = composed.clone();
        let composed_ms = composed_ms.clone();
        tokio::spawn(async move {
            loop {
                report(Progress {
                    frames: composed.load(Ordering::Relaxed),
                    total_frames,
                    media_s: composed_ms.load(Ordering::Relaxed) as f64 / 1000.0,
                    duration_s: duration,
                    elapsed: started.elapsed(),
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    });
    let video = ffmpeg::run_fed(&opts.ffmpeg, args, timeout, feed, |_| {});
    let audio = ffmpeg::run(&opts.ffmpeg, audio_args, timeout, |_| {});
    let (video, audio) = tokio::join!(video, audio);
    if let Some(r) = reporter {
        r.abort();
    }
    if let (Some(report), Ok(())) = (&progress, &video) {
        report(Progress {
            frames: total_frames,
            total_frames,
            media_s: duration,
            duration_s: duration,
            elapsed: started.elapsed(),
        });
    }
    match video {
        Ok(()) => {}
        Err(FedError::Media(e)) => return Err(e.into()),
        Err(FedError::Feed(e)) => return Err(e),
    }
    audio?;

    // Mux, with the captions as a text track; written beside the output, then renamed.
    let mut mux = vec![OsString::from("-i"), video_path.into_os_string()];
    mux.extend(os(&["-i"]));
    mux.push(audio_path.into_os_string());
    for c in &rec.captions {
        mux.extend(os(&["-i"]));
        mux.push(dir.join(&c.file).into_os_string());
    }
    mux.extend(os(&["-map", "0:v:0", "-map", "1:a:0"]));
    for (i, c) in rec.captions.iter().enumerate() {
        mux.extend(os(&["-map", &format!("{}:s:0", i + 2)]));
        mux.extend(os(&[
            &format!("-metadata:s:s:{i}"),
            &format!("title={}", c.name),
        ]));
    }
    mux.extend(os(&["-c:v", "copy", "-c:a", "copy"]));
    if !rec.captions.is_empty() {
        mux.extend(os(&[
            "-c:s",
            match container {
                Container::Mp4 => "mov_text",
                Container::Webm => "webvtt",
            },
        ]));
    }
    let partial = partial_path(output);
    match container {
        Container::Mp4 => mux.extend(os(&["-movflags", "+faststart", "-f", "mp4"])),
        Container::Webm => mux.extend(os(&["-f", "webm"])),
    }
    mux.push(partial.clone().into_os_string());
    let muxed = ffmpeg::run(&opts.ffmpeg, mux, timeout, |_| {}).await;
    if let Err(e) = muxed {
        let _ = std::fs::remove_file(&partial);
        return Err(e.into());
    }
    std::fs::rename(&partial, output).map_err(|e| BbbError::io(output, e))?;

    let mut captions = Vec::new();
    for c in &rec.captions {
        let target = caption_path(output, &c.locale);
        std::fs::copy(dir.join(&c.file), &target).map_err(|e| BbbError::io(&target, e))?;
        captions.push(target);
    }
    let render_s = started.elapsed().as_secs_f64();
    Ok(Rendered {
        output: output.to_path_buf(),
        duration_s: duration,
        width: layout.width,
        height: layout.height,
        render_s,
        speed_x: duration / render_s.max(1e-3),
        frames: total_frames,
        captions,
        warnings: rec.warnings,
    })
}

/// `talk.mp4` is written as `.talk.mp4.partial` first, so a crash never leaves a truncated output
/// under the final name.
fn partial_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.partial"))
}

/// `talk.mp4` + `fr-FR` → `talk.fr-FR.vtt`.
pub fn caption_path(output: &Path, locale: &str) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!("{stem}.{locale}.vtt"))
}

/// A progress bar on stderr: `\r` updates on a terminal, a line every few seconds otherwise.
pub fn stderr_progress() -> ProgressFn {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let last_line = std::sync::Mutex::new(Instant::now() - Duration::from_secs(60));
    Arc::new(move |p: Progress| {
        let fraction = if p.duration_s > 0.0 {
            (p.media_s / p.duration_s).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let elapsed = p.elapsed.as_secs_f64().max(1e-3);
        let width = 30;
        let filled = (fraction * width as f64).round() as usize;
        let line = format!(
            "[{}{}] {:5.1}% frames {}/{} speed {:.1}x",
            "#".repeat(filled),
            "-".repeat(width - filled),
            fraction * 100.0,
            p.frames,
            p.total_frames,
            p.media_s / elapsed
        );
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(err, "\r{line}");
        } else if let Ok(mut last) = last_line.lock() {
            if last.elapsed() >= Duration::from_secs(5) || p.frames == p.total_frames {
                *last = Instant::now();
                let _ = writeln!(err, "{line}");
            }
        }
        let _ = err.flush();
    })
}
