//! API authentication: HTTP Basic with an access token id and secret, as Mux does.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::ApiError;
use super::AppState;
use crate::error::ErrorKind;

/// Proof that the request carried valid API credentials; holds the token id.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub token_id: String,
}

/// Splits an `Authorization: Basic …` header into id and secret.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |msg: &str| ApiError::new(ErrorKind::Unauthorized, msg);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                unauthorized(
                    "missing credentials: use HTTP Basic with an access token id and secret",
                )
            })?;
        let (id, secret) =
            header.to_str().ok().and_then(parse_basic).ok_or_else(|| {
                unauthorized("malformed Authorization header: expected HTTP Basic")
            })?;
        if state.tokens.verify(&id, &secret).await? {
            Ok(ApiCaller { token_id: id })
        } else {
            Err(unauthorized("invalid access token id or secret"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic() {
        let header = format!("Basic {}", STANDARD.encode("abc:s3:cret"));
        assert_eq!(parse_basic(&header), Some(("abc".into(), "s3:cret".into())));
        assert_eq!(parse_basic("Bearer xyz"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))),
            None
        );
    }

    #[test]
    fn arbitrary_headers_do_not_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..50_000 {
            let len = rng.gen_range(0..40);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen_range(0x20..0x7f)).collect();
            let s = String::from_utf8(bytes).unwrap();
            let _ = parse_basic(&s);
            let _ = parse_basic(&format!("Basic {s}"));
        }
    }
}
