// SPDX-License-Identifier: MPL-2.0

//! Benchmark: what the re-encoded output costs, and why its parts.
//!
//! 1. CPU per stream-second of the speech clip through stsdub in codec
//!    copy, `fit=stretch`, voice-over (`original-volume=0.2`, with either
//!    `encoder-speed`) and `loudness` (match, target, and with voice-over),
//!    against
//!    the same pipeline with `identity` in stsdub's place, all in one run
//!    (alternated, several times each). The echo STS (release build, its
//!    own process, not counted) answers every segment with a tone 1.2 times
//!    the segment's length, its last 300 ms silent, so stretch has work.
//! 2. The AAC encoders: avenc_aac and voaacenc on the clip's decoded audio,
//!    CPU per stream-second and the signal-to-noise ratio of a round trip at
//!    128 kb/s.
//! 3. The time-stretchers: scaletempo and SoundTouch's `pitch`, speeding the
//!    clip up by 1.2: CPU per stream-second, and the pitch of a 440 Hz tone
//!    afterwards.
//!
//! ```text
//! cargo build --release --examples
//! cargo run --release --example bench_voiceover [-- CLIP.mp4 [RUNS]]
//! ```

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use gst::prelude::*;
use gststsdub::audio::driven_element::DrivenElement;

#[path = "support/bench.rs"]
mod bench;

const RATE: u32 = 48_000;

/// The release echo STS beside this program, on a free port.
fn echo_sts() -> Result<(Child, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let binary = exe.with_file_name("echo_sts");
    let mut child = Command::new(&binary)
        .args(["--port", "0", "--transform", "tone"])
        .args(["--duration-factor", "1.2", "--tail-silence-ms", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "{} ({e}): cargo build --release --examples",
                binary.display()
            )
        })?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("echo_sts said {line:?}"))?
        .to_owned();
    Ok((child, url))
}

/// CPU ms per stream-second of the clip through `element`.
fn pipeline_ms(clip: &Path, element: &str, stream_seconds: f64) -> Result<f64, String> {
    let cpu = bench::pipeline_cpu(&format!(
        "filesrc location={} ! qtdemux ! aacparse ! {element} ! fakesink",
        clip.display()
    ))?;
    Ok(cpu * 1000.0 / stream_seconds)
}

fn f32_caps(channels: usize, format: &str) -> gst::Caps {
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", format)
        .field("layout", "interleaved")
        .field("rate", RATE as i32)
        .field("channels", channels as i32);
    match channels {
        2 => caps.field("channel-mask", gst::Bitmask::new(0x3)).build(),
        _ => caps.build(),
    }
}

fn pcm_buffer(bytes: Vec<u8>) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(bytes);
    if let Some(b) = buffer.get_mut() {
        b.set_pts(gst::ClockTime::ZERO);
    }
    buffer
}

fn segment(rate: f64) -> gst::Segment {
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_rate(rate);
    segment.upcast()
}

/// Runs interleaved f32 `pcm` through `element` as a lone element, in
/// `format` (F32LE or S16LE) in a segment of `rate`; CPU seconds and output.
fn through(
    element: gst::Element,
    accepts: &gst::Caps,
    pcm: &[f32],
    channels: usize,
    format: &str,
    rate: f64,
) -> Result<(f64, Vec<gst::Buffer>), String> {
    let lone = DrivenElement::new(element, accepts, "benchmarked element")?;
    lone.start(&f32_caps(channels, format), &segment(rate), "bench")?;
    let bytes: Vec<u8> = if format == "S16LE" {
        pcm.iter()
            .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
            .collect()
    } else {
        pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
    };
    let before = bench::cpu_seconds();
    let mut out = lone.push(pcm_buffer(bytes)).map_err(|e| format!("{e:?}"))?;
    out.extend(lone.finish());
    Ok((bench::cpu_seconds() - before, out))
}

fn aac_caps() -> gst::Caps {
    gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .build()
}

