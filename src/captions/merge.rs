// SPDX-License-Identifier: MPL-2.0

//! Several writers' captions in one cc_data. Each stsdub of a
//! multi-language worker (and an input's own captions, when they come in
//! an SEI of their own) writes into the cc_data the frame already has:
//! its 608 pairs into its field's slots, its 708 packets after the DTVCC
//! packets there. So the video carries one DTVCC stream, whose packets
//! never interleave and are numbered in turn, whatever the number of
//! languages.

use cea608_types::tables::Field;
use cea708_types::DTVCCPacket;

use super::cea708::Triplet;

/// DTVCC padding: not valid, cc_type 2.
const PADDING: Triplet = [0xFA, 0x00, 0x00];

/// What one writer adds to a frame's cc_data.
pub struct Ours<'a> {
    /// Our 608 channel's field and its byte pairs for this frame (None: no 608).
    pub field: Option<Field>,
    pub pairs: &'a [[u8; 2]],
    /// Our 708 service number (0: no 708).
    pub service: u8,
}

/// The `count` triplets of a frame's cc_data: `theirs` (what the frame
/// already carries; empty when nothing) with `ours` in it. 608 first: their
/// pairs of the other field, ours, fillers for a field with none. Then their
/// DTVCC packets (a packet of our service number left out, when it is whole
/// in the frame: ours replaces it), then as many of our whole packets as
/// `take` gives for the room left (none while their last packet goes on
/// in the next frame), then padding. Every packet that starts in the frame
/// is numbered in turn from `sequence`.
pub fn merged(
    theirs: &[Triplet],
    ours: &Ours,
    take: impl FnOnce(usize) -> Vec<Triplet>,
    count: usize,
    sequence: &mut u8,
) -> Vec<Triplet> {
    let mut out = cea608_section(theirs, ours);
    let (their_packets, open) = dtvcc_section(theirs, ours.service);
    out.extend(their_packets);
    if !open {
        let room = count.saturating_sub(out.len());
        out.extend(take(room).into_iter().take(room));
    }
    for triplet in out.iter_mut().filter(|t| is_packet_start(t)) {
        triplet[1] = (triplet[1] & 0x3F) | (*sequence << 6);
        *sequence = (*sequence + 1) % 4;
    }
    while out.len() < count {
        out.push(PADDING);
    }
    out
}

/// The 608 triplets: theirs of the field we do not write, our pairs, and a
/// filler for a field that has none (each field has its slot).
fn cea608_section(theirs: &[Triplet], ours: &Ours) -> Vec<Triplet> {
    let our_type = ours.field.map(|field| u8::from(field != Field::ONE));
    let mut section: Vec<Triplet> = theirs
        .iter()
        .take_while(|t| t[0] & 0x02 == 0)
        .filter(|t| Some(t[0] & 0x01) != our_type && t[0] & 0x04 != 0)
        .copied()
        .collect();
    if let Some(cc_type) = our_type {
        section.extend(ours.pairs.iter().map(|p| [0xFC | cc_type, p[0], p[1]]));
    }
    for cc_type in [0u8, 1] {
        if !section.iter().any(|t| t[0] & 0x01 == cc_type) {
            section.push([0xF8 | cc_type, 0x80, 0x80]);
        }
    }
    section.sort_by_key(|t| t[0] & 0x01);
    section
}

/// Their valid DTVCC triplets, packets of service `ours` left out when
/// whole; and whether their last packet goes on in the next frame.
fn dtvcc_section(theirs: &[Triplet], ours: u8) -> (Vec<Triplet>, bool) {
    let valid: Vec<Triplet> = theirs
        .iter()
        .skip_while(|t| t[0] & 0x02 == 0)
        .filter(|t| t[0] & 0x06 == 0x06)
        .copied()
        .collect();
    let mut out = Vec::with_capacity(valid.len());
    let mut open = false;
    let mut at = 0;
    while at < valid.len() {
        let end = valid[at + 1..]
            .iter()
            .position(is_packet_start)
            .map_or(valid.len(), |n| at + 1 + n);
        let packet = &valid[at..end];
        open = is_packet_start(&packet[0]) && packet_bytes(packet) < packet_size(packet[0][1]);
        if open || ours == 0 || !is_packet_start(&packet[0]) {
            out.extend(packet);
        } else {
            out.extend(without_service(packet, ours));
        }
        at = end;
    }
    (out, open)
}

fn is_packet_start(triplet: &Triplet) -> bool {
    triplet[0] & 0x07 == 0x07
}

/// A packet's size in bytes, header included, from its header byte.
fn packet_size(header: u8) -> usize {
    match usize::from(header & 0x3F) {
        0 => 128,
        code => code * 2,
    }
}

fn packet_bytes(packet: &[Triplet]) -> usize {
    packet.len() * 2
}

