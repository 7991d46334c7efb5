//! `/metrics` (SPEC §9): kubeplex's Prometheus metrics, with prometheus-client.
//!
//! The names, types and labels are a contract with the Grafana dashboard
//! (`docker/grafana/METRICS.md`): `kubeplex_requests_total{route,cluster,method,code}`,
//! `kubeplex_request_duration_seconds{route,cluster}` and
//! `kubeplex_response_head_seconds{route,cluster}` (histograms),
//! `kubeplex_upstream_errors_total{cluster,kind}`, `kubeplex_open_watches{route}`,
//! `kubeplex_open_tunnels`, `kubeplex_bytes_total{direction}`,
//! `kubeplex_config_reloads_total{result}`, `kubeplex_aggregate_member_results_total{result}`,
//! `kubeplex_aggregate_cache_total{result}`, `kubeplex_cluster_up{cluster}` and
//! `kubeplex_jwks_refreshes_total{result}`.
//!
//! Labels never carry a path, a query, a token or a subject: `route` is one of five fixed
//! values, `cluster` a cluster key of the registry (or empty: refused before a cluster was
//! chosen, or a route that reads many), `method` one of the standard methods (else
//! `OTHER`), `code` the status code.
//!
//! This module is a leaf: the routes record through a [`Metrics`] handle in their state and
//! it reaches into none of them. Counts that other modules already keep (the aggregate
//! cache's hits and misses, the JWKS refreshes) are read at scrape time through
//! [`Metrics::set_source`], set by the app's wiring.
//!
//! The hot path pays for what it records and little more: a proxied request looks up its
//! [`Series`] (the route and cluster's histograms and request counters, resolved once per
//! route and cluster and kept) with one read-locked map lookup, then each record is an
//! atomic add or a short uncontended lock.

use crate::cluster::ClusterKey;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::Method;
use actix_web::HttpResponse;
use bytes::Bytes;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

/// The route a request came by: the `route` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Route {
    /// The header route, `{base}/proxy/...`.
    Proxy,
    /// The path route `{base}/clusters/{cluster}/...` and the list `GET {base}/clusters`.
    Clusters,
    /// `{base}/aggregate/...`.
    Aggregate,
    /// Backstage's entity routes.
    Backstage,
    /// The console plugin proxy.
    PluginProxy,
}

impl Route {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Route::Proxy => "proxy",
            Route::Clusters => "clusters",
            Route::Aggregate => "aggregate",
            Route::Backstage => "backstage",
            Route::PluginProxy => "plugin_proxy",
        }
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(self.as_str())
    }
}

/// A failure reaching a cluster: the `kind` label of `kubeplex_upstream_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UpstreamKind {
    /// TCP connect (or name resolution) failed.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The cluster did not answer in time.
    Timeout,
    /// The connection broke or the cluster spoke bad HTTP.
    Protocol,
}

impl UpstreamKind {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UpstreamKind::Connect => "connect",
            UpstreamKind::Tls => "tls",
            UpstreamKind::Timeout => "timeout",
            UpstreamKind::Protocol => "protocol",
        }
    }
}

impl EncodeLabelValue for UpstreamKind {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(self.as_str())
    }
}

/// The `cluster` label: a cluster key, or empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
struct ClusterLabel(Option<ClusterKey>);

impl ClusterLabel {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("", |k| k.as_str())
    }
}

