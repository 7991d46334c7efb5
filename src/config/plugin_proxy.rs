//! `kubeplex.pluginProxy` (SPEC §7): the OpenShift console's `ConsolePlugin` `spec.proxy`
//! entries, inline (`plugins: [{name, proxy: [...]}]`) or read from ConsolePlugin resource
//! files exactly as written for the console (`consolePluginFiles`, several YAML documents
//! per file), plus `clusterDomain`, `serviceCaFile` and `resolve`.
//!
//! Each entry is validated as the ConsolePlugin CRD (`console.openshift.io/v1`) validates
//! it: `alias` 1-128 of `[A-Za-z0-9-_]`, `authorization` `UserToken` or `None` (default
//! `None`), `caCertificate` a PEM certificate (which must also parse and be usable as a CA),
//! `endpoint.type: Service` with `endpoint.service.name` and `.namespace` (1-128) and
//! `.port` (1-65535). kubeplex adds its own rules: the name and namespace must be DNS labels
//! (they become a host name and a path), aliases are unique per plugin (the console crashes
//! on a duplicate), plugin names are unique, `via` is `direct` (default) or `apiserver`, and
//! `cluster` names a known cluster (checked here when every locator's clusters are known
//! from the configuration alone, else once the locators ran, [`check_cluster`]). Every
//! problem is reported at once as `file: key.path: problem`; problems inside a
//! ConsolePlugin file name that file and the key path in the document (prefixed with
//! `documents[i]` when the file holds several).
//!
//! ConsolePlugin files are read without `${VAR}` or `$include` substitution (they are
//! Kubernetes resources), are added to the files a reload watches, and documents of other
//! kinds in them (a plugin's Deployment and Service in the same manifest) are skipped.

use super::read::{self, Obj, Problems};
use super::tree::{Node, Origin, Value};
use super::{LocatorConfig, LocatorKind, Problem};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default `clusterDomain`.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// The service CA bundle's file name in the service-account folder.
const SERVICE_CA_NAME: &str = "service-ca.crt";

/// The service-account folder (`$KUBEPLEX_SERVICE_ACCOUNT_DIR` overrides it).
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Keys of `kubeplex.pluginProxy`.
const KEYS: &[&str] = &[
    "plugins",
    "consolePluginFiles",
    "clusterDomain",
    "serviceCaFile",
    "resolve",
];

/// Keys of a proxy entry: the CRD's and kubeplex's `cluster` and `via`.
const ENTRY_KEYS: &[&str] = &[
    "alias",
    "authorization",
    "caCertificate",
    "endpoint",
    "cluster",
    "via",
];

/// `kubeplex.pluginProxy`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginProxySettings {
    /// Every plugin, inline ones first, then each file's in order.
    pub plugins: Vec<PluginConfig>,
    /// `clusterDomain`, default `cluster.local`.
    pub cluster_domain: String,
    /// `serviceCaFile`: the CA bundle that verifies Services without a `caCertificate`;
    /// default the in-cluster service CA (`service-ca.crt` in the service-account folder).
    /// Read when the plugin proxy is built: a missing file is a warning, not an error.
    pub service_ca_file: PathBuf,
    /// `resolve`: `host:port` (lowercase) to the address connected to instead.
    pub resolve: BTreeMap<String, SocketAddr>,
}

impl Default for PluginProxySettings {
    fn default() -> Self {
        PluginProxySettings {
            plugins: Vec::new(),
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.into(),
            service_ca_file: Path::new(SERVICE_ACCOUNT_DIR).join(SERVICE_CA_NAME),
            resolve: BTreeMap::new(),
        }
    }
}

/// One plugin: a `ConsolePlugin`'s name and its `spec.proxy` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// `metadata.name` (or the inline `name`): the `{plugin}` of the route.
    pub name: String,
    /// Its proxy entries, in order.
    pub proxy: Vec<ProxyEntry>,
    /// Where its name was written.
    pub at: At,
}

