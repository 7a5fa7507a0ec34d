//! The worker's pipeline, written once. `stsdub-worker` builds its launch
//! line here; `pipelines/worker.sh`, the README and the element's docs write
//! the same line, and a test (`tests/pipelines.rs`) checks them against it.
//!
//! No queue on the way in or between stsdub and the muxer: stsdub's pads
//! never wait for each other (see the element's docs). The one queue sits
//! between flvmux and an RTMP sink, whose blocking connect would otherwise
//! stall the muxer into interleaving the first frames out of order.

/// rtspsrc's jitter buffer, the plan's 200 ms. rtspsrc's own default of
/// 2000 ms makes a stream whose first RTP sequence number never arrives
/// start 2 s late.
pub const RTSP_LATENCY_MS: u32 = 200;

/// Where the stream comes from. URLs and paths go into the launch line in
/// double quotes, other values as given (a shell script passes its
/// `"$VARIABLES"` with their quotes).
#[derive(Debug, Clone)]
pub enum Input {
    Rtsp {
        url: String,
        /// rtspsrc `latency` (ms); [`RTSP_LATENCY_MS`] unless told.
        latency: String,
        /// rtspsrc `buffer-mode`, when not its default.
        buffer_mode: Option<String>,
    },
    Rtmp {
        url: String,
    },
    /// MPEG-TS (SRT, UDP or a `.ts` file): `source` is the element that
    /// reads it; tsdemux's pads are named by PID, so they are linked by caps.
    Ts {
        source: String,
        /// From the network: timestamps from the PTS, not the PCR (see
        /// [`LIVE_TS_DEMUXER`]).
        live: bool,
    },
    /// A file, read by `demuxer` (whose pads are `audio_pad`, `video_pad`).
    File {
        location: String,
        demuxer: &'static str,
        audio_pad: &'static str,
        video_pad: &'static str,
    },
}

impl Input {
    /// An RTSP input with the plan's jitter buffer.
    pub fn rtsp(url: &str) -> Self {
        Input::Rtsp {
            url: url.into(),
            latency: RTSP_LATENCY_MS.to_string(),
            buffer_mode: None,
        }
    }

    /// The input a URL or file name calls for, by its scheme or extension.
    pub fn from_uri(input: &str) -> Result<Self, String> {
        let lower = input.to_ascii_lowercase();
        let file = |demuxer, audio_pad, video_pad| {
            Ok(Input::File {
                location: input.into(),
                demuxer,
                audio_pad,
                video_pad,
            })
        };
        if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") {
            Ok(Input::rtsp(input))
        } else if lower.starts_with("rtmp://") {
            Ok(Input::Rtmp { url: input.into() })
        } else if lower.starts_with("srt://") {
            // Caller or listener as the URI says (`?mode=listener`).
            Ok(Input::Ts {
                source: format!("srtsrc uri=\"{input}\""),
                live: true,
            })
        } else if lower.starts_with("udp://") {
            Ok(Input::Ts {
                source: format!(
                    "udpsrc uri=\"{input}\" caps=\"video/mpegts, systemstream=(boolean)true, packetsize=(int)188\""
                ),
                live: true,
            })
        } else if [".ts", ".m2ts", ".mts"].iter().any(|e| lower.ends_with(e)) {
            Ok(Input::Ts {
                source: format!("filesrc location=\"{input}\""),
                live: false,
            })
        } else if [".mp4", ".mov", ".m4a", ".m4v"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            file("qtdemux", "audio_0", "video_0")
        } else if lower.ends_with(".flv") {
            file("flvdemux", "audio", "video")
        } else if lower.ends_with(".mkv") {
            file("matroskademux", "audio_0", "video_0")
        } else {
            Err(format!(
                "cannot tell how to read {input}: use .mp4, .mov, .flv, .mkv, .ts, rtsp://, rtmp://, srt:// or udp://"
            ))
        }
    }

    /// Source, depayloaders or demuxer, and parsers: the video (`video`)
    /// into `video_to`, the AAC into `audio_to`.
    fn front_into(&self, video: VideoParser, video_to: &str, audio_to: &str) -> String {
        let parse = video.element();
        let video = video.codec;
        match self {
            Input::Rtsp {
                url,
                latency,
                buffer_mode,
            } => {
                let mode = buffer_mode
                    .as_ref()
                    .map(|mode| format!(" buffer-mode={mode}"))
                    .unwrap_or_default();
                format!(
                    "rtspsrc location=\"{url}\" protocols=tcp latency={latency}{mode} name=src \
                     src. ! {} ! {parse} ! {video_to} \
                     src. ! rtpmp4gdepay ! aacparse ! {audio_to}",
                    video.depayloader()
                )
            }
            Input::Rtmp { url } => format!(
                "rtmpsrc location=\"{url}\" ! flvdemux name=d \
                 d.video ! {parse} ! {video_to} d.audio ! aacparse ! {audio_to}"
            ),
            Input::Ts { source, live } => format!(
                "{source} ! {} name=d \
                 d. ! {parse} ! {video_to} d. ! aacparse ! {audio_to}",
                if *live { LIVE_TS_DEMUXER } else { "tsdemux" }
            ),
            Input::File {
                location,
                demuxer,
                audio_pad,
                video_pad,
            } => format!(
                "filesrc location=\"{location}\" ! {demuxer} name=d \
                 d.{video_pad} ! {parse} ! {video_to} d.{audio_pad} ! aacparse ! {audio_to}"
            ),
        }
    }
}

