// SPDX-License-Identifier: MPL-2.0

//! What feeds the captions (`captions.rs`): the output queue's decided
//! segments in, in order, and the video items on their way out.

use super::state::{State, Track, VideoItem};
use crate::timeline::scheduler::{DecidedItem, Outcome};

impl State {
    /// `item`, leaving on video_src at `running_time`, with its captions
    /// (the caps tell the captions the video's format).
    pub(super) fn with_captions(
        &mut self,
        item: VideoItem,
        running_time: Option<gst::ClockTime>,
    ) -> VideoItem {
        let Some(captions) = self.video.captions.as_mut() else {
            return item;
        };
        match item {
            VideoItem::Buffer(buffer) => VideoItem::Buffer(captions.caption(buffer, running_time)),
            VideoItem::Event(event) => {
                if let gst::EventView::Caps(caps) = event.view() {
                    captions.on_caps(caps.caps());
                }
                VideoItem::Event(event)
            }
        }
    }

    /// Shows the captions what is newly decided of the audio output, in
    /// order; true when that lets a held video frame go.
    pub(super) fn announce_to_captions(&mut self) -> bool {
        let Some(captions) = self.video.captions.as_mut() else {
            return false;
        };
        let before = captions.decided_until;
        let audio_segment = &self.tracks[Track::Audio].segment;
        self.audio_out.queue.announce_decided(|item| match item {
            DecidedItem::Segment(queued, outcome) => {
                let segment = &queued.segment;
                // A stream's first frame may lie before its segment's start
                // (AAC priming cut by an edit list): its running time is
                // then negative, its captions start at 0.
                let pts = gst::ClockTime::from_nseconds(segment.start());
                let Some(start) = audio_segment
                    .to_running_time_full(pts)
                    .map(|rt| rt.positive().unwrap_or(gst::ClockTime::ZERO))
                else {
                    return;
                };
                let text = match outcome {
                    Outcome::Dubbed(dubbed) => Some(&dubbed.text),
                    Outcome::Original(_) => None,
                };
                captions.segment_decided(start.nseconds(), segment.duration(), text);
            }
            DecidedItem::Event(event) => {
                if event.type_() == gst::EventType::Eos {
                    captions.audio_ended();
                }
            }
        });
        captions.decided_until != before
    }
}
