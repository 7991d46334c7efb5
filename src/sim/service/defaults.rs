//! The defaults the API server gives a Service (session affinity, target ports,
//! protocols, traffic policies, IP families, an empty load balancer status).

use crate::sim::model::{
    ClientIpConfig, IntOrString, LoadBalancerStatus, Service, SessionAffinityConfig,
};

/// Applies the server's defaults.
pub(crate) fn apply_defaults(s: &mut Service) {
    let spec = &mut s.spec;
    if spec.type_.as_deref().unwrap_or("").is_empty() {
        spec.type_ = Some("ClusterIP".into());
    }
    if spec.session_affinity.as_deref().unwrap_or("").is_empty() {
        spec.session_affinity = Some("None".into());
    }
    if spec.session_affinity.as_deref() == Some("ClientIP") {
        let cfg = spec
            .session_affinity_config
            .get_or_insert_with(SessionAffinityConfig::default);
        let ip = cfg.client_ip.get_or_insert_with(ClientIpConfig::default);
        ip.timeout_seconds.get_or_insert(10800);
    }
    if let Some(ports) = spec.ports.as_mut() {
        for p in ports.iter_mut() {
            if p.protocol.as_deref().unwrap_or("").is_empty() {
                p.protocol = Some("TCP".into());
            }
            let unset = match &p.target_port {
                None => true,
                Some(IntOrString::Int(0)) => true,
                Some(IntOrString::Str(s)) => s.is_empty(),
                _ => false,
            };
            if unset {
                if let Some(port) = p.port {
                    p.target_port = Some(IntOrString::Int(port));
                }
            }
        }
    }
    let t = spec.type_name().to_string();
    if t != "ExternalName" {
        if spec.cluster_ip.as_deref().unwrap_or("").is_empty() {
            if let Some(first) = spec.cluster_ips.as_ref().and_then(|v| v.first()) {
                spec.cluster_ip = Some(first.clone());
            }
        }
        if spec.internal_traffic_policy.is_none() {
            spec.internal_traffic_policy = Some("Cluster".into());
        }
        if spec.ip_family_policy.is_none() {
            let headless = spec.cluster_ip.as_deref() == Some("None");
            let no_selector = spec.selector.as_ref().is_none_or(|s| s.is_empty());
            spec.ip_family_policy = Some(if headless && no_selector {
                "RequireDualStack".into()
            } else {
                "SingleStack".into()
            });
        }
        if spec.ip_families.as_ref().is_none_or(|f| f.is_empty()) {
            spec.ip_families = Some(vec!["IPv4".into()]);
        }
    }
    if (t == "NodePort" || t == "LoadBalancer") && spec.external_traffic_policy.is_none() {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    if t == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        spec.allocate_load_balancer_node_ports = Some(true);
    }
    if s.status.load_balancer.is_none() {
        s.status.load_balancer = Some(LoadBalancerStatus::default());
    }
}
