//! What the events domain needs stored.

use async_trait::async_trait;

use crate::error::DbError;
use crate::events::model::{Attempt, ClaimedDelivery, DeliveryResult, Event, WebhookEndpoint};

/// The event log, webhook endpoints and the delivery outbox. Events themselves are written by the
/// state-changing methods of the other repos, in their transactions.
#[async_trait]
pub trait EventRepo: Send + Sync {
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
