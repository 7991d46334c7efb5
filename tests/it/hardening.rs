//! End-to-end tests of issue 8's security baseline and the bugs a new user hits:
//!
//! - A1: an unauthenticated kubeplex on a non-loopback listener that would lend a cluster's
//!   server-side credential refuses to start (unless `dangerouslyAllowUnauthenticated`,
//!   then it warns); `kubeplex.auth` settings that are not implemented are refused.
//! - A5: a located cluster with `insecure-skip-tls-verify` and a server token is refused at
//!   start unless `dangerouslySkipTLSVerifyWithCredentials`.
//! - A6: a canary secret configured everywhere a secret can be (cluster token, token file,
//!   kubeconfig token, catalog token and `?access_token=`, bad URLs on reload) never
//!   appears in a log line (JSON and human, info and debug), a response, `/readyz`, or the
//!   output of `kubeplex check-config` and `kubeplex clusters`, nor in the `Debug` output of
//!   the configuration and the located clusters.
//! - B3: a catalog-only configuration that found no clusters is not ready.
//! - C6: requests outside every route get a 404 `Status`, a request id and an audit line.
//!
//! Everything runs the real binary (or the app) on port 0 over loopback.

use crate::common;

use common::{http, strip_ansi, KubeplexProcess};
use kubeplex::app::StartError;
use kubeplex::config::{LocatorConfig, LocatorKind, Settings, Source};
use kubeplex::control::safety::SafetyError;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The secret every A6 test configures everywhere and looks for everywhere.
const CANARY: &str = "canary-7f3a9c";

/// What a finished `kubeplex` command printed.
struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` and `RUST_LOG=rust_log` until it exits by itself (killed
/// and failed after 60s: a refused configuration must never start serving).
fn run(args: &[&OsStr], rust_log: &str) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_kubeplex"))
        .args(args)
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubeplex");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("wait for kubeplex"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("kubeplex {args:?} did not exit within 60s");
        }
    };
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes `text` to `path` the way editors and ConfigMap volumes do: write, then rename.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls the async `check` every 20 ms until it holds; panics naming `what` after 30s.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < end {
        if check().await {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// `http://127.0.0.1:<port>` for a process listening on `addr` (`0.0.0.0:<port>` too).
fn loopback_base(addr: &str) -> String {
    let port = addr.rsplit_once(':').expect("host:port").1;
    format!("http://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------------------
// A1: credentials lent to anyone
// ---------------------------------------------------------------------------------------

/// A configuration listening on `listen` with one `config` cluster `a` (with a
/// `serviceAccountToken` when `token`), and `auth` as the `kubeplex.auth` block.
fn a1_config(listen: &str, auth: &str, token: bool) -> String {
    let token = if token {
        ", serviceAccountToken: a1-server-token"
    } else {
        ""
    };
    format!(
        "kubeplex:\n  server:\n    listen: {listen}\n    workers: 1\n{auth}\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
         \x20       - {{name: a, url: 'http://127.0.0.1:1'{token}}}\n"
    )
}

/// The JSON log lines that warn about `dangerouslyAllowUnauthenticated`.
fn unauthenticated_warnings(kp: &KubeplexProcess) -> Vec<serde_json::Value> {
    kp.json_logs("kubeplex::control::safety")
        .into_iter()
        .filter(|v| {
            v["level"] == "WARN"
                && v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("dangerouslyAllowUnauthenticated"))
        })
        .collect()
}

#[test]
fn a1_unauthenticated_non_loopback_listener_with_server_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("kubeplex.yaml");
    std::fs::write(&f, a1_config("0.0.0.0:0", "", true)).unwrap();
    let out = run(
        &[
            OsStr::new("--config"),
            f.as_os_str(),
            OsStr::new("--log-format"),
            OsStr::new("json"),
        ],
        "info",
    );
    assert!(!out.success, "it must refuse to start: {}", out.stderr);
    let expected = SafetyError::Unauthenticated {
        listen: "0.0.0.0:0".into(),
        clusters: "config:a".into(),
    }
    .to_string();
    assert!(
        out.stderr.contains(&expected),
        "stderr lacks {expected:?}:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("config:a"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("kubeplex.auth.dangerouslyAllowUnauthenticated: true"),
        "{}",
        out.stderr
    );
    // Refused before binding: it never said it listens.
    assert!(!out.stderr.contains("kubeplex listening"), "{}", out.stderr);
    assert!(!out.stderr.contains("a1-server-token"), "{}", out.stderr);
    assert!(!out.stdout.contains("a1-server-token"), "{}", out.stdout);
}

