// SPDX-License-Identifier: MPL-2.0

//! Embedding stsdub in an application: several streams in one process, each
//! its own pipeline built with the API (no launch string), one shared tokio
//! runtime inside the plugin. A stream whose source fails is restarted after
//! a pause; Ctrl-C (or `--seconds N`) stops every stream with EOS first.
//!
//! ```text
//! cargo run --bin stsdub-multi-stream -- --sts-url http://127.0.0.1:8000 \
//!     --stream rtsp://cam1/stream=rtmp://server/live/one \
//!     --stream rtsp://cam2/stream=out/two.flv [--seconds 60] [--check]
//! ```
//!
//! An output ending in `.flv` is a file, anything else an RTMP URL.
//! `--streams-file PATH` reads more streams from a file, one per line:
//! `INPUT=OUTPUT` or `STREAM_ID INPUT=OUTPUT`, `#` comment lines (what the
//! Kubernetes multi-stream overlay mounts from a ConfigMap). `--check` only
//! checks the arguments and lists the streams. Prints one line
//! per segment and per restart, then a summary per stream. SIGINT and
//! SIGTERM stop it the same way. A stream that reports no segment for 40 s
//! has stalled and is rebuilt too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use stsdub_worker::futex_hash;
use stsdub_worker::signals;

/// How long a failed stream waits before it is built again.
const RESTART_DELAY: Duration = Duration::from_secs(2);
/// How long the streams get to deliver EOS when the application stops: the
/// element's default latency (6 s segment + 8 s timeout + 0.5 s) plays out,
/// and the STS's answer to the last segment may take the whole timeout.
const STOP_GRACE: Duration = Duration::from_secs(25);
/// How long the application waits at exit for pipelines to reach NULL.
const TEARDOWN_GRACE: Duration = Duration::from_secs(15);
/// A stream with no `stsdub-segment` message for this long has stalled and
/// is rebuilt. stsdub reports every segment, dubbed or not: the first one
/// after the element's default latency and one segment (14.5 + 6 s), then
/// one every 6 s. What stalls in practice: an RTSP source whose server went
/// away with an end rather than an error, when GStreamer 1.22's
/// rtpjitterbuffer keeps the end of one track back (seen in the live tests:
/// its task waits on a condition for good, and its teardown with it).
const STALL_LIMIT: Duration = Duration::from_secs(40);
/// How often the streams are checked for a stall.
const STALL_CHECK: Duration = Duration::from_secs(5);
/// Threads a stream's pipeline runs: source, depayloaders, stsdub's two
/// output tasks, muxer, sink, with room (a live RTSP input has the most).
const THREADS_PER_STREAM: usize = 12;
/// The process's own: GLib, tokio's workers, the metrics server.
const SHARED_THREADS: usize = 32;

#[derive(Clone)]
struct StreamSpec {
    name: String,
    input: String,
    output: String,
}

#[derive(Default)]
struct Counts {
    dubbed: u64,
    fallback: u64,
    restarts: u64,
}

struct Args {
    sts_url: String,
    streams: Vec<StreamSpec>,
    seconds: Option<u64>,
    /// Only check the arguments and list the streams (a ConfigMap before
    /// it is rolled out, say).
    check: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut sts_url = "http://127.0.0.1:8000".to_owned();
    let mut streams = Vec::new();
    let mut seconds = None;
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--check" {
            check = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sts-url" => sts_url = value,
            "--stream" => {
                let name = format!("stream{}", streams.len() + 1);
                streams.push(stream_spec(name, &value)?);
            }
            "--streams-file" => {
                let text = std::fs::read_to_string(&value)
                    .map_err(|e| format!("--streams-file {value}: {e}"))?;
                streams.extend(
                    parse_streams_file(&text, streams.len())
                        .map_err(|e| format!("--streams-file {value}: {e}"))?,
                );
            }
            "--seconds" => seconds = Some(value.parse().map_err(|e| format!("--seconds: {e}"))?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if streams.is_empty() {
        return Err("at least one --stream INPUT=OUTPUT".into());
    }
    let mut names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("stream {} is given twice", twice[0]));
    }
    Ok(Args {
        sts_url,
        streams,
        seconds,
        check,
    })
}

