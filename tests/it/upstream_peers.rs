//! Broken, slow and hostile peers (issue 9), end to end over loopback: kubeplex in-process
//! (one worker, so upstream connection reuse is deterministic) in front of a hand-written
//! raw TCP upstream ([`RawUpstream`]: reads request heads, writes exact bytes) and, where
//! the bytes matter, a raw TCP client ([`Client`]: writes exact request bytes, reads the
//! exact answer).
//!
//! What must hold: a 1xx is never taken for the final response (and never shifts the
//! responses of a pooled connection onto the next caller); a body the upstream cuts short
//! reaches the client as incomplete (no terminating chunk, connection closed), a
//! close-delimited body arrives whole; an early answer (401 before a large upload is read)
//! is delivered promptly, and `Expect: 100-continue` goes upstream without kubeplex
//! answering 100 itself; an idempotent request on a pooled connection the upstream closed is
//! retried once on a fresh one, a POST never is, and kubeplex closes its end of connections
//! the upstream closed (no CLOSE_WAIT); the request-head timeout applies to every request of
//! a kept-alive client connection; HTTP/1.0 clients never get chunked bodies; TRACE and
//! CONNECT are a 405 `Status` and never go upstream; and under a random mix of all of the
//! above from two callers, every response reaches the caller who asked for it.
//!
//! Every wait is bounded (a few seconds) and fails with a message saying what was seen.

use crate::common;

use common::{cluster, settings, spawn_app};
use kubeplex::app::RunningApp;
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The bound of every ordinary wait.
const T: Duration = Duration::from_secs(5);
/// A path on the path route (the only cluster is `up`).
const PATH: &str = "/api/kubernetes/clusters/up/api/v1/pods";
/// [`PATH`] as the upstream gets it.
const UP_PATH: &str = "/api/v1/pods";

// ---------------------------------------------------------------------------------------
// The raw upstream
// ---------------------------------------------------------------------------------------

/// A request head as the raw upstream read it.
#[derive(Debug, Clone)]
struct Head {
    /// The upstream connection it came on (1, 2, ... in accept order).
    conn: usize,
    method: String,
    target: String,
    /// Names lowercase.
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The bearer token it carries, or `-`.
    fn token(&self) -> String {
        self.header("authorization")
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_owned())
            .unwrap_or_else(|| "-".into())
    }

    fn content_length(&self) -> usize {
        self.header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// One accepted upstream connection.
struct Conn {
    id: usize,
    stream: TcpStream,
    buf: Vec<u8>,
    seen: Arc<Mutex<Vec<Head>>>,
}

impl Conn {
    /// Reads more bytes; false at EOF or on an error.
    async fn fill(&mut self) -> bool {
        let mut b = [0u8; 16 * 1024];
        match self.stream.read(&mut b).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&b[..n]);
                true
            }
        }
    }

    /// The next request head (recorded), or `None` when kubeplex closed the connection.
    async fn head(&mut self) -> Option<Head> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 4).collect();
                let text = String::from_utf8_lossy(&raw[..end]).into_owned();
                let mut lines = text.split("\r\n");
                let mut first = lines.next()?.split(' ');
                let method = first.next()?.to_owned();
                let target = first.next()?.to_owned();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let head = Head {
                    conn: self.id,
                    method,
                    target,
                    headers,
                };
                self.seen.lock().unwrap().push(head.clone());
                return Some(head);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let l: Vec<u8> = self.buf.drain(..i + 2).collect();
                return Some(String::from_utf8_lossy(&l[..i]).into_owned());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The request body `head` announces (Content-Length or chunked).
    async fn body(&mut self, head: &Head) -> Option<Vec<u8>> {
        if !head.chunked() {
            return self.exact(head.content_length()).await;
        }
        let mut out = Vec::new();
        loop {
            let size = self.line().await?;
            let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                while !self.line().await?.is_empty() {}
                return Some(out);
            }
            out.extend(self.exact(size).await?);
            self.exact(2).await?;
        }
    }

    /// Writes `b`; false if kubeplex is gone.
    async fn write(&mut self, b: impl AsRef<[u8]>) -> bool {
        self.stream.write_all(b.as_ref()).await.is_ok()
    }
}

/// A raw TCP upstream: each accepted connection is handed to the test's handler.
struct RawUpstream {
    addr: SocketAddr,
    url: String,
    seen: Arc<Mutex<Vec<Head>>>,
    conns: Arc<AtomicUsize>,
}

impl RawUpstream {
    async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Conn) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Head>>> = Arc::default();
        let conns: Arc<AtomicUsize> = Arc::default();
        let (s, c) = (seen.clone(), conns.clone());
        actix_web::rt::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let id = c.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = stream.set_nodelay(true);
                actix_web::rt::spawn(handler(Conn {
                    id,
                    stream,
                    buf: Vec::new(),
                    seen: s.clone(),
                }));
            }
        });
        RawUpstream {
            addr,
            url: format!("http://{addr}"),
            seen,
            conns,
        }
    }

    /// Every request head read so far.
    fn seen(&self) -> Vec<Head> {
        self.seen.lock().unwrap().clone()
    }

    /// How many connections were accepted.
    fn connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

/// A 200 with a Content-Length.
fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A 401 Kubernetes `Status`, `Connection: close`.
fn unauthorized(message: &str) -> (String, String) {
    let body = format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{message}","reason":"Unauthorized","code":401}}"#
    );
    (
        format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        body,
    )
}

/// kubeplex in front of `up`, one cluster `up`, one worker.
async fn app_for(up: &RawUpstream) -> RunningApp {
    let mut s = settings(vec![cluster("up", &up.url)]);
    s.server.workers = Some(1);
    spawn_app(s).await
}

fn get(path: &str, token: &str) -> String {
    bodyless("GET", path, token)
}

/// A request without a body. `GET` and `HEAD` to a plain `http://` cluster take kubeplex's
/// direct HTTP/1.1 path; other methods (`DELETE` here) hyper's client, with its own pool.
fn bodyless(method: &str, path: &str, token: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: kubeplex\r\nAuthorization: Bearer {token}\r\n\r\n")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 2000 {
        format!("{}... ({} bytes)", &s[..2000], b.len())
    } else {
        s.into_owned()
    }
}

// ---------------------------------------------------------------------------------------
// Parsing responses (the raw client's view)
// ---------------------------------------------------------------------------------------

