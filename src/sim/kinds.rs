//! The kinds the simulated cluster serves, each described once by a [`TypeInfo`]: group,
//! version, kind, plural and short names, scope, subresources, the field labels its field
//! selectors accept and the OpenAPI definition of its schema. Discovery, routing, lists,
//! watches, Tables and seeds all read these descriptions; nothing else lists kinds.
//!
//! The built-in kinds are `static`s with fixed ids (their order is the order of
//! [`BUILTINS`]). Custom resource types, declared per cluster in config or by a
//! `CustomResourceDefinition` in the seed, are interned once per distinct declaration, so a
//! reload that declares the same type again reuses it.

use std::sync::{Mutex, OnceLock};

/// One kind of object.
#[derive(Debug, PartialEq, Eq)]
pub struct TypeInfo {
    /// Index in the store's per-kind maps.
    pub id: u16,
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// Version (`v1`, `v2`, `v1beta1`).
    pub version: &'static str,
    /// `v1` or `group/version`.
    pub api_version: &'static str,
    /// The kind (`Deployment`).
    pub kind: &'static str,
    /// The list kind (`DeploymentList`).
    pub list_kind: &'static str,
    /// The resource (`deployments`).
    pub plural: &'static str,
    /// The singular resource name (`deployment`).
    pub singular: &'static str,
    /// Short names (`deploy`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Subresources served: `status`, `scale`.
    pub subresources: &'static [&'static str],
    /// Read-only (derived) kinds answer only get, list and watch.
    pub read_only: bool,
    /// Field labels its field selectors accept besides `metadata.name` and
    /// `metadata.namespace`.
    pub field_labels: &'static [&'static str],
    /// The OpenAPI definition of its schema (`io.k8s.api.apps.v1.Deployment`); `None` for
    /// custom types, whose objects are schemaless.
    pub schema: Option<&'static str>,
}

impl TypeInfo {
    /// The verbs discovery lists for the collection and items.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.read_only {
            &["get", "list", "watch"]
        } else {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }

    /// Whether it is one of the built-in kinds.
    pub fn is_builtin(&self) -> bool {
        usize::from(self.id) < BUILTINS.len()
    }

    /// Whether it serves the subresource `sub`.
    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }
}

/// A kind: a cheap handle on its [`TypeInfo`], compared by id.
#[derive(Clone, Copy)]
pub struct Kind(&'static TypeInfo);

impl PartialEq for Kind {
    fn eq(&self, other: &Kind) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for Kind {}
impl std::hash::Hash for Kind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state)
    }
}
impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Kind) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kind {
    fn cmp(&self, other: &Kind) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}
impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0.plural, self.0.api_version)
    }
}

