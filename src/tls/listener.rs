//! Server-side TLS: the rustls server configurations kubeplex's listener
//! (`kubeplex.server.tls`) and the simulated clusters serve HTTPS with, from a PEM
//! certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1), or from a self-signed
//! certificate generated on the spot (rcgen, ECDSA P-256, no CA). ALPN: actix-web's rustls
//! listener puts `h2` first itself, then `http/1.1`; kubectl and curl negotiate HTTP/2.

use super::pem::certs;
use super::{provider, TlsError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::IpAddr;
use std::path::Path;

/// How messages name the settings (configuration keys or command-line flags) the
/// certificate and key files were given with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileSettings {
    /// Both together (`kubeplex.server.tls`).
    pub(crate) both: &'static str,
    /// The certificate chain file (`kubeplex.server.tls.certFile`).
    pub(crate) cert: &'static str,
    /// The private key file (`kubeplex.server.tls.keyFile`).
    pub(crate) key: &'static str,
}

/// kubeplex's own listener: `kubeplex.server.tls.certFile` and `keyFile`.
pub(crate) const LISTENER: FileSettings = FileSettings {
    both: "kubeplex.server.tls",
    cert: "kubeplex.server.tls.certFile",
    key: "kubeplex.server.tls.keyFile",
};

/// A server configuration with the certificate chain it serves, as PEM (what a client
/// that should trust exactly this server puts in its CA bundle).
#[derive(Clone)]
pub(crate) struct Served {
    pub(crate) config: rustls::ServerConfig,
    pub(crate) chain_pem: Vec<u8>,
}

/// Shows the certificate chain's size only, nothing of the key.
impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("chain_pem", &format_args!("{} bytes", self.chain_pem.len()))
            .finish_non_exhaustive()
    }
}

/// kubeplex's listener configuration from `kubeplex.server.tls`.
pub(crate) fn server_config(
    cert_file: &Path,
    key_file: &Path,
) -> Result<rustls::ServerConfig, TlsError> {
    from_files(cert_file, key_file, LISTENER).map(|s| s.config)
}

/// Reads the certificate and key files and builds the server configuration. Errors name
/// the setting, the file and what is wrong with it, never what the key holds.
pub(crate) fn from_files(
    cert_file: &Path,
    key_file: &Path,
    names: FileSettings,
) -> Result<Served, TlsError> {
    let read = |p: &Path, setting: &'static str| {
        std::fs::read(p).map_err(|e| TlsError::ListenerFileUnreadable {
            setting,
            path: p.display().to_string(),
            detail: e.to_string(),
        })
    };
    let chain_pem = read(cert_file, names.cert)?;
    let key_pem = read(key_file, names.key)?;
    let chain = certs(&chain_pem, "certificate").map_err(|e| TlsError::ListenerCertificate {
        setting: names.cert,
        path: cert_file.display().to_string(),
        error: Box::new(e),
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::ListenerKey {
        setting: names.key,
        path: key_file.display().to_string(),
        detail: e.to_string(),
    })?;
    let config = with_single_cert(chain, key, |detail| {
        TlsError::ListenerCertificateKeyMismatch {
            settings: names.both,
            cert: cert_file.display().to_string(),
            key: key_file.display().to_string(),
            detail,
        }
    })?;
    Ok(Served { config, chain_pem })
}

/// A self-signed certificate (no CA) for these IP addresses and DNS names, generated now,
/// valid from a day ago for a year, and the server configuration serving it.
pub(crate) fn self_signed(
    common_name: &str,
    ips: &[IpAddr],
    dns_names: &[String],
) -> Result<Served, TlsError> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let failed = |e: rcgen::Error| TlsError::SelfSigned(e.to_string());
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    for name in dns_names {
        let name = name.as_str().try_into().map_err(failed)?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let ymd = |t: chrono::DateTime<chrono::Utc>| {
        use chrono::Datelike;
        rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
    };
    let now = chrono::Utc::now();
    params.not_before = ymd(now - chrono::Duration::days(1));
    params.not_after = ymd(now + chrono::Duration::days(366));
    let key = KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    let chain_pem = cert.pem().into_bytes();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = with_single_cert(vec![cert.der().clone()], key, TlsError::SelfSigned)?;
    Ok(Served { config, chain_pem })
}

/// The server configuration (ring, safe default protocol versions, no client
/// certificates) for one certificate chain and its key.
fn with_single_cert(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    mismatch: impl FnOnce(String) -> TlsError,
) -> Result<rustls::ServerConfig, TlsError> {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::ProtocolVersions(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| mismatch(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier as _;

    #[test]
    fn self_signed_is_its_own_root() {
        let ips = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let served = self_signed("test", &ips, &["localhost".into()]).unwrap();
        let chain = certs(&served.chain_pem, "certificate").unwrap();
        assert_eq!(chain.len(), 1);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(chain[0].clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        let now = rustls::pki_types::UnixTime::now();
        for name in ["127.0.0.1", "::1", "localhost"] {
            let name = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(&chain[0], &[], &name, &[], now)
                .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
        let other = rustls::pki_types::ServerName::try_from("example.com").unwrap();
        assert!(verifier
            .verify_server_cert(&chain[0], &[], &other, &[], now)
            .is_err());
    }

    #[test]
    fn file_errors_name_the_setting_and_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let served = self_signed("test", &[], &["localhost".into()]).unwrap();
        let cert = dir.join("c.pem");
        std::fs::write(&cert, &served.chain_pem).unwrap();
        let bad_key = dir.join("k.pem");
        std::fs::write(&bad_key, "not a key").unwrap();
        let names = FileSettings {
            both: "--tls-cert/--tls-key",
            cert: "--tls-cert",
            key: "--tls-key",
        };
        let err = from_files(&cert, &bad_key, names).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("--tls-key: {}: ", bad_key.display())),
            "{err}"
        );
        let missing = dir.join("missing.pem");
        let err = from_files(&missing, &bad_key, names)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("--tls-cert: cannot read {}: ", missing.display())),
            "{err}"
        );
        let err = server_config(&bad_key, &cert).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "kubeplex.server.tls.certFile: {}: certificate PEM holds no CERTIFICATE block",
                bad_key.display()
            )),
            "{err}"
        );
    }
}
