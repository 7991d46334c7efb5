//! Cluster locators: each turns one `clusterLocatorMethods[]` entry into an ordered list of
//! [`ClusterSpec`]s. One file per locator type. [`locate_all`] runs them in config order;
//! the registry gives each cluster its key.

pub mod catalog;
pub mod config;
pub mod in_cluster;
pub mod kubeconfig;
pub mod local_kubectl_proxy;
pub mod simulated;
pub mod url_guard;

use crate::config::{LocatorConfig, LocatorKind, Settings};
use std::path::PathBuf;
use std::sync::Arc;

/// A fully resolved cluster definition, as a locator found it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// The cluster's name (not unique across locators).
    pub name: String,
    /// The API server URL, path prefix included (`https://h:6443/sub`).
    pub url: url::Url,
    /// Display title.
    pub title: Option<String>,
    /// Backstage `authProvider` (`serviceAccount`, `google`, `aks`, `oidc`, ...).
    pub auth_provider: Option<String>,
    /// Backstage `oidcTokenProvider` when `authProvider: oidc`.
    pub oidc_token_provider: Option<String>,
    /// Backstage `dashboardUrl`.
    pub dashboard_url: Option<String>,
    /// Backstage `dashboardApp`.
    pub dashboard_app: Option<String>,
    /// The server-side credential (SPEC §3 rule 4).
    pub credential: ServerCredential,
    /// How to talk TLS to it.
    pub tls: TlsSettings,
    /// For clusters from the catalog: the check of the address each connection reaches
    /// (DNS may answer differently at connect than at the catalog refresh). `None` for
    /// clusters the operator configured.
    pub connect_guard: Option<Arc<url_guard::ConnectGuard>>,
}

impl ClusterSpec {
    /// A cluster with only a name and URL; the rest default (no credential, default TLS).
    pub fn new(name: impl Into<String>, url: url::Url) -> Self {
        ClusterSpec {
            name: name.into(),
            url,
            title: None,
            auth_provider: None,
            oidc_token_provider: None,
            dashboard_url: None,
            dashboard_app: None,
            credential: ServerCredential::None,
            tls: TlsSettings::default(),
            connect_guard: None,
        }
    }
}

/// A server-side credential of a cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ServerCredential {
    /// None: anonymous, or only the caller's own token.
    #[default]
    None,
    /// A fixed bearer token (`serviceAccountToken`, kubeconfig `token`).
    Token(String),
    /// A bearer token read from a file, re-read when it changes (`tokenFile`, in-cluster).
    TokenFile(PathBuf),
}

/// TLS material for one cluster; PEM bytes already read from files or decoded from base64.
#[derive(Debug, Clone, PartialEq, Default)]
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
    pub client_key_pem: Option<Vec<u8>>,
}

/// Clusters found by one locator, with the locator's id.
#[derive(Debug)]
pub struct Located {
    /// The locator id (`config`, `simulated-2`, `id:` ...).
    pub locator: String,
    /// Its clusters in the locator's own order.
    pub clusters: Vec<ClusterSpec>,
    /// In-process simulated servers backing these clusters; they stop when dropped.
    pub sims: Vec<crate::sim::SimServer>,
}

/// Runs every locator in config order.
pub async fn locate_all(settings: &Settings) -> Result<Vec<Located>, crate::status::Error> {
    let mut out = Vec::new();
    for l in &settings.locators {
        out.push(locate_one(l).await?);
    }
    Ok(out)
}

/// Runs one locator.
pub async fn locate_one(l: &LocatorConfig) -> Result<Located, crate::status::Error> {
    let clusters = match &l.kind {
        LocatorKind::Config { clusters } => config::locate(&l.id, clusters)?,
        LocatorKind::LocalKubectlProxy => local_kubectl_proxy::locate(),
        LocatorKind::Simulated { clusters } => return simulated::locate(&l.id, clusters).await,
        LocatorKind::Kubeconfig { paths, contexts } => {
            kubeconfig::locate(&l.id, paths, contexts.as_deref())?
        }
        LocatorKind::Catalog(cfg) => catalog::locate(&l.id, cfg).await?,
    };
    Ok(Located {
        locator: l.id.clone(),
        clusters,
        sims: Vec::new(),
    })
}
