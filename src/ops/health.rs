// SPDX-License-Identifier: MPL-2.0

//! What an orchestrator asks of the process: is every stream alive
//! (`/healthz`), and has every stream settled with its STS (`/readyz`).
//!
//! Each stsdub element holds one [`Stream`] from its start (READY → PAUSED)
//! to its stop; the process keeps only weak references, so a stopped or
//! dropped element leaves the answers by itself. Marking output is one
//! atomic store on the streaming thread; the answers are computed when asked,
//! on the runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Output that has not advanced for this long (after the stream's latency
/// since PLAYING) is stuck: several segments' worth of silence from a live
/// element, which never holds more than its latency.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// Where a stream stands with its STS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sts {
    /// No session yet, and no attempt has failed: not ready.
    Starting,
    /// A session is up.
    Session,
    /// Running on original audio on purpose, and why (unreachable,
    /// reconnecting, breaker open, given up).
    Original(String),
}

/// Where a stream stands in its pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Paused,
    /// PLAYING since this time, output expected after `grace`.
    Playing {
        since: Duration,
    },
    /// EOS has left: no output is expected any more.
    Ended,
}

#[derive(Debug)]
struct Progress {
    phase: Phase,
    sts: Sts,
    /// How long output may take to start after PLAYING: the latency.
    grace: Duration,
}

/// One element's health, shared between the element and the endpoints.
#[derive(Debug)]
pub struct Stream {
    stream_id: String,
    element: String,
    /// When output last advanced, as time since [`origin`] in ns + 1
    /// (0: never).
    last_output: AtomicU64,
    progress: Mutex<Progress>,
}

static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);
static STREAMS: Mutex<Vec<Weak<Stream>>> = Mutex::new(Vec::new());

/// Time since the process's health origin; what every `now` here is.
pub fn now() -> Duration {
    ORIGIN.elapsed()
}

/// Registers a stream; it counts until the returned handle is dropped.
pub fn register(stream_id: &str, element: &str) -> Arc<Stream> {
    let stream = Arc::new(Stream {
        stream_id: stream_id.to_owned(),
        element: element.to_owned(),
        last_output: AtomicU64::new(0),
        progress: Mutex::new(Progress {
            phase: Phase::Paused,
            sts: Sts::Starting,
            grace: Duration::ZERO,
        }),
    });
    let mut streams = STREAMS.lock().unwrap_or_else(|e| e.into_inner());
    streams.retain(|s| s.strong_count() > 0);
    streams.push(Arc::downgrade(&stream));
    stream
}

fn registered() -> Vec<Arc<Stream>> {
    let streams = STREAMS.lock().unwrap_or_else(|e| e.into_inner());
    streams.iter().filter_map(Weak::upgrade).collect()
}

impl Stream {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Output advanced at `at`.
    pub fn output_at(&self, at: Duration) {
        let stamp = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        self.last_output.store(stamp, Ordering::Relaxed);
    }

    pub fn playing_at(&self, at: Duration) {
        self.progress().phase = Phase::Playing { since: at };
    }

    pub fn paused(&self) {
        self.progress().phase = Phase::Paused;
    }

    pub fn ended(&self) {
        self.progress().phase = Phase::Ended;
    }

    /// The stream's latency, which output may take to start.
    pub fn set_grace(&self, grace: Duration) {
        self.progress().grace = grace;
    }

    pub fn set_sts(&self, sts: Sts) {
        self.progress().sts = sts;
    }

    fn last_output(&self) -> Option<Duration> {
        match self.last_output.load(Ordering::Relaxed) {
            0 => None,
            stamp => Some(Duration::from_nanos(stamp - 1)),
        }
    }

    /// Why the stream is not healthy at `now`, if it is not.
    fn problem(&self, now: Duration) -> Option<String> {
        let progress = self.progress();
        let since = match progress.phase {
            Phase::Ended => return None,
            Phase::Paused => return Some("not PLAYING".into()),
            Phase::Playing { since } => since,
        };
        // Output counts from the later of PLAYING (plus the latency it may
        // take to start) and the last buffer out.
        let expected_from = (since + progress.grace).max(self.last_output().unwrap_or_default());
        let quiet = now.saturating_sub(expected_from);
        (quiet > STALL_AFTER).then(|| match self.last_output() {
            Some(_) => format!("no output for {:.1} s", quiet.as_secs_f64()),
            None => format!(
                "no output {:.1} s after PLAYING",
                now.saturating_sub(since).as_secs_f64()
            ),
        })
    }

    fn sts_state(&self) -> Sts {
        self.progress().sts.clone()
    }
}

#[derive(Debug, Serialize)]
struct Entry<'a> {
    stream_id: &'a str,
    element: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sts: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    status: &'static str,
    streams: usize,
    /// Only the streams that are not healthy (or not ready): with a
    /// thousand streams, the body names the few that matter.
    failing: Vec<Entry<'a>>,
}

/// An HTTP status and its JSON body.
pub type Answer = (u16, String);

fn answer(streams: usize, failing: Vec<Entry<'_>>, ok_without_streams: bool) -> Answer {
    let good = failing.is_empty() && (streams > 0 || ok_without_streams);
    let report = Report {
        status: if good { "ok" } else { "failing" },
        streams,
        failing,
    };
    let body = serde_json::to_string(&report).unwrap_or_default();
    (if good { 200 } else { 503 }, body)
}

