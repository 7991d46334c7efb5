//! Caller identity benchmark (SPEC §5, issue 14): the cost of `kubeplex.auth.mode: jwt`
//! with a ten-rule policy against `mode: none`, in the same run.
//!
//! Two `kubeplex` binaries (release, default log level: one audit line per request) run
//! side by side in front of one minimal upstream (a keep-alive HTTP/1.1 responder on
//! loopback answering every request with the same 1.2 KB JSON list): one with `mode: none`,
//! one with `mode: jwt`, an ES256 key (inline JWKS, as Backstage's user tokens are signed)
//! and ten policy rules of which only the last matches the caller. The client (reqwest,
//! `CONNECTIONS` requests in flight from a multi-threaded tokio runtime in this process)
//! lists `GET /api/kubernetes/clusters/bench/api/v1/namespaces/bench/services` for
//! `SECONDS` per run; runs alternate none / jwt `ROUNDS` times and the median of each is
//! reported, with the median of the rounds' jwt/none ratios (the pairs ran back to back,
//! so a busy machine moves both alike). Both get the same requests: one Backstage-shaped
//! ES256 user token, as a portal sends it on every call. `mode: none` recognizes it as a
//! portal token and does not forward it (the cluster's `serviceAccountToken` goes
//! upstream); `mode: jwt` verifies it once, then serves it from the cache of verified
//! tokens, checks the policy, and sends the same service-account token upstream.
//!
//! Measured per run: requests/s, and the kubeplex process's own CPU time (utime + stime
//! from `/proc/<pid>/stat` before and after; the client and the upstream are not counted)
//! as CPU µs per request. Then, informational, `FRESH` requests to the jwt instance each
//! with a new token (a signature check per request).
//!
//! Run: `cargo bench --bench identity` (optional env: `SECONDS=3`, `CONNECTIONS=32`,
//! `ROUNDS=15`, `FRESH=20000`).

#[path = "support/mod.rs"]
mod support;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{env, Kubeplex};

/// The upstream's answer body: a Service list of about 1.2 KB.
fn body() -> String {
    let mut items = Vec::new();
    for i in 0..3 {
        items.push(format!(
            r#"{{"metadata":{{"name":"svc-{i}","namespace":"bench","uid":"00000000-0000-0000-0000-00000000000{i}","resourceVersion":"{i}","labels":{{"app":"bench","tier":"web"}}}},"spec":{{"ports":[{{"name":"http","port":80,"targetPort":8080,"protocol":"TCP"}}],"selector":{{"app":"bench"}},"clusterIP":"10.96.0.{i}","type":"ClusterIP"}},"status":{{"loadBalancer":{{}}}}}}"#
        ));
    }
    format!(
        r#"{{"kind":"ServiceList","apiVersion":"v1","metadata":{{"resourceVersion":"100"}},"items":[{}]}}"#,
        items.join(",")
    )
}

/// A keep-alive HTTP/1.1 responder on 127.0.0.1 (its own thread and runtime); its address.
fn start_upstream() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let body = body();
            let answer: Arc<[u8]> = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
            .into();
            while let Ok((mut s, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let _ = s.set_nodelay(true);
                    let mut buf = Vec::with_capacity(4096);
                    let mut chunk = [0u8; 4096];
                    loop {
                        // GETs without bodies: one answer per request head.
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            if s.write_all(&answer).await.is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
    });
    rx.recv().unwrap()
}

/// kubeplex serving `yaml` at the default log level (an audit line per request), as the
/// proxy's own benchmark runs it.
fn start(yaml: String) -> Kubeplex {
    Kubeplex::start_logging(&["serve"], Some(yaml), "addr", None)
}

/// kubeplex's config: one cluster `bench` at the upstream (a service-account token), and
/// `auth` as the `kubeplex.auth` block.
fn config(upstream: std::net::SocketAddr, auth: &str) -> String {
    format!(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 2\n  auth:\n{auth}\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
         \x20       - {{name: bench, url: 'http://{upstream}', serviceAccountToken: sa-bench}}\n"
    )
}

