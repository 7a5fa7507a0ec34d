// SPDX-License-Identifier: MPL-2.0

//! What a file carries, asked before the worker's pipeline is built: the
//! caps of its first audio stream, as its own demuxer announces its pads.
//! Files only: a live source cannot be read twice.

use std::time::Duration;

use gst::prelude::*;

/// The longest a file's probe may take.
pub const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// The caps of the first audio stream `demuxer` finds in the file at
/// `location`; None when it has none. An error says why it could not tell.
pub fn first_audio_caps(location: &str, demuxer: &str) -> Result<Option<gst::Caps>, String> {
    let pipeline = gst::Pipeline::new();
    let source = element("filesrc")?;
    source.set_property("location", location);
    let demux = element(demuxer)?;
    pipeline
        .add_many([&source, &demux])
        .and_then(|()| source.link(&demux))
        .map_err(|e| format!("{location}: {e}"))?;
    let (done, finished) = std::sync::mpsc::channel::<Option<gst::Caps>>();
    let audio = done.clone();
    demux.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        if caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("audio/"))
        {
            let _ = audio.send(Some(caps));
        }
    });
    demux.connect_no_more_pads(move |_| {
        let _ = done.send(None);
    });
    let started = pipeline.set_state(gst::State::Paused);
    let found = match started {
        Ok(_) => finished
            .recv_timeout(PROBE_LIMIT)
            .map_err(|_| format!("{location}: not read within {} s", PROBE_LIMIT.as_secs())),
        Err(e) => Err(format!("{location}: cannot be read ({e})")),
    };
    let _ = pipeline.set_state(gst::State::Null);
    found
}

fn element(name: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| format!("GStreamer's {name} is not installed"))
}
