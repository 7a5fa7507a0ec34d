// SPDX-License-Identifier: MPL-2.0

//! Prometheus metrics: one /metrics endpoint per process for every stsdub,
//! the plan's names with their types, values that match the bus messages.

mod common;

use std::time::Duration;

use common::*;

/// One /metrics endpoint per process: every test here uses the same one.
fn endpoint() -> String {
    static ADDRESS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ADDRESS
        .get_or_init(|| {
            let port = free_port();
            format!("127.0.0.1:{port}")
        })
        .clone()
}

#[test]
fn two_streams_one_endpoint_counters_match_the_segments() {
    let address = endpoint();
    let echo = EchoSts::start(&[]);
    let slow = EchoSts::start(&["--delay-ms", "1500"]);
    let props =
        |sts: &str, id: &str| format!("sts-url={sts} stream-id={id} metrics-address={address}");
    let mut one = Running::start(&file_to_flv(
        &sample(),
        &scratch("metrics-one.flv"),
        &props(&echo.url, "one"),
    ));
    // Scraped during the run, once the first segment has left.
    assert!(one.wait_for(Duration::from_secs(60), |run| !run.segments.is_empty()));
    let during = scrape(&address);
    assert!(
        metric_value(
            &during,
            "worker_audio_fragments_total",
            r#"stream_id="one""#
        ) >= 1.0,
        "{during}"
    );
    let one = one.finish(Duration::from_secs(120));
    let two = run_pipeline(
        &file_to_flv(
            &sample(),
            &scratch("metrics-two.flv"),
            // Loudness on: its gauges exist only for a re-encoded stream.
            &(props(&slow.url, "two") + " timeout=400 loudness=target"),
        ),
        Duration::from_secs(120),
    );
    assert!(one.eos && two.eos);
    let after = scrape(&address);
    // The alerts and the dashboard ask only for what is exported.
    for file in [
        "deploy/prometheus/stsdub-rules.yml",
        "deploy/grafana/stsdub-dashboard.json",
    ] {
        assert_only_exported_metrics(file, &after);
    }
    for (name, kind) in [
        ("worker_audio_fragments_total", "counter"),
        ("worker_dubbed_total", "counter"),
        ("worker_fallback_total", "counter"),
        ("worker_gst_bus_errors_total", "counter"),
        ("worker_late_answers_total", "counter"),
        ("worker_sts_reconnects_total", "counter"),
        ("worker_backpressure_events_total", "counter"),
        ("worker_sts_bytes_sent_total", "counter"),
        ("worker_sts_bytes_received_total", "counter"),
        ("worker_inflight_fragments", "gauge"),
        ("worker_av_sync_delta_ms", "gauge"),
        ("worker_sts_breaker_state", "gauge"),
        ("worker_latency_ms", "gauge"),
        ("worker_sts_rtt_ms", "histogram"),
    ] {
        let declared = format!("# TYPE {name} {kind}");
        assert!(after.contains(&declared), "{declared} missing:\n{after}");
        // Every stream has every series from its start, zero or not.
        for id in ["one", "two"] {
            let series = if kind == "histogram" {
                format!("{name}_count{{stream_id=\"{id}\"}}")
            } else {
                format!("{name}{{")
            };
            assert!(
                after
                    .lines()
                    .any(|l| l.starts_with(&series) && l.contains(&format!("stream_id=\"{id}\""))),
                "{name} has no series for {id}:\n{after}"
            );
        }
    }
    // An operator's alert on a reason that has not happened yet sees a zero.
    for reason in [
        "timeout",
        "deadline",
        "breaker_open",
        "disconnected",
        "paused",
        "error",
        "invalid_reply",
    ] {
        assert!(
            after.contains(&format!(
                "worker_fallback_total{{reason=\"{reason}\",stream_id=\"one\"}}"
            )),
            "no {reason} series for one:\n{after}"
        );
    }
    assert_eq!(
        metric_value(&after, "worker_gst_bus_errors_total", r#"stream_id="one""#),
        0.0
    );
    for (run, id) in [(&one, "one"), (&two, "two")] {
        let labels = format!(r#"stream_id="{id}""#);
        let segments = run.segments.len() as f64;
        let dubbed = run.statuses().iter().filter(|s| *s == "dubbed").count() as f64;
        assert_eq!(
            metric_value(&after, "worker_audio_fragments_total", &labels),
            segments,
            "{id}"
        );
        assert_eq!(
            metric_value(&after, "worker_dubbed_total", &labels),
            dubbed,
            "{id}"
        );
        let mut reasons = run.reasons();
        reasons.retain(|r| !r.is_empty());
        reasons.sort();
        reasons.dedup();
        let fallbacks: f64 = reasons
            .iter()
            .map(|r| {
                metric_value(
                    &after,
                    "worker_fallback_total",
                    &format!(r#"reason="{r}",stream_id="{id}""#),
                )
            })
            .sum();
        assert_eq!(
            dubbed + fallbacks,
            segments,
            "{id}: dubbed + fallback = segments"
        );
    }
    // Independent label sets: all of one dubbed; two timed out until its
    // breaker opened (5 timeouts), then fell back as breaker_open.
    assert_eq!(
        metric_value(&after, "worker_dubbed_total", r#"stream_id="one""#),
        10.0,
        "{:?}",
        one.reasons()
    );
    assert_eq!(
        metric_value(&after, "worker_dubbed_total", r#"stream_id="two""#),
        0.0
    );
    assert!(
        metric_value(
            &after,
            "worker_fallback_total",
            r#"reason="timeout",stream_id="two""#
        ) >= 1.0
    );
    assert_eq!(
        metric_value(&after, "worker_sts_breaker_state", r#"stream_id="two""#),
        2.0,
        "two's breaker is open"
    );
    assert_eq!(
        metric_value(&after, "worker_sts_rtt_ms_count", r#"stream_id="one""#),
        10.0
    );
    // Every segment went out as base64 M4A: at least 4/3 of the input's AAC
    // bytes, and not much more (container, JSON and Engine.IO framing).
    let aac_bytes: u64 = packets(&sample(), "a").iter().map(|p| p.size).sum();
    let base64 = aac_bytes as f64 * 4.0 / 3.0;
    let sent = metric_value(&after, "worker_sts_bytes_sent_total", r#"stream_id="one""#);
    let received = metric_value(
        &after,
        "worker_sts_bytes_received_total",
        r#"stream_id="one""#,
    );
    assert!(
        sent >= base64 && sent <= base64 * 1.1,
        "sent {sent} for {aac_bytes} AAC bytes"
    );
    // The echo's dubbed audio comes back re-encoded at a similar rate.
    assert!(
        received >= base64 * 0.5 && received <= base64 * 2.0,
        "received {received} for {aac_bytes} AAC bytes"
    );
}

/// `worker_inflight_fragments` moves as segments are sent and answered, not
/// only when they leave: with an echo that takes 3 s, segments are in flight
/// before the first one has left, and none are at the end.
#[test]
fn the_inflight_gauge_follows_segments_out_and_back() {
    let address = endpoint();
    let echo = EchoSts::start(&["--delay-ms", "3000"]);
    let props = format!(
        "sts-url={} stream-id=inflight max-inflight=3 metrics-address={address}",
        echo.url
    );
    let mut running = Running::start(&file_to_flv(&sample(), &scratch("inflight.flv"), &props));
    let inflight = || {
        let text = scrape(&address);
        metric_value(
            &text,
            "worker_inflight_fragments",
            r#"stream_id="inflight""#,
        )
    };
    // The endpoint is up once the element is PAUSED, before start returns.
    // Poll it until answers are awaited; the echo takes 3 s to give any.
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = inflight();
    while seen < 1.0 && std::time::Instant::now() < give_up {
        seen = inflight();
    }
    assert!(seen >= 1.0, "segments in flight");
    // Nothing has left yet: the gauge moved when segments were sent.
    running.wait_for(Duration::from_millis(1), |_| false);
    assert!(
        running.run.segments.is_empty(),
        "{:?}",
        running.run.segments
    );
    assert!(
        seen <= 4.0,
        "at most max-inflight + 1 segments cut ahead: {seen}"
    );
    let run = running.finish(Duration::from_secs(120));
    assert!(run.eos, "{run:?}");
    assert_eq!(inflight(), 0.0);
}

/// Every `worker_…` metric that `file` (in the repository) names is one
/// the scrape declares (a histogram's `_bucket`, `_sum`, `_count` by its
/// name).
#[track_caller]
fn assert_only_exported_metrics(file: &str, scrape: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).expect("the file is there");
    let mut named: Vec<&str> = text
        .match_indices("worker_")
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    named.sort_unstable();
    named.dedup();
    assert!(named.len() >= 4, "{file} names {named:?}");
    for name in named {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            scrape.contains(&format!("# TYPE {base} ")),
            "{file} uses {name}, which stsdub does not export"
        );
    }
}

/// promtool (Debian's prometheus package) checks the alert rules and runs
/// their unit tests: each alert fires on its fault and not on a healthy stream.
#[test]
fn the_alert_rules_are_valid_and_fire_on_their_faults() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    for args in [
        ["check", "rules", "stsdub-rules.yml"],
        ["test", "rules", "stsdub-rules.test.yml"],
    ] {
        let output = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool runs (apt-get install prometheus)");
        assert!(
            output.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