/// A final response, with the informational ones before it.
#[derive(Debug)]
struct Resp {
    /// The 1xx statuses received before the final response.
    infos: Vec<u16>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

enum Parsed {
    /// More bytes are needed.
    Need,
    /// A whole response, and the bytes it used.
    Done(Resp, usize),
    /// The bytes can never form a whole response (EOF inside it, or garbage).
    Bad(String),
}

/// One response from the start of `buf` (`eof`: no more bytes will come), framed as
/// RFC 9112 §6.3 says; 1xx heads are collected and skipped.
fn parse(buf: &[u8], eof: bool) -> Parsed {
    let mut pos = 0;
    let mut infos = Vec::new();
    loop {
        let Some(end) = find(&buf[pos..], b"\r\n\r\n").map(|e| pos + e) else {
            return if eof {
                Parsed::Bad(format!(
                    "EOF before a whole response head: {:?}",
                    lossy(buf)
                ))
            } else {
                Parsed::Need
            };
        };
        let text = String::from_utf8_lossy(&buf[pos..end]).into_owned();
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        parts.next();
        let Some(status) = parts.next().and_then(|s| s.parse::<u16>().ok()) else {
            return Parsed::Bad(format!("not a status line: {status_line:?}"));
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        pos = end + 4;
        if (100..200).contains(&status) && status != 101 {
            infos.push(status);
            continue;
        }
        let h = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let resp = |body: Vec<u8>| Resp {
            infos: infos.clone(),
            status,
            headers: headers.clone(),
            body,
        };
        if status == 204 || status == 304 {
            return Parsed::Done(resp(Vec::new()), pos);
        }
        if h("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            let mut body = Vec::new();
            let mut p = pos;
            loop {
                let Some(le) = find(&buf[p..], b"\r\n").map(|e| p + e) else {
                    return need_or_bad(eof, "EOF inside a chunked body (no terminating chunk)");
                };
                let size_text = String::from_utf8_lossy(&buf[p..le]).into_owned();
                let Ok(size) =
                    usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                else {
                    return Parsed::Bad(format!("bad chunk size {size_text:?}"));
                };
                p = le + 2;
                if size == 0 {
                    // Trailers, then the blank line.
                    loop {
                        let Some(te) = find(&buf[p..], b"\r\n").map(|e| p + e) else {
                            return need_or_bad(eof, "EOF inside the chunked trailer");
                        };
                        let empty = te == p;
                        p = te + 2;
                        if empty {
                            return Parsed::Done(resp(body), p);
                        }
                    }
                }
                if buf.len() < p + size + 2 {
                    return need_or_bad(eof, "EOF inside a chunk (no terminating chunk)");
                }
                if &buf[p + size..p + size + 2] != b"\r\n" {
                    return Parsed::Bad(format!("chunk data of {size} bytes not followed by CRLF"));
                }
                body.extend_from_slice(&buf[p..p + size]);
                p += size + 2;
            }
        }
        if let Some(n) = h("content-length").and_then(|v| v.parse::<usize>().ok()) {
            if buf.len() >= pos + n {
                return Parsed::Done(resp(buf[pos..pos + n].to_vec()), pos + n);
            }
            return need_or_bad(
                eof,
                &format!(
                    "EOF after {} of the {n} body bytes of Content-Length",
                    buf.len() - pos
                ),
            );
        }
        // Delimited by the connection's close.
        return if eof {
            Parsed::Done(resp(buf[pos..].to_vec()), buf.len())
        } else {
            Parsed::Need
        };
    }
}

fn need_or_bad(eof: bool, why: &str) -> Parsed {
    if eof {
        Parsed::Bad(why.to_owned())
    } else {
        Parsed::Need
    }
}

// ---------------------------------------------------------------------------------------
// The raw client
// ---------------------------------------------------------------------------------------

/// How reading until EOF ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// kubeplex closed the connection (FIN).
    Eof,
    /// kubeplex reset it.
    Reset,
    /// Still open when the time ran out.
    StillOpen,
}

struct Client {
    rd: OwnedReadHalf,
    wr: Option<OwnedWriteHalf>,
    /// Received, not yet consumed.
    buf: Vec<u8>,
    /// Everything received, for messages.
    all: Vec<u8>,
    eof: bool,
}

impl Client {
    async fn connect(app: &RunningApp) -> Self {
        Self::over(TcpStream::connect(app.addr).await.unwrap())
    }

    /// A client over a connection made elsewhere (e.g. with its own socket options).
    fn over(s: TcpStream) -> Self {
        s.set_nodelay(true).unwrap();
        let (rd, wr) = s.into_split();
        Client {
            rd,
            wr: Some(wr),
            buf: Vec::new(),
            all: Vec::new(),
            eof: false,
        }
    }

    async fn send(&mut self, b: impl AsRef<[u8]>) {
        self.wr
            .as_mut()
            .expect("writer kept")
            .write_all(b.as_ref())
            .await
            .expect("kubeplex reads the request");
    }

    /// Reads more; Ok(0) at EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut b = [0u8; 16 * 1024];
        let r = self.rd.read(&mut b).await;
        match r {
            Ok(0) => self.eof = true,
            Ok(n) => {
                self.buf.extend_from_slice(&b[..n]);
                self.all.extend_from_slice(&b[..n]);
            }
            Err(_) => self.eof = true,
        }
        r
    }

    /// The next whole response within `limit` (1xx collected in [`Resp::infos`]).
    async fn response(&mut self, limit: Duration) -> Result<Resp, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match parse(&self.buf, self.eof) {
                Parsed::Done(r, used) => {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                Parsed::Bad(why) => {
                    return Err(format!("{why}; received: {:?}", lossy(&self.all)));
                }
                Parsed::Need => {}
            }
            if tokio::time::timeout_at(deadline, self.fill())
                .await
                .is_err()
            {
                return Err(format!(
                    "no whole response within {limit:?}; received: {:?}",
                    lossy(&self.all)
                ));
            }
        }
    }

    /// Reads until kubeplex closes (or `limit` passes): the unconsumed bytes and how it ended.
    async fn until_close(&mut self, limit: Duration) -> (Vec<u8>, Ending) {
        let deadline = tokio::time::Instant::now() + limit;
        let ending = loop {
            if self.eof {
                break Ending::Eof;
            }
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Err(_) => break Ending::StillOpen,
                Ok(Ok(0)) => break Ending::Eof,
                Ok(Ok(_)) => {}
                Ok(Err(_)) => break Ending::Reset,
            }
        };
        (std::mem::take(&mut self.buf), ending)
    }
}

