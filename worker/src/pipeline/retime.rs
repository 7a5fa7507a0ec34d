// SPDX-License-Identifier: MPL-2.0

//! Exact timestamps through the transcode in front of stsdub (a non-AAC
//! input decoded and encoded to AAC), where two GStreamer 1.22 elements
//! would shift the audio against the video:
//!
//! - `avenc_aac` (FFmpeg's AAC encoder) starts with one frame of priming
//!   (1024 samples of its own delay) stamped as the input's first frame, so
//!   everything after it would play 21.3 ms late at 48 kHz. MPEG-TS and FLV
//!   cannot mark priming as MP4's edit list does: the frame is dropped and
//!   the rest moved one frame earlier.
//! - `aacparse` on LOAS/LATM (DVB's AAC) drops most of the first PES
//!   packet and misstamps what it keeps: the LOAS is rewritten as ADTS in
//!   front of it (`loas.rs`), which it parses whole and stamps from each
//!   packet.
//!
//! Both act through pad probes on elements the launch line names
//! ([`ENCODER_NAME`], [`LOAS_PARSER_NAME`]).
//!
//! After stsdub, the encoders of `--output-audio-codec` start with their own
//! delay too (FFmpeg's `initial_padding`: 256 samples for AC-3, 481 for
//! MPEG-1 Layer II), which is not a whole frame: that many samples are
//! taken off the encoder's input and the rest stamped that much earlier,
//! so the first frame's priming takes the place of the samples taken off
//! and every sample decoded plays at its own time.

use std::sync::Mutex;

use gst::prelude::*;

/// The launch line's name for the AAC encoder of a transcoded input.
pub const ENCODER_NAME: &str = "audio_in_encoder";
/// The launch line's name for the LOAS parser of a LATM input.
pub const LOAS_PARSER_NAME: &str = "audio_in_loas";

/// Attaches the corrections to the elements of `pipeline` that need them;
/// a pipeline without a transcode is left as it is.
pub fn attach(pipeline: &gst::Element) {
    let Some(bin) = pipeline.downcast_ref::<gst::Bin>() else {
        return;
    };
    if let Some(src) = bin.by_name(ENCODER_NAME).and_then(|e| e.static_pad("src")) {
        drop_encoder_priming(&src);
    }
    if let Some(sink) = bin
        .by_name(LOAS_PARSER_NAME)
        .and_then(|p| p.static_pad("sink"))
    {
        super::loas::rewrite_as_adts(&sink);
    }
    for element in bin.iterate_recurse().into_iter().flatten() {
        let delay = element
            .factory()
            .and_then(|f| encoder_delay_samples(f.name().as_str()));
        if let (Some(delay), Some(sink)) = (delay, element.static_pad("sink")) {
            take_off_encoder_delay(&sink, delay);
        }
    }
}

/// The samples an output encoder's first frame is late by (FFmpeg's
/// `initial_padding` for the codec: libavcodec/ac3enc.c, mpegaudioenc.c).
fn encoder_delay_samples(factory: &str) -> Option<u64> {
    match factory {
        "avenc_ac3" => Some(256),
        "avenc_mp2" => Some(481),
        _ => None,
    }
}

/// How one raw buffer of `samples` samples at `pts` enters an encoder that
/// is late by `delay` samples, `to_take` of them still to be taken off:
/// dropped whole (None), or the samples to cut from its front and its new
/// timestamp. `to_take` is updated.
fn ahead_of_delay(
    pts: gst::ClockTime,
    samples: u64,
    rate: u64,
    delay: u64,
    to_take: &mut u64,
) -> Option<(u64, gst::ClockTime)> {
    if *to_take >= samples {
        *to_take -= samples;
        return None;
    }
    let cut = std::mem::take(to_take);
    let at = |n: u64| gst::ClockTime::from_nseconds(n * 1_000_000_000 / rate.max(1));
    Some((cut, (pts + at(cut)).saturating_sub(at(delay))))
}

