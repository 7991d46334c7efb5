//! Service endpoints: list (all and per namespace, with `watch=1`), create, get, replace,
//! patch (merge, JSON, strategic), delete, deletecollection, and the `status`
//! subresource.

use super::list::{list as serve_list, selectors};
use super::watch::watch;
use super::{
    authorize, body_value, check_preconditions, decode, delete_preconditions, json_response,
    object_response, pretty, with_warnings, FieldValidation, Params,
};
use crate::sim::errors::SimError;
use crate::sim::model::Service;
use crate::sim::patch::{self, PatchType};
use crate::sim::service::{self, Part};
use crate::sim::state::SimState;
use crate::sim::store::Kind;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

type Result<T> = std::result::Result<T, SimError>;
const K: Kind = Kind::Service;

fn list_or_watch(
    state: web::Data<SimState>,
    req: &HttpRequest,
    namespace: Option<&str>,
) -> Result<HttpResponse> {
    let params = Params::of(req);
    if params.flag("watch")? {
        authorize(&state, req, "watch", K, None, namespace, None)?;
        return watch(state, req, &params, K, namespace, None);
    }
    authorize(&state, req, "list", K, None, namespace, None)?;
    serve_list(&state, req, &params, K, namespace)
}

/// `GET /api/v1/services`
pub async fn list_all(state: web::Data<SimState>, req: HttpRequest) -> Result<HttpResponse> {
    list_or_watch(state, &req, None)
}

/// `GET /api/v1/namespaces/{ns}/services`
pub async fn list(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    list_or_watch(state, &req, Some(&path))
}

/// `GET /api/v1/watch/services`
pub async fn watch_all(state: web::Data<SimState>, req: HttpRequest) -> Result<HttpResponse> {
    let params = Params::of(&req);
    authorize(&state, &req, "watch", K, None, None, None)?;
    watch(state, &req, &params, K, None, None)
}

/// `GET /api/v1/watch/namespaces/{ns}/services`
pub async fn watch_ns(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let params = Params::of(&req);
    authorize(&state, &req, "watch", K, None, Some(&path), None)?;
    watch(state, &req, &params, K, Some(&path), None)
}

/// `GET /api/v1/watch/namespaces/{ns}/services/{name}`
pub async fn watch_one(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (ns, name) = path.into_inner();
    let params = Params::of(&req);
    authorize(&state, &req, "watch", K, None, Some(&ns), Some(&name))?;
    watch(state, &req, &params, K, Some(&ns), Some(&name))
}

