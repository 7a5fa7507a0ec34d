// SPDX-License-Identifier: MPL-2.0

//! The element's settings as typed values: defaults and ranges, the
//! checks made when the element starts, and the rules they give the
//! timeline, the STS client and the re-encoder. Their GObject face (names,
//! param specs, reading and writing by name) is `properties.rs`.
//!
//! No pads and no state; two things come from outside the properties: the defaults of `metrics-address` and `auth-token` read
//! the environment (`STSDUB_METRICS_ADDRESS`, `STSDUB_AUTH_TOKEN`, so a
//! token from a Kubernetes Secret never appears on a command line), and the
//! start-up check of `tls-ca-file` reads that file.

use gst::glib;

use crate::sts::Secret;
use crate::sts::breaker;
use crate::timeline::cut_policy::{self, CutRules};
use crate::timeline::scheduler;
use crate::timeline::segmenter::TimelineRules;

/// The property names, as users write them and messages name them.
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
pub(super) const PROP_CAPTIONS: &str = "captions";
pub(super) const PROP_CAPTION_CHANNEL: &str = "caption-channel";
pub(super) const PROP_CAPTION_TEXT: &str = "caption-text";
pub(super) const PROP_CAPTION_STYLE: &str = "caption-style";
pub(super) const PROP_LOUDNESS: &str = "loudness";
pub(super) const PROP_LOUDNESS_TARGET: &str = "loudness-target";
pub(super) const PROP_LOUDNESS_RANGE: &str = "loudness-range";
pub(super) const PROP_TRUE_PEAK: &str = "true-peak";

pub(super) const DEFAULT_STS_URL: &str = "http://127.0.0.1:8000";
pub(super) const DEFAULT_STREAM_ID: &str = "stream";
pub(super) const DEFAULT_WORKER_ID: &str = "stsdub";
pub(super) const DEFAULT_SOURCE_LANGUAGE: &str = "en";
pub(super) const DEFAULT_TARGET_LANGUAGE: &str = "es";
pub(super) const DEFAULT_VOICE_PROFILE: &str = "default";
pub(super) const DEFAULT_SEGMENT_DURATION_MS: u32 = 6_000;
pub(super) const DEFAULT_TIMEOUT_MS: u32 = 8_000;
/// With `min-segment-duration` 0, the shortest segment, in percent of the
/// longest: a window from 20 % to 100 % holds a gap between words where one
/// from 40 % may not (measured on the speech set, docs/users.md).
pub(super) const AUTO_SHORTEST_PERCENT: u64 = 20;
pub(super) const DEFAULT_MIN_PAUSE_MS: u32 = 150;
/// A quarter of the way from the floor up: a fricative 5 dB over a crowd
/// still counts as speech (measured on the speech clip of the tests).
pub(super) const DEFAULT_PAUSE_THRESHOLD_PERCENT: u32 = 25;
/// GStreamer's audio sink defaults.
pub(super) const DEFAULT_ALIGNMENT_THRESHOLD_MS: u32 = 40;
pub(super) const DEFAULT_DISCONT_WAIT_MS: u32 = 1_000;
pub(super) const DEFAULT_MAX_INFLIGHT: u32 = 3;
pub(super) const MIN_BITRATE: u32 = 8_000;
pub(super) const MAX_BITRATE: u32 = 576_000;
/// The plan's backoff: 2, 4, 8, 16, 32 s.
pub(super) const DEFAULT_RECONNECT_DELAY_MS: u32 = 2_000;
pub(super) const DEFAULT_RECONNECT_ATTEMPTS: u32 = 5;
pub(super) const DEFAULT_BREAKER_COOLDOWN_MS: u32 = 30_000;

pub(super) const MIN_SEGMENT_DURATION_MS: u32 = 500;
pub(super) const MAX_SEGMENT_DURATION_MS: u32 = 60_000;
pub(super) const MAX_LATENCY_MS: u32 = 300_000;
pub(super) const MIN_TIMEOUT_MS: u32 = 100;
pub(super) const MAX_TIMEOUT_MS: u32 = 120_000;
pub(super) const MAX_MAX_INFLIGHT: u32 = 32;

/// How segments are cut (the `segmentation` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstStsDubSegmentation")]
pub enum SegmentationProperty {
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
pub(super) const MAX_IDENTIFIER_LEN: usize = 128;

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
pub enum FitProperty {
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

/// The output's loudness (the `loudness` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstStsDubLoudness")]
pub enum LoudnessProperty {
    #[enum_value(
        name = "Off: the dub at the STS's level (codec copy unless re-encoded)",
        nick = "off"
    )]
    Off = 0,
    #[enum_value(
        name = "Match: each dubbed segment at the loudness of the original it replaces (re-encoded)",
        nick = "match"
    )]
    Match = 1,
    #[enum_value(
        name = "Target: the whole output at loudness-target, within loudness-range (re-encoded)",
        nick = "target"
    )]
    Target = 2,
}

