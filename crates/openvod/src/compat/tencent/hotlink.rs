//! Tencent VOD's "Key Hotlink Protection" for `/vod/...` media URLs. With a key configured
//! (`[tencent] hotlink_key`), a URL must carry `t` (expiry, Unix seconds in hex), optionally
//! `exper`, `rlimit` and `us`, and `sign = md5(KEY + Dir + t + exper + rlimit + us)`, `Dir` being the
//! URL's path up to its last `/` — as Tencent's `anti_leech_sign` demo computes it. `exper` (preview
//! length) and `rlimit` (viewer IP limit) are part of the signature but not enforced here.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::id::now_unix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HotlinkError {
    #[error("this URL needs a hotlink-protection signature (t and sign)")]
    Missing,
    #[error("the URL's t is not a hexadecimal Unix time")]
    BadTime,
    #[error("the URL has expired")]
    Expired,
    #[error("the URL's signature does not match")]
    BadSignature,
}

/// The signature of a media path (`/vod/<FileId>/<name>`) with the given parameters.
pub fn sign(key: &str, path: &str, t: &str, exper: &str, rlimit: &str, us: &str) -> String {
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    hex::encode(Md5::digest(
        format!("{key}{dir}{t}{exper}{rlimit}{us}").as_bytes(),
    ))
}

/// Checks a request for `path` with the query `query` (raw, as received).
pub fn check(key: &str, path: &str, query: Option<&str>) -> Result<(), HotlinkError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (t, given) = match (get("t"), get("sign")) {
        (Some(t), Some(sign)) => (t, sign),
        _ => return Err(HotlinkError::Missing),
    };
    let expires = i64::from_str_radix(t, 16).map_err(|_| HotlinkError::BadTime)?;
    let expected = sign(
        key,
        path,
        t,
        get("exper").unwrap_or(""),
        get("rlimit").unwrap_or(""),
        get("us").unwrap_or(""),
    );
    if !bool::from(
        expected
            .as_bytes()
            .ct_eq(given.to_ascii_lowercase().as_bytes()),
    ) {
        return Err(HotlinkError::BadSignature);
    }
    if now_unix() > expires {
        return Err(HotlinkError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbitrary_queries_do_not_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let alphabet = b"t=sign&exper=rlimit=us=0123456789abcdef%zZ+";
        for _ in 0..20_000 {
            let q: String = (0..rng.gen_range(0..60))
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                .collect();
            assert!(check("k", "/vod/1/src.mp4", Some(&q)).is_err());
        }
    }

    #[test]
    fn signs_over_the_directory() {
        let path = "/vod/5285890781763144364/src.mp4";
        let t = format!("{:x}", now_unix() + 600);
        let good = sign("k3y", path, &t, "", "3", "abc");
        // The directory, not the file: every file of a FileId shares a signature.
        assert_eq!(
            good,
            sign(
                "k3y",
                "/vod/5285890781763144364/other.jpg",
                &t,
                "",
                "3",
                "abc"
            )
        );
        assert_eq!(
            check(
                "k3y",
                path,
                Some(&format!("t={t}&rlimit=3&us=abc&sign={good}"))
            ),
            Ok(())
        );
        assert_eq!(check("k3y", path, None), Err(HotlinkError::Missing));
        assert_eq!(
            check(
                "k3y",
                path,
                Some(&format!("t={t}&rlimit=4&us=abc&sign={good}"))
            ),
            Err(HotlinkError::BadSignature)
        );
        assert_eq!(
            check(
                "k3y",
                "/vod/1/src.mp4",
                Some(&format!("t={t}&rlimit=3&us=abc&sign={good}"))
            ),
            Err(HotlinkError::BadSignature)
        );
        assert_eq!(
            check("k3y", path, Some(&format!("t=zz&sign={good}"))),
            Err(HotlinkError::BadTime)
        );
        let old = format!("{:x}", now_unix() - 1);
        let signed_old = sign("k3y", path, &old, "", "", "");
        assert_eq!(
            check("k3y", path, Some(&format!("t={old}&sign={signed_old}"))),
            Err(HotlinkError::Expired)
        );
        // The digest Tencent's demo computes for its own example values.
        assert_eq!(
            sign(
                "24FEQmTzro4V5u3D5epW",
                "/dir1/dir2/myVideo.mp4",
                "5e36ed0f",
                "",
                "",
                "72d4cd1101"
            ),
            hex::encode(Md5::digest(
                b"24FEQmTzro4V5u3D5epW/dir1/dir2/5e36ed0f72d4cd1101"
            ))
        );
    }
}
