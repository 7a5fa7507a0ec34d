// SPDX-License-Identifier: MPL-2.0

//! Prometheus metrics: one registry per process, labelled by `stream_id`,
//! served by `http.rs` however many elements there are. Updating a metric is
//! an atomic add; rendering happens on the runtime, never on a streaming
//! thread.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::audio::loudness::Readings;
use crate::sts::flow::Action;
use crate::sts::socketio::Traffic;
use crate::timeline::cut_policy::CutReason;
use crate::timeline::scheduler::FallbackReason;

pub struct Metrics {
    pub registry: Registry,
    pub fragments_total: IntCounterVec,
    pub dubbed_total: IntCounterVec,
    pub fallback_total: IntCounterVec,
    pub late_answers_total: IntCounterVec,
    pub reconnects_total: IntCounterVec,
    pub backpressure_total: IntCounterVec,
    pub bytes_sent_total: IntCounterVec,
    pub bytes_received_total: IntCounterVec,
    pub gst_bus_errors_total: IntCounterVec,
    pub inflight_fragments: IntGaugeVec,
    pub av_sync_delta_ms: GaugeVec,
    pub sts_breaker_state: IntGaugeVec,
    pub latency_ms: IntGaugeVec,
    pub sts_rtt_ms: HistogramVec,
    pub segment_duration_ms: HistogramVec,
    pub segment_cuts_total: IntCounterVec,
    /// Set once the output is re-encoded (loudness, voice-over, stretch).
    pub loudness_lufs: GaugeVec,
    pub true_peak_dbtp: GaugeVec,
    pub loudness_target_lufs: GaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .expect("metric definitions are static and valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), &["stream_id"])
        .expect("metric definitions are static and valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let stream = &["stream_id"];
    let av_sync_delta_ms = GaugeVec::new(
        Opts::new(
            "worker_av_sync_delta_ms",
            "A/V delta of the output: audio minus video running time, ms",
        ),
        stream,
    )
    .expect("metric definitions are static and valid");
    registry
        .register(Box::new(av_sync_delta_ms.clone()))
        .expect("registered once");
    // 50 ms to 10 s: resolves both a fast local STS and one near its timeout.
    let buckets = vec![
        50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 8000.0,
        10000.0,
    ];
    let sts_rtt_ms = HistogramVec::new(
        HistogramOpts::new(
            "worker_sts_rtt_ms",
            "Round trip of a fragment to the STS and back, ms",
        )
        .buckets(buckets),
        stream,
    )
    .expect("metric definitions are static and valid");
    registry
        .register(Box::new(sts_rtt_ms.clone()))
        .expect("registered once");
    // 0.5 s to 60 s: the segment-duration range, finer where pauses cut.
    let segment_buckets = vec![
        500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0, 4000.0, 5000.0, 6000.0, 8000.0, 10000.0,
        20000.0, 60000.0,
    ];
    let segment_duration_ms = HistogramVec::new(
        HistogramOpts::new(
            "worker_segment_duration_ms",
            "Duration of the audio segments cut, ms",
        )
        .buckets(segment_buckets),
        stream,
    )
    .expect("metric definitions are static and valid");
    registry
        .register(Box::new(segment_duration_ms.clone()))
        .expect("registered once");
    let gauge = |name: &str, help: &str, labels: &[&str]| {
        let metric = GaugeVec::new(Opts::new(name, help), labels)
            .expect("metric definitions are static and valid");
        registry
            .register(Box::new(metric.clone()))
            .expect("registered once");
        metric
    };
    let loudness_lufs = gauge(
        "worker_loudness_lufs",
        "Loudness of the re-encoded output (BS.1770-4), LUFS, by window: momentary (400 ms), short_term (3 s), integrated (gated, since the start)",
        &["stream_id", "window"],
    );
    let true_peak_dbtp = gauge(
        "worker_true_peak_dbtp",
        "Largest true peak of the re-encoded output since the start, dBTP (before AAC encoding)",
        stream,
    );
    let loudness_target_lufs = gauge(
        "worker_loudness_target_lufs",
        "The stream's loudness-target, LUFS, when loudness=target",
        stream,
    );
    Metrics {
        loudness_target_lufs,
        loudness_lufs,
        true_peak_dbtp,
        segment_duration_ms,
        segment_cuts_total: counter(
            &registry,
            "worker_segment_cuts_total",
            "Segments cut, by why they closed (pause, longest, eos, discont)",
            &["stream_id", "reason"],
        ),
        fragments_total: counter(
            &registry,
            "worker_audio_fragments_total",
            "Audio segments that left the element",
            stream,
        ),
        dubbed_total: counter(
            &registry,
            "worker_dubbed_total",
            "Segments that left dubbed",
            stream,
        ),
        fallback_total: counter(
            &registry,
            "worker_fallback_total",
            "Segments that left as original audio, by reason",
            &["stream_id", "reason"],
        ),
        late_answers_total: counter(
            &registry,
            "worker_late_answers_total",
            "STS answers that came after their segment fell back",
            stream,
        ),
        reconnects_total: counter(
            &registry,
            "worker_sts_reconnects_total",
            "Failed or lost STS connections, each followed by a reconnect attempt",
            stream,
        ),
        backpressure_total: counter(
            &registry,
            "worker_backpressure_events_total",
            "STS backpressure events, by action",
            &["stream_id", "action"],
        ),
        bytes_sent_total: counter(
            &registry,
            "worker_sts_bytes_sent_total",
            "Websocket payload bytes sent to the STS",
            stream,
        ),
        bytes_received_total: counter(
            &registry,
            "worker_sts_bytes_received_total",
            "Websocket payload bytes received from the STS",
            stream,
        ),
        gst_bus_errors_total: counter(
            &registry,
            "worker_gst_bus_errors_total",
            "Error messages on the bus: every element's with the stsdub-bus-errors tracer, else stsdub's own",
            stream,
        ),
        inflight_fragments: int_gauge(
            &registry,
            "worker_inflight_fragments",
            "Segments waiting for their outcome",
        ),
        sts_breaker_state: int_gauge(
            &registry,
            "worker_sts_breaker_state",
            "Circuit breaker: 0 closed, 1 half_open, 2 open",
        ),
        latency_ms: int_gauge(
            &registry,
            "worker_latency_ms",
            "Latency segments are decided against, ms",
        ),
        av_sync_delta_ms,
        sts_rtt_ms,
        registry,
    }
});

/// One stream's series, looked up once when the stream starts: the element
/// counts through these handles instead of looking its labels up each time.
#[derive(Clone)]
pub struct StreamMetrics {
    pub fragments: IntCounter,
    pub dubbed: IntCounter,
    pub late_answers: IntCounter,
    pub reconnects: IntCounter,
    pub inflight: IntGauge,
    pub breaker_state: IntGauge,
    pub latency_ms: IntGauge,
    pub av_sync_delta_ms: Gauge,
    pub rtt_ms: Histogram,
    pub segment_duration_ms: Histogram,
    fallback: Vec<IntCounter>,
    cuts: Vec<IntCounter>,
    backpressure: Vec<(&'static str, IntCounter)>,
    stream_id: String,
}

impl StreamMetrics {
    /// Every series of `stream_id`, each existing from now on at zero: an
    /// operator's `rate()` and `absent()` alerts then see a stream that has
    /// not yet fallen back, reconnected or erred, instead of no series.
    pub fn announce(stream_id: &str) -> Self {
        let m = &*METRICS;
        let stream = &[stream_id];
        for counter in [
            &m.bytes_sent_total,
            &m.bytes_received_total,
            &m.gst_bus_errors_total,
        ] {
            counter.with_label_values(stream);
        }
        Self {
            fragments: m.fragments_total.with_label_values(stream),
            dubbed: m.dubbed_total.with_label_values(stream),
            late_answers: m.late_answers_total.with_label_values(stream),
            reconnects: m.reconnects_total.with_label_values(stream),
            inflight: m.inflight_fragments.with_label_values(stream),
            breaker_state: m.sts_breaker_state.with_label_values(stream),
            latency_ms: m.latency_ms.with_label_values(stream),
            av_sync_delta_ms: m.av_sync_delta_ms.with_label_values(stream),
            rtt_ms: m.sts_rtt_ms.with_label_values(stream),
            segment_duration_ms: m.segment_duration_ms.with_label_values(stream),
            cuts: CutReason::ALL
                .iter()
                .map(|reason| {
                    m.segment_cuts_total
                        .with_label_values(&[stream_id, reason.as_str()])
                })
                .collect(),
            fallback: FallbackReason::ALL
                .iter()
                .map(|reason| {
                    m.fallback_total
                        .with_label_values(&[stream_id, reason.as_str()])
                })
                .collect(),
            backpressure: Action::NAMES
                .iter()
                .map(|&action| {
                    let counter = m.backpressure_total.with_label_values(&[stream_id, action]);
                    (action, counter)
                })
                .collect(),
            stream_id: stream_id.to_owned(),
        }
    }

