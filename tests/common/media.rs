// SPDX-License-Identifier: MPL-2.0

//! Test media: the sample, variants made with ffmpeg, real AAC frames, and
//! readings of files with ffmpeg/ffprobe (packets, decoded audio, codecs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use gst::prelude::*;

use super::*;

/// `target/fixtures/{name}`, made by `scripts/{script} PATH ARGS…` unless
/// it, and the `companions` the script writes beside it, already exist.
fn fixture(name: &str, companions: &[&str], script: &str, args: &[&str]) -> PathBuf {
    let dir = target_dir().join("fixtures");
    std::fs::create_dir_all(&dir).expect("fixtures dir");
    let path = dir.join(name);
    let complete = std::iter::once(name)
        .chain(companions.iter().copied())
        .all(|file| dir.join(file).exists());
    if !complete {
        let status = Command::new("bash")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("scripts")
                    .join(script),
            )
            .arg(&path)
            .args(args)
            .status()
            .unwrap_or_else(|e| panic!("{script} does not run: {e}"));
        assert!(status.success(), "{script} failed");
    }
    path
}

/// The set of speech clips cuts are held to (`scripts/make-speech-set.sh`:
/// four voices, two synthesizers, two languages, three backgrounds at 0, 6
/// and 12 dB under the voice, 30 s each), made once per build: its folder.
pub fn speech_set() -> PathBuf {
    static SET: OnceLock<PathBuf> = OnceLock::new();
    SET.get_or_init(|| {
        fixture(
            "speech-set",
            &["speech-set/done"],
            "make-speech-set.sh",
            &["30"],
        )
    })
    .clone()
}

/// The 60 s sample (speech + test video), made once per test binary run.
pub fn sample() -> PathBuf {
    static SAMPLE: OnceLock<PathBuf> = OnceLock::new();
    SAMPLE
        .get_or_init(|| fixture("sample-60s.mp4", &[], "make-sample.sh", &["60"]))
        .clone()
}

/// The sync-marks sample `seconds` long (a white flash and a beep at the
/// same instants every 5 s: `make-sample.sh OUT SECONDS marks`), made once
/// per build.
pub fn marks_sample(seconds: u32) -> PathBuf {
    let seconds = seconds.to_string();
    fixture(
        &format!("marks-{seconds}s.mp4"),
        &[],
        "make-sample.sh",
        &[&seconds, "marks"],
    )
}

/// Beep minus flash at each sync mark of a recording of the marks sample
/// (audio track `track`), in ms, by `examples/measure_sync`: the beep where
/// a player hears it (by sample count from the track's first stamp) or,
/// `by_stamps`, where its AAC frame's timestamp puts it.
pub fn sync_offsets_ms(file: &Path, track: usize, by_stamps: bool) -> Vec<f64> {
    let mut command = Command::new(example("measure_sync"));
    command.arg(file).arg(track.to_string());
    if by_stamps {
        command.arg("--by-stamps");
    }
    let output = command.output().expect("measure_sync runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "no sync marks found: {text}");
    text.lines()
        .filter_map(|l| l.strip_prefix("mark "))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect()
}

/// A sample `seconds` long (speech + test video), made once per build.
pub fn long_sample(seconds: u32) -> PathBuf {
    let seconds = seconds.to_string();
    fixture(
        &format!("sample-{seconds}s.mp4"),
        &[],
        "make-sample.sh",
        &[&seconds],
    )
}

/// A 60 s news-style clip, speech over pink noise 15 dB below the voice,
/// and its clean speech (48 kHz mono WAV, sample-aligned): made once per
/// build by `scripts/make-speech-clip.sh`.
pub fn speech_clip() -> (PathBuf, PathBuf) {
    const CLEAN: &str = "speech-clip-60s.clean.wav";
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    let clip = CLIP
        .get_or_init(|| {
            fixture(
                "speech-clip-60s.mp4",
                &[CLEAN],
                "make-speech-clip.sh",
                &["60", "15"],
            )
        })
        .clone();
    let clean = clip.with_file_name(CLEAN);
    (clip, clean)
}

/// What `ffmpeg -i file ARGS… -` writes to its standard output; `what` names
/// the job when it fails.
#[track_caller]
fn ffmpeg_stdout(file: &Path, args: &[&str], what: &str) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(args)
        .arg("-")
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg {what} failed on {}",
        file.display()
    );
    output.stdout
}

/// Clicks: the high-frequency energy (RMS of the second difference) of
/// each 10 ms window of mono `samples` at `rate`.
pub fn hf_energy_windows(samples: &[f32], rate: u32) -> Vec<f32> {
    let window = rate as usize / 100;
    samples
        .windows(3)
        .map(|w| w[2] - 2.0 * w[1] + w[0])
        .collect::<Vec<f32>>()
        .chunks(window)
        .map(rms)
        .collect()
}

