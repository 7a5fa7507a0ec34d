// SPDX-License-Identifier: MPL-2.0

//! The stream worker as one pipeline: a file or URL → stsdub → FLV file, with
//! one table row per segment from the element's `stsdub-segment` messages.
//!
//! ```text
//! cargo run --release --bin stsdub-worker -- --input sample.mp4 --sts-url http://127.0.0.1:8000 \
//!     --output out/dubbed.flv [--stream-id demo] [--target-language es] [--print-pipeline|--print-only]
//!     [--target-languages es,fr,de [--source-language en] [--keep-original 0|1]]
//!     [--video-codec h264|h265] [--captions off|cea608|cea708|both] [--subtitles-dir DIR]
//!     [--stsdub-properties "segment-duration=2000 …"]
//!     [--without-stsdub] [--hls-segment-duration S] [--hls-playlist-length N]
//!     [--output-audio-codec aac|ac3|mp2]
//! ```
//!
//! `--without-stsdub` runs the same path with a queue where stsdub would be
//! (`pipeline::passthrough`): what the source, muxer and sink do by
//! themselves, to measure the worker against.
//!
//! Inputs: `.mp4`/`.mov`/`.m4a`, `.flv`, `.mkv`, `.ts` files, `rtsp://`, `rtmp://`,
//! `srt://` and `udp://` (MPEG-TS) URLs. Outputs: `.flv`, `.ts`, `.mkv`, `.mp4` files,
//! `rtmp://`, `srt://` and `udp://`, and HLS (a path ending in `.m3u8`: the
//! multivariant playlist, a folder per rendition beside it); with several
//! languages into FLV or RTMP, one output per language, `{lang}` in the URL. A stream the worker cannot take (audio
//! that is not AAC, video of another codec) stops it at start with what was found.
//! The pipeline is `stsdub_worker::pipeline::worker` (`multi_language_worker` for
//! `--target-languages`), the one description of the worker.

use std::time::Instant;

use gst::prelude::*;
use stsdub_worker::pipeline;

use stsdub_worker::timing::Timing;
use stsdub_worker::{drain, live_audio, packager, probe, signals, subtitles, tracks};
/// How long the pipeline may take to reach NULL before the worker exits
/// without it.
const TEARDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

