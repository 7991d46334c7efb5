//! Upstream TLS (SPEC §4) against real rustls servers on loopback, through the same awc
//! connector kubeplex uses for clusters: custom CAs, DNS / IPv4 / IPv6 names, tlsServerName,
//! skipTLSVerify (signatures still checked), client certificates (PKCS#8, PKCS#1, SEC1), and
//! the message of each failure. Also listener TLS.

use crate::common_tls;

use common_tls::{upstream, Ca, UpstreamOpts};
use kubeplex::tls::client::client_config;
use kubeplex::tls::describe::describe_send_error;
use kubeplex::tls::TlsSettings;
use kubeplex::upstream::connector::cluster_connector;
use std::time::Duration;

/// GET `url` through the cluster connector; Ok(status, body) or the described error.
async fn get(url: &str, tls: &TlsSettings) -> Result<(u16, String), String> {
    get_within(url, tls, Duration::from_secs(5)).await
}

async fn get_within(
    url: &str,
    tls: &TlsSettings,
    connect_timeout: Duration,
) -> Result<(u16, String), String> {
    let parsed = url::Url::parse(url).unwrap();
    let connector = cluster_connector(&parsed, tls, connect_timeout)?.limit(0);
    let client = awc::Client::builder()
        .connector(connector)
        .disable_timeout()
        .finish();
    let mut res = client
        .get(format!("{url}/api/v1/namespaces"))
        .send()
        .await
        .map_err(|e| describe_send_error(&e))?;
    let body = res.body().await.map_err(|e| e.to_string())?;
    Ok((
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

fn with_ca(ca: &Ca) -> TlsSettings {
    TlsSettings {
        ca_pem: Some(ca.pem.clone().into_bytes()),
        ..Default::default()
    }
}

#[actix_web::test]
async fn dns_name_verified_with_custom_ca_and_sni_sent() {
    let ca = Ca::new("kubeplex test CA dns");
    let up = upstream(&ca.server(&["localhost"]), UpstreamOpts::default()).await;
    let (status, body) = get(&up.url("localhost"), &with_ca(&ca)).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"path":"/api/v1/namespaces"}"#);
    assert_eq!(up.sni(), vec![Some("localhost".to_string())]);
    assert_eq!(up.requests(), vec!["GET /api/v1/namespaces".to_string()]);
}

#[actix_web::test]
async fn ipv4_host_verified_against_ip_san_without_sni() {
    let ca = Ca::new("kubeplex test CA v4");
    let up = upstream(&ca.server(&["127.0.0.1"]), UpstreamOpts::default()).await;
    let (status, _) = get(&up.url("127.0.0.1"), &with_ca(&ca)).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(up.sni(), vec![None]);
}

#[actix_web::test]
async fn ipv6_host_verified_against_ip_san() {
    let ca = Ca::new("kubeplex test CA v6");
    let up = upstream(
        &ca.server(&["::1"]),
        UpstreamOpts {
            bind: Some("[::1]:0"),
            ..Default::default()
        },
    )
    .await;
    let (status, _) = get(&up.url("[::1]"), &with_ca(&ca)).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(up.sni(), vec![None]);
    assert_eq!(
        up.last_header("host").unwrap(),
        format!("[::1]:{}", up.addr.port())
    );
}

#[actix_web::test]
async fn ip_san_for_another_address_is_a_name_mismatch() {
    let ca = Ca::new("kubeplex test CA v4 mismatch");
    let up = upstream(
        &ca.server(&["10.1.2.3", "kubernetes"]),
        UpstreamOpts::default(),
    )
    .await;
    let err = get(&up.url("127.0.0.1"), &with_ca(&ca)).await.unwrap_err();
    assert!(err.contains("name mismatch"), "{err}");
    assert!(up.requests().is_empty());
}

#[actix_web::test]
async fn unknown_ca_is_named() {
    let ca = Ca::new("kubeplex test CA real");
    let other = Ca::new("kubeplex test CA other");
    let up = upstream(&ca.server(&["localhost"]), UpstreamOpts::default()).await;
    let err = get(&up.url("localhost"), &with_ca(&other))
        .await
        .unwrap_err();
    assert!(err.contains("unknown CA"), "{err}");
    // The default roots (webpki-roots) do not know a private CA either.
    let err = get(&up.url("localhost"), &TlsSettings::default())
        .await
        .unwrap_err();
    assert!(err.contains("unknown CA"), "{err}");
    assert!(up.requests().is_empty());
}

#[actix_web::test]
async fn name_mismatch_is_named() {
    let ca = Ca::new("kubeplex test CA name");
    let up = upstream(&ca.server(&["api.other.example"]), UpstreamOpts::default()).await;
    let err = get(&up.url("localhost"), &with_ca(&ca)).await.unwrap_err();
    assert!(err.contains("name mismatch"), "{err}");
    assert!(err.contains("tlsServerName"), "{err}");
}

#[actix_web::test]
async fn expired_certificate_is_named() {
    let ca = Ca::new("kubeplex test CA expired");
    let up = upstream(&ca.expired_server(&["localhost"]), UpstreamOpts::default()).await;
    let err = get(&up.url("localhost"), &with_ca(&ca)).await.unwrap_err();
    assert!(err.contains("expired"), "{err}");
}

#[actix_web::test]
async fn tls_server_name_overrides_the_checked_name_and_sni() {
    let ca = Ca::new("kubeplex test CA sni");
    let up = upstream(
        &ca.server(&["api.internal.example"]),
        UpstreamOpts::default(),
    )
    .await;
    let mut tls = with_ca(&ca);
    tls.server_name = Some("api.internal.example".into());
    // Reached by IPv4 address, verified as api.internal.example.
    let (status, _) = get(&up.url("127.0.0.1"), &tls).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(up.sni(), vec![Some("api.internal.example".to_string())]);
    // The Host header is still the URL's.
    assert_eq!(
        up.last_header("host").unwrap(),
        format!("127.0.0.1:{}", up.addr.port())
    );
    // A wrong tlsServerName fails even though the URL host would not match either.
    tls.server_name = Some("wrong.example".into());
    let err = get(&up.url("127.0.0.1"), &tls).await.unwrap_err();
    assert!(err.contains("name mismatch"), "{err}");
}

#[actix_web::test]
async fn tls_server_name_may_be_an_ip_address() {
    let ca = Ca::new("kubeplex test CA sni ip");
    let up = upstream(&ca.server(&["10.0.0.1"]), UpstreamOpts::default()).await;
    let mut tls = with_ca(&ca);
    tls.server_name = Some("10.0.0.1".into());
    let (status, _) = get(&up.url("localhost"), &tls).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(up.sni(), vec![None]);
}

#[actix_web::test]
async fn skip_verify_accepts_any_certificate() {
    let ca = Ca::new("kubeplex test CA skip");
    let up = upstream(
        &ca.expired_server(&["nothing.example"]),
        UpstreamOpts::default(),
    )
    .await;
    let tls = TlsSettings {
        skip_verify: true,
        ..Default::default()
    };
    let (status, _) = get(&up.url("127.0.0.1"), &tls).await.unwrap();
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn skip_verify_still_checks_handshake_signatures() {
    let ca = Ca::new("kubeplex test CA skip sig");
    let cert = ca.server(&["localhost"]);
    let impostor = ca.server(&["localhost"]);
    // The server presents `cert` but signs with another key.
    let up = upstream(
        &cert,
        UpstreamOpts {
            wrong_signing_key: Some(&impostor.key_pem),
            ..Default::default()
        },
    )
    .await;
    let tls = TlsSettings {
        skip_verify: true,
        ..Default::default()
    };
    let err = get(&up.url("localhost"), &tls).await.unwrap_err();
    assert!(err.contains("TLS"), "{err}");
    assert!(up.requests().is_empty());
}

async fn mtls_ok(key_kind: &str) {
    let ca = Ca::new(&format!("kubeplex test CA mtls {key_kind}"));
    let client_ca = Ca::new(&format!("kubeplex test client CA {key_kind}"));
    let up = upstream(
        &ca.server(&["127.0.0.1"]),
        UpstreamOpts {
            client_ca: Some(&client_ca.pem),
            ..Default::default()
        },
    )
    .await;
    let client = match key_kind {
        "pkcs8" => client_ca.client("alice"),
        "pkcs1" => client_ca.client_rsa_pkcs1("alice"),
        "sec1" => client_ca.client_ec_sec1("alice"),
        _ => unreachable!(),
    };
    assert!(client.key_pem.starts_with(match key_kind {
        "pkcs8" => "-----BEGIN PRIVATE KEY-----",
        "pkcs1" => "-----BEGIN RSA PRIVATE KEY-----",
        _ => "-----BEGIN EC PRIVATE KEY-----",
    }));
    let mut tls = with_ca(&ca);
    tls.client_cert_pem = Some(client.cert_pem.into_bytes());
    tls.client_key_pem = Some(client.key_pem.into_bytes().into());
    let (status, _) = get(&up.url("127.0.0.1"), &tls).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(up.requests().len(), 1);
}

#[actix_web::test]
async fn client_certificate_with_pkcs8_key() {
    mtls_ok("pkcs8").await;
}

#[actix_web::test]
async fn client_certificate_with_pkcs1_rsa_key() {
    mtls_ok("pkcs1").await;
}

#[actix_web::test]
async fn client_certificate_with_sec1_ec_key() {
    mtls_ok("sec1").await;
}

#[actix_web::test]
async fn missing_or_refused_client_certificate_is_named() {
    let ca = Ca::new("kubeplex test CA mtls refuse");
    let client_ca = Ca::new("kubeplex test client CA refuse");
    let rogue_ca = Ca::new("kubeplex test rogue client CA");
    let up = upstream(
        &ca.server(&["127.0.0.1"]),
        UpstreamOpts {
            client_ca: Some(&client_ca.pem),
            ..Default::default()
        },
    )
    .await;
    let err = get(&up.url("127.0.0.1"), &with_ca(&ca)).await.unwrap_err();
    assert!(err.contains("requires a client certificate"), "{err}");
    let rogue = rogue_ca.client("mallory");
    let mut tls = with_ca(&ca);
    tls.client_cert_pem = Some(rogue.cert_pem.into_bytes());
    tls.client_key_pem = Some(rogue.key_pem.into_bytes().into());
    let err = get(&up.url("127.0.0.1"), &tls).await.unwrap_err();
    assert!(err.contains("refused the client certificate"), "{err}");
    assert!(up.requests().is_empty());
}

#[actix_web::test]
async fn connection_refused_and_dns_failure_are_named() {
    // A port that was just free: bind, note, drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = get(
        &format!("https://127.0.0.1:{port}"),
        &TlsSettings::default(),
    )
    .await
    .unwrap_err();
    assert!(err.contains("connection refused"), "{err}");
    let err = get("https://no-such-host.invalid:6443", &TlsSettings::default())
        .await
        .unwrap_err();
    assert!(err.contains("DNS"), "{err}");
}

#[test]
fn bad_tls_material_is_refused_with_a_reason() {
    let e = client_config(&TlsSettings {
        ca_pem: Some(b"not a pem".to_vec()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("CA PEM holds no CERTIFICATE"), "{e}");
    let ca = Ca::new("kubeplex test CA bad");
    let c = ca.client("x");
    let e = client_config(&TlsSettings {
        client_cert_pem: Some(c.cert_pem.clone().into_bytes()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("no client key"), "{e}");
    let e = client_config(&TlsSettings {
        client_cert_pem: Some(c.cert_pem.into_bytes()),
        client_key_pem: Some(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
                .to_vec()
                .into(),
        ),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("key"), "{e}");
    let e = client_config(&TlsSettings {
        server_name: Some("bad name!".into()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("not a valid TLS server name"), "{e}");
}

/// Starts kubeplex (one worker) serving HTTPS with `cert_pem` and `key_pem`, written to
/// files in the returned folder.
async fn spawn_https(
    cert_pem: impl AsRef<[u8]>,
    key_pem: impl AsRef<[u8]>,
) -> (kubeplex::app::RunningApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), key_pem).unwrap();
    let mut settings = kubeplex::config::Settings {
        locators: vec![local_kubectl_proxy()],
        ..Default::default()
    };
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(1);
    settings.server.tls = Some(kubeplex::config::ListenerTls {
        cert_file: dir.path().join("tls.crt"),
        key_file: dir.path().join("tls.key"),
    });
    let app = kubeplex::app::spawn(settings).await.unwrap();
    (app, dir)
}

/// `GET /healthz` over TLS, trusting `ca`, answers 200 `ok`.
async fn assert_healthz_over_tls(app: &kubeplex::app::RunningApp, ca: &Ca) {
    let url = url::Url::parse(&app.url()).unwrap();
    let connector = cluster_connector(&url, &with_ca(ca), Duration::from_secs(5))
        .unwrap()
        .limit(0);
    let client = awc::Client::builder().connector(connector).finish();
    let mut res = client
        .get(format!("{}/healthz", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.body().await.unwrap(), "ok");
}

#[actix_web::test]
async fn listener_tls_serves_https() {
    let ca = Ca::new("kubeplex test CA listener");
    let cert = ca.server(&["127.0.0.1"]);
    // The listener key as SEC1 / PKCS#8 both work; use what rcgen wrote (PKCS#8).
    let (app, _dir) = spawn_https(&cert.cert_pem, &cert.key_pem).await;
    assert!(app.url().starts_with("https://"));
    assert_healthz_over_tls(&app, &ca).await;
    // Plain HTTP to the TLS port does not get an answer in clear text.
    let plain = awc::Client::default()
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn listener_tls_with_bad_files_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.crt"), "garbage").unwrap();
    let mut settings = kubeplex::config::Settings {
        locators: vec![local_kubectl_proxy()],
        ..Default::default()
    };
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.tls = Some(kubeplex::config::ListenerTls {
        cert_file: dir.path().join("missing.crt"),
        key_file: dir.path().join("missing.key"),
    });
    let err = kubeplex::app::build(settings.clone()).await.err().unwrap();
    assert!(
        err.to_string()
            .contains("kubeplex.server.tls.certFile: cannot read"),
        "{}",
        err.to_string()
    );
    assert!(
        err.to_string().contains("missing.crt"),
        "{}",
        err.to_string()
    );
    settings.server.tls = Some(kubeplex::config::ListenerTls {
        cert_file: dir.path().join("bad.crt"),
        key_file: dir.path().join("bad.crt"),
    });
    let err = kubeplex::app::build(settings).await.err().unwrap();
    assert!(
        err.to_string().contains("holds no CERTIFICATE"),
        "{}",
        err.to_string()
    );
}

#[actix_web::test]
async fn a_server_that_never_answers_the_handshake_is_a_timeout() {
    // Accepts TCP connections and keeps them open without a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            match s {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    });
    let err = get_within(
        &format!("https://127.0.0.1:{port}"),
        &TlsSettings::default(),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(err.contains("timed out"), "{err}");
}

#[actix_web::test]
async fn listener_tls_accepts_pkcs1_and_sec1_keys() {
    let ca = Ca::new("kubeplex test CA listener keys");
    for (cert, key) in [
        (
            ca.server_with_key(&["127.0.0.1"], common_tls::RSA_PKCS8),
            common_tls::RSA_PKCS1,
        ),
        (
            ca.server_with_key(&["127.0.0.1"], common_tls::EC_PKCS8),
            common_tls::EC_SEC1,
        ),
    ] {
        let (app, _dir) = spawn_https(&cert.cert_pem, key).await;
        assert_healthz_over_tls(&app, &ca).await;
        app.handle.stop(false).await;
    }
}

/// A locator with one cluster (a server needs one to start).
fn local_kubectl_proxy() -> kubeplex::config::LocatorConfig {
    kubeplex::config::LocatorConfig {
        id: "localKubectlProxy".into(),
        kind: kubeplex::config::LocatorKind::LocalKubectlProxy,
    }
}
