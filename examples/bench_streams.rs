// SPDX-License-Identifier: MPL-2.0

//! Benchmark: how many live streams one process carries. N streams, each
//! an `appsrc` pushing the speech clip's AAC frames from memory at real-time
//! pace (one feeder thread for all, so no encoder or demuxer is measured),
//! through stsdub to a syncing fakesink, against the echo STS in another
//! process answering at once (`--transform copy`: its own audio back, no
//! decode or encode). N rises step by step; each step runs the same
//! streams through `identity` first, as the baseline of the same run.
//! With `--video`, every stream also carries the clip's H.264 access units
//! through stsdub's video pad pair (or a second `identity`) to a second
//! syncing fakesink.
//!
//! A step misses when any segment falls back for `timeout` or `deadline` (or
//! a pipeline errs); the bench stops at the first miss and prints the
//! largest N that had none. The worst lateness of a buffer at its sink
//! (arrival after PTS + the pipeline's latency) is reported beside it, and
//! the median and worst round trip of the dubbed segments: when a step
//! misses, it tells a slow STS path from a late output.
//!
//! With `--with "PROPERTIES"` (e.g. `--video --with "captions=cea608"`),
//! each step also runs the stsdub streams with those properties set, and
//! prints what they cost over plain stsdub in the same step.
//!
//! ```text
//! cargo run --release --example bench_streams [-- --steps 25,50,100,200,400 --seconds 20 --video]
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

#[path = "support/bench.rs"]
mod bench;
use stsdub_worker::futex_hash;

/// How far ahead of its due time the feeder hands a frame to appsrc.
const FEED_LEAD_NS: u64 = 100_000_000;
/// The streams' starts spread over one default segment.
const STAGGER: Duration = Duration::from_secs(6);
/// A stream whose pipeline latency is not known yet: its buffers are not
/// timed. A syncing sink knows it only once it has a buffer (the
/// pipeline's latency query answers "not live" before), and stsdub holds
/// its first one for its whole latency.
const LATENCY_UNKNOWN: u64 = u64::MAX;
/// Threads one stream runs with video: two appsrc tasks, stsdub's two
/// output tasks, and room; what the futex hash is sized for.
const THREADS_PER_STREAM: usize = 5;

struct Args {
    steps: Vec<usize>,
    seconds: u64,
    video: bool,
    /// stsdub properties measured against plain stsdub in each step.
    with: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        steps: vec![25, 50, 100, 200, 400],
        seconds: 20,
        video: false,
        with: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--video" {
            args.video = true;
            continue;
        }
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
            "--with" => args.with = Some(value),
            other => {
                return Err(format!(
                    "unknown option {other} (--steps, --seconds, --video, --with)"
                ));
            }
        }
    }
    if args.steps.is_empty() || args.steps.contains(&0) || args.seconds < 5 {
        return Err("--steps needs counts above 0, --seconds at least 5".into());
    }
    Ok(args)
}

/// One track of the clip: its frames and what appsrc says about them.
struct Track {
    caps: gst::Caps,
    frames: Vec<gst::Buffer>,
    frame_ns: u64,
    bytes_per_second: f64,
}

impl Track {
    fn new(caps: gst::Caps, frames: Vec<gst::Buffer>, frame_ns: u64) -> Track {
        let bytes: usize = frames.iter().map(|f| f.size()).sum();
        let seconds = (frames.len() as u64 * frame_ns) as f64 / 1e9;
        Track {
            caps,
            frames,
            frame_ns,
            bytes_per_second: bytes as f64 / seconds.max(1e-9),
        }
    }
}

/// The audio track, and the video track when `--video` asks for it.
struct Media {
    audio: Track,
    video: Option<Track>,
}

impl Media {
    fn tracks(&self) -> impl Iterator<Item = &Track> {
        std::iter::once(&self.audio).chain(&self.video)
    }

