// SPDX-License-Identifier: MPL-2.0

//! Loudness to EBU R128 / ATSC A/85 (`loudness`, `loudness-target`,
//! `true-peak`), measured on the decoded output by an independent meter,
//! FFmpeg's ebur128 filter (BS.1770-4, true peak 4× oversampled). The
//! programme is the speech clip (speech over a noise bed); the echo STS
//! answers with the fragment's own speech 8 dB hotter (clipped at full
//! scale, as a hot STS's is) or 10 dB quieter; replace and voice-over.
//!
//! The reference is the same clip through stsdub with no STS (every
//! segment falls back): the input's audio on the output's timeline.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const RUN_LIMIT: Duration = Duration::from_secs(240);
const RATE: u64 = 48_000;
/// The STS's speech against the programme's: hotter, quieter.
const STS_GAINS_DB: [&str; 2] = ["8", "-10"];
/// Replace, and voice-over with the original 10 dB down.
const MIXES: [&str; 2] = ["original-volume=0", "original-volume=0.3"];
/// FFmpeg's summary prints loudness and peak to 0.1.
const METER_PRECISION: f64 = 0.1;

struct Dubbed {
    run: Run,
    output: PathBuf,
}

/// The clip through stsdub with `props`, the echo STS giving its speech
/// back `gain_db` hotter (no STS: `gain_db` None, everything falls back).
fn dub(name: &str, gain_db: Option<&str>, props: &str) -> Dubbed {
    let (clip, _) = speech_clip();
    let output = scratch(&format!("loudness-{name}.flv"));
    let sts = gain_db.map(|g| EchoSts::start(&["--transform", "identity", "--gain-db", g]));
    let url = sts.as_ref().map_or_else(dead_url, |s| s.url.clone());
    let run = run_pipeline(
        &file_to_flv(&clip, &output, &format!("sts-url={url} {props}")),
        RUN_LIMIT,
    );
    assert!(run.eos && run.errors.is_empty(), "{name}: {run:?}");
    Dubbed { run, output }
}

fn reference() -> &'static Dubbed {
    static REFERENCE: OnceLock<Dubbed> = OnceLock::new();
    REFERENCE.get_or_init(|| dub("reference", None, ""))
}

/// Each segment's samples in the decoded output: (start, end).
fn windows(run: &Run) -> Vec<(u64, u64)> {
    let pts: Vec<u64> = run
        .segments
        .iter()
        .map(|s| s.get::<u64>("pts").expect("pts"))
        .collect();
    let origin = pts.first().copied().unwrap_or(0);
    run.segments
        .iter()
        .zip(&pts)
        .map(|(s, pts)| {
            let start = (pts - origin) * RATE / 1_000_000_000;
            let samples = s.get::<u64>("duration-ms").expect("duration-ms") * RATE / 1000;
            (start, start + samples)
        })
        .collect()
}

/// Every segment dubbed, and the audio's packets stamped as the
/// reference's: no sample lost or added, A/V as in the input.
#[track_caller]
fn assert_dubbed_with_timeline_kept(name: &str, dubbed: &Dubbed) {
    assert!(
        dubbed.run.statuses().iter().all(|s| s == "dubbed"),
        "{name}: {:?}",
        dubbed.run.statuses()
    );
    let stamps = |file: &Path| -> Vec<i64> { packets(file, "a").iter().map(|p| p.pts).collect() };
    assert_eq!(
        stamps(&dubbed.output),
        stamps(&reference().output),
        "{name}: the audio's frames and stamps are the input's"
    );
}

