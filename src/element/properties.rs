// SPDX-License-Identifier: MPL-2.0

//! The element's properties as GObject sees them: their names, their
//! param specs (blurb, range, default), and reading and writing
//! [`Settings`] by name. The sentinels users write (`latency=-1`,
//! `min-segment-duration=0`, `bitrate=0`) exist only here; inside, they
//! are `None`.

use gst::glib;
use gst::prelude::*;

use super::settings::*;
use crate::sts::Secret;
use crate::sts::breaker;

/// -1: segment + timeout + processing allowance + deadline margin
/// (`scheduler::coherent_latency`): an answer within the timeout is never late.
pub(super) const AUTO_LATENCY: i32 = -1;
/// 0: 20 % of segment-duration.
const AUTO_MIN_SEGMENT: u32 = 0;
/// 0: the input's bitrate, measured on its first segment (128 kb/s until then).
const AUTO_BITRATE: u32 = 0;

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
        text(
            PROP_STS_URL,
            "STS URL",
            "Socket.IO URL of the speech-to-speech service (http://, https://, ws:// or wss://)",
            DEFAULT_STS_URL,
        ),
        text(
            PROP_STREAM_ID,
            "Stream ID",
            "Stream identifier sent to the STS (X-Stream-ID header, stream_id fields) and written in logs",
            DEFAULT_STREAM_ID,
        ),
        text(
            PROP_WORKER_ID,
            "Worker ID",
            "Worker identifier sent to the STS (X-Worker-ID header, worker_id field)",
            DEFAULT_WORKER_ID,
        ),
        text(
            PROP_SOURCE_LANGUAGE,
            "Source language",
            "Language spoken in the input (e.g. en)",
            DEFAULT_SOURCE_LANGUAGE,
        ),
        text(
            PROP_TARGET_LANGUAGE,
            "Target language",
            "Language to dub into (e.g. es)",
            DEFAULT_TARGET_LANGUAGE,
        ),
        text(
            PROP_VOICE_PROFILE,
            "Voice profile",
            "Voice profile the STS should speak with",
            DEFAULT_VOICE_PROFILE,
        ),
        millis(
            PROP_SEGMENT_DURATION,
            "Segment duration",
            "Duration of the audio segments sent to the STS, in milliseconds (cut on AAC frame boundaries); with segmentation=pauses, the longest a segment may be",
            MIN_SEGMENT_DURATION_MS,
            MAX_SEGMENT_DURATION_MS,
            DEFAULT_SEGMENT_DURATION_MS,
        ),
        glib::ParamSpecEnum::builder_with_default(PROP_SEGMENTATION, SegmentationProperty::Fixed)
            .nick("Segmentation")
            .blurb("fixed: every segment segment-duration long; pauses: a segment closes in a pause of the speech once min-segment-duration long, at the latest at segment-duration (then at its quietest frame boundary)")
            .mutable_ready()
            .build(),
        millis(
            PROP_MIN_SEGMENT_DURATION,
            "Min segment duration",
            "segmentation=pauses: the shortest a segment may be, in milliseconds (0: 20 % of segment-duration)",
            0,
            MAX_SEGMENT_DURATION_MS,
            AUTO_MIN_SEGMENT,
        ),
        millis(
            PROP_MIN_PAUSE,
            "Min pause duration",
            "segmentation=pauses: the shortest quiet that counts as a pause, in milliseconds; the cut is made at its deepest point",
            20,
            2_000,
            DEFAULT_MIN_PAUSE_MS,
        ),
        glib::ParamSpecUInt::builder(PROP_PAUSE_THRESHOLD)
            .nick("Pause threshold")
            .blurb("segmentation=pauses: where quiet ends, in percent of the way from the programme's noise floor to its speech level (in dB, each of four frequency bands against its own, all measured on the decoded audio over the last 10 s)")
            .minimum(1)
            .maximum(99)
            .default_value(DEFAULT_PAUSE_THRESHOLD_PERCENT)
            .mutable_ready()
            .build(),
        millis(
            PROP_ALIGNMENT_THRESHOLD,
            "Alignment threshold",
            "Input timestamps within this many milliseconds of the position their sample count gives are continuous (jitter is ignored)",
            1,
            10_000,
            DEFAULT_ALIGNMENT_THRESHOLD_MS,
        ),
        millis(
            PROP_DISCONT_WAIT,
            "Discont wait",
            "How long, in milliseconds, timestamps must drift beyond alignment-threshold before the timeline re-anchors (a DISCONT flag re-anchors at once)",
            0,
            60_000,
            DEFAULT_DISCONT_WAIT_MS,
        ),
        glib::ParamSpecEnum::builder_with_default(PROP_FIT, FitProperty::Trim)
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
        glib::ParamSpecEnum::builder_with_default(PROP_LOUDNESS, LoudnessProperty::Off)
            .nick("Loudness")
            .blurb("off: the dub at the STS's level; match: each dubbed segment at the loudness of the original it replaces; target: the whole output at loudness-target within loudness-range (match and target re-encode the audio, with the true-peak limiter)")
            .mutable_ready()
            .build(),
        glib::ParamSpecDouble::builder(PROP_LOUDNESS_TARGET)
            .nick("Loudness target")
            .blurb("loudness=target: the output's integrated loudness, -70 to -5 LUFS (EBU R128: -23; ATSC A/85: -24)")
            .minimum(-70.0)
            .maximum(-5.0)
            .default_value(crate::audio::loudness::LoudnessRules::default().target_lufs)
            .mutable_ready()
            .build(),
        glib::ParamSpecDouble::builder(PROP_LOUDNESS_RANGE)
            .nick("Loudness range")
            .blurb("loudness=target: how far, in LU (1 to 40), a segment's gain may differ from the programme's, so quiet and loud passages keep up to this much of their difference")
            .minimum(1.0)
            .maximum(40.0)
            .default_value(crate::audio::loudness::LoudnessRules::default().range_lu)
            .mutable_ready()
            .build(),
        glib::ParamSpecDouble::builder(PROP_TRUE_PEAK)
            .nick("True peak")
            .blurb("Ceiling in dBTP (-9 to 0) of the look-ahead true-peak limiter, applied whenever the audio is re-encoded (EBU R128: -1; ATSC A/85: -2)")
            .minimum(-9.0)
            .maximum(0.0)
            .default_value(crate::audio::loudness::LoudnessRules::default().true_peak_dbtp)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default(PROP_ENCODER_SPEED, EncoderSpeed::Quality)
            .nick("Encoder speed")
            .blurb("When the audio is re-encoded: quality (avenc_aac's two-loop search) or fast (its fast search: about a third less CPU, lower quality)")
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default(PROP_CAPTIONS, CaptionsProperty::Off)
            .nick("Captions")
            .blurb("off, cea608, cea708 or both: each dubbed segment's words as captions (A/53 SEI) in the video frames its dub is heard with: 608 pop-on or roll-up, a 708 service; H.264 and H.265, the slices untouched")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder(PROP_CAPTION_CHANNEL)
            .nick("Caption channel")
            .blurb("The captions' channel, 1 to 4: 608's CC1–CC4 and the 708 service number")
            .minimum(1)
            .maximum(4)
            .default_value(1)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default(PROP_CAPTION_TEXT, CaptionTextProperty::Translation)
            .nick("Caption text")
            .blurb("translation: the dub's words; transcript: the words as said (source-language captions for the original track)")
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default(PROP_CAPTION_STYLE, CaptionStyleProperty::PopOn)
            .nick("Caption style")
            .blurb("pop-on: each caption shown whole at its segment's first frame; roll-up: typed row by row from it, two rows rolling up")
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
        millis(
            PROP_TIMEOUT,
            "Timeout",
            "Longest wait for the STS to answer one segment, in milliseconds, before its original audio goes out",
            MIN_TIMEOUT_MS,
            MAX_TIMEOUT_MS,
            DEFAULT_TIMEOUT_MS,
        ),
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
        millis(
            PROP_RECONNECT_DELAY,
            "Reconnect delay",
            "Wait before the first reconnect attempt, in milliseconds; it doubles with each attempt (2000: 2, 4, 8, 16, 32 s)",
            100,
            600_000,
            DEFAULT_RECONNECT_DELAY_MS,
        ),
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
        millis(
            PROP_BREAKER_COOLDOWN,
            "Breaker cooldown",
            "Time the circuit breaker stays open before one probe fragment is sent, in milliseconds",
            100,
            3_600_000,
            DEFAULT_BREAKER_COOLDOWN_MS,
        ),
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
        // GObject checked the value against the param spec: a wrong type
        // is a programming error, not input.
        const CHECKED: &str = "a value of its param spec's type";
        let text = || {
            value
                .get::<Option<String>>()
                .expect(CHECKED)
                .unwrap_or_default()
        };
        let optional_text = || Some(text()).filter(|t| !t.is_empty());
        let count = || value.get::<u32>().expect(CHECKED);
        let millis = || gst::ClockTime::from_mseconds(count().into());
        match name {
            PROP_STS_URL => self.sts_url = text(),
            PROP_STREAM_ID => self.stream_id = text(),
            PROP_WORKER_ID => self.worker_id = text(),
            PROP_SOURCE_LANGUAGE => self.source_language = text(),
            PROP_TARGET_LANGUAGE => self.target_language = text(),
            PROP_VOICE_PROFILE => self.voice_profile = text(),
            PROP_SEGMENT_DURATION => self.segment_duration = millis(),
            PROP_SEGMENTATION => self.segmentation = value.get().expect(CHECKED),
            PROP_MIN_SEGMENT_DURATION => {
                self.min_segment_duration = Some(millis()).filter(|d| !d.is_zero())
            }
            PROP_MIN_PAUSE => self.min_pause = millis(),
            PROP_PAUSE_THRESHOLD => self.pause_threshold = count(),
            PROP_ALIGNMENT_THRESHOLD => self.alignment_threshold = millis(),
            PROP_DISCONT_WAIT => self.discont_wait = millis(),
            PROP_FIT => self.fit = value.get().expect(CHECKED),
            PROP_MAX_STRETCH => self.max_stretch = value.get().expect(CHECKED),
            PROP_ORIGINAL_VOLUME => self.original_volume = value.get().expect(CHECKED),
            PROP_BITRATE => self.bitrate = Some(count()).filter(|b| *b != AUTO_BITRATE),
            PROP_ENCODER_SPEED => self.encoder_speed = value.get().expect(CHECKED),
            PROP_LOUDNESS => self.loudness = value.get().expect(CHECKED),
            PROP_LOUDNESS_TARGET => self.loudness_target = value.get().expect(CHECKED),
            PROP_LOUDNESS_RANGE => self.loudness_range = value.get().expect(CHECKED),
            PROP_TRUE_PEAK => self.true_peak = value.get().expect(CHECKED),
            PROP_CAPTIONS => self.captions = value.get().expect(CHECKED),
            PROP_CAPTION_CHANNEL => self.caption_channel = count(),
            PROP_CAPTION_TEXT => self.caption_text = value.get().expect(CHECKED),
            PROP_CAPTION_STYLE => self.caption_style = value.get().expect(CHECKED),
            PROP_LATENCY => {
                // AUTO_LATENCY (-1), the one negative value allowed: None.
                let ms = value.get::<i32>().expect(CHECKED);
                self.latency = u64::try_from(ms).ok().map(gst::ClockTime::from_mseconds)
            }
            PROP_TIMEOUT => self.timeout = millis(),
            PROP_MAX_INFLIGHT => self.max_inflight = count(),
            PROP_AUTH_TOKEN => self.auth_token = optional_text().map(Secret),
            PROP_TLS_CA_FILE => self.tls_ca_file = optional_text(),
            PROP_METRICS_ADDRESS => self.metrics_address = optional_text(),
            PROP_ARCHIVE_DIR => self.archive_dir = optional_text(),
            PROP_RECONNECT_DELAY => self.reconnect_delay = millis(),
            PROP_RECONNECT_ATTEMPTS => self.reconnect_attempts = count(),
            PROP_ERROR_AFTER_RECONNECTS => {
                self.error_after_reconnects = value.get().expect(CHECKED)
            }
            PROP_BREAKER_THRESHOLD => self.breaker_threshold = count(),
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
            PROP_MIN_SEGMENT_DURATION => {
                millis(self.min_segment_duration.unwrap_or(gst::ClockTime::ZERO))
            }
            PROP_MIN_PAUSE => millis(self.min_pause),
            PROP_PAUSE_THRESHOLD => self.pause_threshold.to_value(),
            PROP_ALIGNMENT_THRESHOLD => millis(self.alignment_threshold),
            PROP_DISCONT_WAIT => millis(self.discont_wait),
            PROP_FIT => self.fit.to_value(),
            PROP_MAX_STRETCH => self.max_stretch.to_value(),
            PROP_ORIGINAL_VOLUME => self.original_volume.to_value(),
            PROP_BITRATE => self.bitrate.unwrap_or(AUTO_BITRATE).to_value(),
            PROP_ENCODER_SPEED => self.encoder_speed.to_value(),
            PROP_LOUDNESS => self.loudness.to_value(),
            PROP_LOUDNESS_TARGET => self.loudness_target.to_value(),
            PROP_LOUDNESS_RANGE => self.loudness_range.to_value(),
            PROP_TRUE_PEAK => self.true_peak.to_value(),
            PROP_CAPTIONS => self.captions.to_value(),
            PROP_CAPTION_CHANNEL => self.caption_channel.to_value(),
            PROP_CAPTION_TEXT => self.caption_text.to_value(),
            PROP_CAPTION_STYLE => self.caption_style.to_value(),
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
}
