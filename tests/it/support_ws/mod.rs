//! Helpers shared by the WebSocket tests: connecting with subprotocols and extra headers,
//! and reading the Kubernetes channel protocol's messages.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Response};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects to `url` (ws://...) offering `protocols` and sending `headers`.
pub async fn connect(
    url: &str,
    protocols: &[&str],
    headers: &[(&str, &str)],
) -> Result<(Ws, Response<Option<Vec<u8>>>), WsError> {
    let mut req = url.into_client_request()?;
    if !protocols.is_empty() {
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&protocols.join(", ")).unwrap(),
        );
    }
    for (n, v) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    tokio_tungstenite::connect_async(req).await
}

/// The refused handshake's status and body (panics when the handshake succeeded).
pub async fn refused(
    url: &str,
    protocols: &[&str],
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    match connect(url, protocols, headers).await {
        Ok(_) => panic!("upgrade to {url} unexpectedly accepted"),
        Err(WsError::Http(res)) => {
            let status = res.status().as_u16();
            let body = res.body().clone().unwrap_or_default();
            let v = serde_json::from_slice(&body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
            });
            (status, v)
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Reads the next binary message as (channel, data); `None` on close.
pub async fn next_channel(ws: &mut Ws) -> Option<(u8, Vec<u8>)> {
    loop {
        match ws.next().await? {
            Ok(Message::Binary(b)) if !b.is_empty() => return Some((b[0], b[1..].to_vec())),
            Ok(Message::Close(_)) | Err(_) => return None,
            _ => continue,
        }
    }
}

/// Collects channel messages until the connection closes: (stdout, stderr, error channel).
pub async fn collect_exec(ws: &mut Ws) -> (String, String, String) {
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), Vec::new());
    while let Some((ch, data)) = next_channel(ws).await {
        match ch {
            1 => out.extend(data),
            2 => err.extend(data),
            3 => status.extend(data),
            _ => {}
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        String::from_utf8_lossy(&status).into_owned(),
    )
}

/// Sends `data` on channel `ch`.
pub async fn send_channel(ws: &mut Ws, ch: u8, data: &[u8]) {
    let mut b = vec![ch];
    b.extend_from_slice(data);
    ws.send(Message::Binary(b.into())).await.unwrap();
}
