// SPDX-License-Identifier: MPL-2.0

//! The `stsdub-bus-errors` tracer: every error posted in a pipeline counts
//! once in `worker_gst_bus_errors_total`, under the stream ids it hits.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use common::*;
use gst::glib;
use gst::prelude::*;

/// A tracer instance, as GST_TRACERS would make at gst_init (the plugin is
/// registered after it here, statically). Kept for the whole process.
fn enable_tracer() {
    static TRACER: OnceLock<glib::SendWeakRef<gst::Object>> = OnceLock::new();
    init();
    TRACER.get_or_init(|| {
        let factory = gst::TracerFactory::factories()
            .into_iter()
            .find(|f| f.name() == "stsdub-bus-errors")
            .expect("the plugin registers the tracer");
        let tracer = glib::Object::with_type(factory.tracer_type())
            .downcast::<gst::Object>()
            .expect("a tracer is a GstObject");
        let weak = tracer.downgrade().into();
        std::mem::forget(tracer);
        weak
    });
}

fn errors_counted(stream_id: &str) -> f64 {
    metric_value(
        &gststsdub::ops::metrics::render(),
        "worker_gst_bus_errors_total",
        &format!(r#"stream_id="{stream_id}""#),
    )
}

/// Plays `pipeline` until its first error and returns the sources of every
/// error message posted on its bus, seen as they are posted.
fn error_sources(pipeline: &gst::Pipeline, limit: Duration) -> Vec<String> {
    let bus = pipeline.bus().expect("a bus");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (first, first_posted) = mpsc::channel();
    let record = seen.clone();
    bus.set_sync_handler(move |_, message| {
        if message.type_() == gst::MessageType::Error {
            let source = message.src().map(|s| s.name().to_string());
            record
                .lock()
                .expect("not poisoned")
                .push(source.unwrap_or_default());
            let _ = first.send(());
        }
        gst::BusSyncReply::Pass
    });
    let _ = pipeline.set_state(gst::State::Playing);
    let _ = first_posted.recv_timeout(limit);
    pipeline.set_state(gst::State::Null).expect("stops");
    bus.unset_sync_handler();
    seen.lock().expect("not poisoned").clone()
}

fn parsed(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline")
}

#[test]
fn an_error_anywhere_in_the_pipeline_counts_once_for_its_stsdub() {
    enable_tracer();
    let sources = error_sources(
        &parsed(
            "stsdub stream-id=traced-neighbour \
             filesrc name=missing location=/nonexistent/stsdub-input ! fakesink",
        ),
        Duration::from_secs(10),
    );
    // filesrc posts two: "not found", then basesrc's "state change failed".
    assert!(!sources.is_empty() && sources.iter().all(|s| s == "missing"));
    // Each posted by filesrc, and again by the pipeline on its way to the
    // bus: counted once each.
    assert_eq!(errors_counted("traced-neighbour"), sources.len() as f64);
}

#[test]
fn an_error_of_stsdub_itself_counts_once() {
    enable_tracer();
    let description = live_to_flv(
        // Live and 30 s long: the run lasts until the element gives up.
        30,
        &scratch("tracer-own.flv"),
        &format!(
            "stream-id=traced-own sts-url={} reconnect-delay=100 reconnect-attempts=1 \
             error-after-reconnect-attempts=true",
            dead_url()
        ),
    );
    let sources = error_sources(&parsed(&description), Duration::from_secs(30));
    assert_eq!(sources.len(), 1, "the element gives up with an error");
    assert_eq!(
        errors_counted("traced-own"),
        1.0,
        "tracer and element do not both count it"
    );
}

#[test]
fn a_pipeline_without_stsdub_counts_under_its_name() {
    enable_tracer();
    let pipeline = gst::Pipeline::with_name("plain-pipeline");
    let bin =
        gst::parse::bin_from_description("filesrc location=/nonexistent/input ! fakesink", false)
            .expect("bin parses");
    pipeline.add(&bin).expect("added");
    let sources = error_sources(&pipeline, Duration::from_secs(10));
    assert!(!sources.is_empty());
    assert_eq!(errors_counted("plain-pipeline"), sources.len() as f64);
}

/// What an operator runs: the plugin from GST_PLUGIN_PATH, the tracer from
/// GST_TRACERS, under plain gst-launch-1.0.
#[test]
fn gst_launch_loads_the_tracer_from_gst_tracers() {
    let output = Command::new("gst-launch-1.0")
        .args([
            "stsdub",
            "stream-id=launched",
            "filesrc",
            "location=/nonexistent/input",
            "!",
            "fakesink",
        ])
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", scratch("tracer-registry.bin"))
        .env("GST_TRACERS", "stsdub-bus-errors")
        .env("GST_DEBUG", "stsdub*:2")
        .env("GST_DEBUG_NO_COLOR", "1")
        .output()
        .expect("gst-launch-1.0 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "the pipeline fails: {stdout}");
    // filesrc's "not found", then basesrc's "state change failed".
    assert_eq!(
        stderr
            .matches("stream launched: error on the bus counted")
            .count(),
        stderr.matches("ERROR: from element").count(),
        "{stderr}"
    );
    assert!(stderr.contains("ERROR: from element"), "{stderr}");
}
