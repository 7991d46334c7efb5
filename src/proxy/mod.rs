//! The proxy routes (SPEC §1): choose a cluster ([`choose`]), check the path ([`path`]),
//! filter headers ([`headers`]), apply the credential ([`crate::upstream::credential`]),
//! forward streamed ([`forward`], within the response-head [`deadline`]) or hand an upgrade
//! to [`upgrade`].
//!
//! Every proxied response carries `Kubeplex-Cluster: <key>` (once a cluster is chosen), the
//! ambiguity `Warning` when the name matched several clusters, and `X-Request-Id` (the
//! caller's, or a generated one). One audit line per request is logged through tracing
//! (target `kubeplex::audit`) when its response body ends: request id, cluster key, method,
//! path without query, status, bytes, duration.

pub(crate) mod choose;
pub(crate) mod deadline;
pub(crate) mod forward;
pub(crate) mod front;
pub(crate) mod headers;
pub(crate) mod incoming;
pub(crate) mod path;
pub(crate) mod state;
pub(crate) mod upgrade;

pub(crate) use incoming::Incoming;
pub(crate) use state::{ProxySettings, ProxyState};

use crate::cluster::{Choice, ClusterKey, Registry};
use crate::ops::metrics::{self, Observation, Route};
use crate::status::Error;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Version;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bytes::Bytes;
use serde::Serialize;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// `Kubeplex-Cluster`: the key of the cluster that answered.
pub(crate) const KUBEPLEX_CLUSTER: &str = "kubeplex-cluster";
/// `X-Request-Id`.
pub(crate) const REQUEST_ID: &str = "x-request-id";
/// [`REQUEST_ID`] as a name, built once.
const REQUEST_ID_NAME: HeaderName = HeaderName::from_static(REQUEST_ID);

/// Registers the header route `ANY {base}/proxy/{path...}` (`server.basePath`). The app
/// registers it ahead of the other `{base}` routes (after the plugin route, which a base
/// path of `/api` would otherwise shadow): it carries most requests, and each route tried
/// before it costs a match.
pub(crate) fn configure_header_route(base: &str) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        let base = base.trim_end_matches('/');
        cfg.service(web::scope(&format!("{base}/proxy")).default_service(web::to(by_header)));
    }
}

/// Registers the other routes under `base`: `GET {base}/clusters`,
/// `ANY {base}/clusters/{cluster}/{path...}`, and a 404 for the rest of `{base}`.
///
/// Only static patterns are registered: actix-router matches dynamic segments with a regex
/// on every request, which cost the proxy a sixth of its instructions per request. The
/// routes are told apart by [`dispatch`] with plain prefix checks instead.
pub(crate) fn configure(base: &str) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        let base = base.trim_end_matches('/');
        cfg.service(
            web::scope(base)
                .route("/clusters", web::get().to(list_clusters))
                .default_service(web::to(dispatch)),
        );
    }
}

/// Everything under `{base}` but `GET {base}/clusters` and the header route: the path
/// route, or a 404 `Status`.
async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ProxyState>,
) -> HttpResponse {
    // The rest of the (router-decoded) path after `{base}`; the handlers re-check the raw path.
    let rest = req.match_info().unprocessed();
    if rest.starts_with("/clusters/") {
        by_path(req, payload, state).await
    } else if rest == "/clusters" {
        Ctx::new(req.headers())
            .metered(&state, Route::Clusters)
            .finish(
                req,
                Err(Error::new(
                    crate::status::Reason::MethodNotAllowed,
                    "the clusters list answers GET only",
                )),
            )
    } else {
        unknown_route(&req, &state)
    }
}

/// A path under `{base}` that no route serves: a 404 `Status` naming the routes that are.
pub(crate) fn unknown_route(req: &HttpRequest, state: &ProxyState) -> HttpResponse {
    Ctx::new(req.headers()).metered(state, Route::Proxy).finish(
        req.clone(),
        Err(Error::not_found(format!(
            "no such route; kubeplex serves {base}/proxy/..., {base}/clusters/{{cluster}}/... and GET {base}/clusters",
            base = state.settings.base_path
        ))),
    )
}

