// SPDX-License-Identifier: MPL-2.0

//! The HLS package around the video hlssink3 writes (`pipeline::HlsOutput`):
//! a packed-audio rendition per language and a WebVTT rendition per dubbed
//! language, each cut where the video was, and the multivariant playlist.
//! Fed from the bus: the video sink's `hls-segment-added` (a segment is
//! complete and listed: the audio and subtitles up to its end are written)
//! and each stsdub's `stsdub-segment` (the words of a dubbed segment).
//!
//! The multivariant playlist is first written once every rendition has a
//! segment, so it never points at a playlist that does not exist yet, and
//! again whenever a segment raises a rendition's peak bit rate (BANDWIDTH
//! must be at least the peak) and at the end. Every write replaces the
//! file whole (a temporary file renamed over it).

mod audio;
mod codecs;
mod master;
mod playlist;
mod webvtt;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gio::prelude::*;
use gst::prelude::*;

use crate::pipeline::{HlsOutput, Rendition};
use audio::{AUDIO_CUT_MESSAGE, PackedAudio, Written};
use playlist::WallClock;
use webvtt::SubtitleTrack;

/// hlssink3's message for each segment it has written and listed.
const HLS_SEGMENT_ADDED: &str = "hls-segment-added";

/// The package of one run.
pub struct Package {
    hls: HlsOutput,
    pipeline: gst::Element,
    renditions: Vec<Rendition>,
    /// What the video's sink has written.
    video: Written,
    /// With no video: the audio rendition (its sink's name) that sets the
    /// cuts, every target duration.
    leader: Option<String>,
    /// Each audio rendition's writer, by its sink's name.
    audio: BTreeMap<String, PackedAudio>,
    subtitles: BTreeMap<String, SubtitleTrack>,
    /// The 608 channel or 708 service of each language's captions in the
    /// video (the multivariant playlist's CLOSED-CAPTIONS).
    captions: Vec<(String, m3u8_rs::InstreamId)>,
    /// The peak BANDWIDTH the multivariant playlist now says, if written.
    master_bandwidth: Option<u64>,
    warned_of_long_segment: bool,
    clock: WallClock,
    /// Set once a write failed: no playlist is written after it.
    failed: Arc<AtomicBool>,
}

impl Package {
    /// The package of `pipeline`'s hlssink3 renditions: their folders made
    /// and proven writable, a WebVTT rendition per dubbed language. An
    /// error says which folder cannot be written.
    pub fn new(
        hls: &HlsOutput,
        pipeline: &gst::Element,
        live: bool,
        captions: Vec<(String, m3u8_rs::InstreamId)>,
    ) -> Result<Self, String> {
        let renditions = renditions_of(pipeline);
        hls.prepare(&renditions)?;
        let window = live.then_some(hls.playlist_length as usize);
        let clock = WallClock::new();
        let failed = Arc::new(AtomicBool::new(false));
        let video = element(pipeline, &Rendition::Video.sink_name());
        if let Some(video) = &video {
            keep_the_video_playlist_whole(video, failed.clone());
        }
        let mut leader = None;
        let cannot_write = |folder: &Path, e: io::Error| {
            format!("HLS output: cannot write in {}: {e}", folder.display())
        };
        let mut audio = BTreeMap::new();
        let mut subtitles = BTreeMap::new();
        for rendition in &renditions {
            let Rendition::Audio { language, dubbed } = rendition else {
                continue;
            };
            let folder = hls.dir().join(rendition.folder());
            let Some(appsink) = element(pipeline, &rendition.sink_name())
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            else {
                return Err(format!(
                    "HLS output: no appsink for {}",
                    rendition.sink_name()
                ));
            };
            let leads = video.is_none() && leader.is_none();
            let writer = PackedAudio::attach(
                &appsink,
                &folder,
                hls.segment_seconds,
                window,
                clock.clone(),
                leads,
            )
            .map_err(|e| cannot_write(&folder, e))?;
            if leads {
                leader = Some(rendition.sink_name());
            }
            audio.insert(rendition.sink_name(), writer);
            if *dubbed {
                let folder = hls.dir().join(subtitle_folder(language));
                let track = SubtitleTrack::new(&folder, hls.segment_seconds, window, clock.clone())
                    .map_err(|e| cannot_write(&folder, e))?;
                subtitles.insert(language.clone(), track);
            }
        }
        Ok(Self {
            hls: hls.clone(),
            pipeline: pipeline.clone(),
            renditions,
            video: Written::default(),
            leader,
            audio,
            subtitles,
            captions,
            master_bandwidth: None,
            warned_of_long_segment: false,
            clock,
            failed,
        })
    }

