//! Seeds: Namespaces and Services loaded at start from YAML (several documents, or a
//! `kind: List`), from a file or from text embedded in the binary. Every object goes
//! through the same defaulting, validation and allocation as an API create; the
//! well-known namespaces of a real cluster always exist.

use super::config::SeedSource;
use super::errors::SimError;
use super::model::{Namespace, Service};
use super::store::{Kind, Store};
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

/// Loads a seed into `store`.
pub(crate) fn load(store: &Store, source: &SeedSource) -> Result<(), SeedError> {
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
            other => {
                return Err(at(format!(
                    "unsupported kind {other:?}: a seed holds Namespaces and Services"
                )))
            }
        }
    }
    Ok(())
}
