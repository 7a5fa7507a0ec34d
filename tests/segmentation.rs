// SPDX-License-Identifier: MPL-2.0

//! Where segments are cut: `segmentation=pauses` on a speech clip whose
//! clean speech tells where the words are, and the sample timeline against
//! jittered and broken timestamps. Non-live, so they run faster than real time.

mod common;

use std::time::Duration;

use common::*;

const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Clean-speech samples per millisecond (the WAV is 48 kHz).
const PER_MS: usize = 48;

/// Per millisecond of the clean speech: silent or not (RMS below -50 dBFS).
fn silent_ms(clean: &[f32]) -> Vec<bool> {
    clean.chunks(PER_MS).map(|ms| rms(ms) < 0.003).collect()
}

/// The silent run of the clean speech around `at_ms`: its length in ms,
/// and how far the cut is from its nearer edge; None if `at_ms` is not silent.
fn silence_around(silent: &[bool], at_ms: usize) -> Option<(usize, usize)> {
    if !*silent.get(at_ms)? {
        return None;
    }
    let before = silent[..at_ms].iter().rev().take_while(|s| **s).count();
    let after = silent[at_ms..].iter().take_while(|s| **s).count();
    Some((before + after, before.min(after)))
}

/// How long before stream time 0 the first audio packet of `file` starts.
fn priming_ns(file: &std::path::Path) -> u64 {
    let output = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-read_intervals",
            "%+#1",
        ])
        .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let first: f64 = text
        .split([',', '\n'])
        .find(|t| !t.trim().is_empty())
        .and_then(|t| t.trim().parse().ok())
        .expect("a packet time");
    (-first * 1e9).max(0.0).round() as u64
}

/// Where each segment but the first starts, in ms of `clip`'s clean speech.
fn cut_times_ms(run: &Run, clip: &std::path::Path) -> Vec<usize> {
    let pts: Vec<u64> = run
        .segments
        .iter()
        .map(|s| s.get::<u64>("pts").expect("pts"))
        .collect();
    // The clip's first AAC frame is the encoder's priming, presented before
    // stream time 0 (the MP4 edit list): ffprobe says by how much.
    let origin = pts[0] + priming_ns(clip);
    pts[1..]
        .iter()
        .map(|p| ((p - origin) / 1_000_000) as usize)
        .collect()
}

struct Cuts {
    /// Stream time of each cut (the start of every segment but the first), ms.
    at_ms: Vec<usize>,
    durations_ms: Vec<u64>,
    reasons: Vec<String>,
}

/// Runs the speech clip through stsdub and the echo STS with `props`.
fn cuts_of_the_speech_clip(props: &str) -> (Cuts, Run) {
    let (clip, _) = speech_clip();
    let sts = EchoSts::start(&[]);
    let output = scratch(&format!(
        "segmentation-{}.flv",
        props.replace([' ', '='], "_")
    ));
    let run = run_pipeline(
        &file_to_flv(&clip, &output, &format!("sts-url={} {props}", sts.url)),
        RUN_LIMIT,
    );
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    let cuts = Cuts {
        at_ms: cut_times_ms(&run, &clip),
        durations_ms: run
            .segments
            .iter()
            .map(|s| s.get::<u64>("duration-ms").expect("duration-ms"))
            .collect(),
        reasons: run.field_values("cut"),
    };
    (cuts, run)
}

/// Checks that at most `most_inside` cuts fall inside words (the clean
/// speech not silent [`BETWEEN_WORDS_MARGIN_MS`] on each side) and returns
/// the share of cuts in a pause of 100 ms or more.
#[track_caller]
fn assert_cuts_between_words(cuts: &Cuts, longest_ms: u64, most_inside: usize) -> f64 {
    let (_, clean) = speech_clip();
    let silent = silent_ms(&decoded_mono(&clean, 48_000));
    let mut in_pauses = 0;
    let mut splits = Vec::new();
    for (&at, reason) in cuts.at_ms.iter().zip(&cuts.reasons) {
        let around = silence_around(&silent, at);
        eprintln!("cut at {at} ms ({reason}): clean speech silence (ms, margin) {around:?}");
        match around {
            Some((run, margin)) if margin >= BETWEEN_WORDS_MARGIN_MS => {
                in_pauses += usize::from(run >= 100)
            }
            _ => splits.push(at),
        }
    }
    eprintln!(
        "{longest_ms} ms: {} of {} cuts inside words",
        splits.len(),
        cuts.at_ms.len()
    );
    assert!(
        splits.len() <= most_inside,
        "cuts at {splits:?} ms split a word (the clean speech is not silent 10 ms around them); all cuts {:?}",
        cuts.at_ms
    );
    // The last segment ends at EOS; none is longer than the longest + 1 frame.
    for (i, duration) in cuts.durations_ms.iter().enumerate() {
        assert!(
            *duration <= longest_ms + 22,
            "segment {i} lasts {duration} ms, longer than {longest_ms} ms + one frame"
        );
    }
    in_pauses as f64 / cuts.at_ms.len() as f64
}

