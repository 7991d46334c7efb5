//! Per-worker clients, one set per cluster: hyper's client for forwarded requests, awc's
//! connector for WebSocket tunnels (awc is `!Send`, an `Rc`).
//!
//! Each worker thread keeps, per cluster key, an [`Upstream`]: the clients (their own
//! connection pools) and the prepared server-side token, beside the registry's
//! [`Cluster`] (origin, path prefix, rustls configuration: built once per cluster, shared
//! by every worker). A registry swap that keeps a cluster keeps its `Arc<Cluster>`, so the
//! next request compares pointers; a changed definition builds a new entry; clusters a
//! reload or refresh removed are dropped from the cache when this worker first sees the new
//! registry generation.
//!
//! Forwarded requests ([`Http`]) speak HTTP/2 to a TLS cluster that offers `h2` by ALPN,
//! as an API server does (kubectl and client-go do the same), and HTTP/1.1 otherwise
//! (plain `http://` clusters, servers offering only `http/1.1`, clusters with
//! `http2: false`). On HTTP/2 hyper's pool shares one connection among all requests, so
//! a thousand watches need a handful of connections instead of a thousand. A server
//! limits the streams of one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`: Go's default
//! and so the API server's is 250, nginx's 128) and hyper would queue requests beyond it
//! on that one connection, a watch forever; so [`Http`] keeps at most
//! [`STREAMS_PER_CONNECTION`] requests on each client and opens another client (another
//! connection) past that. HTTP/2 flow control follows Go's client (client-go): a 4 MiB
//! window per stream, so a slow reader of one watch stalls only that watch, and 1 GiB for
//! the connection; a PING after 30 s of quiet with open streams, and no answer within
//! 15 s closes the connection (a dead connection would otherwise stall every watch on it).
//!
//! The tunnel connector is built for proxying (see ENGINEERING.md): no overall timeout (a
//! tunnel has no deadline; connect time is bounded by the connector), connector `limit(0)`
//! (the default semaphore of 100 is held for the whole life of a connection), and the
//! cluster's connector from [`crate::upstream::connector`] (`TCP_NODELAY`, the cluster's
//! rustls configuration with ALPN `http/1.1` alone, connect and handshake timeouts).
//!
//! A plugin's Service reached directly (SPEC §7) gets the same kind of [`Upstream`] from
//! [`for_target`], built on its own [`Target`]; the plugin proxy keeps those per worker.

use crate::cluster::{Cluster, ClusterKey, Registry};
use crate::status::Error;
use crate::upstream::credential::ServerToken;
use crate::upstream::target::Target;
use actix_codec::Framed;
use actix_http::h1::ClientCodec;
use actix_http::{RequestHead, ResponseHead};
use actix_service::Service;
use awc::error::SendRequestError;
use awc::BoxedSocket;
use futures_util::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// A cluster (or a plugin's Service, [`Target`]) as one worker talks to it.
pub(crate) struct Upstream {
    /// The registry's cluster this was built for (`None`: a plugin's Service reached
    /// directly).
    pub cluster: Option<Arc<Cluster>>,
    /// Where requests go and how to connect there.
    pub target: Arc<Target>,
    /// The forwarding client (hyper's, HTTP/2 or HTTP/1.1) with this target's connector and
    /// its own idle pool.
    pub http: Http,
    /// The server-side credential (SPEC §3 rule 4).
    pub token: ServerToken,
    /// The direct HTTP/1.1 client for bodyless reads, on plain `http://` targets.
    pub h1: Option<Rc<crate::upstream::h1::Pool>>,
    tunnel: Opener,
}

/// A request body for the forwarding client: streamed, `Send` (hyper's pool needs it).
pub(crate) type RequestBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// The forwarding client of one cluster.
pub(crate) type HttpClient =
    hyper_util::client::legacy::Client<crate::upstream::connect::ClusterConnect, RequestBody>;

/// Idle HTTP/1.1 connections kept per cluster and worker (and [`Http`] client); more are
/// closed when they go idle.
pub(crate) const MAX_IDLE_PER_CLUSTER: usize = 64;
/// Requests in flight (a watch until its body ends) on one client of [`Http`]: on HTTP/2,
/// the streams of one connection. Below the servers' own limits (Go: 250, nginx: 128).
pub(crate) const STREAMS_PER_CONNECTION: usize = 100;
/// HTTP/2 flow-control window of one stream (Go's HTTP/2 client: 4 MiB).
const H2_STREAM_WINDOW: u32 = 4 << 20;
/// HTTP/2 flow-control window of a connection (Go's HTTP/2 client: 1 GiB).
const H2_CONNECTION_WINDOW: u32 = 1 << 30;
/// Quiet time on an HTTP/2 connection with open streams before a PING (client-go: 30 s).
const H2_PING_AFTER: Duration = Duration::from_secs(30);
/// How long a PING may go unanswered before the connection is closed (client-go: 15 s).
const H2_PING_TIMEOUT: Duration = Duration::from_secs(15);

