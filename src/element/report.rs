// SPDX-License-Identifier: MPL-2.0

//! What the element tells the world: the `stats` property, one
//! `stsdub-segment` message per segment, the stream's metrics, and /metrics.

use std::time::Duration;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::category::CAT;
use super::fragment::{DubbedFrames, FitSummary};
use super::imp::StsDub;
use super::settings::*;
use super::state::*;
use crate::audio::loudness::{Readings, SegmentLoudness};
use crate::container::m4a;
use crate::ops::runtime::RUNTIME;
use crate::ops::{health, http};
use crate::sts::breaker::BreakerState;
use crate::sts::text::SegmentText;
use crate::timeline::cut_policy::CutReason;
use crate::timeline::scheduler::{self, FallbackReason, Outcome};
use crate::timeline::segmenter::Segment;

/// A loudness not measured, or under BS.1770's absolute gate.
const UNMEASURED_LUFS: f64 = -70.0;

/// What the `stsdub-segment` message says of one segment.
pub(super) struct SegmentReport<'a> {
    pub(super) stream_id: &'a str,
    pub(super) batch: u64,
    pub(super) fragment_id: &'a str,
    pub(super) dubbed: Option<DubbedReport>,
    pub(super) reason: Option<FallbackReason>,
    pub(super) lateness_ms: Option<f64>,
    /// Why the segment closed, and the quiet around a pause cut.
    pub(super) cut: CutReason,
    pub(super) quiet_ns: Option<u64>,
    pub(super) span: SegmentSpan,
    /// A dubbed segment's words.
    pub(super) text: Option<&'a SegmentText>,
    /// Its loudness in and out, when the output is re-encoded.
    pub(super) loudness: Option<SegmentLoudness>,
}

/// What the message says of a dubbed segment.
#[derive(Debug, Clone, Copy)]
pub(super) struct DubbedReport {
    pub(super) round_trip: Duration,
    /// The fragment's `sequence_number` on the wire.
    pub(super) sequence_number: u64,
    pub(super) fit: FitSummary,
}

/// Where a segment lies on the output timeline. Taken from the segment,
/// not from the buffers pushed with it: a re-encoder's look-ahead frames
/// leave with the next segment.
#[derive(Debug, Clone, Copy)]
pub(super) struct SegmentSpan {
    pub(super) pts: u64,
    pub(super) duration: u64,
    pub(super) frames: usize,
}

