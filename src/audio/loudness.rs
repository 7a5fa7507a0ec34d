// SPDX-License-Identifier: MPL-2.0

//! Loudness of the re-encoded output (EBU R128 / ATSC A/85), one segment at
//! a time, with no latency of its own: each segment is already held whole
//! for the STS, so its gain is known before its first sample leaves.
//!
//! - `match`: a dubbed segment is brought to the loudness of the original
//!   it replaces (both gated as BS.1770 gates a programme, over the
//!   segment), so the programme's integrated loudness is the input's.
//! - `target`: every segment is brought to the target, within half the
//!   loudness range either side of the programme's own gain (the target
//!   less the input's integrated loudness so far), so quiet and loud
//!   passages keep some of their difference.
//!
//! A gain change is ramped over [`GAIN_RAMP_MS`] at the segment's start.
//! Then the true-peak limiter (`limiter.rs`) holds the ceiling; it runs
//! whenever the output is re-encoded, loudness on or off. Measurement is
//! the `ebur128` crate's (BS.1770-4), also for what is reported.

use ebur128::{EbuR128, Mode};

use super::limiter::TruePeakLimiter;

/// Ramp of the loudness gain between segments.
pub const GAIN_RAMP_MS: u32 = 30;
/// No segment is raised or lowered more than this (a segment of near
/// silence has no loudness worth matching).
const MAX_GAIN_DB: f64 = 20.0;
/// AAC coding adds peaks of its own above the limited PCM: the limiter
/// aims this far below the ceiling so the decoded output stays under it
/// (measured: 1.2 dB on an STS answer clipped at full scale, AAC-LC at
/// the input's 96 kb/s).
pub const CODEC_PEAK_MARGIN_DB: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoudnessMode {
    /// The STS's level as it comes (codec copy unless re-encoded).
    #[default]
    Off,
    /// Dubbed segments at the loudness of the originals they replace.
    Match,
    /// The whole output at the target loudness.
    Target,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoudnessRules {
    pub mode: LoudnessMode,
    /// LUFS, for `target`.
    pub target_lufs: f64,
    /// LU, for `target`: how far a segment's gain may move from the
    /// programme's.
    pub range_lu: f64,
    /// dBTP: the limiter's ceiling.
    pub true_peak_dbtp: f64,
}

impl Default for LoudnessRules {
    fn default() -> Self {
        Self {
            mode: LoudnessMode::Off,
            target_lufs: -23.0,
            range_lu: 20.0,
            true_peak_dbtp: -1.0,
        }
    }
}

/// One segment's loudness, in and out (LUFS, gated over the segment; None:
/// too short or too quiet to gate).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SegmentLoudness {
    /// The original segment's.
    pub input_lufs: Option<f64>,
    /// What leaves for it.
    pub output_lufs: Option<f64>,
    pub gain_db: f64,
}

/// The output's loudness as a meter shows it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Readings {
    pub momentary_lufs: Option<f64>,
    pub short_term_lufs: Option<f64>,
    pub integrated_lufs: Option<f64>,
    pub true_peak_dbtp: Option<f64>,
}

pub struct Loudness {
    rules: LoudnessRules,
    channels: usize,
    rate: u32,
    /// The input's integrated loudness so far (`target`'s programme gain).
    programme_in: Option<EbuR128>,
    /// What leaves, for the readings.
    meter_out: Option<EbuR128>,
    limiter: TruePeakLimiter,
    gain_db: f64,
    last: Option<SegmentLoudness>,
}

impl Loudness {
    pub fn new(rules: LoudnessRules, channels: usize, rate: u32) -> Self {
        let channels = channels.max(1);
        let meter = |mode| EbuR128::new(channels as u32, rate, mode).ok();
        Self {
            programme_in: (rules.mode == LoudnessMode::Target)
                .then(|| meter(Mode::I))
                .flatten(),
            meter_out: meter(Mode::M | Mode::S | Mode::I | Mode::TRUE_PEAK),
            limiter: TruePeakLimiter::new(
                rules.true_peak_dbtp - CODEC_PEAK_MARGIN_DB,
                channels,
                rate,
            ),
            rules,
            channels,
            rate,
            gain_db: 0.0,
            last: None,
        }
    }

