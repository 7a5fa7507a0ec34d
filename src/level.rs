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

use std::sync::{Arc, Mutex};

use gst::prelude::*;

use crate::m4a::AacConfig;

/// The level given to digital silence (and the floor of every level).
pub const SILENCE_DB: f32 = -100.0;

/// Levels measured per frame: a frame of 1024 samples (21 ms at 48 kHz) is
/// too coarse to find a 40 ms gap between two words, a quarter of it is not.
pub const BLOCKS_PER_FRAME: usize = 4;

/// The RMS levels of one frame's [`BLOCKS_PER_FRAME`] consecutive blocks, in dBFS.
pub type FrameLevels = [f32; BLOCKS_PER_FRAME];

/// Decodes AAC frames one by one and reports each one's RMS level in dBFS.
pub struct LevelMeter {
    decoder: gst::Element,
    feed: gst::Pad,
    /// Kept: a pad nobody holds is unlinked and freed.
    output: gst::Pad,
    /// Filled by the return pad's chain function during `feed.push()`.
    measured: Arc<Mutex<Option<FrameLevels>>>,
    /// Frames were skipped since the last one measured.
    skipped: bool,
}

impl LevelMeter {
    /// A meter for `config`'s stream; an error names what is missing.
    pub fn new(config: &AacConfig) -> Result<Self, String> {
        let decoder = aac_decoder()?;
        let feed = gst::Pad::builder(gst::PadDirection::Src)
            .name("level-feed")
            .build();
        let measured = Arc::new(Mutex::new(None));
        let output = return_pad(measured.clone());
        let decoder_sink = decoder
            .static_pad("sink")
            .ok_or("the AAC decoder has no sink pad")?;
        let decoder_src = decoder
            .static_pad("src")
            .ok_or("the AAC decoder has no src pad")?;
        feed.link(&decoder_sink)
            .map_err(|e| format!("cannot link to the AAC decoder: {e:?}"))?;
        decoder_src
            .link(&output)
            .map_err(|e| format!("cannot link the AAC decoder's output: {e:?}"))?;
        output
            .set_active(true)
            .map_err(|e| format!("level pad: {e}"))?;
        decoder
            .set_state(gst::State::Playing)
            .map_err(|e| format!("the AAC decoder does not start: {e}"))?;
        feed.set_active(true)
            .map_err(|e| format!("level pad: {e}"))?;
        let meter = Self {
            decoder,
            feed,
            output,
            measured,
            skipped: false,
        };
        meter.start_stream(config)?;
        Ok(meter)
    }

    fn start_stream(&self, config: &AacConfig) -> Result<(), String> {
        let caps = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .field("framed", true)
            .field("rate", config.sample_rate as i32)
            .field("channels", i32::from(config.channels))
            .field(
                "codec_data",
                gst::Buffer::from_slice(config.audio_specific_config.clone()),
            )
            .build();
        let segment = gst::FormattedSegment::<gst::ClockTime>::new();
        for event in [
            gst::event::StreamStart::new("stsdub-level"),
            gst::event::Caps::new(&caps),
            gst::event::Segment::new(&segment),
        ] {
            if !self.feed.push_event(event) {
                return Err("the AAC decoder refuses the stream's caps".into());
            }
        }
        Ok(())
    }

    /// The levels of `frame`, or None when the decoder gave nothing back for
    /// it (a corrupt frame) or is settling after skipped frames; an error
    /// when the decoder failed.
    pub fn measure(&mut self, frame: &gst::Buffer) -> Result<Option<FrameLevels>, gst::FlowError> {
        *lock(&self.measured) = None;
        let settling = std::mem::take(&mut self.skipped);
        let mut frame = frame.clone();
        if settling {
            // Its overlap with the last frame decoded is stale: decoded for
            // the decoder's sake, not measured.
            frame.make_mut().set_flags(gst::BufferFlags::DISCONT);
        }
        self.feed.push(frame)?;
        let levels = lock(&self.measured).take();
        Ok(levels.filter(|_| !settling))
    }

    /// Notes a frame not decoded: the next one measured is only decoded.
    pub fn skip(&mut self) {
        self.skipped = true;
    }
}

impl Drop for LevelMeter {
    fn drop(&mut self) {
        let _ = self.feed.set_active(false);
        let _ = self.decoder.set_state(gst::State::Null);
        let _ = self.output.set_active(false);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// avdec_aac if it is there (it decodes every AAC profile), else the
/// highest-ranked decoder of raw AAC.
fn aac_decoder() -> Result<gst::Element, String> {
    if let Ok(decoder) = gst::ElementFactory::make("avdec_aac").build() {
        return Ok(decoder);
    }
    let caps = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .build();
    let factories = gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::DECODER | gst::ElementFactoryType::MEDIA_AUDIO,
        gst::Rank::MARGINAL,
    );
    factories
        .iter()
        .find(|f| f.can_sink_any_caps(&caps))
        .and_then(|f| f.create().build().ok())
        .ok_or_else(|| "no AAC decoder is installed (gst-libav's avdec_aac)".to_string())
}

/// Our end of the decoder's output: takes float samples, interleaved or
/// planar (avdec_aac's), and stores the levels of the frame's blocks.
fn return_pad(measured: Arc<Mutex<Option<FrameLevels>>>) -> gst::Pad {
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("layout", gst::List::new(["interleaved", "non-interleaved"]))
        .build();
    let template = gst::PadTemplate::new(
        "sink",
        gst::PadDirection::Sink,
        gst::PadPresence::Always,
        &caps,
    )
    .expect("a valid template");
    gst::Pad::builder_from_template(&template)
        .name("level-return")
        .chain_function(move |pad, _parent, buffer| {
            let planes = pad.current_caps().map_or(1, |caps| planes(&caps));
            if let Ok(map) = buffer.map_readable() {
                *lock(&measured) = Some(block_levels(map.as_slice(), planes));
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .query_function(move |pad, _parent, query| match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let ours = pad.pad_template_caps();
                let answer = match q.filter() {
                    Some(filter) => {
                        filter.intersect_with_mode(&ours, gst::CapsIntersectMode::First)
                    }
                    None => ours,
                };
                q.set_result(&answer);
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let accepted = q.caps().can_intersect(&pad.pad_template_caps());
                q.set_result(accepted);
                true
            }
            _ => false,
        })
        .event_function(|_pad, _parent, _event| true)
        .build()
}

/// How many planes raw audio caps lay their samples out in: one when
/// interleaved, one per channel when not.
fn planes(caps: &gst::CapsRef) -> usize {
    let Some(s) = caps.structure(0) else { return 1 };
    if s.get::<&str>("layout") == Ok("non-interleaved") {
        s.get::<i32>("channels").map_or(1, |c| c.max(1) as usize)
    } else {
        1
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
