//! The plugin service proxy (SPEC §7, issue 13) against real HTTPS Services on loopback
//! (rcgen certificates; `resolve` maps each Service host to its loopback address): every
//! method, path and query kept, bodies both ways, the header rules both ways, `UserToken`
//! and `None`, a `caCertificate`, a wrong CA, the service CA bundle file (and a missing
//! one: a warning at start, a 502 per request), 404s and path checks, a WebSocket echo, a 200 MB download through the real binary
//! with flat memory and its audit lines, `via: apiserver` through a simulated cluster's
//! Service proxy subresource, the README's ConsolePlugin example loaded from a file, a
//! reload of a ConsolePlugin file, every CRD validation error reported at once, and the
//! plugin route keeping its requests under a base path of `/api`.

use crate::common;
use crate::common_tls::{server_config, Ca, Issued};

use common::*;
use futures_util::{SinkExt, StreamExt};
use kubeplex::app::RunningApp;
use kubeplex::config::{load_with_env, Source};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The Service host the tests' certificates are for.
const HOST: &str = "web.shop.svc.cluster.local";
/// The Service port in the entries (`resolve` maps it to the real one).
const PORT: u16 = 8443;

/// A CA and a Service certificate it issued for `host` (and its short `.svc` name).
fn service_cert(host: &str) -> (Ca, Issued) {
    let ca = Ca::new("service-ca");
    let short = host.trim_end_matches(".cluster.local");
    let cert = ca.server(&[host, short]);
    (ca, cert)
}

/// `s` with every line indented by `n` spaces.
fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    s.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A YAML (JSON) string scalar.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// One proxy entry for `web.shop:8443` (YAML, at column 0).
fn entry(alias: &str, authorization: &str, ca: Option<&str>) -> String {
    let mut s = format!(
        "- alias: {alias}\n  authorization: {authorization}\n  endpoint:\n    type: Service\n    service: {{name: web, namespace: shop, port: {PORT}}}\n"
    );
    if let Some(ca) = ca {
        s.push_str(&format!("  caCertificate: {}\n", q(ca)));
    }
    s
}

/// A whole configuration: one `config` cluster `c` (never reached by direct entries),
/// and `plugin_proxy` (YAML at column 0) as `kubeplex.pluginProxy`, with `resolve`
/// mapping `web.shop.svc.cluster.local:8443` to `addr`.
fn yaml(cluster_url: &str, addr: &str, plugin_proxy: &str) -> String {
    format!(
        "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - name: c\n          url: {cluster_url}\n\
         kubeplex:\n  pluginProxy:\n    resolve:\n      {}: {}\n{}",
        q(&format!("{HOST}:{PORT}")),
        q(addr),
        indent(plugin_proxy, 4)
    )
}

/// `plugins:` with one plugin `shop` holding `entries` (YAML at column 0).
fn plugins(entries: &[String]) -> String {
    format!(
        "plugins:\n  - name: shop\n    proxy:\n{}",
        indent(&entries.concat(), 6)
    )
}

/// Loads `text` and starts kubeplex with it.
async fn start(text: &str) -> RunningApp {
    let settings = load_with_env(
        &[Source::Inline {
            name: "test.yaml".into(),
            text: text.into(),
        }],
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("config refused:\n{e}\n---\n{text}"));
    spawn_app(settings).await
}

/// The address part of an upstream URL (`127.0.0.1:port`).
fn addr_of(url: &str) -> String {
    url.rsplit("//").next().unwrap().to_string()
}

fn url(app: &RunningApp, path: &str) -> String {
    format!("{}/api/proxy/plugin{path}", app.url())
}

/// An HTTPS Service answering `200` with `METHOD path?query body` and a few headers the
/// proxy must remove or keep.
async fn echo_service(cert: &Issued) -> Upstream {
    Upstream::start_tls(server_config(cert), |r| Reply {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/plain".into()),
            ("access-control-allow-origin".into(), "*".into()),
            ("access-control-allow-credentials".into(), "true".into()),
            ("access-control-allow-methods".into(), "GET".into()),
            ("access-control-allow-headers".into(), "x".into()),
            ("access-control-expose-headers".into(), "x-kept".into()),
            ("server".into(), "web/1.0".into()),
            ("x-kept".into(), "yes".into()),
            ("set-cookie".into(), "s=1".into()),
        ],
        body: Body::Bytes(
            format!(
                "{} {}{} {}",
                r.method,
                r.path,
                r.query
                    .as_deref()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default(),
                String::from_utf8_lossy(&r.body)
            )
            .into_bytes(),
        ),
    })
    .await
}

/// kubeplex with one plugin entry (`alias`, `authorization`) for the echo Service, which the
/// entry verifies with the service CA; the cluster is unreachable (`127.0.0.1:9`).
async fn one_entry(alias: &str, authorization: &str) -> (Upstream, RunningApp) {
    let (ca, cert) = service_cert(HOST);
    let svc = echo_service(&cert).await;
    let app = start(&yaml(
        "http://127.0.0.1:9",
        &addr_of(&svc.url),
        &plugins(&[entry(alias, authorization, Some(&ca.pem))]),
    ))
    .await;
    (svc, app)
}

