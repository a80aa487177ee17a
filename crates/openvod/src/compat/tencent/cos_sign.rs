//! COS request signatures (`Authorization: q-sign-algorithm=sha1&q-ak=…&q-signature=…`), as the
//! COS SDKs compute them for Tencent VOD uploads:
//!
//! ```text
//! HttpString   = lower(method) \n path \n sorted(k=v of listed params) \n sorted(k=v of listed headers) \n
//! StringToSign = "sha1" \n q-sign-time \n hex(sha1(HttpString)) \n
//! SignKey      = hex(hmac_sha1(SecretKey, q-key-time))
//! Signature    = hex(hmac_sha1(SignKey, StringToSign))
//! ```
//! Names are lower-cased and URL-encoded, values URL-encoded (everything but `A-Z a-z 0-9 - _ . ~`).

use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::{Digest, Sha1};

/// What COS leaves unencoded: RFC 3986's unreserved characters.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The parts of a COS `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosAuthorization {
    pub secret_id: String,
    /// `start;end` Unix seconds, as signed.
    pub sign_time: String,
    pub key_time: String,
    pub sign_window: (i64, i64),
    /// Lower-case names of the signed headers and URL parameters.
    pub header_list: Vec<String>,
    pub param_list: Vec<String>,
    pub signature: String,
}

fn window(time: &str) -> Option<(i64, i64)> {
    let (start, end) = time.split_once(';')?;
    let (start, end) = (start.parse().ok()?, end.parse().ok()?);
    (start <= end).then_some((start, end))
}

impl CosAuthorization {
    pub fn parse(header: &str) -> Option<CosAuthorization> {
        let (mut algorithm, mut ak, mut sign_time, mut key_time) = (None, None, None, None);
        let (mut headers, mut params, mut signature) = (None, None, None);
        for pair in header.trim().split('&') {
            let (key, value) = pair.split_once('=')?;
            let slot = match key {
                "q-sign-algorithm" => &mut algorithm,
                "q-ak" => &mut ak,
                "q-sign-time" => &mut sign_time,
                "q-key-time" => &mut key_time,
                "q-header-list" => &mut headers,
                "q-url-param-list" => &mut params,
                "q-signature" => &mut signature,
                _ => return None,
            };
            if slot.replace(value).is_some() {
                return None;
            }
        }
        let list = |v: &str| -> Vec<String> {
            v.split(';')
                .filter(|s| !s.is_empty())
                .map(str::to_ascii_lowercase)
                .collect()
        };
        let signature = signature?;
        if algorithm? != "sha1"
            || signature.len() != 40
            || !signature.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let (ak, sign_time, key_time) = (ak?, sign_time?, key_time?);
        if ak.is_empty() {
            return None;
        }
        Some(CosAuthorization {
            secret_id: ak.to_owned(),
            sign_window: window(sign_time)?,
            sign_time: sign_time.to_owned(),
            key_time: key_time.to_owned(),
            header_list: list(headers?),
            param_list: list(params?),
            signature: signature.to_ascii_lowercase(),
        })
    }
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

/// `k=v&k=v` of the pairs, names lower-cased, both encoded, sorted by name.
fn canonical(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (encode(&k.to_ascii_lowercase()), encode(v)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac_sha1_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key size");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// The signature of a request: `path` is the object path as signed (`/` + key, decoded); the
/// params and headers are the listed ones with their values.
pub fn cos_signature(
    secret_key: &str,
    method: &str,
    path: &str,
    params: &[(String, String)],
    headers: &[(String, String)],
    sign_time: &str,
    key_time: &str,
) -> String {
    let http_string = format!(
        "{}\n{path}\n{}\n{}\n",
        method.to_ascii_lowercase(),
        canonical(params),
        canonical(headers)
    );
    let string_to_sign = format!(
        "sha1\n{sign_time}\n{}\n",
        hex::encode(Sha1::digest(http_string.as_bytes()))
    );
    let sign_key = hmac_sha1_hex(secret_key.as_bytes(), key_time.as_bytes());
    hmac_sha1_hex(sign_key.as_bytes(), string_to_sign.as_bytes())
}

/// The header a client sends (our tests sign with it, as the SDK does).
pub fn cos_authorization(
    secret_id: &str,
    secret_key: &str,
    method: &str,
    path: &str,
    params: &[(String, String)],
    headers: &[(String, String)],
    sign_time: &str,
) -> String {
    let names = |pairs: &[(String, String)]| {
        let mut names: Vec<String> = pairs
            .iter()
            .map(|(k, _)| encode(&k.to_ascii_lowercase()))
            .collect();
        names.sort();
        names.join(";")
    };
    format!(
        "q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={sign_time}&q-key-time={sign_time}\
         &q-header-list={}&q-url-param-list={}&q-signature={}",
        names(headers),
        names(params),
        cos_signature(secret_key, method, path, params, headers, sign_time, sign_time)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Tencent's COS signature documentation (PUT of `/exampleobject(腾讯云)`),
    /// signed by cos-python-sdk-v5's own `CosS3Auth` at a fixed time: its header, byte for byte.
    #[test]
    fn matches_the_python_sdk() {
        let headers: Vec<(String, String)> = [
            ("Content-Length", "0"),
            ("Content-MD5", "mQ/fVh815F3k6TAUm8m0eg=="),
            ("Content-Type", "text/plain"),
            (
                "Host",
                "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
            ),
            ("x-cos-acl", "private"),
            ("x-cos-grant-read", "uin=\"100000000011\""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let auth = cos_authorization(
            "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q",
            "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz",
            "PUT",
            "/exampleobject(腾讯云)",
            &[],
            &headers,
            "1557989151;1557996351",
        );
        assert_eq!(
            auth,
            "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q\
             &q-sign-time=1557989151;1557996351&q-key-time=1557989151;1557996351\
             &q-header-list=content-length;content-md5;content-type;host;x-cos-acl;x-cos-grant-read\
             &q-url-param-list=&q-signature=ddf16602b1f3df195168afec1271ec496be8bda7"
        );
        let parsed = CosAuthorization::parse(&auth).unwrap();
        assert_eq!(parsed.sign_window, (1557989151, 1557996351));
        assert_eq!(parsed.header_list.len(), 6);
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "q-sign-algorithm=md5&q-ak=a&q-sign-time=1;2&q-key-time=1;2&q-header-list=&q-url-param-list=&q-signature=3b8851a11a569213c17ba8fa7dcf2abec6935172",
            "q-sign-algorithm=sha1&q-ak=a&q-sign-time=2;1&q-key-time=1;2&q-header-list=&q-url-param-list=&q-signature=3b8851a11a569213c17ba8fa7dcf2abec6935172",
            "q-sign-algorithm=sha1&q-ak=a&q-ak=b&q-sign-time=1;2&q-key-time=1;2&q-header-list=&q-url-param-list=&q-signature=3b8851a11a569213c17ba8fa7dcf2abec6935172",
            "q-sign-algorithm=sha1&q-ak=a&q-sign-time=1;2&q-key-time=1;2&q-header-list=&q-url-param-list=&q-signature=xyz",
        ] {
            assert!(CosAuthorization::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn arbitrary_headers_do_not_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"q-signalgorithm=sha1&;ak0123456789abcdef";
        for _ in 0..50_000 {
            let len = rng.gen_range(0..120);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                .collect();
            let _ = CosAuthorization::parse(&s);
        }
    }
}
