//! Handlers for `/video/v1/...`. Each parses the Mux request, calls the core and renders Mux's body.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{
    check_passthrough, parse_policy, AssetList, AssetResponse, CreateAssetRequest,
    CreatePlaybackIdRequest, CreateRestrictionRequest, CreateSigningKeyRequest,
    CreateUploadRequest, InputInfo, InputSettings, ObjectRef, PlaybackIdOwnerResponse,
    PlaybackIdResponse, ReferrerRequest, RestrictionResponse, SigningKeyResponse, TrackResponse,
    UpdateAssetRequest, UpdateMasterAccessRequest, UploadResponse, UserAgentRequest,
};
use super::wire::{
    static_file_name, static_rendition_files, CreateStaticRenditionRequest, StaticRenditionFile,
    UpdateMp4SupportRequest,
};
use crate::assets::model::{AssetFilter, AssetStatus};
use crate::assets::AssetError;
use crate::http::auth::ApiCaller;
use crate::http::error::{ApiError, Refused};
use crate::http::json::Data;
use crate::http::json::JsonBody;
use crate::http::AppState;
use crate::ingest::model::{Upload, UploadStatus};
use crate::ingest::NewUpload;

/// The Mux API, documented as it is routed: `routes!` registers each handler and its
/// `#[utoipa::path]` together, so `/openapi.json` lists exactly the routes that exist.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_upload, list_uploads))
        .routes(routes!(get_upload))
        .routes(routes!(cancel_upload))
        .routes(routes!(create_asset, list_assets))
        .routes(routes!(get_asset, delete_asset, update_asset))
        .routes(routes!(create_playback_id))
        .routes(routes!(get_playback_id, delete_playback_id))
        .routes(routes!(update_master_access))
        .routes(routes!(get_input_info))
        .routes(routes!(create_static_rendition, list_static_renditions))
        .routes(routes!(delete_static_rendition))
        .routes(routes!(update_mp4_support))
        .routes(routes!(create_track))
        .routes(routes!(delete_track))
        .routes(routes!(get_playback_id_owner))
        .routes(routes!(create_restriction, list_restrictions))
        .routes(routes!(get_restriction, delete_restriction))
        .routes(routes!(update_restriction_referrer))
        .routes(routes!(update_restriction_user_agent))
        .routes(routes!(create_signing_key, list_signing_keys))
        .routes(routes!(get_signing_key, delete_signing_key))
        // Mux's older, deprecated place for signing keys: the same handlers, left out of the
        // document so that each operation is described once.
        .route(
            "/video/v1/signing-keys",
            post(create_signing_key).get(list_signing_keys),
        )
        .route(
            "/video/v1/signing-keys/{id}",
            get(get_signing_key).delete(delete_signing_key),
        )
}

pub(crate) use crate::http::json::{created_response, ok};

/// `limit` (1..=100, default 25) and `page` (from 1, default 1).
pub(crate) fn pagination(query: &HashMap<String, String>) -> Result<(u32, u32), ApiError> {
    let number = |name: &str, default: u32, max: u32| -> Result<u32, ApiError> {
        match query.get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n.min(max)),
                _ => Err(ApiError::invalid(format!(
                    "{name} must be a positive integer, got {v:?}"
                ))),
            },
        }
    };
    Ok((number("limit", 25, 100)?, number("page", 1, u32::MAX)?))
}

fn upload_response(state: &AppState, upload: &Upload) -> UploadResponse {
    let url = (upload.status == UploadStatus::Waiting).then(|| state.ingest.upload_url(upload));
    UploadResponse::from_upload(upload, url)
}

