//! `/healthz` (the process answers) and `/readyz` (SPEC §9): ready when the configuration
//! is loaded and the registry has clusters. A failed reload keeps the previous
//! configuration serving, so it stays ready and says why in the body; a registry with no
//! clusters at all is not ready (503). The reason text is built from configuration
//! problems, which never carry a secret value or a query string.

use crate::cluster::RegistryHandle;
use actix_web::{web, HttpResponse};
use arc_swap::ArcSwapOption;
use std::sync::Arc;

/// What `/readyz` reports, written by the background owner (`crate::control`).
#[derive(Default)]
pub struct Readiness {
    /// Why the last configuration reload failed; `None` when it worked.
    pub reload_error: ArcSwapOption<String>,
}

/// The state the health routes read.
pub(crate) struct HealthState {
    /// The current registry.
    pub registry: RegistryHandle,
    /// The last reload's outcome.
    pub readiness: Arc<Readiness>,
}

/// Registers `GET /healthz` and `GET /readyz`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// `ok`, plus the reason when the last reload failed (kubeplex is still ready: it serves the
/// previous configuration); 503 when there are no clusters.
async fn readyz(state: web::Data<HealthState>) -> HttpResponse {
    if state.registry.load().clusters().is_empty() {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("not ready: no clusters are configured or located\n");
    }
    match state.readiness.reload_error.load_full() {
        None => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Some(why) => HttpResponse::Ok().content_type("text/plain").body(format!(
            "ok\nthe last configuration reload failed; serving the previous configuration:\n{why}\n"
        )),
    }
}
