// SPDX-License-Identifier: MPL-2.0

//! Soak: the worker's data path for a long time with faults injected at
//! random, in one process, and what that leaves behind.
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/soak --input FILE.mp4 [--seconds 3600] [--seed N] [--fault I]   # non-live, fast
//! target/release/examples/soak --live [--seconds 900] [--seed N]              # live, real time
//! ```
//!
//! Non-live, the file goes through a new worker pipeline (file → stsdub →
//! FLV) again and again, as fast as it can, each pass against an echo STS
//! started with a fault drawn at random (or killed half-way, or no STS at
//! all). Live, one pipeline (a live AAC tone, 1 s segments) runs the whole
//! time while the echo is killed and restarted, stopped and continued, at
//! random. Audio buffers are counted into and out of stsdub and their
//! timestamps checked for gaps. At the end it prints RSS and threads at the
//! start and the end, segments, fallbacks by reason, frames lost, and gaps;
//! it exits 1 if a frame was lost or a gap seen.

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

#[path = "support/bench.rs"]
mod support;

/// The faults a pass may meet, as echo_sts arguments; `None` is no STS.
const FAULTS: &[Option<&[&str]>] = &[
    Some(&[]),
    Some(&["--chaos"]),
    Some(&["--error", "MODEL_ERROR", "--fail-first", "4"]),
    Some(&["--delay-ms", "2500"]),
    Some(&["--pause-at", "2", "--pause-ms", "3000"]),
    Some(&["--unknown-answers", "20"]),
    Some(&["--pad-reply-kib", "4096"]),
    Some(&["--malformed", "missing-status"]),
    Some(&["--malformed", "other-codec"]),
    Some(&["--malformed", "reorder"]),
    Some(&["--sample-rate", "16000", "--channels", "1"]),
    Some(&["--duration-factor", "3"]),
    None,
];
/// Passes on which the echo is killed after the third segment.
const KILL_EVERY: u64 = 5;
/// Passes before the starting RSS and threads are read.
const WARM_UP_PASSES: u64 = 20;

/// A small xorshift: reproducible from `--seed`, no dependency for it.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

struct Echo {
    child: Child,
    url: String,
}

impl Echo {
    fn start(args: &[&str], port: u16) -> Result<Self, String> {
        let port = port.to_string();
        let (child, url) = support::start_echo(&[&["--port", port.as_str()], args].concat())?;
        Ok(Self { child, url })
    }

    fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Audio buffers into and out of stsdub, and gaps between those out.
#[derive(Default)]
struct Counts {
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    gaps: AtomicU64,
    next_pts: AtomicU64,
}

fn count_audio(pipeline: &gst::Pipeline, counts: &Arc<Counts>) -> Result<(), String> {
    let dub = pipeline.by_name("dub").ok_or("no element named dub")?;
    let pad = |name| dub.static_pad(name).ok_or(format!("no {name} pad"));
    let into = counts.clone();
    pad("audio_sink")?.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        into.frames_in.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    let out = counts.clone();
    out.next_pts.store(u64::MAX, Ordering::Relaxed);
    pad("audio_src")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            out.frames_out.fetch_add(1, Ordering::Relaxed);
            let (pts, duration) = (
                buffer.pts().map_or(0, |t| t.nseconds()),
                buffer.duration().map_or(0, |t| t.nseconds()),
            );
            let expected = out.next_pts.swap(pts + duration, Ordering::Relaxed);
            if expected != u64::MAX && pts.abs_diff(expected) > 1_000_000 {
                out.gaps.fetch_add(1, Ordering::Relaxed);
            }
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

#[derive(Default)]
struct Tally {
    passes: u64,
    segments: u64,
    reasons: BTreeMap<String, u64>,
    frames_in: u64,
    frames_out: u64,
    gaps: u64,
    errors: u64,
}

impl Tally {
    fn segment(&mut self, structure: &gst::StructureRef) {
        self.segments += 1;
        let reason = structure.get::<String>("reason").unwrap_or_default();
        let reason = if reason.is_empty() {
            "dubbed".to_owned()
        } else {
            reason
        };
        *self.reasons.entry(reason).or_default() += 1;
    }

    fn add(&mut self, counts: &Counts) {
        self.frames_in += counts.frames_in.load(Ordering::Relaxed);
        self.frames_out += counts.frames_out.load(Ordering::Relaxed);
        self.gaps += counts.gaps.load(Ordering::Relaxed);
    }
}

/// Reads the bus until EOS or error, tallying each segment message;
/// `tick` about every 200 ms.
fn drive(
    pipeline: &gst::Pipeline,
    limit: Duration,
    tally: &mut Tally,
    mut tick: impl FnMut(&Tally),
) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("no bus")?;
    // A refusal to start says why on the bus, read below.
    let _ = pipeline.set_state(gst::State::Playing);
    let give_up = Instant::now() + limit;
    let mut ended = false;
    while !ended && Instant::now() < give_up {
        tick(tally);
        let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        match message.view() {
            gst::MessageView::Eos(_) => ended = true,
            gst::MessageView::Error(e) => {
                eprintln!(
                    "soak: error from {:?}: {} ({:?})",
                    e.src().map(|s| s.path_string()),
                    e.error(),
                    e.debug()
                );
                tally.errors += 1;
                ended = true;
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "stsdub-segment") {
                    tally.segment(s);
                }
            }
            _ => {}
        }
    }
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| e.to_string())?;
    if !ended {
        eprintln!("soak: a pass did not end within {limit:?}");
        tally.errors += 1;
    }
    Ok(())
}

fn file_passes(
    input: &str,
    only: Option<usize>,
    until: Instant,
    draw: &mut Draw,
    tally: &mut Tally,
    start: &mut Option<(f64, u64)>,
) -> Result<(), String> {
    use stsdub_worker::pipeline::{Input, Output, worker};
    let input = Input::from_uri(input).map_err(|e| e.to_string())?;
    let output = Output::file("/dev/null");
    while Instant::now() < until {
        let fault = FAULTS[only.unwrap_or_else(|| draw.below(FAULTS.len()))];
        let echo = fault.map(|args| Echo::start(args, 0)).transpose()?;
        let url = echo
            .as_ref()
            .map_or("http://127.0.0.1:9".to_owned(), |e| e.url.clone());
        let props = format!("sts-url={url} timeout=1000 reconnect-delay=100 breaker-cooldown=2000");
        let pipeline = gst::parse::launch(&worker(&input, &props, &output))
            .map_err(|e| e.to_string())?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline")?;
        let counts = Arc::new(Counts::default());
        count_audio(&pipeline, &counts)?;
        let kill = tally.passes % KILL_EVERY == KILL_EVERY - 1;
        let mut echo = echo;
        let before = tally.segments;
        drive(&pipeline, Duration::from_secs(300), tally, |t| {
            if kill && t.segments >= before + 3 {
                echo = None;
            }
        })?;
        tally.add(&counts);
        tally.passes += 1;
        // The start is taken once every kind of pass has had its chance to
        // warm the process (pools, decoders, the runtime's threads) up.
        if tally.passes == WARM_UP_PASSES {
            *start = Some(support::rss_and_threads());
        }
        if tally.passes.is_multiple_of(50) {
            let (rss, threads) = support::rss_and_threads();
            println!("pass {}: RSS {rss:.1} MiB, {threads} threads", tally.passes);
        }
    }
    Ok(())
}

