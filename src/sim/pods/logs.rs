//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: a container's log as plain text, with
//! `follow=true` streaming a new line every log interval (default 1 s, pod annotation
//! `sim.kubeplex.io/log-interval`) for as long as the client stays, each line flushed as it
//! is produced; `tailLines`, `timestamps` and `limitBytes` as the real server has them.

use super::store::Pod;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

/// The lines a container logged at start.
pub fn startup_lines(pod: &Pod, container: &str) -> Vec<(DateTime<Utc>, String)> {
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
pub fn tick_line(pod: &Pod, container: &str, n: u64) -> String {
    format!(
        "{container}: handled request {n} GET /healthz 200 ({} ms)",
        1 + (n * 7 + super::store::fnv(&pod.name) % 13) % 23
    )
}

/// Log query options.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
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
pub fn stream(
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
    futures_util::stream::unfold((0u64, 0usize, Some(initial)), move |(n, sent, initial)| {
        let pod = pod.clone();
        let container = container.clone();
        let follow = opts.follow;
        let timestamps = opts.timestamps;
        async move {
            if sent >= limit {
                return None;
            }
            let chunk = match initial {
                Some(s) if !s.is_empty() => s,
                _ => {
                    if !follow {
                        return None;
                    }
                    tokio::time::sleep(interval).await;
                    render(Utc::now(), &tick_line(&pod, &container, n), timestamps)
                }
            };
            let mut bytes = chunk.into_bytes();
            bytes.truncate(limit - sent);
            let len = bytes.len();
            let next = if n == 0 { 1 } else { n + 1 };
            Some((Ok(Bytes::from(bytes)), (next, sent + len, None)))
        }
    })
}
