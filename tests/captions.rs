// SPDX-License-Identifier: MPL-2.0

//! `captions=cea608`: each dubbed segment's words in the video it is heard
//! with, read back by an independent decoder (ffmpeg's CEA-608 decoder on
//! the A/53 data of the decoded video, `movie=…[out0+subcc]`), for H.264
//! and H.265, at 25 and 29.97 fps, framed with lengths (FLV, Matroska) and
//! with start codes (MPEG-TS). The slices stay byte for byte the input's.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use gst::prelude::*;

use common::*;
use stsdub_worker::pipeline::{self, Captions, Input, Languages, Output, VideoCodec};

const RUN_LIMIT: Duration = Duration::from_secs(120);
/// ffmpeg's arguments for the H.265 inputs.
const X265: [&str; 6] = [
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "log-level=error",
];

/// The video of `output` holds the slices of `input`, byte for byte (only
/// SEI was added).
#[track_caller]
fn assert_slices_untouched(input: &Path, output: &Path, codec: VideoCodec) {
    let (slices_in, slices_out) = (slices(input, codec), slices(output, codec));
    assert!(!slices_in.is_empty());
    assert!(
        slices_in == slices_out,
        "the slices are the input's, byte for byte"
    );
}

/// 608 has one apostrophe; decoders show it as ’ or '.
fn one_apostrophe(text: &str) -> String {
    text.replace(['’', '‘'], "'")
}

/// The slices of `file`'s video, in order (SEI and parameter sets left out).
fn slices(file: &Path, codec: VideoCodec) -> Vec<Vec<u8>> {
    let format = match codec {
        VideoCodec::H264 => "h264",
        VideoCodec::H265 => "hevc",
    };
    annex_b_units(file, format)
        .into_iter()
        .filter(|unit| {
            let header = unit.first().copied().unwrap_or(0xFF);
            match codec {
                VideoCodec::H264 => (1..=5).contains(&(header & 0x1F)),
                VideoCodec::H265 => (header >> 1) & 0x3F < 32,
            }
        })
        .collect()
}

/// Each segment's start on the output (s), in order.
fn segment_starts<'a>(segments: impl IntoIterator<Item = &'a gst::Structure>) -> Vec<f64> {
    segments
        .into_iter()
        .map(|s| s.get::<u64>("pts").unwrap_or(0) as f64 / 1e9)
        .collect()
}

