//! CORS (SPEC §9, issue 15 item 4), configured like Backstage's `backend.cors` and read
//! from an app-config's `backend.cors` as is: a preflight from an allowed origin (a glob)
//! and from a refused one, both answered without touching a cluster; actual requests from
//! both, on the path route and on the header route; `kubeplex.server.cors` winning over
//! `backend.cors`; nothing added, and preflights
//! proxied, without a `cors` block; the configuration's problems.

use crate::common::{cluster, http, settings, spawn_app, Upstream};
use kubeplex::config::{load_with_env, tree::Env, Source};
use std::path::Path;

fn load(dir: &Path, yaml: &str) -> Result<kubeplex::config::Settings, Vec<String>> {
    let f = dir.join("app-config.yaml");
    std::fs::write(&f, yaml).unwrap();
    load_with_env(&[Source::File(f)], &Env::new())
        .map_err(|e| e.0.iter().map(|p| p.to_string()).collect())
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    let all: Vec<&str> = res
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    (!all.is_empty()).then(|| all.join(", "))
}

/// A `GET` of `url` sent from the page at `origin`.
async fn get_from(url: &str, origin: &str) -> reqwest::Response {
    http()
        .get(url)
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

/// A preflight for a `GET` of `url` from the page at `origin`.
async fn preflight_get(url: &str, origin: &str) -> reqwest::Response {
    http()
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn preflights_and_requests_from_allowed_and_refused_origins() {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "backend:\n  baseUrl: http://localhost:7007\n  cors:\n    origin: [http://localhost:3000, 'https://*.portal.example']\n    methods: [GET, POST]\n    credentials: true\n    maxAge: 600\n    exposedHeaders: [Kubeplex-Cluster, X-Request-Id]\n\
         kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    probeInterval: 0s\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - {{name: a, url: '{}'}}\n",
        up.url
    );
    let settings = load(dir.path(), &yaml).unwrap();
    let cors = settings.server.cors.clone().expect("backend.cors read");
    assert_eq!(
        cors.origins,
        ["http://localhost:3000", "https://*.portal.example"]
    );
    let app = kubeplex::app::spawn(settings).await.unwrap();
    let url = format!("{}/api/kubernetes/clusters/a/api/v1/pods", app.url());
    let c = http();
    let preflight = |origin: &str| {
        c.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header(
                "access-control-request-headers",
                "authorization,x-kubernetes-cluster",
            )
            .send()
    };

    // Allowed (by the glob): every allowing header.
    let res = preflight("https://team.portal.example").await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        header(&res, "access-control-allow-origin").as_deref(),
        Some("https://team.portal.example")
    );
    assert_eq!(
        header(&res, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        header(&res, "access-control-allow-methods").as_deref(),
        Some("GET,POST")
    );
    assert_eq!(
        header(&res, "access-control-allow-headers").as_deref(),
        Some("authorization,x-kubernetes-cluster")
    );
    assert_eq!(
        header(&res, "access-control-max-age").as_deref(),
        Some("600")
    );
    assert!(header(&res, "vary").unwrap().contains("Origin"));

    // Refused: answered too, with nothing that allows it.
    let res = preflight("https://evil.example").await.unwrap();
    assert_eq!(res.status(), 204);
    for h in [
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-credentials",
        "access-control-allow-headers",
    ] {
        assert_eq!(header(&res, h), None, "{h}");
    }
    assert!(up.recorded().is_empty(), "no preflight reached the cluster");

    // Actual requests: both reach the cluster; only the allowed origin may read the answer.
    let res = get_from(&url, "http://localhost:3000").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "access-control-allow-origin").as_deref(),
        Some("http://localhost:3000")
    );
    assert_eq!(
        header(&res, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        header(&res, "access-control-expose-headers").as_deref(),
        Some("Kubeplex-Cluster,X-Request-Id")
    );
    assert!(header(&res, "vary").unwrap().contains("Origin"));
    let res = get_from(&url, "http://localhost:3001").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    assert_eq!(header(&res, "access-control-expose-headers"), None);
    // Without an Origin (not a browser's cross-origin call): nothing added.
    let res = c.get(&url).send().await.unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    assert_eq!(header(&res, "vary"), None);
    assert_eq!(up.recorded().len(), 3);
    // The origin goes to the cluster as any header would (the proxy's header rules).
    assert_eq!(
        up.recorded()[0].one("origin"),
        Some("http://localhost:3000")
    );

    // The header route, whose requests without an Origin skip actix-web's router: one with
    // an Origin still gets the CORS answer, and its preflight is not proxied.
    let url = format!("{}/api/kubernetes/proxy/api/v1/pods", app.url());
    let res = preflight_get(&url, "http://localhost:3000").await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        header(&res, "access-control-allow-origin").as_deref(),
        Some("http://localhost:3000")
    );
    assert_eq!(up.recorded().len(), 3, "the preflight was not proxied");
    for origin in [Some("http://localhost:3000"), None] {
        let res = match origin {
            Some(o) => get_from(&url, o).await,
            None => c.get(&url).send().await.unwrap(),
        };
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "access-control-allow-origin").as_deref(),
            origin
        );
        assert_eq!(
            header(&res, "kubeplex-cluster").as_deref(),
            Some("config:a")
        );
    }
    assert_eq!(up.recorded().len(), 5);
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn without_cors_nothing_is_added_and_preflights_are_proxied() {
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("a", &up.url)])).await;
    let url = format!("{}/api/kubernetes/clusters/a/api/v1/pods", app.url());
    let res = preflight_get(&url, "http://localhost:3000").await;
    assert_eq!(res.status(), 200, "the cluster's answer");
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    let res = get_from(&url, "http://localhost:3000").await;
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    assert_eq!(header(&res, "vary"), None);
    let methods: Vec<String> = up.recorded().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["OPTIONS", "GET"]);
    app.handle.stop(false).await;
}

