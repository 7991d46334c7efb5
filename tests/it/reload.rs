//! Configuration reload (SPEC §4): a changed file swaps the registry of a running
//! kubeplex; a bad one keeps the running configuration and says why in `/readyz` (503);
//! unchanged simulated clusters keep running; SIGHUP reloads the real binary.

use crate::common;

use common::KubeplexProcess;
use kubeplex::config::{load_with_env, tree::Env, Source};
use kubeplex::control::{ControlHandle, ReloadFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

fn write(path: &Path, text: &str) {
    // Write then rename, as editors and ConfigMap volumes do: never a half-written file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config_with(clusters: &[&str]) -> String {
    let mut s = String::from(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\nkubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n",
    );
    for c in clusters {
        s.push_str(&format!(
            "        - {{name: {c}, url: 'http://127.0.0.1:1'}}\n"
        ));
    }
    s
}

async fn cluster_keys(client: &reqwest::Client, base: &str) -> Vec<String> {
    let v: serde_json::Value = client
        .get(format!("{base}/api/kubernetes/clusters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `check` until it holds (the reload happens in the background), up to 20s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn start(file: &Path, watch: bool) -> (kubeplex::app::RunningApp, ControlHandle) {
    let sources = vec![Source::File(file.to_path_buf())];
    let mut settings = load_with_env(&sources, &std::env::vars().collect::<Env>()).unwrap();
    settings.server.listen = "127.0.0.1:0".into();
    let app = kubeplex::app::spawn_reloading(settings, Some(ReloadFrom { sources, watch }))
        .await
        .unwrap();
    let handle = app.control.clone();
    (app, handle)
}

#[actix_web::test]
async fn changed_file_swaps_registry_and_bad_file_keeps_it() {
    let dir = TempDir::new().unwrap();
    let f = dir.path().join("kubeplex.yaml");
    write(&f, &config_with(&["a"]));
    let (app, _handle) = start(&f, true).await;
    let client = reqwest::Client::new();
    let base = app.url();
    assert_eq!(cluster_keys(&client, &base).await, ["config:a"]);

    write(&f, &config_with(&["a", "b"]));
    eventually("the new cluster b", || async {
        cluster_keys(&client, &base).await == ["config:a", "config:b"]
    })
    .await;

    // A bad edit: the running registry stays, /readyz says why.
    write(
        &f,
        &config_with(&["a", "b"]).replace(
            "'http://127.0.0.1:1'}\n        - {name: b",
            "'htp:/x'}\n        - {name: b",
        ),
    );
    let readyz = || async {
        let res = client.get(format!("{base}/readyz")).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    };
    eventually("/readyz reporting the failed reload", || async {
        readyz().await.1.contains("not a URL")
    })
    .await;
    let (status, body) = readyz().await;
    assert_eq!(
        status, 503,
        "serving the previous configuration, not the deployed one"
    );
    assert_eq!(
        body,
        format!(
            "not ready: the last configuration reload failed; serving the previous configuration\n{}: kubernetes.clusterLocatorMethods[0].clusters[0].url: not a URL: \"htp:/x\"\n",
            f.display()
        )
    );
    assert_eq!(cluster_keys(&client, &base).await, ["config:a", "config:b"]);

    // Fixed again: the error clears.
    write(&f, &config_with(&["c"]));
    eventually("the fixed configuration", || async {
        cluster_keys(&client, &base).await == ["config:c"]
    })
    .await;
    assert_eq!(readyz().await.1, "ok");
}

#[actix_web::test]
async fn forced_reload_and_simulated_clusters_kept() {
    let dir = TempDir::new().unwrap();
    let f = dir.path().join("sim.yaml");
    let one = "kubernetes:\n  clusterLocatorMethods:\n    - type: simulated\n      clusters:\n        - name: keep\n        - name: drop\n";
    write(&f, one);
    // No file watching: only the explicit reload (what SIGHUP does) reloads.
    let (app, handle) = start(&f, false).await;
    let url_of = |key: &str| app.registry.load().get(key).map(|c| c.spec.url.clone());
    let keep_url = url_of("simulated:keep").unwrap();
    let drop_url = url_of("simulated:drop").unwrap();
    let client = reqwest::Client::new();
    assert!(client.get(drop_url.clone()).send().await.is_ok());

    write(
        &f,
        "kubernetes:\n  clusterLocatorMethods:\n    - type: simulated\n      clusters:\n        - name: keep\n        - name: new\n",
    );
    handle.reload();
    eventually("the reloaded registry", || async {
        url_of("simulated:new").is_some()
    })
    .await;
    assert_eq!(
        url_of("simulated:keep").unwrap(),
        keep_url,
        "an unchanged simulated cluster keeps its server"
    );
    assert!(url_of("simulated:drop").is_none());
    let new_url = url_of("simulated:new").unwrap();
    assert!(client.get(new_url).send().await.is_ok());
    assert!(client.get(keep_url).send().await.is_ok());
    // The removed cluster's server stops.
    eventually("the removed simulated server to stop", || async {
        client.get(drop_url.clone()).send().await.is_err()
    })
    .await;
}

#[cfg(unix)]
#[actix_web::test]
async fn sighup_reloads_the_binary() {
    let secrets = TempDir::new().unwrap();
    let token: PathBuf = secrets.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let kp = KubeplexProcess::spawn(
        &format!(
            "kubeplex:\n  server:\n    listen: 127.0.0.1:0\nkubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - {{name: a, url: 'http://127.0.0.1:1', tokenFile: '{}'}}\n",
            token.display()
        ),
        "info",
        &[],
    );
    let addr = &kp.addr;
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let body = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");

    // The token file lives outside the watched folder: only SIGHUP notices it is gone.
    std::fs::remove_file(&token).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &kp.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    eventually("/readyz reporting the SIGHUP reload", || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status() == 503)
            .unwrap_or(false)
            && client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .contains("tokenFile: cannot read")
    })
    .await;
    assert_eq!(cluster_keys(&client, &base).await, ["config:a"]);
}

/// Each worker keeps its own client per cluster key (and its pool): a swapped registry
/// that changes a cluster's URL must reach the new URL on every worker, and one that keeps
/// the definition (new entries, same spec) must keep working.
#[actix_web::test]
async fn a_swapped_registry_rebuilds_changed_clusters_on_every_worker() {
    use common::{cluster, http, proxy_url, settings, spawn_app, Upstream};
    use kubeplex::cluster::Registry;
    use std::sync::Arc;
    let a = Upstream::ok().await;
    let b = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("c", &a.url)])).await;
    // The registry a reload to `c` at `b` would build.
    let changed = settings(vec![cluster("c", &b.url)]);
    let located = kubeplex::locate::locate_all(&changed).await.unwrap();
    let registry = || {
        Arc::new(Registry::new(
            located.iter().map(|l| l.to_list()).collect(),
            changed.duplicate_names,
        ))
    };
    let c = http();
    // More requests than workers, each on its own connection, so every worker builds one.
    let send = |n: usize| {
        let c = c.clone();
        let url = proxy_url(&app, "/api");
        async move {
            for _ in 0..n {
                let r = c
                    .get(&url)
                    .header("connection", "close")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    send(6).await;
    assert_eq!(a.recorded().len(), 6);
    app.registry.store(registry());
    send(6).await;
    assert_eq!(
        a.recorded().len(),
        6,
        "a changed URL still reached the old one"
    );
    assert_eq!(b.recorded().len(), 6);
    // Same definitions, new registry entries.
    app.registry.store(registry());
    send(6).await;
    assert_eq!(b.recorded().len(), 12);
    assert_eq!(a.recorded().len(), 6);
}

/// A worker's client cache drops a cluster that a reload removed: its pooled connection to
/// that cluster is closed as soon as the worker sees the new registry.
#[actix_web::test]
async fn a_removed_cluster_loses_its_pooled_connections() {
    use common::{cluster, http, settings, spawn_app, Upstream};
    use kubeplex::cluster::LocatorClusters;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A raw upstream: answers one request with keep-alive, then reports when the
    // connection is closed by kubeplex.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raw_url = format!("http://{}", listener.local_addr().unwrap());
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<usize>();
    actix_web::rt::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "kubeplex closed before sending a request");
            buf.extend_from_slice(&chunk[..n]);
        }
        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        // Anything kubeplex sends now would be a second request; it must only close.
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        let _ = closed_tx.send(n);
    });
    let other = Upstream::ok().await;
    let mut s = settings(vec![
        cluster("gone", &raw_url),
        cluster("stays", &other.url),
    ]);
    s.server.workers = Some(1);
    let app = spawn_app(s).await;
    let c = http();
    let base = format!("{}/api/kubernetes/clusters", app.url());
    let r = c.get(format!("{base}/gone/api")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");

    // The registry a reload without `gone` builds; the next request shows it to the worker.
    let cur = app.registry.load_full();
    let stays: Vec<_> = cur
        .lists()
        .iter()
        .map(|l| LocatorClusters {
            locator: l.locator.clone(),
            clusters: l
                .clusters
                .iter()
                .filter(|c| c.name == "stays")
                .cloned()
                .collect(),
        })
        .collect();
    app.registry.store(Arc::new(
        cur.replace_all(stays, kubeplex::config::DuplicateNames::First),
    ));
    let r = c.get(format!("{base}/stays/api")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Well within awc's 15 s idle keep-alive, after which any pool closes it anyway.
    let read = tokio::time::timeout(Duration::from_secs(5), closed_rx)
        .await
        .expect("the removed cluster's pooled connection is closed")
        .unwrap();
    assert_eq!(read, 0, "kubeplex sent more to a removed cluster");
    let r = c.get(format!("{base}/gone/api")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}