/// A place in the configuration: file and key path, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// The file (as given) or `<embedded default>`.
    pub file: String,
    /// The key path in it.
    pub key: String,
}

impl At {
    fn of(node: &Node, key: String) -> At {
        At {
            file: node.origin.name.clone(),
            key,
        }
    }

    /// A problem at this place.
    pub fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            key: self.key.clone(),
            message: message.into(),
        }
    }
}

/// One `spec.proxy` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyEntry {
    /// `alias`: the `{alias}` of the route.
    pub alias: String,
    /// `authorization`.
    pub authorization: Authorization,
    /// `caCertificate`: PEM that replaces the service CA bundle for this entry.
    pub ca_certificate: Option<String>,
    /// `endpoint.service`.
    pub service: ServiceRef,
    /// `cluster` (name or key); `None`: the only cluster.
    pub cluster: Option<String>,
    /// Where `cluster` was set (the entry's key, or its `consolePluginFiles` entry), or
    /// where it would be.
    pub cluster_at: At,
    /// `via`.
    pub via: Via,
    /// Where the entry was written (its key path: `...proxy[0]`).
    pub at: At,
}

/// How a proxied request is authorized upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Authorization {
    /// `None` (the default): no `Authorization` at all, whatever the caller sent.
    #[default]
    None,
    /// `UserToken`: the caller's Kubernetes token as `Authorization: Bearer`.
    UserToken,
}

/// How the Service is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Via {
    /// `direct` (the default): `https://{name}.{namespace}.svc.{clusterDomain}:{port}`.
    #[default]
    Direct,
    /// `apiserver`: the cluster API server's Service proxy subresource.
    Apiserver,
}

/// `endpoint.service`: a Service and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    /// The Service's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The port.
    pub port: u16,
}

/// Reads `kubeplex.pluginProxy` (`pp`). `env` gives `KUBEPLEX_SERVICE_ACCOUNT_DIR`; the
/// ConsolePlugin files read are appended to `files` (watched for reload).
pub(crate) fn read(
    pp: &Obj<'_>,
    home: Option<&str>,
    env: &super::tree::Env,
    files: &mut Vec<PathBuf>,
    p: &mut Problems,
) -> PluginProxySettings {
    pp.deny_unknown(KEYS, p);
    let mut out = PluginProxySettings::default();
    if let Some(dir) = env.get("KUBEPLEX_SERVICE_ACCOUNT_DIR") {
        out.service_ca_file = Path::new(dir).join(SERVICE_CA_NAME);
    }
    if let Some(d) = pp.string("clusterDomain", p) {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        if is_dns_subdomain(&d) {
            out.cluster_domain = d;
        } else {
            pp.problem(
                "clusterDomain",
                format!("must be a DNS domain such as cluster.local, got {d:?}"),
                p,
            );
        }
    }
    if let Some(f) = pp.file_path("serviceCaFile", home, p) {
        out.service_ca_file = f;
    }
    if let Some(r) = pp.obj("resolve", p) {
        out.resolve = read_resolve(&r, p);
    }
    let defaults = Defaults::NONE;
    if let Some(items) = pp.list("plugins", p) {
        for (path, node) in items {
            let Some(o) = Obj::new(node, &path, p) else {
                continue;
            };
            o.deny_unknown(&["name", "proxy"], p);
            let name = o.required_string("name", p).and_then(|n| {
                check_plugin_name(&n)
                    .map_err(|m| o.problem("name", m, p))
                    .ok()
                    .map(|()| n)
            });
            let proxy = match o.list("proxy", p) {
                Some(entries) => entries
                    .into_iter()
                    .filter_map(|(path, n)| entry(n, &path, &defaults, p))
                    .collect(),
                None => Vec::new(),
            };
            if let Some(name) = name {
                let at = At::of(o.get("name").unwrap_or(node), o.path_of("name"));
                out.plugins.push(PluginConfig { name, proxy, at });
            }
        }
    }
    if let Some(items) = pp.list("consolePluginFiles", p) {
        for (path, node) in items {
            read_file_entry(node, &path, home, files, &mut out.plugins, p);
        }
    }
    check_unique(&out.plugins, p);
    out
}

