// SPDX-License-Identifier: MPL-2.0

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

use std::path::Path;
use std::time::Instant;

#[path = "support/bench.rs"]
mod bench;

/// CPU seconds of one run of the clip through stsdub with `props`.
fn stsdub_cpu(clip: &Path, props: &str) -> Result<f64, String> {
    bench::pipeline_cpu(&format!(
        "filesrc location={} ! qtdemux ! aacparse ! stsdub sts-url=http://127.0.0.1:9 {props} ! fakesink",
        clip.display()
    ))
}

fn main() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gststsdub::plugin_register_static().map_err(|e| e.to_string())?;
    let mut args = std::env::args().skip(1);
    let clip = bench::speech_clip(args.next())?;
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let (config, buffers) = bench::frames(&clip)?;
    let stream_seconds = buffers.len() as f64 * config.frame_duration_ns() as f64 / 1e9;

    // The level meter alone, on this thread.
    let mut meter = gststsdub::audio::level::LevelMeter::new(&config)?;
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
