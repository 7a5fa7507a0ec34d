// SPDX-License-Identifier: MPL-2.0

//! Cuts a stream of AAC frames into segments on frame boundaries. Pure.
//!
//! Where a segment closes is the cut policy's choice (`cut_policy.rs`):
//! at the longest duration (`fixed`, never shorter, at most one frame
//! longer: a 60 s input at 6 s gives nine full segments and a tenth, partial
//! one at EOS), or at a pause in the speech (`pauses`).
//!
//! Frames are placed on a sample timeline, as GStreamer's audio sinks do:
//! a frame whose timestamp is within `alignment_threshold` of the position
//! its sample count gives is continuous and stamped at that position, so
//! timestamp jitter (a source that stamps on arrival) neither splits a
//! segment nor reaches the output. A DISCONT flag re-anchors the timeline at
//! once; a drift beyond the threshold re-anchors it when it has lasted
//! `discont_wait`, and the segment closes where the drift began. Either way
//! the next segment starts at the input's own timestamp: a real gap stays a
//! gap, never filled with invented audio.
//!
//! Until the first audio leaves the element, the timeline *settles*: it
//! follows where the input's stamps put it (the median offset of the last
//! frames within the threshold, and a lasting drift backwards), moving
//! segments already handed out with it ([`Segmenter::take_shift`]). A live
//! source's first stamps are not its last: rtspsrc's settle tens of ms
//! earlier in its first seconds, and a timeline anchored on them would put
//! every frame that much late for the rest of the stream, while the video
//! keeps the settled stamps. Once audio has left ([`Segmenter::hold`]) the
//! timeline never moves back: that would overlap the output.

pub use super::sample_timeline::TimelineRules;
use super::sample_timeline::{Anchor, Drift, SETTLE_STEP, Settling};
use crate::timeline::cut_policy::{CutPolicy, CutReason, CutRules, FrameLevels};

/// One frame and its timing, in nanoseconds (stream time of the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<F> {
    pub data: F,
    pub pts: u64,
    pub duration: u64,
}

/// A run of contiguous frames, numbered from 0 (the plan's batch number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<F> {
    pub batch: u64,
    pub frames: Vec<Frame<F>>,
    /// Why it closed.
    pub cut: CutReason,
    /// The quiet known around a pause cut, in ns.
    pub quiet_ns: Option<u64>,
}

impl<F> Segment<F> {
    pub fn start(&self) -> u64 {
        self.frames.first().map_or(0, |f| f.pts)
    }

    pub fn end(&self) -> u64 {
        self.frames.last().map_or(0, |f| f.pts + f.duration)
    }

    pub fn duration(&self) -> u64 {
        self.end() - self.start()
    }
}

/// A frame held until its segment closes, with the timestamp it came with.
#[derive(Debug)]
struct Held<F> {
    frame: Frame<F>,
    input_pts: u64,
    samples: u64,
}

#[derive(Debug)]
pub struct Segmenter<F> {
    policy: CutPolicy,
    timeline: TimelineRules,
    rate: u64,
    next_batch: u64,
    current: Vec<Held<F>>,
    anchor: Option<Anchor>,
    drift: Option<Drift>,
    /// End of the last frame of a closed segment: a new anchor never lies
    /// before it, so the output never overlaps itself (a source whose
    /// timestamps settle earlier, as rtspsrc's do in its first second, is
    /// followed forward only).
    closed_end: Option<u64>,
    /// Some until audio has left (see the module docs).
    settling: Option<Settling>,
    /// How far the timeline moved since the caller last took it: segments
    /// handed out before must move as much.
    shift: i64,
}

const NS: u64 = 1_000_000_000;

impl<F> Segmenter<F> {
    /// A segmenter counting in nanoseconds until [`Segmenter::set_format`]
    /// gives it the sample rate.
    pub fn new(rules: CutRules, timeline: TimelineRules) -> Self {
        Self {
            policy: CutPolicy::new(rules, 21_333_333),
            timeline,
            rate: NS,
            next_batch: 0,
            current: Vec::new(),
            anchor: None,
            drift: None,
            closed_end: None,
            settling: Some(Settling::default()),
            shift: 0,
        }
    }

