// SPDX-License-Identifier: MPL-2.0

//! The same round trip against Socket.IO servers we did not write: an echo
//! STS on python-socketio 5 (aiohttp) and one on Node's socket.io 4, both with
//! their default 1 MB buffers, both checking the schema of what we send and
//! failing any fragment that does not match it. `scripts/interop-setup.sh`
//! (run by the test command) installs them from the registries.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

fn python_peer() -> EchoSts {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/interop-setup.sh",
        python.display()
    );
    let mut command = Command::new(python);
    command.arg(interop_dir().join("echo_sts.py"));
    EchoSts::spawn(command)
}

fn node_peer() -> EchoSts {
    assert!(
        interop_dir().join("node_modules/socket.io").exists(),
        "socket.io missing: run scripts/interop-setup.sh"
    );
    let mut command = Command::new("node");
    command.arg(interop_dir().join("echo_sts.js"));
    EchoSts::spawn(command)
}

/// All ten segments come back as sent: dubbed status, the input's frames.
fn round_trip(peer: EchoSts, name: &str, props: &str, segments: usize) {
    let output = scratch(&format!("interop-{name}.flv"));
    let props = format!(
        "sts-url={} stream-id=interop-{name} worker-id=w1 {props}",
        peer.url
    );
    let run = run_pipeline(
        &file_to_flv(&sample(), &output, &props),
        Duration::from_secs(120),
    );
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    assert_eq!(
        run.statuses(),
        vec!["dubbed"; segments],
        "{:?}",
        run.segments
    );
    let expected = packets(&reference_flv(), "a");
    let got = packets(&output, "a");
    assert_eq!(got.len(), expected.len());
    assert!(
        got.iter().zip(&expected).all(|(a, b)| a.md5 == b.md5),
        "the echoed audio is the input's, frame for frame"
    );
}

#[test]
fn python_socketio_server_round_trip() {
    round_trip(python_peer(), "python", "", 10);
}

#[test]
fn node_socketio_server_round_trip() {
    round_trip(node_peer(), "node", "", 10);
}

/// 30 s segments: about 360 KB of M4A, 480 KB of base64 each way.
#[test]
fn large_payloads_pass_both_ways_under_the_default_1_mb_buffers() {
    round_trip(python_peer(), "python-large", "segment-duration=30000", 2);
    round_trip(node_peer(), "node-large", "segment-duration=30000", 2);
}

/// Busy threads on every core while it lives: the scheduling under which
/// a process that exits right after its pipeline stops loses what its
/// sessions had not sent yet.
struct CoresLoaded {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CoresLoaded {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for CoresLoaded {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// What the python peer saw of one connection.
#[derive(Debug, Default)]
struct Lifecycle {
    dubbed: usize,
    applied: usize,
    ended: bool,
}

/// Each connection's lifecycle, from the peer's log of a run.
fn lifecycles(lines: &[String]) -> std::collections::BTreeMap<String, Lifecycle> {
    let mut sessions = std::collections::BTreeMap::<String, Lifecycle>::new();
    let sid = |line: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("sid="))
            .map(str::to_owned)
    };
    for line in lines {
        let Some(sid) = sid(line) else { continue };
        let session = sessions.entry(sid).or_default();
        if line.contains("python echo: applied ") {
            session.applied += 1;
        } else if line.contains("python echo: stream end ") {
            session.ended = true;
        } else if let Some(sent) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("sent="))
        {
            session.dubbed = sent.parse().expect("a count");
        }
    }
    sessions
}

/// The plan's lifecycle (init, ready, fragments, end, complete) on every
/// connection, every time: the worker with three languages on an MPEG-TS
/// file, run again and again with both cores loaded, acknowledges every
/// dubbed segment as applied and sends `stream:end` on each connection
/// before it exits (a process that exits right after its pipeline stops
/// once lost the last ack and `stream:end` of one session in 7 runs).
#[test]
fn every_session_acknowledges_its_last_segment_and_ends_the_stream_before_exit() {
    let runs: usize = std::env::var("STSDUB_LIFECYCLE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let peer = python_peer();
    let input = remuxed(
        &sample(),
        "lifecycle-8s.ts",
        &["-i", "{}", "-t", "8", "-c", "copy"],
    );
    let output = scratch("lifecycle.ts");
    let _load = CoresLoaded::start();
    for run in 0..runs {
        let mut worker = Command::new(program("stsdub-worker"))
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .args(["--target-languages", "es,fr,de", "--sts-url", &peer.url])
            .args(["--stream-id", &format!("lifecycle-{run}")])
            .args(["--stsdub-properties", "segment-duration=2000"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the worker starts");
        let status = wait_exit(&mut worker, Duration::from_secs(60));
        assert!(
            status.is_some_and(|s| s.success()),
            "run {run}: the worker ends ({status:?})"
        );
        let lines = peer.log_until(Duration::from_secs(20), |lines| {
            lines
                .iter()
                .filter(|l| l.contains("python echo: disconnect "))
                .count()
                >= 3
        });
        let sessions = lifecycles(&lines);
        assert_eq!(
            sessions.len(),
            3,
            "run {run}: three connections: {lines:#?}"
        );
        for (sid, session) in &sessions {
            assert!(
                session.dubbed >= 4 && session.applied == session.dubbed && session.ended,
                "run {run}, connection {sid}: {session:?}"
            );
        }
    }
    eprintln!("{runs} runs, three languages each: every ack and stream:end on every connection");
}
