// SPDX-License-Identifier: MPL-2.0

//! The element's tracks, and what each of them holds the same way. Audio
//! and video are instances of one [`TrackState`], reached by [`Track`]
//! through [`PerTrack`]; a third track adds a field there, not a copy of
//! every field and every `match`.

use std::ops::{Index, IndexMut};

use super::absent::AbsenceWatch;

/// The element's pad pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Track {
    Audio,
    Video,
}

impl Track {
    pub(super) const ALL: [Track; 2] = [Track::Audio, Track::Video];

    pub(super) fn other(self) -> Self {
        match self {
            Track::Audio => Track::Video,
            Track::Video => Track::Audio,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Track::Audio => "audio",
            Track::Video => "video",
        }
    }
}

/// One `T` per track, indexed by [`Track`].
#[derive(Debug, Default)]
pub(super) struct PerTrack<T> {
    audio: T,
    video: T,
}

impl<T> PerTrack<T> {
    pub(super) fn new(mut make: impl FnMut(Track) -> T) -> Self {
        Self {
            audio: make(Track::Audio),
            video: make(Track::Video),
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        Track::ALL.into_iter().map(|track| &self[track])
    }
}

impl<T> Index<Track> for PerTrack<T> {
    type Output = T;

    fn index(&self, track: Track) -> &T {
        match track {
            Track::Audio => &self.audio,
            Track::Video => &self.video,
        }
    }
}

impl<T> IndexMut<Track> for PerTrack<T> {
    fn index_mut(&mut self, track: Track) -> &mut T {
        match track {
            Track::Audio => &mut self.audio,
            Track::Video => &mut self.video,
        }
    }
}

/// What every track holds, input to output.
pub(super) struct TrackState {
    /// The input's segment (audio: reached back, see `segmenter.rs`).
    pub(super) segment: gst::FormattedSegment<gst::ClockTime>,
    /// Between flush-start and flush-stop, and while the src pad is inactive.
    pub(super) flushing: bool,
    /// Running time up to which output has left.
    pub(super) position: Option<gst::ClockTime>,
    /// Whether the track never comes (see `absent.rs`), watched from the
    /// other track's input.
    pub(super) absence: AbsenceWatch,
}

impl Default for TrackState {
    fn default() -> Self {
        Self {
            segment: gst::FormattedSegment::new(),
            flushing: true,
            position: None,
            absence: AbsenceWatch::default(),
        }
    }
}

/// Why video_sink refuses `caps`: audio linked to it, which happens when a
/// launch line's `! stsdub` meets a stream that audio_sink does not take
/// (its caps are AAC's only, so the link falls to video_sink's ANY).
pub(super) fn refusal_of_video_sink_caps(caps: &gst::CapsRef) -> Option<String> {
    let name = caps.structure(0)?.name();
    name.starts_with("audio/").then(|| {
        format!(
            "video_sink got audio ({caps}): stsdub dubs AAC only, on audio_sink \
             (audio/mpeg, mpegversion=4, framed, with codec_data: link aacparse first); \
             decode and encode other audio in front of it, e.g. \
             `decodebin ! audioconvert ! audioresample ! avenc_aac ! aacparse ! stsdub.audio_sink`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_track_reaches_its_own_instance() {
        let mut names = PerTrack::new(|track| track.name().to_owned());
        names[Track::Video].push('!');
        assert_eq!(names[Track::Audio], "audio");
        assert_eq!(names[Track::Video], "video!");
        assert_eq!(names.iter().count(), Track::ALL.len());
        assert!(Track::ALL.iter().all(|t| t.other() != *t));
    }
}
