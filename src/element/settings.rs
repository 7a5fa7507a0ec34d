//! The element's settings: property names, defaults and ranges, their
//! GParamSpecs, reading and writing them by name, and the checks made when
//! the element starts. No pads and no state; two things come from outside
//! the properties: the defaults of `metrics-address` and `auth-token` read
//! the environment (`STSDUB_METRICS_ADDRESS`, `STSDUB_AUTH_TOKEN`, so a
//! token from a Kubernetes Secret never appears on a command line), and the
//! start-up check of `tls-ca-file` reads that file.

use gst::glib;
use gst::prelude::*;

use crate::sts::Secret;
use crate::sts::breaker;
use crate::timeline::cut_policy::{self, CutRules};
use crate::timeline::scheduler;
use crate::timeline::segmenter::TimelineRules;

pub(super) const PROP_STS_URL: &str = "sts-url";
pub(super) const PROP_STREAM_ID: &str = "stream-id";
pub(super) const PROP_WORKER_ID: &str = "worker-id";
pub(super) const PROP_SOURCE_LANGUAGE: &str = "source-language";
pub(super) const PROP_TARGET_LANGUAGE: &str = "target-language";
pub(super) const PROP_VOICE_PROFILE: &str = "voice-profile";
pub(super) const PROP_SEGMENT_DURATION: &str = "segment-duration";
pub(super) const PROP_LATENCY: &str = "latency";
pub(super) const PROP_TIMEOUT: &str = "timeout";
pub(super) const PROP_MAX_INFLIGHT: &str = "max-inflight";
pub(super) const PROP_STATS: &str = "stats";
pub(super) const PROP_METRICS_ADDRESS: &str = "metrics-address";
pub(super) const PROP_ARCHIVE_DIR: &str = "archive-dir";
pub(super) const PROP_AUTH_TOKEN: &str = "auth-token";
pub(super) const PROP_TLS_CA_FILE: &str = "tls-ca-file";
pub(super) const PROP_RECONNECT_DELAY: &str = "reconnect-delay";
pub(super) const PROP_RECONNECT_ATTEMPTS: &str = "reconnect-attempts";
pub(super) const PROP_ERROR_AFTER_RECONNECTS: &str = "error-after-reconnect-attempts";
pub(super) const PROP_BREAKER_THRESHOLD: &str = "breaker-failure-threshold";
pub(super) const PROP_BREAKER_COOLDOWN: &str = "breaker-cooldown";
pub(super) const PROP_SEGMENTATION: &str = "segmentation";
pub(super) const PROP_MIN_SEGMENT_DURATION: &str = "min-segment-duration";
pub(super) const PROP_MIN_PAUSE: &str = "min-pause-duration";
pub(super) const PROP_PAUSE_THRESHOLD: &str = "pause-threshold";
pub(super) const PROP_ALIGNMENT_THRESHOLD: &str = "alignment-threshold";
pub(super) const PROP_DISCONT_WAIT: &str = "discont-wait";
pub(super) const PROP_FIT: &str = "fit";
pub(super) const PROP_MAX_STRETCH: &str = "max-stretch";
pub(super) const PROP_ORIGINAL_VOLUME: &str = "original-volume";
pub(super) const PROP_BITRATE: &str = "bitrate";
pub(super) const PROP_ENCODER_SPEED: &str = "encoder-speed";

const DEFAULT_STS_URL: &str = "http://127.0.0.1:8000";
pub(super) const DEFAULT_STREAM_ID: &str = "stream";
const DEFAULT_WORKER_ID: &str = "stsdub";
const DEFAULT_SOURCE_LANGUAGE: &str = "en";
const DEFAULT_TARGET_LANGUAGE: &str = "es";
const DEFAULT_VOICE_PROFILE: &str = "default";
const DEFAULT_SEGMENT_DURATION_MS: u32 = 6_000;
const DEFAULT_TIMEOUT_MS: u32 = 8_000;
/// -1: segment + timeout + processing allowance + deadline margin
/// (`scheduler::coherent_latency`): an answer within the timeout is never late.
const AUTO_LATENCY: i32 = -1;
/// 0: 40 % of segment-duration.
const AUTO_MIN_SEGMENT: u32 = 0;
const AUTO_SHORTEST_PERCENT: u64 = 40;
const DEFAULT_MIN_PAUSE_MS: u32 = 150;
/// A quarter of the way from the floor up: a fricative 5 dB over a crowd
/// still counts as speech (measured on the speech clip of the tests).
const DEFAULT_PAUSE_THRESHOLD_PERCENT: u32 = 25;
/// GStreamer's audio sink defaults.
const DEFAULT_ALIGNMENT_THRESHOLD_MS: u32 = 40;
const DEFAULT_DISCONT_WAIT_MS: u32 = 1_000;
const DEFAULT_MAX_INFLIGHT: u32 = 3;
/// 0: the input's bitrate, measured on its first segment (128 kb/s until then).
const AUTO_BITRATE: u32 = 0;
const MIN_BITRATE: u32 = 8_000;
const MAX_BITRATE: u32 = 576_000;
/// The plan's backoff: 2, 4, 8, 16, 32 s.
const DEFAULT_RECONNECT_DELAY_MS: u32 = 2_000;
const DEFAULT_RECONNECT_ATTEMPTS: u32 = 5;
const DEFAULT_BREAKER_COOLDOWN_MS: u32 = 30_000;

