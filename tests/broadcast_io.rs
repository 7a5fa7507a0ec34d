// SPDX-License-Identifier: MPL-2.0

//! Broadcast inputs and outputs, non-live: MPEG-TS in and out with several
//! languages from one input, every file kind the worker reads, H.265
//! passing untouched, and inputs it cannot take refused at start with what
//! was found. The pipelines are the worker's own (`stsdub_worker::pipeline`),
//! against the echo STS; the outputs are read back with ffprobe/ffmpeg.

mod common;

use std::path::{Path, PathBuf};
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
        assert_length_kept(codec, &input, &output);
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
/// last, cut or padded), LATM included (its LOAS is rewritten as ADTS
/// before aacparse, which lost 20 frames of it).
#[track_caller]
fn assert_length_kept(codec: &str, input: &Path, output: &Path) {
    let (seconds_in, seconds_out) = (
        decoded_seconds(input, "a:0"),
        decoded_seconds(output, "a:0"),
    );
    let frame = match codec {
        "mp2" => 1152.0,
        "ac3" | "eac3" => 1536.0,
        _ => 1024.0,
    } / 48_000.0;
    eprintln!("{codec}: {seconds_in} s of audio in, {seconds_out} s out");
    assert!(
        (seconds_in - seconds_out).abs() <= frame + 0.001,
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

/// DVB subtitles and teletext in a TS → the worker → TS: both streams come
/// out with the codec ffprobe reads in the input, every packet byte for
/// byte, each at the same time from the first video frame as in the input
/// (they wait for the video stsdub holds), on the input's PIDs and with
/// the input's descriptors in every PMT (teletext pages, subtitle pages
/// and languages); by the one-language worker and the multi-language one.
#[test]
fn dvb_subtitles_and_teletext_are_carried_byte_for_byte_in_step() {
    init();
    let input = marks_ts(20, &[], true);
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
        assert_video_untouched(&input, &output, VideoCodec::H264);
    }
}

/// SCTE-35 splice_insert cues at 20 s and 40 s (made by mpegtsmux with
/// GStreamer's mpegts library) → the worker, TS → TS: both cues come out,
/// each splice time on the same video frame as in the input, as threefive
/// reads them.
#[test]
fn scte35_cues_come_out_on_their_frames() {
    init();
    let input = marks_ts(60, &[20, 40], false);
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
    // From the network the input cannot be probed first: H.265 over UDP
    // to a worker told H.264 is refused as soon as its stream appears,
    // naming it. (Audio that is not AAC is transcoded there:
    // live_srt_ac3_audio_is_transcoded_dubbed_and_in_sync.)
    let hevc_ts = h265_sample("ts");
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
        .arg(&hevc_ts)
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
        stderr.contains("the input's video is video/x-h265")
            && stderr.contains("h265 is the other"),
        "{stderr}"
    );

    let (status, stderr) = worker_stderr(&hevc_ts, &[]);
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
