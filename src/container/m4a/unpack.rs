// SPDX-License-Identifier: MPL-2.0

//! Reading the AAC frames of an M4A: plain MP4 (stbl) or fragmented
//! (moof/trun), every offset and length checked against the bytes.

use std::ops::Range;

use super::{AAC_FRAME_SAMPLES, AacConfig, M4aError};

/// The AAC frames found in an M4A, as ranges into the bytes that were parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub config: AacConfig,
    pub frames: Vec<Range<usize>>,
    /// Encoder delay announced by an edit list; the caller drops it.
    pub priming_samples: u32,
}

impl Unpacked {
    /// Frames left once whole frames of announced encoder delay are dropped.
    pub fn presented_frames(&self) -> &[Range<usize>] {
        let skip = ((self.priming_samples + AAC_FRAME_SAMPLES / 2) / AAC_FRAME_SAMPLES) as usize;
        self.frames.get(skip..).unwrap_or(&[])
    }
}

/// Finds the first audio track of an M4A (plain or fragmented) and its frames.
pub fn unpack(data: &[u8]) -> Result<Unpacked, M4aError> {
    let top = children(data, 0..data.len())?;
    let moov = find(&top, b"moov").ok_or(M4aError::Missing("moov box"))?;
    let track = audio_track(data, moov.body.clone())?;
    let mut frames = track.sample_table_frames(data)?;
    for moof in top.iter().filter(|b| &b.kind == b"moof") {
        frames.extend(fragment_frames(data, moof, &track)?);
    }
    if frames.is_empty() {
        return Err(M4aError::Missing("audio samples"));
    }
    Ok(Unpacked {
        config: track.config,
        frames,
        priming_samples: track.priming_samples,
    })
}

struct Track {
    id: u32,
    config: AacConfig,
    priming_samples: u32,
    stbl: Range<usize>,
    default_sample_size: u32,
}

#[derive(Clone)]
pub(super) struct Box_ {
    pub(super) kind: [u8; 4],
    pub(super) start: usize,
    pub(super) body: Range<usize>,
}

pub(super) fn children(data: &[u8], range: Range<usize>) -> Result<Vec<Box_>, M4aError> {
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos + 8 <= range.end {
        let size32 = be_u32(data, pos)? as usize;
        let kind: [u8; 4] = data[pos + 4..pos + 8]
            .try_into()
            .map_err(|_| M4aError::Truncated("box header"))?;
        let (header, size) = match size32 {
            0 => (8, range.end - pos),
            1 => (
                16,
                usize::try_from(be_u64(data, pos + 8)?)
                    .map_err(|_| M4aError::Invalid("box size"))?,
            ),
            n => (8, n),
        };
        if size < header || pos.checked_add(size).is_none_or(|end| end > range.end) {
            return Err(M4aError::Truncated("box"));
        }
        out.push(Box_ {
            kind,
            start: pos,
            body: pos + header..pos + size,
        });
        pos += size;
    }
    Ok(out)
}

pub(super) fn find<'a>(boxes: &'a [Box_], kind: &[u8; 4]) -> Option<&'a Box_> {
    boxes.iter().find(|b| &b.kind == kind)
}

fn find_path(
    data: &[u8],
    range: Range<usize>,
    path: &[&[u8; 4]],
) -> Result<Option<Box_>, M4aError> {
    let mut current: Option<Box_> = None;
    let mut within = range;
    for kind in path {
        let boxes = children(data, within)?;
        match find(&boxes, kind) {
            Some(b) => {
                within = b.body.clone();
                current = Some(b.clone());
            }
            None => return Ok(None),
        }
    }
    Ok(current)
}

fn audio_track(data: &[u8], moov: Range<usize>) -> Result<Track, M4aError> {
    for trak in children(data, moov.clone())?
        .iter()
        .filter(|b| &b.kind == b"trak")
    {
        let Some(hdlr) = find_path(data, trak.body.clone(), &[b"mdia", b"hdlr"])? else {
            continue;
        };
        if slice(data, hdlr.body.start + 8..hdlr.body.start + 12)? != b"soun" {
            continue;
        }
        let tkhd =
            find_path(data, trak.body.clone(), &[b"tkhd"])?.ok_or(M4aError::Missing("tkhd"))?;
        let id_at = if slice(data, tkhd.body.clone())?.first() == Some(&1) {
            20
        } else {
            12
        };
        let id = be_u32(data, tkhd.body.start + id_at)?;
        let stbl = find_path(data, trak.body.clone(), &[b"mdia", b"minf", b"stbl"])?
            .ok_or(M4aError::Missing("stbl"))?;
        let config = sample_entry_config(data, stbl.body.clone())?;
        let priming_samples = edit_list_priming(data, trak.body.clone())?;
        let default_sample_size = trex_default_size(data, moov.clone(), id)?;
        return Ok(Track {
            id,
            config,
            priming_samples,
            stbl: stbl.body,
            default_sample_size,
        });
    }
    Err(M4aError::Missing("audio track"))
}

