//! The settings of Backstage's entity routes (SPEC §10): `kubeplex.backstage.catalogUrl`
//! and the keys of Backstage's own `kubernetes:` block its Kubernetes backend reads for
//! them: `serviceLocatorMethod.type`, `objectTypes`, `apiVersionOverrides`,
//! `customResources`; and a cluster's `customResources` and `dashboardParameters`.

use super::read::{Obj, Problems};
use super::tree::{Node, Value};
use super::{BackstageSettings, CustomResourceRef, ObjectType, ServiceLocator};

/// Every object type Backstage's backend knows, in its order (`ALL_OBJECTS`): the three
/// it never lists by default, then the defaults. `(objectType, group, apiVersion, plural)`.
pub(crate) const ALL_OBJECT_TYPES: &[(&str, &str, &str, &str)] = &[
    ("secrets", "", "v1", "secrets"),
    ("persistentvolumes", "", "v1", "persistentvolumes"),
    ("persistentvolumeclaims", "", "v1", "persistentvolumeclaims"),
    ("pods", "", "v1", "pods"),
    ("services", "", "v1", "services"),
    ("configmaps", "", "v1", "configmaps"),
    ("limitranges", "", "v1", "limitranges"),
    ("resourcequotas", "", "v1", "resourcequotas"),
    ("deployments", "apps", "v1", "deployments"),
    ("replicasets", "apps", "v1", "replicasets"),
    (
        "horizontalpodautoscalers",
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
    ),
    ("jobs", "batch", "v1", "jobs"),
    ("cronjobs", "batch", "v1", "cronjobs"),
    ("ingresses", "networking.k8s.io", "v1", "ingresses"),
    ("statefulsets", "apps", "v1", "statefulsets"),
    ("daemonsets", "apps", "v1", "daemonsets"),
];

/// How many of [`ALL_OBJECT_TYPES`] are not listed unless `objectTypes` asks for them.
const NOT_DEFAULT: usize = 3;

/// The object types listed when `kubernetes.objectTypes` is not set, in Backstage's order.
pub(crate) fn default_object_types() -> Vec<ObjectType> {
    ALL_OBJECT_TYPES[NOT_DEFAULT..]
        .iter()
        .map(object_type)
        .collect()
}

fn object_type(t: &(&str, &str, &str, &str)) -> ObjectType {
    ObjectType {
        object_type: t.0.into(),
        group: t.1.into(),
        api_version: t.2.into(),
        plural: t.3.into(),
    }
}

/// Reads the entity routes' settings: `kubernetes` is Backstage's block, `kubeplex` ours,
/// `backend_catalog` the catalog URL a `backend.baseUrl` implies.
pub(crate) fn read(
    kubernetes: Option<&Obj<'_>>,
    kubeplex: Option<&Obj<'_>>,
    backend_catalog: Option<String>,
    p: &mut Problems,
) -> BackstageSettings {
    let mut out = BackstageSettings {
        catalog_url: backend_catalog,
        ..Default::default()
    };
    if let Some(b) = kubeplex.and_then(|kp| kp.obj("backstage", p)) {
        b.deny_unknown(&["catalogUrl"], p);
        if let Some(url) = b.string("catalogUrl", p) {
            match super::locators::check_url(&url) {
                Ok(_) => out.catalog_url = Some(url.trim_end_matches('/').to_string()),
                Err(m) => b.problem("catalogUrl", m, p),
            }
        }
    }
    let Some(k) = kubernetes else {
        return out;
    };
    if let Some(m) = k.obj("serviceLocatorMethod", p) {
        match m.required_string("type", p).as_deref() {
            Some("multiTenant") => out.service_locator = ServiceLocator::MultiTenant,
            Some("singleTenant") => out.service_locator = ServiceLocator::SingleTenant,
            Some("catalogRelation") => out.service_locator = ServiceLocator::CatalogRelation,
            Some(other) => m.problem(
                "type",
                format!(
                    "unsupported service locator {other:?} (expected multiTenant, singleTenant or catalogRelation)"
                ),
                p,
            ),
            None => {}
        }
    }
    let overrides = k.string_map("apiVersionOverrides", p).unwrap_or_default();
    for name in overrides.keys() {
        if !ALL_OBJECT_TYPES.iter().any(|t| t.0 == name) {
            k.problem(
                &format!("apiVersionOverrides.{name}"),
                format!("unknown object type {name:?}"),
                p,
            );
        }
    }
    let mut types = match k.strings("objectTypes", p) {
        Some(names) => {
            for n in &names {
                if !ALL_OBJECT_TYPES.iter().any(|t| t.0 == n) {
                    k.problem(
                        "objectTypes",
                        format!(
                            "unknown object type {n:?} (expected some of {})",
                            ALL_OBJECT_TYPES
                                .iter()
                                .map(|t| t.0)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        p,
                    );
                }
            }
            Some(
                ALL_OBJECT_TYPES
                    .iter()
                    .filter(|t| names.iter().any(|n| n == t.0))
                    .map(object_type)
                    .collect::<Vec<_>>(),
            )
        }
        None if !overrides.is_empty() => Some(default_object_types()),
        None => None,
    };
    for t in types.iter_mut().flatten() {
        if let Some(v) = overrides.get(&t.object_type) {
            t.api_version = v.clone();
        }
    }
    out.object_types = types;
    out.custom_resources = custom_resources(k, "customResources", p).unwrap_or_default();
    out
}

/// A `customResources` list of `{group, apiVersion, plural}` (Backstage's shape).
pub(crate) fn custom_resources(
    o: &Obj<'_>,
    key: &str,
    p: &mut Problems,
) -> Option<Vec<CustomResourceRef>> {
    let list = o.list(key, p)?;
    let mut out = Vec::new();
    for (path, node) in list {
        let Some(c) = Obj::new(node, &path, p) else {
            continue;
        };
        c.deny_unknown(&["group", "apiVersion", "plural"], p);
        let (Some(group), Some(api_version), Some(plural)) = (
            c.required_string("group", p),
            c.required_string("apiVersion", p),
            c.required_string("plural", p),
        ) else {
            continue;
        };
        out.push(CustomResourceRef {
            group,
            api_version,
            plural,
        });
    }
    Some(out)
}

/// A configuration value as JSON (for values kubeplex passes on as written, such as
/// `dashboardParameters`).
pub(crate) fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null | Value::Invalid => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}
