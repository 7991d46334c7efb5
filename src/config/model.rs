//! The validated configuration kubeplex runs on. Every field has its default here, so a
//! `Settings::default()` is a working single-listener setup with no clusters.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Everything kubeplex needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The `kubeplex.server` block.
    pub server: ServerSettings,
    /// `kubeplex.duplicateNames`.
    pub duplicate_names: DuplicateNames,
    /// `kubernetes.clusterLocatorMethods`, in order, each with its resolved id.
    pub locators: Vec<LocatorConfig>,
    /// The `kubeplex:` blocks later stages read themselves (`auth`, `aggregate`,
    /// `pluginProxy`), as trees that remember their file, for [`super::read`]'s readers.
    pub sections: BTreeMap<String, super::tree::Node>,
    /// The configuration files this was loaded from (absolute), for reload.
    pub files: Vec<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings::default(),
            duplicate_names: DuplicateNames::First,
            locators: Vec::new(),
            sections: BTreeMap::new(),
            files: Vec::new(),
        }
    }
}

/// `kubeplex.server`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// `listen`, default `127.0.0.1:7007`.
    pub listen: String,
    /// `basePath`, default `/api/kubernetes`, no trailing slash.
    pub base_path: String,
    /// `connectTimeout`: TCP + TLS to a cluster, default 5s.
    pub connect_timeout: Duration,
    /// `responseHeadTimeout`: until the response head, default 60s; never bounds a body.
    pub response_head_timeout: Duration,
    /// `maxHeaderBytes`, default 65536.
    pub max_header_bytes: usize,
    /// `shutdownTimeout`, default 30s.
    pub shutdown_timeout: Duration,
    /// `workers`: HTTP worker threads, default the number of CPUs.
    pub workers: Option<usize>,
    /// `tls`: serve HTTPS with this certificate and key.
    pub tls: Option<ListenerTls>,
    /// `trustedProxies`: networks (CIDRs) of the proxies whose `X-Forwarded-For`,
    /// `X-Real-Ip` and `Forwarded` are believed; default none (SPEC §11).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:7007".into(),
            base_path: "/api/kubernetes".into(),
            connect_timeout: Duration::from_secs(5),
            response_head_timeout: Duration::from_secs(60),
            max_header_bytes: 65536,
            shutdown_timeout: Duration::from_secs(30),
            workers: None,
            tls: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `kubeplex.server.tls`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerTls {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// `kubeplex.duplicateNames`: what a name shared by several clusters does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicateNames {
    /// Route to the first in order, with a `Warning` header (Backstage's behaviour).
    #[default]
    First,
    /// Answer 409 Conflict.
    Reject,
}

/// One entry of `kubernetes.clusterLocatorMethods`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatorConfig {
    /// The locator id: `id:`, else its type, `type-2` for the second of a type, ...
    pub id: String,
    /// Which locator and its settings.
    pub kind: LocatorKind,
}

/// The locator types.
#[derive(Debug, Clone, PartialEq)]
pub enum LocatorKind {
    /// `type: config` with its `clusters[]`.
    Config { clusters: Vec<ClusterConfig> },
    /// `type: localKubectlProxy`: the cluster `local` at `http://127.0.0.1:8001`.
    LocalKubectlProxy,
    /// `type: kubeconfig`.
    Kubeconfig {
        /// `path` or `paths`.
        paths: Vec<PathBuf>,
        /// `contexts` filter; `None` takes every context.
        contexts: Option<Vec<String>>,
    },
    /// `type: catalog`.
    Catalog(CatalogConfig),
    /// `type: simulated`: in-process simulated clusters.
    Simulated { clusters: Vec<SimClusterConfig> },
}

/// A cluster of a `config` locator: Backstage's fields plus kubeplex's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterConfig {
    pub name: String,
    pub url: String,
    pub title: Option<String>,
    pub auth_provider: Option<String>,
    pub auth_metadata: BTreeMap<String, String>,
    pub service_account_token: Option<String>,
    pub oidc_token_provider: Option<String>,
    /// Base64 of PEM (Backstage's `caData`).
    pub ca_data: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub skip_tls_verify: bool,
    pub skip_metrics_lookup: bool,
    pub dashboard_url: Option<String>,
    pub dashboard_app: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Base64 of PEM.
    pub client_cert_data: Option<String>,
    /// Base64 of PEM.
    pub client_key_data: Option<String>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub tls_server_name: Option<String>,
}

/// A `catalog` locator.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogConfig {
    /// Base URL of the catalog API, e.g. `https://backstage.example.com/api/catalog`.
    pub url: String,
    /// Bearer token for the catalog, if any.
    pub token: Option<String>,
    /// Refresh interval, default 60s.
    pub refresh_interval: Duration,
    /// `dangerouslyAllowClusterUrls`: glob patterns of cluster URLs exempt from the guard.
    pub dangerously_allow_cluster_urls: Vec<String>,
}

/// A cluster of a `simulated` locator.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimClusterConfig {
    pub name: String,
    /// Optional YAML seed of Namespace and Service objects.
    pub seed: Option<SeedSource>,
    /// Accepted bearer tokens; empty allows anonymous.
    pub tokens: Vec<SimToken>,
    /// Faults to inject (tests).
    pub faults: SimFaults,
}

impl SimClusterConfig {
    /// A simulated cluster named `name`, seeded from `seed`, accepting exactly `tokens`
    /// (none: anonymous), without limits or faults.
    pub fn new<T: Into<String>>(
        name: impl Into<String>,
        seed: Option<SeedSource>,
        tokens: impl IntoIterator<Item = T>,
    ) -> Self {
        SimClusterConfig {
            name: name.into(),
            seed,
            tokens: tokens
                .into_iter()
                .map(|t| SimToken {
                    token: t.into(),
                    ..SimToken::default()
                })
                .collect(),
            faults: SimFaults::default(),
        }
    }
}

/// Where a simulated cluster's seed comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedSource {
    /// A YAML file (several documents, or a `kind: List`).
    File(PathBuf),
    /// YAML text embedded in the binary (the default config's `config/seed.yaml`).
    Text {
        /// Name for messages.
        name: String,
        /// The YAML.
        text: String,
    },
}

/// The seed shipped in `config/seed.yaml`, embedded for the default configuration.
pub const DEFAULT_SEED: &str = include_str!("../../config/seed.yaml");

/// An accepted token of a simulated cluster, optionally limited.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimToken {
    pub token: String,
    /// Namespaces this token may touch; `None` means all.
    pub namespaces: Option<Vec<String>>,
    /// Verbs (get, list, watch, create, update, patch, delete, proxy, exec); `None` means all.
    pub verbs: Option<Vec<String>>,
}

/// Faults a simulated cluster injects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimFaults {
    /// Added before every response head.
    pub latency: Option<Duration>,
    /// Fail every Nth request with `fail_code`.
    pub fail_every: Option<u64>,
    /// Code for `fail_every`, default 500.
    pub fail_code: Option<u16>,
    /// Close each watch after this many events.
    pub close_watch_after: Option<u64>,
}
