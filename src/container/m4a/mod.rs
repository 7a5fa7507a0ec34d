// SPDX-License-Identifier: MPL-2.0

//! M4A (MPEG-4 audio, ISO BMFF) packing and unpacking in memory, for one AAC
//! track. Pure: no GStreamer, no I/O.
//!
//! Why our own and not a crate: we need exactly one thing, an `mp4a` track with
//! a correct `esds`, and its inverse for whatever an STS returns (plain MP4 with
//! `stbl`, or fragmented MP4 with `moof`/`trun`). The `mp4` crate writes a
//! malformed `esds`; `shiguredo_mp4` is sound but its API is still moving
//! between canary releases. A few hundred lines with bounds checks everywhere,
//! tested against ffprobe and qtdemux, are easier to keep correct.
//!
//! `pack` writes a faststart M4A, `unpack` reads one (plain or fragmented).

use std::fmt;

/// Samples per AAC-LC frame; every frame we pack has this duration.
pub const AAC_FRAME_SAMPLES: u32 = 1024;

/// What describes the AAC stream: the AudioSpecificConfig and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    pub audio_specific_config: Vec<u8>,
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AacConfig {
    /// How long one AAC frame (1024 samples) lasts at this rate, in ns,
    /// rounded down.
    pub fn frame_duration_ns(&self) -> u64 {
        u64::from(AAC_FRAME_SAMPLES) * 1_000_000_000 / u64::from(self.sample_rate.max(1))
    }

    /// Reads the fields we need from an AudioSpecificConfig (ISO 14496-3 1.6.2.1).
    pub fn from_audio_specific_config(asc: &[u8]) -> Result<Self, M4aError> {
        let mut bits = BitReader::new(asc);
        let mut object_type = bits.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + bits.read(6)? as u8;
        }
        let index = bits.read(4)? as usize;
        let sample_rate = if index == 0xf {
            bits.read(24)?
        } else {
            *SAMPLE_RATES
                .get(index)
                .ok_or(M4aError::Invalid("reserved sampling frequency index"))?
        };
        let channels = bits.read(4)? as u8;
        if sample_rate == 0 {
            return Err(M4aError::Invalid("sample rate 0"));
        }
        Ok(Self {
            audio_specific_config: asc.to_vec(),
            object_type,
            sample_rate,
            channels,
        })
    }

    /// Builds the AudioSpecificConfig of a plain AAC-LC stream.
    pub fn aac_lc(sample_rate: u32, channels: u8) -> Result<Self, M4aError> {
        let index = SAMPLE_RATES
            .iter()
            .position(|&r| r == sample_rate)
            .ok_or(M4aError::Invalid("sample rate has no AAC frequency index"))?
            as u16;
        let asc = (2u16 << 11) | (index << 7) | (u16::from(channels & 0xf) << 3);
        Self::from_audio_specific_config(&asc.to_be_bytes())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum M4aError {
    Truncated(&'static str),
    Missing(&'static str),
    Invalid(&'static str),
}

impl fmt::Display for M4aError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            M4aError::Truncated(what) => write!(f, "M4A truncated in {what}"),
            M4aError::Missing(what) => write!(f, "M4A has no {what}"),
            M4aError::Invalid(what) => write!(f, "M4A invalid: {what}"),
        }
    }
}

impl std::error::Error for M4aError {}

mod pack;
mod unpack;

pub use pack::pack;
pub use unpack::{Unpacked, unpack};

/// The AudioSpecificConfig's bits; running out of them is an error.
struct BitReader<'a>(crate::container::bits::BitReader<'a>);

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self(crate::container::bits::BitReader::new(data))
    }

    fn read(&mut self, count: u32) -> Result<u32, M4aError> {
        self.0
            .read(count)
            .ok_or(M4aError::Truncated("AudioSpecificConfig"))
    }
}

#[cfg(test)]
mod tests {
    use super::pack::{boxed, full_box};
    use super::unpack::{children, find};
    use super::*;

    fn frames(count: usize) -> Vec<Vec<u8>> {
        (0..count).map(|i| vec![i as u8; 100 + i % 7]).collect()
    }

