//! JSON request bodies whose errors name the offending field, in the API's error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::error::ErrorKind;

/// A JSON body parsed with errors that name the offending field; an empty body counts as `{}` where
/// the request type allows it.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorKind::TooLarge,
                    "request body is larger than the server takes for JSON ([limits] max_json_body_bytes)",
                )
            } else {
                ApiError::invalid(format!("could not read request body: {rejection}"))
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(deserializer)
            .map(JsonBody)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." || path.is_empty() {
                    ApiError::invalid(format!("invalid JSON body: {inner}"))
                } else {
                    ApiError::invalid(format!("invalid JSON body at {path}: {inner}"))
                }
            })
    }
}

/// The `{"data": ...}` envelope of every JSON answer of the API.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// `200` with `{"data": ...}`, the envelope every JSON answer of the API uses.
pub fn ok<T: serde::Serialize>(data: T) -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::Json(Data { data }).into_response()
}

/// `201` with `{"data": ...}`.
pub fn created_response<T: serde::Serialize>(data: T) -> axum::response::Response {
    use axum::response::IntoResponse;
    (StatusCode::CREATED, axum::Json(Data { data })).into_response()
}