/// The high-frequency energy of the 10 ms window centred on `at` (a sample
/// index), as a multiple of the programme's 99th percentile of the same
/// measure: above 1, the join stands out from everything else heard.
pub fn click_score(samples: &[f32], rate: u32, at: usize) -> f32 {
    let half = rate as usize / 200;
    let from = at.saturating_sub(half).min(samples.len());
    let to = (at + half + 2).min(samples.len());
    let join = hf_energy_windows(&samples[from..to], rate)
        .first()
        .copied()
        .unwrap_or(0.0);
    let mut all = hf_energy_windows(samples, rate);
    all.sort_by(f32::total_cmp);
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or(0.0);
    join / p99.max(f32::EPSILON)
}

/// `file`'s first audio track decoded by ffmpeg to mono f32 at `rate`.
pub fn decoded_mono(file: &Path, rate: u32) -> Vec<f32> {
    let rate = rate.to_string();
    let args = ["-map", "0:a:0", "-ac", "1", "-ar", &rate, "-f", "s16le"];
    ffmpeg_stdout(file, &args, "decode")
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

/// `source` rewritten by ffmpeg with `args` (`{}` stands for `source`),
/// made once per build as `test-output/{name}`.
pub fn remuxed(source: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = scratch(name);
    if !path.exists() {
        let mut command = Command::new("ffmpeg");
        command.args(["-nostdin", "-v", "error", "-y"]);
        for arg in args {
            command.arg(arg.replace("{}", &source.to_string_lossy()));
        }
        // Complete files only: a test binary killed half-way leaves a part.
        let thread = format!("{:?}", std::thread::current().id()).replace(['(', ')'], "");
        let part = scratch(&format!("part-{}-{thread}-{name}", std::process::id()));
        let status = command.arg(&part).status().expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg could not make {name}");
        std::fs::rename(&part, &path).expect("file in place");
    }
    path
}

/// `source` with its video starting `ms` after its audio.
pub fn video_late(source: &Path, ms: u32, container: &str) -> PathBuf {
    one_track_late(source, "video", ms, container)
}

/// `source` with its audio starting `ms` after its video.
pub fn audio_late(source: &Path, ms: u32, container: &str) -> PathBuf {
    one_track_late(source, "audio", ms, container)
}

/// `source` with its `late` track ("video" or "audio") taken from a copy of
/// itself shifted by `ms`.
fn one_track_late(source: &Path, late: &str, ms: u32, container: &str) -> PathBuf {
    let offset = format!("{:.3}", f64::from(ms) / 1000.0);
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("in");
    let (video, audio) = if late == "video" {
        ("1:v", "0:a")
    } else {
        ("0:v", "1:a")
    };
    remuxed(
        source,
        &format!("{stem}-{late}-late-{ms}.{container}"),
        &[
            "-i",
            "{}",
            "-itsoffset",
            &offset,
            "-i",
            "{}",
            "-map",
            video,
            "-map",
            audio,
            "-c",
            "copy",
        ],
    )
}

/// The sample as GStreamer presents it to stsdub, remuxed to FLV without
/// stsdub: the reference for audio frames and timestamps.
pub fn reference_flv() -> PathBuf {
    static REFERENCE: OnceLock<PathBuf> = OnceLock::new();
    REFERENCE
        .get_or_init(|| {
            let output = scratch("reference.flv");
            let description = format!(
                "filesrc location={} ! qtdemux name=d d.audio_0 ! queue ! aacparse ! mux.audio \
                 d.video_0 ! queue ! h264parse ! mux.video flvmux name=mux ! filesink location={}",
                sample().display(),
                output.display()
            );
            let run = run_pipeline(&description, Duration::from_secs(60));
            assert!(
                run.eos && run.errors.is_empty(),
                "reference remux failed: {run:?}"
            );
            output
        })
        .clone()
}

/// One packet as ffmpeg's framemd5 muxer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub pts: i64,
    pub duration: i64,
    pub size: u64,
    pub md5: String,
}

/// Packets of the first stream of `kind` ("v" or "a"), copied, not decoded.
#[track_caller]
pub fn packets(file: &Path, kind: &str) -> Vec<Packet> {
    stream_packets(file, &format!("{kind}:0"))
}

/// Packets of one stream (`v:0`, `a:2`, …), copied, not decoded.
#[track_caller]
pub fn stream_packets(file: &Path, stream: &str) -> Vec<Packet> {
    let stream = format!("0:{stream}");
    let args = ["-map", &stream, "-c", "copy", "-f", "framemd5"];
    String::from_utf8_lossy(&ffmpeg_stdout(file, &args, "framemd5"))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            Packet {
                pts: f[2].parse().expect("pts"),
                duration: f[3].parse().expect("duration"),
                size: f[4].parse().expect("size"),
                md5: f[5].to_owned(),
            }
        })
        .collect()
}

