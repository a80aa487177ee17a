//! The upload capability URL, `/upload/{id}?token=…`: UpChunk/GCS resumable chunks, a single plain
//! `PUT`, and (dispatched to `tus`) tus requests on the same URL.
//! Every response, errors included, carries CORS headers so browsers can read it.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde::Deserialize;

use super::range::ContentRange;
use super::{Chunk, ChunkMode, IngestError};
use crate::http::error::ApiError;
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/upload/{id}", any(upload_endpoint))
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    pub token: Option<String>,
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn upload_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let is_tus = headers.contains_key("tus-resumable");
    let mut response = if method == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let result = match state.ingest.authorize(&id, query.token.as_deref()) {
            Err(e) => Err(ApiError::from(e)),
            Ok(()) => match method {
                Method::HEAD => super::tus::head(&state, &id).await,
                Method::DELETE => super::tus::terminate(&state, &id).await,
                Method::PATCH if is_tus => match state.limits.take_upload_slot() {
                    Ok(_slot) => super::tus::patch(&state, &id, &headers, body).await,
                    Err(e) => Err(e),
                },
                Method::PUT | Method::POST | Method::PATCH => match state.limits.take_upload_slot()
                {
                    Ok(_slot) => resumable_chunk(&state, &id, &headers, body).await,
                    Err(e) => Err(e),
                },
                _ => Err(ApiError::new(
                    crate::error::ErrorKind::Invalid,
                    format!("method {method} is not supported on an upload URL"),
                )),
            },
        };
        result.unwrap_or_else(IntoResponse::into_response)
    };
    if is_tus || method == Method::OPTIONS || method == Method::HEAD || method == Method::DELETE {
        super::tus::add_tus_headers(&mut response);
    }
    let cors_origin = match state.ingest.get_upload(&id).await {
        Ok(upload) => upload.cors_origin,
        Err(_) => None,
    };
    add_cors_headers(&mut response, &headers, cors_origin.as_deref());
    response
}

/// CORS for upload URLs. The allowed origin is the upload's `cors_origin`; uploads without one, or with
/// `*`, allow any origin (more lenient than Mux, whose missing `cors_origin` is a classic support issue).
pub(crate) fn add_cors_headers(
    response: &mut Response,
    request: &HeaderMap,
    cors_origin: Option<&str>,
) {
    let request_origin = header_str(request, "origin");
    let allow = match (cors_origin, request_origin) {
        (None | Some("*"), _) => Some("*".to_owned()),
        (Some(allowed), Some(origin)) if allowed.trim_end_matches('/') == origin => {
            Some(origin.to_owned())
        }
        _ => None,
    };
    let h = response.headers_mut();
    if let Some(allow) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("PUT, POST, PATCH, HEAD, DELETE, OPTIONS"),
    );
    let allow_headers = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_static(
                "content-type, content-range, tus-resumable, upload-length, upload-offset, upload-metadata, upload-checksum",
            )
        });
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "Range, Location, Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
}

/// 308 Resume Incomplete, with `Range` naming the bytes held (none: no `Range`). Never a `Location`.
fn resume_incomplete(committed: u64) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if committed > 0 {
        let range = format!("bytes=0-{}", committed - 1);
        response.headers_mut().insert(
            header::RANGE,
            HeaderValue::from_str(&range).expect("a byte range is a valid header value"),
        );
    }
    response
}

async fn resumable_chunk(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let range = header_str(headers, "content-range")
        .map(ContentRange::parse)
        .transpose()
        .map_err(IngestError::from)?;
    let content_length =
        match header_str(headers, "content-length") {
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                IngestError::InvalidRequest(format!("malformed Content-Length {v:?}"))
            })?),
            None => None,
        };
    let (mode, total) = match range {
        Some(ContentRange::Probe { total }) => {
            state.ingest.complete_if_stalled(id).await?;
            let upload = state.ingest.get_upload(id).await?;
            if total == 0 && upload.committed_offset == 0 && upload.asset_id.is_none() {
                state.ingest.complete_if_empty(id).await?;
                return Ok(StatusCode::OK.into_response());
            }
            if let Some(expected) = upload.total_size.filter(|t| *t != total) {
                return Err(IngestError::TotalMismatch {
                    declared: total,
                    expected,
                }
                .into());
            }
            return Ok(if upload.asset_id.is_some() {
                StatusCode::OK.into_response()
            } else {
                resume_incomplete(upload.committed_offset)
            });
        }
        Some(ContentRange::Bytes { first, last, total }) => {
            let len = last - first + 1;
            if let Some(cl) = content_length.filter(|cl| *cl != len) {
                return Err(IngestError::BodyLength {
                    expected: len,
                    got: cl,
                }
                .into());
            }
            (ChunkMode::Range { start: first, len }, total)
        }
        None => {
            // HTTP/1.1: no Content-Length and no Transfer-Encoding means an empty body.
            let len = match content_length {
                Some(len) => len,
                None if headers.contains_key(header::TRANSFER_ENCODING) => {
                    return Err(IngestError::LengthRequired.into())
                }
                None => 0,
            };
            (ChunkMode::Range { start: 0, len }, len)
        }
    };
    let outcome = state
        .ingest
        .receive_detached(
            id,
            Chunk {
                mode,
                total: Some(total),
                checksum: None,
                body: body.into_data_stream(),
            },
        )
        .await?;
    Ok(if outcome.complete {
        StatusCode::OK.into_response()
    } else {
        resume_incomplete(outcome.committed)
    })
}
