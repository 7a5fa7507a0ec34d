// SPDX-License-Identifier: MPL-2.0

//! Where a segment closes. Pure: frame durations and block levels in, cut
//! points out.
//!
//! `fixed` closes a segment on the frame that brings it to the longest
//! duration (the plan's behaviour). `pauses` closes it, once it is at least
//! the shortest duration, in the middle of the first pause of the speech: a
//! run of quiet blocks at least `min_pause` long, with half of it on each
//! side of the frame boundary the cut is made on. When the segment reaches
//! the longest duration with no such pause, it closes at the quietest frame
//! boundary between the shortest and the longest duration, and the frames
//! after that boundary start the next segment (they are held until their
//! segment closes anyway, so carrying them costs nothing).
//!
//! "Quiet" is relative to the programme: each block's level in a few
//! frequency bands is read as its presence of speech (`programme_level`:
//! each band measured against its own floor and speech level), and a block
//! is quiet when its presence is below a point `threshold_percent` of the way
//! from the programme's lowest presence to its speech, all over the last
//! 10 s. So a crowd 15 dB under the voice and a silent studio both show
//! their pauses.

pub use super::programme_level::{BANDS, BlockBands, SILENCE_DB};
use super::programme_level::{ProgrammeLevel, SpeechPresence};

/// Levels measured per frame: a frame of 1024 samples (21 ms at 48 kHz) is
/// too coarse to find a 40 ms gap between two words, a quarter of it is not.
pub const BLOCKS_PER_FRAME: usize = 4;

/// The band levels of one frame's [`BLOCKS_PER_FRAME`] consecutive blocks.
pub type FrameLevels = [BlockBands; BLOCKS_PER_FRAME];

/// How a segment's end is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segmentation {
    Fixed,
    Pauses,
}

/// Why a segment closed. The names are metric labels and message fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CutReason {
    /// In a pause of the speech.
    Pause,
    /// At the longest duration (`fixed`), or at the quietest boundary before it.
    Longest,
    /// The stream ended (or its format changed).
    Eos,
    /// The input's timeline broke (DISCONT flag, or a lasting drift).
    Discont,
}

impl CutReason {
    pub const ALL: [CutReason; 4] = [
        CutReason::Pause,
        CutReason::Longest,
        CutReason::Eos,
        CutReason::Discont,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CutReason::Pause => "pause",
            CutReason::Longest => "longest",
            CutReason::Eos => "eos",
            CutReason::Discont => "discont",
        }
    }
}

/// A decision to close the segment under way after its first `frames` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub frames: usize,
    pub reason: CutReason,
    /// Quiet time around the cut known when it was made, in ns (`pauses` only).
    pub quiet_ns: Option<u64>,
}

/// The settings of the policy; durations in ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutRules {
    pub segmentation: Segmentation,
    pub shortest: u64,
    pub longest: u64,
    pub min_pause: u64,
    /// 0..=100: where "quiet" ends between the noise floor and the speech level.
    pub threshold_percent: u32,
}

/// How much of the programme its floor and speech level are measured over.
const PROGRAMME_WINDOW_NS: u64 = 10_000_000_000;

/// The segment under way as the policy sees it: frame ends and quiet blocks.
#[derive(Debug)]
pub struct CutPolicy {
    rules: CutRules,
    bands: SpeechPresence,
    /// The programme's presence of speech, for what counts as quiet.
    programme: ProgrammeLevel,
    /// End of each frame of the segment under way, from its start, in ns.
    ends: Vec<u64>,
    /// Per block of the segment under way: its presence (0 dB when unknown).
    levels: Vec<f32>,
    quiet: Vec<bool>,
    /// The next frame boundary whose pause test has not been made.
    next_boundary: usize,
    /// The stream's usual frame duration, before any frame is held.
    frame_ns: u64,
    /// The last blocks' levels, for smoothing across segment boundaries.
    recent: [f32; SMOOTHING_BLOCKS - 1],
}

