// SPDX-License-Identifier: MPL-2.0

//! The element's glue: subclass impls, pad functions, events, queries and
//! state changes; every concern beside it owns its data (see `mod.rs`, whose
//! documentation block is the element's).
//!
//! Lock order: `settings` before `state`; `stream_id` is a leaf, taken last
//! and never held while taking another. Nothing is pushed, posted or raised
//! (`element_imp_error!`, warnings, messages) while `settings` or `state` is
//! held: a bus sync handler runs in the posting thread and may read `stats`
//! (tested). `Condvar::notify_all` is the one call made with `state` held.

use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::category::CAT;
use super::levels::FrameLevelGate;
use super::properties::*;
use super::settings::*;
use super::state::*;
use crate::audio::driven_element::aac_config;
use crate::audio::reencode::Reencoder;
use crate::ops::buserrors;
use crate::ops::metrics::METRICS;

pub struct StsDub {
    pub(super) sink_pads: PerTrack<gst::Pad>,
    pub(super) src_pads: PerTrack<gst::Pad>,
    /// Each dubbed segment's words as timed text (`text.rs`).
    pub(super) text_src: gst::Pad,
    pub(super) text_out: super::text_out::TextOut,
    pub(super) settings: Mutex<Settings>,
    /// `stream-id` again, under a leaf lock: the bus-error tracer reads it
    /// from the posting thread, whatever else that thread holds.
    pub(super) stream_id: Mutex<String>,
    pub(super) state: Mutex<State>,
    /// Wakes a track's output task (and for audio, a blocked chain
    /// function): audio, a segment decided, an audio event queued; video, a
    /// video item queued, audio output advanced past its head, its clock
    /// wake; both, a flush. One per output task, so that what only one of
    /// them waits for does not wake the other: at hundreds of streams per
    /// process, needless wakeups were the largest cost.
    pub(super) changed: PerTrack<Condvar>,
    /// `segmentation=pauses`: each audio frame's levels, measured by the
    /// audio chain function outside `state`.
    pub(super) frame_levels: FrameLevelGate,
    /// The re-encoded output's decoder and encoder (`voiceover.rs`). Used
    /// by the audio_src task, reset at a flush and a stop: a leaf lock.
    pub(super) reencoder: Mutex<Option<Reencoder>>,
}

impl StsDub {
    pub(super) fn stream_id(&self) -> String {
        lock(&self.stream_id).clone()
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Waits, as `track`'s output task or chain function, for a change.
    pub(super) fn wait<'a>(
        &self,
        track: Track,
        guard: MutexGuard<'a, State>,
    ) -> MutexGuard<'a, State> {
        self.changed[track]
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes what waits on `track` (call with `state` held).
    pub(super) fn wake(&self, track: Track) {
        self.changed[track].notify_all();
    }

    /// Wakes both tracks' waiters: for what is rare or touches both.
    pub(super) fn wake_all(&self) {
        for changed in self.changed.iter() {
            changed.notify_all();
        }
    }

    /// Records upstream's latency and wakes both heads: the video head's due
    /// time depends on it, and a wake armed for the old one would be late.
    pub(super) fn note_upstream_latency(
        &self,
        state: &mut State,
        live: bool,
        latency: gst::ClockTime,
    ) {
        state.set_upstream(live, latency);
        self.wake_all();
    }

