// SPDX-License-Identifier: MPL-2.0

//! The HLS package around the renditions hlssink3 writes
//! (`pipeline::HlsOutput`): the multivariant playlist, and a WebVTT
//! rendition per dubbed language. Fed from the bus: each sink's
//! `hls-segment-added` (its segment is complete and listed) and each
//! stsdub's `stsdub-segment` (the words of a dubbed segment).
//!
//! The multivariant playlist is first written once every rendition has a
//! segment, so it never points at a playlist that does not exist yet, and
//! again whenever a segment raises a rendition's peak bit rate (BANDWIDTH
//! must be at least the peak) and at the end. Every write replaces the
//! file whole (a temporary file renamed over it).

mod codecs;
mod master;
mod webvtt;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use gst::prelude::*;

use crate::pipeline::{HlsOutput, Rendition};
use webvtt::SubtitleTrack;

/// What one rendition has written so far.
#[derive(Debug, Default, Clone)]
struct Written {
    segments: usize,
    bytes: u64,
    duration_ns: u64,
    /// The highest bit rate of one segment, bits per second.
    peak_bps: u64,
}

impl Written {
    fn average_bps(&self) -> u64 {
        (self.bytes * 8 * 1_000_000_000)
            .checked_div(self.duration_ns)
            .unwrap_or(0)
    }
}

/// The package of one run.
pub struct Package {
    hls: HlsOutput,
    pipeline: gst::Element,
    written: BTreeMap<String, (Rendition, Written)>,
    subtitles: BTreeMap<String, SubtitleTrack>,
    /// The 608 channel of each language's captions in the video.
    captions: Vec<(String, u32)>,
    /// The peak BANDWIDTH the multivariant playlist now says, if written.
    master_bandwidth: Option<u64>,
}

impl Package {
    /// The package of `pipeline`'s hlssink3 renditions: their folders made
    /// and proven writable, a WebVTT rendition per dubbed language. An
    /// error says which folder cannot be written.
    pub fn new(
        hls: &HlsOutput,
        pipeline: &gst::Element,
        live: bool,
        captions: Vec<(String, u32)>,
    ) -> Result<Self, String> {
        let renditions = renditions_of(pipeline);
        hls.prepare(&renditions)?;
        let target = gst::ClockTime::from_seconds(u64::from(hls.segment_seconds));
        for rendition in renditions.iter().filter(|r| **r != Rendition::Video) {
            let splitter = splitter(pipeline, rendition);
            if let Some(splitter) = &splitter {
                // Cut at whole multiples of the target, as the video is
                // (its keyframes fall there when its GOP divides the
                // target), not at the frame before each segment reaches
                // it, which would drift a frame's fraction each segment.
                splitter.set_property("max-size-time", 0u64);
            }
            start_audio_rendition(pipeline, rendition, splitter, target);
        }
        let window = live.then_some(hls.playlist_length as usize);
        let mut subtitles = BTreeMap::new();
        for rendition in &renditions {
            if let Rendition::Audio {
                language,
                dubbed: true,
            } = rendition
            {
                let folder = hls.dir().join(subtitle_folder(language));
                let track =
                    SubtitleTrack::new(&folder, hls.segment_seconds, window).map_err(|e| {
                        format!("HLS output: cannot write in {}: {e}", folder.display())
                    })?;
                subtitles.insert(language.clone(), track);
            }
        }
        Ok(Self {
            hls: hls.clone(),
            pipeline: pipeline.clone(),
            written: renditions
                .into_iter()
                .map(|r| (r.sink_name(), (r, Written::default())))
                .collect(),
            subtitles,
            captions,
            master_bandwidth: None,
        })
    }

    /// An `hls-segment-added` message from the sink named `sink`.
    pub fn segment_added(&mut self, sink: &str, segment: &gst::StructureRef) -> io::Result<()> {
        let duration = segment
            .get::<Option<gst::ClockTime>>("duration")
            .ok()
            .flatten()
            .map_or(0, gst::ClockTime::nseconds);
        let bytes = segment
            .get::<&str>("location")
            .ok()
            .and_then(|l| std::fs::metadata(l).ok())
            .map_or(0, |m| m.len());
        let Some((rendition, written)) = self.written.get_mut(sink) else {
            return Ok(());
        };
        written.segments += 1;
        written.bytes += bytes;
        written.duration_ns += duration;
        if let Some(bps) = (bytes * 8 * 1_000_000_000).checked_div(duration) {
            written.peak_bps = written.peak_bps.max(bps);
        }
        if *rendition != Rendition::Video
            && let Some(splitter) = splitter(&self.pipeline, rendition)
        {
            let next = written.segments as u64 + SPLITS_AHEAD;
            let target = gst::ClockTime::from_seconds(u64::from(self.hls.segment_seconds));
            splitter.emit_by_name::<()>("split-at-running-time", &[&(target * next)]);
        }
        if *rendition == Rendition::Video {
            // The subtitles are cut where the video is.
            let start = segment
                .get::<Option<gst::ClockTime>>("running-time")
                .ok()
                .flatten()
                .map_or(0, gst::ClockTime::nseconds);
            for track in self.subtitles.values_mut() {
                track.cut(start, duration)?;
            }
        }
        self.write_master_if_due(false)
    }

    /// A dubbed segment's words (`stsdub-segment`'s `translated-text`) in
    /// `language`, at stream time `pts` (ns) for `duration` (ns).
    pub fn dubbed_words(&mut self, language: &str, pts: u64, duration: u64, words: &str) {
        let sink = Rendition::Audio {
            language: language.to_owned(),
            dubbed: true,
        }
        .sink_name();
        let start = self.running_time(&sink, "video", pts);
        if let Some(track) = self.subtitles.get_mut(language) {
            track.add_words(words, start, duration);
        }
    }

