// SPDX-License-Identifier: MPL-2.0

//! A media playlist the worker writes itself (packed audio, WebVTT): each
//! segment written whole before it is listed, a live window that slides,
//! EXT-X-ENDLIST at the end.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use m3u8_rs::{MediaPlaylist, MediaPlaylistType, MediaSegment};

use super::write_atomically;
use crate::pipeline::MEDIA_PLAYLIST;

/// The wall clock (UTC, ms) at running time 0, once known: what every
/// rendition's EXT-X-PROGRAM-DATE-TIME counts from, as the video's does
/// (hlssink3 maps running time to UTC through the pipeline's clock).
#[derive(Clone, Default)]
pub struct WallClock(Arc<AtomicI64>);

impl WallClock {
    const UNKNOWN: i64 = i64::MIN;

    pub fn new() -> Self {
        Self(Arc::new(AtomicI64::new(Self::UNKNOWN)))
    }

    /// Sets it from `pipeline`'s clock, the first time only.
    pub fn set_from(&self, pipeline: &gst::Element) {
        use gst::prelude::*;
        if self.0.load(Ordering::SeqCst) != Self::UNKNOWN {
            return;
        }
        let (Some(clock), Some(base)) = (pipeline.clock(), pipeline.base_time()) else {
            return;
        };
        let running_ms = clock.time().saturating_sub(base).mseconds() as i64;
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.0.store(now_ms - running_ms, Ordering::SeqCst);
    }

    /// The date and time of `running_time` (ns), if known.
    fn at(&self, running_time: u64) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        let zero = self.0.load(Ordering::SeqCst);
        if zero == Self::UNKNOWN {
            return None;
        }
        let ms = zero.checked_add(i64::try_from(running_time / 1_000_000).ok()?)?;
        chrono::DateTime::from_timestamp_millis(ms).map(|t| t.fixed_offset())
    }
}

pub struct RenditionPlaylist {
    folder: PathBuf,
    playlist: MediaPlaylist,
    /// Segments a live playlist lists (None: VOD, every one).
    window: Option<usize>,
    written: Vec<PathBuf>,
    next_index: u64,
    extension: &'static str,
    clock: WallClock,
}

impl RenditionPlaylist {
    /// A playlist in `folder` (made if missing) of `segment%05d.<extension>`.
    pub fn new(
        folder: &Path,
        extension: &'static str,
        target_seconds: u32,
        window: Option<usize>,
        clock: WallClock,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(folder)?;
        Ok(Self {
            folder: folder.to_path_buf(),
            playlist: MediaPlaylist {
                version: Some(3),
                target_duration: u64::from(target_seconds),
                playlist_type: window.is_none().then_some(MediaPlaylistType::Event),
                ..Default::default()
            },
            window,
            written: Vec::new(),
            next_index: 0,
            extension,
            clock,
        })
    }

    /// Writes the next segment, `bytes` from `start` (running time, ns)
    /// lasting `duration` ns, then the playlist that lists it.
    pub fn add(&mut self, bytes: &[u8], start: u64, duration: u64) -> io::Result<()> {
        let name = format!("segment{:05}.{}", self.next_index, self.extension);
        self.next_index += 1;
        let path = self.folder.join(&name);
        write_atomically(&path, bytes)?;
        self.written.push(path);
        self.playlist.segments.push(MediaSegment {
            uri: name,
            duration: duration as f32 / 1e9,
            program_date_time: self.clock.at(start),
            ..Default::default()
        });
        self.slide();
        self.write()
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
        self.write()
    }

    fn write(&self) -> io::Result<()> {
        let mut bytes = Vec::new();
        self.playlist.write_to(&mut bytes)?;
        write_atomically(&self.folder.join(MEDIA_PLAYLIST), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_window_slides_and_deletes_what_no_player_needs() {
        let folder = std::env::temp_dir().join(format!("stsdub-playlist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let clock = WallClock::new();
        clock.0.store(1_800_000_000_000, Ordering::SeqCst);
        let mut playlist =
            RenditionPlaylist::new(&folder, "vtt", 2, Some(3), clock).expect("folder");
        for index in 0..8 {
            playlist
                .add(b"WEBVTT\n", index * 2_000_000_000, 2_000_000_000)
                .expect("added");
        }
        let text = std::fs::read(folder.join(MEDIA_PLAYLIST)).expect("playlist");
        let parsed = m3u8_rs::parse_media_playlist_res(&text).expect("parses");
        assert_eq!(parsed.media_sequence, 5);
        assert_eq!(parsed.segments[0].uri, "segment00005.vtt");
        assert_eq!(
            parsed.segments[0]
                .program_date_time
                .map(|t| t.timestamp_millis()),
            Some(1_800_000_010_000),
            "running time 10 s"
        );
        assert!(!parsed.end_list);
        assert!(!folder.join("segment00002.vtt").exists());
        assert!(folder.join("segment00003.vtt").exists());
        playlist.finish().expect("finished");
        let text = std::fs::read(folder.join(MEDIA_PLAYLIST)).expect("playlist");
        let parsed = m3u8_rs::parse_media_playlist_res(&text).expect("parses");
        assert!(parsed.end_list);
        assert_eq!(parsed.playlist_type, None, "a live playlist stays live");
        let _ = std::fs::remove_dir_all(&folder);
    }
}
