// SPDX-License-Identifier: MPL-2.0

//! One GStreamer element driven from the calling thread: its pads are
//! linked to two pads of ours, so a buffer pushed in comes back processed in
//! the same call (decoders, encoders and scaletempo all push from their
//! chain function). No bin, no thread, no queue, no hand-off per buffer;
//! the element keeps its state between calls, which is what makes a
//! continuous decode or encode over a whole stream possible.

use std::sync::{Arc, Mutex};

use gst::prelude::*;

pub struct DrivenElement {
    element: gst::Element,
    feed: gst::Pad,
    /// Kept: a pad nobody holds is unlinked and freed.
    output: gst::Pad,
    /// Filled by the return pad's chain function while a push runs.
    produced: Arc<Mutex<Vec<gst::Buffer>>>,
}

impl DrivenElement {
    /// Links `element` between a feed pad and a return pad that accepts
    /// `accepts`, and sets it PLAYING. `what` names it in errors.
    pub fn new(element: gst::Element, accepts: &gst::Caps, what: &str) -> Result<Self, String> {
        let feed = gst::Pad::builder(gst::PadDirection::Src)
            .name(format!("{what}-feed"))
            .build();
        let produced = Arc::new(Mutex::new(Vec::new()));
        let output = return_pad(accepts, &format!("{what}-return"), produced.clone());
        let pad = |name: &str| {
            element
                .static_pad(name)
                .ok_or_else(|| format!("the {what} has no {name} pad"))
        };
        feed.link(&pad("sink")?)
            .map_err(|e| format!("cannot link to the {what}: {e:?}"))?;
        pad("src")?
            .link(&output)
            .map_err(|e| format!("cannot link the {what}'s output: {e:?}"))?;
        output
            .set_active(true)
            .map_err(|e| format!("{what}: {e}"))?;
        element
            .set_state(gst::State::Playing)
            .map_err(|e| format!("the {what} does not start: {e}"))?;
        feed.set_active(true).map_err(|e| format!("{what}: {e}"))?;
        Ok(Self {
            element,
            feed,
            output,
            produced,
        })
    }

    /// Starts a stream of `caps` in `segment` (stream-start, caps, segment).
    pub fn start(
        &self,
        caps: &gst::Caps,
        segment: &gst::Segment,
        stream: &str,
    ) -> Result<(), String> {
        for event in [
            gst::event::StreamStart::new(stream),
            gst::event::Caps::new(caps),
            gst::event::Segment::new(segment),
        ] {
            if !self.feed.push_event(event) {
                return Err(format!("{} refuses {caps}", self.factory_name()));
            }
        }
        Ok(())
    }

    /// The element's factory name (its own name for a bin), for messages.
    pub fn factory_name(&self) -> String {
        self.element
            .factory()
            .map_or_else(|| self.element.name().to_string(), |f| f.name().to_string())
    }

    /// Pushes one buffer in; what the element gave back during the call.
    pub fn push(&self, buffer: gst::Buffer) -> Result<Vec<gst::Buffer>, gst::FlowError> {
        let result = self.feed.push(buffer);
        let produced = std::mem::take(&mut *lock(&self.produced));
        result.map(|_| produced)
    }

    /// Ends the stream: what the element still held (an encoder's last
    /// frames, a filter's tail).
    pub fn finish(&self) -> Vec<gst::Buffer> {
        self.feed.push_event(gst::event::Eos::new());
        std::mem::take(&mut *lock(&self.produced))
    }

    /// The caps the element produces, once it has negotiated them.
    pub fn output_caps(&self) -> Option<gst::Caps> {
        self.output.current_caps()
    }
}

impl Drop for DrivenElement {
    fn drop(&mut self) {
        let _ = self.feed.set_active(false);
        let _ = self.element.set_state(gst::State::Null);
        let _ = self.output.set_active(false);
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Our end of the element's output: answers caps queries with `accepts`
/// and keeps every buffer it is given.
fn return_pad(accepts: &gst::Caps, name: &str, produced: Arc<Mutex<Vec<gst::Buffer>>>) -> gst::Pad {
    let accepts = accepts.clone();
    let accepts_query = accepts.clone();
    let template = gst::PadTemplate::new(
        "sink",
        gst::PadDirection::Sink,
        gst::PadPresence::Always,
        &accepts,
    )
    .expect("a valid template");
    gst::Pad::builder_from_template(&template)
        .name(name)
        .chain_function(move |_pad, _parent, buffer| {
            lock(&produced).push(buffer);
            Ok(gst::FlowSuccess::Ok)
        })
        .query_function(move |_pad, _parent, query| match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let answer = match q.filter() {
                    Some(filter) => {
                        filter.intersect_with_mode(&accepts_query, gst::CapsIntersectMode::First)
                    }
                    None => accepts_query.clone(),
                };
                q.set_result(&answer);
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let accepted = q.caps().can_intersect(&accepts);
                q.set_result(accepted);
                true
            }
            _ => false,
        })
        .event_function(|_pad, _parent, _event| true)
        .build()
}

