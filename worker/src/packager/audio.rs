// SPDX-License-Identifier: MPL-2.0

//! A language's audio as an HLS rendition of packed audio (RFC 8216
//! §3.4): ADTS frames behind an ID3 tag that gives the first frame's
//! MPEG-TS timestamp, cut where the video was cut. hlssink3 cannot cut
//! audio at another stream's times (see `pipeline::hls`), so this is
//! written by hand.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::playlist::{RenditionPlaylist, WallClock};
use super::webvtt::MPEGTS_AT_ZERO;

/// One ADTS frame: its running time and duration (ns), and its bytes.
struct Frame {
    running_time: u64,
    duration: u64,
    adts: Vec<u8>,
}

/// What one rendition has written: segments, bytes, time (ns), and the
/// highest bit rate of one segment.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub segments: usize,
    pub bytes: u64,
    pub duration_ns: u64,
    pub peak_bps: u64,
}

impl Written {
    pub fn add(&mut self, bytes: u64, duration: u64) {
        self.segments += 1;
        self.bytes += bytes;
        self.duration_ns += duration;
        if let Some(bps) = (bytes * 8 * 1_000_000_000).checked_div(duration) {
            self.peak_bps = self.peak_bps.max(bps);
        }
    }

    pub fn average_bps(&self) -> u64 {
        (self.bytes * 8 * 1_000_000_000)
            .checked_div(self.duration_ns)
            .unwrap_or(0)
    }
}

/// The rendition's state, shared by the appsink's streaming thread (which
/// brings frames) and the worker's bus thread (which brings cut times).
struct Rendition {
    frames: VecDeque<Frame>,
    /// Where the video was cut (running time, ns), not yet reached here.
    cuts: VecDeque<u64>,
    playlist: RenditionPlaylist,
    written: Written,
    /// With no video, the rendition that sets the cuts: every target
    /// duration of running time.
    leads: Option<Lead>,
}

/// The cuts a leading rendition makes on its own.
struct Lead {
    period: u64,
    /// The next cut's running time, once the first frame came.
    next: Option<u64>,
}

impl Lead {
    /// The cuts `frame_time` has reached: (segment start, duration) each.
    fn reached(&mut self, frame_time: u64) -> Vec<(u64, u64)> {
        let period = self.period.max(1);
        let next = *self.next.get_or_insert((frame_time / period + 1) * period);
        let mut cuts = Vec::new();
        let mut end = next;
        while frame_time >= end {
            cuts.push((end - period, period));
            end += period;
        }
        self.next = Some(end);
        cuts
    }
}

/// The message a leading rendition posts for each cut it sets, from its
/// appsink: `running-time` and `duration` of the segment (ns), as the
/// video's sink's `hls-segment-added` says them.
pub const AUDIO_CUT_MESSAGE: &str = "stsdub-worker-audio-cut";

impl Rendition {
    /// Makes every cut the frames have passed by [`FINAL_CUT_SLACK`]: the
    /// audio may come later than the video.
    fn cut_what_has_passed(&mut self) -> io::Result<()> {
        while let Some(&end) = self.cuts.front() {
            let passed = self
                .frames
                .back()
                .is_some_and(|f| f.running_time >= end + FINAL_CUT_SLACK);
            if !passed {
                break;
            }
            self.cuts.pop_front();
            self.write_until(end)?;
        }
        Ok(())
    }

    /// Adds `frame`; a leading rendition's cuts it reached, set here.
    fn take(&mut self, frame: Frame) -> Vec<(u64, u64)> {
        let time = frame.running_time;
        self.frames.push_back(frame);
        let Some(lead) = &mut self.leads else {
            return Vec::new();
        };
        let cuts = lead.reached(time);
        self.cuts
            .extend(cuts.iter().map(|(start, duration)| start + duration));
        cuts
    }

