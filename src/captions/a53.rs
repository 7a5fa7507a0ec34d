// SPDX-License-Identifier: MPL-2.0

//! 608 byte pairs → ATSC A/53 cc_data → an SEI NAL unit
//! (user_data_registered_itu_t_t35, "GA94") put into an H.264 or H.265
//! access unit before its first slice. The slices are not touched.

use cea608_types::tables::Field;

/// A/53's caption bandwidth: 600 cc_data triplets a second, so a frame
/// carries 600 / fps of them (20 at 29.97 and 30, 24 at 25, 12 at 50,
/// 10 at 59.94 and 60); at most 31 fit the field.
pub fn cc_count(frame_ns: u64) -> usize {
    let count = (600 * frame_ns + 500_000_000) / 1_000_000_000;
    count.clamp(1, 31) as usize
}

/// The triplets of one frame: `pairs` as 608 data of `field`, padded with
/// 608 fillers to the two slots 608 takes (one a field), then DTVCC
/// padding to `count` (the count A/53 fixes for the frame rate). With
/// 708, `merge` makes the triplets.
pub fn cc_data(field: Field, pairs: &[[u8; 2]], count: usize) -> Vec<u8> {
    let cc_type = if field == Field::ONE { 0 } else { 1 };
    let mut data = Vec::with_capacity(count * 3);
    for pair in pairs.iter().take(count) {
        // marker bits, cc_valid, cc_type.
        data.extend([0xF8 | 0x04 | cc_type, pair[0], pair[1]]);
    }
    for filler_field in [0, 1]
        .into_iter()
        .skip(pairs.len())
        .take(count.saturating_sub(pairs.len()))
    {
        // Not valid, 608 of either field.
        data.extend([0xF8 | filler_field, 0x80, 0x80]);
    }
    for _ in data.len() / 3..count {
        // Not valid, DTVCC: padding.
        data.extend([0xFA, 0x00, 0x00]);
    }
    data
}

/// The SEI payload: ITU-T T.35 (United States, ATSC), "GA94", cc_data.
fn t35_payload(cc_data: &[u8]) -> Vec<u8> {
    let count = (cc_data.len() / 3).min(31) as u8;
    let mut payload = vec![0xB5, 0x00, 0x31, b'G', b'A', b'9', b'4', 0x03];
    // process_cc_data_flag, cc_count; em_data.
    payload.extend([0x40 | count, 0xFF]);
    payload.extend(&cc_data[..usize::from(count) * 3]);
    payload.push(0xFF);
    payload
}

/// The video codecs whose access units carry the captions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

/// How NAL units are delimited in the stream's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Annex B start codes (`stream-format=byte-stream`).
    StartCodes,
    /// A big-endian length of this many bytes before each unit (avc, hvc1…).
    Length(usize),
}

/// The SEI NAL unit (header, payload type 4, size, payload, trailing
/// bits; emulation prevention applied) for `cc_data`.
pub fn sei_nal(codec: Codec, cc_data: &[u8]) -> Vec<u8> {
    let payload = t35_payload(cc_data);
    let mut rbsp = vec![4u8];
    let mut size = payload.len();
    while size >= 255 {
        rbsp.push(0xFF);
        size -= 255;
    }
    rbsp.push(size as u8);
    rbsp.extend(&payload);
    rbsp.push(0x80);
    let mut nal = match codec {
        Codec::H264 => vec![0x06],
        // Prefix SEI (39), layer 0, temporal id 1.
        Codec::H265 => vec![39 << 1, 0x01],
    };
    nal.extend(emulation_prevented(&rbsp));
    nal
}

