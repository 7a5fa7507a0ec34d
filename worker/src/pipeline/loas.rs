// SPDX-License-Identifier: MPL-2.0

//! AAC in LOAS/LATM (how DVB carries AAC) rewritten as ADTS, frame for
//! frame, before GStreamer's aacparse sees it.
//!
//! GStreamer 1.22's aacparse keeps only the first LOAS frame of the first
//! PES packet and drops the rest of it (20 frames, 0.43 s, of FFmpeg's
//! LATM), and stamps the first frame it keeps with the time of the frames
//! it skipped. As ADTS, the same frames are parsed whole and stamped from
//! their packet, as AAC in MPEG-TS always is. The conversion reads each
//! AudioMuxElement (ISO/IEC 14496-3 1.7.3: one program, one layer, frame
//! length type 0, the configurations broadcasters and FFmpeg write) and
//! puts its payload behind an ADTS header made from the AudioSpecificConfig.

use std::sync::Mutex;

use gst::prelude::*;
use gststsdub::container::bits::BitReader;

/// Converts the LOAS entering `sink` (an aacparse's) to ADTS: its caps
/// event says ADTS, each buffer holds its frames as ADTS with its own
/// timestamps, and a buffer with no whole frame goes no further.
pub fn rewrite_as_adts(sink: &gst::Pad) {
    let converter = Mutex::new(LoasToAdts::default());
    let types = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM;
    sink.add_probe(types, move |_, info| {
        let Ok(mut converter) = converter.lock() else {
            return gst::PadProbeReturn::Ok;
        };
        match info.data.as_mut() {
            Some(gst::PadProbeData::Buffer(buffer)) => {
                let Ok(adts) = buffer
                    .map_readable()
                    .map(|m| converter.convert(m.as_slice()))
                else {
                    return gst::PadProbeReturn::Ok;
                };
                if adts.is_empty() {
                    info.data = None;
                    return gst::PadProbeReturn::Handled;
                }
                let mut out = gst::Buffer::from_mut_slice(adts);
                if let Some(b) = out.get_mut() {
                    b.set_pts(buffer.pts());
                    b.set_dts(buffer.dts());
                    b.set_flags(buffer.flags() & gst::BufferFlags::DISCONT);
                }
                *buffer = out;
            }
            Some(gst::PadProbeData::Event(event)) => {
                if let gst::EventView::Caps(caps) = event.view() {
                    let mut caps = caps.caps_owned();
                    if let Some(s) = caps.make_mut().structure_mut(0) {
                        s.set("stream-format", "adts");
                        s.remove_field("framed");
                    }
                    *event = gst::event::Caps::new(&caps);
                }
            }
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });
}

/// What an ADTS header needs of an AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AdtsConfig {
    /// The (core) audio object type: 2 for AAC-LC (HE-AAC's core too).
    object_type: u8,
    sampling_index: u8,
    channels: u8,
}

/// A LOAS byte stream, converted as it comes.
#[derive(Debug, Default)]
pub struct LoasToAdts {
    config: Option<AdtsConfig>,
    /// The start of a frame that the last piece ended in.
    pending: Vec<u8>,
    /// Frames that could not be converted (before any configuration, or of
    /// a kind not handled).
    pub dropped: usize,
}

impl LoasToAdts {
    /// The ADTS frames of the whole LOAS frames in `bytes` (with what was
    /// left over from the last call before them).
    pub fn convert(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(bytes);
        let mut out = Vec::with_capacity(input.len() + input.len() / 16);
        let mut at = 0;
        while at + 3 <= input.len() {
            if input[at] != 0x56 || input[at + 1] & 0xE0 != 0xE0 {
                at += 1;
                continue;
            }
            let length = (usize::from(input[at + 1] & 0x1F) << 8) | usize::from(input[at + 2]);
            let end = at + 3 + length;
            if end > input.len() {
                break;
            }
            match self.payload(&input[at + 3..end]) {
                Some((config, payload)) => {
                    out.extend_from_slice(&adts_header(config, payload.len()));
                    out.extend_from_slice(&payload);
                }
                None => self.dropped += 1,
            }
            at = end;
        }
        self.pending = input[at..].to_vec();
        out
    }

