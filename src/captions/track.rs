// SPDX-License-Identifier: MPL-2.0

//! Which 608 byte pairs go into which video frame. A caption is loaded
//! into the hidden memory as soon as it is known and the one before it is
//! loaded, and shown (End Of Caption) in the first frame at or after its
//! start: so it shows on time whenever its words were known about a
//! caption's load time (~1.6 s for two full rows) ahead. It is erased at
//! its end unless the next one shows then. One field carries 29.97 byte
//! pairs a second whatever the frame rate: each frame takes what its
//! duration is owed.

use std::collections::VecDeque;

use cea608_types::Cea608Writer;
use cea608_types::tables::Code;

use super::cea608::{self, CaptionChannel};
use super::layout::{self, ROW_LETTERS, TimedCaption};

/// 608's rate for one field: two bytes a field of NTSC video.
const PAIRS_PER_SECOND: f64 = 30_000.0 / 1_001.0;
/// How soon after its start a caption must show when it cannot all be
/// loaded by then (acceptance: 250 ms; a pair's End Of Caption takes effect
/// in the frame that carries it, and frames are up to 40 ms apart).
const SHOW_WITHIN: u64 = 230_000_000;
/// A null pair (parity set): nothing to say in this frame.
pub const NULL_PAIR: [u8; 2] = [0x80, 0x80];

/// How captions come on screen (the `caption-style` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionStyle {
    /// Loaded hidden, shown whole at their start.
    PopOn,
    /// Typed row by row from their start, the rows rolling up (two shown).
    RollUp,
}

/// The captions of one channel and what they still have to send.
pub struct CaptionTrack {
    channel: CaptionChannel,
    style: CaptionStyle,
    /// Roll-up only: the screen is in roll-up mode (nothing erased since).
    rolling: bool,
    /// Known, not yet loaded, in time order.
    waiting: VecDeque<TimedCaption>,
    /// Loaded (or loading), to show at its start.
    loaded: Option<TimedCaption>,
    /// The end of the caption on screen.
    showing_until: Option<u64>,
    writer: Cea608Writer,
    /// Byte pairs owed to the frames so far, not yet given.
    owed: f64,
    /// Letters shown as another so far.
    substituted: usize,
    /// A caption has been shown: the hidden memory holds the one it
    /// replaced, to be erased before the next load.
    swapped: bool,
}

impl CaptionTrack {
    pub fn new(channel: CaptionChannel, style: CaptionStyle) -> Self {
        Self {
            channel,
            style,
            rolling: false,
            waiting: VecDeque::new(),
            loaded: None,
            showing_until: None,
            writer: Cea608Writer::default(),
            owed: 0.0,
            substituted: 0,
            swapped: false,
        }
    }

    pub fn channel(&self) -> CaptionChannel {
        self.channel
    }

    /// Adds captions that start after every one added before.
    pub fn add(&mut self, captions: impl IntoIterator<Item = TimedCaption>) {
        self.waiting.extend(captions);
    }

    /// Letters that 608 could not show as such, so far.
    pub fn substituted(&self) -> usize {
        self.substituted
    }

    /// The byte pairs of the frame at running time `at`, `duration` long.
    pub fn frame(&mut self, at: u64, duration: u64) -> Vec<[u8; 2]> {
        self.owed += duration as f64 * PAIRS_PER_SECOND / 1e9;
        // A frame at 29.97 fps is owed 0.99999999 pairs in f64: without
        // the nudge every pair would go a frame late.
        let count = (self.owed + 1e-6).floor();
        self.owed -= count;
        let mut pairs = Vec::with_capacity(count as usize);
        for _ in 0..count as usize {
            self.next_codes(at);
            pairs.push(if self.writer.n_codes() > 0 {
                self.writer.pop()
            } else {
                NULL_PAIR
            });
        }
        pairs
    }

    /// Queues what is due at `at` when the writer has drained: the loaded
    /// caption's show, an erase, or the next caption's load.
    fn next_codes(&mut self, at: u64) {
        if self.writer.n_codes() > 0 {
            return;
        }
        if self.style == CaptionStyle::RollUp {
            self.next_roll_up_codes(at);
            return;
        }
        if let Some(loaded) = self.loaded.take_if(|c| c.start <= at) {
            self.push(cea608::show(self.channel));
            self.swapped = true;
            self.showing_until = Some(loaded.end);
        } else if self.showing_until.is_some_and(|end| end <= at)
            && self.loaded.as_ref().is_none_or(|next| next.start > at)
        {
            self.push(cea608::erase(self.channel));
            self.showing_until = None;
        } else if self.loaded.is_none()
            && let Some(next) = self.waiting.pop_front()
        {
            let (load, next) = self.load(next, at);
            self.substituted += load.substituted;
            self.push(load.codes);
            self.loaded = Some(next);
        }
    }

