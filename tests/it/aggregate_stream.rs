//! The streamed merge of aggregated lists (SPEC §6 item 9): kubeplex in-process in front of
//! simulated clusters and raw TCP members that misbehave halfway through their lists (cut
//! short, stalled past the timeout, endless), with the read cache off, so each list is
//! merged as the members' bodies arrive.

use crate::common::{cluster, eventually, settings, spawn_app};
use kubeplex::app::RunningApp;
use kubeplex::config::ClusterConfig;
use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use kubeplex::sim::{self, SimServer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The safety deadline of any one wait (generous: 2 shared cores, tests in parallel).
const WAIT: Duration = Duration::from_secs(30);

/// The list of the raw members, up to its items.
const PREFIX: &str =
    r#"{"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"77"},"items":["#;

fn item(member: &str, i: usize) -> String {
    json!({"kind": "Service", "apiVersion": "v1",
           "metadata": {"name": format!("{member}-{i}"), "namespace": "default"},
           "spec": {"ports": [{"port": 80}]}})
    .to_string()
}

/// `PREFIX` and `n` items of `member`, comma-separated (the array left open).
fn items(member: &str, n: usize) -> String {
    let all: Vec<String> = (0..n).map(|i| item(member, i)).collect();
    format!("{PREFIX}{}", all.join(","))
}

async fn simulated(name: &str, services: usize) -> SimServer {
    let mut seed = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..services {
        seed.push_str(&format!(
            "- {{apiVersion: v1, kind: Service, metadata: {{name: {name}-svc-{i}, namespace: shop}}, spec: {{ports: [{{port: 80}}]}}}}\n"
        ));
    }
    let cfg = SimClusterConfig::new(
        name,
        Some(SeedSource::Text {
            name: format!("{name} seed"),
            text: seed,
        }),
        Vec::<String>::new(),
    );
    sim::spawn("127.0.0.1:0", &cfg).await.expect("sim starts")
}

fn url_of(s: &SimServer) -> String {
    s.url().as_str().trim_end_matches('/').to_string()
}

/// kubeplex in front of `clusters`, the cache off, each member's timeout `timeout`.
async fn app(clusters: Vec<ClusterConfig>, timeout: Duration) -> RunningApp {
    let mut s = settings(clusters);
    s.aggregate.cache_ttl = Duration::ZERO;
    s.aggregate.timeout = timeout;
    spawn_app(s).await
}

fn agg(app: &RunningApp, path: &str) -> String {
    format!("{}/api/kubernetes/aggregate{path}", app.url())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The merged list at `path`: its headers and body (which must be JSON).
async fn list(
    app: &RunningApp,
    path: &str,
    headers: &[(&str, &str)],
) -> (reqwest::header::HeaderMap, Value) {
    let mut req = client().get(agg(app, path));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: the merged list is not JSON ({e}): {text}"));
    (headers, body)
}

/// `cluster/name` of each item.
fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["metadata"]["annotations"]["kubeplex.io/cluster"]
                    .as_str()
                    .unwrap_or("?"),
                i["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// What `sim` lists at `path`, each item as kubeplex annotates it for cluster `key`.
async fn own_items(sim: &SimServer, key: &str, path: &str) -> Vec<Value> {
    let own: Value = client()
        .get(format!("{}{path}", url_of(sim)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    own["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let mut i = i.clone();
            let ann = i["metadata"]
                .as_object_mut()
                .unwrap()
                .entry("annotations")
                .or_insert_with(|| json!({}));
            ann["kubeplex.io/cluster"] = json!(key);
            ann["kubeplex.io/cluster-name"] = json!(key.trim_start_matches("config:"));
            i
        })
        .collect()
}

/// A raw HTTP/1.1 member at the returned URL: each connection's request head is read, then
/// `serve` has the socket.
async fn raw_member<F, Fut>(serve: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let serve = serve.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                serve(s).await;
            });
        }
    });
    url
}

