//! Discovery and OpenAPI documents for kubectl: `/version`, `/api`, `/api/v1`, `/apis`,
//! `/openapi/v3` and its `api/v1` document.

use actix_web::web;

/// Registers the discovery routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let _ = cfg;
}
