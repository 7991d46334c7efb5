//! Aggregation benchmark (SPEC §6, issue 11): N simulated clusters (50 and 100 by default)
//! of 200 Services each, and kubeplex in-process with a `config` locator of them. Measures
//! over loopback with reqwest: the aggregated list `GET {base}/aggregate/api/v1/services`
//! p50/p99 cold (cacheTtl 0) and cached (cacheTtl 2s), compared in the same run with the
//! slowest member's own list (`GET {sim}/api/v1/services` directly, the max over members of
//! each member's p50 and p99); requests/s of aggregated lists with 8 in flight; the peak RSS
//! of the process (VmHWM: kubeplex, every simulator and the client together). Prints a
//! markdown table.
//!
//! Also a merged watch over every member: the time from a create in one member until the
//! client reads the event.
//!
//! Then the memory of one aggregated list: the `kubeplex` binary as a child process (or the
//! one `KUBEPLEX_BIN` names, e.g. an older build to compare with) in front of `MEM_CLUSTERS`
//! simulated clusters (20) of `MEM_ITEMS` ConfigMaps (500) holding `MEM_DATA` bytes (8192)
//! each; the growth of its peak RSS (VmHWM, reset before the list through
//! `/proc/<pid>/clear_refs`) over its RSS before, for one aggregated list and then a second
//! one, read by a client that keeps nothing, with `cacheTtl: 0` (the streamed merge) and
//! `cacheTtl: 60s` (members' answers whole, for the cache), against the sum of the members'
//! list sizes and the largest one.
//!
//! Run: `cargo bench --bench aggregate` (optional env: `CLUSTERS=50,100`, `SERVICES=200`,
//! `ROUNDS=20`, `BURST=24`; `MEM_CLUSTERS=0` skips the memory part). The simulators and
//! both kubeplex instances run in one actix thread (each simulator with its one worker,
//! kubeplex with 2); the client is a multi-threaded tokio runtime.

#[path = "support/mod.rs"]
mod support;

use support::{
    aggregate_config, env, merged_watch_latency, pct, services_seed as seed, start_sims, timed_get,
    Kubeplex,
};

use kubeplex::config::{ClusterConfig, LocatorConfig, LocatorKind, Settings};
use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// What the actix thread started: each simulator's URL and the two kubeplex URLs.
struct Started {
    sims: Vec<String>,
    cold: String,
    cached: String,
}

fn settings(clusters: &[ClusterConfig], ttl: Duration) -> Settings {
    let mut s = Settings {
        locators: vec![LocatorConfig {
            id: "config".into(),
            kind: LocatorKind::Config {
                clusters: clusters.to_vec(),
            },
        }],
        ..Default::default()
    };
    s.server.listen = "127.0.0.1:0".into();
    s.server.workers = Some(2);
    s.aggregate.cache_ttl = ttl;
    s.aggregate.timeout = Duration::from_secs(30);
    s
}

/// Starts `n` simulators and two kubeplex instances (cold and cached) in their own thread.
fn start(n: usize, services: usize) -> Started {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let mut sims = Vec::new();
            let mut clusters = Vec::new();
            for i in 0..n {
                let cfg = SimClusterConfig::new(
                    format!("c{i:03}"),
                    Some(SeedSource::Text {
                        name: format!("c{i:03} seed"),
                        text: seed(i, services),
                    }),
                    Vec::<String>::new(),
                );
                let sim = kubeplex::sim::spawn("127.0.0.1:0", &cfg).await.unwrap();
                let url = sim.url().as_str().trim_end_matches('/').to_string();
                clusters.push(ClusterConfig {
                    name: format!("c{i:03}"),
                    url,
                    ..Default::default()
                });
                sims.push(sim);
            }
            let cold = kubeplex::app::spawn(settings(&clusters, Duration::ZERO))
                .await
                .unwrap();
            let cached = kubeplex::app::spawn(settings(&clusters, Duration::from_secs(2)))
                .await
                .unwrap();
            tx.send(Started {
                sims: clusters.iter().map(|c| c.url.clone()).collect(),
                cold: cold.url(),
                cached: cached.url(),
            })
            .unwrap();
            std::future::pending::<()>().await;
            drop((sims, cold, cached));
        })
    });
    rx.recv().unwrap()
}

fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

async fn series(url: &str, rounds: usize) -> Vec<Duration> {
    let client = &fresh_client();
    timed_get(client, url).await;
    let mut v = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        v.push(timed_get(client, url).await.0);
    }
    v.sort();
    v
}

