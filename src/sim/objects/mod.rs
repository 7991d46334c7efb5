//! The generic object registry: create, update and delete, in a store transaction, of every
//! kind without a typed model (ConfigMaps, Secrets, workloads, HPAs, Jobs, Ingresses,
//! custom resources). The common rules live here (server-owned metadata, namespaces that
//! must exist, resourceVersion preconditions, generation bumped on spec changes, status
//! only through `/status`, no-op updates write nothing); what differs per kind (defaults,
//! validation, immutable fields, the status a controller would write) is in [`rules`]; what
//! controllers do to other objects (a Deployment's ReplicaSets and Events) in
//! [`controllers`].

mod controllers;
mod rules;

pub(crate) use controllers::{pod_template_hash, uid_for};
pub(crate) use rules::{scale_selector, synthesize_status};

use super::errors::SimError;
use super::model::{new_uid, now_timestamp, seed_timestamp};
use super::service::Part;
use super::store::{Generic, Kind, Object, Stored, Txn};
use super::validation;
use serde_json::Value;
use std::sync::Arc;

/// How a create treats the `status` it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// An API request: the status is the server's (a controller's) to write.
    Request,
    /// A seed: a given status is kept (a demo may show a rollout in progress).
    Seed,
}

/// A stored-like view of an object that is not committed (dry runs).
fn preview(obj: Generic) -> Arc<Stored> {
    let json = bytes::Bytes::from(serde_json::to_vec(&obj).unwrap_or_default());
    Arc::new(Stored {
        namespace: obj.metadata.namespace.clone().unwrap_or_default(),
        name: obj.metadata.name().to_string(),
        rv: 0,
        object: Object::Generic(obj),
        json,
    })
}

/// Whether `status` is the server's, written only through the `status` subresource. A custom
/// resource type without that subresource keeps `status` as one of its fields (set on
/// create, changed by updates), as kube-apiserver does for a CRD that does not enable it.
fn status_is_subresource(kind: Kind) -> bool {
    kind.info().is_builtin() || kind.info().has_subresource("status")
}

fn check_namespace_exists(txn: &Txn<'_>, kind: Kind, ns: &str) -> Result<(), SimError> {
    if kind.namespaced() && txn.get(Kind::Namespace, "", ns).is_none() {
        return Err(SimError::not_found("namespaces", ns));
    }
    Ok(())
}

/// Creates an object of `kind` in namespace `ns` (`""` for cluster-scoped kinds).
pub(crate) fn create(
    txn: &mut Txn<'_>,
    ns: &str,
    mut obj: Generic,
    origin: Origin,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    let kind = obj.kind;
    check_namespace_exists(txn, kind, ns)?;
    obj.metadata.prepare_create()?;
    let meta = &mut obj.metadata;
    meta.namespace = kind.namespaced().then(|| ns.to_string());
    // Seeded objects keep a given uid or get a stable one, so that seeds and the pods of
    // seeded workloads can name them as owners.
    meta.uid = match origin {
        Origin::Request => Some(new_uid()),
        Origin::Seed => Some(
            meta.uid
                .clone()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| uid_for(ns, kind.name(), meta.name.as_deref().unwrap_or(""))),
        ),
    };
    meta.creation_timestamp = match origin {
        Origin::Request => Some(now_timestamp()),
        Origin::Seed => meta
            .creation_timestamp
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| Some(seed_timestamp())),
    };
    meta.generation = rules::has_generation(kind).then_some(1);
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    let given_status = if status_is_subresource(kind) {
        obj.body.shift_remove("status")
    } else {
        None
    };
    rules::defaults(&mut obj);
    let name = obj.metadata.name().to_string();
    let mut causes = Vec::new();
    validation::object_name(&obj.metadata, rules::name_rule(kind), &mut causes);
    validation::labels_and_annotations(&obj.metadata, &mut causes);
    causes.extend(rules::validate(&obj, None));
    if !causes.is_empty() {
        return Err(SimError::invalid(&kind.qualified_kind(), &name, causes));
    }
    if txn.get(kind, ns, &name).is_some() {
        return Err(SimError::already_exists(&kind.qualified_resource(), &name));
    }
    match (origin, given_status) {
        (Origin::Seed, Some(status)) if !status.is_null() => {
            obj.body.insert("status".into(), status);
        }
        _ => synthesize_status(&mut obj),
    }
    if dry_run {
        return Ok(preview(obj));
    }
    let stored = txn.put(Object::Generic(obj));
    // A seed's objects are reconciled once the whole seed is in (`reconcile`), so that
    // the ReplicaSets a seed brings along are adopted rather than duplicated.
    if origin == Origin::Request {
        controllers::after_write(txn, &stored, None)?;
    }
    Ok(stored)
}

