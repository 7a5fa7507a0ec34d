//! The element's settings: property names, defaults and ranges, their
//! GParamSpecs, reading and writing them by name, and the checks made when
//! the element starts. No pads and no state; two things come from outside
//! the properties: the default `metrics-address` reads the environment
//! (`STSDUB_METRICS_ADDRESS`), and the start-up check of `tls-ca-file`
//! reads that file.

use gst::glib;
use gst::prelude::*;

use crate::scheduler;
use crate::sts::breaker;
use crate::sts::session::Secret;

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

const DEFAULT_STS_URL: &str = "http://127.0.0.1:8000";
pub(super) const DEFAULT_STREAM_ID: &str = "stream";
const DEFAULT_WORKER_ID: &str = "stsdub";
const DEFAULT_SOURCE_LANGUAGE: &str = "en";
const DEFAULT_TARGET_LANGUAGE: &str = "es";
const DEFAULT_VOICE_PROFILE: &str = "default";
const DEFAULT_SEGMENT_DURATION_MS: u32 = 6_000;
const DEFAULT_TIMEOUT_MS: u32 = 8_000;
/// segment + timeout + processing allowance + deadline margin
/// (`scheduler::coherent_latency`): an answer within the timeout is never late.
const DEFAULT_LATENCY_MS: u32 = 14_500;
const DEFAULT_MAX_INFLIGHT: u32 = 3;
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

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) sts_url: String,
    pub(super) stream_id: String,
    pub(super) worker_id: String,
    pub(super) source_language: String,
    pub(super) target_language: String,
    pub(super) voice_profile: String,
    pub(super) segment_duration: gst::ClockTime,
    pub(super) latency: gst::ClockTime,
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
            latency: gst::ClockTime::from_mseconds(DEFAULT_LATENCY_MS.into()),
            timeout: gst::ClockTime::from_mseconds(DEFAULT_TIMEOUT_MS.into()),
            max_inflight: DEFAULT_MAX_INFLIGHT,
            reconnect_delay: gst::ClockTime::from_mseconds(DEFAULT_RECONNECT_DELAY_MS.into()),
            reconnect_attempts: DEFAULT_RECONNECT_ATTEMPTS,
            error_after_reconnects: false,
            breaker_threshold: breaker::DEFAULT_FAILURE_THRESHOLD,
            breaker_cooldown: gst::ClockTime::from_mseconds(DEFAULT_BREAKER_COOLDOWN_MS.into()),
            auth_token: None,
            tls_ca_file: None,
            // Off unless asked for, by property or environment.
            metrics_address: std::env::var("STSDUB_METRICS_ADDRESS")
                .ok()
                .filter(|a| !a.is_empty()),
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
                millis(PROP_SEGMENT_DURATION, "Segment duration", "Duration of the audio segments sent to the STS, in milliseconds (cut on AAC frame boundaries)", MIN_SEGMENT_DURATION_MS, MAX_SEGMENT_DURATION_MS, DEFAULT_SEGMENT_DURATION_MS),
                millis(PROP_LATENCY, "Latency", "Latency this element adds in a live pipeline, in milliseconds; a segment with no answer by its start + latency goes out as original audio. Keep it at least segment-duration + timeout + 500", 0, MAX_LATENCY_MS, DEFAULT_LATENCY_MS),
                millis(PROP_TIMEOUT, "Timeout", "Longest wait for the STS to answer one segment, in milliseconds, before its original audio goes out", MIN_TIMEOUT_MS, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS),
                glib::ParamSpecBoxed::builder::<gst::Structure>(PROP_STATS)
                    .nick("Statistics")
                    .blurb("Segments, dubbed, fallback, late answers, last round trip (ms), A/V delta of the output (ms, audio minus video running time), latency (ms), breaker state")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder(PROP_METRICS_ADDRESS)
                    .nick("Metrics address")
                    .blurb("host:port to serve Prometheus GET /metrics on, once per process for all stsdub elements (default: $STSDUB_METRICS_ADDRESS, else off)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder(PROP_ARCHIVE_DIR)
                    .nick("Archive directory")
                    .blurb("Keep every segment as {dir}/{stream-id}/{batch:06}_audio.m4a and its dubbed audio as _dubbed.m4a, written off the streaming thread (default: off)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder(PROP_AUTH_TOKEN)
                    .nick("Auth token")
                    .blurb("Token for the STS, sent as the Socket.IO CONNECT auth {\"token\": …} and as Authorization: Bearer; write-only, never logged")
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
            PROP_LATENCY => self.latency = millis(),
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
            PROP_LATENCY => millis(self.latency),
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
        if let Err(e) = crate::sts::transport::engine_io_url(&self.sts_url) {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                [
                    "property {PROP_STS_URL}: {e}; expected http://, https://, ws:// or wss:// with a host"
                ]
            ));
        }
        if let Some(path) = &self.tls_ca_file
            && let Err(e) = crate::sts::transport::tls_config(Some(std::path::Path::new(path)))
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
            if value.trim().is_empty() {
                return Err(gst::error_msg!(
                    gst::LibraryError::Settings,
                    ["property {name} must not be empty"]
                ));
            }
        }
        let coherent = scheduler::coherent_latency(self.segment_duration, self.timeout);
        if self.latency < coherent {
            return Ok(Some(format!(
                "property {PROP_LATENCY} = {} ms is below {PROP_SEGMENT_DURATION} + {PROP_TIMEOUT} + {} ms margins = {} ms: in a live pipeline, answers that come within the timeout may still be too late",
                self.latency.mseconds(),
                (scheduler::PROCESSING_ALLOWANCE + scheduler::DEADLINE_MARGIN).mseconds(),
                coherent.mseconds()
            )));
        }
        Ok(None)
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
        let settings = Settings {
            latency: gst::ClockTime::from_mseconds(1000),
            ..Settings::default()
        };
        let warning = settings
            .validate()
            .expect("only a warning")
            .expect("a warning");
        assert!(warning.contains(PROP_LATENCY), "{warning}");
        assert_eq!(Settings::default().validate().expect("valid"), None);
    }
}
