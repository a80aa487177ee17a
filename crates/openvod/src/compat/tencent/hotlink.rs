//! Tencent VOD's "Key Hotlink Protection" for `/vod/...` media URLs. With a key configured
//! (`[tencent] hotlink_key`), a URL must carry `t` (expiry, Unix seconds in hex), optionally
//! `exper`, `rlimit` and `us`, and `sign = md5(KEY + Dir + t + exper + rlimit + us)`, `Dir` being the
//! URL's path up to its last `/` — as Tencent's `anti_leech_sign` demo computes it. `rlimit` caps
//! the client addresses one signed URL may be played from (counted in the database, so across
//! servers; [`Viewers`] remembers the admitted ones); `exper` makes it a preview: only the first that many seconds are served.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

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
    #[error("the URL's rlimit is not a whole number of viewers")]
    BadLimit,
    #[error("the URL's exper is not a whole number of seconds")]
    BadPreview,
    #[error("the URL has already been played from {0} addresses, its rlimit")]
    TooManyViewers(u32),
    #[error("the URL's viewers cannot be counted right now; try again")]
    Unavailable,
}

/// Key Hotlink Protection as configured (`[tencent] hotlink_key`, `hotlink_viewer_header`).
pub struct Protection {
    key: String,
    viewer_header: Option<axum::http::HeaderName>,
    viewers: Viewers,
}

impl Protection {
    /// On when a key is configured (the header name was validated with the config).
    pub fn from_config(config: &crate::config::TencentConfig) -> Option<Protection> {
        Some(Protection {
            key: config.hotlink_key.clone()?,
            viewer_header: config
                .hotlink_viewer_header
                .as_deref()
                .and_then(|h| axum::http::HeaderName::try_from(h).ok()),
            viewers: Viewers::default(),
        })
    }

    /// Checks a request for `path`: signature, expiry, `exper`, then `rlimit` against the viewer's
    /// address (the configured header's, else `peer`; a request with neither counts as one
    /// unknown viewer), counted in the database (`tokens`) so that the cap holds across servers.
    /// Answers the preview length the URL is limited to, if any.
    pub async fn admit(
        &self,
        path: &str,
        query: Option<&str>,
        headers: &axum::http::HeaderMap,
        peer: Option<IpAddr>,
        tokens: &crate::tokens::TokenService,
    ) -> Result<Option<u32>, HotlinkError> {
        let grant = check(&self.key, path, query)?;
        let preview = grant.preview_secs()?;
        let Some(limit) = grant.viewer_limit()? else {
            return Ok(preview);
        };
        let from_header = self.viewer_header.as_ref().and_then(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            // X-Forwarded-For style lists: the proxy appends the address it saw last.
            value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        });
        let viewer = from_header.or(peer).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let now = now_unix();
        // Every segment and range request of a player comes again from a counted address: those
        // are answered from memory, only a new address asks the database.
        if self.viewers.knows(&grant, viewer, now) {
            return Ok(preview);
        }
        match tokens
            .admit_viewer(&grant.sign, &viewer.to_string(), limit, grant.expires)
            .await
        {
            Ok(true) => {
                self.viewers.remember(&grant, viewer);
                Ok(preview)
            }
            Ok(false) => Err(HotlinkError::TooManyViewers(limit)),
            Err(e) => {
                tracing::warn!(error = %e, "counting a hotlink URL's viewers");
                Err(HotlinkError::Unavailable)
            }
        }
    }
}

/// What a valid signature grants: until when, and to how many client addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub sign: String,
    pub expires: i64,
    /// `rlimit` and `exper` as signed: not yet parsed, so that [`check`] judges only the signature.
    pub rlimit: Option<String>,
    pub exper: Option<String>,
}

impl Grant {
    /// The number of client addresses `rlimit` allows (absent or empty: no cap).
    pub fn viewer_limit(&self) -> Result<Option<u32>, HotlinkError> {
        match self.rlimit.as_deref().filter(|r| !r.is_empty()) {
            None => Ok(None),
            Some(raw) => raw.parse().map(Some).map_err(|_| HotlinkError::BadLimit),
        }
    }

    /// The preview length `exper` asks for, in seconds (absent, empty or 0: the whole file).
    pub fn preview_secs(&self) -> Result<Option<u32>, HotlinkError> {
        match self.exper.as_deref().filter(|e| !e.is_empty()) {
            None => Ok(None),
            Some(e) => match e.parse::<u32>() {
                Ok(0) => Ok(None),
                Ok(secs) => Ok(Some(secs)),
                Err(_) => Err(HotlinkError::BadPreview),
            },
        }
    }
}