    /// The raw AAC payload of one AudioMuxElement (muxConfigPresent).
    fn payload(&mut self, element: &[u8]) -> Option<(AdtsConfig, Vec<u8>)> {
        let mut bits = BitReader::new(element);
        if bits.read(1)? == 0 {
            self.config = Some(stream_mux_config(&mut bits)?);
        }
        let config = self.config?;
        let mut length = 0usize;
        loop {
            let byte = bits.read(8)? as usize;
            length += byte;
            if byte != 255 {
                break;
            }
        }
        let payload = (0..length)
            .map(|_| bits.read(8).map(|b| b as u8))
            .collect::<Option<Vec<u8>>>()?;
        Some((config, payload))
    }
}

/// StreamMuxConfig: audioMuxVersion 0 or 1 (not A), every stream in the
/// same time framing, one program of one layer, frame length type 0.
fn stream_mux_config(bits: &mut BitReader) -> Option<AdtsConfig> {
    let version = bits.read(1)?;
    if version == 1 {
        if bits.read(1)? != 0 {
            return None; // audioMuxVersionA: reserved
        }
        latm_value(bits)?; // taraBufferFullness
    }
    let _same_time_framing = bits.read(1)?;
    let _sub_frames = bits.read(6)?;
    let programs = bits.read(4)?;
    let layers = bits.read(3)?;
    if programs != 0 || layers != 0 {
        return None;
    }
    let config = if version == 0 {
        audio_specific_config(bits)?
    } else {
        let length = latm_value(bits)? as usize;
        let start = bits.position();
        let config = audio_specific_config(bits)?;
        bits.seek(start + length);
        config
    };
    if bits.read(3)? != 0 {
        return None; // frameLengthType other than 0
    }
    let _buffer_fullness = bits.read(8)?;
    if bits.read(1)? == 1 {
        // otherDataPresent
        if version == 1 {
            latm_value(bits)?;
        } else {
            while bits.read(1)? == 1 {
                bits.read(8)?;
            }
            bits.read(8)?;
        }
    }
    if bits.read(1)? == 1 {
        bits.read(8)?; // crcCheckSum
    }
    Some(config)
}

/// LatmGetValue.
fn latm_value(bits: &mut BitReader) -> Option<u32> {
    let bytes = bits.read(2)?;
    (0..=bytes).try_fold(0u32, |value, _| Some(value << 8 | bits.read(8)?))
}

/// AudioSpecificConfig, as far as ADTS needs it (HE-AAC's explicit SBR/PS
/// signalling gives the core object type and rate).
fn audio_specific_config(bits: &mut BitReader) -> Option<AdtsConfig> {
    let mut object_type = object_type(bits)?;
    let sampling_index = bits.read(4)? as u8;
    if sampling_index == 15 {
        return None; // an explicit rate: ADTS has no field for it
    }
    let channels = bits.read(4)? as u8;
    if object_type == 5 || object_type == 29 {
        if bits.read(4)? == 15 {
            bits.read(24)?;
        }
        object_type = self::object_type(bits)?;
    }
    if !(1..=4).contains(&object_type) || channels == 0 {
        return None; // ADTS carries the four MPEG-2 profiles, channels in the header
    }
    // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder (+ delay),
    // extensionFlag.
    bits.read(1)?;
    if bits.read(1)? == 1 {
        bits.read(14)?;
    }
    bits.read(1)?;
    Some(AdtsConfig {
        object_type,
        sampling_index,
        channels,
    })
}

fn object_type(bits: &mut BitReader) -> Option<u8> {
    let kind = bits.read(5)? as u8;
    if kind == 31 {
        Some(32 + bits.read(6)? as u8)
    } else {
        Some(kind)
    }
}

