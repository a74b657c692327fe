//! Who the client is. The TCP peer, unless the peer is one of the configured trusted
//! proxies (`--trusted-proxies`): then the address the proxies say they forwarded for,
//! read right to left from `Forwarded` (RFC 7239) or, without it, `X-Forwarded-For`, the
//! first hop that is not itself a trusted proxy. A client cannot pick its own address by
//! sending these headers: from an untrusted peer they are ignored.
//!
//! [`resolve`] puts the answer on each request as [`ClientIp`]; the rate limits and the
//! audit log read it there.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use crm_core::{Error, Result};
use ipnet::IpNet;

use crate::AppState;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

/// The client's address, as [`resolve`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl TrustedProxies {
    /// None: every client is its TCP peer.
    pub fn none() -> Self {
        Self::default()
    }

    /// From CIDRs (`10.0.0.0/8`) or single addresses (`127.0.0.1`, `::1`); a bad entry is
    /// an error naming `trustedProxies`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        let mut nets = Vec::new();
        for entry in entries.iter().map(|e| e.as_ref().trim()).filter(|e| !e.is_empty()) {
            let net = entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                Error::invalid(
                    "trustedProxies",
                    "invalid_format",
                    format!("{entry}: an address (10.0.0.7) or a CIDR block (10.0.0.0/8)"),
                )
            })?;
            nets.push(net);
        }
        Ok(Self(Arc::new(nets)))
    }

    /// Is this address a trusted proxy?
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request from `peer` with these headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops = forwarded_for(headers);
        for hop in hops.iter().rev() {
            // An entry that is no address ("unknown", an obfuscated name) ends what can be
            // believed: the last proxy is the client.
            let Some(ip) = hop else { break };
            client = *ip;
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

/// IPv4 addresses mapped into IPv6 (`::ffff:10.0.0.1`, a dual-stack listener) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The forwarded-for chain, client first: every `for=` of the `Forwarded` headers, or,
/// when there is none, every entry of the `X-Forwarded-For` headers. `None` marks an
/// entry that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        let mut hops = Vec::new();
        for element in forwarded.iter().flat_map(|v| v.split(',')) {
            let node = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim().trim_matches('"').to_string())
            });
            // An element without `for=` says nothing of the client.
            if let Some(node) = node {
                hops.push(node_ip(&node));
            }
        }
        return hops;
    }
    values("x-forwarded-for").iter().flat_map(|v| v.split(',')).map(|n| node_ip(n.trim())).collect()
}

/// An address with or without a port: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok()).map(canonical);
    }
    node.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// Sets [`ClientIp`] on the request, as a middleware.
pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) {
        let ip = state.trusted_proxies.client(peer, req.headers());
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap_or_else(|e| panic!("{e}"));
        let h = headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9")]);
        assert_eq!(t.client(ip("198.51.100.7"), &h), ip("198.51.100.7"));
        assert_eq!(TrustedProxies::none().client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", "::1"]).unwrap_or_else(|e| panic!("{e}"));
        // The client put a made-up address first; the proxies appended the real one.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9"), ("x-forwarded-for", "10.1.1.1")]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        assert_eq!(t.client(ip("::ffff:10.0.0.2"), &h), ip("203.0.113.9"), "IPv4-mapped peers are IPv4");
        let h = headers(&[("forwarded", "for=1.2.3.4, for=\"[2001:db8:cafe::17]:4711\";proto=https")]);
        assert_eq!(t.client(ip("::1"), &h), ip("2001:db8:cafe::17"));
        // `Forwarded` wins over `X-Forwarded-For`.
        let h = headers(&[("forwarded", "for=192.0.2.60:80"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("192.0.2.60"));
        // Every hop trusted: the farthest one.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("10.9.9.9"));
        // An entry that is no address stops the walk at the last proxy.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.1.1.1")]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(t.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
    }

    #[test]
    fn bad_entries_are_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/8", "proxy.internal"]).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.field_errors()[0].field, "trustedProxies");
        assert!(TrustedProxies::parse(&["127.0.0.1", " ::1 ", ""]).is_ok_and(|t| t.contains(ip("::1"))));
    }
}
