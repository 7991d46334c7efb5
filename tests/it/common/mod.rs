//! Shared helpers for the integration tests: start kubeplex in-process on port 0
//! ([`spawn_app`]), build settings with `config` clusters ([`settings`]), and a recording
//! upstream ([`Upstream`]) that records every request it gets (method, raw path, query,
//! headers in order, body) and answers what the test asks.
#![allow(dead_code)]

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use kubeplex::app::RunningApp;
use kubeplex::config::{ClusterConfig, LocatorConfig, LocatorKind, Settings};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Starts kubeplex in-process on 127.0.0.1:0. The background `/version` probes are off
/// unless the test set its own `probeInterval` (so upstreams see only the test's requests).
pub async fn spawn_app(mut settings: Settings) -> RunningApp {
    settings.server.listen = "127.0.0.1:0".into();
    if settings.server.probe_interval == kubeplex::config::ServerSettings::default().probe_interval
    {
        settings.server.probe_interval = Duration::ZERO;
    }
    if settings.server.workers.is_none() {
        settings.server.workers = Some(2);
    }
    kubeplex::app::spawn(settings)
        .await
        .expect("kubeplex starts")
}

/// A `config` cluster `name` at `url`.
pub fn cluster(name: &str, url: &str) -> ClusterConfig {
    ClusterConfig {
        name: name.into(),
        url: url.into(),
        ..Default::default()
    }
}

/// Settings with one `config` locator (id `config`) holding `clusters`.
pub fn settings(clusters: Vec<ClusterConfig>) -> Settings {
    settings_with(vec![("config", clusters)])
}

/// Settings with several `config` locators, each `(id, clusters)`.
pub fn settings_with(locators: Vec<(&str, Vec<ClusterConfig>)>) -> Settings {
    Settings {
        locators: locators
            .into_iter()
            .map(|(id, clusters)| LocatorConfig {
                id: id.into(),
                kind: LocatorKind::Config { clusters },
            })
            .collect(),
        ..Default::default()
    }
}

/// One request as the upstream saw it.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub method: String,
    /// Raw path as sent (percent-encoding kept).
    pub path: String,
    pub query: Option<String>,
    /// Headers in order, names lowercase, repeated values kept.
    pub headers: Vec<(String, String)>,
    /// The body (only the first MiB is kept).
    pub body: Vec<u8>,
    /// The full body length.
    pub body_len: u64,
}

impl Recorded {
    /// All values of header `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The single value of header `name`.
    pub fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "header {name} sent {} times", all.len());
        all.first().copied()
    }
}

/// What the upstream answers with.
pub enum Body {
    /// These bytes, with a Content-Length.
    Bytes(Vec<u8>),
    /// `len` zero bytes in 64 KiB chunks; `sized` sends a Content-Length, else chunked.
    Zeros { len: u64, sized: bool },
    /// `count` lines `{"n":i}\n`, one every `interval`; `sent` counts the lines written.
    /// With `ack`, each line after the first also waits until the test acknowledges the
    /// previous one (`ack.notify_one()`), so a test can check that each event arrived
    /// before the next was sent without depending on timing.
    Events {
        count: u64,
        interval: Duration,
        sent: Arc<AtomicU64>,
        ack: Option<Arc<tokio::sync::Notify>>,
    },
    /// An endless stream of small chunks; `dropped` is set when the server drops it
    /// (the connection to kubeplex is gone).
    Endless { dropped: Arc<AtomicBool> },
}

/// An upstream reply.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(body: &str) -> Self {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::Bytes(body.as_bytes().to_vec()),
        }
    }
}

