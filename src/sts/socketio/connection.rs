// SPDX-License-Identifier: MPL-2.0

//! A live Socket.IO connection: the handshake, then a pump task that moves
//! packets between the websocket and the owner's channels.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prometheus::IntCounter;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::packet::{
    Packet, close_packet, connect_packet, disconnect_packet, encode_event, parse_packet,
    pong_packet,
};
use super::{TransportError, engine_io_url, tls_config};

/// How long a polite close may take before the socket is just dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The websocket's read buffer, allocated up front per connection.
/// tungstenite's default (128 KiB) suits one busy socket; a process carries
/// hundreds, each idle between answers, and a reply larger than the buffer
/// is read into room reserved for that frame anyway.
const SOCKET_READ_BUFFER: usize = 16 * 1024;
/// The largest websocket frame sent; a longer message goes as a text frame
/// and continuation frames (RFC 6455 §5.4, which every server must take).
/// tungstenite's write buffer keeps the capacity of the largest frame it
/// has formatted: unfragmented, a segment's ~150 KiB of JSON stayed
/// allocated per connection for its whole life.
const SOCKET_FRAME_MAX: usize = 16 * 1024;

/// What the connection hands to its owner.
#[derive(Debug)]
pub enum Incoming {
    Event {
        name: String,
        data: Value,
    },
    /// A packet that could not be read, and why; the connection stays up.
    Malformed(String),
    Closed(String),
}

/// Websocket payload bytes each way (Engine.IO text frames, pings
/// included). Clones share the counts, so the element can export them.
#[derive(Clone, Debug)]
pub struct Traffic {
    pub sent: IntCounter,
    pub received: IntCounter,
}

impl Default for Traffic {
    /// Counters of their own, exported nowhere.
    fn default() -> Self {
        let counter = |name: &str| {
            IntCounter::new(name, "websocket payload bytes")
                .expect("a static counter definition is valid")
        };
        Self {
            sent: counter("sent"),
            received: counter("received"),
        }
    }
}

impl Traffic {
    fn sent(&self, text: &str) {
        self.sent.inc_by(text.len() as u64);
    }

    fn received(&self, text: &str) {
        self.received.inc_by(text.len() as u64);
    }
}

pub struct ConnectOptions {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// Sent as the CONNECT packet's auth payload when present.
    pub auth: Option<Value>,
    pub timeout: Duration,
    /// A PEM file of CA certificates trusted for wss:// besides the system's.
    pub tls_ca_file: Option<PathBuf>,
    pub traffic: Traffic,
    /// The largest websocket message taken; a larger one closes the connection.
    pub max_message: usize,
}

/// Opens the Socket.IO connection; tests inject failures through it.
pub type Connector = Arc<
    dyn Fn(
            ConnectOptions,
        ) -> Pin<Box<dyn Future<Output = Result<Connection, TransportError>> + Send>>
        + Send
        + Sync,
>;

/// Connects over the network, the connector every session uses outside tests.
pub fn websocket_connector() -> Connector {
    Arc::new(|options| Box::pin(Connection::connect(options)))
}

/// A live Socket.IO connection; dropping it closes the websocket.
pub struct Connection {
    outgoing: mpsc::UnboundedSender<String>,
    pub incoming: mpsc::UnboundedReceiver<Incoming>,
    pump: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(pump) = &self.pump {
            pump.abort();
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Connection {
    /// Opens the websocket and the main namespace, all within `options.timeout`.
    pub async fn connect(options: ConnectOptions) -> Result<Self, TransportError> {
        tokio::time::timeout(options.timeout, Self::handshake(&options))
            .await
            .map_err(|_| TransportError::Timeout)?
    }

    async fn handshake(options: &ConnectOptions) -> Result<Self, TransportError> {
        let mut request = engine_io_url(&options.url)?
            .into_client_request()
            .map_err(|e| TransportError::Url(e.to_string()))?;
        for (name, value) in &options.headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| TransportError::Url(format!("header {name} is not valid")))?;
            request.headers_mut().insert(*name, value);
        }
        let connector = if request.uri().scheme_str() == Some("wss") {
            let config = tls_config(options.tls_ca_file.as_deref())?;
            Some(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
        } else {
            None
        };
        let limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(SOCKET_READ_BUFFER)
            // Each frame is written out at once, so the write buffer never
            // holds more than one (see SOCKET_FRAME_MAX).
            .write_buffer_size(0)
            .max_message_size(Some(options.max_message))
            .max_frame_size(Some(options.max_message));
        let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(limits),
            false,
            connector,
        )
        .await
        .map_err(|e| TransportError::Connect(e.to_string()))?;

        let traffic = &options.traffic;
        let (ping_interval, ping_timeout) = match next_packet(&mut socket, traffic).await? {
            Packet::Open {
                ping_interval,
                ping_timeout,
            } => (ping_interval, ping_timeout),
            other => {
                return Err(TransportError::Protocol(format!(
                    "expected open packet, got {other:?}"
                )));
            }
        };
        send_text(&mut socket, connect_packet(options.auth.as_ref()), traffic).await?;
        loop {
            match next_packet(&mut socket, traffic).await? {
                Packet::Connected => break,
                Packet::ConnectError(message) => return Err(TransportError::Refused(message)),
                Packet::Ping => send_text(&mut socket, pong_packet(), traffic).await?,
                Packet::Close | Packet::Disconnect => return Err(TransportError::Closed),
                _ => {}
            }
        }
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let pump = tokio::spawn(pump(
            socket,
            out_rx,
            in_tx,
            ping_interval + ping_timeout,
            traffic.clone(),
        ));
        Ok(Self {
            outgoing: out_tx,
            incoming: in_rx,
            pump: Some(pump),
        })
    }