#[actix_web::test]
async fn a1_dangerously_allow_unauthenticated_starts_with_a_warning() {
    let kp = KubeplexProcess::spawn(
        &a1_config(
            "0.0.0.0:0",
            "  auth:\n    dangerouslyAllowUnauthenticated: true\n",
            true,
        ),
        "info",
        &[],
    );
    assert!(kp.addr.starts_with("0.0.0.0:"), "{}", kp.addr);
    let warnings = unauthenticated_warnings(&kp);
    assert_eq!(warnings.len(), 1, "{:?}", kp.logs.lock().unwrap());
    assert_eq!(warnings[0]["fields"]["clusters"], "config:a");
    assert_eq!(warnings[0]["fields"]["listen"], "0.0.0.0:0");
    let r = http()
        .get(format!("{}/readyz", loopback_base(&kp.addr)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let all = kp.logs.lock().unwrap().join("\n");
    assert!(!all.contains("a1-server-token"), "{all}");
}

#[actix_web::test]
async fn a1_loopback_listener_with_server_token_starts_without_warning() {
    let kp = KubeplexProcess::spawn(&a1_config("127.0.0.1:0", "", true), "info", &[]);
    assert!(kp.addr.starts_with("127.0.0.1:"), "{}", kp.addr);
    let r = http()
        .get(format!("http://{}/readyz", kp.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        unauthenticated_warnings(&kp).is_empty(),
        "{:?}",
        kp.logs.lock().unwrap()
    );
}

#[actix_web::test]
async fn a1_non_loopback_listener_without_server_credential_starts() {
    let kp = KubeplexProcess::spawn(&a1_config("0.0.0.0:0", "", false), "info", &[]);
    assert!(kp.addr.starts_with("0.0.0.0:"), "{}", kp.addr);
    let r = http()
        .get(format!("{}/readyz", loopback_base(&kp.addr)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        unauthenticated_warnings(&kp).is_empty(),
        "{:?}",
        kp.logs.lock().unwrap()
    );
}

#[test]
fn a1_auth_mode_jwt_without_keys_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("kubeplex.yaml");
    std::fs::write(&f, a1_config("127.0.0.1:0", "  auth: {mode: jwt}\n", false)).unwrap();
    let out = run(&[OsStr::new("--config"), f.as_os_str()], "info");
    assert!(!out.success, "it must refuse to start: {}", out.stderr);
    assert!(
        out.stderr.contains("kubeplex.auth.mode") && out.stderr.contains("jwt needs jwksUrl"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("kubeplex listening"), "{}", out.stderr);
    // check-config says the same.
    let out = run(
        &[OsStr::new("check-config"), OsStr::new("-c"), f.as_os_str()],
        "info",
    );
    assert!(!out.success);
    assert!(
        out.stdout.contains("kubeplex.auth.mode") && out.stdout.contains("jwt needs jwksUrl"),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------------------------------
// A5: skipTLSVerify with a server-side token, from a kubeconfig
// ---------------------------------------------------------------------------------------

fn kubeconfig_settings(kubeconfig: &Path) -> Settings {
    let mut s = Settings {
        locators: vec![LocatorConfig {
            id: "kubeconfig".into(),
            kind: LocatorKind::Kubeconfig {
                paths: vec![kubeconfig.to_path_buf()],
                contexts: None,
            },
        }],
        ..Default::default()
    };
    s.server.listen = "127.0.0.1:0".into();
    s.server.workers = Some(1);
    s
}

const SKIP_VERIFY_KUBECONFIG: &str = "apiVersion: v1\nkind: Config\n\
clusters:\n- name: insecure\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n\
users:\n- name: u\n  user:\n    token: a5-server-token\n\
contexts:\n- name: kc\n  context: {cluster: insecure, user: u}\n\
current-context: kc\n";

#[actix_web::test]
async fn a5_kubeconfig_skip_verify_with_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, SKIP_VERIFY_KUBECONFIG).unwrap();
    match kubeplex::app::build(kubeconfig_settings(&kc)).await {
        Err(StartError::Unsafe(e @ SafetyError::SkipVerifyWithCredentials { .. })) => {
            assert_eq!(
                e,
                SafetyError::SkipVerifyWithCredentials {
                    cluster: "kubeconfig:kc".into()
                }
            );
            let msg = StartError::Unsafe(e).to_string();
            assert!(msg.contains("kubeconfig:kc"), "{msg}");
            assert!(
                msg.contains("kubeplex.dangerouslySkipTLSVerifyWithCredentials"),
                "{msg}"
            );
            assert!(!msg.contains("a5-server-token"), "{msg}");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("skipTLSVerify with a server token must be refused"),
    }
}

#[actix_web::test]
async fn a5_kubeconfig_skip_verify_with_token_allowed_when_dangerously_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, SKIP_VERIFY_KUBECONFIG).unwrap();
    let mut settings = kubeconfig_settings(&kc);
    settings.dangerously_skip_tls_verify_with_credentials = true;
    let app = match kubeplex::app::build(settings).await {
        Ok(app) => app,
        Err(e) => panic!("must start when dangerously allowed: {e}"),
    };
    let reg = app.registry.load();
    let c = reg.get("kubeconfig:kc").expect("the kubeconfig cluster");
    assert!(c.spec.tls.skip_verify);
    assert!(c.spec.credential.is_some());
}

// ---------------------------------------------------------------------------------------
// C6: requests outside every route
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn c6_unrouted_requests_get_a_status_a_request_id_and_an_audit_line() {
    let kp = KubeplexProcess::start("http://127.0.0.1:1", "warn,kubeplex=info");
    let base = format!("http://{}", kp.addr);
    let mut ids = Vec::new();
    for (path, sent_id) in [
        ("/nope", Some("c6-outside")),
        ("/nope", None),
        ("/api/kubernetes/nope", Some("c6-under-base")),
        ("/api/kubernetes/nope", None),
    ] {
        let mut req = http().get(format!("{base}{path}"));
        if let Some(id) = sent_id {
            req = req.header("X-Request-Id", id);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let id = r
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{path}: no X-Request-Id"))
            .to_str()
            .unwrap()
            .to_owned();
        match sent_id {
            Some(sent) => assert_eq!(id, sent, "{path}: the caller's request id"),
            None => assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{path}: generated request id {id:?}"
            ),
        }
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["kind"], "Status", "{path}: {v}");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NotFound");
        assert_eq!(v["code"], 404);
        ids.push((path, id));
    }
    let audited = |id: &str| {
        kp.json_logs("kubeplex::audit")
            .into_iter()
            .filter(|v| v["fields"]["request_id"] == id)
            .collect::<Vec<_>>()
    };
    until("an audit line for every request", || {
        let ok = ids.iter().all(|(_, id)| !audited(id).is_empty());
        async move { ok }
    })
    .await;
    for (path, id) in &ids {
        let lines = audited(id);
        assert_eq!(lines.len(), 1, "{path} {id}: {lines:?}");
        let f = &lines[0]["fields"];
        assert_eq!(f["status"], 404, "{f}");
        assert_eq!(f["path"], *path, "{f}");
        assert_eq!(f["method"], "GET", "{f}");
        assert_eq!(f["cluster"], "-", "{f}");
    }
}

// ---------------------------------------------------------------------------------------
// B3: no clusters found is not ready
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn b3_catalog_only_config_without_clusters_is_not_ready() {
    let kp = KubeplexProcess::spawn(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: catalog\n\
         \x20     url: https://127.0.0.1:1/api/catalog\n",
        "info",
        &[],
    );
    let base = format!("http://{}", kp.addr);
    let r = http().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(body.contains("not ready"), "{body}");
    let r = http().get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "alive, only not ready");
    let v: serde_json::Value = http()
        .get(format!("{base}/api/kubernetes/clusters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["items"], serde_json::json!([]));
    // The catalog really was tried and failed.
    assert!(
        kp.logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("cannot read the catalog")),
        "{:?}",
        kp.logs.lock().unwrap()
    );
}

// ---------------------------------------------------------------------------------------
// A6: the canary secret
// ---------------------------------------------------------------------------------------

/// Files holding the canary: a token file and a kubeconfig whose user has it as token.
struct CanaryFiles {
    dir: tempfile::TempDir,
}

impl CanaryFiles {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), format!("{CANARY}\n")).unwrap();
        std::fs::write(
            dir.path().join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\n\
                 clusters:\n- name: plain\n  cluster:\n    server: http://127.0.0.1:1\n\
                 users:\n- name: u\n  user:\n    token: {CANARY}\n\
                 contexts:\n- name: kc\n  context: {{cluster: plain, user: u}}\n\
                 current-context: kc\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("kubeconfig-insecure"),
            format!(
                "apiVersion: v1\nkind: Config\n\
                 clusters:\n- name: insecure\n  cluster:\n    server: https://127.0.0.1:1\n\
                 \x20   insecure-skip-tls-verify: true\n\
                 users:\n- name: u\n  user:\n    token: {CANARY}\n\
                 contexts:\n- name: kc\n  context: {{cluster: insecure, user: u}}\n\
                 current-context: kc\n"
            ),
        )
        .unwrap();
        CanaryFiles { dir }
    }

    /// [`CanaryFiles::good`] with a kubeconfig whose cluster skips TLS verification and
    /// whose user has the canary as token: valid configuration, refused by the safety check.
    fn unsafe_skip_verify(&self) -> String {
        self.good()
            .replace("/kubeconfig\n", "/kubeconfig-insecure\n")
    }

    /// The configuration with the canary everywhere, every value valid.
    fn good(&self) -> String {
        let d = self.dir.path().display();
        format!(
            "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n\
             kubernetes:\n  clusterLocatorMethods:\n\
             \x20   - type: config\n      clusters:\n\
             \x20       - name: sa\n          url: http://127.0.0.1:1\n          serviceAccountToken: {CANARY}\n\
             \x20       - name: tf\n          url: http://127.0.0.1:1\n          tokenFile: {d}/token\n\
             \x20   - type: kubeconfig\n      path: {d}/kubeconfig\n\
             \x20   - type: catalog\n      url: 'https://127.0.0.1:1/api/catalog?access_token={CANARY}'\n\
             \x20     token: {CANARY}\n      refreshInterval: 1s\n"
        )
    }

    /// The same with bad values that carry the canary: URLs with a query, userinfo, an
    /// unparseable one, and a misspelt token key.
    fn bad(&self) -> String {
        let d = self.dir.path().display();
        format!(
            "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n\
             kubernetes:\n  clusterLocatorMethods:\n\
             \x20   - type: config\n      clusters:\n\
             \x20       - name: sa\n          url: 'htp:/x?access_token={CANARY}'\n          serviceAccountToken: {CANARY}\n\
             \x20       - name: tf\n          url: 'http://user:{CANARY}@127.0.0.1:1/p?access_token={CANARY}'\n          tokenFile: {d}/token\n\
             \x20       - name: typo\n          url: http://127.0.0.1:1\n          serviceAcountToken: {CANARY}\n\
             \x20   - type: kubeconfig\n      path: {d}/kubeconfig\n\
             \x20   - type: catalog\n      url: 'https://[bad/api/catalog?access_token={CANARY}#{CANARY}'\n\
             \x20     token: {CANARY}\n      refreshInterval: 1s\n"
        )
    }
}

