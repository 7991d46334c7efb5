//! The `kubernetes:` block: `clusterLocatorMethods[]` with their resolved ids, and every
//! locator type's fields, validated. Backstage's other keys of the block
//! ([`BACKSTAGE_KUBERNETES_KEYS`]) are accepted and ignored; any other key is a problem
//! (most likely a typo, such as `clusterLocatorMethod`). No locator at all is a problem
//! too: kubeplex would start with no clusters.

use super::read::{Obj, Problems};
use super::server::readable;
use super::tls_material;
use super::{CatalogConfig, ClusterConfig, LocatorConfig, LocatorKind};
use crate::sim::config::{
    default_backends, parse_backend, SeedSource, SimClusterConfig, SimFaults, SimGrant,
    SimImpersonation, SimTls, SimToken, EMBEDDED_SEEDS,
};
use crate::sim::kinds::CustomType;
use crate::url_guard::AllowPattern;
use std::collections::HashMap;
use std::time::Duration;

/// The locator types, in the order messages list them.
pub(crate) const LOCATOR_TYPES: &[&str] = &[
    "config",
    "localKubectlProxy",
    "kubeconfig",
    "catalog",
    "simulated",
];

/// Verbs a simulated cluster's token may be limited to.
pub(crate) const SIM_VERBS: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete", "proxy", "exec",
];

/// Keys of a `config` locator's cluster: Backstage's and kubeplex's.
pub(crate) const CLUSTER_KEYS: &[&str] = &[
    "name",
    "url",
    "title",
    "authProvider",
    "authMetadata",
    "serviceAccountToken",
    "oidcTokenProvider",
    "caData",
    "caFile",
    "skipTLSVerify",
    "skipMetricsLookup",
    "dashboardUrl",
    "dashboardApp",
    "dashboardParameters",
    "customResources",
    "tokenFile",
    "clientCertData",
    "clientKeyData",
    "clientCertFile",
    "clientKeyFile",
    "tlsServerName",
    "impersonate",
    "http2",
];

/// The top-level keys of Backstage's `kubernetes:` block besides `clusterLocatorMethods`
/// (the Kubernetes backend's and frontend's config schemas), accepted and ignored.
pub(crate) const BACKSTAGE_KUBERNETES_KEYS: &[&str] = &[
    "serviceLocatorMethod",
    "clusterLocatorContinueOnError",
    "customResources",
    "objectTypes",
    "apiVersionOverrides",
    "googleServiceAccountCredentials",
    "proxy",
    "auth",
    "frontend",
    "podExecTerminal",
];

/// What locator parsing needs besides the tree.
pub(crate) struct Ctx<'a> {
    /// `$HOME`, for `~/` paths.
    pub home: Option<&'a str>,
    /// The catalog URL implied by a Backstage `backend.baseUrl`, if any.
    pub backstage_catalog: Option<String>,
    /// `kubeplex.dangerouslySkipTLSVerifyWithCredentials`.
    pub allow_skip_tls_verify_with_credentials: bool,
}

