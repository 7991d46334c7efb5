//! What a cluster is: its definition (`spec`), its unique key, everything built once per
//! cluster (the rustls client configuration, the URL origin and path prefix, the name the
//! certificate is verified against, the `Kubeplex-Cluster` and ambiguity `Warning` header
//! values), and the ordered `registry` that chooses one for a request (SPEC §2).
//!
//! Built once means once per registry generation and cluster definition: a reload or a
//! catalog refresh that keeps a cluster's definition keeps its [`Cluster`] (the same `Arc`),
//! so per-worker clients and their pools survive it.

pub(crate) mod registry;
pub(crate) mod spec;

pub(crate) use registry::{Choice, RegistryHandle};
pub use registry::{LocatorClusters, Registry};
pub use spec::{BackstageDetails, ClusterSpec, ServerCredential};

use crate::tls::TlsError;
use actix_web::http::header::HeaderValue;
use rustls::pki_types::ServerName;
use std::fmt;
use std::sync::Arc;

/// A cluster's unique, stable key: `<locatorId>:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterKey(Arc<str>);

impl ClusterKey {
    /// The key of cluster `name` found by locator `locator`.
    pub fn new(locator: &str, name: &str) -> Self {
        ClusterKey(format!("{locator}:{name}").into())
    }
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ClusterKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The host the TLS step is handed when the verified name is an IP address (never sent: SNI
/// is off for IP addresses, and the verifier checks the real address).
const IP_PLACEHOLDER: &str = "ip-address.kubeplex.invalid";

/// One cluster of the registry, with everything derived from its definition built once.
#[derive(Debug)]
pub struct Cluster {
    /// Unique key.
    pub key: ClusterKey,
    /// Id of the locator that found it.
    pub locator: String,
    /// Whether another cluster shares its name.
    pub ambiguous: bool,
    /// Its definition.
    pub spec: ClusterSpec,
    /// The key as a `Kubeplex-Cluster` header value (`None` if the key has characters a
    /// header cannot carry).
    pub(crate) key_header: Option<HeaderValue>,
    /// The `Warning` sent when this cluster was chosen by an ambiguous name.
    pub(crate) ambiguity_warning: Option<HeaderValue>,
    /// `scheme://authority` of the URL (IPv6 in brackets, port explicit).
    pub origin: Result<String, String>,
    /// The URL's own path without a trailing slash (`""` or `/sub`).
    pub prefix: String,
    /// For `https` clusters: the rustls configuration (or why it cannot be built) and the
    /// host name the TLS step is handed (a DNS name, or a placeholder for IP addresses).
    pub tls: Option<ClusterTls>,
}

/// The TLS side of a cluster, built once.
#[derive(Debug, Clone)]
pub struct ClusterTls {
    /// The rustls configuration of forwarded requests (ALPN `h2` then `http/1.1`, or
    /// `http/1.1` alone with `http2: false`), or what is wrong with the cluster's TLS
    /// material.
    pub config: Result<Arc<rustls::ClientConfig>, TlsError>,
    /// The same with ALPN `http/1.1` alone: WebSocket tunnels (HTTP/1.1 upgrades).
    pub http1: Result<Arc<rustls::ClientConfig>, TlsError>,
    /// The host the TLS step sees (the verifier pins the real name).
    pub host: Arc<str>,
}

impl ClusterTls {
    /// The TLS side from the forwarding configuration `config` (or why there is none) and
    /// the host the TLS step sees; the tunnels' HTTP/1.1-only copy is made now.
    pub(crate) fn new(config: Result<Arc<rustls::ClientConfig>, TlsError>, host: Arc<str>) -> Self {
        let http1 = config
            .as_ref()
            .map(crate::tls::client::http1_alpn)
            .map_err(Clone::clone);
        ClusterTls {
            config,
            http1,
            host,
        }
    }
}

impl Cluster {
    /// Builds a cluster: its key, header values, origin, prefix and TLS configuration.
    pub fn new(locator: &str, spec: ClusterSpec, ambiguous: bool, warning: Option<String>) -> Self {
        let key = ClusterKey::new(locator, &spec.name);
        let url = &spec.url;
        let origin = match url.host_str() {
            None => Err("its URL has no host".to_string()),
            Some(host) => {
                let port = url.port_or_known_default().unwrap_or(443);
                Ok(if host.contains(':') && !host.starts_with('[') {
                    format!("{}://[{host}]:{port}", url.scheme())
                } else {
                    format!("{}://{host}:{port}", url.scheme())
                })
            }
        };
        let tls = matches!(url.scheme(), "https" | "wss").then(|| {
            let host = match crate::tls::client::verify_name(url, &spec.tls) {
                Ok(ServerName::DnsName(d)) => Arc::from(d.as_ref()),
                _ => Arc::from(IP_PLACEHOLDER),
            };
            ClusterTls::new(
                crate::tls::client::cluster_client_config(url, &spec.tls),
                host,
            )
        });
        Cluster {
            key_header: HeaderValue::from_str(key.as_str()).ok(),
            ambiguity_warning: warning.and_then(|w| HeaderValue::from_str(&w).ok()),
            prefix: url.path().trim_end_matches('/').to_owned(),
            origin,
            tls,
            key,
            locator: locator.to_owned(),
            ambiguous,
            spec,
        }
    }

    /// Logs a warning when this cluster's server certificate is not verified
    /// (`skipTLSVerify`); called when a cluster first enters the registry.
    pub(crate) fn warn_skip_verify(&self) {
        if self.spec.tls.skip_verify && self.spec.url.scheme() == "https" {
            tracing::warn!(
                cluster = %self.key,
                "skipTLSVerify is set: the server certificate of this cluster is not verified"
            );
        }
    }
}
