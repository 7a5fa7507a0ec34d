// SPDX-License-Identifier: MPL-2.0

//! Circuit breaker over STS answers, exactly as the plan has it. Pure: time
//! is an argument.
//!
//! closed → open after `failure_threshold` consecutive retryable failures
//! (TIMEOUT, MODEL_ERROR, GPU_OOM, QUEUE_FULL, RATE_LIMIT; our own timeouts
//! count as TIMEOUT); other codes do not count and do not reset the count.
//! open → half-open after `cooldown`; in half-open one fragment is sent as a
//! probe, the others fall back; its success closes the breaker, its failure
//! opens it again. While open nothing is sent.

use std::time::{Duration, Instant};

use super::protocol::ErrorCode;

pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

/// The breaker state as the plan's metric encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }
}

/// What the breaker says about sending a fragment now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Send,
    /// Send it: it is the half-open probe.
    Probe,
    /// Do not send: the fragment falls back.
    Refuse,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    failure_threshold: u32,
    cooldown: Duration,
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    /// The fragment sent as the half-open probe, while it is out.
    probe: Option<String>,
}

impl Breaker {
    pub fn new(failure_threshold: u32, cooldown: Duration) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            cooldown,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: None,
            probe: None,
        }
    }

    /// The state at `now` (open turns half-open once the cooldown is over).
    pub fn state(&mut self, now: Instant) -> BreakerState {
        if self.state == BreakerState::Open
            && self
                .opened_at
                .is_some_and(|at| now.duration_since(at) >= self.cooldown)
        {
            self.state = BreakerState::HalfOpen;
            self.probe = None;
        }
        self.state
    }

    /// Whether `fragment_id` may be sent at `now`; the one admitted as the
    /// half-open probe is remembered until its verdict.
    pub fn admit(&mut self, now: Instant, fragment_id: &str) -> Admission {
        match self.state(now) {
            BreakerState::Closed => Admission::Send,
            BreakerState::Open => Admission::Refuse,
            BreakerState::HalfOpen if self.probe.is_some() => Admission::Refuse,
            BreakerState::HalfOpen => {
                self.probe = Some(fragment_id.to_owned());
                Admission::Probe
            }
        }
    }

    /// A dubbed answer: the service is healthy.
    pub fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.state = BreakerState::Closed;
        self.opened_at = None;
        self.probe = None;
    }

    /// A failed answer for `fragment_id` with its error code (our own
    /// timeouts count as TIMEOUT).
    pub fn record_failure(&mut self, fragment_id: &str, code: &ErrorCode, now: Instant) {
        if !code.is_retryable() {
            // Says nothing about the service's health: if it was the probe,
            // let the next fragment probe.
            self.no_verdict(fragment_id);
            return;
        }
        self.consecutive_failures += 1;
        if self.probe.as_deref() == Some(fragment_id) {
            self.probe = None;
        }
        let half_open = self.state == BreakerState::HalfOpen;
        if half_open || self.consecutive_failures >= self.failure_threshold {
            self.state = BreakerState::Open;
            self.opened_at = Some(now);
            self.probe = None;
        }
    }

    /// `fragment_id` ended without a word on the service's health (never
    /// sent, an unreadable answer, a non-retryable error): if it was the
    /// probe, the next fragment probes.
    pub fn no_verdict(&mut self, fragment_id: &str) {
        if self.probe.as_deref() == Some(fragment_id) {
            self.probe = None;
        }
    }

    /// When an open breaker turns half-open.
    pub fn reopens_at(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open => self.opened_at.map(|at| at + self.cooldown),
            _ => None,
        }
    }

    /// Every fragment out fell back at once (disconnect, end): a probe
    /// among them never got its answer, the next fragment probes.
    pub fn probe_lost(&mut self) {
        self.probe = None;
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new(DEFAULT_FAILURE_THRESHOLD, DEFAULT_COOLDOWN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn opens_after_five_consecutive_retryable_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for code in ["TIMEOUT", "MODEL_ERROR", "GPU_OOM", "QUEUE_FULL"] {
            b.record_failure("f", &ErrorCode::from(code), t0);
            assert_eq!(b.admit(t0, "f"), Admission::Send);
        }
        b.record_failure("f", &ErrorCode::from("RATE_LIMIT"), t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(b.reopens_at(), Some(at(t0, 30)));
        assert_eq!(b.admit(at(t0, 29), "f"), Admission::Refuse);
    }

    #[test]
    fn non_retryable_codes_do_not_count() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..4 {
            b.record_failure("f", &ErrorCode::from("TIMEOUT"), t0);
        }
        for code in [
            "STREAM_NOT_FOUND",
            "INVALID_CONFIG",
            "FRAGMENT_TOO_LARGE",
            "INVALID_SEQUENCE",
        ] {
            b.record_failure("f", &ErrorCode::from(code), t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.record_failure("f", &ErrorCode::from("TIMEOUT"), t0);
        assert_eq!(
            b.state(t0),
            BreakerState::Open,
            "the four retryable ones still count"
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..4 {
            b.record_failure("f", &ErrorCode::from("TIMEOUT"), t0);
        }
        b.record_success();
        for _ in 0..4 {
            b.record_failure("f", &ErrorCode::from("TIMEOUT"), t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
    }

    #[test]
    fn half_open_after_cooldown_one_probe_success_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, Duration::from_secs(30));
        b.record_failure("f", &ErrorCode::from("TIMEOUT"), t0);
        b.record_failure("f", &ErrorCode::from("TIMEOUT"), t0);
        assert_eq!(b.state(at(t0, 29)), BreakerState::Open);
        assert_eq!(b.state(at(t0, 30)), BreakerState::HalfOpen);
        assert_eq!(b.admit(at(t0, 30), "f"), Admission::Probe);
        assert_eq!(
            b.admit(at(t0, 31), "f"),
            Admission::Refuse,
            "one probe at a time"
        );
        b.record_success();
        assert_eq!(b.state(at(t0, 31)), BreakerState::Closed);
        assert_eq!(b.admit(at(t0, 31), "f"), Admission::Send);
    }

    #[test]
    fn failed_probe_reopens_for_another_cooldown() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(30));
        b.record_failure("f", &ErrorCode::from("GPU_OOM"), t0);
        assert_eq!(b.admit(at(t0, 30), "f"), Admission::Probe);
        b.record_failure("f", &ErrorCode::from("TIMEOUT"), at(t0, 38));
        assert_eq!(b.state(at(t0, 38)), BreakerState::Open);
        assert_eq!(b.state(at(t0, 67)), BreakerState::Open);
        assert_eq!(b.state(at(t0, 68)), BreakerState::HalfOpen);
    }

    #[test]
    fn lost_probe_allows_another() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(1));
        b.record_failure("f", &ErrorCode::from("TIMEOUT"), t0);
        assert_eq!(b.admit(at(t0, 1), "f"), Admission::Probe);
        b.probe_lost();
        assert_eq!(b.admit(at(t0, 1), "f"), Admission::Probe);
    }

    #[test]
    fn the_breaker_keeps_its_probe_until_that_fragment_has_a_verdict() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(1));
        b.record_failure("a", &ErrorCode::Timeout, t0);
        assert_eq!(b.admit(at(t0, 1), "probe"), Admission::Probe);
        b.no_verdict("other");
        b.record_failure("other", &ErrorCode::from("INVALID_CONFIG"), at(t0, 1));
        assert_eq!(b.admit(at(t0, 1), "next"), Admission::Refuse, "still out");
        b.no_verdict("probe");
        assert_eq!(b.admit(at(t0, 1), "next"), Admission::Probe);
    }
}
