//! Upstream TLS through a running kubeplex (SPEC §3-§4): `config` clusters with `caData`,
//! `caFile`, client certificates as data and as files, `tlsServerName`, `skipTLSVerify`,
//! IPv4 and IPv6 hosts, and a `kubeconfig` locator, all against real rustls upstreams on
//! loopback; every TLS failure is a 502 `Status` naming the cluster key and the cause.

use crate::common;
use crate::common_tls;

use common::KubeplexProcess;
use common_tls::{b64, upstream, Ca, UpstreamOpts};
use kubeplex::config::{ClusterConfig, LocatorConfig, LocatorKind, Settings};
use serde_json::Value;

fn cluster(name: &str, url: String) -> ClusterConfig {
    ClusterConfig {
        name: name.into(),
        url,
        ..Default::default()
    }
}

async fn app(locators: Vec<LocatorConfig>) -> kubeplex::app::RunningApp {
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(1);
    // No background /version probes: the upstreams' request logs are the test's own.
    settings.server.probe_interval = std::time::Duration::ZERO;
    settings.locators = locators;
    kubeplex::app::spawn(settings)
        .await
        .expect("kubeplex starts")
}

fn config(clusters: Vec<ClusterConfig>) -> Vec<LocatorConfig> {
    vec![LocatorConfig {
        id: "config".into(),
        kind: LocatorKind::Config { clusters },
    }]
}

