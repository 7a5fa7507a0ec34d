// SPDX-License-Identifier: MPL-2.0

//! The output audio when it is re-encoded (voice-over, or stretched
//! speech): one decoder and one encoder per stream, each fed the whole
//! stream in order, so the encoder is primed once and never drained
//! between segments, and the output is one continuous AAC stream.
//!
//! Timestamps are counted, never taken from the encoder: encoded frame i
//! (once the encoder's one frame of priming is dropped) is made from the
//! samples of input frame i and takes its timestamps, so the output has
//! exactly the input's frames, A/V as in the input. The encoder holds two
//! frames back for its look-ahead; they leave with the next segment, or at
//! the end of the stream.
//!
//! Encoder: FFmpeg's native AAC encoder (avenc_aac, gst-libav), which takes
//! the decoder's float samples as they are, encodes 1 to 6 channels, and
//! is measured in `examples/bench_voiceover.rs` against voaacenc (S16 and
//! at most two channels, and a lower quality at the same bitrate).

use std::collections::VecDeque;

use gst::prelude::*;

use crate::audio::driven_element::{self, DrivenElement};
use crate::audio::loudness::{Loudness, LoudnessRules, Readings, SegmentLoudness};
use crate::audio::mix::OriginalGain;
use crate::container::m4a::{AAC_FRAME_SAMPLES, AacConfig};

/// The bitrate until the input's is known, and when nothing says.
pub const DEFAULT_BITRATE: u32 = 128_000;
/// Ramp of the original's gain at a switch between dub and fallback.
const SWITCH_RAMP_MS: u64 = 30;
/// FFmpeg's AAC encoder starts with one frame of priming.
const ENCODER_PRIMING_FRAMES: usize = 1;

/// How the output is re-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Encoding {
    /// Bits/s; None: the input's, measured on the first segment.
    pub bitrate: Option<u32>,
    /// avenc_aac's fast search instead of its two-loop one.
    pub fast: bool,
    /// Loudness, and the true-peak ceiling.
    pub loudness: LoudnessRules,
}

pub struct Reencoder {
    config: AacConfig,
    channels: usize,
    decoder: FrameDecoder,
    encoder: DrivenElement,
    bitrate: u32,
    /// Follow the input's bitrate, measured on the first segment.
    auto_bitrate: bool,
    fast: bool,
    gain: OriginalGain,
    /// Loudness and the true-peak limiter, between the mix and the encoder.
    loudness: Loudness,
    /// Input frames whose encoded frame has not come out yet, in order.
    waiting: VecDeque<gst::Buffer>,
    /// Encoded frames still to drop as priming.
    priming: usize,
    /// Sample frames fed to the encoder so far.
    fed: u64,
}

impl Reencoder {
    /// A decoder and an encoder for `config`'s stream (AAC-LC only: its
    /// frames are 1024 samples at the stream's rate, as the encoder's are).
    pub fn new(config: &AacConfig, encoding: Encoding) -> Result<Self, String> {
        if config.object_type != 2 {
            return Err(format!(
                "re-encoding needs AAC-LC input, the stream is AAC object type {}",
                config.object_type
            ));
        }
        let decoder = FrameDecoder::new(config)?;
        let bitrate_in_force = encoding.bitrate.unwrap_or(DEFAULT_BITRATE);
        let channels = usize::from(config.channels.max(1));
        Ok(Self {
            encoder: encoder(config, bitrate_in_force, encoding.fast)?,
            config: config.clone(),
            channels,
            decoder,
            bitrate: bitrate_in_force,
            auto_bitrate: encoding.bitrate.is_none(),
            fast: encoding.fast,
            gain: OriginalGain::new(
                (SWITCH_RAMP_MS * u64::from(config.sample_rate) / 1000) as usize,
            ),
            loudness: Loudness::new(encoding.loudness, channels, config.sample_rate),
            waiting: VecDeque::new(),
            priming: ENCODER_PRIMING_FRAMES,
            fed: 0,
        })
    }

    pub fn config(&self) -> &AacConfig {
        &self.config
    }