/// Cuts the speech clip at pauses of at most `longest_ms`, checks that
/// every cut falls between words, and returns the share in pauses >= 100 ms.
fn share_of_cuts_in_pauses(longest_ms: u64, most_inside: usize) -> (f64, Run) {
    let (cuts, run) = cuts_of_the_speech_clip(&format!(
        "segmentation=pauses segment-duration={longest_ms}"
    ));
    let share = assert_cuts_between_words(&cuts, longest_ms, most_inside);
    eprintln!(
        "{longest_ms} ms: {} cuts, {:.0} % in pauses >= 100 ms, reasons {:?}",
        cuts.at_ms.len(),
        share * 100.0,
        cuts.reasons
    );
    (share, run)
}

#[test]
fn pauses_at_4_s_cut_between_words_and_mostly_in_pauses() {
    // None of 27 (7d19e16: 3 of 20): the goal.
    let (share, run) = share_of_cuts_in_pauses(4000, 0);
    assert!(share >= 0.75, "{:.0} % of cuts in pauses", share * 100.0);
    assert!(
        run.statuses().iter().all(|s| s == "dubbed"),
        "{:?}",
        run.statuses()
    );
}

#[test]
fn pauses_at_2_5_s_cut_between_words_half_in_pauses() {
    // Measured at this commit (the goal is none): 5 of 38 (7d19e16: 9 of 34).
    let (share, _) = share_of_cuts_in_pauses(2500, 5);
    assert!(share >= 0.5, "{:.0} % of cuts in pauses", share * 100.0);
}

#[test]
fn fallback_audio_cut_at_pauses_is_the_input_frame_for_frame() {
    let (clip, _) = speech_clip();
    let reference = scratch("speech-clip-reference.flv");
    let remux = run_pipeline(
        &format!(
            "filesrc location={} ! qtdemux name=d d.audio_0 ! queue ! aacparse ! flvmux ! filesink location={}",
            clip.display(),
            reference.display()
        ),
        RUN_LIMIT,
    );
    assert!(remux.eos, "{remux:?}");
    let output = scratch("segmentation-fallback.flv");
    let run = run_pipeline(
        &file_to_flv(
            &clip,
            &output,
            &format!(
                "sts-url={} segmentation=pauses segment-duration=4000",
                dead_url()
            ),
        ),
        RUN_LIMIT,
    );
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(run.statuses().iter().all(|s| s == "fallback"));
    assert!(
        run.field_values("cut").iter().any(|c| c == "pause"),
        "cut at pauses"
    );
    let md5s = |file| -> Vec<String> { packets(file, "a").into_iter().map(|p| p.md5).collect() };
    assert_eq!(
        md5s(&reference),
        md5s(&output),
        "every original frame, once, in order"
    );
}

