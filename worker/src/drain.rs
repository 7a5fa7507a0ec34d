// SPDX-License-Identifier: MPL-2.0

//! How long an interrupted stream may take to end, and a teardown that never
//! holds the process.
//!
//! On SIGINT or SIGTERM the worker sends EOS and waits for it on the bus:
//! each stsdub flushes its last segment, waits for its answer (at most its
//! latency), sends `stream:end` and waits for `stream:complete`. GStreamer
//! 1.22's rtpjitterbuffer sometimes keeps an RTSP track's EOS back for ever
//! (2 of 80 plain `rtspsrc ! … ! fakesink` pipelines stopped with
//! `gst-launch-1.0 -e`, with no stsdub in them; and at a stream's own end:
//! the worker without stsdub once never ended after its RTSP server's
//! stream did), and a pipeline stopped in that state can block in its own
//! teardown. So the wait for the end is bounded from the interrupt, or from
//! the first track that ends at the source, and the teardown is bounded.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use gst::prelude::*;

/// What stsdub does after its last answer: `stream:end`'s wait for
/// `stream:complete` (2 s) and the polite close (1 s).
const SESSION_END: Duration = Duration::from_secs(3);
/// Room for the muxers and sinks to write what they hold.
const SINK_MARGIN: Duration = Duration::from_secs(5);
/// An answer within the timeout is never late: stsdub's own rule for its
/// default latency (segment + timeout + this).
const PROCESSING_ALLOWANCE: Duration = Duration::from_millis(500);

/// The longest an EOS sent into `pipeline` should take to reach its bus:
/// the pipeline's latency or the slowest stsdub's last segment and answer,
/// whichever is longer, then the session's end and the sinks.
pub fn drain_limit(pipeline: &gst::Element) -> Duration {
    let slowest_answer = stsdub_elements(pipeline)
        .iter()
        .map(last_answer_within)
        .max()
        .unwrap_or_default();
    pipeline_latency(pipeline).max(slowest_answer) + SESSION_END + SINK_MARGIN
}

/// Sets `pipeline` to NULL on a thread of its own; false when it has not
/// got there within `limit` (the caller may then leave it, and exit).
pub fn stop_within(pipeline: &gst::Element, limit: Duration) -> bool {
    let (done, stopped) = mpsc::channel();
    let pipeline = pipeline.clone();
    std::thread::spawn(move || {
        let _ = pipeline.set_state(gst::State::Null);
        let _ = done.send(());
    });
    stopped.recv_timeout(limit).is_ok()
}

/// stsdub's GType name (its factory is not asked: `gst_element_get_factory`
/// of a statically registered element is not always a factory).
const STSDUB_TYPE: &str = "GstStsDub";

/// The application message that says EOS has been sent into the pipeline
/// to stop it: from then on the wait for the end is bounded.
pub const INTERRUPTED: &str = "stsdub-worker-interrupted";

/// The application message that says a track has ended at the source (a
/// demuxer's or RTSP source's pad passed EOS): the others should follow
/// within the drain limit.
pub const TRACK_ENDED: &str = "stsdub-worker-track-ended";

/// Watches the source pads of the elements of `pipeline` named `names`
/// (the demuxer `d`, the RTSP source `src`): the first EOS to pass one is
/// said on the bus ([`TRACK_ENDED`]).
pub fn watch_track_ends(pipeline: &gst::Element, names: &[&str]) {
    let Some(bin) = pipeline.downcast_ref::<gst::Bin>() else {
        return;
    };
    let said = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for name in names {
        let Some(source) = bin.by_name(name) else {
            continue;
        };
        let said = said.clone();
        source.connect_pad_added(move |element, pad| {
            let said = said.clone();
            let element = element.downgrade();
            pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                let eos = info
                    .event()
                    .is_some_and(|e| e.type_() == gst::EventType::Eos);
                if eos
                    && !said.swap(true, std::sync::atomic::Ordering::SeqCst)
                    && let Some(element) = element.upgrade()
                {
                    let ended =
                        gst::message::Application::builder(gst::Structure::new_empty(TRACK_ENDED))
                            .src(&element)
                            .build();
                    let _ = element.post_message(ended);
                }
                gst::PadProbeReturn::Ok
            });
        });
    }
}

/// How long the other tracks of an RTSP source get to end once one has.
pub const RTSP_TRACKS_GRACE: Duration = Duration::from_secs(3);