    /// The caps of what leaves: the encoder's.
    pub fn output_caps(&self) -> Option<gst::Caps> {
        self.encoder.output_caps()
    }

    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// Encodes one segment: its original frames (stamped as they leave),
    /// decoded and set to `original_gain` (ramped from the last segment's),
    /// with `voice` (exactly the segment's length) added. The encoded frames
    /// that are complete, stamped with their input frames' timestamps.
    pub fn render(
        &mut self,
        originals: &[gst::Buffer],
        voice: Option<&[f32]>,
        original_gain: f32,
    ) -> Result<Vec<gst::Buffer>, String> {
        if self.fed == 0 && self.auto_bitrate {
            self.follow_input_bitrate(originals)?;
        }
        let original = self.decoder.decode(originals.iter().cloned())?;
        let mut pcm = original.clone();
        self.gain.mix(&mut pcm, self.channels, original_gain, voice);
        let pcm = self.loudness.process(&original, pcm, voice.is_some());
        let encoded = self.encode(pcm)?;
        // Only now: a failure above leaves these originals to the caller.
        self.waiting.extend(originals.iter().cloned());
        Ok(self.stamp(encoded))
    }

    /// The last segment's loudness, in and out.
    pub fn last_loudness(&self) -> Option<SegmentLoudness> {
        self.loudness.last_segment()
    }

    /// The output's loudness so far.
    pub fn loudness_readings(&self) -> Readings {
        self.loudness.readings()
    }

    fn encode(&mut self, pcm: Vec<f32>) -> Result<Vec<gst::Buffer>, String> {
        if pcm.is_empty() {
            return Ok(Vec::new());
        }
        let buffer = self.pcm_buffer(pcm);
        self.encoder
            .push(buffer)
            .map_err(|e| format!("the AAC encoder failed: {e:?}"))
    }

    /// The end of the stream: the frames the limiter and the encoder still
    /// held.
    pub fn finish(&mut self) -> Vec<gst::Buffer> {
        let tail = self.loudness.flush();
        let mut last = self.encode(tail).unwrap_or_default();
        last.extend(self.encoder.finish());
        let mut out = self.stamp(last);
        // Never lose audio: a frame the encoder did not give back goes out
        // as it came in.
        out.extend(self.waiting.drain(..));
        out
    }

    /// The input frames not encoded yet, for going on without re-encoding.
    pub fn abandon(mut self) -> Vec<gst::Buffer> {
        self.waiting.drain(..).collect()
    }

    fn pcm_buffer(&mut self, pcm: Vec<f32>) -> gst::Buffer {
        let frames = (pcm.len() / self.channels) as u64;
        let rate = u64::from(self.config.sample_rate);
        // The encoder sees a perfect timeline: it never resyncs or drains.
        let pts = gst::ClockTime::from_nseconds(self.fed * 1_000_000_000 / rate);
        let mut buffer = driven_element::f32_buffer(&pcm, pts);
        if let Some(b) = buffer.get_mut() {
            b.set_duration(gst::ClockTime::from_nseconds(frames * 1_000_000_000 / rate));
        }
        self.fed += frames;
        buffer
    }

    /// Gives each encoded frame the timestamps of the input frame it was made from.
    fn stamp(&mut self, encoded: Vec<gst::Buffer>) -> Vec<gst::Buffer> {
        let mut out = Vec::with_capacity(encoded.len());
        for mut frame in encoded {
            if self.priming > 0 {
                self.priming -= 1;
                continue;
            }
            let Some(original) = self.waiting.pop_front() else {
                break; // the encoder's padding beyond the input
            };
            let b = frame.make_mut();
            b.set_pts(original.pts());
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(original.duration());
            if original.flags().contains(gst::BufferFlags::DISCONT) {
                b.set_flags(gst::BufferFlags::DISCONT);
            } else {
                b.unset_flags(gst::BufferFlags::DISCONT);
            }
            out.push(frame);
        }
        out
    }

    /// `bitrate=0`: the first segment says what the input spends.
    fn follow_input_bitrate(&mut self, originals: &[gst::Buffer]) -> Result<(), String> {
        let Some(measured) = input_bitrate(originals, self.config.sample_rate) else {
            return Ok(());
        };
        self.auto_bitrate = false;
        if measured.abs_diff(self.bitrate) >= 8_000 {
            // Nothing encoded yet: a new encoder has the same output caps.
            self.encoder = encoder(&self.config, measured, self.fast)?;
            self.bitrate = measured;
        }
        Ok(())
    }
}

