// SPDX-License-Identifier: MPL-2.0

//! The captions' glue: each segment's words, once its outcome is known,
//! become captions over its time on the output (`captions::layout`), and
//! each video frame, as it leaves, carries its share of their 608 byte
//! pairs and 708 packets in an SEI (`captions::track`, `captions::cea708`,
//! `captions::a53`). A video frame
//! leaves once the words of the next [`CAPTION_LEAD`] are known (a file),
//! or at its render time at the latest (live, see `release.rs`): so the
//! first caption of a segment can be loaded before the segment starts.

use super::category::CAT;
use super::settings::{CaptionTextProperty, CaptionsProperty, Settings};
use crate::captions::a53::{self, Codec, Framing};
use crate::captions::cea608::CaptionChannel;
use crate::captions::cea708::CaptionService;
use crate::captions::layout;
use crate::captions::merge;
use crate::captions::track::CaptionTrack;
use crate::sts::text::SegmentText;

/// How far past a video frame the words must be known before it leaves
/// (when it need not leave yet): a full two-row caption's load at 608's
/// rate (about 1.6 s), so that it shows at its start.
const CAPTION_LEAD: gst::ClockTime = gst::ClockTime::from_mseconds(2_000);
/// The frame duration assumed until the caps say (29.97 fps).
const DEFAULT_FRAME_NS: u64 = 1_000_000_000 * 1001 / 30_000;

/// The captions of the video output.
pub(super) struct CaptionsOut {
    /// 608, on `caption-channel`'s CC (`captions=cea608|both`).
    track: Option<CaptionTrack>,
    /// 708, service number `caption-channel` (`captions=cea708|both`).
    service: Option<CaptionService>,
    channel: CaptionChannel,
    words: CaptionTextProperty,
    /// The video's codec and NAL framing, from its caps; None: not one we
    /// can carry captions in.
    format: Option<(Codec, Framing)>,
    frame_ns: u64,
    /// Running time up to which every segment's outcome is known.
    pub(super) decided_until: Option<gst::ClockTime>,
    /// Said once: frames that could not carry their captions.
    warned: bool,
    /// The next DTVCC packet's sequence number in the video we send.
    sequence: u8,
}

impl CaptionsOut {
    /// Captions as `settings` ask, if they ask for any.
    pub(super) fn new(settings: &Settings) -> Option<Self> {
        if settings.captions == CaptionsProperty::Off {
            return None;
        }
        let channel = CaptionChannel::cc(settings.caption_channel)?;
        let number = u8::try_from(settings.caption_channel).ok()?;
        Some(Self {
            track: settings
                .captions
                .has_608()
                .then(|| CaptionTrack::new(channel, settings.caption_style.into())),
            service: settings
                .captions
                .has_708()
                .then(|| CaptionService::new(number)),
            channel,
            words: settings.caption_text,
            format: None,
            frame_ns: DEFAULT_FRAME_NS,
            decided_until: None,
            warned: false,
            sequence: 0,
        })
    }

    /// The words of the segment at running time `start`, `duration` long,
    /// are known (None: it fell back, no caption).
    pub(super) fn segment_decided(
        &mut self,
        start: u64,
        duration: u64,
        text: Option<&SegmentText>,
    ) {
        if let Some(text) = text {
            let words = match self.words {
                CaptionTextProperty::Translation => &text.translation,
                CaptionTextProperty::Transcript => &text.transcript,
            };
            let captions = layout::captions(words, start, duration);
            if let Some(service) = &mut self.service {
                service.add(captions.iter().cloned());
            }
            if let Some(track) = &mut self.track {
                track.add(captions);
            }
        }
        let end = gst::ClockTime::from_nseconds(start + duration);
        self.decided_until = Some(self.decided_until.map_or(end, |until| until.max(end)));
    }

    /// No more audio: nothing more to wait for.
    pub(super) fn audio_ended(&mut self) {
        self.decided_until = Some(gst::ClockTime::MAX);
    }

    /// Forgets what was decided (the audio was flushed).
    pub(super) fn forget_decisions(&mut self) {
        self.decided_until = None;
    }

    /// Whether the words around a frame at `head` are known.
    pub(super) fn knows(&self, head: gst::ClockTime) -> bool {
        self.decided_until
            .is_some_and(|until| until >= head.saturating_add(CAPTION_LEAD))
    }

    /// The video's caps: which codec, how its units are framed, its rate.
    pub(super) fn on_caps(&mut self, caps: &gst::CapsRef) {
        let Some(structure) = caps.structure(0) else {
            return;
        };
        self.format = video_format(structure);
        if let Ok(rate) = structure.get::<gst::Fraction>("framerate")
            && rate.numer() > 0
            && rate.denom() > 0
        {
            self.frame_ns = 1_000_000_000 * rate.denom() as u64 / rate.numer() as u64;
        }
        if let Some(service) = &mut self.service {
            service.set_frame_room(a53::cc_count(self.frame_ns).saturating_sub(2));
        }
    }