/// Runs the worker's pipeline from `input` to `output` with captions, and
/// checks what a viewer gets: every dubbed segment's words, shown from no
/// earlier than the frame its dub begins in, and at most 250 ms after it
/// (the first segment too), with the video's slices
/// untouched.
fn assert_captioned(input: &Path, output: &Path, codec: VideoCodec, frame_s: f64) {
    let sts = EchoSts::start(&[]);
    let description = pipeline::worker_for(
        &Input::from_uri(&input.to_string_lossy()).expect("a known kind"),
        codec,
        &format!("sts-url={} captions=cea608", sts.url),
        &Output::from_uri(&output.to_string_lossy()),
    );
    let run = run_pipeline(&description, RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(run.statuses().iter().all(|s| s == "dubbed"), "{run:?}");
    let shown = decoded_captions(output);
    let captions = by_segment(shown, &segment_starts(&run.segments), frame_s);
    assert_eq!(
        captions.len(),
        run.segments.len(),
        "a segment's words together"
    );
    for (index, (segment, caption)) in run.segments.iter().zip(&captions).enumerate() {
        let words = segment.get::<String>("translated-text").expect("words");
        let start = segment.get::<u64>("pts").expect("pts") as f64 / 1e9;
        let duration = segment.get::<u64>("duration-ms").expect("duration") as f64 / 1e3;
        assert_eq!(
            one_apostrophe(&caption.text),
            one_apostrophe(&words),
            "segment {index}: accents and all"
        );
        // A caption changes with a frame: the one it shows from is the
        // frame the dub begins in, or the next (SRT times are whole ms).
        assert!(
            caption.start >= start - frame_s - 0.001,
            "segment {index}: {caption:?} before {start}"
        );
        // The first segment's words cannot be loaded before the first
        // frame: its first words show at once, the rest once loaded.
        assert!(
            caption.start <= start + 0.25,
            "segment {index}: {caption:?} late for {start}"
        );
        // It goes with the segment's end; the last one with the stream's.
        let end = start + duration;
        let last = index + 1 == run.segments.len();
        assert!(
            (caption.end - end).abs() <= frame_s + 0.001 || (last && caption.end >= end - frame_s),
            "segment {index}: {caption:?} ends with the segment at {end}"
        );
    }
    let offsets_ms: Vec<i64> = run
        .segments
        .iter()
        .zip(&captions)
        .map(|(s, c)| {
            ((c.start - s.get::<u64>("pts").unwrap_or(0) as f64 / 1e9) * 1e3).round() as i64
        })
        .collect();
    eprintln!(
        "{}: caption start − segment start (ms): {offsets_ms:?}",
        output.display()
    );
    assert!(
        captions.iter().any(|c| c.text.contains('ñ')),
        "accents survive"
    );
    assert_slices_untouched(input, output, codec);
}

/// 20 s of the sample, H.264 at 25 fps: four segments at the defaults.
fn sample_20s() -> PathBuf {
    reencoded(
        "sample-h264-25-20s.mp4",
        &["-c:v", "libx264", "-preset", "ultrafast"],
        "25",
    )
}

/// `input` dubbed into es and fr, with 608 captions, into `output`.
fn two_languages_captioned(input: &Path, output: &Path, stream: &str) -> common::Run {
    languages_captioned(input, output, stream, "es,fr", Captions::Cea608)
}

/// `input` dubbed into the languages of `list`, with captions as
/// `format`, into `output`.
fn languages_captioned(
    input: &Path,
    output: &Path,
    stream: &str,
    list: &str,
    format: Captions,
) -> common::Run {
    let sts = EchoSts::start(&[]);
    let languages = Languages::parse(list, "en", stream, true)
        .and_then(|l| l.with_caption_format(format))
        .expect("valid");
    let description = pipeline::multi_language_worker(
        &Input::from_uri(&input.to_string_lossy()).expect("a known kind"),
        VideoCodec::H264,
        &format!("sts-url={}", sts.url),
        &languages,
        &Output::from_uri(&output.to_string_lossy()),
    );
    let run = run_pipeline(&description, RUN_LIMIT);
    assert!(
        run.eos && run.errors.is_empty(),
        "{}: {run:?}",
        output.display()
    );
    run
}

/// 20 s of the sample with its video re-encoded at `rate` by `encoder`.
fn reencoded(name: &str, encoder: &[&str], rate: &str) -> PathBuf {
    let args = [
        &["-i", "{}", "-t", "20", "-r", rate][..],
        encoder,
        &["-bf", "0", "-c:a", "copy"],
    ]
    .concat();
    remuxed(&sample(), name, &args)
}

#[test]
fn h264_25_fps_every_segment_captioned_in_flv_and_mpeg_ts() {
    for extension in ["flv", "ts"] {
        let output = scratch(&format!("captions-h264-25.{extension}"));
        assert_captioned(&sample(), &output, VideoCodec::H264, 0.04);
    }
}

#[test]
fn h264_29_97_fps_every_segment_captioned() {
    let input = reencoded(
        "sample-h264-2997-20s.mp4",
        &["-c:v", "libx264", "-preset", "ultrafast"],
        "30000/1001",
    );
    assert_captioned(
        &input,
        &scratch("captions-h264-2997.flv"),
        VideoCodec::H264,
        1001.0 / 30_000.0,
    );
}

#[test]
fn h265_25_and_29_97_fps_every_segment_captioned() {
    let x265 = X265;
    for (rate, frame_s, name) in [
        ("25", 0.04, "25"),
        ("30000/1001", 1001.0 / 30_000.0, "2997"),
    ] {
        let input = reencoded(&format!("sample-h265-{name}-20s.mkv"), &x265, rate);
        for extension in ["mkv", "ts"] {
            let output = scratch(&format!("captions-h265-{name}.{extension}"));
            assert_captioned(&input, &output, VideoCodec::H265, frame_s);
        }
    }
}

/// es and fr into one MPEG-TS: one video, two caption channels (CC1, CC3),
/// each with its own language's words, every segment.
#[test]
fn two_languages_two_channels_in_one_video() {
    let input = sample_20s();
    let output = scratch("captions-es-fr.ts");
    let run = two_languages_captioned(&input, &output, "cc");
    let segments_of = |language: &str| -> Vec<&gst::Structure> {
        run.segments
            .iter()
            .filter(|s| {
                s.get::<String>("stream-id")
                    .is_ok_and(|id| id.ends_with(language))
            })
            .collect()
    };
    let words = |language: &str| -> Vec<String> {
        segments_of(language)
            .into_iter()
            .map(|s| one_apostrophe(&s.get::<String>("translated-text").expect("words")))
            .collect()
    };
    let by_ffmpeg = |field: &str, language: &str| -> Vec<String> {
        let starts = segment_starts(segments_of(language));
        by_segment(decoded_captions_of_field(&output, field), &starts, 0.04)
            .into_iter()
            .map(|c| one_apostrophe(&c.text))
            .collect()
    };
    let (es, fr) = (words("-es"), words("-fr"));
    assert_eq!(es.len(), 4, "{es:?}");
    assert_ne!(es, fr);
    assert_eq!(by_ffmpeg("first", "-es"), es, "CC1: Spanish");
    assert_eq!(by_ffmpeg("second", "-fr"), fr, "CC3: French");
    assert_slices_untouched(&input, &output, VideoCodec::H264);
}

/// `--subtitles-dir`: a WebVTT and an SRT file per language, which an
/// independent parser reads as the same words, at the same times (within
/// a frame), as the captions ffmpeg decodes from the video.
#[test]
fn the_sidecars_pass_a_webvtt_parser_and_match_the_captions_in_the_video() {
    let sts = EchoSts::start(&[]);
    let input = sample_20s();
    let dir = scratch("subtitles");
    let _ = std::fs::remove_dir_all(&dir);
    let output = scratch("captions-sidecars.ts");
    let status = std::process::Command::new(program("stsdub-worker"))
        .arg("--input")
        .arg(&input)
        .args(["--sts-url", &sts.url, "--captions", "cea608"])
        .args(["--target-languages", "es,fr", "--subtitles-dir"])
        .arg(&dir)
        .arg("--output")
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the worker runs");
    assert!(status.success());
    for (language, field) in [("es", "first"), ("fr", "second")] {
        let cues = webvtt_cues(&[dir.join(format!("{language}.vtt"))]);
        let starts: Vec<f64> = cues.iter().map(|(start, _, _)| *start).collect();
        let captions = by_segment(decoded_captions_of_field(&output, field), &starts, 0.04);
        assert_eq!(cues.len(), 4, "{language}: {cues:?}");
        assert_eq!(cues.len(), captions.len(), "{language}: {captions:?}");
        for ((start, _, text), caption) in cues.iter().zip(&captions) {
            assert_eq!(
                one_apostrophe(text),
                one_apostrophe(&caption.text),
                "{language}"
            );
            // In the frame their cue starts in (pts on both sides); the
            // stream's first: its first words once they are loaded.
            let late = if *start > 0.0 { 0.041 } else { 0.25 };
            assert!(
                (caption.start - start).abs() <= late,
                "{language}: {caption:?} vs {start}"
            );
        }
        let srt = std::fs::read_to_string(dir.join(format!("{language}.srt"))).expect("srt");
        assert_eq!(srt.matches(" --> ").count(), cues.len(), "{language}");
    }
}

/// With captions into Matroska and MP4, each language's words are also a
/// subtitle track of the file (text_src → S_TEXT/UTF8, tx3g), tagged with
/// the language, which ffmpeg reads with every segment's words at the
/// segment's time (the file's timeline starts at the audio's first sample:
/// 21 ms of AAC priming and the millisecond rounding of the track).
#[test]
fn text_src_gives_matroska_and_mp4_a_subtitle_track_per_language() {
    let input = sample_20s();
    for extension in ["mkv", "mp4"] {
        let output = scratch(&format!("captions-text-track.{extension}"));
        let run = two_languages_captioned(&input, &output, "tt");
        let tags: Vec<String> = stream_languages(&output)
            .into_iter()
            .filter(|(kind, _)| kind == "subtitle")
            .map(|(_, language)| language)
            .collect();
        assert_eq!(tags.len(), 2, "{extension}: {tags:?}");
        for (index, language) in ["es", "fr"].into_iter().enumerate() {
            let segments: Vec<_> = run
                .segments
                .iter()
                .filter(|s| {
                    s.get::<String>("stream-id")
                        .is_ok_and(|id| id.ends_with(language))
                })
                .collect();
            let track = subtitle_track(&output, index);
            assert_eq!(
                track.len(),
                segments.len(),
                "{extension} {language}: {track:?}"
            );
            for (segment, caption) in segments.iter().zip(&track) {
                let words = segment.get::<String>("translated-text").expect("words");
                assert_eq!(caption.text, words, "{extension} {language}");
                let pts = segment.get::<u64>("pts").expect("pts") as f64 / 1e9;
                assert!(
                    (caption.start - pts).abs() <= 0.023,
                    "{extension} {language}: {caption:?} for the segment at {pts}"
                );
            }
        }
    }
}

/// Segments that fall back have no words: no caption shows over them (the
/// one before is erased at its end), and the dubbed ones keep theirs.
#[test]
fn a_fallback_segment_gets_no_caption() {
    let sts = EchoSts::start(&["--error", "MODEL_ERROR", "--fail-first", "2"]);
    let input = sample_20s();
    let output = scratch("captions-fallback.flv");
    let description = pipeline::worker_for(
        &Input::from_uri(&input.to_string_lossy()).expect("a known kind"),
        VideoCodec::H264,
        &format!("sts-url={} captions=cea608 segment-duration=5000", sts.url),
        &Output::from_uri(&output.to_string_lossy()),
    );
    let run = run_pipeline(&description, RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    let statuses = run.statuses();
    assert_eq!(
        statuses.iter().filter(|s| *s == "fallback").count(),
        2,
        "{statuses:?}"
    );
    let captions = decoded_captions(&output);
    let dubbed: Vec<_> = run
        .segments
        .iter()
        .filter(|s| s.get::<String>("status").is_ok_and(|s| s == "dubbed"))
        .collect();
    assert_eq!(captions.len(), dubbed.len(), "{captions:?}");
    for (caption, segment) in captions.iter().zip(&dubbed) {
        let words = segment.get::<String>("translated-text").expect("words");
        assert_eq!(one_apostrophe(&caption.text), one_apostrophe(&words));
        let start = segment.get::<u64>("pts").expect("pts") as f64 / 1e9;
        assert!(
            (caption.start - start).abs() <= 0.041 || start == 0.0,
            "{caption:?} for {start}"
        );
    }
    // Nothing shows over a segment that fell back.
    for segment in run
        .segments
        .iter()
        .filter(|s| s.get::<String>("status").is_ok_and(|s| s == "fallback"))
    {
        let start = segment.get::<u64>("pts").expect("pts") as f64 / 1e9;
        let end = start + segment.get::<u64>("duration-ms").expect("duration") as f64 / 1e3;
        assert!(
            captions
                .iter()
                .all(|c| c.end <= start + 0.041 || c.start >= end - 0.041),
            "a caption over the fallback {start}..{end}: {captions:?}"
        );
    }
}

/// Runs the worker's pipeline from `input` to `output` with `properties`.
fn captioned(input: &Path, output: &Path, properties: &str) -> common::Run {
    let sts = EchoSts::start(&[]);
    let description = pipeline::worker_for(
        &Input::from_uri(&input.to_string_lossy()).expect("a known kind"),
        VideoCodec::H264,
        &format!("sts-url={} {properties}", sts.url),
        &Output::from_uri(&output.to_string_lossy()),
    );
    let run = run_pipeline(&description, RUN_LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    run
}

/// An input that has captions of its own (CC1 and CC3, as a US programme
/// may): ours replace its CC1, its CC3 passes through untouched.
#[test]
fn the_input_s_own_captions_of_our_field_make_way_the_other_field_passes() {
    let source = sample_20s();
    // The input: the words as said, on CC3 and on CC1.
    let on_cc3 = scratch("captions-input-cc3.flv");
    captioned(
        &source,
        &on_cc3,
        "captions=cea608 caption-channel=3 caption-text=transcript",
    );
    let input = scratch("captions-input-cc1-cc3.flv");
    let starts = segment_starts(
        &captioned(
            &on_cc3,
            &input,
            "captions=cea608 caption-channel=1 caption-text=transcript",
        )
        .segments,
    );
    let theirs = |field| -> Vec<String> {
        by_segment(decoded_captions_of_field(&input, field), &starts, 0.04)
            .into_iter()
            .map(|c| c.text)
            .collect()
    };
    let (their_cc1, their_cc3) = (theirs("first"), theirs("second"));
    assert_eq!(their_cc1.len(), 4, "{their_cc1:?}");
    assert_eq!(their_cc1, their_cc3);
    // Ours on CC1.
    let output = scratch("captions-over-cc1-cc3.flv");
    let run = captioned(&input, &output, "captions=cea608");
    let ours: Vec<String> = run
        .segments
        .iter()
        .map(|s| one_apostrophe(&s.get::<String>("translated-text").expect("words")))
        .collect();
    let starts = segment_starts(&run.segments);
    let read = |field| -> Vec<String> {
        by_segment(decoded_captions_of_field(&output, field), &starts, 0.04)
            .into_iter()
            .map(|c| one_apostrophe(&c.text))
            .collect()
    };
    assert_eq!(read("first"), ours, "CC1 is ours alone");
    assert_eq!(read("second"), their_cc3, "CC3 passes through");
    assert_slices_untouched(&source, &output, VideoCodec::H264);
}

/// `caption-style=roll-up`: every caption's rows are typed from its start
/// and roll up, two on screen. ffmpeg's 608 decoder reads every row of
/// every segment's words, each caption's first row on screen within 250 ms
/// of its start and never before its dub (one frame, and SRT's whole ms),
/// the first segment's too: nothing has to be loaded ahead, as pop-on's
/// must (its first caption shows its first words, then the rest).
#[test]
fn roll_up_types_every_caption_from_its_start() {
    let output = scratch("captions-roll-up.flv");
    let run = captioned(&sample(), &output, "captions=cea608 caption-style=roll-up");
    let shown = decoded_captions(&output);
    let frame_s = 0.04;
    let mut offsets_ms = Vec::new();
    // ffmpeg's decoder (of a file, not in real time) puts a roll-up row
    // out at the next command, a CR or an erase: the stream's very last
    // row has none after it, so it is typed but never read back.
    let last_row = run.segments.last().and_then(|segment| {
        let words = segment.get::<String>("translated-text").ok()?;
        gststsdub::captions::layout::captions(&words, 0, 1)
            .last()?
            .rows
            .last()
            .cloned()
    });
    for segment in &run.segments {
        let words = segment.get::<String>("translated-text").expect("words");
        let pts = segment.get::<u64>("pts").expect("pts");
        let duration = segment.get::<u64>("duration-ms").expect("duration") * 1_000_000;
        for caption in gststsdub::captions::layout::captions(&words, pts, duration) {
            let start = caption.start as f64 / 1e9;
            for (index, row) in caption.rows.iter().enumerate() {
                if index > 0
                    && Some(row) == last_row.as_ref()
                    && segment == run.segments.last().expect("one")
                {
                    continue;
                }
                let row = one_apostrophe(row);
                // The echo's phrases come round again: the row's first
                // showing from its caption's start on (less a frame).
                let first = shown
                    .iter()
                    .filter(|c| c.start >= start - frame_s - 0.001)
                    .find(|c| one_apostrophe(&c.text).contains(&row))
                    .unwrap_or_else(|| panic!("{row:?} never on screen: {shown:?}"));
                assert!(
                    first.start < caption.end as f64 / 1e9,
                    "{row:?} at {}, after its caption's end",
                    first.start
                );
                if index == 0 {
                    offsets_ms.push(((first.start - start) * 1e3).round() as i64);
                    assert!(
                        first.start <= start + 0.25,
                        "{row:?} at {}, its caption from {start}",
                        first.start
                    );
                }
            }
        }
    }
    eprintln!("roll-up: first row on screen − caption start (ms): {offsets_ms:?}");
    assert!(offsets_ms.len() >= run.segments.len());
}

/// What a viewer of 708 service `service` sees in `file` (Matroska):
/// GStreamer's own 708 decoder (cc708overlay, fed by ccextractor) draws
/// the captions on the decoded frames. The frames are enlarged to
/// 1280×960 before it draws on them, so that it draws letters large
/// enough to read. Kept: the frames shown in one of `windows` (s, on the
/// file's timeline), each as the whiteness of its bottom third, where
/// the captions are.
fn cc708_viewed(
    file: &Path,
    codec: VideoCodec,
    service: u32,
    windows: &[(f64, f64)],
) -> Vec<(gst::ClockTime, Vec<u8>)> {
    let (parse, decode) = match codec {
        VideoCodec::H264 => ("h264parse", "avdec_h264"),
        VideoCodec::H265 => ("h265parse", "avdec_h265"),
    };
    let description = format!(
        "filesrc location={} ! matroskademux ! {parse} ! ccextractor name=e \
         e.src ! queue ! {decode} ! videoscale ! \
         video/x-raw,width=1280,height=960 ! queue ! \
         cc708overlay name=o service-number={service} \
         font-desc=\"Sans 36\" ! video/x-raw ! videoconvert ! video/x-raw,format=RGB ! \
         appsink name=sink sync=true e.caption ! queue ! o.cc_sink",
        file.display()
    );
    let shown_in = |from: gst::ClockTime, to: gst::ClockTime| {
        windows.iter().any(|(start, end)| {
            from.nseconds() as f64 / 1e9 <= *end && to.nseconds() as f64 / 1e9 > *start
        })
    };
    pull_frames(&description, &shown_in)
        .into_iter()
        .map(|frame| (frame.pts, frame.letters_as_pgm(1)))
        .collect()
}

/// The text tesseract reads in the frame of `viewed` shown at `at` (s),
/// or nothing before the first frame: the reading closest to `expected`
/// of those with each of the echo's languages first (tesseract reads
/// "é" as "e" or "ü" as "ú" when another language leads).
fn seen_at(viewed: &[(gst::ClockTime, Vec<u8>)], at: f64, image: &Path, expected: &str) -> String {
    if at < 0.0 {
        return String::new();
    }
    let at = gst::ClockTime::from_nseconds((at * 1e9).round() as u64);
    let Some((_, pgm)) = viewed.iter().take_while(|(pts, _)| *pts <= at).last() else {
        return String::new();
    };
    std::fs::write(image, pgm).expect("write the frame");
    let mut best = String::new();
    for languages in ["deu+fra+spa", "fra+spa+deu", "spa+deu+fra"] {
        let read = ocr(image, languages);
        if likeness(expected, &read) > likeness(expected, &best) || best.is_empty() {
            best = read;
        }
        if best == expected {
            break;
        }
    }
    best
}

struct RgbFrame {
    pts: gst::ClockTime,
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl RgbFrame {
    /// A PGM of the bottom third, `scale` times enlarged (bilinear), of how white each pixel
    /// is, dark on light, from its lowest channel. The caption's letters
    /// come out dark, their black box and the test picture's saturated
    /// colours and greys light.
    fn letters_as_pgm(&self, scale: usize) -> Vec<u8> {
        let whiteness = |x: usize, y: usize| {
            let at = (y.min(self.height - 1) * self.width + x.min(self.width - 1)) * 3;
            let lowest = f64::from(*self.rgb[at..at + 3].iter().min().unwrap_or(&0));
            // The picture's greys (up to 50 %) count as not white at all.
            ((lowest - 130.0) / 100.0).clamp(0.0, 1.0) * 255.0
        };
        // The captions' rows sit in the bottom third.
        let top = self.height * 2 / 3;
        let (width, height) = (self.width * scale, (self.height - top) * scale);
        let mut pgm = format!("P5\n{width} {height}\n255\n").into_bytes();
        for y in top * scale..top * scale + height {
            let fy = (y as f64 + 0.5) / scale as f64 - 0.5;
            let (y0, wy) = (fy.max(0.0).floor() as usize, fy.max(0.0).fract());
            for x in 0..width {
                let fx = (x as f64 + 0.5) / scale as f64 - 0.5;
                let (x0, wx) = (fx.max(0.0).floor() as usize, fx.max(0.0).fract());
                let top = whiteness(x0, y0) * (1.0 - wx) + whiteness(x0 + 1, y0) * wx;
                let bottom = whiteness(x0, y0 + 1) * (1.0 - wx) + whiteness(x0 + 1, y0 + 1) * wx;
                let white = top * (1.0 - wy) + bottom * wy;
                pgm.push(255 - white.round() as u8);
            }
        }
        pgm
    }
}

/// The RGB frames that reach the appsink `sink` of `description` and
/// that `keep` (from, to) wants. The caption data waits at the overlay `o` until the video's caps are
/// set there: the overlay places what it draws by the video's size, and
/// would put captions decoded before it knows that off the picture.
fn pull_frames(
    description: &str,
    keep: &dyn Fn(gst::ClockTime, gst::ClockTime) -> bool,
) -> Vec<RgbFrame> {
    let pipeline = gst::parse::launch(description)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let overlay = pipeline.by_name("o").expect("the overlay");
    let cc_sink = overlay.static_pad("cc_sink").expect("cc_sink");
    let held = cc_sink.add_probe(gst::PadProbeType::BLOCK_DOWNSTREAM, |_, _| {
        gst::PadProbeReturn::Ok
    });
    let held = std::sync::Mutex::new(held);
    let cc = cc_sink.clone();
    overlay.static_pad("src").expect("src").add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if info
                .event()
                .is_some_and(|e| e.type_() == gst::EventType::Caps)
            {
                if let Some(id) = held.lock().ok().and_then(|mut held| held.take()) {
                    cc.remove_probe(id);
                }
                return gst::PadProbeReturn::Remove;
            }
            gst::PadProbeReturn::Ok
        },
    );
    let sink = pipeline
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut frames = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
            continue;
        };
        let pts = buffer.pts().expect("pts");
        if !keep(pts, pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO)) {
            continue;
        }
        let structure = caps.structure(0).expect("caps");
        let (width, height) = (
            structure.get::<i32>("width").expect("width") as usize,
            structure.get::<i32>("height").expect("height") as usize,
        );
        let map = buffer.map_readable().expect("readable");
        // RGB rows are padded to 4 bytes.
        let stride = (width * 3).div_ceil(4) * 4;
        let rgb = (0..height)
            .flat_map(|row| map[row * stride..row * stride + width * 3].to_vec())
            .collect();
        frames.push(RgbFrame {
            pts,
            width,
            height,
            rgb,
        });
    }
    let errors = pipeline
        .bus()
        .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]));
    let _ = pipeline.set_state(gst::State::Null);
    assert!(errors.is_none(), "{errors:?}");
    frames
}