#[utoipa::path(
    post,
    path = "/video/v1/uploads",
    tag = "uploads",
    summary = "Create a direct upload URL",
    request_body = CreateUploadRequest,
    responses((status = 201, description = "OK", body = Data<UploadResponse>), Refused)
)]
async fn create_upload(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(request): JsonBody<CreateUploadRequest>,
) -> Result<Response, ApiError> {
    let (mut settings, input_url) = request
        .new_asset_settings
        .unwrap_or_default()
        .into_settings("new_asset_settings.")
        .map_err(ApiError::invalid)?;
    if input_url.is_some() {
        return Err(ApiError::invalid(
            "new_asset_settings.input: the upload itself is the input; omit the url",
        ));
    }
    caller.own(&mut settings.meta)?;
    state.assets.check_tracks(&settings).await?;
    let upload = state
        .ingest
        .create_upload(NewUpload {
            timeout_secs: Some(request.timeout.unwrap_or(3600)),
            cors_origin: request.cors_origin,
            new_asset_settings: settings,
            test: request.test.unwrap_or(false),
            total_size: None,
            tus_metadata: None,
        })
        .await?;
    Ok(created_response(upload_response(&state, &upload)))
}

#[utoipa::path(
    get,
    path = "/video/v1/uploads",
    tag = "uploads",
    summary = "List direct uploads",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 25"), ("page" = Option<u32>, Query, description = "from 1, default 1")),
    responses((status = 200, description = "OK", body = Data<Vec<UploadResponse>>), Refused)
)]
async fn list_uploads(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (limit, page) = pagination(&query)?;
    let uploads = state.ingest.list_uploads(limit, page).await?;
    Ok(ok(uploads
        .iter()
        .filter(|u| caller.may_act_on(u.new_asset_settings.meta.creator_id.as_deref()))
        .map(|u| upload_response(&state, u))
        .collect::<Vec<_>>()))
}

#[utoipa::path(
    get,
    path = "/video/v1/uploads/{id}",
    tag = "uploads",
    summary = "Get a direct upload",
    params(("id" = String, Path, description = "the upload")),
    responses((status = 200, description = "OK", body = Data<UploadResponse>), Refused)
)]
async fn get_upload(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let upload = visible_upload(&state, &caller, &id).await?;
    Ok(ok(upload_response(&state, &upload)))
}

#[utoipa::path(
    put,
    path = "/video/v1/uploads/{id}/cancel",
    tag = "uploads",
    summary = "Cancel a waiting direct upload",
    params(("id" = String, Path, description = "the upload")),
    responses((status = 200, description = "OK", body = Data<UploadResponse>), Refused)
)]
async fn cancel_upload(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_upload(&state, &caller, &id).await?;
    let upload = state.ingest.cancel(&id).await?;
    Ok(ok(upload_response(&state, &upload)))
}

/// The asset, if the caller may see it; to others it does not exist (404, not 403).
pub(crate) async fn visible_asset(
    state: &AppState,
    caller: &ApiCaller,
    id: &str,
) -> Result<crate::assets::model::Asset, ApiError> {
    let asset = state.assets.get(id).await?;
    if !caller.may_act_on(asset.settings.meta.creator_id.as_deref()) {
        return Err(AssetError::NotFound(id.to_owned()).into());
    }
    Ok(asset)
}

async fn visible_upload(
    state: &AppState,
    caller: &ApiCaller,
    id: &str,
) -> Result<Upload, ApiError> {
    let upload = state.ingest.get_upload(id).await?;
    if !caller.may_act_on(upload.new_asset_settings.meta.creator_id.as_deref()) {
        return Err(crate::ingest::IngestError::NotFound(id.to_owned()).into());
    }
    Ok(upload)
}

pub(crate) fn asset_response(
    state: &AppState,
    asset: &crate::assets::model::Asset,
) -> AssetResponse {
    AssetResponse::from_asset(asset, state.assets.master_url(asset))
}

