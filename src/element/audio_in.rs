// SPDX-License-Identifier: MPL-2.0

//! The audio input side: each frame measured (for cuts at pauses), cut
//! into segments by the segmenter, and each segment queued for output and
//! sent for dubbing, with its live deadline; the caps that set it all up.
//! A file's input waits while too many segments are undecided.

use std::sync::MutexGuard;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::category::CAT;
use super::fragment::FragmentRequest;
use super::imp::StsDub;
use super::settings::SegmentationProperty;
use super::state::*;
use crate::audio::level::FrameLevels;
use crate::container::m4a::AacConfig;
use crate::ops::runtime::RUNTIME;
use crate::timeline::scheduler::{self, FallbackReason, Outcome};
use crate::timeline::segmenter::{Frame, Segment};

impl StsDub {
    pub(super) fn audio_chain(
        &self,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // Before `state` is taken: decoding must not hold up the output tasks.
        let levels = self.measure_levels(&buffer);
        let mut state = self.admit_input(Track::Audio)?;
        // Not the config itself: cloning it would allocate for every frame.
        let Some(frame_duration_ns) = state
            .audio_in
            .aac
            .as_ref()
            .map(AacConfig::frame_duration_ns)
        else {
            // Never post with `state` held: a bus sync handler may read stats.
            drop(state);
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ["audio buffer before caps"]
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let frame_duration = gst::ClockTime::from_nseconds(frame_duration_ns);
        let discont = buffer.flags().contains(gst::BufferFlags::DISCONT);
        let Some(pts) = buffer.pts() else {
            gst::warning!(
                CAT,
                imp = self,
                "stream {}: dropping an audio frame without timestamp",
                state.settings.stream_id
            );
            return Ok(gst::FlowSuccess::Ok);
        };
        let duration = buffer.duration().unwrap_or(frame_duration);
        gst::trace!(CAT, imp = self, "audio frame {pts} ({duration})");
        let frame = Frame {
            pts: pts.nseconds(),
            duration: duration.nseconds(),
            data: buffer,
        };
        let segments = state.audio_in.segmenter.push(frame, discont, levels);
        if let Some(shift) = state.audio_in.segmenter.take_shift() {
            self.move_queued_segments(&mut state, shift);
        }
        for segment in segments {
            self.dispatch(&mut state, segment);
        }
        self.frame_levels
            .set_wanted(state.audio_in.segmenter.wants_levels());
        let running_time = state.audio_running_time(pts);
        self.watch_absence(&mut state, Track::Video, running_time);
        self.wait_for_room(state)
    }

    /// A file must not be read into memory faster than the STS answers.
    /// The only wait on a sink pad: it ends as segments are decided, which
    /// the STS answer or the timeout does, never the video pad's input nor
    /// anything downstream.
    fn wait_for_room(
        &self,
        mut state: MutexGuard<'_, State>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let bound = state.settings.max_inflight as usize + 1;
        while state.latency.live == Some(false)
            && state.audio_out.queue.undecided() > bound
            && !state.tracks[Track::Audio].flushing
        {
            state = self.wait(Track::Audio, state);
        }
        if state.tracks[Track::Audio].flushing {
            return Err(gst::FlowError::Flushing);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Audio input ended: the last segment is cut and sent.
    pub(super) fn end_audio_input(&self, state: &mut State) {
        for last in state.audio_in.segmenter.finish() {
            self.dispatch(state, last);
        }
        if let Some(archive) = &mut state.video.archive {
            archive.audio_ended();
        }
    }

    /// The levels of an audio frame, when segments are cut at pauses. A
    /// decoder that fails is dropped with a warning: segments are then cut
    /// at their longest duration, and the audio itself is untouched.
    fn measure_levels(&self, buffer: &gst::Buffer) -> Option<FrameLevels> {
        match self.frame_levels.measure(buffer) {
            Ok(levels) => levels,
            Err(err) => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Decode,
                    [
                        "the level meter's AAC decoder failed ({err}): segments are now cut at segment-duration"
                    ]
                );
                None
            }
        }
    }

    /// A meter for `config` when segments are cut at pauses; a warning when
    /// none can be made (segments are then cut at their longest).
    fn start_level_meter(&self, pauses: bool, config: &AacConfig) {
        if let Err(e) = self.frame_levels.start(pauses, config) {
            gst::element_imp_warning!(
                self,
                gst::CoreError::MissingPlugin,
                [
                    "segmentation=pauses cannot measure the audio: {e}; segments are cut at segment-duration"
                ]
            );
        }
    }

    /// New audio caps: the segmenter's format, the level meter, the
    /// re-encoder's choice, the session (first caps), and the caps event
    /// queued with the language tag.
    pub(super) fn on_audio_caps(&self, config: AacConfig, event: gst::Event) -> bool {
        let (pauses, wanted) = {
            let state = self.state();
            if state.audio_in.aac.as_ref() == Some(&config) {
                return true;
            }
            (
                state.settings.segmentation == SegmentationProperty::Pauses,
                state.settings.reencodes(),
            )
        };
        // Outside `state`: both may post a warning, whose handlers may read stats.
        self.start_level_meter(pauses, &config);
        let reencoding = self.can_reencode(wanted, &config);
        let mut state = self.state();
        if state.audio_in.aac.is_some() {
            // New format: what was cut so far is one segment of the old one.
            for last in state.audio_in.segmenter.finish() {
                self.dispatch(&mut state, last);
            }
        }
        gst::info!(
            CAT,
            imp = self,
            "stream {}: AAC object type {}, {} Hz, {} channels",
            state.settings.stream_id,
            config.object_type,
            config.sample_rate,
            config.channels
        );
        state
            .audio_in
            .segmenter
            .set_format(config.sample_rate, config.frame_duration_ns());
        state.audio_out.reencoding = reencoding;
        if state.session.is_none() {
            let session =
                self.start_session(&state.settings, &config, state.report.metrics.clone());
            state.session = Some(session);
        }
        let first_caps = state.audio_in.aac.is_none();
        state.audio_in.aac = Some(config);
        state.audio_out.queue.push_event(event);
        if first_caps
            && let Some(code) = super::tags::language_code(&state.settings.target_language)
        {
            // Muxers write it: the dubbed track says its language.
            state
                .audio_out
                .queue
                .push_event(super::tags::language_event(&code));
        }
        self.wake_all();
        true
    }

    /// Asks upstream of `track` whether it is live. The audio's answer also
    /// gives the upstream latency deadlines are set against; the video's is
    /// asked only until audio has answered (audio may never come). A query
    /// that fails (a live source still setting its branch up) tells nothing:
    /// it is asked again with the next buffer, never taken for "not live".
    pub(super) fn query_upstream_latency(&self, track: Track) {
        let mut query = gst::query::Latency::new();
        if !self.sink_pad(track).peer_query(&mut query) {
            gst::debug!(
                CAT,
                imp = self,
                "{track:?} upstream latency query failed; asked again"
            );
            return;
        }
        let (live, min, _) = query.result();
        let mut state = self.state();
        if track == Track::Video {
            state.latency.live.get_or_insert(live);
            self.wake_all();
            return;
        }
        if state.latency.upstream.is_none() {
            gst::info!(
                CAT,
                imp = self,
                "stream {}: upstream is {}live, latency {min}",
                state.settings.stream_id,
                if live { "" } else { "not " }
            );
        }
        self.note_upstream_latency(&mut state, live, min);
    }

    /// Queues a complete segment for output and starts dubbing it.
    pub(super) fn dispatch(&self, state: &mut State, segment: Segment<gst::Buffer>) {
        let Some(aac) = state.audio_in.aac.clone() else {
            return;
        };
        let fragment_id = uuid::Uuid::new_v4().to_string();
        let batch = segment.batch;
        let frames: Vec<gst::Buffer> = segment.frames.iter().map(|f| f.data.clone()).collect();
        let start = gst::ClockTime::from_nseconds(segment.start());
        let duration = gst::ClockTime::from_nseconds(segment.duration());
        gst::debug!(
            CAT,
            imp = self,
            "stream {} batch {batch} fragment {fragment_id}: segment {start} + {duration}, {} frames",
            state.settings.stream_id,
            frames.len()
        );
        let fragment = FragmentRequest {
            stream_id: state.settings.stream_id.clone(),
            fragment_id: fragment_id.clone(),
            batch,
            pts_ns: start.nseconds(),
            duration_ms: duration.mseconds(),
            frames,
            aac,
            archive: state.archive.clone(),
            timeout: state.settings.timeout.into(),
            voice: state
                .audio_out
                .reencoding
                .then(|| state.settings.fit_rules()),
        };
        let running_start = state.audio_running_time(start);
        if let (Some(archive), Some(at)) = (&mut state.video.archive, running_start) {
            archive.segment_started(batch, at);
        }
        if state.report.recent_fragments.len() == RECENT_FRAGMENTS {
            state.report.recent_fragments.pop_front();
        }
        state
            .report
            .recent_fragments
            .push_back((fragment_id.clone(), batch));
        state.audio_out.queue.push_segment(
            batch,
            QueuedSegment {
                fragment_id,
                segment,
            },
        );
        if self.no_time_to_dub(state, start) {
            // Live, a latency below the segment: sent, its answer could only
            // be ignored, and the STS would work for nothing.
            gst::debug!(
                CAT,
                imp = self,
                "stream {} batch {batch}: its deadline is too near to ask the STS",
                state.settings.stream_id
            );
            self.decide_locked(state, batch, Outcome::Original(FallbackReason::Deadline));
            return;
        }
        let Some(session) = state.session.clone() else {
            self.decide_locked(
                state,
                batch,
                Outcome::Original(FallbackReason::Disconnected),
            );
            return;
        };
        let Some(reply) = fragment.submit(&session) else {
            gst::warning!(
                CAT,
                imp = self,
                "{}: segment frames unreadable, original audio goes out",
                fragment.label()
            );
            self.decide_locked(
                state,
                batch,
                Outcome::Original(FallbackReason::InvalidReply),
            );
            return;
        };
        let element = self.obj().downgrade();
        let task = RUNTIME.spawn(async move {
            let (batch, outcome) = fragment.outcome(reply).await;
            if let Some(element) = element.upgrade() {
                element.imp().decide(batch, outcome);
            }
        });
        let deadline = if state.latency.live == Some(true) {
            self.schedule_deadline(state, batch, start)
        } else {
            None
        };
        state.audio_in.pending.insert(
            batch,
            Pending {
                deadline,
                task: task.abort_handle(),
            },
        );
        state.publish_inflight();
    }

    /// The timeline moved while settling (nothing has left yet): the queued
    /// segments move with it, and so do their live deadlines.
    pub(super) fn move_queued_segments(&self, state: &mut State, shift: i64) {
        gst::debug!(
            CAT,
            imp = self,
            "stream {}: timeline settles {:+.1} ms onto the input's stamps",
            state.settings.stream_id,
            shift as f64 / 1e6
        );
        let mut starts = Vec::new();
        for (batch, queued) in state.audio_out.queue.segments_mut() {
            for frame in &mut queued.segment.frames {
                frame.pts = frame.pts.saturating_add_signed(shift);
            }
            starts.push((batch, gst::ClockTime::from_nseconds(queued.segment.start())));
        }
        if let Some(earliest) = state.audio_in.segmenter.settled_start() {
            state.reach_audio_segment_back(gst::ClockTime::from_nseconds(earliest));
        }
        if state.latency.live != Some(true) {
            return;
        }
        for (batch, start) in starts {
            let Some(old) = state
                .audio_in
                .pending
                .get_mut(&batch)
                .and_then(|p| p.deadline.take())
            else {
                continue;
            };
            old.unschedule();
            let deadline = self.schedule_deadline(state, batch, start);
            if let Some(pending) = state.audio_in.pending.get_mut(&batch) {
                pending.deadline = deadline;
            }
        }
    }

    /// Live: whether the segment starting at `start` reaches its deadline
    /// before the element could even pack, send and unpack it.
    fn no_time_to_dub(&self, state: &State, start: gst::ClockTime) -> bool {
        if state.latency.live != Some(true) {
            return false;
        }
        let (Some(now), Some(running_start)) = (
            self.obj().current_running_time(),
            state.audio_running_time(start),
        ) else {
            return false;
        };
        let deadline = scheduler::decision_deadline(running_start, state.render_latency());
        now + scheduler::PROCESSING_ALLOWANCE > deadline
    }

    /// Arms the live deadline: at it, whatever has not been answered falls back.
    pub(super) fn schedule_deadline(
        &self,
        state: &State,
        batch: u64,
        start: gst::ClockTime,
    ) -> Option<gst::SingleShotClockId> {
        let clock = self.obj().clock()?;
        let running_start = state.audio_running_time(start)?;
        let deadline = scheduler::decision_deadline(running_start, state.render_latency());
        let at = self.obj().base_time()? + deadline;
        gst::debug!(
            CAT,
            imp = self,
            "stream {} batch {batch}: decision deadline at clock time {at}",
            state.settings.stream_id
        );
        let id = clock.new_single_shot_id(at);
        let element = self.obj().downgrade();
        let scheduled = id.wait_async(move |_, _, _| {
            if let Some(element) = element.upgrade() {
                element
                    .imp()
                    .decide(batch, Outcome::Original(FallbackReason::Deadline));
            }
        });
        scheduled.ok().map(|_| id)
    }
}
