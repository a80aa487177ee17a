//! Core asset types. They are stored as rows/JSON by `db` and rendered by each compat adapter;
//! none of them is a wire type.

use serde::{Deserialize, Serialize};

use crate::media::probe::MediaInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaybackPolicy {
    Public,
    Signed,
}

impl PlaybackPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PlaybackPolicy::Public => "public",
            PlaybackPolicy::Signed => "signed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(PlaybackPolicy::Public),
            "signed" => Some(PlaybackPolicy::Signed),
            _ => None,
        }
    }
}

/// What the asset's creator asked for; copied from an upload's `new_asset_settings`.
/// Enum-like fields keep the client's own spelling so adapters can echo exactly what was requested.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssetSettings {
    pub playback_policies: Vec<PlaybackPolicy>,
    pub passthrough: Option<String>,
    /// Legacy `mp4_support` value (`none`, `standard`, `capped-1080p`, ...).
    pub mp4_support: Option<String>,
    /// Requested static rendition resolutions (`highest`, `audio-only`, `720p`, ...).
    pub static_renditions: Vec<String>,
    pub video_quality: Option<String>,
    pub max_resolution_tier: Option<String>,
    pub test: bool,
    /// Mux's `normalize_audio`: the audio is brought to EBU R128's −23 LUFS in the encode.
    #[serde(default)]
    pub normalize_audio: bool,
    /// Title and the caller's own ids; stored as `$.meta` of the `settings` JSON (list filters and
    /// their indexes read `$.meta.external_id` and `$.meta.creator_id`).
    #[serde(default)]
    pub meta: AssetMeta,
    /// A cover image uploaded with the media (Tencent VOD's `CoverType`), as a store key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_key: Option<String>,
    /// Processing to run once the file is probed (a Tencent VOD task flow named at upload), instead
    /// of the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<AssetProcedure>,
    /// Unix time at which the asset is deleted (Tencent VOD's media `ExpireTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<i64>,
    /// The part of the source asset a clip (`mux://assets/{id}` input) takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipRange>,
    /// A watermark burned into every rendition (Mux's `overlay_settings` input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
    /// Tracks to add when the asset is created (Mux's `input[]` entries of `type: text` or
    /// `audio`). Stored as `text_tracks`, the name from before audio tracks.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "text_tracks")]
    pub tracks: Vec<TrackInput>,
}

/// A length of Mux's overlay settings: a share of the video's size, or pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlayLength {
    Percent(f64),
    Pixels(u32),
}

impl OverlayLength {
    /// `"10%"` or `"20px"` (Mux's forms).
    pub fn parse(s: &str) -> Option<OverlayLength> {
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().ok()?;
            return (0.0..=100.0)
                .contains(&p)
                .then_some(OverlayLength::Percent(p));
        }
        let px: u32 = s.strip_suffix("px")?.trim().parse().ok()?;
        (px <= 16_384).then_some(OverlayLength::Pixels(px))
    }

    /// In pixels of a side `of` pixels long.
    pub fn pixels(self, of: u32) -> u32 {
        match self {
            OverlayLength::Percent(p) => (f64::from(of) * p / 100.0).round() as u32,
            OverlayLength::Pixels(px) => px,
        }
    }
}

/// Where and how a watermark image (fetched from `url` into `Asset::overlay_key`) is drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overlay {
    pub url: String,
    /// `top`, `middle` or `bottom`.
    pub vertical_align: String,
    pub vertical_margin: Option<OverlayLength>,
    /// `left`, `center` or `right`.
    pub horizontal_align: String,
    pub horizontal_margin: Option<OverlayLength>,
    pub width: Option<OverlayLength>,
    pub height: Option<OverlayLength>,
    /// 0 (invisible) to 1 (opaque).
    pub opacity: f64,
}

/// Inputs naming another asset: Mux's clips.
pub const CLIP_URL_PREFIX: &str = "mux://assets/";

