//! What the simulated controllers do to other objects when one is written: the deployment
//! controller keeps one ReplicaSet per pod template (`<deployment>-<pod-template-hash>`,
//! owned by the Deployment, scaled to its replicas; older ones scaled to 0) and records
//! `ScalingReplicaSet` Events, as `kubectl describe deployment` and portals expect.
//!
//! Names and uids are derived deterministically from the template and the object's key, so
//! the pod store (which renders the pods of seeded workloads) can name the same owners.

use super::{create, update, Origin};
use crate::sim::errors::SimError;
use crate::sim::model::now_timestamp;
use crate::sim::service::Part;
use crate::sim::store::{Generic, Kind, Object, Stored, Txn};
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A stable uid for an object the simulator creates itself (`namespace/kind/name`).
pub(crate) fn uid_for(namespace: &str, kind: &str, name: &str) -> String {
    let a = fnv(&format!("{namespace}/{kind}/{name}"));
    let b = fnv(&format!("{name}/{kind}/{namespace}"));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// The `pod-template-hash` of a pod template: from its labels, annotations (a `kubectl
/// rollout restart` stamps one) and its containers' names and images, which defaulting does
/// not change.
pub(crate) fn pod_template_hash(template: Option<&Value>) -> String {
    let labels = ["/metadata/labels", "/metadata/annotations"]
        .iter()
        .filter_map(|p| template.and_then(|t| t.pointer(p)))
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("|");
    let containers: Vec<String> = template
        .and_then(|t| t.pointer("/spec/containers"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c.get("name").and_then(Value::as_str).unwrap_or(""),
                        c.get("image").and_then(Value::as_str).unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let h = fnv(&format!("{labels}|{}", containers.join(",")));
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// Whether `s` is owned by the object with this uid, or (as a seed may say without knowing
/// the uid) controlled by the `kind` named `name`.
fn owned_by(s: &Stored, uid: &str, kind: &str, name: &str) -> bool {
    s.object
        .meta()
        .owner_references
        .as_ref()
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                let field = |k: &str| r.get(k).and_then(Value::as_str);
                field("uid") == Some(uid)
                    || (field("kind") == Some(kind)
                        && field("name") == Some(name)
                        && r.get("controller") == Some(&Value::Bool(true)))
            })
        })
}

/// The pod-template-hash of a ReplicaSet's template (without its own hash label).
fn rs_template_hash(s: &Stored) -> String {
    let mut template = s.value().pointer("/spec/template").cloned();
    if let Some(labels) = template
        .as_mut()
        .and_then(|t| t.pointer_mut("/metadata/labels"))
        .and_then(Value::as_object_mut)
    {
        labels.shift_remove("pod-template-hash");
    }
    pod_template_hash(template.as_ref())
}

fn replicas_of(s: &Stored) -> i64 {
    match &s.object {
        Object::Generic(g) => g
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1),
        _ => 0,
    }
}

fn set_replicas(txn: &mut Txn<'_>, s: &Stored, replicas: i64) -> Result<(), SimError> {
    let Object::Generic(mut g) = s.object.clone() else {
        return Ok(());
    };
    if let Some(Value::Object(spec)) = g.body.get_mut("spec") {
        spec.insert("replicas".into(), json!(replicas));
    }
    g.metadata.resource_version = None;
    update(txn, &s.namespace, &s.name, g, Part::Main, false).map(|_| ())
}

/// Runs the controllers for an object just written (`old`: its previous state).
pub(super) fn after_write(
    txn: &mut Txn<'_>,
    stored: &Arc<Stored>,
    old: Option<&Arc<Stored>>,
) -> Result<(), SimError> {
    if stored.kind() != Kind::Deployment {
        return Ok(());
    }
    let Object::Generic(d) = &stored.object else {
        return Ok(());
    };
    deployment(txn, d, old)
}

