//! # stsdub
//!
//! Dubs a stream's AAC audio through a remote speech-to-speech (STS) service
//! and puts the dubbed audio back in step with the video. Audio is cut into
//! `segment-duration` segments on AAC frame boundaries, each sent as M4A over
//! Socket.IO; each segment leaves either dubbed (trimmed or padded to exactly
//! its length) or, when the STS is late, failing or gone, as the original
//! frames. Output audio is gapless and as long as the input.
//!
//! Video passes through `video_sink` → `video_src` untouched. Live, it is held
//! until the audio of the same instant has left (or its render time is near);
//! in a file it leaves at once and the muxer interleaves. No sink pad waits
//! for the other's data (see `release.rs`), so no queue has to be sized by
//! hand. A track whose branch never links is ended after the other has run
//! 6 s (see `absent.rs`).
//!
//! In a live pipeline the element adds `latency` to the pipeline latency, and a
//! segment that has no answer by its deadline goes out as original audio. In a
//! non-live pipeline there is no deadline: up to `max-inflight` segments are in
//! flight and each waits up to `timeout`.
//!
//! ## Example
//!
//! ```text
//! gst-launch-1.0 rtspsrc location=rtsp://host/stream protocols=tcp name=src \
//!   src. ! rtph264depay ! h264parse ! dub.video_sink \
//!   src. ! rtpmp4gdepay ! aacparse ! dub.audio_sink \
//!   stsdub name=dub sts-url=http://sts:8000 stream-id=match-1 \
//!   dub.video_src ! mux.video  dub.audio_src ! mux.audio \
//!   flvmux name=mux streamable=true ! queue ! rtmpsink location=rtmp://host/live/out
//! ```
//!
//! Lock order: `settings` before `state`; `stream_id` is a leaf, taken last
//! and never held while taking another. Nothing is pushed, posted or raised
//! (`element_imp_error!`, warnings, messages) while `settings` or `state` is
//! held: a bus sync handler runs in the posting thread and may read `stats`
//! (tested). `Condvar::notify_all` is the one call made with `state` held.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::absent::AbsenceWatch;
use super::fragment::{DubbedFrames, FragmentRequest, originals, retimed};
use super::release::{AudioOut, Release, video_release};
use super::settings::*;
use crate::archive::{Archive, VideoCutter, VideoFile};
use crate::buserrors;
use crate::m4a::{self, AacConfig};
use crate::metrics::{self, METRICS};
use crate::runtime::RUNTIME;
use crate::scheduler::{self, Decision, FallbackReason, Outcome, OutputQueue, Ready};
use crate::segmenter::{Frame, Segment, Segmenter};
use crate::sts::breaker::BreakerState;
use crate::sts::protocol::{AUDIO_FORMAT, StreamConfig};
use crate::sts::session::{self, SessionConfig, SessionEvent, SessionHandle};

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "stsdub",
        gst::DebugColorFlags::empty(),
        Some("STS dubbing element"),
    )
});

/// Fragments remembered for log lines: more than can be in flight or late.
const RECENT_FRAGMENTS: usize = 64;

/// How long stopping waits for the archive's last files.
const ARCHIVE_STOP_WAIT: Duration = Duration::from_secs(10);

/// A segment waiting in the output queue, with what identifies it on the wire.
struct QueuedSegment {
    fragment_id: String,
    segment: Segment<gst::Buffer>,
}

/// What can be cancelled while a segment waits for its outcome.
struct Pending {
    deadline: Option<gst::SingleShotClockId>,
    task: tokio::task::AbortHandle,
}

/// The element's two pad pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Track {
    Audio,
    Video,
}

impl Track {
    fn other(self) -> Self {
        match self {
            Track::Audio => Track::Video,
            Track::Video => Track::Audio,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Track::Audio => "audio",
            Track::Video => "video",
        }
    }
}

enum VideoItem {
    Buffer(gst::Buffer),
    Event(gst::Event),
}

struct State {
    settings: Settings,
    session: Option<SessionHandle>,
    aac: Option<AacConfig>,
    audio_segment: gst::FormattedSegment<gst::ClockTime>,
    video_segment: gst::FormattedSegment<gst::ClockTime>,
    segmenter: Segmenter<gst::Buffer>,
    queue: OutputQueue<QueuedSegment, DubbedFrames, gst::Event>,
    pending: HashMap<u64, Pending>,
    /// None until the upstream latency query told us.
    live: Option<bool>,
    upstream_latency: gst::ClockTime,
    /// The latency sinks render with, from the LATENCY event.
    pipeline_latency: Option<gst::ClockTime>,
    audio_flushing: bool,
    video_flushing: bool,
    /// EOS has left on audio_src: video no longer waits for audio.
    audio_done: bool,
    /// Running time up to which audio has left.
    audio_position: Option<gst::ClockTime>,
    video_queue: VecDeque<VideoItem>,
    video_wake: Option<(gst::ClockTime, gst::SingleShotClockId)>,
    discont_pending: bool,
    /// Running time up to which video has left.
    video_position: Option<gst::ClockTime>,
    /// Whether audio / video never comes (see `absent.rs`), each watched
    /// from the other track's input.
    audio_absence: AbsenceWatch,
    video_absence: AbsenceWatch,
    counts: Counts,
    /// The last fragments sent, with their batch: the session knows
    /// fragments only, a log line about one also names its batch.
    recent_fragments: VecDeque<(String, u64)>,
    archive: Option<Archive>,
    video_archive: Option<VideoArchive>,
}

/// The video half of `archive-dir`: frames are cut per batch as they leave.
struct VideoArchive {
    archive: Archive,
    caps: Option<gst::Caps>,
    cutter: VideoCutter<gst::Buffer>,
    /// EOS has left on video_src / the last audio segment is known: the
    /// file under way is written once both are true, since video may end
    /// before the audio's last segments are cut.
    video_ended: bool,
    audio_ended: bool,
}

impl VideoArchive {
    fn new(archive: Archive) -> Self {
        Self {
            archive,
            caps: None,
            cutter: VideoCutter::default(),
            video_ended: false,
            audio_ended: false,
        }
    }

    fn segment_started(&mut self, batch: u64, running_time: gst::ClockTime) {
        let done = self.cutter.segment_started(batch, running_time.nseconds());
        self.write(done);
    }

    /// No audio segment starts after this one.
    fn audio_ended(&mut self) {
        self.audio_ended = true;
        if self.video_ended {
            self.flush();
        }
    }

    /// Takes a copy (a reference) of what leaves on video_src.
    fn on_leaving(&mut self, item: &VideoItem, running_time: Option<gst::ClockTime>) {
        match item {
            VideoItem::Buffer(buffer) => {
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let at = running_time.map_or(0, gst::ClockTime::nseconds);
                let done = self
                    .cutter
                    .push(buffer.clone(), at, keyframe && running_time.is_some());
                self.write(done);
            }
            VideoItem::Event(event) => match event.view() {
                gst::EventView::Caps(caps) if self.caps.as_ref() != Some(&caps.caps_owned()) => {
                    self.flush();
                    self.caps = Some(caps.caps_owned());
                }
                gst::EventView::Eos(_) => {
                    self.video_ended = true;
                    if self.audio_ended {
                        self.flush();
                    }
                }
                _ => {}
            },
        }
    }

