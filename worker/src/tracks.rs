// SPDX-License-Identifier: MPL-2.0

//! The input's other tracks: which audio track is dubbed (`--audio-track`,
//! or the one in the source language, or the first), and every other
//! elementary stream of an MPEG-TS input carried to an MPEG-TS output as it
//! came (other languages, audio description, DVB subtitles, teletext, KLV),
//! or named on stderr when the output cannot carry it, on its input PID
//! and with its input descriptors (`psi.rs`).

use gst::prelude::*;

use crate::pipeline::SCTE35_PID;
use crate::probe::StreamInfo;

/// The demuxer's and the muxer's names in the worker's launch line.
const DEMUXER: &str = "d";
const MUXER: &str = "mux";

/// The audio track to dub among `streams` (a file's, in pad order):
/// `index` (0-based among the audio tracks) when given, else the first
/// whose language is `source_language`, else the first. Its position among
/// the audio tracks and its stream; an index out of range is an error
/// naming what there is.
pub fn choose_audio<'a>(
    streams: &'a [StreamInfo],
    index: Option<usize>,
    source_language: &str,
) -> Result<Option<(usize, &'a StreamInfo)>, String> {
    let audio: Vec<&StreamInfo> = streams.iter().filter(|s| s.is_audio()).collect();
    if let Some(index) = index {
        return audio.get(index).map(|s| Some((index, *s))).ok_or_else(|| {
            format!(
                "--audio-track {index}: the input has {} audio track(s), 0 to {}: {}",
                audio.len(),
                audio.len().saturating_sub(1),
                describe(&audio)
            )
        });
    }
    let in_language = audio.iter().position(|s| {
        s.language
            .as_deref()
            .is_some_and(|l| same_language(l, source_language))
    });
    Ok(audio
        .get(in_language.unwrap_or(0))
        .map(|s| (in_language.unwrap_or(0), *s)))
}

