//! The plugin table: every plugin's proxy entries, ready to serve, built from
//! `kubeplex.pluginProxy` and the located clusters at start and at every reload, and
//! swapped atomically beside the registry ([`PluginHandle`]).
//!
//! Building checks what the configuration alone could not: that each entry's `cluster`
//! names a located cluster (with a `catalog` locator, one it may still find is a warning).
//! For `via: direct` it builds the entry's [`Target`]: `https://{name}.{namespace}.svc.
//! {clusterDomain}:{port}`, verified against `caCertificate` (replacing the default roots)
//! or else the service CA bundle file, the `resolve` address when one is given, connect
//! 30s and TLS handshake 10s as the console's proxy. A service CA bundle that cannot be
//! read or used is a warning at build, and a 502 naming the file for each request to the
//! entries that need it, never a failed start. An unchanged entry keeps its `Arc<Target>`
//! across a reload, so each worker keeps its pooled connections ([`direct_upstream`]).

use super::error::BuildError;
use crate::cluster::{ClusterTls, Registry};
use crate::config::plugin_proxy::{check_cluster, Authorization, ProxyEntry, Via};
use crate::config::{ConfigErrors, LocatorKind, Settings};
use crate::upstream::client::{self, Upstream};
use crate::upstream::credential::ServerToken;
use crate::upstream::target::Target;
use arc_swap::ArcSwap;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The current plugin table, shared by every worker and swapped on reload.
pub(crate) type PluginHandle = Arc<ArcSwap<Table>>;

/// TCP connect bound to a plugin's Service (the console's dialer: 30s).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// TLS handshake bound to a plugin's Service (the console's transport: 10s).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Every plugin's entries by name and alias.
#[derive(Default)]
pub(crate) struct Table {
    plugins: HashMap<String, HashMap<String, Arc<Entry>>>,
    generation: u64,
}

/// One proxy entry, ready to serve.
pub(crate) struct Entry {
    /// The plugin's name.
    pub plugin: Arc<str>,
    /// The alias.
    pub alias: Arc<str>,
    /// `authorization`.
    pub authorization: Authorization,
    /// `cluster` (name or key) as configured; `None`: the only cluster.
    pub cluster: Option<String>,
    /// The Service's namespace (what the access policy decides on).
    pub namespace: String,
    /// How the Service is reached.
    pub route: Route,
}

/// How an entry's Service is reached.
pub(crate) enum Route {
    /// `via: direct`: the Service's own HTTPS endpoint.
    Direct {
        /// The target, or why there is none (no usable CA).
        target: Result<Arc<Target>, String>,
        /// What the target was built from (an unchanged spec keeps the target on reload).
        spec: DirectSpec,
    },
    /// `via: apiserver`: the cluster's Service proxy subresource, this path (no trailing
    /// slash) followed by the request's.
    Apiserver {
        /// `/api/v1/namespaces/{ns}/services/https:{name}:{port}/proxy`.
        path: String,
    },
}

/// What a direct target is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirectSpec {
    host: String,
    port: u16,
    ca: Result<Vec<u8>, String>,
    resolve: Option<SocketAddr>,
}

