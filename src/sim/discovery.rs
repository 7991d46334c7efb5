//! Discovery and OpenAPI documents for kubectl: `/version`, `/api`, `/api/v1`, `/apis`,
//! `/apis/{group}`, `/apis/{group}/{version}`, `/openapi/v3` and its per-group-version
//! documents, all built from the kinds the cluster serves ([`SimState::kinds`]: the
//! built-in kinds of [`super::kinds`] and the cluster's custom types) and the schema pack
//! ([`super::schema`]).
//!
//! kubectl 1.32 starts every command with `GET /version` and discovery. It asks `/api` and
//! `/apis` for aggregated discovery first (`application/json;g=apidiscovery.k8s.io;v=v2;
//! as=APIGroupDiscoveryList,...,application/json`); these routes answer plain
//! `application/json` (`APIVersions`, `APIGroupList`), from which client-go falls back to the
//! legacy per-group-version documents (`/api/v1`, `/apis/apps/v1`). For `create -f` /
//! `apply -f` kubectl reads `/openapi/v3` and the document of the object's group-version:
//! its `PATCH` operations on the item paths carry `x-kubernetes-group-version-kind` and the
//! `fieldValidation` parameter, so kubectl validates server-side (`fieldValidation=Strict`),
//! and its schemas carry the strategic-merge-patch metadata (`x-kubernetes-patch-merge-key`,
//! `x-kubernetes-patch-strategy`) that client-side `apply` needs to compute patches;
//! `kubectl explain` reads the schemas. `/openapi/v2` is not served (404): kubectl only
//! accepts it as protobuf and does not need it when v3 is present.
//!
//! Pods are served by [`super::pods`], not as a kind of the store: `/api/v1` lists them and
//! their subresources by hand, and the `api/v1` document describes them as read-only.

use super::errors::SimError;
use super::kinds::{Kind, TypeInfo};
use super::schema::{self, SCALE};
use super::state::SimState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// The version the simulated server reports on `/version`.
pub(crate) const GIT_VERSION: &str = "v1.32.0";

/// Registers the discovery routes. They are exact paths, registered before the object
/// API's catch-all routes (`/apis/{tail:.*}`), which therefore never see them.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/version", web::get().to(version))
        .route("/version/", web::get().to(version))
        .route("/api", web::get().to(api_versions))
        .route("/api/", web::get().to(api_versions))
        .route("/api/v1", web::get().to(api_v1_resources))
        .route("/api/v1/", web::get().to(api_v1_resources))
        .route("/apis", web::get().to(api_groups))
        .route("/apis/", web::get().to(api_groups))
        .route("/apis/{group}", web::get().to(api_group))
        .route("/apis/{group}/", web::get().to(api_group))
        .route(
            "/apis/{group}/{version}",
            web::get().to(group_version_resources),
        )
        .route(
            "/apis/{group}/{version}/",
            web::get().to(group_version_resources),
        )
        .route("/openapi/v3", web::get().to(openapi_v3_index))
        .route("/openapi/v3/", web::get().to(openapi_v3_index))
        .route("/openapi/v3/api/v1", web::get().to(openapi_v3_api_v1))
        .route(
            "/openapi/v3/apis/{group}/{version}",
            web::get().to(openapi_v3_group_version),
        );
}

/// The `version.Info` served on `/version`.
pub(crate) fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T17:59:15Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// The `APIVersions` served on `/api`; `server_address` is the host the client used.
pub(crate) fn api_versions_doc(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
    })
}

/// Pods, served by [`super::pods`] (get, list, watch and the streaming subresources), for
/// the `api/v1` document.
static POD: TypeInfo = TypeInfo {
    id: u16::MAX,
    group: "",
    version: "v1",
    api_version: "v1",
    kind: "Pod",
    list_kind: "PodList",
    plural: "pods",
    singular: "pod",
    short_names: &["po"],
    categories: &["all"],
    namespaced: true,
    subresources: &[],
    read_only: true,
    field_labels: &[],
    schema: Some("io.k8s.api.core.v1.Pod"),
};

