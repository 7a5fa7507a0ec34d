// SPDX-License-Identifier: MPL-2.0

//! A caption → the CEA-608 codes that load it into the hidden memory and
//! show it (pop-on), with cea608-types' code tables. Every control code is
//! sent twice, as 608 asks (a decoder ignores the second of two equal
//! ones, and still has one when a field is lost).

use cea608_types::tables::{
    Channel, Code, Control, ControlCode, Field, PreambleAddressCode, PreambleType,
};

use super::layout::ROW_LETTERS;

/// One of the four 608 caption channels, CC1–CC4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptionChannel {
    pub field: Field,
    pub channel: Channel,
}

impl CaptionChannel {
    /// CC`number`: 1 and 2 in the first field, 3 and 4 in the second.
    pub fn cc(number: u32) -> Option<Self> {
        let (field, channel) = match number {
            1 => (Field::ONE, Channel::ONE),
            2 => (Field::ONE, Channel::TWO),
            3 => (Field::TWO, Channel::ONE),
            4 => (Field::TWO, Channel::TWO),
            _ => return None,
        };
        Some(Self { field, channel })
    }

    fn control(self, control: Control) -> Code {
        Code::Control(ControlCode::new(self.field, self.channel, control))
    }

    /// `control`, twice.
    fn command(self, control: Control) -> [Code; 2] {
        [self.control(control), self.control(control)]
    }
}

/// Codes, and how many letters had to be shown as another.
#[derive(Debug, Default, PartialEq)]
pub struct Codes {
    pub codes: Vec<Code>,
    pub substituted: usize,
}

/// Loads `rows` (bottom rows of the screen, centred) into the hidden
/// memory: Resume Caption Loading, Erase Non-displayed Memory, then each
/// row's preamble and letters. [`show`] flips it onto the screen.
pub fn load(channel: CaptionChannel, rows: &[String]) -> Codes {
    let mut out = Codes::default();
    out.codes
        .extend(channel.command(Control::ResumeCaptionLoading));
    out.codes
        .extend(channel.command(Control::EraseNonDisplayedMemory));
    let first_row = BOTTOM_ROW + 1 - rows.len().min(BOTTOM_ROW as usize + 1) as u8;
    for (row, text) in (first_row..).zip(rows) {
        centred_row(channel, row, text, &mut out);
    }
    out
}

/// Loads one row with the fewest byte pairs: each control code once (not
/// twice) and no centring tab (the row may sit up to three columns left of
/// centre). For a caption that must show within a few frames of a start
/// nothing could be loaded ahead of (the stream's first): a decoder needs
/// no repeat, the repeat only guards against a lost field.
pub fn quick_load(channel: CaptionChannel, row: &str, erase_hidden: bool) -> Codes {
    let mut out = Codes::default();
    out.codes
        .push(channel.control(Control::ResumeCaptionLoading));
    if erase_hidden {
        out.codes
            .push(channel.control(Control::EraseNonDisplayedMemory));
    }
    let (preamble, _) = centring(BOTTOM_ROW, row);
    out.codes.push(channel.control(preamble));
    push_letters(channel, row, &mut out);
    out
}

/// How many byte pairs `codes` take on the wire (two letters share a pair,
/// a control code or extended letter takes one of its own).
pub fn pairs(codes: &[Code]) -> usize {
    let mut writer = cea608_types::Cea608Writer::default();
    for code in codes {
        writer.push(*code);
    }
    std::iter::from_fn(|| (writer.n_codes() > 0).then(|| writer.pop())).count()
}

/// `text` on screen row `row`, centred: the preamble (indent) and tab that
/// put its first letter where it centres, then its letters.
fn centred_row(channel: CaptionChannel, row: u8, text: &str, out: &mut Codes) {
    let (preamble, tab) = centring(row, text);
    out.codes.extend(channel.command(preamble));
    if let Some(tab) = tab {
        out.codes.extend(channel.command(tab));
    }
    push_letters(channel, text, out);
}

