// SPDX-License-Identifier: MPL-2.0

//! Starting and stopping a stream: the settings checked and the stream's
//! state made at READY → PAUSED; at PAUSED → READY everything queued
//! abandoned, the STS session ended (bounded) and the archive's last files
//! written. And the output tasks: started, stopped with their pads, and
//! paused on a push error.

use std::path::Path;
use std::time::Duration;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::category::CAT;
use super::imp::StsDub;
use super::state::*;
use crate::ops::archive::Archive;
use crate::ops::health;
use crate::ops::metrics::StreamMetrics;
use crate::sts::CLOSE_LIMIT;

/// How long stopping waits for the archive's last files.
const ARCHIVE_STOP_WAIT: Duration = Duration::from_secs(10);

impl StsDub {
    /// READY → PAUSED: a fresh state for the stream, from checked settings.
    pub(super) fn start_stream(&self) -> Result<(), gst::StateChangeError> {
        let settings = lock(&self.settings).clone();
        if let Err(message) = self.check_settings(&settings) {
            self.post_error_message(message);
            return Err(gst::StateChangeError);
        }
        let stream_metrics = StreamMetrics::announce(&settings.stream_id);
        let stream_health = health::register(&settings.stream_id, &self.obj().name());
        if let Some(address) = &settings.metrics_address {
            self.serve_metrics(address, &settings.stream_id)?;
        }
        let archive = settings
            .archive_dir
            .as_ref()
            .map(|dir| Archive::new(Path::new(dir).join(&settings.stream_id)));
        let mut state = self.state();
        *state = State::new(
            settings,
            Reporting {
                metrics: Some(stream_metrics),
                health: Some(stream_health),
                ..Reporting::default()
            },
            archive,
        );
        Ok(())
    }

    /// PAUSED → READY: nothing queued goes out any more; the session and
    /// the archive finish what they can, each bounded.
    pub(super) fn stop_stream(&self) {
        let mut state = self.state();
        state.abandon_audio();
        state.abandon_video();
        *lock(&self.reencoder) = None;
        let session = state.session.take();
        state.report.health = None;
        let archive = state.archive.clone();
        drop(state);
        // After EOS the session sends what was queued, `stream:end`,
        // and waits for `stream:complete`: a process exits right after
        // its pipeline stops, so the stop waits for that (bounded).
        if let Some(session) = session
            && !session.close(CLOSE_LIMIT)
        {
            gst::warning!(
                CAT,
                imp = self,
                "stream {}: the STS session had not ended {} ms after the stop",
                lock(&self.stream_id),
                CLOSE_LIMIT.as_millis()
            );
        }
        // gst-launch exits right after stopping: the last files first.
        if let Some(archive) = archive
            && !archive.wait_idle(ARCHIVE_STOP_WAIT)
        {
            gst::warning!(
                CAT,
                imp = self,
                "stream {}: archive writes still under way at stop",
                lock(&self.stream_id)
            );
        }
    }

    pub(super) fn start_task(&self, track: Track) {
        let element = self.obj().downgrade();
        let result = self.src_pad(track).start_task(move || {
            if let Some(element) = element.upgrade() {
                match track {
                    Track::Audio => element.imp().audio_loop(),
                    Track::Video => element.imp().video_loop(),
                }
            }
        });
        if let Err(err) = result {
            gst::error!(
                CAT,
                imp = self,
                "cannot start the {track:?} output task: {err}"
            );
        }
    }

    pub(super) fn on_push_error(&self, pad: &gst::Pad, err: gst::FlowError) {
        gst::debug!(CAT, obj = pad, "pausing task: {err:?}");
        let _ = pad.pause_task();
        if matches!(err, gst::FlowError::Flushing | gst::FlowError::Eos) {
            return;
        }
        gst::element_imp_error!(
            self,
            gst::StreamError::Failed,
            ["streaming stopped, reason {err:?}"]
        );
        pad.push_event(gst::event::Eos::new());
    }

    pub(super) fn activate_src(
        &self,
        pad: &gst::Pad,
        active: bool,
    ) -> Result<(), gst::LoggableError> {
        let track = self.track(pad);
        {
            let mut state = self.state();
            state.tracks[track].flushing = !active;
            if !active {
                state.abandon(track);
            }
            self.wake_all();
        }
        if active {
            self.start_task(track);
        } else {
            pad.stop_task()
                .map_err(|err| gst::loggable_error!(CAT, "cannot stop task: {err}"))?;
        }
        Ok(())
    }
}
