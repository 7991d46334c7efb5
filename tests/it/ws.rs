//! WebSocket tunnels through kubeplex (SPEC §3), with a real WebSocket client
//! (tokio-tungstenite) over loopback against (a) an echo WebSocket upstream started here that
//! records each handshake it gets, and (b) the simulated cluster's pods: both routes, text
//! and binary echo, a frame over 1 MiB, subprotocol negotiation left to the upstream, close
//! propagation both ways, refused upgrades passed through with their `Status` body, SPDY
//! refused, the credential applied and cookies removed on the upgrade request, and a few
//! hundred tunnels open at once while ordinary requests still succeed.

use crate::common;
use crate::common_tls;
use crate::support_ws;

use common::{cluster, eventually, http, spawn_app};
use futures_util::{SinkExt, StreamExt};
use kubeplex::config::{ClusterConfig, LocatorConfig, LocatorKind, Settings};
use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support_ws::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// What the echo upstream saw of one connection.
#[derive(Debug, Clone, Default)]
struct Seen {
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    /// How the connection ended: `close <code>` (close frame from the client) or `eof`.
    ended: Option<String>,
}

impl Seen {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn one(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

/// An echo WebSocket server. It picks the *last* subprotocol the client offers (so a proxy
/// choosing on its own would show), refuses paths `/refuse/<code>` with a `Status` body,
/// closes with 4000 on the text `close-me`, and drops the socket on `drop-me`.
struct EchoUpstream {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl EchoUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let all = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let all = all.clone();
                tokio::spawn(async move { serve(stream, all).await });
            }
        });
        EchoUpstream {
            url: format!("http://{addr}"),
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

// tungstenite's handshake callback type fixes the `Err` type.
#[allow(clippy::result_large_err)]
async fn serve(stream: tokio::net::TcpStream, all: Arc<Mutex<Vec<Seen>>>) {
    let index = Arc::new(Mutex::new(None::<usize>));
    let idx = index.clone();
    let all2 = all.clone();
    let callback = move |req: &Request, mut res: Response| -> Result<Response, ErrorResponse> {
        let seen = Seen {
            path: req.uri().path().to_string(),
            query: req.uri().query().map(str::to_string),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            ended: None,
        };
        let path = seen.path.clone();
        let offered: Vec<String> = seen
            .all("sec-websocket-protocol")
            .iter()
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        {
            let mut a = all2.lock().unwrap();
            a.push(seen);
            *idx.lock().unwrap() = Some(a.len() - 1);
        }
        if let Some(code) = path
            .rsplit("/refuse/")
            .next()
            .filter(|_| path.contains("/refuse/"))
        {
            let code: u16 = code.parse().unwrap_or(400);
            let body = format!(
                r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"refused with {code}","reason":"Refused","code":{code}}}"#
            );
            let mut r = ErrorResponse::new(Some(body));
            *r.status_mut() = StatusCode::from_u16(code).unwrap();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            r.headers_mut()
                .insert("x-upstream-said", HeaderValue::from_static("no"));
            return Err(r);
        }
        if let Some(last) = offered.last() {
            res.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(last).unwrap(),
            );
        }
        Ok(res)
    };
    let mut cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    cfg.max_message_size = Some(64 << 20);
    cfg.max_frame_size = Some(64 << 20);
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(cfg)).await
    else {
        return;
    };
    let mut ended = "eof".to_string();
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Text(t)) if t.as_str() == "close-me" => {
                let _ = ws
                    .close(Some(CloseFrame {
                        code: CloseCode::Library(4000),
                        reason: "bye".into(),
                    }))
                    .await;
                // Wait for the client's answer, then the socket ends.
                while let Some(Ok(_)) = ws.next().await {}
                ended = "upstream closed".into();
                break;
            }
            Ok(Message::Text(t)) if t.as_str() == "drop-me" => {
                ended = "upstream dropped".into();
                drop(ws);
                break;
            }
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            Ok(Message::Close(frame)) => {
                ended = format!("close {}", frame.map(|f| u16::from(f.code)).unwrap_or(0));
                // tungstenite answers the close frame itself.
                while let Some(Ok(_)) = ws.next().await {}
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let i = *index.lock().unwrap();
    if let Some(i) = i {
        all.lock().unwrap()[i].ended = Some(ended);
    }
}

