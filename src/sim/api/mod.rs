//! The HTTP API of the simulated cluster: routes for namespaces and Services (items,
//! collections, `status`, `proxy`, `/watch/` paths), and the request helpers they share
//! (query parameters, body decoding with `fieldValidation`, JSON and Table responses,
//! `pretty`).

mod list;
mod namespaces;
pub(crate) mod objects;
mod proxy;
mod services;
mod watch;

use super::errors::SimError;
use super::patch::PatchType;
use super::state::{Attributes, SimState};
use super::store::{Kind, Stored, Txn};
use super::{strict, table};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) use proxy::ProxyClient;

/// Registers every route of the simulated API (discovery included).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    super::discovery::configure(cfg);
    let na = || web::to(method_not_allowed);
    cfg.service(
        web::resource("/api/v1/namespaces")
            .route(web::get().to(namespaces::list))
            .route(web::post().to(namespaces::create))
            .default_service(na()),
    )
    .service(
        web::resource("/api/v1/namespaces/{ns}")
            .route(web::get().to(namespaces::get))
            .route(web::put().to(namespaces::replace))
            .route(web::patch().to(namespaces::patch))
            .route(web::delete().to(namespaces::delete))
            .default_service(na()),
    )
    .service(
        web::resource("/api/v1/services")
            .route(web::get().to(services::list_all))
            .route(web::post().to(services::create_any))
            .default_service(na()),
    )
    .service(
        web::resource("/api/v1/namespaces/{ns}/services")
            .route(web::get().to(services::list))
            .route(web::post().to(services::create))
            .route(web::delete().to(services::delete_collection))
            .default_service(na()),
    )
    .service(
        web::resource("/api/v1/namespaces/{ns}/services/{name}")
            .route(web::get().to(services::get))
            .route(web::put().to(services::replace))
            .route(web::patch().to(services::patch))
            .route(web::delete().to(services::delete))
            .default_service(na()),
    )
    .service(
        web::resource("/api/v1/namespaces/{ns}/services/{name}/status")
            .route(web::get().to(services::get_status))
            .route(web::put().to(services::replace_status))
            .route(web::patch().to(services::patch_status))
            .default_service(na()),
    )
    .service(
        web::resource([
            "/api/v1/namespaces/{ns}/services/{name}/proxy",
            "/api/v1/namespaces/{ns}/services/{name}/proxy/{tail:.*}",
        ])
        .route(web::get().to(proxy::forward))
        .route(web::head().to(proxy::forward))
        .route(web::post().to(proxy::forward))
        .route(web::put().to(proxy::forward))
        .route(web::patch().to(proxy::forward))
        .route(web::delete().to(proxy::forward))
        .route(web::method(actix_web::http::Method::OPTIONS).to(proxy::forward))
        .default_service(na()),
    )
    .service(
        web::resource("/api/v1/watch/namespaces")
            .route(web::get().to(namespaces::watch_list))
            .default_service(na()),
    )
    .service(
        web::resource("/api/v1/watch/namespaces/{ns}")
            .route(web::get().to(namespaces::watch_one))
            .default_service(na()),
    )
    .service(
        web::resource("/api/v1/watch/services")
            .route(web::get().to(services::watch_all))
            .default_service(na()),
    )
    .service(
        web::resource("/api/v1/watch/namespaces/{ns}/services")
            .route(web::get().to(services::watch_ns))
            .default_service(na()),
    )
    .service(
        web::resource("/api/v1/watch/namespaces/{ns}/services/{name}")
            .route(web::get().to(services::watch_one))
            .default_service(na()),
    );
}

async fn method_not_allowed() -> HttpResponse {
    actix_web::ResponseError::error_response(&SimError::method_not_allowed())
}

/// 404 for paths the server does not serve.
pub(crate) async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&SimError::no_route())
}

