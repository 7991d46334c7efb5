//! Streaming forward of one request to one cluster (SPEC §3), with hyper's HTTP/1 client
//! ([`crate::upstream::client`]).
//!
//! Why hyper and not awc for forwarded requests: awc's HTTP/1 client took a `1xx` for the
//! final response and pooled the connection (the next caller then got this caller's
//! response), ended a chunked body cut short as if complete, and wrote the whole request body
//! before reading an early answer. hyper consumes informational responses, reports a body
//! cut short as an error (the client's response then ends without its final chunk, so the
//! client sees it incomplete), reads the response while it sends, and keeps a per-cluster
//! idle pool that drops connections the cluster closed. awc still opens the WebSocket
//! tunnels (their own connections, never pooled).
//!
//! The request is rebuilt with the filtered headers (each value kept, repeated ones too),
//! the credential of SPEC §3 and the body streamed through a small channel (the client
//! needs a `Send` body; the caller's payload is read by a local task), with the caller's
//! `Content-Length` when it sent one, chunked otherwise, and no body at all when there is
//! none. The response body is a `SizedStream` or `BodyStream`, never
//! `HttpResponse::streaming`, which would add a `Content-Type` the cluster did not send.
//!
//! A bodyless idempotent request (GET, HEAD, OPTIONS, DELETE, PUT) whose pooled connection
//! the cluster closed before answering is sent once more on a fresh connection; POST and
//! PATCH never are.
//!
//! Time bounds: connect (and TLS handshake) by the connector; the response head by
//! `responseHeadTimeout`, counted from the last request body chunk that went out (an upload
//! that keeps moving is never cut off); bodies, such as a watch open for hours, never.

use crate::cluster::{Choice, Registry};
use crate::identity::Identity;
use crate::ops::metrics::UpstreamKind;
use crate::proxy::deadline;
use crate::proxy::headers::{self, RequestFilter};
use crate::proxy::incoming::{Incoming, RequestView};
use crate::proxy::ProxyState;
use crate::status::Error;
use crate::upstream::client::{self, RequestBody, Upstream};
use crate::upstream::credential;
use crate::upstream::{h1, HeaderSink};
use actix_web::body::{BodyStream, BoxBody, MessageBody, SizedStream};
use actix_web::dev::{Payload, ResponseHead};
use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;

/// The upstream request, ready to send: the worker's upstream for the cluster, the absolute
/// URI and the filtered headers with the credential.
pub(crate) struct Prepared {
    /// This worker's upstream for the chosen cluster.
    pub up: Rc<Upstream>,
    /// origin + cluster path prefix + tail + query; empty when `direct` holds the request
    /// (its head has the path).
    pub uri: String,
    /// The headers to send, already in hyper's types (no `Host`: the client sets the
    /// cluster's); empty when `direct` holds them.
    pub headers: http1::HeaderMap,
    /// The request for the direct HTTP/1.1 path ([`Via::Direct`]): the target's pool and
    /// the request head with the headers written in.
    pub direct: Option<(Rc<h1::Pool>, h1::RequestHead)>,
}

/// Which client a request is prepared for, as far as its headers go.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Via<'a> {
    /// hyper's client.
    Hyper,
    /// A WebSocket tunnel: `Upgrade` is kept.
    Tunnel,
    /// The direct HTTP/1.1 client for this method when the target has one (a plain
    /// `http://` target; [`may_go_direct`] says which requests may), hyper's otherwise.
    Direct(&'a str),
}

impl Prepared {
    /// The request for `tail` and `query` on `up`, its headers written by `fill`: straight
    /// into the direct path's request head when `via` allows it and the target has that
    /// path (no URI string or header map is built), into hyper's map (room for `capacity`
    /// headers) with the absolute URI otherwise.
    pub(crate) fn new(
        up: Rc<Upstream>,
        tail: &str,
        query: Option<&str>,
        via: Via<'_>,
        capacity: usize,
        fill: impl FnOnce(&mut dyn HeaderSink) -> Result<(), Error>,
    ) -> Result<Prepared, Error> {
        if let (Via::Direct(method), Some(pool)) = (via, up.h1.as_ref()) {
            let mut head = pool
                .request_head(method, &up.path(tail, query))
                .ok_or_else(|| Error::bad_request("the request path is not a valid URI path"))?;
            fill(&mut head)?;
            let direct = Some((pool.clone(), head));
            return Ok(Prepared {
                up,
                uri: String::new(),
                headers: http1::HeaderMap::new(),
                direct,
            });
        }
        let uri = up.target(tail, query)?;
        let mut headers = http1::HeaderMap::with_capacity(capacity);
        fill(&mut headers)?;
        Ok(Prepared {
            up,
            uri,
            headers,
            direct: None,
        })
    }
}

