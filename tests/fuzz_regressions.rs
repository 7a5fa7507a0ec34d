//! Every input a fuzz target once crashed on (fuzz/regressions/TARGET/),
//! replayed through what that target calls: each must now be refused with
//! an error, not a panic or an abort. `scripts/fuzz.sh` finds them.

use std::path::{Path, PathBuf};

use gststsdub::container::m4a::{self, AacConfig};
use gststsdub::sts::socketio::parse_packet;

fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes)))
        .collect()
}

#[test]
fn m4a_inputs_that_once_crashed_the_unpacker_are_refused() {
    let inputs = regressions("m4a_unpack");
    assert!(!inputs.is_empty(), "the trun sample count crash is kept");
    for (path, bytes) in inputs {
        assert!(
            m4a::unpack(&bytes).is_err(),
            "{} is refused",
            path.display()
        );
    }
}

#[test]
fn packets_and_configs_that_once_crashed_are_refused_or_read() {
    for (_, bytes) in regressions("socketio_packet")
        .into_iter()
        .chain(regressions("sts_events"))
    {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = parse_packet(text);
        }
    }
    for (_, bytes) in regressions("aac_config") {
        let _ = AacConfig::from_audio_specific_config(&bytes);
    }
}
