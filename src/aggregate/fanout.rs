//! The fan-out: one read sent to each member cluster at once (at most `concurrency` in
//! flight), each through the single-cluster forwarding path's request preparation (path
//! prefix, filtered headers, the credential of SPEC §3) and each under its own timeout over
//! the whole answer, head and body. A member's failure is an answer too ([`Outcome`]):
//! nothing a member does fails the others.

use super::cache::{AggregateCache, Key};
use crate::cluster::{Choice, Cluster, Registry};
use crate::config::AggregateSettings;
use crate::ops::metrics::UpstreamKind;
use crate::proxy::forward::{self, Caller};
use crate::proxy::ProxyState;
use crate::status::Error;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http_body_util::BodyExt;
use std::sync::Arc;

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
    let (concurrency, timeout) = (settings.concurrency, settings.timeout);
    let asks = members.iter().enumerate().map(|(i, cluster)| async move {
        let query = (read.query)(cluster);
        let asked = ask(
            caller,
            proxy,
            registry,
            cluster,
            read.tail,
            query.as_deref(),
            cache,
        );
        let outcome = match tokio::time::timeout(timeout, asked).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => Outcome::Failed(e),
            Err(_) => {
                proxy
                    .metrics
                    .upstream_error(&cluster.key, UpstreamKind::Timeout);
                Outcome::Failed(Error::timeout(format!(
                    "cluster {} did not answer within {}",
                    cluster.key,
                    humantime::format_duration(timeout)
                )))
            }
        };
        let ok = matches!(&outcome, Outcome::Http { status, .. } if (200..300).contains(status) || *status == 404);
        proxy.metrics.member_result(ok);
        (
            i,
            Answer {
                cluster: cluster.clone(),
                outcome,
            },
        )
    });
    let mut answers: Vec<(usize, Answer)> = stream::iter(asks)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, a)| a).collect()
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
    let choice = Choice {
        cluster: cluster.clone(),
        warning: None,
    };
    let mut prepared = forward::prepare_for(caller, query, proxy, registry, &choice, tail, false)?;
    // The merged answer is re-encoded: members answer plain (no compression), JSON.
    prepared.headers.remove(http1::header::ACCEPT_ENCODING);
    // The key needs the credential `prepare` chose, so the lookup comes after it.
    if let Some(cache) = cache {
        if let Some(key) = Key::new(cluster.key.as_str(), &prepared.uri, &prepared.headers) {
            return cache
                .get_or_fetch(key, fetch(cluster, prepared, proxy))
                .await;
        }
    }
    fetch(cluster, prepared, proxy).await
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
            .upstream_error(&cluster.key, forward::upstream_kind(&e));
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
        .map_err(|e| {
            Error::bad_gateway(format!(
                "cluster {}: the answer was cut short: {}",
                cluster.key,
                crate::tls::describe::describe_chain(&e)
            ))
        })?
        .to_bytes();
    Ok(Outcome::Http {
        status,
        content_type,
        body,
    })
}
