// SPDX-License-Identifier: MPL-2.0

//! The element's runtime state: what each track holds, where each stands in
//! running time, and the helpers that read it. Behind `StsDub::state`.

use super::captions::CaptionsOut;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::fragment::DubbedFrames;
use super::settings::*;
pub(super) use super::track::{PerTrack, Track, TrackState};
use crate::container::m4a::AacConfig;
use crate::ops::archive::{Archive, VideoArchive};
use crate::ops::metrics::StreamMetrics;
use crate::sts::SessionHandle;
use crate::sts::breaker::BreakerState;
use crate::timeline::scheduler::OutputQueue;
use crate::timeline::segmenter::{Segment, Segmenter};

/// Fragments remembered for log lines: more than can be in flight or late.
pub(super) const RECENT_FRAGMENTS: usize = 64;

/// A segment waiting in the output queue, with what identifies it on the wire.
pub(super) struct QueuedSegment {
    pub(super) fragment_id: String,
    pub(super) segment: Segment<gst::Buffer>,
}

/// What can be cancelled while a segment waits for its outcome.
pub(super) struct Pending {
    pub(super) deadline: Option<gst::SingleShotClockId>,
    pub(super) task: tokio::task::AbortHandle,
}

/// What the `stats` property reports.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) segments: u64,
    pub(super) dubbed: u64,
    pub(super) fallback: u64,
    pub(super) late_answers: u64,
    /// Answers for fragment ids never sent.
    pub(super) unknown_answers: u64,
    pub(super) last_round_trip_ms: Option<u64>,
    pub(super) breaker: Option<BreakerState>,
}

pub(super) enum VideoItem {
    Buffer(gst::Buffer),
    Event(gst::Event),
}

/// The audio input side's: what is being cut, and what is out for dubbing.
pub(super) struct AudioInput {
    pub(super) aac: Option<AacConfig>,
    pub(super) segmenter: Segmenter<gst::Buffer>,
    /// Segments out for dubbing, by batch: their deadline and task.
    pub(super) pending: HashMap<u64, Pending>,
    /// The audio segment reaches back before upstream's start (the
    /// timeline settled there, see `segmenter.rs`): the output gets it
    /// before its first buffer.
    pub(super) segment_reached_back: bool,
}

/// The audio output side's: the ordered queue of segments and events.
pub(super) struct AudioOutput {
    pub(super) queue: OutputQueue<QueuedSegment, DubbedFrames, gst::Event>,
    /// EOS has left on audio_src: video no longer waits for audio.
    pub(super) done: bool,
    pub(super) discont_pending: bool,
    /// The output audio is decoded, mixed and re-encoded (`voiceover.rs`).
    pub(super) reencoding: bool,
}

/// The video hold's: what waits to leave on video_src, and its clock wake.
#[derive(Default)]
pub(super) struct VideoHold {
    pub(super) queue: VecDeque<VideoItem>,
    pub(super) wake: Option<(gst::ClockTime, gst::SingleShotClockId)>,
    pub(super) archive: Option<VideoArchive>,
    /// The captions the frames carry as they leave (`captions.rs`).
    pub(super) captions: Option<CaptionsOut>,
}

/// What the latency queries and event told.
#[derive(Default)]
pub(super) struct Latencies {
    /// None until an upstream latency query told us.
    pub(super) live: Option<bool>,
    /// Upstream of audio_sink, once asked (deadlines are set against it).
    pub(super) upstream: Option<gst::ClockTime>,
    /// The latency sinks render with, from the LATENCY event.
    pub(super) pipeline: Option<gst::ClockTime>,
}

/// The reporter's: counts for `stats`, the stream's series and health.
#[derive(Default)]
pub(super) struct Reporting {
    pub(super) counts: Counts,
    /// This stream's series, from the start (READY → PAUSED) on.
    pub(super) metrics: Option<StreamMetrics>,
    /// What /healthz and /readyz know of this stream, from the start on.
    pub(super) health: Option<std::sync::Arc<crate::ops::health::Stream>>,
    /// The last fragments sent, with their batch: the session knows
    /// fragments only, a log line about one also names its batch.
    pub(super) recent_fragments: VecDeque<(String, u64)>,
    /// The re-encoded output's loudness, as last read.
    pub(super) loudness: Option<crate::audio::loudness::Readings>,
}

/// The element's runtime state, one owner per concern.
pub(super) struct State {
    pub(super) settings: Settings,
    pub(super) session: Option<SessionHandle>,
    /// What audio and video each hold the same way.
    pub(super) tracks: PerTrack<TrackState>,
    pub(super) audio_in: AudioInput,
    pub(super) audio_out: AudioOutput,
    pub(super) video: VideoHold,
    pub(super) latency: Latencies,
    pub(super) report: Reporting,
    pub(super) archive: Option<Archive>,
}

impl State {
    /// A fresh state for `settings`, with the stream's reporting and archive.
    pub(super) fn new(settings: Settings, report: Reporting, archive: Option<Archive>) -> Self {
        Self {
            audio_in: AudioInput {
                aac: None,
                segmenter: Segmenter::new(settings.cut_rules(), settings.timeline_rules()),
                pending: HashMap::new(),
                segment_reached_back: false,
            },
            audio_out: AudioOutput {
                queue: OutputQueue::default(),
                done: false,
                discont_pending: true,
                reencoding: false,
            },
            video: VideoHold {
                archive: archive.clone().map(VideoArchive::new),
                captions: CaptionsOut::new(&settings),
                ..VideoHold::default()
            },
            settings,
            session: None,
            tracks: PerTrack::default(),
            latency: Latencies::default(),
            report,
            archive,
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new(Settings::default(), Reporting::default(), None)
    }
}

impl State {
    /// Output advanced: the probes see the stream alive.
    pub(super) fn mark_output(&self) {
        if let Some(health) = &self.report.health {
            health.output_at(crate::ops::health::now());
        }
    }