#[utoipa::path(
    post,
    path = "/video/v1/assets",
    tag = "assets",
    summary = "Create an asset from a URL, or a clip of an asset (mux://assets/{id})",
    request_body = CreateAssetRequest,
    responses((status = 201, description = "OK", body = Data<AssetResponse>), Refused)
)]
async fn create_asset(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(request): JsonBody<CreateAssetRequest>,
) -> Result<Response, ApiError> {
    let (mut settings, input_url) = request.into_settings("").map_err(ApiError::invalid)?;
    caller.own(&mut settings.meta)?;
    let input_url = input_url.ok_or_else(|| {
        ApiError::invalid(
            "input: an input URL is required (inputs[0].url); use direct uploads for local files",
        )
    })?;
    let asset = if input_url.starts_with("mux://") {
        state.assets.create_clip(&input_url, &settings).await?
    } else {
        state.assets.create_from_url(&input_url, &settings).await?
    };
    Ok(created_response(asset_response(&state, &asset)))
}

#[utoipa::path(
    get,
    path = "/video/v1/assets",
    tag = "assets",
    summary = "List assets",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 25"), ("page" = Option<u32>, Query, description = "from 1, default 1"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page"), ("upload_id" = Option<String>, Query, description = "only the asset of this upload"), ("status" = Option<String>, Query, description = "preparing, ready or errored"), ("external_id" = Option<String>, Query, description = "meta.external_id, exactly"), ("creator_id" = Option<String>, Query, description = "meta.creator_id, exactly"), ("title" = Option<String>, Query, description = "part of meta.title, ASCII case ignored")),
    responses((status = 200, description = "OK", body = AssetList), Refused)
)]
async fn list_assets(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (limit, page) = pagination(&query)?;
    let mut filter = asset_filter(&query)?;
    if let Some(own) = caller.own_videos_only() {
        if filter.creator_id.as_deref().is_some_and(|c| c != own) {
            return Err(ApiError::new(
                crate::error::ErrorKind::Forbidden,
                format!("creator_id: you can only list your own videos ({own})"),
            ));
        }
        filter.creator_id = Some(own.to_owned());
    }
    let (assets, next_cursor) = state
        .assets
        .list(
            limit,
            page,
            &filter,
            query.get("cursor").map(String::as_str),
        )
        .await?;
    Ok(Json(AssetList {
        data: assets.iter().map(|a| asset_response(&state, a)).collect(),
        next_cursor,
    })
    .into_response())
}

/// `upload_id` (Mux's) and openvod's `external_id` and `creator_id` (exact matches on `meta`),
/// `status` and `title` (part of `meta.title`, ASCII case ignored).
fn asset_filter(query: &HashMap<String, String>) -> Result<AssetFilter, ApiError> {
    let value = |name: &str| -> Result<Option<String>, ApiError> {
        match query.get(name) {
            Some(v) if v.is_empty() => Err(ApiError::invalid(format!(
                "{name}: must not be empty; leave it out to list every asset"
            ))),
            other => Ok(other.cloned()),
        }
    };
    let status = match value("status")? {
        None => None,
        Some(s) => Some(AssetStatus::parse(&s).ok_or_else(|| {
            ApiError::invalid(format!(
                "status: must be preparing, ready or errored, got {s:?}"
            ))
        })?),
    };
    Ok(AssetFilter {
        upload_id: value("upload_id")?,
        external_id: value("external_id")?,
        creator_id: value("creator_id")?,
        status,
        title_contains: value("title")?,
        ..AssetFilter::default()
    })
}

#[utoipa::path(
    get,
    path = "/video/v1/assets/{id}",
    tag = "assets",
    summary = "Get an asset",
    params(("id" = String, Path, description = "the asset")),
    responses((status = 200, description = "OK", body = Data<AssetResponse>), Refused)
)]
async fn get_asset(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let asset = visible_asset(&state, &caller, &id).await?;
    Ok(ok(asset_response(&state, &asset)))
}