/// The text tesseract reads in `image` with `languages`, one line.
fn ocr(image: &Path, languages: &str) -> String {
    let output = std::process::Command::new("tesseract")
        .arg(image)
        .args(["-", "-l", languages, "--psm", "6"])
        .output()
        .expect("tesseract (setup.sh --tests installs it)");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// How alike two texts are: 1 − edit distance / the longer's length.
fn likeness(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    1.0 - row[b.len()] as f64 / a.len().max(b.len()).max(1) as f64
}

/// `captions=cea708` (and `both`): every segment's words as 708 service
/// `caption-channel`, read back by a second independent reader, GStreamer's
/// cc708overlay, through OCR: each caption on screen 250 ms after its
/// segment's start with its accents, not in the frame before it, for
/// H.264 and H.265 at 25 and 29.97 fps, the slices untouched. With `both`,
/// ffmpeg's 608 decoder reads the same words on CC1.
#[test]
fn cea708_service_is_read_by_gstreamer_s_708_decoder() {
    let x265 = X265;
    let h264 = ["-c:v", "libx264", "-preset", "ultrafast"];
    // (name, encoder, codec, frame rate, frame duration in s, service)
    type Case<'a> = (&'a str, &'a [&'a str], VideoCodec, &'a str, f64, u32);
    let ntsc = 1.001 / 30.0;
    let cases: [Case; 4] = [
        ("h264-25", &h264, VideoCodec::H264, "25", 0.04, 1),
        ("h264-2997", &h264, VideoCodec::H264, "30000/1001", ntsc, 3),
        ("h265-25", &x265, VideoCodec::H265, "25", 0.04, 2),
        ("h265-2997", &x265, VideoCodec::H265, "30000/1001", ntsc, 1),
    ];
    let mut table = Vec::new();
    for (name, encoder, codec, rate, frame_s, service) in cases {
        let input = reencoded(&format!("sample-{name}-20s.mkv"), encoder, rate);
        let output = scratch(&format!("captions-708-{name}.mkv"));
        let captions = if name == "h264-25" { "both" } else { "cea708" };
        let sts = EchoSts::start(&[]);
        let description = pipeline::worker_for(
            &Input::from_uri(&input.to_string_lossy()).expect("a known kind"),
            codec,
            &format!(
                "sts-url={} captions={captions} caption-channel={service}",
                sts.url
            ),
            &Output::from_uri(&output.to_string_lossy()),
        );
        let run = run_pipeline(&description, RUN_LIMIT);
        assert!(run.eos && run.errors.is_empty(), "{run:?}");
        table.extend(assert_708_service_shows(
            &output,
            codec,
            service,
            run.segments.iter(),
            frame_s,
            name,
        ));
        if captions == "both" {
            let starts = segment_starts(&run.segments);
            let cc1: Vec<String> = by_segment(decoded_captions(&output), &starts, frame_s)
                .into_iter()
                .map(|c| one_apostrophe(&c.text))
                .collect();
            let words: Vec<String> = run
                .segments
                .iter()
                .map(|s| one_apostrophe(&s.get::<String>("translated-text").expect("words")))
                .collect();
            assert_eq!(cc1, words, "608 on CC1 beside 708");
        }
        assert_slices_untouched(&input, &output, codec);
    }
    eprintln!(
        "| case | caption | on screen after its start | likeness | read |\n|---|---|---|---|---|\n{}",
        table.join("\n")
    );
}

