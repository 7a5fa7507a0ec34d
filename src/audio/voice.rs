// SPDX-License-Identifier: MPL-2.0

//! Dubbed speech made ready for the mix when the output is re-encoded:
//! decoded to the stream's rate and channels, sped up with its pitch kept
//! when it is too long (GStreamer's scaletempo), cut or padded to exactly
//! its segment, and faded at both edges so that no join clicks.
//!
//! scaletempo over SoundTouch's `pitch`: both are overlap-add time
//! stretchers that keep pitch; scaletempo is in gst-plugins-good (always
//! installed with the decoders we need), and `examples/bench_voiceover.rs`
//! measures its cost and the pitch it keeps against `pitch`'s.

use std::time::Duration;

use crate::audio::driven_element::{self, DrivenElement};
use crate::audio::fit::{self, FitMode, FitPlan, FitRules};
use crate::audio::mix;
use crate::audio::reencode::FrameDecoder;
use crate::audio::transcode;
use crate::container::m4a::{self, AacConfig};
use crate::timeline::splice;

/// Fade-in at a voice's start and fade-out at its end.
const EDGE_FADE: Duration = Duration::from_millis(5);
/// Fade-out where a trim cuts into the voice: short enough not to lose a
/// syllable, long enough not to sound cut off.
const CUT_FADE: Duration = Duration::from_millis(40);
/// A stretched voice ends this long before its segment does.
const END_GUARD: Duration = Duration::from_millis(20);
/// Blocks the end of the voice is looked for in.
const VOICE_BLOCK: Duration = Duration::from_millis(5);
/// Quieter than this, absolutely (-50 dBFS) or 40 dB under the voice's
/// loudest block, is the silence after the voice.
const SILENCE_FLOOR: f32 = 0.003;
const BELOW_PEAK: f32 = 0.01;
/// scaletempo keeps its last window: this much silence is fed after the
/// voice so that all of the voice comes out.
const STRETCH_TAIL: Duration = Duration::from_millis(100);

/// Dubbed speech for one segment: interleaved f32 at the stream's rate
/// and channels, exactly the segment's length.
#[derive(Debug, Clone)]
pub struct Voice {
    pub samples: Vec<f32>,
    pub plan: FitPlan,
}

/// Decodes the dubbed M4A `data` and fits it to `wanted` sample frames of
/// `stream`'s format, within `limit`.
pub fn prepare(
    stream: &AacConfig,
    data: &[u8],
    wanted: usize,
    rules: &FitRules,
    limit: Duration,
) -> Result<Voice, String> {
    let unpacked = m4a::unpack(data).map_err(|e| e.to_string())?;
    let dubbed = &unpacked.config;
    let stretch = match rules.mode {
        FitMode::Stretch => rules.max_stretch,
        FitMode::Trim => 1.0,
    };
    let needed = splice::frames_worth_decoding(
        dubbed,
        stream.sample_rate,
        wanted,
        stretch,
        unpacked.priming_samples,
    );
    let frames: Vec<&[u8]> = unpacked
        .frames
        .iter()
        .take(needed)
        .map(|r| &data[r.clone()])
        .collect();
    let channels = usize::from(stream.channels.max(1));
    let mut samples = if (dubbed.object_type, dubbed.sample_rate, dubbed.channels)
        == (2, stream.sample_rate, stream.channels)
    {
        // The usual answer, in the stream's own format: one decoder, no
        // pipeline, no conversion.
        FrameDecoder::new(dubbed)?
            .decode(frames.iter().map(|f| gst::Buffer::from_slice(f.to_vec())))?
    } else {
        transcode::decode_float(dubbed, &frames, stream.sample_rate, stream.channels, limit)?
    };
    let priming = u64::from(unpacked.priming_samples) * u64::from(stream.sample_rate)
        / u64::from(unpacked.config.sample_rate.max(1));
    samples.drain(..(priming as usize * channels).min(samples.len()));
    fit_samples(samples, stream.sample_rate, channels, wanted, rules)
}

/// Fits decoded speech to `wanted` sample frames (see [`prepare`]).
pub fn fit_samples(
    mut samples: Vec<f32>,
    rate: u32,
    channels: usize,
    wanted: usize,
    rules: &FitRules,
) -> Result<Voice, String> {
    let frames_of = |d: Duration| (d.as_secs_f64() * f64::from(rate)).round() as usize;
    let length = samples.len() / channels;
    let voiced = fit::voiced_length(
        &samples,
        channels,
        frames_of(VOICE_BLOCK),
        silence_threshold(&samples, channels, frames_of(VOICE_BLOCK)),
    );
    let plan = fit::plan(length, voiced, wanted, frames_of(END_GUARD), rules);
    if plan.factor > 1.0 {
        samples.truncate(voiced * channels);
        samples.resize((voiced + frames_of(STRETCH_TAIL)) * channels, 0.0);
        samples = stretch(&samples, rate, channels, plan.factor)?;
    }
    let cut_fade = if plan.cuts_voice {
        frames_of(CUT_FADE)
    } else {
        0
    };
    mix::fit_length(&mut samples, channels, wanted, cut_fade);
    mix::fade_edges(
        &mut samples,
        channels,
        frames_of(EDGE_FADE),
        frames_of(EDGE_FADE),
    );
    Ok(Voice { samples, plan })
}

