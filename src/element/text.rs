// SPDX-License-Identifier: MPL-2.0

//! The text_src pad: each dubbed segment's words (`caption-text`), one
//! buffer per caption as `captions::layout` splits and times them, on the
//! audio's output timeline, and a GAP event for a segment without words
//! (a fallback), so that a muxer or live sink never waits on it. Queued
//! as soon as the segment is decided (`caption_feed.rs`), ahead of its
//! audio, and pushed by a task of its own: a muxer that blocks a pad until
//! every pad has data (collectpads: matroskamux, mp4mux) would otherwise
//! hold the audio task in the text push while it waits for that very
//! audio. For the same muxers, not live, a segment's audio leaves only
//! once the next one's words are queued (`audio.rs`). Unlinked, the pad
//! costs a check (no queue, no task). Its stream-start, caps, segment and
//! EOS follow the audio's.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::category::CAT;
use super::imp::StsDub;
use super::state::Track;
use super::text_out::{TextItem, caps};
use crate::captions::layout;

impl StsDub {
    /// Activation: the task starts with the first item queued, and stops
    /// here.
    pub(super) fn activate_text(
        &self,
        pad: &gst::Pad,
        active: bool,
    ) -> Result<(), gst::LoggableError> {
        self.text_out.set_flushing(!active);
        if !active {
            pad.stop_task()
                .map_err(|err| gst::loggable_error!(CAT, "cannot stop the text task: {err}"))?;
        }
        Ok(())
    }

    /// Latency as the audio's (its buffers leave with the audio), caps as
    /// the template's; the rest by default.
    pub(super) fn text_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(_) => self.src_query(&self.src_pads[Track::Audio], query),
            gst::QueryViewMut::Caps(query) => {
                let ours = caps();
                let result = match query.filter() {
                    Some(filter) => {
                        filter.intersect_with_mode(&ours, gst::CapsIntersectMode::First)
                    }
                    None => ours,
                };
                query.set_result(&result);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    /// The text track's counterpart of an event leaving on audio_src.
    pub(super) fn queue_text_event(&self, event: &gst::Event) {
        let text_event = match event.view() {
            gst::EventView::StreamStart(start) => {
                let stream_id = format!("{}/text", start.stream_id());
                let mut builder =
                    gst::event::StreamStart::builder(&stream_id).flags(gst::StreamFlags::SPARSE);
                if let Some(group) = start.group_id() {
                    builder = builder.group_id(group);
                }
                builder.build()
            }
            gst::EventView::Caps(_) => gst::event::Caps::new(&caps()),
            gst::EventView::Segment(_) | gst::EventView::Eos(_) => event.clone(),
            _ => return,
        };
        if self.text_src.is_linked() {
            self.queue_text(TextItem::Event(text_event));
        } else {
            // Kept on the pad for a link made later.
            let _ = self.text_src.store_sticky_event(&text_event);
        }
    }

    /// The words of the segment at `pts`, `duration` long (ns, the audio's
    /// timeline), or a gap when it has none.
    pub(super) fn queue_text_segment(&self, pts: u64, duration: u64, words: Option<&str>) {
        if !self.text_src.is_linked() {
            return;
        }
        let captions = words.map_or_else(Vec::new, |w| layout::captions(w, pts, duration));
        if captions.is_empty() {
            let gap = gst::event::Gap::builder(gst::ClockTime::from_nseconds(pts))
                .duration(gst::ClockTime::from_nseconds(duration))
                .build();
            self.queue_text(TextItem::Event(gap));
            return;
        }
        for caption in captions {
            let mut buffer = gst::Buffer::from_mut_slice(caption.rows.join("\n").into_bytes());
            if let Some(buffer) = buffer.get_mut() {
                buffer.set_pts(gst::ClockTime::from_nseconds(caption.start));
                buffer.set_duration(gst::ClockTime::from_nseconds(caption.end - caption.start));
            }
            self.queue_text(TextItem::Buffer(buffer));
        }
    }

    /// Queues `item` for the text task, starting it if it is not running.
    fn queue_text(&self, item: TextItem) {
        if self.text_out.enqueue(item) {
            self.start_text_task();
        }
    }

    fn start_text_task(&self) {
        let element = self.obj().downgrade();
        let started = self.text_src.start_task(move || {
            if let Some(element) = element.upgrade() {
                element.imp().text_loop();
            }
        });
        if let Err(err) = started {
            gst::warning!(
                CAT,
                imp = self,
                "cannot start the text output task: {err}; no text"
            );
        }
    }

    /// One iteration of the text task: the next item leaves. A text branch
    /// that fails must not stop the dub: its errors only pause this task.
    fn text_loop(&self) {
        let Some(item) = self.text_out.next_item() else {
            let _ = self.text_src.pause_task();
            return;
        };
        gst::log!(
            CAT,
            imp = self,
            "text out: {}",
            match &item {
                TextItem::Buffer(b) => format!("buffer at {:?}", b.pts()),
                TextItem::Event(e) => format!("{:?}", e.type_()),
            }
        );
        let ended = match item {
            TextItem::Buffer(buffer) => self
                .text_src
                .push(buffer)
                .is_err_and(|e| e != gst::FlowError::NotLinked),
            TextItem::Event(event) => {
                let eos = event.type_() == gst::EventType::Eos;
                self.text_src.push_event(event);
                eos
            }
        };
        if ended {
            let _ = self.text_src.pause_task();
            self.text_out.task_paused();
        }
    }
}
