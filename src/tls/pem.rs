//! PEM and base64 parsing for certificates and private keys (rustls-pki-types'
//! `PemObject`). Messages say what is wrong, never what a key holds.

use super::TlsError;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Every certificate in a PEM bundle; an error when there is none or one is malformed.
pub(crate) fn certs(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::MalformedPem {
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certs)
}

/// The first private key in PEM: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`).
pub(crate) fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        e => TlsError::MalformedPrivateKey(e.to_string()),
    })
}

/// Decodes base64 (standard alphabet, padding optional, whitespace and newlines ignored),
/// as Backstage's `caData` and kubeconfig's `*-data` fields are written.
pub(crate) fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode(compact.as_bytes())
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(_, b) => {
                format!("not base64: invalid character {:?}", b as char)
            }
            base64::DecodeError::InvalidLength(_) => "not base64: invalid length".to_string(),
            other => format!("not base64: {other}"),
        })
}

/// Whether `pem` holds at least one certificate and nothing unreadable.
pub(crate) fn has_certificates(pem: &[u8]) -> bool {
    let mut n = 0;
    for c in CertificateDer::pem_slice_iter(pem) {
        if c.is_err() {
            return false;
        }
        n += 1;
    }
    n > 0
}

/// Whether `pem` holds a private key (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn has_private_key(pem: &[u8]) -> bool {
    PrivateKeyDer::from_pem_slice(pem).is_ok()
}
