// SPDX-License-Identifier: MPL-2.0

//! Audio processing outside the element's pads: decoding and encoding
//! (`transcode`, `reencode`), levels (`level`), stretching to fit (`fit`),
//! mixing (`mix`, `voice`), loudness and true peak (`loudness`,
//! `limiter`), and GStreamer elements driven without a
//! pipeline (`driven_element`).

pub mod driven_element;
pub mod fit;
pub mod level;
pub mod limiter;
pub mod loudness;
pub(crate) mod mix;
pub(crate) mod reencode;
pub mod transcode;
pub(crate) mod voice;