    /// One segment: `original` (the input's samples) and `mixed` (what
    /// would leave without loudness: the dub, the original, or both), both
    /// interleaved and of one length. Gives back limited samples, in order,
    /// as many as the limiter lets go (see [`Loudness::flush`]).
    pub fn process(&mut self, original: &[f32], mut mixed: Vec<f32>, dubbed: bool) -> Vec<f32> {
        let input_lufs = self.gated_lufs(original);
        if let Some(meter) = &mut self.programme_in {
            let _ = meter.add_frames_f32(original);
        }
        let gain_db = match self.rules.mode {
            LoudnessMode::Off => 0.0,
            LoudnessMode::Match if !dubbed => 0.0,
            LoudnessMode::Match => match (input_lufs, self.gated_lufs(&mixed)) {
                (Some(wanted), Some(now)) => wanted - now,
                _ => 0.0,
            },
            LoudnessMode::Target => self.target_gain_db(&mixed),
        }
        .clamp(-MAX_GAIN_DB, MAX_GAIN_DB);
        self.apply_gain(&mut mixed, gain_db);
        let output_lufs = self.gated_lufs(&mixed);
        self.last = Some(SegmentLoudness {
            input_lufs,
            output_lufs,
            gain_db,
        });
        let limited = self.limiter.process(&mixed);
        self.measure_out(&limited);
        limited
    }

    /// What the limiter still holds, at the end of the stream.
    pub fn flush(&mut self) -> Vec<f32> {
        let tail = self.limiter.flush();
        self.measure_out(&tail);
        tail
    }

    /// The last segment's loudness.
    pub fn last_segment(&self) -> Option<SegmentLoudness> {
        self.last
    }

    pub fn readings(&self) -> Readings {
        let Some(meter) = &self.meter_out else {
            return Readings::default();
        };
        let finite = |v: Result<f64, _>| v.ok().filter(|v: &f64| v.is_finite());
        let peak = (0..self.channels as u32)
            .filter_map(|c| meter.true_peak(c).ok())
            .fold(0.0, f64::max);
        Readings {
            momentary_lufs: finite(meter.loudness_momentary()),
            short_term_lufs: finite(meter.loudness_shortterm()),
            integrated_lufs: finite(meter.loudness_global()),
            true_peak_dbtp: (peak > 0.0).then(|| 20.0 * peak.log10()),
        }
    }

    /// `target`: the segment at the target, but no further than half the
    /// range from the programme's gain.
    fn target_gain_db(&self, mixed: &[f32]) -> f64 {
        let programme = self
            .programme_in
            .as_ref()
            .and_then(|m| m.loudness_global().ok())
            .filter(|l| l.is_finite())
            .map(|l| self.rules.target_lufs - l);
        let segment = self.gated_lufs(mixed).map(|l| self.rules.target_lufs - l);
        match (programme, segment) {
            (Some(programme), Some(segment)) => {
                let half = self.rules.range_lu / 2.0;
                segment.clamp(programme - half, programme + half)
            }
            (Some(gain), None) | (None, Some(gain)) => gain,
            (None, None) => self.gain_db,
        }
    }

    /// `gain_db` over the segment, ramped from the last segment's.
    fn apply_gain(&mut self, pcm: &mut [f32], gain_db: f64) {
        let (from, to) = (db_to_linear(self.gain_db), db_to_linear(gain_db));
        self.gain_db = gain_db;
        let ramp = (self.rate * GAIN_RAMP_MS / 1000).max(1) as usize;
        for (n, frame) in pcm.chunks_exact_mut(self.channels).enumerate() {
            let gain = if n < ramp {
                from + (to - from) * n as f32 / ramp as f32
            } else {
                to
            };
            for sample in frame {
                *sample *= gain;
            }
        }
    }

    fn measure_out(&mut self, pcm: &[f32]) {
        if let Some(meter) = &mut self.meter_out {
            let _ = meter.add_frames_f32(pcm);
        }
    }

