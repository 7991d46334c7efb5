//! Request bodies in `application/vnd.kubernetes.protobuf`, decoded to JSON objects.
//!
//! kubectl's typed-client commands (`kubectl create namespace`, `kubectl create service
//! clusterip|nodeport|loadbalancer|externalname`, ...) send their objects as Kubernetes
//! protobuf: the magic `k8s\0`, then a `runtime.Unknown` envelope (`typeMeta`, `raw`) whose
//! `raw` is the generated protobuf of the object (`k8s.io/api/core/v1/generated.proto`). This
//! module decodes that for the kinds kubectl's `create` subcommands send (Service,
//! Namespace, ConfigMap, Secret, ResourceQuota, Deployment, Job, CronJob, Ingress) and
//! `DeleteOptions`, walking a table of field numbers per message
//! (`k8s.io/api/{core,apps,batch,networking}/v1/generated.proto`) that covers the fields
//! those commands set. As Go's JSON encoding
//! of the decoded struct would (`omitempty`), zero values are left out. Unknown field numbers
//! are skipped, as protobuf decoding does. Responses stay JSON, which these clients also
//! accept.

use serde_json::{Map, Value};

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtoError {
    /// The envelope names a kind this module does not decode (answer 415).
    UnsupportedKind(String),
    /// The bytes are not a valid Kubernetes protobuf envelope or message (answer 400).
    Malformed(String),
}

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtoError::UnsupportedKind(k) => write!(
                f,
                "the simulator decodes protobuf only for Service, Namespace, ConfigMap, Secret, \
                 ResourceQuota, Deployment, Job, CronJob, Ingress and DeleteOptions (got {k:?}); \
                 send application/json"
            ),
            ProtoError::Malformed(m) => write!(f, "malformed protobuf body: {m}"),
        }
    }
}

/// The magic prefix of Kubernetes protobuf bodies.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum F {
    Str,
    Int,
    Bool,
    Strs,
    StrMap,
    Time,
    IntOrString,
    Msg(&'static [(u32, &'static str, F)]),
    Msgs(&'static [(u32, &'static str, F)]),
    /// An embedded struct whose fields JSON writes inline (`IngressRule.ingressRuleValue`).
    Inline(&'static [(u32, &'static str, F)]),
    /// `map<string, bytes>`, written base64 as JSON does (`Secret.data`).
    BytesMap,
    /// `map<string, resource.Quantity>` (`resources.limits`, `ResourceQuota.spec.hard`).
    QuantityMap,
}

const TYPE_META: &[(u32, &str, F)] = &[(1, "apiVersion", F::Str), (2, "kind", F::Str)];

const OWNER_REFERENCE: &[(u32, &str, F)] = &[
    (5, "apiVersion", F::Str),
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];

const OBJECT_META: &[(u32, &str, F)] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (4, "selfLink", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (7, "generation", F::Int),
    (8, "creationTimestamp", F::Time),
    (9, "deletionTimestamp", F::Time),
    (10, "deletionGracePeriodSeconds", F::Int),
    (11, "labels", F::StrMap),
    (12, "annotations", F::StrMap),
    (13, "ownerReferences", F::Msgs(OWNER_REFERENCE)),
    (14, "finalizers", F::Strs),
];

const SERVICE_PORT: &[(u32, &str, F)] = &[
    (1, "name", F::Str),
    (2, "protocol", F::Str),
    (3, "port", F::Int),
    (4, "targetPort", F::IntOrString),
    (5, "nodePort", F::Int),
    (6, "appProtocol", F::Str),
];

const CLIENT_IP_CONFIG: &[(u32, &str, F)] = &[(1, "timeoutSeconds", F::Int)];
const SESSION_AFFINITY_CONFIG: &[(u32, &str, F)] = &[(1, "clientIP", F::Msg(CLIENT_IP_CONFIG))];

