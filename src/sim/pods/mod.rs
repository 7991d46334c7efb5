//! Pods of the simulated cluster, enough for kubectl and portal terminals: list and get
//! (JSON or kubectl's Table), and the streaming subresources speaking the real protocols
//! over WebSocket: `exec` and `attach` (channel protocols v1-v5), `portforward`
//! (SPDY/3.1 tunnelled in WebSocket, or the channel protocol), and `log` (plain text,
//! `follow=true` streams, as plain text or over WebSocket).
//!
//! Routes are added to the simulated API server's app with [`configure`].

pub(crate) mod channel;
pub(crate) mod exec;
pub(crate) mod logs;
pub(crate) mod portforward;
pub(crate) mod spdy;
pub(crate) mod store;
pub(crate) mod ws;

use crate::sim::config::{SeedSource, SimClusterConfig, SimToken};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::sync::Arc;
use store::{Pod, PodStore};

/// Decides whether a request may do `verb` (get, list, exec) on pods in `namespace`
/// (`None`: all namespaces); `Err` is the response to send (401 or 403 `Status`).
pub(crate) type Authorize =
    Arc<dyn Fn(&HttpRequest, &str, Option<&str>) -> Result<(), Refused> + Send + Sync>;

/// A refusal: the error response to send, boxed.
pub(crate) type Refused = Box<HttpResponse>;

/// What the pod routes share.
#[derive(Clone)]
pub struct PodsState {
    /// The pods.
    pub store: Arc<PodStore>,
    /// Access check.
    pub(crate) authorize: Authorize,
}

impl PodsState {
    /// Pods for a simulated cluster: seeded from its seed YAML, with access checked against
    /// its tokens.
    pub fn new(cluster: &SimClusterConfig) -> Self {
        let text = match &cluster.seed {
            Some(SeedSource::Text { text, .. }) => Some(text.clone()),
            Some(SeedSource::File(path)) => std::fs::read_to_string(path).ok(),
            None => None,
        };
        PodsState {
            store: Arc::new(PodStore::seeded(text.as_deref())),
            authorize: token_authorizer(cluster.tokens.clone()),
        }
    }

    /// Replaces the access check (the simulated API server's own).
    pub(crate) fn with_authorize(mut self, authorize: Authorize) -> Self {
        self.authorize = authorize;
        self
    }
}

/// An access check from a cluster's tokens: none configured allows anonymous; otherwise a
/// known bearer token is required, limited to its namespaces and verbs.
pub(crate) fn token_authorizer(tokens: Vec<SimToken>) -> Authorize {
    Arc::new(move |req, verb, ns| {
        if tokens.is_empty() {
            return Ok(());
        }
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = bearer.and_then(|b| tokens.iter().find(|t| t.token == b)) else {
            return Err(Box::new(status(
                401,
                "Unauthorized",
                "Unauthorized".into(),
                None,
            )));
        };
        let ns_ok = match (&token.namespaces, ns) {
            (None, _) => true,
            (Some(list), Some(ns)) => list.iter().any(|n| n == ns),
            (Some(_), None) => false,
        };
        let verb_ok = token
            .verbs
            .as_ref()
            .is_none_or(|v| v.iter().any(|x| x == verb || x == "*"));
        if ns_ok && verb_ok {
            Ok(())
        } else {
            let scope = match ns {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_string(),
            };
            Err(Box::new(status(
                403,
                "Forbidden",
                format!("pods is forbidden: User \"system:serviceaccount:sim:token\" cannot {verb} resource \"pods\" in API group \"\" {scope}"),
                Some(json!({"kind": "pods"})),
            )))
        }
    })
}

/// Registers the pod routes.
pub fn configure(cfg: &mut web::ServiceConfig, state: PodsState) {
    cfg.app_data(web::Data::new(state))
        .route("/api/v1/pods", web::get().to(list_all))
        .service(
            web::resource("/api/v1/namespaces/{ns}/pods")
                .route(web::get().to(list_ns))
                .route(web::post().to(create_pod)),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            web::get().to(get_pod),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/log",
            web::get().to(log),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            web::route().to(exec_handler),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/attach",
            web::route().to(attach_handler),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/portforward",
            web::route().to(portforward_handler),
        );
}

