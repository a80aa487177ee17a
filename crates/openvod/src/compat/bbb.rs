//! BigBlueButton import over HTTP: `POST /openvod/v1/bbb/renders` renders a recording into a new
//! asset in a durable job. The asset settings are Mux's (`new_asset_settings`), so the asset is
//! then used like any other; the render is followed through the asset and its events.
//!
//! The migration's queues, as Pod shows them: `GET /openvod/v1/bbb/claims` (manual-claim assets
//! no one owns yet) and `POST /openvod/v1/bbb/claims/{asset_id}` with `{"owner": USERNAME}`;
//! `GET /openvod/v1/external-recordings?owner=USERNAME` and
//! `POST /openvod/v1/external-recordings/{id}/import`, which renders or downloads the recording in
//! a job into the owner's asset (once, however often it is called).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use super::mux::routes::{asset_response, created_response, ok, pagination};
use super::mux::wire::{AssetResponse, CreateAssetRequest};
use crate::assets::model::Asset;
use crate::http::auth::ApiCaller;
use crate::http::error::ApiError;
use crate::http::json::JsonBody;
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openvod/v1/bbb/renders", post(create_render))
        .route("/openvod/v1/bbb/renders/{id}", get(get_render))
        .route("/openvod/v1/bbb/recordings", get(list_recordings))
        .route("/openvod/v1/bbb/claims", get(list_claims))
        .route("/openvod/v1/bbb/claims/{asset_id}", post(claim))
        .route("/openvod/v1/external-recordings", get(list_external))
        .route("/openvod/v1/external-recordings/{id}", get(get_external))
        .route(
            "/openvod/v1/external-recordings/{id}/import",
            post(import_external),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRender {
    /// A 2.3 or 2.0 playback URL, or the published folder URL.
    source: String,
    #[serde(default)]
    new_asset_settings: Option<CreateAssetRequest>,
}

#[derive(Debug, Serialize)]
struct RenderResponse {
    /// The render is the asset's ingest: they share the id.
    id: String,
    source: Option<String>,
    /// `preparing` while rendering and processing, then `ready` or `errored`.
    status: &'static str,
    asset_id: String,
    asset: AssetResponse,
}

fn render_response(state: &AppState, asset: &Asset) -> RenderResponse {
    RenderResponse {
        id: asset.id.clone(),
        source: asset.input_url.clone(),
        status: asset.status.as_str(),
        asset_id: asset.id.clone(),
        asset: asset_response(state, asset),
    }
}

async fn create_render(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(request): JsonBody<CreateRender>,
) -> Result<Response, ApiError> {
    let (mut settings, input) = request
        .new_asset_settings
        .unwrap_or_default()
        .into_settings("new_asset_settings.")
        .map_err(ApiError::invalid)?;
    if input.is_some() {
        return Err(ApiError::invalid(
            "new_asset_settings.input: the recording named by source is the input",
        ));
    }
    caller.own(&mut settings.meta)?;
    let asset = state
        .assets
        .create_from_bbb(&request.source, &settings)
        .await?;
    Ok(created_response(render_response(&state, &asset)))
}

async fn get_render(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let asset = crate::compat::mux::routes::visible_asset(&state, &caller, &id).await?;
    // Only assets made by a render are renders (their input is a recording URL).
    let is_render = asset
        .input_url
        .as_deref()
        .is_some_and(|u| crate::bbb::source::Source::parse_url(u).is_ok());
    if !is_render {
        return Err(ApiError::not_found(format!("no BigBlueButton render {id}")));
    }
    Ok(ok(render_response(&state, &asset)))
}

#[derive(Debug, Serialize)]
struct MigrationOwner {
    username: String,
    full_name: Option<String>,
    /// `moodle`, `admin` or `claim`.
    origin: crate::migration::model::OwnerOrigin,
}

#[derive(Debug, Serialize)]
struct MigrationAction {
    /// `manual_claim` or `import_video`.
    mode: &'static str,
    /// `done` or `failed` (the run's own step).
    state: String,
    detail: Option<String>,
    error: Option<String>,
    asset_id: Option<String>,
    /// The asset's progress (`processing`, `ready`, `error: ...`, `deleted`), if there is one.
    asset_state: Option<String>,
    updated_at: String,
}

#[derive(Debug, Serialize)]
struct MigrationRecording {
    record_id: String,
    name: String,
    start_time: Option<String>,
    origin_server_name: Option<String>,
    last_listed_at: String,
    owners: Vec<MigrationOwner>,
    actions: Vec<MigrationAction>,
}

/// Every recording the migration listed, newest first, with its owners and what each mode did
/// (and how the asset it made is doing): the admins' view of a migration. `limit`, `page`.
async fn list_recordings(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_staff()?;
    if let Some(unknown) = query
        .keys()
        .find(|k| !matches!(k.as_str(), "limit" | "page"))
    {
        return Err(ApiError::invalid(format!(
            "{unknown}: unknown parameter (limit and page are accepted)"
        )));
    }
    let (limit, page) = pagination(&query)?;
    let (entries, total) = state.migration.recordings(limit, page).await?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut actions = Vec::new();
        for action in entry.actions {
            let asset_state = match &action.asset_id {
                Some(id) => Some(asset_progress(&state, id, "processing", "ready").await?),
                None => None,
            };
            actions.push(MigrationAction {
                mode: action.mode.as_str(),
                state: action.state,
                detail: action.detail,
                error: action.error,
                asset_id: action.asset_id,
                asset_state,
                updated_at: action.updated_at.to_string(),
            });
        }
        out.push(MigrationRecording {
            record_id: entry.record_id,
            name: entry.name,
            start_time: entry.start_time_ms.map(crate::id::iso8601_micros),
            origin_server_name: entry.origin_server,
            last_listed_at: entry.listed_at.to_string(),
            owners: entry
                .owners
                .into_iter()
                .map(|o| MigrationOwner {
                    username: o.username,
                    full_name: o.full_name,
                    origin: o.origin,
                })
                .collect(),
            actions,
        });
    }
    let mut response = ok(out);
    response.headers_mut().insert(
        "x-total-count",
        axum::http::HeaderValue::from(total.max(0) as u64),
    );
    Ok(response)
}

