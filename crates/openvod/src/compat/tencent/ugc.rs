//! The browser (UGC) upload API `vod-js-sdk-v6` calls: `POST /v3/index.php?Action=ApplyUploadUGC`,
//! `CommitUploadUGC` and `PrepareUploadUGC`, authorised by the upload signature the app's server
//! hands out instead of an API key:
//!
//! ```text
//! original  = secretId=…&currentTimeStamp=…&expireTime=…&random=…[&procedure=…&classId=…
//!             &sourceContext=…&sessionContext=…&oneTimeValid=1&vodSubAppId=…]   (URL-encoded)
//! signature = base64(HMAC-SHA1(SecretKey, original) ‖ original)
//! ```
//!
//! The signature's `secretId` is an openvod API token; the upload itself is `upload::apply_upload`
//! and `upload::commit_upload` with the signature's task flow and contexts. Answers are the UGC
//! API's `{"code": 0, "message": "", "data": …}`; refusals keep its `ugc upload | …` messages.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::Sha1;

use super::upload::{apply_upload, commit_upload, STORAGE_BUCKET, STORAGE_REGION};
use crate::http::AppState;
use crate::id::now_unix;

pub fn routes() -> Router<AppState> {
    Router::new()
        // OPTIONS has a handler so that the CORS layer, which answers preflights, wraps it (the
        // router's JSON 405 for other methods would not be wrapped).
        .route(
            "/v3/index.php",
            post(handle).options(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .layer(super::cos::cors())
}

/// How far in the future a signature's `currentTimeStamp` may be (clock skew).
const MAX_SKEW_SECS: i64 = 300;

/// A refusal, as the UGC API words them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UgcError {
    pub code: i64,
    pub message: String,
}

fn refuse(code: i64, message: impl Into<String>) -> UgcError {
    UgcError {
        code,
        message: format!("ugc upload | {}", message.into()),
    }
}

const INVALID_REQUEST: i64 = 10001;
const INVALID_SIGNATURE: i64 = 10002;
const SIGNATURE_EXPIRED: i64 = 10003;
const INTERNAL: i64 = 500;

/// The parameters a valid signature carries (`procedure`, `sourceContext`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParams {
    pub params: HashMap<String, String>,
}

/// The parts of an upload signature.
pub(crate) struct Decoded {
    /// HMAC-SHA1 of `original`: 20 bytes.
    mac: Vec<u8>,
    original: Vec<u8>,
    params: HashMap<String, String>,
}

pub(crate) fn decode_signature(signature: &str) -> Option<Decoded> {
    let mut mac = STANDARD.decode(signature.trim()).ok()?;
    if mac.len() <= 20 {
        return None;
    }
    let original = mac.split_off(20);
    let params = url::form_urlencoded::parse(&original)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Some(Decoded {
        mac,
        original,
        params,
    })
}

/// Checks an upload signature: its MAC (constant time) with the token's secret, its expiry, and,
/// with `oneTimeValid=1`, that it was never used before.
pub async fn verify_signature(state: &AppState, signature: &str) -> Result<SignedParams, UgcError> {
    let invalid = || refuse(INVALID_SIGNATURE, "invalid signature");
    let Decoded {
        mac,
        original,
        params,
    } = decode_signature(signature).ok_or_else(invalid)?;
    let (mac, original) = (mac.as_slice(), original.as_slice());
    let secret_id = params.get("secretId").cloned().ok_or_else(invalid)?;
    let secret = state
        .tokens
        .secret_of(&secret_id)
        .await
        .map_err(|e| refuse(INTERNAL, e.to_string()))?
        .ok_or_else(invalid)?;
    let mut expected = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key size");
    expected.update(original);
    expected.verify_slice(mac).map_err(|_| invalid())?;
    let number = |name: &str| -> Result<i64, UgcError> {
        params
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| refuse(INVALID_SIGNATURE, format!("the signature has no {name}")))
    };
    let (now, current, expire_time) = (
        now_unix(),
        number("currentTimeStamp")?,
        number("expireTime")?,
    );
    if current > now + MAX_SKEW_SECS {
        return Err(refuse(
            INVALID_SIGNATURE,
            "the signature's currentTimeStamp is in the future",
        ));
    }
    if now > expire_time {
        return Err(refuse(SIGNATURE_EXPIRED, "signature expired"));
    }
    if params.get("vodSubAppId").is_some_and(|a| a != "0") {
        return Err(refuse(
            INVALID_REQUEST,
            "vodSubAppId must be 0, the default application",
        ));
    }
    if params.get("oneTimeValid").map(String::as_str) == Some("1")
        && !state
            .tokens
            .spend_once(signature.trim().as_bytes(), expire_time)
            .await
            .map_err(|e| refuse(INTERNAL, e.to_string()))?
    {
        return Err(refuse(
            INVALID_SIGNATURE,
            "the signature was valid once and has been used",
        ));
    }
    Ok(SignedParams { params })
}

fn answer(result: Result<Value, UgcError>) -> Response {
    let body = match result {
        Ok(data) => json!({"code": 0, "message": "", "data": data}),
        Err(e) => json!({"code": e.code, "message": e.message}),
    };
    axum::Json(body).into_response()
}

