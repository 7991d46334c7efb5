//! The simulated cluster's Service `proxy` subresource reaches only the backends its
//! `backends` allow-list admits (SPEC §8, §11; issue 8 A2): loopback by default, every
//! resolved address checked before any connection, refusals a 403 `Status` that never shows
//! the annotation's userinfo or query; the `backends` config key and the `--backend` flag
//! of `kubeplex sim`.

use kubeplex::config::{load_with_env, LocatorKind, Settings, Source};
use kubeplex::sim::config::{default_backends, SimClusterConfig};
use kubeplex::sim::{self, SimServer};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal HTTP backend on loopback (127.0.0.1 and, when available, ::1 on the same
/// port) that counts the connections it accepts and answers each request `backend ok`.
struct Backend {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Backend {
    async fn start() -> Backend {
        let v4 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = tokio::net::TcpListener::bind(("::1", port)).await.ok();
        let connections = Arc::new(AtomicUsize::new(0));
        for listener in std::iter::once(v4).chain(v6) {
            let count = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut conn, _)) = listener.accept().await {
                    count.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 8192];
                        let mut seen = Vec::new();
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = conn
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nbackend ok",
                            )
                            .await;
                    });
                }
            });
        }
        Backend { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn start(cfg: SimClusterConfig) -> (SimServer, String) {
    let server = sim::spawn("127.0.0.1:0", &cfg).await.expect("sim starts");
    let base = server.url().as_str().trim_end_matches('/').to_string();
    (server, base)
}

fn cluster() -> SimClusterConfig {
    SimClusterConfig::new("backends", None, Vec::<String>::new())
}

fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

/// Creates Service `name` in `default` with the backend annotation `backend`.
async fn service(c: &Client, base: &str, name: &str, backend: &str) {
    let body = json!({"apiVersion":"v1","kind":"Service",
        "metadata":{"name":name,"annotations":{"sim.kubeplex.io/backend":backend}},
        "spec":{"ports":[{"name":"http","port":80}]}});
    let resp = c
        .post(format!("{base}/api/v1/namespaces/default/services"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// GETs `/proxy/hello` of Service `name`: the status and the body text.
async fn proxy(c: &Client, base: &str, name: &str) -> (StatusCode, String) {
    let resp = c
        .get(format!(
            "{base}/api/v1/namespaces/default/services/{name}/proxy/hello"
        ))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Asserts a 403 Forbidden `Status` with exactly `message`.
fn assert_forbidden(st: StatusCode, body: &str, message: &str) {
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["reason"], "Forbidden");
    assert_eq!(v["code"], 403);
    assert_eq!(v["message"], message, "{body}");
}

#[actix_web::test]
async fn loopback_backend_is_allowed_by_default() {
    let backend = Backend::start().await;
    let (_s, base) = start(cluster()).await;
    let c = client();
    service(
        &c,
        &base,
        "web",
        &format!("http://127.0.0.1:{}", backend.port),
    )
    .await;
    let (st, body) = proxy(&c, &base, "web").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body, "backend ok");
    assert_eq!(backend.connections(), 1);
}

#[actix_web::test]
async fn localhost_hostname_is_allowed_by_default() {
    let backend = Backend::start().await;
    let (_s, base) = start(cluster()).await;
    let c = client();
    service(
        &c,
        &base,
        "web",
        &format!("http://localhost:{}/", backend.port),
    )
    .await;
    let (st, body) = proxy(&c, &base, "web").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body, "backend ok");
}

#[actix_web::test]
async fn backend_outside_a_configured_allow_list_is_refused_without_a_connection() {
    let backend = Backend::start().await;
    let mut cfg = cluster();
    cfg.backends = vec!["10.0.0.0/8".parse().unwrap()];
    let (_s, base) = start(cfg).await;
    let c = client();
    let port = backend.port;
    service(&c, &base, "ip", &format!("http://127.0.0.1:{port}")).await;
    let (st, body) = proxy(&c, &base, "ip").await;
    assert_forbidden(
        st,
        &body,
        &format!(
            "service backend 127.0.0.1:{port} is not in this simulated cluster's backends allow-list"
        ),
    );
    // A name is checked by every address it resolves to, and named with the refused one.
    service(&c, &base, "name", &format!("http://localhost:{port}")).await;
    let (st, body) = proxy(&c, &base, "name").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let message = v["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("service backend localhost:{port} (")),
        "{message}"
    );
    assert!(
        message.ends_with(") is not in this simulated cluster's backends allow-list"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(backend.connections(), 0, "the backend must receive nothing");
}

#[actix_web::test]
async fn non_loopback_backend_is_refused_by_default_before_connecting() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    // TEST-NET-1: never routed, so a connection attempt would hang rather than fail fast.
    service(&c, &base, "testnet", "http://192.0.2.1:80").await;
    let started = Instant::now();
    let (st, body) = proxy(&c, &base, "testnet").await;
    assert_forbidden(
        st,
        &body,
        "service backend 192.0.2.1:80 is not in this simulated cluster's backends allow-list",
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused before any connection attempt"
    );
    // Other families and forms: IPv6, IPv4-mapped IPv6, the default port, 0.0.0.0.
    for (name, url, shown) in [
        ("v6", "http://[2001:db8::1]:8080", "[2001:db8::1]:8080"),
        (
            "mapped",
            "http://[::ffff:192.0.2.1]/",
            "[::ffff:192.0.2.1]:80",
        ),
        ("https", "https://192.0.2.1/", "192.0.2.1:443"),
        ("any", "http://0.0.0.0:80", "0.0.0.0:80"),
    ] {
        service(&c, &base, name, url).await;
        let (st, body) = proxy(&c, &base, name).await;
        assert_forbidden(
            st,
            &body,
            &format!(
                "service backend {shown} is not in this simulated cluster's backends allow-list"
            ),
        );
    }
}

#[actix_web::test]
async fn refusals_never_show_userinfo_or_query() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    service(
        &c,
        &base,
        "secret",
        "http://user:canary-password@192.0.2.1:80/p?access_token=canary-token",
    )
    .await;
    let (st, body) = proxy(&c, &base, "secret").await;
    assert_forbidden(
        st,
        &body,
        "service backend 192.0.2.1:80 is not in this simulated cluster's backends allow-list",
    );
    assert!(!body.contains("canary"), "{body}");
    // Not an http(s) URL: a 503 that does not echo the annotation either.
    service(&c, &base, "bad", "ftp://user:canary@127.0.0.1/?canary").await;
    let (st, body) = proxy(&c, &base, "bad").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(!body.contains("canary"), "{body}");
}

#[actix_web::test]
async fn an_ipv4_mapped_address_counts_as_ipv4() {
    let backend = Backend::start().await;
    let (_s, base) = start(cluster()).await;
    let c = client();
    let port = backend.port;
    service(
        &c,
        &base,
        "mapped",
        &format!("http://[::ffff:127.0.0.1]:{port}"),
    )
    .await;
    let (st, body) = proxy(&c, &base, "mapped").await;
    // Admitted (127.0.0.0/8); whether the connection works depends on the host's IPv6.
    assert_ne!(st, StatusCode::FORBIDDEN, "{body}");
}

fn load(text: &str) -> Result<Settings, Vec<String>> {
    let source = Source::Inline {
        name: "sim.yaml".into(),
        text: text.into(),
    };
    load_with_env(&[source], &Default::default())
        .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

fn sim_config(clusters: &str) -> String {
    format!(
        "kubernetes:\n  clusterLocatorMethods:\n    - type: simulated\n      clusters:\n{clusters}"
    )
}

#[test]
fn config_backends_are_read() {
    let s = load(&sim_config(
        "        - name: a\n        - name: b\n          backends: [10.0.0.0/8, 'fd00::/8', 192.0.2.7]\n        - name: c\n          backends: []\n",
    ))
    .unwrap();
    let LocatorKind::Simulated { clusters } = &s.locators[0].kind else {
        panic!("simulated expected")
    };
    assert_eq!(clusters[0].backends, default_backends());
    let shown: Vec<String> = clusters[1]
        .backends
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]);
    assert!(clusters[2].backends.is_empty());
}

#[test]
fn config_bad_backends_are_refused_with_file_and_key() {
    let got = load(&sim_config(
        "        - name: a\n          backends: [10.0.0.0/33, 10.0.0.1/8, localhost, {a: 1}, '::1/129']\n        - name: b\n          backends: 127.0.0.0/8\n",
    ))
    .unwrap_err();
    let c = "sim.yaml: kubernetes.clusterLocatorMethods[0].clusters";
    assert_eq!(
        got,
        [
            format!(
                r#"{c}[0].backends[0]: not a CIDR: "10.0.0.0/33" (expected an address/prefix such as 127.0.0.0/8 or ::1/128)"#
            ),
            format!("{c}[0].backends[1]: 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"),
            format!(
                r#"{c}[0].backends[2]: not a CIDR: "localhost" (expected an address/prefix such as 127.0.0.0/8 or ::1/128)"#
            ),
            format!("{c}[0].backends[3]: expected a string, got a map"),
            format!(
                r#"{c}[0].backends[4]: not a CIDR: "::1/129" (expected an address/prefix such as 127.0.0.0/8 or ::1/128)"#
            ),
            format!("{c}[1].backends: expected a list, got a string"),
        ]
    );
}

#[test]
fn sim_command_refuses_a_bad_backend_flag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubeplex"))
        .args(["sim", "--listen", "127.0.0.1:0", "--backend", "10.0.0.1/8"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "invalid value '10.0.0.1/8' for '--backend <CIDR>': 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"
        ),
        "{stderr}"
    );
}

#[actix_web::test]
async fn sim_command_backend_flag_replaces_the_default() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubeplex"))
        .args(["--log-format", "json", "sim", "--listen", "127.0.0.1:0"])
        .args(["--backend", "10.0.0.0/8", "--backend", "fd00::/8"])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if let Some(url) = v["fields"]["url"].as_str() {
                    return url.trim_end_matches('/').to_string();
                }
            }
        }
        panic!("kubeplex sim exited without printing its URL")
    })
    .await
    .expect("kubeplex sim starts");
    let backend = Backend::start().await;
    let c = client();
    let port = backend.port;
    service(&c, &base, "web", &format!("http://127.0.0.1:{port}")).await;
    let (st, body) = proxy(&c, &base, "web").await;
    assert_forbidden(
        st,
        &body,
        &format!(
            "service backend 127.0.0.1:{port} is not in this simulated cluster's backends allow-list"
        ),
    );
    assert_eq!(backend.connections(), 0);
    child.kill().await.unwrap();
}
