//! Events and webhooks: the durable event log (written by `db` in the transaction of each state
//! change), webhook endpoints, the delivery outbox and its dispatcher, and the pull API.
//!
//! Guarantee: every event is delivered at least once to every endpoint that wanted it when it
//! happened (unless the endpoint is deleted or disabled). For one endpoint, events about one object
//! are delivered in log order, except that an event parked in retry does not hold back later ones.

pub mod dispatch;
pub mod http;
pub mod model;
pub mod repo;
pub mod sign;

use std::sync::Arc;
use std::time::Duration;

use crate::config::ConfiguredEndpoint;
use crate::error::DbError;
use crate::error::ErrorKind;
use crate::id::{is_valid_id, now_unix, now_unix_ms, random_id};
use crate::outbound::{Outbound, OutboundError};
use model::{Attempt, Event, WebhookEndpoint, WebhookFormat, EVENT_TYPES};

/// Renders an event as receivers of `format` get it (provided by the compat adapters), so the core
/// does not depend on any vendor's shape.
pub trait RenderEvent: Send + Sync {
    fn render(&self, format: WebhookFormat, event: &Event) -> serde_json::Value;

    /// The pull API's rendering: the format that carries the event's type.
    fn envelope(&self, event: &Event) -> serde_json::Value {
        let format = if WebhookFormat::TencentV3.carries(&event.kind) {
            WebhookFormat::TencentV3
        } else {
            WebhookFormat::Mux
        };
        self.render(format, event)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("webhook endpoint {0} not found")]
    EndpointNotFound(String),
    #[error("event {0} not found")]
    EventNotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("webhook URL refused: {0}")]
    Url(#[from] OutboundError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl EventsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EventsError::EndpointNotFound(_) | EventsError::EventNotFound(_) => ErrorKind::NotFound,
            EventsError::Invalid(_) | EventsError::Url(_) => ErrorKind::Invalid,
            EventsError::Db(e) => e.kind(),
        }
    }
}

/// A requested change to an endpoint; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub format: Option<String>,
    /// `Some(None)` delivers every type.
    pub events: Option<Option<Vec<String>>>,
    pub enabled: Option<bool>,
    /// Replace the signing secret with a new one (for a secret lost or leaked).
    pub rotate_secret: bool,
}

pub struct EventService {
    db: std::sync::Arc<dyn crate::events::repo::EventRepo>,
    outbound: Arc<Outbound>,
    pub render: Arc<dyn RenderEvent>,
}

/// Longest accepted `wait` of the pull API, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;

impl EventService {
    pub fn new(
        db: std::sync::Arc<dyn crate::events::repo::EventRepo>,
        outbound: Arc<Outbound>,
        render: Arc<dyn RenderEvent>,
    ) -> EventService {
        EventService {
            db,
            outbound,
            render,
        }
    }

