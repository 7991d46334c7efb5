//! The simulated cluster's pods: seeded at start (one per Service selector and a `toolbox`
//! pod in every namespace, plus `kind: Pod` objects from the seed YAML) and rendered as
//! realistic v1 Pod objects (Running, one ready container each) that kubectl accepts.

use crate::sim::objects::{pod_template_hash, uid_for};
use crate::sim::table::{canonical_quantity, Quantity};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// One container of a simulated pod.
#[derive(Debug, Clone)]
pub struct Container {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Declared container ports (TCP); port-forward accepts these.
    pub ports: Vec<u16>,
    /// The container's other fields as the seed or the creating request gave them
    /// (`resources`, `env`, `command`, `args`, `ports`, probes, `volumeMounts`, ...), with
    /// the defaults the API server sets; rendered in `spec.containers` (see [`Container::spec`]).
    pub fields: Map<String, Value>,
}

/// `v1.Container`'s fields in the order the API server writes them; others follow.
const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
];

impl Container {
    /// A container with only a name, an image and TCP ports (the pods the simulator makes
    /// up for Services and the `toolbox` pods).
    pub fn new(name: impl Into<String>, image: impl Into<String>, ports: Vec<u16>) -> Self {
        let mut fields = Map::new();
        if !ports.is_empty() {
            let ports: Vec<Value> = ports.iter().map(|p| json!({"containerPort": p})).collect();
            fields.insert("ports".into(), Value::Array(ports));
        }
        Self::from_fields(name.into(), image.into(), fields)
    }

    /// A container from a pod spec's container object (`None` without a name).
    fn from_spec(c: &Value) -> Option<Self> {
        let name = c.get("name")?.as_str()?.to_string();
        let image = c
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("docker.io/library/busybox:1.36")
            .to_string();
        let mut fields = c.as_object()?.clone();
        fields.shift_remove("name");
        fields.shift_remove("image");
        Some(Self::from_fields(name, image, fields))
    }

    /// Applies the API server's container defaults to `fields` and reads the ports.
    fn from_fields(name: String, image: String, mut fields: Map<String, Value>) -> Self {
        container_defaults(&image, &mut fields);
        let ports = fields
            .get("ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.get("containerPort")?.as_u64())
                    .filter_map(|p| u16::try_from(p).ok())
                    .collect()
            })
            .unwrap_or_default();
        Container {
            name,
            image,
            ports,
            fields,
        }
    }

    /// The container as `spec.containers[]` shows it.
    pub fn spec(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name));
        out.insert("image".into(), json!(self.image));
        for key in &CONTAINER_FIELDS[2..] {
            if let Some(v) = self.fields.get(*key) {
                out.insert((*key).into(), v.clone());
            }
        }
        for (k, v) in &self.fields {
            if !CONTAINER_FIELDS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }

    /// The container's `resources.{requests|limits}.{resource}` (canonical text).
    fn quantity(&self, which: &str, resource: &str) -> Option<&str> {
        self.fields
            .get("resources")?
            .get(which)?
            .get(resource)?
            .as_str()
    }
}

fn default_field(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), value);
    }
}

/// The core defaulters' container defaults: pull policy by the image's tag, termination
/// message, `resources` (requests default to the limits; quantities in canonical form),
/// port protocol, probe periods and thresholds.
fn container_defaults(image: &str, c: &mut Map<String, Value>) {
    let last = image.rsplit('/').next().unwrap_or("");
    let latest = !last.contains(':') || last.ends_with(":latest");
    let policy = if latest && !image.contains('@') {
        "Always"
    } else {
        "IfNotPresent"
    };
    default_field(c, "imagePullPolicy", json!(policy));
    default_field(c, "terminationMessagePath", json!("/dev/termination-log"));
    default_field(c, "terminationMessagePolicy", json!("File"));
    default_field(c, "resources", json!({}));
    if let Some(Value::Object(resources)) = c.get_mut("resources") {
        let limits = resources.get("limits").and_then(Value::as_object).cloned();
        if let Some(limits) = limits.filter(|l| !l.is_empty()) {
            let requests = resources.entry("requests").or_insert_with(|| json!({}));
            if let Value::Object(requests) = requests {
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        }
        for which in ["limits", "requests"] {
            if let Some(Value::Object(m)) = resources.get_mut(which) {
                for v in m.values_mut() {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => continue,
                    };
                    *v = json!(canonical_quantity(&text));
                }
            }
        }
    }
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_field(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(Value::Object(p)) = c.get_mut(probe) {
            if let Some(Value::Object(get)) = p.get_mut("httpGet") {
                default_field(get, "scheme", json!("HTTP"));
            }
            default_field(p, "timeoutSeconds", json!(1));
            default_field(p, "periodSeconds", json!(10));
            default_field(p, "successThreshold", json!(1));
            default_field(p, "failureThreshold", json!(3));
        }
    }
}

