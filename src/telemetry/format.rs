//! The human log line, written for speed: the same layout as `tracing-subscriber`'s default
//! (`Full`) format without colours,
//!
//! ```text
//! 2026-11-30T05:11:24.812178Z  INFO kubeplex::audit: proxied request_id="d0f8…" status=200
//! ```
//!
//! at a fraction of its cost: the date and time are formatted once a second per thread (only
//! the microseconds per line), plain string values are copied without going through
//! `Debug`'s character-by-character escaping, and nothing passes through the colour
//! machinery. Strings that need escaping (quotes, backslashes, control or non-ASCII
//! characters) take `Debug`'s path, so the output is byte for byte what `Full` writes
//! without ANSI; the message is sanitised as `Full` does (terminal escape and C1 control
//! characters written as escapes). Spans are not shown (kubeplex opens none).
//!
//! At the default log level every proxied request writes one audit line, so this is on the
//! hot path: `tracing-subscriber`'s `Full` format cost about 16,000 instructions per audit
//! line under callgrind; this one about a fifth of that (BENCHMARKS.md, "Where the time
//! goes").

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The human line format (see the module docs).
pub struct Human;

impl<S, N> FormatEvent<S, N> for Human
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        timestamp(&mut w, SystemTime::now())?;
        let meta = event.metadata();
        w.write_str(level(meta.level()))?;
        w.write_str(meta.target())?;
        w.write_str(":")?;
        let mut v = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut v);
        v.result?;
        w.write_char('\n')
    }
}

/// The level as `Full` writes it (right-aligned in five columns), with the spaces around.
fn level(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => " ERROR ",
        Level::WARN => "  WARN ",
        Level::INFO => "  INFO ",
        Level::DEBUG => " DEBUG ",
        Level::TRACE => " TRACE ",
    }
}

