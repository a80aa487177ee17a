//! The dispatcher: claims due deliveries from the outbox in batches, sends them, and records every
//! attempt. A crash loses no delivery: a claimed one is leased, and retried once its lease runs out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::model::{Attempt, ClaimedDelivery, DeliveryOutcome, DeliveryResult, WebhookFormat};
use super::sign::{mux_signature, standard_signature};
use super::RenderEvent;
use crate::config::WebhooksConfig;
use crate::error::DbError;
use crate::id::now_unix_ms;
use crate::outbound::Outbound;

/// Response bodies are read up to this size (and the rest ignored).
const MAX_RESPONSE_BODY: usize = 64 * 1024;
const BATCH: u32 = 256;
const IDLE_POLL: Duration = Duration::from_secs(1);

pub struct Dispatcher {
    db: std::sync::Arc<dyn crate::events::repo::EventRepo>,
    outbound: Arc<Outbound>,
    client: reqwest::Client,
    render: Arc<dyn RenderEvent>,
    schedule: Vec<Duration>,
    timeout: Duration,
    disable_after: Duration,
    permits: Arc<Semaphore>,
}

impl Dispatcher {
    pub fn new(
        db: std::sync::Arc<dyn crate::events::repo::EventRepo>,
        outbound: Arc<Outbound>,
        render: Arc<dyn RenderEvent>,
        config: &WebhooksConfig,
    ) -> Dispatcher {
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        Dispatcher {
            client: outbound.webhook_client(timeout),
            db,
            outbound,
            render,
            schedule: config.schedule(),
            timeout,
            disable_after: Duration::from_secs(config.disable_after_secs),
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
        }
    }

    /// Claims one batch of due deliveries, sends them and records the results. Returns how many
    /// were attempted (zero: nothing was due).
    pub async fn run_once(&self) -> Result<usize, DbError> {
        let lease = self.lease();
        let claimed_at = Instant::now();
        let batch = self
            .db
            .claim_deliveries(now_unix_ms(), lease.as_millis() as i64, BATCH)
            .await?;
        let n = batch.len();
        if n == 0 {
            return Ok(0);
        }
        // Deliveries about one object go to one endpoint one after another, in log order.
        let mut groups: BTreeMap<(String, String), Vec<ClaimedDelivery>> = BTreeMap::new();
        for d in batch {
            groups
                .entry((
                    d.endpoint.id.clone(),
                    d.event.snapshot.object_id().to_owned(),
                ))
                .or_default()
                .push(d);
        }
        let tasks = groups.into_values().map(|group| async move {
            let mut results = Vec::with_capacity(group.len());
            for delivery in group {
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .expect("semaphore is never closed");
                // Only start what can finish within the lease; the rest is taken again once it expires.
                if claimed_at.elapsed() + self.timeout + Duration::from_secs(1) > lease {
                    break;
                }
                results.push(self.deliver(delivery).await);
            }
            results
        });
        let results: Vec<DeliveryResult> = futures_util::future::join_all(tasks)
            .await
            .into_iter()
            .flatten()
            .collect();
        for r in &results {
            let outcome = match r.outcome {
                crate::events::model::DeliveryOutcome::Delivered => "delivered",
                crate::events::model::DeliveryOutcome::RetryAt(_) => "retry",
                crate::events::model::DeliveryOutcome::GaveUp => "gave_up",
            };
            crate::metrics::metrics()
                .webhook_deliveries
                .get_or_create(&crate::metrics::OutcomeLabels {
                    outcome: outcome.to_owned(),
                })
                .inc();
        }
        self.db
            .record_deliveries(
                &results,
                now_unix_ms(),
                self.disable_after.as_millis() as i64,
            )
            .await?;
        Ok(n)
    }

    /// What happens after attempt number `attempt` (1-based) failed.
    fn after_failure(&self, attempt: u32, now_ms: i64) -> DeliveryOutcome {
        match self.schedule.get(attempt as usize) {
            Some(delay) => DeliveryOutcome::RetryAt(now_ms + delay.as_millis() as i64),
            None => DeliveryOutcome::GaveUp,
        }
    }