// ---------------------------------------------------------------------------------------
// 1. Informational responses
// ---------------------------------------------------------------------------------------

/// The upstream sends `info` (a whole 1xx head) and, 300 ms later (as a server sending
/// Early Hints while it prepares the answer does), the final `200 who=<token>`, for every
/// request. Caller A asks; 100 ms later, while A's final answer is still being prepared,
/// caller B asks (one kubeplex worker, so one upstream pool): each must get its own 200. A
/// 1xx taken for A's final response would hand A's connection back to the pool with A's
/// 200 still to come, and B would read it. Then A asks again: no offset may persist.
async fn informational_then_final(info: &'static str, info_status: u16) {
    let up = RawUpstream::start(move |mut c| async move {
        while let Some(h) = c.head().await {
            let body = format!("who={}", h.token());
            if !c.write(info).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            if !c.write(ok(&body)).await {
                return;
            }
        }
    })
    .await;
    let app = app_for(&up).await;
    let ask = |token: &'static str| {
        let app = &app;
        async move {
            let mut c = Client::connect(app).await;
            c.send(get(PATH, token)).await;
            (token, c.response(T).await)
        }
    };
    let a = ask("token-a");
    let b = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ask("token-b").await
    };
    let (a, b) = tokio::join!(a, b);
    let again = ask("token-a").await;
    let mut problems = Vec::new();
    for (token, r) in [a, b, again] {
        match r {
            Err(e) => problems.push(format!("caller {token}: {e}")),
            Ok(r) => {
                if r.status != 200 || r.text() != format!("who={token}") {
                    problems.push(format!(
                        "caller {token} got status {} body {:?} (informational before it: {:?}); \
                         expected 200 who={token}",
                        r.status,
                        r.text(),
                        r.infos
                    ));
                }
                if r.infos.iter().any(|s| *s != info_status) {
                    problems.push(format!(
                        "caller {token} got informational responses {:?}; the upstream sent only {info_status}",
                        r.infos
                    ));
                }
            }
        }
    }
    let mut got: Vec<String> = up.seen().iter().map(Head::token).collect();
    got.sort();
    if got != ["token-a", "token-a", "token-b"] {
        problems.push(format!(
            "the upstream got requests with tokens {got:?}, expected token-a twice and token-b once"
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[actix_web::test]
async fn early_hints_103_is_not_the_final_response_and_next_caller_gets_its_own() {
    informational_then_final(
        "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n",
        103,
    )
    .await;
}

#[actix_web::test]
async fn unsolicited_100_continue_is_not_the_final_response_and_next_caller_gets_its_own() {
    informational_then_final("HTTP/1.1 100 Continue\r\n\r\n", 100).await;
}

// ---------------------------------------------------------------------------------------
// 2. Truncated bodies
// ---------------------------------------------------------------------------------------

/// The upstream answers `head` + `partial` to every request and closes (FIN, the request
/// having been read whole). The client (keep-alive) must see the response end incomplete:
/// connection closed by kubeplex, and the bytes it got never a whole response.
async fn cut_short(head: &str, partial: &str) -> (Vec<u8>, Ending) {
    let answer = format!("{head}{partial}");
    let up = RawUpstream::start(move |mut c| {
        let answer = answer.clone();
        async move {
            if c.head().await.is_some() {
                c.write(answer).await;
                let _ = c.stream.shutdown().await;
            }
        }
    })
    .await;
    let app = app_for(&up).await;
    let mut c = Client::connect(&app).await;
    c.send(get(PATH, "token-a")).await;
    c.until_close(T).await
}

fn assert_incomplete(raw: &[u8], ending: &Ending, what: &str) {
    assert_ne!(
        *ending,
        Ending::StillOpen,
        "{what}: kubeplex kept the client connection open after the upstream cut the body \
         short (the client may take a partial body for a whole one); received: {:?}",
        lossy(raw)
    );
    // Closing without a response at all is incomplete too.
    assert!(
        raw.is_empty() || raw.starts_with(b"HTTP/1.1 200"),
        "{what}: expected the upstream's 200 head: {:?}",
        lossy(raw)
    );
    assert!(
        !raw.ends_with(b"\r\n0\r\n\r\n"),
        "{what}: kubeplex ended the cut-short body with a clean terminating chunk: {:?}",
        lossy(raw)
    );
    if raw.is_empty() {
        return;
    }
    match parse(raw, true) {
        Parsed::Done(r, _) => panic!(
            "{what}: the client got a whole-looking response (status {}, body {:?}) for a body \
             the upstream cut short; received: {:?}",
            r.status,
            r.text(),
            lossy(raw)
        ),
        Parsed::Need => unreachable!(),
        Parsed::Bad(_) => {}
    }
}

#[actix_web::test]
async fn chunked_body_cut_inside_a_chunk_ends_incomplete_and_closes() {
    let (raw, ending) = cut_short(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        "c\r\n{\"items\":[1,\r\n20\r\n2,3,4",
    )
    .await;
    assert_incomplete(&raw, &ending, "cut inside a chunk");
}

#[actix_web::test]
async fn chunked_body_cut_before_the_last_chunk_ends_incomplete_and_closes() {
    let (raw, ending) = cut_short(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        "c\r\n{\"items\":[1,\r\n",
    )
    .await;
    assert_incomplete(&raw, &ending, "cut after a whole chunk, no 0-chunk");
}

#[actix_web::test]
async fn content_length_body_cut_short_ends_incomplete_and_closes() {
    let (raw, ending) = cut_short(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        "{\"items\":[1,2,3,4,5,6,7,8,9,10,11",
    )
    .await;
    assert_incomplete(&raw, &ending, "Content-Length 100, 33 bytes sent");
}

#[actix_web::test]
async fn close_delimited_body_is_delivered_whole() {
    // About 200 KiB, so it spans many reads.
    let body: String = (0..20_000).map(|i| format!("{i:09}\n")).collect();
    let expected = body.clone();
    let up = RawUpstream::start(move |mut c| {
        let body = body.clone();
        async move {
            if c.head().await.is_some() {
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}"
                ))
                .await;
                let _ = c.stream.shutdown().await;
            }
        }
    })
    .await;
    let app = app_for(&up).await;
    let mut c = Client::connect(&app).await;
    c.send(get(PATH, "token-a")).await;
    match c.response(T).await {
        Ok(r) => {
            assert_eq!(r.status, 200);
            assert!(
                !r.body.is_empty(),
                "a close-delimited body arrived as an empty 200: {:?}",
                lossy(&c.all[..c.all.len().min(500)])
            );
            assert!(
                r.body == expected.as_bytes(),
                "a close-delimited body arrived as a whole-looking response of {} bytes, \
                 not the upstream's {} bytes",
                r.body.len(),
                expected.len()
            );
        }
        // Allowed when kubeplex cannot deliver it whole: the client sees it incomplete.
        Err(e) => assert!(
            !e.starts_with("no whole response within"),
            "the close-delimited response neither arrived nor ended: {e}"
        ),
    }
}