    /// What one second of the stream costs in memory while held: its
    /// bytes, and a buffer structure per frame (`buffer_cost` bytes each;
    /// an AAC frame's structure outweighs its payload).
    fn held_bytes_per_second(&self, buffer_cost: f64) -> f64 {
        self.tracks()
            .map(|t| t.bytes_per_second + buffer_cost * 1e9 / t.frame_ns as f64)
            .sum()
    }
}

/// The resident memory one more held frame costs beyond its payload,
/// measured here: RSS before and while 10,000 retimed copies of the
/// track's frames (their payload shared, as stsdub's held frames share
/// theirs with upstream) are held at once.
fn measure_buffer_cost(track: &Track) -> f64 {
    // Few enough that what they leave in the allocator (3 MiB) does not
    // move the per-stream figures, which are counted after it.
    const COPIES: u64 = 10_000;
    let (before, _) = bench::rss_and_threads();
    let held: Vec<gst::Buffer> = (0..COPIES).map(|n| frame_at(track, n)).collect();
    let (after, _) = bench::rss_and_threads();
    drop(held);
    (after - before).max(0.0) * 1_048_576.0 / COPIES as f64
}

fn media(video: bool) -> Result<Media, String> {
    let clip = bench::speech_clip(None)?;
    let video = if video {
        Some(video_track(&clip)?)
    } else {
        None
    };
    Ok(Media {
        audio: audio_track(&clip)?,
        video,
    })
}

fn audio_track(clip: &std::path::Path) -> Result<Track, String> {
    let (config, frames) = bench::frames(clip)?;
    let caps = gststsdub::audio::driven_element::aac_caps(&config);
    Ok(Track::new(caps, frames, config.frame_duration_ns()))
}

/// The clip's H.264 access units as h264parse gives them (avc, one access
/// unit per buffer, keyframes without the delta flag).
fn video_track(clip: &std::path::Path) -> Result<Track, String> {
    let (caps, frames) = bench::pull_all(&format!(
        "filesrc location={} ! qtdemux ! h264parse \
         ! video/x-h264,stream-format=avc,alignment=au ! appsink name=sink sync=false",
        clip.display()
    ))?;
    let caps = caps.ok_or("the clip has no H.264 video")?;
    let fps = caps
        .structure(0)
        .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .ok_or("the clip's video has no frame rate")?;
    let frame_ns = 1_000_000_000 * fps.denom() as u64 / fps.numer() as u64;
    Ok(Track::new(caps, frames, frame_ns))
}

/// What the streams run through.
enum Under {
    Identity,
    StsDub { url: String, extra: String },
}

impl Under {
    /// stream `index`'s pipeline: `src0` → … → `sink0` for audio, and
    /// `src1` → … → `sink1` for video when there is video.
    fn description(&self, index: usize, video: bool) -> String {
        const SOURCE: &str = "is-live=true format=time min-latency=0";
        const SINK: &str = "sync=true";
        let audio_element = match self {
            Under::Identity => "identity".to_string(),
            Under::StsDub { url, extra } => {
                format!("stsdub name=dub sts-url={url} stream-id=bench-{index} {extra}")
            }
        };
        let mut description =
            format!("appsrc name=src0 {SOURCE} ! {audio_element} ! fakesink name=sink0 {SINK}");
        if video {
            let (into, out_of) = match self {
                Under::Identity => ("identity name=video", "video."),
                Under::StsDub { .. } => ("dub.video_sink", "dub.video_src"),
            };
            description.push_str(&format!(
                " appsrc name=src1 {SOURCE} ! {into} {out_of} ! fakesink name=sink1 {SINK}"
            ));
        }
        description
    }
}

/// One stream: its pipeline, its sources (one per track), and the latency
/// its sinks sync with.
struct Stream {
    pipeline: gst::Pipeline,
    sources: Vec<gst_app::AppSrc>,
    latency_ns: Arc<AtomicU64>,
    base: gst::ClockTime,
}