/// Blocks whose mean power decides whether the last of them is quiet: noise
/// beds flicker from block to block, a fricative does not.
const SMOOTHING_BLOCKS: usize = 3;

/// Mean of levels in the power domain, in dB.
fn power_mean_db(levels: &[f32]) -> f32 {
    let mean = levels
        .iter()
        .map(|db| 10f64.powf(f64::from(*db) / 10.0))
        .sum::<f64>()
        / levels.len().max(1) as f64;
    if mean <= 0.0 {
        SILENCE_DB
    } else {
        ((10.0 * mean.log10()) as f32).max(SILENCE_DB)
    }
}

impl CutPolicy {
    /// `frame_ns`: the stream's usual frame duration, to size the windows.
    pub fn new(rules: CutRules, frame_ns: u64) -> Self {
        let block_ns = (frame_ns / BLOCKS_PER_FRAME as u64).max(1);
        let window_blocks = (PROGRAMME_WINDOW_NS / block_ns) as usize;
        Self {
            rules,
            bands: SpeechPresence::new(window_blocks),
            programme: ProgrammeLevel::new(window_blocks),
            ends: Vec::new(),
            levels: Vec::new(),
            quiet: Vec::new(),
            next_boundary: 1,
            frame_ns,
            recent: [0.0; SMOOTHING_BLOCKS - 1],
        }
    }

    pub fn rules(&self) -> CutRules {
        self.rules
    }

    /// Caps the longest duration (a live latency too short for it), and the
    /// shortest with it.
    pub fn cap_longest(&mut self, longest: u64) {
        self.rules.longest = self.rules.longest.min(longest);
        self.rules.shortest = self.rules.shortest.min(self.rules.longest);
    }

    /// Whether the next frame's levels will be looked at: a cut needs the
    /// quiet around boundaries from the shortest duration on, so frames
    /// well before it need not be decoded at all (about half of them). The
    /// lead covers half a pause, the smoothing, and one frame a decoder
    /// needs to settle after frames it skipped.
    pub fn wants_levels(&self) -> bool {
        if self.rules.segmentation == Segmentation::Fixed {
            return false;
        }
        let frame_ns = self.ends.first().copied().unwrap_or(self.frame_ns);
        let lead = self.rules.min_pause / 2 + 3 * frame_ns;
        self.offset(self.frames()) + lead >= self.rules.shortest
    }

    /// Takes the next frame of the segment under way (`levels` None when it
    /// could not be measured: it counts as loud); says where to cut, if now.
    pub fn push(&mut self, duration: u64, levels: Option<FrameLevels>) -> Option<Cut> {
        let start = self.ends.last().copied().unwrap_or(0);
        self.ends.push(start + duration);
        let threshold = self.rules.threshold_percent;
        for block in 0..BLOCKS_PER_FRAME {
            let level = match levels {
                Some(levels) => {
                    let presence = self.bands.add(levels[block]);
                    self.programme.add(presence);
                    presence
                }
                None => 0.0,
            };
            let mut window = [level; SMOOTHING_BLOCKS];
            window[..SMOOTHING_BLOCKS - 1].copy_from_slice(&self.recent);
            self.recent.rotate_left(1);
            self.recent[SMOOTHING_BLOCKS - 2] = level;
            let quiet =
                levels.is_some() && power_mean_db(&window) < self.programme.quiet_below(threshold);
            self.levels.push(level);
            self.quiet.push(quiet);
        }
        match self.rules.segmentation {
            Segmentation::Fixed => self.at_longest(),
            Segmentation::Pauses => self.at_pause().or_else(|| self.at_quietest()),
        }
    }

