//! The BigBlueButton migration's state, as stored.

use async_trait::async_trait;

use crate::assets::model::Asset;
use crate::error::DbError;
use crate::jobs::Job;
use crate::migration::model::{
    Action, BbbRecording, Claim, ExternalRecording, MigrationEntry, Mode, Owner,
};

/// The BigBlueButton migration's state (`migration`).
#[async_trait]
pub trait BbbRepo: Send + Sync {
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

/// What the migration needs stored: its own state, and accounts for the moderators it finds.
pub trait MigrationStore: BbbRepo + crate::accounts::repo::AccountRepo {}
impl<T: BbbRepo + crate::accounts::repo::AccountRepo + ?Sized> MigrationStore for T {}