/// Signal-to-noise ratio of `decoded` against `reference`, at the offset
/// (an encoder's delay, up to 4096 samples) where they match best, in dB.
fn snr_db(reference: &[f32], decoded: &[f32], channels: usize) -> f64 {
    let window = &reference[RATE as usize * channels..2 * RATE as usize * channels];
    let best = (0..4096)
        .max_by(|a, b| {
            let score = |offset: usize| -> f64 {
                let start = RATE as usize * channels + offset * channels;
                decoded
                    .get(start..start + window.len())
                    .map_or(f64::MIN, |d| {
                        window.iter().zip(d).map(|(x, y)| f64::from(x * y)).sum()
                    })
            };
            score(*a).total_cmp(&score(*b))
        })
        .unwrap_or(0);
    let shifted = decoded.get(best * channels..).unwrap_or(&[]);
    let (signal, noise) = reference
        .iter()
        .zip(shifted)
        .fold((0.0f64, 0.0f64), |(s, n), (x, y)| {
            (s + f64::from(x * x), n + f64::from((x - y) * (x - y)))
        });
    10.0 * (signal / noise.max(f64::MIN_POSITIVE)).log10()
}

/// An AAC encoder at 128 kb/s with `options`: CPU ms per stream-second and SNR.
fn encoder_figures(
    name: &str,
    options: &[(&str, &str)],
    format: &str,
    pcm: &[f32],
    channels: usize,
) -> Result<(f64, f64), String> {
    let encoder = gst::ElementFactory::make(name)
        .property("bitrate", 128_000i32)
        .build()
        .map_err(|_| format!("{name} is not installed"))?;
    for (option, value) in options {
        encoder.set_property_from_str(option, value);
    }
    let (cpu, frames) = through(encoder, &aac_caps(), pcm, channels, format, 1.0)?;
    let config = gststsdub::container::m4a::AacConfig::aac_lc(RATE, channels as u8)
        .map_err(|e| e.to_string())?;
    let maps: Vec<_> = frames
        .iter()
        .filter_map(|f| f.map_readable().ok())
        .collect();
    let slices: Vec<&[u8]> = maps.iter().map(|m| m.as_slice()).collect();
    let decoded = gststsdub::audio::transcode::decode_float(
        &config,
        &slices,
        RATE,
        channels as u8,
        std::time::Duration::from_secs(60),
    )?;
    let seconds = pcm.len() as f64 / channels as f64 / f64::from(RATE);
    Ok((cpu * 1000.0 / seconds, snr_db(pcm, &decoded, channels)))
}

fn floats(buffers: &[gst::Buffer]) -> Vec<f32> {
    buffers
        .iter()
        .filter_map(|b| b.map_readable().ok())
        .flat_map(|m| {
            m.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect::<Vec<f32>>()
        })
        .collect()
}

/// scaletempo (speed-up from the segment's rate) or pitch (tempo=1.2):
/// CPU ms per stream-second on `pcm`, and a 440 Hz tone's pitch after.
fn stretcher_figures(name: &str, pcm: &[f32], channels: usize) -> Result<(f64, f64), String> {
    let make = || -> Result<(gst::Element, f64), String> {
        let element = gst::ElementFactory::make(name)
            .build()
            .map_err(|_| format!("{name} is not installed"))?;
        if name == "pitch" {
            element.set_property("tempo", 1.2f32);
            Ok((element, 1.0))
        } else {
            Ok((element, 1.2))
        }
    };
    let (element, rate) = make()?;
    let (cpu, _) = through(
        element,
        &f32_caps(channels, "F32LE"),
        pcm,
        channels,
        "F32LE",
        rate,
    )?;
    let tone: Vec<f32> = (0..2 * RATE as usize)
        .map(|i| 0.3 * (i as f32 * 440.0 * std::f32::consts::TAU / RATE as f32).sin())
        .collect();
    let (element, rate) = make()?;
    let (_, out) = through(element, &f32_caps(1, "F32LE"), &tone, 1, "F32LE", rate)?;
    let out = floats(&out);
    let middle = &out[out.len() / 4..out.len() * 3 / 4];
    let crossings = middle
        .windows(2)
        .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
        .count();
    let hz = crossings as f64 * f64::from(RATE) / middle.len() as f64;
    let seconds = pcm.len() as f64 / channels as f64 / f64::from(RATE);
    Ok((cpu * 1000.0 / seconds, hz))
}