fn sample_entry_config(data: &[u8], stbl: Range<usize>) -> Result<AacConfig, M4aError> {
    let stsd = find_path(data, stbl, &[b"stsd"])?.ok_or(M4aError::Missing("stsd"))?;
    let entries = children(data, stsd.body.start + 8..stsd.body.end)?;
    let mp4a = find(&entries, b"mp4a").ok_or(M4aError::Invalid("sample entry is not mp4a"))?;
    let version = be_u16(data, mp4a.body.start + 8)?;
    // AudioSampleEntry v0 is 28 bytes; QuickTime v1 adds 16, v2 adds 36.
    let fixed = match version {
        0 => 28,
        1 => 44,
        2 => 64,
        _ => return Err(M4aError::Invalid("sound sample entry version")),
    };
    let esds = find(
        &children(data, mp4a.body.start + fixed..mp4a.body.end)?,
        b"esds",
    )
    .cloned()
    .or(find_path(
        data,
        mp4a.body.start + fixed..mp4a.body.end,
        &[b"wave", b"esds"],
    )?)
    .ok_or(M4aError::Missing("esds"))?;
    let asc = decoder_specific_info(slice(data, esds.body.start + 4..esds.body.end)?)?;
    AacConfig::from_audio_specific_config(asc)
}

/// Walks ES_Descriptor → DecoderConfigDescriptor → DecoderSpecificInfo.
fn decoder_specific_info(mut es: &[u8]) -> Result<&[u8], M4aError> {
    let (tag, body) = read_descriptor(&mut es)?;
    if tag != 0x03 {
        return Err(M4aError::Invalid("esds does not start with ES_Descriptor"));
    }
    let flags = *body.get(2).ok_or(M4aError::Truncated("ES_Descriptor"))?;
    let mut skip = 3;
    if flags & 0x80 != 0 {
        skip += 2;
    }
    if flags & 0x40 != 0 {
        skip += 1 + usize::from(
            *body
                .get(skip)
                .ok_or(M4aError::Truncated("ES_Descriptor URL"))?,
        );
    }
    if flags & 0x20 != 0 {
        skip += 2;
    }
    let mut rest = body
        .get(skip..)
        .ok_or(M4aError::Truncated("ES_Descriptor"))?;
    while !rest.is_empty() {
        let (tag, body) = read_descriptor(&mut rest)?;
        if tag == 0x04 {
            let mut inner = body
                .get(13..)
                .ok_or(M4aError::Truncated("DecoderConfigDescriptor"))?;
            while !inner.is_empty() {
                let (tag, body) = read_descriptor(&mut inner)?;
                if tag == 0x05 {
                    return Ok(body);
                }
            }
        }
    }
    Err(M4aError::Missing("AudioSpecificConfig"))
}

fn read_descriptor<'a>(data: &mut &'a [u8]) -> Result<(u8, &'a [u8]), M4aError> {
    let (&tag, mut rest) = data
        .split_first()
        .ok_or(M4aError::Truncated("descriptor"))?;
    let mut len = 0usize;
    for _ in 0..4 {
        let (&byte, after) = rest
            .split_first()
            .ok_or(M4aError::Truncated("descriptor size"))?;
        rest = after;
        len = (len << 7) | usize::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            break;
        }
    }
    let body = rest
        .get(..len)
        .ok_or(M4aError::Truncated("descriptor body"))?;
    *data = &rest[len..];
    Ok((tag, body))
}

