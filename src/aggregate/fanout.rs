//! The fan-out: one read sent to each member cluster at once (at most `concurrency` in
//! flight), each through the single-cluster forwarding path's request preparation (path
//! prefix, filtered headers, the credential of SPEC §3) and each under its own timeout over
//! the whole answer, head and body. A member's failure is an answer too ([`Outcome`]):
//! nothing a member does fails the others.
//!
//! [`open`] is the fan-out of the streamed merge ([`super::stream`]): it returns each
//! member's 2xx answer at its head, the body still to read ([`Source`]).

use super::cache::{AggregateCache, Key};
use crate::cluster::{Choice, Cluster, Registry};
use crate::config::AggregateSettings;
use crate::ops::metrics::UpstreamKind;
use crate::proxy::forward::{self, Caller};
use crate::proxy::ProxyState;
use crate::status::Error;
use crate::upstream::client::ResponseBody;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one member answered.
pub(crate) struct Answer {
    /// The member.
    pub cluster: Arc<Cluster>,
    /// Its HTTP answer, or why there is none.
    pub outcome: Outcome,
}

/// A member's answer.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// An HTTP answer: status, `Content-Type` and the whole body.
    Http {
        status: u16,
        content_type: String,
        body: Bytes,
    },
    /// No answer: connection, TLS or credential failure (502), or the timeout (504).
    Failed(Error),
}

/// One read to fan out: the path after `{base}/aggregate` and each member's query (the
/// caller's, with a version vector's `resourceVersion` replaced by the member's own).
pub(crate) struct Read<'a> {
    /// The request path (still percent-encoded).
    pub tail: &'a str,
    /// The query a member gets.
    pub query: &'a dyn Fn(&Cluster) -> Option<String>,
}

/// Sends the read to every member of `members` (in parallel, `settings.concurrency` at
/// most, each under `settings.timeout`) and returns the answers in the members' order.
/// With a `cache`, a member's answer comes from it when it holds one for the same
/// credential, cluster, path, query and `Accept` (and is kept there when 2xx); never pass
/// one for a watch.
pub(crate) async fn fan_out(
    caller: &Caller<'_>,
    proxy: &ProxyState,
    registry: &Registry,
    members: &[Arc<Cluster>],
    read: &Read<'_>,
    settings: &AggregateSettings,
    cache: Option<&AggregateCache>,
) -> Vec<Answer> {
    fan_out_aged(caller, proxy, registry, members, read, settings, cache)
        .await
        .0
}

/// [`fan_out`], and when the oldest of the answers was fetched when every answer is a
/// kept one (all 2xx, through `cache`), else `None`.
pub(crate) async fn fan_out_aged(
    caller: &Caller<'_>,
    proxy: &ProxyState,
    registry: &Registry,
    members: &[Arc<Cluster>],
    read: &Read<'_>,
    settings: &AggregateSettings,
    cache: Option<&AggregateCache>,
) -> (Vec<Answer>, Option<Instant>) {
    let (concurrency, timeout) = (settings.concurrency, settings.timeout);
    let asks = members.iter().enumerate().map(|(i, cluster)| async move {
        let query = (read.query)(cluster);
        let asked = ask_aged(
            caller,
            proxy,
            registry,
            cluster,
            read.tail,
            query.as_deref(),
            cache,
        );
        let mut born = None;
        let outcome = match tokio::time::timeout(timeout, asked).await {
            Ok(Ok((o, b))) => {
                born = b;
                o
            }
            Ok(Err(e)) => Outcome::Failed(e),
            Err(_) => {
                proxy
                    .metrics
                    .upstream_error(cluster.key.as_str(), UpstreamKind::Timeout);
                Outcome::Failed(timed_out(cluster.key.as_str(), timeout))
            }
        };
        let ok = matches!(&outcome, Outcome::Http { status, .. } if (200..300).contains(status) || *status == 404);
        proxy.metrics.member_result(ok);
        (
            i,
            born,
            Answer {
                cluster: cluster.clone(),
                outcome,
            },
        )
    });
    let mut answers: Vec<(usize, Option<Instant>, Answer)> = stream::iter(asks)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    answers.sort_by_key(|(i, _, _)| *i);
    let oldest = answers
        .iter()
        .try_fold(None, |oldest: Option<Instant>, (_, born, _)| {
            let born = (*born)?;
            Some(Some(oldest.map_or(born, |o| o.min(born))))
        })
        .flatten();
    (answers.into_iter().map(|(_, _, a)| a).collect(), oldest)
}

