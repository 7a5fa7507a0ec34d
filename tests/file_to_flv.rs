// SPDX-License-Identifier: MPL-2.0

//! Full pipelines: sample MP4 → stsdub (real echo STS process) → FLV, checked
//! with ffmpeg. Non-live, so they run faster than real time.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const RUN_LIMIT: Duration = Duration::from_secs(120);
/// One AAC frame at 48 kHz, in FLV's millisecond timebase (rounded up).
const FRAME_MS: i64 = 22;

/// Input audio packets as qtdemux hands them to stsdub (its first one is the
/// encoder's priming frame, which the MP4 edit list cuts and flvmux clamps to 0).
fn presented_audio() -> Vec<Packet> {
    packets(&reference_flv(), "a")
}

#[track_caller]
fn assert_gapless(audio: &[Packet]) {
    for pair in audio.windows(2).skip(1) {
        let step = pair[1].pts - pair[0].pts;
        assert!(
            (20..=FRAME_MS).contains(&step),
            "audio gap or overlap: {} → {} ms",
            pair[0].pts,
            pair[1].pts
        );
    }
}

#[test]
fn gst_inspect_finds_the_plugin_through_gst_plugin_path() {
    let plugin_dir = plugin_dir();
    let registry = scratch("inspect-registry.bin");
    let output = Command::new("gst-inspect-1.0")
        .arg("stsdub")
        .env("GST_PLUGIN_PATH", &plugin_dir)
        .env("GST_REGISTRY", &registry)
        .output()
        .expect("gst-inspect-1.0 runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "gst-inspect-1.0 stsdub failed: {text}"
    );
    for expected in [
        "Speech-to-speech dubbing",
        "Filter/Audio/Video",
        "sts-url",
        "stream-id",
        "worker-id",
        "source-language",
        "target-language",
        "voice-profile",
        "segment-duration",
        "latency",
        "timeout",
        "max-inflight",
        "audio_sink",
        "video_src",
        "Range: 500 - 60000 Default: 6000",
        "Default: 8000",
        "Range: -1 - 300000 Default: -1",
        "segmentation",
        "pauses",
    ] {
        assert!(
            text.contains(expected),
            "gst-inspect output lacks {expected:?}:\n{text}"
        );
    }
}

#[test]
fn sixty_seconds_all_dubbed_video_untouched_audio_transformed() {
    let echo = EchoSts::start(&[]);
    let input = sample();
    let output = scratch("all-dubbed.flv");
    let run = run_pipeline(
        &file_to_flv(&input, &output, &format!("sts-url={}", echo.url)),
        RUN_LIMIT,
    );
    assert!(run.eos && run.errors.is_empty(), "run failed: {run:?}");
    assert_eq!(
        run.statuses(),
        vec!["dubbed"; 10],
        "every one of 10 segments dubbed"
    );
    let sequence: Vec<i64> = run
        .segments
        .iter()
        .map(|s| s.get::<i64>("sequence-number").expect("sequence-number"))
        .collect();
    assert_eq!(
        sequence,
        (0..10).collect::<Vec<_>>(),
        "sent in segment order from 0"
    );
    // Each segment's words, as the STS sent them, in its message.
    for (segment, sequence) in run.segments.iter().zip(0..) {
        let field = |name: &str| segment.get::<String>(name).expect(name);
        assert_eq!(
            field("transcript"),
            format!("Segment {sequence}, as it was said.")
        );
        assert!(
            field("translated-text").starts_with(&format!("{sequence}. ")),
            "{segment:?}"
        );
    }
    assert!(
        run.segments.iter().any(|s| s
            .get::<String>("translated-text")
            .is_ok_and(|t| t.contains('ñ'))),
        "accents arrive intact"
    );

    // H.264 passes byte for byte.
    let video_in: Vec<_> = packets(&input, "v")
        .into_iter()
        .map(|p| (p.size, p.md5))
        .collect();
    let video_out: Vec<_> = packets(&output, "v")
        .into_iter()
        .map(|p| (p.size, p.md5))
        .collect();
    assert_eq!(video_in.len(), 1500);
    assert!(video_in == video_out, "video packets differ");

    // Same number of AAC frames: duration equal within one frame, no gap.
    let audio_in = presented_audio();
    let audio_out = packets(&output, "a");
    assert!(
        audio_in.len().abs_diff(audio_out.len()) <= 1,
        "{} frames in, {} out",
        audio_in.len(),
        audio_out.len()
    );
    assert_gapless(&audio_out);

    // The audio is the echo's: each segment reversed at half amplitude.
    let pcm_in = decoded_audio(&reference_flv());
    let pcm_out = decoded_audio(&output);
    let mut checked = 0;
    for (k, message) in run.segments.iter().enumerate().take(9) {
        // The segment's exact span, from its bus message, at 16 kHz.
        let pts: u64 = message.get("pts").expect("pts");
        let frames: u32 = message.get("frames").expect("frames");
        let start = (pts * 16_000 / 1_000_000_000) as usize;
        let span = start..start + frames as usize * 1024 / 3;
        let (a, b) = (&pcm_in[span.clone()], &pcm_out[span]);
        let ratio = rms(b) / rms(a);
        assert!(
            (0.35..0.7).contains(&ratio),
            "segment {k}: RMS ratio {ratio:.2}, expected ~0.5"
        );
        let reversed: Vec<f32> = a.iter().rev().copied().collect();
        let backwards = correlation(b, &reversed);
        let forwards = correlation(b, a);
        assert!(
            backwards > 0.8 && forwards.abs() < 0.3,
            "segment {k}: correlation with the reversed input {backwards:.2}, with the input {forwards:.2}"
        );
        checked += 1;
    }
    assert_eq!(checked, 9);
}

