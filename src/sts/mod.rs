//! The speech-to-speech (STS) service client: the Socket.IO connection
//! (`socketio`), the event payloads of the plan's protocol (`protocol`), the
//! circuit breaker and flow control over its answers, and one stream's
//! session (`session`), which the element drives through its handle
//! (`client`). Nothing here knows the element.

pub mod breaker;
pub mod client;
pub mod flow;
pub mod protocol;
mod session;
pub mod socketio;

pub use client::{
    CLOSE_LIMIT, Dubbed, EventSink, Fallback, Fragment, Reply, Secret, SessionConfig, SessionEvent,
    SessionHandle, Undubbed,
};
