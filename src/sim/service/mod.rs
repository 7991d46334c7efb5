//! The Service registry: create, update and delete of Services in a store transaction,
//! and the update rules (allocated values kept, immutable clusterIP, type-dependent
//! fields dropped, generation bumped on spec change, status only through `/status`).
//! Defaulting, validation and cluster IP / node port allocation live in the submodules.

mod allocate;
mod defaults;
mod validate;

pub(crate) use defaults::apply_defaults;
pub(crate) use validate::validate;

use super::errors::SimError;
use super::model::{LoadBalancerStatus, Service};
use super::store::{Kind, Object, Stored, Txn};
use allocate::{allocate, check_allocations, node_ports};
use std::sync::Arc;

/// Which part of a Service an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main resource: metadata and spec (status is kept).
    Main,
    /// The `status` subresource: status only.
    Status,
}

/// Whether the Service's type gets a cluster IP (all but ExternalName).
fn needs_cluster_ip(s: &Service) -> bool {
    s.spec.type_name() != "ExternalName"
}

/// Whether the Service's type gets node ports (NodePort, and LoadBalancer unless it
/// opts out).
fn needs_node_ports(s: &Service) -> bool {
    match s.spec.type_name() {
        "NodePort" => true,
        "LoadBalancer" => s.spec.allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

/// Keeps values allocated to `old` that an update leaves unset (as kubectl edits do).
fn patch_allocated(new: &mut Service, old: &Service) {
    if needs_cluster_ip(old)
        && needs_cluster_ip(new)
        && new.spec.cluster_ip.as_deref().unwrap_or("").is_empty()
    {
        new.spec.cluster_ip = old.spec.cluster_ip.clone();
        if new.spec.cluster_ips.as_ref().is_none_or(|v| v.is_empty()) {
            new.spec.cluster_ips = old.spec.cluster_ips.clone();
        }
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        let old_ports = old.spec.ports();
        if let Some(ports) = new.spec.ports.as_mut() {
            for p in ports.iter_mut().filter(|p| p.node_port.is_none()) {
                let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                if let Some(o) = old_ports
                    .iter()
                    .find(|o| o.port == p.port && o.protocol.as_deref().unwrap_or("TCP") == proto)
                {
                    p.node_port = o.node_port;
                }
            }
        }
    }
    if new.spec.health_check_node_port.is_none()
        && new.spec.type_name() == "LoadBalancer"
        && new.spec.external_traffic_policy.as_deref() == Some("Local")
    {
        new.spec.health_check_node_port = old.spec.health_check_node_port;
    }
}

/// Drops fields that belonged to the old type, when the update leaves them unchanged.
fn drop_type_dependent(new: &mut Service, old: &Service) {
    let t = new.spec.type_name().to_string();
    if !needs_node_ports(new) {
        let old_ports = old.spec.ports();
        if let Some(ports) = new.spec.ports.as_mut() {
            for p in ports.iter_mut() {
                if p.node_port.is_some() && old_ports.iter().any(|o| o.node_port == p.node_port) {
                    p.node_port = None;
                }
            }
        }
    }
    if t == "ExternalName" {
        if new.spec.cluster_ip == old.spec.cluster_ip {
            new.spec.cluster_ip = None;
        }
        if new.spec.cluster_ips == old.spec.cluster_ips {
            new.spec.cluster_ips = None;
        }
        if new.spec.ip_families == old.spec.ip_families {
            new.spec.ip_families = None;
        }
        if new.spec.ip_family_policy == old.spec.ip_family_policy {
            new.spec.ip_family_policy = None;
        }
        if new.spec.internal_traffic_policy == old.spec.internal_traffic_policy {
            new.spec.internal_traffic_policy = None;
        }
    }
    if t != "NodePort"
        && t != "LoadBalancer"
        && new.spec.external_traffic_policy == old.spec.external_traffic_policy
    {
        new.spec.external_traffic_policy = None;
    }
    if t != "LoadBalancer" {
        if new.spec.allocate_load_balancer_node_ports == old.spec.allocate_load_balancer_node_ports
        {
            new.spec.allocate_load_balancer_node_ports = None;
        }
        if new.spec.health_check_node_port == old.spec.health_check_node_port {
            new.spec.health_check_node_port = None;
        }
    }
}

/// Creates a Service in `ns` (which must exist). With `dry_run`, validates only.
pub(crate) fn create(
    txn: &mut Txn<'_>,
    ns: &str,
    mut s: Service,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    if txn.get(Kind::Namespace, "", ns).is_none() {
        return Err(SimError::not_found("namespaces", ns));
    }
    s.metadata.prepare_create()?;
    let meta = &mut s.metadata;
    meta.namespace = Some(ns.to_string());
    meta.uid = Some(super::model::new_uid());
    meta.creation_timestamp = Some(super::model::now_timestamp());
    meta.generation = Some(1);
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    s.status = Default::default();
    s.kind = None;
    s.api_version = None;
    apply_defaults(&mut s);
    let name = s.metadata.name().to_string();
    let mut causes = validate(&s, None);
    if causes.is_empty() {
        causes = check_allocations(&s, None, txn);
    }
    if !causes.is_empty() {
        return Err(SimError::invalid("Service", &name, causes));
    }
    if txn.get(Kind::Service, ns, &name).is_some() {
        return Err(SimError::already_exists("services", &name));
    }
    if dry_run {
        return Ok(preview(s));
    }
    allocate(&mut s, None, txn)?;
    Ok(txn.put(Object::Service(s)))
}

/// A stored-like view of an object that is not committed (dry runs).
fn preview(s: Service) -> Arc<Stored> {
    let json = bytes::Bytes::from(serde_json::to_vec(&s).unwrap_or_default());
    Arc::new(Stored {
        namespace: s.metadata.namespace.clone().unwrap_or_default(),
        name: s.metadata.name().to_string(),
        rv: 0,
        object: Object::Service(s),
        json,
    })
}

/// Replaces a Service (`part` Main or Status). A stale `metadata.resourceVersion` is a 409.
/// An update that changes nothing writes nothing and returns the current object.
pub(crate) fn update(
    txn: &mut Txn<'_>,
    ns: &str,
    name: &str,
    mut s: Service,
    part: Part,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    let current = txn
        .get(Kind::Service, ns, name)
        .ok_or_else(|| SimError::not_found("services", name))?;
    let Object::Service(old) = &current.object else {
        return Err(SimError::internal("stored object is not a Service"));
    };
    current.check_fresh(s.metadata.resource_version.as_deref())?;
    match part {
        Part::Status => {
            let status = std::mem::take(&mut s.status);
            s = old.clone();
            s.status = status;
            if s.status.load_balancer.is_none() {
                s.status.load_balancer = Some(LoadBalancerStatus::default());
            }
        }
        Part::Main => {
            // Server-owned metadata and the status come from the stored object.
            s.metadata.keep_server_owned(&old.metadata);
            s.status = old.status.clone();
            patch_allocated(&mut s, old);
            drop_type_dependent(&mut s, old);
            apply_defaults(&mut s);
        }
    }
    s.kind = None;
    s.api_version = None;
    s.metadata.resource_version = old.metadata.resource_version.clone();
    if part == Part::Main && s.spec != old.spec {
        s.metadata.generation = Some(old.metadata.generation.unwrap_or(1) + 1);
    }
    let mut causes = validate(&s, Some(old));
    if causes.is_empty() {
        causes = check_allocations(&s, Some(old), txn);
    }
    if !causes.is_empty() {
        return Err(SimError::invalid("Service", name, causes));
    }
    if &s == old {
        return Ok(current);
    }
    if dry_run {
        return Ok(preview(s));
    }
    allocate(&mut s, Some(old), txn)?;
    Ok(txn.put(Object::Service(s)))
}

/// Deletes a Service and frees its allocations.
pub(crate) fn delete(
    txn: &mut Txn<'_>,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    let current = txn
        .get(Kind::Service, ns, name)
        .ok_or_else(|| SimError::not_found("services", name))?;
    if dry_run {
        return Ok(current);
    }
    if let Object::Service(s) = &current.object {
        if needs_cluster_ip(s) {
            if let Some(ip) = s.spec.cluster_ip.as_deref() {
                txn.ips().release(ip);
            }
        }
        for np in node_ports(s) {
            txn.ports().release(np);
        }
    }
    txn.delete(Kind::Service, ns, name)
        .ok_or_else(|| SimError::not_found("services", name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::IntOrString;
    use crate::sim::store::Store;
    use serde_json::json;
    use std::net::Ipv4Addr;

    fn store_with_ns() -> Store {
        let store = Store::new();
        store
            .write(|t| {
                let mut ns = crate::sim::model::Namespace::default();
                ns.metadata.name = Some("default".into());
                t.put(Object::Namespace(ns));
                Ok(())
            })
            .unwrap();
        store
    }

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_and_allocation() {
        let store = store_with_ns();
        let s = store
            .write(|t| {
                create(
                    t,
                    "default",
                    svc(json!({"metadata":{"name":"web"},"spec":{"type":"NodePort","ports":[{"port":80}]}})),
                    false,
                )
            })
            .unwrap();
        let Object::Service(s) = &s.object else {
            panic!()
        };
        let ip: Ipv4Addr = s.spec.cluster_ip.as_deref().unwrap().parse().unwrap();
        assert_eq!(s.spec.cluster_ips.as_ref().unwrap()[0], ip.to_string());
        let p = &s.spec.ports()[0];
        assert_eq!(p.protocol.as_deref(), Some("TCP"));
        assert_eq!(p.target_port, Some(IntOrString::Int(80)));
        let np = p.node_port.unwrap();
        assert!(
            (crate::sim::alloc::NODE_PORT_MIN..=crate::sim::alloc::NODE_PORT_MAX).contains(&np)
        );
        assert_eq!(s.spec.external_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(s.spec.session_affinity.as_deref(), Some("None"));
        assert_eq!(
            s.spec.ip_families.as_ref().unwrap(),
            &vec!["IPv4".to_string()]
        );
        assert_eq!(s.metadata.generation, Some(1));
    }

    #[test]
    fn every_failure_is_reported() {
        let store = store_with_ns();
        let err = store
            .write(|t| {
                create(
                    t,
                    "default",
                    svc(json!({"metadata":{"name":"Bad_Name"},"spec":{"type":"Weird","sessionAffinity":"Sticky","ports":[{"port":0,"protocol":"HTTP"},{"port":80,"targetPort":"not valid"}]}})),
                    false,
                )
            })
            .unwrap_err();
        assert_eq!(err.code, 422);
        let fields: Vec<_> = err
            .details
            .unwrap()
            .causes
            .into_iter()
            .map(|c| (c.field, c.reason))
            .collect();
        for want in [
            ("metadata.name", "FieldValueInvalid"),
            ("spec.type", "FieldValueNotSupported"),
            ("spec.ports[0].name", "FieldValueRequired"),
            ("spec.ports[0].port", "FieldValueInvalid"),
            ("spec.ports[0].protocol", "FieldValueNotSupported"),
            ("spec.ports[1].targetPort", "FieldValueInvalid"),
            ("spec.sessionAffinity", "FieldValueNotSupported"),
        ] {
            assert!(
                fields.iter().any(|(f, r)| f == want.0 && r == want.1),
                "missing {want:?} in {fields:?}"
            );
        }
    }

    #[test]
    fn cluster_ip_is_immutable_and_kept() {
        let store = store_with_ns();
        let created = store
            .write(|t| {
                create(
                    t,
                    "default",
                    svc(json!({"metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}})),
                    false,
                )
            })
            .unwrap();
        // An update without clusterIP keeps the allocated one.
        let updated = store
            .write(|t| {
                update(
                    t,
                    "default",
                    "a",
                    svc(json!({"metadata":{"name":"a"},"spec":{"ports":[{"port":81}]}})),
                    Part::Main,
                    false,
                )
            })
            .unwrap();
        let (Object::Service(c), Object::Service(u)) = (&created.object, &updated.object) else {
            panic!()
        };
        assert_eq!(c.spec.cluster_ip, u.spec.cluster_ip);
        assert_eq!(u.metadata.generation, Some(2));
        let err = store
            .write(|t| update(t, "default", "a", svc(json!({"metadata":{"name":"a"},"spec":{"clusterIP":"10.96.5.5","ports":[{"port":81}]}})), Part::Main, false))
            .unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains("may not change once set"),
            "{}",
            err.message
        );
    }

    #[test]
    fn taken_ip_and_external_name() {
        let store = store_with_ns();
        store
            .write(|t| create(t, "default", svc(json!({"metadata":{"name":"a"},"spec":{"clusterIP":"10.96.0.50","ports":[{"port":80}]}})), false))
            .unwrap();
        let err = store
            .write(|t| create(t, "default", svc(json!({"metadata":{"name":"b"},"spec":{"clusterIP":"10.96.0.50","ports":[{"port":80}]}})), false))
            .unwrap_err();
        assert!(err.message.contains("already allocated"), "{}", err.message);
        let err = store
            .write(|t| {
                create(
                    t,
                    "default",
                    svc(json!({"metadata":{"name":"c"},"spec":{"type":"ExternalName"}})),
                    false,
                )
            })
            .unwrap_err();
        assert!(
            err.message.contains("spec.externalName: Required value"),
            "{}",
            err.message
        );
        let ok = store
            .write(|t| create(t, "default", svc(json!({"metadata":{"name":"d"},"spec":{"type":"ExternalName","externalName":"db.example.com"}})), false))
            .unwrap();
        let Object::Service(d) = &ok.object else {
            panic!()
        };
        assert!(d.spec.cluster_ip.is_none());
    }
}