/// Any path kubeplex does not serve at all: a 404 `Status`, with a request id and an audit
/// line like every other answer.
pub(crate) async fn no_route(req: HttpRequest) -> HttpResponse {
    Ctx::new(req.headers()).finish(req, Err(Error::not_found("no such route")))
}

/// One entry of `GET {base}/clusters`: Backstage's shape plus the key; no URL, no credential.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterItem<'a> {
    name: &'a str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    locator: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oidc_token_provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboard_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboard_app: Option<&'a str>,
    ambiguous: bool,
}

#[derive(Serialize)]
struct ClusterList<'a> {
    items: Vec<ClusterItem<'a>>,
}

async fn list_clusters(req: HttpRequest, state: web::Data<ProxyState>) -> HttpResponse {
    let start = Instant::now();
    let who = match crate::identity::identify(&state.auth, &req).await {
        Ok(who) => who,
        Err(e) => {
            return Ctx::new(req.headers())
                .metered(&state, Route::Clusters)
                .finish(req, Err(e))
        }
    };
    let reg = state.registry.load();
    let items = reg
        .clusters()
        .iter()
        .filter(|c| who.as_ref().is_none_or(|w| state.auth.policy.may_use(w, c)))
        .map(|c| ClusterItem {
            name: &c.spec.name,
            key: c.key.as_str(),
            title: c.spec.title.as_deref(),
            locator: &c.locator,
            auth_provider: c.spec.auth_provider.as_deref(),
            oidc_token_provider: c.spec.oidc_token_provider.as_deref(),
            dashboard_url: c.spec.dashboard_url.as_deref(),
            dashboard_app: c.spec.dashboard_app.as_deref(),
            ambiguous: c.ambiguous,
        })
        .collect();
    let body = serde_json::to_vec(&ClusterList { items }).unwrap_or_default();
    let res = HttpResponse::Ok()
        .content_type("application/json")
        .body(body);
    let m = &state.metrics;
    let obs = Observation::start(
        m,
        m.series(Route::Clusters, None),
        req.method(),
        200,
        start,
        false,
        false,
    );
    metrics::observed(res, obs)
}

/// What follows `{base}{route}` in the raw request path (still percent-encoded); a 400 when
/// the raw path does not literally start with it (an encoded prefix).
fn after_route<'a>(req: &'a Incoming, state: &ProxyState, route: &str) -> Result<&'a str, Error> {
    let base = state.settings.base_path.as_str();
    req.uri()
        .path()
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix(route))
        .ok_or_else(|| {
            Error::bad_request("the route prefix of the path is percent-encoded; send it plainly")
        })
}

/// The header route, as actix-web routes it: the requests [`front`] leaves to the router
/// (CORS, upgrades, percent-encoded prefixes).
async fn by_header(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ProxyState>,
) -> HttpResponse {
    serve_by_header(Incoming::Web(req), payload.into_inner(), &state).await
}

/// The header route `{base}/proxy/...`: the cluster the header names.
pub(crate) async fn serve_by_header(
    req: Incoming,
    payload: Payload,
    state: &ProxyState,
) -> HttpResponse {
    let mut ctx = Ctx::new(req.headers()).metered(state, Route::Proxy);
    let registry = state.registry.load();
    let result = async {
        crate::identity::identify(&state.auth, &req).await?;
        let choice = &*ctx
            .choice
            .insert(choose::by_header(&registry, req.headers())?);
        let tail = after_route(&req, state, "/proxy")?;
        proxy(&req, payload, state, &registry, choice, tail).await
    }
    .await;
    ctx.finish(req, result)
}

async fn by_path(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ProxyState>,
) -> HttpResponse {
    let req = Incoming::Web(req);
    let payload = payload.into_inner();
    let mut ctx = Ctx::new(req.headers()).metered(&state, Route::Clusters);
    let registry = state.registry.load();
    let result = async {
        crate::identity::identify(&state.auth, &req).await?;
        let rest = after_route(&req, &state, "/clusters/")?;
        let (segment, tail) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let choice = &*ctx.choice.insert(choose::by_segment(&registry, segment)?);
        proxy(&req, payload, &state, &registry, choice, tail).await
    }
    .await;
    ctx.finish(req, result)
}

