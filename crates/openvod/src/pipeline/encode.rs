//! ffmpeg argument lists. One process decodes the input once and encodes every rung (`split` +
//! `-var_stream_map`), writing HLS (MPEG-TS segments) into `<out>/<rung>/index.m3u8`.

use std::ffi::OsString;
use std::path::Path;

use super::plan::{Plan, Rung, AUDIO_KBPS, SEGMENT_SECS};

/// AAC at 48 kHz, keeping the source's channel count up to stereo; loudness-normalized when the
/// plan says so.
fn audio_args(args: &mut Vec<OsString>, plan: &Plan) {
    aac_args(args, plan.normalize_audio, plan.audio_channels, None);
}

/// The one AAC encode every audio output uses: `channels` at 48 kHz and `AUDIO_KBPS`, EBU R128
/// loudness when `normalize`, padded with silence (then cut by `-t`) when `pad_to` is given.
fn aac_args(args: &mut Vec<OsString>, normalize: bool, channels: u32, pad_to: Option<f64>) {
    let mut filters = Vec::new();
    if normalize {
        // EBU R128: −23 LUFS integrated, −2 dBTP peaks (one pass, dynamic; `-ar` below resamples
        // loudnorm's 192 kHz output).
        filters.push("loudnorm=I=-23:TP=-2:LRA=7".to_owned());
    }
    if let Some(secs) = pad_to {
        filters.push(format!("apad=whole_dur={secs:.6}"));
        args.push("-t".into());
        args.push(format!("{secs:.6}").into());
    }
    if !filters.is_empty() {
        args.push("-af".into());
        args.push(filters.join(",").into());
    }
    push_all(args, &["-c:a", "aac", "-ac"]);
    args.push(channels.to_string().into());
    push_all(args, &["-ar", "48000", "-b:a"]);
    args.push(format!("{AUDIO_KBPS}k").into());
}

/// An added audio track (another language) as an HLS rendition of its own: the file's first audio
/// stream, padded with silence or cut to the asset's `secs`, encoded as the ladder encodes audio,
/// in `SEGMENT_SECS` MPEG-TS segments that start at the same time as every rendition's (1.4 s,
/// ffmpeg's default), so players switching to it stay in sync.
pub fn audio_track_args(
    input: &Path,
    secs: f64,
    channels: u32,
    normalize: bool,
    out: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-i".into(), input.into()];
    push_all(&mut args, &["-map", "0:a:0", "-vn", "-sn", "-dn"]);
    // One AAC frame less: the encoder's priming frame would otherwise run past `secs` into a
    // last segment of a few milliseconds.
    let secs = (secs - 1024.0 / 48_000.0).max(1024.0 / 48_000.0);
    aac_args(&mut args, normalize, channels, Some(secs));
    push_all(
        &mut args,
        &[
            "-f",
            "hls",
            "-hls_time",
            &SEGMENT_SECS.to_string(),
            "-hls_playlist_type",
            "vod",
            "-hls_flags",
            "independent_segments",
            "-hls_segment_type",
            "mpegts",
            "-hls_segment_filename",
        ],
    );
    args.push(out.join("seg_%05d.ts").into());
    args.push(out.join("index.m3u8").into());
    args
}
/// Name of the audio-only rendition of an asset without video.
pub const AUDIO_RENDITION: &str = "audio";

fn hls_output(args: &mut Vec<OsString>, out: &Path, var_stream_map: &str, start_number: usize) {
    args.push("-start_number".into());
    args.push(start_number.to_string().into());
    for a in [
        "-f",
        "hls",
        "-hls_time",
        &SEGMENT_SECS.to_string(),
        // EVENT: ffmpeg rewrites the playlist after every segment, so a rung can be published while
        // it is encoded; publishing turns the finished playlist into VOD.
        "-hls_playlist_type",
        "event",
        "-hls_flags",
        "independent_segments",
        "-hls_segment_type",
        "mpegts",
        "-hls_segment_filename",
    ] {
        args.push(a.into());
    }
    args.push(out.join("%v").join("seg_%05d.ts").into());
    args.push("-var_stream_map".into());
    args.push(var_stream_map.into());
    args.push(out.join("%v").join("index.m3u8").into());
}