#[derive(Debug, Serialize)]
struct ClaimResponse {
    asset_id: String,
    record_id: String,
    name: String,
    start_time: Option<String>,
    origin_server_name: Option<String>,
}

async fn list_claims(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    caller.require_staff()?;
    let claims: Vec<ClaimResponse> = state
        .migration
        .claims()
        .await?
        .into_iter()
        .map(|c| ClaimResponse {
            asset_id: c.asset_id,
            record_id: c.record_id,
            name: c.name,
            start_time: c.start_time_ms.map(crate::id::iso8601_micros),
            origin_server_name: c.origin_server,
        })
        .collect();
    Ok(ok(claims))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimRequest {
    owner: String,
}

async fn claim(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(asset_id): Path<String>,
    JsonBody(request): JsonBody<ClaimRequest>,
) -> Result<Response, ApiError> {
    caller.require_staff()?;
    let asset = state
        .migration
        .claim(&state.assets, &asset_id, request.owner.trim())
        .await?;
    Ok(ok(asset_response(&state, &asset)))
}

#[derive(Debug, Serialize)]
struct ExternalResponse {
    id: String,
    name: String,
    start_at: Option<String>,
    source_url: String,
    #[serde(rename = "type")]
    kind: String,
    owner: String,
    record_id: String,
    /// `not imported`, `importing`, `imported` or `error: ...`.
    state: String,
    asset_id: Option<String>,
}

/// How a migrated recording's asset is doing, in words: `preparing`/`ready` named by the caller,
/// `error: <messages>`, or `deleted`.
async fn asset_progress(
    state: &AppState,
    asset_id: &str,
    preparing: &str,
    ready: &str,
) -> Result<String, ApiError> {
    use crate::assets::model::AssetStatus;
    Ok(match state.assets.get(asset_id).await {
        Ok(asset) => match asset.status {
            AssetStatus::Preparing => preparing.to_owned(),
            AssetStatus::Ready => ready.to_owned(),
            AssetStatus::Errored => format!(
                "error: {}",
                asset
                    .errors
                    .map(|e| e.messages.join("; "))
                    .unwrap_or_default()
            ),
        },
        Err(crate::assets::AssetError::NotFound(_)) => "deleted".to_owned(),
        Err(e) => return Err(e.into()),
    })
}

async fn external_response(
    state: &AppState,
    ext: crate::migration::model::ExternalRecording,
) -> Result<ExternalResponse, ApiError> {
    let progress = match &ext.asset_id {
        None => "not imported".to_owned(),
        Some(id) => asset_progress(state, id, "importing", "imported").await?,
    };
    Ok(ExternalResponse {
        id: ext.id,
        name: ext.name,
        start_at: ext.start_at_ms.map(crate::id::iso8601_micros),
        source_url: ext.source_url,
        kind: ext.kind,
        owner: ext.owner,
        record_id: ext.record_id,
        state: progress,
        asset_id: ext.asset_id,
    })
}

/// An external recording, if the caller owns it (or is not confined to their own).
async fn visible_external(
    state: &AppState,
    caller: &ApiCaller,
    id: &str,
) -> Result<crate::migration::model::ExternalRecording, ApiError> {
    let ext = state.migration.external_recording(id).await?;
    if !caller.may_act_on(Some(&ext.owner)) {
        return Err(ApiError::not_found(format!("no external recording {id}")));
    }
    Ok(ext)
}

async fn list_external(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "owner") {
        return Err(ApiError::invalid(format!(
            "{unknown}: unknown parameter (only owner is accepted)"
        )));
    }
    let mut owner = query.get("owner").map(|o| o.trim());
    // "My external recordings": a console user sees their own only.
    if let Some(own) = caller.own_videos_only() {
        if owner.is_some_and(|o| o != own) {
            return Err(ApiError::new(
                crate::error::ErrorKind::Forbidden,
                format!("owner: you can only list your own external recordings ({own})"),
            ));
        }
        owner = Some(own);
    }
    let mut out = Vec::new();
    for ext in state.migration.external_recordings(owner).await? {
        out.push(external_response(&state, ext).await?);
    }
    Ok(ok(out))
}

async fn get_external(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ext = visible_external(&state, &caller, &id).await?;
    Ok(ok(external_response(&state, ext).await?))
}

async fn import_external(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_external(&state, &caller, &id).await?;
    let (ext, _) = state.migration.import(&id).await?;
    Ok(created_response(external_response(&state, ext).await?))
}
