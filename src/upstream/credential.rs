//! The upstream `Authorization` rules of SPEC §3, first that applies:
//!
//! 1. `Backstage-Kubernetes-Authorization: <v>` → `Authorization: <v>` verbatim;
//! 2. `Backstage-Kubernetes-Authorization-<provider>[-<sub>]` matching the cluster's
//!    `authProvider` (and `oidcTokenProvider`), named as Backstage's frontend names it
//!    (`-oidc-<tokenProvider>`, `-google`, `-aks`, `-pinniped-<audience>`, ...) →
//!    `Authorization: Bearer <v>`;
//! 3. with caller identity checking off, the caller's own `Authorization`, verbatim, unless
//!    it is a Backstage token (a JWT whose header `typ` starts with `vnd.backstage.` or whose
//!    `aud` is `backstage`): Backstage's `fetchApi` adds the portal token to every call and a
//!    portal token is never a cluster's;
//! 4. the cluster's server-side credential (a fixed token, or a token file re-read when it
//!    changes, so projected service-account tokens rotate without a restart);
//! 5. none.
//!
//! `Impersonate-*` headers pass only with a caller's own credential (rules 1-3): with a
//! server-side one they would let any portal user become whoever the service account may
//! impersonate. Token values never appear in errors or logs.

use crate::cluster::{ClusterSpec, ServerCredential};
use crate::status::Error;
use actix_web::http::header::{HeaderMap, HeaderValue};
use base64::Engine;
use secrecy::ExposeSecret;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// Which rule gave the upstream credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Rule 1: `Backstage-Kubernetes-Authorization`.
    PortalHeader,
    /// Rule 2: `Backstage-Kubernetes-Authorization-<provider>[-<sub>]`.
    ProviderHeader,
    /// Rule 3: the caller's own `Authorization`.
    CallerAuthorization,
    /// Rule 4: the cluster's server-side credential.
    Server,
    /// Rule 5: none.
    Anonymous,
}

impl Source {
    /// Whether the credential is the caller's own (rules 1-3): then `Impersonate-*` passes.
    pub(crate) fn is_callers_own(self) -> bool {
        matches!(
            self,
            Source::PortalHeader | Source::ProviderHeader | Source::CallerAuthorization
        )
    }
}

/// The credential to send upstream.
#[derive(Debug, Clone)]
pub(crate) struct Credential {
    /// The `Authorization` value, if any.
    pub authorization: Option<HeaderValue>,
    /// The rule it came from.
    pub source: Source,
}

const PORTAL_HEADER: &str = "backstage-kubernetes-authorization";
/// [`PORTAL_HEADER`] as a name, built once (a `&str` name is parsed on every lookup).
const PORTAL_HEADER_NAME: actix_web::http::header::HeaderName =
    actix_web::http::header::HeaderName::from_static(PORTAL_HEADER);

/// Applies rules 1-3 to the request headers; `None` means fall through to the cluster's
/// server-side credential (rules 4-5, see [`ServerToken`]).
///
/// `identity_checking` is whether kubeplex verifies callers itself (`auth.mode: jwt`):
/// then the caller's `Authorization` is the portal token and never goes upstream.
pub(crate) fn from_request(
    headers: &HeaderMap,
    spec: &ClusterSpec,
    identity_checking: bool,
) -> Result<Option<Credential>, Error> {
    // Rule 1.
    if let Some(v) = headers.get(PORTAL_HEADER_NAME) {
        return Ok(Some(Credential {
            authorization: Some(v.clone()),
            source: Source::PortalHeader,
        }));
    }
    // Rule 2.
    if let Some(provider) = spec.auth_provider.as_deref() {
        for (name, value) in headers.iter() {
            let Some(suffix) = name
                .as_str()
                .strip_prefix(PORTAL_HEADER)
                .and_then(|s| s.strip_prefix('-'))
            else {
                continue;
            };
            if provider_matches(suffix, provider, spec.oidc_token_provider.as_deref()) {
                return Ok(Some(Credential {
                    authorization: Some(bearer(value)?),
                    source: Source::ProviderHeader,
                }));
            }
        }
    }
    // Rule 3.
    if !identity_checking {
        if let Some(v) = headers.get(actix_web::http::header::AUTHORIZATION) {
            if !is_backstage_token(v.as_bytes()) {
                return Ok(Some(Credential {
                    authorization: Some(v.clone()),
                    source: Source::CallerAuthorization,
                }));
            }
        }
    }
    Ok(None)
}

