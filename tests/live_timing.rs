// SPDX-License-Identifier: MPL-2.0

//! Live deadlines on a TestClock: the element in a gstreamer-check Harness
//! (live upstream), real AAC frames, the real echo STS process.

mod common;

use std::time::Duration;

use gst::prelude::*;
use gst_check::Harness;

use common::*;

const SEGMENT_MS: u32 = 1000;
const LATENCY_MS: u32 = 2000;
const MARGIN: gst::ClockTime = gststsdub::timeline::scheduler::DEADLINE_MARGIN;
/// 47 frames of 1024 samples at 48 kHz = 1.003 s: one segment.
const SEGMENT_FRAMES: usize = 47;

struct Live {
    harness: Harness,
    bus: gst::Bus,
    frames: Vec<gst::Buffer>,
}

fn live_harness(sts_url: &str) -> Live {
    init();
    let element = gst::ElementFactory::make("stsdub")
        .property("sts-url", sts_url)
        .property("segment-duration", SEGMENT_MS)
        .property("latency", LATENCY_MS as i32)
        // The deadline must decide, not the timeout.
        .property("timeout", 60_000u32)
        .build()
        .expect("stsdub");
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut harness = Harness::with_element(&element, Some("audio_sink"), Some("audio_src"));
    harness.use_testclock();
    let (caps, frames) = aac_frames(SEGMENT_FRAMES);
    harness.set_src_caps(caps);
    harness.play();
    Live {
        harness,
        bus,
        frames,
    }
}

impl Live {
    fn push_segment(&mut self) {
        for frame in self.frames.clone() {
            assert_eq!(self.harness.push(frame), Ok(gst::FlowSuccess::Ok));
        }
    }

    /// The deadline of the segment starting at 0, as a clock time.
    fn expected_deadline(&self) -> gst::ClockTime {
        let base = self
            .harness
            .element()
            .and_then(|e| e.base_time())
            .expect("base time");
        base + gst::ClockTime::from_mseconds(u64::from(LATENCY_MS)) - MARGIN
    }

    #[track_caller]
    fn pull_segment(&mut self) -> Vec<gst::Buffer> {
        (0..SEGMENT_FRAMES)
            .map(|_| {
                self.harness
                    .pull()
                    .expect("a frame within the harness timeout")
            })
            .collect()
    }
}

fn bytes(buffer: &gst::Buffer) -> Vec<u8> {
    buffer.map_readable().expect("readable").to_vec()
}

#[track_caller]
fn assert_timestamps_of(output: &[gst::Buffer], input: &[gst::Buffer]) {
    for (i, (out, inp)) in output.iter().zip(input).enumerate() {
        // Sample-exact: stsdub stamps frame i at sample i * 1024, which the
        // input's sum of rounded-down durations misses by < 1 ns per frame,
        // and each duration reaches the next frame's start.
        let (o, p) = (out.pts().expect("pts"), inp.pts().expect("pts"));
        assert!(
            o.nseconds().abs_diff(p.nseconds()) < 1_000,
            "frame {i} pts {o} vs {p}"
        );
        let (out, inp) = (
            out.duration().expect("duration"),
            inp.duration().expect("duration"),
        );
        assert!(
            out.nseconds().abs_diff(inp.nseconds()) <= 1,
            "frame {i} duration {out} vs {inp}"
        );
    }
}

#[test]
fn latency_query_adds_the_configured_latency() {
    let live = live_harness(&dead_url());
    let mut query = gst::query::Latency::new();
    assert!(
        live.harness
            .sinkpad()
            .expect("harness sink pad")
            .peer_query(&mut query)
    );
    let (is_live, min, _) = query.result();
    assert!(is_live);
    assert_eq!(min, gst::ClockTime::from_mseconds(LATENCY_MS.into()));
}

#[test]
fn answer_before_the_deadline_is_used() {
    let echo = EchoSts::start(&[]);
    let mut live = live_harness(&echo.url);
    live.push_segment();
    let testclock = live.harness.testclock().expect("test clock");
    let deadline = testclock.wait_for_next_pending_id();
    assert_eq!(deadline.time(), live.expected_deadline());

    // The clock stays before the deadline; the echo's answer comes first.
    let output = live.pull_segment();
    assert_timestamps_of(&output, &live.frames);
    let changed = output
        .iter()
        .zip(&live.frames)
        .filter(|(o, i)| bytes(o) != bytes(i))
        .count();
    assert!(
        changed > SEGMENT_FRAMES / 2,
        "dubbed frames, not the original: {changed} differ"
    );
    assert!(testclock.time() < live.expected_deadline());
}

#[test]
fn answer_after_the_deadline_is_not_used_and_the_fallback_leaves_on_time() {
    let echo = EchoSts::start(&["--delay-ms", "1500"]);
    let mut live = live_harness(&echo.url);
    live.push_segment();
    let testclock = live.harness.testclock().expect("test clock");
    let deadline = testclock.wait_for_next_pending_id();
    assert_eq!(deadline.time(), live.expected_deadline());
    // The fragment is at the STS, whose answer is on its way.
    echo.wait_for_log("echo_sts: fragment", Duration::from_secs(30));

    // One nanosecond before the deadline nothing may leave.
    testclock.set_time(live.expected_deadline() - gst::ClockTime::from_nseconds(1));
    assert!(
        live.harness.try_pull().is_none(),
        "nothing before the deadline"
    );

    // At the deadline the original frames leave, all of them, unchanged.
    assert!(live.harness.crank_single_clock_wait().is_ok());
    let output = live.pull_segment();
    assert_eq!(testclock.time(), live.expected_deadline());
    assert_timestamps_of(&output, &live.frames);
    for (i, (o, f)) in output.iter().zip(&live.frames).enumerate() {
        assert_eq!(bytes(o), bytes(f), "frame {i} is the original");
    }

    // The echo answers later; the answer is reported and not used.
    let mut segment_messages = Vec::new();
    loop {
        let message = live
            .bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(30),
                &[gst::MessageType::Element],
            )
            .expect("late answer reported");
        let structure = message
            .structure()
            .expect("element messages have a structure")
            .to_owned();
        if structure.name() == "stsdub-late-answer" {
            break;
        }
        segment_messages.push(structure);
    }
    assert_eq!(segment_messages.len(), 1);
    assert_eq!(
        segment_messages[0].get::<String>("status").as_deref(),
        Ok("fallback")
    );
    assert_eq!(
        segment_messages[0].get::<String>("reason").as_deref(),
        Ok("deadline")
    );
    // It left exactly at its deadline on the test clock.
    assert_eq!(segment_messages[0].get::<f64>("lateness-ms"), Ok(0.0));
    assert!(
        live.harness.try_pull().is_none(),
        "no second copy of the segment"
    );
}

#[test]
fn unreachable_sts_falls_back_at_the_deadline_without_error() {
    let mut live = live_harness(&dead_url());
    live.push_segment();
    let output = live.pull_segment();
    assert_timestamps_of(&output, &live.frames);
    for (o, f) in output.iter().zip(&live.frames) {
        assert_eq!(bytes(o), bytes(f));
    }
    let mut saw_warning = false;
    while let Some(message) = live.bus.pop() {
        match message.view() {
            gst::MessageView::Error(e) => panic!("unexpected error: {}", e.error()),
            gst::MessageView::Warning(_) => saw_warning = true,
            _ => {}
        }
    }
    assert!(saw_warning, "a warning on the bus");
}