/// tsdemux for MPEG-TS from the network. Timed by the PCR (its default),
/// the audio of an ffmpeg sender over UDP came out 230 ms after its video
/// at every sync mark, with or without stsdub; timed by the PTS, 3 ms.
/// SRT delivers packets at the sender's pace, so nothing is lost by it.
pub const LIVE_TS_DEMUXER: &str = "tsdemux ignore-pcr=true";

/// The input's video codec: it passes through untouched, but its parser
/// (and RTP depayloader) must be named in a launch line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoCodec {
    #[default]
    H264,
    H265,
}

impl VideoCodec {
    /// `h264` or `h265` (also `avc`, `hevc`).
    pub fn from_name(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "h264" | "avc" | "h.264" => Ok(VideoCodec::H264),
            "h265" | "hevc" | "h.265" => Ok(VideoCodec::H265),
            other => Err(format!("video codec {other:?}: h264 or h265")),
        }
    }

    fn parser(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264parse",
            VideoCodec::H265 => "h265parse",
        }
    }

    fn depayloader(self) -> &'static str {
        match self {
            VideoCodec::H264 => "rtph264depay",
            VideoCodec::H265 => "rtph265depay",
        }
    }

    /// The RTP encoding name of this codec's video.
    fn rtp_encoding(self) -> &'static str {
        match self {
            VideoCodec::H264 => "H264",
            VideoCodec::H265 => "H265",
        }
    }

    /// The caps a demuxer gives this codec's video.
    pub fn caps_name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "video/x-h264",
            VideoCodec::H265 => "video/x-h265",
        }
    }
}

/// Why a stream a demuxer or RTSP source found cannot go through the
/// worker (what it is, and what is expected), or None when it can:
/// the audio must be AAC, the video `video`. Other kinds (subtitles,
/// data) are let be.
pub fn unsupported_stream(caps: &gst::CapsRef, video: VideoCodec) -> Option<String> {
    let structure = caps.structure(0)?;
    let name = structure.name().as_str();
    let (kind, what) = if name == "application/x-rtp" {
        let media = structure.get::<&str>("media").unwrap_or("");
        let encoding = structure
            .get::<&str>("encoding-name")
            .unwrap_or("")
            .to_ascii_uppercase();
        let fine = match media {
            "audio" => encoding == "MPEG4-GENERIC",
            "video" => encoding == video.rtp_encoding(),
            _ => true,
        };
        if fine {
            return None;
        }
        (media.to_owned(), format!("RTP {encoding}"))
    } else {
        let kind = name.split('/').next().unwrap_or("").to_owned();
        let fine = match kind.as_str() {
            "audio" => {
                name == "audio/mpeg" && matches!(structure.get::<i32>("mpegversion"), Ok(2) | Ok(4))
            }
            "video" => name == video.caps_name(),
            _ => true,
        };
        if fine {
            return None;
        }
        (kind, caps.to_string())
    };
    let expected = if kind == "audio" {
        "AAC (audio/mpeg, mpegversion=4)".to_owned()
    } else {
        format!(
            "{} (video-codec {})",
            video.caps_name(),
            if video == VideoCodec::H264 {
                "h264; h265 is the other"
            } else {
                "h265; h264 is the other"
            }
        )
    };
    Some(format!(
        "the input's {kind} is {what}; the worker takes {expected}"
    ))
}

/// Where the dubbed stream goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// `sink` is `rtmpsink` or `rtmp2sink`.
    Rtmp { sink: String, url: String },
    /// MPEG-TS to an SRT peer (caller or listener as the URI says).
    Srt { url: String },
    /// MPEG-TS to a UDP host and port.
    Udp { host: String, port: String },
    /// A file, muxed by its extension: .flv, .ts, .mkv, .mp4.
    File { location: String },
}

/// The video parser, as the output needs it: MPEG-TS carries no codec
/// data out of band, so a receiver that joins mid-stream needs the
/// parameter sets before every keyframe (the parser puts them there when
/// the input keeps them apart, as MP4, Matroska and FLV do).
#[derive(Debug, Clone, Copy)]
struct VideoParser {
    codec: VideoCodec,
    in_band_parameter_sets: bool,
}

