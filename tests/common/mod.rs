// SPDX-License-Identifier: MPL-2.0

//! Shared test helpers, one file per concern: `sts` (STS processes), `media`
//! (samples and ffmpeg readings), `run` (pipelines to their end), `observe`
//! (metrics and logs); here, registration, paths and child processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Once;
use std::time::Duration;

mod broadcast;
mod media;
mod observe;
mod run;
mod sts;
mod watchdog;

// Each test binary uses some of these, none all.
#[allow(unused_imports)]
pub use broadcast::*;
#[allow(unused_imports)]
pub use media::*;
#[allow(unused_imports)]
pub use observe::*;
#[allow(unused_imports)]
pub use run::*;
#[allow(unused_imports)]
pub use sts::*;
pub use watchdog::arm_watchdog;

pub fn init() {
    arm_watchdog();
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gststsdub::plugin_register_static().expect("stsdub registers");
    });
}

/// Where cargo built `libgststsdub.so`, for GST_PLUGIN_PATH.
pub fn plugin_dir() -> PathBuf {
    let dir = target_dir();
    assert!(
        dir.join("libgststsdub.so").exists(),
        "cdylib not built at {}",
        dir.display()
    );
    dir
}

pub fn target_dir() -> PathBuf {
    // tests run from target/<profile>/deps/<test>-<hash>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A built example binary (cargo test builds them all first).
pub fn example(name: &str) -> PathBuf {
    target_dir().join("examples").join(name)
}

/// A loopback port nothing listens on now (the OS picks it; a server
/// started after may take it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A program of the worker crate (`worker/src/bin/`), built beside the tests.
pub fn program(name: &str) -> PathBuf {
    target_dir().join(name)
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("test-output");
    std::fs::create_dir_all(&dir).expect("test-output dir");
    dir.join(name)
}

/// Runs the worker example (the demo's pipeline) from `input` to `output`,
/// at most `limit`: its exit status, or None if it had to be killed.
pub fn run_worker(
    input: &str,
    sts_url: &str,
    output: &Path,
    stream_id: &str,
    properties: &str,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let mut child = Command::new(program("stsdub-worker"))
        .args(["--input", input, "--sts-url", sts_url, "--output"])
        .arg(output)
        .args(["--stream-id", stream_id, "--stsdub-properties", properties])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("worker starts");
    wait_exit(&mut child, limit)
}

/// Waits for a child process to exit, at most `limit`: its exit status, or
/// None after killing it. Blocks in `wait` on a helper thread, so the test
/// does not spin a core that the live pipelines under test need.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    arm_watchdog();
    let pid = child.id().to_string();
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = exited.send(child.wait());
        });
        match exit.recv_timeout(limit) {
            Ok(Ok(status)) => Some(status),
            _ => {
                // Unblocks the waiting thread; the scope then joins it.
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                None
            }
        }
    })
}
