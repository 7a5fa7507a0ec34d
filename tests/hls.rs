// SPDX-License-Identifier: MPL-2.0

//! HLS out: the worker as the packager. A file becomes a VOD package with
//! the original and each dubbed language as audio renditions and each
//! dubbed language's words as WebVTT, read back by independent parsers
//! (ffmpeg, Python's m3u8, webvtt-py) and played by GStreamer's own
//! hlsdemux2; outputs the worker cannot write are refused at start.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// One AAC frame at 48 kHz, in seconds.
const AAC_FRAME_S: f64 = 1024.0 / 48_000.0;
/// A/V between two MPEG-TS files of the marks sample: the beep's onset at
/// 8 kHz (0.125 ms) and the 90 kHz stamps, doubled for the two files.
const TS_AV_PRECISION_MS: f64 = 0.5;
/// mpegtsmux's clock base: running time 0 is PTS 3600 s.
const MPEGTS_BASE_S: f64 = 3600.0;

/// The 60 s marks sample as MPEG-TS (a flash and a beep every 5 s).
fn marks_ts() -> PathBuf {
    remuxed(
        &marks_sample(60),
        "marks-60s.ts",
        &["-i", "{}", "-c", "copy", "-f", "mpegts"],
    )
}

/// A fresh folder for a package.
fn package_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs the worker on `input` into `output` with `extra` arguments:
/// (exit code, stdout, stderr).
fn worker(
    input: &Path,
    output: &Path,
    sts_url: &str,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    let run = Command::new(program("stsdub-worker"))
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(["--sts-url", sts_url])
        .args(extra)
        .output()
        .expect("the worker runs");
    (
        run.status.code(),
        String::from_utf8_lossy(&run.stdout).into_owned(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// The package as Python's m3u8 (an independent parser) reads it: the
/// multivariant playlist's media and variants, and every media playlist.
fn parsed_package(master: &Path) -> serde_json::Value {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    let script = r#"
import json, os, sys, m3u8
master = m3u8.load(sys.argv[1])
base = os.path.dirname(sys.argv[1])
def media_playlist(uri):
    p = m3u8.load(os.path.join(base, uri))
    return {"endlist": p.is_endlist, "type": p.playlist_type, "target": p.target_duration,
            "segments": [[s.uri, s.duration, s.program_date_time.timestamp() if s.program_date_time else None]
                         for s in p.segments]}
print(json.dumps({
    "media": [{"type": m.type, "language": m.language, "name": m.name, "default": m.default,
               "autoselect": m.autoselect, "uri": m.uri, "instream_id": m.instream_id,
               "playlist": media_playlist(m.uri) if m.uri else None} for m in master.media],
    "variants": [{"bandwidth": v.stream_info.bandwidth, "codecs": v.stream_info.codecs,
                  "resolution": v.stream_info.resolution, "audio": v.stream_info.audio,
                  "subtitles": v.stream_info.subtitles, "uri": v.uri,
                  "playlist": media_playlist(v.uri)} for v in master.playlists],
}))
"#;
    let output = Command::new(python)
        .args(["-c", script])
        .arg(master)
        .output()
        .expect("python runs (bash scripts/interop-setup.sh installs m3u8)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the parser's JSON")
}

/// Start times (s) of a rendition's segments: ffprobe's for MPEG-TS, the
/// ID3 timestamp RFC 8216 §3.4 gives packed audio.
fn segment_starts(folder: &Path, playlist: &serde_json::Value) -> Vec<f64> {
    playlist["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            let file = folder.join(s[0].as_str().expect("uri"));
            if file.extension().is_some_and(|e| e == "aac") {
                return packed_audio_start(&file);
            }
            let output = Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-show_entries",
                    "format=start_time",
                    "-of",
                    "csv=p=0",
                ])
                .arg(&file)
                .output()
                .expect("ffprobe runs");
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{}: no start time", file.display()))
        })
        .collect()
}