async fn proxy(
    req: &Incoming,
    payload: Payload,
    state: &ProxyState,
    registry: &Registry,
    choice: &Choice,
    tail: &str,
) -> Result<HttpResponse, Error> {
    check_target(req, tail)?;
    if let Some(who) = crate::identity::of(req) {
        crate::identity::allowed(
            &state.auth,
            &who,
            &choice.cluster,
            req.method().as_str(),
            tail,
            req.query_string(),
        )?;
    }
    check_method(req)?;
    if req.headers().contains_key(actix_web::http::header::UPGRADE) {
        return upgrade::handle(req, payload, state, registry, choice, tail).await;
    }
    forward::forward(req, payload, state, registry, choice, tail).await
}

/// The checks of SPEC §3 every proxied request passes before anything is sent: no
/// absolute-form target, a safe path tail ([`path::check_tail`]), no `TRACE` or `CONNECT`.
/// The plugin proxy applies them too.
pub(crate) fn check_request(req: &Incoming, tail: &str) -> Result<(), Error> {
    check_target(req, tail)?;
    check_method(req)
}

/// No absolute-form target, a safe path tail.
fn check_target(req: &Incoming, tail: &str) -> Result<(), Error> {
    // HTTP/1 only: an HTTP/2 request always has `:scheme` and `:authority`, which the URI
    // carries; they are not a target elsewhere (the upstream URI and `Host` are the
    // cluster's whatever they say).
    let http1 = matches!(
        req.version(),
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
    );
    if http1 && (req.uri().scheme().is_some() || req.uri().authority().is_some()) {
        return Err(Error::bad_request(
            "absolute-form request targets are refused; send the path only",
        ));
    }
    path::check_tail(tail)
}

/// No `TRACE` or `CONNECT`.
fn check_method(req: &Incoming) -> Result<(), Error> {
    // TRACE would reflect the request, credential included (RFC 9110 §9.3.8); CONNECT
    // would open a tunnel to wherever the cluster lets it. Neither goes upstream.
    let m = req.method();
    if m == actix_web::http::Method::TRACE || m == actix_web::http::Method::CONNECT {
        return Err(Error::new(
            crate::status::Reason::MethodNotAllowed,
            format!("{m} is not proxied"),
        ));
    }
    Ok(())
}

/// Per-request context: request id, start time, the chosen cluster, on the plugin proxy's
/// route the plugin and alias (the audit line names them), and where the request is
/// counted (route and metrics; none for paths outside kubeplex's routes).
pub(crate) struct Ctx {
    start: Instant,
    request_id: HeaderValue,
    /// The chosen cluster: its key goes into `Kubeplex-Cluster` and the audit line.
    pub(crate) choice: Option<Choice>,
    /// The plugin and alias of a plugin proxy request (SPEC §7).
    pub(crate) plugin: Option<(std::sync::Arc<str>, std::sync::Arc<str>)>,
    metered: Option<(metrics::Metrics, Route)>,
    /// The drain signal, for proxied watches and followed logs.
    drain: Option<crate::ops::drain::Drain>,
}

/// Whether a request asks for an open-ended answer: a watch, or a followed log. Read once
/// per request, for the metrics and for the drain.
#[derive(Clone, Copy, Default)]
struct Stream {
    watch: bool,
    follow: bool,
}

impl Stream {
    fn of(req: &Incoming) -> Self {
        let q = req.query_string();
        Stream {
            watch: metrics::is_watch(req.path(), q),
            follow: metrics::is_follow(q),
        }
    }
}