/// The `cluster` and `via` an entry gets when it sets none (a `consolePluginFiles` entry's).
struct Defaults {
    cluster: Option<(String, At)>,
    via: Option<Via>,
}

impl Defaults {
    /// Nothing set: inline plugins, and files given by path alone.
    const NONE: Defaults = Defaults {
        cluster: None,
        via: None,
    };
}

/// `resolve`: `host:port` keys, `ip:port` values.
fn read_resolve(r: &Obj<'_>, p: &mut Problems) -> BTreeMap<String, SocketAddr> {
    let mut out = BTreeMap::new();
    let Value::Map(entries) = &r.node.value else {
        return out;
    };
    for (k, v) in entries {
        let path = r.path_of(k);
        let key_ok = match k.rsplit_once(':') {
            Some((host, port)) => {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|n| n > 0) && !host.contains('/')
            }
            None => false,
        };
        if !key_ok {
            p.at(
                v,
                &path,
                format!(
                    "the key must be host:port, such as web.shop.svc.cluster.local:8443, got {k:?}"
                ),
            );
            continue;
        }
        let Some(s) = read::string(v, &path, p) else {
            continue;
        };
        match s.trim().parse::<SocketAddr>() {
            Ok(a) => {
                out.insert(k.to_ascii_lowercase(), a);
            }
            Err(_) => p.at(
                v,
                &path,
                format!(
                    "must be an address ip:port, such as 127.0.0.1:9443 or [::1]:9443, got {s:?}"
                ),
            ),
        }
    }
    out
}

/// One `consolePluginFiles` item: a path, or `{path, cluster, via}`.
fn read_file_entry(
    node: &Node,
    path: &str,
    home: Option<&str>,
    files: &mut Vec<PathBuf>,
    plugins: &mut Vec<PluginConfig>,
    p: &mut Problems,
) {
    let (file, defaults) = match &node.value {
        Value::Map(_) => {
            let Some(o) = Obj::new(node, path, p) else {
                return;
            };
            o.deny_unknown(&["path", "cluster", "via"], p);
            if !o.has("path") {
                o.problem("path", "required", p);
                return;
            }
            let cluster = o
                .string("cluster", p)
                .filter(|c| {
                    let ok = !c.is_empty();
                    if !ok {
                        o.problem("cluster", "must not be empty", p);
                    }
                    ok
                })
                .map(|c| {
                    (
                        c,
                        At::of(o.get("cluster").unwrap_or(node), o.path_of("cluster")),
                    )
                });
            let via = o.string("via", p).and_then(|v| parse_via(&o, &v, p));
            let Some(file) = o.file_path("path", home, p) else {
                return;
            };
            (file, Defaults { cluster, via })
        }
        _ => {
            let Some(file) = read::file_path(node, path, home, p) else {
                return;
            };
            (file, Defaults::NONE)
        }
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            p.at(node, path, format!("cannot read {}: {e}", file.display()));
            return;
        }
    };
    files.push(std::path::absolute(&file).unwrap_or_else(|_| file.clone()));
    let origin = Arc::new(Origin {
        name: file.display().to_string(),
        dir: file.parent().map(Path::to_path_buf),
        embedded: false,
    });
    let mut documents = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        match <serde_yaml::Value as serde::Deserialize>::deserialize(doc) {
            Ok(serde_yaml::Value::Null) => {}
            Ok(v) => documents.push(v),
            Err(e) => {
                p.0.push(Problem {
                    file: origin.name.clone(),
                    key: String::new(),
                    message: format!("invalid YAML: {e}"),
                });
                return;
            }
        }
    }
    let several = documents.len() > 1;
    let before = plugins.len();
    let mut skipped = 0;
    for (i, doc) in documents.into_iter().enumerate() {
        let root = if several {
            format!("documents[{i}]")
        } else {
            String::new()
        };
        let node = to_node(doc, &origin);
        // `kind: List` (what `kubectl get -o yaml` writes): its items.
        let items: Vec<(String, &Node)> = match node.get("kind") {
            Some(Node {
                value: Value::Str(k),
                ..
            }) if k == "List" || k == "ConsolePluginList" => match node.get("items") {
                Some(items) => {
                    read::list(items, &super::tree::join(&root, "items"), p).unwrap_or_default()
                }
                None => Vec::new(),
            },
            _ => vec![(root, &node)],
        };
        for (path, item) in items {
            match console_plugin(item, &path, &defaults, p) {
                Read::Plugin(plugin) => plugins.push(plugin),
                Read::OtherKind => skipped += 1,
                Read::Invalid => {}
            }
        }
    }
    let read_any = plugins.len() > before;
    if !read_any && p.0.iter().all(|q| q.file != origin.name) {
        p.0.push(Problem {
            file: origin.name.clone(),
            key: String::new(),
            message: format!(
                "holds no ConsolePlugin document (apiVersion: console.openshift.io/v1, kind: ConsolePlugin){}",
                if skipped > 0 {
                    format!("; {skipped} of other kinds skipped")
                } else {
                    String::new()
                }
            ),
        });
    }
}

