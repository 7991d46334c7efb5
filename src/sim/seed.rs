//! Seeds: objects of the kinds in `SEED_KINDS` (Namespaces, Services, CRDs; Pods are the
//! pod store's) and of every served kind, loaded at start from YAML (several documents,
//! or a `kind: List`), from a file or from text embedded in the binary. Every object goes
//! through the same defaulting, validation and allocation as an API create; the
//! well-known namespaces and the `default/kubernetes` Service of a real cluster always
//! exist.

use super::alloc::KUBERNETES_IP;
use super::config::SeedSource;
use super::errors::SimError;
use super::kinds::CustomType;
use super::model::{seed_timestamp, Namespace, Service};
use super::objects::{self, Origin};
use super::service::Part;
use super::state::SimState;
use super::store::{Generic, Kind, Object, Store};
use super::{namespace, service};
use serde::Deserialize;
use serde_json::{json, Value};

/// Namespaces every cluster has.
pub(crate) const BUILTIN_NAMESPACES: &[&str] =
    &["default", "kube-node-lease", "kube-public", "kube-system"];

/// Why a seed could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("seed {source_name}: {message}")]
pub(crate) struct SeedError {
    /// The seed's file or name.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

fn ensure_namespace(store: &Store, name: &str) -> Result<(), SimError> {
    store.write(|txn| {
        if txn.get(Kind::Namespace, "", name).is_none() {
            let mut ns = Namespace::default();
            ns.metadata.name = Some(name.to_string());
            namespace::create(txn, ns, false)?;
        }
        Ok(())
    })
}

/// The Service every cluster has, the API server's own: `default/kubernetes`.
const KUBERNETES_SERVICE: (&str, &str) = ("default", "kubernetes");

/// `default/kubernetes` as kube-apiserver reconciles it: the first address of the service
/// range, port `https` 443/TCP to the server's 6443.
fn kubernetes_service() -> Result<Service, SimError> {
    let (namespace, name) = KUBERNETES_SERVICE;
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": KUBERNETES_IP.to_string(),
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
        },
    }))
    .map_err(|e| SimError::internal(format!("the built-in {namespace}/{name} Service: {e}")))
}

/// Creates the built-in namespaces and the `default/kubernetes` Service (its cluster IP
/// taken from the allocator), before any seed is loaded.
pub(crate) fn builtins(store: &Store) -> Result<(), SimError> {
    for ns in BUILTIN_NAMESPACES {
        ensure_namespace(store, ns)?;
    }
    let (namespace, name) = KUBERNETES_SERVICE;
    let svc = kubernetes_service()?;
    store.write(|txn| {
        if txn.get(Kind::Service, namespace, name).is_none() {
            service::create(txn, namespace, svc, false)?;
        }
        Ok(())
    })
}

fn flatten(doc: Value, out: &mut Vec<Value>) {
    if doc
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
    {
        if let Some(Value::Array(items)) = doc.get("items") {
            for item in items.clone() {
                flatten(item, out);
            }
        }
    } else if !doc.is_null() {
        out.push(doc);
    }
}

/// Loads a seed into the cluster's store: Namespaces, Services, custom resource
/// definitions (which make their kind served) and objects of every served kind.
pub(crate) fn load(state: &SimState, source: &SeedSource) -> Result<(), SeedError> {
    let (name, text) = match source {
        SeedSource::File(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| SeedError {
                source_name: path.display().to_string(),
                message: format!("cannot read: {e}"),
            })?,
        ),
        SeedSource::Text { name, text } => (name.clone(), text.clone()),
    };
    let err = |message: String| SeedError {
        source_name: name.clone(),
        message,
    };
    let mut objects = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let yaml = serde_yaml::Value::deserialize(doc)
            .map_err(|e| err(format!("document {}: not YAML: {e}", i + 1)))?;
        let json =
            serde_json::to_value(yaml).map_err(|e| err(format!("document {}: {e}", i + 1)))?;
        flatten(json, &mut objects);
    }
    for (i, obj) in objects.into_iter().enumerate() {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let at = |m: String| err(format!("object {} ({kind}): {m}", i + 1));
        if let Some((_, load)) = SEED_KINDS.iter().find(|(k, _)| *k == kind) {
            load(state, obj).map_err(at)?;
            continue;
        }
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let Some(served) = state
            .kind_named(api_version, &kind)
            .filter(|k| !k.info().read_only)
        else {
            return Err(at(format!(
                "unsupported kind {api_version}/{kind}: a seed holds {}",
                seedable(state)
            )));
        };
        load_served(state, served, obj).map_err(at)?;
    }
    state
        .store
        .write(objects::reconcile)
        .map_err(|e| err(format!("reconciling the seeded workloads: {}", e.message)))?;
    Ok(())
}

