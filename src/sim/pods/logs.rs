//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: a container's log as plain text, with
//! `follow=true` streaming a new line every log interval (default 1 s, pod annotation
//! `sim.kubeplex.io/log-interval`) for as long as the client stays, each line flushed as it
//! is produced; `tailLines`, `timestamps` and `limitBytes` as the real server has them.
//! Over WebSocket (`binary.k8s.io`, `base64.binary.k8s.io`) each chunk is one message.

/// Subprotocols of the WebSocket form of the log (the API server's stream reader).
pub(crate) const LOG_PROTOCOLS: &[&str] = &["binary.k8s.io", "base64.binary.k8s.io"];

use super::store::Pod;
use super::ws::{WsReceiver, WsSender};
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use std::time::Duration;

/// The lines a container logged at start.
pub(crate) fn startup_lines(pod: &Pod, container: &str) -> Vec<(DateTime<Utc>, String)> {
    let c = pod.container(Some(container));
    let image = c.map(|c| c.image.as_str()).unwrap_or("");
    let port = c
        .and_then(|c| c.ports.first().copied())
        .map(|p| format!("listening on :{p}"))
        .unwrap_or_else(|| "no ports to listen on".to_string());
    let lines = [
        format!(
            "starting {container} ({image}) in pod {}/{}",
            pod.namespace, pod.name
        ),
        "loaded configuration from /etc/config (3 keys)".to_string(),
        port,
        "readiness probe succeeded".to_string(),
        "serving requests".to_string(),
    ];
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            (
                pod.created + chrono::Duration::milliseconds(150 * i as i64),
                l,
            )
        })
        .collect()
}

/// The `n`th line a running container logs after start (n from 1).
pub(crate) fn tick_line(pod: &Pod, container: &str, n: u64) -> String {
    format!(
        "{container}: handled request {n} GET /healthz 200 ({} ms)",
        1 + (n * 7 + super::store::fnv(&pod.name) % 13) % 23
    )
}

/// Log query options.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogOptions {
    /// `follow=true`.
    pub follow: bool,
    /// `tailLines`.
    pub tail_lines: Option<usize>,
    /// `timestamps=true`.
    pub timestamps: bool,
    /// `limitBytes`.
    pub limit_bytes: Option<usize>,
}

fn render(ts: DateTime<Utc>, line: &str, timestamps: bool) -> String {
    if timestamps {
        format!(
            "{} {line}\n",
            ts.to_rfc3339_opts(SecondsFormat::Nanos, true)
        )
    } else {
        format!("{line}\n")
    }
}

/// The log body as a stream of chunks (one per line when following).
pub(crate) fn stream(
    pod: Pod,
    container: String,
    opts: LogOptions,
) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> {
    let mut first: Vec<(DateTime<Utc>, String)> = startup_lines(&pod, &container);
    if let Some(n) = opts.tail_lines {
        let skip = first.len().saturating_sub(n);
        first.drain(..skip);
    }
    let initial: String = first
        .iter()
        .map(|(ts, l)| render(*ts, l, opts.timestamps))
        .collect();
    let interval: Duration = pod.log_interval;
    let limit = opts.limit_bytes.unwrap_or(usize::MAX);
    // State: (next tick number, bytes sent, initial chunk pending)
    futures_util::stream::unfold((1u64, 0usize, Some(initial)), move |(n, sent, initial)| {
        let pod = pod.clone();
        let container = container.clone();
        let follow = opts.follow;
        let timestamps = opts.timestamps;
        async move {
            if sent >= limit {
                return None;
            }
            let (chunk, next) = match initial {
                Some(s) if !s.is_empty() => (s, n),
                _ => {
                    if !follow {
                        return None;
                    }
                    tokio::time::sleep(interval).await;
                    let line = render(Utc::now(), &tick_line(&pod, &container, n), timestamps);
                    (line, n + 1)
                }
            };
            let mut bytes = chunk.into_bytes();
            bytes.truncate(limit - sent);
            let len = bytes.len();
            Some((Ok(Bytes::from(bytes)), (next, sent + len, None)))
        }
    })
}

/// Sends the log over WebSocket, one message per chunk, until it ends (then a normal
/// close) or the client goes away.
pub(crate) async fn websocket_session(
    mut rx: WsReceiver,
    tx: WsSender,
    log: impl futures_core::Stream<Item = Result<Bytes, std::io::Error>>,
    base64: bool,
) {
    let send = async {
        let mut log = std::pin::pin!(log);
        while let Some(Ok(chunk)) = log.next().await {
            let sent = if base64 {
                tx.text(base64::engine::general_purpose::STANDARD.encode(&chunk))
                    .await
            } else {
                tx.binary(chunk).await
            };
            if sent.is_err() {
                return;
            }
        }
        tx.close_normal().await;
    };
    // The receiver answers pings and notices the client leaving.
    let receive = async { while rx.next().await.is_some() {} };
    tokio::select! {
        _ = send => {}
        _ = receive => {}
    }
}
