// SPDX-License-Identifier: MPL-2.0

//! The stsdub worker: one launch line per stream, written once
//! (`pipeline`), and what its programs share (`signals`, `drain`,
//! `futex_hash`, `subtitles`, `probe`, `tracks`, `psi`, and `packager`, which
//! writes the HLS package around the video hlssink3 writes).
//! The programs are in `src/bin/`: `stsdub-worker` runs one stream (the
//! demo's and the container's), `stsdub-multi-stream` many in one process.

pub mod drain;
pub mod futex_hash;
pub mod packager;
pub mod pipeline;
pub mod probe;
pub mod psi;
pub mod signals;
pub mod subtitles;
pub mod tracks;
