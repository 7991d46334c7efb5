//! `/healthz` (the process answers) and `/readyz` (SPEC §9).
//!
//! Ready means: the configuration is loaded, the listener is up, the registry has clusters,
//! the last reload (if any) worked, and kubeplex is not draining (SIGTERM). One cluster
//! that does not answer never makes kubeplex unready: each cluster's reachability is
//! reported in the body, from the background `/version` probes of `crate::control::probe`
//! (never a request per readiness check). A failed reload does: the replica keeps serving
//! the previous configuration, but not the one its operator deployed, and says why.
//!
//! The body is plain text (`ok`, or `not ready: ...`), or JSON when the caller sends
//! `Accept: application/json`: the checks, the last reload and its error, each cluster's
//! last probe. Reasons are built from configuration problems and connection error
//! descriptions, which never carry a secret value, a URL's userinfo or a query string.

use crate::cluster::RegistryHandle;
use actix_web::{web, HttpRequest, HttpResponse};
use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// What `/readyz` reports, written by the background owner (`crate::control`), the probes
/// and the app (listener, drain).
pub struct Readiness {
    /// Why the last configuration reload failed; `None` when it worked.
    pub reload_error: ArcSwapOption<String>,
    /// When the last reload was tried, if ever.
    pub(crate) last_reload: ArcSwapOption<SystemTime>,
    /// The listener is bound.
    pub(crate) listening: AtomicBool,
    /// SIGTERM: finishing in-flight requests, taking no new ones.
    pub(crate) draining: AtomicBool,
    /// Each cluster's last probe, by key.
    pub(crate) probes: ArcSwap<BTreeMap<String, Probe>>,
    /// When kubeplex started.
    pub(crate) started: SystemTime,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            reload_error: ArcSwapOption::empty(),
            last_reload: ArcSwapOption::empty(),
            listening: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            probes: ArcSwap::from_pointee(BTreeMap::new()),
            started: SystemTime::now(),
        }
    }
}

/// One cluster's last `/version` probe.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    /// It answered (any HTTP status: the cluster is there).
    pub reachable: bool,
    /// The status it answered with.
    pub status: Option<u16>,
    /// How long the answer took, in milliseconds (also for a failure: until it failed).
    pub latency_ms: f64,
    /// When the probe ended (RFC 3339).
    pub checked_at: String,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// The state the health routes read.
pub(crate) struct HealthState {
    /// The current registry.
    pub registry: RegistryHandle,
    /// The last reload's outcome, the probes, the listener and drain flags.
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

/// RFC 3339 in UTC, seconds.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadyBody<'a> {
    ready: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    config_loaded: bool,
    started_at: String,
    listening: bool,
    draining: bool,
    last_reload: Option<ReloadBody>,
    clusters: Vec<ClusterBody<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReloadBody {
    at: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterBody<'a> {
    key: &'a str,
    name: &'a str,
    /// `null` until the first probe.
    reachable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    latency_ms: Option<f64>,
    checked_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

const RELOAD_FAILED: &str =
    "the last configuration reload failed; serving the previous configuration";

/// Why kubeplex is not ready, if it is not.
pub(crate) fn why_not_ready(registry: &RegistryHandle, r: &Readiness) -> Option<&'static str> {
    if r.draining.load(Ordering::Relaxed) {
        Some("draining: kubeplex is shutting down")
    } else if !r.listening.load(Ordering::Relaxed) {
        Some("the listener is not up")
    } else if registry.load().clusters().is_empty() {
        Some("no clusters are configured or located")
    } else if r.reload_error.load().is_some() {
        Some(RELOAD_FAILED)
    } else {
        None
    }
}

/// `ok` (200), or `not ready: why` (503); JSON when asked for.
async fn readyz(req: HttpRequest, state: web::Data<HealthState>) -> HttpResponse {
    let why = why_not_ready(&state.registry, &state.readiness);
    let mut res = match why {
        None => HttpResponse::Ok(),
        Some(_) => HttpResponse::ServiceUnavailable(),
    };
    res.insert_header(("cache-control", "no-store"));
    let reload_error = state.readiness.reload_error.load_full();
    let wants_json = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if !wants_json {
        let mut text = match why {
            None => "ok".to_string(),
            Some(w) => format!("not ready: {w}\n"),
        };
        if let Some(e) = &reload_error {
            if why != Some(RELOAD_FAILED) {
                text.push_str("\nthe last configuration reload failed:\n");
            }
            text.push_str(e);
            text.push('\n');
        }
        return res.content_type("text/plain").body(text);
    }
    let registry = state.registry.load();
    let probes = state.readiness.probes.load();
    let r = &state.readiness;
    let body = ReadyBody {
        ready: why.is_none(),
        reason: why,
        config_loaded: true,
        started_at: rfc3339(r.started),
        listening: r.listening.load(Ordering::Relaxed),
        draining: r.draining.load(Ordering::Relaxed),
        last_reload: r.last_reload.load_full().map(|at| ReloadBody {
            at: rfc3339(*at),
            ok: reload_error.is_none(),
            error: reload_error.as_deref().cloned(),
        }),
        clusters: registry
            .clusters()
            .iter()
            .map(|c| {
                let probe = probes.get(c.key.as_str());
                ClusterBody {
                    key: c.key.as_str(),
                    name: &c.spec.name,
                    reachable: probe.map(|p| p.reachable),
                    status: probe.and_then(|p| p.status),
                    latency_ms: probe.map(|p| p.latency_ms),
                    checked_at: probe.map(|p| p.checked_at.as_str()),
                    error: probe.and_then(|p| p.error.as_deref()),
                }
            })
            .collect(),
    };
    res.content_type("application/json")
        .body(serde_json::to_vec(&body).unwrap_or_default())
}
