//! The job queue, as stored.

use async_trait::async_trait;

use crate::error::DbError;
use crate::jobs::{ClaimedJob, Job, JobResult, Kinds};

#[async_trait]
pub trait JobRepo: Send + Sync {
    async fn enqueue_job(&self, job: &Job, run_at: i64) -> Result<i64, DbError>;
    /// Claims the oldest runnable job of `kinds` for `lease_secs`, or `None` when nothing is due.
    async fn claim_job(
        &self,
        now: i64,
        lease_secs: i64,
        kinds: &Kinds,
    ) -> Result<Option<ClaimedJob>, DbError>;
    /// The job `id` if `lease_token` still holds it (it is running under that lease).
    async fn running_job(&self, id: i64, lease_token: &str) -> Result<Option<ClaimedJob>, DbError>;
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
    /// How many jobs there are of each `(kind, state)`.
    async fn count_jobs(&self) -> Result<Vec<(String, String, i64)>, DbError>;
    /// Notified (`notify_waiters`) whenever this process queues a job.
    fn job_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// Returns running jobs whose lease expired before `now` to the queue; the count requeued.
    async fn requeue_stale_jobs(&self, now: i64) -> Result<u64, DbError>;
}