const MIN_SEGMENT_DURATION_MS: u32 = 500;
const MAX_SEGMENT_DURATION_MS: u32 = 60_000;
const MAX_LATENCY_MS: u32 = 300_000;
const MIN_TIMEOUT_MS: u32 = 100;
const MAX_TIMEOUT_MS: u32 = 120_000;
const MAX_MAX_INFLIGHT: u32 = 32;

/// How segments are cut (the `segmentation` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstStsDubSegmentation")]
pub enum Segmentation {
    #[enum_value(
        name = "Fixed: every segment segment-duration long (the plan's)",
        nick = "fixed"
    )]
    Fixed = 0,
    #[enum_value(
        name = "Pauses: cut in a pause of the speech, between min-segment-duration and segment-duration",
        nick = "pauses"
    )]
    Pauses = 1,
}

/// The longest `stream-id` or `worker-id`: they travel as HTTP headers, in
/// every payload and in every log line.
const MAX_IDENTIFIER_LEN: usize = 128;

/// Why `value` cannot be a stream or worker id, if it cannot.
fn check_identifier(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.len() > MAX_IDENTIFIER_LEN {
        return Err("is too long");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("holds a space, a control or a non-ASCII character");
    }
    Ok(())
}

/// How dubbed audio longer than its segment is made to fit (`fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstStsDubFit")]
pub enum Fit {
    #[enum_value(
        name = "Trim: dubbed audio longer than its segment is cut at the segment's end",
        nick = "trim"
    )]
    Trim = 0,
    #[enum_value(
        name = "Stretch: longer dubbed speech is sped up with its pitch kept (scaletempo), by at most max-stretch, then trimmed with a fade",
        nick = "stretch"
    )]
    Stretch = 1,
}

/// How hard the AAC encoder works when the audio is re-encoded (`encoder-speed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstStsDubEncoderSpeed")]
pub enum EncoderSpeed {
    #[enum_value(
        name = "Quality: avenc_aac's two-loop search (its default)",
        nick = "quality"
    )]
    Quality = 0,
    #[enum_value(
        name = "Fast: avenc_aac's fast search, about a third less CPU, lower quality",
        nick = "fast"
    )]
    Fast = 1,
}

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) sts_url: String,
    pub(super) stream_id: String,
    pub(super) worker_id: String,
    pub(super) source_language: String,
    pub(super) target_language: String,
    pub(super) voice_profile: String,
    pub(super) segment_duration: gst::ClockTime,
    pub(super) segmentation: Segmentation,
    /// ZERO: 40 % of `segment_duration`.
    pub(super) min_segment_duration: gst::ClockTime,
    pub(super) min_pause: gst::ClockTime,
    pub(super) pause_threshold: u32,
    pub(super) alignment_threshold: gst::ClockTime,
    pub(super) discont_wait: gst::ClockTime,
    pub(super) fit: Fit,
    pub(super) max_stretch: f64,
    /// Gain of the original under the dubbed voice (0: the dub replaces it).
    pub(super) original_volume: f64,
    /// AAC bitrate when re-encoding, bits/s; 0: the input's.
    pub(super) bitrate: u32,
    pub(super) encoder_speed: EncoderSpeed,
    /// None: follows segment-duration and timeout (see `latency_in_force`).
    pub(super) latency: Option<gst::ClockTime>,
    pub(super) timeout: gst::ClockTime,
    pub(super) max_inflight: u32,
    pub(super) reconnect_delay: gst::ClockTime,
    pub(super) reconnect_attempts: u32,
    pub(super) error_after_reconnects: bool,
    pub(super) breaker_threshold: u32,
    pub(super) breaker_cooldown: gst::ClockTime,
    pub(super) auth_token: Option<Secret>,
    pub(super) tls_ca_file: Option<String>,
    pub(super) metrics_address: Option<String>,
    pub(super) archive_dir: Option<String>,
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            sts_url: DEFAULT_STS_URL.into(),
            stream_id: DEFAULT_STREAM_ID.into(),
            worker_id: DEFAULT_WORKER_ID.into(),
            source_language: DEFAULT_SOURCE_LANGUAGE.into(),
            target_language: DEFAULT_TARGET_LANGUAGE.into(),
            voice_profile: DEFAULT_VOICE_PROFILE.into(),
            segment_duration: gst::ClockTime::from_mseconds(DEFAULT_SEGMENT_DURATION_MS.into()),
            segmentation: Segmentation::Fixed,
            min_segment_duration: gst::ClockTime::from_mseconds(AUTO_MIN_SEGMENT.into()),
            min_pause: gst::ClockTime::from_mseconds(DEFAULT_MIN_PAUSE_MS.into()),
            pause_threshold: DEFAULT_PAUSE_THRESHOLD_PERCENT,
            alignment_threshold: gst::ClockTime::from_mseconds(
                DEFAULT_ALIGNMENT_THRESHOLD_MS.into(),
            ),
            discont_wait: gst::ClockTime::from_mseconds(DEFAULT_DISCONT_WAIT_MS.into()),
            fit: Fit::Trim,
            max_stretch: crate::audio::fit::DEFAULT_MAX_STRETCH,
            original_volume: 0.0,
            bitrate: AUTO_BITRATE,
            encoder_speed: EncoderSpeed::Quality,
            latency: None,
            timeout: gst::ClockTime::from_mseconds(DEFAULT_TIMEOUT_MS.into()),
            max_inflight: DEFAULT_MAX_INFLIGHT,
            reconnect_delay: gst::ClockTime::from_mseconds(DEFAULT_RECONNECT_DELAY_MS.into()),
            reconnect_attempts: DEFAULT_RECONNECT_ATTEMPTS,
            error_after_reconnects: false,
            breaker_threshold: breaker::DEFAULT_FAILURE_THRESHOLD,
            breaker_cooldown: gst::ClockTime::from_mseconds(DEFAULT_BREAKER_COOLDOWN_MS.into()),
            auth_token: non_empty_env("STSDUB_AUTH_TOKEN").map(Secret),
            tls_ca_file: None,
            // Off unless asked for, by property or environment.
            metrics_address: non_empty_env("STSDUB_METRICS_ADDRESS"),
            archive_dir: None,
        }
    }
}

