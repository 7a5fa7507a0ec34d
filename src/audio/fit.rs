// SPDX-License-Identifier: MPL-2.0

//! How dubbed speech is made to fit its segment when the output is
//! re-encoded: lengths in, a stretch factor and a trim out. Pure.
//!
//! Translated speech is often longer than what it replaces (Spanish or
//! German from English by 10-25 %). Trimming it cuts the last words off;
//! time-compressing it with the pitch kept (`fit=stretch`) keeps every word,
//! up to `max-stretch`, beyond which speech sounds hurried and the rest is
//! trimmed, with a fade. Only the voiced part counts: trailing silence is
//! trimmed, never compressed, and the voice ends a little before the
//! segment so the join never falls on it.

/// `fit` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FitMode {
    /// Dubbed audio longer than its segment is cut at the segment's end.
    #[default]
    Trim,
    /// Longer dubbed audio is time-compressed, pitch kept, to fit.
    Stretch,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitRules {
    pub mode: FitMode,
    /// The most speech is sped up (1.25: 25 % faster).
    pub max_stretch: f64,
}

impl Default for FitRules {
    fn default() -> Self {
        Self {
            mode: FitMode::Trim,
            max_stretch: DEFAULT_MAX_STRETCH,
        }
    }
}

pub const DEFAULT_MAX_STRETCH: f64 = 1.25;
pub const MAX_MAX_STRETCH: f64 = 2.0;

/// What is done to dubbed audio of some length to fill a segment exactly.
/// Lengths are in sample frames (one sample per channel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitPlan {
    /// Speed-up with pitch kept; 1.0 when none.
    pub factor: f64,
    /// Cut from the end after any stretch.
    pub trimmed: usize,
    /// Whether the cut falls in the voice (it is then faded out).
    pub cuts_voice: bool,
    /// Silence added at the end.
    pub padded: usize,
}

impl FitPlan {
    /// The name the segment message gives it.
    pub fn kind(&self) -> &'static str {
        if self.factor > 1.0 {
            "stretched"
        } else if self.trimmed > 0 {
            "trimmed"
        } else if self.padded > 0 {
            "padded"
        } else {
            "exact"
        }
    }
}

/// Plans the fit of dubbed audio `length` long, whose voice ends at
/// `voiced` (trailing silence after it), into `wanted`; `guard` is how
/// far before the segment's end a stretched voice should end.
pub fn plan(
    length: usize,
    voiced: usize,
    wanted: usize,
    guard: usize,
    rules: &FitRules,
) -> FitPlan {
    let voiced = voiced.min(length);
    let plain = |length: usize, factor: f64| FitPlan {
        factor,
        trimmed: length.saturating_sub(wanted),
        cuts_voice: factor == 1.0 && voiced > wanted,
        padded: wanted.saturating_sub(length),
    };
    if rules.mode == FitMode::Trim || voiced + guard <= wanted {
        return plain(length, 1.0);
    }
    let room = wanted.saturating_sub(guard).max(1);
    let factor = (voiced as f64 / room as f64).min(rules.max_stretch.max(1.0));
    let stretched = stretched_length(length, factor);
    FitPlan {
        cuts_voice: stretched_length(voiced, factor) > wanted,
        ..plain(stretched, factor)
    }
}

/// How long `length` samples are once sped up by `factor`.
pub fn stretched_length(length: usize, factor: f64) -> usize {
    (length as f64 / factor).round() as usize
}

/// Where the voice of interleaved `samples` ends: the end of the last
/// block of `block` sample frames louder than `threshold` (linear RMS).
pub fn voiced_length(samples: &[f32], channels: usize, block: usize, threshold: f32) -> usize {
    let channels = channels.max(1);
    let frames = samples.len() / channels;
    let block = block.max(1);
    let mut end = frames;
    while end > 0 {
        let start = end.saturating_sub(block);
        if rms(&samples[start * channels..end * channels]) > threshold {
            return end;
        }
        end = start;
    }
    0
}

/// Root mean square of `samples` (0 for none).
pub fn rms(samples: &[f32]) -> f32 {
    let sum: f32 = samples.iter().map(|s| s * s).sum();
    (sum / samples.len().max(1) as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRETCH: FitRules = FitRules {
        mode: FitMode::Stretch,
        max_stretch: 1.25,
    };
    const TRIM: FitRules = FitRules {
        mode: FitMode::Trim,
        max_stretch: 1.25,
    };

    #[test]
    fn shorter_audio_is_padded_and_exact_audio_kept() {
        for rules in [TRIM, STRETCH] {
            let short = plan(800, 800, 1000, 10, &rules);
            assert_eq!((short.factor, short.padded, short.trimmed), (1.0, 200, 0));
            assert_eq!(short.kind(), "padded");
            assert_eq!(plan(1000, 900, 1000, 10, &rules).kind(), "exact");
        }
    }

    #[test]
    fn trim_cuts_the_voice_stretch_speeds_it_up_to_fit() {
        let trimmed = plan(1200, 1150, 1000, 10, &TRIM);
        assert_eq!((trimmed.factor, trimmed.trimmed), (1.0, 200));
        assert!(trimmed.cuts_voice);
        let stretched = plan(1200, 1150, 1000, 10, &STRETCH);
        assert!(
            (stretched.factor - 1150.0 / 990.0).abs() < 1e-9,
            "{stretched:?}"
        );
        assert!(!stretched.cuts_voice);
        assert_eq!(stretched.kind(), "stretched");
        // What is left after the stretch beyond the segment is silence, trimmed.
        assert_eq!(
            stretched.trimmed,
            stretched_length(1200, stretched.factor) - 1000
        );
    }

    #[test]
    fn trailing_silence_is_trimmed_never_compressed() {
        // 1.2 times too long, but the voice ends well inside the segment.
        let plan = plan(1200, 700, 1000, 10, &STRETCH);
        assert_eq!(
            (plan.factor, plan.trimmed, plan.cuts_voice),
            (1.0, 200, false)
        );
    }

    #[test]
    fn beyond_max_stretch_the_rest_is_trimmed_with_the_voice_cut() {
        let plan = plan(2000, 2000, 1000, 10, &STRETCH);
        assert_eq!(plan.factor, 1.25);
        assert_eq!(plan.trimmed, 600);
        assert!(plan.cuts_voice);
    }

    #[test]
    fn voice_ends_at_the_last_loud_block() {
        let mut samples = vec![0.5f32; 2 * 300];
        samples.extend(vec![0.0001f32; 2 * 200]);
        assert_eq!(voiced_length(&samples, 2, 50, 0.01), 300);
        assert_eq!(voiced_length(&vec![0.0; 100], 1, 10, 0.01), 0);
        assert_eq!(voiced_length(&[], 2, 10, 0.01), 0);
    }
}
