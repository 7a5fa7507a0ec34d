// SPDX-License-Identifier: MPL-2.0

//! The worker's pipeline, written once. `stsdub-worker` builds its launch
//! line here; `pipelines/worker.sh`, the README, docs/users.md and the element's docs write
//! the same line, and a test (`tests/launch_lines.rs`) checks them against it.
//!
//! No queue on the way in or between stsdub and the muxer: stsdub's pads
//! never wait for each other (see the element's docs). The one queue sits
//! between flvmux and an RTMP sink, whose blocking connect would otherwise
//! stall the muxer into interleaving the first frames out of order.

mod audio_out;
mod hls;
mod input;
mod languages;
mod loas;
mod output;
pub mod retime;

pub use audio_out::AudioOut;
pub use hls::{
    DEFAULT_PLAYLIST_LENGTH as DEFAULT_HLS_PLAYLIST_LENGTH,
    DEFAULT_SEGMENT_SECONDS as DEFAULT_HLS_SEGMENT_SECONDS, HlsOutput, MEDIA_PLAYLIST, Rendition,
};
pub use input::{
    AudioIn, Input, LIVE_TS_DEMUXER, RTSP_LATENCY_MS, TS_DEMUXER, VideoCodec, unsupported_stream,
};
use languages::ORIGINAL_HOLD;
pub use languages::{CAPTION_CHANNELS, Captions, Languages};
use output::VideoParser;
pub use output::{Output, SCTE35_PID};

/// `value` as a launch line quotes a URL or a path: in double quotes, with
/// `"` and `\` escaped, so that no value ends the quoting early.
pub(crate) fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The whole worker: input → stsdub (with `properties`, e.g.
/// `sts-url="http://sts:8000" stream-id="match-1"`) → FLV out.
pub fn worker(input: &Input, properties: &str, output: &Output) -> String {
    worker_for(input, VideoCodec::H264, properties, output)
}

/// [`worker`] for an input whose video is `video`.
pub fn worker_for(input: &Input, video: VideoCodec, properties: &str, output: &Output) -> String {
    let properties = properties.trim();
    let space = if properties.is_empty() { "" } else { " " };
    if let Output::Hls(hls) = output {
        let dubbed = Rendition::Audio {
            language: property_value(properties, "target-language").unwrap_or("und".into()),
            dubbed: true,
        };
        let video_out = if input.has_video() {
            format!(
                "{} ",
                hls.branch("dub.video_src", &Rendition::Video, input.is_live())
            )
        } else {
            String::new()
        };
        return format!(
            "{} stsdub name=dub{space}{properties} {video_out}{}",
            input.source_into(
                VideoParser::new(video, output.muxer()),
                "dub.video_sink",
                "dub.audio_sink"
            ),
            hls.branch("dub.audio_src", &dubbed, input.is_live()),
        );
    }
    let muxer = output.muxer();
    let text = if wants_captions(properties) && muxer.carries_text() {
        format!("dub.text_src ! {} ", muxer.pad("mux", "text"))
    } else {
        String::new()
    };
    let video_out = if input.has_video() {
        format!("dub.video_src ! {} ", muxer.pad("mux", "video"))
    } else {
        String::new()
    };
    format!(
        "{} stsdub name=dub{space}{properties} \
         {video_out}dub.audio_src ! {} {text}{}",
        input.source_into(
            VideoParser::new(video, output.muxer()),
            "dub.video_sink",
            "dub.audio_sink"
        ),
        output.audio_into(&muxer.pad("mux", "audio")),
        output.muxer_and_sink()
    )
}

/// Whether stsdub `properties` ask for captions: the words then also go
/// out as a subtitle track where the container has one (text_src).
fn wants_captions(properties: &str) -> bool {
    properties.split_whitespace().any(|p| {
        p.strip_prefix("captions=")
            .is_some_and(|v| v.trim_matches('"') != "off")
    })
}

/// The value of stsdub property `name` in `properties`, unquoted.
fn property_value(properties: &str, name: &str) -> Option<String> {
    properties.split_whitespace().find_map(|p| {
        p.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_owned())
    })
}