    /// An element message from the sink named `sink`: the video's
    /// `hls-segment-added`, or with no video an [`AUDIO_CUT_MESSAGE`] from
    /// the leading audio rendition's: the other audio and the subtitles up
    /// to its end follow it. Any other message is not the package's.
    pub fn segment_added(&mut self, sink: &str, segment: &gst::StructureRef) -> io::Result<()> {
        let from_video = Rendition::from_sink_name(sink) == Some(Rendition::Video)
            && segment.name() == HLS_SEGMENT_ADDED;
        let from_leader =
            self.leader.as_deref() == Some(sink) && segment.name() == AUDIO_CUT_MESSAGE;
        if !from_video && !from_leader {
            return Ok(());
        }
        let time = |field: &str| {
            segment
                .get::<Option<gst::ClockTime>>(field)
                .ok()
                .flatten()
                .map_or(0, gst::ClockTime::nseconds)
        };
        let (start, duration) = (time("running-time"), time("duration"));
        let bytes = segment
            .get::<&str>("location")
            .ok()
            .and_then(|l| std::fs::metadata(l).ok())
            .map_or(0, |m| m.len());
        self.clock.set_from(&self.pipeline);
        if from_video {
            self.video.add(bytes, duration);
            self.warn_of_long_segment(duration);
        }
        for (name, writer) in &self.audio {
            if self.leader.as_ref() != Some(name) {
                writer.cut_at(start + duration)?;
            }
        }
        for track in self.subtitles.values_mut() {
            track.cut(start, duration)?;
        }
        self.write_master_if_due(false)
    }

    /// A write failed (here, or in a sink): the playlists stay as they are,
    /// every one listing only whole segments. Without this, hlssink3 would
    /// list the video segment it was writing when the pipeline stops.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    /// The folder of the rendition whose sink (or an element inside it,
    /// such as hlssink3's file sink) is at `element_path`, for an error
    /// that names only the element.
    pub fn folder_of(&self, element_path: &str) -> Option<std::path::PathBuf> {
        self.renditions
            .iter()
            .find(|r| {
                element_path
                    .split('/')
                    .any(|part| part.rsplit(':').next() == Some(r.sink_name().as_str()))
            })
            .map(|r| self.hls.dir().join(r.folder()))
    }

    /// HLS wants no segment longer than the target duration, and the video
    /// is cut only on its keyframes: a GOP longer than the target makes
    /// longer segments. Said once, with what to set.
    fn warn_of_long_segment(&mut self, duration: u64) {
        let target = u64::from(self.hls.segment_seconds) * 1_000_000_000;
        // EXTINF rounded to the nearest second may reach the target.
        if self.warned_of_long_segment || duration < target + 500_000_000 {
            return;
        }
        self.warned_of_long_segment = true;
        eprintln!(
            "worker: warning: a video segment of {:.2} s, longer than --hls-segment-duration {} \
             (the input's keyframes are further apart): set it to at least its GOP",
            duration as f64 / 1e9,
            self.hls.segment_seconds
        );
    }

    /// A dubbed segment's words (`stsdub-segment`'s `translated-text`) in
    /// `language`, from `start` (running time, ns) for `duration` (ns).
    pub fn dubbed_words(
        &mut self,
        language: &str,
        start: u64,
        duration: u64,
        words: &str,
    ) -> io::Result<()> {
        match self.subtitles.get_mut(language) {
            Some(track) => track.add_words(words, start, duration),
            None => Ok(()),
        }
    }

    /// The end of the stream: every playlist closed, the multivariant
    /// playlist with the final rates.
    pub fn finish(&mut self) -> io::Result<()> {
        // With no video, the subtitles' last cut is the leading audio's end.
        let last = self
            .leader
            .as_ref()
            .and_then(|leader| self.audio.get(leader))
            .and_then(PackedAudio::past_last_cut);
        if let Some((start, duration)) = last {
            for track in self.subtitles.values_mut() {
                track.cut(start, duration)?;
            }
        }
        for writer in self.audio.values() {
            writer.finish()?;
        }
        for track in self.subtitles.values_mut() {
            track.finish()?;
        }
        self.write_master_if_due(true)
    }

