//! Cuts a stream of AAC frames into segments on frame boundaries. Pure.
//!
//! A segment closes on the frame that brings it to at least the target
//! duration (never shorter, at most one frame longer), so a 60 s input at 6 s
//! gives nine full segments and a tenth, partial one at EOS.
//! A timestamp gap or a DISCONT closes the segment early and the next one is
//! anchored on the new timestamp: we never invent audio to fill a gap.
//!
//! Timestamps are re-derived from the sample count since the last anchor
//! (anchor + n × 1024 / rate), so jitter from a network source never reaches
//! the output and error never accumulates; an input that drifts more than half
//! a frame from that timeline is a discontinuity and re-anchors.

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

#[derive(Debug)]
pub struct Segmenter<F> {
    target: u64,
    next_batch: u64,
    current: Vec<Frame<F>>,
    /// Samples per second; 0 until known (then input timestamps are kept).
    sample_rate: u32,
    /// Timestamp of the first frame since the last discontinuity...
    anchor: Option<u64>,
    /// ...and the frames placed since.
    since_anchor: u64,
}

/// Samples per AAC frame.
const FRAME_SAMPLES: u128 = 1024;

impl<F> Segmenter<F> {
    /// `target` is the segment duration in nanoseconds.
    pub fn new(target: u64) -> Self {
        Self {
            target,
            next_batch: 0,
            current: Vec::new(),
            sample_rate: 0,
            anchor: None,
            since_anchor: 0,
        }
    }

    /// The stream's sample rate (from its caps); re-anchors on the next frame.
    pub fn set_sample_rate(&mut self, rate: u32) {
        if rate != self.sample_rate {
            self.sample_rate = rate;
            self.anchor = None;
        }
    }

    /// Adds one frame; returns the segments it completed (none, one, or two
    /// when a discontinuity closes the previous one and this frame fills the next).
    pub fn push(&mut self, mut frame: Frame<F>, discont: bool) -> Vec<Segment<F>> {
        let mut done = Vec::new();
        if self.breaks_continuity(&frame, discont) {
            done.extend(self.finish());
            self.anchor = None;
        }
        self.place(&mut frame);
        self.current.push(frame);
        if self.accumulated() >= self.target {
            done.extend(self.finish());
        }
        done
    }

    /// Closes the segment under way, if any (EOS, or before a discontinuity).
    pub fn finish(&mut self) -> Option<Segment<F>> {
        if self.current.is_empty() {
            return None;
        }
        let segment = Segment {
            batch: self.next_batch,
            frames: std::mem::take(&mut self.current),
        };
        self.next_batch += 1;
        Some(segment)
    }

    /// Drops the segment under way (flush): its audio is discarded downstream too.
    pub fn discard(&mut self) {
        self.current.clear();
        self.anchor = None;
    }

    /// Time of the n-th frame after the anchor, exact to the nanosecond.
    fn time_of(&self, anchor: u64, n: u64) -> u64 {
        let offset =
            u128::from(n) * FRAME_SAMPLES * 1_000_000_000 / u128::from(self.sample_rate.max(1));
        anchor + offset as u64
    }

    /// Puts the frame on the sample timeline (when the rate is known).
    fn place(&mut self, frame: &mut Frame<F>) {
        if self.sample_rate == 0 {
            return;
        }
        let anchor = match self.anchor {
            Some(anchor) => anchor,
            None => {
                self.anchor = Some(frame.pts);
                self.since_anchor = 0;
                frame.pts
            }
        };
        frame.pts = self.time_of(anchor, self.since_anchor);
        frame.duration = self.time_of(anchor, self.since_anchor + 1) - frame.pts;
        self.since_anchor += 1;
    }

    /// Frames waiting for their segment to complete.
    pub fn pending_frames(&self) -> usize {
        self.current.len()
    }

    fn accumulated(&self) -> u64 {
        match (self.current.first(), self.current.last()) {
            (Some(first), Some(last)) => (last.pts + last.duration).saturating_sub(first.pts),
            _ => 0,
        }
    }

