//! The Service `proxy` subresource: `{name}`, `{name}:{port}` and
//! `{scheme}:{name}:{port}` forms, every method, with or without `/{path}`, forwarded to
//! the backend URL in the Service's `sim.kubeplex.io/backend` annotation and streamed both
//! ways. The `{path}` is percent-decoded as kube-apiserver decodes it (`hello%2Fworld`
//! reaches the backend as `/hello/world`); the query string passes through unchanged. No backend (or an unknown port) is a 503 Status, as a real server answers when a
//! Service has no endpoints.
//!
//! The backend's host is resolved once, before any connection, and admitted only if every
//! address it resolves to is in the cluster's `backends` allow-list (a 403 Status
//! otherwise); the connection then goes to a checked address (the first that answers), so
//! a second resolution (DNS rebinding) cannot swap it.

use super::authorize;
use crate::sim::errors::SimError;
use crate::sim::model::IntOrString;
use crate::sim::state::SimState;
use crate::sim::store::{Kind, Object};
use actix_web::body::{BodyStream, SizedStream};
use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};
use ipnet::IpNet;
use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The annotation naming a Service's backend URL.
pub(super) const BACKEND_ANNOTATION: &str = "sim.kubeplex.io/backend";

/// The per-worker HTTP client used to reach backends.
pub(crate) struct ProxyClient(pub awc::Client);

impl ProxyClient {
    /// A client without timeouts, redirects or decompression and with no pool limit.
    pub(crate) fn new() -> ProxyClient {
        let connector = awc::Connector::new().limit(0);
        ProxyClient(
            awc::Client::builder()
                .connector(connector)
                .disable_timeout()
                .disable_redirects()
                .no_default_headers()
                .finish(),
        )
    }
}

impl Default for ProxyClient {
    fn default() -> Self {
        ProxyClient::new()
    }
}

const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

fn hop(name: &HeaderName) -> bool {
    HOP.contains(&name.as_str())
}

/// Splits `scheme:name:port`, `name:port` or `name`.
fn parse_target(s: &str) -> (Option<&str>, &str, Option<&str>) {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [name] => (None, name, None),
        [name, port] => (None, name, Some(*port).filter(|p| !p.is_empty())),
        [scheme, name, port] => (
            Some(*scheme).filter(|s| !s.is_empty()),
            name,
            Some(*port).filter(|p| !p.is_empty()),
        ),
        _ => (None, s, None),
    }
}

/// Whether `ip` is in one of `backends` (an IPv4-mapped IPv6 address also as IPv4).
fn admitted(backends: &[IpNet], ip: IpAddr) -> bool {
    backends
        .iter()
        .any(|n| n.contains(&ip) || n.contains(&ip.to_canonical()))
}

/// The backend URL of the annotation, without userinfo, query or fragment, and the address
/// to connect to: its host resolved once, admitted only if every address is in `backends`.
/// Messages never show the annotation's userinfo or query.
async fn admit(backends: &[IpNet], annotation: &str) -> Result<(url::Url, SocketAddr), SimError> {
    let not_url = || {
        SimError::unavailable(format!(
            "the {BACKEND_ANNOTATION} annotation is not an http or https URL"
        ))
    };
    let mut url = url::Url::parse(annotation).map_err(|_| not_url())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(not_url());
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    let port = url.port_or_known_default().ok_or_else(not_url)?;
    let (shown, addrs): (String, Vec<IpAddr>) = match url.host().ok_or_else(not_url)? {
        url::Host::Ipv4(ip) => (String::new(), vec![IpAddr::V4(ip)]),
        url::Host::Ipv6(ip) => (String::new(), vec![IpAddr::V6(ip)]),
        url::Host::Domain(host) => {
            let found = tokio::net::lookup_host((host, port)).await.map_err(|e| {
                SimError::unavailable(format!(
                    "error trying to reach service: dial tcp: lookup {host}: {e}"
                ))
            })?;
            let mut addrs: Vec<IpAddr> = found.map(|a| a.ip()).collect();
            addrs.dedup();
            if addrs.is_empty() {
                return Err(SimError::unavailable(format!(
                    "error trying to reach service: dial tcp: lookup {host}: no addresses"
                )));
            }
            (format!("{host}:{port} "), addrs)
        }
    };
    if let Some(refused) = addrs.iter().find(|ip| !admitted(backends, **ip)) {
        let addr = SocketAddr::new(*refused, port);
        let what = if shown.is_empty() {
            addr.to_string()
        } else {
            format!("{shown}({addr})")
        };
        return Err(SimError::new(
            403,
            "Forbidden",
            format!(
                "service backend {what} is not in this simulated cluster's backends allow-list"
            ),
        ));
    }
    let addrs: Vec<SocketAddr> = addrs
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    Ok((url, first_reachable(&addrs).await))
}