/// Ten rules; only the last matches the benchmark's caller.
const POLICY: &str = "    policy:\n\
\x20     - {subjects: ['user:default/mallory'], clusters: ['*'], namespaces: ['*'], verbs: ['*'], effect: deny}\n\
\x20     - {subjects: ['group:default/platform'], clusters: ['*'], namespaces: ['*'], verbs: ['*'], effect: allow}\n\
\x20     - {subjects: ['group:default/team-a'], clusters: [prod], namespaces: [team-a], verbs: [exec], effect: deny}\n\
\x20     - {subjects: ['group:default/team-a'], clusters: [prod, staging], namespaces: [team-a], verbs: [get, list, watch, log], effect: allow}\n\
\x20     - {subjects: ['group:default/team-b'], clusters: ['staging:*'], namespaces: ['team-b*'], verbs: [get, list], effect: allow}\n\
\x20     - {subjects: ['user:default/ci-*'], clusters: ['dev*'], namespaces: ['*'], verbs: [create, update, patch], effect: allow}\n\
\x20     - {subjects: ['group:default/sre'], clusters: ['*'], namespaces: [kube-system], verbs: ['*'], effect: allow}\n\
\x20     - {subjects: ['group:default/readers'], clusters: ['*'], namespaces: ['*'], verbs: [get, list, watch], effect: allow}\n\
\x20     - {subjects: ['*'], clusters: [bench], namespaces: [secret-*], verbs: ['*'], effect: deny}\n\
\x20     - {subjects: ['group:default/bench'], clusters: [bench], namespaces: ['*'], verbs: [get, list, watch], effect: allow}\n";

/// One run's figures.
#[derive(Clone, Copy)]
struct Run {
    rps: f64,
    cpu_us: f64,
    /// Requests, and CPU seconds, of the run.
    n: f64,
    cpu: f64,
}