#[test]
fn kubeplex_server_cors_wins_and_problems_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let clusters = "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - {name: a, url: 'http://127.0.0.1:1'}\n";
    let s = load(
        dir.path(),
        &format!(
            "backend:\n  cors:\n    origin: http://a.example\nkubeplex:\n  server:\n    cors:\n      origin: http://b.example\n      allowedHeaders: authorization\n{clusters}"
        ),
    )
    .unwrap();
    let cors = s.server.cors.unwrap();
    assert_eq!(cors.origins, ["http://b.example"]);
    assert_eq!(
        cors.allowed_headers,
        Some(vec!["authorization".to_string()])
    );
    assert_eq!(
        cors.methods,
        ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
    );
    assert_eq!(cors.options_success_status, 204);
    assert!(!cors.credentials);
    let s = load(dir.path(), clusters).unwrap();
    assert_eq!(s.server.cors, None);

    let errs = load(
        dir.path(),
        &format!(
            "backend:\n  cors:\n    credentials: yes-please\n    preflightContinue: true\n    optionsSuccessStatus: 301\n    orign: x\n{clusters}"
        ),
    )
    .unwrap_err();
    for want in [
        "backend.cors.origin: is required",
        "backend.cors.credentials",
        "backend.cors.preflightContinue: true is not supported",
        "backend.cors.optionsSuccessStatus: must be a 2xx status, got 301",
        "backend.cors.orign: unknown key; did you mean origin?",
    ] {
        assert!(errs.iter().any(|e| e.contains(want)), "{want} in {errs:?}");
    }
    let errs = load(
        dir.path(),
        &format!("kubeplex:\n  server:\n    cors:\n      origin: 'https://[a'\n{clusters}"),
    )
    .unwrap_err();
    assert!(
        errs.iter().any(|e| e
            .contains("kubeplex.server.cors.origin: \"https://[a\": not a valid origin pattern")),
        "{errs:?}"
    );
}

#[actix_web::test]
async fn the_clusters_own_cors_headers_are_replaced_not_doubled() {
    // A cluster (or something in front of it) that answers with CORS headers of its own:
    // the caller sees kubeplex's, once, whichever way the answer's headers were relayed.
    let up = Upstream::start(|_| crate::common::Reply {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("access-control-allow-origin".into(), "*".into()),
            ("access-control-expose-headers".into(), "X-Secret".into()),
            ("vary".into(), "Accept".into()),
        ],
        body: crate::common::Body::Bytes(b"{}".to_vec()),
    })
    .await;
    let mut s = settings(vec![cluster("a", &up.url)]);
    s.server.cors = Some(kubeplex::config::CorsSettings {
        origins: vec!["http://localhost:3000".into()],
        methods: vec!["GET".into()],
        allowed_headers: None,
        exposed_headers: vec!["X-Request-Id".into()],
        credentials: false,
        max_age: None,
        options_success_status: 204,
    });
    let app = spawn_app(s).await;
    let url = format!("{}/api/kubernetes/clusters/a/api/v1/pods", app.url());
    for _ in 0..2 {
        // The second request reuses the pooled connection to the cluster.
        let res = get_from(&url, "http://localhost:3000").await;
        assert_eq!(res.status(), 200);
        // Each header once: a doubled one would read `a, b` here.
        let one = |n: &str| header(&res, n);
        assert_eq!(
            one("access-control-allow-origin").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(
            one("access-control-expose-headers").as_deref(),
            Some("X-Request-Id")
        );
        assert_eq!(one("vary").as_deref(), Some("Accept, Origin"));
        assert_eq!(one("content-type").as_deref(), Some("application/json"));
    }
}
