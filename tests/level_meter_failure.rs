// SPDX-License-Identifier: MPL-2.0

//! The level meter's decoder failing mid-stream (`segmentation=pauses`):
//! a warning, segments cut at segment-duration from then on, every frame
//! out untouched. avdec_aac shrugs off corrupt frames, so the fault is
//! injected: this binary's registry has no avdec_aac, and the AAC decoder
//! the meter falls back to is one that measures a few seconds of speech
//! with pauses, then fails. Its own test binary, as it changes the registry.

mod common;

use std::time::Duration;

use common::*;

const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Where in the stream the decoder fails, in ms.
const FAIL_AT_MS: u64 = 20_000;
/// The fake decoder's speech: this many frames long, then a pause.
const WORD_FRAMES: usize = 40;
const PAUSE_FRAMES: usize = 12; // 256 ms: over the 150 ms min-pause-duration

mod broken_decoder {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use gst::glib;
    use gst::prelude::*;
    use gst::subclass::prelude::*;

    use super::{FAIL_AT_MS, PAUSE_FRAMES, WORD_FRAMES};

    pub struct Imp {
        sink: gst::Pad,
        src: gst::Pad,
        channels: AtomicUsize,
    }

    impl Imp {
        /// Words and pauses up to FAIL_AT_MS, then an error. The meter
        /// decodes only the frames near a cut, so the words follow the
        /// frame's place in the stream, not the count decoded.
        fn chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let pts = buffer.pts().unwrap_or_default();
            if pts.mseconds() >= FAIL_AT_MS {
                return Err(gst::FlowError::Error);
            }
            let index = (pts.nseconds() * 48_000 / 1_000_000_000 / 1024) as usize;
            let speaking = index % (WORD_FRAMES + PAUSE_FRAMES) < WORD_FRAMES;
            let level: f32 = if speaking { 0.3 } else { 0.0 };
            let samples = 1024 * self.channels.load(Ordering::SeqCst).max(1);
            let bytes: Vec<u8> = (0..samples).flat_map(|_| level.to_le_bytes()).collect();
            let mut decoded = gst::Buffer::from_mut_slice(bytes);
            if let Some(b) = decoded.get_mut() {
                b.set_pts(buffer.pts());
                b.set_duration(buffer.duration());
            }
            self.src.push(decoded)
        }

