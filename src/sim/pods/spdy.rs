//! The server side of SPDY/3.1 framing, as much as Kubernetes port-forwarding needs
//! (kubectl ≥ 1.31 tunnels SPDY inside WebSocket binary messages, subprotocol
//! `SPDY/3.1+portforward.k8s.io`): frame parsing, header blocks compressed with zlib and the
//! SPDY/3 dictionary (one compression context per direction), SYN_REPLY, DATA and PING.
//! Flow control is not enforced, as moby/spdystream (kubectl's side) does not either.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Frame flag: the sender will send nothing more on this stream.
pub(crate) const FLAG_FIN: u8 = 0x01;

/// Control frame types.
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;

/// Largest frame payload accepted (SPDY's 24-bit length).
const MAX_FRAME: usize = 0xff_ffff;

/// The SPDY/3 header compression dictionary (draft 3.1, section 2.6.10.1): the listed
/// words, each preceded by its length as 4 big-endian bytes, then the tail text.
pub(crate) fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
            "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
            "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
            "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept ",
            "Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,",
            "image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
            "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=",
            "iso-8859-1,utf-,*,enq=0."
        );
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

/// A parsed frame.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A new stream from the peer, with its headers (names lowercased).
    SynStream {
        /// Stream id.
        id: u32,
        /// Headers.
        headers: HashMap<String, String>,
    },
    /// Data on a stream.
    Data {
        /// Stream id.
        id: u32,
        /// Flags (FIN).
        flags: u8,
        /// Payload.
        data: Bytes,
    },
    /// The peer reset a stream.
    RstStream {
        /// Stream id.
        id: u32,
    },
    /// A ping to answer with the same frame.
    Ping(Bytes),
    /// The peer is going away.
    GoAway,
    /// Any other control frame (SETTINGS, WINDOW_UPDATE, HEADERS, ...): ignored.
    Other,
}

/// Reads frames from the tunnelled byte stream and writes frames back.
pub(crate) struct Codec {
    inflate: Decompress,
    deflate: Compress,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec {
    /// A fresh codec for one connection.
    pub(crate) fn new() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // Cannot fail on a fresh stream.
        let _ = deflate.set_dictionary(dictionary());
        Codec {
            inflate: Decompress::new(true),
            deflate,
        }
    }