struct Options {
    input: String,
    output: String,
    sts_url: String,
    stream_id: String,
    target_language: String,
    target_languages: Option<String>,
    source_language: String,
    /// The audio track to dub, 0-based among the input's audio tracks.
    audio_track: Option<usize>,
    keep_original: bool,
    video_codec: pipeline::VideoCodec,
    /// `captions` of every stsdub (None: off).
    captions: Option<pipeline::Captions>,
    /// Where WebVTT and SRT sidecars go, one pair per language.
    subtitles_dir: Option<String>,
    extra: String,
    print_pipeline: bool,
    print_only: bool,
    without_stsdub: bool,
    hls_segment_seconds: u32,
    hls_playlist_length: u32,
    /// What the output's audio tracks are written as (AAC unless asked).
    output_audio_codec: pipeline::AudioOut,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        input: String::new(),
        output: "out/dubbed.flv".into(),
        sts_url: "http://127.0.0.1:8000".into(),
        stream_id: "demo".into(),
        target_language: "es".into(),
        target_languages: None,
        source_language: "en".into(),
        audio_track: None,
        keep_original: true,
        video_codec: pipeline::VideoCodec::H264,
        captions: None,
        subtitles_dir: None,
        extra: String::new(),
        print_pipeline: false,
        print_only: false,
        without_stsdub: false,
        hls_segment_seconds: pipeline::DEFAULT_HLS_SEGMENT_SECONDS,
        hls_playlist_length: pipeline::DEFAULT_HLS_PLAYLIST_LENGTH,
        output_audio_codec: pipeline::AudioOut::Aac,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--input" => options.input = value()?,
            "--output" => options.output = value()?,
            "--sts-url" => options.sts_url = value()?,
            "--stream-id" => options.stream_id = value()?,
            "--target-language" => options.target_language = value()?,
            "--target-languages" => options.target_languages = Some(value()?),
            "--source-language" => options.source_language = value()?,
            "--audio-track" => {
                let text = value()?;
                options.audio_track = Some(text.parse().map_err(|_| {
                    format!("--audio-track {text:?}: an audio track's index, 0 for the first")
                })?)
            }
            "--keep-original" => {
                options.keep_original = match value()?.as_str() {
                    "1" | "true" | "yes" => true,
                    "0" | "false" | "no" => false,
                    other => return Err(format!("--keep-original {other:?}: 0 or 1")),
                }
            }
            "--video-codec" => options.video_codec = pipeline::VideoCodec::from_name(&value()?)?,
            "--captions" => options.captions = pipeline::Captions::from_name(&value()?)?,
            "--subtitles-dir" => options.subtitles_dir = Some(value()?),
            "--hls-segment-duration" => {
                let text = value()?;
                options.hls_segment_seconds = text
                    .parse()
                    .map_err(|_| format!("--hls-segment-duration {text:?}: whole seconds"))?;
            }
            "--hls-playlist-length" => {
                let text = value()?;
                options.hls_playlist_length = text
                    .parse()
                    .map_err(|_| format!("--hls-playlist-length {text:?}: a number of segments"))?;
            }
            "--output-audio-codec" => {
                options.output_audio_codec = pipeline::AudioOut::from_name(&value()?)?
            }
            "--stsdub-properties" => options.extra = value()?,
            "--print-pipeline" => options.print_pipeline = true,
            "--without-stsdub" => options.without_stsdub = true,
            // The pipeline, without running it (tests run it themselves).
            "--print-only" => {
                options.print_pipeline = true;
                options.print_only = true;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.input.is_empty() {
        return Err("--input FILE|URL is required".into());
    }
    Ok(options)
}

struct Row {
    batch: u64,
    pts_s: f64,
    status: String,
    reason: String,
    round_trip_ms: i64,
}

fn main() {
    let options = parse_args().unwrap_or_else(|e| {
        eprintln!("worker: {e}");
        std::process::exit(2);
    });
    if let Err(e) = gst::init() {
        eprintln!("worker: cannot initialise GStreamer: {e}");
        std::process::exit(1);
    }
    if let Err(e) = gststsdub::plugin_register_static() {
        eprintln!("worker: cannot register stsdub: {e}");
        std::process::exit(1);
    }
    if let Err(e) = gsthlssink3::plugin_register_static() {
        eprintln!("worker: cannot register hlssink3: {e}");
        std::process::exit(1);
    }
    let input = pipeline::Input::from_uri(&options.input).unwrap_or_else(|e| {
        eprintln!("worker: {e}");
        std::process::exit(2);
    });
    let input = with_its_audio(input, &options).unwrap_or_else(|e| {
        eprintln!("worker: {e}");
        std::process::exit(2);
    });
    let audio_probed = input.file_location().is_some();
    let output = pipeline::Output::checked(&options.output)
        .and_then(|o| with_hls_settings(o, &options))
        .and_then(|o| o.with_audio_codec(options.output_audio_codec))
        .unwrap_or_else(|e| {
            eprintln!("worker: {e}");
            std::process::exit(2);
        });
    let description = describe(&options, &input, &output).unwrap_or_else(|e| {
        eprintln!("worker: {e}");
        std::process::exit(2);
    });
    if options.print_pipeline {
        println!("gst-launch-1.0 {description}");
    }
    if options.print_only {
        return;
    }
    let pipeline = match gst::parse::launch(&description) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("worker: invalid pipeline: {e}");
            std::process::exit(2);
        }
    };
    if input.is_live() {
        live_audio::transcode_when_not_aac(&pipeline);
    }
    refuse_unsupported_streams(&pipeline, options.video_codec, audio_probed);
    pipeline::retime::attach(&pipeline);
    tracks::carry_other_streams(&pipeline, output.carries_other_streams());
    stop_with_eos_on_ctrl_c(&pipeline);
    drain::end_rtsp_tracks_together(&pipeline, drain::RTSP_TRACKS_GRACE);
    if input.is_live() {
        // A file's tracks may end far apart; a live source's end together.
        drain::watch_track_ends(&pipeline, &["d", "src"]);
    }
    let started = Instant::now();
    let timing = Timing::attach(&pipeline);
    let mut sidecars = options.subtitles_dir.as_deref().map(|dir| {
        subtitles::Sidecars::new(std::path::Path::new(dir)).unwrap_or_else(|e| {
            eprintln!("worker: --subtitles-dir {dir}: {e}");
            std::process::exit(2);
        })
    });
    let mut package = match &output {
        pipeline::Output::Hls(hls) => Some(
            packager::Package::new(hls, &pipeline, input.is_live(), caption_channels(&options))
                .unwrap_or_else(|e| {
                    eprintln!("worker: {e}");
                    std::process::exit(2);
                }),
        ),
        _ => None,
    };
    let (rows, failed) = run(&pipeline, sidecars.as_mut(), package.as_mut());
    print_table(&rows, started.elapsed().as_secs_f64(), &options.output);
    timing.report(&pipeline);
    let status = i32::from(failed);
    if !drain::stop_within(&pipeline, TEARDOWN_LIMIT) {
        eprintln!(
            "worker: the pipeline did not stop within {} s; exiting without it",
            TEARDOWN_LIMIT.as_secs()
        );
        std::process::exit(status);
    }
    if failed {
        std::process::exit(1);
    }
}