/// `POST /api/v1/namespaces/{ns}/services`
pub async fn create(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let ns = path.into_inner();
    let params = Params::of(&req);
    authorize(&state, &req, "create", K, None, Some(&ns), None)?;
    let dry_run = params.dry_run()?;
    let validation = FieldValidation::of(&params)?;
    let value = body_value(&req, &body)?;
    let (svc, warnings): (Service, _) = decode(K, value, validation)?;
    if let Some(body_ns) = svc.metadata.namespace.as_deref().filter(|n| !n.is_empty()) {
        if body_ns != ns {
            return Err(SimError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let created = state
        .store
        .write(|txn| service::create(txn, &ns, svc, dry_run))?;
    Ok(with_warnings(
        object_response(&req, &params, StatusCode::CREATED, &created),
        &warnings,
    ))
}

/// `GET /api/v1/namespaces/{ns}/services/{name}`
pub async fn get(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (ns, name) = path.into_inner();
    get_one(&state, &req, &ns, &name, None)
}

/// `GET .../services/{name}/status`
pub async fn get_status(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (ns, name) = path.into_inner();
    get_one(&state, &req, &ns, &name, Some("status"))
}

fn get_one(
    state: &SimState,
    req: &HttpRequest,
    ns: &str,
    name: &str,
    sub: Option<&str>,
) -> Result<HttpResponse> {
    let params = Params::of(req);
    authorize(state, req, "get", K, sub, Some(ns), Some(name))?;
    let (snap, _) = state.store.snapshot();
    let obj = snap
        .get(K, ns, name)
        .ok_or_else(|| SimError::not_found("services", name))?;
    Ok(object_response(req, &params, StatusCode::OK, obj))
}

fn check_names(svc: &Service, ns: &str, name: &str) -> Result<()> {
    if let Some(n) = svc.metadata.name.as_deref() {
        if n != name {
            return Err(SimError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
    }
    if let Some(body_ns) = svc.metadata.namespace.as_deref().filter(|n| !n.is_empty()) {
        if body_ns != ns {
            return Err(SimError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    Ok(())
}

async fn replace_part(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    part: Part,
) -> Result<HttpResponse> {
    let (ns, name) = path.into_inner();
    let params = Params::of(&req);
    let sub = (part == Part::Status).then_some("status");
    authorize(&state, &req, "update", K, sub, Some(&ns), Some(&name))?;
    let dry_run = params.dry_run()?;
    let validation = FieldValidation::of(&params)?;
    let value = body_value(&req, &body)?;
    let (svc, warnings): (Service, _) = decode(K, value, validation)?;
    check_names(&svc, &ns, &name)?;
    let updated = state
        .store
        .write(|txn| service::update(txn, &ns, &name, svc, part, dry_run))?;
    Ok(with_warnings(
        object_response(&req, &params, StatusCode::OK, &updated),
        &warnings,
    ))
}

/// `PUT .../services/{name}`
pub async fn replace(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    replace_part(state, req, path, body, Part::Main).await
}

/// `PUT .../services/{name}/status`
pub async fn replace_status(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    replace_part(state, req, path, body, Part::Status).await
}

async fn patch_part(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    part: Part,
) -> Result<HttpResponse> {
    let (ns, name) = path.into_inner();
    let params = Params::of(&req);
    let sub = (part == Part::Status).then_some("status");
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let patch_type = PatchType::from_content_type(ct)?;
    authorize(&state, &req, "patch", K, sub, Some(&ns), Some(&name))?;
    let dry_run = params.dry_run()?;
    let validation = FieldValidation::of(&params)?;
    let (updated, warnings) = state.store.write(|txn| {
        let current = txn
            .get(K, &ns, &name)
            .ok_or_else(|| SimError::not_found("services", &name))?;
        let patched = patch::apply(patch_type, &current.value(), &body)?;
        let (svc, warnings): (Service, _) = decode(K, patched, validation)?;
        check_names(&svc, &ns, &name)?;
        let updated = service::update(txn, &ns, &name, svc, part, dry_run)?;
        Ok((updated, warnings))
    })?;
    Ok(with_warnings(
        object_response(&req, &params, StatusCode::OK, &updated),
        &warnings,
    ))
}

/// `PATCH .../services/{name}`
pub async fn patch(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    patch_part(state, req, path, body, Part::Main).await
}

/// `PATCH .../services/{name}/status`
pub async fn patch_status(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    patch_part(state, req, path, body, Part::Status).await
}

/// `DELETE .../services/{name}`: returns the deleted object.
pub async fn delete(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let (ns, name) = path.into_inner();
    let params = Params::of(&req);
    authorize(&state, &req, "delete", K, None, Some(&ns), Some(&name))?;
    let (uid, rv, body_dry_run) = delete_preconditions(&req, &body)?;
    let dry_run = params.dry_run()? || body_dry_run;
    let deleted = state.store.write(|txn| {
        if let Some(current) = txn.get(K, &ns, &name) {
            check_preconditions(&current, &uid, &rv)?;
        }
        service::delete(txn, &ns, &name, dry_run)
    })?;
    Ok(object_response(&req, &params, StatusCode::OK, &deleted))
}

/// `DELETE /api/v1/namespaces/{ns}/services`: deletes every selected Service and returns
/// them as a list.
pub async fn delete_collection(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let ns = path.into_inner();
    let params = Params::of(&req);
    authorize(&state, &req, "deletecollection", K, None, Some(&ns), None)?;
    let dry_run = params.dry_run()?;
    let sel = selectors(K, &params)?;
    let (deleted, rv) = state.store.write(|txn| {
        let names: Vec<String> = txn
            .snapshot()
            .iter(K, Some(&ns), None)
            .filter(|s| sel.matches(s))
            .map(|s| s.name.clone())
            .collect();
        let mut out = Vec::new();
        for name in names {
            out.push(service::delete(txn, &ns, &name, dry_run)?);
        }
        Ok((out, txn.snapshot()))
    })?;
    let _ = rv;
    let mut body = format!(
        "{{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"{}\"}},\"items\":[",
        state.store.rv()
    )
    .into_bytes();
    for (i, s) in deleted.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&s.json);
    }
    body.extend_from_slice(b"]}");
    Ok(json_response(StatusCode::OK, body, pretty(&req, &params)))
}