impl VideoParser {
    fn new(codec: VideoCodec, muxer: Muxer) -> Self {
        Self {
            codec,
            in_band_parameter_sets: muxer == Muxer::MpegTs,
        }
    }

    fn element(self) -> String {
        if self.in_band_parameter_sets {
            format!("{} config-interval=-1", self.codec.parser())
        } else {
            self.codec.parser().to_owned()
        }
    }
}

/// The muxer that writes one output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Muxer {
    Flv,
    MpegTs,
    Matroska,
    Mp4,
}

impl Muxer {
    fn element(self, name: &str) -> String {
        match self {
            Muxer::Flv => format!("flvmux name={name} streamable=true"),
            // Seven packets per buffer: one UDP datagram each, as receivers expect.
            Muxer::MpegTs => format!("mpegtsmux name={name} alignment=7"),
            Muxer::Matroska => format!("matroskamux name={name}"),
            Muxer::Mp4 => format!("mp4mux name={name}"),
        }
    }

    /// FLV holds one audio track; the others any number.
    fn tracks_many(self) -> bool {
        self != Muxer::Flv
    }

    /// A muxer pad for a track (`video` or `audio`).
    fn pad(self, name: &str, kind: &str) -> String {
        match self {
            Muxer::Flv => format!("{name}.{kind}"),
            _ => format!("{name}."),
        }
    }
}

impl Output {
    /// RTMP, SRT or UDP by the URL's scheme, a file otherwise.
    pub fn from_uri(output: &str) -> Self {
        let lower = output.to_ascii_lowercase();
        if lower.starts_with("rtmp://") {
            Output::Rtmp {
                sink: "rtmpsink".into(),
                url: output.into(),
            }
        } else if lower.starts_with("srt://") {
            Output::Srt { url: output.into() }
        } else if let Some(address) = lower.strip_prefix("udp://") {
            let address = address.split(['?', '/']).next().unwrap_or_default();
            let (host, port) = address.rsplit_once(':').unwrap_or((address, "5000"));
            Output::Udp {
                host: host.trim_matches(['[', ']']).into(),
                port: port.into(),
            }
        } else {
            Output::File {
                location: output.into(),
            }
        }
    }

    fn muxer(&self) -> Muxer {
        match self {
            Output::Rtmp { .. } => Muxer::Flv,
            Output::Srt { .. } | Output::Udp { .. } => Muxer::MpegTs,
            Output::File { location } => {
                let lower = location.to_ascii_lowercase();
                if lower.ends_with(".ts") || lower.ends_with(".m2ts") {
                    Muxer::MpegTs
                } else if lower.ends_with(".mkv") {
                    Muxer::Matroska
                } else if lower.ends_with(".mp4") || lower.ends_with(".mov") {
                    Muxer::Mp4
                } else {
                    Muxer::Flv
                }
            }
        }
    }

    /// Whether one output carries every language (else one per language).
    pub fn carries_many_tracks(&self) -> bool {
        self.muxer().tracks_many()
    }

    /// This output with `{lang}` in its URL or path replaced.
    pub fn for_language(&self, language: &str) -> Self {
        let put = |text: &String| text.replace("{lang}", language);
        match self {
            Output::Rtmp { sink, url } => Output::Rtmp {
                sink: sink.clone(),
                url: put(url),
            },
            Output::Srt { url } => Output::Srt { url: put(url) },
            Output::Udp { host, port } => Output::Udp {
                host: put(host),
                port: put(port),
            },
            Output::File { location } => Output::File {
                location: put(location),
            },
        }
    }

    fn back(&self) -> String {
        self.back_named("mux")
    }

    /// The muxer (named `name`) and the sink. Network sinks that block on
    /// connecting (RTMP, SRT) get one queue, so that the muxer never stalls
    /// into interleaving the first frames out of order.
    fn back_named(&self, name: &str) -> String {
        let mux = self.muxer().element(name);
        match self {
            Output::Rtmp { sink, url } => format!("{mux} ! queue ! {sink} location=\"{url}\""),
            Output::Srt { url } => format!("{mux} ! queue ! srtsink uri=\"{url}\""),
            Output::Udp { host, port } => format!("{mux} ! udpsink host=\"{host}\" port={port}"),
            Output::File { location } => format!("{mux} ! filesink location=\"{location}\""),
        }
    }
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
    let muxer = output.muxer();
    format!(
        "{} stsdub name=dub{space}{properties} \
         dub.video_src ! {} dub.audio_src ! {} {}",
        input.front_into(
            VideoParser::new(video, output.muxer()),
            "dub.video_sink",
            "dub.audio_sink"
        ),
        muxer.pad("mux", "video"),
        muxer.pad("mux", "audio"),
        output.back()
    )
}

