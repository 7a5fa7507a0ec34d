// SPDX-License-Identifier: MPL-2.0

//! Measures A/V sync in a recording of the `marks` sample
//! (`scripts/make-sample.sh OUT SECONDS marks`): the time of each white flash
//! in the video against the onset of the beep nearest to it. Uses ffmpeg.
//!
//! ```text
//! cargo run --example measure_sync -- recording.flv [AUDIO_TRACK] [--by-stamps]
//! ```
//!
//! Prints one line per mark, `mark <flash s> <beep s> <offset ms>`, then
//! `max_abs_offset_ms <n>`; exits 1 when no mark pairs up.
//!
//! A player plays audio by sample count from its first timestamp, which is
//! where the beep is placed by default. `--by-stamps` places it where the
//! timestamp of the AAC frame that carries it says instead: the two differ
//! when a source's stamps settle after its first frames (rtspsrc's do by
//! tens of ms in its first second), and the difference is what such a
//! source adds by itself.

use std::process::Command;

/// Times (s) of frames much brighter than the one before: the flashes.
fn flash_times(file: &str) -> Result<Vec<f64>, String> {
    let output = Command::new("ffmpeg")
        .args(["-v", "info", "-copyts", "-i", file, "-map", "0:v:0"])
        .args(["-vf", "scale=16:16,format=gray,showinfo", "-f", "null", "-"])
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let mut times = Vec::new();
    let mut previous = 255.0;
    for line in log.lines().filter(|l| l.contains("Parsed_showinfo")) {
        let field = |key: &str| line.split(key).nth(1).map(|rest| rest.trim_start());
        let time =
            field("pts_time:").and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok());
        let mean = field("mean:[").and_then(|r| r.split([' ', ']']).next()?.parse::<f64>().ok());
        if let (Some(time), Some(mean)) = (time, mean) {
            if mean > previous + 60.0 {
                times.push(time);
            }
            previous = mean;
        }
    }
    Ok(times)
}

/// Times (s) where the audio turns loud after at least a second of quiet.
fn beep_times(file: &str, track: &str, by_stamps: bool) -> Result<Vec<f64>, String> {
    // MPEG-TS lists the stream under its program too: the first line.
    let start: f64 = probe(file, track, "stream=start_time")?
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(0.0);
    let rate = 8000.0;
    let pcm = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-copyts",
            "-i",
            file,
            "-map",
            &format!("0:{track}"),
            "-ac",
            "1",
            "-ar",
            "8000",
            "-f",
            "s16le",
            "-",
        ])
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?
        .stdout;
    let samples: Vec<f64> = pcm
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])).abs() / 32768.0)
        .collect();
    let mut times = Vec::new();
    let mut quiet = 0usize;
    let stamps = if by_stamps {
        Some(frame_stamps(file, track)?)
    } else {
        None
    };
    for (i, level) in samples.iter().enumerate() {
        if *level > 0.1 {
            if quiet as f64 >= rate {
                let media = i as f64 / rate;
                times.push(match &stamps {
                    Some(stamps) => stamps.place(media),
                    None => start + media,
                });
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    Ok(times)
}

/// Each AAC frame's timestamp, in order, and the frames' duration (s).
struct FrameStamps {
    pts: Vec<f64>,
    frame: f64,
}

impl FrameStamps {
    /// Where the stamps put the audio `media` seconds into the decoded track.
    fn place(&self, media: f64) -> f64 {
        let index = ((media / self.frame) as usize).min(self.pts.len().saturating_sub(1));
        self.pts
            .get(index)
            .map_or(media, |pts| pts + media - index as f64 * self.frame)
    }
}

/// What ffprobe shows of `entries` of `track` in `file`, one CSV line each.
fn probe(file: &str, track: &str, entries: &str) -> Result<String, String> {
    Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            track,
            "-show_entries",
            entries,
        ])
        .args(["-of", "csv=p=0", file])
        .output()
        .map_err(|e| format!("ffprobe: {e}"))
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn frame_stamps(file: &str, track: &str) -> Result<FrameStamps, String> {
    let probe = |entries: &str| probe(file, track, entries);
    let rate: f64 = probe("stream=sample_rate")?
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .ok_or("no sample rate")?;
    let pts: Vec<f64> = probe("packet=pts_time")?
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    if pts.is_empty() {
        return Err("no audio packets".into());
    }
    Ok(FrameStamps {
        pts,
        frame: 1024.0 / rate,
    })
}

fn main() {
    let by_stamps = std::env::args().any(|a| a == "--by-stamps");
    let mut positional = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let Some(file) = positional.next() else {
        eprintln!("usage: measure_sync RECORDING [AUDIO_TRACK] [--by-stamps]");
        std::process::exit(2);
    };
    // Which audio track's beeps: 0 (the first) unless told.
    let track = format!("a:{}", positional.next().unwrap_or_else(|| "0".into()));
    let (flashes, beeps) = match (flash_times(&file), beep_times(&file, &track, by_stamps)) {
        (Ok(f), Ok(b)) => (f, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("measure_sync: {e}");
            std::process::exit(2);
        }
    };
    let mut worst: Option<f64> = None;
    for flash in &flashes {
        let Some(beep) = beeps
            .iter()
            .min_by(|a, b| (*a - flash).abs().total_cmp(&(*b - flash).abs()))
        else {
            continue;
        };
        let offset_ms = (beep - flash) * 1000.0;
        // A beep more than a second away belongs to another mark.
        if offset_ms.abs() > 1000.0 {
            continue;
        }
        println!("mark {flash:.3} {beep:.3} {offset_ms:.1}");
        worst = Some(worst.map_or(offset_ms.abs(), |w: f64| w.max(offset_ms.abs())));
    }
    match worst {
        Some(worst) => println!("max_abs_offset_ms {worst:.1}"),
        None => {
            eprintln!(
                "measure_sync: no flash pairs with a beep ({} flashes, {} beeps)",
                flashes.len(),
                beeps.len()
            );
            std::process::exit(1);
        }
    }
}
