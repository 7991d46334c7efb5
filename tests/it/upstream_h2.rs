//! HTTP/2 to clusters (issue 16 item 4): a TLS cluster that offers `h2` by ALPN (the
//! simulated cluster over HTTPS, as a real API server) gets kubeplex's forwarded requests
//! over HTTP/2, many concurrent watches share a few connections (not one each) and still
//! stream event by event and end; WebSocket tunnels stay HTTP/1.1 upgrades; a cluster with
//! `http2: false`, or a TLS server offering only `http/1.1`, is spoken to in HTTP/1.1; and
//! an HTTP/2 upstream that resets a stream or sends GOAWAY gives the caller a 502 `Status`
//! before the head, or a body cut short after it.

use crate::common;
use crate::common_tls;
use crate::support_ws;

use actix_web::http::Version;
use bytes::Bytes;
use common::{cluster, eventually, http, spawn_app};
use common_tls::{b64, Ca};
use kubeplex::config::ClusterConfig;
use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimTls};
use kubeplex::sim::SimServer;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// A simulated cluster over HTTPS (self-signed), seeded with the default seed.
async fn tls_sim() -> SimServer {
    let cfg = SimClusterConfig {
        name: "h2".into(),
        seed: Some(SeedSource::Text {
            name: "seed".into(),
            text: kubeplex::sim::config::DEFAULT_SEED.into(),
        }),
        tls: SimTls::SelfSigned,
        ..Default::default()
    };
    kubeplex::sim::spawn("127.0.0.1:0", &cfg).await.unwrap()
}

/// A `config` cluster `name` for `sim`, trusting its certificate.
fn sim_cluster(name: &str, sim: &SimServer) -> ClusterConfig {
    let mut c = cluster(name, sim.url().as_str().trim_end_matches('/'));
    c.ca_data = Some(b64(std::str::from_utf8(sim.ca_pem().unwrap()).unwrap()));
    c
}

async fn app(clusters: Vec<ClusterConfig>, workers: usize) -> kubeplex::app::RunningApp {
    let mut s = common::settings(clusters);
    s.server.workers = Some(workers);
    spawn_app(s).await
}

fn url(app: &kubeplex::app::RunningApp, cluster: &str, path: &str) -> String {
    format!("{}/api/kubernetes/clusters/{cluster}{path}", app.url())
}

/// The versions and connections of the requests the sim saw for `path`.
fn seen(sim: &SimServer, path: &str) -> (Vec<Version>, BTreeSet<u64>) {
    let all: Vec<_> = sim.seen().into_iter().filter(|r| r.path == path).collect();
    (
        all.iter().map(|r| r.version).collect(),
        all.iter().map(|r| r.connection).collect(),
    )
}