    /// Writes the frames that start before `end` as the next segment.
    fn write_until(&mut self, end: u64) -> io::Result<()> {
        let count = self
            .frames
            .iter()
            .take_while(|f| f.running_time < end)
            .count();
        let frames: Vec<Frame> = self.frames.drain(..count).collect();
        let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
            return Ok(());
        };
        let duration = last.running_time + last.duration - first.running_time;
        let mut bytes = timestamp_tag(first.running_time);
        for frame in &frames {
            bytes.extend_from_slice(&frame.adts);
        }
        self.playlist.add(&bytes, first.running_time, duration)?;
        self.written.add(bytes.len() as u64, duration);
        Ok(())
    }
}

/// One language's packed-audio rendition.
pub struct PackedAudio {
    shared: Arc<Mutex<Rendition>>,
}

/// How far past a cut the audio must be before it is made. hlssink3 gives
/// the video's last segment as ending where its last frame starts: the
/// audio of that frame (40 ms at 25 fps, 80 ms at 12.5) belongs before the
/// end, not in a segment of its own.
const FINAL_CUT_SLACK: u64 = 100_000_000;

/// The ID3 PRIV owner HLS reads a packed-audio segment's timestamp from.
const TIMESTAMP_OWNER: &[u8] = b"com.apple.streaming.transportStreamTimestamp\0";

impl PackedAudio {
    /// A rendition in `folder` fed by `appsink` (ADTS); `window`: segments
    /// a live playlist lists, None for VOD. A segment that cannot be
    /// written stops the stream with an error naming it.
    /// `leads`: there is no video, and this rendition cuts itself every
    /// target duration and tells the others (see [`AUDIO_CUT_MESSAGE`]).
    pub fn attach(
        appsink: &gst_app::AppSink,
        folder: &Path,
        target_seconds: u32,
        window: Option<usize>,
        clock: WallClock,
        leads: bool,
    ) -> io::Result<Self> {
        let shared = Arc::new(Mutex::new(Rendition {
            frames: VecDeque::new(),
            cuts: VecDeque::new(),
            playlist: RenditionPlaylist::new(folder, "aac", target_seconds, window, clock)?,
            written: Written::default(),
            leads: leads.then(|| Lead {
                period: u64::from(target_seconds) * 1_000_000_000,
                next: None,
            }),
        }));
        let feed = shared.clone();
        let folder = folder.to_path_buf();
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(frame) = frame_of(&sample) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let written = feed.lock().map_err(|_| gst::FlowError::Error).and_then(
                        |mut rendition| {
                            let cuts = rendition.take(frame);
                            rendition.cut_what_has_passed().map(|()| cuts).map_err(|e| {
                                gst::element_error!(
                                    sink,
                                    gst::ResourceError::Write,
                                    ("HLS output: cannot write in {}: {e}", folder.display())
                                );
                                gst::FlowError::Error
                            })
                        },
                    )?;
                    // Told once the rendition is free: the bus's reader
                    // cuts the others, this one among the renditions it
                    // locks.
                    for (start, duration) in written {
                        announce_cut(sink, start, duration);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        Ok(Self { shared })
    }

    /// The video was cut at `end` (running time, ns): so is this rendition,
    /// as soon as its frames reach it.
    pub fn cut_at(&self, end: u64) -> io::Result<()> {
        let Ok(mut rendition) = self.shared.lock() else {
            return Ok(());
        };
        rendition.cuts.push_back(end);
        rendition.cut_what_has_passed()
    }

    /// A leading rendition's time after its last cut: (start, duration)
    /// of what its frames hold past it, which no cut message told.
    pub fn past_last_cut(&self) -> Option<(u64, u64)> {
        let rendition = self.shared.lock().ok()?;
        let lead = rendition.leads.as_ref()?;
        let start = lead.next?.checked_sub(lead.period)?;
        let end = rendition
            .frames
            .back()
            .map(|f| f.running_time + f.duration)?;
        (end > start).then(|| (start, end - start))
    }

    /// What it has written so far.
    pub fn written(&self) -> Written {
        self.shared.lock().map(|r| r.written).unwrap_or_default()
    }

    /// The end of the stream: every cut made, what is left as the last
    /// segment, then EXT-X-ENDLIST. A last cut the audio ends within
    /// [`FINAL_CUT_SLACK`] of is the video's last frame, not a cut.
    pub fn finish(&self) -> io::Result<()> {
        let Ok(mut rendition) = self.shared.lock() else {
            return Ok(());
        };
        let audio_end = rendition.frames.back().map(|f| f.running_time + f.duration);
        while let Some(end) = rendition.cuts.pop_front() {
            let last_frame =
                rendition.cuts.is_empty() && audio_end.is_some_and(|e| e <= end + FINAL_CUT_SLACK);
            if !last_frame {
                rendition.write_until(end)?;
            }
        }
        rendition.write_until(u64::MAX)?;
        rendition.playlist.finish()
    }
}

/// Tells the bus that a leading rendition cut at `start + duration`.
fn announce_cut(sink: &gst_app::AppSink, start: u64, duration: u64) {
    let cut = gst::Structure::builder(AUDIO_CUT_MESSAGE)
        .field("running-time", gst::ClockTime::from_nseconds(start))
        .field("duration", gst::ClockTime::from_nseconds(duration))
        .build();
    let _ = sink.post_message(gst::message::Element::builder(cut).src(sink).build());
}

/// A sample's frame, by its running time; None before the segment starts
/// (a demuxer's audio may begin a frame before the video) or unstamped.
fn frame_of(sample: &gst::Sample) -> Option<Frame> {
    let buffer = sample.buffer()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let running_time = segment.to_running_time(buffer.pts()?)?.nseconds();
    let duration = buffer.duration().map_or(0, gst::ClockTime::nseconds);
    let adts = buffer.map_readable().ok()?.as_slice().to_vec();
    Some(Frame {
        running_time,
        duration,
        adts,
    })
}

/// The ID3v2.4 tag of a packed-audio segment whose first frame is at
/// `running_time` (ns): a PRIV frame with its 33-bit MPEG-TS timestamp,
/// on the video segments' clock.
fn timestamp_tag(running_time: u64) -> Vec<u8> {
    let pts = (MPEGTS_AT_ZERO + running_time * 9 / 100_000) & ((1 << 33) - 1);
    let mut frame_body = TIMESTAMP_OWNER.to_vec();
    frame_body.extend_from_slice(&pts.to_be_bytes());
    let mut frame = b"PRIV".to_vec();
    frame.extend_from_slice(&syncsafe(frame_body.len()));
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&frame_body);
    let mut tag = b"ID3\x04\x00\x00".to_vec();
    tag.extend_from_slice(&syncsafe(frame.len()));
    tag.extend_from_slice(&frame);
    tag
}

