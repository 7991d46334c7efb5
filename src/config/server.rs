//! The `kubeplex:` block: `server` settings, `duplicateNames`,
//! `dangerouslySkipTLSVerifyWithCredentials`, `auth` (only `mode: none` in this version)
//! and `aggregate`; `pluginProxy` has its own reader (`super::plugin_proxy`). Blocks owned
//! by later stages (listed in `SECTION_KEYS`, none at the moment) are kept as trees in
//! [`super::Settings::sections`] for their own readers, and refused as not implemented yet
//! until those readers exist: a setting that would be silently ignored is worse than an
//! error.

use super::read::{Obj, Problems};
use super::{AuthMode, AuthSettings, DuplicateNames, ListenerTls, ServerSettings, Settings};
use std::collections::BTreeMap;
use std::time::Duration;

/// The smallest `maxHeaderBytes` accepted.
pub(crate) const MIN_HEADER_BYTES: u64 = 1024;

/// Keys of `kubeplex.server`.
pub(crate) const SERVER_KEYS: &[&str] = &[
    "listen",
    "basePath",
    "connectTimeout",
    "responseHeadTimeout",
    "maxHeaderBytes",
    "shutdownTimeout",
    "workers",
    "tls",
    "trustedProxies",
    "bodyIdleTimeout",
    "probeInterval",
    "cors",
];

/// Blocks of `kubeplex:` that later stages read themselves (refused for now; none at the
/// moment).
pub(crate) const SECTION_KEYS: &[&str] = &[];

/// Keys of `kubeplex:`.
pub(crate) const KUBEPLEX_KEYS: &[&str] = &[
    "server",
    "duplicateNames",
    "dangerouslySkipTLSVerifyWithCredentials",
    "auth",
    "aggregate",
    "backstage",
    "pluginProxy",
];

/// Keys of `kubeplex.auth`.
pub(crate) const AUTH_KEYS: &[&str] = &[
    "mode",
    "dangerouslyAllowUnauthenticated",
    "jwksUrl",
    "jwks",
    "publicKeys",
    "secrets",
    "issuer",
    "audience",
    "algorithms",
    "leeway",
    "requiredClaims",
    "impersonateExtraClaims",
    "policy",
];

/// The algorithms a portal token may be signed with.
pub(crate) const ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

/// The largest `maxHeaderBytes`: actix-http's HTTP/1 decoder answers a bare, empty `431`
/// (no `Status` body possible) when the request head (request line, headers, line ends)
/// reaches 128 KiB, or holds more than 96 header fields. 8 KiB of the head are left to
/// the request line, so requests within `maxHeaderBytes` always reach kubeplex.
pub(crate) const MAX_HEADER_BYTES_LIMIT: u64 = 128 * 1024 - 8 * 1024;

/// Reads the `kubeplex:` block into `settings`.
pub(crate) fn read_kubeplex(
    kp: &Obj<'_>,
    home: Option<&str>,
    settings: &mut Settings,
    p: &mut Problems,
) {
    kp.deny_unknown(KUBEPLEX_KEYS, p);
    if let Some(server) = kp.obj("server", p) {
        read_server(&server, home, &mut settings.server, p);
    }
    if let Some(b) = kp.boolean("dangerouslySkipTLSVerifyWithCredentials", p) {
        settings.dangerously_skip_tls_verify_with_credentials = b;
    }
    if let Some(auth) = kp.obj("auth", p) {
        settings.auth = read_auth(&auth, p);
    }
    if let Some(agg) = kp.obj("aggregate", p) {
        settings.aggregate = read_aggregate(&agg, p);
    }
    for key in SECTION_KEYS {
        if kp.has(key) {
            kp.problem(key, "is not implemented yet in this version; remove it", p);
        }
    }
    if let Some(d) = kp.string("duplicateNames", p) {
        match d.as_str() {
            "first" => settings.duplicate_names = DuplicateNames::First,
            "reject" => settings.duplicate_names = DuplicateNames::Reject,
            _ => kp.problem(
                "duplicateNames",
                format!("must be first or reject, got {d:?}"),
                p,
            ),
        }
    }
    let mut sections = BTreeMap::new();
    for key in SECTION_KEYS {
        if let Some(node) = kp.get(key) {
            sections.insert(key.to_string(), node.clone());
        }
    }
    settings.sections = sections;
}

