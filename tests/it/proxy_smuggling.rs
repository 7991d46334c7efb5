//! Raw HTTP/1.1 through kubeplex end to end (issue 8 C8, B2): requests with ambiguous
//! framing (Content-Length with Transfer-Encoding, two Content-Lengths, two Hosts,
//! obfuscated Transfer-Encoding) are refused by actix-http's decoder (>= 3.18.11, pinned in
//! Cargo.toml) with an empty 400 and the connection closed: the recording upstream gets
//! nothing, and the request pipelined behind them is never read. Header limits: within
//! actix-http's 128 KiB head, headers above `maxHeaderBytes` get kubeplex's 431 `Status`;
//! above it (or more than 96 fields) actix-http answers an empty 431 itself.

use crate::common;

use common::{cluster, settings, spawn_app, Upstream};
use kubeplex::app::RunningApp;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes `bytes` on one connection and reads until kubeplex closes it.
async fn exchange(app: &RunningApp, bytes: &[u8]) -> String {
    let (answer, err) = exchange_lossy(app, bytes).await;
    assert!(err.is_none(), "{err:?} after {answer:?}");
    answer
}

/// [`exchange`], also giving the error that ended the reading (a reset when kubeplex
/// closes with bytes of ours left unread).
async fn exchange_lossy(app: &RunningApp, bytes: &[u8]) -> (String, Option<std::io::Error>) {
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut rd, mut wr) = s.split();
    let mut out = Vec::new();
    let write = async {
        let _ = wr.write_all(bytes).await;
    };
    let read = async {
        let mut buf = [0u8; 8192];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => return None,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return Some(e),
            }
        }
    };
    let (_, err) =
        tokio::time::timeout(Duration::from_secs(20), async { tokio::join!(write, read) })
            .await
            .expect("kubeplex closes the connection");
    (String::from_utf8_lossy(&out).into_owned(), err)
}

/// The request pipelined behind each attack: it must never reach the upstream.
const SMUGGLED: &str =
    "GET /api/kubernetes/clusters/c/smuggled HTTP/1.1\r\nHost: kubeplex\r\nConnection: close\r\n\r\n";

/// `head` (ending in the blank line), `body`, then [`SMUGGLED`] on one connection: exactly
/// one answer, an empty 400, and nothing upstream.
async fn refused(head: &str, body: &str) {
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("c", &up.url)])).await;
    let answer = exchange(&app, format!("{head}{body}{SMUGGLED}").as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{head:?}: {answer}"
    );
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{head:?}: {answer}");
    assert!(
        answer.contains("content-length: 0\r\n"),
        "{head:?}: {answer}"
    );
    assert!(answer.ends_with("\r\n\r\n"), "{head:?}: {answer}");
    // Give a smuggled request every chance to arrive before looking.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        up.recorded().is_empty(),
        "{head:?} reached the upstream: {:?}",
        up.recorded()
    );
    app.handle.stop(false).await;
}

const POST: &str =
    "POST /api/kubernetes/clusters/c/api/v1/namespaces HTTP/1.1\r\nHost: kubeplex\r\n";

