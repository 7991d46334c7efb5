//! The simulated cluster over HTTPS (issue 10 item 5): `kubeplex sim --tls-self-signed` or
//! `--tls-cert/--tls-key` with `--kubeconfig-out`, used as is by the real kubectl 1.32
//! (bearer token included: kubectl sends it to https servers only); clear errors for bad
//! certificate files; and the `simulated` locator's `tls: true`, whose self-signed
//! certificate kubeplex verifies as the cluster's CA.

use crate::common::{self, proxy_url, spawn_app};
use crate::common_tls::Ca;
use crate::kubectl_support::Kubectl;
use kubeplex::config::{load_with_env, tree::Env, Source};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/seed.yaml");
const TOKEN: &str = "sim-tls-canary-token";

/// `kubeplex --log-format json sim --listen 127.0.0.1:0 ARGS` as a child process, its JSON
/// log lines collected.
struct SimProcess {
    child: Child,
    /// The URL it reported (`fields.url` of `simulated cluster listening`).
    url: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl SimProcess {
    /// Starts it and waits until it reports where it listens.
    fn start(args: &[&std::ffi::OsStr]) -> SimProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubeplex"))
            .args(["--log-format", "json", "sim", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubeplex sim");
        let stderr = child.stderr.take().unwrap();
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = logs.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep draining so the child never blocks on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line.clone());
                let url = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v["fields"]["url"].as_str().map(str::to_owned));
                if url.is_some() {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url);
                    }
                }
            }
            if let Some(tx) = tx {
                let _ = tx.send(None);
            }
        });
        // A safety net against a wedged child, not a timing assertion.
        let url = rx.recv_timeout(Duration::from_secs(60)).ok().flatten();
        let Some(url) = url else {
            let written = logs.lock().unwrap().clone();
            panic!("kubeplex sim did not report its URL; it wrote: {written:#?}");
        };
        SimProcess { child, url, logs }
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("not YAML ({e}): {text}"))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn b64_decode(s: &str) -> String {
    use base64::Engine;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

fn names(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[actix_web::test]
async fn self_signed_kubeconfig_serves_kubectl_with_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("sim.kubeconfig");
    let sim = SimProcess::start(&[
        "--tls-self-signed".as_ref(),
        "--kubeconfig-out".as_ref(),
        kc.as_os_str(),
        "--token".as_ref(),
        TOKEN.as_ref(),
        "--seed".as_ref(),
        SEED.as_ref(),
    ]);
    assert!(sim.url.starts_with("https://127.0.0.1:"), "{}", sim.url);
    let written: Vec<Value> = sim
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["kubeconfig"].is_string())
        .collect();
    assert_eq!(written.len(), 1, "{:#?}", sim.logs());
    assert_eq!(written[0]["fields"]["kubeconfig"], kc.display().to_string());
    #[cfg(unix)]
    assert_eq!(mode(&kc), 0o600);

    let k = yaml(&kc);
    assert_eq!(k["kind"], "Config");
    assert_eq!(k["current-context"], "sim");
    let cluster = &k["clusters"][0]["cluster"];
    assert_eq!(cluster["server"], sim.url.trim_end_matches('/'));
    assert!(
        b64_decode(cluster["certificate-authority-data"].as_str().unwrap())
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
    assert_eq!(k["users"][0]["user"]["token"], TOKEN);

    let kubectl = Kubectl::with_kubeconfig(&kc);
    let ns = kubectl.ok(&["get", "ns"]).await;
    let ns_names = names(&ns);
    for want in ["default", "payments", "storefront"] {
        assert!(ns_names.contains(&want), "{ns}");
    }
    let svc = kubectl.ok(&["get", "svc", "-A"]).await;
    for (namespace, name) in [("payments", "checkout"), ("storefront", "web")] {
        assert!(
            svc.lines()
                .any(|l| l.split_whitespace().take(2).eq([namespace, name])),
            "{svc}"
        );
    }

    // Upgraded connections (exec) go over TLS too.
    let exec = kubectl
        .ok(&[
            "-n", "payments", "exec", "toolbox", "--", "echo", "over-tls",
        ])
        .await;
    assert_eq!(exec.trim(), "over-tls");

    // The kubeconfig edited, another token: the server refuses kubectl.
    let edited = |user: Value, name: &str| {
        let mut k = k.clone();
        k["users"][0]["user"] = user;
        let path = dir.path().join(name);
        std::fs::write(&path, serde_yaml::to_string(&k).unwrap()).unwrap();
        Kubectl::with_kubeconfig(&path)
    };
    let wrong = edited(
        serde_json::json!({"token": "not-the-token"}),
        "wrong.kubeconfig",
    );
    // kubectl's words for a 401 (its discovery client reports it as "the server has asked
    // for the client to provide credentials", as against a real API server).
    let err = wrong.fails(&["get", "ns"]).await;
    assert!(
        err.contains("error: You must be logged in to the server"),
        "{err}"
    );
    // Without any credential kubectl does not even ask: for an https server it wants a
    // username and password from the terminal first (README, `kubeplex sim`).
    let anonymous = edited(serde_json::json!({}), "anonymous.kubeconfig");
    let out = anonymous.run(&["get", "ns"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Please enter Username"),
        "{out:?}"
    );

    let logs = sim.logs();
    assert!(logs.iter().all(|l| !l.contains(TOKEN)), "{logs:#?}");
}

#[actix_web::test]
async fn given_certificate_kubeconfig_serves_kubectl() {
    let ca = Ca::new("kubeplex sim_tls CA");
    let issued = ca.server(&["127.0.0.1", "localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    // An existing, world-readable, longer file: replaced, and made private.
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, "x".repeat(20_000)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kc, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let sim = SimProcess::start(&[
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
        "--kubeconfig-out".as_ref(),
        kc.as_os_str(),
        "--token".as_ref(),
        TOKEN.as_ref(),
        "--seed".as_ref(),
        SEED.as_ref(),
    ]);
    assert!(sim.url.starts_with("https://127.0.0.1:"), "{}", sim.url);
    #[cfg(unix)]
    assert_eq!(mode(&kc), 0o600);
    let k = yaml(&kc);
    let cluster = &k["clusters"][0]["cluster"];
    assert_eq!(
        b64_decode(cluster["certificate-authority-data"].as_str().unwrap()),
        issued.cert_pem
    );
    assert_eq!(k["users"][0]["user"]["token"], TOKEN);

    let kubectl = Kubectl::with_kubeconfig(&kc);
    let ns = kubectl.ok(&["get", "ns"]).await;
    assert!(names(&ns).contains(&"payments"), "{ns}");
    let svc = kubectl.ok(&["get", "svc", "-n", "payments"]).await;
    assert!(names(&svc).contains(&"checkout"), "{svc}");

    let key_body = issued.key_pem.lines().nth(1).unwrap().to_owned();
    assert!(sim.logs().iter().all(|l| !l.contains(&key_body)));
}

#[actix_web::test]
async fn anonymous_https_kubeconfig_has_no_user_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let sim = SimProcess::start(&[
        "--tls-self-signed".as_ref(),
        "--kubeconfig-out".as_ref(),
        kc.as_os_str(),
    ]);
    let k = yaml(&kc);
    assert_eq!(
        k["users"][0],
        serde_json::json!({"name": "sim", "user": {}})
    );
    let warned = sim.logs().iter().any(|l| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| {
            v["level"] == "WARN"
                && v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("give the simulated cluster a --token"))
        })
    });
    assert!(warned, "{:#?}", sim.logs());
}

