// SPDX-License-Identifier: MPL-2.0

//! Broadcast MPEG-TS material and its readings: the marks sample with
//! SCTE-35 cues, DVB subtitles and teletext (made with GStreamer, their PMT
//! set by `tests/interop/ts_pmt.py`), and what ffprobe, threefive and that
//! script read of a TS.

use std::path::{Path, PathBuf};

use gst::prelude::*;

use super::{codecs, marks_sample, scratch, stream_packets};

/// Plays a pipeline that makes a test file to its end, within 60 s.
#[track_caller]
pub fn run_to_eos(pipeline: &gst::Element) {
    let _ = pipeline.set_state(gst::State::Playing);
    let bus = pipeline.bus().expect("a bus");
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    assert!(
        matches!(
            end.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{end:?}"
    );
}

/// One teletext PES payload (ETSI EN 300 472): data_identifier 0x10 and
/// three EBU teletext data units of 44 bytes (the size that fills one TS
/// packet with the 36-byte PES header the standard asks for), their text
/// rows numbered by `index` so that every payload differs.
pub fn teletext_payload(index: u8) -> Vec<u8> {
    let mut payload = vec![0x10];
    for unit in 0..3u8 {
        // data_unit_id 0x02 (EBU Teletext), length 44; field 1, line 7 + unit;
        // the framing code; magazine 1, packet `unit + 20` as Hamming 8/4
        // would carry them (the bytes are carried, not read).
        payload.extend([0x02, 0x2C, 0xE0 | (7 + unit), 0xE4, 0x02, 0x15 + unit]);
        payload.extend((0..40u8).map(|i| 0x20 + (index.wrapping_mul(7).wrapping_add(i)) % 0x5F));
    }
    payload
}

/// The PIDs of [`ts_with_subtitles`]' DVB subtitles and teletext, not
/// those mpegtsmux would choose by itself.
pub const SUBTITLE_PIDS: [u16; 2] = [0x150, 0x151];

/// Their ES_info as a broadcaster's PMT has it: a DVB subtitling
/// descriptor (eng, normal subtitles, composition page 1, ancillary page
/// 1) and a teletext descriptor (deu, subtitle page 888).
pub const SUBTITLE_DESCRIPTORS: [&str; 2] = ["5908656e6710000100 01", "5605 646575 10 88"];

/// `tests/interop/ts_pmt.py` (the PMT read and written by a script of its
/// own, not by the worker's code) with `args`; its output.
pub fn ts_pmt(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/ts_pmt.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "ts_pmt.py {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The marks sample, `seconds` long, as MPEG-TS written by mpegtsmux:
/// with SCTE-35 splice_insert cues (out of network, 10 s breaks) at each
/// of `cues` (s; the event id is the second), and with `subtitles`, a DVB
/// subtitle stream (GStreamer's dvbsubenc: a test pattern every 2 s) and
/// a teletext stream (one payload a second through an appsrc: no teletext
/// encoder is installable here) on PIDs of their own, their PMT entries
/// then given a broadcaster's descriptors ([`SUBTITLE_DESCRIPTORS`]:
/// mpegtsmux writes a subtitling descriptor for teletext too).
pub fn marks_ts(seconds: u32, cues: &[u64], subtitles: bool) -> PathBuf {
    let cue_names: String = cues.iter().map(|c| format!("-cue{c}")).collect();
    let name = format!(
        "marks-{seconds}s{cue_names}{}.ts",
        if subtitles { "-dvbsub-teletext" } else { "" }
    );
    let output = scratch(&name);
    if output.exists() {
        return output;
    }
    let subtitle_branches = if subtitles {
        format!(
            "videotestsrc pattern=smpte num-buffers={} ! video/x-raw,width=200,height=40,framerate=1/2 \
             ! videobox border-alpha=0 left=-260 right=-260 top=-500 bottom=-36 ! videoconvert \
             ! video/x-raw,format=AYUV ! dvbsubenc ! queue ! mux.sink_{} \
             appsrc name=teletext format=time caps=application/x-teletext ! queue ! mux.sink_{} ",
            seconds / 2,
            SUBTITLE_PIDS[0],
            SUBTITLE_PIDS[1]
        )
    } else {
        String::new()
    };
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux name=q q.video_0 ! queue ! h264parse ! mux. \
         q.audio_0 ! queue ! aacparse ! mux. {subtitle_branches}\
         mpegtsmux name=mux scte-35-pid=500 ! filesink location={}",
        marks_sample(seconds).display(),
        output.display()
    ))
    .expect("the launch line parses");
    let bin = pipeline.downcast_ref::<gst::Bin>().expect("a bin");
    if subtitles {
        push_teletext(bin, seconds);
    }
    send_cues(bin, cues);
    run_to_eos(&pipeline);
    if subtitles {
        let location = output.to_string_lossy();
        for (pid, descriptors) in SUBTITLE_PIDS.iter().zip(SUBTITLE_DESCRIPTORS) {
            let pid = pid.to_string();
            let args = [
                &["set", &location, &pid][..],
                &descriptors.split(' ').collect::<Vec<_>>(),
            ]
            .concat();
            ts_pmt(&args);
        }
    }
    output
}

