//! The aggregate read cache (SPEC §6, last bullet): a member's successful answer to a read
//! is kept for `kubeplex.aggregate.cacheTtl` (default 2s; 0 turns the cache off), so that
//! repeated identical lists do not reach every cluster again.
//!
//! One [`moka::future::Cache`] is shared by every worker. An entry is keyed by
//! - a SHA-256 of the credential actually sent upstream (the `Authorization` header that
//!   [`crate::proxy::forward::prepare`] chose by the rules of SPEC §3, "" when none, and the
//!   `Impersonate-*` headers that go with it), so that no caller ever sees an answer
//!   fetched with another caller's credential;
//! - the cluster key and the upstream target (origin, cluster path prefix, path tail), so a
//!   reload that moves a cluster does not serve the old server's answers;
//! - the normalized query (parameters decoded and sorted by name, the order of a repeated
//!   name kept) and the `Accept` sent upstream (a Table is not a list).
//!
//! Only 2xx answers are kept; any other status and every failure (connect, TLS, timeout,
//! cut-short body) is handed to the callers waiting at that moment and asked again next time.
//! Concurrent identical misses share one upstream fetch: [`moka::future::Cache::try_get_with`]
//! runs one init future per key and makes the others wait for its result. Its init future
//! need not be `Send` (moka 0.12 polls it in the calling task), which matters here: the
//! fetch uses this worker's hyper client, held in an `Rc`. A caller on another worker waits
//! on moka's lock, which is `Send`; when the fetching caller goes away (its timeout, or its
//! client disconnected), moka lets one of the waiters fetch instead.
//!
//! Watches are never cached: the route sends them elsewhere before the fan-out, and
//! [`Key::new`] refuses any query with a `watch` parameter.
//!
//! The cache is bounded by weight: the total bytes of the kept bodies (and keys), at most
//! [`MAX_BYTES`].
//!
//! Merged answers are kept too (a second moka cache, bounded the same way): a list or Table
//! merged from member answers that were all kept ones is kept whole under a
//! [`MergedKey`] (registry generation, path, normalized query, the members, the caller's
//! request headers) until the oldest member answer it was made of expires, so it is never
//! older than the member entries would allow. A repeated identical list is then answered
//! with those bytes as they are: no member key, credential or lookup per member, no merge.

use super::fanout::Outcome;
use crate::status::Error;
use bytes::Bytes;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The weight bound of the cache: 64 MiB of bodies.
pub(crate) const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What identifies one member's answer to one read with one credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// SHA-256 of the credential sent upstream (`Authorization` and `Impersonate-*`).
    credential: [u8; 32],
    /// The member's cluster key.
    cluster: String,
    /// The upstream URL without the query: origin, cluster path prefix, path tail.
    target: String,
    /// The query, decoded, sorted by name and encoded again.
    query: String,
    /// The `Accept` values sent upstream, joined with ", ".
    accept: String,
}

impl Key {
    /// The key of the request `headers` (as sent upstream) to `uri` (origin, prefix, tail
    /// and query, as sent upstream) on `cluster`; `None` when the read must not be cached
    /// (a `watch` parameter in the query).
    pub(crate) fn new(cluster: &str, uri: &str, headers: &http1::HeaderMap) -> Option<Key> {
        let (target, query) = match uri.split_once('?') {
            Some((t, q)) => (t, q),
            None => (uri, ""),
        };
        let query = normalize_query(query)?;
        let accept = headers
            .get_all(http1::header::ACCEPT)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        Some(Key {
            credential: credential_hash(headers),
            cluster: cluster.to_string(),
            target: target.to_string(),
            query,
            accept,
        })
    }

    /// The bytes this key holds, for the weigher.
    fn weight(&self) -> usize {
        32 + self.cluster.len() + self.target.len() + self.query.len() + self.accept.len()
    }
}

/// What identifies a merged answer: a SHA-256 over the registry's generation, the path,
/// the normalized query, the members (their keys, in order) and the caller's request
/// headers (all but those that cannot change what a member is sent, see
/// [`MergedKey::new`]). The caller's headers and the registry decide each member's
/// credential ([`crate::proxy::forward::prepare_for`]), so the same key means the same
/// credential sent to the same members: no caller is served a merged answer made with
/// another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MergedKey([u8; 32]);

/// Request headers left out of a [`MergedKey`]: they vary per request or connection and
/// are never part of a member's credential.
const NOT_IN_MERGED_KEY: [&str; 7] = [
    "connection",
    "keep-alive",
    "user-agent",
    "x-request-id",
    "traceparent",
    "tracestate",
    "content-length",
];