macro_rules! builtin {
    ($id:expr, $group:expr, $version:expr, $api_version:expr, $kind:expr, $plural:expr,
     $singular:expr, short: $short:expr, categories: $cat:expr, namespaced: $ns:expr,
     sub: $sub:expr, fields: $fields:expr, schema: $schema:expr) => {
        TypeInfo {
            id: $id,
            group: $group,
            version: $version,
            api_version: $api_version,
            kind: $kind,
            list_kind: concat!($kind, "List"),
            plural: $plural,
            singular: $singular,
            short_names: $short,
            categories: $cat,
            namespaced: $ns,
            subresources: $sub,
            read_only: false,
            field_labels: $fields,
            schema: Some($schema),
        }
    };
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

static NAMESPACE: TypeInfo = builtin!(0, "", "v1", "v1", "Namespace", "namespaces", "namespace",
    short: &["ns"], categories: NONE, namespaced: false, sub: &["status"],
    fields: &["status.phase"], schema: "io.k8s.api.core.v1.Namespace");
static SERVICE: TypeInfo = builtin!(1, "", "v1", "v1", "Service", "services", "service",
    short: &["svc"], categories: ALL, namespaced: true, sub: &["status", "proxy"],
    fields: &["spec.clusterIP", "spec.type"], schema: "io.k8s.api.core.v1.Service");
static CONFIG_MAP: TypeInfo = builtin!(2, "", "v1", "v1", "ConfigMap", "configmaps", "configmap",
    short: &["cm"], categories: NONE, namespaced: true, sub: NONE,
    fields: NONE, schema: "io.k8s.api.core.v1.ConfigMap");
static SECRET: TypeInfo = builtin!(3, "", "v1", "v1", "Secret", "secrets", "secret",
    short: NONE, categories: NONE, namespaced: true, sub: NONE,
    fields: &["type"], schema: "io.k8s.api.core.v1.Secret");
static LIMIT_RANGE: TypeInfo = builtin!(4, "", "v1", "v1", "LimitRange", "limitranges", "limitrange",
    short: &["limits"], categories: NONE, namespaced: true, sub: NONE,
    fields: NONE, schema: "io.k8s.api.core.v1.LimitRange");
static RESOURCE_QUOTA: TypeInfo = builtin!(5, "", "v1", "v1", "ResourceQuota", "resourcequotas",
    "resourcequota", short: &["quota"], categories: NONE, namespaced: true, sub: &["status"],
    fields: NONE, schema: "io.k8s.api.core.v1.ResourceQuota");
static EVENT: TypeInfo = builtin!(6, "", "v1", "v1", "Event", "events", "event",
    short: &["ev"], categories: NONE, namespaced: true, sub: NONE,
    fields: &["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"],
    schema: "io.k8s.api.core.v1.Event");
static DEPLOYMENT: TypeInfo = builtin!(7, "apps", "v1", "apps/v1", "Deployment", "deployments",
    "deployment", short: &["deploy"], categories: ALL, namespaced: true,
    sub: &["status", "scale"], fields: NONE, schema: "io.k8s.api.apps.v1.Deployment");
static REPLICA_SET: TypeInfo = builtin!(8, "apps", "v1", "apps/v1", "ReplicaSet", "replicasets",
    "replicaset", short: &["rs"], categories: ALL, namespaced: true,
    sub: &["status", "scale"], fields: &["status.replicas"],
    schema: "io.k8s.api.apps.v1.ReplicaSet");
static STATEFUL_SET: TypeInfo = builtin!(9, "apps", "v1", "apps/v1", "StatefulSet", "statefulsets",
    "statefulset", short: &["sts"], categories: ALL, namespaced: true,
    sub: &["status", "scale"], fields: NONE, schema: "io.k8s.api.apps.v1.StatefulSet");
static DAEMON_SET: TypeInfo = builtin!(10, "apps", "v1", "apps/v1", "DaemonSet", "daemonsets",
    "daemonset", short: &["ds"], categories: ALL, namespaced: true, sub: &["status"],
    fields: NONE, schema: "io.k8s.api.apps.v1.DaemonSet");
static HPA: TypeInfo = builtin!(11, "autoscaling", "v2", "autoscaling/v2",
    "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler",
    short: &["hpa"], categories: ALL, namespaced: true, sub: &["status"], fields: NONE,
    schema: "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler");
static JOB: TypeInfo = builtin!(12, "batch", "v1", "batch/v1", "Job", "jobs", "job",
    short: NONE, categories: ALL, namespaced: true, sub: &["status"],
    fields: &["status.successful"], schema: "io.k8s.api.batch.v1.Job");
static CRON_JOB: TypeInfo = builtin!(13, "batch", "v1", "batch/v1", "CronJob", "cronjobs", "cronjob",
    short: &["cj"], categories: ALL, namespaced: true, sub: &["status"], fields: NONE,
    schema: "io.k8s.api.batch.v1.CronJob");
static INGRESS: TypeInfo = builtin!(14, "networking.k8s.io", "v1", "networking.k8s.io/v1",
    "Ingress", "ingresses", "ingress", short: &["ing"], categories: NONE, namespaced: true,
    sub: &["status"], fields: NONE, schema: "io.k8s.api.networking.v1.Ingress");
static POD_METRICS: TypeInfo = TypeInfo {
    read_only: true,
    ..builtin!(15, "metrics.k8s.io", "v1beta1", "metrics.k8s.io/v1beta1", "PodMetrics", "pods",
        "", short: NONE, categories: NONE, namespaced: true, sub: NONE, fields: NONE,
        schema: "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics")
};

/// The built-in kinds, in id order.
pub static BUILTINS: [&TypeInfo; 16] = [
    &NAMESPACE,
    &SERVICE,
    &CONFIG_MAP,
    &SECRET,
    &LIMIT_RANGE,
    &RESOURCE_QUOTA,
    &EVENT,
    &DEPLOYMENT,
    &REPLICA_SET,
    &STATEFUL_SET,
    &DAEMON_SET,
    &HPA,
    &JOB,
    &CRON_JOB,
    &INGRESS,
    &POD_METRICS,
];

#[allow(non_upper_case_globals)]
impl Kind {
    /// v1 Namespace (cluster-scoped).
    pub const Namespace: Kind = Kind(&NAMESPACE);
    /// v1 Service.
    pub const Service: Kind = Kind(&SERVICE);
    /// v1 ConfigMap.
    pub const ConfigMap: Kind = Kind(&CONFIG_MAP);
    /// v1 Secret.
    pub const Secret: Kind = Kind(&SECRET);
    /// v1 LimitRange.
    pub const LimitRange: Kind = Kind(&LIMIT_RANGE);
    /// v1 ResourceQuota.
    pub const ResourceQuota: Kind = Kind(&RESOURCE_QUOTA);
    /// v1 Event.
    pub const Event: Kind = Kind(&EVENT);
    /// apps/v1 Deployment.
    pub const Deployment: Kind = Kind(&DEPLOYMENT);
    /// apps/v1 ReplicaSet.
    pub const ReplicaSet: Kind = Kind(&REPLICA_SET);
    /// apps/v1 StatefulSet.
    pub const StatefulSet: Kind = Kind(&STATEFUL_SET);
    /// apps/v1 DaemonSet.
    pub const DaemonSet: Kind = Kind(&DAEMON_SET);
    /// autoscaling/v2 HorizontalPodAutoscaler.
    pub const HorizontalPodAutoscaler: Kind = Kind(&HPA);
    /// batch/v1 Job.
    pub const Job: Kind = Kind(&JOB);
    /// batch/v1 CronJob.
    pub const CronJob: Kind = Kind(&CRON_JOB);
    /// networking.k8s.io/v1 Ingress.
    pub const Ingress: Kind = Kind(&INGRESS);
    /// metrics.k8s.io/v1beta1 PodMetrics (derived from the pods, read-only).
    pub const PodMetrics: Kind = Kind(&POD_METRICS);

    /// The kind described by `info`.
    pub fn of(info: &'static TypeInfo) -> Kind {
        Kind(info)
    }

    /// Its description.
    pub fn info(self) -> &'static TypeInfo {
        self.0
    }

    /// Index in per-kind tables.
    pub fn id(self) -> usize {
        usize::from(self.0.id)
    }

    /// The resource name (`services`).
    pub fn resource(self) -> &'static str {
        self.0.plural
    }

    /// The kind (`Service`).
    pub fn name(self) -> &'static str {
        self.0.kind
    }

    /// The list kind (`ServiceList`).
    pub fn list_kind(self) -> &'static str {
        self.0.list_kind
    }

    /// The resource as errors name it: `services`, `deployments.apps`.
    pub fn qualified_resource(self) -> String {
        match self.0.group {
            "" => self.0.plural.to_string(),
            g => format!("{}.{g}", self.0.plural),
        }
    }

    /// The kind as 422 errors name it: `Service`, `Deployment.apps`.
    pub fn qualified_kind(self) -> String {
        match self.0.group {
            "" => self.0.kind.to_string(),
            g => format!("{}.{g}", self.0.kind),
        }
    }

    /// `v1` or `group/version`.
    pub fn api_version(self) -> &'static str {
        self.0.api_version
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self.0.namespaced
    }
}