/// `burst` aggregated lists, 8 in flight: requests per second.
async fn throughput(url: &str, burst: usize) -> f64 {
    // Fresh connections: pooled ones idle longer than the server's keep-alive may be closed
    // under a request.
    let client = &fresh_client();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, next) = (client.clone(), url.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < burst {
                timed_get(&client, &url).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    burst as f64 / t.elapsed().as_secs_f64()
}

async fn items(client: &reqwest::Client, url: &str) -> usize {
    let v: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
    v["items"].as_array().map_or(0, Vec::len)
}

/// A merged watch over every member: p50 and p99 of [`merged_watch_latency`].
async fn watch_latency(sims: &[String], aggregate: &str, rounds: usize) -> (Duration, Duration) {
    let times = merged_watch_latency(&fresh_client(), sims, aggregate, 0, rounds).await;
    (pct(&times, 0.5), pct(&times, 0.99))
}

fn config_map_seed(items: usize, data: usize) -> String {
    let blob: String = "0123456789abcdef".repeat(data / 16 + 1)[..data].to_string();
    let mut s = String::from(
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: mem}}\n",
    );
    for i in 0..items {
        s.push_str(&format!(
            "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: cm-{i:05}, namespace: mem, labels: {{app: mem}}}}\n  data: {{blob: \"{blob}\"}}\n"
        ));
    }
    s
}

/// Reads `url` chunk by chunk, keeping nothing but a count of bytes and of items (and any
/// `clusterErrors`).
async fn drain(client: &reqwest::Client, url: &str) -> (usize, usize, bool) {
    let mut r = client.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let (mut bytes, mut items, mut errors) = (0, 0, false);
    let mut tail: Vec<u8> = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        bytes += c.len();
        // Items: each ConfigMap has one "blob" key; the window spans chunk boundaries.
        tail.extend_from_slice(&c);
        items += tail.windows(7).filter(|w| w == b"\"blob\":").count();
        errors |= tail.windows(15).any(|w| w == b"\"clusterErrors\"");
        let keep = tail.len().min(14);
        tail.drain(..tail.len() - keep);
    }
    (bytes, items, errors)
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// The memory part (see the module docs): one markdown row.
fn memory(rt: &tokio::runtime::Runtime, n: usize, items: usize, data: usize) -> String {
    let seed = config_map_seed(items, data);
    let sims = start_sims("m", vec![seed; n]);
    rt.block_on(async {
        let client = fresh_client();
        let path = "/api/v1/namespaces/mem/configmaps";
        let mut sizes = Vec::new();
        for s in &sims {
            sizes.push(timed_get(&client, &format!("{s}{path}")).await.1 as u64);
        }
        let (sum, largest) = (sizes.iter().sum::<u64>(), *sizes.iter().max().unwrap());
        let mut cells = Vec::new();
        let mut merged = 0;
        for ttl in ["0s", "60s"] {
            let child =
                Kubeplex::start(&[], Some(aggregate_config("m", &sims, "120s", ttl)), "addr");
            let url = format!("http://{}/api/kubernetes/aggregate", child.addr);
            let client = fresh_client();
            // Warm: connections to every member, the worker's buffers.
            let (_, ns, _) = drain(&client, &format!("{}/api/v1/namespaces", url)).await;
            assert!(ns == 0, "namespaces have no blob");
            // Twice: the first list also grows the member connections' read buffers
            // (hyper's, up to ~400 KiB each, kept with the pooled connection); the second
            // finds them grown, which leaves the merge's own memory.
            let mut growth = Vec::new();
            for _ in 0..2 {
                let before = child.status("VmRSS:");
                child.reset_peak();
                let (bytes, count, errors) = drain(&client, &format!("{}{path}", url)).await;
                let peak = child.status("VmHWM:");
                assert_eq!(count, n * items, "every member's ConfigMaps");
                assert!(!errors, "no member failed");
                merged = bytes;
                growth.push(format!(
                    "+{} (from {})",
                    mb(peak.saturating_sub(before)),
                    mb(before)
                ));
            }
            cells.push(growth.join(", then "));
        }
        format!(
            "| {n} × {items} ConfigMaps of {data} B | {} | {} | {} | {} | {} |",
            mb(sum),
            mb(largest),
            mb(merged as u64),
            cells[0],
            cells[1]
        )
    })
}