/// Runs `kubeplex sim --listen 127.0.0.1:0 ARGS` to its end.
fn sim_fails(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kubeplex"))
        .args(["sim", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "kubeplex sim {args:?} started");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_certificate_files_are_clear_errors() {
    let ca = Ca::new("kubeplex sim_tls bad files");
    let issued = ca.server(&["127.0.0.1"]);
    let other = ca.server(&["127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cert = write("server.crt", &issued.cert_pem);
    let key = write("server.key", &issued.key_pem);
    let garbage = write("garbage.key", "not a key\n");
    let other_key = write("other.key", &other.key_pem);
    let missing = dir.path().join("missing.crt");
    let kc = dir.path().join("kubeconfig");

    let tls = |c: &Path, k: &Path| -> Vec<std::ffi::OsString> {
        vec![
            "--tls-cert".into(),
            c.into(),
            "--tls-key".into(),
            k.into(),
            "--kubeconfig-out".into(),
            kc.as_os_str().into(),
        ]
    };
    let run = |args: Vec<std::ffi::OsString>| {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        sim_fails(&args)
    };

    let (code, err) = run(tls(&cert, &garbage));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "--tls-key: {}: no usable PKCS#8, PKCS#1 or SEC1 private key",
            garbage.display()
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let (code, err) = run(tls(&missing, &key));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("--tls-cert: cannot read {}: ", missing.display())),
        "{err}"
    );

    // A key file as the certificate: no certificate in it.
    let (code, err) = run(tls(&key, &key));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "--tls-cert: {}: certificate PEM holds no CERTIFICATE block",
            key.display()
        )),
        "{err}"
    );

    let (code, err) = run(tls(&cert, &other_key));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "--tls-cert/--tls-key: certificate {} and key {} do not fit",
            cert.display(),
            other_key.display()
        )),
        "{err}"
    );
    assert!(
        !kc.exists(),
        "no kubeconfig is written when the server cannot start"
    );
    // The key never shows in a message.
    assert!(!err.contains(other.key_pem.lines().nth(1).unwrap()));

    let mut both = tls(&cert, &key);
    both.push("--tls-self-signed".into());
    let (code, err) = run(both);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");

    let (code, err) = run(vec!["--tls-cert".into(), cert.into()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--tls-key <FILE>"), "{err}");
}

fn config_file(dir: &Path, clusters: &str) -> PathBuf {
    let p = dir.join("kubeplex.yaml");
    std::fs::write(
        &p,
        format!(
            "kubernetes:\n  clusterLocatorMethods:\n    - type: simulated\n      clusters:\n{clusters}"
        ),
    )
    .unwrap();
    p
}

#[actix_web::test]
async fn simulated_locator_tls_cluster_is_verified_and_proxied() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        dir.path(),
        "        - name: secure\n          tls: true\n          tokens: [t1]\n        - name: plain\n          tls: false\n",
    );
    let settings = load_with_env(&[Source::File(file)], &Env::new()).unwrap();

    // The located cluster: https, with the served certificate as its CA, verified.
    let located = kubeplex::locate::locate_all(&settings).await.unwrap();
    let secure = &located[0].clusters[0];
    assert_eq!(secure.url.scheme(), "https");
    assert_eq!(secure.url.host_str(), Some("127.0.0.1"));
    assert!(!secure.tls.skip_verify);
    assert_eq!(
        secure.tls.ca_pem.as_deref(),
        located[0].sims[0].ca_pem(),
        "the CA is the served certificate"
    );
    assert!(secure.tls.ca_pem.is_some());
    let plain = &located[0].clusters[1];
    assert_eq!(plain.url.scheme(), "http");
    assert_eq!(plain.tls.ca_pem, None);
    drop(located);

    let app = spawn_app(settings).await;
    let c = common::http();
    let r = c
        .get(proxy_url(&app, "/api/v1/namespaces"))
        .header("X-Kubernetes-Cluster", "secure")
        .header("Authorization", "Bearer t1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["kubeplex-cluster"], "simulated:secure");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["kind"], "NamespaceList");
    assert!(
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["metadata"]["name"] == "default"),
        "{body}"
    );
    // The simulated cluster checks the token kubeplex forwarded.
    let r = c
        .get(proxy_url(&app, "/api/v1/namespaces"))
        .header("X-Kubernetes-Cluster", "secure")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(proxy_url(&app, "/api/v1/namespaces"))
        .header("X-Kubernetes-Cluster", "plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn simulated_locator_tls_must_be_a_boolean() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), "        - name: a\n          tls: \"yes\"\n");
    let got: Vec<String> = load_with_env(&[Source::File(file.clone())], &Env::new())
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [format!(
            "{}: kubernetes.clusterLocatorMethods[0].clusters[0].tls: expected true or false, got a string",
            file.display()
        )]
    );
}

