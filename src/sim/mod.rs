//! The simulated cluster (SPEC §8): an in-memory Kubernetes API server for the v1 Service
//! API and what kubectl needs. It runs in-process behind the `simulated` locator, alone as
//! `kubeplex sim`, and as the upstream of the integration tests.

pub mod discovery;
pub mod pods;
pub mod strict;
pub mod table;

use crate::config::SimClusterConfig;

/// A running simulated API server. Dropping it stops the server.
pub struct SimServer {
    url: url::Url,
    handle: actix_web::dev::ServerHandle,
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
}

impl Drop for SimServer {
    fn drop(&mut self) {
        // Fire-and-forget stop; the returned future need not be awaited.
        drop(self.handle.stop(false));
    }
}

/// Starts a simulated cluster listening on `addr` (`127.0.0.1:0` for an ephemeral port).
/// Must be called inside an actix (tokio) runtime.
pub async fn spawn(addr: &str, cluster: &SimClusterConfig) -> std::io::Result<SimServer> {
    let pods = pods::PodsState::new(cluster);
    let server = actix_web::HttpServer::new(move || {
        let pods = pods.clone();
        actix_web::App::new()
            .configure(move |c| pods::configure(c, pods))
            .configure(discovery::configure)
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
    })
}
