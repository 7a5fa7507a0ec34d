// SPDX-License-Identifier: MPL-2.0

//! `segmentation=pauses`: the levels of each audio frame, measured by the
//! audio chain function before it takes `state`, so that decoding never
//! holds up the output tasks. Its own leaf lock; the segmenter says after
//! each frame whether it will look at the next one's levels.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::state::lock;
use crate::audio::level::{FrameLevels, LevelMeter};
use crate::container::m4a::AacConfig;

pub(super) struct FrameLevelGate {
    meter: Mutex<Option<LevelMeter>>,
    /// Whether the segmenter will look at the next frame's levels.
    wanted: AtomicBool,
}

impl Default for FrameLevelGate {
    fn default() -> Self {
        Self {
            meter: Mutex::new(None),
            wanted: AtomicBool::new(true),
        }
    }
}

impl FrameLevelGate {
    /// A meter for `config` when `pauses` (else none); why none can be made.
    pub(super) fn start(&self, pauses: bool, config: &AacConfig) -> Result<(), String> {
        let made = if pauses {
            LevelMeter::new(config).map(Some)
        } else {
            Ok(None)
        };
        // A meter that cannot be made leaves none: no stale one measures on.
        let result = made.as_ref().map(|_| ()).map_err(String::clone);
        *lock(&self.meter) = made.ok().flatten();
        result
    }

    /// The frame's levels, if measured: None without a meter, or when the
    /// segmenter does not want them (the frame is then only noted). A
    /// decoder that fails is dropped, and why is returned.
    pub(super) fn measure(&self, buffer: &gst::Buffer) -> Result<Option<FrameLevels>, String> {
        let mut meter = lock(&self.meter);
        let Some(meter_in_use) = meter.as_mut() else {
            return Ok(None);
        };
        if !self.wanted.load(Ordering::Relaxed) {
            meter_in_use.skip();
            return Ok(None);
        }
        meter_in_use.measure(buffer).map_err(|err| {
            *meter = None;
            format!("{err:?}")
        })
    }

    pub(super) fn set_wanted(&self, wanted: bool) {
        self.wanted.store(wanted, Ordering::Relaxed);
    }
}
