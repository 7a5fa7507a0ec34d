// SPDX-License-Identifier: MPL-2.0

//! HLS out, each rendition in its own folder beside the multivariant
//! playlist. The video goes to `hlssink3` (gst-plugins-rs, registered by
//! the programs), which cuts it on keyframes into MPEG-TS segments in
//! `video/`. Each language's audio (dubbed and original) goes, as ADTS, to
//! an appsink, from which the worker (`stsdub_worker::packager`) writes
//! packed-audio segments in `audio_<lang>/` cut where the video was cut,
//! with the multivariant playlist and the WebVTT renditions.
//!
//! Why not an hlssink3 per audio rendition: its splitmuxsink cuts audio on
//! its own clock, so the renditions meet the video's cuts only when the
//! GOP divides the target. Measured on the marks sample (5 s GOP, 6 s
//! target): video cut every 5 s, audio every 6 s.

use std::path::{Path, PathBuf};

use super::quoted;

/// An HLS output: where its multivariant playlist goes, and how it is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsOutput {
    /// The multivariant playlist (`…/master.m3u8`).
    pub master: PathBuf,
    /// Target segment duration, in whole seconds (HLS's EXT-X-TARGETDURATION).
    pub segment_seconds: u32,
    /// Segments a live media playlist lists (older ones are deleted).
    pub playlist_length: u32,
}

/// `--hls-segment-duration`'s default: Apple's authoring guidelines' 6 s.
pub const DEFAULT_SEGMENT_SECONDS: u32 = 6;
/// `--hls-playlist-length`'s default: 30 s of a live window at 6 s.
pub const DEFAULT_PLAYLIST_LENGTH: u32 = 5;
/// The ranges the two settings take.
pub const SEGMENT_SECONDS: std::ops::RangeInclusive<u32> = 1..=60;
pub const PLAYLIST_LENGTH: std::ops::RangeInclusive<u32> = 3..=1000;

/// What a rendition carries, which names its sink and its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendition {
    Video,
    /// A language's audio: dubbed, or the programme's original.
    Audio {
        language: String,
        dubbed: bool,
    },
}

/// The prefix of every rendition sink's name (`hls_video`, `hls_dub_es`).
pub const SINK_PREFIX: &str = "hls_";

impl Rendition {
    /// The name of its sink element, which the worker reads back from its
    /// messages (see [`Rendition::from_sink_name`]).
    pub fn sink_name(&self) -> String {
        match self {
            Rendition::Video => format!("{SINK_PREFIX}video"),
            Rendition::Audio { language, dubbed } => format!(
                "{SINK_PREFIX}{}_{language}",
                if *dubbed { "dub" } else { "orig" }
            ),
        }
    }

    pub fn from_sink_name(name: &str) -> Option<Self> {
        let rest = name.strip_prefix(SINK_PREFIX)?;
        if rest == "video" {
            return Some(Rendition::Video);
        }
        let (kind, language) = rest.split_once('_')?;
        let dubbed = match kind {
            "dub" => true,
            "orig" => false,
            _ => return None,
        };
        Some(Rendition::Audio {
            language: language.to_owned(),
            dubbed,
        })
    }

    /// Its folder, relative to the multivariant playlist's.
    pub fn folder(&self) -> String {
        match self {
            Rendition::Video => "video".into(),
            Rendition::Audio { language, .. } => format!("audio_{language}"),
        }
    }
}

/// A media playlist's name inside its rendition's folder.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";

impl HlsOutput {
    pub fn new(master: &str) -> Self {
        Self {
            master: PathBuf::from(master),
            segment_seconds: DEFAULT_SEGMENT_SECONDS,
            playlist_length: DEFAULT_PLAYLIST_LENGTH,
        }
    }