/// A Kubernetes `Status` failure response.
pub(crate) fn status(
    code: u16,
    reason: &str,
    message: String,
    details: Option<Value>,
) -> HttpResponse {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    let mut res =
        HttpResponse::build(StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST));
    res.content_type("application/json");
    if code == 401 {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    res.body(v.to_string())
}

fn bad_request(message: String) -> HttpResponse {
    status(400, "BadRequest", message, None)
}

/// A 400 refusal.
fn refuse(message: String) -> Refused {
    Box::new(bad_request(message))
}

/// The response of a handler written with `?`: the refusal when there is one.
fn respond(result: Result<HttpResponse, Refused>) -> HttpResponse {
    result.unwrap_or_else(|res| *res)
}

fn not_found(name: &str) -> HttpResponse {
    status(
        404,
        "NotFound",
        format!("pods \"{name}\" not found"),
        Some(json!({"name": name, "kind": "pods"})),
    )
}

/// The query as name/value pairs (repeated names kept, as for `command=`).
fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn query_get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn query_bool(q: &[(String, String)], name: &str) -> bool {
    matches!(query_get(q, name), Some("true" | "1" | "True" | "TRUE"))
}

fn wants_table(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=Table"))
}

fn json_response(v: &Value, req: &HttpRequest) -> HttpResponse {
    let pretty = query_bool(&query_pairs(req), "pretty");
    let body = if pretty {
        serde_json::to_string_pretty(v).unwrap_or_default()
    } else {
        v.to_string()
    };
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// `labelSelector` support for lists: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated.
fn matches_selector(pod: &Pod, selector: &str) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                pod.labels.get(k.trim()).map(String::as_str) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                pod.labels.get(k.trim()).map(String::as_str) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                !pod.labels.contains_key(k.trim())
            } else {
                pod.labels.contains_key(term)
            }
        })
}