/// The preamble (an indent, in fours) and tab (the rest) that put `text`'s
/// first letter where it is centred on screen row `row`.
fn centring(row: u8, text: &str) -> (Control, Option<Control>) {
    let letters = text.chars().count().min(ROW_LETTERS);
    let column = (ROW_LETTERS - letters) / 2;
    let indent = PreambleType::from_indent((column / 4 * 4) as u8).unwrap_or(PreambleType::Indent0);
    let preamble = PreambleAddressCode::new(row, false, indent);
    (
        Control::PreambleAddress(preamble),
        Control::tab_offset((column % 4) as u8),
    )
}

/// The codes of `text`'s letters (at most a row of them).
fn push_letters(channel: CaptionChannel, text: &str, out: &mut Codes) {
    for letter in text.chars().take(ROW_LETTERS) {
        let (code, substituted) = code_for(letter, channel.channel);
        out.codes.push(code);
        out.substituted += usize::from(substituted);
    }
}

/// Roll-up (two rows, at the bottom): from the next letter on, letters
/// show as they come. Sent before a caption when nothing is on screen.
pub fn start_roll_up(channel: CaptionChannel) -> Vec<Code> {
    let base_row = PreambleAddressCode::new(BOTTOM_ROW, false, PreambleType::Indent0);
    [
        channel.command(Control::RollUp2),
        channel.command(Control::PreambleAddress(base_row)),
    ]
    .concat()
}

/// One row rolled up: Carriage Return moves the rows up one and the cursor
/// to the base row's start, then the row's letters, each showing as it
/// comes (centred with the indent and tab of a pop-on row).
pub fn roll_up_row(channel: CaptionChannel, text: &str) -> Codes {
    let mut out = Codes::default();
    out.codes.extend(channel.command(Control::CarriageReturn));
    centred_row(channel, BOTTOM_ROW, text, &mut out);
    out
}

/// End Of Caption: the loaded caption shows, the one shown goes.
pub fn show(channel: CaptionChannel) -> [Code; 2] {
    channel.command(Control::EndOfCaption)
}

/// Erase Displayed Memory: nothing shows.
pub fn erase(channel: CaptionChannel) -> [Code; 2] {
    channel.command(Control::EraseDisplayedMemory)
}

/// The last of 608's 15 rows (0-based): captions sit at the bottom.
const BOTTOM_ROW: u8 = 14;

/// The code that shows `letter`, or its closest letter (true) when 608's
/// character sets lack it. Never nothing: an unknown letter shows as '?'.
fn code_for(letter: char, channel: Channel) -> (Code, bool) {
    if letter == '\'' {
        // 608's own apostrophe (one byte, in every decoder's basic set),
        // not the extended set's straight quote that cea608-types picks.
        return (Code::Apostrophe, false);
    }
    if let Some(code) = Code::from_char(letter, channel) {
        return (code, false);
    }
    let closest = closest_letter(letter);
    let code = closest
        .and_then(|c| Code::from_char(c, channel))
        .or_else(|| Code::from_char('?', channel))
        .unwrap_or(Code::Space);
    (code, true)
}

