// SPDX-License-Identifier: MPL-2.0

//! The element's side of its STS session: the session's configuration from the
//! settings, and what each session event becomes (logs, warnings, bus
//! messages, metrics).

use gst::subclass::prelude::*;

use super::category::CAT;
use super::imp::StsDub;
use super::settings::*;
use crate::container::m4a::AacConfig;
use crate::ops::health::Sts;
use crate::ops::metrics::{self, StreamMetrics};
use crate::ops::runtime::RUNTIME;
use crate::sts::breaker::BreakerState;
use crate::sts::protocol::{AUDIO_FORMAT, StreamConfig};
use crate::sts::{self as session, SessionConfig, SessionEvent, SessionHandle};

impl StsDub {
    /// Starts the stream's session; its events are reported under
    /// `metrics`, this stream's series.
    pub(super) fn start_session(
        &self,
        settings: &Settings,
        aac: &AacConfig,
        metrics: Option<StreamMetrics>,
    ) -> SessionHandle {
        let config = SessionConfig {
            url: settings.sts_url.clone(),
            stream_id: settings.stream_id.clone(),
            worker_id: settings.worker_id.clone(),
            stream: StreamConfig {
                source_language: settings.source_language.clone(),
                target_language: settings.target_language.clone(),
                voice_profile: settings.voice_profile.clone(),
                format: AUDIO_FORMAT.into(),
                sample_rate_hz: aac.sample_rate,
                channels: aac.channels,
                chunk_duration_ms: settings.segment_duration.mseconds() as u32,
            },
            max_inflight: settings.max_inflight,
            timeout: settings.timeout.into(),
            backoff: session::doubling_backoff(
                settings.reconnect_delay.into(),
                settings.reconnect_attempts,
            ),
            give_up: settings.error_after_reconnects,
            breaker_threshold: settings.breaker_threshold,
            breaker_cooldown: settings.breaker_cooldown.into(),
            auth_token: settings.auth_token.clone(),
            tls_ca_file: settings.tls_ca_file.clone().map(Into::into),
            traffic: metrics::traffic(&settings.stream_id),
        };
        let element = self.obj().downgrade();
        let stream_id = settings.stream_id.clone();
        SessionHandle::start(
            RUNTIME.handle(),
            config,
            std::sync::Arc::new(move |event| {
                if let Some(element) = element.upgrade() {
                    element
                        .imp()
                        .on_session_event(&stream_id, metrics.as_ref(), event);
                }
            }),
        )
    }

