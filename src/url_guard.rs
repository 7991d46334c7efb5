//! The guard on catalog-provided cluster URLs (SPEC §4 `catalog`, §11): Backstage's
//! protection against a catalog entry that points kubeplex at a private address.
//!
//! Three parts:
//!
//! - `AllowPattern`: one `dangerouslyAllowClusterUrls` entry, parsed into an optional
//!   scheme, a host pattern and an optional port, and matched against those parts of the
//!   *parsed* URL only (never its path, query, fragment or userinfo). In a host pattern `*`
//!   stands for exactly one DNS label (`*.corp.example.com` matches `a.corp.example.com`,
//!   not `a.b.corp.example.com` nor `corp.example.com`) or one IPv4 octet (`10.0.0.*`).
//!   Backstage's plain host patterns (`127.0.0.1`, `*.example.com`, `::1`) are the same
//!   thing without a scheme. A pattern without a port matches any port.
//! - `non_public`: whether an address is anything but globally reachable, from a table of
//!   every entry of the IANA IPv4 and IPv6 Special-Purpose Address Registries, plus
//!   multicast; IPv4-mapped, IPv4-compatible, NAT64 (`64:ff9b::/96`) and 6to4 addresses are
//!   judged by the IPv4 address they embed.
//! - `check_cluster_url` at each catalog refresh (scheme, credentials, literal or
//!   resolved address), and [`ConnectGuard`] in the connector at each connection: DNS is
//!   resolved again when kubeplex connects, so the address actually connected to is checked
//!   too (a DNS answer that changed since the refresh, "DNS rebinding", is refused).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// One `dangerouslyAllowClusterUrls` pattern: `[scheme://]host[:port][/]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowPattern {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// DNS labels, lower case, left to right; `None` is `*` (exactly one label).
    Dns(Vec<Option<String>>),
    /// IPv4 octets; `None` is `*` (any one octet).
    V4([Option<u8>; 4]),
    /// One IPv6 address.
    V6(Ipv6Addr),
}

impl AllowPattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        let p = raw.trim().to_ascii_lowercase();
        let (scheme, rest) = match p.split_once("://") {
            Some((s, rest)) => {
                if s.is_empty()
                    || !s
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                {
                    return Err(format!("{raw:?}: not a URL scheme: {s:?}"));
                }
                (Some(s.to_string()), rest)
            }
            None => (None, p.as_str()),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !matches!(tail, "" | "/" | "/*") {
            return Err(format!(
                "{raw:?}: a pattern matches scheme, host and port only; remove {tail:?}"
            ));
        }
        if authority.contains('@') {
            return Err(format!("{raw:?}: a pattern cannot hold credentials"));
        }
        if authority.is_empty() {
            return Err(format!("{raw:?}: no host"));
        }
        // A bare IPv6 address (Backstage style: `::1`).
        if scheme.is_none() {
            if let Ok(ip) = authority.parse::<Ipv6Addr>() {
                return Ok(AllowPattern {
                    scheme,
                    host: HostPattern::V6(ip),
                    port: None,
                });
            }
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let (ip, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("{raw:?}: unclosed '['"))?;
            let ip: Ipv6Addr = ip
                .parse()
                .map_err(|_| format!("{raw:?}: not an IPv6 address: {ip:?}"))?;
            let port =
                match after {
                    "" => None,
                    p => Some(p.strip_prefix(':').ok_or_else(|| {
                        format!("{raw:?}: unexpected {p:?} after the IPv6 address")
                    })?),
                };
            (HostPattern::V6(ip), port)
        } else {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            (host_pattern(raw, host)?, port)
        };
        let port = match port {
            None | Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("{raw:?}: not a port: {p:?}"))?,
            ),
        };
        Ok(AllowPattern { scheme, host, port })
    }

    /// Whether the URL's scheme, host and port match (nothing else of the URL is looked at).
    pub(crate) fn matches(&self, url: &url::Url) -> bool {
        if let Some(s) = &self.scheme {
            if url.scheme() != s {
                return false;
            }
        }
        if let Some(p) = self.port {
            if url.port_or_known_default() != Some(p) {
                return false;
            }
        }
        match (&self.host, url.host()) {
            (HostPattern::Dns(labels), Some(url::Host::Domain(d))) => {
                let d = d.to_ascii_lowercase();
                let got: Vec<&str> = d.strip_suffix('.').unwrap_or(&d).split('.').collect();
                got.len() == labels.len()
                    && labels
                        .iter()
                        .zip(&got)
                        .all(|(want, got)| want.as_deref().is_none_or(|w| w == *got))
            }
            (HostPattern::V4(octets), Some(url::Host::Ipv4(ip))) => octets
                .iter()
                .zip(ip.octets())
                .all(|(want, got)| want.is_none_or(|w| w == got)),
            (HostPattern::V6(want), Some(url::Host::Ipv6(ip))) => *want == ip,
            _ => false,
        }
    }
}

