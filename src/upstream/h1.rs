//! The direct HTTP/1.1 path to plain `http://` targets, for the commonest request: a `GET`
//! or `HEAD` without a body that is not a watch or a followed log.
//!
//! Why a second client beside hyper's ([`super::client`]): hyper-util's pooled client runs
//! each connection as its own task and hands every request and response across to it
//! (a channel, a oneshot, a body channel), then kubeplex copies hyper's header map into
//! actix's. For a small answer that machinery was most of a proxied request's cost
//! (BENCHMARKS.md, "the floor": actix-web with hyper-util forwarding verbatim cost as much
//! CPU as all of kubeplex). Here the request's own task writes the head, reads the answer
//! and parses it in place (`httparse`, names lowercased in the read buffer, no map in
//! between); a body already in the buffer is handed on whole, a longer one is read by the
//! response body itself; the connection goes back to this worker's pool when its body
//! ends.
//!
//! The rules hyper keeps, kept here (tests in `tests/it/upstream_peers.rs`):
//! - informational answers (`1xx` but `101`) are read and dropped, never taken for the
//!   final answer; a `101` to a request that asked no upgrade is a bad answer;
//! - the body's length follows RFC 9112 §6.3: none for `HEAD`, `204` and `304`;
//!   `Transfer-Encoding` ending in `chunked`, decoded; `Content-Length` (all values
//!   equal, else a bad answer); otherwise until the connection closes, and such a
//!   connection is never reused;
//! - a body cut short (the connection ends early, a bad chunk) ends the stream with an
//!   error, so the caller's response ends incomplete;
//! - a connection goes back to the pool only when its body was read to the end, nothing
//!   followed it, the answer was HTTP/1.1 and did not say `Connection: close`;
//! - a pooled connection that fails before any byte of an answer (the cluster closed it as
//!   it was reused) is given up and the request sent once more on a new connection:
//!   `GET` and `HEAD` are idempotent and have no body to replay;
//! - idle connections are watched: the cluster closing one wakes this pool's sweeper,
//!   which closes kubeplex's end (no `CLOSE_WAIT`); after [`IDLE_TIMEOUT`] they are closed
//!   too, and at most [`MAX_IDLE_PER_CLUSTER`] are kept: the limits of hyper's pool.
//!
//! TLS targets, requests with a body, upgrades and open-ended answers stay on hyper's
//! client (HTTP/2, `Expect`, uploads, memory per watch).

use crate::upstream::client::{IDLE_TIMEOUT, MAX_IDLE_PER_CLUSTER};
use crate::upstream::target::Target;
use crate::upstream::{is_header_name, is_header_value, HeaderSink};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

/// Headers an answer may have (hyper's default).
const MAX_HEADERS: usize = 100;
/// The largest response head read (hyper's default buffer limit, about 400 KiB).
const MAX_HEAD: usize = 400 * 1024;
/// A chunk-extension or trailer line longer than this is a bad answer.
const MAX_LINE: usize = 64 * 1024;
/// What one read of a body asks for at least.
const READ_CHUNK: usize = 256 * 1024;
/// The first read buffer: a small answer arrives whole in it.
const FIRST_READ: usize = 8 * 1024;