/// `kubeplex.aggregate`: `concurrency` (1 to 256), `timeout`, `cacheTtl`, `continueKey`
/// (at least 32 bytes: it signs continue tokens).
fn read_aggregate(a: &Obj<'_>, p: &mut Problems) -> super::AggregateSettings {
    a.deny_unknown(&["concurrency", "timeout", "cacheTtl", "continueKey"], p);
    let mut out = super::AggregateSettings::default();
    if let Some(n) = a.uint("concurrency", p) {
        if (1..=256).contains(&n) {
            out.concurrency = n as usize;
        } else {
            a.problem("concurrency", format!("must be 1 to 256, got {n}"), p);
        }
    }
    if let Some(t) = a.duration("timeout", p) {
        if t.is_zero() {
            a.problem("timeout", "must be more than 0", p);
        } else {
            out.timeout = t;
        }
    }
    if let Some(t) = a.duration("cacheTtl", p) {
        out.cache_ttl = t;
    }
    if let Some(k) = a.string("continueKey", p) {
        if k.len() < 32 {
            a.problem(
                "continueKey",
                format!(
                    "must be at least 32 bytes (got {}); it signs continue tokens",
                    k.len()
                ),
                p,
            );
        } else {
            out.continue_key = Some(k.into());
        }
    }
    out
}

fn read_server(s: &Obj<'_>, home: Option<&str>, out: &mut ServerSettings, p: &mut Problems) {
    s.deny_unknown(SERVER_KEYS, p);
    if let Some(listen) = s.string("listen", p) {
        match check_listen(&listen) {
            Ok(()) => out.listen = listen,
            Err(m) => s.problem("listen", m, p),
        }
    }
    if let Some(base) = s.string("basePath", p) {
        if base.starts_with('/') && !base.ends_with('/') {
            out.base_path = base;
        } else {
            s.problem(
                "basePath",
                format!("must start with / and not end with /, got {base:?}"),
                p,
            );
        }
    }
    for (key, slot) in [
        ("connectTimeout", &mut out.connect_timeout),
        ("responseHeadTimeout", &mut out.response_head_timeout),
        ("bodyIdleTimeout", &mut out.body_idle_timeout),
    ] {
        if let Some(d) = s.duration(key, p) {
            if d.is_zero() {
                s.problem(key, "must be greater than zero", p);
            } else {
                *slot = d;
            }
        }
    }
    if let Some(d) = s.duration("shutdownTimeout", p) {
        out.shutdown_timeout = d;
    }
    if let Some(d) = s.duration("probeInterval", p) {
        out.probe_interval = d;
    }
    if let Some(c) = s.obj("cors", p) {
        out.cors = Some(read_cors(&c, p));
    }
    if let Some(n) = s.uint("maxHeaderBytes", p) {
        if n < MIN_HEADER_BYTES {
            s.problem(
                "maxHeaderBytes",
                format!("must be at least {MIN_HEADER_BYTES}, got {n}"),
                p,
            );
        } else if n > MAX_HEADER_BYTES_LIMIT {
            s.problem(
                "maxHeaderBytes",
                format!(
                    "must be at most {MAX_HEADER_BYTES_LIMIT} (the HTTP layer refuses request heads of 128 KiB and more), got {n}"
                ),
                p,
            );
        } else {
            out.max_header_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
    }
    if let Some(n) = s.uint("workers", p) {
        if n == 0 || n > 1024 {
            s.problem("workers", format!("must be between 1 and 1024, got {n}"), p);
        } else {
            out.workers = Some(n as usize);
        }
    }
    if let Some(nets) = trusted_proxies(s, p) {
        out.trusted_proxies = nets;
    }
    if let Some(tls) = s.obj("tls", p) {
        tls.deny_unknown(&["certFile", "keyFile"], p);
        let cert = readable(&tls, "certFile", home, p, true);
        let key = readable(&tls, "keyFile", home, p, true);
        if let (Some(cert_file), Some(key_file)) = (cert, key) {
            out.tls = Some(ListenerTls {
                cert_file,
                key_file,
            });
        }
    }
}

/// Keys of Backstage's `backend.cors` (and `kubeplex.server.cors`).
const CORS_KEYS: &[&str] = &[
    "origin",
    "methods",
    "allowedHeaders",
    "exposedHeaders",
    "credentials",
    "maxAge",
    "preflightContinue",
    "optionsSuccessStatus",
];

/// A string or a list of strings (Backstage's `readStringArray`).
fn string_or_strings(c: &Obj<'_>, key: &str, p: &mut Problems) -> Option<Vec<String>> {
    match &c.get(key)?.value {
        super::tree::Value::Str(_) => c.string(key, p).map(|s| vec![s]),
        _ => c.strings(key, p),
    }
}

/// Reads a `cors` block shaped like Backstage's `backend.cors`.
pub(crate) fn read_cors(c: &Obj<'_>, p: &mut Problems) -> super::CorsSettings {
    c.deny_unknown(CORS_KEYS, p);
    let mut out = super::CorsSettings::default();
    match string_or_strings(c, "origin", p) {
        Some(origins) => {
            for o in &origins {
                if let Err(m) = crate::ops::cors::origin_glob(o) {
                    c.problem("origin", format!("{o:?}: {m}"), p);
                }
            }
            out.origins = origins;
        }
        None if !c.has("origin") => c.problem(
            "origin",
            "is required: the origins (glob patterns) browsers may call kubeplex from",
            p,
        ),
        None => {}
    }
    if let Some(m) = string_or_strings(c, "methods", p) {
        out.methods = m;
    }
    out.allowed_headers = string_or_strings(c, "allowedHeaders", p);
    if let Some(e) = string_or_strings(c, "exposedHeaders", p) {
        out.exposed_headers = e;
    }
    for (key, list) in [
        ("methods", Some(&out.methods)),
        ("allowedHeaders", out.allowed_headers.as_ref()),
        ("exposedHeaders", Some(&out.exposed_headers)),
    ] {
        for v in list.into_iter().flatten() {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                c.problem(key, format!("{v:?} is not a method or header name"), p);
            }
        }
    }
    if let Some(b) = c.boolean("credentials", p) {
        out.credentials = b;
    }
    if let Some(n) = c.uint("maxAge", p) {
        out.max_age = Some(n);
    }
    if c.boolean("preflightContinue", p) == Some(true) {
        c.problem(
            "preflightContinue",
            "true is not supported: kubeplex answers preflights itself and never sends them to a cluster",
            p,
        );
    }
    if let Some(n) = c.uint("optionsSuccessStatus", p) {
        match u16::try_from(n) {
            Ok(n) if (200..300).contains(&n) => out.options_success_status = n,
            _ => c.problem(
                "optionsSuccessStatus",
                format!("must be a 2xx status, got {n}"),
                p,
            ),
        }
    }
    out
}

