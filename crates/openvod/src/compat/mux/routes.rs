//! Handlers for `/video/v1/...`. Each parses the Mux request, calls the core and renders Mux's body.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use super::wire::{
    check_passthrough, parse_policy, AssetList, AssetResponse, CreateAssetRequest,
    CreatePlaybackIdRequest, CreateRestrictionRequest, CreateSigningKeyRequest,
    CreateUploadRequest, InputInfo, InputSettings, PlaybackIdResponse, ReferrerRequest,
    RestrictionResponse, SigningKeyResponse, TrackResponse, UpdateAssetRequest,
    UpdateMasterAccessRequest, UploadResponse, UserAgentRequest,
};
use super::wire::{
    static_file_name, static_rendition_files, CreateStaticRenditionRequest, UpdateMp4SupportRequest,
};
use crate::assets::model::{AssetFilter, AssetStatus};
use crate::assets::AssetError;
use crate::http::auth::ApiCaller;
use crate::http::error::ApiError;
use crate::http::json::JsonBody;
use crate::http::AppState;
use crate::ingest::model::{Upload, UploadStatus};
use crate::ingest::NewUpload;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/video/v1/uploads", post(create_upload).get(list_uploads))
        .route("/video/v1/uploads/{id}", get(get_upload))
        .route("/video/v1/uploads/{id}/cancel", put(cancel_upload))
        .route("/video/v1/assets", post(create_asset).get(list_assets))
        .route(
            "/video/v1/assets/{id}",
            get(get_asset).delete(delete_asset).patch(update_asset),
        )
        .route(
            "/video/v1/assets/{id}/playback-ids",
            post(create_playback_id),
        )
        .route(
            "/video/v1/assets/{id}/playback-ids/{pid}",
            get(get_playback_id).delete(delete_playback_id),
        )
        .route(
            "/video/v1/assets/{id}/master-access",
            put(update_master_access),
        )
        .route("/video/v1/assets/{id}/input-info", get(get_input_info))
        .route(
            "/video/v1/assets/{id}/static-renditions",
            post(create_static_rendition).get(list_static_renditions),
        )
        .route(
            "/video/v1/assets/{id}/static-renditions/{sid}",
            axum::routing::delete(delete_static_rendition),
        )
        .route("/video/v1/assets/{id}/mp4-support", put(update_mp4_support))
        .route("/video/v1/assets/{id}/tracks", post(create_track))
        .route(
            "/video/v1/assets/{id}/tracks/{tid}",
            axum::routing::delete(delete_track),
        )
        .route("/video/v1/playback-ids/{pid}", get(get_playback_id_owner))
        .route(
            "/video/v1/playback-restrictions",
            post(create_restriction).get(list_restrictions),
        )
        .route(
            "/video/v1/playback-restrictions/{id}",
            get(get_restriction).delete(delete_restriction),
        )
        .route(
            "/video/v1/playback-restrictions/{id}/referrer",
            put(update_restriction_referrer),
        )
        .route(
            "/video/v1/playback-restrictions/{id}/user_agent",
            put(update_restriction_user_agent),
        )
        .route(
            "/system/v1/signing-keys",
            post(create_signing_key).get(list_signing_keys),
        )
        .route(
            "/system/v1/signing-keys/{id}",
            get(get_signing_key).delete(delete_signing_key),
        )
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
    state.assets.check_text_tracks(&settings).await?;
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

async fn get_upload(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let upload = visible_upload(&state, &caller, &id).await?;
    Ok(ok(upload_response(&state, &upload)))
}

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

async fn get_asset(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let asset = visible_asset(&state, &caller, &id).await?;
    Ok(ok(asset_response(&state, &asset)))
}

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

async fn list_static_renditions(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let asset = visible_asset(&state, &caller, &id).await?;
    Ok(ok(static_rendition_files(&asset)))
}

/// `POST /video/v1/assets/{id}/tracks`: a subtitle track from a WebVTT or SRT file at `url`.
async fn create_track(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<InputSettings>,
) -> Result<Response, ApiError> {
    let input = request.into_text_track("").map_err(ApiError::invalid)?;
    visible_asset(&state, &caller, &id).await?;
    let track = state.assets.add_text_track(&id, input).await?;
    Ok(created_response(TrackResponse::from_text_track(&track)))
}

async fn delete_track(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((id, tid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    state.assets.delete_text_track(&id, &tid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

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
async fn get_input_info(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let asset = visible_asset(&state, &caller, &id).await?;
    let info = InputInfo::of(asset.input_url.as_deref(), asset.source.as_ref());
    Ok(ok(info.into_iter().collect::<Vec<_>>()))
}

async fn delete_asset(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    state.assets.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

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

async fn get_playback_id(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    let playback_id = state.assets.get_playback_id(&id, &pid).await?;
    Ok(ok(PlaybackIdResponse::from(&playback_id)))
}

async fn delete_playback_id(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    visible_asset(&state, &caller, &id).await?;
    state.assets.delete_playback_id(&id, &pid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

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
    Ok(ok(serde_json::json!({
        "id": playback_id.id,
        "policy": playback_id.policy.as_str(),
        "object": {"type": "asset", "id": asset_id},
    })))
}

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

async fn get_restriction(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let found = state.playback.restrictions.get(&id).await?;
    Ok(ok(RestrictionResponse::from(found)))
}

async fn delete_restriction(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    state.playback.restrictions.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

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

async fn get_signing_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let key = state.playback.keys.get(&id).await?;
    Ok(ok(SigningKeyResponse::new(&key, None)))
}

async fn delete_signing_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    state.playback.keys.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
