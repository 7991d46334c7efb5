//! Graceful drain (SPEC §9, issue 15 item 3), on the real binary: SIGTERM with an open
//! watch (the client sees the stream end cleanly after a whole event, even when the signal
//! came mid-event), an upload in flight (it completes) and an open exec tunnel (the client
//! gets a WebSocket Close frame, 1001); kubeplex exits 0 within `shutdownTimeout`. A second
//! SIGTERM ends a drain that is waiting for a stuck upload at once.

use crate::common::{KubeplexProcess, Upstream};
use crate::ops_metrics::{must, scrape};
use crate::support_ws::connect;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// The watch upstream's script: two whole events, then half of a third; the rest of it
/// (and the start of a fourth) only when the test says so.
struct Script {
    half_sent: Notify,
    go_on: Notify,
}

const EVENT: &str = r#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"p0"}}}"#;

async fn watch_upstream(script: Arc<Script>) -> (String, actix_web::dev::ServerHandle) {
    let server = actix_web::HttpServer::new(move || {
        let script = script.clone();
        actix_web::App::new().default_service(web::to(move || {
            let script = script.clone();
            async move {
                let stream = futures_util::stream::unfold(0u8, move |step| {
                    let script = script.clone();
                    async move {
                        let chunk = match step {
                            0 => format!("{EVENT}\n{EVENT}\n"),
                            1 => {
                                let half = &EVENT[..20];
                                script.half_sent.notify_one();
                                half.to_string()
                            }
                            2 => {
                                script.go_on.notified().await;
                                format!("{}\n{}", &EVENT[20..], &EVENT[..10])
                            }
                            _ => {
                                // Never more: kubeplex must end the stream itself.
                                futures_util::future::pending::<()>().await;
                                unreachable!()
                            }
                        };
                        Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), step + 1))
                    }
                });
                HttpResponse::Ok()
                    .content_type("application/json")
                    .streaming(stream)
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), handle)
}

fn config(watch_url: &str, upload_url: &str, shutdown: &str) -> String {
    format!(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 2\n    shutdownTimeout: {shutdown}\n    probeInterval: 0s\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
         \x20       - {{name: w, url: '{watch_url}'}}\n        - {{name: u, url: '{upload_url}'}}\n\
         \x20   - type: simulated\n      clusters:\n        - name: pods\n          seed: {}/config/seed.yaml\n",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn sigterm(kp: &KubeplexProcess) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &kp.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Waits until kubeplex logged that it is draining (the drain signal is set by then).
async fn until_draining(kp: &KubeplexProcess) {
    for _ in 0..600 {
        if kp
            .logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("SIGTERM: draining"))
        {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("kubeplex did not start draining");
}

/// An upload whose body the test feeds: the request's future, and the sender of its chunks.
fn upload(
    url: String,
) -> (
    tokio::task::JoinHandle<reqwest::Response>,
    tokio::sync::mpsc::Sender<Bytes>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream));
    (tokio::spawn(async move { req.send().await.unwrap() }), tx)
}

#[actix_web::test]
async fn sigterm_ends_watches_at_an_event_tunnels_with_close_and_finishes_uploads() {
    let script = Arc::new(Script {
        half_sent: Notify::new(),
        go_on: Notify::new(),
    });
    let (watch_url, watch_handle) = watch_upstream(script.clone()).await;
    let up = Upstream::ok().await;
    let mut kp = KubeplexProcess::spawn(&config(&watch_url, &up.url, "60s"), "info", &[]);
    let base = format!("http://{}", kp.addr);
    let k = format!("{base}/api/kubernetes/clusters");

    // A watch, read up to half of its third event.
    let mut watch = reqwest::Client::new()
        .get(format!("{k}/w/api/v1/pods?watch=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);
    let mut got = Vec::new();
    let half = format!("{EVENT}\n{EVENT}\n{}", &EVENT[..20]);
    while got.len() < half.len() {
        got.extend_from_slice(&watch.chunk().await.unwrap().unwrap());
    }
    assert_eq!(String::from_utf8_lossy(&got), half);

    // An upload, 1000 bytes in.
    let (pending, body) = upload(format!("{k}/u/api/v1/namespaces/x/configmaps"));
    body.send(Bytes::from(vec![b'a'; 1000])).await.unwrap();
    for _ in 0..400 {
        let (_, s) = scrape(&base).await;
        if must(&s, "kubeplex_bytes_total", &[("direction", "in")]) >= 1000.0 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }

    // An exec tunnel (the simulated cluster's `cat`), one round trip through it.
    let ws_url = format!(
        "ws://{}/api/kubernetes/clusters/pods/api/v1/namespaces/payments/pods/toolbox/exec?command=cat&stdin=true&stdout=true",
        kp.addr
    );
    let (mut ws, _) = connect(&ws_url, &["v5.channel.k8s.io"], &[]).await.unwrap();
    ws.send(Message::Binary(b"\x00hello\n".to_vec().into()))
        .await
        .unwrap();
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Binary(b) if b.starts_with(b"\x01hello") => break,
            _ => continue,
        }
    }

    sigterm(&kp);
    until_draining(&kp).await;

    // The tunnel: a Close frame, going away.
    let close = loop {
        match ws.next().await {
            Some(Ok(Message::Close(c))) => break c,
            Some(Ok(_)) => continue,
            other => panic!("expected a Close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close code");
    assert_eq!(close.code, CloseCode::Away);
    assert_eq!(close.reason.as_str(), "kubeplex is shutting down");

    // The watch: the rest of the third event arrives, and nothing after it.
    script.go_on.notify_one();
    while let Some(chunk) = watch.chunk().await.expect("a clean end, not a cut stream") {
        got.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(got).unwrap();
    assert_eq!(text, format!("{EVENT}\n{EVENT}\n{EVENT}\n"));

    // The upload finishes after the signal, and gets its answer.
    body.send(Bytes::from(vec![b'b'; 500])).await.unwrap();
    drop(body);
    let res = pending.await.unwrap();
    assert_eq!(res.status(), 200);
    let rec = up.only();
    assert_eq!(rec.body_len, 1500);

    // Then kubeplex exits 0, well within shutdownTimeout (60s).
    let status = kp
        .wait_exit(Duration::from_secs(60))
        .expect("kubeplex exits within shutdownTimeout");
    assert_eq!(status.code(), Some(0), "{:?}", kp.logs.lock().unwrap());
    watch_handle.stop(false).await;
}

#[actix_web::test]
async fn a_second_sigterm_exits_at_once() {
    let up = Upstream::ok().await;
    let mut kp = KubeplexProcess::spawn(&config(&up.url, &up.url, "1h"), "info", &[]);
    let base = format!("http://{}", kp.addr);
    // An upload that never finishes keeps the graceful stop waiting (for an hour).
    let (pending, body) = upload(format!("{base}/api/kubernetes/clusters/u/api/v1/x"));
    body.send(Bytes::from(vec![b'a'; 100])).await.unwrap();
    for _ in 0..400 {
        let (_, s) = scrape(&base).await;
        if must(&s, "kubeplex_bytes_total", &[("direction", "in")]) >= 100.0 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    sigterm(&kp);
    until_draining(&kp).await;
    sigterm(&kp);
    let status = kp
        .wait_exit(Duration::from_secs(60))
        .expect("the second SIGTERM ends kubeplex");
    assert_eq!(status.code(), Some(1));
    assert!(kp
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("second signal")));
    drop(body);
    pending.abort();
}
