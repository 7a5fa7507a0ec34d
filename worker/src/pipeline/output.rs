// SPDX-License-Identifier: MPL-2.0

//! Where the dubbed stream goes: the muxer and sink of each kind of output,
//! and the video parser the muxer needs.

use super::VideoCodec;
use super::audio_out::AudioOut;
use super::hls::HlsOutput;
use super::quoted;

/// Where the dubbed stream goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// `sink` is `rtmpsink` or `rtmp2sink`.
    Rtmp { sink: String, url: String },
    /// MPEG-TS to an SRT peer (caller or listener as the URI says).
    Srt { url: String, audio: AudioOut },
    /// MPEG-TS to a UDP host and port.
    Udp {
        host: String,
        port: String,
        audio: AudioOut,
    },
    /// A file, muxed by its extension: .flv, .ts, .mkv, .mp4.
    File { location: String, audio: AudioOut },
    /// HLS: a multivariant playlist (`….m3u8`) and a folder per rendition.
    Hls(HlsOutput),
}

/// The video parser, as the output needs it: MPEG-TS carries no codec
/// data out of band, so a receiver that joins mid-stream needs the
/// parameter sets before every keyframe (the parser puts them there when
/// the input keeps them apart, as MP4, Matroska and FLV do).
#[derive(Debug, Clone, Copy)]
pub(super) struct VideoParser {
    pub(super) codec: VideoCodec,
    in_band_parameter_sets: bool,
}

impl VideoParser {
    pub(super) fn new(codec: VideoCodec, muxer: Muxer) -> Self {
        Self {
            codec,
            in_band_parameter_sets: muxer == Muxer::MpegTs,
        }
    }

    pub(super) fn element(self) -> String {
        if self.in_band_parameter_sets {
            format!("{} config-interval=-1", self.codec.parser())
        } else {
            self.codec.parser().to_owned()
        }
    }
}

/// The PID an MPEG-TS output carries SCTE-35 cues on (0x1F4).
pub const SCTE35_PID: u16 = 500;

/// The muxer that writes one output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Muxer {
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
            // SCTE-35 cues from an MPEG-TS input on PID 500 (0x1F4).
            Muxer::MpegTs => {
                format!("mpegtsmux name={name} alignment=7 scte-35-pid={SCTE35_PID}")
            }
            Muxer::Matroska => format!("matroskamux name={name}"),
            Muxer::Mp4 => format!("mp4mux name={name}"),
        }
    }

    /// Whether the muxer takes AC-3 and MPEG-1 Layer II audio (FLV takes
    /// neither).
    fn takes_broadcast_audio(self) -> bool {
        self != Muxer::Flv
    }

    /// Matroska and MP4 hold subtitle tracks (text/x-raw: S_TEXT/UTF8, tx3g).
    pub(super) fn carries_text(self) -> bool {
        matches!(self, Muxer::Matroska | Muxer::Mp4)
    }

    /// FLV holds one audio track; the others any number.
    pub(super) fn tracks_many(self) -> bool {
        self != Muxer::Flv
    }

    /// A muxer pad for a track (`video` or `audio`).
    pub(super) fn pad(self, name: &str, kind: &str) -> String {
        match self {
            Muxer::Flv => format!("{name}.{kind}"),
            _ => format!("{name}."),
        }
    }
}

/// The file names an output may end in, and what writes them.
const FILE_KINDS: [(&str, Muxer); 6] = [
    (".flv", Muxer::Flv),
    (".ts", Muxer::MpegTs),
    (".m2ts", Muxer::MpegTs),
    (".mkv", Muxer::Matroska),
    (".mp4", Muxer::Mp4),
    (".mov", Muxer::Mp4),
];

/// The muxer for a file named `location`, if it has a known ending.
fn file_muxer(location: &str) -> Option<Muxer> {
    let lower = location.to_ascii_lowercase();
    FILE_KINDS
        .iter()
        .find(|(ending, _)| lower.ends_with(ending))
        .map(|(_, muxer)| *muxer)
}

impl Output {
    /// As [`Output::from_uri`], but a file whose name the worker cannot
    /// write is refused, with what it takes: never written as FLV under
    /// another name.
    pub fn checked(output: &str) -> Result<Self, String> {
        let parsed = Self::from_uri(output);
        if let Output::File { location, .. } = &parsed
            && file_muxer(location).is_none()
        {
            let kinds: Vec<&str> = FILE_KINDS.iter().map(|(ending, _)| *ending).collect();
            return Err(format!(
                "cannot tell how to write {location}: use {}, master.m3u8 (HLS), rtmp://, \
                 srt:// or udp://",
                kinds.join(", ")
            ));
        }
        Ok(parsed)
    }