#[utoipa::path(
    post,
    path = "/video/v1/assets/{id}/static-renditions",
    tag = "static-renditions",
    summary = "Ask for a static MP4/M4A file",
    params(("id" = String, Path, description = "the asset")),
    request_body = CreateStaticRenditionRequest,
    responses((status = 201, description = "OK", body = Data<StaticRenditionFile>), Refused)
)]
async fn create_static_rendition(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<CreateStaticRenditionRequest>,
) -> Result<Response, ApiError> {
    let resolution = request.resolution().map_err(ApiError::invalid)?;
    let asset = visible_asset(&state, &caller, &id).await?;
    if asset
        .settings
        .mp4_support
        .as_deref()
        .is_some_and(|m| m != "none")
    {
        return Err(ApiError::invalid(
            "mp4_support and static_renditions cannot both be enabled: set mp4_support to none first",
        ));
    }
    let mut resolutions = asset.settings.static_renditions.clone();
    if resolutions.contains(&resolution) {
        return Err(ApiError::new(
            crate::error::ErrorKind::Conflict,
            format!("asset {id} already has a {resolution} static rendition"),
        ));
    }
    resolutions.push(resolution.clone());
    let asset = state
        .assets
        .set_static_files(&id, resolutions, asset.settings.mp4_support.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("asset {id} not found")))?;
    let name = static_file_name(&resolution);
    let file = static_rendition_files(&asset)
        .into_iter()
        .find(|f| f.name == name)
        .expect("the resolution was just added");
    Ok(created_response(file))
}

#[utoipa::path(
    get,
    path = "/video/v1/assets/{id}/static-renditions",
    tag = "static-renditions",
    summary = "List the static files of an asset",
    params(("id" = String, Path, description = "the asset")),
    responses((status = 200, description = "OK", body = Data<Vec<StaticRenditionFile>>), Refused)
)]
async fn list_static_renditions(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let asset = visible_asset(&state, &caller, &id).await?;
    Ok(ok(static_rendition_files(&asset)))
}

/// `POST /video/v1/assets/{id}/tracks`: a subtitle track from a WebVTT or SRT file at `url`.
#[utoipa::path(
    post,
    path = "/video/v1/assets/{id}/tracks",
    tag = "tracks",
    summary = "Add a subtitle track (a WebVTT or SRT URL) or an audio track (an audio file URL)",
    params(("id" = String, Path, description = "the asset")),
    request_body = InputSettings,
    responses((status = 201, description = "OK", body = Data<TrackResponse>), Refused)
)]
async fn create_track(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<InputSettings>,
) -> Result<Response, ApiError> {
    let input = request.into_track("").map_err(ApiError::invalid)?;
    visible_asset(&state, &caller, &id).await?;
    let track = state.assets.add_track(&id, input).await?;
    Ok(created_response(TrackResponse::from_track(&track)))
}

#[utoipa::path(
    delete,
    path = "/video/v1/assets/{id}/tracks/{tid}",
    tag = "tracks",
    summary = "Delete a text or audio track",
    params(("id" = String, Path, description = "the asset"), ("tid" = String, Path, description = "the track")),
    responses((status = 204, description = "Done; no body"), Refused)
)]
async fn delete_track(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((id, tid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    state.assets.delete_track(&id, &tid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete,
    path = "/video/v1/assets/{id}/static-renditions/{sid}",
    tag = "static-renditions",
    summary = "Delete a static file",
    params(("id" = String, Path, description = "the asset"), ("sid" = String, Path, description = "the static rendition (highest, audio, 720p, ...)")),
    responses((status = 204, description = "Done; no body"), Refused)
)]
async fn delete_static_rendition(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((id, sid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let asset = visible_asset(&state, &caller, &id).await?;
    let resolutions = asset.settings.static_renditions.clone();
    let kept: Vec<String> = resolutions
        .iter()
        .filter(|r| {
            static_file_name(r).rsplit_once('.').map(|(stem, _)| stem) != Some(sid.as_str())
        })
        .cloned()
        .collect();
    if kept.len() == resolutions.len() {
        return Err(ApiError::not_found(format!(
            "asset {id} has no static rendition {sid} (files of mp4_support go with PUT mp4-support)"
        )));
    }
    state
        .assets
        .set_static_files(&id, kept, asset.settings.mp4_support.clone())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    put,
    path = "/video/v1/assets/{id}/mp4-support",
    tag = "static-renditions",
    summary = "Set the older mp4_support",
    params(("id" = String, Path, description = "the asset")),
    request_body = UpdateMp4SupportRequest,
    responses((status = 200, description = "OK", body = Data<AssetResponse>), Refused)
)]
async fn update_mp4_support(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateMp4SupportRequest>,
) -> Result<Response, ApiError> {
    let mp4_support = request.mp4_support().map_err(ApiError::invalid)?;
    let asset = visible_asset(&state, &caller, &id).await?;
    if mp4_support.is_some() && !asset.settings.static_renditions.is_empty() {
        return Err(ApiError::invalid(
            "mp4_support and static_renditions cannot both be enabled; use static_renditions",
        ));
    }
    let asset = state
        .assets
        .set_static_files(&id, asset.settings.static_renditions.clone(), mp4_support)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("asset {id} not found")))?;
    Ok(ok(asset_response(&state, &asset)))
}

/// Mux lists one entry per input; an asset has one, once probed (none before).
#[utoipa::path(
    get,
    path = "/video/v1/assets/{id}/input-info",
    tag = "assets",
    summary = "What the asset was made from, as probed",
    params(("id" = String, Path, description = "the asset")),
    responses((status = 200, description = "OK", body = Data<Vec<InputInfo>>), Refused)
)]
async fn get_input_info(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let asset = visible_asset(&state, &caller, &id).await?;
    let info = InputInfo::of(asset.input_url.as_deref(), asset.source.as_ref());
    Ok(ok(info.into_iter().collect::<Vec<_>>()))
}