/// The query parameters of a request.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses the query string.
    pub(crate) fn of(req: &HttpRequest) -> Params {
        Params(
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// A parameter.
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A boolean parameter (`true`/`1`/`false`/`0`; absent or empty is false).
    pub(crate) fn flag(&self, k: &str) -> Result<bool, SimError> {
        match self.get(k) {
            None | Some("") => Ok(false),
            // Go's strconv.ParseBool.
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
            Some(v) => Err(SimError::bad_request(format!(
                "invalid boolean value for {k}: {v:?}"
            ))),
        }
    }

    /// `dryRun=All`.
    pub(crate) fn dry_run(&self) -> Result<bool, SimError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(v) => Err(SimError::bad_request(format!(
                "dryRun: Unsupported value: {v:?}: supported values: \"All\""
            ))),
        }
    }
}

/// A request header as text (`None` when absent or not visible ASCII).
fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The lower-cased media type of a `Content-Type` value, without its parameters.
pub(crate) fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether to indent JSON (`pretty=true`, or a curl/wget user agent as a real server does).
pub(crate) fn pretty(req: &HttpRequest, params: &Params) -> bool {
    match params.get("pretty") {
        Some(v) => matches!(v, "true" | "1" | "True"),
        None => header(req, "user-agent")
            .is_some_and(|ua| ua.starts_with("curl") || ua.starts_with("Wget")),
    }
}

/// A JSON response from compact bytes, indented when asked.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>, pretty: bool) -> HttpResponse {
    let mut body = if pretty {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => serde_json::to_vec_pretty(&v).unwrap_or(body),
            Err(_) => body,
        }
    } else {
        body
    };
    body.push(b'\n');
    HttpResponse::build(status)
        .insert_header(("Content-Type", "application/json"))
        .body(body)
}

/// The `Accept` header.
pub(crate) fn accept(req: &HttpRequest) -> &str {
    header(req, "accept").unwrap_or("")
}

/// A Table of objects of `kind` (Services through `table::service_table`).
pub(crate) fn table_of(
    kind: Kind,
    items: &[Value],
    include_object: &str,
    list_meta: Value,
) -> Value {
    if kind == Kind::Service {
        table::service_table(items, include_object, list_meta)
    } else if kind == Kind::Namespace {
        table::namespace_table(items, include_object, list_meta)
    } else {
        table::object_table(kind.info(), items, include_object, list_meta)
    }
}

/// A Table response.
pub(crate) fn table_response(table: Value, pretty: bool) -> HttpResponse {
    let mut resp = json_response(
        StatusCode::OK,
        serde_json::to_vec(&table).unwrap_or_default(),
        pretty,
    );
    resp.headers_mut().insert(
        actix_web::http::header::CONTENT_TYPE,
        actix_web::http::header::HeaderValue::from_static(
            "application/json;as=Table;v=v1;g=meta.k8s.io",
        ),
    );
    resp
}

/// One object as a response (Table when the Accept header asks for one).
pub(crate) fn object_response(
    req: &HttpRequest,
    params: &Params,
    status: StatusCode,
    obj: &Stored,
) -> HttpResponse {
    let pretty = pretty(req, params);
    if table::wants_table(accept(req)) {
        let meta = serde_json::json!({"resourceVersion": obj.rv.to_string()});
        let include = params.get("includeObject").unwrap_or("Metadata");
        return table_response(table_of(obj.kind(), &[obj.value()], include, meta), pretty);
    }
    json_response(status, obj.full_json(), pretty)
}

/// The patch type of a PATCH request's `Content-Type` (415 for any other).
pub(crate) fn patch_type(req: &HttpRequest) -> Result<PatchType, SimError> {
    PatchType::from_content_type(header(req, "content-type").unwrap_or(""))
}