    /// A gap or overlap of more than half a frame is a discontinuity: sample
    /// positions can no longer be derived from the segment's start.
    fn breaks_continuity(&self, frame: &Frame<F>, discont: bool) -> bool {
        let (expected, frame_duration) = match (self.anchor, self.current.last()) {
            (Some(anchor), _) if self.sample_rate != 0 => {
                (self.time_of(anchor, self.since_anchor), self.time_of(0, 1))
            }
            (_, Some(last)) => (last.pts + last.duration, last.duration),
            _ => return false,
        };
        discont || frame.pts.abs_diff(expected) > frame_duration / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_48K: u64 = 21_333_333; // 1024 samples at 48 kHz

    fn frame(index: u64) -> Frame<u64> {
        Frame {
            data: index,
            pts: index * 1024 * 1_000_000_000 / 48_000,
            duration: FRAME_48K,
        }
    }

    fn run(frames: impl IntoIterator<Item = Frame<u64>>, target: u64) -> Vec<Segment<u64>> {
        let mut segmenter = Segmenter::new(target);
        segmenter.set_sample_rate(48_000);
        let mut out: Vec<_> = frames
            .into_iter()
            .flat_map(|f| segmenter.push(f, false))
            .collect();
        out.extend(segmenter.finish());
        out
    }

    #[test]
    fn sixty_seconds_make_ten_segments_the_last_partial() {
        let frames = (0..2813).map(frame); // 60.01 s at 48 kHz
        let segments = run(frames, 6_000_000_000);
        assert_eq!(segments.len(), 10);
        for s in &segments[..9] {
            assert_eq!(s.frames.len(), 282);
        }
        assert_eq!(segments[9].frames.len(), 2813 - 9 * 282);
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
    fn segment_boundaries_are_contiguous() {
        let segments = run((0..1000).map(frame), 6_000_000_000);
        for pair in segments.windows(2) {
            assert!(pair[0].end().abs_diff(pair[1].start()) <= 1);
        }
        assert!(segments[0].duration() >= 6_000_000_000);
        assert!(segments[0].duration() < 6_000_000_000 + FRAME_48K);
    }

    #[test]
    fn gap_closes_segment_and_reanchors() {
        let frames = (0..100).map(frame).chain((200..300).map(frame));
        let segments = run(frames, 6_000_000_000);
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0].frames.len(), 100);
        assert_eq!(segments[1].start(), frame(200).pts);
        assert_eq!(segments[1].frames.len(), 100);
    }

    #[test]
    fn jittery_timestamps_are_put_back_on_the_sample_timeline() {
        // ±8 ms of network jitter: less than half a frame, so no discontinuity.
        let jitter = [0i64, 8, -8, 5, -3, 7, -6, 0];
        let frames = (0..400u64).map(|i| Frame {
            data: i,
            pts: (frame(i).pts as i64 + jitter[(i % 8) as usize] * 1_000_000).max(0) as u64,
            duration: FRAME_48K,
        });
        let segments = run(frames, 6_000_000_000);
        let all: Vec<&Frame<u64>> = segments.iter().flat_map(|s| &s.frames).collect();
        assert_eq!(segments.len(), 2, "no split on jitter");
        for (i, f) in all.iter().enumerate() {
            assert_eq!(
                f.pts,
                (i as u128 * 1024 * 1_000_000_000 / 48_000) as u64,
                "frame {i}"
            );
            assert!(f.duration == 21_333_333 || f.duration == 21_333_334);
        }
    }

    #[test]
    fn slow_drift_beyond_half_a_frame_re_anchors() {
        // The input clock runs 0.1 % fast: after ~11 s it is half a frame off.
        let frames = (0..1000u64).map(|i| Frame {
            data: i,
            pts: frame(i).pts * 1001 / 1000,
            duration: FRAME_48K,
        });
        let segments = run(frames, 60_000_000_000);
        assert!(segments.len() >= 2, "drift re-anchors");
        let second = &segments[1];
        assert_eq!(
            second.start(),
            frame(second.frames[0].data).pts * 1001 / 1000,
            "anchored on the input"
        );
    }

    #[test]
    fn discont_flag_closes_segment_even_without_gap() {
        let mut segmenter = Segmenter::new(6_000_000_000);
        segmenter.set_sample_rate(48_000);
        assert!(segmenter.push(frame(0), false).is_empty());
        assert!(segmenter.push(frame(1), false).is_empty());
        let closed = segmenter.push(frame(2), true);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].frames.len(), 2);
        assert_eq!(segmenter.pending_frames(), 1);
    }

    #[test]
    fn discard_drops_the_partial_segment_but_keeps_numbering() {
        let mut segmenter = Segmenter::new(100_000_000);
        let full: Vec<_> = (0..5)
            .flat_map(|i| segmenter.push(frame(i), false))
            .collect();
        assert_eq!(full.len(), 1);
        segmenter.push(frame(5), false);
        segmenter.discard();
        assert_eq!(segmenter.pending_frames(), 0);
        assert_eq!(segmenter.finish(), None);
        let next: Vec<_> = (10..15)
            .flat_map(|i| segmenter.push(frame(i), false))
            .collect();
        assert_eq!(next[0].batch, 1);
    }
}