/// Why a request on the direct path failed before its answer's head.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    /// No connection (resolve, TCP, the connect guard); its cause in the source.
    #[error("connecting: {0}")]
    Connect(#[source] io::Error),
    /// The connection ended before a complete response head.
    #[error("the server closed the connection before a complete response head")]
    Closed,
    /// A head that is not HTTP/1.x, too large, or with contradicting framing.
    #[error("bad response head: {0}")]
    Head(String),
    /// Reading or writing failed after the connection was made.
    #[error("{0}")]
    Io(#[source] io::Error),
}

/// A target's direct HTTP/1.1 client in one worker: the idle connections and what watches
/// them.
pub(crate) struct Pool {
    target: Arc<Target>,
    /// The `Host` header: the URL's host, and its port when not the scheme's default.
    host: Box<str>,
    idle: RefCell<Vec<Idle>>,
    /// Woken when an idle connection becomes readable (closed by the cluster).
    signal: Arc<Signal>,
    sweeping: Cell<bool>,
}

struct Idle {
    io: TcpStream,
    since: Instant,
}

/// What an idle connection's readiness wakes: a flag and the sweeper's waker.
#[derive(Default)]
struct Signal {
    dirty: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.dirty.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// A request's head as it is written: request line, `Host`, then each header put in
/// ([`HeaderSink`]); the blank line is added when it is sent.
pub(crate) struct RequestHead {
    bytes: Vec<u8>,
    /// A `HEAD` request: its answer has no body whatever its framing says.
    bodyless: bool,
}

impl HeaderSink for RequestHead {
    fn put(&mut self, name: &str, value: &[u8], _sensitive: bool) {
        if !is_header_name(name.as_bytes()) || !is_header_value(value) {
            return;
        }
        let b = &mut self.bytes;
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(b": ");
        b.extend_from_slice(value);
        b.extend_from_slice(b"\r\n");
    }
}

/// An answer's head: status, framing and the headers, kept in the bytes they arrived in.
pub(crate) struct Head {
    /// The status code.
    pub status: u16,
    /// The body's length when the answer gave one (`Content-Length`, also for `HEAD` and
    /// `304`); `None` for chunked and close-delimited bodies.
    pub length: Option<u64>,
    bytes: Bytes,
    /// (name, value) byte ranges in `bytes`; names lowercased.
    fields: Vec<(u32, u32, u32, u32)>,
}

impl Head {
    /// The headers as `(name, value)`, names in lowercase, in the order received.
    pub(crate) fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines().map(|l| (l.name(), l.value()))
    }

    /// The headers as [`Head::headers`] gives them, each able to give its whole line.
    pub(crate) fn lines(&self) -> impl Iterator<Item = HeadLine<'_>> {
        self.fields.iter().map(|&at| HeadLine {
            head: &self.bytes,
            at,
        })
    }

    /// `part` (a value [`Head::headers`] gave) as `Bytes` sharing the head's, not a copy.
    pub(crate) fn share(&self, part: &[u8]) -> Bytes {
        self.bytes.slice_ref(part)
    }
}

/// A header of a [`Head`], with the line it came in.
#[derive(Clone, Copy)]
pub(crate) struct HeadLine<'a> {
    head: &'a [u8],
    at: (u32, u32, u32, u32),
}

impl<'a> HeadLine<'a> {
    /// The name, lowercased.
    pub(crate) fn name(self) -> &'a [u8] {
        &self.head[self.at.0 as usize..self.at.1 as usize]
    }

    pub(crate) fn value(self) -> &'a [u8] {
        &self.head[self.at.2 as usize..self.at.3 as usize]
    }

    /// The whole line as it arrived (`name: value` with the spaces the cluster put, the
    /// name lowercased, `\r\n` included) when it ends in `\r\n`; `None` for a line ending
    /// in a bare `\n`, which `httparse` accepts and a relay should not repeat.
    pub(crate) fn line(self) -> Option<&'a [u8]> {
        let (ns, ve) = (self.at.0 as usize, self.at.3 as usize);
        // The value ends before optional whitespace and the line's end, all in the head.
        let b = self.head;
        b[ve..]
            .iter()
            .position(|&c| c == b'\n')
            .filter(|&i| i > 0 && b[ve + i - 1] == b'\r')
            .map(|i| &b[ns..ve + i + 1])
    }
}

/// An answer's body.
pub(crate) enum Body {
    /// No body (`HEAD`, `204`, `304`).
    Empty,
    /// The whole body, already read with the head.
    Full(Bytes),
    /// A body still arriving, read as it is polled.
    Stream(BodyStream),
}

/// How an answer's body ends.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// This many bytes to go.
    Length(u64),
    /// Chunked, at this point of a chunk.
    Chunked(Chunk),
    /// Until the connection closes.
    Close,
}

#[derive(Clone, Copy, Debug)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data to go.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

