// SPDX-License-Identifier: MPL-2.0

//! Benchmark: what PLAYING → NULL → PLAYING leaves behind. One live stream
//! (a tone, 500 ms segments) against the echo STS beside this program, set
//! PLAYING until a fragment is in flight, then NULL, many times; the
//! process's RSS, threads and open file descriptors after each tenth cycle.
//!
//! ```text
//! cargo build --release --examples
//! cargo run --release --example bench_cycles [-- CYCLES]
//! ```

use std::time::{Duration, Instant};

use gst::prelude::*;

#[path = "support/bench.rs"]
mod support;

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
    let (mut echo, url) = support::start_echo(&["--port", "0", "--delay-ms", "300"])?;
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
            let (rss, threads) = support::rss_and_threads();
            println!("| {cycle} | {rss:.1} | {threads} | {} |", open_fds());
        }
    }
    let _ = echo.kill();
    let _ = echo.wait();
    Ok(())
}
