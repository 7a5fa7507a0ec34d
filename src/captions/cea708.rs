// SPDX-License-Identifier: MPL-2.0

//! One CEA-708 caption service: each caption is written into a hidden
//! window and shown whole at its start, then deleted at its end, with
//! cea708-types' codes and packets. 708 carries 20 times 608's data, so a
//! caption is written in the frame it starts in: nothing has to be loaded
//! ahead: a two-row caption takes three frames at 29.97 fps. Its packets
//! are whole within a frame (sized to fit one), so that another writer
//! (another language's stsdub) can add its own after them (`merge`).

use std::collections::VecDeque;

use cea708_types::tables::{Anchor, Code, DefineWindowArgs, SetPenLocationArgs, WindowBits};
use cea708_types::{DTVCCPacket, Service};

use super::layout::{ROW_LETTERS, TimedCaption};

/// The one window of the service (window 0).
const WINDOW: WindowBits = WindowBits::ZERO;
/// A DTVCC packet of one service block: header, block header, 31 bytes.
const MAX_PACKET: usize = 33;
/// The DTVCC triplets a frame has room for until the frame rate is known:
/// 20 at 29.97 fps, less 608's two.
const DEFAULT_FRAME_ROOM: usize = 18;
/// Packets waiting for room, at most: about 40 captions. A video whose
/// frames never leave room (another writer filling them) drops the oldest
/// instead of holding more and more.
const MAX_QUEUED_PACKETS: usize = 256;

/// A cc_data triplet (marker, cc_valid and cc_type; two bytes).
pub type Triplet = [u8; 3];

/// The captions of one 708 service and the triplets still to send.
pub struct CaptionService {
    number: u8,
    waiting: VecDeque<TimedCaption>,
    /// The end of the caption on screen.
    showing_until: Option<u64>,
    /// Whole packets not sent yet, in order.
    queued: VecDeque<Vec<Triplet>>,
    /// The largest packet, in triplets: what a frame has room for.
    packet_room: usize,
    sequence: u8,
    substituted: usize,
}

impl CaptionService {
    /// Service `number` (1–63; 1 is the primary caption service).
    pub fn new(number: u8) -> Self {
        Self {
            number: number.clamp(1, 63),
            waiting: VecDeque::new(),
            showing_until: None,
            queued: VecDeque::new(),
            packet_room: DEFAULT_FRAME_ROOM,
            sequence: 0,
            substituted: 0,
        }
    }

    pub fn number(&self) -> u8 {
        self.number
    }

    /// Adds captions that start after every one added before.
    pub fn add(&mut self, captions: impl IntoIterator<Item = TimedCaption>) {
        self.waiting.extend(captions);
    }

    /// Letters 708 could not show as such, so far.
    pub fn substituted(&self) -> usize {
        self.substituted
    }

    /// The DTVCC triplets a frame has room for at the stream's frame rate
    /// (A/53's count less 608's two): no packet is made larger.
    pub fn set_frame_room(&mut self, triplets: usize) {
        self.packet_room = triplets.max(2);
    }

    /// The whole packets of the frame at running time `at` that fit in
    /// `room` triplets (what other writers left of the frame); the rest
    /// wait for the next frames.
    pub fn frame(&mut self, at: u64, room: usize) -> Vec<Triplet> {
        self.queue_due(at);
        let mut out = Vec::new();
        while let Some(packet) = self.queued.front() {
            if out.len() + packet.len() > room {
                break;
            }
            out.extend(self.queued.pop_front().unwrap_or_default());
        }
        out
    }

    /// Queues the codes due at `at`: the next caption, or an erase at the
    /// end of the one shown.
    fn queue_due(&mut self, at: u64) {
        if let Some(next) = self.waiting.pop_front_if(|c| c.start <= at) {
            // A caption known late (its end passed) is skipped, not shown
            // out of its time.
            if next.end > at {
                let codes = self.show_codes(&next.rows);
                self.queue_codes(&codes);
                self.showing_until = Some(next.end);
            }
        } else if self.showing_until.is_some_and(|end| end <= at)
            && self.waiting.front().is_none_or(|next| next.start > at)
        {
            self.queue_codes(&[Code::DeleteWindows(WINDOW)]);
            self.showing_until = None;
        }
    }

