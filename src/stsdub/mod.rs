//! The `stsdub` element: type registration only; the glue is in `imp.rs`.

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

mod absent;
mod fragment;
mod imp;
mod release;
mod settings;

pub(crate) use imp::CAT;

glib::wrapper! {
    pub struct StsDub(ObjectSubclass<imp::StsDub>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "stsdub",
        gst::Rank::NONE,
        StsDub::static_type(),
    )
}

/// The `stream-id` of `element` when it is an stsdub.
pub(crate) fn stream_id_of(element: &gst::Element) -> Option<String> {
    element
        .downcast_ref::<StsDub>()
        .map(|dub| dub.imp().stream_id())
}
