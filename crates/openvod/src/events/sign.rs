//! Webhook signatures: Mux's `Mux-Signature` and Standard Webhooks' `webhook-signature`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::model::WebhookFormat;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key size");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `Mux-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the secret's raw bytes.
pub fn mux_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = hmac_sha256(
        secret.as_bytes(),
        &[timestamp.to_string().as_bytes(), b".", body],
    );
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
/// base64-decoded part of a `whsec_…` secret.
pub fn standard_signature(
    secret: &str,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let tag = hmac_sha256(
        &key,
        &[
            message_id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ],
    );
    Some(format!("v1,{}", STANDARD.encode(tag)))
}

/// A new signing secret in the form each format's receivers expect.
pub fn new_secret(format: WebhookFormat) -> String {
    let mut raw = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut raw);
    match format {
        WebhookFormat::Mux => hex::encode(raw),
        // Tencent SignKeys: letters and digits, at most 32.
        WebhookFormat::TencentV3 => crate::id::random_id(),
        WebhookFormat::Standard => format!("whsec_{}", STANDARD.encode(raw)),
    }
}

/// Whether `secret` can sign for `format` (Standard Webhooks secrets must be `whsec_` + base64).
pub fn secret_fits(format: WebhookFormat, secret: &str) -> bool {
    match format {
        WebhookFormat::Mux => !secret.is_empty(),
        WebhookFormat::TencentV3 => {
            secret.len() <= 32 && secret.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        WebhookFormat::Standard => secret
            .strip_prefix("whsec_")
            .is_some_and(|b| STANDARD.decode(b).is_ok_and(|k| k.len() >= 16)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mux_signature_matches_hand_computed_hmac() {
        let sig = mux_signature("secret", 1_565_220_904, br#"{"type":"video.asset.ready"}"#);
        let expected = hex::encode(hmac_sha256(
            b"secret",
            &[b"1565220904.{\"type\":\"video.asset.ready\"}"],
        ));
        assert_eq!(sig, format!("t=1565220904,v1={expected}"));
    }

    #[test]
    fn standard_signature_vector() {
        // The example from the Standard Webhooks specification.
        let sig = standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(standard_signature("whsec_!!!", "m", 1, b""), None);
    }

    #[test]
    fn secrets_fit_their_format() {
        assert!(secret_fits(
            WebhookFormat::Standard,
            &new_secret(WebhookFormat::Standard)
        ));
        assert!(secret_fits(
            WebhookFormat::Mux,
            &new_secret(WebhookFormat::Mux)
        ));
        assert!(!secret_fits(WebhookFormat::Standard, "plain"));
    }
}