/// `rbsp` with 0x03 put after each 00 00 that a 00–03 byte follows.
fn emulation_prevented(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64);
    let mut zeros = 0;
    for &byte in rbsp {
        if zeros >= 2 && byte <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// `access_unit` with `nal` put before its first slice; None when it has
/// no slice, or its units do not parse as `framing` says.
pub fn insert(access_unit: &[u8], codec: Codec, framing: Framing, nal: &[u8]) -> Option<Vec<u8>> {
    let at = first_slice(access_unit, codec, framing)?;
    let framed = framed(nal, framing)?;
    let mut out = Vec::with_capacity(access_unit.len() + framed.len());
    out.extend(&access_unit[..at]);
    out.extend(framed);
    out.extend(&access_unit[at..]);
    Some(out)
}

/// `nal` behind a start code, or its length in `framing`'s bytes; None
/// when the length does not fit them.
fn framed(nal: &[u8], framing: Framing) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(nal.len() + 4);
    match framing {
        Framing::StartCodes => out.extend([0, 0, 0, 1]),
        Framing::Length(size) => {
            let length = u64::try_from(nal.len()).ok()?;
            if size < 8 && length >> (8 * size) != 0 {
                return None;
            }
            out.extend(&length.to_be_bytes()[8 - size..]);
        }
    }
    out.extend(nal);
    Some(out)
}

/// A53 cc_data that another writer put in an access unit, in an SEI unit
/// of its own (as [`sei_nal`] makes them: one message, nothing else).
#[derive(Debug, PartialEq)]
pub struct LoneCcData {
    /// The unit in the access unit, its start code or length included.
    pub unit: std::ops::Range<usize>,
    pub triplets: Vec<[u8; 3]>,
}

/// The first SEI unit of `access_unit` that holds one A/53 cc_data message
/// and nothing else; None when there is none (an SEI that carries other
/// messages too is left as it is).
pub fn lone_cc_data(access_unit: &[u8], codec: Codec, framing: Framing) -> Option<LoneCcData> {
    sei_units(access_unit, codec, framing)?
        .into_iter()
        .find_map(|sei| {
            lone_a53_triplets(&sei.rbsp).map(|triplets| LoneCcData {
                unit: sei.unit,
                triplets,
            })
        })
}

/// An SEI unit of an access unit: where it is, its RBSP, and where each
/// RBSP byte is in the access unit.
struct SeiUnit {
    unit: std::ops::Range<usize>,
    rbsp: Vec<u8>,
    positions: Vec<usize>,
}

/// The SEI units of `access_unit`, in order; None when its units do not
/// parse as `framing` says.
fn sei_units(access_unit: &[u8], codec: Codec, framing: Framing) -> Option<Vec<SeiUnit>> {
    let starts = units(access_unit, framing)?;
    let mut seis = Vec::new();
    for (n, (at, header)) in starts.iter().enumerate() {
        if !is_sei(codec, *header) {
            continue;
        }
        let end = starts
            .get(n + 1)
            .map_or(access_unit.len(), |(next, _)| *next);
        let body = match framing {
            Framing::StartCodes => {
                at + if access_unit.get(*at..at + 4) == Some(&[0, 0, 0, 1]) {
                    4
                } else {
                    3
                }
            }
            Framing::Length(size) => at + size,
        };
        let payload = body + if codec == Codec::H264 { 1 } else { 2 };
        let (rbsp, positions) = unescaped(access_unit.get(payload..end)?);
        seis.push(SeiUnit {
            unit: *at..end,
            rbsp,
            positions: positions.into_iter().map(|p| payload + p).collect(),
        });
    }
    Some(seis)
}

/// The cc_data triplets of an SEI RBSP that is one A/53 message and its
/// trailing bits; None for anything else.
fn lone_a53_triplets(rbsp: &[u8]) -> Option<Vec<[u8; 3]>> {
    let (payload_type, next) = sei_number(rbsp, 0);
    let (size, next) = sei_number(rbsp, next);
    let data = rbsp.get(next..next + size)?;
    // Trailing bits (and any zero bytes after them) only.
    let rest = &rbsp[next + size..];
    if payload_type != 4
        || data.len() < 10
        || data[..8] != [0xB5, 0x00, 0x31, b'G', b'A', b'9', b'4', 0x03]
        || rest.first() != Some(&0x80)
        || rest[1..].iter().any(|b| *b != 0)
    {
        return None;
    }
    let count = usize::from(data[8] & 0x1F);
    let triplets = data.get(10..10 + 3 * count)?;
    Some(
        triplets
            .chunks_exact(3)
            .map(|t| [t[0], t[1], t[2]])
            .collect(),
    )
}