/// One member's answer to a read of `tail?query`, read whole: from `cache` when it holds
/// it, else fetched. No time bound: the caller puts one around it.
pub(crate) async fn ask(
    caller: &Caller<'_>,
    proxy: &ProxyState,
    registry: &Registry,
    cluster: &Arc<Cluster>,
    tail: &str,
    query: Option<&str>,
    cache: Option<&AggregateCache>,
) -> Result<Outcome, Error> {
    ask_aged(caller, proxy, registry, cluster, tail, query, cache)
        .await
        .map(|(o, _)| o)
}

/// [`ask`], and when the answer was fetched when it is a kept one.
async fn ask_aged(
    caller: &Caller<'_>,
    proxy: &ProxyState,
    registry: &Registry,
    cluster: &Arc<Cluster>,
    tail: &str,
    query: Option<&str>,
    cache: Option<&AggregateCache>,
) -> Result<(Outcome, Option<Instant>), Error> {
    let prepared = prepare(caller, proxy, registry, cluster, tail, query)?;
    // The key needs the credential `prepare` chose, so the lookup comes after it.
    if let Some(cache) = cache {
        if let Some(key) = Key::new(cluster.key.as_str(), &prepared.uri, &prepared.headers) {
            return cache
                .get_or_fetch_aged(key, fetch(cluster, prepared, proxy))
                .await;
        }
    }
    Ok((fetch(cluster, prepared, proxy).await?, None))
}

/// The read of `tail?query` prepared for `cluster` as the forwarding path prepares one.
fn prepare(
    caller: &Caller<'_>,
    proxy: &ProxyState,
    registry: &Registry,
    cluster: &Arc<Cluster>,
    tail: &str,
    query: Option<&str>,
) -> Result<forward::Prepared, Error> {
    let choice = Choice {
        cluster: cluster.clone(),
        warning: None,
    };
    let mut prepared = forward::prepare_for(
        caller,
        query,
        proxy,
        registry,
        &choice,
        tail,
        forward::Via::Hyper,
    )?;
    // The merged answer is re-encoded: members answer plain (no compression), JSON.
    prepared.headers.remove(http1::header::ACCEPT_ENCODING);
    Ok(prepared)
}

/// The 504 of a member that did not answer within `timeout`.
fn timed_out(key: &str, timeout: Duration) -> Error {
    Error::timeout(format!(
        "cluster {key} did not answer within {}",
        humantime::format_duration(timeout)
    ))
}

/// The 502 of a member whose answer broke off.
fn cut_short(key: &str, e: &hyper::Error) -> Error {
    Error::bad_gateway(format!(
        "cluster {key}: the answer was cut short: {}",
        crate::tls::describe::describe_chain(e)
    ))
}

/// Sends the prepared read to `cluster` and reads the answer whole.
async fn fetch(
    cluster: &Cluster,
    prepared: forward::Prepared,
    proxy: &ProxyState,
) -> Result<Outcome, Error> {
    let up = prepared.up.clone();
    let request = forward::get_request(prepared)?;
    let res = up.http.request(request).await.map_err(|e| {
        proxy
            .metrics
            .upstream_error(cluster.key.as_str(), forward::upstream_kind(&e));
        forward::send_error(cluster.key.as_str(), &e)
    })?;
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get(http1::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| cut_short(cluster.key.as_str(), &e))?
        .to_bytes();
    Ok(Outcome::Http {
        status,
        content_type,
        body,
    })
}