    pub fn emit(&self, name: &str, data: &impl Serialize) -> Result<(), TransportError> {
        let text = encode_event(name, data)?;
        self.outgoing.send(text).map_err(|_| TransportError::Closed)
    }

    /// Leaves the namespace and closes the websocket, politely.
    pub async fn close(mut self) {
        let _ = self.outgoing.send(disconnect_packet());
        let _ = self.outgoing.send(close_packet());
        // The pump ends once it has written the close; bound the wait.
        if let Some(pump) = self.pump.take() {
            let abort = pump.abort_handle();
            if tokio::time::timeout(CLOSE_WAIT, pump).await.is_err() {
                abort.abort();
            }
        }
    }
}

async fn send_text(
    socket: &mut Socket,
    text: String,
    traffic: &Traffic,
) -> Result<(), TransportError> {
    traffic.sent(&text);
    send_fragmented(socket, text)
        .await
        .map_err(|e| TransportError::Connect(e.to_string()))
}

/// Sends `text` as one websocket message in frames of at most
/// `SOCKET_FRAME_MAX` bytes (a short message is one frame).
async fn send_fragmented(
    socket: &mut Socket,
    text: String,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    if text.len() <= SOCKET_FRAME_MAX {
        return socket.send(Message::text(text)).await;
    }
    let pieces = frame_ranges(&text, SOCKET_FRAME_MAX);
    let bytes = tokio_tungstenite::tungstenite::Bytes::from(text.into_bytes());
    let last = pieces.len() - 1;
    for (index, range) in pieces.into_iter().enumerate() {
        let opcode = OpCode::Data(if index == 0 {
            Data::Text
        } else {
            Data::Continue
        });
        let frame = Frame::message(bytes.slice(range), opcode, index == last);
        socket.feed(Message::Frame(frame)).await?;
    }
    socket.flush().await
}

/// Splits `text` into consecutive byte ranges of at most `max` bytes that
/// end on character boundaries (a lenient peer may decode each frame's
/// UTF-8 alone); at least one range, so an empty message is one empty
/// frame.
fn frame_ranges(text: &str, max: usize) -> Vec<std::ops::Range<usize>> {
    let max = max.max(4); // room for any one character
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + max).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        ranges.push(start..end);
        start = end;
    }
    if ranges.is_empty() {
        ranges.push(0..0);
    }
    ranges
}

async fn next_packet(socket: &mut Socket, traffic: &Traffic) -> Result<Packet, TransportError> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                traffic.received(text.as_str());
                return parse_packet(text.as_str());
            }
            Some(Ok(Message::Close(_))) | None => return Err(TransportError::Closed),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(TransportError::Connect(e.to_string())),
        }
    }
}

/// Moves packets between the websocket and the channels, answers pings, and
/// declares the peer dead when no ping arrives within `liveness`.
async fn pump(
    mut socket: Socket,
    mut outgoing: mpsc::UnboundedReceiver<String>,
    incoming: mpsc::UnboundedSender<Incoming>,
    liveness: Duration,
    traffic: Traffic,
) {
    let mut alive_until = Instant::now() + liveness;
    let reason = loop {
        tokio::select! {
            text = outgoing.recv() => {
                let Some(text) = text else { break "closed by us".to_owned() };
                let closing = text == close_packet();
                traffic.sent(&text);
                if let Err(e) = send_fragmented(&mut socket, text).await {
                    break format!("send failed: {e}");
                }
                if closing {
                    let _ = socket.close(None).await;
                    break "closed by us".to_owned();
                }
            }
            message = socket.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => break "closed by the server".to_owned(),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break format!("receive failed: {e}"),
                };
                alive_until = Instant::now() + liveness;
                traffic.received(text.as_str());
                match parse_packet(text.as_str()) {
                    Ok(Packet::Ping) => {
                        let pong = pong_packet();
                        traffic.sent(&pong);
                        if let Err(e) = socket.send(Message::text(pong)).await {
                            break format!("send failed: {e}");
                        }
                    }
                    Ok(Packet::Event { name, data }) => {
                        let _ = incoming.send(Incoming::Event { name, data });
                    }
                    Ok(Packet::Close) | Ok(Packet::Disconnect) => break "closed by the server".to_owned(),
                    Ok(_) => {}
                    Err(e) => {
                        let _ = incoming.send(Incoming::Malformed(e.to_string()));
                    }
                }
            }
            _ = tokio::time::sleep_until(alive_until) => {
                break format!("no ping from the server within {} ms", liveness.as_millis());
            }
        }
    };
    let _ = incoming.send(Incoming::Closed(reason));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_into_frames_that_cover_it_exactly() {
        let ascii = "x".repeat(40_000);
        assert_eq!(
            frame_ranges(&ascii, 16_384),
            [0..16_384, 16_384..32_768, 32_768..40_000]
        );
        let one = frame_ranges(&ascii[..16_384], 16_384);
        assert_eq!((one.len(), one.first()), (1, Some(&(0..16_384))));
        let empty = frame_ranges("", 16_384);
        assert_eq!((empty.len(), empty.first()), (1, Some(&(0..0))));
    }

    #[test]
    fn frames_never_split_a_character() {
        // "é" is two bytes: a cut every 5 bytes would fall inside one.
        let text = "aéééé";
        let ranges = frame_ranges(text, 4);
        assert_eq!(ranges, [0..3, 3..7, 7..9]);
        let joined: String = ranges.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(joined, text);
    }
}