/// Decodes a request body (JSON or YAML) to a JSON value; 400 when malformed, 415 for
/// other media types.
pub(crate) fn body_value(req: &HttpRequest, body: &[u8]) -> Result<Value, SimError> {
    let base = media_type(header(req, "content-type").unwrap_or("application/json"));
    match base.as_str() {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            SimError::bad_request(format!(
                "couldn't get version/kind; json parse error: {e}"
            ))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let y: serde_yaml::Value = serde_yaml::from_slice(body).map_err(|e| {
                SimError::bad_request(format!("couldn't get version/kind; yaml parse error: {e}"))
            })?;
            serde_json::to_value(y).map_err(|e| SimError::bad_request(e.to_string()))
        }
        // kubectl's typed-client commands (`create namespace`, `create service ...`).
        "application/vnd.kubernetes.protobuf" => {
            crate::sim::protobuf::decode(body).map_err(|e| match e {
                crate::sim::protobuf::ProtoError::UnsupportedKind(_) => {
                    SimError::new(415, "UnsupportedMediaType", e.to_string())
                }
                crate::sim::protobuf::ProtoError::Malformed(_) => {
                    SimError::bad_request(e.to_string())
                }
            })
        }
        _ => Err(SimError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {base:?})"
            ),
        )),
    }
}

/// The `fieldValidation` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop them with a `Warning` header each (the default).
    Warn,
    /// Refuse them (400).
    Strict,
}

impl FieldValidation {
    /// From the query.
    pub(crate) fn of(params: &Params) -> Result<FieldValidation, SimError> {
        match params.get("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(v) => Err(SimError::bad_request(format!(
                "fieldValidation: Unsupported value: {v:?}: supported values: \"Ignore\", \"Warn\", \"Strict\""
            ))),
        }
    }
}

/// Decodes `value` as the typed object of `kind`, applying `fieldValidation`: returns the
/// object and the warnings to send.
pub(crate) fn decode<T: DeserializeOwned>(
    kind: Kind,
    value: Value,
    validation: FieldValidation,
) -> Result<(T, Vec<String>), SimError> {
    if !value.is_object() {
        return Err(SimError::bad_request(format!(
            "{} in version \"v1\" cannot be handled as a {}: json: cannot unmarshal {} into Go value of type struct",
            kind.name(),
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
        if v != "v1" {
            return Err(SimError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version (v1)"
            )));
        }
    }
    if let Some(k) = value.get("kind").and_then(Value::as_str) {
        if k != kind.name() {
            return Err(SimError::bad_request(format!(
                "{k} in version \"v1\" cannot be handled as a {0}: converting (v1.{k}) to (core.{0}): unknown conversion",
                kind.name()
            )));
        }
    }
    let unknown = if validation == FieldValidation::Ignore {
        Vec::new()
    } else {
        strict::unknown_fields_of(kind.name(), &value)
    };
    if validation == FieldValidation::Strict {
        if let Some(message) = strict::strict_error_message(kind.name(), &unknown) {
            return Err(SimError::bad_request(message));
        }
    }
    let obj: T = serde_json::from_value(value).map_err(|e| {
        SimError::bad_request(strict::cannot_handle(kind.name(), "v1", &e.to_string()))
    })?;
    let warnings = unknown
        .iter()
        .map(|f| strict::unknown_field_warning(f))
        .collect();
    Ok((obj, warnings))
}

/// Adds `Warning: 299 - "..."` headers.
pub(crate) fn with_warnings(mut resp: HttpResponse, warnings: &[String]) -> HttpResponse {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&text) {
            resp.headers_mut()
                .append(actix_web::http::header::WARNING, v);
        }
    }
    resp
}

/// A collection GET: a list, or a watch with `watch=1`.
pub(crate) fn list_or_watch(
    state: web::Data<SimState>,
    req: &HttpRequest,
    kind: Kind,
    namespace: Option<&str>,
) -> Result<HttpResponse, SimError> {
    let params = Params::of(req);
    if params.flag("watch")? {
        authorize(&state, req, "watch", kind, None, namespace, None)?;
        return watch::watch(state, req, &params, kind, namespace, None);
    }
    authorize(&state, req, "list", kind, None, namespace, None)?;
    list::list(&state, req, &params, kind, namespace)
}

