//! One cluster's part of an entity's answer, as Backstage's fan-out handler and fetcher
//! build it: every object type (and custom resource) listed at once with the entity's
//! label selector, in its namespace or cluster-wide; then, for each namespace where pods
//! were found, that namespace's `metrics.k8s.io` pod metrics joined with its pods. A list
//! answered with an error status is an error entry (`{errorType, statusCode,
//! resourcePath}`); a cluster that cannot be reached at all (connect, TLS, timeout, an
//! unreadable answer, a missing provider token) is one `FETCH_ERROR` with a message.
//!
//! Every list goes through the aggregation fan-out's read ([`crate::aggregate::fanout::ask`]):
//! the cluster's path prefix, the credential of SPEC §3 (here from the body's `auth`), and
//! the credential-keyed read cache that serves a page's repeated polls.

use super::{metrics, object};
use crate::aggregate::cache::AggregateCache;
use crate::aggregate::fanout::{self, Outcome};
use crate::cluster::{Cluster, Registry};
use crate::config::{CustomResourceRef, ObjectType};
use crate::proxy::forward::Caller;
use crate::proxy::ProxyState;
use crate::upstream::credential;
use futures_util::future::join_all;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// What JavaScript's `encodeURIComponent` leaves alone.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// What to look for in every cluster.
pub(crate) struct Lookup {
    /// The label selector.
    pub selector: String,
    /// The namespace, `None`: cluster-wide.
    pub namespace: Option<String>,
    /// The object types (none for the custom-resources query).
    pub types: Vec<ObjectType>,
    /// The request's custom resources (the custom query); `None`: the cluster's, else
    /// `global_custom`.
    pub custom: Option<Vec<CustomResourceRef>>,
    /// `kubernetes.customResources`.
    pub global_custom: Vec<CustomResourceRef>,
}

/// Where the lists go and with what.
pub(crate) struct Fetch<'a> {
    /// The headers made from the body's `auth` (the provider headers of SPEC §3) and the
    /// caller's address.
    pub caller: Caller<'a>,
    pub proxy: &'a ProxyState,
    pub registry: &'a Registry,
    pub cache: Option<&'a AggregateCache>,
    /// A cluster's whole part must be done within this.
    pub timeout: Duration,
}

/// One list's outcome.
enum Listed {
    /// 2xx: the parsed body.
    Ok(Value),
    /// Any other status: the error entry.
    Status(Value),
}

/// Backstage's `statusCodeToErrorType`.
fn error_type(code: u16) -> &'static str {
    match code {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED_ERROR",
        404 => "NOT_FOUND",
        500 => "SYSTEM_ERROR",
        _ => "UNKNOWN_ERROR",
    }
}

/// `buildResourcePath`.
fn resource_path(group: &str, version: &str, plural: &str, namespace: Option<&str>) -> String {
    let mut path = if group.is_empty() {
        format!("/api/{}", encode(version))
    } else {
        format!("/apis/{}/{}", encode(group), encode(version))
    };
    if let Some(ns) = namespace {
        path.push_str("/namespaces/");
        path.push_str(&encode(ns));
    }
    path.push('/');
    path.push_str(&encode(plural));
    path
}

/// Lists `path` with the selector; `Err` is a fetch failure's message.
async fn list(
    f: &Fetch<'_>,
    cluster: &Arc<Cluster>,
    path: &str,
    selector: &str,
) -> Result<Listed, String> {
    let query = (!selector.is_empty()).then(|| format!("labelSelector={}", encode(selector)));
    let outcome = fanout::ask(
        &f.caller,
        f.proxy,
        f.registry,
        cluster,
        path,
        query.as_deref(),
        f.cache,
    )
    .await
    .unwrap_or_else(Outcome::Failed);
    match outcome {
        Outcome::Failed(e) => Err(e.message),
        Outcome::Http { status, body, .. } if (200..300).contains(&status) => {
            serde_json::from_slice(&body).map(Listed::Ok).map_err(|e| {
                format!(
                    "invalid json response body at {path} reason: {e} (cluster {})",
                    cluster.key
                )
            })
        }
        Outcome::Http { status, .. } => {
            // Backstage reports the path the request went to: the cluster URL's own path
            // and the resource path, without the query.
            let prefix = cluster.spec.url.path().trim_end_matches('/');
            Ok(Listed::Status(json!({
                "errorType": error_type(status),
                "statusCode": status,
                "resourcePath": format!("{prefix}{path}"),
            })))
        }
    }
}

