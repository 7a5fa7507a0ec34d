// SPDX-License-Identifier: MPL-2.0

//! What the benchmarks and the soak share: process CPU time, RSS and
//! threads, the echo STS as a child process, running a pipeline to its
//! end, the speech clip, and its AAC frames.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use gst::prelude::*;

/// User + system CPU of this process so far, in seconds.
pub fn cpu_seconds() -> f64 {
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

/// RSS (MiB) and threads of this process, from /proc/self/status.
pub fn rss_and_threads() -> (f64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:") as f64 / 1024.0, field("Threads:"))
}

/// The echo STS beside this program, started with `args` (`--port` among
/// them), and the URL its first line gives.
pub fn start_echo(args: &[&str]) -> Result<(Child, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe.with_file_name("echo_sts"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("echo_sts ({e}): cargo build --release --examples"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    Ok((child, url))
}

/// Runs a gst-launch description to EOS; an error for anything else.
pub fn run_pipeline(description: &str) -> Result<(), String> {
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

/// CPU seconds this process spends on running `description` to its end.
pub fn pipeline_cpu(description: &str) -> Result<f64, String> {
    let before = cpu_seconds();
    run_pipeline(description)?;
    Ok(cpu_seconds() - before)
}

/// `path`, or the speech clip (make-speech-clip.sh), made once in the temp dir.
pub fn speech_clip(path: Option<String>) -> Result<PathBuf, String> {
    if let Some(path) = path {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::temp_dir().join("stsdub-bench-speech-clip.mp4");
    if !path.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-speech-clip.sh");
        let status = std::process::Command::new("bash")
            .arg(script)
            .arg(&path)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("make-speech-clip.sh failed".into());
        }
    }
    Ok(path)
}

/// The clip's AAC frames and config, read once.
pub fn frames(
    clip: &Path,
) -> Result<(gststsdub::container::m4a::AacConfig, Vec<gst::Buffer>), String> {
    let (caps, buffers) = pull_all(&format!(
        "filesrc location={} ! qtdemux ! aacparse ! appsink name=sink sync=false",
        clip.display()
    ))?;
    let data = caps
        .as_ref()
        .and_then(|c| c.structure(0))
        .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
        .ok_or("no audio with codec_data")?;
    let map = data.map_readable().map_err(|e| e.to_string())?;
    let config = gststsdub::container::m4a::AacConfig::from_audio_specific_config(&map)
        .map_err(|e| e.to_string())?;
    Ok((config, buffers))
}

/// Every buffer that reaches the appsink named `sink` of `description`,
/// with the caps of the first.
pub fn pull_all(description: &str) -> Result<(Option<gst::Caps>, Vec<gst::Buffer>), String> {
    let pipeline = gst::parse::launch(description)
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
    let mut caps = None;
    let mut buffers = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        if caps.is_none() {
            caps = sample.caps_owned();
        }
        buffers.extend(sample.buffer_owned());
    }
    let _ = pipeline.set_state(gst::State::Null);
    Ok((caps, buffers))
}

/// A loopback port nothing listens on now (the OS picks it).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}
