//! `/readyz` (SPEC §9, issue 15 item 2): each cluster's reachability and latency from the
//! background `/version` probes, in JSON when asked; a cluster going down is reported
//! without failing readiness (and `kubeplex_cluster_up` follows); a failed reload fails
//! readiness with the reason, redacted, until a good one.

use crate::common::{http, Upstream};
use crate::ops_metrics::{scrape, value};
use kubeplex::config::{load_with_env, tree::Env, Source};
use kubeplex::control::ReloadFrom;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn write_config(f: &Path, a: &str, b: &str) {
    let text = format!(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n    probeInterval: 100ms\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
         \x20       - {{name: a, url: '{a}'}}\n        - {{name: b, url: '{b}'}}\n"
    );
    let tmp = f.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, f).unwrap();
}

/// `GET /readyz` with `Accept: application/json`: status and body.
pub async fn readyz_json(base: &str) -> (u16, Value) {
    let res = http()
        .get(format!("{base}/readyz"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_eq!(res.headers()["content-type"], "application/json");
    (status, res.json().await.unwrap())
}

/// Polls the JSON `/readyz` until `check` holds.
pub async fn until_ready(base: &str, what: &str, check: impl Fn(u16, &Value) -> bool) -> Value {
    for _ in 0..400 {
        let (status, v) = readyz_json(base).await;
        if check(status, &v) {
            return v;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn cluster<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .unwrap_or_else(|| panic!("{key} in {v}"))
}

#[actix_web::test]
async fn a_cluster_going_down_and_a_bad_reload() {
    let a = Upstream::ok().await;
    let b = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("kubeplex.yaml");
    write_config(&f, &a.url, &b.url);
    let sources = vec![Source::File(f.clone())];
    let settings = load_with_env(&sources, &std::env::vars().collect::<Env>()).unwrap();
    let app = kubeplex::app::spawn_reloading(
        settings,
        Some(ReloadFrom {
            sources,
            watch: false,
        }),
    )
    .await
    .unwrap();
    let base = app.url();

    let v = until_ready(&base, "both clusters probed", |_, v| {
        v["clusters"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["reachable"] == true))
    })
    .await;
    assert_eq!(v["ready"], true);
    assert_eq!(v["configLoaded"], true);
    assert_eq!(v["listening"], true);
    assert_eq!(v["draining"], false);
    assert_eq!(v["lastReload"], Value::Null);
    let ca = cluster(&v, "config:a");
    assert_eq!(ca["name"], "a");
    assert_eq!(ca["status"], 200);
    assert!(ca["latencyMs"].as_f64().unwrap() >= 0.0);
    assert!(ca["checkedAt"].as_str().unwrap().ends_with('Z'));
    // The probes asked /version, without a credential.
    let probe = a
        .recorded()
        .into_iter()
        .find(|r| r.path == "/version")
        .expect("a probe");
    assert_eq!(probe.method, "GET");
    assert_eq!(probe.one("authorization"), None);

    // b goes down: reported, and kubeplex stays ready.
    drop(b);
    let v = until_ready(&base, "b unreachable", |_, v| {
        cluster(v, "config:b")["reachable"] == false
    })
    .await;
    assert_eq!(v["ready"], true);
    assert_eq!(cluster(&v, "config:a")["reachable"], true);
    let eb = cluster(&v, "config:b")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!eb.is_empty());
    let res = http().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    let (_, s) = scrape(&base).await;
    assert_eq!(
        value(&s, "kubeplex_cluster_up", &[("cluster", "config:a")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "kubeplex_cluster_up", &[("cluster", "config:b")]),
        Some(0.0)
    );

    // A bad reload (a URL with credentials in it): not ready, with the reason, redacted.
    write_config(&f, &a.url, "https://admin:canary-secret-9@b.example");
    app.control.reload();
    let v = until_ready(&base, "the failed reload", |status, _| status == 503).await;
    assert_eq!(v["ready"], false);
    assert!(
        v["reason"].as_str().unwrap().contains("reload failed"),
        "{v}"
    );
    assert_eq!(v["lastReload"]["ok"], false);
    let why = v["lastReload"]["error"].as_str().unwrap();
    assert!(why.contains("must not contain credentials"), "{why}");
    assert!(!v.to_string().contains("canary-secret"), "{v}");
    let res = http().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let text = res.text().await.unwrap();
    assert!(
        text.starts_with("not ready: the last configuration reload failed"),
        "{text}"
    );
    assert!(!text.contains("canary-secret"), "{text}");
    // Still serving the previous configuration.
    assert_eq!(v["clusters"].as_array().unwrap().len(), 2);

    // A good reload: ready again; b is now a's server, and up.
    write_config(&f, &a.url, &a.url);
    app.control.reload();
    let v = until_ready(&base, "the good reload", |status, v| {
        status == 200 && cluster(v, "config:b")["reachable"] == true
    })
    .await;
    assert_eq!(v["ready"], true);
    assert_eq!(v["lastReload"]["ok"], true);
    assert!(v["lastReload"].get("error").is_none(), "{v}");
    app.handle.stop(false).await;
}
