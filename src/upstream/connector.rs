//! The awc connector for one cluster: TCP (with `TCP_NODELAY`) plus rustls with the
//! cluster's own configuration from [`super::tls`].
//!
//! awc's rustls connector turns the URI host into the rustls `ServerName`. That fails for
//! IPv6 hosts (`Uri::host()` keeps the brackets: `[::1]`) and cannot express
//! `tlsServerName`. So the TCP step here hands the TLS step a URI whose host is the name to
//! verify (a DNS name), or, for IP addresses, a placeholder DNS name; the rustls
//! configuration from [`super::tls::cluster_client_config`] pins the real name (an IP
//! address is checked against the certificate's IP SANs) and sends SNI only for DNS names.
//! The request itself (`Host`, path) is unaffected: only the TLS step sees the rewritten URI.

use super::tls;
use crate::locate::TlsSettings;
use actix_service::Service;
use actix_tls::connect::{ConnectError as TcpConnectError, ConnectInfo, Connection};
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;
use rustls::pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// The host the TLS step sees when the verified name is an IP address (never sent: SNI is
/// off for IP addresses, and the verifier checks the real address).
const IP_PLACEHOLDER: &str = "ip-address.kubeplex.invalid";

/// TCP connector service for awc that connects to the URI's host and port and presents the
/// TLS step with the name to verify.
#[derive(Clone)]
pub struct ClusterTcpConnector {
    inner: actix_tls::connect::ConnectorService,
    tls_host: Option<Rc<str>>,
}

impl ClusterTcpConnector {
    /// A connector for a cluster at `url` with these TLS settings.
    pub fn new(url: &url::Url, tls_settings: &TlsSettings) -> Result<Self, String> {
        let tls_host = if url.scheme() == "https" || url.scheme() == "wss" {
            Some(match tls::verify_name(url, tls_settings)? {
                ServerName::DnsName(d) => Rc::from(d.as_ref()),
                _ => Rc::from(IP_PLACEHOLDER),
            })
        } else {
            None
        };
        Ok(ClusterTcpConnector {
            inner: actix_tls::connect::Connector::default().service(),
            tls_host,
        })
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
        Box::pin(async move {
            let conn = fut.await?;
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

/// An awc connector for a cluster: [`ClusterTcpConnector`] plus the cluster's rustls
/// configuration, with connect and TLS handshake each bounded by `connect_timeout`.
/// Callers add their pool settings (`limit(0)`, keep-alive) before `finish()`.
pub fn cluster_connector(
    url: &url::Url,
    tls_settings: &TlsSettings,
    connect_timeout: Duration,
) -> Result<awc::Connector<ClusterTcpConnector>, String> {
    let tcp = ClusterTcpConnector::new(url, tls_settings)?;
    let mut connector = awc::Connector::new()
        .connector(tcp)
        .timeout(connect_timeout)
        .handshake_timeout(connect_timeout);
    if url.scheme() == "https" || url.scheme() == "wss" {
        connector = connector.rustls_0_23(tls::cluster_client_config(url, tls_settings)?);
    }
    Ok(connector)
}
