//! Shared test helpers: plugin registration, the echo STS as a real process,
//! the sample file, pipelines run to EOS, and ffmpeg/ffprobe readings.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use gst::prelude::*;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gststsdub::plugin_register_static().expect("stsdub registers");
    });
}

/// Where cargo built `libgststsdub.so`, for GST_PLUGIN_PATH.
pub fn plugin_dir() -> PathBuf {
    let dir = target_dir();
    assert!(
        dir.join("libgststsdub.so").exists(),
        "cdylib not built at {}",
        dir.display()
    );
    dir
}

fn target_dir() -> PathBuf {
    // tests run from target/<profile>/deps/<test>-<hash>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The echo STS example running as its own process on a free loopback port.
pub struct EchoSts {
    child: Child,
    pub url: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl EchoSts {
    pub fn start(args: &[&str]) -> Self {
        let binary = target_dir().join("examples").join("echo_sts");
        assert!(
            binary.exists(),
            "{} missing: cargo test builds examples",
            binary.display()
        );
        let mut command = Command::new(&binary);
        command.args(["--port", "0"]).args(args);
        Self::spawn(command)
    }

    /// Any STS process that prints `listening on URL` as its first line.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let _ = tx.send(line);
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("echo_sts prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from echo_sts: {line:?}"))
            .to_owned();
        Self { child, url, log }
    }

    /// Blocks until the echo logs a line containing `needle` (or panics after `limit`).
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(remaining) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("echo_sts never logged {needle:?}"),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoSts {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback URL where nothing listens.
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The 60 s sample (speech + test video), made once per test binary run.
pub fn sample() -> PathBuf {
    static SAMPLE: OnceLock<PathBuf> = OnceLock::new();
    SAMPLE
        .get_or_init(|| {
            let dir = target_dir().join("fixtures");
            std::fs::create_dir_all(&dir).expect("fixtures dir");
            let path = dir.join("sample-60s.mp4");
            if !path.exists() {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-sample.sh");
                let status = Command::new("bash")
                    .arg(script)
                    .arg(&path)
                    .arg("60")
                    .status()
                    .expect("make-sample.sh runs");
                assert!(status.success(), "make-sample.sh failed");
            }
            path
        })
        .clone()
}

/// A built example binary (cargo test builds them all first).
pub fn example(name: &str) -> PathBuf {
    target_dir().join("examples").join(name)
}

/// `source` rewritten by ffmpeg with `args` (`{}` stands for `source`),
/// made once per build as `test-output/{name}`.
pub fn remuxed(source: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = scratch(name);
    if !path.exists() {
        let mut command = Command::new("ffmpeg");
        command.args(["-v", "error", "-y"]);
        for arg in args {
            command.arg(arg.replace("{}", &source.to_string_lossy()));
        }
        // Complete files only: a test binary killed half-way leaves a part.
        let thread = format!("{:?}", std::thread::current().id()).replace(['(', ')'], "");
        let part = scratch(&format!("part-{}-{thread}-{name}", std::process::id()));
        let status = command.arg(&part).status().expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg could not make {name}");
        std::fs::rename(&part, &path).expect("file in place");
    }
    path
}

/// `source` with its video starting `ms` after its audio.
pub fn video_late(source: &Path, ms: u32, container: &str) -> PathBuf {
    let offset = format!("{:.3}", f64::from(ms) / 1000.0);
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("in");
    remuxed(
        source,
        &format!("{stem}-video-late-{ms}.{container}"),
        &[
            "-i",
            "{}",
            "-itsoffset",
            &offset,
            "-i",
            "{}",
            "-map",
            "1:v",
            "-map",
            "0:a",
            "-c",
            "copy",
        ],
    )
}

/// `source` with its audio starting `ms` after its video.
pub fn audio_late(source: &Path, ms: u32, container: &str) -> PathBuf {
    let offset = format!("{:.3}", f64::from(ms) / 1000.0);
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("in");
    remuxed(
        source,
        &format!("{stem}-audio-late-{ms}.{container}"),
        &[
            "-i",
            "{}",
            "-itsoffset",
            &offset,
            "-i",
            "{}",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c",
            "copy",
        ],
    )
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("test-output");
    std::fs::create_dir_all(&dir).expect("test-output dir");
    dir.join(name)
}

/// What a pipeline run left on the bus.
#[derive(Debug, Default)]
pub struct Run {
    pub segments: Vec<gst::Structure>,
    /// `state` of each `stsdub-breaker` message, in order.
    pub breaker: Vec<String>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    pub eos: bool,
}

impl Run {
    pub fn statuses(&self) -> Vec<String> {
        self.field("status")
    }

    pub fn reasons(&self) -> Vec<String> {
        self.field("reason")
    }

    fn field(&self, name: &str) -> Vec<String> {
        self.segments
            .iter()
            .map(|s| {
                s.get::<String>(name)
                    .unwrap_or_else(|_| panic!("{name} field"))
            })
            .collect()
    }

    pub fn frames(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| u64::from(s.get::<u32>("frames").expect("frames field")))
            .sum()
    }

    /// Records one message; true when the run is over (EOS or error).
    fn record(&mut self, message: &gst::Message) -> bool {
        match message.view() {
            gst::MessageView::Eos(_) => {
                self.eos = true;
                return true;
            }
            gst::MessageView::Error(e) => {
                self.errors.push(format!("{} ({:?})", e.error(), e.debug()));
                return true;
            }
            gst::MessageView::Warning(w) => {
                self.warnings
                    .push(format!("{} ({:?})", w.error(), w.debug()))
            }
            gst::MessageView::Element(e) => match e.structure() {
                Some(s) if s.name() == "stsdub-segment" => self.segments.push(s.to_owned()),
                Some(s) if s.name() == "stsdub-breaker" => self
                    .breaker
                    .push(s.get::<String>("state").expect("state field")),
                _ => {}
            },
            _ => {}
        }
        false
    }
}

/// A playing pipeline whose bus the test reads as it goes.
pub struct Running {
    pipeline: gst::Pipeline,
    bus: gst::Bus,
    pub run: Run,
}

impl Running {
    pub fn start(description: &str) -> Self {
        init();
        let pipeline = gst::parse::launch(description)
            .unwrap_or_else(|e| panic!("cannot parse {description}: {e}"))
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let bus = pipeline.bus().expect("pipeline bus");
        // On failure the element has posted why on the bus; it is read later.
        let _ = pipeline.set_state(gst::State::Playing);
        Self {
            pipeline,
            bus,
            run: Run::default(),
        }
    }

    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    /// Reads the bus until `until` holds for the run so far; false if the
    /// run ended or `limit` passed first.
    pub fn wait_for(&mut self, limit: Duration, mut until: impl FnMut(&Run) -> bool) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while !until(&self.run) {
            let Some(remaining) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return false;
            };
            let Some(message) = self
                .bus
                .timed_pop(gst::ClockTime::from_nseconds(remaining.as_nanos() as u64))
            else {
                return false;
            };
            // As gst-launch does: a live source joining late changes the latency.
            if let gst::MessageView::Latency(_) = message.view() {
                let _ = self.pipeline.recalculate_latency();
            }
            if self.run.record(&message) && !until(&self.run) {
                return false;
            }
        }
        true
    }

    /// As `finish`, then reads on for `after` (an error included), so what
    /// the pipeline posts after its end is seen too: a test that counts
    /// errors can then see a second one.
    pub fn finish_watching(mut self, limit: Duration, after: Duration) -> Run {
        self.wait_for(limit, |run| run.eos || !run.errors.is_empty());
        let ended = (self.run.eos, self.run.errors.len());
        self.wait_for(after, |run| (run.eos, run.errors.len()) != ended);
        self.pipeline
            .set_state(gst::State::Null)
            .expect("pipeline stops");
        self.run
    }

    /// Reads the bus to EOS or error (or `limit`), then stops the pipeline.
    pub fn finish(mut self, limit: Duration) -> Run {
        self.wait_for(limit, |run| run.eos || !run.errors.is_empty());
        self.pipeline
            .set_state(gst::State::Null)
            .expect("pipeline stops");
        self.run
    }
}

