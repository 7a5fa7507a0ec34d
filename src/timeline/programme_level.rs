// SPDX-License-Identifier: MPL-2.0

//! What the cut policy knows of the programme as a whole: its noise floor
//! and speech level, per frequency band and overall, over the last 10 s.
//!
//! A block's *presence* says how far, between the programme's floor and its
//! speech level, each of a few frequency bands stands, averaged over the
//! bands. A single broadband level is ruled by the band where the voice and
//! the background are both loudest (below 500 Hz for crowd, music and pink
//! noise): a 30 ms gap between two words hardly moves it, and a soft
//! consonant moves it as much. Each band measured against its own floor
//! gives the quieter bands, where the background leaves the voice room, an
//! equal say.

use std::collections::VecDeque;

/// The level given to digital silence (and the floor of every level).
pub const SILENCE_DB: f32 = -100.0;

/// Frequency bands a block's level is measured in (`audio::level` says where
/// they lie).
pub const BANDS: usize = 4;

/// One block's level in each band, in dB of mean square (dBFS for a full
/// scale sine's band).
pub type BlockBands = [f32; BANDS];

/// The percentiles of the block levels taken as the noise floor and the speech level.
const FLOOR_PERCENTILE: usize = 5;
const SPEECH_PERCENTILE: usize = 90;
/// Below this contrast between floor and speech, levels tell nothing about
/// pauses (a tone, continuous noise, or silence): only near-silence is quiet.
pub const MIN_CONTRAST_DB: f32 = 6.0;
pub const NEAR_SILENCE_DB: f32 = -60.0;
/// The level histogram's resolution.
const BINS_PER_DB: f32 = 2.0;
const BINS: usize = (-SILENCE_DB * BINS_PER_DB) as usize + 1;

/// A programme's noise floor and speech level over a sliding window of
/// block levels, from a histogram (constant time per block).
#[derive(Debug)]
pub struct ProgrammeLevel {
    /// Histogram bins of the window's levels (201 bins: a byte each, which
    /// keeps a thousand streams' windows small).
    window: VecDeque<u8>,
    capacity: usize,
    histogram: Vec<u32>,
}

impl ProgrammeLevel {
    pub fn new(blocks: usize) -> Self {
        Self {
            window: VecDeque::with_capacity(blocks),
            capacity: blocks.max(1),
            histogram: vec![0; BINS],
        }
    }

    pub fn add(&mut self, level_db: f32) {
        let bin =
            (((level_db.clamp(SILENCE_DB, 0.0) - SILENCE_DB) * BINS_PER_DB) as usize).min(BINS - 1);
        if self.window.len() == self.capacity
            && let Some(old) = self.window.pop_front()
        {
            self.histogram[usize::from(old)] -= 1;
        }
        // BINS is 201: every bin fits in a byte.
        self.window.push_back(bin as u8);
        self.histogram[bin] += 1;
    }

    /// The noise floor and the speech level, found in one pass over the
    /// histogram (every measured block asks for both, in every band).
    fn floor_and_speech(&self) -> Option<(f32, f32)> {
        let total = self.window.len();
        if total == 0 {
            return None;
        }
        let rank = |percent: usize| (total * percent / 100).min(total - 1);
        let (floor_rank, speech_rank) = (rank(FLOOR_PERCENTILE), rank(SPEECH_PERCENTILE));
        let level = |bin: usize| SILENCE_DB + bin as f32 / BINS_PER_DB;
        let mut floor = None;
        let mut seen = 0usize;
        for (bin, count) in self.histogram.iter().enumerate() {
            seen += *count as usize;
            if floor.is_none() && seen > floor_rank {
                floor = Some(level(bin));
            }
            if seen > speech_rank {
                return floor.map(|floor| (floor, level(bin)));
            }
        }
        None
    }

    /// The level below which a block is quiet.
    pub fn quiet_below(&self, threshold_percent: u32) -> f32 {
        match self.floor_and_speech() {
            Some((floor, speech)) if speech - floor >= MIN_CONTRAST_DB => {
                floor + (speech - floor) * threshold_percent.min(100) as f32 / 100.0
            }
            _ => NEAR_SILENCE_DB,
        }
    }