fn live_run(
    seconds: u64,
    draw: &mut Draw,
    tally: &mut Tally,
    start: &mut Option<(f64, u64)>,
) -> Result<(), String> {
    let port = support::free_port()?;
    let mut echo = Some(Echo::start(&[], port)?);
    let url = format!("http://127.0.0.1:{port}");
    let buffers = seconds * 48_000 / 1024;
    let description = format!(
        "audiotestsrc is-live=true samplesperbuffer=1024 num-buffers={buffers} wave=sine freq=330 ! \
         audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! stsdub name=dub sts-url={url} \
         segment-duration=1000 timeout=1500 reconnect-delay=200 breaker-cooldown=2000 ! fakesink sync=true"
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let counts = Arc::new(Counts::default());
    count_audio(&pipeline, &counts)?;
    let mut next_fault = Instant::now() + Duration::from_secs(20);
    let mut stopped = false;
    let mut faults = 0u64;
    drive(&pipeline, Duration::from_secs(seconds + 60), tally, |t| {
        if start.is_none() && t.segments >= 10 {
            *start = Some(support::rss_and_threads());
        }
        if Instant::now() < next_fault {
            return;
        }
        next_fault = Instant::now() + Duration::from_secs(5 + draw.below(25) as u64);
        faults += 1;
        match (draw.below(3), echo.as_ref()) {
            (_, None) => echo = Echo::start(&[], port).ok(),
            (0, Some(e)) if !stopped => {
                e.signal("STOP");
                stopped = true;
            }
            (_, Some(e)) if stopped => {
                e.signal("CONT");
                stopped = false;
            }
            (1, Some(_)) => echo = None,
            _ => {}
        }
    })?;
    println!("live faults injected: {faults}");
    tally.add(&counts);
    tally.passes += 1;
    Ok(())
}

fn main() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gststsdub::plugin_register_static().map_err(|e| e.to_string())?;
    let mut args = std::env::args().skip(1);
    let (mut input, mut live, mut seconds, mut seed) = (None, false, None, 0x5eed_u64);
    let mut only = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--input" => input = Some(value()?),
            "--live" => live = true,
            "--seconds" => {
                seconds = Some(
                    value()?
                        .parse::<u64>()
                        .map_err(|e| format!("--seconds: {e}"))?,
                )
            }
            "--seed" => seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            // One fault only (an index into FAULTS), to tell which one keeps memory.
            "--fault" => {
                let index: usize = value()?.parse().map_err(|e| format!("--fault: {e}"))?;
                if index >= FAULTS.len() {
                    return Err(format!("--fault: 0 – {}", FAULTS.len() - 1));
                }
                only = Some(index);
            }
            other => {
                return Err(format!(
                    "unknown argument {other} (--input FILE | --live, --seconds N, --seed N)"
                ));
            }
        }
    }
    let mut draw = Draw(seed.max(1));
    let mut tally = Tally::default();
    let mut start = None;
    let began = Instant::now();
    if live {
        live_run(seconds.unwrap_or(900), &mut draw, &mut tally, &mut start)?;
    } else {
        let input = input.ok_or("--input FILE.mp4 (or --live)")?;
        file_passes(
            &input,
            only,
            began + Duration::from_secs(seconds.unwrap_or(3600)),
            &mut draw,
            &mut tally,
            &mut start,
        )?;
    }
    let (start_rss, start_threads) = start.unwrap_or_default();
    let (end_rss, end_threads) = support::rss_and_threads();
    println!(
        "soak: {} in {:.0} s, {} passes, {} segments",
        if live { "live" } else { "non-live" },
        began.elapsed().as_secs_f64(),
        tally.passes,
        tally.segments
    );
    println!("segments by outcome: {:?}", tally.reasons);
    println!("RSS {start_rss:.1} → {end_rss:.1} MiB, threads {start_threads} → {end_threads}");
    let lost = tally.frames_in as i64 - tally.frames_out as i64;
    println!(
        "audio frames in {}, out {}, lost {lost}, gaps {}, pipeline errors {}",
        tally.frames_in, tally.frames_out, tally.gaps, tally.errors
    );
    if lost != 0 || tally.gaps != 0 || tally.errors != 0 {
        return Err("frames lost, gaps or errors".into());
    }
    Ok(())
}
