//! SPEC §3 over loopback against a recording upstream: what goes upstream (path, query,
//! body byte for byte, headers removed and kept, `Host`, `X-Forwarded-For`, sub-path
//! prefix, credential rules 1-5, `Impersonate-*`), what comes back (status, repeated
//! headers, body unchanged, no decompression, no redirects, no added `Content-Type`), and
//! the errors kubeplex produces itself (502, 504, 400 paths, SPDY).

use crate::common;

use base64::Engine;
use common::*;
use serde_json::Value;
use std::time::Duration;

const BASE: &str = "/api/kubernetes";

#[actix_web::test]
async fn unusual_status_and_body_pass_through() {
    let up = Upstream::start(|_| Reply {
        status: 299,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: Body::Bytes(b"odd but fine".to_vec()),
    })
    .await;
    let app = spawn_app_for(&up).await;
    let r = http().get(proxy_url(&app, "/x")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 299);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "odd but fine");
}

#[actix_web::test]
async fn host_is_the_upstreams_and_forged_client_addresses_are_replaced() {
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    http()
        .get(proxy_url(&app, "/api"))
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Forwarded-For", "198.51.100.1")
        .header("X-Real-Ip", "203.0.113.8")
        .header("Forwarded", "for=203.0.113.9;proto=https")
        .send()
        .await
        .unwrap();
    let rec = up.only();
    let up_host = up.url.trim_start_matches("http://");
    assert_eq!(rec.one("host"), Some(up_host));
    // The peer (127.0.0.1) is not a trusted proxy: its claims are dropped.
    assert_eq!(rec.one("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(rec.one("x-real-ip"), None);
    assert_eq!(rec.one("forwarded"), None);
}

#[actix_web::test]
async fn a_trusted_proxy_keeps_its_client_addresses() {
    let up = Upstream::ok().await;
    let mut s = settings(vec![cluster("c", &up.url)]);
    s.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    let app = spawn_app(s).await;
    http()
        .get(proxy_url(&app, "/api"))
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Forwarded-For", "198.51.100.1")
        .header("X-Real-Ip", "203.0.113.8")
        .header("Forwarded", "for=203.0.113.9;proto=https")
        .send()
        .await
        .unwrap();
    let rec = up.only();
    assert_eq!(
        rec.one("x-forwarded-for"),
        Some("203.0.113.7, 198.51.100.1, 127.0.0.1")
    );
    assert_eq!(rec.one("x-real-ip"), Some("203.0.113.8"));
    assert_eq!(rec.one("forwarded"), Some("for=203.0.113.9;proto=https"));
    // A trusted proxy that sends nothing: the peer alone.
    http().get(proxy_url(&app, "/api")).send().await.unwrap();
    assert_eq!(up.recorded()[1].one("x-forwarded-for"), Some("127.0.0.1"));
}

#[actix_web::test]
async fn a_peer_outside_the_trusted_networks_is_not_believed() {
    let up = Upstream::ok().await;
    let mut s = settings(vec![cluster("c", &up.url)]);
    s.server.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    let app = spawn_app(s).await;
    http()
        .get(proxy_url(&app, "/api"))
        .header("X-Forwarded-For", "10.1.2.3")
        .header("X-Real-Ip", "10.1.2.3")
        .header("Forwarded", "for=10.1.2.3")
        .send()
        .await
        .unwrap();
    let rec = up.only();
    assert_eq!(rec.one("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(rec.one("x-real-ip"), None);
    assert_eq!(rec.one("forwarded"), None);
}

#[actix_web::test]
async fn cluster_url_sub_path_is_prepended() {
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster(
        "c",
        &format!("{}/k8s/clusters/c-1", up.url),
    )]))
    .await;
    let r = http()
        .get(proxy_url(&app, "/api/v1/namespaces?limit=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = up.only();
    assert_eq!(rec.path, "/k8s/clusters/c-1/api/v1/namespaces");
    assert_eq!(rec.query.as_deref(), Some("limit=5"));
}

#[actix_web::test]
async fn post_json_and_yaml_bodies_arrive_byte_for_byte() {
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    let json = "{\"apiVersion\":\"v1\",\"kind\":\"Service\",  \"metadata\":{\"name\":\"a\"}}\n";
    let yaml =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: b # comment\n  labels: {a: \"ü\"}\n";
    let c = http();
    let r = c
        .post(proxy_url(
            &app,
            "/api/v1/namespaces/default/services?fieldManager=kubectl",
        ))
        .header("Content-Type", "application/json")
        .body(json)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(proxy_url(&app, "/api/v1/namespaces/default/services/b"))
        .header("Content-Type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let recs = up.recorded();
    assert_eq!(recs[0].method, "POST");
    assert_eq!(recs[0].body, json.as_bytes());
    assert_eq!(recs[0].one("content-type"), Some("application/json"));
    assert_eq!(
        recs[0].one("content-length"),
        Some(&*json.len().to_string())
    );
    assert_eq!(recs[0].query.as_deref(), Some("fieldManager=kubectl"));
    assert_eq!(recs[1].method, "PUT");
    assert_eq!(recs[1].body, yaml.as_bytes());
    assert_eq!(recs[1].one("content-type"), Some("application/yaml"));
}

#[actix_web::test]
async fn get_without_body_sends_no_content_length() {
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    http().get(proxy_url(&app, "/api")).send().await.unwrap();
    let rec = up.only();
    assert_eq!(rec.one("content-length"), None);
    assert_eq!(rec.one("transfer-encoding"), None);
}

#[actix_web::test]
async fn portal_authorization_header_goes_upstream_verbatim() {
    let up = Upstream::ok().await;
    let mut c = cluster("c", &up.url);
    c.service_account_token = Some("sa-token".into());
    let app = spawn_app(settings(vec![c])).await;
    http()
        .get(proxy_url(&app, "/api"))
        .header(
            "Backstage-Kubernetes-Authorization",
            "Bearer user-k8s-token",
        )
        .header("Authorization", "Bearer ignored-when-rule-1")
        .send()
        .await
        .unwrap();
    let rec = up.only();
    assert_eq!(rec.one("authorization"), Some("Bearer user-k8s-token"));
    assert!(rec
        .headers
        .iter()
        .all(|(n, _)| !n.starts_with("backstage-kubernetes-authorization")));
}

#[actix_web::test]
async fn provider_header_matching_the_cluster_becomes_bearer() {
    let up = Upstream::ok().await;
    let mut okta = cluster("okta", &up.url);
    okta.auth_provider = Some("oidc".into());
    okta.oidc_token_provider = Some("okta".into());
    let mut google = cluster("google", &up.url);
    google.auth_provider = Some("google".into());
    google.service_account_token = Some("sa".into());
    let app = spawn_app(settings(vec![okta, google])).await;
    let c = http();
    c.get(proxy_url(&app, "/a"))
        .header("Backstage-Kubernetes-Cluster", "okta")
        .header("Backstage-Kubernetes-Authorization-google", "g-token")
        .header("Backstage-Kubernetes-Authorization-oidc-okta", "okta-token")
        .send()
        .await
        .unwrap();
    // A header for another provider is not this cluster's: the server credential is used.
    c.get(proxy_url(&app, "/b"))
        .header("Backstage-Kubernetes-Cluster", "google")
        .header("Backstage-Kubernetes-Authorization-oidc-okta", "okta-token")
        .send()
        .await
        .unwrap();
    let recs = up.recorded();
    assert_eq!(recs[0].one("authorization"), Some("Bearer okta-token"));
    assert_eq!(recs[1].one("authorization"), Some("Bearer sa"));
}

fn backstage_user_token() -> String {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "Bearer {}.{}.c2lnbmF0dXJl",
        b.encode(r#"{"alg":"ES256","typ":"vnd.backstage.user","kid":"k"}"#),
        b.encode(r#"{"iss":"http://portal","sub":"user:default/ann","ent":["user:default/ann"],"aud":"backstage","exp":4102444800}"#)
    )
}

#[actix_web::test]
async fn backstage_user_token_never_goes_upstream() {
    let up = Upstream::ok().await;
    let mut sa = cluster("sa", &up.url);
    sa.service_account_token = Some("cluster-sa-token".into());
    let anon = cluster("anon", &up.url);
    let app = spawn_app(settings(vec![sa, anon])).await;
    let token = backstage_user_token();
    let c = http();
    for name in ["sa", "anon"] {
        let r = c
            .get(proxy_url(&app, "/api"))
            .header("Backstage-Kubernetes-Cluster", name)
            .header("Authorization", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let recs = up.recorded();
    assert_eq!(
        recs[0].one("authorization"),
        Some("Bearer cluster-sa-token")
    );
    assert_eq!(recs[1].one("authorization"), None);
    for r in &recs {
        assert!(r
            .headers
            .iter()
            .all(|(_, v)| !v.contains("vnd") && !v.contains(&token[7..])));
    }
}

#[actix_web::test]
async fn callers_own_authorization_goes_upstream_verbatim() {
    let up = Upstream::ok().await;
    let mut c = cluster("c", &up.url);
    c.service_account_token = Some("sa".into());
    let app = spawn_app(settings(vec![c])).await;
    http()
        .get(proxy_url(&app, "/api"))
        .header("Authorization", "Bearer callers-kube-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        up.only().one("authorization"),
        Some("Bearer callers-kube-token")
    );
}

#[actix_web::test]
async fn token_file_is_reread_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "first-token\n").unwrap();
    let up = Upstream::ok().await;
    let mut c = cluster("c", &up.url);
    c.token_file = Some(path.clone());
    let app = spawn_app(settings(vec![c])).await;
    let client = http();
    client.get(proxy_url(&app, "/1")).send().await.unwrap();
    let tmp = dir.path().join("token.tmp");
    std::fs::write(&tmp, "rotated-token-value\n").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    // Both workers see the new token.
    for i in 0..6 {
        client
            .get(proxy_url(&app, &format!("/{i}")))
            .send()
            .await
            .unwrap();
    }
    let recs = up.recorded();
    assert_eq!(recs[0].one("authorization"), Some("Bearer first-token"));
    for r in &recs[1..] {
        assert_eq!(r.one("authorization"), Some("Bearer rotated-token-value"));
    }
}

#[actix_web::test]
async fn cookies_cluster_and_identity_headers_never_arrive() {
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    http()
        .get(proxy_url(&app, "/api"))
        .header("Cookie", "session=abc")
        .header("Backstage-Kubernetes-Cluster", "c")
        .header("X-Kubernetes-Cluster", "c")
        .header("X-Remote-User", "system:admin")
        .header("X-Remote-Group", "system:masters")
        .header("X-Remote-Extra-Scopes", "all")
        .header("Connection", "keep-alive, X-Hop")
        .header("X-Hop", "secret-hop")
        .header("Keep-Alive", "timeout=5")
        .header("Proxy-Connection", "keep-alive")
        .header("TE", "trailers")
        .header("X-Custom", "kept")
        .send()
        .await
        .unwrap();
    let rec = up.only();
    for h in [
        "cookie",
        "backstage-kubernetes-cluster",
        "x-kubernetes-cluster",
        "x-remote-user",
        "x-remote-group",
        "x-remote-extra-scopes",
        "x-hop",
        "keep-alive",
        "proxy-connection",
        "te",
    ] {
        assert_eq!(rec.one(h), None, "{h} arrived upstream");
    }
    assert_eq!(rec.one("x-custom"), Some("kept"));
}

#[actix_web::test]
async fn impersonation_only_with_the_callers_own_token() {
    let up = Upstream::ok().await;
    let mut c = cluster("c", &up.url);
    c.service_account_token = Some("sa".into());
    let app = spawn_app(settings(vec![c])).await;
    let client = http();
    client
        .get(proxy_url(&app, "/sa"))
        .header("Impersonate-User", "admin")
        .header("Impersonate-Group", "system:masters")
        .send()
        .await
        .unwrap();
    client
        .get(proxy_url(&app, "/own"))
        .header("Authorization", "Bearer my-own")
        .header("Impersonate-User", "admin")
        .header("Impersonate-Group", "system:masters")
        .send()
        .await
        .unwrap();
    client
        .get(proxy_url(&app, "/portal"))
        .header("Backstage-Kubernetes-Authorization", "Bearer my-own")
        .header("Impersonate-User", "admin")
        .send()
        .await
        .unwrap();
    let recs = up.recorded();
    assert_eq!(recs[0].one("authorization"), Some("Bearer sa"));
    assert_eq!(recs[0].one("impersonate-user"), None);
    assert_eq!(recs[0].one("impersonate-group"), None);
    assert_eq!(recs[1].one("authorization"), Some("Bearer my-own"));
    assert_eq!(recs[1].one("impersonate-user"), Some("admin"));
    assert_eq!(recs[1].one("impersonate-group"), Some("system:masters"));
    assert_eq!(recs[2].one("impersonate-user"), Some("admin"));
}

#[actix_web::test]
async fn repeated_headers_are_kept_both_ways() {
    let up = Upstream::start(|_| Reply {
        status: 200,
        headers: vec![
            ("warning".into(), "299 - \"first\"".into()),
            ("warning".into(), "299 - \"second\"".into()),
            ("warning".into(), "299 - \"third\"".into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: Body::Bytes(b"{}".to_vec()),
    })
    .await;
    let app = spawn_app_for(&up).await;
    let r = http()
        .get(proxy_url(&app, "/api"))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .header("Accept", "application/json")
        .header("X-Multi", "a")
        .header("X-Multi", "b")
        .send()
        .await
        .unwrap();
    let warnings: Vec<_> = r
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        warnings,
        ["299 - \"first\"", "299 - \"second\"", "299 - \"third\""]
    );
    let rec = up.only();
    assert_eq!(
        rec.all("accept"),
        [
            "application/json;as=Table;v=v1;g=meta.k8s.io",
            "application/json"
        ]
    );
    assert_eq!(rec.all("x-multi"), ["a", "b"]);
}

#[actix_web::test]
async fn no_decompression_and_no_accept_encoding_added() {
    // A gzip member holding "hello\n".
    let gz: Vec<u8> = vec![
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
        0xe7, 0x02, 0x00, 0x20, 0x30, 0x3a, 0x36, 0x06, 0x00, 0x00, 0x00,
    ];
    let body = gz.clone();
    let up = Upstream::start(move |_| Reply {
        status: 200,
        headers: vec![
            ("content-encoding".into(), "gzip".into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: Body::Bytes(body.clone()),
    })
    .await;
    let app = spawn_app_for(&up).await;
    let c = http();
    let r = c.get(proxy_url(&app, "/plain")).send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["content-length"], gz.len().to_string().as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), gz.as_slice());
    let r = c
        .get(proxy_url(&app, "/gz"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), gz.as_slice());
    let recs = up.recorded();
    assert_eq!(recs[0].one("accept-encoding"), None);
    assert_eq!(recs[1].one("accept-encoding"), Some("gzip"));
}

#[actix_web::test]
async fn redirects_are_not_followed() {
    let up = Upstream::start(|_| Reply {
        status: 302,
        headers: vec![("location".into(), "/elsewhere".into())],
        body: Body::Bytes(Vec::new()),
    })
    .await;
    let app = spawn_app_for(&up).await;
    let r = http().get(proxy_url(&app, "/here")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/elsewhere");
    assert_eq!(up.only().path, "/here");
}

#[actix_web::test]
async fn no_content_type_is_added() {
    let up = Upstream::start(|r| Reply {
        status: 200,
        headers: vec![],
        body: if r.path == "/chunked" {
            Body::Zeros {
                len: 10,
                sized: false,
            }
        } else {
            Body::Bytes(b"raw".to_vec())
        },
    })
    .await;
    let app = spawn_app_for(&up).await;
    for p in ["/sized", "/chunked"] {
        let r = http().get(proxy_url(&app, p)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers().get("content-type").is_none(),
            "{p}: {:?}",
            r.headers()
        );
    }
}

#[actix_web::test]
async fn connection_refused_is_502_naming_the_key() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = spawn_app(settings(vec![cluster(
        "down",
        &format!("http://127.0.0.1:{port}"),
    )]))
    .await;
    let r = http()
        .get(proxy_url(&app, "/api?token=secret-query"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["kubeplex-cluster"], "config:down");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["reason"], "BadGateway");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("config:down"), "{msg}");
    assert!(msg.contains("refused"), "{msg}");
    assert!(!msg.contains("secret-query"), "{msg}");
}

/// An upstream that accepts connections and never answers.
async fn silent_upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_web::rt::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

#[actix_web::test]
async fn no_answer_is_504_after_the_response_head_timeout() {
    let addr = silent_upstream().await;
    let mut s = settings(vec![cluster("slow", &format!("http://{addr}"))]);
    s.server.response_head_timeout = Duration::from_millis(300);
    let app = spawn_app(s).await;
    let r = http().get(proxy_url(&app, "/api")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["reason"], "Timeout");
    assert!(v["message"].as_str().unwrap().contains("config:slow"));
}

#[actix_web::test]
async fn a_timed_out_request_leaves_the_next_on_its_connection_its_whole_deadline() {
    // One client connection: a request to a cluster that never answers (504), then
    // requests to one that does. The connection keeps its response-head timer between
    // requests: the timer that fired for the 504 must not end the next request at once.
    let silent = silent_upstream().await;
    let up = Upstream::ok().await;
    let mut s = settings(vec![
        cluster("silent", &format!("http://{silent}")),
        cluster("ok", &up.url),
    ]);
    s.server.response_head_timeout = Duration::from_millis(300);
    let app = spawn_app(s).await;
    let addr: std::net::SocketAddr = app.url().trim_start_matches("http://").parse().unwrap();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    for (cluster, status) in [("ok", 200), ("silent", 504), ("ok", 200), ("ok", 200)] {
        let head = format!(
            "GET {BASE}/proxy/api/v1/pods HTTP/1.1\r\nHost: k\r\nX-Kubernetes-Cluster: {cluster}\r\n\r\n"
        );
        let answer = exchange(&mut conn, &head).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{cluster}: {answer}"
        );
    }
}

#[actix_web::test]
async fn an_idle_client_connection_is_closed_after_the_keep_alive_period() {
    // A request, three quiet seconds (within actix's 5 s keep-alive: the connection stays),
    // a second request, then silence. The keep-alive timer is moved to the second answer's
    // deadline, not left at the first's: the connection closes about five seconds after
    // the second answer, not two.
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    let addr: std::net::SocketAddr = app.url().trim_start_matches("http://").parse().unwrap();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let get = format!(
        "GET {BASE}/proxy/api/v1/pods HTTP/1.1\r\nHost: k\r\nX-Kubernetes-Cluster: c\r\n\r\n"
    );
    let answer = exchange(&mut conn, &get).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // A client's pause between requests (not a wait for the server).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answer = exchange(&mut conn, &get).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let start = std::time::Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        use tokio::io::AsyncReadExt;
        conn.read_to_end(&mut rest).await
    })
    .await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "still open after {:?}",
        start.elapsed()
    );
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(
        start.elapsed() >= Duration::from_secs(4),
        "closed {:?} after the second answer",
        start.elapsed()
    );
}

/// Writes `head` on `conn` and reads one answer with a `Content-Length` body.
async fn exchange(conn: &mut tokio::net::TcpStream, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((h, body)) = text.split_once("\r\n\r\n") {
            let len: usize = h
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .expect(h);
            if body.len() >= len {
                return text.into_owned();
            }
        }
    }
}