/// Who a request to a cluster is made for: the headers the credential rules of SPEC §3 and
/// the header filter read, and the peer address (`X-Forwarded-For`). The caller's own
/// request for the proxy and aggregate routes; for the Backstage routes, headers made from
/// the body's `auth`.
pub(crate) struct Caller<'a> {
    /// The caller's headers.
    pub headers: &'a actix_web::http::header::HeaderMap,
    /// The caller's address.
    pub peer: Option<std::net::IpAddr>,
    /// The verified caller (mode `jwt`), for impersonation.
    pub identity: Option<Arc<Identity>>,
}

impl<'a> Caller<'a> {
    /// The caller of `req` (its identity, when [`crate::identity::authorize`] verified one).
    pub(crate) fn of(req: &'a impl RequestView) -> Self {
        let head = req.request_head();
        Caller {
            headers: &head.headers,
            peer: head.peer_addr.map(|a| a.ip()),
            identity: crate::identity::of(req),
        }
    }
}

/// Builds the upstream request for `tail` on `cluster`: URI (prefix + tail + query),
/// filtered headers and the credential of SPEC §3, for the client `via` says. Shared with
/// the WebSocket tunnel.
pub(crate) fn prepare(
    req: &impl RequestView,
    state: &ProxyState,
    registry: &Registry,
    choice: &Choice,
    tail: &str,
    via: Via<'_>,
) -> Result<Prepared, Error> {
    let caller = Caller::of(req);
    prepare_for(
        &caller,
        req.request_head().uri.query(),
        state,
        registry,
        choice,
        tail,
        via,
    )
}

/// [`prepare`] for `caller`, with `query` as the upstream query.
pub(crate) fn prepare_for(
    caller: &Caller<'_>,
    query: Option<&str>,
    state: &ProxyState,
    registry: &Registry,
    choice: &Choice,
    tail: &str,
    via: Via<'_>,
) -> Result<Prepared, Error> {
    let server = &state.settings;
    let cluster = &choice.cluster;
    let up = client::for_cluster(registry, cluster, server.connect_timeout)?;
    let cred = credential::resolve(
        caller.headers,
        &cluster.spec,
        &up.token,
        state.auth.checks(),
        cluster.key.as_str(),
    )?;
    let filter = RequestFilter {
        keep_impersonate: cred.source.is_callers_own(),
        keep_upgrade: matches!(via, Via::Tunnel),
        plugin: false,
        peer: caller.peer,
        peer_trusted: headers::is_trusted(caller.peer, &server.trusted_proxies),
        max_header_bytes: server.max_header_bytes,
    };
    // The cluster's RBAC per portal user: the server-side credential acts as the caller.
    let impersonate = caller
        .identity
        .as_deref()
        .filter(|_| cluster.spec.impersonate && !cred.source.is_callers_own());
    Prepared::new(up, tail, query, via, caller.headers.len() + 2, |dst| {
        upstream_headers(caller, &filter, cred.authorization.as_ref(), dst)?;
        if let Some(who) = impersonate {
            crate::identity::impersonate(who, dst)?;
        }
        Ok(())
    })
}

/// Writes the headers to send upstream for `caller` into `dst`: its own, filtered by
/// `filter` (SPEC §3, and §7 for a plugin), then `authorization` as the credential (marked
/// sensitive).
pub(crate) fn upstream_headers(
    caller: &Caller<'_>,
    filter: &RequestFilter,
    authorization: Option<&HeaderValue>,
    dst: &mut dyn HeaderSink,
) -> Result<(), Error> {
    headers::copy_request_headers(caller.headers, dst, filter)?;
    if let Some(a) = authorization {
        dst.put("authorization", a.as_bytes(), true);
    }
    Ok(())
}