/// Checks that 708 service `service` of `output` shows each of `segments`'
/// captions as a viewer of GStreamer's cc708overlay reads it: whole, with
/// its accents, from the frame its dub begins in to 250 ms after, and not
/// in the last frame before it. Gives a table row per caption.
fn assert_708_service_shows<'a>(
    output: &Path,
    codec: VideoCodec,
    service: u32,
    segments: impl Iterator<Item = &'a gst::Structure>,
    frame_s: f64,
    name: &str,
) -> Vec<String> {
    let mut captions = Vec::new();
    for segment in segments {
        let words = segment.get::<String>("translated-text").expect("words");
        let pts = segment.get::<u64>("pts").expect("pts");
        let duration = segment.get::<u64>("duration-ms").expect("duration") * 1_000_000;
        captions.extend(gststsdub::captions::layout::captions(&words, pts, duration));
    }
    assert!(!captions.is_empty(), "{name}: captions to look for");
    let windows: Vec<(f64, f64)> = captions
        .iter()
        .map(|c| c.start as f64 / 1e9)
        .map(|start| (start - 2.0 * frame_s, start + 0.26))
        .collect();
    let viewed = cc708_viewed(output, codec, service, &windows);
    let image = scratch(&format!("captions-708-{name}.pgm"));
    let mut rows = Vec::new();
    for (index, caption) in captions.iter().enumerate() {
        let text = caption.rows.join(" ");
        let start = caption.start as f64 / 1e9;
        // The last frame wholly before the dub must not show it.
        let before = seen_at(&viewed, start - frame_s - 0.002, &image, &text);
        assert!(
            likeness(&text, &before) < 0.5,
            "{name}: {text:?} (from {start} s) shown before its segment: {before:?}"
        );
        // From the frame the dub begins in, the first that shows it.
        let (offset, read) = (0..)
            .map(|k| start + k as f64 * frame_s + 0.001)
            .take_while(|at| *at <= start + 0.25)
            .map(|at| (at - start, seen_at(&viewed, at, &image, &text)))
            .find(|(_, read)| likeness(&one_apostrophe(&text), &one_apostrophe(read)) >= 0.9)
            .unwrap_or_else(|| panic!("{name}: {text:?} not on screen by +250 ms"));
        let accents: Vec<char> = text.chars().filter(|c| !c.is_ascii()).collect();
        assert!(
            accents.iter().all(|c| read.contains(*c)),
            "{name}: the accents of {text:?} in {read:?}"
        );
        rows.push(format!(
            "| {name} | {index} | {:.0} ms | {:.2} | {read} |",
            offset * 1e3,
            likeness(&text, &read)
        ));
    }
    rows
}