/// `access_unit` with the unit at `unit` (as [`LoneCcData`] gives it)
/// replaced by `nal`; None when it cannot be framed.
pub fn replace_unit(
    access_unit: &[u8],
    framing: Framing,
    unit: std::ops::Range<usize>,
    nal: &[u8],
) -> Option<Vec<u8>> {
    let framed = framed(nal, framing)?;
    let mut out = Vec::with_capacity(access_unit.len() + framed.len());
    out.extend(access_unit.get(..unit.start)?);
    out.extend(framed);
    out.extend(access_unit.get(unit.end..)?);
    Some(out)
}

/// `access_unit` with the 608 data of `field` in its A/53 SEIs marked not
/// valid: ours replaces it, while the other field and any CEA-708 data
/// pass through. The same length (one bit of each such triplet changes),
/// so a unit's length prefix still holds. None when there was none.
pub fn without_field(
    access_unit: &[u8],
    codec: Codec,
    framing: Framing,
    field: Field,
) -> Option<Vec<u8>> {
    let cc_type = if field == Field::ONE { 0 } else { 1 };
    // Where each byte to change is, and its new value: most access units
    // carry no captions of their own, and are then not copied.
    let mut changes = Vec::new();
    for sei in sei_units(access_unit, codec, framing)? {
        for index in cc_triplets(&sei.rbsp) {
            let marker = sei.rbsp[index];
            if marker & 0x04 != 0 && marker & 0x03 == cc_type {
                changes.push((sei.positions[index], marker & !0x04));
            }
        }
    }
    if changes.is_empty() {
        return None;
    }
    let mut out = access_unit.to_vec();
    for (at, value) in changes {
        out[at] = value;
    }
    Some(out)
}

fn is_sei(codec: Codec, header: u8) -> bool {
    match codec {
        Codec::H264 => header & 0x1F == 6,
        Codec::H265 => matches!((header >> 1) & 0x3F, 39 | 40),
    }
}

