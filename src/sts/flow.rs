// SPDX-License-Identifier: MPL-2.0

//! Flow control from the STS's `backpressure` events. Pure: time is an argument.
//!
//! `slow_down` spaces sends by `recommended_delay_ms`; `pause` stops sending
//! until `none`, and what is produced meanwhile falls back (never skipped,
//! never queued past its deadline); `none` lifts both.

use std::time::{Duration, Instant};

/// Longest spacing we accept from a `slow_down`: beyond it a segment would
/// wait longer than any sane timeout, so the advice is clamped.
pub const MAX_SEND_SPACING: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SlowDown(Duration),
    Pause,
    Resume,
}

impl Action {
    /// Every name `as_str` gives.
    pub const NAMES: [&'static str; 3] = ["slow_down", "pause", "none"];

    /// The plan's name of the action (`slow_down`, `pause`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SlowDown(_) => "slow_down",
            Action::Pause => "pause",
            Action::Resume => "none",
        }
    }

    /// Reads the plan's `action` and `recommended_delay_ms`; None for anything else.
    pub fn parse(action: &str, recommended_delay_ms: Option<u64>) -> Option<Self> {
        match action {
            "slow_down" => Some(Action::SlowDown(
                Duration::from_millis(recommended_delay_ms.unwrap_or(0)).min(MAX_SEND_SPACING),
            )),
            "pause" => Some(Action::Pause),
            "none" => Some(Action::Resume),
            _ => None,
        }
    }
}

/// What to do with the next fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Not before this instant.
    Wait(Instant),
    /// Paused by the STS: the fragment falls back.
    Paused,
}

#[derive(Debug, Clone, Default)]
pub struct FlowControl {
    spacing: Duration,
    paused: bool,
    last_send: Option<Instant>,
}

impl FlowControl {
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::SlowDown(spacing) => {
                self.spacing = spacing;
                self.paused = false;
            }
            Action::Pause => self.paused = true,
            Action::Resume => {
                self.spacing = Duration::ZERO;
                self.paused = false;
            }
        }
    }

    pub fn gate(&self, now: Instant) -> Gate {
        if self.paused {
            return Gate::Paused;
        }
        match self.last_send {
            Some(last) if now < last + self.spacing => Gate::Wait(last + self.spacing),
            _ => Gate::Open,
        }
    }

    pub fn sent(&mut self, now: Instant) {
        self.last_send = Some(now);
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// A new connection starts without the old server's advice.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_plan_actions() {
        assert_eq!(
            Action::parse("slow_down", Some(500)),
            Some(Action::SlowDown(Duration::from_millis(500)))
        );
        assert_eq!(
            Action::parse("slow_down", Some(600_000)),
            Some(Action::SlowDown(MAX_SEND_SPACING))
        );
        assert_eq!(Action::parse("pause", None), Some(Action::Pause));
        assert_eq!(Action::parse("none", Some(3)), Some(Action::Resume));
        assert_eq!(Action::parse("explode", None), None);
        for name in Action::NAMES {
            assert_eq!(Action::parse(name, Some(1)).map(Action::as_str), Some(name));
        }
    }

    #[test]
    fn slow_down_spaces_sends() {
        let t0 = Instant::now();
        let mut flow = FlowControl::default();
        assert_eq!(flow.gate(t0), Gate::Open);
        flow.apply(Action::SlowDown(Duration::from_millis(500)));
        flow.sent(t0);
        assert_eq!(
            flow.gate(t0 + Duration::from_millis(100)),
            Gate::Wait(t0 + Duration::from_millis(500))
        );
        assert_eq!(flow.gate(t0 + Duration::from_millis(500)), Gate::Open);
    }

    #[test]
    fn pause_refuses_until_none() {
        let t0 = Instant::now();
        let mut flow = FlowControl::default();
        flow.apply(Action::Pause);
        assert_eq!(flow.gate(t0), Gate::Paused);
        assert!(flow.is_paused());
        flow.apply(Action::Resume);
        assert_eq!(flow.gate(t0), Gate::Open);
    }

    #[test]
    fn none_lifts_the_spacing_and_reset_forgets_everything() {
        let t0 = Instant::now();
        let mut flow = FlowControl::default();
        flow.apply(Action::SlowDown(Duration::from_secs(2)));
        flow.sent(t0);
        flow.apply(Action::Resume);
        assert_eq!(flow.gate(t0), Gate::Open);
        flow.apply(Action::Pause);
        flow.reset();
        assert_eq!(flow.gate(t0), Gate::Open);
    }
}
