// SPDX-License-Identifier: MPL-2.0

//! Where `segmentation=pauses` cuts every clip of the speech set
//! (`scripts/make-speech-set.sh`), judged against each voice's clean speech,
//! without a pipeline: each clip's levels are measured once, then the
//! segmenter runs on them at 2500 and 4000 ms. For working on the cut
//! policy: a whole set in seconds. The suite checks the same through the
//! element (`tests/segmentation.rs`).
//!
//! ```text
//! cargo run --release --example cut_sweep -- target/debug/fixtures/speech-set
//! ```
//!
//! One row per clip, then the totals by why each cut was made and whether
//! the window it was made in held a gap at all, and by background.
//! `MIN_PAUSE_MS` and `THRESHOLD` set `min-pause` and `pause-threshold`
//! (150, 25);
//! `DETAIL=CLIP` lists that clip's cuts at 2500 ms beside the nearest
//! silence of its clean speech. `ORACLE=1` gives the policy the clean
//! speech's own levels (a perfect detector): what the policy itself can
//! reach on frame boundaries. `SHORTEST_PERMILLE` sets the shortest
//! duration in thousandths of the longest (200, the element's default);
//! `DIST=1` prints, for each cut inside a word, how far the nearest cut
//! between words would have been.

use std::path::{Path, PathBuf};

use gststsdub::audio::level::{BandMeter, FrameLevels, LevelMeter, SampleLayout};
use gststsdub::timeline::cut_policy::{CutRules, Segmentation};
use gststsdub::timeline::segmenter::{Frame, Segmenter, TimelineRules};

#[path = "support/bench.rs"]
mod bench;

/// The samples of a 48 kHz mono 16-bit WAV.
fn wav_samples(path: &Path) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .ok_or("no data chunk")?
        + 8;
    Ok(bytes[data..]
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect())
}

/// Per ms of a 48 kHz mono 16-bit WAV: silent (RMS under -50 dBFS) or not.
fn clean_silence(path: &Path) -> Result<Vec<bool>, String> {
    Ok(wav_samples(path)?
        .chunks(48)
        .map(|ms| (ms.iter().map(|s| s * s).sum::<f32>() / ms.len() as f32).sqrt() < 0.003)
        .collect())
}

/// The levels a perfect detector would give: each frame's blocks measured
/// on the clean speech alone (the decoder's frame `k` is the speech's
/// samples `1024 k ..`, measured: the envelopes line up at lag 0).
fn clean_levels(path: &Path, frames: usize) -> Result<Vec<Option<FrameLevels>>, String> {
    let mut bytes: Vec<u8> = wav_samples(path)?
        .into_iter()
        .flat_map(f32::to_ne_bytes)
        .collect();
    bytes.resize(frames * 1024 * 4, 0);
    let mut meter = BandMeter::default();
    let mono = SampleLayout {
        rate: 48_000,
        channels: 1,
        planar: false,
    };
    Ok(bytes
        .chunks(1024 * 4)
        .map(|frame| Some(meter.frame_levels(frame, mono)))
        .collect())
}

/// Silent runs of at least 20 ms: (first ms, end ms).
fn silence_runs(silent: &[bool]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (ms, s) in silent.iter().enumerate() {
        match (s, start) {
            (true, None) => start = Some(ms),
            (false, Some(from)) => {
                if ms - from >= 20 {
                    runs.push((from, ms));
                }
                start = None;
            }
            _ => {}
        }
    }
    runs
}

struct Verdict {
    cuts: usize,
    inside: usize,
    in_pauses: usize,
}