/// What the request body looks like.
enum BodyKind {
    None,
    Sized(u64),
    Chunked,
    /// HTTP/2 without `content-length`: a body if the stream has DATA frames, which only
    /// the first poll of the payload tells (a `HEADERS` frame with `END_STREAM` has none).
    H2Unknown,
}

fn body_kind(req: &Incoming) -> Result<BodyKind, Error> {
    let h = req.headers();
    if h.contains_key(actix_web::http::header::TRANSFER_ENCODING) {
        return Ok(BodyKind::Chunked);
    }
    match h.get(actix_web::http::header::CONTENT_LENGTH) {
        None if req.version() == actix_web::http::Version::HTTP_2 => Ok(BodyKind::H2Unknown),
        None => Ok(BodyKind::None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(BodyKind::Sized)
            .ok_or_else(|| Error::bad_request("the Content-Length header is not a number")),
    }
}

/// A request body fed by a local task that reads the caller's payload (which is not
/// `Send`); `size` is the caller's `Content-Length`, if any.
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    size: Option<u64>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(http_body::Frame::data)))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.size {
            Some(n) => http_body::SizeHint::with_exact(n),
            None => http_body::SizeHint::default(),
        }
    }
}

/// What the task streaming an upload tells the forwarder: when a chunk last went out (the
/// response-head timeout counts from there) and whether the caller stalled longer than
/// `bodyIdleTimeout`. Only requests with a body have one.
struct Upload {
    last: Cell<Instant>,
    stalled: Cell<bool>,
    /// `kubeplex_bytes_total{direction="in"}`.
    bytes_in: prometheus_client::metrics::counter::Counter,
}

/// Starts the task that streams `payload` (after `first`, a chunk already read) into a
/// body, noting in `upload` when each chunk was handed on and whether the caller stalled
/// longer than `idle`. The task ends when the payload ends or the client stops reading the
/// body (an early answer).
fn stream_body(
    first: Option<Bytes>,
    payload: Payload,
    size: Option<u64>,
    expect: Option<Arc<tokio::sync::Notify>>,
    limits: &Limits,
) -> (Rc<Upload>, RequestBody) {
    let idle = limits.body_idle;
    let upload = Rc::new(Upload {
        last: Cell::new(Instant::now()),
        stalled: Cell::new(false),
        bytes_in: limits.metrics.bytes_in().clone(),
    });
    let state = upload.clone();
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    actix_web::rt::spawn(async move {
        if let Some(go) = expect {
            // `Expect: 100-continue`: the caller's body is not asked for (so the caller gets
            // no `100 Continue`) until the cluster says `100 Continue`, or stays silent for a
            // second (RFC 9110 §10.1.1: then send anyway); a final answer first (a 401) ends
            // it here and the caller never sends the body.
            tokio::select! {
                _ = go.notified() => {}
                _ = tokio::time::sleep(EXPECT_WAIT) => {}
                _ = tx.closed() => return,
            }
        }
        let mut payload = payload;
        if let Some(b) = first {
            state.bytes_in.inc_by(b.len() as u64);
            if tx.send(Ok(b)).await.is_err() {
                return;
            }
            state.last.set(Instant::now());
        }
        loop {
            let chunk = match tokio::time::timeout(idle, payload.next()).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return,
                Err(_) => {
                    // The caller stalled: abandon the upload (the cluster sees the request
                    // aborted) and answer 408.
                    state.stalled.set(true);
                    let _ = tx
                        .send(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the request body stalled",
                        )))
                        .await;
                    return;
                }
            };
            if let Ok(b) = &chunk {
                state.bytes_in.inc_by(b.len() as u64);
            }
            let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
            state.last.set(Instant::now());
        }
    });
    (upload, ChannelBody { rx, size }.boxed())
}