    pub(super) fn on_session_event(
        &self,
        stream_id: &str,
        metrics: Option<&StreamMetrics>,
        event: SessionEvent,
    ) {
        let count = |counter: fn(&StreamMetrics) -> &prometheus::IntCounter| {
            if let Some(metrics) = metrics {
                counter(metrics).inc();
            }
        };
        match event {
            SessionEvent::Connected {
                session_id,
                max_inflight,
            } => {
                self.report_sts(Sts::Session);
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id}: STS session {session_id} ready, max in flight {max_inflight}"
                );
            }
            SessionEvent::ConnectFailed { error, retry_in } => {
                self.report_sts(Sts::Original("STS unreachable".into()));
                count(|m| &m.reconnects);
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::OpenReadWrite,
                    ("STS unreachable, original audio goes out"),
                    [
                        "stream {stream_id}: {error}; retrying in {} s",
                        retry_in.as_secs()
                    ]
                );
            }
            SessionEvent::Disconnected { reason } => {
                self.report_sts(Sts::Original("STS connection lost, reconnecting".into()));
                count(|m| &m.reconnects);
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Read,
                    ("STS connection lost, original audio goes out"),
                    ["stream {stream_id}: {reason}"]
                );
            }
            SessionEvent::LateAnswer { fragment_id } => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "{}: answer after the fragment fell back ignored; consider increasing latency",
                    self.fragment_label(stream_id, &fragment_id)
                );
                self.state().report.counts.late_answers += 1;
                count(|m| &m.late_answers);
                let structure = gst::Structure::builder("stsdub-late-answer")
                    .field("stream-id", stream_id)
                    .field("fragment-id", fragment_id)
                    .build();
                self.post_element(structure);
            }
            SessionEvent::UnknownAnswer { fragment_id } => {
                let total = {
                    let mut state = self.state();
                    state.report.counts.unknown_answers += 1;
                    state.report.counts.unknown_answers
                };
                // A peer may send any number: told at the 1st, 10th, 100th…
                if is_power_of_ten(total) {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "stream {stream_id}: answer for fragment {} that was never sent ignored ({total} so far)",
                        crate::sts::socketio::bounded(&fragment_id)
                    );
                    let structure = gst::Structure::builder("stsdub-unknown-answer")
                        .field("stream-id", stream_id)
                        .field("total", total)
                        .build();
                    self.post_element(structure);
                }
            }
            SessionEvent::Warning {
                fragment_id,
                message,
            } => {
                let about = match &fragment_id {
                    Some(id) => self.fragment_label(stream_id, id),
                    None => format!("stream {stream_id}"),
                };
                gst::warning!(CAT, imp = self, "{about}: {message}");
            }
            SessionEvent::Completed {
                total_fragments,
                statistics,
            } => {
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id}: STS stream complete, {total_fragments:?} fragments, statistics {statistics:?}"
                );
            }
            SessionEvent::BreakerChanged { state } => {
                self.on_breaker_changed(stream_id, metrics, state)
            }
            SessionEvent::Backpressure { action } => {
                let name = action.as_str();
                if let Some(counter) = metrics.and_then(|m| m.backpressure(name)) {
                    counter.inc();
                }
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id}: STS backpressure {action:?}"
                );
            }
            SessionEvent::GaveUp { attempts, error } => {
                self.report_sts(Sts::Original(format!(
                    "STS unreachable after {attempts} attempts"
                )));
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::OpenReadWrite,
                    ("STS unreachable after {attempts} attempts"),
                    ["stream {stream_id}: {error}; {PROP_ERROR_AFTER_RECONNECTS} is set"]
                );
            }
        }
    }

    /// Tells the probes where the stream stands with its STS.
    fn report_sts(&self, sts: Sts) {
        if let Some(health) = self.state().report.health.clone() {
            health.set_sts(sts);
        }
    }

    /// "stream S batch B fragment F", without the batch for a fragment id
    /// we never sent (or sent too long ago).
    pub(super) fn fragment_label(&self, stream_id: &str, fragment_id: &str) -> String {
        let state = self.state();
        match state
            .report
            .recent_fragments
            .iter()
            .find(|(id, _)| id == fragment_id)
        {
            Some((_, batch)) => format!("stream {stream_id} batch {batch} fragment {fragment_id}"),
            None => format!("stream {stream_id} fragment {fragment_id}"),
        }
    }

    /// Breaker transitions are logged and posted, so apps and operators see
    /// why segments fall back.
    pub(super) fn on_breaker_changed(
        &self,
        stream_id: &str,
        metrics: Option<&StreamMetrics>,
        state: BreakerState,
    ) {
        self.state().report.counts.breaker = Some(state);
        if let Some(metrics) = metrics {
            metrics.breaker_state.set(state as i64);
        }
        if state == BreakerState::Closed {
            gst::info!(
                CAT,
                imp = self,
                "stream {stream_id}: circuit breaker closed, dubbing resumes"
            );
        } else {
            gst::warning!(
                CAT,
                imp = self,
                "stream {stream_id}: circuit breaker {}, original audio goes out",
                state.as_str()
            );
        }
        let structure = gst::Structure::builder("stsdub-breaker")
            .field("stream-id", stream_id)
            .field("state", state.as_str())
            .field("state-code", state as i32)
            .build();
        self.post_element(structure);
    }
}

fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}