/// An HLS output with the `--hls-…` settings, checked; any other as it is.
fn with_hls_settings(
    output: pipeline::Output,
    options: &Options,
) -> Result<pipeline::Output, String> {
    let pipeline::Output::Hls(mut hls) = output else {
        return Ok(output);
    };
    hls.segment_seconds = options.hls_segment_seconds;
    hls.playlist_length = options.hls_playlist_length;
    Ok(pipeline::Output::Hls(hls.checked()?))
}

/// Each language's captions in the video, as the HLS package lists them:
/// its 608 channel, else its 708 service.
fn caption_channels(options: &Options) -> Vec<(String, m3u8_rs::InstreamId)> {
    let Some(format) = options.captions else {
        return Vec::new();
    };
    let id = |format: pipeline::Captions, channel: u32| {
        let channel = u8::try_from(channel).unwrap_or(1);
        if format.has_608() {
            m3u8_rs::InstreamId::CC(channel)
        } else {
            m3u8_rs::InstreamId::Service(channel)
        }
    };
    let Some(list) = &options.target_languages else {
        return vec![(options.target_language.clone(), id(format, 1))];
    };
    let Ok(languages) =
        pipeline::Languages::parse(list, "", "", false).and_then(|l| l.with_caption_format(format))
    else {
        return Vec::new();
    };
    (0..languages.targets.len())
        .filter_map(|index| {
            let (format, channel) = languages.caption_setting(index)?;
            Some((languages.targets[index].clone(), id(format, channel)))
        })
        .collect()
}

