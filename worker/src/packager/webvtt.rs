// SPDX-License-Identifier: MPL-2.0

//! A language's subtitles as an HLS rendition: WebVTT segments cut at the
//! video's segment times, and their media playlist. hlssink3 writes no
//! WebVTT, so this is what is written by hand.
//!
//! Cue times are running time. Each segment's `X-TIMESTAMP-MAP` ties
//! running time 0 to the MPEG-TS PTS it has in the renditions' segments:
//! hlssink3's mpegtsmux starts its clock at one hour ([`MPEGTS_AT_ZERO`]).

use std::collections::VecDeque;
use std::io;
use std::path::Path;

use gststsdub::captions::layout;

use super::playlist::{RenditionPlaylist, WallClock};
use crate::subtitles::{timestamp, vtt_escaped};

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
    cues: Vec<Cue>,
    playlist: RenditionPlaylist,
    /// Video segments (start, duration: running time, ns) not written yet.
    cuts: VecDeque<(u64, u64)>,
    /// Where the last dubbed segment heard starts: every segment before it
    /// has said its words (stsdub posts them in order).
    heard_from: u64,
}

impl SubtitleTrack {
    /// A rendition in `folder` (made if missing); `window`: segments a live
    /// playlist lists, None for VOD.
    pub fn new(
        folder: &Path,
        target_seconds: u32,
        window: Option<usize>,
        clock: WallClock,
    ) -> io::Result<Self> {
        Ok(Self {
            cues: Vec::new(),
            playlist: RenditionPlaylist::new(folder, "vtt", target_seconds, window, clock)?,
            cuts: VecDeque::new(),
            heard_from: 0,
        })
    }

    /// A dubbed segment's words, from `start` (running time, ns) for
    /// `duration`, split and timed as the in-video captions are; the
    /// segments that were waiting for it are written.
    pub fn add_words(&mut self, words: &str, start: u64, duration: u64) -> io::Result<()> {
        self.cues.extend(
            layout::captions(words, start, duration)
                .into_iter()
                .map(|c| Cue {
                    start: c.start,
                    end: c.end,
                    rows: c.rows,
                }),
        );
        self.heard_from = self.heard_from.max(start);
        self.write_what_was_heard()
    }

    /// The video was cut: the segment from `start` for `duration` (running
    /// time, ns) is written once every word that may show in it is heard,
    /// that is once a dubbed segment from its end on is (the dub may come
    /// later than the video).
    pub fn cut(&mut self, start: u64, duration: u64) -> io::Result<()> {
        self.cuts.push_back((start, duration));
        self.write_what_was_heard()
    }

    fn write_what_was_heard(&mut self) -> io::Result<()> {
        while let Some(&(start, duration)) = self.cuts.front() {
            if self.heard_from < start + duration {
                break;
            }
            self.cuts.pop_front();
            self.write(start, duration)?;
        }
        Ok(())
    }

    /// Writes the segment from `start` for `duration` with every cue that
    /// shows in it, then the playlist that lists it.
    fn write(&mut self, start: u64, duration: u64) -> io::Result<()> {
        let end = start + duration;
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
        // Cues wholly before the next segment are done with.
        self.cues.retain(|c| c.end > end);
        self.playlist.add(text.as_bytes(), start, duration)
    }

    /// The end of the stream: every segment written, then EXT-X-ENDLIST.
    pub fn finish(&mut self) -> io::Result<()> {
        while let Some((start, duration)) = self.cuts.pop_front() {
            self.write(start, duration)?;
        }
        self.playlist.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use m3u8_rs::MediaPlaylistType;

    #[test]
    fn each_segment_holds_the_cues_that_show_in_it_and_is_listed_after() {
        let folder = std::env::temp_dir().join(format!("stsdub-webvtt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let mut track = SubtitleTrack::new(&folder, 6, None, WallClock::new()).expect("folder");
        track
            .add_words("Hola a todos", 4_000_000_000, 4_000_000_000)
            .expect("heard");
        track.cut(0, 6_000_000_000).expect("first");
        track.cut(6_000_000_000, 6_000_000_000).expect("second");
        assert!(
            !folder.join("segment00000.vtt").exists(),
            "nothing heard from 6 s on: the words of 4..6 s may be to come"
        );
        track
            .add_words("", 8_000_000_000, 4_000_000_000)
            .expect("heard");
        assert!(folder.join("segment00000.vtt").exists());
        assert!(!folder.join("segment00001.vtt").exists());
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
}
