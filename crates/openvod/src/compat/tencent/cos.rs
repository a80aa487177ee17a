//! The storage target `ApplyUpload` hands out, speaking the part of COS's XML API that Tencent's
//! upload SDKs use: PUT Object, and multipart upload (initiate, upload part, list parts, complete,
//! abort, list multipart uploads for resuming). Objects are `/cos/<upload id>/<media|cover>.<type>`;
//! with cos-python-sdk-v5 that is `CosConfig(Domain="<openvod host>", Scheme="http"|"https")`.
//!
//! Every request carries a COS signature (`cos_sign`) by the upload's temporary credential, and
//! that credential's `x-cos-security-token`; the credential is good for its own upload's two objects only, and
//! only while the upload waits. Bytes are durable before an answer (`ingest::objects`). Errors are
//! COS's: an XML `<Error>` with its `Code`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::cos_sign::{cos_signature, CosAuthorization};
use super::upload::{PATH_PREFIX, STORAGE_BUCKET};
use crate::http::AppState;
use crate::id::{iso8601_micros, now_unix, uuid_v4};
use crate::ingest::objects::{ObjectError, MAX_PART_NUMBER};
use crate::ingest::IngestError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cos/{upload_id}/{object}", any(object))
        .layer(cors())
}

/// Browsers upload from the app's pages (vod-js-sdk-v6): any origin may call, preflights are
/// answered, and the ETag is readable, as with a COS bucket under a permissive CORS rule. Also
/// used by the browser upload API (`ugc`) and the bucket-level listing at `/`.
pub fn cors() -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowHeaders, Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::PUT,
            Method::POST,
            Method::DELETE,
            Method::HEAD,
        ])
        // The headers asked for, named: a `*` would not cover Authorization.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            header::ETAG,
            header::HeaderName::from_static("x-cos-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// A COS error answer.
#[derive(Debug)]
pub struct CosError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The path asked for (the SDKs want every field of COS's error body).
    resource: String,
}

fn cos_err(status: StatusCode, code: &'static str, message: impl Into<String>) -> CosError {
    CosError {
        status,
        code,
        message: message.into(),
        resource: "/".to_owned(),
    }
}

impl CosError {
    fn at(mut self, resource: &str) -> CosError {
        self.resource = resource.to_owned();
        self
    }
}

fn denied(message: impl Into<String>) -> CosError {
    cos_err(StatusCode::FORBIDDEN, "AccessDenied", message)
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

fn xml_response(status: StatusCode, body: String) -> Response {
    xml_response_with_id(status, body, &uuid_v4())
}

fn xml_response_with_id(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-cos-request-id", v);
    }
    response
}

impl IntoResponse for CosError {
    fn into_response(self) -> Response {
        let request_id = uuid_v4();
        let mut response = xml_response_with_id(
            self.status,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>\
                 <Resource>{}</Resource><RequestId>{request_id}</RequestId><TraceId>{request_id}</TraceId></Error>",
                self.code,
                escape(&self.message),
                escape(&self.resource),
            ),
            &request_id,
        );
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<IngestError> for CosError {
    fn from(e: IngestError) -> CosError {
        match e {
            IngestError::NotWaiting { .. } | IngestError::NotFound(_) => {
                denied(format!("the upload no longer takes files: {e}"))
            }
            IngestError::Object(ObjectError::NoSuchUpload(_)) => {
                cos_err(StatusCode::NOT_FOUND, "NoSuchUpload", e.to_string())
            }
            IngestError::Object(ObjectError::InvalidPart(_)) => {
                cos_err(StatusCode::BAD_REQUEST, "InvalidPart", e.to_string())
            }
            IngestError::Object(ObjectError::InvalidPartOrder) => {
                cos_err(StatusCode::BAD_REQUEST, "InvalidPartOrder", e.to_string())
            }
            IngestError::Object(ObjectError::InvalidPartNumber(_)) => {
                cos_err(StatusCode::BAD_REQUEST, "InvalidArgument", e.to_string())
            }
            IngestError::Object(ObjectError::TooLarge(_)) => {
                cos_err(StatusCode::BAD_REQUEST, "EntityTooLarge", e.to_string())
            }
            IngestError::Object(ObjectError::BadDigest) => {
                cos_err(StatusCode::BAD_REQUEST, "BadDigest", e.to_string())
            }
            IngestError::Object(ObjectError::PartInProgress) => {
                cos_err(StatusCode::CONFLICT, "OperationAborted", e.to_string())
            }
            IngestError::Object(ObjectError::BodyInterrupted(_)) => {
                cos_err(StatusCode::BAD_REQUEST, "IncompleteBody", e.to_string())
            }
            other => cos_err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                other.to_string(),
            ),
        }
    }
}

/// The query's parameters, decoded, in order (`uploads` with no value is `("uploads", "")`).
fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Checks the request's signature and token; returns the upload its credential is for.
async fn authorize(
    state: &AppState,
    method: &Method,
    signed_path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<String, CosError> {
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = header_str("authorization")
        .and_then(CosAuthorization::parse)
        .ok_or_else(|| {
            denied("Authorization must be a COS signature (q-sign-algorithm=sha1&...)")
        })?;
    let (upload_id, credential) = state
        .vod_uploads
        .credential_of(&auth.secret_id)
        .ok_or_else(|| {
            cos_err(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "the SecretId is not a temporary credential ApplyUpload gave",
            )
        })?;
    let now = now_unix();
    if now > credential.expires {
        return Err(cos_err(
            StatusCode::FORBIDDEN,
            "ExpiredToken",
            "the temporary credential has expired: call ApplyUpload again",
        ));
    }
    let (start, end) = auth.sign_window;
    if now < start.saturating_sub(300) || now > end {
        return Err(denied("the signature's q-sign-time does not include now"));
    }
    // The token goes with its credential (the browser SDK sends it without signing it; the
    // signature by the temporary key is the proof of holding the credential).
    let token = header_str("x-cos-security-token").unwrap_or("");
    if !bool::from(token.as_bytes().ct_eq(credential.token.as_bytes())) {
        return Err(cos_err(
            StatusCode::FORBIDDEN,
            "InvalidToken",
            "x-cos-security-token must be the temporary credential's Token",
        ));
    }
    let mut params = Vec::new();
    for name in &auth.param_list {
        let value = param(query, name)
            .ok_or_else(|| denied(format!("signed URL parameter {name} is missing")))?;
        params.push((name.clone(), value.to_owned()));
    }
    // SDKs sign the host without the port when they take it from the URL.
    let host = header_str("host").unwrap_or("");
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let mut matched = false;
    for host in [host, hostname] {
        let mut signed = Vec::new();
        for name in &auth.header_list {
            let value = if name == "host" {
                host
            } else {
                header_str(name)
                    .ok_or_else(|| denied(format!("signed header {name} is missing")))?
            };
            signed.push((name.clone(), value.to_owned()));
        }
        let expected = cos_signature(
            &credential.secret_key,
            method.as_str(),
            signed_path,
            &params,
            &signed,
            &auth.sign_time,
            &auth.key_time,
        );
        matched |= bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes()));
    }
    if !matched {
        return Err(cos_err(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "the request signature does not match",
        ));
    }
    Ok(upload_id)
}