#[actix_web::test]
async fn unsafe_paths_are_400_and_nothing_is_sent() {
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    let host = app.addr.to_string();
    for target in [
        format!("{BASE}/proxy/../../etc/passwd"),
        format!("{BASE}/proxy/api/v1/%2e%2e/%2E%2E/secrets"),
        format!("{BASE}/proxy/api/.%2e/x"),
        format!("{BASE}/proxy//evil.example.com/api"),
        format!("{BASE}/proxy/%2F%2Fevil.example.com/api"),
        format!("{BASE}/clusters/c/../x"),
        format!("{BASE}/clusters/c//evil.example.com/x"),
        format!("http://evil.example.com{BASE}/proxy/api/v1"),
    ] {
        let resp = raw(
            app.addr,
            &format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{target}: {resp}");
        assert!(resp.contains("\"kind\":\"Status\""), "{target}: {resp}");
    }
    assert!(up.recorded().is_empty(), "{:?}", up.recorded());
}

#[actix_web::test]
async fn spdy_upgrade_is_refused_with_advice() {
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    let r = http()
        .post(proxy_url(
            &app,
            "/api/v1/namespaces/default/pods/p/exec?command=sh",
        ))
        .header("Connection", "Upgrade")
        .header("Upgrade", "SPDY/3.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("WebSocket") && msg.contains("KUBECTL_REMOTE_COMMAND_WEBSOCKETS"));
    assert!(up.recorded().is_empty());
}

#[actix_web::test]
async fn oversized_headers_are_refused() {
    let up = Upstream::ok().await;
    let mut s = settings(vec![cluster("c", &up.url)]);
    s.server.max_header_bytes = 1024;
    let app = spawn_app(s).await;
    let r = http()
        .get(proxy_url(&app, "/api"))
        .header("X-Big", "x".repeat(2000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["code"], 431);
    assert_eq!(v["reason"], "RequestHeaderFieldsTooLarge");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("exceed maxHeaderBytes (1024)"), "{msg}");
    assert!(up.recorded().is_empty());
}

#[actix_web::test]
async fn head_keeps_the_upstream_content_length() {
    let up = Upstream::start(|_| Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Body::Bytes(b"{\"a\":1}".to_vec()),
    })
    .await;
    let app = spawn_app_for(&up).await;
    let c = http();
    let r = c.head(proxy_url(&app, "/api")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "7");
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    // The connection stays usable.
    let r = c.get(proxy_url(&app, "/api")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "{\"a\":1}");
    assert_eq!(up.recorded()[0].method, "HEAD");
}

#[actix_web::test]
async fn chunked_upload_arrives_byte_for_byte() {
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    let parts: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from_static(b"{\"kind\":")),
        Ok(bytes::Bytes::from_static(b"\"ConfigMap\"}")),
    ];
    let r = http()
        .post(proxy_url(&app, "/api/v1/namespaces/default/configmaps"))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            parts,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = up.only();
    assert_eq!(rec.body, b"{\"kind\":\"ConfigMap\"}");
    assert_eq!(rec.one("transfer-encoding"), Some("chunked"));
    assert_eq!(rec.one("content-length"), None);
}