fn sim_cluster(name: &str) -> SimClusterConfig {
    SimClusterConfig {
        name: name.into(),
        seed: Some(SeedSource::Text {
            name: "seed".into(),
            text: kubeplex::sim::config::DEFAULT_SEED.into(),
        }),
        ..Default::default()
    }
}

/// kubeplex with `config:echo` (at the echo upstream, with a service-account token),
/// `config:echo-sub` (the same under a path prefix) and `sim:pods` (a simulated cluster).
async fn setup() -> (EchoUpstream, kubeplex::app::RunningApp) {
    let echo = EchoUpstream::start().await;
    let mut c = cluster("echo", &echo.url);
    c.service_account_token = Some("sa-token".into());
    let sub = ClusterConfig {
        name: "echo-sub".into(),
        url: format!("{}/prefix", echo.url),
        ..Default::default()
    };
    let settings = Settings {
        locators: vec![
            LocatorConfig {
                id: "config".into(),
                kind: LocatorKind::Config {
                    clusters: vec![c, sub],
                },
            },
            LocatorConfig {
                id: "sim".into(),
                kind: LocatorKind::Simulated {
                    clusters: vec![sim_cluster("pods")],
                },
            },
        ],
        ..Default::default()
    };
    let app = spawn_app(settings).await;
    (echo, app)
}

fn ws_base(app: &kubeplex::app::RunningApp) -> String {
    format!("ws://{}/api/kubernetes", app.addr)
}

/// The two routes to the cluster `name` for `path`: (url, extra headers).
fn routes(
    app: &kubeplex::app::RunningApp,
    name: &str,
    path: &str,
) -> Vec<(String, Vec<(String, String)>)> {
    vec![
        (
            format!("{}/proxy{path}", ws_base(app)),
            vec![("backstage-kubernetes-cluster".to_string(), name.to_string())],
        ),
        (format!("{}/clusters/{name}{path}", ws_base(app)), vec![]),
    ]
}

fn hdrs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[actix_web::test]
async fn echo_text_and_binary_on_both_routes_with_upstream_choosing_the_subprotocol() {
    let (echo, app) = setup().await;
    for (url, extra) in routes(
        &app,
        "echo",
        "/api/v1/namespaces/ns/pods/p/exec?command=sh&x=1",
    ) {
        let (mut ws, res) = connect(
            &url,
            &["v5.channel.k8s.io", "v4.channel.k8s.io"],
            &hdrs(&extra),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 101);
        assert_eq!(
            res.headers().get("sec-websocket-protocol").unwrap(),
            "v4.channel.k8s.io",
            "the upstream's choice comes back"
        );
        assert_eq!(
            res.headers().get("kubeplex-cluster").unwrap(),
            "config:echo"
        );
        ws.send(Message::Text("hello".into())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::Text("hello".into())
        );
        let bin: Vec<u8> = vec![0, 1, 2, 254, 255];
        ws.send(Message::Binary(bin.clone().into())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::Binary(bin.into())
        );
        ws.close(None).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    }
    let seen = echo.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.path, "/api/v1/namespaces/ns/pods/p/exec");
        assert_eq!(s.query.as_deref(), Some("command=sh&x=1"));
        assert_eq!(
            s.all("sec-websocket-protocol"),
            vec!["v5.channel.k8s.io, v4.channel.k8s.io"],
            "the protocol list goes upstream as sent"
        );
        assert_eq!(s.one("sec-websocket-version"), Some("13"));
        assert_eq!(s.one("upgrade"), Some("websocket"));
        assert!(s
            .one("connection")
            .unwrap()
            .to_ascii_lowercase()
            .contains("upgrade"));
        assert_eq!(s.one("host"), Some(echo.url.trim_start_matches("http://")));
        assert!(s.one("backstage-kubernetes-cluster").is_none());
    }
}