/// Reads `kubeplex.auth`: `mode: none` and `dangerouslyAllowUnauthenticated`; every other
/// setting of SPEC §5 is refused as not implemented yet.
fn read_auth(a: &Obj<'_>, p: &mut Problems) -> AuthSettings {
    let mut out = AuthSettings::default();
    a.deny_unknown(AUTH_KEYS, p);
    if let Some(mode) = a.string("mode", p) {
        match mode.as_str() {
            "none" => out.mode = AuthMode::None,
            "jwt" => out.mode = AuthMode::Jwt,
            other => a.problem(
                "mode",
                format!(r#"must be "none" or "jwt", got {other:?}"#),
                p,
            ),
        }
    }
    if let Some(b) = a.boolean("dangerouslyAllowUnauthenticated", p) {
        out.dangerously_allow_unauthenticated = b;
    }
    let j = &mut out.jwt;
    if let Some(u) = a.string("jwksUrl", p) {
        match super::locators::check_url(&u) {
            Ok(_) => j.jwks_url = Some(u),
            Err(m) => a.problem("jwksUrl", m, p),
        }
    }
    if let Some(node) = a.get("jwks") {
        let v = match &node.value {
            super::tree::Value::Str(s) => {
                serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
            }
            _ => super::backstage::to_json(node),
        };
        if v.get("keys").is_some_and(serde_json::Value::is_array) {
            j.jwks = Some(v);
        } else {
            a.problem("jwks", "must be a JWKS document ({\"keys\": [...]})", p);
        }
    }
    j.public_keys = a
        .strings("publicKeys", p)
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect();
    j.secrets = a
        .strings("secrets", p)
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect();
    for (i, s) in j.secrets.iter().enumerate() {
        if s.expose().len() < 32 {
            a.problem(
                &format!("secrets[{i}]"),
                "must be at least 32 bytes: it verifies HS256 tokens",
                p,
            );
        }
    }
    j.issuer = string_or_list(a, "issuer", p);
    j.audience = string_or_list(a, "audience", p);
    j.algorithms = a.strings("algorithms", p).unwrap_or_default();
    for alg in &j.algorithms {
        if !ALGORITHMS.contains(&alg.as_str()) {
            a.problem(
                "algorithms",
                format!(
                    "unknown algorithm {alg:?} (expected some of {})",
                    ALGORITHMS.join(", ")
                ),
                p,
            );
        }
    }
    if let Some(d) = a.duration("leeway", p) {
        if d > Duration::from_secs(300) {
            a.problem("leeway", "must be at most 5m", p);
        }
        j.leeway = d;
    }
    j.required_claims = a.strings("requiredClaims", p).unwrap_or_default();
    j.impersonate_extra_claims = a.strings("impersonateExtraClaims", p).unwrap_or_default();
    out.policy = read_policy(a, p);
    out
}

/// Backstage's `backend.auth.externalAccess` entries of `type: static`
/// (`{type: static, options: {token, subject}}`); other types are Backstage's own business.
pub(crate) fn read_external_access(top: &Obj<'_>, p: &mut Problems) -> Vec<super::StaticToken> {
    let Some(list) = top
        .get("backend")
        .and_then(|b| b.get("auth"))
        .and_then(|a| a.get("externalAccess"))
    else {
        return Vec::new();
    };
    let path = "backend.auth.externalAccess";
    let mut out = Vec::new();
    for (path, node) in super::read::list(list, path, p).unwrap_or_default() {
        let Some(e) = Obj::new(node, &path, p) else {
            continue;
        };
        if e.string("type", p).as_deref() != Some("static") {
            continue;
        }
        let Some(o) = e.obj("options", p) else {
            e.problem("options", "required for type static ({token, subject})", p);
            continue;
        };
        let (Some(token), Some(subject)) = (
            o.required_string("token", p),
            o.required_string("subject", p),
        ) else {
            continue;
        };
        if token.len() < 8 || token.chars().any(char::is_whitespace) {
            o.problem("token", "must be at least 8 characters without spaces", p);
            continue;
        }
        out.push(super::StaticToken {
            token: token.into(),
            subject,
        });
    }
    out
}

/// Mode `jwt` needs something to verify tokens with.
pub(crate) fn check_jwt(top: &Obj<'_>, auth: &AuthSettings, p: &mut Problems) {
    let j = &auth.jwt;
    if auth.mode == AuthMode::Jwt
        && j.jwks_url.is_none()
        && j.jwks.is_none()
        && j.public_keys.is_empty()
        && j.secrets.is_empty()
        && j.static_tokens.is_empty()
    {
        top.problem(
            "kubeplex.auth.mode",
            "jwt needs jwksUrl, jwks, publicKeys, secrets or backend.auth.externalAccess static tokens to verify callers with",
            p,
        );
    }
}

/// A string or a list of strings.
fn string_or_list(a: &Obj<'_>, key: &str, p: &mut Problems) -> Vec<String> {
    match a.get(key).map(|n| &n.value) {
        Some(super::tree::Value::Str(s)) => vec![s.clone()],
        Some(_) => a.strings(key, p).unwrap_or_default(),
        None => Vec::new(),
    }
}

/// `kubeplex.auth.policy`: `{subjects, clusters, namespaces, verbs, effect}` each; globs
/// checked here so a bad one is a configuration error, not a request-time surprise.
fn read_policy(a: &Obj<'_>, p: &mut Problems) -> Vec<super::PolicyRule> {
    let mut out = Vec::new();
    for (path, node) in a.list("policy", p).unwrap_or_default() {
        let Some(r) = Obj::new(node, &path, p) else {
            continue;
        };
        r.deny_unknown(
            &["subjects", "clusters", "namespaces", "verbs", "effect"],
            p,
        );
        let mut field = |key: &str| -> Vec<String> {
            let v = r.strings(key, p).unwrap_or_else(|| vec!["*".into()]);
            for g in &v {
                if let Err(e) = globset::Glob::new(g) {
                    r.problem(key, format!("not a glob: {g:?}: {}", e.kind()), p);
                }
            }
            v
        };
        let (subjects, clusters, namespaces, verbs) = (
            field("subjects"),
            field("clusters"),
            field("namespaces"),
            field("verbs"),
        );
        for v in &verbs {
            if v != "*" && !super::POLICY_VERBS.contains(&v.as_str()) {
                r.problem(
                    "verbs",
                    format!(
                        "unknown verb {v:?} (expected * or some of {})",
                        super::POLICY_VERBS.join(", ")
                    ),
                    p,
                );
            }
        }
        let allow = match r.required_string("effect", p).as_deref() {
            Some("allow") => true,
            Some("deny") => false,
            Some(other) => {
                r.problem("effect", format!("must be allow or deny, got {other:?}"), p);
                false
            }
            None => false,
        };
        out.push(super::PolicyRule {
            subjects,
            clusters,
            namespaces,
            verbs,
            allow,
        });
    }
    out
}

/// `trustedProxies`: a list of CIDRs (a bare address is a single-host network), or one
/// comma-separated string (as `KUBEPLEX_SERVER_TRUSTEDPROXIES` gives it).
fn trusted_proxies(s: &Obj<'_>, p: &mut Problems) -> Option<Vec<ipnet::IpNet>> {
    const KEY: &str = "trustedProxies";
    let node = s.get(KEY)?;
    let items: Vec<(String, &super::tree::Node)> = match &node.value {
        super::tree::Value::Str(_) => vec![(s.path_of(KEY), node)],
        _ => super::read::list(node, &s.path_of(KEY), p)?,
    };
    let mut nets = Vec::with_capacity(items.len());
    let mut ok = true;
    for (path, item) in items {
        let Some(text) = super::read::string(item, &path, p) else {
            ok = false;
            continue;
        };
        for text in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match parse_network(text) {
                Some(net) => nets.push(net),
                None => {
                    ok = false;
                    p.at(
                        item,
                        &path,
                        format!("must be a CIDR such as 10.0.0.0/8 or fd00::/8, or an IP address, got {text:?}"),
                    );
                }
            }
        }
    }
    ok.then_some(nets)
}