const SERVICE_SPEC: &[(u32, &str, F)] = &[
    (1, "ports", F::Msgs(SERVICE_PORT)),
    (2, "selector", F::StrMap),
    (3, "clusterIP", F::Str),
    (4, "type", F::Str),
    (5, "externalIPs", F::Strs),
    (7, "sessionAffinity", F::Str),
    (8, "loadBalancerIP", F::Str),
    (9, "loadBalancerSourceRanges", F::Strs),
    (10, "externalName", F::Str),
    (11, "externalTrafficPolicy", F::Str),
    (12, "healthCheckNodePort", F::Int),
    (13, "publishNotReadyAddresses", F::Bool),
    (14, "sessionAffinityConfig", F::Msg(SESSION_AFFINITY_CONFIG)),
    (17, "ipFamilyPolicy", F::Str),
    (18, "clusterIPs", F::Strs),
    (19, "ipFamilies", F::Strs),
    (20, "allocateLoadBalancerNodePorts", F::Bool),
    (21, "loadBalancerClass", F::Str),
    (22, "internalTrafficPolicy", F::Str),
    (23, "trafficDistribution", F::Str),
];

const PORT_STATUS: &[(u32, &str, F)] = &[
    (1, "port", F::Int),
    (2, "protocol", F::Str),
    (3, "error", F::Str),
];
const LOAD_BALANCER_INGRESS: &[(u32, &str, F)] = &[
    (1, "ip", F::Str),
    (2, "hostname", F::Str),
    (3, "ipMode", F::Str),
    (4, "ports", F::Msgs(PORT_STATUS)),
];
const LOAD_BALANCER_STATUS: &[(u32, &str, F)] = &[(1, "ingress", F::Msgs(LOAD_BALANCER_INGRESS))];
const CONDITION: &[(u32, &str, F)] = &[
    (1, "type", F::Str),
    (2, "status", F::Str),
    (3, "observedGeneration", F::Int),
    (4, "lastTransitionTime", F::Time),
    (5, "reason", F::Str),
    (6, "message", F::Str),
];
const SERVICE_STATUS: &[(u32, &str, F)] = &[
    (1, "loadBalancer", F::Msg(LOAD_BALANCER_STATUS)),
    (2, "conditions", F::Msgs(CONDITION)),
];

const SERVICE: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(SERVICE_SPEC)),
    (3, "status", F::Msg(SERVICE_STATUS)),
];

const NAMESPACE_CONDITION: &[(u32, &str, F)] = &[
    (1, "type", F::Str),
    (2, "status", F::Str),
    (4, "lastTransitionTime", F::Time),
    (5, "reason", F::Str),
    (6, "message", F::Str),
];
const NAMESPACE_SPEC: &[(u32, &str, F)] = &[(1, "finalizers", F::Strs)];
const NAMESPACE_STATUS: &[(u32, &str, F)] = &[
    (1, "phase", F::Str),
    (2, "conditions", F::Msgs(NAMESPACE_CONDITION)),
];
const NAMESPACE: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(NAMESPACE_SPEC)),
    (3, "status", F::Msg(NAMESPACE_STATUS)),
];

const PRECONDITIONS: &[(u32, &str, F)] = &[(1, "uid", F::Str), (2, "resourceVersion", F::Str)];
const DELETE_OPTIONS: &[(u32, &str, F)] = &[
    (1, "gracePeriodSeconds", F::Int),
    (2, "preconditions", F::Msg(PRECONDITIONS)),
    (3, "orphanDependents", F::Bool),
    (4, "propagationPolicy", F::Str),
    (5, "dryRun", F::Strs),
];

