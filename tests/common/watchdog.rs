// SPDX-License-Identifier: MPL-2.0

//! The bound on a whole test binary. Every wait in a test is bounded, but a
//! wait that is not (a library call that blocks, a child that never ends)
//! would otherwise hold CI until its own limit, with nothing said of where.
//! Past the limit this prints where every thread of the binary and of its
//! child processes is, kills the children and aborts: the run fails at once,
//! with the evidence.
#![allow(dead_code)]

use std::process::Command;
use std::sync::Once;
use std::time::Duration;

/// Longest a test binary may run; `STSDUB_TEST_BINARY_LIMIT_S` overrides.
/// The slowest binary (tests/live.rs) takes about 6 minutes on 2 cores.
const DEFAULT_LIMIT: Duration = Duration::from_secs(20 * 60);

/// Starts the watchdog once per test binary; each later call does nothing.
pub fn arm_watchdog() {
    static ARMED: Once = Once::new();
    ARMED.call_once(|| {
        let limit = std::env::var("STSDUB_TEST_BINARY_LIMIT_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(DEFAULT_LIMIT, Duration::from_secs);
        let spawned = std::thread::Builder::new()
            .name("test-watchdog".into())
            .spawn(move || {
                // Nothing is ever sent: this is a wait of exactly `limit`.
                let (_keep, never) = std::sync::mpsc::channel::<()>();
                let _ = never.recv_timeout(limit);
                report_and_abort(limit);
            });
        if let Err(e) = spawned {
            eprintln!("test watchdog not started: {e}");
        }
    });
}

fn report_and_abort(limit: Duration) -> ! {
    let me = std::process::id();
    eprintln!(
        "\n===== test binary still running after {} s: where everything is =====",
        limit.as_secs()
    );
    let tree = descendants(me);
    let _ = Command::new("ps")
        .args(["-o", "pid,ppid,stat,etime,wchan:32,args", "--forest", "-g"])
        .arg(me.to_string())
        .status();
    for pid in std::iter::once(me).chain(tree.iter().copied()) {
        print_stacks(pid);
    }
    for pid in &tree {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    eprintln!("===== aborting the test binary =====");
    std::process::abort()
}

/// Every process below `root`, children before grandchildren.
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name may hold spaces; the fields after it do not.
            let after_name = &stat[stat.rfind(')')? + 1..];
            let ppid = after_name.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        next += 1;
    }
    found.split_off(1)
}

/// Each thread's stack of `pid` (gdb, bounded), else the kernel's wait channel.
pub fn print_stacks(pid: u32) {
    let name = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ");
    eprintln!("----- {pid}: {name}");
    match stacks(pid) {
        Some(stacks) => eprintln!("{stacks}"),
        None => {
            let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            eprintln!("(no gdb) wchan {wchan}");
        }
    }
}

/// Each thread's stack of `pid`, from gdb, at most 60 s (then gdb is
/// killed). Written to a file, not a pipe: gdb stops every thread of the
/// process it attaches to, so when that is this process, a pipe's reader
/// stops too, and gdb would block on a full pipe for ever (seen: a test
/// stuck 11 minutes on it).
pub fn stacks(pid: u32) -> Option<String> {
    let path = std::env::temp_dir().join(format!("stsdub-stacks-{pid}-{}.txt", std::process::id()));
    let file = std::fs::File::create(&path).ok()?;
    let gdb = Command::new("timeout")
        .args([
            "-k",
            "5",
            "60",
            "gdb",
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
        ])
        .arg("thread apply all bt 30")
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(std::process::Stdio::null())
        .status();
    let stacks = std::fs::read_to_string(&path).ok();
    let _ = std::fs::remove_file(&path);
    gdb.ok().filter(|s| s.success()).and(stacks)
}
