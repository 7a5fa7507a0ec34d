// SPDX-License-Identifier: MPL-2.0

//! Properties of the pure parts that place audio: whatever frames, stamps,
//! jitter, discontinuities and levels come in, no frame is lost, doubled or
//! reordered, the timeline never goes back, and every fit is exact.

use gststsdub::audio::fit::{self, FitMode, FitRules};
use gststsdub::audio::level::{BLOCKS_PER_FRAME, FrameLevels};
use gststsdub::timeline::cut_policy::{CutPolicy, CutReason, CutRules, Segmentation};
use gststsdub::timeline::segmenter::{Frame, Segmenter, TimelineRules};
use gststsdub::timeline::splice::{self, FrameFit};
use proptest::prelude::*;

const FRAME_48K: u64 = 21_333_333;
const MS: u64 = 1_000_000;

/// One input frame: jitter on its stamp, a DISCONT flag, a forward jump,
/// and its block levels (None: not measured).
#[derive(Debug, Clone)]
struct Input {
    jitter_ms: i64,
    discont: bool,
    jump_ms: u64,
    levels: Option<FrameLevels>,
}

fn input() -> impl Strategy<Value = Input> {
    (
        // Within the alignment threshold (40 ms) between any two frames:
        // jitter beyond it is a drift in doubt, whose frames wait for the
        // next segment and may leave a `longest` cut short.
        -19i64..20,
        prop::bool::weighted(0.02),
        prop_oneof![9 => Just(0u64), 1 => 0u64..3000],
        prop::option::of(prop::array::uniform4(prop::array::uniform4(-100f32..0.0))),
    )
        .prop_map(|(jitter_ms, discont, jump_ms, levels)| Input {
            jitter_ms,
            discont,
            jump_ms,
            levels,
        })
}

fn rules() -> impl Strategy<Value = CutRules> {
    (
        prop_oneof![Just(Segmentation::Fixed), Just(Segmentation::Pauses)],
        200u64..3000,
        200u64..6000,
        50u64..400,
        0u32..=100,
    )
        .prop_map(
            |(segmentation, a, b, min_pause, threshold_percent)| CutRules {
                segmentation,
                shortest: a.min(b) * MS,
                longest: a.max(b) * MS,
                min_pause: min_pause * MS,
                threshold_percent,
            },
        )
}

