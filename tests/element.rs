// SPDX-License-Identifier: MPL-2.0

//! The element's pad pairs, events and lifetime, in gstreamer-check Harnesses
//! on a TestClock. The STS is unreachable here, so every segment falls back
//! at once: these tests are about timing and order, not dubbing.

mod common;

use gst::glib;
use gst::prelude::*;
use gst_check::Harness;

use common::*;

const SEGMENT_MS: u32 = 1000;
const LATENCY_MS: u32 = 2000;
const MARGIN: gst::ClockTime = gststsdub::timeline::scheduler::DEADLINE_MARGIN;
const FRAME_NS: u64 = 1024 * 1_000_000_000 / 48_000;

/// Where frame `index` starts, sample-exact (rounded down to the ns).
fn frame_pts(index: u64) -> u64 {
    index * 1024 * 1_000_000_000 / 48_000
}

fn stsdub() -> gst::Element {
    init();
    gst::ElementFactory::make("stsdub")
        .property("sts-url", dead_url())
        .property("segment-duration", SEGMENT_MS)
        .property("latency", LATENCY_MS as i32)
        .build()
        .expect("stsdub")
}

fn audio_harness(element: &gst::Element, caps: gst::Caps) -> Harness {
    let mut h = Harness::with_element(element, Some("audio_sink"), Some("audio_src"));
    h.use_testclock();
    h.set_src_caps(caps);
    h.play();
    h
}

fn retimed(frames: &[gst::Buffer], first_index: u64) -> Vec<gst::Buffer> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut f = f.copy();
            f.make_mut()
                .set_pts(gst::ClockTime::from_nseconds(frame_pts(
                    first_index + i as u64,
                )));
            f
        })
        .collect()
}

#[track_caller]
fn pull_pts(h: &mut Harness, count: usize) -> Vec<u64> {
    (0..count)
        .map(|_| h.pull().expect("a frame").pts().expect("pts").nseconds())
        .collect()
}

#[test]
fn video_is_held_until_its_audio_has_left_then_released_on_time() {
    let element = stsdub();
    let (caps, frames) = aac_frames(47);
    let mut audio = audio_harness(&element, caps);
    let mut video = Harness::with_element(&element, Some("video_sink"), Some("video_src"));
    video.set_src_caps(
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .build(),
    );
    video.play();

    // Two seconds of "video" at 25 fps, pushed before any audio.
    for i in 0..50u64 {
        let mut buffer = gst::Buffer::from_slice(vec![i as u8; 16]);
        let b = buffer.get_mut().expect("writable");
        b.set_pts(gst::ClockTime::from_mseconds(i * 40));
        b.set_duration(gst::ClockTime::from_mseconds(40));
        assert_eq!(video.push(buffer), Ok(gst::FlowSuccess::Ok));
    }
    assert!(video.try_pull().is_none(), "video waits for its audio");

    // The video task arms one wake, for the first head's render time, before
    // any audio comes (waiting for it here keeps the test from racing that
    // task: audio pushed first could release frame 0 before its wake).
    let testclock = audio.testclock().expect("test clock");
    let base = element.base_time().expect("base time");
    let render_wake = |pts: gst::ClockTime| {
        base + pts + gst::ClockTime::from_mseconds(u64::from(LATENCY_MS)) - MARGIN
    };
    let first = testclock.wait_for_next_pending_id();
    assert_eq!(first.time(), render_wake(gst::ClockTime::ZERO));

    // One second of audio leaves (original, the STS is unreachable)...
    for frame in retimed(&frames, 0) {
        assert_eq!(audio.push(frame), Ok(gst::FlowSuccess::Ok));
    }
    assert_eq!(pull_pts(&mut audio, 47).len(), 47);
    let audio_end = 47 * FRAME_NS;

    // ...and the video up to the audio's end follows, nothing beyond it.
    let released: Vec<u64> = (0..)
        .map_while(|_| video.pull().map(|b| b.pts().expect("pts").nseconds()).ok())
        .take_while(|&pts| pts <= audio_end)
        .take(26)
        .collect();
    assert_eq!(
        released.len(),
        26,
        "frames 0..=1000 ms released: {released:?}"
    );
    assert!(video.try_pull().is_none(), "frames after 1003 ms stay held");

    // With no more audio, held video still leaves at its render time. The
    // wake armed for the first held head stays armed while audio releases
    // the heads after it (one clock entry, not one per frame); when it
    // fires, the head held then arms its own.
    let still_armed = testclock.wait_for_next_pending_id();
    assert_eq!(still_armed.time(), render_wake(gst::ClockTime::ZERO));
    assert!(audio.crank_single_clock_wait().is_ok());
    let next_pts = gst::ClockTime::from_mseconds(1040);
    let wake = testclock.wait_for_next_pending_id();
    assert_eq!(wake.time(), render_wake(next_pts));
    assert!(video.try_pull().is_none(), "an early wake releases nothing");
    assert!(audio.crank_single_clock_wait().is_ok());
    let late = video.pull().expect("released at its render time");
    assert_eq!(late.pts(), Some(next_pts));
}

