// SPDX-License-Identifier: MPL-2.0

//! Captions of the dub: each dubbed segment's words, shown in the video
//! frames its dubbed audio is heard with, as CEA-608 and CEA-708 carried in the video
//! itself (ATSC A/53 cc_data in an SEI message; the slices stay codec
//! copy). Pure: words and times in, caption bytes and access units out.
//!
//! - `layout`: words → captions of at most two 32-letter rows, timed across
//!   the segment in proportion to their length;
//! - `cea608`: a caption → the 608 codes that load and show it (pop-on);
//! - `track`: which 608 byte pairs go into which video frame;
//! - `cea708`: one 708 service: a caption's window, its DTVCC packets, and
//!   which frame takes them;
//! - `merge`: several writers' 608 pairs and 708 packets in one cc_data;
//! - `a53`: cc_data → an SEI NAL unit in an H.264/H.265 access unit, and
//!   the one another writer put there.

pub mod a53;
pub mod cea608;
pub mod cea708;
pub mod layout;
pub mod merge;
pub mod track;
