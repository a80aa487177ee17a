//! Tencent's preset transcoding templates: H.264, 25 fps, AAC stereo 44.1 kHz; height fixed, width
//! proportional. MP4 ids 100010..100080 and HLS ids 100210..100280.

/// `(definition, name, container, height, video kbps, audio kbps)`.
pub const PRESETS: &[(u32, &str, &str, u32, u32, u32)] = &[
    (100010, "MP4-FLU", "mp4", 360, 400, 64),
    (100020, "MP4-SD", "mp4", 540, 1000, 64),
    (100030, "MP4-HD", "mp4", 720, 1800, 128),
    (100040, "MP4-FHD", "mp4", 1080, 2500, 128),
    (100070, "MP4-2K", "mp4", 1440, 3000, 160),
    (100080, "MP4-4K", "mp4", 2160, 6000, 160),
    (100210, "HLS-FLU", "hls", 360, 400, 64),
    (100220, "HLS-SD", "hls", 540, 1000, 64),
    (100230, "HLS-HD", "hls", 720, 1800, 128),
    (100240, "HLS-FHD", "hls", 1080, 2500, 128),
    (100270, "HLS-2K", "hls", 1440, 3000, 160),
    (100280, "HLS-4K", "hls", 2160, 6000, 160),
];

pub const FPS: u32 = 25;

/// The processing outputs of a list of MP4 template ids (a configured task flow).
pub fn procedure(definitions: &[u32]) -> Result<Vec<crate::processing::OutputRequest>, String> {
    definitions
        .iter()
        .map(|d| match find(*d) {
            Some((preset, _, "mp4", height, video_kbps, audio_kbps)) => {
                Ok(crate::processing::OutputRequest::Mp4 {
                    preset,
                    height,
                    video_kbps,
                    audio_kbps,
                    fps: FPS,
                    hls: false,
                })
            }
            _ => Err(format!("{d} is not an MP4 preset template (100010-100080)")),
        })
        .collect()
}

pub fn find(definition: u32) -> Option<(u32, &'static str, &'static str, u32, u32, u32)> {
    PRESETS.iter().copied().find(|p| p.0 == definition)
}