/// Loads one seed object of a kind; an error is the message for that object.
type LoadObject = fn(&SimState, Value) -> Result<(), String>;

/// The kinds a seed holds that have a loader of their own. [`load`] dispatches on this
/// table first, then on [`served_kinds`]; its error for any other kind lists both (see
/// [`seedable`]), so the message and the dispatch always agree.
const SEED_KINDS: &[(&str, LoadObject)] = &[
    ("Namespace", load_namespace),
    ("Service", load_service),
    ("Pod", seeded_by_pod_store),
    ("CustomResourceDefinition", load_crd),
];

/// The served kinds a seed may hold as generic objects: all but the derived ones.
fn served_kinds(state: &SimState) -> Vec<Kind> {
    state
        .kinds()
        .into_iter()
        .filter(|k| !k.info().read_only)
        .collect()
}

/// What a seed may hold, for messages: the kinds of [`SEED_KINDS`] that are not served
/// kinds, then every kind of [`served_kinds`] with its apiVersion.
fn seedable(state: &SimState) -> String {
    let served = served_kinds(state);
    let mut kinds: Vec<String> = SEED_KINDS
        .iter()
        .filter(|(name, _)| !served.iter().any(|k| k.name() == *name))
        .map(|(name, _)| name.to_string())
        .collect();
    kinds.extend(
        served
            .iter()
            .map(|k| format!("{} ({})", k.name(), k.api_version())),
    );
    kinds.join(", ")
}

/// A seed Namespace: created, or an update of a built-in one.
fn load_namespace(state: &SimState, obj: Value) -> Result<(), String> {
    let ns: Namespace = serde_json::from_value(obj).map_err(|e| e.to_string())?;
    let name = ns.metadata.name().to_string();
    state
        .store
        .write(|txn| {
            if txn.get(Kind::Namespace, "", &name).is_some() {
                namespace::update(txn, &name, ns, false).map(|_| ())
            } else {
                namespace::create(txn, ns, false).map(|_| ())
            }
        })
        .map_err(|e| e.message)
}

/// A seed Service, in its namespace (`default` when unset), which is created if missing.
///
/// A seed may define the built-in `default/kubernetes` (the shipped seeds once did): its
/// version wins, applied as an update (`kubectl replace`) of the built-in one, as seed
/// Namespaces update the built-in namespaces. Its labels, annotations and spec replace the
/// built-in ones; the cluster IP stays the first of the range, and a seed that sets
/// another is refused as such an update is (the field is immutable).
fn load_service(state: &SimState, obj: Value) -> Result<(), String> {
    let svc: Service = serde_json::from_value(obj).map_err(|e| e.to_string())?;
    let ns = svc
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let name = svc.metadata.name.clone().unwrap_or_default();
    ensure_namespace(&state.store, &ns).map_err(|e| e.message)?;
    state
        .store
        .write(|txn| {
            let builtin = (ns.as_str(), name.as_str()) == KUBERNETES_SERVICE;
            if builtin && txn.get(Kind::Service, &ns, &name).is_some() {
                return service::update(txn, &ns, &name, svc, Part::Main, false);
            }
            // A seeded Service was created as long ago as the rest of the seed, and keeps
            // the load balancer status the seed gives it (a cloud would have set it).
            let lb = (svc.spec.type_name() == "LoadBalancer")
                .then(|| svc.status.load_balancer.clone())
                .flatten();
            let created = service::create(txn, &ns, svc, false)?;
            let Object::Service(mut stored) = created.object.clone() else {
                return Ok(created);
            };
            stored.metadata.creation_timestamp = Some(seed_timestamp());
            if lb.as_ref().is_some_and(|l| l.ingress.is_some()) {
                stored.status.load_balancer = lb;
            }
            Ok(txn.put(Object::Service(stored)))
        })
        .map(|_| ())
        .map_err(|e| e.message)
}

