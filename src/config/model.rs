//! The validated configuration kubeplex runs on. Every field has its default here, so a
//! `Settings::default()` is a working single-listener setup with no clusters.

use crate::sim::config::SimClusterConfig;
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
    /// `kubeplex.auth`: who may use kubeplex (SPEC §5).
    pub auth: AuthSettings,
    /// `kubeplex.aggregate` (SPEC §6).
    pub aggregate: AggregateSettings,
    /// What Backstage's entity routes read (SPEC §10): `kubeplex.backstage` and Backstage's
    /// own `kubernetes.serviceLocatorMethod`, `objectTypes`, `apiVersionOverrides` and
    /// `customResources`.
    pub backstage: BackstageSettings,
    /// `kubeplex.pluginProxy`: the OpenShift console's ConsolePlugin proxy (SPEC §7).
    pub plugin_proxy: super::PluginProxySettings,
    /// `kubeplex.dangerouslySkipTLSVerifyWithCredentials`: allow a cluster with
    /// `skipTLSVerify: true` to carry a server-side token (default false: refused).
    pub dangerously_skip_tls_verify_with_credentials: bool,
    /// `kubernetes.clusterLocatorMethods`, in order, each with its resolved id.
    pub locators: Vec<LocatorConfig>,
    /// The `kubeplex:` blocks later stages read themselves (none at the moment: a block
    /// listed in `server::SECTION_KEYS` is refused as not implemented yet, so this is empty
    /// in a valid configuration), as trees that remember their file, for `super::read`'s
    /// readers.
    pub sections: BTreeMap<String, super::tree::Node>,
    /// The configuration files this was loaded from (absolute), for reload.
    pub files: Vec<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings::default(),
            duplicate_names: DuplicateNames::First,
            auth: AuthSettings::default(),
            aggregate: AggregateSettings::default(),
            backstage: BackstageSettings::default(),
            plugin_proxy: super::PluginProxySettings::default(),
            dangerously_skip_tls_verify_with_credentials: false,
            locators: Vec::new(),
            sections: BTreeMap::new(),
            files: Vec::new(),
        }
    }
}

/// `kubeplex.aggregate`: the fan-out of `{base}/aggregate/...` (SPEC §6).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateSettings {
    /// `concurrency`: members asked at once, default 16.
    pub concurrency: usize,
    /// `timeout`: a member's whole answer to a list or get, default 10s (a watch has none
    /// after its response head).
    pub timeout: std::time::Duration,
    /// `cacheTtl`: how long identical lists are served from the cache, default 2s (0: off).
    pub cache_ttl: std::time::Duration,
    /// `continueKey`: the HMAC key of continue tokens, shared by every replica; generated at
    /// start (with a warning) when absent.
    pub continue_key: Option<crate::redact::Secret>,
}

impl Default for AggregateSettings {
    fn default() -> Self {
        AggregateSettings {
            concurrency: 16,
            timeout: std::time::Duration::from_secs(10),
            cache_ttl: std::time::Duration::from_secs(2),
            continue_key: None,
        }
    }
}

/// Backstage's `kubernetes.serviceLocatorMethod.type`: which clusters an entity's objects
/// are looked for in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceLocator {
    /// `multiTenant` (the default): every cluster.
    #[default]
    MultiTenant,
    /// `singleTenant`: the cluster the entity's `backstage.io/kubernetes-cluster`
    /// annotation names (every cluster without the annotation).
    SingleTenant,
    /// `catalogRelation`: the clusters the entity `dependsOn` (`resource:<ns>/<cluster>`).
    CatalogRelation,
}

/// A custom resource type Backstage lists for an entity (`{group, apiVersion, plural}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct CustomResourceRef {
    /// The API group (`argoproj.io`).
    pub group: String,
    /// The version (`v1alpha1`).
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// The resource's plural (`rollouts`).
    pub plural: String,
}

/// One of the object types Backstage lists for an entity: its `objectType` name and where
/// it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectType {
    /// The name in answers and in `kubernetes.objectTypes` (`pods`, `deployments`, ...).
    pub object_type: String,
    /// The API group, "" for the core group.
    pub group: String,
    /// The version.
    pub api_version: String,
    /// The resource's plural.
    pub plural: String,
}

