//! HTTP edge: router assembly, shared state, authentication and the error mapping.
//! Each domain exports its own `routes()`; this module only merges them.

pub mod auth;
pub mod byte_range;
pub mod error;
pub mod json;
pub mod limits;
pub mod openapi;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::assets::AssetService;
use crate::ingest::IngestService;
use crate::tokens::TokenService;
use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub ingest: Arc<IngestService>,
    pub assets: Arc<AssetService>,
    pub playback: Arc<crate::playback::PlaybackService>,
    pub events: Arc<crate::events::EventService>,
    pub processing: Arc<crate::processing::ProcessingService>,
    pub migration: Arc<crate::migration::MigrationService>,
    /// Base of every URL handed out.
    pub public_url: url::Url,
    pub tokens: Arc<TokenService>,
    pub accounts: Arc<crate::accounts::AccountService>,
    /// Tencent VOD's upload credentials and named task flows.
    pub vod_uploads: Arc<crate::compat::tencent::upload::VodUploads>,
    /// Tencent VOD's Key Hotlink Protection for `/vod/...` URLs, when it is on.
    pub vod_hotlink: Option<Arc<crate::compat::tencent::hotlink::Protection>>,
    /// Jobs leased to remote workers over HTTP.
    pub remote: Arc<crate::remote::RemoteJobs>,
    /// The job queue, for the operators' figures (`/metrics`).
    pub jobs: Arc<dyn crate::jobs::repo::JobRepo>,
    /// Concurrent uploads and request rates (`[limits]`).
    pub limits: Arc<limits::Limits>,
}

/// `GET /metrics`: Prometheus text, for access tokens (a scraper's basic auth) and admins.
async fn metrics(
    State(state): State<AppState>,
    caller: crate::http::auth::ApiCaller,
) -> Result<axum::response::Response, ApiError> {
    caller.require_admin()?;
    let jobs = state
        .jobs
        .count_jobs()
        .await
        .map_err(|e| ApiError::from_domain(crate::error::ErrorKind::Internal, &e))?;
    let mut response = crate::metrics::metrics().render(&jobs).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

pub fn router(state: AppState) -> Router {
    let (documented, document) = openapi::documented_routes();
    let limits = state.limits.clone();
    let documented = documented.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let limits = limits.clone();
            async move {
                match limits.within_api_timeout(next.run(request)).await {
                    Ok(response) => response,
                    Err(message) => ApiError::unavailable(message).into_response(),
                }
            }
        },
    ));
    let document: Arc<str> = openapi::to_json(&document).to_string().into();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    document.to_string(),
                )
            }),
        )
        .merge(documented)
        .merge(crate::ingest::http::routes())
        .merge(crate::ingest::tus::routes())
        .merge(crate::assets::http::routes())
        .merge(crate::compat::bbb::routes())
        .merge(crate::events::http::routes())
        .merge(crate::compat::tencent::api::routes())
        .merge(crate::compat::tencent::cos::routes())
        .merge(crate::compat::tencent::ugc::routes())
        .merge(crate::playback::http::routes())
        .merge(crate::accounts::http::routes())
        .merge(crate::remote::http::routes())
        .route("/metrics", get(metrics))
        .merge(crate::console::routes())
        .merge(crate::tokens::http::routes())
        // A route with another method: Mux's error shape too, never an empty 405 the SDKs
        // cannot read (axum still adds `Allow`).
        .method_not_allowed_fallback(|method: axum::http::Method, uri: Uri| async move {
            ApiError::new(
                crate::error::ErrorKind::MethodNotAllowed,
                format!("{method} is not supported on {}", uri.path()),
            )
        })
        .fallback(
            |uri: Uri| async move { ApiError::not_found(format!("no route for {}", uri.path())) },
        )
        .layer(axum::middleware::from_fn(crate::metrics::count_requests))
        // JSON bodies; upload routes stream theirs and are limited by `uploads.max_size_bytes`.
        .layer(DefaultBodyLimit::max(state.limits.max_json_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(6 * 3600),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Collapses repeated slashes at the start of the path: mux-python joins `host + "/video/v1"`, so a
/// configured host with a trailing slash sends `//video/v1/...`.
pub fn normalize_path<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let uri = request.uri();
    if uri.path().starts_with("//") {
        let path = format!("/{}", uri.path().trim_start_matches('/'));
        let path_and_query = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(pq) = path_and_query.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(new_uri) = Uri::from_parts(parts) {
                *request.uri_mut() = new_uri;
            }
        }
    }
    request
}
