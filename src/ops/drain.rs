//! Graceful drain (SPEC §9): on SIGTERM kubeplex stops accepting, finishes in-flight
//! requests (actix's graceful stop, bounded by `kubeplex.server.shutdownTimeout`), and ends
//! the responses that would otherwise never finish, cleanly, so that clients reconnect to
//! another replica:
//!
//! - a proxied or merged **watch** ends at the next event boundary: a JSON watch (and a
//!   followed log) after the next newline (or at once when it is between events), a
//!   protobuf watch after the current length-prefixed frame. The response then ends like a
//!   complete one (the last chunk of a chunked body), so the client sees a clean end of
//!   stream after a whole event and watches again from its last resourceVersion.
//! - a **WebSocket tunnel** (exec, attach, port-forward) gets a Close frame (1001, going
//!   away) after the current frame of the cluster-to-client stream, then the tunnel ends
//!   and the connection to the cluster is closed.
//!
//! [`Drain`] is the signal; [`events`] and [`tunnel`] wrap a response body or stream.

use actix_web::body::{BodySize, BoxBody, MessageBody};
use bytes::Bytes;
use futures_core::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The drain signal, shared by every worker; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Drain(Arc<Inner>);

#[derive(Default)]
struct Inner {
    started: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Drain {
    /// Starts draining (once; later calls do nothing).
    pub(crate) fn start(&self) {
        if !self.0.started.swap(true, Ordering::SeqCst) {
            self.0.notify.notify_waiters();
        }
    }

    /// Whether draining has started.
    pub(crate) fn started(&self) -> bool {
        self.0.started.load(Ordering::SeqCst)
    }

    /// Resolves when draining starts.
    pub(crate) async fn wait(self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.started() {
                return;
            }
            notified.await;
        }
    }

    fn future(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(self.clone().wait())
    }
}

/// How a stream is cut into units that must not be split.
#[derive(Debug, Clone)]
enum Framing {
    /// Newline-delimited (JSON watch events, log lines): `mid` when bytes other than
    /// whitespace came after the last newline.
    Lines { mid: bool },
    /// 4-byte big-endian length, then that many bytes (Kubernetes' protobuf watch frames).
    LengthPrefixed {
        header: [u8; 4],
        have: usize,
        left: u64,
    },
    /// WebSocket frames (RFC 6455 §5.2): a 2 to 14 byte header, then the payload.
    WebSocket {
        header: [u8; 14],
        have: usize,
        left: u64,
    },
}

impl Framing {
    fn at_boundary(&self) -> bool {
        match self {
            Framing::Lines { mid } => !mid,
            Framing::LengthPrefixed { have, left, .. } | Framing::WebSocket { have, left, .. } => {
                *have == 0 && *left == 0
            }
        }
    }

