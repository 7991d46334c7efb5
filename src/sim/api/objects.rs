//! The HTTP API of every kind without its own routes (all but Namespaces, Services and
//! Pods): one handler resolves `/api/v1/...` and `/apis/{group}/{version}/...` the way
//! kube-apiserver's request-info resolver does (an optional `watch/` segment, an optional
//! `namespaces/{ns}/`, then resource, name and subresource), then lists, watches, gets,
//! creates, replaces, patches and deletes through the generic object registry, including
//! the `status` and `scale` subresources.

use super::list::{list_body, selectors};
use super::{
    authorize, body_value, check_name, delete_one, json_response, list_or_watch, object_response,
    patch_type, pretty, watch_path, with_warnings, FieldValidation, Params,
};
use crate::sim::errors::SimError;
use crate::sim::objects::{self, Origin};
use crate::sim::patch;
use crate::sim::schema::{self, PatchMeta};
use crate::sim::service::Part;
use crate::sim::state::SimState;
use crate::sim::store::{Generic, Kind, Object, Stored};
use crate::sim::{metrics, table};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, SimError>;

/// Registers the catch-all routes. Must come after every more specific route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(["/api/v1/{tail:.*}", "/apis/{tail:.*}"]).to(dispatch));
}

/// A request resolved against the kinds the cluster serves.
struct Target {
    kind: Kind,
    watch: bool,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

/// Resolves the path, or `None` when it names nothing this cluster serves.
fn resolve(state: &SimState, path: &str) -> Option<Target> {
    let (api_version, rest) = if let Some(rest) = path.strip_prefix("/api/v1/") {
        ("v1".to_string(), rest)
    } else {
        let rest = path.strip_prefix("/apis/")?;
        let mut it = rest.splitn(3, '/');
        let (g, v, rest) = (it.next()?, it.next()?, it.next()?);
        (format!("{g}/{v}"), rest)
    };
    let mut segs: Vec<&str> = rest.split('/').collect();
    if segs.last() == Some(&"") {
        segs.pop();
    }
    let watch = segs.first() == Some(&"watch");
    if watch {
        segs.remove(0);
    }
    let mut namespace = None;
    if segs.len() >= 3 && segs[0] == "namespaces" {
        namespace = Some(segs[1].to_string());
        segs.drain(..2);
    }
    if segs.is_empty() || segs.len() > 3 || segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let kind = state.kind_for(&api_version, segs[0])?;
    if namespace.is_some() != kind.namespaced() && (namespace.is_some() || segs.len() > 1) {
        return None;
    }
    Some(Target {
        kind,
        watch,
        namespace,
        name: segs.get(1).map(|s| s.to_string()),
        sub: segs.get(2).map(|s| s.to_string()),
    })
}

async fn dispatch(
    state: web::Data<SimState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let path = percent_encoding::percent_decode_str(req.path())
        .decode_utf8_lossy()
        .into_owned();
    let Some(t) = resolve(&state, &path) else {
        return Err(SimError::no_route());
    };
    let ns = t.namespace.as_deref();
    let method = req.method().clone();
    if t.kind.info().read_only && method != Method::GET {
        return Err(SimError::method_not_allowed());
    }
    if t.kind == Kind::PodMetrics {
        if t.watch || t.sub.is_some() {
            return Err(SimError::method_not_allowed());
        }
        return pod_metrics(&state, &req, ns, t.name.as_deref());
    }
    if t.watch {
        if method != Method::GET || t.sub.is_some() {
            return Err(SimError::method_not_allowed());
        }
        return watch_path(state, &req, t.kind, ns, t.name.as_deref());
    }
    match (t.name.as_deref(), t.sub.as_deref()) {
        (None, _) => match method {
            Method::GET => list_or_watch(state, &req, t.kind, ns),
            Method::POST => create(&state, &req, t.kind, ns.unwrap_or(""), &body),
            Method::DELETE => delete_collection(&state, &req, t.kind, ns.unwrap_or("")),
            _ => Err(SimError::method_not_allowed()),
        },
        (Some(name), None) => {
            let ns = ns.unwrap_or("");
            match method {
                Method::GET => get(&state, &req, t.kind, ns, name, None),
                Method::PUT => replace(&state, &req, t.kind, ns, name, &body, Part::Main),
                Method::PATCH => patch(&state, &req, t.kind, ns, name, &body, Part::Main),
                Method::DELETE => delete_one(&state, &req, &body, t.kind, ns, name, |txn, dry| {
                    objects::delete(txn, t.kind, ns, name, dry)
                }),
                _ => Err(SimError::method_not_allowed()),
            }
        }
        (Some(name), Some("status")) if t.kind.info().has_subresource("status") => {
            let ns = ns.unwrap_or("");
            match method {
                Method::GET => get(&state, &req, t.kind, ns, name, Some("status")),
                Method::PUT => replace(&state, &req, t.kind, ns, name, &body, Part::Status),
                Method::PATCH => patch(&state, &req, t.kind, ns, name, &body, Part::Status),
                _ => Err(SimError::method_not_allowed()),
            }
        }
        (Some(name), Some("scale")) if t.kind.info().has_subresource("scale") => {
            scale(&state, &req, t.kind, ns.unwrap_or(""), name, &body)
        }
        _ => Err(SimError::no_route()),
    }
}

fn scope(ns: &str) -> Option<&str> {
    Some(ns).filter(|n| !n.is_empty())
}

/// Decodes a body as an object of `kind`: checks its `apiVersion` and `kind`.
pub(crate) fn decode_generic(
    kind: Kind,
    mut value: Value,
    validation: FieldValidation,
) -> Result<(Generic, Vec<String>)> {
    let version = kind.info().version;
    if !value.is_object() {
        return Err(SimError::bad_request(format!(
            "{0} in version \"{version}\" cannot be handled as a {0}: json: cannot unmarshal {1} into Go value of type struct",
            kind.name(),
            match value {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "value",
            }
        )));
    }
    if let Some(v) = value.get("apiVersion").and_then(Value::as_str) {
        if v != kind.api_version() {
            return Err(SimError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                kind.api_version()
            )));
        }
    }
    if let Some(k) = value.get("kind").and_then(Value::as_str) {
        if k != kind.name() {
            return Err(SimError::bad_request(format!(
                "{k} in version \"{version}\" cannot be handled as a {0}: converting ({version}.{k}) to ({0}): unknown conversion",
                kind.name()
            )));
        }
    }
    let warnings = schema::check(kind, &mut value, validation)?;
    let obj = Generic::from_value(kind, value).map_err(|e| {
        SimError::bad_request(format!(
            "{0} in version \"{version}\" cannot be handled as a {0}: {e}",
            kind.name()
        ))
    })?;
    Ok((obj, warnings))
}