    /// Writes the file under way (EOS, caps change, flush, stop).
    fn flush(&mut self) {
        let done = self.cutter.finish();
        self.write(done);
    }

    fn write(&self, files: impl IntoIterator<Item = VideoFile<gst::Buffer>>) {
        let Some(caps) = &self.caps else { return };
        for (batch, frames) in files {
            self.archive.video(batch, caps.clone(), frames);
        }
    }
}

/// What the `stats` property reports.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    segments: u64,
    dubbed: u64,
    fallback: u64,
    late_answers: u64,
    last_round_trip_ms: Option<u64>,
    breaker: Option<BreakerState>,
}

impl Default for State {
    fn default() -> Self {
        let settings = Settings::default();
        Self {
            segmenter: Segmenter::new(settings.segment_duration.nseconds()),
            settings,
            session: None,
            aac: None,
            audio_segment: gst::FormattedSegment::new(),
            video_segment: gst::FormattedSegment::new(),
            queue: OutputQueue::default(),
            pending: HashMap::new(),
            live: None,
            upstream_latency: gst::ClockTime::ZERO,
            pipeline_latency: None,
            audio_flushing: true,
            video_flushing: true,
            audio_done: false,
            audio_position: None,
            video_queue: VecDeque::new(),
            video_wake: None,
            discont_pending: true,
            video_position: None,
            audio_absence: AbsenceWatch::default(),
            video_absence: AbsenceWatch::default(),
            counts: Counts::default(),
            recent_fragments: VecDeque::new(),
            archive: None,
            video_archive: None,
        }
    }
}

impl State {
    /// Cancels every wait and task, forgets queued audio (flush or stop).
    fn abandon_audio(&mut self) {
        for (_, pending) in self.pending.drain() {
            if let Some(deadline) = pending.deadline {
                deadline.unschedule();
            }
            pending.task.abort();
        }
        self.queue.clear();
        self.segmenter.discard();
        self.audio_position = None;
        self.audio_done = false;
        self.discont_pending = true;
    }

    fn abandon_video(&mut self) {
        // What has left is archived, even when the rest is flushed.
        if let Some(archive) = &mut self.video_archive {
            archive.flush();
        }
        self.video_queue.clear();
        if let Some((_, id)) = self.video_wake.take() {
            id.unschedule();
        }
    }

    fn set_flushing(&mut self, track: Track, flushing: bool) {
        match track {
            Track::Audio => self.audio_flushing = flushing,
            Track::Video => self.video_flushing = flushing,
        }
    }

    fn abandon(&mut self, track: Track) {
        match track {
            Track::Audio => self.abandon_audio(),
            Track::Video => self.abandon_video(),
        }
    }

    /// Queues a serialized event to leave in order with the track's data.
    fn queue_event(&mut self, track: Track, event: gst::Event) {
        match track {
            Track::Audio => self.queue.push_event(event),
            Track::Video => self.video_queue.push_back(VideoItem::Event(event)),
        }
    }

    fn set_segment(&mut self, track: Track, segment: gst::FormattedSegment<gst::ClockTime>) {
        match track {
            Track::Audio => self.audio_segment = segment,
            Track::Video => self.video_segment = segment,
        }
    }

    /// The latency segments are decided against: the pipeline's (from the
    /// LATENCY event) when sinks render with it, but never less than what
    /// this element promised upstream + `latency`: sinks that do not sync
    /// (filesink, appsink sync=false) make the pipeline latency 0.
    fn render_latency(&self) -> gst::ClockTime {
        let ours = self.upstream_latency + self.settings.latency;
        self.pipeline_latency
            .map_or(ours, |pipeline| pipeline.max(ours))
    }

    /// Running time of the first video item still queued.
    fn video_head_running_time(&self) -> Option<gst::ClockTime> {
        match self.video_queue.front()? {
            VideoItem::Buffer(buffer) => self.video_running_time(buffer),
            VideoItem::Event(_) => None,
        }
    }

    /// `worker_inflight_fragments`: segments out for dubbing, whose outcome
    /// is not known yet; updated as each is sent and decided.
    fn publish_inflight(&self) {
        METRICS
            .inflight_fragments
            .with_label_values(&[&self.settings.stream_id])
            .set(self.queue.undecided() as i64);
    }

    /// Running time of an audio timestamp; one before the segment start (an
    /// AAC priming frame at -21 ms) counts as the segment start.
    fn audio_running_time(&self, pts: gst::ClockTime) -> Option<gst::ClockTime> {
        let start = self.audio_segment.start().unwrap_or(gst::ClockTime::ZERO);
        self.audio_segment.to_running_time(pts.max(start))
    }

    fn video_running_time(&self, buffer: &gst::Buffer) -> Option<gst::ClockTime> {
        self.video_segment.to_running_time(buffer.dts_or_pts()?)
    }

    fn absence(&mut self, track: Track) -> &mut AbsenceWatch {
        match track {
            Track::Audio => &mut self.audio_absence,
            Track::Video => &mut self.video_absence,
        }
    }
}

pub struct StsDub {
    audio_sink: gst::Pad,
    audio_src: gst::Pad,
    video_sink: gst::Pad,
    video_src: gst::Pad,
    settings: Mutex<Settings>,
    /// `stream-id` again, for the bus-error tracer: it reads it from any
    /// thread, even while this element posts an error with `settings` or
    /// `state` held, so it has a lock of its own that is never held longer.
    stream_id: Mutex<String>,
    state: Mutex<State>,
    /// Wakes the src pad tasks and blocked chain functions on any state change.
    changed: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the stream down with a poisoned lock.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the `stsdub-segment` message says of one segment.
struct SegmentReport<'a> {
    stream_id: &'a str,
    batch: u64,
    fragment_id: &'a str,
    /// Round trip and sequence number of a dubbed segment.
    dubbed: Option<(Duration, u64)>,
    reason: Option<FallbackReason>,
    lateness_ms: Option<f64>,
}

