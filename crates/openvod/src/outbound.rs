//! Outbound HTTP under one address policy: URLs given by API callers (asset inputs, later webhook
//! targets) may not reach loopback, private, link-local or other internal addresses unless
//! `[outbound] allow_private_addresses = true`. The policy is applied to every DNS answer the HTTP
//! client uses, so a hostname cannot be re-pointed inward after validation.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::OutboundConfig;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid URL {0:?}: must be an absolute http or https URL")]
    InvalidUrl(String),
    #[error("URL host {0} resolves to a loopback, private or otherwise internal address, which is not allowed")]
    PrivateAddress(String),
    #[error("URL host {0} could not be resolved: {1}")]
    Resolve(String, String),
}

/// Whether `ip` is a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link local
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 can reach private IPv4
                || seg[0] == 0x2002 // 6to4 embeds any IPv4
                || (seg[0] == 0x2001 && seg[1] == 0) // Teredo
                || v6.to_ipv4().is_some()) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240)
}

struct PolicyResolver {
    allow_private: bool,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(OutboundError::PrivateAddress(host)) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

pub struct Outbound {
    allow_private: bool,
    client: reqwest::Client,
}

impl Outbound {
    pub fn new(config: &OutboundConfig) -> Outbound {
        Outbound::build(config.allow_private_addresses, false)
    }

    /// The same policy with a cookie jar of its own, for sites that grant access by cookie:
    /// Scalelite's protected recordings set one when their one-time token URL is consumed, and
    /// every file of the recording is then fetched within that session. The jar lives as long as
    /// the returned value; nothing is shared with other requests.
    pub fn session(&self) -> Outbound {
        Outbound::build(self.allow_private, true)
    }

    fn build(allow_private: bool, cookies: bool) -> Outbound {
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("too many redirects");
            }
            let literal_ip = attempt.url().host_str().and_then(literal_ip);
            match literal_ip {
                Some(ip) if !allow_private && !is_public(ip) => {
                    attempt.error("redirect to an internal address")
                }
                _ => attempt.follow(),
            }
        });
        let client = reqwest::Client::builder()
            // A system proxy would resolve and reach hosts past the address policy.
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver { allow_private }))
            .redirect(redirect)
            .cookie_store(cookies)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("openvod/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        Outbound {
            allow_private,
            client,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A client for webhook deliveries: the same address policy, no redirects, a per-request timeout.
    pub fn webhook_client(&self, timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver {
                allow_private: self.allow_private,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .user_agent(concat!("openvod-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid")
    }

    /// Refuses literal internal IPs in a URL the HTTP client will contact (names go through the
    /// resolver's policy).
    pub fn literal_ip_allowed(&self, url: &url::Url) -> bool {
        self.allow_private || url.host_str().and_then(literal_ip).is_none_or(is_public)
    }

    /// Validates a caller-supplied URL now, so the caller gets a clear error instead of a later failure.
    pub async fn check_url(&self, raw: &str) -> Result<url::Url, OutboundError> {
        let url = url::Url::parse(raw).map_err(|_| OutboundError::InvalidUrl(raw.to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::InvalidUrl(raw.to_owned()));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| OutboundError::InvalidUrl(raw.to_owned()))?
            .to_owned();
        if self.allow_private {
            return Ok(url);
        }
        let ips: Vec<IpAddr> = match literal_ip(&host) {
            Some(ip) => vec![ip],
            None => tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| OutboundError::Resolve(host.clone(), e.to_string()))?
                .map(|a| a.ip())
                .collect(),
        };
        if ips.is_empty() || ips.iter().any(|ip| !is_public(*ip)) {
            return Err(OutboundError::PrivateAddress(host));
        }
        Ok(url)
    }
}

fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn refuses_internal_urls_by_default() {
        let outbound = Outbound::new(&OutboundConfig::default());
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]/x",
            "http://localhost/x",
            "ftp://example.com/x",
            "nonsense",
        ] {
            assert!(outbound.check_url(url).await.is_err(), "{url}");
        }
        let allowing = Outbound::new(&OutboundConfig {
            allow_private_addresses: true,
            ..OutboundConfig::default()
        });
        assert!(allowing.check_url("http://127.0.0.1:9/x").await.is_ok());
    }
}
