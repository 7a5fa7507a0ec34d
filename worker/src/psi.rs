// SPDX-License-Identifier: MPL-2.0

//! The descriptors of the input's private-data streams (DVB subtitles,
//! teletext, …), put back in the output's PMT.
//!
//! GStreamer 1.22's mpegtsmux describes every carried stream of type 0x06
//! as it sees fit: teletext gets a DVB *subtitling* descriptor (its code
//! falls through from teletext to subtitles), so a receiver takes the
//! teletext PID for DVB subtitles and shows neither; DVB subtitles get
//! composition page 1 and no language, whatever the input's pages were,
//! so a decoder that filters by page shows nothing. The input's own
//! ES_info (teletext pages and magazines, subtitle pages, languages) is
//! read from its PMT as the bytes enter the demuxer, and each output PMT
//! carries it again for the same PIDs (the muxer keeps the input's PIDs:
//! `tracks.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use gst::glib;
use gst::prelude::*;

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const PAT_PID: u16 = 0;
const PMT_TABLE: u8 = 0x02;
const PRIVATE_DATA: u8 = 0x06;
/// How much of the input is read for its PMT before giving up (a PMT
/// comes every 100–500 ms; 8 MB is seconds even at broadcast rates).
const SNIFF_LIMIT: usize = 8 << 20;

/// The ES_info of each private-data stream of the input, by PID.
pub type PrivateStreams = BTreeMap<u16, Vec<u8>>;

/// Reads the input's PMT on `demuxer_sink` (the TS bytes entering the
/// demuxer) and writes its private streams' descriptors into the PMT
/// leaving `muxer_src`.
pub fn restore_private_descriptors(demuxer_sink: &gst::Pad, muxer_src: &gst::Pad) {
    // Set once, by the demuxer's thread; read by the muxer's on every
    // buffer without a lock or a copy.
    let found: Arc<OnceLock<PrivateStreams>> = Arc::default();
    sniff_input(demuxer_sink, Arc::clone(&found));
    let warned = std::sync::atomic::AtomicBool::new(false);
    let output_pmt_pid = Mutex::new(None);
    let probe_types = gst::PadProbeType::BUFFER
        | gst::PadProbeType::BUFFER_LIST
        | gst::PadProbeType::EVENT_DOWNSTREAM;
    muxer_src.add_probe(probe_types, move |_, info| {
        let Some(streams) = found.get().filter(|s| !s.is_empty()) else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(mut pmt_pid) = output_pmt_pid.lock() else {
            return gst::PadProbeReturn::Ok;
        };
        let mut rewrite = |buffer: &mut gst::Buffer| {
            let whole = buffer
                .make_mut()
                .map_writable()
                .map(|mut map| rewrite_pmts(map.as_mut_slice(), streams, &mut pmt_pid));
            if matches!(whole, Ok(false))
                && !warned.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                eprintln!(
                    "worker: warning: the output's PMT spans packets; the input's subtitle and \
                     teletext descriptors are not put back"
                );
            }
        };
        match info.data.as_mut() {
            Some(gst::PadProbeData::Buffer(buffer)) => rewrite(buffer),
            // The muxer's packets, several buffers at a time (`alignment`).
            Some(gst::PadProbeData::BufferList(list)) => {
                list.make_mut().foreach_mut(|mut buffer, _| {
                    rewrite(&mut buffer);
                    std::ops::ControlFlow::Continue(Some(buffer))
                });
            }
            // The PAT and PMT the muxer also puts in its caps as
            // `streamheader`, which srtsink sends first to every caller.
            Some(gst::PadProbeData::Event(event)) => {
                if let Some(caps) = with_streamheader(event, &mut rewrite) {
                    *event = gst::event::Caps::new(&caps);
                }
            }
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });
}

/// The caps of a caps `event` with each of its `streamheader` buffers
/// passed through `rewrite`; None for any other event or caps without.
fn with_streamheader(
    event: &gst::Event,
    rewrite: &mut impl FnMut(&mut gst::Buffer),
) -> Option<gst::Caps> {
    let gst::EventView::Caps(caps) = event.view() else {
        return None;
    };
    let mut caps = caps.caps_owned();
    let structure = caps.make_mut().structure_mut(0)?;
    let headers = structure.get::<gst::Array>("streamheader").ok()?;
    let rewritten: Vec<glib::SendValue> = headers
        .iter()
        .filter_map(|value| value.get::<gst::Buffer>().ok())
        .map(|mut buffer| {
            rewrite(&mut buffer);
            buffer.to_send_value()
        })
        .collect();
    structure.set("streamheader", gst::Array::from_values(rewritten));
    Some(caps)
}

