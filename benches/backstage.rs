//! Backstage entity routes benchmark (SPEC §10, issue 12): the workloads query
//! `POST {base}/resources/workloads/query {"entityRef": "component:default/cart"}` over N
//! simulated clusters (20 by default), to kubeplex cold (`cacheTtl: 0s`), kubeplex cached
//! (`cacheTtl: 60s`, so every measured request after the first is a cache hit) and
//! Backstage's own Kubernetes backend (`@backstage/plugin-kubernetes-backend` 0.21.15 in
//! Node, `tests/backstage-backend/`) in the same run, all three configured from the same
//! app-config `kubernetes` block and reading the entity from the same catalog (the
//! harness's, in the Node process). Each answer holds, per cluster, the 13 default object
//! types and the pod metrics of the entity: 15 upstream requests per cluster.
//!
//! Before measuring, the three answers are checked equal (up to kubeplex's `cluster.key`).
//! Measures over loopback with reqwest: p50/p99 of `ROUNDS` sequential queries to each
//! (interleaved: one to each target in turn), then requests/s of `BURST` queries with 8 in
//! flight to each target in turn (failed queries counted, not retried); and, for scale, the catalog read of the
//! entity alone. Prints a markdown table.
//!
//! Run: `cargo bench --bench backstage` (optional env: `CLUSTERS=20`, `ROUNDS=50`,
//! `BURST=100`, `NOISE=20` unrelated Deployments and Services per cluster). Needs Node.js and
//! npm (the harness runs `npm ci` once when its `node_modules` is missing). The simulators
//! run in one actix system (each with its one worker), kubeplex in another with 2 workers,
//! the client in a multi-threaded tokio runtime; Backstage is one Node process.

#[allow(dead_code)]
#[path = "../tests/it/backstage_backend_support/mod.rs"]
mod support;

use kubeplex::config::{load_with_env, tree::Env, Settings, Source};
use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use serde_json::{json, Value};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";
const QUERY: &str = "/api/kubernetes/resources/workloads/query";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One cluster's objects: the entity `cart` in namespace `shop` (Deployment of 2 replicas
/// with requests and limits, so a ReplicaSet and 2 Pods; Service, ConfigMap, HPA, Ingress)
/// and `noise` Deployments and Services of other components.
fn seed(noise: usize) -> String {
    let mut s = String::from(
        r#"apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: cart, namespace: shop, labels: {app: cart, backstage.io/kubernetes-id: cart}}
  spec:
    replicas: 2
    selector: {matchLabels: {app: cart}}
    template:
      metadata: {labels: {app: cart, backstage.io/kubernetes-id: cart}}
      spec:
        containers:
        - name: cart
          image: registry.example.com/shop/cart:1.4.2
          ports: [{containerPort: 8080}]
          resources:
            requests: {cpu: 250m, memory: 128Mi}
            limits: {cpu: "1", memory: 256Mi}
- apiVersion: v1
  kind: Service
  metadata: {name: cart, namespace: shop, labels: {app: cart, backstage.io/kubernetes-id: cart}}
  spec: {selector: {app: cart}, ports: [{port: 80, targetPort: 8080}]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cart-config, namespace: shop, labels: {backstage.io/kubernetes-id: cart}}
  data: {LOG_LEVEL: info}
- apiVersion: autoscaling/v2
  kind: HorizontalPodAutoscaler
  metadata: {name: cart, namespace: shop, labels: {backstage.io/kubernetes-id: cart}}
  spec:
    scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: cart}
    minReplicas: 2
    maxReplicas: 6
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: cart, namespace: shop, labels: {backstage.io/kubernetes-id: cart}}
  spec:
    rules:
    - host: cart.example.com
      http:
        paths:
        - {path: /, pathType: Prefix, backend: {service: {name: cart, port: {number: 80}}}}
"#,
    );
    for i in 0..noise {
        s.push_str(&format!(
            r#"- apiVersion: apps/v1
  kind: Deployment
  metadata: {{name: app-{i:02}, namespace: shop, labels: {{app: app-{i:02}, backstage.io/kubernetes-id: app-{i:02}}}}}
  spec:
    replicas: 1
    selector: {{matchLabels: {{app: app-{i:02}}}}}
    template:
      metadata: {{labels: {{app: app-{i:02}, backstage.io/kubernetes-id: app-{i:02}}}}}
      spec: {{containers: [{{name: app, image: registry.example.com/shop/app-{i:02}:1.0.0}}]}}
- apiVersion: v1
  kind: Service
  metadata: {{name: app-{i:02}, namespace: shop, labels: {{app: app-{i:02}, backstage.io/kubernetes-id: app-{i:02}}}}}
  spec: {{selector: {{app: app-{i:02}}}, ports: [{{port: 80}}]}}
"#
        ));
    }
    s
}

