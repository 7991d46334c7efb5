//! Test support for TLS: certificates generated with rcgen (CAs, server certificates for
//! DNS names and IP addresses, expired ones, client certificates with PKCS#8, PKCS#1 and
//! SEC1 keys) and real HTTPS upstreams on loopback (actix-web with rustls) that record what
//! they receive: the SNI of each handshake and each request's method, path and headers.
#![allow(dead_code)]

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Key fixtures (test-only keys) in the formats kubeconfigs carry.
pub const RSA_PKCS1: &str = include_str!("../../fixtures/tls/rsa-pkcs1.pem");
/// The same RSA key as PKCS#8 (rcgen signs with it).
pub const RSA_PKCS8: &str = include_str!("../../fixtures/tls/rsa-pkcs8.pem");
/// A P-256 key as SEC1 (`EC PRIVATE KEY`).
pub const EC_SEC1: &str = include_str!("../../fixtures/tls/ec-sec1.pem");
/// The same P-256 key as PKCS#8.
pub const EC_PKCS8: &str = include_str!("../../fixtures/tls/ec-pkcs8.pem");

/// A certificate authority that issues certificates.
pub struct Ca {
    /// The CA certificate, PEM.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate with its key, PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    /// A new self-signed CA with this common name.
    pub fn new(cn: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn issue_with(
        &self,
        sans: &[&str],
        key: KeyPair,
        eku: ExtendedKeyUsagePurpose,
        expired: bool,
    ) -> Issued {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            sans.first().copied().unwrap_or("client"),
        );
        params.extended_key_usages = vec![eku];
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for these names (DNS names or IP addresses).
    pub fn server(&self, sans: &[&str]) -> Issued {
        self.issue_with(
            sans,
            KeyPair::generate().unwrap(),
            ExtendedKeyUsagePurpose::ServerAuth,
            false,
        )
    }

    /// A server certificate for these names with a given key (PKCS#8 PEM).
    pub fn server_with_key(&self, sans: &[&str], key_pkcs8: &str) -> Issued {
        self.issue_with(
            sans,
            KeyPair::from_pem(key_pkcs8).unwrap(),
            ExtendedKeyUsagePurpose::ServerAuth,
            false,
        )
    }

    /// An expired server certificate for these names.
    pub fn expired_server(&self, sans: &[&str]) -> Issued {
        self.issue_with(
            sans,
            KeyPair::generate().unwrap(),
            ExtendedKeyUsagePurpose::ServerAuth,
            true,
        )
    }

    /// A client certificate (PKCS#8 P-256 key).
    pub fn client(&self, cn: &str) -> Issued {
        self.issue_with(
            &[cn],
            KeyPair::generate().unwrap(),
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        )
    }

    /// A client certificate for the RSA fixture key; `key_pem` is the PKCS#1 form.
    pub fn client_rsa_pkcs1(&self, cn: &str) -> Issued {
        let key = KeyPair::from_pem(RSA_PKCS8).unwrap();
        let mut i = self.issue_with(&[cn], key, ExtendedKeyUsagePurpose::ClientAuth, false);
        i.key_pem = RSA_PKCS1.to_string();
        i
    }

    /// A client certificate for the EC fixture key; `key_pem` is the SEC1 form.
    pub fn client_ec_sec1(&self, cn: &str) -> Issued {
        let key = KeyPair::from_pem(EC_PKCS8).unwrap();
        let mut i = self.issue_with(&[cn], key, ExtendedKeyUsagePurpose::ClientAuth, false);
        i.key_pem = EC_SEC1.to_string();
        i
    }
}

/// What an upstream saw.
#[derive(Default, Debug)]
pub struct Seen {
    /// SNI of each handshake (`None`: no SNI sent).
    pub sni: Vec<Option<String>>,
    /// `METHOD path?query` of each request.
    pub requests: Vec<String>,
    /// Headers of the last request, lowercased names.
    pub last_headers: Vec<(String, String)>,
    /// Headers of the last request to each path (kubeplex's readiness probes of
    /// `/version` come at any time: a test checking one request looks it up by its path).
    pub headers_by_path: std::collections::HashMap<String, Vec<(String, String)>>,
}

/// A running HTTPS upstream.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    handle: actix_web::dev::ServerHandle,
}

impl Upstream {
    /// `https://host:port` where host is `host` (e.g. `localhost`, `127.0.0.1`, `[::1]`).
    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.addr.port())
    }
    /// Snapshot of the SNI values seen.
    pub fn sni(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().sni.clone()
    }
    /// Snapshot of the requests seen.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().requests.clone()
    }
    /// A header of the last request to `path`.
    pub fn last_header_at(&self, path: &str, name: &str) -> Option<String> {
        self.seen
            .lock()
            .unwrap()
            .headers_by_path
            .get(path)?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
    /// A header of the last request.
    pub fn last_header(&self, name: &str) -> Option<String> {
        self.seen
            .lock()
            .unwrap()
            .last_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let h = self.handle.clone();
        // Stop without waiting; the test runtime may already be ending.
        drop(h.stop(false));
    }
}

#[derive(Debug)]
struct RecordingResolver {
    key: Arc<CertifiedKey>,
    seen: Arc<Mutex<Seen>>,
}

impl ResolvesServerCert for RecordingResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.seen
            .lock()
            .unwrap()
            .sni
            .push(hello.server_name().map(str::to_string));
        Some(self.key.clone())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Options of an upstream.
#[derive(Default)]
pub struct UpstreamOpts<'a> {
    /// Require a client certificate issued by this CA (PEM).
    pub client_ca: Option<&'a str>,
    /// Sign the handshake with this key (PEM) instead of the certificate's own.
    pub wrong_signing_key: Option<&'a str>,
    /// Bind address, default `127.0.0.1:0`.
    pub bind: Option<&'a str>,
}

/// Starts an HTTPS upstream with this certificate that answers every request with 200 and
/// a JSON body `{"path": ...}` and records what it saw.
pub async fn upstream(cert: &Issued, opts: UpstreamOpts<'_>) -> Upstream {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key_pem = opts.wrong_signing_key.unwrap_or(&cert.key_pem);
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let signing = provider().key_provider.load_private_key(key).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let resolver = Arc::new(RecordingResolver {
        key: Arc::new(CertifiedKey::new(chain, signing)),
        seen: seen.clone(),
    });
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match opts.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let seen2 = seen.clone();
    let server = HttpServer::new(move || {
        let seen = seen2.clone();
        App::new().default_service(web::to(move |req: HttpRequest| {
            let seen = seen.clone();
            async move {
                // The request target (over HTTP/2 the URI also has scheme and authority).
                let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
                let line = format!("{} {target}", req.method());
                let mut s = seen.lock().unwrap();
                s.requests.push(line);
                s.last_headers = req
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let headers = s.last_headers.clone();
                s.headers_by_path
                    .insert(req.uri().path().to_string(), headers);
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(format!("{{\"path\":{:?}}}", req.uri().path()))
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind_rustls_0_23(opts.bind.unwrap_or("127.0.0.1:0"), cfg)
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Upstream { addr, seen, handle }
}

/// A server configuration presenting `cert`, for upstreams built elsewhere
/// (`common::Upstream::start_tls`, WebSocket servers over TLS). Its ALPN says `http/1.1`;
/// actix-web's rustls listener puts `h2` in front of it.
pub fn server_config(cert: &Issued) -> rustls::ServerConfig {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg
}

/// Base64 (standard) of text, as `caData` and kubeconfig `-data` fields carry PEM.
pub fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