        fn event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
            let gst::EventView::Caps(caps) = event.view() else {
                return gst::Pad::event_default(pad, Some(&*self.obj()), event);
            };
            let input = caps.caps().structure(0);
            let field = |name: &str| input.and_then(|s| s.get::<i32>(name).ok()).unwrap_or(0);
            self.channels
                .store(field("channels").max(0) as usize, Ordering::SeqCst);
            let decoded = gst::Caps::builder("audio/x-raw")
                .field("format", "F32LE")
                .field("layout", "interleaved")
                .field("rate", field("rate"))
                .field("channels", field("channels"))
                .build();
            self.src.push_event(gst::event::Caps::new(&decoded))
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Imp {
        const NAME: &'static str = "StsdubTestBrokenAacDec";
        type Type = BrokenAacDec;
        type ParentType = gst::Element;

        fn with_class(klass: &Self::Class) -> Self {
            let template = |name| klass.pad_template(name).expect("declared below");
            let sink = gst::Pad::builder_from_template(&template("sink"))
                .chain_function(|_, parent, buffer| {
                    Imp::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |d| d.chain(buffer),
                    )
                })
                .event_function(|pad, parent, event| {
                    Imp::catch_panic_pad_function(parent, || false, |d| d.event(pad, event))
                })
                .build();
            let src = gst::Pad::builder_from_template(&template("src")).build();
            Self {
                sink,
                src,
                channels: AtomicUsize::new(0),
            }
        }
    }

    impl ObjectImpl for Imp {
        fn constructed(&self) {
            self.parent_constructed();
            let element = self.obj();
            element.add_pad(&self.sink).expect("a new pad");
            element.add_pad(&self.src).expect("a new pad");
        }
    }

    impl GstObjectImpl for Imp {}

    impl ElementImpl for Imp {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: std::sync::LazyLock<gst::subclass::ElementMetadata> =
                std::sync::LazyLock::new(|| {
                    gst::subclass::ElementMetadata::new(
                        "Broken AAC decoder",
                        "Codec/Decoder/Audio",
                        "Decodes a while, then fails (a test fault)",
                        "stsdub tests",
                    )
                });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: std::sync::LazyLock<Vec<gst::PadTemplate>> =
                std::sync::LazyLock::new(|| {
                    let aac = gst::Caps::builder("audio/mpeg")
                        .field("mpegversion", 4i32)
                        .field("stream-format", "raw")
                        .build();
                    let raw = gst::Caps::builder("audio/x-raw")
                        .field("format", "F32LE")
                        .build();
                    [
                        ("sink", gst::PadDirection::Sink, aac),
                        ("src", gst::PadDirection::Src, raw),
                    ]
                    .into_iter()
                    .map(|(name, direction, caps)| {
                        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps)
                            .expect("a valid template")
                    })
                    .collect()
                });
            TEMPLATES.as_ref()
        }
    }

    glib::wrapper! {
        pub struct BrokenAacDec(ObjectSubclass<Imp>) @extends gst::Element, gst::Object;
    }

    /// Takes avdec_aac out of this process's registry and puts the broken
    /// decoder in as the best-ranked AAC decoder.
    pub fn install() {
        let registry = gst::Registry::get();
        if let Some(feature) = registry.lookup_feature("avdec_aac") {
            registry.remove_feature(&feature);
        }
        gst::Element::register(
            None,
            "stsdubtestbrokenaacdec",
            gst::Rank::PRIMARY + 1000,
            BrokenAacDec::static_type(),
        )
        .expect("registers");
    }
}

#[test]
fn a_level_meter_failing_mid_stream_warns_and_cuts_at_segment_duration_from_then_on() {
    let frames = 2813usize; // 60 s
    let (caps, buffers) = aac_frames(frames);
    broken_decoder::install();
    assert!(
        gst::ElementFactory::make("avdec_aac").build().is_err(),
        "avdec_aac is out of this process's registry"
    );
    let output = scratch("level-meter-failure.flv");
    let (running, src) = appsrc_to_stsdub(
        &caps,
        "",
        "segmentation=pauses segment-duration=6000",
        &output,
    );
    for buffer in buffers {
        src.push_buffer(buffer).expect("pushed");
    }
    src.end_of_stream().expect("eos");
    let run = running.finish(RUN_LIMIT);

    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    let failures: Vec<&String> = run
        .warnings
        .iter()
        .filter(|w| w.contains("level meter's AAC decoder failed"))
        .collect();
    assert_eq!(failures.len(), 1, "one warning: {:?}", run.warnings);
    assert_eq!(run.frames(), frames as u64, "every frame in a segment");
    assert_eq!(packets(&output, "a").len(), frames, "every frame out");

    // Segments that closed while the meter measured are cut in its pauses;
    // those that closed after it failed at segment-duration.
    let (before, after): (Vec<_>, Vec<_>) = run.segments.iter().partition(|s| {
        let end_ms = s.get::<u64>("pts").expect("pts") / 1_000_000
            + s.get::<u64>("duration-ms").expect("duration");
        end_ms < FAIL_AT_MS
    });
    let cuts = |segments: &[&gst::Structure]| -> Vec<String> {
        segments
            .iter()
            .map(|s| s.get::<String>("cut").expect("cut"))
            .collect()
    };
    let (before, after) = (cuts(&before), cuts(&after));
    assert!(
        before.len() >= 3 && before.iter().all(|c| c == "pause"),
        "cut at pauses while measured: {before:?}"
    );
    let (last, longest) = after.split_last().expect("segments after the failure");
    assert!(
        longest.len() >= 5 && longest[1..].iter().all(|c| c == "longest"),
        "cut at segment-duration once the meter failed: {after:?}"
    );
    assert_eq!(last, "eos");
}
