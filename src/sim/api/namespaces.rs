//! Namespace endpoints: list (with `watch=1`), create, get, replace/patch of metadata,
//! delete (cascading to the namespace's Services) and the `/watch/` paths.

use super::{
    authorize, body_value, check_name, decode, delete_one, list_or_watch, object_response,
    patch_type, watch_path, with_warnings, FieldValidation, Params,
};
use crate::sim::errors::SimError;
use crate::sim::model::Namespace;
use crate::sim::namespace;
use crate::sim::patch;
use crate::sim::state::SimState;
use crate::sim::store::Kind;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

type Result<T> = std::result::Result<T, SimError>;
const K: Kind = Kind::Namespace;

/// `GET /api/v1/namespaces`
pub(super) async fn list(state: web::Data<SimState>, req: HttpRequest) -> Result<HttpResponse> {
    list_or_watch(state, &req, K, None)
}

/// `GET /api/v1/watch/namespaces`
pub(super) async fn watch_list(
    state: web::Data<SimState>,
    req: HttpRequest,
) -> Result<HttpResponse> {
    watch_path(state, &req, K, None, None)
}

/// `GET /api/v1/watch/namespaces/{ns}`
pub(super) async fn watch_one(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    watch_path(state, &req, K, None, Some(&path))
}

/// `GET /api/v1/namespaces/{ns}`
pub(super) async fn get(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let params = Params::of(&req);
    authorize(&state, &req, "get", K, None, None, Some(&path))?;
    let (snap, _) = state.store.snapshot();
    let obj = snap
        .get(K, "", &path)
        .ok_or_else(|| SimError::not_found("namespaces", &path))?;
    Ok(object_response(&req, &params, StatusCode::OK, obj))
}

/// `POST /api/v1/namespaces`
pub(super) async fn create(
    state: web::Data<SimState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let params = Params::of(&req);
    authorize(&state, &req, "create", K, None, None, None)?;
    let dry_run = params.dry_run()?;
    let value = body_value(&req, &body)?;
    let (ns, warnings): (Namespace, _) = decode(K, value, FieldValidation::of(&params)?)?;
    let created = state
        .store
        .write(|txn| namespace::create(txn, ns, dry_run))?;
    Ok(with_warnings(
        object_response(&req, &params, StatusCode::CREATED, &created),
        &warnings,
    ))
}

/// `PUT /api/v1/namespaces/{ns}` (labels, annotations and finalizers).
pub(super) async fn replace(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let params = Params::of(&req);
    authorize(&state, &req, "update", K, None, None, Some(&path))?;
    let dry_run = params.dry_run()?;
    let value = body_value(&req, &body)?;
    let (ns, _): (Namespace, _) = decode(K, value, FieldValidation::of(&params)?)?;
    check_name(ns.metadata.name.as_deref(), &path)?;
    let updated = state
        .store
        .write(|txn| namespace::update(txn, &path, ns, dry_run))?;
    Ok(object_response(&req, &params, StatusCode::OK, &updated))
}

/// `PATCH /api/v1/namespaces/{ns}`
pub(super) async fn patch(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let params = Params::of(&req);
    let patch_type = patch_type(&req)?;
    authorize(&state, &req, "patch", K, None, None, Some(&path))?;
    let dry_run = params.dry_run()?;
    let validation = FieldValidation::of(&params)?;
    let updated = state.store.write(|txn| {
        let current = txn
            .get(K, "", &path)
            .ok_or_else(|| SimError::not_found("namespaces", &path))?;
        let patched = patch::apply(K, patch_type, &current.value(), &body)?;
        let (ns, _): (Namespace, _) = decode(K, patched, validation)?;
        namespace::update(txn, &path, ns, dry_run)
    })?;
    Ok(object_response(&req, &params, StatusCode::OK, &updated))
}

/// `DELETE /api/v1/namespaces/{ns}`
pub(super) async fn delete(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    delete_one(&state, &req, &body, K, "", &path, |txn, dry_run| {
        namespace::delete(txn, &path, dry_run)
    })
}