/// The launch line: one language, or several (`--target-languages`).
fn describe(
    options: &Options,
    input: &pipeline::Input,
    output: &pipeline::Output,
) -> Result<String, String> {
    if options.without_stsdub {
        return Ok(pipeline::passthrough(input, options.video_codec, output));
    }
    let Some(list) = &options.target_languages else {
        let properties = format!(
            "sts-url=\"{}\" stream-id=\"{}\" target-language=\"{}\" {}{}",
            options.sts_url,
            options.stream_id,
            options.target_language,
            options
                .captions
                .map(|c| format!("captions={} ", c.property()))
                .unwrap_or_default(),
            options.extra
        );
        return Ok(pipeline::worker_for(
            input,
            options.video_codec,
            &properties,
            output,
        ));
    };
    let mut languages = pipeline::Languages::parse(
        list,
        &options.source_language,
        &options.stream_id,
        options.keep_original,
    )?;
    if let Some(format) = options.captions {
        languages = languages.with_caption_format(format)?;
    }
    let properties = format!(
        "sts-url=\"{}\" source-language=\"{}\" {}",
        options.sts_url, options.source_language, options.extra
    );
    Ok(pipeline::multi_language_worker(
        input,
        options.video_codec,
        &properties,
        &languages,
        output,
    ))
}

/// SIGINT or SIGTERM end the stream as gst-launch-1.0 -e does: EOS from
/// the sources, so every stsdub sends stream:end and the muxers finish
/// their files (a live source such as udpsrc never ends by itself).
fn stop_with_eos_on_ctrl_c(pipeline: &gst::Element) {
    let pipeline = pipeline.downgrade();
    signals::on_interrupt_or_terminate(move || {
        if let Some(pipeline) = pipeline.upgrade() {
            eprintln!("worker: stopping: EOS");
            drain::interrupt(&pipeline);
        }
    });
}

/// A file input's audio track to dub is chosen (`--audio-track`, else
/// the one in the source language, else the first; found by probing the
/// file), and when it is not AAC it is decoded and encoded to AAC in front
/// of stsdub. A file that cannot be probed, and a live input, are taken as
/// they are (their first audio track).
fn with_its_audio(input: pipeline::Input, options: &Options) -> Result<pipeline::Input, String> {
    let (Some(location), Some(demuxer)) = (input.file_location(), input.demuxer()) else {
        if options.audio_track.is_some() {
            eprintln!(
                "worker: warning: --audio-track applies to files; a live input's first audio track is dubbed"
            );
        }
        return Ok(input);
    };
    let streams = match probe::streams(location, demuxer) {
        Ok(streams) => streams,
        Err(e) => {
            eprintln!("worker: warning: could not probe the input's audio: {e}");
            return Ok(input);
        }
    };
    let input = if streams.iter().any(probe::StreamInfo::is_video) {
        input
    } else {
        eprintln!("worker: the input has no video: the output is audio only");
        input.without_video()
    };
    let Some((index, chosen)) =
        tracks::choose_audio(&streams, options.audio_track, &options.source_language)?
    else {
        return Ok(input);
    };
    let audio: Vec<&probe::StreamInfo> = streams.iter().filter(|s| s.is_audio()).collect();
    let mut input = input;
    if audio.len() > 1 {
        eprintln!(
            "worker: dubbing audio track {index} of {} ({})",
            tracks::describe(&audio),
            chosen.pad
        );
        if index > 0 {
            input = input.with_audio_pad(&chosen.pad);
        }
    }
    if let Some(transcoded @ pipeline::AudioIn::Transcoded { .. }) =
        pipeline::AudioIn::for_caps(&chosen.caps)
    {
        eprintln!(
            "worker: the input's audio is {}: decoded and encoded to AAC for stsdub",
            chosen.caps
        );
        input = input.with_audio(transcoded);
    }
    Ok(input)
}

