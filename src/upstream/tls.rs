//! rustls client configuration for one cluster (SPEC §4): custom CA, IP SANs,
//! `tlsServerName`, `skipTLSVerify`, client certificates. One crypto provider: ring.
//!
//! Default roots: when a cluster has no `caData`/`caFile`, the server certificate is
//! checked against the Mozilla root program as shipped by the `webpki-roots` crate (not the
//! platform's trust store). A configured CA bundle *replaces* these roots.
//!
//! The name checked is, in order: `tlsServerName`, else the host of the cluster URL (a DNS
//! name, an IPv4 or an IPv6 address; IP addresses are checked against the certificate's IP
//! SANs). [`cluster_client_config`] pins that name into the verifier, so what awc's
//! connector passes to rustls does not matter (see [`super::connector`]).
//!
//! [`describe_connect_error`] and [`describe_send_error`] turn a failed connection into the
//! cause a 502 message names: unknown CA, name mismatch, expired, client certificate
//! refused, refused connection, DNS failure, timeout.

use crate::locate::TlsSettings;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// The one crypto provider kubeplex uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration for a cluster from its TLS settings alone: the
/// name verified is `server_name` when set, else whatever name the connection was opened
/// for. Prefer [`cluster_client_config`], which also handles IPv6 hosts.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let pinned = match &tls.server_name {
        Some(n) => Some(parse_server_name(n)?),
        None => None,
    };
    build(tls, pinned).map(Arc::new)
}

/// Builds the rustls client configuration for a cluster reached at `url`: the certificate
/// is verified against [`verify_name`] (`tlsServerName`, else the URL host) whatever host
/// the connector hands to rustls. SNI is sent only for DNS names.
pub fn cluster_client_config(
    url: &url::Url,
    tls: &TlsSettings,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let name = verify_name(url, tls)?;
    let is_dns = matches!(name, ServerName::DnsName(_));
    let mut cfg = build(tls, Some(name))?;
    cfg.enable_sni = is_dns;
    Ok(Arc::new(cfg))
}

/// The name a cluster's certificate is verified against: `tlsServerName`, else the URL's
/// host (IPv6 without its brackets).
pub fn verify_name(url: &url::Url, tls: &TlsSettings) -> Result<ServerName<'static>, String> {
    if let Some(n) = &tls.server_name {
        return parse_server_name(n);
    }
    match url.host() {
        Some(url::Host::Domain(d)) => parse_server_name(d),
        Some(url::Host::Ipv4(ip)) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(ip).into())),
        Some(url::Host::Ipv6(ip)) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(ip).into())),
        None => Err("the cluster URL has no host".into()),
    }
}

fn parse_server_name(name: &str) -> Result<ServerName<'static>, String> {
    let trimmed = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(trimmed.to_string())
        .map_err(|_| format!("not a valid TLS server name: {name:?}"))
}

fn build(
    tls: &TlsSettings,
    pinned: Option<ServerName<'static>>,
) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if tls.skip_verify {
        Arc::new(SkipVerify {
            provider: provider.clone(),
        })
    } else {
        let roots = Arc::new(roots(tls.ca_pem.as_deref())?);
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
        match pinned {
            Some(name) => Arc::new(PinnedName { inner, name }),
            None => inner,
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = certs(cert, "client certificate")?;
            let key = private_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate and key do not fit: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err("a client certificate is set but no client key".into()),
        (None, Some(_)) => return Err("a client key is set but no client certificate".into()),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The root store: the given PEM bundle, or the webpki-roots (Mozilla) roots.
fn roots(ca_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(pem) => {
            for cert in certs(pem, "CA")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("CA certificate not usable: {e}"))?;
            }
        }
    }
    Ok(roots)
}

/// Every certificate in a PEM bundle; an error when there is none or one is malformed.
pub fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} PEM is malformed: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} PEM holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The first private key in PEM: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`).
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "client key PEM holds no PKCS#8, PKCS#1 or SEC1 private key".to_string()
        }
        e => format!("client key PEM is malformed: {e}"),
    })
}

/// Verifies the chain with webpki against a fixed name (`tlsServerName` or the URL host),
/// whatever name the connection was opened with.
#[derive(Debug)]
struct PinnedName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for PinnedName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `skipTLSVerify`: any certificate is accepted, but the handshake signatures are still
/// checked, so the peer must hold the key of the certificate it presents.
#[derive(Debug)]
struct SkipVerify {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Describes a failed connection to a cluster for a 502 message: what failed (refused,
/// DNS, unknown CA, name mismatch, expired, client certificate refused, ...). Never
/// includes a token or a query string.
pub fn describe_connect_error(err: &awc::error::ConnectError) -> String {
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

/// Describes any error whose source chain may hold an I/O or rustls error.
pub fn describe_dyn(err: &(dyn std::error::Error + 'static)) -> String {
    if let Some(r) = find_rustls(err) {
        return describe_rustls(r);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return describe_io(io);
        }
        cur = e.source();
    }
    err.to_string()
}

fn describe_io(e: &std::io::Error) -> String {
    if let Some(r) = e.get_ref().and_then(|inner| find_rustls(inner)) {
        return describe_rustls(r);
    }
    // The catalog guard refused the address the connection reached.
    if let Some(g) = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<crate::locate::url_guard::NotPublic>())
    {
        return g.to_string();
    }
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
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
pub fn describe_rustls(e: &rustls::Error) -> String {
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
        C::UnknownIssuer => "TLS: server certificate signed by an unknown CA (UnknownIssuer); \
                             set caData or caFile to the cluster's CA"
            .into(),
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
            format!(
                "TLS: server certificate name mismatch (NotValidForName){detail}; \
                 set tlsServerName to the name in the certificate"
            )
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

/// Logs one warning per cluster whose server certificate is not verified
/// (`skipTLSVerify`); called once at start and for clusters a refresh adds.
pub fn warn_skip_verify<'a>(clusters: impl IntoIterator<Item = &'a crate::registry::Cluster>) {
    for c in clusters {
        if c.spec.tls.skip_verify && c.spec.url.scheme() == "https" {
            tracing::warn!(
                cluster = %c.key,
                "skipTLSVerify is set: the server certificate of this cluster is not verified"
            );
        }
    }
}