/// Ends every track of each rtspsrc in `pipeline` together: once one
/// track's EOS has passed its source pad, the others get `grace` to end
/// too, then EOS is sent down each one still open. GStreamer 1.22's
/// rtpjitterbuffer sometimes keeps a track's EOS back for ever after its
/// sink has it (seen in the suite: the video's jitter buffer with EOS on
/// its sink pad and none on its source pad, the stream never ending).
pub fn end_rtsp_tracks_together(pipeline: &gst::Element, grace: Duration) {
    let Some(bin) = pipeline.downcast_ref::<gst::Bin>() else {
        return;
    };
    let sources = bin
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.type_().name() == "GstRTSPSrc");
    for source in sources {
        let open = std::sync::Arc::new(std::sync::Mutex::new((Vec::<gst::Pad>::new(), false)));
        source.connect_pad_added(move |_, pad| {
            if let Ok(mut tracks) = open.lock() {
                tracks.0.push(pad.clone());
            }
            let open = open.clone();
            pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
                if info
                    .event()
                    .is_some_and(|e| e.type_() == gst::EventType::Eos)
                {
                    let first = open.lock().is_ok_and(|mut tracks| {
                        tracks.0.retain(|p| p != pad);
                        !std::mem::replace(&mut tracks.1, true)
                    });
                    if first {
                        let open = open.clone();
                        std::thread::spawn(move || {
                            // Nothing is sent: a wait of exactly `grace`.
                            let (_keep, never) = mpsc::channel::<()>();
                            let _ = never.recv_timeout(grace);
                            let stuck = open.lock().map(|t| t.0.clone()).unwrap_or_default();
                            for pad in stuck {
                                pad.push_event(gst::event::Eos::new());
                            }
                        });
                    }
                }
                gst::PadProbeReturn::Ok
            });
        });
    }
}

/// Sends EOS into `pipeline` and says so on its bus ([`INTERRUPTED`]).
pub fn interrupt(pipeline: &gst::Element) {
    pipeline.send_event(gst::event::Eos::new());
    let interrupted = gst::message::Application::new(gst::Structure::new_empty(INTERRUPTED));
    let _ = pipeline.post_message(interrupted);
}

/// A pipeline's bus messages, without end until the pipeline is
/// interrupted, then for at most its [`drain_limit`] (taken then: a live
/// pipeline's latency is known once it plays).
pub struct BusUntilDrained {
    pipeline: gst::Element,
    bus: gst::Bus,
    limit: Option<Duration>,
    deadline: Option<Instant>,
    gave_up: bool,
}

impl BusUntilDrained {
    pub fn new(pipeline: &gst::Element) -> Option<Self> {
        Some(Self {
            pipeline: pipeline.clone(),
            bus: pipeline.bus()?,
            limit: None,
            deadline: None,
            gave_up: false,
        })
    }

    /// A fixed limit in place of the pipeline's own.
    pub fn with_limit(mut self, limit: Duration) -> Self {
        self.limit = Some(limit);
        self
    }

    /// How long the end is waited for after an interrupt.
    pub fn limit(&self) -> Duration {
        self.limit.unwrap_or_else(|| drain_limit(&self.pipeline))
    }

    /// The next message other than [`INTERRUPTED`] and [`TRACK_ENDED`];
    /// None once the limit
    /// after an interrupt has passed.
    pub fn next_message(&mut self) -> Option<gst::Message> {
        loop {
            let wait = self.deadline.map(|deadline| {
                let left = deadline.saturating_duration_since(Instant::now());
                gst::ClockTime::from_nseconds(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX))
            });
            let Some(message) = self.bus.timed_pop(wait) else {
                self.gave_up = true;
                return None;
            };
            if starts_the_drain(&message) {
                if self.deadline.is_none() {
                    self.deadline = Some(Instant::now() + self.limit());
                }
                continue;
            }
            return Some(message);
        }
    }

    /// True when the wait after the interrupt ran out.
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }
}

/// An interrupt, or a track's end at the source: from either, the end is
/// waited for at most the drain limit.
fn starts_the_drain(message: &gst::Message) -> bool {
    matches!(message.view(), gst::MessageView::Application(a)
        if a.structure().is_some_and(|s| s.name() == INTERRUPTED || s.name() == TRACK_ENDED))
}

fn stsdub_elements(pipeline: &gst::Element) -> Vec<gst::Element> {
    let Some(bin) = pipeline.downcast_ref::<gst::Bin>() else {
        return Vec::new();
    };
    bin.iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.type_().name() == STSDUB_TYPE)
        .collect()
}

/// A segment's length, the STS's timeout for its answer, and the
/// processing allowance.
fn last_answer_within(dub: &gst::Element) -> Duration {
    let millis = |name: &str| u64::from(dub.property::<u32>(name));
    Duration::from_millis(millis("segment-duration") + millis("timeout")) + PROCESSING_ALLOWANCE
}

