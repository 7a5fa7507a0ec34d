//! Benchmark: what PLAYING → NULL → PLAYING leaves behind. One live stream
//! (a tone, 500 ms segments) against the echo STS beside this program, set
//! PLAYING until a fragment is in flight, then NULL, many times; the
//! process's RSS, threads and open file descriptors after each tenth cycle.
//!
//! ```text
//! cargo build --release --examples
//! cargo run --release --example bench_cycles [-- CYCLES]
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// VmRSS in KiB and Threads, from /proc/self/status.
fn status() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn main() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gststsdub::plugin_register_static().map_err(|e| e.to_string())?;
    let cycles: usize = std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut echo = Command::new(exe.with_file_name("echo_sts"))
        .args(["--port", "0", "--delay-ms", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("echo_sts ({e}): cargo build --release --examples"))?;
    let mut line = String::new();
    BufReader::new(echo.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    let description = format!(
        "audiotestsrc is-live=true samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
         avenc_aac ! aacparse ! stsdub name=dub sts-url={url} segment-duration=500 timeout=1500 ! fakesink"
    );
    let pipeline = gst::parse::launch(&description).map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("no bus")?;
    println!("| cycle | RSS MiB | threads | open fds |");
    println!("| ---: | ---: | ---: | ---: |");
    for cycle in 1..=cycles {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| e.to_string())?;
        // Until the first segment has left (the next is then in flight).
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else {
                continue;
            };
            if let gst::MessageView::Element(e) = message.view()
                && e.structure().is_some_and(|s| s.name() == "stsdub-segment")
            {
                break;
            }
        }
        pipeline
            .set_state(gst::State::Null)
            .map_err(|e| e.to_string())?;
        while bus.pop().is_some() {}
        if cycle == 1 || cycle % 10 == 0 {
            let (rss, threads) = status();
            println!(
                "| {cycle} | {:.1} | {threads} | {} |",
                rss as f64 / 1024.0,
                open_fds()
            );
        }
    }
    let _ = echo.kill();
    let _ = echo.wait();
    Ok(())
}