    /// Takes one complete frame off the front of `buf`, if there is one.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, String> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = ((buf[5] as usize) << 16) | ((buf[6] as usize) << 8) | buf[7] as usize;
        if len > MAX_FRAME {
            return Err("frame too large".into());
        }
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let control = buf[0] & 0x80 != 0;
        let head = buf.split_to(8);
        let mut payload = buf.split_to(len).freeze();
        let flags = head[4];
        if !control {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
            return Ok(Some(Frame::Data {
                id,
                flags,
                data: payload,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != 3 {
            return Err(format!("unsupported SPDY version {version}"));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        Ok(Some(match kind {
            SYN_STREAM => {
                if payload.len() < 10 {
                    return Err("short SYN_STREAM".into());
                }
                let id = payload.get_u32() & 0x7fff_ffff;
                payload.advance(6); // associated stream id, priority, slot
                let block = self.inflate_block(&payload)?;
                Frame::SynStream {
                    id,
                    headers: parse_header_block(&block)?,
                }
            }
            RST_STREAM if payload.len() >= 4 => Frame::RstStream {
                id: payload.get_u32() & 0x7fff_ffff,
            },
            PING => Frame::Ping(head.freeze().into_iter().chain(payload).collect()),
            GOAWAY => Frame::GoAway,
            _ => Frame::Other,
        }))
    }

    fn inflate_block(&mut self, block: &[u8]) -> Result<Vec<u8>, String> {
        let mut out: Vec<u8> = Vec::with_capacity(block.len() * 4 + 256);
        let mut pos = 0usize;
        for _ in 0..64 {
            if out.capacity() - out.len() < 1024 {
                out.reserve(4096);
            }
            let before = self.inflate.total_in();
            let res = self
                .inflate
                .decompress_vec(&block[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.inflate.total_in() - before) as usize;
            match res {
                Ok(_) => {
                    if pos >= block.len() && out.len() < out.capacity() {
                        return Ok(out);
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(dictionary())
                        .map_err(|e| format!("header dictionary: {e}"))?;
                }
                Err(e) => return Err(format!("header block: {e}")),
            }
        }
        Err("header block does not end".into())
    }

    fn deflate_block(&mut self, block: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut pos = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.deflate.total_in();
            if self
                .deflate
                .compress_vec(&block[pos..], &mut out, FlushCompress::Sync)
                .is_err()
            {
                return out;
            }
            pos += (self.deflate.total_in() - before) as usize;
            if pos >= block.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    /// A SYN_REPLY for stream `id` with the given headers.
    pub(crate) fn syn_reply(&mut self, id: u32, headers: &[(&str, &str)]) -> Bytes {
        let block = header_block(headers);
        let compressed = self.deflate_block(&block);
        let mut f = BytesMut::with_capacity(12 + compressed.len());
        control_head(&mut f, SYN_REPLY, 0, 4 + compressed.len());
        f.put_u32(id & 0x7fff_ffff);
        f.put_slice(&compressed);
        f.freeze()
    }
}

fn control_head(f: &mut BytesMut, kind: u16, flags: u8, len: usize) {
    f.put_u16(0x8000 | 3);
    f.put_u16(kind);
    f.put_u8(flags);
    f.put_uint(len as u64, 3);
}

/// DATA frames carrying `data` on stream `id` (split at the frame size limit); with
/// `fin`, the last one carries FIN (an empty frame when `data` is empty).
pub(crate) fn data_frames(id: u32, data: &[u8], fin: bool) -> Bytes {
    const CHUNK: usize = 64 * 1024;
    let mut f = BytesMut::with_capacity(data.len() + 8 * (data.len() / CHUNK + 1));
    let mut chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let n = chunks.len();
    for (i, c) in chunks.into_iter().enumerate() {
        f.put_u32(id & 0x7fff_ffff);
        f.put_u8(if fin && i + 1 == n { FLAG_FIN } else { 0 });
        f.put_uint(c.len() as u64, 3);
        f.put_slice(c);
    }
    f.freeze()
}

/// A RST_STREAM for `id` with status CANCEL (5).
pub(crate) fn rst_stream(id: u32) -> Bytes {
    let mut f = BytesMut::with_capacity(16);
    control_head(&mut f, RST_STREAM, 0, 8);
    f.put_u32(id & 0x7fff_ffff);
    f.put_u32(5);
    f.freeze()
}

/// Parses an uncompressed SPDY/3 header block; names are lowercased, several values are
/// joined with `,`.
/// An uncompressed SPDY/3 header block: the count, then each name and value with its
/// 32-bit length.
fn header_block(headers: &[(&str, &str)]) -> BytesMut {
    let mut block = BytesMut::new();
    block.put_u32(headers.len() as u32);
    for (n, v) in headers {
        block.put_u32(n.len() as u32);
        block.put_slice(n.as_bytes());
        block.put_u32(v.len() as u32);
        block.put_slice(v.as_bytes());
    }
    block
}

fn parse_header_block(mut b: &[u8]) -> Result<HashMap<String, String>, String> {
    let short = || "short header block".to_string();
    if b.len() < 4 {
        return Err(short());
    }
    let n = b.get_u32() as usize;
    let mut out = HashMap::new();
    for _ in 0..n {
        if b.len() < 4 {
            return Err(short());
        }
        let nl = b.get_u32() as usize;
        if b.len() < nl + 4 {
            return Err(short());
        }
        let name = String::from_utf8_lossy(&b[..nl]).to_ascii_lowercase();
        b.advance(nl);
        let vl = b.get_u32() as usize;
        if b.len() < vl {
            return Err(short());
        }
        let value = String::from_utf8_lossy(&b[..vl]).replace('\0', ",");
        b.advance(vl);
        out.insert(name, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_the_spdy3_one() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert!(d.starts_with(b"\x00\x00\x00\x07options\x00\x00\x00\x04head"));
        assert!(d.ends_with(b"utf-,*,enq=0."));
    }

    /// A client-side SYN_STREAM built with an independent compressor, parsed by the codec;
    /// then the codec's SYN_REPLY header block inflates with the dictionary.
    #[test]
    fn syn_stream_and_reply_round_trip() {
        let mut client = Compress::new(Compression::default(), true);
        client.set_dictionary(dictionary()).unwrap();
        let block = header_block(&[
            ("streamtype", "error"),
            ("port", "8080"),
            ("requestid", "0"),
        ]);
        let mut z = Vec::with_capacity(1024);
        client
            .compress_vec(&block, &mut z, FlushCompress::Sync)
            .unwrap();
        let mut frame = BytesMut::new();
        control_head(&mut frame, SYN_STREAM, 0, 10 + z.len());
        frame.put_u32(1);
        frame.put_u32(0);
        frame.put_u16(0);
        frame.put_slice(&z);
        frame.extend_from_slice(&data_frames(1, b"hello", true));
        let mut codec = Codec::new();
        match codec.decode(&mut frame).unwrap() {
            Some(Frame::SynStream { id, headers, .. }) => {
                assert_eq!(id, 1);
                assert_eq!(headers["streamtype"], "error");
                assert_eq!(headers["port"], "8080");
            }
            other => panic!("{other:?}"),
        }
        match codec.decode(&mut frame).unwrap() {
            Some(Frame::Data { id, flags, data }) => {
                assert_eq!((id, flags, &data[..]), (1, FLAG_FIN, &b"hello"[..]));
            }
            other => panic!("{other:?}"),
        }
        let reply = codec.syn_reply(1, &[]);
        let mut peer = Decompress::new(true);
        let mut out = Vec::with_capacity(64);
        let err = peer
            .decompress_vec(&reply[12..], &mut out, FlushDecompress::Sync)
            .unwrap_err();
        assert!(err.needs_dictionary().is_some());
        peer.set_dictionary(dictionary()).unwrap();
        let consumed = peer.total_in() as usize;
        peer.decompress_vec(&reply[12 + consumed..], &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out, vec![0, 0, 0, 0]);
    }
}
