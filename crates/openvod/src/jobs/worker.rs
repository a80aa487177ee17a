//! The worker loop. `run_one` claims and runs at most one job, so tests can drive the queue step by step.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::{ClaimedJob, JobResult};
use crate::assets::{AssetError, AssetService};
use crate::error::DbError;
use crate::id::now_unix;

/// Tries before a retryable failure becomes permanent.
pub const MAX_ATTEMPTS: u32 = 5;
/// Fallback poll for jobs queued by other processes; this process's own enqueues wake workers at once.
const IDLE_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ran,
    Idle,
}

#[derive(Clone)]
pub struct Worker {
    db: std::sync::Arc<dyn crate::jobs::repo::JobRepo>,
    assets: Arc<AssetService>,
    /// Lease length; a heartbeat renews it every third of this while the job runs.
    lease_secs: i64,
    /// What this worker takes (the rest is left to remote workers).
    kinds: super::Kinds,
}

/// Seconds to wait before attempt `attempts + 1`: 5 s, 25 s, 2 min, 10 min, ...
pub fn backoff_secs(attempts: u32) -> i64 {
    5i64.saturating_pow(attempts.clamp(1, 6))
}

/// Runs past `MAX_ATTEMPTS` a job may get for its failure to be recorded.
const RECORD_TRIES: u32 = 3;

/// What a job that failed for good (on its `attempts`-th run) leaves in the queue. `record` writes
/// its failure on its asset (or track, or task: `AssetService::job_failed`) and is given `bound`
/// (half a lease, so the finish after it still holds the lease); when it fails or stalls, the job
/// is put back to run again later instead of being finished, so an asset is not left `preparing`
/// under a job that ended, at most [`RECORD_TRIES`] runs past `MAX_ATTEMPTS` (a database that
/// keeps refusing that write must not make the whole work rerun for ever).
pub(crate) async fn failed_for_good(
    record: impl std::future::Future<Output = Result<(), AssetError>>,
    error: &AssetError,
    attempts: u32,
    bound: Duration,
) -> JobResult {
    match crate::error::within(bound, record).await {
        Ok(()) => JobResult::Failed {
            error: error.to_string(),
        },
        Err(why) if attempts >= MAX_ATTEMPTS + RECORD_TRIES => {
            tracing::error!(error = %why, "could not record a job failure; the job ends anyway");
            JobResult::Failed {
                error: error.to_string(),
            }
        }
        Err(why) => {
            tracing::error!(error = %why, "could not record a job failure; the job will run again");
            JobResult::Retry {
                error: error.to_string(),
                run_at: now_unix() + backoff_secs(MAX_ATTEMPTS),
            }
        }
    }
}

impl Worker {
    pub fn new(
        db: std::sync::Arc<dyn crate::jobs::repo::JobRepo>,
        assets: Arc<AssetService>,
        lease_secs: u64,
    ) -> Worker {
        Worker {
            db,
            assets,
            lease_secs: lease_secs.max(3) as i64,
            kinds: super::Kinds::All,
        }
    }

    /// Leaves `kinds` to remote workers.
    pub fn leaving(mut self, kinds: &[String]) -> Worker {
        if !kinds.is_empty() {
            self.kinds = super::Kinds::Except(kinds.to_vec());
        }
        self
    }