#[actix_web::test]
async fn reload_keeps_an_unchanged_tls_cluster_and_its_ca() {
    use kubeplex::control::ReloadFrom;
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        dir.path(),
        "        - name: keep\n          tls: true\n        - name: flip\n",
    );
    let sources = vec![Source::File(file.clone())];
    let mut settings = load_with_env(&sources, &Env::new()).unwrap();
    settings.server.listen = "127.0.0.1:0".into();
    let app = kubeplex::app::spawn_reloading(
        settings,
        Some(ReloadFrom {
            sources,
            watch: false,
        }),
    )
    .await
    .unwrap();
    let spec = |key: &str| app.registry.load().get(key).map(|c| c.spec.clone());
    let keep = spec("simulated:keep").unwrap();
    let flip = spec("simulated:flip").unwrap();
    assert_eq!(flip.url.scheme(), "http");

    config_file(
        dir.path(),
        "        - name: keep\n          tls: true\n        - name: flip\n          tls: true\n",
    );
    app.control.reload();
    let flipped = |s: &Option<kubeplex::cluster::ClusterSpec>| {
        s.as_ref().is_some_and(|s| s.url.scheme() == "https")
    };
    let limit = Duration::from_secs(20);
    assert!(
        common::eventually(limit, || flipped(&spec("simulated:flip"))).await,
        "the reloaded registry"
    );
    let kept = spec("simulated:keep").unwrap();
    assert_eq!(kept.url, keep.url, "an unchanged cluster keeps its server");
    assert_eq!(kept.tls.ca_pem, keep.tls.ca_pem, "and its certificate");
    let flip = spec("simulated:flip").unwrap();
    assert!(flip.tls.ca_pem.is_some());
    assert_ne!(flip.tls.ca_pem, keep.tls.ca_pem);

    let c = common::http();
    for cluster in ["keep", "flip"] {
        let r = c
            .get(proxy_url(&app, "/api/v1/namespaces/default"))
            .header("X-Kubernetes-Cluster", cluster)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{cluster}");
    }
}