/// 400 when the body names a namespace other than the URL's.
fn check_namespace(obj: &Generic, ns: &str) -> Result<()> {
    match obj.metadata.namespace.as_deref() {
        Some(body_ns) if !body_ns.is_empty() && !ns.is_empty() && body_ns != ns => {
            Err(SimError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ))
        }
        _ => Ok(()),
    }
}

fn create(
    state: &SimState,
    req: &HttpRequest,
    kind: Kind,
    ns: &str,
    body: &[u8],
) -> Result<HttpResponse> {
    let params = Params::of(req);
    authorize(state, req, "create", kind, None, scope(ns), None)?;
    let dry_run = params.dry_run()?;
    let validation = FieldValidation::of(&params)?;
    let (obj, warnings) = decode_generic(kind, body_value(req, body)?, validation)?;
    check_namespace(&obj, ns)?;
    let created = state
        .store
        .write(|txn| objects::create(txn, ns, obj, Origin::Request, dry_run))?;
    Ok(with_warnings(
        object_response(req, &params, StatusCode::CREATED, &created),
        &warnings,
    ))
}

/// A GET of one object of any kind (`ns` `""` for cluster-scoped ones), or of its
/// `status`.
pub(super) fn get(
    state: &SimState,
    req: &HttpRequest,
    kind: Kind,
    ns: &str,
    name: &str,
    sub: Option<&str>,
) -> Result<HttpResponse> {
    let params = Params::of(req);
    authorize(state, req, "get", kind, sub, scope(ns), Some(name))?;
    let (snap, _) = state.store.snapshot();
    let obj = snap
        .get(kind, ns, name)
        .ok_or_else(|| SimError::not_found(&kind.qualified_resource(), name))?;
    Ok(object_response(req, &params, StatusCode::OK, obj))
}