    /// Window 0 defined hidden (rows at the bottom, centred), cleared,
    /// each row centred in it, then toggled into view: a decoder shows it
    /// whole.
    fn show_codes(&mut self, rows: &[String]) -> Vec<Code> {
        let rows: Vec<&String> = rows.iter().take(2).collect();
        let window = DefineWindowArgs::new(
            0,
            0,
            Anchor::BottomMiddle,
            true,
            90,
            50,
            rows.len().saturating_sub(1) as u8,
            (ROW_LETTERS - 1) as u8,
            true,
            true,
            false,
            1,
            1,
        );
        let mut codes = vec![Code::DefineWindow(window), Code::ClearWindows(WINDOW)];
        for (row, text) in rows.iter().enumerate() {
            let letters = text.chars().count().min(ROW_LETTERS);
            let column = ((ROW_LETTERS - letters) / 2) as u8;
            codes.push(Code::SetPenLocation(SetPenLocationArgs::new(
                row as u8, column,
            )));
            for letter in text.chars().take(ROW_LETTERS) {
                let (code, substituted) = code_for(letter);
                codes.push(code);
                self.substituted += usize::from(substituted);
            }
        }
        // Toggle, not Display: the window was just defined hidden, so both
        // show it, and GStreamer 1.22's decoder shows it only on a toggle.
        codes.push(Code::ToggleWindows(WINDOW));
        codes
    }

    /// `codes` as service blocks (at most 31 bytes each, and no more than
    /// a packet the size of a frame's room holds), one a DTVCC packet (a
    /// decoder may read only a packet's first block: GStreamer 1.22's
    /// does), queued as triplets.
    fn queue_codes(&mut self, codes: &[Code]) {
        // A packet: its header, the block's header, the codes; two bytes a triplet.
        let most = (2 * self.packet_room).saturating_sub(2).clamp(1, 31);
        let mut block = Service::new(self.number);
        for code in codes {
            let block_bytes: usize = block.codes().iter().map(Code::byte_len).sum();
            let full = block_bytes + code.byte_len() > most;
            if full || block.push_code(code).is_err() {
                let full = std::mem::replace(&mut block, Service::new(self.number));
                self.queue_block(full);
                // One code always fits an empty block.
                let _ = block.push_code(code);
            }
        }
        self.queue_block(block);
    }

    fn queue_block(&mut self, block: Service) {
        let mut packet = DTVCCPacket::new(self.sequence);
        if !block.is_empty() && packet.push_service(block).is_ok() {
            self.queue_packet(packet);
        }
    }

    fn queue_packet(&mut self, packet: DTVCCPacket) {
        let mut bytes = Vec::with_capacity(MAX_PACKET);
        if packet.write(&mut bytes).is_ok() {
            if self.queued.len() >= MAX_QUEUED_PACKETS {
                self.queued.pop_front();
            }
            self.queued.push_back(triplets(&bytes));
            self.sequence = (self.sequence + 1) % 4;
        }
    }
}

/// A packet's bytes as cc_data triplets: the first pair starts the packet
/// (cc_type 3), the rest continue it (cc_type 2); all valid.
pub(super) fn triplets(packet: &[u8]) -> Vec<Triplet> {
    packet
        .chunks(2)
        .enumerate()
        .map(|(index, pair)| {
            let marker = if index == 0 { 0xFF } else { 0xFE };
            [marker, pair[0], pair.get(1).copied().unwrap_or(0)]
        })
        .collect()
}

