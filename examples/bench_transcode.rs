// SPDX-License-Identifier: MPL-2.0

//! What a transcode of dubbed audio costs and keeps: 6 s of 16 kHz mono
//! AAC transcoded to 48 kHz stereo over and over, on one thread and on a
//! pool of threads (as the element's blocking pool runs them), with RSS and
//! threads after 1, 10, 100 and `--runs` transcodes. A decode-only pass in
//! the same run is the baseline: what is left is the encoder's.
//!
//! cargo run --release --example bench_transcode [-- --runs 1000]

use std::time::{Duration, Instant};

use gststsdub::audio::transcode;
use gststsdub::container::m4a::AacConfig;

#[path = "support/bench.rs"]
mod support;

const LIMIT: Duration = Duration::from_secs(10);

fn main() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    let mut args = std::env::args().skip(1);
    let mut runs = 1000usize;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--runs N (a count)")?
            }
            other => return Err(format!("unknown argument {other} (--runs N)")),
        }
    }
    let from = AacConfig::aac_lc(16_000, 1).map_err(|e| e.to_string())?;
    let to = AacConfig::aac_lc(48_000, 2).map_err(|e| e.to_string())?;
    let tone: Vec<i16> = (0..6 * 16_000)
        .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
        .collect();
    let frames = transcode::encode(&from, &tone, LIMIT)?;
    let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let (rss, threads) = support::rss_and_threads();
    println!("start: RSS {rss:.1} MiB, {threads} threads");
    println!(
        "{:<22} {:>6} {:>10} {:>8} {:>10}",
        "pass", "runs", "RSS MiB", "threads", "ms/run"
    );
    let report = |name: &str, done: usize, started: Instant| {
        let (rss, threads) = support::rss_and_threads();
        let ms = started.elapsed().as_secs_f64() * 1000.0 / done as f64;
        println!("{name:<22} {done:>6} {rss:>10.1} {threads:>8} {ms:>10.2}");
    };
    let checkpoints = |runs: usize| [1, 10, 100, runs].into_iter().filter(move |c| *c <= runs);
    let decode_only = || transcode::decode_float(&from, &frames, 48_000, 2, LIMIT).map(|_| ());
    let whole = || transcode::transcode(&frames, &from, &to, 1024, LIMIT).map(|_| ());
    for (name, work) in [
        (
            "decode (baseline)",
            &decode_only as &(dyn Fn() -> Result<(), String> + Sync),
        ),
        ("transcode", &whole),
    ] {
        let started = Instant::now();
        let mut done = 0;
        for checkpoint in checkpoints(runs) {
            while done < checkpoint {
                work()?;
                done += 1;
            }
            report(name, done, started);
        }
        // On four threads at once, as the runtime's blocking pool may.
        let started = Instant::now();
        std::thread::scope(|scope| -> Result<(), String> {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..runs / 4).try_for_each(|_| work())))
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().map_err(|_| "a thread panicked".to_string())?)
        })?;
        report(&format!("{name}, 4 threads"), runs / 4 * 4, started);
    }
    Ok(())
}
