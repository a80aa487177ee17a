//! Remote workers: `openvod worker --server URL --token ID:SECRET` on a machine with only ffmpeg
//! and a network path to the server (no database credentials, no shared disk). The server side
//! (`RemoteJobs`, routes in `http`) leases it jobs of the kinds that work on files alone
//! (`jobs::REMOTE_KINDS`: pieces of a split encode), serves the inputs, takes the results, and
//! fences a worker whose lease was taken over: every call names the lease, and a lost lease is
//! a 409. The worker loop is `client::RemoteWorker`.

pub mod client;
pub mod http;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::assets::{AssetError, AssetService};
use crate::error::{DbError, ErrorKind};
use crate::id::now_unix;
use crate::jobs::repo::JobRepo;
use crate::jobs::{backoff_secs, ClaimedJob, Job, JobResult, Kinds, MAX_ATTEMPTS, REMOTE_KINDS};
use crate::pipeline::{PieceSpec, Pipeline, PipelineError};
use crate::storage::{ArcStore, StoreKey, StoredObject};

/// The header every call about a leased job carries its lease token in.
pub const LEASE_HEADER: &str = "x-openvod-lease";
/// The header the piece's audio comes with: when it starts, in seconds from the piece's start.
pub const AUDIO_START_HEADER: &str = "x-openvod-audio-start";
/// Longest long poll for a job.
pub const MAX_WAIT_SECS: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// Job kinds the worker runs (a subset of `jobs::REMOTE_KINDS`).
    pub kinds: Vec<String>,
    /// How long to wait for a job, at most `MAX_WAIT_SECS`.
    pub wait_secs: u64,
}

/// A job leased to a remote worker, with what it needs to run it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub id: i64,
    pub lease_token: String,
    /// Heartbeat at least every third of this.
    pub lease_secs: i64,
    pub kind: String,
    pub asset_id: String,
    pub piece: PieceSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishRequest {
    /// Why the job failed; absent when its results are all uploaded.
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("the lease on job {0} is not held (expired and taken over, or finished)")]
    LeaseLost(i64),
    #[error("{0}")]
    Invalid(String),
    #[error("job {0} has nothing left to do")]
    Gone(i64),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("scratch I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl RemoteError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RemoteError::LeaseLost(_) => ErrorKind::Conflict,
            RemoteError::Invalid(_) => ErrorKind::Invalid,
            RemoteError::Gone(_) => ErrorKind::Gone,
            RemoteError::Pipeline(PipelineError::MissingOutput(_)) => ErrorKind::Invalid,
            RemoteError::Db(e) => e.kind(),
            RemoteError::Storage(e) => e.kind(),
            RemoteError::Pipeline(_) | RemoteError::Io(_) => ErrorKind::Internal,
        }
    }
}

/// The server side of remote work.
pub struct RemoteJobs {
    jobs: Arc<dyn JobRepo>,
    pipeline: Arc<Pipeline>,
    assets: Arc<AssetService>,
    store: ArcStore,
    scratch_dir: PathBuf,
    lease_secs: i64,
}

impl RemoteJobs {
    pub fn new(
        jobs: Arc<dyn JobRepo>,
        pipeline: Arc<Pipeline>,
        assets: Arc<AssetService>,
        store: ArcStore,
        scratch_dir: PathBuf,
        lease_secs: u64,
    ) -> RemoteJobs {
        RemoteJobs {
            jobs,
            pipeline,
            assets,
            store,
            scratch_dir,
            lease_secs: lease_secs.max(3) as i64,
        }
    }