    /// Where `level_db` stands from the floor (0) to the speech level (1);
    /// a contrast under [`MIN_CONTRAST_DB`] counts as that much.
    fn position(&self, level_db: f32) -> f32 {
        match self.floor_and_speech() {
            Some((floor, speech)) => (level_db - floor) / (speech - floor).max(MIN_CONTRAST_DB),
            None => 0.0,
        }
    }
}

/// The span a band's way from its floor to its speech level is drawn on: a
/// presence is read as a level in dB, 0 at the speech level.
const PRESENCE_SPAN_DB: f32 = 30.0;

/// Each band's floor and speech level, and the presence of speech in a block.
#[derive(Debug)]
pub struct SpeechPresence {
    bands: [ProgrammeLevel; BANDS],
}

impl SpeechPresence {
    pub fn new(blocks: usize) -> Self {
        Self {
            bands: std::array::from_fn(|_| ProgrammeLevel::new(blocks)),
        }
    }

    /// Adds a measured block; its presence, a level in dB: 0 where every
    /// band is at its speech level, −30 where every band is at its floor.
    /// A block near silence in every band is at most at the floor.
    pub fn add(&mut self, block: BlockBands) -> f32 {
        let mut sum = 0.0;
        for (band, level) in self.bands.iter_mut().zip(block) {
            band.add(level);
            sum += band.position(level);
        }
        let presence = PRESENCE_SPAN_DB * (sum / BANDS as f32 - 1.0);
        if block.iter().all(|level| *level < NEAR_SILENCE_DB) {
            presence.min(-PRESENCE_SPAN_DB)
        } else {
            presence
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_follows_the_programme() {
        let mut programme = ProgrammeLevel::new(1000);
        // A quiet studio: silence at -90, speech at -25.
        for i in 0..1000 {
            programme.add(if i % 4 == 0 { -90.0 } else { -25.0 });
        }
        let studio = programme.quiet_below(50);
        assert!((studio + 57.5).abs() < 1.0, "{studio}");
        // A stadium 15 dB under the voice.
        for i in 0..1000 {
            programme.add(if i % 4 == 0 { -40.0 } else { -25.0 });
        }
        let stadium = programme.quiet_below(50);
        assert!((stadium + 32.5).abs() < 1.0, "{stadium}");
        // No contrast: only near-silence would be quiet.
        for _ in 0..1000 {
            programme.add(-30.0);
        }
        assert_eq!(programme.quiet_below(50), NEAR_SILENCE_DB);
    }

    #[test]
    fn a_gap_shows_in_the_quiet_bands_under_a_loud_low_background() {
        // A background loud below 500 Hz (-30, always there) and a voice
        // whose upper bands go from -70 in its gaps to -35 in its words.
        let word = [-30.0, -35.0, -38.0, -45.0];
        let gap = [-30.0, -70.0, -72.0, -75.0];
        let mut presence = SpeechPresence::new(1000);
        for i in 0..1000 {
            presence.add(if i % 5 == 0 { gap } else { word });
        }
        let in_word = presence.add(word);
        let in_gap = presence.add(gap);
        // The low band, the same in both, stands at its floor in both.
        assert!(in_word > -10.0, "{in_word}");
        assert!(in_gap < -25.0, "{in_gap}");
        // Broadband, the gap is 2 dB under the word (the low band rules both).
        let power = |bands: [f32; 4]| {
            10.0 * bands
                .iter()
                .map(|l| 10f32.powf(l / 10.0))
                .sum::<f32>()
                .log10()
        };
        assert!(power(word) - power(gap) < 2.5);
    }

    #[test]
    fn digital_silence_is_at_most_the_floor() {
        let mut presence = SpeechPresence::new(100);
        for _ in 0..100 {
            presence.add([-20.0; BANDS]);
        }
        assert!(presence.add([SILENCE_DB; BANDS]) <= -PRESENCE_SPAN_DB);
    }
}