/// The storage version hash discovery shows for a stored resource: the first 8 bytes of
/// the SHA-256 of `group/version/kind`, in base64, as kube-apiserver computes it.
fn storage_version_hash(info: &TypeInfo) -> String {
    let gvk = format!("{}/{}/{}", info.group, info.version, info.kind);
    let digest = ring::digest::digest(&ring::digest::SHA256, gvk.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

fn strings(list: &[&str]) -> Value {
    Value::Array(list.iter().map(|s| Value::from(*s)).collect())
}

/// The discovery entries (`APIResource`) of one kind: the resource, then its
/// subresources.
fn resource_entries(info: &TypeInfo) -> Vec<Value> {
    let verbs: Vec<&str> = info
        .verbs()
        .iter()
        .copied()
        // Namespaces cannot be deleted as a collection.
        .filter(|v| {
            !(info.plural == "namespaces" && info.group.is_empty() && *v == "deletecollection")
        })
        .collect();
    let mut main = json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": verbs,
    });
    if let Value::Object(m) = &mut main {
        if !info.short_names.is_empty() {
            m.insert("shortNames".into(), strings(info.short_names));
        }
        if !info.categories.is_empty() {
            m.insert("categories".into(), strings(info.categories));
        }
        if !info.read_only {
            m.insert(
                "storageVersionHash".into(),
                storage_version_hash(info).into(),
            );
        }
    }
    let mut out = vec![main];
    for sub in info.subresources {
        let name = format!("{}/{sub}", info.plural);
        out.push(match *sub {
            "scale" => json!({
                "name": name, "singularName": "", "namespaced": info.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"]
            }),
            "proxy" => json!({
                "name": name, "singularName": "", "namespaced": info.namespaced,
                "kind": format!("{}ProxyOptions", info.kind),
                "verbs": ["create", "delete", "get", "patch", "update"]
            }),
            _ => json!({
                "name": name, "singularName": "", "namespaced": info.namespaced,
                "kind": info.kind, "verbs": ["get", "patch", "update"]
            }),
        });
    }
    out
}

/// The pods' entries, served by [`super::pods`].
fn pod_entries() -> Vec<Value> {
    vec![
        json!({"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
               "verbs": ["create", "get", "list", "watch"], "shortNames": ["po"], "categories": ["all"],
               "storageVersionHash": storage_version_hash(&POD)}),
        json!({"name": "pods/attach", "singularName": "", "namespaced": true,
               "kind": "PodAttachOptions", "verbs": ["create", "get"]}),
        json!({"name": "pods/exec", "singularName": "", "namespaced": true,
               "kind": "PodExecOptions", "verbs": ["create", "get"]}),
        json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod",
               "verbs": ["get"]}),
        json!({"name": "pods/portforward", "singularName": "", "namespaced": true,
               "kind": "PodPortForwardOptions", "verbs": ["create", "get"]}),
    ]
}

fn sorted_by_name(mut entries: Vec<Value>) -> Vec<Value> {
    entries.sort_by(|a, b| {
        a["name"]
            .as_str()
            .unwrap_or("")
            .cmp(b["name"].as_str().unwrap_or(""))
    });
    entries
}

/// The `APIResourceList` served on `/api/v1`: the core kinds the cluster serves
/// (namespaces, services with `status` and `proxy`, configmaps, secrets, ...) and the pods.
pub(crate) fn api_v1_resource_list(kinds: &[Kind]) -> Value {
    let mut entries = pod_entries();
    for kind in kinds.iter().filter(|k| k.info().group.is_empty()) {
        entries.extend(resource_entries(kind.info()));
    }
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": sorted_by_name(entries)
    })
}

/// Kubernetes' version priority: GA before beta before alpha, higher numbers first, then
/// anything else by name (`v2`, `v1`, `v1beta2`, `v1beta1`, `v1alpha1`, `foo`).
fn version_priority(v: &str) -> (u8, i64, i64, String) {
    let parse = || -> Option<(u8, i64, i64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: i64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((0, -major, 0));
        }
        let (level, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (2, m)
        } else {
            return None;
        };
        Some((level, -major, -minor.parse::<i64>().ok()?))
    };
    match parse() {
        Some((level, major, minor)) => (level, major, minor, String::new()),
        None => (3, 0, 0, v.to_string()),
    }
}

