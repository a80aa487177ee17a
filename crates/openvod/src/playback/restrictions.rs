//! Playback restrictions (Mux's `/video/v1/playback-restrictions`): which sites may embed a signed
//! playback id (`Referer`, with `*.` wildcards) and which clients may play it (`User-Agent`). A
//! token names one in its `playback_restriction_id` claim; the master playlist, the grant its
//! child URLs carry, images and static files are all checked against it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybackRestriction {
    pub id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub referrer: ReferrerRule,
    pub user_agent: UserAgentRule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReferrerRule {
    /// Hosts allowed to embed: `example.com`, `*.example.com` (its subdomains), or `*` (any).
    pub allowed_domains: Vec<String>,
    pub allow_no_referrer: bool,
}

impl Default for ReferrerRule {
    /// As Mux: no domain allowed until some are listed, and a missing `Referer` refused.
    fn default() -> Self {
        ReferrerRule {
            allowed_domains: Vec::new(),
            allow_no_referrer: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserAgentRule {
    pub allow_no_user_agent: bool,
    pub allow_high_risk_user_agent: bool,
}

impl Default for UserAgentRule {
    /// As Mux: both allowed unless turned off.
    fn default() -> Self {
        UserAgentRule {
            allow_no_user_agent: true,
            allow_high_risk_user_agent: true,
        }
    }
}

/// Most domains one restriction may list.
pub const MAX_DOMAINS: usize = 100;

/// Checks an allowed-domain entry; the lowercase form it is kept in.
pub fn valid_domain(entry: &str) -> Result<String, String> {
    let entry = entry.trim().to_ascii_lowercase();
    if entry == "*" {
        return Ok(entry);
    }
    let host = entry.strip_prefix("*.").unwrap_or(&entry);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!(
            "{entry:?} is not a domain (example.com, *.example.com or *)"
        ));
    }
    Ok(entry)
}

/// Clients that are tools rather than players a person watches with: what Mux calls high-risk.
const HIGH_RISK_AGENTS: &[&str] = &[
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "lavf/",
    "libwww-perl",
    "yt-dlp",
    "youtube-dl",
    "aria2/",
    "scrapy",
    "headlesschrome",
];

impl PlaybackRestriction {
    /// Whether a request with this `Referer` and `User-Agent` may play; the refusal says why.
    pub fn allows(&self, referer: Option<&str>, user_agent: Option<&str>) -> Result<(), String> {
        match referer.map(str::trim).filter(|r| !r.is_empty()) {
            None if !self.referrer.allow_no_referrer => {
                return Err("a Referer is required by the playback restriction".to_owned())
            }
            None => {}
            Some(referer) => {
                let host = url::Url::parse(referer)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                    .ok_or_else(|| format!("the Referer {referer:?} is not a URL"))?;
                if !self
                    .referrer
                    .allowed_domains
                    .iter()
                    .any(|allowed| domain_matches(allowed, &host))
                {
                    return Err(format!("{host} is not allowed by the playback restriction"));
                }
            }
        }
        match user_agent.map(str::trim).filter(|u| !u.is_empty()) {
            None if !self.user_agent.allow_no_user_agent => {
                Err("a User-Agent is required by the playback restriction".to_owned())
            }
            Some(agent) if !self.user_agent.allow_high_risk_user_agent && is_high_risk(agent) => {
                Err("this client is refused by the playback restriction".to_owned())
            }
            _ => Ok(()),
        }
    }
}

fn domain_matches(allowed: &str, host: &str) -> bool {
    if allowed == "*" {
        return true;
    }
    match allowed.strip_prefix("*.") {
        Some(parent) => host
            .strip_suffix(parent)
            .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
        None => host == allowed,
    }
}

fn is_high_risk(agent: &str) -> bool {
    let agent = agent.to_ascii_lowercase();
    HIGH_RISK_AGENTS.iter().any(|tool| agent.contains(tool))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restriction(
        domains: &[&str],
        no_referrer: bool,
        no_agent: bool,
        risky: bool,
    ) -> PlaybackRestriction {
        PlaybackRestriction {
            id: "r".into(),
            created_at: 0,
            updated_at: 0,
            referrer: ReferrerRule {
                allowed_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
                allow_no_referrer: no_referrer,
            },
            user_agent: UserAgentRule {
                allow_no_user_agent: no_agent,
                allow_high_risk_user_agent: risky,
            },
        }
    }

    #[test]
    fn referrers_match_exactly_or_by_wildcard() {
        let r = restriction(&["example.com", "*.school.edu"], false, true, true);
        let ok = |referer: &str| r.allows(Some(referer), Some("Mozilla/5.0")).is_ok();
        assert!(ok("https://example.com/watch?v=1"));
        assert!(ok("https://EXAMPLE.com:8443/"));
        assert!(
            !ok("https://www.example.com/"),
            "no wildcard for example.com"
        );
        assert!(ok("https://video.school.edu/a"));
        assert!(ok("https://a.b.school.edu/"));
        assert!(!ok("https://school.edu/"), "*. is subdomains only");
        assert!(!ok("https://evilschool.edu/"));
        assert!(!ok("https://school.edu.evil.com/"));
        assert!(!ok("not a url"));
        assert!(
            r.allows(None, Some("Mozilla/5.0")).is_err(),
            "no referrer refused"
        );
        let any = restriction(&["*"], true, true, true);
        assert!(any.allows(Some("https://anything.example/"), None).is_ok());
        assert!(any.allows(None, None).is_ok());
    }

    #[test]
    fn user_agents_by_rule() {
        let r = restriction(&["*"], true, false, false);
        assert!(r.allows(None, None).is_err(), "no user agent refused");
        assert!(
            r.allows(None, Some("curl/8.5.0")).is_err(),
            "a tool refused"
        );
        assert!(r.allows(None, Some("Lavf/59.27.100")).is_err());
        assert!(r
            .allows(None, Some("Mozilla/5.0 (X11; Linux) Firefox/128.0"))
            .is_ok());
    }

    #[test]
    fn domain_entries_are_checked() {
        assert_eq!(valid_domain(" Example.COM ").unwrap(), "example.com");
        assert_eq!(valid_domain("*.example.com").unwrap(), "*.example.com");
        assert_eq!(valid_domain("*").unwrap(), "*");
        for bad in [
            "",
            "*.",
            "exa mple.com",
            "-a.com",
            "a..com",
            "http://a.com",
            "a.com/x",
            "**.a.com",
        ] {
            assert!(valid_domain(bad).is_err(), "{bad:?}");
        }
    }

    /// Random Referer and User-Agent text is answered, never a panic; a host that is not listed
    /// is never allowed.
    #[test]
    fn arbitrary_headers_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let r = restriction(&["example.com"], false, true, false);
        let pieces = [
            "https://",
            "example.com",
            ".",
            "/",
            ":",
            "@",
            "*",
            "curl/",
            "%2e",
            "x",
        ];
        for _ in 0..20_000 {
            let referer: String = (0..rng.gen_range(0..6))
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            let agent: String = (0..rng.gen_range(0..20))
                .map(|_| char::from(rng.gen_range(0x20u8..0x7f)))
                .collect();
            let answer = r.allows(Some(&referer), Some(&agent));
            if let Ok(url) = url::Url::parse(&referer) {
                if url.host_str().map(str::to_ascii_lowercase).as_deref() != Some("example.com") {
                    assert!(answer.is_err(), "{referer:?} allowed");
                }
            }
        }
    }
}

