// SPDX-License-Identifier: MPL-2.0

//! Engine.IO / Socket.IO text packets as the STS sends them over the websocket.
#![no_main]

use gststsdub::sts::socketio::parse_packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A websocket text frame is UTF-8 by definition; tungstenite refuses others.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_packet(text);
    }
});