    /// Forgets the first `frames` frames (they left in a segment); the rest
    /// start the next one.
    pub fn take(&mut self, frames: usize) {
        let frames = frames.min(self.ends.len());
        let offset = if frames == 0 {
            0
        } else {
            self.ends[frames - 1]
        };
        self.ends.drain(..frames);
        for end in &mut self.ends {
            *end -= offset;
        }
        self.levels.drain(..frames * BLOCKS_PER_FRAME);
        self.quiet.drain(..frames * BLOCKS_PER_FRAME);
        self.next_boundary = self.next_boundary.saturating_sub(frames).max(1);
    }

    /// Forgets the segment under way (flush, discontinuity); keeps the
    /// programme's level, which the next audio shares.
    pub fn clear(&mut self) {
        self.take(self.ends.len());
    }

    fn frames(&self) -> usize {
        self.ends.len()
    }

    /// Duration of the first `frames` frames.
    fn offset(&self, frames: usize) -> u64 {
        if frames == 0 {
            0
        } else {
            self.ends[frames - 1]
        }
    }

    fn at_longest(&self) -> Option<Cut> {
        (self.offset(self.frames()) >= self.rules.longest).then_some(Cut {
            frames: self.frames(),
            reason: CutReason::Longest,
            quiet_ns: None,
        })
    }

    /// Blocks of quiet needed on each side of a pause cut.
    fn half_pause_blocks(&self) -> usize {
        let frame_ns = self.offset(1).max(1);
        let block_ns = (frame_ns / BLOCKS_PER_FRAME as u64).max(1);
        (self.rules.min_pause / 2).div_ceil(block_ns).max(1) as usize
    }

    /// The first pause that has ended past the shortest duration: a run of
    /// quiet blocks at least `min_pause` long, followed by a loud block, with
    /// a boundary in it at or past the shortest duration. The cut is made at
    /// the run's deepest boundary (`gap_score`), not at its first: a word's
    /// soft ending already counts as quiet against the programme, the
    /// silence after it is quieter still.
    fn at_pause(&mut self) -> Option<Cut> {
        let min_run = 2 * self.half_pause_blocks();
        let first = self.first_eligible_boundary()?;
        let mut block = self.next_boundary * BLOCKS_PER_FRAME;
        while block < self.quiet.len() {
            if !self.quiet[block] {
                block += 1;
                continue;
            }
            let run_start = block;
            while block < self.quiet.len() && self.quiet[block] {
                block += 1;
            }
            if block == self.quiet.len() {
                // Under way: where it is deepest is not known yet.
                self.next_boundary = run_start / BLOCKS_PER_FRAME;
                return None;
            }
            if block - run_start < min_run {
                continue;
            }
            if self.levels.len() < block + WIDE_BLOCKS {
                // Ended, but what follows it is not all heard yet: judged on
                // one side only, its last boundaries would look deepest.
                self.next_boundary = run_start / BLOCKS_PER_FRAME;
                return None;
            }
            if let Some(boundary) = self.deepest_boundary(run_start, block, first) {
                self.next_boundary = boundary;
                return Some(Cut {
                    frames: boundary,
                    reason: CutReason::Pause,
                    quiet_ns: Some(self.quiet_run_ns(boundary * BLOCKS_PER_FRAME)),
                });
            }
        }
        self.next_boundary = self.quiet.len() / BLOCKS_PER_FRAME;
        None
    }

    /// The first frame boundary at or past the shortest duration.
    fn first_eligible_boundary(&self) -> Option<usize> {
        (1..=self.frames()).find(|b| self.offset(*b) >= self.rules.shortest)
    }

    /// The boundary of blocks `from..to` (a quiet run), at or past `first`,
    /// with `NEAR_BLOCKS` of the run on each side, whose surroundings are
    /// quietest; None if the run has no such boundary.
    fn deepest_boundary(&self, from: usize, to: usize, first: usize) -> Option<usize> {
        let lowest = (from + NEAR_BLOCKS).div_ceil(BLOCKS_PER_FRAME).max(first);
        let highest = to.saturating_sub(NEAR_BLOCKS) / BLOCKS_PER_FRAME;
        self.quietest((lowest..=highest).filter(|b| *b <= self.frames()))
    }