/// What one document was.
enum Read {
    Plugin(PluginConfig),
    /// Another kind of resource: skipped.
    OtherKind,
    /// A ConsolePlugin with problems (recorded).
    Invalid,
}

/// Reads one ConsolePlugin document: `apiVersion`, `kind`, `metadata.name`, `spec.proxy`.
/// Other `spec` fields (`backend`, `displayName`, `i18n`, `contentSecurityPolicy`) and
/// top-level keys (`status`) are accepted and ignored.
fn console_plugin(node: &Node, path: &str, defaults: &Defaults, p: &mut Problems) -> Read {
    let Some(o) = Obj::new(node, path, p) else {
        return Read::Invalid;
    };
    match o.get("kind").map(|k| &k.value) {
        Some(Value::Str(k)) if k == "ConsolePlugin" => {}
        Some(_) => return Read::OtherKind,
        None => {
            o.problem("kind", "required (ConsolePlugin)", p);
            return Read::Invalid;
        }
    }
    match o.string("apiVersion", p) {
        None if !o.has("apiVersion") => o.problem("apiVersion", "required (console.openshift.io/v1)", p),
        None => {}
        Some(v) if v == "console.openshift.io/v1" => {}
        Some(v) => o.problem(
            "apiVersion",
            format!("must be console.openshift.io/v1 (the version whose spec.proxy kubeplex reads), got {v:?}"),
            p,
        ),
    }
    let name = match o.obj("metadata", p) {
        Some(m) => m
            .required_string("name", p)
            .and_then(|n| match check_plugin_name(&n) {
                Ok(()) => Some((n, At::of(m.get("name").unwrap_or(node), m.path_of("name")))),
                Err(msg) => {
                    m.problem("name", msg, p);
                    None
                }
            }),
        None => {
            o.problem("metadata.name", "required", p);
            None
        }
    };
    let mut proxy = Vec::new();
    match o.obj("spec", p) {
        Some(spec) => {
            if let Some(entries) = spec.list("proxy", p) {
                proxy = entries
                    .into_iter()
                    .filter_map(|(path, n)| entry(n, &path, defaults, p))
                    .collect();
            }
        }
        None if !o.has("spec") => o.problem("spec", "required", p),
        None => {}
    }
    // Kept even with problems in it (the configuration is refused then anyway), so that
    // the checks across plugins (duplicates, clusters) still report on its valid entries.
    match name {
        Some((name, at)) => Read::Plugin(PluginConfig { name, proxy, at }),
        None => Read::Invalid,
    }
}