fn main() {
    let counts: Vec<usize> = std::env::var("CLUSTERS")
        .unwrap_or_else(|_| "50,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let services = env("SERVICES", 200);
    let rounds = env("ROUNDS", 20);
    let burst = env("BURST", 24);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut table = vec![
        "| clusters | slowest member p50 / p99 | aggregated cold p50 / p99 | cold − slowest (p50) | aggregated cached p50 / p99 | cold req/s (8 in flight) | cached req/s (8 in flight) | body | merged watch: write to client p50 / p99 | peak RSS (VmHWM) |".to_string(),
        "|---|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    for n in counts {
        let started = start(n, services);
        let row = rt.block_on(async {
            let client = fresh_client();
            let path = "/api/v1/services";
            // The slowest member: each member's p50 and p99 over `rounds` direct lists,
            // the max over members.
            let (mut slow50, mut slow99) = (Duration::ZERO, Duration::ZERO);
            for s in &started.sims {
                let v = series(&format!("{s}{path}"), rounds).await;
                slow50 = slow50.max(pct(&v, 0.5));
                slow99 = slow99.max(pct(&v, 0.99));
            }
            let cold_url = format!("{}/api/kubernetes/aggregate{path}", started.cold);
            let cached_url = format!("{}/api/kubernetes/aggregate{path}", started.cached);
            let (_, body) = timed_get(&client, &cold_url).await;
            let total = items(&client, &cold_url).await;
            assert_eq!(total, n * (services + 1), "every member's Services");
            let cold = series(&cold_url, rounds).await;
            let cached = series(&cached_url, rounds).await;
            let cold_rps = throughput(&cold_url, burst).await;
            let cached_rps = throughput(&cached_url, burst).await;
            let client = fresh_client();
            // Whether the cache answered: a Service created in one member right after a
            // read must not show up in a read within the TTL. Each member's entry expires on
            // its own, so a pair of reads may straddle an expiry: three tries.
            let mut cache_works = false;
            for attempt in 0..3 {
                let before = items(&client, &cached_url).await;
                let created = client
                    .post(format!("{}/api/v1/namespaces/bench/services", started.sims[0]))
                    .json(&serde_json::json!({"metadata": {"name": format!("probe-{attempt}")},
                        "spec": {"ports": [{"port": 80}]}}))
                    .send()
                    .await
                    .unwrap();
                assert!(created.status().is_success());
                if items(&client, &cached_url).await == before {
                    cache_works = true;
                    break;
                }
            }
            let aggregate = format!("{}/api/kubernetes/aggregate", started.cold);
            let (w50, w99) = watch_latency(&started.sims, &aggregate, rounds).await;
            let cached_cells = if cache_works {
                (
                    format!("{} / {}", ms(pct(&cached, 0.5)), ms(pct(&cached, 0.99))),
                    format!("{cached_rps:.1}"),
                )
            } else {
                (
                    format!(
                        "cache not in this build ({} / {})",
                        ms(pct(&cached, 0.5)),
                        ms(pct(&cached, 0.99))
                    ),
                    format!("cache not in this build ({cached_rps:.1})"),
                )
            };
            format!(
                "| {n} × {services} | {} / {} | {} / {} | {:+.2} ms | {} | {cold_rps:.1} | {} | {:.1} MB, {total} items | {} / {} | {:.0} MB |",
                ms(slow50),
                ms(slow99),
                ms(pct(&cold, 0.5)),
                ms(pct(&cold, 0.99)),
                (pct(&cold, 0.5).as_secs_f64() - slow50.as_secs_f64()) * 1000.0,
                cached_cells.0,
                cached_cells.1,
                body as f64 / 1e6,
                ms(w50),
                ms(w99),
                peak_rss_mb(),
            )
        });
        eprintln!("{row}");
        table.push(row);
    }
    println!("\n{}", table.join("\n"));
    println!(
        "\n(peak RSS is the whole process, cumulative over the rows: kubeplex, every simulator and the client)"
    );
    let mem_clusters = env("MEM_CLUSTERS", 20);
    if mem_clusters > 0 {
        let row = memory(
            &rt,
            mem_clusters,
            env("MEM_ITEMS", 500),
            env("MEM_DATA", 8192),
        );
        println!(
            "\n| members | sum of the members' lists | largest member's list | merged list | kubeplex peak RSS over its RSS before, first list then second, cacheTtl 0 | the same, cacheTtl 60s |\n|---|---|---|---|---|---|\n{row}"
        );
    }
}
