// SPDX-License-Identifier: MPL-2.0

//! Where the level meter hears a tone that starts at 1.000 s and stops at
//! 1.500 s of a clip (AAC in MP4, its priming cut by the edit list): one
//! line per frame around both edges, at the frame's presentation time.
//! The meter's levels must be heard where their frame is presented, or
//! every cut at a pause lands off the pause by as much.
//!
//! ```text
//! cargo run --release --example level_align
//! ```

use std::process::Command;

#[path = "support/bench.rs"]
mod bench;

fn main() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("level-align-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let clip = dir.join("tone.m4a");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("aevalsrc='0.5*sin(2*PI*1000*t)*gte(t,1.0)*lt(t,1.5)':s=48000:d=3")
        .args(["-ac", "2", "-c:a", "aac", "-b:a", "128k"])
        .arg(&clip)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("ffmpeg could not make the tone".into());
    }
    let (config, buffers) = bench::frames(&clip)?;
    let mut meter = gststsdub::audio::level::LevelMeter::new(&config)?;
    // The edit list presents the first frame (the encoder's priming) before 0.
    let priming_ms = 1024.0 / f64::from(config.sample_rate) * 1000.0;
    for buffer in &buffers {
        let levels = meter.measure(buffer).map_err(|e| format!("{e:?}"))?;
        let at_ms = buffer.pts().map_or(0.0, |p| p.nseconds() as f64 / 1e6) - priming_ms;
        if (960.0..1040.0).contains(&at_ms) || (1460.0..1540.0).contains(&at_ms) {
            println!("frame presented at {at_ms:7.1} ms: {levels:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