/// Mux's `start_time`/`end_time` of a clip, in seconds of the source asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClipRange {
    pub start_secs: Option<f64>,
    pub end_secs: Option<f64>,
}

/// What a track holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Subtitles (WebVTT or SRT in), played as an HLS `SUBTITLES` group.
    #[default]
    Text,
    /// Another language's audio (any file ffmpeg reads), encoded to AAC segments and played as
    /// an alternate rendition of the HLS `AUDIO` group.
    Audio,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Text => "text",
            TrackKind::Audio => "audio",
        }
    }
}

/// A track asked for: a subtitle or audio file at `url`, fetched and prepared by a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInput {
    /// Absent in rows from before audio tracks: text.
    #[serde(default)]
    pub kind: TrackKind,
    pub url: String,
    /// BCP 47 language tag (`en`, `fr-CA`).
    pub language_code: String,
    /// Shown in players' menus; defaults to the language code.
    pub name: String,
    /// Captions for the deaf and hard of hearing (sounds described), not only dialogue (text
    /// tracks only).
    pub closed_captions: bool,
    pub passthrough: Option<String>,
}

impl TrackInput {
    pub const MAX_NAME_LEN: usize = 256;
    pub const MAX_PASSTHROUGH_LEN: usize = 255;

    /// Checks the fields; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let lang = &self.language_code;
        // BCP 47's shape: letters, digits and hyphens, a 2-8 letter primary subtag.
        let primary = lang.split('-').next().unwrap_or_default();
        if !(2..=8).contains(&primary.len())
            || !primary.bytes().all(|b| b.is_ascii_alphabetic())
            || lang.len() > 35
            || !lang.split('-').all(|t| {
                !t.is_empty() && t.len() <= 8 && t.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        {
            return Err(format!(
                "language_code: {lang:?} is not a BCP 47 language tag such as \"en\" or \"fr-CA\""
            ));
        }
        if self.name.chars().count() > Self::MAX_NAME_LEN || self.name.contains(['"', '\n', '\r']) {
            return Err(format!(
                "name: must be at most {} characters, without quotes or line breaks",
                Self::MAX_NAME_LEN
            ));
        }
        if self
            .passthrough
            .as_ref()
            .is_some_and(|p| p.chars().count() > Self::MAX_PASSTHROUGH_LEN)
        {
            return Err(format!(
                "passthrough: must be at most {} characters",
                Self::MAX_PASSTHROUGH_LEN
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackStatus {
    Preparing,
    Ready,
    Errored,
}

impl TrackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackStatus::Preparing => "preparing",
            TrackStatus::Ready => "ready",
            TrackStatus::Errored => "errored",
        }
    }
}

/// A track of an asset besides its own picture and sound: subtitles stored normalized as WebVTT
/// at `Asset::text_key`, or audio stored as HLS segments under `Asset::audio_track_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    pub id: String,
    pub input: TrackInput,
    pub status: TrackStatus,
    /// Why the file was refused, when `errored`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A change to an asset's editable fields; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssetChange {
    pub passthrough: Option<String>,
    /// Applied with `AssetMeta::updated_with`.
    pub meta: Option<AssetMeta>,
    pub cover_key: Option<String>,
    /// `Some(None)` removes the expiry.
    pub expire_at: Option<Option<i64>>,
    /// The static files asked for (`static_renditions` resolutions, and `mp4_support`).
    pub static_renditions: Option<Vec<String>>,
    pub mp4_support: Option<Option<String>>,
}

impl AssetChange {
    pub fn is_empty(&self) -> bool {
        *self == AssetChange::default()
    }

    /// The asset's settings and passthrough with the change applied.
    pub fn apply(&self, asset: &mut Asset) {
        if let Some(passthrough) = &self.passthrough {
            asset.passthrough = Some(passthrough.clone());
        }
        if let Some(meta) = &self.meta {
            asset.settings.meta = asset.settings.meta.updated_with(meta);
        }
        if let Some(cover) = &self.cover_key {
            asset.settings.cover_key = Some(cover.clone());
        }
        if let Some(expire_at) = self.expire_at {
            asset.settings.expire_at = expire_at;
        }
        if let Some(resolutions) = &self.static_renditions {
            asset.settings.static_renditions = resolutions.clone();
        }
        if let Some(mp4_support) = &self.mp4_support {
            asset.settings.mp4_support = mp4_support.clone();
        }
    }
}

/// Outputs to make from a new file, and the context its task and events carry (`SessionContext`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetProcedure {
    pub outputs: Vec<crate::processing::OutputRequest>,
    pub context: serde_json::Value,
}

/// Descriptive metadata set by the asset's owner: a title and two ids of the caller's own (who made
/// it, what it is in the caller's system). Fields are never empty strings: unset is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// A longer text about the video (Tencent VOD's `Description`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl AssetMeta {
    /// Longest `title`, in Unicode code points.
    pub const MAX_TITLE_LEN: usize = 512;
    /// Longest `description`, in Unicode code points.
    pub const MAX_DESCRIPTION_LEN: usize = 4096;
    /// Longest `creator_id` and `external_id`, in Unicode code points.
    pub const MAX_ID_LEN: usize = 128;

    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.creator_id.is_none()
            && self.external_id.is_none()
            && self.description.is_none()
    }

    /// Checks the length limits; the error names the field (`title: ...`).
    pub fn validate(&self) -> Result<(), String> {
        for (name, value, max) in [
            ("title", &self.title, Self::MAX_TITLE_LEN),
            ("creator_id", &self.creator_id, Self::MAX_ID_LEN),
            ("external_id", &self.external_id, Self::MAX_ID_LEN),
            ("description", &self.description, Self::MAX_DESCRIPTION_LEN),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > max) {
                return Err(format!("{name}: must be at most {max} characters"));
            }
        }
        Ok(())
    }

    /// `self` with the fields `update` gives replaced: `Some("")` clears a field, `None` keeps it.
    pub fn updated_with(&self, update: &AssetMeta) -> AssetMeta {
        let pick = |old: &Option<String>, new: &Option<String>| match new {
            None => old.clone(),
            Some(v) if v.is_empty() => None,
            Some(v) => Some(v.clone()),
        };
        AssetMeta {
            title: pick(&self.title, &update.title),
            creator_id: pick(&self.creator_id, &update.creator_id),
            external_id: pick(&self.external_id, &update.external_id),
            description: pick(&self.description, &update.description),
        }
    }
}