/// A custom resource type as declared in config or by a `CustomResourceDefinition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomType {
    /// API group (`argoproj.io`).
    pub group: String,
    /// Version (`v1alpha1`).
    pub version: String,
    /// Kind (`Rollout`).
    pub kind: String,
    /// Plural resource name (`rollouts`).
    pub plural: String,
    /// Singular name; default: the kind in lower case.
    pub singular: Option<String>,
    /// Namespaced (the default) or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`ro`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
}

impl CustomType {
    /// What is wrong with it, if anything (names as a CRD's validation would check them).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let lower_dns = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if self.group.is_empty() || !self.group.contains('.') {
            out.push(format!(
                "group {:?} must be a DNS subdomain with at least one dot (example.com)",
                self.group
            ));
        }
        if !lower_dns(&self.version) {
            out.push(format!("version {:?} must be a DNS label", self.version));
        }
        if self.kind.is_empty() || !self.kind.starts_with(|c: char| c.is_ascii_uppercase()) {
            out.push(format!("kind {:?} must be a CamelCase name", self.kind));
        }
        if !lower_dns(&self.plural) {
            out.push(format!(
                "plural {:?} must be a lower-case DNS label",
                self.plural
            ));
        }
        out
    }

    /// The built-in kinds' groups may not be taken over.
    fn clashes_with_builtin(&self) -> bool {
        BUILTINS.iter().any(|t| t.group == self.group)
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_list(v: &[String]) -> &'static [&'static str] {
    Box::leak(
        v.iter()
            .map(|s| leak(s.clone()))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

/// The kind of a custom type, interned: the same declaration always gives the same kind, so
/// reloads do not grow memory. `Err` names what is wrong.
pub fn intern(custom: &CustomType) -> Result<Kind, String> {
    let problems = custom.problems();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    if custom.clashes_with_builtin() {
        return Err(format!(
            "group {:?} belongs to the built-in kinds",
            custom.group
        ));
    }
    static INTERNED: OnceLock<Mutex<Vec<(CustomType, &'static TypeInfo)>>> = OnceLock::new();
    let mut interned = INTERNED
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, info)) = interned.iter().find(|(c, _)| c == custom) {
        return Ok(Kind(info));
    }
    let id = u16::try_from(BUILTINS.len() + interned.len())
        .map_err(|_| "too many custom resource types".to_string())?;
    let singular = custom
        .singular
        .clone()
        .unwrap_or_else(|| custom.kind.to_ascii_lowercase());
    let info: &'static TypeInfo = Box::leak(Box::new(TypeInfo {
        id,
        group: leak(custom.group.clone()),
        version: leak(custom.version.clone()),
        api_version: leak(format!("{}/{}", custom.group, custom.version)),
        kind: leak(custom.kind.clone()),
        list_kind: leak(format!("{}List", custom.kind)),
        plural: leak(custom.plural.clone()),
        singular: leak(singular),
        short_names: leak_list(&custom.short_names),
        categories: leak_list(&custom.categories),
        namespaced: custom.namespaced,
        subresources: &[],
        read_only: false,
        field_labels: &[],
        schema: None,
    }));
    interned.push((custom.clone(), info));
    Ok(Kind(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_ids_are_their_positions() {
        for (i, t) in BUILTINS.iter().enumerate() {
            assert_eq!(usize::from(t.id), i, "{}", t.kind);
        }
        assert_eq!(Kind::Service.id(), 1);
    }

    #[test]
    fn custom_types_are_interned_once() {
        let rollout = CustomType {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            kind: "Rollout".into(),
            plural: "rollouts".into(),
            singular: None,
            namespaced: true,
            short_names: vec!["ro".into()],
            categories: vec![],
        };
        let a = intern(&rollout).unwrap();
        let b = intern(&rollout.clone()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.info().singular, "rollout");
        assert_eq!(a.api_version(), "argoproj.io/v1alpha1");
        assert!(!a.info().is_builtin());
        let bad = CustomType {
            group: "apps".into(),
            ..rollout.clone()
        };
        assert!(intern(&bad).unwrap_err().contains("DNS subdomain"));
        let taken = CustomType {
            group: "networking.k8s.io".into(),
            ..rollout
        };
        assert!(intern(&taken).unwrap_err().contains("built-in"));
    }
}