fn push_all(args: &mut Vec<OsString>, items: &[&str]) {
    args.extend(items.iter().map(OsString::from));
}

/// Where a pass takes its audio from.
#[derive(Clone, Copy, PartialEq)]
enum Audio {
    /// Encoded from the input's first audio stream.
    Encode,
    /// Copied from the second input, already encoded (a piece of a split encode).
    Copy,
}

/// Encodes `rungs` (a subset of the plan's) in one pass.
pub fn ladder_args(
    input: &Path,
    plan: &Plan,
    rungs: &[Rung],
    preset: &str,
    out: &Path,
) -> Vec<OsString> {
    // A test asset's input is read no further than its length: the audio stops with the picture.
    let read = plan.test.then_some(f64::from(super::plan::TEST_SECS));
    ladder_args_reading(input, read, plan, rungs, preset, out)
}

/// `ladder_args`, reading at most `read` seconds of the input.
fn ladder_args_reading(
    input: &Path,
    read: Option<f64>,
    plan: &Plan,
    rungs: &[Rung],
    preset: &str,
    out: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(secs) = read {
        args.push("-t".into());
        args.push(format!("{secs:.6}").into());
    }
    args.push("-i".into());
    args.push(input.into());
    // The watermark image is the second input (see `overlay_filter`).
    if let Some(image) = plan.overlay.as_ref().and_then(|o| o.image.as_ref()) {
        args.push("-i".into());
        args.push(image.into());
    }
    if rungs.is_empty() {
        push_all(&mut args, &["-map", "0:a:0", "-vn"]);
        audio_args(&mut args, plan);
        hls_output(&mut args, out, &format!("a:0,name:{AUDIO_RENDITION}"), 0);
        return args;
    }
    ladder_output(&mut args, plan, rungs, preset, Audio::Encode, &[], out, 0);
    args
}

/// The input's audio encoded once, as the ladder would (AAC in ADTS frames, which
/// `adts::frames_of_piece` cuts exactly), for the pieces of a split encode to copy.
pub fn audio_once_args(input: &Path, plan: &Plan, target: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-i".into(), input.into()];
    push_all(&mut args, &["-map", "0:a:0", "-vn"]);
    audio_args(&mut args, plan);
    push_all(&mut args, &["-f", "adts"]);
    args.push(target.into());
    args
}

/// One piece of a split encode: segments `first..first + count` of `rungs`, cut exactly as the
/// one-pass encode cuts them (same frames, keyframes and timestamps), with `audio`, the piece's
/// frames of the audio encoded once, starting `audio_start` seconds after the piece (negative
/// for the encoder's priming frame). The segment files are numbered from `first`.
#[allow(clippy::too_many_arguments)]
pub fn piece_args(
    input: &Path,
    audio: Option<&Path>,
    audio_start: f64,
    plan: &Plan,
    rungs: &[Rung],
    (first, count): (usize, usize),
    preset: &str,
    out: &Path,
) -> Vec<OsString> {
    let gop = u64::from(plan.gop);
    let start_frame = first as u64 * gop;
    let mut piece = plan.clone();
    piece.frames = (count as u64 * gop).min(plan.frames.saturating_sub(start_frame));
    let fps = f64::from(plan.fps.max(1));
    let start = start_frame as f64 / fps;
    // Read a little past the piece: `trim` ends it on its exact frame count.
    let mut args: Vec<OsString> = vec![
        "-ss".into(),
        format!("{start:.6}").into(),
        "-t".into(),
        format!("{:.6}", piece.frames as f64 / fps + 0.5).into(),
        "-i".into(),
        input.into(),
    ];
    let mode = match audio {
        Some(audio) => {
            args.push("-itsoffset".into());
            args.push(format!("{audio_start:.6}").into());
            args.push("-i".into());
            args.push(audio.into());
            Audio::Copy
        }
        None => {
            piece.has_audio = false;
            Audio::Encode
        }
    };
    // The one-pass encode's timeline: its AAC encoder's priming frame shifts everything by one
    // frame's duration, which the piece's copied audio does not do by itself.
    let priming = if piece.has_audio {
        AAC_PRIMING_SECS
    } else {
        0.0
    };
    let timeline: Vec<OsString> = vec![
        "-output_ts_offset".into(),
        format!("{:.6}", start + priming).into(),
        "-avoid_negative_ts".into(),
        "disabled".into(),
    ];
    ladder_output(
        &mut args, &piece, rungs, preset, mode, &timeline, out, first,
    );
    args
}

