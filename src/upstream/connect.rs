//! Connections for the forwarding client (hyper's client, [`super::client`]): TCP to
//! the target's host and port (`TCP_NODELAY`; the target's `resolve` addresses instead of
//! DNS when it has them), the catalog's connect guard on the address actually reached (DNS
//! may answer differently now than at the catalog refresh), then TLS with the target's
//! rustls configuration, built once with the cluster (or plugin Service). The TCP connect
//! and the TLS handshake are each bounded by the target's own limits (`connectTimeout` for
//! clusters).
//!
//! A TLS connection on which the server chose `h2` by ALPN reports so
//! ([`Connected::negotiated_h2`]): hyper then speaks HTTP/2 on it and its pool shares it
//! among requests; anything else (plain `http://`, `http/1.1` or no ALPN) is HTTP/1.1. On
//! HTTP/2 the server's first bytes are read here ([`server_preface`]), so a refusal right
//! after the handshake (a client certificate) fails the connect with its TLS cause.
//!
//! Failures are `std::io::Error`s whose source chain keeps the rustls error or the guard's
//! [`NotPublic`], so [`crate::tls::describe`] names the cause in the 502 message.

use crate::cluster::Cluster;
use crate::upstream::target::Target;
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
    /// `https://` clusters, with the bytes already read from it (see [`connect`]).
    Tls(
        Box<tokio_rustls::client::TlsStream<TcpStream>>,
        bytes::Bytes,
    ),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Tls(s, _) if s.get_ref().1.alpn_protocol() == Some(crate::tls::client::H2) => {
                Connected::new().negotiated_h2()
            }
            _ => Connected::new(),
        }
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
            Stream::Tls(_, ahead) if !ahead.is_empty() => {
                let n = ahead.len().min(buf.remaining());
                buf.put_slice(&ahead.split_to(n));
                Poll::Ready(Ok(()))
            }
            Stream::Tls(s, _) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, b),
            Stream::Tls(s, _) => Pin::new(s).poll_write(cx, b),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s, _) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s, _) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The connector hyper's client calls for a new connection to one target, a cluster or a
/// plugin's Service (the request URI is the target's own, so it is not consulted).
#[derive(Clone)]
pub struct ClusterConnect {
    target: Arc<Target>,
}

impl ClusterConnect {
    /// A connector for `cluster`, each step bounded by `timeout`.
    pub fn new(cluster: Arc<Cluster>, timeout: Duration) -> Self {
        Self::to(Arc::new(Target::of_cluster(&cluster, timeout)))
    }

    /// A connector for `target`.
    pub(crate) fn to(target: Arc<Target>) -> Self {
        ClusterConnect { target }
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
        let target = self.target.clone();
        Box::pin(async move { connect(&target).await.map(TokioIo::new) })
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "timed out connecting (TCP or TLS handshake)",
    )
}

/// Connects to `target`: [`tcp`], then TLS for `https` targets.
pub(crate) async fn connect(target: &Target) -> io::Result<Stream> {
    let tcp = tcp(target).await?;
    let Some(tls) = &target.tls else {
        return Ok(Stream::Plain(tcp));
    };
    let config = tls
        .config
        .clone()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let name = ServerName::try_from(tls.host.to_string())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid TLS server name"))?;
    let stream = tokio::time::timeout(
        target.handshake_timeout,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| timed_out())??;
    let mut stream = Box::new(stream);
    let ahead = if stream.get_ref().1.alpn_protocol() == Some(crate::tls::client::H2) {
        server_preface(&mut stream, target.handshake_timeout).await?
    } else {
        bytes::Bytes::new()
    };
    Ok(Stream::Tls(stream, ahead))
}

/// On an HTTP/2 connection, reads the first bytes the server sends (its SETTINGS frame,
/// which servers send without waiting for the client's preface: Go's, nginx, the h2 crate),
/// within `limit`. A server that refuses the connection after the TLS 1.3 handshake (a
/// client certificate missing or refused) says so with an alert here, and the failure is a
/// connect error naming the TLS cause, as on HTTP/1.1 (hyper's HTTP/2 handshake would
/// report it only as a closed connection). Nothing read within `limit` is no failure: the
/// connection goes on to hyper as it is.
async fn server_preface(
    stream: &mut tokio_rustls::client::TlsStream<TcpStream>,
    limit: Duration,
) -> io::Result<bytes::Bytes> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(limit, stream.read(&mut buf)).await {
        Err(_) => Ok(bytes::Bytes::new()),
        Ok(Ok(0)) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection after the TLS handshake",
        )),
        Ok(Ok(n)) => {
            buf.truncate(n);
            Ok(buf.into())
        }
        Ok(Err(e)) => Err(e),
    }
}

/// The TCP step every connection to a target takes (the forwarding client's and the
/// WebSocket tunnels'): resolve the target's host (IPv6 literals need no lookup; a
/// target's `resolve` addresses replace the lookup), connect to the first address that
/// answers within the connect timeout, `TCP_NODELAY`, then the catalog's connect guard on
/// the address actually reached.
pub(crate) async fn tcp(target: &Target) -> io::Result<TcpStream> {
    let url = &target.url;
    let timeout = target.connect_timeout;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match url.host() {
        _ if target.resolve.is_some() => target.resolve.clone().unwrap_or_default(),
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
    if let Some(guard) = target.guard.as_ref().filter(|g| !g.admits_url(url)) {
        let peer = tcp.peer_addr()?;
        guard
            .check(url, peer.ip())
            .map_err(|e: NotPublic| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
    }
    Ok(tcp)
}
