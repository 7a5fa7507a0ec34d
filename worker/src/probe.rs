// SPDX-License-Identifier: MPL-2.0

//! What a file carries, asked before the worker's pipeline is built: each
//! stream its demuxer announces, with its pad, caps and language. Files
//! only: a live source cannot be read twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// The longest a file's probe may take to find its streams.
pub const PROBE_LIMIT: Duration = Duration::from_secs(10);
/// And then to read each one's first buffer (a sparse stream, e.g.
/// subtitles, may have none for a while: its language may stay unknown).
const FIRST_BUFFERS_LIMIT: gst::ClockTime = gst::ClockTime::from_seconds(3);

/// One elementary stream of a file.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The demuxer's pad (tsdemux: `audio_0_0102`, by PID).
    pub pad: String,
    pub caps: gst::Caps,
    /// ISO 639 code from the container, when it says.
    pub language: Option<String>,
}

impl StreamInfo {
    pub fn is_audio(&self) -> bool {
        self.caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("audio/"))
    }
}

/// The caps of the first audio stream `demuxer` finds in the file at
/// `location`; None when it has none. An error says why it could not tell.
pub fn first_audio_caps(location: &str, demuxer: &str) -> Result<Option<gst::Caps>, String> {
    Ok(streams(location, demuxer)?
        .into_iter()
        .find(StreamInfo::is_audio)
        .map(|s| s.caps))
}

/// Every stream `demuxer` finds in the file at `location`, in the order of
/// its pads, each read until its first buffer so its tags are known.
pub fn streams(location: &str, demuxer: &str) -> Result<Vec<StreamInfo>, String> {
    let pipeline = gst::Pipeline::new();
    let source = element("filesrc")?;
    source.set_property("location", location);
    let demux = element(demuxer)?;
    pipeline
        .add_many([&source, &demux])
        .and_then(|()| source.link(&demux))
        .map_err(|e| format!("{location}: {e}"))?;
    let found: Arc<Mutex<Vec<StreamInfo>>> = Arc::default();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let seen = Arc::clone(&found);
    let bin = pipeline.downgrade();
    demux.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        if let Ok(mut streams) = seen.lock() {
            streams.push(StreamInfo {
                pad: pad.name().to_string(),
                caps,
                language: None,
            });
        }
        record_language(pad, Arc::clone(&seen));
        // Linked, so the demuxer goes on and sends each stream's tags.
        if let (Some(bin), Ok(sink)) = (bin.upgrade(), element("fakesink")) {
            let _ = bin.add(&sink);
            let _ = sink.sync_state_with_parent();
            if let Some(sink_pad) = sink.static_pad("sink") {
                let _ = pad.link(&sink_pad);
            }
        }
    });
    demux.connect_no_more_pads(move |_| {
        let _ = done.send(());
    });
    let started = pipeline.set_state(gst::State::Paused);
    let result = match started {
        Ok(_) => finished
            .recv_timeout(PROBE_LIMIT)
            .map_err(|_| format!("{location}: not read within {} s", PROBE_LIMIT.as_secs())),
        Err(e) => Err(format!("{location}: cannot be read ({e})")),
    };
    // Pre-rolled: every linked stream has had its first buffer, and the
    // tags that come before it.
    let _ = pipeline.state(FIRST_BUFFERS_LIMIT);
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let streams = found.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(streams)
}

/// Keeps the language the pad's tags give (a tag event, or its stream's
/// tags) in its entry of `streams`.
fn record_language(pad: &gst::Pad, streams: Arc<Mutex<Vec<StreamInfo>>>) {
    let name = pad.name().to_string();
    let store = move |language: String| {
        if let Ok(mut streams) = streams.lock()
            && let Some(stream) = streams.iter_mut().find(|s| s.pad == name)
        {
            stream.language.get_or_insert(language);
        }
    };
    if let Some(language) = pad
        .stream()
        .and_then(|s| s.tags())
        .and_then(|tags| language_of(&tags))
    {
        store(language);
    }
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(event)) = &info.data
            && let gst::EventView::Tag(tag) = event.view()
            && let Some(language) = language_of(tag.tag())
        {
            store(language);
        }
        gst::PadProbeReturn::Ok
    });
}

fn language_of(tags: &gst::TagListRef) -> Option<String> {
    tags.get::<gst::tags::LanguageCode>()
        .map(|v| v.get().to_owned())
        .filter(|l| !l.is_empty())
}

fn element(name: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| format!("GStreamer's {name} is not installed"))
}
