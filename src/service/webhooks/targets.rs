//! Where a webhook may be sent: internal addresses are refused unless
//! allowed, both when the URL is set and at every connection (a name can
//! resolve elsewhere later).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::service::{Ctx, ServiceError};

/// Loopback, private, link-local, unspecified, multicast and other
/// non-public ranges: a webhook must not reach into the server's own network.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
                // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
                || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                    && is_internal(IpAddr::V4(std::net::Ipv4Addr::new(
                        (s[6] >> 8) as u8,
                        s[6] as u8,
                        (s[7] >> 8) as u8,
                        s[7] as u8,
                    ))))
                || (s[0] == 0x2002
                    && is_internal(IpAddr::V4(std::net::Ipv4Addr::new(
                        (s[1] >> 8) as u8,
                        s[1] as u8,
                        (s[2] >> 8) as u8,
                        s[2] as u8,
                    ))))
        }
    }
}

/// Checks a target URL: http(s), a host, and — unless the configuration allows
/// internal targets — no address in a loopback, private or link-local range.
pub fn check_target(url: &str, allow_internal: bool) -> Result<(), ServiceError> {
    let bad = |m: String| ServiceError::BadRequest(format!("webhook url {url:?}: {m}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not an absolute URL".into()))?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return Err(bad("only http and https".into())),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("needs a host and no credentials in the URL".into()));
    }
    let with_port = if authority.starts_with('[') {
        if authority.contains("]:") {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        }
    } else if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    if allow_internal {
        return Ok(());
    }
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| bad(format!("cannot resolve: {e}")))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| is_internal(a.ip())) {
        return Err(bad(
            "resolves to a loopback, private or link-local address (set webhook_allow_internal to allow)".into(),
        ));
    }
    Ok(())
}

/// Resolves like the OS, then drops internal addresses unless allowed: checked
/// at connect time, so a DNS answer that changes after validation cannot
/// point a webhook into the server's network.
struct SafeResolver {
    allow_internal: bool,
}

impl ureq::Resolver for SafeResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_internal {
            return Ok(addrs);
        }
        let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| !is_internal(a.ip())).collect();
        if public.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "webhook target resolves only to internal addresses",
            ));
        }
        Ok(public)
    }
}

/// The HTTP client for deliveries: timeouts, no redirects, safe resolution.
pub fn http_agent(ctx: &Ctx) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(ctx.config.webhook_timeout)
        .redirects(0)
        .resolver(SafeResolver {
            allow_internal: ctx.config.webhook_allow_internal,
        })
        .user_agent(concat!("forklift/", env!("CARGO_PKG_VERSION")))
        .build()
}