/// Of a name's (checked) addresses, the first that accepts a TCP connection, as a client
/// dialing a name tries each in turn (`localhost` is often `::1` first while the backend
/// listens on `127.0.0.1` only). A single address is taken as it is; when none answers,
/// the first, whose connection error the caller then reports.
async fn first_reachable(addrs: &[SocketAddr]) -> SocketAddr {
    if addrs.len() > 1 {
        for addr in addrs {
            let probe = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(3), probe).await {
                return *addr;
            }
        }
    }
    addrs[0]
}

/// What Go's `url.URL.EscapedPath` leaves unescaped in a path: letters, digits,
/// `-_.~` and `$&+,/:;=@`. Everything else (space, `?`, `#`, `%`, non-ASCII) is `%XX`.
const GO_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b',')
    .remove(b'/')
    .remove(b':')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');

/// The path sent to the backend for the `{path}` after `/proxy/` (`raw`, as the client
/// sent it), built as kube-apiserver builds it:
///
/// - the server routes on the *decoded* URL path, so the `path` proxy option is decoded:
///   `hello%2Fworld` is `hello/world`, `a%20b` is `a b`; an escape that is not `%XX` is a
///   400 (Go's HTTP server refuses such a request line, with a plain-text 400);
/// - `location.Path = net.JoinPreservingTrailingSlash(location.Path, "/" + path)`: cleaned
///   as `path.Join` does (no empty, `.` or `..` segments, so nothing climbs above the
///   backend's own path), a trailing slash kept;
/// - the request to the backend writes that path escaped as `url.URL.EscapedPath` does
///   (a decoded `/` stays a separator; a space goes out as `%20`).
///
/// An empty `raw` gives `/` (kube-apiserver answers a GET or HEAD of `.../proxy`, with no
/// slash, with a 301 to `.../proxy/`; the simulator forwards it as `/` at once).
fn backend_path(raw: &str) -> Result<String, SimError> {
    let bytes = raw.as_bytes();
    for (i, _) in raw.match_indices('%') {
        let escape = &bytes[i..bytes.len().min(i + 3)];
        if escape.len() < 3 || !escape[1..].iter().all(u8::is_ascii_hexdigit) {
            return Err(SimError::bad_request(format!(
                "invalid URL escape {:?}",
                String::from_utf8_lossy(escape)
            )));
        }
    }
    let decoded: Vec<u8> = percent_decode(bytes).collect();
    let mut kept: Vec<&[u8]> = Vec::new();
    for segment in decoded.split(|b| *b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let mut path = Vec::with_capacity(decoded.len() + 1);
    for segment in &kept {
        path.push(b'/');
        path.extend_from_slice(segment);
    }
    if kept.is_empty() || decoded.ends_with(b"/") {
        path.push(b'/');
    }
    Ok(percent_encode(&path, GO_PATH).to_string())
}

/// Forwards a proxy request.
pub(super) async fn forward(
    state: web::Data<SimState>,
    client: web::Data<ProxyClient>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, SimError> {
    // The remainder of the path after `/proxy`, as sent (still percent-encoded); a bad
    // escape is refused first, as Go's HTTP server refuses the request line.
    let segments: Vec<&str> = req.uri().path().splitn(9, '/').collect();
    let tail = backend_path(if segments.len() == 9 { segments[8] } else { "" })?;
    let ns = req.match_info().get("ns").unwrap_or("").to_string();
    let target = req.match_info().get("name").unwrap_or("").to_string();
    let (_scheme, name, port) = parse_target(&target);
    authorize(
        &state,
        &req,
        "proxy",
        Kind::Service,
        Some("proxy"),
        Some(&ns),
        Some(name),
    )?;
    let (snap, _) = state.store.snapshot();
    let stored = snap
        .get(Kind::Service, &ns, name)
        .ok_or_else(|| SimError::not_found("services", name))?;
    let Object::Service(svc) = &stored.object else {
        return Err(SimError::internal("stored object is not a Service"));
    };
    if let Some(port) = port {
        let known = svc.spec.ports().iter().any(|p| {
            p.name.as_deref() == Some(port)
                || p.port.map(|n| n.to_string()).as_deref() == Some(port)
                || matches!(&p.target_port, Some(IntOrString::Str(s)) if s == port)
        });
        if !known {
            return Err(SimError::unavailable(format!(
                "no service port {port:?} found for service {name:?}"
            )));
        }
    }
    let backend = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BACKEND_ANNOTATION))
        .cloned()
        .ok_or_else(|| {
            SimError::unavailable(format!("no endpoints available for service {target:?}"))
        })?;
    let (backend, addr) = admit(&state.backends, &backend).await?;
    let mut url = backend.as_str().trim_end_matches('/').to_string();
    url.push_str(&tail);
    // The query string passes through unchanged (`loc.RawQuery = req.URL.RawQuery`).
    if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    // To the checked address, whatever the host resolves to now.
    let mut out = client
        .0
        .request(req.method().clone(), &url)
        .address(addr)
        .no_decompress();
    for (k, v) in req.headers().iter() {
        if hop(k) || k == header::AUTHORIZATION {
            continue;
        }
        out.headers_mut().append(k.clone(), v.clone());
    }
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let sent = match (length, chunked) {
        (Some(n), _) if n > 0 => out.send_body(SizedStream::new(n, payload)).await,
        (_, true) => out.send_stream(payload).await,
        _ => out.send().await,
    };
    let resp =
        sent.map_err(|e| SimError::unavailable(format!("error trying to reach service: {e}")))?;
    let mut builder = HttpResponse::build(resp.status());
    for (k, v) in resp.headers().iter() {
        if hop(k) || k == header::CONTENT_LENGTH {
            continue;
        }
        builder.append_header((k.clone(), v.clone()));
    }
    let resp_len = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if req.method() == actix_web::http::Method::HEAD {
        if let Some(n) = resp_len {
            builder.insert_header((header::CONTENT_LENGTH, n));
        }
        return Ok(builder.finish());
    }
    Ok(match resp_len {
        Some(n) => builder.body(SizedStream::new(n, resp)),
        None => builder.body(BodyStream::new(resp)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("web"), (None, "web", None));
        assert_eq!(parse_target("web:http"), (None, "web", Some("http")));
        assert_eq!(
            parse_target("https:web:443"),
            (Some("https"), "web", Some("443"))
        );
        assert_eq!(parse_target("web:"), (None, "web", None));
    }

    #[tokio::test]
    async fn a_name_connects_to_the_first_address_that_answers() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = live.local_addr().unwrap();
        assert_eq!(first_reachable(&[dead, live]).await, live);
        assert_eq!(first_reachable(&[dead]).await, dead);
    }

    #[test]
    fn mapped_addresses_count_as_ipv4() {
        let loopback: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(admitted(&loopback, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!admitted(&loopback, "::ffff:10.0.0.1".parse().unwrap()));
        assert!(!admitted(&loopback, "::1".parse().unwrap()));
    }

    #[test]
    fn the_path_is_decoded_cleaned_and_escaped_as_kube_apiserver_does() {
        for (raw, sent) in [
            ("", "/"),
            ("hello/world", "/hello/world"),
            // The Python client's escaped separator is a separator.
            ("hello%2Fworld", "/hello/world"),
            ("hello%2fworld%2F", "/hello/world/"),
            // Decoded, then escaped again for the wire as Go writes a path.
            ("a%20b", "/a%20b"),
            ("a b", "/a%20b"),
            ("caf%C3%A9", "/caf%C3%A9"),
            ("%3Fq%23f", "/%3Fq%23f"),
            ("100%25", "/100%25"),
            ("k=v;x@h:1+$,&", "/k=v;x@h:1+$,&"),
            ("%41%7e", "/A~"),
            // `path.Join`: no empty, `.` or `..` segments; a trailing slash kept.
            ("a//b/./c/", "/a/b/c/"),
            ("a/../../b", "/b"),
            ("..%2F..%2Fetc", "/etc"),
            ("a/..", "/"),
            ("./", "/"),
        ] {
            assert_eq!(backend_path(raw).unwrap(), sent, "{raw:?}");
        }
        for (raw, shown) in [("a%zz", "%zz"), ("a%2", "%2"), ("%", "%")] {
            let err = backend_path(raw).unwrap_err();
            assert_eq!(err.code, 400);
            assert_eq!(err.message, format!("invalid URL escape {shown:?}"));
        }
    }
}
