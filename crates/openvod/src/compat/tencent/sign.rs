//! TC3-HMAC-SHA256, TencentCloud API 3.0's request signature: verification for our API, signing for
//! our own client (the receipt service).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// The parts of an `Authorization: TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    /// Lowercase header names, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn parse(header: &str) -> Option<Authorization> {
        let rest = header.trim().strip_prefix(ALGORITHM)?.trim_start();
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (key, value) = part.trim().split_once('=')?;
            match key {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed = Some(value),
                "Signature" => signature = Some(value),
                _ => return None,
            }
        }
        let mut scope = credential?.split('/');
        let (secret_id, date, service, terminator) =
            (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
        if terminator != "tc3_request" || scope.next().is_some() || secret_id.is_empty() {
            return None;
        }
        let signed_headers: Vec<String> = signed?.split(';').map(str::to_ascii_lowercase).collect();
        let signature = signature?;
        if signed_headers.iter().any(String::is_empty)
            || signature.len() != 64
            || !signature.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        Some(Authorization {
            secret_id: secret_id.to_owned(),
            date: date.to_owned(),
            service: service.to_owned(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key size");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The UTC date (`YYYY-MM-DD`) of a Unix timestamp, as the credential scope uses it.
pub fn date_of(timestamp: i64) -> String {
    crate::id::iso8601_micros(timestamp * 1000)[..10].to_owned()
}

/// What gets signed.
pub struct Request<'a> {
    pub method: &'a str,
    pub canonical_query: &'a str,
    /// `(lowercase name, value)` for each signed header, in the signed order.
    pub headers: Vec<(String, String)>,
    /// The raw body, or `None` for `UNSIGNED-PAYLOAD`.
    pub payload: Option<&'a [u8]>,
    pub timestamp: i64,
    pub service: &'a str,
}

/// The hex signature of `request` under `secret_key`.
pub fn signature(secret_key: &str, request: &Request<'_>) -> String {
    let canonical_headers: String = request
        .headers
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim().to_ascii_lowercase()))
        .collect();
    let signed_headers = request
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let payload_hash = hex::encode(Sha256::digest(
        request.payload.unwrap_or(b"UNSIGNED-PAYLOAD"),
    ));
    let canonical_request = format!(
        "{}\n/\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method, request.canonical_query
    );
    let date = date_of(request.timestamp);
    let scope = format!("{date}/{}/tc3_request", request.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        request.timestamp,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, request.service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// The `Authorization` header our client sends (signing `content-type` and `host`).
pub fn authorization(
    secret_id: &str,
    secret_key: &str,
    host: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let request = Request {
        method: "POST",
        canonical_query: "",
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("host".into(), host.into()),
        ],
        payload: Some(body),
        timestamp,
        service: "vod",
    };
    format!(
        "{ALGORITHM} Credential={secret_id}/{}/vod/tc3_request, SignedHeaders=content-type;host, Signature={}",
        date_of(timestamp),
        signature(secret_key, &request)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_test_vector() {
        let body = br#"{"FileId": "5285890784273533167", "MediaProcessTask": {"TranscodeTaskSet": [{"Definition": 100010}]}}"#;
        assert_eq!(
            hex::encode(Sha256::digest(body)),
            "924242ca86ff135674ade0d3b58f12961b25c99b2c24c5454695cf2238f4c431"
        );
        let header = authorization(
            "AKIDEXAMPLE",
            "SECRETEXAMPLE",
            "127.0.0.1:8080",
            1_700_000_000,
            body,
        );
        assert_eq!(
            header,
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2023-11-14/vod/tc3_request, SignedHeaders=content-type;host, \
             Signature=108de43dd7df9b602119bc0a4a502a275481445945c6a947d7684f425f657c47"
        );
        let parsed = Authorization::parse(&header).unwrap();
        assert_eq!(parsed.secret_id, "AKIDEXAMPLE");
        assert_eq!(parsed.date, "2023-11-14");
        assert_eq!(parsed.signed_headers, ["content-type", "host"]);
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "TC3-HMAC-SHA256",
            "Basic abc",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=zz",
            "TC3-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=108de43dd7df9b602119bc0a4a502a275481445945c6a947d7684f425f657c47",
            "TC3-HMAC-SHA256 Credential=/b/c/tc3_request, SignedHeaders=host, Signature=108de43dd7df9b602119bc0a4a502a275481445945c6a947d7684f425f657c47",
        ] {
            assert_eq!(Authorization::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn arbitrary_headers_do_not_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let alphabet =
            b"TC3-HMAC-SHA256 Credential=/,;SignedHeaders=Signature=abc0123456789tc3_request";
        for _ in 0..50_000 {
            let len = rng.gen_range(0..120);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                .collect();
            let _ = Authorization::parse(&s);
        }
    }
}
