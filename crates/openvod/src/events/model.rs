//! Core event and webhook types (stored by `db`, rendered by the webhook formats and the pull API).

use serde::{Deserialize, Serialize};

use crate::assets::model::Asset;
use crate::ingest::model::Upload;

/// Every event type we emit, in Mux's names.
pub const EVENT_TYPES: &[&str] = &[
    "video.upload.created",
    "video.upload.asset_created",
    "video.upload.cancelled",
    "video.upload.errored",
    "video.asset.created",
    "video.asset.ready",
    "video.asset.errored",
    "video.asset.updated",
    "video.asset.deleted",
    "video.asset.static_renditions.ready",
    "video.asset.master.ready",
];

/// Event types of the VOD family (rendered as Tencent VOD v3 notifications).
pub const VOD_EVENT_TYPES: &[&str] = &[
    "vod.file.uploaded",
    "vod.procedure.changed",
    "vod.file.deleted",
];

/// A processing task and the asset it worked on, as they were when it changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSnapshot {
    pub task: crate::processing::ProcessingTask,
    pub asset: Asset,
}

/// The object an event is about, as it was when the event happened. Stored as JSON (not a wire type).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "object", rename_all = "snake_case")]
pub enum Snapshot {
    Upload(Box<Upload>),
    Asset(Box<Asset>),
    Task(Box<TaskSnapshot>),
    /// A text track, with its asset as it was.
    Track(Box<TrackSnapshot>),
    /// A static (MP4/M4A) file of an asset, with the asset as it was.
    StaticRendition(Box<StaticRenditionSnapshot>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaticRenditionSnapshot {
    pub asset: crate::assets::model::Asset,
    /// The file, by its name once it exists (`highest.mp4`), else by the resolution asked for.
    pub name: Option<String>,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrackSnapshot {
    pub asset: crate::assets::model::Asset,
    pub track: crate::assets::model::Track,
}

impl Snapshot {
    pub fn object_type(&self) -> &'static str {
        match self {
            Snapshot::Upload(_) => "upload",
            Snapshot::Asset(_) => "asset",
            Snapshot::Task(_) => "task",
            Snapshot::Track(_) => "track",
            Snapshot::StaticRendition(_) => "static_rendition",
        }
    }

    pub fn object_id(&self) -> &str {
        match self {
            Snapshot::Upload(u) => &u.id,
            Snapshot::Asset(a) => &a.id,
            // Per-asset ordering covers a task's events together with its asset's.
            Snapshot::Task(t) => &t.asset.id,
            // Per-asset ordering too: a track's events follow its asset's.
            Snapshot::Track(t) => &t.asset.id,
            Snapshot::StaticRendition(r) => &r.asset.id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    /// Position in the log; the pull API's cursor.
    pub seq: i64,
    /// UUID, the same on every delivery attempt.
    pub id: String,
    pub kind: String,
    pub created_at_ms: i64,
    pub snapshot: Snapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// Mux's body and `Mux-Signature` header.
    Mux,
    /// Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Standard,
    /// Tencent VOD event notifications v3 (`NewFileUpload`, `ProcedureStateChanged`, `FileDeleted`).
    TencentV3,
}

impl WebhookFormat {
    pub fn parse(s: &str) -> Option<WebhookFormat> {
        match s {
            "mux" => Some(WebhookFormat::Mux),
            "standard" => Some(WebhookFormat::Standard),
            "tencent-v3" => Some(WebhookFormat::TencentV3),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Mux => "mux",
            WebhookFormat::Standard => "standard",
            WebhookFormat::TencentV3 => "tencent-v3",
        }
    }

    /// Whether this format carries events of type `kind` (Mux types or the VOD family).
    pub fn carries(self, kind: &str) -> bool {
        match self {
            WebhookFormat::Mux | WebhookFormat::Standard => kind.starts_with("video."),
            WebhookFormat::TencentV3 => kind.starts_with("vod."),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub format: WebhookFormat,
    /// Event types delivered; `None` means all.
    pub events: Option<Vec<String>>,
    pub enabled: bool,
    pub secret: String,
    /// `api` or `config` (declared in the config file).
    pub source: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Since when every delivery to it has failed.
    pub failing_since_ms: Option<i64>,
    /// Why it was disabled automatically.
    pub disabled_reason: Option<String>,
}

/// One HTTP attempt to deliver one event to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub delivery_id: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub attempted_at_ms: i64,
    pub latency_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub success: bool,
}

/// A delivery handed to the dispatcher until its lease runs out.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub lease_token: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub endpoint: WebhookEndpoint,
    pub event: Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    RetryAt(i64),
    /// The retry schedule is exhausted.
    GaveUp,
}

#[derive(Debug, Clone)]
pub struct DeliveryResult {
    pub delivery_id: i64,
    pub lease_token: String,
    pub outcome: DeliveryOutcome,
    pub attempt: Attempt,
}