#[actix_web::test]
async fn a_slow_but_moving_upload_is_not_cut_off_by_the_head_timeout() {
    let up = Upstream::ok().await;
    let mut s = settings(vec![cluster("c", &up.url)]);
    s.server.response_head_timeout = Duration::from_secs(2);
    let app = spawn_app(s).await;
    // 30 chunks 100 ms apart: 3 s in all, beyond the 2 s head timeout.
    let chunks = futures_util::stream::unfold(0u32, |i| async move {
        if i == 30 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"0123456789")),
            i + 1,
        ))
    });
    let r = http()
        .put(proxy_url(&app, "/slow"))
        .header("content-length", "300")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.only().body_len, 300);
}

#[actix_web::test]
async fn x_forwarded_for_is_created_with_the_peer() {
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    http().get(proxy_url(&app, "/api")).send().await.unwrap();
    assert_eq!(up.only().one("x-forwarded-for"), Some("127.0.0.1"));
}

#[actix_web::test]
/// `Expect: 100-continue` goes to the cluster; the caller's `100 Continue` comes when the
/// cluster's does (kubeplex asks for the body only then), so a cluster that refuses the body
/// is asked first.
async fn expect_100_continue_goes_upstream_and_the_clusters_100_is_relayed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        format!(
            "PUT {BASE}/proxy/api/v1/x HTTP/1.1\r\nHost: {}\r\nContent-Length: 5\r\n\
             Expect: 100-continue\r\nConnection: close\r\n\r\n",
            app.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).await.unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 100 Continue"), "{buf:?}");
    s.write_all(b"hello").await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("HTTP/1.1 200"), "{rest}");
    let rec = up.only();
    assert_eq!(rec.body, b"hello");
    assert_eq!(rec.one("expect"), Some("100-continue"));
}

