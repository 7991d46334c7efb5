//! Port-forwarding into a simulated pod over WebSocket, in both forms a real API server
//! speaks: SPDY/3.1 tunnelled in binary messages (`SPDY/3.1+portforward.k8s.io`, what
//! kubectl ≥ 1.31 uses: an error and a data stream per connection, paired by `requestID`),
//! and the channel protocol (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io` or none, with
//! `ports=` in the query: channels 2i and 2i+1 are port i's data and error, and the first
//! message on each carries the port as two little-endian bytes). A port the pod declares
//! answers as an echo server; any other port reports the connection refused, as a kubelet
//! does.

use super::channel::Channels;
use super::spdy::{self, Frame, FLAG_FIN};
use super::store::Pod;
use super::ws::{Incoming, WsReceiver, WsSender};
use bytes::BytesMut;
use std::collections::HashMap;

/// The WebSocket subprotocol for SPDY tunnelled in WebSocket.
pub(crate) const SPDY_TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Subprotocols the port-forward endpoint accepts.
pub(crate) const PORT_FORWARD_PROTOCOLS: &[&str] = &[
    SPDY_TUNNEL_PROTOCOL,
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "portforward.k8s.io",
];

fn refused(pod: &Pod, port: u16) -> String {
    format!(
        "error forwarding port {port} to pod {}, uid : failed to connect to localhost:{port} inside namespace \"{}\": connection refused",
        pod.name, pod.namespace
    )
}

fn serves(pod: &Pod, port: u16) -> bool {
    pod.containers.iter().any(|c| c.ports.contains(&port))
}

/// Runs a SPDY-over-WebSocket port-forward session until the client closes.
pub(crate) async fn spdy_session(mut rx: WsReceiver, tx: WsSender, pod: Pod) {
    let mut codec = spdy::Codec::new();
    let mut buf = BytesMut::new();
    // request id -> (error stream, data stream, port)
    let mut pairs: HashMap<String, (Option<u32>, Option<u32>, u16)> = HashMap::new();
    // data stream -> (error stream, serving)
    let mut data_streams: HashMap<u32, (Option<u32>, bool)> = HashMap::new();
    while let Some(msg) = rx.next().await {
        let Incoming::Binary(bytes) = msg else {
            tx.close(actix_http::ws::CloseCode::Unsupported).await;
            return;
        };
        buf.extend_from_slice(&bytes);
        loop {
            let frame = match codec.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    tx.close(actix_http::ws::CloseCode::Protocol).await;
                    return;
                }
            };
            let mut out = BytesMut::new();
            match frame {
                Frame::SynStream { id, headers, .. } => {
                    out.extend_from_slice(&codec.syn_reply(id, &[]));
                    let kind = headers.get("streamtype").cloned().unwrap_or_default();
                    let port = headers
                        .get("port")
                        .and_then(|p| p.parse::<u16>().ok())
                        .unwrap_or(0);
                    let req = headers.get("requestid").cloned().unwrap_or_default();
                    let entry = pairs.entry(req.clone()).or_insert((None, None, port));
                    match kind.as_str() {
                        "error" => entry.0 = Some(id),
                        "data" => entry.1 = Some(id),
                        _ => {
                            out.extend_from_slice(&spdy::rst_stream(id));
                        }
                    }
                    if let (Some(err), Some(data), port) = *entry {
                        let ok = port != 0 && serves(&pod, port);
                        data_streams.insert(data, (Some(err), ok));
                        pairs.remove(&req);
                        if !ok {
                            out.extend_from_slice(&spdy::data_frames(
                                err,
                                refused(&pod, port).as_bytes(),
                                true,
                            ));
                            out.extend_from_slice(&spdy::data_frames(data, &[], true));
                        }
                    }
                }
                Frame::Data { id, flags, data } => {
                    if let Some((err, ok)) = data_streams.get(&id).copied() {
                        if ok && !data.is_empty() {
                            out.extend_from_slice(&spdy::data_frames(id, &data, false));
                        }
                        if flags & FLAG_FIN != 0 {
                            if ok {
                                out.extend_from_slice(&spdy::data_frames(id, &[], true));
                                if let Some(e) = err {
                                    out.extend_from_slice(&spdy::data_frames(e, &[], true));
                                }
                            }
                            data_streams.remove(&id);
                        }
                    }
                }
                Frame::RstStream { id } => {
                    if let Some((Some(err), true)) = data_streams.remove(&id) {
                        out.extend_from_slice(&spdy::data_frames(err, &[], true));
                    }
                }
                Frame::Ping(frame) => out.extend_from_slice(&frame),
                Frame::GoAway => {
                    tx.close_normal().await;
                    return;
                }
                Frame::Other => {}
            }
            if !out.is_empty() && tx.binary(out.freeze()).await.is_err() {
                return;
            }
        }
    }
}

/// Runs a channel-protocol port-forward session for `ports` until the client closes.
pub(crate) async fn channel_session(mut rx: WsReceiver, ch: Channels, pod: Pod, ports: Vec<u16>) {
    for (i, port) in ports.iter().enumerate() {
        let prefix = port.to_le_bytes();
        if ch.send((2 * i) as u8, &prefix).await.is_err()
            || ch.send((2 * i + 1) as u8, &prefix).await.is_err()
        {
            return;
        }
    }
    let mut reported = vec![false; ports.len()];
    while let Some(msg) = rx.next().await {
        let Some((channel, data)) = ch.decode(msg) else {
            continue;
        };
        let i = (channel / 2) as usize;
        if channel % 2 != 0 || i >= ports.len() {
            continue;
        }
        if serves(&pod, ports[i]) {
            if ch.send(channel, &data).await.is_err() {
                return;
            }
        } else if !reported[i] {
            reported[i] = true;
            if ch
                .send(channel + 1, refused(&pod, ports[i]).as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