impl Pool {
    /// The direct client for `target`: `None` for TLS targets (they stay on hyper's client).
    pub(crate) fn for_target(target: &Arc<Target>) -> Option<Rc<Pool>> {
        if target.tls.is_some() || target.url.scheme() != "http" {
            return None;
        }
        let host = target.url.host_str()?;
        let host = match target.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        Some(Rc::new(Pool {
            target: target.clone(),
            host: host.into(),
            idle: RefCell::new(Vec::new()),
            signal: Arc::default(),
            sweeping: Cell::new(false),
        }))
    }

    /// The head of a `method` request for `path` (path and query in pieces, as
    /// `Upstream::path` gives them; checked as hyper's URI parse would: no space, control
    /// character or non-ASCII byte) to this target: request line and `Host`; the headers
    /// are put in as they are chosen.
    pub(crate) fn request_head(&self, method: &str, path: &[&str]) -> Option<RequestHead> {
        if !path.iter().all(|p| p.bytes().all(|b| b.is_ascii_graphic())) {
            return None;
        }
        let len: usize = path.iter().map(|p| p.len()).sum();
        let mut b = Vec::with_capacity(method.len() + len + self.host.len() + 512);
        b.extend_from_slice(method.as_bytes());
        b.push(b' ');
        path.iter().for_each(|p| b.extend_from_slice(p.as_bytes()));
        b.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        b.extend_from_slice(self.host.as_bytes());
        b.extend_from_slice(b"\r\n");
        Some(RequestHead {
            bytes: b,
            bodyless: method == "HEAD",
        })
    }

    /// Sends `head` (a `GET` or `HEAD` without a body, from [`Pool::request_head`]) and
    /// reads the answer's head; a pooled connection that fails before any answer gets the
    /// request once more on a new connection.
    pub(crate) async fn send(
        self: &Rc<Self>,
        head: RequestHead,
        now: Instant,
    ) -> Result<(Head, Body), H1Error> {
        let RequestHead {
            mut bytes,
            bodyless,
        } = head;
        bytes.extend_from_slice(b"\r\n");
        let mut pooled = self.checkout(now);
        loop {
            let reused = pooled.is_some();
            let io = match pooled.take() {
                Some(io) => io,
                // Boxed: a new connection is rare, and its state would otherwise be part
                // of every request's future.
                None => Box::pin(crate::upstream::connect::tcp(&self.target))
                    .await
                    .map_err(H1Error::Connect)?,
            };
            match self.exchange(io, &bytes, bodyless).await {
                Err(Failure::BeforeAnswer(_)) if reused => {
                    tracing::debug!("pooled connection closed by the upstream; retrying once");
                }
                Err(Failure::BeforeAnswer(e)) => {
                    return Err(match e.kind() {
                        io::ErrorKind::UnexpectedEof => H1Error::Closed,
                        _ => H1Error::Io(e),
                    })
                }
                Err(Failure::Other(e)) => return Err(e),
                Ok(r) => return Ok(r),
            }
        }
    }

    /// Writes `request` on `io` and reads the answer's head (and the body, when it came
    /// with the head).
    async fn exchange(
        self: &Rc<Self>,
        mut io: TcpStream,
        request: &[u8],
        bodyless: bool,
    ) -> Result<(Head, Body), Failure> {
        if let Err(e) = io.write_all(request).await {
            return Err(Failure::BeforeAnswer(e));
        }
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        let mut seen = false;
        let (head, framing, reusable) = loop {
            if !buf.is_empty() {
                match parse(&mut buf, bodyless)? {
                    Parsed::Final(head, framing, reusable) => break (head, framing, reusable),
                    Parsed::Informational => continue,
                    Parsed::Partial => {}
                }
            }
            if buf.len() >= MAX_HEAD {
                return Err(Failure::Other(H1Error::Head(
                    "message head is too large".into(),
                )));
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(FIRST_READ);
            }
            let r = futures_util::future::poll_fn(|cx| read_into(Pin::new(&mut io), cx, &mut buf))
                .await;
            match r {
                Ok(0) if !seen => {
                    return Err(Failure::BeforeAnswer(io::ErrorKind::UnexpectedEof.into()))
                }
                Ok(0) => return Err(Failure::Other(H1Error::Closed)),
                Ok(_) => seen = true,
                Err(e) if !seen => return Err(Failure::BeforeAnswer(e)),
                Err(e) => return Err(Failure::Other(H1Error::Io(e))),
            }
        };
        let mut stream = BodyStream {
            io: Some(io),
            buf,
            framing,
            reusable,
            pool: self.clone(),
            failed: None,
        };
        let body = match framing {
            Framing::Length(0) => {
                stream.finish();
                Body::Empty
            }
            Framing::Length(n) if stream.buf.len() as u64 >= n => {
                let data = stream.buf.split_to(n as usize).freeze();
                stream.framing = Framing::Length(0);
                stream.finish();
                Body::Full(data)
            }
            _ => Body::Stream(stream),
        };
        Ok((head, body))
    }