    /// The codes that load `next`, and the caption they load: `next` whole,
    /// or, when the screen is empty and its load would show it more than
    /// [`SHOW_WITHIN`] after its start (the stream's first caption: nothing
    /// could be loaded before the first frame), as many of its first words
    /// as load in time, the rest put back to show once loaded.
    fn load(&mut self, next: TimedCaption, at: u64) -> (cea608::Codes, TimedCaption) {
        let whole = cea608::load(self.channel, &next.rows);
        let budget = pairs_between(at, next.start + SHOW_WITHIN);
        if self.showing_until.is_some() || cea608::pairs(&whole.codes) < budget {
            return (whole, next);
        }
        let words: Vec<&str> = next
            .rows
            .iter()
            .flat_map(|r| r.split_whitespace())
            .collect();
        let quick = |count: usize| {
            let row = words[..count].join(" ");
            let load = cea608::quick_load(self.channel, &row, self.swapped);
            let fits = row.chars().count() <= ROW_LETTERS && cea608::pairs(&load.codes) < budget;
            (load, row, fits)
        };
        let mut taken = 1;
        while taken < words.len() && quick(taken + 1).2 {
            taken += 1;
        }
        let (load, row, _) = quick(taken);
        if taken < words.len() {
            self.waiting.push_front(TimedCaption {
                rows: layout::rows(&words[taken..].join(" ")),
                ..next.clone()
            });
        }
        (
            load,
            TimedCaption {
                rows: vec![row],
                ..next
            },
        )
    }

    /// Roll-up: a caption is typed from its start (nothing to load ahead:
    /// its first letters show a few frames in), and the screen is erased
    /// at its end unless the next one has begun.
    fn next_roll_up_codes(&mut self, at: u64) {
        if let Some(next) = self.waiting.pop_front_if(|c| c.start <= at) {
            if !self.rolling {
                self.push(cea608::start_roll_up(self.channel));
                self.rolling = true;
            }
            for row in &next.rows {
                let row = cea608::roll_up_row(self.channel, row);
                self.substituted += row.substituted;
                self.push(row.codes);
            }
            self.showing_until = Some(next.end);
        } else if self.showing_until.is_some_and(|end| end <= at)
            && self.waiting.front().is_none_or(|next| next.start > at)
        {
            self.push(cea608::erase(self.channel));
            self.showing_until = None;
            self.rolling = false;
        }
    }

    fn push(&mut self, codes: impl IntoIterator<Item = Code>) {
        for code in codes {
            self.writer.push(code);
        }
    }
}