fn stream(
    index: usize,
    under: &Under,
    media: &Media,
    base: gst::ClockTime,
    worst_late: &Arc<AtomicI64>,
) -> Result<Stream, String> {
    let description = under.description(index, media.video.is_some());
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    // One clock, and a base time the feeder knows, so that one thread
    // paces every stream.
    pipeline.use_clock(Some(&gst::SystemClock::obtain()));
    pipeline.set_start_time(gst::ClockTime::NONE);
    pipeline.set_base_time(base);
    let latency_ns = Arc::new(AtomicU64::new(LATENCY_UNKNOWN));
    let mut sources = Vec::new();
    for (i, track) in media.tracks().enumerate() {
        let source = pipeline
            .by_name(&format!("src{i}"))
            .and_downcast::<gst_app::AppSrc>()
            .ok_or("no appsrc")?;
        source.set_caps(Some(&track.caps));
        sources.push(source);
        let sink_pad = pipeline
            .by_name(&format!("sink{i}"))
            .and_then(|s| s.static_pad("sink"))
            .ok_or("no sink pad")?;
        time_arrivals(&sink_pad, base, &latency_ns, worst_late);
    }
    Ok(Stream {
        pipeline,
        sources,
        latency_ns,
        base,
    })
}

/// Keeps in `worst_late` how long after its due time (PTS + latency) the
/// latest buffer reached `sink_pad`.
fn time_arrivals(
    sink_pad: &gst::Pad,
    base: gst::ClockTime,
    latency_ns: &Arc<AtomicU64>,
    worst_late: &Arc<AtomicI64>,
) {
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
}