/// A cluster that answers every request on a connection with `head` (its own `Date`,
/// `X-Request-Id` and `Kubeplex-Cluster`, a header its `Connection` names, two
/// `Set-Cookie`) and the body `{}`, keeping the connection.
async fn raw_answering_upstream(head: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    actix_web::rt::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            actix_web::rt::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if s.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[actix_web::test]
async fn answer_headers_reach_http1_callers_once_each_with_kubeplexs_own_in_place() {
    // The direct path hands HTTP/1.x callers the answer's header lines as they came
    // (less hop-by-hop, framing and kubeplex's own): each must appear exactly once.
    let url = raw_answering_upstream(
        "HTTP/1.1 200 OK\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\nContent-Type: application/json\r\n\
         X-Request-Id: from-the-cluster\r\nKubeplex-Cluster: forged\r\nConnection: keep-alive, X-Hop\r\n\
         X-Hop: secret\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nKeep-Alive: timeout=5\r\n\
         Content-Length: 2\r\n\r\n{}",
    )
    .await;
    let app = spawn_app(settings(vec![cluster("a", &url)])).await;
    let addr: std::net::SocketAddr = app.url().trim_start_matches("http://").parse().unwrap();
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let answer = raw(
            addr,
            &format!(
                "GET {BASE}/proxy/api/v1/pods {version}\r\nHost: k\r\nX-Kubernetes-Cluster: a\r\n\
                 X-Request-Id: mine-1\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        let (head, body) = answer.split_once("\r\n\r\n").expect(&answer);
        assert!(head.starts_with(&format!("{version} 200 OK")), "{head}");
        assert_eq!(body, "{}", "{answer}");
        let lines: Vec<(String, &str)> = head
            .lines()
            .skip(1)
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_ascii_lowercase(), v.trim())
            })
            .collect();
        let all = |name: &str| -> Vec<&str> {
            lines
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .collect()
        };
        assert_eq!(all("date"), ["Mon, 30 Nov 2026 10:00:00 GMT"], "{head}");
        assert_eq!(all("x-request-id"), ["mine-1"], "{head}");
        assert_eq!(all("kubeplex-cluster"), ["config:a"], "{head}");
        assert_eq!(all("content-type"), ["application/json"], "{head}");
        assert_eq!(all("set-cookie"), ["a=1", "b=2"], "{head}");
        assert_eq!(all("content-length"), ["2"], "{head}");
        assert!(all("x-hop").is_empty(), "{head}");
        assert!(all("keep-alive").is_empty(), "{head}");
        // Only kubeplex's own `Connection`, once at most.
        assert!(all("connection").len() <= 1, "{head}");
        assert!(
            !head.contains("X-Hop") && !head.contains("forged"),
            "{head}"
        );
    }
}