/// One HTTP/1.1 chunk.
fn chunk(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

const CHUNKED_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";

/// Reads until the peer closes; sets `closed` then.
async fn until_closed(mut s: TcpStream, closed: Arc<AtomicBool>) {
    let mut buf = [0u8; 1024];
    while s.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
    closed.store(true, Ordering::SeqCst);
}

#[actix_web::test]
async fn the_streamed_list_is_every_members_list_annotated_for_several_member_sets() {
    let sims = [
        simulated("one", 3).await,
        simulated("two", 0).await,
        simulated("three", 40).await,
    ];
    let keys = ["config:one", "config:two", "config:three"];
    let app = app(
        sims.iter()
            .zip(["one", "two", "three"])
            .map(|(s, n)| cluster(n, &url_of(s)))
            .collect(),
        Duration::from_secs(10),
    )
    .await;
    let sets: [&[usize]; 5] = [&[0], &[1], &[2, 0], &[0, 1, 2], &[1, 2]];
    for path in [
        "/api/v1/services",
        "/api/v1/namespaces/shop/services",
        "/api/v1/namespaces",
        "/apis/apps/v1/deployments",
    ] {
        for set in sets {
            let header: Vec<&str> = set.iter().map(|i| keys[*i]).collect();
            let (headers, merged) = list(
                &app,
                path,
                &[("backstage-kubernetes-cluster", &header.join(","))],
            )
            .await;
            // Streamed: no length known beforehand.
            assert!(headers.get("content-length").is_none(), "{headers:?}");
            assert_eq!(headers["content-type"], "application/json");
            assert!(merged.get("clusterErrors").is_none(), "{merged}");
            // Key order, whatever the header's.
            let mut ordered = set.to_vec();
            ordered.sort();
            let mut want = Vec::new();
            for i in ordered {
                want.extend(own_items(&sims[i], keys[i], path).await);
            }
            assert_eq!(merged["items"].as_array().unwrap(), &want, "{path} {set:?}");
            let vector = merged["metadata"]["resourceVersion"].as_str().unwrap();
            assert!(vector.starts_with("kpv1."), "{merged}");
        }
    }
}

#[actix_web::test]
async fn a_member_cut_short_mid_list_keeps_its_whole_items_and_gets_a_502_entry() {
    let sim_a = simulated("a", 2).await;
    let sim_z = simulated("z", 1).await;
    // A Content-Length past what is sent, then the connection closes.
    let sized = raw_member(|mut s| async move {
        let body = format!("{}{}", items("sized", 2), &item("sized", 2)[..20]);
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len() + 5000
        );
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(body.as_bytes()).await;
    })
    .await;
    // Chunked, and the connection closes without the last chunk.
    let chunked = raw_member(|mut s| async move {
        let _ = s.write_all(CHUNKED_HEAD).await;
        let _ = s.write_all(&chunk(&items("chunked", 3))).await;
        let _ = s.write_all(&chunk(",{\"metadata\":{\"na")).await;
    })
    .await;
    let app = app(
        vec![
            cluster("a", &url_of(&sim_a)),
            cluster("sized", &sized),
            cluster("chunked", &chunked),
            cluster("z", &url_of(&sim_z)),
        ],
        Duration::from_secs(10),
    )
    .await;
    let (headers, merged) = list(&app, "/api/v1/namespaces/shop/services", &[]).await;
    // Both failed after the response started: no Warning header can name them.
    assert!(headers.get("warning").is_none(), "{headers:?}");
    assert_eq!(
        names(&merged),
        [
            "config:a/a-svc-0",
            "config:a/a-svc-1",
            "config:sized/sized-0",
            "config:sized/sized-1",
            "config:chunked/chunked-0",
            "config:chunked/chunked-1",
            "config:chunked/chunked-2",
            "config:z/z-svc-0",
        ]
    );
    let errors = merged["clusterErrors"].as_array().expect("clusterErrors");
    let entries: Vec<(&str, u64, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["cluster"].as_str().unwrap(),
                e["code"].as_u64().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("config:sized", 502, "BadGateway"),
            ("config:chunked", 502, "BadGateway")
        ]
    );
    for (e, n) in errors.iter().zip([2, 3]) {
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{n} of its items are in the list")),
            "{message}"
        );
    }
    // The cut members have no version in the vector; the others do.
    let vector = merged["metadata"]["resourceVersion"].as_str().unwrap();
    let decoded = decode_vector(vector);
    assert!(decoded.get("config:a").is_some() && decoded.get("config:z").is_some());
    assert!(decoded.get("config:sized").is_none() && decoded.get("config:chunked").is_none());
}

