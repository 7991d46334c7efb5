//! The application builder that `main` and the integration tests both use: locate the
//! clusters, build the registry, check it may serve, start the background owner
//! ([`crate::control`]), bind the HTTP server and hand back a [`RunningApp`].
//!
//! This module only wires: the proxy, plugin proxy, health and control layers each own
//! their state.

use crate::cluster::{Registry, RegistryHandle};
use crate::config::Settings;
use crate::control::{self, ControlHandle, ReloadFrom};
use crate::locate::{self, LocateError};
use crate::ops::readiness::{HealthState, Readiness};
use crate::proxy::{ProxySettings, ProxyState};
use actix_web::{web, App, HttpServer};
use std::net::SocketAddr;
use std::sync::Arc;

/// Why kubeplex could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A locator failed.
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// The configuration may not serve (no clusters, credentials lent to anyone, ...).
    #[error(transparent)]
    Unsafe(#[from] control::safety::SafetyError),
    /// The listener's certificate or key is unusable.
    #[error("{0}")]
    ListenerTls(#[from] crate::tls::TlsError),
    /// A plugin proxy entry names a cluster the locators did not find.
    #[error(transparent)]
    PluginProxy(crate::config::ConfigErrors),
    /// A portal token key of `kubeplex.auth` is unusable.
    #[error("{0}")]
    Auth(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A started kubeplex: its address and a handle to stop it.
pub struct RunningApp {
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
    /// Stops the server.
    pub handle: actix_web::dev::ServerHandle,
    /// The current registry.
    pub registry: RegistryHandle,
    /// What `/readyz` reports.
    pub readiness: Arc<Readiness>,
    /// Asks the background owner to reload.
    pub control: ControlHandle,
    /// The server future; `main` awaits it, tests spawn it.
    pub server: Option<actix_web::dev::Server>,
    https: bool,
    drain: crate::ops::drain::Drain,
}

/// Stops a running kubeplex: gracefully (SIGTERM) or at once; cheap to clone.
#[derive(Clone)]
pub struct Shutdown {
    handle: actix_web::dev::ServerHandle,
    readiness: Arc<Readiness>,
    drain: crate::ops::drain::Drain,
}

impl Shutdown {
    /// The graceful drain: `/readyz` turns 503, no new connections are accepted, watches
    /// end at their next event boundary and tunnels get a Close frame, in-flight requests
    /// finish (at most `shutdownTimeout`); resolves when the server has stopped.
    pub async fn drain(&self) {
        self.readiness
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.drain.start();
        self.handle.stop(true).await;
    }
}

impl RunningApp {
    /// What stops this kubeplex gracefully.
    pub fn shutdown(&self) -> Shutdown {
        Shutdown {
            handle: self.handle.clone(),
            readiness: self.readiness.clone(),
            drain: self.drain.clone(),
        }
    }

    /// `http://addr` for clients (`https://` with listener TLS).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

/// Locates the clusters and binds the server, for a configuration built in code (no
/// reload); the returned [`RunningApp::server`] must be awaited or spawned to serve.
pub async fn build(settings: Settings) -> Result<RunningApp, StartError> {
    build_reloading(settings, None).await
}

/// [`build`], reloading from `reload` (file changes when watched, and
/// [`ControlHandle::reload`]).
pub async fn build_reloading(
    settings: Settings,
    reload: Option<ReloadFrom>,
) -> Result<RunningApp, StartError> {
    let located = locate::locate_all(&settings).await?;
    let registry = Registry::new(
        located.iter().map(|l| l.to_list()).collect(),
        settings.duplicate_names,
    );
    control::safety::check(&settings, &registry)?;
    let plugins = crate::plugin_proxy::Table::build(&settings, &registry, None)
        .map_err(|e| StartError::PluginProxy(e.0))?;
    let plugins: crate::plugin_proxy::PluginHandle =
        Arc::new(arc_swap::ArcSwap::from_pointee(plugins));
    let registry = control::handle_for(registry);
    let readiness = Arc::new(Readiness::default());
    let auth =
        Arc::new(crate::identity::Authenticator::new(&settings.auth).map_err(StartError::Auth)?);
    let metrics = crate::ops::metrics::Metrics::new();
    let drain = crate::ops::drain::Drain::default();
    {
        let auth = auth.clone();
        metrics.set_source(crate::ops::metrics::Source::JwksRefreshes, move || {
            auth.jwks_counts()
        });
    }
    let proxy = web::Data::new(ProxyState {
        registry: registry.clone(),
        settings: ProxySettings::from(&settings.server),
        auth,
        metrics: metrics.clone(),
        drain: drain.clone(),
    });
    let health = web::Data::new(HealthState {
        registry: registry.clone(),
        readiness: readiness.clone(),
    });
    let aggregate = web::Data::new(crate::aggregate::AggregateState::new(&settings.aggregate));
    {
        let aggregate = aggregate.clone();
        metrics.set_source(crate::ops::metrics::Source::AggregateCache, move || {
            aggregate.cache.as_ref().map_or((0, 0), |c| {
                let n = c.counts();
                (n.hits, n.misses)
            })
        });
    }
    let metrics_data = web::Data::new(metrics.clone());
    let table = plugins.clone();
    let status = Arc::new(crate::ops::status::StatusState::new(
        registry.clone(),
        readiness.clone(),
        metrics.clone(),
        move || crate::plugin_proxy::status_rows(&table.load()),
    ));
    status.start_sampling();
    let status = web::Data::from(status);
    let backstage = web::Data::new(crate::backstage::BackstageState {
        settings: settings.backstage.clone(),
    });
    let plugin_state = web::Data::new(crate::plugin_proxy::PluginState {
        table: plugins.clone(),
    });
    let base_path = settings.server.base_path.clone();
    let cors = crate::ops::cors::Cors::new(settings.server.cors.as_ref());
    let takes = crate::proxy::front::Takes::new(
        &base_path,
        settings.server.cors.is_some(),
        crate::plugin_proxy::ROUTE,
    );
    let front_state = proxy.clone();
    let mut server = HttpServer::new(move || {
        let app = App::new()
            .wrap(cors.clone())
            .app_data(proxy.clone())
            .app_data(health.clone())
            .app_data(aggregate.clone())
            .app_data(backstage.clone())
            .app_data(metrics_data.clone())
            .app_data(status.clone())
            .app_data(plugin_state.clone())
            // Before the `{base}` routes: a base path of `/api` must not take the plugin route.
            .configure(crate::plugin_proxy::configure)
            .configure(crate::proxy::configure_header_route(&base_path))
            .configure(crate::aggregate::configure(&base_path))
            .configure(crate::backstage::configure(&base_path))
            .configure(crate::proxy::configure(&base_path))
            .configure(crate::ops::readiness::configure)
            .configure(crate::ops::metrics::configure)
            .configure(crate::ops::status::configure)
            .default_service(web::to(crate::proxy::no_route));
        // Most requests take the header route, ahead of the app's router.
        crate::proxy::front::Front::new(
            actix_service::IntoServiceFactory::into_factory(app),
            front_state.clone(),
            takes.clone(),
        )
    })
    .disable_signals()
    // Each client connection keeps a spare response-head timer for its requests.
    .on_connect(|_, ext| crate::proxy::deadline::install(ext))
    // Each write goes out at once: a small one (a watch event, the end of a response) is not
    // held back by Nagle's algorithm until the client's delayed ACK (up to 40 ms on Linux).
    .tcp_nodelay(true);
    if let Some(w) = settings.server.workers {
        server = server.workers(w);
    }
    // actix counts whole seconds: round `shutdownTimeout` up.
    let shutdown = settings.server.shutdown_timeout;
    server = server.shutdown_timeout(shutdown.as_millis().div_ceil(1000) as u64);
    let listen = settings.server.listen.clone();
    let server = match &settings.server.tls {
        Some(tls) => {
            let cfg = crate::tls::listener::server_config(&tls.cert_file, &tls.key_file)?;
            server.bind_rustls_0_23(&listen, cfg)
        }
        None => server.bind(&listen),
    }
    .map_err(|source| StartError::Listen {
        addr: listen.clone(),
        source,
    })?;
    let addr = server.addrs()[0];
    readiness
        .listening
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let https = settings.server.tls.is_some();
    let control = control::start(
        settings,
        located,
        registry.clone(),
        plugins,
        readiness.clone(),
        metrics,
        reload,
    );
    let server = server.run();
    Ok(RunningApp {
        addr,
        handle: server.handle(),
        registry,
        readiness,
        control,
        server: Some(server),
        https,
        drain,
    })
}

/// Builds and spawns the app on the current actix runtime (tests).
pub async fn spawn(settings: Settings) -> Result<RunningApp, StartError> {
    spawn_reloading(settings, None).await
}

/// [`build_reloading`] and spawn (tests).
pub async fn spawn_reloading(
    settings: Settings,
    reload: Option<ReloadFrom>,
) -> Result<RunningApp, StartError> {
    let mut app = build_reloading(settings, reload).await?;
    if let Some(server) = app.server.take() {
        actix_web::rt::spawn(server);
    }
    Ok(app)
}
