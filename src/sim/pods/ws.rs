//! A small WebSocket server endpoint for the simulated cluster's streaming subresources
//! (exec, attach, port-forward), built on actix-http's frame codec: the handshake response
//! (with subprotocol negotiation as the API server does it: the first of the client's
//! protocols that the server supports), a receiver that reassembles fragmented messages and
//! answers pings, and a sender whose messages become the streamed body of the 101 response.

use crate::sim::errors::SimError;
use actix_codec::{Decoder, Encoder};
use actix_http::ws::{hash_key, CloseCode, CloseReason, Codec, Frame, Item, Message};
use actix_web::body::BodyStream;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// Largest message the simulated server accepts (frames and reassembled messages).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A message received from the client.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A complete binary message.
    Binary(Bytes),
    /// A complete text message (bytes as sent).
    Text(Bytes),
}

/// An accepted WebSocket: the 101 response to return, and the two directions.
pub(crate) struct Accepted {
    /// The `101 Switching Protocols` response; its body carries what [`Accepted::tx`] sends.
    pub response: HttpResponse,
    /// Messages from the client.
    pub rx: WsReceiver,
    /// Messages to the client.
    pub tx: WsSender,
    /// The negotiated subprotocol, if any.
    pub protocol: Option<String>,
}

/// The protocols a client offered in `Sec-WebSocket-Protocol` (all headers, comma lists).
pub(crate) fn offered_protocols(req: &HttpRequest) -> Vec<String> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether the request asks for a WebSocket upgrade.
pub(crate) fn is_websocket(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// Accepts a WebSocket upgrade, choosing the first protocol of the client's list that is in
/// `supported`. A client that offers protocols of which none is supported gets a 400, as
/// from a real API server; a client that offers none gets `None`.
pub(crate) fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    supported: &[&str],
) -> Result<Accepted, SimError> {
    actix_http::ws::verify_handshake(req.head())
        .map_err(|e| SimError::bad_request(format!("unable to upgrade connection: {e}")))?;
    let offered = offered_protocols(req);
    let protocol = if offered.is_empty() {
        None
    } else {
        match offered.iter().find(|p| supported.contains(&p.as_str())) {
            Some(p) => Some(p.clone()),
            None => {
                return Err(SimError::bad_request(format!(
                    "unable to upgrade connection: requested protocol(s) {offered:?} are not supported; supported: {supported:?}"
                )))
            }
        }
    };
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| hash_key(k.as_bytes()))
        .ok_or_else(|| SimError::bad_request("missing Sec-WebSocket-Key"))?;

    let (send, recv) = mpsc::channel::<Message>(64);
    let body = futures_util::stream::unfold(
        (recv, Codec::new().max_size(MAX_MESSAGE), false),
        |(mut recv, mut codec, done)| async move {
            if done {
                return None;
            }
            let first = recv.recv().await?;
            let mut buf = BytesMut::new();
            let mut closing = false;
            let mut next = Some(first);
            // Batch what is already queued into one chunk.
            while let Some(msg) = next.take() {
                closing = matches!(msg, Message::Close(_));
                if codec.encode(msg, &mut buf).is_err() || closing || buf.len() > 256 * 1024 {
                    break;
                }
                next = recv.try_recv().ok();
            }
            Some((
                Ok::<_, std::io::Error>(buf.freeze()),
                (recv, codec, closing),
            ))
        },
    );
    let mut builder = HttpResponse::SwitchingProtocols();
    builder.upgrade("websocket").insert_header((
        header::SEC_WEBSOCKET_ACCEPT,
        header::HeaderValue::from_bytes(&key).unwrap_or(header::HeaderValue::from_static("")),
    ));
    if let Some(p) = &protocol {
        if let Ok(v) = header::HeaderValue::from_str(p) {
            builder.insert_header((header::SEC_WEBSOCKET_PROTOCOL, v));
        }
    }
    let response = builder.body(BodyStream::new(body));
    let tx = WsSender { send };
    Ok(Accepted {
        response,
        rx: WsReceiver {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(MAX_MESSAGE),
            partial: None,
            tx: tx.clone(),
            closed: false,
        },
        tx,
        protocol,
    })
}

/// Sends messages to the client. Cloneable; sends fail once the connection is gone.
#[derive(Clone)]
pub(crate) struct WsSender {
    send: mpsc::Sender<Message>,
}

impl WsSender {
    /// Sends a binary message.
    pub(crate) async fn binary(&self, data: impl Into<Bytes>) -> Result<(), ()> {
        self.send
            .send(Message::Binary(data.into()))
            .await
            .map_err(|_| ())
    }

    /// Sends a text message.
    pub(crate) async fn text(&self, data: String) -> Result<(), ()> {
        self.send
            .send(Message::Text(data.into()))
            .await
            .map_err(|_| ())
    }

    /// Sends a close frame with the given code; the response body ends after it.
    pub(crate) async fn close(&self, code: CloseCode) {
        let _ = self
            .send
            .send(Message::Close(Some(CloseReason {
                code,
                description: None,
            })))
            .await;
    }

    /// Sends a close frame with code 1000 (normal closure).
    pub(crate) async fn close_normal(&self) {
        self.close(CloseCode::Normal).await
    }

    async fn raw(&self, msg: Message) {
        let _ = self.send.send(msg).await;
    }
}

/// Receives complete messages from the client; answers pings and close frames itself.
pub(crate) struct WsReceiver {
    payload: web::Payload,
    buf: BytesMut,
    codec: Codec,
    partial: Option<(bool, BytesMut)>,
    tx: WsSender,
    closed: bool,
}

impl WsReceiver {
    /// The next complete data message, or `None` when the client closed (close frame,
    /// end of stream or protocol error).
    pub(crate) async fn next(&mut self) -> Option<Incoming> {
        loop {
            if self.closed {
                return None;
            }
            let frame = match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => match self.payload.next().await {
                    Some(Ok(chunk)) => {
                        self.buf.extend_from_slice(&chunk);
                        continue;
                    }
                    _ => {
                        self.closed = true;
                        return None;
                    }
                },
                Err(_) => {
                    self.closed = true;
                    self.tx.close(CloseCode::Protocol).await;
                    return None;
                }
            };
            match frame {
                Frame::Binary(b) => return Some(Incoming::Binary(b)),
                Frame::Text(b) => return Some(Incoming::Text(b)),
                Frame::Ping(p) => self.tx.raw(Message::Pong(p)).await,
                Frame::Pong(_) => {}
                Frame::Close(reason) => {
                    self.closed = true;
                    let code = reason.map(|r| r.code).unwrap_or(CloseCode::Normal);
                    self.tx.close(code).await;
                    return None;
                }
                Frame::Continuation(item) => match item {
                    Item::FirstBinary(b) => self.partial = Some((true, BytesMut::from(&b[..]))),
                    Item::FirstText(b) => self.partial = Some((false, BytesMut::from(&b[..]))),
                    Item::Continue(b) => {
                        if let Some((_, buf)) = &mut self.partial {
                            if buf.len() + b.len() > MAX_MESSAGE {
                                self.closed = true;
                                self.tx.close(CloseCode::Size).await;
                                return None;
                            }
                            buf.extend_from_slice(&b);
                        }
                    }
                    Item::Last(b) => {
                        if let Some((binary, mut buf)) = self.partial.take() {
                            buf.extend_from_slice(&b);
                            let data = buf.freeze();
                            return Some(if binary {
                                Incoming::Binary(data)
                            } else {
                                Incoming::Text(data)
                            });
                        }
                    }
                },
            }
        }
    }
}