#[utoipa::path(
    delete,
    path = "/video/v1/assets/{id}",
    tag = "assets",
    summary = "Delete an asset and its files",
    params(("id" = String, Path, description = "the asset")),
    responses((status = 204, description = "Done; no body"), Refused)
)]
async fn delete_asset(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    state.assets.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    patch,
    path = "/video/v1/assets/{id}",
    tag = "assets",
    summary = "Update passthrough and meta",
    params(("id" = String, Path, description = "the asset")),
    request_body = UpdateAssetRequest,
    responses((status = 200, description = "OK", body = Data<AssetResponse>), Refused)
)]
async fn update_asset(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateAssetRequest>,
) -> Result<Response, ApiError> {
    check_passthrough(request.passthrough.as_deref()).map_err(ApiError::invalid)?;
    let meta = request
        .meta
        .map(|m| m.into_update("meta."))
        .transpose()
        .map_err(ApiError::invalid)?;
    visible_asset(&state, &caller, &id).await?;
    if let (Some(own), Some(meta)) = (caller.own_videos_only(), &meta) {
        if meta.creator_id.as_ref().is_some_and(|c| c != own) {
            return Err(ApiError::new(
                crate::error::ErrorKind::Forbidden,
                "meta.creator_id: only an admin can give a video to someone else",
            ));
        }
    }
    // `set_meta` is `update` without a passthrough: both fields change in one transaction.
    let asset = if request.passthrough.is_none() && meta.is_none() {
        state.assets.get(&id).await?
    } else {
        let change = crate::assets::model::AssetChange {
            passthrough: request.passthrough.clone(),
            meta,
            ..Default::default()
        };
        state
            .assets
            .update(&id, &change)
            .await?
            .ok_or(AssetError::NotFound(id))?
    };
    Ok(ok(asset_response(&state, &asset)))
}

#[utoipa::path(
    post,
    path = "/video/v1/assets/{id}/playback-ids",
    tag = "playback-ids",
    summary = "Add a playback id",
    params(("id" = String, Path, description = "the asset")),
    request_body = CreatePlaybackIdRequest,
    responses((status = 201, description = "OK", body = Data<PlaybackIdResponse>), Refused)
)]
async fn create_playback_id(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<CreatePlaybackIdRequest>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    let policy = parse_policy("policy", request.policy.as_deref().unwrap_or("public"))
        .map_err(ApiError::invalid)?;
    let playback_id = state.assets.create_playback_id(&id, policy).await?;
    Ok(created_response(PlaybackIdResponse::from(&playback_id)))
}