#[test]
fn a_timestamp_gap_closes_the_segment_and_is_not_filled() {
    let element = stsdub();
    let (caps, frames) = aac_frames(47);
    let mut h = audio_harness(&element, caps);
    // 20 frames, a 10-frame hole, then 47 frames and the end: less than
    // discont-wait after the hole, so the end tells that it was a gap.
    let mut input = retimed(&frames[..20], 0);
    input.extend(retimed(&frames, 30));
    for frame in input {
        assert_eq!(h.push(frame), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let out = pull_pts(&mut h, 67);
    let expected: Vec<u64> = (0..20).chain(30..77).map(frame_pts).collect();
    assert_eq!(out, expected, "the gap is kept, no frame invented or lost");
    assert!(h.try_pull().is_none());
}

#[test]
fn flush_discards_queued_audio_and_restarts_cleanly() {
    let element = stsdub();
    let (caps, frames) = aac_frames(47);
    let mut h = audio_harness(&element, caps);
    // Half a segment, never completed: flushed away.
    for frame in retimed(&frames[..20], 0) {
        assert_eq!(h.push(frame), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    assert!(
        h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()))
    );
    for frame in retimed(&frames, 100) {
        assert_eq!(h.push(frame), Ok(gst::FlowSuccess::Ok));
    }
    let out = pull_pts(&mut h, 47);
    assert_eq!(out[0], frame_pts(100), "nothing from before the flush");
    assert!(h.try_pull().is_none());
    let mut saw_flush_stop = false;
    while let Some(event) = h.try_pull_event() {
        saw_flush_stop |= event.type_() == gst::EventType::FlushStop;
    }
    assert!(saw_flush_stop, "flush forwarded downstream");
}

#[test]
fn eos_sends_the_partial_segment_then_eos() {
    let element = stsdub();
    let (caps, frames) = aac_frames(47);
    let mut h = audio_harness(&element, caps);
    for frame in retimed(&frames[..10], 0) {
        assert_eq!(h.push(frame), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    assert_eq!(
        pull_pts(&mut h, 10),
        (0..10).map(frame_pts).collect::<Vec<_>>()
    );
    loop {
        let event = h.pull_event().expect("EOS follows the partial segment");
        if event.type_() == gst::EventType::Eos {
            break;
        }
    }
    assert!(h.try_pull().is_none(), "nothing after EOS");
}

#[test]
fn caps_without_codec_data_are_refused_with_a_clear_error() {
    let element = stsdub();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let caps = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .field("framed", true)
        .build();
    let mut h = Harness::with_element(&element, Some("audio_sink"), Some("audio_src"));
    h.play();
    h.set_src_caps(caps);
    let error = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(e) = error.view() else {
        unreachable!()
    };
    assert!(
        e.error().to_string().contains("codec_data")
            || format!("{:?}", e.debug()).contains("codec_data")
    );
}

/// A launch line's `! stsdub` with AC-3 links to video_sink (audio_sink
/// takes AAC only): the error names what came and what stsdub takes.
#[test]
fn other_audio_linked_to_stsdub_is_refused_naming_it_and_aac() {
    init();
    let pipeline = gst::parse::launch(
        "audiotestsrc num-buffers=20 ! avenc_ac3 ! stsdub sts-url=http://127.0.0.1:9 ! fakesink",
    )
    .expect("the launch line parses");
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let _ = pipeline.set_state(gst::State::Playing);
    let error = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error message");
    let _ = pipeline.set_state(gst::State::Null);
    let gst::MessageView::Error(e) = error.view() else {
        unreachable!()
    };
    let debug = format!("{:?}", e.debug());
    assert!(
        debug.contains("audio/x-ac3") && debug.contains("stsdub dubs AAC only"),
        "{debug}"
    );
}

#[test]
fn the_element_is_freed_after_use() {
    let element = stsdub();
    let weak = element.downgrade();
    {
        let (caps, frames) = aac_frames(47);
        let mut h = audio_harness(&element, caps);
        for frame in retimed(&frames, 0) {
            assert_eq!(h.push(frame), Ok(gst::FlowSuccess::Ok));
        }
        assert_eq!(pull_pts(&mut h, 47).len(), 47);
    }
    drop(element);
    // A runtime task that just handed over its answer may still be returning
    // from its upgrade() for a moment: the element must be gone right after.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while weak.upgrade().is_some() && std::time::Instant::now() < give_up {
        std::thread::yield_now();
    }
    assert!(
        weak.upgrade().is_none(),
        "no task, clock callback or session keeps the element alive"
    );
}

#[test]
fn stats_count_segments_and_report_the_output_av_delta() {
    let element = stsdub();
    let (caps, frames) = aac_frames(47);
    let mut audio = audio_harness(&element, caps);
    let mut video = Harness::with_element(&element, Some("video_sink"), Some("video_src"));
    video.set_src_caps(gst::Caps::builder("video/x-h264").build());
    video.play();
    for i in 0..25u64 {
        let mut buffer = gst::Buffer::from_slice(vec![0u8; 8]);
        let b = buffer.get_mut().expect("writable");
        b.set_pts(gst::ClockTime::from_mseconds(i * 40));
        b.set_duration(gst::ClockTime::from_mseconds(40));
        assert_eq!(video.push(buffer), Ok(gst::FlowSuccess::Ok));
    }
    for frame in retimed(&frames, 0) {
        assert_eq!(audio.push(frame), Ok(gst::FlowSuccess::Ok));
    }
    pull_pts(&mut audio, 47);
    for _ in 0..25 {
        video.pull().expect("video released");
    }
    let stats = element.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("segments"), Ok(1));
    assert_eq!(stats.get::<u64>("fallback"), Ok(1));
    assert_eq!(stats.get::<u64>("dubbed"), Ok(0));
    assert_eq!(stats.get::<u64>("latency-ms"), Ok(u64::from(LATENCY_MS)));
    // Audio ends at 1002.7 ms, video at 1000 ms.
    let delta = stats.get::<f64>("av-sync-delta-ms").expect("delta");
    assert!((2.0..3.0).contains(&delta), "A/V delta {delta} ms");
}

#[test]
fn every_property_keeps_the_value_it_is_given() {
    use gst::prelude::*;
    let element = stsdub();
    let strings = [
        ("sts-url", "https://sts.example:8443"),
        ("stream-id", "match-7"),
        ("worker-id", "w-3"),
        ("source-language", "de"),
        ("target-language", "fr"),
        ("voice-profile", "warm"),
        ("tls-ca-file", "/etc/ssl/ca.pem"),
        ("metrics-address", "127.0.0.1:9464"),
        ("archive-dir", "/var/lib/stsdub"),
    ];
    for (name, value) in strings {
        element.set_property(name, value);
        assert_eq!(
            element.property::<Option<String>>(name).as_deref(),
            Some(value),
            "{name}"
        );
    }
    let numbers = [
        ("segment-duration", 4000u32),
        ("timeout", 3000),
        ("max-inflight", 5),
        ("reconnect-delay", 500),
        ("reconnect-attempts", 7),
        ("breaker-failure-threshold", 9),
        ("breaker-cooldown", 10_000),
    ];
    for (name, value) in numbers {
        element.set_property(name, value);
        assert_eq!(element.property::<u32>(name), value, "{name}");
    }
    element.set_property("latency", 9000i32);
    assert_eq!(element.property::<i32>("latency"), 9000);
    // -1 is "follow segment-duration and timeout".
    element.set_property("latency", -1i32);
    assert_eq!(element.property::<i32>("latency"), -1);
    element.set_property("error-after-reconnect-attempts", true);
    assert!(element.property::<bool>("error-after-reconnect-attempts"));
    // Write-only: accepted, never readable.
    element.set_property("auth-token", "secret");
    assert!(
        element
            .find_property("auth-token")
            .is_some_and(|p| !p.flags().contains(glib::ParamFlags::READABLE))
    );
}

/// A bus sync handler runs in the thread that posts. One that reads `stats`
/// (which locks the element's state) must not find that lock held by the
/// post: the element posts and raises errors only with no lock held.
#[test]
fn stats_can_be_read_from_a_bus_sync_handler_while_the_element_posts() {
    use std::sync::{Arc, Mutex, mpsc};

    let element = stsdub();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let weak = element.downgrade();
    let record = seen.clone();
    bus.set_sync_handler(move |_, message| {
        if let Some(element) = weak.upgrade() {
            let stats = element.property::<gst::Structure>("stats");
            let mut seen = record.lock().unwrap_or_else(|e| e.into_inner());
            seen.push((message.type_(), stats.get::<u64>("segments").unwrap_or(0)));
        }
        gst::BusSyncReply::Drop
    });
    let (caps, frames) = aac_frames(47);
    let (done, finished) = mpsc::channel();
    let pushing = element.clone();
    std::thread::spawn(move || {
        // An audio buffer before caps: an error from the chain function.
        let mut bare = Harness::with_element(&pushing, Some("audio_sink"), Some("audio_src"));
        bare.play();
        let before_caps = bare.push(frames[0].clone());
        drop(bare);
        // Then a segment with the STS unreachable: warnings and a segment
        // message from the session, the deadline and the output task.
        let mut h = audio_harness(&pushing, caps);
        for frame in retimed(&frames, 0) {
            let _ = h.push(frame);
        }
        let left = (0..47).filter(|_| h.pull().is_ok()).count();
        let _ = done.send((before_caps, left));
    });
    let (before_caps, left) = finished
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("no deadlock: the pushing thread finished");
    assert_eq!(before_caps, Err(gst::FlowError::NotNegotiated));
    assert_eq!(left, 47, "the segment left");
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let count = |kind| seen.iter().filter(|(t, _)| *t == kind).count();
    assert!(count(gst::MessageType::Error) >= 1, "{seen:?}");
    assert!(count(gst::MessageType::Element) >= 1, "{seen:?}");
}

/// A source whose first stamps are late and settle 25 ms earlier within the
/// first half second (rtspsrc does this in its first second), its segment
/// starting at the first, late stamp: the audio leaves on the settled
/// stamps, and a segment reaching back to them (base lowered as much, so
/// running times are the input's) comes before the first buffer.
#[test]
fn stamps_that_settle_before_audio_leaves_are_followed_and_the_segment_reaches_back() {
    let element = stsdub();
    let (caps, frames) = aac_frames(47);
    let mut h = audio_harness(&element, caps);
    let settled_start = 100_000_000u64;
    let late = 25_000_000u64;
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_start(gst::ClockTime::from_nseconds(settled_start + late));
    segment.set_base(gst::ClockTime::from_nseconds(settled_start + late));
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    for (index, frame) in frames.iter().enumerate() {
        let index = index as u64;
        let mut frame = frame.copy();
        let stamp = settled_start + frame_pts(index) + if index < 10 { late } else { 0 };
        frame
            .make_mut()
            .set_pts(gst::ClockTime::from_nseconds(stamp));
        assert_eq!(h.push(frame), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let out = pull_pts(&mut h, 47);
    let expected: Vec<u64> = (0..47).map(|i| settled_start + frame_pts(i)).collect();
    for (got, want) in out.iter().zip(&expected) {
        assert!(got.abs_diff(*want) <= 500_000, "{got} against {want}");
    }
    let mut last_segment = None;
    while let Some(event) = h.try_pull_event() {
        if let gst::EventView::Segment(s) = event.view() {
            last_segment = s.segment().downcast_ref::<gst::ClockTime>().cloned();
        }
    }
    let last_segment = last_segment.expect("a segment event");
    let start = last_segment.start().expect("start").nseconds();
    assert!(
        start <= out[0],
        "the first buffer ({}) lies in the segment ({start})",
        out[0]
    );
    // Running time is what it was: the input's late stamp of frame 0 still
    // maps to running time `settled_start + late`.
    assert_eq!(
        last_segment.to_running_time(gst::ClockTime::from_nseconds(settled_start + late)),
        Some(gst::ClockTime::from_nseconds(settled_start + late))
    );
}
