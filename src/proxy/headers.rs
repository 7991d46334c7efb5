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
//! - `Impersonate-*` unless the upstream credential is the caller's own.
//!
//! `X-Forwarded-For` gets the peer address appended. Responses lose only the hop-by-hop
//! headers and the framing headers, which the server sets for the streamed body.

use crate::status::Error;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// How to filter a request's headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFilter {
    /// Keep `Impersonate-*` (the credential is the caller's own).
    pub keep_impersonate: bool,
    /// Keep `Upgrade` (a WebSocket tunnel); the tunnel sets `Connection: Upgrade` itself.
    pub keep_upgrade: bool,
    /// The client's address, appended to `X-Forwarded-For`.
    pub peer: Option<IpAddr>,
    /// `maxHeaderBytes`: the sum of names and values may not exceed this.
    pub max_header_bytes: usize,
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Whether a (lowercase) request header name is one kubeplex removes or replaces itself,
/// regardless of the credential.
fn is_removed_request_header(name: &str, f: &RequestFilter) -> bool {
    match name {
        "host"
        | "content-length"
        | "authorization"
        | "cookie"
        | "expect"
        | "x-forwarded-for"
        | "backstage-kubernetes-cluster"
        | "x-kubernetes-cluster"
        | "x-remote-user"
        | "x-remote-group" => true,
        "upgrade" => !f.keep_upgrade,
        _ if is_hop_by_hop(name) => true,
        _ => {
            name.starts_with("backstage-kubernetes-authorization")
                || name.starts_with("x-remote-extra-")
                || (!f.keep_impersonate && name.starts_with("impersonate-"))
        }
    }
}

/// Whether `name` is listed in one of the `Connection` header values.
fn named_by_connection(connection: &[&HeaderValue], name: &str) -> bool {
    connection.iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(name))
    })
}

/// Copies the request headers to be forwarded from `src` into `dst` (SPEC §3), appending
/// the peer to `X-Forwarded-For`. Fails with 400 when the headers exceed `maxHeaderBytes`.
pub(crate) fn copy_request_headers(
    src: &HeaderMap,
    dst: &mut HeaderMap,
    f: &RequestFilter,
) -> Result<(), Error> {
    let connection: Vec<&HeaderValue> = src.get_all("connection").collect();
    let mut total = 0usize;
    let mut xff: Option<String> = None;
    for (name, value) in src.iter() {
        let n = name.as_str();
        total += n.len() + value.len() + 4;
        if n == "x-forwarded-for" {
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
        if is_removed_request_header(n, f) {
            continue;
        }
        if !connection.is_empty() && named_by_connection(&connection, n) {
            continue;
        }
        dst.append(name.clone(), value.clone());
    }
    if total > f.max_header_bytes {
        return Err(Error::bad_request(format!(
            "the request headers ({total} bytes) exceed maxHeaderBytes ({})",
            f.max_header_bytes
        )));
    }
    let xff = match (xff, f.peer) {
        (Some(mut s), Some(peer)) => {
            use std::fmt::Write;
            let _ = write!(s, ", {peer}");
            Some(s)
        }
        (None, Some(peer)) => Some(peer.to_string()),
        (s, None) => s,
    };
    if let Some(s) = xff {
        // The `String`'s buffer becomes the header value's: no copy.
        if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(s)) {
            dst.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
    }
    Ok(())
}

/// Copies an upstream response's headers for the client: everything, repeated values kept,
/// except hop-by-hop headers (and those `Connection` names) and the framing headers
/// `Content-Length` / `Transfer-Encoding`, which the server sets for the streamed body.
pub(crate) fn copy_response_headers(src: &HeaderMap, dst: &mut HeaderMap) {
    let connection: Vec<&HeaderValue> = src.get_all("connection").collect();
    for (name, value) in src.iter() {
        let n = name.as_str();
        if is_hop_by_hop(n) || n == "content-length" {
            continue;
        }
        if !connection.is_empty() && named_by_connection(&connection, n) {
            continue;
        }
        dst.append(name.clone(), value.clone());
    }
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
            ("te", "trailers"),
            ("upgrade", "websocket"),
        ]);
        let mut dst = HeaderMap::new();
        let f = RequestFilter {
            keep_impersonate: false,
            keep_upgrade: false,
            peer: Some("127.0.0.1".parse().unwrap()),
            max_header_bytes: 65536,
        };
        copy_request_headers(&src, &mut dst, &f).unwrap();
        let names: Vec<_> = dst.keys().map(|k| k.as_str().to_owned()).collect();
        assert!(names.contains(&"accept".to_owned()));
        assert_eq!(dst.get_all("accept").count(), 2);
        assert_eq!(dst.get("x-forwarded-for").unwrap(), "10.0.0.1, 127.0.0.1");
        assert_eq!(dst.len(), 3, "{names:?}");
        let f = RequestFilter {
            keep_impersonate: true,
            ..f
        };
        let mut dst = HeaderMap::new();
        copy_request_headers(&src, &mut dst, &f).unwrap();
        assert_eq!(dst.get("impersonate-user").unwrap(), "admin");
        let f = RequestFilter {
            max_header_bytes: 10,
            ..f
        };
        assert!(copy_request_headers(&src, &mut HeaderMap::new(), &f).is_err());
    }

    #[test]
    fn response_filter() {
        let src = map(&[
            ("warning", "299 - \"a\""),
            ("warning", "299 - \"b\""),
            ("transfer-encoding", "chunked"),
            ("content-length", "5"),
            ("connection", "close"),
            ("content-type", "application/json"),
        ]);
        let mut dst = HeaderMap::new();
        copy_response_headers(&src, &mut dst);
        assert_eq!(dst.get_all("warning").count(), 2);
        assert_eq!(dst.len(), 3);
    }
}
