//! Simulated cluster benchmark: create throughput, list latency with 10,000 Services, and
//! watch fan-out (time from a write until 1,000 open watches have all received it).
//!
//! Run: `cargo bench --bench sim` (optional env: `SERVICES`, `WATCHERS`, `ROUNDS`).
//! The simulator runs in its own thread (one actix worker, as `sim::spawn` starts it); the
//! client is a multi-threaded tokio runtime with reqwest over loopback.

use kubeplex::sim::config::SimClusterConfig;
use serde_json::json;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let services = env("SERVICES", 10_000);
    let watchers = env("WATCHERS", 1_000);
    let rounds = env("ROUNDS", 20);

    // The simulator in its own thread and runtime.
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let cfg = SimClusterConfig {
                name: "bench".into(),
                ..Default::default()
            };
            let server = kubeplex::sim::spawn("127.0.0.1:0", &cfg).await.unwrap();
            tx.send(server.url().to_string()).unwrap();
            std::future::pending::<()>().await;
            drop(server);
        })
    });
    let base = rx.recv().unwrap().trim_end_matches('/').to_string();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();

        // 1. Create the Services, 32 requests in flight.
        let t = Instant::now();
        let mut tasks = Vec::new();
        let per = services.div_ceil(32);
        for w in 0..32 {
            let client = client.clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                for i in (w * per)..((w + 1) * per).min(services) {
                    let body = json!({"metadata":{"name":format!("svc-{i:05}"),"labels":{"app":format!("app-{}", i % 100),"tier":"bench"}},
                        "spec":{"selector":{"app":format!("app-{}", i % 100)},"ports":[{"name":"http","port":80,"targetPort":8080},{"name":"metrics","port":9090}]}});
                    let r = client
                        .post(format!("{base}/api/v1/namespaces/default/services"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let create = t.elapsed();
        println!("## Simulated cluster\n");
        println!(
            "created {services} Services in {:.2} s ({:.0} creates/s, 32 in flight)\n",
            create.as_secs_f64(),
            services as f64 / create.as_secs_f64()
        );

        // 2. List latency.
        println!("| request | p50 | p95 | max | body |");
        println!("|---|---|---|---|---|");
        for (label, path) in [
            ("list all 10,000 (`/api/v1/services`)", "/api/v1/services".to_string()),
            ("list one namespace", "/api/v1/namespaces/default/services".to_string()),
            ("page of 500 (`limit=500`)", "/api/v1/services?limit=500".to_string()),
            ("labelSelector (100 match)", "/api/v1/services?labelSelector=app%3Dapp-7".to_string()),
            ("get one", "/api/v1/namespaces/default/services/svc-04242".to_string()),
        ] {
            let mut times = Vec::new();
            let mut size = 0;
            for _ in 0..rounds {
                let t = Instant::now();
                let body = client
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                times.push(t.elapsed());
                size = body.len();
            }
            times.sort();
            println!(
                "| {label} | {} | {} | {} | {:.1} KB |",
                ms(pct(&times, 0.5)),
                ms(pct(&times, 0.95)),
                ms(times[times.len() - 1]),
                size as f64 / 1024.0
            );
        }

        // 3. Watch fan-out.
        let rv = {
            let v: serde_json::Value = client
                .get(format!("{base}/api/v1/namespaces/kube-system/services"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["metadata"]["resourceVersion"].as_str().unwrap().to_string()
        };
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<usize>();
        let watch_client = reqwest::Client::builder().no_proxy().build().unwrap();
        let t = Instant::now();
        for _ in 0..watchers {
            let resp = watch_client
                .get(format!(
                    "{base}/api/v1/namespaces/kube-system/services?watch=1&resourceVersion={rv}"
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let mut resp = resp;
                let mut buf = Vec::new();
                while let Ok(Some(chunk)) = resp.chunk().await {
                    buf.extend_from_slice(&chunk);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let ev: serde_json::Value = serde_json::from_slice(&line).unwrap();
                        if let Some(n) = ev["object"]["metadata"]["name"]
                            .as_str()
                            .and_then(|n| n.strip_prefix("probe-"))
                        {
                            let _ = seen_tx.send(n.parse().unwrap());
                        }
                    }
                }
            });
        }
        println!(
            "\nopened {watchers} watches in {:.2} s\n",
            t.elapsed().as_secs_f64()
        );
        let mut fan = Vec::new();
        for round in 0..rounds {
            let t = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/namespaces/kube-system/services"))
                .json(&json!({"metadata":{"name":format!("probe-{round}")},"spec":{"ports":[{"port":80}]}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            let mut got = 0;
            while got < watchers {
                let n = seen_rx.recv().await.unwrap();
                assert_eq!(n, round, "events arrive in order");
                got += 1;
            }
            fan.push(t.elapsed());
        }
        fan.sort();
        println!("| watch fan-out: write until all {watchers} watchers have the event | p50 | p95 | max |");
        println!("|---|---|---|---|");
        println!(
            "| create one Service ({rounds} rounds) | {} | {} | {} |",
            ms(pct(&fan, 0.5)),
            ms(pct(&fan, 0.95)),
            ms(fan[fan.len() - 1])
        );
    });
}