/// The worker's path without stsdub: the same source, parsers, muxer and
/// sink, a queue where stsdub would be. What the path does by itself, the
/// reference an A/V measurement of the worker is held to.
pub fn passthrough(input: &Input, video: VideoCodec, output: &Output) -> String {
    let muxer = output.muxer();
    format!(
        "{} {}",
        input.front_into(
            VideoParser::new(video, muxer),
            &format!("queue ! {}", muxer.pad("mux", "video")),
            &format!("queue ! {}", muxer.pad("mux", "audio"))
        ),
        output.back()
    )
}

/// Several languages from one input, one stsdub each.
#[derive(Debug, Clone)]
pub struct Languages {
    /// Target languages, in track order (`es`, `fr`, …).
    pub targets: Vec<String>,
    /// The input's language: the original track's tag.
    pub source: String,
    /// Each stsdub's `stream-id` is this, `-`, its language.
    pub stream_id: String,
    /// The original audio goes out too, as its own track.
    pub keep_original: bool,
}

impl Languages {
    /// `es,fr,de` as targets (spaces and empty items ignored); an error
    /// names what is wrong.
    pub fn parse(
        list: &str,
        source: &str,
        stream_id: &str,
        keep_original: bool,
    ) -> Result<Self, String> {
        let targets: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if targets.is_empty() {
            return Err(format!(
                "target languages {list:?}: a comma-separated list such as es,fr"
            ));
        }
        if let Some(bad) = targets.iter().find(|l| {
            !l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) {
            return Err(format!(
                "target language {bad:?}: letters, digits, '-' and '_' only (es, pt-BR)"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = targets
            .iter()
            .find(|l| !seen.insert(l.to_ascii_lowercase()))
        {
            return Err(format!("target language {twice:?} is listed twice"));
        }
        Ok(Self {
            targets,
            source: source.into(),
            stream_id: stream_id.into(),
            keep_original,
        })
    }

    fn element(language: &str) -> String {
        format!("dub_{}", language.replace('-', "_"))
    }
}

/// An original audio track beside dubbed ones waits, unbounded, for them:
/// they are held by the STS, and a demuxer feeds every branch from one
/// thread, so a bounded wait here would close a circle (the muxer waiting
/// for dubbed audio that waits for input the demuxer cannot push). How
/// far it runs ahead is bounded by the dubbed tracks: their latency.
const ORIGINAL_HOLD: &str = "queue max-size-buffers=0 max-size-bytes=0 max-size-time=0";

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
        vec![input.front_into(parser, &format!("{first}.video_sink"), "tee name=audio")];
    let properties = properties.trim();
    for language in &languages.targets {
        let name = Languages::element(language);
        parts.push(format!(
            "audio. ! {name}.audio_sink stsdub name={name} {properties}{}stream-id=\"{}-{language}\" target-language=\"{language}\"",
            if properties.is_empty() { "" } else { " " },
            languages.stream_id
        ));
    }
    let original = |into: &str| {
        format!(
            "audio. ! {ORIGINAL_HOLD} ! taginject tags=\"language-code={}\" ! {into}",
            languages.source
        )
    };
    let muxer = output.muxer();
    if muxer.tracks_many() {
        parts.push(format!("{first}.video_src ! {}", muxer.pad("mux", "video")));
        if languages.keep_original {
            parts.push(original(&muxer.pad("mux", "audio")));
        }
        for language in &languages.targets {
            let name = Languages::element(language);
            parts.push(format!("{name}.audio_src ! {}", muxer.pad("mux", "audio")));
        }
        parts.push(output.back());
    } else {
        // One output per language, each with the video.
        parts.push(format!("{first}.video_src ! tee name=video"));
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
            parts.push(format!("video. ! queue ! {}", muxer.pad(&mux, "video")));
            if audio.is_empty() {
                parts.push(original(&muxer.pad(&mux, "audio")));
            } else {
                parts.push(format!("{audio} ! {}", muxer.pad(&mux, "audio")));
            }
            parts.push(output.for_language(&language).back_named(&mux));
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
    }

    #[test]
    fn mpeg_ts_comes_from_srt_udp_or_a_file_and_goes_to_srt_udp_or_a_file() {
        for (input, source, demuxer) in [
            ("srt://:7001?mode=listener", "srtsrc uri=", LIVE_TS_DEMUXER),
            ("udp://0.0.0.0:5004", "udpsrc uri=", LIVE_TS_DEMUXER),
            ("match.ts", "filesrc location=", "tsdemux"),
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
            srt.ends_with("mpegtsmux name=mux alignment=7 ! queue ! srtsink uri=\"srt://h:7002\""),
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
    fn normalizing_folds_continuations_and_spaces() {
        assert_eq!(normalized("a \\\n   b\n c  d"), "a b c d");
    }
}