/// Reads and checks one proxy entry at `path`.
fn entry(node: &Node, path: &str, defaults: &Defaults, p: &mut Problems) -> Option<ProxyEntry> {
    let o = Obj::new(node, path, p)?;
    let before = p.0.len();
    o.deny_unknown(ENTRY_KEYS, p);
    let alias = o.required_string("alias", p).filter(|a| {
        let ok = (1..=128).contains(&a.len())
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            o.problem(
                "alias",
                format!("must be 1 to 128 characters of A-Z, a-z, 0-9, '-' and '_' (^[A-Za-z0-9-_]+$), got {a:?}"),
                p,
            );
        }
        ok
    });
    let authorization = match o.string("authorization", p).as_deref() {
        None | Some("None") => Authorization::None,
        Some("UserToken") => Authorization::UserToken,
        Some(other) => {
            o.problem(
                "authorization",
                format!("must be UserToken or None, got {other:?}"),
                p,
            );
            Authorization::None
        }
    };
    let ca_certificate =
        o.string("caCertificate", p)
            .filter(|pem| match check_ca_certificate(pem) {
                Ok(()) => true,
                Err(m) => {
                    o.problem("caCertificate", m, p);
                    false
                }
            });
    let service = match o.obj("endpoint", p) {
        None if !o.has("endpoint") => {
            o.problem("endpoint", "required", p);
            None
        }
        None => None,
        Some(e) => endpoint(&e, p),
    };
    let cluster = o.string("cluster", p).filter(|c| {
        if c.is_empty() {
            o.problem("cluster", "must not be empty", p);
        }
        !c.is_empty()
    });
    let (cluster, cluster_at) = match cluster {
        Some(c) => (
            Some(c),
            At::of(o.get("cluster").unwrap_or(node), o.path_of("cluster")),
        ),
        None => match &defaults.cluster {
            Some((c, at)) => (Some(c.clone()), at.clone()),
            None => (None, At::of(node, o.path_of("cluster"))),
        },
    };
    let via = match o.string("via", p) {
        Some(v) => parse_via(&o, &v, p).unwrap_or_default(),
        None => defaults.via.unwrap_or_default(),
    };
    if p.0.len() != before {
        return None;
    }
    Some(ProxyEntry {
        alias: alias?,
        authorization,
        ca_certificate,
        service: service?,
        cluster,
        cluster_at,
        via,
        at: At::of(node, path.to_string()),
    })
}

fn parse_via(o: &Obj<'_>, v: &str, p: &mut Problems) -> Option<Via> {
    match v {
        "direct" => Some(Via::Direct),
        "apiserver" => Some(Via::Apiserver),
        other => {
            o.problem(
                "via",
                format!("must be direct or apiserver, got {other:?}"),
                p,
            );
            None
        }
    }
}

/// `endpoint`: `type: Service` and `service: {name, namespace, port}`.
fn endpoint(e: &Obj<'_>, p: &mut Problems) -> Option<ServiceRef> {
    e.deny_unknown(&["type", "service"], p);
    match e.string("type", p).as_deref() {
        None if !e.has("type") => e.problem("type", "required (Service)", p),
        None | Some("Service") => {}
        Some(other) => e.problem(
            "type",
            format!("must be Service (the only endpoint type), got {other:?}"),
            p,
        ),
    }
    let s = match e.obj("service", p) {
        Some(s) => s,
        None => {
            if !e.has("service") {
                e.problem("service", "required when type is Service", p);
            }
            return None;
        }
    };
    s.deny_unknown(&["name", "namespace", "port"], p);
    let name = s
        .required_string("name", p)
        .and_then(|n| check_name(&s, "name", n, "a Service name", p));
    let namespace = s
        .required_string("namespace", p)
        .and_then(|n| check_name(&s, "namespace", n, "a namespace name", p));
    let port = match s.get("port") {
        None => {
            s.problem("port", "required", p);
            None
        }
        Some(n) => match &n.value {
            Value::Int(i) if (1..=65535).contains(i) => Some(*i as u16),
            Value::Int(i) => {
                s.problem("port", format!("must be 1 to 65535, got {i}"), p);
                None
            }
            Value::Str(t) => match t.trim().parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    s.problem(
                        "port",
                        format!("must be a number from 1 to 65535, got {t:?}"),
                        p,
                    );
                    None
                }
            },
            _ => {
                read::uint(n, &s.path_of("port"), p);
                None
            }
        },
    };
    Some(ServiceRef {
        name: name?,
        namespace: namespace?,
        port: port?,
    })
}

