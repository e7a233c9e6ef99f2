//! The SSRF guard: a webhook may only reach a public address, unless an administrator
//! allow-listed its host (an intranet ERP). The host is resolved once, by the guard, and the
//! HTTP client connects to exactly the addresses the guard let through — there is no second
//! lookup a DNS rebinding could answer differently.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

/// Whether `ip` is a public unicast address: not loopback, private, link-local, CGNAT
/// (100.64/10), unique-local (fc00::/7), multicast, unspecified, documentation, benchmark,
/// broadcast or reserved, and not an IPv4 address hidden in IPv6 (mapped or compatible) that
/// would be one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let s = v6.segments();
            // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an
            // IPv4 address that decides.
            if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return !v6.is_unspecified() && !v6.is_loopback() && public_v4(v4);
            }
            if s[0] == 0x2002 {
                let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                return public_v4(v4);
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only 100::/64
        }
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240) // reserved
}

/// Host names (lower-case) an administrator allowed to resolve to non-public addresses.
#[derive(Clone, Default)]
pub struct AllowList(Arc<RwLock<HashSet<String>>>);

impl AllowList {
    pub fn set(&self, hosts: impl IntoIterator<Item = String>) {
        if let Ok(mut g) = self.0.write() {
            *g = hosts.into_iter().map(|h| h.trim().to_lowercase()).filter(|h| !h.is_empty()).collect();
        }
    }
    pub fn allows(&self, host: &str) -> bool {
        self.0.read().map(|g| g.contains(&host.trim_matches(['[', ']']).to_lowercase())).unwrap_or(false)
    }
}

/// Check a literal address in a URL (the resolver is not asked for those).
pub fn check_literal(host: &str, allow: &AllowList) -> Result<(), &'static str> {
    match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) if !is_public(ip) && !allow.allows(host) => Err("webhook.address_not_allowed"),
        _ => Ok(()),
    }
}

/// The resolver the HTTP client uses: resolves once, refuses non-public addresses unless
/// the host is allow-listed, and hands the client only the addresses it checked.
pub struct GuardedResolver {
    pub allow: AllowList,
}

#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "address not allowed: {}", self.0)
    }
}
impl std::error::Error for Refused {}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let allowed = self.allow.allows(&host);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = addrs.into_iter().filter(|a| allowed || is_public(a.ip())).collect();
            if ok.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad} must be refused");
        }
        for good in ["1.1.1.1", "8.8.8.8", "100.128.0.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(good.parse().unwrap()), "{good} is public");
        }
    }

    #[test]
    fn allow_list_names_hosts() {
        let a = AllowList::default();
        assert_eq!(check_literal("127.0.0.1", &a), Err("webhook.address_not_allowed"));
        a.set(["127.0.0.1".to_string(), " ERP.intra ".to_string()]);
        assert_eq!(check_literal("127.0.0.1", &a), Ok(()));
        assert!(a.allows("erp.intra"));
        assert_eq!(check_literal("[::1]", &a), Err("webhook.address_not_allowed"));
    }
}
