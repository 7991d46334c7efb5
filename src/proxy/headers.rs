//! What is removed from requests and responses on the way through, and why (SPEC §3).
//!
//! Requests keep every header and every repeated value, in order, except:
//! - hop-by-hop headers (RFC 9110 §7.6.1): `Connection` and the headers it names,
//!   `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, and `Upgrade`
//!   outside an upgrade; `Expect` too, since kubeplex itself answers `100-continue`;
//! - `Cookie`: portal cookies are never a cluster's business;
//! - the cluster headers (`Backstage-Kubernetes-Cluster`, `X-Kubernetes-Cluster`) and every
//!   `Backstage-Kubernetes-Authorization*` header: they are addressed to kubeplex;
//! - `X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-*`: front-proxy identity headers a
//!   caller must never be able to forge;
//! - `Host` (the upstream's is used), `Content-Length` (set from the streamed body) and
//!   `Authorization` (decided by [`crate::upstream::credential`]);
//! - `Impersonate-*` unless the upstream credential is the caller's own;
//! - for a plugin's Service (SPEC §7), also `Origin` and `X-CSRFToken`, as the OpenShift
//!   console removes them.
//!
//! Client addresses (SPEC §11): when the peer is in `kubeplex.server.trustedProxies`, the
//! peer address is appended to the caller's `X-Forwarded-For` and `X-Real-Ip` / `Forwarded`
//! pass; otherwise all three are dropped and `X-Forwarded-For` is the peer address alone,
//! so a caller cannot forge the API server's audit `sourceIPs`. Responses lose the
//! hop-by-hop headers, the framing headers, which the server sets for the streamed body, the
//! headers kubeplex sets itself (`X-Request-Id`, `Kubeplex-Cluster`) and what the route's
//! own rule drops (the plugin proxy's, SPEC §7). The direct path hands an HTTP/1.x client
//! the kept lines as they are ([`raw_response_headers`]), with no header map entry each.

use crate::status::{Error, Reason};
use crate::upstream::HeaderSink;
use actix_http::RawHeaders;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// How to filter a request's headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFilter {
    /// Keep `Impersonate-*` (the credential is the caller's own).
    pub keep_impersonate: bool,
    /// Keep `Upgrade` (a WebSocket tunnel); the tunnel sets `Connection: Upgrade` itself.
    pub keep_upgrade: bool,
    /// A plugin's Service is the upstream (SPEC §7): the browser's `Origin` and
    /// `X-CSRFToken` are removed too, as the OpenShift console removes them (a Service may
    /// refuse a request with an `Origin` as CORS).
    pub plugin: bool,
    /// The client's address: the whole `X-Forwarded-For`, or appended to it when trusted.
    pub peer: Option<IpAddr>,
    /// The peer is a trusted proxy (`trustedProxies`): keep the caller's `X-Forwarded-For`
    /// (the peer appended), `X-Real-Ip` and `Forwarded`.
    pub peer_trusted: bool,
    /// `maxHeaderBytes`: the sum of names and values may not exceed this.
    pub max_header_bytes: usize,
}

/// Whether a (lowercase) name is a hop-by-hop header (RFC 9110 §7.6.1). By length first:
/// most names are none of these, and most lengths none of theirs.
fn is_hop_by_hop(name: &[u8]) -> bool {
    match name.len() {
        2 => name == b"te",
        7 => name == b"trailer" || name == b"upgrade",
        10 => name == b"connection" || name == b"keep-alive",
        16 => name == b"proxy-connection",
        17 => name == b"transfer-encoding",
        _ => false,
    }
}

/// Whether a (lowercase) request header name is one kubeplex removes or replaces itself,
/// regardless of the credential.
fn is_removed_request_header(name: &str, f: &RequestFilter) -> bool {
    match name {
        "host"
        | "content-length"
        | "authorization"
        | "cookie"
        | "x-forwarded-for"
        | "backstage-kubernetes-cluster"
        | "x-kubernetes-cluster"
        | "x-remote-user"
        | "x-remote-group" => true,
        "upgrade" => !f.keep_upgrade,
        "origin" | "x-csrftoken" => f.plugin,
        _ if is_hop_by_hop(name.as_bytes()) => true,
        _ => {
            name.starts_with("backstage-kubernetes-authorization")
                || name.starts_with("x-remote-extra-")
                || (!f.keep_impersonate && name.starts_with("impersonate-"))
        }
    }
}

