//! Planning: from what ffprobe saw to the ladder ffmpeg will produce.
//! Pure functions, tested without ffmpeg.

use crate::media::probe::MediaInfo;

/// HLS segment length in seconds; every rung has a keyframe at each multiple of it.
pub const SEGMENT_SECS: u32 = 4;

/// The ladder's rungs, by the picture's shorter side, with the rate cap used for each (kbit/s at 30 fps).
const LADDER: &[(u32, u32)] = &[
    (2160, 14000),
    (1440, 9000),
    (1080, 5000),
    (720, 2800),
    (540, 1800),
    (360, 800),
    (270, 400),
];

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rung {
    /// `720p` etc.; also the folder name of the rung's files.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub maxrate_kbps: u32,
    /// H.264 `level_idc`, forced on the encoder so the `CODECS` listed before encoding is exact.
    pub level: u8,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Highest first. Empty for audio-only inputs.
    pub rungs: Vec<Rung>,
    /// Constant output frame rate.
    pub fps: u32,
    /// Keyframe interval in frames (`fps × SEGMENT_SECS`).
    pub gop: u32,
    pub has_audio: bool,
    /// Channels of the encoded audio: the source's, at most two (mono stays mono).
    pub audio_channels: u32,
    /// The source can be published as it is (`-c copy`) while the ladder is encoded.
    pub source_streamable: bool,
    /// Video frames every rung has: the input's duration at `fps` (the picture is padded or cut
    /// to it), so segment boundaries and durations are known before a frame is encoded.
    pub frames: u64,
    /// Bring the audio to −23 LUFS (EBU R128) while encoding it.
    #[serde(default)]
    pub normalize_audio: bool,
    /// A test asset's: the input is read for at most `TEST_SECS` and the picture watermarked.
    #[serde(default)]
    pub test: bool,
    /// A watermark image drawn over the picture before it is scaled for each rung.
    #[serde(default)]
    pub overlay: Option<OverlayPlan>,
}

/// Where a watermark goes on the source-sized picture, in pixels, and how opaque it is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OverlayPlan {
    /// The image's size once scaled; `None` keeps that side in proportion (or native when both are).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// ffmpeg `overlay` expressions (`main_w`, `overlay_w`, ...).
    pub x: String,
    pub y: String,
    pub opacity: f64,
    /// The image on this machine, set by the run that encodes (never stored with the plan).
    #[serde(skip)]
    pub image: Option<std::path::PathBuf>,
}

impl OverlayPlan {
    /// Mux's overlay settings on a `width`×`height` picture.
    pub fn new(o: &crate::assets::model::Overlay, width: u32, height: u32) -> OverlayPlan {
        let px =
            |l: Option<crate::assets::model::OverlayLength>, of: u32| l.map_or(0, |l| l.pixels(of));
        let (mx, my) = (
            px(o.horizontal_margin, width),
            px(o.vertical_margin, height),
        );
        let x = match o.horizontal_align.as_str() {
            "center" => "(main_w-overlay_w)/2".to_owned(),
            "right" => format!("main_w-overlay_w-{mx}"),
            _ => mx.to_string(),
        };
        let y = match o.vertical_align.as_str() {
            "middle" => "(main_h-overlay_h)/2".to_owned(),
            "bottom" => format!("main_h-overlay_h-{my}"),
            _ => my.to_string(),
        };
        OverlayPlan {
            width: o.width.map(|w| w.pixels(width).max(1)),
            height: o.height.map(|h| h.pixels(height).max(1)),
            x,
            y,
            opacity: o.opacity.clamp(0.0, 1.0),
            image: None,
        }
    }
}

/// How much of a test asset's input is encoded (Mux: 10 seconds).
pub const TEST_SECS: u32 = 10;

/// Name of the `index`-th segment of an encoded rung, as ffmpeg writes it.
pub fn segment_name(index: usize) -> String {
    format!("seg_{index:05}.ts")
}

/// Bit rate of the encoded audio.
pub const AUDIO_KBPS: u32 = 128;

