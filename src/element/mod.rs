// SPDX-License-Identifier: MPL-2.0

//! The `stsdub` element: type registration only; the glue is in `imp.rs`.

use gst::glib;
use gst::prelude::*;

mod absent;
mod audio;
mod audio_in;
mod category;
mod fragment;
mod imp;
mod levels;
mod lifecycle;
mod missing_track;
mod properties;
mod release;
mod report;
mod session_events;
mod settings;
mod state;
mod tags;
mod track;
mod video;
mod voiceover;

glib::wrapper! {
    pub struct StsDub(ObjectSubclass<imp::StsDub>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    settings::mark_enums_as_plugin_api();
    gst::Element::register(
        Some(plugin),
        "stsdub",
        gst::Rank::NONE,
        StsDub::static_type(),
    )
}
