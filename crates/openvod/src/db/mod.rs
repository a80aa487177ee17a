//! Metadata persistence behind small repository traits, one per concern.
//!
//! Domain code depends only on `Arc<dyn Db>`; the SQLite engine lives in `sqlite.rs` and a PostgreSQL
//! engine can join without touching domain code. Every method that changes state is atomic and
//! durable when it returns: callers acknowledge clients only after it returns `Ok`.

pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::assets::model::{
    Asset, AssetChange, AssetErrors, AssetFilter, PlaybackId, PlaybackPolicy, Rendition,
    StaticFile, StoredOriginal,
};
use crate::events::model::{Attempt, ClaimedDelivery, DeliveryResult, Event, WebhookEndpoint};
use crate::ingest::model::Upload;
use crate::jobs::{ClaimedJob, Job, JobResult};
use crate::media::probe::MediaInfo;
use crate::migration::model::{
    Action, BbbRecording, Claim, ExternalRecording, MigrationEntry, Mode, Owner,
};
use crate::playback::keys::SigningKey;
use crate::processing::ProcessingTask;

pub type ArcDb = Arc<dyn Db>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub secret_sha256: Vec<u8>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[async_trait]
pub trait TokenRepo {
    async fn create_token(&self, token: &ApiToken) -> Result<(), DbError>;
    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, DbError>;
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, DbError>;
    /// Marks the token revoked; `false` when no active token has that id.
    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, DbError>;
    /// Records a credential valid once (by digest) as used; `false` if it already was. Forgets
    /// the ones expired before `now`.
    async fn spend_once(&self, digest: &[u8], expires_at: i64, now: i64) -> Result<bool, DbError>;
}

#[async_trait]
pub trait SecretRepo {
    /// Returns the named server secret, storing `generated` first if none exists yet.
    /// Every process sharing the database gets the same value.
    async fn get_or_create_secret(&self, name: &str, generated: &[u8]) -> Result<Vec<u8>, DbError>;
}

/// Outcome of finishing an upload.
#[derive(Debug)]
pub enum FinalizeOutcome {
    Created,
    /// The upload had already left `waiting` (finished, cancelled or timed out) before this call.
    NotWaiting(crate::ingest::model::UploadStatus),
}

