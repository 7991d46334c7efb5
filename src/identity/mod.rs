//! Who is calling, and what they may do (SPEC §5).
//!
//! In `kubeplex.auth.mode: none` nobody is identified: the caller's `Authorization` is their
//! Kubernetes token. In `mode: jwt` every request to a cluster route carries a portal
//! token (`Authorization: Bearer`), which [`Authenticator::identify`] verifies ([`keys`]:
//! JWKS URL, static keys, HS256 secrets; Backstage's external-access static tokens) into an
//! [`Identity`]; the token is then consumed and never sent upstream. [`policy`] decides per
//! cluster, namespace and verb ([`verbs`] derives the verb from the request as the API
//! server does), and per-cluster impersonation turns the identity into `Impersonate-*`
//! headers so a cluster's own RBAC applies per portal user.
//!
//! Verified tokens are cached until they expire (keyed by a SHA-256 of the token), so a
//! portal that sends the same token on every call pays for one signature check.

pub(crate) mod keys;
pub(crate) mod policy;
pub(crate) mod verbs;

use crate::config::{AuthMode, AuthSettings, JwtSettings};
use crate::status::{Error, Reason};
use actix_web::http::header::HeaderMap;
use actix_web::HttpMessage;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The largest portal token accepted (Backstage's are about 1 KiB).
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// How many verified tokens are remembered.
const CACHE_CAPACITY: u64 = 100_000;

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// `sub` (or a static token's subject).
    pub subject: String,
    /// `ent`: the user and group entity refs (Backstage's ownership claims).
    pub groups: Vec<String>,
    /// The `impersonateExtraClaims` the token carries, as `(claim, values)`.
    pub extra: Vec<(String, Vec<String>)>,
}

/// A verified token and until when it holds (seconds since the epoch).
#[derive(Clone)]
struct Verified {
    identity: Arc<Identity>,
    expires: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(Reason::InvalidToken, message)
}

/// Verifies portal tokens (mode `jwt`) and holds the policy; in mode `none`, identifies
/// nobody and allows everything.
pub(crate) struct Authenticator {
    mode: AuthMode,
    settings: JwtSettings,
    static_keys: Vec<keys::Key>,
    jwks: Option<keys::Jwks>,
    /// SHA-256 of each static token, and its subject.
    static_tokens: Vec<([u8; 32], String)>,
    cache: moka::sync::Cache<[u8; 32], Verified>,
    /// The access policy.
    pub policy: policy::Policy,
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Authenticator {
    /// The authenticator for `auth`; an unusable key is an error naming it.
    pub(crate) fn new(auth: &AuthSettings) -> Result<Self, String> {
        let s = &auth.jwt;
        let (static_keys, jwks) = if auth.mode == AuthMode::Jwt {
            let jwks = match &s.jwks_url {
                Some(u) => Some(keys::Jwks::new(
                    url::Url::parse(u).map_err(|e| format!("kubeplex.auth.jwksUrl: {e}"))?,
                    keys::configured_algorithms(s),
                )),
                None => None,
            };
            (keys::static_keys(s)?, jwks)
        } else {
            (Vec::new(), None)
        };
        Ok(Authenticator {
            mode: auth.mode,
            settings: s.clone(),
            static_keys,
            jwks,
            static_tokens: s
                .static_tokens
                .iter()
                .map(|t| (sha256(t.token.expose().as_bytes()), t.subject.clone()))
                .collect(),
            cache: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            policy: policy::Policy::new(&auth.policy),
        })
    }

    /// The JWKS URL's fetches so far that brought keys and that failed (0, 0 without one),
    /// for `/metrics`.
    pub(crate) fn jwks_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.jwks.as_ref().map_or((0, 0), |j| {
            (j.refreshes.load(Relaxed), j.failures.load(Relaxed))
        })
    }

    /// Whether callers are identified (mode `jwt`).
    pub(crate) fn checks(&self) -> bool {
        self.mode == AuthMode::Jwt
    }