/// The client addresses this process has seen admitted under each signed URL, until the URL
/// expires: a cache of what the database counted. Only validly signed URLs make entries, so the
/// table is as large as the URLs in use.
#[derive(Default)]
pub struct Viewers {
    table: Mutex<ViewerTable>,
}

#[derive(Default)]
struct ViewerTable {
    by_sign: HashMap<String, (i64, Vec<IpAddr>)>,
    pruned_at: i64,
}

impl Viewers {
    fn table(&self) -> std::sync::MutexGuard<'_, ViewerTable> {
        // Nothing panics while the lock is held; were it poisoned, the table is still consistent.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `viewer` was admitted under `grant` here before. Forgets expired URLs.
    pub fn knows(&self, grant: &Grant, viewer: IpAddr, now: i64) -> bool {
        let mut table = self.table();
        if now - table.pruned_at >= 60 {
            table.by_sign.retain(|_, (expires, _)| *expires >= now);
            table.pruned_at = now;
        }
        table
            .by_sign
            .get(&grant.sign)
            .is_some_and(|(_, seen)| seen.contains(&viewer))
    }

    /// Remembers that `viewer` was admitted under `grant`.
    pub fn remember(&self, grant: &Grant, viewer: IpAddr) {
        let mut table = self.table();
        let (_, seen) = table
            .by_sign
            .entry(grant.sign.clone())
            .or_insert_with(|| (grant.expires, Vec::new()));
        if !seen.contains(&viewer) {
            seen.push(viewer);
        }
    }
}

/// The signature of a media path (`/vod/<FileId>/<name>`) with the given parameters.
pub fn sign(key: &str, path: &str, t: &str, exper: &str, rlimit: &str, us: &str) -> String {
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    hex::encode(Md5::digest(
        format!("{key}{dir}{t}{exper}{rlimit}{us}").as_bytes(),
    ))
}

/// Checks a request for `path` with the query `query` (raw, as received): signature and expiry.
pub fn check(key: &str, path: &str, query: Option<&str>) -> Result<Grant, HotlinkError> {
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
    Ok(Grant {
        sign: expected,
        expires,
        rlimit: get("rlimit").map(str::to_owned),
        exper: get("exper").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_is_parsed_and_admitted_viewers_are_remembered_until_the_url_expires() {
        let grant = |sign: &str, rlimit: Option<&str>, expires: i64| Grant {
            sign: sign.to_owned(),
            expires,
            rlimit: rlimit.map(str::to_owned),
            exper: None,
        };
        assert_eq!(grant("a", Some("2"), 1).viewer_limit(), Ok(Some(2)));
        assert_eq!(grant("a", Some(""), 1).viewer_limit(), Ok(None));
        assert_eq!(grant("a", None, 1).viewer_limit(), Ok(None));
        assert_eq!(
            grant("a", Some("many"), 1).viewer_limit(),
            Err(HotlinkError::BadLimit)
        );
        let viewers = Viewers::default();
        let ip = |last: u8| IpAddr::from([192, 0, 2, last]);
        let two = grant("a", Some("2"), 1_000);
        assert!(!viewers.knows(&two, ip(1), 100));
        viewers.remember(&two, ip(1));
        viewers.remember(&two, ip(1));
        assert!(viewers.knows(&two, ip(1), 100));
        assert!(!viewers.knows(&two, ip(2), 100));
        assert!(
            !viewers.knows(&grant("b", Some("2"), 1_000), ip(1), 100),
            "each signed URL has its own viewers"
        );
        // Expired URLs are forgotten (they are refused before they get here anyway).
        viewers.remember(&grant("f", Some("1"), 150), ip(1));
        assert!(!viewers.knows(&grant("g", Some("1"), 10_000), ip(1), 200));
        let table = viewers.table();
        assert!(!table.by_sign.contains_key("f") && table.by_sign.contains_key("a"));
        assert_eq!(table.by_sign["a"].1, vec![ip(1)]);
    }

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
        let grant = check(
            "k3y",
            path,
            Some(&format!("t={t}&rlimit=3&us=abc&sign={good}")),
        )
        .unwrap();
        assert_eq!(grant.rlimit.as_deref(), Some("3"));
        assert_eq!(grant.sign, good);
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
