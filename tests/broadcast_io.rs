// SPDX-License-Identifier: MPL-2.0

//! Broadcast inputs and outputs, non-live: MPEG-TS in and out with several
//! languages from one input, every file kind the worker reads, H.265
//! passing untouched, and inputs it cannot take refused at start with what
//! was found. The pipelines are the worker's own (`stsdub_worker::pipeline`),
//! against the echo STS; the outputs are read back with ffprobe/ffmpeg.

mod common;

use std::path::{Path, PathBuf};

use gst::prelude::*;
use std::time::Duration;

use common::*;
use stsdub_worker::pipeline::{self, Input, Languages, Output, VideoCodec};

const RUN_LIMIT: Duration = Duration::from_secs(180);
/// One AAC frame at 48 kHz, in seconds: how far apart durations may be.
const AAC_FRAME_S: f64 = 1024.0 / 48_000.0;

/// The 60 s sample copied into another container.
fn sample_as(extension: &str) -> PathBuf {
    remuxed(
        &sample(),
        &format!("sample-60s.{extension}"),
        &["-i", "{}", "-c", "copy"],
    )
}

/// 12 s of the sample with its video re-encoded as H.265.
fn h265_sample(extension: &str) -> PathBuf {
    let tag: &[&str] = if extension == "mp4" {
        &["-tag:v", "hvc1"]
    } else {
        &[]
    };
    let args = [
        &[
            "-i",
            "{}",
            "-t",
            "12",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
        ][..],
        &["-x265-params", "log-level=error", "-c:a", "copy"],
        tag,
    ]
    .concat();
    remuxed(&sample(), &format!("sample-h265-12s.{extension}"), &args)
}

fn video_packets(file: &Path) -> Vec<(u64, String)> {
    packets(file, "v")
        .into_iter()
        .map(|p| (p.size, p.md5))
        .collect()
}

/// The NAL units of `file`'s video, with their types.
fn nal_units(file: &Path, codec: VideoCodec) -> Vec<(u8, Vec<u8>)> {
    let format = if codec == VideoCodec::H265 {
        "hevc"
    } else {
        "h264"
    };
    annex_b_units(file, format)
        .into_iter()
        .map(|unit| {
            let header = unit.first().copied().unwrap_or(0);
            let kind = if codec == VideoCodec::H265 {
                (header >> 1) & 0x3f
            } else {
                header & 0x1f
            };
            (kind, unit)
        })
        .collect()
}

/// The video of `output` is the input's. Between MP4, Matroska and FLV,
/// every packet byte for byte. From or to MPEG-TS, whose packets carry
/// start codes instead of lengths, every slice byte for byte and in order,
/// and the same parameter sets: the parser that mpegtsmux needs (for whole
/// access units) repeats the parameter sets before every keyframe, puts
/// them ahead of the SEI, adds access unit delimiters, may write a start
/// code in four bytes instead of three, and drops what precedes the first
/// parameter set of a byte stream (a delimiter and the encoder's SEI).
#[track_caller]
fn assert_video_untouched(input: &Path, output: &Path, codec: VideoCodec) {
    let (video_in, video_out) = (video_packets(input), video_packets(output));
    assert_eq!(video_in.len(), video_out.len(), "as many video packets");
    let is_ts = |file: &Path| file.extension().is_some_and(|e| e == "ts");
    if !is_ts(input) && !is_ts(output) {
        assert!(video_in == video_out, "video packets differ");
        return;
    }
    let slice = |kind: u8| match codec {
        VideoCodec::H264 => (1..=5).contains(&kind),
        VideoCodec::H265 => kind <= 31,
    };
    let parameter_set = |kind: u8| match codec {
        VideoCodec::H264 => matches!(kind, 7 | 8),
        VideoCodec::H265 => matches!(kind, 32..=34),
    };
    let (units_in, units_out) = (nal_units(input, codec), nal_units(output, codec));
    let of_kind = |units: &[(u8, Vec<u8>)], wanted: &dyn Fn(u8) -> bool| -> Vec<Vec<u8>> {
        units
            .iter()
            .filter(|(k, _)| wanted(*k))
            .map(|(_, u)| u.clone())
            .collect()
    };
    let (slices_in, slices_out) = (of_kind(&units_in, &slice), of_kind(&units_out, &slice));
    assert!(
        slices_in.len() >= video_in.len(),
        "{} slices",
        slices_in.len()
    );
    assert_eq!(slices_in.len(), slices_out.len(), "as many slices");
    let differing = slices_in
        .iter()
        .zip(&slices_out)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 0, "slices differ");
    let distinct = |sets: Vec<Vec<u8>>| sets.into_iter().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        distinct(of_kind(&units_in, &parameter_set)),
        distinct(of_kind(&units_out, &parameter_set)),
        "parameter sets differ"
    );
    if is_ts(output) {
        // A receiver may join at any keyframe: its parameter sets before it.
        let (sps, idr): (u8, &[u8]) = match codec {
            VideoCodec::H264 => (7, &[5]),
            VideoCodec::H265 => (33, &[19, 20, 21]),
        };
        let count =
            |wanted: &dyn Fn(u8) -> bool| units_out.iter().filter(|(k, _)| wanted(*k)).count();
        let keyframes = count(&|k| idr.contains(&k));
        assert!(
            keyframes > 1 && count(&|k| k == sps) >= keyframes,
            "an SPS before every keyframe"
        );
    }
}