fn host_pattern(raw: &str, host: &str) -> Result<HostPattern, String> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Err(format!("{raw:?}: empty label in host {host:?}"));
    }
    let octet_like =
        |l: &&str| *l == "*" || (!l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    if labels.len() == 4 && labels.iter().all(octet_like) {
        let mut octets = [None; 4];
        for (o, l) in octets.iter_mut().zip(&labels) {
            if *l != "*" {
                *o = Some(
                    l.parse::<u8>()
                        .map_err(|_| format!("{raw:?}: not an IPv4 octet: {l:?}"))?,
                );
            }
        }
        return Ok(HostPattern::V4(octets));
    }
    let mut out = Vec::with_capacity(labels.len());
    for l in labels {
        if l == "*" {
            out.push(None);
        } else if l.contains('*') {
            return Err(format!(
                "{raw:?}: '*' stands for a whole label (as in *.example.com), not part of {l:?}"
            ));
        } else if l
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            out.push(Some(l.to_string()));
        } else {
            return Err(format!("{raw:?}: not a host name label: {l:?}"));
        }
    }
    Ok(HostPattern::Dns(out))
}

/// Whether any `dangerouslyAllowClusterUrls` pattern admits the URL. A pattern that does
/// not parse admits nothing (the configuration refuses such patterns).
pub(crate) fn allowed(url: &url::Url, patterns: &[String]) -> bool {
    patterns
        .iter()
        .filter_map(|p| AllowPattern::parse(p).ok())
        .any(|p| p.matches(url))
}

/// Backstage's guard for a catalog-provided cluster URL at refresh time: http(s) only, no
/// credentials; unless a pattern admits the URL, https only and no non-public address,
/// literal or any of those DNS gives for the host.
pub(crate) async fn check_cluster_url(raw: &str, allow: &[String]) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|_| "not a valid URL".to_string())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the cluster URL must not contain credentials".into());
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the cluster URL must use https".into());
    }
    let host = url.host().ok_or("the cluster URL has no host")?;
    if allowed(&url, allow) {
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err(format!(
            "the cluster URL must use https (host {host} is not in dangerouslyAllowClusterUrls)"
        ));
    }
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = literal {
        if non_public(ip) {
            return Err(format!(
                "the cluster URL uses the non-public address {ip} (not in dangerouslyAllowClusterUrls)"
            ));
        }
        return Ok(url);
    }
    let d = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = tokio::net::lookup_host((d, port))
        .await
        .map_err(|e| format!("cannot resolve {d}: {e}"))?;
    for a in addrs {
        if non_public(a.ip()) {
            return Err(format!(
                "the cluster host {d} resolves to the non-public address {} \
                 (not in dangerouslyAllowClusterUrls)",
                a.ip()
            ));
        }
    }
    Ok(url)
}

/// The guard a catalog cluster carries into its connector: the locator's allow patterns.
/// Unless they admit the cluster URL, every connection whose peer address is
/// `non_public` is refused with [`NotPublic`] before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectGuard {
    patterns: Vec<AllowPattern>,
}

impl ConnectGuard {
    /// A guard admitting what these `dangerouslyAllowClusterUrls` patterns admit (patterns
    /// that do not parse are left out: they admit nothing).
    pub fn new(patterns: &[String]) -> Self {
        ConnectGuard {
            patterns: patterns
                .iter()
                .filter_map(|p| AllowPattern::parse(p).ok())
                .collect(),
        }
    }

    /// Whether the patterns admit this cluster URL (then any address is accepted).
    pub(crate) fn admits_url(&self, url: &url::Url) -> bool {
        self.patterns.iter().any(|p| p.matches(url))
    }

