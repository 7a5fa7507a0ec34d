// SPDX-License-Identifier: MPL-2.0

//! The video path: the video_src task pushes the head of the video queue
//! when `release.rs` says so, arming a clock wake when it must wait.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::StsDub;
use super::release::{AudioOut, Release, video_release};
use super::state::*;
use crate::timeline::scheduler;

impl StsDub {
    /// One iteration of the video_src task: the head leaves when `release.rs`
    /// says (in a file at once; live once its audio has left or its render
    /// time is near).
    pub(super) fn video_loop(&self) {
        let mut state = self.state();
        let item = loop {
            if state.tracks[Track::Video].flushing {
                drop(state);
                let _ = self.src_pads[Track::Video].pause_task();
                return;
            }
            if self.video_head_may_leave(&mut state) {
                let head = state.video_head_running_time();
                if let Some(item) = state.video.queue.pop_front() {
                    let item = state.with_captions(item, head);
                    // A wake armed for this head stays: the next head is due
                    // no earlier, and an early wake only re-arms (see
                    // `arm_video_wake`).
                    if let Some(archive) = &mut state.video.archive {
                        match &item {
                            VideoItem::Buffer(buffer) => archive.on_buffer(buffer, head),
                            VideoItem::Event(event) => archive.on_event(event),
                        }
                    }
                    break item;
                }
            }
            state = self.wait(Track::Video, state);
        };
        drop(state);
        let result = match item {
            VideoItem::Buffer(buffer) => {
                self.advance_video_position(&buffer);
                self.src_pads[Track::Video].push(buffer).map(|_| ())
            }
            VideoItem::Event(event) => {
                let eos = event.type_() == gst::EventType::Eos;
                self.src_pads[Track::Video].push_event(event);
                if eos {
                    Err(gst::FlowError::Eos)
                } else {
                    Ok(())
                }
            }
        };
        if let Err(err) = result {
            self.on_push_error(&self.src_pads[Track::Video], err);
        }
    }

    /// Whether the video head may leave now; arms a clock wake for a head
    /// that may leave later (see `release.rs`).
    pub(super) fn video_head_may_leave(&self, state: &mut State) -> bool {
        if state.video.queue.is_empty() {
            return false;
        }
        let head = state.video_head_running_time();
        let clock = self.obj().clock();
        let live_due = match (state.latency.live, head, &clock, self.obj().base_time()) {
            (Some(true), Some(head), Some(_), Some(base_time)) => Some(
                base_time
                    + head
                    + state
                        .render_latency()
                        .saturating_sub(scheduler::DEADLINE_MARGIN),
            ),
            _ => None,
        };
        let audio = AudioOut {
            position: state.tracks[Track::Audio].position,
            done: state.audio_out.done,
        };
        let now = clock.as_ref().map(|clock| clock.time());
        let words_known = match (&state.video.captions, head) {
            (Some(captions), Some(head)) => captions.knows(head),
            _ => true,
        };
        match (
            video_release(head, audio, live_due, now, words_known),
            clock,
        ) {
            (Release::At(due), Some(clock)) => {
                self.arm_video_wake(state, &clock, due);
                false
            }
            (Release::Later, _) => false,
            _ => true,
        }
    }

    /// Makes sure the video_src task wakes by `due`. A wake still to come
    /// at or before it is kept: most heads leave on audio long before their
    /// due time, and arming and cancelling a clock entry for each video
    /// frame cost the clock thread a wakeup per frame. A wake that fires
    /// takes itself out, so the task then arms the next.
    pub(super) fn arm_video_wake(
        &self,
        state: &mut State,
        clock: &gst::Clock,
        due: gst::ClockTime,
    ) {
        if state
            .video
            .wake
            .as_ref()
            .is_some_and(|(at, id)| *at <= due && id.clock().as_ref() == Some(clock))
        {
            return;
        }
        if let Some((_, old)) = state.video.wake.take() {
            old.unschedule();
        }
        let id = clock.new_single_shot_id(due);
        let element = self.obj().downgrade();
        let scheduled = id.wait_async(move |_, _, _| {
            if let Some(element) = element.upgrade() {
                let imp = element.imp();
                let mut state = imp.state();
                if state.video.wake.as_ref().is_some_and(|(at, _)| *at == due) {
                    state.video.wake = None;
                }
                imp.wake(Track::Video);
            }
        });
        if scheduled.is_ok() {
            state.video.wake = Some((due, id));
        }
    }

    pub(super) fn advance_video_position(&self, buffer: &gst::Buffer) {
        let mut state = self.state();
        let end = buffer
            .pts()
            .map(|pts| pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO));
        if let Some(end) =
            end.and_then(|end| state.tracks[Track::Video].segment.to_running_time(end))
        {
            state.tracks[Track::Video].position = Some(end);
        }
        state.mark_output();
    }
}
