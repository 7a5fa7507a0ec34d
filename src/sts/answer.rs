// SPDX-License-Identifier: MPL-2.0

//! What an STS answer gives the element: the dubbed M4A, or why the
//! fragment falls back. Pure.

use std::time::Duration;

use base64::Engine as _;

use super::exchange::{Dubbed, Fallback, Reply, Undubbed};
use super::protocol::{FragmentProcessed, ProcessedStatus};
use super::text::SegmentText;

/// The code a `failed` answer without an error is reported with.
pub(super) const UNKNOWN_CODE: &str = "UNKNOWN";

/// The reply for `processed`, the answer to the fragment sent as
/// `sequence_number` after `round_trip`.
pub(super) fn answer(
    processed: FragmentProcessed,
    sequence_number: u64,
    round_trip: Duration,
) -> Reply {
    let partial = processed.status == ProcessedStatus::Partial;
    let (text, text_cleaned) = SegmentText::from_answer(
        processed.transcript.as_deref(),
        processed.translated_text.as_deref(),
    );
    match (processed.status, processed.dubbed_audio) {
        (ProcessedStatus::Failed, _) => {
            let (code, message) = processed
                .error
                .map(|e| (e.code.to_string(), e.message.unwrap_or_default()))
                .unwrap_or_else(|| (UNKNOWN_CODE.into(), String::new()));
            Err(Fallback::new(
                Undubbed::Failed,
                format!("{code}: {message}"),
            ))
        }
        (_, None) => Err(Fallback::new(
            Undubbed::InvalidReply,
            "answer without dubbed_audio",
        )),
        (_, Some(audio)) => {
            match base64::engine::general_purpose::STANDARD.decode(audio.data_base64.as_bytes()) {
                Ok(m4a) => Ok(Dubbed {
                    m4a,
                    sequence_number,
                    round_trip,
                    partial,
                    text,
                    text_cleaned,
                }),
                Err(e) => Err(Fallback::new(
                    Undubbed::InvalidReply,
                    format!("dubbed_audio is not base64: {e}"),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sts::protocol::AudioPayload;

    fn processed(status: ProcessedStatus, data: Option<&str>) -> FragmentProcessed {
        FragmentProcessed {
            fragment_id: "f".into(),
            stream_id: None,
            sequence_number: None,
            status,
            dubbed_audio: data.map(|d| AudioPayload {
                format: "m4a".into(),
                sample_rate_hz: 48000,
                channels: 2,
                duration_ms: 6000,
                data_base64: d.into(),
            }),
            transcript: None,
            translated_text: None,
            processing_time_ms: None,
            stage_timings: None,
            error: None,
        }
    }

    #[test]
    fn answers_map_to_dubbed_or_fallback() {
        let ok = answer(
            processed(ProcessedStatus::Success, Some("AAEC")),
            3,
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(
            (ok.m4a, ok.sequence_number, ok.partial),
            (vec![0, 1, 2], 3, false)
        );
        assert!(
            answer(
                processed(ProcessedStatus::Partial, Some("AAEC")),
                0,
                Duration::ZERO
            )
            .unwrap()
            .partial
        );
        let failed =
            answer(processed(ProcessedStatus::Failed, None), 0, Duration::ZERO).unwrap_err();
        assert_eq!(failed.reason, Undubbed::Failed);
        let missing =
            answer(processed(ProcessedStatus::Success, None), 0, Duration::ZERO).unwrap_err();
        assert_eq!(missing.reason, Undubbed::InvalidReply);
        let garbage = answer(
            processed(ProcessedStatus::Success, Some("%%%")),
            0,
            Duration::ZERO,
        )
        .unwrap_err();
        assert_eq!(garbage.reason, Undubbed::InvalidReply);
    }
}