/// The entity routes' settings (SPEC §10).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackstageSettings {
    /// `kubeplex.backstage.catalogUrl`, else the app-config's `backend.baseUrl` +
    /// `/api/catalog`; `None`: entity refs cannot be resolved (and a posted entity is
    /// trusted as sent).
    pub catalog_url: Option<String>,
    /// `kubernetes.serviceLocatorMethod.type`.
    pub service_locator: ServiceLocator,
    /// The object types to list, in Backstage's order (`kubernetes.objectTypes` picks from
    /// every type Backstage knows; `apiVersionOverrides` applied); `None`: the defaults.
    pub object_types: Option<Vec<ObjectType>>,
    /// `kubernetes.customResources`.
    pub custom_resources: Vec<CustomResourceRef>,
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
    /// `bodyIdleTimeout`: the longest pause inside a request body being uploaded, default
    /// 60s; a body that stalls longer is abandoned with a 408.
    pub body_idle_timeout: Duration,
    /// `maxHeaderBytes`, default 65536.
    pub max_header_bytes: usize,
    /// `shutdownTimeout`, default 30s.
    pub shutdown_timeout: Duration,
    /// `kubeplex.server.cors`, else the app-config's `backend.cors`; `None`: no CORS.
    pub cors: Option<CorsSettings>,
    /// `probeInterval`: how often each cluster's `/version` is probed in the background
    /// for `/readyz`, the status page and `kubeplex_cluster_up`; default 10s, 0 turns the
    /// probes off.
    pub probe_interval: Duration,
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
            body_idle_timeout: Duration::from_secs(60),
            max_header_bytes: 65536,
            shutdown_timeout: Duration::from_secs(30),
            cors: None,
            probe_interval: Duration::from_secs(10),
            workers: None,
            tls: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// CORS for browser callers, shaped like Backstage's `backend.cors` (read from there as
/// is, or from `kubeplex.server.cors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsSettings {
    /// `origin`: glob patterns matched against the whole `Origin`, ignoring case.
    pub origins: Vec<String>,
    /// `methods`, default `GET,HEAD,PUT,PATCH,POST,DELETE`.
    pub methods: Vec<String>,
    /// `allowedHeaders`; `None`: the headers a preflight asks for.
    pub allowed_headers: Option<Vec<String>>,
    /// `exposedHeaders`.
    pub exposed_headers: Vec<String>,
    /// `credentials`.
    pub credentials: bool,
    /// `maxAge`, in seconds.
    pub max_age: Option<u64>,
    /// `optionsSuccessStatus`, default 204.
    pub options_success_status: u16,
}

impl Default for CorsSettings {
    fn default() -> Self {
        CorsSettings {
            origins: Vec::new(),
            methods: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
                .map(String::from)
                .to_vec(),
            allowed_headers: None,
            exposed_headers: Vec::new(),
            credentials: false,
            max_age: None,
            options_success_status: 204,
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

/// `kubeplex.auth`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthSettings {
    /// `mode`, default `none`.
    pub mode: AuthMode,
    /// `dangerouslyAllowUnauthenticated`: the operator accepts that, in mode `none`, anyone
    /// who reaches a non-loopback listener uses the clusters' server-side credentials.
    pub dangerously_allow_unauthenticated: bool,
    /// How portal tokens are verified in mode `jwt`.
    pub jwt: JwtSettings,
    /// `policy`: ordered rules, first match wins; default deny in mode `jwt`.
    pub policy: Vec<PolicyRule>,
}

/// `kubeplex.auth.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Anyone who reaches kubeplex may use it; the caller's `Authorization` is their
    /// Kubernetes token.
    #[default]
    None,
    /// The caller's `Authorization: Bearer` is a portal token, verified (SPEC §5).
    Jwt,
}

/// The token verification settings of mode `jwt`.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    /// `jwksUrl`: the portal's JWKS (Backstage: `{backend}/api/auth/.well-known/jwks.json`).
    pub jwks_url: Option<String>,
    /// `jwks`: an inline JWKS document.
    pub jwks: Option<serde_json::Value>,
    /// `publicKeys`: PEM public keys (RSA, EC P-256/P-384, Ed25519).
    pub public_keys: Vec<crate::redact::Secret>,
    /// `secrets`: HS256 secrets of service-to-service tokens (UTF-8 bytes).
    pub secrets: Vec<crate::redact::Secret>,
    /// `issuer`: accepted `iss` values (none: not checked).
    pub issuer: Vec<String>,
    /// `audience`: accepted `aud` values (none: not checked).
    pub audience: Vec<String>,
    /// `algorithms`: accepted algorithms (none: each key's own).
    pub algorithms: Vec<String>,
    /// `leeway`: clock skew allowed for `exp` and `nbf`, default 30s.
    pub leeway: Duration,
    /// `requiredClaims`: claims every token must carry (besides `exp` and `sub`).
    pub required_claims: Vec<String>,
    /// `impersonateExtraClaims`: claims sent as `Impersonate-Extra-<claim>` to clusters
    /// with `impersonate: true`.
    pub impersonate_extra_claims: Vec<String>,
    /// Backstage's `backend.auth.externalAccess` entries of `type: static`.
    pub static_tokens: Vec<StaticToken>,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            jwks_url: None,
            jwks: None,
            public_keys: Vec::new(),
            secrets: Vec::new(),
            issuer: Vec::new(),
            audience: Vec::new(),
            algorithms: Vec::new(),
            leeway: Duration::from_secs(30),
            required_claims: Vec::new(),
            impersonate_extra_claims: Vec::new(),
            static_tokens: Vec::new(),
        }
    }
}