    /// Checks the address a connection to `url` reached.
    pub fn check(&self, url: &url::Url, peer: IpAddr) -> Result<(), NotPublic> {
        if non_public(peer) && !self.admits_url(url) {
            return Err(NotPublic { addr: peer });
        }
        Ok(())
    }
}

/// A connection refused by a [`ConnectGuard`]; carried in the connector's I/O error so the
/// 502 message names it (see `crate::tls::describe`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "kubeplex refused the connection: address {addr} is not public \
     (DNS answer changed since the catalog refresh?)"
)]
pub struct NotPublic {
    /// The peer address the connection reached.
    pub addr: IpAddr,
}

/// How an entry of the special-purpose tables decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// "Globally Reachable: True".
    Global,
    /// Anything else ("False", "N/A"), and multicast.
    NotGlobal,
    /// An IPv6 form embedding an IPv4 address at this bit offset: judged by that address.
    EmbedsV4At(u8),
}

use Reach::{EmbedsV4At, Global, NotGlobal};

/// The IANA IPv4 Special-Purpose Address Registry
/// (<https://www.iana.org/assignments/iana-ipv4-special-registry/>), every entry, plus
/// multicast. The longest matching prefix decides; an address in none is public.
const V4_TABLE: &[(&str, Reach)] = &[
    ("0.0.0.0/8", NotGlobal),          // "This network", RFC 791 §3.2
    ("0.0.0.0/32", NotGlobal),         // "This host on this network", RFC 1122 §3.2.1.3
    ("10.0.0.0/8", NotGlobal),         // Private-Use, RFC 1918
    ("100.64.0.0/10", NotGlobal),      // Shared Address Space, RFC 6598
    ("127.0.0.0/8", NotGlobal),        // Loopback, RFC 1122 §3.2.1.3
    ("169.254.0.0/16", NotGlobal),     // Link Local, RFC 3927
    ("172.16.0.0/12", NotGlobal),      // Private-Use, RFC 1918
    ("192.0.0.0/24", NotGlobal),       // IETF Protocol Assignments, RFC 6890 §2.1
    ("192.0.0.0/29", NotGlobal),       // IPv4 Service Continuity Prefix, RFC 7335
    ("192.0.0.8/32", NotGlobal),       // IPv4 dummy address, RFC 7600
    ("192.0.0.9/32", Global),          // Port Control Protocol Anycast, RFC 7723
    ("192.0.0.10/32", Global),         // Traversal Using Relays around NAT Anycast, RFC 8155
    ("192.0.0.170/32", NotGlobal),     // NAT64/DNS64 Discovery, RFC 8880, RFC 7050 §2.2
    ("192.0.0.171/32", NotGlobal),     // NAT64/DNS64 Discovery, RFC 8880, RFC 7050 §2.2
    ("192.0.2.0/24", NotGlobal),       // Documentation (TEST-NET-1), RFC 5737
    ("192.31.196.0/24", Global),       // AS112-v4, RFC 7535
    ("192.52.193.0/24", Global),       // AMT, RFC 7450
    ("192.88.99.0/24", NotGlobal),     // Deprecated (6to4 Relay Anycast), RFC 7526
    ("192.88.99.2/32", Global),        // 6a44-relay anycast address, RFC 6751
    ("192.168.0.0/16", NotGlobal),     // Private-Use, RFC 1918
    ("192.175.48.0/24", Global),       // Direct Delegation AS112 Service, RFC 7534
    ("198.18.0.0/15", NotGlobal),      // Benchmarking, RFC 2544
    ("198.51.100.0/24", NotGlobal),    // Documentation (TEST-NET-2), RFC 5737
    ("203.0.113.0/24", NotGlobal),     // Documentation (TEST-NET-3), RFC 5737
    ("224.0.0.0/4", NotGlobal),        // Multicast, RFC 5771 (not in the registry)
    ("240.0.0.0/4", NotGlobal),        // Reserved, RFC 1112 §4
    ("255.255.255.255/32", NotGlobal), // Limited Broadcast, RFC 8190, RFC 919 §7
];