    async fn deliver(&self, delivery: ClaimedDelivery) -> DeliveryResult {
        let event = &delivery.event;
        let endpoint = &delivery.endpoint;
        let mut envelope = self.render.render(endpoint.format, event);
        if endpoint.format == WebhookFormat::TencentV3 && !endpoint.secret.is_empty() {
            // Tencent's optional signing: T is an expiry time, Sign = md5(SignKey + T), in the body.
            let t = now_unix_ms() / 1000 + 600;
            envelope["T"] = serde_json::json!(t);
            envelope["Sign"] = serde_json::json!(tencent_sign(&endpoint.secret, t));
        } else if delivery.attempts > 0 && endpoint.format != WebhookFormat::TencentV3 {
            // Like Mux, a retried payload lists the earlier attempts.
            envelope["attempts"] = self.previous_attempts(&delivery).await;
        }
        let body = serde_json::to_vec(&envelope).expect("envelopes serialize");
        let started_ms = now_unix_ms();
        let timestamp = started_ms / 1000;
        let mut request = self
            .client
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        match endpoint.format {
            WebhookFormat::Mux => {
                request = request.header(
                    "mux-signature",
                    mux_signature(&endpoint.secret, timestamp, &body),
                );
            }
            WebhookFormat::TencentV3 => {}
            WebhookFormat::Standard => {
                request = request
                    .header("webhook-id", &event.id)
                    .header("webhook-timestamp", timestamp.to_string());
                if let Some(signature) =
                    standard_signature(&endpoint.secret, &event.id, timestamp, &body)
                {
                    request = request.header("webhook-signature", signature);
                }
            }
        }
        let started = Instant::now();
        let url_ok =
            url::Url::parse(&endpoint.url).is_ok_and(|u| self.outbound.literal_ip_allowed(&u));
        let (status, error) = if !url_ok {
            (
                None,
                Some("the endpoint URL points to an internal address".to_owned()),
            )
        } else {
            match request.body(body).send().await {
                Ok(response) => {
                    let status = response.status();
                    // Read (a bounded part of) the body so the connection can be reused.
                    let mut stream = response.bytes_stream();
                    let mut read = 0;
                    while let Some(Ok(chunk)) = stream.next().await {
                        read += chunk.len();
                        if read >= MAX_RESPONSE_BODY {
                            break;
                        }
                    }
                    let error =
                        (!status.is_success()).then(|| format!("endpoint answered HTTP {status}"));
                    (Some(status.as_u16()), error)
                }
                Err(e) if e.is_timeout() => {
                    (None, Some(format!("no answer within {:?}", self.timeout)))
                }
                Err(e) => (None, Some(describe(&e))),
            }
        };
        let success = error.is_none();
        let attempt_number = delivery.attempts + 1;
        let now_ms = now_unix_ms();
        let outcome = if success {
            DeliveryOutcome::Delivered
        } else {
            self.after_failure(attempt_number, now_ms)
        };
        DeliveryResult {
            delivery_id: delivery.id,
            lease_token: delivery.lease_token.clone(),
            outcome,
            attempt: Attempt {
                delivery_id: delivery.id,
                event_id: event.id.clone(),
                endpoint_id: endpoint.id.clone(),
                attempted_at_ms: started_ms,
                latency_ms: started.elapsed().as_millis() as i64,
                status_code: status,
                error,
                success,
            },
        }
    }

    async fn previous_attempts(&self, delivery: &ClaimedDelivery) -> serde_json::Value {
        let attempts = self
            .db
            .list_attempts(Some(&delivery.event.id), Some(&delivery.endpoint.id), 100)
            .await
            .unwrap_or_default();
        attempts
            .iter()
            .rev()
            .filter(|a| a.delivery_id == delivery.id)
            .map(|a| {
                serde_json::json!({
                    "id": a.attempted_at_ms,
                    "address": delivery.endpoint.url,
                    "created_at": crate::id::iso8601_micros(a.attempted_at_ms),
                    "max_attempts": self.schedule.len(),
                    "response_status_code": a.status_code,
                    "response_body": a.error,
                    "response_headers": {},
                })
            })
            .collect()
    }

    /// How long a claimed batch is ours.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }

    /// Dispatches until `cancel` fires; wakes as soon as this process writes an event.
    pub async fn run(&self, cancel: CancellationToken) {
        let signal = self.db.event_signal();
        // A step still going a request's timeout past its lease has nothing left to do (its
        // deliveries are leased again) and is waiting on a database that stopped answering.
        let bound = self.lease() + self.timeout;
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let step = tokio::select! {
                _ = cancel.cancelled() => return,
                step = crate::error::within(bound, self.run_once()) => step,
            };
            let pause = match step {
                Ok(0) => IDLE_POLL,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "webhook outbox unavailable");
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

/// `md5_hex(SignKey + T)`, Tencent VOD's callback signature.
pub fn tencent_sign(sign_key: &str, t: i64) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(format!("{sign_key}{t}").as_bytes()))
}

fn describe(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    #[test]
    fn tencent_callback_sign_is_md5_of_key_and_expiry() {
        assert_eq!(
            super::tencent_sign("abc", 123),
            "e99a18c428cb38d5f260853678922e03"
        );
    }
}