    /// Claims the next due job and runs it to the end. The job runs in its own task, which is the
    /// panic boundary; dropping this future aborts the job, and its lease then lets another worker
    /// take it over.
    pub async fn run_one(&self) -> Result<Outcome, DbError> {
        // A claim or a finish taking longer than a lease waits on a database that stopped
        // answering; whatever it did is undone by the lease running out.
        let lease = Duration::from_secs(self.lease_secs.max(1) as u64);
        let claim = self.db.claim_job(now_unix(), self.lease_secs, &self.kinds);
        let Some(claimed) = crate::error::within(lease, claim).await? else {
            return Ok(Outcome::Idle);
        };
        let ClaimedJob {
            id,
            job,
            attempts,
            lease_token,
        } = claimed;
        // Ends when the lease is no longer ours: taken over, or a renewal that did not come back
        // within a whole lease (the database stalled for us), by when another worker may hold it.
        let mut heartbeat = {
            let db = self.db.clone();
            let token = lease_token.clone();
            let lease_secs = self.lease_secs;
            AbortOnDropHandle::new(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let renewal = db.heartbeat_job(id, &token, now_unix() + lease_secs);
                    match tokio::time::timeout(lease, renewal).await {
                        Ok(Ok(true)) => {}
                        Ok(Ok(false)) => return "the lease was taken over",
                        Ok(Err(e)) => tracing::warn!(job_id = id, error = %e, "heartbeat failed"),
                        Err(_) => return "no renewal came back within a lease",
                    }
                }
            }))
        };
        let mut run = {
            let assets = self.assets.clone();
            let job = job.clone();
            let span = tracing::info_span!("job", job_id = id, kind = job.kind(), attempts);
            AbortOnDropHandle::new(tokio::spawn(
                async move { assets.run_job(&job).await }.instrument(span),
            ))
        };
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            outcome = &mut run => outcome,
            ended = &mut heartbeat => {
                // Someone else may be running it now: stop (dropping `run` aborts the job and
                // kills its ffmpeg) rather than work on and have the result refused.
                let why = ended.unwrap_or("the heartbeat stopped");
                tracing::warn!(job_id = id, kind = job.kind(), why, "lease lost; job stopped");
                return Ok(Outcome::Ran);
            }
        };
        drop(heartbeat);
        let result = match outcome {
            Ok(Ok(())) => {
                tracing::info!(
                    job_id = id,
                    kind = job.kind(),
                    attempts,
                    secs = started.elapsed().as_secs_f64(),
                    "job done"
                );
                JobResult::Done
            }
            Ok(Err(e)) if e.is_retryable() && attempts < MAX_ATTEMPTS => {
                tracing::warn!(job_id = id, error = %e, "job failed; will retry");
                JobResult::Retry {
                    error: e.to_string(),
                    run_at: now_unix() + backoff_secs(attempts),
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(job_id = id, error = %e, "job failed for good");
                // Only the lease holder may fail the asset: another worker may be redoing the job.
                let renewal = self
                    .db
                    .heartbeat_job(id, &lease_token, now_unix() + self.lease_secs);
                if crate::error::within(lease, renewal).await? {
                    failed_for_good(self.assets.job_failed(&job, &e), &e, attempts, lease / 2).await
                } else {
                    JobResult::Failed {
                        error: e.to_string(),
                    }
                }
            }
            Err(panic) => {
                let error = format!("job panicked: {panic}");
                tracing::error!(job_id = id, %error);
                let e = AssetError::Invalid(error.clone());
                let renewal = self
                    .db
                    .heartbeat_job(id, &lease_token, now_unix() + self.lease_secs);
                if crate::error::within(lease, renewal).await? {
                    failed_for_good(self.assets.job_failed(&job, &e), &e, attempts, lease / 2).await
                } else {
                    JobResult::Failed { error }
                }
            }
        };
        let finish = self.db.finish_job(id, &lease_token, &result, now_unix());
        if !crate::error::within(lease, finish).await? {
            tracing::warn!(
                job_id = id,
                "lease lost before the job finished; result discarded"
            );
        }
        Ok(Outcome::Ran)
    }

    /// Runs jobs until `cancel` fires. A job still running then is dropped (its ffmpeg killed) and
    /// left to its lease.
    pub async fn run(self, cancel: CancellationToken) {
        let signal = self.db.job_signal();
        loop {
            // Registered before looking for work, so a job queued meanwhile is not missed.
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let step = tokio::select! {
                _ = cancel.cancelled() => return,
                step = self.run_one() => step,
            };
            let pause = match step {
                Ok(Outcome::Ran) => continue,
                Ok(Outcome::Idle) => IDLE_POLL,
                Err(e) => {
                    tracing::error!(error = %e, "job queue unavailable");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = notified => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DbError;

    #[tokio::test]
    async fn a_failure_that_cannot_be_recorded_puts_the_job_back_instead_of_ending_it() {
        let error = AssetError::Invalid("the input is not media".to_owned());
        let bound = Duration::from_millis(50);
        let recorded = failed_for_good(std::future::ready(Ok(())), &error, 1, bound).await;
        assert!(matches!(recorded, JobResult::Failed { error } if error.contains("not media")));
        // The database answered with an error, or not at all within the bound.
        let refused = || std::future::ready(Err(AssetError::Db(DbError::Corrupt("x".to_owned()))));
        for result in [
            failed_for_good(refused(), &error, 1, bound).await,
            failed_for_good(std::future::pending(), &error, MAX_ATTEMPTS, bound).await,
        ] {
            match result {
                JobResult::Retry { error, run_at } => {
                    assert!(error.contains("not media"));
                    assert!(run_at >= now_unix() + backoff_secs(MAX_ATTEMPTS) - 1);
                }
                other => panic!("the job must run again, not end: {other:?}"),
            }
        }
        // Not for ever: past its tries the job ends as it would have.
        let last = failed_for_good(refused(), &error, MAX_ATTEMPTS + RECORD_TRIES, bound).await;
        assert!(matches!(last, JobResult::Failed { .. }), "{last:?}");
    }
}