/// Collects TS bytes on `pad` until the PMT is read (or [`SNIFF_LIMIT`]).
fn sniff_input(pad: &gst::Pad, found: Arc<OnceLock<PrivateStreams>>) {
    let reader = Mutex::new(PmtReader::default());
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let (Ok(map), Ok(mut reader)) = (buffer.map_readable(), reader.lock()) else {
            return gst::PadProbeReturn::Ok;
        };
        match reader.push(map.as_slice()) {
            Some(streams) => {
                let _ = found.set(streams);
                gst::PadProbeReturn::Remove
            }
            None if reader.read > SNIFF_LIMIT => gst::PadProbeReturn::Remove,
            None => gst::PadProbeReturn::Ok,
        }
    });
}

/// Finds the first PMT in a TS byte stream given in pieces of any size.
#[derive(Default)]
struct PmtReader {
    pending: Vec<u8>,
    pmt_pid: Option<u16>,
    read: usize,
}

impl PmtReader {
    /// The private streams of the first whole PMT once it has come.
    fn push(&mut self, bytes: &[u8]) -> Option<PrivateStreams> {
        self.read += bytes.len();
        self.pending.extend_from_slice(bytes);
        let start = self.pending.iter().position(|b| *b == SYNC)?;
        let mut at = start;
        let mut result = None;
        while at + PACKET <= self.pending.len() && result.is_none() {
            let packet = &self.pending[at..at + PACKET];
            if packet[0] != SYNC {
                // Lost sync: look for the next sync byte.
                at += 1;
                continue;
            }
            let section = unit_start_section(packet);
            match (pid(packet), section) {
                (PAT_PID, Some(section)) => self.pmt_pid = first_program_pmt(section),
                (p, Some(section)) if Some(p) == self.pmt_pid => {
                    result = private_streams(section);
                }
                _ => {}
            }
            at += PACKET;
        }
        self.pending.drain(..at);
        result
    }
}

fn pid(packet: &[u8]) -> u16 {
    (u16::from(packet[1] & 0x1F) << 8) | u16::from(packet[2])
}

/// The section a packet starts (payload_unit_start, after the pointer
/// field), to the packet's end.
fn unit_start_section(packet: &[u8]) -> Option<&[u8]> {
    if packet[1] & 0x40 == 0 {
        return None;
    }
    let payload = payload_start(packet)?;
    let pointer = usize::from(*packet.get(payload)?);
    packet.get(payload + 1 + pointer..)
}

/// Where a packet's payload starts, after any adaptation field.
fn payload_start(packet: &[u8]) -> Option<usize> {
    let control = (packet[3] >> 4) & 0x3;
    if control & 0x1 == 0 {
        return None;
    }
    let start = if control & 0x2 != 0 {
        5 + usize::from(packet[4])
    } else {
        4
    };
    (start < PACKET).then_some(start)
}

/// The section's length in bytes (its header's 12 bits and the 3 before).
fn section_length(section: &[u8]) -> Option<usize> {
    let length = (usize::from(*section.get(1)? & 0x0F) << 8) | usize::from(*section.get(2)?);
    Some(3 + length)
}

/// The PMT PID of a PAT's first program (not the network PID).
fn first_program_pmt(section: &[u8]) -> Option<u16> {
    let end = section_length(section)?.checked_sub(4)?;
    let programs = section.get(8..end)?;
    programs.chunks_exact(4).find_map(|p| {
        let number = u16::from_be_bytes([p[0], p[1]]);
        (number != 0).then_some((u16::from(p[2] & 0x1F) << 8) | u16::from(p[3]))
    })
}