/// How long a caller's `Expect: 100-continue` body waits for the cluster's `100 Continue`.
const EXPECT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the caller sent `Expect: 100-continue`.
fn expects_continue(req: &Incoming) -> bool {
    req.headers()
        .get(actix_web::http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

fn empty_body() -> RequestBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// The request for hyper: method, URI and headers of `p` (headers moved, not copied) and
/// `body`.
/// A bodyless `GET` for a prepared request (the aggregate fan-out's reads).
pub(crate) fn get_request(p: Prepared) -> Result<http1::Request<RequestBody>, Error> {
    request(&actix_web::http::Method::GET, p, empty_body())
}

fn request(
    method: &actix_web::http::Method,
    p: Prepared,
    body: RequestBody,
) -> Result<http1::Request<RequestBody>, Error> {
    let bad_path = || Error::bad_request("the request path is not a valid URI path");
    let mut r = http1::Request::new(body);
    *r.method_mut() =
        http1::Method::from_bytes(method.as_str().as_bytes()).map_err(|_| bad_path())?;
    *r.uri_mut() = http1::Uri::try_from(p.uri).map_err(|_| bad_path())?;
    *r.headers_mut() = p.headers;
    Ok(r)
}

/// Whether a request may be sent again after its pooled connection failed before any
/// answer: idempotent (RFC 9110 §9.2.2) and without a body to replay.
fn retryable(method: &actix_web::http::Method, kind: &BodyKind) -> bool {
    use actix_web::http::Method as M;
    matches!(kind, BodyKind::None)
        && [M::GET, M::HEAD, M::OPTIONS, M::DELETE, M::PUT].contains(method)
}

/// Whether a failure means the connection closed before any response: the case a fresh
/// connection may fix (the cluster closed an idle pooled connection as it was reused).
fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    if e.is_connect() {
        return false;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return true;
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionReset | K::BrokenPipe | K::UnexpectedEof
            ) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// Who a forwarded request goes to, for error messages and log lines: a registry cluster
/// (by key) or a plugin's proxy alias (SPEC §7). Never a credential or a query string.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dest<'a> {
    /// A registry cluster, by key.
    Cluster(&'a str),
    /// A plugin's proxy entry.
    Plugin {
        /// The plugin's name.
        plugin: &'a str,
        /// The entry's alias.
        alias: &'a str,
    },
}

impl std::fmt::Display for Dest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Cluster(key) => write!(f, "cluster {key}"),
            Dest::Plugin { plugin, alias } => write!(f, "plugin {plugin} alias {alias}"),
        }
    }
}

/// The time bounds of one forwarded request.
#[derive(Clone)]
pub(crate) struct Limits {
    /// Until the response head, counted from the last request body chunk sent; `None`:
    /// unbounded (a plugin's Service, as the console has none).
    pub response_head: Option<std::time::Duration>,
    /// The longest pause inside an upload (`bodyIdleTimeout`); then 408.
    pub body_idle: std::time::Duration,
    /// Where upload bytes and failures reaching a cluster are counted.
    pub metrics: crate::ops::metrics::Metrics,
    /// The route's own rule for the answer's headers.
    pub response_rule: headers::ResponseRule,
}

/// Forwards the request and streams the answer back. Errors name the cluster key, never a
/// token or the query string.
pub(crate) async fn forward(
    req: &Incoming,
    payload: Payload,
    state: &ProxyState,
    registry: &Registry,
    choice: &Choice,
    tail: &str,
) -> Result<HttpResponse, Error> {
    let limits = Limits {
        response_head: Some(state.settings.response_head_timeout),
        body_idle: state.settings.body_idle_timeout,
        metrics: state.metrics.clone(),
        response_rule: headers::keep_all,
    };
    let dest = Dest::Cluster(choice.cluster.key.as_str());
    send(req, payload, &limits, dest, |via| {
        prepare(req, state, registry, choice, tail, via)
    })
    .await
}