/// Runs a gst-launch description to EOS (or `limit`), collecting bus messages.
pub fn run_pipeline(description: &str, limit: Duration) -> Run {
    Running::start(description).finish(limit)
}

/// The non-live file → stsdub → FLV pipeline.
pub fn file_to_flv(input: &Path, output: &Path, stsdub_props: &str) -> String {
    format!(
        "filesrc location={} ! qtdemux name=d \
         d.audio_0 ! aacparse ! dub.audio_sink \
         d.video_0 ! h264parse ! dub.video_sink \
         stsdub name=dub {stsdub_props} \
         dub.audio_src ! mux.audio  dub.video_src ! mux.video \
         flvmux name=mux ! filesink location={}",
        input.display(),
        output.display()
    )
}

/// A live AAC source (`seconds` of a tone) → stsdub → FLV file.
pub fn live_to_flv(seconds: u64, output: &Path, stsdub_props: &str) -> String {
    let buffers = seconds * 48_000 / 1024;
    format!(
        "audiotestsrc is-live=true samplesperbuffer=1024 num-buffers={buffers} wave=sine freq=330 ! \
         audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! dub.audio_sink \
         stsdub name=dub {stsdub_props} dub.audio_src ! flvmux streamable=true ! filesink location={}",
        output.display()
    )
}

