//! Cuts a stream of AAC frames into segments on frame boundaries. Pure.
//!
//! A segment closes on the frame that brings it to at least the target
//! duration (never shorter, at most one frame longer), so a 60 s input at 6 s
//! gives nine full segments and a tenth, partial one at EOS.
//! A timestamp gap or a DISCONT closes the segment early and the next one is
//! anchored on the new timestamp: we never invent audio to fill a gap.

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
}

impl<F> Segmenter<F> {
    /// `target` is the segment duration in nanoseconds.
    pub fn new(target: u64) -> Self {
        Self {
            target,
            next_batch: 0,
            current: Vec::new(),
        }
    }

    /// Adds one frame; returns the segments it completed (none, one, or two
    /// when a discontinuity closes the previous one and this frame fills the next).
    pub fn push(&mut self, frame: Frame<F>, discont: bool) -> Vec<Segment<F>> {
        let mut done = Vec::new();
        if self.breaks_continuity(&frame, discont) {
            done.extend(self.finish());
        }
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
        let Some(last) = self.current.last() else {
            return false;
        };
        let expected = last.pts + last.duration;
        discont || frame.pts.abs_diff(expected) > last.duration / 2
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
    fn discont_flag_closes_segment_even_without_gap() {
        let mut segmenter = Segmenter::new(6_000_000_000);
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