    /// Feeds `b`. With `stop`, returns the offset just past the first unit that ends in
    /// `b` (feeding no further); without, feeds all of it and returns `None`.
    fn feed(&mut self, b: &[u8], stop: bool) -> Option<usize> {
        match self {
            Framing::Lines { mid } => {
                if stop {
                    if let Some(i) = b.iter().position(|&c| c == b'\n') {
                        *mid = false;
                        return Some(i + 1);
                    }
                }
                let tail = match b.iter().rposition(|&c| c == b'\n') {
                    Some(i) => {
                        *mid = false;
                        &b[i + 1..]
                    }
                    None => b,
                };
                if tail.iter().any(|c| !c.is_ascii_whitespace()) {
                    *mid = true;
                }
                None
            }
            Framing::LengthPrefixed { header, have, left } => {
                let mut i = 0;
                while i < b.len() {
                    if *left > 0 {
                        let n = (*left).min((b.len() - i) as u64) as usize;
                        *left -= n as u64;
                        i += n;
                    } else {
                        header[*have] = b[i];
                        *have += 1;
                        i += 1;
                        if *have == 4 {
                            *have = 0;
                            *left = u64::from(u32::from_be_bytes(*header));
                        } else {
                            continue;
                        }
                    }
                    if stop && *have == 0 && *left == 0 {
                        return Some(i);
                    }
                }
                None
            }
            Framing::WebSocket { header, have, left } => {
                let mut i = 0;
                while i < b.len() {
                    if *left > 0 {
                        let n = (*left).min((b.len() - i) as u64) as usize;
                        *left -= n as u64;
                        i += n;
                    } else {
                        header[*have] = b[i];
                        *have += 1;
                        i += 1;
                        if *have < 2 {
                            continue;
                        }
                        let len7 = header[1] & 0x7f;
                        let masked = header[1] & 0x80 != 0;
                        let ext = match len7 {
                            126 => 2,
                            127 => 8,
                            _ => 0,
                        };
                        let need = 2 + ext + if masked { 4 } else { 0 };
                        if *have < need {
                            continue;
                        }
                        *left = match ext {
                            0 => u64::from(len7),
                            2 => u64::from(u16::from_be_bytes([header[2], header[3]])),
                            _ => u64::from_be_bytes(header[2..10].try_into().unwrap_or([0; 8])),
                        };
                        *have = 0;
                    }
                    if stop && *have == 0 && *left == 0 {
                        return Some(i);
                    }
                }
                None
            }
        }
    }
}

/// Where a wrapped stream is: passing bytes, ending after the current unit, or ended.
struct Cut {
    framing: Framing,
    drain: Option<Pin<Box<dyn Future<Output = ()>>>>,
    draining: bool,
    ended: bool,
}

impl Cut {
    fn new(framing: Framing, drain: &Drain) -> Self {
        Cut {
            framing,
            drain: Some(drain.future()),
            draining: false,
            ended: false,
        }
    }

    /// Notices the drain (registering the waker while it has not started).
    fn poll_drain(&mut self, cx: &mut Context<'_>) {
        if let Some(f) = &mut self.drain {
            if f.as_mut().poll(cx).is_ready() {
                self.drain = None;
                self.draining = true;
            }
        }
    }

    /// A chunk came: what of it to pass on, and whether the stream ends after it.
    fn chunk(&mut self, b: Bytes) -> (Bytes, bool) {
        if !self.draining {
            self.framing.feed(&b, false);
            return (b, false);
        }
        match self.framing.feed(&b, true) {
            Some(end) => (b.slice(..end), true),
            None => (b, false),
        }
    }
}

/// The media type's framing: protobuf watches are length-prefixed, the rest lines.
fn framing_of(content_type: Option<&str>) -> Framing {
    if content_type.is_some_and(|c| c.contains("protobuf")) {
        Framing::LengthPrefixed {
            header: [0; 4],
            have: 0,
            left: 0,
        }
    } else {
        Framing::Lines { mid: false }
    }
}

/// A watch or followed-log response whose body ends at the next event boundary once
/// `drain` starts.
pub(crate) fn events(mut res: actix_web::HttpResponse, drain: &Drain) -> actix_web::HttpResponse {
    // Header lines relayed as they are (never a watch's today) are read as entries.
    res.head_mut().raw_headers_into_map();
    let framing = framing_of(
        res.headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let cut = Cut::new(framing, drain);
    res.map_body(|_, inner| EventsBody { inner, cut }.boxed())
}

struct EventsBody {
    inner: BoxBody,
    cut: Cut,
}

impl MessageBody for EventsBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        // Ending early: never promise a length.
        match self.inner.size() {
            BodySize::None => BodySize::None,
            _ => BodySize::Stream,
        }
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = &mut *self;
        if this.cut.ended {
            return Poll::Ready(None);
        }
        this.cut.poll_drain(cx);
        if this.cut.draining && this.cut.framing.at_boundary() {
            this.cut.ended = true;
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                let (b, end) = this.cut.chunk(b);
                this.cut.ended = end;
                Poll::Ready(Some(Ok(b)))
            }
            other => other,
        }
    }
}

