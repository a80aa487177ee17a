//! openvod's own API for events and webhooks (`/openvod/v1/...`): endpoint management, attempt logs,
//! re-sending, and the pull API with long polling.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::model::{Attempt, Event, WebhookEndpoint};
use super::{EndpointChange, MAX_WAIT_SECS};
use crate::http::auth::ApiCaller;
use crate::http::error::ApiError;
use crate::http::json::{created_response, ok, JsonBody};
use crate::http::AppState;
use crate::id::iso8601_micros;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/openvod/v1/webhook-endpoints",
            post(create_endpoint).get(list_endpoints),
        )
        .route(
            "/openvod/v1/webhook-endpoints/{id}",
            get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
        .route(
            "/openvod/v1/webhook-endpoints/{id}/attempts",
            get(endpoint_attempts),
        )
        .route("/openvod/v1/webhook-endpoints/{id}/replay", post(replay))
        .route("/openvod/v1/events", get(list_events))
        .route("/openvod/v1/events/{id}", get(get_event))
        .route("/openvod/v1/events/{id}/attempts", get(event_attempts))
        .route("/openvod/v1/events/{id}/resend", post(resend))
}

/// An endpoint as the API shows it. The signing secret is shown in full only when it is new (the
/// endpoint was created, or its secret replaced); otherwise only its last four characters.
fn endpoint_json(e: &WebhookEndpoint, reveal_secret: bool) -> Value {
    let tail: String = {
        let chars: Vec<char> = e.secret.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    let mut out = json!({
        "id": e.id,
        "url": e.url,
        "format": e.format.as_str(),
        "events": e.events,
        "enabled": e.enabled,
        "secret_hint": format!("…{tail}"),
        "source": e.source,
        "created_at": e.created_at.to_string(),
        "updated_at": e.updated_at.to_string(),
        "failing_since": e.failing_since_ms.map(iso8601_micros),
        "disabled_reason": e.disabled_reason,
    });
    if reveal_secret {
        out["secret"] = json!(e.secret);
    }
    out
}

fn attempt_json(a: &Attempt) -> Value {
    json!({
        "delivery_id": a.delivery_id,
        "event_id": a.event_id,
        "endpoint_id": a.endpoint_id,
        "attempted_at": iso8601_micros(a.attempted_at_ms),
        "latency_ms": a.latency_ms,
        "response_status_code": a.status_code,
        "error": a.error,
        "success": a.success,
    })
}

fn event_json(state: &AppState, event: &Event) -> Value {
    let mut envelope = state.events.render.envelope(event);
    envelope["cursor"] = json!(event.seq.to_string());
    envelope
}

#[derive(Deserialize)]
struct CreateEndpoint {
    url: String,
    format: Option<String>,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}

async fn create_endpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(body): JsonBody<CreateEndpoint>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let endpoint = state
        .events
        .create_endpoint(
            &body.url,
            body.format.as_deref(),
            body.events,
            body.enabled.unwrap_or(true),
        )
        .await?;
    Ok(created_response(endpoint_json(&endpoint, true)))
}

async fn list_endpoints(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let endpoints = state.events.list_endpoints().await?;
    Ok(ok(endpoints
        .iter()
        .map(|e| endpoint_json(e, false))
        .collect::<Vec<_>>()))
}

async fn get_endpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    Ok(ok(endpoint_json(
        &state.events.get_endpoint(&id).await?,
        false,
    )))
}

#[derive(Deserialize)]
struct UpdateEndpoint {
    url: Option<String>,
    format: Option<String>,
    /// `null` delivers every type; absent keeps the current filter.
    #[serde(default, deserialize_with = "present")]
    events: Option<Option<Vec<String>>>,
    enabled: Option<bool>,
    /// `true` replaces the signing secret; the answer then shows the new one, once.
    #[serde(default)]
    rotate_secret: bool,
}

/// Distinguishes `"events": null` (present, every type) from an absent field.
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

async fn update_endpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateEndpoint>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let before = state.events.get_endpoint(&id).await?;
    let change = EndpointChange {
        url: body.url,
        format: body.format,
        events: body.events,
        enabled: body.enabled,
        rotate_secret: body.rotate_secret,
    };
    let after = state.events.update_endpoint(&id, change).await?;
    // A new secret (rotated, or a format that needs another kind) is shown this once.
    let new_secret = after.secret != before.secret;
    Ok(ok(endpoint_json(&after, new_secret)))
}

async fn delete_endpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    state.events.delete_endpoint(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn number<T: std::str::FromStr>(
    query: &HashMap<String, String>,
    name: &str,
    default: T,
) -> Result<T, ApiError> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            ApiError::invalid(format!("{name} must be a non-negative integer, got {v:?}"))
        }),
    }
}

async fn endpoint_attempts(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    state.events.get_endpoint(&id).await?;
    let limit = number(&query, "limit", 100u32)?.clamp(1, 10_000);
    let attempts = state.events.attempts(None, Some(&id), limit).await?;
    Ok(ok(attempts.iter().map(attempt_json).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
struct Replay {
    /// Replays every event after this cursor ("0": from the beginning).
    after: String,
}

async fn replay(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Replay>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let after: i64 = body
        .after
        .parse()
        .map_err(|_| ApiError::invalid("after must be a cursor from the events API"))?;
    let queued = state.events.replay(&id, after).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "data": { "queued": queued } })),
    )
        .into_response())
}

async fn list_events(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let after = number(&query, "after", 0i64)?;
    let limit = number(&query, "limit", 100u32)?.clamp(1, 10_000);
    let wait = number(&query, "wait", 0u64)?;
    if wait > MAX_WAIT_SECS {
        return Err(ApiError::invalid(format!(
            "wait must be at most {MAX_WAIT_SECS} seconds"
        )));
    }
    let kind = query.get("type").map(String::as_str);
    let object_id = query.get("object_id").map(String::as_str);
    let events = state
        .events
        .list_events(after, limit, kind, object_id, Duration::from_secs(wait))
        .await?;
    let next = events.last().map_or(after, |e| e.seq);
    Ok(Json(json!({
        "data": events.iter().map(|e| event_json(&state, e)).collect::<Vec<_>>(),
        "next_cursor": next.to_string(),
    }))
    .into_response())
}

async fn get_event(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let event = state.events.get_event(&id).await?;
    Ok(ok(event_json(&state, &event)))
}

async fn event_attempts(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    state.events.get_event(&id).await?;
    let limit = number(&query, "limit", 100u32)?.clamp(1, 1000);
    let attempts = state.events.attempts(Some(&id), None, limit).await?;
    Ok(ok(attempts.iter().map(attempt_json).collect::<Vec<_>>()))
}

#[derive(Deserialize, Default)]
struct Resend {
    endpoint_id: Option<String>,
}

async fn resend(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Resend>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let queued = state
        .events
        .resend(&id, body.endpoint_id.as_deref())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "data": { "queued": queued } })),
    )
        .into_response())
}