// ---------------------------------------------------------------------------------------
// 3. Early answers
// ---------------------------------------------------------------------------------------

/// The client POSTs 10 MB (Content-Length, written in the background); the upstream reads
/// the head only, answers 401 and then `after`. The client must get that 401 within 5 s.
async fn early_401(hold_open: bool) {
    let (answer, status_body) = unauthorized("token expired");
    let up = RawUpstream::start(move |mut c| {
        let answer = answer.clone();
        async move {
            if c.head().await.is_some() {
                c.write(answer).await;
                if hold_open {
                    // Stops reading, keeps the connection.
                    tokio::time::sleep(Duration::from_secs(15)).await;
                }
                // Else closes at once, the upload unread.
            }
        }
    })
    .await;
    let app = app_for(&up).await;
    let len = 10 * 1024 * 1024;
    let mut c = Client::connect(&app).await;
    c.send(format!(
        "POST {PATH} HTTP/1.1\r\nHost: kubeplex\r\nAuthorization: Bearer token-a\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    ))
    .await;
    let mut wr = c.wr.take().unwrap();
    let writer = actix_web::rt::spawn(async move {
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..len / chunk.len() {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        // Keep the write half (no FIN) until aborted.
        std::future::pending::<()>().await;
    });
    let start = Instant::now();
    let r = c.response(T).await;
    writer.abort();
    let r = r.unwrap_or_else(|e| {
        panic!("the upstream's early 401 did not reach the client within {T:?}: {e}")
    });
    assert_eq!(
        r.status,
        401,
        "expected the upstream's 401, got {} {:?} after {:?}",
        r.status,
        r.text(),
        start.elapsed()
    );
    assert_eq!(r.text(), status_body);
    assert_eq!(up.seen().len(), 1, "{:?}", up.seen());
}

#[actix_web::test]
async fn early_401_then_close_during_a_large_upload_is_delivered() {
    early_401(false).await;
}

#[actix_web::test]
async fn early_401_then_no_reading_during_a_large_upload_is_delivered() {
    early_401(true).await;
}

#[actix_web::test]
async fn expect_100_continue_goes_upstream_and_kubeplex_does_not_answer_it_itself() {
    let (heads_tx, mut heads) = tokio::sync::mpsc::unbounded_channel::<Head>();
    let go = Rc::new(tokio::sync::Notify::new());
    let go2 = go.clone();
    let up = RawUpstream::start(move |mut c| {
        let heads_tx = heads_tx.clone();
        let go = go2.clone();
        async move {
            let Some(h) = c.head().await else { return };
            let _ = heads_tx.send(h.clone());
            go.notified().await;
            c.write("HTTP/1.1 100 Continue\r\n\r\n").await;
            let Some(body) = c.body(&h).await else { return };
            let body = format!("got={}", String::from_utf8_lossy(&body));
            c.write(format!(
                "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ))
            .await;
        }
    })
    .await;
    let app = app_for(&up).await;
    let mut c = Client::connect(&app).await;
    c.send(format!(
        "POST {PATH} HTTP/1.1\r\nHost: kubeplex\r\nAuthorization: Bearer token-a\r\n\
         Content-Type: text/plain\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"
    ))
    .await;
    // The head must reach the upstream with the Expect, before anything reaches the client.
    let head = tokio::select! {
        h = heads.recv() => h.unwrap(),
        _ = c.fill() => panic!(
            "kubeplex answered {:?} before the upstream saw the request: it answers \
             100-continue itself for a cluster that may refuse the body",
            lossy(&c.all)
        ),
        _ = tokio::time::sleep(T) => panic!(
            "the upstream never got the request head while the client waited for 100 Continue"
        ),
    };
    assert_eq!(
        head.header("expect"),
        Some("100-continue"),
        "Expect: 100-continue was not forwarded upstream; headers: {:?}",
        head.headers
    );
    if tokio::time::timeout(Duration::from_millis(300), c.fill())
        .await
        .is_ok()
    {
        panic!(
            "kubeplex answered {:?} before the upstream sent 100 Continue",
            lossy(&c.all)
        );
    }
    go.notify_one();
    // The upstream's 100 should come through; a client waits a while and then sends the
    // body anyway (as curl does), so do that too.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while find(&c.buf, b"\r\n\r\n").is_none() && !c.eof {
            let _ = c.fill().await;
        }
    })
    .await;
    c.send("hello world").await;
    let r = c.response(T).await.unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.text(), "got=hello world");
    assert!(r.infos.iter().all(|s| *s == 100), "{r:?}");
}

#[actix_web::test]
async fn expect_100_continue_refused_upstream_gets_the_refusal_without_a_100() {
    let (answer, status_body) = unauthorized("no uploads for you");
    let up = RawUpstream::start(move |mut c| {
        let answer = answer.clone();
        async move {
            if c.head().await.is_some() {
                c.write(answer).await;
                tokio::time::sleep(Duration::from_secs(15)).await;
            }
        }
    })
    .await;
    let app = app_for(&up).await;
    let mut c = Client::connect(&app).await;
    // The body is never sent: the client waits for a 100 that the upstream never gives.
    c.send(format!(
        "POST {PATH} HTTP/1.1\r\nHost: kubeplex\r\nAuthorization: Bearer token-a\r\n\
         Content-Type: application/json\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n"
    ))
    .await;
    let r = c
        .response(T)
        .await
        .unwrap_or_else(|e| panic!("the upstream's refusal did not reach the client: {e}"));
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.text(), status_body);
    assert!(
        r.infos.is_empty(),
        "kubeplex answered {:?} itself though the upstream refused the body",
        r.infos
    );
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header("expect"), Some("100-continue"), "{seen:?}");
}

