//! Playback routes, on the paths of Mux's `stream.` and `image.` hosts so an app only swaps the host:
//! `/{playback_id}.m3u8`, `/{playback_id}/g/{grant}/{rendition}/{file}`, `/{playback_id}/{name}.mp4`,
//! `/{playback_id}/thumbnail.{jpg,png,webp}`, `/{playback_id}/animated.{gif,webp}`,
//! `/{playback_id}/storyboard.{vtt,jpg,png,webp}`.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::images::ImageFormat;
use super::restrictions::Viewer;
use super::{Audience, PlaybackError, Resolved};
use crate::http::byte_range::parse_range;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::ingest::http::header_str;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{file}", get(master).options(preflight))
        .route("/{playback_id}/{*rest}", get(resource).options(preflight))
}

fn cors(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range, ETag"),
    );
}

async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    cors(&mut response);
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("range, if-none-match"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

fn with_cors(result: Result<Response, ApiError>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    cors(&mut response);
    response
}

async fn master(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    with_cors(
        async {
            let playback_id = file
                .strip_suffix(".m3u8")
                .ok_or_else(|| ApiError::not_found(format!("no route for /{file}")))?;
            let token = query.get("token").map(String::as_str);
            let auth = state
                .playback
                .authorize(
                    playback_id,
                    token,
                    Audience::Video,
                    &Viewer::from_headers(&headers),
                )
                .await?;
            let param = |name: &str| auth.claims.param(name).or_else(|| query.get(name).cloned());
            let playlist = state.playback.master_playlist(&auth, &param)?;
            let mut response = playlist.into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.apple.mpegurl"),
            );
            // The master embeds a grant that expires: never cache it for long, never share a signed one.
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(if token.is_some() {
                    "private, max-age=60"
                } else {
                    "public, max-age=60"
                }),
            );
            Ok(response)
        }
        .await,
    )
}

/// Sends a stored object with ETag, conditional GET and single-range support.
/// `302 Found` to `url` (a presigned store URL), not cached by shared caches.
pub(crate) fn found(url: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

async fn send(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    resolved: Resolved,
) -> Result<Response, ApiError> {
    let playback = &state.playback;
    if let Some(url) = playback.redirect(&resolved).await? {
        return Ok(found(&url));
    }
    // A plain GET (nearly every request) opens the object once and sends it; conditional, range
    // and HEAD requests first learn its size and ETag.
    let plain = method == Method::GET
        && !headers.contains_key(header::RANGE)
        && !headers.contains_key(header::IF_NONE_MATCH);
    let first = playback
        .open(&resolved, 0, if plain { None } else { Some(0) })
        .await?;
    let (len, etag) = (first.object.len, first.etag);
    if header_str(headers, "if-none-match").is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(
            header::ETAG,
            HeaderValue::from_str(&etag).expect("hex etag"),
        );
        return Ok(response);
    }
    let span = match header_str(headers, "range").map(|r| parse_range(r, len)) {
        Some(Err(_)) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("valid"),
            );
            return Ok(response);
        }
        Some(Ok(span)) => span,
        None => None,
    };
    let (start, end) = span.unwrap_or((0, len));
    let body = if method == Method::HEAD {
        Body::empty()
    } else if plain {
        Body::from_stream(first.object.body)
    } else {
        Body::from_stream(
            playback
                .open(&resolved, start, Some(end))
                .await?
                .object
                .body,
        )
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(resolved.content_type),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if method != Method::HEAD {
        crate::metrics::metrics().playback_bytes.inc_by(end - start);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex etag"),
    );
    // Playlists never change once published (they are planned), nor do segments.
    let cache = match (
        resolved.content_type == "application/vnd.apple.mpegurl",
        resolved.public,
    ) {
        (true, true) => "public, max-age=300",
        (true, false) => "private, max-age=300",
        (false, true) => "public, max-age=31536000, immutable",
        (false, false) => "private, max-age=86400",
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if span.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end.saturating_sub(1)))
                .expect("valid"),
        );
    }
    Ok(response)
}

async fn resource(
    State(state): State<AppState>,
    Path((playback_id, rest)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    with_cors(resource_inner(&state, &playback_id, &rest, &query, &method, &headers).await)
}

async fn resource_inner(
    state: &AppState,
    playback_id: &str,
    rest: &str,
    query: &HashMap<String, String>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let playback = &state.playback;
    let token = query.get("token").map(String::as_str);
    let parts: Vec<&str> = rest.split('/').collect();
    if let ["g", grant, "text", file] = parts.as_slice() {
        let viewer = Viewer::from_headers(headers);
        let (content_type, body) = playback
            .text_file(playback_id, grant, file, &viewer)
            .await?;
        let mut response = body.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=300"),
        );
        return Ok(response);
    }
    if let ["text", file] = parts.as_slice() {
        let track_id = file
            .strip_suffix(".vtt")
            .ok_or_else(|| PlaybackError::FileNotFound(rest.to_owned()))?;
        let auth = playback
            .authorize(
                playback_id,
                token,
                Audience::Video,
                &Viewer::from_headers(headers),
            )
            .await?;
        let resolved = playback.text_track_vtt(&auth, track_id).await?;
        return send(state, headers, method, resolved).await;
    }
    if let ["g", grant, "audio", track_id, file] = parts.as_slice() {
        let viewer = Viewer::from_headers(headers);
        let resolved = playback
            .audio_track_file(playback_id, grant, track_id, file, &viewer)
            .await?;
        return send(state, headers, method, resolved).await;
    }
    if let ["g", grant, rendition, file] = parts.as_slice() {
        let viewer = Viewer::from_headers(headers);
        let resolved = playback
            .rendition_file(playback_id, grant, rendition, file, &viewer)
            .await?;
        return send(state, headers, method, resolved).await;
    }
    let [file] = parts.as_slice() else {
        return Err(PlaybackError::FileNotFound(rest.to_owned()).into());
    };
    let (stem, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| PlaybackError::FileNotFound(rest.to_owned()))?;
    let audience = match stem {
        "thumbnail" => Audience::Thumbnail,
        "animated" => Audience::Animated,
        "storyboard" => Audience::Storyboard,
        _ => Audience::Video,
    };
    let auth = playback
        .authorize(playback_id, token, audience, &Viewer::from_headers(headers))
        .await?;
    let param = |name: &str| auth.claims.param(name).or_else(|| query.get(name).cloned());
    match (stem, ext) {
        ("storyboard", "vtt") => {
            let vtt = playback.storyboard_vtt(&auth, token)?;
            let mut response = vtt.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/vtt"));
            Ok(response)
        }
        ("thumbnail" | "storyboard", "jpg" | "png" | "webp") | ("animated", "gif" | "webp") => {
            let format = ImageFormat::parse(ext).expect("matched above");
            let resolved = playback.image(&auth, stem, format, &param).await?;
            send(state, headers, method, resolved).await
        }
        (_, "mp4" | "m4a") => {
            let resolved = playback.static_file(&auth, file)?;
            send(state, headers, method, resolved).await
        }
        _ => Err(PlaybackError::FileNotFound(rest.to_owned()).into()),
    }
}
