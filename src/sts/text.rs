// SPDX-License-Identifier: MPL-2.0

//! The words of an answer (`transcript`, `translated_text`), made safe to
//! show: they become captions and message fields, so what the STS sends
//! is bounded and cleaned here, once. Pure.

/// The most text a segment keeps, in bytes (a caption of a few seconds is
/// far shorter; the rest is cut at a character boundary).
pub const MAX_TEXT_BYTES: usize = 4096;

/// The words of one dubbed segment: what was said, and its translation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentText {
    pub transcript: String,
    pub translation: String,
}

/// What cleaning changed, for the one warning the element gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Control characters taken out (line breaks and tabs become spaces).
    pub controls: bool,
    /// Cut to [`MAX_TEXT_BYTES`].
    pub truncated: bool,
}

impl Cleaned {
    pub fn any(self) -> bool {
        self.controls || self.truncated
    }

    fn and(self, other: Cleaned) -> Cleaned {
        Cleaned {
            controls: self.controls || other.controls,
            truncated: self.truncated || other.truncated,
        }
    }
}

impl SegmentText {
    /// The answer's two texts, cleaned (absent ones are empty).
    pub fn from_answer(transcript: Option<&str>, translation: Option<&str>) -> (Self, Cleaned) {
        let (transcript, a) = clean(transcript.unwrap_or_default());
        let (translation, b) = clean(translation.unwrap_or_default());
        (
            Self {
                transcript,
                translation,
            },
            a.and(b),
        )
    }
}

/// `raw` as one line of printable text: whitespace runs (line breaks and
/// tabs too, which are ordinary in subtitles) become one space, other
/// control characters go (and are said), the ends are
/// trimmed, and at most [`MAX_TEXT_BYTES`] are kept. JSON strings are
/// already UTF-8; a U+FFFD left by a lossy decoder upstream is kept, as
/// it says a letter was there.
pub fn clean(raw: &str) -> (String, Cleaned) {
    let mut cleaned = Cleaned::default();
    let mut text = String::with_capacity(raw.len().min(MAX_TEXT_BYTES));
    let mut space_pending = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space_pending = !text.is_empty();
            continue;
        }
        if c.is_control() {
            cleaned.controls = true;
            continue;
        }
        let needed = c.len_utf8() + usize::from(space_pending);
        if text.len() + needed > MAX_TEXT_BYTES {
            cleaned.truncated = true;
            break;
        }
        if space_pending {
            text.push(' ');
            space_pending = false;
        }
        text.push(c);
    }
    (text, cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_with_accents_is_kept_as_it_is() {
        let (text, cleaned) = clean("¿Qué tal? Ça va, Müller.");
        assert_eq!(text, "¿Qué tal? Ça va, Müller.");
        assert!(!cleaned.any());
    }

    #[test]
    fn line_breaks_and_runs_of_spaces_become_one_space_without_a_warning() {
        let (text, cleaned) = clean("  una\r\nlínea \t más  ");
        assert_eq!(text, "una línea más");
        assert!(!cleaned.any());
    }

    #[test]
    fn control_characters_are_taken_out_and_said() {
        let (text, cleaned) = clean("a\u{0}b\u{7}c\u{1b}[31m");
        assert_eq!(text, "abc[31m");
        assert!(cleaned.controls && !cleaned.truncated);
    }

    #[test]
    fn text_over_4_kib_is_cut_at_a_letter() {
        let raw = "é".repeat(3000); // 6000 bytes
        let (text, cleaned) = clean(&raw);
        assert!(text.len() <= MAX_TEXT_BYTES && text.len() >= MAX_TEXT_BYTES - 1);
        assert!(text.chars().all(|c| c == 'é'));
        assert!(cleaned.truncated);
    }

    #[test]
    fn absent_and_empty_texts_are_empty() {
        let (text, cleaned) = SegmentText::from_answer(None, Some("   "));
        assert_eq!(text, SegmentText::default());
        assert!(!cleaned.any());
    }
}
