//! The audit line (SPEC §3, §5, §9): one JSON log line per proxied request from the real
//! binary, with request id, cluster key, method, path without query, status, bytes and
//! duration; never the query string or a token.

use crate::common;

use common::*;
use std::time::Duration;

#[actix_web::test]
async fn one_audit_line_per_request_without_query_or_token() {
    let up = Upstream::start(|_| Reply {
        status: 201,
        headers: vec![],
        body: Body::Bytes(b"0123456789".to_vec()),
    })
    .await;
    let kp = KubeplexProcess::start(&up.url, "warn,kubeplex=info");
    let r = http()
        .post(kp.proxy_url("/api/v1/namespaces/ns/services?dryRun=All&token=query-secret"))
        .header("Authorization", "Bearer header-secret")
        .header("X-Request-Id", "audit-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.bytes().await.unwrap().len(), 10);
    assert!(
        eventually(Duration::from_secs(10), || !kp
            .json_logs("kubeplex::audit")
            .is_empty())
        .await,
        "no audit line"
    );
    let lines = kp.json_logs("kubeplex::audit");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let f = &lines[0]["fields"];
    assert_eq!(f["request_id"], "audit-1");
    assert_eq!(f["cluster"], "config:up");
    assert_eq!(f["method"], "POST");
    assert_eq!(
        f["path"],
        "/api/kubernetes/proxy/api/v1/namespaces/ns/services"
    );
    assert_eq!(f["status"], 201);
    assert_eq!(f["bytes"], 10);
    assert_eq!(f["complete"], true);
    assert!(f["duration_ms"].as_f64().unwrap() >= 0.0);
    let all = kp.logs.lock().unwrap().join("\n");
    assert!(
        !all.contains("query-secret") && !all.contains("header-secret"),
        "{all}"
    );
}

#[actix_web::test]
async fn errors_are_audited_too() {
    let up = Upstream::ok().await;
    let kp = KubeplexProcess::start(&up.url, "warn,kubeplex=info");
    let r = http()
        .get(format!(
            "http://{}/api/kubernetes/clusters/missing/api?x=1",
            kp.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        eventually(Duration::from_secs(10), || !kp
            .json_logs("kubeplex::audit")
            .is_empty())
        .await
    );
    let f = &kp.json_logs("kubeplex::audit")[0]["fields"];
    assert_eq!(f["status"], 404);
    assert_eq!(f["cluster"], "-");
    assert_eq!(f["path"], "/api/kubernetes/clusters/missing/api");
}

#[actix_web::test]
async fn human_audit_line_from_the_binary_has_the_fields_and_no_secret() {
    // The default log format off a terminal: the audit line is built directly
    // (`telemetry::format::Line`), in the layout the human format writes for it.
    let up = Upstream::start(|_| Reply {
        status: 200,
        headers: vec![],
        body: Body::Bytes(b"0123456789".to_vec()),
    })
    .await;
    let yaml = format!(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
         \x20       - name: up\n          url: {}\n",
        up.url
    );
    let kp = KubeplexProcess::spawn_with(&yaml, "warn,kubeplex=info", &[], false);
    let r = http()
        .get(kp.proxy_url("/api/v1/namespaces/ns/pods?labelSelector=app&token=query-secret"))
        .header("Authorization", "Bearer header-secret")
        .header("X-Request-Id", "audit-human-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 10);
    let audit = || {
        kp.logs
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(" INFO kubeplex::audit: proxied "))
            .cloned()
    };
    assert!(
        eventually(Duration::from_secs(10), || audit().is_some()).await,
        "no audit line: {:?}",
        kp.logs.lock().unwrap()
    );
    let line = audit().unwrap();
    let (stamp, rest) = line.split_once("  INFO ").unwrap();
    assert!(
        stamp.len() == 27 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{line}"
    );
    assert_eq!(
        rest.split(" duration_ms=").next().unwrap(),
        "kubeplex::audit: proxied request_id=\"audit-human-1\" subject=- cluster=\"config:up\" \
         method=GET path=/api/kubernetes/proxy/api/v1/namespaces/ns/pods status=200 bytes=10 \
         complete=true outcome=\"complete\"",
        "{line}"
    );
    let ms: f64 = rest.split(" duration_ms=").nth(1).unwrap().parse().unwrap();
    assert!(ms >= 0.0, "{line}");
    let all = kp.logs.lock().unwrap().join("\n");
    assert!(
        !all.contains("query-secret") && !all.contains("header-secret"),
        "{all}"
    );
}
