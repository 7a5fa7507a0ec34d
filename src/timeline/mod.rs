// SPDX-License-Identifier: MPL-2.0

//! The audio timeline, pure rules with no GStreamer element in them: where
//! the input is cut into segments (`segmenter`, `cut_policy`), when each
//! segment's outcome goes out (`scheduler`), and how dubbed audio is fitted
//! into the original's place (`splice`).

pub mod cut_policy;
pub mod programme_level;
mod sample_timeline;
pub mod scheduler;
pub mod segmenter;
pub mod splice;
