// SPDX-License-Identifier: MPL-2.0

//! Fits dubbed AAC frames to the segment they replace. Pure.
//!
//! Dubbed audio rarely has the segment's exact length. Frame i of the dubbed
//! audio replaces frame i of the original and takes its timestamps, so the
//! output starts at the segment's start, is exactly as long as the input, and
//! A/V error never exceeds one frame nor accumulates. Missing frames are AAC
//! silence; extra frames are dropped.

use crate::container::m4a::AacConfig;

/// How the dubbed audio was made to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFit {
    Exact,
    /// This many dubbed frames were dropped at the end.
    Trimmed(usize),
    /// This many silent frames were added at the end.
    Padded(usize),
}

/// Why dubbed audio cannot replace the original as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incompatible {
    /// Another rate or channel count: it needs transcoding.
    Format { expected: (u32, u8), got: (u32, u8) },
    /// Not AAC-LC: we cannot make silence frames for it, nor trust it in an LC stream.
    ObjectType(u8),
}

impl std::fmt::Display for Incompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incompatible::Format { expected, got } => write!(
                f,
                "dubbed audio is {} Hz/{} ch, stream is {} Hz/{} ch",
                got.0, got.1, expected.0, expected.1
            ),
            Incompatible::ObjectType(t) => {
                write!(f, "dubbed audio is AAC object type {t}, not AAC-LC")
            }
        }
    }
}

const AAC_LC: u8 = 2;

/// Checks that dubbed frames can be spliced into the stream without transcoding.
pub fn check_compatible(stream: &AacConfig, dubbed: &AacConfig) -> Result<(), Incompatible> {
    if dubbed.object_type != stream.object_type {
        return Err(Incompatible::ObjectType(dubbed.object_type));
    }
    if (dubbed.sample_rate, dubbed.channels) != (stream.sample_rate, stream.channels) {
        return Err(Incompatible::Format {
            expected: (stream.sample_rate, stream.channels),
            got: (dubbed.sample_rate, dubbed.channels),
        });
    }
    Ok(())
}

/// How many of a dubbed answer's frames can reach the output: enough for
/// `wanted_samples` at `stream_rate` once sped up by at most `stretch`,
/// after `priming_samples` of encoder delay, with two frames to spare. The
/// rest is dropped unread: an answer many times its segment (a few MB of
/// low-bitrate AAC can hold an hour) is never decoded whole.
pub fn frames_worth_decoding(
    dubbed: &AacConfig,
    stream_rate: u32,
    wanted_samples: usize,
    stretch: f64,
    priming_samples: u32,
) -> usize {
    let in_dubbed_rate = wanted_samples as f64 * stretch.max(1.0) * f64::from(dubbed.sample_rate)
        / f64::from(stream_rate.max(1));
    let samples = in_dubbed_rate + f64::from(priming_samples);
    (samples / f64::from(crate::container::m4a::AAC_FRAME_SAMPLES)).ceil() as usize + 2
}

/// Makes exactly `wanted` frames from `dubbed`: trims the tail or pads it
/// with copies of `silence`.
pub fn fit<T: Clone>(mut dubbed: Vec<T>, wanted: usize, silence: &T) -> (Vec<T>, FrameFit) {
    let have = dubbed.len();
    let fit = match have.cmp(&wanted) {
        std::cmp::Ordering::Equal => FrameFit::Exact,
        std::cmp::Ordering::Greater => {
            dubbed.truncate(wanted);
            FrameFit::Trimmed(have - wanted)
        }
        std::cmp::Ordering::Less => {
            dubbed.resize(wanted, silence.clone());
            FrameFit::Padded(wanted - have)
        }
    };
    (dubbed, fit)
}