/// Starts `n` simulators in their own thread; their URLs.
fn start_sims(n: usize, noise: usize) -> Vec<String> {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let text = seed(noise);
            let mut sims = Vec::new();
            for i in 0..n {
                let cfg = SimClusterConfig::new(
                    format!("c{i:02}"),
                    Some(SeedSource::Text {
                        name: format!("c{i:02} seed"),
                        text: text.clone(),
                    }),
                    [TOKEN],
                );
                sims.push(kubeplex::sim::spawn("127.0.0.1:0", &cfg).await.unwrap());
            }
            tx.send(sims.iter().map(|s| s.client_url()).collect::<Vec<_>>())
                .unwrap();
            std::future::pending::<()>().await;
            drop(sims);
        })
    });
    rx.recv().unwrap()
}

/// kubeplex's settings from the app-config text Backstage gets, with its own block.
fn settings(kubernetes: &Value, catalog: &str, ttl: &str) -> Settings {
    let config = json!({
        "kubernetes": kubernetes,
        "kubeplex": {
            "server": {"listen": "127.0.0.1:0", "workers": 2},
            "backstage": {"catalogUrl": catalog},
            "aggregate": {"cacheTtl": ttl, "timeout": "30s"},
        },
    });
    load_with_env(
        &[Source::Inline {
            name: "bench app-config".into(),
            text: config.to_string(),
        }],
        &Env::new(),
    )
    .unwrap_or_else(|e| panic!("kubeplex refused the config: {e}"))
}

/// Starts kubeplex cold and cached in their own thread; their URLs.
fn start_kubeplex(kubernetes: Value, catalog: String) -> (String, String) {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let cold = kubeplex::app::spawn(settings(&kubernetes, &catalog, "0s"))
                .await
                .unwrap();
            let cached = kubeplex::app::spawn(settings(&kubernetes, &catalog, "60s"))
                .await
                .unwrap();
            tx.send((cold.url(), cached.url())).unwrap();
            std::future::pending::<()>().await;
            drop((cold, cached));
        })
    });
    rx.recv().unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// One workloads query: the time and the answer, or the failure.
async fn try_query(client: &reqwest::Client, base: &str) -> Result<(Duration, Value), String> {
    let t = Instant::now();
    let r = client
        .post(format!("{base}{QUERY}"))
        .header("authorization", support::MOCK_USER_AUTH)
        .json(&json!({"entityRef": "component:default/cart", "auth": {}}))
        .send()
        .await
        .map_err(|e| format!("{base}: {e}"))?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| format!("{base}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{base}: {status} {body}"));
    }
    Ok((t.elapsed(), body))
}

/// One workloads query that must succeed.
async fn query(client: &reqwest::Client, base: &str) -> (Duration, Value) {
    try_query(client, base)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `rounds` sequential queries to each of `bases`, interleaved (one to each in turn, so a
/// busy moment of a shared machine hits all alike); each one's sorted times.
async fn series(bases: &[&str], rounds: usize) -> Vec<Vec<Duration>> {
    let client = &client();
    for base in bases {
        query(client, base).await;
    }
    let mut v = vec![Vec::with_capacity(rounds); bases.len()];
    for _ in 0..rounds {
        for (i, base) in bases.iter().enumerate() {
            v[i].push(query(client, base).await.0);
        }
    }
    for s in &mut v {
        s.sort();
    }
    v
}

/// `rounds` sequential catalog reads of the entity (what every query costs before the
/// clusters are asked, in both).
async fn catalog_series(backstage: &str, rounds: usize) -> Vec<Duration> {
    let client = &client();
    let url = format!("{backstage}/api/catalog/entities/by-name/component/default/cart");
    let mut v = Vec::with_capacity(rounds);
    for _ in 0..=rounds {
        let t = Instant::now();
        let r = client
            .get(&url)
            .header("authorization", support::MOCK_USER_AUTH)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        v.push(t.elapsed());
    }
    v.remove(0);
    v.sort();
    v
}

/// `burst` queries, 8 in flight: requests per second (of all, answered or not) and the
/// failures, with the first failure's text.
async fn throughput(base: &str, burst: usize) -> (f64, usize, Option<String>) {
    let client = &client();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, base, next) = (client.clone(), base.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < burst {
                if let Err(e) = try_query(&client, &base).await {
                    failed.push(e);
                }
            }
            failed
        }));
    }
    let mut failed = Vec::new();
    for t in tasks {
        failed.extend(t.await.unwrap());
    }
    let rps = burst as f64 / t.elapsed().as_secs_f64();
    (rps, failed.len(), failed.into_iter().next())
}