/// Which assets a listing returns; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetFilter {
    pub upload_id: Option<String>,
    /// `meta.external_id`, exactly.
    pub external_id: Option<String>,
    /// `meta.creator_id`, exactly.
    pub creator_id: Option<String>,
    pub status: Option<AssetStatus>,
    /// Part of `meta.title`, ignoring ASCII case.
    pub title_contains: Option<String>,
    /// Created at or after / at or before these Unix times.
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// Oldest first (the default is newest first).
    pub oldest_first: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetStatus {
    Preparing,
    Ready,
    Errored,
}

impl AssetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetStatus::Preparing => "preparing",
            AssetStatus::Ready => "ready",
            AssetStatus::Errored => "errored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "preparing" => Some(AssetStatus::Preparing),
            "ready" => Some(AssetStatus::Ready),
            "errored" => Some(AssetStatus::Errored),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestType {
    DirectUpload,
    Url,
    /// Cut from another asset (`mux://assets/{id}`).
    Clip,
}

impl IngestType {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestType::DirectUpload => "direct_upload",
            IngestType::Url => "url",
            IngestType::Clip => "clip",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct_upload" => Some(IngestType::DirectUpload),
            "url" => Some(IngestType::Url),
            "clip" => Some(IngestType::Clip),
            _ => None,
        }
    }
}

/// Why an asset failed, in words an app developer can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetErrors {
    /// Mux-style error type: `invalid_input`, `download_failed`, `internal_error`.
    pub kind: String,
    pub messages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybackId {
    pub id: String,
    pub policy: PlaybackPolicy,
}