/// A version of a group and its kinds.
type Version = (&'static str, Vec<Kind>);

/// The named groups the cluster serves, in the order of their first kind, each with its
/// versions (preferred first) and each version's kinds.
fn groups(kinds: &[Kind]) -> Vec<(&'static str, Vec<Version>)> {
    let mut out: Vec<(&'static str, Vec<Version>)> = Vec::new();
    for kind in kinds {
        let info = kind.info();
        if info.group.is_empty() {
            continue;
        }
        let pos = match out.iter().position(|(g, _)| *g == info.group) {
            Some(p) => p,
            None => {
                out.push((info.group, Vec::new()));
                out.len() - 1
            }
        };
        let versions = &mut out[pos].1;
        match versions.iter_mut().find(|(v, _)| *v == info.version) {
            Some((_, ks)) => ks.push(*kind),
            None => versions.push((info.version, vec![*kind])),
        }
    }
    for (_, versions) in &mut out {
        versions.sort_by_key(|(v, _)| version_priority(v));
    }
    out
}

fn group_doc(group: &str, versions: &[Version]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(|(v, _)| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(|(v, _)| gv(v)).unwrap_or(Value::Null),
    })
}

/// The `APIGroupList` served on `/apis`: every named group the cluster serves.
pub(crate) fn api_groups_doc(kinds: &[Kind]) -> Value {
    let groups: Vec<Value> = groups(kinds)
        .iter()
        .map(|(g, versions)| group_doc(g, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The `APIGroup` served on `/apis/{group}`, if the cluster serves that group.
pub(crate) fn api_group_doc(kinds: &[Kind], group: &str) -> Option<Value> {
    let groups = groups(kinds);
    let (_, versions) = groups.iter().find(|(g, _)| *g == group)?;
    let mut doc = group_doc(group, versions);
    if let Value::Object(m) = &mut doc {
        let mut out = Map::new();
        out.insert("kind".into(), "APIGroup".into());
        out.insert("apiVersion".into(), "v1".into());
        out.extend(std::mem::take(m));
        *m = out;
    }
    Some(doc)
}

/// The kinds of one named group-version.
fn group_version_kinds(kinds: &[Kind], group: &str, version: &str) -> Vec<Kind> {
    kinds
        .iter()
        .copied()
        .filter(|k| !group.is_empty() && k.info().group == group && k.info().version == version)
        .collect()
}

/// The `APIResourceList` served on `/apis/{group}/{version}`, if the cluster serves it.
pub(crate) fn group_version_resource_list(
    kinds: &[Kind],
    group: &str,
    version: &str,
) -> Option<Value> {
    let served = group_version_kinds(kinds, group, version);
    if served.is_empty() {
        return None;
    }
    let entries = served
        .iter()
        .flat_map(|k| resource_entries(k.info()))
        .collect();
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{group}/{version}"),
        "resources": sorted_by_name(entries)
    }))
}

// ---- OpenAPI v3 ----

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// One OpenAPI v3 document, serialized, with its hash.
#[derive(Debug)]
pub(crate) struct OpenApiDoc {
    /// The compact JSON.
    pub(crate) body: bytes::Bytes,
    /// A stable hash of the body, used in `serverRelativeURL` (as kube-apiserver does, so
    /// clients may cache it) and as the ETag.
    pub(crate) hash: String,
}

fn hash_of(body: &[u8]) -> String {
    // FNV-1a, twice with different offsets, for 128 bits of cache key.
    let fnv = |offset: u64| {
        body.iter().fold(offset, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016X}{:016X}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

/// The document of `group`/`version` (`""`/`v1` for the core group) describing `infos`,
/// built once per distinct set of kinds and cached.
pub(crate) fn openapi_document(
    group: &str,
    version: &str,
    infos: &[&'static TypeInfo],
) -> Arc<OpenApiDoc> {
    type Cache = HashMap<(String, Vec<u16>), Arc<OpenApiDoc>>;
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let key = (
        format!("{group}/{version}"),
        infos.iter().map(|i| i.id).collect::<Vec<_>>(),
    );
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(doc) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return doc.clone();
    }
    let body = serde_json::to_vec(&build_document(group, version, infos)).unwrap_or_default();
    let doc = Arc::new(OpenApiDoc {
        hash: hash_of(&body),
        body: body.into(),
    });
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    // Reloads that keep changing custom types could add documents forever: start over
    // now and then.
    if cache.len() >= 256 {
        cache.clear();
    }
    cache.insert(key, doc.clone());
    doc
}

/// The `api/v1` document for a cluster serving `kinds`.
fn api_v1_document(kinds: &[Kind]) -> Arc<OpenApiDoc> {
    let mut infos: Vec<&'static TypeInfo> = kinds
        .iter()
        .map(|k| k.info())
        .filter(|i| i.group.is_empty())
        .collect();
    infos.push(&POD);
    openapi_document("", "v1", &infos)
}

/// The document of a named group-version, if the cluster serves it.
fn group_version_document(kinds: &[Kind], group: &str, version: &str) -> Option<Arc<OpenApiDoc>> {
    let infos: Vec<&'static TypeInfo> = group_version_kinds(kinds, group, version)
        .iter()
        .map(|k| k.info())
        .collect();
    (!infos.is_empty()).then(|| openapi_document(group, version, &infos))
}

/// The `/openapi/v3` index: `api/v1` and every named group-version, with their hashes.
pub(crate) fn openapi_v3_index_doc(kinds: &[Kind]) -> Value {
    let mut paths = Map::new();
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": format!("/openapi/v3/api/v1?hash={}", api_v1_document(kinds).hash)}),
    );
    for (group, versions) in groups(kinds) {
        for (version, _) in versions {
            if let Some(doc) = group_version_document(kinds, group, version) {
                paths.insert(
                    format!("apis/{group}/{version}"),
                    json!({"serverRelativeURL": format!("/openapi/v3/apis/{group}/{version}?hash={}", doc.hash)}),
                );
            }
        }
    }
    json!({"paths": paths})
}

/// The schema name of a custom type (`io.argoproj.v1alpha1.Rollout`, as a CRD's is: the
/// group reversed).
fn custom_schema_name(info: &TypeInfo) -> String {
    let reversed: Vec<&str> = info.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), info.version, info.kind)
}

