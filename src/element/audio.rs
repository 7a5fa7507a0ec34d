// SPDX-License-Identifier: MPL-2.0

//! The audio path: a complete segment is queued and sent for dubbing, decided
//! (dubbed, or original at its timeout or live deadline), and pushed by the
//! audio_src task in segment order.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::category::CAT;
use super::fragment::{DubbedAudio, DubbedFrames, originals, retimed};
use super::imp::StsDub;
use super::report::*;
use super::state::*;
use super::voiceover::Mix;
use crate::sts::SessionHandle;
use crate::timeline::scheduler::{Decision, FallbackReason, Outcome, Ready};

impl StsDub {
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
        match state.audio_out.queue.decide(batch, outcome) {
            Decision::Taken => {
                if let Some(pending) = state.audio_in.pending.remove(&batch) {
                    if let Some(deadline) = pending.deadline {
                        deadline.unschedule();
                    }
                    if deadline_passed {
                        // Drop the request: unsent it is never sent, an answer is ignored.
                        pending.task.abort();
                    }
                }
                state.publish_inflight();
                if self.announce_decided(state) {
                    self.wake(Track::Video);
                }
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
            // What leaves has been shown to the captions and text first.
            if self.announce_decided(&mut state) {
                self.wake(Track::Video);
            }
            // Text linked into a file: a segment's audio leaves once the
            // next one's words are queued on text_src, since a muxer that
            // waits for every pad (collectpads) takes audio only when the
            // text pad has what comes after it. Live, the deadline rules.
            let text_ahead = self.text_src.is_linked() && state.latency.live != Some(true);
            let ready = if text_ahead {
                state.audio_out.queue.pop_ready_ahead()
            } else {
                state.audio_out.queue.pop_ready()
            };
            if let Some(ready) = ready {
                break ready;
            }
            state = self.wait(Track::Audio, state);
        };
        let mut reached_back_segment = None;
        if matches!(ready, Ready::Segment { .. }) {
            // Audio leaves: the timeline no longer follows the input back.
            state.audio_in.segmenter.hold();
            if std::mem::take(&mut state.audio_in.segment_reached_back) {
                reached_back_segment = Some(gst::event::Segment::new(
                    &state.tracks[Track::Audio].segment,
                ));
            }
        }
        let output = OutputContext {
            stream_id: state.settings.stream_id.clone(),
            discont: std::mem::replace(&mut state.audio_out.discont_pending, false),
            session: state.session.clone(),
            mix: state.audio_out.reencoding.then(|| Mix {
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
            state.audio_out.done = true;
            if let Some(health) = &state.report.health {
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
        let (buffers, dubbed, text) = match outcome {
            Outcome::Dubbed(dubbed) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id} batch {batch} fragment {fragment_id}: dubbed ({:?}, round trip {} ms)",
                    dubbed.fit,
                    dubbed.round_trip.as_millis()
                );
                let report = Some(DubbedReport {
                    round_trip: dubbed.round_trip,
                    sequence_number: dubbed.sequence_number,
                    fit: dubbed.fit,
                });
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
                (buffers, report, Some(dubbed.text))
            }
            Outcome::Original(reason) => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "stream {stream_id} batch {batch} fragment {fragment_id}: original audio ({})",
                    reason.as_str()
                );
                (self.reencode_if(mix, originals(segment)), None, None)
            }
        };
        let loudness = mix.and_then(|_| self.loudness_after_segment());
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
            text: text.as_ref(),
            loudness,
        };
        self.post_segment_message(&report);
        if discont && buffers.is_empty() {
            // All held back by a re-encoder: the next buffer out carries it.
            self.state().audio_out.discont_pending = true;
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