/// A member's answer to a read whose body may still be to come (the streamed merge).
pub(crate) enum Opened {
    /// A 2xx answer: its status, `Content-Type` and where its body comes from.
    Body {
        status: u16,
        content_type: String,
        source: Source,
    },
    /// A whole answer: an error answer (read whole: it is small) or no answer.
    Done(Outcome),
}

/// How much of a whole body [`Source::next`] hands out at once.
const PIECE: usize = 64 * 1024;

/// How many bytes of a member's body are read ahead of the merge ([`Source::Stream`]): the
/// members send their lists at once while the merge goes through them one after the other.
pub(crate) const READ_AHEAD: usize = 256 * 1024;

/// Where a 2xx answer's body comes from.
pub(crate) enum Source {
    /// The member's connection, read as the body arrives by a task of its own
    /// ([`read_ahead`]), at most [`READ_AHEAD`] bytes (and one frame) ahead of the merge.
    Stream {
        /// The body's frames, as the task read them; closed after the last.
        frames: tokio::sync::mpsc::UnboundedReceiver<Result<Bytes, hyper::Error>>,
        /// The bytes the task may still read ahead; the merge gives back what it takes.
        room: Arc<tokio::sync::Semaphore>,
        /// The reading task, aborted (its connection closed) when the source goes.
        _task: AbortOnDrop,
        /// What is left of the member's timeout: the head used some, and each wait for
        /// the body's bytes uses more (time the merge spends elsewhere does not count).
        left: Duration,
        /// The member's whole timeout (for the messages).
        timeout: Duration,
    },
    /// A whole body (the cache's), handed out in pieces.
    Whole(Bytes),
    /// A body in these pieces, then cut short with this error if any (the tests' member).
    #[cfg(test)]
    Pieces(std::collections::VecDeque<Bytes>, Option<Error>),
}

impl Source {
    /// The body's next bytes; `None` at its end; a 504 when the member's time is up, a 502
    /// when the body broke off.
    pub(crate) async fn next(&mut self, key: &str) -> Result<Option<Bytes>, Error> {
        match self {
            Source::Whole(b) if b.is_empty() => Ok(None),
            Source::Whole(b) => Ok(Some(b.split_to(b.len().min(PIECE)))),
            #[cfg(test)]
            Source::Pieces(pieces, end) => match pieces.pop_front() {
                Some(p) => Ok(Some(p)),
                None => end.take().map_or(Ok(None), Err),
            },
            Source::Stream {
                frames,
                room,
                left,
                timeout,
                ..
            } => {
                let started = Instant::now();
                let frame = tokio::time::timeout(*left, frames.recv()).await;
                *left = left.saturating_sub(started.elapsed());
                match frame {
                    Err(_) => Err(Error::timeout(format!(
                        "cluster {key} did not finish its answer within {}",
                        humantime::format_duration(*timeout)
                    ))),
                    Ok(None) => Ok(None),
                    Ok(Some(Err(e))) => Err(cut_short(key, &e)),
                    Ok(Some(Ok(data))) => {
                        room.add_permits(data.len().min(READ_AHEAD));
                        Ok(Some(data))
                    }
                }
            }
        }
    }

    /// The rest of the body, whole.
    pub(crate) async fn rest(&mut self, key: &str) -> Result<Bytes, Error> {
        if let Source::Whole(b) = self {
            return Ok(std::mem::take(b));
        }
        let mut all = bytes::BytesMut::new();
        while let Some(b) = self.next(key).await? {
            all.extend_from_slice(&b);
        }
        Ok(all.freeze())
    }
}

