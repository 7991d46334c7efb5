//! Streaming forward of one request to one cluster (SPEC §3).
//!
//! The request is rebuilt with `client.request(method, uri)` and each forwarded header
//! appended (awc's `request_from` would keep only the first value of a repeated header and
//! copy `Host` and hop-by-hop headers). The body streams both ways: `SizedStream` when a
//! length is known (the `Content-Length` is kept), a chunked stream otherwise, and a
//! `body::None` when there is none (awc's `send()` sends a `()` body, `Sized(0)`, and would
//! write `content-length: 0` on a GET). The response
//! body is a `SizedStream` or `BodyStream`, never `HttpResponse::streaming`, which would add
//! a `Content-Type` the cluster did not send.
//!
//! Time bounds: connect (and TLS handshake) by the connector; the response head by
//! `responseHeadTimeout`, counted from the last request body chunk that went out (an upload
//! that keeps moving is never cut off); bodies, such as a watch open for hours, never.

use crate::cluster::{Choice, Registry};
use crate::proxy::headers::{self, RequestFilter};
use crate::proxy::ProxyState;
use crate::status::Error;
use crate::upstream::client::{self, Upstream};
use crate::upstream::credential;
use actix_web::body::{BodyStream, BoxBody, MessageBody, SizedStream};
use actix_web::http::header::{HeaderValue, AUTHORIZATION};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use awc::error::SendRequestError;
use bytes::Bytes;
use futures_core::Stream;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::time::Instant;

/// Builds the upstream request for `tail` on `cluster`: URI (prefix + tail + query),
/// filtered headers and the credential of SPEC §3. Shared with the WebSocket tunnel.
pub(crate) fn prepare(
    req: &HttpRequest,
    state: &ProxyState,
    registry: &Registry,
    choice: &Choice,
    tail: &str,
    keep_upgrade: bool,
) -> Result<(Rc<Upstream>, awc::ClientRequest), Error> {
    let server = &state.settings;
    let cluster = &choice.cluster;
    let up = client::for_cluster(registry, cluster, server.connect_timeout)?;
    let cred = credential::resolve(
        req.headers(),
        &cluster.spec,
        &up.token,
        false,
        cluster.key.as_str(),
    )?;
    let uri = up.target(tail, req.uri().query())?;
    let mut creq = up.client.request(req.method().clone(), uri).no_decompress();
    let peer = req.peer_addr().map(|a| a.ip());
    headers::copy_request_headers(
        req.headers(),
        creq.headers_mut(),
        &RequestFilter {
            keep_impersonate: cred.source.is_callers_own(),
            keep_upgrade,
            peer,
            peer_trusted: headers::is_trusted(peer, &server.trusted_proxies),
            max_header_bytes: server.max_header_bytes,
        },
    )?;
    if let Some(mut a) = cred.authorization {
        a.set_sensitive(true);
        creq.headers_mut().insert(AUTHORIZATION, a);
    }
    Ok((up, creq))
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

fn body_kind(req: &HttpRequest) -> Result<BodyKind, Error> {
    let h = req.headers();
    if h.contains_key("transfer-encoding") {
        return Ok(BodyKind::Chunked);
    }
    match h.get("content-length") {
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

/// The request body, noting when each chunk went out (for the response-head timeout).
struct Progress<S = web::Payload> {
    inner: S,
    last: Rc<Cell<Instant>>,
}

impl<S> Stream for Progress<S>
where
    S: Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    type Item = Result<Bytes, actix_web::error::PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let r = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(_))) = &r {
            self.last.set(Instant::now());
        }
        r
    }
}

/// Forwards the request and streams the answer back. Errors name the cluster key, never a
/// token or the query string.
pub(crate) async fn forward(
    req: &HttpRequest,
    payload: web::Payload,
    state: &ProxyState,
    registry: &Registry,
    choice: &Choice,
    tail: &str,
) -> Result<HttpResponse, Error> {
    let kind = body_kind(req)?;
    let (_up, creq) = prepare(req, state, registry, choice, tail, false)?;
    let last = Rc::new(Cell::new(Instant::now()));
    let send = match kind {
        // Not `send()`: its `()` body is `Sized(0)` and would write `content-length: 0`.
        BodyKind::None => creq.send_body(actix_web::body::None::new()),
        BodyKind::Sized(n) => creq.send_body(SizedStream::new(
            n,
            Progress {
                inner: payload,
                last: last.clone(),
            },
        )),
        BodyKind::Chunked => creq.send_stream(Progress {
            inner: payload,
            last: last.clone(),
        }),
        BodyKind::H2Unknown => {
            use futures_util::StreamExt;
            let mut payload = payload;
            match payload.next().await {
                None => creq.send_body(actix_web::body::None::new()),
                Some(first) => creq.send_stream(Progress {
                    inner: futures_util::stream::iter([first]).chain(payload),
                    last: last.clone(),
                }),
            }
        }
    };
    let timeout = state.settings.response_head_timeout;
    let key = &choice.cluster.key;
    let mut send = std::pin::pin!(send);
    let res = loop {
        let deadline = last.get() + timeout;
        tokio::select! {
            r = &mut send => break r,
            _ = tokio::time::sleep_until(deadline) => {
                if last.get() + timeout <= Instant::now() {
                    return Err(Error::timeout(format!(
                        "cluster {key} did not answer within {}",
                        humantime::format_duration(timeout)
                    )));
                }
            }
        }
    };
    let cres = res.map_err(|e| send_error(key.as_str(), e))?;
    Ok(response(cres))
}

fn send_error(key: &str, e: SendRequestError) -> Error {
    match e {
        SendRequestError::Connect(c) => Error::bad_gateway(format!(
            "cannot connect to cluster {key}: {}",
            crate::tls::describe::describe_connect_error(&c)
        )),
        SendRequestError::Timeout => {
            Error::timeout(format!("cluster {key} did not answer in time"))
        }
        SendRequestError::Url(_) => Error::bad_request("the request path is not a valid URI path"),
        other => Error::bad_gateway(format!(
            "cluster {key}: {}",
            crate::tls::describe::describe_send_error(&other)
        )),
    }
}

/// The client's response: upstream status, headers (hop-by-hop removed) and body, streamed.
fn response<S>(cres: awc::ClientResponse<S>) -> HttpResponse
where
    S: Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
{
    let status = cres.status();
    let upstream_len = if cres.headers().contains_key("transfer-encoding") {
        None
    } else {
        cres.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut res = HttpResponse::new(status);
    headers::copy_response_headers(cres.headers(), res.headers_mut());
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
        match upstream_len {
            Some(n) => SizedStream::new(n, cres).boxed(),
            None => BodyStream::new(cres).boxed(),
        }
    };
    res.set_body(body)
}