fn stream_spec(name: String, input_output: &str) -> Result<StreamSpec, String> {
    let (input, output) = input_output
        .split_once('=')
        .filter(|(input, output)| !input.is_empty() && !output.is_empty())
        .ok_or(format!(
            "{name}: a stream is INPUT=OUTPUT, not {input_output:?}"
        ))?;
    Ok(StreamSpec {
        name,
        input: input.to_owned(),
        output: output.to_owned(),
    })
}

/// Streams of a file: `INPUT=OUTPUT` or `STREAM_ID INPUT=OUTPUT` per line;
/// blank lines and lines starting with `#` are skipped. Unnamed streams are numbered
/// after the `before` already given.
fn parse_streams_file(text: &str, before: usize) -> Result<Vec<StreamSpec>, String> {
    let mut streams = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (name, input_output) = match words.as_slice() {
            [input_output] => (
                format!("stream{}", before + streams.len() + 1),
                *input_output,
            ),
            [name, input_output] => ((*name).to_owned(), *input_output),
            _ => return Err(format!("line {}: [STREAM_ID] INPUT=OUTPUT", number + 1)),
        };
        streams.push(
            stream_spec(name, input_output).map_err(|e| format!("line {}: {e}", number + 1))?,
        );
    }
    Ok(streams)
}

fn make(factory: &str, name: &str) -> Result<gst::Element, glib::BoolError> {
    gst::ElementFactory::make(factory).name(name).build()
}

/// rtspsrc → depay/parse → stsdub → flvmux → queue → rtmpsink or filesink.
fn build(spec: &StreamSpec, sts_url: &str) -> Result<gst::Pipeline, glib::BoolError> {
    let pipeline = gst::Pipeline::with_name(&spec.name);
    let src = gst::ElementFactory::make("rtspsrc")
        .name("src")
        .property("location", &spec.input)
        .property_from_str("protocols", "tcp")
        .property("latency", stsdub_worker::pipeline::RTSP_LATENCY_MS)
        .build()?;
    let video_depay = make("rtph264depay", "vdepay")?;
    let video_parse = make("h264parse", "vparse")?;
    let audio_depay = make("rtpmp4gdepay", "adepay")?;
    let audio_parse = make("aacparse", "aparse")?;
    let dub = gst::ElementFactory::make("stsdub")
        .name("dub")
        .property("sts-url", sts_url)
        .property("stream-id", &spec.name)
        .build()?;
    let mux = gst::ElementFactory::make("flvmux")
        .name("mux")
        .property("streamable", true)
        .build()?;
    let sink = if spec.output.ends_with(".flv") {
        gst::ElementFactory::make("filesink")
            .name("sink")
            .property("location", &spec.output)
            .build()?
    } else {
        gst::ElementFactory::make("rtmpsink")
            .name("sink")
            .property("location", &spec.output)
            .build()?
    };
    // Between flvmux and the sink: an RTMP sink blocks while it connects and
    // writes, and a stalled flvmux interleaves the first frames out of order.
    let decouple = gst::ElementFactory::make("queue").build()?;
    pipeline.add_many([
        &src,
        &video_depay,
        &video_parse,
        &audio_depay,
        &audio_parse,
        &dub,
        &mux,
        &decouple,
        &sink,
    ])?;
    gst::Element::link_many([&video_depay, &video_parse])?;
    gst::Element::link_many([&audio_depay, &audio_parse])?;
    video_parse.link_pads(Some("src"), &dub, Some("video_sink"))?;
    audio_parse.link_pads(Some("src"), &dub, Some("audio_sink"))?;
    dub.link_pads(Some("video_src"), &mux, Some("video"))?;
    dub.link_pads(Some("audio_src"), &mux, Some("audio"))?;
    gst::Element::link_many([&mux, &decouple, &sink])?;
    // rtspsrc's pads appear once the session is described: link by media.
    let (video, audio) = (video_depay.downgrade(), audio_depay.downgrade());
    src.connect_pad_added(move |_, pad| {
        let media = pad.current_caps().and_then(|caps| {
            caps.structure(0)
                .and_then(|s| s.get::<String>("media").ok())
        });
        let target = match media.as_deref() {
            Some("video") => video.upgrade(),
            Some("audio") => audio.upgrade(),
            _ => None,
        };
        if let Some(sink_pad) = target.and_then(|t| t.static_pad("sink"))
            && !sink_pad.is_linked()
        {
            let _ = pad.link(&sink_pad);
        }
    });
    Ok(pipeline)
}