/// Samples ffmpeg's AAC encoder puts before the first real one, as seconds at 48 kHz.
pub const AAC_PRIMING_SECS: f64 = 1024.0 / 48_000.0;

/// Everything after the inputs of a ladder pass.
#[allow(clippy::too_many_arguments)]
fn ladder_output(
    args: &mut Vec<OsString>,
    plan: &Plan,
    rungs: &[Rung],
    preset: &str,
    audio: Audio,
    output_options: &[OsString],
    out: &Path,
    start_number: usize,
) {
    let n = rungs.len();
    // A constant frame rate from time 0, and exactly `plan.frames` frames (the last one repeated
    // if the picture ends early): the segments are then exactly the ones the plan lists.
    let mut graph = format!(
        "[0:v:0]fps={}:start_time=0,tpad=stop=-1:stop_mode=clone,trim=end_frame={}",
        plan.fps, plan.frames
    );
    if let Some(overlay) = plan.overlay.as_ref().filter(|o| o.image.is_some()) {
        overlay_filter(&mut graph, overlay);
    }
    if plan.test {
        // A test asset's watermark: a light band across the top of every rung's picture.
        graph.push_str(",drawbox=x=0:y=0:w=iw:h=ih/8:color=white@0.8:t=fill");
    }
    if n > 1 {
        // 4:2:0 once, at the source size, for every rung.
        graph.push_str(",format=yuv420p");
        graph.push_str(&format!(",split={n}"));
        for i in 0..n {
            graph.push_str(&format!("[s{i}]"));
        }
        for (i, rung) in rungs.iter().enumerate() {
            graph.push_str(&format!(
                ";[s{i}]scale={}:{},setsar=1[v{i}]",
                rung.width, rung.height
            ));
        }
    } else {
        // One rung (the quick first-segment pass among others): scaling first makes the 4:2:0
        // conversion a small picture's, about a third faster on 1080p input.
        graph.push_str(&format!(
            ",scale={}:{},format=yuv420p,setsar=1[v0]",
            rungs[0].width, rungs[0].height
        ));
    }
    args.push("-filter_complex".into());
    args.push(graph.into());
    let audio_stream = match audio {
        Audio::Encode => "0:a:0",
        Audio::Copy => "1:a:0",
    };
    let mut stream_map = Vec::new();
    for (i, rung) in rungs.iter().enumerate() {
        args.push("-map".into());
        args.push(format!("[v{i}]").into());
        if plan.has_audio {
            push_all(args, &["-map", audio_stream]);
            stream_map.push(format!("v:{i},a:{i},name:{}", rung.name));
        } else {
            stream_map.push(format!("v:{i},name:{}", rung.name));
        }
    }
    let gop = plan.gop.to_string();
    push_all(
        args,
        &[
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-profile:v",
            "high",
            "-crf",
            "23",
        ],
    );
    for (i, rung) in rungs.iter().enumerate() {
        args.push(format!("-maxrate:v:{i}").into());
        args.push(format!("{}k", rung.maxrate_kbps).into());
        args.push(format!("-bufsize:v:{i}").into());
        args.push(format!("{}k", rung.maxrate_kbps * 2).into());
        args.push(format!("-level:v:{i}").into());
        args.push(format!("{}.{}", rung.level / 10, rung.level % 10).into());
    }
    push_all(
        args,
        &["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"],
    );
    // Keyframes exactly at segment boundaries on every rung, whatever the input's timestamps.
    args.push("-force_key_frames".into());
    args.push(format!("expr:gte(t,n_forced*{SEGMENT_SECS})").into());
    if plan.has_audio {
        match audio {
            Audio::Encode => audio_args(args, plan),
            Audio::Copy => push_all(args, &["-c:a", "copy"]),
        }
    }
    push_all(args, &["-max_muxing_queue_size", "1024"]);
    args.extend(output_options.iter().cloned());
    hls_output(args, out, &stream_map.join(" "), start_number);
}