/// The version vector's members.
fn decode_vector(v: &str) -> serde_json::Map<String, Value> {
    use base64::Engine;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v.strip_prefix("kpv1.").unwrap())
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[actix_web::test]
async fn a_member_stalling_mid_list_past_its_timeout_gets_a_504_entry_and_is_closed() {
    let sim_a = simulated("a", 1).await;
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let stalled = raw_member(move |mut s| {
        let flag = flag.clone();
        async move {
            let _ = s.write_all(CHUNKED_HEAD).await;
            let _ = s.write_all(&chunk(&items("stalled", 2))).await;
            let _ = s.write_all(&chunk(",{\"metadata\":")).await;
            // Nothing more; it learns that kubeplex gave up when the connection closes.
            until_closed(s, flag).await;
        }
    })
    .await;
    let timeout = Duration::from_secs(2);
    let app = app(
        vec![cluster("stalled", &stalled), cluster("a", &url_of(&sim_a))],
        timeout,
    )
    .await;
    let started = Instant::now();
    let (_, merged) = list(&app, "/api/v1/namespaces/shop/services", &[]).await;
    assert!(started.elapsed() >= timeout - Duration::from_millis(100));
    assert_eq!(
        names(&merged),
        [
            "config:stalled/stalled-0",
            "config:stalled/stalled-1",
            "config:a/a-svc-0"
        ]
    );
    let errors = merged["clusterErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{merged}");
    assert_eq!(errors[0]["cluster"], "config:stalled");
    assert_eq!(errors[0]["code"], 504);
    assert_eq!(errors[0]["reason"], "Timeout");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("did not finish its answer within 2s"),
        "{message}"
    );
    assert!(
        eventually(WAIT, || closed.load(Ordering::SeqCst)).await,
        "kubeplex closed the stalled member's connection"
    );
}

#[actix_web::test]
async fn a_client_leaving_mid_stream_closes_every_member_connection() {
    // An endless list: an item every few milliseconds until the connection is gone.
    let endless_closed = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let (flag, count) = (endless_closed.clone(), sent.clone());
    let endless = raw_member(move |mut s| {
        let (flag, count) = (flag.clone(), count.clone());
        async move {
            if s.write_all(CHUNKED_HEAD).await.is_err()
                || s.write_all(&chunk(&items("endless", 1))).await.is_err()
            {
                return;
            }
            for i in 1.. {
                if s.write_all(&chunk(&format!(",{}", item("endless", i))))
                    .await
                    .is_err()
                {
                    break;
                }
                count.store(i, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            flag.store(true, Ordering::SeqCst);
        }
    })
    .await;
    // A member after it: its whole list sent (but for the last chunk), its turn never comes.
    let waiting_closed = Arc::new(AtomicBool::new(false));
    let flag = waiting_closed.clone();
    let waiting = raw_member(move |mut s| {
        let flag = flag.clone();
        async move {
            let _ = s.write_all(CHUNKED_HEAD).await;
            let _ = s
                .write_all(&chunk(&format!("{}]}}", items("waiting", 3))))
                .await;
            until_closed(s, flag).await;
        }
    })
    .await;
    let app = app(
        vec![cluster("endless", &endless), cluster("waiting", &waiting)],
        Duration::from_secs(600),
    )
    .await;
    let mut res = client()
        .get(agg(&app, "/api/v1/services"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("endless-3") {
        got.extend_from_slice(&res.chunk().await.unwrap().expect("more of the list"));
    }
    drop(res);
    assert!(
        eventually(WAIT, || endless_closed.load(Ordering::SeqCst)).await,
        "the member being read was closed ({} items sent)",
        sent.load(Ordering::SeqCst)
    );
    assert!(
        eventually(WAIT, || waiting_closed.load(Ordering::SeqCst)).await,
        "the member waiting its turn was closed"
    );
}