// apps/v1, batch/v1, networking.k8s.io/v1 and more of core/v1: what kubectl's typed
// `create deployment|job|cronjob|configmap|secret|ingress|quota` send.
const LABEL_SELECTOR_REQUIREMENT: &[(u32, &str, F)] = &[
    (1, "key", F::Str),
    (2, "operator", F::Str),
    (3, "values", F::Strs),
];
const LABEL_SELECTOR: &[(u32, &str, F)] = &[
    (1, "matchLabels", F::StrMap),
    (2, "matchExpressions", F::Msgs(LABEL_SELECTOR_REQUIREMENT)),
];
const CONTAINER_PORT: &[(u32, &str, F)] = &[
    (1, "name", F::Str),
    (2, "hostPort", F::Int),
    (3, "containerPort", F::Int),
    (4, "protocol", F::Str),
    (5, "hostIP", F::Str),
];
const ENV_VAR: &[(u32, &str, F)] = &[(1, "name", F::Str), (2, "value", F::Str)];
const RESOURCE_REQUIREMENTS: &[(u32, &str, F)] = &[
    (1, "limits", F::QuantityMap),
    (2, "requests", F::QuantityMap),
];
const CONTAINER: &[(u32, &str, F)] = &[
    (1, "name", F::Str),
    (2, "image", F::Str),
    (3, "command", F::Strs),
    (4, "args", F::Strs),
    (5, "workingDir", F::Str),
    (6, "ports", F::Msgs(CONTAINER_PORT)),
    (7, "env", F::Msgs(ENV_VAR)),
    (8, "resources", F::Msg(RESOURCE_REQUIREMENTS)),
    (13, "terminationMessagePath", F::Str),
    (14, "imagePullPolicy", F::Str),
    (16, "stdin", F::Bool),
    (17, "stdinOnce", F::Bool),
    (18, "tty", F::Bool),
    (20, "terminationMessagePolicy", F::Str),
];
const POD_SPEC: &[(u32, &str, F)] = &[
    (2, "containers", F::Msgs(CONTAINER)),
    (3, "restartPolicy", F::Str),
    (4, "terminationGracePeriodSeconds", F::Int),
    (5, "activeDeadlineSeconds", F::Int),
    (6, "dnsPolicy", F::Str),
    (7, "nodeSelector", F::StrMap),
    (8, "serviceAccountName", F::Str),
    (10, "nodeName", F::Str),
    (19, "schedulerName", F::Str),
    (20, "initContainers", F::Msgs(CONTAINER)),
];
const POD_TEMPLATE_SPEC: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(POD_SPEC)),
];
const ROLLING_UPDATE_DEPLOYMENT: &[(u32, &str, F)] = &[
    (1, "maxUnavailable", F::IntOrString),
    (2, "maxSurge", F::IntOrString),
];
const DEPLOYMENT_STRATEGY: &[(u32, &str, F)] = &[
    (1, "type", F::Str),
    (2, "rollingUpdate", F::Msg(ROLLING_UPDATE_DEPLOYMENT)),
];
const DEPLOYMENT_SPEC: &[(u32, &str, F)] = &[
    (1, "replicas", F::Int),
    (2, "selector", F::Msg(LABEL_SELECTOR)),
    (3, "template", F::Msg(POD_TEMPLATE_SPEC)),
    (4, "strategy", F::Msg(DEPLOYMENT_STRATEGY)),
    (5, "minReadySeconds", F::Int),
    (6, "revisionHistoryLimit", F::Int),
    (7, "paused", F::Bool),
    (9, "progressDeadlineSeconds", F::Int),
];
const DEPLOYMENT: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(DEPLOYMENT_SPEC)),
];
const JOB_SPEC: &[(u32, &str, F)] = &[
    (1, "parallelism", F::Int),
    (2, "completions", F::Int),
    (3, "activeDeadlineSeconds", F::Int),
    (4, "selector", F::Msg(LABEL_SELECTOR)),
    (5, "manualSelector", F::Bool),
    (6, "template", F::Msg(POD_TEMPLATE_SPEC)),
    (7, "backoffLimit", F::Int),
    (8, "ttlSecondsAfterFinished", F::Int),
    (9, "completionMode", F::Str),
    (10, "suspend", F::Bool),
];
const JOB: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(JOB_SPEC)),
];
const JOB_TEMPLATE_SPEC: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(JOB_SPEC)),
];
const CRON_JOB_SPEC: &[(u32, &str, F)] = &[
    (1, "schedule", F::Str),
    (2, "startingDeadlineSeconds", F::Int),
    (3, "concurrencyPolicy", F::Str),
    (4, "suspend", F::Bool),
    (5, "jobTemplate", F::Msg(JOB_TEMPLATE_SPEC)),
    (6, "successfulJobsHistoryLimit", F::Int),
    (7, "failedJobsHistoryLimit", F::Int),
    (8, "timeZone", F::Str),
];
const CRON_JOB: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(CRON_JOB_SPEC)),
];
const CONFIG_MAP: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::StrMap),
    (3, "binaryData", F::BytesMap),
    (4, "immutable", F::Bool),
];
const SECRET: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::BytesMap),
    (3, "type", F::Str),
    (4, "stringData", F::StrMap),
    (5, "immutable", F::Bool),
];
const SERVICE_BACKEND_PORT: &[(u32, &str, F)] = &[(1, "name", F::Str), (2, "number", F::Int)];
const INGRESS_SERVICE_BACKEND: &[(u32, &str, F)] = &[
    (1, "name", F::Str),
    (2, "port", F::Msg(SERVICE_BACKEND_PORT)),
];
const TYPED_LOCAL_OBJECT_REFERENCE: &[(u32, &str, F)] = &[
    (1, "apiGroup", F::Str),
    (2, "kind", F::Str),
    (3, "name", F::Str),
];
const INGRESS_BACKEND: &[(u32, &str, F)] = &[
    (3, "resource", F::Msg(TYPED_LOCAL_OBJECT_REFERENCE)),
    (4, "service", F::Msg(INGRESS_SERVICE_BACKEND)),
];
const HTTP_INGRESS_PATH: &[(u32, &str, F)] = &[
    (1, "path", F::Str),
    (2, "backend", F::Msg(INGRESS_BACKEND)),
    (3, "pathType", F::Str),
];
const HTTP_INGRESS_RULE_VALUE: &[(u32, &str, F)] = &[(1, "paths", F::Msgs(HTTP_INGRESS_PATH))];
const INGRESS_RULE_VALUE: &[(u32, &str, F)] = &[(1, "http", F::Msg(HTTP_INGRESS_RULE_VALUE))];
const INGRESS_RULE: &[(u32, &str, F)] = &[
    (1, "host", F::Str),
    (2, "ingressRuleValue", F::Inline(INGRESS_RULE_VALUE)),
];
const INGRESS_TLS: &[(u32, &str, F)] = &[(1, "hosts", F::Strs), (2, "secretName", F::Str)];
const INGRESS_SPEC: &[(u32, &str, F)] = &[
    (1, "defaultBackend", F::Msg(INGRESS_BACKEND)),
    (2, "tls", F::Msgs(INGRESS_TLS)),
    (3, "rules", F::Msgs(INGRESS_RULE)),
    (4, "ingressClassName", F::Str),
];
const INGRESS: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(INGRESS_SPEC)),
];
const RESOURCE_QUOTA_SPEC: &[(u32, &str, F)] =
    &[(1, "hard", F::QuantityMap), (2, "scopes", F::Strs)];
