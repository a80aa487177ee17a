//! The web console's files, served at `/console/`. They are built from `console/` (Vite, packages
//! from the npm registry pinned by its lockfile) into `console/dist`, which release builds embed in
//! the binary; debug builds read the folder at run time. The console talks to the same API as
//! every client (see `accounts` for its sessions).

use axum::body::Body;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ErrorKind;
use crate::http::error::ApiError;
use crate::http::AppState;

#[derive(rust_embed::Embed)]
#[folder = "../../console/dist/"]
#[allow_missing = true]
struct Built;

/// hls.js plays from blob: URLs and may run its transmuxer in a blob: worker; the libraries set
/// inline styles.
const POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
     worker-src 'self' blob:; connect-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { (StatusCode::MOVED_PERMANENTLY, [(LOCATION, "/console/")]) }),
        )
        .route("/console/", get(|| serve(String::new())))
        .route(
            "/console/{*path}",
            get(|Path(path): Path<String>| serve(path)),
        )
}

async fn serve(path: String) -> Response {
    // Hashed build outputs are found or not; every other path is a page of the app.
    let (name, file) = match Built::get(&path) {
        Some(file) if !path.is_empty() => (path, file),
        _ if path.starts_with("assets/") => {
            return ApiError::not_found(format!("no console file {path}")).into_response()
        }
        _ => match Built::get("index.html") {
            Some(file) => ("index.html".to_owned(), file),
            None => {
                return ApiError::new(
                    ErrorKind::Unavailable,
                    "the console is not built: run scripts/serve, or `npm ci && npm run build` in console/",
                )
                .into_response()
            }
        },
    };
    let mut response = Response::new(Body::from(file.data.into_owned()));
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(file.metadata.mimetype()).expect("a MIME type"),
    );
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if name.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
