//! `/openvod/v1/worker-jobs/...`: the remote workers' API. Only access tokens (programs) may call
//! it; every call about a job names its lease in the `X-Openvod-Lease` header.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use super::{ClaimRequest, FinishRequest, AUDIO_START_HEADER, LEASE_HEADER, MAX_WAIT_SECS};
use crate::error::ErrorKind;
use crate::http::auth::ApiCaller;
use crate::http::error::ApiError;
use crate::http::json::JsonBody;
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openvod/v1/worker-jobs/claim", post(claim))
        .route("/openvod/v1/worker-jobs/{id}/heartbeat", post(heartbeat))
        .route("/openvod/v1/worker-jobs/{id}/input", get(input))
        .route("/openvod/v1/worker-jobs/{id}/audio", get(audio))
        .route(
            "/openvod/v1/worker-jobs/{id}/files/{rendition}/{file}",
            put(put_file),
        )
        .route("/openvod/v1/worker-jobs/{id}/finish", post(finish))
}

/// A remote worker: an access token (a program, never a console session).
struct RemoteCaller;

impl FromRequestParts<AppState> for RemoteCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match ApiCaller::from_request_parts(parts, state).await? {
            ApiCaller::Token { .. } => Ok(RemoteCaller),
            ApiCaller::Person(_) => Err(ApiError::new(
                ErrorKind::Forbidden,
                "remote workers authenticate with an access token".to_owned(),
            )),
        }
    }
}

/// The lease a remote worker's call about a job names (`X-Openvod-Lease`).
struct Lease(String);

impl FromRequestParts<AppState> for Lease {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        RemoteCaller::from_request_parts(parts, state).await?;
        parts
            .headers
            .get(LEASE_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(|v| Lease(v.to_owned()))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Invalid,
                    format!("the {LEASE_HEADER} header names the job's lease"),
                )
            })
    }
}

async fn claim(
    State(state): State<AppState>,
    _: RemoteCaller,
    JsonBody(request): JsonBody<ClaimRequest>,
) -> Result<Response, ApiError> {
    let wait = std::time::Duration::from_secs(request.wait_secs.min(MAX_WAIT_SECS));
    Ok(match state.remote.claim(&request.kinds, wait).await? {
        Some(assignment) => Json(serde_json::json!({ "data": assignment })).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn heartbeat(
    State(state): State<AppState>,
    Lease(lease): Lease,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.remote.heartbeat(id, &lease).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn input(
    State(state): State<AppState>,
    Lease(lease): Lease,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let object = state.remote.input(id, &lease).await?;
    let mut response = Response::new(Body::from_stream(object.body));
    response.headers_mut().insert(
        axum::http::header::CONTENT_LENGTH,
        axum::http::HeaderValue::from(object.len),
    );
    Ok(response)
}

async fn audio(
    State(state): State<AppState>,
    Lease(lease): Lease,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (audio, start) = state.remote.audio(id, &lease).await?;
    let mut response = Response::new(Body::from(audio));
    response.headers_mut().insert(
        AUDIO_START_HEADER,
        axum::http::HeaderValue::from_str(&format!("{start:.9}")).expect("a number is a header"),
    );
    Ok(response)
}

async fn put_file(
    State(state): State<AppState>,
    Lease(lease): Lease,
    Path((id, rendition, file)): Path<(i64, String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    state
        .remote
        .put_file(id, &lease, &rendition, &file, body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn finish(
    State(state): State<AppState>,
    Lease(lease): Lease,
    Path(id): Path<i64>,
    JsonBody(request): JsonBody<FinishRequest>,
) -> Result<StatusCode, ApiError> {
    state.remote.finish(id, &lease, request.error).await?;
    Ok(StatusCode::NO_CONTENT)
}