const RESOURCE_QUOTA: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(RESOURCE_QUOTA_SPEC)),
];

/// One field read off the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| ProtoError::Malformed("truncated varint".into()))?;
            self.buf = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtoError::Malformed("varint too long".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if self.buf.len() < n {
            return Err(ProtoError::Malformed("truncated field".into()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .map_err(|_| ProtoError::Malformed("field number out of range".into()))?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtoError::Malformed("length out of range".into()))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            w => return Err(ProtoError::Malformed(format!("unsupported wire type {w}"))),
        };
        Ok(Some((number, wire)))
    }
}

fn utf8(bytes: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtoError::Malformed("invalid UTF-8".into()))
}

/// Go's zero `time.Time` in Unix seconds; `metav1.Time` writes it as an empty message.
const GO_ZERO_TIME: i64 = -62_135_596_800;

fn time(bytes: &[u8]) -> Result<Option<String>, ProtoError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let (mut seconds, mut nanos) = (0i64, 0u32);
    let mut r = Reader { buf: bytes };
    while let Some((n, w)) = r.next()? {
        match (n, w) {
            (1, Wire::Varint(v)) => seconds = v as i64,
            (2, Wire::Varint(v)) => nanos = v as u32,
            _ => {}
        }
    }
    if seconds == GO_ZERO_TIME {
        return Ok(None);
    }
    Ok(chrono::DateTime::from_timestamp(seconds, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

fn int_or_string(bytes: &[u8]) -> Result<Option<Value>, ProtoError> {
    let (mut kind, mut int, mut string) = (0u64, 0i64, String::new());
    let mut r = Reader { buf: bytes };
    while let Some((n, w)) = r.next()? {
        match (n, w) {
            (1, Wire::Varint(v)) => kind = v,
            (2, Wire::Varint(v)) => int = i64::from(v as u32 as i32),
            (3, Wire::Bytes(b)) => string = utf8(b)?,
            _ => {}
        }
    }
    Ok(match kind {
        1 => Some(Value::from(string)),
        _ if int != 0 => Some(Value::from(int)),
        _ => None,
    })
}

fn string_map_entry(bytes: &[u8]) -> Result<(String, String), ProtoError> {
    let (mut k, mut v) = (String::new(), String::new());
    let mut r = Reader { buf: bytes };
    while let Some((n, w)) = r.next()? {
        match (n, w) {
            (1, Wire::Bytes(b)) => k = utf8(b)?,
            (2, Wire::Bytes(b)) => v = utf8(b)?,
            _ => {}
        }
    }
    Ok((k, v))
}

/// A `map<string, bytes>` entry, the value base64 as JSON writes `[]byte`.
fn bytes_map_entry(bytes: &[u8]) -> Result<(String, String), ProtoError> {
    use base64::Engine;
    let (mut k, mut v) = (String::new(), Vec::new());
    let mut r = Reader { buf: bytes };
    while let Some((n, w)) = r.next()? {
        match (n, w) {
            (1, Wire::Bytes(b)) => k = utf8(b)?,
            (2, Wire::Bytes(b)) => v = b.to_vec(),
            _ => {}
        }
    }
    Ok((k, base64::engine::general_purpose::STANDARD.encode(v)))
}

/// A `map<string, resource.Quantity>` entry (`Quantity` is a message whose field 1 is the
/// string form).
fn quantity_map_entry(bytes: &[u8]) -> Result<(String, String), ProtoError> {
    let (mut k, mut v) = (String::new(), String::new());
    let mut r = Reader { buf: bytes };
    while let Some((n, w)) = r.next()? {
        match (n, w) {
            (1, Wire::Bytes(b)) => k = utf8(b)?,
            (2, Wire::Bytes(b)) => {
                let mut q = Reader { buf: b };
                while let Some((qn, qw)) = q.next()? {
                    if let (1, Wire::Bytes(s)) = (qn, qw) {
                        v = utf8(s)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((k, v))
}

fn message(
    bytes: &[u8],
    fields: &[(u32, &str, F)],
    depth: u8,
) -> Result<Map<String, Value>, ProtoError> {
    if depth > 16 {
        return Err(ProtoError::Malformed("nested too deeply".into()));
    }
    let mut out = Map::new();
    let mut r = Reader { buf: bytes };
    while let Some((number, wire)) = r.next()? {
        let Some(&(_, name, kind)) = fields.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        match (kind, wire) {
            (F::Str, Wire::Bytes(b)) => {
                let s = utf8(b)?;
                if !s.is_empty() {
                    out.insert(name.into(), Value::from(s));
                }
            }
            (F::Int, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(name.into(), Value::from(v as i64));
                }
            }
            (F::Bool, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(name.into(), Value::from(true));
                }
            }
            (F::Strs, Wire::Bytes(b)) => {
                let list = out.entry(name).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = list {
                    a.push(Value::from(utf8(b)?));
                }
            }
            (F::StrMap | F::BytesMap | F::QuantityMap, Wire::Bytes(b)) => {
                let (k, v) = match kind {
                    F::BytesMap => bytes_map_entry(b)?,
                    F::QuantityMap => quantity_map_entry(b)?,
                    _ => string_map_entry(b)?,
                };
                let map = out.entry(name).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = map {
                    m.insert(k, Value::from(v));
                }
            }
            (F::Time, Wire::Bytes(b)) => {
                if let Some(t) = time(b)? {
                    out.insert(name.into(), Value::from(t));
                }
            }
            (F::IntOrString, Wire::Bytes(b)) => {
                if let Some(v) = int_or_string(b)? {
                    out.insert(name.into(), v);
                }
            }
            (F::Msg(sub), Wire::Bytes(b)) => {
                let m = message(b, sub, depth + 1)?;
                if !m.is_empty() {
                    out.insert(name.into(), Value::Object(m));
                }
            }
            (F::Inline(sub), Wire::Bytes(b)) => {
                out.extend(message(b, sub, depth + 1)?);
            }
            (F::Msgs(sub), Wire::Bytes(b)) => {
                let m = message(b, sub, depth + 1)?;
                let list = out.entry(name).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = list {
                    a.push(Value::Object(m));
                }
            }
            _ => {
                return Err(ProtoError::Malformed(format!(
                    "field {name} has an unexpected wire type"
                )))
            }
        }
    }
    Ok(out)
}

/// Decodes a Kubernetes protobuf request body (`k8s\0` + `runtime.Unknown`) into the JSON
/// object a client would have sent as `application/json`.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ProtoError::Malformed("missing the k8s protobuf prefix".into()))?;
    let mut type_meta = Map::new();
    let mut raw: &[u8] = &[];
    let mut r = Reader { buf: rest };
    while let Some((number, wire)) = r.next()? {
        match (number, wire) {
            (1, Wire::Bytes(b)) => type_meta = message(b, TYPE_META, 0)?,
            (2, Wire::Bytes(b)) => raw = b,
            (3, Wire::Bytes(b)) if !b.is_empty() => {
                return Err(ProtoError::Malformed(format!(
                    "unsupported contentEncoding {:?}",
                    String::from_utf8_lossy(b)
                )))
            }
            _ => {}
        }
    }
    let api_version = type_meta
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let kind = type_meta
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let fields = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Service") => SERVICE,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "ResourceQuota") => RESOURCE_QUOTA,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("batch/v1", "Job") => JOB,
        ("batch/v1", "CronJob") => CRON_JOB,
        ("networking.k8s.io/v1", "Ingress") => INGRESS,
        (_, "DeleteOptions") => DELETE_OPTIONS,
        _ => return Err(ProtoError::UnsupportedKind(format!("{api_version}/{kind}"))),
    };
    let mut object = Map::new();
    object.insert("kind".into(), Value::from(kind));
    object.insert("apiVersion".into(), Value::from(api_version));
    object.extend(message(raw, fields, 0)?);
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn bytes(n: u32, b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(n) << 3 | 2, &mut out);
        varint(b.len() as u64, &mut out);
        out.extend_from_slice(b);
        out
    }
    fn int(n: u32, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(n) << 3, &mut out);
        varint(v, &mut out);
        out
    }
    fn entry(n: u32, k: &str, v: &str) -> Vec<u8> {
        bytes(
            n,
            &[bytes(1, k.as_bytes()), bytes(2, v.as_bytes())].concat(),
        )
    }
    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let tm = [bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())].concat();
        [
            MAGIC.to_vec(),
            bytes(1, &tm),
            bytes(2, raw),
            bytes(3, b""),
            bytes(4, b""),
        ]
        .concat()
    }

    #[test]
    fn decodes_a_service_like_kubectl_create_service_sends() {
        // As gogo-protobuf writes it: every non-pointer field, empty ones included.
        let meta = [
            bytes(1, b"gen"),
            bytes(2, b""),
            bytes(3, b""),
            entry(11, "app", "gen"),
            bytes(8, b""),
        ]
        .concat();
        let port = [
            bytes(1, b"80-8080"),
            bytes(2, b"TCP"),
            int(3, 80),
            bytes(4, &[int(1, 0), int(2, 8080), bytes(3, b"")].concat()),
            int(5, 30080),
        ]
        .concat();
        let named_target = [
            int(3, 9000),
            bytes(4, &[int(1, 1), int(2, 0), bytes(3, b"grpc")].concat()),
        ]
        .concat();
        let spec = [
            bytes(1, &port),
            bytes(1, &named_target),
            entry(2, "app", "gen"),
            bytes(3, b""),
            bytes(4, b"NodePort"),
            bytes(18, b"10.96.0.20"),
            int(20, 1),
            bytes(14, &bytes(1, &int(1, 600))),
        ]
        .concat();
        let raw = [bytes(1, &meta), bytes(2, &spec), bytes(3, &bytes(1, b""))].concat();
        let got = decode(&envelope("v1", "Service", &raw)).unwrap();
        assert_eq!(
            got,
            json!({
                "kind": "Service", "apiVersion": "v1",
                "metadata": {"name": "gen", "labels": {"app": "gen"}},
                "spec": {
                    "ports": [
                        {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                        {"port": 9000, "targetPort": "grpc"}
                    ],
                    "selector": {"app": "gen"},
                    "type": "NodePort",
                    "clusterIPs": ["10.96.0.20"],
                    "allocateLoadBalancerNodePorts": true,
                    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}}
                }
            })
        );
    }

    #[test]
    fn decodes_a_namespace_and_delete_options() {
        let time = [int(1, 1_700_000_000), int(2, 0)].concat();
        let meta = [bytes(1, b"scratch"), bytes(8, &time), entry(12, "a", "b")].concat();
        let raw = [bytes(1, &meta), bytes(2, &bytes(1, b"kubernetes"))].concat();
        assert_eq!(
            decode(&envelope("v1", "Namespace", &raw)).unwrap(),
            json!({"kind": "Namespace", "apiVersion": "v1",
                   "metadata": {"name": "scratch", "creationTimestamp": "2023-11-14T22:13:20Z",
                                "annotations": {"a": "b"}},
                   "spec": {"finalizers": ["kubernetes"]}})
        );
        let raw = [int(1, 0), bytes(4, b"Background"), bytes(5, b"All")].concat();
        assert_eq!(
            decode(&envelope("meta.k8s.io/v1", "DeleteOptions", &raw)).unwrap(),
            json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1",
                   "propagationPolicy": "Background", "dryRun": ["All"]})
        );
    }

    #[test]
    fn refuses_what_it_cannot_decode() {
        assert!(matches!(
            decode(&envelope("apps/v1", "StatefulSet", b"")),
            Err(ProtoError::UnsupportedKind(k)) if k == "apps/v1/StatefulSet"
        ));
        assert!(matches!(
            decode(b"{\"kind\":\"Service\"}"),
            Err(ProtoError::Malformed(_))
        ));
        // Truncated: a length running past the end.
        let mut bad = envelope("v1", "Service", &bytes(1, b"abc"));
        bad.truncate(bad.len() - 6);
        assert!(matches!(decode(&bad), Err(ProtoError::Malformed(_))));
        // Never panics on arbitrary bytes after the prefix.
        for n in 0..=255u8 {
            let mut junk = MAGIC.to_vec();
            junk.extend(std::iter::repeat_n(n, 11));
            let _ = decode(&junk);
        }
    }
}