/// The message of a provider token the cluster needs and the body lacks, when the cluster
/// has no server-side credential to fall back on.
fn missing_token(
    cluster: &Cluster,
    headers: &actix_web::http::header::HeaderMap,
) -> Option<String> {
    let spec = &cluster.spec;
    let message = match spec.auth_provider.as_deref()? {
        "google" => "Google token not found under auth.google in request body".to_string(),
        "oidc" => format!(
            "Auth token not found under oidc.{} in request body",
            spec.oidc_token_provider.as_deref().unwrap_or("")
        ),
        "aks" | "pinniped" => format!(
            "no bearer token or client cert for cluster '{}' and not running in Kubernetes",
            spec.name
        ),
        _ => return None,
    };
    let has_own = matches!(credential::from_request(headers, spec, true), Ok(Some(_)));
    let has_server = spec.credential.is_some() || spec.tls.client_cert_pem.is_some();
    (!has_own && !has_server).then_some(message)
}

/// The resources of a list, as Backstage's fetcher hands them on: Secrets' values hidden,
/// custom resources' items given the list's kind.
fn transform(
    ty: &str,
    group: &str,
    version: &str,
    plural: &str,
    mut list: Value,
) -> Result<Vec<Value>, String> {
    let kind = list["kind"]
        .as_str()
        .map(|k| k.strip_suffix("List").unwrap_or(k).to_string());
    let mut items = match list.get_mut("items") {
        Some(Value::Array(a)) => std::mem::take(a),
        _ => Vec::new(),
    };
    let secrets = ty == "secrets"
        || kind.as_deref() == Some("Secret")
        || (group.is_empty() && version == "v1" && plural == "secrets");
    if secrets {
        for item in &mut items {
            for field in ["data", "stringData"] {
                if let Some(Value::Object(m)) = item.get_mut(field) {
                    for v in m.values_mut() {
                        *v = Value::String("***".into());
                    }
                }
            }
        }
    }
    if ty == "customresources" {
        let Some(kind) = kind else {
            return Err(format!("Missing kind in response when fetching '{plural}'"));
        };
        for item in &mut items {
            if let Value::Object(m) = item {
                m.insert("kind".into(), Value::String(kind.clone()));
            }
        }
    }
    Ok(items)
}

/// Whether a response holds pods (`isPodFetchResponse`).
fn holds_pods(ty: &str, resources: &[Value]) -> bool {
    ty == "pods"
        || (ty == "customresources"
            && resources
                .first()
                .is_some_and(|p| p["apiVersion"] == "v1" && p["kind"] == "Pod"))
}

/// The `cluster` field of an item: Backstage's, plus kubeplex's `key`.
fn cluster_field(cluster: &Cluster) -> Value {
    let spec = &cluster.spec;
    let mut m = Map::new();
    m.insert("name".into(), json!(spec.name));
    m.insert("key".into(), json!(cluster.key.as_str()));
    if let Some(t) = spec.title.as_deref().filter(|t| !t.is_empty()) {
        m.insert("title".into(), json!(t));
    }
    if let Some(u) = spec.dashboard_url.as_deref().filter(|u| !u.is_empty()) {
        m.insert("dashboardUrl".into(), json!(u));
    }
    if let Some(a) = spec.dashboard_app.as_deref().filter(|a| !a.is_empty()) {
        m.insert("dashboardApp".into(), json!(a));
    }
    if let Some(p) = &spec.backstage.dashboard_parameters {
        m.insert("dashboardParameters".into(), p.clone());
    }
    Value::Object(m)
}

/// What one cluster gave: resources, pod metrics and errors.
#[derive(Default)]
struct Found {
    resources: Vec<Value>,
    pod_metrics: Vec<Value>,
    errors: Vec<Value>,
}

/// One cluster's item of the answer (`{cluster, podMetrics, resources, errors}`), or
/// `None` when it had no errors and found nothing (Backstage leaves those out).
pub(crate) async fn cluster_item(
    f: &Fetch<'_>,
    lookup: &Lookup,
    cluster: &Arc<Cluster>,
) -> Option<Value> {
    let found = match missing_token(cluster, f.caller.headers) {
        Some(message) => Err(message),
        None => match tokio::time::timeout(f.timeout, find(f, lookup, cluster)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "cluster {} did not answer within {}",
                cluster.key,
                humantime::format_duration(f.timeout)
            )),
        },
    };
    let found = found.unwrap_or_else(|message| Found {
        errors: vec![json!({"errorType": "FETCH_ERROR", "message": message})],
        ..Found::default()
    });
    let nothing = found.errors.is_empty()
        && !found
            .resources
            .iter()
            .any(|r| r["resources"].as_array().is_some_and(|a| !a.is_empty()));
    if nothing {
        return None;
    }
    Some(object([
        ("cluster", cluster_field(cluster)),
        ("podMetrics", Value::Array(found.pod_metrics)),
        ("resources", Value::Array(found.resources)),
        ("errors", Value::Array(found.errors)),
    ]))
}

