//! The one place where errors become HTTP responses.
//!
//! Bodies use Mux's error shape, `{"error": {"type": "...", "messages": ["..."]}}`, for every route:
//! Mux clients raise on the status alone and humans read the message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::ErrorKind;

#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// Seconds for a `Retry-After` header (429s that know when to come back).
    pub retry_after: Option<i64>,
    /// A 401 from a console session: no `WWW-Authenticate: Basic`, so browsers show no password
    /// dialog over the console's own login page.
    pub session_auth: bool,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            retry_after: None,
            session_auth: false,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }

    /// 503 with `Retry-After: 1`: the client is to come back (clients and SDKs retry these).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        let mut api = ApiError::new(ErrorKind::Unavailable, message);
        api.retry_after = Some(1);
        api
    }

    /// Wraps a domain error: its kind picks the status; internal failures are logged here and
    /// reported to the client without details.
    pub fn from_domain(kind: ErrorKind, error: &dyn std::error::Error) -> ApiError {
        if kind == ErrorKind::Internal {
            tracing::error!(error = %error, source = ?error.source(), "request failed");
            return ApiError::new(kind, "internal error; the server log has details");
        }
        if kind == ErrorKind::Unavailable {
            tracing::warn!(error = %error, source = ?error.source(), "request failed for now");
            return ApiError::unavailable(
                "temporarily unavailable (the database or object store did not answer); try again",
            );
        }
        ApiError::new(kind, error.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Gone => StatusCode::GONE,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::ChecksumMismatch => {
                StatusCode::from_u16(460).expect("460 is a valid status code")
            }
            ErrorKind::LengthRequired => StatusCode::LENGTH_REQUIRED,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::NotReady => StatusCode::PRECONDITION_FAILED,
            ErrorKind::Unavailable | ErrorKind::RetryLater => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn type_name(&self) -> &'static str {
        match self.kind {
            ErrorKind::Invalid => "invalid_parameters",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Gone => "gone",
            ErrorKind::TooLarge => "payload_too_large",
            ErrorKind::ChecksumMismatch => "checksum_mismatch",
            ErrorKind::LengthRequired => "length_required",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::NotReady => "not_ready",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::RetryLater => "retry_later",
            ErrorKind::TooManyRequests => "too_many_requests",
            ErrorKind::Internal => "internal_error",
        }
    }
}

/// Mux's error body, the answer of every refused API request.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The refusal every documented operation may answer, for `#[utoipa::path(responses(..., Refused))]`.
/// Only described, never built: the answers themselves come from `ApiError`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
#[response(status = "4XX", description = "Refused: the error names the problem")]
pub struct Refused(ErrorBody);

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `invalid_parameters`, `not_found`, `unauthorized`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What was wrong, naming the field or the object.
    pub messages: Vec<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.type_name(),
                messages: vec![self.message.clone()],
            },
        };
        let mut response = (status, Json(body)).into_response();
        if self.kind == ErrorKind::RetryLater {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("2"),
            );
        }
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs.max(1)),
            );
        }
        if self.kind == ErrorKind::Unauthorized && !self.session_auth {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"openvod\""),
            );
        }
        response
    }
}

macro_rules! domain_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for ApiError {
            fn from(error: $ty) -> ApiError {
                ApiError::from_domain(error.kind(), &error)
            }
        }
    )*};
}

domain_error!(
    crate::ingest::IngestError,
    crate::assets::AssetError,
    crate::playback::PlaybackError,
    crate::events::EventsError,
    crate::processing::ProcessingError,
    crate::tokens::TokenError,
    crate::migration::MigrationError,
    crate::remote::RemoteError
);

impl From<crate::accounts::AccountError> for ApiError {
    fn from(error: crate::accounts::AccountError) -> ApiError {
        let mut api = ApiError::from_domain(error.kind(), &error);
        if let crate::accounts::AccountError::LockedOut(secs) = error {
            api.retry_after = Some(secs);
        }
        api.session_auth = true;
        api
    }
}