/// One AAC-LC raw_data_block that decodes to 1024 samples of silence: each
/// channel element has max_sfb = 0, so no spectral data, then END.
pub fn silent_frame(config: &AacConfig) -> Option<Vec<u8>> {
    if config.object_type != AAC_LC {
        return None;
    }
    // Channel configurations 1..=7 of ISO 14496-3 Table 1.19, as element ids:
    // SCE = 0, CPE = 1, LFE = 3.
    let elements: &[u8] = match config.channels {
        1 => &[0],
        2 => &[1],
        3 => &[0, 1],
        4 => &[0, 1, 0],
        5 => &[0, 1, 1],
        6 => &[0, 1, 1, 3],
        7 => &[0, 1, 1, 1, 3],
        _ => return None,
    };
    let mut bits = BitWriter::default();
    let mut tags = [0u32; 4];
    for &element in elements {
        bits.put(u32::from(element), 3);
        bits.put(tags[usize::from(element)], 4);
        tags[usize::from(element)] += 1;
        if element == 1 {
            bits.put(0, 1); // common_window = 0: two independent channel streams
            silent_channel_stream(&mut bits);
        }
        silent_channel_stream(&mut bits);
    }
    bits.put(7, 3); // ID_END
    Some(bits.finish())
}

fn silent_channel_stream(bits: &mut BitWriter) {
    bits.put(100, 8); // global_gain: any value, nothing is scaled
    bits.put(0, 1); // ics_reserved_bit
    bits.put(0, 2); // window_sequence ONLY_LONG
    bits.put(0, 1); // window_shape
    bits.put(0, 6); // max_sfb = 0
    bits.put(0, 1); // predictor_data_present
    bits.put(0, 3); // pulse, tns, gain control: absent
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            if self.used.is_multiple_of(8) {
                self.bytes.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= bit << (7 - self.used % 8);
            }
            self.used += 1;
        }
    }

    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_trims_pads_or_keeps() {
        assert_eq!(fit(vec![1, 2, 3], 3, &0), (vec![1, 2, 3], FrameFit::Exact));
        assert_eq!(
            fit(vec![1, 2, 3, 4, 5], 3, &0),
            (vec![1, 2, 3], FrameFit::Trimmed(2))
        );
        assert_eq!(fit(vec![1], 3, &0), (vec![1, 0, 0], FrameFit::Padded(2)));
        assert_eq!(fit(Vec::new(), 2, &9), (vec![9, 9], FrameFit::Padded(2)));
    }

    #[test]
    fn silent_frames_have_the_expected_sizes() {
        // mono: 3+4 + 22 + 3 = 32 bits; stereo: 3+4+1 + 2*22 + 3 = 55 bits.
        let mono = silent_frame(&AacConfig::aac_lc(48000, 1).unwrap()).unwrap();
        assert_eq!(mono.len(), 4);
        let stereo = silent_frame(&AacConfig::aac_lc(44100, 2).unwrap()).unwrap();
        assert_eq!(stereo.len(), 7);
        assert_eq!(stereo[0] >> 5, 1, "starts with a CPE");
        assert!(silent_frame(&AacConfig::aac_lc(48000, 8).unwrap()).is_none());
    }

    #[test]
    fn compatibility_needs_same_rate_channels_and_profile() {
        let stream = AacConfig::aac_lc(48000, 2).unwrap();
        assert_eq!(check_compatible(&stream, &stream), Ok(()));
        let other = AacConfig::aac_lc(44100, 2).unwrap();
        assert!(matches!(
            check_compatible(&stream, &other),
            Err(Incompatible::Format {
                got: (44100, 2),
                ..
            })
        ));
        let he = AacConfig::from_audio_specific_config(&[0x2b, 0x10]).unwrap(); // object type 5
        assert_eq!(
            check_compatible(&stream, &he),
            Err(Incompatible::ObjectType(5))
        );
    }

    #[test]
    fn only_the_frames_that_can_reach_the_segment_are_decoded() {
        let config = |rate| AacConfig::aac_lc(rate, 1).expect("a rate with an index");
        // 282 frames at 48 kHz (6 s): as many at 48 kHz, a third at 16 kHz.
        let wanted = 282 * 1024;
        assert_eq!(
            frames_worth_decoding(&config(48_000), 48_000, wanted, 1.0, 0),
            284
        );
        assert_eq!(
            frames_worth_decoding(&config(16_000), 48_000, wanted, 1.0, 0),
            96
        );
        // Stretching may use up to max-stretch more; priming comes first.
        assert_eq!(
            frames_worth_decoding(&config(48_000), 48_000, wanted, 1.25, 0),
            355
        );
        assert_eq!(
            frames_worth_decoding(&config(48_000), 48_000, wanted, 1.0, 2048),
            286
        );
    }
}