/// A PMT's elementary streams: (stream type, PID, ES_info) in order.
fn streams(section: &[u8]) -> Option<Vec<(u8, u16, &[u8])>> {
    if *section.first()? != PMT_TABLE {
        return None;
    }
    let end = section_length(section)?.checked_sub(4)?;
    let program_info =
        (usize::from(*section.get(10)? & 0x0F) << 8) | usize::from(*section.get(11)?);
    let mut at = 12 + program_info;
    let mut found = Vec::new();
    while at + 5 <= end {
        let kind = section[at];
        let pid = (u16::from(section[at + 1] & 0x1F) << 8) | u16::from(section[at + 2]);
        let info = (usize::from(section[at + 3] & 0x0F) << 8) | usize::from(section[at + 4]);
        found.push((kind, pid, section.get(at + 5..at + 5 + info)?));
        at += 5 + info;
    }
    Some(found)
}

fn private_streams(section: &[u8]) -> Option<PrivateStreams> {
    Some(
        streams(section)?
            .into_iter()
            .filter(|(kind, _, _)| *kind == PRIVATE_DATA)
            .map(|(_, pid, info)| (pid, info.to_vec()))
            .collect(),
    )
}

/// Puts `wanted`'s ES_info into every PMT of the packets in `ts` (the
/// muxer's whole packets) for the private streams on the same PIDs;
/// `pmt_pid` is the PMT's PID as the last PAT gave it. False when a PMT
/// could not be rewritten in its packet.
fn rewrite_pmts(ts: &mut [u8], wanted: &PrivateStreams, pmt_pid: &mut Option<u16>) -> bool {
    let mut all = true;
    for packet in ts.chunks_exact_mut(PACKET) {
        if packet[0] != SYNC {
            continue;
        }
        let Some(section) = unit_start_section(packet) else {
            continue;
        };
        if pid(packet) == PAT_PID {
            *pmt_pid = first_program_pmt(section);
            continue;
        }
        // A PMT before the first PAT (the muxer sends one when a stream
        // joins) is known by its table id: no PES or other section starts so.
        let known = pmt_pid.is_none_or(|p| p == pid(packet));
        if !known || section.first() != Some(&PMT_TABLE) {
            continue;
        }
        all &= rewrite_pmt_packet(packet, wanted);
    }
    all
}

/// Rewrites the PMT that starts in `packet`, if it ends there too.
fn rewrite_pmt_packet(packet: &mut [u8], wanted: &PrivateStreams) -> bool {
    let Some(payload) = payload_start(packet) else {
        return true;
    };
    let start = payload + 1 + usize::from(packet[payload]);
    let Some(old) = packet
        .get(start..)
        .and_then(|s| Some(s.get(..section_length(s)?)?.to_vec()))
    else {
        return false;
    };
    let Some(new) = with_private_info(&old, wanted) else {
        return true;
    };
    if start + new.len() > PACKET {
        return false;
    }
    packet[start..start + new.len()].copy_from_slice(&new);
    packet[start + new.len()..].fill(0xFF);
    true
}

/// The PMT `section` with the ES_info of its private streams that `wanted`
/// describes replaced; None when nothing changes.
fn with_private_info(section: &[u8], wanted: &PrivateStreams) -> Option<Vec<u8>> {
    let entries = streams(section)?;
    let program_info = (usize::from(section[10] & 0x0F) << 8) | usize::from(section[11]);
    let mut out = section[..12 + program_info].to_vec();
    let mut changed = false;
    for (kind, pid, info) in entries {
        let info = match wanted.get(&pid) {
            Some(theirs) if kind == PRIVATE_DATA && theirs.as_slice() != info => {
                changed = true;
                theirs.as_slice()
            }
            _ => info,
        };
        out.push(kind);
        out.extend([0xE0 | (pid >> 8) as u8, pid as u8]);
        out.extend([0xF0 | (info.len() >> 8) as u8, info.len() as u8]);
        out.extend_from_slice(info);
    }
    if !changed {
        return None;
    }
    let length = out.len() + 4 - 3;
    out[1] = (out[1] & 0xF0) | ((length >> 8) as u8 & 0x0F);
    out[2] = length as u8;
    let crc = crc32_mpeg2(&out);
    out.extend(crc.to_be_bytes());
    Some(out)
}