fn pipeline_latency(pipeline: &gst::Element) -> Duration {
    let mut query = gst::query::Latency::new();
    if !pipeline.query(&mut query) {
        return Duration::ZERO;
    }
    let (live, min, _) = query.result();
    if live {
        Duration::from_nanos(min.nseconds())
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(description: &str) -> gst::Element {
        gst::init().expect("gst");
        gststsdub::plugin_register_static().expect("stsdub registers");
        gst::parse::launch(description).expect("a valid line")
    }

    #[test]
    fn the_limit_covers_the_slowest_dub_its_session_end_and_the_sinks() {
        let pipeline = launch(
            "audiotestsrc ! stsdub name=a segment-duration=2000 timeout=1500 ! fakesink \
             audiotestsrc ! stsdub name=b segment-duration=6000 timeout=8000 ! fakesink",
        );
        // b: 6 + 8 + 0.5 s, then 3 s of session end and 5 s for the sinks.
        assert_eq!(drain_limit(&pipeline), Duration::from_millis(22_500));
    }

    #[test]
    fn without_stsdub_the_limit_is_the_session_end_and_the_sinks() {
        let pipeline = launch("audiotestsrc ! fakesink");
        assert_eq!(drain_limit(&pipeline), Duration::from_secs(8));
    }

    /// The fault injected: a probe that swallows the EOS, as the stalled
    /// rtpjitterbuffer does.
    #[test]
    fn an_end_that_never_comes_is_waited_for_no_longer_than_the_limit() {
        let pipeline = launch("audiotestsrc is-live=true name=src ! fakesink");
        let src = pipeline
            .downcast_ref::<gst::Bin>()
            .and_then(|bin| bin.by_name("src"))
            .and_then(|src| src.static_pad("src"))
            .expect("audiotestsrc's pad");
        src.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
            if info.event().map(|e| e.type_()) != Some(gst::EventType::Eos) {
                return gst::PadProbeReturn::Ok;
            }
            // Handled, with the event taken (and dropped) here.
            info.data.take();
            gst::PadProbeReturn::Handled
        });
        pipeline.set_state(gst::State::Playing).expect("plays");
        let limit = Duration::from_millis(200);
        let mut messages = BusUntilDrained::new(&pipeline)
            .expect("bus")
            .with_limit(limit);
        interrupt(&pipeline);
        let started = Instant::now();
        while let Some(message) = messages.next_message() {
            assert!(
                !matches!(message.view(), gst::MessageView::Eos(_)),
                "EOS was dropped"
            );
        }
        assert!(messages.gave_up());
        assert!(started.elapsed() >= limit);
        assert!(stop_within(&pipeline, Duration::from_secs(10)));
    }

    #[test]
    fn an_end_that_comes_is_passed_on() {
        let pipeline = launch("audiotestsrc is-live=true ! fakesink");
        pipeline.set_state(gst::State::Playing).expect("plays");
        let mut messages = BusUntilDrained::new(&pipeline).expect("bus");
        interrupt(&pipeline);
        let eos = std::iter::from_fn(|| messages.next_message())
            .any(|m| matches!(m.view(), gst::MessageView::Eos(_)));
        assert!(eos);
        assert!(!messages.gave_up());
        assert!(stop_within(&pipeline, Duration::from_secs(10)));
    }

    #[test]
    fn the_first_track_to_end_at_the_source_is_said_as_an_interrupt_is() {
        let pipeline = launch(
            "audiotestsrc num-buffers=20 ! avenc_aac ! aacparse ! mpegtsmux ! tsdemux name=d d. ! fakesink",
        );
        watch_track_ends(&pipeline, &["d"]);
        pipeline.set_state(gst::State::Playing).expect("plays");
        let bus = pipeline.bus().expect("bus");
        // Read straight from the bus: the bounded reader would swallow it.
        let said = std::iter::from_fn(|| bus.timed_pop(gst::ClockTime::from_seconds(10)))
            .take_while(|m| !matches!(m.view(), gst::MessageView::Eos(_)))
            .any(|m| starts_the_drain(&m));
        assert!(
            said,
            "the source's end was said on the bus, as an interrupt is"
        );
        assert!(stop_within(&pipeline, Duration::from_secs(10)));
    }

    #[test]
    fn a_pipeline_that_stops_reports_it() {
        let pipeline = launch("audiotestsrc ! fakesink");
        assert!(stop_within(&pipeline, Duration::from_secs(10)));
    }
}
