// SPDX-License-Identifier: MPL-2.0

//! Writing a faststart M4A of one AAC track: ftyp, moov (with the esds
//! the decoder needs and an edit list for priming), mdat.

use super::{AAC_FRAME_SAMPLES, AacConfig};

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

pub(super) fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

pub(super) fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let header = (u32::from(version) << 24) | (flags & 0x00ff_ffff);
    boxed(kind, &[&header.to_be_bytes()[..], body].concat())
}