impl From<LoudnessProperty> for crate::audio::loudness::LoudnessMode {
    fn from(property: LoudnessProperty) -> Self {
        match property {
            LoudnessProperty::Off => crate::audio::loudness::LoudnessMode::Off,
            LoudnessProperty::Match => crate::audio::loudness::LoudnessMode::Match,
            LoudnessProperty::Target => crate::audio::loudness::LoudnessMode::Target,
        }
    }
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

/// Captions in the video (the `captions` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstStsDubCaptions")]
pub enum CaptionsProperty {
    #[enum_value(name = "Off: no captions", nick = "off")]
    Off = 0,
    #[enum_value(
        name = "CEA-608: pop-on captions in the video's SEI (ATSC A/53), H.264 and H.265",
        nick = "cea608"
    )]
    Cea608 = 1,
    #[enum_value(
        name = "CEA-708: a caption service (number caption-channel) in the video's SEI, shown at its start",
        nick = "cea708"
    )]
    Cea708 = 2,
    #[enum_value(
        name = "Both: 608 on CCn and 708 service n (n = caption-channel) in the same frames",
        nick = "both"
    )]
    Both = 3,
}

/// Which words the captions show (the `caption-text` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstStsDubCaptionText")]
pub enum CaptionTextProperty {
    #[enum_value(name = "Translation: the words of the dub", nick = "translation")]
    Translation = 0,
    #[enum_value(
        name = "Transcript: the words as said (for the original track)",
        nick = "transcript"
    )]
    Transcript = 1,
}

/// How 608 captions come on screen (the `caption-style` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstStsDubCaptionStyle")]
pub enum CaptionStyleProperty {
    #[enum_value(
        name = "Pop-on: each caption loaded hidden and shown whole at its segment's frames",
        nick = "pop-on"
    )]
    PopOn = 0,
    #[enum_value(
        name = "Roll-up: typed row by row from its start, two rows on screen, rolling up",
        nick = "roll-up"
    )]
    RollUp = 1,
}

impl From<CaptionStyleProperty> for crate::captions::track::CaptionStyle {
    fn from(property: CaptionStyleProperty) -> Self {
        match property {
            CaptionStyleProperty::PopOn => Self::PopOn,
            CaptionStyleProperty::RollUp => Self::RollUp,
        }
    }
}

impl From<SegmentationProperty> for cut_policy::Segmentation {
    fn from(property: SegmentationProperty) -> Self {
        match property {
            SegmentationProperty::Fixed => cut_policy::Segmentation::Fixed,
            SegmentationProperty::Pauses => cut_policy::Segmentation::Pauses,
        }
    }
}

impl From<FitProperty> for crate::audio::fit::FitMode {
    fn from(property: FitProperty) -> Self {
        match property {
            FitProperty::Trim => crate::audio::fit::FitMode::Trim,
            FitProperty::Stretch => crate::audio::fit::FitMode::Stretch,
        }
    }
}

