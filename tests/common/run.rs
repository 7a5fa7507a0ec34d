// SPDX-License-Identifier: MPL-2.0

//! Pipelines run to their end, with what they posted on the bus.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use gst::prelude::*;

use super::*;

/// What a pipeline run left on the bus.
#[derive(Debug, Default)]
pub struct Run {
    pub segments: Vec<gst::Structure>,
    /// `state` of each `stsdub-breaker` message, in order.
    pub breaker: Vec<String>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    pub eos: bool,
    /// Names of the other element messages, in order.
    pub messages: Vec<String>,
}

impl Run {
    pub fn statuses(&self) -> Vec<String> {
        self.field_values("status")
    }

    pub fn reasons(&self) -> Vec<String> {
        self.field_values("reason")
    }

    pub fn field_values(&self, name: &str) -> Vec<String> {
        self.segments
            .iter()
            .map(|s| {
                s.get::<String>(name)
                    .unwrap_or_else(|_| panic!("{name} field"))
            })
            .collect()
    }

    pub fn frames(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| u64::from(s.get::<u32>("frames").expect("frames field")))
            .sum()
    }

    /// Records one message; true when the run is over (EOS or error).
    fn record(&mut self, message: &gst::Message) -> bool {
        match message.view() {
            gst::MessageView::Eos(_) => {
                self.eos = true;
                return true;
            }
            gst::MessageView::Error(e) => {
                self.errors.push(format!("{} ({:?})", e.error(), e.debug()));
                return true;
            }
            gst::MessageView::Warning(w) => {
                self.warnings
                    .push(format!("{} ({:?})", w.error(), w.debug()))
            }
            gst::MessageView::Element(e) => match e.structure() {
                Some(s) if s.name() == "stsdub-segment" => self.segments.push(s.to_owned()),
                Some(s) if s.name() == "stsdub-breaker" => self
                    .breaker
                    .push(s.get::<String>("state").expect("state field")),
                Some(s) => self.messages.push(s.name().to_string()),
                None => {}
            },
            _ => {}
        }
        false
    }
}

/// A playing pipeline whose bus the test reads as it goes.
pub struct Running {
    pipeline: gst::Pipeline,
    bus: gst::Bus,
    pub run: Run,
}

impl Running {
    pub fn start(description: &str) -> Self {
        init();
        let pipeline = gst::parse::launch(description)
            .unwrap_or_else(|e| panic!("cannot parse {description}: {e}"))
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let bus = pipeline.bus().expect("pipeline bus");
        // As the worker does (see there): rtspsrc's tracks end together.
        stsdub_worker::drain::end_rtsp_tracks_together(
            pipeline.upcast_ref(),
            stsdub_worker::drain::RTSP_TRACKS_GRACE,
        );
        // On failure the element has posted why on the bus; it is read later.
        let _ = pipeline.set_state(gst::State::Playing);
        Self {
            pipeline,
            bus,
            run: Run::default(),
        }
    }

    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    /// Reads the bus until `until` holds for the run so far; false if the
    /// run ended or `limit` passed first.
    pub fn wait_for(&mut self, limit: Duration, mut until: impl FnMut(&Run) -> bool) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while !until(&self.run) {
            let Some(remaining) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return false;
            };
            let Some(message) = self
                .bus
                .timed_pop(gst::ClockTime::from_nseconds(remaining.as_nanos() as u64))
            else {
                return false;
            };
            // As gst-launch does: a live source joining late changes the latency.
            if let gst::MessageView::Latency(_) = message.view() {
                let _ = self.pipeline.recalculate_latency();
            }
            if self.run.record(&message) && !until(&self.run) {
                return false;
            }
        }
        true
    }

    /// As `finish`, then reads on for `after` (an error included), so what
    /// the pipeline posts after its end is seen too: a test that counts
    /// errors can then see a second one.
    pub fn finish_watching(mut self, limit: Duration, after: Duration) -> Run {
        self.wait_for(limit, |run| run.eos || !run.errors.is_empty());
        let ended = (self.run.eos, self.run.errors.len());
        self.wait_for(after, |run| (run.eos, run.errors.len()) != ended);
        stop_within(&self.pipeline, STOP_LIMIT);
        self.run
    }

    /// Reads the bus to EOS or error (or `limit`), then stops the pipeline.
    pub fn finish(mut self, limit: Duration) -> Run {
        self.wait_for(limit, |run| run.eos || !run.errors.is_empty());
        stop_within(&self.pipeline, STOP_LIMIT);
        self.run
    }
}