/// Runs the controllers over every object, as they would catch up after a start: called
/// once a seed is loaded.
pub(crate) fn reconcile(txn: &mut Txn<'_>) -> Result<(), SimError> {
    let deployments: Vec<Arc<Stored>> = txn
        .snapshot()
        .iter(Kind::Deployment, None, None)
        .cloned()
        .collect();
    for d in deployments {
        controllers::after_write(txn, &d, None)?;
    }
    Ok(())
}

/// The body without a subresource's `status`: what a change of bumps `generation`.
fn spec_of(obj: &Generic) -> Vec<(&String, &Value)> {
    let separate = status_is_subresource(obj.kind);
    obj.body
        .iter()
        .filter(|(k, _)| !separate || *k != "status")
        .collect()
}

/// Replaces an object (`part` Main or Status). A stale `metadata.resourceVersion` is a 409;
/// an update that changes nothing writes nothing and returns the current object.
pub(crate) fn update(
    txn: &mut Txn<'_>,
    ns: &str,
    name: &str,
    mut obj: Generic,
    part: Part,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    let kind = obj.kind;
    let current = txn
        .get(kind, ns, name)
        .ok_or_else(|| SimError::not_found(&kind.qualified_resource(), name))?;
    let Object::Generic(old) = &current.object else {
        return Err(SimError::internal("stored object has a typed model"));
    };
    current.check_fresh(obj.metadata.resource_version.as_deref())?;
    match part {
        Part::Status => {
            let status = obj.body.shift_remove("status");
            obj = old.clone();
            match status {
                Some(s) if !s.is_null() => {
                    obj.body.insert("status".into(), s);
                }
                _ => {
                    obj.body.shift_remove("status");
                }
            }
        }
        Part::Main => {
            obj.metadata.keep_server_owned(&old.metadata);
            if status_is_subresource(kind) {
                obj.body.shift_remove("status");
                if let Some(status) = old.body.get("status") {
                    obj.body.insert("status".into(), status.clone());
                }
            }
            rules::defaults(&mut obj);
        }
    }
    obj.metadata.resource_version = old.metadata.resource_version.clone();
    let spec_changed = spec_of(&obj) != spec_of(old);
    if part == Part::Main && spec_changed && rules::has_generation(kind) {
        obj.metadata.generation = Some(old.metadata.generation.unwrap_or(1) + 1);
    }
    let mut causes = Vec::new();
    validation::labels_and_annotations(&obj.metadata, &mut causes);
    causes.extend(rules::validate(&obj, Some(old)));
    if !causes.is_empty() {
        return Err(SimError::invalid(&kind.qualified_kind(), name, causes));
    }
    if part == Part::Main && spec_changed {
        synthesize_status(&mut obj);
    }
    if &obj == old {
        return Ok(current);
    }
    if dry_run {
        return Ok(preview(obj));
    }
    let stored = txn.put(Object::Generic(obj));
    if part == Part::Main && spec_changed {
        controllers::after_write(txn, &stored, Some(&current))?;
    }
    Ok(stored)
}

/// Deletes an object, and (as the garbage collector's background propagation would) every
/// object of this cluster whose `ownerReferences` name it, recursively: in its namespace, or
/// in any namespace when the owner is cluster-scoped.
pub(crate) fn delete(
    txn: &mut Txn<'_>,
    kind: Kind,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    let current = txn
        .get(kind, ns, name)
        .ok_or_else(|| SimError::not_found(&kind.qualified_resource(), name))?;
    if dry_run {
        return Ok(current);
    }
    let gone = txn
        .delete(kind, ns, name)
        .ok_or_else(|| SimError::not_found(&kind.qualified_resource(), name))?;
    let mut owners: Vec<String> = current.object.meta().uid.clone().into_iter().collect();
    while let Some(uid) = owners.pop() {
        let snap = txn.snapshot();
        let dependents: Vec<Arc<Stored>> = snap
            .all()
            .filter(|s| ns.is_empty() || s.namespace == ns || !s.kind().namespaced())
            .filter(|s| {
                s.object
                    .meta()
                    .owner_references
                    .as_ref()
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                    })
            })
            .cloned()
            .collect();
        for dep in dependents {
            if txn.delete(dep.kind(), &dep.namespace, &dep.name).is_some() {
                owners.extend(dep.object.meta().uid.clone());
            }
        }
    }
    Ok(gone)
}