#[actix_web::test]
async fn the_clients_own_key_goes_upstream_and_accept_comes_back() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (echo, app) = setup().await;
    let url = format!("{}/clusters/echo/api/v1/watch", ws_base(&app));
    let req = url.as_str().into_client_request().unwrap();
    let key = req.headers()["sec-websocket-key"]
        .to_str()
        .unwrap()
        .to_string();
    let (mut ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    let expected = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    assert_eq!(res.headers()["sec-websocket-accept"], expected.as_str());
    ws.close(None).await.unwrap();
    assert_eq!(echo.seen()[0].one("sec-websocket-key"), Some(key.as_str()));
}

#[actix_web::test]
async fn credential_applied_and_cookies_removed_on_the_upgrade() {
    let (echo, app) = setup().await;
    let url = format!(
        "{}/clusters/echo/api/v1/namespaces/a/pods/b/attach",
        ws_base(&app)
    );
    // Server-side credential (rule 4), cookies and Backstage headers stripped.
    let (mut ws, _) = connect(
        &url,
        &[],
        &[
            ("cookie", "session=secret"),
            ("x-remote-user", "mallory"),
            ("origin", "https://portal.example.com"),
        ],
    )
    .await
    .unwrap();
    ws.close(None).await.unwrap();
    // The portal's credential header wins (rule 1) and is not forwarded itself.
    let (mut ws, _) = connect(
        &url,
        &[],
        &[("backstage-kubernetes-authorization", "Bearer from-portal")],
    )
    .await
    .unwrap();
    ws.close(None).await.unwrap();
    let seen = echo.seen();
    assert_eq!(seen[0].one("authorization"), Some("Bearer sa-token"));
    assert!(seen[0].one("cookie").is_none(), "{:?}", seen[0].headers);
    assert!(seen[0].one("x-remote-user").is_none());
    assert_eq!(seen[0].one("origin"), Some("https://portal.example.com"));
    assert_eq!(seen[1].one("authorization"), Some("Bearer from-portal"));
    assert!(seen[1].one("backstage-kubernetes-authorization").is_none());
}

#[actix_web::test]
async fn cluster_url_path_prefix_is_kept() {
    let (echo, app) = setup().await;
    let (mut ws, _) = connect(
        &format!("{}/clusters/echo-sub/api/v1/x?follow=true", ws_base(&app)),
        &[],
        &[],
    )
    .await
    .unwrap();
    ws.close(None).await.unwrap();
    assert_eq!(echo.seen()[0].path, "/prefix/api/v1/x");
    assert_eq!(echo.seen()[0].query.as_deref(), Some("follow=true"));
}

#[actix_web::test]
async fn frames_over_one_mebibyte_pass_intact() {
    let (_echo, app) = setup().await;
    let (mut ws, _) = connect(&format!("{}/clusters/echo/big", ws_base(&app)), &[], &[])
        .await
        .unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    ws.send(Message::Binary(big.clone().into())).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Binary(b) => assert!(b[..] == big[..], "large frame changed"),
        other => panic!("{other:?}"),
    }
    let text = "k8s ".repeat(400_000);
    ws.send(Message::Text(text.clone().into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text(text.into())
    );
    ws.close(None).await.unwrap();
}

#[actix_web::test]
async fn client_close_reaches_the_upstream() {
    let (echo, app) = setup().await;
    let (mut ws, _) = connect(&format!("{}/clusters/echo/c", ws_base(&app)), &[], &[])
        .await
        .unwrap();
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    }))
    .await
    .unwrap();
    // The upstream's answer to the close comes back through the tunnel.
    let mut got_close = false;
    while let Some(Ok(m)) = ws.next().await {
        got_close |= matches!(m, Message::Close(_));
    }
    assert!(got_close);
    assert!(
        eventually(Duration::from_secs(10), || echo.seen()[0].ended.as_deref()
            == Some("close 1000"))
        .await,
        "{:?}",
        echo.seen()
    );
}

#[actix_web::test]
async fn client_vanishing_ends_the_upstream_connection() {
    let (echo, app) = setup().await;
    let (mut ws, _) = connect(&format!("{}/clusters/echo/v", ws_base(&app)), &[], &[])
        .await
        .unwrap();
    ws.send(Message::Text("x".into())).await.unwrap();
    ws.next().await.unwrap().unwrap();
    drop(ws); // no close frame: the TCP connection just ends
    assert!(
        eventually(Duration::from_secs(10), || echo.seen()[0].ended.as_deref()
            == Some("eof"))
        .await,
        "{:?}",
        echo.seen()
    );
}

