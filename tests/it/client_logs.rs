//! Honest, bounded logs about broken clients (issue 9 item 8): a malformed request and a
//! request head that does not arrive in time are logged (`kubeplex::client`, at info), and a
//! flood of them is logged at most once a second per kind, with how many were left out; an
//! upstream that closes without answering is reported as such, and the audit line says how
//! a response ended (complete, upstream body cut short, client gone).

use crate::common;

use common::KubeplexProcess;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `bytes` on a new connection and reads until kubeplex closes it.
async fn send_raw(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    out
}

fn client_lines(kp: &KubeplexProcess, what: &str) -> Vec<serde_json::Value> {
    kp.json_logs("kubeplex::client")
        .into_iter()
        .filter(|l| l["fields"]["message"].as_str().unwrap_or("").contains(what))
        .collect()
}

#[actix_web::test]
async fn a_flood_of_malformed_requests_is_logged_at_most_once_a_second() {
    let kp = KubeplexProcess::start("http://127.0.0.1:1", "info");
    let n = 300;
    for _ in 0..n {
        let out = send_raw(&kp.addr, b"NOT HTTP AT ALL\r\n\r\n").await;
        assert!(
            out.starts_with(b"HTTP/1.1 400"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    // One more after a pause, so the count of what was left out is reported.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = send_raw(&kp.addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    // Lines plus the counts of those left out. The flood may cross a second boundary and
    // log twice before the last request's line (which carries the rest of the count).
    let accounted = || {
        let lines = client_lines(&kp, "malformed request");
        let left_out: u64 = lines
            .iter()
            .map(|l| l["fields"]["left_out"].as_u64().unwrap())
            .sum();
        (lines, left_out)
    };
    let found = common::eventually(Duration::from_secs(10), || {
        let (lines, left_out) = accounted();
        lines.len() >= 2 && lines.len() as u64 + left_out > n
    })
    .await;
    let (lines, left_out) = accounted();
    assert!(found, "malformed requests are logged: {lines:?}");
    assert_eq!(
        lines.len() as u64 + left_out,
        n + 1,
        "every malformed request is either a line or counted as left out: {lines:?}"
    );
    assert!(
        lines.len() <= 40,
        "{} lines for {} malformed requests: not rate limited",
        lines.len(),
        n + 1
    );
}

#[actix_web::test]
async fn a_request_head_that_does_not_arrive_is_a_408_and_logged() {
    let kp = KubeplexProcess::start("http://127.0.0.1:1", "info");
    let out = send_raw(&kp.addr, b"GET /healthz HTTP/1.1\r\nHo").await;
    assert!(
        out.is_empty() || out.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let found = common::eventually(Duration::from_secs(10), || {
        !client_lines(&kp, "request head not received in time").is_empty()
    })
    .await;
    assert!(found, "the 408 is logged");
}

/// A raw upstream: for each connection, reads a request head and then does `what`.
async fn raw_upstream(what: &'static str) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    actix_web::rt::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            actix_web::rt::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                match what {
                    // Close without answering.
                    "close" => {}
                    // A chunked body cut off by the FIN.
                    "truncate" => {
                        let _ = s
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
                            )
                            .await;
                    }
                    // A body that never ends (a watch), until the client leaves.
                    _ => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                            .await;
                        loop {
                            if s.write_all(b"6\r\nevent\n\r\n").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            });
        }
    });
    url
}

fn audit_outcomes(kp: &KubeplexProcess) -> Vec<String> {
    kp.json_logs("kubeplex::audit")
        .iter()
        .filter_map(|l| l["fields"]["outcome"].as_str().map(str::to_owned))
        .collect()
}

#[actix_web::test]
async fn an_upstream_that_closes_without_answering_is_reported_as_such() {
    let up = raw_upstream("close").await;
    let kp = KubeplexProcess::start(&up, "info");
    let res = reqwest::get(kp.proxy_url("/api")).await.unwrap();
    assert_eq!(res.status(), 502);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("closed the connection before a complete response head"),
        "{body}"
    );
    assert!(
        !body.contains("cannot connect"),
        "not a connect failure: {body}"
    );
}

#[actix_web::test]
async fn a_body_cut_short_is_not_logged_as_complete() {
    let up = raw_upstream("truncate").await;
    let kp = KubeplexProcess::start(&up, "info");
    let res = reqwest::get(kp.proxy_url("/api")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.bytes().await.is_err(),
        "the client sees the body incomplete"
    );
    let found = common::eventually(Duration::from_secs(10), || {
        audit_outcomes(&kp)
            .iter()
            .any(|o| o == "upstream body cut short")
    })
    .await;
    assert!(found, "audit outcomes: {:?}", audit_outcomes(&kp));
}

#[actix_web::test]
async fn a_client_gone_mid_response_is_logged_as_such() {
    let up = raw_upstream("stream").await;
    let kp = KubeplexProcess::start(&up, "info");
    let mut res = reqwest::get(kp.proxy_url("/api/v1/pods?watch=1"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.chunk().await.unwrap().is_some(), "the stream started");
    drop(res);
    let found = common::eventually(Duration::from_secs(10), || {
        audit_outcomes(&kp).iter().any(|o| o == "client gone")
    })
    .await;
    assert!(found, "audit outcomes: {:?}", audit_outcomes(&kp));
}

#[actix_web::test]
async fn a_request_body_that_stalls_is_abandoned_with_a_408() {
    let up = common::Upstream::ok().await;
    let kp = KubeplexProcess::spawn(
        &format!(
            "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n    bodyIdleTimeout: 1s\n\
             kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
             \x20       - name: up\n          url: {}\n",
            up.url
        ),
        "info",
        &[],
    );
    let out = send_raw(
        &kp.addr,
        b"POST /api/kubernetes/proxy/api/v1/namespaces HTTP/1.1\r\nHost: x\r\n\
          Content-Length: 100\r\n\r\n0123456789",
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"reason\":\"RequestTimeout\""), "{text}");
    assert!(text.contains("bodyIdleTimeout"), "{text}");
}