    /// The caller of a request with `headers`: `None` in mode `none`; in mode `jwt` the
    /// verified identity, or a 401 `Status` saying why not (never quoting the token).
    pub(crate) async fn identify(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Arc<Identity>>, Error> {
        if !self.checks() {
            return Ok(None);
        }
        let value = headers
            .get(actix_web::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                invalid("a portal token is required: send Authorization: Bearer <token>")
            })?;
        let value = value
            .to_str()
            .map_err(|_| invalid("the Authorization header is not visible ASCII"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("the Authorization header is not a Bearer token"))?;
        self.verify(token).await.map(Some)
    }

    /// Verifies one token.
    pub(crate) async fn verify(&self, token: &str) -> Result<Arc<Identity>, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid(format!(
                "the token is larger than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let hash = sha256(token.as_bytes());
        if let Some((_, subject)) = self.static_tokens.iter().find(|(h, _)| *h == hash) {
            return Ok(Arc::new(Identity {
                subject: subject.clone(),
                groups: Vec::new(),
                extra: Vec::new(),
            }));
        }
        let now = now_secs();
        if let Some(v) = self.cache.get(&hash) {
            if v.expires > now {
                return Ok(v.identity);
            }
            self.cache.invalidate(&hash);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            invalid(format!(
                "the token is not a JWT kubeplex accepts: {}",
                describe(e.kind())
            ))
        })?;
        let mut result = self.verify_with_keys(token, &header);
        if matches!(result, Err(KeyMiss::Unknown)) {
            if let Some(jwks) = &self.jwks {
                // A key the JWKS did not have last time, or no fetch yet: fetch again
                // (at most every 30s), then try once more. Boxed: a fetch is rare, and
                // its state would otherwise be part of every request's future.
                if Box::pin(jwks.refresh()).await {
                    result = self.verify_with_keys(token, &header);
                }
            }
        }
        let claims = match result {
            Ok(c) => c,
            Err(KeyMiss::Unknown) => {
                return Err(invalid(match &header.kid {
                    Some(_) => {
                        "the token's signing key (kid) is not one kubeplex trusts".to_string()
                    }
                    None => "no key kubeplex trusts verifies the token".to_string(),
                }))
            }
            Err(KeyMiss::Refused(e)) => return Err(e),
        };
        let identity = self.identity_of(&claims)?;
        let expires = claims
            .get("exp")
            .and_then(Value::as_u64)
            .unwrap_or(now)
            .saturating_add(self.settings.leeway.as_secs());
        let identity = Arc::new(identity);
        self.cache.insert(
            hash,
            Verified {
                identity: identity.clone(),
                expires,
            },
        );
        Ok(identity)
    }

    /// Tries every key that may have signed the token (the one its `kid` names, else all).
    fn verify_with_keys(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
    ) -> Result<serde_json::Map<String, Value>, KeyMiss> {
        let jwks = self.jwks.as_ref().map(|j| j.keys());
        let fetched = jwks.as_deref().map(|k| k.as_slice()).unwrap_or(&[]);
        let mut last: Option<Error> = None;
        let mut tried = false;
        for key in self.static_keys.iter().chain(fetched) {
            if let (Some(want), Some(have)) = (&header.kid, &key.kid) {
                if want != have {
                    continue;
                }
            }
            if header.kid.is_some()
                && key.kid.is_none()
                && fetched.iter().any(|k| k.kid == header.kid)
            {
                continue;
            }
            if !key.algorithms.contains(&header.alg) {
                if key.kid.is_some() && key.kid == header.kid {
                    last = Some(invalid(format!(
                        "the token's algorithm {:?} is not one its key may verify",
                        header.alg
                    )));
                }
                continue;
            }
            tried = true;
            match jsonwebtoken::decode::<serde_json::Map<String, Value>>(
                token,
                &key.key,
                &self.validation(header.alg),
            ) {
                Ok(data) => return Ok(data.claims),
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                    last.get_or_insert_with(|| invalid("the token's signature does not verify"));
                }
                Err(e) => return Err(KeyMiss::Refused(invalid(describe(e.kind())))),
            }
        }
        // A kid no key carries, or a JWKS not fetched yet, is a key kubeplex may not have
        // yet, even when keys without a kid (PEM keys, secrets) failed: the JWKS may
        // have it.
        let unknown_kid = header.kid.as_ref().is_some_and(|want| {
            !self
                .static_keys
                .iter()
                .chain(fetched)
                .any(|k| k.kid.as_ref() == Some(want))
        });
        let unfetched = self.jwks.is_some() && fetched.is_empty();
        match last {
            Some(e) if !unknown_kid && !unfetched && (tried || header.kid.is_some()) => {
                Err(KeyMiss::Refused(e))
            }
            _ => Err(KeyMiss::Unknown),
        }
    }