/// The worker's path without stsdub: the same source, parsers, muxer and
/// sink, a queue where stsdub would be. What the path does by itself, the
/// reference an A/V measurement of the worker is held to.
pub fn passthrough(input: &Input, video: VideoCodec, output: &Output) -> String {
    let muxer = output.muxer();
    if let Output::Hls(hls) = output {
        let (live, original) = (
            input.is_live(),
            Rendition::Audio {
                language: "und".into(),
                dubbed: false,
            },
        );
        return input.source_into(
            VideoParser::new(video, muxer),
            &format!("queue ! {}", hls.into(&Rendition::Video, live)),
            &format!("queue ! {}", hls.into(&original, live)),
        );
    }
    format!(
        "{} {}",
        input.source_into(
            VideoParser::new(video, muxer),
            &format!("queue ! {}", muxer.pad("mux", "video")),
            &format!("queue ! {}", output.audio_into(&muxer.pad("mux", "audio")))
        ),
        output.muxer_and_sink()
    )
}

/// The worker for several languages: the input's AAC through a tee into
/// one stsdub per language (`properties` shared; each its own
/// `stream-id` and `target-language`, all at one latency, so every track
/// keeps to the one video, which the first language's element carries).
/// Into a multi-track output go the video, the original (if kept, tagged
/// with the source language) and every dubbed track; into FLV, which
/// carries one audio track, one output per language (`{lang}` in its URL),
/// the video to each.
pub fn multi_language_worker(
    input: &Input,
    video: VideoCodec,
    properties: &str,
    languages: &Languages,
    output: &Output,
) -> String {
    let first = Languages::element(&languages.targets[0]);
    let parser = VideoParser::new(video, output.muxer());
    let mut parts =
        vec![input.source_into(parser, &format!("{first}.video_sink"), "tee name=audio")];
    let properties = properties.trim();
    for (index, language) in languages.targets.iter().enumerate() {
        let name = Languages::element(language);
        let captions = languages
            .caption_setting(index)
            .map(|(format, channel)| {
                format!(" captions={} caption-channel={channel}", format.property())
            })
            .unwrap_or_default();
        parts.push(format!(
            "audio. ! {name}.audio_sink stsdub name={name} {properties}{}stream-id={} target-language={}{captions}",
            if properties.is_empty() { "" } else { " " },
            quoted(&format!("{}-{language}", languages.stream_id)),
            quoted(language)
        ));
    }
    // With captions the video passes every language's stsdub in turn, each
    // adding its own channel; without, only the first's.
    let video_from = if languages.captions.is_some() && input.has_video() {
        for pair in languages.targets.windows(2) {
            let (from, to) = (Languages::element(&pair[0]), Languages::element(&pair[1]));
            parts.push(format!("{from}.video_src ! {to}.video_sink"));
        }
        Languages::element(languages.targets.last().unwrap_or(&languages.targets[0]))
    } else {
        first
    };
    let original = |into: &str| {
        format!(
            "audio. ! {ORIGINAL_HOLD} ! taginject tags=\"language-code={}\" ! {into}",
            languages.source
        )
    };
    let muxer = output.muxer();
    if let Output::Hls(hls) = output {
        let live = input.is_live();
        if input.has_video() {
            parts.push(hls.branch(&format!("{video_from}.video_src"), &Rendition::Video, live));
        }
        if languages.keep_original {
            let original = Rendition::Audio {
                language: languages.source.clone(),
                dubbed: false,
            };
            parts.push(hls.branch(&format!("audio. ! {ORIGINAL_HOLD}"), &original, live));
        }
        for language in &languages.targets {
            let dubbed = Rendition::Audio {
                language: language.clone(),
                dubbed: true,
            };
            let from = format!("{}.audio_src", Languages::element(language));
            parts.push(hls.branch(&from, &dubbed, live));
        }
    } else if muxer.tracks_many() {
        if input.has_video() {
            parts.push(format!(
                "{video_from}.video_src ! {}",
                muxer.pad("mux", "video")
            ));
        }
        if languages.keep_original {
            parts.push(original(&output.audio_into(&muxer.pad("mux", "audio"))));
        }
        for language in &languages.targets {
            let name = Languages::element(language);
            parts.push(format!(
                "{name}.audio_src ! {}",
                output.audio_into(&muxer.pad("mux", "audio"))
            ));
            if languages.captions.is_some() && muxer.carries_text() {
                parts.push(format!(
                    "{name}.text_src ! taginject tags=\"language-code={language}\" ! {}",
                    muxer.pad("mux", "text")
                ));
            }
        }
        parts.push(output.muxer_and_sink());
    } else {
        // One output per language, each with the video.
        if input.has_video() {
            parts.push(format!("{video_from}.video_src ! tee name=video"));
        }
        let mut outputs: Vec<(String, String)> = languages
            .targets
            .iter()
            .map(|l| (l.clone(), format!("{}.audio_src", Languages::element(l))))
            .collect();
        if languages.keep_original {
            outputs.insert(0, (languages.source.clone(), String::new()));
        }
        for (language, audio) in outputs {
            let mux = format!("mux_{}", language.replace('-', "_"));
            if input.has_video() {
                parts.push(format!("video. ! queue ! {}", muxer.pad(&mux, "video")));
            }
            let into = output.audio_into(&muxer.pad(&mux, "audio"));
            if audio.is_empty() {
                parts.push(original(&into));
            } else {
                parts.push(format!("{audio} ! {into}"));
            }
            parts.push(output.for_language(&language).muxer_and_sink_named(&mux));
        }
    }
    parts.join(" ")
}