/// Serialized only for storage (event snapshots), never as a wire format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Asset {
    pub id: String,
    /// A numeric string, unique per asset: the id Tencent VOD clients know it by.
    #[serde(default)]
    pub file_id: String,
    pub status: AssetStatus,
    pub created_at: i64,
    pub upload_id: Option<String>,
    pub passthrough: Option<String>,
    pub settings: AssetSettings,
    pub ingest_type: IngestType,
    pub input_url: Option<String>,
    /// ffprobe's view of the original, once probed.
    pub source: Option<MediaInfo>,
    pub errors: Option<AssetErrors>,
    /// Storage key and size of the original bytes exactly as received.
    pub original: Option<StoredOriginal>,
    /// Unix time until which the master (original) download URL is handed out.
    pub master_access_until: Option<i64>,
    pub playback_ids: Vec<PlaybackId>,
    /// Published HLS renditions, highest first.
    pub renditions: Vec<Rendition>,
    /// Published static MP4/M4A files.
    pub static_files: Vec<StaticFile>,
    /// Text and audio tracks, in the order they were added (stored as `text_tracks`).
    #[serde(default, alias = "text_tracks")]
    pub tracks: Vec<Track>,
    /// The pipeline has published everything it will produce for this asset.
    pub outputs_complete: bool,
}

/// One HLS variant stream, stored under `assets/{asset_id}/hls/{name}/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    pub name: String,
    /// Zero for the audio-only rendition.
    pub width: u32,
    pub height: u32,
    /// Peak segment bit rate (bit/s), as HLS `BANDWIDTH` wants it.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    /// HLS `CODECS`, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    pub frame_rate: Option<f64>,
    /// Published from the plan before it was encoded: its playlist is final, some of its segments
    /// may not exist yet (readers wait for them), and a rerun after a crash produces the rest.
    #[serde(default, alias = "growing")]
    pub pending: bool,
}

/// A downloadable file such as `highest.mp4` or `audio.m4a`, stored under `assets/{asset_id}/static/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticFile {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate: u64,
    pub filesize: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOriginal {
    pub key: String,
    pub size: u64,
}

impl Asset {
    /// The asset a clip was cut from (its input is `mux://assets/{id}`).
    pub fn clip_source(&self) -> Option<&str> {
        self.input_url
            .as_deref()
            .and_then(|u| u.strip_prefix(CLIP_URL_PREFIX))
            .filter(|_| self.ingest_type == IngestType::Clip)
    }

    pub fn original_key(asset_id: &str) -> String {
        format!("assets/{asset_id}/original")
    }

    pub fn media_prefix(asset_id: &str) -> String {
        format!("assets/{asset_id}/")
    }

    pub fn hls_key(asset_id: &str, rendition: &str, file: &str) -> String {
        format!("assets/{asset_id}/hls/{rendition}/{file}")
    }

    pub fn static_key(asset_id: &str, file: &str) -> String {
        format!("assets/{asset_id}/static/{file}")
    }

    /// The watermark image of an asset with an overlay, as fetched.
    pub fn overlay_key(asset_id: &str) -> String {
        format!("assets/{asset_id}/overlay")
    }

    /// A text track's subtitles, normalized to WebVTT.
    pub fn text_key(asset_id: &str, track_id: &str) -> String {
        format!("assets/{asset_id}/text/{track_id}.vtt")
    }

    /// A file (`index.m3u8`, `seg_NNNNN.ts`) of an audio track's HLS rendition; `""` for the
    /// track's folder.
    pub fn audio_track_key(asset_id: &str, track_id: &str, file: &str) -> String {
        format!("assets/{asset_id}/audio/{track_id}/{file}")
    }

    /// Intermediate files shared by the workers of a split transcode (removed when it ends).
    pub fn work_key(asset_id: &str, file: &str) -> String {
        format!("assets/{asset_id}/work/{file}")
    }
}