/// The header names the `Connection` values list, beyond the usual `keep-alive` and
/// `close` (most messages list none, and then no header needs checking against them).
fn connection_names<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<&'a [u8]> {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case(b"keep-alive")
                && !t.eq_ignore_ascii_case(b"close")
        })
        .collect()
}

/// Whether `name` is one of the `names` a `Connection` header listed.
fn named_by_connection(names: &[&[u8]], name: &[u8]) -> bool {
    names.iter().any(|t| t.eq_ignore_ascii_case(name))
}

/// Appends `ip` as text: IPv4 digit by digit (`Ipv4Addr`'s `Display` goes through the
/// formatting machinery, which showed in profiles), IPv6 by `Display`.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Whether `peer` is in one of the `trustedProxies` networks (an IPv4-mapped IPv6 peer is
/// taken as its IPv4 address).
pub(crate) fn is_trusted(peer: Option<IpAddr>, trusted: &[ipnet::IpNet]) -> bool {
    match peer {
        Some(ip) if !trusted.is_empty() => {
            let ip = ip.to_canonical();
            trusted.iter().any(|net| net.contains(&ip))
        }
        _ => false,
    }
}

/// Copies the request headers to be forwarded from `src` (actix's `http` 0.2 types) into
/// `dst` (hyper's map, or the direct path's request head), in one pass (SPEC §3), and sets
/// the client address headers (SPEC §11, see the module doc). Fails with a 431 `Status`
/// when the headers exceed `maxHeaderBytes`.
pub(crate) fn copy_request_headers(
    src: &HeaderMap,
    dst: &mut dyn HeaderSink,
    f: &RequestFilter,
) -> Result<(), Error> {
    let connection = connection_names(
        src.get_all(actix_web::http::header::CONNECTION)
            .map(|v| v.as_bytes()),
    );
    let mut total = 0usize;
    let mut xff: Option<String> = None;
    for (name, value) in src.iter() {
        let n = name.as_str();
        total += n.len() + value.len() + 4;
        if n == "x-forwarded-for" {
            if !f.peer_trusted {
                continue;
            }
            let v = value.to_str().map_err(|_| {
                Error::bad_request("the X-Forwarded-For header is not visible ASCII")
            })?;
            match &mut xff {
                Some(s) => {
                    s.push_str(", ");
                    s.push_str(v);
                }
                None => xff = Some(v.to_owned()),
            }
            continue;
        }
        if n == "x-real-ip" || n == "forwarded" {
            if !f.peer_trusted {
                continue;
            }
        } else if is_removed_request_header(n, f) {
            continue;
        }
        if named_by_connection(&connection, n.as_bytes()) {
            continue;
        }
        dst.put(n, value.as_bytes(), value.is_sensitive());
    }
    if total > f.max_header_bytes {
        return Err(Error::new(
            Reason::RequestHeaderFieldsTooLarge,
            format!(
                "the request headers ({total} bytes) exceed maxHeaderBytes ({})",
                f.max_header_bytes
            ),
        ));
    }
    let xff = match (xff, f.peer) {
        (Some(mut s), Some(peer)) => {
            s.push_str(", ");
            push_ip(&mut s, peer);
            Some(s)
        }
        (None, Some(peer)) => {
            let mut s = String::with_capacity(15);
            push_ip(&mut s, peer);
            Some(s)
        }
        (s, None) => s,
    };
    if let Some(s) = xff {
        dst.put("x-forwarded-for", s.as_bytes(), false);
    }
    Ok(())
}

/// A route's own rule for an upstream answer's headers, beyond [`copy_response_headers`]'
/// (the plugin proxy removes CORS and `Server` headers, SPEC §7): whether to drop a
/// (lowercase) name.
pub(crate) type ResponseRule = fn(&[u8]) -> bool;

/// No rule of a route's own: the proxy routes.
pub(crate) fn keep_all(_: &[u8]) -> bool {
    false
}

