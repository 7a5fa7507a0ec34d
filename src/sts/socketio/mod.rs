// SPDX-License-Identifier: MPL-2.0

//! Socket.IO v5 over Engine.IO v4, websocket transport only, on tokio-tungstenite.
//!
//! Only what a client of one namespace needs: the open packet, ping/pong, the
//! namespace CONNECT (and CONNECT_ERROR), events as JSON text, DISCONNECT.
//! [`Connection::connect`] returns only once the namespace is acknowledged,
//! and a peer that stops answering is noticed within pingInterval +
//! pingTimeout.
//!
//! `url` checks the server URL, `packet` reads and writes packets, `tls`
//! makes the wss:// configuration, `connection` holds the socket and its pump.

mod connection;
mod packet;
mod tls;
mod url;

pub use connection::{
    ConnectOptions, Connection, Connector, Incoming, Traffic, websocket_connector,
};
pub use packet::{Packet, encode_event, parse_packet};
pub use tls::tls_config;
pub use url::{bounded, engine_io_url};

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