#[test]
fn echo_slower_than_timeout_gives_the_original_frames_none_missing() {
    let echo = EchoSts::start(&["--delay-ms", "1500"]);
    let input = sample();
    let output = scratch("all-timeout.flv");
    let props = format!("sts-url={} timeout=300 max-inflight=4", echo.url);
    let run = run_pipeline(&file_to_flv(&input, &output, &props), RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "run failed: {run:?}");
    assert_eq!(run.statuses(), vec!["fallback"; 10], "{:?}", run.segments);
    let audio_in: Vec<_> = presented_audio()
        .into_iter()
        .map(|p| (p.size, p.md5))
        .collect();
    let audio_out: Vec<_> = packets(&output, "a")
        .into_iter()
        .map(|p| (p.size, p.md5))
        .collect();
    assert_eq!(audio_in.len(), audio_out.len(), "no frame missing or added");
    assert!(
        audio_in == audio_out,
        "fallback audio is the input's, frame for frame"
    );
}

/// All dubbed, and exactly the input's frames and timestamps; the output
/// file and what the run posted.
fn run_dubbed_with_echo(args: &[&str]) -> (std::path::PathBuf, Run) {
    let echo = EchoSts::start(args);
    let input = sample();
    let output = scratch(&format!("echo{}.flv", args.join("_")));
    let run = run_pipeline(
        &file_to_flv(&input, &output, &format!("sts-url={}", echo.url)),
        RUN_LIMIT,
    );
    assert!(run.eos && run.errors.is_empty(), "run failed: {run:?}");
    assert_eq!(run.statuses(), vec!["dubbed"; 10], "{:?}", run.segments);
    let audio_in = presented_audio();
    let audio_out = packets(&output, "a");
    assert_eq!(
        audio_in.len(),
        audio_out.len(),
        "output exactly as long as the input"
    );
    assert_eq!(audio_out.first().map(|p| p.pts), Some(0));
    assert_gapless(&audio_out);
    let pts_in: Vec<i64> = audio_in.iter().map(|p| p.pts).collect();
    let pts_out: Vec<i64> = audio_out.iter().map(|p| p.pts).collect();
    for (i, (a, b)) in pts_in.iter().zip(&pts_out).enumerate() {
        assert!((a - b).abs() <= 1, "frame {i}: pts {b} ms, input {a} ms");
    }
    (output, run)
}

/// Every segment's message says it was fitted as `fit`, by `share` of its
/// frames (within two frames: the encoder rounds to whole frames).
#[track_caller]
fn assert_each_fitted(run: &Run, fit: &str, share: f64) {
    for segment in &run.segments {
        let frames = f64::from(segment.get::<u32>("frames").expect("frames"));
        let changed = segment.get::<u32>("fit-frames").expect("fit-frames");
        assert_eq!(segment.get::<&str>("fit"), Ok(fit), "{segment:?}");
        assert!(
            (f64::from(changed) - share * frames).abs() <= 2.0,
            "{changed} of {frames} frames {fit}: {segment:?}"
        );
        assert_eq!(
            segment.get::<u64>("fit-samples"),
            Ok(u64::from(changed) * 1024),
            "{segment:?}"
        );
    }
}

#[test]
fn shorter_dubbed_audio_is_padded_to_the_segment() {
    let (_, run) = run_dubbed_with_echo(&["--duration-factor", "0.6"]);
    assert_each_fitted(&run, "padded", 0.4);
}

#[test]
fn longer_dubbed_audio_is_trimmed_to_the_segment() {
    let (_, run) = run_dubbed_with_echo(&["--duration-factor", "1.5"]);
    // 1.5 times as long: a third of the dubbed frames are cut, half the segment's.
    assert_each_fitted(&run, "trimmed", 0.5);
}