/// Sends the request that `prepare` builds for the client `Via` names (called again only
/// for the one retry of a bodyless idempotent request) with the caller's body streamed,
/// within `limits`, and streams the answer back: the forwarding both the proxy routes and
/// the plugin proxy use. Errors name `dest`, never a token or the query string.
pub(crate) async fn send(
    req: &Incoming,
    payload: Payload,
    limits: &Limits,
    dest: Dest<'_>,
    mut prepare: impl FnMut(Via<'_>) -> Result<Prepared, Error>,
) -> Result<HttpResponse, Error> {
    // Decided in a function of its own: none of the preparation's state is part of this
    // future, which the direct path's requests carry (and the service stack boxes and
    // moves).
    match plan(req, &mut prepare)? {
        Plan::Direct(pool, head) => send_direct(req, pool, head, limits, dest).await,
        // The general path's state lives in its own allocation.
        Plan::Hyper(kind, prepared) => {
            Box::pin(send_hyper(
                req, payload, limits, dest, kind, *prepared, prepare,
            ))
            .await
        }
    }
}

/// Which client [`send`] uses, with the request prepared for it.
enum Plan {
    /// The direct HTTP/1.1 path: the target's pool and the request head.
    Direct(Rc<h1::Pool>, h1::RequestHead),
    /// hyper's client (boxed: the direct path's plans stay small).
    Hyper(BodyKind, Box<Prepared>),
}

fn plan(
    req: &Incoming,
    prepare: &mut impl FnMut(Via<'_>) -> Result<Prepared, Error>,
) -> Result<Plan, Error> {
    let kind = body_kind(req)?;
    let via = if may_go_direct(req, &kind) {
        Via::Direct(req.method().as_str())
    } else {
        Via::Hyper
    };
    let mut prepared = prepare(via)?;
    Ok(match prepared.direct.take() {
        Some((pool, head)) => Plan::Direct(pool, head),
        None => Plan::Hyper(kind, Box::new(prepared)),
    })
}

/// [`send`] on hyper's client: `prepared` for it, `prepare` for the one retry.
async fn send_hyper(
    req: &Incoming,
    payload: Payload,
    limits: &Limits,
    dest: Dest<'_>,
    kind: BodyKind,
    prepared: Prepared,
    mut prepare: impl FnMut(Via<'_>) -> Result<Prepared, Error>,
) -> Result<HttpResponse, Error> {
    let up = prepared.up.clone();
    let mut p = Some(prepared);
    let idle = limits.body_idle;
    let expect = (expects_continue(req)
        && matches!(kind, BodyKind::Sized(1..) | BodyKind::Chunked))
    .then(|| Arc::new(tokio::sync::Notify::new()));
    let (upload, body) = match kind {
        BodyKind::None => (None, empty_body()),
        BodyKind::Sized(0) => (
            None,
            http_body_util::Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed(),
        ),
        BodyKind::Sized(n) => {
            let (u, b) = stream_body(None, payload, Some(n), expect.clone(), limits);
            (Some(u), b)
        }
        BodyKind::Chunked => {
            let (u, b) = stream_body(None, payload, None, expect.clone(), limits);
            (Some(u), b)
        }
        BodyKind::H2Unknown => {
            use futures_util::StreamExt;
            let mut payload = payload;
            match payload.next().await {
                None => (None, empty_body()),
                Some(Err(e)) => {
                    return Err(Error::bad_request(format!("reading the request body: {e}")))
                }
                Some(Ok(first)) => {
                    let (u, b) = stream_body(Some(first), payload, None, None, limits);
                    (Some(u), b)
                }
            }
        }
    };
    // The response-head deadline counts from the last body chunk that went out.
    let start = Instant::now();
    let last = || upload.as_ref().map_or(start, |u| u.last.get());
    let method = req.method();
    let mut attempt = 0;
    let mut body = Some(body);
    let res = loop {
        // A retry is bodyless by construction (see `retryable`).
        let body = body.take().unwrap_or_else(empty_body);
        // A retry is rare: it prepares the request again rather than every request keeping
        // a copy of its headers.
        let prepared = match p.take() {
            Some(p) => p,
            None => prepare(Via::Hyper)?,
        };
        let mut upstream_req = request(method, prepared, body)?;
        if let Some(go) = &expect {
            let go = go.clone();
            hyper::ext::on_informational(&mut upstream_req, move |res| {
                if res.status() == http1::StatusCode::CONTINUE {
                    go.notify_one();
                }
            });
        }
        let send = std::pin::pin!(up.http.request(upstream_req));
        let r = within_head_timeout(req, send, limits, dest, last).await?;
        match r {
            Err(e) if attempt == 0 && retryable(method, &kind) && closed_before_answer(&e) => {
                tracing::debug!(to = %dest, "pooled connection closed by the upstream; retrying once");
                attempt += 1;
            }
            other => break other,
        }
    };
    if res.is_err() && upload.as_ref().is_some_and(|u| u.stalled.get()) {
        return Err(Error::new(
            crate::status::Reason::RequestTimeout,
            format!(
                "the request body stalled for more than {} (bodyIdleTimeout); the request to \
                 {dest} was abandoned",
                humantime::format_duration(idle)
            ),
        ));
    }
    let res = res.map_err(|e| {
        if let Dest::Cluster(k) = dest {
            limits.metrics.upstream_error(k, upstream_kind(&e));
        }
        send_error_to(dest, &e)
    })?;
    Ok(response(res, req.version(), limits.response_rule))
}

/// Waits for `send` (a request's answer head) within `limits.response_head`, counted from
/// `last()` (when the last request body chunk went out), on the timer `req`'s connection
/// keeps for it ([`deadline`]).
///
/// `send` is pinned by the caller: taken by value, it would be stored twice in this
/// function's future (as the argument and as the pinned local), and every request's future
/// carries it.
async fn within_head_timeout<F: std::future::Future>(
    req: &Incoming,
    mut send: Pin<&mut F>,
    limits: &Limits,
    dest: Dest<'_>,
    last: impl Fn() -> Instant,
) -> Result<F::Output, Error> {
    let Some(timeout) = limits.response_head else {
        return Ok(send.await);
    };
    let mut timer = deadline::Deadline::at(req, last() + timeout);
    loop {
        tokio::select! {
            biased;
            r = &mut send => return Ok(r),
            () = &mut timer => {
                let at = last() + timeout;
                if at <= Instant::now() {
                    if let Dest::Cluster(k) = dest {
                        limits.metrics.upstream_error(k, UpstreamKind::Timeout);
                    }
                    return Err(Error::timeout(format!(
                        "{dest} did not answer within {}",
                        humantime::format_duration(timeout)
                    )));
                }
                timer.reset(at);
            }
        }
    }
}

/// Whether the direct HTTP/1.1 client ([`crate::upstream::h1`]) may carry this request
/// (when its target is a plain `http://` one): a `GET` or `HEAD` without a body or
/// `Expect`, and not a watch or a followed log (those stay on hyper's client, whose buffers
/// are sized for them).
fn may_go_direct(req: &Incoming, kind: &BodyKind) -> bool {
    use actix_web::http::Method;
    let m = req.method();
    if !matches!(kind, BodyKind::None) || !(m == Method::GET || m == Method::HEAD) {
        return false;
    }
    if req.headers().contains_key(actix_web::http::header::EXPECT) {
        return false;
    }
    let q = req.query_string();
    !(crate::ops::metrics::is_watch(req.path(), q) || crate::ops::metrics::is_follow(q))
}

/// Sends a request on the direct path and builds the caller's response.
async fn send_direct(
    req: &Incoming,
    pool: Rc<h1::Pool>,
    head: h1::RequestHead,
    limits: &Limits,
    dest: Dest<'_>,
) -> Result<HttpResponse, Error> {
    use crate::upstream::h1::Body;
    let start = Instant::now();
    let send = std::pin::pin!(pool.send(head, start.into_std()));
    let (head, body) = within_head_timeout(req, send, limits, dest, || start)
        .await?
        .map_err(|e| {
            let (kind, err) = direct_error(dest, &e);
            if let Dest::Cluster(k) = dest {
                limits.metrics.upstream_error(k, kind);
            }
            err
        })?;
    let status = head.status;
    let version = req.version();
    let rule = limits.response_rule;
    let headers = |dst: &mut ResponseHead| {
        if version < actix_web::http::Version::HTTP_2 {
            // Written as they came, with no header map entry each.
            dst.set_raw_headers(Some(headers::raw_response_headers(|| head.lines(), rule)));
        } else {
            // Values share the bytes of the answer's head.
            headers::copy_response_headers_with(
                || head.headers(),
                &mut dst.headers,
                rule,
                |v| HeaderValue::from_maybe_shared(head.share(v)).ok(),
            )
        }
    };
    Ok(match body {
        Body::Full(b) => respond(
            status,
            headers,
            head.length,
            Answer::<Empty>::Full(b),
            version,
        ),
        Body::Empty => respond(
            status,
            headers,
            head.length,
            Answer::Stream(futures_util::stream::empty::<std::io::Result<Bytes>>()),
            version,
        ),
        Body::Stream(s) => respond(status, headers, head.length, Answer::Stream(s), version),
    })
}

/// A body stream that is never built (the type of [`Answer::Full`]'s unused arm).
type Empty = futures_util::stream::Empty<std::io::Result<Bytes>>;

/// What kind of failure reaching a cluster `e` is, for `kubeplex_upstream_errors_total`.
pub(crate) fn upstream_kind(e: &hyper_util::client::legacy::Error) -> UpstreamKind {
    if crate::tls::describe::is_tls(e) {
        return UpstreamKind::Tls;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return UpstreamKind::Timeout;
            }
        }
        cur = err.source();
    }
    if e.is_connect() {
        UpstreamKind::Connect
    } else {
        UpstreamKind::Protocol
    }
}

pub(crate) fn send_error(key: &str, e: &hyper_util::client::legacy::Error) -> Error {
    send_error_to(Dest::Cluster(key), e)
}

/// The 502 for a request to `dest` that failed before a response head: connect, TLS or
/// protocol, with the cause in words (never a token or a query string).
pub(crate) fn send_error_to(dest: Dest<'_>, e: &hyper_util::client::legacy::Error) -> Error {
    gateway_error(
        dest,
        e.is_connect(),
        &crate::tls::describe::describe_chain(e),
    )
}

/// The 502 of either client: `why` a connection could not be made, or what went wrong on it.
fn gateway_error(dest: Dest<'_>, connect: bool, why: &str) -> Error {
    if connect {
        Error::bad_gateway(format!("cannot connect to {dest}: {why}"))
    } else {
        Error::bad_gateway(format!("{dest}: {why}"))
    }
}

/// [`send_error_to`] and [`upstream_kind`] for the direct path's failures.
fn direct_error(dest: Dest<'_>, e: &crate::upstream::h1::H1Error) -> (UpstreamKind, Error) {
    use crate::tls::describe::describe_chain;
    use crate::upstream::h1::H1Error;
    match e {
        H1Error::Connect(io) if io.kind() == std::io::ErrorKind::TimedOut => (
            UpstreamKind::Timeout,
            gateway_error(dest, true, &describe_chain(io)),
        ),
        H1Error::Connect(io) => (
            UpstreamKind::Connect,
            gateway_error(dest, true, &describe_chain(io)),
        ),
        H1Error::Io(io) => (
            UpstreamKind::Protocol,
            gateway_error(dest, false, &describe_chain(io)),
        ),
        other => (
            UpstreamKind::Protocol,
            gateway_error(dest, false, &other.to_string()),
        ),
    }
}

/// The client's response: upstream status, headers (hop-by-hop removed) and body, streamed.
/// A body that ends in an error (cut short) ends the client's response as incomplete.
/// An HTTP/1.0 client knows no chunked encoding (RFC 9112 §6.1): an unsized body is sent
/// until the connection closes.
fn response(
    res: http1::Response<crate::upstream::client::ResponseBody>,
    version: actix_web::http::Version,
    rule: headers::ResponseRule,
) -> HttpResponse {
    use http_body_util::BodyExt;
    let (parts, body) = res.into_parts();
    let upstream = &parts.headers;
    let upstream_len = if upstream.contains_key(http1::header::TRANSFER_ENCODING) {
        None
    } else {
        upstream
            .get(http1::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    respond(
        parts.status.as_u16(),
        |dst| {
            headers::copy_response_headers(
                || {
                    upstream
                        .iter()
                        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
                },
                &mut dst.headers,
                rule,
            )
        },
        upstream_len,
        Answer::Stream(body.into_data_stream()),
        version,
    )
}

/// An upstream answer's body as [`respond`] takes it.
enum Answer<S> {
    /// Still arriving.
    Stream(S),
    /// Complete, read with the head (the direct path): exactly its `Content-Length`.
    Full(Bytes),
}

/// The client's response from an upstream answer: `status`, the headers `copy_headers`
/// writes (hop-by-hop removed: [`headers::copy_response_headers`]), and the body with the
/// answer's length `upstream_len` (`None`: chunked or close-delimited).
fn respond<S, E>(
    status: u16,
    copy_headers: impl FnOnce(&mut ResponseHead),
    upstream_len: Option<u64>,
    body: Answer<S>,
    version: actix_web::http::Version,
) -> HttpResponse
where
    S: futures_core::Stream<Item = Result<Bytes, E>> + 'static,
    E: Into<Box<dyn std::error::Error>> + 'static,
{
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut res = HttpResponse::new(status);
    copy_headers(res.head_mut());
    let body: BoxBody = if no_body {
        if status == StatusCode::NOT_MODIFIED {
            if let Some(n) = upstream_len {
                res.headers_mut().insert(
                    actix_web::http::header::CONTENT_LENGTH,
                    HeaderValue::from(n),
                );
            }
        }
        ().boxed()
    } else {
        match (body, upstream_len) {
            // Its `Content-Length` is its own length.
            (Answer::Full(b), _) => b.boxed(),
            (Answer::Stream(s), Some(n)) => SizedStream::new(n, s).boxed(),
            (Answer::Stream(s), None) => {
                if version < actix_web::http::Version::HTTP_11 {
                    res.head_mut().no_chunking(true);
                    res.head_mut()
                        .set_connection_type(actix_web::http::ConnectionType::Close);
                }
                BodyStream::new(s).boxed()
            }
        }
    };
    res.set_body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::target::Target;
    use actix_web::http::Method;
    use actix_web::test::TestRequest;

    /// `req` prepared for `url`, for the client `send` would choose (no TLS material: an
    /// `https` target has none to build).
    fn prepared(req: actix_web::HttpRequest, url: &str) -> Prepared {
        let req = &Incoming::from(req);
        let url = url::Url::parse(url).unwrap();
        let target = Arc::new(Target {
            origin: Ok(url.origin().ascii_serialization()),
            url,
            prefix: String::new(),
            tls: None,
            guard: None,
            resolve: None,
            connect_timeout: std::time::Duration::from_secs(1),
            handshake_timeout: std::time::Duration::from_secs(1),
        });
        let token = crate::upstream::credential::ServerToken::new(&Default::default());
        let up = Rc::new(client::for_target(target, token).unwrap());
        let via = if may_go_direct(req, &body_kind(req).unwrap()) {
            Via::Direct(req.method().as_str())
        } else {
            Via::Hyper
        };
        Prepared::new(up, req.path(), req.uri().query(), via, 0, |dst| {
            dst.put("accept", b"application/json", false);
            Ok(())
        })
        .unwrap()
    }

    fn direct(req: TestRequest, url: &str) -> bool {
        prepared(req.to_http_request(), url).direct.is_some()
    }

    #[actix_web::test]
    async fn only_bodyless_bounded_reads_to_plain_http_take_the_direct_path() {
        let plain = "http://127.0.0.1:1";
        let pods = "/api/v1/namespaces/a/pods";
        assert!(direct(TestRequest::get().uri(pods), plain));
        assert!(direct(
            TestRequest::default().method(Method::HEAD).uri(pods),
            plain
        ));
        assert!(direct(
            TestRequest::get().uri(&format!("{pods}?watch=false")),
            plain
        ));
        // Watches and followed logs (open-ended), other methods, bodies, `Expect`: hyper,
        // with the absolute URI.
        let watch = TestRequest::get()
            .uri(&format!("{pods}?watch=true"))
            .to_http_request();
        let p = prepared(watch, plain);
        assert!(p.direct.is_none());
        assert_eq!(p.uri, format!("{plain}{pods}?watch=true"));
        assert!(!direct(
            TestRequest::get().uri(&format!("{pods}?watch=true")),
            plain
        ));
        assert!(!direct(TestRequest::get().uri("/api/v1/watch/pods"), plain));
        assert!(!direct(
            TestRequest::get().uri(&format!("{pods}/p/log?follow=true")),
            plain
        ));
        assert!(!direct(TestRequest::delete().uri(pods), plain));
        assert!(!direct(
            TestRequest::get()
                .uri(pods)
                .insert_header(("content-length", "2")),
            plain
        ));
        assert!(!direct(
            TestRequest::get()
                .uri(pods)
                .insert_header(("expect", "100-continue")),
            plain
        ));
        // TLS targets: hyper (HTTP/2 where the cluster offers it).
        assert!(!direct(TestRequest::get().uri(pods), "https://127.0.0.1:1"));
    }
}