    /// What both chain functions check first: the upstream latency (until
    /// known), flushing, and a track already taken to be absent. The state,
    /// locked, when the buffer is to be taken.
    pub(super) fn admit_input(
        &self,
        track: Track,
    ) -> Result<MutexGuard<'_, State>, gst::FlowError> {
        let mut state = self.state();
        let unknown = match track {
            // Asked once, even when video's query already said whether it is live.
            Track::Audio => state.latency.upstream.is_none(),
            Track::Video => state.latency.live.is_none(),
        };
        if unknown {
            // The query crosses upstream elements: never with `state` held.
            // Locked once per buffer otherwise.
            drop(state);
            self.query_upstream_latency(track);
            state = self.state();
        }
        if state.tracks[track].flushing {
            return Err(gst::FlowError::Flushing);
        }
        if state.absence(track).declared() {
            return Err(self.late_for_absent_track(&mut state, track));
        }
        Ok(state)
    }

    pub(super) fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        let track = self.track(pad);
        gst::log!(CAT, obj = pad, "{track:?} event {event:?}");
        if event.is_serialized() && self.state().absence(track).declared() {
            gst::debug!(
                CAT,
                obj = pad,
                "{track:?} was declared absent: dropping {event:?}"
            );
            return true;
        }
        match event.view() {
            EventView::StreamStart(_) => {
                let mut state = self.state();
                state.absence(track).started();
                state.queue_event(track, event);
                self.wake_all();
                true
            }
            EventView::FlushStart(_) => {
                {
                    let mut state = self.state();
                    state.tracks[track].flushing = true;
                    state.abandon(track);
                    self.wake_all();
                }
                if track == Track::Audio {
                    self.text_out.set_flushing(true);
                    self.text_src.push_event(event.clone());
                    let _ = self.text_src.pause_task();
                }
                let forwarded = self.src_pad(track).push_event(event);
                let _ = self.src_pad(track).pause_task();
                forwarded
            }
            EventView::FlushStop(_) => {
                if track == Track::Audio {
                    self.text_src.push_event(event.clone());
                    self.text_out.set_flushing(false);
                }
                let forwarded = self.src_pad(track).push_event(event);
                if track == Track::Audio {
                    // The re-queued caps start a new one, on the new timeline.
                    *lock(&self.reencoder) = None;
                }
                {
                    let mut state = self.state();
                    state.abandon(track);
                    // Stream-start and caps may have been queued and dropped
                    // before they left: send them again ahead of new data.
                    for sticky in stream_identity(pad) {
                        state.queue_event(track, sticky);
                    }
                    state.tracks[track].flushing = false;
                }
                self.start_task(track);
                forwarded
            }
            EventView::Segment(segment) => {
                let Some(segment) = segment.segment().downcast_ref::<gst::ClockTime>().cloned()
                else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ["{track:?} segment is not in TIME format"]
                    );
                    return false;
                };
                let mut state = self.state();
                state.set_segment(track, segment);
                state.queue_event(track, event);
                self.wake_all();
                true
            }
            EventView::Caps(caps) if track == Track::Audio => match aac_config(caps.caps()) {
                Ok(config) => self.on_audio_caps(config, event),
                Err(message) => {
                    gst::element_imp_error!(self, gst::StreamError::Format, ["{message}"]);
                    false
                }
            },
            EventView::Caps(caps) if track == Track::Video => {
                if let Some(message) = super::track::refusal_of_video_sink_caps(caps.caps()) {
                    gst::element_imp_error!(self, gst::StreamError::WrongType, ["{message}"]);
                    return false;
                }
                self.queue_serialized(track, event)
            }
            EventView::Tag(_) if track == Track::Audio => {
                let mut state = self.state();
                let event = super::tags::in_target_language(event, &state.settings.target_language);
                state.audio_out.queue.push_event(event);
                self.wake_all();
                true
            }
            EventView::Eos(_) => {
                let mut state = self.state();
                if track == Track::Audio {
                    self.end_audio_input(&mut state);
                }
                let other = track.other();
                if state.absence(other).other_ended(|| self.dangling(other)) {
                    self.declare_absent(&mut state, other);
                }
                state.queue_event(track, event);
                self.wake_all();
                true
            }
            _ if event.is_serialized() => self.queue_serialized(track, event),
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn queue_serialized(&self, track: Track, event: gst::Event) -> bool {
        let mut state = self.state();
        state.queue_event(track, event);
        self.wake_all();
        true
    }

    // ----- video ----------------------------------------------------------

    /// Never waits: see `release.rs` for why video must not wait for audio.
    pub(super) fn video_chain(
        &self,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut state = self.admit_input(Track::Video)?;
        let running_time = state.video_running_time(&buffer);
        state.video.queue.push_back(VideoItem::Buffer(buffer));
        self.watch_absence(&mut state, Track::Audio, running_time);
        self.wake(Track::Video);
        Ok(gst::FlowSuccess::Ok)
    }

    // ----- queries and activation ----------------------------------------

    pub(super) fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(latency) = query.view_mut() {
            let track = self.track(pad);
            let sink = self.sink_pad(track);
            let mut upstream = gst::query::Latency::new();
            if !sink.peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = {
                let mut state = self.state();
                if track == Track::Audio {
                    self.note_upstream_latency(&mut state, live, min);
                }
                state.settings.latency_in_force()
            };
            if live {
                // Our queues never make upstream wait, so we can hold any
                // amount: no maximum. Upstream's maximum plus ours would be
                // below a parser's minimum on the other track (h264parse
                // gathering access units adds a frame; srtsrc reports its
                // maximum as its minimum), and a muxer then finds its
                // latency impossible to configure.
                latency.set(true, min + ours, gst::ClockTime::NONE);
            } else {
                latency.set(false, min, max);
            }
            gst::debug!(
                CAT,
                obj = pad,
                "latency query: live {live}, min {}",
                min + ours
            );
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    pub(super) fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        if let gst::EventView::Latency(latency) = event.view() {
            let mut state = self.state();
            state.latency.pipeline = Some(latency.latency());
            if let Some(health) = &state.report.health {
                health.set_grace(latency.latency().into());
            }
            gst::debug!(CAT, obj = pad, "pipeline latency {}", latency.latency());
            // A new latency moves every due time: a waiter armed for the old
            // one recomputes now rather than at its (possibly later) wake.
            self.wake_all();
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    pub(super) fn internal_link(&self, pad: &gst::Pad) -> gst::Iterator<gst::Pad> {
        let track = self.track(pad);
        let other = if pad.direction() == gst::PadDirection::Sink {
            self.src_pad(track)
        } else {
            self.sink_pad(track)
        };
        gst::Iterator::from_vec(vec![other.clone()])
    }

    pub(super) fn track(&self, pad: &gst::Pad) -> Track {
        Track::ALL
            .into_iter()
            .find(|track| pad == &self.sink_pads[*track] || pad == &self.src_pads[*track])
            .unwrap_or(Track::Video)
    }

    pub(super) fn src_pad(&self, track: Track) -> &gst::Pad {
        &self.src_pads[track]
    }

    pub(super) fn sink_pad(&self, track: Track) -> &gst::Pad {
        &self.sink_pads[track]
    }

    pub(super) fn check_settings(&self, settings: &Settings) -> Result<(), gst::ErrorMessage> {
        if let Some(warning) = settings.validate()? {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ["{warning}"]);
        }
        Ok(())
    }
}