    /// RTMP, SRT or UDP by the URL's scheme, a file otherwise.
    pub fn from_uri(output: &str) -> Self {
        let lower = output.to_ascii_lowercase();
        if lower.starts_with("rtmp://") {
            Output::Rtmp {
                sink: "rtmpsink".into(),
                url: output.into(),
            }
        } else if lower.starts_with("srt://") {
            Output::Srt {
                url: output.into(),
                audio: AudioOut::Aac,
            }
        } else if let Some(address) = lower.strip_prefix("udp://") {
            let address = address.split(['?', '/']).next().unwrap_or_default();
            let (host, port) = address.rsplit_once(':').unwrap_or((address, "5000"));
            Output::Udp {
                host: host.trim_matches(['[', ']']).into(),
                port: port.into(),
                audio: AudioOut::Aac,
            }
        } else if lower.ends_with(".m3u8") {
            Output::Hls(HlsOutput::new(output))
        } else {
            Output::file(output)
        }
    }

    /// A file output with AAC audio.
    pub fn file(location: &str) -> Self {
        Output::File {
            location: location.into(),
            audio: AudioOut::Aac,
        }
    }

    /// This output with its audio tracks written as `codec`; refused,
    /// naming where it applies, for an output whose container cannot take
    /// it (FLV and RTMP; HLS, whose audio renditions are ADTS).
    pub fn with_audio_codec(self, codec: AudioOut) -> Result<Self, String> {
        if codec == AudioOut::Aac {
            return Ok(self);
        }
        let takes_it = self.muxer().takes_broadcast_audio();
        match self {
            Output::Srt { url, .. } => Ok(Output::Srt { url, audio: codec }),
            Output::Udp { host, port, .. } => Ok(Output::Udp {
                host,
                port,
                audio: codec,
            }),
            Output::File { location, .. } if takes_it => Ok(Output::File {
                location,
                audio: codec,
            }),
            _ => Err(format!(
                "--output-audio-codec {}: only MPEG-TS (.ts, .m2ts, srt://, udp://), \
                 Matroska and MP4 outputs take it; FLV, RTMP and HLS carry AAC",
                codec.name()
            )),
        }
    }

    /// The codec the output's audio tracks are written as.
    pub fn audio_codec(&self) -> AudioOut {
        match self {
            Output::Srt { audio, .. } | Output::Udp { audio, .. } | Output::File { audio, .. } => {
                *audio
            }
            Output::Rtmp { .. } | Output::Hls(_) => AudioOut::Aac,
        }
    }

    /// What leads an audio track into the muxer pad `pad`: the output
    /// codec's encoding chain, then the pad.
    pub(super) fn audio_into(&self, pad: &str) -> String {
        format!("{}{pad}", self.audio_codec().chain())
    }

    pub(super) fn muxer(&self) -> Muxer {
        match self {
            Output::Rtmp { .. } => Muxer::Flv,
            // HLS: MPEG-TS segments (hlssink3's own mpegtsmux).
            Output::Srt { .. } | Output::Udp { .. } | Output::Hls(_) => Muxer::MpegTs,
            // A name `checked` refuses is written as FLV (the tests' own).
            Output::File { location, .. } => file_muxer(location).unwrap_or(Muxer::Flv),
        }
    }

    /// Whether the input's other elementary streams (other audio tracks,
    /// subtitles, teletext) go into this output: an MPEG-TS one; an HLS
    /// package holds only the renditions it writes.
    pub fn carries_other_streams(&self) -> bool {
        self.muxer() == Muxer::MpegTs && !matches!(self, Output::Hls(_))
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
            Output::Srt { url, audio } => Output::Srt {
                url: put(url),
                audio: *audio,
            },
            Output::Udp { host, port, audio } => Output::Udp {
                host: put(host),
                port: put(port),
                audio: *audio,
            },
            Output::File { location, audio } => Output::File {
                location: put(location),
                audio: *audio,
            },
            // One package holds every language.
            Output::Hls(hls) => Output::Hls(hls.clone()),
        }
    }

    pub(super) fn muxer_and_sink(&self) -> String {
        self.muxer_and_sink_named("mux")
    }

    /// The muxer (named `name`) and the sink. Network sinks that block on
    /// connecting (RTMP, SRT) get one queue, so that the muxer never stalls
    /// into interleaving the first frames out of order.
    pub(super) fn muxer_and_sink_named(&self, name: &str) -> String {
        let mux = self.muxer().element(name);
        match self {
            Output::Rtmp { sink, url } => {
                format!("{mux} ! queue ! {sink} location={}", quoted(url))
            }
            Output::Srt { url, .. } => format!("{mux} ! queue ! srtsink uri={}", quoted(url)),
            Output::Udp { host, port, .. } => {
                format!("{mux} ! udpsink host={} port={port}", quoted(host))
            }
            Output::File { location, .. } => {
                format!("{mux} ! filesink location={}", quoted(location))
            }
            // Never asked for: an HLS output is written by rendition (hls.rs).
            Output::Hls(_) => String::new(),
        }
    }
}
