//! What the assets domain needs stored.

use async_trait::async_trait;

use crate::assets::model::{
    Asset, AssetChange, AssetErrors, AssetFilter, PlaybackId, PlaybackPolicy, Rendition,
    StaticFile, StoredOriginal, Track, TrackStatus,
};
use crate::error::DbError;
use crate::jobs::Job;
use crate::media::probe::MediaInfo;
use crate::processing::ProcessingTask;

#[async_trait]
pub trait AssetRepo: Send + Sync {
    /// Inserts the asset with its playback ids and, in the same transaction, queues `job`.
    async fn create_asset(&self, asset: &Asset, job: Option<&Job>, now: i64)
        -> Result<(), DbError>;
    async fn get_asset(&self, id: &str) -> Result<Option<Asset>, DbError>;
    async fn get_asset_by_file_id(&self, file_id: &str) -> Result<Option<Asset>, DbError>;
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
    /// Adds a `preparing` track to the asset and queues its job (an audio track's once the asset
    /// is probed), with
    /// `video.asset.track.created`, in one transaction. The asset afterwards; `None` when it does
    /// not exist.
    async fn add_track(
        &self,
        asset_id: &str,
        track: &Track,
        now: i64,
    ) -> Result<Option<Asset>, DbError>;
    /// Records how a `preparing` track ended (`ready` or `errored` with `error`), with its
    /// `video.asset.track.ready|errored`. A track already ended is left as it is. `false` when the
    /// asset or the track is gone.
    async fn finish_track(
        &self,
        asset_id: &str,
        track_id: &str,
        status: TrackStatus,
        error: Option<&str>,
    ) -> Result<bool, DbError>;
    /// Removes a track, with `video.asset.track.deleted`; the track removed, if there was one.
    async fn delete_track(&self, asset_id: &str, track_id: &str) -> Result<Option<Track>, DbError>;
    /// Assets whose `expire_at` is at or before `now`.
    async fn list_expired_assets(&self, now: i64) -> Result<Vec<String>, DbError>;
    async fn set_asset_original(
        &self,
        id: &str,
        original: &StoredOriginal,
    ) -> Result<bool, DbError>;
    /// Records the probe result and, in the same transaction, queues `next` (the transcode), the
    /// jobs of audio tracks that waited for the probe, and creates `task` (an automatic procedure)
    /// with its job.
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