/// Draws the watermark (the second input) over the picture built so far in `graph`; the chain
/// goes on after it.
fn overlay_filter(graph: &mut String, overlay: &super::plan::OverlayPlan) {
    let scale = match (overlay.width, overlay.height) {
        (Some(w), Some(h)) => format!("scale={w}:{h},"),
        (Some(w), None) => format!("scale={w}:-1,"),
        (None, Some(h)) => format!("scale=-1:{h},"),
        (None, None) => String::new(),
    };
    graph.push_str(&format!(
        "[main];[1:v:0]{scale}format=rgba,colorchannelmixer=aa={:.3}[mark];[main][mark]overlay=x={}:y={}:eof_action=repeat",
        overlay.opacity, overlay.x, overlay.y
    ));
}

/// Encodes only the first segment of `rung`, exactly as the full pass would cut it: the quick pass
/// that makes an input that must be encoded playable in seconds. Reading stops at the segment's
/// end, so the audio stops with the picture.
pub fn first_segment_args(
    input: &Path,
    plan: &Plan,
    rung: &Rung,
    preset: &str,
    out: &Path,
) -> Vec<OsString> {
    let mut first = plan.clone();
    first.frames = plan.frames.min(u64::from(plan.gop));
    let seconds = first.frames as f64 / f64::from(plan.fps.max(1));
    ladder_args_reading(
        input,
        Some(seconds),
        &first,
        std::slice::from_ref(rung),
        preset,
        out,
    )
}

/// Cuts `[start, start + duration)` of `input` into an MP4 as the original of a clip. `copy`: the
/// cut starts on a keyframe of a streamable source, so its packets are taken as they are;
/// otherwise the clip is encoded (near-losslessly: the ladder encodes it again) from the exact
/// frame.
pub fn clip_args(
    input: &Path,
    start: f64,
    duration: Option<f64>,
    copy: bool,
    preset: &str,
    out: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-ss".into(), format!("{start:.6}").into()];
    if let Some(duration) = duration {
        args.push("-t".into());
        args.push(format!("{duration:.6}").into());
    }
    args.push("-i".into());
    args.push(input.into());
    push_all(
        &mut args,
        &["-map", "0:v:0?", "-map", "0:a:0?", "-dn", "-sn"],
    );
    if copy {
        push_all(
            &mut args,
            &["-c", "copy", "-avoid_negative_ts", "make_zero"],
        );
    } else {
        push_all(
            &mut args,
            &[
                "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p", "-preset",
            ],
        );
        args.push(preset.into());
        push_all(&mut args, &["-c:a", "aac", "-b:a", "256k"]);
    }
    push_all(&mut args, &["-movflags", "+faststart", "-f", "mp4"]);
    args.push(out.into());
    args
}

/// A clip that starts between keyframes of an H.264 source is spliced: only its first partial
/// GOP is encoded, the rest copied. These are the four runs: the encoded head (`[start, keyframe)`),
/// the copied tail (from `keyframe`), the copied audio, and the join.
pub mod splice {
    use super::push_all;
    use std::ffi::OsString;
    use std::path::Path;

    /// The head's parameter sets carry id 31, so that they never replace the source's (x264's and
    /// most encoders' are 0) when a decoder meets the tail's in the joined stream.
    const HEAD_SPS_ID: &str = "sps-id=31";

