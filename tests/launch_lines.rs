// SPDX-License-Identifier: MPL-2.0

//! The worker's pipeline is written once (`stsdub_worker::pipeline`); every place
//! that writes it out again says the same: the shell scripts, the README, the
//! users' guide (docs/users.md) and the element's docs. A copy that drifts (a lost `latency=200`, a queue
//! added on the way in) fails here.

use std::path::Path;

use stsdub_worker::pipeline::{self, Input, Output, normalized};

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The launch line in `text` from the first line containing `first` to the
/// first line after it ending in `last`, folded.
#[track_caller]
fn launch_line(text: &str, first: &str, last: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(first))
        .unwrap_or_else(|| panic!("no line with {first:?}"));
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.trim_end().ends_with(last))
            .unwrap_or_else(|| panic!("no line ending in {last:?}"));
    let joined = lines[start..=end].join("\n");
    let from = joined.find(first).expect("first");
    normalized(&joined[from..])
}

/// stsdub's properties as a launch line writes them.
#[track_caller]
fn properties(line: &str) -> String {
    let start = line.find("stsdub name=dub").expect("stsdub") + "stsdub name=dub".len();
    let end = line.find(" dub.video_src").expect("dub.video_src");
    line[start..end].trim().to_owned()
}

#[track_caller]
fn assert_is_the_worker(line: &str, input: &Input, output: &Output, place: &str) {
    let expected = normalized(&pipeline::worker(input, &properties(line), output));
    assert_eq!(
        line, expected,
        "{place} differs from stsdub_worker::pipeline::worker"
    );
}

#[test]
fn worker_sh_runs_the_worker_pipeline() {
    let script = read("pipelines/worker.sh");
    let line = launch_line(&script, "rtspsrc location=", " &");
    let line = line.trim_end_matches(" &");
    let input = Input::Rtsp {
        url: "$RTSP_URL".into(),
        latency: "\"$RTSP_LATENCY_MS\"".into(),
        buffer_mode: Some("\"$RTSP_BUFFER_MODE\"".into()),
    };
    let output = Output::Rtmp {
        sink: "\"$RTMP_SINK\"".into(),
        url: "$RTMP_URL".into(),
    };
    assert_is_the_worker(line, &input, &output, "pipelines/worker.sh");
    assert!(
        script.contains(&format!("RTSP_LATENCY_MS [{}]", pipeline::RTSP_LATENCY_MS))
            && script.contains(&format!(
                "\"${{RTSP_LATENCY_MS:={}}}\"",
                pipeline::RTSP_LATENCY_MS
            )),
        "worker.sh's rtspsrc latency default is the plan's"
    );
}

#[test]
fn file_to_flv_sh_runs_the_worker_pipeline_on_a_file() {
    let line = launch_line(
        &read("pipelines/file-to-flv.sh"),
        "filesrc location=",
        "location=\"$OUTPUT\"",
    );
    let input = Input::File {
        location: "$INPUT".into(),
        demuxer: "qtdemux",
        audio_pad: "audio_0",
        video_pad: "video_0",
        audio: Default::default(),
        video: true,
    };
    let output = Output::file("$OUTPUT");
    assert_is_the_worker(&line, &input, &output, "pipelines/file-to-flv.sh");
}

#[test]
fn the_readme_and_the_users_guide_show_the_worker_pipeline() {
    for place in ["README.md", "docs/users.md"] {
        let live = launch_line(
            &read(place),
            "rtspsrc location=",
            "rtmp://server/live/match-1\"",
        );
        assert_is_the_worker(
            &live,
            &Input::rtsp("rtsp://camera/stream"),
            &Output::from_uri("rtmp://server/live/match-1"),
            &format!("{place}'s live pipeline"),
        );
    }
    let file = launch_line(
        &read("docs/users.md"),
        "filesrc location=\"in.mp4\"",
        "dubbed.flv\"",
    );
    assert_is_the_worker(
        &file,
        &Input::from_uri("in.mp4").expect("mp4"),
        &Output::from_uri("dubbed.flv"),
        "the users' guide's file pipeline",
    );
    let captioned = launch_line(
        &read("docs/users.md"),
        "filesrc location=\"captioned.mp4\"",
        "out.mkv\"",
    );
    assert_is_the_worker(
        &captioned,
        &Input::from_uri("captioned.mp4").expect("mp4"),
        &Output::from_uri("out.mkv"),
        "the users' guide's captions pipeline",
    );
}

/// Every launch line the docs write out in full is one a test here checks:
/// the live one (README and users' guide), the file one, the SRT one in
/// two languages and the captions one (users' guide). A new one needs its
/// check.
#[test]
fn every_pipeline_the_docs_show_is_checked() {
    let mut shown = Vec::new();
    for place in [
        "README.md",
        "docs/users.md",
        "docs/operators.md",
        "docs/developers.md",
    ] {
        for line in read(place).lines() {
            if line.starts_with("gst-launch-1.0") {
                shown.push(format!(
                    "{place}: {}",
                    line.split_whitespace().nth(2).unwrap_or("")
                ));
            }
        }
    }
    assert_eq!(
        shown,
        [
            "README.md: rtspsrc",
            "docs/users.md: rtspsrc",
            "docs/users.md: filesrc",
            "docs/users.md: srtsrc",
            "docs/users.md: filesrc",
        ]
    );
}

#[test]
fn the_element_docs_show_the_worker_pipeline() {
    // The hotdoc block (`/** * element-stsdub: … */`) gst-inspect and the
    // documentation are made from.
    let source = read("src/element/mod.rs");
    let start = source
        .find("/**\n * element-stsdub:")
        .expect("the element's hotdoc block");
    let end = start + source[start..].find("*/").expect("the block's end");
    let docs: String = source[start..end]
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('*'))
        .collect::<Vec<_>>()
        .join("\n");
    let line = launch_line(&docs, "rtspsrc location=", "rtmp://host/live/out\"");
    assert_is_the_worker(
        &line,
        &Input::rtsp("rtsp://host/stream"),
        &Output::from_uri("rtmp://host/live/out"),
        "the element docs' pipeline",
    );
}

#[test]
fn the_users_guides_srt_pipeline_in_two_languages_is_the_workers() {
    let readme = read("docs/users.md");
    let line = launch_line(
        &readme,
        "srtsrc uri=",
        "srtsink uri=\"srt://:7002?mode=listener\"",
    );
    let languages = pipeline::Languages::parse("es,fr", "en", "match-1", true).expect("valid");
    let expected = normalized(&pipeline::multi_language_worker(
        &Input::from_uri("srt://:7001?mode=listener").expect("srt"),
        pipeline::VideoCodec::H264,
        "sts-url=\"http://sts:8000\" source-language=\"en\"",
        &languages,
        &Output::from_uri("srt://:7002?mode=listener"),
    ));
    assert_eq!(
        line, expected,
        "docs/users.md differs from multi_language_worker"
    );
}
