// SPDX-License-Identifier: MPL-2.0

//! What the audience hears when the output is re-encoded: dubbed speech
//! stretched to fit instead of cut off (`fit=stretch`), the original kept
//! under the voice (`original-volume`), switches and joins without clicks,
//! and a timeline that keeps every sample and A/V for ten minutes. Measured
//! on the decoded output. Non-live runs of the speech clip (speech over a
//! noise bed) against the echo STS answering with a tone, a "voice" with no
//! ambience whose end is easy to find.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

const RUN_LIMIT: Duration = Duration::from_secs(240);
const RATE: u32 = 48_000;
const PER_MS: usize = (RATE / 1000) as usize;
/// One AAC frame at 48 kHz, in ms.
const FRAME_MS: f64 = 1024.0 / 48.0;

/// One segment of an output, where it lies in the decoded audio.
#[derive(Debug, Clone)]
struct Span {
    /// Sample index of its start in the decoded output.
    start: usize,
    duration_ms: u64,
    status: String,
}

impl Span {
    fn end(&self) -> usize {
        self.start + self.duration_ms as usize * PER_MS
    }
}

struct Dubbed {
    run: Run,
    output: PathBuf,
    /// The output decoded, mono, 48 kHz.
    audio: Vec<f32>,
    spans: Vec<Span>,
}

fn spans(run: &Run) -> Vec<Span> {
    let pts: Vec<u64> = run
        .segments
        .iter()
        .map(|s| s.get::<u64>("pts").expect("pts"))
        .collect();
    let origin = pts.first().copied().unwrap_or(0);
    run.segments
        .iter()
        .zip(&pts)
        .map(|(s, pts)| Span {
            start: ((pts - origin) * u64::from(RATE) / 1_000_000_000) as usize,
            duration_ms: s.get::<u64>("duration-ms").expect("duration-ms"),
            status: s.get::<String>("status").expect("status"),
        })
        .collect()
}

fn finished(run: Run, output: PathBuf) -> Dubbed {
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    let audio = decoded_mono(&output, RATE);
    Dubbed {
        spans: spans(&run),
        run,
        output,
        audio,
    }
}

/// The speech clip through stsdub with `props`, the echo STS run with `echo`.
fn dub_clip(name: &str, props: &str, echo: &[&str]) -> Dubbed {
    let (clip, _) = speech_clip();
    let sts = EchoSts::start(echo);
    let output = scratch(&format!("voiceover-{name}.flv"));
    let run = run_pipeline(
        &file_to_flv(&clip, &output, &format!("sts-url={} {props}", sts.url)),
        RUN_LIMIT,
    );
    finished(run, output)
}

/// The clip's original audio as stsdub puts it out when nothing is dubbed:
/// the reference its output is measured against, sample for sample.
fn original_reference() -> Vec<f32> {
    let (clip, _) = speech_clip();
    let output = scratch("voiceover-reference.flv");
    let props = format!("sts-url={} segment-duration=3000", dead_url());
    let run = run_pipeline(&file_to_flv(&clip, &output, &props), RUN_LIMIT);
    finished(run, output).audio
}

fn db(ratio: f32) -> f32 {
    20.0 * ratio.max(1e-9).log10()
}

fn level_db(samples: &[f32]) -> f32 {
    db(rms(samples))
}

/// Every frame of the input is in the output, once (within one frame: the
/// MP4's priming frame), and the video is the input's, packet for packet.
#[track_caller]
fn assert_lengths_kept(dubbed: &Dubbed) {
    let (clip, _) = speech_clip();
    let input = packets(&clip, "a").len() as i64;
    let output = packets(&dubbed.output, "a");
    assert!(
        (output.len() as i64 - input).abs() <= 1,
        "{} audio packets out, {input} in",
        output.len()
    );
    // FLV cannot say -21 ms: flvmux puts the MP4's priming frame at 0 too;
    // and it counts in whole ms, 21 for 21.33.
    for pair in output[1..].windows(2) {
        let step = pair[1].pts - pair[0].pts - pair[0].duration;
        assert!((0..=1).contains(&step), "no gap: {pair:?}");
    }
    let md5s = |file| -> Vec<String> { packets(file, "v").into_iter().map(|p| p.md5).collect() };
    assert_eq!(md5s(&clip), md5s(&dubbed.output), "video untouched");
}