/// A size as ID3v2.4 writes it: 7 bits a byte.
fn syncsafe(size: usize) -> [u8; 4] {
    [
        (size >> 21 & 0x7f) as u8,
        (size >> 14 & 0x7f) as u8,
        (size >> 7 & 0x7f) as u8,
        (size & 0x7f) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_rendition_cuts_every_period_from_zero() {
        let mut lead = Lead {
            period: 6,
            next: None,
        };
        assert!(lead.reached(1).is_empty());
        assert!(lead.reached(5).is_empty());
        assert_eq!(lead.reached(6), [(0, 6)]);
        assert!(lead.reached(11).is_empty());
        // A gap in the frames: every cut it passed.
        assert_eq!(lead.reached(25), [(6, 6), (12, 6), (18, 6)]);
    }

    #[test]
    fn the_timestamp_tag_says_the_first_frames_mpeg_ts_time() {
        // 2 s of running time: 3602 s at 90 kHz.
        let tag = timestamp_tag(2_000_000_000);
        assert_eq!(&tag[..6], b"ID3\x04\x00\x00");
        assert_eq!(tag.len(), 10 + 10 + TIMESTAMP_OWNER.len() + 8);
        assert_eq!(&tag[6..10], &[0, 0, 0, 63]);
        assert_eq!(&tag[10..14], b"PRIV");
        let pts = u64::from_be_bytes(tag[tag.len() - 8..].try_into().expect("8 bytes"));
        assert_eq!(pts, 3602 * 90_000);
        assert_eq!(syncsafe(200), [0, 0, 1, 72]);
    }
}