/// The CRD's 1-128, then kubeplex's: a DNS label (it becomes part of a host name and of
/// the Service proxy path).
fn check_name(s: &Obj<'_>, key: &str, n: String, what: &str, p: &mut Problems) -> Option<String> {
    if n.len() > 128 {
        s.problem(
            key,
            format!("must be 1 to 128 characters, got {}", n.len()),
            p,
        );
        return None;
    }
    if !is_dns_label(&n) {
        s.problem(
            key,
            format!("must be {what}: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, got {n:?}"),
            p,
        );
        return None;
    }
    Some(n)
}

/// A ConsolePlugin name (a Kubernetes object name): a lowercase RFC 1123 subdomain.
fn check_plugin_name(n: &str) -> Result<(), String> {
    if is_dns_subdomain(n) {
        Ok(())
    } else {
        Err(format!(
            "must be a lowercase RFC 1123 subdomain (lowercase letters, digits, '-' and '.', at most 253), as a ConsolePlugin name is, got {n:?}"
        ))
    }
}

/// The CRD's pattern (`^-----BEGIN CERTIFICATE-----([\s\S]*)-----END CERTIFICATE-----\s?$`),
/// then what the console does with it: every certificate must parse and be usable as a CA.
fn check_ca_certificate(pem: &str) -> Result<(), String> {
    let t = pem.strip_suffix('\n').unwrap_or(pem);
    let t = t.strip_suffix('\r').unwrap_or(t);
    if !t.starts_with("-----BEGIN CERTIFICATE-----") || !t.ends_with("-----END CERTIFICATE-----") {
        return Err(
            "must be PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
                .into(),
        );
    }
    let tls = crate::tls::TlsSettings {
        ca_pem: Some(pem.as_bytes().to_vec()),
        ..Default::default()
    };
    crate::tls::client::client_config(&tls)
        .map(|_| ())
        .map_err(|e| format!("not a usable CA certificate: {e}"))
}

/// A DNS label (RFC 1123, lowercase): 1-63 of `[a-z0-9-]`, alphanumeric at both ends.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A DNS subdomain (RFC 1123, lowercase): dot-separated labels, at most 253 in all.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Plugin names unique; aliases unique per plugin.
fn check_unique(plugins: &[PluginConfig], p: &mut Problems) {
    let mut names: BTreeMap<&str, &At> = BTreeMap::new();
    for plugin in plugins {
        if let Some(first) = names.get(plugin.name.as_str()) {
            p.0.push(plugin.at.problem(format!(
                "duplicate plugin name {:?} (first defined at {}: {})",
                plugin.name, first.file, first.key
            )));
        } else {
            names.insert(&plugin.name, &plugin.at);
        }
    }
    for plugin in plugins {
        let mut aliases: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, e) in plugin.proxy.iter().enumerate() {
            if let Some(first) = aliases.get(e.alias.as_str()) {
                let at = At {
                    file: e.at.file.clone(),
                    key: super::tree::join(&e.at.key, "alias"),
                };
                p.0.push(at.problem(format!(
                    "duplicate alias {:?} in plugin {:?} (also proxy[{first}]); aliases must be unique per plugin",
                    e.alias, plugin.name
                )));
            } else {
                aliases.insert(&e.alias, i);
            }
        }
    }
}