/// Feeds frames numbered 0.. and returns every segment, EOS included.
fn segment(
    rules: CutRules,
    inputs: &[Input],
) -> Vec<gststsdub::timeline::segmenter::Segment<usize>> {
    let mut segmenter = Segmenter::new(rules, TimelineRules::default());
    segmenter.set_format(48_000, FRAME_48K);
    let mut segments = Vec::new();
    let mut clock = 10_000 * MS;
    for (index, input) in inputs.iter().enumerate() {
        clock += input.jump_ms * MS;
        let pts = clock.saturating_add_signed(input.jitter_ms * MS as i64);
        let frame = Frame {
            data: index,
            pts,
            duration: FRAME_48K,
        };
        let levels = input.levels.filter(|_| segmenter.wants_levels());
        let closed = segmenter.push(frame, input.discont || input.jump_ms > 0, levels);
        // While its timeline settles (no audio has left), the element moves
        // the segments already queued as far as the timeline moved.
        if let Some(shift) = segmenter.take_shift() {
            for frame in segments.iter_mut().flat_map(
                |s: &mut gststsdub::timeline::segmenter::Segment<usize>| s.frames.iter_mut(),
            ) {
                frame.pts = frame.pts.saturating_add_signed(shift);
            }
        }
        segments.extend(closed);
        clock += FRAME_48K;
    }
    segments.extend(segmenter.finish());
    segments
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_frame_leaves_once_in_order_on_a_timeline_that_never_goes_back(
        rules in rules(),
        inputs in prop::collection::vec(input(), 1..1200),
    ) {
        let segments = segment(rules, &inputs);
        let order: Vec<usize> = segments.iter().flat_map(|s| s.frames.iter().map(|f| f.data)).collect();
        prop_assert_eq!(order, (0..inputs.len()).collect::<Vec<_>>());
        let mut end = 0u64;
        for (batch, segment) in segments.iter().enumerate() {
            prop_assert_eq!(segment.batch, batch as u64);
            prop_assert!(!segment.frames.is_empty());
            prop_assert!(segment.start() >= end, "segment {} starts {} before the last end {}", batch, segment.start(), end);
            for pair in segment.frames.windows(2) {
                prop_assert_eq!(pair[0].pts + pair[0].duration, pair[1].pts, "a segment is contiguous");
            }
            end = segment.end();
        }
    }

    #[test]
    fn no_segment_outgrows_the_longest_by_more_than_a_frame(
        rules in rules(),
        inputs in prop::collection::vec(input(), 1..1200),
    ) {
        for segment in segment(rules, &inputs) {
            prop_assert!(segment.duration() <= rules.longest + FRAME_48K + MS,
                "{} ms > longest {} ms", segment.duration() / MS, rules.longest / MS);
            if matches!(segment.cut, CutReason::Pause | CutReason::Longest) {
                prop_assert!(segment.duration() + MS >= rules.shortest,
                    "{:?} cut at {} ms < shortest {} ms", segment.cut, segment.duration() / MS, rules.shortest / MS);
            }
        }
    }

    #[test]
    fn the_cut_policy_only_cuts_inside_what_it_holds(
        rules in rules(),
        levels in prop::collection::vec(prop::option::of(prop::array::uniform4(prop::array::uniform4(-100f32..0.0))), 1..800),
    ) {
        let mut policy = CutPolicy::new(rules, FRAME_48K);
        let mut held = 0usize;
        for level in levels {
            held += 1;
            if let Some(cut) = policy.push(FRAME_48K, level) {
                prop_assert!(cut.frames >= 1 && cut.frames <= held, "cut after {} of {}", cut.frames, held);
                policy.take(cut.frames);
                held -= cut.frames;
            }
            prop_assert!(held as u64 * FRAME_48K <= rules.longest + FRAME_48K);
        }
        prop_assert_eq!(BLOCKS_PER_FRAME, 4);
    }

    #[test]
    fn the_splice_gives_exactly_the_frames_wanted_and_keeps_the_dub_before_the_cut(
        have in 0usize..400,
        wanted in 0usize..400,
    ) {
        let dubbed: Vec<u32> = (1..=have as u32).collect();
        let (fitted, fit) = splice::fit(dubbed.clone(), wanted, &0);
        prop_assert_eq!(fitted.len(), wanted);
        let kept = have.min(wanted);
        prop_assert_eq!(&fitted[..kept], &dubbed[..kept]);
        prop_assert!(fitted[kept..].iter().all(|f| *f == 0), "padding is silence");
        let expected = match have.cmp(&wanted) {
            std::cmp::Ordering::Equal => FrameFit::Exact,
            std::cmp::Ordering::Greater => FrameFit::Trimmed(have - wanted),
            std::cmp::Ordering::Less => FrameFit::Padded(wanted - have),
        };
        prop_assert_eq!(fit, expected);
    }

    #[test]
    fn a_fit_plan_lands_exactly_on_the_segment_and_never_overstretches(
        length in 0usize..600_000,
        voiced_share in 0.0f64..=1.0,
        wanted in 1usize..600_000,
        guard in 0usize..2000,
        stretch in prop::bool::ANY,
        max_stretch in 1.0f64..=2.0,
    ) {
        let voiced = (length as f64 * voiced_share) as usize;
        let mode = if stretch { FitMode::Stretch } else { FitMode::Trim };
        let plan = fit::plan(length, voiced, wanted, guard, &FitRules { mode, max_stretch });
        prop_assert!(plan.factor >= 1.0 && plan.factor <= max_stretch + 1e-9, "factor {}", plan.factor);
        let out = fit::stretched_length(length, plan.factor);
        prop_assert_eq!(out - plan.trimmed + plan.padded, wanted);
        prop_assert!(plan.trimmed == 0 || plan.padded == 0);
        if mode == FitMode::Trim {
            prop_assert_eq!(plan.factor, 1.0);
        }
    }
}
