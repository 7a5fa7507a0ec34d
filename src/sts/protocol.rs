// SPDX-License-Identifier: MPL-2.0

//! Event payloads of the STS protocol (the plan's "WebSocket Audio Fragment
//! Protocol"), as serde types. Incoming payloads are lenient about optional
//! fields and strict about the ones we act on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::flow::Action;

pub const STREAM_INIT: &str = "stream:init";
pub const STREAM_READY: &str = "stream:ready";
pub const FRAGMENT_DATA: &str = "fragment:data";
pub const FRAGMENT_ACK: &str = "fragment:ack";
pub const FRAGMENT_PROCESSED: &str = "fragment:processed";
pub const BACKPRESSURE: &str = "backpressure";
pub const STREAM_END: &str = "stream:end";
pub const STREAM_COMPLETE: &str = "stream:complete";
pub const AUDIO_FORMAT: &str = "m4a";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    pub source_language: String,
    pub target_language: String,
    pub voice_profile: String,
    pub format: String,
    pub sample_rate_hz: u32,
    pub channels: u8,
    pub chunk_duration_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInit {
    pub stream_id: String,
    pub worker_id: String,
    pub config: StreamConfig,
    pub max_inflight: u32,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamReady {
    pub session_id: String,
    #[serde(default)]
    pub max_inflight: Option<u32>,
    #[serde(default)]
    pub capabilities: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioPayload {
    pub format: String,
    pub sample_rate_hz: u32,
    pub channels: u8,
    pub duration_ms: u64,
    pub data_base64: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FragmentMetadata {
    pub pts_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FragmentData {
    pub fragment_id: String,
    pub stream_id: String,
    pub sequence_number: u64,
    /// Unix time in milliseconds when the fragment was sent.
    pub timestamp: u64,
    pub audio: AudioPayload,
    pub metadata: FragmentMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FragmentAck {
    pub fragment_id: String,
    pub status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessedStatus {
    Success,
    Partial,
    Failed,
}

/// The plan's error codes. The first five say "try again later" and count
/// towards opening the circuit breaker; any other code is kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ErrorCode {
    Timeout,
    ModelError,
    GpuOom,
    QueueFull,
    RateLimit,
    StreamNotFound,
    InvalidConfig,
    FragmentTooLarge,
    InvalidSequence,
    Other(String),
}

impl ErrorCode {
    const NAMED: [ErrorCode; 9] = [
        ErrorCode::Timeout,
        ErrorCode::ModelError,
        ErrorCode::GpuOom,
        ErrorCode::QueueFull,
        ErrorCode::RateLimit,
        ErrorCode::StreamNotFound,
        ErrorCode::InvalidConfig,
        ErrorCode::FragmentTooLarge,
        ErrorCode::InvalidSequence,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::ModelError => "MODEL_ERROR",
            ErrorCode::GpuOom => "GPU_OOM",
            ErrorCode::QueueFull => "QUEUE_FULL",
            ErrorCode::RateLimit => "RATE_LIMIT",
            ErrorCode::StreamNotFound => "STREAM_NOT_FOUND",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::FragmentTooLarge => "FRAGMENT_TOO_LARGE",
            ErrorCode::InvalidSequence => "INVALID_SEQUENCE",
            ErrorCode::Other(code) => code,
        }
    }

    /// Whether the service may succeed if asked again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ErrorCode::Timeout
                | ErrorCode::ModelError
                | ErrorCode::GpuOom
                | ErrorCode::QueueFull
                | ErrorCode::RateLimit
        )
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        Self::NAMED
            .into_iter()
            .find(|named| named.as_str() == code)
            .unwrap_or_else(|| ErrorCode::Other(code.to_owned()))
    }
}

impl From<String> for ErrorCode {
    fn from(code: String) -> Self {
        Self::from(code.as_str())
    }
}

impl From<ErrorCode> for String {
    fn from(code: ErrorCode) -> Self {
        code.as_str().to_owned()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessingError {
    pub code: ErrorCode,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub retryable: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FragmentProcessed {
    pub fragment_id: String,
    #[serde(default)]
    pub stream_id: Option<String>,
    #[serde(default)]
    pub sequence_number: Option<u64>,
    pub status: ProcessedStatus,
    #[serde(default)]
    pub dubbed_audio: Option<AudioPayload>,
    #[serde(default)]
    pub transcript: Option<String>,
    #[serde(default)]
    pub translated_text: Option<String>,
    #[serde(default)]
    pub processing_time_ms: Option<f64>,
    #[serde(default)]
    pub stage_timings: Option<Value>,
    #[serde(default)]
    pub error: Option<ProcessingError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEnd {
    pub stream_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamComplete {
    #[serde(default)]
    pub total_fragments: Option<u64>,
    #[serde(default)]
    pub statistics: Option<Value>,
}

/// An event the server sends, read from its name and payload.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    StreamReady(StreamReady),
    /// The server's own acknowledgement of a fragment: nothing to do.
    FragmentAck,
    /// Boxed: an answer is large, the other events are small.
    FragmentProcessed(Box<FragmentProcessed>),
    Backpressure(Action),
    StreamComplete(StreamComplete),
}

/// A server event that cannot be acted on.
#[derive(Debug, Clone, PartialEq)]
pub enum EventError {
    /// A known event whose payload does not read; `fragment_id` when the
    /// payload names one (that fragment then falls back).
    Malformed {
        event: &'static str,
        fragment_id: Option<String>,
        error: String,
    },
    Unknown(String),
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::Malformed { event, error, .. } => write!(f, "malformed {event}: {error}"),
            EventError::Unknown(name) => write!(f, "ignoring unknown STS event '{name}'"),
        }
    }
}

impl ServerEvent {
    /// Reads the event `name` with payload `data`. `stream:complete` is
    /// taken whatever its payload (its fields are only reported).
    pub fn read(name: &str, data: Value) -> Result<Self, EventError> {
        let malformed = |event: &'static str, data: &Value, error: String| EventError::Malformed {
            event,
            fragment_id: data
                .get("fragment_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            error,
        };
        match name {
            STREAM_READY => serde_json::from_value(data.clone())
                .map(ServerEvent::StreamReady)
                .map_err(|e| malformed(STREAM_READY, &data, e.to_string())),
            FRAGMENT_ACK => Ok(ServerEvent::FragmentAck),
            FRAGMENT_PROCESSED => serde_json::from_value(data.clone())
                .map(|processed| ServerEvent::FragmentProcessed(Box::new(processed)))
                .map_err(|e| malformed(FRAGMENT_PROCESSED, &data, e.to_string())),
            BACKPRESSURE => {
                let action = data
                    .get("action")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let delay = data.get("recommended_delay_ms").and_then(Value::as_u64);
                Action::parse(action, delay)
                    .map(ServerEvent::Backpressure)
                    .ok_or_else(|| {
                        malformed(BACKPRESSURE, &data, format!("unknown action: {data}"))
                    })
            }
            STREAM_COMPLETE => Ok(ServerEvent::StreamComplete(
                serde_json::from_value(data).unwrap_or_default(),
            )),
            other => Err(EventError::Unknown(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fragment_data_has_exactly_the_plan_fields() {
        let data = FragmentData {
            fragment_id: "f".into(),
            stream_id: "s".into(),
            sequence_number: 0,
            timestamp: 1,
            audio: AudioPayload {
                format: AUDIO_FORMAT.into(),
                sample_rate_hz: 48000,
                channels: 2,
                duration_ms: 6000,
                data_base64: "AA==".into(),
            },
            metadata: FragmentMetadata { pts_ns: 5 },
        };
        assert_eq!(
            serde_json::to_value(&data).unwrap(),
            json!({"fragment_id": "f", "stream_id": "s", "sequence_number": 0, "timestamp": 1,
                   "audio": {"format": "m4a", "sample_rate_hz": 48000, "channels": 2,
                             "duration_ms": 6000, "data_base64": "AA=="},
                   "metadata": {"pts_ns": 5}})
        );
    }

    #[test]
    fn processed_accepts_minimal_and_rejects_wrong_types() {
        let ok: FragmentProcessed =
            serde_json::from_value(json!({"fragment_id": "a", "status": "failed",
                "error": {"code": "TIMEOUT"}}))
            .unwrap();
        assert_eq!(ok.status, ProcessedStatus::Failed);
        assert_eq!(ok.error.unwrap().code, ErrorCode::Timeout);
        assert!(
            serde_json::from_value::<FragmentProcessed>(
                json!({"fragment_id": 3, "status": "success"})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<FragmentProcessed>(
                json!({"fragment_id": "a", "status": "great"})
            )
            .is_err()
        );
    }

    #[test]
    fn error_codes_read_as_the_plan_names_them_and_keep_unknown_ones() {
        let code = |text: &str| serde_json::from_value::<ErrorCode>(json!(text)).unwrap();
        assert_eq!(code("GPU_OOM"), ErrorCode::GpuOom);
        assert!(code("RATE_LIMIT").is_retryable());
        assert!(!code("INVALID_SEQUENCE").is_retryable());
        assert_eq!(code("NEW_CODE"), ErrorCode::Other("NEW_CODE".into()));
        assert!(!code("NEW_CODE").is_retryable());
        assert_eq!(
            serde_json::to_value(ErrorCode::QueueFull).unwrap(),
            json!("QUEUE_FULL")
        );
    }

    #[test]
    fn server_events_read_into_their_types() {
        let processed = ServerEvent::read(
            FRAGMENT_PROCESSED,
            json!({"fragment_id": "a", "status": "partial"}),
        );
        assert!(
            matches!(processed, Ok(ServerEvent::FragmentProcessed(p)) if p.status == ProcessedStatus::Partial)
        );
        assert_eq!(
            ServerEvent::read(BACKPRESSURE, json!({"action": "pause"})),
            Ok(ServerEvent::Backpressure(Action::Pause))
        );
        assert_eq!(
            ServerEvent::read(STREAM_COMPLETE, json!("not an object")),
            Ok(ServerEvent::StreamComplete(StreamComplete::default()))
        );
        let Err(EventError::Malformed { fragment_id, .. }) =
            ServerEvent::read(FRAGMENT_PROCESSED, json!({"fragment_id": "b", "status": 7}))
        else {
            panic!("a wrong status type is malformed");
        };
        assert_eq!(fragment_id.as_deref(), Some("b"));
        assert!(matches!(
            ServerEvent::read(BACKPRESSURE, json!({"action": "faster"})),
            Err(EventError::Malformed {
                event: BACKPRESSURE,
                ..
            })
        ));
        assert_eq!(
            ServerEvent::read("x:y", json!({})),
            Err(EventError::Unknown("x:y".into()))
        );
    }
}
