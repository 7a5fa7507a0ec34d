// SPDX-License-Identifier: MPL-2.0

//! The segmenter's sample timeline: where sample 0 lies ([`Anchor`]), how
//! it follows the input's stamps while they settle ([`Settling`]), and a
//! drift that has not lasted long enough to re-anchor yet ([`Drift`]). See
//! `segmenter.rs` for the rules.

/// When timestamps are taken as continuous, in ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineRules {
    pub alignment_threshold: u64,
    pub discont_wait: u64,
}

impl Default for TimelineRules {
    /// GStreamer's audio sink defaults: 40 ms and 1 s.
    fn default() -> Self {
        Self {
            alignment_threshold: 40_000_000,
            discont_wait: 1_000_000_000,
        }
    }
}

/// Where the timeline's sample 0 is, and how many samples are placed since.
#[derive(Debug, Clone, Copy)]
pub(super) struct Anchor {
    pub(super) pts: u64,
    pub(super) samples: u64,
    /// How far the timeline runs behind where the input's own stamps put
    /// it, because it never goes back before what has closed: the input is
    /// compared with the timeline after adding this.
    pub(super) lag: u64,
}

impl Anchor {
    /// Sample 0 at `input_pts`, or at `not_before` when that is later.
    pub(super) fn at(input_pts: u64, not_before: Option<u64>) -> Self {
        let pts = not_before.map_or(input_pts, |end| input_pts.max(end));
        Self {
            pts,
            samples: 0,
            lag: pts - input_pts,
        }
    }
}

/// Frames whose offset the settling timeline follows: about half a second
/// at 48 kHz, long enough for a median to ignore a late packet.
const SETTLE_WINDOW: usize = 24;
/// The smallest move of a settling timeline: below the precision anything
/// downstream measures A/V with, and few enough moves to re-time the
/// queued segments each time.
pub(super) const SETTLE_STEP: i64 = 500_000;

/// The timeline before any audio has left: free to move to where the
/// input's stamps put it.
#[derive(Debug, Default)]
pub(super) struct Settling {
    /// Input stamp minus timeline position, for the last frames (ns).
    pub(super) offsets: std::collections::VecDeque<i64>,
    /// The earliest position placed: the timeline never moves before 0.
    pub(super) earliest: Option<u64>,
}

impl Settling {
    pub(super) fn note(&mut self, offset: i64) {
        if self.offsets.len() == SETTLE_WINDOW {
            self.offsets.pop_front();
        }
        self.offsets.push_back(offset);
    }

    /// On the stack: it runs for every frame while settling, on the
    /// streaming thread.
    pub(super) fn median(&self) -> i64 {
        let mut sorted = [0i64; SETTLE_WINDOW];
        let held = self.offsets.len().min(SETTLE_WINDOW);
        for (slot, offset) in sorted.iter_mut().zip(&self.offsets) {
            *slot = *offset;
        }
        let sorted = &mut sorted[..held];
        sorted.sort_unstable();
        sorted.get(held / 2).copied().unwrap_or(0)
    }

    /// `shift` limited so that nothing placed moves before 0.
    pub(super) fn bounded(&self, shift: i64) -> i64 {
        let earliest = self
            .earliest
            .map_or(0, |e| i64::try_from(e).unwrap_or(i64::MAX));
        shift.max(-earliest)
    }

    pub(super) fn moved(&mut self, shift: i64) {
        for offset in &mut self.offsets {
            *offset -= shift;
        }
        self.earliest = self.earliest.map(|e| e.saturating_add_signed(shift));
    }
}

/// A drift beyond the threshold that has not lasted long enough yet.
#[derive(Debug, Clone, Copy)]
pub(super) struct Drift {
    pub(super) since_pts: u64,
    /// The first drifted frame's index in the segment under way, if it is there.
    pub(super) index: Option<usize>,
}
