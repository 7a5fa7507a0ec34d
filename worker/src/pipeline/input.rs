// SPDX-License-Identifier: MPL-2.0

//! Where the stream comes from: the source and demuxer (or RTSP source) of
//! each kind of input, and the video codec it carries.

use super::output::VideoParser;
use super::quoted;
use super::retime;

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
    /// reads it; tsdemux's pads are named by PID, so they are linked by
    /// caps, the dubbed audio by its pad's name when it was chosen.
    Ts {
        source: String,
        /// From the network: timestamps from the PTS, not the PCR (see
        /// [`LIVE_TS_DEMUXER`]).
        live: bool,
        audio: AudioIn,
        /// The demuxer's pad of the audio to dub (e.g. `audio_0_0102`);
        /// None: the first that links.
        audio_pad: Option<String>,
        /// False when a probe found no video (a radio programme).
        video: bool,
    },
    /// A file, read by `demuxer` (whose pads are `audio_pad`, `video_pad`).
    File {
        location: String,
        demuxer: &'static str,
        audio_pad: &'static str,
        video_pad: &'static str,
        audio: AudioIn,
        /// False when a probe found no video (a radio programme).
        video: bool,
    },
}

/// How the input's audio reaches stsdub, which takes AAC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AudioIn {
    /// AAC (ADTS or raw), codec copy.
    #[default]
    Aac,
    /// Another codec (MP2, MP3, AC-3, E-AC-3, AAC in LATM/LOAS, Opus,
    /// PCM), the demuxer's caps for it given: decoded by GStreamer's
    /// decoders and encoded to AAC-LC at its rate and channels.
    Transcoded { caps: String },
}

impl AudioIn {
    /// The elements between the demuxer's audio pad and stsdub.
    fn chain(&self) -> String {
        match self {
            AudioIn::Aac => "aacparse".into(),
            AudioIn::Transcoded { caps } => {
                // LOAS gets its own parser, so its timestamps can be set
                // right (retime.rs); decodebin then finds it parsed.
                let parse = if caps.contains("stream-format=loas") {
                    format!("aacparse name={} ! ", retime::LOAS_PARSER_NAME)
                } else {
                    String::new()
                };
                format!(
                    "{caps} ! {parse}decodebin ! audioconvert ! audioresample \
                     ! avenc_aac name={} ! aacparse",
                    retime::ENCODER_NAME
                )
            }
        }
    }

    /// How to bring audio of `caps` (a demuxer's pad) to stsdub: None when
    /// it is not audio.
    pub fn for_caps(caps: &gst::CapsRef) -> Option<AudioIn> {
        let structure = caps.structure(0)?;
        let name = structure.name().as_str();
        if !name.starts_with("audio/") {
            return None;
        }
        let version = structure.get::<i32>("mpegversion").ok();
        let format = structure.get::<&str>("stream-format").ok();
        if name == "audio/mpeg"
            && matches!(version, Some(2 | 4))
            && !matches!(format, Some("loas" | "latm"))
        {
            return Some(AudioIn::Aac);
        }
        // The demuxer's caps, narrowed to what tells this codec apart, so
        // that the link takes this pad and no other.
        let mut filter = name.to_owned();
        if let Some(version) = version {
            filter.push_str(&format!(",mpegversion={version}"));
        }
        if let Some(format) = format {
            filter.push_str(&format!(",stream-format={format}"));
        }
        // No spaces, quotes or parentheses: the same in a shell.
        Some(AudioIn::Transcoded { caps: filter })
    }
}

impl Input {
    /// A source from the network (RTSP, RTMP, SRT, UDP), not a file.
    pub fn is_live(&self) -> bool {
        match self {
            Input::Rtsp { .. } | Input::Rtmp { .. } => true,
            Input::Ts { live, .. } => *live,
            Input::File { .. } => false,
        }
    }

    /// The input with its audio brought to stsdub as `audio` says (files
    /// and MPEG-TS; RTSP and RTMP carry AAC).
    pub fn with_audio(mut self, audio: AudioIn) -> Self {
        if let Input::Ts { audio: current, .. } | Input::File { audio: current, .. } = &mut self {
            *current = audio;
        }
        self
    }

    /// The input with `pad` of its demuxer as the audio to dub (MPEG-TS,
    /// whose pads are named by PID; other inputs carry one audio track).
    pub fn with_audio_pad(mut self, pad: &str) -> Self {
        if let Input::Ts { audio_pad, .. } = &mut self {
            *audio_pad = Some(pad.to_owned());
        }
        self
    }

    /// The input without a video track (a probe found none): nothing of
    /// the launch line waits for one.
    pub fn without_video(mut self) -> Self {
        if let Input::Ts { video, .. } | Input::File { video, .. } = &mut self {
            *video = false;
        }
        self
    }

    /// Whether the input has video (as far as is known before it runs).
    pub fn has_video(&self) -> bool {
        match self {
            Input::Ts { video, .. } | Input::File { video, .. } => *video,
            Input::Rtsp { .. } | Input::Rtmp { .. } => true,
        }
    }

