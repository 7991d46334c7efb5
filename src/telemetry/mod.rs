//! Logging through tracing: human or JSON output, filter from `RUST_LOG` (default `info`),
//! written off the request path: a worker formats its event and appends the line to an
//! in-memory buffer that a dedicated thread writes to stderr in batches ([`writer`]), so a
//! slow log sink never stalls a worker and lines cost no thread wake-up each. When the
//! buffer is full (the sink is stuck), lines are dropped rather than blocking requests;
//! dropping the returned [`Guard`] writes out what is buffered.
//!
//! The human format is [`format::Human`] (the layout of `tracing-subscriber`'s default
//! format, cheaper); on a terminal, `tracing-subscriber`'s own format with colours.

pub mod format;
pub mod writer;

pub use writer::Guard;

use std::io::IsTerminal;
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

/// Where [`line_at`]s go: the global subscriber's writer, when it writes [`format::Human`].
static DIRECT: std::sync::OnceLock<writer::LineWriter> = std::sync::OnceLock::new();

/// A line to build directly ([`format::Line`]), stamped with the wall-clock time at `now`,
/// and the writer it goes to, when the global subscriber writes the human format without
/// colours; `None` otherwise (then log through `tracing`). The caller checks first that its
/// target and level are enabled (`tracing::enabled!`).
pub fn line_at(
    level: &tracing::Level,
    target: &str,
    message: &str,
    now: std::time::Instant,
) -> Option<(format::Line, &'static writer::LineWriter)> {
    DIRECT
        .get()
        .map(|w| (format::Line::at(level, target, message, now), w))
}

/// Installs the global subscriber. Keep the guard until exit: dropping it writes out the
/// lines still buffered. Later calls install nothing (the guard they return writes nothing
/// of theirs). `None` when the writer thread could not be started (then nothing is logged).
pub fn init(format: LogFormat) -> Option<Guard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let (writer, guard) = match writer::start(std::io::stderr(), "kubeplex-log") {
        Ok(w) => w,
        Err(e) => {
            eprintln!("kubeplex: cannot start the log writer thread: {e}");
            return None;
        }
    };
    if matches!(format, LogFormat::Human) && !terminal {
        let _ = DIRECT.set(writer.clone());
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Human if terminal => builder.try_init(),
        LogFormat::Human => builder.event_format(format::Human).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Some(guard)
}
