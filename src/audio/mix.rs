// SPDX-License-Identifier: MPL-2.0

//! Gain ramps and the voice-over mix, on interleaved f32 samples. Pure.
//!
//! A gain that jumps makes a click: every change of level here is a
//! raised-cosine ramp (its slope is zero at both ends, so it adds no edge
//! of its own). The original's gain ramps at each switch between a dubbed
//! segment (`original-volume`) and one that falls back (full level); the
//! voice fades in and out at its segment's edges, so two dubbed segments
//! meet without a step between them.

/// Gain `from` → `to` at position `i` of a ramp `len` long (raised cosine).
pub fn ramp_gain(from: f32, to: f32, i: usize, len: usize) -> f32 {
    if i >= len {
        return to;
    }
    let phase = i as f32 / len as f32;
    let weight = 0.5 - 0.5 * (std::f32::consts::PI * phase).cos();
    from + (to - from) * weight
}

/// Scales interleaved `samples` by a gain that ramps from `from` to `to`
/// over the first `ramp` sample frames and stays at `to` after.
pub fn apply_gain(samples: &mut [f32], channels: usize, from: f32, to: f32, ramp: usize) {
    let channels = channels.max(1);
    for (i, frame) in samples.chunks_mut(channels).enumerate() {
        let gain = ramp_gain(from, to, i, ramp);
        frame.iter_mut().for_each(|s| *s *= gain);
    }
}

/// Fades the first `fade_in` sample frames in and the last `fade_out` out.
pub fn fade_edges(samples: &mut [f32], channels: usize, fade_in: usize, fade_out: usize) {
    let channels = channels.max(1);
    let frames = samples.len() / channels;
    for (i, frame) in samples.chunks_mut(channels).enumerate() {
        let gain_in = ramp_gain(0.0, 1.0, i, fade_in);
        let from_end = frames - 1 - i;
        let gain_out = ramp_gain(0.0, 1.0, from_end, fade_out);
        let gain = gain_in * gain_out;
        if gain < 1.0 {
            frame.iter_mut().for_each(|s| *s *= gain);
        }
    }
}

/// Adds `voice` onto `bed`, sample by sample, kept within full scale.
pub fn mix_into(bed: &mut [f32], voice: &[f32]) {
    for (b, v) in bed.iter_mut().zip(voice) {
        *b = (*b + v).clamp(-1.0, 1.0);
    }
}

/// Makes interleaved `samples` exactly `frames` sample frames long: cut
/// (fading the last `fade` frames out when `fade` > 0) or padded with silence.
pub fn fit_length(samples: &mut Vec<f32>, channels: usize, frames: usize, fade: usize) {
    let channels = channels.max(1);
    let had = samples.len() / channels;
    samples.resize(frames * channels, 0.0);
    if had > frames && fade > 0 {
        fade_edges(samples, channels, 0, fade.min(frames));
    }
}

/// The original's gain over a run of segments: where it stands after the
/// last one, and the ramp to each next one's level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OriginalGain {
    now: f32,
    /// Ramp length in sample frames.
    ramp: usize,
}

impl OriginalGain {
    pub fn new(ramp: usize) -> Self {
        Self { now: 1.0, ramp }
    }

    /// Applies the segment's level `target` to `original` (ramping from the
    /// last level at its start) and adds `voice` when it was dubbed.
    pub fn mix(
        &mut self,
        original: &mut [f32],
        channels: usize,
        target: f32,
        voice: Option<&[f32]>,
    ) {
        if self.now != 1.0 || target != 1.0 {
            apply_gain(original, channels, self.now, target, self.ramp);
        }
        self.now = target;
        if let Some(voice) = voice {
            mix_into(original, voice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_goes_smoothly_from_one_level_to_the_other() {
        assert_eq!(ramp_gain(1.0, 0.2, 0, 100), 1.0);
        assert!((ramp_gain(1.0, 0.2, 50, 100) - 0.6).abs() < 1e-6);
        assert_eq!(ramp_gain(1.0, 0.2, 100, 100), 0.2);
        assert_eq!(ramp_gain(1.0, 0.2, 0, 0), 0.2, "no ramp: at once");
        // Monotonic, and its steps shrink towards both ends (no edge).
        let gains: Vec<f32> = (0..=100).map(|i| ramp_gain(0.0, 1.0, i, 100)).collect();
        let steps: Vec<f32> = gains.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(steps.iter().all(|s| *s >= 0.0));
        assert!(steps[0] < steps[50] / 10.0 && steps[99] < steps[50] / 10.0);
    }

    #[test]
    fn gain_ramps_then_holds_on_every_channel() {
        let mut samples = vec![1.0f32; 2 * 10];
        apply_gain(&mut samples, 2, 1.0, 0.5, 4);
        assert_eq!(&samples[0..2], &[1.0, 1.0]);
        assert!(samples[4] < 1.0 && samples[4] > 0.5);
        assert_eq!(samples[4], samples[5], "both channels alike");
        assert!(samples[8..].iter().all(|s| *s == 0.5));
    }

    #[test]
    fn edges_fade_to_silence() {
        let mut samples = vec![1.0f32; 10];
        fade_edges(&mut samples, 1, 3, 3);
        assert_eq!(samples[0], 0.0);
        assert_eq!(samples[9], 0.0);
        assert_eq!(&samples[3..7], &[1.0; 4]);
        assert!(samples[1] > 0.0 && samples[1] < samples[2]);
    }

    #[test]
    fn the_mix_adds_the_voice_and_stays_in_full_scale() {
        let mut bed = vec![0.5, -0.5, 0.9];
        mix_into(&mut bed, &[0.25, 0.25, 0.5]);
        assert_eq!(bed, vec![0.75, -0.25, 1.0]);
    }

    #[test]
    fn length_is_cut_with_a_fade_or_padded_with_silence() {
        let mut long = vec![1.0f32; 2 * 10];
        fit_length(&mut long, 2, 6, 3);
        assert_eq!(long.len(), 12);
        assert_eq!(long[10..], [0.0, 0.0], "faded out at the cut");
        let mut short = vec![1.0f32; 4];
        fit_length(&mut short, 2, 4, 3);
        assert_eq!(short, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_original_ramps_down_under_a_dub_and_back_at_a_fallback() {
        let mut gain = OriginalGain::new(4);
        let mut dubbed = vec![1.0f32; 8];
        gain.mix(&mut dubbed, 1, 0.2, Some(&[0.0; 8]));
        assert_eq!(dubbed[0], 1.0, "starts where the last segment ended");
        assert!((dubbed[7] - 0.2).abs() < 1e-6);
        let mut fallback = vec![1.0f32; 8];
        gain.mix(&mut fallback, 1, 1.0, None);
        assert!(
            (fallback[0] - 0.2).abs() < 1e-6,
            "continues from the dub's level"
        );
        assert_eq!(fallback[7], 1.0);
        let mut untouched = vec![0.3f32; 4];
        gain.mix(&mut untouched, 1, 1.0, None);
        assert_eq!(untouched, vec![0.3; 4], "full level stays bit-exact");
    }
}
