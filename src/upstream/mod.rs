//! Talking to a cluster: the per-worker clients (`client`: hyper's HTTP/1 client with its
//! idle pool for forwarded requests, awc's tunnel for WebSocket upgrades), their connectors
//! ([`connect`] for hyper, [`connector`] for awc: TCP, the catalog's connect guard, then TLS
//! with the cluster's configuration built once in [`crate::cluster`]), what they connect
//! to (`target`: a registry cluster, or a plugin's Service reached directly) and the
//! credential rules of SPEC §3 (`credential`). A bodyless `GET` or `HEAD` to a plain
//! `http://` target takes the direct HTTP/1.1 path instead ([`h1`]).

pub(crate) mod client;
pub mod connect;
pub mod connector;
pub(crate) mod credential;
pub(crate) mod fetch;
pub(crate) mod h1;
pub(crate) mod target;

/// Where the headers of a request to a cluster are written as they are chosen (the header
/// filter of SPEC §3, the credential, impersonation): hyper's header map for its client, or
/// the request head of the direct HTTP/1.1 client ([`h1::RequestHead`]), which then never
/// builds a map.
pub(crate) trait HeaderSink {
    /// Adds `name` (lowercase) with `value` after any earlier value of that name;
    /// `sensitive` marks a credential. A name or value no header may have is left out, as
    /// `http`'s parsers refuse it.
    fn put(&mut self, name: &str, value: &[u8], sensitive: bool);
}

impl HeaderSink for http1::HeaderMap {
    fn put(&mut self, name: &str, value: &[u8], sensitive: bool) {
        if let (Ok(n), Ok(mut v)) = (
            http1::HeaderName::from_bytes(name.as_bytes()),
            http1::HeaderValue::from_bytes(value),
        ) {
            v.set_sensitive(sensitive);
            self.append(n, v);
        }
    }
}

/// Whether `name` is a header name `http` accepts in lowercase: a token (RFC 9110 §5.6.2).
pub(crate) fn is_header_name(name: &[u8]) -> bool {
    /// The bytes of a lowercase token, by a table (a name is checked for every header
    /// written on the direct path).
    const TOKEN: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(
                    c,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                );
            b += 1;
        }
        t
    };
    !name.is_empty() && name.iter().all(|&b| TOKEN[usize::from(b)])
}

/// Whether `value` is a header value `http` accepts: visible ASCII, spaces, tabs and
/// `obs-text`, no control character.
pub(crate) fn is_header_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}