/// An open TIME segment from 0: what a lone element is started in.
pub fn time_segment() -> gst::Segment {
    gst::FormattedSegment::<gst::ClockTime>::new().upcast()
}

/// Raw AAC caps for `config`, as a decoder takes them.
pub fn aac_caps(config: &crate::container::m4a::AacConfig) -> gst::Caps {
    gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .field("framed", true)
        .field("rate", config.sample_rate as i32)
        .field("channels", i32::from(config.channels))
        .field(
            "codec_data",
            gst::Buffer::from_slice(config.audio_specific_config.clone()),
        )
        .build()
}

/// The AAC configuration of audio caps (their codec_data).
pub fn aac_config(caps: &gst::CapsRef) -> Result<crate::container::m4a::AacConfig, String> {
    let s = caps.structure(0).ok_or("empty caps")?;
    let codec_data = s
        .get::<gst::Buffer>("codec_data")
        .map_err(|_| format!("caps {caps} have no codec_data (link aacparse before stsdub)"))?;
    let map = codec_data
        .map_readable()
        .map_err(|_| "codec_data unreadable".to_string())?;
    crate::container::m4a::AacConfig::from_audio_specific_config(&map)
        .map_err(|e| format!("codec_data: {e}"))
}

/// An AAC decoder for `config`'s stream, driven without a pipeline and
/// started (stream-start `stream`, caps, a time segment): the frames pushed
/// come back decoded as [`decoded_caps`].
pub fn started_aac_decoder(
    config: &crate::container::m4a::AacConfig,
    stream: &str,
) -> Result<DrivenElement, String> {
    let decoder = DrivenElement::new(aac_decoder()?, &decoded_caps(), "AAC decoder")?;
    decoder.start(&aac_caps(config), &time_segment(), stream)?;
    Ok(decoder)
}

/// avdec_aac if it is there (it decodes every AAC profile), else the
/// highest-ranked decoder of raw AAC.
pub fn aac_decoder() -> Result<gst::Element, String> {
    if let Ok(decoder) = gst::ElementFactory::make("avdec_aac").build() {
        return Ok(decoder);
    }
    let caps = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .build();
    let factories = gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::DECODER | gst::ElementFactoryType::MEDIA_AUDIO,
        gst::Rank::MARGINAL,
    );
    factories
        .iter()
        .find(|f| f.can_sink_any_caps(&caps))
        .and_then(|f| f.create().build().ok())
        .ok_or_else(|| "no AAC decoder is installed (gst-libav's avdec_aac)".to_string())
}

/// F32 samples in either layout: what a decoder gives back.
pub fn decoded_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("layout", gst::List::new(["interleaved", "non-interleaved"]))
        .build()
}

/// Interleaved F32 samples at `rate` Hz, `channels` channels.
pub fn interleaved_caps(rate: u32, channels: usize) -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("layout", "interleaved")
        .field("rate", rate as i32)
        .field("channels", channels as i32)
        .build()
}

/// How many planes raw audio caps lay their samples out in: one when
/// interleaved, one per channel when not.
pub fn planes(caps: &gst::CapsRef) -> usize {
    let Some(s) = caps.structure(0) else { return 1 };
    if s.get::<&str>("layout") == Ok("non-interleaved") {
        s.get::<i32>("channels").map_or(1, |c| c.max(1) as usize)
    } else {
        1
    }
}

/// A buffer of `samples` as F32LE, stamped at `pts`.
pub fn f32_buffer(samples: &[f32], pts: gst::ClockTime) -> gst::Buffer {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut buffer = gst::Buffer::from_mut_slice(bytes);
    if let Some(b) = buffer.get_mut() {
        b.set_pts(pts);
    }
    buffer
}

/// Appends the F32LE samples of `bytes`.
pub fn extend_f32(samples: &mut Vec<f32>, bytes: &[u8]) {
    samples.extend(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
}