    /// A pooled connection that still looks open and has not been idle too long at `now`
    /// (the request's start, which the caller read), if any.
    fn checkout(&self, now: Instant) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
        while let Some(c) = idle.pop() {
            if now.saturating_duration_since(c.since) < IDLE_TIMEOUT && still_open(&c.io, None) {
                return Some(c.io);
            }
        }
        None
    }

    /// Keeps `io` for the next request, watched for the cluster closing it.
    fn checkin(self: &Rc<Self>, io: TcpStream) {
        // The last read may have left the socket marked readable although nothing more
        // came (the answer ended exactly); forget that mark without a system call, then
        // ask to be woken when the cluster sends anything (a close).
        let _ = io.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
        let waker = Waker::from(self.signal.clone());
        if !still_open(&io, Some(&waker)) {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        if idle.len() >= MAX_IDLE_PER_CLUSTER {
            return;
        }
        idle.push(Idle {
            io,
            since: Instant::now(),
        });
        drop(idle);
        if !self.sweeping.replace(true) {
            sweep(Rc::downgrade(self), self.signal.clone());
        }
    }
}

/// Whether an idle connection is still usable: nothing arrived on it (no close, no stray
/// bytes). With `waker`, a later arrival wakes it. A system call only when the socket is
/// marked readable.
fn still_open(io: &TcpStream, waker: Option<&Waker>) -> bool {
    let noop = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(waker.unwrap_or(&noop));
    match io.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => {
            let mut b = [0u8; 1];
            match io.try_read(&mut b) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing there after all: watch again.
                    matches!(io.poll_read_ready(&mut cx), Poll::Pending)
                }
                _ => false,
            }
        }
    }
}