/// A task aborted when this goes.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A [`Source::Stream`] of `body`: a task on this worker (the body's connection belongs to
/// its hyper client, which is `!Send`) reads it ahead of the merge.
fn stream_source(body: ResponseBody, left: Duration, timeout: Duration) -> Source {
    let (tx, frames) = tokio::sync::mpsc::unbounded_channel();
    let room = Arc::new(tokio::sync::Semaphore::new(READ_AHEAD));
    let task = tokio::task::spawn_local(read_ahead(body, tx, room.clone()));
    Source::Stream {
        frames,
        room,
        _task: AbortOnDrop(task),
        left,
        timeout,
    }
}

/// Reads `body` frame by frame into `tx` while there is `room` (bytes the merge has not
/// taken yet); closes `tx` after the last frame or an error.
async fn read_ahead(
    mut body: ResponseBody,
    tx: tokio::sync::mpsc::UnboundedSender<Result<Bytes, hyper::Error>>,
    room: Arc<tokio::sync::Semaphore>,
) {
    while let Some(frame) = body.frame().await {
        let data = match frame {
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
            Ok(frame) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        // At most READ_AHEAD bytes (and this frame) wait for the merge.
        let n = u32::try_from(data.len().min(READ_AHEAD)).unwrap_or(u32::MAX);
        match room.acquire_many(n).await {
            Ok(permit) => permit.forget(),
            Err(_) => return,
        }
        if tx.send(Ok(data)).is_err() {
            return;
        }
    }
}

/// Sends the read to every member of `members` as [`fan_out`] does (no cache), but returns
/// each member's 2xx answer as soon as its head is in, its body still to read; error
/// answers are read whole. The member's timeout bounds its head, then (through
/// [`Source::next`]) the waits for its body. `settings.concurrency` bounds the reads
/// waiting for their heads: a member whose head came keeps its connection (its body
/// waiting there, held back by flow control) until the merge has read it.
pub(crate) async fn open(
    caller: &Caller<'_>,
    proxy: &ProxyState,
    registry: &Registry,
    members: &[Arc<Cluster>],
    read: &Read<'_>,
    settings: &AggregateSettings,
) -> Vec<(Arc<Cluster>, Opened)> {
    let (concurrency, timeout) = (settings.concurrency, settings.timeout);
    let opens = members.iter().enumerate().map(|(i, cluster)| async move {
        let query = (read.query)(cluster);
        let opened = open_one(
            caller,
            proxy,
            registry,
            cluster,
            read.tail,
            query.as_deref(),
            timeout,
        )
        .await
        .unwrap_or_else(|e| Opened::Done(Outcome::Failed(e)));
        (i, (cluster.clone(), opened))
    });
    let mut opened: Vec<(usize, (Arc<Cluster>, Opened))> = stream::iter(opens)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    opened.sort_by_key(|(i, _)| *i);
    opened.into_iter().map(|(_, o)| o).collect()
}

async fn open_one(
    caller: &Caller<'_>,
    proxy: &ProxyState,
    registry: &Registry,
    cluster: &Arc<Cluster>,
    tail: &str,
    query: Option<&str>,
    timeout: Duration,
) -> Result<Opened, Error> {
    let started = Instant::now();
    let key = cluster.key.as_str();
    let prepared = prepare(caller, proxy, registry, cluster, tail, query)?;
    let up = prepared.up.clone();
    let request = forward::get_request(prepared)?;
    let res = match tokio::time::timeout(timeout, up.http.request(request)).await {
        Err(_) => return Err(timed_out(key, timeout)),
        Ok(r) => r.map_err(|e| forward::send_error(key, &e))?,
    };
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get(http1::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let left = timeout.saturating_sub(started.elapsed());
    let body = res.into_body();
    if (200..300).contains(&status) {
        return Ok(Opened::Body {
            status,
            content_type,
            source: stream_source(body, left, timeout),
        });
    }
    let body = match tokio::time::timeout(left, body.collect()).await {
        Err(_) => return Err(timed_out(key, timeout)),
        Ok(r) => r.map_err(|e| cut_short(key, &e))?.to_bytes(),
    };
    Ok(Opened::Done(Outcome::Http {
        status,
        content_type,
        body,
    }))
}
