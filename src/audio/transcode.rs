// SPDX-License-Identifier: MPL-2.0

//! AAC decode, encode and transcode on the calling thread, with GStreamer's
//! own elements (avdec_aac, audioconvert ! audioresample, avenc_aac) each
//! driven as a lone element: no pipeline, no streaming thread, no bus per
//! call. Used off the streaming threads: for dubbed audio whose rate,
//! channels or profile differ from the stream, and by the echo STS.
//!
//! A pipeline per call (as this was first written) costs two streaming
//! threads each, and a process transcoding every answer levelled at 4× the
//! RSS of one that did not (130 against 33 MiB in the soak) with ten more
//! threads alive; lone elements leave nothing behind but what they return.
//! Every call is bounded: the time limit is checked between frames, and a
//! decoder that refuses the audio ends the call with an error.

use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::audio::driven_element::{self, DrivenElement};
use crate::container::m4a::{AAC_FRAME_SAMPLES, AacConfig};

/// Decodes AAC frames to interleaved S16 at `rate` Hz and `channels`
/// channels, within `limit`.
pub fn decode(
    config: &AacConfig,
    frames: &[&[u8]],
    rate: u32,
    channels: u8,
    limit: Duration,
) -> Result<Vec<i16>, String> {
    let pcm = decode_float(config, frames, rate, channels, limit)?;
    Ok(pcm
        .iter()
        .map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

/// Decodes AAC frames to interleaved f32 at `rate` Hz and `channels`
/// channels, within `limit`: what the voice-over mix works on.
pub fn decode_float(
    config: &AacConfig,
    frames: &[&[u8]],
    rate: u32,
    channels: u8,
    limit: Duration,
) -> Result<Vec<f32>, String> {
    let deadline = Instant::now() + limit;
    let (decoded, caps) = decode_as_decoded(config, frames, deadline)?;
    let wanted = driven_element::interleaved_caps(rate, usize::from(channels));
    if caps.can_intersect(&wanted) {
        return Ok(samples_of(&decoded));
    }
    let converted = convert(decoded, &caps, &wanted, deadline)?;
    Ok(samples_of(&converted))
}

/// Encodes interleaved S16 PCM to AAC-LC frames of `config`'s rate and
/// channels, without the encoder's priming frame: frame i starts at sample
/// i * 1024 of the input. Within `limit`.
pub fn encode(config: &AacConfig, pcm: &[i16], limit: Duration) -> Result<Vec<Vec<u8>>, String> {
    let pcm: Vec<f32> = pcm.iter().map(|s| f32::from(*s) / 32768.0).collect();
    encode_float(config, &pcm, Instant::now() + limit)
}

/// Re-encodes AAC frames of one configuration into AAC-LC of another,
/// dropping `priming_samples` (at the source rate) of encoder delay; both
/// halves within `limit`.
pub fn transcode(
    frames: &[&[u8]],
    from: &AacConfig,
    to: &AacConfig,
    priming_samples: u32,
    limit: Duration,
) -> Result<Vec<Vec<u8>>, String> {
    let started = Instant::now();
    let pcm = decode_float(from, frames, to.sample_rate, to.channels, limit)?;
    let skip =
        u64::from(priming_samples) * u64::from(to.sample_rate) / u64::from(from.sample_rate.max(1));
    let skip = (skip as usize * usize::from(to.channels)).min(pcm.len());
    encode_float(to, &pcm[skip..], started + limit)
}

/// Every frame through the decoder: its output as it gave it, and its caps.
fn decode_as_decoded(
    config: &AacConfig,
    frames: &[&[u8]],
    deadline: Instant,
) -> Result<(Vec<gst::Buffer>, gst::Caps), String> {
    let decoder = driven_element::started_aac_decoder(config, "stsdub-transcode")?;
    let frame = gst::ClockTime::from_nseconds(config.frame_duration_ns());
    let mut decoded = Vec::with_capacity(frames.len());
    for (index, data) in frames.iter().enumerate() {
        check_time(deadline)?;
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(frame * index as u64);
            b.set_duration(frame);
        }
        let out = decoder.push(buffer).map_err(|e| {
            format!(
                "the AAC decoder ({}) refused the audio: {e:?}",
                decoder.factory_name()
            )
        })?;
        decoded.extend(out);
    }
    decoded.extend(decoder.finish());
    match decoder.output_caps() {
        Some(caps) if !decoded.is_empty() => Ok((decoded, caps)),
        _ => Err(format!(
            "the AAC decoder ({}) made nothing of {} frames",
            decoder.factory_name(),
            frames.len()
        )),
    }
}

/// Raw audio of `caps` converted to `wanted` (channels, rate, layout):
/// audioconvert ! audioresample as one lone bin, drained at the end.
fn convert(
    decoded: Vec<gst::Buffer>,
    caps: &gst::Caps,
    wanted: &gst::Caps,
    deadline: Instant,
) -> Result<Vec<gst::Buffer>, String> {
    let bin = gst::parse::bin_from_description("audioconvert ! audioresample", true)
        .map_err(|e| format!("audioconvert or audioresample is missing: {e}"))?;
    let converter = DrivenElement::new(bin.upcast(), wanted, "audio converter")?;
    converter.start(caps, &driven_element::time_segment(), "stsdub-transcode")?;
    let mut converted = Vec::with_capacity(decoded.len());
    for buffer in decoded {
        check_time(deadline)?;
        converted.extend(
            converter
                .push(buffer)
                .map_err(|e| format!("the audio converter failed: {e:?}"))?,
        );
    }
    converted.extend(converter.finish());
    Ok(converted)
}

/// Interleaved f32 samples to AAC-LC frames, the encoder's priming dropped.
fn encode_float(
    config: &AacConfig,
    pcm: &[f32],
    deadline: Instant,
) -> Result<Vec<Vec<u8>>, String> {
    let encoder =
        crate::audio::reencode::encoder(config, crate::audio::reencode::DEFAULT_BITRATE, false)?;
    let channels = usize::from(config.channels.max(1));
    let frame = AAC_FRAME_SAMPLES as usize * channels;
    let rate = u64::from(config.sample_rate.max(1));
    let mut encoded = Vec::new();
    for (index, chunk) in pcm.chunks(frame).enumerate() {
        check_time(deadline)?;
        let pts = gst::ClockTime::from_nseconds(
            (index * AAC_FRAME_SAMPLES as usize) as u64 * 1_000_000_000 / rate,
        );
        encoded.extend(
            encoder
                .push(driven_element::f32_buffer(chunk, pts))
                .map_err(|e| format!("the AAC encoder failed: {e:?}"))?,
        );
    }
    encoded.extend(encoder.finish());
    let mut frames: Vec<Vec<u8>> = encoded
        .iter()
        .filter_map(|b| b.map_readable().ok().map(|m| m.to_vec()))
        .collect();
    // FFmpeg's AAC encoder starts with one frame of priming: whatever it
    // emits beyond the input's frame count is that delay.
    let input_frames = (pcm.len() / channels).div_ceil(AAC_FRAME_SAMPLES as usize);
    if frames.len() > input_frames {
        frames.remove(0);
    }
    Ok(frames)
}

fn samples_of(buffers: &[gst::Buffer]) -> Vec<f32> {
    let mut samples = Vec::with_capacity(buffers.iter().map(|b| b.size() / 4).sum());
    for buffer in buffers {
        if let Ok(map) = buffer.map_readable() {
            driven_element::extend_f32(&mut samples, map.as_slice());
        }
    }
    samples
}

fn check_time(deadline: Instant) -> Result<(), String> {
    if Instant::now() >= deadline {
        return Err("not done within its time limit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        gst::init().expect("GStreamer initialises");
    }

    #[test]
    fn a_transcode_out_of_time_is_an_error() {
        init();
        let from = AacConfig::aac_lc(16_000, 1).expect("16 kHz mono");
        let to = AacConfig::aac_lc(48_000, 2).expect("48 kHz stereo");
        let frames = encode(&from, &[0i16; 16_000], Duration::from_secs(10)).expect("encodes");
        let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let error = transcode(&frames, &from, &to, 0, Duration::ZERO).expect_err("no time at all");
        assert!(error.contains("time limit"), "{error}");
    }

    #[test]
    fn a_transcode_keeps_the_duration_and_the_tone() {
        init();
        let from = AacConfig::aac_lc(16_000, 1).expect("16 kHz mono");
        let to = AacConfig::aac_lc(48_000, 2).expect("48 kHz stereo");
        // One second of 440 Hz at 16 kHz, mono.
        let tone: Vec<i16> = (0..16_000)
            .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
            .collect();
        let limit = Duration::from_secs(10);
        let frames = encode(&from, &tone, limit).expect("encodes");
        let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let out = transcode(&frames, &from, &to, 1024, limit).expect("transcodes");
        // What was decoded, less the priming, at three times the rate.
        let expected = ((frames.len() * 1024 - 1024) * 3).div_ceil(1024);
        assert_eq!(out.len(), expected);
        let out: Vec<&[u8]> = out.iter().map(Vec::as_slice).collect();
        let pcm = decode_float(&to, &out, 48_000, 2, limit).expect("decodes");
        let left: Vec<f32> = pcm.iter().step_by(2).copied().collect();
        let middle = &left[12_000..36_000];
        let rms = (middle.iter().map(|s| s * s).sum::<f32>() / middle.len() as f32).sqrt();
        assert!(
            (0.15..0.21).contains(&rms),
            "8000/32768/sqrt(2) = 0.17: {rms}"
        );
        // A 440 Hz tone at 48 kHz crosses zero 880 times a second.
        let crossings = middle
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        assert!((430..=450).contains(&crossings), "{crossings} in 0.5 s");
    }

    #[test]
    fn corrupt_aac_is_an_error_never_a_hang() {
        init();
        let from = AacConfig::aac_lc(16_000, 1).expect("16 kHz mono");
        let to = AacConfig::aac_lc(48_000, 2).expect("48 kHz stereo");
        let garbage: Vec<Vec<u8>> = (0..50u8)
            .map(|i| vec![i.wrapping_mul(37) | 0x80; 200])
            .collect();
        let frames: Vec<&[u8]> = garbage.iter().map(Vec::as_slice).collect();
        let result = transcode(&frames, &from, &to, 0, Duration::from_secs(5));
        let error = result.expect_err("garbage does not decode");
        assert!(error.contains("avdec_aac"), "{error}");
    }
}