struct Runner {
    sts_url: String,
    main_loop: glib::MainLoop,
    pipelines: Mutex<HashMap<String, gst::Pipeline>>,
    /// Each running pipeline's bus watch, removed when it is stopped.
    watches: Mutex<HashMap<String, gst::bus::BusWatchGuard>>,
    counts: Mutex<HashMap<String, Counts>>,
    /// When each running stream last reported a segment (or started).
    progress: Mutex<HashMap<String, Instant>>,
    stopping: Mutex<bool>,
    /// Pipelines sent on their way to NULL, and where each says it got there.
    teardowns: Mutex<usize>,
    teardown_done: mpsc::Sender<String>,
    torn_down: Mutex<mpsc::Receiver<String>>,
}

impl Runner {
    fn start(self: &Arc<Self>, spec: StreamSpec) {
        let pipeline = match build(&spec, &self.sts_url) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: cannot build the pipeline: {e}", spec.name);
                return self.restart_later(spec);
            }
        };
        let runner = Arc::downgrade(self);
        let watched = spec.clone();
        let this_pipeline = pipeline.downgrade();
        let Some(bus) = pipeline.bus() else { return };
        let watch = bus.add_watch(move |_, message| {
            if let (Some(runner), Some(pipeline)) = (runner.upgrade(), this_pipeline.upgrade())
                && runner.is_current(&watched.name, &pipeline)
            {
                runner.on_message(&watched, message);
            }
            glib::ControlFlow::Continue
        });
        let Ok(watch) = watch else { return };
        if let Ok(mut watches) = self.watches.lock() {
            watches.insert(spec.name.clone(), watch);
        }
        if pipeline.set_state(gst::State::Playing).is_err() {
            eprintln!("{}: does not start", spec.name);
        }
        if let Ok(mut pipelines) = self.pipelines.lock() {
            pipelines.insert(spec.name.clone(), pipeline);
        }
        self.note_progress(&spec.name);
    }

    fn note_progress(&self, name: &str) {
        if let Ok(mut progress) = self.progress.lock() {
            progress.insert(name.to_owned(), Instant::now());
        }
    }

    /// Rebuilds every stream that has reported nothing for [`STALL_LIMIT`].
    /// Its pipeline is left to reach NULL on a thread of its own, not
    /// waited for at exit: a stalled source may never get there.
    fn restart_stalled(self: &Arc<Self>, specs: &[StreamSpec]) {
        if self.is_stopping() {
            return;
        }
        for spec in specs {
            let stalled = self.progress.lock().is_ok_and(|p| {
                p.get(&spec.name)
                    .is_some_and(|at| at.elapsed() >= STALL_LIMIT)
            });
            let Some(pipeline) = stalled
                .then(|| self.pipelines.lock().ok()?.remove(&spec.name))
                .flatten()
            else {
                continue;
            };
            println!(
                "{} stalled: no segment for {} s",
                spec.name,
                STALL_LIMIT.as_secs()
            );
            if let Ok(mut watches) = self.watches.lock() {
                watches.remove(&spec.name);
            }
            let _ = std::thread::Builder::new()
                .name(format!("stalled-{}", spec.name))
                .spawn(move || {
                    let _ = pipeline.set_state(gst::State::Null);
                });
            self.restart_later(spec.clone());
        }
    }

    /// Whether `pipeline` is the one running for the stream: a pipeline on
    /// its way to NULL may still have errors queued on its bus (a failing
    /// source posts several), which must not restart the stream again.
    fn is_current(&self, name: &str, pipeline: &gst::Pipeline) -> bool {
        self.pipelines
            .lock()
            .is_ok_and(|p| p.get(name) == Some(pipeline))
    }

    fn on_message(self: &Arc<Self>, spec: &StreamSpec, message: &gst::Message) {
        match message.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure().filter(|s| s.name() == "stsdub-segment") else {
                    return;
                };
                self.note_progress(&spec.name);
                let status = s.get::<String>("status").unwrap_or_default();
                println!(
                    "{} segment {} {status} {}",
                    spec.name,
                    s.get::<u64>("batch").unwrap_or_default(),
                    s.get::<String>("reason").unwrap_or_default()
                );
                if let Ok(mut counts) = self.counts.lock() {
                    let c = counts.entry(spec.name.clone()).or_default();
                    if status == "dubbed" {
                        c.dubbed += 1
                    } else {
                        c.fallback += 1
                    }
                }
            }
            gst::MessageView::Error(e) => {
                eprintln!(
                    "{}: error from {:?}: {}",
                    spec.name,
                    e.src().map(|s| s.name()),
                    e.error()
                );
                self.stop_one(&spec.name);
                self.restart_later(spec.clone());
            }
            gst::MessageView::Eos(_) => {
                self.stop_one(&spec.name);
                if !self.is_stopping() {
                    // The source ended on its own: treat it like a failure.
                    self.restart_later(spec.clone());
                } else if self.all_stopped() {
                    self.main_loop.quit();
                }
            }
            _ => {}
        }
    }

    /// Takes the stream's pipeline to NULL on a thread of its own: a source
    /// slow to tear down (an RTSP TEARDOWN to a dying server, say) must not
    /// hold up the main loop, and with it every other stream.
    fn stop_one(&self, name: &str) {
        let pipeline = self.pipelines.lock().ok().and_then(|mut p| p.remove(name));
        let Some(pipeline) = pipeline else { return };
        // What it still posts is not the stream's any more (`is_current`).
        if let Ok(mut watches) = self.watches.lock() {
            watches.remove(name);
        }
        let Ok(mut teardowns) = self.teardowns.lock() else {
            return;
        };
        *teardowns += 1;
        let done = self.teardown_done.clone();
        let name = name.to_owned();
        let spawned = std::thread::Builder::new()
            .name(format!("teardown-{name}"))
            .spawn(move || {
                let _ = pipeline.set_state(gst::State::Null);
                let _ = done.send(name);
            });
        if spawned.is_err() {
            *teardowns -= 1;
        }
    }

    /// Waits, bounded, for every pipeline to reach NULL; names those that
    /// did not. True when all did.
    fn wait_torn_down(&self) -> bool {
        let pending = self.teardowns.lock().map(|t| *t).unwrap_or(0);
        let Ok(done) = self.torn_down.lock() else {
            return false;
        };
        let give_up = Instant::now() + TEARDOWN_GRACE;
        let mut finished = Vec::new();
        while finished.len() < pending {
            match done.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
                Ok(name) => finished.push(name),
                Err(_) => {
                    eprintln!(
                        "multi_stream: {} of {pending} pipelines did not reach NULL within {} s",
                        pending - finished.len(),
                        TEARDOWN_GRACE.as_secs()
                    );
                    return false;
                }
            }
        }
        true
    }

    fn restart_later(self: &Arc<Self>, spec: StreamSpec) {
        if self.is_stopping() {
            if self.all_stopped() {
                self.main_loop.quit();
            }
            return;
        }
        if let Ok(mut counts) = self.counts.lock() {
            counts.entry(spec.name.clone()).or_default().restarts += 1;
        }
        println!("{} restarting in {} s", spec.name, RESTART_DELAY.as_secs());
        let runner = Arc::downgrade(self);
        glib::timeout_add_once(RESTART_DELAY, move || {
            if let Some(runner) = runner.upgrade()
                && !runner.is_stopping()
            {
                runner.start(spec);
            }
        });
    }

    /// EOS into every pipeline: stsdub sends stream:end, the muxer closes
    /// the stream; the main loop ends when the last EOS arrives.
    fn stop_all(&self) {
        if let Ok(mut stopping) = self.stopping.lock() {
            *stopping = true;
        }
        let pipelines: Vec<gst::Pipeline> = self
            .pipelines
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default();
        if pipelines.is_empty() {
            self.main_loop.quit();
        }
        for pipeline in pipelines {
            pipeline.send_event(gst::event::Eos::new());
        }
        // A stream that cannot finish (its source still connecting, say)
        // must not keep the process alive: stop regardless after a while.
        let main_loop = self.main_loop.clone();
        glib::timeout_add_once(STOP_GRACE, move || main_loop.quit());
    }

    fn is_stopping(&self) -> bool {
        self.stopping.lock().map(|s| *s).unwrap_or(true)
    }

    fn all_stopped(&self) -> bool {
        self.pipelines.lock().map(|p| p.is_empty()).unwrap_or(true)
    }
}