/// Panics if `text` (what `what` is) holds the canary.
fn assert_no_canary(what: &str, text: &str) {
    assert!(
        !text.contains(CANARY) && !strip_ansi(text).contains(CANARY),
        "the canary leaked into {what}:\n{text}"
    );
}

/// What a response showed: status, every header value, body.
struct Seen {
    status: u16,
    request_id: String,
    body: String,
}

/// Sends `req` and checks that neither a header value nor the body holds the canary.
async fn send(what: &str, req: reqwest::RequestBuilder) -> Seen {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    for (name, value) in r.headers() {
        assert_no_canary(
            &format!("{what}: header {name}"),
            &String::from_utf8_lossy(value.as_bytes()),
        );
    }
    let request_id = r
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    assert_no_canary(&format!("{what}: body"), &body);
    Seen {
        status,
        request_id,
        body,
    }
}

/// The log lines written so far, without colours.
fn plain_logs(kp: &KubeplexProcess) -> Vec<String> {
    kp.logs
        .lock()
        .unwrap()
        .iter()
        .map(|l| strip_ansi(l))
        .collect()
}

/// Whether an audit line for request `id` with `status` was logged, in either format.
fn audited(kp: &KubeplexProcess, json: bool, id: &str, status: u16) -> bool {
    if json {
        kp.json_logs("kubeplex::audit")
            .iter()
            .any(|v| v["fields"]["request_id"] == id && v["fields"]["status"] == status)
    } else {
        plain_logs(kp).iter().any(|l| {
            l.contains("kubeplex::audit")
                && l.contains(id)
                && l.contains(&format!("status={status}"))
        })
    }
}

