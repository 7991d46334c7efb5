//! The simulated cluster (SPEC §8): an in-memory Kubernetes API server for the v1 Service
//! API and what kubectl needs. It runs in-process behind the `simulated` locator, alone as
//! `kubeplex sim`, and as the upstream of the integration tests. It serves plain HTTP, or
//! HTTPS ([`config::SimTls`]) with a given certificate or a self-signed one generated at
//! start; [`SimServer::kubeconfig`] writes a kubeconfig for kubectl. Over HTTPS it offers
//! `h2` and `http/1.1` by ALPN, as an API server does (actix-http's rustls acceptor, with
//! its `http2` feature, which awc turns on); over plain HTTP it speaks HTTP/1.1 only. Tests
//! see which version and which connection each request came on ([`SimServer::seen`],
//! [`SimServer::connections`]).

pub(crate) mod alloc;
pub(crate) mod api;
pub mod config;
pub(crate) mod discovery;
pub(crate) mod errors;
pub mod kinds;
mod kubeconfig;
pub(crate) mod metrics;
pub mod model;
pub(crate) mod namespace;
pub(crate) mod objects;
pub(crate) mod patch;
pub mod pods;
pub(crate) mod protobuf;
pub(crate) mod schema;
pub(crate) mod seed;
pub(crate) mod selectors;
pub(crate) mod service;
pub(crate) mod state;
pub mod store;
pub(crate) mod strict;
pub(crate) mod table;
pub(crate) mod validation;

use actix_web::dev::{Service as _, ServiceResponse};
use actix_web::web;
use config::{SimClusterConfig, SimTls};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;

/// What the simulated cluster saw of one request's credentials (see [`SimServer::seen`]):
/// never a token, only which configured token matched.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimRequest {
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The HTTP version it came in (HTTP/2 when the client chose `h2` by ALPN).
    pub version: actix_web::http::Version,
    /// The number of the connection it came on (from 1, in accepting order; see
    /// [`SimServer::connections`]).
    pub connection: u64,
    /// The index in the cluster's `tokens` of the token it authenticated with (`None`:
    /// anonymous access, or refused with a 401).
    pub token: Option<usize>,
    /// The user it was authorized as (the impersonated one when impersonating); `None` when
    /// refused before (401, impersonation refused).
    pub user: Option<String>,
    /// `Impersonate-User`.
    pub impersonate_user: Option<String>,
    /// Every `Impersonate-Group`, in order.
    pub impersonate_groups: Vec<String>,
    /// Every `Impersonate-Extra-<key>` as (key percent-decoded, value), in order.
    pub impersonate_extra: Vec<(String, String)>,
}

/// The number of a connection (from 1), in the connection's extensions (`conn_data`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionId(pub(crate) u64);

/// A running simulated API server. Dropping it stops the server.
pub struct SimServer {
    name: String,
    url: url::Url,
    ca_pem: Option<Vec<u8>>,
    handle: actix_web::dev::ServerHandle,
    state: web::Data<state::SimState>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer").field("url", &self.url).finish()
    }
}

impl SimServer {
    /// The server's base URL (`http://127.0.0.1:PORT`, `https://...` when it serves TLS).
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The certificate chain it serves, PEM, when it serves HTTPS: what a client puts in
    /// its CA bundle (`caData`, `certificate-authority-data`) to trust this server.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// Stops the server gracefully.
    pub async fn stop(self) {
        self.handle.stop(true).await
    }

    /// Compacts the store's history now, as `etcdctl compact` does: watches and continue
    /// tokens at older resourceVersions get 410 Expired.
    pub fn compact(&self) {
        self.state.store.compact()
    }