thread_local! {
    /// The last whole second formatted on this thread, and its text up to the `.`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `2026-11-30T05:11:24.812178Z` (RFC 3339, microseconds, UTC).
fn timestamp(w: &mut impl Write, now: SystemTime) -> fmt::Result {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    SECOND.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let (y, m, day) = civil_from_days((secs / 86_400) as i64);
            let s = secs % 86_400;
            c.1.clear();
            write!(
                c.1,
                "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.",
                s / 3600,
                s / 60 % 60,
                s % 60
            )?;
            c.0 = secs;
        }
        w.write_str(&c.1)
    })?;
    let mut micros = [b'0'; 7];
    let mut n = d.subsec_micros();
    for i in (0..6).rev() {
        micros[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    micros[6] = b'Z';
    ascii(w, &micros)
}

/// Writes `bytes`, ASCII the caller made itself (digits), as characters: no UTF-8 check,
/// which cost a call per field in the audit line.
fn ascii(w: &mut impl Write, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|&b| w.write_char(char::from(b)))
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A line built field by field without `tracing`'s dispatch, for the line written on every
/// proxied request (the audit line): the bytes [`Human`] writes for an event with the same
/// target, level, message and fields recorded in the same order (a test compares them).
/// Per line this skips the event's value set and the visitor's dynamic calls, about half
/// of the line's cost. The text is built in a per-thread buffer and handed to the writer
/// whole.
pub struct Line {
    buf: String,
}

thread_local! {
    /// The buffer [`Line`]s are built in, kept between lines.
    static LINE: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

thread_local! {
    /// A reading of both clocks on this thread, at most a second old: lines stamped with a
    /// monotonic instant take their wall-clock time from it.
    static ANCHOR: std::cell::Cell<Option<(Instant, SystemTime)>> = const { std::cell::Cell::new(None) };
}

/// The wall-clock time at `now`: the anchor's wall-clock time plus the monotonic time since,
/// the wall clock read again once the anchor is a second old (so a wall-clock step shows
/// within a second; in between the lines are monotonic). Saves the second clock read of a
/// caller that has read the monotonic clock already.
fn wall_clock(now: Instant) -> SystemTime {
    ANCHOR.with(|a| match a.get() {
        Some((at, wall)) if now >= at && now - at < Duration::from_secs(1) => wall + (now - at),
        _ => {
            let wall = SystemTime::now();
            a.set(Some((now, wall)));
            wall
        }
    })
}

impl Line {
    /// A line of `level` from `target` with `message`, stamped with the wall-clock time at
    /// `now`.
    pub fn at(level: &Level, target: &str, message: &str, now: Instant) -> Line {
        let mut buf = LINE.take();
        buf.clear();
        let _ = timestamp(&mut buf, wall_clock(now));
        buf.push_str(self::level(level));
        buf.push_str(target);
        buf.push_str(": ");
        let _ = sanitised(&mut buf, message);
        Line { buf }
    }

    fn name(&mut self, name: &str) {
        self.buf.push(' ');
        self.buf.push_str(name);
        self.buf.push('=');
    }

    /// A string field, as `tracing` records a `&str`.
    pub fn str(&mut self, name: &str, value: &str) {
        self.name(name);
        let _ = str_value(&mut self.buf, value);
    }

    /// A string field recorded with `%` (its `Display`: as it is, no quotes).
    pub fn display(&mut self, name: &str, value: &str) {
        self.name(name);
        self.buf.push_str(value);
    }

    /// An unsigned integer field.
    pub fn u64(&mut self, name: &str, value: u64) {
        self.name(name);
        self.digits(value);
    }

    /// A duration in milliseconds to the microsecond, `micros` of them: the bytes `Debug`
    /// writes for the `f64` `micros / 1000` (as `tracing` records it), without formatting a
    /// float (the shortest round-trip of an `f64` showed in profiles of the audit line).
    pub fn millis(&mut self, name: &str, micros: u64) {
        self.name(name);
        self.digits(micros / 1000);
        self.buf.push('.');
        let mut frac = micros % 1000;
        if frac == 0 {
            self.buf.push('0');
            return;
        }
        let mut width = 3;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        let mut digits = [b'0'; 3];
        for d in digits[..width].iter_mut().rev() {
            *d = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        let _ = ascii(&mut self.buf, &digits[..width]);
    }

    /// `value` in decimal digits.
    fn digits(&mut self, value: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = value;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let _ = ascii(&mut self.buf, &digits[i..]);
    }

    /// A boolean field.
    pub fn bool(&mut self, name: &str, value: bool) {
        self.name(name);
        self.buf.push_str(if value { "true" } else { "false" });
    }

    /// The finished line, newline included; its buffer goes back to the thread once
    /// `sink` has copied it.
    pub fn finish(mut self, sink: impl FnOnce(&[u8])) {
        self.buf.push('\n');
        sink(self.buf.as_bytes());
        LINE.set(self.buf);
    }
}

/// Writes a string value as `tracing-subscriber` does: between quotes as it is when
/// `Debug` would change nothing, else `Debug`'s escaped form.
fn str_value(w: &mut impl Write, value: &str) -> fmt::Result {
    if plain(value) {
        w.write_char('"')?;
        w.write_str(value)?;
        w.write_char('"')
    } else {
        write!(w, "{value:?}")
    }
}

/// Writes each field as ` name=value` (the message as ` text`).
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn name(&mut self, field: &Field) -> fmt::Result {
        let name = field.name();
        self.w.write_char(' ')?;
        self.w.write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.w.write_char('=')
    }
}

/// Whether `Debug` would write `s` as it is, between quotes: printable ASCII but `"` and
/// `\`. Eight bytes at a time (the audit line checks a request id, a cluster key and more
/// on every request).
fn plain(s: &str) -> bool {
    let mut words = s.as_bytes().chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        if !plain_word(u64::from_le_bytes(b)) {
            return false;
        }
    }
    words.remainder().iter().all(|&b| plain_byte(b))
}

/// [`plain`] for one byte.
fn plain_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

/// [`plain`] for eight bytes (the classic word-at-a-time tests: whether any byte is zero,
/// or below a bound; exact for "any", which is all this asks).
fn plain_word(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let non_ascii = x & HIGH;
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    let del = zero_in(x ^ (ONES * 0x7f));
    let quote = zero_in(x ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(x ^ (ONES * u64::from(b'\\')));
    non_ascii | control | del | quote | backslash == 0
}

/// Whether the message needs `Full`'s sanitising (terminal escape or C1 control characters).
fn needs_sanitising(s: &str) -> bool {
    s.chars().any(|c| {
        matches!(
            c,
            '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
        )
    })
}

/// Writes `s` as `Full` writes a message: terminal escape and C1 control characters as
/// escapes, the rest as it is.
fn sanitised(w: &mut impl Write, s: &str) -> fmt::Result {
    if !needs_sanitising(s) {
        return w.write_str(s);
    }
    for c in s.chars() {
        match c {
            '\x1b' => w.write_str("\\x1b")?,
            '\x07' => w.write_str("\\x07")?,
            '\x08' => w.write_str("\\x08")?,
            '\x0c' => w.write_str("\\x0c")?,
            '\x7f' => w.write_str("\\x7f")?,
            '\u{80}'..='\u{9f}' => write!(w, "\\u{{{:x}}}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    Ok(())
}

/// A `fmt::Write` that sanitises what passes through it (a `Debug` message).
struct Sanitising<'a, W>(&'a mut W);

impl<W: Write> Write for Sanitising<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        sanitised(self.0, s)
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            self.w
                .write_char(' ')
                .and_then(|()| sanitised(self.w, value))
        } else {
            self.name(field).and_then(|()| str_value(self.w, value))
        };
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() {
            self.result = self.name(field).and_then(|()| write!(self.w, "{value}"));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_ok() {
            self.result = self.name(field).and_then(|()| write!(self.w, "{value}"));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.result.is_ok() {
            self.result = self
                .name(field)
                .and_then(|()| self.w.write_str(if value { "true" } else { "false" }));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.name(field)?;
            sanitised(self.w, &value.to_string())?;
            if let Some(mut source) = value.source() {
                let name = field.name();
                write!(self.w, " {name}.sources=[")?;
                let mut first = true;
                loop {
                    if !first {
                        self.w.write_str(", ")?;
                    }
                    first = false;
                    sanitised(self.w, &source.to_string())?;
                    match source.source() {
                        Some(s) => source = s,
                        None => break,
                    }
                }
                self.w.write_char(']')?;
            }
            Ok(())
        })();
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            self.w
                .write_char(' ')
                .and_then(|()| write!(Sanitising(self.w), "{value:?}"))
        } else if field.name().starts_with("log.") {
            Ok(())
        } else {
            self.name(field).and_then(|()| write!(self.w, "{value:?}"))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// `(ours, Full's without ANSI)` for the events `emit` sends, timestamps cut off.
    fn both(emit: impl Fn()) -> (String, String) {
        let ours = Buf::default();
        let theirs = Buf::default();
        let o = ours.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .event_format(Human)
            .with_writer(move || o.clone())
            .finish();
        tracing::subscriber::with_default(sub, &emit);
        let t = theirs.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(move || t.clone())
            .finish();
        tracing::subscriber::with_default(sub, &emit);
        let cut = |b: &Buf| {
            String::from_utf8(b.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| l.split_once('Z').unwrap().1.to_string() + "\n")
                .collect::<String>()
        };
        (cut(&ours), cut(&theirs))
    }

    #[test]
    fn lines_are_what_the_full_format_writes_without_colours() {
        #[derive(Debug)]
        struct Thing {
            _n: u32,
        }
        let err = std::io::Error::other("disk \"full\"");
        let (ours, theirs) = both(|| {
            tracing::info!(
                target: "kubeplex::audit",
                request_id = "abc123",
                subject = %"user@example.com",
                cluster = "config:a \"quoted\" \\ back",
                plugin = None::<&str>,
                alias = Some("x"),
                status = 200u16,
                bytes = 1235u64,
                delta = -4i64,
                complete = true,
                outcome = "complete",
                duration_ms = 2.3599200000000002f64,
                thing = ?Thing { _n: 7 },
                unicode = "café\u{1b}[31m",
                "proxied"
            );
            tracing::warn!(error = %"boom", "proxy error: {} and {:?}", 3, "q");
            tracing::error!(err = &err as &dyn std::error::Error, "failed");
            tracing::debug!("escape \u{1b}[2J and \u{85} in a message");
            tracing::trace!(r#type = "raw", "raw identifier");
        });
        assert_eq!(ours, theirs);
    }

    #[test]
    fn plain_is_the_byte_by_byte_rule_at_every_position() {
        // Every byte value at every position of strings 1 to 19 bytes long, among plain
        // filler: the word-at-a-time check must agree with the rule byte by byte.
        for len in 1..20 {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[pos] = b;
                    let want = bytes.iter().all(|&c| plain_byte(c));
                    // `plain` takes a `str`: non-ASCII bytes alone are not one, so check
                    // them through a two-byte character instead.
                    match std::str::from_utf8(&bytes) {
                        Ok(s) => assert_eq!(plain(s), want, "{bytes:?}"),
                        Err(_) => {
                            let mut s = String::from_utf8(vec![b'a'; pos]).unwrap();
                            s.push('é');
                            assert!(!plain(&s), "{s:?}");
                        }
                    }
                }
            }
        }
        assert!(plain("d0f8c2a1e3b44f2d9a7c6b5e4d3c2b1a"));
        assert!(!plain("config:a \"q\""));
    }

    #[test]
    fn wall_clock_follows_the_monotonic_clock_and_is_read_again_each_second() {
        // A fresh test thread: no anchor yet, so `t0` becomes it.
        let t0 = Instant::now();
        let w0 = wall_clock(t0);
        let half = wall_clock(t0 + Duration::from_millis(500));
        assert_eq!(half.duration_since(w0).unwrap(), Duration::from_millis(500));
        // A second past the anchor: the wall clock is read again (it has not moved a second
        // and a half since `w0`).
        let later = wall_clock(t0 + Duration::from_millis(1500));
        assert!(later < w0 + Duration::from_millis(1500));
        assert!(later >= w0);
    }

    #[test]
    fn direct_lines_are_what_the_event_writes() {
        // The audit line's fields, recorded through `tracing` and built directly.
        let (via_tracing, _) = both(|| {
            tracing::info!(
                target: "kubeplex::audit",
                request_id = "4709c11a",
                subject = %"-",
                cluster = "config:a \"q\" \\ b",
                plugin = None::<&str>,
                alias = Some("web"),
                method = %"GET",
                path = %"/api/kubernetes/proxy/api/v1/services",
                status = 200u16,
                bytes = 1235u64,
                complete = true,
                outcome = "complete",
                duration_ms = 0.294f64,
                "proxied"
            );
        });
        let mut line = Line::at(&Level::INFO, "kubeplex::audit", "proxied", Instant::now());
        line.str("request_id", "4709c11a");
        line.display("subject", "-");
        line.str("cluster", "config:a \"q\" \\ b");
        line.str("alias", "web");
        line.display("method", "GET");
        line.display("path", "/api/kubernetes/proxy/api/v1/services");
        line.u64("status", 200);
        line.u64("bytes", 1235);
        line.bool("complete", true);
        line.str("outcome", "complete");
        line.millis("duration_ms", 294);
        let mut direct = String::new();
        line.finish(|b| direct = String::from_utf8(b.to_vec()).unwrap());
        let direct = direct.split_once('Z').unwrap().1.to_string();
        assert_eq!(direct, via_tracing);
        let mut zero = Line::at(&Level::INFO, "t", "m", Instant::now());
        zero.u64("n", 0);
        zero.u64("max", u64::MAX);
        let mut out = String::new();
        zero.finish(|b| out = String::from_utf8(b.to_vec()).unwrap());
        assert!(
            out.ends_with("  INFO t: m n=0 max=18446744073709551615\n"),
            "{out}"
        );
    }

    #[test]
    fn millis_are_what_debug_writes_for_the_f64() {
        let mut cases: Vec<u64> = vec![0, 1, 9, 10, 99, 100, 294, 999, 1000, 1001, 1010, 1500];
        cases.extend([2000, 123_456, 3_600_000_000, 86_400_000_000_123]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x % 10_000_000_000);
        }
        for micros in cases {
            let mut line = Line::at(&Level::INFO, "t", "m", Instant::now());
            line.millis("d", micros);
            let mut out = String::new();
            line.finish(|b| out = String::from_utf8(b.to_vec()).unwrap());
            let want = format!(" d={:?}\n", micros as f64 / 1000.0);
            assert!(
                out.ends_with(&want),
                "{micros}: {out:?} should end {want:?}"
            );
        }
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        let mut s = String::new();
        timestamp(
            &mut s,
            UNIX_EPOCH + Duration::new(1_796_015_484, 812_178_999),
        )
        .unwrap();
        assert_eq!(s, "2026-11-30T05:11:24.812178Z");
        let mut s = String::new();
        timestamp(&mut s, UNIX_EPOCH + Duration::new(951_782_400, 5_000)).unwrap();
        assert_eq!(s, "2000-02-29T00:00:00.000005Z");
        let mut s = String::new();
        timestamp(&mut s, UNIX_EPOCH).unwrap();
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
    }
}
