//! Core upload types.

use serde::{Deserialize, Serialize};

use crate::assets::model::AssetSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    Waiting,
    AssetCreated,
    Errored,
    Cancelled,
    TimedOut,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::Waiting => "waiting",
            UploadStatus::AssetCreated => "asset_created",
            UploadStatus::Errored => "errored",
            UploadStatus::Cancelled => "cancelled",
            UploadStatus::TimedOut => "timed_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "waiting" => Some(UploadStatus::Waiting),
            "asset_created" => Some(UploadStatus::AssetCreated),
            "errored" => Some(UploadStatus::Errored),
            "cancelled" => Some(UploadStatus::Cancelled),
            "timed_out" => Some(UploadStatus::TimedOut),
            _ => None,
        }
    }
}

/// Serialized only for storage (event snapshots), never as a wire format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    pub id: String,
    pub status: UploadStatus,
    pub timeout_secs: u64,
    pub cors_origin: Option<String>,
    pub new_asset_settings: AssetSettings,
    pub test: bool,
    pub created_at: i64,
    /// Unix time after which a still-waiting upload times out and its capability URL stops working.
    pub expires_at: i64,
    /// Declared size; known from tus `Upload-Length` or the first `Content-Range`.
    pub total_size: Option<u64>,
    /// Bytes durably staged. Only ever grows, and only after an fsync.
    pub committed_offset: u64,
    pub asset_id: Option<String>,
    pub error_message: Option<String>,
    /// tus `Upload-Metadata` exactly as the client sent it, echoed on HEAD.
    pub tus_metadata: Option<String>,
}
