//! Benchmark: how many live streams one process carries. N streams, each
//! an `appsrc` pushing the speech clip's AAC frames from memory at real-time
//! pace (one feeder thread for all, so no encoder or demuxer is measured),
//! through stsdub to a syncing fakesink, against the echo STS in another
//! process answering at once (`--transform copy`: its own audio back, no
//! decode or encode). N rises step by step; each step runs the same
//! streams through `identity` first, as the baseline of the same run.
//!
//! A step misses when any segment falls back for `timeout` or `deadline` (or
//! a pipeline errs); the bench stops at the first miss and prints the
//! largest N that had none. The worst lateness of a buffer at its sink
//! (arrival after PTS + the pipeline's latency) is reported beside it.
//!
//! ```text
//! cargo run --release --example bench_streams [-- --steps 25,50,100,200,400 --seconds 20]
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

#[path = "support/bench.rs"]
mod bench;

/// How far ahead of its due time the feeder hands a frame to appsrc.
const FEED_LEAD_NS: u64 = 100_000_000;
/// The streams' starts spread over one default segment.
const STAGGER: Duration = Duration::from_secs(6);
/// A stream whose pipeline latency is not known yet: its buffers are not
/// timed. A syncing sink knows it only once it has a buffer (the
/// pipeline's latency query answers "not live" before), and stsdub holds
/// its first one for its whole latency.
const LATENCY_UNKNOWN: u64 = u64::MAX;

struct Args {
    steps: Vec<usize>,
    seconds: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        steps: vec![25, 50, 100, 200, 400],
        seconds: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--steps" => {
                args.steps = value
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse()
                            .map_err(|_| format!("--steps: {n} is not a count"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => {
                args.seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds: {value} is not a number"))?;
            }
            other => return Err(format!("unknown option {other} (--steps, --seconds)")),
        }
    }
    if args.steps.is_empty() || args.steps.contains(&0) || args.seconds < 5 {
        return Err("--steps needs counts above 0, --seconds at least 5".into());
    }
    Ok(args)
}

/// The clip's frames and what appsrc says about them.
struct Media {
    caps: gst::Caps,
    frames: Vec<gst::Buffer>,
    frame_ns: u64,
    bytes_per_second: f64,
}

fn media() -> Result<Media, String> {
    let clip = bench::speech_clip(None)?;
    let (config, frames) = bench::frames(&clip)?;
    let caps = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .field("framed", true)
        .field("rate", config.sample_rate as i32)
        .field("channels", i32::from(config.channels))
        .field(
            "codec_data",
            gst::Buffer::from_slice(config.audio_specific_config.clone()),
        )
        .build();
    let frame_ns = config.frame_duration_ns();
    let bytes: usize = frames.iter().map(|f| f.size()).sum();
    let seconds = (frames.len() as u64 * frame_ns) as f64 / 1e9;
    Ok(Media {
        caps,
        frames,
        frame_ns,
        bytes_per_second: bytes as f64 / seconds.max(1e-9),
    })
}

/// One stream: its pipeline, its source, and the latency its sink syncs with.
struct Stream {
    pipeline: gst::Pipeline,
    source: gst_app::AppSrc,
    latency_ns: Arc<AtomicU64>,
    base: gst::ClockTime,
}

