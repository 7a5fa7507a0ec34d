// SPDX-License-Identifier: MPL-2.0

//! A look-ahead true-peak limiter for the re-encoded output: the peak of
//! every sample is read 4× oversampled, as ITU-R BS.1770 measures true
//! peak, and the gain comes down in a straight line over the look-ahead
//! before any peak above the ceiling, then recovers slowly.
//!
//! It holds back [`LOOKAHEAD_MS`] of audio and gives every sample back in
//! order, none added or lost (what it holds comes out of [`flush`]), so the
//! stream's timeline is untouched: the caller counts samples, not calls.
//!
//! [`flush`]: TruePeakLimiter::flush

/// How far ahead the gain is planned.
pub const LOOKAHEAD_MS: u32 = 5;
/// Time from full reduction back to unity gain.
const RELEASE_MS: u32 = 80;
/// Oversampling of the peak reading (BS.1770-4 Annex 2: 4× at 48 kHz).
const OVERSAMPLING: usize = 4;
/// Interpolation taps each side of the point read.
const HALF_TAPS: usize = 8;

pub struct TruePeakLimiter {
    ceiling: f32,
    channels: usize,
    lookahead: usize,
    attack_step: f32,
    release_step: f32,
    /// Interpolation filters for the points between samples, one per
    /// phase 1..OVERSAMPLING, over samples n-HALF_TAPS+1 ..= n+HALF_TAPS.
    phases: Vec<[f32; 2 * HALF_TAPS]>,
    /// Interleaved samples not given back yet (the look-ahead).
    pending: Vec<f32>,
    /// The last HALF_TAPS frames given back, for reading peaks across calls.
    history: Vec<f32>,
    gain: f32,
}

impl TruePeakLimiter {
    /// A limiter holding true peak at or below `ceiling_dbtp`.
    pub fn new(ceiling_dbtp: f64, channels: usize, rate: u32) -> Self {
        let channels = channels.max(1);
        let per_ms = |ms: u32| (u64::from(rate) * u64::from(ms) / 1000).max(1) as usize;
        let lookahead = per_ms(LOOKAHEAD_MS).max(2 * HALF_TAPS);
        Self {
            ceiling: 10f64.powf(ceiling_dbtp / 20.0) as f32,
            channels,
            lookahead,
            attack_step: 1.0 / lookahead as f32,
            release_step: 1.0 / per_ms(RELEASE_MS) as f32,
            phases: (1..OVERSAMPLING).map(interpolation_filter).collect(),
            pending: Vec::new(),
            history: vec![0.0; HALF_TAPS * channels],
            gain: 1.0,
        }
    }

    /// Limits `input` (interleaved): gives back as many frames as it holds
    /// beyond the look-ahead, in order.
    pub fn process(&mut self, input: &[f32]) -> Vec<f32> {
        self.pending.extend_from_slice(input);
        let frames = self.pending.len() / self.channels;
        if frames <= self.lookahead {
            return Vec::new();
        }
        let out_frames = frames - self.lookahead;
        self.release(out_frames, false)
    }

    /// Everything still held, limited with nothing after it.
    pub fn flush(&mut self) -> Vec<f32> {
        let frames = self.pending.len() / self.channels;
        self.release(frames, true)
    }

    /// Limits and gives back the first `count` pending frames; `last`: no
    /// audio follows the pending frames.
    fn release(&mut self, count: usize, last: bool) -> Vec<f32> {
        let peaks = self.true_peaks(last);
        // Backwards: the gain reaches each peak's need in a straight line;
        // a peak further than the look-ahead cannot pull it below 1.
        let mut planned = vec![1.0f32; peaks.len() + 1];
        for n in (0..peaks.len()).rev() {
            let need = if peaks[n] > self.ceiling {
                self.ceiling / peaks[n]
            } else {
                1.0
            };
            planned[n] = need.min(planned[n + 1] + self.attack_step);
        }
        let channels = self.channels;
        let mut out = Vec::with_capacity(count * channels);
        for (n, frame) in self.pending.chunks_exact(channels).take(count).enumerate() {
            self.gain = planned[n].min(self.gain + self.release_step).min(1.0);
            out.extend(frame.iter().map(|s| s * self.gain));
        }
        let given = count * channels;
        let keep = HALF_TAPS * channels;
        let mut history = std::mem::take(&mut self.history);
        history.extend_from_slice(&self.pending[..given]);
        self.history = history.split_off(history.len().saturating_sub(keep));
        self.pending.drain(..given);
        out
    }