/// `/healthz` over `streams` at `now`: 200 while every stream is PLAYING
/// (or has ended) with its output advancing, 503 naming those that are not.
/// No streams is healthy: nothing is stuck.
fn healthz_of(streams: &[Arc<Stream>], now: Duration) -> Answer {
    let failing = streams
        .iter()
        .filter_map(|s| {
            s.problem(now).map(|problem| Entry {
                stream_id: &s.stream_id,
                element: &s.element,
                problem: Some(problem),
                sts: None,
            })
        })
        .collect();
    answer(streams.len(), failing, true)
}

/// `/readyz` over `streams`: 200 once every stream has its STS session or
/// runs on original audio knowingly; 503 before the first stream starts.
fn readyz_of(streams: &[Arc<Stream>]) -> Answer {
    let failing = streams
        .iter()
        .filter(|s| s.sts_state() == Sts::Starting)
        .map(|s| Entry {
            stream_id: &s.stream_id,
            element: &s.element,
            problem: None,
            sts: Some("no STS session yet".into()),
        })
        .collect();
    answer(streams.len(), failing, false)
}

/// `/healthz` for the process, now.
pub fn healthz() -> Answer {
    healthz_of(&registered(), now())
}

/// `/readyz` for the process.
pub fn readyz() -> Answer {
    readyz_of(&registered())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn stream(id: &str) -> Arc<Stream> {
        // Not registered: the process-wide list is shared by every test.
        Arc::new(Stream {
            stream_id: id.into(),
            element: format!("dub_{id}"),
            last_output: AtomicU64::new(0),
            progress: Mutex::new(Progress {
                phase: Phase::Paused,
                sts: Sts::Starting,
                grace: Duration::ZERO,
            }),
        })
    }

    fn body(answer: &Answer) -> serde_json::Value {
        serde_json::from_str(&answer.1).expect("JSON body")
    }

    #[test]
    fn a_playing_stream_is_healthy_while_its_output_advances() {
        let s = stream("a");
        s.set_grace(3 * S);
        s.playing_at(10 * S);
        // Within its latency and the stall window, before any output.
        assert_eq!(healthz_of(std::slice::from_ref(&s), 17 * S).0, 200);
        s.output_at(14 * S);
        assert_eq!(healthz_of(std::slice::from_ref(&s), 19 * S).0, 200);
        let stuck = healthz_of(std::slice::from_ref(&s), 20 * S);
        assert_eq!(stuck.0, 503);
        assert_eq!(body(&stuck)["failing"][0]["problem"], "no output for 6.0 s");
    }

    #[test]
    fn a_stream_that_never_outputs_fails_after_its_latency_and_the_window() {
        let s = stream("a");
        s.set_grace(2 * S);
        s.playing_at(S);
        assert_eq!(healthz_of(std::slice::from_ref(&s), 8 * S).0, 200);
        let stuck = healthz_of(std::slice::from_ref(&s), 9 * S);
        assert_eq!(stuck.0, 503);
        assert_eq!(
            body(&stuck)["failing"][0]["problem"],
            "no output 8.0 s after PLAYING"
        );
    }

    #[test]
    fn only_the_stuck_stream_is_named() {
        let healthy = stream("healthy");
        let stuck = stream("stuck");
        for s in [&healthy, &stuck] {
            s.playing_at(Duration::ZERO);
            s.output_at(S);
        }
        healthy.output_at(20 * S);
        let answer = healthz_of(&[healthy, stuck], 21 * S);
        assert_eq!(answer.0, 503);
        let body = body(&answer);
        assert_eq!(body["streams"], 2);
        assert_eq!(body["failing"].as_array().map(Vec::len), Some(1));
        assert_eq!(body["failing"][0]["stream_id"], "stuck");
        assert_eq!(body["failing"][0]["element"], "dub_stuck");
    }

    #[test]
    fn paused_is_unhealthy_and_ended_is_not() {
        let s = stream("a");
        let paused = healthz_of(std::slice::from_ref(&s), S);
        assert_eq!(paused.0, 503);
        assert_eq!(body(&paused)["failing"][0]["problem"], "not PLAYING");
        s.playing_at(S);
        s.ended();
        assert_eq!(healthz_of(&[s], 100 * S).0, 200);
        assert_eq!(healthz_of(&[], S).0, 200);
    }

    #[test]
    fn ready_once_every_stream_has_a_session_or_knowingly_runs_on_original_audio() {
        let a = stream("a");
        let b = stream("b");
        assert_eq!(readyz_of(&[]).0, 503, "no stream has started");
        let waiting = readyz_of(&[a.clone(), b.clone()]);
        assert_eq!(waiting.0, 503);
        assert_eq!(body(&waiting)["failing"].as_array().map(Vec::len), Some(2));
        a.set_sts(Sts::Session);
        let one = readyz_of(&[a.clone(), b.clone()]);
        assert_eq!(body(&one)["failing"][0]["stream_id"], "b");
        b.set_sts(Sts::Original("STS unreachable".into()));
        assert_eq!(readyz_of(&[a, b]).0, 200);
    }

    #[test]
    fn a_dropped_stream_leaves_the_process_answers() {
        let kept = register("health-kept", "dub0");
        let dropped = register("health-dropped", "dub1");
        let ids = |streams: Vec<Arc<Stream>>| -> Vec<String> {
            streams.iter().map(|s| s.stream_id.clone()).collect()
        };
        assert!(ids(registered()).contains(&"health-dropped".to_owned()));
        drop(dropped);
        let left = ids(registered());
        assert!(left.contains(&"health-kept".to_owned()));
        assert!(!left.contains(&"health-dropped".to_owned()));
        drop(kept);
    }
}