type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A recording upstream HTTP server.
pub struct Upstream {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Upstream {
    /// Starts an upstream answering `{"kind":"Status"...}`-like JSON `ok`.
    pub async fn ok() -> Self {
        Self::start(|_| Reply::json(r#"{"ok":true}"#)).await
    }

    /// Starts an upstream with a custom responder.
    pub async fn start(f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(None, f).await
    }

    /// [`Upstream::start`] serving HTTPS (HTTP/1.1) with `tls`; `url` is `https://...`.
    pub async fn start_tls(
        tls: rustls::ServerConfig,
        f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(Some(tls), f).await
    }

    async fn start_with(
        tls: Option<rustls::ServerConfig>,
        f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let responder: Responder = Arc::new(f);
        let reqs = requests.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(web::Data::new(reqs.clone()))
                .app_data(web::Data::new(responder.clone()))
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals();
        let https = tls.is_some();
        let server = match tls {
            Some(cfg) => server.bind_rustls_0_23("127.0.0.1:0", cfg),
            None => server.bind("127.0.0.1:0"),
        }
        .expect("bind upstream");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Upstream {
            url: format!("{}://{addr}", if https { "https" } else { "http" }),
            requests,
            handle,
        }
    }

    /// Every request recorded so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The only request recorded.
    pub fn only(&self) -> Recorded {
        let r = self.recorded();
        assert_eq!(r.len(), 1, "expected one upstream request, got {r:?}");
        r.into_iter().next().unwrap()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn record(
    req: HttpRequest,
    mut payload: web::Payload,
    reqs: web::Data<Arc<Mutex<Vec<Recorded>>>>,
    responder: web::Data<Responder>,
) -> HttpResponse {
    let mut rec = Recorded {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        ..Default::default()
    };
    // Over HTTP/2 the authority comes as `:authority`, which a server takes as `Host`
    // (RFC 9113 §8.3.1).
    if !rec.headers.iter().any(|(n, _)| n == "host") {
        if let Some(a) = req.uri().authority() {
            rec.headers.push(("host".into(), a.to_string()));
        }
    }
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else { break };
        rec.body_len += chunk.len() as u64;
        if rec.body.len() < 1 << 20 {
            rec.body.extend_from_slice(&chunk);
        }
    }
    let reply = responder(&rec);
    reqs.lock().unwrap().push(rec);
    let mut res =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).expect("status"));
    for (n, v) in &reply.headers {
        res.append_header((n.as_str(), v.as_str()));
    }
    match reply.body {
        Body::Bytes(b) => res.body(b),
        Body::Zeros { len, sized } => {
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            let stream = futures_util::stream::unfold(len, move |left| {
                let chunk = chunk.clone();
                async move {
                    if left == 0 {
                        return None;
                    }
                    let n = left.min(chunk.len() as u64);
                    Some((Ok::<_, std::io::Error>(chunk.slice(..n as usize)), left - n))
                }
            });
            if sized {
                res.body(actix_web::body::SizedStream::new(len, stream))
            } else {
                res.body(actix_web::body::BodyStream::new(stream))
            }
        }
        Body::Events {
            count,
            interval,
            sent,
            ack,
        } => {
            let stream = futures_util::stream::unfold(0u64, move |i| {
                let sent = sent.clone();
                let ack = ack.clone();
                async move {
                    if i == count {
                        return None;
                    }
                    if i > 0 {
                        actix_web::rt::time::sleep(interval).await;
                        if let Some(ack) = &ack {
                            ack.notified().await;
                        }
                    }
                    sent.store(i + 1, Ordering::SeqCst);
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(format!("{{\"n\":{i}}}\n"))),
                        i + 1,
                    ))
                }
            });
            res.body(actix_web::body::BodyStream::new(stream))
        }
        Body::Endless { dropped } => {
            struct Guard(Arc<AtomicBool>);
            impl Drop for Guard {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let guard = Arc::new(Guard(dropped));
            let stream = futures_util::stream::unfold(guard, |g| async move {
                actix_web::rt::time::sleep(Duration::from_millis(10)).await;
                Some((
                    Ok::<_, std::io::Error>(Bytes::from_static(b"{\"tick\":1}\n")),
                    g,
                ))
            });
            res.body(actix_web::body::BodyStream::new(stream))
        }
    }
}

