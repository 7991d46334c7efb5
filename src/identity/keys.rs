//! The keys portal tokens are verified with: static ones from the configuration (PEM public
//! keys, an inline JWKS, HS256 secrets) and those of a JWKS URL, fetched on first need and
//! again when a token names an unknown `kid`, at most every [`REFETCH_EVERY`]; while the
//! JWKS endpoint is down the last good keys stay in use.
//!
//! Each key carries the algorithms it may verify: the configured `algorithms` that fit its
//! family, or else its own (a JWK's `alg`, or the family's usual one). The algorithm is
//! never taken from the token: a token whose header names another is refused, which is what
//! stops `alg: none` and an HS256 token "signed" with an RSA public key.

use crate::config::JwtSettings;
use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The least time between two fetches of the JWKS.
pub(crate) const REFETCH_EVERY: Duration = Duration::from_secs(30);
/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS read.
const MAX_JWKS: usize = 1024 * 1024;

/// One key and what it may verify.
pub(crate) struct Key {
    /// The JWK `kid`, if any.
    pub kid: Option<String>,
    /// The key.
    pub key: DecodingKey,
    /// The algorithms it may verify.
    pub algorithms: Vec<Algorithm>,
}

/// What a key that does not name its algorithm may verify: its family's algorithms (an EC
/// key of a known curve, that curve's).
fn default_algorithms(key: &DecodingKey, curve: Option<&EllipticCurve>) -> Vec<Algorithm> {
    use jsonwebtoken::AlgorithmFamily as F;
    use Algorithm as A;
    match key.family() {
        F::Hmac => vec![A::HS256],
        F::Rsa => vec![A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512],
        F::Ec => match curve {
            Some(EllipticCurve::P256) => vec![A::ES256],
            Some(EllipticCurve::P384) => vec![A::ES384],
            _ => vec![A::ES256, A::ES384],
        },
        F::Ed => vec![A::EdDSA],
    }
}

/// The algorithms `key` may verify: the configured ones of its family, else its own.
fn algorithms_for(
    key: &DecodingKey,
    own: Vec<Algorithm>,
    configured: &[Algorithm],
) -> Vec<Algorithm> {
    if configured.is_empty() {
        return own;
    }
    configured
        .iter()
        .copied()
        .filter(|a| a.family() == key.family())
        .collect()
}

/// A key from a JWK, or why not.
fn from_jwk(jwk: &Jwk, configured: &[Algorithm]) -> Result<Key, String> {
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let curve = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => Some(&p.curve),
        _ => None,
    };
    let own = match jwk
        .common
        .key_algorithm
        .and_then(|a| Algorithm::from_str(&a.to_string()).ok())
    {
        Some(a) if a.family() == key.family() => vec![a],
        _ => default_algorithms(&key, curve),
    };
    Ok(Key {
        kid: jwk.common.key_id.clone(),
        algorithms: algorithms_for(&key, own, configured),
        key,
    })
}

/// The keys of a JWKS document (keys that cannot be used are skipped, with a warning).
pub(crate) fn from_jwks(set: &JwkSet, configured: &[Algorithm], origin: &str) -> Vec<Key> {
    set.keys
        .iter()
        .filter_map(|jwk| match from_jwk(jwk, configured) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(
                    "skipping key {:?} of {origin}: {e}",
                    jwk.common.key_id.as_deref().unwrap_or("(no kid)")
                );
                None
            }
        })
        .collect()
}

/// The configured algorithms, parsed (the configuration checked the names).
pub(crate) fn configured_algorithms(s: &JwtSettings) -> Vec<Algorithm> {
    s.algorithms
        .iter()
        .filter_map(|a| Algorithm::from_str(a).ok())
        .collect()
}