    /// Of `boundaries`, the one with the lowest `gap_score` (the first of
    /// equals), each scored once.
    fn quietest(&self, boundaries: impl Iterator<Item = usize>) -> Option<usize> {
        boundaries
            .map(|boundary| (self.gap_score(boundary), boundary))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, boundary)| boundary)
    }

    /// The quiet known around the block boundary `block`, in ns.
    fn quiet_run_ns(&self, block: usize) -> u64 {
        let before = self.quiet[..block].iter().rev().take_while(|q| **q).count();
        let after = self.quiet[block..].iter().take_while(|q| **q).count();
        let block_ns = self.offset(1) / BLOCKS_PER_FRAME as u64;
        (before + after) as u64 * block_ns
    }

    /// At the longest duration: the boundary from the shortest on whose
    /// surroundings are quietest (the latest of equals). Judged in the power
    /// domain over two windows: the cut's own ±11 ms, which must be silent
    /// for a cut to fall between words, and ±128 ms, which prefers a longer
    /// pause to a short gap, a stop closure or a weak consonant.
    fn at_quietest(&self) -> Option<Cut> {
        let frames = self.frames();
        if self.offset(frames) < self.rules.longest {
            return None;
        }
        let first = self.first_eligible_boundary().unwrap_or(frames);
        let quietest = self.quietest((first..=frames).rev()).unwrap_or(frames);
        Some(Cut {
            frames: quietest,
            reason: CutReason::Longest,
            quiet_ns: None,
        })
    }

    /// How loud it is around the frame boundary `boundary` (dB, lower is a
    /// better place to cut).
    fn gap_score(&self, boundary: usize) -> f32 {
        let block = boundary * BLOCKS_PER_FRAME;
        let near = self.window_db(block, NEAR_BLOCKS);
        let wide = self.window_db(block, WIDE_BLOCKS);
        NEAR_WEIGHT * near + (1.0 - NEAR_WEIGHT) * wide
    }

    /// Power mean of the levels `side` blocks either side of block `block`
    /// (as far as they are known).
    fn window_db(&self, block: usize, side: usize) -> f32 {
        let from = block.saturating_sub(side);
        let to = (block + side).min(self.levels.len());
        power_mean_db(&self.levels[from..to.max(from)])
    }
}

