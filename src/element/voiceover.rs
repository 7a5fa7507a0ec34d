// SPDX-License-Identifier: MPL-2.0

//! The re-encoded output (voice-over, stretched speech): the audio_src
//! task's side of `reencode.rs`. The re-encoder starts at the stream's caps
//! event (its caps replace the input's), takes every segment in order, and
//! gives its last frames back before EOS. Should it fail, the stream goes
//! on in codec copy with the frames it held: nothing is lost.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::category::CAT;
use super::imp::StsDub;
use super::state::{Track, lock};
use crate::audio::driven_element::aac_config;
use crate::audio::loudness::SegmentLoudness;
use crate::audio::reencode::{Encoding, Reencoder};
use crate::container::m4a::AacConfig;

/// What the re-encoded output needs to know, read once per output item.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mix {
    /// Gain of the original under a dubbed voice.
    pub(super) original_volume: f32,
    pub(super) encoding: Encoding,
}

impl StsDub {
    /// Whether this stream's output is re-encoded: asked for, and possible
    /// (AAC-LC input, the encoder and scaletempo installed). A bus warning
    /// says why not when it was asked for.
    pub(super) fn can_reencode(&self, wanted: bool, config: &AacConfig) -> bool {
        if !wanted {
            return false;
        }
        let missing: Vec<&str> = ["avenc_aac", "scaletempo"]
            .into_iter()
            .filter(|name| gst::ElementFactory::find(name).is_none())
            .collect();
        let why_not = if config.object_type != 2 {
            Some(format!(
                "the input is AAC object type {}, re-encoding takes AAC-LC (2)",
                config.object_type
            ))
        } else if !missing.is_empty() {
            Some(format!("{} not installed", missing.join(" and ")))
        } else {
            None
        };
        match why_not {
            None => true,
            Some(why) => {
                gst::element_imp_warning!(
                    self,
                    gst::CoreError::MissingPlugin,
                    [
                        "original-volume, fit=stretch and loudness are off: {why}; dubbed audio replaces the original (codec copy)"
                    ]
                );
                false
            }
        }
    }

    /// At the stream's caps: a re-encoder for it, and the caps event that
    /// goes out instead (None: the input's caps go out, codec copy).
    pub(super) fn start_reencoder(
        &self,
        caps: &gst::CapsRef,
        mix: Mix,
    ) -> Result<Option<gst::Event>, gst::FlowError> {
        let Ok(config) = aac_config(caps) else {
            return Ok(None);
        };
        {
            let current = lock(&self.reencoder);
            if let Some(reencoder) = current.as_ref()
                && reencoder.config() == &config
            {
                return Ok(reencoder.output_caps().map(|c| gst::event::Caps::new(&c)));
            }
        }
        // Another format: what the old encoder holds leaves first.
        self.finish_reencoder()?;
        match Reencoder::new(&config, mix.encoding) {
            Ok(reencoder) => {
                let caps = reencoder.output_caps();
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {}: re-encoding audio to AAC-LC, {} Hz, {} channels, {} b/s to start with",
                    self.stream_id(),
                    config.sample_rate,
                    config.channels,
                    reencoder.bitrate()
                );
                *lock(&self.reencoder) = Some(reencoder);
                Ok(caps.map(|c| gst::event::Caps::new(&c)))
            }
            Err(why) => {
                gst::element_imp_warning!(
                    self,
                    gst::CoreError::Negotiation,
                    [
                        "cannot re-encode the audio ({why}); it stays codec copy, dubbed segments fall back"
                    ]
                );
                Ok(None)
            }
        }
    }

    /// Pushes what the re-encoder still holds, and ends it.
    pub(super) fn finish_reencoder(&self) -> Result<(), gst::FlowError> {
        let Some(mut reencoder) = lock(&self.reencoder).take() else {
            return Ok(());
        };
        for buffer in reencoder.finish() {
            self.advance_audio_position(&buffer);
            self.src_pads[Track::Audio].push(buffer)?;
        }
        Ok(())
    }

    /// One segment through the re-encoder: `originals` at `original_gain`,
    /// with `voice` over them. Without a re-encoder (it failed), or should it
    /// fail now, the originals go out as they are, after what it held.
    pub(super) fn reencode(
        &self,
        originals: Vec<gst::Buffer>,
        voice: Option<&[f32]>,
        original_gain: f32,
    ) -> Vec<gst::Buffer> {
        let mut current = lock(&self.reencoder);
        let Some(reencoder) = current.as_mut() else {
            return originals;
        };
        let why = match reencoder.render(&originals, voice, original_gain) {
            Ok(encoded) => return encoded,
            Err(why) => why,
        };
        let mut held = current.take().map(Reencoder::abandon).unwrap_or_default();
        drop(current);
        gst::element_imp_warning!(
            self,
            gst::StreamError::Encode,
            ["re-encoding failed ({why}); the audio goes on as codec copy"]
        );
        held.extend(originals);
        held
    }

    /// The segment just re-encoded: its loudness, in and out, and the
    /// output's readings recorded for the stats and gauges.
    pub(super) fn loudness_after_segment(&self) -> Option<SegmentLoudness> {
        let (segment, readings) = {
            let current = lock(&self.reencoder);
            let reencoder = current.as_ref()?;
            (reencoder.last_loudness(), reencoder.loudness_readings())
        };
        self.record_loudness(readings);
        segment
    }

    /// Original audio: through the re-encoder at full level when the output
    /// is re-encoded, as it came otherwise.
    pub(super) fn reencode_if(
        &self,
        mix: Option<Mix>,
        originals: Vec<gst::Buffer>,
    ) -> Vec<gst::Buffer> {
        match mix {
            Some(_) => self.reencode(originals, None, 1.0),
            None => originals,
        }
    }
}
