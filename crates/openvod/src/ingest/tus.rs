//! tus 1.0 (core, creation, creation-with-upload, expiration, checksum, termination).
//! Creation at `/tus/` needs API credentials and answers with the upload's capability URL as
//! `Location`; every later request goes to that URL (see `ingest::http`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::http::{add_cors_headers, header_str};
use super::model::{Upload, UploadStatus};
use super::staging::ChecksumAlgorithm;
use super::{Chunk, ChunkMode, IngestError, NewUpload};
use crate::assets::model::{AssetSettings, PlaybackPolicy};
use crate::error::ErrorKind;
use crate::http::auth::ApiCaller;
use crate::http::error::ApiError;
use crate::http::AppState;

const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,expiration,checksum,termination";
const OFFSET_CONTENT_TYPE: &str = "application/offset+octet-stream";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tus", post(create).options(options))
        .route("/tus/", post(create).options(options))
}

pub(crate) fn add_tus_headers(response: &mut Response) {
    let h = response.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(EXTENSIONS));
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static("sha1,sha256"),
    );
}

async fn options(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    add_tus_headers(&mut response);
    response
        .headers_mut()
        .insert("tus-max-size", HeaderValue::from(state.ingest.max_size()));
    add_cors_headers(&mut response, &headers, None);
    response
}

/// Decoded `Upload-Metadata`: keys in order, each with its value if one was given.
pub type MetadataPairs = Vec<(String, Option<Vec<u8>>)>;

/// Parses `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent).
pub fn parse_metadata(header: &str) -> Result<MetadataPairs, String> {
    let mut pairs = Vec::new();
    for item in header.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let mut parts = item.split(' ');
        let key = parts.next().unwrap_or_default();
        if key.is_empty() || !key.is_ascii() {
            return Err(format!("invalid Upload-Metadata key in {item:?}"));
        }
        let value = match parts.next() {
            None | Some("") => None,
            Some(encoded) => Some(
                STANDARD
                    .decode(encoded)
                    .map_err(|_| format!("Upload-Metadata value of {key:?} is not base64"))?,
            ),
        };
        if parts.next().is_some() {
            return Err(format!("invalid Upload-Metadata item {item:?}"));
        }
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(format!("Upload-Metadata key {key:?} appears twice"));
        }
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

pub(crate) fn settings_from_metadata(header: Option<&str>) -> Result<AssetSettings, IngestError> {
    let mut settings = AssetSettings {
        playback_policies: vec![PlaybackPolicy::Public],
        ..AssetSettings::default()
    };
    let Some(header) = header else {
        return Ok(settings);
    };
    for (key, value) in parse_metadata(header).map_err(IngestError::InvalidRequest)? {
        let text = || {
            String::from_utf8(value.clone().unwrap_or_default()).map_err(|_| {
                IngestError::InvalidRequest(format!("Upload-Metadata {key:?} is not UTF-8"))
            })
        };
        match key.as_str() {
            "passthrough" => settings.passthrough = Some(text()?),
            "title" => settings.meta.title = Some(text()?),
            "playback_policy" => {
                let value = text()?;
                let policies = value
                    .split(',')
                    .map(|p| {
                        PlaybackPolicy::parse(p.trim()).ok_or_else(|| {
                            IngestError::InvalidRequest(format!(
                                "Upload-Metadata playback_policy {p:?} is not one of public, signed"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                settings.playback_policies = policies;
            }
            // `filename` and anything else is kept in the raw metadata and echoed on HEAD.
            _ => {}
        }
    }
    Ok(settings)
}

/// The 412 answer to a request without `Tus-Resumable: 1.0.0`, if it lacks one.
fn version_mismatch(headers: &HeaderMap) -> Option<Response> {
    if header_str(headers, "tus-resumable") == Some(TUS_VERSION) {
        return None;
    }
    let mut response = (
        StatusCode::PRECONDITION_FAILED,
        axum::Json(serde_json::json!({"error": {"type": "unsupported_version",
            "messages": ["Tus-Resumable must be 1.0.0"]}})),
    )
        .into_response();
    add_tus_headers(&mut response);
    Some(response)
}

fn parse_u64_header(headers: &HeaderMap, name: &str) -> Result<Option<u64>, IngestError> {
    header_str(headers, name)
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                IngestError::InvalidRequest(format!(
                    "{name} must be a non-negative integer, got {v:?}"
                ))
            })
        })
        .transpose()
}

pub(crate) fn parse_checksum(
    headers: &HeaderMap,
) -> Result<Option<(ChecksumAlgorithm, Vec<u8>)>, IngestError> {
    let Some(value) = header_str(headers, "upload-checksum") else {
        return Ok(None);
    };
    let (algorithm, digest) = value.trim().split_once(' ').ok_or_else(|| {
        IngestError::InvalidRequest(
            "Upload-Checksum must be \"<algorithm> <base64 digest>\"".to_owned(),
        )
    })?;
    let algorithm = match algorithm {
        "sha1" => ChecksumAlgorithm::Sha1,
        "sha256" => ChecksumAlgorithm::Sha256,
        other => {
            return Err(IngestError::InvalidRequest(format!(
                "unsupported checksum algorithm {other:?}; use sha1 or sha256"
            )))
        }
    };
    let digest = STANDARD.decode(digest.trim()).map_err(|_| {
        IngestError::InvalidRequest("Upload-Checksum digest is not base64".to_owned())
    })?;
    Ok(Some((algorithm, digest)))
}

fn set_header(response: &mut Response, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, value);
    }
}

fn expires_header(upload: &Upload) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(upload.expires_at.max(0) as u64);
    httpdate::fmt_http_date(at)
}