#[async_trait]
pub trait UploadRepo {
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

#[async_trait]
pub trait AssetRepo {
    /// Inserts the asset with its playback ids and, in the same transaction, queues `job`.
    async fn create_asset(&self, asset: &Asset, job: Option<&Job>, now: i64)
        -> Result<(), DbError>;
    async fn get_asset(&self, id: &str) -> Result<Option<Asset>, DbError>;
    /// The assets matching every field set in `filter`, newest first; `after` = `(created_at, id)`
    /// of the last asset of the previous page (cursor pagination), else `offset` applies.
    async fn list_assets(
        &self,
        limit: u32,
        offset: u32,
        filter: &AssetFilter,
        after: Option<(i64, &str)>,
    ) -> Result<Vec<Asset>, DbError>;
    /// In one transaction: sets `passthrough` when given, replaces the meta fields `meta` gives
    /// (`AssetMeta::updated_with`) and writes `video.asset.updated`. The asset as it is afterwards,
    /// or `None` when it does not exist.
    async fn update_asset(&self, id: &str, change: &AssetChange) -> Result<Option<Asset>, DbError>;
    /// Assets whose `expire_at` is at or before `now`.
    async fn list_expired_assets(&self, now: i64) -> Result<Vec<String>, DbError>;
    async fn set_asset_original(
        &self,
        id: &str,
        original: &StoredOriginal,
    ) -> Result<bool, DbError>;
    /// Records the probe result and, in the same transaction, queues `next` (the transcode) and
    /// creates `task` (an automatic procedure) with its job.
    async fn set_asset_source(
        &self,
        id: &str,
        source: &MediaInfo,
        next: Option<&Job>,
        task: Option<&ProcessingTask>,
        now: i64,
    ) -> Result<bool, DbError>;
    /// Replaces the asset's published renditions and static files; a `preparing` asset becomes
    /// `ready`; `complete` says nothing more will be added. `false` when the asset no longer exists.
    async fn publish_outputs(
        &self,
        id: &str,
        renditions: &[Rendition],
        static_files: &[StaticFile],
        complete: bool,
    ) -> Result<bool, DbError>;
    /// The asset id and policy of a playback id.
    async fn find_playback_id(
        &self,
        playback_id: &str,
    ) -> Result<Option<(String, PlaybackPolicy)>, DbError>;
    /// Errors a `preparing` asset; an asset already ready or errored is left as it is.
    async fn set_asset_errored(&self, id: &str, errors: &AssetErrors) -> Result<bool, DbError>;
    async fn set_master_access(&self, id: &str, until: Option<i64>) -> Result<bool, DbError>;
    /// Deletes the asset and its playback ids and queues `job` (media removal) in one transaction.
    async fn delete_asset(&self, id: &str, job: &Job, now: i64) -> Result<bool, DbError>;
    async fn create_playback_id(
        &self,
        asset_id: &str,
        playback_id: &PlaybackId,
        now: i64,
    ) -> Result<bool, DbError>;
    async fn delete_playback_id(&self, asset_id: &str, playback_id: &str) -> Result<bool, DbError>;
}

#[async_trait]
pub trait JobRepo {
    async fn enqueue_job(&self, job: &Job, run_at: i64) -> Result<i64, DbError>;
    /// Claims the oldest runnable job for `lease_secs`, or `None` when nothing is due.
    async fn claim_job(&self, now: i64, lease_secs: i64) -> Result<Option<ClaimedJob>, DbError>;
    /// Extends a lease; `false` when the lease was lost (reclaimed by someone else).
    async fn heartbeat_job(&self, id: i64, lease_token: &str, until: i64) -> Result<bool, DbError>;
    /// Records the result; refused (`false`) when `lease_token` no longer holds the job.
    async fn finish_job(
        &self,
        id: i64,
        lease_token: &str,
        result: &JobResult,
        now: i64,
    ) -> Result<bool, DbError>;
    /// Notified (`notify_waiters`) whenever this process queues a job.
    fn job_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// Returns running jobs whose lease expired before `now` to the queue; the count requeued.
    async fn requeue_stale_jobs(&self, now: i64) -> Result<u64, DbError>;
}

/// The event log, webhook endpoints and the delivery outbox. Events themselves are written by the
/// state-changing methods of the other repos, in their transactions.
#[async_trait]
pub trait EventRepo {
    async fn list_events(
        &self,
        after_seq: i64,
        limit: u32,
        kind: Option<&str>,
        object_id: Option<&str>,
    ) -> Result<Vec<Event>, DbError>;
    async fn get_event(&self, id: &str) -> Result<Option<Event>, DbError>;
    /// Notified whenever this process writes an event (and so, possibly, deliveries).
    fn event_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), DbError>;
    /// Inserts or replaces an endpoint declared in the config file, keeping its failure state.
    async fn upsert_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), DbError>;
    async fn get_endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>, DbError>;
    async fn list_endpoints(&self) -> Result<Vec<WebhookEndpoint>, DbError>;
    async fn update_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<bool, DbError>;
    async fn delete_endpoint(&self, id: &str) -> Result<bool, DbError>;
    /// Leases up to `limit` due deliveries. A delivery waits while an earlier one for the same endpoint
    /// and object is in flight or not yet tried (per-object order), but not while that one is parked
    /// in retry.
    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, DbError>;
    /// Records attempts and outcomes in one transaction; results whose lease was lost are ignored.
    /// An endpoint failing for longer than `disable_after_ms` is disabled.
    async fn record_deliveries(
        &self,
        results: &[DeliveryResult],
        now_ms: i64,
        disable_after_ms: i64,
    ) -> Result<(), DbError>;
    async fn list_attempts(
        &self,
        event_id: Option<&str>,
        endpoint_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Attempt>, DbError>;
    /// Queues the event again for `endpoint_id` (or every endpoint that wants it); the count queued.
    async fn resend_event(
        &self,
        event_id: &str,
        endpoint_id: Option<&str>,
        now_ms: i64,
    ) -> Result<u64, DbError>;
    /// Reliable (pull) delivery: hands out up to `limit` pending deliveries of a pull endpoint, each
    /// invisible for `visibility_ms` unless confirmed. Returns `(delivery id, handle token, event)`.
    async fn pull_deliveries(
        &self,
        endpoint_id: &str,
        now_ms: i64,
        visibility_ms: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String, Event)>, DbError>;
    /// How many deliveries of a pull endpoint are waiting to be pulled (not leased) at `now_ms`.
    async fn count_pullable(&self, endpoint_id: &str, now_ms: i64) -> Result<u64, DbError>;
    /// Confirms pulled deliveries; returns how many handles were still valid.
    async fn confirm_deliveries(
        &self,
        handles: &[(i64, String)],
        now_ms: i64,
    ) -> Result<u64, DbError>;
    /// Queues every event after `after_seq` again for one endpoint (a replay); the count queued.
    async fn replay_events(
        &self,
        endpoint_id: &str,
        after_seq: i64,
        now_ms: i64,
    ) -> Result<u64, DbError>;
}