#[actix_web::test]
async fn requests_to_a_tls_cluster_offering_h2_go_over_one_http2_connection() {
    let sim = tls_sim().await;
    let app = app(vec![sim_cluster("s", &sim)], 1).await;
    let c = http();
    for _ in 0..5 {
        let r = c
            .get(url(&app, "s", "/api/v1/namespaces"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["kind"], "NamespaceList");
    }
    let (versions, conns) = seen(&sim, "/api/v1/namespaces");
    assert_eq!(versions, vec![Version::HTTP_2; 5]);
    assert_eq!(conns.len(), 1, "one connection for all: {conns:?}");
    // A request body goes up over HTTP/2 too.
    let r = c
        .post(url(&app, "s", "/api/v1/namespaces/default/configmaps"))
        .header("content-type", "application/json")
        .body(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"over-h2"},"data":{"k":"v"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let r = c
        .get(url(
            &app,
            "s",
            "/api/v1/namespaces/default/configmaps/over-h2",
        ))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["k"], "v");
}

#[actix_web::test]
async fn http2_false_and_http1_only_servers_get_http11() {
    let sim = tls_sim().await;
    let mut off = sim_cluster("off", &sim);
    off.http1_only = true;
    // A TLS server that offers only http/1.1 by ALPN.
    let ca = Ca::new("h1-only CA");
    let (h1, h1_seen) = http1_only_server(&ca).await;
    let mut h1c = cluster("h1", &format!("https://{h1}"));
    h1c.ca_data = Some(b64(&ca.pem));
    let app = app(vec![off, h1c], 1).await;
    let c = http();
    for _ in 0..3 {
        let r = c
            .get(url(&app, "off", "/api/v1/namespaces"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        let r = c.get(url(&app, "h1", "/api/v1/pods")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["ok"], true);
    }
    let (versions, conns) = seen(&sim, "/api/v1/namespaces");
    assert_eq!(versions, vec![Version::HTTP_11; 3]);
    assert_eq!(
        conns.len(),
        1,
        "a kept-alive HTTP/1.1 connection: {conns:?}"
    );
    let h1_seen = h1_seen.lock().unwrap().clone();
    assert_eq!(h1_seen.len(), 3, "{h1_seen:?}");
    assert!(
        h1_seen.iter().all(|l| l == "GET /api/v1/pods HTTP/1.1"),
        "{h1_seen:?}"
    );
}

/// An HTTPS server that offers only `http/1.1` by ALPN (actix's rustls listener would add
/// `h2`): answers every request head with a small JSON body, keeps the connection, and
/// records each request line.
async fn http1_only_server(ca: &Ca) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cfg = common_tls::server_config(&ca.server(&["127.0.0.1"]));
    assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let lines = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, lines) = (acceptor.clone(), lines.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        let head = String::from_utf8_lossy(&head).into_owned();
                        lines
                            .lock()
                            .unwrap()
                            .push(head.lines().next().unwrap_or("").to_owned());
                        let body = r#"{"ok":true}"#;
                        let res = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if tls.write_all(res.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Reads the watch `body` up to the first whole line: one event.
async fn next_event(r: &mut reqwest::Response, buf: &mut Vec<u8>) -> Value {
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            return serde_json::from_slice(&line).unwrap();
        }
        let chunk = tokio::time::timeout(WAIT, r.chunk())
            .await
            .expect("an event within the wait")
            .unwrap()
            .expect("the watch is still open");
        buf.extend_from_slice(&chunk);
    }
}

/// kubeplex puts at most this many requests on one HTTP/2 connection (below the servers'
/// own stream limits: Go's 250, nginx's 128), then opens another.
const STREAMS_PER_CONNECTION: usize = 100;

/// One worker, so the connection count is exact: 150 watches take two connections (100 and
/// 50 streams), not 150.
#[actix_web::test]
async fn a_hundred_and_fifty_watches_share_two_http2_connections_and_stream_events() {
    const N: usize = 150;
    const WORKERS: usize = 1;
    let sim = tls_sim().await;
    let app = app(vec![sim_cluster("s", &sim)], WORKERS).await;
    let c = http();
    let path = "/api/v1/namespaces/default/configmaps";
    let watch = url(
        &app,
        "s",
        &format!("{path}?watch=1&fieldSelector=metadata.name%3Dwatched"),
    );
    let mut watches = Vec::new();
    for r in futures_util::future::join_all((0..N).map(|_| c.get(&watch).send())).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        watches.push(r);
    }
    assert!(
        eventually(WAIT, || sim.watchers() >= N).await,
        "{} watches open at the sim",
        sim.watchers()
    );
    let (versions, conns) = seen(&sim, path);
    assert_eq!(versions.len(), N);
    assert!(
        versions.iter().all(|v| *v == Version::HTTP_2),
        "{versions:?}"
    );
    assert_eq!(
        conns.len(),
        N.div_ceil(STREAMS_PER_CONNECTION),
        "{N} watches over {} connections: {conns:?}",
        conns.len()
    );
    // Each event reaches every watch, one by one.
    for (i, verb) in ["first", "second"].iter().enumerate() {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"watched"}},"data":{{"n":"{verb}"}}}}"#
        );
        let r = if i == 0 {
            c.post(url(&app, "s", path))
        } else {
            c.put(url(&app, "s", &format!("{path}/watched")))
        }
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let want = if i == 0 { "ADDED" } else { "MODIFIED" };
        let mut bufs = vec![Vec::new(); N];
        for (w, buf) in watches.iter_mut().zip(bufs.iter_mut()) {
            let e = next_event(w, buf).await;
            assert_eq!(e["type"], want, "{e}");
            assert_eq!(e["object"]["data"]["n"], *verb, "{e}");
        }
    }
    // Callers going away end their watches upstream (RST_STREAM). kubeplex notices a caller
    // is gone when it next writes to it, and a server notices a cancelled idle watch when it
    // next writes to it (actix, the sim's server, as Go's does not): write until the sim has
    // no watch left. A watch kubeplex kept open would take every write.
    drop(watches);
    let mut n = 0;
    let closed = loop {
        if eventually(Duration::from_millis(500), || sim.watchers() == 0).await {
            break true;
        }
        n += 1;
        if n > 20 {
            break false;
        }
        let r = c
            .put(url(&app, "s", &format!("{path}/watched")))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"watched"}},"data":{{"n":"poke{n}"}}}}"#
            ))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    };
    assert!(closed, "{} watches still open at the sim", sim.watchers());
    // A watch the server ends (timeoutSeconds) ends cleanly for the caller.
    let mut r = c
        .get(url(&app, "s", &format!("{path}?watch=1&timeoutSeconds=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    while let Some(chunk) = tokio::time::timeout(WAIT, r.chunk())
        .await
        .expect("the watch ends")
        .expect("a clean end, not an error")
    {
        drop(chunk);
    }
}

#[actix_web::test]
async fn websocket_exec_to_a_tls_cluster_offering_h2_is_an_http11_upgrade() {
    let sim = tls_sim().await;
    let app = app(vec![sim_cluster("s", &sim)], 1).await;
    // An ordinary request first: its HTTP/2 connection must not carry the upgrade.
    let r = http()
        .get(url(&app, "s", "/api/v1/namespaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let exec = "/api/v1/namespaces/payments/pods/toolbox/exec";
    let ws = format!(
        "ws://{}/api/kubernetes/clusters/s{exec}?command=echo&command=over%20h2%20cluster&stdout=true",
        app.addr
    );
    let (mut ws, res) = support_ws::connect(&ws, &["v5.channel.k8s.io"], &[])
        .await
        .unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "v5.channel.k8s.io");
    let (out, _, status) = support_ws::collect_exec(&mut ws).await;
    assert_eq!(out, "over h2 cluster\n");
    assert!(status.contains("Success"), "{status}");
    let (versions, _) = seen(&sim, exec);
    assert_eq!(versions, vec![Version::HTTP_11]);
    let (versions, _) = seen(&sim, "/api/v1/namespaces");
    assert_eq!(versions, vec![Version::HTTP_2]);
}

/// An HTTPS upstream speaking HTTP/2 only (the h2 crate) that misbehaves by path:
/// `.../reset-before` resets the stream instead of answering; `.../reset-after` and
/// `.../goaway-after` send a 200 head and a first chunk, then, once the test says so
/// (`cut`), reset the stream or send GOAWAY and close; anything else is a 200 JSON body.
async fn misbehaving_h2(ca: &Ca, cut: Arc<tokio::sync::Notify>) -> SocketAddr {
    let mut cfg = common_tls::server_config(&ca.server(&["127.0.0.1"]));
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut conn) = h2::server::handshake(tls).await else {
                    return;
                };
                let mut goaway = false;
                let mut open = Vec::new();
                loop {
                    let next = tokio::select! {
                        n = conn.accept() => n,
                        _ = cut.notified(), if goaway => {
                            conn.abrupt_shutdown(h2::Reason::INTERNAL_ERROR);
                            goaway = false;
                            continue;
                        }
                    };
                    let Some(Ok((req, mut respond))) = next else {
                        break;
                    };
                    let path = req.uri().path().to_owned();
                    let head = || {
                        http1::Response::builder()
                            .status(200)
                            .header("content-type", "application/json")
                            .body(())
                            .unwrap()
                    };
                    if path.ends_with("/reset-before") {
                        respond.send_reset(h2::Reason::INTERNAL_ERROR);
                    } else if path.ends_with("/refused-before") {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                    } else if path.ends_with("/cancel-before") {
                        respond.send_reset(h2::Reason::CANCEL);
                    } else if path.ends_with("/reset-after") || path.ends_with("/goaway-after") {
                        let mut s = respond.send_response(head(), false).unwrap();
                        s.send_data(Bytes::from_static(b"{\"partial\":"), false)
                            .unwrap();
                        if path.ends_with("/goaway-after") {
                            // Kept open until the connection goes away.
                            open.push(s);
                            goaway = true;
                        } else {
                            let cut = cut.clone();
                            tokio::spawn(async move {
                                cut.notified().await;
                                s.send_reset(h2::Reason::INTERNAL_ERROR);
                            });
                        }
                    } else {
                        let mut s = respond.send_response(head(), false).unwrap();
                        s.send_data(Bytes::from_static(b"{\"ok\":true}"), true)
                            .unwrap();
                    }
                }
            });
        }
    });
    addr
}

