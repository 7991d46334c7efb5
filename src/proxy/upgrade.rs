//! Upgraded connections (SPEC §3): WebSocket tunnels for exec, attach, port-forward and log
//! streams. Every request carrying `Upgrade:` comes here after the cluster is chosen and the
//! path checked.
//!
//! A WebSocket upgrade is tunnelled byte for byte. The client's own handshake goes upstream:
//! its `Sec-WebSocket-Key`, `Sec-WebSocket-Version`, `Sec-WebSocket-Protocol` list (as sent)
//! and extensions, with the same header filtering and credential as any request
//! ([`crate::proxy::forward::prepare`]), on a fresh HTTP/1.1 connection of its own (awc's
//! `Connection::open_tunnel`, outside the pool: a tunnel never counts against a pool limit
//! and its socket is never reused). The upstream's `101` comes back unchanged (its chosen
//! subprotocol, `Sec-WebSocket-Accept`), then bytes flow both ways, with no deadline, until
//! either side closes: the client's end of stream half-closes the upstream socket, and the
//! upstream's end of stream ends the response, after which the server closes the client's
//! connection. An upstream that refuses the upgrade (401, 403, 404, 400 with a `Status`)
//! has its status, headers and body passed back unchanged. One audit line is logged when a
//! tunnel closes, with the bytes each way and the duration.
//!
//! SPDY cannot be tunnelled through actix-web's server and is refused with a `Status`
//! saying what to use instead.
//!
//! The plugin proxy (SPEC §7) tunnels its WebSocket upgrades through [`tunnel`] too, with
//! its own prepared request (a plugin's Service, or a cluster's Service proxy subresource).

use crate::cluster::{Choice, Registry};
use crate::ops::metrics::{OpenGuard, UpstreamKind};
use crate::proxy::forward::{self, Dest};
use crate::proxy::headers;
use crate::proxy::{Incoming, ProxyState};
use crate::status::Error;
use actix_codec::Framed;
use actix_http::h1::ClientCodec;
use actix_http::{ConnectionType, Payload, RequestHead, ResponseHead};
use actix_web::body::{BodyStream, MessageBody, SizedStream};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{StatusCode, Version};
use actix_web::HttpResponse;
use awc::error::SendRequestError;
use awc::BoxedSocket;
use bytes::Bytes;
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::AsyncWriteExt;

/// The message of the 400 for a SPDY upgrade.
pub(crate) const SPDY_REFUSED: &str =
    "kubeplex tunnels WebSocket upgrades only, not SPDY: kubectl 1.31 and later use \
     WebSocket by default for exec, attach, cp and port-forward; with kubectl 1.29 or 1.30 set \
     KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true and KUBECTL_PORT_FORWARD_WEBSOCKETS=true, or \
     upgrade kubectl";

/// Handles a request with an `Upgrade` header for `tail` on `cluster`.
pub(crate) async fn handle(
    req: &Incoming,
    payload: Payload,
    state: &ProxyState,
    registry: &Registry,
    choice: &Choice,
    tail: &str,
) -> Result<HttpResponse, Error> {
    check(req)?;
    let p = forward::prepare(req, state, registry, choice, tail, forward::Via::Tunnel)?;
    let dest = Dest::Cluster(choice.cluster.key.as_str());
    tunnel(
        req,
        payload,
        p,
        Some(state.settings.response_head_timeout),
        dest,
        headers::keep_all,
        state,
    )
    .await
}

/// Refuses what cannot be tunnelled: SPDY (with what to use instead) and any upgrade that
/// is not WebSocket.
pub(crate) fn check(req: &Incoming) -> Result<(), Error> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if upgrade
        .split(',')
        .any(|p| p.trim().to_ascii_uppercase().starts_with("SPDY/"))
    {
        return Err(Error::bad_request(SPDY_REFUSED));
    }
    if !upgrade
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
    {
        return Err(Error::bad_request(
            "unsupported Upgrade: kubeplex tunnels WebSocket only",
        ));
    }
    Ok(())
}

