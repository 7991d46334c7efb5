//! Paging an aggregated list (SPEC §6): `limit`/`continue` across the members in cluster
//! key order. A page walks the members from the one the continue token names (or the
//! first), asking each with `limit=<what is left of the page>` and its own continue token,
//! and moves to the next member in the same request when one runs out; the merged list's
//! `metadata.continue` is our token when more remains, absent on the last page. Walking
//! every page gives exactly the unpaged list: the same items, in the same order, with the
//! same annotations.
//!
//! The token is `kpc1.<base64url of the JSON payload>.<base64url of its HMAC-SHA256>`;
//! the payload names the member to go on with, that member's own continue token (empty to
//! start it), the version vector so far, an expiry, and two keyed hashes that bind it to
//! the query (without `continue`, parameters sorted; the path; the cluster header) and to
//! the caller's credential (never the credential itself). Tokens are never logged nor put
//! in messages.

use super::fanout::{self, Answer, Outcome};
use super::merge;
use super::vector::Vector;
use crate::cluster::{Cluster, Registry};
use crate::proxy::forward::Caller;
use crate::proxy::{choose, ProxyState};
use crate::redact::Secret;
use crate::status::{Error, Reason};
use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a continue token we issue stays good.
pub(crate) const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

const PREFIX: &str = "kpc1.";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Signs and checks continue tokens.
pub(crate) struct Pager {
    key: hmac::Key,
    ttl: Duration,
}

/// What a continue token carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Token {
    /// The member to go on with (its key).
    m: String,
    /// That member's own continue token; empty: list it from its start.
    c: String,
    /// The version vector so far (the first page's, and the members met since).
    v: BTreeMap<String, String>,
    /// Expiry, seconds since the Unix epoch.
    e: u64,
    /// Keyed hash of the normalized query, the path and the cluster header.
    q: String,
    /// Keyed hash of the caller's credential headers (or `anonymous`).
    a: String,
}

impl Pager {
    /// Signing with `continueKey` when configured, else with 32 random bytes (and one
    /// warning: pages then neither survive a restart nor move between replicas). Tokens
    /// live `ttl`.
    pub(crate) fn new(key: Option<&Secret>, ttl: Duration) -> Self {
        let key = match key {
            Some(k) => hmac::Key::new(hmac::HMAC_SHA256, k.expose().as_bytes()),
            None => {
                tracing::warn!(
                    "kubeplex.aggregate.continueKey is not set: continue tokens are signed with a key generated at start, so a paged aggregate list cannot go on after a restart or on another replica; set continueKey (the same on every replica)"
                );
                let rng = ring::rand::SystemRandom::new();
                hmac::Key::generate(hmac::HMAC_SHA256, &rng)
                    .expect("the system random number generator works")
            }
        };
        Pager { key, ttl }
    }

    /// A keyed hash of `data` for the purpose `domain`.
    fn keyed_hash(&self, domain: &str, data: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(domain.as_bytes());
        ctx.update(&[0]);
        ctx.update(data);
        B64.encode(ctx.sign().as_ref())
    }

    fn seal(&self, t: &Token) -> String {
        let payload = B64.encode(serde_json::to_vec(t).unwrap_or_default());
        let signed = format!("{PREFIX}{payload}");
        let tag = hmac::sign(&self.key, signed.as_bytes());
        format!("{signed}.{}", B64.encode(tag.as_ref()))
    }

    /// The token in `text`, when we signed it; else why not (never quoting it).
    fn open(&self, text: &str) -> Result<Token, Error> {
        let invalid = |why: &str| Error::bad_request(format!("continue token is not valid: {why}"));
        let (signed, tag) = text
            .rsplit_once('.')
            .filter(|(s, _)| s.starts_with(PREFIX))
            .ok_or_else(|| invalid("it is not one kubeplex issued"))?;
        let tag = B64
            .decode(tag)
            .map_err(|_| invalid("its signature is malformed"))?;
        hmac::verify(&self.key, signed.as_bytes(), &tag).map_err(|_| {
            invalid("its signature does not match (altered, or signed with another key)")
        })?;
        let payload = B64
            .decode(&signed[PREFIX.len()..])
            .map_err(|_| invalid("it is malformed"))?;
        serde_json::from_slice(&payload).map_err(|_| invalid("it is malformed"))
    }
}

/// Whether a list read asks for paging: it has `limit` or `continue`.
pub(crate) fn wanted(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "limit" || k == "continue")
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The caller's credential headers, as bytes to hash: `Authorization` and every
/// `Backstage-Kubernetes-Authorization*` header, sorted; `anonymous` when there is none.
fn caller_credential(headers: &HeaderMap) -> Vec<u8> {
    let mut found: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter(|(n, _)| {
            let n = n.as_str();
            n == "authorization" || n.starts_with("backstage-kubernetes-authorization")
        })
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    if found.is_empty() {
        return b"anonymous".to_vec();
    }
    found.sort();
    let mut out = Vec::new();
    for (n, v) in found {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
        out.extend_from_slice(&v);
        out.push(b'\n');
    }
    out
}

