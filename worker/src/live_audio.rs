// SPDX-License-Identifier: MPL-2.0

//! A live MPEG-TS input (SRT, UDP) whose audio is not AAC: MP2, AC-3,
//! E-AC-3 from a broadcast contribution feed. A file is probed before the
//! pipeline is built and gets its transcode in the launch line; a live
//! stream cannot be read twice, so its audio pad is taken as it appears:
//! decoded (GStreamer's decodebin picks the decoder) and encoded to AAC-LC
//! at its own rate and channels, into the AAC parser the launch line put in
//! front of stsdub. AAC stays codec copy through that parser.

use gst::prelude::*;

use crate::pipeline::{self, AudioIn};

/// The live demuxer's name in the worker's launch line.
const DEMUXER: &str = "d";

/// Whether this process transcodes a live input's audio (one stream per
/// worker process): the launch line's own link into the AAC parser then
/// fails at the demuxer's no-more-pads, as expected.
static TRANSCODING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a bus warning's debug text is that expected failure.
pub fn is_the_replaced_link(debug: &str) -> bool {
    TRANSCODING.load(std::sync::atomic::Ordering::Relaxed)
        && debug.contains("failed delayed linking")
        && debug.contains("GstAacParse")
}

/// Transcodes the first audio stream of the live demuxer `d` when it is not
/// AAC. Connected before the checks that refuse a stream stsdub cannot
/// take, so the pad is linked by the time they see it.
pub fn transcode_when_not_aac(pipeline: &gst::Element) {
    let Some(bin) = pipeline.downcast_ref::<gst::Bin>() else {
        return;
    };
    let Some(demuxer) = bin.by_name(DEMUXER) else {
        return;
    };
    let bin = bin.downgrade();
    demuxer.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let (false, Some(AudioIn::Transcoded { .. }), Some(bin)) =
            (pad.is_linked(), AudioIn::for_caps(&caps), bin.upgrade())
        else {
            return;
        };
        let Some(parser) = waiting_aac_parser(&bin) else {
            return;
        };
        match transcode(&bin, pad, &parser) {
            Ok(()) => {
                TRANSCODING.store(true, std::sync::atomic::Ordering::Relaxed);
                eprintln!(
                    "worker: the input's audio is {caps}: decoded and encoded to AAC for stsdub"
                )
            }
            Err(e) => eprintln!("worker: the input's audio ({caps}) cannot be transcoded: {e}"),
        }
    });
}

/// The launch line's AAC parser whose input is still waiting for the
/// demuxer (its output already goes on to stsdub).
fn waiting_aac_parser(bin: &gst::Bin) -> Option<gst::Element> {
    bin.iterate_elements().into_iter().flatten().find(|e| {
        e.factory().is_some_and(|f| f.name() == "aacparse")
            && e.static_pad("sink").is_some_and(|p| !p.is_linked())
            && e.static_pad("src").is_some_and(|p| p.is_linked())
    })
}

/// `pad` → decodebin → audioconvert → audioresample → avenc_aac → `parser`.
fn transcode(bin: &gst::Bin, pad: &gst::Pad, parser: &gst::Element) -> Result<(), String> {
    let make = |name: &str| {
        gst::ElementFactory::make(name)
            .build()
            .map_err(|_| format!("GStreamer's {name} is not installed"))
    };
    let decoder = make("decodebin")?;
    let chain = [
        make("audioconvert")?,
        make("audioresample")?,
        make("avenc_aac")?,
    ];
    bin.add(&decoder).map_err(|e| e.to_string())?;
    bin.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
    chain[2].link(parser).map_err(|e| e.to_string())?;
    if let Some(src) = chain[2].static_pad("src") {
        // FFmpeg's AAC encoder primes one frame (pipeline/retime.rs).
        pipeline::retime::drop_encoder_priming(&src);
    }
    let convert = chain[0].downgrade();
    decoder.connect_pad_added(move |_, decoded| {
        let sink = convert.upgrade().and_then(|c| c.static_pad("sink"));
        if let Some(sink) = sink.filter(|s| !s.is_linked()) {
            let _ = decoded.link(&sink);
        }
    });
    for element in chain.iter().chain([&decoder]) {
        element
            .sync_state_with_parent()
            .map_err(|e| e.to_string())?;
    }
    let into = decoder.static_pad("sink").ok_or("decodebin has no sink")?;
    pad.link(&into).map(|_| ()).map_err(|e| format!("{e:?}"))
}
