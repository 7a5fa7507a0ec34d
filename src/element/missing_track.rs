// SPDX-License-Identifier: MPL-2.0

//! The element's side of `absent.rs`: asking whether a silent track's branch
//! reaches a source, and ending that track's output when it is absent.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::absent::ABSENT_AFTER;
use super::category::CAT;
use super::imp::StsDub;
use super::state::*;

impl StsDub {
    /// No data can come to `track`'s sink pad as the pipeline stands: its
    /// branch ends upstream in a pad that is not linked.
    pub(super) fn dangling(&self, track: Track) -> bool {
        !reaches_a_source(self.sink_pad(track), 0)
    }

    /// The other track's input reached `running_time`: is `track` absent?
    pub(super) fn watch_absence(
        &self,
        state: &mut State,
        track: Track,
        running_time: Option<gst::ClockTime>,
    ) {
        if state
            .absence(track)
            .input_at(running_time, || self.dangling(track))
        {
            self.declare_absent(state, track);
        }
    }

    /// Ends `track`'s output before it began, so downstream stops waiting.
    pub(super) fn declare_absent(&self, state: &mut State, track: Track) {
        let present = self.sink_pad(track.other());
        gst::info!(
            CAT,
            imp = self,
            "stream {}: no {}: {}_sink has had no data and its branch reaches no source, \
             after {} of {} or at its end; {}_src ends",
            state.settings.stream_id,
            track.name(),
            track.name(),
            ABSENT_AFTER,
            track.other().name(),
            track.name(),
        );
        let upstream = present.sticky_event::<gst::event::StreamStart>(0);
        let stream_id = format!(
            "{}/stsdub-no-{}",
            upstream.as_ref().map_or("stsdub", |s| s.stream_id()),
            track.name()
        );
        let mut stream_start = gst::event::StreamStart::builder(&stream_id);
        if let Some(group) = upstream.and_then(|s| s.group_id()) {
            stream_start = stream_start.group_id(group);
        }
        let segment = state.tracks[track.other()].segment.clone();
        state.queue_event(track, stream_start.build());
        state.queue_event(track, gst::event::Segment::new(&segment));
        state.queue_event(track, gst::event::Eos::new());
        if track == Track::Audio
            && let Some(archive) = &mut state.video.archive
        {
            archive.audio_ended();
        }
        self.wake_all();
    }

    /// Input on a track already declared absent (a stream that began more
    /// than `ABSENT_AFTER` late): dropped, with one warning.
    pub(super) fn late_for_absent_track(&self, state: &mut State, track: Track) -> gst::FlowError {
        if state.absence(track).first_late_input() {
            gst::warning!(
                CAT,
                imp = self,
                "stream {}: {} arrived after it was taken to be absent; dropped",
                state.settings.stream_id,
                track.name()
            );
        }
        gst::FlowError::Eos
    }
}

/// Whether data can reach `sink`: its peer is a source's pad, or one whose
/// element has a sink pad that (recursively) can be reached. Bins are seen
/// through their ghost pads' internal links.
fn reaches_a_source(sink: &gst::Pad, depth: usize) -> bool {
    // Deep enough for any real branch; a cycle must not recurse forever.
    const MAX_DEPTH: usize = 32;
    let Some(peer) = sink.peer() else {
        return false;
    };
    if depth >= MAX_DEPTH {
        return true;
    }
    let inputs = internal_links(&peer);
    // No internal links: a source (or an element that does not say).
    inputs.is_empty() || inputs.iter().any(|pad| reaches_a_source(pad, depth + 1))
}

/// The pads linked inside `pad`'s element to `pad`. None when it cannot
/// say: `gst_pad_iterate_internal_links` returns NULL for a pad whose
/// element is gone (a branch torn down while we look, as when an
/// application rebuilds a failed stream), which the gstreamer-rs wrapper
/// asserts against: a panic on the streaming thread.
fn internal_links(pad: &gst::Pad) -> Vec<gst::Pad> {
    use gst::glib::translate::{FromGlibPtrFull, ToGlibPtr};
    // SAFETY: `pad` is a valid pad for the call; the iterator returned, when
    // not NULL, is ours (transfer full).
    let iterator = unsafe { gst::ffi::gst_pad_iterate_internal_links(pad.to_glib_none().0) };
    if iterator.is_null() {
        return Vec::new();
    }
    // SAFETY: a non-NULL iterator of pads, transfer full.
    let mut iterator: gst::Iterator<gst::Pad> = unsafe { gst::Iterator::from_glib_full(iterator) };
    let mut pads = Vec::new();
    while let Ok(Some(pad)) = iterator.next() {
        pads.push(pad);
    }
    pads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_whose_element_is_gone_counts_as_reaching_a_source() {
        gst::init().expect("gst");
        let sink = gst::Pad::builder(gst::PadDirection::Sink)
            .name("sink")
            .build();
        let orphan = gst::Pad::builder(gst::PadDirection::Src)
            .name("orphan")
            .build();
        orphan.link(&sink).expect("link");
        // Unknown, so not dangling: the track is not declared absent on it.
        assert!(reaches_a_source(&sink, 0));
        orphan.unlink(&sink).expect("unlink");
        assert!(!reaches_a_source(&sink, 0));
    }
}