fn decode_update(
    kind: Kind,
    value: Value,
    validation: FieldValidation,
    ns: &str,
    name: &str,
) -> Result<(Generic, Vec<String>)> {
    let (obj, warnings) = decode_generic(kind, value, validation)?;
    check_name(obj.metadata.name.as_deref(), name)?;
    check_namespace(&obj, ns)?;
    Ok((obj, warnings))
}

fn replace(
    state: &SimState,
    req: &HttpRequest,
    kind: Kind,
    ns: &str,
    name: &str,
    body: &[u8],
    part: Part,
) -> Result<HttpResponse> {
    let params = Params::of(req);
    let sub = (part == Part::Status).then_some("status");
    authorize(state, req, "update", kind, sub, scope(ns), Some(name))?;
    let dry_run = params.dry_run()?;
    let validation = FieldValidation::of(&params)?;
    let (obj, warnings) = decode_update(kind, body_value(req, body)?, validation, ns, name)?;
    let updated = state
        .store
        .write(|txn| objects::update(txn, ns, name, obj, part, dry_run))?;
    Ok(with_warnings(
        object_response(req, &params, StatusCode::OK, &updated),
        &warnings,
    ))
}

fn patch(
    state: &SimState,
    req: &HttpRequest,
    kind: Kind,
    ns: &str,
    name: &str,
    body: &[u8],
    part: Part,
) -> Result<HttpResponse> {
    let params = Params::of(req);
    let sub = (part == Part::Status).then_some("status");
    let patch_type = patch_type(req)?;
    authorize(state, req, "patch", kind, sub, scope(ns), Some(name))?;
    // Custom resources have no patch merge keys: kube-apiserver refuses strategic patches.
    if patch_type == patch::PatchType::Strategic && !kind.info().is_builtin() {
        return Err(SimError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json",
        ));
    }
    let dry_run = params.dry_run()?;
    let validation = FieldValidation::of(&params)?;
    let (updated, warnings) = state.store.write(|txn| {
        let current = txn
            .get(kind, ns, name)
            .ok_or_else(|| SimError::not_found(&kind.qualified_resource(), name))?;
        let patched = patch::apply(kind, patch_type, &current.value(), body)?;
        let (obj, warnings) = decode_update(kind, patched, validation, ns, name)?;
        let updated = objects::update(txn, ns, name, obj, part, dry_run)?;
        Ok((updated, warnings))
    })?;
    Ok(with_warnings(
        object_response(req, &params, StatusCode::OK, &updated),
        &warnings,
    ))
}

fn delete_collection(
    state: &SimState,
    req: &HttpRequest,
    kind: Kind,
    ns: &str,
) -> Result<HttpResponse> {
    let params = Params::of(req);
    authorize(state, req, "deletecollection", kind, None, scope(ns), None)?;
    let dry_run = params.dry_run()?;
    let sel = selectors(kind, &params)?;
    let deleted = state.store.write(|txn| {
        let names: Vec<String> = txn
            .snapshot()
            .iter(kind, scope(ns), None)
            .filter(|s| sel.matches(s))
            .map(|s| s.name.clone())
            .collect();
        let mut out = Vec::new();
        for name in names {
            out.push(objects::delete(txn, kind, ns, &name, dry_run)?);
        }
        Ok(out)
    })?;
    let mut meta = serde_json::Map::new();
    meta.insert(
        "resourceVersion".into(),
        state.store.rv().to_string().into(),
    );
    let body = list_body(kind, &meta, &deleted);
    Ok(json_response(StatusCode::OK, body, pretty(req, &params)))
}

/// The autoscaling/v1 `Scale` of a stored workload.
fn scale_of(stored: &Stored) -> Value {
    let Object::Generic(g) = &stored.object else {
        return json!({});
    };
    let m = &g.metadata;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.name, "namespace": m.namespace, "uid": m.uid,
            "resourceVersion": stored.rv.to_string(),
            "creationTimestamp": m.creation_timestamp,
        },
        "spec": {"replicas": g.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": g.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": objects::scale_selector(g),
        }
    })
}

