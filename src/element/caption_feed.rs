// SPDX-License-Identifier: MPL-2.0

//! What feeds the captions (`captions.rs`) and text_src (`text.rs`): the
//! output queue's decided segments, in order, as soon as they are decided
//! (ahead of their audio), and the video items on their way out.

use gst::prelude::*;

use super::imp::StsDub;
use super::settings::CaptionTextProperty;
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
}

impl StsDub {
    /// Shows the captions and text_src what is newly decided of the audio
    /// output, in order; true when that lets a held video frame go.
    pub(super) fn announce_decided(&self, state: &mut State) -> bool {
        let text_linked = self.text_src.is_linked();
        let words_of = state.settings.caption_text;
        let State {
            audio_out,
            video,
            tracks,
            ..
        } = state;
        let before = video.captions.as_ref().and_then(|c| c.decided_until);
        let audio_segment = &tracks[Track::Audio].segment;
        audio_out.queue.announce_decided(|item| match item {
            DecidedItem::Segment(queued, outcome) => {
                let segment = &queued.segment;
                let text = match outcome {
                    Outcome::Dubbed(dubbed) => Some(&dubbed.text),
                    Outcome::Original(_) => None,
                };
                if text_linked {
                    let words = text.map(|text| match words_of {
                        CaptionTextProperty::Translation => text.translation.as_str(),
                        CaptionTextProperty::Transcript => text.transcript.as_str(),
                    });
                    // Not before the audio's segment starts (AAC priming cut
                    // by an edit list): a muxer would clip the caption away.
                    let from = audio_segment.start().map_or(segment.start(), |start| {
                        start.nseconds().max(segment.start())
                    });
                    let until = segment.start() + segment.duration();
                    self.queue_text_segment(from, until.saturating_sub(from), words);
                }
                // A stream's first frame may lie before its segment's start
                // (AAC priming cut by an edit list): its running time is
                // then negative, its captions start at 0.
                let pts = gst::ClockTime::from_nseconds(segment.start());
                if let (Some(captions), Some(start)) = (
                    video.captions.as_mut(),
                    audio_segment
                        .to_running_time_full(pts)
                        .map(|rt| rt.positive().unwrap_or(gst::ClockTime::ZERO)),
                ) {
                    captions.segment_decided(start.nseconds(), segment.duration(), text);
                }
            }
            DecidedItem::Event(event) => {
                if text_linked {
                    self.queue_text_event(event);
                }
                if event.type_() == gst::EventType::Eos
                    && let Some(captions) = video.captions.as_mut()
                {
                    captions.audio_ended();
                }
            }
        });
        video.captions.as_ref().and_then(|c| c.decided_until) != before
    }
}