#[actix_web::test]
async fn a_sane_pipeline_is_the_control() {
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("c", &up.url)])).await;
    let answer = exchange(
        &app,
        format!("{POST}Content-Length: 5\r\n\r\nhello{SMUGGLED}").as_bytes(),
    )
    .await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{answer}");
    let rec = up.recorded();
    assert_eq!(rec.len(), 2);
    assert_eq!(
        (rec[0].method.as_str(), &rec[0].body[..]),
        ("POST", &b"hello"[..])
    );
    assert_eq!(rec[1].path, "/smuggled");
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn content_length_with_transfer_encoding_is_refused() {
    // CL.TE: a front end using Content-Length would forward `0\r\n\r\n` + the smuggled request
    // as the body; one using chunked would end the body at `0`.
    refused(
        &format!("{POST}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "0\r\n\r\n",
    )
    .await;
    // TE.CL order.
    refused(
        &format!("{POST}Transfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n"),
        "0\r\n\r\n",
    )
    .await;
}

#[actix_web::test]
async fn two_content_lengths_are_refused() {
    refused(
        &format!("{POST}Content-Length: 5\r\nContent-Length: 40\r\n\r\n"),
        "hello",
    )
    .await;
    // Even equal ones, and a list in one field.
    refused(
        &format!("{POST}Content-Length: 5\r\nContent-Length: 5\r\n\r\n"),
        "hello",
    )
    .await;
    refused(&format!("{POST}Content-Length: 5, 5\r\n\r\n"), "hello").await;
    refused(&format!("{POST}Content-Length: +5\r\n\r\n"), "hello").await;
}

#[actix_web::test]
async fn two_hosts_or_none_are_refused() {
    refused(
        "GET /api/kubernetes/clusters/c/api HTTP/1.1\r\nHost: kubeplex\r\nHost: evil.example\r\n\r\n",
        "",
    )
    .await;
    refused("GET /api/kubernetes/clusters/c/api HTTP/1.1\r\n\r\n", "").await;
}

#[actix_web::test]
async fn obfuscated_transfer_encodings_are_refused() {
    for te in [
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        "Transfer-Encoding : chunked\r\n",
        "Transfer-Encoding:\tchunked\r\n Transfer-Encoding: chunked\r\n",
    ] {
        refused(&format!("{POST}{te}\r\n"), "0\r\n\r\n").await;
    }
    // Chunked framing in HTTP/1.0, which has no chunked encoding.
    refused(
        "POST /api/kubernetes/clusters/c/api HTTP/1.0\r\nHost: kubeplex\r\nTransfer-Encoding: chunked\r\n\r\n",
        "0\r\n\r\n",
    )
    .await;
}

#[actix_web::test]
async fn a_bad_chunk_size_ends_the_connection_after_what_was_sent() {
    // The head is valid, so the request is forwarded with its body streamed; the body's
    // framing breaks at the empty chunk-size line (refused since actix-http 3.18.9).
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("c", &up.url)])).await;
    let answer = exchange(
        &app,
        format!("{POST}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n\r\n0\r\n\r\n{SMUGGLED}")
            .as_bytes(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rec = up.recorded();
    // actix-http drops the connection without an answer (the request is in flight), and
    // the upstream saw at most the POST with the first chunk, never the pipelined GET.
    assert_eq!(answer, "");
    assert!(rec.len() <= 1, "{rec:?}");
    for r in &rec {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/api/v1/namespaces")
        );
        assert!(r.body.starts_with(b"hello") || r.body.is_empty(), "{r:?}");
    }
    app.handle.stop(false).await;
}

/// The body of a `Status` answer.
fn status_json(answer: &str) -> serde_json::Value {
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[actix_web::test]
async fn headers_above_max_header_bytes_get_a_431_status() {
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("c", &up.url)])).await;
    let answer = exchange(
        &app,
        format!(
            "GET /api/kubernetes/clusters/c/api HTTP/1.1\r\nHost: kubeplex\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "x".repeat(100_000)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("content-type: application/json\r\n"),
        "{answer}"
    );
    let v = status_json(&answer);
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["code"], 431);
    assert_eq!(v["reason"], "RequestHeaderFieldsTooLarge");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.starts_with("the request headers ("), "{msg}");
    assert!(
        msg.ends_with(" bytes) exceed maxHeaderBytes (65536)"),
        "{msg}"
    );
    assert!(up.recorded().is_empty());
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn heads_beyond_the_http_layer_get_its_empty_431() {
    // actix-http builds this 431 in its HTTP/1 dispatcher, before any service runs: its
    // body is empty and no hook can change it (see config::server::MAX_HEADER_BYTES_LIMIT).
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("c", &up.url)])).await;
    let (big, err) = exchange_lossy(
        &app,
        format!(
            "GET /api/kubernetes/clusters/c/api HTTP/1.1\r\nHost: kubeplex\r\nX-Big: {}\r\n\r\n",
            "x".repeat(140_000)
        )
        .as_bytes(),
    )
    .await;
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = exchange(
        &app,
        format!("GET /api/kubernetes/clusters/c/api HTTP/1.1\r\nHost: kubeplex\r\n{many}\r\n")
            .as_bytes(),
    )
    .await;
    // kubeplex stops reading at 128 KiB and closes: the rest of the 140 KB head makes the
    // kernel reset the connection, which may discard the 431 before the client reads it.
    if let Some(e) = err {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    let answers = if big.is_empty() {
        vec![many]
    } else {
        vec![big, many]
    };
    for answer in answers {
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{answer}"
        );
        assert!(answer.contains("content-length: 0\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"), "{answer}");
    }
    assert!(up.recorded().is_empty());
    app.handle.stop(false).await;
}