/// Pushes every stream's frames, track by track, at real time, each
/// stream on its own base time, until `stop`.
fn feed(
    streams: Vec<(Vec<gst_app::AppSrc>, gst::ClockTime)>,
    media: Arc<Media>,
    stop: Arc<AtomicBool>,
) {
    let clock = gst::SystemClock::obtain();
    let tracks: Vec<&Track> = media.tracks().collect();
    let mut next = vec![vec![0u64; tracks.len()]; streams.len()];
    while !stop.load(Ordering::Relaxed) {
        let now = clock.time();
        for ((sources, base), next) in streams.iter().zip(&mut next) {
            let running = now.saturating_sub(*base).nseconds();
            for ((source, track), next) in sources.iter().zip(&tracks).zip(next.iter_mut()) {
                while *next * track.frame_ns <= running + FEED_LEAD_NS {
                    let _ = source.push_buffer(frame_at(track, *next));
                    *next += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for source in streams.iter().flat_map(|(sources, _)| sources) {
        let _ = source.end_of_stream();
    }
}

/// The track's `n`th frame of a stream that loops the clip.
fn frame_at(track: &Track, n: u64) -> gst::Buffer {
    let mut frame = track.frames[n as usize % track.frames.len()].copy();
    if let Some(f) = frame.get_mut() {
        let pts = gst::ClockTime::from_nseconds(n * track.frame_ns);
        f.set_pts(pts);
        f.set_dts(pts);
        f.set_duration(gst::ClockTime::from_nseconds(track.frame_ns));
    }
    frame
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
    /// Every dubbed segment's round trip to the STS, in ms.
    round_trips_ms: Vec<i64>,
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

/// One step of `n` streams through `under`. RSS is counted from
/// `rss_start`, the process before any step: memory a previous step freed
/// stays in the allocator, so a step's own start would undercount.
fn run_step(
    n: usize,
    under: &Under,
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
        .map(|i| stream(i, under, media, base + stagger(i, n), &worst_late))
        .collect::<Result<_, _>>()?;
    for s in &streams {
        s.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("stream start: {e}"))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let sources = streams
            .iter()
            .map(|s| (s.sources.clone(), s.base))
            .collect();
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
                    if let Some(ms) = s.get::<i64>("round-trip-ms").ok().filter(|&ms| ms >= 0) {
                        figures.round_trips_ms.push(ms);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The median and worst round trip of the dubbed segments, "-" for none.
fn round_trips(figures: &Figures) -> String {
    let mut all = figures.round_trips_ms.clone();
    all.sort_unstable();
    match (all.get(all.len() / 2), all.last()) {
        (Some(median), Some(worst)) => format!("{median} / {worst}"),
        _ => "-".into(),
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
    // The largest step's streams run at once.
    let most_threads = args.steps.iter().max().copied().unwrap_or(1) * THREADS_PER_STREAM;
    let futex_slots = futex_hash::size_for_threads(most_threads);
    gst::init().map_err(|e| e.to_string())?;
    gststsdub::plugin_register_static().map_err(|e| e.to_string())?;
    let media = Arc::new(media(args.video)?);
    let buffer_cost = measure_buffer_cost(&media.audio);
    let (rss_start, _) = bench::rss_and_threads();
    let (mut echo, url) = bench::start_echo(&["--port", "0", "--transform", "copy"])?;
    let audio = &media.audio;
    println!(
        "clip: {} AAC frames of {:.1} ms, {:.0} kb/s; {} s per step; echo STS at {url}",
        audio.frames.len(),
        audio.frame_ns as f64 / 1e6,
        audio.bytes_per_second * 8.0 / 1000.0,
        args.seconds
    );
    println!("a held frame's buffer structure: {buffer_cost:.0} bytes of RSS beyond its payload");
    println!("futex hash: {futex_slots} slots (0: the kernel's global table)");
    if let Some(video) = &media.video {
        println!(
            "video: {} H.264 access units of {:.1} ms, {:.0} kb/s",
            video.frames.len(),
            video.frame_ns as f64 / 1e6,
            video.bytes_per_second * 8.0 / 1000.0
        );
    }
    println!(
        "| N | ms CPU/stream-s identity | stsdub | ratio | MiB RSS/stream identity | stsdub | of it media held | threads/stream identity | stsdub | segments | round trip ms median / worst | worst late ms identity | stsdub |"
    );
    println!(
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"
    );
    let mut largest_clean = None;
    for &n in &args.steps {
        let baseline = run_step(n, &Under::Identity, &media, args.seconds, rss_start)?;
        let dub = run_step(
            n,
            &Under::StsDub {
                url: url.clone(),
                extra: String::new(),
            },
            &media,
            args.seconds,
            rss_start,
        )?;
        let with = match &args.with {
            Some(extra) => Some(run_step(
                n,
                &Under::StsDub {
                    url: url.clone(),
                    extra: extra.clone(),
                },
                &media,
                args.seconds,
                rss_start,
            )?),
            None => None,
        };
        println!(
            "| {n} | {:.3} | {:.3} | {:.1}x | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} | {:.1} |",
            baseline.cpu_ms_per_stream_second,
            dub.cpu_ms_per_stream_second,
            dub.cpu_ms_per_stream_second / baseline.cpu_ms_per_stream_second.max(f64::EPSILON),
            baseline.rss_mib_per_stream,
            dub.rss_mib_per_stream,
            // stsdub holds its latency's worth of the input by design.
            media.held_bytes_per_second(buffer_cost) * dub.latency_ms / 1000.0 / 1_048_576.0,
            baseline.threads_per_stream,
            dub.threads_per_stream,
            reasons(&dub),
            round_trips(&dub),
            baseline.worst_late_ms,
            dub.worst_late_ms
        );
        if let (Some(with), Some(extra)) = (&with, &args.with) {
            println!(
                "| {n} | with {extra}: {:.3} ms CPU/stream-s, {:+.3} over stsdub ({:.2}x), {} |",
                with.cpu_ms_per_stream_second,
                with.cpu_ms_per_stream_second - dub.cpu_ms_per_stream_second,
                with.cpu_ms_per_stream_second / dub.cpu_ms_per_stream_second.max(f64::EPSILON),
                reasons(with)
            );
        }
        if dub.missed() || with.as_ref().is_some_and(|w| w.missed()) {
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