    /// Leases the next job of `kinds`, waiting up to `wait` for one to be queued.
    pub async fn claim(
        &self,
        kinds: &[String],
        wait: Duration,
    ) -> Result<Option<Assignment>, RemoteError> {
        if kinds.is_empty() || kinds.iter().any(|k| !REMOTE_KINDS.contains(&k.as_str())) {
            return Err(RemoteError::Invalid(format!(
                "kinds must be some of {REMOTE_KINDS:?}, got {kinds:?}"
            )));
        }
        let deadline = tokio::time::Instant::now() + wait;
        let signal = self.jobs.job_signal();
        let only = Kinds::Only(kinds.to_vec());
        loop {
            // Registered before looking, so a job queued meanwhile is not missed.
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Bounded as a local worker's claim is (`jobs::worker`): past a lease it is waiting
            // on a database that stopped answering.
            let claim = self.jobs.claim_job(now_unix(), self.lease_secs, &only);
            let lease = std::time::Duration::from_secs(self.lease_secs.max(1) as u64);
            if let Some(claimed) = crate::error::within(lease, claim).await? {
                match self.spec(&claimed).await {
                    Ok((asset_id, piece)) => {
                        return Ok(Some(Assignment {
                            id: claimed.id,
                            lease_token: claimed.lease_token.clone(),
                            lease_secs: self.lease_secs,
                            kind: claimed.job.kind().to_owned(),
                            asset_id,
                            piece,
                        }))
                    }
                    Err(RemoteError::Gone(_)) => {
                        self.jobs
                            .finish_job(
                                claimed.id,
                                &claimed.lease_token,
                                &JobResult::Done,
                                now_unix(),
                            )
                            .await?;
                    }
                    Err(e) => self.settle(&claimed, Some(e.to_string())).await?,
                }
                continue;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let pause = (deadline - now).min(Duration::from_secs(1));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// The job `id` if `lease` still holds it.
    async fn held(&self, id: i64, lease: &str) -> Result<ClaimedJob, RemoteError> {
        self.jobs
            .running_job(id, lease)
            .await?
            .ok_or(RemoteError::LeaseLost(id))
    }

    /// The asset and piece of a leased job.
    async fn spec(&self, job: &ClaimedJob) -> Result<(String, PieceSpec), RemoteError> {
        let Job::TranscodePiece {
            asset_id,
            first,
            count,
        } = &job.job
        else {
            return Err(RemoteError::Invalid(format!(
                "job {} is not one a remote worker runs",
                job.id
            )));
        };
        let piece = self
            .pipeline
            .piece_spec(asset_id, *first, *count)
            .await?
            .ok_or(RemoteError::Gone(job.id))?;
        Ok((asset_id.clone(), piece))
    }

    pub async fn heartbeat(&self, id: i64, lease: &str) -> Result<(), RemoteError> {
        if self
            .jobs
            .heartbeat_job(id, lease, now_unix() + self.lease_secs)
            .await?
        {
            Ok(())
        } else {
            Err(RemoteError::LeaseLost(id))
        }
    }

    /// The job's input file, streamed from the store.
    pub async fn input(&self, id: i64, lease: &str) -> Result<StoredObject, RemoteError> {
        let job = self.held(id, lease).await?;
        let (_, piece) = self.spec(&job).await?;
        Ok(self
            .store
            .get(&StoreKey::parse(&piece.input_key)?, 0, None)
            .await?)
    }

    /// The piece's audio (ADTS) and when it starts relative to the piece.
    pub async fn audio(&self, id: i64, lease: &str) -> Result<(Vec<u8>, f64), RemoteError> {
        let job = self.held(id, lease).await?;
        let (asset_id, piece) = self.spec(&job).await?;
        Ok(self.pipeline.piece_audio(&asset_id, &piece).await?)
    }

    /// Stores one result file of the job, sent as `body`.
    pub async fn put_file(
        &self,
        id: i64,
        lease: &str,
        rendition: &str,
        file: &str,
        body: axum::body::Body,
    ) -> Result<(), RemoteError> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let job = self.held(id, lease).await?;
        let (asset_id, piece) = self.spec(&job).await?;
        let tmp = tempfile::NamedTempFile::new_in(&self.scratch_dir)?.into_temp_path();
        let mut out = tokio::fs::File::create(&tmp).await?;
        let mut stream = body.into_data_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| RemoteError::Invalid(format!("reading the body: {e}")))?;
            written += chunk.len() as u64;
            if written > MAX_RESULT_FILE {
                return Err(RemoteError::Invalid(format!(
                    "a result file is limited to {MAX_RESULT_FILE} bytes"
                )));
            }
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        drop(out);
        self.pipeline
            .store_piece_file(&asset_id, &piece, rendition, file, &tmp)
            .await?;
        Ok(())
    }

    /// Ends the job: with every result stored, the piece is done (and the asset's outputs are
    /// published if it was the last); with an error, the job is retried or given up on.
    pub async fn finish(
        &self,
        id: i64,
        lease: &str,
        error: Option<String>,
    ) -> Result<(), RemoteError> {
        let job = self.held(id, lease).await?;
        let error = match error {
            Some(error) => Some(error),
            None => match self.spec(&job).await {
                Ok((asset_id, piece)) => match self.pipeline.piece_done(&asset_id, &piece).await {
                    Ok(()) => None,
                    Err(e) => Some(e.to_string()),
                },
                Err(RemoteError::Gone(_)) => None,
                Err(e) => Some(e.to_string()),
            },
        };
        self.settle(&job, error).await
    }

    /// Records the job's result, as the local worker does.
    async fn settle(&self, job: &ClaimedJob, error: Option<String>) -> Result<(), RemoteError> {
        let result = match error {
            None => JobResult::Done,
            Some(error) if job.attempts < MAX_ATTEMPTS => {
                tracing::warn!(job_id = job.id, %error, "remote job failed; will retry");
                JobResult::Retry {
                    error,
                    run_at: now_unix() + backoff_secs(job.attempts),
                }
            }
            Some(error) => {
                tracing::warn!(job_id = job.id, %error, "remote job failed for good");
                let e = AssetError::Invalid(error);
                let bound = std::time::Duration::from_secs(self.lease_secs.max(1) as u64) / 2;
                let record = self.assets.job_failed(&job.job, &e);
                crate::jobs::failed_for_good(record, &e, job.attempts, bound).await
            }
        };
        if self
            .jobs
            .finish_job(job.id, &job.lease_token, &result, now_unix())
            .await?
        {
            Ok(())
        } else {
            Err(RemoteError::LeaseLost(job.id))
        }
    }
}

/// Largest result file a remote worker may send (a segment is a few MiB).
const MAX_RESULT_FILE: u64 = 512 * 1024 * 1024;
