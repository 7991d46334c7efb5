//! Upgraded connections (SPEC §3): WebSocket tunnels for exec, attach, port-forward and log
//! streams. Every request carrying `Upgrade:` comes here after the cluster is chosen and the
//! path checked. SPDY cannot be tunnelled through actix-web's server and is refused with a
//! `Status` saying what to use instead. The WebSocket tunnel itself is not built yet (501).

use crate::app::AppState;
use crate::registry::Cluster;
use crate::status::{Error, Reason};
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

/// Handles a request with an `Upgrade` header for `tail` on `cluster`. The upstream request
/// can be built with [`crate::proxy::forward::prepare`] (`keep_upgrade: true`), which applies
/// the header filtering and credential rules of SPEC §3.
pub async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    cluster: &Arc<Cluster>,
    tail: &str,
) -> Result<HttpResponse, Error> {
    let _ = (payload, state, tail);
    let upgrade = req
        .headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if upgrade
        .split(',')
        .any(|p| p.trim().to_ascii_uppercase().starts_with("SPDY/"))
    {
        return Err(Error::bad_request(
            "kubeplex tunnels WebSocket upgrades only, not SPDY: kubectl 1.31 and later use \
             WebSocket by default (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true, \
             KUBECTL_PORT_FORWARD_WEBSOCKETS=true); upgrade kubectl or set those variables",
        ));
    }
    if upgrade
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
    {
        return Err(Error::new(
            Reason::NotImplemented,
            format!(
                "WebSocket tunnelling to cluster {} is not implemented yet",
                cluster.key
            ),
        ));
    }
    Err(Error::bad_request(
        "unsupported Upgrade: kubeplex tunnels WebSocket only",
    ))
}