impl EncodeLabelValue for ClusterLabel {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    cluster: ClusterLabel,
    method: &'static str,
    code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteClusterLabels {
    route: Route,
    cluster: ClusterLabel,
}

/// A cluster key as a label value, from its text (failures are rare: no handle kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct KeyLabel(Arc<str>);

impl EncodeLabelValue for KeyLabel {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UpstreamLabels {
    cluster: KeyLabel,
    kind: UpstreamKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: Route,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClusterLabels {
    cluster: ClusterLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

/// The method label: the standard methods by name, anything else `OTHER` (a caller must
/// not be able to grow the series without bound).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Bucket bounds of the latency histograms, in seconds: 1 ms to 1 minute.
const LATENCY_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Counts read at scrape time from the module that keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The aggregate cache: `(hits, misses)`.
    AggregateCache,
    /// The JWKS URL's fetches: `(ok, failed)`.
    JwksRefreshes,
}

type Read = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

/// The scrape-time counters ([`Source`]), as a prometheus-client collector.
#[derive(Default)]
struct Sources {
    cache: RwLock<Option<Read>>,
    jwks: RwLock<Option<Read>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sources")
    }
}

impl Sources {
    fn read(slot: &RwLock<Option<Read>>) -> (u64, u64) {
        slot.read()
            .ok()
            .and_then(|s| s.as_ref().map(|f| f()))
            .unwrap_or((0, 0))
    }
}

impl prometheus_client::collector::Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let families = [
            (
                "kubeplex_aggregate_cache",
                "Aggregate member reads by cache result",
                Self::read(&self.cache),
                ["hit", "miss"],
            ),
            (
                "kubeplex_jwks_refreshes",
                "Fetches of the portal's JWKS URL, by result",
                Self::read(&self.jwks),
                ["ok", "failed"],
            ),
        ];
        for (name, help, (a, b), results) in families {
            let c = ConstCounter::new(0u64);
            let mut m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            for (result, v) in results.into_iter().zip([a, b]) {
                let labels = ResultLabels { result };
                ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The metrics of one kubeplex; cheap to clone.
#[derive(Clone)]
pub(crate) struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteClusterLabels, Histogram, fn() -> Histogram>,
    head: Family<RouteClusterLabels, Histogram, fn() -> Histogram>,
    upstream_errors: Family<UpstreamLabels, Counter>,
    open_watches: Family<RouteLabels, Gauge>,
    open_tunnels: Gauge,
    bytes_in: Counter,
    bytes_out: Counter,
    reloads: Family<ResultLabels, Counter>,
    members: Family<ResultLabels, Counter>,
    cluster_up: Family<ClusterLabels, Gauge>,
    sources: Arc<Sources>,
    /// The clusters with a `kubeplex_cluster_up` series.
    probed: RwLock<Vec<ClusterKey>>,
    /// The series of each route and cluster seen so far.
    /// Looked up on every request: hashed with foldhash (keys are kubeplex's own routes and
    /// cluster keys, not a caller's input).
    series: RwLock<foldhash::HashMap<(Route, ClusterLabel), Series>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, the gauges and fixed-label counters at 0.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kubeplex_requests",
            "Answers sent, by route, cluster key, method and status code",
            requests.clone(),
        );
        let duration: Family<RouteClusterLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "kubeplex_request_duration_seconds",
            "Whole requests, until the last byte of the response (watches and tunnels excluded)",
            duration.clone(),
        );
        let head: Family<RouteClusterLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "kubeplex_response_head_seconds",
            "From the request to the response head",
            head.clone(),
        );
        let upstream_errors = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "kubeplex_upstream_errors",
            "Failures reaching a cluster, by kind (connect, tls, timeout, protocol)",
            upstream_errors.clone(),
        );
        let open_watches = Family::<RouteLabels, Gauge>::default();
        for route in [Route::Proxy, Route::Clusters, Route::Aggregate] {
            drop(open_watches.get_or_create(&RouteLabels { route }));
        }
        registry.register(
            "kubeplex_open_watches",
            "Watch streams open now",
            open_watches.clone(),
        );
        let open_tunnels = Gauge::default();
        registry.register(
            "kubeplex_open_tunnels",
            "WebSocket tunnels (exec, attach, port-forward, log streams) open now",
            open_tunnels.clone(),
        );
        let bytes = Family::<DirectionLabels, Counter>::default();
        let bytes_in = bytes
            .get_or_create(&DirectionLabels { direction: "in" })
            .clone();
        let bytes_out = bytes
            .get_or_create(&DirectionLabels { direction: "out" })
            .clone();
        registry.register(
            "kubeplex_bytes",
            "Body and tunnel bytes through kubeplex: in from callers, out to callers",
            bytes,
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        for result in ["ok", "failed"] {
            drop(reloads.get_or_create(&ResultLabels { result }));
        }
        registry.register(
            "kubeplex_config_reloads",
            "Configuration reloads (file change, SIGHUP), by result",
            reloads.clone(),
        );
        let members = Family::<ResultLabels, Counter>::default();
        for result in ["ok", "error"] {
            drop(members.get_or_create(&ResultLabels { result }));
        }
        registry.register(
            "kubeplex_aggregate_member_results",
            "Each cluster's part of an aggregate read, by result (ok: a 2xx or 404 answer)",
            members.clone(),
        );
        let cluster_up = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "kubeplex_cluster_up",
            "1 when the last background /version probe of the cluster answered, else 0",
            cluster_up.clone(),
        );
        let sources = Arc::new(Sources::default());
        registry.register_collector(Box::new(sources.clone()));
        Metrics(Arc::new(Inner {
            registry,
            requests,
            duration,
            head,
            upstream_errors,
            open_watches,
            open_tunnels,
            bytes_in,
            bytes_out,
            reloads,
            members,
            cluster_up,
            sources,
            probed: RwLock::default(),
            series: RwLock::default(),
        }))
    }

    /// The exposition: the Prometheus text format (0.0.4), or OpenMetrics when `openmetrics`.
    pub(crate) fn encode(&self, openmetrics: bool) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let r = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.0.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.0.registry)
        };
        if r.is_err() {
            out.clear();
        }
        out
    }

    /// Reads the counts of `source` at each scrape from `read`.
    pub(crate) fn set_source(
        &self,
        source: Source,
        read: impl Fn() -> (u64, u64) + Send + Sync + 'static,
    ) {
        let slot = match source {
            Source::AggregateCache => &self.0.sources.cache,
            Source::JwksRefreshes => &self.0.sources.jwks,
        };
        if let Ok(mut s) = slot.write() {
            *s = Some(Box::new(read));
        }
    }

    /// The series of `route` and `cluster` (`None`: the empty label), resolved once.
    pub(crate) fn series(&self, route: Route, cluster: Option<&ClusterKey>) -> Series {
        let key = (route, ClusterLabel(cluster.cloned()));
        if let Some(s) = self.0.series.read().ok().and_then(|m| m.get(&key).cloned()) {
            return s;
        }
        let labels = RouteClusterLabels {
            route,
            cluster: key.1.clone(),
        };
        let s = Series(Arc::new(SeriesInner {
            route,
            cluster: key.1.clone(),
            head: self.0.head.get_or_create_owned(&labels),
            duration: self.0.duration.get_or_create_owned(&labels),
            requests: self.0.requests.clone(),
            codes: RwLock::default(),
            total: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }));
        match self.0.series.write() {
            Ok(mut m) => m.entry(key).or_insert(s).clone(),
            Err(_) => s,
        }
    }

    /// Bytes received from a caller (request bodies, tunnel traffic to a cluster).
    pub(crate) fn bytes_in(&self) -> &Counter {
        &self.0.bytes_in
    }

    /// Bytes sent to a caller.
    pub(crate) fn bytes_out(&self) -> &Counter {
        &self.0.bytes_out
    }

    /// A failure reaching the cluster whose key is `cluster`.
    pub(crate) fn upstream_error(&self, cluster: &str, kind: UpstreamKind) {
        self.0
            .upstream_errors
            .get_or_create(&UpstreamLabels {
                cluster: KeyLabel(cluster.into()),
                kind,
            })
            .inc();
    }

    /// A watch stream opened on `route`; counted open until the guard drops.
    pub(crate) fn watch_opened(&self, route: Route) -> OpenGuard {
        let g = self
            .0
            .open_watches
            .get_or_create_owned(&RouteLabels { route });
        g.inc();
        OpenGuard(g)
    }

    /// A WebSocket tunnel opened; counted open until the guard drops.
    pub(crate) fn tunnel_opened(&self) -> OpenGuard {
        let g = self.0.open_tunnels.clone();
        g.inc();
        OpenGuard(g)
    }

    /// A configuration reload, `ok` or failed.
    pub(crate) fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.0.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// One member's part of an aggregate read.
    pub(crate) fn member_result(&self, ok: bool) {
        self.member_results(ok, 1);
    }

    /// `n` members answered (`ok`) or failed.
    pub(crate) fn member_results(&self, ok: bool, n: u64) {
        let result = if ok { "ok" } else { "error" };
        self.0
            .members
            .get_or_create(&ResultLabels { result })
            .inc_by(n);
    }

    /// The last probe of `cluster` answered (`up`) or not.
    pub(crate) fn cluster_up(&self, cluster: &ClusterKey, up: bool) {
        if let Ok(mut p) = self.0.probed.write() {
            if !p.contains(cluster) {
                p.push(cluster.clone());
            }
        }
        self.0
            .cluster_up
            .get_or_create(&ClusterLabels {
                cluster: ClusterLabel(Some(cluster.clone())),
            })
            .set(i64::from(up));
    }

    /// Drops the `kubeplex_cluster_up` series of clusters not in `keep` (gone in a reload).
    pub(crate) fn retain_clusters(&self, keep: &[ClusterKey]) {
        let Ok(mut probed) = self.0.probed.write() else {
            return;
        };
        probed.retain(|k| {
            let stay = keep.contains(k);
            if !stay {
                self.0.cluster_up.remove(&ClusterLabels {
                    cluster: ClusterLabel(Some(k.clone())),
                });
            }
            stay
        });
    }

    // Used by the readiness probes and the status page (issue 15, items 2 and 5).
    #[cfg_attr(not(test), allow(dead_code))]
    /// Requests and 5xx answers per cluster key since start (all routes), for the status
    /// page's rates.
    pub(crate) fn cluster_totals(&self) -> HashMap<String, (u64, u64)> {
        let mut out: HashMap<String, (u64, u64)> = HashMap::new();
        if let Ok(m) = self.0.series.read() {
            for s in m.values() {
                let e = out.entry(s.0.cluster.as_str().to_owned()).or_default();
                e.0 += s.0.total.load(Ordering::Relaxed);
                e.1 += s.0.errors.load(Ordering::Relaxed);
            }
        }
        out
    }
}

