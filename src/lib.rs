// SPDX-License-Identifier: MPL-2.0

//! stsdub: dubs the AAC audio of a live stream through a remote speech-to-speech
//! (STS) service and puts the dubbed audio back in step with the video.
//!
//! This file only registers the plugin. The element's glue is in `element/`;
//! below it, and never importing it: `timeline/` (cuts, schedule, splice),
//! `audio/` (decode, levels, fit, mix, re-encode), `container/` (M4A),
//! `captions/` (608 in the video's SEI), `sts/` (the STS client) and `ops/`
//! (metrics, health, archive, tracer).

use gst::glib;

pub mod audio;
pub mod captions;
pub mod container;
mod element;
pub mod ops;
pub mod sts;
pub mod timeline;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    element::register(plugin)?;
    ops::buserrors::register(plugin)
}

gst::plugin_define!(
    stsdub,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