/// The answer without kubeplex's `cluster.key`, items sorted by cluster name.
fn normalize(answer: &Value) -> Value {
    let mut v = answer.clone();
    if let Some(items) = v["items"].as_array_mut() {
        for i in items.iter_mut() {
            if let Some(c) = i["cluster"].as_object_mut() {
                c.shift_remove("key");
            }
        }
        items.sort_by_key(|i| i["cluster"]["name"].as_str().unwrap_or("").to_string());
    }
    v
}

fn main() {
    let n = env("CLUSTERS", 20);
    let rounds = env("ROUNDS", 50);
    let burst = env("BURST", 100);
    let noise = env("NOISE", 20);
    let sims = start_sims(n, noise);
    let clusters: Vec<Value> = sims
        .iter()
        .enumerate()
        .map(|(i, url)| {
            json!({"name": format!("c{i:02}"), "url": url, "authProvider": "serviceAccount",
                   "serviceAccountToken": TOKEN})
        })
        .collect();
    let kubernetes = json!({
        "serviceLocatorMethod": {"type": "multiTenant"},
        "clusterLocatorMethods": [{"type": "config", "clusters": clusters}],
    });
    let cart = json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "cart", "namespace": "default"},
        "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"},
    });
    let backstage = support::BackstageBackend::start_blocking(&json!({
        "kubernetes": kubernetes,
        "entities": [cart],
    }));
    let (cold, cached) = start_kubeplex(kubernetes, format!("{}/api/catalog", backstage.url));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let table = rt.block_on(async {
        // The same answer from all three, before anything is measured.
        let c = client();
        let (_, b) = query(&c, &backstage.url).await;
        let (_, k) = query(&c, &cold).await;
        let (_, kc) = query(&c, &cached).await;
        let items = b["items"].as_array().map_or(0, Vec::len);
        assert_eq!(items, n, "every cluster answers: {b}");
        assert!(
            b["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["errors"] == json!([])
                    && i["podMetrics"].as_array().map_or(0, Vec::len) == 2),
            "{b}"
        );
        assert_eq!(normalize(&b), normalize(&k), "kubeplex cold and Backstage differ");
        assert_eq!(normalize(&b), normalize(&kc), "kubeplex cached and Backstage differ");
        let body = serde_json::to_vec(&b).unwrap().len();

        let mut rows = vec![
            format!(
                "workloads query over {n} clusters ({} upstream requests per uncached query), answer {:.0} KB; {rounds} sequential queries to each (interleaved), then {burst} with 8 in flight\n",
                n * 15,
                body as f64 / 1e3
            ),
            "| target | p50 | p99 | requests/s (8 in flight) |".to_string(),
            "|---|---|---|---|".to_string(),
        ];
        let targets = [
            ("Backstage backend 0.21.15 (Node)", backstage.url.as_str()),
            ("kubeplex cold (cacheTtl 0s)", cold.as_str()),
            ("kubeplex cached (cacheTtl 60s)", cached.as_str()),
        ];
        let bases: Vec<&str> = targets.iter().map(|t| t.1).collect();
        let latencies = series(&bases, rounds).await;
        for ((name, base), s) in targets.iter().zip(&latencies) {
            let (rps, failed, first) = throughput(base, burst).await;
            if let Some(e) = first {
                eprintln!("{name}: {failed} of {burst} failed, the first: {e}");
            }
            let failures = if failed == 0 {
                String::new()
            } else {
                format!(" ({failed} of {burst} failed)")
            };
            let row = format!(
                "| {name} | {} | {} | {rps:.1}{failures} |",
                ms(pct(s, 0.5)),
                ms(pct(s, 0.99))
            );
            eprintln!("{row}");
            rows.push(row);
        }
        let c = catalog_series(&backstage.url, rounds).await;
        rows.push(format!(
            "\nfor scale: the catalog read of the entity alone (Node, part of every query of all three): p50 {}, p99 {}",
            ms(pct(&c, 0.5)),
            ms(pct(&c, 0.99))
        ));
        rows.join("\n")
    });
    println!("\n{table}");
}