/// A simulated pod.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion`.
    pub resource_version: u64,
    /// Creation (and start) time.
    pub created: DateTime<Utc>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Containers (at least one).
    pub containers: Vec<Container>,
    /// Node the pod runs on.
    pub node: String,
    /// Pod IP.
    pub pod_ip: String,
    /// Interval between the lines a followed log emits.
    pub log_interval: Duration,
    /// `metadata.ownerReferences` (the ReplicaSet, StatefulSet or DaemonSet of a seeded
    /// workload's pods).
    pub owner_references: Vec<Value>,
}

/// Annotation that sets the interval of followed log lines (`500ms`, `2s`).
pub(crate) const LOG_INTERVAL_ANNOTATION: &str = "sim.kubeplex.io/log-interval";

impl Pod {
    /// The container named `name`, or the default (first) container for `None`.
    pub fn container(&self, name: Option<&str>) -> Option<&Container> {
        match name {
            Some(n) if !n.is_empty() => self.containers.iter().find(|c| c.name == n),
            _ => self.containers.first(),
        }
    }

    /// `status.qosClass`: `Guaranteed` when every container's CPU and memory requests equal
    /// its limits, `BestEffort` when no container requests or limits either, else
    /// `Burstable`.
    pub fn qos_class(&self) -> &'static str {
        const RESOURCES: [&str; 2] = ["cpu", "memory"];
        let nonzero = |q: Option<&str>| {
            q.and_then(Quantity::parse)
                .is_some_and(|q| q.to_string() != "0")
        };
        // Equal values in other notations (`1Gi`, `1073741824`): their difference is zero.
        let equal = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (Some(a), Some(b)) => {
                let b = b.strip_prefix('+').unwrap_or(b);
                let negated = match b.strip_prefix('-') {
                    Some(positive) => positive.to_string(),
                    None => format!("-{b}"),
                };
                Quantity::parse(a)
                    .zip(Quantity::parse(&negated))
                    .and_then(|(a, b)| a.add(b))
                    .is_some_and(|d| d.to_string() == "0")
            }
            _ => false,
        };
        let any = self.containers.iter().any(|c| {
            RESOURCES
                .iter()
                .any(|r| nonzero(c.quantity("requests", r)) || nonzero(c.quantity("limits", r)))
        });
        if !any {
            return "BestEffort";
        }
        let guaranteed = self.containers.iter().all(|c| {
            RESOURCES
                .iter()
                .all(|r| equal(c.quantity("requests", r), c.quantity("limits", r)))
        });
        if guaranteed {
            "Guaranteed"
        } else {
            "Burstable"
        }
    }

    /// The v1 Pod object (with `kind` and `apiVersion` when `full`, as for a single get).
    pub fn to_json(&self, full: bool) -> Value {
        let ts = self.created.to_rfc3339_opts(SecondsFormat::Secs, true);
        let containers: Vec<Value> = self.containers.iter().map(Container::spec).collect();
        let statuses: Vec<Value> = self
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "name": c.name,
                    "state": {"running": {"startedAt": ts}},
                    "lastState": {},
                    "ready": true,
                    "restartCount": 0,
                    "image": c.image,
                    "imageID": format!("{}@sha256:{:064x}", c.image.split(':').next().unwrap_or(""), fnv(&c.image) as u128),
                    "containerID": format!("containerd://{:016x}{:016x}{:032x}", fnv(&self.uid), i, fnv(&c.name)),
                    "started": true,
                })
            })
            .collect();
        let condition = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": ts});
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(self.name));
        metadata.insert("namespace".into(), json!(self.namespace));
        metadata.insert("uid".into(), json!(self.uid));
        metadata.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        metadata.insert("creationTimestamp".into(), json!(ts));
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), json!(self.labels));
        }
        if !self.annotations.is_empty() {
            metadata.insert("annotations".into(), json!(self.annotations));
        }
        if !self.owner_references.is_empty() {
            metadata.insert("ownerReferences".into(), json!(self.owner_references));
        }
        let mut pod = Map::new();
        if full {
            pod.insert("kind".into(), json!("Pod"));
            pod.insert("apiVersion".into(), json!("v1"));
        }
        pod.insert("metadata".into(), Value::Object(metadata));
        pod.insert(
            "spec".into(),
            json!({
                "containers": containers,
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "serviceAccountName": "default",
                "serviceAccount": "default",
                "nodeName": self.node,
                "securityContext": {},
                "schedulerName": "default-scheduler",
                "tolerations": [
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                ],
                "priority": 0,
                "enableServiceLinks": true,
                "preemptionPolicy": "PreemptLowerPriority"
            }),
        );
        pod.insert(
            "status".into(),
            json!({
                "phase": "Running",
                "conditions": [
                    condition("PodReadyToStartContainers"),
                    condition("Initialized"),
                    condition("Ready"),
                    condition("ContainersReady"),
                    condition("PodScheduled"),
                ],
                "hostIP": "10.0.0.10",
                "hostIPs": [{"ip": "10.0.0.10"}],
                "podIP": self.pod_ip,
                "podIPs": [{"ip": self.pod_ip}],
                "startTime": ts,
                "containerStatuses": statuses,
                "qosClass": self.qos_class(),
            }),
        );
        Value::Object(pod)
    }
}

