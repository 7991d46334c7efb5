//! Cluster IP and node port allocation for Services: what the allocators would refuse
//! (reported as validation causes) and taking and releasing the values.

use super::{needs_cluster_ip, needs_node_ports};
use crate::sim::alloc::KUBERNETES_IP;
use crate::sim::errors::{Cause, SimError};
use crate::sim::model::Service;
use crate::sim::store::Txn;
use serde_json::json;
use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;

fn real_ip(s: &Service) -> Option<Ipv4Addr> {
    s.spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok())
}

pub(super) fn node_ports(s: &Service) -> BTreeSet<i64> {
    let mut set: BTreeSet<i64> = s.spec.ports().iter().filter_map(|p| p.node_port).collect();
    if let Some(h) = s.spec.health_check_node_port {
        set.insert(h);
    }
    set
}

/// Causes for requested values that the allocators refuse (`old` owns its own values).
pub(super) fn check_allocations(
    s: &Service,
    old: Option<&Service>,
    txn: &mut Txn<'_>,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    if needs_cluster_ip(s) {
        if let Some(ip) = real_ip(s) {
            let owned = old.and_then(real_ip) == Some(ip);
            let kube = ip == KUBERNETES_IP
                && s.metadata.namespace.as_deref() == Some("default")
                && s.metadata.name.as_deref() == Some("kubernetes");
            if !owned && !kube {
                if let Err(msg) = txn.ips().check(ip) {
                    causes.push(Cause::invalid(
                        "spec.clusterIPs",
                        &json!([ip.to_string()]),
                        &msg,
                    ));
                }
            }
        }
    }
    if needs_node_ports(s) {
        let owned = old.map(node_ports).unwrap_or_default();
        let mut seen = HashSet::new();
        for (i, p) in s.spec.ports().iter().enumerate() {
            let Some(np) = p.node_port else { continue };
            let path = format!("spec.ports[{i}].nodePort");
            if !seen.insert((np, p.protocol.clone())) {
                causes.push(Cause::duplicate(path, &json!(np)));
                continue;
            }
            if owned.contains(&np) || seen.iter().filter(|(n, _)| *n == np).count() > 1 {
                continue;
            }
            if let Err(msg) = txn.ports().check(np) {
                causes.push(Cause::invalid(path, &json!(np), &msg));
            }
        }
        let wanted = s
            .spec
            .ports()
            .iter()
            .filter(|p| p.node_port.is_none())
            .count();
        if wanted > txn.ports().free() {
            causes.push(Cause::invalid(
                "spec.ports",
                &json!(wanted),
                "failed to allocate a nodePort: range is full",
            ));
        }
    }
    causes
}

/// Takes and releases allocations for `s` (replacing `old`). Checks have passed.
pub(super) fn allocate(
    s: &mut Service,
    old: Option<&Service>,
    txn: &mut Txn<'_>,
) -> Result<(), SimError> {
    let old_ip = old.and_then(|o| {
        if needs_cluster_ip(o) {
            real_ip(o)
        } else {
            None
        }
    });
    if needs_cluster_ip(s) {
        if s.spec.cluster_ip.as_deref() != Some("None") {
            let ip = match real_ip(s) {
                Some(ip) => {
                    if old_ip != Some(ip) {
                        txn.ips().take(ip);
                    }
                    ip
                }
                None => {
                    let kube = s.metadata.namespace.as_deref() == Some("default")
                        && s.metadata.name.as_deref() == Some("kubernetes")
                        && txn.ips().check(KUBERNETES_IP).is_ok();
                    if kube {
                        txn.ips().take(KUBERNETES_IP);
                        KUBERNETES_IP
                    } else {
                        txn.ips().allocate().ok_or_else(|| {
                            SimError::internal("failed to allocate a serviceIP: range is full")
                        })?
                    }
                }
            };
            s.spec.cluster_ip = Some(ip.to_string());
        }
        s.spec.cluster_ips = s.spec.cluster_ip.clone().map(|ip| vec![ip]);
    }
    if let Some(ip) = old_ip {
        if real_ip(s) != Some(ip) || !needs_cluster_ip(s) {
            txn.ips().release(&ip.to_string());
        }
    }
    let old_ports = old.map(node_ports).unwrap_or_default();
    if needs_node_ports(s) {
        for np in node_ports(s) {
            if !old_ports.contains(&np) {
                txn.ports().take(np);
            }
        }
        if let Some(ports) = s.spec.ports.as_mut() {
            for p in ports.iter_mut().filter(|p| p.node_port.is_none()) {
                p.node_port = Some(txn.ports().allocate().ok_or_else(|| {
                    SimError::internal("failed to allocate a nodePort: range is full")
                })?);
            }
        }
    }
    if s.spec.type_name() == "LoadBalancer"
        && s.spec.external_traffic_policy.as_deref() == Some("Local")
        && s.spec.health_check_node_port.is_none()
    {
        s.spec.health_check_node_port =
            Some(txn.ports().allocate().ok_or_else(|| {
                SimError::internal("failed to allocate a nodePort: range is full")
            })?);
    }
    let new_ports = node_ports(s);
    for np in old_ports.difference(&new_ports) {
        txn.ports().release(*np);
    }
    Ok(())
}