    /// The folder the multivariant playlist and the renditions' folders are in.
    pub fn dir(&self) -> &Path {
        self.master
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    /// The settings checked, with the property and its range named.
    pub fn checked(self) -> Result<Self, String> {
        if !SEGMENT_SECONDS.contains(&self.segment_seconds) {
            return Err(format!(
                "--hls-segment-duration {}: {}..={} seconds",
                self.segment_seconds,
                SEGMENT_SECONDS.start(),
                SEGMENT_SECONDS.end()
            ));
        }
        if !PLAYLIST_LENGTH.contains(&self.playlist_length) {
            return Err(format!(
                "--hls-playlist-length {}: {}..={} segments",
                self.playlist_length,
                PLAYLIST_LENGTH.start(),
                PLAYLIST_LENGTH.end()
            ));
        }
        Ok(self)
    }

    /// `from` into `rendition`'s sink.
    pub fn branch(&self, from: &str, rendition: &Rendition, live: bool) -> String {
        format!("{from} ! {}", self.into(rendition, live))
    }

    /// What `rendition`'s stream is linked into, as a launch line writes
    /// it. The video's hlssink3: a live stream's playlist slides (the
    /// oldest segments deleted, two more kept on disk than listed for
    /// players still fetching them); a file's is VOD, every segment
    /// listed; both end with EXT-X-ENDLIST at EOS. The audio's appsink
    /// takes ADTS, never waits for the clock and keeps every frame until
    /// the worker takes it.
    pub fn into(&self, rendition: &Rendition, live: bool) -> String {
        let name = rendition.sink_name();
        if *rendition != Rendition::Video {
            return format!(
                "aacparse ! audio/mpeg,stream-format=adts ! appsink name={name} sync=false \
                 max-buffers=0 drop=false"
            );
        }
        let folder = self.dir().join(rendition.folder());
        let window = if live {
            format!(
                "playlist-length={} max-files={}",
                self.playlist_length,
                self.playlist_length + 2
            )
        } else {
            "playlist-type=vod".into()
        };
        format!(
            "{name}.video hlssink3 name={name} location={} playlist-location={} \
             target-duration={} {window} enable-program-date-time=true",
            quoted(&folder.join("segment%05d.ts").to_string_lossy()),
            quoted(&folder.join(MEDIA_PLAYLIST).to_string_lossy()),
            self.segment_seconds,
        )
    }

    /// Makes every rendition's folder, and proves each writable: an error
    /// at start, never half a playlist later.
    pub fn prepare(&self, renditions: &[Rendition]) -> Result<(), String> {
        for rendition in renditions {
            let folder = self.dir().join(rendition.folder());
            std::fs::create_dir_all(&folder)
                .map_err(|e| format!("HLS output: cannot make {}: {e}", folder.display()))?;
            let probe = folder.join(".stsdub-write-test");
            std::fs::write(&probe, [0u8; 4096])
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|e| format!("HLS output: cannot write in {}: {e}", folder.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendition_is_found_again_from_its_sink_name() {
        for rendition in [
            Rendition::Video,
            Rendition::Audio {
                language: "pt-BR".into(),
                dubbed: true,
            },
            Rendition::Audio {
                language: "en".into(),
                dubbed: false,
            },
        ] {
            assert_eq!(
                Rendition::from_sink_name(&rendition.sink_name()),
                Some(rendition)
            );
        }
        assert_eq!(Rendition::from_sink_name("mux"), None);
        assert_eq!(Rendition::from_sink_name("hls_x_es"), None);
    }

    #[test]
    fn live_playlists_slide_and_files_are_vod() {
        let hls = HlsOutput::new("/srv/live/master.m3u8");
        let live = hls.branch("dub.video_src", &Rendition::Video, true);
        assert!(
            live.starts_with("dub.video_src ! hls_video.video hlssink3 name=hls_video"),
            "{live}"
        );
        assert!(live.contains("location=\"/srv/live/video/segment%05d.ts\""));
        assert!(live.contains("playlist-location=\"/srv/live/video/index.m3u8\""));
        assert!(live.contains("target-duration=6 playlist-length=5 max-files=7"));
        let audio = hls.branch(
            "dub.audio_src",
            &Rendition::Audio {
                language: "es".into(),
                dubbed: true,
            },
            false,
        );
        assert_eq!(
            audio,
            "dub.audio_src ! aacparse ! audio/mpeg,stream-format=adts ! appsink \
             name=hls_dub_es sync=false max-buffers=0 drop=false"
        );
        let vod = hls.branch("dub.video_src", &Rendition::Video, false);
        assert!(vod.contains("playlist-type=vod"), "{vod}");
        assert!(!vod.contains("max-files"), "{vod}");
    }

    #[test]
    fn settings_out_of_range_are_named_with_their_range() {
        let mut hls = HlsOutput::new("master.m3u8");
        assert_eq!(hls.dir(), Path::new("."));
        hls.segment_seconds = 0;
        assert_eq!(
            hls.clone().checked().err().as_deref(),
            Some("--hls-segment-duration 0: 1..=60 seconds")
        );
        hls.segment_seconds = 6;
        hls.playlist_length = 2;
        assert_eq!(
            hls.checked().err().as_deref(),
            Some("--hls-playlist-length 2: 3..=1000 segments")
        );
    }
}