/// 60 s of AAC frames through appsrc with their timestamps moved by `shift`
/// (frame index → ns to add), non-live: the segments stsdub cuts and the
/// output's audio packets.
fn segments_of_shifted_timestamps(name: &str, shift: impl Fn(u64) -> i64) -> (Run, Vec<Packet>) {
    let frames = 2813u64; // 60.01 s at 48 kHz
    let (caps, buffers) = aac_frames(frames as usize);
    let output = scratch(&format!("{name}.flv"));
    let (running, src) = appsrc_to_stsdub(&caps, "aacparse !", "", &output);
    for (index, buffer) in buffers.into_iter().enumerate() {
        let index = index as u64;
        let ideal = index * 1024 * 1_000_000_000 / 48_000;
        let mut buffer = buffer.copy();
        let b = buffer.make_mut();
        b.set_pts(gst::ClockTime::from_nseconds(
            (ideal as i64 + shift(index)).max(0) as u64,
        ));
        // As a source that stamps on arrival: no duration.
        b.set_duration(gst::ClockTime::NONE);
        src.push_buffer(buffer).expect("pushed");
    }
    src.end_of_stream().expect("eos");
    let run = running.finish(RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    (run, packets(&output, "a"))
}

/// ±15 ms of arrival jitter, deterministic.
fn jitter(index: u64) -> i64 {
    (((index * 7919) % 31) as i64 - 15) * 1_000_000
}

#[test]
fn timestamp_jitter_gives_ten_segments_and_a_real_gap_reanchors() {
    let (run, packets) = segments_of_shifted_timestamps("jitter", jitter);
    assert_eq!(run.segments.len(), 10, "{:?}", run.field_values("cut"));
    assert_eq!(run.frames(), 2813);
    // The output is on the sample timeline: one frame after another.
    for pair in packets.windows(2).skip(1) {
        assert!((21..=22).contains(&(pair[1].pts - pair[0].pts)), "{pair:?}");
    }

    // The same source, 600 ms of it missing at 32 s: re-anchored there.
    let gap_at = 1500;
    let (run, packets) = segments_of_shifted_timestamps("jitter-gap", |i| {
        jitter(i) + if i >= gap_at { 600_000_000 } else { 0 }
    });
    assert_eq!(run.segments.len(), 11, "{:?}", run.field_values("cut"));
    assert_eq!(
        run.field_values("cut")
            .iter()
            .filter(|c| *c == "discont")
            .count(),
        1
    );
    assert_eq!(run.frames(), 2813, "no audio invented or lost");
    assert_eq!(packets.len(), 2813);
    let steps: Vec<i64> = packets
        .windows(2)
        .skip(1)
        .map(|p| p[1].pts - p[0].pts)
        .collect();
    let holes: Vec<&i64> = steps.iter().filter(|s| **s > 22).collect();
    assert_eq!(holes.len(), 1, "one hole, the input's: {holes:?}");
    assert!((600..=660).contains(holes[0]), "{holes:?}");
}

#[test]
fn corrupt_frames_mid_stream_are_measured_past_and_go_out_untouched() {
    let frames = 2813usize;
    let (caps, buffers) = aac_frames(frames);
    let output = scratch("corrupt-frames.flv");
    let (running, src) = appsrc_to_stsdub(&caps, "", "segmentation=pauses", &output);
    for (index, buffer) in buffers.into_iter().enumerate() {
        // Half a second of corrupt frames after 20 s, as a broken source
        // sends: the level meter's decoder refuses each and goes on.
        let buffer = if (940..965).contains(&index) {
            let mut garbage = gst::Buffer::from_slice(vec![0xa5u8; buffer.size()]);
            let b = garbage.make_mut();
            b.set_pts(buffer.pts());
            b.set_duration(buffer.duration());
            garbage
        } else {
            buffer
        };
        src.push_buffer(buffer).expect("pushed");
    }
    src.end_of_stream().expect("eos");
    let run = running.finish(RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(
        !run.warnings.iter().any(|w| w.contains("level meter")),
        "the meter survives corrupt frames: {:?}",
        run.warnings
    );
    assert_eq!(run.frames(), frames as u64, "every frame in a segment");
    assert_eq!(packets(&output, "a").len(), frames, "every frame out");
}

/// Where one clip of the set was cut, judged against its clean speech.
struct ClipCuts {
    clip: String,
    cuts: usize,
    /// Cuts (ms, and why they were made) where the clean speech is not
    /// silent 10 ms on each side.
    inside_words: Vec<(usize, String)>,
    /// Cuts in a silence of the clean speech of 100 ms or more.
    in_pauses: usize,
    longest_segment_ms: u64,
}

/// Per millisecond of a clean-speech WAV: silent or not.
fn clean_silence(clean: &std::path::Path) -> Vec<bool> {
    silent_ms(&decoded_mono(clean, 48_000))
}

/// Cuts `clip` (audio only) at pauses of at most `longest_ms`, with no STS
/// (every segment falls back at once: where it is cut is all that counts).
fn cuts_of_clip(clip: &std::path::Path, silent: &[bool], longest_ms: u64) -> ClipCuts {
    let run = run_pipeline(
        &format!(
            "filesrc location=\"{}\" ! qtdemux ! aacparse ! dub.audio_sink \
             stsdub name=dub sts-url={} segmentation=pauses segment-duration={longest_ms} \
             dub.audio_src ! fakesink",
            clip.display(),
            dead_url()
        ),
        RUN_LIMIT,
    );
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    let at_ms = cut_times_ms(&run, clip);
    let reasons = run.field_values("cut");
    let mut inside_words = Vec::new();
    let mut in_pauses = 0;
    for (&at, reason) in at_ms.iter().zip(&reasons) {
        match silence_around(silent, at) {
            Some((run, margin)) if margin >= BETWEEN_WORDS_MARGIN_MS => {
                in_pauses += usize::from(run >= 100)
            }
            _ => inside_words.push((at, reason.clone())),
        }
    }
    let durations: Vec<u64> = run
        .segments
        .iter()
        .map(|s| s.get::<u64>("duration-ms").expect("duration-ms"))
        .collect();
    ClipCuts {
        clip: clip
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        cuts: at_ms.len(),
        inside_words,
        in_pauses,
        longest_segment_ms: durations.into_iter().max().unwrap_or(0),
    }
}

/// A cut is between words when the clean speech is silent this long on
/// each side of it.
const BETWEEN_WORDS_MARGIN_MS: usize = 10;

/// Every clip of the set at `longest_ms`, two at a time, in the set's order.
fn cuts_of_the_set(longest_ms: u64) -> Vec<ClipCuts> {
    let set = speech_set();
    let mut clips: Vec<std::path::PathBuf> = std::fs::read_dir(&set)
        .expect("the set")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "m4a"))
        .collect();
    clips.sort();
    assert_eq!(clips.len(), 36, "4 voices x 3 backgrounds x 3 levels");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(clip) = clips.get(index) else { break };
                    let stem = clip.file_stem().map(|s| s.to_string_lossy().into_owned());
                    let voice = stem
                        .as_deref()
                        .and_then(|s| s.split('-').next())
                        .unwrap_or("");
                    let silent = clean_silence(&set.join(format!("{voice}.clean.wav")));
                    let cuts = cuts_of_clip(clip, &silent, longest_ms);
                    results.lock().expect("results").push((index, cuts));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, cuts)| cuts).collect()
}