impl StsDub {
    /// Serves /metrics for the process, or says which endpoint already does.
    fn serve_metrics(&self, address: &str, stream_id: &str) -> Result<(), gst::StateChangeError> {
        match metrics::serve(RUNTIME.handle(), address) {
            Err(e) => {
                self.post_error_message(gst::error_msg!(
                    gst::ResourceError::OpenReadWrite,
                    ["property {PROP_METRICS_ADDRESS}: cannot serve /metrics on {address}: {e}"]
                ));
                return Err(gst::StateChangeError);
            }
            Ok(metrics::Endpoint::Bound(bound)) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id}: /metrics served on {bound}"
                );
            }
            Ok(metrics::Endpoint::AlreadyServed(bound)) => {
                if address
                    .parse()
                    .is_ok_and(|asked: std::net::SocketAddr| asked != bound)
                {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "stream {stream_id}: /metrics is already served on {bound} for this process; {PROP_METRICS_ADDRESS} {address} not used"
                    );
                }
            }
        }
        Ok(())
    }

    pub(super) fn stream_id(&self) -> String {
        lock(&self.stream_id).clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // ----- audio in -------------------------------------------------------

    fn audio_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.state().live.is_none() {
            self.query_upstream_latency(Track::Audio);
        }
        let mut state = self.state();
        if state.audio_flushing {
            return Err(gst::FlowError::Flushing);
        }
        if state.audio_absence.declared() {
            return Err(self.late_for_absent_track(&state, Track::Audio));
        }
        let Some(aac) = state.aac.clone() else {
            // Never post with `state` held: a bus sync handler may read stats.
            drop(state);
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ["audio buffer before caps"]
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let frame_duration = gst::ClockTime::SECOND
            .mul_div_floor(
                u64::from(m4a::AAC_FRAME_SAMPLES),
                u64::from(aac.sample_rate),
            )
            .unwrap_or(gst::ClockTime::ZERO);
        let discont = buffer.flags().contains(gst::BufferFlags::DISCONT);
        let Some(pts) = buffer.pts() else {
            gst::warning!(
                CAT,
                imp = self,
                "stream {}: dropping an audio frame without timestamp",
                state.settings.stream_id
            );
            return Ok(gst::FlowSuccess::Ok);
        };
        let duration = buffer.duration().unwrap_or(frame_duration);
        gst::trace!(CAT, imp = self, "audio frame {pts} ({duration})");
        let frame = Frame {
            pts: pts.nseconds(),
            duration: duration.nseconds(),
            data: buffer,
        };
        for segment in state.segmenter.push(frame, discont) {
            self.dispatch(&mut state, segment);
        }
        let running_time = state.audio_running_time(pts);
        self.watch_absence(&mut state, Track::Video, running_time);
        // A file must not be read into memory faster than the STS answers.
        // The only wait on a sink pad: it ends as segments are decided, which
        // the STS answer or the timeout does, never the video pad's input
        // nor anything downstream.
        let bound = state.settings.max_inflight as usize + 1;
        while state.live == Some(false) && state.queue.undecided() > bound && !state.audio_flushing
        {
            state = self.wait(state);
        }
        if state.audio_flushing {
            return Err(gst::FlowError::Flushing);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Asks upstream of `track` whether it is live. The audio's answer also
    /// gives the upstream latency deadlines are set against; the video's is
    /// asked only until audio has answered (audio may never come).
    fn query_upstream_latency(&self, track: Track) {
        let mut query = gst::query::Latency::new();
        let (live, min) = if self.sink_pad(track).peer_query(&mut query) {
            let (live, min, _) = query.result();
            (live, min)
        } else {
            (false, gst::ClockTime::ZERO)
        };
        let mut state = self.state();
        if track == Track::Video {
            state.live.get_or_insert(live);
            return;
        }
        if state.live.is_none() {
            gst::info!(
                CAT,
                imp = self,
                "stream {}: upstream is {}live, latency {min}",
                state.settings.stream_id,
                if live { "" } else { "not " }
            );
        }
        state.live = Some(live);
        state.upstream_latency = min;
    }

    /// Queues a complete segment for output and starts dubbing it.
    fn dispatch(&self, state: &mut State, segment: Segment<gst::Buffer>) {
        let Some(aac) = state.aac.clone() else { return };
        let fragment_id = uuid::Uuid::new_v4().to_string();
        let batch = segment.batch;
        let frames: Vec<gst::Buffer> = segment.frames.iter().map(|f| f.data.clone()).collect();
        let start = gst::ClockTime::from_nseconds(segment.start());
        let duration = gst::ClockTime::from_nseconds(segment.duration());
        gst::debug!(
            CAT,
            imp = self,
            "stream {} batch {batch} fragment {fragment_id}: segment {start} + {duration}, {} frames",
            state.settings.stream_id,
            frames.len()
        );
        let fragment = FragmentRequest {
            stream_id: state.settings.stream_id.clone(),
            fragment_id: fragment_id.clone(),
            batch,
            pts_ns: start.nseconds(),
            duration_ms: duration.mseconds(),
            frames,
            aac,
            archive: state.archive.clone(),
            deadline: std::time::Instant::now() + Duration::from(state.settings.timeout),
        };
        let running_start = state.audio_running_time(start);
        if let (Some(archive), Some(at)) = (&mut state.video_archive, running_start) {
            archive.segment_started(batch, at);
        }
        if state.recent_fragments.len() == RECENT_FRAGMENTS {
            state.recent_fragments.pop_front();
        }
        state
            .recent_fragments
            .push_back((fragment_id.clone(), batch));
        state.queue.push_segment(
            batch,
            QueuedSegment {
                fragment_id,
                segment,
            },
        );
        let Some(session) = state.session.clone() else {
            self.decide_locked(
                state,
                batch,
                Outcome::Original(FallbackReason::Disconnected),
            );
            return;
        };
        let Some(reply) = fragment.submit(&session) else {
            gst::warning!(
                CAT,
                imp = self,
                "{}: segment frames unreadable, original audio goes out",
                fragment.label()
            );
            self.decide_locked(
                state,
                batch,
                Outcome::Original(FallbackReason::InvalidReply),
            );
            return;
        };
        let element = self.obj().downgrade();
        let task = RUNTIME.spawn(async move {
            let (batch, outcome) = fragment.outcome(reply).await;
            if let Some(element) = element.upgrade() {
                element.imp().decide(batch, outcome);
            }
        });
        let deadline = if state.live == Some(true) {
            self.schedule_deadline(state, batch, start)
        } else {
            None
        };
        state.pending.insert(
            batch,
            Pending {
                deadline,
                task: task.abort_handle(),
            },
        );
        state.publish_inflight();
    }

    /// Arms the live deadline: at it, whatever has not been answered falls back.
    fn schedule_deadline(
        &self,
        state: &State,
        batch: u64,
        start: gst::ClockTime,
    ) -> Option<gst::SingleShotClockId> {
        let clock = self.obj().clock()?;
        let running_start = state.audio_running_time(start)?;
        let deadline =
            scheduler::decision_deadline(running_start.into(), state.render_latency().into());
        let at =
            self.obj().base_time()? + gst::ClockTime::from_nseconds(deadline.as_nanos() as u64);
        gst::debug!(
            CAT,
            imp = self,
            "stream {} batch {batch}: decision deadline at clock time {at}",
            state.settings.stream_id
        );
        let id = clock.new_single_shot_id(at);
        let element = self.obj().downgrade();
        let scheduled = id.wait_async(move |_, _, _| {
            if let Some(element) = element.upgrade() {
                element
                    .imp()
                    .decide(batch, Outcome::Original(FallbackReason::Deadline));
            }
        });
        scheduled.ok().map(|_| id)
    }

    fn decide(&self, batch: u64, outcome: Outcome<DubbedFrames>) {
        let mut state = self.state();
        self.decide_locked(&mut state, batch, outcome);
    }

    fn decide_locked(&self, state: &mut State, batch: u64, outcome: Outcome<DubbedFrames>) {
        let deadline_passed = matches!(outcome, Outcome::Original(FallbackReason::Deadline));
        match state.queue.decide(batch, outcome) {
            Decision::Taken => {
                if let Some(pending) = state.pending.remove(&batch) {
                    if let Some(deadline) = pending.deadline {
                        deadline.unschedule();
                    }
                    if deadline_passed {
                        // Drop the request: unsent it is never sent, an answer is ignored.
                        pending.task.abort();
                    }
                }
                state.publish_inflight();
                self.changed.notify_all();
            }
            Decision::TooLate => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "stream {} batch {batch}: answer came after the deadline; consider increasing latency",
                    state.settings.stream_id
                );
            }
            Decision::Unknown => {}
        }
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        let track = self.track(pad);
        gst::log!(CAT, obj = pad, "{track:?} event {event:?}");
        if event.is_serialized() && self.state().absence(track).declared() {
            gst::debug!(
                CAT,
                obj = pad,
                "{track:?} was declared absent: dropping {event:?}"
            );
            return true;
        }
        match event.view() {
            EventView::StreamStart(_) => {
                let mut state = self.state();
                state.absence(track).started();
                state.queue_event(track, event);
                self.changed.notify_all();
                true
            }
            EventView::FlushStart(_) => {
                {
                    let mut state = self.state();
                    state.set_flushing(track, true);
                    state.abandon(track);
                    self.changed.notify_all();
                }
                let forwarded = self.src_pad(track).push_event(event);
                let _ = self.src_pad(track).pause_task();
                forwarded
            }
            EventView::FlushStop(_) => {
                let forwarded = self.src_pad(track).push_event(event);
                {
                    let mut state = self.state();
                    state.abandon(track);
                    // Stream-start and caps may have been queued and dropped
                    // before they left: send them again ahead of new data.
                    for sticky in stream_identity(pad) {
                        state.queue_event(track, sticky);
                    }
                    state.set_flushing(track, false);
                }
                self.start_task(track);
                forwarded
            }
            EventView::Segment(segment) => {
                let Some(segment) = segment.segment().downcast_ref::<gst::ClockTime>().cloned()
                else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ["{track:?} segment is not in TIME format"]
                    );
                    return false;
                };
                let mut state = self.state();
                state.set_segment(track, segment);
                state.queue_event(track, event);
                self.changed.notify_all();
                true
            }
            EventView::Caps(caps) if track == Track::Audio => {
                match aac_config_from_caps(caps.caps()) {
                    Ok(config) => self.on_audio_caps(config, event),
                    Err(message) => {
                        gst::element_imp_error!(self, gst::StreamError::Format, ["{message}"]);
                        false
                    }
                }
            }
            EventView::Eos(_) => {
                let mut state = self.state();
                if track == Track::Audio {
                    if let Some(last) = state.segmenter.finish() {
                        self.dispatch(&mut state, last);
                    }
                    if let Some(archive) = &mut state.video_archive {
                        archive.audio_ended();
                    }
                }
                let other = track.other();
                if state.absence(other).other_ended(|| self.dangling(other)) {
                    self.declare_absent(&mut state, other);
                }
                state.queue_event(track, event);
                self.changed.notify_all();
                true
            }
            _ if event.is_serialized() => {
                let mut state = self.state();
                state.queue_event(track, event);
                self.changed.notify_all();
                true
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn on_audio_caps(&self, config: AacConfig, event: gst::Event) -> bool {
        let mut state = self.state();
        if state.aac.as_ref() == Some(&config) {
            return true;
        }
        if state.aac.is_some() {
            // New format: what was cut so far is one segment of the old one.
            if let Some(last) = state.segmenter.finish() {
                self.dispatch(&mut state, last);
            }
        }
        gst::info!(
            CAT,
            imp = self,
            "stream {}: AAC object type {}, {} Hz, {} channels",
            state.settings.stream_id,
            config.object_type,
            config.sample_rate,
            config.channels
        );
        if state.session.is_none() {
            let session = self.start_session(&state.settings, &config);
            state.session = Some(session);
        }
        state.aac = Some(config);
        state.queue.push_event(event);
        self.changed.notify_all();
        true
    }

    fn start_session(&self, settings: &Settings, aac: &AacConfig) -> SessionHandle {
        let config = SessionConfig {
            url: settings.sts_url.clone(),
            stream_id: settings.stream_id.clone(),
            worker_id: settings.worker_id.clone(),
            stream: StreamConfig {
                source_language: settings.source_language.clone(),
                target_language: settings.target_language.clone(),
                voice_profile: settings.voice_profile.clone(),
                format: AUDIO_FORMAT.into(),
                sample_rate_hz: aac.sample_rate,
                channels: aac.channels,
                chunk_duration_ms: settings.segment_duration.mseconds() as u32,
            },
            max_inflight: settings.max_inflight,
            timeout: settings.timeout.into(),
            backoff: session::doubling_backoff(
                settings.reconnect_delay.into(),
                settings.reconnect_attempts,
            ),
            give_up: settings.error_after_reconnects,
            breaker_threshold: settings.breaker_threshold,
            breaker_cooldown: settings.breaker_cooldown.into(),
            auth_token: settings.auth_token.clone(),
            tls_ca_file: settings.tls_ca_file.clone().map(Into::into),
            traffic: metrics::traffic(&settings.stream_id),
        };
        let element = self.obj().downgrade();
        let stream_id = settings.stream_id.clone();
        SessionHandle::start(
            RUNTIME.handle(),
            config,
            std::sync::Arc::new(move |event| {
                if let Some(element) = element.upgrade() {
                    element.imp().on_session_event(&stream_id, event);
                }
            }),
        )
    }

    fn on_session_event(&self, stream_id: &str, event: SessionEvent) {
        match event {
            SessionEvent::Connected {
                session_id,
                max_inflight,
            } => {
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id}: STS session {session_id} ready, max in flight {max_inflight}"
                );
            }
            SessionEvent::ConnectFailed { error, retry_in } => {
                METRICS
                    .reconnects_total
                    .with_label_values(&[stream_id])
                    .inc();
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::OpenReadWrite,
                    ("STS unreachable, original audio goes out"),
                    [
                        "stream {stream_id}: {error}; retrying in {} s",
                        retry_in.as_secs()
                    ]
                );
            }
            SessionEvent::Disconnected { reason } => {
                METRICS
                    .reconnects_total
                    .with_label_values(&[stream_id])
                    .inc();
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Read,
                    ("STS connection lost, original audio goes out"),
                    ["stream {stream_id}: {reason}"]
                );
            }
            SessionEvent::LateAnswer { fragment_id } => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "{}: answer after the fragment fell back (or for one never sent) ignored; consider increasing latency",
                    self.fragment_label(stream_id, &fragment_id)
                );
                self.state().counts.late_answers += 1;
                METRICS
                    .late_answers_total
                    .with_label_values(&[stream_id])
                    .inc();
                let structure = gst::Structure::builder("stsdub-late-answer")
                    .field("stream-id", stream_id)
                    .field("fragment-id", fragment_id)
                    .build();
                let message = gst::message::Element::builder(structure)
                    .src(&*self.obj())
                    .build();
                let _ = self.obj().post_message(message);
            }
            SessionEvent::Warning {
                fragment_id,
                message,
            } => {
                let about = match &fragment_id {
                    Some(id) => self.fragment_label(stream_id, id),
                    None => format!("stream {stream_id}"),
                };
                gst::warning!(CAT, imp = self, "{about}: {message}");
            }
            SessionEvent::Completed {
                total_fragments,
                statistics,
            } => {
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id}: STS stream complete, {total_fragments:?} fragments, statistics {statistics:?}"
                );
            }
            SessionEvent::BreakerChanged { state } => self.on_breaker_changed(stream_id, state),
            SessionEvent::Backpressure { action } => {
                let name = action.as_str();
                METRICS
                    .backpressure_total
                    .with_label_values(&[stream_id, name])
                    .inc();
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id}: STS backpressure {action:?}"
                );
            }
            SessionEvent::GaveUp { attempts, error } => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::OpenReadWrite,
                    ("STS unreachable after {attempts} attempts"),
                    ["stream {stream_id}: {error}; {PROP_ERROR_AFTER_RECONNECTS} is set"]
                );
            }
        }
    }

    /// "stream S batch B fragment F", without the batch for a fragment id
    /// we never sent (or sent too long ago).
    fn fragment_label(&self, stream_id: &str, fragment_id: &str) -> String {
        let state = self.state();
        match state
            .recent_fragments
            .iter()
            .find(|(id, _)| id == fragment_id)
        {
            Some((_, batch)) => format!("stream {stream_id} batch {batch} fragment {fragment_id}"),
            None => format!("stream {stream_id} fragment {fragment_id}"),
        }
    }

    /// Breaker transitions are logged and posted, so apps and operators see
    /// why segments fall back.
    fn on_breaker_changed(&self, stream_id: &str, state: BreakerState) {
        self.state().counts.breaker = Some(state);
        METRICS
            .sts_breaker_state
            .with_label_values(&[stream_id])
            .set(state as i64);
        if state == BreakerState::Closed {
            gst::info!(
                CAT,
                imp = self,
                "stream {stream_id}: circuit breaker closed, dubbing resumes"
            );
        } else {
            gst::warning!(
                CAT,
                imp = self,
                "stream {stream_id}: circuit breaker {}, original audio goes out",
                state.as_str()
            );
        }
        let structure = gst::Structure::builder("stsdub-breaker")
            .field("stream-id", stream_id)
            .field("state", state.as_str())
            .field("state-code", state as i32)
            .build();
        let message = gst::message::Element::builder(structure)
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(message);
    }

    // ----- audio out ------------------------------------------------------

    fn start_task(&self, track: Track) {
        let element = self.obj().downgrade();
        let result = self.src_pad(track).start_task(move || {
            if let Some(element) = element.upgrade() {
                match track {
                    Track::Audio => element.imp().audio_loop(),
                    Track::Video => element.imp().video_loop(),
                }
            }
        });
        if let Err(err) = result {
            gst::error!(
                CAT,
                imp = self,
                "cannot start the {track:?} output task: {err}"
            );
        }
    }

    /// One iteration of the audio_src task: the next decided item leaves.
    fn audio_loop(&self) {
        let mut state = self.state();
        let ready = loop {
            if state.audio_flushing {
                drop(state);
                let _ = self.audio_src.pause_task();
                return;
            }
            if let Some(ready) = state.queue.pop_ready() {
                break ready;
            }
            state = self.wait(state);
        };
        let discont = std::mem::replace(&mut state.discont_pending, false);
        let session = state.session.clone();
        let stream_id = state.settings.stream_id.clone();
        drop(state);

        let result = match ready {
            Ready::Event(event) => self.push_audio_event(event, session.as_ref()),
            Ready::Segment {
                batch,
                segment,
                outcome,
            } => self.push_segment(
                &stream_id,
                batch,
                segment,
                outcome,
                discont,
                session.as_ref(),
            ),
        };
        if let Err(err) = result {
            self.on_push_error(&self.audio_src, err);
        }
    }

    fn push_audio_event(
        &self,
        event: gst::Event,
        session: Option<&SessionHandle>,
    ) -> Result<(), gst::FlowError> {
        let eos = event.type_() == gst::EventType::Eos;
        self.audio_src.push_event(event);
        if eos {
            if let Some(session) = session {
                session.end();
            }
            let mut state = self.state();
            state.audio_done = true;
            self.changed.notify_all();
            return Err(gst::FlowError::Eos);
        }
        Ok(())
    }

    fn push_segment(
        &self,
        stream_id: &str,
        batch: u64,
        queued: QueuedSegment,
        outcome: Outcome<DubbedFrames>,
        discont: bool,
        session: Option<&SessionHandle>,
    ) -> Result<(), gst::FlowError> {
        let QueuedSegment {
            fragment_id,
            segment,
        } = queued;
        let reason = match &outcome {
            Outcome::Dubbed(_) => None,
            Outcome::Original(reason) => Some(*reason),
        };
        let lateness_ms = self.account(stream_id, &outcome, segment.start());
        let (buffers, dubbed) = match outcome {
            Outcome::Dubbed(dubbed) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {stream_id} batch {batch} fragment {fragment_id}: dubbed ({:?}, round trip {} ms)",
                    dubbed.fit,
                    dubbed.round_trip.as_millis()
                );
                let report = Some((dubbed.round_trip, dubbed.sequence_number));
                (retimed(&segment, dubbed.frames), report)
            }
            Outcome::Original(reason) => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "stream {stream_id} batch {batch} fragment {fragment_id}: original audio ({})",
                    reason.as_str()
                );
                (originals(segment), None)
            }
        };
        let report = SegmentReport {
            stream_id,
            batch,
            fragment_id: &fragment_id,
            dubbed,
            reason,
            lateness_ms,
        };
        self.post_segment_message(&report, &buffers);
        for (index, mut buffer) in buffers.into_iter().enumerate() {
            if discont && index == 0 {
                buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
            }
            self.advance_audio_position(&buffer);
            self.audio_src.push(buffer)?;
        }
        if dubbed.is_some()
            && let Some(session) = session
        {
            session.applied(fragment_id);
        }
        Ok(())
    }

    /// Counts a segment that is about to leave (stats and metrics) and
    /// returns how late it leaves against its live deadline, in ms.
    fn account(&self, stream_id: &str, outcome: &Outcome<DubbedFrames>, start: u64) -> Option<f64> {
        let mut state = self.state();
        let counts = &mut state.counts;
        counts.segments += 1;
        let m = &*METRICS;
        m.fragments_total.with_label_values(&[stream_id]).inc();
        match outcome {
            Outcome::Dubbed(dubbed) => {
                counts.dubbed += 1;
                counts.last_round_trip_ms = Some(dubbed.round_trip.as_millis() as u64);
                m.dubbed_total.with_label_values(&[stream_id]).inc();
                m.sts_rtt_ms
                    .with_label_values(&[stream_id])
                    .observe(dubbed.round_trip.as_secs_f64() * 1000.0);
            }
            Outcome::Original(reason) => {
                counts.fallback += 1;
                m.fallback_total
                    .with_label_values(&[stream_id, reason.as_str()])
                    .inc();
            }
        }
        state.publish_inflight();
        if let (Some(audio), Some(video)) = (state.audio_position, state.video_position) {
            let delta_ms = (audio.nseconds() as f64 - video.nseconds() as f64) / 1e6;
            m.av_sync_delta_ms
                .with_label_values(&[stream_id])
                .set(delta_ms);
        }
        m.latency_ms
            .with_label_values(&[stream_id])
            .set(state.render_latency().mseconds() as i64);
        self.lateness_ms(&state, start)
    }

    fn lateness_ms(&self, state: &State, start: u64) -> Option<f64> {
        if state.live != Some(true) {
            return None;
        }
        let now = self.obj().current_running_time()?;
        let running_start = state.audio_running_time(gst::ClockTime::from_nseconds(start))?;
        let deadline =
            scheduler::decision_deadline(running_start.into(), state.render_latency().into());
        Some((now.nseconds() as f64 - deadline.as_nanos() as f64) / 1e6)
    }

    /// Lets video up to this audio buffer's end leave.
    fn advance_audio_position(&self, buffer: &gst::Buffer) {
        let mut state = self.state();
        let end = buffer
            .pts()
            .map(|pts| pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO));
        if let Some(end) = end.and_then(|end| state.audio_segment.to_running_time(end)) {
            state.audio_position = Some(end);
            self.changed.notify_all();
        }
    }

    fn advance_video_position(&self, buffer: &gst::Buffer) {
        let mut state = self.state();
        let end = buffer
            .pts()
            .map(|pts| pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO));
        if let Some(end) = end.and_then(|end| state.video_segment.to_running_time(end)) {
            state.video_position = Some(end);
        }
    }

    /// The `stats` structure: counts, and the A/V delta of what has left
    /// (audio running time minus video running time, from the PTS pushed).
    fn stats(&self) -> gst::Structure {
        let state = self.state();
        let counts = state.counts;
        let delta_ms = match (state.audio_position, state.video_position) {
            (Some(audio), Some(video)) => (audio.nseconds() as f64 - video.nseconds() as f64) / 1e6,
            _ => 0.0,
        };
        gst::Structure::builder("application/x-stsdub-stats")
            .field("stream-id", state.settings.stream_id.as_str())
            .field("segments", counts.segments)
            .field("dubbed", counts.dubbed)
            .field("fallback", counts.fallback)
            .field("late-answers", counts.late_answers)
            .field(
                "last-round-trip-ms",
                counts.last_round_trip_ms.map_or(-1i64, |ms| ms as i64),
            )
            .field("av-sync-delta-ms", delta_ms)
            .field("latency-ms", state.render_latency().mseconds())
            .field(
                "breaker-state",
                counts.breaker.unwrap_or(BreakerState::Closed).as_str(),
            )
            .build()
    }

    fn post_segment_message(&self, report: &SegmentReport, buffers: &[gst::Buffer]) {
        let &SegmentReport {
            stream_id,
            batch,
            fragment_id,
            dubbed,
            reason,
            lateness_ms,
        } = report;
        let round_trip = dubbed.map(|(round_trip, _)| round_trip);
        let structure = gst::Structure::builder("stsdub-segment")
            .field("stream-id", stream_id)
            .field("fragment-id", fragment_id)
            .field("batch", batch)
            .field(
                "status",
                if round_trip.is_some() {
                    "dubbed"
                } else {
                    "fallback"
                },
            )
            .field("reason", reason.map_or("", FallbackReason::as_str))
            .field(
                "round-trip-ms",
                round_trip.map_or(-1i64, |rt| rt.as_millis() as i64),
            )
            .field(
                "sequence-number",
                dubbed.map_or(-1i64, |(_, sequence)| sequence as i64),
            )
            .field("lateness-ms", lateness_ms.unwrap_or(0.0))
            .field("frames", buffers.len() as u32)
            .field(
                "pts",
                buffers
                    .first()
                    .and_then(|b| b.pts())
                    .map_or(0, |pts| pts.nseconds()),
            )
            .build();
        let _ = self.obj().post_message(
            gst::message::Element::builder(structure)
                .src(&*self.obj())
                .build(),
        );
    }

    fn on_push_error(&self, pad: &gst::Pad, err: gst::FlowError) {
        gst::debug!(CAT, obj = pad, "pausing task: {err:?}");
        let _ = pad.pause_task();
        if matches!(err, gst::FlowError::Flushing | gst::FlowError::Eos) {
            return;
        }
        gst::element_imp_error!(
            self,
            gst::StreamError::Failed,
            ["streaming stopped, reason {err:?}"]
        );
        pad.push_event(gst::event::Eos::new());
    }

    // ----- video ----------------------------------------------------------

    /// Never waits: see `release.rs` for why video must not wait for audio.
    fn video_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.state().live.is_none() {
            self.query_upstream_latency(Track::Video);
        }
        let mut state = self.state();
        if state.video_flushing {
            return Err(gst::FlowError::Flushing);
        }
        if state.video_absence.declared() {
            return Err(self.late_for_absent_track(&state, Track::Video));
        }
        let running_time = state.video_running_time(&buffer);
        state.video_queue.push_back(VideoItem::Buffer(buffer));
        self.watch_absence(&mut state, Track::Audio, running_time);
        self.changed.notify_all();
        Ok(gst::FlowSuccess::Ok)
    }

    // ----- a track that never comes --------------------------------------

    /// No data can come to `track`'s sink pad as the pipeline stands: its
    /// branch ends upstream in a pad that is not linked.
    fn dangling(&self, track: Track) -> bool {
        !reaches_a_source(self.sink_pad(track), 0)
    }

    /// The other track's input reached `running_time`: is `track` absent?
    fn watch_absence(&self, state: &mut State, track: Track, running_time: Option<gst::ClockTime>) {
        if state
            .absence(track)
            .input_at(running_time, || self.dangling(track))
        {
            self.declare_absent(state, track);
        }
    }

    /// Ends `track`'s output before it began, so downstream stops waiting.
    fn declare_absent(&self, state: &mut State, track: Track) {
        let present = self.sink_pad(track.other());
        gst::info!(
            CAT,
            imp = self,
            "stream {}: no {} ({}_sink unlinked and silent while {} ran {}); {}_src ends",
            state.settings.stream_id,
            track.name(),
            track.name(),
            track.other().name(),
            super::absent::ABSENT_AFTER,
            track.name(),
        );
        let upstream = present.sticky_event::<gst::event::StreamStart>(0);
        let stream_id = format!(
            "{}/stsdub-no-{}",
            upstream.as_ref().map_or("stsdub", |s| s.stream_id()),
            track.name()
        );
        let mut stream_start = gst::event::StreamStart::builder(&stream_id);
        if let Some(group) = upstream.and_then(|s| s.group_id()) {
            stream_start = stream_start.group_id(group);
        }
        let segment = match track.other() {
            Track::Audio => state.audio_segment.clone(),
            Track::Video => state.video_segment.clone(),
        };
        state.queue_event(track, stream_start.build());
        state.queue_event(track, gst::event::Segment::new(&segment));
        state.queue_event(track, gst::event::Eos::new());
        if track == Track::Audio
            && let Some(archive) = &mut state.video_archive
        {
            archive.audio_ended();
        }
        self.changed.notify_all();
    }

    /// Input on a track already declared absent: dropped, once with a
    /// warning (a stream that began more than `ABSENT_AFTER` late).
    fn late_for_absent_track(&self, state: &State, track: Track) -> gst::FlowError {
        gst::warning!(
            CAT,
            imp = self,
            "stream {}: {} arrived after it was taken to be absent; dropped",
            state.settings.stream_id,
            track.name()
        );
        gst::FlowError::Eos
    }

    /// One iteration of the video_src task: the head leaves once the audio of
    /// its instant has left, or, live, once its render time is near.
    fn video_loop(&self) {
        let mut state = self.state();
        let item = loop {
            if state.video_flushing {
                drop(state);
                let _ = self.video_src.pause_task();
                return;
            }
            if self.video_head_may_leave(&mut state) {
                let head = state.video_head_running_time();
                if let Some(item) = state.video_queue.pop_front() {
                    // A wake armed for this head is moot now; the next head
                    // arms its own.
                    if let Some((_, wake)) = state.video_wake.take() {
                        wake.unschedule();
                    }
                    if let Some(archive) = &mut state.video_archive {
                        archive.on_leaving(&item, head);
                    }
                    break item;
                }
            }
            state = self.wait(state);
        };
        self.changed.notify_all();
        drop(state);
        let result = match item {
            VideoItem::Buffer(buffer) => {
                self.advance_video_position(&buffer);
                self.video_src.push(buffer).map(|_| ())
            }
            VideoItem::Event(event) => {
                let eos = event.type_() == gst::EventType::Eos;
                self.video_src.push_event(event);
                if eos {
                    Err(gst::FlowError::Eos)
                } else {
                    Ok(())
                }
            }
        };
        if let Err(err) = result {
            self.on_push_error(&self.video_src, err);
        }
    }

    /// Whether the video head may leave now; arms a clock wake for a head
    /// that may leave later (see `release.rs`).
    fn video_head_may_leave(&self, state: &mut State) -> bool {
        if state.video_queue.is_empty() {
            return false;
        }
        let head = state.video_head_running_time();
        let clock = self.obj().clock();
        let live_due = match (state.live, head, &clock, self.obj().base_time()) {
            (Some(true), Some(head), Some(_), Some(base_time)) => {
                Some(base_time + head + state.render_latency().saturating_sub(deadline_margin()))
            }
            _ => None,
        };
        let audio = AudioOut {
            position: state.audio_position,
            done: state.audio_done,
        };
        let now = clock.as_ref().map(|clock| clock.time());
        match (video_release(head, audio, live_due, now), clock) {
            (Release::At(due), Some(clock)) => {
                self.arm_video_wake(state, &clock, due);
                false
            }
            _ => true,
        }
    }

    fn arm_video_wake(&self, state: &mut State, clock: &gst::Clock, due: gst::ClockTime) {
        if state.video_wake.as_ref().is_some_and(|(at, _)| *at == due) {
            return;
        }
        if let Some((_, old)) = state.video_wake.take() {
            old.unschedule();
        }
        let id = clock.new_single_shot_id(due);
        let element = self.obj().downgrade();
        let scheduled = id.wait_async(move |_, _, _| {
            if let Some(element) = element.upgrade() {
                let imp = element.imp();
                let _guard = imp.state();
                imp.changed.notify_all();
            }
        });
        if scheduled.is_ok() {
            state.video_wake = Some((due, id));
        }
    }

    // ----- queries and activation ----------------------------------------

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(latency) = query.view_mut() {
            let track = self.track(pad);
            let sink = self.sink_pad(track);
            let mut upstream = gst::query::Latency::new();
            if !sink.peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = {
                let mut state = self.state();
                if track == Track::Audio {
                    state.live = Some(live);
                    state.upstream_latency = min;
                }
                state.settings.latency
            };
            if live {
                latency.set(true, min + ours, max.map(|max| max + ours));
            } else {
                latency.set(false, min, max);
            }
            gst::debug!(
                CAT,
                obj = pad,
                "latency query: live {live}, min {}",
                min + ours
            );
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        if let gst::EventView::Latency(latency) = event.view() {
            let mut state = self.state();
            state.pipeline_latency = Some(latency.latency());
            gst::debug!(CAT, obj = pad, "pipeline latency {}", latency.latency());
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    fn internal_link(&self, pad: &gst::Pad) -> gst::Iterator<gst::Pad> {
        let track = self.track(pad);
        let other = if pad.direction() == gst::PadDirection::Sink {
            self.src_pad(track)
        } else {
            self.sink_pad(track)
        };
        gst::Iterator::from_vec(vec![other.clone()])
    }

    fn activate_src(&self, pad: &gst::Pad, active: bool) -> Result<(), gst::LoggableError> {
        let track = self.track(pad);
        {
            let mut state = self.state();
            state.set_flushing(track, !active);
            if !active {
                state.abandon(track);
            }
            self.changed.notify_all();
        }
        if active {
            self.start_task(track);
        } else {
            pad.stop_task()
                .map_err(|err| gst::loggable_error!(CAT, "cannot stop task: {err}"))?;
        }
        Ok(())
    }

    fn track(&self, pad: &gst::Pad) -> Track {
        if pad == &self.audio_sink || pad == &self.audio_src {
            Track::Audio
        } else {
            Track::Video
        }
    }

    fn src_pad(&self, track: Track) -> &gst::Pad {
        match track {
            Track::Audio => &self.audio_src,
            Track::Video => &self.video_src,
        }
    }

    fn sink_pad(&self, track: Track) -> &gst::Pad {
        match track {
            Track::Audio => &self.audio_sink,
            Track::Video => &self.video_sink,
        }
    }

    fn check_settings(&self, settings: &Settings) -> Result<(), gst::ErrorMessage> {
        if let Some(warning) = settings.validate()? {
            gst::warning!(CAT, imp = self, "{warning}");
        }
        Ok(())
    }
}

/// Whether data can reach `sink`: its peer is a source's pad, or one whose
/// element has a sink pad that (recursively) can be reached. Bins are seen
/// through their ghost pads' internal links.
fn reaches_a_source(sink: &gst::Pad, depth: usize) -> bool {
    // Deep enough for any real branch; a cycle must not recurse forever.
    const MAX_DEPTH: usize = 32;
    let Some(peer) = sink.peer() else {
        return false;
    };
    if depth >= MAX_DEPTH {
        return true;
    }
    let mut upstream = peer.iterate_internal_links();
    let mut inputs = Vec::new();
    while let Ok(Some(pad)) = upstream.next() {
        inputs.push(pad);
    }
    // No internal links: a source (or an element that does not say).
    inputs.is_empty() || inputs.iter().any(|pad| reaches_a_source(pad, depth + 1))
}

/// The sticky stream-start and caps events a sink pad has received.
fn stream_identity(pad: &gst::Pad) -> Vec<gst::Event> {
    let stream_start = pad
        .sticky_event::<gst::event::StreamStart>(0)
        .map(|e| e.event().to_owned());
    let caps = pad
        .sticky_event::<gst::event::Caps>(0)
        .map(|e| e.event().to_owned());
    stream_start.into_iter().chain(caps).collect()
}

fn deadline_margin() -> gst::ClockTime {
    gst::ClockTime::from_nseconds(scheduler::DEADLINE_MARGIN.as_nanos() as u64)
}

fn aac_config_from_caps(caps: &gst::CapsRef) -> Result<AacConfig, String> {
    let s = caps.structure(0).ok_or("empty caps")?;
    let codec_data = s
        .get::<gst::Buffer>("codec_data")
        .map_err(|_| format!("caps {caps} have no codec_data (link aacparse before stsdub)"))?;
    let map = codec_data
        .map_readable()
        .map_err(|_| "codec_data unreadable".to_string())?;
    AacConfig::from_audio_specific_config(&map).map_err(|e| format!("codec_data: {e}"))
}

#[glib::object_subclass]
impl ObjectSubclass for StsDub {
    const NAME: &'static str = "GstStsDub";
    type Type = super::StsDub;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let pad = |name: &str| {
            let template = klass
                .pad_template(name)
                .expect("pad templates are registered in pad_templates()");
            gst::Pad::builder_from_template(&template)
        };
        type Chain = fn(&StsDub, gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError>;
        let sink = |name: &str, chain: Chain, flags: gst::PadFlags| {
            pad(name)
                .chain_function(move |_, parent, buffer| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |imp| chain(imp, buffer),
                    )
                })
                .event_function(|pad, parent, event| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.sink_event(pad, event),
                    )
                })
                .iterate_internal_links_function(|pad, parent| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || gst::Iterator::from_vec(vec![]),
                        |imp| imp.internal_link(pad),
                    )
                })
                .flags(flags)
                .build()
        };
        let audio_sink = sink("audio_sink", StsDub::audio_chain, gst::PadFlags::PROXY_CAPS);
        let video_sink = sink(
            "video_sink",
            StsDub::video_chain,
            gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION,
        );
        let src = |name: &str| {
            pad(name)
                .query_function(|pad, parent, query| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_query(pad, query),
                    )
                })
                .event_function(|pad, parent, event| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_event(pad, event),
                    )
                })
                .activatemode_function(|pad, parent, mode, active| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || Err(gst::loggable_error!(CAT, "panic in activation")),
                        |imp| {
                            if mode == gst::PadMode::Push {
                                imp.activate_src(pad, active)
                            } else {
                                Err(gst::loggable_error!(CAT, "only push mode is supported"))
                            }
                        },
                    )
                })
                .iterate_internal_links_function(|pad, parent| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || gst::Iterator::from_vec(vec![]),
                        |imp| imp.internal_link(pad),
                    )
                })
                .flags(gst::PadFlags::PROXY_CAPS)
                .build()
        };
        let audio_src = src("audio_src");
        let video_src = src("video_src");
        Self {
            audio_sink,
            audio_src,
            video_sink,
            video_src,
            settings: Mutex::new(Settings::default()),
            stream_id: Mutex::new(DEFAULT_STREAM_ID.into()),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }
}