/// One run of the binary with the canary everywhere: failing requests through both routes
/// (with server tokens and with the caller's own), `/readyz`, the clusters list, catalog
/// refreshes that fail, a reload that fails on bad URLs holding the canary, and the
/// `check-config` and `clusters` commands on both configurations.
async fn canary_run(json: bool, rust_log: &str) {
    let files = CanaryFiles::new();
    let kp = KubeplexProcess::spawn_with(&files.good(), rust_log, &[], json);
    let base = format!("http://{}", kp.addr);
    let proxy = format!("{base}/api/kubernetes/proxy");
    let by_path = |key: &str| format!("{base}/api/kubernetes/clusters/{key}");

    // Requests that fail: each cluster's server-side credential is applied, then the
    // connection is refused (502).
    let mut failed = Vec::new();
    for (i, key) in ["config:sa", "config:tf", "kubeconfig:kc"]
        .iter()
        .enumerate()
    {
        let id = format!("a6-header-{i}");
        let seen = send(
            &format!("header route {key}"),
            http()
                .get(format!("{proxy}/api/v1/namespaces?watch=false"))
                .header("Backstage-Kubernetes-Cluster", *key)
                .header("X-Request-Id", &id),
        )
        .await;
        assert_eq!(seen.status, 502, "{key}: {}", seen.body);
        assert_eq!(seen.request_id, id);
        assert!(seen.body.contains("\"kind\":\"Status\""), "{}", seen.body);
        failed.push(id);
        let id = format!("a6-path-{i}");
        let seen = send(
            &format!("path route {key}"),
            http()
                .post(format!("{}/api/v1/namespaces", by_path(key)))
                .header("X-Request-Id", &id)
                .body("{}"),
        )
        .await;
        assert_eq!(seen.status, 502, "{key}: {}", seen.body);
        failed.push(id);
    }
    // The caller's own token, through both routes, to a cluster with and without a
    // server-side credential, and to a cluster that does not exist.
    for (i, (url, cluster)) in [
        (format!("{proxy}/api"), Some("sa")),
        (format!("{}/api/v1/pods", by_path("tf")), None),
        (format!("{proxy}/api"), Some("kubeconfig:kc")),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("a6-caller-{i}");
        let mut req = http()
            .get(url)
            .header("Authorization", format!("Bearer {CANARY}"))
            .header("X-Request-Id", &id);
        if let Some(c) = cluster {
            req = req.header("X-Kubernetes-Cluster", c);
        }
        let seen = send("the caller's token", req).await;
        assert_eq!(seen.status, 502, "{}", seen.body);
        failed.push(id);
    }
    let seen = send(
        "the caller's token to an unknown cluster",
        http()
            .get(format!("{}/api", by_path("missing")))
            .header("Authorization", format!("Bearer {CANARY}"))
            .header("X-Request-Id", "a6-missing"),
    )
    .await;
    assert_eq!(seen.status, 404, "{}", seen.body);

    let seen = send("/readyz", http().get(format!("{base}/readyz"))).await;
    assert_eq!((seen.status, seen.body.as_str()), (200, "ok"));
    send("/healthz", http().get(format!("{base}/healthz"))).await;
    let seen = send(
        "the clusters list",
        http().get(format!("{base}/api/kubernetes/clusters")),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    let keys: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["config:sa", "config:tf", "kubeconfig:kc"]);

    // The audit lines of the failures exist, and the catalog was read and refreshed (and
    // failed both times).
    until("the audit lines of the failed requests", || {
        let ok = failed.iter().all(|id| audited(&kp, json, id, 502))
            && audited(&kp, json, "a6-missing", 404);
        async move { ok }
    })
    .await;
    until("a failed catalog refresh", || {
        let ok = plain_logs(&kp)
            .iter()
            .any(|l| l.contains("catalog refresh failed"));
        async move { ok }
    })
    .await;
    assert!(plain_logs(&kp)
        .iter()
        .any(|l| l.contains("cannot read the catalog")));

    // A reload that fails on bad values holding the canary.
    write_atomic(&kp.config, &files.bad());
    let readyz = || async { send("/readyz", http().get(format!("{base}/readyz"))).await };
    until("/readyz reporting the failed reload", || async {
        readyz().await.body.contains("reload failed")
    })
    .await;
    let seen = readyz().await;
    assert_eq!(seen.status, 200, "still serving the previous configuration");
    for expected in [
        "clusters[0].url: not a URL: \"htp:/x\"",
        "clusters[1].url: must not contain credentials",
        "clusters[2].serviceAcountToken",
        "clusterLocatorMethods[2].url: not a URL",
    ] {
        assert!(
            seen.body.contains(expected),
            "{expected:?} in {}",
            seen.body
        );
    }
    until("the reload failure in the log", || {
        let ok = plain_logs(&kp)
            .iter()
            .any(|l| l.contains("configuration reload failed") && l.contains("htp:/x"));
        async move { ok }
    })
    .await;
    // Still serving, still failing upstream.
    let seen = send(
        "after the failed reload",
        http()
            .get(format!("{proxy}/api"))
            .header("Backstage-Kubernetes-Cluster", "config:sa")
            .header("Authorization", format!("Bearer {CANARY}"))
            .header("X-Request-Id", "a6-after-reload"),
    )
    .await;
    assert_eq!(seen.status, 502);
    until("the audit line after the reload", || {
        let ok = audited(&kp, json, "a6-after-reload", 502);
        async move { ok }
    })
    .await;

    // A reload refused by the safety check (skipTLSVerify with the canary as token).
    write_atomic(&kp.config, &files.unsafe_skip_verify());
    until("/readyz reporting the refused reload", || async {
        readyz()
            .await
            .body
            .contains("cluster kubeconfig:kc: skipTLSVerify together with")
    })
    .await;
    until("the refused reload in the log", || {
        let ok = plain_logs(&kp).iter().any(|l| {
            l.contains("configuration reload failed") && l.contains("skipTLSVerify together with")
        });
        async move { ok }
    })
    .await;

    // The commands, on the good and the bad configuration.
    let good = files.dir.path().join("good.yaml");
    let bad = files.dir.path().join("bad.yaml");
    std::fs::write(&good, files.good()).unwrap();
    std::fs::write(&bad, files.bad()).unwrap();
    let format: &[&OsStr] = if json {
        &[OsStr::new("--log-format"), OsStr::new("json")]
    } else {
        &[]
    };
    for (command, file, ok, shows) in [
        (
            "check-config",
            &good,
            true,
            "https://127.0.0.1:1/api/catalog",
        ),
        ("clusters", &good, true, "kubeconfig:kc"),
        ("check-config", &bad, false, "not a URL: \"htp:/x\""),
        ("clusters", &bad, false, "not a URL: \"htp:/x\""),
    ] {
        let mut args = vec![OsStr::new(command), OsStr::new("-c"), file.as_os_str()];
        args.extend_from_slice(format);
        let out = run(&args, rust_log);
        let what = format!("kubeplex {command} -c {}", file.display());
        assert_eq!(out.success, ok, "{what}: {}{}", out.stdout, out.stderr);
        assert_no_canary(&format!("{what}: stdout"), &out.stdout);
        assert_no_canary(&format!("{what}: stderr"), &out.stderr);
        let both = format!("{}{}", out.stdout, out.stderr);
        assert!(both.contains(shows), "{what}: {shows:?} in {both}");
    }

    // Nothing the process logged holds the canary.
    let logs = kp.logs.lock().unwrap().clone();
    for line in &logs {
        assert_no_canary("a log line", line);
    }
}