/// The MPEG-TS timestamp (s) in a packed-audio segment's ID3 PRIV frame
/// `com.apple.streaming.transportStreamTimestamp`: 8 bytes, big-endian,
/// the low 33 bits a 90 kHz PTS.
fn packed_audio_start(file: &Path) -> f64 {
    const OWNER: &[u8] = b"com.apple.streaming.transportStreamTimestamp\0";
    let bytes = std::fs::read(file).expect("segment");
    assert_eq!(&bytes[..3], b"ID3", "{}: no ID3 tag", file.display());
    let at = bytes
        .windows(OWNER.len())
        .position(|w| w == OWNER)
        .unwrap_or_else(|| panic!("{}: no timestamp", file.display()))
        + OWNER.len();
    let stamp = u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    (stamp & ((1 << 33) - 1)) as f64 / 90_000.0
}

/// The package's video and its `audio`-th rendition in one MPEG-TS file,
/// codec copy, as a player joins them.
fn joined(master: &Path, audio: usize, name: &str) -> PathBuf {
    let output = scratch(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(master)
        .args([
            "-map",
            "0:v",
            "-map",
            &format!("0:a:{audio}"),
            "-c",
            "copy",
            "-f",
            "mpegts",
        ])
        .arg(&output)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    output
}

/// A 60 s MPEG-TS file with es and fr dubbed beside the original: a VOD
/// package that ffmpeg opens whole, whose every playlist Python's m3u8
/// parses and closes with EXT-X-ENDLIST, whose renditions are cut
/// together, keep the input's A/V at every mark and its length, and whose
/// WebVTT holds each dubbed segment's words at their time.
#[test]
fn a_file_becomes_a_vod_package_with_every_language_as_a_rendition() {
    let sts = EchoSts::start(&["--transform", "identity"]);
    let input = marks_ts();
    let dir = package_dir("hls-vod");
    let master = dir.join("master.m3u8");
    let sidecars = dir.join("sidecars");
    let (code, table, stderr) = worker(
        &input,
        &master,
        &sts.url,
        &[
            "--target-languages",
            "es,fr",
            "--captions",
            "cea608",
            "--subtitles-dir",
            &sidecars.to_string_lossy(),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(table.contains("fallback: 0"), "{table}");

    let package = parsed_package(&master);
    let media = package["media"].as_array().expect("media");
    let audio: Vec<(&str, bool)> = media
        .iter()
        .filter(|m| m["type"] == "AUDIO")
        .map(|m| (m["language"].as_str().unwrap_or(""), m["default"] == "YES"))
        .collect();
    assert_eq!(audio, [("en", true), ("es", false), ("fr", false)]);
    let subtitles: Vec<&str> = media
        .iter()
        .filter(|m| m["type"] == "SUBTITLES")
        .filter_map(|m| m["language"].as_str())
        .collect();
    assert_eq!(subtitles, ["es", "fr"]);
    // Each language's 608 channel in the video, as CLOSED-CAPTIONS.
    let captions: Vec<(&str, &str)> = media
        .iter()
        .filter(|m| m["type"] == "CLOSED-CAPTIONS")
        .map(|m| {
            (
                m["language"].as_str().unwrap_or(""),
                m["instream_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(captions, [("es", "CC1"), ("fr", "CC3")]);
    let variant = &package["variants"][0];
    assert_eq!(variant["codecs"], "avc1.64000D,mp4a.40.2", "{variant}");
    assert_eq!(variant["resolution"], serde_json::json!([320, 240]));
    assert_eq!(
        (variant["audio"].as_str(), variant["subtitles"].as_str()),
        (Some("audio"), Some("subs"))
    );
    // CLOSED-CAPTIONS have no playlist: they are in the video.
    let mut playlists: Vec<&serde_json::Value> = media
        .iter()
        .filter(|m| m["type"] != "CLOSED-CAPTIONS")
        .map(|m| &m["playlist"])
        .collect();
    playlists.push(&variant["playlist"]);
    for playlist in &playlists {
        assert_eq!(playlist["endlist"], true, "{playlist}");
        assert_eq!(playlist["type"], "vod", "{playlist}");
        assert_eq!(playlist["target"], 6, "{playlist}");
    }

    // Every rendition is cut where the video is, within an audio frame.
    let video_starts = segment_starts(&dir.join("video"), &variant["playlist"]);
    // The sample's GOP is 5 s: a 6 s target takes one each.
    assert_eq!(video_starts.len(), 12, "{video_starts:?}");
    assert!(
        (video_starts[0] - MPEGTS_BASE_S).abs() < 0.001,
        "{video_starts:?}"
    );
    for language in ["en", "es", "fr"] {
        let playlist = &media
            .iter()
            .find(|m| m["type"] == "AUDIO" && m["language"] == language)
            .expect("rendition")["playlist"];
        let starts = segment_starts(&dir.join(format!("audio_{language}")), playlist);
        assert_eq!(starts.len(), video_starts.len(), "{language}: {starts:?}");
        for (audio, video) in starts.iter().zip(&video_starts) {
            assert!(
                (audio - video).abs() <= AAC_FRAME_S,
                "{language}: a segment at {audio} s beside the video's at {video} s"
            );
        }
    }

    // Every rendition dates its segments on the video's clock.
    let dates = |playlist: &serde_json::Value| -> Vec<f64> {
        playlist["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .map(|s| s[2].as_f64().expect("EXT-X-PROGRAM-DATE-TIME"))
            .collect()
    };
    let video_dates = dates(&variant["playlist"]);
    for m in media
        .iter()
        .filter(|m| m["type"] == "AUDIO" || m["type"] == "SUBTITLES")
    {
        let rendition_dates = dates(&m["playlist"]);
        assert_eq!(rendition_dates.len(), video_dates.len(), "{m}");
        for (date, video) in rendition_dates.iter().zip(&video_dates) {
            // An audio segment starts at its first frame, within a frame
            // of the cut; dates are in whole ms.
            assert!(
                (date - video).abs() <= AAC_FRAME_S + 0.001,
                "{}: dated {date}, its video segment {video}",
                m["uri"]
            );
        }
    }

    // Whole, and in sync: the video's every frame, each audio as long as
    // the input's, A/V at every mark as in the input.
    let frames = |file: &Path| {
        let output = Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(file)
            .output()
            .expect("ffprobe runs");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(frames(&master), frames(&input));
    let seconds_in = decoded_seconds(&input, "a:0");
    let marks_in = sync_offsets_ms(&input, 0, false);
    for (index, language) in ["en", "es", "fr"].into_iter().enumerate() {
        let seconds = decoded_seconds(&master, &format!("a:{index}"));
        eprintln!("{language}: {seconds:.3} s of audio, the input {seconds_in:.3} s");
        assert!(
            (seconds - seconds_in).abs() <= 0.1,
            "{language}: {seconds} s"
        );
        let marks = sync_offsets_ms(
            &joined(&master, index, &format!("hls-{language}.ts")),
            0,
            false,
        );
        eprintln!("{language}: A/V in {marks_in:?} ms, out {marks:?} ms");
        assert_eq!(marks.len(), marks_in.len(), "{language}: every mark found");
        for (out, before) in marks.iter().zip(&marks_in) {
            assert!(
                (out - before).abs() <= TS_AV_PRECISION_MS,
                "{language}: A/V {out} ms, {before} ms in the input"
            );
        }
    }

    // The WebVTT renditions say what the sidecars say, at the same times
    // on the package's timeline (its running time, first frame at 0).
    for language in ["es", "fr"] {
        let folder = dir.join(format!("subtitles_{language}"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .expect("subtitles")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "vtt"))
            .collect();
        files.sort();
        assert_eq!(
            files.len(),
            video_starts.len(),
            "a WebVTT segment per video segment"
        );
        let in_package = webvtt_cues(&files);
        let in_sidecar = webvtt_cues(&[sidecars.join(format!("{language}.vtt"))]);
        assert!(
            !in_sidecar.is_empty(),
            "the STS said something in {language}"
        );
        assert_eq!(
            in_package.len(),
            in_sidecar.len(),
            "{language}: {in_package:?}"
        );
        // The sidecars are on the stream's time, the package on its running
        // time (its first video frame at 0): one shift between the two,
        // taken from a cue's end. A cue that starts before the first frame
        // starts at 0.
        let shift = in_sidecar[0].1 - in_package[0].1;
        eprintln!(
            "{language}: {} cues, sidecar minus package {shift:.3} s",
            in_package.len()
        );
        for (cue, reference) in in_package.iter().zip(&in_sidecar) {
            assert_eq!(cue.2, reference.2, "{language}");
            assert!(
                ((reference.0 - shift).max(0.0) - cue.0).abs() <= 0.001,
                "{cue:?} {reference:?}"
            );
            assert!(
                (reference.1 - cue.1 - shift).abs() <= 0.001,
                "{cue:?} {reference:?}"
            );
        }
    }
}

/// A folder served over HTTP by Python's http.server, as any origin
/// serves a package; stopped when dropped.
struct HttpFolder {
    child: std::process::Child,
    url: String,
}

impl HttpFolder {
    fn serve(dir: &Path) -> Self {
        let port = free_port();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        // Serving once it says so (its first line), within 10 s.
        let stdout = child.stdout.take().expect("stdout");
        let (said, heard) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = said.send(line);
        });
        let line = heard
            .recv_timeout(Duration::from_secs(10))
            .expect("http.server starts");
        assert!(line.starts_with("Serving HTTP"), "{line}");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for HttpFolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GStreamer's own HLS client (hlsdemux2, through playbin3) plays the
/// package, served over HTTP, to its end.
#[test]
fn gstreamer_hlsdemux2_plays_the_package_to_its_end() {
    let sts = EchoSts::start(&["--transform", "identity"]);
    let dir = package_dir("hls-playbin3");
    let master = dir.join("master.m3u8");
    let (code, _, stderr) = worker(
        &marks_ts(),
        &master,
        &sts.url,
        &["--target-languages", "es"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_hlsdemux2_plays_to_its_end(&dir);
}

/// A radio programme (the marks sample's audio alone, 60 s of MPEG-TS)
/// with es and fr dubbed: an audio-only package. The variant is the
/// original's audio (its EXT-X-MEDIA without a URI, so no player loads it
/// twice); no video is listed or written; every rendition is cut at the
/// same times, every target duration, and decodes to the input's length
/// (to an AAC frame); the WebVTT renditions run to the end; and
/// GStreamer's hlsdemux2 plays it to its end.
#[test]
fn an_audio_only_input_becomes_an_audio_only_package() {
    let input = remuxed(
        &marks_sample(60),
        "marks-60s-audio-only.ts",
        &["-i", "{}", "-vn", "-c", "copy", "-f", "mpegts"],
    );
    let sts = EchoSts::start(&[]);
    let dir = package_dir("hls-audio-only");
    let master = dir.join("master.m3u8");
    let languages = ["--target-languages", "es,fr"];
    let (code, _, stderr) = worker(&input, &master, &sts.url, &languages);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("no video"), "{stderr}");
    assert!(!dir.join("video").exists(), "no video rendition");
    let package = parsed_package(&master);
    let variants = package["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 1, "{package}");
    let variant = &variants[0];
    assert_eq!(variant["codecs"], "mp4a.40.2", "{variant}");
    assert!(variant["resolution"].is_null(), "{variant}");
    let media = package["media"].as_array().expect("media");
    let audio: Vec<&serde_json::Value> = media.iter().filter(|m| m["type"] == "AUDIO").collect();
    assert_eq!(audio.len(), 3, "{package}");
    let default = audio
        .iter()
        .find(|m| m["default"] == "YES")
        .expect("a default");
    assert!(
        default["uri"].is_null(),
        "the default is the variant's: {default}"
    );
    let original_folder = format!("audio_{}", default["language"].as_str().expect("language"));
    assert_eq!(variant["uri"], format!("{original_folder}/index.m3u8"));
    // The original (the variant's playlist) and each dub, cut together.
    let mut playlists = vec![(dir.join(&original_folder), &variant["playlist"])];
    for dub in audio.iter().filter(|m| !m["uri"].is_null()) {
        let uri = dub["uri"].as_str().expect("uri");
        let folder = dir.join(uri.split('/').next().expect("folder"));
        playlists.push((folder, &dub["playlist"]));
    }
    let starts: Vec<Vec<f64>> = playlists
        .iter()
        .map(|(folder, playlist)| {
            assert_eq!(playlist["endlist"], true, "{playlist}");
            segment_starts(folder, playlist)
        })
        .collect();
    assert!(starts[0].len() >= 10, "60 s in 6 s segments: {starts:?}");
    for other in &starts[1..] {
        assert_eq!(other.len(), starts[0].len(), "{starts:?}");
        for (a, b) in starts[0].iter().zip(other) {
            assert!((a - b).abs() <= AAC_FRAME_S, "cut apart: {starts:?}");
        }
    }
    let gaps: Vec<f64> = starts[0].windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g <= 6.0 + AAC_FRAME_S),
        "at most the target duration: {gaps:?}"
    );
    let seconds_in = decoded_seconds(&input, "a:0");
    for index in 0..3 {
        let seconds = decoded_seconds(&master, &format!("a:{index}"));
        assert!(
            (seconds - seconds_in).abs() <= AAC_FRAME_S,
            "rendition {index}: {seconds} s of {seconds_in}"
        );
    }
    for subtitles in media.iter().filter(|m| m["type"] == "SUBTITLES") {
        let listed: f64 = subtitles["playlist"]["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .map(|s| s[1].as_f64().unwrap_or(0.0))
            .sum();
        assert!(
            // The cuts count from running time 0, the audio from its
            // first frame: an AAC frame apart, and WebVTT's whole ms.
            (listed - seconds_in).abs() <= AAC_FRAME_S + 0.001,
            "{}: {listed} s listed of {seconds_in}",
            subtitles["language"]
        );
    }
    assert_hlsdemux2_plays_to_its_end(&dir);
}

/// playbin3 (hlsdemux2) plays the package in `dir`, served over HTTP, to
/// its end without an error.
fn assert_hlsdemux2_plays_to_its_end(dir: &Path) {
    let origin = HttpFolder::serve(dir);
    let run = run_pipeline(
        &format!(
            "playbin3 uri={}/master.m3u8 video-sink=fakesink audio-sink=fakesink",
            origin.url
        ),
        Duration::from_secs(120),
    );
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
}

/// What cannot be written is refused at start, exit 2, with what is wrong:
/// a folder that cannot be made, and settings out of their ranges.
#[test]
fn an_hls_output_that_cannot_be_written_is_refused_at_start() {
    let dir = package_dir("hls-refused");
    std::fs::create_dir_all(&dir).expect("dir");
    // A file where the package's folder would be.
    let blocker = dir.join("blocked");
    std::fs::write(&blocker, b"not a folder").expect("file");
    let input = marks_ts();
    let (code, _, stderr) = worker(&input, &blocker.join("master.m3u8"), &dead_url(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("HLS output: cannot make"), "{stderr}");
    for (flag, value, says) in [
        (
            "--hls-segment-duration",
            "0",
            "--hls-segment-duration 0: 1..=60 seconds",
        ),
        (
            "--hls-playlist-length",
            "1",
            "--hls-playlist-length 1: 3..=1000 segments",
        ),
        (
            "--hls-segment-duration",
            "six",
            "--hls-segment-duration \"six\": whole seconds",
        ),
    ] {
        let (code, _, stderr) = worker(
            &input,
            &dir.join("master.m3u8"),
            &dead_url(),
            &[flag, value],
        );
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    assert!(!dir.join("master.m3u8").exists(), "nothing written");
}

/// gst-rtsp-server playing the 60 s marks sample once, in real time.
fn rtsp_marks_source() -> EchoSts {
    let mut command = Command::new(example("rtsp_source"));
    command.arg("--file").arg(marks_sample(60));
    EchoSts::spawn(command)
}

/// The worker from the RTSP `input` to the HLS package `master`, in the
/// low-latency profile (4 s from the input to stsdub's output), with
/// `extra` arguments; its stderr to `stderr`.
fn live_worker(
    input: &str,
    master: &Path,
    sts_url: &str,
    extra: &[&str],
    stderr: std::process::Stdio,
) -> std::process::Child {
    Command::new(program("stsdub-worker"))
        .args(["--input", input, "--output"])
        .arg(master)
        .args(["--sts-url", sts_url])
        .args(extra)
        .args([
            "--stsdub-properties",
            "segmentation=pauses segment-duration=2500 timeout=1000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the worker starts")
}

/// Whether a listed segment is whole: MPEG-TS in whole 188-byte packets,
/// packed audio an ID3 tag then ADTS frames to the last byte, WebVTT with
/// its header.
fn segment_is_whole(file: &Path) -> bool {
    let Ok(bytes) = std::fs::read(file) else {
        return false;
    };
    match file.extension().and_then(|e| e.to_str()) {
        Some("ts") => {
            !bytes.is_empty() && bytes.len() % 188 == 0 && bytes.chunks(188).all(|p| p[0] == 0x47)
        }
        Some("aac") => {
            if bytes.len() < 10 || &bytes[..3] != b"ID3" {
                return false;
            }
            let tag = bytes[6..10]
                .iter()
                .fold(0usize, |size, b| size << 7 | usize::from(b & 0x7f));
            let mut at = 10 + tag;
            while at + 7 <= bytes.len() {
                if bytes[at] != 0xff || bytes[at + 1] & 0xf0 != 0xf0 {
                    return false;
                }
                let length = usize::from(bytes[at + 3] & 0x03) << 11
                    | usize::from(bytes[at + 4]) << 3
                    | usize::from(bytes[at + 5]) >> 5;
                if length < 7 {
                    return false;
                }
                at += length;
            }
            at == bytes.len() && at > 10 + tag
        }
        Some("vtt") => bytes.starts_with(b"WEBVTT"),
        _ => false,
    }
}

/// What a poll of a live media playlist saw.
struct Seen {
    /// The newest segment's index (from its name) at each change.
    newest: Vec<u64>,
    /// Segments listed while not whole.
    broken: Vec<String>,
}

/// The index in `segment00012.ts`.
fn segment_index(uri: &str) -> u64 {
    uri.trim_start_matches("segment")
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Live RTSP in (gst-rtsp-server, the marks sample in real time), HLS out
/// with es beside the original: while the worker writes, every media
/// playlist is read as a player would, often; each change adds the next
/// segment, no playlist ever lists a segment that is not whole, and the
/// latency from the input to the newest video segment is printed. At the
/// stream's end every playlist is closed.
#[test]
fn live_rtsp_to_hls_lists_each_segment_whole_as_it_comes() {
    let sts = EchoSts::start(&["--transform", "identity"]);
    let source = rtsp_marks_source();
    let dir = package_dir("hls-live");
    let master = dir.join("master.m3u8");
    let mut worker = live_worker(
        &source.url,
        &master,
        &sts.url,
        &["--target-languages", "es", "--hls-playlist-length", "3"],
        std::process::Stdio::piped(),
    );
    let playlists = ["video", "audio_en", "audio_es", "subtitles_es"];
    let mut seen: Vec<Seen> = playlists
        .iter()
        .map(|_| Seen {
            newest: Vec::new(),
            broken: Vec::new(),
        })
        .collect();
    let mut latencies = Vec::new();
    let mut video_durations = std::collections::BTreeMap::new();
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(180);
    // Sampling, not synchronisation: a player polls the same way, and
    // nothing here waits for the worker but its exit.
    while worker.try_wait().expect("the worker").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker ends with its input"
        );
        for (name, seen) in playlists.iter().zip(&mut seen) {
            let folder = dir.join(name);
            let Ok(text) = std::fs::read(folder.join("index.m3u8")) else {
                continue;
            };
            let Ok(playlist) = m3u8_rs::parse_media_playlist_res(&text) else {
                seen.broken
                    .push(format!("{name}/index.m3u8 does not parse"));
                continue;
            };
            for segment in &playlist.segments {
                if !segment_is_whole(&folder.join(&segment.uri)) {
                    seen.broken.push(format!("{name}/{}", segment.uri));
                }
            }
            let Some(last) = playlist.segments.last() else {
                continue;
            };
            let newest = segment_index(&last.uri);
            if seen.newest.last() != Some(&newest) {
                seen.newest.push(newest);
                if *name == "video" {
                    // From the input (played in real time from the
                    // worker's start, less its connect time) to the newest
                    // segment listed: wall time now against where the
                    // segment ends in the stream.
                    for segment in &playlist.segments {
                        video_durations.insert(segment_index(&segment.uri), segment.duration);
                    }
                    let end_s: f32 = video_durations.range(..=newest).map(|(_, d)| d).sum();
                    let since_start =
                        started.elapsed().as_millis() as i64 - (end_s * 1000.0) as i64;
                    // And as a player reckons it: its EXT-X-PROGRAM-DATE-TIME
                    // (when its first frame was captured) plus its length,
                    // against the wall clock now.
                    let by_date = last.program_date_time.map(|captured| {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as i64);
                        now - captured.timestamp_millis() - (last.duration * 1000.0) as i64
                    });
                    latencies.push((since_start, by_date));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = worker.wait().expect("the worker");
    let mut stderr = String::new();
    if let Some(mut pipe) = worker.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert!(status.success(), "{stderr}");
    eprintln!(
        "latency from the input to the newest video segment listed, at each (ms since the \
         worker started, ms by its program date-time): {latencies:?}"
    );
    for (name, seen) in playlists.iter().zip(&seen) {
        eprintln!("{name}: newest segment at each change {:?}", seen.newest);
        assert!(
            seen.broken.is_empty(),
            "{name}: listed before whole: {:?}",
            seen.broken
        );
        assert!(seen.newest.len() >= 8, "{name}: {:?}", seen.newest);
        // At the input's end stsdub lets go of what it held at once: the
        // last segments may come together.
        let before_the_end = &seen.newest[..seen.newest.len() - 1];
        for pair in before_the_end.windows(2) {
            assert_eq!(
                pair[1],
                pair[0] + 1,
                "{name}: one segment at a time: {:?}",
                seen.newest
            );
        }
        let text = std::fs::read(dir.join(name).join("index.m3u8")).expect("playlist");
        let playlist = m3u8_rs::parse_media_playlist_res(&text).expect("parses");
        assert!(playlist.end_list, "{name}: closed at the end");
        assert!(playlist.segments.len() <= 3, "{name}: a window of 3");
    }
    assert!(!latencies.is_empty());
    // The window slid: what no playlist lists any more is deleted, two
    // segments kept for players still fetching them.
    for name in playlists {
        let files = std::fs::read_dir(dir.join(name))
            .expect("folder")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("segment"))
            .count();
        assert!(files <= 3 + 2, "{name}: {files} segment files");
    }
}

/// A real browser player: hls.js in Debian's headless chromium
/// (`tests/interop/hls_player.mjs`) plays the live package while the
/// worker writes it, lists the three audio and two subtitle languages,
/// switches the audio to fr mid-stream without a stall (the video's time
/// keeps advancing), and shows a Spanish subtitle, screenshotted.
#[test]
fn hls_js_in_chromium_plays_the_live_package_and_switches_language() {
    let sts = EchoSts::start(&["--transform", "identity"]);
    let source = rtsp_marks_source();
    let site = package_dir("hls-browser");
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    std::fs::create_dir_all(&site).expect("site");
    for (from, to) in [
        (interop.join("hls_player.html"), "hls_player.html"),
        (
            interop.join("node_modules/hls.js/dist/hls.min.js"),
            "hls.min.js",
        ),
    ] {
        std::fs::copy(&from, site.join(to))
            .unwrap_or_else(|e| panic!("{}: {e} (bash scripts/interop-setup.sh)", from.display()));
    }
    let master = site.join("package/master.m3u8");
    let mut worker = live_worker(
        &source.url,
        &master,
        &sts.url,
        &["--target-languages", "es,fr"],
        std::process::Stdio::null(),
    );
    // The player joins once the live window holds four segments, as a
    // viewer joins a stream under way: hls.js starts three segments back
    // from the live edge (joining at the first segment, it played into
    // the live edge and waited there, which says nothing of a switch).
    let video_playlist = site.join("package/video/index.m3u8");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !master.exists()
        || std::fs::read(&video_playlist)
            .ok()
            .and_then(|text| m3u8_rs::parse_media_playlist_res(&text).ok())
            .is_none_or(|p| p.segments.len() < 4)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no live window of four segments"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let origin = HttpFolder::serve(&site);
    let screenshot = scratch("hls-js-spanish-subtitle.png");
    let mut player = Command::new("node")
        .current_dir(&interop)
        .arg("hls_player.mjs")
        .arg("/usr/bin/chromium")
        .arg(format!("{}/hls_player.html", origin.url))
        .args(["fr", "es"])
        .arg(&screenshot)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("node runs (bash scripts/interop-setup.sh)");
    let finished = wait_exit(&mut player, Duration::from_secs(120)).expect("the player ends");
    let mut out = String::new();
    if let Some(mut pipe) = player.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut out);
    }
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(finished.success(), "the player: {out}");
    let seen: serde_json::Value = serde_json::from_str(out.trim()).expect("the player's JSON");
    eprintln!("hls.js saw: {seen}");
    eprintln!("screenshot with the subtitle: {}", screenshot.display());
    assert_eq!(seen["fatal"], serde_json::json!([]));
    assert_eq!(seen["audioTracks"], serde_json::json!(["en", "es", "fr"]));
    assert_eq!(seen["subtitleTracks"], serde_json::json!(["es", "fr"]));
    assert_eq!(seen["switched"], true);
    assert_eq!(seen["audioTrack"], "fr");
    let times: Vec<f64> = seen["times"]
        .as_array()
        .expect("times")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    for pair in times.windows(2) {
        assert!(pair[1] > pair[0], "a stall after the switch: {times:?}");
    }
    let cue = seen["cue"].as_str().unwrap_or("");
    assert!(
        !cue.starts_with("none") && !cue.is_empty(),
        "no subtitle shown: {cue}"
    );
    assert!(screenshot.exists());
}

/// A tmpfs of `kib` KiB mounted on a fresh folder, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(name: &str, kib: u32) -> Self {
        let dir = package_dir(name);
        std::fs::create_dir_all(&dir).expect("dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "this test mounts a small tmpfs: it runs as root"
        );
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A disk that fills while the package is written: the worker stops with
/// an error naming the file it could not write, and leaves every playlist
/// it wrote listing only whole segments (hlssink3 would otherwise list the
/// video segment it was writing when the pipeline stopped).
#[test]
fn a_disk_that_fills_stops_the_worker_with_every_playlist_whole() {
    let sts = EchoSts::start(&["--transform", "identity"]);
    let disk = SmallDisk::mount("hls-full-disk", 400);
    let master = disk.0.join("master.m3u8");
    let (code, _, stderr) = worker(
        &marks_ts(),
        &master,
        &sts.url,
        &["--target-languages", "es"],
    );
    eprintln!("{stderr}");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains(&*disk.0.to_string_lossy()),
        "{stderr}"
    );
    let mut playlists = 0;
    for folder in ["video", "audio_en", "audio_es", "subtitles_es"] {
        let folder = disk.0.join(folder);
        let Ok(text) = std::fs::read(folder.join("index.m3u8")) else {
            continue;
        };
        playlists += 1;
        let playlist = m3u8_rs::parse_media_playlist_res(&text)
            .unwrap_or_else(|e| panic!("{}: {e:?}", folder.display()));
        for segment in &playlist.segments {
            let file = folder.join(&segment.uri);
            assert!(
                segment_is_whole(&file),
                "{} listed, not whole",
                file.display()
            );
        }
    }
    assert!(playlists >= 1, "the disk held at least one playlist");
    if let Ok(text) = std::fs::read(&master) {
        m3u8_rs::parse_master_playlist_res(&text).expect("a whole multivariant playlist");
    }
}
