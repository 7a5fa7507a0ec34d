//! The audio path: a complete segment is queued and sent for dubbing, decided
//! (dubbed, or original at its timeout or live deadline), and pushed by the
//! audio_src task in segment order.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::fragment::{DubbedAudio, DubbedFrames, FragmentRequest, originals, retimed};
use super::imp::{CAT, StsDub};
use super::report::*;
use super::state::*;
use super::voiceover::Mix;
use crate::ops::runtime::RUNTIME;
use crate::sts::SessionHandle;
use crate::timeline::scheduler::{self, Decision, FallbackReason, Outcome, Ready};
use crate::timeline::segmenter::Segment;

impl StsDub {
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
            state.live.get_or_insert(live);
            self.wake_all();
            return;
        }
        if state.upstream_latency.is_none() {
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
        let Some(aac) = state.aac.clone() else { return };
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
            voice: state.reencoding.then(|| state.settings.fit_rules()),
        };
        let running_start = state.audio_running_time(start);
        if let (Some(archive), Some(at)) = (&mut state.video_archive, running_start) {
            archive.segment_started(batch, at);
        }
        if state.recent_fragments.len() == RECENT_FRAGMENTS {
            state.recent_fragments.pop_front();
        }
        state
            .recent_fragments
            .push_back((fragment_id.clone(), batch));
        state.queue.push_segment(
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
        let deadline = if state.live == Some(true) {
            self.schedule_deadline(state, batch, start)
        } else {
            None
        };
        state.pending.insert(
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
        for (batch, queued) in state.queue.segments_mut() {
            for frame in &mut queued.segment.frames {
                frame.pts = frame.pts.saturating_add_signed(shift);
            }
            starts.push((batch, gst::ClockTime::from_nseconds(queued.segment.start())));
        }
        if let Some(earliest) = state.segmenter.settled_start() {
            state.reach_audio_segment_back(gst::ClockTime::from_nseconds(earliest));
        }
        if state.live != Some(true) {
            return;
        }
        for (batch, start) in starts {
            let Some(old) = state
                .pending
                .get_mut(&batch)
                .and_then(|p| p.deadline.take())
            else {
                continue;
            };
            old.unschedule();
            let deadline = self.schedule_deadline(state, batch, start);
            if let Some(pending) = state.pending.get_mut(&batch) {
                pending.deadline = deadline;
            }
        }
    }

    /// Live: whether the segment starting at `start` reaches its deadline
    /// before the element could even pack, send and unpack it.
    fn no_time_to_dub(&self, state: &State, start: gst::ClockTime) -> bool {
        if state.live != Some(true) {
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

    pub(super) fn decide(&self, batch: u64, outcome: Outcome<DubbedFrames>) {
        let mut state = self.state();
        self.decide_locked(&mut state, batch, outcome);
    }

    pub(super) fn decide_locked(
        &self,
        state: &mut State,
        batch: u64,
        outcome: Outcome<DubbedFrames>,
    ) {
        let deadline_passed = matches!(outcome, Outcome::Original(FallbackReason::Deadline));
        match state.queue.decide(batch, outcome) {
            Decision::Taken => {
                if let Some(pending) = state.pending.remove(&batch) {
                    if let Some(deadline) = pending.deadline {
                        deadline.unschedule();
                    }
                    if deadline_passed {
                        // Drop the request: unsent it is never sent, an answer is ignored.
                        pending.task.abort();
                    }
                }
                state.publish_inflight();
                self.wake(Track::Audio);
            }
            Decision::TooLate => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "stream {} batch {batch}: answer came after the deadline; consider increasing latency",
                    state.settings.stream_id
                );
            }
            Decision::Unknown => {}
        }
    }

    /// One iteration of the audio_src task: the next decided item leaves.
    pub(super) fn audio_loop(&self) {
        let mut state = self.state();
        let ready = loop {
            if state.tracks[Track::Audio].flushing {
                drop(state);
                let _ = self.src_pads[Track::Audio].pause_task();
                return;
            }
            if let Some(ready) = state.queue.pop_ready() {
                break ready;
            }
            state = self.wait(Track::Audio, state);
        };
        let mut reached_back_segment = None;
        if matches!(ready, Ready::Segment { .. }) {
            // Audio leaves: the timeline no longer follows the input back.
            state.segmenter.hold();
            if std::mem::take(&mut state.audio_segment_reached_back) {
                reached_back_segment = Some(gst::event::Segment::new(
                    &state.tracks[Track::Audio].segment,
                ));
            }
        }
        let output = OutputContext {
            stream_id: state.settings.stream_id.clone(),
            discont: std::mem::replace(&mut state.discont_pending, false),
            session: state.session.clone(),
            mix: state.reencoding.then(|| Mix {
                original_volume: state.settings.original_volume as f32,
                encoding: state.settings.encoding(),
            }),
        };
        drop(state);

        if let Some(segment) = reached_back_segment {
            self.src_pads[Track::Audio].push_event(segment);
        }
        let result = match ready {
            Ready::Event(event) => {
                self.push_audio_event(event, output.session.as_ref(), output.mix)
            }
            Ready::Segment {
                batch,
                segment,
                outcome,
            } => self.push_segment(&output, batch, segment, outcome),
        };
        if let Err(err) = result {
            self.on_push_error(&self.src_pads[Track::Audio], err);
        }
    }

    pub(super) fn push_audio_event(
        &self,
        event: gst::Event,
        session: Option<&SessionHandle>,
        mix: Option<Mix>,
    ) -> Result<(), gst::FlowError> {
        let eos = event.type_() == gst::EventType::Eos;
        let event = match (mix, event.view()) {
            (Some(mix), gst::EventView::Caps(caps)) => {
                self.start_reencoder(caps.caps(), mix)?.unwrap_or(event)
            }
            _ => event,
        };
        if eos {
            self.finish_reencoder()?;
        }
        self.src_pads[Track::Audio].push_event(event);
        if eos {
            if let Some(session) = session {
                session.end();
            }
            let mut state = self.state();
            state.audio_done = true;
            if let Some(health) = &state.health {
                health.ended();
            }
            self.wake_all();
            return Err(gst::FlowError::Eos);
        }
        Ok(())
    }

    pub(super) fn push_segment(
        &self,
        output: &OutputContext,
        batch: u64,
        queued: QueuedSegment,
        outcome: Outcome<DubbedFrames>,
    ) -> Result<(), gst::FlowError> {
        let stream_id = output.stream_id.as_str();
        let (discont, session, mix) = (output.discont, output.session.as_ref(), output.mix);
        let QueuedSegment {
            fragment_id,
            segment,
        } = queued;
        let reason = match &outcome {
            Outcome::Dubbed(_) => None,
            Outcome::Original(reason) => Some(*reason),
        };
        let (cut, quiet_ns) = (segment.cut, segment.quiet_ns);
        let lateness_ms = self.account(stream_id, &outcome, &segment);
        let span = SegmentSpan::of(&segment);
        let (buffers, dubbed) = match outcome {
            Outcome::Dubbed(dubbed) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id} batch {batch} fragment {fragment_id}: dubbed ({:?}, round trip {} ms)",
                    dubbed.fit,
                    dubbed.round_trip.as_millis()
                );
                let report = Some((dubbed.round_trip, dubbed.sequence_number, dubbed.fit));
                let buffers = match (dubbed.audio, mix) {
                    (DubbedAudio::Frames(frames), None) => retimed(&segment, frames),
                    (DubbedAudio::Voice(voice), Some(mix)) => {
                        self.reencode(originals(segment), Some(&voice), mix.original_volume)
                    }
                    (_, mix) => {
                        gst::warning!(
                            CAT,
                            imp = self,
                            "stream {stream_id} batch {batch}: dubbed audio not made for this output; original audio goes out"
                        );
                        self.reencode_if(mix, originals(segment))
                    }
                };
                (buffers, report)
            }
            Outcome::Original(reason) => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "stream {stream_id} batch {batch} fragment {fragment_id}: original audio ({})",
                    reason.as_str()
                );
                (self.reencode_if(mix, originals(segment)), None)
            }
        };
        let report = SegmentReport {
            stream_id,
            batch,
            fragment_id: &fragment_id,
            dubbed,
            reason,
            lateness_ms,
            cut,
            quiet_ns,
            span,
        };
        self.post_segment_message(&report);
        if discont && buffers.is_empty() {
            // All held back by a re-encoder: the next buffer out carries it.
            self.state().discont_pending = true;
        }
        for (index, mut buffer) in buffers.into_iter().enumerate() {
            if discont && index == 0 {
                buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
            }
            self.advance_audio_position(&buffer);
            self.src_pads[Track::Audio].push(buffer)?;
        }
        if dubbed.is_some()
            && let Some(session) = session
        {
            session.applied(fragment_id);
        }
        Ok(())
    }

    /// Lets video up to this audio buffer's end leave.
    pub(super) fn advance_audio_position(&self, buffer: &gst::Buffer) {
        let mut state = self.state();
        let end = buffer
            .pts()
            .map(|pts| pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO));
        if let Some(end) =
            end.and_then(|end| state.tracks[Track::Audio].segment.to_running_time(end))
        {
            let before = state.tracks[Track::Audio].position.replace(end);
            // Only when this buffer lets the video head leave: audio frames
            // outnumber video frames, and the wakeup is the cost.
            if audio_passed_head(before, end, state.video_head_running_time()) {
                self.wake(Track::Video);
            }
        }
        state.mark_output();
    }
}

