// SPDX-License-Identifier: MPL-2.0

//! The main job never hangs: the worker's own pipeline (the demo's, built by
//! `stsdub-worker`, no queue anywhere) ends on its own on ordinary inputs
//! that once deadlocked it, with every packet in the output and the input's
//! A/V alignment. Each run is compared with the same input remuxed without
//! stsdub.
//!
//! The cases: video starting 30 ms and 500 ms after the audio, audio starting
//! 500 ms after the video, a 10-minute file, audio only, video only; qtdemux,
//! matroskademux and flvdemux; an STS answering at once and one answering
//! after 3 s (the non-live back-pressure holds the demuxer); and live, the
//! offset files served by an RTSP server.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A 60 s non-live run takes about 1 s; a hang is what this catches.
const RUN_LIMIT: Duration = Duration::from_secs(90);
const LONG_RUN_LIMIT: Duration = Duration::from_secs(240);
/// One AAC frame at 48 kHz is 21.3 ms; FLV stamps are whole milliseconds.
const FRAME_MS: i64 = 22;

fn variant(name: &str, args: &[&str]) -> PathBuf {
    remuxed(&sample(), &format!("no-queue-{name}"), args)
}

fn video_late_sample(ms: u32, container: &str) -> PathBuf {
    video_late(&sample(), ms, container)
}

fn audio_late_sample(ms: u32, container: &str) -> PathBuf {
    audio_late(&sample(), ms, container)
}

/// The first 20 s of `input`, for runs that are slow by design.
fn first_20_s(input: &Path) -> PathBuf {
    let name = input.file_name().and_then(|n| n.to_str()).expect("name");
    remuxed(
        input,
        &format!("20s-{name}"),
        &["-i", "{}", "-t", "20", "-c", "copy"],
    )
}

/// Which elementary streams a file has: (audio, video).
fn streams(file: &Path) -> (bool, bool) {
    let codecs = codecs(file);
    (
        codecs.iter().any(|c| c == "aac"),
        codecs.iter().any(|c| c == "h264"),
    )
}

/// The demuxer the worker picks, with its audio and video pad names.
fn demuxer(file: &Path) -> (&'static str, &'static str, &'static str) {
    match file.extension().and_then(|e| e.to_str()) {
        Some("flv") => ("flvdemux", "audio", "video"),
        Some("mkv") => ("matroskademux", "audio_0", "video_0"),
        _ => ("qtdemux", "audio_0", "video_0"),
    }
}

/// `input` remuxed to FLV without stsdub, through the same demuxer and
/// parsers, with only the branches the file has: what stsdub must match.
fn passthrough(input: &Path) -> PathBuf {
    let output = scratch(&format!(
        "{}.passthrough.flv",
        input.file_name().and_then(|n| n.to_str()).expect("name")
    ));
    let (demux, audio_pad, video_pad) = demuxer(input);
    let (audio, video) = streams(input);
    let mut description = format!(
        "filesrc location={} ! {demux} name=d flvmux name=mux streamable=true ! filesink location={}",
        input.display(),
        output.display()
    );
    if audio {
        description += &format!(" d.{audio_pad} ! queue ! aacparse ! mux.audio");
    }
    if video {
        description += &format!(" d.{video_pad} ! queue ! h264parse ! mux.video");
    }
    let run = run_pipeline(&description, RUN_LIMIT);
    assert!(
        run.eos && run.errors.is_empty(),
        "passthrough of {} failed: {run:?}",
        input.display()
    );
    output
}

/// Runs the worker example (the demo's pipeline) on `input` into `output`;
/// whether it ended on its own, successfully, within `limit`.
fn worker(input: &str, sts_url: &str, output: &Path, properties: &str, limit: Duration) -> bool {
    run_worker(input, sts_url, output, "no-queue", properties, limit)
        .is_some_and(|status| status.success())
}

/// Every video packet as it was, the audio packet count within one frame,
/// and the audio where the input has it against the video.
#[track_caller]
fn assert_faithful(reference: &Path, output: &Path) {
    let video_in = packets_if(reference, "v");
    let video_out = packets_if(output, "v");
    assert!(
        video_in == video_out,
        "video packets differ: {} in, {} out",
        video_in.len(),
        video_out.len()
    );
    let audio_in = packets_if(reference, "a");
    let audio_out = packets_if(output, "a");
    assert!(
        audio_in.len().abs_diff(audio_out.len()) <= 1,
        "{} audio packets in, {} out",
        audio_in.len(),
        audio_out.len()
    );
    // The audio stamps are the input's (within a frame) all along, so its
    // alignment with the identical video is the input's.
    for (i, (a, b)) in audio_in.iter().zip(&audio_out).enumerate() {
        assert!(
            (a.pts - b.pts).abs() <= FRAME_MS,
            "audio packet {i} at {} ms, the input has it at {} ms",
            b.pts,
            a.pts
        );
    }
}

/// The packets of the first `kind` stream, none when the file has no such stream.
fn packets_if(file: &Path, kind: &str) -> Vec<Packet> {
    let (audio, video) = streams(file);
    if (kind == "a" && audio) || (kind == "v" && video) {
        packets(file, kind)
    } else {
        Vec::new()
    }
}

