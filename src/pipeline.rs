//! The worker's pipeline, written once. `examples/worker` builds its launch
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
                "cannot tell how to read {input}: use .mp4, .mov, .flv, .mkv, rtsp:// or rtmp://"
            ))
        }
    }

    /// Source, depayloaders or demuxer, and parsers up to stsdub's sink pads.
    fn front(&self) -> String {
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
                     src. ! rtph264depay ! h264parse ! dub.video_sink \
                     src. ! rtpmp4gdepay ! aacparse ! dub.audio_sink"
                )
            }
            Input::Rtmp { url } => format!(
                "rtmpsrc location=\"{url}\" ! flvdemux name=d \
                 d.video ! h264parse ! dub.video_sink d.audio ! aacparse ! dub.audio_sink"
            ),
            Input::File {
                location,
                demuxer,
                audio_pad,
                video_pad,
            } => format!(
                "filesrc location=\"{location}\" ! {demuxer} name=d \
                 d.{video_pad} ! h264parse ! dub.video_sink d.{audio_pad} ! aacparse ! dub.audio_sink"
            ),
        }
    }
}

/// Where the dubbed stream goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// `sink` is `rtmpsink` or `rtmp2sink`.
    Rtmp {
        sink: String,
        url: String,
    },
    File {
        location: String,
    },
}

impl Output {
    /// RTMP for an `rtmp://` URL, a file otherwise.
    pub fn from_uri(output: &str) -> Self {
        if output.to_ascii_lowercase().starts_with("rtmp://") {
            Output::Rtmp {
                sink: "rtmpsink".into(),
                url: output.into(),
            }
        } else {
            Output::File {
                location: output.into(),
            }
        }
    }

    fn back(&self) -> String {
        match self {
            Output::Rtmp { sink, url } => {
                format!("flvmux name=mux streamable=true ! queue ! {sink} location=\"{url}\"")
            }
            Output::File { location } => {
                format!("flvmux name=mux streamable=true ! filesink location=\"{location}\"")
            }
        }
    }
}

/// The whole worker: input → stsdub (with `properties`, e.g.
/// `sts-url="http://sts:8000" stream-id="match-1"`) → FLV out.
pub fn worker(input: &Input, properties: &str, output: &Output) -> String {
    let properties = properties.trim();
    let space = if properties.is_empty() { "" } else { " " };
    format!(
        "{} stsdub name=dub{space}{properties} \
         dub.video_src ! mux.video dub.audio_src ! mux.audio {}",
        input.front(),
        output.back()
    )
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
        assert!(Input::from_uri("a.ts").is_err());
    }

    #[test]
    fn normalizing_folds_continuations_and_spaces() {
        assert_eq!(normalized("a \\\n   b\n c  d"), "a b c d");
    }
}