impl Ctx {
    /// The context of a request with `headers`: its `X-Request-Id` (or a generated one) and
    /// the start time.
    pub(crate) fn new(headers: &HeaderMap) -> Self {
        let request_id = headers
            .get(REQUEST_ID_NAME)
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.to_str().is_ok())
            .cloned()
            .unwrap_or_else(generate_request_id);
        Ctx {
            start: Instant::now(),
            request_id,
            choice: None,
            plugin: None,
            metered: None,
            drain: None,
        }
    }

    /// Counts the request in `state`'s metrics under `route`, and ends its watch (if it is
    /// one) on SIGTERM.
    pub(crate) fn metered(mut self, state: &ProxyState, route: Route) -> Self {
        self.metered = Some((state.metrics.clone(), route));
        self.drain = Some(state.drain.clone());
        self
    }

    /// Records the response head in the metrics; the observation of the rest of the
    /// response (bytes, duration, open watch), if the request is counted.
    fn observe(
        &self,
        req: &Incoming,
        status: u16,
        tunnel: bool,
        stream: Stream,
    ) -> Option<Observation> {
        let (m, route) = self.metered.as_ref()?;
        let key = self.choice.as_ref().map(|c| &c.cluster.key);
        let series = m.series(*route, key);
        if tunnel {
            // A tunnel counts itself open (`kubeplex_open_tunnels`) and is never timed.
            series.responded(req.method(), status, self.start);
            return None;
        }
        let ok = (200..300).contains(&status);
        let watch = ok && stream.watch;
        let open_ended = ok && stream.follow;
        Some(Observation::start(
            m,
            series,
            req.method(),
            status,
            self.start,
            open_ended,
            watch,
        ))
    }

    /// Turns the result into the response: cluster, warning and request-id headers, and the
    /// audit line when its body ends.
    pub(crate) fn finish(
        self,
        req: impl Into<Incoming>,
        result: Result<HttpResponse, Error>,
    ) -> HttpResponse {
        let req = req.into();
        let mut res = match result {
            Ok(r) => r,
            Err(e) => {
                let r = e.error_response();
                if e.reason.code().is_server_error() {
                    tracing::warn!(request_id = ?self.request_id, error = %e, "proxy error");
                }
                r
            }
        };
        let h = res.headers_mut();
        h.insert(REQUEST_ID_NAME, self.request_id.clone());
        let mut cluster = None;
        if let Some(choice) = &self.choice {
            if let Some(v) = &choice.cluster.key_header {
                h.insert(HeaderName::from_static(KUBEPLEX_CLUSTER), v.clone());
            }
            if let Some(w) = &choice.warning {
                h.append(actix_web::http::header::WARNING, w.clone());
            }
            cluster = Some(choice.cluster.key.clone());
        }
        let tunnel = res
            .extensions()
            .get::<upgrade::TunnelAuditHandle>()
            .cloned();
        if let Some(t) = tunnel {
            // A tunnel logs its own audit line when it closes.
            t.set_request_id(self.request_id.to_str().unwrap_or(""));
            self.observe(&req, res.status().as_u16(), true, Stream::default());
            return res;
        }
        let stream = Stream::of(&req);
        let obs = self.observe(&req, res.status().as_u16(), false, stream);
        if let Some(drain) = &self.drain {
            if res.status().is_success() && (stream.watch || stream.follow) {
                // Ends at an event (or log line) boundary on SIGTERM.
                res = crate::ops::drain::events(res, drain);
            }
        }
        let audit = Audit {
            request_id: self.request_id,
            cluster,
            plugin: self.plugin,
            req,
            status: res.status().as_u16(),
            start: self.start,
            bytes: 0,
            done: false,
            upstream_failed: false,
            obs,
        };
        res.map_body(|_, body| {
            let mut audit = audit;
            audit.done = matches!(body.size(), BodySize::None | BodySize::Sized(0));
            AuditedBody { inner: body, audit }.boxed()
        })
    }
}

fn generate_request_id() -> HeaderValue {
    let n: u128 = rand::random();
    // 32 lowercase hex digits, written by hand (`{:032x}` of a `u128` showed in profiles),
    // a byte (two digits) at a time. One allocation, whose clones (the response header's,
    // the audit line's) only count references: a `Bytes` made from a `Vec` allocates again
    // on its first clone.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 32];
    for (pair, byte) in digits.chunks_exact_mut(2).zip(n.to_be_bytes()) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 15)];
    }
    // SAFETY: lowercase hex digits only, all valid in a header value (the check this skips
    // looked at each of the 32 bytes).
    unsafe { HeaderValue::from_maybe_shared_unchecked(Bytes::from_owner(digits)) }
}

