//! `GET /`: the status page for operators (SPEC §9): every cluster with its key, name,
//! locator, title and auth provider, its reachability and latency from the background
//! probes, its request and error rates from the metrics; the last reload and its error;
//! version and uptime; links to `/metrics` and `/readyz`.
//!
//! The page is HTML rendered here, with its stylesheet and script served by kubeplex itself
//! (`/status.css`, `/status.js`: no CDN, no build step). It reads whole without JavaScript;
//! where JavaScript runs, it asks `GET /` for JSON (`Accept: application/json`) every few
//! seconds and redraws. Nothing on it is a URL or a credential: clusters are shown by key,
//! name, locator and title; reload errors are configuration problems, which never carry
//! secret values; probe errors are connection error descriptions.
//!
//! Rates are per second over the last minute, from the per-cluster totals of
//! [`Metrics::cluster_totals`] sampled every [`SAMPLE_EVERY`].

use crate::cluster::RegistryHandle;
use crate::ops::metrics::Metrics;
use crate::ops::readiness::{self, Readiness};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often the request totals are sampled for the rates.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The window of the rates.
const WINDOW: Duration = Duration::from_secs(60);
/// How often the page redraws where JavaScript runs, in milliseconds.
const REFRESH_MS: u64 = 2000;

const CSS: &str = include_str!("status.css");
const JS: &str = include_str!("status.js");

type Totals = HashMap<String, (u64, u64)>;

/// One plugin proxy entry as the page shows it (no Service URL, no credential).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PluginRow {
    /// The plugin's name.
    pub plugin: String,
    /// The alias.
    pub alias: String,
    /// `direct` or `apiserver`.
    pub via: &'static str,
    /// The cluster (name or key) as configured, if any.
    pub cluster: Option<String>,
    /// The Service's namespace.
    pub namespace: String,
    /// `None` or `UserToken`.
    pub authorization: &'static str,
}

type PluginRows = Box<dyn Fn() -> Vec<PluginRow> + Send + Sync>;

/// What the status page reads.
pub(crate) struct StatusState {
    /// The current registry.
    pub registry: RegistryHandle,
    /// Probes, reloads, drain.
    pub readiness: Arc<Readiness>,
    /// Request totals per cluster.
    pub metrics: Metrics,
    samples: Mutex<VecDeque<(Instant, Totals)>>,
    plugins: PluginRows,
}

impl StatusState {
    /// The state; `plugins` lists the plugin proxy entries now. Call
    /// [`StatusState::start_sampling`] for rates.
    pub(crate) fn new(
        registry: RegistryHandle,
        readiness: Arc<Readiness>,
        metrics: Metrics,
        plugins: impl Fn() -> Vec<PluginRow> + Send + Sync + 'static,
    ) -> Self {
        StatusState {
            registry,
            readiness,
            metrics,
            samples: Mutex::default(),
            plugins: Box::new(plugins),
        }
    }

    fn sample(&self) {
        let now = Instant::now();
        let totals = self.metrics.cluster_totals();
        if let Ok(mut s) = self.samples.lock() {
            s.push_back((now, totals));
            while s.len() > 2 && s.front().is_some_and(|(t, _)| now - *t > WINDOW) {
                s.pop_front();
            }
        }
    }

    /// Samples the totals every [`SAMPLE_EVERY`] on the current runtime, until draining.
    pub(crate) fn start_sampling(self: &Arc<Self>) {
        let me = self.clone();
        actix_web::rt::spawn(async move {
            loop {
                me.sample();
                actix_web::rt::time::sleep(SAMPLE_EVERY).await;
                if me
                    .readiness
                    .draining
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    return;
                }
            }
        });
    }

    /// Requests and 5xx per second per cluster key, over the window (`None`: no sample old
    /// enough yet).
    fn rates(&self) -> Option<HashMap<String, (f64, f64)>> {
        let now = Instant::now();
        let totals = self.metrics.cluster_totals();
        let samples = self.samples.lock().ok()?;
        let (t0, old) = samples
            .iter()
            .find(|(t, _)| now - *t <= WINDOW + SAMPLE_EVERY)?;
        let secs = (now - *t0).as_secs_f64();
        if secs < 1.0 {
            return None;
        }
        Some(
            totals
                .into_iter()
                .map(|(k, (n, e))| {
                    let (n0, e0) = old.get(&k).copied().unwrap_or((0, 0));
                    let r = (
                        n.saturating_sub(n0) as f64 / secs,
                        e.saturating_sub(e0) as f64 / secs,
                    );
                    (k, r)
                })
                .collect(),
        )
    }
}

