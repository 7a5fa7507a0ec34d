// SPDX-License-Identifier: MPL-2.0

//! The STS misbehaving, failing, pausing, dying and freezing: the stream goes
//! on, gapless, every segment accounted for as dubbed or fallback.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

const LIMIT: Duration = Duration::from_secs(60);
/// Short segments make live tests quick: 500 ms segments, and a latency that
/// is coherent with them (segment + timeout + 500 ms).
const LIVE_PROPS: &str = "segment-duration=500 timeout=1500 latency=2500";

#[test]
fn garbage_answers_fall_back_per_segment_and_never_break_the_stream() {
    let echo = EchoSts::start(&["--chaos"]);
    let output = scratch("chaos.flv");
    // The debug echo answers a good fragment in about 0.7-0.9 s: 3 s leaves
    // room under load, and only the unknown-id answer waits it out.
    let props = format!("sts-url={} timeout=3000 max-inflight=1", echo.url);
    let run = run_pipeline(&file_to_flv(&sample(), &output, &props), LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    // The echo's fixed cycle: good, bad base64, not M4A, wrong-typed status,
    // duplicate answer, answer for an unknown id, INVALID_SEQUENCE.
    let expected = [
        "",
        "invalid_reply",
        "invalid_reply",
        "invalid_reply",
        "",
        "timeout",
        "error",
        "",
        "invalid_reply",
        "invalid_reply",
    ];
    assert_eq!(run.reasons(), expected, "{:?}", run.segments);
    let statuses: Vec<&str> = expected
        .iter()
        .map(|r| if r.is_empty() { "dubbed" } else { "fallback" })
        .collect();
    assert_eq!(run.statuses(), statuses);
    let audio_in = packets(&reference_flv(), "a").len();
    assert_eq!(
        packets(&output, "a").len(),
        audio_in,
        "output exactly as long as the input"
    );
}

#[test]
fn breaker_opens_after_retryable_failures_and_closes_after_a_good_probe() {
    let echo = EchoSts::start(&["--error", "MODEL_ERROR", "--fail-first", "2"]);
    let output = scratch("breaker.flv");
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let props = format!(
        "sts-url={} stream-id=breaker {LIVE_PROPS} breaker-failure-threshold=2 breaker-cooldown=1200 metrics-address={metrics}",
        echo.url
    );
    let mut running = Running::start(&live_to_flv(6, &output, &props));
    // The gauge is there, closed, from the start (the first failure is a
    // whole live segment away); then follows the breaker: scraped right
    // after each transition.
    let at_start = scrape(&metrics);
    assert!(
        at_start.contains("worker_sts_breaker_state{stream_id=\"breaker\"} 0\n"),
        "{at_start}"
    );
    let mut gauge = Vec::new();
    for transitions in 1..=3 {
        assert!(running.wait_for(LIMIT, |run| run.breaker.len() >= transitions));
        gauge.push(metric_value(
            &scrape(&metrics),
            "worker_sts_breaker_state",
            r#"stream_id="breaker""#,
        ));
    }
    assert_eq!(gauge, [2.0, 1.0, 0.0], "open, half_open, closed");
    let run = running.finish(LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert_eq!(run.breaker, ["open", "half_open", "closed"]);
    let reasons = run.reasons();
    assert_eq!(reasons[..2], ["error", "error"], "{reasons:?}");
    let refused = reasons.iter().filter(|r| *r == "breaker_open").count();
    assert!(
        refused >= 1,
        "segments fall back while the breaker is open: {reasons:?}"
    );
    // Once closed, dubbing goes on to the end.
    let first_dubbed = reasons
        .iter()
        .position(|r| r.is_empty())
        .expect("dubbing resumes");
    assert!(
        reasons[first_dubbed..].iter().all(|r| r.is_empty()),
        "{reasons:?}"
    );
    assert_gapless_output(&output, &run);
}

#[test]
fn pause_makes_segments_fall_back_until_none() {
    let echo = EchoSts::start(&["--pause-at", "2", "--pause-ms", "1500"]);
    let output = scratch("pause.flv");
    let run = run_pipeline(
        &live_to_flv(6, &output, &format!("sts-url={} {LIVE_PROPS}", echo.url)),
        LIMIT,
    );
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    let reasons = run.reasons();
    assert!(reasons.iter().any(|r| r == "paused"), "{reasons:?}");
    let last_paused = reasons.iter().rposition(|r| r == "paused").expect("paused");
    assert!(
        reasons[last_paused + 1..].iter().any(|r| r.is_empty()),
        "dubbing resumes: {reasons:?}"
    );
    assert_gapless_output(&output, &run);
}

#[test]
fn sts_killed_and_restarted_falls_back_reconnects_and_dubs_again() {
    let echo = EchoSts::start(&[]);
    let port = echo.url.rsplit(':').next().expect("port").to_owned();
    let output = scratch("restart.flv");
    let props = format!("sts-url={} {LIVE_PROPS} reconnect-delay=300", echo.url);
    let mut running = Running::start(&live_to_flv(8, &output, &props));
    assert!(running.wait_for(
        LIMIT,
        |run| run.statuses().iter().filter(|s| *s == "dubbed").count() >= 2
    ));
    drop(echo);
    assert!(running.wait_for(LIMIT, |run| {
        run.warnings.iter().any(|w| w.contains("connection lost"))
    }));
    assert!(running.wait_for(LIMIT, |run| {
        run.reasons().iter().any(|r| r == "disconnected")
    }));
    let echo = EchoSts::start(&["--port", &port]);
    let before = running.run.segments.len();
    assert!(running.wait_for(LIMIT, |run| {
        run.statuses()[before..].iter().any(|s| s == "dubbed")
    }));
    let run = running.finish(LIMIT);
    drop(echo);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert_gapless_output(&output, &run);
}

#[test]
fn an_unsolicited_stream_complete_ends_that_session_not_the_dubbing() {
    // The STS closes the stream after the third answer, unasked: the element
    // warns, reconnects and dubs on (before the fix, every later segment fell
    // back as `disconnected` on the one connection).
    let echo = EchoSts::start(&["--complete-at", "3"]);
    let output = scratch("unsolicited-complete.flv");
    let props = format!("sts-url={} {LIVE_PROPS} reconnect-delay=100", echo.url);
    let run = run_pipeline(&live_to_flv(8, &output, &props), LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("connection lost") && w.contains("stream:complete")),
        "{:?}",
        run.warnings
    );
    let statuses = run.statuses();
    let dubbed_after = statuses.iter().skip(3).filter(|s| *s == "dubbed").count();
    assert!(
        dubbed_after >= statuses.len() / 2,
        "dubbing resumes after a reconnect: {:?}",
        run.reasons()
    );
    echo.wait_for_log("stream end", Duration::from_secs(10));
    assert_gapless_output(&output, &run);
}

#[test]
fn answers_for_fragments_never_sent_are_counted_apart_and_told_sparingly() {
    // A hostile peer: 200 answers with made-up ids before each real one.
    let echo = EchoSts::start(&["--unknown-answers", "200"]);
    let output = scratch("unknown-answers.flv");
    let props = format!("sts-url={} timeout=3000", echo.url);
    let mut running = Running::start(&file_to_flv(&sample(), &output, &props));
    assert!(running.wait_for(LIMIT, |run| run.eos || !run.errors.is_empty()));
    let stats = running
        .pipeline()
        .by_name("dub")
        .expect("stsdub named dub")
        .property::<gst::Structure>("stats");
    let run = running.finish(LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(
        run.statuses().iter().all(|s| s == "dubbed"),
        "{:?}",
        run.reasons()
    );
    assert_eq!(
        stats.get::<u64>("unknown-answers").ok(),
        Some(2000),
        "{stats:?}"
    );
    assert_eq!(stats.get::<u64>("late-answers").ok(), Some(0), "{stats:?}");
    let told = |name: &str| run.messages.iter().filter(|m| *m == name).count();
    assert_eq!(told("stsdub-late-answer"), 0);
    assert_eq!(
        told("stsdub-unknown-answer"),
        4,
        "at the 1st, 10th, 100th, 1000th"
    );
}

#[test]
fn a_reply_far_over_what_a_segment_needs_is_refused_and_the_stream_goes_on() {
    // 4 MiB of padding in every answer to a 6 s segment (the limit is about
    // 2 MB): before the limit followed the segment, the transport took up
    // to 64 MiB and every segment was dubbed.
    let echo = EchoSts::start(&["--pad-reply-kib", "4096"]);
    let output = scratch("oversized-reply.flv");
    let props = format!("sts-url={} timeout=3000 reconnect-delay=100", echo.url);
    let run = run_pipeline(&file_to_flv(&sample(), &output, &props), LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(
        run.statuses().iter().all(|s| s == "fallback"),
        "{:?}",
        run.statuses()
    );
    assert!(
        run.warnings.iter().any(|w| w.contains("Message too long")),
        "{:?}",
        run.warnings
    );
    assert_gapless_output(&output, &run);
}

#[test]
fn playing_null_cycles_with_fragments_in_flight_leak_no_thread_or_socket() {
    // bench_cycles in its own process, so that only its threads count.
    let output = Command::new(target_dir().join("examples").join("bench_cycles"))
        .arg("30")
        .output()
        .expect("bench_cycles runs");
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    // | cycle | RSS MiB | threads | open fds |
    let rows: Vec<(u64, u64, u64)> = table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            Some((
                cells.get(1)?.parse().ok()?,
                cells.get(3)?.parse().ok()?,
                cells.get(4)?.parse().ok()?,
            ))
        })
        .collect();
    assert_eq!(rows.len(), 4, "{table}");
    let (_, threads_at_10, fds_at_10) = rows[1];
    for (cycle, threads, fds) in &rows[2..] {
        assert_eq!(*threads, threads_at_10, "threads at cycle {cycle}: {table}");
        // One socket may still be closing when counted.
        assert!(
            fds.abs_diff(fds_at_10) <= 1,
            "descriptors at cycle {cycle}: {table}"
        );
    }
}

#[test]
fn the_echo_sts_help_lists_every_switch() {
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/echo_sts.rs"),
    )
    .expect("echo_sts source");
    let help = Command::new(target_dir().join("examples").join("echo_sts"))
        .arg("--help")
        .output()
        .expect("echo_sts runs");
    let help = String::from_utf8_lossy(&help.stdout);
    let switches: Vec<&str> = source
        .split('"')
        .filter(|t| {
            t.starts_with("--")
                && t.len() > 2
                && t[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .filter(|t| *t != "--help")
        .collect();
    assert!(switches.len() >= 19, "{switches:?}");
    for switch in switches {
        assert!(
            help.contains(switch),
            "--help does not list {switch}:\n{help}"
        );
    }
}

#[test]
fn a_frozen_sts_is_detected_within_ping_interval_plus_timeout() {
    let echo = EchoSts::start(&["--ping-interval-ms", "300", "--ping-timeout-ms", "300"]);
    let output = scratch("sigstop.flv");
    let props = format!("sts-url={} {LIVE_PROPS} reconnect-delay=60000", echo.url);
    let mut running = Running::start(&live_to_flv(6, &output, &props));
    assert!(running.wait_for(LIMIT, |run| run.statuses().contains(&"dubbed".to_owned())));
    let stopped = Instant::now();
    let status = Command::new("kill")
        .args(["-STOP", &echo.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    assert!(running.wait_for(LIMIT, |run| {
        run.warnings.iter().any(|w| w.contains("connection lost"))
    }));
    let detected = stopped.elapsed();
    assert!(
        detected <= Duration::from_millis(600 + 400),
        "detected after {detected:?}"
    );
    let run = running.finish(LIMIT);
    let _ = Command::new("kill")
        .args(["-CONT", &echo.pid().to_string()])
        .status();
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(
        run.reasons().iter().any(|r| r == "disconnected"),
        "{:?}",
        run.reasons()
    );
    assert_gapless_output(&output, &run);
}

#[test]
fn the_servers_lower_max_inflight_is_respected() {
    // The echo announces 1 and answers QUEUE_FULL to a second fragment in flight.
    let echo = EchoSts::start(&["--max-inflight", "1", "--delay-ms", "150"]);
    let output = scratch("max-inflight.flv");
    let props = format!("sts-url={} max-inflight=3", echo.url);
    let run = run_pipeline(&file_to_flv(&sample(), &output, &props), LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert_eq!(run.statuses(), vec!["dubbed"; 10], "{:?}", run.segments);
}

#[test]
fn slow_down_spaces_the_fragments_and_stream_end_is_acknowledged() {
    let echo = EchoSts::start(&["--slow-down-ms", "600"]);
    let output = scratch("slow-down.flv");
    let run = run_pipeline(
        &file_to_flv(&sample(), &output, &format!("sts-url={}", echo.url)),
        LIMIT,
    );
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert_eq!(run.statuses(), vec!["dubbed"; 10], "{:?}", run.segments);
    let arrivals: Vec<u64> = (0..10)
        .map(|_| {
            let line = echo.wait_for_log("echo_sts: fragment", Duration::from_secs(5));
            line.rsplit(' ')
                .next()
                .and_then(|ms| ms.parse().ok())
                .expect("at_ms")
        })
        .collect();
    for pair in arrivals.windows(2) {
        assert!(
            pair[1] - pair[0] >= 550,
            "fragments {} ms apart: {arrivals:?}",
            pair[1] - pair[0]
        );
    }
    echo.wait_for_log("stream end, 10 fragments", Duration::from_secs(5));
}

/// `error-after-reconnect-attempts`: once the attempts are used up the
/// element posts one error (for an orchestrator to restart the worker), and
/// counts it itself, as no bus-error tracer runs in this process.
#[test]
fn giving_up_posts_one_error_and_counts_it() {
    let running = Running::start(&live_to_flv(
        // Live and 30 s long: the run lasts until the element gives up.
        30,
        &scratch("give-up.flv"),
        &format!(
            "stream-id=gives-up sts-url={} reconnect-delay=100 reconnect-attempts=2 \
             error-after-reconnect-attempts=true",
            dead_url()
        ),
    ));
    // After the error, 2 s more: ten times the backoff, for a second one.
    let run = running.finish_watching(Duration::from_secs(60), Duration::from_secs(2));
    assert_eq!(run.errors.len(), 1, "{:?}", run.errors);
    assert!(
        // The first connection and its 2 reconnects.
        run.errors[0].contains("STS unreachable after 3 attempts"),
        "{:?}",
        run.errors
    );
    assert_eq!(
        metric_value(
            &gststsdub::ops::metrics::render(),
            "worker_gst_bus_errors_total",
            r#"stream_id="gives-up""#
        ),
        1.0
    );
}