#[actix_web::test]
async fn a6_canary_never_shows_json_logs_debug() {
    canary_run(true, "debug").await;
}

#[actix_web::test]
async fn a6_canary_never_shows_json_logs_info() {
    canary_run(true, "info").await;
}

/// Trace: every dependency's lines too (the connection and poller internals).
#[actix_web::test]
async fn a6_canary_never_shows_json_logs_trace() {
    canary_run(true, "trace").await;
}

#[actix_web::test]
async fn a6_canary_never_shows_human_logs_debug() {
    canary_run(false, "debug").await;
}

#[actix_web::test]
async fn a6_canary_never_shows_human_logs_info() {
    canary_run(false, "info").await;
}

/// The `Debug` output of the loaded configuration, of its problems and of the located
/// clusters and registry never holds the canary, though they do hold it.
#[actix_web::test]
async fn a6_canary_not_in_debug_output_of_settings_and_clusters() {
    let files = CanaryFiles::new();
    let good = files.dir.path().join("good.yaml");
    let bad = files.dir.path().join("bad.yaml");
    std::fs::write(&good, files.good()).unwrap();
    std::fs::write(&bad, files.bad()).unwrap();
    let env = std::env::vars().collect();

    let settings = kubeplex::config::load_with_env(&[Source::File(good)], &env).unwrap();
    let LocatorKind::Config { clusters } = &settings.locators[0].kind else {
        panic!("the config locator first")
    };
    let token = clusters[0].service_account_token.as_ref().unwrap();
    assert_eq!(token.expose(), CANARY, "the canary is really configured");
    let LocatorKind::Catalog(catalog) = &settings.locators[2].kind else {
        panic!("the catalog locator third")
    };
    assert!(catalog.url.contains(CANARY));
    assert_eq!(catalog.token.as_ref().unwrap().expose(), CANARY);
    assert_no_canary("Debug of the settings", &format!("{settings:?}"));
    assert_no_canary("Debug of the settings", &format!("{settings:#?}"));
    assert_no_canary(
        "the check-config summary",
        &kubeplex::config::summary(&settings),
    );

    let located = kubeplex::locate::locate_all(&settings).await.unwrap();
    let specs: Vec<&kubeplex::cluster::ClusterSpec> =
        located.iter().flat_map(|l| &l.clusters).collect();
    assert_eq!(specs.len(), 3, "sa, tf and kc (the catalog is down)");
    assert!(specs.iter().all(|s| s.credential.is_some()));
    assert_no_canary("Debug of the located clusters", &format!("{located:?}"));
    assert_no_canary("Debug of the cluster specs", &format!("{specs:#?}"));
    let registry = kubeplex::cluster::Registry::new(
        located.iter().map(|l| l.to_list()).collect(),
        settings.duplicate_names,
    );
    assert_no_canary("Debug of the registry", &format!("{registry:?}"));

    let errors = kubeplex::config::load_with_env(&[Source::File(bad)], &env).unwrap_err();
    assert!(errors.0.len() >= 4, "{errors}");
    assert_no_canary("the configuration problems", &errors.to_string());
    assert_no_canary(
        "Debug of the configuration problems",
        &format!("{errors:?}"),
    );
}