/// `loudness=match`: the programme's integrated loudness within ±1 LU of
/// the input's, and every segment long enough to gate (3 s) within ±2 LU of
/// the original it replaces, whether the STS speaks 8 dB hotter or 10 dB
/// quieter, in replace and in voice-over.
#[test]
fn match_keeps_the_programmes_loudness_and_each_segments() {
    let (programme, _) = ffmpeg_loudness(&reference().output, None);
    for gain in STS_GAINS_DB {
        for mix in MIXES {
            let name = format!("match{gain}{mix}");
            let dubbed = dub(&name, Some(gain), &format!("loudness=match {mix}"));
            assert_dubbed_with_timeline_kept(&name, &dubbed);
            let (integrated, peak) = ffmpeg_loudness(&dubbed.output, None);
            eprintln!("{name}: {integrated} LUFS (input {programme}), {peak} dBTP");
            assert!(
                (integrated - programme).abs() <= 1.0,
                "{name}: {integrated} LUFS out, {programme} in"
            );
            for window in windows(&dubbed.run) {
                if window.1 - window.0 < 3 * RATE {
                    continue;
                }
                let (before, _) = ffmpeg_loudness(&reference().output, Some(window));
                let (after, _) = ffmpeg_loudness(&dubbed.output, Some(window));
                eprintln!("{name}: segment {window:?}: {before} LUFS in, {after} out");
                assert!(
                    (after - before).abs() <= 2.0,
                    "{name}: segment {window:?}: {after} LUFS out, {before} in"
                );
            }
        }
    }
}

/// `loudness=target` (default -23 LUFS, -1 dBTP): -23 ±1 LUFS, true peak
/// at or under -1 dBTP, for a hot and a quiet STS, replace and voice-over;
/// and A/85's -24 LKFS / -2 dBTP when asked.
#[test]
fn target_brings_the_output_to_r128_and_a85() {
    let cases = STS_GAINS_DB
        .iter()
        .flat_map(|gain| MIXES.iter().map(move |mix| (*gain, *mix, -23.0, -1.0)))
        .chain([("8", "original-volume=0", -24.0, -2.0)]);
    for (gain, mix, target, ceiling) in cases {
        let name = format!("target{target}{gain}{mix}");
        let props = format!("loudness=target loudness-target={target} true-peak={ceiling} {mix}");
        let dubbed = dub(&name, Some(gain), &props);
        assert_dubbed_with_timeline_kept(&name, &dubbed);
        let (integrated, peak) = ffmpeg_loudness(&dubbed.output, None);
        eprintln!("{name}: {integrated} LUFS, {peak} dBTP");
        assert!(
            (integrated - target).abs() <= 1.0,
            "{name}: {integrated} LUFS"
        );
        assert!(
            peak <= ceiling + METER_PRECISION / 2.0,
            "{name}: {peak} dBTP"
        );
    }
}

/// Voice-over without loudness: the true-peak limiter still holds the
/// ceiling when the STS's speech is hot and clipped.
#[test]
fn the_true_peak_ceiling_holds_whenever_the_audio_is_re_encoded() {
    let dubbed = dub("ceiling", Some("8"), "original-volume=0.3");
    assert_dubbed_with_timeline_kept("ceiling", &dubbed);
    let (integrated, peak) = ffmpeg_loudness(&dubbed.output, None);
    eprintln!("ceiling: {integrated} LUFS, {peak} dBTP");
    assert!(peak <= -1.0 + METER_PRECISION / 2.0, "{peak} dBTP");
}

/// The segment messages carry loudness in and out (our own meter agrees
/// with the match), and the stream's gauges are exported.
#[test]
fn segments_and_metrics_report_loudness() {
    let dubbed = dub("report", Some("8"), "loudness=match stream-id=loud-report");
    for segment in &dubbed.run.segments {
        let (input, output) = (
            segment.get::<f64>("loudness-in").expect("loudness-in"),
            segment.get::<f64>("loudness-out").expect("loudness-out"),
        );
        let gain = segment.get::<f64>("loudness-gain-db").expect("gain");
        if input > -70.0 {
            assert!((output - input).abs() < 0.5, "{segment}");
            assert!(gain < -5.0, "a hot dub is lowered: {segment}");
        }
    }
    let metrics = gststsdub::ops::metrics::render();
    for series in [
        "worker_loudness_lufs{stream_id=\"loud-report\",window=\"integrated\"}",
        "worker_loudness_lufs{stream_id=\"loud-report\",window=\"short_term\"}",
        "worker_true_peak_dbtp{stream_id=\"loud-report\"}",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
}
