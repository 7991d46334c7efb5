//! Honest, bounded logs about broken clients (issue 9 item 8): a malformed request and a
//! request head that does not arrive in time are logged (`kubeplex::client`, at info), and a
//! flood of them is logged at most once a second per kind, with how many were left out.

mod common;

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
    let found = common::eventually(Duration::from_secs(10), || {
        client_lines(&kp, "malformed request").len() >= 2
    })
    .await;
    assert!(found, "malformed requests are logged");
    let lines = client_lines(&kp, "malformed request");
    let left_out: u64 = lines
        .iter()
        .map(|l| l["fields"]["left_out"].as_u64().unwrap())
        .sum();
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