/// Takes the first `delay` samples off the raw audio into an encoder's
/// `sink` pad and stamps the rest `delay` samples earlier (again after a
/// flush).
fn take_off_encoder_delay(sink: &gst::Pad, delay: u64) {
    // The samples still to take off, and the raw format (read from each
    // caps event, not parsed again for every buffer).
    let state: Mutex<(u64, Option<gst_audio::AudioInfo>)> = Mutex::new((delay, None));
    sink.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let Ok(mut state) = state.lock() else {
                return gst::PadProbeReturn::Ok;
            };
            let (to_take, format) = &mut *state;
            let buffer = match info.data.as_mut() {
                Some(gst::PadProbeData::Buffer(buffer)) => buffer,
                Some(gst::PadProbeData::Event(event)) => {
                    match event.view() {
                        gst::EventView::FlushStop(_) => *to_take = delay,
                        gst::EventView::Caps(caps) => {
                            *format = gst_audio::AudioInfo::from_caps(caps.caps()).ok();
                        }
                        _ => {}
                    }
                    return gst::PadProbeReturn::Ok;
                }
                _ => return gst::PadProbeReturn::Ok,
            };
            let (Some(format), Some(pts)) = (format.as_ref(), buffer.pts()) else {
                return gst::PadProbeReturn::Ok;
            };
            let frame_bytes = format.bpf().max(1) as usize;
            let samples = (buffer.size() / frame_bytes) as u64;
            let rate = u64::from(format.rate());
            let Some((cut, pts)) = ahead_of_delay(pts, samples, rate, delay, to_take) else {
                return gst::PadProbeReturn::Drop;
            };
            if cut > 0 {
                let from = cut as usize * frame_bytes;
                if let Ok(rest) = buffer.copy_region(gst::BufferCopyFlags::all(), from..) {
                    *buffer = rest;
                }
            }
            let b = buffer.make_mut();
            b.set_pts(pts);
            b.set_duration(gst::ClockTime::from_nseconds(
                (samples - cut) * 1_000_000_000 / rate.max(1),
            ));
            gst::PadProbeReturn::Ok
        },
    );
}

/// Drops the encoder's first frame and moves every later one back by its
/// length.
pub(crate) fn drop_encoder_priming(src: &gst::Pad) {
    let shift: Mutex<Option<gst::ClockTime>> = Mutex::new(None);
    src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = info.data.as_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(mut first) = shift.lock() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(shift) = *first else {
            *first = Some(buffer.duration().unwrap_or(gst::ClockTime::ZERO));
            return gst::PadProbeReturn::Drop;
        };
        let b = buffer.make_mut();
        if let Some(pts) = b.pts() {
            b.set_pts(pts.saturating_sub(shift));
        }
        if let Some(dts) = b.dts() {
            b.set_dts(dts.saturating_sub(shift));
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoders_delay_is_taken_off_its_first_samples_and_its_stamps() {
        gst::init().expect("GStreamer initialises");
        let ms = gst::ClockTime::from_mseconds;
        let mut to_take = 256;
        // 1024 samples at 48 kHz from 1 s: 256 cut, the rest stamped at 1 s,
        // where the encoder's 256 samples of priming will then play.
        assert_eq!(
            ahead_of_delay(ms(1000), 1024, 48_000, 256, &mut to_take),
            Some((256, ms(1000)))
        );
        assert_eq!(to_take, 0);
        assert_eq!(
            ahead_of_delay(
                ms(1000) + gst::ClockTime::from_nseconds(21_333_333),
                1024,
                48_000,
                256,
                &mut to_take
            ),
            Some((0, ms(1016)))
        );
        // A buffer smaller than the delay is dropped whole.
        let mut to_take = 481;
        assert_eq!(ahead_of_delay(ms(0), 240, 48_000, 481, &mut to_take), None);
        assert_eq!(to_take, 241);
        assert_eq!(ahead_of_delay(ms(5), 240, 48_000, 481, &mut to_take), None);
        assert_eq!(
            ahead_of_delay(ms(10), 240, 48_000, 481, &mut to_take),
            Some((1, ms(0)))
        );
    }
}