    /// Writes the multivariant playlist once every rendition has a segment,
    /// again when the peak rate rises, and at the end, when a rendition
    /// that never had one (its track never came) is left out, said.
    fn write_master_if_due(&mut self, at_end: bool) -> io::Result<()> {
        let audio: BTreeMap<&String, Written> = self
            .audio
            .iter()
            .map(|(sink, writer)| (sink, writer.written()))
            .collect();
        let missing: Vec<&String> = audio
            .iter()
            .filter(|(_, w)| w.segments == 0)
            .map(|(sink, _)| *sink)
            .collect();
        let started = self.video.segments > 0 || self.leader.is_some();
        if !started || (!missing.is_empty() && !at_end) {
            if at_end && !started {
                eprintln!("worker: warning: HLS output: no video came, no multivariant playlist");
            }
            return Ok(());
        }
        if at_end && !missing.is_empty() {
            eprintln!("worker: warning: HLS output: no audio came for {missing:?}: left out");
        }
        let present: Vec<&Rendition> = self
            .renditions
            .iter()
            .filter(|r| !missing.contains(&&r.sink_name()))
            .collect();
        let subtitled = self.subtitles.keys().filter(|language| {
            present.contains(&&Rendition::Audio {
                language: (*language).clone(),
                dubbed: true,
            })
        });
        // The video with the costliest audio: what a player needs for the
        // variant with any one audio rendition.
        let rate =
            |of: fn(&Written) -> u64| of(&self.video) + audio.values().map(of).max().unwrap_or(0);
        let bandwidth = rate(|w| w.peak_bps);
        if !at_end && self.master_bandwidth.is_some_and(|b| b >= bandwidth) {
            return Ok(());
        }
        let playlist = master::Variant {
            bandwidth,
            average_bandwidth: rate(Written::average_bps),
            video_caps: self.caps(&Rendition::Video),
            audio_caps: present
                .iter()
                .find(|r| ***r != Rendition::Video)
                .and_then(|r| self.caps(r)),
        }
        .playlist(present.iter().copied(), subtitled, &self.captions);
        let mut bytes = Vec::new();
        playlist.write_to(&mut bytes)?;
        write_atomically(&self.hls.master, &bytes)?;
        self.master_bandwidth = Some(bandwidth);
        Ok(())
    }

    /// The caps of `rendition`'s stream, at its sink.
    fn caps(&self, rendition: &Rendition) -> Option<gst::Caps> {
        let pad = if *rendition == Rendition::Video {
            "video"
        } else {
            "sink"
        };
        element(&self.pipeline, &rendition.sink_name())?
            .static_pad(pad)?
            .current_caps()
    }
}

/// Gives `hlssink3` the stream for each write of its playlist: one that
/// replaces the file whole or not at all ([`WholePlaylist`]), or none once
/// `failed`, so that it writes no more. hlssink3's own stream (GIO's
/// replace) renames its temporary file over the playlist on close even
/// after a failed write: measured on a full disk, it left a playlist that
/// did not parse.
fn keep_the_video_playlist_whole(hlssink3: &gst::Element, failed: Arc<AtomicBool>) {
    hlssink3.connect("get-playlist-stream", false, move |args| {
        if failed.load(Ordering::SeqCst) {
            return Some(None::<gio::OutputStream>.to_value());
        }
        let location = args.get(1).and_then(|v| v.get::<String>().ok())?;
        let whole = WholePlaylist {
            path: location.into(),
            bytes: Vec::new(),
        };
        Some(Some(gio::WriteOutputStream::new(whole).upcast::<gio::OutputStream>()).to_value())
    });
}

/// A playlist kept in memory as it is written and written out, whole, by
/// [`write_atomically`] when flushed (hlssink3 flushes once it has written
/// all of it).
struct WholePlaylist {
    path: std::path::PathBuf,
    bytes: Vec<u8>,
}

impl io::Write for WholePlaylist {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        write_atomically(&self.path, &self.bytes)
    }
}

/// The element of `pipeline` named `name`.
fn element(pipeline: &gst::Element, name: &str) -> Option<gst::Element> {
    pipeline.downcast_ref::<gst::Bin>()?.by_name(name)
}

/// The folder of `language`'s WebVTT rendition, beside its audio's.
pub fn subtitle_folder(language: &str) -> String {
    format!("subtitles_{language}")
}

/// The renditions of `pipeline`: its elements named as rendition sinks.
fn renditions_of(pipeline: &gst::Element) -> Vec<Rendition> {
    let Some(bin) = pipeline.downcast_ref::<gst::Bin>() else {
        return Vec::new();
    };
    let mut renditions: Vec<Rendition> = bin
        .iterate_elements()
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| Rendition::from_sink_name(&e.name()))
        .collect();
    renditions.sort_by_key(Rendition::sink_name);
    renditions
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file in
/// the same folder, renamed over `path` (a reader sees the old file or the
/// new one, never a part).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.tmp"));
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    std::fs::write(&temporary, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        named(e)
    })?;
    std::fs::rename(&temporary, path).map_err(named)
}
