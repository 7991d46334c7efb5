//! The `catalog` locator: clusters from a Backstage catalog's HTTP API, as Backstage's
//! `CatalogClusterLocator` finds them: entities of `kind: Resource` with
//! `spec.type: kubernetes-cluster` and the `kubernetes.io/api-server`,
//! `kubernetes.io/api-server-certificate-authority` and `kubernetes.io/auth-provider`
//! annotations, read with the configured catalog token
//! (`GET {url}/entities/by-query?filter=...`, following `pageInfo.nextCursor`).
//!
//! Each entity becomes a cluster named `metadata.name` (title `metadata.title`), with the
//! annotations `kubernetes.io/api-server` (URL), `-certificate-authority` (base64 PEM CA),
//! `auth-provider`, `oidc-token-provider`, `skip-tls-verify`, `dashboard-url` and
//! `dashboard-app`. (`skip-metrics-lookup` is read by Backstage for its metrics calls;
//! kubeplex makes none.) Catalog clusters never get a server-side credential: an entity
//! with `authProvider: serviceAccount` is skipped, since it would send kubeplex's own
//! service-account token to a URL that anyone who can edit the catalog chooses.
//!
//! Backstage's SSRF guard applies to every cluster URL ([`crate::url_guard`]): https only,
//! no credentials in the URL, no loopback / private / link-local / otherwise non-public
//! address, literal or resolved through DNS, unless the URL's scheme, host and port match a
//! `dangerouslyAllowClusterUrls` pattern (`127.0.0.1`, `*.example.com`,
//! `https://10.0.0.*:6443`). A cluster that fails the guard is skipped with a warning. Each
//! cluster also carries a [`crate::url_guard::ConnectGuard`], so the address every
//! connection actually reaches is checked again.
//!
//! The `kubernetes.io/skip-tls-verify` annotation takes effect only when the locator sets
//! `allowSkipTLSVerify: true`; otherwise it is ignored with a warning naming the cluster.
//!
//! The list is refreshed every `refreshInterval` by the background owner
//! (`crate::control`), which calls [`fetch`]; a refresh that fails keeps the last good list
//! and logs why.

use crate::cluster::ClusterSpec;
use crate::config::CatalogConfig;
use crate::tls::TlsSettings;
use crate::url_guard::{self, ConnectGuard};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Annotation: the API server URL.
pub(crate) const API_SERVER: &str = "kubernetes.io/api-server";
/// Annotation: base64 PEM of the API server's CA.
pub(crate) const API_SERVER_CA: &str = "kubernetes.io/api-server-certificate-authority";
/// Annotation: Backstage `authProvider`.
pub(crate) const AUTH_PROVIDER: &str = "kubernetes.io/auth-provider";
/// Annotation: Backstage `oidcTokenProvider`.
pub(crate) const OIDC_TOKEN_PROVIDER: &str = "kubernetes.io/oidc-token-provider";
/// Annotation: `"true"` skips server certificate verification.
pub(crate) const SKIP_TLS_VERIFY: &str = "kubernetes.io/skip-tls-verify";
/// Annotation: Backstage `dashboardUrl`.
pub(crate) const DASHBOARD_URL: &str = "kubernetes.io/dashboard-url";
/// Annotation: Backstage `dashboardApp`.
pub(crate) const DASHBOARD_APP: &str = "kubernetes.io/dashboard-app";
/// `"true"`: no pod metrics reads for this cluster.
pub(crate) const SKIP_METRICS_LOOKUP: &str = "kubernetes.io/skip-metrics-lookup";

/// The catalog filter Backstage's locator uses.
pub fn filter() -> String {
    format!(
        "kind=Resource,spec.type=kubernetes-cluster,metadata.annotations.{API_SERVER},\
         metadata.annotations.{API_SERVER_CA},metadata.annotations.{AUTH_PROVIDER}"
    )
}

