// SPDX-License-Identifier: MPL-2.0

//! The loudness of each AAC frame, measured on decoded audio, for finding
//! the pauses in speech. The stream itself stays codec copy: the decoded
//! samples are measured and dropped.
//!
//! The decoder is GStreamer's own (avdec_aac, else the best-ranked AAC
//! decoder installed), used as a lone element whose pads are linked to two
//! pads of ours: a frame pushed into it comes back decoded in the same call,
//! on the calling thread. No bin, no thread, no queue, no hand-off per frame,
//! and every AAC profile the decoder knows (HE-AAC, 5.1) measures as well as
//! AAC-LC does.

use crate::audio::driven_element::{self, DrivenElement};
use crate::container::m4a::AacConfig;

/// The levels are the cut policy's input: their format is its own.
pub use crate::timeline::cut_policy::{BLOCKS_PER_FRAME, FrameLevels, SILENCE_DB};

/// Decodes AAC frames one by one and reports each one's RMS level in dBFS.
pub struct LevelMeter {
    decoder: DrivenElement,
    /// Frames were skipped since the last one measured.
    skipped: bool,
}

impl LevelMeter {
    /// A meter for `config`'s stream; an error names what is missing.
    pub fn new(config: &AacConfig) -> Result<Self, String> {
        let decoder = driven_element::started_aac_decoder(config, "stsdub-level")?;
        Ok(Self {
            decoder,
            skipped: false,
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
        let planes = self
            .decoder
            .output_caps()
            .map_or(1, |caps| driven_element::planes(&caps));
        let levels = decoded
            .last()
            .and_then(|b| b.map_readable().ok())
            .map(|map| block_levels(map.as_slice(), planes));
        Ok(levels.filter(|_| !settling))
    }

    /// Notes a frame not decoded: the next one measured is only decoded.
    pub fn skip(&mut self) {
        self.skipped = true;
    }
}

/// The levels of [`BLOCKS_PER_FRAME`] consecutive blocks of f32 samples laid
/// out in `planes` equal planes (1: interleaved; a block edge may then fall
/// between two channels' samples of one instant, which a level ignores).
pub fn block_levels(bytes: &[u8], planes: usize) -> FrameLevels {
    let planes = planes.max(1);
    let plane_samples = bytes.len() / 4 / planes;
    let mut levels = [SILENCE_DB; BLOCKS_PER_FRAME];
    for (index, level) in levels.iter_mut().enumerate() {
        let from = plane_samples * index / BLOCKS_PER_FRAME;
        let to = plane_samples * (index + 1) / BLOCKS_PER_FRAME;
        let (sum, count) = (0..planes)
            .map(|plane| {
                let base = plane * plane_samples;
                sum_of_squares(&bytes[(base + from) * 4..(base + to) * 4])
            })
            .fold((0.0, 0), |(s, n), (ps, pn)| (s + ps, n + pn));
        *level = to_db(sum, count);
    }
    levels
}

fn sum_of_squares(bytes: &[u8]) -> (f64, usize) {
    bytes
        .chunks_exact(4)
        .fold((0.0, 0), |(sum, count), sample| {
            let value = f64::from(f32::from_ne_bytes([
                sample[0], sample[1], sample[2], sample[3],
            ]));
            (sum + value * value, count + 1)
        })
}

fn to_db(sum: f64, count: usize) -> f32 {
    if count == 0 || sum <= 0.0 {
        return SILENCE_DB;
    }
    ((10.0 * (sum / count as f64).log10()) as f32).max(SILENCE_DB)
}

/// RMS level of native-endian f32 samples, in dBFS, floored at [`SILENCE_DB`].
pub fn rms_db(bytes: &[u8]) -> f32 {
    let (sum, count) = sum_of_squares(bytes);
    to_db(sum, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    #[test]
    fn full_scale_square_wave_is_0_db_and_silence_is_the_floor() {
        assert!(rms_db(&samples(&[1.0, -1.0, 1.0, -1.0])).abs() < 1e-6);
        assert_eq!(rms_db(&samples(&[0.0; 64])), SILENCE_DB);
        assert_eq!(rms_db(&[]), SILENCE_DB);
        let tenth = rms_db(&samples(&[0.1, -0.1]));
        assert!((tenth + 20.0).abs() < 1e-4, "{tenth}");
    }
}