#[async_trait]
pub trait TaskRepo {
    /// Inserts the task and queues its job in one transaction; `false` when its session id is taken.
    async fn create_task(&self, task: &ProcessingTask) -> Result<bool, DbError>;
    async fn get_task(&self, id: &str) -> Result<Option<ProcessingTask>, DbError>;
    /// Saves progress (status, begin time).
    async fn save_task(&self, task: &ProcessingTask) -> Result<(), DbError>;
    /// Saves the task and writes its `vod.procedure.changed` event in one transaction.
    async fn save_task_with_event(&self, task: &ProcessingTask) -> Result<(), DbError>;
    async fn get_asset_by_file_id(&self, file_id: &str) -> Result<Option<Asset>, DbError>;
    async fn list_tasks_for_asset(&self, asset_id: &str) -> Result<Vec<ProcessingTask>, DbError>;
}

#[async_trait]
pub trait SigningKeyRepo {
    async fn create_signing_key(&self, key: &SigningKey) -> Result<(), DbError>;
    async fn get_signing_key(&self, id: &str) -> Result<Option<SigningKey>, DbError>;
    async fn list_signing_keys(&self) -> Result<Vec<SigningKey>, DbError>;
    async fn delete_signing_key(&self, id: &str) -> Result<bool, DbError>;
}

/// The BigBlueButton migration's state (`migration`).
#[async_trait]
pub trait BbbRepo {
    /// Upserts the listed recording and replaces the owners the listing found (claims stay).
    async fn save_bbb_recording(
        &self,
        rec: &BbbRecording,
        owners: &[Owner],
        now: i64,
    ) -> Result<(), DbError>;
    async fn get_bbb_action(&self, record_id: &str, mode: Mode) -> Result<Option<Action>, DbError>;
    async fn list_bbb_owners(&self, record_id: &str) -> Result<Vec<Owner>, DbError>;
    /// `--use-manual-claim`: the recording's asset, its job and the action in one transaction,
    /// unless the recording already has its asset. Returns the asset id and whether it is new.
    async fn create_bbb_asset(
        &self,
        record_id: &str,
        asset: &Asset,
        job: &Job,
        detail: &str,
        now: i64,
    ) -> Result<(String, bool), DbError>;
    /// Records a failure, unless the mode already succeeded for this recording.
    async fn fail_bbb_action(
        &self,
        record_id: &str,
        mode: Mode,
        error: &str,
        now: i64,
    ) -> Result<(), DbError>;
    /// `--use-import-video`: one external recording per (recordID, owner), existing ones kept.
    /// Returns how many were created.
    async fn create_external_recordings(
        &self,
        record_id: &str,
        recordings: &[ExternalRecording],
        detail: &str,
        now: i64,
    ) -> Result<usize, DbError>;
    async fn list_external_recordings(
        &self,
        owner: Option<&str>,
    ) -> Result<Vec<ExternalRecording>, DbError>;
    async fn get_external_recording(&self, id: &str) -> Result<Option<ExternalRecording>, DbError>;
    /// The import's asset and job, once: `None` for an unknown id, else the asset id and
    /// whether this call created it.
    async fn start_external_import(
        &self,
        id: &str,
        asset: &Asset,
        job: &Job,
        now: i64,
    ) -> Result<Option<(String, bool)>, DbError>;
    /// Manual-claim assets without a `meta.creator_id`.
    async fn list_bbb_claims(&self) -> Result<Vec<Claim>, DbError>;
    /// The recordID a manual-claim asset was made from.
    async fn bbb_record_of_asset(&self, asset_id: &str) -> Result<Option<String>, DbError>;
    async fn add_bbb_owner(&self, record_id: &str, owner: &Owner) -> Result<(), DbError>;
    /// A page of every listed recording (newest first) with owners and actions, and the total.
    async fn list_bbb_recordings(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<MigrationEntry>, i64), DbError>;
}

pub trait Db:
    TokenRepo
    + crate::accounts::repo::AccountRepo
    + SecretRepo
    + UploadRepo
    + AssetRepo
    + JobRepo
    + SigningKeyRepo
    + EventRepo
    + TaskRepo
    + BbbRepo
    + Send
    + Sync
{
}

impl<T> Db for T where
    T: TokenRepo
        + crate::accounts::repo::AccountRepo
        + SecretRepo
        + UploadRepo
        + AssetRepo
        + JobRepo
        + SigningKeyRepo
        + EventRepo
        + TaskRepo
        + BbbRepo
        + Send
        + Sync
{
}