/// Pods are seeded by the pod store (`pods::store`), which reads the same seed text.
fn seeded_by_pod_store(_: &SimState, _: Value) -> Result<(), String> {
    Ok(())
}

/// A CustomResourceDefinition: its kind is served from now on.
fn load_crd(state: &SimState, obj: Value) -> Result<(), String> {
    for custom in crd_types(&obj)? {
        state.add_custom(&custom)?;
    }
    Ok(())
}

/// An object of a served kind, through the generic object layer (its namespace, when the
/// kind is namespaced, created if missing).
fn load_served(state: &SimState, kind: Kind, obj: Value) -> Result<(), String> {
    let generic = Generic::from_value(kind, obj)?;
    let ns = if kind.namespaced() {
        let ns = generic
            .metadata
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        ensure_namespace(&state.store, &ns).map_err(|e| e.message)?;
        ns
    } else {
        String::new()
    };
    state
        .store
        .write(|txn| objects::create(txn, &ns, generic, Origin::Seed, false))
        .map(|_| ())
        .map_err(|e| e.message)
}

/// The custom types an `apiextensions.k8s.io/v1` CustomResourceDefinition declares: one
/// per served version.
fn crd_types(crd: &Value) -> Result<Vec<CustomType>, String> {
    let spec = crd.get("spec").ok_or("spec is required")?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let names = spec.get("names").ok_or("spec.names is required")?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let group = s(spec.get("group")).ok_or("spec.group is required")?;
    let kind = s(names.get("kind")).ok_or("spec.names.kind is required")?;
    let plural = s(names.get("plural")).ok_or("spec.names.plural is required")?;
    let namespaced = match s(spec.get("scope")).as_deref() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope must be Namespaced or Cluster".into()),
    };
    let versions: Vec<String> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("served") != Some(&Value::Bool(false)))
                .filter_map(|v| s(v.get("name")))
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        return Err("spec.versions must name at least one served version".into());
    }
    Ok(versions
        .into_iter()
        .map(|version| CustomType {
            group: group.clone(),
            version,
            kind: kind.clone(),
            plural: plural.clone(),
            singular: s(names.get("singular")),
            namespaced,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::SimClusterConfig;

    fn load_text(text: &str) -> Result<SimState, SeedError> {
        let state = SimState::new(&SimClusterConfig::default());
        builtins(&state.store).unwrap();
        let source = SeedSource::Text {
            name: "t".into(),
            text: text.into(),
        };
        load(&state, &source).map(|_| state)
    }

    #[test]
    fn an_unsupported_kind_is_refused_naming_every_seedable_kind() {
        let err = load_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: c}\n")
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "seed t: object 2 (Widget): unsupported kind example.com/v1/Widget: a seed holds Pod, CustomResourceDefinition, Namespace (v1), Service (v1), ConfigMap (v1), "
            ),
            "{err}"
        );
        for (kind, _) in SEED_KINDS {
            assert!(err.message.contains(kind), "{kind} missing: {err}");
        }
        let state = SimState::new(&SimClusterConfig::default());
        for kind in served_kinds(&state) {
            let shown = format!("{} ({})", kind.name(), kind.api_version());
            assert!(err.message.contains(&shown), "{shown} missing: {err}");
        }
        // A derived (read-only) kind is neither listed nor loaded.
        assert!(!err.message.contains("PodMetrics"), "{err}");
        let err = load_text(
            "apiVersion: metrics.k8s.io/v1beta1\nkind: PodMetrics\nmetadata: {name: x}\n",
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("object 1 (PodMetrics): unsupported kind metrics.k8s.io/v1beta1/PodMetrics: a seed holds "),
            "{err}"
        );
    }

    fn service(state: &SimState, ns: &str, name: &str) -> Option<Value> {
        let (snap, _) = state.store.snapshot();
        snap.get(Kind::Service, ns, name).map(|s| s.value())
    }

    #[test]
    fn every_cluster_has_the_kubernetes_service() {
        let store = Store::new();
        builtins(&store).unwrap();
        let (snap, _) = store.snapshot();
        let k = snap
            .get(Kind::Service, "default", "kubernetes")
            .expect("default/kubernetes")
            .value();
        assert_eq!(
            k["metadata"]["labels"],
            json!({"component": "apiserver", "provider": "kubernetes"})
        );
        assert_eq!(k["spec"]["type"], "ClusterIP");
        assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
        assert_eq!(k["spec"]["clusterIPs"], json!(["10.96.0.1"]));
        assert_eq!(k["spec"]["sessionAffinity"], "None");
        assert_eq!(
            k["spec"]["ports"],
            json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}])
        );
        assert!(k["metadata"]["uid"].is_string());
        // The allocator has the address: no other Service may take it.
        let taken = store
            .write(|t| Ok(t.ips().check(KUBERNETES_IP)))
            .unwrap()
            .unwrap_err();
        assert!(taken.contains("already allocated"), "{taken}");
        let err = store
            .write(|t| {
                service::create(
                    t,
                    "default",
                    serde_json::from_value(json!({"metadata": {"name": "squatter"},
                        "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}]}}))
                    .unwrap(),
                    false,
                )
            })
            .unwrap_err();
        assert!(err.message.contains("already allocated"), "{}", err.message);
        // Built-ins again (a second call) change nothing.
        let rv = store.rv();
        builtins(&store).unwrap();
        assert_eq!(store.rv(), rv);
    }

    #[test]
    fn a_seed_that_defines_the_kubernetes_service_updates_the_built_in_one() {
        let state = load_text(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: kubernetes\n  namespace: default\n  labels: {component: apiserver, provider: kubernetes, seeded: 'yes'}\n  annotations: {sim.kubeplex.io/backend: 'http://127.0.0.1:6443'}\nspec:\n  ports: [{name: https, port: 443, targetPort: 6443}]\n",
        )
        .unwrap();
        let k = service(&state, "default", "kubernetes").unwrap();
        assert_eq!(k["metadata"]["labels"]["seeded"], "yes");
        assert_eq!(
            k["metadata"]["annotations"]["sim.kubeplex.io/backend"],
            "http://127.0.0.1:6443"
        );
        assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
        let (snap, _) = state.store.snapshot();
        assert_eq!(snap.iter(Kind::Service, Some("default"), None).count(), 1);
        // The cluster IP cannot move, as in any update.
        let err = load_text(
            "apiVersion: v1\nkind: Service\nmetadata: {name: kubernetes}\nspec:\n  clusterIP: 10.96.0.2\n  ports: [{name: https, port: 443}]\n",
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("object 1 (Service): Service \"kubernetes\" is invalid")
                && err.message.contains("may not change once set"),
            "{err}"
        );
        // Any other Service a seed defines twice is still refused.
        let err = load_text(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "object 2 (Service): services \"web\" already exists"
        );
    }

    #[test]
    fn each_listed_kind_is_accepted() {
        let state = load_text(
            "kind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: shop}, spec: {ports: [{port: 80}]}}\n- {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop}, spec: {containers: [{name: c, image: i}]}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: settings, namespace: shop}, data: {a: b}}\n",
        )
        .unwrap();
        let (snap, _) = state.store.snapshot();
        assert!(snap.get(Kind::Namespace, "", "shop").is_some());
        assert!(snap.get(Kind::Service, "shop", "web").is_some());
        let config_map = state.kind_named("v1", "ConfigMap").unwrap();
        assert!(snap.get(config_map, "shop", "settings").is_some());
    }
}