/// With `basePath: /api` the header route (`/api/proxy/...`, served ahead of actix-web's
/// router) and the plugin route (`/api/proxy/plugin/...`) share a prefix: the plugin
/// route keeps its requests, percent-encoded ones included, and the header route takes
/// the rest.
#[actix_web::test]
async fn a_base_path_of_api_leaves_the_plugin_route_its_requests() {
    let (ca, cert) = service_cert(HOST);
    let svc = echo_service(&cert).await;
    let cluster = Upstream::start(|_| Reply::json("{}")).await;
    let mut text = yaml(
        &cluster.url,
        &addr_of(&svc.url),
        &plugins(&[entry("web", "None", Some(&ca.pem))]),
    );
    text.push_str("  server:\n    basePath: /api\n");
    let app = start(&text).await;
    let c = http();
    let get = |path: &str| {
        c.get(format!("{}{path}", app.url()))
            .header("x-kubernetes-cluster", "c")
            .send()
    };
    let r = get("/api/proxy/plugin/shop/web/x").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "GET /x ");
    assert_eq!(svc.recorded().pop().unwrap().path, "/x");
    // Percent-encoded, it is still the plugin route's (which refuses an encoded prefix).
    let r = get("/api/proxy/%70lugin/shop/web/x").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(cluster.recorded().is_empty(), "{:?}", cluster.recorded());
    // Everything else under `/api/proxy` is the header route's.
    for path in ["/api/v1/pods", "/pods/p"] {
        let r = get(&format!("/api/proxy{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["kubeplex-cluster"], "config:c", "{path}");
        assert_eq!(cluster.recorded().pop().unwrap().path, path);
    }
}

#[actix_web::test]
async fn every_method_path_query_and_body_reach_the_service_with_a_ca_certificate() {
    let (svc, app) = one_entry("web", "None").await;
    let c = http();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let body = if m == "GET" || m == "HEAD" {
            String::new()
        } else {
            format!("{{\"m\":\"{m}\"}}")
        };
        let r = c
            .request(
                method,
                url(&app, "/shop/web/api/a%2Fb/caf%C3%A9/?q=1&x=a%20b&x=2"),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{m}");
        let text = r.text().await.unwrap();
        let want = format!("{m} /api/a%2Fb/caf%C3%A9/?q=1&x=a%20b&x=2 {body}");
        if m == "HEAD" {
            assert_eq!(text, "");
        } else {
            assert_eq!(text, want, "{m}");
        }
        let rec = svc.recorded().pop().unwrap();
        assert_eq!(rec.method, m);
        assert_eq!(rec.path, "/api/a%2Fb/caf%C3%A9/");
        assert_eq!(rec.query.as_deref(), Some("q=1&x=a%20b&x=2"));
        assert_eq!(rec.body, body.as_bytes(), "{m}");
        assert_eq!(rec.one("host"), Some(&*format!("{HOST}:{PORT}")));
    }
    // The alias alone goes to `/`; with a slash, too; a trailing slash is kept.
    for (path, sent) in [
        ("/shop/web", "/"),
        ("/shop/web/", "/"),
        ("/shop/web/x/", "/x/"),
    ] {
        let r = c.get(url(&app, path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(svc.recorded().pop().unwrap().path, sent, "{path}");
    }
    // A large upload streams through with its Content-Length.
    let big = vec![b'z'; 3 << 20];
    let r = c
        .put(url(&app, "/shop/web/upload"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = svc.recorded().pop().unwrap();
    assert_eq!(rec.body_len, big.len() as u64);
    assert_eq!(rec.one("content-length"), Some(&*big.len().to_string()));
}

#[actix_web::test]
async fn header_rules_both_ways_and_none_sends_no_authorization() {
    let (svc, app) = one_entry("web", "None").await;
    let r = http()
        .get(url(&app, "/shop/web/h"))
        .header("authorization", "Bearer caller-token")
        .header("cookie", "session=portal")
        .header("origin", "https://portal.example.com")
        .header("x-csrftoken", "csrf")
        .header("backstage-kubernetes-cluster", "c")
        .header("x-kubernetes-cluster", "c")
        .header("backstage-kubernetes-authorization", "Bearer portal")
        .header("backstage-kubernetes-authorization-google", "g")
        .header("impersonate-user", "admin")
        .header("x-forwarded-for", "10.9.9.9")
        .header("connection", "x-hop")
        .header("x-hop", "1")
        .header("te", "trailers")
        .header("x-custom", "kept")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    for gone in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "server",
    ] {
        assert!(h.get(gone).is_none(), "{gone} came back: {h:?}");
    }
    assert_eq!(h["x-kept"], "yes");
    assert_eq!(h["set-cookie"], "s=1");
    assert_eq!(h["content-security-policy"], "sandbox;");
    assert_eq!(h["x-content-security-policy"], "sandbox;");
    assert!(h.get("x-request-id").is_some());
    let rec = svc.only();
    for gone in [
        "authorization",
        "cookie",
        "origin",
        "x-csrftoken",
        "backstage-kubernetes-cluster",
        "x-kubernetes-cluster",
        "backstage-kubernetes-authorization",
        "backstage-kubernetes-authorization-google",
        "impersonate-user",
        "x-hop",
        "te",
    ] {
        assert_eq!(
            rec.all(gone),
            Vec::<&str>::new(),
            "{gone} reached the Service"
        );
    }
    assert_eq!(rec.one("x-custom"), Some("kept"));
    assert_eq!(rec.one("accept"), Some("application/json"));
    assert_eq!(rec.one("x-forwarded-for"), Some("127.0.0.1"));
    // kubeplex's own errors on this route get the sandbox too.
    let r = http().get(url(&app, "/nope/x")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-security-policy"], "sandbox;");
}

#[actix_web::test]
async fn user_token_sends_the_callers_token_and_refuses_without_one() {
    let (svc, app) = one_entry("api", "UserToken").await;
    let c = http();
    let r = c
        .get(url(&app, "/shop/api/me"))
        .header("authorization", "Bearer user-token")
        .header("impersonate-user", "jane")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = svc.recorded().pop().unwrap();
    assert_eq!(rec.one("authorization"), Some("Bearer user-token"));
    assert_eq!(rec.one("impersonate-user"), Some("jane"));
    // Backstage's header (rule 1), a bare token: sent with the Bearer scheme.
    let r = c
        .get(url(&app, "/shop/api/me"))
        .header("backstage-kubernetes-authorization", "bare-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = svc.recorded().pop().unwrap();
    assert_eq!(rec.one("authorization"), Some("Bearer bare-token"));
    assert_eq!(rec.all("backstage-kubernetes-authorization").len(), 0);
    let before = svc.recorded().len();
    // No token, and a Backstage portal token (never a cluster's): 401, nothing sent.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let portal = format!(
        "Bearer {}.{}.sig",
        b64.encode(r#"{"alg":"ES256","typ":"vnd.backstage.user"}"#),
        b64.encode(r#"{"sub":"user:default/jane"}"#)
    );
    for auth in [None, Some(portal.as_str())] {
        let mut rq = c.get(url(&app, "/shop/api/me?secret=query-secret"));
        if let Some(a) = auth {
            rq = rq.header("authorization", a);
        }
        let r = rq.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["reason"], "Unauthorized");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains("plugin shop alias api"), "{msg}");
        assert!(
            !msg.contains("query-secret") && !msg.contains("sig"),
            "{msg}"
        );
    }
    assert_eq!(svc.recorded().len(), before);
}

#[actix_web::test]
async fn a_wrong_ca_fails_with_a_502_naming_plugin_alias_and_cause() {
    let (_ca, cert) = service_cert(HOST);
    let svc = echo_service(&cert).await;
    let other = Ca::new("other-ca");
    let app = start(&yaml(
        "http://127.0.0.1:9",
        &addr_of(&svc.url),
        &plugins(&[entry("web", "UserToken", Some(&other.pem))]),
    ))
    .await;
    let r = http()
        .get(url(&app, "/shop/web/x?token=query-secret"))
        .header("authorization", "Bearer header-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["reason"], "BadGateway");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.starts_with("cannot connect to plugin shop alias web: TLS: server certificate signed by an unknown CA"),
        "{msg}"
    );
    assert!(msg.contains("set caCertificate"), "{msg}");
    assert!(!msg.contains("secret"), "{msg}");
    assert!(svc.recorded().is_empty());
    // Nothing listening: a 502 too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let app = start(&yaml(
        "http://127.0.0.1:9",
        &dead,
        &plugins(&[entry("web", "None", Some(&other.pem))]),
    ))
    .await;
    let r = http().get(url(&app, "/shop/web/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["message"],
        "cannot connect to plugin shop alias web: connection refused"
    );
}

#[actix_web::test]
async fn the_service_ca_bundle_file_verifies_and_a_missing_one_is_a_502() {
    let (ca, cert) = service_cert(HOST);
    let svc = echo_service(&cert).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("service-ca.crt");
    std::fs::write(&bundle, &ca.pem).unwrap();
    let with = |file: &Path| {
        yaml(
            "http://127.0.0.1:9",
            &addr_of(&svc.url),
            &format!(
                "serviceCaFile: {}\n{}",
                q(&file.display().to_string()),
                plugins(&[entry("web", "None", None)])
            ),
        )
    };
    let app = start(&with(&bundle)).await;
    let r = http().get(url(&app, "/shop/web/ok")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(svc.only().path, "/ok");
    // A missing bundle: kubeplex starts, and each request is a 502 naming the file.
    let missing = dir.path().join("missing-ca.crt");
    let app = start(&with(&missing)).await;
    let r = http().get(url(&app, "/shop/web/ok")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = r.json().await.unwrap();
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "plugin shop alias web: the service CA bundle {} cannot be read",
            missing.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("set caCertificate"), "{msg}");
    assert_eq!(svc.recorded().len(), 1);
}

#[actix_web::test]
async fn a_missing_service_ca_bundle_is_a_clear_warning_at_start_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("service-ca.crt");
    let config = yaml(
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        &format!(
            "serviceCaFile: {}\n{}",
            q(&missing.display().to_string()),
            plugins(&[entry("web", "None", None)])
        ),
    )
    .replacen(
        "kubeplex:\n",
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n",
        1,
    );
    // `spawn` returns once the listening line is logged: the warning comes before it.
    let kp = KubeplexProcess::spawn(&config, "warn,kubeplex=info", &[]);
    let warnings: Vec<serde_json::Value> = kp
        .json_logs("kubeplex::plugin_proxy::table")
        .into_iter()
        .filter(|l| l["level"] == "WARN")
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", kp.logs.lock().unwrap());
    let f = &warnings[0]["fields"];
    assert_eq!(f["file"], missing.display().to_string());
    assert_eq!(f["entries"], "shop/web");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("cannot be read"), "{message}");
    let r = http()
        .get(format!("http://{}/api/proxy/plugin/shop/web/x", kp.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
}

#[actix_web::test]
async fn unknown_plugins_and_aliases_are_404_and_paths_are_checked() {
    let (svc, app) = one_entry("web", "None").await;
    let c = http();
    for (path, code, text) in [
        (
            "/other/web/x",
            404,
            r#"no plugin "other" has a proxy here (plugins: shop)"#,
        ),
        (
            "/shop/api/x",
            404,
            r#"plugin "shop" has no proxy alias "api" (aliases: web)"#,
        ),
        (
            "/shop",
            404,
            "name a plugin and an alias: /api/proxy/plugin/{plugin}/{alias}/{path}",
        ),
    ] {
        let r = c.get(url(&app, path)).send().await.unwrap();
        assert_eq!(r.status(), code, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["message"], text, "{path}");
    }
    // Sent as written (an HTTP client would resolve the dots itself).
    for (path, text) in [
        (
            "/shop/web/a/%2e%2e/secret",
            "the proxied path contains a '.' or '..' segment (raw or percent-encoded); refused",
        ),
        (
            "/shop/web/a/../secret",
            "the proxied path contains a '.' or '..' segment (raw or percent-encoded); refused",
        ),
        (
            "/shop/web//evil.example.com/x",
            "the proxied path starts with '//'; refused",
        ),
    ] {
        let answer = raw(
            app.addr,
            &format!(
                "GET /api/proxy/plugin{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains(text), "{path}: {answer}");
    }
    let r = c
        .request(reqwest::Method::TRACE, url(&app, "/shop/web/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(svc.recorded().is_empty());
}

/// A WebSocket echo Service over TLS: echoes text and binary, answers with the last
/// subprotocol offered (and a `Server` and CORS header of its own), records the
/// handshake's headers.
async fn wss_echo(cert: &Issued) -> (String, Arc<std::sync::Mutex<Vec<(String, String)>>>) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(cert)));
    let seen: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
    let all = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let all = all.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                #[allow(clippy::result_large_err)]
                let callback = |req: &Request, mut res: Response| {
                    let mut s = all.lock().unwrap();
                    s.push(("path".into(), req.uri().to_string()));
                    for (n, v) in req.headers() {
                        s.push((n.to_string(), v.to_str().unwrap_or("").to_string()));
                    }
                    if let Some(p) = req
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.split(',').next_back())
                    {
                        res.headers_mut()
                            .insert("sec-websocket-protocol", p.trim().parse().unwrap());
                    }
                    res.headers_mut()
                        .insert("server", "echo/1.0".parse().unwrap());
                    res.headers_mut()
                        .insert("access-control-allow-origin", "*".parse().unwrap());
                    Ok(res)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, callback).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() || m.is_binary() {
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    } else if m.is_close() {
                        break;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[actix_web::test]
async fn a_websocket_is_tunnelled_to_the_service() {
    use tokio_tungstenite::tungstenite::Message;
    let (ca, cert) = service_cert(HOST);
    let (addr, seen) = wss_echo(&cert).await;
    let app = start(&yaml(
        "http://127.0.0.1:9",
        &addr,
        &plugins(&[entry("ws", "UserToken", Some(&ca.pem))]),
    ))
    .await;
    let ws_url = format!("ws://{}/api/proxy/plugin/shop/ws/stream?follow=1", app.addr);
    let (mut ws, res) = crate::support_ws::connect(
        &ws_url,
        &["v1.echo", "v2.echo"],
        &[
            ("authorization", "Bearer user-token"),
            ("origin", "https://portal.example.com"),
            ("cookie", "session=portal"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 101);
    assert_eq!(res.headers()["sec-websocket-protocol"], "v2.echo");
    // The outgoing rules hold for the handshake's answer too.
    assert!(res.headers().get("server").is_none());
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert_eq!(res.headers()["content-security-policy"], "sandbox;");
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("hello".into())
    );
    let blob = vec![7u8; 200_000];
    ws.send(Message::Binary(blob.clone().into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Binary(blob.into())
    );
    ws.close(None).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let get = |n: &str| {
        seen.iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("path"), ["/stream?follow=1"]);
    assert_eq!(get("authorization"), ["Bearer user-token"]);
    assert_eq!(get("origin"), Vec::<&str>::new());
    assert_eq!(get("cookie"), Vec::<&str>::new());
    assert_eq!(get("sec-websocket-protocol"), ["v1.echo, v2.echo"]);
    // Without a token the upgrade is refused before any connection.
    let (status, body) = crate::support_ws::refused(&ws_url, &[], &[]).await;
    assert_eq!(status, 401);
    assert_eq!(body["reason"], "Unauthorized");
}

#[actix_web::test]
async fn a_200mb_download_streams_with_flat_memory_and_one_audit_line_each() {
    const SIZE: u64 = 200 * 1024 * 1024;
    const MAX_GROWTH: u64 = 48 * 1024 * 1024;
    let (ca, cert) = service_cert(HOST);
    let svc = Upstream::start_tls(server_config(&cert), |r| Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        body: Body::Zeros {
            len: if r.path == "/warm" { 1 << 20 } else { SIZE },
            sized: r.path != "/chunked",
        },
    })
    .await;
    let config = yaml(
        "http://127.0.0.1:9",
        &addr_of(&svc.url),
        &plugins(&[entry("web", "UserToken", Some(&ca.pem))]),
    )
    .replacen(
        "kubeplex:\n",
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 2\n",
        1,
    );
    let kp = KubeplexProcess::spawn(&config, "warn,kubeplex=info", &[]);
    let c = http();
    let get = |path: &str| {
        c.get(format!(
            "http://{}/api/proxy/plugin/shop/web{path}",
            kp.addr
        ))
        .header("authorization", "Bearer header-secret")
        .send()
    };
    let r = get("/warm").await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 1 << 20);
    let base = kp.rss();
    for path in ["/sized", "/chunked"] {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = kp.pid();
        let flag = stop.clone();
        let peak = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::SeqCst) {
                peak = peak.max(rss_bytes(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(rss_bytes(pid))
        });
        let r = get(&format!("{path}?token=query-secret")).await.unwrap();
        assert_eq!(r.status(), 200);
        if path == "/sized" {
            assert_eq!(r.headers()["content-length"], SIZE.to_string().as_str());
        }
        let mut got = 0u64;
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            got += chunk.unwrap().len() as u64;
        }
        stop.store(true, Ordering::SeqCst);
        let peak = peak.join().unwrap();
        eprintln!("plugin proxy {path}: kubeplex RSS {base} -> peak {peak}");
        assert_eq!(got, SIZE, "{path}");
        assert!(
            peak.saturating_sub(base) < MAX_GROWTH,
            "{path}: RSS grew from {base} to {peak} during a 200 MB download"
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || kp
            .json_logs("kubeplex::audit")
            .len()
            == 3)
        .await,
        "{:?}",
        kp.json_logs("kubeplex::audit")
    );
    let lines = kp.json_logs("kubeplex::audit");
    let f = &lines[2]["fields"];
    assert_eq!(f["plugin"], "shop");
    assert_eq!(f["alias"], "web");
    assert_eq!(f["method"], "GET");
    assert_eq!(f["path"], "/api/proxy/plugin/shop/web/chunked");
    assert_eq!(f["status"], 200);
    assert_eq!(f["bytes"], SIZE);
    assert_eq!(f["outcome"], "complete");
    assert!(f["duration_ms"].as_f64().unwrap() > 0.0);
    let all = kp.logs.lock().unwrap().join("\n");
    assert!(
        !all.contains("query-secret") && !all.contains("header-secret"),
        "{all}"
    );
}

/// An HS256 portal token for `sub`, valid for an hour.
fn portal_token(secret: &str, sub: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let head = b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64.encode(format!(r#"{{"sub":"{sub}","exp":{exp}}}"#));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let sig = ring::hmac::sign(&key, format!("{head}.{claims}").as_bytes());
    format!("{head}.{claims}.{}", b64.encode(sig.as_ref()))
}

#[actix_web::test]
async fn with_portal_tokens_the_policy_decides_and_the_token_is_never_forwarded() {
    let (ca, cert) = service_cert(HOST);
    let svc = echo_service(&cert).await;
    let secret = "a-test-secret-of-thirty-two-bytes!";
    let text = yaml(
        "http://127.0.0.1:9",
        &addr_of(&svc.url),
        &plugins(&[
            entry("web", "None", Some(&ca.pem)),
            entry("api", "UserToken", Some(&ca.pem)),
        ]),
    )
    .replacen(
        "kubeplex:\n",
        &format!(
            "kubeplex:\n  auth:\n    mode: jwt\n    secrets: [{}]\n    policy:\n      - {{subjects: [user:default/jane], namespaces: [shop], verbs: [proxy], effect: allow}}\n",
            q(secret)
        ),
        1,
    );
    let app = start(&text).await;
    let c = http();
    let jane = format!("Bearer {}", portal_token(secret, "user:default/jane"));
    let bob = format!("Bearer {}", portal_token(secret, "user:default/bob"));
    // No portal token: 401 before anything else.
    let r = c.get(url(&app, "/shop/web/x")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Jane may proxy in `shop`; her portal token does not reach the Service.
    let r = c
        .get(url(&app, "/shop/web/x"))
        .header("authorization", &jane)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(svc.recorded().pop().unwrap().all("authorization").len(), 0);
    // `UserToken`: the portal token is not a Kubernetes token; Backstage's header is.
    let r = c
        .get(url(&app, "/shop/api/x"))
        .header("authorization", &jane)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(url(&app, "/shop/api/x"))
        .header("authorization", &jane)
        .header("backstage-kubernetes-authorization", "Bearer k8s-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        svc.recorded().pop().unwrap().one("authorization"),
        Some("Bearer k8s-token")
    );
    // Bob may not.
    let before = svc.recorded().len();
    let r = c
        .get(url(&app, "/shop/web/x"))
        .header("authorization", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["message"],
        "user:default/bob may not proxy services in namespace shop in cluster config:c"
    );
    assert_eq!(svc.recorded().len(), before);
}

/// A seed for a simulated cluster: the Service `shop/web` (port 8443) whose Service proxy
/// reaches `backend`.
fn sim_seed(backend: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: shop}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    sim.kubeplex.io/backend: {backend}\n\
         spec:\n  ports: [{{name: https, port: {PORT}}}]\n"
    )
}

#[actix_web::test]
async fn via_apiserver_goes_through_the_clusters_service_proxy() {
    use kubeplex::sim::config::{SeedSource, SimClusterConfig};
    let backend = Upstream::start(|r| {
        Reply::json(&format!(
            r#"{{"path":{},"query":{}}}"#,
            serde_json::to_string(&r.path).unwrap(),
            serde_json::to_string(&r.query).unwrap()
        ))
    })
    .await;
    // The API server accepts only the server-side token.
    let sim = kubeplex::sim::spawn(
        "127.0.0.1:0",
        &SimClusterConfig::new(
            "remote",
            Some(SeedSource::Text {
                name: "seed".into(),
                text: sim_seed(&backend.url),
            }),
            ["server-token"],
        ),
    )
    .await
    .unwrap();
    let via = |alias: &str, auth: &str| {
        format!(
            "- alias: {alias}\n  authorization: {auth}\n  endpoint:\n    type: Service\n    service: {{name: web, namespace: shop, port: {PORT}}}\n  cluster: remote\n  via: apiserver\n"
        )
    };
    let text = format!(
        "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - name: remote\n          url: {}\n          serviceAccountToken: server-token\n        - name: other\n          url: http://127.0.0.1:9\n\
         kubeplex:\n  pluginProxy:\n{}",
        sim.url(),
        indent(&plugins(&[via("svc", "None"), via("mine", "UserToken")]), 4)
    );
    let app = start(&text).await;
    let c = http();
    // `None`: the cluster's own credential, whatever the caller sent.
    let r = c
        .post(url(&app, "/shop/svc/api/items/?limit=2"))
        .header("authorization", "Bearer caller-token")
        .body("{\"a\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["kubeplex-cluster"], "config:remote");
    assert_eq!(r.headers()["content-security-policy"], "sandbox;");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/api/items/");
    assert_eq!(v["query"], "limit=2");
    let rec = backend.only();
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.body, b"{\"a\":1}");
    // The alias alone: the Service's `/`.
    let r = c.get(url(&app, "/shop/svc")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["path"], "/");
    // `UserToken`: the caller's token goes to the API server (which refuses this one).
    let r = c
        .get(url(&app, "/shop/mine/x"))
        .header("authorization", "Bearer caller-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["kind"], "Status");
    let r = c
        .get(url(&app, "/shop/mine/x"))
        .header("authorization", "Bearer server-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(url(&app, "/shop/mine/x")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("authorization: UserToken"));
    assert_eq!(backend.recorded().len(), 3);
}

/// The first ```yaml block after the README's `console-plugin-example` marker.
fn readme_example() -> String {
    let readme = include_str!("../../README.md");
    let (_, rest) = readme
        .split_once("<!-- console-plugin-example")
        .expect("the README has the ConsolePlugin example");
    let (_, rest) = rest.split_once("```yaml\n").unwrap();
    let (block, _) = rest.split_once("```").unwrap();
    block.to_string()
}

#[actix_web::test]
async fn the_readmes_console_plugin_example_works_from_a_file() {
    let host = "search-search-api.open-cluster-management.svc.cluster.local";
    let (ca, cert) = service_cert(host);
    let svc = echo_service(&cert).await;
    let dir = tempfile::tempdir().unwrap();
    let example = readme_example();
    assert!(example.contains("kind: ConsolePlugin"), "{example}");
    let plugin_file = dir.path().join("acm-plugin.yaml");
    std::fs::write(&plugin_file, &example).unwrap();
    let bundle = dir.path().join("service-ca.crt");
    std::fs::write(&bundle, &ca.pem).unwrap();
    let app = start(&format!(
        "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - name: c\n          url: http://127.0.0.1:9\n\
         kubeplex:\n  pluginProxy:\n    consolePluginFiles: [{}]\n    serviceCaFile: {}\n    resolve:\n      {}: {}\n",
        q(&plugin_file.display().to_string()),
        q(&bundle.display().to_string()),
        q(&format!("{host}:4010")),
        q(&addr_of(&svc.url)),
    ))
    .await;
    let r = http()
        .get(url(&app, "/acm/search/pods?namespace=openshift-apiserver"))
        .header("authorization", "Bearer sha256~user-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "GET /pods?namespace=openshift-apiserver "
    );
    let rec = svc.only();
    assert_eq!(rec.one("authorization"), Some("Bearer sha256~user-token"));
    assert_eq!(rec.one("host"), Some(&*format!("{host}:4010")));
}

#[actix_web::test]
async fn a_changed_console_plugin_file_is_reloaded() {
    let (ca, cert) = service_cert(HOST);
    let svc = echo_service(&cert).await;
    let dir = tempfile::tempdir().unwrap();
    let doc = |alias: &str| {
        format!(
            "apiVersion: console.openshift.io/v1\nkind: ConsolePlugin\nmetadata:\n  name: shop\nspec:\n  proxy:\n{}",
            indent(&entry(alias, "None", Some(&ca.pem)), 4)
        )
    };
    let plugin_file = dir.path().join("plugins.yaml");
    std::fs::write(&plugin_file, doc("one")).unwrap();
    let config = dir.path().join("kubeplex.yaml");
    std::fs::write(
        &config,
        yaml(
            "http://127.0.0.1:9",
            &addr_of(&svc.url),
            "consolePluginFiles: [plugins.yaml]\n",
        ),
    )
    .unwrap();
    let mut settings = kubeplex::config::load(&[Source::File(config.clone())]).unwrap();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(1);
    let app = kubeplex::app::spawn_reloading(
        settings,
        Some(kubeplex::control::ReloadFrom {
            sources: vec![Source::File(config)],
            watch: true,
        }),
    )
    .await
    .unwrap();
    let c = http();
    let status = |alias: &'static str| {
        let c = c.clone();
        let u = url(&app, &format!("/shop/{alias}/x"));
        async move { c.get(u).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("one").await, 200);
    assert_eq!(status("two").await, 404);
    // Replaced as editors and ConfigMap volumes do: a new file renamed over the old one.
    let tmp = dir.path().join("plugins.yaml.new");
    std::fs::write(&tmp, doc("two")).unwrap();
    std::fs::rename(&tmp, &plugin_file).unwrap();
    let mut reloaded = false;
    for _ in 0..250 {
        if status("two").await == 200 {
            reloaded = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(
        reloaded,
        "the new alias was not served after the file changed"
    );
    assert_eq!(status("one").await, 404);
    // A broken file keeps the running table and says why in /readyz.
    std::fs::write(&plugin_file, "apiVersion: console.openshift.io/v1\nkind: ConsolePlugin\nmetadata: {name: shop}\nspec:\n  proxy:\n    - alias: 'bad alias'\n").unwrap();
    app.control.reload();
    let mut reported = String::new();
    for _ in 0..250 {
        let r = c.get(format!("{}/readyz", app.url())).send().await.unwrap();
        reported = r.text().await.unwrap();
        if reported.contains("bad alias") {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(reported.contains("spec.proxy[0].alias"), "{reported}");
    assert_eq!(status("two").await, 200);
}

/// Loads `files` (name, text) from a temporary folder, the first being the configuration,
/// and returns the problems as printed, with the folder's path shown as `DIR`.
fn refused(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let errs = kubeplex::config::load_with_env(
        &[Source::File(dir.path().join(files[0].0))],
        &Default::default(),
    )
    .expect_err("refused");
    let d = dir.path().display().to_string();
    errs.0
        .iter()
        .map(|p| p.to_string().replace(&d, "DIR"))
        .collect()
}

#[test]
fn every_crd_validation_error_is_reported_at_once() {
    let bad_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let plugin_file = r#"# A plugin's manifest: its Deployment is skipped, its ConsolePlugins read.
apiVersion: apps/v1
kind: Deployment
metadata: {name: acm}
---
apiVersion: console.openshift.io/v1
kind: ConsolePlugin
metadata:
  name: acm
spec:
  displayName: ACM
  backend: {type: Service}
  proxy:
    - alias: ''
      endpoint: {type: Service, service: {name: web, namespace: shop, port: 1}}
    - alias: 'has space'
      authorization: Bearer
      endpoint: {type: Route}
    - alias: LONG
      caCertificate: BAD
      endpoint:
        type: Service
        service: {name: '', namespace: NS, port: 0}
    - alias: dup
      caCertificate: not a pem
      endpoint: {type: Service, service: {name: Web_1, port: 70000}}
    - alias: dup
      authorisation: UserToken
      endpoint: {service: {name: web, namespace: shop, port: '8443'}}
      via: sideways
    - alias: nocluster
      endpoint: {type: Service, service: {name: web, namespace: shop, port: 443}}
      cluster: nowhere
    - alias: noendpoint
    - alias: noport
      endpoint: {type: Service, service: {name: web, namespace: shop}}
---
apiVersion: console.openshift.io/v1alpha1
kind: ConsolePlugin
metadata: {name: Old_Name}
spec: {}
---
apiVersion: console.openshift.io/v1
kind: ConsolePlugin
metadata: {name: shop}
spec:
  proxy:
    - {alias: web, endpoint: {type: Service}}
---
apiVersion: console.openshift.io/v1
kind: ConsolePlugin
metadata: {name: inline}
spec: {}
"#
    .replace("LONG", &"a".repeat(129))
    .replace("BAD", &q(bad_pem))
    .replace("NS", &"n".repeat(129));
    let config = "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - {name: a, url: 'http://127.0.0.1:9'}\n        - {name: b, url: 'http://127.0.0.1:9'}\n\
kubeplex:\n  pluginProxy:\n    clusterDomain: 'not a domain'\n    resolve: {'web.shop:8443': 'nowhere', 'no-port': '127.0.0.1:1'}\n    plugins:\n      - name: inline\n        proxy:\n          - {alias: x, endpoint: {type: Service, service: {name: web, namespace: shop, port: 1}}, via: apiserver}\n      - proxy: []\n    consolePluginFiles: [plugins.yaml, missing.yaml, {path: c.yaml, via: up}]\n    extra: 1\n";
    let c_yaml = "apiVersion: console.openshift.io/v1\nkind: ConsolePlugin\nmetadata: {name: cee}\nspec: {}\n";
    let got = refused(&[
        ("kubeplex.yaml", config),
        ("plugins.yaml", &plugin_file),
        ("c.yaml", c_yaml),
    ]);
    let want: Vec<String> = [
        "kubeplex.pluginProxy.extra: unknown key (expected one of: plugins, consolePluginFiles, clusterDomain, serviceCaFile, resolve)",
        r#"kubeplex.pluginProxy.clusterDomain: must be a DNS domain such as cluster.local, got "not a domain""#,
        r#"kubeplex.pluginProxy.resolve.web.shop:8443: must be an address ip:port, such as 127.0.0.1:9443 or [::1]:9443, got "nowhere""#,
        r#"kubeplex.pluginProxy.resolve.no-port: the key must be host:port, such as web.shop.svc.cluster.local:8443, got "no-port""#,
        "kubeplex.pluginProxy.plugins[1].name: required",
    ]
    .iter()
    .map(|s| format!("DIR/kubeplex.yaml: {s}"))
    .chain(
        [
            "documents[1].spec.proxy[0].alias: must not be empty",
            r#"documents[1].spec.proxy[1].alias: must be 1 to 128 characters of A-Z, a-z, 0-9, '-' and '_' (^[A-Za-z0-9-_]+$), got "has space""#,
            r#"documents[1].spec.proxy[1].authorization: must be UserToken or None, got "Bearer""#,
            r#"documents[1].spec.proxy[1].endpoint.type: must be Service (the only endpoint type), got "Route""#,
            "documents[1].spec.proxy[1].endpoint.service: required when type is Service",
        ]
        .iter()
        .map(|s| format!("DIR/plugins.yaml: {s}")),
    )
    .collect();
    // The first lines, in order; the rest checked by content below.
    for (i, w) in want.iter().enumerate() {
        assert_eq!(got.get(i), Some(w), "line {i} of\n{}", got.join("\n"));
    }
    let all = got.join("\n");
    for part in [
        "DIR/plugins.yaml: documents[1].spec.proxy[2].alias: must be 1 to 128 characters",
        "DIR/plugins.yaml: documents[1].spec.proxy[2].caCertificate: not a usable CA certificate:",
        "DIR/plugins.yaml: documents[1].spec.proxy[2].endpoint.service.name: must not be empty",
        "DIR/plugins.yaml: documents[1].spec.proxy[2].endpoint.service.namespace: must be 1 to 128 characters, got 129",
        "DIR/plugins.yaml: documents[1].spec.proxy[2].endpoint.service.port: must be 1 to 65535, got 0",
        "DIR/plugins.yaml: documents[1].spec.proxy[3].caCertificate: must be PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
        r#"DIR/plugins.yaml: documents[1].spec.proxy[3].endpoint.service.name: must be a Service name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, got "Web_1""#,
        "DIR/plugins.yaml: documents[1].spec.proxy[3].endpoint.service.namespace: required",
        "DIR/plugins.yaml: documents[1].spec.proxy[3].endpoint.service.port: must be 1 to 65535, got 70000",
        "DIR/plugins.yaml: documents[1].spec.proxy[4].authorisation: unknown key; did you mean authorization?",
        "DIR/plugins.yaml: documents[1].spec.proxy[4].endpoint.type: required (Service)",
        r#"DIR/plugins.yaml: documents[1].spec.proxy[4].via: must be direct or apiserver, got "sideways""#,
        "DIR/plugins.yaml: documents[1].spec.proxy[6].endpoint: required",
        "DIR/plugins.yaml: documents[1].spec.proxy[7].endpoint.service.port: required",
        r#"DIR/plugins.yaml: documents[2].apiVersion: must be console.openshift.io/v1 (the version whose spec.proxy kubeplex reads), got "console.openshift.io/v1alpha1""#,
        r#"DIR/plugins.yaml: documents[2].metadata.name: must be a lowercase RFC 1123 subdomain"#,
        "DIR/plugins.yaml: documents[3].spec.proxy[0].endpoint.service: required when type is Service",
        "DIR/kubeplex.yaml: kubeplex.pluginProxy.consolePluginFiles[1]: cannot read DIR/missing.yaml:",
        r#"DIR/kubeplex.yaml: kubeplex.pluginProxy.consolePluginFiles[2].via: must be direct or apiserver, got "up""#,
        r#"DIR/plugins.yaml: documents[4].metadata.name: duplicate plugin name "inline" (first defined at DIR/kubeplex.yaml: kubeplex.pluginProxy.plugins[0].name)"#,
        r#"DIR/kubeplex.yaml: kubeplex.pluginProxy.plugins[0].proxy[0].cluster: required with via: apiserver when there are 2 clusters (config:a, config:b); name one (name or key)"#,
        r#"DIR/plugins.yaml: documents[1].spec.proxy[5].cluster: no cluster has the name or key "nowhere" (clusters: config:a, config:b)"#,
    ] {
        assert!(all.contains(part), "missing {part:?} in\n{all}");
    }
}

#[test]
fn duplicate_aliases_and_plugins_are_refused_and_good_files_are_read() {
    let doc = |name: &str, aliases: &[&str]| {
        let mut s = format!(
            "apiVersion: console.openshift.io/v1\nkind: ConsolePlugin\nmetadata:\n  name: {name}\nspec:\n  i18n: {{loadType: Lazy}}\n  proxy:\n"
        );
        for a in aliases {
            s.push_str(&format!(
                "    - alias: {a}\n      endpoint: {{type: Service, service: {{name: web, namespace: shop, port: 443}}}}\n"
            ));
        }
        s
    };
    let config = "kubernetes:\n  clusterLocatorMethods:\n    - type: localKubectlProxy\nkubeplex:\n  pluginProxy:\n    consolePluginFiles: [a.yaml, {path: b.yaml, cluster: local, via: apiserver}]\n";
    let got = refused(&[
        ("kubeplex.yaml", config),
        (
            "a.yaml",
            &format!(
                "{}---\n{}",
                doc("one", &["x", "y", "x"]),
                doc("two", &["x"])
            ),
        ),
        ("b.yaml", &doc("two", &["z"])),
    ]);
    assert_eq!(
        got,
        [
            r#"DIR/b.yaml: metadata.name: duplicate plugin name "two" (first defined at DIR/a.yaml: documents[1].metadata.name)"#,
            r#"DIR/a.yaml: documents[0].spec.proxy[2].alias: duplicate alias "x" in plugin "one" (also proxy[0]); aliases must be unique per plugin"#,
        ]
    );
    // Valid: file defaults apply to the entries.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kubeplex.yaml"), config).unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        format!("{}---\n{}", doc("one", &["x", "y"]), doc("two", &["x"])),
    )
    .unwrap();
    std::fs::write(dir.path().join("b.yaml"), doc("three", &["z"])).unwrap();
    let s = kubeplex::config::load_with_env(
        &[Source::File(dir.path().join("kubeplex.yaml"))],
        &[(
            "KUBEPLEX_SERVICE_ACCOUNT_DIR".to_string(),
            "/sa".to_string(),
        )]
        .into_iter()
        .collect(),
    )
    .unwrap();
    let pp = &s.plugin_proxy;
    let names: Vec<&str> = pp.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["one", "two", "three"]);
    assert_eq!(pp.cluster_domain, "cluster.local");
    assert_eq!(pp.service_ca_file, Path::new("/sa/service-ca.crt"));
    let z = &pp.plugins[2].proxy[0];
    assert_eq!(z.cluster.as_deref(), Some("local"));
    assert_eq!(z.via, kubeplex::config::plugin_proxy::Via::Apiserver);
    assert_eq!(
        pp.plugins[0].proxy[0].authorization,
        kubeplex::config::plugin_proxy::Authorization::None
    );
    // Both ConsolePlugin files are watched.
    for f in ["a.yaml", "b.yaml"] {
        assert!(
            s.files.iter().any(|p| p.ends_with(f)),
            "{f} not watched: {:?}",
            s.files
        );
    }
}
