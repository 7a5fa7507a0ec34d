//! Event payloads of the STS protocol (the plan's "WebSocket Audio Fragment
//! Protocol"), as serde types. Incoming payloads are lenient about optional
//! fields and strict about the ones we act on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessingError {
    pub code: String,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamComplete {
    #[serde(default)]
    pub total_fragments: Option<u64>,
    #[serde(default)]
    pub statistics: Option<Value>,
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
        assert_eq!(ok.error.unwrap().code, "TIMEOUT");
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
}