/// CRC-32/MPEG-2 (ISO/IEC 13818-1 Annex A): polynomial 0x04C11DB7, not
/// reflected, from all ones, no final XOR.
fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for byte in bytes {
        crc ^= u32::from(*byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PMT section (program 1, PCR on 0x100) with `entries`.
    fn pmt(entries: &[(u8, u16, &[u8])]) -> Vec<u8> {
        let mut section = vec![0x02, 0xB0, 0, 0x00, 0x01, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0];
        for (kind, pid, info) in entries {
            section.push(*kind);
            section.extend([0xE0 | (pid >> 8) as u8, *pid as u8]);
            section.extend([0xF0, info.len() as u8]);
            section.extend_from_slice(info);
        }
        let length = section.len() + 4 - 3;
        section[2] = length as u8;
        let crc = crc32_mpeg2(&section);
        section.extend(crc.to_be_bytes());
        section
    }

    /// One TS packet on `pid` starting `section`, stuffed with 0xFF.
    fn packet(pid: u16, section: &[u8]) -> Vec<u8> {
        let mut packet = vec![SYNC, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0];
        packet.extend_from_slice(section);
        packet.resize(PACKET, 0xFF);
        packet
    }

    fn pat(pmt_pid: u16) -> Vec<u8> {
        let mut section = vec![0x00, 0xB0, 13, 0x00, 0x01, 0xC1, 0, 0, 0x00, 0x01];
        section.extend([0xE0 | (pmt_pid >> 8) as u8, pmt_pid as u8]);
        let crc = crc32_mpeg2(&section);
        section.extend(crc.to_be_bytes());
        section
    }

    const TELETEXT: &[u8] = &[0x56, 0x05, b'd', b'e', b'u', 0x10, 0x88];
    const SUBTITLING_PAGE_1: &[u8] = &[0x59, 0x08, 0, 0, 0, 0x10, 0, 1, 0, 1];

    #[test]
    fn the_crc_is_mpeg2s() {
        // The check value of CRC-32/MPEG-2.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn the_input_pmt_is_found_across_pieces_of_any_size() {
        let stream = [
            vec![0x00; 7],
            packet(0, &pat(0x1000)),
            packet(0x1000, &pmt(&[(0x1B, 0x100, &[]), (0x06, 0x151, TELETEXT)])),
        ]
        .concat();
        let mut reader = PmtReader::default();
        let mut found = None;
        for piece in stream.chunks(100) {
            if let Some(streams) = reader.push(piece) {
                found = Some(streams);
            }
        }
        let found = found.expect("the PMT");
        assert_eq!(found.len(), 1);
        assert_eq!(found[&0x151], TELETEXT);
    }

    #[test]
    fn the_output_pmt_gets_the_inputs_private_descriptors_and_a_valid_crc() {
        let wanted: PrivateStreams = [(0x151, TELETEXT.to_vec())].into();
        let out_pmt = pmt(&[
            (0x1B, 0x100, &[]),
            (0x06, 0x150, SUBTITLING_PAGE_1),
            (0x06, 0x151, SUBTITLING_PAGE_1),
        ]);
        let mut ts = [packet(0, &pat(0x20)), packet(0x20, &out_pmt)].concat();
        let mut pmt_pid = None;
        assert!(rewrite_pmts(&mut ts, &wanted, &mut pmt_pid));
        assert_eq!(pmt_pid, Some(0x20));
        let section = unit_start_section(&ts[PACKET..]).expect("a section");
        let length = section_length(section).expect("a length");
        assert_eq!(crc32_mpeg2(&section[..length]), 0, "the CRC checks");
        let entries = streams(section).expect("a PMT");
        assert_eq!(
            entries[1],
            (0x06, 0x150, SUBTITLING_PAGE_1),
            "not the input's: kept"
        );
        assert_eq!(entries[2], (0x06, 0x151, TELETEXT));
        assert!(
            ts[PACKET + 5 + length..2 * PACKET]
                .iter()
                .all(|b| *b == 0xFF)
        );
        // A PMT before any PAT is rewritten too.
        let mut alone = packet(0x20, &out_pmt);
        let mut unknown = None;
        assert!(rewrite_pmts(&mut alone, &wanted, &mut unknown));
        let section = unit_start_section(&alone).expect("a section");
        assert_eq!(streams(section).expect("a PMT")[2], (0x06, 0x151, TELETEXT));
        // Nothing to change: left as it is.
        let before = ts.clone();
        assert!(rewrite_pmts(&mut ts, &wanted, &mut pmt_pid));
        assert_eq!(ts, before);
    }
}
