// SPDX-License-Identifier: MPL-2.0

//! What goes between the element and its STS session: the session's
//! configuration, the fragments handed over, the reply each gets (dubbed
//! audio, or why not), and the events the session reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::breaker::BreakerState;
use super::flow::Action;
use super::protocol::StreamConfig;
use super::socketio::Traffic;
use super::text::{Cleaned, SegmentText};

/// How long `stream:end` waits for `stream:complete` before disconnecting.
pub const END_WAIT: Duration = Duration::from_secs(2);
/// Upper bound for the websocket + namespace + `stream:init` handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub url: String,
    pub stream_id: String,
    pub worker_id: String,
    pub stream: StreamConfig,
    pub max_inflight: u32,
    pub timeout: Duration,
    /// Waits between reconnect attempts; the last one repeats for ever.
    pub backoff: Vec<Duration>,
    /// After `backoff.len()` failed attempts, report `GaveUp` (the element
    /// then posts an error) instead of probing on at the longest backoff.
    pub give_up: bool,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    pub auth_token: Option<Secret>,
    pub tls_ca_file: Option<PathBuf>,
    /// Where the connection counts its bytes.
    pub traffic: Traffic,
}

/// A credential: usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The plan's backoff: `initial`, doubled for each of `attempts` attempts.
pub fn doubling_backoff(initial: Duration, attempts: u32) -> Vec<Duration> {
    (0..attempts.max(1))
        .map(|i| initial * 2u32.saturating_pow(i))
        .collect()
}

/// A segment ready to be sent.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub fragment_id: String,
    pub pts_ns: u64,
    pub duration_ms: u64,
    pub m4a: Vec<u8>,
}

#[derive(Debug)]
pub struct Dubbed {
    pub m4a: Vec<u8>,
    pub sequence_number: u64,
    pub round_trip: Duration,
    pub partial: bool,
    /// The answer's words, cleaned, and whether cleaning changed them.
    pub text: SegmentText,
    pub text_cleaned: Cleaned,
}

/// Why a fragment was not dubbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undubbed {
    /// The STS did not answer within the timeout.
    Timeout,
    /// No session with the STS.
    Disconnected,
    /// The STS answered `failed`.
    Failed,
    /// The answer was unusable.
    InvalidReply,
    /// The circuit breaker is open (or half-open with its probe out).
    BreakerOpen,
    /// The STS asked us to pause.
    Paused,
}

/// A fragment that was not dubbed: why, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub reason: Undubbed,
    pub detail: String,
}

impl Fallback {
    pub(super) fn new(reason: Undubbed, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

pub type Reply = Result<Dubbed, Fallback>;

/// What the session tells its element (for logs and bus messages).
#[derive(Debug, Clone)]
pub enum SessionEvent {
    Connected {
        session_id: String,
        max_inflight: u32,
    },
    ConnectFailed {
        error: String,
        retry_in: Duration,
    },
    Disconnected {
        reason: String,
    },
    LateAnswer {
        fragment_id: String,
    },
    /// An answer for a fragment id this session never sent.
    UnknownAnswer {
        fragment_id: String,
    },
    Warning {
        fragment_id: Option<String>,
        message: String,
    },
    Completed {
        total_fragments: Option<u64>,
        statistics: Option<Value>,
    },
    BreakerChanged {
        state: BreakerState,
    },
    Backpressure {
        action: Action,
    },
    /// Reconnect attempts used up and `give_up` set.
    GaveUp {
        attempts: usize,
        error: String,
    },
}

pub type EventSink = Arc<dyn Fn(SessionEvent) + Send + Sync>;

/// The largest message an answer for a segment of `segment_ms` needs:
/// dubbed audio four times the segment at 512 kb/s, in base64, plus room
/// for the JSON around it (about 2 MB for 6 s; the transport's own limit,
/// 64 MiB, would let one reply take that much memory).
pub fn max_message(segment_ms: u32) -> usize {
    const BYTES_PER_MS: usize = 512_000 / 8 / 1000;
    const LENGTH_FACTOR: usize = 4;
    const ENVELOPE: usize = 64 * 1024;
    let audio = segment_ms as usize * BYTES_PER_MS * LENGTH_FACTOR;
    audio.div_ceil(3) * 4 + ENVELOPE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_limit_follows_the_segment() {
        // A 6 s segment's M4A at 96 kb/s is ~72 KB, ~96 KB in base64.
        let six_seconds = max_message(6_000);
        assert!(six_seconds >= 4 * 6 * 512_000 / 8, "{six_seconds}");
        assert!(six_seconds < 3 * 1024 * 1024, "{six_seconds}");
        assert!(max_message(60_000) > 10 * six_seconds - 1024 * 1024);
    }

    #[test]
    fn backoff_doubles_from_the_initial_delay() {
        let secs: Vec<u64> = doubling_backoff(Duration::from_secs(2), 5)
            .iter()
            .map(Duration::as_secs)
            .collect();
        assert_eq!(secs, [2, 4, 8, 16, 32]);
    }
}