/// The code for `letter`, or its closest one (true) when 708's sets lack
/// it. Never nothing: an unknown letter shows as '?'.
fn code_for(letter: char) -> (Code, bool) {
    if let Some(code) = Code::from_char(letter) {
        return (code, false);
    }
    let code = super::cea608::closest_letter(letter)
        .and_then(Code::from_char)
        .unwrap_or(Code::QuestionMark);
    (code, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cea708_types::CCDataParser;

    fn caption(start_ms: u64, end_ms: u64, rows: &[&str]) -> TimedCaption {
        TimedCaption {
            start: start_ms * 1_000_000,
            end: end_ms * 1_000_000,
            rows: rows.iter().map(|r| r.to_string()).collect(),
        }
    }

    /// The codes of service `number` in `triplets`, read with the crate's
    /// own parser (a cc_data header in front).
    fn codes(triplets: &[Triplet], number: u8) -> Vec<Code> {
        let mut parser = CCDataParser::new();
        let mut out = Vec::new();
        for frame in triplets.chunks(31) {
            let mut data = vec![0x40 | frame.len() as u8, 0xFF];
            data.extend(frame.iter().flatten());
            parser.push(&data).unwrap();
            while let Some(packet) = parser.pop_packet() {
                for service in packet.services() {
                    if service.number() == number {
                        out.extend(service.codes().iter().cloned());
                    }
                }
            }
        }
        out
    }

    fn text(codes: &[Code]) -> String {
        codes.iter().filter_map(|c| c.char()).collect()
    }

    #[test]
    fn a_caption_is_written_hidden_and_shown_in_the_frame_it_starts() {
        let mut service = CaptionService::new(2);
        service.add([caption(
            1_000,
            3_000,
            &["Buenas noches,", "señoras y señores"],
        )]);
        assert!(service.frame(960_000_000, 18).is_empty());
        let mut triplets = service.frame(1_000_000_000, 18);
        assert!(
            (10..=18).contains(&triplets.len()),
            "whole packets: {}",
            triplets.len()
        );
        for frame in 1..4 {
            triplets.extend(service.frame(1_000_000_000 + frame * 33_000_000, 18));
        }
        assert!(
            triplets.len() < 72,
            "in four frames at 29.97 fps: {}",
            triplets.len()
        );
        let codes = codes(&triplets, 2);
        assert!(matches!(codes.first(), Some(Code::DefineWindow(w)) if !w.visible));
        assert_eq!(codes.last(), Some(&Code::ToggleWindows(WINDOW)));
        assert_eq!(text(&codes), "Buenas noches,señoras y señores");
        assert_eq!(service.substituted(), 0);
        assert!(service.frame(2_000_000_000, 18).is_empty());
        let end = codes_at(&mut service, 3_000_000_000);
        assert_eq!(end, [Code::DeleteWindows(WINDOW)]);
    }

    fn codes_at(service: &mut CaptionService, at: u64) -> Vec<Code> {
        let number = service.number();
        codes(&service.frame(at, 31), number)
    }

    #[test]
    fn back_to_back_captions_replace_each_other_without_a_delete() {
        let mut service = CaptionService::new(1);
        service.add([caption(0, 1_000, &["uno"]), caption(1_000, 2_000, &["dos"])]);
        assert_eq!(text(&codes_at(&mut service, 0)), "uno");
        let second = codes_at(&mut service, 1_000_000_000);
        assert_eq!(text(&second), "dos");
        assert!(!second.contains(&Code::DeleteWindows(WINDOW)));
    }

    #[test]
    fn packets_that_never_find_room_are_bounded() {
        let mut service = CaptionService::new(1);
        service
            .add((0..200u64).map(|i| caption(i * 10, i * 10 + 10, &["una frase bastante larga"])));
        for frame in 0..200u64 {
            // Another writer leaves no room at all.
            assert!(service.frame(frame * 10_000_000, 0).is_empty());
        }
        assert_eq!(service.queued.len(), MAX_QUEUED_PACKETS);
    }

    #[test]
    fn letters_708_lacks_become_their_closest_and_are_counted() {
        let mut service = CaptionService::new(1);
        service.add([caption(0, 1_000, &["Łódź ça"])]);
        assert_eq!(text(&codes_at(&mut service, 0)), "Lódz ça");
        assert_eq!(service.substituted(), 2);
    }

    #[test]
    fn a_full_caption_goes_in_whole_packets_sized_to_the_frame_numbered_in_turn() {
        let mut service = CaptionService::new(1);
        let long = "x".repeat(32);
        service.add([
            caption(0, 1_000, &[&long, &long]),
            caption(1_000, 2_000, &[&long, &long]),
        ]);
        let mut all = Vec::new();
        service.set_frame_room(8);
        for frame in 0..50u64 {
            let triplets = service.frame(frame * 40_000_000, 8);
            assert!(triplets.len() <= 8, "59.94 fps: 8 triplets a frame");
            all.extend(triplets);
        }
        assert_eq!(text(&codes(&all, 1)), long.repeat(4));
        let starts: Vec<u8> = all
            .iter()
            .filter(|t| t[0] == 0xFF)
            .map(|t| t[1] >> 6)
            .collect();
        assert!(starts.len() >= 2);
        assert!(
            starts.windows(2).all(|w| w[1] == (w[0] + 1) % 4),
            "{starts:?}"
        );
    }
}
