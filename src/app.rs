//! The application builder that `main` and the integration tests both use: locate the
//! clusters, build the registry, start the HTTP server, and hand back a [`RunningApp`].

use crate::config::Settings;
use crate::locate::{self, Located};
use crate::registry::Registry;
use actix_web::{web, App, HttpResponse, HttpServer};
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::Arc;

/// State shared by every worker.
pub struct AppState {
    /// The configuration the app started with.
    pub settings: Settings,
    /// The current registry; swapped on reload or catalog refresh.
    pub registry: ArcSwap<Registry>,
    /// Why the last configuration reload failed, for `/readyz`; `None` when it worked.
    pub reload_error: arc_swap::ArcSwapOption<String>,
    /// The catalog locators' refresh tasks (restarted on reload).
    pub catalogs: crate::locate::catalog::Refreshers,
}

/// A started kubeplex: its address and a handle to stop it.
pub struct RunningApp {
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
    /// Stops the server.
    pub handle: actix_web::dev::ServerHandle,
    /// Shared state (registry, settings).
    pub state: Arc<AppState>,
    /// The server future; `main` awaits it, tests spawn it.
    pub server: Option<actix_web::dev::Server>,
    /// Locator results whose in-process servers must live as long as the app.
    pub located: Vec<Located>,
}

impl RunningApp {
    /// `http://addr` for clients (`https://` with listener TLS).
    pub fn url(&self) -> String {
        let scheme = if self.state.settings.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }
}

/// Locates the clusters and binds the server; the returned [`RunningApp::server`] must be
/// awaited or spawned to serve.
pub async fn build(settings: Settings) -> Result<RunningApp, crate::status::Error> {
    let located = locate::locate_all(&settings).await?;
    let registry = Registry::new(&located, settings.duplicate_names);
    crate::upstream::tls::warn_skip_verify(registry.clusters().iter().map(|c| &**c));
    let state = Arc::new(AppState {
        settings: settings.clone(),
        registry: ArcSwap::from_pointee(registry),
        reload_error: Default::default(),
        catalogs: Default::default(),
    });
    crate::locate::catalog::start_refreshers(&state, &settings);
    let data = web::Data::from(state.clone());
    let base_path = settings.server.base_path.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(crate::proxy::configure(&base_path))
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().body("ok") }),
            )
            .route("/readyz", web::get().to(crate::reload::readyz))
    })
    .disable_signals();
    if let Some(w) = settings.server.workers {
        server = server.workers(w);
    }
    let server = match &settings.server.tls {
        Some(tls) => {
            let cfg =
                crate::server_tls::server_config(tls).map_err(crate::status::Error::internal)?;
            server.bind_rustls_0_23(&settings.server.listen, cfg)
        }
        None => server.bind(&settings.server.listen),
    }
    .map_err(|e| {
        crate::status::Error::internal(format!("cannot listen on {}: {e}", settings.server.listen))
    })?;
    let addr = server.addrs()[0];
    let server = server.run();
    Ok(RunningApp {
        addr,
        handle: server.handle(),
        state,
        server: Some(server),
        located,
    })
}

/// Builds and spawns the app on the current actix runtime (tests).
pub async fn spawn(settings: Settings) -> Result<RunningApp, crate::status::Error> {
    let mut app = build(settings).await?;
    if let Some(server) = app.server.take() {
        actix_web::rt::spawn(server);
    }
    Ok(app)
}