#[actix_web::test]
async fn upstream_close_reaches_the_client() {
    let (echo, app) = setup().await;
    let (mut ws, _) = connect(
        &format!("{}/proxy/u", ws_base(&app)),
        &[],
        &[("x-kubernetes-cluster", "echo")],
    )
    .await
    .unwrap();
    ws.send(Message::Text("close-me".into())).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(f)) => {
            assert_eq!(u16::from(f.code), 4000);
            assert_eq!(f.reason.as_str(), "bye");
        }
        other => panic!("{other:?}"),
    }
    // The stream then ends.
    while let Some(Ok(_)) = ws.next().await {}
    assert!(
        eventually(Duration::from_secs(10), || echo.seen()[0].ended.as_deref()
            == Some("upstream closed"))
        .await
    );

    // An upstream that drops the socket ends the client's connection too.
    let (mut ws, _) = connect(&format!("{}/clusters/echo/d", ws_base(&app)), &[], &[])
        .await
        .unwrap();
    ws.send(Message::Text("drop-me".into())).await.unwrap();
    loop {
        match ws.next().await {
            None | Some(Err(_)) => break,
            Some(Ok(Message::Close(_))) => continue,
            Some(Ok(other)) => panic!("unexpected {other:?}"),
        }
    }
}

#[actix_web::test]
async fn refused_upgrades_pass_through_with_their_status_body() {
    let (_echo, app) = setup().await;
    for code in [400u16, 401, 403, 404] {
        let url = format!("{}/clusters/echo/refuse/{code}", ws_base(&app));
        let res = match connect(&url, &["v5.channel.k8s.io"], &[]).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res,
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        };
        assert_eq!(res.status().as_u16(), code);
        assert_eq!(res.headers()["x-upstream-said"], "no");
        let body: serde_json::Value =
            serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
        assert_eq!(body["message"], format!("refused with {code}"));
        assert_eq!(body["reason"], "Refused");
    }
    // The simulated cluster's own refusals: an unknown pod, an unknown container.
    let (code, st) = refused(
        &format!(
            "{}/clusters/pods/api/v1/namespaces/default/pods/ghost/exec?command=true&stdout=true",
            ws_base(&app)
        ),
        &["v5.channel.k8s.io"],
        &[],
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(st["reason"], "NotFound");
    assert_eq!(st["message"], "pods \"ghost\" not found");
}

#[actix_web::test]
async fn spdy_upgrades_get_a_400_status_saying_to_use_websocket() {
    let (echo, app) = setup().await;
    let res = http()
        .post(format!(
            "{}/api/kubernetes/clusters/echo/api/v1/namespaces/a/pods/b/exec?command=ls",
            app.url()
        ))
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let st: serde_json::Value = res.json().await.unwrap();
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["reason"], "BadRequest");
    let msg = st["message"].as_str().unwrap();
    assert!(msg.contains("WebSocket"), "{msg}");
    assert!(
        msg.contains("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true"),
        "{msg}"
    );
    assert!(
        msg.contains("KUBECTL_PORT_FORWARD_WEBSOCKETS=true"),
        "{msg}"
    );
    assert!(echo.seen().is_empty(), "nothing went upstream");
}