fn edit_list_priming(data: &[u8], trak: Range<usize>) -> Result<u32, M4aError> {
    let Some(elst) = find_path(data, trak, &[b"edts", b"elst"])? else {
        return Ok(0);
    };
    let version = *slice(data, elst.body.clone())?
        .first()
        .ok_or(M4aError::Truncated("elst"))?;
    let count = be_u32(data, elst.body.start + 4)?;
    if count == 0 {
        return Ok(0);
    }
    let media_time = if version == 1 {
        be_u64(data, elst.body.start + 16)? as i64
    } else {
        i64::from(be_u32(data, elst.body.start + 12)? as i32)
    };
    Ok(u32::try_from(media_time.max(0)).unwrap_or(0))
}

fn trex_default_size(data: &[u8], moov: Range<usize>, track_id: u32) -> Result<u32, M4aError> {
    let Some(mvex) = find_path(data, moov, &[b"mvex"])? else {
        return Ok(0);
    };
    for trex in children(data, mvex.body)?
        .iter()
        .filter(|b| &b.kind == b"trex")
    {
        if be_u32(data, trex.body.start + 4)? == track_id {
            return be_u32(data, trex.body.start + 16);
        }
    }
    Ok(0)
}

impl Track {
    fn sample_table_frames(&self, data: &[u8]) -> Result<Vec<Range<usize>>, M4aError> {
        let boxes = children(data, self.stbl.clone())?;
        let Some(stsz) = find(&boxes, b"stsz") else {
            return Ok(Vec::new());
        };
        let sizes = sample_sizes(data, stsz)?;
        if sizes.is_empty() {
            return Ok(Vec::new());
        }
        let offsets = chunk_offsets(data, &boxes)?;
        let stsc = find(&boxes, b"stsc").ok_or(M4aError::Missing("stsc"))?;
        let runs = read_entries(data, stsc, 12)?;
        let mut frames = Vec::with_capacity(sizes.len());
        let mut sample = 0usize;
        for (chunk_index, &chunk_offset) in offsets.iter().enumerate() {
            let chunk_number = chunk_index as u32 + 1;
            let per_chunk = runs
                .iter()
                .rev()
                .find(|&&at| be_u32(data, at).is_ok_and(|first| first <= chunk_number))
                .map(|&at| be_u32(data, at + 4))
                .transpose()?
                .ok_or(M4aError::Invalid("stsc does not cover chunk"))?;
            let mut pos = chunk_offset;
            for _ in 0..per_chunk {
                let Some(&size) = sizes.get(sample) else {
                    break;
                };
                frames.push(checked_range(data, pos, size)?);
                pos += size;
                sample += 1;
            }
        }
        if sample != sizes.len() {
            return Err(M4aError::Invalid("sample table counts disagree"));
        }
        Ok(frames)
    }
}

fn sample_sizes(data: &[u8], stsz: &Box_) -> Result<Vec<usize>, M4aError> {
    let fixed = be_u32(data, stsz.body.start + 4)? as usize;
    let count = be_u32(data, stsz.body.start + 8)? as usize;
    if count > data.len() {
        return Err(M4aError::Invalid("stsz sample count"));
    }
    (0..count)
        .map(|i| {
            if fixed != 0 {
                Ok(fixed)
            } else {
                be_u32(data, stsz.body.start + 12 + 4 * i).map(|s| s as usize)
            }
        })
        .collect()
}

fn chunk_offsets(data: &[u8], stbl: &[Box_]) -> Result<Vec<usize>, M4aError> {
    if let Some(stco) = find(stbl, b"stco") {
        read_entries(data, stco, 4)?
            .into_iter()
            .map(|at| be_u32(data, at).map(|o| o as usize))
            .collect()
    } else if let Some(co64) = find(stbl, b"co64") {
        read_entries(data, co64, 8)?
            .into_iter()
            .map(|at| {
                be_u64(data, at)
                    .and_then(|o| usize::try_from(o).map_err(|_| M4aError::Invalid("co64 offset")))
            })
            .collect()
    } else {
        Err(M4aError::Missing("stco"))
    }
}

/// Positions of the entries of a full box whose body is `count` + entries.
fn read_entries(data: &[u8], b: &Box_, entry_size: usize) -> Result<Vec<usize>, M4aError> {
    let count = be_u32(data, b.body.start + 4)? as usize;
    let first = b.body.start + 8;
    if count
        .checked_mul(entry_size)
        .is_none_or(|len| first + len > b.body.end)
    {
        return Err(M4aError::Truncated("sample table"));
    }
    Ok((0..count).map(|i| first + i * entry_size).collect())
}