/// The pool's sweeper, while it has idle connections: closes those the cluster closed
/// (woken by their readiness) and those idle past [`IDLE_TIMEOUT`].
fn sweep(pool: Weak<Pool>, signal: Arc<Signal>) {
    actix_web::rt::spawn(async move {
        loop {
            let woken = futures_util::future::poll_fn(|cx| {
                signal.task.register(cx.waker());
                if signal.dirty.swap(false, Ordering::AcqRel) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            let _ = tokio::time::timeout(IDLE_TIMEOUT / 2, woken).await;
            let Some(pool) = pool.upgrade() else { return };
            let waker = Waker::from(signal.clone());
            let mut idle = pool.idle.borrow_mut();
            idle.retain(|c| c.since.elapsed() < IDLE_TIMEOUT && still_open(&c.io, Some(&waker)));
            if idle.is_empty() {
                pool.sweeping.set(false);
                return;
            }
        }
    });
}

/// How an exchange failed.
enum Failure {
    /// Before any byte of an answer: the request may be sent again on a new connection.
    BeforeAnswer(io::Error),
    Other(H1Error),
}

impl From<H1Error> for Failure {
    fn from(e: H1Error) -> Self {
        Failure::Other(e)
    }
}

enum Parsed {
    Final(Head, Framing, bool),
    Informational,
    Partial,
}

/// Parses the answer head at the start of `buf`: a final head is split off `buf` (the
/// body's first bytes stay); an informational one is dropped.
fn parse(buf: &mut BytesMut, bodyless: bool) -> Result<Parsed, H1Error> {
    // Not zeroed: httparse writes the entries it parses.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut []);
    let n = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut r,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(H1Error::Head(e.to_string())),
    };
    let status = r.code.unwrap_or(0);
    if (100..200).contains(&status) && status != 101 {
        buf.advance(n);
        return Ok(Parsed::Informational);
    }
    if status == 101 {
        return Err(H1Error::Head(
            "101 Switching Protocols to a request that asked no upgrade".into(),
        ));
    }
    let http11 = r.version == Some(1);
    let base = buf.as_ptr() as usize;
    let fields: Vec<(u32, u32, u32, u32)> = r
        .headers
        .iter()
        .map(|h| {
            let ns = h.name.as_ptr() as usize - base;
            let vs = h.value.as_ptr() as usize - base;
            (
                ns as u32,
                (ns + h.name.len()) as u32,
                vs as u32,
                (vs + h.value.len()) as u32,
            )
        })
        .collect();
    let mut head = buf.split_to(n);
    let (mut length, mut chunked, mut te, mut close) = (None::<u64>, false, false, !http11);
    for &(ns, ne, vs, ve) in &fields {
        lowercase_token(&mut head[ns as usize..ne as usize]);
        let name = &head[ns as usize..ne as usize];
        let value = &head[vs as usize..ve as usize];
        if name == b"content-length" {
            for part in value.split(|&b| b == b',') {
                let v = decimal(part.trim_ascii())
                    .ok_or_else(|| H1Error::Head("invalid Content-Length".into()))?;
                if length.is_some_and(|l| l != v) {
                    return Err(H1Error::Head("conflicting Content-Length values".into()));
                }
                length = Some(v);
            }
        } else if name == b"transfer-encoding" {
            te = true;
            // Only the last coding counts (RFC 9112 §6.3).
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == b"connection" {
            close |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    let framing = if bodyless || status == 204 || status == 304 {
        Framing::Length(0)
    } else if te {
        length = None;
        if chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::Close
        }
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    let reusable = !close && !matches!(framing, Framing::Close);
    Ok(Parsed::Final(
        Head {
            status,
            length,
            bytes: head.freeze(),
            fields,
        },
        framing,
        reusable,
    ))
}

/// Lowercases a header name in place, eight bytes at a time: a token is ASCII, and for an
/// ASCII byte `b`, `b + 0x3f` has its high bit set from `A` on and `b + 0x25` from the byte
/// after `Z` on (no carry leaves a byte), so their difference marks the capitals, each
/// lowered by setting its `0x20` bit. A word with any other byte goes byte by byte.
fn lowercase_token(name: &mut [u8]) {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = name.chunks_exact_mut(8);
    for w in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(w);
        let x = u64::from_le_bytes(bytes);
        if x & HIGH != 0 {
            w.make_ascii_lowercase();
            continue;
        }
        let capital =
            x.wrapping_add(0x3f3f_3f3f_3f3f_3f3f) & !x.wrapping_add(0x2525_2525_2525_2525) & HIGH;
        w.copy_from_slice(&(x | capital >> 2).to_le_bytes());
    }
    words.into_remainder().make_ascii_lowercase();
}

/// A `Content-Length` value: ASCII digits only (no sign), at most 19 of them.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// Reads into `buf`'s spare capacity (what `tokio_util::io::poll_read_buf` does; kubeplex
/// does not otherwise need tokio-util).
fn read_into(
    io: Pin<&mut TcpStream>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    use bytes::BufMut;
    use tokio::io::{AsyncRead, ReadBuf};
    let dst = buf.chunk_mut();
    // SAFETY: `chunk_mut` is the buffer's spare capacity; `ReadBuf` only writes to it and
    // reports how much it filled, which is then the length `advance_mut` adds.
    let dst = unsafe { &mut *(dst as *mut _ as *mut [std::mem::MaybeUninit<u8>]) };
    let mut rb = ReadBuf::uninit(dst);
    match io.poll_read(cx, &mut rb) {
        Poll::Ready(Ok(())) => {
            let n = rb.filled().len();
            // SAFETY: `n` bytes of the spare capacity were just written.
            unsafe { buf.advance_mut(n) };
            Poll::Ready(Ok(n))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// A body still arriving on its connection; the connection goes back to the pool when the
/// body ends cleanly.
pub(crate) struct BodyStream {
    io: Option<TcpStream>,
    buf: BytesMut,
    framing: Framing,
    reusable: bool,
    pool: Rc<Pool>,
    /// A failure found after data was handed on, reported on the next poll.
    failed: Option<io::Error>,
}

impl BodyStream {
    /// The body is complete: pool the connection if it may be reused.
    fn finish(&mut self) {
        if let Some(io) = self.io.take() {
            if self.reusable && self.buf.is_empty() {
                self.pool.checkin(io);
            }
        }
    }

    fn cut_short(&mut self, why: &str) -> io::Error {
        self.io = None;
        io::Error::new(io::ErrorKind::UnexpectedEof, why.to_string())
    }

    fn bad_chunk(&mut self) -> io::Error {
        self.io = None;
        io::Error::new(io::ErrorKind::InvalidData, "bad chunked encoding")
    }

    /// The next piece of the body from what is buffered: `Some` for data or the end,
    /// `None` when more must be read.
    fn step(&mut self) -> Option<Option<io::Result<Bytes>>> {
        loop {
            match self.framing {
                Framing::Length(0) => {
                    self.finish();
                    return Some(None);
                }
                Framing::Length(rem) => {
                    if self.buf.is_empty() {
                        return None;
                    }
                    let n = (self.buf.len() as u64).min(rem);
                    self.framing = Framing::Length(rem - n);
                    return Some(Some(Ok(self.buf.split_to(n as usize).freeze())));
                }
                Framing::Close => {
                    if self.buf.is_empty() {
                        return None;
                    }
                    return Some(Some(Ok(self.buf.split().freeze())));
                }
                Framing::Chunked(Chunk::Size) => match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.advance(used);
                        self.framing = Framing::Chunked(if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        });
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_LINE => return None,
                    _ => return Some(Some(Err(self.bad_chunk()))),
                },
                Framing::Chunked(Chunk::Data(rem)) => {
                    if self.buf.is_empty() {
                        return None;
                    }
                    let n = (self.buf.len() as u64).min(rem);
                    self.framing = Framing::Chunked(if n == rem {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(rem - n)
                    });
                    return Some(Some(Ok(self.buf.split_to(n as usize).freeze())));
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if self.buf.len() < 2 {
                        return None;
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Some(Some(Err(self.bad_chunk())));
                    }
                    self.buf.advance(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailers) => {
                    match self.buf.windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            self.buf.advance(2);
                            self.framing = Framing::Length(0);
                        }
                        Some(i) => self.buf.advance(i + 2),
                        None if self.buf.len() < MAX_LINE => return None,
                        None => return Some(Some(Err(self.bad_chunk()))),
                    }
                }
            }
        }
    }
}

impl futures_core::Stream for BodyStream {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        loop {
            let failed = match this.step() {
                Some(Some(Err(e))) => e,
                Some(out) => return Poll::Ready(out),
                None => match this.read(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => continue,
                    Poll::Ready(Some(Ok(()))) => return Poll::Ready(None),
                    Poll::Ready(Some(Err(e))) => e,
                },
            };
            // The error ends the caller's response at once (actix drops what it has not
            // written yet): first let it write what this poll handed on, then fail.
            this.failed = Some(failed);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
    }
}

impl BodyStream {
    /// Reads more of the body: `None` when something was read, `Some(Ok)` at the end of a
    /// close-delimited body, `Some(Err)` when the body was cut short or the read failed.
    fn read(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<()>>> {
        let close_delimited = matches!(self.framing, Framing::Close);
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(Some(if close_delimited {
                Ok(())
            } else {
                Err(self.cut_short("the connection is gone"))
            }));
        };
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        match read_into(Pin::new(io), cx, &mut self.buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(0)) if close_delimited => {
                self.io = None;
                Poll::Ready(Some(Ok(())))
            }
            Poll::Ready(Ok(0)) => Poll::Ready(Some(Err(
                self.cut_short("the server closed the connection mid-body")
            ))),
            Poll::Ready(Ok(_)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => {
                self.io = None;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn head(raw: &str, bodyless: bool) -> (Head, Framing, bool, BytesMut) {
        let mut buf = BytesMut::from(raw.as_bytes());
        loop {
            match parse(&mut buf, bodyless).unwrap() {
                Parsed::Final(h, f, r) => return (h, f, r, buf),
                Parsed::Informational => continue,
                Parsed::Partial => panic!("partial: {raw:?}"),
            }
        }
    }

    #[test]
    fn request_heads_carry_only_what_http_would_accept() {
        let url = url::Url::parse("http://127.0.0.1:8080/sub").unwrap();
        let target = Arc::new(Target {
            origin: Ok(url.origin().ascii_serialization()),
            url,
            prefix: "/sub".into(),
            tls: None,
            guard: None,
            resolve: None,
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(1),
        });
        let pool = Pool::for_target(&target).unwrap();
        assert!(pool.request_head("GET", &["/sub", "/a b"]).is_none());
        assert!(pool.request_head("GET", &["/\u{e9}"]).is_none());
        let mut h = pool
            .request_head("HEAD", &["/sub", "/api", "?", "x=1"])
            .unwrap();
        assert!(h.bodyless);
        h.put("accept", b"application/json", false);
        h.put("authorization", b"Bearer t", true);
        h.put("x-bad", b"a\r\nx-injected: 1", false);
        h.put("bad name", b"v", false);
        h.put("Upper", b"v", false);
        h.put("x-tab", b"a\tb \xff", false);
        assert_eq!(
            h.bytes,
            b"HEAD /sub/api?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: application/json\r\n\
              authorization: Bearer t\r\nx-tab: a\tb \xff\r\n"
                .to_vec()
        );
        // And hyper's map refuses the same.
        let mut m = http1::HeaderMap::new();
        for (n, v) in [
            ("x-bad", &b"a\r\nx"[..]),
            ("bad name", b"v"),
            ("x-tab", b"a\tb \xff"),
        ] {
            m.put(n, v, false);
        }
        assert_eq!(m.len(), 1);
        assert!(m.contains_key("x-tab"));
    }

    #[test]
    fn informational_heads_are_skipped_and_names_lowercased() {
        let (h, f, reusable, rest) = head(
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Thing: A b\r\n\r\nhi",
            false,
        );
        assert_eq!(h.status, 200);
        assert_eq!(h.length, Some(2));
        assert!(matches!(f, Framing::Length(2)) && reusable);
        let got: Vec<(String, Vec<u8>)> = h
            .headers()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
            .collect();
        assert_eq!(
            got,
            [
                ("content-length".to_string(), b"2".to_vec()),
                ("x-thing".to_string(), b"A b".to_vec())
            ]
        );
        assert_eq!(&rest[..], b"hi");
    }

    #[test]
    fn names_are_lowercased_as_byte_by_byte_at_every_position() {
        for len in 1..=19 {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut name: Vec<u8> = (0..len).map(|i| b"aZ-09xY"[i % 7]).collect();
                    name[pos] = b;
                    let mut want = name.clone();
                    want.make_ascii_lowercase();
                    lowercase_token(&mut name);
                    assert_eq!(name, want, "{len} {pos} {b}");
                }
            }
        }
    }

    #[test]
    fn lines_are_whole_as_they_came_unless_they_end_in_a_bare_newline() {
        let (h, ..) = head(
            "HTTP/1.1 200 OK\r\nServer:  nginx \t\r\nX-Bare: a\nETag: \"x\"\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        let got: Vec<_> = h.lines().map(|l| (l.name(), l.value(), l.line())).collect();
        assert_eq!(
            got,
            [
                (
                    &b"server"[..],
                    &b"nginx"[..],
                    Some(&b"server:  nginx \t\r\n"[..])
                ),
                (b"x-bare", b"a", None),
                (b"etag", b"\"x\"", Some(b"etag: \"x\"\r\n")),
                (b"content-length", b"0", Some(b"content-length: 0\r\n")),
            ]
        );
    }

    /// A body of `framing` over `raw`, already buffered (no connection).
    fn body(raw: &[u8], framing: Framing) -> BodyStream {
        let url = url::Url::parse("http://127.0.0.1:1").unwrap();
        let target = Arc::new(Target {
            origin: Ok("http://127.0.0.1:1".into()),
            url,
            prefix: String::new(),
            tls: None,
            guard: None,
            resolve: None,
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(1),
        });
        BodyStream {
            io: None,
            buf: BytesMut::from(raw),
            framing,
            reusable: true,
            pool: Pool::for_target(&target).unwrap(),
            failed: None,
        }
    }

    /// The data `step` hands on, and how it ended: `Ok(true)` at the end, `Ok(false)` when
    /// it needs more bytes, `Err` on a bad body.
    fn drain(b: &mut BodyStream) -> (Vec<u8>, Result<bool, String>) {
        let mut out = Vec::new();
        loop {
            match b.step() {
                Some(Some(Ok(d))) => out.extend_from_slice(&d),
                Some(Some(Err(e))) => return (out, Err(e.to_string())),
                Some(None) => return (out, Ok(true)),
                None => return (out, Ok(false)),
            }
        }
    }

    #[test]
    fn chunked_bodies_are_decoded_with_extensions_and_trailers() {
        let mut b = body(
            b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
            Framing::Chunked(Chunk::Size),
        );
        assert_eq!(drain(&mut b), (b"hello world".to_vec(), Ok(true)));
        // Split anywhere, it waits for more.
        let mut b = body(b"5\r\nhel", Framing::Chunked(Chunk::Size));
        assert_eq!(drain(&mut b), (b"hel".to_vec(), Ok(false)));
        b.buf.extend_from_slice(b"lo\r");
        assert_eq!(drain(&mut b), (b"lo".to_vec(), Ok(false)));
        b.buf.extend_from_slice(b"\n0\r\n\r\n");
        assert_eq!(drain(&mut b), (Vec::new(), Ok(true)));
        // Data not followed by CRLF, or a size that is not hex: a bad body.
        let mut b = body(b"2\r\nabXY", Framing::Chunked(Chunk::Size));
        assert!(drain(&mut b).1.is_err());
        let mut b = body(b"zz\r\n", Framing::Chunked(Chunk::Size));
        assert!(drain(&mut b).1.is_err());
    }

    #[test]
    fn sized_bodies_end_at_their_length() {
        let mut b = body(b"abcdef", Framing::Length(4));
        assert_eq!(drain(&mut b), (b"abcd".to_vec(), Ok(true)));
        let mut b = body(b"ab", Framing::Length(4));
        assert_eq!(drain(&mut b), (b"ab".to_vec(), Ok(false)));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (_, f, r, _) = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
            false,
        );
        assert!(matches!(f, Framing::Chunked(Chunk::Size)) && r);
        let (_, f, r, _) = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false);
        assert!(matches!(f, Framing::Close) && !r);
        let (_, f, r, _) = head("HTTP/1.1 200 OK\r\n\r\n", false);
        assert!(matches!(f, Framing::Close) && !r);
        let (h, f, r, _) = head("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", true);
        assert!(matches!(f, Framing::Length(0)) && r && h.length == Some(50));
        let (_, f, r, _) = head(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            false,
        );
        assert!(matches!(f, Framing::Length(0)) && r);
        let (_, _, r, _) = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: Close\r\n\r\n",
            false,
        );
        assert!(!r);
        let (_, _, r, _) = head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert!(!r);
        let mut bad = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"[..]);
        assert!(matches!(parse(&mut bad, false), Err(H1Error::Head(_))));
        for cl in ["+5", "-1", "", "5 5", "0x10", "99999999999999999999"] {
            let mut bad = BytesMut::from(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n").as_bytes(),
            );
            assert!(
                matches!(parse(&mut bad, false), Err(H1Error::Head(_))),
                "{cl:?}"
            );
        }
        let (h, _, _, _) = head("HTTP/1.1 200 OK\r\nContent-Length:  7 , 7\r\n\r\n", false);
        assert_eq!(h.length, Some(7));
        let mut bad = BytesMut::from(&b"HTTP/1.1 101 Switching Protocols\r\n\r\n"[..]);
        assert!(matches!(parse(&mut bad, false), Err(H1Error::Head(_))));
    }
}