#[actix_web::test]
async fn sim_exec_and_port_forward_through_both_routes() {
    let (_echo, app) = setup().await;
    for (url, extra) in routes(
        &app,
        "pods",
        "/api/v1/namespaces/payments/pods/toolbox/exec?command=echo&command=through&command=kubeplex&stdout=true&stderr=true",
    ) {
        let (mut ws, res) = connect(&url, &["v5.channel.k8s.io"], &hdrs(&extra))
            .await
            .unwrap();
        assert_eq!(res.headers()["sec-websocket-protocol"], "v5.channel.k8s.io");
        let (out, _, status) = collect_exec(&mut ws).await;
        assert_eq!(out, "through kubeplex\n");
        assert!(status.contains("Success"), "{status}");
    }
    for (url, extra) in routes(
        &app,
        "pods",
        "/api/v1/namespaces/payments/pods/toolbox/exec?command=sh&command=-c&command=exit%2042&stdout=true",
    ) {
        let (mut ws, _) = connect(&url, &["v4.channel.k8s.io"], &hdrs(&extra))
            .await
            .unwrap();
        let (_, _, status) = collect_exec(&mut ws).await;
        let st: serde_json::Value = serde_json::from_str(&status).unwrap();
        assert_eq!(st["reason"], "NonZeroExitCode");
        assert_eq!(st["details"]["causes"][0]["message"], "42");
    }
    let url = format!(
        "{}/clusters/pods/api/v1/namespaces/default/pods/toolbox/portforward?ports=8080",
        ws_base(&app)
    );
    let (mut ws, _) = connect(&url, &["v4.channel.k8s.io"], &[]).await.unwrap();
    assert_eq!(next_channel(&mut ws).await, Some((0, vec![0x90, 0x1f])));
    assert_eq!(next_channel(&mut ws).await, Some((1, vec![0x90, 0x1f])));
    send_channel(&mut ws, 0, b"GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(
        next_channel(&mut ws).await,
        Some((0, b"GET / HTTP/1.0\r\n\r\n".to_vec()))
    );
    ws.close(None).await.unwrap();
}

#[actix_web::test]
async fn hundreds_of_tunnels_stay_up_while_ordinary_requests_succeed() {
    let (echo, app) = setup().await;
    const N: usize = 300;
    let url = format!(
        "{}/clusters/echo/api/v1/namespaces/a/pods/b/exec",
        ws_base(&app)
    );
    let mut open = Vec::with_capacity(N);
    for chunk in 0..(N / 50) {
        let conns = futures_util::future::join_all(
            (0..50).map(|_| connect(&url, &["v5.channel.k8s.io"], &[])),
        )
        .await;
        for (i, c) in conns.into_iter().enumerate() {
            let (ws, _) = c.unwrap_or_else(|e| panic!("tunnel {} failed: {e}", chunk * 50 + i));
            open.push(ws);
        }
    }
    // Every tunnel is live.
    for (i, ws) in open.iter_mut().enumerate() {
        ws.send(Message::Text(format!("n{i}").into()))
            .await
            .unwrap();
    }
    for (i, ws) in open.iter_mut().enumerate() {
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::Text(format!("n{i}").into())
        );
    }
    // Ordinary requests are not held up by the open tunnels.
    let client = http();
    for _ in 0..20 {
        let res = client
            .get(format!(
                "{}/api/kubernetes/clusters/pods/api/v1/namespaces/default/pods/toolbox",
                app.url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let pod: serde_json::Value = res.json().await.unwrap();
        assert_eq!(pod["metadata"]["name"], "toolbox");
    }
    assert_eq!(echo.seen().len(), N);
    for ws in open.iter_mut() {
        ws.close(None).await.unwrap();
    }
    assert!(
        eventually(Duration::from_secs(30), || echo
            .seen()
            .iter()
            .all(|s| s.ended.is_some()))
        .await
    );
}

#[actix_web::test]
async fn upgrade_failures_are_status_objects_naming_the_cluster() {
    // Refused connection: 502.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    // Accepts, never answers: 504 after the response-head timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = silent.accept().await {
            h.lock().unwrap().push(s);
        }
    });
    let mut settings = common::settings(vec![
        cluster("gone", &closed_url),
        cluster("silent", &silent_url),
    ]);
    settings.server.response_head_timeout = Duration::from_millis(300);
    let app = spawn_app(settings).await;
    let (code, st) = refused(&format!("{}/clusters/gone/x", ws_base(&app)), &[], &[]).await;
    assert_eq!(code, 502);
    assert!(
        st["message"].as_str().unwrap().contains("config:gone"),
        "{st}"
    );
    let (code, st) = refused(
        &format!("{}/clusters/silent/x?token=secret", ws_base(&app)),
        &[],
        &[],
    )
    .await;
    assert_eq!(code, 504);
    let msg = st["message"].as_str().unwrap();
    assert!(msg.contains("config:silent"), "{msg}");
    assert!(!msg.contains("secret"), "{msg}");
}