/// The query a token is bound to: the parameters without `continue` and `limit` (a client
/// may change its page size between pages, as the API server allows), sorted, then the
/// path and the cluster header.
fn binding(pairs: &[(String, String)], tail: &str, cluster_header: Option<&str>) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "continue" && k != "limit")
        .collect();
    sorted.sort();
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in sorted {
        q.append_pair(k, v);
    }
    format!("{}\0{tail}\0{}", q.finish(), cluster_header.unwrap_or("")).into_bytes()
}

/// The query a member gets: the caller's without `limit` and `continue` (a version vector's
/// `resourceVersion` replaced by the member's own, or dropped), then `limit` and the
/// member's own `continue` (which goes without `resourceVersion[Match]`).
fn member_query(
    pairs: &[(String, String)],
    key: &str,
    limit: Option<u64>,
    cont: &str,
) -> Option<String> {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        match k.as_str() {
            "limit" | "continue" => continue,
            "resourceVersion" | "resourceVersionMatch" if !cont.is_empty() => continue,
            "resourceVersion" => {
                if let Some(vector) = Vector::decode(v) {
                    if let Some(rv) = vector.get(key) {
                        out.append_pair(k, rv);
                    }
                    continue;
                }
            }
            _ => {}
        }
        out.append_pair(k, v);
    }
    if let Some(l) = limit {
        out.append_pair("limit", &l.to_string());
    }
    if !cont.is_empty() {
        out.append_pair("continue", cont);
    }
    Some(out.finish()).filter(|s| !s.is_empty())
}

/// How many entries (items or Table rows) a member's answer holds, and its own continue.
fn size_and_next(body: &[u8]) -> (u64, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (0, None);
    };
    let n = v
        .get("items")
        .or_else(|| v.get("rows"))
        .and_then(Value::as_array)
        .map_or(0, |a| a.len() as u64);
    let next = v
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    (n, next)
}