    /// The current cluster-wide resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state.store.rv()
    }

    /// How many requests reached the server so far, failed or not (tests count upstream
    /// fetches with it).
    pub fn requests(&self) -> u64 {
        self.state.requests()
    }

    /// The last requests that reached the server (at most 1024), oldest first: which
    /// token each authenticated with and the impersonation headers it carried (tests
    /// assert what a proxy sent with it).
    pub fn seen(&self) -> Vec<SimRequest> {
        self.state.seen()
    }

    /// How many connections the server accepted so far (counted after the TLS handshake, so
    /// a client that gave up during it is not counted).
    pub fn connections(&self) -> u64 {
        self.state.connections()
    }

    /// How many watches are open.
    pub fn watchers(&self) -> usize {
        self.state.store.watchers()
    }

    /// The shared state (store, auth, faults), for other simulated endpoints.
    pub fn state(&self) -> Arc<state::SimState> {
        self.state.clone().into_inner()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        // Fire-and-forget stop; the returned future need not be awaited.
        drop(self.handle.stop(false));
    }
}

/// Builds the state of a simulated cluster: built-in namespaces, then the seed.
pub(crate) fn build_state(cluster: &SimClusterConfig) -> Result<state::SimState, seed::SeedError> {
    let state = state::SimState::new(cluster);
    for custom in &cluster.custom_types {
        state
            .add_custom(custom)
            .map_err(|message| seed::SeedError {
                source_name: cluster.name.clone(),
                message: format!("custom resource type {}: {message}", custom.kind),
            })?;
    }
    seed::builtins(&state.store).map_err(|e| seed::SeedError {
        source_name: cluster.name.clone(),
        message: e.message,
    })?;
    if let Some(source) = &cluster.seed {
        seed::load(&state, source)?;
    }
    Ok(state)
}

/// Registers the simulated API on an app whose `app_data` holds the
/// `web::Data<SimState>` and a per-worker [`api::ProxyClient`].
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    api::configure(cfg);
}

