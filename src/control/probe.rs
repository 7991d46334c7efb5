//! Background reachability probes (SPEC §9): every `kubeplex.server.probeInterval`
//! (default 10s; 0 turns them off) each cluster of the current registry is asked
//! `GET /version`, all at once, without a credential: any HTTP answer (a 401 included)
//! means the cluster is there; a connect, TLS or protocol failure, or no answer within the
//! probe timeout, means it is not. The results go to `/readyz` (each cluster's reachability
//! and latency, never readiness itself), the status page and `kubeplex_cluster_up`. No
//! request ever waits for a probe, and no request makes one.

use crate::cluster::{Cluster, Registry, RegistryHandle};
use crate::ops::metrics::Metrics;
use crate::ops::readiness::{rfc3339, Probe, Readiness};
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The most of an answer a probe reads.
const MAX_ANSWER: usize = 64 * 1024;

/// The longest a probe waits for an answer.
const MAX_PROBE_TIME: Duration = Duration::from_secs(5);

/// Starts the probes on the current actix runtime; they stop when kubeplex drains.
pub(crate) fn start(
    registry: RegistryHandle,
    readiness: Arc<Readiness>,
    metrics: Metrics,
    interval: Duration,
    connect_timeout: Duration,
) {
    if interval.is_zero() {
        return;
    }
    let timeout = interval.clamp(Duration::from_secs(1), MAX_PROBE_TIME);
    actix_web::rt::spawn(async move {
        loop {
            if readiness.draining.load(Ordering::Relaxed) {
                return;
            }
            let reg = registry.load_full();
            let probes = futures_util::future::join_all(
                reg.clusters()
                    .iter()
                    .map(|c| probe(&reg, c, connect_timeout, timeout)),
            )
            .await;
            let mut out = BTreeMap::new();
            for (c, p) in reg.clusters().iter().zip(probes) {
                metrics.cluster_up(&c.key, p.reachable);
                out.insert(c.key.to_string(), p);
            }
            let keys: Vec<_> = reg.clusters().iter().map(|c| c.key.clone()).collect();
            metrics.retain_clusters(&keys);
            readiness.probes.store(Arc::new(out));
            actix_web::rt::time::sleep(interval).await;
        }
    });
}

/// One `GET /version` of `cluster`, without a credential.
async fn probe(
    registry: &Registry,
    cluster: &Arc<Cluster>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Probe {
    let start = Instant::now();
    let result = async {
        let up = crate::upstream::client::for_cluster(registry, cluster, connect_timeout)
            .map_err(|e| e.message)?;
        let uri = up.target("/version", None).map_err(|e| e.message)?;
        let body = http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed();
        let mut req = http1::Request::new(body);
        *req.uri_mut() = http1::Uri::try_from(uri).map_err(|e| e.to_string())?;
        req.headers_mut().insert(
            http1::header::ACCEPT,
            http1::HeaderValue::from_static("application/json"),
        );
        let res = up
            .http
            .request(req)
            .await
            .map_err(|e| crate::tls::describe::describe_chain(&e))?;
        let status = res.status().as_u16();
        // Read the small answer so the connection goes back to the pool; a large one is
        // dropped unread (with its connection).
        let _ = http_body_util::Limited::new(res.into_body(), MAX_ANSWER)
            .collect()
            .await;
        Ok::<u16, String>(status)
    };
    let outcome = match tokio::time::timeout(timeout, result).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        )),
    };
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let checked_at = rfc3339(SystemTime::now());
    match outcome {
        Ok(status) => Probe {
            reachable: true,
            status: Some(status),
            latency_ms,
            checked_at,
            error: None,
        },
        Err(error) => Probe {
            reachable: false,
            status: None,
            latency_ms,
            checked_at,
            error: Some(error),
        },
    }
}