/// The schema names of a kind and of its list.
fn schema_names(info: &TypeInfo) -> (String, String) {
    match info.schema {
        Some(s) => (s.to_string(), format!("{s}List")),
        None => {
            let name = custom_schema_name(info);
            (name.clone(), format!("{name}List"))
        }
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{}{name}", schema::REF_PREFIX)})
}

/// The schemas of a custom type and its list: free-form objects with `metadata`.
fn custom_schemas(info: &TypeInfo, out: &mut Map<String, Value>) {
    let (name, list) = schema_names(info);
    out.insert(
        name.clone(),
        json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": schema_ref(&format!("{META}ObjectMeta")),
            },
            "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-group-version-kind": [gvk(info.group, info.version, info.kind)],
        }),
    );
    out.insert(
        list,
        json!({
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": schema_ref(&format!("{META}ListMeta")),
                "items": {"type": "array", "items": schema_ref(&name)},
            },
            "x-kubernetes-group-version-kind": [gvk(info.group, info.version, info.list_kind)],
        }),
    );
}

/// `networking.k8s.io` → `Networking`, `argoproj.io` → `ArgoprojIo`, `""` → `Core`.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn param(name: &str, location: &str, ty: &str) -> Value {
    let mut p = json!({"in": location, "name": name, "schema": {"type": ty, "uniqueItems": true}});
    if location == "path" {
        p["required"] = true.into();
    }
    p
}

const LIST_PARAMS: [(&str, &str); 10] = [
    ("allowWatchBookmarks", "boolean"),
    ("continue", "string"),
    ("fieldSelector", "string"),
    ("labelSelector", "string"),
    ("limit", "integer"),
    ("resourceVersion", "string"),
    ("resourceVersionMatch", "string"),
    ("sendInitialEvents", "boolean"),
    ("timeoutSeconds", "integer"),
    ("watch", "boolean"),
];