/// Polls `f` until it is true (every 20 ms, at most `limit`); false if it never became so.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// Starts kubeplex in-process with one `config` cluster `c` at `up`.
pub async fn spawn_app_for(up: &Upstream) -> RunningApp {
    spawn_app(settings(vec![cluster("c", &up.url)])).await
}

/// `{app}/api/kubernetes/proxy{path}` (the default base path).
pub fn proxy_url(app: &RunningApp, path: &str) -> String {
    format!("{}/api/kubernetes/proxy{path}", app.url())
}

/// A reqwest client that follows no redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sends raw bytes to `addr` and returns the whole answer as text (connection closed by
/// the request's `Connection: close`).
pub async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The resident set size of a process (`/proc/<pid>/status` VmRSS), in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The `kubeplex` binary running as a child process with a config file of the test's
/// choosing, JSON logs captured.
pub struct KubeplexProcess {
    child: std::process::Child,
    /// The address it listens on.
    pub addr: String,
    /// Every log line it wrote so far (every line written before it reported its address is
    /// here once [`KubeplexProcess::spawn`] returns).
    pub logs: Arc<Mutex<Vec<String>>>,
    /// The configuration file it was started with (rewrite it to reload).
    pub config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl KubeplexProcess {
    /// Starts it with one `config` cluster `up` at `upstream`, two workers and
    /// `RUST_LOG=rust_log`, and waits until it reports its address.
    pub fn start(upstream: &str, rust_log: &str) -> Self {
        Self::spawn(
            &format!(
                "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 2\n\
                 kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
                 \x20       - name: up\n          url: {upstream}\n"
            ),
            rust_log,
            &[],
        )
    }

    /// Starts it with the config file `yaml`, `RUST_LOG=rust_log` and the extra environment
    /// `env`, and waits until it reports its address.
    pub fn spawn(yaml: &str, rust_log: &str, env: &[(&str, &std::ffi::OsStr)]) -> Self {
        Self::spawn_with(yaml, rust_log, env, true)
    }

    /// [`KubeplexProcess::spawn`] with JSON logs (`json`) or the default human format
    /// (the address is then read from the human `kubeplex listening addr=...` line).
    pub fn spawn_with(
        yaml: &str,
        rust_log: &str,
        env: &[(&str, &std::ffi::OsStr)],
        json: bool,
    ) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("kubeplex.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubeplex"));
        cmd.arg("--config").arg(&cfg);
        if json {
            cmd.arg("--log-format").arg("json");
        }
        let mut child = cmd
            .env("RUST_LOG", rust_log)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubeplex");
        let stderr = child.stderr.take().unwrap();
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep draining so the child never blocks on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.is_some() {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.take().unwrap().send(addr);
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("kubeplex reports its address");
        KubeplexProcess {
            child,
            addr,
            logs,
            config: cfg,
            _dir: dir,
        }
    }

    /// The JSON log lines written so far whose `target` is `target`.
    pub fn json_logs(&self, target: &str) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == target)
            .collect()
    }

    /// `http://addr/api/kubernetes/proxy{path}`.
    pub fn proxy_url(&self, path: &str) -> String {
        format!("http://{}/api/kubernetes/proxy{path}", self.addr)
    }

    /// Waits (polling) until the process exits, at most `limit`; its exit status, or
    /// `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident set size now.
    pub fn rss(&self) -> u64 {
        rss_bytes(self.child.id())
    }
}

/// The address of a `kubeplex listening` log line, JSON (`fields.addr`) or human
/// (`... kubeplex listening addr=127.0.0.1:1234`, colours or not).
fn listening_addr(line: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return v["fields"]["addr"].as_str().map(str::to_owned);
    }
    let plain = strip_ansi(line);
    if !plain.contains("kubeplex listening") {
        return None;
    }
    let (_, rest) = plain.split_once(" addr=")?;
    Some(rest.split_whitespace().next()?.to_owned())
}

/// `s` without ANSI escape sequences (`ESC [ ... letter`), as human logs colour them.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for KubeplexProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