/// What the output task reads from the state for each item it pushes.
pub(super) struct OutputContext {
    stream_id: String,
    /// The first buffer out carries DISCONT.
    discont: bool,
    session: Option<SessionHandle>,
    /// Set when the output is re-encoded (voice-over or a transcoded format).
    mix: Option<Mix>,
}

/// Whether audio output moving from `before` to `now` is what lets a video
/// head at `head` leave (see `release.rs`). A head audio had already passed
/// was woken for when it was queued; an event or untimed head never waits.
pub(super) fn audio_passed_head(
    before: Option<gst::ClockTime>,
    now: gst::ClockTime,
    head: Option<gst::ClockTime>,
) -> bool {
    head.is_some_and(|head| head <= now && before.is_none_or(|before| before < head))
}

#[cfg(test)]
mod tests {
    use super::audio_passed_head;

    const MS: gst::ClockTime = gst::ClockTime::MSECOND;

    #[test]
    fn video_is_woken_when_audio_reaches_its_head() {
        assert!(audio_passed_head(Some(90 * MS), 110 * MS, Some(100 * MS)));
        assert!(
            audio_passed_head(Some(90 * MS), 100 * MS, Some(100 * MS)),
            "exactly at the head"
        );
        assert!(
            audio_passed_head(None, 100 * MS, Some(40 * MS)),
            "first audio out"
        );
    }

    #[test]
    fn video_is_not_woken_for_audio_short_of_or_long_past_its_head() {
        assert!(
            !audio_passed_head(Some(70 * MS), 90 * MS, Some(100 * MS)),
            "not there yet"
        );
        assert!(
            !audio_passed_head(Some(100 * MS), 120 * MS, Some(100 * MS)),
            "passed before"
        );
        assert!(
            !audio_passed_head(Some(70 * MS), 90 * MS, None),
            "an event never waits"
        );
    }
}