async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(response) = version_mismatch(&headers) {
        return response;
    }
    let mut response = match create_inner(&state, &caller, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    add_tus_headers(&mut response);
    add_cors_headers(&mut response, &headers, None);
    response
}

async fn create_inner(
    state: &AppState,
    caller: &ApiCaller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if headers.contains_key("upload-defer-length") {
        return Err(ApiError::invalid(
            "Upload-Defer-Length is not supported; send Upload-Length",
        ));
    }
    let total = parse_u64_header(headers, "upload-length")?
        .ok_or_else(|| ApiError::invalid("Upload-Length header is required"))?;
    let metadata = header_str(headers, "upload-metadata");
    let mut settings = settings_from_metadata(metadata)?;
    caller.own(&mut settings.meta)?;
    // Every header is checked before anything is created.
    let checksum = parse_checksum(headers)?;
    let upload = state
        .ingest
        .create_upload(NewUpload {
            total_size: Some(total),
            tus_metadata: metadata.map(str::to_owned),
            new_asset_settings: settings,
            ..NewUpload::default()
        })
        .await?;
    let has_body = header_str(headers, "content-type") == Some(OFFSET_CONTENT_TYPE);
    let mut offset = None;
    if has_body || total == 0 {
        let received = state
            .ingest
            .receive_detached(
                &upload.id,
                Chunk {
                    mode: ChunkMode::Tus { start: 0 },
                    total: Some(total),
                    checksum,
                    body: body.into_data_stream(),
                },
            )
            .await;
        match received {
            Ok(outcome) => offset = Some(outcome.committed),
            Err(e) => {
                // The client gets no Location: do not leave an upload nobody can reach.
                let _ = state.ingest.cancel(&upload.id).await;
                return Err(e.into());
            }
        }
    }
    let mut response = StatusCode::CREATED.into_response();
    set_header(&mut response, "location", state.ingest.upload_url(&upload));
    set_header(&mut response, "upload-expires", expires_header(&upload));
    if let Some(offset) = offset {
        set_header(&mut response, "upload-offset", offset.to_string());
    }
    Ok(response)
}

pub(super) async fn head(state: &AppState, id: &str) -> Result<Response, ApiError> {
    state.ingest.complete_if_stalled(id).await?;
    let upload = state.ingest.get_upload(id).await?;
    if !matches!(
        upload.status,
        UploadStatus::Waiting | UploadStatus::AssetCreated
    ) {
        return Err(IngestError::NotWaiting {
            id: id.to_owned(),
            status: upload.status,
        }
        .into());
    }
    let mut response = StatusCode::OK.into_response();
    set_header(
        &mut response,
        "upload-offset",
        upload.committed_offset.to_string(),
    );
    match upload.total_size {
        Some(total) => set_header(&mut response, "upload-length", total.to_string()),
        // A Mux upload whose size no chunk has declared yet.
        None => set_header(&mut response, "upload-defer-length", "1".to_owned()),
    }
    if let Some(metadata) = &upload.tus_metadata {
        set_header(&mut response, "upload-metadata", metadata.clone());
    }
    set_header(&mut response, "upload-expires", expires_header(&upload));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub(super) async fn patch(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(response) = version_mismatch(headers) {
        return Ok(response);
    }
    if header_str(headers, "content-type") != Some(OFFSET_CONTENT_TYPE) {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!("tus PATCH requires Content-Type: {OFFSET_CONTENT_TYPE}"),
        ));
    }
    let start = parse_u64_header(headers, "upload-offset")?
        .ok_or_else(|| ApiError::invalid("Upload-Offset header is required"))?;
    let outcome = state
        .ingest
        .receive_detached(
            id,
            Chunk {
                mode: ChunkMode::Tus { start },
                total: parse_u64_header(headers, "upload-length")?,
                checksum: parse_checksum(headers)?,
                body: body.into_data_stream(),
            },
        )
        .await?;
    let upload = state.ingest.get_upload(id).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_header(
        &mut response,
        "upload-offset",
        outcome.committed.to_string(),
    );
    set_header(&mut response, "upload-expires", expires_header(&upload));
    Ok(response)
}

pub(super) async fn terminate(state: &AppState, id: &str) -> Result<Response, ApiError> {
    state.ingest.cancel(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata() {
        let parsed =
            parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential")
                .unwrap();
        assert_eq!(parsed[0].0, "filename");
        assert_eq!(
            parsed[0].1.as_deref(),
            Some(&b"world_domination_plan.pdf"[..])
        );
        assert_eq!(parsed[1], ("is_confidential".to_owned(), None));
        assert!(parse_metadata("a !!!").is_err());
        assert!(parse_metadata("a YQ==,a YQ==").is_err());
        assert!(parse_metadata("a YQ== extra").is_err());
    }

    #[test]
    fn metadata_policies() {
        let s = settings_from_metadata(Some(&format!(
            "playback_policy {}",
            STANDARD.encode("signed")
        )))
        .unwrap();
        assert_eq!(s.playback_policies, vec![PlaybackPolicy::Signed]);
        assert!(settings_from_metadata(Some(&format!(
            "playback_policy {}",
            STANDARD.encode("drm")
        )))
        .is_err());
        assert_eq!(
            settings_from_metadata(None).unwrap().playback_policies,
            vec![PlaybackPolicy::Public]
        );
    }

    #[test]
    fn arbitrary_metadata_does_not_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let alphabet = b"ab =,YQ+/\xc3";
        for _ in 0..50_000 {
            let len = rng.gen_range(0..30);
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let s = String::from_utf8_lossy(&bytes);
            let _ = settings_from_metadata(Some(&s));
        }
    }
}
