//! The speech-to-speech (STS) service client: Socket.IO transport, the event
//! payloads of the plan's protocol, and the session that ties them together.

pub mod breaker;
pub mod flow;
pub mod protocol;
pub mod session;
pub mod socketio;