/// An HTTPS cluster (its own CA, given as `caData`): the tunnel uses the same rustls
/// configuration as the cluster's ordinary requests.
#[actix_web::test]
async fn tunnels_to_an_https_cluster_use_its_tls_configuration() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let ca = common_tls::Ca::new("ws test CA");
    let cert = ca.server(&["localhost"]);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The simulated cluster's pods behind HTTPS.
    let pods = kubeplex::sim::pods::PodsState::new(&sim_cluster("tls"));
    let server = actix_web::HttpServer::new(move || {
        let pods = pods.clone();
        actix_web::App::new().configure(move |c| kubeplex::sim::pods::configure(c, pods))
    })
    .workers(1)
    .disable_signals()
    .bind_rustls_0_23("127.0.0.1:0", tls)
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let mut c = cluster("secure", &format!("https://localhost:{port}"));
    c.ca_data = Some(common_tls::b64(&ca.pem));
    let app = spawn_app(common::settings(vec![
        c,
        cluster("other", "http://127.0.0.1:9"),
    ]))
    .await;
    let url = format!(
        "{}/clusters/secure/api/v1/namespaces/default/pods/toolbox/exec?command=echo&command=over%20tls&stdout=true",
        ws_base(&app)
    );
    let (mut ws, _) = connect(&url, &["v5.channel.k8s.io"], &[]).await.unwrap();
    let (out, _, status) = collect_exec(&mut ws).await;
    assert_eq!(out, "over tls\n");
    assert!(status.contains("Success"));
    drop(handle.stop(false));
}

/// One audit line per tunnel, when it closes: cluster key, path without query, bytes each
/// way, duration (from the real binary's JSON log).
#[actix_web::test]
async fn a_closed_tunnel_is_audited_once_with_bytes_each_way() {
    let sim = kubeplex::sim::spawn("127.0.0.1:0", &sim_cluster("audited"))
        .await
        .unwrap();
    let kp = common::KubeplexProcess::start(
        sim.url().as_str().trim_end_matches('/'),
        "warn,kubeplex=info",
    );
    let url = format!(
        "ws://{}/api/kubernetes/clusters/up/api/v1/namespaces/default/pods/toolbox/exec?command=cat&stdin=true&stdout=true&token=querysecret",
        kp.addr
    );
    let (mut ws, _) = connect(
        &url,
        &["v5.channel.k8s.io"],
        &[("x-request-id", "tunnel-1")],
    )
    .await
    .unwrap();
    send_channel(&mut ws, 0, b"0123456789").await;
    assert_eq!(
        next_channel(&mut ws).await,
        Some((1, b"0123456789".to_vec()))
    );
    ws.send(Message::Binary(vec![255u8, 0].into()))
        .await
        .unwrap();
    let (_, _, status) = collect_exec(&mut ws).await;
    assert!(status.contains("Success"));
    let audit = |kp: &common::KubeplexProcess| kp.json_logs("kubeplex::audit");
    assert!(
        eventually(Duration::from_secs(10), || !audit(&kp).is_empty()).await,
        "no audit line"
    );
    // A per-request line for the same request would have been written before the
    // tunnel's own (the response body is dropped before the tunnel's last owner).
    let lines = audit(&kp);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let f = &lines[0]["fields"];
    assert_eq!(f["request_id"], "tunnel-1");
    assert_eq!(f["cluster"], "config:up");
    assert_eq!(f["status"], 101);
    assert_eq!(
        f["path"],
        "/api/kubernetes/clusters/up/api/v1/namespaces/default/pods/toolbox/exec"
    );
    // Client frames are masked: 11 payload bytes + 6 header bytes, then the 2-byte close
    // signal + 6, then the close frame.
    assert!(f["bytes_to_cluster"].as_u64().unwrap() >= 17 + 8, "{f}");
    assert!(f["bytes_from_cluster"].as_u64().unwrap() >= 13, "{f}");
    assert!(f["duration_ms"].as_f64().is_some());
    assert!(!lines[0].to_string().contains("querysecret"));
}