// ---------------------------------------------------------------------------------------
// 4. Idle pooled connections
// ---------------------------------------------------------------------------------------

/// A 200 `conn=<id> <method> <target>` for every request (bodies read).
async fn answer_all(c: &mut Conn) {
    while let Some(h) = c.head().await {
        if c.body(&h).await.is_none() {
            return;
        }
        if !c
            .write(ok(&format!("conn={} {} {}", c.id, h.method, h.target)))
            .await
        {
            return;
        }
    }
}

/// One request on a fresh client connection.
async fn one(app: &RunningApp, request: &str) -> Result<Resp, String> {
    let mut c = Client::connect(app).await;
    c.send(request).await;
    c.response(T).await
}

#[actix_web::test]
async fn get_after_the_upstream_closed_the_idle_connection_succeeds() {
    let closed = Rc::new(tokio::sync::Notify::new());
    let closed2 = closed.clone();
    let up = RawUpstream::start(move |mut c| {
        let closed = closed2.clone();
        async move {
            if c.id == 1 {
                // Answers the first request, then closes the idle connection (FIN).
                if let Some(h) = c.head().await {
                    c.write(ok(&format!("conn=1 {}", h.target))).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                drop(c);
                closed.notify_one();
            } else {
                answer_all(&mut c).await;
            }
        }
    })
    .await;
    let app = app_for(&up).await;
    let r = one(&app, &get(&format!("{PATH}/first"), "token-a"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    tokio::time::timeout(T, closed.notified())
        .await
        .expect("the upstream closes its first connection");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = one(&app, &get(&format!("{PATH}/second"), "token-a"))
        .await
        .unwrap_or_else(|e| panic!("second GET: {e}"));
    assert_eq!(
        (r.status, r.text()),
        (200, format!("conn=2 GET {UP_PATH}/second")),
        "{r:?}"
    );
    let seconds: Vec<usize> = up
        .seen()
        .iter()
        .filter(|h| h.target.ends_with("/second"))
        .map(|h| h.conn)
        .collect();
    assert_eq!(seconds, [2], "the second GET, by upstream connection");
}

/// The upstream answers the first request on its first connection, then reads the next
/// request on it and closes without answering (the race of a reused idle connection);
/// later connections answer everything.
async fn closes_on_reuse() -> RawUpstream {
    RawUpstream::start(|mut c| async move {
        if c.id == 1 {
            if let Some(h) = c.head().await {
                c.write(ok(&format!("conn=1 {}", h.target))).await;
                if let Some(h) = c.head().await {
                    let _ = c.body(&h).await;
                }
            }
            // Closed, with nothing answered.
        } else {
            answer_all(&mut c).await;
        }
    })
    .await
}

/// A bodyless `method` on a pooled connection the upstream closes as it is reused: sent once
/// more, on a new connection.
async fn retried_once(method: &str) {
    let up = closes_on_reuse().await;
    let app = app_for(&up).await;
    let r = one(&app, &bodyless(method, &format!("{PATH}/first"), "token-a"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = one(
        &app,
        &bodyless(method, &format!("{PATH}/second"), "token-a"),
    )
    .await
    .unwrap_or_else(|e| panic!("second {method}: {e}"));
    assert_eq!(
        (r.status, r.text()),
        (200, format!("conn=2 {method} {UP_PATH}/second")),
        "the {method} must be retried once on a fresh connection: {r:?}"
    );
    let seen: Vec<(usize, String)> = up
        .seen()
        .iter()
        .map(|h| (h.conn, h.target.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, format!("{UP_PATH}/first")),
            (1, format!("{UP_PATH}/second")),
            (2, format!("{UP_PATH}/second")),
        ],
        "one retry, on a new connection"
    );
}

#[actix_web::test]
async fn get_on_a_pooled_connection_closed_as_it_is_reused_is_retried_once() {
    // The direct HTTP/1.1 path.
    retried_once("GET").await;
}

#[actix_web::test]
async fn delete_on_a_pooled_connection_closed_as_it_is_reused_is_retried_once() {
    // hyper's client.
    retried_once("DELETE").await;
}

#[actix_web::test]
async fn post_on_a_pooled_connection_closed_as_it_is_reused_is_not_retried() {
    let up = closes_on_reuse().await;
    let app = app_for(&up).await;
    // A DELETE first: its connection goes back to the pool the POST is sent from (hyper's).
    let r = one(
        &app,
        &bodyless("DELETE", &format!("{PATH}/first"), "token-a"),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = one(
        &app,
        &format!(
            "POST {PATH}/create HTTP/1.1\r\nHost: kubeplex\r\nAuthorization: Bearer token-a\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("POST: {e}"));
    assert_eq!(r.status, 502, "{r:?}");
    let v: serde_json::Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("a Status body: {e}: {:?}", r.text()));
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["code"], 502, "{v}");
    // A late retry would show up here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts: Vec<usize> = up
        .seen()
        .iter()
        .filter(|h| h.method == "POST")
        .map(|h| h.conn)
        .collect();
    assert_eq!(
        posts,
        [1],
        "the POST was sent once, on the reused connection"
    );
}

#[actix_web::test]
async fn post_after_the_upstream_closed_the_idle_connection_is_sent_at_most_once() {
    let up = RawUpstream::start(|mut c| async move {
        if c.id == 1 {
            if let Some(h) = c.head().await {
                c.write(ok(&format!("conn=1 {}", h.target))).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        } else {
            answer_all(&mut c).await;
        }
    })
    .await;
    let app = app_for(&up).await;
    // A DELETE first: its connection goes back to the pool the POST is sent from (hyper's).
    let r = one(
        &app,
        &bodyless("DELETE", &format!("{PATH}/first"), "token-a"),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = one(
        &app,
        &format!(
            "POST {PATH}/create HTTP/1.1\r\nHost: kubeplex\r\nAuthorization: Bearer token-a\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("POST: {e}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts: Vec<usize> = up
        .seen()
        .iter()
        .filter(|h| h.method == "POST")
        .map(|h| h.conn)
        .collect();
    match posts.as_slice() {
        // The closed connection was noticed: the POST went on a new one and was answered.
        [n] if *n > 1 => assert_eq!(r.status, 200, "{r:?}"),
        // Written to the dead connection: a 502, never resent.
        [] => assert_eq!(r.status, 502, "{r:?}"),
        other => panic!("the POST reached the upstream on connections {other:?}; {r:?}"),
    }
}

#[actix_web::test]
async fn kubeplex_closes_its_end_when_the_upstream_closes_an_idle_connection() {
    // The upstream half-closes (FIN) after answering, then waits for kubeplex's FIN.
    let outcome: Rc<RefCell<Option<String>>> = Rc::default();
    let out = outcome.clone();
    let up = RawUpstream::start(move |mut c| {
        let out = out.clone();
        async move {
            if c.head().await.is_none() {
                return;
            }
            c.write(ok("hello")).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = c.stream.shutdown().await;
            let start = Instant::now();
            let mut b = [0u8; 1024];
            let r = tokio::time::timeout(T, c.stream.read(&mut b)).await;
            *out.borrow_mut() = Some(match r {
                Ok(Ok(0)) => format!("closed after {:?}", start.elapsed()),
                Ok(Ok(n)) => format!("kubeplex sent {:?}", lossy(&b[..n])),
                Ok(Err(e)) => format!("closed with an error ({e})"),
                Err(_) => format!("still open after {T:?} (CLOSE_WAIT on kubeplex's side)"),
            });
        }
    })
    .await;
    let app = app_for(&up).await;
    let r = one(&app, &get(PATH, "token-a")).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let done = common::eventually(T + Duration::from_secs(2), || outcome.borrow().is_some()).await;
    assert!(done, "the upstream's check did not finish");
    let o = outcome.borrow().clone().unwrap();
    assert!(o.starts_with("closed"), "kubeplex's end: {o}");
}

/// The sockets in CLOSE_WAIT (`/proc/net/tcp` state 08) whose peer is port `port` on
/// loopback; `None` when `/proc/net/tcp` cannot be read.
fn close_wait_to(port: u16) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    Some(
        table
            .lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3
                    && f[3] == "08"
                    && f[2]
                        .rsplit_once(':')
                        .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                        == Some(port)
            })
            .count(),
    )
}

#[actix_web::test]
async fn no_close_wait_after_the_upstream_closes_idle_connections() {
    // Three overlapping requests give three pooled connections; the upstream answers each
    // after 300 ms and closes all three once idle.
    let up = RawUpstream::start(|mut c| async move {
        if let Some(h) = c.head().await {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.write(ok(&format!("conn={} {}", c.id, h.target))).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Dropped: FIN.
    })
    .await;
    let app = app_for(&up).await;
    let req = get(PATH, "token-a");
    let (a, b, c) = tokio::join!(one(&app, &req), one(&app, &req), one(&app, &req));
    for r in [a, b, c] {
        assert_eq!(r.unwrap().status, 200);
    }
    assert_eq!(up.connections(), 3, "three upstream connections");
    let Some(_) = close_wait_to(up.addr.port()) else {
        eprintln!("/proc/net/tcp is not readable: CLOSE_WAIT check skipped");
        return;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gone = common::eventually(T, || close_wait_to(up.addr.port()) == Some(0)).await;
    assert!(
        gone,
        "{:?} kubeplex sockets to the upstream are still in CLOSE_WAIT {T:?} after the \
         upstream closed them",
        close_wait_to(up.addr.port())
    );
}

// ---------------------------------------------------------------------------------------
// 5. Slow clients on kept-alive connections
// ---------------------------------------------------------------------------------------

/// Actix's `client_request_timeout` default (kubeplex does not change it) is 5 s; the close
/// must come within this.
const HEAD_BOUND: Duration = Duration::from_secs(10);

async fn slow_client_app() -> (RawUpstream, RunningApp, Client) {
    let up = RawUpstream::start(|mut c| async move { answer_all(&mut c).await }).await;
    let app = app_for(&up).await;
    let mut c = Client::connect(&app).await;
    c.send(get(PATH, "token-a")).await;
    let r = c.response(T).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    (up, app, c)
}

#[actix_web::test]
async fn second_request_head_that_stalls_is_timed_out() {
    let (_up, _app, mut c) = slow_client_app().await;
    c.send("GET /api/kubernetes/proxy/api HTTP/1.1\r\nHo").await;
    let start = Instant::now();
    let (rest, ending) = c.until_close(HEAD_BOUND).await;
    assert_ne!(
        ending,
        Ending::StillOpen,
        "kubeplex held a connection whose second request head stalled for {HEAD_BOUND:?}; \
         received after the first response: {:?}",
        lossy(&rest)
    );
    assert!(
        rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"),
        "after {:?}: {:?}",
        start.elapsed(),
        lossy(&rest)
    );
}

#[actix_web::test]
async fn second_request_head_dribbled_byte_by_byte_is_timed_out() {
    let (_up, _app, mut c) = slow_client_app().await;
    let dribble = format!("GET {PATH} HTTP/1.1\r\nX-Slow: {}", "a".repeat(100));
    let start = Instant::now();
    let mut wr = c.wr.take().unwrap();
    let writer = actix_web::rt::spawn(async move {
        for b in dribble.bytes() {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        std::future::pending::<()>().await;
    });
    let (rest, ending) = c.until_close(HEAD_BOUND).await;
    writer.abort();
    assert_ne!(
        ending,
        Ending::StillOpen,
        "kubeplex held a connection dribbling its second request head for {HEAD_BOUND:?}"
    );
    assert!(
        rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"),
        "after {:?}: {:?}",
        start.elapsed(),
        lossy(&rest)
    );
}

/// A large answer to a client reading through a 4 KiB receive window, with a second request
/// pipelined behind it: kubeplex's writes block again and again in the middle of the body's
/// large chunks (actix-http writes those as they are, after its buffer: vendor/PATCHES.md,
/// eighth change), yet every byte arrives in order and the second answer follows the first
/// intact on the same connection. Both with a Content-Length and chunked: chunks of mixed
/// sizes, so that large chunks written as they are (their line ends owed) alternate with
/// small ones encoded into the buffer.
#[actix_web::test]
async fn a_large_answer_to_a_slow_reader_arrives_whole_before_the_next() {
    for chunked in [false, true] {
        a_large_answer_to_a_slow_reader(chunked).await;
    }
}

async fn a_large_answer_to_a_slow_reader(chunked: bool) {
    const LEN: usize = 8 << 20;
    let big: Arc<Vec<u8>> = Arc::new((0..LEN).map(|i| (i % 251) as u8).collect());
    let body = big.clone();
    let up = RawUpstream::start(move |mut c| {
        let body = body.clone();
        async move {
            while let Some(h) = c.head().await {
                let ok = if h.target.ends_with("/big") && chunked {
                    let mut ok = c
                        .write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                        .await;
                    let sizes = [70_000, 5, 20_000, 16_384, 100, 1_000_000, 3000];
                    let mut at = 0;
                    for size in sizes.iter().cycle() {
                        if !ok || at == LEN {
                            break;
                        }
                        let end = (at + size).min(LEN);
                        let mut chunk = format!("{:x}\r\n", end - at).into_bytes();
                        chunk.extend_from_slice(&body[at..end]);
                        chunk.extend_from_slice(b"\r\n");
                        ok = c.write(chunk).await;
                        at = end;
                    }
                    ok && c.write("0\r\n\r\n").await
                } else if h.target.ends_with("/big") {
                    c.write(format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n"))
                        .await
                        && c.write(&body[..]).await
                } else {
                    c.write(ok("small")).await
                };
                if !ok {
                    return;
                }
            }
        }
    })
    .await;
    let app = app_for(&up).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut c = Client::over(socket.connect(app.addr).await.unwrap());
    let base = "/api/kubernetes/clusters/up/api/v1";
    c.send(get(&format!("{base}/big"), "token-a") + &get(&format!("{base}/small"), "token-a"))
        .await;
    let first = c.response(Duration::from_secs(60)).await.unwrap();
    assert_eq!(first.status, 200, "{:?}", first.headers);
    assert_eq!(
        first.header("transfer-encoding") == Some("chunked"),
        chunked,
        "{:?}",
        first.headers
    );
    assert_eq!(first.body.len(), LEN, "chunked: {chunked}");
    if let Some(at) = first.body.iter().zip(big.iter()).position(|(a, b)| a != b) {
        panic!("the body differs from byte {at} on");
    }
    let second = c.response(T).await.unwrap();
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.body, b"small");
}

// ---------------------------------------------------------------------------------------
// 6. HTTP/1.0 clients
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn http10_client_gets_no_chunked_body() {
    let up = RawUpstream::start(|mut c| async move {
        if c.head().await.is_some() {
            c.write(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            )
            .await;
            answer_all(&mut c).await;
        }
    })
    .await;
    let app = app_for(&up).await;
    let mut c = Client::connect(&app).await;
    c.send(format!(
        "GET {PATH} HTTP/1.0\r\nHost: kubeplex\r\nAuthorization: Bearer token-a\r\n\r\n"
    ))
    .await;
    let (raw, ending) = c.until_close(T).await;
    assert_ne!(
        ending,
        Ending::StillOpen,
        "kubeplex did not close the HTTP/1.0 connection: {:?}",
        lossy(&raw)
    );
    let end = find(&raw, b"\r\n\r\n").unwrap_or_else(|| panic!("no head: {:?}", lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    assert!(head.contains(" 200 "), "{head}");
    assert!(
        !head.contains("transfer-encoding"),
        "an HTTP/1.0 client got Transfer-Encoding: {:?}",
        lossy(&raw)
    );
    let body = &raw[end + 4..];
    if let Some(n) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap())
    {
        assert_eq!(n, 11, "{:?}", lossy(&raw));
    }
    assert_eq!(lossy(body), "hello world", "{:?}", lossy(&raw));
}

// ---------------------------------------------------------------------------------------
// 7. TRACE and CONNECT
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn trace_and_connect_are_405_on_both_proxy_routes_and_never_sent_upstream() {
    let up = RawUpstream::start(|mut c| async move { answer_all(&mut c).await }).await;
    let app = app_for(&up).await;
    let mut problems = Vec::new();
    for method in ["TRACE", "CONNECT"] {
        for path in [
            "/api/kubernetes/proxy/api/v1/pods",
            "/api/kubernetes/clusters/up/api/v1/pods",
        ] {
            let mut c = Client::connect(&app).await;
            c.send(format!(
                "{method} {path} HTTP/1.1\r\nHost: kubeplex\r\nAuthorization: Bearer secret-t\r\n\
                 Connection: close\r\n\r\n"
            ))
            .await;
            let r = match c.response(T).await {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("{method} {path}: {e}"));
                    continue;
                }
            };
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if r.status != 405
                || v["kind"] != "Status"
                || v["reason"] != "MethodNotAllowed"
                || v["code"] != 405
                || !r
                    .header("content-type")
                    .is_some_and(|t| t.starts_with("application/json"))
            {
                problems.push(format!(
                    "{method} {path}: {} {:?} {:?}",
                    r.status,
                    r.headers,
                    r.text()
                ));
            }
        }
    }
    let seen: Vec<String> = up
        .seen()
        .iter()
        .map(|h| {
            format!(
                "{} {} (authorization {:?})",
                h.method,
                h.target,
                h.header("authorization")
            )
        })
        .collect();
    if !seen.is_empty() || up.connections() != 0 {
        problems.push(format!(
            "the upstream got {} connections and requests {seen:?}",
            up.connections()
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

// ---------------------------------------------------------------------------------------
// 8. Two callers, a thousand requests, every kind of misbehaviour
// ---------------------------------------------------------------------------------------

/// xorshift64*: a fixed sequence, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

const MODES: [&str; 5] = ["ok", "103", "100", "truncate", "early"];

/// The upstream of the mixed test: per request, by `X-Mode`; every answer (and every cut
/// body) carries `who=<token>;serial=<X-Serial>;mode=<mode>`.
async fn mixed_upstream() -> RawUpstream {
    RawUpstream::start(|mut c| async move {
        while let Some(h) = c.head().await {
            let mode = h.header("x-mode").unwrap_or("ok").to_owned();
            let tag = format!(
                "who={};serial={};mode={mode}",
                h.token(),
                h.header("x-serial").unwrap_or("-")
            );
            match mode.as_str() {
                "early" => {
                    // Answers before reading the upload, then stops reading; gone after 1 s.
                    c.write(format!(
                        "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{tag}",
                        tag.len()
                    ))
                    .await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    return;
                }
                "truncate" => {
                    c.write(format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{tag}\r\n40\r\npartial",
                        tag.len()
                    ))
                    .await;
                    let _ = c.stream.shutdown().await;
                    return;
                }
                _ => {
                    if c.body(&h).await.is_none() {
                        return;
                    }
                    let info = match mode.as_str() {
                        "103" => "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n",
                        "100" => "HTTP/1.1 100 Continue\r\n\r\n",
                        _ => "",
                    };
                    if !info.is_empty() {
                        // The final answer comes a little later, as after real Early Hints.
                        if !c.write(info).await {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                    if !c.write(ok(&tag)).await {
                        return;
                    }
                }
            }
        }
    })
    .await
}

/// One request of the mixed test; `Err` says what went wrong.
async fn mixed_one(
    pooled: &reqwest::Client,
    fresh: &reqwest::Client,
    url: &str,
    serial: usize,
    token: &str,
    mode: &str,
) -> Result<(), String> {
    let expected = format!("who={token};serial={serial};mode={mode}");
    let what = format!("serial {serial} ({mode}, {token})");
    let rb = if mode == "early" {
        fresh
            .post(url)
            .header("content-type", "application/json")
            .body(vec![b' '; 256 * 1024])
    } else {
        pooled.get(url)
    };
    let send = rb
        .header("authorization", format!("Bearer {token}"))
        .header("x-serial", serial.to_string())
        .header("x-mode", mode)
        .send();
    let mut resp = match tokio::time::timeout(T, send).await {
        Err(_) => return Err(format!("{what}: no response head within {T:?}")),
        Ok(Err(e)) => return Err(format!("{what}: request failed: {e:?}")),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let body_result = tokio::time::timeout(T, async {
        loop {
            match resp.chunk().await {
                Ok(Some(b)) => body.extend_from_slice(&b),
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&body).into_owned();
    let other = if token == "token-a" {
        "who=token-b"
    } else {
        "who=token-a"
    };
    if text.contains(other) {
        return Err(format!(
            "{what}: MISDELIVERED: status {status}, body {text:?} is another caller's"
        ));
    }
    if !text.is_empty() && !text.starts_with("who=") {
        // Not the upstream's: a kubeplex Status (502/504) at best.
        return Err(format!("{what}: status {status}, body {text:?}"));
    }
    let Ok(body_result) = body_result else {
        return Err(format!(
            "{what}: body not finished within {T:?} (status {status}, so far {text:?})"
        ));
    };
    match mode {
        "truncate" => {
            if status != 200 || body_result.is_ok() {
                return Err(format!(
                    "{what}: a cut-short body must end in an error: status {status}, \
                     body {text:?}, result {body_result:?}"
                ));
            }
            if !format!("{expected}partial").starts_with(&text) {
                return Err(format!(
                    "{what}: cut-short body {text:?} is not a prefix of what was sent"
                ));
            }
        }
        _ => {
            let want = if mode == "early" { 401 } else { 200 };
            if status != want || body_result.is_err() || text != expected {
                return Err(format!(
                    "{what}: status {status}, body {text:?} ({body_result:?}); expected {want} {expected:?}"
                ));
            }
        }
    }
    Ok(())
}

#[actix_web::test]
async fn two_callers_a_thousand_mixed_requests_every_response_reaches_its_caller() {
    const N: usize = 1000;
    const TASKS: usize = 8;
    const BOUND: Duration = Duration::from_secs(60);
    let up = mixed_upstream().await;
    let app = app_for(&up).await;
    let url = format!("{}{PATH}", app.url());
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let plan: Vec<(usize, &str, &str)> = (0..N)
        .map(|serial| {
            let token = if rng.next().is_multiple_of(2) {
                "token-a"
            } else {
                "token-b"
            };
            let mode = MODES[(rng.next() % MODES.len() as u64) as usize];
            (serial, token, mode)
        })
        .collect();
    let failures: Rc<RefCell<Vec<String>>> = Rc::default();
    let done = Rc::new(std::cell::Cell::new(0usize));
    let tasks = (0..TASKS).map(|t| {
        let plan = &plan;
        let url = url.as_str();
        let failures = failures.clone();
        let done = done.clone();
        async move {
            let pooled = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            // Early answers leave the upload unfinished: their client connections are not
            // reused (whether kubeplex keeps such a connection is not what this tests).
            let fresh = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            for &(serial, token, mode) in plan.iter().skip(t).step_by(TASKS) {
                if let Err(e) = mixed_one(&pooled, &fresh, url, serial, token, mode).await {
                    failures.borrow_mut().push(e);
                }
                done.set(done.get() + 1);
            }
        }
    });
    let all = futures_util::future::join_all(tasks);
    let finished = tokio::time::timeout(BOUND, all).await.is_ok();
    let failures = failures.borrow();
    let misdelivered = failures
        .iter()
        .filter(|f| f.contains("MISDELIVERED"))
        .count();
    let by_mode: Vec<String> = MODES
        .iter()
        .map(|m| {
            let n = failures
                .iter()
                .filter(|f| f.contains(&format!("({m}, ")))
                .count();
            format!("{m}: {n}")
        })
        .collect();
    // What the upstream got: each request with its own caller's token.
    let tokens: std::collections::HashMap<String, &str> =
        plan.iter().map(|(s, t, _)| (s.to_string(), *t)).collect();
    let crossed: Vec<String> = up
        .seen()
        .iter()
        .filter(|h| {
            h.header("x-serial")
                .and_then(|s| tokens.get(s))
                .is_some_and(|t| *t != h.token())
        })
        .map(|h| format!("{:?} with {}", h.header("x-serial"), h.token()))
        .collect();
    assert!(
        finished && failures.is_empty() && crossed.is_empty(),
        "{} of {N} requests done{}; {} failed ({misdelivered} misdelivered to the other caller; by mode {by_mode:?}); \
         upstream got {} requests with the wrong token; first failures: {:#?}; crossed: {:?}",
        done.get(),
        if finished { "" } else { " before the bound" },
        failures.len(),
        crossed.len(),
        failures.iter().take(15).collect::<Vec<_>>(),
        crossed.iter().take(5).collect::<Vec<_>>(),
    );
}