impl Plan {
    /// Durations of an encoded rung's segments: a keyframe every `SEGMENT_SECS` exactly and a fixed
    /// frame count make every boundary known in advance. Empty for audio-only inputs.
    pub fn segment_durations(&self) -> Vec<f64> {
        if self.rungs.is_empty() || self.gop == 0 {
            return Vec::new();
        }
        let gop = u64::from(self.gop);
        let full = self.frames / gop;
        let rest = self.frames % gop;
        let mut durations = vec![f64::from(SEGMENT_SECS); full as usize];
        if rest > 0 {
            durations.push(rest as f64 / f64::from(self.fps));
        }
        durations
    }

    /// The pieces of a split encode, `(first segment, segment count)`, each `piece_secs` long
    /// (whole segments, at least one) but the last, which takes the rest.
    pub fn pieces(&self, piece_secs: u64) -> Vec<(usize, usize)> {
        let segments = self.segment_durations().len();
        let per_piece = (piece_secs / u64::from(SEGMENT_SECS)).max(1) as usize;
        (0..segments)
            .step_by(per_piece)
            .map(|first| (first, per_piece.min(segments - first)))
            .collect()
    }

    /// The VOD media playlist of an encoded rung, listing every segment the encode will produce.
    /// It is published before the segments and never changes.
    pub fn media_playlist(&self) -> String {
        let mut m3u8 = format!(
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{SEGMENT_SECS}\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        );
        for (i, duration) in self.segment_durations().iter().enumerate() {
            m3u8.push_str(&format!("#EXTINF:{duration:.6},\n{}\n", segment_name(i)));
        }
        m3u8.push_str("#EXT-X-ENDLIST\n");
        m3u8
    }

    /// HLS `CODECS` of an encoded rung (High profile, its forced level, AAC-LC).
    pub fn codecs(&self, rung: &Rung) -> String {
        let video = avc_codec_string(Some("High"), Some(i32::from(rung.level)));
        if self.has_audio {
            format!("{video},{}", aac_codec_string(None))
        } else {
            video
        }
    }

    /// `BANDWIDTH` to list for a rung before it is measured: its rate cap plus the audio.
    pub fn estimated_bandwidth(&self, rung: &Rung) -> u64 {
        let audio = if self.has_audio { AUDIO_KBPS } else { 0 };
        u64::from(rung.maxrate_kbps + audio) * 1000
    }
}

/// The lowest H.264 level (Annex A) whose frame size and macroblock rate hold `width`×`height`
/// at `fps`.
pub fn h264_level(width: u32, height: u32, fps: u32) -> u8 {
    // (level_idc, MaxFS in macroblocks, MaxMBPS)
    const LEVELS: &[(u8, u64, u64)] = &[
        (30, 1_620, 40_500),
        (31, 3_600, 108_000),
        (32, 5_120, 216_000),
        (40, 8_192, 245_760),
        (42, 8_704, 522_240),
        (50, 22_080, 589_824),
        (51, 36_864, 983_040),
        (52, 36_864, 2_073_600),
    ];
    let blocks = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
    let rate = blocks * u64::from(fps);
    LEVELS
        .iter()
        .find(|(_, fs, mbps)| blocks <= *fs && rate <= *mbps)
        .map_or(52, |l| l.0)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("the input has a duration of {0:.0} s; the limit is {1} s")]
    TooLong(f64, u64),
    #[error("the input is {0}x{1}; the largest accepted size is {2} pixels on a side")]
    TooLarge(u32, u32, u32),
    #[error("the input has {0} frames; the limit is {1}")]
    TooManyFrames(u64, u64),
    #[error("the input's duration is unknown or zero")]
    NoDuration,
}

/// Input limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_duration_secs: u64,
    pub max_dimension: u32,
    pub max_frames: u64,
    /// Top rung by shorter side (Mux `max_resolution_tier`, default 1080p).
    pub max_rung: u32,
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