/// Decoded audio as mono 16 kHz samples (f32, -1..1).
#[track_caller]
pub fn decoded_audio(file: &Path) -> Vec<f32> {
    decoded_mono(file, 16_000)
}

pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

pub fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mean = |x: &[f32]| x.iter().sum::<f32>() / n as f32;
    let (ma, mb) = (mean(a), mean(b));
    let cov: f32 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f32 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f32 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va.sqrt() * vb.sqrt()).max(f32::EPSILON)
}

/// Real AAC-LC frames (a sine), their caps, and timestamps from 0.
pub fn aac_frames(count: usize) -> (gst::Caps, Vec<gst::Buffer>) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc num-buffers={} samplesperbuffer=1024 wave=sine freq=440 ! \
         audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! appsink name=sink sync=false",
        count + 2
    ))
    .expect("encoder pipeline")
    .downcast::<gst::Pipeline>()
    .expect("pipeline");
    let sink = pipeline
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("plays");
    let mut caps = None;
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        caps = caps.or_else(|| sample.caps().map(|c| c.to_owned()));
        frames.extend(sample.buffer_owned());
    }
    pipeline.set_state(gst::State::Null).expect("stops");
    let frame = gst::ClockTime::from_nseconds(1024 * 1_000_000_000 / 48_000);
    let frames = frames
        .into_iter()
        .take(count)
        .enumerate()
        .map(|(i, mut buffer)| {
            let b = buffer.make_mut();
            b.set_pts(frame * i as u64);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(frame);
            b.unset_flags(gst::BufferFlags::DISCONT);
            buffer
        })
        .collect::<Vec<_>>();
    assert_eq!(frames.len(), count, "encoder gave enough frames");
    (caps.expect("encoder caps"), frames)
}

/// The codec of every stream of a file, as ffprobe names them.
pub fn codecs(file: &Path) -> Vec<String> {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&probe.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Seconds of audio in one stream (`a:0`, `a:2`, …) as ffmpeg decodes it
/// (edit lists and priming applied), at 48 kHz.
pub fn decoded_seconds(file: &Path, stream: &str) -> f64 {
    let map = format!("0:{stream}");
    let args = ["-map", &map, "-ac", "1", "-ar", "48000", "-f", "s16le"];
    ffmpeg_stdout(file, &args, "decode").len() as f64 / 2.0 / 48_000.0
}

/// (codec type, language tag or "") of every stream of a file, in order.
pub fn stream_languages(file: &Path) -> Vec<(String, String)> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type:stream_tags=language",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    // MPEG-TS lists each stream under its program too, without its tags:
    // the last listing of an index is the whole one.
    let mut streams = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if let [index, kind, rest @ ..] = fields.as_slice()
            && let Ok(index) = index.parse::<u32>()
        {
            let language = rest.first().copied().unwrap_or("");
            streams.insert(index, ((*kind).to_owned(), language.to_owned()));
        }
    }
    streams.into_values().collect()
}

/// The NAL units of `file`'s first video stream, in order, start codes
/// removed: ffmpeg writes it as an Annex B elementary stream (`format`
/// `h264` or `hevc`; parameter sets in band before every keyframe).
pub fn annex_b_units(file: &Path, format: &str) -> Vec<Vec<u8>> {
    let stream = ffmpeg_stdout(
        file,
        &["-map", "0:v:0", "-c", "copy", "-f", format],
        "annex b",
    );
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let mut end = starts.get(n + 1).map_or(stream.len(), |next| next - 3);
            // A four-byte start code's leading zero is not the NAL's.
            while end > start && stream[end - 1] == 0 && n + 1 < starts.len() {
                end -= 1;
            }
            stream[start..end].to_vec()
        })
        .collect()
}

