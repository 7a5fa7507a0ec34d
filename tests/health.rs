// SPDX-License-Identifier: MPL-2.0

//! /healthz and /readyz with a healthy and a stuck stream in one process.
//! Its own test binary: the probes answer for every stream of the process.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// Asks `path` until `until` holds for its answer, for at most `limit`;
/// the last answer either way.
fn probe_until(
    address: &str,
    path: &str,
    limit: Duration,
    until: impl Fn(u16, &serde_json::Value) -> bool,
) -> (u16, serde_json::Value) {
    let give_up = Instant::now() + limit;
    loop {
        let (status, body) = probe(address, path);
        if until(status, &body) || Instant::now() > give_up {
            return (status, body);
        }
        // Polling an HTTP endpoint: there is no event to wait on.
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn failing_ids(body: &serde_json::Value) -> Vec<String> {
    body["failing"]
        .as_array()
        .map(|failing| {
            failing
                .iter()
                .filter_map(|f| f["stream_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_probes_tell_a_stuck_stream_from_a_healthy_one() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let echo = EchoSts::start(&[]);
    let mut healthy = Running::start(&live_to_flv(
        120,
        &scratch("health-healthy.flv"),
        &format!(
            "sts-url={} stream-id=healthy segment-duration=1000 metrics-address={address}",
            echo.url
        ),
    ));
    // The stuck stream: three seconds of audio, then its source goes quiet
    // while the pipeline stays PLAYING. Its STS is unreachable.
    let (caps, frames) = aac_frames(141);
    let (stuck, src) = appsrc_to_stsdub(
        &caps,
        "aacparse !",
        &format!("stream-id=stuck segment-duration=1000 metrics-address={address}"),
        &scratch("health-stuck.flv"),
    );
    for frame in frames {
        src.push_buffer(frame).expect("pushed");
    }
    assert!(healthy.wait_for(Duration::from_secs(30), |run| run.segments.len() >= 2));

    let (status, body) = probe_until(&address, "/readyz", Duration::from_secs(30), |s, _| {
        s == 200
    });
    assert_eq!(
        status, 200,
        "both settled: one in session, one on original audio: {body}"
    );
    assert_eq!(body["streams"], 2, "{body}");
    let (status, body) = probe_until(&address, "/healthz", Duration::from_secs(5), |s, _| {
        s == 200
    });
    assert_eq!(status, 200, "both have output by now: {body}");

    // Output of the stuck one stopped at most 3 s of media in; it is named
    // once the stall window has passed, and the healthy one never is.
    let (status, body) = probe_until(&address, "/healthz", Duration::from_secs(20), |s, _| {
        s == 503
    });
    assert_eq!(status, 503, "{body}");
    assert_eq!(failing_ids(&body), ["stuck"], "{body}");
    let problem = body["failing"][0]["problem"].as_str().unwrap_or_default();
    assert!(problem.starts_with("no output for "), "{problem}");
    assert!(healthy.wait_for(Duration::from_secs(5), |run| run.segments.len() >= 4));
    assert!(
        healthy
            .run
            .statuses()
            .iter()
            .all(|status| status == "dubbed"),
        "the healthy stream kept dubbing: {:?}",
        healthy.run.statuses()
    );

    // A stream that is stopped leaves the answers: healthy again.
    drop(src);
    stuck
        .pipeline()
        .set_state(gst::State::Null)
        .expect("stuck pipeline stops");
    let (status, body) = probe(&address, "/healthz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["streams"], 1, "{body}");

    // PAUSED is not healthy.
    healthy
        .pipeline()
        .set_state(gst::State::Paused)
        .expect("pauses");
    let (status, body) = probe_until(&address, "/healthz", Duration::from_secs(5), |s, _| {
        s == 503
    });
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"][0]["problem"], "not PLAYING", "{body}");
    healthy
        .pipeline()
        .set_state(gst::State::Null)
        .expect("healthy pipeline stops");
}
