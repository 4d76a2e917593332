//! Who is asking: the visitor's address and whether their browser reached us over
//! HTTPS. Behind a reverse proxy the TCP peer is the proxy, so only a proxy listed in
//! `trusted_proxies` may say who the visitor is (`X-Forwarded-For`) and how they came
//! (`X-Forwarded-Proto`); from anyone else those headers are ignored, so a visitor
//! cannot pick the address their limits are counted against, or make a cookie
//! `Secure`-less connection look secure.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};

use crate::AppState;

/// An address range of trusted proxies: `10.0.0.7`, `10.0.0.0/8`, `::1`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRange {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for ProxyRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not an address or range like 10.0.0.0/8");
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }
}

impl ProxyRange {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> Option<u128> {
            match (self.net, ip) {
                (IpAddr::V4(_), IpAddr::V4(v)) => Some(u128::from(u32::from(v)) << 96),
                (IpAddr::V6(_), IpAddr::V6(v)) => Some(u128::from(v)),
                // An IPv4 client may arrive mapped into IPv6.
                (IpAddr::V4(_), IpAddr::V6(v)) => {
                    v.to_ipv4_mapped().map(|v4| u128::from(u32::from(v4)) << 96)
                }
                (IpAddr::V6(_), IpAddr::V4(_)) => None,
            }
        };
        let (Some(net), Some(ip)) = (bits(self.net), bits(ip)) else {
            return false;
        };
        // IPv4 sits in the top 32 bits, so for both families the prefix counts from
        // the top.
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0);
        (net & mask) == (ip & mask)
    }
}

/// The visitor behind a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    /// Their address: the peer's, or what a trusted proxy says it is.
    pub ip: IpAddr,
    /// Whether their browser used HTTPS (only a trusted proxy can say so).
    pub https: bool,
}

impl Client {
    /// Works out the visitor from the TCP `peer` and the headers.
    pub fn of(peer: IpAddr, headers: &HeaderMap, trusted: &[ProxyRange]) -> Self {
        let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
        if !is_trusted(peer) {
            return Self {
                ip: peer,
                https: false,
            };
        }
        // The rightmost address no trusted proxy added is the visitor's; what stands
        // left of it the visitor may have written themselves.
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let ip = forwarded
            .iter()
            .rev()
            .find(|ip| !is_trusted(**ip))
            .copied()
            .unwrap_or(peer);
        let https = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        Self { ip, https }
    }
}

impl FromRequestParts<Arc<AppState>> for Client {
    type Rejection = StatusCode;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, StatusCode> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(Self::of(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap_or_else(|_| unreachable!()));
        }
        h
    }

    #[test]
    fn ranges_parse_and_match() {
        let r: ProxyRange = "10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!());
        assert!(r.contains("10.1.2.3".parse().unwrap_or_else(|_| unreachable!())));
        assert!(!r.contains("11.0.0.1".parse().unwrap_or_else(|_| unreachable!())));
        assert!(r.contains("::ffff:10.0.0.1".parse().unwrap_or_else(|_| unreachable!())));
        let one: ProxyRange = "::1".parse().unwrap_or_else(|_| unreachable!());
        assert!(one.contains("::1".parse().unwrap_or_else(|_| unreachable!())));
        assert!(!one.contains("127.0.0.1".parse().unwrap_or_else(|_| unreachable!())));
        let all: ProxyRange = "0.0.0.0/0".parse().unwrap_or_else(|_| unreachable!());
        assert!(all.contains("8.8.8.8".parse().unwrap_or_else(|_| unreachable!())));
        for bad in ["", "10.0.0.0/33", "proxy.internal", "10.0.0.1/x", "::/129"] {
            assert!(bad.parse::<ProxyRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_trusted_proxies_speak_for_the_visitor() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap_or_else(|_| unreachable!());
        let trusted = ["10.0.0.0/24".parse().unwrap_or_else(|_| unreachable!())];
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let via_proxy = Client::of(proxy, &h, &trusted);
        assert_eq!(
            via_proxy.ip.to_string(),
            "203.0.113.9",
            "the rightmost untrusted"
        );
        assert!(via_proxy.https);
        let direct: IpAddr = "198.51.100.7".parse().unwrap_or_else(|_| unreachable!());
        let spoofed = Client::of(direct, &h, &trusted);
        assert_eq!(spoofed.ip, direct, "a visitor cannot pick their address");
        assert!(!spoofed.https, "nor claim HTTPS");
        let chain = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.5")]);
        assert_eq!(
            Client::of(proxy, &chain, &trusted).ip.to_string(),
            "203.0.113.9",
            "proxies in the chain are skipped"
        );
        assert_eq!(Client::of(proxy, &HeaderMap::new(), &trusted).ip, proxy);
    }
}
