//! Signed capability URLs: anyone holding one may send bytes to (or download) one object until it
//! expires, without API credentials.
//!
//! Token format: `<expires unix secs>.<base64url(HMAC-SHA256(key, "<purpose>:<id>:<expires>"))>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("the URL has no token")]
    Missing,
    #[error("the URL's token is malformed")]
    Malformed,
    #[error("the URL's token has expired")]
    Expired,
    #[error("the URL's token is not valid for this resource")]
    BadSignature,
}

#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl UrlSigner {
    pub fn new(key: Vec<u8>) -> UrlSigner {
        UrlSigner { key }
    }

    fn mac(&self, purpose: &str, id: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(format!("{purpose}:{id}:{expires}").as_bytes());
        mac
    }

    pub fn sign(&self, purpose: &str, id: &str, expires: i64) -> String {
        let tag = self.mac(purpose, id, expires).finalize().into_bytes();
        format!("{expires}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// A secret derived from the key for `purpose` and `id` (base64url): what a temporary
    /// credential's secret is, so it is never stored.
    pub fn derive(&self, purpose: &str, id: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, id, 0).finalize().into_bytes())
    }

    /// Checks the token in constant time, then its expiry.
    pub fn verify(
        &self,
        purpose: &str,
        id: &str,
        token: Option<&str>,
        now: i64,
    ) -> Result<(), CapabilityError> {
        let token = token.ok_or(CapabilityError::Missing)?;
        let (expires, tag) = token.split_once('.').ok_or(CapabilityError::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| CapabilityError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CapabilityError::Malformed)?;
        self.mac(purpose, id, expires)
            .verify_slice(&tag)
            .map_err(|_| CapabilityError::BadSignature)?;
        if now > expires {
            return Err(CapabilityError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let signer = UrlSigner::new(b"k".to_vec());
        let token = signer.sign("upload", "abc", 100);
        assert_eq!(signer.verify("upload", "abc", Some(&token), 99), Ok(()));
        assert_eq!(
            signer.verify("upload", "abc", Some(&token), 101),
            Err(CapabilityError::Expired)
        );
        assert_eq!(
            signer.verify("upload", "abd", Some(&token), 99),
            Err(CapabilityError::BadSignature)
        );
        assert_eq!(
            signer.verify("master", "abc", Some(&token), 99),
            Err(CapabilityError::BadSignature)
        );
        let later = token.replacen("100.", "200.", 1);
        assert_eq!(
            signer.verify("upload", "abc", Some(&later), 99),
            Err(CapabilityError::BadSignature)
        );
        assert_eq!(
            signer.verify("upload", "abc", Some("x"), 99),
            Err(CapabilityError::Malformed)
        );
        assert_eq!(
            signer.verify("upload", "abc", None, 99),
            Err(CapabilityError::Missing)
        );
    }
}
