//! Where a webhook may be sent. A URL must be `http` or `https` with a host (checked when it is
//! saved); at delivery its host is resolved once and refused when any address is loopback,
//! private, link-local, unique-local, CGNAT, unspecified, multicast, broadcast, documentation
//! or a cloud metadata address — unless the host is in `WEBHOOK_ALLOW_HOSTS`. The connection
//! then goes to the address that was checked: nothing resolves the name a second time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::Uri;

/// A webhook URL, checked: scheme, host and port, and the path to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// The host as written (an IPv6 literal without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
    /// The `Host` header: the host, and the port when it is not the scheme's default.
    pub authority: String,
}

/// Why a URL is not accepted, or its destination refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the URL is not valid: {0}")]
    Invalid(String),
    #[error("the URL must start with http:// or https://")]
    Scheme,
    #[error("the URL must not carry credentials (user:password@)")]
    Credentials,
    #[error("{host} cannot be resolved")]
    Unresolved { host: String },
    #[error(
        "{host} resolves to {addr}, a {kind} address, which webhooks may not reach (allow the host in WEBHOOK_ALLOW_HOSTS)"
    )]
    Address {
        host: String,
        addr: IpAddr,
        kind: &'static str,
    },
}

/// Most characters of a webhook URL.
pub const MAX_URL_LEN: usize = 2048;

/// Parses and checks a webhook URL (scheme, host, no credentials).
pub fn parse(url: &str) -> Result<Target, Refused> {
    if url.len() > MAX_URL_LEN {
        return Err(Refused::Invalid(format!(
            "longer than {MAX_URL_LEN} characters"
        )));
    }
    let uri: Uri = url
        .parse()
        .map_err(|e: axum::http::uri::InvalidUri| Refused::Invalid(e.to_string()))?;
    let https = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        _ => return Err(Refused::Scheme),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| Refused::Invalid("no host".into()))?;
    if authority.as_str().contains('@') {
        return Err(Refused::Credentials);
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(Refused::Invalid("no host".into()));
    }
    let default_port = if https { 443 } else { 80 };
    let port = authority.port_u16().unwrap_or(default_port);
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    let authority = if port == default_port {
        authority.host().to_owned()
    } else {
        format!("{}:{port}", authority.host())
    };
    Ok(Target {
        https,
        host: host.to_ascii_lowercase(),
        port,
        path,
        authority,
    })
}

/// Hosts (or `host:port`) a webhook may reach whatever they resolve to (`WEBHOOK_ALLOW_HOSTS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowHosts(Vec<(String, Option<u16>)>);

impl AllowHosts {
    /// Parses a comma-separated list of `host` or `host:port` (`[v6]:port` for IPv6).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut hosts = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (host, port) = if let Some(rest) = item.strip_prefix('[') {
                let (host, after) = rest
                    .split_once(']')
                    .ok_or_else(|| format!("{item:?}: unclosed ["))?;
                let port = match after.strip_prefix(':') {
                    Some(p) => Some(p.parse().map_err(|_| format!("{item:?}: bad port"))?),
                    None if after.is_empty() => None,
                    None => return Err(format!("{item:?}: unexpected text after ]")),
                };
                (host.to_owned(), port)
            } else if item.matches(':').count() == 1 {
                let (host, port) = item.split_once(':').unwrap_or((item, ""));
                (
                    host.to_owned(),
                    Some(port.parse().map_err(|_| format!("{item:?}: bad port"))?),
                )
            } else {
                (item.to_owned(), None)
            };
            if host.is_empty() || host.contains('/') || host.contains('@') {
                return Err(format!("{item:?} is not a host"));
            }
            hosts.push((host.to_ascii_lowercase(), port));
        }
        Ok(Self(hosts))
    }

    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.0
            .iter()
            .any(|(h, p)| h == host && p.is_none_or(|p| p == port))
    }
}

/// Why `ip` may not be reached, if it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("cloud metadata")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("documentation")
            } else if seg[0] == 0x64 && seg[1] == 0xff9b {
                // NAT64: the IPv4 address it embeds decides.
                let [a, b] = seg[6].to_be_bytes();
                let [c, d] = seg[7].to_be_bytes();
                forbidden_v4(Ipv4Addr::new(a, b, c, d))
            } else if seg[0] == 0
                && seg[1] == 0
                && seg[2] == 0
                && seg[3] == 0
                && seg[4] == 0
                && seg[5] == 0
            {
                // IPv4-compatible (deprecated) ::a.b.c.d
                Some("reserved")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254)
        || ip == Ipv4Addr::new(100, 100, 100, 200)
        || ip == Ipv4Addr::new(192, 0, 0, 192)
    {
        Some("cloud metadata")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("CGNAT")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if a == 198 && (b & 0xfe) == 18 {
        Some("benchmarking")
    } else if a == 192 && b == 0 && c == 0 {
        Some("reserved")
    } else {
        None
    }
}