fn stream(
    index: usize,
    element: &str,
    media: &Media,
    base: gst::ClockTime,
    worst_late: &Arc<AtomicI64>,
) -> Result<Stream, String> {
    let element = element.replace("{index}", &index.to_string());
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src is-live=true format=time min-latency=0 ! {element} ! fakesink name=sink sync=true"
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline".to_string())?;
    let source = pipeline
        .by_name("src")
        .and_downcast::<gst_app::AppSrc>()
        .ok_or("no appsrc")?;
    source.set_caps(Some(&media.caps));
    // One clock, and a base time the feeder knows, so that one thread
    // paces every stream.
    pipeline.use_clock(Some(&gst::SystemClock::obtain()));
    pipeline.set_start_time(gst::ClockTime::NONE);
    pipeline.set_base_time(base);
    let latency_ns = Arc::new(AtomicU64::new(LATENCY_UNKNOWN));
    let sink_pad = pipeline
        .by_name("sink")
        .and_then(|s| s.static_pad("sink"))
        .ok_or("no sink pad")?;
    let (latency, worst) = (latency_ns.clone(), worst_late.clone());
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let latency_ns = latency.load(Ordering::Relaxed);
        if let Some(pts) = info
            .buffer()
            .and_then(|b| b.pts())
            .filter(|_| latency_ns != LATENCY_UNKNOWN)
        {
            let now = gst::SystemClock::obtain().time().saturating_sub(base);
            let due = pts.nseconds() + latency_ns;
            worst.fetch_max(now.nseconds() as i64 - due as i64, Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(Stream {
        pipeline,
        source,
        latency_ns,
        base,
    })
}

/// Pushes every stream's frames at real time, each on its own base
/// time, until `stop`.
fn feed(sources: Vec<(gst_app::AppSrc, gst::ClockTime)>, media: Arc<Media>, stop: Arc<AtomicBool>) {
    let clock = gst::SystemClock::obtain();
    let mut next = vec![0u64; sources.len()];
    while !stop.load(Ordering::Relaxed) {
        let now = clock.time();
        for ((source, base), next) in sources.iter().zip(&mut next) {
            let running = now.saturating_sub(*base).nseconds();
            while *next * media.frame_ns <= running + FEED_LEAD_NS {
                let mut frame = media.frames[*next as usize % media.frames.len()].copy();
                if let Some(f) = frame.get_mut() {
                    f.set_pts(gst::ClockTime::from_nseconds(*next * media.frame_ns));
                    f.set_duration(gst::ClockTime::from_nseconds(media.frame_ns));
                }
                let _ = source.push_buffer(frame);
                *next += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for (source, _) in &sources {
        let _ = source.end_of_stream();
    }
}

/// Stream `index` of `n` starts this long after the first: real streams
/// do not cut their segments in the same millisecond.
fn stagger(index: usize, n: usize) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(STAGGER.as_nanos() as u64 * index as u64 / n.max(1) as u64)
}

#[derive(Default)]
struct Figures {
    cpu_ms_per_stream_second: f64,
    rss_mib_per_stream: f64,
    threads_per_stream: f64,
    reasons: BTreeMap<String, u64>,
    worst_late_ms: f64,
    /// The largest latency a stream's pipeline configured.
    latency_ms: f64,
    errors: u64,
}

impl Figures {
    fn missed(&self) -> bool {
        self.errors > 0
            || self.reasons.contains_key("timeout")
            || self.reasons.contains_key("deadline")
    }
}

/// One step of `n` streams through `element`. RSS is counted from
/// `rss_start`, the process before any step: memory a previous step freed
/// stays in the allocator, so a step's own start would undercount.
fn run_step(
    n: usize,
    element: &str,
    media: &Arc<Media>,
    seconds: u64,
    rss_start: f64,
) -> Result<Figures, String> {
    let (_, threads_before) = bench::rss_and_threads();
    let clock = gst::SystemClock::obtain();
    // Late enough that every pipeline is PLAYING before its first frame
    // is due (a thousand take a few seconds to build and start).
    let base = clock.time() + gst::ClockTime::from_mseconds(1000 + 5 * n as u64);
    let worst_late = Arc::new(AtomicI64::new(i64::MIN));
    let streams: Vec<Stream> = (0..n)
        .map(|i| stream(i, element, media, base + stagger(i, n), &worst_late))
        .collect::<Result<_, _>>()?;
    for s in &streams {
        s.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("stream start: {e}"))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let sources = streams.iter().map(|s| (s.source.clone(), s.base)).collect();
        let (media, stop) = (media.clone(), stop.clone());
        std::thread::spawn(move || feed(sources, media, stop))
    };
    let mut figures = Figures::default();
    // Measured once every stream runs.
    let all_running = base + gst::ClockTime::from_nseconds(STAGGER.as_nanos() as u64);
    while clock.time() < all_running {
        std::thread::sleep(Duration::from_millis(100));
        for s in &streams {
            drain_bus(&s.pipeline, &mut figures);
        }
    }
    let cpu_before = bench::cpu_seconds();
    let started = Instant::now();
    let (mut rss_peak, mut threads_peak) = (0.0f64, 0u64);
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(200));
        for s in streams
            .iter()
            .filter(|s| s.latency_ns.load(Ordering::Relaxed) == LATENCY_UNKNOWN)
        {
            learn_latency(s);
        }
        let (rss, threads) = bench::rss_and_threads();
        rss_peak = rss_peak.max(rss);
        threads_peak = threads_peak.max(threads);
        for s in &streams {
            drain_bus(&s.pipeline, &mut figures);
        }
    }
    let cpu = bench::cpu_seconds() - cpu_before;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = feeder.join();
    for s in &streams {
        drain_bus(&s.pipeline, &mut figures);
        let _ = s.pipeline.set_state(gst::State::Null);
    }
    figures.cpu_ms_per_stream_second = cpu * 1000.0 / (n as f64 * elapsed);
    figures.rss_mib_per_stream = (rss_peak - rss_start).max(0.0) / n as f64;
    figures.threads_per_stream = threads_peak.saturating_sub(threads_before) as f64 / n as f64;
    figures.latency_ms = streams
        .iter()
        .map(|s| s.latency_ns.load(Ordering::Relaxed))
        .filter(|&l| l != LATENCY_UNKNOWN)
        .max()
        .unwrap_or(0) as f64
        / 1e6;
    figures.worst_late_ms = worst_late.load(Ordering::Relaxed).max(0) as f64 / 1e6;
    Ok(figures)
}

/// The latency the pipeline configures once its sink has prerolled.
fn learn_latency(stream: &Stream) {
    let mut query = gst::query::Latency::new();
    if stream.pipeline.query(&mut query) {
        let (live, min, _) = query.result();
        if live {
            stream.latency_ns.store(min.nseconds(), Ordering::Relaxed);
        }
    }
}

fn drain_bus(pipeline: &gst::Pipeline, figures: &mut Figures) {
    let Some(bus) = pipeline.bus() else { return };
    while let Some(message) = bus.pop() {
        match message.view() {
            gst::MessageView::Error(e) => {
                eprintln!("bench_streams: {} ({:?})", e.error(), e.debug());
                figures.errors += 1;
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "stsdub-segment") {
                    let reason = s.get::<String>("reason").unwrap_or_default();
                    let reason = if reason.is_empty() {
                        "dubbed".into()
                    } else {
                        reason
                    };
                    *figures.reasons.entry(reason).or_default() += 1;
                }
            }
            _ => {}
        }
    }
}

