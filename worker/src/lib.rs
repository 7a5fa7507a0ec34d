// SPDX-License-Identifier: MPL-2.0

//! The stsdub worker: one launch line per stream, written once
//! (`pipeline`), and what its programs share: `signals`, `drain`,
//! `futex_hash`, `subtitles`, `probe`, `tracks` (the input's other
//! streams), `psi` (the PMT's descriptors kept through),
//! `live_audio` (a live input's audio that is not AAC), `timing`, and
//! `packager`, which writes the HLS package around the video hlssink3
//! writes. The programs are in `src/bin/`: `stsdub-worker` runs one stream
//! (the demo's and the container's), `stsdub-multi-stream` many in one
//! process.

pub mod drain;
pub mod futex_hash;
pub mod live_audio;
pub mod packager;
pub mod pipeline;
pub mod probe;
pub mod psi;
pub mod signals;
pub mod subtitles;
pub mod timing;
pub mod tracks;
