//! What ingest needs stored.

use async_trait::async_trait;

use crate::assets::model::Asset;
use crate::error::DbError;
use crate::ingest::model::Upload;
use crate::jobs::Job;

/// Outcome of finishing an upload.
#[derive(Debug)]
pub enum FinalizeOutcome {
    Created,
    /// The upload had already left `waiting` (finished, cancelled or timed out) before this call.
    NotWaiting(crate::ingest::model::UploadStatus),
}

#[async_trait]
pub trait UploadRepo: Send + Sync {
    async fn create_upload(&self, upload: &Upload) -> Result<(), DbError>;
    async fn get_upload(&self, id: &str) -> Result<Option<Upload>, DbError>;
    async fn list_uploads(&self, limit: u32, offset: u32) -> Result<Vec<Upload>, DbError>;
    /// Records the declared total size once; later calls with a different size are not applied.
    async fn set_upload_size(&self, id: &str, total_size: u64) -> Result<(), DbError>;
    /// Records that bytes `[0, offset)` are durably staged. Never moves the offset backwards.
    async fn commit_upload_offset(&self, id: &str, offset: u64) -> Result<(), DbError>;
    /// In one transaction: a waiting upload becomes `asset_created`, `asset` is inserted with its
    /// playback ids, and `job` is queued.
    async fn finalize_upload(
        &self,
        upload_id: &str,
        asset: &Asset,
        job: &Job,
        now: i64,
    ) -> Result<FinalizeOutcome, DbError>;
    /// Moves a `waiting` upload to `new_status` (`cancelled`, `timed_out`, `errored`).
    /// Returns the upload as it is afterwards, or `None` when it does not exist.
    async fn end_upload(
        &self,
        id: &str,
        new_status: crate::ingest::model::UploadStatus,
        error_message: Option<&str>,
    ) -> Result<Option<Upload>, DbError>;
    /// Ids of waiting uploads whose `expires_at` is before `now`.
    async fn list_expired_uploads(&self, now: i64) -> Result<Vec<String>, DbError>;
}