fn deployment(txn: &mut Txn<'_>, d: &Generic, old: Option<&Arc<Stored>>) -> Result<(), SimError> {
    let ns = d.metadata.namespace.clone().unwrap_or_default();
    let name = d.metadata.name().to_string();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = pod_template_hash(Some(&template));
    let rs_name = format!("{name}-{hash}");
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let snap = txn.snapshot();
    let owned: Vec<Arc<Stored>> = snap
        .iter(Kind::ReplicaSet, Some(&ns), None)
        .filter(|s| owned_by(s, &uid, "Deployment", &name))
        .cloned()
        .collect();
    let current = owned
        .iter()
        .find(|rs| rs.name == rs_name)
        .or_else(|| owned.iter().find(|rs| rs_template_hash(rs) == hash))
        .cloned();
    let current_name = current
        .as_ref()
        .map_or(rs_name.as_str(), |rs| rs.name.as_str());
    let mut messages = Vec::new();
    for rs in owned.iter().filter(|rs| rs.name != current_name) {
        let had = replicas_of(rs);
        if had != 0 {
            set_replicas(txn, rs, 0)?;
            messages.push(format!(
                "Scaled down replica set {} from {had} to 0",
                rs.name
            ));
        }
    }
    match &current {
        Some(rs) => {
            let had = replicas_of(rs);
            if had != replicas {
                set_replicas(txn, rs, replicas)?;
                let dir = if replicas > had { "up" } else { "down" };
                messages.push(format!(
                    "Scaled {dir} replica set {} from {had} to {replicas}",
                    rs.name
                ));
            }
        }
        None => {
            let revision = owned.len() + 1;
            let mut template = template.clone();
            if let Some(labels) = template
                .pointer_mut("/metadata")
                .and_then(Value::as_object_mut)
            {
                let l = labels
                    .entry("labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut();
                if let Some(l) = l {
                    l.insert("pod-template-hash".into(), json!(hash));
                }
            }
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            if let Some(sel) = selector.as_object_mut() {
                let ml = sel.entry("matchLabels").or_insert_with(|| json!({}));
                if let Some(ml) = ml.as_object_mut() {
                    ml.insert("pod-template-hash".into(), json!(hash));
                }
            }
            let labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            let rs = json!({
                "metadata": {
                    "name": rs_name,
                    "namespace": ns,
                    "uid": uid_for(&ns, "ReplicaSet", &rs_name),
                    // Made with the Deployment, or now for a later template.
                    "creationTimestamp": match old {
                        None => d.metadata.creation_timestamp.clone(),
                        Some(_) => Some(now_timestamp()),
                    },
                    "labels": labels,
                    "annotations": {
                        "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                        "deployment.kubernetes.io/max-replicas": (replicas + (replicas + 3) / 4).to_string(),
                        "deployment.kubernetes.io/revision": revision.to_string(),
                    },
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                        "uid": uid, "controller": true, "blockOwnerDeletion": true
                    }]
                },
                "spec": {"replicas": replicas, "selector": selector, "template": template}
            });
            let rs = Generic::from_value(Kind::ReplicaSet, rs).map_err(SimError::internal)?;
            create(txn, &ns, rs, Origin::Seed, false)?;
            messages.push(format!(
                "Scaled up replica set {rs_name} from 0 to {replicas}"
            ));
        }
    }
    for message in messages {
        record_event(txn, d, "ScalingReplicaSet", &message)?;
    }
    Ok(())
}

/// Records a Normal Event about `obj` from the deployment controller.
fn record_event(
    txn: &mut Txn<'_>,
    obj: &Generic,
    reason: &str,
    message: &str,
) -> Result<(), SimError> {
    let ns = obj.metadata.namespace.clone().unwrap_or_default();
    let now = now_timestamp();
    let name = format!(
        "{}.{:016x}",
        obj.metadata.name(),
        fnv(&format!(
            "{now}{message}{}",
            txn.snapshot().iter(Kind::Event, Some(&ns), None).count()
        ))
    );
    let mut involved = Map::new();
    involved.insert("kind".into(), json!(obj.kind.name()));
    involved.insert("namespace".into(), json!(ns));
    involved.insert("name".into(), json!(obj.metadata.name()));
    involved.insert("uid".into(), json!(obj.metadata.uid));
    involved.insert("apiVersion".into(), json!(obj.kind.api_version()));
    involved.insert(
        "resourceVersion".into(),
        json!(obj.metadata.resource_version),
    );
    let ev = json!({
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": now},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": "deployment-controller"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": "Normal",
        "eventTime": null,
        "reportingComponent": "deployment-controller",
        "reportingInstance": ""
    });
    let ev = Generic::from_value(Kind::Event, ev).map_err(SimError::internal)?;
    create(txn, &ns, ev, Origin::Seed, false).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::store::Store;

    #[test]
    fn a_deployment_gets_its_replica_set_and_events() {
        let store = Store::new();
        store
            .write(|t| {
                let mut ns = crate::sim::model::Namespace::default();
                ns.metadata.name = Some("shop".into());
                crate::sim::namespace::create(t, ns, false).map(|_| ())
            })
            .unwrap();
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}});
        let d = Generic::from_value(Kind::Deployment, d).unwrap();
        let stored = store
            .write(|t| create(t, "shop", d, Origin::Request, false))
            .unwrap();
        let (snap, _) = store.snapshot();
        let rs: Vec<_> = snap.iter(Kind::ReplicaSet, Some("shop"), None).collect();
        assert_eq!(rs.len(), 1);
        let v = rs[0].value();
        assert_eq!(v["spec"]["replicas"], 3);
        assert_eq!(v["status"]["readyReplicas"], 3);
        assert_eq!(
            v["metadata"]["ownerReferences"][0]["uid"],
            json!(stored.object.meta().uid)
        );
        assert!(rs[0].name.starts_with("web-"));
        let events: Vec<_> = snap.iter(Kind::Event, Some("shop"), None).collect();
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].value()["message"],
            format!("Scaled up replica set {} from 0 to 3", rs[0].name)
        );
        // A new template: a second ReplicaSet, the first scaled to 0.
        let Object::Generic(mut d2) = stored.object.clone() else {
            panic!()
        };
        d2.body["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        d2.metadata.resource_version = None;
        store
            .write(|t| update(t, "shop", "web", d2, Part::Main, false))
            .unwrap();
        let (snap, _) = store.snapshot();
        let replicas: Vec<i64> = snap
            .iter(Kind::ReplicaSet, Some("shop"), None)
            .map(|s| s.value()["spec"]["replicas"].as_i64().unwrap())
            .collect();
        assert_eq!(replicas.iter().sum::<i64>(), 3);
        assert_eq!(replicas.len(), 2);
        // Deleting the Deployment deletes its ReplicaSets.
        store
            .write(|t| super::super::delete(t, Kind::Deployment, "shop", "web", false))
            .unwrap();
        let (snap, _) = store.snapshot();
        assert_eq!(snap.iter(Kind::ReplicaSet, Some("shop"), None).count(), 0);
    }
}