/// The IANA IPv6 Special-Purpose Address Registry
/// (<https://www.iana.org/assignments/iana-ipv6-special-registry/>), every entry, plus
/// multicast, the deprecated site-local and IPv4-compatible forms, and everything outside
/// the Global Unicast space `2000::/3` (IANA IPv6 Address Space registry). The longest
/// matching prefix decides.
const V6_TABLE: &[(&str, Reach)] = &[
    ("::/0", NotGlobal), // outside 2000::/3: not allocated for global unicast, RFC 4291 §2.4
    ("2000::/3", Global), // Global Unicast, RFC 4291 §2.4
    ("::/128", NotGlobal), // Unspecified Address, RFC 4291
    ("::1/128", NotGlobal), // Loopback Address, RFC 4291
    ("::/96", EmbedsV4At(96)), // IPv4-compatible (deprecated), RFC 4291 §2.5.5.1
    ("::ffff:0:0/96", EmbedsV4At(96)), // IPv4-mapped Address, RFC 4291
    ("64:ff9b::/96", EmbedsV4At(96)), // IPv4-IPv6 Translation (NAT64), RFC 6052
    ("64:ff9b:1::/48", NotGlobal), // IPv4-IPv6 Translation, local use, RFC 8215
    ("100::/64", NotGlobal), // Discard-Only Address Block, RFC 6666
    ("100:0:0:1::/64", NotGlobal), // Dummy IPv6 Prefix, RFC 9780
    ("2001::/23", NotGlobal), // IETF Protocol Assignments, RFC 2928
    ("2001::/32", NotGlobal), // TEREDO, RFC 4380, RFC 8190
    ("2001:1::1/128", Global), // Port Control Protocol Anycast, RFC 7723
    ("2001:1::2/128", Global), // Traversal Using Relays around NAT Anycast, RFC 8155
    ("2001:1::3/128", Global), // DNS-SD Service Registration Protocol Anycast, RFC 9665
    ("2001:2::/48", NotGlobal), // Benchmarking, RFC 5180, RFC Errata 1752
    ("2001:3::/32", Global), // AMT, RFC 7450
    ("2001:4:112::/48", Global), // AS112-v6, RFC 7535
    ("2001:10::/28", NotGlobal), // Deprecated (previously ORCHID), RFC 4843
    ("2001:20::/28", Global), // ORCHIDv2, RFC 7343
    ("2001:30::/28", Global), // Drone Remote ID Protocol Entity Tags (DETs) Prefix, RFC 9374
    ("2001:db8::/32", NotGlobal), // Documentation, RFC 3849
    ("2002::/16", EmbedsV4At(16)), // 6to4, RFC 3056
    ("2620:4f:8000::/48", Global), // Direct Delegation AS112 Service, RFC 7534
    ("3fff::/20", NotGlobal), // Documentation, RFC 9637
    ("5f00::/16", NotGlobal), // Segment Routing (SRv6) SIDs, RFC 9602
    ("fc00::/7", NotGlobal), // Unique-Local, RFC 4193, RFC 8190
    ("fe80::/10", NotGlobal), // Link-Local Unicast, RFC 4291
    ("fec0::/10", NotGlobal), // Site-Local (deprecated), RFC 3879 (not in the registry)
    ("ff00::/8", NotGlobal), // Multicast, RFC 4291 §2.7 (not in the registry)
];

/// The parsed tables: IPv4, IPv6.
type Tables = (Vec<(Ipv4Net, Reach)>, Vec<(Ipv6Net, Reach)>);

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let parse = |s: &str| s.parse::<IpNet>().expect("special-purpose table entry");
        let v4 = V4_TABLE
            .iter()
            .map(|(s, r)| match parse(s) {
                IpNet::V4(n) => (n, *r),
                IpNet::V6(_) => panic!("IPv6 entry {s} in the IPv4 table"),
            })
            .collect();
        let v6 = V6_TABLE
            .iter()
            .map(|(s, r)| match parse(s) {
                IpNet::V6(n) => (n, *r),
                IpNet::V4(_) => panic!("IPv4 entry {s} in the IPv6 table"),
            })
            .collect();
        (v4, v6)
    })
}

