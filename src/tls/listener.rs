//! Listener TLS (`kubeplex.server.tls`): the rustls server configuration kubeplex serves
//! HTTPS with, from a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
//! ALPN: actix-web's rustls listener puts `h2` first itself, then `http/1.1`; kubectl and
//! curl negotiate HTTP/2.

use super::pem::certs;
use super::{provider, TlsError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use std::path::Path;

/// Reads the certificate and key files and builds the server configuration. Errors name
/// the file and what is wrong with it.
pub(crate) fn server_config(
    cert_file: &Path,
    key_file: &Path,
) -> Result<rustls::ServerConfig, TlsError> {
    let read = |p: &Path, key: &'static str| {
        std::fs::read(p).map_err(|e| TlsError::ListenerFileUnreadable {
            key,
            path: p.display().to_string(),
            detail: e.to_string(),
        })
    };
    let cert_pem = read(cert_file, "certFile")?;
    let key_pem = read(key_file, "keyFile")?;
    let chain = certs(&cert_pem, "certificate").map_err(|e| TlsError::ListenerCertificate {
        path: cert_file.display().to_string(),
        error: Box::new(e),
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::ListenerKey {
        path: key_file.display().to_string(),
        detail: e.to_string(),
    })?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::ProtocolVersions(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::ListenerCertificateKeyMismatch {
            cert: cert_file.display().to_string(),
            key: key_file.display().to_string(),
            detail: e.to_string(),
        })?;
    Ok(cfg)
}
