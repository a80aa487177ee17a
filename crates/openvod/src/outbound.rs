//! Outbound HTTP under one address policy: URLs given by API callers (asset inputs, later webhook
//! targets) may not reach loopback, private, link-local or other internal addresses unless
//! `[outbound] allow_private_addresses = true`. The policy is applied to every DNS answer the HTTP
//! client uses, so a hostname cannot be re-pointed inward after validation (DNS rebinding): the
//! answer checked is the one connected to.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::OutboundConfig;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid URL {0:?}: must be an absolute http or https URL")]
    InvalidUrl(String),
    #[error("URL host {0} resolves to a loopback, private or otherwise internal address, which is not allowed (see [outbound] allow_private_addresses)")]
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

/// How a host name becomes addresses: the system resolver, or (in tests) one that answers
/// differently from one call to the next, as a rebinding DNS server does.
type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>
        + Send
        + Sync,
>;

fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    })
}

struct PolicyResolver {
    allow_private: bool,
    lookup: Lookup,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // The answer checked here is the one connected to: nothing can change in between.
            let addrs: Vec<SocketAddr> = lookup(host.clone())
                .await?
                .into_iter()
                .filter(|ip| allow_private || is_public(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
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
    lookup: Lookup,
    client: reqwest::Client,
}

impl Outbound {
    pub fn new(config: &OutboundConfig) -> Outbound {
        Outbound::build(config.allow_private_addresses, false, system_lookup())
    }

    /// The same policy with a cookie jar of its own, for sites that grant access by cookie:
    /// Scalelite's protected recordings set one when their one-time token URL is consumed, and
    /// every file of the recording is then fetched within that session. The jar lives as long as
    /// the returned value; nothing is shared with other requests.
    pub fn session(&self) -> Outbound {
        Outbound::build(self.allow_private, true, self.lookup.clone())
    }

    fn build(allow_private: bool, cookies: bool, lookup: Lookup) -> Outbound {
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
            .dns_resolver(Arc::new(PolicyResolver {
                allow_private,
                lookup: lookup.clone(),
            }))
            .redirect(redirect)
            .cookie_store(cookies)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("openvod/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        Outbound {
            allow_private,
            lookup,
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
                lookup: self.lookup.clone(),
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
            None => (self.lookup)(host.clone())
                .await
                .map_err(|e| OutboundError::Resolve(host.clone(), e.to_string()))?,
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

    /// A name that resolves to a public address when the URL is checked and to this machine when
    /// it is fetched (DNS rebinding) reaches nothing: the fetch's own answer is checked again.
    #[tokio::test]
    async fn a_name_rebound_inward_after_the_check_reaches_nothing() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            }
        });
        let rebinding = |allow_private: bool| {
            let calls = Arc::new(AtomicUsize::new(0));
            let lookup: Lookup = Arc::new(move |_host: String| {
                let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
                Box::pin(async move {
                    Ok(vec![if first {
                        "93.184.216.34".parse().unwrap()
                    } else {
                        IpAddr::from([127, 0, 0, 1])
                    }])
                })
            });
            Outbound::build(allow_private, false, lookup)
        };
        let url = format!("http://rebind.example:{port}/x");

        let outbound = rebinding(false);
        outbound
            .check_url(&url)
            .await
            .expect("the first answer is public");
        let fetched = outbound.client().get(&url).send().await;
        let error = fetched.expect_err("the second answer is internal");
        assert!(
            format!("{error:?}").contains("PrivateAddress(\"rebind.example\")"),
            "{error:?}"
        );
        let hook = outbound.webhook_client(Duration::from_secs(5));
        assert!(hook.post(&url).send().await.is_err());
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            0,
            "nothing reached the listener"
        );

        // The same resolver with private addresses allowed does reach it: the test can fail.
        let allowing = rebinding(true);
        (allowing.lookup)("rebind.example".to_owned())
            .await
            .unwrap(); // the check's answer
        let answer = allowing.client().get(&url).send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
