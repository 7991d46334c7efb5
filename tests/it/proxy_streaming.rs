//! SPEC §3 streaming: 200 MB up and down through the real `kubeplex` binary with its RSS
//! growth bounded (memory does not grow with body size), a watch whose events each arrive
//! before the next is sent, and a client that disconnects mid-stream making kubeplex close
//! the upstream connection.

use crate::common;

use common::*;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BASE: &str = "/api/kubernetes";
const SIZE: u64 = 200 * 1024 * 1024;
/// Allowed RSS growth of kubeplex while 200 MB pass through.
const MAX_GROWTH: u64 = 48 * 1024 * 1024;

/// Samples `pid`'s RSS until `stop`, returning the peak.
fn sample_peak(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::SeqCst) {
            peak = peak.max(rss_bytes(pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        peak.max(rss_bytes(pid))
    })
}

fn zeros_stream(
    total: u64,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    let chunk = bytes::Bytes::from(vec![7u8; 64 * 1024]);
    futures_util::stream::unfold(total, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = left.min(chunk.len() as u64);
            Some((Ok(chunk.slice(..n as usize)), left - n))
        }
    })
}

#[actix_web::test]
async fn upload_200mb_streams_with_flat_memory() {
    let up = Upstream::ok().await;
    let kp = KubeplexProcess::start(&up.url, "info,kubeplex::audit=off");
    let c = http();
    // Warm up (connections, allocator) before the baseline.
    let r = c
        .put(kp.proxy_url("/warm"))
        .body(vec![1u8; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let base = kp.rss();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = sample_peak(kp.pid(), stop.clone());
    let r = c
        .put(kp.proxy_url("/api/v1/namespaces/default/configmaps/big"))
        .header("content-length", SIZE.to_string())
        .body(reqwest::Body::wrap_stream(zeros_stream(SIZE)))
        .send()
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let peak = peak.join().unwrap();
    eprintln!("upload: kubeplex RSS {base} -> peak {peak}");
    assert_eq!(r.status(), 200);
    let recs = up.recorded();
    let big = recs.last().unwrap();
    assert_eq!(big.body_len, SIZE);
    assert_eq!(big.one("content-length"), Some(&*SIZE.to_string()));
    assert!(
        peak.saturating_sub(base) < MAX_GROWTH,
        "RSS grew from {base} to {peak} during a 200 MB upload"
    );
}

#[actix_web::test]
async fn download_200mb_streams_with_flat_memory() {
    let up = Upstream::start(|r| Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        body: Body::Zeros {
            len: if r.path == "/warm" { 1 << 20 } else { SIZE },
            sized: r.path != "/chunked",
        },
    })
    .await;
    let kp = KubeplexProcess::start(&up.url, "info,kubeplex::audit=off");
    let c = http();
    let r = c.get(kp.proxy_url("/warm")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 1 << 20);
    let base = kp.rss();
    for path in ["/sized", "/chunked"] {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = sample_peak(kp.pid(), stop.clone());
        let r = c.get(kp.proxy_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        if path == "/sized" {
            assert_eq!(r.headers()["content-length"], SIZE.to_string().as_str());
        }
        let mut got = 0u64;
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            got += chunk.unwrap().len() as u64;
        }
        stop.store(true, Ordering::SeqCst);
        let peak = peak.join().unwrap();
        eprintln!("{path}: kubeplex RSS {base} -> peak {peak}");
        assert_eq!(got, SIZE, "{path}");
        assert!(
            peak.saturating_sub(base) < MAX_GROWTH,
            "{path}: RSS grew from {base} to {peak} during a 200 MB download"
        );
    }
}

#[actix_web::test]
async fn watch_events_arrive_one_by_one() {
    let sent = Arc::new(AtomicU64::new(0));
    let ack = Arc::new(tokio::sync::Notify::new());
    let s = sent.clone();
    let a = ack.clone();
    let up = Upstream::start(move |_| Reply {
        status: 200,
        headers: vec![(
            "content-type".into(),
            "application/json;stream=watch".into(),
        )],
        body: Body::Events {
            count: 4,
            interval: Duration::from_secs(1),
            sent: s.clone(),
            ack: Some(a.clone()),
        },
    })
    .await;
    let app = spawn_app_for(&up).await;
    let r = http()
        .get(format!(
            "{}{BASE}/clusters/c/api/v1/services?watch=1",
            app.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json;stream=watch");
    let mut body = r.bytes_stream();
    let mut buf = Vec::new();
    let mut seen = 0u64;
    // The upstream sends event n+1 only after this test has seen event n: a proxy that held
    // events back would stall here, and the read timeout turns that into a failure.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), body.next())
        .await
        .expect("an event was held back")
    {
        buf.extend_from_slice(&chunk.unwrap());
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(v["n"], seen);
            seen += 1;
            // Event n arrived while the upstream had not yet sent event n+1.
            assert_eq!(sent.load(Ordering::SeqCst), seen, "event {v} arrived late");
            ack.notify_one();
        }
    }
    assert_eq!(seen, 4);
}

#[actix_web::test]
async fn client_disconnect_closes_the_upstream_connection() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let up = Upstream::start(move |_| Reply {
        status: 200,
        headers: vec![(
            "content-type".into(),
            "application/json;stream=watch".into(),
        )],
        body: Body::Endless { dropped: d.clone() },
    })
    .await;
    let app = spawn_app_for(&up).await;
    let r = http()
        .get(proxy_url(&app, "/api/v1/pods?watch=1"))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    assert!(!dropped.load(Ordering::SeqCst));
    drop(body);
    assert!(
        eventually(Duration::from_secs(20), || dropped.load(Ordering::SeqCst)).await,
        "the upstream never saw its connection closed"
    );
}

/// Reads watch lines from `body` until one for ConfigMap `name` of type `typ` arrives; its
/// `data.blob`.
async fn blob_event(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut Vec<u8>,
    typ: &str,
    name: &str,
) -> String {
    loop {
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            if v["type"] == typ && v["object"]["metadata"]["name"] == name {
                return v["object"]["data"]["blob"].as_str().unwrap().to_owned();
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(30), body.next())
            .await
            .expect("the watch event arrives")
            .expect("the watch is open")
            .unwrap();
        buf.extend_from_slice(&chunk);
    }
}

/// Issue 16: connections waiting for bytes hold no read buffer (reads with nothing buffered
/// go to an 8 KiB stack buffer, then on into a buffer when more is waiting). A request head
/// and body larger than that, and watch events many times larger, pass whole and in order,
/// the first after the watch sat idle.
#[actix_web::test]
async fn watch_events_larger_than_the_read_buffers_arrive_whole() {
    use kubeplex::sim::config::SimClusterConfig;
    let sim = kubeplex::sim::spawn(
        "127.0.0.1:0",
        &SimClusterConfig::new("big", None, Vec::<String>::new()),
    )
    .await
    .unwrap();
    let app = spawn_app(settings(vec![cluster(
        "big",
        sim.url().as_str().trim_end_matches('/'),
    )]))
    .await;
    let cms = format!(
        "{}{BASE}/clusters/big/api/v1/namespaces/default/configmaps",
        app.url()
    );
    let client = http();
    let watch = client
        .get(format!("{cms}?watch=1"))
        // A request head over 8 KiB: read in more than one go.
        .header("x-padding", "p".repeat(12 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);
    let mut body = Box::pin(watch.bytes_stream());
    let mut buf = Vec::new();
    // 200 KB (then 250 KB: the simulator takes bodies up to 256 KiB), a different byte every 7 so a lost or repeated read shows.
    let blob = |n: usize, salt: u8| -> String {
        (0..n)
            .map(|i| (b'a' + ((i / 7 + salt as usize) % 26) as u8) as char)
            .collect()
    };
    let first = blob(200_000, 0);
    let created = client
        .post(&cms)
        .json(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "big"},
            "data": {"blob": first}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    assert_eq!(blob_event(&mut body, &mut buf, "ADDED", "big").await, first);
    let second = blob(250_000, 3);
    let patched = client
        .patch(format!("{cms}/big"))
        .header("content-type", "application/merge-patch+json")
        .json(&serde_json::json!({"data": {"blob": second}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(
        blob_event(&mut body, &mut buf, "MODIFIED", "big").await,
        second
    );
    // Ordinary requests on kept-alive connections still work after the large ones.
    for _ in 0..3 {
        let got = client.get(format!("{cms}/big")).send().await.unwrap();
        assert_eq!(got.status(), 200);
        let v: serde_json::Value = got.json().await.unwrap();
        assert_eq!(v["data"]["blob"].as_str().unwrap().len(), second.len());
    }
}