impl Table {
    /// Builds the table of `settings.plugin_proxy` for `registry`, reusing `previous`'s
    /// targets whose definition did not change.
    pub(crate) fn build(
        settings: &Settings,
        registry: &Registry,
        previous: Option<&Table>,
    ) -> Result<Table, BuildError> {
        let pp = &settings.plugin_proxy;
        let clusters: Vec<(String, String)> = registry
            .clusters()
            .iter()
            .map(|c| (c.spec.name.clone(), c.key.to_string()))
            .collect();
        let may_fill_in = settings
            .locators
            .iter()
            .any(|l| matches!(l.kind, LocatorKind::Catalog(_)));
        let mut problems = Vec::new();
        let needs_bundle = pp.plugins.iter().any(|p| {
            p.proxy
                .iter()
                .any(|e| e.via == Via::Direct && e.ca_certificate.is_none())
        });
        let bundle: Result<Vec<u8>, String> = if needs_bundle {
            read_bundle(&pp.service_ca_file)
        } else {
            Err(String::new())
        };
        let mut without_ca = Vec::new();
        let mut table = Table {
            plugins: HashMap::new(),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        };
        for plugin in &pp.plugins {
            let mut aliases = HashMap::new();
            for e in &plugin.proxy {
                if let Err(m) = check_cluster(e, &clusters) {
                    if may_fill_in && e.cluster.is_some() {
                        tracing::warn!(plugin = %plugin.name, alias = %e.alias, problem = %m,
                            "plugin proxy entry names a cluster not located yet; requests get a 502 until a catalog refresh finds it");
                    } else {
                        problems.push(e.cluster_at.problem(m));
                        continue;
                    }
                }
                let route = match e.via {
                    Via::Apiserver => Route::Apiserver {
                        path: format!(
                            "/api/v1/namespaces/{}/services/https:{}:{}/proxy",
                            e.service.namespace, e.service.name, e.service.port
                        ),
                    },
                    Via::Direct => {
                        let spec = direct_spec(e, pp, &bundle);
                        if e.ca_certificate.is_none() && spec.ca.is_err() {
                            without_ca.push(format!("{}/{}", plugin.name, e.alias));
                        }
                        let reused = previous
                            .and_then(|t| t.get(&plugin.name, &e.alias))
                            .and_then(|old| match &old.route {
                                Route::Direct { target, spec: s } if *s == spec => {
                                    Some(target.clone())
                                }
                                _ => None,
                            });
                        let target = reused.unwrap_or_else(|| direct_target(&spec));
                        Route::Direct { target, spec }
                    }
                };
                aliases.insert(
                    e.alias.clone(),
                    Arc::new(Entry {
                        plugin: plugin.name.as_str().into(),
                        alias: e.alias.as_str().into(),
                        authorization: e.authorization,
                        cluster: e.cluster.clone(),
                        namespace: e.service.namespace.clone(),
                        route,
                    }),
                );
            }
            table.plugins.insert(plugin.name.clone(), aliases);
        }
        if !problems.is_empty() {
            return Err(BuildError(ConfigErrors(problems)));
        }
        if !without_ca.is_empty() {
            if let Err(why) = &bundle {
                tracing::warn!(
                    file = %pp.service_ca_file.display(),
                    entries = %without_ca.join(", "),
                    "plugin proxy: {why}; requests to these entries get a 502 until the bundle is there (set caCertificate on them, or kubeplex.pluginProxy.serviceCaFile)"
                );
            }
        }
        Ok(table)
    }

    /// The entry of `plugin` and `alias`.
    pub(crate) fn get(&self, plugin: &str, alias: &str) -> Option<&Arc<Entry>> {
        self.plugins.get(plugin)?.get(alias)
    }

    /// Every entry, by plugin and alias (the status page lists them).
    pub(crate) fn entries(&self) -> Vec<&Arc<Entry>> {
        let mut v: Vec<&Arc<Entry>> = self.plugins.values().flat_map(|m| m.values()).collect();
        v.sort_by(|a, b| (&a.plugin, &a.alias).cmp(&(&b.plugin, &b.alias)));
        v
    }

    /// Whether `plugin` is configured.
    pub(crate) fn has_plugin(&self, plugin: &str) -> bool {
        self.plugins.contains_key(plugin)
    }

    /// The configured plugin names, sorted, for messages.
    pub(crate) fn plugin_names(&self) -> String {
        let mut v: Vec<&str> = self.plugins.keys().map(String::as_str).collect();
        v.sort_unstable();
        if v.is_empty() {
            "none configured".into()
        } else {
            v.join(", ")
        }
    }