    /// `buffer` (a video frame at `running_time`) with its caption data.
    pub(super) fn caption(
        &mut self,
        buffer: gst::Buffer,
        running_time: Option<gst::ClockTime>,
    ) -> gst::Buffer {
        let (Some((codec, framing)), Some(at)) = (self.format, running_time) else {
            return buffer;
        };
        let duration = buffer.duration().map_or(self.frame_ns, |d| d.nseconds());
        let count = a53::cc_count(duration);
        let pairs = self
            .track
            .as_mut()
            .map(|track| track.frame(at.nseconds(), duration))
            .unwrap_or_default();
        let field = self.channel.field;
        let inserted = buffer.map_readable().ok().and_then(|map| {
            let access_unit = map.as_slice();
            if self.service.is_some() {
                return self.with_708(access_unit, codec, framing, at, &pairs, count);
            }
            // 608 alone: the input's own captions of our field make way
            // for ours, in an SEI of our own.
            let cc_data = a53::cc_data(field, &pairs, count);
            let nal = a53::sei_nal(codec, &cc_data);
            let theirs = a53::without_field(access_unit, codec, framing, field);
            a53::insert(
                theirs.as_deref().unwrap_or(access_unit),
                codec,
                framing,
                &nal,
            )
        });
        match inserted {
            Some(bytes) => with_bytes(&buffer, bytes),
            None => {
                if !std::mem::replace(&mut self.warned, true) {
                    gst::warning!(
                        CAT,
                        "a video frame at {at} has no slice where its captions could go; \
                         its captions are left out"
                    );
                }
                buffer
            }
        }
    }
}

impl CaptionsOut {
    /// `access_unit` with our 708 packets (and 608 pairs, with both) in its
    /// cc_data: written into an A/53 SEI another writer put there alone
    /// (the stsdub before us in a multi-language worker, or the input's),
    /// else in an SEI of our own (`captions::merge`).
    fn with_708(
        &mut self,
        access_unit: &[u8],
        codec: Codec,
        framing: Framing,
        at: gst::ClockTime,
        pairs: &[[u8; 2]],
        count: usize,
    ) -> Option<Vec<u8>> {
        let service = self.service.as_mut()?;
        let theirs = a53::lone_cc_data(access_unit, codec, framing);
        let ours = merge::Ours {
            field: self.track.as_ref().map(|_| self.channel.field),
            pairs,
            service: service.number(),
        };
        let triplets = merge::merged(
            theirs.as_ref().map_or(&[][..], |t| &t.triplets),
            &ours,
            |room| service.frame(at.nseconds(), room),
            count,
            &mut self.sequence,
        );
        let cc_data: Vec<u8> = triplets.into_iter().flatten().collect();
        let nal = a53::sei_nal(codec, &cc_data);
        match theirs {
            Some(theirs) => a53::replace_unit(access_unit, framing, theirs.unit, &nal),
            None => {
                // The input's own 608 of our field (in an SEI with other
                // messages) makes way for ours.
                let cleared = ours
                    .field
                    .and_then(|field| a53::without_field(access_unit, codec, framing, field));
                a53::insert(
                    cleared.as_deref().unwrap_or(access_unit),
                    codec,
                    framing,
                    &nal,
                )
            }
        }
    }
}

impl CaptionsProperty {
    fn has_608(self) -> bool {
        matches!(self, Self::Cea608 | Self::Both)
    }

    fn has_708(self) -> bool {
        matches!(self, Self::Cea708 | Self::Both)
    }
}

/// Codec and framing from H.264/H.265 caps; None for any other video.
fn video_format(structure: &gst::StructureRef) -> Option<(Codec, Framing)> {
    let (codec, length_byte) = match structure.name().as_str() {
        "video/x-h264" => (Codec::H264, 4),
        "video/x-h265" => (Codec::H265, 21),
        _ => return None,
    };
    let stream_format = structure
        .get::<&str>("stream-format")
        .unwrap_or("byte-stream");
    if stream_format == "byte-stream" {
        return Some((codec, Framing::StartCodes));
    }
    // avcC / hvcC: lengthSizeMinusOne in the low two bits of that byte.
    let codec_data = structure.get::<gst::Buffer>("codec_data").ok()?;
    let map = codec_data.map_readable().ok()?;
    let size = usize::from(map.as_slice().get(length_byte)? & 0x03) + 1;
    Some((codec, Framing::Length(size)))
}

/// A buffer of `bytes` with `original`'s flags, timestamps and metas.
fn with_bytes(original: &gst::Buffer, bytes: Vec<u8>) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(bytes);
    if let Some(out) = buffer.get_mut() {
        let copy = gst::BufferCopyFlags::FLAGS
            | gst::BufferCopyFlags::TIMESTAMPS
            | gst::BufferCopyFlags::META;
        if original.copy_into(out, copy, ..).is_err() {
            out.set_pts(original.pts());
            out.set_dts(original.dts());
            out.set_duration(original.duration());
            out.set_flags(original.flags());
        }
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_caps_give_the_length_size_and_byte_stream_start_codes() {
        gst::init().unwrap();
        let avcc = gst::Buffer::from_slice([1, 0x64, 0, 0x0D, 0xFF, 0xE1]);
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("codec_data", avcc)
            .build();
        assert_eq!(
            video_format(caps.structure(0).unwrap()),
            Some((Codec::H264, Framing::Length(4)))
        );
        let caps = gst::Caps::builder("video/x-h265")
            .field("stream-format", "byte-stream")
            .build();
        assert_eq!(
            video_format(caps.structure(0).unwrap()),
            Some((Codec::H265, Framing::StartCodes))
        );
        let caps = gst::Caps::builder("video/x-vp8").build();
        assert_eq!(video_format(caps.structure(0).unwrap()), None);
    }
}