/// Resolves the target's host once and returns the address to connect to: the first, after
/// refusing the host when any of its addresses is forbidden (a name that resolves to a public
/// and a private address is refused: which one a client picks is not ours to guess). An
/// allowed host is not checked.
pub async fn resolve(target: &Target, allow: &AllowHosts) -> Result<SocketAddr, Refused> {
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|_| Refused::Unresolved {
                host: target.host.clone(),
            })?
            .collect(),
    };
    let first = *addrs.first().ok_or_else(|| Refused::Unresolved {
        host: target.host.clone(),
    })?;
    if allow.allows(&target.host, target.port) {
        return Ok(first);
    }
    for addr in &addrs {
        if let Some(kind) = forbidden(addr.ip()) {
            return Err(Refused::Address {
                host: target.host.clone(),
                addr: addr.ip(),
                kind,
            });
        }
    }
    Ok(first)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_host_and_no_credentials() {
        let t = parse("https://hooks.example.com/a/b?x=1").unwrap();
        assert!(t.https);
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.path.as_str(),
                t.authority.as_str()
            ),
            ("hooks.example.com", 443, "/a/b?x=1", "hooks.example.com")
        );
        let t = parse("http://[::1]:8080").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8080, "/")
        );
        assert_eq!(t.authority, "[::1]:8080");
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://x",
            "javascript:alert(1)",
            "example.com/hook",
            "",
            "http://",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("ftp://example.com/"), Err(Refused::Scheme));
        assert_eq!(
            parse("https://user:pw@example.com/"),
            Err(Refused::Credentials)
        );
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("::1", "loopback"),
            ("169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ] {
            assert_eq!(forbidden(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "100.128.0.1",
            "8.8.8.8",
            "2606:4700::1111",
            "172.32.0.1",
        ] {
            assert_eq!(forbidden(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn resolution_refuses_internal_hosts_unless_allowed() {
        let none = AllowHosts::default();
        let loopback = parse("http://127.0.0.1:9/hook").unwrap();
        assert!(matches!(
            resolve(&loopback, &none).await,
            Err(Refused::Address {
                kind: "loopback",
                ..
            })
        ));
        let localhost = parse("http://localhost:9/hook").unwrap();
        assert!(matches!(
            resolve(&localhost, &none).await,
            Err(Refused::Address { .. }) | Err(Refused::Unresolved { .. })
        ));
        let metadata = parse("http://169.254.169.254/latest/meta-data/").unwrap();
        let err = resolve(&metadata, &none).await.unwrap_err();
        assert!(err.to_string().contains("cloud metadata"), "{err}");
        let private = parse("http://10.0.0.5/").unwrap();
        assert!(resolve(&private, &none).await.is_err());

        let allow = AllowHosts::parse("127.0.0.1:9, example.internal").unwrap();
        assert_eq!(
            resolve(&loopback, &allow).await.unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        // Another port of an allowed host:port is not allowed.
        let other_port = parse("http://127.0.0.1:10/").unwrap();
        assert!(resolve(&other_port, &allow).await.is_err());
        // The metadata address stays refused when another host is allowed.
        assert!(resolve(&metadata, &allow).await.is_err());
    }

    #[test]
    fn allow_list_parses_hosts_and_ports() {
        let allow = AllowHosts::parse(" a.example ,127.0.0.1:8080,[::1]:9000,[fe80::1]").unwrap();
        assert!(allow.allows("a.example", 1));
        assert!(allow.allows("127.0.0.1", 8080));
        assert!(!allow.allows("127.0.0.1", 8081));
        assert!(allow.allows("::1", 9000));
        assert!(allow.allows("fe80::1", 443));
        assert!(AllowHosts::parse("").unwrap().0.is_empty());
        for bad in ["a:b", "http://x/", "[::1", "u@h"] {
            assert!(AllowHosts::parse(bad).is_err(), "{bad}");
        }
    }
}
