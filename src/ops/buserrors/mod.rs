// SPDX-License-Identifier: MPL-2.0

//! The `stsdub-bus-errors` tracer: counts every error message posted in a
//! pipeline into `worker_gst_bus_errors_total`. An element only sees its own
//! errors; a tracer sees every element's, and works under plain
//! `gst-launch-1.0` with `GST_TRACERS=stsdub-bus-errors`.

use gst::glib;
use gst::prelude::*;

mod imp;

pub const NAME: &str = "stsdub-bus-errors";

glib::wrapper! {
    pub struct BusErrors(ObjectSubclass<imp::BusErrors>) @extends gst::Tracer, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Tracer::register(Some(plugin), NAME, BusErrors::static_type())
}

/// Whether a tracer counts errors in this process; elements then leave
/// their own errors to it, so none is counted twice.
pub fn active() -> bool {
    imp::ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}