/// Registers `GET /`, `/status.css` and `/status.js`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page))
        .route(
            "/status.css",
            web::get().to(|| async { asset(CSS, "text/css") }),
        )
        .route(
            "/status.js",
            web::get().to(|| async { asset(JS, "text/javascript") }),
        );
}

fn asset(body: &'static str, content_type: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(format!("{content_type}; charset=utf-8"))
        .insert_header(("cache-control", "no-cache"))
        .body(body)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    version: &'static str,
    started_at: String,
    uptime_seconds: u64,
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    draining: bool,
    last_reload: Option<Reload>,
    refresh_ms: u64,
    clusters: Vec<ClusterStatus>,
    plugins: Vec<PluginRow>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reload {
    at: String,
    ok: bool,
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterStatus {
    key: String,
    name: String,
    locator: String,
    title: Option<String>,
    auth_provider: Option<String>,
    /// `up`, `down` or `unknown` (not probed yet, or probes off).
    state: &'static str,
    latency_ms: Option<f64>,
    checked_at: Option<String>,
    error: Option<String>,
    requests_per_second: Option<f64>,
    errors_per_second: Option<f64>,
}

fn status(state: &StatusState) -> Status {
    let r = &state.readiness;
    let why = readiness::why_not_ready(&state.registry, r);
    let reload_error = r.reload_error.load_full();
    let registry = state.registry.load();
    let probes = r.probes.load();
    let rates = state.rates();
    let started = r.started;
    Status {
        version: env!("CARGO_PKG_VERSION"),
        started_at: readiness::rfc3339(started),
        uptime_seconds: SystemTime::now()
            .duration_since(started)
            .map_or(0, |d| d.as_secs()),
        ready: why.is_none(),
        reason: why,
        draining: r.draining.load(std::sync::atomic::Ordering::Relaxed),
        last_reload: r.last_reload.load_full().map(|at| Reload {
            at: readiness::rfc3339(*at),
            ok: reload_error.is_none(),
            error: reload_error.as_deref().cloned(),
        }),
        refresh_ms: REFRESH_MS,
        clusters: registry
            .clusters()
            .iter()
            .map(|c| {
                let probe = probes.get(c.key.as_str());
                let rate = rates
                    .as_ref()
                    .map(|r| r.get(c.key.as_str()).copied().unwrap_or((0.0, 0.0)));
                ClusterStatus {
                    key: c.key.to_string(),
                    name: c.spec.name.clone(),
                    locator: c.locator.clone(),
                    title: c.spec.title.clone(),
                    auth_provider: c.spec.auth_provider.clone(),
                    state: match probe {
                        Some(p) if p.reachable => "up",
                        Some(_) => "down",
                        None => "unknown",
                    },
                    latency_ms: probe.map(|p| p.latency_ms),
                    checked_at: probe.map(|p| p.checked_at.clone()),
                    error: probe.and_then(|p| p.error.clone()),
                    requests_per_second: rate.map(|r| r.0),
                    errors_per_second: rate.map(|r| r.1),
                }
            })
            .collect(),
        plugins: (state.plugins)(),
    }
}

async fn page(req: HttpRequest, state: web::Data<StatusState>) -> HttpResponse {
    let s = status(&state);
    let json = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let mut res = HttpResponse::Ok();
    res.insert_header(("cache-control", "no-store"))
        .insert_header((
            "content-security-policy",
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ))
        .insert_header(("x-content-type-options", "nosniff"));
    if json {
        return res
            .content_type("application/json")
            .body(serde_json::to_vec(&s).unwrap_or_default());
    }
    res.content_type("text/html; charset=utf-8").body(html(&s))
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1h 2m 3s`.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn rate(r: Option<f64>) -> String {
    match r {
        None => "–".into(),
        Some(0.0) => "0".into(),
        Some(r) if r < 10.0 => format!("{r:.2}"),
        Some(r) => format!("{r:.0}"),
    }
}

fn html(s: &Status) -> String {
    let mut o = String::with_capacity(8192);
    let (ready_class, ready_text) = match (s.ready, s.reason) {
        (true, _) => ("ok", "ready".to_string()),
        (false, Some(r)) => ("bad", format!("not ready: {r}")),
        (false, None) => ("bad", "not ready".to_string()),
    };
    let up = s.clusters.iter().filter(|c| c.state == "up").count();
    let down = s.clusters.iter().filter(|c| c.state == "down").count();
    let _ = write!(
        o,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kubeplex status</title>
<link rel="stylesheet" href="/status.css">
</head>
<body data-refresh-ms="{refresh}">
<header>
<h1>kubeplex</h1>
<span class="version">v{version}</span>
<span id="ready" class="pill {ready_class}">{ready_text}</span>
</header>
<main>
<section class="summary">
<dl>
<div><dt>Uptime</dt><dd id="uptime">{uptime}</dd></div>
<div><dt>Started</dt><dd id="started">{started}</dd></div>
<div><dt>Clusters</dt><dd id="counts">{n} ({up} up, {down} down)</dd></div>
<div><dt>Last reload</dt><dd id="reload">{reload}</dd></div>
</dl>
<pre id="reload-error"{hidden}>{reload_error}</pre>
</section>
<section>
<h2>Clusters</h2>
<table id="clusters">
<thead><tr><th>Cluster</th><th>Key</th><th>Locator</th><th>Title</th><th>Auth provider</th><th>State</th><th class="num">Latency</th><th class="num">Requests/s</th><th class="num">5xx/s</th><th>Checked</th></tr></thead>
<tbody>
"#,
        refresh = s.refresh_ms,
        version = esc(s.version),
        ready_text = esc(&ready_text),
        uptime = uptime(s.uptime_seconds),
        started = esc(&s.started_at),
        n = s.clusters.len(),
        reload = match &s.last_reload {
            None => "none since start".to_string(),
            Some(r) if r.ok => format!("{} (ok)", esc(&r.at)),
            Some(r) => format!("{} (failed)", esc(&r.at)),
        },
        hidden = if s.last_reload.as_ref().is_some_and(|r| !r.ok) {
            ""
        } else {
            " hidden"
        },
        reload_error = s
            .last_reload
            .as_ref()
            .and_then(|r| r.error.as_deref())
            .map(esc)
            .unwrap_or_default(),
    );
    for c in &s.clusters {
        let _ = writeln!(
            o,
            r#"<tr data-key="{key}" class="{state}"><td class="name">{name}</td><td class="key"><code>{key}</code></td><td>{locator}</td><td>{title}</td><td>{auth}</td><td class="state"><span class="badge {state}" title="{error}">{state}</span></td><td class="num">{latency}</td><td class="num">{rps}</td><td class="num">{eps}</td><td class="checked">{checked}</td></tr>"#,
            key = esc(&c.key),
            state = c.state,
            name = esc(&c.name),
            locator = esc(&c.locator),
            title = esc(c.title.as_deref().unwrap_or("")),
            auth = esc(c.auth_provider.as_deref().unwrap_or("")),
            error = esc(c.error.as_deref().unwrap_or("")),
            latency = c
                .latency_ms
                .map(|l| format!("{l:.1} ms"))
                .unwrap_or_else(|| "–".into()),
            rps = rate(c.requests_per_second),
            eps = rate(c.errors_per_second),
            checked = esc(c.checked_at.as_deref().unwrap_or("–")),
        );
    }
    o.push_str("</tbody>\n</table>\n</section>\n");
    if !s.plugins.is_empty() {
        o.push_str(
            "<section>\n<h2>Plugin proxies</h2>\n<table id=\"plugins\">\n<thead><tr><th>Plugin</th><th>Alias</th><th>Via</th><th>Cluster</th><th>Namespace</th><th>Authorization</th></tr></thead>\n<tbody>\n",
        );
        for p in &s.plugins {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.plugin),
                esc(&p.alias),
                p.via,
                esc(p.cluster.as_deref().unwrap_or("")),
                esc(&p.namespace),
                p.authorization
            );
        }
        o.push_str("</tbody>\n</table>\n</section>\n");
    }
    let _ = write!(
        o,
        r#"</main>
<footer>
<a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a> · <a href="/healthz">/healthz</a> · rates over the last minute · <span id="updated">rendered by the server</span>
</footer>
<script src="/status.js" defer></script>
</body>
</html>
"#
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(uptime(5), "5s");
        assert_eq!(uptime(65), "1m 5s");
        assert_eq!(uptime(3700), "1h 1m");
        assert_eq!(uptime(90000), "1d 1h");
        assert_eq!(rate(None), "–");
        assert_eq!(rate(Some(0.5)), "0.50");
        assert_eq!(rate(Some(12.4)), "12");
    }
}