/// Whether each segment longer than `longer_ms` still has voice (the tone,
/// -15 dBFS) in the 10 ms before its last 5 ms.
fn ends_in_voice(dubbed: &Dubbed, longer_ms: u64) -> Vec<bool> {
    dubbed
        .spans
        .iter()
        .filter(|s| s.duration_ms > longer_ms)
        .map(|s| level_db(&dubbed.audio[s.end() - 15 * PER_MS..s.end() - 5 * PER_MS]) > -30.0)
        .collect()
}

#[test]
fn stretched_dubs_keep_every_word_that_trimmed_ones_cut_off() {
    // Dubbed speech 1.2 times its segment, its last 300 ms silent: in a
    // 2.5 s segment the voice lasts 2.7 s.
    let echo = [
        "--transform",
        "tone",
        "--duration-factor",
        "1.2",
        "--tail-silence-ms",
        "300",
    ];
    let trim = dub_clip("fit-trim", "segment-duration=2500 fit=trim", &echo);
    let stretch = dub_clip("fit-stretch", "segment-duration=2500 fit=stretch", &echo);
    for dubbed in [&trim, &stretch] {
        assert!(dubbed.run.statuses().iter().all(|s| s == "dubbed"));
        assert_lengths_kept(dubbed);
    }
    // A segment of d seconds is dubbed with 1.2 d - 0.3 s of voice: longer
    // than the segment from 1.5 s on (the last one, at EOS, may be shorter).
    let trimmed = ends_in_voice(&trim, 1600);
    let stretched = ends_in_voice(&stretch, 1600);
    eprintln!("trim: {trimmed:?}\nstretch: {stretched:?}");
    assert!(trimmed.len() >= 20);
    assert!(trimmed.iter().all(|v| *v), "trim cuts every voice off");
    assert!(stretched.iter().all(|v| !*v), "stretch cuts none");
    let factors: Vec<f64> = stretch
        .run
        .segments
        .iter()
        .filter(|s| s.get::<u64>("duration-ms").expect("duration") > 1600)
        .map(|s| s.get::<f64>("stretch").expect("stretch"))
        .collect();
    assert!(
        factors.iter().all(|f| *f > 1.05 && *f < 1.15),
        "2.7 s of voice into 2.5 s less a guard: {factors:?}"
    );
    assert!(
        stretch
            .run
            .field_values("fit")
            .iter()
            .any(|f| f == "stretched")
    );
    // The stretched voice is the tone, at its pitch: as loud in its middle.
    let middle = &stretch.spans[3];
    let voice = &stretch.audio[middle.start + 500 * PER_MS..middle.start + 1500 * PER_MS];
    assert!(
        (level_db(voice) + 15.0).abs() < 1.5,
        "{} dB",
        level_db(voice)
    );
}

/// The segments' silent tails ([end - 900 ms, end - 100 ms) of segments of
/// 3 s or more, dubbed with a 1 s silent tail): output level against the
/// reference's, in dB, per segment.
fn tail_levels(dubbed: &Dubbed, reference: &[f32]) -> Vec<(f32, f32)> {
    dubbed
        .spans
        .iter()
        .filter(|s| s.duration_ms >= 2900 && s.status == "dubbed")
        .map(|s| {
            let window = s.end() - 900 * PER_MS..s.end() - 100 * PER_MS;
            (
                level_db(&dubbed.audio[window.clone()]),
                level_db(&reference[window]),
            )
        })
        .collect()
}

