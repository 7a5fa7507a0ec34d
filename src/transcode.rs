//! AAC decode, encode and transcode with short-lived GStreamer pipelines
//! (avdec_aac / avenc_aac from gst-libav). Used off the streaming threads:
//! for dubbed audio whose rate, channels or profile differ from the stream,
//! and by the echo STS. Every run is bounded: a decoder that stalls or fails
//! ends it with an error by its deadline, never a wait forever.

use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::m4a::{AAC_FRAME_SAMPLES, AacConfig};

/// Decodes AAC frames to interleaved S16 at `rate` Hz and `channels`
/// channels, within `limit`.
pub fn decode(
    config: &AacConfig,
    frames: &[&[u8]],
    rate: u32,
    channels: u8,
    limit: Duration,
) -> Result<Vec<i16>, String> {
    let bytes = decode_raw(config, frames, rate, channels, "S16LE", limit)?;
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
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
    let bytes = decode_raw(config, frames, rate, channels, "F32LE", limit)?;
    let mut samples = Vec::with_capacity(bytes.len() / 4);
    crate::lone::extend_f32(&mut samples, &bytes);
    Ok(samples)
}

fn decode_raw(
    config: &AacConfig,
    frames: &[&[u8]],
    rate: u32,
    channels: u8,
    format: &str,
    limit: Duration,
) -> Result<Vec<u8>, String> {
    let caps = crate::lone::aac_caps(config);
    let frame = gst::ClockTime::from_nseconds(config.frame_duration_ns());
    let inputs = frames
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let mut buffer = gst::Buffer::from_slice(data.to_vec());
            if let Some(b) = buffer.get_mut() {
                b.set_pts(frame * i as u64);
                b.set_duration(frame);
            }
            buffer
        })
        .collect();
    let description = format!(
        "appsrc name=src ! avdec_aac ! audioconvert ! audioresample ! \
         audio/x-raw,format={format},layout=interleaved,rate={rate},channels={channels} ! appsink name=sink sync=false"
    );
    let mut pcm = Vec::new();
    for buffer in run(&description, &caps, inputs, Instant::now() + limit)? {
        let map = buffer.map_readable().map_err(|e| e.to_string())?;
        pcm.extend_from_slice(map.as_slice());
    }
    Ok(pcm)
}

/// Encodes interleaved S16 PCM to AAC-LC frames of `config`'s rate and
/// channels, without the encoder's priming frame: frame i starts at sample
/// i * 1024 of the input. Within `limit`.
pub fn encode(config: &AacConfig, pcm: &[i16], limit: Duration) -> Result<Vec<Vec<u8>>, String> {
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", config.sample_rate as i32)
        .field("channels", i32::from(config.channels))
        .build();
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut buffer = gst::Buffer::from_slice(bytes);
    if let Some(b) = buffer.get_mut() {
        b.set_pts(gst::ClockTime::ZERO);
    }
    let description = "appsrc name=src ! audioconvert ! avenc_aac ! audio/mpeg,stream-format=raw ! appsink name=sink sync=false";
    let mut frames: Vec<Vec<u8>> = run(description, &caps, vec![buffer], Instant::now() + limit)?
        .iter()
        .filter_map(|b| b.map_readable().ok().map(|m| m.to_vec()))
        .collect();
    // FFmpeg's AAC encoder starts with one frame of priming: whatever it
    // emits beyond the input's frame count is that delay.
    let input_frames =
        (pcm.len() / usize::from(config.channels.max(1))).div_ceil(AAC_FRAME_SAMPLES as usize);
    if frames.len() > input_frames {
        frames.remove(0);
    }
    Ok(frames)
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
    let pcm = decode(from, frames, to.sample_rate, to.channels, limit)?;
    let limit = limit.saturating_sub(started.elapsed());
    let skip =
        u64::from(priming_samples) * u64::from(to.sample_rate) / u64::from(from.sample_rate.max(1));
    let skip = (skip as usize * usize::from(to.channels)).min(pcm.len());
    encode(to, &pcm[skip..], limit)
}

/// Every sample up to EOS. A failing element posts an error and never
/// sends EOS, so the bus is looked at between short waits.
fn pull_all(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    deadline: Instant,
) -> Result<Vec<gst::Buffer>, String> {
    const STEP: gst::ClockTime = gst::ClockTime::from_mseconds(50);
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut out = Vec::new();
    loop {
        if let Some(sample) = sink.try_pull_sample(STEP) {
            out.extend(sample.buffer_owned());
            continue;
        }
        if sink.is_eos() {
            return Ok(out);
        }
        if let Some(error) = bus.pop_filtered(&[gst::MessageType::Error]) {
            return Err(error_text(&error));
        }
        if Instant::now() >= deadline {
            return Err("no end within its time limit (a stalled decoder or encoder)".into());
        }
    }
}

/// Runs `appsrc name=src ! … ! appsink name=sink` over `inputs` to EOS, an
/// error, or `deadline`, whichever comes first.
fn run(
    description: &str,
    caps: &gst::Caps,
    inputs: Vec<gst::Buffer>,
    deadline: Instant,
) -> Result<Vec<gst::Buffer>, String> {
    let pipeline = gst::parse::launch(description)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let src = pipeline
        .by_name("src")
        .and_downcast::<gst_app::AppSrc>()
        .ok_or("no appsrc named src")?;
    let sink = pipeline
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .ok_or("no appsink named sink")?;
    src.set_caps(Some(caps));
    src.set_format(gst::Format::Time);
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| e.to_string())?;
        for buffer in inputs {
            src.push_buffer(buffer).map_err(|e| e.to_string())?;
        }
        src.end_of_stream().map_err(|e| e.to_string())?;
        pull_all(&pipeline, &sink, deadline)
    })();
    let error = pipeline
        .bus()
        .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]));
    let _ = pipeline.set_state(gst::State::Null);
    match error {
        Some(error) => Err(error_text(&error)),
        None => result,
    }
}

/// "element: message" of an error message.
fn error_text(message: &gst::Message) -> String {
    match message.view() {
        gst::MessageView::Error(e) => format!(
            "{}: {}",
            e.src().map(|s| s.name().to_string()).unwrap_or_default(),
            e.error()
        ),
        _ => "an error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        gst::init().expect("GStreamer initialises");
    }

    #[test]
    fn an_element_that_never_answers_ends_the_run_by_its_deadline() {
        init();
        // clocksync holds a buffer stamped 1000 s ahead: a stalled decoder.
        let caps = gst::Caps::builder("application/x-test").build();
        let mut buffer = gst::Buffer::from_slice(vec![0u8; 8]);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_seconds(1000));
        }
        let result = run(
            "appsrc name=src ! clocksync ! appsink name=sink sync=false",
            &caps,
            vec![buffer],
            Instant::now() + Duration::from_millis(300),
        );
        let error = result.expect_err("a stalled run is an error");
        assert!(error.contains("time limit"), "{error}");
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