/// The Close frame a drained tunnel sends its client: 1001 (going away), with a reason.
pub(crate) const CLOSE_FRAME: &[u8] = b"\x88\x1b\x03\xe9kubeplex is shutting down";

/// A WebSocket tunnel's cluster-to-client stream that, once `drain` starts, sends a Close
/// frame (1001) after the current frame and ends.
pub(crate) fn tunnel<S>(stream: S, drain: &Drain) -> TunnelStream<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    TunnelStream {
        inner: stream,
        cut: Cut::new(
            Framing::WebSocket {
                header: [0; 14],
                have: 0,
                left: 0,
            },
            drain,
        ),
        close_sent: false,
    }
}

/// See [`tunnel`].
pub(crate) struct TunnelStream<S> {
    inner: S,
    cut: Cut,
    close_sent: bool,
}

impl<S> Stream for TunnelStream<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.cut.ended {
            if this.close_sent {
                return Poll::Ready(None);
            }
            this.close_sent = true;
            return Poll::Ready(Some(Ok(Bytes::from_static(CLOSE_FRAME))));
        }
        this.cut.poll_drain(cx);
        if this.cut.draining && this.cut.framing.at_boundary() {
            this.cut.ended = true;
            this.close_sent = true;
            return Poll::Ready(Some(Ok(Bytes::from_static(CLOSE_FRAME))));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                let (b, end) = this.cut.chunk(b);
                this.cut.ended = end;
                Poll::Ready(Some(Ok(b)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frame_is_1001_with_its_reason() {
        assert_eq!(CLOSE_FRAME[0], 0x88);
        assert_eq!(usize::from(CLOSE_FRAME[1]), CLOSE_FRAME.len() - 2);
        assert_eq!(u16::from_be_bytes([CLOSE_FRAME[2], CLOSE_FRAME[3]]), 1001);
    }

    #[test]
    fn lines_end_after_the_current_event() {
        let mut f = Framing::Lines { mid: false };
        assert!(f.at_boundary());
        assert_eq!(f.feed(b"{\"type\":\"ADDED\"}\n{\"ty", false), None);
        assert!(!f.at_boundary());
        assert_eq!(f.feed(b"pe\":1}\n{\"x\"", true), Some(7));
        assert!(f.at_boundary());
        let mut f = Framing::Lines { mid: false };
        f.feed(b"{}\n ", false);
        assert!(f.at_boundary(), "a keepalive space is between events");
    }

    #[test]
    fn length_prefixed_frames() {
        let mut f = framing_of(Some("application/vnd.kubernetes.protobuf;stream=watch"));
        assert_eq!(f.feed(&[0, 0, 0, 3, 1, 2], false), None);
        assert!(!f.at_boundary());
        assert_eq!(f.feed(&[3, 0, 0, 0, 1, 9], true), Some(1));
        let mut g = f.clone();
        assert_eq!(g.feed(&[0, 0, 0, 1, 9], true), Some(5));
        assert!(g.at_boundary());
        assert_eq!(f.feed(&[0, 0], false), None);
        assert_eq!(f.feed(&[0, 0], true), Some(2), "an empty frame");
    }

    #[test]
    fn websocket_frames() {
        let mut f = Framing::WebSocket {
            header: [0; 14],
            have: 0,
            left: 0,
        };
        // A 3-byte binary frame, then the header of a 300-byte one (16-bit length).
        assert_eq!(f.feed(&[0x82, 3, 1, 2, 3, 0x82, 126, 1], false), None);
        assert!(!f.at_boundary());
        let mut payload = vec![44u8];
        payload.extend(vec![0u8; 300]);
        payload.extend([0x81, 0x85, 1, 2, 3, 4, 0]);
        assert_eq!(f.feed(&payload, true), Some(301));
        assert!(f.at_boundary());
        // A masked 5-byte frame from a client.
        assert_eq!(
            f.feed(&[0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0], true),
            Some(11)
        );
    }
}
