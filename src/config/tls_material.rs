//! Validation of a cluster's TLS material: `caData`/`caFile` and the client certificate
//! and key (`clientCertData`/`clientKeyData` base64 PEM, or `clientCertFile`/`clientKeyFile`).
//! Messages never include key material.

use super::read::{Obj, Problems};
use super::server::readable;
use crate::tls::pem::{decode_base64, has_certificates, has_private_key};
use std::path::PathBuf;

/// The TLS fields of a cluster, as written (base64 kept, paths resolved).
#[derive(Debug, Default)]
pub(crate) struct TlsFields {
    pub ca_data: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub client_cert_data: Option<String>,
    pub client_key_data: Option<String>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

enum Expect {
    Certs,
    Key,
}

impl Expect {
    fn check(&self, pem: &[u8]) -> Result<(), &'static str> {
        match self {
            Expect::Certs if !has_certificates(pem) => {
                Err("does not contain a PEM certificate (-----BEGIN CERTIFICATE-----)")
            }
            Expect::Key if !has_private_key(pem) => {
                Err("does not contain a PEM private key (PKCS#8, PKCS#1 or SEC1)")
            }
            _ => Ok(()),
        }
    }
}

fn data(c: &Obj<'_>, key: &str, expect: Expect, p: &mut Problems) -> Option<String> {
    let s = c.string(key, p)?;
    match decode_base64(&s) {
        Err(m) => c.problem(key, m, p),
        Ok(bytes) => match expect.check(&bytes) {
            Ok(()) => return Some(s),
            Err(m) => c.problem(key, format!("decoded base64 {m}"), p),
        },
    }
    None
}

fn file(
    c: &Obj<'_>,
    key: &str,
    home: Option<&str>,
    expect: Expect,
    p: &mut Problems,
) -> Option<PathBuf> {
    let path = readable(c, key, home, p, false)?;
    match std::fs::read(&path) {
        Err(e) => c.problem(key, format!("cannot read {}: {e}", path.display()), p),
        Ok(bytes) => match expect.check(&bytes) {
            Ok(()) => return Some(path),
            Err(m) => c.problem(key, format!("{} {m}", path.display()), p),
        },
    }
    None
}

/// Reads and checks the TLS fields of cluster `c`.
pub(crate) fn read(c: &Obj<'_>, home: Option<&str>, p: &mut Problems) -> TlsFields {
    let t = TlsFields {
        ca_data: data(c, "caData", Expect::Certs, p),
        ca_file: file(c, "caFile", home, Expect::Certs, p),
        client_cert_data: data(c, "clientCertData", Expect::Certs, p),
        client_key_data: data(c, "clientKeyData", Expect::Key, p),
        client_cert_file: file(c, "clientCertFile", home, Expect::Certs, p),
        client_key_file: file(c, "clientKeyFile", home, Expect::Key, p),
    };
    for (a, b) in [
        ("caData", "caFile"),
        ("clientCertData", "clientCertFile"),
        ("clientKeyData", "clientKeyFile"),
    ] {
        if c.has(a) && c.has(b) {
            c.problem(b, format!("{a} and {b} are both set; use one"), p);
        }
    }
    let has_cert = c.has("clientCertData") || c.has("clientCertFile");
    let has_key = c.has("clientKeyData") || c.has("clientKeyFile");
    if has_cert && !has_key {
        let k = if c.has("clientCertData") {
            "clientCertData"
        } else {
            "clientCertFile"
        };
        c.problem(
            k,
            "client certificate without a key: set clientKeyData or clientKeyFile",
            p,
        );
    }
    if has_key && !has_cert {
        let k = if c.has("clientKeyData") {
            "clientKeyData"
        } else {
            "clientKeyFile"
        };
        c.problem(
            k,
            "client key without a certificate: set clientCertData or clientCertFile",
            p,
        );
    }
    t
}