/// 64-bit FNV-1a, for stable made-up identifiers.
pub(crate) fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A deterministic pod-name suffix like a ReplicaSet's (`7d9f8c6b5-x2k4p`).
fn suffix(seed: &str) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = fnv(seed);
    let mut out = String::new();
    for i in 0..15 {
        if i == 9 {
            out.push('-');
        }
        out.push(ALPHA[(h % ALPHA.len() as u64) as usize] as char);
        h = h.rotate_right(5).wrapping_mul(0x9e3779b97f4a7c15) ^ (i as u64);
    }
    out
}

/// The pods of one simulated cluster: seeded at start; more may be created through the API
/// (`POST .../pods`), and watches see them as they come.
#[derive(Debug)]
pub struct PodStore {
    pods: std::sync::RwLock<BTreeMap<(String, String), Pod>>,
    resource_version: std::sync::atomic::AtomicU64,
    created: tokio::sync::broadcast::Sender<Pod>,
}

impl Default for PodStore {
    fn default() -> Self {
        PodStore {
            pods: Default::default(),
            resource_version: Default::default(),
            created: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

impl PodStore {
    /// Builds the pods from the seed YAML text (`None`: only the `default` namespace).
    /// Unparseable documents are skipped: the seed is validated by the sim's own loader.
    pub fn seeded(seed: Option<&str>) -> Self {
        let mut docs: Vec<Value> = Vec::new();
        if let Some(text) = seed {
            for doc in serde_yaml::Deserializer::from_str(text) {
                let Ok(v) = <Value as serde::Deserialize>::deserialize(doc) else {
                    continue;
                };
                if v.get("kind").and_then(Value::as_str) == Some("List") {
                    if let Some(items) = v.get("items").and_then(Value::as_array) {
                        docs.extend(items.iter().cloned());
                    }
                } else if v.is_object() {
                    docs.push(v);
                }
            }
        }
        let mut namespaces: Vec<String> = vec!["default".to_string()];
        let add_ns = |ns: &str, list: &mut Vec<String>| {
            if !list.iter().any(|n| n == ns) {
                list.push(ns.to_string());
            }
        };
        let start = Utc::now() - crate::sim::model::SEED_AGE;
        let mut store = PodStore::default();
        *store.resource_version.get_mut() = 100;
        for d in &docs {
            let kind = d.get("kind").and_then(Value::as_str).unwrap_or("");
            let api_version = d.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            let ns = d
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default");
            if let (true, Some(n)) = (
                api_version == "apps/v1"
                    && matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet"),
                d.pointer("/metadata/name").and_then(Value::as_str),
            ) {
                add_ns(ns, &mut namespaces);
                for pod in workload_pods(d, kind, ns, n, start) {
                    store.insert(pod);
                }
            }
        }
        for d in &docs {
            let kind = d.get("kind").and_then(Value::as_str).unwrap_or("");
            let name = d.pointer("/metadata/name").and_then(Value::as_str);
            let ns = d
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default");
            match (kind, name) {
                ("Namespace", Some(n)) => add_ns(n, &mut namespaces),
                ("Service", Some(n)) => {
                    add_ns(ns, &mut namespaces);
                    let selector: BTreeMap<String, String> = d
                        .pointer("/spec/selector")
                        .and_then(|s| serde_json::from_value(s.clone()).ok())
                        .unwrap_or_default();
                    // A Service whose pods a seeded workload runs needs no pod of its own.
                    if selector.is_empty()
                        || store
                            .pods
                            .get_mut()
                            .unwrap_or_else(|e| e.into_inner())
                            .values()
                            .any(|p| {
                                p.namespace == ns
                                    && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                            })
                    {
                        continue;
                    }
                    let ports: Vec<u16> = d
                        .pointer("/spec/ports")
                        .and_then(Value::as_array)
                        .map(|ps| {
                            ps.iter()
                                .filter_map(|p| {
                                    p.get("targetPort")
                                        .and_then(Value::as_u64)
                                        .or_else(|| p.get("port").and_then(Value::as_u64))
                                        .and_then(|v| u16::try_from(v).ok())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let app = selector
                        .get("app")
                        .or_else(|| selector.get("app.kubernetes.io/name"))
                        .cloned()
                        .unwrap_or_else(|| n.to_string());
                    let pod_name = format!("{app}-{}", suffix(&format!("{ns}/{n}")));
                    let image = format!("registry.example.com/{ns}/{app}:1.4.2");
                    store.insert(Pod {
                        namespace: ns.to_string(),
                        name: pod_name,
                        uid: String::new(),
                        resource_version: 0,
                        created: start,
                        labels: selector,
                        annotations: BTreeMap::new(),
                        containers: vec![Container::new(app, image, ports)],
                        node: "sim-node-1".into(),
                        pod_ip: String::new(),
                        log_interval: Duration::from_secs(1),
                        owner_references: Vec::new(),
                    });
                }
                ("Pod", Some(n)) => {
                    add_ns(ns, &mut namespaces);
                    if let Some(pod) = pod_from_seed(d, ns, n, start) {
                        store.insert(pod);
                    }
                }
                _ => {}
            }
        }
        for ns in &namespaces {
            if store.get(ns, "toolbox").is_none() {
                store.insert(Pod {
                    namespace: ns.clone(),
                    name: "toolbox".into(),
                    uid: String::new(),
                    resource_version: 0,
                    created: start,
                    labels: BTreeMap::from([("app".to_string(), "toolbox".to_string())]),
                    annotations: BTreeMap::new(),
                    containers: vec![Container::new(
                        "shell",
                        "docker.io/library/busybox:1.36",
                        vec![8080],
                    )],
                    node: "sim-node-1".into(),
                    pod_ip: String::new(),
                    log_interval: Duration::from_secs(1),
                    owner_references: Vec::new(),
                });
            }
        }
        store
    }

    /// Gives `pod` its resourceVersion, uid, IP and log interval.
    fn prepare(pod: &mut Pod, rv: u64) {
        pod.resource_version = rv;
        let h = fnv(&format!("{}/{}", pod.namespace, pod.name));
        if pod.uid.is_empty() {
            pod.uid = format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                h >> 32,
                (h >> 16) & 0xffff,
                h & 0xfff,
                (h >> 20) & 0xfff,
                h.rotate_left(17) & 0xffff_ffff_ffff
            );
        }
        if pod.pod_ip.is_empty() {
            pod.pod_ip = format!("10.244.{}.{}", 1 + (h >> 8) % 250, 2 + h % 250);
        }
        if let Some(v) = pod.annotations.get(LOG_INTERVAL_ANNOTATION) {
            if let Ok(d) = humantime::parse_duration(v) {
                if d > Duration::ZERO {
                    pod.log_interval = d;
                }
            }
        }
    }

    fn insert(&mut self, mut pod: Pod) {
        let rv = self.resource_version.get_mut();
        *rv += 1;
        Self::prepare(&mut pod, *rv);
        self.pods
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .insert((pod.namespace.clone(), pod.name.clone()), pod);
    }

    /// Adds a pod created through the API; `None` when the name is taken. Watches see it.
    pub(crate) fn create(&self, mut pod: Pod) -> Option<Pod> {
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        let key = (pod.namespace.clone(), pod.name.clone());
        if pods.contains_key(&key) {
            return None;
        }
        let rv = self
            .resource_version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        Self::prepare(&mut pod, rv);
        pods.insert(key, pod.clone());
        // Sent under the lock: watchers see creations in resourceVersion order.
        let _ = self.created.send(pod.clone());
        Some(pod)
    }

    /// Pods created from now on.
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Pod> {
        self.created.subscribe()
    }

    /// The pod `ns/name`.
    pub fn get(&self, ns: &str, name: &str) -> Option<Pod> {
        self.pods
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Pods of one namespace, or of all (`None`), ordered by namespace and name.
    pub fn list(&self, ns: Option<&str>) -> Vec<Pod> {
        self.pods
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|p| ns.is_none_or(|n| p.namespace == n))
            .cloned()
            .collect()
    }

    /// The list's `metadata.resourceVersion`.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A pod from a seed `kind: Pod` document or a created pod (its containers as given, with
/// the API server's defaults; labels, annotations, owner references).
pub(crate) fn pod_from_seed(d: &Value, ns: &str, name: &str, start: DateTime<Utc>) -> Option<Pod> {
    let containers: Vec<Container> = d
        .pointer("/spec/containers")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(Container::from_spec)
        .collect();
    if containers.is_empty() {
        return None;
    }
    let map = |ptr: &str| -> BTreeMap<String, String> {
        d.pointer(ptr)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    };
    Some(Pod {
        namespace: ns.to_string(),
        name: name.to_string(),
        uid: String::new(),
        resource_version: 0,
        created: start,
        labels: map("/metadata/labels"),
        annotations: map("/metadata/annotations"),
        containers,
        node: "sim-node-1".into(),
        pod_ip: String::new(),
        log_interval: Duration::from_secs(1),
        owner_references: d
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    })
}

/// The pods the controllers would run for a seeded workload (`Deployment` through its
/// ReplicaSet, `StatefulSet`, `DaemonSet`), named and owned as the simulated controllers
/// name and own them (see `objects::controllers`).
fn workload_pods(d: &Value, kind: &str, ns: &str, name: &str, start: DateTime<Utc>) -> Vec<Pod> {
    let template = d.pointer("/spec/template");
    let replicas = match kind {
        "DaemonSet" => 1,
        _ => d
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .min(50),
    };
    let hash = pod_template_hash(template);
    let (owner_kind, owner_name) = match kind {
        "Deployment" => ("ReplicaSet", format!("{name}-{hash}")),
        _ => (kind, name.to_string()),
    };
    let owner = json!({
        "apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name,
        "uid": uid_for(ns, owner_kind, &owner_name),
        "controller": true, "blockOwnerDeletion": true
    });
    let Some(spec) = template.cloned() else {
        return Vec::new();
    };
    (0..replicas)
        .filter_map(|i| {
            let pod_name = match kind {
                "StatefulSet" => format!("{name}-{i}"),
                _ => {
                    let s = suffix(&format!("{ns}/{owner_name}/{i}"));
                    format!("{owner_name}-{}", &s[s.len() - 5..])
                }
            };
            let mut pod = pod_from_seed(
                &json!({"metadata": spec.get("metadata").cloned().unwrap_or(json!({})),
                        "spec": spec.get("spec").cloned().unwrap_or(json!({}))}),
                ns,
                &pod_name,
                start,
            )?;
            match kind {
                "Deployment" => {
                    pod.labels.insert("pod-template-hash".into(), hash.clone());
                }
                "StatefulSet" => {
                    pod.labels
                        .insert("controller-revision-hash".into(), format!("{name}-{hash}"));
                    pod.labels.insert(
                        "statefulset.kubernetes.io/pod-name".into(),
                        pod_name.clone(),
                    );
                }
                _ => {
                    pod.labels
                        .insert("controller-revision-hash".into(), hash.clone());
                    pod.labels
                        .insert("pod-template-generation".into(), "1".into());
                }
            }
            pod.annotations.clear();
            pod.owner_references = vec![owner.clone()];
            Some(pod)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pods_from_services_and_toolboxes() {
        let seed = "kind: List\napiVersion: v1\nitems:\n- kind: Namespace\n  apiVersion: v1\n  metadata: {name: shop}\n- kind: Service\n  apiVersion: v1\n  metadata: {name: web, namespace: shop}\n  spec:\n    selector: {app: web}\n    ports: [{port: 80, targetPort: 8080}]\n---\nkind: Pod\napiVersion: v1\nmetadata: {name: db-0, namespace: shop, annotations: {sim.kubeplex.io/log-interval: 200ms}}\nspec:\n  containers: [{name: db, image: postgres:16, ports: [{containerPort: 5432}]}]\n";
        let s = PodStore::seeded(Some(seed));
        assert!(s.get("default", "toolbox").is_some());
        assert!(s.get("shop", "toolbox").is_some());
        let db = s.get("shop", "db-0").unwrap();
        assert_eq!(db.containers[0].ports, vec![5432]);
        assert_eq!(db.log_interval, Duration::from_millis(200));
        let web: Vec<_> = s
            .list(Some("shop"))
            .into_iter()
            .filter(|p| p.name.starts_with("web-"))
            .collect();
        assert_eq!(web.len(), 1);
        assert_eq!(web[0].containers[0].ports, vec![8080]);
        assert_eq!(web[0].labels["app"], "web");
        let v = web[0].to_json(true);
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["status"]["phase"], "Running");
        assert_eq!(v["status"]["containerStatuses"][0]["ready"], true);
        // stable across builds
        assert_eq!(
            PodStore::seeded(Some(seed))
                .get("shop", &web[0].name)
                .unwrap()
                .uid,
            web[0].uid
        );
    }

    #[test]
    fn containers_keep_what_the_seed_gave() {
        let seed = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: registry.example.com/api:2.0
        command: [/api]
        ports: [{name: http, containerPort: 8080}]
        env: [{name: MODE, value: prod}]
        resources:
          requests: {cpu: "0.25", memory: 128Mi}
          limits: {cpu: 500m, memory: 256Mi}
        readinessProbe: {httpGet: {path: /ready, port: 8080}}
      - name: envoy
        image: envoyproxy/envoy
        resources:
          limits: {cpu: "1", memory: 1Gi}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: shop}
spec:
  containers:
  - name: db
    image: postgres:16
    resources:
      requests: {cpu: 100m, memory: "1073741824"}
      limits: {cpu: 100m, memory: 1Gi}
"#;
        let s = PodStore::seeded(Some(seed));
        let pods: Vec<Pod> = s
            .list(Some("shop"))
            .into_iter()
            .filter(|p| p.name.starts_with("api-"))
            .collect();
        assert_eq!(pods.len(), 2);
        let v = pods[0].to_json(false);
        let api = &v["spec"]["containers"][0];
        let keys: Vec<&str> = api
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "name",
                "image",
                "command",
                "ports",
                "env",
                "resources",
                "readinessProbe",
                "terminationMessagePath",
                "terminationMessagePolicy",
                "imagePullPolicy"
            ]
        );
        assert_eq!(
            api["resources"],
            json!({"requests": {"cpu": "250m", "memory": "128Mi"},
                   "limits": {"cpu": "500m", "memory": "256Mi"}})
        );
        assert_eq!(
            api["ports"],
            json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
        );
        assert_eq!(api["env"], json!([{"name": "MODE", "value": "prod"}]));
        assert_eq!(
            api["readinessProbe"],
            json!({"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                   "failureThreshold": 3})
        );
        assert_eq!(api["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pods[0].containers[0].ports, vec![8080]);
        // Requests default to the limits.
        let envoy = &v["spec"]["containers"][1];
        assert_eq!(
            envoy["resources"],
            json!({"limits": {"cpu": "1", "memory": "1Gi"},
                   "requests": {"cpu": "1", "memory": "1Gi"}})
        );
        assert_eq!(envoy["imagePullPolicy"], "Always");
        assert_eq!(v["status"]["qosClass"], "Burstable");
        // Equal requests and limits, in other notations: Guaranteed.
        assert_eq!(
            s.get("shop", "db-0").unwrap().to_json(false)["status"]["qosClass"],
            "Guaranteed"
        );
        // Made-up pods declare nothing.
        let toolbox = s.get("shop", "toolbox").unwrap().to_json(false);
        assert_eq!(toolbox["spec"]["containers"][0]["resources"], json!({}));
        assert_eq!(
            toolbox["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 8080, "protocol": "TCP"}])
        );
        assert_eq!(toolbox["status"]["qosClass"], "BestEffort");
    }
}
