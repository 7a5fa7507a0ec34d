// SPDX-License-Identifier: MPL-2.0

//! The dubbed M4A: boxes, sample tables, fragments, edit lists. Every frame
//! range it returns must lie inside the bytes it was given.
#![no_main]

use gststsdub::container::m4a;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(unpacked) = m4a::unpack(data) {
        for frame in &unpacked.frames {
            assert!(frame.start <= frame.end && frame.end <= data.len());
        }
        let _ = unpacked.presented_frames();
        let _ = unpacked.config.frame_duration_ns();
    }
});