    /// The end of the stream: every playlist closed, the multivariant
    /// playlist with the final rates.
    pub fn finish(&mut self) -> io::Result<()> {
        for track in self.subtitles.values_mut() {
            track.finish()?;
        }
        self.write_master_if_due(true)
    }

    /// `pts` of the stream into `sink`'s `pad` as running time (the sinks
    /// cut and stamp segments in running time).
    fn running_time(&self, sink: &str, pad: &str, pts: u64) -> u64 {
        let bin = self.pipeline.downcast_ref::<gst::Bin>();
        bin.and_then(|b| b.by_name(sink))
            .and_then(|s| s.static_pad(pad))
            .and_then(|p| p.sticky_event::<gst::event::Segment>(0))
            .and_then(|e| {
                e.segment()
                    .downcast_ref::<gst::ClockTime>()
                    .and_then(|s| s.to_running_time(gst::ClockTime::from_nseconds(pts)))
            })
            .map_or(pts, gst::ClockTime::nseconds)
    }

    fn write_master_if_due(&mut self, at_end: bool) -> io::Result<()> {
        if self.written.values().any(|(_, w)| w.segments == 0) {
            return Ok(());
        }
        let bandwidth = self.peak_bandwidth();
        if !at_end && self.master_bandwidth.is_some_and(|b| b >= bandwidth) {
            return Ok(());
        }
        let playlist = master::Variant {
            bandwidth,
            average_bandwidth: self.average_bandwidth(),
            video_caps: self.caps(&Rendition::Video),
            audio_caps: self
                .written
                .values()
                .find(|(r, _)| *r != Rendition::Video)
                .and_then(|(r, _)| self.caps(r)),
        }
        .playlist(
            self.written.values().map(|(r, _)| r),
            self.subtitles.keys(),
            &self.captions,
        );
        let mut bytes = Vec::new();
        playlist.write_to(&mut bytes)?;
        write_atomically(&self.hls.master, &bytes)?;
        self.master_bandwidth = Some(bandwidth);
        Ok(())
    }

    /// The video's peak and the highest audio peak: what a player needs
    /// for the variant with any one audio rendition.
    fn peak_bandwidth(&self) -> u64 {
        self.with_loudest_audio(|w| w.peak_bps)
    }

    fn average_bandwidth(&self) -> u64 {
        self.with_loudest_audio(Written::average_bps)
    }

    fn with_loudest_audio(&self, rate: impl Fn(&Written) -> u64) -> u64 {
        let video = self
            .written
            .values()
            .filter(|(r, _)| *r == Rendition::Video)
            .map(|(_, w)| rate(w))
            .sum::<u64>();
        let audio = self
            .written
            .values()
            .filter(|(r, _)| *r != Rendition::Video)
            .map(|(_, w)| rate(w))
            .max()
            .unwrap_or(0);
        video + audio
    }

    /// The caps of `rendition`'s stream (every sink takes it on `video`).
    fn caps(&self, rendition: &Rendition) -> Option<gst::Caps> {
        self.pipeline
            .downcast_ref::<gst::Bin>()?
            .by_name(&rendition.sink_name())?
            .static_pad("video")?
            .current_caps()
    }
}

/// How many cuts an audio rendition's splitter has queued ahead of the
/// segment it writes: one more is queued as each segment is added, so the
/// bus may lag the stream by a whole segment before a cut is late.
const SPLITS_AHEAD: u64 = 2;

/// The splitmuxsink inside `rendition`'s hlssink3 (its child's name in
/// gst-plugin-hlssink3 0.15).
fn splitter(pipeline: &gst::Element, rendition: &Rendition) -> Option<gst::Element> {
    pipeline
        .downcast_ref::<gst::Bin>()?
        .by_name(&rendition.sink_name())?
        .downcast::<gst::Bin>()
        .ok()?
        .by_name("split_mux_sink")
}

/// Drops the AAC frames that start before the stream's segment (running
/// time below zero: the demuxer's audio may begin a frame before the
/// video). splitmuxsink on GStreamer 1.22 reports such a fragment as
/// opened at a negative running time, read as a huge one, which hlssink3
/// 0.15 subtracts from the time it closed at and panics. At most one
/// frame goes, ahead of the video's first frame. With the first frame
/// kept, the splitter's first cuts are queued (it forgets cuts queued
/// before it starts).
fn start_audio_rendition(
    pipeline: &gst::Element,
    rendition: &Rendition,
    splitter: Option<gst::Element>,
    target: gst::ClockTime,
) {
    let Some(pad) = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name(&rendition.sink_name()))
        .and_then(|s| s.static_pad("video"))
    else {
        return;
    };
    let splitter = std::sync::Mutex::new(splitter);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            return gst::PadProbeReturn::Ok;
        };
        let before_the_start = pad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|e| {
                e.segment()
                    .downcast_ref::<gst::ClockTime>()
                    .map(|s| s.to_running_time(pts).is_none())
            })
            .unwrap_or(false);
        if before_the_start {
            // Taken and handled here: returning Drop made GStreamer 1.22
            // log a CRITICAL (an unref of NULL) for every frame dropped.
            info.data = None;
            return gst::PadProbeReturn::Handled;
        }
        let first_kept = splitter.lock().map(|mut s| s.take()).ok().flatten();
        if let Some(splitter) = first_kept {
            for n in 1..=SPLITS_AHEAD {
                splitter.emit_by_name::<()>("split-at-running-time", &[&(target * n)]);
            }
        }
        gst::PadProbeReturn::Ok
    });
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
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