/// One page of a list read over `members` (key order).
pub(crate) async fn answer(
    req: &HttpRequest,
    proxy: &ProxyState,
    registry: &Registry,
    members: &[Arc<Cluster>],
    tail: &str,
    agg: &super::AggregateState,
) -> Result<HttpResponse, Error> {
    let (pager, settings) = (&agg.pager, &agg.settings);
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let limit = match pairs.iter().find(|(k, _)| k == "limit") {
        None => None,
        Some((_, v)) => match v.parse::<u64>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => return Err(Error::bad_request("limit must be a non-negative integer")),
        },
    };
    let query_hash = pager.keyed_hash(
        "query",
        &binding(&pairs, tail, choose::header_value(req.headers())?),
    );
    let caller_hash = pager.keyed_hash("caller", &caller_credential(req.headers()));
    let given = pairs
        .iter()
        .find(|(k, v)| k == "continue" && !v.is_empty())
        .map(|(_, v)| v.as_str());
    let (mut idx, mut cont, mut vector) = match given {
        None => (0, String::new(), Vector::default()),
        Some(text) => {
            let t = pager.open(text)?;
            if t.q != query_hash {
                return Err(Error::bad_request(
                    "continue token is not valid: it was issued for another query (path, parameters or clusters)",
                ));
            }
            if t.a != caller_hash {
                return Err(Error::bad_request(
                    "continue token is not valid: it was issued to another caller",
                ));
            }
            if t.e < now() {
                return Err(Error::new(
                    Reason::Expired,
                    "the continue token has expired; list again without continue",
                ));
            }
            let idx = members
                .iter()
                .position(|c| c.key.as_str() == t.m)
                .ok_or_else(|| {
                    Error::new(
                        Reason::Expired,
                        format!(
                            "the continue token goes on with cluster {}, which is no longer served; list again without continue",
                            t.m
                        ),
                    )
                })?;
            (idx, t.c, Vector(t.v))
        }
    };
    let mut answers: Vec<Answer> = Vec::new();
    let mut count: u64 = 0;
    let mut next: Option<(String, String)> = None;
    while let Some(cluster) = members.get(idx) {
        let remaining = limit.map(|l| l.saturating_sub(count));
        if remaining == Some(0) {
            next = Some((cluster.key.to_string(), cont));
            break;
        }
        let q = member_query(&pairs, cluster.key.as_str(), remaining, &cont);
        let query = move |_: &Cluster| q.clone();
        let read = fanout::Read {
            tail,
            query: &query,
        };
        let got = fanout::fan_out(
            &Caller::of(req),
            proxy,
            registry,
            std::slice::from_ref(cluster),
            &read,
            settings,
            agg.cache.as_ref(),
        )
        .await;
        for answer in got {
            let (n, member_next) = match &answer.outcome {
                Outcome::Http { status, body, .. } if (200..300).contains(status) => {
                    size_and_next(body)
                }
                Outcome::Http { status: 410, .. } if !cont.is_empty() => {
                    return Err(Error::new(
                        Reason::Expired,
                        format!(
                            "the continue token has expired: cluster {} no longer has the list being paged; list again without continue",
                            cluster.key
                        ),
                    ));
                }
                _ => (0, None),
            };
            count += n;
            answers.push(answer);
            if let Some(c) = member_next {
                next = Some((cluster.key.to_string(), c));
            }
        }
        if next.is_some() {
            break;
        }
        idx += 1;
        cont = String::new();
    }
    let mut merged = merge::merge(answers, false)?;
    if let Some(page) = merged
        .body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(Vector::decode)
    {
        vector.0.extend(page.0);
    }
    let token = next.map(|(m, c)| {
        pager.seal(&Token {
            m,
            c,
            v: vector.0.clone(),
            e: now() + pager.ttl.as_secs(),
            q: query_hash,
            a: caller_hash,
        })
    });
    if let Some(meta) = merged
        .body
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    {
        meta.insert("resourceVersion".into(), json!(vector.encode()));
        if let Some(t) = token {
            meta.insert("continue".into(), json!(t));
        }
    }
    Ok(merged.response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token {
            m: "config:a".into(),
            c: "member-token".into(),
            v: BTreeMap::from([("config:a".into(), "12".into())]),
            e: now() + 60,
            q: "q".into(),
            a: "a".into(),
        }
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let key = Secret::from("0123456789abcdef0123456789abcdef");
        let pager = Pager::new(Some(&key), TOKEN_TTL);
        let t = token();
        let text = pager.seal(&t);
        assert!(text.starts_with(PREFIX));
        assert_eq!(pager.open(&text).unwrap(), t);
        // a flipped byte anywhere, garbage, another key
        for i in PREFIX.len()..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bytes).unwrap();
            if bad != text {
                let e = pager.open(&bad).unwrap_err();
                assert_eq!(e.reason, Reason::BadRequest, "{i}");
                assert!(e.message.starts_with("continue token is not valid: "));
                assert!(!e.message.contains(&bad));
            }
        }
        for bad in ["", "x", "kpc1.", "kpc1.e30.", "kpc1.e30.AAAA", "e30"] {
            assert_eq!(pager.open(bad).unwrap_err().reason, Reason::BadRequest);
        }
        let other = Pager::new(
            Some(&Secret::from("another key, also thirty-two bytes")),
            TOKEN_TTL,
        );
        assert_eq!(other.open(&text).unwrap_err().reason, Reason::BadRequest);
        // the credential never shows: only keyed hashes do
        let mut h = HeaderMap::new();
        h.insert(
            actix_web::http::header::AUTHORIZATION,
            "Bearer sekrit".parse().unwrap(),
        );
        let hashed = pager.keyed_hash("caller", &caller_credential(&h));
        assert!(!hashed.contains("sekrit"));
        assert_ne!(
            hashed,
            pager.keyed_hash("caller", &caller_credential(&HeaderMap::new()))
        );
    }

    #[test]
    fn member_queries() {
        let mut v = Vector::default();
        v.set("a", "7");
        let pairs: Vec<(String, String)> = vec![
            ("labelSelector".into(), "app=web".into()),
            ("limit".into(), "5".into()),
            ("resourceVersion".into(), v.encode()),
            ("continue".into(), "ours".into()),
        ];
        assert_eq!(
            member_query(&pairs, "a", Some(3), "").as_deref(),
            Some("labelSelector=app%3Dweb&resourceVersion=7&limit=3")
        );
        assert_eq!(
            member_query(&pairs, "b", Some(3), "theirs").as_deref(),
            Some("labelSelector=app%3Dweb&limit=3&continue=theirs")
        );
        assert_eq!(member_query(&[], "b", None, ""), None);
        assert!(wanted(Some("limit=2")));
        assert!(wanted(Some("a=b&continue=x")));
        assert!(!wanted(Some("labelSelector=x")));
        assert!(!wanted(None));
        // the binding ignores continue and parameter order
        let a = binding(&pairs, "/api/v1/services", None);
        let mut swapped = pairs.clone();
        swapped.reverse();
        swapped.retain(|(k, _)| k != "continue");
        assert_eq!(a, binding(&swapped, "/api/v1/services", None));
        assert_ne!(a, binding(&pairs, "/api/v1/pods", None));
        assert_ne!(a, binding(&pairs, "/api/v1/services", Some("a")));
    }
}
