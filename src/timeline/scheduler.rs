// SPDX-License-Identifier: MPL-2.0

//! Deadlines and the ordered output of segments. Pure: time is an argument.
//!
//! Segment k covers running time [t_k, t_k + D). A live sink renders it at
//! t_k + pipeline latency, so its audio must leave before that, minus a margin
//! for pushing it through the muxer. Whatever is known at the deadline wins:
//! the dubbed audio if it arrived, the original otherwise. Segments leave in
//! order; a segment decided early waits for the ones before it.

use std::collections::VecDeque;

use gst::ClockTime;

/// Time kept between the decision and the sink's render time, for pushing
/// a segment's frames through the muxer and sink.
pub const DEADLINE_MARGIN: ClockTime = ClockTime::from_mseconds(200);

/// Time the element allows itself for packing, sending and unpacking a
/// segment, on top of the STS's own answer time.
pub const PROCESSING_ALLOWANCE: ClockTime = ClockTime::from_mseconds(300);

/// The smallest latency with which an answer that comes within `timeout` is
/// never late: a segment is complete D after its start, then the STS has
/// `timeout`, then we need our processing and the margin.
pub fn coherent_latency(segment_duration: ClockTime, timeout: ClockTime) -> ClockTime {
    segment_duration + timeout + PROCESSING_ALLOWANCE + DEADLINE_MARGIN
}

/// In a live pipeline whose `latency` cannot hold a whole segment, the
/// longest segment whose first frame still leaves by its deadline (a
/// segment is complete, and can leave, when its last frame is in); None
/// when a full segment fits.
pub fn live_longest_segment(latency: ClockTime, segment_duration: ClockTime) -> Option<ClockTime> {
    let room = latency.saturating_sub(DEADLINE_MARGIN);
    (room < segment_duration).then_some(room.max(ClockTime::from_mseconds(1)))
}

/// Running time by which the segment starting at `segment_start` must be
/// decided, given the latency the pipeline renders with.
pub fn decision_deadline(segment_start: ClockTime, pipeline_latency: ClockTime) -> ClockTime {
    (segment_start + pipeline_latency).saturating_sub(DEADLINE_MARGIN)
}

/// Why a segment went out as original audio. The names are metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FallbackReason {
    /// The STS did not answer within `timeout`.
    Timeout,
    /// The live deadline came first.
    Deadline,
    /// No session with the STS when the segment was ready.
    Disconnected,
    /// The STS answered `failed`.
    Error,
    /// The answer was unusable: bad base64, not M4A, wrong format.
    InvalidReply,
    /// The circuit breaker is open (or half-open with its probe out).
    BreakerOpen,
    /// The STS asked us to pause.
    Paused,
}

impl FallbackReason {
    pub const ALL: [FallbackReason; 7] = [
        FallbackReason::Timeout,
        FallbackReason::Deadline,
        FallbackReason::Disconnected,
        FallbackReason::Error,
        FallbackReason::InvalidReply,
        FallbackReason::BreakerOpen,
        FallbackReason::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Timeout => "timeout",
            FallbackReason::Deadline => "deadline",
            FallbackReason::Disconnected => "disconnected",
            FallbackReason::Error => "error",
            FallbackReason::InvalidReply => "invalid_reply",
            FallbackReason::BreakerOpen => "breaker_open",
            FallbackReason::Paused => "paused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<D> {
    Dubbed(D),
    Original(FallbackReason),
}

/// What leaves the queue: a decided segment, or an event kept in order with data.
#[derive(Debug, PartialEq, Eq)]
pub enum Ready<S, D, E> {
    Segment {
        batch: u64,
        segment: S,
        outcome: Outcome<D>,
    },
    Event(E),
}

#[derive(Debug)]
enum Item<S, D, E> {
    Segment {
        batch: u64,
        segment: S,
        outcome: Option<Outcome<D>>,
    },
    Event(E),
}

/// What happened to an answer handed to [`OutputQueue::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Taken,
    /// The segment was already decided (e.g. fell back at its deadline).
    TooLate,
    /// No such segment any more (flushed or already sent).
    Unknown,
}

/// Segments in input order, each waiting for its outcome.
#[derive(Debug)]
pub struct OutputQueue<S, D, E> {
    items: VecDeque<Item<S, D, E>>,
    /// The first items, already shown by [`OutputQueue::announce_decided`].
    announced: usize,
}

impl<S, D, E> Default for OutputQueue<S, D, E> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            announced: 0,
        }
    }
}

