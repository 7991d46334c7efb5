//! Caller identity and access policy (SPEC §5, issue 14), over loopback against the real
//! app (and the real binary for the audit lines), with keys generated here: ES256 and
//! EdDSA (rcgen/ring), RS256 (the `rsa` crate), HS256; tokens signed with jsonwebtoken.
//!
//! 1. Keys: every algorithm from every source (JWKS URL, inline JWKS, PEM, HS256 secrets).
//! 2. Attacks: `alg: none`, HS256 signed with the RSA public key, a `kid` naming another
//!    key, `jku`/`x5u`/`jwk` headers (the attacker's JWKS server is never contacted),
//!    expired, `nbf` in the future, wrong `aud` and `iss`, oversize and non-JWT tokens, no
//!    header: each a 401 `Status` with `WWW-Authenticate: Bearer error="invalid_token"`.
//! 3. The JWKS URL: key rotation (a new `kid` accepted after the refetch), outages (500,
//!    connection closed) keeping the last good keys, at most one refetch per 30 s under a
//!    burst of unknown `kid`s, concurrent first requests.
//! 4. Backstage user tokens with nothing but `jwksUrl`; Backstage external-access static
//!    tokens from `backend.auth.externalAccess`.
//! 5. The policy matrix (subject × cluster × namespace × verb; allow/deny order, first
//!    match wins, default deny, `ent` groups) over both proxy routes, `GET /clusters`,
//!    aggregation (denied members left out silently) and exec upgrades.
//! 6. Impersonation seen by a simulated cluster that enforces per-user namespace limits.
//! 7. The portal token never upstream (header route, path route, aggregate, WebSocket
//!    upgrade, Backstage services route).
//! 8. The subject on every audit line (proxy, denied, tunnel, aggregate).

use crate::common::{self, eventually, KubeplexProcess, Recorded, Reply, Upstream};
use crate::support_ws;
use base64::Engine;
use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kubeplex::app::RunningApp;
use kubeplex::config::{load_with_env, tree::Env, Source};
use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimGrant, SimImpersonation};
use kubeplex::sim::SimServer;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------
// Keys and tokens
// ---------------------------------------------------------------------------------------

/// The HS256 secret of service-to-service tokens (at least 32 bytes).
const SECRET: &str = "s2s-secret-0123456789-abcdefghijklmnop";

/// A signing key and its public forms.
struct Key {
    kid: String,
    alg: Algorithm,
    enc: EncodingKey,
    /// The public key in PEM (SPKI); empty for HS256.
    pem: String,
    /// The public key as a JWK.
    jwk: Value,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn es256(kid: &str) -> Key {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    // Uncompressed point: 0x04 || x || y.
    let raw = kp.public_key_raw();
    assert_eq!(raw.len(), 65);
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        enc: EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap(),
        pem: kp.public_key_pem(),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..]),
                    "kid": kid, "alg": "ES256", "use": "sig"}),
    }
}

fn ed25519(kid: &str) -> Key {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    Key {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        enc: EncodingKey::from_ed_pem(kp.serialize_pem().as_bytes()).unwrap(),
        pem: kp.public_key_pem(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key_raw()),
                    "kid": kid, "alg": "EdDSA", "use": "sig"}),
    }
}

/// One 2048-bit RSA key for the whole run (PKCS#1 DER, public PEM, n, e): generating one
/// takes a while in a debug build.
fn rsa_material() -> &'static (Vec<u8>, String, String, String) {
    static KEY: OnceLock<(Vec<u8>, String, String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        use rsa::traits::PublicKeyParts;
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
        let der = key.to_pkcs1_der().unwrap().as_bytes().to_vec();
        let public = key.to_public_key();
        let pem = public.to_public_key_pem(LineEnding::LF).unwrap();
        (der, pem, b64(&public.n_bytes()), b64(&public.e_bytes()))
    })
}

fn rs256(kid: &str) -> Key {
    let (der, pem, n, e) = rsa_material();
    Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        enc: EncodingKey::from_rsa_der(der),
        pem: pem.clone(),
        jwk: json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "alg": "RS256", "use": "sig"}),
    }
}

fn hs256(secret: &str) -> Key {
    Key {
        kid: "s2s".into(),
        alg: Algorithm::HS256,
        enc: EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        pem: String::new(),
        jwk: Value::Null,
    }
}

