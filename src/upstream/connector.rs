//! The awc connector for one cluster (or one plugin Service: any [`Target`]): TCP (with
//! `TCP_NODELAY`) plus rustls with the target's own configuration from [`crate::tls`], in
//! its copy that offers only `http/1.1` by ALPN ([`crate::cluster::ClusterTls::http1`]):
//! awc carries WebSocket tunnels (HTTP/1.1 upgrades) and kubeplex's own small reads, never
//! HTTP/2.
//!
//! awc's rustls connector turns the URI host into the rustls `ServerName`. That fails for
//! IPv6 hosts (`Uri::host()` keeps the brackets: `[::1]`) and cannot express
//! `tlsServerName`. So the TCP step here hands the TLS step a URI whose host is the name to
//! verify (a DNS name), or, for IP addresses, a placeholder DNS name; the rustls
//! configuration from `crate::tls::client::cluster_client_config` pins the real name (an IP
//! address is checked against the certificate's IP SANs) and sends SNI only for DNS names.
//! The request itself (`Host`, path) is unaffected: only the TLS step sees the rewritten URI.
//!
//! The TCP step (resolution, `TCP_NODELAY`, the catalog's connect guard) is the one the
//! forwarding client uses too, [`super::connect::tcp`].

use crate::cluster::Cluster;
use crate::tls::TlsSettings;
use crate::upstream::target::Target;
use crate::url_guard::ConnectGuard;
use actix_service::Service;
use actix_tls::connect::{ConnectError as TcpConnectError, ConnectInfo, Connection};
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// TCP connector service for awc: the shared TCP step ([`super::connect::tcp`]: resolve,
/// connect, `TCP_NODELAY`, the connect guard), then presents the TLS step with the name to
/// verify.
#[derive(Clone)]
pub struct ClusterTcpConnector {
    target: Arc<Target>,
}

impl Service<ConnectInfo<Uri>> for ClusterTcpConnector {
    type Response = Connection<Uri, TcpStream>;
    type Error = TcpConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let target = self.target.clone();
        let uri = req.request().clone();
        Box::pin(async move {
            let io = super::connect::tcp(&target)
                .await
                .map_err(TcpConnectError::Io)?;
            let Some(tls) = &target.tls else {
                return Ok(Connection::new(uri, io));
            };
            let port = uri.port_u16().unwrap_or(443);
            let tls_uri = Uri::builder()
                .scheme("https")
                .authority(format!("{}:{port}", tls.host))
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

/// An awc connector for a registry cluster: [`ClusterTcpConnector`] plus the cluster's
/// rustls configuration (built once, with the cluster), with connect and TLS handshake each
/// bounded by `connect_timeout`. Callers add their pool settings (`limit(0)`, keep-alive)
/// before `finish()`.
pub(crate) fn for_cluster(
    cluster: &Arc<Cluster>,
    connect_timeout: Duration,
) -> Result<awc::Connector<ClusterTcpConnector>, String> {
    for_target(&Arc::new(Target::of_cluster(cluster, connect_timeout)))
}

/// An awc connector for `target`: [`ClusterTcpConnector`] plus the target's rustls
/// configuration, with its connect and TLS handshake bounds.
pub(crate) fn for_target(
    target: &Arc<Target>,
) -> Result<awc::Connector<ClusterTcpConnector>, String> {
    let tcp = ClusterTcpConnector {
        target: target.clone(),
    };
    let mut connector = awc::Connector::new()
        .connector(tcp)
        .timeout(target.connect_timeout)
        .handshake_timeout(target.handshake_timeout);
    if let Some(t) = &target.tls {
        connector = connector.rustls_0_23(t.http1.clone().map_err(|e| e.to_string())?);
    }
    Ok(connector)
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
    let cluster = Arc::new(Cluster::new(
        "-",
        crate::cluster::ClusterSpec {
            tls: tls_settings.clone(),
            connect_guard: guard,
            ..crate::cluster::ClusterSpec::new("-", url.clone())
        },
        false,
        None,
    ));
    for_cluster(&cluster, connect_timeout)
}