/// Every clip at `longest_ms`, its table printed: no segment longer than
/// the longest plus one frame, at least `min_share` of the set's cuts in
/// pauses of 100 ms or more, and at most `most_inside` of its cuts inside
/// words. The cuts are the same on every run (a file, no STS, the same
/// decoder), so `most_inside` is what this commit measured: a cut policy
/// that does worse anywhere fails. The goal is none (docs/users.md, "Where
/// segments are cut").
fn assert_set_cut(longest_ms: u64, min_share: f64, most_inside: usize) {
    let results = cuts_of_the_set(longest_ms);
    eprintln!("| clip | cuts | inside words | in pauses >= 100 ms | longest segment |");
    eprintln!("| --- | --- | --- | --- | --- |");
    for r in &results {
        eprintln!(
            "| {} | {} | {} | {:.0} % | {} ms |",
            r.clip,
            r.cuts,
            r.inside_words.len(),
            100.0 * r.in_pauses as f64 / r.cuts.max(1) as f64,
            r.longest_segment_ms
        );
    }
    let cuts: usize = results.iter().map(|r| r.cuts).sum();
    let inside: usize = results.iter().map(|r| r.inside_words.len()).sum();
    let in_pauses: usize = results.iter().map(|r| r.in_pauses).sum();
    eprintln!("{longest_ms} ms: {cuts} cuts, {inside} inside words, {in_pauses} in pauses");
    for r in &results {
        assert!(
            r.longest_segment_ms <= longest_ms + 22,
            "{}: a segment of {} ms",
            r.clip,
            r.longest_segment_ms
        );
    }
    assert!(
        in_pauses as f64 >= min_share * cuts as f64,
        "{in_pauses} of {cuts} cuts in pauses"
    );
    assert!(
        inside <= most_inside,
        "{inside} of {cuts} cuts inside words, {most_inside} measured: {:#?}",
        results
            .iter()
            .map(|r| format!("{}: {:?}", r.clip, r.inside_words))
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_speech_set_at_4_s_is_cut_no_worse_than_measured() {
    // 7d19e16's policy: 150 inside words, 40 % in pauses (cut_sweep).
    assert_set_cut(4000, 0.6, 48);
}

#[test]
fn the_speech_set_at_2_5_s_is_cut_no_worse_than_measured() {
    // 7d19e16's policy: 290 inside words, 34 % in pauses (cut_sweep).
    assert_set_cut(2500, 0.4, 132);
}