/// Keeps a gauge raised while it lives.
pub(crate) struct OpenGuard(Gauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The histograms and request counters of one route and cluster, resolved once.
#[derive(Clone)]
pub(crate) struct Series(Arc<SeriesInner>);

struct SeriesInner {
    route: Route,
    cluster: ClusterLabel,
    head: Histogram,
    duration: Histogram,
    requests: Family<RequestLabels, Counter>,
    /// This series' request counters by method and code, resolved on first use.
    codes: RwLock<Vec<(&'static str, u16, Counter)>>,
    total: AtomicU64,
    errors: AtomicU64,
}

impl Series {
    /// A response head went out: counts the request and observes the time to its head.
    pub(crate) fn responded(&self, method: &Method, code: u16, start: Instant) {
        let s = &self.0;
        s.head.observe(start.elapsed().as_secs_f64());
        s.total.fetch_add(1, Ordering::Relaxed);
        if code >= 500 {
            s.errors.fetch_add(1, Ordering::Relaxed);
        }
        let method = method_label(method);
        let found = s.codes.read().ok().and_then(|c| {
            c.iter()
                .find(|(m, c, _)| *m == method && *c == code)
                .map(|(_, _, n)| n.clone())
        });
        let counter = found.unwrap_or_else(|| {
            let n = s.requests.get_or_create_owned(&RequestLabels {
                route: s.route,
                cluster: s.cluster.clone(),
                method,
                code,
            });
            if let Ok(mut c) = s.codes.write() {
                if !c.iter().any(|(m, k, _)| *m == method && *k == code) {
                    c.push((method, code, n.clone()));
                }
            }
            n
        });
        counter.inc();
    }

    /// The whole request took from `start` until `end`.
    pub(crate) fn finished(&self, start: Instant, end: Instant) {
        self.0
            .duration
            .observe(end.saturating_duration_since(start).as_secs_f64());
    }
}

/// What a response records when its body ends or is dropped: the duration (unless the
/// response is open-ended: a watch, a followed log), the bytes sent, and the open-watch
/// count while it lives.
pub(crate) struct Observation {
    series: Series,
    start: Instant,
    /// The duration is still to be observed (not open-ended, not yet recorded).
    timed: bool,
    bytes_out: Counter,
    _watch: Option<OpenGuard>,
}

impl Observation {
    /// Records the response head (request count, head time) and starts the observation of
    /// the rest. `watch`: the response is a watch stream (counted open while it lives).
    pub(crate) fn start(
        metrics: &Metrics,
        series: Series,
        method: &Method,
        code: u16,
        start: Instant,
        open_ended: bool,
        watch: bool,
    ) -> Self {
        series.responded(method, code, start);
        let route = series.0.route;
        Observation {
            series,
            start,
            timed: !(open_ended || watch),
            bytes_out: metrics.bytes_out().clone(),
            _watch: watch.then(|| metrics.watch_opened(route)),
        }
    }

    /// `n` body bytes went to the caller.
    pub(crate) fn sent(&self, n: usize) {
        self.bytes_out.inc_by(n as u64);
    }

    /// The response ended at `end` (read by the caller, who needs the time too): records
    /// its duration now rather than when the observation is dropped.
    pub(crate) fn ended(&mut self, end: Instant) {
        if std::mem::take(&mut self.timed) {
            self.series.finished(self.start, end);
        }
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        if self.timed {
            self.series.finished(self.start, Instant::now());
        }
    }
}

/// `res` with its body observed by `obs` (bytes sent, duration at its end).
pub(crate) fn observed(res: HttpResponse, obs: Observation) -> HttpResponse {
    res.map_body(|_, body| ObservedBody { inner: body, obs }.boxed())
}

struct ObservedBody {
    inner: BoxBody,
    obs: Observation,
}

impl MessageBody for ObservedBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(b))) = &r {
            this.obs.sent(b.len());
        }
        r
    }
}