/// One teletext payload a second into the appsrc `teletext` of `bin`.
fn push_teletext(bin: &gst::Bin, seconds: u32) {
    let teletext = bin
        .by_name("teletext")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .expect("the teletext appsrc");
    for second in 0..seconds.min(255) as u8 {
        let mut buffer = gst::Buffer::from_slice(teletext_payload(second));
        let b = buffer.get_mut().expect("a new buffer");
        b.set_pts(gst::ClockTime::from_seconds(u64::from(second)));
        b.set_duration(gst::ClockTime::SECOND);
        teletext.push_buffer(buffer).expect("queued");
    }
    teletext.end_of_stream().expect("queued");
}

/// The packets of subtitle stream `index` of `file`: (PTS in s from the
/// first video frame's, MD5 of the payload).
pub fn subtitle_packets(file: &Path, index: usize) -> Vec<(f64, String)> {
    let first_video = ffprobe_pts(file, "v:0").first().copied().unwrap_or(0.0);
    let stream = format!("s:{index}");
    let pts = ffprobe_pts(file, &stream);
    let hashes = stream_packets(file, &stream);
    assert_eq!(pts.len(), hashes.len(), "{stream}");
    pts.into_iter()
        .zip(hashes)
        .map(|(pts, packet)| (pts - first_video, packet.md5))
        .collect()
}

/// Every packet's PTS (s) of `stream` (ffprobe's stream specifier).
pub fn ffprobe_pts(file: &Path, stream: &str) -> Vec<f64> {
    ffprobe_entries(file, stream, "packet=pts_time")
        .iter()
        .filter_map(|l| l.trim_end_matches(',').parse().ok())
        .collect()
}

/// ffprobe's `entries` of `stream` of `file`, a line each, empty ones left out.
pub fn ffprobe_entries(file: &Path, stream: &str, entries: &str) -> Vec<String> {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream])
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// DVB subtitles and teletext of `input` in `output`: codecs, packets,
/// times, PIDs, descriptors.
#[track_caller]
pub fn assert_subtitles_carried(input: &Path, output: &Path) {
    let kinds =
        |file: &Path| -> std::collections::BTreeSet<String> { codecs(file).into_iter().collect() };
    let (kinds_in, kinds_out) = (kinds(input), kinds(output));
    for codec in ["dvb_subtitle", "dvb_teletext"] {
        assert!(
            kinds_in.contains(codec),
            "the input has {codec}: {kinds_in:?}"
        );
        assert!(kinds_out.contains(codec), "{codec} carried: {kinds_out:?}");
    }
    for index in 0..2 {
        let (before, after) = (
            subtitle_packets(input, index),
            subtitle_packets(output, index),
        );
        eprintln!(
            "subtitle stream {index}: {} packets in, {} out",
            before.len(),
            after.len()
        );
        assert_eq!(before.len(), after.len(), "stream {index}: every packet");
        for ((t_in, md5_in), (t_out, md5_out)) in before.iter().zip(&after) {
            assert_eq!(md5_in, md5_out, "stream {index}: the packet at {t_in} s");
            assert!(
                (t_in - t_out).abs() <= 0.000_1,
                "stream {index}: a packet at {t_in} s from the video's first frame comes out at {t_out} s"
            );
        }
    }
    let pids: Vec<String> = SUBTITLE_PIDS.iter().map(|p| format!("{p:#x}")).collect();
    assert_eq!(stream_pids(input, "s"), pids, "the input's PIDs");
    assert_eq!(stream_pids(output, "s"), pids, "the input's PIDs, kept");
    let es_info = |file: &Path| -> serde_json::Value {
        let dump = ts_pmt(&["dump", &file.to_string_lossy()]);
        serde_json::from_str(&dump).unwrap_or_else(|e| panic!("{e}: {dump}"))
    };
    let (info_in, info_out) = (es_info(input), es_info(output));
    for (pid, descriptors) in pids.iter().zip(SUBTITLE_DESCRIPTORS) {
        assert_eq!(
            info_in[pid],
            descriptors.replace(' ', ""),
            "the input's {pid}"
        );
        assert_eq!(
            info_out[pid], info_in[pid],
            "{pid} described as in the input, in every PMT"
        );
    }
}

/// The PIDs of the streams of `kind` (ffprobe's stream specifier letter),
/// each once (ffprobe lists a program's streams, then all streams).
pub fn stream_pids(file: &Path, kind: &str) -> Vec<String> {
    ffprobe_entries(file, kind, "stream=id")
        .into_iter()
        .fold(Vec::new(), |mut pids, pid| {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
            pids
        })
}

/// SCTE-35 cues made with GStreamer's own mpegts library, which
/// gstreamer-rs does not bind: loaded with dlopen (the MPEG-TS plugins
/// load it anyway), three of its functions called.
pub mod scte35 {
    use std::ffi::{CStr, c_void};

