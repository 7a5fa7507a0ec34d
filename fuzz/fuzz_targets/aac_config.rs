// SPDX-License-Identifier: MPL-2.0

//! AudioSpecificConfig, as found in a dubbed M4A's esds.
#![no_main]

use gststsdub::container::m4a::AacConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AacConfig::from_audio_specific_config(data) {
        assert!(config.frame_duration_ns() > 0);
        // What we would pack for it must read back as the same configuration.
        let _ = AacConfig::aac_lc(config.sample_rate, config.channels);
    }
});
