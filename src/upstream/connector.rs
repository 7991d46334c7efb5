//! The awc connector for one cluster: TCP (with `TCP_NODELAY`) plus rustls with the
//! cluster's own configuration from [`crate::tls`].
//!
//! awc's rustls connector turns the URI host into the rustls `ServerName`. That fails for
//! IPv6 hosts (`Uri::host()` keeps the brackets: `[::1]`) and cannot express
//! `tlsServerName`. So the TCP step here hands the TLS step a URI whose host is the name to
//! verify (a DNS name), or, for IP addresses, a placeholder DNS name; the rustls
//! configuration from `crate::tls::client::cluster_client_config` pins the real name (an IP
//! address is checked against the certificate's IP SANs) and sends SNI only for DNS names.
//! The request itself (`Host`, path) is unaffected: only the TLS step sees the rewritten URI.
//!
//! A cluster with a [`ConnectGuard`] (catalog clusters) has the address each TCP connection
//! reached checked before TLS and before anything is sent: DNS may answer differently now
//! than at the catalog refresh. A refused connection fails with a `PermissionDenied` I/O
//! error carrying [`NotPublic`], which the 502 message describes.

use crate::cluster::{Cluster, ClusterTls};
use crate::tls::TlsSettings;
use crate::url_guard::{ConnectGuard, NotPublic};
use actix_service::Service;
use actix_tls::connect::{ConnectError as TcpConnectError, ConnectInfo, Connection};
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// TCP connector service for awc that connects to the URI's host and port and presents the
/// TLS step with the name to verify.
#[derive(Clone)]
pub struct ClusterTcpConnector {
    inner: actix_tls::connect::ConnectorService,
    tls_host: Option<Rc<str>>,
    /// The guard and the cluster URL it checks against, unless the URL is admitted anyway.
    guard: Option<Rc<(Arc<ConnectGuard>, url::Url)>>,
}

impl ClusterTcpConnector {
    /// A connector that hands the TLS step `tls_host` (`None` for plain HTTP) and, with a
    /// `guard`, refuses connections to `url` that reach a non-public address the guard
    /// does not admit.
    pub fn new(
        tls_host: Option<Rc<str>>,
        url: &url::Url,
        guard: Option<Arc<ConnectGuard>>,
    ) -> Self {
        ClusterTcpConnector {
            inner: actix_tls::connect::Connector::default().service(),
            tls_host,
            guard: guard
                .filter(|g| !g.admits_url(url))
                .map(|g| Rc::new((g, url.clone()))),
        }
    }
}

impl Service<ConnectInfo<Uri>> for ClusterTcpConnector {
    type Response = Connection<Uri, TcpStream>;
    type Error = TcpConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&self, mut req: ConnectInfo<Uri>) -> Self::Future {
        // `[::1]` keeps its brackets in Uri::host(); give the resolver the address itself.
        let host = req.hostname();
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            if let Ok(ip) = inner.parse::<IpAddr>() {
                let port = req.port();
                req = req.set_addr(Some(SocketAddr::new(ip, port)));
            }
        }
        let fut = self.inner.call(req);
        let tls_host = self.tls_host.clone();
        let guard = self.guard.clone();
        Box::pin(async move {
            let conn = fut.await?;
            if let Some(g) = guard {
                let (guard, url) = &*g;
                let peer = conn.io_ref().peer_addr().map_err(TcpConnectError::Io)?;
                guard.check(url, peer.ip()).map_err(refused)?;
            }
            let _ = conn.io_ref().set_nodelay(true);
            let Some(tls_host) = tls_host else {
                return Ok(conn);
            };
            let (io, uri) = conn.into_parts();
            let port = uri.port_u16().unwrap_or(443);
            let tls_uri = Uri::builder()
                .scheme("https")
                .authority(format!("{tls_host}:{port}"))
                .path_and_query("/")
                .build()
                .map_err(|e| {
                    // Not `InvalidInput`: awc panics converting that variant.
                    TcpConnectError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
                })?;
            Ok(Connection::new(tls_uri, io))
        })
    }
}

/// The connect error for a connection the guard refused (the socket is dropped: closed).
fn refused(e: NotPublic) -> TcpConnectError {
    TcpConnectError::Io(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))
}

/// An awc connector for a registry cluster: [`ClusterTcpConnector`] plus the cluster's
/// rustls configuration (built once, with the cluster), with connect and TLS handshake each
/// bounded by `connect_timeout`. Callers add their pool settings (`limit(0)`, keep-alive)
/// before `finish()`.
pub(crate) fn for_cluster(
    cluster: &Cluster,
    connect_timeout: Duration,
) -> Result<awc::Connector<ClusterTcpConnector>, String> {
    build(
        &cluster.spec.url,
        cluster.tls.as_ref(),
        cluster.spec.connect_guard.clone(),
        connect_timeout,
    )
}

/// An awc connector for a cluster at `url` with these TLS settings, building the rustls
/// configuration now (the catalog client and tests; the proxy uses `for_cluster`).
pub fn cluster_connector(
    url: &url::Url,
    tls_settings: &TlsSettings,
    connect_timeout: Duration,
) -> Result<awc::Connector<ClusterTcpConnector>, String> {
    guarded_connector(url, tls_settings, None, connect_timeout)
}

/// [`cluster_connector`] with an optional [`ConnectGuard`] checking the address each
/// connection reaches.
pub fn guarded_connector(
    url: &url::Url,
    tls_settings: &TlsSettings,
    guard: Option<Arc<ConnectGuard>>,
    connect_timeout: Duration,
) -> Result<awc::Connector<ClusterTcpConnector>, String> {
    let cluster = Cluster::new(
        "-",
        crate::cluster::ClusterSpec {
            tls: tls_settings.clone(),
            connect_guard: guard,
            ..crate::cluster::ClusterSpec::new("-", url.clone())
        },
        false,
        None,
    );
    for_cluster(&cluster, connect_timeout)
}

fn build(
    url: &url::Url,
    tls: Option<&ClusterTls>,
    guard: Option<Arc<ConnectGuard>>,
    connect_timeout: Duration,
) -> Result<awc::Connector<ClusterTcpConnector>, String> {
    let tcp = ClusterTcpConnector::new(tls.map(|t| Rc::from(&*t.host)), url, guard);
    let mut connector = awc::Connector::new()
        .connector(tcp)
        .timeout(connect_timeout)
        .handshake_timeout(connect_timeout);
    if let Some(t) = tls {
        connector = connector.rustls_0_23(t.config.clone().map_err(|e| e.to_string())?);
    }
    Ok(connector)
}