/// A GET on a `/watch/` path: a watch of a collection, or of one object when `name` is set.
pub(crate) fn watch_path(
    state: web::Data<SimState>,
    req: &HttpRequest,
    kind: Kind,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<HttpResponse, SimError> {
    let params = Params::of(req);
    authorize(&state, req, "watch", kind, None, namespace, name)?;
    watch::watch(state, req, &params, kind, namespace, name)
}

/// 400 when the body names an object other than the URL's.
pub(crate) fn check_name(body_name: Option<&str>, url_name: &str) -> Result<(), SimError> {
    match body_name {
        Some(n) if n != url_name => Err(SimError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({url_name})"
        ))),
        _ => Ok(()),
    }
}

/// Shorthand for [`SimState::authorize`].
pub(crate) fn authorize(
    state: &SimState,
    req: &HttpRequest,
    verb: &str,
    kind: Kind,
    subresource: Option<&str>,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<(), SimError> {
    state.authorize(
        req,
        Attributes {
            verb,
            resource: kind.resource(),
            group: kind.info().group,
            subresource,
            namespace,
            name,
        },
    )
}

/// What a DELETE body's `DeleteOptions` (JSON, YAML or, from typed clients, protobuf) asks:
/// preconditions (uid, resourceVersion) and `dryRun: ["All"]` (kubectl's
/// `delete --dry-run=server` sends it there, not in the query).
pub(crate) fn delete_preconditions(
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Option<String>, Option<String>, bool), SimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, None, false));
    }
    let v = body_value(req, body)?;
    let pre = v.get("preconditions");
    let get = |k: &str| {
        pre.and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let dry_run = match v.get("dryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Array(items)) if items.is_empty() => false,
        Some(Value::Array(items)) if items.iter().all(|i| i == "All") => true,
        Some(other) => {
            return Err(SimError::bad_request(format!(
                "dryRun: Unsupported value: {other}: supported values: \"All\""
            )))
        }
    };
    Ok((get("uid"), get("resourceVersion"), dry_run))
}

/// A DELETE of one object (`namespace` `""` for a cluster-scoped one): reads the
/// `DeleteOptions`, checks its preconditions against the stored object, then runs
/// `delete(txn, dry_run)` and returns the deleted object.
pub(crate) fn delete_one(
    state: &SimState,
    req: &HttpRequest,
    body: &[u8],
    kind: Kind,
    namespace: &str,
    name: &str,
    delete: impl FnOnce(&mut Txn<'_>, bool) -> Result<Arc<Stored>, SimError>,
) -> Result<HttpResponse, SimError> {
    let params = Params::of(req);
    let scope = Some(namespace).filter(|ns| !ns.is_empty());
    authorize(state, req, "delete", kind, None, scope, Some(name))?;
    let (uid, rv, body_dry_run) = delete_preconditions(req, body)?;
    let dry_run = params.dry_run()? || body_dry_run;
    let deleted = state.store.write(|txn| {
        if let Some(current) = txn.get(kind, namespace, name) {
            check_preconditions(&current, &uid, &rv)?;
        }
        delete(txn, dry_run)
    })?;
    Ok(object_response(req, &params, StatusCode::OK, &deleted))
}

/// Checks DELETE preconditions against the stored object (409 on mismatch).
pub(crate) fn check_preconditions(
    obj: &Stored,
    uid: &Option<String>,
    rv: &Option<String>,
) -> Result<(), SimError> {
    let resource = &obj.kind().qualified_resource();
    if let Some(uid) = uid {
        let actual = obj.object.meta().uid.clone().unwrap_or_default();
        if *uid != actual {
            return Err(SimError::conflict(
                resource,
                &obj.name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = rv {
        if *rv != obj.rv.to_string() {
            return Err(SimError::conflict(
                resource,
                &obj.name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    obj.rv
                ),
            ));
        }
    }
    Ok(())
}