fn list_params() -> Vec<Value> {
    LIST_PARAMS
        .iter()
        .map(|(n, t)| param(n, "query", t))
        .collect()
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut out = vec![
        param("dryRun", "query", "string"),
        param("fieldManager", "query", "string"),
        param("fieldValidation", "query", "string"),
    ];
    if patch {
        out.push(param("force", "query", "boolean"));
    }
    out
}

fn delete_params() -> Vec<Value> {
    vec![
        param("dryRun", "query", "string"),
        param("gracePeriodSeconds", "query", "integer"),
        param(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "query",
            "boolean",
        ),
        param("orphanDependents", "query", "boolean"),
        param("propagationPolicy", "query", "string"),
    ]
}

/// Builds the operations of one group-version document.
struct Ops<'a> {
    group: &'a str,
    version: &'a str,
    tag: String,
    id_prefix: String,
    /// The media types of bodies and responses.
    media: &'static [&'static str],
}

const MEDIA_BUILTIN: &[&str] = &[
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
];
const MEDIA_CUSTOM: &[&str] = &["application/json", "application/yaml"];
const STREAM_BUILTIN: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/yaml",
];
const STREAM_CUSTOM: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/yaml",
];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

impl Ops<'_> {
    fn content(types: &[&str], schema_name: &str) -> Value {
        let mut m = Map::new();
        for t in types {
            m.insert((*t).into(), json!({"schema": schema_ref(schema_name)}));
        }
        Value::Object(m)
    }

    fn responses(&self, codes: &[(&str, &str)], schema_name: &str, types: &[&str]) -> Value {
        let mut m = Map::new();
        for (code, desc) in codes {
            m.insert(
                (*code).into(),
                json!({"description": desc, "content": Ops::content(types, schema_name)}),
            );
        }
        m.insert("401".into(), json!({"description": "Unauthorized"}));
        Value::Object(m)
    }

    #[allow(clippy::too_many_arguments)]
    fn op(
        &self,
        description: String,
        id: String,
        action: &str,
        kind: (&str, &str, &str),
        params: Vec<Value>,
        responses: Value,
        body: Option<(&str, &[&str], bool)>,
    ) -> Value {
        let mut o = Map::new();
        o.insert("description".into(), description.into());
        o.insert("operationId".into(), id.into());
        if !params.is_empty() {
            o.insert("parameters".into(), params.into());
        }
        if let Some((schema_name, types, required)) = body {
            o.insert(
                "requestBody".into(),
                json!({"content": Ops::content(types, schema_name), "required": required}),
            );
        }
        o.insert("responses".into(), responses);
        o.insert("tags".into(), json!([self.tag]));
        o.insert("x-kubernetes-action".into(), action.into());
        o.insert(
            "x-kubernetes-group-version-kind".into(),
            gvk(kind.0, kind.1, kind.2),
        );
        Value::Object(o)
    }

    /// The paths of one kind.
    fn kind_paths(&self, info: &TypeInfo, paths: &mut BTreeMap<String, Value>) {
        let (t, tl) = schema_names(info);
        let k = info.kind;
        let gvk_of = (self.group, self.version, k);
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        let ns = if info.namespaced { "Namespaced" } else { "" };
        let scope = if info.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let pre = |mut v: Vec<Value>| {
            if info.namespaced {
                v.push(param("namespace", "path", "string"));
            }
            v.push(param("pretty", "query", "string"));
            Value::Array(v)
        };
        let id = |verb: &str, suffix: &str| format!("{verb}{}{ns}{k}{suffix}", self.id_prefix);
        let media = self.media;
        let stream = if media == MEDIA_BUILTIN {
            STREAM_BUILTIN
        } else {
            STREAM_CUSTOM
        };
        let ok = [("200", "OK")];
        let ok_created = [("200", "OK"), ("201", "Created")];
        let writable = !info.read_only;

        // The collection.
        let coll = format!("{base}{scope}/{}", info.plural);
        let mut c = Map::new();
        c.insert(
            "get".into(),
            self.op(
                format!("list or watch objects of kind {k}"),
                id("list", ""),
                "list",
                gvk_of,
                list_params(),
                self.responses(&ok, &tl, stream),
                None,
            ),
        );
        if writable {
            c.insert(
                "post".into(),
                self.op(
                    format!("create a {k}"),
                    id("create", ""),
                    "post",
                    gvk_of,
                    write_params(false),
                    self.responses(
                        &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                        &t,
                        media,
                    ),
                    Some((&t, &["*/*"], true)),
                ),
            );
            if !(self.group.is_empty() && info.plural == "namespaces") {
                let mut params = list_params();
                params.extend(delete_params());
                c.insert(
                    "delete".into(),
                    self.op(
                        format!("delete collection of {k}"),
                        format!("delete{}Collection{ns}{k}", self.id_prefix),
                        "deletecollection",
                        gvk_of,
                        params,
                        self.responses(&ok, &format!("{META}Status"), media),
                        Some((&format!("{META}DeleteOptions"), &["*/*"], false)),
                    ),
                );
            }
        }
        c.insert("parameters".into(), pre(Vec::new()));
        paths.insert(coll.clone(), Value::Object(c));

        if info.namespaced {
            paths.insert(
                format!("{base}/{}", info.plural),
                json!({
                    "get": self.op(
                        format!("list or watch objects of kind {k}"),
                        format!("list{}{k}ForAllNamespaces", self.id_prefix),
                        "list", gvk_of, Vec::new(), self.responses(&ok, &tl, stream), None),
                    "parameters": list_params().into_iter()
                        .chain([param("pretty", "query", "string")]).collect::<Vec<_>>(),
                }),
            );
        }

        // The item.
        let item = format!("{coll}/{{name}}");
        let name_param = || param("name", "path", "string");
        let mut i = Map::new();
        i.insert(
            "get".into(),
            self.op(
                format!("read the specified {k}"),
                id("read", ""),
                "get",
                gvk_of,
                Vec::new(),
                self.responses(&ok, &t, media),
                None,
            ),
        );
        if writable {
            i.insert(
                "put".into(),
                self.op(
                    format!("replace the specified {k}"),
                    id("replace", ""),
                    "put",
                    gvk_of,
                    write_params(false),
                    self.responses(&ok_created, &t, media),
                    Some((&t, &["*/*"], true)),
                ),
            );
            i.insert(
                "patch".into(),
                self.op(
                    format!("partially update the specified {k}"),
                    id("patch", ""),
                    "patch",
                    gvk_of,
                    write_params(true),
                    self.responses(&ok_created, &t, media),
                    Some((&format!("{META}Patch"), PATCH_TYPES, true)),
                ),
            );
            // Services answer a delete with the object; the rest with a Status.
            let deleted = if self.group.is_empty() && k == "Service" {
                t.clone()
            } else {
                format!("{META}Status")
            };
            i.insert(
                "delete".into(),
                self.op(
                    format!("delete a {k}"),
                    id("delete", ""),
                    "delete",
                    gvk_of,
                    delete_params(),
                    self.responses(&[("200", "OK"), ("202", "Accepted")], &deleted, media),
                    Some((&format!("{META}DeleteOptions"), &["*/*"], false)),
                ),
            );
        }
        i.insert("parameters".into(), pre(vec![name_param()]));
        paths.insert(item.clone(), Value::Object(i));

        // Subresources.
        for sub in info.subresources {
            match *sub {
                "status" | "scale" => {
                    let (schema_name, sub_gvk, word) = if *sub == "scale" {
                        (SCALE.to_string(), ("autoscaling", "v1", "Scale"), "scale")
                    } else {
                        (t.clone(), gvk_of, "status")
                    };
                    let suffix = upper_first(sub);
                    paths.insert(
                        format!("{item}/{sub}"),
                        json!({
                            "get": self.op(format!("read {word} of the specified {k}"),
                                id("read", &suffix), "get", sub_gvk, Vec::new(),
                                self.responses(&ok, &schema_name, media), None),
                            "put": self.op(format!("replace {word} of the specified {k}"),
                                id("replace", &suffix), "put", sub_gvk, write_params(false),
                                self.responses(&ok_created, &schema_name, media),
                                Some((&schema_name, &["*/*"], true))),
                            "patch": self.op(format!("partially update {word} of the specified {k}"),
                                id("patch", &suffix), "patch", sub_gvk, write_params(true),
                                self.responses(&ok_created, &schema_name, media),
                                Some((&format!("{META}Patch"), PATCH_TYPES, true))),
                            "parameters": pre(vec![name_param()]),
                        }),
                    );
                }
                "proxy" => {
                    let options = format!("{k}ProxyOptions");
                    for (suffix, with_path) in [("proxy", false), ("proxy/{path}", true)] {
                        let mut p = Map::new();
                        for method in ["delete", "get", "head", "options", "patch", "post", "put"] {
                            p.insert(
                                method.into(),
                                json!({
                                    "description": format!("connect {} requests to proxy of {k}", method.to_ascii_uppercase()),
                                    "operationId": format!("connect{}{}{ns}{k}Proxy{}",
                                        self.id_prefix, upper_first(method),
                                        if with_path { "WithPath" } else { "" }),
                                    "responses": {
                                        "200": {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}},
                                        "401": {"description": "Unauthorized"}
                                    },
                                    "tags": [self.tag],
                                    "x-kubernetes-action": "connect",
                                    "x-kubernetes-group-version-kind": gvk(self.group, self.version, &options),
                                }),
                            );
                        }
                        let mut params = vec![name_param()];
                        if info.namespaced {
                            params.push(param("namespace", "path", "string"));
                        }
                        if with_path {
                            params.push(param("path", "path", "string"));
                        }
                        params.push(param("path", "query", "string"));
                        p.insert("parameters".into(), params.into());
                        paths.insert(format!("{item}/{suffix}"), Value::Object(p));
                    }
                }
                _ => {}
            }
        }

        // Watch paths (deprecated, still served by kube-apiserver).
        let event = format!("{META}WatchEvent");
        let wcoll = format!("{base}/watch{scope}/{}", info.plural);
        paths.insert(
            wcoll.clone(),
            json!({
                "get": self.op(format!("watch individual changes to a list of {k}"),
                    id("watch", "List"), "watchlist", gvk_of, Vec::new(),
                    self.responses(&ok, &event, stream), None),
                "parameters": list_params().into_iter()
                    .chain(pre(Vec::new()).as_array().cloned().unwrap_or_default())
                    .collect::<Vec<_>>(),
            }),
        );
        paths.insert(
            format!("{wcoll}/{{name}}"),
            json!({
                "get": self.op(format!("watch changes to an object of kind {k}"),
                    id("watch", ""), "watch", gvk_of, Vec::new(),
                    self.responses(&ok, &event, stream), None),
                "parameters": list_params().into_iter()
                    .chain(pre(vec![name_param()]).as_array().cloned().unwrap_or_default())
                    .collect::<Vec<_>>(),
            }),
        );
        if info.namespaced {
            paths.insert(
                format!("{base}/watch/{}", info.plural),
                json!({
                    "get": self.op(format!("watch individual changes to a list of {k}"),
                        format!("watch{}{k}ListForAllNamespaces", self.id_prefix), "watchlist",
                        gvk_of, Vec::new(), self.responses(&ok, &event, stream), None),
                    "parameters": list_params().into_iter()
                        .chain([param("pretty", "query", "string")]).collect::<Vec<_>>(),
                }),
            );
        }
    }
}

