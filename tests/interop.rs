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