fn text<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn handle(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let result = async {
        let body: Value = serde_json::from_slice(&body)
            .map_err(|_| refuse(INVALID_REQUEST, "invalid request: the body must be JSON"))?;
        let signature = text(&body, "signature")
            .ok_or_else(|| refuse(INVALID_REQUEST, "invalid request: no signature"))?;
        let signed = verify_signature(&state, signature).await?;
        match query.get("Action").map(String::as_str) {
            Some("PrepareUploadUGC") => Ok(json!({"appId": 1_250_000_000u64, "cosRegionList": []})),
            Some("ApplyUploadUGC") => apply(&state, &signed, &body).await,
            Some("CommitUploadUGC") => commit(&state, &body).await,
            other => Err(refuse(
                INVALID_REQUEST,
                format!("invalid request: unknown Action {other:?}"),
            )),
        }
    }
    .await;
    answer(result)
}

/// The extension of a file name or MIME-ish type (`lecture.mp4`, `mp4`, `video/mp4`).
pub(crate) fn file_type(value: &str) -> String {
    value
        .rsplit(['.', '/'])
        .next()
        .unwrap_or(value)
        .to_ascii_lowercase()
}

async fn apply(state: &AppState, signed: &SignedParams, body: &Value) -> Result<Value, UgcError> {
    let video_type = text(body, "videoType")
        .ok_or_else(|| refuse(INVALID_REQUEST, "invalid request: videoType is required"))?;
    let signed_param = |name: &str| signed.params.get(name).cloned();
    let mut params = json!({
        "MediaType": file_type(video_type),
        "MediaName": text(body, "videoName"),
        "CoverType": text(body, "coverType").map(file_type),
        "Procedure": signed_param("procedure"),
        "SourceContext": signed_param("sourceContext"),
        "SessionContext": signed_param("sessionContext"),
        "ClassId": signed_param("classId").and_then(|c| c.parse::<i64>().ok()),
    });
    params
        .as_object_mut()
        .expect("an object")
        .retain(|_, v| !v.is_null());
    let applied = apply_upload(state, &params)
        .await
        .map_err(|e| refuse(INVALID_REQUEST, format!("invalid request: {}", e.message)))?;
    let path = |name: &str| applied[name].as_str().unwrap_or("").to_owned();
    let certificate = &applied["TempCertificate"];
    let (bucket, app_id) = STORAGE_BUCKET
        .rsplit_once('-')
        .expect("the bucket name ends with the app id");
    Ok(json!({
        "video": {"storageSignature": "", "storagePath": path("MediaStoragePath")},
        "cover": text(body, "coverType").map(|_| json!({"storageSignature": "", "storagePath": path("CoverStoragePath")})),
        "storageAppId": app_id.parse::<u64>().unwrap_or(0),
        "storageBucket": bucket,
        "storageRegion": STORAGE_REGION,
        "storageRegionV5": STORAGE_REGION,
        "StorageRegionV5": STORAGE_REGION,
        "domain": "",
        "vodSessionKey": applied["VodSessionKey"],
        "tempCertificate": {
            "secretId": certificate["SecretId"],
            "secretKey": certificate["SecretKey"],
            "token": certificate["Token"],
            "expiredTime": certificate["ExpiredTime"],
        },
        "appId": 1_250_000_000u64,
        "timestamp": now_unix(),
    }))
}

async fn commit(state: &AppState, body: &Value) -> Result<Value, UgcError> {
    let key = text(body, "vodSessionKey").ok_or_else(|| {
        refuse(
            INVALID_REQUEST,
            "invalid request: vodSessionKey is required",
        )
    })?;
    let committed = commit_upload(state, &json!({ "VodSessionKey": key }))
        .await
        .map_err(|e| refuse(INVALID_REQUEST, format!("invalid request: {}", e.message)))?;
    Ok(json!({
        "fileId": committed["FileId"],
        "video": {"url": committed["MediaUrl"], "verify_content": ""},
        "cover": {"url": committed["CoverUrl"]},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_decode_and_arbitrary_ones_do_not_panic() {
        let original = b"secretId=AKID1&currentTimeStamp=1&expireTime=2&random=3&procedure=a%20b";
        let mut raw = vec![7u8; 20];
        raw.extend_from_slice(original);
        let decoded = decode_signature(&STANDARD.encode(&raw)).unwrap();
        assert_eq!(decoded.mac, vec![7u8; 20]);
        assert_eq!(decoded.original, original);
        assert_eq!(decoded.params["procedure"], "a b");
        assert!(decode_signature(&STANDARD.encode([1u8; 20])).is_none());
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
            let _ = decode_signature(&STANDARD.encode(&bytes));
            let text: String = (0..rng.gen_range(0..40))
                .map(|_| rng.gen_range(b' '..=b'~') as char)
                .collect();
            let _ = decode_signature(&text);
        }
    }

    #[test]
    fn file_types() {
        assert_eq!(file_type("mp4"), "mp4");
        assert_eq!(file_type("video/mp4"), "mp4");
        assert_eq!(file_type("Lecture.MOV"), "mov");
    }
}