/// The sticky stream-start and caps events a sink pad has received.
fn stream_identity(pad: &gst::Pad) -> Vec<gst::Event> {
    let stream_start = pad
        .sticky_event::<gst::event::StreamStart>(0)
        .map(|e| e.event().to_owned());
    let caps = pad
        .sticky_event::<gst::event::Caps>(0)
        .map(|e| e.event().to_owned());
    stream_start.into_iter().chain(caps).collect()
}

#[glib::object_subclass]
impl ObjectSubclass for StsDub {
    const NAME: &'static str = "GstStsDub";
    type Type = super::StsDub;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let pad = |name: &str| {
            let template = klass
                .pad_template(name)
                .expect("pad templates are registered in pad_templates()");
            gst::Pad::builder_from_template(&template)
        };
        type Chain = fn(&StsDub, gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError>;
        let sink = |name: &str, chain: Chain, flags: gst::PadFlags| {
            pad(name)
                .chain_function(move |_, parent, buffer| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |imp| chain(imp, buffer),
                    )
                })
                .event_function(|pad, parent, event| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.sink_event(pad, event),
                    )
                })
                .iterate_internal_links_function(|pad, parent| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || gst::Iterator::from_vec(vec![]),
                        |imp| imp.internal_link(pad),
                    )
                })
                .flags(flags)
                .build()
        };
        let sink_pads = PerTrack::new(|track| match track {
            Track::Audio => sink("audio_sink", StsDub::audio_chain, gst::PadFlags::PROXY_CAPS),
            Track::Video => sink(
                "video_sink",
                StsDub::video_chain,
                gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION,
            ),
        });
        let src = |name: &str| {
            pad(name)
                .query_function(|pad, parent, query| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_query(pad, query),
                    )
                })
                .event_function(|pad, parent, event| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_event(pad, event),
                    )
                })
                .activatemode_function(|pad, parent, mode, active| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || Err(gst::loggable_error!(CAT, "panic in activation")),
                        |imp| {
                            if mode == gst::PadMode::Push {
                                imp.activate_src(pad, active)
                            } else {
                                Err(gst::loggable_error!(CAT, "only push mode is supported"))
                            }
                        },
                    )
                })
                .iterate_internal_links_function(|pad, parent| {
                    StsDub::catch_panic_pad_function(
                        parent,
                        || gst::Iterator::from_vec(vec![]),
                        |imp| imp.internal_link(pad),
                    )
                })
                .flags(gst::PadFlags::PROXY_CAPS)
                .build()
        };
        let src_pads = PerTrack::new(|track| src(&format!("{}_src", track.name())));
        let text_src = pad("text_src")
            .query_function(|pad, parent, query| {
                StsDub::catch_panic_pad_function(parent, || false, |imp| imp.text_query(pad, query))
            })
            .activatemode_function(|pad, parent, _, active| {
                StsDub::catch_panic_pad_function(
                    parent,
                    || Err(gst::loggable_error!(CAT, "panic in activation")),
                    |imp| imp.activate_text(pad, active),
                )
            })
            .build();
        Self {
            sink_pads,
            src_pads,
            text_src,
            text_out: Default::default(),
            settings: Mutex::new(Settings::default()),
            stream_id: Mutex::new(DEFAULT_STREAM_ID.into()),
            state: Mutex::new(State::default()),
            changed: PerTrack::default(),
            reencoder: Mutex::new(None),
            frame_levels: FrameLevelGate::default(),
        }
    }
}