    /// Cancels every wait and task, forgets queued audio (flush or stop).
    pub(super) fn abandon_audio(&mut self) {
        for (_, pending) in self.audio_in.pending.drain() {
            if let Some(deadline) = pending.deadline {
                deadline.unschedule();
            }
            pending.task.abort();
        }
        self.audio_out.queue.clear();
        self.audio_in.segmenter.discard();
        self.tracks[Track::Audio].position = None;
        self.audio_out.done = false;
        self.audio_out.discont_pending = true;
        if let Some(captions) = &mut self.video.captions {
            captions.forget_decisions();
        }
    }

    pub(super) fn abandon_video(&mut self) {
        // What has left is archived, even when the rest is flushed.
        if let Some(archive) = &mut self.video.archive {
            archive.flush();
        }
        self.video.queue.clear();
        if let Some((_, id)) = self.video.wake.take() {
            id.unschedule();
        }
    }

    pub(super) fn abandon(&mut self, track: Track) {
        match track {
            Track::Audio => self.abandon_audio(),
            Track::Video => self.abandon_video(),
        }
    }

    /// Queues a serialized event to leave in order with the track's data.
    pub(super) fn queue_event(&mut self, track: Track, event: gst::Event) {
        match track {
            Track::Audio => self.audio_out.queue.push_event(event),
            Track::Video => self.video.queue.push_back(VideoItem::Event(event)),
        }
    }

    pub(super) fn set_segment(
        &mut self,
        track: Track,
        segment: gst::FormattedSegment<gst::ClockTime>,
    ) {
        self.tracks[track].segment = segment;
        if track == Track::Audio {
            self.audio_in.segment_reached_back = false;
        }
    }

    /// The latency segments are decided against: the pipeline's (from the
    /// LATENCY event) when sinks render with it, but never less than what
    /// this element promised upstream + `latency`: sinks that do not sync
    /// (filesink, appsink sync=false) make the pipeline latency 0.
    pub(super) fn render_latency(&self) -> gst::ClockTime {
        let ours = self.latency.upstream.unwrap_or(gst::ClockTime::ZERO)
            + self.settings.latency_in_force();
        self.latency
            .pipeline
            .map_or(ours, |pipeline| pipeline.max(ours))
    }

    /// What an upstream latency query of audio told. Live, a latency that
    /// cannot hold a whole segment caps the segments' length, so that each
    /// frame still leaves by its deadline (they fall back, on time).
    pub(super) fn set_upstream(&mut self, live: bool, latency: gst::ClockTime) {
        self.latency.live = Some(live);
        self.latency.upstream = Some(latency);
        if let (true, Some(longest)) = (
            live,
            crate::timeline::scheduler::live_longest_segment(
                self.settings.latency_in_force(),
                self.settings.segment_duration,
            ),
        ) {
            self.audio_in.segmenter.cap_longest(longest.nseconds());
        }
    }

    /// Running time of the first video item still queued.
    pub(super) fn video_head_running_time(&self) -> Option<gst::ClockTime> {
        match self.video.queue.front()? {
            VideoItem::Buffer(buffer) => self.video_running_time(buffer),
            VideoItem::Event(_) => None,
        }
    }

    /// `worker_inflight_fragments`: segments out for dubbing, whose outcome
    /// is not known yet; updated as each is sent and decided.
    pub(super) fn publish_inflight(&self) {
        if let Some(metrics) = &self.report.metrics {
            metrics
                .inflight
                .set(self.audio_out.queue.undecided() as i64);
        }
    }

    /// Audio minus video running time of what has left, in ms.
    pub(super) fn av_delta_ms(&self) -> Option<f64> {
        let (audio, video) = (
            self.tracks[Track::Audio].position?,
            self.tracks[Track::Video].position?,
        );
        Some((audio.nseconds() as f64 - video.nseconds() as f64) / 1e6)
    }

    /// The timeline settled back to `earliest`, before the audio segment's
    /// start: the segment reaches back there, its base lowered as much, so
    /// that every running time stays what it was and no frame lies outside
    /// it (never before running time 0).
    pub(super) fn reach_audio_segment_back(&mut self, earliest: gst::ClockTime) {
        let segment = &mut self.tracks[Track::Audio].segment;
        let Some(start) = segment.start() else {
            return;
        };
        let base = segment.base().unwrap_or(gst::ClockTime::ZERO);
        let back = start.saturating_sub(earliest).min(base);
        if back.is_zero() {
            return;
        }
        let position = segment.position().map(|p| p.saturating_sub(back));
        segment.set_start(start - back);
        segment.set_base(base - back);
        segment.set_position(position);
        self.audio_in.segment_reached_back = true;
    }

    /// Running time of an audio timestamp; one before the segment start (an
    /// AAC priming frame at -21 ms) counts as the segment start.
    pub(super) fn audio_running_time(&self, pts: gst::ClockTime) -> Option<gst::ClockTime> {
        let segment = &self.tracks[Track::Audio].segment;
        let start = segment.start().unwrap_or(gst::ClockTime::ZERO);
        segment.to_running_time(pts.max(start))
    }

    pub(super) fn video_running_time(&self, buffer: &gst::Buffer) -> Option<gst::ClockTime> {
        self.tracks[Track::Video]
            .segment
            .to_running_time(buffer.dts_or_pts()?)
    }

    pub(super) fn absence(&mut self, track: Track) -> &mut super::absent::AbsenceWatch {
        &mut self.tracks[track].absence
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the stream down with a poisoned lock.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