#[actix_web::test]
async fn an_h2_upstream_resetting_or_going_away_gives_a_502_or_a_cut_short_body() {
    let ca = Ca::new("h2 misbehaving CA");
    let cut = Arc::new(tokio::sync::Notify::new());
    let addr = misbehaving_h2(&ca, cut.clone()).await;
    let mut c = cluster("bad", &format!("https://{addr}"));
    c.ca_data = Some(b64(&ca.pem));
    let app = app(vec![c], 1).await;
    let client = http();
    let r = client
        .get(url(&app, "bad", "/api/v1/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);

    // Reset before the head (an error, a refusal, a cancel): a 502 Status naming the
    // cluster.
    for path in ["reset-before", "refused-before", "cancel-before"] {
        let r = http()
            .get(url(&app, "bad", &format!("/api/v1/{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["kind"], "Status", "{v}");
        let m = v["message"].as_str().unwrap();
        assert!(
            m.starts_with("cluster config:bad: HTTP/2: stream error received"),
            "{v}"
        );
    }

    // After the head: the caller gets the head and the first bytes, then an error.
    for path in ["/api/v1/goaway-after", "/api/v1/reset-after"] {
        // A fresh client each time: kubeplex closes a connection whose response it could
        // not finish.
        let mut r = http().get(url(&app, "bad", path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let first = tokio::time::timeout(WAIT, r.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(&first[..], b"{\"partial\":", "{path}");
        cut.notify_one();
        let end = tokio::time::timeout(WAIT, async {
            loop {
                match r.chunk().await {
                    Ok(Some(_)) => continue,
                    other => break other,
                }
            }
        })
        .await
        .expect("the body ends");
        assert!(
            end.is_err(),
            "{path}: the body must end incomplete, got {end:?}"
        );
    }

    // The connection that went away is replaced: the next request succeeds.
    let r = http()
        .get(url(&app, "bad", "/api/v1/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn the_http2_key_of_a_config_cluster() {
    use kubeplex::config::{load_with_env, LocatorKind, Source};
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("app.yaml");
    let yaml = |v: &str| {
        format!(
            "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        \
             - name: a\n          url: https://a.example\n{v}"
        )
    };
    let load = |text: String| {
        std::fs::write(&f, text).unwrap();
        load_with_env(&[Source::File(f.clone())], &Default::default())
    };
    let http1_only = |s: kubeplex::config::Settings| match &s.locators[0].kind {
        LocatorKind::Config { clusters } => clusters[0].http1_only,
        other => panic!("{other:?}"),
    };
    assert!(!http1_only(load(yaml("")).unwrap()));
    assert!(!http1_only(load(yaml("          http2: true\n")).unwrap()));
    assert!(http1_only(load(yaml("          http2: false\n")).unwrap()));
    let e = load(yaml("          http2: sometimes\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("clusters[0].http2"), "{e}");
}
