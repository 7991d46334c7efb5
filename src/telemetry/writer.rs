//! The log writer: lines go into one shared in-memory buffer and a dedicated thread writes
//! them out in batches, so a slow log sink never stalls a worker and a busy proxy does not
//! pay a thread wake-up and a `write` per line.
//!
//! Why not `tracing-appender`'s non-blocking writer: it hands each line to its thread over a
//! channel and the thread blocks on each receive, so under load every few lines wake it
//! (a futex wake on the worker, `sched_yield` spins and a context switch on the thread, one
//! `write` per line). Measured with `strace -c` against the anchor benchmark's small body:
//! 1 `write`, 0.5 `sched_yield` and 0.2 `futex` per request, about a quarter of kubeplex's
//! CPU per request at the default log level (BENCHMARKS.md, "Where the time goes").
//!
//! Here a worker appends its formatted line under a mutex (held for the copy only) and wakes
//! the writer thread only when the buffer was empty (the first line after a quiet spell) or
//! has grown past [`HIGH_WATER`]. The thread, once woken, waits [`BATCH_DELAY`] for more lines
//! to gather, then takes the whole buffer and writes it with as few `write`s as it holds. A
//! line is therefore on its way within [`BATCH_DELAY`]. When the sink is stuck and the buffer
//! holds [`MAX_BUFFERED`] bytes, new lines are dropped (counted; a line saying how many
//! goes out once the sink moves again) rather than blocking requests. Dropping the
//! [`Guard`] writes out everything buffered and ends the thread.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer thread lets lines gather after it is woken.
pub const BATCH_DELAY: Duration = Duration::from_millis(20);
/// A buffer this large wakes the writer thread at once.
pub const HIGH_WATER: usize = 256 * 1024;
/// Bytes buffered before new lines are dropped (the sink is stuck).
pub const MAX_BUFFERED: usize = 16 * 1024 * 1024;

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// Lines dropped since the writer last wrote.
    dropped: u64,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a buffer of whole lines: keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where formatted lines go: cheap to clone, one per event (`tracing-subscriber`'s
/// `MakeWriter`). Each `write` call must carry whole lines: the fmt layer writes one whole
/// event per call.
#[derive(Clone)]
pub struct LineWriter {
    shared: Arc<Shared>,
}

impl LineWriter {
    /// Queues `line` (whole lines) for the writer thread.
    pub fn push(&self, line: &[u8]) {
        let _ = self.append(line);
    }

    fn append(&self, line: &[u8]) -> io::Result<usize> {
        if line.is_empty() {
            return Ok(0);
        }
        let mut s = self.shared.lock();
        if s.closed || s.buf.len() + line.len() > MAX_BUFFERED {
            s.dropped += 1;
            return Ok(line.len());
        }
        let was_empty = s.buf.is_empty();
        s.buf.extend_from_slice(line);
        let wake =
            was_empty || (s.buf.len() >= HIGH_WATER && s.buf.len() - line.len() < HIGH_WATER);
        drop(s);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }
}

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.append(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LineWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Keeps the writer thread; dropping it writes out every buffered line and ends the thread.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the writer thread (named `name`) writing to `sink`.
pub fn start<W: Write + Send + 'static>(sink: W, name: &str) -> io::Result<(LineWriter, Guard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
    });
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run(&shared, sink))?
    };
    Ok((
        LineWriter {
            shared: shared.clone(),
        },
        Guard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The writer thread: wait for lines, let more gather, write the whole buffer, repeat until
/// closed and empty.
fn run<W: Write>(shared: &Shared, mut sink: W) {
    let mut spare = Vec::new();
    loop {
        let mut s = shared.lock();
        while s.buf.is_empty() && !s.closed {
            s = shared.wake.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if !s.closed && s.buf.len() < HIGH_WATER {
            s = shared
                .wake
                .wait_timeout_while(s, BATCH_DELAY, |s| !s.closed && s.buf.len() < HIGH_WATER)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        std::mem::swap(&mut s.buf, &mut spare);
        let dropped = std::mem::take(&mut s.dropped);
        let closed = s.closed;
        drop(s);
        if dropped > 0 {
            let _ = writeln!(
                sink,
                "kubeplex: {dropped} log lines dropped: the log sink did not keep up"
            );
        }
        // A failing sink loses this batch; there is nowhere to report it.
        let _ = sink.write_all(&spare).and_then(|()| sink.flush());
        spare.clear();
        if spare.capacity() > HIGH_WATER * 4 {
            // After a burst, do not keep megabytes around.
            spare = Vec::new();
        }
        if closed && shared.lock().buf.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read, that can be held stuck.
    #[derive(Clone, Default)]
    struct Sink {
        out: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<()>>,
        /// Set when a `write` has begun (it may be waiting at the gate).
        entered: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.entered
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let _open = self.gate.lock().unwrap();
            self.out.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_whole_and_in_order_from_many_threads() {
        let sink = Sink::default();
        let (w, guard) = start(sink.clone(), "test-log").unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        w.write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let out = String::from_utf8(sink.out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 8000);
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..2000).collect::<Vec<_>>(), "thread {t}");
        }
    }

    #[test]
    fn a_stuck_sink_drops_new_lines_and_says_how_many_once_it_moves() {
        let sink = Sink::default();
        let stuck = sink.gate.lock().unwrap();
        let (mut w, guard) = start(sink.clone(), "test-log").unwrap();
        // The first line reaches the sink's `write` and blocks there; then fill the buffer.
        w.write_all(b"first\n").unwrap();
        while !sink.entered.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let line = vec![b'x'; 1023];
        let mut sent = 0;
        while sent < MAX_BUFFERED / 1024 + 100 {
            let mut l = line.clone();
            l.push(b'\n');
            w.write_all(&l).unwrap();
            sent += 1;
        }
        drop(stuck);
        drop(guard);
        let out = String::from_utf8(sink.out.lock().unwrap().clone()).unwrap();
        let kept = out.lines().filter(|l| l.starts_with('x')).count();
        assert!(kept < sent, "kept {kept} of {sent}");
        let note = out
            .lines()
            .find(|l| l.contains("log lines dropped"))
            .expect("a line saying lines were dropped");
        let n: usize = note
            .trim_start_matches("kubeplex: ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(out.starts_with("first\n"));
        // Every line sent is either written or counted as dropped.
        assert_eq!(kept + n, sent);
    }

    #[test]
    fn lines_go_out_without_the_guard_being_dropped() {
        let sink = Sink::default();
        let (mut w, _guard) = start(sink.clone(), "test-log").unwrap();
        w.write_all(b"hello\n").unwrap();
        // Polls: the line is written within BATCH_DELAY of being buffered.
        let start = std::time::Instant::now();
        while sink.out.lock().unwrap().as_slice() != b"hello\n" {
            assert!(start.elapsed() < Duration::from_secs(30), "never written");
            std::thread::yield_now();
        }
    }
}