fn reasons(figures: &Figures) -> String {
    if figures.reasons.is_empty() {
        return "-".into();
    }
    let all: Vec<String> = figures
        .reasons
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    all.join(", ")
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    gst::init().map_err(|e| e.to_string())?;
    gststsdub::plugin_register_static().map_err(|e| e.to_string())?;
    let media = Arc::new(media()?);
    let (rss_start, _) = bench::rss_and_threads();
    let (mut echo, url) = bench::start_echo(&["--port", "0", "--transform", "copy"])?;
    println!(
        "clip: {} AAC frames of {:.1} ms, {:.0} kb/s; {} s per step; echo STS at {url}",
        media.frames.len(),
        media.frame_ns as f64 / 1e6,
        media.bytes_per_second * 8.0 / 1000.0,
        args.seconds
    );
    println!(
        "| N | ms CPU/stream-s identity | stsdub | ratio | MiB RSS/stream identity | stsdub | of it media held | threads/stream identity | stsdub | segments | worst late ms |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
    let mut largest_clean = None;
    for &n in &args.steps {
        let baseline = run_step(n, "identity", &media, args.seconds, rss_start)?;
        let dub = run_step(
            n,
            &format!("stsdub sts-url={url} stream-id=bench-{{index}}"),
            &media,
            args.seconds,
            rss_start,
        )?;
        println!(
            "| {n} | {:.3} | {:.3} | {:.1}x | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} |",
            baseline.cpu_ms_per_stream_second,
            dub.cpu_ms_per_stream_second,
            dub.cpu_ms_per_stream_second / baseline.cpu_ms_per_stream_second.max(f64::EPSILON),
            baseline.rss_mib_per_stream,
            dub.rss_mib_per_stream,
            // stsdub holds its latency's worth of the input by design.
            media.bytes_per_second * dub.latency_ms / 1000.0 / 1_048_576.0,
            baseline.threads_per_stream,
            dub.threads_per_stream,
            reasons(&dub),
            dub.worst_late_ms
        );
        if dub.missed() {
            println!("first miss at N = {n}");
            break;
        }
        largest_clean = Some(n);
    }
    let _ = echo.kill();
    let _ = echo.wait();
    match largest_clean {
        Some(n) => println!("largest N with no deadline miss: {n}"),
        None => println!("largest N with no deadline miss: none of the steps"),
    }
    Ok(())
}