    #[test]
    fn config_from_aac_lc_asc() {
        let config = AacConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
        assert_eq!(
            (config.object_type, config.sample_rate, config.channels),
            (2, 44100, 2)
        );
        assert_eq!(AacConfig::aac_lc(44100, 2).unwrap(), config);
        assert_eq!(
            AacConfig::aac_lc(48000, 1).unwrap().audio_specific_config,
            vec![0x11, 0x88]
        );
    }

    #[test]
    fn pack_then_unpack_gives_the_same_frames() {
        let config = AacConfig::aac_lc(48000, 2).unwrap();
        let input = frames(282);
        let m4a = pack(&config, &input, 0);
        let unpacked = unpack(&m4a).unwrap();
        assert_eq!(unpacked.config, config);
        assert_eq!(unpacked.priming_samples, 0);
        let out: Vec<&[u8]> = unpacked.frames.iter().map(|r| &m4a[r.clone()]).collect();
        assert_eq!(out, input.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    #[test]
    fn priming_is_written_and_honoured() {
        let config = AacConfig::aac_lc(44100, 1).unwrap();
        let m4a = pack(&config, &frames(10), 1024);
        let unpacked = unpack(&m4a).unwrap();
        assert_eq!(unpacked.priming_samples, 1024);
        assert_eq!(unpacked.presented_frames().len(), 9);
        assert_eq!(unpacked.presented_frames()[0], unpacked.frames[1]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let m4a = pack(&AacConfig::aac_lc(48000, 2).unwrap(), &frames(5), 0);
        for len in 0..m4a.len() {
            assert!(unpack(&m4a[..len]).is_err(), "truncated at {len} accepted");
        }
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(unpack(b"not an mp4 at all, just some text").is_err());
        assert!(unpack(&[0xff; 64]).is_err());
        assert!(unpack(&[]).is_err());
    }

    #[test]
    fn fragmented_mp4_is_unpacked() {
        // init: ftyp + moov with mvex/trex; one moof+mdat with sizes in trun.
        let config = AacConfig::aac_lc(48000, 2).unwrap();
        let plain = pack(&config, &Vec::<Vec<u8>>::new(), 0);
        let top = children(&plain, 0..plain.len()).unwrap();
        let moov = find(&top, b"moov").unwrap();
        let trex = full_box(
            b"trex",
            0,
            0,
            &[1u32, 1, 1024, 0, 0]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect::<Vec<_>>(),
        );
        let mvex = boxed(b"mvex", &trex);
        let moov_fragmented = boxed(b"moov", &[&plain[moov.body.clone()], &mvex[..]].concat());
        let samples = frames(3);
        let trun_body_len = 4 + 4 + 4 + 3 * 4;
        let tfhd = full_box(b"tfhd", 0, 0x20000, &1u32.to_be_bytes());
        let traf_len = 8 + tfhd.len() + 8 + trun_body_len;
        let moof_len = 8 + 16 + traf_len;
        let data_offset = (moof_len + 8) as u32;
        let trun = full_box(
            b"trun",
            0,
            0x201,
            &[&3u32.to_be_bytes()[..], &data_offset.to_be_bytes()]
                .into_iter()
                .chain(
                    samples
                        .iter()
                        .map(|s| (s.len() as u32).to_be_bytes())
                        .collect::<Vec<_>>()
                        .iter()
                        .map(|b| &b[..]),
                )
                .flatten()
                .copied()
                .collect::<Vec<_>>(),
        );
        let moof = boxed(
            b"moof",
            &[
                full_box(b"mfhd", 0, 0, &1u32.to_be_bytes()),
                boxed(b"traf", &[tfhd, trun].concat()),
            ]
            .concat(),
        );
        assert_eq!(moof.len(), moof_len);
        let mdat = boxed(b"mdat", &samples.concat());
        let ftyp = boxed(b"ftyp", b"iso6\0\0\0\0iso6");
        let file = [ftyp, moov_fragmented, moof, mdat].concat();
        let unpacked = unpack(&file).unwrap();
        let out: Vec<&[u8]> = unpacked.frames.iter().map(|r| &file[r.clone()]).collect();
        assert_eq!(out, samples.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }
}