/// The OpenAPI v3 document of one group-version, shaped like kube-apiserver 1.32's: paths
/// for each kind's collection, items, subresources and watches, and the schemas they need
/// (from the schema pack; free-form ones for custom types).
fn build_document(group: &str, version: &str, infos: &[&'static TypeInfo]) -> Value {
    let builtin = infos.iter().all(|i| i.schema.is_some());
    let ops = Ops {
        group,
        version,
        tag: {
            let camel = group_camel(group);
            let mut chars = camel.chars();
            let lower = match chars.next() {
                Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
                None => String::new(),
            };
            format!("{lower}_{version}")
        },
        id_prefix: format!("{}{}", group_camel(group), upper_first(version)),
        media: if builtin { MEDIA_BUILTIN } else { MEDIA_CUSTOM },
    };
    let mut paths = BTreeMap::new();
    let base = if group.is_empty() {
        format!("/api/{version}/")
    } else {
        format!("/apis/{group}/{version}/")
    };
    paths.insert(
        base,
        json!({
            "get": {
                "description": "get available resources",
                "operationId": format!("get{}APIResources", ops.id_prefix),
                "responses": ops.responses(&[("200", "OK")], &format!("{META}APIResourceList"), MEDIA_BUILTIN),
                "tags": [ops.tag],
            }
        }),
    );
    let mut roots: Vec<String> = [
        "APIResourceList",
        "DeleteOptions",
        "ListMeta",
        "ObjectMeta",
        "Patch",
        "Status",
        "WatchEvent",
    ]
    .iter()
    .map(|n| format!("{META}{n}"))
    .collect();
    let mut custom = Map::new();
    for info in infos {
        ops.kind_paths(info, &mut paths);
        if info.schema.is_some() {
            let (t, tl) = schema_names(info);
            roots.push(t);
            roots.push(tl);
        } else {
            custom_schemas(info, &mut custom);
        }
        if info.subresources.contains(&"scale") {
            roots.push(SCALE.to_string());
        }
    }
    let mut schemas: BTreeMap<String, Value> = schema::closure(roots.iter().map(String::as_str))
        .into_iter()
        .filter_map(|n| schema::definition(n).map(|s| (n.to_string(), s.clone())))
        .collect();
    schemas.extend(custom);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
                                "name": "authorization", "in": "header"}
            }
        },
        "security": [{"BearerToken": []}]
    })
}