    /// Encodes the video of `[start, keyframe)` into MPEG-TS (parameter sets in band).
    pub fn head_args(
        input: &Path,
        start: f64,
        keyframe: f64,
        preset: &str,
        out: &Path,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "-ss".into(),
            format!("{start:.6}").into(),
            "-i".into(),
            input.into(),
            "-t".into(),
            format!("{:.6}", keyframe - start).into(),
        ];
        push_all(
            &mut args,
            &[
                "-map",
                "0:v:0",
                "-an",
                "-sn",
                "-dn",
                "-c:v",
                "libx264",
                "-crf",
                "16",
                "-pix_fmt",
                "yuv420p",
                "-x264-params",
                HEAD_SPS_ID,
                "-preset",
            ],
        );
        args.push(preset.into());
        push_all(&mut args, &["-f", "mpegts"]);
        args.push(out.into());
        args
    }

    /// Copies the video packets from the keyframe at `keyframe` to `end` into MPEG-TS.
    pub fn tail_args(input: &Path, keyframe: f64, end: Option<f64>, out: &Path) -> Vec<OsString> {
        // A hair past the keyframe: a seek lands on the keyframe at or before its target, and
        // the printed time may round below it.
        let seek = keyframe + 0.0005;
        let mut args: Vec<OsString> = vec![
            "-ss".into(),
            format!("{seek:.6}").into(),
            "-i".into(),
            input.into(),
        ];
        if let Some(end) = end {
            args.push("-t".into());
            args.push(format!("{:.6}", end - seek).into());
        }
        push_all(
            &mut args,
            &[
                "-map", "0:v:0", "-an", "-sn", "-dn", "-c", "copy", "-f", "mpegts",
            ],
        );
        args.push(out.into());
        args
    }

    /// Copies the audio packets of `[start, end)` (each AAC frame is a cut point).
    pub fn audio_args(input: &Path, start: f64, end: Option<f64>, out: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["-i".into(), input.into()];
        push_all(
            &mut args,
            &["-map", "0:a:0", "-vn", "-sn", "-dn", "-c", "copy"],
        );
        args.push("-ss".into());
        args.push(format!("{start:.6}").into());
        if let Some(end) = end {
            args.push("-t".into());
            args.push(format!("{:.6}", end - start).into());
        }
        push_all(&mut args, &["-f", "mp4"]);
        args.push(out.into());
        args
    }

    /// The concat demuxer's list of the head and the tail (paths of our own scratch folder).
    pub fn list(head: &Path, tail: &Path) -> String {
        let quoted = |p: &Path| p.display().to_string().replace('\'', "'\\''");
        format!("file '{}'\nfile '{}'\n", quoted(head), quoted(tail))
    }

    /// Joins the head and the tail (listed in `list`) with the audio into the clip's MP4.
    pub fn join_args(list: &Path, audio: Option<&Path>, out: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "-f".into(),
            "concat".into(),
            "-safe".into(),
            "0".into(),
            "-i".into(),
            list.into(),
        ];
        if let Some(audio) = audio {
            args.push("-i".into());
            args.push(audio.into());
        }
        push_all(&mut args, &["-map", "0:v:0"]);
        if audio.is_some() {
            push_all(&mut args, &["-map", "1:a:0"]);
        }
        // The MPEG-TS muxer added access unit delimiters, which MP4 does without: dropped, the
        // copied packets are the source's byte for byte (a keyframe also carries its parameter
        // sets in band, the MP4's header holding the head's).
        push_all(
            &mut args,
            &[
                "-c",
                "copy",
                "-bsf:v",
                "filter_units=remove_types=9",
                "-movflags",
                "+faststart",
                "-f",
                "mp4",
            ],
        );
        args.push(out.into());
        args
    }
}

/// Publishes the source as it is (`-c copy`) as the rendition `name`.
pub fn remux_args(input: &Path, has_audio: bool, name: &str, out: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-i".into(), input.into()];
    push_all(&mut args, &["-map", "0:v:0"]);
    if has_audio {
        push_all(&mut args, &["-map", "0:a:0"]);
    }
    push_all(&mut args, &["-c", "copy"]);
    let map = if has_audio {
        format!("v:0,a:0,name:{name}")
    } else {
        format!("v:0,name:{name}")
    };
    hls_output(&mut args, out, &map, 0);
    args
}

/// Packages a published rendition's segments as one MP4 (or M4A with `audio_only`), without re-encoding.
pub fn static_file_args(playlist: &Path, audio_only: bool, target: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-i".into(), playlist.into()];
    if audio_only {
        push_all(&mut args, &["-map", "0:a:0", "-vn"]);
    } else {
        push_all(&mut args, &["-map", "0:v:0", "-map", "0:a:0?"]);
    }
    push_all(
        &mut args,
        &[
            "-c",
            "copy",
            "-bsf:a",
            "aac_adtstoasc",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ],
    );
    args.push(target.into());
    args
}