impl SegmentSpan {
    pub(super) fn of(segment: &Segment<gst::Buffer>) -> Self {
        Self {
            pts: segment.start(),
            duration: segment.duration(),
            frames: segment.frames.len(),
        }
    }
}
impl StsDub {
    /// Serves /metrics for the process, or says which endpoint already does.
    pub(super) fn serve_metrics(
        &self,
        address: &str,
        stream_id: &str,
    ) -> Result<(), gst::StateChangeError> {
        match http::serve(RUNTIME.handle(), address) {
            Err(e) => {
                self.post_error_message(gst::error_msg!(
                    gst::ResourceError::OpenReadWrite,
                    ["property {PROP_METRICS_ADDRESS}: cannot serve /metrics on {address}: {e}"]
                ));
                return Err(gst::StateChangeError);
            }
            Ok(http::Endpoint::Bound(bound)) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id}: /metrics, /healthz and /readyz served on {bound}"
                );
            }
            Ok(http::Endpoint::AlreadyServed(bound)) => {
                if address
                    .parse()
                    .is_ok_and(|asked: std::net::SocketAddr| asked != bound)
                {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "stream {stream_id}: /metrics is already served on {bound} for this process; {PROP_METRICS_ADDRESS} {address} not used"
                    );
                }
            }
        }
        Ok(())
    }

    /// Tells the probes the element's new state.
    pub(super) fn report_phase(&self, transition: gst::StateChange) {
        let Some(health) = self.state().report.health.clone() else {
            return;
        };
        match transition {
            gst::StateChange::PausedToPlaying => health.playing_at(health::now()),
            gst::StateChange::PlayingToPaused => health.paused(),
            _ => {}
        }
    }

    /// Counts a segment that is about to leave (stats and metrics) and
    /// returns how late it leaves against its live deadline, in ms.
    pub(super) fn account(
        &self,
        _stream_id: &str,
        outcome: &Outcome<DubbedFrames>,
        segment: &Segment<gst::Buffer>,
    ) -> Option<f64> {
        let mut state = self.state();
        let counts = &mut state.report.counts;
        counts.segments += 1;
        match outcome {
            Outcome::Dubbed(dubbed) => {
                counts.dubbed += 1;
                counts.last_round_trip_ms = Some(dubbed.round_trip.as_millis() as u64);
            }
            Outcome::Original(_) => counts.fallback += 1,
        }
        state.publish_inflight();
        if let Some(m) = &state.report.metrics {
            m.fragments.inc();
            match outcome {
                Outcome::Dubbed(dubbed) => {
                    m.dubbed.inc();
                    m.rtt_ms.observe(dubbed.round_trip.as_secs_f64() * 1000.0);
                }
                Outcome::Original(reason) => {
                    if let Some(fallback) = m.fallback(*reason) {
                        fallback.inc();
                    }
                }
            }
            if let Some(delta_ms) = state.av_delta_ms() {
                m.av_sync_delta_ms.set(delta_ms);
            }
            m.latency_ms.set(state.render_latency().mseconds() as i64);
            m.segment_duration_ms
                .observe(segment.duration() as f64 / 1e6);
            if let Some(cuts) = m.cuts(segment.cut) {
                cuts.inc();
            }
        }
        self.lateness_ms(&state, segment.start())
    }

    pub(super) fn lateness_ms(&self, state: &State, start: u64) -> Option<f64> {
        if state.latency.live != Some(true) {
            return None;
        }
        let now = self.obj().current_running_time()?;
        let running_start = state.audio_running_time(gst::ClockTime::from_nseconds(start))?;
        let deadline = scheduler::decision_deadline(running_start, state.render_latency());
        Some((now.nseconds() as f64 - deadline.nseconds() as f64) / 1e6)
    }

    /// The re-encoded output's loudness after a segment: in the stats and
    /// the stream's gauges.
    pub(super) fn record_loudness(&self, readings: Readings) {
        let mut state = self.state();
        state.report.loudness = Some(readings);
        let target = (state.settings.loudness == LoudnessProperty::Target)
            .then_some(state.settings.loudness_target);
        if let Some(m) = &state.report.metrics {
            m.loudness(&readings, target);
        }
    }

    /// The `stats` structure: counts, and the A/V delta of what has left
    /// (audio running time minus video running time, from the PTS pushed).
    pub(super) fn stats(&self) -> gst::Structure {
        let state = self.state();
        let lufs = |value: Option<f64>| value.unwrap_or(UNMEASURED_LUFS);
        let counts = state.report.counts;
        let delta_ms = state.av_delta_ms().unwrap_or(0.0);
        gst::Structure::builder("application/x-stsdub-stats")
            .field("stream-id", state.settings.stream_id.as_str())
            .field("segments", counts.segments)
            .field("dubbed", counts.dubbed)
            .field("fallback", counts.fallback)
            .field("late-answers", counts.late_answers)
            .field("unknown-answers", counts.unknown_answers)
            .field(
                "last-round-trip-ms",
                counts.last_round_trip_ms.map_or(-1i64, |ms| ms as i64),
            )
            .field("av-sync-delta-ms", delta_ms)
            .field("latency-ms", state.render_latency().mseconds())
            // The re-encoded output's loudness (-70: not measured).
            .field(
                "loudness-momentary",
                lufs(state.report.loudness.and_then(|l| l.momentary_lufs)),
            )
            .field(
                "loudness-short-term",
                lufs(state.report.loudness.and_then(|l| l.short_term_lufs)),
            )
            .field(
                "loudness-integrated",
                lufs(state.report.loudness.and_then(|l| l.integrated_lufs)),
            )
            .field(
                "true-peak",
                state
                    .report
                    .loudness
                    .and_then(|l| l.true_peak_dbtp)
                    .unwrap_or(UNMEASURED_LUFS),
            )
            .field(
                "breaker-state",
                counts.breaker.unwrap_or(BreakerState::Closed).as_str(),
            )
            .build()
    }

    pub(super) fn post_segment_message(&self, report: &SegmentReport) {
        let &SegmentReport {
            stream_id,
            batch,
            fragment_id,
            dubbed,
            reason,
            lateness_ms,
            cut,
            quiet_ns,
            span,
            text,
            loudness,
        } = report;
        let lufs = |value: Option<f64>| value.unwrap_or(UNMEASURED_LUFS);
        let round_trip = dubbed.map(|d| d.round_trip);
        let fit = dubbed.map(|d| d.fit);
        let fit_samples = fit.map_or(0, |f| f.samples);
        let structure = gst::Structure::builder("stsdub-segment")
            .field("stream-id", stream_id)
            .field("fragment-id", fragment_id)
            .field("batch", batch)
            .field(
                "status",
                if round_trip.is_some() {
                    "dubbed"
                } else {
                    "fallback"
                },
            )
            .field("reason", reason.map_or("", FallbackReason::as_str))
            .field(
                "round-trip-ms",
                round_trip.map_or(-1i64, |rt| rt.as_millis() as i64),
            )
            .field(
                "sequence-number",
                dubbed.map_or(-1i64, |d| d.sequence_number as i64),
            )
            .field("lateness-ms", lateness_ms.unwrap_or(0.0))
            // How the dubbed audio was fitted: "exact", "trimmed" (cut at
            // its end), "padded" (silence added) or "stretched" (sped up,
            // pitch kept, by `stretch`), and how many samples (and whole or
            // part frames) were cut or added; "" for a fallback.
            .field("fit", fit.map_or("", |f| f.kind))
            .field(
                "fit-frames",
                fit_samples.div_ceil(u64::from(m4a::AAC_FRAME_SAMPLES)) as u32,
            )
            .field("fit-samples", fit_samples)
            .field("stretch", fit.map_or(1.0, |f| f.stretch))
            .field("frames", span.frames as u32)
            // Why the segment closed: "pause", "longest", "eos", "discont";
            // and the quiet around a pause cut (-1 for other cuts).
            .field("cut", cut.as_str())
            .field(
                "pause-ms",
                quiet_ns.map_or(-1i64, |ns| (ns / 1_000_000) as i64),
            )
            .field("duration-ms", span.duration / 1_000_000)
            .field("pts", span.pts)
            // A dubbed segment's words, as the STS sent them (cleaned); ""
            // for a fallback.
            .field("transcript", text.map_or("", |t| t.transcript.as_str()))
            .field(
                "translated-text",
                text.map_or("", |t| t.translation.as_str()),
            )
            // Gated loudness over the segment of the original and of what
            // left for it, and the gain between (-70 LUFS: under BS.1770's
            // absolute gate, or not measured: codec copy).
            .field("loudness-in", lufs(loudness.and_then(|l| l.input_lufs)))
            .field("loudness-out", lufs(loudness.and_then(|l| l.output_lufs)))
            .field("loudness-gain-db", loudness.map_or(0.0, |l| l.gain_db))
            .build();
        self.post_element(structure);
    }

    /// Posts `structure` as an element message from this element.
    pub(super) fn post_element(&self, structure: gst::Structure) {
        let message = gst::message::Element::builder(structure)
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(message);
    }
}
