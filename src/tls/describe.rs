//! What a failed connection to a cluster means, in words a cluster operator recognises:
//! unknown CA, name mismatch, expired, client certificate refused, refused connection, DNS
//! failure, timeout. These descriptions go into 502 messages: they never include a token or
//! a query string.

use rustls::{AlertDescription, CertificateError};

/// The hint after an unknown-CA failure: the cluster's settings (the plugin proxy
/// replaces it with its own).
pub(crate) const CLUSTER_CA_HINT: &str = "set caData or caFile to the cluster's CA";

/// The hint after a name mismatch: the cluster's setting (the plugin proxy replaces it).
pub(crate) const CLUSTER_NAME_HINT: &str = "set tlsServerName to the name in the certificate";

/// Describes a failed connection to a cluster for a 502 message: what failed (refused,
/// DNS, unknown CA, name mismatch, expired, client certificate refused, ...). Never
/// includes a token or a query string.
pub(crate) fn describe_connect_error(err: &awc::error::ConnectError) -> String {
    use awc::error::ConnectError as C;
    match err {
        C::Timeout => "timed out connecting (TCP or TLS handshake)".into(),
        C::Resolver(e) => format!("DNS lookup failed: {e}"),
        C::NoRecords => "DNS lookup found no address".into(),
        C::Unresolved => "DNS lookup failed: host not resolved".into(),
        C::SslIsNotSupported => "TLS is not supported by this connector".into(),
        C::Disconnected => "the connector was shut down".into(),
        C::Io(e) => describe_io(e),
        other => other.to_string(),
    }
}

/// Describes a failed request to a cluster (connect, send, or reading the response head),
/// for a 502 message. TLS 1.3 servers refuse a client certificate only after the client's
/// handshake has finished, so that failure shows up here rather than at connect time.
pub fn describe_send_error(err: &awc::error::SendRequestError) -> String {
    use awc::error::SendRequestError as S;
    match err {
        S::Connect(c) => describe_connect_error(c),
        S::Send(e) => describe_io(e),
        S::Response(actix_http::error::ParseError::Io(e)) => describe_io(e),
        S::Response(actix_http::error::ParseError::Incomplete) => {
            "the server closed the connection before a complete response head".into()
        }
        S::Response(e) => format!("bad response head: {e}"),
        S::Timeout => "timed out waiting for the response head".into(),
        S::Url(e) => format!("bad upstream URL: {e}"),
        other => other.to_string(),
    }
}

/// Describes any failure whose source chain holds a rustls error, an I/O error or one of
/// hyper's: what failed talking to a cluster, for a 502 message.
pub fn describe_chain(err: &(dyn std::error::Error + 'static)) -> String {
    if let Some(r) = find_rustls(err) {
        return describe_rustls(r);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return describe_io(io);
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                return "the server closed the connection before a complete response head".into();
            }
            if h.is_parse() {
                return format!("bad response head: {h}");
            }
            match std::error::Error::source(h) {
                None => return format!("HTTP error: {h}"),
                // An HTTP/2 stream reset or GOAWAY: h2's own words, with the reason code.
                Some(src) if h.to_string() == "http2 error" => {
                    return format!("HTTP/2: {src}");
                }
                Some(_) => {}
            }
        }
        cur = e.source();
    }
    err.to_string()
}

fn describe_io(e: &std::io::Error) -> String {
    if let Some(r) = e.get_ref().and_then(|inner| find_rustls(inner)) {
        return describe_rustls(r);
    }
    use std::io::ErrorKind as K;
    // A refusal by kubeplex itself (the catalog's connect guard) says why in its own words.
    if e.kind() == K::PermissionDenied {
        if let Some(inner) = e.get_ref() {
            return inner.to_string();
        }
    }
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        // The connector's own DNS failures say so themselves.
        K::NotFound => e.to_string(),
        K::ConnectionReset => "connection reset by the server".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::TimedOut => "timed out connecting".into(),
        K::UnexpectedEof => "the server closed the connection".into(),
        K::HostUnreachable | K::NetworkUnreachable => format!("host unreachable: {e}"),
        K::InvalidInput if e.to_string().contains("server name") => {
            "invalid TLS server name".into()
        }
        _ => format!("connection failed: {e}"),
    }
}

/// Finds a `rustls::Error` in an error or its source chain.
/// Whether a failure's source chain holds a rustls error (a failed TLS handshake) or
/// kubeplex's own TLS material error.
pub(crate) fn is_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    if find_rustls(err).is_some() {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<crate::tls::TlsError>().is_some() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|i| i.downcast_ref::<crate::tls::TlsError>().is_some())
            {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

fn find_rustls<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r);
            }
        }
        cur = e.source();
    }
    None
}

/// What a rustls failure means, in words a cluster operator recognises.
pub(crate) fn describe_rustls(e: &rustls::Error) -> String {
    use rustls::Error as R;
    match e {
        R::InvalidCertificate(c) => describe_cert_error(c),
        R::AlertReceived(a) => match a {
            AlertDescription::CertificateRequired => {
                "TLS: the server requires a client certificate".into()
            }
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied => {
                format!("TLS: the server refused the client certificate (alert {a:?})")
            }
            AlertDescription::HandshakeFailure => {
                "TLS handshake failure (the server refused the handshake: no common \
                 parameters, or a client certificate it did not accept)"
                    .into()
            }
            AlertDescription::ProtocolVersion => {
                "TLS handshake failure: no common protocol version".into()
            }
            other => format!("TLS: the server sent alert {other:?}"),
        },
        R::NoCertificatesPresented => "TLS: the server presented no certificate".into(),
        R::PeerIncompatible(p) => format!("TLS handshake failure: incompatible peer ({p:?})"),
        R::PeerMisbehaved(p) => format!("TLS handshake failure: peer misbehaved ({p:?})"),
        R::InvalidMessage(m) => {
            format!("TLS handshake failure: invalid message ({m:?}); is the server speaking TLS?")
        }
        other => format!("TLS error: {other}"),
    }
}

fn describe_cert_error(c: &CertificateError) -> String {
    use CertificateError as C;
    match c {
        C::UnknownIssuer => {
            format!("TLS: server certificate signed by an unknown CA (UnknownIssuer); {CLUSTER_CA_HINT}")
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            let detail = match c {
                C::NotValidForNameContext {
                    expected,
                    presented,
                } => format!(
                    ": expected {}, certificate is for {}",
                    expected.to_str(),
                    presented
                        .iter()
                        .map(|p| p
                            .trim_start_matches("DnsName(")
                            .trim_start_matches("IpAddress(")
                            .trim_end_matches(')')
                            .trim_matches('"'))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => String::new(),
            };
            format!("TLS: server certificate name mismatch (NotValidForName){detail}; {CLUSTER_NAME_HINT}")
        }
        C::Expired | C::ExpiredContext { .. } => "TLS: server certificate expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "TLS: server certificate not valid yet".into()
        }
        C::Revoked => "TLS: server certificate revoked".into(),
        C::BadSignature => "TLS: server certificate has a bad signature".into(),
        C::BadEncoding => "TLS: server certificate is malformed".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "TLS: server certificate is not valid for server authentication".into()
        }
        other => format!("TLS: invalid server certificate ({other:?})"),
    }
}