/// An item of the queue's decided head, as [`OutputQueue::announce_decided`] shows it.
#[derive(Debug)]
pub enum DecidedItem<'a, S, D, E> {
    Segment(&'a S, &'a Outcome<D>),
    Event(&'a E),
}

impl<S, D, E> OutputQueue<S, D, E> {
    pub fn push_segment(&mut self, batch: u64, segment: S) {
        self.items.push_back(Item::Segment {
            batch,
            segment,
            outcome: None,
        });
    }

    pub fn push_event(&mut self, event: E) {
        self.items.push_back(Item::Event(event));
    }

    /// Records the outcome of a segment; the first outcome wins.
    pub fn decide(&mut self, batch: u64, outcome: Outcome<D>) -> Decision {
        for item in &mut self.items {
            if let Item::Segment {
                batch: b,
                outcome: slot,
                ..
            } = item
                && *b == batch
            {
                if slot.is_some() {
                    return Decision::TooLate;
                }
                *slot = Some(outcome);
                return Decision::Taken;
            }
        }
        Decision::Unknown
    }

    /// Shows each item once, in order, as soon as it and every item before
    /// it are decided (an event is): what is known of the output before it
    /// leaves. Items that leave unshown are never shown, so call it before
    /// [`OutputQueue::pop_ready`] too.
    pub fn announce_decided(&mut self, mut show: impl FnMut(DecidedItem<'_, S, D, E>)) {
        while let Some(item) = self.items.get(self.announced) {
            match item {
                Item::Segment { outcome: None, .. } => return,
                Item::Segment {
                    segment,
                    outcome: Some(outcome),
                    ..
                } => show(DecidedItem::Segment(segment, outcome)),
                Item::Event(event) => show(DecidedItem::Event(event)),
            }
            self.announced += 1;
        }
    }

    /// The head, if it can leave now.
    pub fn pop_ready(&mut self) -> Option<Ready<S, D, E>> {
        match self.items.front()? {
            Item::Segment { outcome: None, .. } => None,
            _ => match self.pop_front()? {
                Item::Segment {
                    batch,
                    segment,
                    outcome: Some(outcome),
                } => Some(Ready::Segment {
                    batch,
                    segment,
                    outcome,
                }),
                Item::Event(event) => Some(Ready::Event(event)),
                Item::Segment { outcome: None, .. } => None,
            },
        }
    }

    /// As [`OutputQueue::pop_ready`], but a segment leaves only once what
    /// follows it is known too (an event, or a decided segment): for an
    /// output that must run a segment ahead of it.
    pub fn pop_ready_ahead(&mut self) -> Option<Ready<S, D, E>> {
        if let Some(Item::Segment { .. }) = self.items.front()
            && !matches!(
                self.items.get(1),
                Some(
                    Item::Event(_)
                        | Item::Segment {
                            outcome: Some(_),
                            ..
                        }
                )
            )
        {
            return None;
        }
        self.pop_ready()
    }

    fn pop_front(&mut self) -> Option<Item<S, D, E>> {
        self.announced = self.announced.saturating_sub(1);
        self.items.pop_front()
    }

    /// Every segment still queued, decided or not, in order.
    pub fn segments_mut(&mut self) -> impl Iterator<Item = (u64, &mut S)> {
        self.items.iter_mut().filter_map(|item| match item {
            Item::Segment { batch, segment, .. } => Some((*batch, segment)),
            Item::Event(_) => None,
        })
    }

    /// Segments still waiting for an outcome.
    pub fn undecided(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Segment { outcome: None, .. }))
            .count()
    }

    pub fn segments(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Segment { .. }))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets everything (flush); returns the batch numbers that were undecided.
    pub fn clear(&mut self) -> Vec<u64> {
        self.announced = 0;
        let undecided = self
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Segment {
                    batch,
                    outcome: None,
                    ..
                } => Some(*batch),
                _ => None,
            })
            .collect();
        self.items.clear();
        undecided
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Queue = OutputQueue<&'static str, &'static str, &'static str>;

    fn announced(queue: &mut Queue) -> Vec<String> {
        let mut shown = Vec::new();
        queue.announce_decided(|item| {
            shown.push(match item {
                DecidedItem::Segment(segment, Outcome::Dubbed(d)) => format!("{segment}:{d}"),
                DecidedItem::Segment(segment, Outcome::Original(_)) => {
                    format!("{segment}:original")
                }
                DecidedItem::Event(event) => (*event).to_owned(),
            })
        });
        shown
    }

    #[test]
    fn the_decided_head_is_announced_once_in_order() {
        let mut queue = Queue::default();
        queue.push_segment(0, "a");
        queue.push_segment(1, "b");
        queue.push_event("eos");
        queue.decide(1, Outcome::Dubbed("B"));
        assert!(announced(&mut queue).is_empty(), "b waits for a");
        queue.decide(0, Outcome::Original(FallbackReason::Timeout));
        assert_eq!(announced(&mut queue), ["a:original", "b:B", "eos"]);
        assert!(announced(&mut queue).is_empty(), "once");
        // Leaving does not announce again; what comes later is.
        assert!(queue.pop_ready().is_some());
        queue.push_segment(2, "c");
        queue.decide(2, Outcome::Dubbed("C"));
        assert_eq!(announced(&mut queue), ["c:C"]);
    }

    #[test]
    fn ahead_a_segment_waits_for_what_follows_it() {
        let mut queue = Queue::default();
        queue.push_segment(0, "a");
        queue.decide(0, Outcome::Dubbed("A"));
        assert!(queue.pop_ready_ahead().is_none(), "nothing after a yet");
        queue.push_segment(1, "b");
        assert!(queue.pop_ready_ahead().is_none(), "b undecided");
        queue.decide(1, Outcome::Dubbed("B"));
        assert!(matches!(
            queue.pop_ready_ahead(),
            Some(Ready::Segment { batch: 0, .. })
        ));
        queue.push_event("eos");
        assert!(matches!(
            queue.pop_ready_ahead(),
            Some(Ready::Segment { batch: 1, .. })
        ));
        assert!(matches!(queue.pop_ready_ahead(), Some(Ready::Event("eos"))));
    }

    #[test]
    fn default_latency_covers_segment_timeout_and_margins() {
        let latency = coherent_latency(ClockTime::from_seconds(6), ClockTime::from_seconds(8));
        assert_eq!(latency, ClockTime::from_mseconds(14_500));
        // An answer arriving right at the timeout is still before the deadline.
        let start = ClockTime::from_seconds(100);
        let answer =
            start + ClockTime::from_seconds(6) + ClockTime::from_seconds(8) + PROCESSING_ALLOWANCE;
        assert!(answer <= decision_deadline(start, latency));
    }

    #[test]
    fn deadline_is_start_plus_latency_minus_margin() {
        assert_eq!(
            decision_deadline(ClockTime::from_seconds(10), ClockTime::from_seconds(2)),
            ClockTime::from_mseconds(11_800)
        );
        assert_eq!(
            decision_deadline(ClockTime::ZERO, ClockTime::from_mseconds(100)),
            ClockTime::ZERO
        );
    }

    #[test]
    fn segments_leave_in_order_once_decided() {
        let mut q = Queue::default();
        q.push_event("caps");
        q.push_segment(0, "s0");
        q.push_segment(1, "s1");
        q.push_event("eos");
        assert_eq!(q.pop_ready(), Some(Ready::Event("caps")));
        assert_eq!(q.decide(1, Outcome::Dubbed("d1")), Decision::Taken);
        assert_eq!(q.pop_ready(), None, "s1 must wait for s0");
        assert_eq!(
            q.decide(0, Outcome::Original(FallbackReason::Deadline)),
            Decision::Taken
        );
        assert_eq!(
            q.pop_ready(),
            Some(Ready::Segment {
                batch: 0,
                segment: "s0",
                outcome: Outcome::Original(FallbackReason::Deadline)
            })
        );
        assert!(matches!(
            q.pop_ready(),
            Some(Ready::Segment {
                batch: 1,
                outcome: Outcome::Dubbed("d1"),
                ..
            })
        ));
        assert_eq!(q.pop_ready(), Some(Ready::Event("eos")));
        assert!(q.is_empty());
    }

    #[test]
    fn first_outcome_wins_and_late_answers_are_reported() {
        let mut q = Queue::default();
        q.push_segment(3, "s3");
        assert_eq!(
            q.decide(3, Outcome::Original(FallbackReason::Deadline)),
            Decision::Taken
        );
        assert_eq!(q.decide(3, Outcome::Dubbed("late")), Decision::TooLate);
        assert_eq!(q.decide(4, Outcome::Dubbed("x")), Decision::Unknown);
        assert_eq!(q.undecided(), 0);
    }

    #[test]
    fn clear_reports_undecided_segments() {
        let mut q = Queue::default();
        q.push_segment(0, "a");
        q.push_segment(1, "b");
        q.decide(0, Outcome::Dubbed("x"));
        assert_eq!(q.segments(), 2);
        assert_eq!(q.clear(), vec![1]);
        assert!(q.is_empty());
    }
}