/// Opens the tunnel for a checked upgrade request prepared as `p` (URI, filtered headers
/// with the credential, the worker's upstream) and pumps bytes both ways: what the proxy
/// routes and the plugin proxy both use. `response_head` bounds the wait for the
/// upstream's answer to the handshake (`None`: unbounded); errors name `dest`; `rule` is
/// the route's own rule for the answer's headers.
pub(crate) async fn tunnel(
    req: &Incoming,
    payload: Payload,
    p: forward::Prepared,
    response_head: Option<std::time::Duration>,
    dest: Dest<'_>,
    rule: headers::ResponseRule,
    state: &ProxyState,
) -> Result<HttpResponse, Error> {
    let up = p.up;
    let mut head = RequestHead::default();
    head.method = req.method().clone();
    head.uri = awc::http::Uri::try_from(p.uri)
        .map_err(|_| Error::bad_request("the request path is not a valid URI path"))?;
    head.version = Version::HTTP_11;
    // The tunnel speaks actix's `http` 0.2 types: the rare path pays the conversion.
    for (n, v) in p.headers.iter() {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(n.as_str().as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            head.headers.append(n, v);
        }
    }
    // `Connection: Upgrade` names `Upgrade`, so the filter dropped it: put the client's back.
    if let Some(v) = req.headers().get(header::UPGRADE) {
        head.headers.insert(header::UPGRADE, v.clone());
    }
    head.headers.insert(header::HOST, host_header(&head.uri)?);
    head.set_connection_type(ConnectionType::Upgrade);

    let metrics = &state.metrics;
    let opened = match response_head {
        None => Ok(up.open_tunnel(head).await),
        Some(timeout) => tokio::time::timeout(timeout, up.open_tunnel(head))
            .await
            .map_err(|_| timeout),
    };
    let (rhead, framed) = match opened {
        Err(timeout) => {
            if let Dest::Cluster(k) = dest {
                metrics.upstream_error(k, UpstreamKind::Timeout);
            }
            return Err(Error::timeout(format!(
                "{dest} did not answer the upgrade within {}",
                humantime::format_duration(timeout)
            )));
        }
        Ok(Err(e)) => {
            if let Dest::Cluster(k) = dest {
                metrics.upstream_error(k, open_error_kind(&e));
            }
            return Err(open_error(dest, e));
        }
        Ok(Ok(r)) => r,
    };
    if rhead.status != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(refused(rhead, framed, rule));
    }

    let mut res = HttpResponse::new(StatusCode::SWITCHING_PROTOCOLS);
    headers::copy_response_headers(
        || {
            rhead
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
        },
        res.headers_mut(),
        rule,
    );
    if let Some(v) = rhead.headers.get(header::UPGRADE) {
        res.headers_mut().insert(header::UPGRADE, v.clone());
    }
    res.head_mut().set_connection_type(ConnectionType::Upgrade);

    let parts = framed.into_parts();
    let leftover = parts.read_buf.freeze();
    let (rd, mut wr) = tokio::io::split(parts.io);
    let audit = Rc::new(TunnelAudit {
        request_id: RefCell::new(
            req.headers()
                .get(crate::proxy::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ),
        subject: crate::identity::subject_of(req),
        cluster: match dest {
            Dest::Cluster(key) => key.to_owned(),
            Dest::Plugin { .. } => up
                .cluster
                .as_ref()
                .map_or_else(|| "-".to_owned(), |c| c.key.to_string()),
        },
        plugin: match dest {
            Dest::Cluster(_) => None,
            Dest::Plugin { plugin, alias } => Some((plugin.to_owned(), alias.to_owned())),
        },
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        start: Instant::now(),
        up: Cell::new(0),
        down: Cell::new(0),
        bytes_in: metrics.bytes_in().clone(),
        bytes_out: metrics.bytes_out().clone(),
        _open: metrics.tunnel_opened(),
    });

    // Client -> cluster.
    let up_audit = audit.clone();
    actix_web::rt::spawn(async move {
        let mut payload = payload;
        while let Some(Ok(chunk)) = payload.next().await {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
            up_audit.up.set(up_audit.up.get() + chunk.len() as u64);
            up_audit.bytes_in.inc_by(chunk.len() as u64);
        }
        let _ = wr.shutdown().await;
        drop(up_audit);
    });

    // Cluster -> client: what arrived with the 101, then the socket until it ends.
    let stream = read_until_end(leftover, rd, Some(audit.clone()));
    // On SIGTERM: a Close frame (going away) after the current frame, then the end.
    let stream = crate::ops::drain::tunnel(Box::pin(stream), &state.drain);
    res.extensions_mut().insert(TunnelAuditHandle(audit));
    Ok(res.set_body(BodyStream::new(stream).boxed()))
}

