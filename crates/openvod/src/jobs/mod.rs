//! Durable background work: job kinds, the queue contract and the worker loop.
//!
//! Invariant: a job row is written in the same transaction as the state change that needs it,
//! so a crash after the HTTP 2xx can delay work but never lose it.

pub mod repo;

mod worker;

pub(crate) use worker::failed_for_good;
pub use worker::{backoff_secs, Outcome, Worker, MAX_ATTEMPTS};

use serde::{Deserialize, Serialize};

/// Every kind of background work. Stored as JSON; add variants, never change existing ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Probe an asset's stored original and record what it holds.
    ProbeAsset { asset_id: String },
    /// Download an asset's input URL into storage, then probe it.
    FetchInput { asset_id: String },
    /// Encode and publish an asset's renditions.
    Transcode { asset_id: String },
    /// Encode segments `first..first + count` of every rung a split transcode left pending (a
    /// long input is encoded in pieces by many workers); the last piece to finish publishes.
    TranscodePiece {
        asset_id: String,
        first: usize,
        count: usize,
    },
    /// Run a processing task (ProcessMedia).
    Process { task_id: String },
    /// Render a BigBlueButton recording (the asset's input URL) into the asset's original.
    RenderBbb { asset_id: String },
    /// Cut a clip's original from its source asset's, then probe it.
    ClipInput { asset_id: String },
    /// Fetch a text track's subtitle file, check it and store it as WebVTT.
    FetchTextTrack { asset_id: String, track_id: String },
    /// Fetch an audio track's file and encode it into the asset's alternate audio rendition
    /// (queued once the asset is probed: the rendition lasts as long as the asset).
    FetchAudioTrack { asset_id: String, track_id: String },
    /// Remove everything stored for a deleted asset.
    PurgeAssetMedia {
        asset_id: String,
        original_key: Option<String>,
    },
}

impl Job {
    pub fn kind(&self) -> &'static str {
        match self {
            Job::ProbeAsset { .. } => "probe_asset",
            Job::FetchInput { .. } => "fetch_input",
            Job::Transcode { .. } => "transcode",
            Job::TranscodePiece { .. } => "transcode_piece",
            Job::Process { .. } => "process",
            Job::RenderBbb { .. } => "render_bbb",
            Job::PurgeAssetMedia { .. } => "purge_asset_media",
            Job::FetchTextTrack { .. } => "fetch_text_track",
            Job::FetchAudioTrack { .. } => "fetch_audio_track",
            Job::ClipInput { .. } => "clip_input",
        }
    }
}

/// The job kinds a worker takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Kinds {
    #[default]
    All,
    Only(Vec<String>),
    Except(Vec<String>),
}

/// Kinds a remote worker (`openvod worker --server`) can run: work on files alone, whose inputs
/// and results travel over HTTP.
pub const REMOTE_KINDS: &[&str] = &["transcode_piece"];

/// A job handed to one worker until `lease_until`.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub job: Job,
    pub attempts: u32,
    /// Fencing token: completion is refused unless it still matches the row.
    pub lease_token: String,
}

/// How a run ended, as reported back to the queue.
#[derive(Debug)]
pub enum JobResult {
    Done,
    Retry { error: String, run_at: i64 },
    Failed { error: String },
}
