//! Every STS event the session reads, from the packet down to the dubbed
//! audio: the payload shapes, backpressure advice, base64 and the M4A inside.
#![no_main]

use base64::Engine as _;
use gststsdub::container::m4a;
use gststsdub::sts::flow::Action;
use gststsdub::sts::protocol::{FragmentProcessed, StreamComplete, StreamReady};
use gststsdub::sts::socketio::{Packet, parse_packet};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(Packet::Event { name, data }) = parse_packet(text) else {
        return;
    };
    match name.as_str() {
        "fragment:processed" => read_processed(data),
        "backpressure" => {
            let action = data.get("action").and_then(Value::as_str).unwrap_or_default();
            let delay = data.get("recommended_delay_ms").and_then(Value::as_u64);
            let _ = Action::parse(action, delay);
        }
        "stream:ready" => {
            let _ = serde_json::from_value::<StreamReady>(data);
        }
        _ => {
            let _ = serde_json::from_value::<StreamComplete>(data);
        }
    }
});

fn read_processed(data: Value) {
    let Ok(processed) = serde_json::from_value::<FragmentProcessed>(data) else {
        return;
    };
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