/// The request facts restrictions look at.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub referer: Option<String>,
    pub user_agent: Option<String>,
}

impl Viewer {
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Viewer {
        let text = |name: axum::http::header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Viewer {
            referer: text(axum::http::header::REFERER),
            user_agent: text(axum::http::header::USER_AGENT),
        }
    }
}

/// Restrictions as the API manages them and playback checks them.
pub struct Restrictions {
    db: std::sync::Arc<dyn crate::playback::repo::RestrictionRepo>,
}

impl Restrictions {
    pub fn new(db: std::sync::Arc<dyn crate::playback::repo::RestrictionRepo>) -> Restrictions {
        Restrictions { db }
    }

    fn checked(mut referrer: ReferrerRule) -> Result<ReferrerRule, PlaybackError> {
        if referrer.allowed_domains.len() > MAX_DOMAINS {
            return Err(PlaybackError::Invalid(format!(
                "referrer.allowed_domains: at most {MAX_DOMAINS} domains"
            )));
        }
        referrer.allowed_domains = referrer
            .allowed_domains
            .iter()
            .map(|d| valid_domain(d))
            .collect::<Result<_, _>>()
            .map_err(|e| PlaybackError::Invalid(format!("referrer.allowed_domains: {e}")))?;
        Ok(referrer)
    }

    pub async fn create(
        &self,
        referrer: ReferrerRule,
        user_agent: UserAgentRule,
    ) -> Result<PlaybackRestriction, PlaybackError> {
        let now = crate::id::now_unix();
        let restriction = PlaybackRestriction {
            id: crate::id::random_id(),
            created_at: now,
            updated_at: now,
            referrer: Self::checked(referrer)?,
            user_agent,
        };
        self.db.create_restriction(&restriction).await?;
        Ok(restriction)
    }

    pub async fn get(&self, id: &str) -> Result<PlaybackRestriction, PlaybackError> {
        self.db
            .get_restriction(id)
            .await?
            .ok_or_else(|| PlaybackError::NotFound(format!("playback restriction {id}")))
    }

    pub async fn list(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<PlaybackRestriction>, PlaybackError> {
        Ok(self.db.list_restrictions(limit, offset).await?)
    }

    /// Replaces one of the rules (`referrer` or `user_agent`).
    pub async fn update(
        &self,
        id: &str,
        referrer: Option<ReferrerRule>,
        user_agent: Option<UserAgentRule>,
    ) -> Result<PlaybackRestriction, PlaybackError> {
        let mut restriction = self.get(id).await?;
        if let Some(referrer) = referrer {
            restriction.referrer = Self::checked(referrer)?;
        }
        if let Some(user_agent) = user_agent {
            restriction.user_agent = user_agent;
        }
        restriction.updated_at = crate::id::now_unix();
        if !self.db.update_restriction(&restriction).await? {
            return Err(PlaybackError::NotFound(format!(
                "playback restriction {id}"
            )));
        }
        Ok(restriction)
    }

    pub async fn delete(&self, id: &str) -> Result<(), PlaybackError> {
        if self.db.delete_restriction(id).await? {
            Ok(())
        } else {
            Err(PlaybackError::NotFound(format!(
                "playback restriction {id}"
            )))
        }
    }

    /// Refuses `viewer` unless restriction `id` allows it; a restriction that no longer exists
    /// refuses everyone (its token was meant to be restricted).
    pub async fn check(&self, id: &str, viewer: &Viewer) -> Result<(), PlaybackError> {
        let restriction = self.db.get_restriction(id).await?.ok_or_else(|| {
            PlaybackError::Restricted(format!("playback restriction {id} does not exist"))
        })?;
        restriction
            .allows(viewer.referer.as_deref(), viewer.user_agent.as_deref())
            .map_err(PlaybackError::Restricted)
    }
}

use crate::playback::PlaybackError;
