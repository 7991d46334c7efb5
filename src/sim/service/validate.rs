//! Service validation: every failure of a create or update reported at once, with the
//! causes (field, reason, message) a kube-apiserver gives.

use super::needs_cluster_ip;
use crate::sim::errors::Cause;
use crate::sim::model::{IntOrString, Service, ServicePort};
use crate::sim::validation::{self, IP_MSG, PORT_MSG};
use serde_json::json;
use std::collections::HashSet;
use std::net::Ipv4Addr;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn validate_port(i: usize, p: &ServicePort, need_name: bool, causes: &mut Vec<Cause>) {
    let path = format!("spec.ports[{i}]");
    match p.name.as_deref() {
        None | Some("") if need_name => causes.push(Cause::required(format!("{path}.name"), "")),
        None | Some("") => {}
        Some(name) => {
            for e in validation::dns1123_label(name) {
                causes.push(Cause::invalid(format!("{path}.name"), &json!(name), &e));
            }
        }
    }
    match p.port {
        None => causes.push(Cause::invalid(format!("{path}.port"), &json!(0), PORT_MSG)),
        Some(n) if !(1..=65535).contains(&n) => {
            causes.push(Cause::invalid(format!("{path}.port"), &json!(n), PORT_MSG))
        }
        _ => {}
    }
    match p.protocol.as_deref() {
        None | Some("") => causes.push(Cause::required(format!("{path}.protocol"), "")),
        Some(proto) if !PROTOCOLS.contains(&proto) => causes.push(Cause::not_supported(
            format!("{path}.protocol"),
            proto,
            PROTOCOLS,
        )),
        _ => {}
    }
    match &p.target_port {
        Some(IntOrString::Int(n)) if !(1..=65535).contains(n) => causes.push(Cause::invalid(
            format!("{path}.targetPort"),
            &json!(n),
            PORT_MSG,
        )),
        Some(IntOrString::Str(name)) => {
            for e in validation::port_name(name) {
                causes.push(Cause::invalid(
                    format!("{path}.targetPort"),
                    &json!(name),
                    &e,
                ));
            }
        }
        _ => {}
    }
}

fn go_port(p: &ServicePort) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{:?}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        p.protocol.as_deref().unwrap_or("TCP"),
        p.port.unwrap_or(0)
    )
}