/// Every property of the element, with its blurb, range and default.
pub(super) fn param_specs() -> Vec<glib::ParamSpec> {
    let text = |name: &str, nick: &str, blurb: &str, default: &str| {
        glib::ParamSpecString::builder(name)
            .nick(nick)
            .blurb(blurb)
            .default_value(Some(default))
            .mutable_ready()
            .build()
    };
    let millis = |name: &str, nick: &str, blurb: &str, min: u32, max: u32, default: u32| {
        glib::ParamSpecUInt::builder(name)
            .nick(nick)
            .blurb(blurb)
            .minimum(min)
            .maximum(max)
            .default_value(default)
            .mutable_ready()
            .build()
    };
    vec![
                text(PROP_STS_URL, "STS URL", "Socket.IO URL of the speech-to-speech service (http://, https://, ws:// or wss://)", DEFAULT_STS_URL),
                text(PROP_STREAM_ID, "Stream ID", "Stream identifier sent to the STS (X-Stream-ID header, stream_id fields) and written in logs", DEFAULT_STREAM_ID),
                text(PROP_WORKER_ID, "Worker ID", "Worker identifier sent to the STS (X-Worker-ID header, worker_id field)", DEFAULT_WORKER_ID),
                text(PROP_SOURCE_LANGUAGE, "Source language", "Language spoken in the input (e.g. en)", DEFAULT_SOURCE_LANGUAGE),
                text(PROP_TARGET_LANGUAGE, "Target language", "Language to dub into (e.g. es)", DEFAULT_TARGET_LANGUAGE),
                text(PROP_VOICE_PROFILE, "Voice profile", "Voice profile the STS should speak with", DEFAULT_VOICE_PROFILE),
                millis(PROP_SEGMENT_DURATION, "Segment duration", "Duration of the audio segments sent to the STS, in milliseconds (cut on AAC frame boundaries); with segmentation=pauses, the longest a segment may be", MIN_SEGMENT_DURATION_MS, MAX_SEGMENT_DURATION_MS, DEFAULT_SEGMENT_DURATION_MS),
                glib::ParamSpecEnum::builder_with_default(PROP_SEGMENTATION, Segmentation::Fixed)
                    .nick("Segmentation")
                    .blurb("fixed: every segment segment-duration long; pauses: a segment closes in a pause of the speech once min-segment-duration long, at the latest at segment-duration (then at its quietest frame boundary)")
                    .mutable_ready()
                    .build(),
                millis(PROP_MIN_SEGMENT_DURATION, "Min segment duration", "segmentation=pauses: the shortest a segment may be, in milliseconds (0: 40 % of segment-duration)", 0, MAX_SEGMENT_DURATION_MS, AUTO_MIN_SEGMENT),
                millis(PROP_MIN_PAUSE, "Min pause duration", "segmentation=pauses: the shortest quiet that counts as a pause, in milliseconds; the cut is made at its deepest point", 20, 2_000, DEFAULT_MIN_PAUSE_MS),
                glib::ParamSpecUInt::builder(PROP_PAUSE_THRESHOLD)
                    .nick("Pause threshold")
                    .blurb("segmentation=pauses: where quiet ends, in percent of the way from the programme's noise floor to its speech level (in dB, both measured on the decoded audio over the last 10 s)")
                    .minimum(1)
                    .maximum(99)
                    .default_value(DEFAULT_PAUSE_THRESHOLD_PERCENT)
                    .mutable_ready()
                    .build(),
                millis(PROP_ALIGNMENT_THRESHOLD, "Alignment threshold", "Input timestamps within this many milliseconds of the position their sample count gives are continuous (jitter is ignored)", 1, 10_000, DEFAULT_ALIGNMENT_THRESHOLD_MS),
                millis(PROP_DISCONT_WAIT, "Discont wait", "How long, in milliseconds, timestamps must drift beyond alignment-threshold before the timeline re-anchors (a DISCONT flag re-anchors at once)", 0, 60_000, DEFAULT_DISCONT_WAIT_MS),
                glib::ParamSpecEnum::builder_with_default(PROP_FIT, Fit::Trim)
                    .nick("Fit")
                    .blurb("trim: dubbed audio longer than its segment is cut at the segment's end (codec copy); stretch: longer dubbed speech is sped up with its pitch kept, by at most max-stretch, then trimmed with a fade (the audio is re-encoded)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder(PROP_MAX_STRETCH)
                    .nick("Max stretch")
                    .blurb("fit=stretch: the most dubbed speech is sped up (1.25: 25 % faster); what is still too long is trimmed with a fade")
                    .minimum(1.0)
                    .maximum(crate::audio::fit::MAX_MAX_STRETCH)
                    .default_value(crate::audio::fit::DEFAULT_MAX_STRETCH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder(PROP_ORIGINAL_VOLUME)
                    .nick("Original volume")
                    .blurb("Gain of the original audio under the dubbed voice, 0 to 1 (0: the dub replaces it, codec copy; above 0: voice-over, the audio is decoded, mixed and re-encoded to AAC). Segments that fall back go out at full level")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(0.0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_BITRATE)
                    .nick("Bitrate")
                    .blurb("AAC bitrate in bits/s when the audio is re-encoded (fit=stretch or original-volume above 0), 8000 to 576000; 0: the input's, measured on its first segment")
                    .minimum(AUTO_BITRATE)
                    .maximum(MAX_BITRATE)
                    .default_value(AUTO_BITRATE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(PROP_ENCODER_SPEED, EncoderSpeed::Quality)
                    .nick("Encoder speed")
                    .blurb("When the audio is re-encoded: quality (avenc_aac's two-loop search) or fast (its fast search: about a third less CPU, lower quality)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder(PROP_LATENCY)
                    .nick("Latency")
                    .blurb("Latency this element adds in a live pipeline, in milliseconds; a segment with no answer by its start + latency goes out as original audio. -1: segment-duration + timeout + 500, so that every answer within the timeout is used")
                    .minimum(AUTO_LATENCY)
                    .maximum(MAX_LATENCY_MS as i32)
                    .default_value(AUTO_LATENCY)
                    .mutable_ready()
                    .build(),
                millis(PROP_TIMEOUT, "Timeout", "Longest wait for the STS to answer one segment, in milliseconds, before its original audio goes out", MIN_TIMEOUT_MS, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS),
                glib::ParamSpecBoxed::builder::<gst::Structure>(PROP_STATS)
                    .nick("Statistics")
                    .blurb("Segments, dubbed, fallback, late answers, last round trip (ms), A/V delta of the output (ms, audio minus video running time), latency (ms), breaker state")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder(PROP_METRICS_ADDRESS)
                    .nick("Metrics address")
                    .blurb("host:port to serve Prometheus GET /metrics and the /healthz, /readyz probes on, once per process for all stsdub elements (default: $STSDUB_METRICS_ADDRESS, else off)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder(PROP_ARCHIVE_DIR)
                    .nick("Archive directory")
                    .blurb("Keep every segment as {dir}/{stream-id}/{batch:06}_audio.m4a and its dubbed audio as _dubbed.m4a, written off the streaming thread (default: off)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder(PROP_AUTH_TOKEN)
                    .nick("Auth token")
                    .blurb("Token for the STS, sent as the Socket.IO CONNECT auth {\"token\": …} and as Authorization: Bearer; write-only, never logged (default: $STSDUB_AUTH_TOKEN, else none)")
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder(PROP_TLS_CA_FILE)
                    .nick("TLS CA file")
                    .blurb("PEM file of CA certificates to trust for wss:// / https:// besides the system's (certificates are always verified)")
                    .mutable_ready()
                    .build(),
                millis(PROP_RECONNECT_DELAY, "Reconnect delay", "Wait before the first reconnect attempt, in milliseconds; it doubles with each attempt (2000: 2, 4, 8, 16, 32 s)", 100, 600_000, DEFAULT_RECONNECT_DELAY_MS),
                glib::ParamSpecUInt::builder(PROP_RECONNECT_ATTEMPTS)
                    .nick("Reconnect attempts")
                    .blurb("Reconnect attempts with a doubling delay; after them the longest delay repeats, or an error is posted when error-after-reconnect-attempts is set")
                    .minimum(1)
                    .maximum(30)
                    .default_value(DEFAULT_RECONNECT_ATTEMPTS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_ERROR_AFTER_RECONNECTS)
                    .nick("Error after reconnect attempts")
                    .blurb("Post an error once the reconnect attempts are used up (for an orchestrator to restart the worker) instead of running on original audio and probing on")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_BREAKER_THRESHOLD)
                    .nick("Breaker failure threshold")
                    .blurb("Consecutive retryable STS failures (TIMEOUT, MODEL_ERROR, GPU_OOM, QUEUE_FULL, RATE_LIMIT) that open the circuit breaker")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(breaker::DEFAULT_FAILURE_THRESHOLD)
                    .mutable_ready()
                    .build(),
                millis(PROP_BREAKER_COOLDOWN, "Breaker cooldown", "Time the circuit breaker stays open before one probe fragment is sent, in milliseconds", 100, 3_600_000, DEFAULT_BREAKER_COOLDOWN_MS),
                glib::ParamSpecUInt::builder(PROP_MAX_INFLIGHT)
                    .nick("Max in flight")
                    .blurb("Most segments sent to the STS and not yet answered (the STS's stream:ready may lower it)")
                    .minimum(1)
                    .maximum(MAX_MAX_INFLIGHT)
                    .default_value(DEFAULT_MAX_INFLIGHT)
                    .mutable_ready()
                    .build(),
            ]
}

impl Settings {
    /// Sets the property `name` from `value`; false for a property that is
    /// not a setting (`stats`) or unknown.
    pub(super) fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        let text = || {
            value
                .get::<Option<String>>()
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let optional_text = || Some(text()).filter(|t| !t.is_empty());
        let millis = || gst::ClockTime::from_mseconds(value.get::<u32>().map_or(0, u64::from));
        let count = |default: u32| value.get::<u32>().unwrap_or(default);
        match name {
            PROP_STS_URL => self.sts_url = text(),
            PROP_STREAM_ID => self.stream_id = text(),
            PROP_WORKER_ID => self.worker_id = text(),
            PROP_SOURCE_LANGUAGE => self.source_language = text(),
            PROP_TARGET_LANGUAGE => self.target_language = text(),
            PROP_VOICE_PROFILE => self.voice_profile = text(),
            PROP_SEGMENT_DURATION => self.segment_duration = millis(),
            PROP_SEGMENTATION => {
                self.segmentation = value.get::<Segmentation>().unwrap_or(Segmentation::Fixed)
            }
            PROP_MIN_SEGMENT_DURATION => self.min_segment_duration = millis(),
            PROP_MIN_PAUSE => self.min_pause = millis(),
            PROP_PAUSE_THRESHOLD => self.pause_threshold = count(DEFAULT_PAUSE_THRESHOLD_PERCENT),
            PROP_ALIGNMENT_THRESHOLD => self.alignment_threshold = millis(),
            PROP_DISCONT_WAIT => self.discont_wait = millis(),
            PROP_FIT => self.fit = value.get::<Fit>().unwrap_or(Fit::Trim),
            PROP_MAX_STRETCH => {
                self.max_stretch = value
                    .get::<f64>()
                    .unwrap_or(crate::audio::fit::DEFAULT_MAX_STRETCH)
            }
            PROP_ORIGINAL_VOLUME => self.original_volume = value.get::<f64>().unwrap_or(0.0),
            PROP_BITRATE => self.bitrate = count(AUTO_BITRATE),
            PROP_ENCODER_SPEED => {
                self.encoder_speed = value.get::<EncoderSpeed>().unwrap_or(EncoderSpeed::Quality)
            }
            PROP_LATENCY => {
                self.latency = value
                    .get::<i32>()
                    .ok()
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(gst::ClockTime::from_mseconds)
            }
            PROP_TIMEOUT => self.timeout = millis(),
            PROP_MAX_INFLIGHT => self.max_inflight = count(DEFAULT_MAX_INFLIGHT),
            PROP_AUTH_TOKEN => self.auth_token = optional_text().map(Secret),
            PROP_TLS_CA_FILE => self.tls_ca_file = optional_text(),
            PROP_METRICS_ADDRESS => self.metrics_address = optional_text(),
            PROP_ARCHIVE_DIR => self.archive_dir = optional_text(),
            PROP_RECONNECT_DELAY => self.reconnect_delay = millis(),
            PROP_RECONNECT_ATTEMPTS => self.reconnect_attempts = count(DEFAULT_RECONNECT_ATTEMPTS),
            PROP_ERROR_AFTER_RECONNECTS => {
                self.error_after_reconnects = value.get::<bool>().unwrap_or(false)
            }
            PROP_BREAKER_THRESHOLD => {
                self.breaker_threshold = count(breaker::DEFAULT_FAILURE_THRESHOLD)
            }
            PROP_BREAKER_COOLDOWN => self.breaker_cooldown = millis(),
            _ => return false,
        }
        true
    }

    /// The value of the property `name`; None for one that is not a setting
    /// or is write-only (`auth-token`).
    pub(super) fn get(&self, name: &str) -> Option<glib::Value> {
        let millis = |t: gst::ClockTime| (t.mseconds() as u32).to_value();
        Some(match name {
            PROP_STS_URL => self.sts_url.to_value(),
            PROP_STREAM_ID => self.stream_id.to_value(),
            PROP_WORKER_ID => self.worker_id.to_value(),
            PROP_SOURCE_LANGUAGE => self.source_language.to_value(),
            PROP_TARGET_LANGUAGE => self.target_language.to_value(),
            PROP_VOICE_PROFILE => self.voice_profile.to_value(),
            PROP_SEGMENT_DURATION => millis(self.segment_duration),
            PROP_SEGMENTATION => self.segmentation.to_value(),
            PROP_MIN_SEGMENT_DURATION => millis(self.min_segment_duration),
            PROP_MIN_PAUSE => millis(self.min_pause),
            PROP_PAUSE_THRESHOLD => self.pause_threshold.to_value(),
            PROP_ALIGNMENT_THRESHOLD => millis(self.alignment_threshold),
            PROP_DISCONT_WAIT => millis(self.discont_wait),
            PROP_FIT => self.fit.to_value(),
            PROP_MAX_STRETCH => self.max_stretch.to_value(),
            PROP_ORIGINAL_VOLUME => self.original_volume.to_value(),
            PROP_BITRATE => self.bitrate.to_value(),
            PROP_ENCODER_SPEED => self.encoder_speed.to_value(),
            PROP_LATENCY => self
                .latency
                .map_or(AUTO_LATENCY, |l| l.mseconds() as i32)
                .to_value(),
            PROP_TIMEOUT => millis(self.timeout),
            PROP_MAX_INFLIGHT => self.max_inflight.to_value(),
            PROP_TLS_CA_FILE => self.tls_ca_file.to_value(),
            PROP_METRICS_ADDRESS => self.metrics_address.to_value(),
            PROP_ARCHIVE_DIR => self.archive_dir.to_value(),
            PROP_RECONNECT_DELAY => millis(self.reconnect_delay),
            PROP_RECONNECT_ATTEMPTS => self.reconnect_attempts.to_value(),
            PROP_ERROR_AFTER_RECONNECTS => self.error_after_reconnects.to_value(),
            PROP_BREAKER_THRESHOLD => self.breaker_threshold.to_value(),
            PROP_BREAKER_COOLDOWN => millis(self.breaker_cooldown),
            _ => return None,
        })
    }

    /// What the element checks as it starts: an error naming the property
    /// and what it expects, or a warning about a latency that cannot hold
    /// an answer that comes within the timeout.
    pub(super) fn validate(&self) -> Result<Option<String>, gst::ErrorMessage> {
        if let Err(e) = crate::sts::socketio::engine_io_url(&self.sts_url) {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                [
                    "property {PROP_STS_URL}: {e}; expected http://, https://, ws:// or wss:// with a host"
                ]
            ));
        }
        if let Some(path) = &self.tls_ca_file
            && let Err(e) = crate::sts::socketio::tls_config(Some(std::path::Path::new(path)))
        {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                [
                    "property {PROP_TLS_CA_FILE}: {e}; expected a readable PEM file of CA certificates"
                ]
            ));
        }
        for (name, value) in [
            (PROP_STREAM_ID, &self.stream_id),
            (PROP_WORKER_ID, &self.worker_id),
        ] {
            if let Err(why) = check_identifier(value) {
                return Err(gst::error_msg!(
                    gst::LibraryError::Settings,
                    [
                        "property {name} = '{}' {why}; expected 1 to {MAX_IDENTIFIER_LEN} characters, printable ASCII without spaces (it is sent as an HTTP header)",
                        crate::sts::socketio::bounded(value)
                    ]
                ));
            }
        }
        if self.min_segment_duration > self.segment_duration {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                [
                    "property {PROP_MIN_SEGMENT_DURATION} = {} ms is above {PROP_SEGMENT_DURATION} = {} ms; expected 0 (40 % of it) up to {PROP_SEGMENT_DURATION}",
                    self.min_segment_duration.mseconds(),
                    self.segment_duration.mseconds()
                ]
            ));
        }
        if self.bitrate != AUTO_BITRATE && self.bitrate < MIN_BITRATE {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                [
                    "property {PROP_BITRATE} = {} is too low; expected 0 (the input's) or {MIN_BITRATE} to {MAX_BITRATE} bits/s",
                    self.bitrate
                ]
            ));
        }
        Ok(self.latency_warning())
    }

    /// Whether the output audio is decoded, mixed and re-encoded rather
    /// than codec copy.
    pub(super) fn reencodes(&self) -> bool {
        self.fit == Fit::Stretch || self.original_volume > 0.0
    }

    pub(super) fn fit_rules(&self) -> crate::audio::fit::FitRules {
        crate::audio::fit::FitRules {
            mode: match self.fit {
                Fit::Trim => crate::audio::fit::FitMode::Trim,
                Fit::Stretch => crate::audio::fit::FitMode::Stretch,
            },
            max_stretch: self.max_stretch,
        }
    }

    /// How the re-encoder encodes: the bitrate (None: the input's) and speed.
    pub(super) fn encoding(&self) -> crate::audio::reencode::Encoding {
        crate::audio::reencode::Encoding {
            bitrate: (self.bitrate != AUTO_BITRATE).then_some(self.bitrate),
            fast: self.encoder_speed == EncoderSpeed::Fast,
        }
    }

    /// The latency in a live pipeline: the property, or the smallest with
    /// which an answer within the timeout is never late.
    pub(super) fn latency_in_force(&self) -> gst::ClockTime {
        self.latency
            .unwrap_or_else(|| scheduler::coherent_latency(self.segment_duration, self.timeout))
    }

    /// What an explicit latency below the coherent one costs, in words.
    fn latency_warning(&self) -> Option<String> {
        let latency = self.latency?;
        let coherent = scheduler::coherent_latency(self.segment_duration, self.timeout);
        if latency >= coherent {
            return None;
        }
        let allowances = scheduler::PROCESSING_ALLOWANCE + scheduler::DEADLINE_MARGIN;
        let consequence = match scheduler::live_longest_segment(latency, self.segment_duration) {
            Some(longest) => format!(
                "segments are cut at {} ms so that the audio leaves in time, and every one goes out as original audio",
                longest.mseconds()
            ),
            None => format!(
                "segments whose STS answer takes longer than {} ms go out as original audio",
                latency
                    .saturating_sub(self.segment_duration + allowances)
                    .mseconds()
            ),
        };
        Some(format!(
            "property {PROP_LATENCY} = {} ms is below {PROP_SEGMENT_DURATION} + {PROP_TIMEOUT} + {} ms = {} ms: in a live pipeline, {consequence}",
            latency.mseconds(),
            allowances.mseconds(),
            coherent.mseconds()
        ))
    }

    /// The cut policy's rules, durations in ns.
    pub(super) fn cut_rules(&self) -> CutRules {
        let longest = self.segment_duration.nseconds();
        let shortest = if self.min_segment_duration.is_zero() {
            longest * AUTO_SHORTEST_PERCENT / 100
        } else {
            self.min_segment_duration.nseconds()
        };
        CutRules {
            segmentation: match self.segmentation {
                Segmentation::Fixed => cut_policy::Segmentation::Fixed,
                Segmentation::Pauses => cut_policy::Segmentation::Pauses,
            },
            shortest,
            longest,
            min_pause: self.min_pause.nseconds(),
            threshold_percent: self.pause_threshold,
        }
    }

    pub(super) fn timeline_rules(&self) -> TimelineRules {
        TimelineRules {
            alignment_threshold: self.alignment_threshold.nseconds(),
            discont_wait: self.discont_wait.nseconds(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_reads_back_its_default() {
        gst::init().expect("gst");
        let settings = Settings::default();
        for spec in param_specs() {
            if !spec.flags().contains(glib::ParamFlags::READABLE) || spec.name() == PROP_STATS {
                continue;
            }
            let Some(value) = settings.get(spec.name()) else {
                panic!("{} does not read back", spec.name());
            };
            assert_eq!(
                value.type_(),
                spec.value_type(),
                "{} reads back as its spec's type",
                spec.name()
            );
            if spec.name() != PROP_METRICS_ADDRESS {
                assert_eq!(
                    value.compare(spec.default_value()),
                    Some(std::cmp::Ordering::Equal),
                    "{} starts at its advertised default",
                    spec.name()
                );
            }
        }
    }

    #[test]
    fn latency_follows_segment_and_timeout_unless_set() {
        let mut settings = Settings::default();
        assert_eq!(settings.latency_in_force().mseconds(), 14_500);
        settings.segment_duration = gst::ClockTime::from_mseconds(2_500);
        settings.timeout = gst::ClockTime::from_mseconds(1_000);
        assert_eq!(settings.latency_in_force().mseconds(), 4_000);
        assert!(settings.set(PROP_LATENCY, &1200i32.to_value()));
        assert_eq!(settings.latency_in_force().mseconds(), 1_200);
        assert!(settings.set(PROP_LATENCY, &(-1i32).to_value()));
        assert_eq!(settings.latency, None);
        assert_eq!(
            settings.cut_rules().shortest,
            1_000_000_000,
            "40 % of 2.5 s"
        );
    }

    #[test]
    fn set_then_get_round_trips_and_unknown_names_are_refused() {
        let mut settings = Settings::default();
        assert!(settings.set(PROP_TIMEOUT, &1234u32.to_value()));
        assert_eq!(
            settings.get(PROP_TIMEOUT).and_then(|v| v.get::<u32>().ok()),
            Some(1234)
        );
        assert!(settings.set(PROP_ARCHIVE_DIR, &"".to_value()));
        assert_eq!(settings.archive_dir, None, "empty means off");
        assert!(!settings.set("no-such-property", &1u32.to_value()));
        assert!(!settings.set(PROP_STATS, &1u32.to_value()));
        assert!(settings.get(PROP_AUTH_TOKEN).is_none(), "write-only");
    }

    #[test]
    fn invalid_settings_name_the_property_and_what_it_expects() {
        let settings = Settings {
            sts_url: "ftp://x".into(),
            ..Settings::default()
        };
        let error = settings.validate().expect_err("bad URL");
        assert!(format!("{error:?}").contains(PROP_STS_URL), "{error:?}");
        let settings = Settings {
            stream_id: " ".into(),
            ..Settings::default()
        };
        let error = settings.validate().expect_err("empty stream id");
        assert!(format!("{error:?}").contains(PROP_STREAM_ID), "{error:?}");
        for (id, why) in [
            ("x".repeat(1024 * 1024), "is too long"),
            ("line\nbreak".to_owned(), "control"),
            ("partido-añejo".to_owned(), "non-ASCII"),
            (String::new(), "is empty"),
        ] {
            let settings = Settings {
                worker_id: id.clone(),
                ..Settings::default()
            };
            let error = format!("{:?}", settings.validate().expect_err("a bad id"));
            assert!(
                error.contains(PROP_WORKER_ID) && error.contains(why),
                "{error}"
            );
            assert!(
                error.len() < 600,
                "the message never carries the whole id: {} bytes",
                error.len()
            );
        }
        for id in ["match-1-es", "a", &"x".repeat(MAX_IDENTIFIER_LEN)] {
            let settings = Settings {
                stream_id: id.to_owned(),
                ..Settings::default()
            };
            assert!(settings.validate().is_ok(), "{id}");
        }
        let settings = Settings {
            sts_url: "http://127.0.0.1:99999".into(),
            ..Settings::default()
        };
        let error = format!("{:?}", settings.validate().expect_err("bad port"));
        assert!(error.contains("1 to 65535"), "{error}");
        let settings = Settings {
            latency: Some(gst::ClockTime::from_mseconds(1000)),
            ..Settings::default()
        };
        let warning = settings
            .validate()
            .expect("only a warning")
            .expect("a warning");
        assert!(warning.contains(PROP_LATENCY), "{warning}");
        assert!(warning.contains("cut at 800 ms"), "{warning}");
        assert!(
            warning.contains("every one goes out as original audio"),
            "{warning}"
        );
        let settings = Settings {
            latency: Some(gst::ClockTime::from_mseconds(10_000)),
            ..Settings::default()
        };
        let warning = settings.validate().expect("ok").expect("a warning");
        assert!(warning.contains("longer than 3500 ms"), "{warning}");
        let settings = Settings {
            min_segment_duration: gst::ClockTime::from_mseconds(7000),
            ..Settings::default()
        };
        let error = settings.validate().expect_err("shortest above longest");
        assert!(
            format!("{error:?}").contains(PROP_MIN_SEGMENT_DURATION),
            "{error:?}"
        );
        assert_eq!(Settings::default().validate().expect("valid"), None);
    }
}
