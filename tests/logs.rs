// SPDX-License-Identifier: MPL-2.0

//! What an operator reads with GST_DEBUG=stsdub:N: every warning says which
//! stream, batch and fragment it is about; DEBUG does not flood per buffer.
//! Alone in its binary, so no other test's lines mix in.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn every_warning_names_its_stream_batch_and_fragment_and_debug_does_not_flood() {
    // The chaos echo makes every kind of per-fragment fallback warning.
    let echo = EchoSts::start(&["--chaos"]);
    let props = format!(
        "sts-url={} stream-id=logged timeout=1000 max-inflight=1",
        echo.url
    );
    let (run, lines) = with_captured_logs(gst::DebugLevel::Debug, || {
        run_pipeline(
            &file_to_flv(&sample(), &scratch("logs.flv"), &props),
            Duration::from_secs(120),
        )
    });
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    let at = |level: gst::DebugLevel| -> Vec<&String> {
        lines
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, text)| text)
            .collect()
    };
    let warnings = at(gst::DebugLevel::Warning);
    let fallbacks = run.statuses().iter().filter(|s| *s == "fallback").count();
    assert!(warnings.len() >= fallbacks, "{warnings:#?}");
    for line in &warnings {
        assert!(line.contains("stream logged"), "no stream id: {line}");
        // The echo's answer for an id it makes up has no batch to name.
        if line.contains(" fragment ") && !line.contains("never sent") {
            assert!(
                line.contains(" batch "),
                "a fragment warning without its batch: {line}"
            );
        }
    }
    // Each segment that fell back says so at WARNING, with its batch and fragment.
    for segment in run
        .segments
        .iter()
        .filter(|s| s.get::<String>("status").as_deref() == Ok("fallback"))
    {
        let batch = segment.get::<u64>("batch").expect("batch");
        let fragment = segment.get::<String>("fragment-id").expect("fragment-id");
        let needle = format!("stream logged batch {batch} fragment {fragment}: original audio");
        assert!(
            warnings.iter().any(|l| l.contains(&needle)),
            "{needle}\n{warnings:#?}"
        );
    }
    // Lifecycle at INFO: the session, each dubbed segment.
    let info = at(gst::DebugLevel::Info);
    assert!(
        info.iter()
            .any(|l| l.contains("STS session") && l.contains("ready")),
        "{info:#?}"
    );
    // 2 800 audio and 1 500 video buffers went through: DEBUG and above
    // stay within a few lines per segment.
    let loud = lines
        .iter()
        .filter(|(l, _)| *l <= gst::DebugLevel::Debug)
        .count();
    eprintln!(
        "{loud} lines at DEBUG or above, {} warnings, for {} segments",
        warnings.len(),
        run.segments.len()
    );
    assert!(
        loud <= 10 * run.segments.len() + 20,
        "{loud} lines at DEBUG or above"
    );
}
