//! Who is asking: the visitor's address and whether their browser reached us over
//! HTTPS. Behind a reverse proxy the TCP peer is the proxy, so only a proxy listed in
//! `trusted_proxies` may say who the visitor is (`X-Forwarded-For`) and how they came
//! (`X-Forwarded-Proto`); from anyone else those headers are ignored, so a visitor
//! cannot pick the address their limits are counted against, or make a cookie
//! `Secure`-less connection look secure.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};

use crate::proxy::ProxyRange;
use crate::state::AppState;

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

impl FromRequestParts<AppState> for Client {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, StatusCode> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(Self::of(
            peer,
            &parts.headers,
            &state.shared.config.trusted_proxies,
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
