//! Playback signing keys and the JWTs signed with them.
//!
//! RS256 keys: we generate the pair, keep the public half, and hand out the private half once.
//! HS256 keys: the `private_key` string we hand out is itself the HMAC secret (its bytes as they are),
//! so it is stored to verify with. `alg: none`, unknown keys and algorithm mismatches are refused.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use serde_json::{Map, Value};

use super::PlaybackError;
use crate::id::{is_valid_id, now_unix, random_id};

#[derive(Debug, Clone)]
pub struct SigningKey {
    pub id: String,
    /// `RS256` or `HS256`.
    pub algorithm: String,
    pub verification_key: String,
    pub created_at: i64,
}

/// A new key and the private half, shown to the caller once.
pub struct NewSigningKey {
    pub key: SigningKey,
    pub private_key: String,
}

/// Verified token claims; transformation parameters (`time`, `width`, ...) may be among them.
#[derive(Debug, Clone, Default)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// A claim as text; Mux's Node SDK sends numbers as strings, others send numbers.
    pub fn param(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The playback restriction the token is bound to (`playback_restriction_id`).
    pub fn restriction_id(&self) -> Option<String> {
        self.param("playback_restriction_id")
            .filter(|id| crate::id::is_valid_id(id))
    }

    pub fn exp(&self) -> Option<i64> {
        self.0.get("exp").and_then(Value::as_i64)
    }
}

pub struct SigningKeys {
    db: std::sync::Arc<dyn crate::playback::repo::SigningKeyRepo>,
}

/// The `kid` of a token, from its header or (as mux-node v15 puts it) its payload.
fn token_kid(token: &str, header_kid: Option<String>) -> Option<String> {
    header_kid.or_else(|| {
        let payload = token.split('.').nth(1)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        value.get("kid")?.as_str().map(str::to_owned)
    })
}

impl SigningKeys {
    pub fn new(db: std::sync::Arc<dyn crate::playback::repo::SigningKeyRepo>) -> SigningKeys {
        SigningKeys { db }
    }

    pub async fn create(&self, algorithm: &str) -> Result<NewSigningKey, PlaybackError> {
        let (verification_key, private_key) = match algorithm {
            "RS256" => {
                tokio::task::spawn_blocking(|| -> Result<(String, String), PlaybackError> {
                    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                        .map_err(|e| PlaybackError::KeyGeneration(e.to_string()))?;
                    let private_pem = private
                        .to_pkcs1_pem(LineEnding::LF)
                        .map_err(|e| PlaybackError::KeyGeneration(e.to_string()))?;
                    let public_pem = private
                        .to_public_key()
                        .to_pkcs1_pem(LineEnding::LF)
                        .map_err(|e| PlaybackError::KeyGeneration(e.to_string()))?;
                    Ok((public_pem, STANDARD.encode(private_pem.as_bytes())))
                })
                .await
                .expect("key generation does not panic")?
            }
            "HS256" => {
                let mut raw = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut raw);
                let secret = STANDARD.encode(raw);
                (secret.clone(), secret)
            }
            other => {
                return Err(PlaybackError::Invalid(format!(
                    "algorithm: unknown value {other:?}; expected RS256 or HS256"
                )))
            }
        };
        let key = SigningKey {
            id: random_id(),
            algorithm: algorithm.to_owned(),
            verification_key,
            created_at: now_unix(),
        };
        self.db.create_signing_key(&key).await?;
        Ok(NewSigningKey { key, private_key })
    }

    pub async fn get(&self, id: &str) -> Result<SigningKey, PlaybackError> {
        if !is_valid_id(id) {
            return Err(PlaybackError::KeyNotFound(id.to_owned()));
        }
        self.db
            .get_signing_key(id)
            .await?
            .ok_or_else(|| PlaybackError::KeyNotFound(id.to_owned()))
    }

    pub async fn list(&self) -> Result<Vec<SigningKey>, PlaybackError> {
        Ok(self.db.list_signing_keys().await?)
    }

    pub async fn delete(&self, id: &str) -> Result<(), PlaybackError> {
        if !is_valid_id(id) || !self.db.delete_signing_key(id).await? {
            return Err(PlaybackError::KeyNotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Verifies a playback token for `playback_id` and audience `aud` (`v`, `t`, `g`, `s`).
    pub async fn verify(
        &self,
        token: &str,
        aud: &str,
        playback_id: &str,
    ) -> Result<Claims, PlaybackError> {
        let refuse = |why: String| PlaybackError::TokenRefused(why);
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| refuse(format!("malformed token or unsupported algorithm: {e}")))?;
        let algorithm = match header.alg {
            Algorithm::RS256 => "RS256",
            Algorithm::HS256 => "HS256",
            other => {
                return Err(refuse(format!(
                    "algorithm {other:?} is not accepted; use RS256 or HS256"
                )))
            }
        };
        let kid =
            token_kid(token, header.kid).ok_or_else(|| refuse("token has no kid".to_owned()))?;
        let key = match self.get(&kid).await {
            Ok(key) => key,
            Err(PlaybackError::KeyNotFound(_)) => {
                return Err(refuse(format!("unknown signing key {kid:?}")))
            }
            Err(e) => return Err(e),
        };
        if key.algorithm != algorithm {
            return Err(refuse(format!(
                "signing key {kid} is {} but the token says {algorithm}",
                key.algorithm
            )));
        }
        let decoding_key = match header.alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(key.verification_key.as_bytes())
                .map_err(|e| PlaybackError::KeyGeneration(e.to_string()))?,
            _ => DecodingKey::from_secret(key.verification_key.as_bytes()),
        };
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[aud]);
        validation.sub = Some(playback_id.to_owned());
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &decoding_key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                refuse(match e.kind() {
                    K::ExpiredSignature => "token has expired".to_owned(),
                    K::InvalidAudience => {
                        format!("token audience is not {aud:?} for this resource")
                    }
                    K::InvalidSubject => "token is for another playback id".to_owned(),
                    K::MissingRequiredClaim(c) => format!("token lacks the {c} claim"),
                    K::InvalidSignature => "token signature is invalid".to_owned(),
                    _ => format!("token is invalid: {e}"),
                })
            })?;
        Ok(Claims(data.claims))
    }
}

#[cfg(test)]
mod tests {
    use super::token_kid;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    #[test]
    fn kid_from_header_or_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"kid":"abc","sub":"x"}"#);
        let token = format!("e30.{payload}.sig");
        assert_eq!(token_kid(&token, None).as_deref(), Some("abc"));
        assert_eq!(
            token_kid(&token, Some("hdr".into())).as_deref(),
            Some("hdr")
        );
        assert_eq!(token_kid("garbage", None), None);
        assert_eq!(token_kid("a.!!!.c", None), None);
    }
}