fn age(pod: &Pod) -> String {
    let secs = (chrono::Utc::now() - pod.created).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn table(pods: &[&Pod], rv: u64) -> Value {
    let col = |name: &str, fmt: &str, desc: &str, priority: u8| json!({"name": name, "type": "string", "format": fmt, "description": desc, "priority": priority});
    let rows: Vec<Value> = pods
        .iter()
        .map(|p| {
            let n = p.containers.len();
            let meta = p.to_json(false)["metadata"].clone();
            json!({
                "cells": [p.name, format!("{n}/{n}"), "Running", "0", age(p), p.pod_ip, p.node, "<none>", "<none>"],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": [
            col("Name", "name", "Name must be unique within a namespace.", 0),
            col("Ready", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
            col("Status", "", "The aggregate status of the containers in this pod.", 0),
            col("Restarts", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
            col("Age", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0),
            col("IP", "", "The IP address of the pod.", 1),
            col("Node", "", "The node the pod is scheduled to.", 1),
            col("Nominated Node", "", "The node the pod may be scheduled to.", 1),
            col("Readiness Gates", "", "The readiness gates of the pod.", 1),
        ],
        "rows": rows,
    })
}

fn list(req: &HttpRequest, state: &PodsState, ns: Option<&str>) -> HttpResponse {
    respond(serve_list(req, state, ns))
}

fn serve_list(
    req: &HttpRequest,
    state: &PodsState,
    ns: Option<&str>,
) -> Result<HttpResponse, Refused> {
    (state.authorize)(req, "list", ns)?;
    let q = query_pairs(req);
    let watch = query_bool(&q, "watch");
    if watch {
        (state.authorize)(req, "watch", ns)?;
    }
    let keep = pod_filter(&q, ns);
    // A watch subscribes before it reads the store: a pod created in between is in both,
    // and the watch sends it once (by resourceVersion).
    let live = watch.then(|| state.store.subscribe());
    let all = state.store.list(ns);
    let pods: Vec<&Pod> = all.iter().filter(|p| keep(p)).collect();
    let rv = state.store.resource_version();
    if let Some(live) = live {
        return Ok(watch_response(req, &q, &pods, live, keep));
    }
    if wants_table(req) {
        return Ok(json_response(&table(&pods, rv), req));
    }
    let items: Vec<Value> = pods.iter().map(|p| p.to_json(false)).collect();
    Ok(json_response(
        &json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        req,
    ))
}

/// Which pods a list or watch selects: its namespace, `labelSelector` and the
/// `fieldSelector`s pods support.
fn pod_filter(q: &[(String, String)], ns: Option<&str>) -> impl Fn(&Pod) -> bool + 'static {
    let selector = query_get(q, "labelSelector").unwrap_or("").to_string();
    let field = query_get(q, "fieldSelector").unwrap_or("").to_string();
    let ns = ns.map(str::to_string);
    move |p: &Pod| {
        ns.as_deref().is_none_or(|n| p.namespace == n)
            && matches_selector(p, &selector)
            && field.split(',').filter(|t| !t.is_empty()).all(|t| {
                match t.split_once('=').map(|(k, v)| (k.trim_end_matches('='), v)) {
                    Some(("metadata.name", v)) => p.name == v,
                    Some(("metadata.namespace", v)) => p.namespace == v,
                    Some(("status.phase", v)) => v == "Running",
                    _ => true,
                }
            })
    }
}

/// A watch of pods: `ADDED` for each pod when no (or a zero) `resourceVersion` is given,
/// then an `ADDED` for each pod created through the API (newer than the given version),
/// until `timeoutSeconds` (default 30 min) ends the stream. Events carry Tables when
/// kubectl asks for them.
fn watch_response(
    req: &HttpRequest,
    q: &[(String, String)],
    pods: &[&Pod],
    live: tokio::sync::broadcast::Receiver<Pod>,
    keep: impl Fn(&Pod) -> bool + 'static,
) -> HttpResponse {
    let since: u64 = query_get(q, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let from_start = matches!(query_get(q, "resourceVersion"), None | Some("") | Some("0"));
    let timeout = match query_get(q, "timeoutSeconds") {
        None => std::time::Duration::from_secs(1800),
        Some(v) => match v.parse::<u64>() {
            Ok(n) => std::time::Duration::from_secs(n),
            Err(_) => return bad_request(format!("invalid timeoutSeconds: {v:?}")),
        },
    };
    let table = wants_table(req);
    let mut initial = String::new();
    // Pods never change once created: the store is its own history. From the start, every
    // pod; from a version, the pods created after it.
    let mut sent = since;
    for p in pods
        .iter()
        .filter(|p| from_start || p.resource_version > since)
    {
        let object = if table {
            self::table(&[p], p.resource_version)
        } else {
            p.to_json(true)
        };
        initial.push_str(&json!({"type": "ADDED", "object": object}).to_string());
        initial.push('\n');
        sent = sent.max(p.resource_version);
    }
    let line = move |p: &Pod| {
        let object = if table {
            self::table(&[p], p.resource_version)
        } else {
            p.to_json(true)
        };
        let mut l = json!({"type": "ADDED", "object": object}).to_string();
        l.push('\n');
        bytes::Bytes::from(l)
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let keep = std::rc::Rc::new(keep);
    let state = (Some(initial), live);
    let body = futures_util::stream::unfold(state, move |(first, mut live)| {
        let keep = keep.clone();
        let next = async move {
            if let Some(s) = first.filter(|s| !s.is_empty()) {
                return Some((Ok::<_, std::io::Error>(bytes::Bytes::from(s)), (None, live)));
            }
            loop {
                let got = tokio::time::timeout_at(deadline, live.recv()).await;
                match got {
                    Ok(Ok(p)) if p.resource_version > sent && keep(&p) => {
                        return Some((Ok(line(&p)), (None, live)));
                    }
                    Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                    // Timed out, or the store is gone.
                    _ => return None,
                }
            }
        };
        next
    });
    HttpResponse::Ok()
        .content_type("application/json;stream=watch")
        .body(actix_web::body::BodyStream::new(body))
}

/// `POST /api/v1/namespaces/{ns}/pods` (JSON or YAML): a pod with the containers, labels
/// and annotations it names, Running at once; watches see it. 409 when the name is taken,
/// 400 without a name or a container.
async fn create_pod(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<PodsState>,
    body: web::Bytes,
) -> HttpResponse {
    let ns = path.into_inner();
    if let Err(refused) = (state.authorize)(&req, "create", Some(&ns)) {
        return *refused;
    }
    let value: Value =
        match serde_json::from_slice(&body).or_else(|_| serde_yaml::from_slice::<Value>(&body)) {
            Ok(v) => v,
            Err(e) => return bad_request(format!("the body is not a Pod: {e}")),
        };
    let Some(name) = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return bad_request("metadata.name: Required value: name is required".into());
    };
    let Some(pod) = store::pod_from_seed(&value, &ns, name, chrono::Utc::now()) else {
        return bad_request(
            "spec.containers: Required value: a pod needs a container with a name".into(),
        );
    };
    match state.store.create(pod) {
        Some(p) => HttpResponse::Created()
            .content_type("application/json")
            .body(p.to_json(true).to_string()),
        None => status(
            409,
            "AlreadyExists",
            format!("pods {name:?} already exists"),
            Some(json!({"name": name, "kind": "pods"})),
        ),
    }
}

async fn list_all(req: HttpRequest, state: web::Data<PodsState>) -> HttpResponse {
    list(&req, &state, None)
}

async fn list_ns(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<PodsState>,
) -> HttpResponse {
    list(&req, &state, Some(&path))
}

/// Looks the pod up after the access check.
fn find(
    req: &HttpRequest,
    state: &PodsState,
    verb: &str,
    ns: &str,
    name: &str,
) -> Result<Pod, Refused> {
    (state.authorize)(req, verb, Some(ns))?;
    state
        .store
        .get(ns, name)
        .ok_or_else(|| Box::new(not_found(name)))
}

async fn get_pod(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<PodsState>,
) -> HttpResponse {
    let (ns, name) = path.into_inner();
    match find(&req, &state, "get", &ns, &name) {
        Ok(pod) if wants_table(&req) => json_response(&table(&[&pod], pod.resource_version), &req),
        Ok(pod) => json_response(&pod.to_json(true), &req),
        Err(res) => *res,
    }
}

/// Resolves `container=`: the pod's only container by default, 400 for an unknown one.
fn container_of(pod: &Pod, q: &[(String, String)]) -> Result<String, Refused> {
    let asked = query_get(q, "container");
    match pod.container(asked) {
        Some(c) => Ok(c.name.clone()),
        None => Err(refuse(format!(
            "container {} is not valid for pod {}",
            asked.unwrap_or(""),
            pod.name
        ))),
    }
}

async fn log(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<(String, String)>,
    state: web::Data<PodsState>,
) -> HttpResponse {
    respond(serve_log(&req, payload, path.into_inner(), &state))
}

fn serve_log(
    req: &HttpRequest,
    payload: web::Payload,
    (ns, name): (String, String),
    state: &PodsState,
) -> Result<HttpResponse, Refused> {
    let pod = find(req, state, "get", &ns, &name)?;
    let q = query_pairs(req);
    let container = container_of(&pod, &q)?;
    if query_bool(&q, "previous") {
        return Err(refuse(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let parse = |k: &str| -> Result<Option<usize>, Refused> {
        match query_get(&q, k) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0 || k == "tailLines")
                .map(|n| Some(n.max(0) as usize))
                .ok_or_else(|| refuse(format!("invalid {k}: {v:?}"))),
        }
    };
    let opts = logs::LogOptions {
        follow: query_bool(&q, "follow"),
        tail_lines: parse("tailLines")?,
        timestamps: query_bool(&q, "timestamps"),
        limit_bytes: parse("limitBytes")?,
    };
    if ws::is_websocket(req) {
        // As the API server's stream reader: each chunk one message, raw bytes
        // (`binary.k8s.io`, or no subprotocol) or base64 text (`base64.binary.k8s.io`).
        let accepted = accept(req, payload, logs::LOG_PROTOCOLS)?;
        let base64 = accepted.protocol.as_deref() == Some("base64.binary.k8s.io");
        actix_web::rt::spawn(logs::websocket_session(
            accepted.rx,
            accepted.tx,
            logs::stream(pod, container, opts),
            base64,
        ));
        return Ok(accepted.response);
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain")
        .body(actix_web::body::BodyStream::new(logs::stream(
            pod, container, opts,
        ))))
}

/// Accepts the WebSocket upgrade with one of `protocols`; a refused handshake is a 400.
fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    protocols: &[&str],
) -> Result<ws::Accepted, Refused> {
    ws::accept(req, payload, protocols).map_err(|e| refuse(e.message))
}

/// Common checks of the streaming subresources: the pod, and that this is a WebSocket
/// upgrade (a SPDY upgrade is refused: the simulated cluster speaks WebSocket only).
fn streaming_pod(
    req: &HttpRequest,
    state: &PodsState,
    ns: &str,
    name: &str,
) -> Result<Pod, Refused> {
    let pod = find(req, state, "exec", ns, name)?;
    if !ws::is_websocket(req) {
        let upgrade = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        return Err(refuse(if upgrade.is_empty() {
            "Upgrade request required".into()
        } else {
            format!(
                "unable to upgrade connection: the simulated cluster supports WebSocket only, not {upgrade:?}"
            )
        }));
    }
    Ok(pod)
}

async fn exec_handler(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<(String, String)>,
    state: web::Data<PodsState>,
) -> HttpResponse {
    respond(remote_command(
        &req,
        payload,
        path.into_inner(),
        &state,
        false,
    ))
}

async fn attach_handler(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<(String, String)>,
    state: web::Data<PodsState>,
) -> HttpResponse {
    respond(remote_command(
        &req,
        payload,
        path.into_inner(),
        &state,
        true,
    ))
}

fn remote_command(
    req: &HttpRequest,
    payload: web::Payload,
    (ns, name): (String, String),
    state: &PodsState,
    attach: bool,
) -> Result<HttpResponse, Refused> {
    let pod = streaming_pod(req, state, &ns, &name)?;
    let q = query_pairs(req);
    let container = container_of(&pod, &q)?;
    let command: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if !attach && command.is_empty() {
        return Err(refuse(
            "you must specify at least one command for the container".into(),
        ));
    }
    let opts = exec::Options {
        command,
        stdin: query_bool(&q, "stdin"),
        stdout: query_bool(&q, "stdout"),
        stderr: query_bool(&q, "stderr"),
        tty: query_bool(&q, "tty"),
        container,
    };
    if !opts.stdin && !opts.stdout && !opts.stderr {
        return Err(refuse(
            "you must specify at least one of stdin, stdout, stderr".into(),
        ));
    }
    let accepted = accept(req, payload, channel::REMOTE_COMMAND_PROTOCOLS)?;
    let (version, framing) = channel::parse_protocol(accepted.protocol.as_deref());
    let ch = channel::Channels::new(accepted.tx, framing);
    actix_web::rt::spawn(exec::session(accepted.rx, ch, version, pod, opts, attach));
    Ok(accepted.response)
}

async fn portforward_handler(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<(String, String)>,
    state: web::Data<PodsState>,
) -> HttpResponse {
    respond(port_forward(&req, payload, path.into_inner(), &state))
}

fn port_forward(
    req: &HttpRequest,
    payload: web::Payload,
    (ns, name): (String, String),
    state: &PodsState,
) -> Result<HttpResponse, Refused> {
    let pod = streaming_pod(req, state, &ns, &name)?;
    let q = query_pairs(req);
    let mut ports: Vec<u16> = Vec::new();
    for (_, v) in q.iter().filter(|(k, _)| k == "ports" || k == "port") {
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => return Err(refuse(format!("invalid port {p:?}: must be 1-65535"))),
            }
        }
    }
    let tunnel = ws::offered_protocols(req)
        .iter()
        .any(|p| p == portforward::SPDY_TUNNEL_PROTOCOL);
    if !tunnel && ports.is_empty() {
        return Err(refuse("query parameter \"ports\" is required".into()));
    }
    let accepted = accept(req, payload, portforward::PORT_FORWARD_PROTOCOLS)?;
    match accepted.protocol.as_deref() {
        Some(portforward::SPDY_TUNNEL_PROTOCOL) => {
            actix_web::rt::spawn(portforward::spdy_session(accepted.rx, accepted.tx, pod));
        }
        p => {
            let framing = if p == Some("v4.base64.channel.k8s.io") {
                channel::Framing::Base64
            } else {
                channel::Framing::Binary
            };
            let ch = channel::Channels::new(accepted.tx, framing);
            actix_web::rt::spawn(portforward::channel_session(accepted.rx, ch, pod, ports));
        }
    }
    Ok(accepted.response)
}