/// 40 dB under the loudest block, and never under -50 dBFS.
fn silence_threshold(samples: &[f32], channels: usize, block: usize) -> f32 {
    let peak = samples
        .chunks(block.max(1) * channels)
        .map(fit::rms)
        .fold(0.0f32, f32::max);
    (peak * BELOW_PEAK).max(SILENCE_FLOOR)
}

/// Speeds interleaved f32 `samples` up by `factor`, pitch kept.
pub fn stretch(
    samples: &[f32],
    rate: u32,
    channels: usize,
    factor: f64,
) -> Result<Vec<f32>, String> {
    let caps = driven_element::interleaved_caps(rate, channels);
    let element = gst::ElementFactory::make("scaletempo")
        .build()
        .map_err(|_| "scaletempo is not installed (gst-plugins-good)".to_string())?;
    let scaletempo = DrivenElement::new(element, &caps, "scaletempo")?;
    // scaletempo reads the speed-up from the segment's rate.
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_rate(factor);
    scaletempo.start(&caps, &segment.upcast(), "stsdub-stretch")?;
    let mut output = scaletempo
        .push(driven_element::f32_buffer(samples, gst::ClockTime::ZERO))
        .map_err(|e| format!("scaletempo: {e:?}"))?;
    output.extend(scaletempo.finish());
    let mut stretched = Vec::with_capacity((samples.len() as f64 / factor) as usize + 1024);
    for buffer in output {
        let map = buffer.map_readable().map_err(|e| e.to_string())?;
        driven_element::extend_f32(&mut stretched, map.as_slice());
    }
    Ok(stretched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::fit::FitMode;

    const RATE: u32 = 48_000;

    fn tone(seconds: f64, hz: f64) -> Vec<f32> {
        (0..(seconds * f64::from(RATE)) as usize)
            .map(|i| {
                (0.3 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(RATE)).sin()) as f32
            })
            .collect()
    }

    /// Zero crossings per second: the tone's pitch.
    fn pitch(samples: &[f32]) -> f64 {
        let crossings = samples
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        crossings as f64 * f64::from(RATE) / samples.len() as f64
    }

    #[test]
    fn scaletempo_shortens_speech_and_keeps_its_pitch() {
        gst::init().expect("GStreamer initialises");
        let input = tone(2.0, 440.0);
        let out = stretch(&input, RATE, 1, 1.2).expect("stretched");
        let expected = input.len() as f64 / 1.2;
        assert!(
            (out.len() as f64 - expected).abs() < 0.05 * expected,
            "{} samples for {expected}",
            out.len()
        );
        let middle = &out[out.len() / 4..out.len() * 3 / 4];
        assert!(
            (pitch(middle) - 440.0).abs() < 5.0,
            "pitch {}",
            pitch(middle)
        );
    }

    #[test]
    fn long_speech_is_stretched_to_end_before_its_segment() {
        gst::init().expect("GStreamer initialises");
        // 1.1 s of tone then 0.1 s of silence, into a 1.0 s segment.
        let mut speech = tone(1.1, 300.0);
        speech.extend(vec![0.0; 4800]);
        let stretch_rules = FitRules {
            mode: FitMode::Stretch,
            max_stretch: 1.25,
        };
        let voice = fit_samples(speech.clone(), RATE, 1, 48_000, &stretch_rules).expect("fitted");
        assert_eq!(voice.samples.len(), 48_000);
        assert_eq!(voice.plan.kind(), "stretched");
        assert!(!voice.plan.cuts_voice);
        let tail = &voice.samples[48_000 - 480..];
        assert!(
            tail.iter().all(|s| s.abs() < 0.01),
            "the last 10 ms are silent"
        );
        let trim_rules = FitRules {
            mode: FitMode::Trim,
            ..stretch_rules
        };
        let trimmed = fit_samples(speech, RATE, 1, 48_000, &trim_rules).expect("fitted");
        assert!(trimmed.plan.cuts_voice);
        let before_fade = &trimmed.samples[48_000 - 2400..48_000 - 2000];
        assert!(
            before_fade.iter().any(|s| s.abs() > 0.2),
            "the voice goes on to the cut"
        );
        assert_eq!(trimmed.samples[47_999], 0.0, "faded out, not cut off");
    }
}