fn main() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gststsdub::plugin_register_static().map_err(|e| e.to_string())?;
    let mut args = std::env::args().skip(1);
    let clip = bench::speech_clip(args.next())?;
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let (config, buffers) = bench::frames(&clip)?;
    let stream_seconds = buffers.len() as f64 * config.frame_duration_ns() as f64 / 1e9;
    let (mut echo, url) = echo_sts()?;

    let stsdub = |props: &str| format!("stsdub sts-url={url} segment-duration=2500 {props}");
    let modes = [
        ("passthrough (identity)", "identity".to_string()),
        ("stsdub, codec copy", stsdub("")),
        ("stsdub, fit=stretch", stsdub("fit=stretch")),
        ("stsdub, voice-over 0.2", stsdub("original-volume=0.2")),
        (
            "stsdub, voice-over 0.2, encoder-speed=fast",
            stsdub("original-volume=0.2 encoder-speed=fast"),
        ),
        (
            "stsdub, voice-over + stretch",
            stsdub("original-volume=0.2 fit=stretch"),
        ),
        ("stsdub, loudness=match", stsdub("loudness=match")),
        ("stsdub, loudness=target", stsdub("loudness=target")),
        (
            "stsdub, voice-over 0.2 + loudness=target",
            stsdub("original-volume=0.2 loudness=target"),
        ),
    ];
    let mut totals = vec![0.0; modes.len()];
    for _ in 0..runs {
        for (total, (_, element)) in totals.iter_mut().zip(&modes) {
            *total += pipeline_ms(&clip, element, stream_seconds)?;
        }
    }
    let _ = echo.kill();
    let _ = echo.wait();
    println!(
        "clip: {stream_seconds:.1} s of AAC-LC {} Hz, {} ch, {runs} runs per mode",
        config.sample_rate, config.channels
    );
    println!(
        "| pipeline | ms CPU per stream-second | vs passthrough | vs codec copy | vs voice-over 0.2 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mean = |i: usize| totals[i] / runs as f64;
    let ratio = |ms: f64, base: f64| ms / base.max(f64::EPSILON);
    for (i, (name, _)) in modes.iter().enumerate() {
        let ms = mean(i);
        println!(
            "| {name} | {ms:.2} | {:.1}x | {:.2}x | {:.2}x |",
            ratio(ms, mean(0)),
            ratio(ms, mean(1)),
            ratio(ms, mean(3))
        );
    }

    // The clip decoded, for the encoders and stretchers.
    let maps: Vec<_> = buffers
        .iter()
        .filter_map(|b| b.map_readable().ok())
        .collect();
    let slices: Vec<&[u8]> = maps.iter().map(|m| m.as_slice()).collect();
    let channels = usize::from(config.channels);
    let pcm = gststsdub::audio::transcode::decode_float(
        &config,
        &slices,
        RATE,
        config.channels,
        std::time::Duration::from_secs(60),
    )?;
    println!();
    println!("| AAC encoder, 128 kb/s | ms CPU per stream-second | SNR of a round trip |");
    println!("| --- | ---: | ---: |");
    // (label, element, properties, input sample format)
    type EncoderCase<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let encoders: [EncoderCase; 3] = [
        (
            "avenc_aac, aac-coder=twoloop (its default)",
            "avenc_aac",
            &[],
            "F32LE",
        ),
        (
            "avenc_aac, aac-coder=fast",
            "avenc_aac",
            &[("aac-coder", "fast")],
            "F32LE",
        ),
        ("voaacenc", "voaacenc", &[], "S16LE"),
    ];
    for (label, name, options, format) in encoders {
        match encoder_figures(name, options, format, &pcm, channels) {
            Ok((ms, snr)) => println!("| {label} | {ms:.2} | {snr:.1} dB |"),
            Err(e) => println!("| {label} | {e} | |"),
        }
    }
    println!();
    println!("| stretcher, x1.2 | ms CPU per stream-second | 440 Hz tone after |");
    println!("| --- | ---: | ---: |");
    for name in ["scaletempo", "pitch"] {
        match stretcher_figures(name, &pcm, channels) {
            Ok((ms, hz)) => println!("| {name} | {ms:.2} | {hz:.1} Hz |"),
            Err(e) => println!("| {name} | {e} | |"),
        }
    }
    Ok(())
}