#[test]
fn dubbed_audio_of_another_rate_and_channel_count_is_transcoded() {
    let (output, _) = run_dubbed_with_echo(&["--sample-rate", "16000", "--channels", "1"]);
    let output_file = output.to_string_lossy().into_owned();
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "stream=sample_rate,channels",
            "-of",
            "csv=p=0",
            &output_file,
        ])
        .output()
        .expect("ffprobe runs");
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "48000,2",
        "caps unchanged"
    );
    // Still the echo's audio: half as loud as the input in every full segment.
    let (pcm_in, pcm_out) = (decoded_audio(&reference_flv()), decoded_audio(&output));
    let segment = 282 * 1024 / 3;
    for k in 0..9 {
        let span = k * segment..(k + 1) * segment;
        let ratio = rms(&pcm_out[span.clone()]) / rms(&pcm_in[span]);
        assert!(
            (0.35..0.7).contains(&ratio),
            "segment {k}: RMS ratio {ratio:.2}"
        );
    }
}

#[test]
fn unreachable_sts_runs_on_original_audio_with_a_warning() {
    let input = sample();
    let output = scratch("unreachable.flv");
    let run = run_pipeline(
        &file_to_flv(&input, &output, &format!("sts-url={}", dead_url())),
        RUN_LIMIT,
    );
    assert!(run.eos, "stream reached EOS: {run:?}");
    assert!(run.errors.is_empty(), "no error: {:?}", run.errors);
    assert!(
        run.warnings.iter().any(|w| w.contains("STS unreachable")),
        "a warning on the bus: {:?}",
        run.warnings
    );
    assert_eq!(run.statuses(), vec!["fallback"; 10], "{:?}", run.segments);
    let audio_in: Vec<_> = presented_audio().into_iter().map(|p| p.md5).collect();
    let audio_out: Vec<_> = packets(&output, "a").into_iter().map(|p| p.md5).collect();
    assert!(
        audio_in == audio_out,
        "original audio from the first segment on"
    );
}

#[test]
fn invalid_sts_url_is_an_error_naming_the_property() {
    let input = sample();
    let output = scratch("invalid-url.flv");
    let run = run_pipeline(
        &file_to_flv(&input, &output, "sts-url=localhost:8000"),
        RUN_LIMIT,
    );
    assert!(!run.eos);
    assert_eq!(run.errors.len(), 1);
    assert!(run.errors[0].contains("sts-url"), "{:?}", run.errors);
}

#[test]
fn the_archive_keeps_each_segment_its_dubbed_audio_and_video_as_the_plan_names_them() {
    let echo = EchoSts::start(&[]);
    let dir = scratch("archive");
    let _ = std::fs::remove_dir_all(&dir);
    let output = scratch("archived.flv");
    let props = format!(
        "sts-url={} stream-id=arch archive-dir={}",
        echo.url,
        dir.display()
    );
    // Stopping the pipeline waits for the archive's last writes.
    let run = run_pipeline(&file_to_flv(&sample(), &output, &props), RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert_eq!(run.statuses(), vec!["dubbed"; 10]);
    let stream_dir = dir.join("arch");
    let mut archived_video = Vec::new();
    for batch in 0..10 {
        for kind in ["audio", "dubbed"] {
            let file = stream_dir.join(format!("{batch:06}_{kind}.m4a"));
            assert_eq!(codecs(&file), ["aac"], "{}", file.display());
        }
        let text = stream_dir.join(format!("{batch:06}_text.json"));
        let text: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&text).expect("the segment's words"))
                .expect("JSON");
        assert_eq!(
            text["transcript"],
            format!("Segment {batch}, as it was said.")
        );
        assert!(
            text["translated_text"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("{batch}. ")))
        );
        let video = stream_dir.join(format!("{batch:06}_video.mp4"));
        assert_eq!(codecs(&video), ["h264"], "{}", video.display());
        assert!(
            decodes_cleanly(&video),
            "{} decodes on its own",
            video.display()
        );
        archived_video.extend(packets(&video, "v").into_iter().map(|p| p.md5));
    }
    // Every video frame in exactly one file, in order, bytes unchanged.
    let input_video: Vec<String> = packets(&sample(), "v").into_iter().map(|p| p.md5).collect();
    assert_eq!(archived_video, input_video);
    let leftovers: Vec<_> = std::fs::read_dir(&stream_dir)
        .expect("archive dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// ffmpeg decodes every frame of `file` without a complaint.
fn decodes_cleanly(file: &std::path::Path) -> bool {
    Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .is_ok_and(|o| o.status.success() && o.stderr.is_empty())
}
