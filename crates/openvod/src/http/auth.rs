//! API authentication: HTTP Basic with an access token id and secret, as Mux does; or, for the web
//! console, a session cookie plus its CSRF token on every state change (the console uses the same
//! API as every client, with no back door of its own).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::ApiError;
use super::AppState;
use crate::accounts::model::Role;
use crate::assets::model::AssetMeta;
use crate::error::ErrorKind;

/// Proof that the request carried valid API credentials.
#[derive(Debug, Clone)]
pub enum ApiCaller {
    /// A program, with an access token (full access).
    Token { token_id: String },
    /// A person logged in to the console.
    Person(crate::accounts::SignedIn),
}

impl ApiCaller {
    /// The only `meta.creator_id` this caller may see and act on. Console users and staff are
    /// confined to their own videos; admins and programs with a token are not.
    pub fn own_videos_only(&self) -> Option<&str> {
        match self {
            ApiCaller::Person(who) if who.role != Role::Admin => Some(&who.username),
            _ => None,
        }
    }

    /// Whether the caller may see and act on a video created for `creator_id`.
    pub fn may_act_on(&self, creator_id: Option<&str>) -> bool {
        self.own_videos_only()
            .is_none_or(|own| creator_id == Some(own))
    }

    /// Makes new videos the caller's own: console users and staff get their username as
    /// `creator_id` (another one is refused); admins too unless they name someone; programs set
    /// what they like.
    pub fn own(&self, meta: &mut AssetMeta) -> Result<(), ApiError> {
        if let (ApiCaller::Person(who), None) = (self, &meta.creator_id) {
            meta.creator_id = Some(who.username.clone());
        }
        if let Some(own) = self.own_videos_only() {
            match meta.creator_id.as_deref() {
                Some(other) if other != own => {
                    return Err(ApiError::new(
                        ErrorKind::Forbidden,
                        format!("meta.creator_id: you can only create videos of your own ({own})"),
                    ))
                }
                _ => meta.creator_id = Some(own.to_owned()),
            }
        }
        Ok(())
    }

    /// Settings (webhooks, events, signing keys): programs with a token and console admins.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin])
    }

    /// The BBB claim queue: staff and admins.
    pub fn require_staff(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin, Role::Staff])
    }

    fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        match self {
            ApiCaller::Person(who) if !roles.contains(&who.role) => Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "this needs the role {}; you are {}",
                    roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    who.role.as_str()
                ),
            )),
            _ => Ok(()),
        }
    }
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
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            if let Some(session) = crate::accounts::http::signed_in(state, &parts.headers).await {
                let who = session?;
                // A cookie goes with every request the browser makes, a forged one included;
                // the CSRF token only with the console's own.
                if !parts.method.is_safe() {
                    who.check_csrf(
                        parts
                            .headers
                            .get(crate::accounts::http::CSRF_HEADER)
                            .and_then(|v| v.to_str().ok()),
                    )?;
                }
                return Ok(ApiCaller::Person(who));
            }
            return Err(unauthorized(
                "missing credentials: use HTTP Basic with an access token id and secret",
            ));
        };
        let (id, secret) =
            header.to_str().ok().and_then(parse_basic).ok_or_else(|| {
                unauthorized("malformed Authorization header: expected HTTP Basic")
            })?;
        if state.tokens.verify(&id, &secret).await? {
            state.limits.check_rate(&id)?;
            Ok(ApiCaller::Token { token_id: id })
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