/// The sample as GStreamer presents it to stsdub, remuxed to FLV without
/// stsdub: the reference for audio frames and timestamps.
pub fn reference_flv() -> PathBuf {
    static REFERENCE: OnceLock<PathBuf> = OnceLock::new();
    REFERENCE
        .get_or_init(|| {
            let output = scratch("reference.flv");
            let description = format!(
                "filesrc location={} ! qtdemux name=d d.audio_0 ! queue ! aacparse ! mux.audio \
                 d.video_0 ! queue ! h264parse ! mux.video flvmux name=mux ! filesink location={}",
                sample().display(),
                output.display()
            );
            let run = run_pipeline(&description, Duration::from_secs(60));
            assert!(
                run.eos && run.errors.is_empty(),
                "reference remux failed: {run:?}"
            );
            output
        })
        .clone()
}

/// One packet as ffmpeg's framemd5 muxer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub pts: i64,
    pub duration: i64,
    pub size: u64,
    pub md5: String,
}

/// Packets of the first stream of `kind` ("v" or "a"), copied, not decoded.
#[track_caller]
pub fn packets(file: &Path, kind: &str) -> Vec<Packet> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args([
            "-map",
            &format!("0:{kind}:0"),
            "-c",
            "copy",
            "-f",
            "framemd5",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg framemd5 failed on {}",
        file.display()
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            Packet {
                pts: f[2].parse().expect("pts"),
                duration: f[3].parse().expect("duration"),
                size: f[4].parse().expect("size"),
                md5: f[5].to_owned(),
            }
        })
        .collect()
}

/// Decoded audio as mono 16 kHz samples (f32, -1..1).
#[track_caller]
pub fn decoded_audio(file: &Path) -> Vec<f32> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args([
            "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "s16le", "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg decode failed on {}",
        file.display()
    );
    output
        .stdout
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

pub fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mean = |x: &[f32]| x.iter().sum::<f32>() / n as f32;
    let (ma, mb) = (mean(a), mean(b));
    let cov: f32 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f32 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f32 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va.sqrt() * vb.sqrt()).max(f32::EPSILON)
}

/// Real AAC-LC frames (a sine), their caps, and timestamps from 0.
pub fn aac_frames(count: usize) -> (gst::Caps, Vec<gst::Buffer>) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc num-buffers={} samplesperbuffer=1024 wave=sine freq=440 ! \
         audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! appsink name=sink sync=false",
        count + 2
    ))
    .expect("encoder pipeline")
    .downcast::<gst::Pipeline>()
    .expect("pipeline");
    let sink = pipeline
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("plays");
    let mut caps = None;
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        caps = caps.or_else(|| sample.caps().map(|c| c.to_owned()));
        frames.extend(sample.buffer_owned());
    }
    pipeline.set_state(gst::State::Null).expect("stops");
    let frame = gst::ClockTime::from_nseconds(1024 * 1_000_000_000 / 48_000);
    let frames = frames
        .into_iter()
        .take(count)
        .enumerate()
        .map(|(i, mut buffer)| {
            let b = buffer.make_mut();
            b.set_pts(frame * i as u64);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(frame);
            b.unset_flags(gst::BufferFlags::DISCONT);
            buffer
        })
        .collect::<Vec<_>>();
    assert_eq!(frames.len(), count, "encoder gave enough frames");
    (caps.expect("encoder caps"), frames)
}

/// One GET /metrics.
#[track_caller]
pub fn scrape(address: &str) -> String {
    let mut socket = std::net::TcpStream::connect(address).expect("metrics endpoint answers");
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    socket.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of `name{labels}` in a scrape, 0 when absent.
pub fn metric_value(scrape: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{{{labels}}} ");
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// The codec of every stream of a file, as ffprobe names them.
pub fn codecs(file: &Path) -> Vec<String> {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&probe.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Every line of the `stsdub` debug category up to `level`, while `f` runs.
pub fn with_captured_logs<T>(
    level: gst::DebugLevel,
    f: impl FnOnce() -> T,
) -> (T, Vec<(gst::DebugLevel, String)>) {
    init();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    gst::log::set_threshold_for_name("stsdub", level);
    let function = gst::log::add_log_function(
        move |category, level, _file, _function, _line, _object, message| {
            if category.name() == "stsdub"
                && let Some(text) = message.get()
            {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((level, text.to_string()));
            }
        },
    );
    let result = f();
    gst::log::remove_log_function(function);
    gst::log::unset_threshold_for_name("stsdub");
    let lines = lines.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (result, lines)
}

/// Waits for a child process to exit, at most `limit`: its exit status, or
/// None after killing it. Blocks in `wait` on a helper thread, so the test
/// does not spin a core that the live pipelines under test need.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let pid = child.id().to_string();
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = exited.send(child.wait());
        });
        match exit.recv_timeout(limit) {
            Ok(Ok(status)) => Some(status),
            _ => {
                // Unblocks the waiting thread; the scope then joins it.
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                None
            }
        }
    })
}