/// Blocks each side of a cut that must be silent for it to fall between
/// words: 2 blocks of 5.3 ms at 48 kHz (±11 ms).
const NEAR_BLOCKS: usize = 2;
/// Blocks each side that tell a gap between words from a dip inside one:
/// 24 blocks (±128 ms), so a longer pause wins over a short gap.
const WIDE_BLOCKS: usize = 24;
/// How much the cut's own window counts against the wider one. Chosen on
/// the whole speech set (`examples/cut_sweep.rs`, 36 clips at 2500 and
/// 4000 ms) among near 1–4 blocks, wide 8–32 and weights 0.25–1.0.
const NEAR_WEIGHT: f32 = 0.25;

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u64 = 20_000_000; // 20 ms: 5 ms blocks
    const LOUD: FrameLevels = [[-20.0; BANDS]; BLOCKS_PER_FRAME];
    const QUIET: FrameLevels = [[-50.0; BANDS]; BLOCKS_PER_FRAME];

    /// A frame whose blocks are at these levels in every band.
    fn blocks(levels: [f32; BLOCKS_PER_FRAME]) -> Option<FrameLevels> {
        Some(levels.map(|level| [level; BANDS]))
    }

    fn rules(segmentation: Segmentation) -> CutRules {
        CutRules {
            segmentation,
            shortest: 1_000_000_000,
            longest: 2_000_000_000,
            min_pause: 100_000_000,
            threshold_percent: 50,
        }
    }

    /// A policy that has heard 10 s of speech with pauses, so it knows the
    /// floor (-50) and the speech level (-20).
    fn primed(rules: CutRules) -> CutPolicy {
        let mut policy = CutPolicy::new(rules, FRAME);
        for i in 0..500 {
            policy.push(FRAME, Some(if i % 5 == 0 { QUIET } else { LOUD }));
        }
        policy.clear();
        policy
    }

    /// Pushes `frames` (levels per frame); the cuts made, with the frame
    /// count at which each was decided.
    fn feed(policy: &mut CutPolicy, frames: &[Option<FrameLevels>]) -> Vec<(usize, Cut)> {
        let mut cuts = Vec::new();
        for (i, levels) in frames.iter().enumerate() {
            if let Some(cut) = policy.push(FRAME, *levels) {
                cuts.push((i + 1, cut));
                policy.take(cut.frames);
            }
        }
        cuts
    }

    fn speech(frames: usize) -> Vec<Option<FrameLevels>> {
        vec![Some(LOUD); frames]
    }

    fn pause(frames: usize) -> Vec<Option<FrameLevels>> {
        vec![Some(QUIET); frames]
    }

    #[test]
    fn a_pause_inside_the_window_is_cut_in_its_middle() {
        let mut policy = primed(rules(Segmentation::Pauses));
        // 1.2 s of speech, 200 ms pause, speech.
        let frames = [speech(60), pause(10), speech(60)].concat();
        let cuts = feed(&mut policy, &frames);
        assert_eq!(cuts.len(), 1, "{cuts:?}");
        let (decided_at, cut) = cuts[0];
        assert_eq!(cut.reason, CutReason::Pause);
        // Quiet (3 blocks smoothed) from block 242 to 280: its deepest
        // boundary, where the ±128 ms around it hold the least speech, is
        // its middle; decided once 128 ms past its end are heard.
        assert_eq!(cut.frames, 64);
        assert_eq!(decided_at, 76);
        assert!(cut.quiet_ns.is_some_and(|q| q >= 100_000_000), "{cut:?}");
    }

    #[test]
    fn frames_well_before_the_shortest_need_no_levels() {
        let frames = [speech(60), pause(10), speech(60)].concat();
        let mut all = primed(rules(Segmentation::Pauses));
        let mut wanted = primed(rules(Segmentation::Pauses));
        let (mut cuts_all, mut cuts_wanted, mut measured) = (Vec::new(), Vec::new(), 0);
        for levels in &frames {
            cuts_all.extend(all.push(FRAME, *levels));
            let levels = wanted.wants_levels().then_some(*levels).flatten();
            measured += usize::from(levels.is_some());
            cuts_wanted.extend(wanted.push(FRAME, levels));
        }
        assert_eq!(cuts_all, cuts_wanted);
        // 1 s shortest less 50 ms of half pause and 60 ms of lead: the first
        // 45 frames (890 ms) of each segment are not measured.
        assert!(
            measured <= frames.len() - 45,
            "{measured} of {}",
            frames.len()
        );
        assert!(!primed(rules(Segmentation::Fixed)).wants_levels());
    }

    #[test]
    fn no_pause_cuts_at_the_quietest_boundary_and_carries_the_rest() {
        let mut policy = primed(rules(Segmentation::Pauses));
        // Speech that only dips for one frame, at 1.5 s.
        let mut frames = speech(120);
        frames[75] = blocks([-30.0; BLOCKS_PER_FRAME]);
        frames[76] = blocks([-30.0; BLOCKS_PER_FRAME]);
        let cuts = feed(&mut policy, &frames);
        let (decided_at, cut) = cuts[0];
        assert_eq!(decided_at, 100, "at the longest duration");
        assert_eq!(cut.reason, CutReason::Longest);
        assert_eq!(cut.frames, 76, "between the two quiet frames");
        assert_eq!(cuts.len(), 1);
        assert_eq!(policy.frames(), 24 + 20, "24 carried, 20 more since");
    }

    #[test]
    fn several_pauses_cut_at_the_first_past_the_shortest() {
        let mut policy = primed(rules(Segmentation::Pauses));
        // Pauses at 0.5 s (too early), 1.1 s and 1.6 s.
        let frames = [
            speech(25),
            pause(10),
            speech(20),
            pause(10),
            speech(15),
            pause(10),
            speech(10),
        ]
        .concat();
        let cuts = feed(&mut policy, &frames);
        assert_eq!(cuts[0].1.reason, CutReason::Pause);
        assert_eq!(cuts[0].1.frames, 59, "in the middle of the pause at 1.1 s");
    }

    #[test]
    fn speech_that_never_pauses_is_cut_at_the_longest() {
        let mut policy = primed(rules(Segmentation::Pauses));
        let cuts = feed(&mut policy, &speech(250));
        assert_eq!(cuts.len(), 2);
        for (decided_at, cut) in &cuts {
            assert_eq!(cut.reason, CutReason::Longest);
            assert!(cut.frames <= *decided_at);
            assert!(cut.frames >= 50, "never shorter than the shortest");
        }
        // Equally loud everywhere: the latest boundary, nothing carried.
        assert_eq!(cuts[0].1.frames, 100);
    }

    #[test]
    fn silence_that_never_ends_is_cut_at_the_longest() {
        // A pause is judged once it has ended: one that never does is cut
        // where the segment must end, in the silence.
        let mut policy = primed(rules(Segmentation::Pauses));
        let cuts = feed(&mut policy, &pause(200));
        assert_eq!(cuts.len(), 2, "{cuts:?}");
        for (_, cut) in &cuts {
            assert_eq!(cut.reason, CutReason::Longest);
            assert_eq!(cut.frames, 100, "2 s, the longest");
        }
    }

    #[test]
    fn a_pause_exactly_at_the_shortest_is_taken() {
        let mut policy = primed(rules(Segmentation::Pauses));
        // Quiet from 0.93 s to 1.05 s; judged on 3 blocks, from 0.94 s: the
        // boundary at 1.0 s has 50 ms of it on each side.
        let mut frames = [speech(46), pause(6), speech(60)].concat();
        frames[46] = blocks([-20.0, -20.0, -50.0, -50.0]);
        frames[52] = blocks([-50.0, -50.0, -20.0, -20.0]);
        let cuts = feed(&mut policy, &frames);
        assert_eq!(cuts[0].1.reason, CutReason::Pause, "{cuts:?}");
        assert_eq!(cuts[0].1.frames, 50);
        assert_eq!(cuts[0].1.quiet_ns, Some(110_000_000));
    }

    #[test]
    fn a_pause_exactly_at_the_longest_is_where_the_cut_lands() {
        let mut policy = primed(rules(Segmentation::Pauses));
        // Speech to 1.95 s, then 100 ms of quiet: the pause's middle is the
        // boundary at 2.0 s, known once 2.05 s are in.
        let mut frames = [speech(97), pause(8), speech(20)].concat();
        frames[97] = blocks([-20.0, -20.0, -50.0, -50.0]);
        let cuts = feed(&mut policy, &frames);
        assert_eq!(cuts[0].1.frames, 100);
        assert!(
            cuts[0].1.frames as u64 * FRAME <= 2_000_000_000 + FRAME,
            "no longer than the longest plus one frame"
        );
    }

    #[test]
    fn unmeasured_frames_are_loud_and_fixed_ignores_levels() {
        let mut policy = primed(rules(Segmentation::Pauses));
        let cuts = feed(&mut policy, &vec![None; 100]);
        assert_eq!(
            cuts,
            vec![(
                100,
                Cut {
                    frames: 100,
                    reason: CutReason::Longest,
                    quiet_ns: None
                }
            )]
        );
        let mut fixed = primed(rules(Segmentation::Fixed));
        let cuts = feed(&mut fixed, &[speech(60), pause(20), speech(40)].concat());
        assert_eq!(cuts.len(), 1);
        assert_eq!(cuts[0].1.frames, 100);
    }
}