    /// The output's loudness, once it is measured (a stream in codec copy
    /// has none of these series), and its target when it has one.
    pub fn loudness(&self, readings: &Readings, target_lufs: Option<f64>) {
        let m = &*METRICS;
        if let Some(target) = target_lufs {
            m.loudness_target_lufs
                .with_label_values(&[self.stream_id.as_str()])
                .set(target);
        }
        let windows = [
            ("momentary", readings.momentary_lufs),
            ("short_term", readings.short_term_lufs),
            ("integrated", readings.integrated_lufs),
        ];
        for (window, value) in windows {
            if let Some(value) = value {
                m.loudness_lufs
                    .with_label_values(&[self.stream_id.as_str(), window])
                    .set(value);
            }
        }
        if let Some(peak) = readings.true_peak_dbtp {
            m.true_peak_dbtp
                .with_label_values(&[self.stream_id.as_str()])
                .set(peak);
        }
    }

    /// `worker_fallback_total{reason}` of this stream.
    pub fn fallback(&self, reason: FallbackReason) -> Option<&IntCounter> {
        let index = FallbackReason::ALL.iter().position(|r| *r == reason)?;
        self.fallback.get(index)
    }

    /// `worker_segment_cuts_total{reason}` of this stream.
    pub fn cuts(&self, reason: CutReason) -> Option<&IntCounter> {
        let index = CutReason::ALL.iter().position(|r| *r == reason)?;
        self.cuts.get(index)
    }

    /// `worker_backpressure_total{action}` of this stream.
    pub fn backpressure(&self, action: &str) -> Option<&IntCounter> {
        self.backpressure
            .iter()
            .find(|(name, _)| *name == action)
            .map(|(_, counter)| counter)
    }
}

/// The byte counters of one stream, for its STS connections.
pub fn traffic(stream_id: &str) -> Traffic {
    Traffic {
        sent: METRICS.bytes_sent_total.with_label_values(&[stream_id]),
        received: METRICS.bytes_received_total.with_label_values(&[stream_id]),
    }
}

/// The registry in Prometheus text format.
pub fn render() -> String {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