/// The lists, then the pod metrics, of one cluster; `Err` is a fetch failure's message.
async fn find(f: &Fetch<'_>, lookup: &Lookup, cluster: &Arc<Cluster>) -> Result<Found, String> {
    let custom = lookup
        .custom
        .as_ref()
        .or(cluster.spec.backstage.custom_resources.as_ref())
        .unwrap_or(&lookup.global_custom);
    let wanted: Vec<(&str, &str, &str, &str)> = lookup
        .types
        .iter()
        .map(|t| {
            (
                t.object_type.as_str(),
                t.group.as_str(),
                t.api_version.as_str(),
                t.plural.as_str(),
            )
        })
        .chain(custom.iter().map(|c| {
            (
                "customresources",
                c.group.as_str(),
                c.api_version.as_str(),
                c.plural.as_str(),
            )
        }))
        .collect();
    let ns = lookup.namespace.as_deref();
    let lists = join_all(wanted.iter().map(|(_, g, v, p)| {
        let path = resource_path(g, v, p, ns);
        async move { list(f, cluster, &path, &lookup.selector).await }
    }))
    .await;
    let mut found = Found::default();
    for ((ty, g, v, p), listed) in wanted.iter().zip(lists) {
        match listed? {
            Listed::Ok(body) => {
                let resources = transform(ty, g, v, p, body)?;
                found.resources.push(object([
                    ("type", json!(ty)),
                    ("resources", Value::Array(resources)),
                ]));
            }
            Listed::Status(e) => found.errors.push(e),
        }
    }
    if cluster.spec.backstage.skip_metrics_lookup {
        return Ok(found);
    }
    let mut namespaces: Vec<String> = Vec::new();
    for r in &found.resources {
        let (Some(ty), Some(items)) = (r["type"].as_str(), r["resources"].as_array()) else {
            continue;
        };
        if !holds_pods(ty, items) {
            continue;
        }
        for pod in items {
            if let Some(n) = pod["metadata"]["namespace"].as_str() {
                if !namespaces.iter().any(|x| x == n) {
                    namespaces.push(n.to_string());
                }
            }
        }
    }
    let per_namespace = join_all(namespaces.iter().map(|n| async move {
        let metrics_path = resource_path("metrics.k8s.io", "v1beta1", "pods", Some(n));
        let pods_path = resource_path("", "v1", "pods", Some(n));
        let (metrics, pods) = futures_util::join!(
            list(f, cluster, &metrics_path, &lookup.selector),
            list(f, cluster, &pods_path, &lookup.selector)
        );
        match (metrics?, pods?) {
            (Listed::Ok(m), Listed::Ok(p)) => metrics::top_pods(p, &m).map(Ok),
            (Listed::Ok(_), Listed::Status(e)) | (Listed::Status(e), _) => Ok(Err(e)),
        }
    }))
    .await;
    for r in per_namespace {
        match r? {
            Ok(entries) => found.pod_metrics.extend(entries),
            Err(e) => found.errors.push(e),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_backstage_builds_them() {
        assert_eq!(resource_path("", "v1", "pods", None), "/api/v1/pods");
        assert_eq!(
            resource_path("apps", "v1", "deployments", Some("shop")),
            "/apis/apps/v1/namespaces/shop/deployments"
        );
        assert_eq!(
            encode("backstage.io/kubernetes-id=web"),
            "backstage.io%2Fkubernetes-id%3Dweb"
        );
        assert_eq!(encode("a in (x,y)"), "a%20in%20(x%2Cy)");
    }

    #[test]
    fn secrets_hidden_and_custom_kinds_given() {
        let list = json!({"kind": "SecretList", "items": [{"metadata": {"name": "s"}, "data": {"a": "eA=="}, "type": "Opaque"}]});
        let out = transform("secrets", "", "v1", "secrets", list).unwrap();
        assert_eq!(out[0]["data"], json!({"a": "***"}));
        let list = json!({"kind": "RolloutList", "items": [{"metadata": {"name": "r"}}]});
        let out = transform(
            "customresources",
            "argoproj.io",
            "v1alpha1",
            "rollouts",
            list,
        )
        .unwrap();
        assert_eq!(out[0]["kind"], "Rollout");
        assert!(transform("customresources", "x", "v1", "ys", json!({"items": []})).is_err());
    }
}
