//! Many watches and idle tunnels (issue 16, item 3): what each open watch and each idle
//! WebSocket tunnel costs kubeplex in memory, and whether ordinary requests stay fast
//! meanwhile.
//!
//! Two child processes per measurement, so kubeplex's RSS is its own: a simulated cluster
//! (`kubeplex sim`) and kubeplex (`kubeplex serve`, 2 workers) with one `config` cluster
//! `sim` at it. For each N of `WATCHES` (1000, 2000, 5000), fresh processes:
//!
//! 1. `GROUPS` = N/20 ConfigMaps `cm-<g>` labelled `g=<g>` are created in the simulator.
//! 2. Warm-up: GETs through kubeplex; then kubeplex's VmRSS (`before`).
//! 3. N watches through kubeplex (raw HTTP/1.1 over TCP, `?watch=1&labelSelector=g=<i % GROUPS>`),
//!    opened 100 at a time, each counting the `MODIFIED` events it reads.
//! 4. A writer patches the ConfigMaps round robin directly at the simulator, `RATE` writes/s
//!    (50): each write reaches 20 watches, every watch gets an event every GROUPS/RATE
//!    seconds. Meanwhile one client GETs a pod through kubeplex 100 times a second
//!    (one kept-alive connection), for `SETTLE` seconds (15).
//! 5. kubeplex's VmRSS again (`after`): bytes per watch = (after - before) / N; the GETs'
//!    p50 and p99; how many watches received at least one event.
//!
//! Then `TUNNELS` (5000; 0 skips) WebSocket tunnels through kubeplex to `exec` of `cat` with
//! stdin (channel protocol v4): each carries one message both ways, then all sit idle for
//! `IDLE` seconds (3); bytes per tunnel = RSS delta / N.
//!
//! Each figure is printed beside the target it is judged by: 20 KB per watch, GET p99 10 ms,
//! 30 KB per tunnel (KB = 1000 bytes).
//!
//! Run: `bench/watches.sh` (raises `ulimit -n` to 20000 first: kubeplex holds two sockets per
//! watch or tunnel), or `cargo bench --bench watches` with the limit raised. `KUBEPLEX_BIN`
//! runs another build (e.g. an older one to compare with); `MALLOC_ARENA_MAX` and the like
//! pass through to the children.

