// SPDX-License-Identifier: MPL-2.0

//! What a file carries, asked before the worker's pipeline is built: each
//! stream its demuxer announces, with its pad, caps and language. Files
//! only: a live source cannot be read twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// The longest a file's probe may take to find its streams.
pub const PROBE_LIMIT: Duration = Duration::from_secs(10);
/// And then to read each one's first buffer.
const FIRST_BUFFERS_LIMIT: Duration = Duration::from_secs(3);

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
        self.media_is("audio/")
    }

    pub fn is_video(&self) -> bool {
        self.media_is("video/")
    }

    fn media_is(&self, prefix: &str) -> bool {
        self.caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with(prefix))
    }
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
    // Pads that have had their first buffer (their tags come before it).
    let buffered: Arc<Mutex<Vec<String>>> = Arc::default();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let seen = Arc::clone(&found);
    let first_buffers = Arc::clone(&buffered);
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
        record_first_buffer(pad, Arc::clone(&first_buffers));
        // Linked to a sink that never waits, so the demuxer reads on past
        // a stream that starts late (FLV announces its streams only once
        // it has met each) and sends each stream's tags.
        if let (Some(bin), Ok(sink)) = (bin.upgrade(), element("fakesink")) {
            sink.set_property("sync", false);
            // Nor for the others to preroll: a sparse stream (subtitles,
            // teletext) whose first packet lies behind the others' would
            // keep a prerolled sink, and so the demuxer, waiting.
            sink.set_property("async", false);
            let _ = bin.add(&sink);
            let _ = sink.sync_state_with_parent();
            if let Some(sink_pad) = sink.static_pad("sink") {
                let _ = pad.link(&sink_pad);
            }
        }
    });
    let announced = done.clone();
    demux.connect_no_more_pads(move |_| {
        let _ = announced.send(());
    });
    let result = match pipeline.set_state(gst::State::Playing) {
        Ok(_) => wait_for_streams(&pipeline, &finished, location),
        Err(e) => Err(format!("{location}: cannot be read ({e})")),
    };
    if result.is_ok() {
        wait_for_first_buffers(&pipeline, &found, &buffered);
    }
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let streams = found.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(streams)
}

/// Until the demuxer has announced all its streams, or the file has ended
/// (a demuxer that expected a stream the file lacks), within [`PROBE_LIMIT`].
fn wait_for_streams(
    pipeline: &gst::Pipeline,
    announced: &std::sync::mpsc::Receiver<()>,
    location: &str,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + PROBE_LIMIT;
    let bus = pipeline.bus();
    while std::time::Instant::now() < deadline {
        if announced.recv_timeout(Duration::from_millis(20)).is_ok() {
            return Ok(());
        }
        match ended(bus.as_ref()).as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => return Ok(()),
            Some(gst::MessageView::Error(e)) => {
                return Err(format!("{location}: cannot be read ({})", e.error()));
            }
            _ => {}
        }
    }
    Err(format!(
        "{location}: not read within {} s",
        PROBE_LIMIT.as_secs()
    ))
}

/// Until every stream found has had its first buffer (and so its tags),
/// or the file ended, within [`FIRST_BUFFERS_LIMIT`] (a sparse stream, e.g.
/// subtitles, may have none for a while: its language may stay unknown).
fn wait_for_first_buffers(
    pipeline: &gst::Pipeline,
    found: &Mutex<Vec<StreamInfo>>,
    buffered: &Mutex<Vec<String>>,
) {
    let deadline = std::time::Instant::now() + FIRST_BUFFERS_LIMIT;
    let bus = pipeline.bus();
    while std::time::Instant::now() < deadline {
        let all = found.lock().map(|f| f.len()).unwrap_or(0);
        let have = buffered.lock().map(|b| b.len()).unwrap_or(0);
        if have >= all || ended(bus.as_ref()).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The probe's end of file or error, if it has come.
fn ended(bus: Option<&gst::Bus>) -> Option<gst::Message> {
    bus?.pop_filtered(&[gst::MessageType::Eos, gst::MessageType::Error])
}

/// Notes the pad's name in `buffered` at its first buffer.
fn record_first_buffer(pad: &gst::Pad, buffered: Arc<Mutex<Vec<String>>>) {
    let name = pad.name().to_string();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        if let Ok(mut buffered) = buffered.lock() {
            buffered.push(name.clone());
        }
        gst::PadProbeReturn::Remove
    });
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
