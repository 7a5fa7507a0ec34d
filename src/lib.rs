//! stsdub: dubs the AAC audio of a live stream through a remote speech-to-speech
//! (STS) service and puts the dubbed audio back in step with the video.
//!
//! This file only registers the plugin; the element glue lives in `stsdub/`,
//! and everything that can be tested without a pipeline lives in its own module.

use gst::glib;

pub mod archive;
mod buserrors;
pub mod cut_policy;
pub mod fit;
pub mod health;
pub mod http;
pub mod level;
pub mod lone;
pub mod m4a;
pub mod metrics;
pub mod mix;
pub mod pipeline;
pub mod reencode;
pub mod runtime;
pub mod scheduler;
pub mod segmenter;
pub mod splice;
pub mod sts;
mod stsdub;
pub mod transcode;
pub mod voice;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    stsdub::register(plugin)?;
    buserrors::register(plugin)
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