/// A 7-byte ADTS header (MPEG-4, no CRC) for a payload of `length` bytes.
fn adts_header(config: AdtsConfig, length: usize) -> [u8; 7] {
    let frame = length + 7;
    let profile = config.object_type - 1;
    [
        0xFF,
        0xF1,
        (profile << 6) | (config.sampling_index << 2) | (config.channels >> 2),
        ((config.channels & 0x3) << 6) | ((frame >> 11) as u8 & 0x3),
        (frame >> 3) as u8,
        ((frame & 0x7) as u8) << 5 | 0x1F,
        0xFC,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits, most significant first.
    #[derive(Default)]
    struct Writer {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl Writer {
        fn put(&mut self, count: u32, value: u32) {
            for i in (0..count).rev() {
                if self.bits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                let last = self.bytes.len() - 1;
                self.bytes[last] |= bit << (7 - self.bits % 8);
                self.bits += 1;
            }
        }
    }

    /// A LOAS frame as FFmpeg's LATM muxer writes one: a StreamMuxConfig
    /// (AAC-LC, 48 kHz, stereo) when `config`, then `payload`.
    fn loas(config: bool, payload: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        w.put(1, u32::from(!config)); // useSameStreamMux
        if config {
            w.put(1, 0); // audioMuxVersion
            w.put(1, 1); // allStreamsSameTimeFraming
            w.put(6, 0);
            w.put(4, 0);
            w.put(3, 0);
            w.put(5, 2); // AAC-LC
            w.put(4, 3); // 48 kHz
            w.put(4, 2); // stereo
            w.put(3, 0); // GASpecificConfig
            w.put(3, 0); // frameLengthType
            w.put(8, 0xFF);
            w.put(1, 0);
            w.put(1, 0);
        }
        let mut left = payload.len();
        while left >= 255 {
            w.put(8, 255);
            left -= 255;
        }
        w.put(8, left as u32);
        for byte in payload {
            w.put(8, u32::from(*byte));
        }
        let element = w.bytes;
        let mut frame = vec![0x56, 0xE0 | (element.len() >> 8) as u8, element.len() as u8];
        frame.extend(element);
        frame
    }

    #[test]
    fn each_loas_frame_becomes_one_adts_frame_with_the_same_payload() {
        let (first, second): (Vec<u8>, Vec<u8>) = ((0..300).map(|i| i as u8).collect(), vec![7; 9]);
        let stream = [loas(true, &first), loas(false, &second)].concat();
        let mut converter = LoasToAdts::default();
        // In two pieces, the second frame split across them.
        let cut = stream.len() - 4;
        let out = [
            converter.convert(&stream[..cut]),
            converter.convert(&stream[cut..]),
        ]
        .concat();
        assert_eq!(converter.dropped, 0);
        let header = adts_header(
            AdtsConfig {
                object_type: 2,
                sampling_index: 3,
                channels: 2,
            },
            300,
        );
        assert_eq!(&out[..7], &header);
        // Profile LC, 48 kHz, stereo, frame length 307.
        assert_eq!(out[2], 0x4C);
        assert_eq!(
            ((usize::from(out[3] & 3) << 11)
                | (usize::from(out[4]) << 3)
                | usize::from(out[5] >> 5)),
            307
        );
        assert_eq!(&out[7..307], first.as_slice());
        assert_eq!(&out[314..], second.as_slice());
        assert_eq!(out.len(), 307 + 16);
    }

    #[test]
    fn frames_before_any_configuration_are_dropped_and_counted() {
        let mut converter = LoasToAdts::default();
        assert!(converter.convert(&loas(false, &[1, 2, 3])).is_empty());
        assert_eq!(converter.dropped, 1);
        assert_eq!(converter.convert(&loas(true, &[1, 2, 3])).len(), 10);
    }
}