/// Whether a `Backstage-Kubernetes-Authorization-<suffix>` header (suffix lowercase, as
/// header names are) is meant for a cluster with this `authProvider` / `oidcTokenProvider`.
pub(crate) fn provider_matches(suffix: &str, provider: &str, oidc: Option<&str>) -> bool {
    let Some(rest) = strip_prefix_ignore_case(suffix, provider) else {
        return false;
    };
    if rest.is_empty() {
        // `-google`, `-aks`, ...: only when no sub-provider is expected.
        return oidc.is_none() || !provider.eq_ignore_ascii_case("oidc");
    }
    let Some(sub) = rest.strip_prefix('-') else {
        return false;
    };
    if provider.eq_ignore_ascii_case("oidc") {
        return oidc.is_some_and(|o| o.eq_ignore_ascii_case(sub));
    }
    // `-pinniped-<audience>` and other providers' sub-keys: the audience is not part of the
    // cluster's fields kubeplex knows, so any sub-key of the cluster's provider matches.
    !sub.is_empty()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// `Bearer <v>`, unless `v` already carries a scheme (`Bearer x`).
fn bearer(v: &HeaderValue) -> Result<HeaderValue, Error> {
    let b = v.as_bytes();
    if b.len() > 7 && b[..7].eq_ignore_ascii_case(b"bearer ") {
        return Ok(v.clone());
    }
    let mut out = Vec::with_capacity(7 + b.len());
    out.extend_from_slice(b"Bearer ");
    out.extend_from_slice(b);
    HeaderValue::from_bytes(&out).map_err(|_| {
        Error::bad_request("a Backstage-Kubernetes-Authorization-* header has an invalid value")
    })
}

/// Whether an `Authorization` value is a Backstage token: a JWT whose header `typ` starts
/// with `vnd.backstage.` or whose payload `aud` is (or contains) `backstage`. The token is
/// decoded, not verified: this only decides that it must not go to a cluster.
pub(crate) fn is_backstage_token(value: &[u8]) -> bool {
    let token = match value.get(..7) {
        Some(p) if p.eq_ignore_ascii_case(b"bearer ") => &value[7..],
        _ => return false,
    };
    let token = token.trim_ascii();
    let mut parts = token.split(|&b| b == b'.');
    let (Some(h), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decode = |part: &[u8]| -> Option<serde_json::Value> {
        let trimmed = part.strip_suffix(b"=").unwrap_or(part);
        let bytes = b64
            .decode(trimmed.strip_suffix(b"=").unwrap_or(trimmed))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    if let Some(header) = decode(h) {
        if header
            .get("typ")
            .and_then(|t| t.as_str())
            .is_some_and(|t| t.starts_with("vnd.backstage."))
        {
            return true;
        }
    }
    if let Some(payload) = decode(p) {
        match payload.get("aud") {
            Some(serde_json::Value::String(a)) => return a == "backstage",
            Some(serde_json::Value::Array(a)) => {
                return a.iter().any(|x| x.as_str() == Some("backstage"))
            }
            _ => {}
        }
    }
    false
}

/// A cluster's server-side credential (rule 4) in a form cheap to apply per request: a
/// fixed token's header value is built once; a token file is re-read when its size,
/// modification time or inode changes (projected tokens are swapped by symlink).
#[derive(Debug)]
pub(crate) struct ServerToken {
    kind: ServerTokenKind,
}

#[derive(Debug)]
enum ServerTokenKind {
    None,
    Fixed(Result<HeaderValue, ()>),
    File {
        path: PathBuf,
        cached: RefCell<Option<FileToken>>,
    },
}

#[derive(Debug)]
struct FileToken {
    stamp: (u64, Option<std::time::SystemTime>, u64),
    value: HeaderValue,
}

fn stamp(meta: &std::fs::Metadata) -> (u64, Option<std::time::SystemTime>, u64) {
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let ino = 0;
    (meta.len(), meta.modified().ok(), ino)
}

fn bearer_str(token: &str) -> Result<HeaderValue, ()> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| ())?;
    v.set_sensitive(true);
    Ok(v)
}

impl ServerToken {
    /// Prepares the credential of a cluster.
    pub(crate) fn new(cred: &ServerCredential) -> Self {
        let kind = match cred {
            ServerCredential::None => ServerTokenKind::None,
            ServerCredential::Token(t) => ServerTokenKind::Fixed(bearer_str(t.expose_secret())),
            ServerCredential::TokenFile(p) => ServerTokenKind::File {
                path: p.clone(),
                cached: RefCell::new(None),
            },
        };
        ServerToken { kind }
    }

    /// The current `Authorization` value (rule 4), or `None` for rule 5. `cluster` names the
    /// cluster in errors.
    pub(crate) fn current(&self, cluster: &str) -> Result<Option<HeaderValue>, Error> {
        match &self.kind {
            ServerTokenKind::None => Ok(None),
            ServerTokenKind::Fixed(Ok(v)) => Ok(Some(v.clone())),
            ServerTokenKind::Fixed(Err(())) => Err(Error::internal(format!(
                "the serviceAccountToken of cluster {cluster} is not a valid header value"
            ))),
            ServerTokenKind::File { path, cached } => read_file_token(path, cached, cluster),
        }
    }
}

fn read_file_token(
    path: &Path,
    cached: &RefCell<Option<FileToken>>,
    cluster: &str,
) -> Result<Option<HeaderValue>, Error> {
    let unreadable = |e: std::io::Error| {
        Error::internal(format!(
            "cannot read the token file {} of cluster {cluster}: {e}",
            path.display()
        ))
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    let st = stamp(&meta);
    if let Some(c) = cached.borrow().as_ref() {
        if c.stamp == st {
            return Ok(Some(c.value.clone()));
        }
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let value = bearer_str(&text).map_err(|()| {
        Error::internal(format!(
            "the token file {} of cluster {cluster} does not hold a valid token",
            path.display()
        ))
    })?;
    // Stamp from after the read, so a write racing the read is seen next time.
    let st = std::fs::metadata(path).map(|m| stamp(&m)).unwrap_or(st);
    *cached.borrow_mut() = Some(FileToken {
        stamp: st,
        value: value.clone(),
    });
    Ok(Some(value))
}

/// Decides the upstream credential of a request: rules 1-3 from the headers, else the
/// cluster's server-side token (4), else none (5).
pub(crate) fn resolve(
    headers: &HeaderMap,
    spec: &ClusterSpec,
    server: &ServerToken,
    identity_checking: bool,
    cluster: &str,
) -> Result<Credential, Error> {
    if let Some(c) = from_request(headers, spec, identity_checking)? {
        return Ok(c);
    }
    Ok(match server.current(cluster)? {
        Some(v) => Credential {
            authorization: Some(v),
            source: Source::Server,
        },
        None => Credential {
            authorization: None,
            source: Source::Anonymous,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderName;

    fn jwt(header: &str, payload: &str) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("Bearer {}.{}.sig", b.encode(header), b.encode(payload))
    }

    #[test]
    fn backstage_tokens() {
        assert!(is_backstage_token(
            jwt(
                r#"{"alg":"ES256","typ":"vnd.backstage.user"}"#,
                r#"{"sub":"u"}"#
            )
            .as_bytes()
        ));
        assert!(is_backstage_token(
            jwt(r#"{"alg":"ES256"}"#, r#"{"aud":"backstage"}"#).as_bytes()
        ));
        assert!(is_backstage_token(
            jwt(r#"{"alg":"ES256"}"#, r#"{"aud":["x","backstage"]}"#).as_bytes()
        ));
        assert!(!is_backstage_token(
            jwt(
                r#"{"alg":"RS256"}"#,
                r#"{"aud":"https://kubernetes.default.svc"}"#
            )
            .as_bytes()
        ));
        assert!(!is_backstage_token(b"Bearer opaque-token"));
        assert!(!is_backstage_token(b"Basic dXNlcjpwYXNz"));
    }

    #[test]
    fn provider_names() {
        assert!(provider_matches("oidc-okta", "oidc", Some("okta")));
        assert!(!provider_matches("oidc-other", "oidc", Some("okta")));
        assert!(!provider_matches("oidc", "oidc", Some("okta")));
        assert!(provider_matches("google", "google", None));
        assert!(!provider_matches("googlex", "google", None));
        assert!(provider_matches("aks", "aks", None));
        assert!(provider_matches("pinniped-aud", "pinniped", None));
        assert!(!provider_matches("google", "aks", None));
    }

    #[test]
    fn rule_order() {
        let mut spec = ClusterSpec::new("c", url::Url::parse("http://h").unwrap());
        spec.auth_provider = Some("google".into());
        let server = ServerToken::new(&ServerCredential::token("sa"));
        let mut h = HeaderMap::new();
        let r = resolve(&h, &spec, &server, false, "k").unwrap();
        assert_eq!(r.source, Source::Server);
        assert_eq!(r.authorization.unwrap(), "Bearer sa");
        h.insert(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("Bearer mine"),
        );
        let r = resolve(&h, &spec, &server, false, "k").unwrap();
        assert_eq!(r.source, Source::CallerAuthorization);
        assert_eq!(
            resolve(&h, &spec, &server, true, "k").unwrap().source,
            Source::Server
        );
        h.insert(
            HeaderName::from_static("backstage-kubernetes-authorization-google"),
            HeaderValue::from_static("g"),
        );
        let r = resolve(&h, &spec, &server, false, "k").unwrap();
        assert_eq!(r.source, Source::ProviderHeader);
        assert_eq!(r.authorization.unwrap(), "Bearer g");
        h.insert(
            HeaderName::from_static("backstage-kubernetes-authorization"),
            HeaderValue::from_static("Bearer p"),
        );
        let r = resolve(&h, &spec, &server, false, "k").unwrap();
        assert_eq!(r.source, Source::PortalHeader);
        assert_eq!(r.authorization.unwrap(), "Bearer p");
        let none = ServerToken::new(&ServerCredential::None);
        let r = resolve(&HeaderMap::new(), &spec, &none, false, "k").unwrap();
        assert_eq!(r.source, Source::Anonymous);
    }

    #[test]
    fn token_file_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "one\n").unwrap();
        let t = ServerToken::new(&ServerCredential::TokenFile(p.clone()));
        assert_eq!(t.current("k").unwrap().unwrap(), "Bearer one");
        // Replace by rename, as the kubelet does for projected tokens.
        let q = dir.path().join("token.new");
        std::fs::write(&q, "second-token").unwrap();
        std::fs::rename(&q, &p).unwrap();
        assert_eq!(t.current("k").unwrap().unwrap(), "Bearer second-token");
        let err = ServerToken::new(&ServerCredential::TokenFile(dir.path().join("missing")))
            .current("k")
            .unwrap_err();
        assert!(err.message.contains("cluster k"));
    }
}
