// SPDX-License-Identifier: MPL-2.0

//! STS processes for tests: the echo STS (or any peer that prints its
//! address first) as a real process, and a URL where nothing listens.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

/// The echo STS example running as its own process on a free loopback port.
pub struct EchoSts {
    child: Child,
    pub url: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl EchoSts {
    pub fn start(args: &[&str]) -> Self {
        let binary = target_dir().join("examples").join("echo_sts");
        assert!(
            binary.exists(),
            "{} missing: cargo test builds examples",
            binary.display()
        );
        let mut command = Command::new(&binary);
        command.args(["--port", "0"]).args(args);
        Self::spawn(command)
    }

    /// Any STS process that prints `listening on URL` as its first line.
    pub fn spawn(mut command: Command) -> Self {
        arm_watchdog();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let _ = tx.send(line);
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("echo_sts prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from echo_sts: {line:?}"))
            .to_owned();
        Self { child, url, log }
    }

    /// Blocks until the echo logs a line containing `needle` (or panics after `limit`).
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(remaining) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("echo_sts never logged {needle:?}"),
            }
        }
    }

    /// The lines the echo logs from now until `done` holds for them (or
    /// `limit` passes: then what came).
    pub fn log_until(&self, limit: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = std::time::Instant::now() + limit;
        let mut lines = Vec::new();
        while !done(&lines) {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(remaining) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        lines
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoSts {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback URL where nothing listens.
pub fn dead_url() -> String {
    format!("http://127.0.0.1:{}", super::free_port())
}
