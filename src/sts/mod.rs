// SPDX-License-Identifier: MPL-2.0

//! The speech-to-speech (STS) service client: the Socket.IO connection
//! (`socketio`), the event payloads of the plan's protocol (`protocol`), the
//! circuit breaker and flow control over its answers, and one stream's
//! session (`session`), which the element drives through its handle
//! (`client`). Nothing here knows the element.

mod answer;
pub mod breaker;
pub mod client;
mod exchange;
pub mod flow;
pub mod protocol;
mod session;
pub mod socketio;
pub mod text;

pub use client::{CLOSE_LIMIT, SessionHandle};
pub use exchange::{
    Dubbed, EventSink, Fallback, Fragment, Reply, Secret, SessionConfig, SessionEvent, Undubbed,
    doubling_backoff, max_message,
};

/// Why `url` cannot be an STS server URL, if it cannot.
pub fn check_server_url(url: &str) -> Result<(), socketio::TransportError> {
    socketio::engine_io_url(url).map(drop)
}

/// Why `path` cannot be trusted as a PEM file of CA certificates, if it cannot.
pub fn check_ca_file(path: &std::path::Path) -> Result<(), socketio::TransportError> {
    socketio::tls_config(Some(path)).map(drop)
}

/// A value from outside as a message shows it: its start and its length.
pub fn shown(value: &str) -> String {
    socketio::bounded(value)
}
