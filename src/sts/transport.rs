//! Socket.IO v5 over Engine.IO v4, websocket transport only, on tokio-tungstenite.
//!
//! Only what a client of one namespace needs: the open packet, ping/pong, the
//! namespace CONNECT (and CONNECT_ERROR), events as JSON text, DISCONNECT.
//! `connect` returns only once the namespace is acknowledged, and a peer that
//! stops answering is noticed within pingInterval + pingTimeout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prometheus::IntCounter;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    Url(String),
    Connect(String),
    /// The server refused the namespace (Socket.IO CONNECT_ERROR).
    Refused(String),
    Protocol(String),
    Tls(String),
    Timeout,
    Closed,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Url(e) => write!(f, "invalid STS URL: {e}"),
            TransportError::Connect(e) => write!(f, "cannot connect: {e}"),
            TransportError::Refused(e) => write!(f, "server refused the connection: {e}"),
            TransportError::Protocol(e) => write!(f, "protocol error: {e}"),
            TransportError::Tls(e) => write!(f, "TLS: {e}"),
            TransportError::Timeout => write!(f, "timed out"),
            TransportError::Closed => write!(f, "connection closed"),
        }
    }
}

impl std::error::Error for TransportError {}

/// The Engine.IO websocket endpoint for a Socket.IO server URL:
/// `http://host:port[/path]` → `ws://host:port/socket.io/?EIO=4&transport=websocket`.
pub fn engine_io_url(sts_url: &str) -> Result<String, TransportError> {
    let (scheme, rest) = sts_url
        .split_once("://")
        .ok_or_else(|| TransportError::Url(format!("'{}' has no scheme", bounded(sts_url))))?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(TransportError::Url(format!(
                "unsupported scheme '{}'",
                bounded(other)
            )));
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(TransportError::Url(format!(
            "'{}' has no host",
            bounded(sts_url)
        )));
    }
    check_authority(authority).map_err(TransportError::Url)?;
    Ok(format!(
        "{ws_scheme}://{authority}/socket.io/?EIO=4&transport=websocket"
    ))
}

/// At most this many characters of a value from outside go into a message.
const SHOWN_CHARS: usize = 64;

/// `value` as a message may show it: its first characters, and how long it is.
pub fn bounded(value: &str) -> String {
    if value.chars().count() <= SHOWN_CHARS {
        return value.escape_debug().to_string();
    }
    let head: String = value.chars().take(SHOWN_CHARS).collect();
    format!("{}… ({} bytes)", head.escape_debug(), value.len())
}

/// host[:port], the host a name, an IPv4 address or a bracketed IPv6 one,
/// the port 1 to 65535.
fn check_authority(authority: &str) -> Result<(), String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("'{}': an IPv6 host needs its ']'", bounded(authority)))?;
            if address.is_empty()
                || !address
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                return Err(format!("'{}' is not an IPv6 address", bounded(address)));
            }
            (None, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(authority), None),
        },
    };
    if let Some(host) = host {
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if host.is_empty() || host.len() > 253 || !host.chars().all(name_char) {
            return Err(format!(
                "host '{}' is not a host name or address (letters, digits, '-', '.', '_', at most 253)",
                bounded(host)
            ));
        }
    }
    if let Some(port) = port {
        match port.parse::<u32>() {
            Ok(1..=65535) if port.chars().all(|c| c.is_ascii_digit()) => {}
            _ => return Err(format!("port '{}' is not within 1 to 65535", bounded(port))),
        }
    }
    Ok(())
}

/// One Engine.IO packet as it arrives in a websocket text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    Open {
        ping_interval: Duration,
        ping_timeout: Duration,
    },
    Close,
    Ping,
    Pong,
    Noop,
    /// Socket.IO CONNECT acknowledged on the main namespace.
    Connected,
    /// Socket.IO CONNECT_ERROR with the server's message.
    ConnectError(String),
    /// Socket.IO DISCONNECT from the server.
    Disconnect,
    Event {
        name: String,
        data: Value,
    },
    /// Anything we do not act on (other namespaces, acks, binary events).
    Other,
}

pub fn parse_packet(text: &str) -> Result<Packet, TransportError> {
    let mut chars = text.chars();
    let kind = chars
        .next()
        .ok_or_else(|| TransportError::Protocol("empty packet".into()))?;
    let body = chars.as_str();
    match kind {
        '0' => parse_open(body),
        '1' => Ok(Packet::Close),
        '2' => Ok(Packet::Ping),
        '3' => Ok(Packet::Pong),
        '6' => Ok(Packet::Noop),
        '4' => parse_socket_io(body),
        other => Err(TransportError::Protocol(format!(
            "unknown Engine.IO packet type '{other}'"
        ))),
    }
}

fn parse_open(body: &str) -> Result<Packet, TransportError> {
    let open: Value = serde_json::from_str(body)
        .map_err(|e| TransportError::Protocol(format!("open packet: {e}")))?;
    let millis = |key: &str| {
        open.get(key)
            .and_then(Value::as_u64)
            .map(Duration::from_millis)
            .ok_or_else(|| TransportError::Protocol(format!("open packet lacks {key}")))
    };
    Ok(Packet::Open {
        ping_interval: millis("pingInterval")?,
        ping_timeout: millis("pingTimeout")?,
    })
}

fn parse_socket_io(body: &str) -> Result<Packet, TransportError> {
    let mut chars = body.chars();
    let kind = chars
        .next()
        .ok_or_else(|| TransportError::Protocol("empty Socket.IO packet".into()))?;
    let rest = chars.as_str();
    // Packets for another namespace start with "/name,"; we only use "/".
    if rest.starts_with('/') {
        return Ok(Packet::Other);
    }
    match kind {
        '0' => Ok(Packet::Connected),
        '1' => Ok(Packet::Disconnect),
        '2' => parse_event(rest),
        '4' => {
            let message = serde_json::from_str::<Value>(rest)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| rest.to_owned());
            Ok(Packet::ConnectError(message))
        }
        _ => Ok(Packet::Other),
    }
}