/// `GET`, `PUT` and `PATCH` of the `scale` subresource: reads and writes `spec.replicas`.
fn scale(
    state: &SimState,
    req: &HttpRequest,
    kind: Kind,
    ns: &str,
    name: &str,
    body: &[u8],
) -> Result<HttpResponse> {
    let params = Params::of(req);
    let method = req.method().clone();
    let verb = match method {
        Method::GET => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        _ => return Err(SimError::method_not_allowed()),
    };
    authorize(state, req, verb, kind, Some("scale"), scope(ns), Some(name))?;
    let pretty = pretty(req, &params);
    let respond = |s: &Stored| {
        json_response(
            StatusCode::OK,
            serde_json::to_vec(&scale_of(s)).unwrap_or_default(),
            pretty,
        )
    };
    if method == Method::GET {
        let (snap, _) = state.store.snapshot();
        let obj = snap
            .get(kind, ns, name)
            .ok_or_else(|| SimError::not_found(&kind.qualified_resource(), name))?;
        return Ok(respond(obj));
    }
    let dry_run = params.dry_run()?;
    let patch_type = (method == Method::PATCH)
        .then(|| patch_type(req))
        .transpose()?;
    let updated = state.store.write(|txn| {
        let current = txn
            .get(kind, ns, name)
            .ok_or_else(|| SimError::not_found(&kind.qualified_resource(), name))?;
        let scale = scale_of(&current);
        let wanted = match patch_type {
            Some(t) => patch::apply_as(PatchMeta::of_definition(schema::SCALE), t, &scale, body)?,
            None => body_value(req, body)?,
        };
        if let Some(rv) = wanted
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            current.check_fresh(Some(rv))?;
        }
        let replicas = match wanted.pointer("/spec/replicas") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().ok_or_else(|| {
                SimError::bad_request(format!(
                    "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal {v} into Go struct field ScaleSpec.spec.replicas of type int32"
                ))
            })?,
        };
        if replicas < 0 {
            return Err(SimError::invalid(
                "Scale.autoscaling",
                name,
                vec![crate::sim::errors::Cause::invalid(
                    "spec.replicas",
                    &json!(replicas),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let Object::Generic(mut g) = current.object.clone() else {
            return Err(SimError::internal("stored object has a typed model"));
        };
        if let Some(Value::Object(spec)) = g.body.get_mut("spec") {
            spec.insert("replicas".into(), json!(replicas));
        }
        g.metadata.resource_version = None;
        objects::update(txn, ns, name, g, Part::Main, dry_run)
    })?;
    Ok(respond(&updated))
}

/// `GET /apis/metrics.k8s.io/v1beta1/[namespaces/{ns}/]pods[/{name}]`: PodMetrics derived
/// from the pods, as metrics-server answers `kubectl top pods`.
fn pod_metrics(
    state: &SimState,
    req: &HttpRequest,
    ns: Option<&str>,
    name: Option<&str>,
) -> Result<HttpResponse> {
    let params = Params::of(req);
    let kind = Kind::PodMetrics;
    let verb = if name.is_some() { "get" } else { "list" };
    authorize(state, req, verb, kind, None, ns, name)?;
    let pods = req
        .app_data::<web::Data<crate::sim::pods::PodsState>>()
        .ok_or_else(|| SimError::unavailable("the metrics API is not available"))?;
    let now = chrono::Utc::now();
    let pretty = pretty(req, &params);
    let store = &pods.store;
    let found: Vec<crate::sim::pods::store::Pod> = match name {
        Some(n) => {
            let pod = store
                .get(ns.unwrap_or(""), n)
                .ok_or_else(|| SimError::not_found("pods.metrics.k8s.io", n))?;
            vec![pod]
        }
        None => {
            let labels = crate::sim::selectors::LabelSelector::parse(
                params.get("labelSelector").unwrap_or(""),
            )?;
            store
                .list(ns)
                .into_iter()
                .filter(|p| labels.matches(Some(&p.labels)))
                .collect()
        }
    };
    let found: Vec<&crate::sim::pods::store::Pod> = found.iter().collect();
    let list = metrics::pod_metrics_list(&found, now, store.resource_version());
    let items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    if table::wants_table(super::accept(req)) {
        let include = params.get("includeObject").unwrap_or("Metadata");
        let meta = json!({"resourceVersion": store.resource_version().to_string()});
        return Ok(super::table_response(
            super::table_of(kind, &items, include, meta),
            pretty,
        ));
    }
    let body = match (name, items.into_iter().next()) {
        (Some(_), Some(mut one)) => {
            if let Value::Object(m) = &mut one {
                m.insert("kind".into(), json!("PodMetrics"));
                m.insert("apiVersion".into(), json!(metrics::API_VERSION));
            }
            one
        }
        _ => list,
    };
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
        pretty,
    ))
}
