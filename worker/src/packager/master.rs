// SPDX-License-Identifier: MPL-2.0

//! The multivariant playlist: one video variant, an AUDIO rendition per
//! language (the original and each dub), a SUBTITLES rendition per dubbed
//! language, and the 608 channels of the video as CLOSED-CAPTIONS.

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, ClosedCaptionGroupId, InstreamId, MasterPlaylist,
    Resolution, VariantStream,
};

use super::codecs::codec_string;
use super::subtitle_folder;
use crate::pipeline::{MEDIA_PLAYLIST, Rendition};

const AUDIO_GROUP: &str = "audio";
const SUBTITLES_GROUP: &str = "subs";
const CAPTIONS_GROUP: &str = "cc";
/// Subtitles made from what the dub says: they transcribe its dialogue.
const TRANSCRIBES_DIALOG: &str = "public.accessibility.transcribes-spoken-dialog";

/// What the variant says of its streams.
pub struct Variant {
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub video_caps: Option<gst::Caps>,
    pub audio_caps: Option<gst::Caps>,
}

impl Variant {
    /// The playlist of `renditions` (video and audio), the WebVTT
    /// renditions of `subtitled` languages, and `captions` (language, 608
    /// channel or 708 service) in the video.
    pub fn playlist<'a>(
        &self,
        renditions: impl Iterator<Item = &'a Rendition>,
        subtitled: impl Iterator<Item = &'a String>,
        captions: &[(String, InstreamId)],
    ) -> MasterPlaylist {
        let mut alternatives: Vec<AlternativeMedia> = Vec::new();
        let mut video_uri = String::new();
        let mut default_audio_taken = false;
        let mut audio: Vec<&Rendition> = renditions
            .filter(|r| {
                if **r == Rendition::Video {
                    video_uri = uri(r);
                    false
                } else {
                    true
                }
            })
            .collect();
        // The original first: the default a player falls back to when no
        // language of the viewer's is offered.
        audio.sort_by_key(|r| matches!(r, Rendition::Audio { dubbed: true, .. }));
        for rendition in audio {
            let Rendition::Audio { language, dubbed } = rendition else {
                continue;
            };
            alternatives.push(AlternativeMedia {
                media_type: AlternativeMediaType::Audio,
                uri: Some(uri(rendition)),
                group_id: AUDIO_GROUP.into(),
                language: Some(language.clone()),
                name: if *dubbed {
                    format!("{language} (dubbed)")
                } else {
                    format!("{language} (original)")
                },
                default: !std::mem::replace(&mut default_audio_taken, true),
                autoselect: true,
                channels: self.channels(),
                ..Default::default()
            });
        }
        let subtitled: Vec<&String> = subtitled.collect();
        for language in &subtitled {
            alternatives.push(AlternativeMedia {
                media_type: AlternativeMediaType::Subtitles,
                uri: Some(format!("{}/{MEDIA_PLAYLIST}", subtitle_folder(language))),
                group_id: SUBTITLES_GROUP.into(),
                language: Some((*language).clone()),
                name: format!("{language} (dubbed)"),
                autoselect: true,
                characteristics: Some(TRANSCRIBES_DIALOG.into()),
                ..Default::default()
            });
        }
        for (language, channel) in captions {
            alternatives.push(AlternativeMedia {
                media_type: AlternativeMediaType::ClosedCaptions,
                group_id: CAPTIONS_GROUP.into(),
                language: Some(language.clone()),
                name: format!("{language} ({channel})"),
                autoselect: true,
                instream_id: Some(channel.clone()),
                characteristics: Some(TRANSCRIBES_DIALOG.into()),
                ..Default::default()
            });
        }
        if video_uri.is_empty() {
            video_uri = audio_only_variant(&mut alternatives);
        }
        let codecs: Vec<String> = [&self.video_caps, &self.audio_caps]
            .into_iter()
            .flatten()
            .filter_map(|c| codec_string(c))
            .collect();
        let variant = VariantStream {
            uri: video_uri,
            bandwidth: self.bandwidth,
            average_bandwidth: Some(self.average_bandwidth),
            codecs: (!codecs.is_empty()).then(|| codecs.join(",")),
            resolution: self.resolution(),
            frame_rate: self.frame_rate(),
            audio: alternatives
                .iter()
                .any(|m| m.media_type == AlternativeMediaType::Audio)
                .then(|| AUDIO_GROUP.into()),
            subtitles: (!subtitled.is_empty()).then(|| SUBTITLES_GROUP.into()),
            closed_captions: Some(if captions.is_empty() {
                ClosedCaptionGroupId::None
            } else {
                ClosedCaptionGroupId::GroupId(CAPTIONS_GROUP.into())
            }),
            ..Default::default()
        };
        MasterPlaylist {
            // INSTREAM-ID and CHARACTERISTICS need version 4 or later... 6
            // for CC1–CC4 without a PROGRAM-ID.
            version: Some(6),
            independent_segments: true,
            alternatives,
            variants: vec![variant],
            ..Default::default()
        }
    }

    fn resolution(&self) -> Option<Resolution> {
        let s = self.video_caps.as_ref()?.structure(0)?;
        Some(Resolution {
            width: u64::try_from(s.get::<i32>("width").ok()?).ok()?,
            height: u64::try_from(s.get::<i32>("height").ok()?).ok()?,
        })
    }

    fn frame_rate(&self) -> Option<f64> {
        let s = self.video_caps.as_ref()?.structure(0)?;
        let rate = s.get::<gst::Fraction>("framerate").ok()?;
        (rate.numer() > 0 && rate.denom() > 0)
            .then(|| f64::from(rate.numer()) / f64::from(rate.denom()))
    }

    fn channels(&self) -> Option<String> {
        let s = self.audio_caps.as_ref()?.structure(0)?;
        s.get::<i32>("channels").ok().map(|c| c.to_string())
    }
}

