//! Trusted reverse proxies, as addresses or ranges (`10.0.0.7`, `10.0.0.0/8`, `::1`).

use std::net::IpAddr;
use std::str::FromStr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