#[path = "support/mod.rs"]
mod support;

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{env as env_num, ms, pct, Kubeplex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Watches per ConfigMap: each write reaches this many watches.
const PER_GROUP: usize = 20;
/// Ordinary GETs per second during the steady state.
const GETS_PER_SEC: u64 = 100;
/// Opened at once.
const OPEN_BATCH: usize = 100;

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// The simulator and kubeplex in front of it (kubeplex stopped first).
struct Pair {
    proxy: Kubeplex,
    sim: Kubeplex,
}

impl Pair {
    fn start() -> Pair {
        // A seed-less simulator still has `default` and its `toolbox` pod.
        let sim = Kubeplex::start(&["sim", "--listen", "127.0.0.1:0"], None, "url");
        let yaml = format!(
            "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 2\n\
             kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
             \x20       - name: sim\n          url: http://{}\n",
            sim.addr
        );
        let proxy = Kubeplex::start(&["serve"], Some(yaml), "addr");
        Pair { sim, proxy }
    }

    fn base(&self) -> String {
        format!("http://{}/api/kubernetes/clusters/sim", self.proxy.addr)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()
        .unwrap()
}

const CM: &str = "/api/v1/namespaces/default/configmaps";
/// What the ordinary GETs read: the simulator's pod (about 1.5 KB of JSON).
const GET_PATH: &str = "/api/v1/namespaces/default/pods/toolbox";

async fn create_groups(c: &reqwest::Client, sim: &str, groups: usize) {
    for g in 0..groups {
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{g}"), "labels": {"g": g.to_string()}},
            "data": {"n": "0", "pad": "x".repeat(200)}
        });
        let r = c
            .post(format!("http://{sim}{CM}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create cm-{g}: {}", r.status());
    }
}

/// One watch over raw HTTP/1.1: counts `"MODIFIED"` in what it reads until the stream ends.
/// `opened` is told once the response head arrived.
async fn watch(
    addr: String,
    path: String,
    events: Arc<AtomicU64>,
    opened: tokio::sync::oneshot::Sender<()>,
) {
    let mut s = TcpStream::connect(&addr)
        .await
        .expect("connect to kubeplex");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut opened = Some(opened);
    let mut carry = 0usize;
    loop {
        let n = match s.read(&mut buf[carry..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let end = carry + n;
        if let Some(tx) = opened.take() {
            assert!(
                buf.starts_with(b"HTTP/1.1 200"),
                "watch {path}: {}",
                String::from_utf8_lossy(&buf[..end.min(200)])
            );
            let _ = tx.send(());
        }
        let hits = buf[..end]
            .windows(10)
            .filter(|w| w == b"\"MODIFIED\"")
            .count();
        events.fetch_add(hits as u64, Ordering::Relaxed);
        // Keep the last 9 bytes: a word cut between two reads is counted once.
        carry = end.min(9);
        buf.copy_within(end - carry..end, 0);
    }
}

async fn timed_gets(base: String, path: &str, stop: Instant) -> Vec<Duration> {
    let c = client();
    let url = format!("{base}{path}");
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / GETS_PER_SEC));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = Vec::new();
    while Instant::now() < stop {
        tick.tick().await;
        let t = Instant::now();
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        out.push(t.elapsed());
    }
    out
}

/// The writer: merge patches of `cm-<i % groups>` at the simulator, `rate` a second, until
/// `stop`; the writes made.
async fn writer(sim: String, groups: usize, rate: u64, stop: Instant) -> u64 {
    let c = client();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    while Instant::now() < stop {
        tick.tick().await;
        let g = n as usize % groups;
        let r = c
            .patch(format!("http://{sim}{CM}/cm-{g}"))
            .header("content-type", "application/merge-patch+json")
            .body(format!(r#"{{"data":{{"n":"{n}"}}}}"#))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "patch cm-{g}: {}", r.status());
        n += 1;
    }
    n
}

fn kb(b: f64) -> String {
    format!("{:.1} KB", b / 1000.0)
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// One watch measurement; a markdown row.
async fn watches(n: usize, rate: u64, settle: u64) -> String {
    let pair = Pair::start();
    let groups = (n / PER_GROUP).max(1);
    let c = client();
    create_groups(&c, &pair.sim.addr, groups).await;
    // Warm-up: the worker's pooled connections and buffers, the allocator's arenas.
    let warm = timed_gets(
        pair.base(),
        GET_PATH,
        Instant::now() + Duration::from_secs(2),
    )
    .await;
    assert!(!warm.is_empty());
    let before = pair.proxy.status("VmRSS");

    let events: Vec<Arc<AtomicU64>> = (0..n).map(|_| Arc::default()).collect();
    let prefix = "/api/kubernetes/clusters/sim";
    let t_open = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(OPEN_BATCH) {
        let mut waits = Vec::new();
        for &i in chunk {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let path = format!("{prefix}{CM}?watch=1&labelSelector=g%3D{}", i % groups);
            tokio::spawn(watch(pair.proxy.addr.clone(), path, events[i].clone(), tx));
            waits.push(rx);
        }
        for w in waits {
            w.await.expect("watch opened");
        }
    }
    let open_secs = t_open.elapsed().as_secs_f64();

    let stop = Instant::now() + Duration::from_secs(settle);
    let w = tokio::spawn(writer(pair.sim.addr.clone(), groups, rate, stop));
    let mut lat = timed_gets(pair.base(), GET_PATH, stop).await;
    let writes = w.await.unwrap();
    // The last events reach the watches.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = pair.proxy.status("VmRSS");
    let hwm = pair.proxy.status("VmHWM");
    lat.sort();
    let got: Vec<u64> = events.iter().map(|e| e.load(Ordering::Relaxed)).collect();
    let reached = got.iter().filter(|&&e| e > 0).count();
    let total: u64 = got.iter().sum();
    let per = after.saturating_sub(before) as f64 / n as f64;
    let (p50, p99) = (pct(&lat, 0.5), pct(&lat, 0.99));
    format!(
        "| {n} | {} | {} | {} | {} ({:.2} of 20 KB) | {:.2} ms | {:.2} ms ({:.2} of 10 ms) | {} | {reached}/{n} | {total} | {writes} | {open_secs:.1} s |",
        mb(before),
        mb(after),
        mb(hwm),
        kb(per),
        per / 20_000.0,
        ms(p50),
        ms(p99),
        ms(p99) / 10.0,
        lat.len(),
    )
}

/// The idle tunnel measurement; a markdown row.
async fn tunnels(n: usize, idle: u64) -> String {
    let pair = Pair::start();
    let url = format!(
        "ws://{}/api/kubernetes/clusters/sim/api/v1/namespaces/default/pods/toolbox/exec?command=cat&stdin=true&stdout=true",
        pair.proxy.addr
    );
    // Warm-up: GETs, and one tunnel opened and closed.
    let warm = timed_gets(
        pair.base(),
        GET_PATH,
        Instant::now() + Duration::from_secs(2),
    )
    .await;
    assert!(!warm.is_empty());
    {
        let mut ws = open_tunnel(&url).await;
        echo(&mut ws, 0).await;
        ws.close(None).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = pair.proxy.status("VmRSS");
    let t_open = Instant::now();
    let open = Arc::new(AtomicUsize::new(0));
    let mut held = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(OPEN_BATCH) {
        let conns = futures_util::future::join_all(chunk.iter().map(|&i| {
            let url = url.clone();
            let open = open.clone();
            async move {
                let mut ws = open_tunnel(&url).await;
                echo(&mut ws, i).await;
                open.fetch_add(1, Ordering::Relaxed);
                ws
            }
        }))
        .await;
        held.extend(conns);
    }
    let open_secs = t_open.elapsed().as_secs_f64();
    let t = Instant::now() + Duration::from_secs(idle);
    let mut lat = timed_gets(pair.base(), GET_PATH, t).await;
    lat.sort();
    let after = pair.proxy.status("VmRSS");
    let hwm = pair.proxy.status("VmHWM");
    let per = after.saturating_sub(before) as f64 / n as f64;
    drop(held);
    format!(
        "| {n} | {} | {} | {} | {} ({:.2} of 30 KB) | {:.2} ms | {:.2} ms | {}/{n} | {open_secs:.1} s |",
        mb(before),
        mb(after),
        mb(hwm),
        kb(per),
        per / 30_000.0,
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        open.load(Ordering::Relaxed),
    )
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn open_tunnel(url: &str) -> Ws {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "v4.channel.k8s.io".parse().unwrap(),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("tunnel opened")
        .0
}

/// Sends `i` on stdin and reads it back on stdout.
async fn echo(ws: &mut Ws, i: usize) {
    let text = format!("ping {i}\n");
    let mut msg = vec![0u8];
    msg.extend_from_slice(text.as_bytes());
    ws.send(Message::Binary(msg.into())).await.unwrap();
    loop {
        match ws.next().await.expect("tunnel open").unwrap() {
            Message::Binary(b) if b.first() == Some(&1) && b.len() > 1 => {
                assert_eq!(&b[1..], text.as_bytes());
                return;
            }
            _ => continue,
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let watches_n = env_list("WATCHES", &[1000, 2000, 5000]);
    let tunnels_n = env_num("TUNNELS", 5000) as usize;
    let rate = env_num("RATE", 50);
    let settle = env_num("SETTLE", 15);
    let idle = env_num("IDLE", 3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "watches: {PER_GROUP} per ConfigMap, {rate} writes/s at the simulator, {GETS_PER_SEC} GETs/s through kubeplex for {settle} s"
    );
    if !watches_n.is_empty() {
        println!();
        println!("| watches | RSS before | RSS after | peak | per watch (target) | GET p50 | GET p99 (target) | GETs | watches with events | events | writes | open time |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for &n in &watches_n {
            println!("{}", rt.block_on(watches(n, rate, settle)));
        }
    }
    if tunnels_n > 0 {
        println!();
        println!("| tunnels | RSS before | RSS after | peak | per tunnel (target) | GET p50 | GET p99 | echoed | open time |");
        println!("|---|---|---|---|---|---|---|---|---|");
        println!("{}", rt.block_on(tunnels(tunnels_n, idle)));
    }
}