/// The keys of the configuration itself: `publicKeys`, `jwks`, `secrets`.
pub(crate) fn static_keys(s: &JwtSettings) -> Result<Vec<Key>, String> {
    let configured = configured_algorithms(s);
    let mut keys = Vec::new();
    for (i, pem) in s.public_keys.iter().enumerate() {
        let pem = pem.expose().as_bytes();
        let (key, curve) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (k, None)
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (k, None)
        } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (k, None)
        } else {
            return Err(format!(
                "kubeplex.auth.publicKeys[{i}]: not an RSA, EC or Ed25519 public key in PEM"
            ));
        };
        let own = default_algorithms(&key, curve.as_ref());
        keys.push(Key {
            kid: None,
            algorithms: algorithms_for(&key, own, &configured),
            key,
        });
    }
    if let Some(doc) = &s.jwks {
        let set: JwkSet = serde_json::from_value(doc.clone())
            .map_err(|e| format!("kubeplex.auth.jwks: not a JWKS: {e}"))?;
        keys.extend(from_jwks(&set, &configured, "kubeplex.auth.jwks"));
    }
    for secret in &s.secrets {
        let key =
            DecodingKey::from_secret(secret.expose().as_bytes()).map_err(|e| e.to_string())?;
        let own = vec![Algorithm::HS256];
        keys.push(Key {
            kid: None,
            algorithms: algorithms_for(&key, own, &configured)
                .into_iter()
                .chain(configured.is_empty().then_some(Algorithm::HS256))
                .collect(),
            key,
        });
    }
    Ok(keys)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The keys of a JWKS URL, shared by every worker.
pub(crate) struct Jwks {
    url: url::Url,
    configured: Vec<Algorithm>,
    keys: ArcSwap<Vec<Key>>,
    /// When the last fetch started (seconds since the epoch), 0: never.
    last_fetch: AtomicU64,
    /// Held during a fetch: requests needing keys meanwhile wait for it, not refused.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Fetches ended (good or not).
    fetches: AtomicU64,
    /// Fetches that brought keys, and fetches that failed.
    pub refreshes: AtomicU64,
    pub failures: AtomicU64,
}

impl Jwks {
    /// The JWKS at `url`, not fetched yet.
    pub(crate) fn new(url: url::Url, configured: Vec<Algorithm>) -> Self {
        Jwks {
            url,
            configured,
            keys: ArcSwap::from_pointee(Vec::new()),
            last_fetch: AtomicU64::new(0),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The keys fetched last (empty before the first good fetch).
    pub(crate) fn keys(&self) -> arc_swap::Guard<Arc<Vec<Key>>> {
        self.keys.load()
    }

    /// Fetches the JWKS again, unless a fetch started less than [`REFETCH_EVERY`] ago;
    /// returns whether keys may have changed (worth verifying again). A fetch under way is
    /// waited for rather than repeated: the requests arriving together before the first
    /// fetch, or with a new key during a refetch, all get its keys. A failure keeps the
    /// keys there were.
    pub(crate) async fn refresh(&self) -> bool {
        let ended = self.fetches.load(Ordering::Acquire);
        let _fetching = self.fetch_lock.lock().await;
        if self.fetches.load(Ordering::Acquire) != ended {
            // A fetch ended while this request waited for it.
            return true;
        }
        let now = now_secs();
        let last = self.last_fetch.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < REFETCH_EVERY.as_secs() {
            return false;
        }
        self.last_fetch.store(now.max(1), Ordering::Relaxed);
        let got = self.fetch().await;
        self.fetches.fetch_add(1, Ordering::Release);
        match got {
            Ok(keys) => {
                self.keys.store(Arc::new(keys));
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "fetching the JWKS at {} failed ({e}); keeping the {} keys fetched before",
                    crate::redact::url(&self.url),
                    self.keys.load().len()
                );
                false
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Key>, String> {
        let got = crate::upstream::fetch::get(&self.url, None, FETCH_TIMEOUT, MAX_JWKS).await?;
        if !(200..300).contains(&got.status) {
            return Err(format!("it answered {}", got.status));
        }
        let set: JwkSet =
            serde_json::from_slice(&got.body).map_err(|e| format!("not a JWKS: {e}"))?;
        Ok(from_jwks(
            &set,
            &self.configured,
            &crate::redact::url(&self.url),
        ))
    }
}