/// `description` with whitespace folded and shell line continuations gone,
/// for comparing launch lines written in different places.
pub fn normalized(description: &str) -> String {
    description
        .replace("\\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtsp_in_rtmp_out_has_the_plans_jitter_buffer_and_one_queue_before_the_sink() {
        let line = worker(
            &Input::rtsp("rtsp://cam/s"),
            "sts-url=\"http://sts:8000\"",
            &Output::from_uri("rtmp://srv/live/k"),
        );
        assert!(line.contains("latency=200 "), "{line}");
        assert_eq!(line.matches(" queue ").count(), 1, "{line}");
        assert!(line.contains("! queue ! rtmpsink location=\"rtmp://srv/live/k\""));
    }

    #[test]
    fn an_input_without_video_leaves_every_video_pad_out() {
        let input = Input::from_uri("radio.ts").expect("known").without_video();
        let languages = Languages::parse("es,fr", "en", "radio", true).expect("languages");
        for output in ["out.ts", "out.flv", "out.mkv", "hls/master.m3u8"] {
            let output = Output::from_uri(output);
            let one = worker(&input, "captions=cea608", &output);
            let many = multi_language_worker(&input, VideoCodec::H264, "", &languages, &output);
            for line in [one, many] {
                assert!(!line.contains("video"), "{line}");
                assert!(!line.contains("h264parse"), "{line}");
                assert!(line.contains("audio_sink"), "{line}");
            }
        }
    }

    #[test]
    fn a_file_is_read_by_the_demuxer_its_extension_names_with_no_queue() {
        for (name, demuxer) in [
            ("a.mp4", "qtdemux"),
            ("a.MOV", "qtdemux"),
            ("a.flv", "flvdemux"),
            ("a.mkv", "matroskademux"),
        ] {
            let input = Input::from_uri(name).expect("known extension");
            let line = worker(&input, "", &Output::from_uri("out.flv"));
            assert!(line.contains(&format!("! {demuxer} name=d")), "{line}");
            assert!(!line.split_whitespace().any(|w| w == "queue"), "{line}");
        }
        assert!(Input::from_uri("a.mp3").is_err());
        for unknown in ["out.webm", "out.mp3", "out.flx"] {
            let refused = Output::checked(unknown).expect_err(unknown);
            assert!(
                refused.contains(unknown) && refused.contains(".flv, .ts"),
                "{refused}"
            );
        }
        assert!(Output::checked("out.webm").is_err_and(|e| e.contains("master.m3u8 (HLS)")));
        for known in [
            "o.flv",
            "o.TS",
            "o.m2ts",
            "o.mkv",
            "o.mp4",
            "o.mov",
            "rtmp://h/a/b",
            "srt://h:1",
            "udp://h:2",
        ] {
            assert!(Output::checked(known).is_ok(), "{known}");
        }
    }

    #[test]
    fn mpeg_ts_comes_from_srt_udp_or_a_file_and_goes_to_srt_udp_or_a_file() {
        for (input, source, demuxer) in [
            ("srt://:7001?mode=listener", "srtsrc uri=", LIVE_TS_DEMUXER),
            ("udp://0.0.0.0:5004", "udpsrc uri=", LIVE_TS_DEMUXER),
            ("match.ts", "filesrc location=", TS_DEMUXER),
        ] {
            let line = worker(
                &Input::from_uri(input).expect("known"),
                "",
                &Output::from_uri("o.ts"),
            );
            assert!(line.starts_with(source), "{line}");
            let front = format!(
                "! {demuxer} name=d d. ! h264parse config-interval=-1 ! dub.video_sink d. ! aacparse ! dub.audio_sink"
            );
            assert!(line.contains(&front), "{line}");
            assert!(
                line.contains("dub.video_src ! mux. dub.audio_src ! mux. mpegtsmux"),
                "{line}"
            );
        }
        let srt = worker(
            &Input::from_uri("a.ts").expect("ts"),
            "",
            &Output::from_uri("srt://h:7002"),
        );
        assert!(
            srt.ends_with("mpegtsmux name=mux alignment=7 scte-35-pid=500 ! queue ! srtsink uri=\"srt://h:7002\""),
            "{srt}"
        );
        let udp = worker(
            &Input::from_uri("a.ts").expect("ts"),
            "",
            &Output::from_uri("udp://239.0.0.1:5004"),
        );
        assert!(
            udp.ends_with("udpsink host=\"239.0.0.1\" port=5004"),
            "{udp}"
        );
        for (file, muxer) in [
            ("o.mkv", "matroskamux"),
            ("o.mp4", "mp4mux"),
            ("o.flv", "flvmux"),
        ] {
            let line = worker(
                &Input::from_uri("a.ts").expect("ts"),
                "",
                &Output::from_uri(file),
            );
            assert!(line.contains(muxer), "{line}");
        }
    }

    #[test]
    fn several_languages_share_one_input_and_one_multi_track_output() {
        let languages = Languages::parse("es, fr", "en", "match-1", true).expect("valid");
        let line = multi_language_worker(
            &Input::from_uri("in.ts").expect("ts"),
            VideoCodec::H265,
            "sts-url=\"http://sts\"",
            &languages,
            &Output::from_uri("out.ts"),
        );
        assert!(
            line.contains("d. ! h265parse config-interval=-1 ! dub_es.video_sink d. ! aacparse ! tee name=audio"),
            "{line}"
        );
        assert!(line.contains("stsdub name=dub_es sts-url=\"http://sts\" stream-id=\"match-1-es\" target-language=\"es\""), "{line}");
        assert!(
            line.contains("stream-id=\"match-1-fr\" target-language=\"fr\""),
            "{line}"
        );
        assert!(
            line.contains("taginject tags=\"language-code=en\""),
            "{line}"
        );
        assert_eq!(line.matches("mpegtsmux").count(), 1, "{line}");
        assert_eq!(
            line.matches(" queue ").count(),
            1,
            "only the original's hold: {line}"
        );
        let dropped = Languages::parse("es", "en", "m", false).expect("valid");
        let line = multi_language_worker(
            &Input::from_uri("in.ts").expect("ts"),
            VideoCodec::H264,
            "",
            &dropped,
            &Output::from_uri("out.mkv"),
        );
        assert!(!line.contains("taginject"), "{line}");
    }

    #[test]
    fn with_captions_the_video_passes_every_language_each_on_its_channel() {
        let languages = Languages::parse("es,fr", "en", "m", true)
            .and_then(Languages::with_captions)
            .expect("valid");
        let line = multi_language_worker(
            &Input::from_uri("in.ts").expect("ts"),
            VideoCodec::H264,
            "",
            &languages,
            &Output::from_uri("out.ts"),
        );
        for (language, channel) in [("es", 1), ("fr", 3)] {
            assert!(
                line.contains(&format!(
                    "target-language=\"{language}\" captions=cea608 caption-channel={channel}"
                )),
                "{line}"
            );
        }
        assert!(
            line.contains("dub_es.video_src ! dub_fr.video_sink"),
            "{line}"
        );
        assert!(line.contains("dub_fr.video_src ! mux."), "{line}");
        let three = Languages::parse("es,fr,de", "en", "m", true).expect("valid");
        assert!(
            three
                .with_captions()
                .is_err_and(|e| e.contains("CC1 and CC3"))
        );
    }

    #[test]
    fn with_708_each_language_gets_a_service_and_with_both_the_first_two_a_channel_too() {
        let line = |list: &str, format: Captions| {
            let languages = Languages::parse(list, "en", "m", true)
                .and_then(|l| l.with_caption_format(format))
                .expect("valid");
            multi_language_worker(
                &Input::from_uri("in.ts").expect("ts"),
                VideoCodec::H264,
                "",
                &languages,
                &Output::from_uri("out.ts"),
            )
        };
        let both = line("es,fr,de", Captions::Both);
        for (language, format, channel) in
            [("es", "both", 1), ("fr", "both", 3), ("de", "cea708", 2)]
        {
            assert!(
                both.contains(&format!(
                    "target-language=\"{language}\" captions={format} caption-channel={channel}"
                )),
                "{both}"
            );
        }
        let services = line("es,fr,de,it", Captions::Cea708);
        for (language, service) in [("es", 1), ("fr", 2), ("de", 3), ("it", 4)] {
            assert!(
                services.contains(&format!(
                    "target-language=\"{language}\" captions=cea708 caption-channel={service}"
                )),
                "{services}"
            );
        }
        assert!(
            services.contains("dub_de.video_src ! dub_it.video_sink"),
            "{services}"
        );
        let five = Languages::parse("es,fr,de,it,pt", "en", "m", true).expect("valid");
        assert!(
            five.with_caption_format(Captions::Cea708)
                .is_err_and(|e| e.contains("708 services 1 to 4"))
        );
        assert_eq!(Captions::from_name("off"), Ok(None));
        assert!(Captions::from_name("708").is_err_and(|e| e.contains("cea708")));
    }

    #[test]
    fn flv_gets_one_output_per_language_with_the_video_in_each() {
        let languages = Languages::parse("es,fr", "en", "m", true).expect("valid");
        let line = multi_language_worker(
            &Input::from_uri("rtsp://cam/s").expect("rtsp"),
            VideoCodec::H264,
            "",
            &languages,
            &Output::from_uri("rtmp://srv/live/{lang}"),
        );
        for language in ["en", "es", "fr"] {
            assert!(
                line.contains(&format!("rtmpsink location=\"rtmp://srv/live/{language}\"")),
                "{line}"
            );
            assert!(
                line.contains(&format!("video. ! queue ! mux_{language}.video")),
                "{line}"
            );
        }
        assert!(line.contains("dub_fr.audio_src ! mux_fr.audio"), "{line}");
    }

    #[test]
    fn a_stream_that_is_not_aac_or_the_video_codec_is_named_with_what_is_expected() {
        gst::init().expect("GStreamer initialises");
        let caps = |text: &str| text.parse::<gst::Caps>().expect("caps");
        let aac = caps("audio/mpeg, mpegversion=(int)4, stream-format=(string)adts");
        assert_eq!(unsupported_stream(&aac, VideoCodec::H264), None);
        let mp2 = caps("audio/mpeg, mpegversion=(int)1, layer=(int)2");
        let why = unsupported_stream(&mp2, VideoCodec::H264).expect("refused");
        assert!(
            why.contains("mpegversion=(int)1") && why.contains("AAC"),
            "{why}"
        );
        let hevc = caps("video/x-h265, stream-format=(string)hvc1");
        assert_eq!(unsupported_stream(&hevc, VideoCodec::H265), None);
        let why = unsupported_stream(&hevc, VideoCodec::H264).expect("refused");
        assert!(
            why.contains("video/x-h265") && why.contains("h265 is the other"),
            "{why}"
        );
        let rtp_h264 = caps("application/x-rtp, media=(string)video, encoding-name=(string)H264");
        assert_eq!(unsupported_stream(&rtp_h264, VideoCodec::H264), None);
        let rtp_aac =
            caps("application/x-rtp, media=(string)audio, encoding-name=(string)MPEG4-GENERIC");
        assert_eq!(unsupported_stream(&rtp_aac, VideoCodec::H264), None);
        assert!(unsupported_stream(&rtp_h264, VideoCodec::H265).is_some());
        let rtp = caps("application/x-rtp, media=(string)audio, encoding-name=(string)OPUS");
        assert!(
            unsupported_stream(&rtp, VideoCodec::H264)
                .expect("refused")
                .contains("RTP OPUS")
        );
        let subtitles = caps("subpicture/x-dvb");
        assert_eq!(unsupported_stream(&subtitles, VideoCodec::H264), None);
    }

    #[test]
    fn a_language_list_is_checked() {
        assert!(Languages::parse("", "en", "m", true).is_err());
        assert!(
            Languages::parse("es,ES", "en", "m", true)
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            Languages::parse("es;rm -rf", "en", "m", true)
                .unwrap_err()
                .contains("letters")
        );
        assert!(
            VideoCodec::from_name("vp9")
                .unwrap_err()
                .contains("h264 or h265")
        );
    }

    #[test]
    fn hls_gets_a_sink_per_rendition_and_a_file_makes_vod() {
        let input = Input::from_uri("in.ts").expect("ts");
        let output = Output::checked("/srv/hls/master.m3u8").expect("HLS");
        let line = worker(&input, "target-language=\"es\"", &output);
        assert!(line.contains("config-interval=-1"), "{line}");
        assert!(line.contains("dub.video_src ! hls_video.video hlssink3 name=hls_video"));
        assert!(line.contains(
            "dub.audio_src ! aacparse ! audio/mpeg,stream-format=adts ! appsink name=hls_dub_es "
        ));
        assert!(line.contains("playlist-type=vod"), "{line}");
        let languages = Languages::parse("es,fr", "en", "match", true).expect("languages");
        let line = multi_language_worker(&input, VideoCodec::H264, "", &languages, &output);
        assert!(line.contains("hlssink3 name=hls_video "), "{line}");
        for sink in ["hls_orig_en", "hls_dub_es", "hls_dub_fr"] {
            assert!(
                line.contains(&format!("appsink name={sink} ")),
                "{sink}: {line}"
            );
        }
        assert!(line.contains(&format!("audio. ! {ORIGINAL_HOLD} ! aacparse")));
        let live = Input::from_uri("srt://127.0.0.1:7001").expect("srt");
        let line = worker(&live, "", &output);
        assert!(line.contains("appsink name=hls_dub_und "), "{line}");
        assert!(line.contains("playlist-length=5 max-files=7"), "{line}");
    }

    #[test]
    fn normalizing_folds_continuations_and_spaces() {
        assert_eq!(normalized("a \\\n   b\n c  d"), "a b c d");
    }

    #[test]
    fn a_quoted_value_reaches_the_element_whole() {
        use gst::prelude::*;
        gst::init().expect("gst");
        for location in ["/tmp/a b.flv", r#"/tmp/a"b.flv"#, r"/tmp/a\b.flv"] {
            let line = format!("fakesrc ! filesink name=out location={}", quoted(location));
            let pipeline = gst::parse::launch(&line)
                .expect("parses")
                .downcast::<gst::Bin>()
                .expect("a bin");
            let sink = pipeline.by_name("out").expect("the sink");
            assert_eq!(
                sink.property::<Option<String>>("location").as_deref(),
                Some(location)
            );
        }
    }
}