/// Registers `GET /metrics`: the Prometheus text format, or OpenMetrics when the scraper
/// asks for it (`Accept: application/openmetrics-text`).
pub(crate) fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.route("/metrics", actix_web::web::get().to(scrape));
}

async fn scrape(
    req: actix_web::HttpRequest,
    metrics: actix_web::web::Data<Metrics>,
) -> HttpResponse {
    let openmetrics = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "no-store"))
        .body(metrics.encode(openmetrics))
}

/// Whether a request asks for a watch: `?watch=1|true`, or a `/watch/` path
/// (`/api/v1/watch/...`, `/apis/{group}/{version}/watch/...`).
pub(crate) fn is_watch(path: &str, query: &str) -> bool {
    if path.contains("/watch") {
        let mut prev: Option<&str> = None;
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            if seg == "watch" && prev.is_some_and(|p| p.starts_with('v') || p == "api") {
                return true;
            }
            prev = Some(seg);
        }
    }
    query_flag(query, "watch")
}

/// Whether a request asks for a followed (open-ended) log: `?follow=true|1`.
pub(crate) fn is_follow(query: &str) -> bool {
    query_flag(query, "follow")
}

/// Whether `query` sets `name` to `1` or `true` (names and values percent-decoded). Without
/// a `%` and without `name` in it, it cannot: most requests stop there, unparsed.
fn query_flag(query: &str, name: &str) -> bool {
    if query.is_empty() || !query.contains('%') && !query.contains(name) {
        return false;
    }
    url::form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == name && (v == "1" || v == "true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_types_and_labels() {
        let m = Metrics::new();
        let key = ClusterKey::new("config", "a");
        let s = m.series(Route::Clusters, Some(&key));
        s.responded(&Method::GET, 200, Instant::now());
        s.responded(&Method::from_bytes(b"BREW").unwrap(), 502, Instant::now());
        let start = Instant::now();
        s.finished(start, start);
        m.upstream_error(key.as_str(), UpstreamKind::Tls);
        m.cluster_up(&key, true);
        m.set_source(Source::AggregateCache, || (3, 4));
        let text = m.encode(false);
        for line in [
            "# TYPE kubeplex_requests_total counter",
            "kubeplex_requests_total{route=\"clusters\",cluster=\"config:a\",method=\"GET\",code=\"200\"} 1",
            "kubeplex_requests_total{route=\"clusters\",cluster=\"config:a\",method=\"OTHER\",code=\"502\"} 1",
            "# TYPE kubeplex_request_duration_seconds histogram",
            "kubeplex_request_duration_seconds_count{route=\"clusters\",cluster=\"config:a\"} 1",
            "kubeplex_response_head_seconds_count{route=\"clusters\",cluster=\"config:a\"} 2",
            "kubeplex_upstream_errors_total{cluster=\"config:a\",kind=\"tls\"} 1",
            "kubeplex_open_tunnels 0",
            "kubeplex_open_watches{route=\"aggregate\"} 0",
            "kubeplex_bytes_total{direction=\"in\"} 0",
            "kubeplex_config_reloads_total{result=\"failed\"} 0",
            "kubeplex_aggregate_member_results_total{result=\"error\"} 0",
            "kubeplex_aggregate_cache_total{result=\"hit\"} 3",
            "kubeplex_aggregate_cache_total{result=\"miss\"} 4",
            "kubeplex_cluster_up{cluster=\"config:a\"} 1",
            "kubeplex_jwks_refreshes_total{result=\"ok\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert_eq!(m.cluster_totals()["config:a"], (2, 1));
        m.retain_clusters(&[]);
        assert!(!m.encode(false).contains("kubeplex_cluster_up{"));
        assert!(m.encode(true).ends_with("# EOF\n"));
    }

    #[test]
    fn watches_and_follows() {
        for (path, query, watch) in [
            ("/api/v1/pods", "watch=1", true),
            ("/api/v1/pods", "watch=true&x=1", true),
            ("/api/v1/pods", "watch=false", false),
            ("/api/v1/pods", "%77atch=1", true),
            ("/api/v1/watchers", "", false),
            ("/api/v1/watch/namespaces/a/pods", "", true),
            ("/apis/apps/v1/watch/deployments", "", true),
            ("/api/v1/namespaces/watch/pods", "", false),
            ("/api/v1/pods", "", false),
        ] {
            assert_eq!(is_watch(path, query), watch, "{path}?{query}");
        }
        assert!(is_follow("follow=true"));
        assert!(!is_follow("follow=false"));
    }
}