/// The RBSP of an escaped NAL unit body, and where each of its bytes was.
fn unescaped(escaped: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let (mut rbsp, mut positions) = (
        Vec::with_capacity(escaped.len()),
        Vec::with_capacity(escaped.len()),
    );
    let mut zeros = 0;
    for (at, &byte) in escaped.iter().enumerate() {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        rbsp.push(byte);
        positions.push(at);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    (rbsp, positions)
}

/// Where each cc_data triplet's first byte is in an SEI RBSP, over every
/// A/53 (T.35 "GA94", cc_data) message in it.
fn cc_triplets(rbsp: &[u8]) -> Vec<usize> {
    let mut triplets = Vec::new();
    let mut at = 0;
    while at < rbsp.len() && rbsp[at] != 0x80 {
        let (payload_type, next) = sei_number(rbsp, at);
        let (size, next) = sei_number(rbsp, next);
        let payload = next..(next + size).min(rbsp.len());
        let data = &rbsp[payload.clone()];
        if payload_type == 4
            && data.len() >= 10
            && data[..8] == [0xB5, 0x00, 0x31, b'G', b'A', b'9', b'4', 0x03]
        {
            let count = usize::from(data[8] & 0x1F);
            let first = payload.start + 10;
            triplets.extend(
                (0..count)
                    .map(|i| first + 3 * i)
                    .filter(|i| i + 2 < payload.end),
            );
        }
        at = payload.end;
    }
    triplets
}

/// An SEI payload type or size (a run of 0xFF, then the rest) at `at`.
fn sei_number(rbsp: &[u8], mut at: usize) -> (usize, usize) {
    let mut value = 0;
    while rbsp.get(at) == Some(&0xFF) {
        value += 255;
        at += 1;
    }
    (
        value + usize::from(rbsp.get(at).copied().unwrap_or(0)),
        at + 1,
    )
}

/// Where the unit of the first slice starts (its start code or length).
fn first_slice(au: &[u8], codec: Codec, framing: Framing) -> Option<usize> {
    units(au, framing)?
        .into_iter()
        .find(|(_, header)| is_slice(codec, *header))
        .map(|(at, _)| at)
}

fn is_slice(codec: Codec, header: u8) -> bool {
    match codec {
        Codec::H264 => matches!(header & 0x1F, 1..=5),
        Codec::H265 => (header >> 1) & 0x3F < 32,
    }
}

/// Each unit's start (of its delimiter) and first header byte.
fn units(au: &[u8], framing: Framing) -> Option<Vec<(usize, u8)>> {
    let mut units = Vec::new();
    match framing {
        Framing::Length(size) => {
            if !(1..=4).contains(&size) {
                return None;
            }
            let mut at = 0;
            while at < au.len() {
                let length = au
                    .get(at..at + size)?
                    .iter()
                    .fold(0usize, |n, b| (n << 8) | usize::from(*b));
                units.push((at, *au.get(at + size)?));
                at += size + length;
            }
            (at == au.len()).then_some(units)
        }
        Framing::StartCodes => {
            let mut at = 0;
            while at + 3 <= au.len() {
                if au[at..at + 3] == [0, 0, 1] {
                    // A four-byte start code's leading zero belongs to it.
                    let start = if at > 0 && au[at - 1] == 0 {
                        at - 1
                    } else {
                        at
                    };
                    units.push((start, *au.get(at + 3)?));
                    at += 3;
                } else {
                    at += 1;
                }
            }
            Some(units)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a53_fixes_the_triplets_per_frame_from_the_frame_rate() {
        let ns = |fps_num: u64, fps_den: u64| 1_000_000_000 * fps_den / fps_num;
        assert_eq!(cc_count(ns(30_000, 1001)), 20);
        assert_eq!(cc_count(ns(30, 1)), 20);
        assert_eq!(cc_count(ns(25, 1)), 24);
        assert_eq!(cc_count(ns(50, 1)), 12);
        assert_eq!(cc_count(ns(60_000, 1001)), 10);
        assert_eq!(cc_count(ns(60, 1)), 10);
    }

    #[test]
    fn cc_data_is_our_pairs_then_fillers_then_padding() {
        let data = cc_data(Field::ONE, &[[0x94, 0x20]], 3);
        assert_eq!(data, [0xFC, 0x94, 0x20, 0xF9, 0x80, 0x80, 0xFA, 0, 0]);
        assert_eq!(cc_data(Field::TWO, &[[1, 2]], 1), [0xFD, 1, 2]);
    }

    #[test]
    fn the_sei_is_escaped_and_goes_before_the_first_slice() {
        // AUD, SPS, then an IDR slice, length-prefixed (4 bytes).
        let unit = |bytes: &[u8]| {
            let mut u = (bytes.len() as u32).to_be_bytes().to_vec();
            u.extend(bytes);
            u
        };
        let au: Vec<u8> = [
            unit(&[0x09, 0xF0]),
            unit(&[0x67, 1, 2]),
            unit(&[0x65, 9, 9]),
        ]
        .concat();
        let nal = sei_nal(Codec::H264, &cc_data(Field::ONE, &[[0, 0]], 2));
        // The pair 00 00 followed by 0xFA is fine; 00 00 00 would not be.
        assert!(!nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 3));
        let out = insert(&au, Codec::H264, Framing::Length(4), &nal).expect("inserted");
        let expected = [
            unit(&[0x09, 0xF0]),
            unit(&[0x67, 1, 2]),
            unit(&nal),
            unit(&[0x65, 9, 9]),
        ]
        .concat();
        assert_eq!(out, expected);
        assert_eq!(
            &out[out.len() - 7..],
            &unit(&[0x65, 9, 9])[..],
            "the slice untouched"
        );
    }

    #[test]
    fn byte_stream_units_are_found_by_start_code() {
        let au = [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x41, 7, 7];
        let out = insert(&au, Codec::H264, Framing::StartCodes, &[0x06, 0xAA]).expect("inserted");
        assert_eq!(
            out,
            [
                0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x06, 0xAA, 0, 0, 1, 0x41, 7, 7
            ]
        );
    }

    #[test]
    fn h265_slices_are_units_below_32_and_the_sei_is_a_prefix_sei() {
        let au = [0, 0, 0, 1, 0x40, 0x01, 5, 0, 0, 0, 1, 0x26, 0x01, 8];
        let nal = sei_nal(Codec::H265, &cc_data(Field::ONE, &[], 1));
        assert_eq!(&nal[..2], &[0x4E, 0x01]);
        let out = insert(&au, Codec::H265, Framing::StartCodes, &nal).expect("inserted");
        assert!(out.ends_with(&[0, 0, 0, 1, 0x26, 0x01, 8]));
    }

    #[test]
    fn our_field_is_taken_out_of_the_input_s_captions_the_rest_passes() {
        // An input SEI: a field 1 pair, a field 2 pair, a DTVCC triplet.
        let input_cc = [0xFC, 0x94, 0x20, 0xFD, 0x15, 0x20, 0xFF, 0x02, 0x21];
        let nal = sei_nal(Codec::H264, &input_cc);
        let mut au = vec![0, 0, 0, 1];
        au.extend(&nal);
        au.extend([0, 0, 0, 1, 0x65, 1, 2]);
        let out =
            without_field(&au, Codec::H264, Framing::StartCodes, Field::ONE).expect("changed");
        assert_eq!(out.len(), au.len());
        let (rbsp, _) = unescaped(&out[5..out.len() - 7]);
        let triplets: Vec<u8> = cc_triplets(&rbsp).into_iter().map(|i| rbsp[i]).collect();
        assert_eq!(
            triplets,
            [0xF8, 0xFD, 0xFF],
            "ours not valid, the others as they were"
        );
        assert!(without_field(&out, Codec::H264, Framing::StartCodes, Field::ONE).is_none());
        assert_eq!(
            &out[out.len() - 7..],
            &au[au.len() - 7..],
            "the slice untouched"
        );
    }

    #[test]
    fn a_lone_a53_sei_is_found_and_replaced_one_with_more_messages_is_not() {
        let cc = [0xFC, 0x94, 0x20, 0xFF, 0x02, 0x21];
        let nal = sei_nal(Codec::H264, &cc);
        let slice = [0, 0, 0, 4, 0x65, 0, 0, 1];
        let mut au = Vec::new();
        au.extend((nal.len() as u32).to_be_bytes());
        au.extend(&nal);
        au.extend(slice);
        let found = lone_cc_data(&au, Codec::H264, Framing::Length(4)).expect("found");
        assert_eq!(found.unit, 0..4 + nal.len());
        assert_eq!(found.triplets, [[0xFC, 0x94, 0x20], [0xFF, 0x02, 0x21]]);
        let longer = sei_nal(Codec::H264, &[0xFC, 0x80, 0x80, 0xFA, 0, 0, 0xFA, 0, 0]);
        let replaced = replace_unit(&au, Framing::Length(4), found.unit, &longer).expect("framed");
        assert_eq!(
            &replaced[replaced.len() - 8..],
            &slice,
            "the slice untouched"
        );
        let again = lone_cc_data(&replaced, Codec::H264, Framing::Length(4)).expect("found");
        assert_eq!(again.triplets.len(), 3);
        // An SEI with a second message (recovery point) is not ours to rewrite.
        let mut two = nal.clone();
        let trailing = two.pop();
        assert_eq!(trailing, Some(0x80));
        two.extend([6, 1, 0x84, 0x80]);
        let mut au = vec![0, 0, 0, 1];
        au.extend(&two);
        au.extend([0, 0, 0, 1, 0x65, 1, 2]);
        assert_eq!(lone_cc_data(&au, Codec::H264, Framing::StartCodes), None);
    }

    #[test]
    fn a_unit_that_runs_past_the_buffer_is_refused() {
        assert!(insert(&[0, 0, 0, 9, 0x65], Codec::H264, Framing::Length(4), &[6]).is_none());
        assert!(
            insert(&[0, 0, 0, 1, 0x09], Codec::H264, Framing::Length(4), &[6]).is_none(),
            "no slice"
        );
    }
}
