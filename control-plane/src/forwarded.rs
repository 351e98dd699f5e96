//! Which address a request comes from: the TCP peer, or — when the peer is one of the reverse
//! proxies named by `TRUSTED_PROXIES` — the client those proxies vouch for in
//! `X-Forwarded-For`.
//!
//! Each proxy appends the address it received the request from, so the header reads
//! `client, proxy1, proxy2` and only the right-hand entries were written by proxies we trust;
//! anything to their left may have been sent by the client itself. The client address is
//! therefore the right-most entry that is not a trusted proxy, found by walking from the right
//! (the peer first): a forged left-most entry never wins. An entry that does not parse where
//! the walk needs it, or a header that is not text, makes the whole header worthless and the
//! peer is used instead.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// The header proxies append the client's address to.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// An IPv4 or IPv6 network: `10.0.0.0/8`, `fd00::/8`, or one address (`192.0.2.1` = `/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a `TRUSTED_PROXIES` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IP address or CIDR (such as 10.0.0.0/8 or fd00::/8)")]
    Syntax(String),
    #[error("prefix length /{prefix} is longer than {max} bits")]
    Prefix { prefix: u8, max: u8 },
    #[error("{given} has bits set past its prefix; the network is {network}")]
    HostBits { given: String, network: Cidr },
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn width(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// The mask of the top `prefix` bits of a `width`-bit address.
fn mask(prefix: u8, width: u8) -> u128 {
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    match u32::from(width - prefix) {
        0 => all,
        shift if shift >= 128 => 0,
        shift => all & !((1u128 << shift) - 1),
    }
}

impl Cidr {
    /// Whether `addr` is in this network. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`)
    /// count as the IPv4 address they carry.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        addr.is_ipv4() == self.network.is_ipv4()
            && bits(addr) & mask(self.prefix, width(addr)) == bits(self.network)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let syntax = || CidrError::Syntax(text.to_owned());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| syntax())?;
        let network = network.to_canonical();
        let max = width(network);
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                let prefix: u8 = p.parse().map_err(|_| syntax())?;
                if prefix > max {
                    return Err(CidrError::Prefix { prefix, max });
                }
                prefix
            }
            Some(_) => return Err(syntax()),
        };
        let masked = bits(network) & mask(prefix, max);
        if masked != bits(network) {
            let network = match network {
                IpAddr::V4(_) => {
                    IpAddr::from(u32::try_from(masked).unwrap_or_default().to_be_bytes())
                }
                IpAddr::V6(_) => IpAddr::from(masked.to_be_bytes()),
            };
            return Err(CidrError::HostBits {
                given: text.to_owned(),
                network: Self { network, prefix },
            });
        }
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed. Empty (the default): the header is
/// ignored and the client address is always the TCP peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(networks: Vec<Cidr>) -> Self {
        Self(networks)
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(addr))
    }

    /// The client's address for a request whose TCP peer is `peer`.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // Several header lines are one list, in order (RFC 9110, section 5.3).
        let mut lines = Vec::new();
        for value in headers.get_all(X_FORWARDED_FOR) {
            match value.to_str() {
                Ok(line) => lines.push(line),
                Err(_) => return peer,
            }
        }
        let mut client = peer;
        for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let Some(addr) = parse_entry(entry) else {
                return peer;
            };
            client = addr;
            if !self.trusts(addr) {
                return addr;
            }
        }
        // Every entry is a trusted proxy: the left-most is the closest thing to a client.
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) as some proxies write it.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(addr.to_canonical());
    }
    entry
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

impl TrustedProxies {
    /// `TRUSTED_PROXIES`: comma-separated networks; blank entries (and an empty value) add
    /// nothing.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        text.split(',')
            .filter(|entry| !entry.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, network) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{network}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|c| c.parse().unwrap()).collect())
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_networks_and_single_addresses() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.255.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6");
        assert!(
            !c.contains(ip("::a00:1")),
            "an IPv6 address is not in an IPv4 network"
        );
        let one: Cidr = " 192.0.2.7 ".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")) && !all.contains(ip("::1")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")));
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
    }

    #[test]
    fn refuses_bad_entries_with_a_reason() {
        for bad in [
            "",
            "proxy.internal",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0/8",
            "10.0.0.0/+8",
        ] {
            assert!(
                matches!(bad.parse::<Cidr>(), Err(CidrError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::Prefix {
                prefix: 33,
                max: 32
            })
        );
        assert!(matches!(
            "::/129".parse::<Cidr>(),
            Err(CidrError::Prefix { max: 128, .. })
        ));
        let err = "10.1.2.3/8".parse::<Cidr>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "10.1.2.3/8 has bits set past its prefix; the network is 10.0.0.0/8"
        );
    }

    #[test]
    fn parses_the_setting() {
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        let list = TrustedProxies::parse(" 10.0.0.0/8, fd00::/8 ,,192.0.2.1").unwrap();
        assert_eq!(list.to_string(), "10.0.0.0/8,fd00::/8,192.0.2.1/32");
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8,bogus"),
            Err(CidrError::Syntax("bogus".into()))
        );
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_address(ip("203.0.113.9"), &xff(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
        let t = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            t.client_address(ip("203.0.113.9"), &xff(&["198.51.100.1"])),
            ip("203.0.113.9"),
            "an untrusted peer cannot name another client"
        );
        assert_eq!(
            t.client_address(ip("10.0.0.2"), &xff(&["198.51.100.1"])),
            ip("198.51.100.1")
        );
        assert_eq!(
            t.client_address(ip("::ffff:10.0.0.2"), &xff(&["198.51.100.1"])),
            ip("198.51.100.1"),
            "a dual-stack listener's mapped peer is still the proxy"
        );
        assert_eq!(
            t.client_address(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2"),
            "no header: the peer"
        );
    }

    #[test]
    fn the_right_most_untrusted_entry_wins_over_a_forged_left_most() {
        let t = trusted(&["10.0.0.0/8", "fd00::/8"]);
        // The client sent "1.1.1.1"; the proxy appended the address it saw.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), &xff(&["1.1.1.1, 198.51.100.1"])),
            ip("198.51.100.1")
        );
        // Two proxies in a row: the inner one is skipped.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), &xff(&["1.1.1.1, 198.51.100.1, fd00::5"])),
            ip("198.51.100.1")
        );
        // Several header lines are one list.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), &xff(&["1.1.1.1", "198.51.100.1, 10.9.9.9"])),
            ip("198.51.100.1")
        );
        // With ports, and IPv6 in brackets.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), &xff(&["198.51.100.1:4711"])),
            ip("198.51.100.1")
        );
        assert_eq!(
            t.client_address(ip("10.0.0.2"), &xff(&["[2001:db8::1]:4711"])),
            ip("2001:db8::1")
        );
        // Only proxies: the left-most of them.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), &xff(&["10.0.0.7, 10.0.0.8"])),
            ip("10.0.0.7")
        );
    }

    #[test]
    fn a_malformed_header_falls_back_to_the_peer() {
        let t = trusted(&["10.0.0.0/8"]);
        for bad in [
            "not-an-address",
            "198.51.100.1, nonsense",
            "198.51.100.1 198.51.100.2",
        ] {
            assert_eq!(
                t.client_address(ip("10.0.0.2"), &xff(&[bad])),
                ip("10.0.0.2"),
                "{bad:?}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(t.client_address(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // Garbage left of the client the proxy vouches for is the client's own doing: ignored.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), &xff(&["garbage, 198.51.100.1"])),
            ip("198.51.100.1")
        );
    }
}