/// A demuxer's or RTSP source's stream that the worker cannot take stops
/// it at start, with what it is and what is expected (rather than a
/// "not-linked" from deep inside, or a stream quietly left out); audio that
/// is being transcoded is taken whatever its codec.
fn refuse_unsupported_streams(
    pipeline: &gst::Element,
    video: pipeline::VideoCodec,
    audio_probed: bool,
) {
    let Some(bin) = pipeline.downcast_ref::<gst::Bin>() else {
        return;
    };
    for name in ["d", "src"] {
        let Some(source) = bin.by_name(name) else {
            continue;
        };
        source.connect_pad_added(move |element, pad| {
            let Some(caps) = pad.current_caps().or_else(|| Some(pad.query_caps(None))) else {
                return;
            };
            let audio = caps
                .structure(0)
                .is_some_and(|s| s.name().starts_with("audio/"));
            // A probed file's audio track was chosen and brought to AAC
            // before the pipeline was built; the others are carried.
            if audio_probed && audio {
                return;
            }
            // Taken already: a live input's audio that is transcoded.
            if pad.is_linked() {
                return;
            }
            if let Some(why) = pipeline::unsupported_stream(&caps, video) {
                let message = gst::message::Error::builder(gst::StreamError::CodecNotFound, &why)
                    .src(element)
                    .build();
                let _ = element.post_message(message);
            }
        });
    }
}

/// The segments' rows, and whether the pipeline failed.
fn run(
    pipeline: &gst::Element,
    mut sidecars: Option<&mut subtitles::Sidecars>,
    mut package: Option<&mut packager::Package>,
) -> (Vec<Row>, bool) {
    let Some(mut messages) = drain::BusUntilDrained::new(pipeline) else {
        return (Vec::new(), true);
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        eprintln!("worker: the pipeline does not start");
    }
    let mut rows = Vec::new();
    let mut failed = false;
    while let Some(message) = messages.next_message() {
        match message.view() {
            gst::MessageView::Eos(_) => {
                if let Some(package) = package.as_deref_mut()
                    && let Err(e) = package.finish()
                {
                    eprintln!("worker: error: HLS output: {e}");
                    failed = true;
                }
                break;
            }
            gst::MessageView::Error(e) => {
                if let Some(package) = package.as_deref() {
                    package.fail();
                    let path = e
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default();
                    if let Some(folder) = package.folder_of(&path) {
                        eprintln!(
                            "worker: error: HLS output: cannot write in {}: {}",
                            folder.display(),
                            e.error()
                        );
                    }
                }
                eprintln!(
                    "worker: error from {:?}: {} ({:?})",
                    e.src().map(|s| s.path_string()),
                    e.error(),
                    e.debug()
                );
                failed = true;
                break;
            }
            gst::MessageView::Warning(w) => {
                let debug = w.debug().map(|d| d.to_string()).unwrap_or_default();
                if !live_audio::is_the_replaced_link(&debug) {
                    eprintln!("worker: warning: {} ({debug})", w.error());
                }
            }
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                if let Some(package) = package.as_deref_mut()
                    && let Err(error) = package.segment_added(
                        &e.src().map(|s| s.name().to_string()).unwrap_or_default(),
                        s,
                    )
                {
                    eprintln!("worker: error: HLS output: {error}");
                    package.fail();
                    failed = true;
                    break;
                }
                if s.name() != "stsdub-segment" {
                    continue;
                }
                if let Some(sidecars) = sidecars.as_deref_mut() {
                    write_subtitles(sidecars, e.src(), s);
                }
                if let Some(package) = package.as_deref_mut() {
                    let (language, pts, duration, words) = dubbed_words(e.src(), s);
                    // A first segment may start a frame before the stream's
                    // segment: its words from running time 0.
                    let start = running_time(e.src(), pts);
                    let (start, duration) = (
                        start.max(0).unsigned_abs(),
                        duration.saturating_sub(start.min(0).unsigned_abs()),
                    );
                    if let Err(error) = package.dubbed_words(&language, start, duration, &words) {
                        eprintln!("worker: error: HLS output: {error}");
                        package.fail();
                        failed = true;
                        break;
                    }
                }
                rows.push(Row {
                    batch: s.get("batch").unwrap_or_default(),
                    pts_s: s.get::<u64>("pts").unwrap_or_default() as f64 / 1e9,
                    status: s.get("status").unwrap_or_default(),
                    reason: s.get("reason").unwrap_or_default(),
                    round_trip_ms: s.get("round-trip-ms").unwrap_or(-1),
                });
            }
            _ => {}
        }
    }
    if messages.gave_up() {
        eprintln!(
            "worker: warning: the stream did not end within {} s of the interrupt or of \
             its first track's end (a source kept its end back); stopping it",
            messages.limit().as_secs()
        );
    }
    (rows, failed)
}