/// The forwarding client of one cluster in one worker: hyper clients sharing the cluster's
/// connector, each carrying at most [`STREAMS_PER_CONNECTION`] requests at a time. A
/// request goes to the first client with room (a new one when none has), so on HTTP/2 the
/// first connection fills up before a second is opened, and on HTTP/1.1 the first pool
/// serves almost everything.
pub(crate) struct Http {
    connector: crate::upstream::connect::ClusterConnect,
    clients: RefCell<Vec<Counted>>,
}

/// One client of [`Http`] and its requests in flight.
struct Counted {
    client: HttpClient,
    busy: Rc<Cell<usize>>,
}

/// A request in flight on one client of [`Http`]: counted until dropped.
struct Slot(Rc<Cell<usize>>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A response body from [`Http`]: hyper's body, holding its request's place on its client
/// until it is dropped.
pub(crate) struct ResponseBody {
    inner: hyper::body::Incoming,
    _slot: Slot,
}

impl http_body::Body for ResponseBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, hyper::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Http {
    /// A forwarding client connecting with `connector`; its first hyper client is built on
    /// first use.
    fn new(connector: crate::upstream::connect::ClusterConnect) -> Self {
        Http {
            connector,
            clients: RefCell::new(Vec::new()),
        }
    }

    /// Sends `req` on the first client with room; the response body keeps its place until
    /// it is dropped.
    pub(crate) fn request(
        &self,
        req: http1::Request<RequestBody>,
    ) -> impl std::future::Future<
        Output = Result<http1::Response<ResponseBody>, hyper_util::client::legacy::Error>,
    > + 'static {
        let (send, slot) = {
            let mut clients = self.clients.borrow_mut();
            let i = match clients
                .iter()
                .position(|c| c.busy.get() < STREAMS_PER_CONNECTION)
            {
                Some(i) => i,
                None => {
                    clients.push(Counted {
                        client: hyper_client(self.connector.clone()),
                        busy: Rc::new(Cell::new(0)),
                    });
                    clients.len() - 1
                }
            };
            let c = &clients[i];
            c.busy.set(c.busy.get() + 1);
            (c.client.request(req), Slot(c.busy.clone()))
        };
        async move {
            let res = send.await?;
            Ok(res.map(|inner| ResponseBody { inner, _slot: slot }))
        }
    }
}

/// A hyper client for one target (see the module doc for its settings).
fn hyper_client(connector: crate::upstream::connect::ClusterConnect) -> HttpClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_CLUSTER)
        .retry_canceled_requests(true)
        .http2_initial_stream_window_size(H2_STREAM_WINDOW)
        .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
        .http2_keep_alive_interval(H2_PING_AFTER)
        .http2_keep_alive_timeout(H2_PING_TIMEOUT)
        .build(connector)
}
/// An idle pooled connection is closed after this long (below the API server's own idle
/// timeout, so kubeplex, not the server, usually closes it).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// An opened tunnel: the upstream's response head and the connection, framed.
pub(crate) type TunnelFuture = LocalBoxFuture<
    'static,
    Result<(ResponseHead, Framed<BoxedSocket, ClientCodec>), SendRequestError>,
>;

/// Opens a tunnel: connects (TCP, TLS with the cluster's configuration) and sends the head.
type Opener = Rc<dyn Fn(RequestHead) -> TunnelFuture>;

impl Upstream {
    /// Opens a WebSocket tunnel with `head` on a fresh HTTP/1.1 connection of its own
    /// (the cluster's connector, outside the pool: a tunnel's socket is never reused).
    pub(crate) fn open_tunnel(&self, head: RequestHead) -> TunnelFuture {
        (self.tunnel)(head)
    }

    /// The absolute upstream URI for a request tail (already checked by
    /// `proxy::path::check_tail`) and query: origin + prefix + tail + query, built
    /// in one allocation.
    pub(crate) fn target(&self, tail: &str, query: Option<&str>) -> Result<String, Error> {
        let origin = self
            .target
            .origin
            .as_deref()
            .map_err(|e| match &self.cluster {
                Some(c) => Error::bad_gateway(format!("cluster {}: {e}", c.key)),
                None => {
                    Error::bad_gateway(format!("{}: {e}", crate::redact::url(&self.target.url)))
                }
            })?;
        let pieces = self.path(tail, query);
        let mut s =
            String::with_capacity(origin.len() + pieces.iter().map(|p| p.len()).sum::<usize>());
        s.push_str(origin);
        pieces.iter().for_each(|p| s.push_str(p));
        Ok(s)
    }

    /// The path and query a request for `tail` and `query` is sent with, in pieces to write
    /// one after the other (the direct path writes them into its request head, no string
    /// built): [`path_pieces`] with this target's prefix.
    pub(crate) fn path<'a>(&'a self, tail: &'a str, query: Option<&'a str>) -> [&'a str; 4] {
        path_pieces(&self.target.prefix, tail, query)
    }
}

