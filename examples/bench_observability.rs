// SPDX-License-Identifier: MPL-2.0

//! Benchmark: what observability costs the streaming threads. A 10-minute
//! H.264 + AAC file runs through stsdub as fast as it can (non-live, STS
//! unreachable, so every segment falls back at once and only the element's
//! own work is timed), with and without a /metrics scraper hammering the
//! endpoint, and with the archive on. Ratios are against the same file
//! demuxed without stsdub, measured in the same run.
//!
//! ```text
//! cargo run --release --example bench_observability [-- --seconds 600 --runs 5]
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

#[path = "support/bench.rs"]
mod bench;

struct Options {
    seconds: u64,
    runs: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        seconds: 600,
        runs: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = value
            .parse()
            .map_err(|_| format!("{flag}: {value} is not a number"))?;
        match flag.as_str() {
            "--seconds" => options.seconds = number,
            "--runs" => options.runs = number as usize,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

/// The input, made once by scripts/make-sample.sh.
fn input(seconds: u64) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/bench-fixtures");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("sample-{seconds}s.mp4"));
    if !path.exists() {
        eprintln!("making a {seconds} s sample…");
        let ok = std::process::Command::new("bash")
            .arg(root.join("scripts/make-sample.sh"))
            .arg(&path)
            .arg(seconds.to_string())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("make-sample.sh failed".into());
        }
    }
    Ok(path)
}

fn description(input: &Path, stsdub: Option<&str>) -> String {
    let demux = format!(
        "filesrc location={} ! qtdemux name=d d.audio_0 ! aacparse name=a d.video_0 ! h264parse name=v",
        input.display()
    );
    match stsdub {
        // One demuxer thread feeds two sinks: each needs its queue to preroll.
        None => {
            format!("{demux} a. ! queue ! fakesink sync=false v. ! queue ! fakesink sync=false")
        }
        Some(props) => format!(
            "{demux} a. ! queue ! dub.audio_sink v. ! queue ! dub.video_sink stsdub name=dub {props} \
             dub.audio_src ! fakesink sync=false dub.video_src ! fakesink sync=false"
        ),
    }
}

/// Wall time of one run to EOS.
fn run_once(description: &str) -> Result<Duration, String> {
    let pipeline = gst::parse::launch(description)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let started = Instant::now();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let message = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(600),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let elapsed = started.elapsed();
    let _ = pipeline.set_state(gst::State::Null);
    match message.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(elapsed),
        Some(gst::MessageView::Error(e)) => Err(e.error().to_string()),
        _ => Err("no EOS within 600 s".into()),
    }
}

/// One way of running the file, and its run times so far.
struct Variant {
    name: &'static str,
    description: String,
    /// Scrape during its runs: where, and every this often or flat out.
    scrape: Option<(String, Option<Duration>)>,
    times: Vec<Duration>,
    scrapes: u64,
}

impl Variant {
    fn new(name: &'static str, description: String) -> Self {
        Self {
            name,
            description,
            scrape: None,
            times: Vec::new(),
            scrapes: 0,
        }
    }

    fn scraped(mut self, address: &str, every: Option<Duration>) -> Self {
        self.scrape = Some((address.to_owned(), every));
        self
    }

    fn run(&mut self) -> Result<(), String> {
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let scraping = self.scrape.clone().map(|(address, interval)| {
            let (stop, scrapes) = (stop.clone(), scrapes.clone());
            std::thread::spawn(move || scraper(address, interval, stop, scrapes))
        });
        let time = run_once(&self.description);
        stop.store(true, Ordering::Relaxed);
        if let Some(scraping) = scraping {
            let _ = scraping.join();
        }
        self.scrapes += scrapes.load(Ordering::Relaxed);
        self.times.push(time?);
        Ok(())
    }

    fn median(&self) -> Duration {
        self.quantile(0.5)
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut times = self.times.clone();
        times.sort();
        let index = ((times.len().saturating_sub(1)) as f64 * q).round() as usize;
        times.get(index).copied().unwrap_or_default()
    }
}

