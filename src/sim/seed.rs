//! Seeds: Namespaces and Services loaded at start from YAML (several documents, or a
//! `kind: List`), from a file or from text embedded in the binary. Every object goes
//! through the same defaulting, validation and allocation as an API create; the
//! well-known namespaces of a real cluster always exist.

use super::config::SeedSource;
use super::errors::SimError;
use super::kinds::CustomType;
use super::model::{Namespace, Service};
use super::objects::{self, Origin};
use super::state::SimState;
use super::store::{Generic, Kind, Store};
use super::{namespace, service};
use serde::Deserialize;
use serde_json::Value;

/// Namespaces every cluster has.
pub(crate) const BUILTIN_NAMESPACES: &[&str] =
    &["default", "kube-node-lease", "kube-public", "kube-system"];

/// Why a seed could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("seed {source_name}: {message}")]
pub(crate) struct SeedError {
    /// The seed's file or name.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

fn ensure_namespace(store: &Store, name: &str) -> Result<(), SimError> {
    store.write(|txn| {
        if txn.get(Kind::Namespace, "", name).is_none() {
            let mut ns = Namespace::default();
            ns.metadata.name = Some(name.to_string());
            namespace::create(txn, ns, false)?;
        }
        Ok(())
    })
}

/// Creates the built-in namespaces.
pub(crate) fn builtins(store: &Store) -> Result<(), SimError> {
    for ns in BUILTIN_NAMESPACES {
        ensure_namespace(store, ns)?;
    }
    Ok(())
}

fn flatten(doc: Value, out: &mut Vec<Value>) {
    if doc
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
    {
        if let Some(Value::Array(items)) = doc.get("items") {
            for item in items.clone() {
                flatten(item, out);
            }
        }
    } else if !doc.is_null() {
        out.push(doc);
    }
}

/// Loads a seed into the cluster's store: Namespaces, Services, custom resource
/// definitions (which make their kind served) and objects of every served kind.
pub(crate) fn load(state: &SimState, source: &SeedSource) -> Result<(), SeedError> {
    let store = &state.store;
    let (name, text) = match source {
        SeedSource::File(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| SeedError {
                source_name: path.display().to_string(),
                message: format!("cannot read: {e}"),
            })?,
        ),
        SeedSource::Text { name, text } => (name.clone(), text.clone()),
    };
    let err = |message: String| SeedError {
        source_name: name.clone(),
        message,
    };
    let mut objects = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let yaml = serde_yaml::Value::deserialize(doc)
            .map_err(|e| err(format!("document {}: not YAML: {e}", i + 1)))?;
        let json =
            serde_json::to_value(yaml).map_err(|e| err(format!("document {}: {e}", i + 1)))?;
        flatten(json, &mut objects);
    }
    for (i, obj) in objects.into_iter().enumerate() {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let at = |m: String| err(format!("object {} ({kind}): {m}", i + 1));
        match kind.as_str() {
            "Namespace" => {
                let ns: Namespace = serde_json::from_value(obj).map_err(|e| at(e.to_string()))?;
                let name = ns.metadata.name().to_string();
                store
                    .write(|txn| {
                        if txn.get(Kind::Namespace, "", &name).is_some() {
                            namespace::update(txn, &name, ns, false).map(|_| ())
                        } else {
                            namespace::create(txn, ns, false).map(|_| ())
                        }
                    })
                    .map_err(|e| at(e.message))?;
            }
            "Service" => {
                let svc: Service = serde_json::from_value(obj).map_err(|e| at(e.to_string()))?;
                let ns = svc
                    .metadata
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".into());
                ensure_namespace(store, &ns).map_err(|e| at(e.message))?;
                store
                    .write(|txn| service::create(txn, &ns, svc, false))
                    .map_err(|e| at(e.message))?;
            }
            // Pods are seeded by the pod store (`pods::store`).
            "Pod" => {}
            "CustomResourceDefinition" => {
                for custom in crd_types(&obj).map_err(at)? {
                    state.add_custom(&custom).map_err(at)?;
                }
            }
            other => {
                let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
                let Some(kind) = state
                    .kind_named(api_version, other)
                    .filter(|k| !k.info().read_only)
                else {
                    return Err(at(format!(
                        "unsupported kind {api_version}/{other}: a seed holds {}",
                        seedable(state)
                    )));
                };
                let generic = Generic::from_value(kind, obj).map_err(at)?;
                let ns = if kind.namespaced() {
                    let ns = generic
                        .metadata
                        .namespace
                        .clone()
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| "default".into());
                    ensure_namespace(store, &ns).map_err(|e| at(e.message))?;
                    ns
                } else {
                    String::new()
                };
                store
                    .write(|txn| objects::create(txn, &ns, generic, Origin::Seed, false))
                    .map_err(|e| at(e.message))?;
            }
        }
    }
    store
        .write(objects::reconcile)
        .map_err(|e| err(format!("reconciling the seeded workloads: {}", e.message)))?;
    Ok(())
}

/// What a seed may hold, for messages: every served kind but the derived ones.
fn seedable(state: &SimState) -> String {
    let mut kinds: Vec<String> = vec!["Pod".into(), "CustomResourceDefinition".into()];
    kinds.extend(
        state
            .kinds()
            .into_iter()
            .filter(|k| !k.info().read_only)
            .map(|k| format!("{} ({})", k.name(), k.api_version())),
    );
    kinds.join(", ")
}

/// The custom types an `apiextensions.k8s.io/v1` CustomResourceDefinition declares: one
/// per served version.
fn crd_types(crd: &Value) -> Result<Vec<CustomType>, String> {
    let spec = crd.get("spec").ok_or("spec is required")?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let names = spec.get("names").ok_or("spec.names is required")?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let group = s(spec.get("group")).ok_or("spec.group is required")?;
    let kind = s(names.get("kind")).ok_or("spec.names.kind is required")?;
    let plural = s(names.get("plural")).ok_or("spec.names.plural is required")?;
    let namespaced = match s(spec.get("scope")).as_deref() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope must be Namespaced or Cluster".into()),
    };
    let versions: Vec<String> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("served") != Some(&Value::Bool(false)))
                .filter_map(|v| s(v.get("name")))
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        return Err("spec.versions must name at least one served version".into());
    }
    Ok(versions
        .into_iter()
        .map(|version| CustomType {
            group: group.clone(),
            version,
            kind: kind.clone(),
            plural: plural.clone(),
            singular: s(names.get("singular")),
            namespaced,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
        })
        .collect())
}