#[test]
fn voice_over_keeps_the_ambience_under_the_voice_at_its_gain() {
    let echo = ["--transform", "tone", "--tail-silence-ms", "1000"];
    let reference = original_reference();
    let voice_over = dub_clip(
        "original-0.2",
        "segment-duration=3000 original-volume=0.2",
        &echo,
    );
    let replaced = dub_clip("original-0", "segment-duration=3000", &echo);
    for dubbed in [&voice_over, &replaced] {
        assert!(dubbed.run.statuses().iter().all(|s| s == "dubbed"));
        assert_lengths_kept(dubbed);
    }
    let under = tail_levels(&voice_over, &reference);
    eprintln!("original-volume=0.2, (output, input) dB: {under:?}");
    assert!(under.len() >= 15);
    for (out, input) in &under {
        assert!(
            (out - input + 13.98).abs() <= 1.5,
            "ambience at {:.1} dB relative, expected -14 ± 1.5",
            out - input
        );
    }
    let absent = tail_levels(&replaced, &reference);
    eprintln!("original-volume=0, (output, input) dB: {absent:?}");
    assert!(
        absent
            .iter()
            .all(|(out, input)| *out < -60.0 && *input > -50.0),
        "with 0 the ambience is gone"
    );
    // Under the voice, the original is there too, 14 dB down: the mix is
    // louder than the voice alone by the original's share.
    let span = &voice_over.spans[2];
    let voiced = span.start + 300 * PER_MS..span.start + 1500 * PER_MS;
    let (mixed, voice) = (
        rms(&voice_over.audio[voiced.clone()]),
        rms(&replaced.audio[voiced.clone()]),
    );
    let expected = (voice.powi(2) + (0.2 * rms(&reference[voiced])).powi(2)).sqrt();
    assert!(
        (db(mixed) - db(expected)).abs() < 0.5,
        "mix {:.2} dB, voice {:.2} dB, expected {:.2} dB",
        db(mixed),
        db(voice),
        db(expected)
    );
}

#[test]
fn the_click_measure_finds_a_hard_cut() {
    // A tone cut off mid-wave and the same tone faded out over 30 ms.
    let tone: Vec<f32> = (0..10 * RATE as usize)
        .map(|i| 0.25 * (i as f32 * 440.0 * std::f32::consts::TAU / RATE as f32).sin())
        .collect();
    let mut cut = tone.clone();
    cut[RATE as usize / 2 + 17..]
        .iter_mut()
        .for_each(|s| *s = 0.0);
    let mut faded = tone;
    for (i, s) in faded[RATE as usize / 2..].iter_mut().enumerate() {
        *s *= 1.0 - (i as f32 / (30 * PER_MS) as f32).min(1.0);
    }
    let at = RATE as usize / 2;
    assert!(click_score(&cut, RATE, at + 17) > 3.0);
    assert!(click_score(&faded, RATE, at) <= 1.0);
}

#[test]
fn a_dead_sts_in_voice_over_falls_back_to_full_level_without_a_click() {
    let (clip, _) = speech_clip();
    let reference = original_reference();
    let mut sts = Some(EchoSts::start(&[
        "--transform",
        "tone",
        "--tail-silence-ms",
        "1000",
    ]));
    let url = sts.as_ref().map(|s| s.url.clone()).unwrap_or_default();
    let output = scratch("voiceover-sts-killed.flv");
    let props = format!(
        "sts-url={url} segment-duration=3000 original-volume=0.2 timeout=3000 reconnect-delay=60000"
    );
    let running = Running::start(&file_to_flv(&clip, &output, &props));
    // Killed once it has taken the seventh fragment, which stsdub sends
    // only with at most max-inflight (3) unanswered: at least four are
    // dubbed, and the rest of the 20 meet a dead STS. (Waiting for six
    // dubbed segments instead raced the echo, which on a loaded machine
    // had answered all 20 before the sixth came out.)
    if let Some(echo) = &sts {
        echo.wait_for_log("sequence 6 ", RUN_LIMIT);
    }
    drop(sts.take());
    let dubbed = finished(running.finish(RUN_LIMIT), output);
    let statuses = dubbed.run.statuses();
    let first_fallback = statuses
        .iter()
        .position(|s| s == "fallback")
        .expect("segments fall back once the STS is gone");
    // An answer already on its way when the STS died may still arrive
    // after an earlier segment's was cut off (the echo answers fragments in
    // parallel): dubbed segments among the first max-inflight (3) after the
    // first fallback; from the last one on, every segment falls back.
    let last_dubbed = statuses
        .iter()
        .rposition(|s| s == "dubbed")
        .expect("dubbed before the STS is killed");
    assert!(last_dubbed < first_fallback + 3, "{statuses:?}");
    assert!(
        statuses.len() >= last_dubbed + 4,
        "a tail of fallbacks: {statuses:?}"
    );
    assert_lengths_kept(&dubbed);
    // After the switch, the original at full level: the reference's samples.
    for span in &dubbed.spans[last_dubbed.max(first_fallback) + 2..] {
        let whole = span.start..span.end().min(dubbed.audio.len());
        let difference = level_db(&dubbed.audio[whole.clone()]) - level_db(&reference[whole]);
        assert!(difference.abs() < 0.5, "fallback at {difference:.2} dB");
    }
    // No join stands out from the programme: neither between dubbed
    // segments nor at the switch.
    let scores: Vec<(usize, f32)> = dubbed.spans[1..]
        .iter()
        .map(|s| (s.start, click_score(&dubbed.audio, RATE, s.start)))
        .collect();
    eprintln!("click scores at each join: {scores:?}");
    let switch = dubbed.spans[first_fallback].start;
    for (at, score) in scores {
        assert!(
            score <= 1.0,
            "join at sample {at} (switch at {switch}) clicks: {score:.2} times the programme's 99th percentile"
        );
    }
}