/// `media.<type>` or `cover.<type>`: the only objects a credential may write.
fn valid_object(name: &str) -> bool {
    name.split_once('.').is_some_and(|(stem, ext)| {
        matches!(stem, "media" | "cover")
            && (1..=10).contains(&ext.len())
            && ext.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn content_md5(headers: &HeaderMap) -> Result<Option<Vec<u8>>, CosError> {
    match headers.get("content-md5").and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(v) => STANDARD
            .decode(v.trim())
            .ok()
            .filter(|d| d.len() == 16)
            .map(Some)
            .ok_or_else(|| {
                cos_err(
                    StatusCode::BAD_REQUEST,
                    "InvalidDigest",
                    "Content-MD5 must be the base64 of a 16-byte MD5",
                )
            }),
    }
}

fn etag_response(etag: &str) -> Response {
    let mut response = xml_response(StatusCode::OK, String::new());
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

async fn object(
    State(state): State<AppState>,
    Path((upload_id, object)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let resource = uri.path().to_owned();
    object_request(state, upload_id, object, method, uri, headers, body)
        .await
        .unwrap_or_else(|e| e.at(&resource).into_response())
}

async fn object_request(
    state: AppState,
    upload_id: String,
    object: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, CosError> {
    let query = query_pairs(&uri);
    let key = format!("{}{upload_id}/{object}", &PATH_PREFIX[1..]);
    let signed_path = format!("/{key}");
    let allowed = authorize(&state, &method, &signed_path, &query, &headers).await?;
    if allowed != upload_id || !valid_object(&object) {
        return Err(denied(
            "the temporary credential is not valid for this path: use the paths ApplyUpload gave",
        ));
    }
    state.ingest.waiting(&upload_id).await?;
    let _slot = match method {
        Method::PUT => Some(
            state
                .limits
                .take_upload_slot()
                .map_err(|e| cos_err(StatusCode::TOO_MANY_REQUESTS, "SlowDown", e.message))?,
        ),
        _ => None,
    };
    let objects = state.ingest.objects();
    let max = state.ingest.max_size();
    let multipart = param(&query, "uploadId").map(str::to_owned);
    let xml = |inner: String| {
        xml_response(
            StatusCode::OK,
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{inner}"),
        )
    };
    let head = format!(
        "<Bucket>{STORAGE_BUCKET}</Bucket><Key>{}</Key>",
        escape(&key)
    );
    match (&method, multipart) {
        (&Method::PUT, None) => {
            if headers.contains_key("x-cos-copy-source") {
                return Err(cos_err(
                    StatusCode::NOT_IMPLEMENTED,
                    "NotImplemented",
                    "copying objects is not supported here",
                ));
            }
            let md5 = content_md5(&headers)?;
            let written = objects
                .put(&upload_id, &object, body.into_data_stream(), max, md5)
                .await
                .map_err(IngestError::from)?;
            stored(&state, &upload_id).await?;
            Ok(etag_response(&written.md5_hex))
        }
        (&Method::POST, None) if param(&query, "uploads").is_some() => {
            let id = objects
                .create_multipart(&upload_id, &object)
                .await
                .map_err(IngestError::from)?;
            Ok(xml(format!(
                "<InitiateMultipartUploadResult>{head}<UploadId>{id}</UploadId></InitiateMultipartUploadResult>"
            )))
        }
        (&Method::PUT, Some(id)) => {
            let number: u32 = param(&query, "partNumber")
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
                .ok_or_else(|| {
                    cos_err(
                        StatusCode::BAD_REQUEST,
                        "InvalidArgument",
                        format!("partNumber must be 1 to {MAX_PART_NUMBER}"),
                    )
                })?;
            let md5 = content_md5(&headers)?;
            let length = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let written = objects
                .put_part(
                    &upload_id,
                    &id,
                    number,
                    length,
                    body.into_data_stream(),
                    max,
                    md5,
                )
                .await
                .map_err(IngestError::from)?;
            stored(&state, &upload_id).await?;
            Ok(etag_response(&written.md5_hex))
        }
        (&Method::GET, Some(id)) => {
            let parts = objects
                .list_parts(&upload_id, &id)
                .await
                .map_err(IngestError::from)?;
            let next = parts.last().map_or(0, |p| p.number);
            let listed: String = parts
                .iter()
                .map(|p| {
                    format!(
                        "<Part><PartNumber>{}</PartNumber><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size></Part>",
                        p.number,
                        iso8601_micros(p.modified_unix * 1000),
                        p.md5_hex,
                        p.size
                    )
                })
                .collect();
            Ok(xml(format!(
                "<ListPartsResult>{head}<UploadId>{id}</UploadId><StorageClass>STANDARD</StorageClass>\
                 <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>{next}</NextPartNumberMarker>\
                 <MaxParts>{MAX_PART_NUMBER}</MaxParts><IsTruncated>false</IsTruncated>{listed}</ListPartsResult>"
            )))
        }
        (&Method::POST, Some(id)) => {
            let body = axum::body::to_bytes(body, 4 << 20).await.map_err(|_| {
                cos_err(
                    StatusCode::BAD_REQUEST,
                    "MalformedXML",
                    "the part list is unreadable or too large",
                )
            })?;
            let listed = parse_complete(&body)?;
            let (_, etag) = objects
                .complete_multipart(&upload_id, &id, &listed)
                .await
                .map_err(IngestError::from)?;
            Ok(xml(format!(
                "<CompleteMultipartUploadResult><Location>{}</Location>{head}<ETag>&quot;{etag}&quot;</ETag></CompleteMultipartUploadResult>",
                escape(&format!("{}{key}", state.public_url))
            )))
        }
        (&Method::DELETE, Some(id)) => {
            objects
                .abort_multipart(&upload_id, &id)
                .await
                .map_err(IngestError::from)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (&Method::HEAD, None) => match objects.path(&upload_id, &object).await {
            Some(path) => {
                let len = tokio::fs::metadata(&path)
                    .await
                    .map_err(IngestError::Io)?
                    .len();
                let mut response = StatusCode::OK.into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                Ok(response)
            }
            None => Ok(StatusCode::NOT_FOUND.into_response()),
        },
        _ => Err(cos_err(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not supported on an upload object"),
        )),
    }
}

/// After a write: if the upload was committed (or timed out) while the bytes arrived, what was
/// written is removed (the commit already cleaned up) and the write is refused.
async fn stored(state: &AppState, upload_id: &str) -> Result<(), CosError> {
    if let Err(e) = state.ingest.waiting(upload_id).await {
        state
            .ingest
            .objects()
            .remove(upload_id)
            .await
            .map_err(IngestError::Io)?;
        return Err(e.into());
    }
    Ok(())
}

/// `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"…"</ETag></Part>…`
/// (roxmltree: no DTD, so no external entities).
pub(crate) fn parse_complete(body: &[u8]) -> Result<Vec<(u32, String)>, CosError> {
    let malformed = |why: &str| {
        cos_err(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            format!("the CompleteMultipartUpload body {why}"),
        )
    };
    let text = std::str::from_utf8(body).map_err(|_| malformed("is not UTF-8"))?;
    let doc = roxmltree::Document::parse(text).map_err(|_| malformed("is not XML"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "CompleteMultipartUpload" {
        return Err(malformed("must be a CompleteMultipartUpload element"));
    }
    let mut parts = Vec::new();
    for part in root.children().filter(|n| n.has_tag_name("Part")) {
        let child = |name: &str| {
            part.children()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .map(str::trim)
        };
        let number = child("PartNumber")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| malformed("has a Part without a PartNumber"))?;
        let etag = child("ETag").ok_or_else(|| malformed("has a Part without an ETag"))?;
        parts.push((number, etag.to_owned()));
    }
    if parts.is_empty() {
        return Err(malformed("lists no Part"));
    }
    Ok(parts)
}

/// `GET /?uploads&prefix=cos/<upload>/<object>` (bucket level): the unfinished multipart uploads of
/// the prefix's upload, so an SDK can resume one.
pub async fn list_multipart_uploads(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let result = async {
        let query = query_pairs(uri);
        let allowed = authorize(state, method, "/", &query, headers).await?;
        let prefix = param(&query, "prefix").unwrap_or("").to_owned();
        let mut uploads = String::new();
        let scoped = prefix
            .strip_prefix(&PATH_PREFIX[1..])
            .and_then(|rest| rest.split_once('/'));
        if let Some((upload_id, object)) = scoped {
            if upload_id != allowed {
                return Err(denied(
                    "the temporary credential is not valid for this prefix",
                ));
            }
            for m in state
                .ingest
                .objects()
                .list_multiparts(upload_id)
                .await
                .map_err(IngestError::from)?
                .into_iter()
                .filter(|m| m.object.starts_with(object))
            {
                uploads.push_str(&format!(
                    "<Upload><Key>{}{upload_id}/{}</Key><UploadId>{}</UploadId><StorageClass>STANDARD</StorageClass><Initiated>{}</Initiated></Upload>",
                    &PATH_PREFIX[1..],
                    escape(&m.object),
                    m.id,
                    iso8601_micros(m.initiated_unix * 1000)
                ));
            }
        }
        Ok::<_, CosError>(xml_response(
            StatusCode::OK,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult><Bucket>{STORAGE_BUCKET}</Bucket>\
                 <Prefix>{}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>{uploads}</ListMultipartUploadsResult>",
                escape(&prefix)
            ),
        ))
    }
    .await;
    result.unwrap_or_else(|e| e.at("/").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_lists() {
        let body = br#"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete(body).unwrap(),
            vec![(1, "\"a\"".to_owned()), (2, "b".to_owned())]
        );
        for bad in [
            &b"<CompleteMultipartUpload></CompleteMultipartUpload>"[..],
            b"<Other><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Other>",
            b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
            b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&e;</ETag></Part></CompleteMultipartUpload>",
            b"\xff",
        ] {
            assert!(parse_complete(bad).is_err());
        }
    }

    #[test]
    fn arbitrary_part_lists_do_not_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let pieces: [&[u8]; 9] = [
            b"<CompleteMultipartUpload>",
            b"</CompleteMultipartUpload>",
            b"<Part>",
            b"</Part>",
            b"<PartNumber>7</PartNumber>",
            b"<ETag>\"ab\"</ETag>",
            b"<!DOCTYPE a [<!ENTITY b \"c\">]>",
            b"&b;",
            b"\xff<",
        ];
        for _ in 0..20_000 {
            let body: Vec<u8> = (0..rng.gen_range(0..12))
                .flat_map(|_| pieces[rng.gen_range(0..pieces.len())].to_vec())
                .collect();
            if let Ok(parts) = parse_complete(&body) {
                assert!(!parts.is_empty());
            }
        }
    }

    #[test]
    fn only_media_and_cover_objects() {
        for ok in ["media.mp4", "cover.jpg", "media.m3u8"] {
            assert!(valid_object(ok), "{ok}");
        }
        for bad in [
            "other.mp4",
            "media",
            "media.",
            "media.mp4.x",
            "../media.mp4",
            "cover.j/g",
        ] {
            assert!(!valid_object(bad), "{bad}");
        }
    }
}