fn judge_reasons(
    cuts: &[(usize, &'static str)],
    silent: &[bool],
    tally: &mut std::collections::BTreeMap<String, (usize, usize)>,
) {
    for &(at, reason) in cuts {
        let v = judge(&[at], silent);
        let entry = tally.entry(reason.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += v.inside;
    }
}

fn judge(cuts_ms: &[usize], silent: &[bool]) -> Verdict {
    let mut verdict = Verdict {
        cuts: cuts_ms.len(),
        inside: 0,
        in_pauses: 0,
    };
    for &at in cuts_ms {
        let silent_at = silent.get(at).copied().unwrap_or(false);
        let before = silent[..at.min(silent.len())]
            .iter()
            .rev()
            .take_while(|s| **s)
            .count();
        let after = silent[at.min(silent.len())..]
            .iter()
            .take_while(|s| **s)
            .count();
        if !silent_at || before.min(after) < 10 {
            verdict.inside += 1;
        } else if before + after >= 100 {
            verdict.in_pauses += 1;
        }
    }
    verdict
}

/// Each cut inside a word, with how far (ms) the nearest place that is
/// not lies (None: none within 400 ms).
fn print_distances(stem: &str, cuts: &[(usize, &'static str)], silent: &[bool]) {
    for &(at, _) in cuts {
        if judge(&[at], silent).inside == 1 {
            let distance = (0..400).find(|d| {
                (at >= *d && judge(&[at - d], silent).inside == 0)
                    || judge(&[at + d], silent).inside == 0
            });
            println!("DIST {stem} {at} {distance:?}");
        }
    }
}

/// The shortest duration in thousandths of the longest.
fn shortest_permille() -> u64 {
    std::env::var("SHORTEST_PERMILLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn cuts_ms(buffers: &[gst::Buffer], levels: &[Option<FrameLevels>], longest_ms: u64) -> Vec<usize> {
    cuts_with_reasons(buffers, levels, longest_ms)
        .into_iter()
        .map(|(at, _)| at)
        .collect()
}

fn cuts_with_reasons(
    buffers: &[gst::Buffer],
    levels: &[Option<FrameLevels>],
    longest_ms: u64,
) -> Vec<(usize, &'static str)> {
    let rules = CutRules {
        segmentation: Segmentation::Pauses,
        shortest: longest_ms * shortest_permille() * 1_000,
        longest: longest_ms * 1_000_000,
        min_pause: std::env::var("MIN_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(150)
            * 1_000_000,
        threshold_percent: std::env::var("THRESHOLD")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(25),
    };
    let mut segmenter = Segmenter::new(rules, TimelineRules::default());
    segmenter.set_format(48_000, 21_333_333);
    let mut starts = Vec::new();
    for (buffer, levels) in buffers.iter().zip(levels) {
        let frame = Frame {
            data: (),
            pts: buffer.pts().map_or(0, |p| p.nseconds()),
            duration: 21_333_333,
        };
        let wanted = segmenter.wants_levels();
        for segment in segmenter.push(frame, false, levels.filter(|_| wanted)) {
            starts.push((segment.start(), segment.cut.as_str()));
        }
    }
    // The clip's clean speech starts at the end of the priming frame.
    // A segment's start is where the one before it was cut, and why.
    starts
        .windows(2)
        .map(|pair| {
            (
                (pair[1].0.saturating_sub(21_333_333) / 1_000_000) as usize,
                pair[0].1,
            )
        })
        .collect()
}

fn main() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("target/debug/fixtures/speech-set".into()),
    );
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "m4a"))
        .collect();
    clips.sort();
    let mut totals = [(0, 0, 0); 2];
    // Per background: (cuts, inside words) at 2500 and at 4000 ms.
    let mut by_background = std::collections::BTreeMap::<String, [(usize, usize); 2]>::new();
    let mut tally = std::collections::BTreeMap::new();
    println!(
        "| clip | 2500: cuts, inside words, in pauses | 4000: cuts, inside words, in pauses |"
    );
    println!("| --- | --- | --- |");
    for clip in &clips {
        let stem = clip
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let voice = stem.split('-').next().unwrap_or("");
        let silent = clean_silence(&dir.join(format!("{voice}.clean.wav")))?;
        let (config, buffers) = bench::frames(clip)?;
        let levels = if std::env::var("ORACLE").is_ok() {
            clean_levels(&dir.join(format!("{voice}.clean.wav")), buffers.len())?
        } else {
            let mut meter = LevelMeter::new(&config)?;
            buffers
                .iter()
                .map(|b| meter.measure(b).ok().flatten())
                .collect()
        };
        if std::env::var("DETAIL").is_ok_and(|d| stem.contains(&d)) {
            for (at, reason) in cuts_with_reasons(&buffers, &levels, 2500) {
                let gaps = silence_runs(&silent);
                let nearest = gaps.iter().min_by_key(|(a, b)| (*a + *b) / 2).copied();
                let nearest = gaps
                    .iter()
                    .min_by_key(|(a, b)| ((a + b) / 2).abs_diff(at))
                    .copied()
                    .or(nearest);
                println!("cut {at} ms ({reason}): nearest silence {nearest:?}");
            }
        }
        let with_reasons = cuts_with_reasons(&buffers, &levels, 2500);
        if std::env::var("DIST").is_ok() {
            print_distances(&stem, &with_reasons, &silent);
        }
        judge_reasons(&with_reasons, &silent, &mut tally);
        // The frame boundaries from the shortest duration to 2500 ms.
        let first = ((2500 * shortest_permille() / 1000) as f64 / 21.333).ceil() as usize;
        let mut previous = 0usize;
        for &(at, reason) in &with_reasons {
            let possible = (first..=117).any(|k| {
                let t = previous + (k as f64 * 21.333) as usize;
                judge(&[t], &silent).inside == 0
            });
            let entry = tally
                .entry(format!("{reason}, a gap was there: {possible}"))
                .or_default();
            entry.0 += 1;
            entry.1 += judge(&[at], &silent).inside;
            previous = at;
        }
        let mut row = format!("| {stem} |");
        for (i, longest) in [2500u64, 4000].into_iter().enumerate() {
            let v = judge(&cuts_ms(&buffers, &levels, longest), &silent);
            row += &format!(
                " {}, {}, {:.0} % |",
                v.cuts,
                v.inside,
                100.0 * v.in_pauses as f64 / v.cuts.max(1) as f64
            );
            let background = stem.split('-').nth(1).unwrap_or("").to_owned();
            let entry = &mut by_background.entry(background).or_default()[i];
            entry.0 += v.cuts;
            entry.1 += v.inside;
            totals[i].0 += v.cuts;
            totals[i].1 += v.inside;
            totals[i].2 += v.in_pauses;
        }
        println!("{row}");
    }
    println!("2500 ms, by reason (cuts, inside words): {tally:?}");
    for (background, [at_2500, at_4000]) in &by_background {
        println!(
            "{background}: {} of {} inside words at 2500 ms, {} of {} at 4000 ms",
            at_2500.1, at_2500.0, at_4000.1, at_4000.0
        );
    }
    for (i, longest) in [2500, 4000].into_iter().enumerate() {
        let (cuts, inside, pauses) = totals[i];
        println!(
            "{longest} ms: {cuts} cuts, {inside} inside words, {:.0} % in pauses",
            100.0 * pauses as f64 / cuts.max(1) as f64
        );
    }
    Ok(())
}