fn jwks(keys: &[&Key]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims for `sub` with `ent`, valid for ten minutes, each set unique (`jti`) so that no
/// two tokens share kubeplex's verified-token cache.
fn claims(sub: &str, ent: &[&str]) -> Value {
    static N: AtomicU64 = AtomicU64::new(0);
    json!({
        "sub": sub,
        "ent": ent,
        "iat": now(),
        "exp": now() + 600,
        "jti": format!("t{}", N.fetch_add(1, Ordering::Relaxed)),
    })
}

/// A token signed with `key`, its `kid` in the header (none for HS256).
fn sign(key: &Key, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    if key.alg != Algorithm::HS256 {
        h.kid = Some(key.kid.clone());
    }
    sign_with(h, key, claims)
}

fn sign_with(header: Header, key: &Key, claims: &Value) -> String {
    jsonwebtoken::encode(&header, claims, &key.enc).unwrap()
}

/// A token of `sub` with `ent` signed by `key`.
fn token(key: &Key, sub: &str, ent: &[&str]) -> String {
    sign(key, &claims(sub, ent))
}

// ---------------------------------------------------------------------------------------
// A JWKS server on loopback
// ---------------------------------------------------------------------------------------

/// The path the JWKS server is reached at (Backstage's).
const JWKS_PATH: &str = "/api/auth/.well-known/jwks.json";

/// What the JWKS server answers.
#[derive(Clone)]
enum Jwks {
    /// 200 with this document.
    Keys(Value),
    /// This status, `{}`.
    Status(u16),
    /// The connection closed without an answer.
    Close,
}

/// A JWKS endpoint whose answer the test changes, counting the requests it gets and
/// keeping their heads (also a raw upstream that refuses everything).
struct JwksServer {
    url: String,
    mode: Arc<Mutex<Jwks>>,
    /// Added before each answer (a slow portal).
    delay: Arc<Mutex<Duration>>,
    hits: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl JwksServer {
    async fn start(mode: Jwks) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let hits = Arc::new(AtomicUsize::new(0));
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let (m, d, h, all) = (mode.clone(), delay.clone(), hits.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (m, d, h, all) = (m.clone(), d.clone(), h.clone(), all.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    all.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf).into_owned());
                    h.fetch_add(1, Ordering::SeqCst);
                    let delay = *d.lock().unwrap();
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let mode = m.lock().unwrap().clone();
                    let (status, body) = match mode {
                        Jwks::Close => return,
                        Jwks::Keys(doc) => (200, doc.to_string()),
                        Jwks::Status(code) => (code, "{}".to_string()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status} JWKS\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(body.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        JwksServer {
            url: format!("http://{addr}{JWKS_PATH}"),
            mode,
            delay,
            hits,
            heads,
        }
    }

    fn set(&self, mode: Jwks) {
        *self.mode.lock().unwrap() = mode;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The request heads received, in order.
    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------
// kubeplex, clusters, requests
// ---------------------------------------------------------------------------------------

fn load(yaml: &str) -> kubeplex::config::Settings {
    load_with_env(
        &[Source::Inline {
            name: "identity.yaml".into(),
            text: yaml.into(),
        }],
        &Env::new(),
    )
    .unwrap_or_else(|e| panic!("config refused: {e}\n{yaml}"))
}

async fn app(yaml: &str) -> RunningApp {
    common::spawn_app(load(yaml)).await
}

/// A YAML string (JSON-quoted, so PEM newlines survive).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The `kubeplex` + `kubernetes` config: `auth` (the lines under `kubeplex.auth`, indented
/// by four), aggregation cache off, and `clusters` (lines of the config locator's list).
fn config(auth: &str, clusters: &[String]) -> String {
    format!(
        "kubeplex:\n  aggregate:\n    cacheTtl: 0s\n  auth:\n{auth}\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n{}",
        clusters.concat()
    )
}

/// One config cluster line with a service-account token, impersonating or not.
fn cluster(name: &str, url: &str, token: &str, impersonate: bool) -> String {
    format!(
        "        - {{name: {name}, url: {}, serviceAccountToken: {token}, impersonate: {impersonate}}}\n",
        q(url)
    )
}

/// Namespaces `team-a`, `team-b`, `shared-x` (each with the simulator's `toolbox` pod).
const SEED: &str = "apiVersion: v1\nkind: List\nitems:\n\
    - {apiVersion: v1, kind: Namespace, metadata: {name: team-a}}\n\
    - {apiVersion: v1, kind: Namespace, metadata: {name: team-b}}\n\
    - {apiVersion: v1, kind: Namespace, metadata: {name: shared-x}}\n";

fn sim_config(name: &str, tokens: &[&str]) -> SimClusterConfig {
    SimClusterConfig::new(
        name,
        Some(SeedSource::Text {
            name: format!("{name} seed"),
            text: SEED.into(),
        }),
        tokens.iter().copied(),
    )
}

async fn sim(cfg: &SimClusterConfig) -> SimServer {
    kubeplex::sim::spawn("127.0.0.1:0", cfg).await.unwrap()
}

fn url_of(sim: &SimServer) -> String {
    sim.url().as_str().trim_end_matches('/').to_string()
}

fn base(app: &RunningApp) -> String {
    format!("{}/api/kubernetes", app.url())
}

/// An answer: status, headers, body (JSON when it parses, else a string).
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Resp {
    fn message(&self) -> String {
        self.body["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends `method url` with `Authorization: <authorization>` when given, `headers` and a
/// JSON `body` when given.
async fn send(
    method: &str,
    url: &str,
    authorization: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Resp {
    let mut req = common::http().request(method.parse().unwrap(), url);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp {
        status,
        headers,
        body,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// GET with a bearer token.
async fn get(url: &str, token: &str) -> Resp {
    send("GET", url, Some(&bearer(token)), &[], None).await
}

/// Asserts a 401 `Status` with `WWW-Authenticate: Bearer error="invalid_token"` that does
/// not quote the token.
#[track_caller]
fn assert_invalid_token(r: &Resp, what: &str, token: &str) {
    assert_eq!(r.status, 401, "{what}: {r:?}");
    assert_eq!(
        r.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some(r#"Bearer error="invalid_token""#),
        "{what}"
    );
    let b = &r.body;
    assert_eq!(
        (
            b["kind"].as_str(),
            b["apiVersion"].as_str(),
            b["status"].as_str()
        ),
        (Some("Status"), Some("v1"), Some("Failure")),
        "{what}: {b}"
    );
    assert_eq!(
        (b["code"].as_u64(), b["reason"].as_str()),
        (Some(401), Some("Unauthorized")),
        "{what}: {b}"
    );
    assert!(!r.message().is_empty(), "{what}: {b}");
    if token.len() > 8 {
        assert!(
            !b.to_string().contains(token),
            "{what}: the answer quotes the token"
        );
    }
}

/// The `Authorization` values a recording upstream saw, in order.
fn authorizations(up: &Upstream) -> Vec<String> {
    up.recorded()
        .iter()
        .map(|r: &Recorded| r.one("authorization").unwrap_or("").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. Keys of every kind
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn tokens_of_every_algorithm_and_key_source_verify() {
    let es = es256("es-1");
    let ed = ed25519("ed-1");
    let rs = rs256("rs-1");
    let ed_pem = ed25519("unused");
    let es_pem = es256("unused");
    let hs = hs256(SECRET);
    let jwks_server = JwksServer::start(Jwks::Keys(jwks(&[&es]))).await;
    let up = Upstream::ok().await;
    let auth = format!(
        "    mode: jwt\n    jwksUrl: {}\n    jwks: {}\n    publicKeys: [{}, {}, {}]\n    secrets: [{}]\n\
         \x20   policy:\n      - {{subjects: ['*'], effect: allow}}\n",
        q(&jwks_server.url),
        jwks(&[&ed]),
        q(&rs.pem),
        q(&ed_pem.pem),
        q(&es_pem.pem),
        q(SECRET),
    );
    let app = app(&config(&auth, &[cluster("c", &up.url, "sa-c", false)])).await;
    let url = format!("{}/clusters/c/api/v1/namespaces/a/configmaps", base(&app));
    let cases = [
        (
            "ES256 from the JWKS URL",
            token(&es, "user:default/es", &[]),
        ),
        (
            "EdDSA from the inline JWKS",
            token(&ed, "user:default/ed", &[]),
        ),
        ("RS256 from a PEM key", token(&rs, "user:default/rs", &[])),
        (
            "EdDSA from a PEM key, no kid",
            sign_with(
                Header::new(Algorithm::EdDSA),
                &ed_pem,
                &claims("user:default/edpem", &[]),
            ),
        ),
        (
            "ES256 from a PEM key, no kid",
            sign_with(
                Header::new(Algorithm::ES256),
                &es_pem,
                &claims("user:default/espem", &[]),
            ),
        ),
        ("HS256 from a secret", token(&hs, "svc:ci", &[])),
    ];
    for (what, t) in &cases {
        let r = get(&url, t).await;
        assert_eq!(r.status, 200, "{what}: {r:?}");
    }
    // The same tokens again come from the cache of verified tokens.
    for (what, t) in &cases {
        assert_eq!(get(&url, t).await.status, 200, "{what} (cached)");
    }
    assert_eq!(jwks_server.hits(), 1, "one JWKS fetch");
    let seen = authorizations(&up);
    assert_eq!(seen.len(), 2 * cases.len());
    assert!(seen.iter().all(|a| a == "Bearer sa-c"), "{seen:?}");
}

// ---------------------------------------------------------------------------------------
// 2. Attacks
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn forged_expired_and_malformed_tokens_are_refused_with_invalid_token() {
    let good = es256("good");
    let other = es256("other");
    let rs = rs256("rs");
    let attacker = es256("attacker");
    let jwks_server = JwksServer::start(Jwks::Keys(jwks(&[&good, &other]))).await;
    let evil = JwksServer::start(Jwks::Keys(jwks(&[&attacker]))).await;
    let up = Upstream::ok().await;
    let auth = format!(
        "    mode: jwt\n    jwksUrl: {}\n    publicKeys: [{}]\n    issuer: https://portal.example.com/api/auth\n\
         \x20   audience: [kubeplex]\n    policy:\n      - {{subjects: ['*'], effect: allow}}\n",
        q(&jwks_server.url),
        q(&rs.pem),
    );
    let app = app(&config(&auth, &[cluster("c", &up.url, "sa-c", false)])).await;
    let url = format!("{}/clusters/c/api/v1/namespaces/a/configmaps", base(&app));
    let valid = |sub: &str| {
        let mut c = claims(sub, &[]);
        c["iss"] = json!("https://portal.example.com/api/auth");
        c["aud"] = json!("kubeplex");
        c
    };
    // The reference: a proper token passes.
    assert_eq!(
        get(&url, &sign(&good, &valid("user:default/ok")))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&url, &sign(&rs, &valid("user:default/rs")))
            .await
            .status,
        200
    );
    let before = up.recorded().len();

    let header = |alg: Algorithm, kid: &str| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        h
    };
    let mut attacks: Vec<(&str, String)> = Vec::new();
    // alg none: no signature at all.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"good"}"#),
        b64(valid("user:default/none").to_string().as_bytes())
    );
    attacks.push(("alg none", none.clone()));
    attacks.push((
        "alg None, signature kept",
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"None"}"#),
            b64(valid("user:default/none").to_string().as_bytes()),
            b64(b"sig")
        ),
    ));
    // HS256 "signed" with the RSA public key (PEM bytes) as the HMAC secret.
    let confused = hs256(&rs.pem);
    attacks.push((
        "HS256 with the RSA public key as secret",
        sign_with(
            Header::new(Algorithm::HS256),
            &confused,
            &valid("user:default/x"),
        ),
    ));
    attacks.push((
        "HS256 with the RSA public key as secret, kid of the JWKS key",
        sign_with(
            header(Algorithm::HS256, "good"),
            &confused,
            &valid("user:default/x"),
        ),
    ));
    // Signed with one key, naming another.
    attacks.push((
        "kid naming another trusted key",
        sign_with(
            header(Algorithm::ES256, "other"),
            &good,
            &valid("user:default/x"),
        ),
    ));
    attacks.push((
        "the attacker's key under a trusted kid",
        sign_with(
            header(Algorithm::ES256, "good"),
            &attacker,
            &valid("user:default/x"),
        ),
    ));
    // Header-borne key locations and keys.
    let mut jku = header(Algorithm::ES256, "attacker");
    jku.jku = Some(evil.url.clone());
    attacks.push((
        "jku to the attacker's JWKS",
        sign_with(jku, &attacker, &valid("user:default/x")),
    ));
    let mut x5u = header(Algorithm::ES256, "attacker");
    x5u.x5u = Some(evil.url.clone());
    attacks.push((
        "x5u to the attacker's server",
        sign_with(x5u, &attacker, &valid("user:default/x")),
    ));
    let mut embedded = header(Algorithm::ES256, "attacker");
    embedded.jwk = Some(serde_json::from_value(attacker.jwk.clone()).unwrap());
    attacks.push((
        "embedded jwk",
        sign_with(embedded, &attacker, &valid("user:default/x")),
    ));
    // Claims.
    let mut expired = valid("user:default/x");
    expired["exp"] = json!(now() - 120);
    attacks.push(("expired (beyond the 30s leeway)", sign(&good, &expired)));
    let mut early = valid("user:default/x");
    early["nbf"] = json!(now() + 600);
    attacks.push(("nbf in the future", sign(&good, &early)));
    let mut aud = valid("user:default/x");
    aud["aud"] = json!("backstage");
    attacks.push(("wrong aud", sign(&good, &aud)));
    let mut no_aud = valid("user:default/x");
    no_aud.as_object_mut().unwrap().remove("aud");
    attacks.push(("no aud", sign(&good, &no_aud)));
    let mut iss = valid("user:default/x");
    iss["iss"] = json!("https://evil.example.com/api/auth");
    attacks.push(("wrong iss", sign(&good, &iss)));
    let mut no_exp = valid("user:default/x");
    no_exp.as_object_mut().unwrap().remove("exp");
    attacks.push(("no exp", sign(&good, &no_exp)));
    let mut no_sub = valid("user:default/x");
    no_sub.as_object_mut().unwrap().remove("sub");
    attacks.push(("no sub", sign(&good, &no_sub)));
    // Oversize: validly signed, but over the 8 KiB limit.
    let mut big = valid("user:default/x");
    big["pad"] = json!("x".repeat(9 * 1024));
    let big = sign(&good, &big);
    assert!(big.len() > 8 * 1024);
    attacks.push(("oversize", big));
    // Not JWTs at all, or tampered.
    let ok = sign(&good, &valid("user:default/x"));
    let (head, rest) = ok.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let tampered = format!(
        "{head}.{}.{sig}",
        b64(valid("user:default/admin").to_string().as_bytes())
    );
    attacks.push(("tampered payload", tampered));
    attacks.push(("truncated signature", ok[..ok.len() - 4].to_string()));
    for junk in ["not-a-jwt", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9", "sa-c"] {
        attacks.push(("non-JWT string", junk.to_string()));
    }

    for (what, t) in &attacks {
        for (route, url) in [
            ("path route", url.clone()),
            (
                "header route",
                format!("{}/proxy/api/v1/namespaces/a/configmaps", base(&app)),
            ),
        ] {
            let r = send(
                "GET",
                &url,
                Some(&bearer(t)),
                &[("x-kubernetes-cluster", "c")],
                None,
            )
            .await;
            assert_invalid_token(&r, &format!("{what} ({route})"), t);
            let why = match *what {
                "alg none" | "alg None, signature kept" | "non-JWT string" => {
                    "the token is not a JWT kubeplex accepts"
                }
                "HS256 with the RSA public key as secret" => "no key kubeplex trusts",
                "HS256 with the RSA public key as secret, kid of the JWKS key" => {
                    "algorithm HS256 is not one its key may verify"
                }
                "jku to the attacker's JWKS" | "x5u to the attacker's server" | "embedded jwk" => {
                    "signing key (kid) is not one kubeplex trusts"
                }
                "kid naming another trusted key"
                | "the attacker's key under a trusted kid"
                | "tampered payload" => "signature does not verify",
                "expired (beyond the 30s leeway)" => "the token has expired",
                "nbf in the future" => "not valid yet",
                "wrong aud" => "(aud)",
                "no aud" => r#"lacks the claim "aud""#,
                "wrong iss" => "(iss)",
                "no exp" => r#"lacks the claim "exp""#,
                "no sub" => r#"lacks the claim "sub""#,
                "oversize" => "larger than 8192 bytes",
                // Four characters fewer still decode as base64url when the signature's
                // last bits happen to be zero: then it is a signature that does not verify.
                "truncated signature" if !r.message().contains("malformed") => {
                    "signature does not verify"
                }
                "truncated signature" => "malformed",
                other => panic!("no reason for {other}"),
            };
            assert!(r.message().contains(why), "{what}: {}", r.message());
        }
    }
    // No token, or not a bearer one.
    for (what, authorization) in [
        ("no Authorization", None),
        ("empty bearer", Some("Bearer ".to_string())),
        ("Basic", Some("Basic YWRtaW46YWRtaW4=".to_string())),
        ("bare token", Some(ok.clone())),
    ] {
        let r = send("GET", &url, authorization.as_deref(), &[], None).await;
        assert_invalid_token(&r, what, "");
    }
    let r = send("GET", &format!("{}/clusters", base(&app)), None, &[], None).await;
    assert_invalid_token(&r, "GET /clusters without a token", "");
    assert_eq!(
        up.recorded().len(),
        before,
        "a refused request went upstream"
    );
    assert_eq!(evil.hits(), 0, "the attacker's JWKS server was contacted");
}

// ---------------------------------------------------------------------------------------
// 3. The JWKS URL over time
// ---------------------------------------------------------------------------------------

/// kubeplex verifying with `jwks_server` only, in front of a recording upstream `c`.
async fn jwks_app(jwks_server: &JwksServer, up: &Upstream) -> (RunningApp, String) {
    let auth = format!(
        "    mode: jwt\n    jwksUrl: {}\n    policy:\n      - {{subjects: ['*'], effect: allow}}\n",
        q(&jwks_server.url)
    );
    let app = app(&config(&auth, &[cluster("c", &up.url, "sa-c", false)])).await;
    let url = format!("{}/clusters/c/api/v1/namespaces/a/configmaps", base(&app));
    (app, url)
}

/// Sends a fresh token of `key` every 250 ms until kubeplex accepts it (at most `limit`);
/// how long that took, `None` if never.
async fn until_accepted(url: &str, key: &Key, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if get(url, &token(key, "user:default/rotated", &[]))
            .await
            .status
            == 200
        {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// Sends a fresh token of the unknown `key` every 250 ms (each refused) until the JWKS
/// server got `hits` requests (at most `limit`).
async fn until_refetched(
    url: &str,
    key: &Key,
    jwks_server: &JwksServer,
    hits: usize,
    limit: Duration,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        let r = get(url, &token(key, "user:default/unknown", &[])).await;
        assert_eq!(r.status, 401, "{r:?}");
        if jwks_server.hits() >= hits {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// Rotation: a new `kid` is refused until the next refetch (at most one per 30 s, however
/// many unknown `kid`s arrive), then accepted. Outages (500, connection closed): the
/// failed refetch keeps the last good keys. The three run side by side (about 31 s).
#[actix_web::test]
async fn jwks_rotation_outages_and_the_refetch_rate() {
    let rotation = async {
        let old = es256("old");
        let new = es256("new");
        let js = JwksServer::start(Jwks::Keys(jwks(&[&old]))).await;
        let up = Upstream::ok().await;
        let (_app, url) = jwks_app(&js, &up).await;
        assert_eq!(
            get(&url, &token(&old, "user:default/a", &[])).await.status,
            200
        );
        let fetched = Instant::now();
        assert_eq!(js.hits(), 1);
        js.set(Jwks::Keys(jwks(&[&new, &old])));
        // A burst of unknown kids: the key set was fetched just now, so no refetch.
        let stranger = es256("stranger");
        let burst: Vec<String> = (0..40)
            .map(|i| match i % 2 {
                0 => token(&new, "user:default/burst", &[]),
                _ => token(&stranger, "user:default/burst", &[]),
            })
            .collect();
        let answers = join_all(burst.iter().map(|t| get(&url, t))).await;
        assert!(answers.iter().all(|r| r.status == 401), "{answers:?}");
        assert_eq!(js.hits(), 1, "a burst of unknown kids refetched the JWKS");
        let took = until_accepted(&url, &new, Duration::from_secs(45))
            .await
            .expect("the rotated key is accepted after the refetch");
        let since_fetch = fetched.elapsed();
        assert!(
            since_fetch >= Duration::from_secs(29),
            "refetched {since_fetch:?} after the last fetch ({took:?} of polling)"
        );
        assert_eq!(js.hits(), 2, "one refetch");
        // Both keys of the new set verify; the old token still does.
        assert_eq!(
            get(&url, &token(&old, "user:default/a", &[])).await.status,
            200
        );
        assert_eq!(
            get(&url, &token(&new, "user:default/b", &[])).await.status,
            200
        );
        assert_eq!(js.hits(), 2);
    };
    let outage = |fault: Jwks| async move {
        let key = es256("k1");
        let js = JwksServer::start(Jwks::Keys(jwks(&[&key]))).await;
        let up = Upstream::ok().await;
        let (_app, url) = jwks_app(&js, &up).await;
        assert_eq!(
            get(&url, &token(&key, "user:default/a", &[])).await.status,
            200
        );
        js.set(fault);
        // An unknown kid asks for a refetch; the first one allowed (30 s after the
        // fetch) fails.
        let unknown = es256("k2");
        assert!(
            until_refetched(&url, &unknown, &js, 2, Duration::from_secs(45)).await,
            "no refetch within 45s"
        );
        // The keys fetched before are still used.
        for _ in 0..3 {
            assert_eq!(
                get(&url, &token(&key, "user:default/a", &[])).await.status,
                200
            );
        }
        assert_eq!(js.hits(), 2);
    };
    futures_util::join!(rotation, outage(Jwks::Status(500)), outage(Jwks::Close));
}

/// Requests arriving together before the first fetch (or during a refetch) all wait for
/// it: none is refused because another one is fetching.
#[actix_web::test]
async fn concurrent_first_requests_wait_for_the_one_jwks_fetch() {
    let key = es256("k");
    let js = JwksServer::start(Jwks::Keys(jwks(&[&key]))).await;
    *js.delay.lock().unwrap() = Duration::from_millis(300);
    let up = Upstream::ok().await;
    let (_app, url) = jwks_app(&js, &up).await;
    let tokens: Vec<String> = (0..8).map(|_| token(&key, "user:default/a", &[])).collect();
    let answers = join_all(tokens.iter().map(|t| get(&url, t))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200; 8], "{answers:?}");
    assert_eq!(js.hits(), 1);
}

// ---------------------------------------------------------------------------------------
// 4. Backstage's tokens
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn backstage_user_tokens_with_only_the_jwks_url_and_external_access_static_tokens() {
    let key = es256("backstage-key-1");
    let js = JwksServer::start(Jwks::Keys(jwks(&[&key]))).await;
    let up = Upstream::ok().await;
    let yaml = format!(
        "{}backend:\n  auth:\n    externalAccess:\n\
         \x20     - type: static\n        options: {{token: ci-token-0123456789, subject: ci-bot}}\n\
         \x20     - type: legacy\n        options: {{secret: bGVnYWN5LXNlY3JldC0wMTIzNDU2Nzg5, subject: legacy}}\n",
        config(
            &format!(
                "    mode: jwt\n    jwksUrl: {}\n    policy:\n\
                 \x20     - {{subjects: ['group:default/team-a'], effect: allow}}\n\
                 \x20     - {{subjects: [ci-bot], verbs: [get, list], effect: allow}}\n",
                q(&js.url)
            ),
            &[cluster("c", &up.url, "sa-c", false)]
        )
    );
    let app = app(&yaml).await;
    let url = format!("{}/clusters/c/api/v1/namespaces/a/configmaps", base(&app));
    // A Backstage user token as Backstage's auth backend issues it.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(key.kid.clone());
    h.typ = Some("vnd.backstage.user".into());
    let ent = ["user:default/alice", "group:default/team-a"];
    let mut older = claims("user:default/alice", &ent);
    older["iss"] = json!("http://localhost:7007/api/auth");
    older["aud"] = json!("backstage");
    let mut newer = claims("user:default/alice", &ent);
    newer["iss"] = json!("http://localhost:7007/api/auth");
    newer["uip"] = json!("proof");
    for (what, c) in [("older, aud backstage", &older), ("newer, no aud", &newer)] {
        let r = get(&url, &sign_with(h.clone(), &key, c)).await;
        assert_eq!(r.status, 200, "{what}: {r:?}");
    }
    // Not in team-a: default deny.
    let mut outsider = claims("user:default/eve", &["user:default/eve"]);
    outsider["aud"] = json!("backstage");
    let r = get(&url, &sign_with(h.clone(), &key, &outsider)).await;
    assert_eq!(r.status, 403, "{r:?}");
    // The external-access static token, with its subject's rights.
    assert_eq!(get(&url, "ci-token-0123456789").await.status, 200);
    let r = send(
        "DELETE",
        &format!("{url}/x"),
        Some("Bearer ci-token-0123456789"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.message(),
        "ci-bot may not delete configmaps in namespace a in cluster config:c"
    );
    for wrong in [
        "ci-token-012345678",
        "ci-token-0123456789x",
        "CI-TOKEN-0123456789",
    ] {
        assert_invalid_token(&get(&url, wrong).await, wrong, wrong);
    }
    let seen = authorizations(&up);
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|a| a == "Bearer sa-c"), "{seen:?}");
}

// ---------------------------------------------------------------------------------------
// 5. The policy matrix
// ---------------------------------------------------------------------------------------

/// The policy of the matrix, in order (first match wins).
const POLICY: &str = "    policy:\n\
\x20     - {subjects: ['user:default/mallory'], clusters: ['*'], namespaces: ['*'], verbs: ['*'], effect: deny}\n\
\x20     - {subjects: ['group:default/platform'], clusters: ['*'], namespaces: ['*'], verbs: ['*'], effect: allow}\n\
\x20     - {subjects: ['group:default/platform'], clusters: [vault], namespaces: ['*'], verbs: ['*'], effect: deny}\n\
\x20     - {subjects: ['group:default/team-a'], clusters: [prod], namespaces: [team-a], verbs: [exec], effect: deny}\n\
\x20     - {subjects: ['group:default/team-a'], clusters: [prod, staging], namespaces: [team-a], verbs: [get, list, watch, log, exec], effect: allow}\n\
\x20     - {subjects: ['group:default/team-a'], clusters: ['d*'], namespaces: ['*'], verbs: ['*'], effect: allow}\n\
\x20     - {subjects: ['user:default/alice'], clusters: ['config:staging'], namespaces: ['shared-*'], verbs: [create], effect: allow}\n";

/// kubeplex with [`POLICY`] in front of four simulated clusters (prod, staging, dev,
/// vault), each reached with its own service-account token.
struct Fleet {
    app: RunningApp,
    sims: Vec<(&'static str, SimServer)>,
    alice: String,
    bob: String,
    mallory: String,
    carol: String,
}

impl Fleet {
    async fn start() -> Fleet {
        let mut sims = Vec::new();
        let mut clusters = Vec::new();
        for name in ["prod", "staging", "dev", "vault"] {
            let token = format!("sa-{name}");
            let s = sim(&sim_config(name, &[&token])).await;
            clusters.push(cluster(name, &url_of(&s), &token, false));
            sims.push((name, s));
        }
        let auth = format!("    mode: jwt\n    secrets: [{}]\n{POLICY}", q(SECRET));
        let app = app(&config(&auth, &clusters)).await;
        let hs = hs256(SECRET);
        Fleet {
            app,
            sims,
            alice: token(
                &hs,
                "user:default/alice",
                &["user:default/alice", "group:default/team-a"],
            ),
            bob: token(&hs, "user:default/bob", &["group:default/platform"]),
            mallory: token(&hs, "user:default/mallory", &["group:default/team-a"]),
            carol: token(&hs, "user:default/carol", &[]),
        }
    }

    fn sim(&self, name: &str) -> &SimServer {
        &self.sims.iter().find(|(n, _)| *n == name).unwrap().1
    }

    /// Requests reaching each simulated cluster so far.
    fn counts(&self) -> Vec<u64> {
        self.sims.iter().map(|(_, s)| s.requests()).collect()
    }
}

/// One way to a cluster: route name, URL, extra headers.
type Route = (&'static str, String, Vec<(&'static str, &'static str)>);

/// The two proxy routes to `cluster` for `path`.
fn routes(app: &RunningApp, cluster: &'static str, path: &str) -> [Route; 2] {
    [
        (
            "header route",
            format!("{}/proxy{path}", base(app)),
            vec![("x-kubernetes-cluster", cluster)],
        ),
        (
            "path route",
            format!("{}/clusters/{cluster}{path}", base(app)),
            vec![],
        ),
    ]
}

#[actix_web::test]
async fn the_policy_matrix_over_both_routes() {
    let f = Fleet::start().await;
    let (alice, bob, mallory, carol) = (&f.alice, &f.bob, &f.mallory, &f.carol);
    let cm =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    // (who, subject, cluster, method, path, expected status; 0: refused by the policy)
    let matrix: Vec<(&String, &str, &'static str, &str, &str, u16)> = vec![
        (
            alice,
            "user:default/alice",
            "prod",
            "GET",
            "/api/v1/namespaces/team-a/pods",
            200,
        ),
        (
            alice,
            "user:default/alice",
            "prod",
            "GET",
            "/api/v1/namespaces/team-a/pods/toolbox",
            200,
        ),
        (
            alice,
            "user:default/alice",
            "prod",
            "GET",
            "/api/v1/namespaces/team-a/pods/toolbox/log",
            200,
        ),
        (
            alice,
            "user:default/alice",
            "prod",
            "GET",
            "/api/v1/namespaces/team-a/configmaps?watch=1&timeoutSeconds=1",
            200,
        ),
        (alice, "user:default/alice", "prod", "GET", "/api", 200),
        (
            alice,
            "user:default/alice",
            "prod",
            "GET",
            "/api/v1/namespaces/team-b/pods",
            0,
        ),
        (
            alice,
            "user:default/alice",
            "prod",
            "GET",
            "/api/v1/pods",
            0,
        ),
        (
            alice,
            "user:default/alice",
            "prod",
            "DELETE",
            "/api/v1/namespaces/team-a/pods/toolbox",
            0,
        ),
        (
            alice,
            "user:default/alice",
            "prod",
            "POST",
            "/api/v1/namespaces/team-a/configmaps",
            0,
        ),
        (
            alice,
            "user:default/alice",
            "staging",
            "GET",
            "/api/v1/namespaces/team-a/configmaps",
            200,
        ),
        (
            alice,
            "user:default/alice",
            "staging",
            "POST",
            "/api/v1/namespaces/shared-x/configmaps",
            201,
        ),
        (
            alice,
            "user:default/alice",
            "staging",
            "POST",
            "/api/v1/namespaces/team-a/configmaps",
            0,
        ),
        (
            alice,
            "user:default/alice",
            "staging",
            "PATCH",
            "/api/v1/namespaces/shared-x/configmaps/x",
            0,
        ),
        (
            alice,
            "user:default/alice",
            "dev",
            "DELETE",
            "/api/v1/namespaces/team-b/configmaps/nothing",
            404,
        ),
        (
            alice,
            "user:default/alice",
            "dev",
            "GET",
            "/apis/apps/v1/deployments",
            200,
        ),
        (alice, "user:default/alice", "vault", "GET", "/api", 0),
        (
            alice,
            "user:default/alice",
            "vault",
            "GET",
            "/api/v1/namespaces/team-a/pods",
            0,
        ),
        (bob, "user:default/bob", "vault", "GET", "/api/v1/pods", 200),
        (
            bob,
            "user:default/bob",
            "prod",
            "POST",
            "/api/v1/namespaces/team-b/configmaps",
            201,
        ),
        (
            mallory,
            "user:default/mallory",
            "prod",
            "GET",
            "/api/v1/namespaces/team-a/pods",
            0,
        ),
        (mallory, "user:default/mallory", "dev", "GET", "/api", 0),
        (
            carol,
            "user:default/carol",
            "prod",
            "GET",
            "/api/v1/namespaces/team-a/pods",
            0,
        ),
        (carol, "user:default/carol", "dev", "GET", "/api", 0),
    ];
    let mut n = 0;
    for (who, subject, c, method, path, want) in &matrix {
        for (route, url, headers) in routes(&f.app, c, path) {
            n += 1;
            let body = (*method == "POST").then(|| cm(&format!("cm-{n}")));
            let before = f.counts();
            let r = send(method, &url, Some(&bearer(who)), &headers, body.as_ref()).await;
            let what = format!("{subject} {method} {path} on {c} ({route})");
            if *want != 0 {
                assert_eq!(r.status, *want, "{what}: {r:?}");
                continue;
            }
            assert_eq!(r.status, 403, "{what}: {r:?}");
            assert_eq!(
                f.counts(),
                before,
                "{what}: a refused request went upstream"
            );
            let b = &r.body;
            assert_eq!(
                (b["kind"].as_str(), b["reason"].as_str(), b["code"].as_u64()),
                (Some("Status"), Some("Forbidden"), Some(403)),
                "{what}: {b}"
            );
            let m = r.message();
            let verb = kubeplex_verb(method, path);
            assert!(
                m.starts_with(&format!("{subject} may not {verb}"))
                    && m.ends_with(&format!("in cluster config:{c}")),
                "{what}: {m}"
            );
            // The rules stay private.
            for secret in [
                "group:default",
                "platform",
                "deny",
                "allow",
                "rule",
                "shared-*",
                "d*",
            ] {
                assert!(!m.contains(secret), "{what}: {m} reveals {secret:?}");
            }
        }
    }
}

/// The verb kubeplex names for a request of the matrix.
fn kubeplex_verb(method: &str, path: &str) -> &'static str {
    let tail = path.split('?').next().unwrap();
    let segs = tail.split('/').filter(|s| !s.is_empty()).count();
    match method {
        "POST" => "create",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ if tail.ends_with("/log") => "log",
        _ if tail == "/api" || segs == 6 => "get",
        _ => "list",
    }
}

#[actix_web::test]
async fn the_clusters_list_shows_only_usable_clusters() {
    let f = Fleet::start().await;
    let names = |r: &Resp| -> Vec<String> {
        let mut v: Vec<String> = r.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{r:?}"))
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let url = format!("{}/clusters", base(&f.app));
    for (who, want) in [
        (&f.alice, vec!["dev", "prod", "staging"]),
        (&f.bob, vec!["dev", "prod", "staging", "vault"]),
        (&f.mallory, vec![]),
        (&f.carol, vec![]),
    ] {
        let r = get(&url, who).await;
        assert_eq!(r.status, 200);
        assert_eq!(names(&r), want);
    }
}

#[actix_web::test]
async fn aggregation_leaves_denied_members_out_silently() {
    let f = Fleet::start().await;
    let agg = |path: &str| format!("{}/aggregate{path}", base(&f.app));
    // Alice may list team-a on prod, staging and dev, not on vault.
    let before = f.counts();
    let r = get(&agg("/api/v1/namespaces/team-a/pods"), &f.alice).await;
    assert_eq!(r.status, 200, "{r:?}");
    let after = f.counts();
    let asked: Vec<bool> = before.iter().zip(&after).map(|(b, a)| a > b).collect();
    assert_eq!(
        asked,
        [true, true, true, false],
        "prod, staging, dev asked; vault not"
    );
    assert!(
        r.body["clusterErrors"].as_array().is_none_or(Vec::is_empty),
        "a denied member listed as an error: {}",
        r.body
    );
    let mut keys: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["metadata"]["annotations"]["kubeplex.io/cluster"]
                .as_str()
                .unwrap()
        })
        .collect();
    keys.sort();
    assert_eq!(keys, ["config:dev", "config:prod", "config:staging"]);
    // team-b: only dev (team-a's wildcard rule there).
    let before = f.counts();
    let r = get(&agg("/api/v1/namespaces/team-b/pods"), &f.alice).await;
    assert_eq!(r.status, 200, "{r:?}");
    let after = f.counts();
    let asked: Vec<bool> = before.iter().zip(&after).map(|(b, a)| a > b).collect();
    assert_eq!(asked, [false, false, true, false]);
    // Bob all four; the header narrows the members, the policy still applies.
    let r = get(&agg("/api/v1/namespaces/team-b/pods"), &f.bob).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 4, "{}", r.body);
    let r = send(
        "GET",
        &agg("/api/v1/namespaces/team-a/pods"),
        Some(&bearer(&f.alice)),
        &[("x-kubernetes-cluster", "prod,vault")],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    // Nobody usable: a 403 naming the caller; nothing asked.
    for (who, subject) in [
        (&f.carol, "user:default/carol"),
        (&f.mallory, "user:default/mallory"),
    ] {
        let before = f.counts();
        let r = get(&agg("/api/v1/namespaces/team-a/pods"), who).await;
        assert_eq!(r.status, 403, "{r:?}");
        assert!(
            r.message().starts_with(&format!("{subject} may not list")),
            "{r:?}"
        );
        assert_eq!(f.counts(), before);
    }
    // Without a token: 401, nothing asked.
    let r = send("GET", &agg("/api/v1/pods"), None, &[], None).await;
    assert_invalid_token(&r, "aggregate without a token", "");
}

#[actix_web::test]
async fn exec_upgrades_follow_the_policy_before_any_upgrade() {
    let f = Fleet::start().await;
    let ws = |url: &str| url.replacen("http://", "ws://", 1);
    let path = "/api/v1/namespaces/team-a/pods/toolbox/exec?command=echo&command=hi&stdout=true";
    // Allowed on staging, through both routes.
    for (route, url, headers) in routes(&f.app, "staging", path) {
        let auth = bearer(&f.alice);
        let mut h: Vec<(&str, &str)> = headers.clone();
        h.push(("authorization", &auth));
        let (mut sock, _) = support_ws::connect(&ws(&url), &["v5.channel.k8s.io"], &h)
            .await
            .unwrap_or_else(|e| panic!("{route}: {e}"));
        let (out, _, status) = support_ws::collect_exec(&mut sock).await;
        assert_eq!(out, "hi\n", "{route}");
        assert!(status.contains("Success"), "{route}: {status}");
    }
    // Denied on prod (deny before allow), for carol anywhere, and without a token.
    let cases: [(&str, &'static str, Option<&String>, u16); 4] = [
        ("user:default/alice", "prod", Some(&f.alice), 403),
        ("user:default/carol", "dev", Some(&f.carol), 403),
        ("user:default/mallory", "staging", Some(&f.mallory), 403),
        ("-", "staging", None, 401),
    ];
    for (subject, c, who, want) in cases {
        for (route, url, headers) in routes(&f.app, c, path) {
            let auth = who.map(|t| bearer(t));
            let mut h: Vec<(&str, &str)> = headers.clone();
            if let Some(a) = &auth {
                h.push(("authorization", a));
            }
            let before = f.sim(c).requests();
            let (status, body) = support_ws::refused(&ws(&url), &["v5.channel.k8s.io"], &h).await;
            assert_eq!(status, want, "{subject} exec on {c} ({route}): {body}");
            assert_eq!(body["kind"], "Status", "{body}");
            if want == 403 {
                assert_eq!(
                    body["message"],
                    format!(
                        "{subject} may not exec pods in namespace team-a in cluster config:{c}"
                    ),
                );
            }
            assert_eq!(f.sim(c).requests(), before, "the upgrade went upstream");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 6. Impersonation
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn impersonation_lets_the_cluster_decide_per_portal_user() {
    // One simulated cluster: `sa-imp` may impersonate; alice may touch team-a only, the
    // platform group everything; `sa-plain` may not impersonate.
    let mut cfg = sim_config("imp", &["sa-imp", "sa-plain"]);
    cfg.impersonation = SimImpersonation {
        tokens: vec!["sa-imp".into()],
        users: vec![SimGrant {
            name: "user:default/alice".into(),
            namespaces: Some(vec!["team-a".into()]),
            verbs: None,
        }],
        groups: vec![SimGrant {
            name: "group:default/platform".into(),
            namespaces: None,
            verbs: Some(vec!["get".into(), "list".into(), "watch".into()]),
        }],
    };
    let s = sim(&cfg).await;
    let auth = format!(
        "    mode: jwt\n    secrets: [{}]\n    impersonateExtraClaims: [email]\n\
         \x20   policy:\n      - {{subjects: ['*'], effect: allow}}\n",
        q(SECRET)
    );
    let app = app(&config(
        &auth,
        &[
            cluster("imp", &url_of(&s), "sa-imp", true),
            cluster("direct", &url_of(&s), "sa-imp", false),
            cluster("plain", &url_of(&s), "sa-plain", true),
        ],
    ))
    .await;
    let hs = hs256(SECRET);
    let mut c = claims(
        "user:default/alice",
        &["user:default/alice", "group:default/team-a"],
    );
    c["email"] = json!("alice@example.com");
    let alice = sign(&hs, &c);
    let bob = token(&hs, "user:default/bob", &["group:default/platform"]);
    let url =
        |c: &str, ns: &str| format!("{}/clusters/{c}/api/v1/namespaces/{ns}/pods", base(&app));
    let last = || s.seen().last().cloned().unwrap();

    // Alice lists her namespace as herself; the Impersonate-* she sends are replaced.
    let r = send(
        "GET",
        &url("imp", "team-a"),
        Some(&bearer(&alice)),
        &[
            ("impersonate-user", "system:admin"),
            ("impersonate-group", "system:masters"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = last();
    assert_eq!(seen.token, Some(0), "the cluster's credential");
    assert_eq!(seen.impersonate_user.as_deref(), Some("user:default/alice"));
    assert_eq!(
        seen.impersonate_groups,
        ["user:default/alice", "group:default/team-a"]
    );
    assert_eq!(
        seen.impersonate_extra,
        [("email".to_string(), "alice@example.com".to_string())]
    );
    assert_eq!(seen.user.as_deref(), Some("user:default/alice"));
    // The cluster refuses her another namespace, in its own words.
    let r = get(&url("imp", "team-b"), &alice).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.message(),
        r#"pods is forbidden: User "user:default/alice" cannot list resource "pods" in API group "" in the namespace "team-b""#
    );
    assert_eq!(
        last().impersonate_user.as_deref(),
        Some("user:default/alice")
    );
    // The same namespace through a cluster without impersonation: the service account's
    // rights, no Impersonate-* at all (not even the caller's).
    let r = send(
        "GET",
        &url("direct", "team-b"),
        Some(&bearer(&alice)),
        &[("impersonate-user", "system:admin")],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = last();
    assert_eq!((seen.token, seen.impersonate_user.clone()), (Some(0), None));
    assert!(seen.impersonate_groups.is_empty() && seen.impersonate_extra.is_empty());
    // Bob's group reads everywhere, writes nowhere.
    assert_eq!(get(&url("imp", "team-b"), &bob).await.status, 200);
    assert_eq!(last().impersonate_groups, ["group:default/platform"]);
    assert!(
        last().impersonate_extra.is_empty(),
        "bob's token has no email"
    );
    let r = send(
        "POST",
        &format!(
            "{}/clusters/imp/api/v1/namespaces/team-b/configmaps",
            base(&app)
        ),
        Some(&bearer(&bob)),
        &[],
        Some(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.message()
            .contains(r#"User "user:default/bob" cannot create"#),
        "{r:?}"
    );
    // A credential that may not impersonate: the cluster's 403.
    let r = get(&url("plain", "team-a"), &alice).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.message(),
        r#"users "user:default/alice" is forbidden: User "sim-user-2" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
    assert_eq!((last().token, last().user), (Some(1), None));
    // Exec as alice: her namespace only.
    let ws = |c: &str, ns: &str| {
        format!(
            "ws://{}/api/kubernetes/clusters/{c}/api/v1/namespaces/{ns}/pods/toolbox/exec?command=echo&command=me&stdout=true",
            app.addr
        )
    };
    let auth = bearer(&alice);
    let h = [("authorization", auth.as_str())];
    let (mut sock, _) = support_ws::connect(&ws("imp", "team-a"), &["v5.channel.k8s.io"], &h)
        .await
        .unwrap();
    assert_eq!(support_ws::collect_exec(&mut sock).await.0, "me\n");
    assert_eq!(
        last().impersonate_user.as_deref(),
        Some("user:default/alice")
    );
    let (status, body) =
        support_ws::refused(&ws("imp", "team-b"), &["v5.channel.k8s.io"], &h).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(r#"User "user:default/alice" cannot exec"#),
        "{body}"
    );
    // Aggregation per user: bob's answer is never served to alice (and back).
    let agg = format!("{}/aggregate/api/v1/namespaces/team-b/pods", base(&app));
    let one = [("x-kubernetes-cluster", "imp")];
    for _ in 0..2 {
        let r = send("GET", &agg, Some(&bearer(&bob)), &one, None).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            !r.body["items"].as_array().unwrap().is_empty(),
            "{}",
            r.body
        );
        // The one member refused her: "every cluster failed", with its 403.
        let r = send("GET", &agg, Some(&bearer(&alice)), &one, None).await;
        assert_eq!(r.status, 502, "alice got bob's answer: {r:?}");
        assert!(
            r.message()
                .contains(r#"pods is forbidden: User "user:default/alice" cannot list"#),
            "{r:?}"
        );
    }
}

/// The simulator's impersonation on its own: refused for tokens that may not, groups or
/// extras without a user, and the record of what it saw.
#[actix_web::test]
async fn the_simulator_checks_impersonation_like_the_api_server() {
    let mut cfg = sim_config("imp", &["admin", "viewer"]);
    cfg.impersonation = SimImpersonation {
        tokens: vec!["admin".into()],
        users: vec![SimGrant {
            name: "ann".into(),
            namespaces: Some(vec!["team-a".into()]),
            verbs: Some(vec!["get".into(), "list".into()]),
        }],
        groups: vec![SimGrant {
            name: "writers".into(),
            namespaces: Some(vec!["team-b".into()]),
            verbs: None,
        }],
    };
    let s = sim(&cfg).await;
    let u = |ns: &str| format!("{}/api/v1/namespaces/{ns}/configmaps", url_of(&s));
    let as_ann = |groups: &[&'static str]| {
        let mut h = vec![("impersonate-user", "ann")];
        h.extend(groups.iter().map(|g| ("impersonate-group", *g)));
        h
    };
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let admin = Some("Bearer admin");
    assert_eq!(
        send("GET", &u("team-a"), admin, &as_ann(&[]), None)
            .await
            .status,
        200
    );
    let r = send("GET", &u("team-b"), admin, &as_ann(&[]), None).await;
    assert_eq!(
        (r.status, r.message()),
        (
            403,
            r#"configmaps is forbidden: User "ann" cannot list resource "configmaps" in API group "" in the namespace "team-b""#
                .to_string()
        )
    );
    let r = send("POST", &u("team-a"), admin, &as_ann(&[]), Some(&cm)).await;
    assert_eq!(r.status, 403, "{r:?}");
    // A group adds its rights to the user's.
    let r = send(
        "POST",
        &u("team-b"),
        admin,
        &as_ann(&["writers"]),
        Some(&cm),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        send("GET", &u("team-a"), admin, &as_ann(&["writers"]), None)
            .await
            .status,
        200
    );
    // Someone the cluster knows nothing of may do nothing.
    let r = send(
        "GET",
        &u("team-a"),
        admin,
        &[("impersonate-user", "nobody")],
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    // The viewer token may not impersonate.
    let r = send(
        "GET",
        &u("team-a"),
        Some("Bearer viewer"),
        &as_ann(&[]),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (
            403,
            r#"users "ann" is forbidden: User "sim-user-2" cannot impersonate resource "users" in API group "" at the cluster scope"#
                .to_string()
        )
    );
    // Groups without a user.
    let r = send(
        "GET",
        &u("team-a"),
        admin,
        &[("impersonate-group", "writers")],
        None,
    )
    .await;
    assert_eq!(r.status, 500, "{r:?}");
    // Without impersonation the tokens keep their own rights.
    assert_eq!(
        send("GET", &u("team-b"), Some("Bearer viewer"), &[], None)
            .await
            .status,
        200
    );
    // What it saw.
    let seen = s.seen();
    let last = seen.last().unwrap();
    assert_eq!(
        (last.token, last.user.as_deref()),
        (Some(1), Some("sim-user-2"))
    );
    assert_eq!(last.path, "/api/v1/namespaces/team-b/configmaps");
    let refused = &seen[seen.len() - 3];
    assert_eq!(refused.impersonate_user.as_deref(), Some("ann"));
    assert_eq!((refused.token, refused.user.as_deref()), (Some(1), None));
    let grouped = seen
        .iter()
        .find(|r| r.method == "POST" && r.impersonate_groups == ["writers"])
        .unwrap();
    assert_eq!(grouped.user.as_deref(), Some("ann"));
    let r = send("GET", &u("team-a"), Some("Bearer wrong"), &[], None).await;
    assert_eq!(r.status, 401);
    assert_eq!(s.seen().last().unwrap().token, None);
}

// ---------------------------------------------------------------------------------------
// 7. The portal token never goes upstream
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn the_portal_token_never_goes_upstream_on_any_route() {
    let up = Upstream::start(|_| {
        Reply::json(r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":[]}"#)
    })
    .await;
    let mut cfg = sim_config("sim", &["sa-sim"]);
    cfg.impersonation = SimImpersonation {
        tokens: vec!["sa-sim".into()],
        groups: vec![SimGrant {
            name: "group:default/team-a".into(),
            namespaces: None,
            verbs: None,
        }],
        ..SimImpersonation::default()
    };
    let s = sim(&cfg).await;
    let raw = JwksServer::start(Jwks::Status(403)).await;
    let auth = format!(
        "    mode: jwt\n    secrets: [{}]\n    policy:\n      - {{subjects: ['*'], effect: allow}}\n",
        q(SECRET)
    );
    let app = app(&config(
        &auth,
        &[
            cluster("rec", &up.url, "sa-rec", false),
            cluster("sim", &url_of(&s), "sa-sim", true),
            cluster("raw", raw.url.trim_end_matches(JWKS_PATH), "sa-raw", false),
        ],
    ))
    .await;
    let portal = token(
        &hs256(SECRET),
        "user:default/alice",
        &["group:default/team-a"],
    );
    let auth = bearer(&portal);
    let b = base(&app);
    let path = "/api/v1/namespaces/team-a/configmaps";
    // Header route, path route, aggregate.
    for c in ["rec", "sim"] {
        let r = send(
            "GET",
            &format!("{b}/proxy{path}"),
            Some(&auth),
            &[("x-kubernetes-cluster", c)],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{c}: {r:?}");
        let r = get(&format!("{b}/clusters/{c}{path}"), &portal).await;
        assert_eq!(r.status, 200, "{c}: {r:?}");
    }
    let r = get(&format!("{b}/aggregate{path}"), &portal).await;
    assert_eq!(r.status, 200, "{r:?}");
    // WebSocket upgrades: exec on the simulator; a raw upstream refuses the upgrade and
    // records the request head it got.
    let ws = |c: &str| {
        format!(
            "ws://{}/api/kubernetes/clusters/{c}/api/v1/namespaces/team-a/pods/toolbox/exec?command=true&stdout=true",
            app.addr
        )
    };
    let h = [("authorization", auth.as_str())];
    let (mut sock, _) = support_ws::connect(&ws("sim"), &["v5.channel.k8s.io"], &h)
        .await
        .unwrap();
    let _ = support_ws::collect_exec(&mut sock).await;
    let (status, _) = support_ws::refused(&ws("raw"), &["v5.channel.k8s.io"], &h).await;
    assert_eq!(status, 403);
    // Backstage's services route (the entity in the body, no provider tokens).
    let entity = json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "web", "namespace": "default",
                     "annotations": {"backstage.io/kubernetes-id": "web"}},
        "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"},
    });
    let r = send(
        "POST",
        &format!("{b}/services/web"),
        Some(&auth),
        &[],
        Some(&json!({"entity": entity, "auth": {}})),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let services_from = up.recorded().len();

    // The recording upstream: every request carried its own credential, nothing else
    // carries the portal token.
    let rec = up.recorded();
    let paths: Vec<&str> = rec.iter().map(|r| r.path.as_str()).collect();
    assert!(
        paths.iter().filter(|p| **p == path).count() >= 3,
        "{paths:?}"
    );
    assert!(
        services_from > 4,
        "the services route asked the recording upstream: {paths:?}"
    );
    for r in &rec {
        assert_eq!(
            r.one("authorization"),
            Some("Bearer sa-rec"),
            "{} {}",
            r.method,
            r.path
        );
        for (n, v) in &r.headers {
            assert!(
                !v.contains(&portal),
                "{n} carries the portal token to {}",
                r.path
            );
        }
        assert!(r.all("impersonate-user").is_empty());
    }
    // The raw upstream: the upgrade request's head.
    let heads = raw.heads();
    let upgrades: Vec<String> = heads
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .filter(|h| h.contains("\r\nupgrade: websocket\r\n"))
        .collect();
    assert_eq!(upgrades.len(), 1, "{heads:?}");
    let head = &upgrades[0];
    assert!(
        head.starts_with("get /api/v1/namespaces/team-a/pods/toolbox/exec?"),
        "{head}"
    );
    for h in &heads {
        let lower = h.to_ascii_lowercase();
        assert!(
            lower.contains("\r\nauthorization: bearer sa-raw\r\n"),
            "{h}"
        );
        assert!(!h.contains(&portal), "{h}");
    }
    // The simulator: every request authenticated with its credential, as alice.
    let seen = s.seen();
    assert!(seen.iter().any(|r| r.path.ends_with("/exec")), "{seen:?}");
    assert!(
        seen.iter().filter(|r| r.path == path).count() >= 3,
        "{seen:?}"
    );
    assert!(
        seen.len() > 6,
        "the services route asked the simulator: {seen:?}"
    );
    for r in &seen {
        assert_eq!(r.token, Some(0), "{r:?}");
        assert_eq!(
            r.impersonate_user.as_deref(),
            Some("user:default/alice"),
            "{r:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 8. Audit lines
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn every_audit_line_carries_the_subject() {
    let s = sim(&sim_config("audited", &["sa-audit"])).await;
    let yaml = format!(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 2\n  aggregate:\n    cacheTtl: 0s\n\
         \x20 auth:\n    mode: jwt\n    secrets: [{}]\n    policy:\n\
         \x20     - {{subjects: ['user:default/alice'], verbs: [get, list, exec], effect: allow}}\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n{}",
        q(SECRET),
        cluster("up", &url_of(&s), "sa-audit", false)
    );
    let kp = KubeplexProcess::spawn(&yaml, "warn,kubeplex=info", &[]);
    let alice = token(&hs256(SECRET), "user:default/alice", &[]);
    let b = format!("http://{}/api/kubernetes", kp.addr);
    let list = format!("{b}/clusters/up/api/v1/namespaces/team-a/configmaps");
    assert_eq!(
        send(
            "GET",
            &list,
            Some(&bearer(&alice)),
            &[("x-request-id", "ok-1")],
            None
        )
        .await
        .status,
        200
    );
    let r = send(
        "DELETE",
        &format!("{list}/x"),
        Some(&bearer(&alice)),
        &[("x-request-id", "denied-1")],
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    let r = send(
        "GET",
        &list,
        Some("Bearer nope"),
        &[("x-request-id", "anon-1")],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        get(
            &format!("{b}/aggregate/api/v1/namespaces/team-a/configmaps"),
            &alice
        )
        .await
        .status,
        200
    );
    let auth = bearer(&alice);
    let (mut sock, _) = support_ws::connect(
        &format!("ws://{}/api/kubernetes/clusters/up/api/v1/namespaces/team-a/pods/toolbox/exec?command=true&stdout=true", kp.addr),
        &["v5.channel.k8s.io"],
        &[("authorization", auth.as_str()), ("x-request-id", "tunnel-1")],
    )
    .await
    .unwrap();
    let _ = support_ws::collect_exec(&mut sock).await;
    drop(sock);
    let audit = || kp.json_logs("kubeplex::audit");
    assert!(
        eventually(Duration::from_secs(10), || audit().len() >= 5).await,
        "{:?}",
        audit()
    );
    let lines = audit();
    let by_id = |id: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no line {id}: {lines:?}"))["fields"]
            .clone()
    };
    assert_eq!(by_id("ok-1")["subject"], "user:default/alice");
    assert_eq!(
        (
            by_id("denied-1")["subject"].clone(),
            by_id("denied-1")["status"].clone()
        ),
        (json!("user:default/alice"), json!(403))
    );
    assert_eq!(by_id("anon-1")["subject"], "-");
    assert_eq!(
        (
            by_id("tunnel-1")["subject"].clone(),
            by_id("tunnel-1")["status"].clone()
        ),
        (json!("user:default/alice"), json!(101))
    );
    let agg = lines
        .iter()
        .find(|l| l["fields"]["cluster"] == "aggregate")
        .unwrap_or_else(|| panic!("no aggregate line: {lines:?}"));
    assert_eq!(agg["fields"]["subject"], "user:default/alice");
    let all = kp.logs.lock().unwrap().join("\n");
    assert!(!all.contains(&alice), "a token in the logs");
}

/// A simulated cluster's impersonation in YAML: `impersonate: true` on a token and
/// `impersonation: {users, groups}` grants, checked like the tokens' own limits.
#[test]
fn the_simulators_impersonation_from_yaml() {
    let yaml = "kubernetes:\n  clusterLocatorMethods:\n    - type: simulated\n      clusters:\n\
                \x20       - name: sim\n          tokens:\n\
                \x20           - {token: admin-token, impersonate: true}\n\
                \x20           - {token: viewer-token, verbs: [get, list]}\n\
                \x20           - plain-token\n\
                \x20         impersonation:\n\
                \x20           users: [{name: ann, namespaces: [team-a], verbs: [get, list]}]\n\
                \x20           groups: [{name: writers}]\n";
    let s = load(yaml);
    let kubeplex::config::LocatorKind::Simulated { clusters } = &s.locators[0].kind else {
        panic!("{:?}", s.locators[0].kind)
    };
    let i = &clusters[0].impersonation;
    assert_eq!(i.tokens, ["admin-token"]);
    assert_eq!(
        i.users,
        [SimGrant {
            name: "ann".into(),
            namespaces: Some(vec!["team-a".into()]),
            verbs: Some(vec!["get".into(), "list".into()]),
        }]
    );
    assert_eq!(
        i.groups,
        [SimGrant {
            name: "writers".into(),
            namespaces: None,
            verbs: None,
        }]
    );
    assert_eq!(clusters[0].tokens.len(), 3);
    let bad = yaml
        .replace("verbs: [get, list]}]", "verbs: [get, destroy]}]")
        .replace("{name: writers}", "{name: writers, role: admin}");
    let err = load_with_env(
        &[Source::Inline {
            name: "identity.yaml".into(),
            text: bad,
        }],
        &Env::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("impersonation.users[0].verbs[1]: unknown verb \"destroy\""),
        "{err}"
    );
    assert!(
        err.contains("impersonation.groups[0].role: unknown key"),
        "{err}"
    );
}