/// `conns` loops sending GET `url` with `authorization` for `secs`; requests/s and the
/// process's CPU µs per request.
async fn run(
    client: &reqwest::Client,
    kp: &Kubeplex,
    url: &str,
    authorization: &str,
    conns: usize,
    secs: u64,
) -> Run {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let cpu0 = kp.cpu();
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (client, url, auth, done) = (
                client.clone(),
                url.to_string(),
                authorization.to_string(),
                done.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = client
                        .get(&url)
                        .header("authorization", &auth)
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    r.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = kp.cpu() - cpu0;
    let n = done.load(Ordering::Relaxed) as f64;
    Run {
        rps: n / elapsed,
        cpu_us: cpu / n * 1e6,
        n,
        cpu,
    }
}

/// `tokens.len()` requests, each with its own token, `conns` in flight.
async fn run_fresh(
    client: &reqwest::Client,
    kp: &Kubeplex,
    url: &str,
    tokens: Vec<String>,
    conns: usize,
) -> Run {
    let n = tokens.len() as f64;
    let queue = Arc::new(std::sync::Mutex::new(tokens));
    let cpu0 = kp.cpu();
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (client, url, queue) = (client.clone(), url.to_string(), queue.clone());
            tokio::spawn(async move {
                loop {
                    let Some(t) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let r = client
                        .get(&url)
                        .header("authorization", format!("Bearer {t}"))
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    r.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = kp.cpu() - cpu0;
    Run {
        rps: n / elapsed,
        cpu_us: cpu / n * 1e6,
        n,
        cpu,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let secs = env("SECONDS", 3) as u64;
    let conns = env("CONNECTIONS", 32);
    let rounds = env("ROUNDS", 15);
    let fresh = env("FRESH", 20_000);

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = key.public_key_raw();
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "bench-1",
        "alg": "ES256", "x": b64(&raw[1..33]), "y": b64(&raw[33..])}]});
    let enc = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |jti: usize| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("bench-1".into());
        h.typ = Some("vnd.backstage.user".into());
        let claims = serde_json::json!({
            "iss": "http://localhost:7007/api/auth", "aud": "backstage",
            "sub": "user:default/bench", "ent": ["user:default/bench", "group:default/bench"],
            "iat": now, "exp": now + 3600, "jti": format!("bench-{jti}"),
        });
        jsonwebtoken::encode(&h, &claims, &enc).unwrap()
    };
    let token = sign(0);

    let upstream = start_upstream();
    let none = start(config(upstream, "    mode: none\n"));
    let jwt = start(config(
        upstream,
        &format!("    mode: jwt\n    jwks: {jwks}\n{POLICY}"),
    ));
    let path = "/api/kubernetes/clusters/bench/api/v1/namespaces/bench/services";
    let none_url = format!("http://{}{path}", none.addr);
    let jwt_url = format!("http://{}{path}", jwt.addr);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(conns)
            .build()
            .unwrap();
        let bearer = format!("Bearer {token}");
        // Warm up both (connections, the jwt instance's verified-token cache).
        run(&client, &none, &none_url, &bearer, conns, 1).await;
        run(&client, &jwt, &jwt_url, &bearer, conns, 1).await;
        let mut runs: (Vec<Run>, Vec<Run>) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let a = run(&client, &none, &none_url, &bearer, conns, secs).await;
            let b = run(&client, &jwt, &jwt_url, &bearer, conns, secs).await;
            eprintln!(
                "round {}: none {:.0} req/s {:.1} µs CPU/req; jwt {:.0} req/s {:.1} µs CPU/req",
                round + 1,
                a.rps,
                a.cpu_us,
                b.rps,
                b.cpu_us
            );
            runs.0.push(a);
            runs.1.push(b);
        }
        let med = |v: &[Run], f: fn(&Run) -> f64| median(v.iter().map(f).collect());
        let (n_rps, n_cpu) = (med(&runs.0, |r| r.rps), med(&runs.0, |r| r.cpu_us));
        let (j_rps, j_cpu) = (med(&runs.1, |r| r.rps), med(&runs.1, |r| r.cpu_us));
        let pairs = |f: fn(&Run) -> f64| {
            median(runs.0.iter().zip(&runs.1).map(|(a, b)| f(b) / f(a)).collect())
        };
        let (rps_ratio, cpu_ratio) = (pairs(|r| r.rps), pairs(|r| r.cpu_us));
        let total = |v: &[Run]| {
            v.iter().map(|r| r.cpu).sum::<f64>() / v.iter().map(|r| r.n).sum::<f64>() * 1e6
        };
        let (n_total, j_total) = (total(&runs.0), total(&runs.1));
        let tokens: Vec<String> = (1..=fresh).map(sign).collect();
        let f = run_fresh(&client, &jwt, &jwt_url, tokens, conns).await;
        println!(
            "\n{rounds} rounds of {secs} s, {conns} in flight; medians (fresh tokens: one run of {fresh} requests)\n"
        );
        println!("| kubeplex | requests/s | CPU µs / request | requests per CPU-second | vs none (req/s, CPU) |");
        println!("|---|---|---|---|---|");
        println!(
            "| `mode: none` | {n_rps:.0} | {n_cpu:.1} | {:.0} | - |",
            1e6 / n_cpu
        );
        println!(
            "| `mode: jwt`, ten rules, one token | {j_rps:.0} | {j_cpu:.1} | {:.0} | {:+.1}%, {:+.1}% |",
            1e6 / j_cpu,
            (j_rps / n_rps - 1.0) * 100.0,
            (j_cpu / n_cpu - 1.0) * 100.0
        );
        println!(
            "| `mode: jwt`, ten rules, a new ES256 token per request | {:.0} | {:.1} | {:.0} | {:+.1}%, {:+.1}% |",
            f.rps,
            f.cpu_us,
            1e6 / f.cpu_us,
            (f.rps / n_rps - 1.0) * 100.0,
            (f.cpu_us / n_cpu - 1.0) * 100.0
        );
        println!(
            "\nmedian of the rounds' jwt/none ratios: requests/s {:+.1}%, CPU per request {:+.1}%",
            (rps_ratio - 1.0) * 100.0,
            (cpu_ratio - 1.0) * 100.0
        );
        println!(
            "all rounds together: CPU per request none {n_total:.1} µs, jwt {j_total:.1} µs ({:+.1}%)",
            (j_total / n_total - 1.0) * 100.0
        );
    });
}
