// SPDX-License-Identifier: MPL-2.0

//! Every STS event the session reads, from the packet down to the dubbed
//! audio: the payload shapes, backpressure advice, base64 and the M4A inside.
#![no_main]

use base64::Engine as _;
use gststsdub::container::m4a;
use gststsdub::sts::protocol::{FragmentProcessed, ServerEvent};
use gststsdub::sts::socketio::{Packet, parse_packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(Packet::Event { name, data }) = parse_packet(text) else {
        return;
    };
    // What the session does with it: read it into its type.
    if let Ok(ServerEvent::FragmentProcessed(processed)) = ServerEvent::read(&name, data) {
        read_audio(*processed);
    }
});

fn read_audio(processed: FragmentProcessed) {
    let Some(audio) = processed.dubbed_audio else {
        return;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(audio.data_base64.as_bytes())
    else {
        return;
    };
    if let Ok(unpacked) = m4a::unpack(&bytes) {
        for frame in unpacked.presented_frames() {
            let _ = &bytes[frame.clone()];
        }
    }
}
