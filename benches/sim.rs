//! Simulated cluster benchmark: create throughput, list latency with 10,000 Services, and
//! watch fan-out (time from a write until 1,000 open watches have all received it); then
//! 10,000 objects of mixed kinds (Deployments with the ReplicaSets and Events their
//! controller makes, ConfigMaps, Secrets, Jobs, Ingresses): Deployment list latency and a
//! mixed-kind watch fan-out (1,000 watches over four kinds, each seeing only its kind).
//!
//! Run: `cargo bench --bench sim` (optional env: `SERVICES`, `WATCHERS`, `ROUNDS`, `MIXED`).
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

        mixed_kinds(&client, &base, env("MIXED", 10_000), watchers, rounds).await;
    });
}

/// POSTs `body` to `path` and asserts 201.
async fn create(client: &reqwest::Client, base: &str, path: &str, body: serde_json::Value) {
    let r = client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{path}");
}

fn mixed_object(i: usize, ns: &str) -> (String, serde_json::Value) {
    let name = format!("obj-{i:05}");
    let labels = json!({"app": format!("app-{}", i % 100), "backstage.io/kubernetes-id": format!("app-{}", i % 100)});
    match i % 8 {
        0 => (
            format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            json!({"metadata": {"name": name, "labels": labels}, "spec": {"replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0.0"}]}}}}),
        ),
        1..=3 => (
            format!("/api/v1/namespaces/{ns}/configmaps"),
            json!({"metadata": {"name": name, "labels": labels}, "data": {"key": "value", "other": "x".repeat(64)}}),
        ),
        4..=5 => (
            format!("/api/v1/namespaces/{ns}/secrets"),
            json!({"metadata": {"name": name, "labels": labels}, "stringData": {"password": "hunter2"}}),
        ),
        6 => (
            format!("/apis/batch/v1/namespaces/{ns}/jobs"),
            json!({"metadata": {"name": name, "labels": labels}, "spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "job", "image": "busybox"}]}}}}),
        ),
        _ => (
            format!("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"),
            json!({"metadata": {"name": name, "labels": labels}, "spec": {"rules": [{"host": format!("{name}.example.com"),
                "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        ),
    }
}

async fn mixed_kinds(
    client: &reqwest::Client,
    base: &str,
    objects: usize,
    watchers: usize,
    rounds: usize,
) {
    // Each Deployment brings a ReplicaSet and an Event: 8 requests make 10 objects.
    let requests = objects * 8 / 10;
    create(
        client,
        base,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "mixed"}}),
    )
    .await;
    let t = Instant::now();
    let mut tasks = Vec::new();
    let per = requests.div_ceil(32);
    for w in 0..32 {
        let client = client.clone();
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (w * per)..((w + 1) * per).min(requests) {
                let (path, body) = mixed_object(i, "mixed");
                create(&client, &base, &path, body).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = t.elapsed();
    let count = |v: serde_json::Value| v["items"].as_array().map_or(0, Vec::len);
    let mut total = 0;
    for path in [
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/replicasets",
        "/api/v1/events",
        "/api/v1/configmaps",
        "/api/v1/secrets",
        "/apis/batch/v1/jobs",
        "/apis/networking.k8s.io/v1/ingresses",
    ] {
        let v: serde_json::Value = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        total += count(v);
    }
    println!("\n## Mixed kinds\n");
    println!(
        "created {requests} objects of five kinds in {:.2} s ({:.0} creates/s, 32 in flight); with the ReplicaSets and Events of the Deployment controller the store holds {total} objects of seven kinds besides the Services\n",
        took.as_secs_f64(),
        requests as f64 / took.as_secs_f64()
    );
    println!("| request | p50 | p95 | max | body |");
    println!("|---|---|---|---|---|");
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    for (label, path, accept) in [
        (
            "list all Deployments",
            "/apis/apps/v1/deployments",
            "application/json",
        ),
        (
            "list Deployments as a Table (`kubectl get deploy -A`)",
            "/apis/apps/v1/deployments",
            table,
        ),
        (
            "Deployments by label (`backstage.io/kubernetes-id`)",
            "/apis/apps/v1/deployments?labelSelector=backstage.io%2Fkubernetes-id%3Dapp-8",
            "application/json",
        ),
        (
            "list all ConfigMaps",
            "/api/v1/configmaps",
            "application/json",
        ),
        (
            "Events of one object (`fieldSelector=involvedObject.name`)",
            "/api/v1/namespaces/mixed/events?fieldSelector=involvedObject.name%3Dobj-00008",
            "application/json",
        ),
    ] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let body = client
                .get(format!("{base}{path}"))
                .header("accept", accept)
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

    // Mixed-kind watch fan-out: watchers spread over four kinds in one namespace.
    let kinds = [
        ("deployments", "/apis/apps/v1/namespaces/probe"),
        ("configmaps", "/api/v1/namespaces/probe"),
        ("jobs", "/apis/batch/v1/namespaces/probe"),
        ("ingresses", "/apis/networking.k8s.io/v1/namespaces/probe"),
    ];
    create(
        client,
        base,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "probe"}}),
    )
    .await;
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, String)>();
    let watch_client = reqwest::Client::builder().no_proxy().build().unwrap();
    for w in 0..watchers {
        let (plural, prefix) = kinds[w % kinds.len()];
        let resp = watch_client
            .get(format!("{base}{prefix}/{plural}?watch=1"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let seen_tx = seen_tx.clone();
        let want = plural.to_string();
        tokio::spawn(async move {
            let mut resp = resp;
            let mut buf = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let ev: serde_json::Value = serde_json::from_slice(&line).unwrap();
                    let kind = ev["object"]["kind"].as_str().unwrap_or("").to_lowercase();
                    assert!(want.starts_with(&kind), "a {want} watch got a {kind}");
                    if let Some(n) = ev["object"]["metadata"]["name"]
                        .as_str()
                        .and_then(|n| n.strip_prefix("probe-"))
                    {
                        let _ = seen_tx.send((n.parse().unwrap(), want.clone()));
                    }
                }
            }
        });
    }
    let mut fan = Vec::new();
    for round in 0..rounds {
        let t = Instant::now();
        for i in [0usize, 1, 6, 7] {
            let (path, mut body) = mixed_object(i, "probe");
            body["metadata"]["name"] = json!(format!("probe-{round}"));
            if i == 0 {
                body["spec"]["selector"]["matchLabels"]["app"] = json!(format!("probe-{round}"));
                body["spec"]["template"]["metadata"]["labels"]["app"] =
                    json!(format!("probe-{round}"));
            }
            create(client, base, &path, body).await;
        }
        let mut got = 0;
        while got < watchers {
            let (n, _) = seen_rx.recv().await.unwrap();
            assert_eq!(n, round, "events arrive in order");
            got += 1;
        }
        fan.push(t.elapsed());
    }
    fan.sort();
    println!(
        "\n| mixed-kind watch fan-out: {watchers} watches over 4 kinds; write one object of each kind until every watcher has its event | p50 | p95 | max |"
    );
    println!("|---|---|---|---|");
    println!(
        "| 4 creates per round ({rounds} rounds) | {} | {} | {} |",
        ms(pct(&fan, 0.5)),
        ms(pct(&fan, 0.95)),
        ms(fan[fan.len() - 1])
    );
}