/// The byte pairs a field carries from `from` up to `until` (ns), the one
/// being written at `from` included.
fn pairs_between(from: u64, until: u64) -> usize {
    (until.saturating_sub(from) as f64 * PAIRS_PER_SECOND / 1e9) as usize + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use cea608_types::{Cea608, Cea608State};

    const FRAME_NS: u64 = 1_000_000_000 * 1001 / 30_000;

    fn caption(start_ms: u64, end_ms: u64, text: &str) -> TimedCaption {
        TimedCaption {
            start: start_ms * 1_000_000,
            end: end_ms * 1_000_000,
            rows: vec![text.to_owned()],
        }
    }

    /// Runs frames from 0 to `until_ms`: (ms, event) for each show and erase.
    fn events(track: &mut CaptionTrack, until_ms: u64) -> Vec<(u64, &'static str)> {
        let mut state = Cea608State::default();
        let mut events = Vec::new();
        let mut at = 0;
        while at < until_ms * 1_000_000 {
            for pair in track.frame(at, FRAME_NS) {
                match state.decode(pair) {
                    Ok(Some(Cea608::EndOfCaption(_))) => events.push((at / 1_000_000, "show")),
                    Ok(Some(Cea608::EraseDisplay(_))) => events.push((at / 1_000_000, "erase")),
                    Ok(Some(Cea608::NewMode(_, cea608_types::Mode::RollUp2))) => {
                        events.push((at / 1_000_000, "roll-up"))
                    }
                    Ok(Some(Cea608::CarriageReturn(_))) => events.push((at / 1_000_000, "row")),
                    Ok(Some(Cea608::Text(text))) if text.char1.is_some() => {
                        events.push((at / 1_000_000, "letter"))
                    }
                    _ => {}
                }
            }
            at += FRAME_NS;
        }
        events
    }

    /// The shows and erases of [`events`]: what a pop-on viewer sees change.
    fn pop_on_events(track: &mut CaptionTrack, until_ms: u64) -> Vec<(u64, &'static str)> {
        events(track, until_ms)
            .into_iter()
            .filter(|e| e.1 == "show" || e.1 == "erase")
            .collect()
    }

    #[test]
    fn a_caption_known_ahead_shows_in_the_first_frame_at_its_start() {
        let mut track = CaptionTrack::new(CaptionChannel::cc(1).unwrap(), CaptionStyle::PopOn);
        track.add([caption(2_000, 4_000, "Hola")]);
        let events = pop_on_events(&mut track, 5_000);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!((2_000..2_000 + 34).contains(&events[0].0), "{events:?}");
        assert_eq!(events[0].1, "show");
        assert!(
            (4_000..4_000 + 34).contains(&events[1].0) && events[1].1 == "erase",
            "{events:?}"
        );
    }

    #[test]
    fn back_to_back_captions_replace_each_other_without_an_erase() {
        let mut track = CaptionTrack::new(CaptionChannel::cc(1).unwrap(), CaptionStyle::PopOn);
        track.add([caption(2_000, 4_000, "uno"), caption(4_000, 6_000, "dos")]);
        let kinds: Vec<_> = pop_on_events(&mut track, 7_000)
            .into_iter()
            .map(|e| e.1)
            .collect();
        assert_eq!(kinds, ["show", "show", "erase"]);
    }

    #[test]
    fn a_caption_known_late_shows_as_soon_as_it_is_loaded() {
        let mut track = CaptionTrack::new(CaptionChannel::cc(1).unwrap(), CaptionStyle::PopOn);
        track.add([caption(0, 300, "uno"), caption(300, 4_000, &"x".repeat(32))]);
        let events = pop_on_events(&mut track, 5_000);
        // Something is on screen: the second loads whole, 2 × (RCL, ENM,
        // PAC) + 16 pairs of letters after the first's show.
        assert_eq!(events.len(), 3, "{events:?}");
        assert!((800..1_000).contains(&events[1].0), "{events:?}");
    }

    #[test]
    fn the_stream_s_first_caption_shows_its_first_words_in_time_then_the_rest() {
        for frame_ns in [FRAME_NS, 40_000_000, 41_708_333] {
            let mut track = CaptionTrack::new(CaptionChannel::cc(1).unwrap(), CaptionStyle::PopOn);
            let mut two_rows = caption(0, 4_000, "Señoras y señores,");
            two_rows.rows.push("bienvenidos al estadio".into());
            track.add([two_rows]);
            let (shows, letters) = shows_and_letters(&mut track, frame_ns, 5_000);
            assert_eq!(shows.len(), 2, "{shows:?}");
            assert!(shows[0] <= 230, "first words at {} ms", shows[0]);
            assert!(shows[1] < 1_500, "the rest at {} ms", shows[1]);
            assert_eq!(
                letters,
                "Señoras y señores, bienvenidos al estadio".replace(' ', "")
            );
        }
    }

    /// (ms of each show, every letter loaded) over frames from 0 to `until_ms`.
    fn shows_and_letters(
        track: &mut CaptionTrack,
        frame_ns: u64,
        until_ms: u64,
    ) -> (Vec<u64>, String) {
        let mut state = Cea608State::default();
        let (mut shows, mut letters) = (Vec::new(), String::new());
        let mut at = 0;
        while at < until_ms * 1_000_000 {
            for pair in track.frame(at, frame_ns) {
                match state.decode(pair) {
                    Ok(Some(Cea608::EndOfCaption(_))) => shows.push(at / 1_000_000),
                    Ok(Some(Cea608::Text(text))) => {
                        letters.extend(text.char1.into_iter().chain(text.char2));
                        if text.needs_backspace {
                            letters.remove(letters.len() - 2);
                        }
                    }
                    _ => {}
                }
            }
            at += frame_ns;
        }
        (shows, letters.replace(' ', ""))
    }

    #[test]
    fn roll_up_types_each_caption_from_its_start_and_erases_at_the_end() {
        let mut track = CaptionTrack::new(CaptionChannel::cc(1).unwrap(), CaptionStyle::RollUp);
        let mut two_rows = caption(2_000, 4_000, "uno dos");
        two_rows.rows.push("tres".into());
        track.add([two_rows, caption(4_000, 6_000, "cuatro")]);
        let events = events(&mut track, 7_000);
        let first = |kind| events.iter().find(|e| e.1 == kind).map(|e| e.0);
        // RU2 and the base row's preamble (two pairs each, 134 ms), then
        // a row's CR and preamble (134 ms): the first letter 268 ms in at
        // most, while nothing at all before the start.
        assert!(events.iter().all(|e| e.0 >= 2_000), "{events:?}");
        assert_eq!(
            first("roll-up").map(|t| t < 2_000 + 34),
            Some(true),
            "{events:?}"
        );
        assert_eq!(
            first("letter").map(|t| t <= 2_000 + 270),
            Some(true),
            "{events:?}"
        );
        let rows: Vec<u64> = events
            .iter()
            .filter(|e| e.1 == "row")
            .map(|e| e.0)
            .collect();
        assert_eq!(rows.len(), 3, "a CR a row: {events:?}");
        assert!(
            (4_000..4_000 + 34).contains(&rows[2]),
            "the next caption at its start"
        );
        let erases: Vec<u64> = events
            .iter()
            .filter(|e| e.1 == "erase")
            .map(|e| e.0)
            .collect();
        assert_eq!(erases.len(), 1, "{events:?}");
        assert!((6_000..6_000 + 34).contains(&erases[0]), "{events:?}");
    }

    #[test]
    fn every_frame_gets_what_its_duration_is_owed() {
        let mut track = CaptionTrack::new(CaptionChannel::cc(1).unwrap(), CaptionStyle::PopOn);
        let at_25: usize = (0..250)
            .map(|i| track.frame(i * 40_000_000, 40_000_000).len())
            .sum();
        // 10 s at 25 fps: 299 or 300 pairs.
        assert!((299..=300).contains(&at_25), "{at_25}");
    }
}