/// Reads `kubernetes.clusterLocatorMethods` (Backstage's other keys of `kubernetes:` are
/// ignored, unknown keys are problems). No locator at all is a problem.
pub(crate) fn read_kubernetes(k: &Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> Vec<LocatorConfig> {
    let before = p.0.len();
    k.deny_unknown_except(&["clusterLocatorMethods"], BACKSTAGE_KUBERNETES_KEYS, p);
    let Some(methods) = k.list("clusterLocatorMethods", p) else {
        if p.0.len() == before && !k.has("clusterLocatorMethods") {
            k.problem("clusterLocatorMethods", NO_LOCATORS, p);
        }
        return Vec::new();
    };
    if methods.is_empty() {
        k.problem("clusterLocatorMethods", NO_LOCATORS, p);
    }
    let mut out = Vec::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut type_counts: HashMap<&'static str, usize> = HashMap::new();
    for (path, node) in methods {
        let Some(obj) = Obj::new(node, &path, p) else {
            continue;
        };
        let Some(ty) = obj.required_string("type", p) else {
            continue;
        };
        let Some(ty) = LOCATOR_TYPES.iter().copied().find(|t| *t == ty) else {
            obj.problem(
                "type",
                format!(
                    "unknown locator type {ty:?} (expected {})",
                    LOCATOR_TYPES.join(", ")
                ),
                p,
            );
            continue;
        };
        let id = match obj.string("id", p) {
            Some(id) => {
                if id.is_empty() {
                    obj.problem("id", "must not be empty", p);
                } else if id.contains([':', '/', ',']) || id.chars().any(char::is_whitespace) {
                    obj.problem(
                        "id",
                        format!("must not contain ':', '/', ',' or spaces, got {id:?}"),
                        p,
                    );
                }
                Some(id)
            }
            None if obj.has("id") => None,
            None => {
                let n = type_counts.entry(ty).or_default();
                *n += 1;
                Some(if *n == 1 {
                    ty.to_string()
                } else {
                    format!("{ty}-{n}")
                })
            }
        };
        if let Some(id) = &id {
            if let Some(first) = ids.get(id) {
                let key = if obj.has("id") { "id" } else { "type" };
                obj.problem(
                    key,
                    format!("duplicate locator id {id:?} (also the id of {first})"),
                    p,
                );
            } else {
                ids.insert(id.clone(), path.clone());
            }
        }
        let kind = match ty {
            "config" => read_config(&obj, ctx, p),
            "localKubectlProxy" => {
                obj.deny_unknown(&["type", "id"], p);
                Some(LocatorKind::LocalKubectlProxy)
            }
            "kubeconfig" => read_kubeconfig(&obj, ctx, p),
            "catalog" => read_catalog(&obj, ctx, p),
            _ => read_simulated(&obj, ctx, p),
        };
        if let (Some(id), Some(kind)) = (id, kind) {
            out.push(LocatorConfig { id, kind });
        }
    }
    out
}

/// The problem of a configuration without any cluster locator.
pub(crate) const NO_LOCATORS: &str =
    "required: no cluster locators are configured, so kubeplex would serve no clusters (add e.g. - type: config)";

/// Records `duplicate cluster name` for the second and later clusters of one locator with
/// the same name (whether or not the clusters have other problems).
fn check_unique_names(clusters: &[Obj<'_>], p: &mut Problems) {
    let mut seen = std::collections::HashSet::new();
    for obj in clusters {
        let Some(name) = obj.get("name").and_then(|n| match &n.value {
            super::tree::Value::Str(s) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        }) else {
            continue;
        };
        if !seen.insert(name) {
            obj.problem(
                "name",
                format!("duplicate cluster name {name:?} in this locator"),
                p,
            );
        }
    }
}

/// The required `clusters` list of a `config` or `simulated` locator (`type`, `id` and
/// `clusters` only), each entry read by `read`, names unique within the locator.
fn read_cluster_list<T>(
    obj: &Obj<'_>,
    ctx: &Ctx<'_>,
    p: &mut Problems,
    read: impl Fn(&Obj<'_>, &Ctx<'_>, &mut Problems) -> Option<T>,
) -> Option<Vec<T>> {
    obj.deny_unknown(&["type", "id", "clusters"], p);
    if !obj.has("clusters") {
        obj.problem("clusters", "required", p);
        return None;
    }
    let mut clusters = Vec::new();
    let mut names = Vec::new();
    for (path, node) in obj.list("clusters", p)? {
        let Some(c) = Obj::new(node, &path, p) else {
            continue;
        };
        if let Some(cluster) = read(&c, ctx, p) {
            clusters.push(cluster);
        }
        names.push(c);
    }
    check_unique_names(&names, p);
    Some(clusters)
}

fn read_config(obj: &Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> Option<LocatorKind> {
    let clusters = read_cluster_list(obj, ctx, p, read_cluster)?;
    Some(LocatorKind::Config { clusters })
}

/// Checks a cluster URL: http or https with a host, no credentials, query or fragment.
pub(crate) fn check_url(s: &str) -> Result<url::Url, String> {
    match url::Url::parse(s) {
        Ok(u) if u.has_host() && !matches!(u.scheme(), "http" | "https") => Err(format!(
            "scheme must be http or https, got {:?}",
            u.scheme()
        )),
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {
            if !u.username().is_empty() || u.password().is_some() {
                Err("must not contain credentials (user:password@)".into())
            } else if u.query().is_some() || u.fragment().is_some() {
                Err(format!(
                    "must not have a query or fragment: {:?}",
                    crate::redact::url_text(s)
                ))
            } else {
                Ok(u)
            }
        }
        // Shown without userinfo, query or fragment: those may carry a token.
        _ => Err(format!("not a URL: {:?}", crate::redact::url_text(s))),
    }
}

fn read_cluster(c: &Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> Option<ClusterConfig> {
    c.deny_unknown(CLUSTER_KEYS, p);
    let name = c.required_string("name", p);
    let auth_provider = c.string("authProvider", p);
    let in_cluster = auth_provider.as_deref() == Some("serviceAccount");
    let url = if !c.has("url") && in_cluster {
        // In-cluster: the URL comes from KUBERNETES_SERVICE_HOST/PORT at locate time.
        Some(String::new())
    } else {
        c.required_string("url", p)
            .and_then(|u| match check_url(&u) {
                Ok(_) => Some(u),
                Err(m) => {
                    c.problem("url", m, p);
                    None
                }
            })
    };
    let oidc_token_provider = c.string("oidcTokenProvider", p);
    if auth_provider.as_deref() == Some("oidc") && oidc_token_provider.is_none() {
        c.problem("oidcTokenProvider", "required when authProvider is oidc", p);
    }
    let service_account_token = c.string("serviceAccountToken", p).map(Into::into);
    let token_file = readable(c, "tokenFile", ctx.home, p, false);
    if c.has("serviceAccountToken") && c.has("tokenFile") {
        c.problem(
            "tokenFile",
            "serviceAccountToken and tokenFile are both set; use one",
            p,
        );
    }
    let tls_server_name = c.string("tlsServerName", p);
    if let Some(n) = &tls_server_name {
        if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
            c.problem(
                "tlsServerName",
                format!("not a DNS name or IP address: {n:?}"),
                p,
            );
        }
    }
    let tls = tls_material::read(c, ctx.home, p);
    let title = c.string("title", p);
    let auth_metadata = c.string_map("authMetadata", p).unwrap_or_default();
    let skip_tls_verify = c.boolean("skipTLSVerify", p).unwrap_or(false);
    if skip_tls_verify && !ctx.allow_skip_tls_verify_with_credentials {
        let token_key = ["serviceAccountToken", "tokenFile"]
            .into_iter()
            .find(|k| c.has(k));
        if let Some(token_key) = token_key {
            c.problem(
                "skipTLSVerify",
                format!(
                    "refused together with {token_key}: a server-side token would be sent to any server that answers; set kubeplex.dangerouslySkipTLSVerifyWithCredentials: true to allow it"
                ),
                p,
            );
        }
    }
    Some(ClusterConfig {
        name: name?,
        url: url?,
        title,
        auth_provider,
        auth_metadata,
        service_account_token,
        oidc_token_provider,
        ca_data: tls.ca_data,
        ca_file: tls.ca_file,
        skip_tls_verify,
        skip_metrics_lookup: c.boolean("skipMetricsLookup", p).unwrap_or(false),
        dashboard_url: c.string("dashboardUrl", p),
        dashboard_app: c.string("dashboardApp", p),
        token_file,
        client_cert_data: tls.client_cert_data,
        client_key_data: tls.client_key_data,
        client_cert_file: tls.client_cert_file,
        client_key_file: tls.client_key_file,
        tls_server_name,
        dashboard_parameters: c.get("dashboardParameters").map(super::backstage::to_json),
        custom_resources: super::backstage::custom_resources(c, "customResources", p),
        impersonate: c.boolean("impersonate", p).unwrap_or(false),
        http1_only: !c.boolean("http2", p).unwrap_or(true),
    })
}

fn read_kubeconfig(obj: &Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> Option<LocatorKind> {
    obj.deny_unknown(&["type", "id", "path", "paths", "contexts"], p);
    let mut paths = Vec::new();
    match (obj.has("path"), obj.has("paths")) {
        (true, true) => obj.problem("paths", "path and paths are both set; use one", p),
        (false, false) => obj.problem("path", "required (or paths)", p),
        (true, false) => paths.extend(readable(obj, "path", ctx.home, p, true)),
        (false, true) => {
            for (path, node) in obj.list("paths", p).unwrap_or_default() {
                if let Some(f) = super::read::file_path(node, &path, ctx.home, p) {
                    match std::fs::metadata(&f) {
                        Ok(m) if m.is_file() => paths.push(f),
                        Ok(_) => p.at(node, &path, format!("not a file: {}", f.display())),
                        Err(e) => p.at(node, &path, format!("cannot read {}: {e}", f.display())),
                    }
                }
            }
        }
    }
    let contexts = obj.strings("contexts", p);
    Some(LocatorKind::Kubeconfig { paths, contexts })
}

fn read_catalog(obj: &Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> Option<LocatorKind> {
    obj.deny_unknown(
        &[
            "type",
            "id",
            "url",
            "token",
            "refreshInterval",
            "dangerouslyAllowClusterUrls",
            "allowSkipTLSVerify",
        ],
        p,
    );
    let url = match (obj.has("url"), &ctx.backstage_catalog) {
        (false, Some(implied)) => Some(implied.clone()),
        (false, None) => {
            obj.problem(
                "url",
                "required (the catalog API, e.g. https://backstage.example.com/api/catalog)",
                p,
            );
            None
        }
        (true, _) => obj
            .required_string("url", p)
            .and_then(|u| match url::Url::parse(&u) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
                    Some(u)
                }
                _ => {
                    obj.problem(
                        "url",
                        format!("not a URL: {:?}", crate::redact::url_text(&u)),
                        p,
                    );
                    None
                }
            }),
    };
    let refresh_interval = match obj.duration("refreshInterval", p) {
        Some(d) if d < Duration::from_secs(1) => {
            obj.problem("refreshInterval", "must be at least 1s", p);
            None
        }
        other => other,
    };
    let token = obj.string("token", p).map(Into::into);
    let allow = obj
        .strings("dangerouslyAllowClusterUrls", p)
        .unwrap_or_default();
    for bad in allow.iter().filter_map(|a| AllowPattern::parse(a).err()) {
        obj.problem("dangerouslyAllowClusterUrls", bad, p);
    }
    Some(LocatorKind::Catalog(CatalogConfig {
        url: url?,
        token,
        refresh_interval: refresh_interval.unwrap_or(Duration::from_secs(60)),
        dangerously_allow_cluster_urls: allow,
        allow_skip_tls_verify: obj.boolean("allowSkipTLSVerify", p).unwrap_or(false),
    }))
}

fn read_simulated(obj: &Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> Option<LocatorKind> {
    let clusters = read_cluster_list(obj, ctx, p, read_sim_cluster)?;
    Some(LocatorKind::Simulated { clusters })
}

fn read_sim_cluster(c: &Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> Option<SimClusterConfig> {
    c.deny_unknown(
        &[
            "name",
            "seed",
            "tokens",
            "faults",
            "backends",
            "customResources",
            "tls",
            "impersonation",
        ],
        p,
    );
    let name = c.required_string("name", p);
    let seed = read_seed(c, ctx, p);
    let mut tokens = Vec::new();
    let mut impersonation = read_sim_impersonation(c, p);
    for (path, node) in c.list("tokens", p).unwrap_or_default() {
        if let super::tree::Value::Map(_) = node.value {
            let Some(t) = Obj::new(node, &path, p) else {
                continue;
            };
            t.deny_unknown(&["token", "namespaces", "verbs", "impersonate"], p);
            let token = t.required_string("token", p);
            let namespaces = t.strings("namespaces", p);
            let verbs = sim_verbs(&t, p);
            if let Some(token) = token {
                if t.boolean("impersonate", p).unwrap_or(false) {
                    impersonation.tokens.push(token.clone());
                }
                tokens.push(SimToken {
                    token,
                    namespaces,
                    verbs,
                });
            }
        } else if let Some(token) = super::read::string(node, &path, p) {
            if token.is_empty() {
                p.at(node, &path, "must not be empty");
            } else {
                tokens.push(SimToken {
                    token,
                    ..Default::default()
                });
            }
        }
    }
    let mut faults = SimFaults::default();
    if let Some(f) = c.obj("faults", p) {
        f.deny_unknown(&["latency", "failEvery", "failCode", "closeWatchAfter"], p);
        faults.latency = f.duration("latency", p);
        faults.fail_every = f.uint("failEvery", p).filter(|n| {
            let ok = *n > 0;
            if !ok {
                f.problem("failEvery", "must be at least 1", p);
            }
            ok
        });
        faults.fail_code = f.uint("failCode", p).and_then(|n| {
            if (100..=599).contains(&n) {
                Some(n as u16)
            } else {
                f.problem(
                    "failCode",
                    format!("must be an HTTP status code, got {n}"),
                    p,
                );
                None
            }
        });
        faults.close_watch_after = f.uint("closeWatchAfter", p);
    }
    let backends = read_backends(c, p);
    let custom_types = read_custom_resources(c, p);
    // `tls: true`: HTTPS with a self-signed certificate generated when the server starts.
    let tls = match c.boolean("tls", p) {
        Some(true) => SimTls::SelfSigned,
        _ => SimTls::Off,
    };
    Some(SimClusterConfig {
        name: name?,
        seed,
        tokens,
        faults,
        backends,
        custom_types,
        tls,
        impersonation,
    })
}

/// A simulated token's or grant's `verbs`, each checked.
fn sim_verbs(t: &Obj<'_>, p: &mut Problems) -> Option<Vec<String>> {
    let verbs = t.strings("verbs", p);
    for (i, v) in verbs.iter().flatten().enumerate() {
        if !SIM_VERBS.contains(&v.as_str()) {
            p.at(
                t.get("verbs").unwrap_or(t.node),
                &format!("{}[{i}]", t.path_of("verbs")),
                format!("unknown verb {v:?} (expected {})", SIM_VERBS.join(", ")),
            );
        }
    }
    verbs
}

/// A simulated cluster's `impersonation: {users, groups}`: what the users and groups that
/// tokens with `impersonate: true` act as may do, each `{name, namespaces, verbs}`.
fn read_sim_impersonation(c: &Obj<'_>, p: &mut Problems) -> SimImpersonation {
    let mut out = SimImpersonation::default();
    let Some(i) = c.obj("impersonation", p) else {
        return out;
    };
    i.deny_unknown(&["users", "groups"], p);
    for (key, list) in [("users", &mut out.users), ("groups", &mut out.groups)] {
        for (path, node) in i.list(key, p).unwrap_or_default() {
            let Some(g) = Obj::new(node, &path, p) else {
                continue;
            };
            g.deny_unknown(&["name", "namespaces", "verbs"], p);
            let name = g.required_string("name", p);
            let namespaces = g.strings("namespaces", p);
            let verbs = sim_verbs(&g, p);
            if let Some(name) = name {
                list.push(SimGrant {
                    name,
                    namespaces,
                    verbs,
                });
            }
        }
    }
    out
}

/// A simulated cluster's `customResources`: `{group, version, kind, plural, singular,
/// scope: Namespaced|Cluster, shortNames, categories}` each.
fn read_custom_resources(c: &Obj<'_>, p: &mut Problems) -> Vec<CustomType> {
    let mut out = Vec::new();
    for (path, node) in c.list("customResources", p).unwrap_or_default() {
        let Some(t) = Obj::new(node, &path, p) else {
            continue;
        };
        t.deny_unknown(
            &[
                "group",
                "version",
                "kind",
                "plural",
                "singular",
                "scope",
                "shortNames",
                "categories",
            ],
            p,
        );
        let (group, version, kind, plural) = (
            t.required_string("group", p),
            t.required_string("version", p),
            t.required_string("kind", p),
            t.required_string("plural", p),
        );
        let namespaced = match t.string("scope", p).as_deref() {
            None | Some("Namespaced") => true,
            Some("Cluster") => false,
            Some(other) => {
                t.problem(
                    "scope",
                    format!("must be Namespaced or Cluster, got {other:?}"),
                    p,
                );
                true
            }
        };
        let (Some(group), Some(version), Some(kind), Some(plural)) = (group, version, kind, plural)
        else {
            continue;
        };
        let custom = CustomType {
            group,
            version,
            kind,
            plural,
            singular: t.string("singular", p),
            namespaced,
            short_names: t.strings("shortNames", p).unwrap_or_default(),
            categories: t.strings("categories", p).unwrap_or_default(),
        };
        for problem in custom.problems() {
            p.at(node, &path, problem);
        }
        out.push(custom);
    }
    out
}

/// A simulated cluster's `backends`: the CIDRs its Service proxy may connect to, default
/// loopback only. An empty list admits no backend.
fn read_backends(c: &Obj<'_>, p: &mut Problems) -> Vec<ipnet::IpNet> {
    if !c.has("backends") {
        return default_backends();
    }
    let mut out = Vec::new();
    for (path, node) in c.list("backends", p).unwrap_or_default() {
        if let Some(s) = super::read::string(node, &path, p) {
            match parse_backend(&s) {
                Ok(net) => out.push(net),
                Err(m) => p.at(node, &path, m),
            }
        }
    }
    out
}

/// A simulated cluster's `seed`: a file relative to its config file; in the embedded
/// default, `config/seed.yaml` and `config/seed-next.yaml` are compiled into the binary.
fn read_seed(c: &Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> Option<SeedSource> {
    let node = c.get("seed")?;
    if node.origin.embedded {
        let s = super::read::string(node, &c.path_of("seed"), p)?;
        let file = s.strip_prefix("config/").unwrap_or(&s);
        if let Some((name, text)) = EMBEDDED_SEEDS.iter().find(|(n, _)| *n == file) {
            return Some(SeedSource::Text {
                name: format!("config/{name}"),
                text: (*text).into(),
            });
        }
    }
    readable(c, "seed", ctx.home, p, false).map(SeedSource::File)
}