/// Longest a pipeline may take to reach NULL once its run is over.
pub const STOP_LIMIT: Duration = Duration::from_secs(60);

/// Sets `pipeline` to NULL on a helper thread and waits at most `limit`: a
/// pipeline that deadlocks on stop fails its test instead of holding the run.
pub fn stop_within(pipeline: &gst::Pipeline, limit: Duration) {
    // Asked before the stop: a stuck stop may hold the bin.
    let rtsp = has_rtspsrc(pipeline);
    let (stopped, when_stopped) = std::sync::mpsc::channel();
    let stopping = pipeline.clone();
    std::thread::spawn(move || {
        let _ = stopped.send(stopping.set_state(gst::State::Null));
    });
    match when_stopped.recv_timeout(limit) {
        Ok(result) => {
            result.expect("pipeline stops");
        }
        Err(_) => {
            // Where the stop is stuck is the only evidence such a rare hang
            // leaves: print it before the test fails.
            let stacks = super::watchdog::stacks(std::process::id()).unwrap_or_default();
            eprintln!("{stacks}");
            if rtsp && !stacks.is_empty() && !stacks.contains("gststsdub::") {
                // GStreamer 1.22's rtspsrc/rtpjitterbuffer teardown stall,
                // reproduced without stsdub (2 of 80 plain rtspsrc
                // pipelines): stsdub has reached NULL before it (no thread
                // is in its code), so the pipeline is left, said, not failed.
                eprintln!(
                    "warning: the pipeline's rtspsrc did not reach NULL within {} s \
                     (GStreamer 1.22's teardown stall; no thread is in stsdub): left behind",
                    limit.as_secs()
                );
                return;
            }
            panic!("pipeline does not reach NULL within {} s", limit.as_secs())
        }
    }
}

fn has_rtspsrc(pipeline: &gst::Pipeline) -> bool {
    pipeline
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .any(|e| e.type_().name() == "GstRTSPSrc")
}

/// Runs a gst-launch description to EOS (or `limit`), collecting bus messages.
pub fn run_pipeline(description: &str, limit: Duration) -> Run {
    Running::start(description).finish(limit)
}

/// The non-live file → stsdub → FLV pipeline.
pub fn file_to_flv(input: &Path, output: &Path, stsdub_props: &str) -> String {
    use stsdub_worker::pipeline::{Input, Output, worker};
    let input = Input::from_uri(&input.to_string_lossy()).expect("an .mp4 input");
    let output = Output::file(&output.to_string_lossy());
    worker(&input, stsdub_props, &output)
}

/// A live AAC source (`seconds` of a tone) → stsdub → FLV file.
pub fn live_to_flv(seconds: u64, output: &Path, stsdub_props: &str) -> String {
    let buffers = seconds * 48_000 / 1024;
    format!(
        "audiotestsrc is-live=true samplesperbuffer=1024 num-buffers={buffers} wave=sine freq=330 ! \
         audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! dub.audio_sink \
         stsdub name=dub {stsdub_props} dub.audio_src ! flvmux streamable=true ! filesink location={}",
        output.display()
    )
}

/// Every frame of every segment is in `output`, 20–22 ms apart (AAC at
/// 48 kHz): no gap, no overlap. The first packet, the AAC configuration,
/// shares the first frame's time.
#[track_caller]
pub fn assert_gapless_output(output: &std::path::Path, run: &Run) {
    let audio = packets(output, "a");
    assert_eq!(
        audio.len() as u64,
        run.frames(),
        "every frame of every segment is in the output"
    );
    for pair in audio.windows(2).skip(1) {
        let step = pair[1].pts - pair[0].pts;
        assert!(
            (20..=22).contains(&step),
            "gap or overlap: {} → {} ms",
            pair[0].pts,
            pair[1].pts
        );
    }
}

/// appsrc (`caps`) → `between` → stsdub (`props`, no STS) → FLV at
/// `output`, started; the appsrc to push into.
pub fn appsrc_to_stsdub(
    caps: &gst::Caps,
    between: &str,
    props: &str,
    output: &std::path::Path,
) -> (Running, gst_app::AppSrc) {
    use gst::prelude::*;
    let description = format!(
        "appsrc name=src format=time ! {between} dub.audio_sink \
         stsdub name=dub sts-url={} {props} dub.audio_src ! flvmux ! filesink location={}",
        dead_url(),
        output.display()
    );
    let running = Running::start(&description);
    let src = running
        .pipeline()
        .by_name("src")
        .and_downcast::<gst_app::AppSrc>()
        .expect("appsrc");
    src.set_caps(Some(caps));
    (running, src)
}
