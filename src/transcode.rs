//! AAC decode, encode and transcode with short-lived GStreamer pipelines
//! (avdec_aac / avenc_aac from gst-libav). Used off the streaming threads:
//! for dubbed audio whose rate, channels or profile differ from the stream,
//! and by the echo STS.

use gst::prelude::*;

use crate::m4a::{AAC_FRAME_SAMPLES, AacConfig};

/// Decodes AAC frames to interleaved S16 at `rate` Hz and `channels` channels.
pub fn decode(
    config: &AacConfig,
    frames: &[&[u8]],
    rate: u32,
    channels: u8,
) -> Result<Vec<i16>, String> {
    let caps = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .field("framed", true)
        .field(
            "codec_data",
            gst::Buffer::from_slice(config.audio_specific_config.clone()),
        )
        .build();
    let frame = frame_duration(config.sample_rate);
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
         audio/x-raw,format=S16LE,layout=interleaved,rate={rate},channels={channels} ! appsink name=sink sync=false"
    );
    let mut pcm = Vec::new();
    for buffer in run(&description, &caps, inputs)? {
        let map = buffer.map_readable().map_err(|e| e.to_string())?;
        pcm.extend(
            map.chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
    }
    Ok(pcm)
}

/// Encodes interleaved S16 PCM to AAC-LC frames of `config`'s rate and
/// channels, without the encoder's priming frame: frame i starts at sample
/// i * 1024 of the input.
pub fn encode(config: &AacConfig, pcm: &[i16]) -> Result<Vec<Vec<u8>>, String> {
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
    let mut frames: Vec<Vec<u8>> = run(description, &caps, vec![buffer])?
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
/// dropping `priming_samples` (at the source rate) of encoder delay.
pub fn transcode(
    frames: &[&[u8]],
    from: &AacConfig,
    to: &AacConfig,
    priming_samples: u32,
) -> Result<Vec<Vec<u8>>, String> {
    let pcm = decode(from, frames, to.sample_rate, to.channels)?;
    let skip =
        u64::from(priming_samples) * u64::from(to.sample_rate) / u64::from(from.sample_rate.max(1));
    let skip = (skip as usize * usize::from(to.channels)).min(pcm.len());
    encode(to, &pcm[skip..])
}

fn frame_duration(rate: u32) -> gst::ClockTime {
    gst::ClockTime::SECOND
        .mul_div_floor(u64::from(AAC_FRAME_SAMPLES), u64::from(rate.max(1)))
        .unwrap_or(gst::ClockTime::ZERO)
}

/// Runs `appsrc name=src ! … ! appsink name=sink` over `inputs` to EOS.
fn run(
    description: &str,
    caps: &gst::Caps,
    inputs: Vec<gst::Buffer>,
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
        let mut out = Vec::new();
        while let Ok(sample) = sink.pull_sample() {
            out.extend(sample.buffer_owned());
        }
        Ok(out)
    })();
    let error = pipeline
        .bus()
        .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]));
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(message) = error
        && let gst::MessageView::Error(e) = message.view()
    {
        return Err(format!(
            "{}: {}",
            e.src().map(|s| s.name().to_string()).unwrap_or_default(),
            e.error()
        ));
    }
    result
}