/// A dubbed segment's language (that of the stsdub that posted it), start
/// and duration (ns) and words.
fn dubbed_words(
    from: Option<&gst::Object>,
    segment: &gst::StructureRef,
) -> (String, u64, u64, String) {
    let words = segment.get::<String>("translated-text").unwrap_or_default();
    let language = from
        .filter(|f| f.find_property("target-language").is_some())
        .map(|f| f.property::<String>("target-language"))
        .unwrap_or_else(|| "und".into());
    let pts = segment.get::<u64>("pts").unwrap_or_default();
    let duration = segment.get::<u64>("duration-ms").unwrap_or_default() * 1_000_000;
    (language, pts, duration, words)
}

/// `pts` of `stsdub`'s audio as running time, the HLS package's timeline.
/// By the segment its audio came in with, which it passes on (on its
/// audio_src the event may not be yet when the first segment is posted).
fn running_time(stsdub: Option<&gst::Object>, pts: u64) -> i64 {
    let pts_signed = i64::try_from(pts).unwrap_or(i64::MAX);
    stsdub
        .and_then(|o| o.downcast_ref::<gst::Element>())
        .and_then(|e| e.static_pad("audio_sink"))
        .and_then(|p| p.sticky_event::<gst::event::Segment>(0))
        .and_then(|e| {
            let segment = e.segment().downcast_ref::<gst::ClockTime>()?;
            let time = segment.to_running_time_full(gst::ClockTime::from_nseconds(pts))?;
            Some(match time {
                gst::Signed::Positive(t) => i64::try_from(t.nseconds()).unwrap_or(i64::MAX),
                gst::Signed::Negative(t) => -i64::try_from(t.nseconds()).unwrap_or(i64::MAX),
            })
        })
        .unwrap_or(pts_signed)
}

/// A dubbed segment's words into its language's sidecars.
fn write_subtitles(
    sidecars: &mut subtitles::Sidecars,
    from: Option<&gst::Object>,
    segment: &gst::StructureRef,
) {
    let (language, pts, duration, words) = dubbed_words(from, segment);
    if let Err(e) = sidecars.segment(&language, pts, duration, &words) {
        eprintln!("worker: warning: subtitles for {language}: {e}");
    }
}

fn print_table(rows: &[Row], seconds: f64, output: &str) {
    println!(
        "{:>5}  {:>8}  {:<8}  {:<13}  {:>10}",
        "batch", "start s", "status", "reason", "round trip"
    );
    for row in rows {
        let rtt = if row.round_trip_ms >= 0 {
            format!("{} ms", row.round_trip_ms)
        } else {
            "-".into()
        };
        println!(
            "{:>5}  {:>8.3}  {:<8}  {:<13}  {:>10}",
            row.batch, row.pts_s, row.status, row.reason, rtt
        );
    }
    let dubbed = rows.iter().filter(|r| r.status == "dubbed").count();
    let rtts: Vec<i64> = rows
        .iter()
        .filter(|r| r.round_trip_ms >= 0)
        .map(|r| r.round_trip_ms)
        .collect();
    let mean = if rtts.is_empty() {
        0
    } else {
        rtts.iter().sum::<i64>() / rtts.len() as i64
    };
    println!(
        "segments: {}  dubbed: {}  fallback: {}  mean round trip: {} ms  wall time: {:.1} s  output: {}",
        rows.len(),
        dubbed,
        rows.len() - dubbed,
        mean,
        seconds,
        output
    );
}
