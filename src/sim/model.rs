//! Typed v1 objects of the simulated cluster (Namespace, Service and their metadata), in the
//! field order a kube-apiserver writes them. Decoding through these types drops unknown
//! fields, exactly as a real server does when `fieldValidation` is not `Strict`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `metadata` of every object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) generate_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deletion_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) owner_references: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) finalizers: Option<Vec<String>>,
    /// Accepted and dropped (server-side apply is not simulated).
    #[serde(default, skip_serializing)]
    pub(crate) managed_fields: Option<Value>,
}

impl ObjectMeta {
    /// The name, or "" when unset.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// The first step of every create: a `resourceVersion` is refused (as the API server's
    /// storage refuses it), and `generateName` gives the name when none is set (5 random
    /// characters appended).
    pub(crate) fn prepare_create(&mut self) -> Result<(), super::errors::SimError> {
        if self
            .resource_version
            .as_deref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(super::errors::SimError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if self.name().is_empty() {
            if let Some(prefix) = self.generate_name.as_deref().filter(|p| !p.is_empty()) {
                self.name = Some(generate_name(prefix));
            }
        }
        Ok(())
    }
}

impl ObjectMeta {
    /// The first step of every update: what the server owns comes from the stored object
    /// (name, namespace, uid, creation time, generation, deletion time); a `generateName`
    /// the update leaves out is kept.
    pub(crate) fn keep_server_owned(&mut self, old: &ObjectMeta) {
        self.name = old.name.clone();
        self.namespace = old.namespace.clone();
        self.uid = old.uid.clone();
        self.creation_timestamp = old.creation_timestamp.clone();
        self.generation = old.generation;
        self.deletion_timestamp = old.deletion_timestamp.clone();
        if self.generate_name.is_none() {
            self.generate_name = old.generate_name.clone();
        }
    }
}

const GENERATE_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A name from `generateName` (5 random characters appended, as the API server does).
pub(crate) fn generate_name(prefix: &str) -> String {
    let mut name = prefix.chars().take(58).collect::<String>();
    for _ in 0..5 {
        name.push(GENERATE_CHARS[rand::random::<u32>() as usize % GENERATE_CHARS.len()] as char);
    }
    name
}

/// `targetPort`: a number or a port name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

/// One entry of `spec.ports`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) app_protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i64>,
}

/// `spec.sessionAffinityConfig.clientIP`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClientIpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
}

/// `spec.sessionAffinityConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SessionAffinityConfig {
    #[serde(rename = "clientIP", default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_ip: Option<ClientIpConfig>,
}

/// `spec` of a Service (v1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<ServicePort>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    #[serde(rename = "clusterIP", default, skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    #[serde(
        rename = "clusterIPs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) cluster_ips: Option<Vec<String>>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub(crate) type_: Option<String>,
    #[serde(
        rename = "externalIPs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) external_ips: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session_affinity: Option<String>,
    #[serde(
        rename = "loadBalancerIP",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) load_balancer_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) load_balancer_source_ranges: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) external_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) external_traffic_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) health_check_node_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) publish_not_ready_addresses: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session_affinity_config: Option<SessionAffinityConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ip_families: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ip_family_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) allocate_load_balancer_node_ports: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) load_balancer_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) internal_traffic_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) traffic_distribution: Option<String>,
}

impl ServiceSpec {
    /// `spec.type`, defaulted.
    pub(crate) fn type_name(&self) -> &str {
        self.type_.as_deref().unwrap_or("ClusterIP")
    }

    /// The ports, or none.
    pub fn ports(&self) -> &[ServicePort] {
        self.ports.as_deref().unwrap_or(&[])
    }
}

/// `status.loadBalancer.ingress[].ports[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortStatus {
    #[serde(default)]
    pub port: i64,
    #[serde(default)]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `status.loadBalancer.ingress[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerIngress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ip_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortStatus>>,
}

/// `status.loadBalancer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<LoadBalancerIngress>>,
}

/// `status` of a Service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) conditions: Option<Vec<Value>>,
}

/// A v1 Service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api_version: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ServiceSpec,
    #[serde(default)]
    pub status: ServiceStatus,
}

/// `spec` of a Namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) finalizers: Option<Vec<String>>,
}

/// `status` of a Namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) conditions: Option<Vec<Value>>,
}

/// A v1 Namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api_version: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NamespaceSpec,
    #[serde(default)]
    pub status: NamespaceStatus,
}

/// The current time as the API server writes timestamps (RFC 3339, seconds, `Z`).
pub(crate) fn now_timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// How long ago seeded objects and pods were created: a cluster that has been up a while.
pub(crate) const SEED_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(42);

/// The creation time of seeded objects ([`SEED_AGE`] ago).
pub(crate) fn seed_timestamp() -> String {
    (chrono::Utc::now() - SEED_AGE)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A random version-4 UUID in its usual text form.
pub(crate) fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}
