//! M4A (MPEG-4 audio, ISO BMFF) packing and unpacking in memory, for one AAC
//! track. Pure: no GStreamer, no I/O.
//!
//! Why our own and not a crate: we need exactly one thing, an `mp4a` track with
//! a correct `esds`, and its inverse for whatever an STS returns (plain MP4 with
//! `stbl`, or fragmented MP4 with `moof`/`trun`). The `mp4` crate writes a
//! malformed `esds`; `shiguredo_mp4` is sound but its API is still moving
//! between canary releases. A few hundred lines with bounds checks everywhere,
//! tested against ffprobe and qtdemux, are easier to keep correct.

use std::fmt;
use std::ops::Range;

/// Samples per AAC-LC frame; every frame we pack has this duration.
pub const AAC_FRAME_SAMPLES: u32 = 1024;

/// What describes the AAC stream: the AudioSpecificConfig and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    pub audio_specific_config: Vec<u8>,
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AacConfig {
    /// How long one AAC frame (1024 samples) lasts at this rate, in ns,
    /// rounded down.
    pub fn frame_duration_ns(&self) -> u64 {
        u64::from(AAC_FRAME_SAMPLES) * 1_000_000_000 / u64::from(self.sample_rate.max(1))
    }

    /// Reads the fields we need from an AudioSpecificConfig (ISO 14496-3 1.6.2.1).
    pub fn from_audio_specific_config(asc: &[u8]) -> Result<Self, M4aError> {
        let mut bits = BitReader::new(asc);
        let mut object_type = bits.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + bits.read(6)? as u8;
        }
        let index = bits.read(4)? as usize;
        let sample_rate = if index == 0xf {
            bits.read(24)?
        } else {
            *SAMPLE_RATES
                .get(index)
                .ok_or(M4aError::Invalid("reserved sampling frequency index"))?
        };
        let channels = bits.read(4)? as u8;
        if sample_rate == 0 {
            return Err(M4aError::Invalid("sample rate 0"));
        }
        Ok(Self {
            audio_specific_config: asc.to_vec(),
            object_type,
            sample_rate,
            channels,
        })
    }

    /// Builds the AudioSpecificConfig of a plain AAC-LC stream.
    pub fn aac_lc(sample_rate: u32, channels: u8) -> Result<Self, M4aError> {
        let index = SAMPLE_RATES
            .iter()
            .position(|&r| r == sample_rate)
            .ok_or(M4aError::Invalid("sample rate has no AAC frequency index"))?
            as u16;
        let asc = (2u16 << 11) | (index << 7) | (u16::from(channels & 0xf) << 3);
        Self::from_audio_specific_config(&asc.to_be_bytes())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum M4aError {
    Truncated(&'static str),
    Missing(&'static str),
    Invalid(&'static str),
}

impl fmt::Display for M4aError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            M4aError::Truncated(what) => write!(f, "M4A truncated in {what}"),
            M4aError::Missing(what) => write!(f, "M4A has no {what}"),
            M4aError::Invalid(what) => write!(f, "M4A invalid: {what}"),
        }
    }
}

impl std::error::Error for M4aError {}

/// Packs AAC frames (raw, no ADTS) into a faststart M4A file.
///
/// `priming_samples` is written as an edit list so decoders drop encoder delay;
/// segments cut from a stream have none.
pub fn pack<F: AsRef<[u8]>>(config: &AacConfig, frames: &[F], priming_samples: u32) -> Vec<u8> {
    let samples = frames.len() as u64 * u64::from(AAC_FRAME_SAMPLES);
    let presented = samples.saturating_sub(u64::from(priming_samples)) as u32;
    let media_duration = samples as u32;
    let payload: usize = frames.iter().map(|f| f.as_ref().len()).sum();

    let ftyp = boxed(
        b"ftyp",
        &[&b"M4A "[..], &0u32.to_be_bytes(), b"M4A ", b"mp42", b"isom"].concat(),
    );
    // The chunk offset depends on the moov size, which does not depend on the
    // offset's value: build once with 0 to measure, then for real.
    let moov_len = moov(
        config,
        frames,
        0,
        media_duration,
        presented,
        priming_samples,
    )
    .len();
    let mdat_payload_offset = ftyp.len() + moov_len + 8;
    let moov = moov(
        config,
        frames,
        mdat_payload_offset as u32,
        media_duration,
        presented,
        priming_samples,
    );

    let mut out = Vec::with_capacity(mdat_payload_offset + payload);
    out.extend_from_slice(&ftyp);
    out.extend_from_slice(&moov);
    out.extend_from_slice(&((payload + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    for frame in frames {
        out.extend_from_slice(frame.as_ref());
    }
    out
}

fn moov<F: AsRef<[u8]>>(
    config: &AacConfig,
    frames: &[F],
    chunk_offset: u32,
    media_duration: u32,
    presented: u32,
    priming: u32,
) -> Vec<u8> {
    let timescale = config.sample_rate;
    let mvhd = full_box(
        b"mvhd",
        0,
        0,
        &[
            &[0u8; 8][..],
            &timescale.to_be_bytes(),
            &presented.to_be_bytes(),
            &0x0001_0000u32.to_be_bytes(),
            &0x0100u16.to_be_bytes(),
            &[0u8; 10],
            &UNITY_MATRIX,
            &[0u8; 24],
            &2u32.to_be_bytes(),
        ]
        .concat(),
    );
    let tkhd = full_box(
        b"tkhd",
        0,
        0x7,
        &[
            &[0u8; 8][..],
            &1u32.to_be_bytes(),
            &[0u8; 4],
            &presented.to_be_bytes(),
            &[0u8; 8],
            &[0u8; 4],
            &0x0100u16.to_be_bytes(),
            &[0u8; 2],
            &UNITY_MATRIX,
            &[0u8; 8],
        ]
        .concat(),
    );
    let edts = if priming > 0 {
        let elst = full_box(
            b"elst",
            0,
            0,
            &[
                &1u32.to_be_bytes()[..],
                &presented.to_be_bytes(),
                &priming.to_be_bytes(),
                &0x0001_0000u32.to_be_bytes(),
            ]
            .concat(),
        );
        boxed(b"edts", &elst)
    } else {
        Vec::new()
    };
    let mdhd = full_box(
        b"mdhd",
        0,
        0,
        &[
            &[0u8; 8][..],
            &timescale.to_be_bytes(),
            &media_duration.to_be_bytes(),
            &0x55c4u16.to_be_bytes(), // "und"
            &[0u8; 2],
        ]
        .concat(),
    );
    let hdlr = full_box(
        b"hdlr",
        0,
        0,
        &[&[0u8; 4][..], b"soun", &[0u8; 12], b"SoundHandler\0"].concat(),
    );
    let smhd = full_box(b"smhd", 0, 0, &[0u8; 4]);
    let dref = full_box(
        b"dref",
        0,
        0,
        &[&1u32.to_be_bytes()[..], &full_box(b"url ", 0, 1, &[])].concat(),
    );
    let dinf = boxed(b"dinf", &dref);
    let stbl = boxed(
        b"stbl",
        &[
            stsd(config),
            full_box(
                b"stts",
                0,
                0,
                &[
                    &1u32.to_be_bytes()[..],
                    &(frames.len() as u32).to_be_bytes(),
                    &AAC_FRAME_SAMPLES.to_be_bytes(),
                ]
                .concat(),
            ),
            full_box(
                b"stsc",
                0,
                0,
                &[
                    &1u32.to_be_bytes()[..],
                    &1u32.to_be_bytes(),
                    &(frames.len() as u32).to_be_bytes(),
                    &1u32.to_be_bytes(),
                ]
                .concat(),
            ),
            stsz(frames),
            full_box(
                b"stco",
                0,
                0,
                &[&1u32.to_be_bytes()[..], &chunk_offset.to_be_bytes()].concat(),
            ),
        ]
        .concat(),
    );
    let minf = boxed(b"minf", &[smhd, dinf, stbl].concat());
    let mdia = boxed(b"mdia", &[mdhd, hdlr, minf].concat());
    let trak = boxed(b"trak", &[tkhd, edts, mdia].concat());
    boxed(b"moov", &[mvhd, trak].concat())
}

fn stsz<F: AsRef<[u8]>>(frames: &[F]) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + 4 * frames.len());
    body.extend_from_slice(&0u32.to_be_bytes());
    body.extend_from_slice(&(frames.len() as u32).to_be_bytes());
    for frame in frames {
        body.extend_from_slice(&(frame.as_ref().len() as u32).to_be_bytes());
    }
    full_box(b"stsz", 0, 0, &body)
}

fn stsd(config: &AacConfig) -> Vec<u8> {
    let rate_16_16 = if config.sample_rate < 65536 {
        config.sample_rate << 16
    } else {
        0
    };
    let mp4a = boxed(
        b"mp4a",
        &[
            &[0u8; 6][..],
            &1u16.to_be_bytes(), // data reference index
            &[0u8; 8],
            &u16::from(config.channels).to_be_bytes(),
            &16u16.to_be_bytes(),
            &[0u8; 4],
            &rate_16_16.to_be_bytes(),
            &esds(&config.audio_specific_config),
        ]
        .concat(),
    );
    full_box(b"stsd", 0, 0, &[&1u32.to_be_bytes()[..], &mp4a].concat())
}

/// ES_Descriptor → DecoderConfigDescriptor (AAC, audio stream) →
/// DecoderSpecificInfo (the ASC), plus the mandatory SLConfigDescriptor.
fn esds(asc: &[u8]) -> Vec<u8> {
    let decoder_specific = descriptor(0x05, asc);
    let decoder_config = descriptor(
        0x04,
        &[
            &[0x40u8, 0x15][..], // MPEG-4 audio; streamType audio, upStream 0, reserved 1
            &[0u8; 3],           // bufferSizeDB
            &0u32.to_be_bytes(), // maxBitrate (unknown)
            &0u32.to_be_bytes(), // avgBitrate (unknown)
            &decoder_specific,
        ]
        .concat(),
    );
    let sl_config = descriptor(0x06, &[0x02]);
    let es = descriptor(
        0x03,
        &[&1u16.to_be_bytes()[..], &[0u8], &decoder_config, &sl_config].concat(),
    );
    full_box(b"esds", 0, 0, &es)
}

fn descriptor(tag: u8, body: &[u8]) -> Vec<u8> {
    // Four-byte expandable size, as most muxers write it; always valid.
    let len = body.len() as u32;
    let mut out = vec![
        tag,
        0x80 | ((len >> 21) & 0x7f) as u8,
        0x80 | ((len >> 14) & 0x7f) as u8,
        0x80 | ((len >> 7) & 0x7f) as u8,
        (len & 0x7f) as u8,
    ];
    out.extend_from_slice(body);
    out
}

const UNITY_MATRIX: [u8; 36] = [
    0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0x40, 0, 0, 0,
];

fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let header = (u32::from(version) << 24) | (flags & 0x00ff_ffff);
    boxed(kind, &[&header.to_be_bytes()[..], body].concat())
}

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
struct Box_ {
    kind: [u8; 4],
    start: usize,
    body: Range<usize>,
}

fn children(data: &[u8], range: Range<usize>) -> Result<Vec<Box_>, M4aError> {
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

fn find<'a>(boxes: &'a [Box_], kind: &[u8; 4]) -> Option<&'a Box_> {
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

struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, bit: 0 }
    }

    fn read(&mut self, count: usize) -> Result<u32, M4aError> {
        let mut value = 0u32;
        for _ in 0..count {
            let byte = self
                .data
                .get(self.bit / 8)
                .ok_or(M4aError::Truncated("AudioSpecificConfig"))?;
            value = (value << 1) | u32::from((byte >> (7 - self.bit % 8)) & 1);
            self.bit += 1;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(count: usize) -> Vec<Vec<u8>> {
        (0..count).map(|i| vec![i as u8; 100 + i % 7]).collect()
    }

    #[test]
    fn config_from_aac_lc_asc() {
        let config = AacConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
        assert_eq!(
            (config.object_type, config.sample_rate, config.channels),
            (2, 44100, 2)
        );
        assert_eq!(AacConfig::aac_lc(44100, 2).unwrap(), config);
        assert_eq!(
            AacConfig::aac_lc(48000, 1).unwrap().audio_specific_config,
            vec![0x11, 0x88]
        );
    }

    #[test]
    fn pack_then_unpack_gives_the_same_frames() {
        let config = AacConfig::aac_lc(48000, 2).unwrap();
        let input = frames(282);
        let m4a = pack(&config, &input, 0);
        let unpacked = unpack(&m4a).unwrap();
        assert_eq!(unpacked.config, config);
        assert_eq!(unpacked.priming_samples, 0);
        let out: Vec<&[u8]> = unpacked.frames.iter().map(|r| &m4a[r.clone()]).collect();
        assert_eq!(out, input.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    #[test]
    fn priming_is_written_and_honoured() {
        let config = AacConfig::aac_lc(44100, 1).unwrap();
        let m4a = pack(&config, &frames(10), 1024);
        let unpacked = unpack(&m4a).unwrap();
        assert_eq!(unpacked.priming_samples, 1024);
        assert_eq!(unpacked.presented_frames().len(), 9);
        assert_eq!(unpacked.presented_frames()[0], unpacked.frames[1]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let m4a = pack(&AacConfig::aac_lc(48000, 2).unwrap(), &frames(5), 0);
        for len in 0..m4a.len() {
            assert!(unpack(&m4a[..len]).is_err(), "truncated at {len} accepted");
        }
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(unpack(b"not an mp4 at all, just some text").is_err());
        assert!(unpack(&[0xff; 64]).is_err());
        assert!(unpack(&[]).is_err());
    }

    #[test]
    fn fragmented_mp4_is_unpacked() {
        // init: ftyp + moov with mvex/trex; one moof+mdat with sizes in trun.
        let config = AacConfig::aac_lc(48000, 2).unwrap();
        let plain = pack(&config, &Vec::<Vec<u8>>::new(), 0);
        let top = children(&plain, 0..plain.len()).unwrap();
        let moov = find(&top, b"moov").unwrap();
        let trex = full_box(
            b"trex",
            0,
            0,
            &[1u32, 1, 1024, 0, 0]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect::<Vec<_>>(),
        );
        let mvex = boxed(b"mvex", &trex);
        let moov_fragmented = boxed(b"moov", &[&plain[moov.body.clone()], &mvex[..]].concat());
        let samples = frames(3);
        let trun_body_len = 4 + 4 + 4 + 3 * 4;
        let tfhd = full_box(b"tfhd", 0, 0x20000, &1u32.to_be_bytes());
        let traf_len = 8 + tfhd.len() + 8 + trun_body_len;
        let moof_len = 8 + 16 + traf_len;
        let data_offset = (moof_len + 8) as u32;
        let trun = full_box(
            b"trun",
            0,
            0x201,
            &[&3u32.to_be_bytes()[..], &data_offset.to_be_bytes()]
                .into_iter()
                .chain(
                    samples
                        .iter()
                        .map(|s| (s.len() as u32).to_be_bytes())
                        .collect::<Vec<_>>()
                        .iter()
                        .map(|b| &b[..]),
                )
                .flatten()
                .copied()
                .collect::<Vec<_>>(),
        );
        let moof = boxed(
            b"moof",
            &[
                full_box(b"mfhd", 0, 0, &1u32.to_be_bytes()),
                boxed(b"traf", &[tfhd, trun].concat()),
            ]
            .concat(),
        );
        assert_eq!(moof.len(), moof_len);
        let mdat = boxed(b"mdat", &samples.concat());
        let ftyp = boxed(b"ftyp", b"iso6\0\0\0\0iso6");
        let file = [ftyp, moov_fragmented, moof, mdat].concat();
        let unpacked = unpack(&file).unwrap();
        let out: Vec<&[u8]> = unpacked.frames.iter().map(|r| &file[r.clone()]).collect();
        assert_eq!(out, samples.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }
}
