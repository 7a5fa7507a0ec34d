// SPDX-License-Identifier: MPL-2.0

//! The element's debug category (`GST_DEBUG=stsdub:6`), a leaf every part
//! of the element logs through.

use std::sync::LazyLock;

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "stsdub",
        gst::DebugColorFlags::empty(),
        Some("STS dubbing element"),
    )
});