/// AAC frames to interleaved f32, one call per run of frames, the
/// decoder's state kept between calls (a stream decoded piece by piece
/// sounds as if decoded whole).
pub struct FrameDecoder {
    decoder: DrivenElement,
    channels: usize,
}

impl FrameDecoder {
    pub fn new(config: &AacConfig) -> Result<Self, String> {
        let decoder = driven_element::started_aac_decoder(config, "stsdub-decode")?;
        Ok(Self {
            decoder,
            channels: usize::from(config.channels.max(1)),
        })
    }

    /// Exactly 1024 samples per channel for each frame: a frame the decoder
    /// refuses is a frame of silence, so the count of samples, and the
    /// timeline, never change.
    pub fn decode(
        &mut self,
        frames: impl Iterator<Item = gst::Buffer>,
    ) -> Result<Vec<f32>, String> {
        let per_frame = AAC_FRAME_SAMPLES as usize * self.channels;
        let mut pcm = Vec::with_capacity(frames.size_hint().0 * per_frame);
        for frame in frames {
            let decoded = self
                .decoder
                .push(frame)
                .map_err(|e| format!("the AAC decoder failed: {e:?}"))?;
            let planes = self
                .decoder
                .output_caps()
                .map_or(1, |caps| driven_element::planes(&caps));
            let start = pcm.len();
            for buffer in &decoded {
                if let Ok(map) = buffer.map_readable() {
                    append_interleaved(&mut pcm, map.as_slice(), planes);
                }
            }
            pcm.resize(start + per_frame, 0.0);
        }
        Ok(pcm)
    }
}

/// The bitrate of AAC frames, to the nearest 8 kb/s, within 32..=320 kb/s
/// per channel pair; None for too few frames to tell.
pub fn input_bitrate(frames: &[gst::Buffer], rate: u32) -> Option<u32> {
    if frames.len() < 10 {
        return None;
    }
    let bytes: usize = frames.iter().map(|f| f.size()).sum();
    let seconds = frames.len() as f64 * f64::from(AAC_FRAME_SAMPLES) / f64::from(rate.max(1));
    let bits = bytes as f64 * 8.0 / seconds;
    let rounded = ((bits / 8_000.0).round() * 8_000.0) as u32;
    Some(rounded.clamp(32_000, 640_000))
}

pub(crate) fn encoder(
    config: &AacConfig,
    bitrate: u32,
    fast: bool,
) -> Result<DrivenElement, String> {
    let element = gst::ElementFactory::make("avenc_aac")
        .property("bitrate", bitrate as i32)
        .build()
        .map_err(|_| "avenc_aac is not installed (gst-libav)".to_string())?;
    if fast {
        element.set_property_from_str("aac-coder", "fast");
    }
    let aac = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .build();
    let encoder = DrivenElement::new(element, &aac, "AAC encoder")?;
    let input = driven_element::interleaved_caps(config.sample_rate, usize::from(config.channels));
    encoder.start(&input, &driven_element::time_segment(), "stsdub-reencode")?;
    Ok(encoder)
}

