// SPDX-License-Identifier: MPL-2.0

//! A track that never comes: a video-only or audio-only input.
//!
//! gst-launch links `d.audio_0 ! aacparse` only when the demuxer adds that
//! pad, and a file without audio never does. The muxer after stsdub would
//! then wait for audio forever, even without stsdub in the pipeline. So when
//! one sink pad has received nothing (no stream-start) and its branch reaches
//! no source (it ends in an unlinked pad upstream) while the other track's
//! input has run [`ABSENT_AFTER`], or has ended, that track is taken to be
//! absent: its src pad gets stream-start, segment and EOS, and downstream
//! stops waiting for it.
//!
//! qtdemux and matroskademux add every pad before they push data; flvdemux
//! adds a pad at that stream's first packet, so a stream starting late shows
//! its pad late. [`ABSENT_AFTER`] is flvdemux's own threshold for giving up
//! on a stream that its header announces and that has not shown up yet.

/// How long the present track's input may run before a silent, unlinked
/// other track is taken to be absent.
pub const ABSENT_AFTER: gst::ClockTime = gst::ClockTime::from_seconds(6);

/// Watches one track's sink pad on behalf of the other track's input.
#[derive(Debug, Default)]
pub struct AbsenceWatch {
    /// Running time of the other track's first input.
    first_input: Option<gst::ClockTime>,
    /// The watched track has begun (stream-start): it is never absent.
    started: bool,
    declared: bool,
    /// Input came after all, and was warned about.
    late_input: bool,
}

impl AbsenceWatch {
    /// The watched sink pad received its stream-start.
    pub fn started(&mut self) {
        self.started = true;
    }

    /// The other track's input reached `running_time`. `dangling`: the
    /// watched branch reaches no source; asked only once the threshold has
    /// passed. True once: the watched track is absent from now on.
    pub fn input_at(
        &mut self,
        running_time: Option<gst::ClockTime>,
        dangling: impl FnOnce() -> bool,
    ) -> bool {
        let Some(running_time) = running_time else {
            return false;
        };
        let first = *self.first_input.get_or_insert(running_time);
        running_time.saturating_sub(first) >= ABSENT_AFTER && self.declare_if(dangling)
    }

    /// The other track's input has ended.
    pub fn other_ended(&mut self, dangling: impl FnOnce() -> bool) -> bool {
        self.declare_if(dangling)
    }

    /// The watched track was declared absent.
    pub fn declared(&self) -> bool {
        self.declared
    }

    /// Input for the absent track came after all: true the first time only,
    /// so it is warned about once.
    pub fn first_late_input(&mut self) -> bool {
        !std::mem::replace(&mut self.late_input, true)
    }

    fn declare_if(&mut self, dangling: impl FnOnce() -> bool) -> bool {
        if self.started || self.declared {
            return false;
        }
        self.declared = dangling();
        self.declared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: gst::ClockTime = gst::ClockTime::MSECOND;

    fn yes() -> bool {
        true
    }

    #[test]
    fn a_dangling_track_is_absent_after_six_seconds_of_the_other() {
        let mut watch = AbsenceWatch::default();
        assert!(!watch.input_at(Some(500 * MS), yes));
        assert!(!watch.input_at(Some(6_499 * MS), || panic!("asked too early")));
        assert!(
            watch.input_at(Some(6_500 * MS), yes),
            "6 s after the first input"
        );
        assert!(watch.declared());
        assert!(!watch.input_at(Some(7_000 * MS), yes), "declared once");
    }

    #[test]
    fn a_linked_branch_is_asked_again_until_it_starts() {
        let mut watch = AbsenceWatch::default();
        assert!(!watch.input_at(Some(gst::ClockTime::ZERO), yes));
        assert!(!watch.input_at(Some(60_000 * MS), || false));
        watch.started();
        assert!(!watch.input_at(Some(61_000 * MS), || panic!("asked after start")));
        assert!(!watch.other_ended(yes));
        assert!(!watch.declared());
    }

    #[test]
    fn a_dangling_track_is_absent_when_the_other_ends_early() {
        let mut watch = AbsenceWatch::default();
        assert!(!watch.input_at(Some(gst::ClockTime::ZERO), yes));
        assert!(watch.other_ended(yes));
        assert!(!watch.other_ended(yes));
    }

    #[test]
    fn untimed_input_does_not_count() {
        let mut watch = AbsenceWatch::default();
        assert!(!watch.input_at(None, yes));
        assert!(!watch.input_at(Some(10_000 * MS), yes), "first timed input");
        assert!(watch.input_at(Some(16_000 * MS), yes));
    }

    #[test]
    fn late_input_for_an_absent_track_is_warned_about_once() {
        let mut watch = AbsenceWatch::default();
        assert!(watch.other_ended(yes));
        assert!(watch.first_late_input());
        assert!(!watch.first_late_input());
    }
}
