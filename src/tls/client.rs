//! rustls client configuration for one cluster (SPEC §4): custom CA, IP SANs,
//! `tlsServerName`, `skipTLSVerify`, client certificates. One crypto provider: ring.
//!
//! Default roots: when a cluster has no `caData`/`caFile`, the server certificate is
//! checked against the Mozilla root program as shipped by the `webpki-roots` crate (not the
//! platform's trust store). A configured CA bundle *replaces* these roots.
//!
//! The name checked is, in order: `tlsServerName`, else the host of the cluster URL (a DNS
//! name, an IPv4 or an IPv6 address; IP addresses are checked against the certificate's IP
//! SANs). `cluster_client_config` pins that name into the verifier, so what awc's
//! connector passes to rustls does not matter.
//!
//! `skipTLSVerify` accepts any certificate but still checks the handshake signatures.
//!
//! ALPN: a cluster's configuration offers `h2` then `http/1.1` (an API server picks `h2`,
//! and the forwarding client then multiplexes requests over one connection), or
//! `http/1.1` alone when the cluster says `http2: false` ([`TlsSettings::http1_only`]).
//! WebSocket tunnels are HTTP/1.1 upgrades: they use [`http1_alpn`]'s copy, built once
//! with the cluster. Plain `http://` clusters always speak HTTP/1.1 (no h2c).

use super::pem::{certs, private_key};
use super::{provider, TlsError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use secrecy::{ExposeSecret, SecretSlice};
use std::sync::Arc;

/// TLS material for one cluster; PEM bytes already read from files or decoded from base64.
/// The client key is held secret: it never shows in `Debug` output.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// CA bundle (PEM) replacing the default roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any server certificate (handshake signatures still checked).
    pub skip_verify: bool,
    /// Name to verify the server certificate against instead of the URL host.
    pub server_name: Option<String>,
    /// Client certificate chain (PEM) for mTLS.
    pub client_cert_pem: Option<Vec<u8>>,
    /// Client private key (PEM: PKCS#8, PKCS#1 or SEC1) for mTLS.
    pub client_key_pem: Option<SecretSlice<u8>>,
    /// Offer only `http/1.1` by ALPN (the cluster's `http2: false`): no HTTP/2 even when
    /// the server offers it.
    pub http1_only: bool,
}

impl PartialEq for TlsSettings {
    fn eq(&self, o: &Self) -> bool {
        self.ca_pem == o.ca_pem
            && self.skip_verify == o.skip_verify
            && self.server_name == o.server_name
            && self.client_cert_pem == o.client_cert_pem
            && self.http1_only == o.http1_only
            && self.client_key_pem.as_ref().map(|k| k.expose_secret())
                == o.client_key_pem.as_ref().map(|k| k.expose_secret())
    }
}

/// Builds the rustls client configuration for a cluster from its TLS settings alone: the
/// name verified is `server_name` when set, else whatever name the connection was opened
/// for. Prefer `cluster_client_config`, which also handles IPv6 hosts.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let pinned = match &tls.server_name {
        Some(n) => Some(parse_server_name(n)?),
        None => None,
    };
    build(tls, pinned).map(Arc::new)
}

/// Builds the rustls client configuration for a cluster reached at `url`: the certificate
/// is verified against [`verify_name`] (`tlsServerName`, else the URL host) whatever host
/// the connector hands to rustls. SNI is sent only for DNS names.
pub(crate) fn cluster_client_config(
    url: &url::Url,
    tls: &TlsSettings,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let name = verify_name(url, tls)?;
    let is_dns = matches!(name, ServerName::DnsName(_));
    let mut cfg = build(tls, Some(name))?;
    cfg.enable_sni = is_dns;
    Ok(Arc::new(cfg))
}

/// The name a cluster's certificate is verified against: `tlsServerName`, else the URL's
/// host (IPv6 without its brackets).
pub(crate) fn verify_name(
    url: &url::Url,
    tls: &TlsSettings,
) -> Result<ServerName<'static>, TlsError> {
    if let Some(n) = &tls.server_name {
        return parse_server_name(n);
    }
    match url.host() {
        Some(url::Host::Domain(d)) => parse_server_name(d),
        Some(url::Host::Ipv4(ip)) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(ip).into())),
        Some(url::Host::Ipv6(ip)) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(ip).into())),
        None => Err(TlsError::UrlWithoutHost),
    }
}

fn parse_server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    let trimmed = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(trimmed.to_string())
        .map_err(|_| TlsError::InvalidServerName(name.to_string()))
}

fn build(
    tls: &TlsSettings,
    pinned: Option<ServerName<'static>>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if tls.skip_verify {
        Arc::new(SkipVerify {
            provider: provider.clone(),
        })
    } else {
        let roots = Arc::new(roots(tls.ca_pem.as_deref())?);
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        match pinned {
            Some(name) => Arc::new(PinnedName { inner, name }),
            None => inner,
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::ProtocolVersions(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = certs(cert, "client certificate")?;
            let key = private_key(key.expose_secret())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::CertificateKeyMismatch(e.to_string()))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(TlsError::CertificateWithoutKey),
        (None, Some(_)) => return Err(TlsError::KeyWithoutCertificate),
    };
    cfg.alpn_protocols = if tls.http1_only {
        vec![HTTP1.to_vec()]
    } else {
        vec![H2.to_vec(), HTTP1.to_vec()]
    };
    Ok(cfg)
}

/// The ALPN protocol id of HTTP/2 over TLS (RFC 9113 §3.2).
pub(crate) const H2: &[u8] = b"h2";
/// The ALPN protocol id of HTTP/1.1.
const HTTP1: &[u8] = b"http/1.1";

/// `cfg` offering `http/1.1` alone by ALPN (the same `Arc` when it already does): for
/// connections that must be HTTP/1.1, such as WebSocket upgrades (RFC 6455 §4.1).
pub(crate) fn http1_alpn(cfg: &Arc<rustls::ClientConfig>) -> Arc<rustls::ClientConfig> {
    if cfg.alpn_protocols == [HTTP1] {
        return cfg.clone();
    }
    let mut c = rustls::ClientConfig::clone(cfg);
    c.alpn_protocols = vec![HTTP1.to_vec()];
    Arc::new(c)
}

/// The root store: the given PEM bundle, or the webpki-roots (Mozilla) roots.
fn roots(ca_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(pem) => {
            for cert in certs(pem, "CA")? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::UnusableCa(e.to_string()))?;
            }
        }
    }
    Ok(roots)
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
