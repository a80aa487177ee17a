//! Download of an asset's original bytes through a signed master URL (`/master/{asset_id}/original`).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::compat::tencent::hotlink::HotlinkError;
use crate::http::byte_range::parse_range;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::ingest::http::{header_str, TokenQuery};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/master/{asset_id}/original", get(download_master))
        .route("/vod/{file_id}/{*name}", get(vod_file))
}

/// Tencent-style media URLs: `src.<ext>` is the original, other names are processing outputs.
/// Like VOD's default (unprotected) distribution, these need no token.
async fn vod_file(
    State(state): State<AppState>,
    Path((file_id, name)): Path<(String, String)>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut name = name;
    if let Some(protection) = &state.vod_hotlink {
        let peer = peer.map(|axum::Extension(axum::extract::ConnectInfo(a))| a.ip());
        let preview = protection
            .admit(uri.path(), uri.query(), &headers, peer, &state.tokens)
            .await
            .map_err(|e| {
                let kind = match e {
                    HotlinkError::Unavailable => crate::error::ErrorKind::Unavailable,
                    _ => crate::error::ErrorKind::Forbidden,
                };
                ApiError::new(kind, e.to_string())
            })?;
        // `exper`: a URL for a preview plays only its first seconds (MP4 files; images whole).
        if let Some(secs) = preview.filter(|_| name.ends_with(".mp4")) {
            name = state.assets.vod_preview(&file_id, &name, secs).await?;
        }
    }
    if let Some(url) = state.assets.vod_file_location(&file_id, &name).await? {
        return Ok(crate::playback::http::found(&url));
    }
    let object = state.assets.open_vod_file(&file_id, &name).await?;
    let len = object.len;
    let span = match header_str(&headers, "range").map(|r| parse_range(r, len)) {
        Some(Err(_)) => return Ok(StatusCode::RANGE_NOT_SATISFIABLE.into_response()),
        Some(Ok(span)) => span,
        None => None,
    };
    let (start, end) = span.unwrap_or((0, len));
    let body = if span.is_some() {
        state
            .assets
            .open_vod_file_range(&file_id, &name, start, end)
            .await?
            .body
    } else {
        object.body
    };
    let content_type = match name.rsplit('.').next() {
        Some("mp4") => "video/mp4",
        Some("jpg") => "image/jpeg",
        Some("m3u8") => "application/vnd.apple.mpegurl",
        _ => "application/octet-stream",
    };
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if span.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end.saturating_sub(1)))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

async fn download_master(
    State(state): State<AppState>,
    Path(asset_id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(url) = state
        .assets
        .master_location(&asset_id, query.token.as_deref())
        .await?
    {
        return Ok(crate::playback::http::found(&url));
    }
    // Open once to learn the length, then again for the requested span (cheap for local files).
    let whole = state
        .assets
        .open_master(&asset_id, query.token.as_deref(), 0, Some(0))
        .await?;
    let len = whole.len;
    let span = match header_str(&headers, "range").map(|r| parse_range(r, len)) {
        Some(Err(_)) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
        Some(Ok(span)) => span,
        None => None,
    };
    let (start, end) = span.unwrap_or((0, len));
    let object = state
        .assets
        .open_master(&asset_id, query.token.as_deref(), start, Some(end))
        .await?;
    let mut response = Response::new(Body::from_stream(object.body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"original\""),
    );
    if span.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end.saturating_sub(1)))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}