// ---- handlers ----

fn wants_pretty(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "pretty" && (v == "true" || v == "1"))
}

fn json_response(req: &HttpRequest, value: &Value) -> HttpResponse {
    let body = if wants_pretty(req) {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    .unwrap_or_default();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(body)
}

fn not_found() -> HttpResponse {
    SimError::no_route().error_response()
}

async fn version(req: HttpRequest) -> HttpResponse {
    json_response(&req, &version_info())
}

async fn api_versions(req: HttpRequest) -> HttpResponse {
    let host = req.connection_info().host().to_owned();
    json_response(&req, &api_versions_doc(&host))
}

async fn api_v1_resources(req: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    json_response(&req, &api_v1_resource_list(&state.kinds()))
}

async fn api_groups(req: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    json_response(&req, &api_groups_doc(&state.kinds()))
}

async fn api_group(
    req: HttpRequest,
    state: web::Data<SimState>,
    path: web::Path<String>,
) -> HttpResponse {
    match api_group_doc(&state.kinds(), &path) {
        Some(doc) => json_response(&req, &doc),
        None => not_found(),
    }
}

async fn group_version_resources(
    req: HttpRequest,
    state: web::Data<SimState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (group, version) = path.into_inner();
    match group_version_resource_list(&state.kinds(), &group, &version) {
        Some(doc) => json_response(&req, &doc),
        None => not_found(),
    }
}

async fn openapi_v3_index(req: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    json_response(&req, &openapi_v3_index_doc(&state.kinds()))
}

/// A document, immutable when asked for by its hash (as the index links it).
fn openapi_response(req: &HttpRequest, doc: &OpenApiDoc) -> HttpResponse {
    let hashed = url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "hash" && v == doc.hash.as_str());
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ETAG, format!("\"{}\"", doc.hash)));
    if hashed {
        resp.insert_header((header::CACHE_CONTROL, "public, immutable"));
    } else {
        resp.insert_header((header::CACHE_CONTROL, "no-cache, private"));
    }
    resp.body(doc.body.clone())
}

async fn openapi_v3_api_v1(req: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    openapi_response(&req, &api_v1_document(&state.kinds()))
}

async fn openapi_v3_group_version(
    req: HttpRequest,
    state: web::Data<SimState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (group, version) = path.into_inner();
    match group_version_document(&state.kinds(), &group, &version) {
        Some(doc) => openapi_response(&req, &doc),
        None => not_found(),
    }
}

#[cfg(test)]
mod tests;
