//! The guard against server-side request forgery: an outgoing call (a webhook, a chat
//! post) goes only to public addresses. Loopback, private, link-local (cloud metadata
//! at 169.254.169.254), shared, multicast and unspecified addresses are refused after
//! DNS resolution — a name resolving to 127.0.0.1 is refused like the address — unless
//! they fall in a network the operator allow-listed. The caller then connects to the
//! addresses checked here, never resolving the name again (no DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::error::{Error, Result};

/// Is this address one an outgoing call must not reach (unless allow-listed)?
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                // NAT64 64:ff9b::/96 and IPv4-compatible ::a.b.c.d carry an IPv4 address.
                || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && internal_v4(embedded_v4(&v6)))
                || (s[..6] == [0, 0, 0, 0, 0, 0] && internal_v4(embedded_v4(&v6)))
                || s[0] == 0x2001 && s[1] == 0x0db8 // documentation
        }
    }
}

fn embedded_v4(v6: &Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

/// Where outgoing calls may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// Networks allowed although internal (`127.0.0.1/32` in tests, an internal
    /// receiver's network in some deployments).
    pub allow: Vec<IpNet>,
}

impl Guard {
    /// A guard allowing these internal networks.
    pub fn allowing(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// Is this address allowed?
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allow.iter().any(|n| n.contains(&ip))
    }

    /// Resolves the host of `url` and returns its addresses, all allowed; an error
    /// naming `field` otherwise (a refused address is never worth retrying).
    pub async fn resolve(&self, url: &url::Url, field: &str) -> Result<Vec<SocketAddr>> {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| Error::invalid(field, "unresolvable", format!("{name} does not resolve: {e}")))?
                .collect(),
            None => return Err(Error::invalid(field, "invalid_value", "the URL has no host")),
        };
        if addrs.is_empty() {
            return Err(Error::invalid(field, "unresolvable", "the host has no address"));
        }
        if let Some(bad) = addrs.iter().find(|a| !self.permits(a.ip())) {
            return Err(Error::invalid(
                field,
                "forbidden_address",
                format!("{} is an internal address; outgoing calls go to public addresses only", bad.ip()),
            ));
        }
        Ok(addrs)
    }
}

/// Checks the form of an outgoing URL: `https://` (or `http://`), a host, no user
/// name or password, no fragment.
pub fn parse_url(raw: &str, field: &str) -> Result<url::Url> {
    let url =
        url::Url::parse(raw.trim()).map_err(|e| Error::invalid(field, "invalid_value", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::invalid(field, "invalid_value", "the URL must start with https:// or http://"));
    }
    if url.host().is_none() {
        return Err(Error::invalid(field, "invalid_value", "the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(field, "invalid_value", "the URL may not carry a user name or password"));
    }
    if url.fragment().is_some() {
        return Err(Error::invalid(field, "invalid_value", "the URL may not have a #fragment"));
    }
    if raw.len() > 2048 {
        return Err(Error::invalid(field, "too_long", "at most 2048 characters"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses() {
        for s in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "224.0.0.1",
        ] {
            assert!(is_internal(ip(s)), "{s}");
        }
        for s in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"] {
            assert!(!is_internal(ip(s)), "{s}");
        }
    }

    #[test]
    fn allow_list() {
        let g = Guard::allowing(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(g.permits(ip("127.0.0.1")));
        assert!(!g.permits(ip("127.0.0.2")));
        assert!(!g.permits(ip("::1")));
        assert!(g.permits(ip("8.8.8.8")));
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let g = Guard::default();
        let url = parse_url("http://localhost:9/hook", "url").unwrap();
        let err = g.resolve(&url, "url").await.unwrap_err();
        assert!(err.to_string().contains("internal address"), "{err}");
        let allowed = Guard::allowing(vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]);
        assert!(allowed.resolve(&url, "url").await.is_ok());
    }

    #[test]
    fn url_forms() {
        assert!(parse_url("ftp://x.example/", "url").is_err());
        assert!(parse_url("https://user:pw@x.example/", "url").is_err());
        assert!(parse_url("https://x.example/#a", "url").is_err());
        assert!(parse_url("https://x.example/hook?a=1", "url").is_ok());
    }
}
