// SPDX-License-Identifier: MPL-2.0

//! A language's subtitles as an HLS rendition: WebVTT segments cut at the
//! video's segment times, and their media playlist. hlssink3 writes no
//! WebVTT, so this is what is written by hand.
//!
//! Cue times are running time. Each segment's `X-TIMESTAMP-MAP` ties
//! running time 0 to the MPEG-TS PTS it has in the renditions' segments:
//! hlssink3's mpegtsmux starts its clock at one hour ([`MPEGTS_AT_ZERO`]).

use std::io;
use std::path::{Path, PathBuf};

use gststsdub::captions::layout;
use m3u8_rs::{MediaPlaylist, MediaPlaylistType, MediaSegment};

use crate::subtitles::{timestamp, vtt_escaped};

use super::write_atomically;

/// The MPEG-TS PTS (90 kHz) of running time 0: GStreamer's mpegtsmux adds
/// one hour to every timestamp (TSMUX_CLOCK_BASE).
pub const MPEGTS_AT_ZERO: u64 = 3600 * 90_000;

/// One cue: running time from and to (ns), and its rows.
#[derive(Debug, Clone)]
struct Cue {
    start: u64,
    end: u64,
    rows: Vec<String>,
}

/// One language's WebVTT rendition.
pub struct SubtitleTrack {
    folder: PathBuf,
    cues: Vec<Cue>,
    playlist: MediaPlaylist,
    next_index: u64,
    /// Segments a live playlist lists (None: VOD, every one).
    window: Option<usize>,
    written: Vec<PathBuf>,
}

impl SubtitleTrack {
    /// A rendition in `folder` (made if missing); `window` as
    /// [`SubtitleTrack::window`].
    pub fn new(folder: &Path, target_seconds: u32, window: Option<usize>) -> io::Result<Self> {
        std::fs::create_dir_all(folder)?;
        Ok(Self {
            folder: folder.to_path_buf(),
            cues: Vec::new(),
            playlist: MediaPlaylist {
                version: Some(3),
                target_duration: u64::from(target_seconds),
                playlist_type: window.is_none().then_some(MediaPlaylistType::Event),
                ..Default::default()
            },
            next_index: 0,
            window,
            written: Vec::new(),
        })
    }

    /// A dubbed segment's words, from `start` (running time, ns) for
    /// `duration`, split and timed as the in-video captions are.
    pub fn add_words(&mut self, words: &str, start: u64, duration: u64) {
        self.cues.extend(
            layout::captions(words, start, duration)
                .into_iter()
                .map(|c| Cue {
                    start: c.start,
                    end: c.end,
                    rows: c.rows,
                }),
        );
    }

    /// Writes the segment from `start` for `duration` (running time, ns)
    /// with every cue that shows in it, then the playlist that lists it.
    pub fn cut(&mut self, start: u64, duration: u64) -> io::Result<()> {
        let end = start + duration;
        let name = format!("segment{:05}.vtt", self.next_index);
        self.next_index += 1;
        let mut text =
            format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{MPEGTS_AT_ZERO},LOCAL:00:00:00.000\n\n");
        for cue in self.cues.iter().filter(|c| c.end > start && c.start < end) {
            let rows: Vec<String> = cue.rows.iter().map(|r| vtt_escaped(r)).collect();
            text.push_str(&format!(
                "{} --> {}\n{}\n\n",
                timestamp(cue.start, '.'),
                timestamp(cue.end, '.'),
                rows.join("\n")
            ));
        }
        // Cues wholly before this segment are done with.
        self.cues.retain(|c| c.end > end);
        let path = self.folder.join(&name);
        write_atomically(&path, text.as_bytes())?;
        self.written.push(path);
        self.playlist.segments.push(MediaSegment {
            uri: name,
            duration: duration as f32 / 1e9,
            ..Default::default()
        });
        self.slide();
        self.write_playlist()
    }

    /// A live window: the oldest segments leave the playlist, and their
    /// files go two segments later (players may still be fetching them).
    fn slide(&mut self) {
        let Some(window) = self.window else { return };
        while self.playlist.segments.len() > window {
            self.playlist.segments.remove(0);
            self.playlist.media_sequence += 1;
        }
        while self.written.len() > window + 2 {
            let old = self.written.remove(0);
            let _ = std::fs::remove_file(old);
        }
    }

    /// The end of the stream: EXT-X-ENDLIST (and VOD, for a file).
    pub fn finish(&mut self) -> io::Result<()> {
        self.playlist.end_list = true;
        if self.window.is_none() {
            self.playlist.playlist_type = Some(MediaPlaylistType::Vod);
        }
        self.write_playlist()
    }

    fn write_playlist(&self) -> io::Result<()> {
        let mut bytes = Vec::new();
        self.playlist.write_to(&mut bytes)?;
        write_atomically(&self.folder.join(crate::pipeline::MEDIA_PLAYLIST), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_segment_holds_the_cues_that_show_in_it_and_is_listed_after() {
        let folder = std::env::temp_dir().join(format!("stsdub-webvtt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let mut track = SubtitleTrack::new(&folder, 6, None).expect("folder");
        track.add_words("Hola a todos", 4_000_000_000, 4_000_000_000);
        track.cut(0, 6_000_000_000).expect("first");
        track.cut(6_000_000_000, 6_000_000_000).expect("second");
        track.cut(12_000_000_000, 3_000_000_000).expect("third");
        track.finish().expect("end");
        let first = std::fs::read_to_string(folder.join("segment00000.vtt")).expect("vtt");
        assert!(first.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:324000000,LOCAL:00:00:00.000\n"));
        assert!(
            first.contains("00:00:04.000 --> 00:00:08.000\nHola a todos"),
            "{first}"
        );
        let second = std::fs::read_to_string(folder.join("segment00001.vtt")).expect("vtt");
        assert!(
            second.contains("Hola a todos"),
            "a cue across the cut is in both"
        );
        let third = std::fs::read_to_string(folder.join("segment00002.vtt")).expect("vtt");
        assert!(!third.contains("Hola"), "{third}");
        let playlist = std::fs::read(folder.join("index.m3u8")).expect("playlist");
        let parsed = m3u8_rs::parse_media_playlist_res(&playlist).expect("parses");
        assert_eq!(parsed.segments.len(), 3);
        assert!(parsed.end_list);
        assert_eq!(parsed.playlist_type, Some(MediaPlaylistType::Vod));
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn a_live_window_slides_and_deletes_what_no_player_needs() {
        let folder =
            std::env::temp_dir().join(format!("stsdub-webvtt-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let mut track = SubtitleTrack::new(&folder, 2, Some(3)).expect("folder");
        for index in 0..8 {
            track
                .cut(index * 2_000_000_000, 2_000_000_000)
                .expect("cut");
        }
        let playlist = std::fs::read(folder.join("index.m3u8")).expect("playlist");
        let parsed = m3u8_rs::parse_media_playlist_res(&playlist).expect("parses");
        assert_eq!(parsed.media_sequence, 5);
        assert_eq!(parsed.segments[0].uri, "segment00005.vtt");
        assert!(!folder.join("segment00002.vtt").exists());
        assert!(folder.join("segment00003.vtt").exists());
        let _ = std::fs::remove_dir_all(&folder);
    }
}
