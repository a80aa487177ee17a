//! ffprobe: what a file contains, as a typed `MediaInfo`.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{run_to_completion, MediaError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// Seconds; the container duration, else the longest stream.
    pub duration: Option<f64>,
    pub format_name: String,
    pub video: Option<VideoStream>,
    pub audio: Vec<AudioStream>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoStream {
    pub codec: String,
    /// Coded size; `display_width`/`display_height` apply the rotation.
    pub width: u32,
    pub height: u32,
    pub rotation: i32,
    /// Average frame rate; `None` when ffprobe cannot tell (VFR without a usable average).
    pub frame_rate: Option<f64>,
    pub pix_fmt: Option<String>,
    pub duration: Option<f64>,
    /// H.264 profile name as ffprobe prints it (`High`, `Main`, `Constrained Baseline`, ...).
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub level: Option<i32>,
    #[serde(default)]
    pub bit_rate: Option<u64>,
    #[serde(default)]
    pub frames: Option<u64>,
}

impl VideoStream {
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation.rem_euclid(180) == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioStream {
    pub codec: String,
    pub channels: u32,
    pub channel_layout: Option<String>,
    pub sample_rate: Option<u32>,
    pub duration: Option<f64>,
    /// AAC profile name (`LC`, `HE-AAC`, ...).
    #[serde(default)]
    pub profile: Option<String>,
}

/// Probes `path`. An input that ffprobe cannot parse, or that holds neither audio nor video,
/// is `MediaError::NotMedia`.
pub async fn probe(
    ffprobe: &Path,
    path: &Path,
    timeout: Duration,
) -> Result<MediaInfo, MediaError> {
    let args = [
        "-v".as_ref(),
        "error".as_ref(),
        "-print_format".as_ref(),
        "json".as_ref(),
        "-show_format".as_ref(),
        "-show_streams".as_ref(),
        path.as_os_str(),
    ];
    let stdout = match run_to_completion(ffprobe, args, timeout).await {
        Ok(stdout) => stdout,
        Err(MediaError::Failed { stderr, .. }) => {
            let stderr = stderr.replace(&path.display().to_string(), "input");
            return Err(MediaError::NotMedia(if stderr.is_empty() {
                "ffprobe could not read it".to_owned()
            } else {
                stderr
            }));
        }
        Err(e) => return Err(e),
    };
    parse_ffprobe_json(&stdout).map_err(|e| match e {
        ParseError::Json(msg) => MediaError::Output(ffprobe.to_path_buf(), msg),
        ParseError::NoStreams => {
            MediaError::NotMedia("it contains no audio or video stream".to_owned())
        }
    })
}

/// The times (seconds) of the first video stream's keyframes, from the container's packet flags
/// (nothing is decoded); with `window`, only those from about its start to its end (the packets
/// read are those, not the whole file's).
pub async fn keyframe_times(
    ffprobe: &Path,
    path: &Path,
    window: Option<(f64, f64)>,
    timeout: Duration,
) -> Result<Vec<f64>, MediaError> {
    let mut args: Vec<std::ffi::OsString> = [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,flags",
        "-of",
        "csv=p=0",
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    if let Some((from, to)) = window {
        // ffprobe seeks to the keyframe at or before `from`, then reads up to `to`.
        args.push("-read_intervals".into());
        args.push(format!("{from:.6}%{to:.6}").into());
    }
    args.push(path.into());
    let stdout = run_to_completion(ffprobe, args, timeout).await?;
    let mut times: Vec<f64> = String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|line| {
            let (time, flags) = line.split_once(',')?;
            flags.contains('K').then(|| time.parse::<f64>().ok())?
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Ok(times)
}

#[derive(Debug, PartialEq)]
pub(crate) enum ParseError {
    Json(String),
    NoStreams,
}

#[derive(Deserialize)]
struct RawOutput {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct RawStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    pix_fmt: Option<String>,
    channels: Option<u32>,
    channel_layout: Option<String>,
    sample_rate: Option<String>,
    duration: Option<String>,
    profile: Option<String>,
    level: Option<i32>,
    bit_rate: Option<String>,
    nb_frames: Option<String>,
    #[serde(default)]
    disposition: Option<RawDisposition>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
    #[serde(default)]
    tags: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawDisposition {
    #[serde(default)]
    attached_pic: u8,
}

pub(crate) fn parse_ffprobe_json(bytes: &[u8]) -> Result<MediaInfo, ParseError> {
    let raw: RawOutput =
        serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
    let mut video = None;
    let mut audio = Vec::new();
    for stream in raw.streams {
        match stream.codec_type.as_deref() {
            Some("video") => {
                let is_cover_art = stream
                    .disposition
                    .as_ref()
                    .is_some_and(|d| d.attached_pic == 1);
                let (Some(width), Some(height)) = (stream.width, stream.height) else {
                    continue;
                };
                if is_cover_art || video.is_some() || width == 0 || height == 0 {
                    continue;
                }
                video = Some(VideoStream {
                    codec: stream.codec_name.unwrap_or_default(),
                    width,
                    height,
                    rotation: rotation_of(&stream.side_data_list, stream.tags.as_ref()),
                    frame_rate: stream
                        .avg_frame_rate
                        .as_deref()
                        .and_then(parse_rational)
                        .or_else(|| stream.r_frame_rate.as_deref().and_then(parse_rational)),
                    pix_fmt: stream.pix_fmt,
                    duration: stream.duration.as_deref().and_then(parse_seconds),
                    profile: stream.profile,
                    level: stream.level,
                    bit_rate: stream.bit_rate.and_then(|b| b.parse().ok()),
                    frames: stream.nb_frames.and_then(|n| n.parse().ok()),
                });
            }
            Some("audio") => audio.push(AudioStream {
                codec: stream.codec_name.unwrap_or_default(),
                channels: stream.channels.unwrap_or(0),
                channel_layout: stream.channel_layout,
                sample_rate: stream.sample_rate.and_then(|s| s.parse().ok()),
                duration: stream.duration.as_deref().and_then(parse_seconds),
                profile: stream.profile,
            }),
            _ => {}
        }
    }
    if video.is_none() && audio.is_empty() {
        return Err(ParseError::NoStreams);
    }
    let format = raw.format;
    let stream_max = video
        .as_ref()
        .and_then(|v| v.duration)
        .into_iter()
        .chain(audio.iter().filter_map(|a| a.duration))
        .fold(None, |acc: Option<f64>, d| {
            Some(acc.map_or(d, |a| a.max(d)))
        });
    Ok(MediaInfo {
        duration: format
            .as_ref()
            .and_then(|f| f.duration.as_deref())
            .and_then(parse_seconds)
            .or(stream_max),
        format_name: format.and_then(|f| f.format_name).unwrap_or_default(),
        video,
        audio,
    })
}

fn parse_seconds(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0)
}

/// Parses ffprobe's `num/den`; `0/0` (unknown) is `None`.
fn parse_rational(s: &str) -> Option<f64> {
    let (num, den) = s.split_once('/')?;
    let num: f64 = num.parse().ok()?;
    let den: f64 = den.parse().ok()?;
    if den == 0.0 || num <= 0.0 {
        return None;
    }
    Some(num / den)
}

/// Rotation in degrees clockwise, from the display matrix (ffmpeg ≥ 5) or the legacy `rotate` tag.
fn rotation_of(
    side_data: &[serde_json::Value],
    tags: Option<&serde_json::Map<String, serde_json::Value>>,
) -> i32 {
    let from_matrix = side_data.iter().find_map(|sd| {
        sd.get("rotation").and_then(|r| {
            r.as_f64()
                .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
        })
    });
    if let Some(degrees) = from_matrix {
        // The display matrix gives counter-clockwise degrees.
        return (-(degrees.round() as i32)).rem_euclid(360);
    }
    tags.and_then(|t| t.get("rotate"))
        .and_then(|r| r.as_str())
        .and_then(|s| s.parse::<i32>().ok())
        .map_or(0, |d| d.rem_euclid(360))
}

#[cfg(test)]
mod tests;