/// `Host` for the upstream request: the URI's authority, without a default port.
fn host_header(uri: &awc::http::Uri) -> Result<HeaderValue, Error> {
    let host = uri
        .host()
        .ok_or_else(|| Error::bad_gateway("the cluster URL has no host"))?;
    let default = match uri.scheme_str() {
        Some("https") | Some("wss") => 443,
        _ => 80,
    };
    let value = match uri.port_u16() {
        Some(p) if p != default => format!("{host}:{p}"),
        _ => host.to_owned(),
    };
    HeaderValue::from_str(&value)
        .map_err(|_| Error::bad_gateway("the cluster host is not a valid Host header"))
}

/// The kind of a failed tunnel opening, for `kubeplex_upstream_errors_total`.
fn open_error_kind(e: &SendRequestError) -> UpstreamKind {
    use awc::error::ConnectError as C;
    match e {
        SendRequestError::Connect(C::Timeout) | SendRequestError::Timeout => UpstreamKind::Timeout,
        SendRequestError::Connect(C::Io(io)) if io.kind() == std::io::ErrorKind::TimedOut => {
            UpstreamKind::Timeout
        }
        SendRequestError::Connect(C::Io(io)) if crate::tls::describe::is_tls(io) => {
            UpstreamKind::Tls
        }
        SendRequestError::Connect(_) => UpstreamKind::Connect,
        SendRequestError::Send(io) if crate::tls::describe::is_tls(io) => UpstreamKind::Tls,
        _ => UpstreamKind::Protocol,
    }
}

fn open_error(dest: Dest<'_>, e: SendRequestError) -> Error {
    match e {
        SendRequestError::Connect(c) => Error::bad_gateway(format!(
            "cannot connect to {dest}: {}",
            crate::tls::describe::describe_connect_error(&c)
        )),
        SendRequestError::TunnelNotSupported => Error::bad_gateway(format!(
            "{dest} answered the upgrade over HTTP/2, which cannot carry a WebSocket tunnel"
        )),
        other => Error::bad_gateway(format!(
            "{dest}: {}",
            crate::tls::describe::describe_send_error(&other)
        )),
    }
}

