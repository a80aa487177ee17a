//! API access tokens. A secret is derived from the server's token master key and the token id
//! (HMAC-SHA256), shown once, and stored only as its SHA-256 (a fast hash suffices for high-entropy
//! secrets); HTTP Basic checks compare hashes in constant time.
//! The derivation exists because TencentCloud's TC3 signatures are keyed with the secret itself: the
//! server must be able to recompute it (`secret_of`) without storing it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::DbError;
use crate::error::ErrorKind;
use crate::id::{now_unix, random_id};
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token name must be 1 to 200 characters")]
    InvalidName,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl TokenError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TokenError::InvalidName => ErrorKind::Invalid,
            TokenError::Db(e) => e.kind(),
        }
    }
}

pub struct NewTokenSecret {
    pub id: String,
    pub secret: String,
}

pub struct TokenService {
    db: std::sync::Arc<dyn crate::tokens::TokenStore>,
    master_key: Vec<u8>,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl TokenService {
    /// Opens the service with the server's token master key (created on first use).
    pub async fn open(
        db: std::sync::Arc<dyn crate::tokens::TokenStore>,
    ) -> Result<TokenService, TokenError> {
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        let master_key = db.get_or_create_secret("token_master", &fresh).await?;
        Ok(TokenService { db, master_key })
    }

    fn derive(&self, id: &str) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.master_key)
            .expect("HMAC takes any key size");
        mac.update(b"token:");
        mac.update(id.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The secret of an active token, recomputed (for TC3 signature checks).
    pub async fn secret_of(&self, id: &str) -> Result<Option<String>, TokenError> {
        if !crate::id::is_valid_id(id) {
            return Ok(None);
        }
        Ok(match self.db.get_token(id).await? {
            Some(token) if token.revoked_at.is_none() => Some(self.derive(id)),
            _ => None,
        })
    }

    /// Records a credential that is valid once as used (by its SHA-256); `false` if it already
    /// was. Kept until `expires_at`, when it would be refused anyway.
    pub async fn spend_once(&self, credential: &[u8], expires_at: i64) -> Result<bool, TokenError> {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(credential);
        Ok(self
            .db
            .spend_once(&digest, expires_at, crate::id::now_unix())
            .await?)
    }

    /// Admits a client address under a signed URL's cap on addresses (see `TokenRepo::admit_viewer`).
    pub async fn admit_viewer(
        &self,
        sign: &str,
        viewer: &str,
        limit: u32,
        expires_at: i64,
    ) -> Result<bool, TokenError> {
        Ok(self
            .db
            .admit_viewer(sign, viewer, limit, expires_at, crate::id::now_unix())
            .await?)
    }

    pub async fn create(&self, name: &str) -> Result<NewTokenSecret, TokenError> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(TokenError::InvalidName);
        }
        let id = random_id();
        let secret = self.derive(&id);
        let token = ApiToken {
            id,
            name: name.to_owned(),
            secret_sha256: hash(&secret),
            created_at: now_unix(),
            revoked_at: None,
        };
        self.db.create_token(&token).await?;
        Ok(NewTokenSecret {
            id: token.id,
            secret,
        })
    }

    /// Whether `id`/`secret` name an active token. Unknown and revoked ids still pay for a comparison.
    pub async fn verify(&self, id: &str, secret: &str) -> Result<bool, TokenError> {
        let presented = hash(secret);
        let token = if crate::id::is_valid_id(id) {
            self.db.get_token(id).await?
        } else {
            None
        };
        let stored = token
            .as_ref()
            .map_or_else(|| vec![0u8; 32], |t| t.secret_sha256.clone());
        let matches: bool = presented.ct_eq(&stored).into();
        Ok(matches && token.is_some_and(|t| t.revoked_at.is_none()))
    }

    pub async fn list(&self) -> Result<Vec<ApiToken>, TokenError> {
        Ok(self.db.list_tokens().await?)
    }

    pub async fn revoke(&self, id: &str) -> Result<bool, TokenError> {
        Ok(self.db.revoke_token(id, now_unix()).await?)
    }
}

/// `/openvod/v1/tokens`: API tokens managed over HTTP (by admins and token holders), as the
/// console's settings do. The secret is in the answer to the POST and nowhere else.
pub mod http {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{delete, get};
    use axum::Router;
    use serde::Deserialize;
    use serde_json::json;

    use crate::http::auth::ApiCaller;
    use crate::http::error::ApiError;
    use crate::http::json::{created_response, ok, JsonBody};
    use crate::http::AppState;

    pub fn routes() -> Router<AppState> {
        Router::new()
            .route("/openvod/v1/tokens", get(list).post(create))
            .route("/openvod/v1/tokens/{id}", delete(revoke))
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CreateToken {
        name: String,
    }

    async fn create(
        State(state): State<AppState>,
        caller: ApiCaller,
        JsonBody(body): JsonBody<CreateToken>,
    ) -> Result<Response, ApiError> {
        caller.require_admin()?;
        let created = state.tokens.create(body.name.trim()).await?;
        Ok(created_response(
            json!({"id": created.id, "name": body.name.trim(), "secret": created.secret}),
        ))
    }

    async fn list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
        caller.require_admin()?;
        let tokens = state.tokens.list().await?;
        Ok(ok(tokens
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "name": t.name,
                    "created_at": t.created_at.to_string(),
                    "revoked": t.revoked_at.is_some(),
                })
            })
            .collect::<Vec<_>>()))
    }

    async fn revoke(
        State(state): State<AppState>,
        caller: ApiCaller,
        Path(id): Path<String>,
    ) -> Result<Response, ApiError> {
        caller.require_admin()?;
        if !state.tokens.revoke(&id).await? {
            return Err(ApiError::not_found(format!("no active token {id}")));
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub secret_sha256: Vec<u8>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[async_trait]
pub trait TokenRepo: Send + Sync {
    async fn create_token(&self, token: &ApiToken) -> Result<(), DbError>;
    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, DbError>;
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, DbError>;
    /// Marks the token revoked; `false` when no active token has that id.
    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, DbError>;
    /// Records a credential valid once (by digest) as used; `false` if it already was. Forgets
    /// the ones expired before `now`.
    async fn spend_once(&self, digest: &[u8], expires_at: i64, now: i64) -> Result<bool, DbError>;
    /// Counts `viewer` among the addresses the signed URL `sign` is played from, unless `limit`
    /// of them are counted already (`false`); an address counted before is admitted again.
    /// Forgets the URLs expired before `now`.
    async fn admit_viewer(
        &self,
        sign: &str,
        viewer: &str,
        limit: u32,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, DbError>;
}

#[async_trait]
pub trait SecretRepo: Send + Sync {
    /// Returns the named server secret, storing `generated` first if none exists yet.
    /// Every process sharing the database gets the same value.
    async fn get_or_create_secret(&self, name: &str, generated: &[u8]) -> Result<Vec<u8>, DbError>;
}

/// What the token service needs stored.
pub trait TokenStore: TokenRepo + SecretRepo {}
impl<T: TokenRepo + SecretRepo + ?Sized> TokenStore for T {}
