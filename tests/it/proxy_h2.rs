//! HTTP/2 on a TLS listener (issue 8 B1, SPEC §1-§3): clients that negotiate `h2` by ALPN
//! (curl, kubectl, browsers) reach both proxy routes, watch streams event by event, large
//! bodies go both ways, headers above `maxHeaderBytes` get a 431 `Status`; HTTP/1.1 on the
//! same listener keeps working and still refuses absolute-form targets. kubectl itself
//! talks HTTP/2 to kubeplex over https with its token.

use crate::common;
use crate::common_tls;
use crate::kubectl_support;

use actix_web::http::Version;
use common::{cluster, settings, Body, Reply, Upstream};
use common_tls::Ca;
use futures_util::StreamExt;
use kubeplex::app::RunningApp;
use kubeplex::config::{ListenerTls, Settings};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// kubeplex serving `settings` over TLS with a certificate for 127.0.0.1 issued by `ca`.
async fn spawn_tls(mut settings: Settings, ca: &Ca) -> (RunningApp, tempfile::TempDir) {
    let cert = ca.server(&["127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &cert.key_pem).unwrap();
    settings.server.tls = Some(ListenerTls {
        cert_file: dir.path().join("tls.crt"),
        key_file: dir.path().join("tls.key"),
    });
    let app = common::spawn_app(settings).await;
    assert!(app.url().starts_with("https://"));
    (app, dir)
}

/// An awc client trusting `ca` that offers `alpn` (`h2` first means HTTP/2 when the server
/// agrees).
fn client(ca: &Ca, alpn: &[&[u8]]) -> awc::Client {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(cfg)))
        .timeout(Duration::from_secs(60))
        .finish()
}

fn h2(ca: &Ca) -> awc::Client {
    client(ca, &[b"h2", b"http/1.1"])
}