pub fn plan(info: &MediaInfo, limits: &Limits) -> Result<Plan, PlanError> {
    let duration = info.duration.unwrap_or(0.0);
    if duration <= 0.0 {
        return Err(PlanError::NoDuration);
    }
    if duration > limits.max_duration_secs as f64 {
        return Err(PlanError::TooLong(duration, limits.max_duration_secs));
    }
    let has_audio = !info.audio.is_empty();
    let audio_channels = info.audio.first().map_or(2, |a| a.channels.clamp(1, 2));
    let Some(video) = &info.video else {
        return Ok(Plan {
            rungs: Vec::new(),
            fps: 0,
            gop: 0,
            has_audio,
            audio_channels,
            source_streamable: false,
            frames: 0,
            normalize_audio: false,
            test: false,
            overlay: None,
        });
    };
    let (w, h) = video.display_size();
    if w.max(h) > limits.max_dimension {
        return Err(PlanError::TooLarge(w, h, limits.max_dimension));
    }
    let source_fps = video.frame_rate.filter(|f| *f >= 1.0).unwrap_or(30.0);
    let fps = (source_fps.round() as u32).clamp(1, 60);
    let frames = video.frames.unwrap_or((duration * source_fps) as u64);
    if frames > limits.max_frames {
        return Err(PlanError::TooManyFrames(frames, limits.max_frames));
    }
    let short = w.min(h);
    let landscape = w >= h;
    let fps_factor = if fps > 30 { 1.5 } else { 1.0 };
    let mut rungs: Vec<Rung> = LADDER
        .iter()
        .filter(|(side, _)| *side <= short && *side <= limits.max_rung)
        .map(|(side, rate)| {
            let long = even(*side as f64 * w.max(h) as f64 / short as f64);
            let (width, height) = if landscape {
                (long, *side)
            } else {
                (*side, long)
            };
            Rung {
                name: format!("{side}p"),
                width,
                height,
                maxrate_kbps: (*rate as f64 * fps_factor) as u32,
                level: h264_level(width, height, fps),
            }
        })
        .collect();
    if rungs.is_empty() {
        // Smaller than the lowest rung: one rung at the source size (made even), never upscaled.
        let (width, height) = (even(w as f64 - 1.0), even(h as f64 - 1.0));
        rungs.push(Rung {
            name: format!("{}p", width.min(height)),
            width,
            height,
            maxrate_kbps: 400,
            level: h264_level(width, height, fps),
        });
    }
    // Remuxed audio must already be what the ladder produces: AAC, mono or stereo (the ladder
    // keeps the source's channel count, so every rung switches without a change of layout).
    let audio_ok = info
        .audio
        .first()
        .is_none_or(|a| a.codec == "aac" && (1..=2).contains(&a.channels));
    let source_streamable = video.codec == "h264"
        && video.pix_fmt.as_deref() == Some("yuv420p")
        && video.rotation == 0
        && short <= limits.max_rung
        && w % 2 == 0
        && h % 2 == 0
        && video.frame_rate.is_some_and(|f| (1.0..=60.0).contains(&f))
        && audio_ok;
    Ok(Plan {
        rungs,
        fps,
        gop: fps * SEGMENT_SECS,
        has_audio,
        audio_channels,
        source_streamable,
        frames: ((duration * f64::from(fps)).round() as u64).max(1),
        normalize_audio: false,
        test: false,
        overlay: None,
    })
}

/// The HLS `CODECS` entry for an H.264 stream, from ffprobe's profile name and level.
pub fn avc_codec_string(profile: Option<&str>, level: Option<i32>) -> String {
    let (profile_idc, constraints) = match profile.unwrap_or("High") {
        "Constrained Baseline" => (0x42, 0xE0),
        "Baseline" => (0x42, 0x00),
        "Main" => (0x4D, 0x40),
        "Extended" => (0x58, 0x00),
        "High 10" | "High 10 Intra" => (0x6E, 0x00),
        "High 4:2:2" | "High 4:2:2 Intra" => (0x7A, 0x00),
        "High 4:4:4 Predictive" | "High 4:4:4 Intra" => (0xF4, 0x00),
        _ => (0x64, 0x00),
    };
    format!(
        "avc1.{profile_idc:02x}{constraints:02x}{:02x}",
        level.unwrap_or(40).clamp(0, 255)
    )
}