/// GET a namespaces list from `cluster` through kubeplex: (status, body).
async fn get(app: &kubeplex::app::RunningApp, cluster: &str) -> (u16, Value) {
    let mut res = awc::Client::default()
        .get(format!(
            "{}/api/kubernetes/clusters/{cluster}/api/v1/namespaces",
            app.url()
        ))
        .send()
        .await
        .unwrap();
    let body = res.body().await.unwrap();
    (
        res.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn message(v: &Value) -> &str {
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["code"], 502, "{v}");
    v["message"].as_str().unwrap()
}

#[actix_web::test]
async fn ca_data_ca_file_and_ip_hosts() {
    let ca = Ca::new("kubeplex proxy TLS CA");
    let v4 = upstream(&ca.server(&["127.0.0.1"]), UpstreamOpts::default()).await;
    let v6 = upstream(
        &ca.server(&["::1"]),
        UpstreamOpts {
            bind: Some("[::1]:0"),
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
    let mut by_data = cluster("by-data", v4.url("127.0.0.1"));
    by_data.ca_data = Some(b64(&ca.pem));
    let mut by_file = cluster("by-file", v6.url("[::1]"));
    by_file.ca_file = Some(dir.path().join("ca.crt"));
    let app = app(config(vec![by_data, by_file])).await;
    let (status, body) = get(&app, "by-data").await;
    assert_eq!(
        (status, body["path"].as_str()),
        (200, Some("/api/v1/namespaces"))
    );
    let (status, _) = get(&app, "by-file").await;
    assert_eq!(status, 200);
    assert_eq!(v6.requests(), vec!["GET /api/v1/namespaces".to_string()]);
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn each_tls_failure_is_a_502_naming_key_and_cause() {
    let ca = Ca::new("kubeplex proxy failures CA");
    let other = Ca::new("kubeplex proxy failures other CA");
    let client_ca = Ca::new("kubeplex proxy failures client CA");
    let good = upstream(&ca.server(&["127.0.0.1"]), UpstreamOpts::default()).await;
    let expired = upstream(&ca.expired_server(&["127.0.0.1"]), UpstreamOpts::default()).await;
    let mtls = upstream(
        &ca.server(&["127.0.0.1"]),
        UpstreamOpts {
            client_ca: Some(&client_ca.pem),
            ..Default::default()
        },
    )
    .await;
    let with_ca = |name: &str, url: String, pem: &str| {
        let mut c = cluster(name, url);
        c.ca_data = Some(b64(pem));
        c
    };
    let mut wrong_name = with_ca("wrong-name", good.url("127.0.0.1"), &ca.pem);
    wrong_name.tls_server_name = Some("api.elsewhere.example".into());
    let rogue = other.client("mallory");
    let mut refused = with_ca("refused-cert", mtls.url("127.0.0.1"), &ca.pem);
    refused.client_cert_data = Some(b64(&rogue.cert_pem));
    refused.client_key_data = Some(b64(&rogue.key_pem));
    let app = app(config(vec![
        with_ca("unknown-ca", good.url("127.0.0.1"), &other.pem),
        wrong_name,
        with_ca("expired", expired.url("127.0.0.1"), &ca.pem),
        with_ca("no-cert", mtls.url("127.0.0.1"), &ca.pem),
        refused,
    ]))
    .await;
    for (name, cause) in [
        ("unknown-ca", "unknown CA"),
        ("wrong-name", "name mismatch"),
        ("expired", "expired"),
        ("no-cert", "requires a client certificate"),
        ("refused-cert", "refused the client certificate"),
    ] {
        let (status, body) = get(&app, name).await;
        assert_eq!(status, 502, "{name}: {body}");
        let msg = message(&body);
        assert!(msg.contains(&format!("config:{name}")), "{name}: {msg}");
        assert!(msg.contains(cause), "{name}: {msg}");
    }
    assert!(good.requests().is_empty());
    assert!(expired.requests().is_empty());
    assert!(mtls.requests().is_empty());
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn client_certificates_as_data_and_files_tls_server_name_and_skip_verify() {
    let ca = Ca::new("kubeplex proxy mtls CA");
    let client_ca = Ca::new("kubeplex proxy mtls client CA");
    let mtls = upstream(
        &ca.server(&["api.internal.example"]),
        UpstreamOpts {
            client_ca: Some(&client_ca.pem),
            ..Default::default()
        },
    )
    .await;
    let untrusted = upstream(
        &Ca::new("kubeplex proxy nobody knows").expired_server(&["nothing.example"]),
        UpstreamOpts::default(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rsa = client_ca.client_rsa_pkcs1("files-user");
    std::fs::write(dir.path().join("client.crt"), &rsa.cert_pem).unwrap();
    std::fs::write(dir.path().join("client.key"), &rsa.key_pem).unwrap();
    let sec1 = client_ca.client_ec_sec1("data-user");

    let mut as_data = cluster("as-data", mtls.url("127.0.0.1"));
    as_data.ca_data = Some(b64(&ca.pem));
    as_data.tls_server_name = Some("api.internal.example".into());
    as_data.client_cert_data = Some(b64(&sec1.cert_pem));
    as_data.client_key_data = Some(b64(&sec1.key_pem));
    as_data.service_account_token = Some("sa-token".into());
    let mut as_files = cluster("as-files", mtls.url("127.0.0.1"));
    as_files.ca_data = Some(b64(&ca.pem));
    as_files.tls_server_name = Some("api.internal.example".into());
    as_files.client_cert_file = Some(dir.path().join("client.crt"));
    as_files.client_key_file = Some(dir.path().join("client.key"));
    let mut insecure = cluster("insecure", untrusted.url("127.0.0.1"));
    insecure.skip_tls_verify = true;
    let app = app(config(vec![as_data, as_files, insecure])).await;

    let (status, _) = get(&app, "as-data").await;
    assert_eq!(status, 200);
    // The client certificate and the bearer token apply together.
    assert_eq!(
        mtls.last_header("authorization").unwrap(),
        "Bearer sa-token"
    );
    let (status, _) = get(&app, "as-files").await;
    assert_eq!(status, 200);
    assert!(mtls
        .sni()
        .iter()
        .all(|s| s.as_deref() == Some("api.internal.example")));
    let (status, _) = get(&app, "insecure").await;
    assert_eq!(status, 200);
    assert_eq!(untrusted.requests().len(), 1);
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn kubeconfig_locator_through_kubeplex() {
    let ca = Ca::new("kubeplex proxy kubeconfig CA");
    let client_ca = Ca::new("kubeplex proxy kubeconfig client CA");
    let up = upstream(
        &ca.server(&["localhost"]),
        UpstreamOpts {
            client_ca: Some(&client_ca.pem),
            ..Default::default()
        },
    )
    .await;
    let user = client_ca.client("kube-user");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pki")).unwrap();
    std::fs::write(dir.path().join("pki/ca.crt"), &ca.pem).unwrap();
    std::fs::write(dir.path().join("pki/user.crt"), &user.cert_pem).unwrap();
    std::fs::write(dir.path().join("pki/user.key"), &user.key_pem).unwrap();
    let kc = dir.path().join("config");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}/base\n    \
             certificate-authority: pki/ca.crt\nusers:\n- name: u\n  user:\n    \
             client-certificate: pki/user.crt\n    client-key: pki/user.key\n    token: kc-token\n\
             contexts:\n- name: kind-dev\n  context:\n    cluster: c\n    user: u\n\
             current-context: kind-dev\n",
            up.url("localhost")
        ),
    )
    .unwrap();
    let app = app(vec![LocatorConfig {
        id: "kubeconfig".into(),
        kind: LocatorKind::Kubeconfig {
            paths: vec![kc],
            contexts: None,
        },
    }])
    .await;
    let (status, body) = get(&app, "kind-dev").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        up.requests(),
        vec!["GET /base/api/v1/namespaces".to_string()]
    );
    assert_eq!(up.last_header("authorization").unwrap(), "Bearer kc-token");
    let (status, _) = get(&app, "kubeconfig:kind-dev").await;
    assert_eq!(status, 200);
    app.handle.stop(false).await;
}

#[test]
fn skip_tls_verify_logs_one_warning_per_cluster_at_start() {
    // Start-up warnings come before the address is reported, so they are all captured once
    // `spawn` returns.
    let kp = KubeplexProcess::spawn(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
         \x20       - name: lax-a\n          url: https://127.0.0.1:1\n          skipTLSVerify: true\n\
         \x20       - name: strict\n          url: https://127.0.0.1:2\n\
         \x20       - name: lax-b\n          url: https://[::1]:3\n          skipTLSVerify: true\n",
        "info",
        &[],
    );
    let logs = kp.logs.lock().unwrap().clone();
    let warnings: Vec<String> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .take_while(|v| !v["fields"]["addr"].is_string())
        .filter(|v| {
            v["level"] == "WARN"
                && v["fields"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("skipTLSVerify")
        })
        .map(|v| v["fields"]["cluster"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(warnings, ["config:lax-a", "config:lax-b"]);
}