impl ObjectImpl for StsDub {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(param_specs);
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        if !settings.set(pspec.name(), value) {
            gst::warning!(CAT, imp = self, "unknown property {}", pspec.name());
            return;
        }
        match pspec.name() {
            PROP_STREAM_ID => *lock(&self.stream_id) = settings.stream_id.clone(),
            PROP_LATENCY => {
                drop(settings);
                let _ = self
                    .obj()
                    .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
            }
            _ => {}
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == PROP_STATS {
            return self.stats().to_value();
        }
        lock(&self.settings)
            .get(pspec.name())
            .unwrap_or_else(|| glib::Value::from_type(pspec.value_type()))
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        for pad in [
            &self.audio_sink,
            &self.audio_src,
            &self.video_sink,
            &self.video_src,
        ] {
            obj.add_pad(pad)
                .expect("pads are added once, at construction");
        }
    }
}

impl GstObjectImpl for StsDub {}

impl ElementImpl for StsDub {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Speech-to-speech dubbing",
                "Filter/Audio/Video",
                "Dubs AAC audio through a remote speech-to-speech service over Socket.IO, in segments, \
                 falling back to the original audio when the service is late or gone; video passes \
                 through, held in step with its audio",
                "stsdub developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let aac = gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .field("framed", true)
                .build();
            let template = |name: &str, direction, caps: &gst::Caps| {
                gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
                    .expect("static pad templates are valid")
            };
            vec![
                template("audio_sink", gst::PadDirection::Sink, &aac),
                template("audio_src", gst::PadDirection::Src, &aac),
                template("video_sink", gst::PadDirection::Sink, &gst::Caps::new_any()),
                template("video_src", gst::PadDirection::Src, &gst::Caps::new_any()),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn post_message(&self, message: gst::Message) -> bool {
        if message.type_() == gst::MessageType::Error && !buserrors::active() {
            METRICS
                .gst_bus_errors_total
                .with_label_values(&[&self.stream_id()])
                .inc();
        }
        self.parent_post_message(message)
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        gst::debug!(CAT, imp = self, "{transition:?}");
        if transition == gst::StateChange::ReadyToPaused {
            let settings = lock(&self.settings).clone();
            if let Err(message) = self.check_settings(&settings) {
                self.post_error_message(message);
                return Err(gst::StateChangeError);
            }
            metrics::announce_stream(&settings.stream_id);
            if let Some(address) = &settings.metrics_address {
                self.serve_metrics(address, &settings.stream_id)?;
            }
            let archive = settings
                .archive_dir
                .as_ref()
                .map(|dir| Archive::new(Path::new(dir).join(&settings.stream_id)));
            let mut state = self.state();
            *state = State {
                segmenter: Segmenter::new(settings.segment_duration.nseconds()),
                video_archive: archive.clone().map(VideoArchive::new),
                archive,
                settings,
                ..State::default()
            };
        }
        let result = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            let mut state = self.state();
            state.abandon_audio();
            state.abandon_video();
            // Dropping the last handle ends the session and its connection.
            state.session = None;
            let archive = state.archive.clone();
            drop(state);
            // gst-launch exits right after stopping: the last files first.
            if let Some(archive) = archive
                && !archive.wait_idle(ARCHIVE_STOP_WAIT)
            {
                gst::warning!(
                    CAT,
                    imp = self,
                    "stream {}: archive writes still under way at stop",
                    lock(&self.stream_id)
                );
            }
        }
        Ok(result)
    }
}
