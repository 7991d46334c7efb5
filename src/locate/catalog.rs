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
//! Backstage's SSRF guard applies to every cluster URL: https only, no credentials in the
//! URL, no loopback / private / link-local / otherwise non-public address, literal or
//! resolved through DNS, unless the host matches a `dangerouslyAllowClusterUrls` pattern
//! (`127.0.0.1`, `*.example.com`, or a glob over the whole URL such as
//! `https://10.0.0.*:6443`). A cluster that fails the guard is skipped with a warning.
//!
//! The list is refreshed every `refreshInterval` by the background owner
//! (`crate::control`), which calls [`fetch`]; a refresh that fails keeps the last good list
//! and logs why.

use crate::cluster::ClusterSpec;
use crate::config::CatalogConfig;
use crate::tls::TlsSettings;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Annotation: the API server URL.
pub const API_SERVER: &str = "kubernetes.io/api-server";
/// Annotation: base64 PEM of the API server's CA.
pub const API_SERVER_CA: &str = "kubernetes.io/api-server-certificate-authority";
/// Annotation: Backstage `authProvider`.
pub const AUTH_PROVIDER: &str = "kubernetes.io/auth-provider";
/// Annotation: Backstage `oidcTokenProvider`.
pub const OIDC_TOKEN_PROVIDER: &str = "kubernetes.io/oidc-token-provider";
/// Annotation: `"true"` skips server certificate verification.
pub const SKIP_TLS_VERIFY: &str = "kubernetes.io/skip-tls-verify";
/// Annotation: Backstage `skipMetricsLookup` (kubeplex makes no metrics calls).
pub const SKIP_METRICS_LOOKUP: &str = "kubernetes.io/skip-metrics-lookup";
/// Annotation: Backstage `dashboardUrl`.
pub const DASHBOARD_URL: &str = "kubernetes.io/dashboard-url";
/// Annotation: Backstage `dashboardApp`.
pub const DASHBOARD_APP: &str = "kubernetes.io/dashboard-app";

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
pub async fn fetch(id: &str, cfg: &CatalogConfig) -> Result<Vec<ClusterSpec>, String> {
    let entities = fetch_entities(cfg).await?;
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
        match entity_spec(entity, &cfg.dangerously_allow_cluster_urls).await {
            Ok(spec) => out.push(spec),
            Err(why) => {
                tracing::warn!(locator = id, cluster = %name, "skipping catalog cluster: {why}")
            }
        }
    }
    Ok(out)
}

async fn fetch_entities(cfg: &CatalogConfig) -> Result<Vec<serde_json::Value>, String> {
    let base = url::Url::parse(&cfg.url).map_err(|e| format!("catalog URL: {e}"))?;
    let connector = crate::upstream::connector::cluster_connector(
        &base,
        &TlsSettings::default(),
        Duration::from_secs(10),
    )?
    .limit(0);
    let client = awc::Client::builder()
        .connector(connector)
        .timeout(TIMEOUT)
        .finish();
    let mut endpoint = base.clone();
    endpoint
        .path_segments_mut()
        .map_err(|_| "catalog URL cannot have a path".to_string())?
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
            req = req.bearer_auth(t);
        }
        let mut res = req
            .send()
            .await
            .map_err(|e| crate::tls::describe::describe_send_error(&e))?;
        if !res.status().is_success() {
            return Err(format!("the catalog answered {}", res.status()));
        }
        let body = res
            .body()
            .limit(MAX_BODY)
            .await
            .map_err(|e| format!("reading the catalog's answer: {e}"))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("the catalog's answer is not JSON: {e}"))?;
        if let serde_json::Value::Array(all) = v {
            // `/entities`-style answer: everything at once.
            items.extend(all);
            return Ok(items);
        }
        let page: Page = serde_json::from_value(v)
            .map_err(|e| format!("the catalog's answer is not an entity page: {e}"))?;
        items.extend(page.items);
        match page.page_info.and_then(|p| p.next_cursor) {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok(items),
        }
    }
    Err(format!("the catalog returned more than {MAX_PAGES} pages"))
}

