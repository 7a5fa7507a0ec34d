// SPDX-License-Identifier: MPL-2.0

//! The dubbed track says its language: a stream tag event with
//! GStreamer's language-code tag on `audio_src`, which muxers write
//! (MPEG-TS as an ISO 639 descriptor, Matroska and MP4 in the track header).
//! Upstream's own tags pass with their language, if any, replaced: the
//! audio that leaves is in the target language, whatever came in.

/// The language code the tag carries for a `target-language` value: its
/// primary subtag ("es" of "es-MX"), lower case, as the tag expects
/// (ISO 639-1 or 639-2). None when there is no such subtag.
pub(super) fn language_code(target_language: &str) -> Option<String> {
    let primary = target_language.split(['-', '_']).next()?.trim();
    let valid =
        (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic());
    valid.then(|| primary.to_ascii_lowercase())
}

/// A stream-scoped tag event naming `code` as the track's language.
pub(super) fn language_event(code: &str) -> gst::Event {
    let mut tags = gst::TagList::new();
    if let Some(tags) = tags.get_mut() {
        tags.add::<gst::tags::LanguageCode>(&code, gst::TagMergeMode::Replace);
        tags.set_scope(gst::TagScope::Stream);
    }
    gst::event::Tag::new(tags)
}

/// `event` (a tag event from upstream) with its language replaced by
/// `code`; other tags as they were.
/// Upstream's tag event as it leaves: its language, if any, replaced by
/// `target_language`'s code (unchanged when that has none).
pub(super) fn in_target_language(event: gst::Event, target_language: &str) -> gst::Event {
    match language_code(target_language) {
        Some(code) => relabelled(event, &code),
        None => event,
    }
}

pub(super) fn relabelled(event: gst::Event, code: &str) -> gst::Event {
    let gst::EventView::Tag(tag) = event.view() else {
        return event;
    };
    let mut tags = tag.tag_owned();
    if tags.get::<gst::tags::LanguageCode>().is_none() {
        return event;
    }
    {
        let tags = tags.make_mut();
        tags.remove::<gst::tags::LanguageCode>();
        tags.add::<gst::tags::LanguageCode>(&code, gst::TagMergeMode::Replace);
    }
    gst::event::Tag::new(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_the_primary_subtag_in_lower_case() {
        assert_eq!(language_code("es").as_deref(), Some("es"));
        assert_eq!(language_code("es-MX").as_deref(), Some("es"));
        assert_eq!(language_code("PT_br").as_deref(), Some("pt"));
        assert_eq!(language_code("spa").as_deref(), Some("spa"));
        assert_eq!(language_code(""), None);
        assert_eq!(language_code("spanish"), None);
        assert_eq!(language_code("e1"), None);
    }

    #[test]
    fn upstream_tags_keep_all_but_their_language() {
        gst::init().expect("GStreamer initialises");
        let mut tags = gst::TagList::new();
        if let Some(t) = tags.get_mut() {
            t.add::<gst::tags::LanguageCode>(&"en", gst::TagMergeMode::Replace);
            t.add::<gst::tags::Title>(&"Final", gst::TagMergeMode::Replace);
        }
        let out = relabelled(gst::event::Tag::new(tags), "fr");
        let gst::EventView::Tag(out) = out.view() else {
            panic!("a tag event out");
        };
        let out = out.tag();
        assert_eq!(
            out.get::<gst::tags::LanguageCode>()
                .map(|v| v.get().to_owned()),
            Some("fr".to_owned())
        );
        assert_eq!(
            out.get::<gst::tags::Title>().map(|v| v.get().to_owned()),
            Some("Final".to_owned())
        );
        assert_eq!(out.size::<gst::tags::LanguageCode>(), 1);
    }

    #[test]
    fn our_event_is_a_stream_tag_with_the_language() {
        gst::init().expect("GStreamer initialises");
        let event = language_event("de");
        let gst::EventView::Tag(tag) = event.view() else {
            panic!("a tag event");
        };
        assert_eq!(tag.tag().scope(), gst::TagScope::Stream);
        assert_eq!(
            tag.tag()
                .get::<gst::tags::LanguageCode>()
                .map(|v| v.get().to_owned()),
            Some("de".to_owned())
        );
    }
}