    /// The true peak (largest over channels, at the sample and between it
    /// and the next) of every pending frame. Points whose interpolation
    /// reaches past the pending audio read silence there when `last`, and
    /// only the sample itself otherwise (they are read again next call).
    /// Between samples is read only near loud samples: a point between two
    /// samples under a quarter of the ceiling (-12 dB) cannot reach it in
    /// band-limited audio.
    fn true_peaks(&self, last: bool) -> Vec<f32> {
        let channels = self.channels;
        let frames = self.pending.len() / channels;
        let before = self.history.len() / channels;
        let mut peaks = vec![0.0f32; frames];
        let quiet = self.ceiling / 4.0;
        for c in 0..channels {
            // This channel: history, pending, and silence after when last.
            let mut line: Vec<f32> = self
                .history
                .iter()
                .chain(&self.pending)
                .skip(c)
                .step_by(channels)
                .copied()
                .collect();
            if last {
                line.resize(line.len() + HALF_TAPS, 0.0);
            }
            for (n, peak) in peaks.iter_mut().enumerate() {
                let at = before + n;
                let here = line[at].abs();
                *peak = peak.max(here);
                let next = line.get(at + 1).map_or(0.0, |v| v.abs());
                if here.max(next) < quiet || at + HALF_TAPS >= line.len() {
                    continue;
                }
                let window = &line[at + 1 - HALF_TAPS..=at + HALF_TAPS];
                for filter in &self.phases {
                    let value: f32 = window.iter().zip(filter).map(|(x, h)| x * h).sum();
                    *peak = peak.max(value.abs());
                }
            }
        }
        peaks
    }
}

/// Windowed-sinc (Hann) taps for the point `phase`/OVERSAMPLING past a
/// sample, over samples -HALF_TAPS+1 ..= HALF_TAPS, their sum 1.
fn interpolation_filter(phase: usize) -> [f32; 2 * HALF_TAPS] {
    let offset = phase as f64 / OVERSAMPLING as f64;
    let mut taps = [0f32; 2 * HALF_TAPS];
    let mut sum = 0.0;
    for (k, tap) in taps.iter_mut().enumerate() {
        let x = (k as f64 - HALF_TAPS as f64 + 1.0) - offset;
        let sinc = if x.abs() < 1e-9 {
            1.0
        } else {
            (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
        };
        let window = 0.5 * (1.0 + (std::f64::consts::PI * x / (HALF_TAPS as f64 + 0.5)).cos());
        let value = sinc * window;
        *tap = value as f32;
        sum += value;
    }
    for tap in &mut taps {
        *tap = (f64::from(*tap) / sum) as f32;
    }
    taps
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;

    fn true_peak_dbtp(pcm: &[f32], channels: usize) -> f64 {
        let mut meter =
            ebur128::EbuR128::new(channels as u32, RATE, ebur128::Mode::TRUE_PEAK).expect("meter");
        meter.add_frames_f32(pcm).expect("frames");
        let peak = (0..channels as u32)
            .map(|c| meter.true_peak(c).expect("peak"))
            .fold(0.0, f64::max);
        20.0 * peak.log10()
    }

    /// A tone at `amplitude` whose samples miss its crests (fs/4 + a bit,
    /// 45° phase): its true peak is well above its sample peak.
    fn intersample_tone(frames: usize, amplitude: f32) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let t = i as f64 / f64::from(RATE);
                let v = (std::f64::consts::TAU * 11_990.0 * t + std::f64::consts::FRAC_PI_4).sin();
                let s = v as f32 * amplitude;
                [s, s]
            })
            .collect()
    }

    fn limited(limiter: &mut TruePeakLimiter, input: &[f32], calls: usize) -> Vec<f32> {
        let chunk = input.len().div_ceil(calls).next_multiple_of(2);
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            out.extend(limiter.process(part));
        }
        out.extend(limiter.flush());
        out
    }

    #[test]
    fn every_sample_comes_back_in_order_and_quiet_audio_is_untouched() {
        let input: Vec<f32> = (0..9_601).flat_map(|i| [i as f32 * 1e-5, -0.1]).collect();
        let mut limiter = TruePeakLimiter::new(-1.0, 2, RATE);
        let out = limited(&mut limiter, &input, 7);
        assert_eq!(out, input);
    }

    #[test]
    fn true_peaks_above_the_ceiling_are_brought_to_it() {
        // +3 dB of true peak in, a sample peak well under it.
        let input = intersample_tone(48_000, 1.41);
        assert!(true_peak_dbtp(&input, 2) > 2.5);
        let mut limiter = TruePeakLimiter::new(-1.0, 2, RATE);
        let out = limited(&mut limiter, &input, 10);
        assert_eq!(out.len(), input.len());
        let peak = true_peak_dbtp(&out, 2);
        assert!(peak <= -0.95, "{peak} dBTP");
    }

    #[test]
    fn the_gain_comes_down_before_a_lone_peak_not_at_it() {
        let mut input = vec![0.3f32; 2 * 4_800];
        input[2 * 2_400] = 1.5;
        input[2 * 2_400 + 1] = 1.5;
        let mut limiter = TruePeakLimiter::new(-1.0, 2, RATE);
        let out = limited(&mut limiter, &input, 3);
        let ceiling = 10f32.powf(-1.0 / 20.0);
        assert!(
            out[2 * 2_400].abs() <= ceiling * 1.001,
            "{}",
            out[2 * 2_400]
        );
        // The audio a whole look-ahead before it is untouched, and the
        // gain moves by at most one step per sample (no click).
        assert_eq!(out[2 * (2_400 - 300)], 0.3);
        let gains: Vec<f32> = (0..4_800)
            .filter(|&n| n != 2_400)
            .map(|n| out[2 * n] / 0.3)
            .collect();
        let largest_step = gains
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        assert!(largest_step <= 2.0 / 240.0 + 1e-4, "{largest_step}");
    }
}
