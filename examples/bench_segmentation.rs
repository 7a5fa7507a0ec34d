//! Benchmark: what `segmentation=pauses` costs against `fixed`. The speech
//! clip (make-speech-clip.sh) runs through stsdub as fast as it can
//! (non-live, STS unreachable: every segment falls back at once, so only the
//! element's own work is measured), once per mode, several times each; the
//! process CPU time of each run is read from /proc/self/stat. The level
//! meter alone, decoding every frame (the element decodes only the frames
//! near a possible cut), is timed too.
//!
//! ```text
//! cargo run --release --example bench_segmentation [-- CLIP.mp4 [RUNS]]
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use gst::prelude::*;

/// User + system CPU of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), 1-based 14 and 15.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn run_pipeline(description: &str) -> Result<(), String> {
    let pipeline = gst::parse::launch(description)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let result = loop {
        let Some(message) = bus.timed_pop(gst::ClockTime::from_seconds(120)) else {
            break Err("no EOS within 120 s".to_string());
        };
        match message.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => break Err(e.error().to_string()),
            _ => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// CPU seconds of one run of the clip through stsdub with `props`.
fn stsdub_cpu(clip: &Path, props: &str) -> Result<f64, String> {
    let description = format!(
        "filesrc location={} ! qtdemux ! aacparse ! stsdub sts-url=http://127.0.0.1:9 {props} ! fakesink",
        clip.display()
    );
    let before = cpu_seconds();
    run_pipeline(&description)?;
    Ok(cpu_seconds() - before)
}

/// The clip's AAC frames and config, read once.
fn frames(clip: &Path) -> Result<(gststsdub::m4a::AacConfig, Vec<gst::Buffer>), String> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux ! aacparse ! appsink name=sink sync=false",
        clip.display()
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline".to_string())?;
    let sink = pipeline
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .ok_or("no appsink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let mut config = None;
    let mut buffers = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        if config.is_none() {
            let caps = sample.caps().ok_or("no caps")?;
            let data = caps
                .structure(0)
                .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
                .ok_or("no codec_data")?;
            let map = data.map_readable().map_err(|e| e.to_string())?;
            config = Some(
                gststsdub::m4a::AacConfig::from_audio_specific_config(&map)
                    .map_err(|e| e.to_string())?,
            );
        }
        buffers.extend(sample.buffer_owned());
    }
    let _ = pipeline.set_state(gst::State::Null);
    Ok((config.ok_or("no audio")?, buffers))
}

fn main() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gststsdub::plugin_register_static().map_err(|e| e.to_string())?;
    let mut args = std::env::args().skip(1);
    let clip = match args.next() {
        Some(path) => PathBuf::from(path),
        None => {
            let path = std::env::temp_dir().join("stsdub-bench-speech-clip.mp4");
            if !path.exists() {
                let script =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-speech-clip.sh");
                let status = std::process::Command::new("bash")
                    .arg(script)
                    .arg(&path)
                    .status()
                    .map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err("make-speech-clip.sh failed".into());
                }
            }
            path
        }
    };
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let (config, buffers) = frames(&clip)?;
    let stream_seconds = buffers.len() as f64 * config.frame_duration_ns() as f64 / 1e9;

    // The level meter alone, on this thread.
    let mut meter = gststsdub::level::LevelMeter::new(&config)?;
    let started = Instant::now();
    for _ in 0..runs {
        for buffer in &buffers {
            meter.measure(buffer).map_err(|e| format!("{e:?}"))?;
        }
    }
    let meter_ms = started.elapsed().as_secs_f64() * 1000.0 / (runs as f64 * stream_seconds);

    // Whole pipelines, alternated so that drift affects both alike.
    let (mut fixed, mut pauses) = (0.0, 0.0);
    for _ in 0..runs {
        fixed += stsdub_cpu(&clip, "segmentation=fixed segment-duration=4000")?;
        pauses += stsdub_cpu(&clip, "segmentation=pauses segment-duration=4000")?;
    }
    let total_seconds = runs as f64 * stream_seconds;
    let (fixed_ms, pauses_ms) = (
        fixed * 1000.0 / total_seconds,
        pauses * 1000.0 / total_seconds,
    );
    println!(
        "clip: {:.1} s of AAC, {} runs per mode",
        stream_seconds, runs
    );
    println!("level meter alone, every frame decoded: {meter_ms:.3} ms of CPU per stream-second");
    println!("pipeline, fixed:   {fixed_ms:.3} ms of CPU per stream-second");
    println!("pipeline, pauses:  {pauses_ms:.3} ms of CPU per stream-second");
    println!(
        "pauses / fixed: {:.2}x; pauses costs {:.3} ms more per stream-second",
        pauses_ms / fixed_ms.max(f64::EPSILON),
        pauses_ms - fixed_ms
    );
    Ok(())
}
