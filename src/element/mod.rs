// SPDX-License-Identifier: MPL-2.0

/**
 * element-stsdub:
 * @title: stsdub
 *
 * Dubs a stream's AAC audio through a remote speech-to-speech (STS) service
 * and puts the dubbed audio back in step with the video. Audio is cut into
 * `segment-duration` segments on AAC frame boundaries, each sent as M4A over
 * Socket.IO; each segment leaves either dubbed (trimmed or padded to exactly
 * its length) or, when the STS is late, failing or gone, as the original
 * frames. Output audio is gapless and as long as the input.
 *
 * Video passes through `video_sink` → `video_src` untouched. Live, it is held
 * until the audio of the same instant has left (or its render time is near);
 * in a file it leaves at once and the muxer interleaves. No sink pad waits
 * for the other's data (see `release.rs`), so no queue has to be sized by
 * hand. A track whose branch never links is ended after the other has run
 * 6 s (see `absent.rs`).
 *
 * In a live pipeline the element adds `latency` to the pipeline latency, and a
 * segment that has no answer by its deadline goes out as original audio. In a
 * non-live pipeline there is no deadline: up to `max-inflight` segments are in
 * flight and each waits up to `timeout`.
 *
 * ## Example launch line
 *
 * ```
 * gst-launch-1.0 rtspsrc location="rtsp://host/stream" protocols=tcp latency=200 name=src \
 *   src. ! rtph264depay ! h264parse ! dub.video_sink \
 *   src. ! rtpmp4gdepay ! aacparse ! dub.audio_sink \
 *   stsdub name=dub sts-url=http://sts:8000 stream-id=match-1 \
 *   dub.video_src ! mux.video dub.audio_src ! mux.audio \
 *   flvmux name=mux streamable=true ! queue ! rtmpsink location="rtmp://host/live/out"
 * ```
 *
 * Since: 0.1
 */
use gst::glib;
use gst::prelude::*;

mod absent;
mod audio;
mod audio_in;
mod caption_feed;
mod captions;
mod category;
mod fragment;
mod imp;
mod levels;
mod lifecycle;
mod missing_track;
mod properties;
mod release;
mod report;
mod session_events;
mod settings;
mod state;
mod tags;
mod text;
mod text_out;
mod track;
mod video;
mod voiceover;

glib::wrapper! {
    pub struct StsDub(ObjectSubclass<imp::StsDub>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    settings::mark_enums_as_plugin_api();
    gst::Element::register(
        Some(plugin),
        "stsdub",
        gst::Rank::NONE,
        StsDub::static_type(),
    )
}
