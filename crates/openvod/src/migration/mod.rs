//! The BigBlueButton migration's core: the state of every recording of the old server, the
//! manual-claim queue and the external recordings owners import when they choose.
//!
//! `run` is the `openvod bbb migrate` loop (listing → Moodle owners → one action per recording);
//! `MigrationService` is what both it and the HTTP routes (`compat::bbb`) call. Every action is
//! one transaction keyed by recordID, so a rerun, or a run after `kill -9`, never duplicates.

pub mod model;
pub mod repo;
pub mod run;

use crate::assets::model::{Asset, AssetMeta, AssetSettings, IngestType, PlaybackPolicy};
use crate::assets::{new_asset, AssetError, AssetService};
use crate::bbb::api::ListedRecording;
use crate::error::DbError;
use crate::error::ErrorKind;
use crate::id::now_unix;
use crate::jobs::Job;
use model::{BbbRecording, Claim, ExternalRecording, Mode, Owner, OwnerOrigin};

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Asset(#[from] AssetError),
    #[error(transparent)]
    Account(#[from] crate::accounts::AccountError),
}

impl MigrationError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            MigrationError::NotFound(_) => ErrorKind::NotFound,
            MigrationError::Invalid(_) => ErrorKind::Invalid,
            MigrationError::Db(e) => e.kind(),
            MigrationError::Asset(e) => e.kind(),
            MigrationError::Account(e) => e.kind(),
        }
    }
}

/// The state row of a listed recording.
pub fn state_of(rec: &ListedRecording, playback_url_23: bool) -> BbbRecording {
    BbbRecording {
        record_id: rec.record_id.clone(),
        meeting_id: rec.meeting_id.clone(),
        name: rec.name.trim().to_owned(),
        start_time_ms: rec.start_time_ms,
        origin_server: rec.meta("bbb-origin-server-name").map(str::to_owned),
        // A protected recording's token is spent or expired by the time anything uses it; the
        // import asks the old server for a fresh one (`bbb::source::open_playback`).
        source_url: rec
            .source_url(playback_url_23)
            .map(|u| crate::bbb::source::without_token(&u)),
        raw_xml: rec.raw.clone(),
    }
}

/// The playback an asset is made from.
fn source_of(rec: &BbbRecording) -> Result<&str, MigrationError> {
    rec.source_url.as_deref().ok_or_else(|| {
        MigrationError::Invalid(format!(
            "recording {} has neither a video nor a presentation playback",
            rec.record_id
        ))
    })
}

/// A migrated recording's asset: Mux `meta` says what it was (title, recordID) and who owns it.
fn recording_asset(
    rec: &BbbRecording,
    source_url: &str,
    creator: Option<&str>,
    now: i64,
) -> (Asset, Job) {
    let title: String = rec.name.chars().take(AssetMeta::MAX_TITLE_LEN).collect();
    let settings = AssetSettings {
        playback_policies: vec![PlaybackPolicy::Public],
        meta: AssetMeta {
            title: (!title.is_empty()).then_some(title),
            creator_id: creator.map(str::to_owned),
            external_id: Some(rec.record_id.clone()),
            ..AssetMeta::default()
        },
        ..AssetSettings::default()
    };
    let asset = new_asset(
        &settings,
        IngestType::Url,
        None,
        Some(source_url.to_owned()),
        None,
        now,
    );
    let job = Job::RenderBbb {
        asset_id: asset.id.clone(),
    };
    (asset, job)
}

/// What happened to one recording in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An asset was created (manual claim), or external recordings (import).
    Created {
        asset_id: Option<String>,
        count: usize,
    },
    /// An earlier run already did it.
    AlreadyDone { asset_id: Option<String> },
}

pub struct MigrationService {
    db: std::sync::Arc<dyn crate::migration::repo::MigrationStore>,
}

impl MigrationService {
    pub fn new(db: std::sync::Arc<dyn crate::migration::repo::MigrationStore>) -> MigrationService {
        MigrationService { db }
    }

    /// Upserts the recording's state row and the owners this listing found, and gives each
    /// Moodle moderator an account (no password until an admin sets one or sends an invite)
    /// so they can log in to the console and find their recordings.
    pub async fn save(&self, rec: &BbbRecording, owners: &[Owner]) -> Result<(), MigrationError> {
        self.db.save_bbb_recording(rec, owners, now_unix()).await?;
        for owner in owners.iter().filter(|o| o.origin == OwnerOrigin::Moodle) {
            if crate::accounts::create_passwordless(&*self.db, &owner.username).await? {
                tracing::info!(username = %owner.username, "account created for a Moodle moderator");
            }
        }
        Ok(())
    }

    pub async fn done(
        &self,
        record_id: &str,
        mode: Mode,
    ) -> Result<Option<String>, MigrationError> {
        Ok(self
            .db
            .get_bbb_action(record_id, mode)
            .await?
            .filter(|a| a.state == "done")
            .map(|a| a.asset_id.unwrap_or_default()))
    }

    pub async fn fail(
        &self,
        record_id: &str,
        mode: Mode,
        error: &str,
    ) -> Result<(), MigrationError> {
        self.db
            .fail_bbb_action(record_id, mode, error, now_unix())
            .await?;
        Ok(())
    }