fn fragment_frames(data: &[u8], moof: &Box_, track: &Track) -> Result<Vec<Range<usize>>, M4aError> {
    let mut frames = Vec::new();
    for traf in children(data, moof.body.clone())?
        .iter()
        .filter(|b| &b.kind == b"traf")
    {
        let boxes = children(data, traf.body.clone())?;
        let tfhd = find(&boxes, b"tfhd").ok_or(M4aError::Missing("tfhd"))?;
        let flags = be_u32(data, tfhd.body.start)? & 0x00ff_ffff;
        if be_u32(data, tfhd.body.start + 4)? != track.id {
            continue;
        }
        let mut at = tfhd.body.start + 8;
        let mut base = moof.start;
        if flags & 0x1 != 0 {
            base = usize::try_from(be_u64(data, at)?)
                .map_err(|_| M4aError::Invalid("base data offset"))?;
            at += 8;
        }
        if flags & 0x2 != 0 {
            at += 4;
        }
        if flags & 0x8 != 0 {
            at += 4;
        }
        let default_size = if flags & 0x10 != 0 {
            be_u32(data, at)?
        } else {
            track.default_sample_size
        };
        let mut next = None;
        for trun in boxes.iter().filter(|b| &b.kind == b"trun") {
            let run = trun_frames(data, trun, base, next, default_size)?;
            next = run.last().map(|r| r.end);
            frames.extend(run);
        }
    }
    Ok(frames)
}

fn trun_frames(
    data: &[u8],
    trun: &Box_,
    base: usize,
    continue_at: Option<usize>,
    default_size: u32,
) -> Result<Vec<Range<usize>>, M4aError> {
    let flags = be_u32(data, trun.body.start)? & 0x00ff_ffff;
    let count = be_u32(data, trun.body.start + 4)? as usize;
    let mut at = trun.body.start + 8;
    let mut pos = continue_at.unwrap_or(base);
    if flags & 0x1 != 0 {
        let offset = be_u32(data, at)? as i32;
        pos = usize::try_from(base as i64 + i64::from(offset))
            .map_err(|_| M4aError::Invalid("trun data offset"))?;
        at += 4;
    }
    if flags & 0x4 != 0 {
        at += 4;
    }
    let per_sample = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count()
        * 4;
    if count
        .checked_mul(per_sample)
        .is_none_or(|len| at + len > trun.body.end)
    {
        return Err(M4aError::Truncated("trun"));
    }
    // Without per-sample fields the count is bounded by nothing above: each
    // sample takes at least a byte of the file, so more than that is a lie
    // (and would be allocated before the first sample is read).
    if count > data.len() {
        return Err(M4aError::Invalid("trun sample count"));
    }
    let mut frames = Vec::with_capacity(count);
    for _ in 0..count {
        if flags & 0x100 != 0 {
            at += 4;
        }
        let size = if flags & 0x200 != 0 {
            let s = be_u32(data, at)?;
            at += 4;
            s
        } else {
            default_size
        };
        at += 4 * [0x400, 0x800].iter().filter(|&&f| flags & f != 0).count();
        if size == 0 {
            return Err(M4aError::Invalid("fragment sample without size"));
        }
        frames.push(checked_range(data, pos, size as usize)?);
        pos += size as usize;
    }
    Ok(frames)
}

fn checked_range(data: &[u8], start: usize, len: usize) -> Result<Range<usize>, M4aError> {
    match start.checked_add(len) {
        Some(end) if end <= data.len() && len > 0 => Ok(start..end),
        _ => Err(M4aError::Truncated("sample data")),
    }
}

fn slice(data: &[u8], range: Range<usize>) -> Result<&[u8], M4aError> {
    data.get(range).ok_or(M4aError::Truncated("box body"))
}

fn be_u16(data: &[u8], at: usize) -> Result<u16, M4aError> {
    let bytes = data.get(at..at + 2).ok_or(M4aError::Truncated("field"))?;
    Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn be_u32(data: &[u8], at: usize) -> Result<u32, M4aError> {
    let bytes = data.get(at..at + 4).ok_or(M4aError::Truncated("field"))?;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn be_u64(data: &[u8], at: usize) -> Result<u64, M4aError> {
    Ok((u64::from(be_u32(data, at)?) << 32) | u64::from(be_u32(data, at + 4)?))
}