    use gst::glib::translate::ToGlibPtr;

    type SpliceOutNew = unsafe extern "C" fn(u32, u64, u64) -> *mut c_void;
    type SectionFromSit = unsafe extern "C" fn(*mut c_void, u16) -> *mut c_void;
    type SendEvent = unsafe extern "C" fn(*mut c_void, *mut gst::ffi::GstElement) -> i32;
    type Initialize = unsafe extern "C" fn();

    fn symbol(library: *mut c_void, name: &CStr) -> *mut c_void {
        // SAFETY: `library` is a handle dlopen returned; `name` is a C string.
        let found = unsafe { libc::dlsym(library, name.as_ptr()) };
        assert!(!found.is_null(), "{name:?} in libgstmpegts-1.0");
        found
    }

    /// Sends `muxer` (an mpegtsmux with `scte-35-pid` set) a splice_insert
    /// (out of network) cue `event_id` at running time `at`, `duration` long.
    pub fn send_splice_out(
        muxer: &gst::Element,
        event_id: u32,
        at: gst::ClockTime,
        duration: gst::ClockTime,
    ) {
        // SAFETY: the library and its symbols are GStreamer 1.22's, called
        // with the types its headers declare (gst/mpegts/gst-scte-section.h,
        // gstmpegtssection.h); the SIT and section are owned by the library
        // (send_event takes the section's reference).
        unsafe {
            let library = libc::dlopen(c"libgstmpegts-1.0.so.0".as_ptr(), libc::RTLD_NOW);
            assert!(
                !library.is_null(),
                "libgstmpegts-1.0.so.0 (gst-plugins-bad)"
            );
            let initialize: Initialize =
                std::mem::transmute(symbol(library, c"gst_mpegts_initialize"));
            let splice_out: SpliceOutNew =
                std::mem::transmute(symbol(library, c"gst_mpegts_scte_splice_out_new"));
            let from_sit: SectionFromSit =
                std::mem::transmute(symbol(library, c"gst_mpegts_section_from_scte_sit"));
            let send: SendEvent =
                std::mem::transmute(symbol(library, c"gst_mpegts_section_send_event"));
            initialize();
            let sit = splice_out(event_id, at.nseconds(), duration.nseconds());
            let section = from_sit(sit, 500);
            assert!(!section.is_null(), "an SCTE-35 section");
            send(section, muxer.to_glib_none().0);
        }
    }
}

/// The splice_insert cues of `file`, as threefive (an independent SCTE-35
/// parser) reads them: (event id, splice time in s on the file's PTS, its
/// pts_adjustment added, as a splicer adds it).
pub fn splice_cues(file: &Path) -> Vec<(u64, f64)> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    let script = "import json, sys, threefive\n\
        cues = []\n\
        def found(cue):\n\
        \x20   c = cue.command\n\
        \x20   if c.name == 'Splice Insert' and c.pts_time is not None:\n\
        \x20       at = (c.pts_time + cue.info_section.pts_adjustment) % (2**33 / 90000)\n\
        \x20       cues.append([c.splice_event_id, at])\n\
        threefive.Stream(sys.argv[1]).decode(func=found)\n\
        print(json.dumps(cues))";
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python runs (bash scripts/interop-setup.sh installs threefive)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or("[]");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The muxer `mux` of `bin` sends a cue at each of `cues` (s).
fn send_cues(bin: &gst::Bin, cues: &[u64]) {
    if cues.is_empty() {
        return;
    }
    let muxer = bin.by_name("mux").expect("the muxer");
    // mpegtsmux keeps one cue waiting: each is sent 5 s before its time,
    // as a cue is (the video's stamps are its running times here).
    let cues = std::sync::Mutex::new(
        cues.iter()
            .rev()
            .map(|c| (*c as u32, *c))
            .collect::<Vec<_>>(),
    );
    let parse = bin
        .iterate_elements()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "h264parse"))
        .expect("h264parse");
    let weak_muxer = muxer.downgrade();
    parse.static_pad("src").expect("a src pad").add_probe(
        gst::PadProbeType::BUFFER,
        move |_, info| {
            let pts = info.buffer().and_then(|b| b.pts());
            let Ok(mut cues) = cues.lock() else {
                return gst::PadProbeReturn::Ok;
            };
            if let (Some(pts), Some(&(id, at))) = (pts, cues.last())
                && pts + gst::ClockTime::from_seconds(5) >= gst::ClockTime::from_seconds(at)
                && let Some(muxer) = weak_muxer.upgrade()
            {
                scte35::send_splice_out(
                    &muxer,
                    id,
                    gst::ClockTime::from_seconds(at),
                    gst::ClockTime::from_seconds(10),
                );
                cues.pop();
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// The index of the video frame of `file` whose timestamp is `seconds`
/// (within half a frame at 25 fps); None when no frame is there.
pub fn video_frame_at(file: &Path, seconds: f64) -> Option<usize> {
    ffprobe_pts(file, "v:0")
        .into_iter()
        .position(|pts| (pts - seconds).abs() < 0.02)
}