/// A CIDR (`10.0.0.0/8`, host bits are cleared) or an address (`10.0.0.1` = `10.0.0.1/32`).
fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Some(net.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .ok()
        .map(ipnet::IpNet::from)
}

/// Reads a file path under `key` and checks that the file can be read.
pub(crate) fn readable(
    obj: &Obj<'_>,
    key: &str,
    home: Option<&str>,
    p: &mut Problems,
    required: bool,
) -> Option<std::path::PathBuf> {
    if required && !obj.has(key) {
        obj.problem(key, "required", p);
        return None;
    }
    let path = obj.file_path(key, home, p)?;
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Some(path),
        Ok(_) => {
            obj.problem(key, format!("not a file: {}", path.display()), p);
            None
        }
        Err(e) => {
            obj.problem(key, format!("cannot read {}: {e}", path.display()), p);
            None
        }
    }
}

/// `host:port` with a numeric port; IPv6 hosts in brackets.
pub(crate) fn check_listen(s: &str) -> Result<(), String> {
    let bad = || format!("must be host:port, got {s:?}");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(bad)?;
        inner.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
    } else if host.contains(':') || host.contains('/') || host.contains(' ') {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_listen, parse_network};

    #[test]
    fn network_forms() {
        let net = |s: &str| parse_network(s).map(|n| n.to_string());
        assert_eq!(net("10.0.0.0/8").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(net("10.1.2.3/8").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(net("192.0.2.7").as_deref(), Some("192.0.2.7/32"));
        assert_eq!(net("fd00::/8").as_deref(), Some("fd00::/8"));
        assert_eq!(net("::1").as_deref(), Some("::1/128"));
        assert_eq!(net("10.0.0.0/33"), None);
        assert_eq!(net("example.com"), None);
        assert_eq!(net(""), None);
    }

    #[test]
    fn listen_forms() {
        assert!(check_listen("127.0.0.1:7007").is_ok());
        assert!(check_listen("0.0.0.0:0").is_ok());
        assert!(check_listen("[::1]:7007").is_ok());
        assert!(check_listen("localhost:80").is_ok());
        assert!(check_listen("7007").is_err());
        assert!(check_listen(":7007").is_err());
        assert!(check_listen("::1:7007").is_err());
        assert!(check_listen("host:99999").is_err());
        assert!(check_listen("host:").is_err());
    }
}
