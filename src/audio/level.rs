// SPDX-License-Identifier: MPL-2.0

//! The level of each AAC frame, in blocks and frequency bands, measured on
//! decoded audio, for finding the pauses in speech. The stream itself stays
//! codec copy: the decoded samples are measured and dropped.
//!
//! The decoder is GStreamer's own (avdec_aac, else the best-ranked AAC
//! decoder installed), used as a lone element whose pads are linked to two
//! pads of ours: a frame pushed into it comes back decoded in the same call,
//! on the calling thread. No bin, no thread, no queue, no hand-off per frame,
//! and every AAC profile the decoder knows (HE-AAC, 5.1) measures as well as
//! AAC-LC does.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::audio::driven_element::{self, DrivenElement};
use crate::container::m4a::AacConfig;

/// The levels are the cut policy's input: their format is its own.
pub use crate::timeline::cut_policy::{BANDS, BLOCKS_PER_FRAME, FrameLevels, SILENCE_DB};

/// Where the bands meet, in Hz; the last band ends at half the rate. Voicing
/// and the first formant; the formants that carry the vowels; the upper
/// formants and stop bursts; the fricatives.
const BAND_EDGES_HZ: [f32; BANDS - 1] = [500.0, 2000.0, 5000.0];

/// Decodes AAC frames one by one and reports each block's level per band.
pub struct LevelMeter {
    decoder: DrivenElement,
    /// Frames were skipped since the last one measured.
    skipped: bool,
    bands: BandMeter,
}

impl LevelMeter {
    /// A meter for `config`'s stream; an error names what is missing.
    pub fn new(config: &AacConfig) -> Result<Self, String> {
        let decoder = driven_element::started_aac_decoder(config, "stsdub-level")?;
        Ok(Self {
            decoder,
            skipped: false,
            bands: BandMeter::default(),
        })
    }

    /// The levels of `frame`, or None when the decoder gave nothing back for
    /// it (a corrupt frame) or is settling after skipped frames; an error
    /// when the decoder failed.
    pub fn measure(&mut self, frame: &gst::Buffer) -> Result<Option<FrameLevels>, gst::FlowError> {
        let settling = std::mem::take(&mut self.skipped);
        let mut frame = frame.clone();
        if settling {
            // Its overlap with the last frame decoded is stale: decoded for
            // the decoder's sake, not measured.
            frame.make_mut().set_flags(gst::BufferFlags::DISCONT);
        }
        let decoded = self.decoder.push(frame)?;
        let Some(layout) = self
            .decoder
            .output_caps()
            .map(|caps| SampleLayout::of(&caps))
        else {
            return Ok(None);
        };
        let levels = decoded
            .last()
            .and_then(|b| b.map_readable().ok())
            .map(|map| self.bands.frame_levels(map.as_slice(), layout));
        Ok(levels.filter(|_| !settling))
    }

    /// Notes a frame not decoded: the next one measured is only decoded.
    pub fn skip(&mut self) {
        self.skipped = true;
    }
}

/// How decoded f32 samples lie in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleLayout {
    pub rate: u32,
    pub channels: usize,
    /// Each channel's samples together (GStreamer's non-interleaved layout).
    pub planar: bool,
}

impl SampleLayout {
    fn of(caps: &gst::CapsRef) -> Self {
        let structure = caps.structure(0);
        let field = |name| structure.and_then(|s| s.get::<i32>(name).ok());
        Self {
            rate: field("rate").map_or(48_000, |r| r.max(1) as u32),
            channels: field("channels").map_or(1, |c| c.max(1) as usize),
            planar: driven_element::planes(caps) > 1,
        }
    }