    /// A file's location, for probing it before it runs.
    pub fn file_location(&self) -> Option<&str> {
        match self {
            Input::File { location, .. } => Some(location),
            Input::Ts {
                source,
                live: false,
                ..
            } => source
                .strip_prefix("filesrc location=")
                .map(|l| l.trim_matches('"')),
            _ => None,
        }
    }

    /// The demuxer a file input is read with.
    pub fn demuxer(&self) -> Option<&str> {
        match self {
            Input::File { demuxer, .. } => Some(demuxer),
            Input::Ts { .. } => Some("tsdemux"),
            _ => None,
        }
    }

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
        let input_quoted = quoted(input);
        let file = |demuxer, audio_pad, video_pad| {
            Ok(Input::File {
                location: input.into(),
                demuxer,
                audio_pad,
                video_pad,
                audio: AudioIn::Aac,
                video: true,
            })
        };
        if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") {
            Ok(Input::rtsp(input))
        } else if lower.starts_with("rtmp://") {
            Ok(Input::Rtmp { url: input.into() })
        } else if lower.starts_with("srt://") {
            // Caller or listener as the URI says (`?mode=listener`).
            Ok(Input::Ts {
                source: format!("srtsrc uri={input_quoted}"),
                live: true,
                audio: AudioIn::Aac,
                audio_pad: None,
                video: true,
            })
        } else if lower.starts_with("udp://") {
            Ok(Input::Ts {
                source: format!(
                    "udpsrc uri={input_quoted} caps=\"video/mpegts, systemstream=(boolean)true, packetsize=(int)188\""
                ),
                live: true,
                audio: AudioIn::Aac,
                audio_pad: None,
                video: true,
            })
        } else if [".ts", ".m2ts", ".mts"].iter().any(|e| lower.ends_with(e)) {
            Ok(Input::Ts {
                source: format!("filesrc location={input_quoted}"),
                live: false,
                audio: AudioIn::Aac,
                audio_pad: None,
                video: true,
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
    pub(super) fn source_into(&self, video: VideoParser, video_to: &str, audio_to: &str) -> String {
        let parse = video.element();
        let video = video.codec;
        match self {
            Input::Rtsp {
                url,
                latency,
                buffer_mode,
            } => {
                let url_quoted = quoted(url);
                let mode = buffer_mode
                    .as_ref()
                    .map(|mode| format!(" buffer-mode={mode}"))
                    .unwrap_or_default();
                format!(
                    "rtspsrc location={url_quoted} protocols=tcp latency={latency}{mode} name=src \
                     src. ! {} ! {parse} ! {video_to} \
                     src. ! rtpmp4gdepay ! aacparse ! {audio_to}",
                    video.depayloader()
                )
            }
            // rtmp2src, not librtmp's rtmpsrc: rtmpsrc's unlock (which the
            // EOS of a Ctrl-C sends) closes the connection under a read in
            // progress, and the process then aborts on a corrupted heap.
            Input::Rtmp { url } => format!(
                "rtmp2src location={} ! flvdemux name=d \
                 d.video ! {parse} ! {video_to} d.audio ! aacparse ! {audio_to}",
                quoted(url)
            ),
            Input::Ts {
                source,
                live,
                audio,
                audio_pad,
                video,
            } => format!(
                "{source} ! {} name=d \
                 {}d.{} ! {} ! {audio_to}",
                if *live { LIVE_TS_DEMUXER } else { TS_DEMUXER },
                video_chain(*video, "", &parse, video_to),
                audio_pad.as_deref().unwrap_or_default(),
                audio.chain()
            ),
            Input::File {
                location,
                demuxer,
                audio_pad,
                video_pad,
                audio,
                video,
            } => format!(
                "filesrc location={} ! {demuxer} name=d \
                 {}d.{audio_pad} ! {} ! {audio_to}",
                quoted(location),
                video_chain(*video, video_pad, &parse, video_to),
                audio.chain()
            ),
        }
    }
}

/// The demuxer's video pad `pad` through `parse` into `to`, and a space;
/// nothing when there is no video.
fn video_chain(video: bool, pad: &str, parse: &str, to: &str) -> String {
    if video {
        format!("d.{pad} ! {parse} ! {to} ")
    } else {
        String::new()
    }
}

/// tsdemux for MPEG-TS from the network. Timed by the PCR (its default),
/// the audio of an ffmpeg sender over UDP came out 230 ms after its video
/// at every sync mark, with or without stsdub; timed by the PTS, 3 ms.
/// SRT delivers packets at the sender's pace, so nothing is lost by it.
/// Both forward SCTE-35 cues as events (see [`TS_DEMUXER`]).
pub const LIVE_TS_DEMUXER: &str = "tsdemux ignore-pcr=true send-scte35-events=true";

/// tsdemux for an MPEG-TS file. SCTE-35 cues (ad breaks) go downstream as
/// events, in order with the video that stsdub holds, and an MPEG-TS
/// output's muxer writes them again (its `scte-35-pid`) with their splice
/// times on the output's timeline: each break lands on its frame.
pub const TS_DEMUXER: &str = "tsdemux send-scte35-events=true";

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

    pub(super) fn parser(self) -> &'static str {
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