/// A Backstage external-access static token and the subject it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticToken {
    /// `options.token`.
    pub token: crate::redact::Secret,
    /// `options.subject`.
    pub subject: String,
}

/// The verbs a policy rule may name: the API server's, with the streaming subresources as
/// verbs of their own.
pub const POLICY_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "exec",
    "attach",
    "portforward",
    "proxy",
    "log",
];

/// One policy rule: subjects × clusters × namespaces × verbs, allow or deny.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRule {
    /// Globs over the token's `sub` and each of its `ent`.
    pub subjects: Vec<String>,
    /// Globs over cluster names and keys.
    pub clusters: Vec<String>,
    /// Globs over namespaces ("" for cluster-scoped requests).
    pub namespaces: Vec<String>,
    /// Verbs (`get`, `list`, ..., `exec`, `proxy`, `log`) or `*`.
    pub verbs: Vec<String>,
    /// `effect`.
    pub allow: bool,
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
    pub service_account_token: Option<crate::redact::Secret>,
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
    /// Backstage's `dashboardParameters`, as written.
    pub dashboard_parameters: Option<serde_json::Value>,
    /// Backstage's per-cluster `customResources`.
    pub custom_resources: Option<Vec<CustomResourceRef>>,
    /// `impersonate`: with the server-side credential, act as the portal user (SPEC §5).
    pub impersonate: bool,
    /// `http2: false`: speak HTTP/1.1 to this cluster even when it offers HTTP/2.
    pub http1_only: bool,
}

/// A `catalog` locator. Its `Debug` output shows the URL without userinfo, query or
/// fragment (an `?access_token=` may be there) and the token redacted.
#[derive(Clone, PartialEq)]
pub struct CatalogConfig {
    /// Base URL of the catalog API, e.g. `https://backstage.example.com/api/catalog`.
    pub url: String,
    /// Bearer token for the catalog, if any.
    pub token: Option<crate::redact::Secret>,
    /// Refresh interval, default 60s.
    pub refresh_interval: Duration,
    /// `dangerouslyAllowClusterUrls`: patterns (`[scheme://]host[:port]`, `*` one DNS label
    /// or IPv4 octet) of cluster URLs exempt from the guard (`crate::url_guard`).
    pub dangerously_allow_cluster_urls: Vec<String>,
    /// `allowSkipTLSVerify`: whether the `kubernetes.io/skip-tls-verify` annotation takes
    /// effect (default false: it is ignored with a warning).
    pub allow_skip_tls_verify: bool,
}

impl std::fmt::Debug for CatalogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogConfig")
            .field("url", &crate::redact::url_text(&self.url))
            .field("token", &self.token)
            .field("refresh_interval", &self.refresh_interval)
            .field(
                "dangerously_allow_cluster_urls",
                &self.dangerously_allow_cluster_urls,
            )
            .field("allow_skip_tls_verify", &self.allow_skip_tls_verify)
            .finish()
    }
}