/// Runs the worker on each input and checks each output against its passthrough.
#[track_caller]
fn assert_each_ends_faithfully(inputs: &[PathBuf], echo_args: &[&str], properties: &str) {
    let echo = EchoSts::start(echo_args);
    for input in inputs {
        let output = scratch(&format!(
            "{}.dubbed.flv",
            input.file_name().and_then(|n| n.to_str()).expect("name")
        ));
        let _ = std::fs::remove_file(&output);
        assert!(
            worker(
                &input.to_string_lossy(),
                &echo.url,
                &output,
                properties,
                RUN_LIMIT
            ),
            "the worker did not end on {}",
            input.display()
        );
        assert_faithful(&passthrough(input), &output);
    }
}

#[test]
fn qtdemux_inputs_with_a_late_track_end_with_every_packet() {
    assert_each_ends_faithfully(
        &[
            video_late_sample(30, "mp4"),
            video_late_sample(500, "mp4"),
            audio_late_sample(500, "mp4"),
        ],
        &[],
        "",
    );
}

#[test]
fn matroskademux_inputs_with_a_late_track_end_with_every_packet() {
    assert_each_ends_faithfully(
        &[
            video_late_sample(30, "mkv"),
            video_late_sample(500, "mkv"),
            audio_late_sample(500, "mkv"),
        ],
        &[],
        "",
    );
}

#[test]
fn flvdemux_inputs_with_a_late_track_end_with_every_packet() {
    assert_each_ends_faithfully(
        &[
            video_late_sample(30, "flv"),
            video_late_sample(500, "flv"),
            audio_late_sample(500, "flv"),
        ],
        &[],
        "",
    );
}

#[test]
fn audio_only_and_video_only_inputs_end() {
    let inputs = [
        variant("audio-only.mp4", &["-i", "{}", "-vn", "-c", "copy"]),
        variant("video-only.mp4", &["-i", "{}", "-an", "-c", "copy"]),
        variant("audio-only.flv", &["-i", "{}", "-vn", "-c", "copy"]),
        variant("video-only.flv", &["-i", "{}", "-an", "-c", "copy"]),
    ];
    assert_each_ends_faithfully(&inputs, &[], "");
    for input in &inputs {
        let output = scratch(&format!(
            "{}.dubbed.flv",
            input.file_name().and_then(|n| n.to_str()).expect("name")
        ));
        let (audio, video) = streams(input);
        assert_eq!(streams(&output), (audio, video), "{}", output.display());
    }
}

#[test]
fn a_ten_minute_file_ends_with_every_packet() {
    let input = variant(
        "ten-minutes.mp4",
        &["-stream_loop", "9", "-i", "{}", "-c", "copy"],
    );
    let echo = EchoSts::start(&[]);
    let output = scratch("no-queue-ten-minutes.dubbed.flv");
    assert!(
        worker(
            &input.to_string_lossy(),
            &echo.url,
            &output,
            "",
            LONG_RUN_LIMIT
        ),
        "the worker did not end on the 10-minute file"
    );
    assert_faithful(&passthrough(&input), &output);
    assert_eq!(packets(&output, "v").len(), 15_000);
}

#[test]
fn an_sts_answering_after_3_s_holds_the_file_back_and_every_segment_is_dubbed() {
    // 2 s segments: 10 per input, more than max-inflight (3) + 2 undecided,
    // so the audio chain waits for answers (the non-live back-pressure).
    let inputs = [
        first_20_s(&video_late_sample(500, "mp4")),
        first_20_s(&audio_late_sample(500, "mkv")),
        first_20_s(&video_late_sample(30, "flv")),
    ];
    let echo = EchoSts::start(&["--delay-ms", "3000"]);
    for input in &inputs {
        let output = scratch(&format!(
            "{}.dubbed.flv",
            input.file_name().and_then(|n| n.to_str()).expect("name")
        ));
        let description = file_description(input, &echo.url, &output, "segment-duration=2000");
        let run = run_pipeline(&description, RUN_LIMIT);
        assert!(
            run.eos && run.errors.is_empty(),
            "{}: {run:?}",
            input.display()
        );
        assert_eq!(
            run.statuses(),
            vec!["dubbed"; 10],
            "{}: held, not fallen back",
            input.display()
        );
        assert_faithful(&passthrough(input), &output);
    }
}

/// The worker's file pipeline, as it prints it, for runs that read the bus.
fn file_description(input: &Path, sts_url: &str, output: &Path, properties: &str) -> String {
    let printed = Command::new(program("stsdub-worker"))
        .args(["--input"])
        .arg(input)
        .args(["--sts-url", sts_url, "--output"])
        .arg(output)
        .args([
            "--stream-id",
            "no-queue",
            "--stsdub-properties",
            properties,
            "--print-only",
        ])
        .output()
        .expect("worker prints its pipeline");
    let text = String::from_utf8_lossy(&printed.stdout);
    let description = text
        .lines()
        .find_map(|l| l.strip_prefix("gst-launch-1.0 "))
        .unwrap_or_else(|| panic!("no pipeline printed: {text}"));
    assert!(
        !description.split_whitespace().any(|word| word == "queue"),
        "the worker's file pipeline has no queue: {description}"
    );
    description.to_owned()
}