/// A whole packet without its blocks of service `number` (nothing left
/// when it had only those).
fn without_service(packet: &[Triplet], number: u8) -> Vec<Triplet> {
    let bytes: Vec<u8> = packet.iter().flat_map(|t| [t[1], t[2]]).collect();
    let size = packet_size(bytes[0]).min(bytes.len());
    let Ok(parsed) = DTVCCPacket::parse(&bytes[..size]) else {
        return packet.to_vec();
    };
    if parsed.services().iter().all(|s| s.number() != number) {
        return packet.to_vec();
    }
    let mut kept = DTVCCPacket::new(parsed.sequence_no());
    for service in parsed.services().iter().filter(|s| s.number() != number) {
        if kept.push_service(service.clone()).is_err() {
            return packet.to_vec();
        }
    }
    if kept.is_empty() {
        return Vec::new();
    }
    let mut written = Vec::new();
    if kept.write(&mut written).is_err() {
        return packet.to_vec();
    }
    super::cea708::triplets(&written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captions::cea708::CaptionService;
    use crate::captions::layout::TimedCaption;
    use cea708_types::CCDataParser;

    fn service_with(number: u8, text: &str) -> CaptionService {
        let mut service = CaptionService::new(number);
        service.add([TimedCaption {
            start: 0,
            end: 1_000_000_000,
            rows: vec![text.to_owned()],
        }]);
        service
    }

    /// Each service's letters in `frames` of cc_data, as the crate's parser reads them.
    fn letters(frames: &[Vec<Triplet>]) -> std::collections::BTreeMap<u8, String> {
        let mut parser = CCDataParser::new();
        let mut out = std::collections::BTreeMap::new();
        for frame in frames {
            let mut data = vec![0x40 | frame.len() as u8, 0xFF];
            data.extend(frame.iter().flatten());
            parser.push(&data).expect("cc_data parses");
            while let Some(packet) = parser.pop_packet() {
                for service in packet.services() {
                    let text: String = service.codes().iter().filter_map(|c| c.char()).collect();
                    out.entry(service.number())
                        .or_insert_with(String::new)
                        .push_str(&text);
                }
            }
        }
        out
    }

    /// Three writers in a chain, as a three-language worker has them: each
    /// frame's cc_data goes through all three.
    #[test]
    fn three_services_share_one_dtvcc_stream_numbered_in_turn() {
        let mut services = [
            service_with(1, "Hola a todos"),
            service_with(2, "Bonjour à tous"),
            service_with(3, "Hallo zusammen"),
        ];
        let mut sequences = [0u8; 3];
        let mut frames = Vec::new();
        for frame in 0..10u64 {
            let mut cc_data: Vec<Triplet> = Vec::new();
            for (service, sequence) in services.iter_mut().zip(&mut sequences) {
                let ours = Ours {
                    field: None,
                    pairs: &[],
                    service: service.number(),
                };
                let at = frame * 40_000_000;
                cc_data = merged(
                    &cc_data,
                    &ours,
                    |room| service.frame(at, room),
                    24,
                    sequence,
                );
                assert_eq!(cc_data.len(), 24);
            }
            frames.push(cc_data);
        }
        let read = letters(&frames);
        assert_eq!(read.get(&1).map(String::as_str), Some("Hola a todos"));
        assert_eq!(read.get(&2).map(String::as_str), Some("Bonjour à tous"));
        assert_eq!(read.get(&3).map(String::as_str), Some("Hallo zusammen"));
        let starts: Vec<u8> = frames
            .iter()
            .flatten()
            .filter(|t| is_packet_start(t))
            .map(|t| t[1] >> 6)
            .collect();
        assert!(starts.len() >= 3);
        assert!(
            starts.windows(2).all(|w| w[1] == (w[0] + 1) % 4),
            "{starts:?}"
        );
    }

    #[test]
    fn our_608_field_replaces_theirs_the_other_field_stays() {
        let theirs = [[0xFC, 0x94, 0x20], [0xFD, 0x15, 0x20], PADDING];
        let ours = Ours {
            field: Some(Field::ONE),
            pairs: &[[0x41, 0x42]],
            service: 0,
        };
        let out = merged(&theirs, &ours, |_| Vec::new(), 3, &mut 0);
        assert_eq!(out, [[0xFC, 0x41, 0x42], [0xFD, 0x15, 0x20], PADDING]);
    }

    #[test]
    fn nothing_of_ours_starts_while_their_packet_goes_on() {
        // A packet header saying 8 bytes, of which 2 triplets (4 bytes) came.
        let theirs = [
            [0xF8, 0x80, 0x80],
            [0xF9, 0x80, 0x80],
            [0xFF, 0x04, 0x21],
            [0xFE, 0x41, 0x42],
        ];
        let ours = Ours {
            field: None,
            pairs: &[],
            service: 2,
        };
        let out = merged(&theirs, &ours, |_| panic!("no room asked"), 6, &mut 0);
        assert_eq!(out[2..4], theirs[2..4]);
        assert_eq!(out[4..], [PADDING, PADDING]);
    }

    #[test]
    fn a_whole_packet_of_our_service_in_the_input_makes_way() {
        // Service 1 ("A") and service 2 ("B") in one packet of 6 bytes.
        let theirs = [[0xFF, 0x03, 0x21], [0xFE, 0x41, 0x41], [0xFE, 0x42, 0x00]];
        let ours = Ours {
            field: None,
            pairs: &[],
            service: 1,
        };
        let out = merged(&theirs, &ours, |_| Vec::new(), 5, &mut 0);
        let read = letters(&[out]);
        assert_eq!(read.get(&1), None);
        assert_eq!(read.get(&2).map(String::as_str), Some("B"));
    }
}