/// The upstream refused the upgrade: its status, headers (by the route's `rule` too) and
/// body, unchanged. A body without `Content-Length` or `Transfer-Encoding` runs until the
/// upstream closes.
fn refused(
    rhead: ResponseHead,
    framed: Framed<BoxedSocket, ClientCodec>,
    rule: headers::ResponseRule,
) -> HttpResponse {
    let mut res = HttpResponse::new(rhead.status);
    headers::copy_response_headers(
        || {
            rhead
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
        },
        res.headers_mut(),
        rule,
    );
    let status = rhead.status;
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return res;
    }
    let chunked = rhead.headers.contains_key(header::TRANSFER_ENCODING);
    let len = if chunked {
        None
    } else {
        rhead
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    if !chunked && len.is_none() {
        // Delimited by the end of the connection.
        let parts = framed.into_parts();
        let stream = read_until_end(parts.read_buf.freeze(), parts.io, None);
        return res.set_body(BodyStream::new(stream).boxed());
    }
    if matches!(
        framed.codec_ref().message_type(),
        actix_http::h1::MessageType::None
    ) {
        return res;
    }
    let payload = framed.into_map_codec(|c| c.into_payload_codec());
    let stream = futures_util::stream::unfold(Some(payload), |p| async move {
        let mut p = p?;
        match p.next().await {
            Some(Ok(Some(chunk))) => Some((Ok::<_, std::io::Error>(chunk), Some(p))),
            Some(Ok(None)) | None => None,
            Some(Err(e)) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    let stream = Box::pin(stream);
    match len {
        Some(n) => res.set_body(SizedStream::new(n, stream).boxed()),
        None => res.set_body(BodyStream::new(stream).boxed()),
    }
}

/// `first` (bytes read past a response head), then whatever `rd` yields until it ends,
/// counting the bytes in `audit`.
///
/// An idle tunnel holds no read buffer: each read goes into this worker's scratch buffer
/// ([`read_scratch`]) and only what arrived is copied out, so thousands of open tunnels
/// waiting for output cost their sockets and little else (issue 16).
fn read_until_end<R>(
    first: Bytes,
    rd: R,
    audit: Option<Rc<TunnelAudit>>,
) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>>
where
    R: tokio::io::AsyncRead + Unpin + 'static,
{
    futures_util::stream::unfold(
        (Some(first), Some(rd), audit),
        |(first, rd, audit)| async move {
            let mut rd = rd?;
            let count = |n: usize| {
                if let Some(a) = &audit {
                    a.down.set(a.down.get() + n as u64);
                    a.bytes_out.inc_by(n as u64);
                }
            };
            if let Some(b) = first.filter(|b| !b.is_empty()) {
                count(b.len());
                return Some((Ok(b), (None, Some(rd), audit)));
            }
            match std::future::poll_fn(|cx| read_scratch(Pin::new(&mut rd), cx)).await {
                Ok(b) if b.is_empty() => None,
                Ok(b) => {
                    count(b.len());
                    Some((Ok(b), (None, Some(rd), audit)))
                }
                // End the response with an error: the server drops the client connection.
                Err(e) => Some((Err(e), (None, None, audit))),
            }
        },
    )
}

/// The most one read of a tunnel takes; a bigger frame takes a few reads.
const TUNNEL_READ: usize = 16 * 1024;

thread_local! {
    /// The worker's scratch buffer for tunnel reads (workers are single-threaded, and a
    /// read never runs inside another).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; TUNNEL_READ].into_boxed_slice());
}

/// Polls one read of `rd` into the worker's scratch buffer and copies out what arrived
/// (empty at the end of the stream): nothing is allocated while the read is pending.
fn read_scratch<R: tokio::io::AsyncRead>(
    rd: Pin<&mut R>,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<Bytes>> {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut scratch) => {
            let mut buf = tokio::io::ReadBuf::new(&mut scratch[..]);
            match rd.poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(Bytes::copy_from_slice(buf.filled()))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }
        // Not expected (reads do not nest); a buffer of its own then.
        Err(_) => {
            let mut own = vec![0; TUNNEL_READ];
            let mut buf = tokio::io::ReadBuf::new(&mut own);
            match rd.poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len();
                    own.truncate(n);
                    Poll::Ready(Ok(Bytes::from(own)))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }
    })
}

/// Byte counts of one tunnel; the audit line is logged when the last owner (the response
/// body or the client-to-cluster pump) lets go, which is when the tunnel has closed.
struct TunnelAudit {
    request_id: RefCell<Option<String>>,
    subject: String,
    /// The cluster key (`-` for a plugin's Service reached directly).
    cluster: String,
    /// The plugin and alias of a plugin proxy tunnel.
    plugin: Option<(String, String)>,
    method: String,
    path: String,
    start: Instant,
    up: Cell<u64>,
    down: Cell<u64>,
    bytes_in: Counter,
    bytes_out: Counter,
    /// Counts the tunnel in `kubeplex_open_tunnels` while it is open.
    _open: OpenGuard,
}

impl Drop for TunnelAudit {
    fn drop(&mut self) {
        tracing::info!(
            target: "kubeplex::audit",
            request_id = self.request_id.borrow().as_deref().unwrap_or(""),
            subject = %self.subject,
            cluster = %self.cluster,
            plugin = self.plugin.as_ref().map(|p| p.0.as_str()),
            alias = self.plugin.as_ref().map(|p| p.1.as_str()),
            method = %self.method,
            path = %self.path,
            status = 101,
            bytes_to_cluster = self.up.get(),
            bytes_from_cluster = self.down.get(),
            duration_ms = self.start.elapsed().as_secs_f64() * 1000.0,
            "tunnel closed"
        );
    }
}

/// Found in the extensions of a tunnel's `101` response: the tunnel logs its own audit line
/// when it closes, so the proxy's per-request audit skips it, and hands it the request id.
#[derive(Clone)]
pub(crate) struct TunnelAuditHandle(Rc<TunnelAudit>);

impl TunnelAuditHandle {
    /// Sets the request id the audit line carries.
    pub(crate) fn set_request_id(&self, id: &str) {
        *self.0.request_id.borrow_mut() = Some(id.to_owned());
    }
}