/// Converts a ConsolePlugin document to a configuration tree, as written (no `${VAR}`
/// substitution: it is a Kubernetes resource).
fn to_node(v: serde_yaml::Value, origin: &Arc<Origin>) -> Node {
    let value = match v {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_yaml::Value::String(s) => Value::Str(s),
        serde_yaml::Value::Sequence(items) => {
            Value::Seq(items.into_iter().map(|v| to_node(v, origin)).collect())
        }
        serde_yaml::Value::Mapping(m) => Value::Map(
            m.into_iter()
                .filter_map(|(k, v)| {
                    let k = match k {
                        serde_yaml::Value::String(s) => s,
                        serde_yaml::Value::Bool(b) => b.to_string(),
                        serde_yaml::Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    Some((k, to_node(v, origin)))
                })
                .collect(),
        ),
        serde_yaml::Value::Tagged(t) => return to_node(t.value, origin),
    };
    Node {
        value,
        origin: origin.clone(),
    }
}

/// The `(name, key)` of every cluster, when the configuration alone decides them (only
/// `config`, `simulated` and `localKubectlProxy` locators); `None` when a locator finds
/// its clusters when it runs (`kubeconfig`, `catalog`).
pub(crate) fn static_clusters(locators: &[LocatorConfig]) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for l in locators {
        match &l.kind {
            LocatorKind::Config { clusters } => out.extend(
                clusters
                    .iter()
                    .map(|c| (c.name.clone(), format!("{}:{}", l.id, c.name))),
            ),
            LocatorKind::Simulated { clusters } => out.extend(
                clusters
                    .iter()
                    .map(|c| (c.name.clone(), format!("{}:{}", l.id, c.name))),
            ),
            LocatorKind::LocalKubectlProxy => {
                out.push(("local".to_string(), format!("{}:local", l.id)))
            }
            LocatorKind::Kubeconfig { .. } | LocatorKind::Catalog(_) => return None,
        }
    }
    Some(out)
}

/// Checks an entry's `cluster` against the clusters' `(name, key)`: a name or key that
/// exists; none at all only when the entry needs no cluster (`via: direct`) or there is
/// exactly one.
pub fn check_cluster(entry: &ProxyEntry, clusters: &[(String, String)]) -> Result<(), String> {
    let keys = || {
        clusters
            .iter()
            .map(|(_, k)| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &entry.cluster {
        Some(c) => {
            if clusters.iter().any(|(n, k)| n == c || k == c) {
                Ok(())
            } else {
                Err(format!(
                    "no cluster has the name or key {c:?} (clusters: {})",
                    keys()
                ))
            }
        }
        None if entry.via == Via::Apiserver && clusters.len() != 1 => Err(format!(
            "required with via: apiserver when there are {} clusters ({}); name one (name or key)",
            clusters.len(),
            keys()
        )),
        None => Ok(()),
    }
}

/// Checks every entry's `cluster` against the clusters the configuration alone decides
/// (when it does; otherwise the plugin proxy checks them once the locators ran).
pub(crate) fn check_static_clusters(
    settings: &PluginProxySettings,
    locators: &[LocatorConfig],
    p: &mut Problems,
) {
    let Some(clusters) = static_clusters(locators) else {
        return;
    };
    if clusters.is_empty() {
        return;
    }
    for plugin in &settings.plugins {
        for e in &plugin.proxy {
            if let Err(m) = check_cluster(e, &clusters) {
                p.0.push(e.cluster_at.problem(m));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns_label("web-1"));
        assert!(!is_dns_label("-web"));
        assert!(!is_dns_label("Web"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("cluster.local"));
        assert!(!is_dns_subdomain("cluster..local"));
        assert!(!is_dns_subdomain(""));
    }

    #[test]
    fn ca_certificate_pattern() {
        assert!(check_ca_certificate("nope").is_err());
        let e =
            check_ca_certificate("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
                .unwrap_err();
        assert!(e.starts_with("not a usable CA certificate"), "{e}");
        let ck = rcgen::generate_simple_self_signed(vec!["ca.example".into()]).unwrap();
        assert_eq!(check_ca_certificate(&ck.cert.pem()), Ok(()));
    }
}