/// The HLS `CODECS` entry for AAC.
pub fn aac_codec_string(profile: Option<&str>) -> &'static str {
    match profile {
        Some("HE-AAC") => "mp4a.40.5",
        Some("HE-AACv2") => "mp4a.40.29",
        _ => "mp4a.40.2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_geometry_follows_mux_settings() {
        use crate::assets::model::{Overlay, OverlayLength};
        assert_eq!(
            OverlayLength::parse("10%"),
            Some(OverlayLength::Percent(10.0))
        );
        assert_eq!(
            OverlayLength::parse("20px"),
            Some(OverlayLength::Pixels(20))
        );
        for bad in ["", "10", "101%", "-1%", "px", "1e9px", "%"] {
            assert_eq!(OverlayLength::parse(bad), None, "{bad:?}");
        }
        let overlay = Overlay {
            url: "http://x/mark.png".into(),
            vertical_align: "bottom".into(),
            vertical_margin: Some(OverlayLength::Percent(10.0)),
            horizontal_align: "right".into(),
            horizontal_margin: Some(OverlayLength::Pixels(7)),
            width: Some(OverlayLength::Percent(25.0)),
            height: None,
            opacity: 0.5,
        };
        let p = OverlayPlan::new(&overlay, 1280, 720);
        assert_eq!((p.width, p.height), (Some(320), None));
        assert_eq!(p.x, "main_w-overlay_w-7");
        assert_eq!(p.y, "main_h-overlay_h-72");
        let centred = OverlayPlan::new(
            &Overlay {
                vertical_align: "middle".into(),
                horizontal_align: "center".into(),
                ..overlay
            },
            1280,
            720,
        );
        assert_eq!(
            (centred.x.as_str(), centred.y.as_str()),
            ("(main_w-overlay_w)/2", "(main_h-overlay_h)/2")
        );
    }
    use crate::media::probe::{AudioStream, VideoStream};

    fn info(w: u32, h: u32, fps: Option<f64>, rotation: i32, codec: &str) -> MediaInfo {
        MediaInfo {
            duration: Some(10.0),
            format_name: "mov".into(),
            video: Some(VideoStream {
                codec: codec.into(),
                width: w,
                height: h,
                rotation,
                frame_rate: fps,
                pix_fmt: Some("yuv420p".into()),
                duration: Some(10.0),
                profile: Some("High".into()),
                level: Some(40),
                bit_rate: None,
                frames: None,
            }),
            audio: vec![AudioStream {
                codec: "aac".into(),
                channels: 2,
                channel_layout: None,
                sample_rate: Some(48000),
                duration: None,
                profile: None,
            }],
        }
    }

    const LIMITS: Limits = Limits {
        max_duration_secs: 3600,
        max_dimension: 4096,
        max_frames: 1_000_000,
        max_rung: 1080,
    };

    #[test]
    fn ladder_never_upscales_and_keeps_aspect() {
        let p = plan(&info(1920, 1080, Some(29.97), 0, "h264"), &LIMITS).unwrap();
        let names: Vec<_> = p.rungs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["1080p", "720p", "540p", "360p", "270p"]);
        assert_eq!((p.rungs[1].width, p.rungs[1].height), (1280, 720));
        assert_eq!((p.rungs[4].width, p.rungs[4].height), (480, 270));
        assert_eq!((p.fps, p.gop), (30, 120));
        assert!(p.source_streamable);
    }

    #[test]
    fn segments_and_codecs_are_known_before_encoding() {
        let mut i = info(1920, 1080, Some(30.0), 0, "h264");
        i.duration = Some(9.5);
        let p = plan(&i, &LIMITS).unwrap();
        assert_eq!(p.frames, 285);
        assert_eq!(p.segment_durations(), [4.0, 4.0, 1.5]);
        let m3u8 = p.media_playlist();
        assert!(m3u8.contains("#EXT-X-PLAYLIST-TYPE:VOD") && m3u8.ends_with("#EXT-X-ENDLIST\n"));
        assert!(m3u8.contains("#EXTINF:1.500000,\nseg_00002.ts\n"), "{m3u8}");
        let levels: Vec<u8> = p.rungs.iter().map(|r| r.level).collect();
        assert_eq!(levels, [40, 31, 31, 30, 30]);
        assert_eq!(p.codecs(&p.rungs[0]), "avc1.640028,mp4a.40.2");
        assert_eq!(p.estimated_bandwidth(&p.rungs[1]), 2_928_000);
        i.duration = Some(8.0);
        let p = plan(&i, &LIMITS).unwrap();
        assert_eq!(p.segment_durations(), [4.0, 4.0], "no empty last segment");
        assert_eq!(h264_level(1920, 1080, 60), 42);
        assert_eq!(h264_level(3840, 2160, 30), 51);
        // Property: the planned durations always sum to the frames' duration.
        for ms in (40..200_000).step_by(997) {
            i.duration = Some(f64::from(ms) / 1000.0);
            for fps in [24.0, 25.0, 29.97, 50.0, 60.0] {
                i.video.as_mut().unwrap().frame_rate = Some(fps);
                let p = plan(&i, &LIMITS).unwrap();
                let sum: f64 = p.segment_durations().iter().sum();
                assert!((sum - p.frames as f64 / f64::from(p.fps)).abs() < 1e-6);
                assert!((sum - f64::from(ms) / 1000.0).abs() <= 0.5 / f64::from(p.fps) + 1e-9);
                assert!(p.segment_durations().iter().all(|d| *d > 0.0 && *d <= 4.0));
            }
        }
    }

    #[test]
    fn only_mono_or_stereo_aac_sources_are_remuxed() {
        let mut mono = info(1280, 720, Some(30.0), 0, "h264");
        mono.audio[0].channels = 1;
        let p = plan(&mono, &LIMITS).unwrap();
        assert!(p.source_streamable);
        assert_eq!(p.audio_channels, 1);
        let mut surround = info(1280, 720, Some(30.0), 0, "h264");
        surround.audio[0].channels = 6;
        let p = plan(&surround, &LIMITS).unwrap();
        assert!(!p.source_streamable);
        assert_eq!(p.audio_channels, 2);
        let mut opus = info(1280, 720, Some(30.0), 0, "h264");
        opus.audio[0].codec = "opus".into();
        assert!(!plan(&opus, &LIMITS).unwrap().source_streamable);
        let mut silent = info(1280, 720, Some(30.0), 0, "h264");
        silent.audio.clear();
        assert!(plan(&silent, &LIMITS).unwrap().source_streamable);
    }

    #[test]
    fn portrait_rotated_and_odd_inputs() {
        let p = plan(&info(1280, 720, Some(30.0), 90, "h264"), &LIMITS).unwrap();
        assert_eq!((p.rungs[0].width, p.rungs[0].height), (720, 1280));
        assert!(!p.source_streamable, "rotation needs an encode");
        let p = plan(&info(101, 75, None, 0, "vp9"), &LIMITS).unwrap();
        assert_eq!(p.rungs.len(), 1);
        assert_eq!((p.rungs[0].width % 2, p.rungs[0].height % 2), (0, 0));
        assert!(p.rungs[0].width <= 101 && p.rungs[0].height <= 75);
        assert_eq!(p.fps, 30, "unknown frame rate falls back to 30");
        let p = plan(&info(3840, 2160, Some(60.0), 0, "h264"), &LIMITS).unwrap();
        assert_eq!(p.rungs[0].name, "1080p", "capped at max_rung");
        assert!(!p.source_streamable);
    }

    #[test]
    fn limits_are_enforced() {
        let mut long = info(640, 360, Some(30.0), 0, "h264");
        long.duration = Some(7200.0);
        assert!(matches!(plan(&long, &LIMITS), Err(PlanError::TooLong(..))));
        assert!(matches!(
            plan(&info(8000, 4000, Some(30.0), 0, "h264"), &LIMITS),
            Err(PlanError::TooLarge(..))
        ));
        let mut frames = info(640, 360, Some(30.0), 0, "h264");
        frames.video.as_mut().unwrap().frames = Some(2_000_000);
        assert!(matches!(
            plan(&frames, &LIMITS),
            Err(PlanError::TooManyFrames(..))
        ));
    }

    #[test]
    fn codec_strings() {
        assert_eq!(avc_codec_string(Some("High"), Some(31)), "avc1.64001f");
        assert_eq!(avc_codec_string(Some("Main"), Some(30)), "avc1.4d401e");
        assert_eq!(
            avc_codec_string(Some("Constrained Baseline"), Some(30)),
            "avc1.42e01e"
        );
        assert_eq!(aac_codec_string(Some("LC")), "mp4a.40.2");
    }
}