/// Configurations refused at start, each holding the canary where it hurts most: the
/// process exits without it in its output (serve and check-config, both log formats).
#[test]
fn a6_canary_not_in_refusals() {
    let files = CanaryFiles::new();
    let good = files.good();
    let cases = [
        (
            "unauthenticated on 0.0.0.0",
            good.replace("listen: 127.0.0.1:0", "listen: 0.0.0.0:0"),
            "refusing to listen on 0.0.0.0:0",
            true,
        ),
        (
            "kubeconfig skipTLSVerify with a token",
            files.unsafe_skip_verify(),
            "cluster kubeconfig:kc: skipTLSVerify together with",
            true,
        ),
        (
            "config skipTLSVerify with a token",
            good.replace(
                "url: http://127.0.0.1:1\n          serviceAccountToken",
                "url: https://127.0.0.1:1\n          skipTLSVerify: true\n          serviceAccountToken",
            ),
            "refused together with serviceAccountToken",
            false,
        ),
        (
            "unterminated quote",
            good.replace(
                &format!("serviceAccountToken: {CANARY}"),
                &format!("serviceAccountToken: \"{CANARY}\n          title: x"),
            ),
            "invalid YAML",
            false,
        ),
        (
            "token of the wrong type",
            good.replace(
                &format!("serviceAccountToken: {CANARY}"),
                &format!("serviceAccountToken: {{{CANARY}: 1}}"),
            )
            .replace(
                &format!("token: {CANARY}"),
                &format!("token: [{CANARY}]"),
            ),
            "serviceAccountToken",
            false,
        ),
    ];
    for (what, yaml, says, at_serve_only) in cases {
        assert!(yaml.contains(CANARY), "{what}");
        let f = files.dir.path().join("refused.yaml");
        std::fs::write(&f, &yaml).unwrap();
        let mut runs = vec![
            vec![OsStr::new("-c"), f.as_os_str()],
            vec![
                OsStr::new("-c"),
                f.as_os_str(),
                OsStr::new("--log-format"),
                OsStr::new("json"),
            ],
        ];
        if !at_serve_only {
            runs.push(vec![
                OsStr::new("check-config"),
                OsStr::new("-c"),
                f.as_os_str(),
            ]);
        }
        for args in runs {
            let out = run(&args, "debug");
            let both = format!("{}{}", out.stdout, out.stderr);
            assert!(!out.success, "{what} {args:?}: must be refused: {both}");
            assert!(both.contains(says), "{what} {args:?}: {says:?} in {both}");
            assert!(!both.contains("kubeplex listening"), "{what}: {both}");
            assert_no_canary(&format!("{what} {args:?}"), &both);
        }
    }
}