fn parse_event(rest: &str) -> Result<Packet, TransportError> {
    // An event may carry an ack id before the array: "42" + "17[...]".
    let array = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let value: Value = serde_json::from_str(array)
        .map_err(|e| TransportError::Protocol(format!("event is not JSON: {e}")))?;
    let mut items = match value {
        Value::Array(items) if !items.is_empty() => items.into_iter(),
        _ => {
            return Err(TransportError::Protocol(
                "event is not a non-empty array".into(),
            ));
        }
    };
    let name = match items.next() {
        Some(Value::String(name)) => name,
        _ => {
            return Err(TransportError::Protocol(
                "event name is not a string".into(),
            ));
        }
    };
    Ok(Packet::Event {
        name,
        data: items.next().unwrap_or(Value::Null),
    })
}

pub fn encode_event(name: &str, data: &impl Serialize) -> Result<String, TransportError> {
    // Serialized straight after the packet type: a fragment's JSON is
    // mostly its base64 audio, and is written once, not copied again.
    let mut packet = b"42".to_vec();
    serde_json::to_writer(&mut packet, &(name, data))
        .map_err(|e| TransportError::Protocol(e.to_string()))?;
    String::from_utf8(packet).map_err(|e| TransportError::Protocol(e.to_string()))
}

/// What the connection hands to its owner.
#[derive(Debug)]
pub enum Incoming {
    Event { name: String, data: Value },
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

/// A TLS client configuration with the system's CA store, plus the CAs of
/// `ca_file`; certificates are always verified.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot parse is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let bad = |e: String| TransportError::Tls(format!("CA file {}: {e}", path.display()));
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
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
        let connect = match &options.auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        send_text(&mut socket, connect, traffic).await?;
        loop {
            match next_packet(&mut socket, traffic).await? {
                Packet::Connected => break,
                Packet::ConnectError(message) => return Err(TransportError::Refused(message)),
                Packet::Ping => send_text(&mut socket, "3".to_owned(), traffic).await?,
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
        let _ = self.outgoing.send("41".to_owned());
        let _ = self.outgoing.send("1".to_owned());
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
                let closing = text == "1";
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
                        traffic.sent("3");
                        if let Err(e) = socket.send(Message::text("3")).await {
                            break format!("send failed: {e}");
                        }
                    }
                    Ok(Packet::Event { name, data }) => {
                        let _ = incoming.send(Incoming::Event { name, data });
                    }
                    Ok(Packet::Close) | Ok(Packet::Disconnect) => break "closed by the server".to_owned(),
                    Ok(_) => {}
                    Err(e) => {
                        let _ = incoming.send(Incoming::Event {
                            name: String::new(),
                            data: Value::String(e.to_string()),
                        });
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
    use serde_json::json;

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

    #[test]
    fn url_maps_to_engine_io_websocket_endpoint() {
        assert_eq!(
            engine_io_url("http://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            engine_io_url("https://sts.example:443/").unwrap(),
            "wss://sts.example:443/socket.io/?EIO=4&transport=websocket"
        );
        assert!(engine_io_url("ftp://x").is_err());
        assert!(engine_io_url("localhost:80").is_err());
        assert!(engine_io_url("http://").is_err());
        assert!(engine_io_url("http://[::1]:8000").is_ok());
        assert!(engine_io_url("http://sts_1.internal").is_ok());
        for bad in [
            "http://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://127.0.0.1:80a",
            "http://sts example:8000",
            "http://user@sts:8000",
            "http://[::1",
            "http://[zz]:80",
        ] {
            let error = engine_io_url(bad).expect_err(bad).to_string();
            assert!(
                error.contains("port") || error.contains("host") || error.contains("IPv6"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn packets_parse() {
        assert_eq!(
            parse_packet(r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#).unwrap(),
            Packet::Open {
                ping_interval: Duration::from_millis(25000),
                ping_timeout: Duration::from_millis(20000)
            }
        );
        assert_eq!(parse_packet("2").unwrap(), Packet::Ping);
        assert_eq!(
            parse_packet(r#"40{"sid":"abc"}"#).unwrap(),
            Packet::Connected
        );
        assert_eq!(
            parse_packet(r#"44{"message":"Not authorized"}"#).unwrap(),
            Packet::ConnectError("Not authorized".into())
        );
        assert_eq!(
            parse_packet(r#"42["stream:ready",{"session_id":"s"}]"#).unwrap(),
            Packet::Event {
                name: "stream:ready".into(),
                data: json!({"session_id": "s"})
            }
        );
        assert_eq!(
            parse_packet(r#"4212["x"]"#).unwrap(),
            Packet::Event {
                name: "x".into(),
                data: Value::Null
            }
        );
        assert_eq!(parse_packet("42/admin,[\"x\"]").unwrap(), Packet::Other);
        assert!(parse_packet("42[1]").is_err());
        assert!(parse_packet("42{").is_err());
        assert!(parse_packet("").is_err());
        assert!(parse_packet("9").is_err());
    }

    #[test]
    fn events_encode_as_socket_io_arrays() {
        assert_eq!(
            encode_event(
                "fragment:ack",
                &json!({"fragment_id": "a", "status": "applied"})
            )
            .unwrap(),
            r#"42["fragment:ack",{"fragment_id":"a","status":"applied"}]"#
        );
    }
}
