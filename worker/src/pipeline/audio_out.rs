// SPDX-License-Identifier: MPL-2.0

//! The codec of the output's audio tracks (`--output-audio-codec`). stsdub
//! is an AAC element; a delivery that needs the input's broadcast codec
//! (AC-3 for ATSC, MPEG-1 Layer II for DVB) gets every audio track decoded
//! and encoded again after stsdub, by GStreamer's own FFmpeg encoders.

/// What the output's audio tracks are written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioOut {
    /// stsdub's AAC as it leaves the element (codec copy of the original).
    #[default]
    Aac,
    /// Dolby Digital (ATSC A/52), at FFmpeg's rate for the channels
    /// (192 kb/s stereo, 448 kb/s 5.1).
    Ac3,
    /// MPEG-1 Layer II (DVB's), at 192 kb/s (FFmpeg's default, 384 kb/s, is
    /// twice what DVB services carry for stereo; 192 is also mono's top rate).
    Mp2,
}

/// The names `--output-audio-codec` takes.
const NAMES: [(&str, AudioOut); 3] = [
    ("aac", AudioOut::Aac),
    ("ac3", AudioOut::Ac3),
    ("mp2", AudioOut::Mp2),
];

impl AudioOut {
    pub fn from_name(name: &str) -> Result<Self, String> {
        NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, codec)| *codec)
            .ok_or_else(|| format!("--output-audio-codec {name:?}: aac, ac3 or mp2"))
    }

    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, codec)| *codec == self)
            .map_or("aac", |(name, _)| name)
    }

    /// The elements that bring stsdub's AAC to this codec, each followed by
    /// ` ! `; empty for AAC. The encoder keeps each buffer's timestamps (a
    /// GstAudioEncoder), so the track stays on the video's timeline.
    pub(super) fn chain(self) -> &'static str {
        match self {
            AudioOut::Aac => "",
            AudioOut::Ac3 => "avdec_aac ! audioconvert ! audioresample ! avenc_ac3 ! ac3parse ! ",
            AudioOut::Mp2 => {
                "avdec_aac ! audioconvert ! audioresample ! avenc_mp2 bitrate=192000 ! mpegaudioparse ! "
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_an_unknown_one_says_what_is_taken() {
        for (name, codec) in NAMES {
            assert_eq!(AudioOut::from_name(name), Ok(codec));
            assert_eq!(codec.name(), name);
        }
        assert_eq!(AudioOut::from_name("AC3"), Ok(AudioOut::Ac3));
        let error = AudioOut::from_name("dts").expect_err("refused");
        assert!(error.contains("aac, ac3 or mp2"), "{error}");
        assert!(AudioOut::Aac.chain().is_empty());
        assert!(AudioOut::Ac3.chain().ends_with("ac3parse ! "));
    }
}