    /// `--use-manual-claim`: the recording's asset (rendered or downloaded in a job), owned by
    /// the first owner if there is one, else waiting in the claim queue.
    pub async fn create_claim_asset(
        &self,
        rec: &BbbRecording,
        owners: &[Owner],
    ) -> Result<Outcome, MigrationError> {
        let source = source_of(rec)?;
        let creator = owners.first().map(|o| o.username.as_str());
        let (asset, job) = recording_asset(rec, source, creator, now_unix());
        let detail = match creator {
            Some(c) => format!("asset owned by {c}"),
            None => "asset in the claim queue".to_owned(),
        };
        let (asset_id, created) = self
            .db
            .create_bbb_asset(&rec.record_id, &asset, &job, &detail, now_unix())
            .await?;
        Ok(if created {
            Outcome::Created {
                asset_id: Some(asset_id),
                count: 1,
            }
        } else {
            Outcome::AlreadyDone {
                asset_id: Some(asset_id),
            }
        })
    }

    /// `--use-import-video`: one external recording per owner (none twice).
    pub async fn create_external(
        &self,
        rec: &BbbRecording,
        owners: &[Owner],
    ) -> Result<Outcome, MigrationError> {
        let source = source_of(rec)?;
        let now = now_unix();
        let list: Vec<ExternalRecording> = owners
            .iter()
            .map(|o| ExternalRecording {
                id: crate::id::random_id(),
                record_id: rec.record_id.clone(),
                owner: o.username.clone(),
                name: rec.name.clone(),
                start_at_ms: rec.start_time_ms,
                source_url: source.to_owned(),
                kind: "bigbluebutton".to_owned(),
                asset_id: None,
                created_at: now,
            })
            .collect();
        let names: Vec<&str> = owners.iter().map(|o| o.username.as_str()).collect();
        let detail = format!("external recordings for {}", names.join(", "));
        let created = self
            .db
            .create_external_recordings(&rec.record_id, &list, &detail, now)
            .await?;
        Ok(if created > 0 {
            Outcome::Created {
                asset_id: None,
                count: created,
            }
        } else {
            Outcome::AlreadyDone { asset_id: None }
        })
    }

    /// Page `page` (from 1) of every listed recording, and how many there are.
    pub async fn recordings(
        &self,
        limit: u32,
        page: u32,
    ) -> Result<(Vec<model::MigrationEntry>, i64), MigrationError> {
        let offset = i64::from(page - 1) * i64::from(limit);
        Ok(self
            .db
            .list_bbb_recordings(offset, i64::from(limit))
            .await?)
    }

    pub async fn claims(&self) -> Result<Vec<Claim>, MigrationError> {
        Ok(self.db.list_bbb_claims().await?)
    }

    /// Gives a manual-claim asset to `owner` (its `meta.creator_id`).
    pub async fn claim(
        &self,
        assets: &AssetService,
        asset_id: &str,
        owner: &str,
    ) -> Result<Asset, MigrationError> {
        if !crate::accounts::valid_username(owner) {
            return Err(MigrationError::Invalid(format!(
                "owner: {owner:?} is not a username (letters, digits, _ - . @; at most 128)"
            )));
        }
        let record_id = self
            .db
            .bbb_record_of_asset(asset_id)
            .await?
            .ok_or_else(|| {
                MigrationError::NotFound(format!("asset {asset_id} is not a migrated recording"))
            })?;
        let asset = assets.get(asset_id).await?;
        if let Some(current) = asset.settings.meta.creator_id.as_deref() {
            if current == owner {
                return Ok(asset);
            }
            return Err(MigrationError::Invalid(format!(
                "asset {asset_id} is already owned by {current}"
            )));
        }
        let meta = AssetMeta {
            creator_id: Some(owner.to_owned()),
            ..asset.settings.meta.clone()
        };
        let asset = assets
            .set_meta(asset_id, meta)
            .await?
            .ok_or_else(|| MigrationError::NotFound(format!("asset {asset_id} not found")))?;
        self.db
            .add_bbb_owner(
                &record_id,
                &Owner {
                    username: owner.to_owned(),
                    full_name: None,
                    email: None,
                    origin: OwnerOrigin::Claim,
                },
            )
            .await?;
        Ok(asset)
    }

    pub async fn external_recordings(
        &self,
        owner: Option<&str>,
    ) -> Result<Vec<ExternalRecording>, MigrationError> {
        Ok(self.db.list_external_recordings(owner).await?)
    }

    pub async fn external_recording(&self, id: &str) -> Result<ExternalRecording, MigrationError> {
        let not_found = || MigrationError::NotFound(format!("no external recording {id}"));
        if !crate::id::is_valid_id(id) {
            return Err(not_found());
        }
        self.db
            .get_external_recording(id)
            .await?
            .ok_or_else(not_found)
    }

    /// Starts the import of an external recording into its owner's asset, once; a second call
    /// returns the same asset.
    pub async fn import(&self, id: &str) -> Result<(ExternalRecording, String), MigrationError> {
        let ext = self.external_recording(id).await?;
        if let Some(asset_id) = ext.asset_id.clone() {
            return Ok((ext, asset_id));
        }
        let rec = BbbRecording {
            record_id: ext.record_id.clone(),
            meeting_id: String::new(),
            name: ext.name.clone(),
            start_time_ms: ext.start_at_ms,
            origin_server: None,
            source_url: Some(ext.source_url.clone()),
            raw_xml: String::new(),
        };
        let (asset, job) = recording_asset(&rec, &ext.source_url, Some(&ext.owner), now_unix());
        let (asset_id, _) = self
            .db
            .start_external_import(id, &asset, &job, now_unix())
            .await?
            .ok_or_else(|| MigrationError::NotFound(format!("no external recording {id}")))?;
        let ext = self.external_recording(id).await?;
        Ok((ext, asset_id))
    }
}
