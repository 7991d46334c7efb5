//! Logging through tracing: human or JSON output, filter from `RUST_LOG` (default `info`),
//! written off the request path: events are formatted on the worker thread into a bounded
//! in-memory queue and written to stderr by a dedicated thread (`tracing-appender`'s
//! non-blocking writer), so a slow log sink never stalls a worker. When the queue is full
//! (the sink is stuck), lines are dropped rather than blocking requests; the writer thread
//! flushes what is queued when the returned guard is dropped at exit.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Lines queued for the writer thread before new ones are dropped.
const QUEUE_LINES: usize = 128 * 1024;

/// Installs the global subscriber. Keep the guard until exit: dropping it flushes the
/// queue. Later calls install nothing (the guard they return flushes nothing of theirs).
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUE_LINES)
        .lossy(true)
        .thread_name("kubeplex-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    guard
}