/// Appends F32LE `bytes` laid out in `planes` planes as interleaved samples.
fn append_interleaved(pcm: &mut Vec<f32>, bytes: &[u8], planes: usize) {
    if planes <= 1 {
        driven_element::extend_f32(pcm, bytes);
        return;
    }
    let mut samples = Vec::with_capacity(bytes.len() / 4);
    driven_element::extend_f32(&mut samples, bytes);
    let per_plane = samples.len() / planes;
    for i in 0..per_plane {
        pcm.extend((0..planes).map(|c| samples[c * per_plane + i]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;
    const KNOWN_BITRATE: Encoding = Encoding {
        bitrate: Some(128_000),
        fast: false,
        loudness: LoudnessRules {
            mode: crate::audio::loudness::LoudnessMode::Off,
            target_lufs: -23.0,
            range_lu: 20.0,
            true_peak_dbtp: -1.0,
        },
    };

    fn init() {
        gst::init().expect("GStreamer initialises");
    }

    /// AAC frames of a 440 Hz tone with a loud click in frame `click`.
    fn tone_frames(config: &AacConfig, count: usize, click: Option<usize>) -> Vec<gst::Buffer> {
        let per = AAC_FRAME_SAMPLES as usize;
        let pcm: Vec<i16> = (0..count * per)
            .flat_map(|i| {
                let loud = click.is_some_and(|c| i / per == c);
                let v = if loud { 0.9 } else { 0.1 }
                    * (i as f64 * 440.0 * std::f64::consts::TAU / f64::from(RATE)).sin();
                let s = (v * 32767.0) as i16;
                [s, s]
            })
            .collect();
        let frames =
            crate::audio::transcode::encode(config, &pcm, std::time::Duration::from_secs(10))
                .expect("encoded");
        let frame_ns = config.frame_duration_ns();
        frames
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let mut b = gst::Buffer::from_slice(f);
                let m = b.get_mut().expect("writable");
                m.set_pts(gst::ClockTime::from_nseconds(
                    1_000_000_000 + i as u64 * frame_ns,
                ));
                m.set_duration(gst::ClockTime::from_nseconds(frame_ns));
                b
            })
            .collect()
    }

    fn decoded_rms_per_frame(config: &AacConfig, frames: &[gst::Buffer]) -> Vec<f32> {
        let maps: Vec<_> = frames
            .iter()
            .map(|f| f.map_readable().expect("readable"))
            .collect();
        let slices: Vec<&[u8]> = maps.iter().map(|m| m.as_slice()).collect();
        let pcm = crate::audio::transcode::decode_float(
            config,
            &slices,
            RATE,
            2,
            std::time::Duration::from_secs(10),
        )
        .expect("decoded");
        pcm.chunks(AAC_FRAME_SAMPLES as usize * 2)
            .map(crate::audio::fit::rms)
            .collect()
    }

    #[test]
    fn every_input_frame_comes_out_once_with_its_timestamps_and_content() {
        init();
        let config = AacConfig::aac_lc(RATE, 2).expect("config");
        let input = tone_frames(&config, 60, Some(37));
        let mut reencoder = Reencoder::new(&config, KNOWN_BITRATE).expect("reencoder");
        let mut out = Vec::new();
        for segment in input.chunks(25) {
            out.extend(reencoder.render(segment, None, 1.0).expect("rendered"));
        }
        assert!(
            out.len() < input.len(),
            "the encoder holds its look-ahead back"
        );
        out.extend(reencoder.finish());
        assert_eq!(out.len(), input.len());
        for (o, i) in out.iter().zip(&input) {
            assert_eq!((o.pts(), o.duration()), (i.pts(), i.duration()));
        }
        // The click is in the same frame after re-encoding: no shift.
        let levels = decoded_rms_per_frame(&config, &out);
        let loudest = levels
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        assert_eq!(loudest, Some(37), "{levels:?}");
    }

    #[test]
    fn the_original_is_lowered_under_a_dub_by_its_gain() {
        init();
        let config = AacConfig::aac_lc(RATE, 2).expect("config");
        let input = tone_frames(&config, 80, None);
        let mut reencoder = Reencoder::new(&config, KNOWN_BITRATE).expect("reencoder");
        let silence = vec![0.0f32; 40 * AAC_FRAME_SAMPLES as usize * 2];
        let mut out = reencoder.render(&input[..40], None, 1.0).expect("full");
        out.extend(
            reencoder
                .render(&input[40..], Some(&silence), 0.2)
                .expect("ducked"),
        );
        out.extend(reencoder.finish());
        let levels = decoded_rms_per_frame(&config, &out);
        let db = 20.0 * (levels[60] / levels[20]).log10();
        assert!((db + 13.98).abs() < 0.5, "{db} dB");
    }

    #[test]
    fn the_input_bitrate_is_read_from_frame_sizes() {
        init();
        let frames: Vec<gst::Buffer> = (0..50)
            .map(|_| gst::Buffer::with_size(256).expect("buffer"))
            .collect();
        // 256 bytes per 1024 samples at 48 kHz = 96 kb/s.
        assert_eq!(input_bitrate(&frames, 48_000), Some(96_000));
        assert_eq!(input_bitrate(&frames[..3], 48_000), None);
    }
}