impl MergedKey {
    /// The key of a read of `tail?query` by a caller with `headers`, from `members` (in
    /// order) of the registry of `generation`; `None` for a query with `watch`.
    pub(crate) fn new<'a>(
        generation: u64,
        tail: &str,
        query: &str,
        members: impl Iterator<Item = &'a str>,
        headers: &actix_web::http::header::HeaderMap,
    ) -> Option<MergedKey> {
        let query = normalize_query(query)?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut field = |b: &[u8]| {
            ctx.update(&(b.len() as u64).to_be_bytes());
            ctx.update(b);
        };
        field(&generation.to_be_bytes());
        field(tail.as_bytes());
        field(query.as_bytes());
        let mut n = 0u64;
        for m in members {
            field(m.as_bytes());
            n += 1;
        }
        field(&n.to_be_bytes());
        for (name, value) in headers {
            if NOT_IN_MERGED_KEY.contains(&name.as_str()) {
                continue;
            }
            field(name.as_str().as_bytes());
            field(value.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Some(MergedKey(out))
    }
}

/// The query with its parameters decoded, sorted by name (a repeated name keeps its
/// order: it may matter upstream) and encoded again; `None` when it has `watch`.
fn normalize_query(query: &str) -> Option<String> {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.iter().any(|(k, _)| k == "watch") {
        return None;
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish(),
    )
}

/// SHA-256 over the `Authorization` header sent upstream ("" when none) and the
/// `Impersonate-*` headers sent with it, each length-prefixed so no two sets collide.
fn credential_hash(headers: &http1::HeaderMap) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |b: &[u8]| {
        ctx.update(&(b.len() as u64).to_be_bytes());
        ctx.update(b);
    };
    let auth = headers
        .get(http1::header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    field(auth);
    for (name, value) in headers {
        if name.as_str().starts_with("impersonate-") {
            field(name.as_str().as_bytes());
            field(value.as_bytes());
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// A kept answer: a member's 2xx, and when it was fetched.
#[derive(Debug, Clone)]
struct Cached {
    status: u16,
    content_type: String,
    body: Bytes,
    born: Instant,
}

/// A merged answer kept whole: its `Content-Type`, body, and when it must go (when the
/// oldest member answer it was made of does).
#[derive(Debug, Clone)]
pub(crate) struct Merged {
    /// The merged answer's `Content-Type`.
    pub content_type: &'static str,
    /// The merged body.
    pub body: Bytes,
    expires: Instant,
}

/// Hit and miss counts since start (`kubeplex_aggregate_cache_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    /// Answers served without a fetch of their own: a kept entry, or the value of an
    /// identical fetch already in flight.
    pub hits: u64,
    /// Answers this caller fetched upstream (whatever came of the fetch).
    pub misses: u64,
}

/// The aggregate read cache, shared by every worker.
pub(crate) struct AggregateCache {
    cache: moka::future::Cache<Key, Cached>,
    /// Whole merged answers, by [`MergedKey`].
    merged: moka::sync::Cache<MergedKey, Merged>,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl AggregateCache {
    /// A cache whose entries live `ttl`; `None` when `ttl` is 0 (caching off).
    pub(crate) fn new(ttl: Duration) -> Option<Self> {
        Self::with_capacity(ttl, MAX_BYTES)
    }

    /// As [`AggregateCache::new`] with a weight bound of `max_bytes`.
    pub(crate) fn with_capacity(ttl: Duration, max_bytes: u64) -> Option<Self> {
        if ttl.is_zero() {
            return None;
        }
        let cache = moka::future::Cache::builder()
            .name("kubeplex-aggregate")
            .max_capacity(max_bytes)
            .weigher(|k: &Key, v: &Cached| {
                let w = k.weight() + v.content_type.len() + v.body.len();
                u32::try_from(w).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        let merged = moka::sync::Cache::builder()
            .name("kubeplex-aggregate-merged")
            .max_capacity(max_bytes)
            .weigher(|_: &MergedKey, v: &Merged| {
                u32::try_from(32 + v.body.len()).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        Some(AggregateCache {
            cache,
            merged,
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// Hits and misses so far.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The merged answer kept under `key` while every member answer it was made of is
    /// still fresh; counted as a hit for each of its `members`.
    pub(crate) fn merged(&self, key: &MergedKey, members: usize) -> Option<Merged> {
        let m = self.merged.get(key)?;
        if m.expires <= Instant::now() {
            return None;
        }
        self.hits.fetch_add(members as u64, Ordering::Relaxed);
        Some(m)
    }

    /// Keeps a merged answer made of member answers the oldest of which was fetched at
    /// `oldest`: it goes when that one does.
    pub(crate) fn keep_merged(
        &self,
        key: MergedKey,
        content_type: &'static str,
        body: Bytes,
        oldest: Instant,
    ) {
        let expires = oldest + self.ttl;
        if expires > Instant::now() {
            self.merged.insert(
                key,
                Merged {
                    content_type,
                    body,
                    expires,
                },
            );
        }
    }

    /// The answer kept under `key`, else the one `fetch` gives (kept when 2xx). Identical
    /// concurrent calls run one `fetch` (which need not be `Send`) and share its result,
    /// failure included.
    #[cfg(test)]
    pub(crate) async fn get_or_fetch<F>(&self, key: Key, fetch: F) -> Result<Outcome, Error>
    where
        F: Future<Output = Result<Outcome, Error>>,
    {
        self.get_or_fetch_aged(key, fetch).await.map(|(o, _)| o)
    }

    /// [`AggregateCache::get_or_fetch`], with when the answer was fetched when it is (now)
    /// kept.
    pub(crate) async fn get_or_fetch_aged<F>(
        &self,
        key: Key,
        fetch: F,
    ) -> Result<(Outcome, Option<Instant>), Error>
    where
        F: Future<Output = Result<Outcome, Error>>,
    {
        let mut fetched = false;
        let result = self
            .cache
            .try_get_with(key, async {
                fetched = true;
                let born = Instant::now();
                match fetch.await {
                    Ok(Outcome::Http {
                        status,
                        content_type,
                        body,
                    }) if (200..300).contains(&status) => Ok(Cached {
                        status,
                        content_type,
                        body,
                        born,
                    }),
                    Ok(other) => Err(Uncached::Answer(other)),
                    Err(e) => Err(Uncached::Error(e)),
                }
            })
            .await;
        let counter = if fetched { &self.misses } else { &self.hits };
        match result {
            Ok(c) => {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok((
                    Outcome::Http {
                        status: c.status,
                        content_type: c.content_type,
                        body: c.body,
                    },
                    Some(c.born),
                ))
            }
            Err(e) => {
                if fetched {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                match &*e {
                    Uncached::Answer(o) => Ok((o.clone(), None)),
                    Uncached::Error(e) => Err(e.clone()),
                }
            }
        }
    }
}

/// A fetch's result that is not kept, handed to the callers waiting for it.
enum Uncached {
    /// A non-2xx answer, or a member failure.
    Answer(Outcome),
    /// An error of the fetch itself.
    Error(Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http1::HeaderMap {
        let mut h = http1::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http1::HeaderValue::from_static(v));
        }
        h
    }

    fn ok(body: &'static str) -> Outcome {
        Outcome::Http {
            status: 200,
            content_type: "application/json".into(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn the_query_is_normalized() {
        let h = headers(&[]);
        let a = Key::new(
            "c:a",
            "http://h/api/v1/pods?limit=5&labelSelector=a%3Db",
            &h,
        );
        let b = Key::new("c:a", "http://h/api/v1/pods?labelSelector=a=b&limit=5", &h);
        assert_eq!(a, b);
        let c = Key::new("c:a", "http://h/api/v1/pods?labelSelector=a=c&limit=5", &h);
        assert_ne!(a, c);
        assert_eq!(
            Key::new("c:a", "http://h/api/v1/pods", &h),
            Key::new("c:a", "http://h/api/v1/pods?", &h)
        );
    }

    #[test]
    fn watches_are_never_keyed() {
        let h = headers(&[]);
        assert!(Key::new("c:a", "http://h/api/v1/pods?watch=1", &h).is_none());
        assert!(Key::new("c:a", "http://h/api/v1/pods?limit=1&watch=false", &h).is_none());
    }

    #[test]
    fn credential_cluster_and_accept_are_in_the_key() {
        let uri = "http://h/api/v1/pods";
        let none = Key::new("c:a", uri, &headers(&[])).unwrap();
        let a = Key::new("c:a", uri, &headers(&[("authorization", "Bearer a")])).unwrap();
        let b = Key::new("c:a", uri, &headers(&[("authorization", "Bearer b")])).unwrap();
        let a_as = Key::new(
            "c:a",
            uri,
            &headers(&[("authorization", "Bearer a"), ("impersonate-user", "x")]),
        )
        .unwrap();
        let table = Key::new(
            "c:a",
            uri,
            &headers(&[
                ("authorization", "Bearer a"),
                ("accept", "application/json;as=Table;v=v1;g=meta.k8s.io"),
            ]),
        )
        .unwrap();
        let other = Key::new("c:b", uri, &headers(&[("authorization", "Bearer a")])).unwrap();
        let keys = [&none, &a, &b, &a_as, &table, &other];
        for (i, x) in keys.iter().enumerate() {
            for y in &keys[i + 1..] {
                assert_ne!(x, y);
            }
        }
        // No token in the key itself.
        assert!(!format!("{a:?}").contains("Bearer"));
    }

    #[test]
    fn a_merged_answer_goes_with_its_oldest_member_answer() {
        let ttl = Duration::from_secs(60);
        let cache = AggregateCache::new(ttl).unwrap();
        let h = actix_web::http::header::HeaderMap::new();
        let key = |members: &[&str], tail: &str| {
            MergedKey::new(1, tail, "", members.iter().copied(), &h).unwrap()
        };
        let ab = key(&["c:a", "c:b"], "/api/v1/pods");
        let body = Bytes::from_static(b"{}");
        cache.keep_merged(ab, "application/json", body.clone(), Instant::now());
        assert_eq!(cache.merged(&ab, 2).unwrap().body, body);
        assert_eq!(cache.counts().hits, 2);
        // Other members, another path: other keys.
        assert!(cache.merged(&key(&["c:a"], "/api/v1/pods"), 1).is_none());
        assert!(cache
            .merged(&key(&["c:a", "c:b"], "/api/v1/services"), 2)
            .is_none());
        // Made of a member answer already past its TTL: not kept.
        let old = key(&["c:b"], "/api/v1/pods");
        let long_ago = Instant::now()
            .checked_sub(ttl + Duration::from_secs(1))
            .unwrap();
        cache.keep_merged(old, "application/json", body, long_ago);
        assert!(cache.merged(&old, 1).is_none());
    }

    #[test]
    fn the_merged_key_has_the_callers_headers_and_the_generation() {
        use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
            }
            h
        };
        let key = |generation: u64, h: &HeaderMap| {
            MergedKey::new(
                generation,
                "/api/v1/pods",
                "a=1&b=2",
                ["c:a"].into_iter(),
                h,
            )
        };
        let a = key(1, &headers(&[("authorization", "Bearer a")]));
        assert_ne!(a, key(1, &headers(&[("authorization", "Bearer b")])));
        assert_ne!(a, key(2, &headers(&[("authorization", "Bearer a")])));
        assert_ne!(a, key(1, &headers(&[])));
        assert_ne!(
            a,
            key(
                1,
                &headers(&[("authorization", "Bearer a"), ("impersonate-user", "x")])
            )
        );
        // What cannot change a member's credential is left out.
        assert_eq!(
            a,
            key(
                1,
                &headers(&[("authorization", "Bearer a"), ("user-agent", "curl")])
            )
        );
        // The query is normalized; a watch is never kept.
        let h = headers(&[]);
        assert_eq!(
            MergedKey::new(1, "/p", "b=2&a=1", ["c:a"].into_iter(), &h),
            MergedKey::new(1, "/p", "a=1&b=2", ["c:a"].into_iter(), &h)
        );
        assert!(MergedKey::new(1, "/p", "watch=1", ["c:a"].into_iter(), &h).is_none());
    }

    #[test]
    fn zero_ttl_is_off() {
        assert!(AggregateCache::new(Duration::ZERO).is_none());
        assert!(AggregateCache::new(Duration::from_secs(2)).is_some());
    }

    #[actix_web::test]
    async fn only_2xx_is_kept_and_concurrent_misses_share_one_fetch() {
        let cache = AggregateCache::new(Duration::from_secs(60)).unwrap();
        let key = Key::new("c:a", "http://h/api/v1/pods", &headers(&[])).unwrap();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            // Yield so the other callers find the fetch in flight.
            tokio::task::yield_now().await;
            Ok(ok("{}"))
        };
        let all = futures_util::future::join_all(
            (0..10).map(|_| cache.get_or_fetch(key.clone(), fetch())),
        )
        .await;
        assert!(all
            .iter()
            .all(|o| matches!(o, Ok(Outcome::Http { status: 200, .. }))));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(cache.counts(), Counts { hits: 9, misses: 1 });

        let bad = Key::new("c:b", "http://h/api/v1/pods", &headers(&[])).unwrap();
        for _ in 0..2 {
            let got = cache
                .get_or_fetch(bad.clone(), async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    Ok(Outcome::Http {
                        status: 500,
                        content_type: String::new(),
                        body: Bytes::new(),
                    })
                })
                .await;
            assert!(matches!(got, Ok(Outcome::Http { status: 500, .. })));
            let failed = cache
                .get_or_fetch(bad.clone(), async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    Err(Error::bad_gateway("down"))
                })
                .await;
            assert_eq!(failed.unwrap_err().message, "down");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 5);
    }
}