/// The audit record of one proxied request, logged when the response body ends or is
/// dropped (client gone).
struct Audit {
    request_id: HeaderValue,
    cluster: Option<ClusterKey>,
    /// The plugin and alias (plugin proxy requests only).
    plugin: Option<(std::sync::Arc<str>, std::sync::Arc<str>)>,
    /// The request: its method and path are logged, without copying them per request.
    req: Incoming,
    status: u16,
    start: Instant,
    bytes: u64,
    done: bool,
    /// The cluster's body failed (cut short, reset): the client's response ended incomplete.
    upstream_failed: bool,
    /// Bytes and duration for `/metrics`.
    obs: Option<Observation>,
}

impl Audit {
    /// How the response body ended: `complete`, `upstream body cut short` or `client gone`.
    fn outcome(&self) -> &'static str {
        if self.done {
            "complete"
        } else if self.upstream_failed {
            "upstream body cut short"
        } else {
            "client gone"
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        // One clock read for the metrics' duration, the audit line's and its timestamp.
        let end = Instant::now();
        if let Some(obs) = &mut self.obs {
            obs.ended(end);
        }
        if !tracing::enabled!(target: "kubeplex::audit", tracing::Level::INFO) {
            return;
        }
        // To the microsecond (formatted without a float in the human line).
        let micros = u64::try_from(end.saturating_duration_since(self.start).as_micros())
            .unwrap_or(u64::MAX);
        let duration_ms = micros as f64 / 1000.0;
        // Built directly when the log is the human format (the same bytes, at half the
        // cost: this line is written for every request); through `tracing` otherwise.
        if let Some((mut line, to)) =
            crate::telemetry::line_at(&tracing::Level::INFO, "kubeplex::audit", "proxied", end)
        {
            let who = crate::identity::of(&self.req);
            line.str("request_id", self.request_id.to_str().unwrap_or(""));
            line.display("subject", who.as_ref().map_or("-", |w| w.subject.as_str()));
            line.str("cluster", self.cluster.as_ref().map_or("-", |c| c.as_str()));
            if let Some((plugin, alias)) = &self.plugin {
                line.str("plugin", plugin);
                line.str("alias", alias);
            }
            line.display("method", self.req.method().as_str());
            line.display("path", self.req.uri().path());
            line.u64("status", self.status.into());
            line.u64("bytes", self.bytes);
            line.bool("complete", self.done);
            line.str("outcome", self.outcome());
            line.millis("duration_ms", micros);
            line.finish(|b| to.push(b));
            return;
        }
        tracing::info!(
            target: "kubeplex::audit",
            request_id = self.request_id.to_str().unwrap_or(""),
            subject = %crate::identity::subject_of(&self.req),
            cluster = self.cluster.as_ref().map_or("-", |c| c.as_str()),
            plugin = self.plugin.as_ref().map(|p| &*p.0),
            alias = self.plugin.as_ref().map(|p| &*p.1),
            method = %self.req.method(),
            path = %self.req.uri().path(),
            status = self.status,
            bytes = self.bytes,
            complete = self.done,
            outcome = self.outcome(),
            duration_ms,
            "proxied"
        );
    }
}

/// A response body that counts the bytes sent for the audit line.
struct AuditedBody {
    inner: BoxBody,
    audit: Audit,
}

impl MessageBody for AuditedBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.audit.bytes += b.len() as u64;
                if let Some(o) = &this.audit.obs {
                    o.sent(b.len());
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(None) => {
                this.audit.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.audit.upstream_failed = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_request_ids_are_32_lowercase_hex_digits_and_differ() {
        let a = super::generate_request_id();
        let b = super::generate_request_id();
        for id in [&a, &b] {
            let s = id.to_str().unwrap();
            assert_eq!(s.len(), 32, "{s}");
            assert!(
                s.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{s}"
            );
        }
        assert_ne!(a, b);
    }
}