#[utoipa::path(
    get,
    path = "/video/v1/assets/{id}/playback-ids/{pid}",
    tag = "playback-ids",
    summary = "Get a playback id of an asset",
    params(("id" = String, Path, description = "the asset"), ("pid" = String, Path, description = "the playback id")),
    responses((status = 200, description = "OK", body = Data<PlaybackIdResponse>), Refused)
)]
async fn get_playback_id(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    let playback_id = state.assets.get_playback_id(&id, &pid).await?;
    Ok(ok(PlaybackIdResponse::from(&playback_id)))
}

#[utoipa::path(
    delete,
    path = "/video/v1/assets/{id}/playback-ids/{pid}",
    tag = "playback-ids",
    summary = "Delete a playback id",
    params(("id" = String, Path, description = "the asset"), ("pid" = String, Path, description = "the playback id")),
    responses((status = 204, description = "Done; no body"), Refused)
)]
async fn delete_playback_id(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    state.assets.delete_playback_id(&id, &pid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    put,
    path = "/video/v1/assets/{id}/master-access",
    tag = "assets",
    summary = "Turn temporary master access on or off",
    params(("id" = String, Path, description = "the asset")),
    request_body = UpdateMasterAccessRequest,
    responses((status = 200, description = "OK", body = Data<AssetResponse>), Refused)
)]
async fn update_master_access(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateMasterAccessRequest>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    let temporary = match request.master_access.as_str() {
        "temporary" => true,
        "none" => false,
        other => {
            return Err(ApiError::invalid(format!(
                "master_access: unknown value {other:?}; expected one of temporary, none"
            )))
        }
    };
    let asset = state.assets.set_master_access(&id, temporary).await?;
    Ok(ok(asset_response(&state, &asset)))
}

#[utoipa::path(
    get,
    path = "/video/v1/playback-ids/{pid}",
    tag = "playback-ids",
    summary = "Find the asset of a playback id",
    params(("pid" = String, Path, description = "the playback id")),
    responses((status = 200, description = "OK", body = Data<PlaybackIdOwnerResponse>), Refused)
)]
async fn get_playback_id_owner(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(pid): Path<String>,
) -> Result<Response, ApiError> {
    let (asset_id, playback_id) = state.assets.find_playback_id(&pid).await?;
    if caller.own_videos_only().is_some() {
        visible_asset(&state, &caller, &asset_id)
            .await
            .map_err(|_| AssetError::PlaybackIdNotFound(pid.clone()))?;
    }
    Ok(ok(PlaybackIdOwnerResponse {
        id: playback_id.id,
        policy: playback_id.policy.as_str(),
        object: ObjectRef {
            kind: "asset",
            id: asset_id,
        },
    }))
}

#[utoipa::path(
    post,
    path = "/system/v1/signing-keys",
    tag = "signing-keys",
    summary = "Create a signing key (the private key is shown once)",
    request_body = CreateSigningKeyRequest,
    responses((status = 201, description = "OK", body = Data<SigningKeyResponse>), Refused)
)]
async fn create_signing_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(request): JsonBody<CreateSigningKeyRequest>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let algorithm = request.algorithm.as_deref().unwrap_or("RS256");
    let created = state.playback.keys.create(algorithm).await?;
    Ok(created_response(SigningKeyResponse::new(
        &created.key,
        Some(created.private_key),
    )))
}

#[utoipa::path(
    post,
    path = "/video/v1/playback-restrictions",
    tag = "playback-restrictions",
    summary = "Create a playback restriction",
    request_body = CreateRestrictionRequest,
    responses((status = 201, description = "OK", body = Data<RestrictionResponse>), Refused)
)]
async fn create_restriction(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(request): JsonBody<CreateRestrictionRequest>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let created = state
        .playback
        .restrictions
        .create(
            request.referrer.map(Into::into).unwrap_or_default(),
            request.user_agent.map(Into::into).unwrap_or_default(),
        )
        .await?;
    Ok(created_response(RestrictionResponse::from(created)))
}