    /// The validation for a token signed with `alg` (already checked against the key).
    fn validation(&self, alg: Algorithm) -> Validation {
        let s = &self.settings;
        let mut v = Validation::new(alg);
        v.leeway = s.leeway.as_secs();
        v.validate_nbf = true;
        v.validate_exp = true;
        let mut required = vec!["exp", "sub"];
        if !s.issuer.is_empty() {
            v.set_issuer(&s.issuer);
            required.push("iss");
        }
        if s.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&s.audience);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// The identity in verified claims.
    fn identity_of(&self, claims: &serde_json::Map<String, Value>) -> Result<Identity, Error> {
        for c in &self.settings.required_claims {
            if claims.get(c).is_none_or(Value::is_null) {
                return Err(invalid(format!("the token lacks the claim {c:?}")));
            }
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("the token's sub claim is not a string"))?
            .to_string();
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let groups = strings(claims.get("ent"));
        let extra = self
            .settings
            .impersonate_extra_claims
            .iter()
            .filter_map(|c| {
                let v = strings(claims.get(c));
                (!v.is_empty()).then(|| (c.clone(), v))
            })
            .collect();
        Ok(Identity {
            subject,
            groups,
            extra,
        })
    }
}

/// Why no key verified a token.
enum KeyMiss {
    /// No key could have signed it (unknown `kid`, or none tried).
    Unknown,
    /// A key refused it.
    Refused(Error),
}

/// What a verification failure means, in words (no token text).
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the token is not meant for kubeplex (aud)".into(),
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not trusted".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's algorithm is not allowed".into()
        }
        ErrorKind::MissingRequiredClaim(c) => format!("the token lacks the claim {c:?}"),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "the token is malformed".into(),
        other => format!("the token was refused ({other:?})"),
    }
}

/// The identity [`identify`] stored in the request, if any.
pub(crate) fn of(req: &impl HttpMessage) -> Option<Arc<Identity>> {
    req.extensions().get::<Arc<Identity>>().cloned()
}

/// The subject of the request for audit lines, `-` when nobody was identified.
pub(crate) fn subject_of(req: &impl HttpMessage) -> String {
    of(req).map_or_else(|| "-".to_string(), |i| i.subject.clone())
}

/// Identifies the caller of `req` (mode `jwt`: a 401 when the token does not verify) and
/// keeps the identity in the request for the later stages (impersonation, audit).
pub(crate) async fn identify(
    auth: &Authenticator,
    req: &impl HttpMessage,
) -> Result<Option<Arc<Identity>>, Error> {
    if let Some(known) = of(req) {
        return Ok(Some(known));
    }
    let who = auth.identify(req.headers()).await?;
    if let Some(who) = &who {
        req.extensions_mut().insert(who.clone());
    }
    Ok(who)
}

/// Whether the policy lets `who` send `method` to `path?query` on `cluster`. Discovery
/// (non-resource reads such as `/version`, `/api`, `/openapi/v3`) needs only some right on
/// the cluster, as the API server lets every authenticated user discover.
pub(crate) fn allowed(
    auth: &Authenticator,
    who: &Identity,
    cluster: &crate::cluster::Cluster,
    method: &str,
    path: &str,
    query: &str,
) -> Result<(), Error> {
    let info = verbs::request_info(method, path, query);
    let ok = if info.resource.is_empty() && matches!(method, "GET" | "HEAD") {
        auth.policy.may_use(who, cluster)
    } else {
        auth.policy.allows(
            who,
            &policy::Access {
                cluster,
                namespace: &info.namespace,
                verb: info.verb,
            },
        )
    };
    if ok {
        return Ok(());
    }
    let what = match (info.resource.as_str(), info.namespace.as_str()) {
        ("", _) => String::new(),
        (r, "") => format!(" {r}"),
        (r, ns) => format!(" {r} in namespace {ns}"),
    };
    Err(Error::new(
        Reason::Forbidden,
        format!(
            "{} may not {}{what} in cluster {}",
            who.subject, info.verb, cluster.key
        ),
    ))
}

/// Sets the `Impersonate-*` headers for `who` (any the caller sent are gone already: the
/// header filter drops them with a server-side credential).
pub(crate) fn impersonate(
    who: &Identity,
    headers: &mut dyn crate::upstream::HeaderSink,
) -> Result<(), Error> {
    let value = |s: &str| {
        if crate::upstream::is_header_value(s.as_bytes()) {
            Ok(())
        } else {
            Err(Error::bad_request(
                "the token's subject or groups are not valid header values",
            ))
        }
    };
    value(&who.subject)?;
    headers.put("impersonate-user", who.subject.as_bytes(), false);
    for g in &who.groups {
        value(g)?;
        headers.put("impersonate-group", g.as_bytes(), false);
    }
    for (claim, values) in &who.extra {
        // Lowercase, as `http` writes names (the percent-encoding's hex digits too).
        let name = format!(
            "impersonate-extra-{}",
            percent_encoding::utf8_percent_encode(
                &claim.to_ascii_lowercase(),
                percent_encoding::NON_ALPHANUMERIC
            )
        )
        .to_ascii_lowercase();
        for v in values {
            value(v)?;
            headers.put(&name, v.as_bytes(), false);
        }
    }
    Ok(())
}