/// The audio tracks, for a message: `0: audio_0_0101 (eng)`, ….
pub fn describe(audio: &[&StreamInfo]) -> String {
    audio
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{i}: {} ({})", s.pad, s.language.as_deref().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether two language codes name one language (ISO 639-1 or either
/// 639-2 form; "en-GB" as "en").
pub fn same_language(a: &str, b: &str) -> bool {
    let key = |code: &str| -> String {
        let primary = code
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        ISO_639
            .iter()
            .find(|codes| codes.contains(&primary.as_str()))
            .map_or(primary, |codes| codes[0].to_owned())
    };
    !a.is_empty() && key(a) == key(b)
}

/// ISO 639-1 and the 639-2 codes (bibliographic, terminological) of the
/// languages broadcast most.
const ISO_639: &[&[&str]] = &[
    &["en", "eng"],
    &["es", "spa"],
    &["fr", "fre", "fra"],
    &["de", "ger", "deu"],
    &["it", "ita"],
    &["pt", "por"],
    &["nl", "dut", "nld"],
    &["ru", "rus"],
    &["pl", "pol"],
    &["tr", "tur"],
    &["ar", "ara"],
    &["zh", "chi", "zho"],
    &["ja", "jpn"],
    &["ko", "kor"],
    &["hi", "hin"],
    &["sv", "swe"],
    &["da", "dan"],
    &["no", "nor"],
    &["fi", "fin"],
    &["el", "gre", "ell"],
    &["cs", "cze", "ces"],
    &["hu", "hun"],
    &["ro", "rum", "ron"],
    &["uk", "ukr"],
    &["ca", "cat"],
];

/// Every demuxer pad the launch line leaves unlinked goes to the MPEG-TS
/// muxer through an unbounded queue (it runs ahead of the held video by
/// stsdub's latency) and the parser its codec needs, or, into a muxer that
/// cannot take it, is named on stderr as left out.
pub fn carry_other_streams(pipeline: &gst::Element, output_carries_them: bool) {
    let Some(bin) = pipeline.downcast_ref::<gst::Bin>() else {
        return;
    };
    let Some(demuxer) = bin.by_name(DEMUXER) else {
        return;
    };
    keep_private_descriptors(bin, &demuxer);
    let bin = bin.downgrade();
    // Connected after the launch line's own links, so it sees only the
    // pads those did not take.
    demuxer.connect_pad_added(move |_, pad| {
        if pad.is_linked() {
            return;
        }
        let Some(bin) = bin.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let carried = output_carries_them && carry(&bin, pad, &caps).is_ok();
        if !carried {
            eprintln!(
                "worker: the input's stream {} ({caps}) is left out: {}",
                pad.name(),
                if output_carries_them {
                    "the MPEG-TS muxer does not take it"
                } else {
                    "only an MPEG-TS output (a file, SRT or UDP) carries the input's other tracks"
                }
            );
        }
    });
}

/// MPEG-TS in and out: the output's PMT describes the carried private
/// streams (subtitles, teletext) as the input's did.
fn keep_private_descriptors(bin: &gst::Bin, demuxer: &gst::Element) {
    let is = |element: &gst::Element, factory: &str| {
        element.factory().is_some_and(|f| f.name() == factory)
    };
    let Some(muxer) = bin.by_name(MUXER).filter(|m| is(m, "mpegtsmux")) else {
        return;
    };
    if let (true, Some(demuxer_sink), Some(muxer_src)) = (
        is(demuxer, "tsdemux"),
        demuxer.static_pad("sink"),
        muxer.static_pad("src"),
    ) {
        crate::psi::restore_private_descriptors(&demuxer_sink, &muxer_src);
    }
}

/// Links `pad` through a queue and its parser to a new pad of the muxer.
fn carry(bin: &gst::Bin, pad: &gst::Pad, caps: &gst::Caps) -> Result<(), String> {
    let muxer = bin.by_name(MUXER).ok_or("no muxer")?;
    let queue = gst::ElementFactory::make("queue")
        .property("max-size-buffers", 0u32)
        .property("max-size-bytes", 0u32)
        .property("max-size-time", 0u64)
        .build()
        .map_err(|e| e.to_string())?;
    let mut chain = vec![queue];
    if let Some(parser) = parser_for(caps) {
        chain.push(
            gst::ElementFactory::make(parser)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    bin.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
    let last = chain.last().ok_or("empty chain")?;
    let muxer_pad = input_pid(pad)
        .filter(|pid| muxer.static_pad(&format!("sink_{pid}")).is_none())
        .and_then(|pid| muxer.request_pad_simple(&format!("sink_{pid}")))
        .or_else(|| muxer.request_pad_simple("sink_%d"))
        .ok_or("the muxer gives no pad")?;
    let linked = last
        .static_pad("src")
        .ok_or("no src pad")?
        .link(&muxer_pad)
        .map_err(|e| format!("{e:?}"));
    for element in &chain {
        let _ = element.sync_state_with_parent();
    }
    drop_gaps_before_the_segment(&muxer_pad);
    let into_chain = chain[0].static_pad("sink").ok_or("no sink pad")?;
    let result = linked.and_then(|_| {
        pad.link(&into_chain)
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    });
    if result.is_err() {
        muxer.release_request_pad(&muxer_pad);
        for element in &chain {
            let _ = element.set_state(gst::State::Null);
            let _ = bin.remove(element);
        }
        return result;
    }
    Ok(())
}

/// GStreamer 1.22's tsdemux sends a sparse stream (subtitles, teletext)
/// a gap event before its first segment; the muxer cannot place it ("GAP
/// event outside segment", a GStreamer-CRITICAL in the aggregator). Such
/// gaps are dropped: they say nothing a later one does not.
fn drop_gaps_before_the_segment(pad: &gst::Pad) {
    let segment_seen = std::sync::atomic::AtomicBool::new(false);
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        match event.type_() {
            gst::EventType::Segment => {
                segment_seen.store(true, std::sync::atomic::Ordering::Relaxed);
                gst::PadProbeReturn::Remove
            }
            gst::EventType::Gap if !segment_seen.load(std::sync::atomic::Ordering::Relaxed) => {
                // Taken and released here: a dropped event handed back
                // empty is unreffed again by GStreamer (a CRITICAL).
                info.data = None;
                gst::PadProbeReturn::Handled
            }
            _ => gst::PadProbeReturn::Ok,
        }
    });
}

/// The PID of a tsdemux pad (`private_0_0044`: the program, then the PID
/// in hex), for the muxer to keep: a receiver is set up by PID (a teletext
/// decoder, a subtitle page). None for PIDs the muxer keeps for itself
/// (the PAT, PMT, SCTE-35 and null PIDs) and for pads of other demuxers.
fn input_pid(pad: &gst::Pad) -> Option<u16> {
    let name = pad.name();
    let hex = name.rsplit('_').next()?;
    let pid = u16::from_str_radix(hex, 16)
        .ok()
        .filter(|_| hex.len() == 4)?;
    (pid > 0x20 && pid < 0x1FFF && pid != SCTE35_PID).then_some(pid)
}

/// The parser that frames a demuxer's stream of `caps` for the MPEG-TS
/// muxer; None for what it takes as it comes (subtitles, teletext, KLV).
fn parser_for(caps: &gst::CapsRef) -> Option<&'static str> {
    let s = caps.structure(0)?;
    match (s.name().as_str(), s.get::<i32>("mpegversion").ok()) {
        ("audio/mpeg", Some(1)) => Some("mpegaudioparse"),
        ("audio/mpeg", _) => Some("aacparse"),
        ("audio/x-ac3" | "audio/x-eac3" | "audio/ac3", _) => Some("ac3parse"),
        ("audio/x-dts", _) => Some("dcaparse"),
        ("audio/x-opus", _) => Some("opusparse"),
        ("video/x-h264", _) => Some("h264parse"),
        ("video/x-h265", _) => Some("h265parse"),
        ("video/mpeg", _) => Some("mpegvideoparse"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(pad: &str, kind: &str, language: Option<&str>) -> StreamInfo {
        gst::init().expect("GStreamer initialises");
        StreamInfo {
            pad: pad.into(),
            caps: gst::Caps::new_empty_simple(kind),
            language: language.map(str::to_owned),
        }
    }

    #[test]
    fn the_source_language_is_chosen_else_the_first_and_an_index_wins() {
        let streams = [
            stream("video_0_0100", "video/x-h264", None),
            stream("audio_0_0101", "audio/mpeg", Some("eng")),
            stream("audio_0_0102", "audio/mpeg", Some("spa")),
        ];
        let pad = |choice: Result<Option<(usize, &StreamInfo)>, String>| {
            choice.expect("chosen").map(|(i, s)| (i, s.pad.clone()))
        };
        assert_eq!(
            pad(choose_audio(&streams, None, "es")),
            Some((1, "audio_0_0102".into()))
        );
        assert_eq!(
            pad(choose_audio(&streams, None, "en")),
            Some((0, "audio_0_0101".into()))
        );
        assert_eq!(
            pad(choose_audio(&streams, None, "ja")),
            Some((0, "audio_0_0101".into()))
        );
        assert_eq!(
            pad(choose_audio(&streams, Some(1), "en")),
            Some((1, "audio_0_0102".into()))
        );
        let error = choose_audio(&streams, Some(2), "en").expect_err("out of range");
        assert!(
            error.contains("0 to 1") && error.contains("audio_0_0102 (spa)"),
            "{error}"
        );
    }

    #[test]
    fn language_codes_match_across_iso_639_forms() {
        assert!(same_language("eng", "en"));
        assert!(same_language("fra", "fre"));
        assert!(same_language("de-AT", "ger"));
        assert!(!same_language("spa", "en"));
        assert!(!same_language("", "en"));
    }
}