/// The names a self-signed certificate for listen address `addr` (resolved: `resolved`)
/// carries: its IP addresses and, for a host name, the name; plus `localhost`,
/// `127.0.0.1` and `::1` when one of the addresses is a loopback or unspecified one.
/// Unspecified addresses (`0.0.0.0`, `::`) are no name a client connects to and are left out.
fn certificate_names(addr: &str, resolved: &[SocketAddr]) -> (Vec<IpAddr>, Vec<String>) {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    if !host.is_empty() && host.parse::<IpAddr>().is_err() {
        dns.push(host.to_ascii_lowercase());
    }
    let mut local = false;
    for ip in resolved.iter().map(SocketAddr::ip) {
        local |= ip.is_loopback() || ip.is_unspecified();
        if !ip.is_unspecified() && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if local {
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        if !dns.iter().any(|d| d == "localhost") {
            dns.push("localhost".into());
        }
    }
    (ips, dns)
}

/// Starts a simulated cluster listening on `addr` (`127.0.0.1:0` for an ephemeral port),
/// serving HTTPS when `cluster.tls` says so. Must be called inside an actix (tokio)
/// runtime. A seed that cannot be loaded is an `InvalidData` error naming the seed and the
/// object; a certificate that cannot be generated is an `Other` error.
pub async fn spawn(addr: &str, cluster: &SimClusterConfig) -> std::io::Result<SimServer> {
    let state = web::Data::new(
        build_state(cluster)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?,
    );
    let resolved: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let tls = match &cluster.tls {
        SimTls::Off => None,
        SimTls::SelfSigned => {
            let (ips, dns) = certificate_names(addr, &resolved);
            let served = crate::tls::listener::self_signed(
                &format!("kubeplex simulated cluster {}", cluster.name),
                &ips,
                &dns,
            )
            .map_err(std::io::Error::other)?;
            Some((served.config, served.chain_pem))
        }
        SimTls::Certificate(c) => Some((c.config.as_ref().clone(), c.chain_pem.clone())),
    };
    let shared = state.clone();
    let counter = state.clone();
    let checker = state.clone();
    let pods = pods::PodsState::new(cluster).with_authorize(Arc::new(move |req, verb, ns| {
        checker
            .authorize(
                req,
                state::Attributes {
                    verb,
                    resource: "pods",
                    group: "",
                    subresource: None,
                    namespace: ns,
                    name: None,
                },
            )
            .map_err(|e| Box::new(actix_web::ResponseError::error_response(&e)))
    }));
    let server = actix_web::HttpServer::new(move || {
        let pods = pods.clone();
        actix_web::App::new()
            .app_data(shared.clone())
            .app_data(web::Data::new(api::ProxyClient::new()))
            .configure(routes)
            .configure(move |c| pods::configure(c, pods))
            .configure(api::objects::configure)
            .default_service(web::to(api::not_found))
            .wrap_fn(|req, srv| {
                let state = req.app_data::<web::Data<state::SimState>>().cloned();
                let early = state.as_ref().and_then(|s| s.gate(&req));
                let latency = state.as_ref().and_then(|s| s.latency());
                let pending = match early {
                    None => Ok(srv.call(req)),
                    Some(e) => Err(req.error_response(e)),
                };
                async move {
                    let res: ServiceResponse = match pending {
                        Ok(fut) => fut.await?.map_into_boxed_body(),
                        Err(res) => res.map_into_boxed_body(),
                    };
                    if let Some(d) = latency {
                        actix_web::rt::time::sleep(d).await;
                    }
                    Ok(res)
                }
            })
    })
    .on_connect(move |_, ext| {
        ext.insert(ConnectionId(counter.connected()));
    })
    // As Go's servers (an API server) do: HTTP/2 writes a response's HEADERS and DATA
    // frames separately, and Nagle would hold the second for the client's delayed ACK.
    .tcp_nodelay(true)
    .workers(1)
    // As the Kubernetes API server (Go sets TCP_NODELAY on every connection): a watch event
    // goes out when written.
    .tcp_nodelay(true)
    .disable_signals();
    let (server, ca_pem) = match tls {
        None => (server.bind(&resolved[..])?, None),
        Some((config, pem)) => (server.bind_rustls_0_23(&resolved[..], config)?, Some(pem)),
    };
    let local = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let scheme = if ca_pem.is_some() { "https" } else { "http" };
    Ok(SimServer {
        name: cluster.name.clone(),
        url: url::Url::parse(&format!("{scheme}://{local}"))
            .expect("socket address is a valid URL"),
        ca_pem,
        handle,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(addr: &str, resolved: &[&str]) -> (Vec<String>, Vec<String>) {
        let resolved: Vec<SocketAddr> = resolved.iter().map(|a| a.parse().unwrap()).collect();
        let (ips, dns) = certificate_names(addr, &resolved);
        (ips.iter().map(ToString::to_string).collect(), dns)
    }

    #[test]
    fn certificate_names_for_listen_addresses() {
        let local = (
            vec!["127.0.0.1".to_string(), "::1".to_string()],
            vec!["localhost".to_string()],
        );
        assert_eq!(names("127.0.0.1:0", &["127.0.0.1:0"]), local);
        assert_eq!(names("0.0.0.0:6443", &["0.0.0.0:6443"]), local);
        assert_eq!(names("[::]:6443", &["[::]:6443"]), local);
        assert_eq!(
            names("[::1]:0", &["[::1]:0"]),
            (
                vec!["::1".to_string(), "127.0.0.1".to_string()],
                vec!["localhost".to_string()]
            )
        );
        assert_eq!(names("localhost:0", &["127.0.0.1:0", "[::1]:0"]), local);
        assert_eq!(
            names("10.1.2.3:6443", &["10.1.2.3:6443"]),
            (vec!["10.1.2.3".to_string()], vec![])
        );
        assert_eq!(
            names("Sim.Example:6443", &["10.1.2.3:6443"]),
            (
                vec!["10.1.2.3".to_string()],
                vec!["sim.example".to_string()]
            )
        );
    }
}