/// A caption as ffmpeg's decoder gives it: shown from `start` to `end` (s).
#[derive(Debug)]
pub struct Caption {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// `captions` taken together by the segment they show in: the segment
/// starting at `starts[i]` (s) has the captions from a frame before its
/// start up to a frame before the next one's, as one (the stream's first
/// segment shows its first words at once and the rest once loaded: two
/// pop-on captions, one segment's words).
pub fn by_segment(captions: Vec<Caption>, starts: &[f64], frame_s: f64) -> Vec<Caption> {
    let segment_of = |caption: &Caption| {
        starts
            .iter()
            .rposition(|start| *start <= caption.start + frame_s + 0.001)
    };
    let mut merged: Vec<(Option<usize>, Caption)> = Vec::new();
    for caption in captions {
        let segment = segment_of(&caption);
        match merged.last_mut() {
            Some((last, joined)) if *last == segment && segment.is_some() => {
                joined.end = caption.end;
                joined.text = format!("{} {}", joined.text, caption.text);
            }
            _ => merged.push((segment, caption)),
        }
    }
    merged.into_iter().map(|(_, caption)| caption).collect()
}

/// The CC1 captions ffmpeg reads from the first video stream of `file`.
pub fn decoded_captions(file: &Path) -> Vec<Caption> {
    decoded_captions_of_field(file, "first")
}

/// The captions of one field's first channel (`first`: CC1, `second`: CC3).
pub fn decoded_captions_of_field(file: &Path, field: &str) -> Vec<Caption> {
    let input = [
        "-data_field".to_owned(),
        field.to_owned(),
        "-f".to_owned(),
        "lavfi".to_owned(),
        "-i".to_owned(),
        format!("movie={}[out0+subcc]", file.display()),
    ];
    ffmpeg_srt(&input, "0:s")
}

/// The subtitle track `index` of `file` as ffmpeg reads it.
pub fn subtitle_track(file: &Path, index: usize) -> Vec<Caption> {
    let input = ["-i".to_owned(), file.to_string_lossy().into_owned()];
    ffmpeg_srt(&input, &format!("0:s:{index}"))
}

/// What ffmpeg writes as SRT from stream `map` of `input`.
fn ffmpeg_srt(input: &[String], map: &str) -> Vec<Caption> {
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(input)
        .args(["-map", map, "-c:s", "srt", "-f", "srt", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_srt(&String::from_utf8_lossy(&output.stdout))
}

/// The captions of an SRT document.
pub fn parse_srt(srt: &str) -> Vec<Caption> {
    srt.split("\n\n")
        .filter_map(|block| {
            let mut lines = block.lines().skip_while(|l| l.trim().is_empty()).skip(1);
            let (from, to) = lines.next()?.split_once(" --> ")?;
            let text = lines.collect::<Vec<_>>().join(" ");
            Some(Caption {
                start: srt_seconds(from)?,
                end: srt_seconds(to)?,
                text: plain(&text),
            })
        })
        .collect()
}

fn srt_seconds(time: &str) -> Option<f64> {
    let (hms, ms) = time.trim().split_once(',')?;
    let mut seconds = 0.0;
    for part in hms.split(':') {
        seconds = seconds * 60.0 + part.parse::<f64>().ok()?;
    }
    Some(seconds + ms.parse::<f64>().ok()? / 1000.0)
}

/// The words of an SRT caption: tags, hard spaces and line breaks out.
pub fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.replace("\\h", " ").replace("{\\an7}", "").chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The cues of WebVTT files as webvtt-py (an independent WebVTT parser,
/// installed by `scripts/interop-setup.sh`) reads them: (start s, end s,
/// text), each once (a cue across a cut is in both segments).
pub fn webvtt_cues(files: &[PathBuf]) -> Vec<(f64, f64, String)> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    let output = Command::new(python)
        .args([
            "-c",
            "import json, sys, webvtt\n\
             cues = []\n\
             for f in sys.argv[1:]:\n\
             \x20   for c in webvtt.read(f):\n\
             \x20       cue = [c.start, c.end, c.text]\n\
             \x20       if cue not in cues: cues.append(cue)\n\
             print(json.dumps(cues))",
        ])
        .args(files)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cues: Vec<(String, String, String)> = serde_json::from_slice(&output.stdout).expect("cues");
    let seconds = |t: &str| {
        t.split(':')
            .map(|part| part.parse::<f64>().expect("a time"))
            .fold(0.0, |total, part| total * 60.0 + part)
    };
    cues.into_iter()
        .map(|(start, end, text)| (seconds(&start), seconds(&end), plain(&text)))
        .collect()
}

/// Integrated loudness (LUFS) and true peak (dBTP) of `file`'s audio, or
/// of its samples `window` (start, end) counted from the first.
pub fn ffmpeg_loudness(file: &Path, window: Option<(u64, u64)>) -> (f64, f64) {
    let filter = match window {
        Some((start, end)) => {
            format!("atrim=start_sample={start}:end_sample={end},ebur128=peak=true")
        }
        None => "ebur128=peak=true".to_owned(),
    };
    let output = Command::new("ffmpeg")
        .args(["-nostats", "-hide_banner", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-af", &filter, "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let log = String::from_utf8_lossy(&output.stderr);
    let summary = log
        .split("Summary:")
        .nth(1)
        .unwrap_or_else(|| panic!("{log}"));
    let value = |key: &str| -> f64 {
        summary
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {summary}"))
    };
    (value("I:"), value("Peak:"))
}
