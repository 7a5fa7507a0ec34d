// SPDX-License-Identifier: MPL-2.0

//! The inputs kept for each fuzz target (fuzz/regressions/TARGET/): the
//! crashes `scripts/fuzz.sh` found, and edge cases written beside them.
//! Each is replayed through what its target calls and must be refused with
//! an error, not a panic or an abort. Every target keeps at least one.

use std::path::{Path, PathBuf};

use gststsdub::container::m4a::{self, AacConfig};
use gststsdub::sts::protocol::ServerEvent;
use gststsdub::sts::socketio::{Packet, parse_packet};

const TARGETS: [&str; 4] = ["m4a_unpack", "aac_config", "socketio_packet", "sts_events"];

fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let inputs: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    assert!(!inputs.is_empty(), "{} keeps no input", dir.display());
    inputs
}

/// Whether `target`'s reader refuses `bytes` with an error.
fn refused(target: &str, bytes: &[u8]) -> bool {
    match target {
        "m4a_unpack" => m4a::unpack(bytes).is_err(),
        "aac_config" => AacConfig::from_audio_specific_config(bytes).is_err(),
        "socketio_packet" => std::str::from_utf8(bytes).map_or(true, |t| parse_packet(t).is_err()),
        "sts_events" => match std::str::from_utf8(bytes).map(parse_packet) {
            Ok(Ok(Packet::Event { name, data })) => ServerEvent::read(&name, data).is_err(),
            _ => true,
        },
        other => panic!("no reader for fuzz target {other}"),
    }
}

#[test]
fn every_input_a_fuzz_target_keeps_is_refused_with_an_error() {
    for target in TARGETS {
        for (path, bytes) in regressions(target) {
            assert!(
                refused(target, &bytes),
                "{target}: {} is refused",
                path.display()
            );
        }
    }
}

#[test]
fn every_fuzz_target_is_replayed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz targets")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    found.sort();
    let mut replayed = TARGETS.map(str::to_owned).to_vec();
    replayed.sort();
    assert_eq!(found, replayed);
}