/// `captions=both` in a worker of three languages (es, fr, de): one
/// video carries CC1 (es) and CC3 (fr), which ffmpeg's 608 decoder reads,
/// and 708 services 1 (es), 3 (fr) and 2 (de), each in one DTVCC stream
/// that every stsdub in turn wrote its packets into, which GStreamer's
/// 708 decoder reads: each language's own words, each at its time.
#[test]
fn three_languages_in_one_video_on_608_channels_and_708_services() {
    let input = sample_20s();
    let output = scratch("captions-es-fr-de.mkv");
    let run = languages_captioned(&input, &output, "three", "es,fr,de", Captions::Both);
    let of = |language: &str| -> Vec<gst::Structure> {
        run.segments
            .iter()
            .filter(|s| {
                s.get::<String>("stream-id")
                    .is_ok_and(|id| id.ends_with(&format!("-{language}")))
            })
            .cloned()
            .collect()
    };
    let words = |segments: &[gst::Structure]| -> Vec<String> {
        segments
            .iter()
            .map(|s| one_apostrophe(&s.get::<String>("translated-text").expect("words")))
            .collect()
    };
    let (es, fr, de) = (of("es"), of("fr"), of("de"));
    assert_eq!(es.len(), 4);
    assert!(words(&es) != words(&fr) && words(&fr) != words(&de));
    let by_ffmpeg = |field: &str, segments: &[gst::Structure]| -> Vec<String> {
        let starts = segment_starts(segments);
        by_segment(decoded_captions_of_field(&output, field), &starts, 0.04)
            .into_iter()
            .map(|c| one_apostrophe(&c.text))
            .collect()
    };
    assert_eq!(by_ffmpeg("first", &es), words(&es), "CC1: Spanish");
    assert_eq!(by_ffmpeg("second", &fr), words(&fr), "CC3: French");
    let mut table = Vec::new();
    for (language, segments, service) in [("es", &es, 1), ("fr", &fr, 3), ("de", &de, 2)] {
        table.extend(assert_708_service_shows(
            &output,
            VideoCodec::H264,
            service,
            segments.iter(),
            0.04,
            &format!("{language}-service-{service}"),
        ));
    }
    eprintln!("{}", table.join("\n"));
    assert_slices_untouched(&input, &output, VideoCodec::H264);
}
