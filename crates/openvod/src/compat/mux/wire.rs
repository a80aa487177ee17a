//! Mux request and response bodies, and their conversion to and from core types.
//! Requests accept Mux's deprecated aliases and string-or-array forms; responses emit only enum values
//! the SDKs accept.

use serde::{Deserialize, Serialize};

use crate::assets::model::{
    Asset, AssetMeta, AssetSettings, AssetStatus, IngestType, Overlay, OverlayLength, PlaybackId,
    PlaybackPolicy, Track, TrackInput, TrackKind,
};
use crate::ingest::model::Upload;
use crate::media::probe::MediaInfo;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s],
            StringOrList::Many(v) => v,
        }
    }
}

/// One entry of Mux's `input[]`, also the body of `POST /video/v1/assets/{id}/tracks`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct InputSettings {
    pub url: Option<String>,
    /// `video` (the main input, the default for the first entry), `text` or `audio`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text_type: Option<String>,
    pub language_code: Option<String>,
    pub name: Option<String>,
    pub closed_captions: Option<bool>,
    pub passthrough: Option<String>,
    /// Clipping (`mux://assets/{id}` inputs only), in seconds of the source.
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    /// A watermark: this entry's `url` is an image drawn over the video.
    pub overlay_settings: Option<OverlaySettingsRequest>,
    /// Anything else: refused by name when set.
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl InputSettings {
    /// A `type: text` or `type: audio` entry as a track to fetch; `prefix` names the entry in
    /// errors.
    pub fn into_track(self, prefix: &str) -> Result<TrackInput, String> {
        refuse_unsupported(prefix, &self.other)?;
        if self.overlay_settings.is_some() {
            return Err(format!(
                "{prefix}overlay_settings: a watermark is an input of a new asset, not a track"
            ));
        }
        if self.start_time.is_some() || self.end_time.is_some() {
            return Err(format!(
                "{prefix}start_time: only the first input (an asset to clip) takes start_time and end_time"
            ));
        }
        let kind = match self.kind.as_deref() {
            Some("text") => TrackKind::Text,
            Some("audio") => TrackKind::Audio,
            other => {
                return Err(format!(
                    "{prefix}type: must be \"text\" or \"audio\" for a track (got {other:?})"
                ))
            }
        };
        match (kind, self.text_type.as_deref()) {
            (TrackKind::Text, None | Some("subtitles")) | (TrackKind::Audio, None) => {}
            (TrackKind::Text, Some(other)) => {
                return Err(format!(
                    "{prefix}text_type: must be \"subtitles\" (got {other:?})"
                ))
            }
            (TrackKind::Audio, Some(_)) => {
                return Err(format!("{prefix}text_type: only for text tracks"))
            }
        }
        if kind == TrackKind::Audio && self.closed_captions.is_some() {
            return Err(format!("{prefix}closed_captions: only for text tracks"));
        }
        let url = self
            .url
            .filter(|u| !u.is_empty())
            .ok_or_else(|| match kind {
                TrackKind::Text => {
                    format!("{prefix}url: the URL of a WebVTT or SRT file is required")
                }
                TrackKind::Audio => format!("{prefix}url: the URL of an audio file is required"),
            })?;
        let language_code = self.language_code.ok_or_else(|| {
            format!(
                "{prefix}language_code: required for a {} track (e.g. \"en\")",
                kind.as_str()
            )
        })?;
        let input = TrackInput {
            kind,
            url,
            name: self
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| language_code.clone()),
            language_code,
            closed_captions: self.closed_captions.unwrap_or(false),
            passthrough: self.passthrough,
        };
        input.validate().map_err(|e| format!("{prefix}{e}"))?;
        Ok(input)
    }
}