const PAGE_LIMIT: usize = 500;
const MAX_PAGES: usize = 200;
const MAX_BODY: usize = 64 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Locates the catalog's clusters once (at start and at each configuration reload). When
/// the catalog cannot be read, `previous` (the locator's clusters before a reload; none at
/// first start) is kept, the failure is logged, and the refresher tries again.
pub async fn locate(
    id: &str,
    cfg: &CatalogConfig,
    previous: Option<&[ClusterSpec]>,
) -> Vec<ClusterSpec> {
    match fetch(id, cfg).await {
        Ok(list) => list,
        Err(why) => {
            let kept = previous.map(<[ClusterSpec]>::to_vec).unwrap_or_default();
            tracing::error!(
                locator = id,
                kept = kept.len(),
                "cannot read the catalog: {why}; keeping the last good list"
            );
            kept
        }
    }
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<serde_json::Value>,
    #[serde(default, rename = "pageInfo")]
    page_info: Option<PageInfo>,
}

#[derive(Deserialize)]
struct PageInfo {
    #[serde(default, rename = "nextCursor")]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Entity {
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// Reads every cluster entity from the catalog and turns the acceptable ones into specs.
pub async fn fetch(id: &str, cfg: &CatalogConfig) -> Result<Vec<ClusterSpec>, CatalogError> {
    let entities = fetch_entities(cfg).await?;
    let guard = Arc::new(ConnectGuard::new(&cfg.dangerously_allow_cluster_urls));
    let mut out = Vec::new();
    for e in entities {
        let entity: Entity = match serde_json::from_value(e) {
            Ok(e) => e,
            Err(err) => {
                tracing::warn!(
                    locator = id,
                    "skipping a catalog entity without metadata.name: {err}"
                );
                continue;
            }
        };
        let name = entity.metadata.name.clone();
        if out.iter().any(|s: &ClusterSpec| s.name == name) {
            tracing::warn!(locator = id, cluster = %name, "skipping a second catalog cluster with the same name");
            continue;
        }
        match entity_spec(id, entity, cfg, &guard).await {
            Ok(spec) => out.push(spec),
            Err(why) => {
                tracing::warn!(locator = id, cluster = %name, "skipping catalog cluster: {why}")
            }
        }
    }
    Ok(out)
}

/// Why the catalog could not be read. Never carries the catalog URL's query or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The catalog URL does not parse (the URL itself is not repeated: it may hold a token).
    #[error("catalog URL: {0}")]
    Url(url::ParseError),
    /// The catalog URL cannot take a path (`mailto:`-like).
    #[error("catalog URL cannot have a path")]
    NotABase,
    /// The catalog's TLS configuration could not be built.
    #[error("catalog TLS: {0}")]
    Tls(String),
    /// Connecting, sending or reading the response head failed.
    #[error("{0}")]
    Request(String),
    /// The catalog answered with a non-success status.
    #[error("the catalog answered {0}")]
    Status(awc::http::StatusCode),
    /// The body could not be read.
    #[error("reading the catalog's answer: {0}")]
    Body(String),
    /// The body is not JSON.
    #[error("the catalog's answer is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an entity page.
    #[error("the catalog's answer is not an entity page: {0}")]
    NotAPage(String),
    /// Paging did not end.
    #[error("the catalog returned more than {0} pages")]
    TooManyPages(usize),
}