    /// `plugin`'s aliases, sorted, for messages.
    pub(crate) fn alias_names(&self, plugin: &str) -> String {
        let mut v: Vec<&str> = self
            .plugins
            .get(plugin)
            .map(|a| a.keys().map(String::as_str).collect())
            .unwrap_or_default();
        v.sort_unstable();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }

    /// The direct targets in use (per-worker caches keep only these).
    fn targets(&self) -> HashSet<usize> {
        self.plugins
            .values()
            .flat_map(|a| a.values())
            .filter_map(|e| match &e.route {
                Route::Direct { target: Ok(t), .. } => Some(Arc::as_ptr(t) as usize),
                _ => None,
            })
            .collect()
    }
}

/// Reads the service CA bundle; the error says what to do.
fn read_bundle(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "the service CA bundle {} cannot be read ({e})",
            path.display()
        )
    })
}

fn direct_spec(
    e: &ProxyEntry,
    pp: &crate::config::PluginProxySettings,
    bundle: &Result<Vec<u8>, String>,
) -> DirectSpec {
    let host = format!(
        "{}.{}.svc.{}",
        e.service.name, e.service.namespace, pp.cluster_domain
    );
    let resolve = pp
        .resolve
        .get(&format!("{host}:{}", e.service.port))
        .copied();
    let ca = match &e.ca_certificate {
        Some(pem) => Ok(pem.as_bytes().to_vec()),
        None => bundle.clone(),
    };
    DirectSpec {
        host,
        port: e.service.port,
        ca,
        resolve,
    }
}

/// The target of a direct entry: HTTPS to the Service's host, verified against its CA.
fn direct_target(spec: &DirectSpec) -> Result<Arc<Target>, String> {
    let ca = spec.ca.clone()?;
    let origin = format!("https://{}:{}", spec.host, spec.port);
    let url = url::Url::parse(&origin).map_err(|e| format!("{origin}: {e}"))?;
    let tls = crate::tls::TlsSettings {
        ca_pem: Some(ca),
        ..Default::default()
    };
    let config = crate::tls::client::cluster_client_config(&url, &tls)
        .map_err(|e| format!("the CA to verify {} with is not usable: {e}", spec.host))?;
    Ok(Arc::new(Target {
        url,
        origin: Ok(origin),
        prefix: String::new(),
        tls: Some(ClusterTls::new(Ok(config), spec.host.as_str().into())),
        guard: None,
        resolve: spec.resolve.map(|a| vec![a]),
        connect_timeout: CONNECT_TIMEOUT,
        handshake_timeout: HANDSHAKE_TIMEOUT,
    }))
}

/// This worker's upstreams for direct targets, and the table generation they were last
/// checked against.
#[derive(Default)]
struct Cache {
    generation: u64,
    entries: HashMap<usize, Rc<Upstream>>,
}

thread_local! {
    static DIRECT: RefCell<Cache> = RefCell::new(Cache::default());
}

/// This worker's [`Upstream`] for a direct `target` of `table`, built on first use (its
/// own pooled hyper client and tunnel connector). Upstreams of targets a new table no
/// longer has are dropped when this worker first sees it.
pub(crate) fn direct_upstream(table: &Table, target: &Arc<Target>) -> Result<Rc<Upstream>, String> {
    let key = Arc::as_ptr(target) as usize;
    let found = DIRECT.with(|c| {
        let mut c = c.borrow_mut();
        if c.generation != table.generation {
            let live = table.targets();
            c.entries.retain(|k, _| live.contains(k));
            c.generation = table.generation;
        }
        c.entries.get(&key).cloned()
    });
    if let Some(up) = found {
        return Ok(up);
    }
    let up = Rc::new(client::for_target(
        target.clone(),
        ServerToken::new(&crate::cluster::ServerCredential::None),
    )?);
    DIRECT.with(|c| c.borrow_mut().entries.insert(key, up.clone()));
    Ok(up)
}
