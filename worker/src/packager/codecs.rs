// SPDX-License-Identifier: MPL-2.0

//! The CODECS attribute of a variant (RFC 6381 strings) from a stream's
//! caps, as the parsers upstream of hlssink3 describe it.

/// `avc1.PPCCLL`, `hvc1.…` or `mp4a.40.N` for `caps`; None when the caps
/// say too little to name it.
pub fn codec_string(caps: &gst::CapsRef) -> Option<String> {
    let s = caps.structure(0)?;
    match s.name().as_str() {
        "video/x-h264" => h264(s.get::<&str>("profile").ok()?, s.get::<&str>("level").ok()?),
        "video/x-h265" => h265(
            s.get::<&str>("profile").ok()?,
            s.get::<&str>("tier").unwrap_or("main"),
            s.get::<&str>("level").ok()?,
        ),
        "audio/mpeg" => Some(aac(s.get::<&str>("profile").unwrap_or("lc")).to_owned()),
        _ => None,
    }
}

/// H.264: profile_idc, the constraint flags byte and level_idc, in hex.
fn h264(profile: &str, level: &str) -> Option<String> {
    let (profile_idc, constraints) = match profile {
        "constrained-baseline" => (66, 0x40),
        "baseline" => (66, 0x00),
        "main" => (77, 0x00),
        "extended" => (88, 0x00),
        "high" => (100, 0x00),
        "high-10" => (110, 0x00),
        "high-4:2:2" => (122, 0x00),
        "high-4:4:4" => (244, 0x00),
        _ => return None,
    };
    let level_idc = if level == "1b" {
        9
    } else {
        level_number(level)?
    };
    Some(format!(
        "avc1.{profile_idc:02X}{constraints:02X}{level_idc:02X}"
    ))
}

/// H.265: `hvc1.<profile>.<compatibility>.<tier><level×3>.B0`.
fn h265(profile: &str, tier: &str, level: &str) -> Option<String> {
    let (profile_idc, compatibility) = match profile {
        "main" => (1, 6),
        "main-10" => (2, 4),
        "main-still-picture" => (3, 8),
        _ => return None,
    };
    let tier = if tier == "high" { 'H' } else { 'L' };
    Some(format!(
        "hvc1.{profile_idc}.{compatibility}.{tier}{}.B0",
        level_number(level)? * 3
    ))
}

/// `3.1` as 31, `4` as 40.
fn level_number(level: &str) -> Option<u32> {
    let (major, minor) = level.split_once('.').unwrap_or((level, "0"));
    Some(major.parse::<u32>().ok()? * 10 + minor.parse::<u32>().ok()?)
}

/// AAC by aacparse's profile name: LC, HE-AAC (SBR), HE-AACv2 (PS).
fn aac(profile: &str) -> &'static str {
    match profile {
        "he-aac" | "he-aac-v1" => "mp4a.40.5",
        "he-aac-v2" => "mp4a.40.29",
        _ => "mp4a.40.2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(text: &str) -> gst::Caps {
        gst::init().expect("gst");
        text.parse().expect("caps")
    }

    #[test]
    fn codecs_are_named_as_rfc_6381_writes_them() {
        for (text, expected) in [
            (
                "video/x-h264, profile=(string)high, level=(string)3.1",
                "avc1.64001F",
            ),
            (
                "video/x-h264, profile=(string)constrained-baseline, level=(string)3",
                "avc1.42401E",
            ),
            (
                "video/x-h265, profile=(string)main, tier=(string)main, level=(string)3.1",
                "hvc1.1.6.L93.B0",
            ),
            (
                "audio/mpeg, mpegversion=(int)4, profile=(string)lc",
                "mp4a.40.2",
            ),
            (
                "audio/mpeg, mpegversion=(int)4, profile=(string)he-aac-v2",
                "mp4a.40.29",
            ),
        ] {
            assert_eq!(
                codec_string(&caps(text)).as_deref(),
                Some(expected),
                "{text}"
            );
        }
        assert_eq!(codec_string(&caps("video/x-h264")), None);
    }
}
