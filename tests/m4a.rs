// SPDX-License-Identifier: MPL-2.0

//! Our M4A against the tools: what we pack is read by ffprobe and decoded by
//! qtdemux + avdec_aac; what ffmpeg writes (plain and fragmented) we unpack.

mod common;

use std::path::Path;
use std::process::Command;

use gst::prelude::*;
use gststsdub::container::m4a::{self, AacConfig};

use common::*;

fn packed_segment(frames: usize) -> (AacConfig, Vec<Vec<u8>>, Vec<u8>) {
    let (caps, buffers) = aac_frames(frames);
    let s = caps.structure(0).expect("caps structure");
    let codec_data = s.get::<gst::Buffer>("codec_data").expect("codec_data");
    let config =
        AacConfig::from_audio_specific_config(&codec_data.map_readable().expect("readable"))
            .expect("valid ASC");
    let frames: Vec<Vec<u8>> = buffers
        .iter()
        .map(|b| b.map_readable().expect("readable").to_vec())
        .collect();
    let packed = m4a::pack(&config, &frames, 0);
    (config, frames, packed)
}

fn ffprobe(file: &Path, entries: &str) -> String {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            entries,
            "-of",
            "default=nw=1",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        output.status.success(),
        "ffprobe rejected {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn ffprobe_reads_our_m4a_with_the_right_format_and_frame_count() {
    let (_, frames, packed) = packed_segment(282);
    let path = scratch("packed.m4a");
    std::fs::write(&path, &packed).expect("write");
    let info = ffprobe(
        &path,
        "stream=codec_name,profile,sample_rate,channels,nb_read_packets:format=format_name,duration",
    );
    for expected in [
        "codec_name=aac",
        "profile=LC",
        "sample_rate=48000",
        "channels=2",
        "nb_read_packets=282",
        "format_name=mov,mp4,m4a",
    ] {
        assert!(
            info.contains(expected),
            "ffprobe says:\n{info}\nexpected {expected}"
        );
    }
    assert!(
        info.contains("duration=6.016000"),
        "duration of 282 frames: {info}"
    );
    // And the packets are ours, in order.
    let sizes: Vec<u64> = packets(&path, "a").into_iter().map(|p| p.size).collect();
    assert_eq!(
        sizes,
        frames.iter().map(|f| f.len() as u64).collect::<Vec<_>>()
    );
}

#[test]
fn qtdemux_and_avdec_aac_decode_our_m4a() {
    let (_, _, packed) = packed_segment(94);
    let path = scratch("packed-decode.m4a");
    std::fs::write(&path, &packed).expect("write");
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux ! aacparse ! avdec_aac ! audioconvert ! audio/x-raw,format=S16LE ! appsink name=sink sync=false",
        path.display()
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let sink = pipeline
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("plays");
    let mut samples = 0usize;
    let mut peak = 0i16;
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().expect("buffer");
        let map = buffer.map_readable().expect("readable");
        samples += map.len() / 4;
        for pair in map.chunks_exact(2) {
            peak = peak.max(i16::from_le_bytes([pair[0], pair[1]]).saturating_abs());
        }
    }
    let error = pipeline
        .bus()
        .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]));
    pipeline.set_state(gst::State::Null).expect("stops");
    assert!(error.is_none(), "decode error: {error:?}");
    assert!(
        samples.abs_diff(94 * 1024) <= 1024,
        "decoded {samples} samples of 94 frames"
    );
    assert!(peak > 1000, "the sine is there (peak {peak})");
}

fn ffmpeg_m4a(name: &str, extra: &[&str]) -> std::path::PathBuf {
    let path = scratch(name);
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=3",
        ])
        .args(["-c:a", "aac", "-ac", "1"])
        .args(extra)
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    path
}

#[test]
fn plain_m4a_from_ffmpeg_unpacks_with_its_priming() {
    let path = ffmpeg_m4a("ffmpeg-plain.m4a", &[]);
    let data = std::fs::read(&path).expect("read");
    let unpacked = m4a::unpack(&data).expect("ffmpeg's M4A unpacks");
    assert_eq!(
        (
            unpacked.config.sample_rate,
            unpacked.config.channels,
            unpacked.config.object_type
        ),
        (44100, 1, 2)
    );
    let packets = packets(&path, "a");
    assert_eq!(unpacked.frames.len(), packets.len(), "every packet found");
    assert_eq!(
        unpacked.priming_samples, 1024,
        "ffmpeg's encoder delay from the edit list"
    );
    // 3 s = 129.2 frames of 1024 at 44.1 kHz, plus the priming frame.
    assert_eq!(unpacked.presented_frames().len(), unpacked.frames.len() - 1);
}

#[test]
fn fragmented_m4a_from_ffmpeg_unpacks() {
    for (name, flags) in [
        (
            "ffmpeg-frag.m4a",
            "frag_keyframe+empty_moov+default_base_moof",
        ),
        ("ffmpeg-frag-tfhd.m4a", "frag_keyframe+empty_moov"),
    ] {
        let path = ffmpeg_m4a(name, &["-movflags", flags, "-frag_duration", "500000"]);
        let data = std::fs::read(&path).expect("read");
        let unpacked = m4a::unpack(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = packets(&path, "a");
        assert_eq!(
            unpacked.frames.len(),
            expected.len(),
            "{name}: every fragment's samples"
        );
        for (range, packet) in unpacked.frames.iter().zip(&expected) {
            assert_eq!(range.len() as u64, packet.size, "{name}: sample sizes");
        }
    }
}