#[test]
fn ten_minutes_of_voice_over_keep_every_sample_and_av() {
    let sample = long_sample(600);
    let sts = EchoSts::start(&[]);
    let output = scratch("voiceover-10-minutes.flv");
    let props = format!("sts-url={} original-volume=0.3", sts.url);
    let run = run_pipeline(&file_to_flv(&sample, &output, &props), RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert_eq!(run.segments.len(), 100);
    assert!(run.statuses().iter().all(|s| s == "dubbed"));
    // The same file in codec copy, nothing dubbed: the timeline stsdub
    // keeps when it re-encodes nothing.
    let copy = scratch("voiceover-10-minutes-copy.flv");
    let props = format!("sts-url={}", dead_url());
    let reference = run_pipeline(&file_to_flv(&sample, &copy, &props), RUN_LIMIT);
    assert!(
        reference.eos && reference.errors.is_empty(),
        "{reference:?}"
    );
    let frames = |file: &std::path::Path| packets(file, "a").len() as i64;
    let (frames_in, frames_out) = (frames(&sample), frames(&output));
    assert_eq!(frames_out, frames(&copy), "every frame the copy has");
    assert!(
        (frames_out - frames_in).abs() <= 1,
        "{frames_out} audio frames out, {frames_in} in"
    );
    let av_ms = |file: &std::path::Path| {
        (last_packet_end_s(file, "a") - last_packet_end_s(file, "v")) * 1000.0
    };
    let (av_in, av_copy, av_out) = (av_ms(&sample), av_ms(&copy), av_ms(&output));
    eprintln!("A/V at the end: {av_out:.1} ms re-encoded, {av_copy:.1} ms copy, {av_in:.1} ms in");
    assert!(
        (av_out - av_copy).abs() < 1.0,
        "re-encoding moved the end by {:.1} ms",
        av_out - av_copy
    );
    // The input's half-presented last frame is not played by GStreamer's
    // demuxer, and FLV's milliseconds round: at most a frame and a ms.
    assert!(
        (av_out - av_in).abs() <= FRAME_MS + 1.0,
        "A/V at the end {av_out:.1} ms, the input's {av_in:.1} ms"
    );
}

/// Where the last packet of `file`'s first `kind` stream ends, in seconds.
fn last_packet_end_s(file: &std::path::Path, kind: &str) -> f64 {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("{kind}:0")])
        .args([
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("packets");
    last.split(',')
        .map(|v| v.trim().parse::<f64>().expect("seconds"))
        .sum()
}

#[test]
fn live_voice_over_holds_the_encoder_look_ahead_within_the_latency() {
    // A live tone, 1 s segments: the encoder's last two frames of each
    // segment leave with the next one, still before their render time.
    let sts = EchoSts::start(&[]);
    let output = scratch("voiceover-live.flv");
    let props = format!(
        "sts-url={} segment-duration=1000 timeout=1500 original-volume=0.2",
        sts.url
    );
    let run = run_pipeline(&live_to_flv(8, &output, &props), RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(
        run.statuses().iter().all(|s| s == "dubbed"),
        "{:?}",
        run.reasons()
    );
    let lateness: Vec<f64> = run
        .segments
        .iter()
        .map(|s| s.get::<f64>("lateness-ms").expect("lateness-ms"))
        .collect();
    assert!(
        lateness.iter().all(|l| *l < 0.0),
        "decided before the deadline: {lateness:?}"
    );
    let audio = packets(&output, "a");
    assert_eq!(audio.len() as u64, run.frames(), "every frame once");
    for pair in audio.windows(2).skip(1) {
        let step = pair[1].pts - pair[0].pts;
        assert!((20..=22).contains(&step), "gap or overlap: {pair:?}");
    }
}