    /// Audio has left: from now on the timeline never moves back.
    pub fn hold(&mut self) {
        self.settling = None;
    }

    /// While settling, the earliest position on the timeline (where the
    /// first frame is now).
    pub fn settled_start(&self) -> Option<u64> {
        self.settling.as_ref()?.earliest
    }

    /// How far (ns, signed) the segments handed out must move to stay on the
    /// timeline, if it moved since the last call.
    pub fn take_shift(&mut self) -> Option<i64> {
        let shift = std::mem::take(&mut self.shift);
        (shift != 0).then_some(shift)
    }

    /// A new stream format: the sample rate and frame duration (ns). Call
    /// with nothing held (finish first): the timeline starts anew.
    pub fn set_format(&mut self, rate: u32, frame_ns: u64) {
        self.policy = CutPolicy::new(self.policy.rules(), frame_ns);
        self.rate = u64::from(rate.max(1));
        self.anchor = None;
        self.drift = None;
    }

    /// Caps the longest segment (and the shortest with it): a live latency
    /// below the segment duration must still let each frame leave in time.
    pub fn cap_longest(&mut self, longest: u64) {
        self.policy.cap_longest(longest);
    }

    /// Whether the next frame's levels are needed (`CutPolicy::wants_levels`).
    pub fn wants_levels(&self) -> bool {
        self.policy.wants_levels()
    }

    /// Adds one frame (its levels, when measured); returns the segments it
    /// completed: none, one, or two when a discontinuity closes one and the
    /// policy the next.
    pub fn push(
        &mut self,
        frame: Frame<F>,
        discont: bool,
        levels: Option<FrameLevels>,
    ) -> Vec<Segment<F>> {
        let mut done = Vec::new();
        let input_pts = frame.pts;
        let samples = self.samples_of(frame.duration);
        if discont {
            done.extend(self.close_all(CutReason::Discont));
            self.anchor = None;
        } else if let Some(split) = self.lasting_drift(input_pts) {
            done.extend(self.close_at(split, CutReason::Discont, None));
            self.reanchor_held();
        } else {
            self.follow(input_pts);
        }
        let closed_end = self.closed_end;
        let anchor = *self
            .anchor
            .get_or_insert_with(|| Anchor::at(input_pts, closed_end));
        let pts = self.position(anchor, anchor.samples);
        if let Some(settling) = &mut self.settling {
            settling.earliest.get_or_insert(pts);
        }
        let end = self.position(anchor, anchor.samples + samples);
        self.anchor = Some(Anchor {
            samples: anchor.samples + samples,
            ..anchor
        });
        self.current.push(Held {
            frame: Frame {
                pts,
                duration: end - pts,
                ..frame
            },
            input_pts,
            samples,
        });
        if let Some(cut) = self.policy.push(end - pts, levels) {
            // Frames from a drift still in doubt wait in the next segment:
            // whether they are placed by sample count or by their own
            // timestamps is not known yet.
            let frames = match self.drift.and_then(|d| d.index) {
                Some(drifted) if drifted < cut.frames => drifted,
                _ => cut.frames,
            };
            done.extend(self.close_at(frames, cut.reason, cut.quiet_ns));
        }
        done
    }

    /// Closes what is held (EOS, or a new format). Frames of a drift still
    /// in doubt then keep their own timestamps: no later frame says
    /// otherwise, and a gap must stay a gap.
    pub fn finish(&mut self) -> Vec<Segment<F>> {
        let mut done = Vec::new();
        if let Some(drifted) = self.drift.take().and_then(|d| d.index) {
            done.extend(self.close_at(drifted, CutReason::Discont, None));
            self.reanchor_held();
        }
        done.extend(self.close_all(CutReason::Eos));
        self.anchor = None;
        done
    }

    /// Drops the segment under way (flush): its audio is discarded downstream
    /// too. The timeline starts anew with the next frame.
    pub fn discard(&mut self) {
        self.current.clear();
        self.closed_end = None;
        self.settling = Some(Settling::default());
        self.shift = 0;
        self.policy.clear();
        self.anchor = None;
        self.drift = None;
    }