/// GETs /metrics until stopped, every `interval` or flat out; counts the
/// scrapes.
fn scraper(
    address: String,
    interval: Option<Duration>,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        if let Some(interval) = interval {
            // Pacing a load generator, not synchronising anything.
            std::thread::sleep(interval);
        }
        let Ok(mut socket) = std::net::TcpStream::connect(&address) else {
            continue;
        };
        let mut response = Vec::new();
        if socket
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .is_ok()
            && socket.read_to_end(&mut response).is_ok()
        {
            scrapes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("bench_observability: {e}");
        std::process::exit(1);
    }
}

fn bench() -> Result<(), String> {
    let options = parse_args()?;
    gst::init().map_err(|e| e.to_string())?;
    gststsdub::plugin_register_static().map_err(|e| e.to_string())?;
    let input = input(options.seconds)?;
    // Nothing listens there.
    let dead = format!("127.0.0.1:{}", bench::free_port()?);
    let sts = format!("sts-url=http://{dead}");
    let metrics_port = bench::free_port()?;
    let metrics = format!("127.0.0.1:{metrics_port}");
    let archive = std::env::temp_dir().join("stsdub-bench-archive");

    let runs = options.runs;
    let closed = dead.clone();
    let every_10_ms = Some(Duration::from_millis(10));
    let stsdub = |props: &str| description(&input, Some(&format!("{sts} {props}")));
    let mut variants = vec![
        Variant::new("demux only (baseline)", description(&input, None)),
        Variant::new("stsdub", stsdub("")),
        Variant::new(
            "stsdub + metrics-address",
            stsdub(&format!("metrics-address={metrics}")),
        ),
        // The scraper thread itself costs CPU on a small machine: the control
        // runs it against a closed port, so the difference is the serving.
        Variant::new("stsdub + scraper, closed port (control)", stsdub(""))
            .scraped(&closed, every_10_ms),
        Variant::new(
            "stsdub + /metrics scraped every 10 ms",
            stsdub(&format!("metrics-address={metrics}")),
        )
        .scraped(&metrics, every_10_ms),
        Variant::new(
            "stsdub + /metrics scraped flat out",
            stsdub(&format!("metrics-address={metrics}")),
        )
        .scraped(&metrics, None),
        Variant::new(
            "stsdub + archive-dir (m4a + mp4 per segment)",
            stsdub(&format!("archive-dir={}", archive.display())),
        ),
    ];
    // Interleaved, so that drift over the run hits every variant alike.
    for _ in 0..runs {
        for variant in &mut variants {
            variant.run()?;
        }
    }
    let _ = std::fs::remove_dir_all(&archive);

    let seconds = options.seconds as f64;
    println!(
        "{} s of H.264 + AAC, median of {runs} interleaved runs, non-live, every segment falls back",
        options.seconds
    );
    println!(
        "{:<46} {:>9} {:>13} {:>10} {:>8} {:>8}",
        "variant", "wall ms", "min–max ms", "x realtime", "ratio", "scrapes"
    );
    let baseline = variants[0].median().as_secs_f64();
    let median_of = |name: &str| {
        variants
            .iter()
            .find(|v| v.name == name)
            .map_or(0.0, |v| v.median().as_secs_f64())
    };
    let serving = median_of("stsdub + /metrics scraped every 10 ms")
        / median_of("stsdub + scraper, closed port (control)");
    for variant in &variants {
        let time = variant.median().as_secs_f64();
        let spread = format!(
            "{:.0}–{:.0}",
            variant.quantile(0.0).as_secs_f64() * 1e3,
            variant.quantile(1.0).as_secs_f64() * 1e3
        );
        println!(
            "{:<46} {:>9.1} {:>13} {:>10.0} {:>8.2} {:>8}",
            variant.name,
            time * 1e3,
            spread,
            seconds / time,
            time / baseline,
            variant.scrapes
        );
    }
    println!(
        "serving /metrics every 10 ms: {:+.1} % against the control",
        (serving - 1.0) * 100.0
    );
    Ok(())
}
