//! A cluster's definition as a locator found it: name, URL, Backstage's display fields, the
//! server-side credential (held secret) and the TLS material.

use crate::tls::TlsSettings;
use crate::url_guard::ConnectGuard;
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::sync::Arc;

/// A fully resolved cluster definition.
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
    /// What Backstage's entity routes read of a cluster (SPEC §10).
    pub backstage: BackstageDetails,
    /// `impersonate`: with the server-side credential, send `Impersonate-User`/`-Group` of
    /// the verified caller (SPEC §5).
    pub impersonate: bool,
    /// How to talk TLS to it.
    pub tls: TlsSettings,
    /// For clusters from the catalog: the check of the address each connection reaches
    /// (DNS may answer differently at connect than at the catalog refresh). `None` for
    /// clusters the operator configured.
    pub connect_guard: Option<Arc<ConnectGuard>>,
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
            backstage: BackstageDetails::default(),
            impersonate: false,
            tls: TlsSettings::default(),
            connect_guard: None,
        }
    }

    /// The URL as it may appear in a message or a listing: no userinfo, query or fragment.
    pub fn display_url(&self) -> String {
        crate::redact::url(&self.url)
    }
}

/// Backstage's cluster fields only its entity routes read (SPEC §10).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackstageDetails {
    /// `skipMetricsLookup`: no `metrics.k8s.io` reads for this cluster.
    pub skip_metrics_lookup: bool,
    /// `dashboardParameters`, passed on as written.
    pub dashboard_parameters: Option<serde_json::Value>,
    /// The cluster's own `customResources` (they replace `kubernetes.customResources`).
    pub custom_resources: Option<Vec<crate::config::CustomResourceRef>>,
}

/// A server-side credential of a cluster. A fixed token is held in a [`SecretString`]: its
/// `Debug` output is redacted.
#[derive(Debug, Clone, Default)]
pub enum ServerCredential {
    /// None: anonymous, or only the caller's own token.
    #[default]
    None,
    /// A fixed bearer token (`serviceAccountToken`, kubeconfig `token`).
    Token(SecretString),
    /// A bearer token read from a file, re-read when it changes (`tokenFile`, in-cluster).
    TokenFile(PathBuf),
}

impl ServerCredential {
    /// A fixed token.
    pub fn token(t: impl Into<String>) -> Self {
        ServerCredential::Token(SecretString::from(t.into()))
    }

    /// Whether there is a server-side credential at all (SPEC §5: then an unauthenticated
    /// kubeplex lends it to every caller).
    pub fn is_some(&self) -> bool {
        !matches!(self, ServerCredential::None)
    }
}

impl PartialEq for ServerCredential {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ServerCredential::None, ServerCredential::None) => true,
            (ServerCredential::Token(a), ServerCredential::Token(b)) => {
                a.expose_secret() == b.expose_secret()
            }
            (ServerCredential::TokenFile(a), ServerCredential::TokenFile(b)) => a == b,
            _ => false,
        }
    }
}