/// The 60 s `input` through the worker into es and fr (`stream_id`-es,
/// -fr, the original kept as en) to `output`, against the echo STS: the
/// run ends cleanly and all 10 segments of each language are dubbed.
fn dub_into_es_and_fr(input: &Path, stream_id: &str, output: &Path) {
    let sts = EchoSts::start(&[]);
    let languages = Languages::parse("es,fr", "en", stream_id, true).expect("valid");
    let description = pipeline::multi_language_worker(
        &Input::from_uri(&input.to_string_lossy()).expect("a known input"),
        VideoCodec::H264,
        &format!("sts-url={}", sts.url),
        &languages,
        &Output::from_uri(&output.to_string_lossy()),
    );
    let run = run_pipeline(&description, RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    for language in ["es", "fr"] {
        let id = format!("{stream_id}-{language}");
        let statuses: Vec<String> = run
            .segments
            .iter()
            .filter(|s| s.get::<String>("stream-id").ok().as_deref() == Some(id.as_str()))
            .map(|s| s.get::<String>("status").expect("status"))
            .collect();
        assert_eq!(statuses.len(), 10, "{id}: {statuses:?}");
        assert!(statuses.iter().all(|s| s == "dubbed"), "{id}: {statuses:?}");
    }
}

#[test]
fn mpeg_ts_in_two_languages_out_every_track_labelled_and_complete() {
    let input = sample_as("ts");
    let output = scratch("two-languages.ts");
    dub_into_es_and_fr(&input, "match-1", &output);
    let streams = stream_languages(&output);
    let kinds = |kind: &str| streams.iter().filter(|(k, _)| k == kind).count();
    assert_eq!((kinds("video"), kinds("audio")), (1, 3), "{streams:?}");
    let mut languages: Vec<&str> = streams
        .iter()
        .filter(|(k, _)| k == "audio")
        .map(|(_, l)| l.as_str())
        .collect();
    languages.sort();
    assert_eq!(languages, ["eng", "fre", "spa"], "{streams:?}");

    assert_video_untouched(&input, &output, VideoCodec::H264);
    let seconds_in = decoded_seconds(&input, "a:0");
    for track in 0..3 {
        let seconds_out = decoded_seconds(&output, &format!("a:{track}"));
        assert!(
            (seconds_out - seconds_in).abs() <= AAC_FRAME_S,
            "audio track {track}: {seconds_out} s against {seconds_in} s in"
        );
    }
}

#[test]
fn every_file_kind_is_read_dubbed_to_its_end_and_written() {
    let sts = EchoSts::start(&[]);
    // Each input into another kind of file: every file kind is also written.
    for (extension, out) in [
        ("mp4", "mkv"),
        ("mov", "mp4"),
        ("mkv", "ts"),
        ("flv", "mkv"),
        ("ts", "flv"),
    ] {
        let input = sample_as(extension);
        let output = scratch(&format!("from-{extension}.{out}"));
        let description = pipeline::worker(
            &Input::from_uri(&input.to_string_lossy()).expect("a known kind"),
            &format!("sts-url={} stream-id={extension}", sts.url),
            &Output::from_uri(&output.to_string_lossy()),
        );
        let run = run_pipeline(&description, RUN_LIMIT);
        assert!(run.eos && run.errors.is_empty(), "{extension}: {run:?}");
        let statuses = run.statuses();
        assert_eq!(
            statuses.len(),
            10,
            "{extension}: {statuses:?} {:?}",
            run.reasons()
        );
        assert!(
            statuses.iter().all(|s| s == "dubbed"),
            "{extension}: {statuses:?}"
        );
        let (seconds_in, seconds_out) = (
            decoded_seconds(&input, "a:0"),
            decoded_seconds(&output, "a:0"),
        );
        assert!(
            (seconds_out - seconds_in).abs() <= AAC_FRAME_S,
            "{extension}: {seconds_out} s of {seconds_in} s"
        );
        assert_video_untouched(&input, &output, VideoCodec::H264);
        // FLV has nowhere to write a track's language.
        if out != "flv" {
            assert_eq!(
                stream_languages(&output)
                    .iter()
                    .find(|(k, _)| k == "audio")
                    .map(|(_, l)| l.as_str()),
                Some("spa"),
                "{extension} → {out}: the dubbed track says its language"
            );
        }
    }
}

#[test]
fn h265_passes_untouched_from_mpeg_ts_and_from_mp4() {
    let sts = EchoSts::start(&[]);
    for (extension, out) in [("ts", "ts"), ("mp4", "mkv")] {
        let input = h265_sample(extension);
        let output = scratch(&format!("h265-from-{extension}.{out}"));
        let description = pipeline::worker_for(
            &Input::from_uri(&input.to_string_lossy()).expect("a known kind"),
            VideoCodec::H265,
            &format!("sts-url={}", sts.url),
            &Output::from_uri(&output.to_string_lossy()),
        );
        let run = run_pipeline(&description, RUN_LIMIT);
        assert!(run.eos && run.errors.is_empty(), "{extension}: {run:?}");
        assert!(run.statuses().iter().all(|s| s == "dubbed"), "{run:?}");
        let kinds: Vec<String> = stream_languages(&output)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // An MPEG-TS output always declares the SCTE-35 PID (see
        // `scte35_cues_come_out_on_their_frames`), cues or none.
        let expected = if out == "ts" {
            ["video", "audio", "data"].as_slice()
        } else {
            ["video", "audio"].as_slice()
        };
        assert_eq!(kinds, expected, "{extension}");
        assert!(codecs(&output).contains(&"hevc".to_owned()), "{extension}");
        assert_eq!(video_packets(&input).len(), 300, "12 s at 25 fps");
        assert_video_untouched(&input, &output, VideoCodec::H265);
    }
}

/// The worker program on `input`: its exit status and what it printed on stderr.
fn worker_stderr(input: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let output = run_worker(input, &dead_url(), &scratch("refused.ts"), extra);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `source`'s first `seconds` s with its audio in ffmpeg's `codec`, as
/// MPEG-TS (`flags`: the muxer's, e.g. LATM packetization).
fn ts_with_audio(source: &Path, codec: &str, flags: &[&str], seconds: u32) -> PathBuf {
    let stem = source
        .file_stem()
        .map_or("input".into(), |s| s.to_string_lossy());
    let name = format!("{stem}-{codec}{}-{seconds}s.ts", flags.join(""));
    let seconds = seconds.to_string();
    let args = [
        &[
            "-i", "{}", "-t", &seconds, "-c:v", "copy", "-c:a", codec, "-b:a", "192k",
        ][..],
        flags,
        &["-f", "mpegts"],
    ]
    .concat();
    remuxed(source, &name, &args)
}

/// The measurement's own precision for A/V between two MPEG-TS files of
/// the marks sample: the beep's onset found at 8 kHz (0.125 ms) and the
/// stamps' 90 kHz, doubled for the two files; nothing of EBU R37.
const TS_AV_PRECISION_MS: f64 = 0.5;

/// The worker program on `input` → `output` against the STS at `sts_url`,
/// with `extra` arguments, run to its end.
fn run_worker(input: &Path, sts_url: &str, output: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(program("stsdub-worker"))
        .arg("--input")
        .arg(input)
        .args(["--sts-url", sts_url, "--output"])
        .arg(output)
        .args(extra)
        .output()
        .expect("the worker runs")
}

/// Broadcast audio in a file (DVB's MP2 and AAC in LATM, ATSC's AC-3 and
/// E-AC-3): the worker probes it, decodes it and encodes AAC in front of
/// stsdub. Every segment is dubbed, the slices are the input's, A/V at
/// every sync mark is the input's, and the audio as long as the input's
/// within one frame of the input's codec.
#[test]
fn broadcast_audio_codecs_in_a_file_are_dubbed_in_sync() {
    let sts = EchoSts::start(&["--transform", "identity"]);
    let marks = marks_sample(20);
    for (codec, flags) in [
        ("mp2", &[][..]),
        ("ac3", &[]),
        ("eac3", &[]),
        ("aac", &["-mpegts_flags", "latm"]),
    ] {
        let input = ts_with_audio(&marks, codec, flags, 20);
        let output = scratch(&format!("dubbed-from-{codec}{}.ts", flags.join("")));
        let worker = run_worker(&input, &sts.url, &output, &[]);
        let (table, stderr) = (
            String::from_utf8_lossy(&worker.stdout),
            String::from_utf8_lossy(&worker.stderr),
        );
        assert!(worker.status.success(), "{codec}: {stderr}");
        assert!(
            stderr.contains("decoded and encoded to AAC"),
            "{codec}: {stderr}"
        );
        let statuses: Vec<&str> = table
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .filter(|s| *s == "dubbed" || *s == "fallback")
            .collect();
        assert!(
            statuses.len() >= 3 && statuses.iter().all(|s| *s == "dubbed"),
            "{codec}: {table}"
        );
        let kinds: std::collections::BTreeSet<String> = codecs(&output).into_iter().collect();
        assert_eq!(
            kinds,
            ["aac", "h264", "scte_35"].map(str::to_owned).into(),
            "{codec}: the dub, the video and the SCTE-35 PID a TS output declares"
        );
        assert_video_untouched(&input, &output, VideoCodec::H264);
        assert_sync_kept(codec, &input, &output);
        assert_length_kept(codec, flags, &input, &output);
    }
}

/// A/V at every mark as the input's is heard (by sample count; its
/// stamps are not read: measure_sync reads AAC frames' only), both where a
/// player hears the output and where its AAC frames' stamps put it.
#[track_caller]
fn assert_sync_kept(codec: &str, input: &Path, output: &Path) {
    let before = sync_offsets_ms(input, 0, false);
    for by_stamps in [false, true] {
        let after = sync_offsets_ms(output, 0, by_stamps);
        eprintln!("{codec}: A/V in {before:?} ms, out {after:?} ms (by stamps: {by_stamps})");
        assert_eq!(before.len(), after.len(), "{codec}: every mark found");
        for (b, a) in before.iter().zip(&after) {
            assert!(
                (a - b).abs() <= TS_AV_PRECISION_MS,
                "{codec}: A/V {a} ms out, {b} ms in (by stamps: {by_stamps})"
            );
        }
    }
}

/// The audio as long as the input's within one frame of its codec (the
/// last, cut or padded). LATM: GStreamer 1.22's aacparse does not take
/// the StreamMuxConfig of FFmpeg's first LATM frame and skips frames
/// until the next, 20 frames on (FFmpeg repeats it every 20): those
/// frames are lost before stsdub, and no more.
#[track_caller]
fn assert_length_kept(codec: &str, flags: &[&str], input: &Path, output: &Path) {
    let (seconds_in, seconds_out) = (
        decoded_seconds(input, "a:0"),
        decoded_seconds(output, "a:0"),
    );
    let frame = match codec {
        "mp2" => 1152.0,
        "ac3" | "eac3" => 1536.0,
        _ => 1024.0,
    } / 48_000.0;
    let lost_by_the_parser = if flags.contains(&"latm") {
        20.0 * frame
    } else {
        0.0
    };
    eprintln!("{codec}: {seconds_in} s of audio in, {seconds_out} s out");
    assert!(
        (seconds_in - lost_by_the_parser - seconds_out).abs() <= frame + 0.001,
        "{codec}: {seconds_in} s of audio in, {seconds_out} s out"
    );
}

/// `--output-audio-codec`: a delivery that needs its broadcast codec gets
/// every audio track in it. AC-3 in → AC-3 out (one language), MP2 in →
/// MP2 out (the original, es and fr), MP2 into Matroska: every segment
/// dubbed, the slices the input's, A/V at every mark the input's (the
/// encoders' own delay taken off), each track as long as the input's
/// within one frame of its codec. FLV, which cannot carry them, is refused
/// at start.
#[test]
fn the_output_audio_is_the_broadcast_codec_when_asked() {
    let sts = EchoSts::start(&["--transform", "identity"]);
    let marks = marks_sample(20);
    for (codec, extension, languages) in [
        ("ac3", "ts", &[][..]),
        ("mp2", "ts", &["--target-languages", "es,fr"]),
        ("mp2", "mkv", &[]),
    ] {
        let input = ts_with_audio(&marks, codec, &[], 20);
        let output = scratch(&format!("{codec}-out-{}.{extension}", languages.len()));
        let extra = [&["--output-audio-codec", codec][..], languages].concat();
        let worker = run_worker(&input, &sts.url, &output, &extra);
        let stderr = String::from_utf8_lossy(&worker.stderr);
        assert!(worker.status.success(), "{codec}: {stderr}");
        let table = String::from_utf8_lossy(&worker.stdout);
        assert!(
            table.contains("fallback: 0") && !table.contains("dubbed: 0"),
            "{codec}: {table}"
        );
        let kinds: std::collections::BTreeSet<String> = codecs(&output)
            .into_iter()
            .filter(|c| c != "scte_35")
            .collect();
        assert_eq!(
            kinds,
            ["h264", codec].map(str::to_owned).into(),
            "{codec} into .{extension}"
        );
        let tracks = stream_languages(&output)
            .iter()
            .filter(|(kind, _)| kind == "audio")
            .count();
        assert_eq!(tracks, if languages.is_empty() { 1 } else { 3 });
        assert_video_untouched(&input, &output, VideoCodec::H264);
        let before = sync_offsets_ms(&input, 0, false);
        for track in 0..tracks {
            let after = sync_offsets_ms(&output, track, false);
            eprintln!("{codec} .{extension} track {track}: A/V in {before:?} ms, out {after:?} ms");
            assert_eq!(before.len(), after.len(), "every mark found");
            for (b, a) in before.iter().zip(&after) {
                assert!(
                    (a - b).abs() <= TS_AV_PRECISION_MS,
                    "{codec} track {track}: A/V {a} ms out, {b} ms in"
                );
            }
            let (seconds_in, seconds_out) = (
                decoded_seconds(&input, "a:0"),
                decoded_seconds(&output, &format!("a:{track}")),
            );
            let frame = if codec == "ac3" { 1536.0 } else { 1152.0 } / 48_000.0;
            eprintln!("{codec} track {track}: {seconds_in} s in, {seconds_out} s out");
            assert!(
                (seconds_in - seconds_out).abs() <= frame + 0.001,
                "{codec} track {track}: {seconds_in} s in, {seconds_out} s out"
            );
        }
    }
    let (status, stderr) = worker_stderr(
        &marks,
        &["--output", "x.flv", "--output-audio-codec", "ac3"],
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("--output-audio-codec ac3: only MPEG-TS"),
        "{stderr}"
    );
}

/// The marks sample as MPEG-TS with a second AAC track: `eng` then `spa`.
fn two_track_ts() -> PathBuf {
    let marks = marks_sample(20);
    let marks_arg = marks.to_string_lossy().into_owned();
    remuxed(
        &marks,
        "marks-two-tracks.ts",
        &[
            "-i",
            "{}",
            "-i",
            &marks_arg,
            "-map",
            "0:v",
            "-map",
            "0:a",
            "-map",
            "1:a",
            "-c",
            "copy",
            "-metadata:s:a:0",
            "language=eng",
            "-metadata:s:a:1",
            "language=spa",
            "-f",
            "mpegts",
        ],
    )
}

/// Audio track `index` of `file` as its ADTS elementary stream, copied.
fn adts_track(file: &Path, index: usize) -> Vec<u8> {
    let output = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args([
            "-map",
            &format!("0:a:{index}"),
            "-c",
            "copy",
            "-f",
            "adts",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The length of the ADTS frame at the start of `bytes` (its header's
/// 13-bit frame_length).
fn first_adts_frame_length(bytes: &[u8]) -> usize {
    assert!(
        bytes.len() > 7 && bytes[0] == 0xFF && bytes[1] & 0xF0 == 0xF0,
        "ADTS"
    );
    (usize::from(bytes[3] & 0x03) << 11) | (usize::from(bytes[4]) << 3) | usize::from(bytes[5] >> 5)
}

/// The carried track holds the input's frames byte for byte: all of them,
/// or all but the first, which lies before the video's first frame (the
/// MPEG-TS muxer starts every track at the video; stsdub is not on this
/// track's path).
#[track_caller]
fn assert_frames_carried(input: &[u8], output: &[u8]) {
    let missing = input.len().saturating_sub(output.len());
    assert!(
        input.ends_with(output) && (missing == 0 || missing == first_adts_frame_length(input)),
        "the carried track is the input's ({} bytes in, {} out)",
        input.len(),
        output.len()
    );
}

/// A two-track TS → TS: the track in the source language (or the first,
/// or `--audio-track N`) is dubbed and the other comes out as it went in,
/// its frames byte for byte, with its language. An index out of range
/// stops the worker at start, listing the tracks.
#[test]
fn the_other_audio_track_is_carried_untouched_with_its_language() {
    let sts = EchoSts::start(&["--transform", "identity"]);
    let input = two_track_ts();
    for (name, extra, dubbed, carried, carried_language) in [
        ("default", &["--source-language", "en"][..], 0, 1, "spa"),
        ("by-language", &["--source-language", "es"], 1, 0, "eng"),
        ("by-index", &["--audio-track", "1"], 1, 0, "eng"),
    ] {
        let output = scratch(&format!("two-tracks-{name}.ts"));
        let worker = run_worker(&input, &sts.url, &output, extra);
        let stderr = String::from_utf8_lossy(&worker.stderr);
        assert!(worker.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("dubbing audio track {dubbed} of")),
            "{name}: {stderr}"
        );
        let languages: Vec<String> = stream_languages(&output)
            .into_iter()
            .filter(|(kind, _)| kind == "audio")
            .map(|(_, language)| language)
            .collect();
        assert_eq!(
            languages.len(),
            2,
            "{name}: two audio tracks out: {languages:?}"
        );
        assert_eq!(languages[1], carried_language, "{name}: {languages:?}");
        assert_frames_carried(&adts_track(&input, carried), &adts_track(&output, 1));
        assert_video_untouched(&input, &output, VideoCodec::H264);
    }
    let (status, stderr) = worker_stderr(&input, &["--audio-track", "2"]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("--audio-track 2: the input has 2 audio track(s), 0 to 1"),
        "{stderr}"
    );
}

/// Plays a pipeline that makes a test file to its end, within 60 s.
#[track_caller]
fn run_to_eos(pipeline: &gst::Element) {
    let _ = pipeline.set_state(gst::State::Playing);
    let bus = pipeline.bus().expect("a bus");
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    assert!(
        matches!(
            end.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{end:?}"
    );
}

/// One teletext PES payload (ETSI EN 300 472): data_identifier 0x10 and
/// three EBU teletext data units of 44 bytes (the size that fills one TS
/// packet with the 36-byte PES header the standard asks for), their text
/// rows numbered by `index` so that every payload differs.
fn teletext_payload(index: u8) -> Vec<u8> {
    let mut payload = vec![0x10];
    for unit in 0..3u8 {
        // data_unit_id 0x02 (EBU Teletext), length 44; field 1, line 7 + unit;
        // the framing code; magazine 1, packet `unit + 20` as Hamming 8/4
        // would carry them (the bytes are carried, not read).
        payload.extend([0x02, 0x2C, 0xE0 | (7 + unit), 0xE4, 0x02, 0x15 + unit]);
        payload.extend((0..40u8).map(|i| 0x20 + (index.wrapping_mul(7).wrapping_add(i)) % 0x5F));
    }
    payload
}

/// The PIDs of [`ts_with_subtitles`]' DVB subtitles and teletext, not
/// those mpegtsmux would choose by itself.
const SUBTITLE_PIDS: [u16; 2] = [0x150, 0x151];
/// Their ES_info as a broadcaster's PMT has it: a DVB subtitling
/// descriptor (eng, normal subtitles, composition page 1, ancillary page
/// 1) and a teletext descriptor (deu, subtitle page 888).
const SUBTITLE_DESCRIPTORS: [&str; 2] = ["5908656e6710000100 01", "5605 646575 10 88"];

/// `tests/interop/ts_pmt.py` (the PMT read and written by a script of its
/// own, not by the worker's code) with `args`; its output.
fn ts_pmt(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/ts_pmt.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "ts_pmt.py {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The 20 s marks sample as MPEG-TS with a DVB subtitle stream (GStreamer's
/// dvbsubenc: a test pattern every 2 s) and a teletext stream (one payload
/// a second through an appsrc: no teletext encoder is installable here),
/// written by mpegtsmux on PIDs of their own, their PMT entries then given
/// a broadcaster's descriptors ([`SUBTITLE_DESCRIPTORS`]: mpegtsmux writes
/// a subtitling descriptor for teletext too).
fn ts_with_subtitles() -> PathBuf {
    let output = scratch("marks-dvbsub-teletext.ts");
    if output.exists() {
        return output;
    }
    let marks = marks_sample(20);
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux name=q q.video_0 ! queue ! h264parse ! mux. \
         q.audio_0 ! queue ! aacparse ! mux. \
         videotestsrc pattern=smpte num-buffers=10 ! video/x-raw,width=200,height=40,framerate=1/2 \
         ! videobox border-alpha=0 left=-260 right=-260 top=-500 bottom=-36 ! videoconvert \
         ! video/x-raw,format=AYUV ! dvbsubenc ! queue ! mux.sink_{} \
         appsrc name=teletext format=time caps=application/x-teletext ! queue ! mux.sink_{} \
         mpegtsmux name=mux ! filesink location={}",
        marks.display(),
        SUBTITLE_PIDS[0],
        SUBTITLE_PIDS[1],
        output.display()
    ))
    .expect("the launch line parses");
    let bin = pipeline.downcast_ref::<gst::Bin>().expect("a bin");
    let teletext = bin
        .by_name("teletext")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .expect("the teletext appsrc");
    for second in 0..20u8 {
        let mut buffer = gst::Buffer::from_slice(teletext_payload(second));
        let b = buffer.get_mut().expect("a new buffer");
        b.set_pts(gst::ClockTime::from_seconds(u64::from(second)));
        b.set_duration(gst::ClockTime::SECOND);
        teletext.push_buffer(buffer).expect("queued");
    }
    teletext.end_of_stream().expect("queued");
    run_to_eos(&pipeline);
    let location = output.to_string_lossy();
    for (pid, descriptors) in SUBTITLE_PIDS.iter().zip(SUBTITLE_DESCRIPTORS) {
        let pid = pid.to_string();
        let args = [
            &["set", &location, &pid][..],
            &descriptors.split(' ').collect::<Vec<_>>(),
        ]
        .concat();
        ts_pmt(&args);
    }
    output
}

/// The packets of subtitle stream `index` of `file`: (PTS in s from the
/// first video frame's, MD5 of the payload).
fn subtitle_packets(file: &Path, index: usize) -> Vec<(f64, String)> {
    let first_video = ffprobe_pts(file, "v:0").first().copied().unwrap_or(0.0);
    let stream = format!("s:{index}");
    let pts = ffprobe_pts(file, &stream);
    let hashes = stream_packets(file, &stream);
    assert_eq!(pts.len(), hashes.len(), "{stream}");
    pts.into_iter()
        .zip(hashes)
        .map(|(pts, packet)| (pts - first_video, packet.md5))
        .collect()
}

/// Every packet's PTS (s) of `stream` (ffprobe's stream specifier).
fn ffprobe_pts(file: &Path, stream: &str) -> Vec<f64> {
    ffprobe_entries(file, stream, "packet=pts_time")
        .iter()
        .filter_map(|l| l.trim_end_matches(',').parse().ok())
        .collect()
}

/// ffprobe's `entries` of `stream` of `file`, a line each, empty ones left out.
fn ffprobe_entries(file: &Path, stream: &str, entries: &str) -> Vec<String> {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream])
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// DVB subtitles and teletext in a TS → the worker → TS: both streams come
/// out with the codec ffprobe reads in the input, every packet byte for
/// byte, each at the same time from the first video frame as in the input
/// (they wait for the video stsdub holds), on the input's PIDs and with
/// the input's descriptors in every PMT (teletext pages, subtitle pages
/// and languages); by the one-language worker and the multi-language one.
#[test]
fn dvb_subtitles_and_teletext_are_carried_byte_for_byte_in_step() {
    init();
    let input = ts_with_subtitles();
    let sts = EchoSts::start(&["--transform", "identity"]);
    for (name, languages) in [
        ("one", &[][..]),
        ("es-fr", &["--target-languages", "es,fr"]),
    ] {
        let output = scratch(&format!("dubbed-dvbsub-teletext-{name}.ts"));
        let worker = run_worker(&input, &sts.url, &output, languages);
        let stderr = String::from_utf8_lossy(&worker.stderr);
        assert!(worker.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains("left out"), "{name}: {stderr}");
        assert_subtitles_carried(&input, &output);
    }
}

/// DVB subtitles and teletext of `input` in `output`: codecs, packets,
/// times, PIDs, descriptors; the video untouched.
#[track_caller]
fn assert_subtitles_carried(input: &Path, output: &Path) {
    let kinds =
        |file: &Path| -> std::collections::BTreeSet<String> { codecs(file).into_iter().collect() };
    let (kinds_in, kinds_out) = (kinds(input), kinds(output));
    for codec in ["dvb_subtitle", "dvb_teletext"] {
        assert!(
            kinds_in.contains(codec),
            "the input has {codec}: {kinds_in:?}"
        );
        assert!(kinds_out.contains(codec), "{codec} carried: {kinds_out:?}");
    }
    for index in 0..2 {
        let (before, after) = (
            subtitle_packets(input, index),
            subtitle_packets(output, index),
        );
        eprintln!(
            "subtitle stream {index}: {} packets in, {} out",
            before.len(),
            after.len()
        );
        assert_eq!(before.len(), after.len(), "stream {index}: every packet");
        for ((t_in, md5_in), (t_out, md5_out)) in before.iter().zip(&after) {
            assert_eq!(md5_in, md5_out, "stream {index}: the packet at {t_in} s");
            assert!(
                (t_in - t_out).abs() <= 0.000_1,
                "stream {index}: a packet at {t_in} s from the video's first frame comes out at {t_out} s"
            );
        }
    }
    let pids: Vec<String> = SUBTITLE_PIDS.iter().map(|p| format!("{p:#x}")).collect();
    assert_eq!(stream_pids(input, "s"), pids, "the input's PIDs");
    assert_eq!(stream_pids(output, "s"), pids, "the input's PIDs, kept");
    let es_info = |file: &Path| -> serde_json::Value {
        let dump = ts_pmt(&["dump", &file.to_string_lossy()]);
        serde_json::from_str(&dump).unwrap_or_else(|e| panic!("{e}: {dump}"))
    };
    let (info_in, info_out) = (es_info(input), es_info(output));
    for (pid, descriptors) in pids.iter().zip(SUBTITLE_DESCRIPTORS) {
        assert_eq!(
            info_in[pid],
            descriptors.replace(' ', ""),
            "the input's {pid}"
        );
        assert_eq!(
            info_out[pid], info_in[pid],
            "{pid} described as in the input, in every PMT"
        );
    }
    assert_video_untouched(input, output, VideoCodec::H264);
}

/// The PIDs of the streams of `kind` (ffprobe's stream specifier letter),
/// each once (ffprobe lists a program's streams, then all streams).
fn stream_pids(file: &Path, kind: &str) -> Vec<String> {
    ffprobe_entries(file, kind, "stream=id")
        .into_iter()
        .fold(Vec::new(), |mut pids, pid| {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
            pids
        })
}

/// SCTE-35 cues made with GStreamer's own mpegts library, which
/// gstreamer-rs does not bind: loaded with dlopen (the MPEG-TS plugins
/// load it anyway), three of its functions called.
mod scte35 {
    use std::ffi::{CStr, c_void};

    use gst::glib::translate::ToGlibPtr;

    type SpliceOutNew = unsafe extern "C" fn(u32, u64, u64) -> *mut c_void;
    type SectionFromSit = unsafe extern "C" fn(*mut c_void, u16) -> *mut c_void;
    type SendEvent = unsafe extern "C" fn(*mut c_void, *mut gst::ffi::GstElement) -> i32;
    type Initialize = unsafe extern "C" fn();

    fn symbol(library: *mut c_void, name: &CStr) -> *mut c_void {
        // SAFETY: `library` is a handle dlopen returned; `name` is a C string.
        let found = unsafe { libc::dlsym(library, name.as_ptr()) };
        assert!(!found.is_null(), "{name:?} in libgstmpegts-1.0");
        found
    }

    /// Sends `muxer` (an mpegtsmux with `scte-35-pid` set) a splice_insert
    /// (out of network) cue `event_id` at running time `at`, `duration` long.
    pub fn send_splice_out(
        muxer: &gst::Element,
        event_id: u32,
        at: gst::ClockTime,
        duration: gst::ClockTime,
    ) {
        // SAFETY: the library and its symbols are GStreamer 1.22's, called
        // with the types its headers declare (gst/mpegts/gst-scte-section.h,
        // gstmpegtssection.h); the SIT and section are owned by the library
        // (send_event takes the section's reference).
        unsafe {
            let library = libc::dlopen(c"libgstmpegts-1.0.so.0".as_ptr(), libc::RTLD_NOW);
            assert!(
                !library.is_null(),
                "libgstmpegts-1.0.so.0 (gst-plugins-bad)"
            );
            let initialize: Initialize =
                std::mem::transmute(symbol(library, c"gst_mpegts_initialize"));
            let splice_out: SpliceOutNew =
                std::mem::transmute(symbol(library, c"gst_mpegts_scte_splice_out_new"));
            let from_sit: SectionFromSit =
                std::mem::transmute(symbol(library, c"gst_mpegts_section_from_scte_sit"));
            let send: SendEvent =
                std::mem::transmute(symbol(library, c"gst_mpegts_section_send_event"));
            initialize();
            let sit = splice_out(event_id, at.nseconds(), duration.nseconds());
            let section = from_sit(sit, 500);
            assert!(!section.is_null(), "an SCTE-35 section");
            send(section, muxer.to_glib_none().0);
        }
    }
}

/// The splice_insert cues of `file`, as threefive (an independent SCTE-35
/// parser) reads them: (event id, splice time in s on the file's PTS, its
/// pts_adjustment added, as a splicer adds it).
fn splice_cues(file: &Path) -> Vec<(u64, f64)> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    let script = "import json, sys, threefive\n\
        cues = []\n\
        def found(cue):\n\
        \x20   c = cue.command\n\
        \x20   if c.name == 'Splice Insert' and c.pts_time is not None:\n\
        \x20       at = (c.pts_time + cue.info_section.pts_adjustment) % (2**33 / 90000)\n\
        \x20       cues.append([c.splice_event_id, at])\n\
        threefive.Stream(sys.argv[1]).decode(func=found)\n\
        print(json.dumps(cues))";
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python runs (bash scripts/interop-setup.sh installs threefive)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or("[]");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The marks sample as MPEG-TS with SCTE-35 splice_insert cues (out of
/// network, 10 s breaks) at 20 s and 40 s, made by mpegtsmux.
fn ts_with_cues() -> PathBuf {
    let output = scratch("marks-scte35.ts");
    if output.exists() {
        return output;
    }
    let marks = marks_sample(60);
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux name=q q.video_0 ! queue ! h264parse ! mux. q.audio_0 ! queue ! aacparse ! mux. \
         mpegtsmux name=mux scte-35-pid=500 ! filesink location={}",
        marks.display(),
        output.display()
    ))
    .expect("the launch line parses");
    let bin = pipeline.downcast_ref::<gst::Bin>().expect("a bin");
    let muxer = bin.by_name("mux").expect("the muxer");
    // mpegtsmux keeps one cue waiting: each is sent 5 s before its time,
    // as a cue is (the video's stamps are its running times here).
    let cues = std::sync::Mutex::new(vec![(40u32, 40u64), (20, 20)]);
    let parse = bin
        .iterate_elements()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "h264parse"))
        .expect("h264parse");
    let weak_muxer = muxer.downgrade();
    parse.static_pad("src").expect("a src pad").add_probe(
        gst::PadProbeType::BUFFER,
        move |_, info| {
            let pts = info.buffer().and_then(|b| b.pts());
            let Ok(mut cues) = cues.lock() else {
                return gst::PadProbeReturn::Ok;
            };
            if let (Some(pts), Some(&(id, at))) = (pts, cues.last())
                && pts + gst::ClockTime::from_seconds(5) >= gst::ClockTime::from_seconds(at)
                && let Some(muxer) = weak_muxer.upgrade()
            {
                scte35::send_splice_out(
                    &muxer,
                    id,
                    gst::ClockTime::from_seconds(at),
                    gst::ClockTime::from_seconds(10),
                );
                cues.pop();
            }
            gst::PadProbeReturn::Ok
        },
    );
    run_to_eos(&pipeline);
    output
}

/// The index of the video frame of `file` whose timestamp is `seconds`
/// (within half a frame at 25 fps); None when no frame is there.
fn video_frame_at(file: &Path, seconds: f64) -> Option<usize> {
    ffprobe_pts(file, "v:0")
        .into_iter()
        .position(|pts| (pts - seconds).abs() < 0.02)
}

/// SCTE-35 splice_insert cues at 20 s and 40 s (made by mpegtsmux with
/// GStreamer's mpegts library) → the worker, TS → TS: both cues come out,
/// each splice time on the same video frame as in the input, as threefive
/// reads them.
#[test]
fn scte35_cues_come_out_on_their_frames() {
    init();
    let input = ts_with_cues();
    let cues_in = splice_cues(&input);
    assert_eq!(
        cues_in.iter().map(|c| c.0).collect::<Vec<_>>(),
        [20, 40],
        "the input's cues: {cues_in:?}"
    );
    let sts = EchoSts::start(&["--transform", "identity"]);
    let output = scratch("dubbed-scte35.ts");
    let worker = run_worker(&input, &sts.url, &output, &[]);
    assert!(
        worker.status.success(),
        "{}",
        String::from_utf8_lossy(&worker.stderr)
    );
    let cues_out = splice_cues(&output);
    eprintln!("cues in {cues_in:?}, out {cues_out:?}");
    assert_eq!(cues_out.len(), cues_in.len(), "{cues_out:?}");
    for ((id_in, at_in), (id_out, at_out)) in cues_in.iter().zip(&cues_out) {
        assert_eq!(id_in, id_out);
        let frame_in = video_frame_at(&input, *at_in).expect("a frame at the cue in");
        let frame_out = video_frame_at(&output, *at_out).expect("a frame at the cue out");
        assert!(
            frame_in.abs_diff(frame_out) <= 1,
            "cue {id_in}: frame {frame_in} in, {frame_out} out"
        );
    }
    assert_video_untouched(&input, &output, VideoCodec::H264);
}

#[test]
fn an_input_the_worker_cannot_take_stops_it_at_start_with_what_was_found() {
    // From the network the input cannot be probed first: MP2 over UDP is
    // refused as soon as its stream appears, naming it.
    let mp2 = ts_with_audio(&sample(), "mp2", &[], 5);
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port");
    let mut worker = std::process::Command::new(program("stsdub-worker"))
        .args(["--input", &format!("udp://127.0.0.1:{port}")])
        .args(["--sts-url", &dead_url(), "--output"])
        .arg(scratch("refused.ts"))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the worker runs");
    let mut sender = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-re", "-i"])
        .arg(&mp2)
        .args(["-c", "copy", "-f", "mpegts"])
        .arg(format!("udp://127.0.0.1:{port}?pkt_size=1316"))
        .spawn()
        .expect("the sender runs");
    let status = wait_exit(&mut worker, Duration::from_secs(30));
    let _ = sender.kill();
    let _ = sender.wait();
    let mut stderr = String::new();
    if let Some(mut pipe) = worker.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(
        stderr.contains("the input's audio is audio/mpeg") && stderr.contains("mpegversion=(int)1"),
        "{stderr}"
    );
    assert!(stderr.contains("the worker takes AAC"), "{stderr}");

    let hevc = h265_sample("ts");
    let (status, stderr) = worker_stderr(&hevc, &[]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains("the input's video is video/x-h265")
            && stderr.contains("h265 is the other"),
        "{stderr}"
    );

    let (status, stderr) = worker_stderr(Path::new("song.mp3"), &[]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot tell how to read song.mp3"),
        "{stderr}"
    );
}

#[test]
fn worker_sh_takes_input_url_output_url_and_target_languages() {
    let input = sample_as("ts");
    let output = scratch("worker-sh-three-languages.mkv");
    let sts = EchoSts::start(&[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/worker.sh");
    let run = std::process::Command::new("bash")
        .arg(script)
        .env("INPUT_URL", &input)
        .env("OUTPUT_URL", &output)
        .env("TARGET_LANGUAGES", "es,fr,de")
        .env("STS_URL", &sts.url)
        .env("STREAM_ID", "match-7")
        .env("WORKER_BIN", program("stsdub-worker"))
        .env_remove("RTSP_URL")
        .env_remove("RTMP_URL")
        .output()
        .expect("worker.sh runs");
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        table.contains("stream-id=\"match-7-de\""),
        "the pipeline printed: {table}"
    );
    assert!(table.contains("segments: 30  dubbed: 30"), "{table}");
    let mut languages: Vec<String> = stream_languages(&output)
        .into_iter()
        .filter(|(kind, _)| kind == "audio")
        .map(|(_, language)| language)
        .collect();
    languages.sort();
    assert_eq!(languages, ["eng", "fre", "ger", "spa"]);
}

#[test]
fn flv_gets_one_file_per_language_each_with_the_video() {
    let input = sample();
    dub_into_es_and_fr(&input, "match-2", &scratch("per-language-{lang}.flv"));
    let seconds_in = decoded_seconds(&input, "a:0");
    for language in ["en", "es", "fr"] {
        let file = scratch(&format!("per-language-{language}.flv"));
        // flvmux (streamable) writes its metadata again as parsers' bitrate
        // tags change, which ffprobe lists as a text stream, with or
        // without stsdub: one video and one audio stream is what counts.
        let kinds: Vec<String> = stream_languages(&file)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            (
                kinds.iter().filter(|k| *k == "video").count(),
                kinds.iter().filter(|k| *k == "audio").count()
            ),
            (1, 1),
            "{language}: {kinds:?}"
        );
        assert_video_untouched(&input, &file, VideoCodec::H264);
        let seconds = decoded_seconds(&file, "a:0");
        assert!(
            (seconds - seconds_in).abs() <= AAC_FRAME_S,
            "{language}: {seconds} s of {seconds_in} s"
        );
    }
}