/// The cluster URL's own path prefix (no trailing slash, may be empty), the tail, and `?`
/// with the query when there is one: `/sub` + `/api/v1` = `/sub/api/v1`; an empty tail
/// becomes `/` (or the prefix itself).
fn path_pieces<'a>(prefix: &'a str, tail: &'a str, query: Option<&'a str>) -> [&'a str; 4] {
    let tail = if tail.is_empty() && prefix.is_empty() {
        "/"
    } else {
        tail
    };
    match query {
        Some(q) => [prefix, tail, "?", q],
        None => [prefix, tail, "", ""],
    }
}

/// This worker's upstreams, and the registry generation they were last checked against.
#[derive(Default)]
struct Cache {
    generation: u64,
    /// Looked up on every request: hashed with foldhash (the keys are the registry's).
    entries: foldhash::HashMap<ClusterKey, Rc<Upstream>>,
}

thread_local! {
    static UPSTREAMS: RefCell<Cache> = RefCell::new(Cache::default());
}

/// This worker's [`Upstream`] for `cluster` of `registry`, built on first use.
pub(crate) fn for_cluster(
    registry: &Registry,
    cluster: &Arc<Cluster>,
    connect_timeout: Duration,
) -> Result<Rc<Upstream>, Error> {
    let found = UPSTREAMS.with(|c| {
        let mut c = c.borrow_mut();
        if c.generation != registry.generation() {
            // A new registry: forget clusters it no longer has, or whose definition changed.
            c.entries.retain(|k, up| {
                registry
                    .get(k.as_str())
                    .is_some_and(|now| up.cluster.as_ref().is_some_and(|c| Arc::ptr_eq(now, c)))
            });
            c.generation = registry.generation();
        }
        c.entries
            .get(&cluster.key)
            .filter(|up| up.cluster.as_ref().is_some_and(|c| Arc::ptr_eq(c, cluster)))
            .cloned()
    });
    if let Some(u) = found {
        return Ok(u);
    }
    let u = Rc::new(build(cluster, connect_timeout)?);
    UPSTREAMS.with(|c| {
        c.borrow_mut()
            .entries
            .insert(cluster.key.clone(), u.clone());
    });
    Ok(u)
}

fn build(cluster: &Arc<Cluster>, connect_timeout: Duration) -> Result<Upstream, Error> {
    // Checked now, so a bad TLS configuration is the same 502 for both paths.
    if let Some(Err(e)) = cluster.tls.as_ref().map(|t| &t.config) {
        return Err(Error::bad_gateway(format!(
            "cluster {}: TLS configuration: {e}",
            cluster.key
        )));
    }
    let target = Arc::new(Target::of_cluster(cluster, connect_timeout));
    let mut up = for_target(target, ServerToken::new(&cluster.spec.credential)).map_err(|e| {
        Error::bad_gateway(format!("cluster {}: TLS configuration: {e}", cluster.key))
    })?;
    up.cluster = Some(cluster.clone());
    Ok(up)
}

/// An [`Upstream`] for `target` with the server-side credential `token` (none for a
/// plugin's Service), not cached: the caller keeps it per worker. Fails when the target's
/// TLS configuration could not be built (the message says why).
pub(crate) fn for_target(target: Arc<Target>, token: ServerToken) -> Result<Upstream, String> {
    let tunnel_connector = Rc::new(
        crate::upstream::connector::for_target(&target)?
            .limit(0)
            .finish(),
    );
    let tunnel: Opener = Rc::new(move |head: RequestHead| {
        let connector = tunnel_connector.clone();
        Box::pin(async move {
            let conn = connector
                .call(awc::Connect {
                    uri: head.uri.clone(),
                    addr: None,
                })
                .await?;
            let (res, framed) = conn.open_tunnel(head).await?;
            Ok((res, framed.into_map_io(|io| Box::new(io) as BoxedSocket)))
        })
    });
    let http = Http::new(crate::upstream::connect::ClusterConnect::to(target.clone()));
    Ok(Upstream {
        cluster: None,
        h1: crate::upstream::h1::Pool::for_target(&target),
        target,
        http,
        token,
        tunnel,
    })
}

#[cfg(test)]
mod tests {
    use super::path_pieces;

    fn join(prefix: &str, tail: &str, query: Option<&str>) -> String {
        path_pieces(prefix, tail, query).concat()
    }

    #[test]
    fn joins() {
        assert_eq!(join("", "", None), "/");
        assert_eq!(join("/sub", "", None), "/sub");
        assert_eq!(
            join("/sub", "/api/v1", Some("watch=1")),
            "/sub/api/v1?watch=1"
        );
        assert_eq!(join("", "/api/v1/", None), "/api/v1/");
    }
}