#[utoipa::path(
    get,
    path = "/video/v1/playback-restrictions",
    tag = "playback-restrictions",
    summary = "List playback restrictions",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 25"), ("page" = Option<u32>, Query, description = "from 1, default 1")),
    responses((status = 200, description = "OK", body = Data<Vec<RestrictionResponse>>), Refused)
)]
async fn list_restrictions(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let (limit, page) = pagination(&query)?;
    let offset = limit.saturating_mul(page - 1);
    let listed = state.playback.restrictions.list(limit, offset).await?;
    Ok(ok(listed
        .into_iter()
        .map(RestrictionResponse::from)
        .collect::<Vec<_>>()))
}

#[utoipa::path(
    get,
    path = "/video/v1/playback-restrictions/{id}",
    tag = "playback-restrictions",
    summary = "Get a playback restriction",
    params(("id" = String, Path, description = "the restriction")),
    responses((status = 200, description = "OK", body = Data<RestrictionResponse>), Refused)
)]
async fn get_restriction(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let found = state.playback.restrictions.get(&id).await?;
    Ok(ok(RestrictionResponse::from(found)))
}

#[utoipa::path(
    delete,
    path = "/video/v1/playback-restrictions/{id}",
    tag = "playback-restrictions",
    summary = "Delete a playback restriction",
    params(("id" = String, Path, description = "the restriction")),
    responses((status = 204, description = "Done; no body"), Refused)
)]
async fn delete_restriction(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    state.playback.restrictions.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    put,
    path = "/video/v1/playback-restrictions/{id}/referrer",
    tag = "playback-restrictions",
    summary = "Replace the referrer rule",
    params(("id" = String, Path, description = "the restriction")),
    request_body = ReferrerRequest,
    responses((status = 200, description = "OK", body = Data<RestrictionResponse>), Refused)
)]
async fn update_restriction_referrer(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ReferrerRequest>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let updated = state
        .playback
        .restrictions
        .update(&id, Some(request.into()), None)
        .await?;
    Ok(ok(RestrictionResponse::from(updated)))
}

#[utoipa::path(
    put,
    path = "/video/v1/playback-restrictions/{id}/user_agent",
    tag = "playback-restrictions",
    summary = "Replace the user-agent rule",
    params(("id" = String, Path, description = "the restriction")),
    request_body = UserAgentRequest,
    responses((status = 200, description = "OK", body = Data<RestrictionResponse>), Refused)
)]
async fn update_restriction_user_agent(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UserAgentRequest>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let updated = state
        .playback
        .restrictions
        .update(&id, None, Some(request.into()))
        .await?;
    Ok(ok(RestrictionResponse::from(updated)))
}

#[utoipa::path(
    get,
    path = "/system/v1/signing-keys",
    tag = "signing-keys",
    summary = "List signing keys",
    responses((status = 200, description = "OK", body = Data<Vec<SigningKeyResponse>>), Refused)
)]
async fn list_signing_keys(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let keys = state.playback.keys.list().await?;
    Ok(ok(keys
        .iter()
        .map(|k| SigningKeyResponse::new(k, None))
        .collect::<Vec<_>>()))
}

#[utoipa::path(
    get,
    path = "/system/v1/signing-keys/{id}",
    tag = "signing-keys",
    summary = "Get a signing key",
    params(("id" = String, Path, description = "the key")),
    responses((status = 200, description = "OK", body = Data<SigningKeyResponse>), Refused)
)]
async fn get_signing_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let key = state.playback.keys.get(&id).await?;
    Ok(ok(SigningKeyResponse::new(&key, None)))
}

#[utoipa::path(
    delete,
    path = "/system/v1/signing-keys/{id}",
    tag = "signing-keys",
    summary = "Delete a signing key",
    params(("id" = String, Path, description = "the key")),
    responses((status = 204, description = "Done; no body"), Refused)
)]
async fn delete_signing_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    state.playback.keys.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
