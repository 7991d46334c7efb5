//! The `config`, `localKubectlProxy` and `simulated` locators (SPEC §2, §4): cluster
//! fields become specs with their credential and TLS material read; simulated clusters are
//! real servers on loopback; the registry orders them and gives them keys.

use kubeplex::cluster::Registry;
use kubeplex::cluster::ServerCredential;
use kubeplex::config::{load_with_env, tree::Env, Source};
use kubeplex::locate::locate_all;
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn settings(file: &Path) -> kubeplex::config::Settings {
    load_with_env(&[Source::File(file.to_path_buf())], &Env::new()).unwrap()
}

#[actix_web::test]
async fn config_locator_reads_credentials_and_tls_material() {
    let dir = TempDir::new().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["ca.example".into()]).unwrap();
    let client = rcgen::generate_simple_self_signed(vec!["client".into()]).unwrap();
    let (ca_pem, cert_pem, key_pem) = (
        ca.cert.pem(),
        client.cert.pem(),
        client.signing_key.serialize_pem(),
    );
    write(dir.path(), "conf/pki/ca.pem", &ca_pem);
    write(dir.path(), "conf/pki/client.pem", &cert_pem);
    write(dir.path(), "conf/pki/client.key", &key_pem);
    write(dir.path(), "conf/token", "file-token\n");
    let f = write(
        dir.path(),
        "conf/app-config.yaml",
        &format!(
            "kubeplex:
  dangerouslySkipTLSVerifyWithCredentials: true
kubernetes:
  clusterLocatorMethods:
    - type: config
      clusters:
        - name: data
          url: https://10.0.0.1:6443/sub
          title: Data
          authProvider: serviceAccount
          serviceAccountToken: fixed-token
          caData: {}
          clientCertData: {}
          clientKeyData: {}
          tlsServerName: api.example.com
          dashboardUrl: https://dash
          dashboardApp: standard
        - name: files
          url: https://files.example.com
          tokenFile: token
          caFile: pki/ca.pem
          clientCertFile: pki/client.pem
          clientKeyFile: pki/client.key
          skipTLSVerify: true
        - name: oidc
          url: http://127.0.0.1:1
          authProvider: oidc
          oidcTokenProvider: okta
    - type: localKubectlProxy
",
            b64(&ca_pem),
            b64(&cert_pem),
            b64(&key_pem)
        ),
    );
    let located = locate_all(&settings(&f)).await.unwrap();
    assert_eq!(located.len(), 2);
    let c = &located[0].clusters;
    assert_eq!(located[0].locator, "config");

    assert_eq!(c[0].name, "data");
    assert_eq!(c[0].url.as_str(), "https://10.0.0.1:6443/sub");
    assert_eq!(c[0].title.as_deref(), Some("Data"));
    assert_eq!(c[0].auth_provider.as_deref(), Some("serviceAccount"));
    assert_eq!(c[0].credential, ServerCredential::token("fixed-token"));
    assert_eq!(c[0].tls.ca_pem.as_deref(), Some(ca_pem.as_bytes()));
    assert_eq!(
        c[0].tls.client_cert_pem.as_deref(),
        Some(cert_pem.as_bytes())
    );
    assert_eq!(
        c[0].tls.client_key_pem.as_ref().map(|k| k.expose_secret()),
        Some(key_pem.as_bytes())
    );
    assert_eq!(c[0].tls.server_name.as_deref(), Some("api.example.com"));
    assert!(!c[0].tls.skip_verify);
    assert_eq!(c[0].dashboard_url.as_deref(), Some("https://dash"));
    assert_eq!(c[0].dashboard_app.as_deref(), Some("standard"));

    // Relative paths resolve against the config file's folder.
    assert_eq!(c[1].name, "files");
    assert_eq!(
        c[1].credential,
        ServerCredential::TokenFile(dir.path().join("conf/token"))
    );
    assert_eq!(c[1].tls.ca_pem.as_deref(), Some(ca_pem.as_bytes()));
    assert_eq!(
        c[1].tls.client_cert_pem.as_deref(),
        Some(cert_pem.as_bytes())
    );
    assert_eq!(
        c[1].tls.client_key_pem.as_ref().map(|k| k.expose_secret()),
        Some(key_pem.as_bytes())
    );
    assert!(c[1].tls.skip_verify);

    assert_eq!(c[2].credential, ServerCredential::None);
    assert_eq!(c[2].oidc_token_provider.as_deref(), Some("okta"));
    assert_eq!(c[2].tls, Default::default());

    assert_eq!(located[1].locator, "localKubectlProxy");
    assert_eq!(located[1].clusters.len(), 1);
    assert_eq!(located[1].clusters[0].name, "local");
    assert_eq!(
        located[1].clusters[0].url.as_str(),
        "http://127.0.0.1:8001/"
    );
    assert_eq!(located[1].clusters[0].credential, ServerCredential::None);
}

#[actix_web::test]
async fn simulated_locator_starts_reachable_servers() {
    let s = load_with_env(&[], &Env::new()).unwrap();
    let located = locate_all(&s).await.unwrap();
    let reg = Registry::new(
        located.iter().map(|l| l.to_list()).collect(),
        s.duplicate_names,
    );
    let keys: Vec<_> = reg.clusters().iter().map(|c| c.key.to_string()).collect();
    assert_eq!(keys, ["simulated:dev", "simulated:prod", "staging:prod"]);
    assert_eq!(located[0].sims.len(), 2);
    assert_eq!(located[1].sims.len(), 1);
    let client = reqwest::Client::new();
    let mut urls = Vec::new();
    for c in reg.clusters() {
        assert_eq!(c.spec.url.host_str(), Some("127.0.0.1"));
        urls.push(c.spec.url.clone());
        if c.spec.url.scheme() == "https" {
            // `tls: true` (staging:prod in the default): verified with the certificate the
            // simulator made, never skipped. (tests/it/sim_tls.rs proxies through it.)
            assert_eq!(c.key.to_string(), "staging:prod");
            assert!(c.spec.tls.ca_pem.is_some() && !c.spec.tls.skip_verify);
            let addr = (
                c.spec.url.host_str().unwrap(),
                c.spec.url.port_or_known_default().unwrap(),
            );
            let conn = tokio::net::TcpStream::connect(addr).await;
            assert!(conn.is_ok(), "{}: {conn:?}", c.key);
            continue;
        }
        // A real HTTP server answers at the cluster's URL (any status: the route set is
        // the simulator's business).
        let res = client.get(c.spec.url.join("version").unwrap()).send().await;
        assert!(res.is_ok(), "{}: {res:?}", c.key);
    }
    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), 3, "each simulated cluster has its own server");
}

#[test]
fn relative_paths_work_from_any_directory() {
    let dir = TempDir::new().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["ca".into()]).unwrap();
    write(dir.path(), "etc/kubeplex/ca.pem", &ca.cert.pem());
    let f = write(
        dir.path(),
        "etc/kubeplex/c.yaml",
        "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters: [{name: a, url: 'https://a', caFile: ca.pem}]\n",
    );
    let elsewhere = TempDir::new().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubeplex"))
        .env("RUST_LOG", "warn")
        .arg("check-config")
        .arg("--config")
        .arg(&f)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