    /// Frames waiting for their segment to complete.
    pub fn pending_frames(&self) -> usize {
        self.current.len()
    }

    fn samples_of(&self, duration: u64) -> u64 {
        ((u128::from(duration) * u128::from(self.rate) + u128::from(NS / 2)) / u128::from(NS))
            as u64
    }

    fn position(&self, anchor: Anchor, samples: u64) -> u64 {
        anchor.pts + (u128::from(samples) * u128::from(NS) / u128::from(self.rate)) as u64
    }

    /// Follows the drift of `input_pts` from the timeline; once it has lasted
    /// `discont_wait`, the index of the held frame where it began (0 when it
    /// began before the segment under way, or with nothing held). A lasting
    /// drift backwards is not followed (the output would overlap what has
    /// left): it becomes the anchor's lag, and no segment closes for it.
    fn lasting_drift(&mut self, input_pts: u64) -> Option<usize> {
        let anchor = self.anchor?;
        let expected = self.position(anchor, anchor.samples);
        let input = input_pts + anchor.lag;
        if input.abs_diff(expected) <= self.timeline.alignment_threshold {
            self.drift = None;
            return None;
        }
        let index = self.current.len();
        let drift = *self.drift.get_or_insert(Drift {
            since_pts: input_pts,
            index: Some(index),
        });
        if input_pts.abs_diff(drift.since_pts) < self.timeline.discont_wait {
            return None;
        }
        self.drift = None;
        if input < expected && self.settling.is_some() {
            // Nothing has left: the whole timeline goes back with the input,
            // and the offsets of frames from before the step are forgotten.
            self.move_timeline(-((expected - input) as i64));
            if let Some(settling) = &mut self.settling {
                settling.offsets.clear();
            }
            return None;
        }
        if input < expected {
            self.anchor = Some(Anchor {
                lag: anchor.lag + (expected - input),
                ..anchor
            });
            return None;
        }
        Some(drift.index.unwrap_or(0))
    }

    /// While settling, moves the timeline to the median of where the last
    /// continuous frames' stamps put it.
    fn follow(&mut self, input_pts: u64) {
        let Some(anchor) = self.anchor else { return };
        if self.drift.is_some() {
            return;
        }
        let expected = self.position(anchor, anchor.samples);
        let offset = input_pts as i64 - expected as i64;
        let threshold = self.timeline.alignment_threshold;
        let Some(settling) = &mut self.settling else {
            return;
        };
        if offset.unsigned_abs() > threshold {
            return;
        }
        settling.note(offset);
        let median = settling.median();
        if median.abs() >= SETTLE_STEP {
            self.move_timeline(median);
        }
    }

    /// Moves everything on the timeline by `shift` ns (settling only):
    /// the anchor, the held frames, and, through `take_shift`, the segments
    /// handed out.
    fn move_timeline(&mut self, shift: i64) {
        let Some(settling) = &mut self.settling else {
            return;
        };
        let shift = settling.bounded(shift);
        settling.moved(shift);
        if let Some(anchor) = &mut self.anchor {
            anchor.pts = anchor.pts.saturating_add_signed(shift);
        }
        for held in &mut self.current {
            held.frame.pts = held.frame.pts.saturating_add_signed(shift);
        }
        self.closed_end = self.closed_end.map(|end| end.saturating_add_signed(shift));
        self.shift += shift;
    }

    /// Puts the held frames (the drifted ones) on a timeline anchored at the
    /// first one's own timestamp.
    fn reanchor_held(&mut self) {
        let Some(first) = self.current.first() else {
            self.anchor = None;
            return;
        };
        let mut anchor = Anchor::at(first.input_pts, self.closed_end);
        for index in 0..self.current.len() {
            let samples = self.current[index].samples;
            let pts = self.position(anchor, anchor.samples);
            let end = self.position(anchor, anchor.samples + samples);
            let frame = &mut self.current[index].frame;
            frame.pts = pts;
            frame.duration = end - pts;
            anchor.samples += samples;
        }
        self.anchor = Some(anchor);
    }