    fn gated_lufs(&self, pcm: &[f32]) -> Option<f64> {
        gated_lufs(pcm, self.channels, self.rate)
    }
}

/// The gated loudness (BS.1770-4 integrated, over just these samples);
/// None when nothing passes the gates or the audio is under 400 ms.
pub fn gated_lufs(pcm: &[f32], channels: usize, rate: u32) -> Option<f64> {
    let mut meter = EbuR128::new(channels as u32, rate, Mode::I).ok()?;
    meter.add_frames_f32(pcm).ok()?;
    meter.loudness_global().ok().filter(|l| l.is_finite())
}

fn db_to_linear(db: f64) -> f32 {
    10f64.powf(db / 20.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;

    /// Stereo noise-like speech stand-in: a 1 kHz tone amplitude-modulated
    /// at 4 Hz, `seconds` long at `amplitude`.
    fn programme(seconds: f64, amplitude: f32) -> Vec<f32> {
        let frames = (seconds * f64::from(RATE)) as usize;
        (0..frames)
            .flat_map(|i| {
                let t = i as f64 / f64::from(RATE);
                let envelope = 0.5 + 0.5 * (std::f64::consts::TAU * 4.0 * t).sin();
                let v = (std::f64::consts::TAU * 1000.0 * t).sin() * envelope;
                let s = v as f32 * amplitude;
                [s, s]
            })
            .collect()
    }

    fn run(loudness: &mut Loudness, segments: &[(Vec<f32>, Vec<f32>, bool)]) -> Vec<f32> {
        let mut out = Vec::new();
        for (original, mixed, dubbed) in segments {
            out.extend(loudness.process(original, mixed.clone(), *dubbed));
        }
        out.extend(loudness.flush());
        out
    }

    #[test]
    fn match_brings_a_hot_dub_to_the_originals_loudness() {
        let original = programme(3.0, 0.1);
        let hot = programme(3.0, 0.25);
        let rules = LoudnessRules {
            mode: LoudnessMode::Match,
            ..LoudnessRules::default()
        };
        let mut loudness = Loudness::new(rules, 2, RATE);
        let out = run(&mut loudness, &[(original.clone(), hot, true)]);
        assert_eq!(out.len(), original.len());
        let (wanted, got) = (
            gated_lufs(&original, 2, RATE).expect("loud enough"),
            gated_lufs(&out, 2, RATE).expect("loud enough"),
        );
        assert!(
            (wanted - got).abs() < 0.3,
            "{wanted} LUFS wanted, {got} out"
        );
        let segment = loudness.last_segment().expect("measured");
        assert!((segment.gain_db + 7.96).abs() < 0.2, "{segment:?}");
    }

    #[test]
    fn target_brings_the_programme_to_the_target_under_the_ceiling() {
        let rules = LoudnessRules {
            mode: LoudnessMode::Target,
            ..LoudnessRules::default()
        };
        let mut loudness = Loudness::new(rules, 2, RATE);
        let segments: Vec<_> = [0.05f32, 0.6, 0.2]
            .iter()
            .map(|&a| (programme(4.0, a), programme(4.0, a), false))
            .collect();
        let out = run(&mut loudness, &segments);
        let integrated = gated_lufs(&out, 2, RATE).expect("loud enough");
        assert!((integrated + 23.0).abs() < 1.0, "{integrated} LUFS");
        let readings = loudness.readings();
        assert!(
            readings.true_peak_dbtp.expect("a peak") <= -1.0,
            "{readings:?}"
        );
        assert!(
            (readings.integrated_lufs.expect("integrated") - integrated).abs() < 0.2,
            "{readings:?}"
        );
    }

    #[test]
    fn off_and_match_leave_fallback_audio_untouched_below_the_ceiling() {
        let original = programme(2.0, 0.1);
        for mode in [LoudnessMode::Off, LoudnessMode::Match] {
            let rules = LoudnessRules {
                mode,
                ..LoudnessRules::default()
            };
            let mut loudness = Loudness::new(rules, 2, RATE);
            let out = run(
                &mut loudness,
                &[(original.clone(), original.clone(), false)],
            );
            assert_eq!(out, original, "{mode:?}");
        }
    }
}
