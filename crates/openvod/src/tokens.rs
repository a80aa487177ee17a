//! API access tokens. Secrets are random 256-bit values shown once; only their SHA-256 is stored
//! (a fast hash suffices for high-entropy secrets) and comparisons are constant-time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::db::{ApiToken, ArcDb, DbError};
use crate::error::ErrorKind;
use crate::id::{now_unix, random_id};

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
            TokenError::Db(_) => ErrorKind::Internal,
        }
    }
}

pub struct NewTokenSecret {
    pub id: String,
    pub secret: String,
}

pub struct TokenService {
    db: ArcDb,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl TokenService {
    pub fn new(db: ArcDb) -> TokenService {
        TokenService { db }
    }

    pub async fn create(&self, name: &str) -> Result<NewTokenSecret, TokenError> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(TokenError::InvalidName);
        }
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let secret = URL_SAFE_NO_PAD.encode(raw);
        let token = ApiToken {
            id: random_id(),
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
