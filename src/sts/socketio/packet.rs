// SPDX-License-Identifier: MPL-2.0

//! Engine.IO and Socket.IO packets as websocket text frames: read into
//! [`Packet`], and written from the packet types, never from literals.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::TransportError;

/// Engine.IO packet types: the first character of a text frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EngineIo {
    Open,
    Close,
    Ping,
    Pong,
    Message,
    Noop,
}

impl EngineIo {
    const fn code(self) -> char {
        match self {
            EngineIo::Open => '0',
            EngineIo::Close => '1',
            EngineIo::Ping => '2',
            EngineIo::Pong => '3',
            EngineIo::Message => '4',
            EngineIo::Noop => '6',
        }
    }

    fn from_code(code: char) -> Option<Self> {
        [
            EngineIo::Open,
            EngineIo::Close,
            EngineIo::Ping,
            EngineIo::Pong,
            EngineIo::Message,
            EngineIo::Noop,
        ]
        .into_iter()
        .find(|kind| kind.code() == code)
    }
}

/// Socket.IO packet types, after an Engine.IO message's type; the others
/// (acks, binary events) are never acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketIo {
    Connect,
    Disconnect,
    Event,
    ConnectError,
}

impl SocketIo {
    const fn code(self) -> char {
        match self {
            SocketIo::Connect => '0',
            SocketIo::Disconnect => '1',
            SocketIo::Event => '2',
            SocketIo::ConnectError => '4',
        }
    }

    fn from_code(code: char) -> Option<Self> {
        [
            SocketIo::Connect,
            SocketIo::Disconnect,
            SocketIo::Event,
            SocketIo::ConnectError,
        ]
        .into_iter()
        .find(|kind| kind.code() == code)
    }

    /// The start of a packet of this type on the main namespace.
    fn prefix(self) -> String {
        [EngineIo::Message.code(), self.code()].iter().collect()
    }
}

/// The namespace CONNECT, with `auth` as its payload when present.
pub(super) fn connect_packet(auth: Option<&Value>) -> String {
    let prefix = SocketIo::Connect.prefix();
    match auth {
        Some(auth) => format!("{prefix}{auth}"),
        None => prefix,
    }
}

/// Leaving the main namespace.
pub(super) fn disconnect_packet() -> String {
    SocketIo::Disconnect.prefix()
}

/// Closing the Engine.IO session.
pub(super) fn close_packet() -> String {
    EngineIo::Close.code().to_string()
}

/// The answer to a ping.
pub(super) fn pong_packet() -> String {
    EngineIo::Pong.code().to_string()
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
    match EngineIo::from_code(kind) {
        Some(EngineIo::Open) => parse_open(body),
        Some(EngineIo::Close) => Ok(Packet::Close),
        Some(EngineIo::Ping) => Ok(Packet::Ping),
        Some(EngineIo::Pong) => Ok(Packet::Pong),
        Some(EngineIo::Noop) => Ok(Packet::Noop),
        Some(EngineIo::Message) => parse_socket_io(body),
        None => Err(TransportError::Protocol(format!(
            "unknown Engine.IO packet type '{kind}'"
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
    match SocketIo::from_code(kind) {
        Some(SocketIo::Connect) => Ok(Packet::Connected),
        Some(SocketIo::Disconnect) => Ok(Packet::Disconnect),
        Some(SocketIo::Event) => parse_event(rest),
        Some(SocketIo::ConnectError) => {
            let message = serde_json::from_str::<Value>(rest)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| rest.to_owned());
            Ok(Packet::ConnectError(message))
        }
        None => Ok(Packet::Other),
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
    let mut packet = SocketIo::Event.prefix().into_bytes();
    serde_json::to_writer(&mut packet, &(name, data))
        .map_err(|e| TransportError::Protocol(e.to_string()))?;
    String::from_utf8(packet).map_err(|e| TransportError::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn outgoing_packets_are_written_from_their_types() {
        assert_eq!(connect_packet(None), "40");
        assert_eq!(
            connect_packet(Some(&json!({"token": "t"}))),
            r#"40{"token":"t"}"#
        );
        assert_eq!(disconnect_packet(), "41");
        assert_eq!(close_packet(), "1");
        assert_eq!(pong_packet(), "3");
    }
}