/// The property enums, marked as plugin API so that documentation tools
/// (gst-inspect, hotdoc) describe them with the element.
pub(super) fn mark_enums_as_plugin_api() {
    use gst::prelude::*;
    for enum_type in [
        SegmentationProperty::static_type(),
        FitProperty::static_type(),
        EncoderSpeed::static_type(),
        CaptionsProperty::static_type(),
        CaptionTextProperty::static_type(),
        CaptionStyleProperty::static_type(),
        LoudnessProperty::static_type(),
    ] {
        enum_type.mark_as_plugin_api(gst::PluginAPIFlags::empty());
    }
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
    pub(super) segmentation: SegmentationProperty,
    /// None: 20 % of `segment_duration`.
    pub(super) min_segment_duration: Option<gst::ClockTime>,
    pub(super) min_pause: gst::ClockTime,
    pub(super) pause_threshold: u32,
    pub(super) alignment_threshold: gst::ClockTime,
    pub(super) discont_wait: gst::ClockTime,
    pub(super) fit: FitProperty,
    pub(super) max_stretch: f64,
    /// Gain of the original under the dubbed voice (0: the dub replaces it).
    pub(super) original_volume: f64,
    /// AAC bitrate when re-encoding, bits/s; None: the input's.
    pub(super) bitrate: Option<u32>,
    pub(super) encoder_speed: EncoderSpeed,
    pub(super) loudness: LoudnessProperty,
    /// LUFS.
    pub(super) loudness_target: f64,
    /// LU.
    pub(super) loudness_range: f64,
    /// dBTP, the limiter's ceiling whenever the audio is re-encoded.
    pub(super) true_peak: f64,
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
    pub(super) captions: CaptionsProperty,
    /// 608's CC1–CC4.
    pub(super) caption_channel: u32,
    pub(super) caption_text: CaptionTextProperty,
    pub(super) caption_style: CaptionStyleProperty,
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
            segmentation: SegmentationProperty::Fixed,
            min_segment_duration: None,
            min_pause: gst::ClockTime::from_mseconds(DEFAULT_MIN_PAUSE_MS.into()),
            pause_threshold: DEFAULT_PAUSE_THRESHOLD_PERCENT,
            alignment_threshold: gst::ClockTime::from_mseconds(
                DEFAULT_ALIGNMENT_THRESHOLD_MS.into(),
            ),
            discont_wait: gst::ClockTime::from_mseconds(DEFAULT_DISCONT_WAIT_MS.into()),
            fit: FitProperty::Trim,
            max_stretch: crate::audio::fit::DEFAULT_MAX_STRETCH,
            original_volume: 0.0,
            bitrate: None,
            encoder_speed: EncoderSpeed::Quality,
            loudness: LoudnessProperty::Off,
            loudness_target: crate::audio::loudness::LoudnessRules::default().target_lufs,
            loudness_range: crate::audio::loudness::LoudnessRules::default().range_lu,
            true_peak: crate::audio::loudness::LoudnessRules::default().true_peak_dbtp,
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
            captions: CaptionsProperty::Off,
            caption_channel: 1,
            caption_text: CaptionTextProperty::Translation,
            caption_style: CaptionStyleProperty::PopOn,
        }
    }
}

impl Settings {
    /// What the element checks as it starts: an error naming the property
    /// and what it expects, or a warning about a latency that cannot hold
    /// an answer that comes within the timeout.
    pub(super) fn validate(&self) -> Result<Option<String>, gst::ErrorMessage> {
        if let Err(e) = crate::sts::check_server_url(&self.sts_url) {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                [
                    "property {PROP_STS_URL}: {e}; expected http://, https://, ws:// or wss:// with a host"
                ]
            ));
        }
        if let Some(path) = &self.tls_ca_file
            && let Err(e) = crate::sts::check_ca_file(std::path::Path::new(path))
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
                        crate::sts::shown(value)
                    ]
                ));
            }
        }
        if let Some(shortest) = self.min_segment_duration
            && shortest > self.segment_duration
        {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                [
                    "property {PROP_MIN_SEGMENT_DURATION} = {} ms is above {PROP_SEGMENT_DURATION} = {} ms; expected 0 (20 % of it) up to {PROP_SEGMENT_DURATION}",
                    shortest.mseconds(),
                    self.segment_duration.mseconds()
                ]
            ));
        }
        if let Some(bitrate) = self.bitrate
            && bitrate < MIN_BITRATE
        {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                [
                    "property {PROP_BITRATE} = {bitrate} is too low; expected 0 (the input's) or {MIN_BITRATE} to {MAX_BITRATE} bits/s"
                ]
            ));
        }
        Ok(self.latency_warning())
    }

    /// Whether the output audio is decoded, mixed and re-encoded rather
    /// than codec copy.
    pub(super) fn reencodes(&self) -> bool {
        self.fit == FitProperty::Stretch
            || self.original_volume > 0.0
            || self.loudness != LoudnessProperty::Off
    }

    pub(super) fn fit_rules(&self) -> crate::audio::fit::FitRules {
        crate::audio::fit::FitRules {
            mode: self.fit.into(),
            max_stretch: self.max_stretch,
        }
    }

    /// How the re-encoder encodes: the bitrate (None: the input's) and speed.
    pub(super) fn encoding(&self) -> crate::audio::reencode::Encoding {
        crate::audio::reencode::Encoding {
            bitrate: self.bitrate,
            fast: self.encoder_speed == EncoderSpeed::Fast,
            loudness: crate::audio::loudness::LoudnessRules {
                mode: self.loudness.into(),
                target_lufs: self.loudness_target,
                range_lu: self.loudness_range,
                true_peak_dbtp: self.true_peak,
            },
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
        let shortest = self.min_segment_duration.map_or(
            longest * AUTO_SHORTEST_PERCENT / 100,
            gst::ClockTime::nseconds,
        );
        CutRules {
            segmentation: self.segmentation.into(),
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
    use super::super::properties::*;
    use super::*;
    use gst::prelude::*;

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
        assert_eq!(settings.cut_rules().shortest, 500_000_000, "20 % of 2.5 s");
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
            min_segment_duration: Some(gst::ClockTime::from_mseconds(7000)),
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
