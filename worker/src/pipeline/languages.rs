// SPDX-License-Identifier: MPL-2.0

//! Several languages from one input: the list, checked, and the names of
//! their elements.

/// Several languages from one input, one stsdub each.
#[derive(Debug, Clone)]
pub struct Languages {
    /// Target languages, in track order (`es`, `fr`, …).
    pub targets: Vec<String>,
    /// The input's language: the original track's tag.
    pub source: String,
    /// Each stsdub's `stream-id` is this, `-`, its language.
    pub stream_id: String,
    /// The original audio goes out too, as its own track.
    pub keep_original: bool,
    /// Each language's captions in the video (`with_captions`).
    pub captions: bool,
}

/// The 608 channel of each language's captions, in order: CC1 in the first
/// field, CC3 in the second. Not CC2 or CC4 beside them: a channel's
/// letters carry no channel of their own (the last control code in the
/// field says it), so two writers sharing a field garble each other
/// (measured: ffmpeg read CC1 and CC2 letters interleaved).
pub const CAPTION_CHANNELS: [u32; 2] = [1, 3];

impl Languages {
    /// `es,fr,de` as targets (spaces and empty items ignored); an error
    /// names what is wrong.
    pub fn parse(
        list: &str,
        source: &str,
        stream_id: &str,
        keep_original: bool,
    ) -> Result<Self, String> {
        let targets: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if targets.is_empty() {
            return Err(format!(
                "target languages {list:?}: a comma-separated list such as es,fr"
            ));
        }
        if let Some(bad) = targets.iter().find(|l| {
            !l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) {
            return Err(format!(
                "target language {bad:?}: letters, digits, '-' and '_' only (es, pt-BR)"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = targets
            .iter()
            .find(|l| !seen.insert(l.to_ascii_lowercase()))
        {
            return Err(format!("target language {twice:?} is listed twice"));
        }
        Ok(Self {
            targets,
            source: source.into(),
            stream_id: stream_id.into(),
            keep_original,
            captions: false,
        })
    }

    /// With each language's captions in the video, on its own 608 channel
    /// ([`CAPTION_CHANNELS`]); an error when there are more languages
    /// than channels.
    pub fn with_captions(mut self) -> Result<Self, String> {
        if self.targets.len() > CAPTION_CHANNELS.len() {
            return Err(format!(
                "captions: CEA-608 carries {} languages (CC1 and CC3, one per field); {} were given \
                 (CEA-708 services for more are not supported yet)",
                CAPTION_CHANNELS.len(),
                self.targets.len()
            ));
        }
        self.captions = true;
        Ok(self)
    }

    /// The 608 channel of the `index`-th target language, with captions.
    pub(super) fn caption_channel(&self, index: usize) -> Option<u32> {
        self.captions
            .then(|| CAPTION_CHANNELS.get(index).copied())
            .flatten()
    }

    pub(super) fn element(language: &str) -> String {
        format!("dub_{}", language.replace('-', "_"))
    }
}

/// An original audio track beside dubbed ones waits, unbounded, for them:
/// they are held by the STS, and a demuxer feeds every branch from one
/// thread, so a bounded wait here would close a circle (the muxer waiting
/// for dubbed audio that waits for input the demuxer cannot push). How
/// far it runs ahead is bounded by the dubbed tracks: their latency.
pub(super) const ORIGINAL_HOLD: &str = "queue max-size-buffers=0 max-size-bytes=0 max-size-time=0";
