//! What the benchmarks share (`#[path = "support/mod.rs"] mod support;` in each): settings
//! from the environment, percentiles, the Services seed of a simulated cluster, a timed GET.
//! Each bench uses some of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The number in environment variable `name`, or `default`.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` percentile (0.0-1.0) of `sorted`.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A seed of namespace `bench` and `services` Services labelled `app: app-{i % 20}`,
/// `tier: bench` and `cluster: c{cluster}`; the first also carries a portal entity's label
/// (`backstage.io/kubernetes-id: cart`).
pub fn services_seed(cluster: usize, services: usize) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: bench}}\n",
    );
    for i in 0..services {
        let entity = if i == 0 {
            ", backstage.io/kubernetes-id: cart"
        } else {
            ""
        };
        s.push_str(&format!(
            "- apiVersion: v1\n  kind: Service\n  metadata: {{name: svc-{i:04}, namespace: bench, labels: {{app: app-{a}, tier: bench, cluster: c{cluster}{entity}}}}}\n  \
             spec: {{selector: {{app: app-{a}}}, ports: [{{name: http, port: 80, targetPort: 8080}}, {{name: metrics, port: 9090}}]}}\n",
            a = i % 20
        ));
    }
    s
}

/// A GET of `url` that must succeed: its time and body length.
pub async fn timed_get(client: &reqwest::Client, url: &str) -> (Duration, usize) {
    let t = Instant::now();
    let r = client.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let body = r.bytes().await.unwrap();
    (t.elapsed(), body.len())
}