/// Whether an address is anything but globally reachable unicast: in an IANA
/// special-purpose block whose "Globally Reachable" is not True (loopback, private,
/// shared, link-local, documentation, benchmarking, reserved, unspecified, broadcast,
/// unique-local, discard, Teredo, ...), multicast, outside IPv6 global unicast, or an
/// IPv4-mapped / IPv4-compatible / NAT64 / 6to4 form of such an IPv4 address.
pub(crate) fn non_public(ip: IpAddr) -> bool {
    let (v4, v6) = tables();
    match ip {
        IpAddr::V4(a) => {
            let best = v4
                .iter()
                .filter(|(n, _)| n.contains(&a))
                .max_by_key(|(n, _)| n.prefix_len());
            !matches!(best, None | Some((_, Global)))
        }
        IpAddr::V6(a) => {
            let best = v6
                .iter()
                .filter(|(n, _)| n.contains(&a))
                .max_by_key(|(n, _)| n.prefix_len())
                .map(|(_, r)| *r);
            match best {
                Some(Global) => false,
                Some(EmbedsV4At(offset)) => {
                    let bits = u128::from(a);
                    let embedded = (bits >> (96 - u32::from(offset))) as u32;
                    non_public(IpAddr::V4(Ipv4Addr::from(embedded)))
                }
                Some(NotGlobal) | None => true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    fn p(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plain_host_patterns() {
        assert!(allowed(&u("http://127.0.0.1:6443"), &p(&["127.0.0.1"])));
        assert!(allowed(&u("https://[::1]:6443"), &p(&["::1"])));
        assert!(allowed(&u("https://[::1]:6443"), &p(&["[::1]"])));
        assert!(allowed(&u("https://[::1]:6443"), &p(&["[::1]:6443"])));
        assert!(!allowed(&u("https://[::1]:6444"), &p(&["[::1]:6443"])));
        assert!(allowed(&u("https://a.example.com"), &p(&["*.example.com"])));
        assert!(allowed(
            &u("https://A.Example.COM."),
            &p(&["*.example.com"])
        ));
        assert!(allowed(&u("https://localhost:1"), &p(&["LocalHost"])));
        // `*` is exactly one label.
        assert!(!allowed(
            &u("https://a.b.example.com"),
            &p(&["*.example.com"])
        ));
        assert!(!allowed(&u("https://example.com"), &p(&["*.example.com"])));
        assert!(!allowed(
            &u("https://badexample.com"),
            &p(&["*.example.com"])
        ));
        assert!(allowed(
            &u("https://api.eu.example.com"),
            &p(&["api.*.example.com"])
        ));
        assert!(!allowed(&u("https://127.0.0.1"), &[]));
        // A name pattern never matches an address, nor an address pattern a name.
        assert!(!allowed(&u("https://10.0.0.1"), &p(&["*.*.*.example"])));
        assert!(!allowed(&u("https://a.b.c.d"), &p(&["*.*.*.*"])));
    }

    #[test]
    fn url_patterns_match_scheme_host_and_port_only() {
        let pat = p(&["https://*.corp.example.com"]);
        assert!(allowed(&u("https://a.corp.example.com"), &pat));
        assert!(allowed(&u("https://a.corp.example.com:6443/x?y#z"), &pat));
        assert!(!allowed(&u("http://a.corp.example.com"), &pat));
        assert!(!allowed(&u("https://a.b.corp.example.com"), &pat));
        assert!(!allowed(&u("https://corp.example.com"), &pat));
        // The bypass: the pattern's text in the fragment, path, query or userinfo.
        for bypass in [
            "https://10.1.2.3/#.corp.example.com",
            "https://10.1.2.3/.corp.example.com",
            "https://10.1.2.3/?.corp.example.com",
            "https://good.corp.example.com@10.1.2.3/",
            "https://x:y@10.1.2.3/a.corp.example.com",
            "https://evil.example/a.corp.example.com",
        ] {
            assert!(!allowed(&u(bypass), &pat), "{bypass}");
        }
        let ip = p(&["https://10.0.0.*:6443"]);
        assert!(allowed(&u("https://10.0.0.7:6443/"), &ip));
        assert!(allowed(&u("https://10.0.0.7:6443/api?x=1"), &ip));
        assert!(!allowed(&u("https://10.0.1.7:6443/"), &ip));
        assert!(!allowed(&u("https://10.0.0.7:6444/"), &ip));
        assert!(!allowed(&u("https://10.0.0.7/"), &ip));
        assert!(!allowed(&u("http://10.0.0.7:6443/"), &ip));
        // Default ports count.
        assert!(allowed(
            &u("https://h.example"),
            &p(&["https://h.example:443/"])
        ));
        assert!(allowed(
            &u("http://h.example:8080"),
            &p(&["http://h.example:*/*"])
        ));
        assert!(allowed(
            &u("https://[fd00::1]:6443"),
            &p(&["https://[fd00::1]:6443"])
        ));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for (pat, why) in [
            (
                "https://*.corp.example.com/#x",
                "scheme, host and port only",
            ),
            ("https://h.example/api", "scheme, host and port only"),
            ("https://u@h.example", "credentials"),
            ("https://a*.example.com", "whole label"),
            ("10.0.0.300", "IPv4 octet"),
            ("h.example:http", "not a port"),
            ("https://", "no host"),
            ("a..b", "empty label"),
            ("[::1", "unclosed"),
            ("h ost", "not a host name label"),
        ] {
            let e = AllowPattern::parse(pat).unwrap_err();
            assert!(e.contains(why), "{pat}: {e}");
        }
    }

    #[test]
    fn non_public_ipv4() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.0.8",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "93.184.216.34",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.0.9",
            "192.0.0.10",
            "192.31.196.1",
            "192.52.193.1",
            "192.88.99.2",
            "192.175.48.1",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn non_public_ipv6() {
        for ip in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::8.8.8.8",
            "2002:0a00:0001::1",
            "2002:7f00:0001::",
            "100::1",
            "100:0:0:1::1",
            "2001::1",
            "2001:0:4136:e378::1",
            "2001:2::1",
            "2001:10::1",
            "2001:db8::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "4000::1",
            "1::1",
        ] {
            assert!(non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
            "2001:1::1",
            "2001:1::2",
            "2001:1::3",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:30::1",
            "2620:4f:8000::1",
        ] {
            assert!(!non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn connect_guard() {
        let g = ConnectGuard::new(&p(&["*.corp.example.com", "https://10.0.0.*:6443"]));
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let outside = u("https://evil.example:6443");
        assert_eq!(
            g.check(&outside, local),
            Err(NotPublic { addr: local }),
            "a name outside the patterns reaching loopback"
        );
        assert!(g.check(&outside, public).is_ok());
        assert!(g.check(&u("https://a.corp.example.com"), local).is_ok());
        assert!(g
            .check(&u("https://10.0.0.5:6443"), "10.0.0.5".parse().unwrap())
            .is_ok());
        let msg = NotPublic {
            addr: "10.1.2.3".parse().unwrap(),
        }
        .to_string();
        assert_eq!(
            msg,
            "kubeplex refused the connection: address 10.1.2.3 is not public \
             (DNS answer changed since the catalog refresh?)"
        );
    }

    #[actix_web::test]
    async fn guard_refuses_unsafe_urls() {
        let none: Vec<String> = Vec::new();
        for (url, why) in [
            ("http://93.184.216.34", "https"),
            ("https://user:pw@93.184.216.34", "credentials"),
            ("https://127.0.0.1:6443", "non-public"),
            ("https://[::1]:6443", "non-public"),
            ("https://[::ffff:10.0.0.1]:6443", "non-public"),
            ("https://169.254.169.254", "non-public"),
            ("https://localhost:6443", "resolves to the non-public"),
            ("ftp://93.184.216.34", "https"),
            ("not a url", "not a valid URL"),
        ] {
            let e = check_cluster_url(url, &none).await.unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        assert!(check_cluster_url("https://93.184.216.34:6443", &none)
            .await
            .is_ok());
        let allow = p(&["localhost"]);
        assert!(check_cluster_url("http://localhost:6443", &allow)
            .await
            .is_ok());
        // Credentials stay refused even for allowed hosts.
        assert!(check_cluster_url("https://a:b@localhost", &allow)
            .await
            .is_err());
        // The fragment bypass: refused as the non-public address it is.
        let e = check_cluster_url(
            "https://10.1.2.3/#.corp.example.com",
            &p(&["https://*.corp.example.com"]),
        )
        .await
        .unwrap_err();
        assert!(e.contains("non-public address 10.1.2.3"), "{e}");
    }
}
