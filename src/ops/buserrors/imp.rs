// SPDX-License-Identifier: MPL-2.0

use std::sync::atomic::{AtomicBool, Ordering};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::ops::metrics::METRICS;

/// The tracer's own category: it serves any element, stsdub or not.
static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "stsdub-bus-errors",
        gst::DebugColorFlags::empty(),
        Some("Bus errors counted for stsdub streams"),
    )
});

/// The element factory whose instances carry a `stream-id`.
const STSDUB_FACTORY: &str = "stsdub";

pub(super) static ACTIVE: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
pub struct BusErrors;

#[glib::object_subclass]
impl ObjectSubclass for BusErrors {
    const NAME: &'static str = "GstStsDubBusErrors";
    type Type = super::BusErrors;
    type ParentType = gst::Tracer;
}

impl ObjectImpl for BusErrors {
    fn constructed(&self) {
        self.parent_constructed();
        self.register_hook(TracerHook::ElementPostMessagePre);
        ACTIVE.store(true, Ordering::Relaxed);
    }
}

impl GstObjectImpl for BusErrors {}

impl TracerImpl for BusErrors {
    fn element_post_message_pre(&self, _ts: u64, element: &gst::Element, message: &gst::Message) {
        if message.type_() != gst::MessageType::Error {
            return;
        }
        // Bins post their children's messages again on their way up; only
        // the element the error comes from counts.
        if message.src() != Some(element.upcast_ref::<gst::Object>()) {
            return;
        }
        for stream_id in stream_ids_hit(element) {
            gst::warning!(
                CAT,
                obj = element,
                "stream {stream_id}: error on the bus counted"
            );
            METRICS
                .gst_bus_errors_total
                .with_label_values(&[&stream_id])
                .inc();
        }
    }
}

/// The streams an error from `element` hits: its own when it is an stsdub,
/// otherwise those of every stsdub in its pipeline (an error stops the whole
/// pipeline), or, in a pipeline without one, the pipeline's name.
fn stream_ids_hit(element: &gst::Element) -> Vec<String> {
    if let Some(own) = stream_id_of(element) {
        return vec![own];
    }
    let top = top_level(element);
    let mut ids = Vec::new();
    if let Some(bin) = top.downcast_ref::<gst::Bin>() {
        for child in bin.iterate_recurse().into_iter().flatten() {
            ids.extend(stream_id_of(&child));
        }
    }
    if ids.is_empty() {
        ids.push(top.name().to_string());
    }
    ids
}

fn top_level(element: &gst::Element) -> gst::Object {
    let mut top = element.clone().upcast::<gst::Object>();
    while let Some(parent) = top.parent() {
        top = parent;
    }
    top
}

/// The `stream-id` of an stsdub element, read as a property: the element
/// serves it from a lock it never holds while posting, so this is safe from
/// the posting thread.
fn stream_id_of(element: &gst::Element) -> Option<String> {
    let factory = element.factory()?;
    (factory.name() == STSDUB_FACTORY).then(|| element.property::<String>("stream-id"))
}