async fn fetch_entities(cfg: &CatalogConfig) -> Result<Vec<serde_json::Value>, CatalogError> {
    let base = url::Url::parse(&cfg.url).map_err(CatalogError::Url)?;
    let connector = crate::upstream::connector::cluster_connector(
        &base,
        &TlsSettings::default(),
        Duration::from_secs(10),
    )
    .map_err(|e| CatalogError::Tls(e.to_string()))?
    .limit(0);
    let client = awc::Client::builder()
        .connector(connector)
        .timeout(TIMEOUT)
        .finish();
    let mut endpoint = base.clone();
    endpoint
        .path_segments_mut()
        .map_err(|_| CatalogError::NotABase)?
        .pop_if_empty()
        .extend(["entities", "by-query"]);
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut u = endpoint.clone();
        {
            let mut q = u.query_pairs_mut();
            match &cursor {
                Some(c) => q.append_pair("cursor", c),
                None => q.append_pair("filter", &filter()),
            };
            q.append_pair("limit", &PAGE_LIMIT.to_string());
        }
        let mut req = client
            .get(u.as_str())
            .insert_header(("Accept", "application/json"));
        if let Some(t) = &cfg.token {
            req = req.bearer_auth(t.expose());
        }
        let mut res = req
            .send()
            .await
            .map_err(|e| CatalogError::Request(crate::tls::describe::describe_send_error(&e)))?;
        if !res.status().is_success() {
            return Err(CatalogError::Status(res.status()));
        }
        let body = res
            .body()
            .limit(MAX_BODY)
            .await
            .map_err(|e| CatalogError::Body(e.to_string()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| CatalogError::NotJson(e.to_string()))?;
        if let serde_json::Value::Array(all) = v {
            // `/entities`-style answer: everything at once.
            items.extend(all);
            return Ok(items);
        }
        let page: Page =
            serde_json::from_value(v).map_err(|e| CatalogError::NotAPage(e.to_string()))?;
        items.extend(page.items);
        match page.page_info.and_then(|p| p.next_cursor) {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok(items),
        }
    }
    Err(CatalogError::TooManyPages(MAX_PAGES))
}

async fn entity_spec(
    id: &str,
    e: Entity,
    cfg: &CatalogConfig,
    guard: &Arc<ConnectGuard>,
) -> Result<ClusterSpec, String> {
    let a = &e.metadata.annotations;
    let get = |k: &str| {
        a.get(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let raw_url = get(API_SERVER).ok_or_else(|| format!("no {API_SERVER} annotation"))?;
    let url = url_guard::check_cluster_url(&raw_url, &cfg.dangerously_allow_cluster_urls).await?;
    let auth_provider = get(AUTH_PROVIDER);
    if auth_provider.as_deref() == Some("serviceAccount") {
        return Err(
            "authProvider 'serviceAccount' is not supported by the catalog locator \
             (it would send kubeplex's own token to a catalog-chosen URL)"
                .into(),
        );
    }
    let ca_pem = match get(API_SERVER_CA) {
        Some(b64) => Some(
            crate::tls::pem::decode_base64(&b64).map_err(|e| format!("{API_SERVER_CA}: {e}"))?,
        ),
        None => None,
    };
    let mut spec = ClusterSpec::new(e.metadata.name, url);
    spec.title = e.metadata.title;
    spec.auth_provider = auth_provider;
    spec.oidc_token_provider = get(OIDC_TOKEN_PROVIDER);
    spec.dashboard_url = get(DASHBOARD_URL);
    spec.dashboard_app = get(DASHBOARD_APP);
    spec.backstage.skip_metrics_lookup = get(SKIP_METRICS_LOOKUP).as_deref() == Some("true");
    spec.tls.ca_pem = ca_pem;
    if get(SKIP_TLS_VERIFY).as_deref() == Some("true") {
        if cfg.allow_skip_tls_verify {
            spec.tls.skip_verify = true;
        } else {
            tracing::warn!(
                locator = id,
                cluster = %spec.name,
                "ignoring the {SKIP_TLS_VERIFY} annotation of catalog cluster {}: \
                 the catalog locator does not set allowSkipTLSVerify: true",
                spec.name
            );
        }
    }
    spec.connect_guard = Some(guard.clone());
    // Build the TLS configuration once now, so a bad CA is reported here, not per request.
    if spec.url.scheme() == "https" {
        crate::tls::client::cluster_client_config(&spec.url, &spec.tls)
            .map_err(|e| e.to_string())?;
    }
    Ok(spec)
}
