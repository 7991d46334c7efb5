//! The Kubernetes channel WebSocket protocols (`channel.k8s.io`, `v2`-`v5.channel.k8s.io`
//! and their `base64.` forms): every message carries a channel number first (a byte, or an
//! ASCII digit followed by base64 for the text forms). For remote commands, channels are
//! 0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize; v5 adds channel 255, the
//! close signal (`[255, n]`: the peer will send nothing more on channel `n`).

use super::ws::{Incoming, WsSender};
use base64::Engine;
use bytes::Bytes;

/// Channel number of the v5 close signal.
pub(crate) const CLOSE_SIGNAL: u8 = 255;

/// The remote-command protocol versions, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Version {
    /// `channel.k8s.io` (or no subprotocol): error channel carries plain text.
    V1,
    /// `v2.channel.k8s.io`.
    V2,
    /// `v3.channel.k8s.io`: adds the resize channel.
    V3,
    /// `v4.channel.k8s.io`: the error channel carries a `Status` JSON with the exit code.
    V4,
    /// `v5.channel.k8s.io`: adds the close signal.
    V5,
}

/// Subprotocols the simulated exec and attach endpoints accept.
pub(crate) const REMOTE_COMMAND_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// How messages are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Binary messages, first byte the channel.
    Binary,
    /// Text messages, first character the channel digit, then base64 data.
    Base64,
}

/// Version and framing of a negotiated subprotocol (`None`: the client offered none).
pub(crate) fn parse_protocol(p: Option<&str>) -> (Version, Framing) {
    match p.unwrap_or("") {
        "v5.channel.k8s.io" => (Version::V5, Framing::Binary),
        "v4.channel.k8s.io" => (Version::V4, Framing::Binary),
        "v4.base64.channel.k8s.io" => (Version::V4, Framing::Base64),
        "v3.channel.k8s.io" => (Version::V3, Framing::Binary),
        "v2.channel.k8s.io" => (Version::V2, Framing::Binary),
        "base64.channel.k8s.io" => (Version::V1, Framing::Base64),
        _ => (Version::V1, Framing::Binary),
    }
}

/// Writes channel-framed messages to the client.
#[derive(Clone)]
pub(crate) struct Channels {
    tx: WsSender,
    framing: Framing,
}

impl Channels {
    /// Frames messages on `tx` with `framing`.
    pub(crate) fn new(tx: WsSender, framing: Framing) -> Self {
        Channels { tx, framing }
    }

    /// Sends `data` on channel `ch`. Fails when the client is gone.
    pub(crate) async fn send(&self, ch: u8, data: &[u8]) -> Result<(), ()> {
        match self.framing {
            Framing::Binary => {
                let mut buf = Vec::with_capacity(data.len() + 1);
                buf.push(ch);
                buf.extend_from_slice(data);
                self.tx.binary(buf).await
            }
            Framing::Base64 => {
                let mut s = String::with_capacity(data.len() * 4 / 3 + 5);
                s.push((b'0' + ch.min(9)) as char);
                base64::engine::general_purpose::STANDARD.encode_string(data, &mut s);
                self.tx.text(s).await
            }
        }
    }

    /// The underlying sender (to close the connection).
    pub(crate) fn sender(&self) -> &WsSender {
        &self.tx
    }

    /// Splits a received message into channel and data; `None` for a malformed message.
    pub(crate) fn decode(&self, msg: Incoming) -> Option<(u8, Bytes)> {
        match (self.framing, msg) {
            (Framing::Binary, Incoming::Binary(b)) if !b.is_empty() => Some((b[0], b.slice(1..))),
            (Framing::Base64, Incoming::Text(b)) if !b.is_empty() => {
                let ch = b[0].checked_sub(b'0')?;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&b[1..])
                    .ok()?;
                Some((ch, Bytes::from(data)))
            }
            _ => None,
        }
    }
}