    fn check_types(events: &Option<Vec<String>>) -> Result<(), EventsError> {
        for kind in events.iter().flatten() {
            if !EVENT_TYPES.contains(&kind.as_str()) {
                return Err(EventsError::Invalid(format!(
                    "events: unknown event type {kind:?}; expected some of {}",
                    EVENT_TYPES.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn parse_format(format: &str) -> Result<WebhookFormat, EventsError> {
        WebhookFormat::parse(format).ok_or_else(|| {
            EventsError::Invalid(format!(
                "format: unknown value {format:?}; expected mux or standard"
            ))
        })
    }

    pub async fn create_endpoint(
        &self,
        url: &str,
        format: Option<&str>,
        events: Option<Vec<String>>,
        enabled: bool,
    ) -> Result<WebhookEndpoint, EventsError> {
        let format = Self::parse_format(format.unwrap_or("mux"))?;
        Self::check_types(&events)?;
        self.outbound.check_url(url).await?;
        let now = now_unix();
        let endpoint = WebhookEndpoint {
            id: random_id(),
            url: url.to_owned(),
            format,
            events,
            enabled,
            secret: sign::new_secret(format),
            source: "api".to_owned(),
            created_at: now,
            updated_at: now,
            failing_since_ms: None,
            disabled_reason: None,
        };
        self.db.create_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Creates or updates the endpoints declared in the config file (stable ids derived from the URL).
    pub async fn apply_configured(
        &self,
        configured: &[ConfiguredEndpoint],
    ) -> Result<(), EventsError> {
        use sha2::Digest;
        for c in configured {
            self.outbound.check_url(&c.url).await?;
            let format = Self::parse_format(&c.format)?;
            Self::check_types(&c.events)?;
            let id = format!(
                "cfg{}",
                &hex::encode(sha2::Sha256::digest(c.url.as_bytes()))[..29]
            );
            let existing = self.db.get_endpoint(&id).await?;
            let secret = match (&c.secret, &existing) {
                (Some(secret), _) => secret.clone(),
                (None, Some(e)) if sign::secret_fits(format, &e.secret) => e.secret.clone(),
                (None, _) => sign::new_secret(format),
            };
            if !sign::secret_fits(format, &secret) {
                return Err(EventsError::Invalid(format!(
                    "webhooks.endpoints: the secret for {} must be whsec_ + base64",
                    c.url
                )));
            }
            let now = now_unix();
            self.db
                .upsert_endpoint(&WebhookEndpoint {
                    id,
                    url: c.url.clone(),
                    format,
                    events: c.events.clone(),
                    enabled: true,
                    secret,
                    source: "config".to_owned(),
                    created_at: existing.as_ref().map_or(now, |e| e.created_at),
                    updated_at: now,
                    failing_since_ms: None,
                    disabled_reason: None,
                })
                .await?;
        }
        Ok(())
    }

    pub async fn get_endpoint(&self, id: &str) -> Result<WebhookEndpoint, EventsError> {
        if !is_valid_id(id) {
            return Err(EventsError::EndpointNotFound(id.to_owned()));
        }
        self.db
            .get_endpoint(id)
            .await?
            .ok_or_else(|| EventsError::EndpointNotFound(id.to_owned()))
    }

    pub async fn list_endpoints(&self) -> Result<Vec<WebhookEndpoint>, EventsError> {
        Ok(self.db.list_endpoints().await?)
    }

    pub async fn update_endpoint(
        &self,
        id: &str,
        change: EndpointChange,
    ) -> Result<WebhookEndpoint, EventsError> {
        let mut endpoint = self.get_endpoint(id).await?;
        if let Some(url) = change.url {
            self.outbound.check_url(&url).await?;
            endpoint.url = url;
        }
        if let Some(format) = change.format {
            let format = Self::parse_format(&format)?;
            if format != endpoint.format {
                endpoint.secret = sign::new_secret(format);
            }
            endpoint.format = format;
        }
        if change.rotate_secret {
            endpoint.secret = sign::new_secret(endpoint.format);
        }
        if let Some(events) = change.events {
            Self::check_types(&events)?;
            endpoint.events = events;
        }
        if let Some(enabled) = change.enabled {
            if enabled && !endpoint.enabled {
                // Re-enabled by hand: start counting failures afresh.
                endpoint.failing_since_ms = None;
                endpoint.disabled_reason = None;
            }
            endpoint.enabled = enabled;
        }
        endpoint.updated_at = now_unix();
        if !self.db.update_endpoint(&endpoint).await? {
            return Err(EventsError::EndpointNotFound(id.to_owned()));
        }
        Ok(endpoint)
    }

    pub async fn delete_endpoint(&self, id: &str) -> Result<(), EventsError> {
        if !is_valid_id(id) || !self.db.delete_endpoint(id).await? {
            return Err(EventsError::EndpointNotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Events after `after`; with `wait`, holds the request until one arrives or the wait ends.
    pub async fn list_events(
        &self,
        after: i64,
        limit: u32,
        kind: Option<&str>,
        object_id: Option<&str>,
        wait: Duration,
    ) -> Result<Vec<Event>, EventsError> {
        let deadline = tokio::time::Instant::now() + wait;
        let signal = self.db.event_signal();
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let events = self.db.list_events(after, limit, kind, object_id).await?;
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(events);
            }
            // Woken by this process's writes; the timeout also catches other processes' events.
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_secs(1)),
                notified,
            )
            .await;
        }
    }

    pub async fn get_event(&self, id: &str) -> Result<Event, EventsError> {
        self.db
            .get_event(id)
            .await?
            .ok_or_else(|| EventsError::EventNotFound(id.to_owned()))
    }

    pub async fn attempts(
        &self,
        event_id: Option<&str>,
        endpoint_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Attempt>, EventsError> {
        Ok(self.db.list_attempts(event_id, endpoint_id, limit).await?)
    }

    /// Sends a past event again (to one endpoint, or every endpoint that wants its type).
    pub async fn resend(
        &self,
        event_id: &str,
        endpoint_id: Option<&str>,
    ) -> Result<u64, EventsError> {
        self.get_event(event_id).await?;
        if let Some(id) = endpoint_id {
            self.get_endpoint(id).await?;
        }
        Ok(self
            .db
            .resend_event(event_id, endpoint_id, now_unix_ms())
            .await?)
    }

    /// Sends every event after `after` again to one endpoint.
    pub async fn replay(&self, endpoint_id: &str, after: i64) -> Result<u64, EventsError> {
        self.get_endpoint(endpoint_id).await?;
        Ok(self
            .db
            .replay_events(endpoint_id, after, now_unix_ms())
            .await?)
    }
}

/// Id of the endpoint that `ModifyEventConfig` (Tencent VOD) manages.
pub const TENCENT_ENDPOINT_ID: &str = "tencentv3events";

/// Tencent VOD's event configuration, kept as one `tencent-v3` endpoint (an empty URL means pull mode).
#[derive(Debug, Clone)]
pub struct TencentEventConfig {
    pub pull: bool,
    pub url: String,
    pub upload_events: bool,
    pub delete_events: bool,
    pub sign_key: String,
}

impl EventService {
    pub async fn tencent_config(&self) -> Result<TencentEventConfig, EventsError> {
        Ok(match self.db.get_endpoint(TENCENT_ENDPOINT_ID).await? {
            None => TencentEventConfig {
                pull: false,
                url: String::new(),
                upload_events: false,
                delete_events: false,
                sign_key: String::new(),
            },
            Some(e) => {
                let wants = |t: &str| {
                    e.events
                        .as_ref()
                        .is_none_or(|list| list.iter().any(|x| x == t))
                };
                TencentEventConfig {
                    pull: e.url.is_empty(),
                    url: e.url.clone(),
                    upload_events: wants("vod.file.uploaded"),
                    delete_events: wants("vod.file.deleted"),
                    sign_key: e.secret.clone(),
                }
            }
        })
    }

    pub async fn set_tencent_config(&self, config: &TencentEventConfig) -> Result<(), EventsError> {
        if !config.pull && !config.url.is_empty() {
            self.outbound.check_url(&config.url).await?;
        }
        if !sign::secret_fits(WebhookFormat::TencentV3, &config.sign_key) {
            return Err(EventsError::Invalid(
                "SignKey: letters and digits only, at most 32".to_owned(),
            ));
        }
        let mut events = vec!["vod.procedure.changed".to_owned()];
        if config.upload_events {
            events.push("vod.file.uploaded".to_owned());
        }
        if config.delete_events {
            events.push("vod.file.deleted".to_owned());
        }
        let now = now_unix();
        let existing = self.db.get_endpoint(TENCENT_ENDPOINT_ID).await?;
        let endpoint = WebhookEndpoint {
            id: TENCENT_ENDPOINT_ID.to_owned(),
            url: if config.pull {
                String::new()
            } else {
                config.url.clone()
            },
            format: WebhookFormat::TencentV3,
            events: Some(events),
            // Push mode without a URL delivers nowhere: keep the endpoint but off.
            enabled: config.pull || !config.url.is_empty(),
            secret: config.sign_key.clone(),
            source: "tencent".to_owned(),
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
            failing_since_ms: None,
            disabled_reason: None,
        };
        self.db.upsert_endpoint(&endpoint).await?;
        self.db.update_endpoint(&endpoint).await?;
        Ok(())
    }

    /// Reliable-mode pull: up to `limit` events, waiting up to `wait` for the first; each must be
    /// confirmed within `visibility` or it comes back. Handles are `<delivery id>.<token>`.
    /// How many Tencent-format events wait to be pulled (`DescribeEventsState`).
    pub async fn pullable(&self) -> Result<u64, EventsError> {
        Ok(self
            .db
            .count_pullable(TENCENT_ENDPOINT_ID, now_unix_ms())
            .await?)
    }

    pub async fn pull(
        &self,
        limit: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<(String, Event)>, EventsError> {
        let deadline = tokio::time::Instant::now() + wait;
        let signal = self.db.event_signal();
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self
                .db
                .pull_deliveries(
                    TENCENT_ENDPOINT_ID,
                    now_unix_ms(),
                    visibility.as_millis() as i64,
                    limit,
                )
                .await?;
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got
                    .into_iter()
                    .map(|(id, token, event)| (format!("{id}.{token}"), event))
                    .collect());
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    pub async fn confirm(&self, handles: &[String]) -> Result<u64, EventsError> {
        let parsed = handles
            .iter()
            .map(|h| {
                h.split_once('.')
                    .and_then(|(id, token)| Some((id.parse::<i64>().ok()?, token.to_owned())))
                    .ok_or_else(|| {
                        EventsError::Invalid(format!("EventHandles: {h:?} is not an event handle"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.db.confirm_deliveries(&parsed, now_unix_ms()).await?)
    }
}