#[actix_web::test]
async fn both_routes_answer_over_h2_and_h1() {
    let up = Upstream::ok().await;
    let ca = Ca::new("kubeplex h2 routes CA");
    let (app, _dir) = spawn_tls(settings(vec![cluster("c", &up.url)]), &ca).await;
    let base = format!("{}/api/kubernetes", app.url());
    for (client, version) in [
        (h2(&ca), Version::HTTP_2),
        (client(&ca, &[b"http/1.1"]), Version::HTTP_11),
    ] {
        // The header route, as kubectl/Backstage send it: no body, no Content-Length.
        let mut res = client
            .get(format!("{base}/proxy/api/v1/namespaces?limit=5"))
            .insert_header(("Backstage-Kubernetes-Cluster", "c"))
            .send_body(actix_web::body::None::new())
            .await
            .unwrap();
        assert_eq!(res.version(), version);
        assert_eq!(res.status(), 200, "{:?}", res.body().await);
        assert_eq!(res.headers().get("kubeplex-cluster").unwrap(), "config:c");
        assert_eq!(res.body().await.unwrap(), r#"{"ok":true}"#);
        // The path route, by name and by key.
        for segment in ["c", "config:c"] {
            let mut res = client
                .get(format!(
                    "{base}/clusters/{segment}/apis/apps/v1/deployments"
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(res.version(), version);
            assert_eq!(res.status(), 200, "{:?}", res.body().await);
        }
    }
    let recorded = up.recorded();
    assert_eq!(recorded.len(), 6);
    for pair in recorded.chunks(3) {
        assert_eq!(pair[0].path, "/api/v1/namespaces");
        assert_eq!(pair[0].query.as_deref(), Some("limit=5"));
        assert_eq!(pair[0].one("content-length"), None);
        assert_eq!(pair[0].one("transfer-encoding"), None);
        let host = up.url.trim_start_matches("http://");
        assert_eq!(pair[0].one("host"), Some(host));
        assert_eq!(pair[1].path, "/apis/apps/v1/deployments");
        assert_eq!(pair[2].path, "/apis/apps/v1/deployments");
    }
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn absolute_form_is_still_refused_over_h1() {
    let up = Upstream::ok().await;
    let app = common::spawn_app(settings(vec![cluster("c", &up.url)])).await;
    let answer = common::raw(
        app.addr,
        &format!(
            "GET http://{}/api/kubernetes/clusters/c/api HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            app.addr, app.addr
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("absolute-form request targets are refused"),
        "{answer}"
    );
    assert!(up.recorded().is_empty());
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn a_watch_streams_event_by_event_over_h2() {
    let sent = Arc::new(AtomicU64::new(0));
    let ack = Arc::new(tokio::sync::Notify::new());
    let (s, a) = (sent.clone(), ack.clone());
    let up = Upstream::start(move |_| Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Body::Events {
            count: 3,
            interval: Duration::ZERO,
            sent: s.clone(),
            ack: Some(a.clone()),
        },
    })
    .await;
    let ca = Ca::new("kubeplex h2 watch CA");
    let (app, _dir) = spawn_tls(settings(vec![cluster("c", &up.url)]), &ca).await;
    let mut res = h2(&ca)
        .get(format!(
            "{}/api/kubernetes/clusters/c/api/v1/namespaces/default/pods?watch=1",
            app.url()
        ))
        .send_body(actix_web::body::None::new())
        .await
        .unwrap();
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(res.status(), 200);
    let mut got = Vec::new();
    for i in 0..3u64 {
        // Each event arrives while the upstream waits for its acknowledgement before the next.
        while !got.ends_with(b"\n") || got.iter().filter(|b| **b == b'\n').count() <= i as usize {
            let chunk = tokio::time::timeout(Duration::from_secs(20), res.next())
                .await
                .expect("event arrives")
                .expect("stream open")
                .unwrap();
            got.extend_from_slice(&chunk);
        }
        assert_eq!(sent.load(Ordering::SeqCst), i + 1);
        ack.notify_one();
    }
    assert_eq!(
        String::from_utf8(got).unwrap(),
        "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n"
    );
    let rest = res.next().await.map(|r| r.map(|b| b.len()));
    assert!(matches!(rest, None | Some(Ok(0))), "{rest:?}");
    assert_eq!(up.only().query.as_deref(), Some("watch=1"));
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn large_bodies_both_ways_over_h2() {
    const LEN: usize = 8 << 20;
    let up = Upstream::start(|r| {
        if r.method == "GET" {
            Reply {
                status: 200,
                headers: vec![],
                body: Body::Zeros {
                    len: LEN as u64,
                    sized: true,
                },
            }
        } else {
            Reply::json(&format!("{{\"received\":{}}}", r.body_len))
        }
    })
    .await;
    let ca = Ca::new("kubeplex h2 bodies CA");
    let (app, _dir) = spawn_tls(settings(vec![cluster("c", &up.url)]), &ca).await;
    let url = format!("{}/api/kubernetes/clusters/c/api/v1/configmaps", app.url());
    let client = h2(&ca);
    // Upload with a Content-Length.
    let body: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let mut res = client.post(&url).send_body(body.clone()).await.unwrap();
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.body().await.unwrap(),
        format!("{{\"received\":{LEN}}}").as_bytes()
    );
    // Upload streamed without a Content-Length (HTTP/2 DATA frames only).
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
        .chunks(100_000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let mut res = client
        .put(&url)
        .send_stream(futures_util::stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.body().await.unwrap(),
        format!("{{\"received\":{LEN}}}").as_bytes()
    );
    // Download.
    let mut res = client
        .get(&url)
        .send_body(actix_web::body::None::new())
        .await
        .unwrap();
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("content-length")
            .unwrap()
            .to_str()
            .unwrap(),
        LEN.to_string()
    );
    let got = res.body().limit(LEN + 1).await.unwrap();
    assert_eq!(got.len(), LEN);
    assert!(got.iter().all(|b| *b == 0));
    let recorded = up.recorded();
    assert_eq!(recorded.len(), 3);
    assert_eq!(
        recorded[0].one("content-length"),
        Some(LEN.to_string().as_str())
    );
    assert_eq!(recorded[1].one("transfer-encoding"), Some("chunked"));
    for r in &recorded[..2] {
        assert_eq!(r.body_len, LEN as u64);
        assert!(
            r.body[..1 << 20] == body[..1 << 20],
            "the body arrived altered"
        );
    }
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn headers_above_max_header_bytes_are_a_431_status_over_h2() {
    let up = Upstream::ok().await;
    let ca = Ca::new("kubeplex h2 headers CA");
    let (app, _dir) = spawn_tls(settings(vec![cluster("c", &up.url)]), &ca).await;
    let mut res = h2(&ca)
        .get(format!("{}/api/kubernetes/clusters/c/api", app.url()))
        .insert_header(("X-Big", "x".repeat(70_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(res.status(), 431);
    let v: Value = serde_json::from_slice(&res.body().await.unwrap()).unwrap();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["code"], 431);
    assert_eq!(v["reason"], "RequestHeaderFieldsTooLarge");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("exceed maxHeaderBytes (65536)"),
        "{v}"
    );
    assert!(up.recorded().is_empty());
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn kubectl_talks_h2_to_kubeplex_with_its_token() {
    let seed = kubeplex::sim::config::SeedSource::Text {
        name: "h2 seed".into(),
        text: "apiVersion: v1\nkind: List\nitems:\n\
               - {apiVersion: v1, kind: Namespace, metadata: {name: default}}\n\
               - {apiVersion: v1, kind: Namespace, metadata: {name: team-h2}}\n"
            .into(),
    };
    let sim = kubeplex::sim::spawn(
        "127.0.0.1:0",
        &kubeplex::sim::config::SimClusterConfig::new("dev", Some(seed), ["callers-token"]),
    )
    .await
    .expect("start the simulated cluster");
    let ca = Ca::new("kubeplex h2 kubectl CA");
    let (app, dir) = spawn_tls(
        settings(vec![cluster(
            "dev",
            sim.url().as_str().trim_end_matches('/'),
        )]),
        &ca,
    )
    .await;
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let k = kubectl_support::Kubectl::new(
        &format!("{}/api/kubernetes/clusters/dev", app.url()),
        Some("callers-token"),
    );
    // Go's HTTP/2 transport logs each frame it writes under GODEBUG=http2debug=2.
    let out = k
        .run_with_env(
            &[
                "--certificate-authority",
                ca_file.to_str().unwrap(),
                "get",
                "namespaces",
                "-o",
                "name",
            ],
            &[("GODEBUG", "http2debug=2")],
        )
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("namespace/team-h2\n"), "{stdout}");
    assert!(
        stderr.contains("http2: Transport encoding header \":authority\""),
        "kubectl did not use HTTP/2: {stderr}"
    );
    // With another token the simulated cluster refuses: the token is what kubectl sent.
    let other = kubectl_support::Kubectl::new(
        &format!("{}/api/kubernetes/clusters/dev", app.url()),
        Some("another-token"),
    );
    let err = other
        .fails(&[
            "--certificate-authority",
            ca_file.to_str().unwrap(),
            "get",
            "namespaces",
        ])
        .await;
    assert!(err.contains("You must be logged in to the server"), "{err}");
    app.handle.stop(false).await;
}