    fn sample(&self, bytes: &[u8], channel: usize, index: usize, per_channel: usize) -> f32 {
        let at = if self.planar {
            channel * per_channel + index
        } else {
            index * self.channels + channel
        };
        bytes
            .get(at * 4..at * 4 + 4)
            .map_or(0.0, |b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The level per band of blocks of decoded audio: a Hann-windowed FFT of
/// each block and channel, its bins summed per band. Plans are made for a
/// block length and rate once, and again only when they change.
#[derive(Default)]
pub struct BandMeter {
    plan: Option<BandPlan>,
}

struct BandPlan {
    block: usize,
    rate: u32,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// The first bin of each band, and one past the last band's last bin.
    band_starts: [usize; BANDS + 1],
    /// Makes a bin's |X|² a share of the block's mean square.
    scale: f32,
}

impl BandPlan {
    fn new(block: usize, rate: u32) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(block);
        let window: Vec<f32> = (0..block)
            .map(|n| {
                let phase = std::f32::consts::TAU * n as f32 / block as f32;
                0.5 - 0.5 * phase.cos()
            })
            .collect();
        let window_power: f32 = window.iter().map(|w| w * w).sum();
        let bins = block / 2 + 1;
        let mut band_starts = [bins; BANDS + 1];
        band_starts[0] = 1; // DC says nothing of speech
        for (start, edge) in band_starts[1..BANDS].iter_mut().zip(BAND_EDGES_HZ) {
            *start = ((edge * block as f32 / rate as f32).round() as usize).clamp(1, bins);
        }
        Self {
            block,
            rate,
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            band_starts,
            scale: 2.0 / (block as f32 * window_power),
        }
    }

    /// Adds one channel's block, windowed, to `power` (per band).
    fn add_channel(&mut self, samples: impl Iterator<Item = f32>, power: &mut [f64; BANDS]) {
        for ((slot, sample), w) in self.input.iter_mut().zip(samples).zip(&self.window) {
            *slot = sample * w;
        }
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .is_err()
        {
            return;
        }
        for (band, total) in power.iter_mut().enumerate() {
            let bins = self.band_starts[band]..self.band_starts[band + 1];
            *total += self.spectrum[bins]
                .iter()
                .map(|x| f64::from(x.norm_sqr() * self.scale))
                .sum::<f64>();
        }
    }
}

impl BandMeter {
    /// The levels of [`BLOCKS_PER_FRAME`] consecutive blocks of one frame of
    /// f32 samples laid out as `layout` says.
    pub fn frame_levels(&mut self, bytes: &[u8], layout: SampleLayout) -> FrameLevels {
        let per_channel = bytes.len() / 4 / layout.channels.max(1);
        let block = per_channel / BLOCKS_PER_FRAME;
        if block < 2 {
            return [[SILENCE_DB; BANDS]; BLOCKS_PER_FRAME];
        }
        let plan = match &mut self.plan {
            Some(plan) if plan.block == block && plan.rate == layout.rate => plan,
            slot => slot.insert(BandPlan::new(block, layout.rate)),
        };
        std::array::from_fn(|index| {
            let mut power = [0.0f64; BANDS];
            for channel in 0..layout.channels {
                let samples = (index * block..(index + 1) * block)
                    .map(|i| layout.sample(bytes, channel, i, per_channel));
                plan.add_channel(samples, &mut power);
            }
            power.map(|p| to_db(p, layout.channels))
        })
    }
}

/// The mean of `sum` over `count`, in dB, floored at [`SILENCE_DB`].
fn to_db(sum: f64, count: usize) -> f32 {
    if count == 0 || sum <= 0.0 {
        return SILENCE_DB;
    }
    ((10.0 * (sum / count as f64).log10()) as f32).max(SILENCE_DB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    fn sine(hz: f32, amplitude: f32, samples: usize) -> Vec<f32> {
        (0..samples)
            .map(|n| amplitude * (std::f32::consts::TAU * hz * n as f32 / 48_000.0).sin())
            .collect()
    }

    const MONO: SampleLayout = SampleLayout {
        rate: 48_000,
        channels: 1,
        planar: false,
    };

    #[test]
    fn a_sine_is_measured_in_its_own_band_at_its_level() {
        let mut meter = BandMeter::default();
        // A full-scale sine is -3 dBFS of mean square. Bins are 187.5 Hz
        // apart and the Hann window spreads a sine over about four of them:
        // a band holds its sine to 1.5 dB, the others stay 10 dB under it.
        for (hz, band) in [(250.0, 0), (1000.0, 1), (3000.0, 2), (8000.0, 3)] {
            let levels = meter.frame_levels(&samples(&sine(hz, 1.0, 1024)), MONO);
            for block in levels {
                assert!((block[band] + 3.0).abs() < 1.5, "{hz} Hz: {block:?}");
                for (other, level) in block.iter().enumerate() {
                    if other != band {
                        assert!(*level < -13.0, "{hz} Hz leaks into band {other}: {block:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn he_aac_frames_of_5_1_at_44_1_khz_are_measured_in_their_bands() {
        // HE-AAC decodes to 2048 samples a frame: blocks of 512, a plan of
        // their own; six planar channels, a 1 kHz tone in the centre only.
        let tone: Vec<f32> = (0..2048)
            .map(|n| (std::f32::consts::TAU * 1000.0 * n as f32 / 44_100.0).sin())
            .collect();
        let planar: Vec<f32> = (0..6)
            .flat_map(|channel| {
                let gain = if channel == 2 { 1.0 } else { 0.0 };
                tone.iter().map(move |s| s * gain)
            })
            .collect();
        let layout = SampleLayout {
            rate: 44_100,
            channels: 6,
            planar: true,
        };
        let mut meter = BandMeter::default();
        for block in meter.frame_levels(&samples(&planar), layout) {
            // -3 dBFS in one channel of six: 7.8 dB less on average.
            assert!((block[1] - (-3.0 - 7.8)).abs() < 1.0, "{block:?}");
            assert!(
                block[0] < block[1] - 20.0 && block[2] < block[1] - 20.0,
                "{block:?}"
            );
        }
        // Then an AAC-LC frame again: the plan follows the block length.
        let mono = meter.frame_levels(&samples(&sine(3000.0, 1.0, 1024)), MONO);
        assert!((mono[0][2] + 3.0).abs() < 1.5, "{mono:?}");
    }

    #[test]
    fn channels_and_layouts_measure_alike() {
        let left = sine(1000.0, 0.5, 1024);
        let right = sine(3000.0, 0.25, 1024);
        let planar: Vec<f32> = left.iter().chain(&right).copied().collect();
        let interleaved: Vec<f32> = left
            .iter()
            .zip(&right)
            .flat_map(|(l, r)| [*l, *r])
            .collect();
        let stereo = |planar| SampleLayout {
            channels: 2,
            planar,
            ..MONO
        };
        let mut meter = BandMeter::default();
        let a = meter.frame_levels(&samples(&planar), stereo(true));
        let b = meter.frame_levels(&samples(&interleaved), stereo(false));
        assert_eq!(a, b);
        // Each channel's power, averaged over the two.
        assert!((a[0][1] - (-9.0 - 3.0)).abs() < 0.5, "{a:?}");
        assert!((a[0][2] - (-15.0 - 3.0)).abs() < 0.5, "{a:?}");
        assert_eq!(
            meter.frame_levels(&samples(&[0.0; 1024]), MONO),
            [[SILENCE_DB; BANDS]; BLOCKS_PER_FRAME]
        );
    }
}
