// SPDX-License-Identifier: MPL-2.0

//! How a live source's timestamps settle: runs `rtspsrc` on a URL for a
//! while and prints, per track, where each buffer's timestamp puts the
//! track's start (PTS minus the media before it, from the buffer count and
//! durations) at a few moments. A source whose stamps follow its media
//! clock prints the same start at every moment.
//!
//! ```text
//! cargo run --example rtsp_stamps -- rtsp://127.0.0.1:8554/stream [SECONDS] [EXTRA_RTSPSRC_PROPS]
//! ```

use std::sync::{Arc, Mutex};

use gst::prelude::*;

type Stamps = Arc<Mutex<Vec<(u64, u64)>>>;

fn probe_stamps(pipeline: &gst::Pipeline, name: &str) -> Stamps {
    let stamps: Stamps = Arc::default();
    let sink = pipeline.by_name(name).expect("named sink");
    let pad = sink.static_pad("sink").expect("sink pad");
    let store = stamps.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            let pts = buffer.pts().map_or(0, |p| p.nseconds());
            // rtpmp4gdepay's AAC frames come without a duration: 1024
            // samples at 48 kHz (the samples' rate) then.
            let duration = buffer.duration().map_or(21_333_333, |d| d.nseconds());
            store.lock().expect("stamps").push((pts, duration));
        }
        gst::PadProbeReturn::Ok
    });
    stamps
}

fn report(track: &str, stamps: &[(u64, u64)]) {
    let mut media = 0u64;
    let mut next_second = 0.0;
    for &(pts, duration) in stamps {
        let seconds = media as f64 / 1e9;
        if seconds >= next_second {
            let start_ms = (pts as f64 - media as f64) / 1e6;
            println!(
                "{track} at {seconds:5.2} s of media: pts {:9.3} ms, start {start_ms:8.3} ms",
                pts as f64 / 1e6
            );
            next_second += if next_second < 3.0 { 0.25 } else { 1.0 };
        }
        media += duration;
    }
}

fn main() {
    gst::init().expect("GStreamer");
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("an rtsp:// URL");
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(15);
    let extra = args.next().unwrap_or_default();
    let description = format!(
        "rtspsrc location={url} protocols=tcp latency=200 name=src {extra} \
         src. ! rtph264depay ! h264parse ! fakesink name=video sync=true \
         src. ! rtpmp4gdepay ! aacparse ! fakesink name=audio sync=true"
    );
    let pipeline = gst::parse::launch(&description)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let video = probe_stamps(&pipeline, "video");
    let audio = probe_stamps(&pipeline, "audio");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let bus = pipeline.bus().expect("bus");
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(seconds),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    report("audio", &audio.lock().expect("stamps"));
    report("video", &video.lock().expect("stamps"));
}