async fn entity_spec(e: Entity, allow: &[String]) -> Result<ClusterSpec, String> {
    let a = &e.metadata.annotations;
    let get = |k: &str| {
        a.get(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let raw_url = get(API_SERVER).ok_or_else(|| format!("no {API_SERVER} annotation"))?;
    let url = check_cluster_url(&raw_url, allow).await?;
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
    spec.tls.ca_pem = ca_pem;
    spec.tls.skip_verify = get(SKIP_TLS_VERIFY).as_deref() == Some("true");
    // Build the TLS configuration once now, so a bad CA is reported here, not per request.
    if spec.url.scheme() == "https" {
        crate::tls::client::cluster_client_config(&spec.url, &spec.tls)?;
    }
    Ok(spec)
}

/// Backstage's guard for a catalog-provided cluster URL (see the module doc).
pub async fn check_cluster_url(raw: &str, allow: &[String]) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|_| format!("not a valid URL: {raw:?}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the cluster URL must not contain credentials".into());
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the cluster URL must use https".into());
    }
    let host = url.host().ok_or("the cluster URL has no host")?;
    if allowed(&url, allow) {
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err(format!(
            "the cluster URL must use https (host {} is not in dangerouslyAllowClusterUrls)",
            host
        ));
    }
    match host {
        url::Host::Ipv4(ip) if non_public(IpAddr::V4(ip)) => Err(format!(
            "the cluster URL uses the non-public address {ip} (not in dangerouslyAllowClusterUrls)"
        )),
        url::Host::Ipv6(ip) if non_public(IpAddr::V6(ip)) => Err(format!(
            "the cluster URL uses the non-public address {ip} (not in dangerouslyAllowClusterUrls)"
        )),
        url::Host::Domain(d) => {
            let port = url.port_or_known_default().unwrap_or(443);
            let addrs = tokio::net::lookup_host((d, port))
                .await
                .map_err(|e| format!("cannot resolve {d}: {e}"))?;
            for a in addrs {
                if non_public(a.ip()) {
                    return Err(format!(
                        "the cluster host {d} resolves to the non-public address {} \
                         (not in dangerouslyAllowClusterUrls)",
                        a.ip()
                    ));
                }
            }
            Ok(url)
        }
        _ => Ok(url),
    }
}

/// Whether a `dangerouslyAllowClusterUrls` pattern matches: a host name or address
/// (`127.0.0.1`, `*.example.com` also matching `example.com`), or, when the pattern has a
/// scheme, a glob (`*` matches anything) over the whole URL.
pub fn allowed(url: &url::Url, patterns: &[String]) -> bool {
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    patterns.iter().any(|p| {
        let p = p.trim().to_ascii_lowercase();
        if p.contains("://") {
            let full = url.as_str().to_ascii_lowercase();
            glob(&p, &full) || glob(&p, full.trim_end_matches('/'))
        } else if let Some(suffix) = p.strip_prefix("*.") {
            host == suffix || host.ends_with(&format!(".{suffix}"))
        } else {
            host == p.trim_start_matches('[').trim_end_matches(']')
        }
    })
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Whether an address is anything but a public unicast one: loopback, private,
/// link-local, unique-local, CGNAT, multicast, unspecified, broadcast, documentation,
/// benchmarking, reserved, or an IPv4-mapped/NAT64 form of one.
pub fn non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || (s[0] == 0x2002)
                || (s[0] == 0x2001 && s[1] == 0)
                || s[..6] == [0, 0, 0, 0, 0, 0]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn allow_patterns() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(allowed(&u("http://127.0.0.1:6443"), &p(&["127.0.0.1"])));
        assert!(allowed(&u("https://[::1]:6443"), &p(&["::1"])));
        assert!(allowed(
            &u("https://a.b.example.com"),
            &p(&["*.example.com"])
        ));
        assert!(allowed(&u("https://example.com"), &p(&["*.example.com"])));
        assert!(!allowed(
            &u("https://badexample.com"),
            &p(&["*.example.com"])
        ));
        assert!(allowed(
            &u("https://10.0.0.7:6443/"),
            &p(&["https://10.0.0.*:6443"])
        ));
        assert!(!allowed(
            &u("https://10.0.1.7:6443/"),
            &p(&["https://10.0.0.*:6443"])
        ));
        assert!(!allowed(&u("https://127.0.0.1"), &[]));
    }

    #[test]
    fn non_public_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[actix_web::test]
    async fn guard_refuses_unsafe_urls() {
        let none: Vec<String> = Vec::new();
        for (url, why) in [
            ("http://93.184.216.34", "https"),
            ("https://user:pw@93.184.216.34", "credentials"),
            ("https://127.0.0.1:6443", "non-public"),
            ("https://[::1]:6443", "non-public"),
            ("https://169.254.169.254", "non-public"),
            ("https://localhost:6443", "resolves to the non-public"),
            ("ftp://93.184.216.34", "https"),
            ("not a url", "not a valid URL"),
        ] {
            let e = check_cluster_url(url, &none).await.unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        assert!(check_cluster_url("https://93.184.216.34:6443", &none)
            .await
            .is_ok());
        let allow = vec!["localhost".to_string()];
        assert!(check_cluster_url("http://localhost:6443", &allow)
            .await
            .is_ok());
        // Credentials stay refused even for allowed hosts.
        assert!(check_cluster_url("https://a:b@localhost", &allow)
            .await
            .is_err());
    }
}
