//! BigBlueButton import over HTTP: `POST /openvod/v1/bbb/renders` renders a recording into a new
//! asset in a durable job. The asset settings are Mux's (`new_asset_settings`), so the asset is
//! then used like any other; the render is followed through the asset and its events.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use super::mux::routes::{asset_response, created_response, ok};
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
    _caller: ApiCaller,
    JsonBody(request): JsonBody<CreateRender>,
) -> Result<Response, ApiError> {
    let (settings, input) = request
        .new_asset_settings
        .unwrap_or_default()
        .into_settings("new_asset_settings.")
        .map_err(ApiError::invalid)?;
    if input.is_some() {
        return Err(ApiError::invalid(
            "new_asset_settings.input: the recording named by source is the input",
        ));
    }
    let asset = state
        .assets
        .create_from_bbb(&request.source, &settings)
        .await?;
    Ok(created_response(render_response(&state, &asset)))
}

async fn get_render(
    State(state): State<AppState>,
    _caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let asset = state.assets.get(&id).await?;
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