/// Copies an upstream response's headers for the client, in one pass from whichever map
/// holds them (hyper's for forwarded responses, actix's for tunnels); `src` yields the
/// `(name, value)` pairs (names in lowercase), once for the `Connection` values and once
/// to copy: everything, repeated values kept, except hop-by-hop headers (and those
/// `Connection` names), the framing headers `Content-Length` / `Transfer-Encoding`, which
/// the server sets for the streamed body, the headers kubeplex sets itself (`X-Request-Id`,
/// `Kubeplex-Cluster`) and what the route's `rule` drops.
pub(crate) fn copy_response_headers<'a, I>(
    src: impl Fn() -> I,
    dst: &mut HeaderMap,
    rule: ResponseRule,
) where
    I: Iterator<Item = (&'a [u8], &'a [u8])>,
{
    copy_response_headers_with(src, dst, rule, |v| HeaderValue::from_bytes(v).ok());
}

/// [`copy_response_headers`], each kept value made by `value` (the direct HTTP/1.1 path
/// shares the bytes of the response head instead of copying them).
pub(crate) fn copy_response_headers_with<'a, I>(
    src: impl Fn() -> I,
    dst: &mut HeaderMap,
    rule: ResponseRule,
    value: impl Fn(&'a [u8]) -> Option<HeaderValue>,
) where
    I: Iterator<Item = (&'a [u8], &'a [u8])>,
{
    for (n, v) in relayed(src, rule) {
        // Every source hands names in lowercase (hyper's and actix's maps, the direct path's
        // parser): no case mapping needed.
        if let (Ok(n), Some(v)) = (HeaderName::from_lowercase(n), value(v)) {
            dst.append(n, v);
        }
    }
}

/// [`copy_response_headers`] as header lines for an HTTP/1.x client, written as they are
/// after the response's own headers (no header map entry for each): what the direct path
/// relays (its answer's head was parsed and checked by `httparse`, names in lowercase).
///
/// `src` yields each header able to give its whole line as it arrived
/// ([`crate::upstream::h1::HeadLine`]): such a line is copied whole, one copy instead of
/// four.
pub(crate) fn raw_response_headers<'a, F, I>(src: impl Fn() -> I, rule: ResponseRule) -> RawHeaders
where
    F: Field<'a>,
    I: Iterator<Item = F>,
{
    // Enough unless the cluster padded its lines; then the buffer grows.
    let size = src().map(|f| f.name().len() + f.value().len() + 4).sum();
    let mut out = bytes::BytesMut::with_capacity(size);
    let mut has_date = false;
    for f in relayed(src, rule) {
        let n = f.name();
        has_date |= n == b"date";
        match f.line() {
            Some(line) => out.extend_from_slice(line),
            None => {
                out.extend_from_slice(n);
                out.extend_from_slice(b": ");
                out.extend_from_slice(f.value());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    RawHeaders::new(out.freeze(), has_date)
}

/// A response header as a source yields it: its lowercase name and value, and the whole
/// line it came in when the source has it.
pub(crate) trait Field<'a>: Copy {
    fn name(self) -> &'a [u8];
    fn value(self) -> &'a [u8];
    /// The line, `\r\n` included, when it can be relayed as it is; `None`: it is written
    /// from name and value.
    fn line(self) -> Option<&'a [u8]> {
        None
    }
}

impl<'a> Field<'a> for (&'a [u8], &'a [u8]) {
    fn name(self) -> &'a [u8] {
        self.0
    }
    fn value(self) -> &'a [u8] {
        self.1
    }
}

impl<'a> Field<'a> for crate::upstream::h1::HeadLine<'a> {
    fn name(self) -> &'a [u8] {
        crate::upstream::h1::HeadLine::name(self)
    }
    fn value(self) -> &'a [u8] {
        crate::upstream::h1::HeadLine::value(self)
    }
    fn line(self) -> Option<&'a [u8]> {
        crate::upstream::h1::HeadLine::line(self)
    }
}

#[cfg(test)]
impl<'a> Field<'a> for (&'a [u8], &'a [u8], Option<&'a [u8]>) {
    fn name(self) -> &'a [u8] {
        self.0
    }
    fn value(self) -> &'a [u8] {
        self.1
    }
    fn line(self) -> Option<&'a [u8]> {
        self.2
    }
}