/// The `stsdub-bus-errors` tracer, when GST_TRACERS names it.
fn bus_error_tracer() -> Option<glib::Object> {
    let wanted = std::env::var("GST_TRACERS").unwrap_or_default();
    if !wanted
        .split(';')
        .any(|t| t.trim().starts_with("stsdub-bus-errors"))
    {
        return None;
    }
    let factory = gst::TracerFactory::factories()
        .into_iter()
        .find(|f| f.name() == "stsdub-bus-errors")?;
    Some(glib::Object::with_type(factory.tracer_type()))
}

fn main() {
    let Args {
        sts_url,
        streams,
        seconds,
        check,
    } = parse_args().unwrap_or_else(|e| {
        eprintln!("multi_stream: {e}");
        std::process::exit(2);
    });
    if check {
        for spec in &streams {
            println!("{} {} -> {}", spec.name, spec.input, spec.output);
        }
        return;
    }
    futex_hash::size_for_threads(SHARED_THREADS + streams.len() * THREADS_PER_STREAM);
    if let Err(e) = gst::init() {
        eprintln!("multi_stream: {e}");
        std::process::exit(1);
    }
    if let Err(e) = gststsdub::plugin_register_static() {
        eprintln!("multi_stream: {e}");
        std::process::exit(1);
    }
    // GST_TRACERS is read at gst::init, before a static plugin exists: make
    // the bus-error tracer here when it is asked for. Kept for the process.
    let _tracer = bus_error_tracer();
    let (done, torn_down) = mpsc::channel();
    let runner = Arc::new(Runner {
        sts_url,
        main_loop: glib::MainLoop::new(None, false),
        pipelines: Mutex::new(HashMap::new()),
        watches: Mutex::new(HashMap::new()),
        counts: Mutex::new(HashMap::new()),
        progress: Mutex::new(HashMap::new()),
        stopping: Mutex::new(false),
        teardowns: Mutex::new(0),
        teardown_done: done,
        torn_down: Mutex::new(torn_down),
    });
    for spec in &streams {
        runner.start(spec.clone());
    }
    let watched = Arc::downgrade(&runner);
    let specs = streams.clone();
    glib::timeout_add(STALL_CHECK, move || match watched.upgrade() {
        Some(runner) => {
            runner.restart_stalled(&specs);
            glib::ControlFlow::Continue
        }
        None => glib::ControlFlow::Break,
    });
    let on_signal = Arc::downgrade(&runner);
    signals::on_interrupt_or_terminate(move || {
        glib::MainContext::default().invoke(move || {
            if let Some(runner) = on_signal.upgrade() {
                runner.stop_all();
            }
        });
    });
    if let Some(seconds) = seconds {
        let on_timer = Arc::downgrade(&runner);
        glib::timeout_add_once(Duration::from_secs(seconds), move || {
            if let Some(runner) = on_timer.upgrade() {
                runner.stop_all();
            }
        });
    }
    let started = Instant::now();
    runner.main_loop.run();
    for spec in &streams {
        runner.stop_one(&spec.name);
        let counts = runner.counts.lock().ok();
        let c = counts.as_ref().and_then(|c| c.get(&spec.name));
        println!(
            "{}: dubbed {} fallback {} restarts {} ({:.1} s)",
            spec.name,
            c.map_or(0, |c| c.dubbed),
            c.map_or(0, |c| c.fallback),
            c.map_or(0, |c| c.restarts),
            started.elapsed().as_secs_f64()
        );
    }
    if !runner.wait_torn_down() {
        std::process::exit(1);
    }
}
