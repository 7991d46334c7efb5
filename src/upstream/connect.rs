//! Connections for the forwarding client (hyper's HTTP/1 client, [`super::client`]): TCP to
//! the cluster's host and port (`TCP_NODELAY`), the catalog's connect guard on the address
//! actually reached (DNS may answer differently now than at the catalog refresh), then TLS
//! with the cluster's rustls configuration, built once with the cluster. The TCP connect
//! and the TLS handshake are each bounded by `connectTimeout`.
//!
//! Failures are `std::io::Error`s whose source chain keeps the rustls error or the guard's
//! [`NotPublic`], so [`crate::tls::describe`] names the cause in the 502 message.

use crate::cluster::Cluster;
use crate::url_guard::NotPublic;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection to a cluster: plain TCP or TLS over it.
pub enum Stream {
    /// `http://` clusters.
    Plain(TcpStream),
    /// `https://` clusters.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, b),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, b),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The connector hyper's client calls for a new connection to one cluster (the request URI
/// is the cluster's own, so it is not consulted).
#[derive(Clone)]
pub struct ClusterConnect {
    cluster: Arc<Cluster>,
    timeout: Duration,
}

impl ClusterConnect {
    /// A connector for `cluster`, each step bounded by `timeout`.
    pub fn new(cluster: Arc<Cluster>, timeout: Duration) -> Self {
        ClusterConnect { cluster, timeout }
    }
}

impl tower_service::Service<http1::Uri> for ClusterConnect {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http1::Uri) -> Self::Future {
        let (cluster, timeout) = (self.cluster.clone(), self.timeout);
        Box::pin(async move { connect(&cluster, timeout).await.map(TokioIo::new) })
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "timed out connecting (TCP or TLS handshake)",
    )
}

/// Connects to `cluster`: [`tcp`], then TLS for `https` clusters.
pub async fn connect(cluster: &Cluster, timeout: Duration) -> io::Result<Stream> {
    let tcp = tcp(cluster, timeout).await?;
    let Some(tls) = &cluster.tls else {
        return Ok(Stream::Plain(tcp));
    };
    let config = tls
        .config
        .clone()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let name = ServerName::try_from(tls.host.to_string())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid TLS server name"))?;
    let stream = tokio::time::timeout(
        timeout,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| timed_out())??;
    Ok(Stream::Tls(Box::new(stream)))
}

/// The TCP step every connection to a cluster takes (the forwarding client's and the
/// WebSocket tunnels'): resolve the cluster's host (IPv6 literals need no lookup), connect
/// to the first address that answers within `timeout`, `TCP_NODELAY`, then the catalog's
/// connect guard on the address actually reached.
pub async fn tcp(cluster: &Cluster, timeout: Duration) -> io::Result<TcpStream> {
    let url = &cluster.spec.url;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(url::Host::Domain(d)) => {
            tokio::time::timeout(timeout, tokio::net::lookup_host((d, port)))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| {
                    io::Error::new(io::ErrorKind::NotFound, format!("DNS lookup failed: {e}"))
                })?
                .collect()
        }
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the cluster URL has no host",
            ))
        }
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "DNS lookup found no address");
    let mut tcp = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = timed_out(),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let _ = tcp.set_nodelay(true);
    if let Some(guard) = cluster
        .spec
        .connect_guard
        .as_ref()
        .filter(|g| !g.admits_url(url))
    {
        let peer = tcp.peer_addr()?;
        guard
            .check(url, peer.ip())
            .map_err(|e: NotPublic| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
    }
    Ok(tcp)
}