/// With no video, the variant is the default audio rendition: its
/// playlist becomes the variant's, and its EXT-X-MEDIA loses its URI (the
/// rendition "included in" the variant, RFC 8216bis 4.4.6.2.1), so no
/// player loads it twice. Empty when there is no audio either.
fn audio_only_variant(alternatives: &mut [AlternativeMedia]) -> String {
    alternatives
        .iter_mut()
        .find(|m| m.media_type == AlternativeMediaType::Audio && m.default)
        .and_then(|m| m.uri.take())
        .unwrap_or_default()
}

/// A rendition's media playlist, relative to the multivariant playlist.
fn uri(rendition: &Rendition) -> String {
    format!("{}/{MEDIA_PLAYLIST}", rendition.folder())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_is_a_rendition_and_the_original_is_the_default() {
        gst::init().expect("gst");
        let variant = Variant {
            bandwidth: 2_000_000,
            average_bandwidth: 1_500_000,
            video_caps: Some(
                "video/x-h264, profile=(string)high, level=(string)4, width=(int)1280, \
                 height=(int)720, framerate=(fraction)25/1"
                    .parse()
                    .expect("caps"),
            ),
            audio_caps: Some(
                "audio/mpeg, mpegversion=(int)4, channels=(int)2, profile=(string)lc"
                    .parse()
                    .expect("caps"),
            ),
        };
        let renditions = [
            Rendition::Video,
            Rendition::Audio {
                language: "es".into(),
                dubbed: true,
            },
            Rendition::Audio {
                language: "en".into(),
                dubbed: false,
            },
        ];
        let subtitled = ["es".to_owned()];
        let playlist = variant.playlist(
            renditions.iter(),
            subtitled.iter(),
            &[("es".into(), InstreamId::CC(1))],
        );
        let mut text = Vec::new();
        playlist.write_to(&mut text).expect("written");
        let text = String::from_utf8(text).expect("utf-8");
        for line in [
            "#EXT-X-MEDIA:TYPE=AUDIO,URI=\"audio_en/index.m3u8\",GROUP-ID=\"audio\",LANGUAGE=\"en\",NAME=\"en (original)\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\"",
            "#EXT-X-MEDIA:TYPE=AUDIO,URI=\"audio_es/index.m3u8\",GROUP-ID=\"audio\",LANGUAGE=\"es\",NAME=\"es (dubbed)\",AUTOSELECT=YES,CHANNELS=\"2\"",
            "#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"subtitles_es/index.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"es\",NAME=\"es (dubbed)\",AUTOSELECT=YES,CHARACTERISTICS=\"public.accessibility.transcribes-spoken-dialog\"",
            "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",LANGUAGE=\"es\",NAME=\"es (CC1)\",AUTOSELECT=YES,INSTREAM-ID=\"CC1\",CHARACTERISTICS=\"public.accessibility.transcribes-spoken-dialog\"",
            "#EXT-X-STREAM-INF:BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1500000,CODECS=\"avc1.640028,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=25,AUDIO=\"audio\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"",
            "video/index.m3u8",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\nnot in\n{text}");
        }
        let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes()).expect("parses");
        assert_eq!(parsed.alternatives.len(), 4);
    }
}