/// Every validation failure of a (defaulted) Service; `old` for updates.
pub(crate) fn validate(s: &Service, old: Option<&Service>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if old.is_none() {
        validation::object_name(&s.metadata, validation::dns1035_label, &mut causes);
    }
    validation::labels_and_annotations(&s.metadata, &mut causes);
    let spec = &s.spec;
    let t = spec.type_name();
    if !TYPES.contains(&t) {
        causes.push(Cause::not_supported("spec.type", t, TYPES));
    }
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let ports = spec.ports();
    if ports.is_empty() && t != "ExternalName" && !headless {
        causes.push(Cause::required("spec.ports", ""));
    }
    let need_name = ports.len() > 1;
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        validate_port(i, p, need_name, &mut causes);
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            if !names.insert(name) {
                causes.push(Cause::duplicate(
                    format!("spec.ports[{i}].name"),
                    &json!(name),
                ));
            }
        }
        let key = (p.port, p.protocol.clone());
        if !keys.insert(key) {
            causes.push(Cause {
                reason: "FieldValueDuplicate".into(),
                message: format!("Duplicate value: {}", go_port(p)),
                field: format!("spec.ports[{i}]"),
            });
        }
        if let Some(np) = p.node_port {
            if t == "ClusterIP" || t == "ExternalName" {
                causes.push(Cause::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    &format!("may not be used when `type` is '{t}'"),
                ));
            } else if !(0..=65535).contains(&np) {
                causes.push(Cause::invalid(
                    format!("spec.ports[{i}].nodePort"),
                    &json!(np),
                    PORT_MSG,
                ));
            }
        }
    }
    if let Some(sel) = &spec.selector {
        for (k, v) in sel {
            for e in validation::qualified_name(k) {
                causes.push(Cause::invalid("spec.selector", &json!(k), &e));
            }
            for e in validation::label_value(v) {
                causes.push(Cause::invalid("spec.selector", &json!(v), &e));
            }
        }
    }
    match spec.session_affinity.as_deref().unwrap_or("None") {
        "None" => {
            if spec.session_affinity_config.is_some() {
                causes.push(Cause::forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when `sessionAffinity` is None",
                ));
            }
        }
        "ClientIP" => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            if let Some(tmo) = timeout.filter(|t| !(1..=86400).contains(t)) {
                causes.push(Cause::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    &json!(tmo),
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        other => causes.push(Cause::not_supported(
            "spec.sessionAffinity",
            other,
            &["ClientIP", "None"],
        )),
    }
    let ip = spec.cluster_ip.as_deref().unwrap_or("");
    if t == "ExternalName" {
        if !ip.is_empty() || spec.cluster_ips.as_ref().is_some_and(|v| !v.is_empty()) {
            causes.push(Cause::forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            ));
        }
        let name = spec.external_name.as_deref().unwrap_or("");
        let clean = name.trim_end_matches('.');
        if clean.is_empty() {
            causes.push(Cause::required("spec.externalName", ""));
        } else {
            for e in validation::dns1123_subdomain(clean) {
                causes.push(Cause::invalid("spec.externalName", &json!(name), &e));
            }
        }
    } else {
        if !ip.is_empty() && ip != "None" && !validation::is_ip(ip) {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &json!(ip),
                "must be empty, 'None', or a valid IP address",
            ));
        } else if !ip.is_empty() && ip != "None" && ip.parse::<Ipv4Addr>().is_err() {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &json!(ip),
                "expected an IPv4 address: this cluster has only IPv4 service addresses",
            ));
        }
        if headless && (t == "NodePort" || t == "LoadBalancer") {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &json!("None"),
                &format!("may not be set to 'None' for {t} services"),
            ));
        }
        if let Some(ips) = &spec.cluster_ips {
            if let Some(first) = ips.first() {
                if !ip.is_empty() && first != ip {
                    causes.push(Cause::invalid(
                        "spec.clusterIPs[0]",
                        &json!(first),
                        "must be same as clusterIP",
                    ));
                }
            }
            if ips.len() > 1 {
                causes.push(Cause::invalid(
                    "spec.clusterIPs",
                    &json!(ips),
                    "this cluster is not configured for dual-stack services",
                ));
            }
        }
        if let Some(old) = old {
            if needs_cluster_ip(old)
                && old.spec.cluster_ip.is_some()
                && spec.cluster_ip != old.spec.cluster_ip
            {
                causes.push(Cause::invalid(
                    "spec.clusterIPs[0]",
                    &json!(ip),
                    "may not change once set",
                ));
            }
        }
        for (i, fam) in spec.ip_families.iter().flatten().enumerate() {
            match fam.as_str() {
                "IPv4" => {}
                "IPv6" => causes.push(Cause::invalid(
                    format!("spec.ipFamilies[{i}]"),
                    &json!(fam),
                    "not configured on this cluster",
                )),
                other => causes.push(Cause::not_supported(
                    format!("spec.ipFamilies[{i}]"),
                    other,
                    &["IPv4", "IPv6"],
                )),
            }
        }
        match spec.ip_family_policy.as_deref() {
            None | Some("SingleStack") | Some("PreferDualStack") => {}
            Some("RequireDualStack") => {
                if !headless {
                    causes.push(Cause::invalid(
                        "spec.ipFamilyPolicy",
                        &json!("RequireDualStack"),
                        "this cluster is not configured for dual-stack services",
                    ));
                }
            }
            Some(other) => causes.push(Cause::not_supported(
                "spec.ipFamilyPolicy",
                other,
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            )),
        }
    }
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        if !validation::is_ip(ip) {
            causes.push(Cause::invalid(
                format!("spec.externalIPs[{i}]"),
                &json!(ip),
                IP_MSG,
            ));
        }
    }
    if let Some(lb_ip) = spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty()) {
        if !validation::is_ip(lb_ip) {
            causes.push(Cause::invalid("spec.loadBalancerIP", &json!(lb_ip), IP_MSG));
        }
    }
    if let Some(ranges) = spec
        .load_balancer_source_ranges
        .as_ref()
        .filter(|r| !r.is_empty())
    {
        if t != "LoadBalancer" {
            causes.push(Cause::forbidden(
                "spec.loadBalancerSourceRanges",
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            if !validation::is_cidr(r.trim()) {
                causes.push(Cause::invalid(
                    format!("spec.loadBalancerSourceRanges[{i}]"),
                    &json!(r),
                    "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ",
                ));
            }
        }
    }
    if let Some(etp) = spec.external_traffic_policy.as_deref() {
        if t != "NodePort" && t != "LoadBalancer" {
            causes.push(Cause::invalid(
                "spec.externalTrafficPolicy",
                &json!(etp),
                "may only be set for externally-accessible services",
            ));
        } else if etp != "Cluster" && etp != "Local" {
            causes.push(Cause::not_supported(
                "spec.externalTrafficPolicy",
                etp,
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(itp) = spec.internal_traffic_policy.as_deref() {
        if itp != "Cluster" && itp != "Local" {
            causes.push(Cause::not_supported(
                "spec.internalTrafficPolicy",
                itp,
                &["Cluster", "Local"],
            ));
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && t != "LoadBalancer" {
        causes.push(Cause::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    validate_status(s, &mut causes);
    causes
}

fn validate_status(s: &Service, causes: &mut Vec<Cause>) {
    let ingress = s
        .status
        .load_balancer
        .as_ref()
        .and_then(|lb| lb.ingress.as_ref());
    for (i, ing) in ingress.into_iter().flatten().enumerate() {
        let path = format!("status.loadBalancer.ingress[{i}]");
        if let Some(ip) = ing.ip.as_deref().filter(|s| !s.is_empty()) {
            if !validation::is_ip(ip) {
                causes.push(Cause::invalid(format!("{path}.ip"), &json!(ip), IP_MSG));
            }
        }
        if let Some(host) = ing.hostname.as_deref().filter(|s| !s.is_empty()) {
            for e in validation::dns1123_subdomain(host) {
                causes.push(Cause::invalid(format!("{path}.hostname"), &json!(host), &e));
            }
            if validation::is_ip(host) {
                causes.push(Cause::invalid(
                    format!("{path}.hostname"),
                    &json!(host),
                    "must be a DNS name, not an IP address",
                ));
            }
        }
        if let Some(mode) = ing.ip_mode.as_deref() {
            if mode != "VIP" && mode != "Proxy" {
                causes.push(Cause::not_supported(
                    format!("{path}.ipMode"),
                    mode,
                    &["Proxy", "VIP"],
                ));
            } else if ing.ip.as_deref().unwrap_or("").is_empty() {
                causes.push(Cause::forbidden(
                    format!("{path}.ipMode"),
                    "may not be specified when `ip` is not set",
                ));
            }
        }
    }
}