impl ObjectImpl for StsDub {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(param_specs);
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        if !settings.set(pspec.name(), value) {
            gst::warning!(CAT, imp = self, "unknown property {}", pspec.name());
            return;
        }
        match pspec.name() {
            PROP_STREAM_ID => *lock(&self.stream_id) = settings.stream_id.clone(),
            PROP_LATENCY => {
                drop(settings);
                let _ = self
                    .obj()
                    .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
            }
            _ => {}
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            PROP_STATS => return self.stats().to_value(),
            // From its leaf lock: the bus-error tracer reads it while this
            // element posts.
            PROP_STREAM_ID => return self.stream_id().to_value(),
            _ => {}
        }
        lock(&self.settings)
            .get(pspec.name())
            .unwrap_or_else(|| glib::Value::from_type(pspec.value_type()))
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        for track in Track::ALL {
            for pad in [&self.sink_pads[track], &self.src_pads[track]] {
                obj.add_pad(pad)
                    .expect("pads are added once, at construction");
            }
        }
        obj.add_pad(&self.text_src)
            .expect("pads are added once, at construction");
    }
}

impl GstObjectImpl for StsDub {}

impl ElementImpl for StsDub {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Speech-to-speech dubbing",
                "Filter/Audio/Video",
                "Dubs AAC audio through a remote speech-to-speech service over Socket.IO, in segments, \
                 falling back to the original audio when the service is late or gone; video passes \
                 through, held in step with its audio",
                "stsdub developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let aac = gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .field("framed", true)
                .build();
            let template = |name: &str, direction, caps: &gst::Caps| {
                gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
                    .expect("static pad templates are valid")
            };
            vec![
                template("audio_sink", gst::PadDirection::Sink, &aac),
                template("audio_src", gst::PadDirection::Src, &aac),
                template("video_sink", gst::PadDirection::Sink, &gst::Caps::new_any()),
                template("video_src", gst::PadDirection::Src, &gst::Caps::new_any()),
                template("text_src", gst::PadDirection::Src, &super::text_out::caps()),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn post_message(&self, message: gst::Message) -> bool {
        if message.type_() == gst::MessageType::Error && !buserrors::active() {
            METRICS
                .gst_bus_errors_total
                .with_label_values(&[&self.stream_id()])
                .inc();
        }
        self.parent_post_message(message)
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        gst::debug!(CAT, imp = self, "{transition:?}");
        if transition == gst::StateChange::ReadyToPaused {
            self.start_stream()?;
        }
        let result = self.parent_change_state(transition)?;
        self.report_phase(transition);
        if transition == gst::StateChange::PausedToReady {
            self.stop_stream();
        }
        Ok(result)
    }
}
