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
    pub captions: Option<Captions>,
}

/// The captions the video carries (`--captions`; stsdub's `captions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Captions {
    Cea608,
    Cea708,
    /// 608 and 708 in the same frames.
    Both,
}

impl Captions {
    /// `off` (None), `cea608`, `cea708` or `both`; an error names them.
    pub fn from_name(name: &str) -> Result<Option<Self>, String> {
        match name {
            "off" => Ok(None),
            "cea608" => Ok(Some(Self::Cea608)),
            "cea708" => Ok(Some(Self::Cea708)),
            "both" => Ok(Some(Self::Both)),
            other => Err(format!("--captions {other:?}: off, cea608, cea708 or both")),
        }
    }

    /// stsdub's `captions` value.
    pub fn property(self) -> &'static str {
        match self {
            Self::Cea608 => "cea608",
            Self::Cea708 => "cea708",
            Self::Both => "both",
        }
    }

    pub fn has_608(self) -> bool {
        self != Self::Cea708
    }
}

/// The 608 channel of each language's captions, in order: CC1 in the first
/// field, CC3 in the second. Not CC2 or CC4 beside them: a channel's
/// letters carry no channel of their own (the last control code in the
/// field says it), so two writers sharing a field garble each other
/// (measured: ffmpeg read CC1 and CC2 letters interleaved).
pub const CAPTION_CHANNELS: [u32; 2] = [1, 3];

/// The 708 service of each language's captions, in order, with `both`:
/// the first two share their number with their 608 channel (CC1 and
/// service 1, CC3 and service 3), the others are 708 alone (services 2
/// and 4). With `cea708`: services 1 to 4 in order.
const BOTH_CHANNELS: [(Captions, u32); 4] = [
    (Captions::Both, 1),
    (Captions::Both, 3),
    (Captions::Cea708, 2),
    (Captions::Cea708, 4),
];
const SERVICES_708: [u32; 4] = [1, 2, 3, 4];

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
            captions: None,
        })
    }

    /// With each language's captions in the video as CEA-608, on its own
    /// channel ([`CAPTION_CHANNELS`]).
    pub fn with_captions(self) -> Result<Self, String> {
        self.with_caption_format(Captions::Cea608)
    }

    /// With each language's captions in the video as `format`, each on its
    /// own 608 channel or 708 service ([`Self::caption_setting`]); an error
    /// when there are more languages than channels.
    pub fn with_caption_format(mut self, format: Captions) -> Result<Self, String> {
        let most = if format == Captions::Cea608 {
            CAPTION_CHANNELS.len()
        } else {
            SERVICES_708.len()
        };
        if self.targets.len() > most {
            return Err(format!(
                "captions={}: {most} languages at most ({}); {} were given",
                format.property(),
                if format == Captions::Cea608 {
                    "CC1 and CC3, one per field; cea708 carries 4"
                } else {
                    "708 services 1 to 4"
                },
                self.targets.len()
            ));
        }
        self.captions = Some(format);
        Ok(self)
    }

    /// The `captions` and `caption-channel` of the `index`-th target
    /// language's stsdub, with captions: 608 on CC1 then CC3; 708 on
    /// services 1 to 4; both as [`BOTH_CHANNELS`] says.
    pub fn caption_setting(&self, index: usize) -> Option<(Captions, u32)> {
        match self.captions? {
            Captions::Cea608 => CAPTION_CHANNELS
                .get(index)
                .map(|channel| (Captions::Cea608, *channel)),
            Captions::Cea708 => SERVICES_708
                .get(index)
                .map(|service| (Captions::Cea708, *service)),
            Captions::Both => BOTH_CHANNELS.get(index).copied(),
        }
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