/// Mux's `overlay_settings`; lengths as `"10%"` or `"20px"`, opacity as `"90%"`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct OverlaySettingsRequest {
    pub vertical_align: Option<String>,
    pub vertical_margin: Option<String>,
    pub horizontal_align: Option<String>,
    pub horizontal_margin: Option<String>,
    pub width: Option<String>,
    pub height: Option<String>,
    pub opacity: Option<String>,
    /// Unknown settings: refused by name.
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl OverlaySettingsRequest {
    fn into_overlay(self, url: Option<String>, prefix: &str) -> Result<Overlay, String> {
        refuse_unsupported(&format!("{prefix}overlay_settings."), &self.other)?;
        let url = url
            .filter(|u| !u.is_empty())
            .ok_or_else(|| format!("{prefix}url: the URL of the watermark image is required"))?;
        let length = |name: &str, v: Option<String>| {
            v.map(|v| {
                OverlayLength::parse(&v).ok_or_else(|| {
                    format!("{prefix}overlay_settings.{name}: {v:?} is not a length like \"10%\" or \"20px\"")
                })
            })
            .transpose()
        };
        let align = |name: &str, v: Option<String>, allowed: &[&str]| {
            let v = v.unwrap_or_else(|| allowed[0].to_owned());
            if allowed.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(format!(
                    "{prefix}overlay_settings.{name}: {v:?} is not one of {allowed:?}"
                ))
            }
        };
        let opacity = match self.opacity {
            None => 1.0,
            Some(v) => match OverlayLength::parse(&v) {
                Some(OverlayLength::Percent(p)) => p / 100.0,
                _ => {
                    return Err(format!(
                        "{prefix}overlay_settings.opacity: {v:?} is not a percentage like \"90%\""
                    ))
                }
            },
        };
        Ok(Overlay {
            url,
            vertical_align: align("vertical_align", self.vertical_align, VERTICAL_ALIGN)?,
            vertical_margin: length("vertical_margin", self.vertical_margin)?,
            horizontal_align: align("horizontal_align", self.horizontal_align, HORIZONTAL_ALIGN)?,
            horizontal_margin: length("horizontal_margin", self.horizontal_margin)?,
            width: length("width", self.width)?,
            height: length("height", self.height)?,
            opacity,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Inputs {
    Url(String),
    Many(Vec<InputSettings>),
    One(Box<InputSettings>),
}

impl Inputs {
    /// The main input's URL (the first entry, unless it is a track: an upload's settings may list
    /// only tracks) and the text and audio tracks the other entries ask for.
    fn parse(self, prefix: &str) -> Result<ParsedInputs, String> {
        let inputs = match self {
            Inputs::Url(url) => {
                return Ok(ParsedInputs {
                    url: Some(url),
                    ..ParsedInputs::default()
                })
            }
            Inputs::One(input) => vec![*input],
            Inputs::Many(inputs) => inputs,
        };
        let mut parsed = ParsedInputs::default();
        for (i, mut input) in inputs.into_iter().enumerate() {
            let at = format!("{prefix}input[{i}].");
            if let Some(settings) = input.overlay_settings.take() {
                refuse_unsupported(&at, &input.other)?;
                if parsed.overlay.is_some() {
                    return Err(format!("{at}overlay_settings: one watermark per asset"));
                }
                parsed.overlay = Some(settings.into_overlay(input.url, &at)?);
                continue;
            }
            match input.kind.as_deref() {
                None | Some("video") if i == 0 => {
                    refuse_unsupported(&at, &input.other)?;
                    for (name, set) in [
                        ("text_type", input.text_type.is_some()),
                        ("language_code", input.language_code.is_some()),
                        ("closed_captions", input.closed_captions.is_some()),
                    ] {
                        if set {
                            return Err(format!("{at}{name}: only for inputs of type \"text\""));
                        }
                    }
                    if input.start_time.is_some() || input.end_time.is_some() {
                        if !input
                            .url
                            .as_deref()
                            .is_some_and(|u| u.starts_with(crate::assets::model::CLIP_URL_PREFIX))
                        {
                            return Err(format!(
                                "{at}start_time: clipping takes an asset as input: mux://assets/{{asset_id}}"
                            ));
                        }
                        parsed.clip = Some(crate::assets::model::ClipRange {
                            start_secs: input.start_time,
                            end_secs: input.end_time,
                        });
                    }
                    parsed.url = input.url;
                }
                None | Some("video") => {
                    return Err(format!(
                        "{at}type: only the first input is the video; others are \"text\" or \"audio\" tracks"
                    ))
                }
                _ => parsed.tracks.push(input.into_track(&at)?),
            }
        }
        Ok(parsed)
    }
}

/// What `input[]` asks for: the main input, the part of it a clip takes, and tracks.
#[derive(Debug, Default)]
struct ParsedInputs {
    url: Option<String>,
    clip: Option<crate::assets::model::ClipRange>,
    overlay: Option<Overlay>,
    tracks: Vec<TrackInput>,
}

/// Mux's `meta` (`AssetMetadata`) in a request. Unlike the rest of a request, unknown keys are refused:
/// a misspelt key would otherwise be dropped without a word.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with optional string fields title, creator_id, external_id"
)]
pub struct MetaRequest {
    pub title: Option<String>,
    pub creator_id: Option<String>,
    pub external_id: Option<String>,
}

impl MetaRequest {
    /// The fields as given (an empty string stays, meaning "clear" in an update), with the limits
    /// checked; errors are prefixed with `prefix` (the path of the `meta` object, e.g. `meta.`).
    pub fn into_update(self, prefix: &str) -> Result<AssetMeta, String> {
        let meta = AssetMeta {
            title: self.title,
            creator_id: self.creator_id,
            external_id: self.external_id,
            ..AssetMeta::default()
        };
        meta.validate().map_err(|e| format!("{prefix}{e}"))?;
        Ok(meta)
    }

    /// The meta of a new asset: empty strings are unset fields.
    pub fn into_meta(self, prefix: &str) -> Result<AssetMeta, String> {
        Ok(AssetMeta::default().updated_with(&self.into_update(prefix)?))
    }
}

/// Mux's `meta` in a response: only the fields that are set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetaResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

impl MetaResponse {
    /// `None` (the key is left out, as Mux does) when no field is set.
    pub fn from_meta(meta: &AssetMeta) -> Option<MetaResponse> {
        (!meta.is_empty()).then(|| MetaResponse {
            title: meta.title.clone(),
            creator_id: meta.creator_id.clone(),
            external_id: meta.external_id.clone(),
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct StaticRenditionRequest {
    pub resolution: String,
}

/// `CreateAssetRequest`, also used as an upload's `new_asset_settings`. Unknown fields are ignored
/// (the SDKs send defaults such as `normalize_audio: false`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateAssetRequest {
    pub input: Option<Inputs>,
    pub inputs: Option<Inputs>,
    pub playback_policy: Option<StringOrList>,
    pub playback_policies: Option<StringOrList>,
    pub passthrough: Option<String>,
    pub mp4_support: Option<String>,
    pub static_renditions: Option<Vec<StaticRenditionRequest>>,
    pub video_quality: Option<String>,
    pub encoding_tier: Option<String>,
    pub max_resolution_tier: Option<String>,
    pub test: Option<bool>,
    pub meta: Option<MetaRequest>,
    pub normalize_audio: Option<bool>,
    /// Everything else: refused by name when set (see `refuse_unsupported`), never dropped.
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Fields of Mux's requests openvod does not do yet: a set one is refused by name rather than
/// dropped; unset ones (`null`, `false`, as SDKs send their defaults) pass.
fn refuse_unsupported(
    prefix: &str,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    // Mux's own defaults, which the SDKs send whatever the caller set (mux-python 5:
    // `copy_overlays: true`, meaningful only for clips).
    const DEFAULTS: &[(&str, bool)] = &[("copy_overlays", true)];
    for (name, value) in fields {
        let unset = matches!(
            value,
            serde_json::Value::Null | serde_json::Value::Bool(false)
        ) || DEFAULTS
            .iter()
            .any(|(default, v)| name == default && value.as_bool() == Some(*v));
        if !unset {
            return Err(format!(
                "{prefix}{name} is not supported by openvod yet (see the README's Mux API table)"
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateUploadRequest {
    pub timeout: Option<u64>,
    pub cors_origin: Option<String>,
    pub new_asset_settings: Option<CreateAssetRequest>,
    pub test: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateAssetRequest {
    pub passthrough: Option<String>,
    /// Replaces the fields it gives; an empty string clears a field, an absent one is kept.
    pub meta: Option<MetaRequest>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreatePlaybackIdRequest {
    pub policy: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateSigningKeyRequest {
    /// openvod extension: `HS256` makes a shared-secret key; Mux's default is `RS256`.
    pub algorithm: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SigningKeyResponse {
    pub id: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    pub algorithm: String,
}

impl SigningKeyResponse {
    pub fn new(key: &crate::playback::keys::SigningKey, private_key: Option<String>) -> Self {
        SigningKeyResponse {
            id: key.id.clone(),
            created_at: key.created_at.to_string(),
            private_key,
            algorithm: key.algorithm.clone(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateMasterAccessRequest {
    pub master_access: String,
}

const MP4_SUPPORT: &[&str] = &[
    "none",
    "standard",
    "capped-1080p",
    "audio-only",
    "audio-only,capped-1080p",
];
const RESOLUTIONS: &[&str] = &[
    "highest",
    "audio-only",
    "2160p",
    "1440p",
    "1080p",
    "720p",
    "540p",
    "480p",
    "360p",
    "270p",
];
const VIDEO_QUALITY: &[&str] = &["basic", "plus", "premium"];
const ENCODING_TIER: &[&str] = &["smart", "baseline", "premium"];
const MAX_RESOLUTION_TIER: &[&str] = &["1080p", "1440p", "2160p"];
const VERTICAL_ALIGN: &[&str] = &["top", "middle", "bottom"];
const HORIZONTAL_ALIGN: &[&str] = &["left", "center", "right"];

/// The request fields that take one of a few values, as (schema, property, values): checked here
/// by hand, and written into the OpenAPI document from this same table.
pub const ENUMERATED_FIELDS: &[(&str, &str, &[&str])] = &[
    ("CreateAssetRequest", "mp4_support", MP4_SUPPORT),
    ("CreateAssetRequest", "video_quality", VIDEO_QUALITY),
    ("CreateAssetRequest", "encoding_tier", ENCODING_TIER),
    (
        "CreateAssetRequest",
        "max_resolution_tier",
        MAX_RESOLUTION_TIER,
    ),
    ("StaticRenditionRequest", "resolution", RESOLUTIONS),
    ("InputSettings", "text_type", &["subtitles"]),
    ("OverlaySettingsRequest", "vertical_align", VERTICAL_ALIGN),
    (
        "OverlaySettingsRequest",
        "horizontal_align",
        HORIZONTAL_ALIGN,
    ),
];

/// The request fields with bounds, as (schema, property, minimum, maximum).
pub const BOUNDED_FIELDS: &[(&str, &str, Option<f64>, Option<f64>)] = &[
    (
        "CreateUploadRequest",
        "timeout",
        Some(crate::ingest::MIN_TIMEOUT_SECS as f64),
        Some(crate::ingest::MAX_TIMEOUT_SECS as f64),
    ),
    ("InputSettings", "start_time", Some(0.0), None),
    ("InputSettings", "end_time", Some(0.0), None),
];
pub const MAX_PASSTHROUGH_LEN: usize = 255;

fn one_of(field: &str, value: String, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(format!(
            "{field}: unknown value {value:?}; expected one of {}",
            allowed.join(", ")
        ))
    }
}

pub fn parse_policy(field: &str, value: &str) -> Result<PlaybackPolicy, String> {
    match PlaybackPolicy::parse(value) {
        Some(policy) => Ok(policy),
        None if value == "drm" => Err(format!("{field}: the drm playback policy is not supported")),
        None => Err(format!(
            "{field}: unknown value {value:?}; expected one of public, signed"
        )),
    }
}

pub fn check_passthrough(passthrough: Option<&str>) -> Result<(), String> {
    match passthrough {
        Some(p) if p.chars().count() > MAX_PASSTHROUGH_LEN => Err(format!(
            "passthrough: must be at most {MAX_PASSTHROUGH_LEN} characters"
        )),
        _ => Ok(()),
    }
}

impl CreateAssetRequest {
    /// Validates the request into core settings and the input URL, if any.
    pub fn into_settings(self, prefix: &str) -> Result<(AssetSettings, Option<String>), String> {
        let field = |name: &str| format!("{prefix}{name}");
        let mut playback_policies = Vec::new();
        for (name, list) in [
            ("playback_policy", self.playback_policy),
            ("playback_policies", self.playback_policies),
        ] {
            for value in list.map(StringOrList::into_vec).unwrap_or_default() {
                let policy = parse_policy(&field(name), &value)?;
                if !playback_policies.contains(&policy) {
                    playback_policies.push(policy);
                }
            }
        }
        check_passthrough(self.passthrough.as_deref()).map_err(|e| format!("{prefix}{e}"))?;
        let mp4_support = self
            .mp4_support
            .map(|v| one_of(&field("mp4_support"), v, MP4_SUPPORT))
            .transpose()?;
        let static_renditions = self
            .static_renditions
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                one_of(
                    &field("static_renditions[].resolution"),
                    r.resolution,
                    RESOLUTIONS,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if mp4_support.as_deref().is_some_and(|m| m != "none") && !static_renditions.is_empty() {
            return Err(format!(
                "{prefix}mp4_support and static_renditions cannot both be enabled; use static_renditions"
            ));
        }
        let encoding_tier = self
            .encoding_tier
            .map(|v| one_of(&field("encoding_tier"), v, ENCODING_TIER))
            .transpose()?;
        let video_quality = self
            .video_quality
            .map(|v| one_of(&field("video_quality"), v, VIDEO_QUALITY))
            .transpose()?
            .or_else(|| {
                encoding_tier.map(|tier| match tier.as_str() {
                    "baseline" => "basic".to_owned(),
                    "smart" => "plus".to_owned(),
                    _ => "premium".to_owned(),
                })
            });
        let max_resolution_tier = self
            .max_resolution_tier
            .map(|v| one_of(&field("max_resolution_tier"), v, MAX_RESOLUTION_TIER))
            .transpose()?;
        let meta = self
            .meta
            .map(|m| m.into_meta(&field("meta.")))
            .transpose()?
            .unwrap_or_default();
        refuse_unsupported(prefix, &self.other)?;
        let inputs = self
            .inputs
            .or(self.input)
            .map(|inputs| inputs.parse(prefix))
            .transpose()?
            .unwrap_or_default();
        Ok((
            AssetSettings {
                playback_policies,
                passthrough: self.passthrough,
                mp4_support,
                static_renditions,
                video_quality,
                max_resolution_tier,
                test: self.test.unwrap_or(false),
                normalize_audio: self.normalize_audio.unwrap_or(false),
                meta,
                tracks: inputs.tracks,
                clip: inputs.clip,
                overlay: inputs.overlay,
                ..AssetSettings::default()
            },
            inputs.url,
        ))
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaticRenditionSetting {
    pub resolution: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewAssetSettings {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub playback_policies: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mp4_support: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub static_renditions: Vec<StaticRenditionSetting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_quality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_resolution_tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaResponse>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadResponse {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub status: &'static str,
    pub timeout: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_origin: Option<String>,
    pub new_asset_settings: NewAssetSettings,
    pub test: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<UploadError>,
}

impl UploadResponse {
    /// `url` is handed out only while the upload can still receive bytes.
    pub fn from_upload(upload: &Upload, url: Option<String>) -> UploadResponse {
        let settings = &upload.new_asset_settings;
        UploadResponse {
            id: upload.id.clone(),
            url,
            status: upload.status.as_str(),
            timeout: upload.timeout_secs,
            cors_origin: upload.cors_origin.clone(),
            new_asset_settings: NewAssetSettings {
                playback_policies: settings
                    .playback_policies
                    .iter()
                    .map(|p| p.as_str())
                    .collect(),
                passthrough: settings.passthrough.clone(),
                mp4_support: settings.mp4_support.clone(),
                static_renditions: settings
                    .static_renditions
                    .iter()
                    .map(|r| StaticRenditionSetting {
                        resolution: r.clone(),
                    })
                    .collect(),
                video_quality: settings.video_quality.clone(),
                max_resolution_tier: settings.max_resolution_tier.clone(),
                meta: MetaResponse::from_meta(&settings.meta),
            },
            test: upload.test,
            asset_id: upload.asset_id.clone(),
            error: upload.error_message.as_ref().map(|m| UploadError {
                kind: "invalid_input".to_owned(),
                message: m.clone(),
            }),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlaybackIdResponse {
    pub id: String,
    pub policy: &'static str,
}

impl From<&PlaybackId> for PlaybackIdResponse {
    fn from(p: &PlaybackId) -> Self {
        PlaybackIdResponse {
            id: p.id.clone(),
            policy: p.policy.as_str(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrackResponse {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_channels: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_channel_layout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_captions: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<String>,
    /// Set in webhook bodies of track events, as Mux does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    /// openvod extension: why an `errored` track's file was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TrackResponse {
    fn empty(id: String, kind: &'static str) -> TrackResponse {
        TrackResponse {
            id,
            kind,
            duration: None,
            max_width: None,
            max_height: None,
            max_frame_rate: None,
            max_channels: None,
            max_channel_layout: None,
            primary: None,
            status: None,
            text_type: None,
            text_source: None,
            language_code: None,
            name: None,
            closed_captions: None,
            passthrough: None,
            asset_id: None,
            error: None,
        }
    }

    /// A subtitle or added audio track in Mux's shape.
    pub fn from_track(track: &Track) -> TrackResponse {
        let common = TrackResponse {
            status: Some(track.status.as_str()),
            language_code: Some(track.input.language_code.clone()),
            name: Some(track.input.name.clone()),
            passthrough: track.input.passthrough.clone(),
            error: track.error.clone(),
            ..TrackResponse::empty(track.id.clone(), track.input.kind.as_str())
        };
        match track.input.kind {
            TrackKind::Text => TrackResponse {
                text_type: Some("subtitles"),
                text_source: Some("uploaded"),
                closed_captions: Some(track.input.closed_captions),
                ..common
            },
            TrackKind::Audio => TrackResponse {
                primary: Some(false),
                ..common
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssetErrorsResponse {
    #[serde(rename = "type")]
    pub kind: String,
    pub messages: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MasterResponse {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaticRenditionFile {
    /// The file's name without its extension (`highest`, `audio`, `1080p`, `high`): what the
    /// static-renditions API deletes it by.
    pub id: String,
    pub name: String,
    pub ext: &'static str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "type")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    pub bitrate: u64,
    /// A string, as Mux sends it.
    pub filesize: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaticRenditionsResponse {
    pub status: &'static str,
    pub files: Vec<StaticRenditionFile>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProgressResponse {
    pub state: &'static str,
    pub progress: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssetResponse {
    pub id: String,
    /// openvod extension: the asset's numeric FileId (Tencent VOD API).
    pub file_id: String,
    pub status: &'static str,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_stored_resolution: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_tier: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_resolution_tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_stored_frame_rate: Option<f64>,
    pub video_quality: String,
    pub playback_ids: Vec<PlaybackIdResponse>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<TrackResponse>,
    pub mp4_support: String,
    pub master_access: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<MasterResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    pub ingest_type: &'static str,
    /// The asset a clip was cut from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_asset_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaResponse>,
    pub test: bool,
    /// Mux's `normalize_audio`, as asked at creation.
    pub normalize_audio: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<AssetErrorsResponse>,
    pub progress: ProgressResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_renditions: Option<StaticRenditionsResponse>,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Mux's `max_stored_resolution` and `resolution_tier` from the stored picture's shorter side.
fn resolution_labels(info: &MediaInfo) -> (&'static str, &'static str) {
    let Some(video) = &info.video else {
        return ("Audio only", "audio-only");
    };
    let short_side = video.width.min(video.height);
    match short_side {
        2160.. => ("UHD", "2160p"),
        1440.. => ("FHD", "1440p"),
        1080.. => ("FHD", "1080p"),
        720.. => ("HD", "720p"),
        _ => ("SD", "720p"),
    }
}

/// A stable track id derived from the asset id, so repeated reads agree.
fn track_id(asset_id: &str, kind: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{asset_id}/{kind}").as_bytes());
    hex::encode(&digest[..12])
}

fn channel_layout(channels: u32, layout: Option<&str>) -> String {
    match (channels, layout) {
        (1, _) => "mono".to_owned(),
        (2, _) => "stereo".to_owned(),
        (_, Some(l)) => l.split('(').next().unwrap_or(l).to_owned(),
        (n, None) => format!("{n}ch"),
    }
}

impl AssetResponse {
    pub fn from_asset(asset: &Asset, master_url: Option<String>) -> AssetResponse {
        let source = asset.source.as_ref();
        let video = source.and_then(|s| s.video.as_ref());
        let mut tracks = Vec::new();
        if let Some(v) = video {
            let (w, h) = v.display_size();
            tracks.push(TrackResponse {
                duration: v.duration.or(source.and_then(|s| s.duration)),
                max_width: Some(w),
                max_height: Some(h),
                max_frame_rate: Some(v.frame_rate.map_or(-1.0, round3)),
                ..TrackResponse::empty(track_id(&asset.id, "video"), "video")
            });
        }
        if let Some(a) = source.and_then(|s| s.audio.first()) {
            tracks.push(TrackResponse {
                duration: a.duration.or(source.and_then(|s| s.duration)),
                max_channels: Some(a.channels.clamp(1, 2)),
                max_channel_layout: Some(channel_layout(
                    a.channels.min(2),
                    a.channel_layout.as_deref(),
                )),
                primary: Some(true),
                status: Some("ready"),
                ..TrackResponse::empty(track_id(&asset.id, "audio"), "audio")
            });
        }
        tracks.extend(asset.tracks.iter().map(TrackResponse::from_track));
        let labels = source.map(resolution_labels);
        let (progress_state, progress) = match (asset.status, source) {
            (AssetStatus::Ready, _) => ("completed", 100.0),
            (AssetStatus::Errored, _) => ("errored", -1.0),
            (AssetStatus::Preparing, None) => ("ingesting", 0.0),
            (AssetStatus::Preparing, Some(_)) => ("transcoding", 0.0),
        };
        let master_access = if asset.master_access_until.is_some() {
            "temporary"
        } else {
            "none"
        };
        AssetResponse {
            id: asset.id.clone(),
            file_id: asset.file_id.clone(),
            status: asset.status.as_str(),
            created_at: asset.created_at.to_string(),
            duration: source.and_then(|s| s.duration).map(round6),
            aspect_ratio: video.map(|v| {
                let (w, h) = v.display_size();
                let g = gcd(w, h).max(1);
                format!("{}:{}", w / g, h / g)
            }),
            max_stored_resolution: labels.map(|l| l.0),
            resolution_tier: labels.map(|l| l.1),
            max_resolution_tier: asset.settings.max_resolution_tier.clone(),
            max_stored_frame_rate: video.map(|v| v.frame_rate.map_or(-1.0, round3)),
            video_quality: asset
                .settings
                .video_quality
                .clone()
                .unwrap_or_else(|| "basic".to_owned()),
            playback_ids: asset
                .playback_ids
                .iter()
                .map(PlaybackIdResponse::from)
                .collect(),
            tracks,
            mp4_support: asset
                .settings
                .mp4_support
                .clone()
                .unwrap_or_else(|| "none".to_owned()),
            master_access,
            master: (master_access == "temporary").then(|| MasterResponse {
                status: if master_url.is_some() {
                    "ready"
                } else {
                    "preparing"
                },
                url: master_url,
            }),
            upload_id: asset.upload_id.clone(),
            ingest_type: match asset.ingest_type {
                IngestType::DirectUpload => "on_demand_direct_upload",
                IngestType::Url => "on_demand_url",
                IngestType::Clip => "on_demand_clip",
            },
            source_asset_id: asset.clip_source().map(str::to_owned),
            passthrough: asset.passthrough.clone(),
            meta: MetaResponse::from_meta(&asset.settings.meta),
            test: asset.settings.test,
            normalize_audio: asset.settings.normalize_audio,
            errors: asset.errors.as_ref().map(|e| AssetErrorsResponse {
                kind: e.kind.clone(),
                messages: e.messages.clone(),
            }),
            progress: ProgressResponse {
                state: progress_state,
                progress,
            },
            static_renditions: static_renditions(asset),
        }
    }
}

/// Mux's `static_renditions` object, when the asset asked for any (legacy `mp4_support` or the new API).
fn static_renditions(asset: &Asset) -> Option<StaticRenditionsResponse> {
    let settings = &asset.settings;
    let legacy = settings.mp4_support.as_deref().is_some_and(|m| m != "none");
    if !legacy && settings.static_renditions.is_empty() {
        return None;
    }
    let status = match asset.status {
        AssetStatus::Errored => "errored",
        _ if asset.outputs_complete => "ready",
        _ => "preparing",
    };
    let files = asset
        .static_files
        .iter()
        .map(|f| {
            let (stem, ext) = f.name.rsplit_once('.').unwrap_or((&f.name, "mp4"));
            let resolution = match stem {
                "highest" | "2160p" | "1440p" | "1080p" | "720p" | "540p" | "480p" | "360p"
                | "270p" => Some(stem.to_owned()),
                "audio" if !legacy => Some("audio-only".to_owned()),
                _ => None,
            };
            StaticRenditionFile {
                id: stem.to_owned(),
                name: f.name.clone(),
                ext: if ext == "m4a" { "m4a" } else { "mp4" },
                status: "ready",
                kind: resolution.as_ref().map(|_| "standard"),
                resolution,
                width: (f.width > 0).then_some(f.width),
                height: (f.height > 0).then_some(f.height),
                bitrate: f.bitrate,
                filesize: f.filesize.to_string(),
            }
        })
        .collect();
    Some(StaticRenditionsResponse { status, files })
}

/// The file a `static_renditions[].resolution` makes.
pub fn static_file_name(resolution: &str) -> String {
    match resolution {
        "audio-only" => "audio.m4a".to_owned(),
        other => format!("{other}.mp4"),
    }
}

/// The static renditions the asset asked for with the static-renditions API: each made
/// (`ready`) or still to make (`preparing`, `errored` with the asset).
pub fn static_rendition_files(asset: &Asset) -> Vec<StaticRenditionFile> {
    let made = static_renditions(asset)
        .map(|r| r.files)
        .unwrap_or_default();
    asset
        .settings
        .static_renditions
        .iter()
        .map(|resolution| {
            let name = static_file_name(resolution);
            made.iter()
                .find(|f| f.name == name)
                .cloned()
                .unwrap_or_else(|| {
                    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, "mp4"));
                    StaticRenditionFile {
                        id: stem.to_owned(),
                        name: name.clone(),
                        ext: if ext == "m4a" { "m4a" } else { "mp4" },
                        status: if asset.status == AssetStatus::Errored {
                            "errored"
                        } else {
                            "preparing"
                        },
                        resolution: Some(resolution.clone()),
                        kind: Some("standard"),
                        width: None,
                        height: None,
                        bitrate: 0,
                        filesize: "0".to_owned(),
                    }
                })
        })
        .collect()
}

/// `POST /video/v1/assets/{id}/static-renditions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStaticRenditionRequest {
    pub resolution: String,
    /// Accepted and not kept (Mux echoes it back; openvod does not yet).
    pub passthrough: Option<String>,
}

impl CreateStaticRenditionRequest {
    pub fn resolution(&self) -> Result<String, String> {
        one_of("resolution", self.resolution.clone(), RESOLUTIONS)
    }
}

/// `PUT /video/v1/assets/{id}/mp4-support`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMp4SupportRequest {
    pub mp4_support: String,
}

impl UpdateMp4SupportRequest {
    pub fn mp4_support(&self) -> Result<Option<String>, String> {
        let value = one_of("mp4_support", self.mp4_support.clone(), MP4_SUPPORT)?;
        Ok((value != "none").then_some(value))
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round6(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssetList {
    pub data: Vec<AssetResponse>,
    pub next_cursor: Option<String>,
}

/// `GET /video/v1/playback-ids/{id}`: a playback id and the object it plays.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlaybackIdOwnerResponse {
    pub id: String,
    pub policy: &'static str,
    pub object: ObjectRef,
}

/// The object a playback id belongs to (`{"type": "asset", "id": ...}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ObjectRef {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
}

/// `GET /video/v1/assets/{id}/input-info`: what the asset was made from, as probed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InputInfo {
    pub settings: InputInfoSettings,
    pub file: InputFile,
}

/// The input's settings as given (its URL, for assets made from one).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InputInfoSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InputFile {
    /// ffprobe's format name, as Mux gives it (`mov,mp4,m4a,3gp,3g2,mj2`).
    pub container_format: String,
    pub tracks: Vec<InputTrack>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InputTrack {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    pub encoding: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
}

impl InputInfo {
    /// The asset's input, once it has been probed (`None` before).
    pub fn of(input_url: Option<&str>, source: Option<&MediaInfo>) -> Option<InputInfo> {
        let source = source?;
        let mut tracks = Vec::new();
        if let Some(v) = &source.video {
            let (width, height) = v.display_size();
            tracks.push(InputTrack {
                kind: "video",
                duration: v.duration.or(source.duration),
                encoding: v.codec.clone(),
                width: Some(width),
                height: Some(height),
                frame_rate: v.frame_rate,
                sample_rate: None,
                channels: None,
            });
        }
        for a in &source.audio {
            tracks.push(InputTrack {
                kind: "audio",
                duration: a.duration.or(source.duration),
                encoding: a.codec.clone(),
                width: None,
                height: None,
                frame_rate: None,
                sample_rate: a.sample_rate,
                channels: Some(a.channels),
            });
        }
        Some(InputInfo {
            settings: InputInfoSettings {
                url: input_url.map(str::to_owned),
            },
            file: InputFile {
                container_format: source.format_name.clone(),
                tracks,
            },
        })
    }
}

/// `POST /video/v1/playback-restrictions`; both rules are optional (Mux's defaults apply).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRestrictionRequest {
    pub referrer: Option<ReferrerRequest>,
    pub user_agent: Option<UserAgentRequest>,
}

/// `PUT .../referrer`, and the `referrer` of a creation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferrerRequest {
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default)]
    pub allow_no_referrer: bool,
}

/// `PUT .../user_agent`, and the `user_agent` of a creation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAgentRequest {
    pub allow_no_user_agent: Option<bool>,
    pub allow_high_risk_user_agent: Option<bool>,
}

impl From<ReferrerRequest> for crate::playback::restrictions::ReferrerRule {
    fn from(r: ReferrerRequest) -> Self {
        crate::playback::restrictions::ReferrerRule {
            allowed_domains: r.allowed_domains,
            allow_no_referrer: r.allow_no_referrer,
        }
    }
}

impl From<UserAgentRequest> for crate::playback::restrictions::UserAgentRule {
    fn from(r: UserAgentRequest) -> Self {
        let default = crate::playback::restrictions::UserAgentRule::default();
        crate::playback::restrictions::UserAgentRule {
            allow_no_user_agent: r.allow_no_user_agent.unwrap_or(default.allow_no_user_agent),
            allow_high_risk_user_agent: r
                .allow_high_risk_user_agent
                .unwrap_or(default.allow_high_risk_user_agent),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RestrictionResponse {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
    pub referrer: crate::playback::restrictions::ReferrerRule,
    pub user_agent: crate::playback::restrictions::UserAgentRule,
}

impl From<crate::playback::restrictions::PlaybackRestriction> for RestrictionResponse {
    fn from(r: crate::playback::restrictions::PlaybackRestriction) -> Self {
        RestrictionResponse {
            id: r.id,
            created_at: r.created_at.to_string(),
            updated_at: r.updated_at.to_string(),
            referrer: r.referrer,
            user_agent: r.user_agent,
        }
    }
}
