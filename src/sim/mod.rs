//! The simulated cluster (SPEC §8): an in-memory Kubernetes API server for the v1 Service
//! API and what kubectl needs. It runs in-process behind the `simulated` locator, alone as
//! `kubeplex sim`, and as the upstream of the integration tests.

pub(crate) mod alloc;
pub(crate) mod api;
pub mod config;
pub(crate) mod discovery;
pub(crate) mod errors;
pub mod kinds;
pub mod model;
pub(crate) mod namespace;
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
use config::SimClusterConfig;
use std::sync::Arc;

/// A running simulated API server. Dropping it stops the server.
pub struct SimServer {
    url: url::Url,
    handle: actix_web::dev::ServerHandle,
    state: web::Data<state::SimState>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer").field("url", &self.url).finish()
    }
}

impl SimServer {
    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &url::Url {
        &self.url
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
        seed::load(&state.store, source)?;
    }
    Ok(state)
}

/// Registers the simulated API on an app whose `app_data` holds the
/// `web::Data<SimState>` and a per-worker [`api::ProxyClient`].
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    api::configure(cfg);
}

/// Starts a simulated cluster listening on `addr` (`127.0.0.1:0` for an ephemeral port).
/// Must be called inside an actix (tokio) runtime. A seed that cannot be loaded is an
/// `InvalidData` error naming the seed and the object.
pub async fn spawn(addr: &str, cluster: &SimClusterConfig) -> std::io::Result<SimServer> {
    let state = web::Data::new(
        build_state(cluster)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?,
    );
    let shared = state.clone();
    let checker = state.clone();
    let pods = pods::PodsState::new(cluster).with_authorize(Arc::new(move |req, verb, ns| {
        checker
            .authorize(
                req,
                state::Attributes {
                    verb,
                    resource: "pods",
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
    .workers(1)
    .disable_signals()
    .bind(addr)?;
    let local = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(SimServer {
        url: url::Url::parse(&format!("http://{local}")).expect("socket address is a valid URL"),
        handle,
        state,
    })
}