/// A letter 608 has for one it has not: the same letter without its mark,
/// or the punctuation it stands for.
pub(super) fn closest_letter(letter: char) -> Option<char> {
    const CLOSEST: &[(&str, char)] = &[
        ("āăą", 'a'),
        ("ĀĂĄ", 'A'),
        ("ćĉċč", 'c'),
        ("ĆĈĊČ", 'C'),
        ("ďđ", 'd'),
        ("ĎĐ", 'D'),
        ("ēĕėęě", 'e'),
        ("ĒĔĖĘĚ", 'E'),
        ("ĝğġģ", 'g'),
        ("ĜĞĠĢ", 'G'),
        ("ìĩīĭįı", 'i'),
        ("ÌĨĪĬĮİ", 'I'),
        ("ĺļľŀł", 'l'),
        ("ĹĻĽĿŁ", 'L'),
        ("ńņňŉ", 'n'),
        ("ŃŅŇ", 'N'),
        ("òõōŏő", 'o'),
        ("ÒÕŌŎŐ", 'O'),
        ("ŕŗř", 'r'),
        ("ŔŖŘ", 'R'),
        ("śŝşšș", 's'),
        ("ŚŜŞŠȘ", 'S'),
        ("ţťŧț", 't'),
        ("ŢŤŦȚ", 'T'),
        ("ũūŭůűų", 'u'),
        ("ŨŪŬŮŰŲ", 'U'),
        ("ýÿ", 'y'),
        ("ÝŸ", 'Y'),
        ("źżž", 'z'),
        ("ŹŻŽ", 'Z'),
        ("æ", 'a'),
        ("Æ", 'A'),
        ("œ", 'o'),
        ("Œ", 'O'),
        ("–—―", '-'),
        ("’‚′", '\''),
        ("„″", '"'),
        ("…", '.'),
    ];
    CLOSEST
        .iter()
        .find(|(letters, _)| letters.contains(letter))
        .map(|(_, closest)| *closest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cea608_types::{Cea608, Cea608State};

    fn bytes(codes: &[Code]) -> Vec<[u8; 2]> {
        let mut writer = cea608_types::Cea608Writer::default();
        for code in codes {
            writer.push(*code);
        }
        std::iter::from_fn(|| (writer.n_codes() > 0).then(|| writer.pop())).collect()
    }

    /// What a 608 parser makes of `pairs`: the text, and whether it ends
    /// with an End Of Caption.
    fn parsed(pairs: &[[u8; 2]]) -> (String, bool) {
        let mut state = Cea608State::default();
        let mut text = String::new();
        let mut shown = false;
        for pair in pairs {
            match state.decode(*pair) {
                Ok(Some(Cea608::Text(t))) => {
                    if t.needs_backspace {
                        text.pop();
                    }
                    text.extend(t.char1);
                    text.extend(t.char2);
                }
                Ok(Some(Cea608::Preamble(..))) if !text.is_empty() => text.push('|'),
                Ok(Some(Cea608::EndOfCaption(_))) => shown = true,
                _ => {}
            }
        }
        (text, shown)
    }

    #[test]
    fn a_loaded_and_shown_caption_reads_back_with_its_accents() {
        let channel = CaptionChannel::cc(1).unwrap();
        let rows = [
            "¿Qué tal, Sofía?".to_owned(),
            "Ça va très bien, Müller.".to_owned(),
        ];
        let mut codes = load(channel, &rows);
        assert_eq!(codes.substituted, 0);
        codes.codes.extend(show(channel));
        let (text, shown) = parsed(&bytes(&codes.codes));
        assert!(text.contains("¿Qué tal, Sofía?|"), "{text}");
        assert!(text.ends_with("Ça va très bien, Müller."), "{text}");
        assert!(shown);
    }

    #[test]
    fn a_letter_608_lacks_shows_as_its_closest_never_dropped() {
        let channel = CaptionChannel::cc(1).unwrap();
        let codes = load(channel, &["Łódź – Kraków".to_owned()]);
        assert_eq!(codes.substituted, 3, "Ł, ź and the en dash");
        let (text, _) = parsed(&bytes(&codes.codes));
        assert!(text.ends_with("Lódz - Kraków"), "{text}");
    }

    #[test]
    fn only_cc1_to_cc4_exist() {
        assert!(CaptionChannel::cc(0).is_none() && CaptionChannel::cc(5).is_none());
        let cc3 = CaptionChannel::cc(3).unwrap();
        assert_eq!((cc3.field, cc3.channel), (Field::TWO, Channel::ONE));
    }
}