    fn close_all(&mut self, reason: CutReason) -> Option<Segment<F>> {
        let held = self.current.len();
        self.close_at(held, reason, None)
    }

    /// Closes a segment of the first `frames` held frames, if any.
    fn close_at(
        &mut self,
        frames: usize,
        reason: CutReason,
        quiet_ns: Option<u64>,
    ) -> Option<Segment<F>> {
        let frames = frames.min(self.current.len());
        self.policy.take(frames);
        if let Some(drift) = &mut self.drift {
            drift.index = drift.index.and_then(|i| i.checked_sub(frames));
        }
        if frames == 0 {
            return None;
        }
        let closed: Vec<Frame<F>> = self.current.drain(..frames).map(|h| h.frame).collect();
        self.closed_end = closed.last().map(|f| f.pts + f.duration);
        let segment = Segment {
            batch: self.next_batch,
            frames: closed,
            cut: reason,
            quiet_ns,
        };
        self.next_batch += 1;
        Some(segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::cut_policy::Segmentation;

    const FRAME_48K: u64 = 21_333_333; // 1024 samples at 48 kHz

    fn fixed(longest: u64) -> CutRules {
        CutRules {
            segmentation: Segmentation::Fixed,
            shortest: longest,
            longest,
            min_pause: 150_000_000,
            threshold_percent: 50,
        }
    }

    fn segmenter(longest: u64) -> Segmenter<u64> {
        let mut segmenter = Segmenter::new(fixed(longest), TimelineRules::default());
        segmenter.set_format(48_000, FRAME_48K);
        segmenter
    }

    fn frame(index: u64) -> Frame<u64> {
        Frame {
            data: index,
            pts: index * 1024 * 1_000_000_000 / 48_000,
            duration: FRAME_48K,
        }
    }

    /// The segments of `frames`, moved as the element moves the queued
    /// ones while the timeline settles (no audio leaves here).
    fn run(frames: impl IntoIterator<Item = Frame<u64>>, target: u64) -> Vec<Segment<u64>> {
        let mut segmenter = segmenter(target);
        let mut out: Vec<Segment<u64>> = Vec::new();
        for frame in frames {
            let closed = segmenter.push(frame, false, None);
            if let Some(shift) = segmenter.take_shift() {
                moved(&mut out, shift);
            }
            out.extend(closed);
        }
        out.extend(segmenter.finish());
        out
    }

    fn moved(segments: &mut [Segment<u64>], shift: i64) {
        for frame in segments.iter_mut().flat_map(|s| s.frames.iter_mut()) {
            frame.pts = frame.pts.saturating_add_signed(shift);
        }
    }

    #[test]
    fn sixty_seconds_make_ten_segments_the_last_partial() {
        let frames = (0..2813).map(frame); // 60.01 s at 48 kHz
        let segments = run(frames, 6_000_000_000);
        assert_eq!(segments.len(), 10);
        for s in &segments[..9] {
            assert_eq!(s.frames.len(), 282);
            assert_eq!(s.cut, CutReason::Longest);
        }
        assert_eq!(segments[9].frames.len(), 2813 - 9 * 282);
        assert_eq!(segments[9].cut, CutReason::Eos);
        assert_eq!(
            segments.iter().map(|s| s.batch).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        // No frame lost or reordered.
        let all: Vec<u64> = segments
            .iter()
            .flat_map(|s| s.frames.iter().map(|f| f.data))
            .collect();
        assert_eq!(all, (0..2813).collect::<Vec<_>>());
    }

    #[test]
    fn segment_boundaries_are_contiguous_and_sample_exact() {
        let segments = run((0..1000).map(frame), 6_000_000_000);
        for pair in segments.windows(2) {
            assert_eq!(pair[0].end(), pair[1].start());
        }
        assert!(segments[0].duration() >= 6_000_000_000);
        assert!(segments[0].duration() < 6_000_000_000 + FRAME_48K);
        // Frame 999 starts at sample 999 * 1024 exactly (rounded down to ns).
        let last = segments
            .last()
            .and_then(|s| s.frames.last())
            .expect("a frame");
        assert_eq!(last.pts, 999 * 1024 * 1_000_000_000 / 48_000);
    }

    /// ±15 ms of arrival jitter, deterministic.
    fn jittered(index: u64) -> Frame<u64> {
        let mut f = frame(index);
        let jitter = ((index * 7919) % 31) as i64 - 15; // -15..=15 ms
        f.pts = (f.pts as i64 + jitter * 1_000_000).max(0) as u64;
        f
    }

    #[test]
    fn timestamp_jitter_does_not_split_segments_nor_reach_the_output() {
        let segments = run((0..2813).map(jittered), 6_000_000_000);
        assert_eq!(segments.len(), 10);
        let first = segments[0].start();
        for (i, f) in segments.iter().flat_map(|s| &s.frames).enumerate() {
            assert_eq!(f.pts, first + i as u64 * 1024 * 1_000_000_000 / 48_000);
        }
        // The timeline settles where the stamps are on average, not where
        // the first one happened to be (jittered(0) is 15 ms early).
        assert!(first.abs_diff(frame(0).pts) <= 1_000_000, "{first}");
    }

    #[test]
    fn stamps_that_settle_earlier_before_anything_left_are_followed() {
        // rtspsrc: from 1 s on, the stamps come 25 ms earlier (within the
        // alignment threshold) and, in another run, 45 ms earlier (beyond
        // it): the whole timeline, closed segments too, goes back with them.
        for settle in [25_000_000, 45_000_000] {
            let frames = (0..600).map(|i| {
                let mut f = frame(i + 100);
                if i >= 47 {
                    f.pts -= settle;
                }
                f
            });
            let segments = run(frames, 2_000_000_000);
            for pair in segments.windows(2) {
                assert_eq!(pair[0].end(), pair[1].start());
            }
            let start = segments[0].start();
            let settled = frame(100).pts - settle;
            assert!(
                start.abs_diff(settled) <= SETTLE_STEP as u64,
                "settle {settle}: starts at {start}, the input's settled stamps at {settled}"
            );
        }
    }

    #[test]
    fn once_audio_has_left_the_timeline_never_goes_back() {
        let mut segmenter = segmenter(1_000_000_000);
        let mut segments = Vec::new();
        for i in 0..200 {
            if i == 60 {
                segmenter.hold();
            }
            let mut f = frame(i + 100);
            if i >= 100 {
                f.pts -= 25_000_000;
            }
            segments.extend(segmenter.push(f, false, None));
            assert_eq!(segmenter.take_shift(), None);
        }
        assert_eq!(segments[0].start(), frame(100).pts);
        for pair in segments.windows(2) {
            assert_eq!(pair[0].end(), pair[1].start());
        }
    }

    #[test]
    fn a_lasting_gap_closes_the_segment_where_it_began_and_reanchors() {
        // 600 ms missing after frame 100: re-anchored after 1 s of drift,
        // with the drifted frames stamped at their own time.
        let gap = 600_000_000;
        let frames = (0..250).map(|i| {
            let mut f = jittered(i);
            if i >= 100 {
                f.pts += gap;
            }
            f
        });
        let segments = run(frames, 6_000_000_000);
        assert_eq!(
            segments.len(),
            2,
            "{:?}",
            segments.iter().map(|s| s.frames.len()).collect::<Vec<_>>()
        );
        assert_eq!(segments[0].frames.len(), 100);
        assert_eq!(segments[0].cut, CutReason::Discont);
        // The gap is kept; the timeline after it settles within the jitter.
        let after_gap = frame(100).pts + gap;
        assert!(segments[1].start().abs_diff(after_gap) <= 15_000_000);
        assert_eq!(segments[1].frames.len(), 150, "no frame invented or lost");
        let second = &segments[1].frames;
        assert_eq!(
            second[149].pts,
            second[0].pts + 149 * 1024 * 1_000_000_000 / 48_000
        );
    }

    #[test]
    fn a_gap_still_in_doubt_at_the_end_keeps_its_timestamps() {
        let gap = 300_000_000;
        let frames = (0..60).map(|i| {
            let mut f = frame(i);
            if i >= 40 {
                f.pts += gap;
            }
            f
        });
        let segments = run(frames, 6_000_000_000);
        assert_eq!(segments.len(), 2);
        assert_eq!(
            (segments[0].frames.len(), segments[0].cut),
            (40, CutReason::Discont)
        );
        assert_eq!(segments[1].start(), frame(40).pts + gap);
        assert_eq!(segments[1].cut, CutReason::Eos);
    }

    #[test]
    fn a_drift_in_doubt_holds_its_frames_back_from_a_cut() {
        // Segments of 1 s; 200 ms missing after frame 40 (0.85 s): the cut
        // at 1 s is made where the drift began, and the drifted frames wait.
        let frames = (0..100).map(|i| {
            let mut f = frame(i);
            if i >= 40 {
                f.pts += 200_000_000;
            }
            f
        });
        let segments = run(frames, 1_000_000_000);
        assert_eq!(segments[0].frames.len(), 40);
        assert_eq!(segments[0].cut, CutReason::Longest);
        assert_eq!(segments[1].start(), frame(40).pts + 200_000_000);
        let total: usize = segments.iter().map(|s| s.frames.len()).sum();
        assert_eq!(total, 100);
    }

    #[test]
    fn timestamps_that_settle_earlier_never_make_the_output_overlap() {
        // After 1 s the source's stamps come 40 ms earlier (rtspsrc's skew
        // estimate settling): followed no further back than what has closed.
        let frames = (0..200).map(|i| {
            let mut f = frame(i);
            if i >= 30 {
                f.pts -= 45_000_000;
            }
            f
        });
        let segments = run(frames, 1_000_000_000);
        for pair in segments.windows(2) {
            assert!(
                pair[1].start() >= pair[0].end(),
                "{} < {}",
                pair[1].start(),
                pair[0].end()
            );
        }
        let total: usize = segments.iter().map(|s| s.frames.len()).sum();
        assert_eq!(total, 200);
    }

    #[test]
    fn a_short_excursion_is_absorbed() {
        let frames = (0..250).map(|i| {
            let mut f = frame(i);
            if (100..110).contains(&i) {
                f.pts += 100_000_000; // 10 frames 100 ms late, then back
            }
            f
        });
        let segments = run(frames, 6_000_000_000);
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].frames[105].pts, frame(105).pts);
    }

    #[test]
    fn discont_flag_closes_segment_even_without_gap() {
        let mut segmenter = segmenter(6_000_000_000);
        assert!(segmenter.push(frame(0), false, None).is_empty());
        assert!(segmenter.push(frame(1), false, None).is_empty());
        let closed = segmenter.push(frame(2), true, None);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].frames.len(), 2);
        assert_eq!(closed[0].cut, CutReason::Discont);
        assert_eq!(segmenter.pending_frames(), 1);
    }

    #[test]
    fn discard_drops_the_partial_segment_but_keeps_numbering() {
        let mut segmenter = segmenter(100_000_000);
        let full: Vec<_> = (0..5)
            .flat_map(|i| segmenter.push(frame(i), false, None))
            .collect();
        assert_eq!(full.len(), 1);
        segmenter.push(frame(5), false, None);
        segmenter.discard();
        assert_eq!(segmenter.pending_frames(), 0);
        assert_eq!(segmenter.finish(), vec![]);
        let next: Vec<_> = (10..15)
            .flat_map(|i| segmenter.push(frame(i), false, None))
            .collect();
        assert_eq!(next[0].batch, 1);
        assert_eq!(
            next[0].start(),
            frame(10).pts,
            "anchored anew after a flush"
        );
    }

    #[test]
    fn a_capped_longest_makes_short_segments() {
        let mut segmenter = segmenter(6_000_000_000);
        segmenter.cap_longest(800_000_000);
        let segments: Vec<_> = (0..100)
            .flat_map(|i| segmenter.push(frame(i), false, None))
            .collect();
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0].frames.len(), 38); // 810.7 ms
    }
}
