//! The Namespace registry: create (name and label checks, `kubernetes.io/metadata.name`
//! label, `Active` phase), update of metadata, and delete, which removes the namespace's
//! Services first, each with its own DELETED event.

use super::errors::{Cause, SimError};
use super::model::{new_uid, now_timestamp, Namespace};
use super::service;
use super::store::{Kind, Object, Stored, Txn};
use super::validation;
use std::sync::Arc;

/// Namespaces that cannot be deleted.
pub(crate) const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

fn defaults(ns: &mut Namespace) {
    let name = ns.metadata.name().to_string();
    ns.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("kubernetes.io/metadata.name".into(), name);
    ns.spec
        .finalizers
        .get_or_insert_with(|| vec!["kubernetes".into()]);
    if ns.status.phase.is_none() {
        ns.status.phase = Some("Active".into());
    }
}

/// Creates a namespace.
pub(crate) fn create(
    txn: &mut Txn<'_>,
    mut ns: Namespace,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    ns.metadata.prepare_create()?;
    let meta = &mut ns.metadata;
    meta.namespace = None;
    meta.uid = Some(new_uid());
    meta.creation_timestamp = Some(now_timestamp());
    meta.generation = None;
    meta.deletion_timestamp = None;
    ns.status = Default::default();
    ns.kind = None;
    ns.api_version = None;
    defaults(&mut ns);
    let name = ns.metadata.name().to_string();
    let mut causes: Vec<Cause> = Vec::new();
    validation::object_name(&ns.metadata, validation::dns1123_label, &mut causes);
    validation::labels_and_annotations(&ns.metadata, &mut causes);
    if !causes.is_empty() {
        return Err(SimError::invalid("Namespace", &name, causes));
    }
    if txn.get(Kind::Namespace, "", &name).is_some() {
        return Err(SimError::already_exists("namespaces", &name));
    }
    if dry_run {
        return Ok(preview(ns));
    }
    Ok(txn.put(Object::Namespace(ns)))
}

fn preview(ns: Namespace) -> Arc<Stored> {
    let json = bytes::Bytes::from(serde_json::to_vec(&ns).unwrap_or_default());
    Arc::new(Stored {
        namespace: String::new(),
        name: ns.metadata.name().to_string(),
        rv: 0,
        object: Object::Namespace(ns),
        json,
    })
}

/// Replaces a namespace's labels, annotations and finalizers (the rest is the server's).
pub(crate) fn update(
    txn: &mut Txn<'_>,
    name: &str,
    new: Namespace,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    let current = txn
        .get(Kind::Namespace, "", name)
        .ok_or_else(|| SimError::not_found("namespaces", name))?;
    let Object::Namespace(old) = &current.object else {
        return Err(SimError::internal("stored object is not a Namespace"));
    };
    current.check_fresh(new.metadata.resource_version.as_deref())?;
    let mut ns = old.clone();
    ns.metadata.labels = new.metadata.labels;
    ns.metadata.annotations = new.metadata.annotations;
    ns.metadata.finalizers = new.metadata.finalizers;
    defaults(&mut ns);
    let mut causes = Vec::new();
    validation::labels_and_annotations(&ns.metadata, &mut causes);
    if !causes.is_empty() {
        return Err(SimError::invalid("Namespace", name, causes));
    }
    if &ns == old {
        return Ok(current);
    }
    if dry_run {
        return Ok(preview(ns));
    }
    Ok(txn.put(Object::Namespace(ns)))
}

/// Deletes a namespace and every Service in it. Returns the namespace as last seen, in
/// phase `Terminating`.
pub(crate) fn delete(
    txn: &mut Txn<'_>,
    name: &str,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    let current = txn
        .get(Kind::Namespace, "", name)
        .ok_or_else(|| SimError::not_found("namespaces", name))?;
    if IMMORTAL.contains(&name) {
        return Err(SimError {
            details: Some(Box::new(super::errors::Details {
                name: Some(name.into()),
                kind: Some("namespaces".into()),
                ..Default::default()
            })),
            ..SimError::new(
                403,
                "Forbidden",
                format!("namespaces {name:?} is forbidden: this namespace may not be deleted"),
            )
        });
    }
    let Object::Namespace(mut ns) = current.object.clone() else {
        return Err(SimError::internal("stored object is not a Namespace"));
    };
    ns.metadata.deletion_timestamp = Some(now_timestamp());
    ns.status.phase = Some("Terminating".into());
    if dry_run {
        return Ok(preview(ns));
    }
    let terminating = txn.put(Object::Namespace(ns));
    let services: Vec<String> = txn
        .snapshot()
        .iter(Kind::Service, Some(name), None)
        .map(|s| s.name.clone())
        .collect();
    for svc in services {
        service::delete(txn, name, &svc, false)?;
    }
    // Every other object in the namespace goes with it (the namespace controller).
    let rest: Vec<(Kind, String)> = txn
        .snapshot()
        .all()
        .filter(|s| s.namespace == name && s.kind().namespaced())
        .map(|s| (s.kind(), s.name.clone()))
        .collect();
    for (kind, obj) in rest {
        txn.delete(kind, name, &obj);
    }
    txn.delete(Kind::Namespace, "", name);
    Ok(terminating)
}