/// The answer's headers that reach the client, in order (the rule of
/// [`copy_response_headers`]); `src` is read twice: for the `Connection` names, then to
/// filter.
fn relayed<'a, F: Field<'a>, I: Iterator<Item = F>, S: Fn() -> I>(
    src: S,
    rule: ResponseRule,
) -> impl Iterator<Item = F> + use<'a, F, I, S> {
    let named = connection_names(
        src()
            .filter(|f| f.name() == b"connection")
            .map(|f| f.value()),
    );
    src().filter(move |f| is_relayed_response_header(f.name(), &named, rule))
}

/// Whether an answer's header `name` (lowercase) reaches the client: see
/// [`copy_response_headers`]; `named` are the `Connection` header's names.
fn is_relayed_response_header(name: &[u8], named: &[&[u8]], rule: ResponseRule) -> bool {
    !(is_hop_by_hop(name)
        || name == b"content-length"
        || name == b"x-request-id"
        || name == b"kubeplex-cluster"
        || named_by_connection(named, name)
        || rule(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn request_filter() {
        let src = map(&[
            ("accept", "a"),
            ("accept", "b"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "s"),
            ("cookie", "c"),
            ("backstage-kubernetes-cluster", "prod"),
            ("x-kubernetes-cluster", "prod"),
            ("backstage-kubernetes-authorization-google", "t"),
            ("x-remote-user", "root"),
            ("x-remote-extra-scopes", "x"),
            ("impersonate-user", "admin"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-real-ip", "10.0.0.2"),
            ("forwarded", "for=10.0.0.3"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
        ]);
        let mut dst = http1::HeaderMap::new();
        let f = RequestFilter {
            keep_impersonate: false,
            keep_upgrade: false,
            plugin: false,
            peer: Some("127.0.0.1".parse().unwrap()),
            peer_trusted: false,
            max_header_bytes: 65536,
        };
        copy_request_headers(&src, &mut dst, &f).unwrap();
        let names: Vec<_> = dst.keys().map(|k| k.as_str().to_owned()).collect();
        assert!(names.contains(&"accept".to_owned()));
        assert_eq!(dst.get_all("accept").iter().count(), 2);
        assert_eq!(dst.get("x-forwarded-for").unwrap(), "127.0.0.1");
        assert_eq!(dst.len(), 3, "{names:?}");
        let trusted = RequestFilter {
            peer_trusted: true,
            ..f
        };
        let mut dst = http1::HeaderMap::new();
        copy_request_headers(&src, &mut dst, &trusted).unwrap();
        assert_eq!(dst.get("x-forwarded-for").unwrap(), "10.0.0.1, 127.0.0.1");
        assert_eq!(dst.get("x-real-ip").unwrap(), "10.0.0.2");
        assert_eq!(dst.get("forwarded").unwrap(), "for=10.0.0.3");
        assert_eq!(dst.len(), 5);
        let f = RequestFilter {
            keep_impersonate: true,
            ..f
        };
        let mut dst = http1::HeaderMap::new();
        copy_request_headers(&src, &mut dst, &f).unwrap();
        assert_eq!(dst.get("impersonate-user").unwrap(), "admin");
        let f = RequestFilter {
            max_header_bytes: 10,
            ..f
        };
        let e = copy_request_headers(&src, &mut http1::HeaderMap::new(), &f).unwrap_err();
        assert_eq!(e.reason, Reason::RequestHeaderFieldsTooLarge);
        assert_eq!(e.reason.code().as_u16(), 431);
    }

    #[test]
    fn plugin_filter_removes_the_browsers_headers_too() {
        let src = map(&[
            ("origin", "https://portal.example.com"),
            ("x-csrftoken", "t"),
            ("accept", "a"),
        ]);
        let f = RequestFilter {
            keep_impersonate: false,
            keep_upgrade: false,
            plugin: false,
            peer: None,
            peer_trusted: false,
            max_header_bytes: 65536,
        };
        let mut dst = http1::HeaderMap::new();
        copy_request_headers(&src, &mut dst, &f).unwrap();
        assert_eq!(dst.len(), 3);
        let mut dst = http1::HeaderMap::new();
        copy_request_headers(&src, &mut dst, &RequestFilter { plugin: true, ..f }).unwrap();
        assert_eq!(
            dst.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["accept"]
        );
    }

    #[test]
    fn trusted_peers() {
        let nets: Vec<ipnet::IpNet> =
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(is_trusted(ip("10.1.2.3"), &nets));
        assert!(is_trusted(ip("::ffff:10.1.2.3"), &nets));
        assert!(is_trusted(ip("::1"), &nets));
        assert!(!is_trusted(ip("127.0.0.1"), &nets));
        assert!(!is_trusted(ip("11.0.0.1"), &nets));
        assert!(!is_trusted(None, &nets));
        assert!(!is_trusted(ip("10.1.2.3"), &[]));
    }

    #[test]
    fn ip_text_is_display() {
        for ip in [
            "0.0.0.0",
            "10.0.0.1",
            "127.0.0.1",
            "192.168.100.255",
            "255.9.99.100",
            "::1",
            "fe80::1:2",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut s = String::from("x");
            push_ip(&mut s, ip);
            assert_eq!(s, format!("x{ip}"));
        }
    }

    #[test]
    fn response_filter() {
        let src = map(&[
            ("warning", "299 - \"a\""),
            ("warning", "299 - \"b\""),
            ("transfer-encoding", "chunked"),
            ("content-length", "5"),
            ("connection", "close, x-hop"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("upgrade", "h2c"),
            ("x-hop", "1"),
            ("x-request-id", "from-the-cluster"),
            ("kubeplex-cluster", "forged"),
            ("server", "nginx"),
            ("date", "Mon, 30 Nov 2026 10:00:00 GMT"),
            ("content-type", "application/json"),
        ]);
        let pairs = || {
            src.iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
        };
        let plugin = |n: &[u8]| n == b"server";
        for (rule, kept) in [(keep_all as ResponseRule, 5), (plugin, 4)] {
            let mut dst = HeaderMap::new();
            copy_response_headers(pairs, &mut dst, rule);
            assert_eq!(dst.get_all("warning").count(), 2);
            assert_eq!(dst.len(), kept, "{dst:?}");
            for gone in [
                "x-hop",
                "x-request-id",
                "kubeplex-cluster",
                "content-length",
                "transfer-encoding",
                "connection",
                "keep-alive",
                "proxy-connection",
                "te",
                "trailer",
                "upgrade",
            ] {
                assert!(!dst.contains_key(gone), "{gone}");
            }
            // The lines for an HTTP/1.x client carry the same headers, in order.
            let raw = raw_response_headers(pairs, rule);
            assert!(raw.has_date());
            let lines: Vec<(String, String)> = raw
                .lines()
                .map(|(n, v)| {
                    (
                        String::from_utf8(n.to_vec()).unwrap(),
                        String::from_utf8(v.to_vec()).unwrap(),
                    )
                })
                .collect();
            let mut want: Vec<(String, String)> = Vec::new();
            for (n, v) in pairs() {
                if dst.contains_key(std::str::from_utf8(n).unwrap()) {
                    want.push((
                        String::from_utf8(n.to_vec()).unwrap(),
                        String::from_utf8(v.to_vec()).unwrap(),
                    ));
                }
            }
            assert_eq!(lines, want);
            let crlf = raw.as_bytes().windows(2).filter(|w| w == b"\r\n").count();
            assert!(raw.as_bytes().ends_with(b"\r\n") && crlf == lines.len());
        }
    }

    #[test]
    fn whole_lines_are_relayed_as_they_came() {
        type Line<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);
        let src: [Line; 4] = [
            (b"server", b"nginx", Some(b"server:   nginx \r\n")),
            (
                b"connection",
                b"keep-alive",
                Some(b"connection: keep-alive\r\n"),
            ),
            (b"x-bare", b"a", None),
            (b"date", b"d", Some(b"date:d\r\n")),
        ];
        let raw = raw_response_headers(|| src.iter().copied(), keep_all);
        assert_eq!(
            raw.as_bytes(),
            b"server:   nginx \r\nx-bare: a\r\ndate:d\r\n"
        );
        assert!(raw.has_date());
    }
}
