//! Where forwarded requests go and how to connect there: a [`Target`] is everything the
//! connectors ([`super::connect`] for hyper, [`super::connector`] for awc's tunnels) and
//! the request builder need, built once: the URL that is connected to (host, port, and the
//! catalog's connect guard checks it), the origin and path prefix requests are sent to,
//! the TLS configuration, an optional fixed address list replacing DNS (curl's
//! `--resolve`), and the connect and TLS handshake time bounds.
//!
//! A registry cluster is one kind of target ([`Target::of_cluster`]); a plugin's Service
//! reached directly (SPEC §7, `via: direct`) is another, with its own CA, a `resolve`
//! override and the console's time bounds (connect 30s, handshake 10s). The forwarding
//! machinery (pooled hyper client, tunnels, streaming) is the same for both.

use crate::cluster::{Cluster, ClusterTls};
use crate::url_guard::ConnectGuard;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A forwarding destination, built once and shared by every worker.
#[derive(Debug)]
pub(crate) struct Target {
    /// The URL connected to: scheme, host and port (its path is [`Target::prefix`]).
    pub url: url::Url,
    /// `scheme://authority` (IPv6 in brackets, port explicit), or why there is none.
    pub origin: Result<String, String>,
    /// The URL's own path without a trailing slash (`""` or `/sub`).
    pub prefix: String,
    /// For `https`: the rustls configuration and the host name the TLS step is handed.
    pub tls: Option<ClusterTls>,
    /// The catalog's check of the address each connection reaches.
    pub guard: Option<Arc<ConnectGuard>>,
    /// Addresses to connect to instead of resolving the URL's host (`resolve`).
    pub resolve: Option<Vec<SocketAddr>>,
    /// Bound on the TCP connect (each address tried).
    pub connect_timeout: Duration,
    /// Bound on the TLS handshake.
    pub handshake_timeout: Duration,
}

impl Target {
    /// The target of a registry cluster: its URL, origin, prefix, TLS configuration and
    /// connect guard, TCP connect and TLS handshake each bounded by `connect_timeout`
    /// (`kubeplex.server.connectTimeout`).
    pub(crate) fn of_cluster(cluster: &Cluster, connect_timeout: Duration) -> Target {
        Target {
            url: cluster.spec.url.clone(),
            origin: cluster.origin.clone(),
            prefix: cluster.prefix.clone(),
            tls: cluster.tls.clone(),
            guard: cluster.spec.connect_guard.clone(),
            resolve: None,
            connect_timeout,
            handshake_timeout: connect_timeout,
        }
    }
}
