//! Service endpoints: list (all and per namespace, with `watch=1`), create (per namespace,
//! and at `/api/v1/services` in the body's namespace), get, replace, patch (merge, JSON,
//! strategic), delete, deletecollection, and the `status` subresource.

use super::list::{list_body, selectors};
use super::{
    authorize, body_value, check_name, decode, delete_one, json_response, list_or_watch,
    object_response, patch_type, pretty, watch_path, with_warnings, FieldValidation, Params,
};
use crate::sim::errors::SimError;
use crate::sim::model::Service;
use crate::sim::patch;
use crate::sim::service::{self, Part};
use crate::sim::state::SimState;
use crate::sim::store::Kind;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

type Result<T> = std::result::Result<T, SimError>;
const K: Kind = Kind::Service;

/// `GET /api/v1/services`
pub(super) async fn list_all(state: web::Data<SimState>, req: HttpRequest) -> Result<HttpResponse> {
    list_or_watch(state, &req, K, None)
}

/// `GET /api/v1/namespaces/{ns}/services`
pub(super) async fn list(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    list_or_watch(state, &req, K, Some(&path))
}

/// `GET /api/v1/watch/services`
pub(super) async fn watch_all(
    state: web::Data<SimState>,
    req: HttpRequest,
) -> Result<HttpResponse> {
    watch_path(state, &req, K, None, None)
}

/// `GET /api/v1/watch/namespaces/{ns}/services`
pub(super) async fn watch_ns(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    watch_path(state, &req, K, Some(&path), None)
}

/// `GET /api/v1/watch/namespaces/{ns}/services/{name}`
pub(super) async fn watch_one(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (ns, name) = path.into_inner();
    watch_path(state, &req, K, Some(&ns), Some(&name))
}

/// `POST /api/v1/namespaces/{ns}/services`
pub(super) async fn create(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    create_in(&state, &req, Some(path.into_inner()), &body)
}

/// `POST /api/v1/services` (as the OKD v1 Service reference lists it): the namespace is
/// the body's `metadata.namespace` (400 when unset); otherwise a create in that namespace.
pub(super) async fn create_any(
    state: web::Data<SimState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    create_in(&state, &req, None, &body)
}

/// A create in the URL's namespace, or (`url_ns` None) in the body's.
fn create_in(
    state: &SimState,
    req: &HttpRequest,
    url_ns: Option<String>,
    body: &[u8],
) -> Result<HttpResponse> {
    let params = Params::of(req);
    if let Some(ns) = &url_ns {
        authorize(state, req, "create", K, None, Some(ns), None)?;
    }
    let dry_run = params.dry_run()?;
    let validation = FieldValidation::of(&params)?;
    let value = body_value(req, body)?;
    let (svc, warnings): (Service, _) = decode(K, value, validation)?;
    let ns = match url_ns {
        Some(ns) => {
            check_namespace(&svc, &ns)?;
            ns
        }
        None => {
            let ns = svc
                .metadata
                .namespace
                .clone()
                .filter(|ns| !ns.is_empty())
                .ok_or_else(|| {
                    SimError::bad_request(
                        "the provided object has no namespace: a Service created at /api/v1/services needs metadata.namespace",
                    )
                })?;
            authorize(state, req, "create", K, None, Some(&ns), None)?;
            ns
        }
    };
    let created = state
        .store
        .write(|txn| service::create(txn, &ns, svc, dry_run))?;
    Ok(with_warnings(
        object_response(req, &params, StatusCode::CREATED, &created),
        &warnings,
    ))
}

/// `GET /api/v1/namespaces/{ns}/services/{name}`
pub(super) async fn get(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (ns, name) = path.into_inner();
    get_one(&state, &req, &ns, &name, None)
}

/// `GET .../services/{name}/status`
pub(super) async fn get_status(
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
    super::objects::get(state, req, K, ns, name, sub)
}

/// 400 when the body names a namespace other than the URL's (an empty one is the URL's).
fn check_namespace(svc: &Service, ns: &str) -> Result<()> {
    match svc.metadata.namespace.as_deref() {
        Some(body_ns) if !body_ns.is_empty() && body_ns != ns => Err(SimError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

/// Decodes the body of an update (PUT, or the result of a PATCH) and checks that it names
/// the object of the URL.
fn decode_update(
    value: serde_json::Value,
    validation: FieldValidation,
    ns: &str,
    name: &str,
) -> Result<(Service, Vec<String>)> {
    let (svc, warnings): (Service, _) = decode(K, value, validation)?;
    check_name(svc.metadata.name.as_deref(), name)?;
    check_namespace(&svc, ns)?;
    Ok((svc, warnings))
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
    let (svc, warnings) = decode_update(body_value(&req, &body)?, validation, &ns, &name)?;
    let updated = state
        .store
        .write(|txn| service::update(txn, &ns, &name, svc, part, dry_run))?;
    Ok(with_warnings(
        object_response(&req, &params, StatusCode::OK, &updated),
        &warnings,
    ))
}

/// `PUT .../services/{name}`
pub(super) async fn replace(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    replace_part(state, req, path, body, Part::Main).await
}

/// `PUT .../services/{name}/status`
pub(super) async fn replace_status(
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
    let patch_type = patch_type(&req)?;
    authorize(&state, &req, "patch", K, sub, Some(&ns), Some(&name))?;
    let dry_run = params.dry_run()?;
    let validation = FieldValidation::of(&params)?;
    let (updated, warnings) = state.store.write(|txn| {
        let current = txn
            .get(K, &ns, &name)
            .ok_or_else(|| SimError::not_found("services", &name))?;
        let patched = patch::apply(K, patch_type, &current.value(), &body)?;
        let (svc, warnings) = decode_update(patched, validation, &ns, &name)?;
        let updated = service::update(txn, &ns, &name, svc, part, dry_run)?;
        Ok((updated, warnings))
    })?;
    Ok(with_warnings(
        object_response(&req, &params, StatusCode::OK, &updated),
        &warnings,
    ))
}

/// `PATCH .../services/{name}`
pub(super) async fn patch(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    patch_part(state, req, path, body, Part::Main).await
}

/// `PATCH .../services/{name}/status`
pub(super) async fn patch_status(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    patch_part(state, req, path, body, Part::Status).await
}

/// `DELETE .../services/{name}`: returns the deleted object.
pub(super) async fn delete(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let (ns, name) = path.into_inner();
    delete_one(&state, &req, &body, K, &ns, &name, |txn, dry_run| {
        service::delete(txn, &ns, &name, dry_run)
    })
}

/// `DELETE /api/v1/namespaces/{ns}/services`: deletes every selected Service and returns
/// them as a list.
pub(super) async fn delete_collection(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let ns = path.into_inner();
    let params = Params::of(&req);
    authorize(&state, &req, "deletecollection", K, None, Some(&ns), None)?;
    let dry_run = params.dry_run()?;
    let sel = selectors(K, &params)?;
    let deleted = state.store.write(|txn| {
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
        Ok(out)
    })?;
    let mut meta = serde_json::Map::new();
    meta.insert(
        "resourceVersion".into(),
        state.store.rv().to_string().into(),
    );
    let body = list_body(K, &meta, &deleted);
    Ok(json_response(StatusCode::OK, body, pretty(&req, &params)))
}
