//! The Service registry: defaulting, validation (every failure reported at once, with the
//! causes a kube-apiserver gives), cluster IP and node port allocation, and the update
//! rules (allocated values kept, immutable clusterIP, type-dependent fields dropped,
//! generation bumped on spec change, status only through `/status`).

use super::alloc::KUBERNETES_IP;
use super::errors::{Cause, SimError};
use super::model::{
    ClientIpConfig, IntOrString, LoadBalancerStatus, Service, ServicePort, SessionAffinityConfig,
};
use super::store::{Kind, Object, Stored, Txn};
use super::validation::{self, IP_MSG, PORT_MSG};
use serde_json::json;
use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Which part of a Service an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: metadata and spec (status is kept).
    Main,
    /// The `status` subresource: status only.
    Status,
}

fn needs_cluster_ip(s: &Service) -> bool {
    s.spec.type_name() != "ExternalName"
}

fn needs_node_ports(s: &Service) -> bool {
    match s.spec.type_name() {
        "NodePort" => true,
        "LoadBalancer" => s.spec.allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

fn real_ip(s: &Service) -> Option<Ipv4Addr> {
    s.spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok())
}

fn node_ports(s: &Service) -> BTreeSet<i64> {
    let mut set: BTreeSet<i64> = s.spec.ports().iter().filter_map(|p| p.node_port).collect();
    if let Some(h) = s.spec.health_check_node_port {
        set.insert(h);
    }
    set
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

/// Applies the server's defaults.
pub fn apply_defaults(s: &mut Service) {
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
pub fn validate(s: &Service, old: Option<&Service>) -> Vec<Cause> {
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

/// Causes for requested values that the allocators refuse (`old` owns its own values).
fn check_allocations(s: &Service, old: Option<&Service>, txn: &mut Txn<'_>) -> Vec<Cause> {
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
fn allocate(s: &mut Service, old: Option<&Service>, txn: &mut Txn<'_>) -> Result<(), SimError> {
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

const GENERATE_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A name from `generateName` (5 random characters appended, as the API server does).
pub fn generate_name(prefix: &str) -> String {
    let mut name = prefix.chars().take(58).collect::<String>();
    for _ in 0..5 {
        name.push(GENERATE_CHARS[rand::random::<u32>() as usize % GENERATE_CHARS.len()] as char);
    }
    name
}

/// Creates a Service in `ns` (which must exist). With `dry_run`, validates only.
pub fn create(
    txn: &mut Txn<'_>,
    ns: &str,
    mut s: Service,
    dry_run: bool,
) -> Result<Arc<Stored>, SimError> {
    if txn.get(Kind::Namespace, "", ns).is_none() {
        return Err(SimError::not_found("namespaces", ns));
    }
    if s.metadata
        .resource_version
        .as_deref()
        .is_some_and(|v| !v.is_empty())
    {
        return Err(SimError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let meta = &mut s.metadata;
    if meta.name.as_deref().unwrap_or("").is_empty() {
        if let Some(prefix) = meta.generate_name.as_deref().filter(|p| !p.is_empty()) {
            meta.name = Some(generate_name(prefix));
        }
    }
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
pub fn update(
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
    if let Some(rv) = s
        .metadata
        .resource_version
        .as_deref()
        .filter(|v| !v.is_empty())
    {
        if rv != current.rv.to_string() {
            return Err(SimError::stale("services", name));
        }
    }
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
            let meta = &mut s.metadata;
            meta.name = old.metadata.name.clone();
            meta.namespace = old.metadata.namespace.clone();
            meta.uid = old.metadata.uid.clone();
            meta.creation_timestamp = old.metadata.creation_timestamp.clone();
            meta.generation = old.metadata.generation;
            meta.deletion_timestamp = old.metadata.deletion_timestamp.clone();
            meta.generate_name = meta
                .generate_name
                .clone()
                .or(old.metadata.generate_name.clone());
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
pub fn delete(
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
    use crate::sim::store::Store;

    fn store_with_ns() -> Store {
        let store = Store::new();
        store
            .write(|t| {
                let mut ns = super::super::model::Namespace::default();
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
