//! The reference echo STS: a Socket.IO v5 server (socketioxide) that speaks the
//! STS protocol and answers every fragment with a transformed copy of its audio.
//!
//! The transformation is audible and measurable: by default each fragment is
//! played backwards at half the amplitude (−6 dB), re-encoded as AAC and packed
//! as M4A. Switches make it slow, wrong-length or failing, for tests and demos.
//!
//! ```text
//! cargo run --example echo_sts -- --port 8000 [--delay-ms 0] [--duration-factor 1.0]
//!     [--error CODE] [--transform reverse|identity] [--max-inflight 3]
//! ```
//!
//! The first line on stdout is `listening on http://127.0.0.1:PORT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use gst::prelude::*;
use gststsdub::m4a::{self, AacConfig};
use gststsdub::sts::protocol::*;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::handler::ConnectHandler;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    /// Backwards at half amplitude: clearly not the input, easy to measure.
    Reverse,
    /// Decoded and re-encoded as it is.
    Identity,
}

#[derive(Debug, Clone)]
struct Options {
    port: u16,
    delay: Duration,
    duration_factor: f64,
    error: Option<String>,
    transform: Transform,
    max_inflight: u32,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        port: 8000,
        delay: Duration::ZERO,
        duration_factor: 1.0,
        error: None,
        transform: Transform::Reverse,
        max_inflight: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => options.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--delay-ms" => {
                options.delay =
                    Duration::from_millis(value()?.parse().map_err(|e| format!("--delay-ms: {e}"))?)
            }
            "--duration-factor" => {
                let factor: f64 = value()?
                    .parse()
                    .map_err(|e| format!("--duration-factor: {e}"))?;
                if !(0.05..=10.0).contains(&factor) {
                    return Err("--duration-factor must be within 0.05..=10".into());
                }
                options.duration_factor = factor;
            }
            "--error" => options.error = Some(value()?),
            "--transform" => {
                options.transform = match value()?.as_str() {
                    "reverse" => Transform::Reverse,
                    "identity" => Transform::Identity,
                    other => {
                        return Err(format!(
                            "--transform: unknown '{other}' (reverse, identity)"
                        ));
                    }
                }
            }
            "--max-inflight" => {
                options.max_inflight = value()?
                    .parse()
                    .map_err(|e| format!("--max-inflight: {e}"))?
            }
            "--help" | "-h" => {
                println!(
                    "echo_sts [--port N] [--delay-ms N] [--duration-factor F] [--error CODE] [--transform reverse|identity] [--max-inflight N]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

#[derive(Default)]
struct Counters {
    fragments: AtomicU64,
    applied: AtomicU64,
}

#[tokio::main]
async fn main() {
    let options = match parse_args() {
        Ok(options) => Arc::new(options),
        Err(e) => {
            eprintln!("echo_sts: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = gst::init() {
        eprintln!("echo_sts: cannot initialise GStreamer: {e}");
        std::process::exit(1);
    }
    let (layer, io) = SocketIo::builder()
        // A 6 s stereo segment is ~130 KB of JSON; leave room for long ones.
        .max_payload(16 * 1024 * 1024)
        .build_layer();
    let port = options.port;
    // Handlers are registered in a connect middleware: socketioxide runs it
    // before it acknowledges the namespace, while it spawns the connect
    // handler after, so a fast client's `stream:init` could beat it.
    let register = move |socket: SocketRef| {
        let options = options.clone();
        async move {
            on_connect(socket, options);
            Ok::<(), std::convert::Infallible>(())
        }
    };
    io.ns("/", (async |_: SocketRef| {}).with(register));
    let app = axum::Router::new().layer(layer);
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("echo_sts: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    println!("listening on http://127.0.0.1:{port}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("echo_sts: server failed: {e}");
    }
}

fn on_connect(socket: SocketRef, options: Arc<Options>) {
    let headers = &socket.req_parts().headers;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    eprintln!(
        "echo_sts: connect {} stream {} worker {}",
        socket.id,
        header("x-stream-id"),
        header("x-worker-id")
    );
    let counters = Arc::new(Counters::default());

    let init_options = options.clone();
    socket.on(STREAM_INIT, async move |socket: SocketRef, Data(data): Data<Value>| {
        match serde_json::from_value::<StreamInit>(data) {
            Ok(init) => {
                let max_inflight = init.max_inflight.min(init_options.max_inflight);
                let ready = json!({
                    "session_id": uuid::Uuid::new_v4().to_string(),
                    "max_inflight": max_inflight,
                    "capabilities": {"formats": ["m4a"], "transform": format!("{:?}", init_options.transform)},
                });
                let _ = socket.emit(STREAM_READY, &ready);
            }
            Err(e) => eprintln!("echo_sts: invalid {STREAM_INIT}: {e}"),
        }
    });

    let fragment_counters = counters.clone();
    socket.on(
        FRAGMENT_DATA,
        async move |socket: SocketRef, Data(data): Data<Value>| {
            let fragment: FragmentData = match serde_json::from_value(data) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("echo_sts: invalid {FRAGMENT_DATA}: {e}");
                    return;
                }
            };
            fragment_counters.fragments.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "echo_sts: fragment {} sequence {}",
                fragment.fragment_id, fragment.sequence_number
            );
            let ack = json!({"fragment_id": fragment.fragment_id, "status": "queued"});
            let _ = socket.emit(FRAGMENT_ACK, &ack);
            let options = options.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                tokio::time::sleep(options.delay).await;
                let reply = answer(&fragment, &options, started).await;
                let _ = socket.emit(FRAGMENT_PROCESSED, &reply);
            });
        },
    );

    let ack_counters = counters.clone();
    socket.on(FRAGMENT_ACK, async move |Data(data): Data<Value>| {
        if data.get("status").and_then(Value::as_str) == Some("applied") {
            ack_counters.applied.fetch_add(1, Ordering::Relaxed);
        }
    });

    socket.on(STREAM_END, async move |socket: SocketRef| {
        let total = counters.fragments.load(Ordering::Relaxed);
        let applied = counters.applied.load(Ordering::Relaxed);
        eprintln!("echo_sts: stream end, {total} fragments, {applied} applied");
        let complete = json!({"total_fragments": total, "statistics": {"applied": applied}});
        let _ = socket.emit(STREAM_COMPLETE, &complete);
    });
}

async fn answer(fragment: &FragmentData, options: &Options, started: Instant) -> Value {
    let base = json!({
        "fragment_id": fragment.fragment_id,
        "stream_id": fragment.stream_id,
        "sequence_number": fragment.sequence_number,
    });
    let result = match &options.error {
        Some(code) => Err((code.clone(), "error injected by --error".to_owned())),
        None => {
            let (audio, transform, factor) = (
                fragment.audio.clone(),
                options.transform,
                options.duration_factor,
            );
            tokio::task::spawn_blocking(move || dub(&audio, transform, factor))
                .await
                .unwrap_or_else(|e| Err(("MODEL_ERROR".into(), e.to_string())))
        }
    };
    let mut reply = base;
    let elapsed = started.elapsed().as_millis() as u64;
    match result {
        Ok(dubbed) => {
            reply["status"] = json!("success");
            reply["dubbed_audio"] = serde_json::to_value(dubbed).unwrap_or(Value::Null);
            reply["transcript"] = json!("(echo)");
            reply["translated_text"] = json!("(echo)");
        }
        Err((code, message)) => {
            let retryable = matches!(
                code.as_str(),
                "TIMEOUT" | "MODEL_ERROR" | "GPU_OOM" | "QUEUE_FULL" | "RATE_LIMIT"
            );
            reply["status"] = json!("failed");
            reply["error"] = json!({"code": code, "message": message, "retryable": retryable});
        }
    }
    reply["processing_time_ms"] = json!(elapsed);
    reply["stage_timings"] = json!({"asr_ms": 0, "translation_ms": 0, "tts_ms": elapsed});
    reply
}

type DubError = (String, String);

/// Decodes the fragment, transforms the samples, encodes and packs them again.
fn dub(audio: &AudioPayload, transform: Transform, factor: f64) -> Result<AudioPayload, DubError> {
    let invalid = |m: String| ("INVALID_CONFIG".to_owned(), m);
    let m4a_bytes = base64::engine::general_purpose::STANDARD
        .decode(audio.data_base64.as_bytes())
        .map_err(|e| invalid(format!("data_base64: {e}")))?;
    let unpacked = m4a::unpack(&m4a_bytes).map_err(|e| invalid(e.to_string()))?;
    let config = unpacked.config.clone();
    let frames: Vec<&[u8]> = unpacked
        .presented_frames()
        .iter()
        .map(|r| &m4a_bytes[r.clone()])
        .collect();
    let model = |e: String| ("MODEL_ERROR".to_owned(), e);
    let mut pcm = decode(&config, &frames).map_err(model)?;
    let channels = usize::from(config.channels.max(1));
    if transform == Transform::Reverse {
        reverse_frames(&mut pcm, channels);
        pcm.iter_mut().for_each(|s| *s /= 2);
    }
    let wanted = ((pcm.len() / channels) as f64 * factor).round() as usize * channels;
    resize_looping(&mut pcm, wanted);
    let (encoded, priming) = encode(&config, &pcm).map_err(model)?;
    let packed = m4a::pack(&config, &encoded, priming);
    Ok(AudioPayload {
        format: AUDIO_FORMAT.into(),
        sample_rate_hz: config.sample_rate,
        channels: config.channels,
        duration_ms: (wanted / channels) as u64 * 1000 / u64::from(config.sample_rate),
        data_base64: base64::engine::general_purpose::STANDARD.encode(packed),
    })
}

fn reverse_frames(pcm: &mut [i16], channels: usize) {
    let frames = pcm.len() / channels;
    for i in 0..frames / 2 {
        for c in 0..channels {
            pcm.swap(i * channels + c, (frames - 1 - i) * channels + c);
        }
    }
}

/// Shortens, or lengthens by playing the start again.
fn resize_looping(pcm: &mut Vec<i16>, wanted: usize) {
    if pcm.is_empty() {
        pcm.resize(wanted, 0);
        return;
    }
    let original = pcm.len();
    let mut i = 0;
    while pcm.len() < wanted {
        pcm.push(pcm[i % original]);
        i += 1;
    }
    pcm.truncate(wanted);
}

fn run_appsink_pipeline(
    description: &str,
    input_caps: &gst::Caps,
    inputs: Vec<gst::Buffer>,
) -> Result<(Vec<gst::Buffer>, Option<gst::Caps>), String> {
    let pipeline = gst::parse::launch(description)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let by_name = |name: &str| pipeline.by_name(name).ok_or(format!("no element {name}"));
    let src = by_name("src")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| "src is not an appsrc")?;
    let sink = by_name("sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "sink is not an appsink")?;
    src.set_caps(Some(input_caps));
    src.set_format(gst::Format::Time);
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    for buffer in inputs {
        src.push_buffer(buffer).map_err(|e| e.to_string())?;
    }
    let _ = src.end_of_stream();
    let mut out = Vec::new();
    let mut caps = None;
    while let Ok(sample) = sink.pull_sample() {
        if caps.is_none() {
            caps = sample.caps().map(|c| c.to_owned());
        }
        if let Some(buffer) = sample.buffer_owned() {
            out.push(buffer);
        }
    }
    let error = pipeline
        .bus()
        .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]));
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(message) = error {
        if let gst::MessageView::Error(e) = message.view() {
            return Err(format!("{}: {}", description, e.error()));
        }
    }
    Ok((out, caps))
}

fn decode(config: &AacConfig, frames: &[&[u8]]) -> Result<Vec<i16>, String> {
    let caps = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .field("framed", true)
        .field("rate", config.sample_rate as i32)
        .field("channels", i32::from(config.channels))
        .field(
            "codec_data",
            gst::Buffer::from_slice(config.audio_specific_config.clone()),
        )
        .build();
    let frame_ns = 1_024_000_000_000 / u64::from(config.sample_rate);
    let inputs = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut buffer = gst::Buffer::from_slice(f.to_vec());
            let b = buffer.get_mut().expect("a new buffer is writable");
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
            buffer
        })
        .collect();
    let (buffers, _) = run_appsink_pipeline(
        "appsrc name=src ! avdec_aac ! audioconvert ! audio/x-raw,format=S16LE,layout=interleaved ! appsink name=sink sync=false",
        &caps,
        inputs,
    )?;
    let mut pcm = Vec::new();
    for buffer in buffers {
        let map = buffer.map_readable().map_err(|e| e.to_string())?;
        pcm.extend(
            map.chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
    }
    Ok(pcm)
}

/// Encodes PCM to AAC-LC frames; returns them with the encoder's priming.
fn encode(config: &AacConfig, pcm: &[i16]) -> Result<(Vec<Vec<u8>>, u32), String> {
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", config.sample_rate as i32)
        .field("channels", i32::from(config.channels))
        .build();
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut buffer = gst::Buffer::from_slice(bytes);
    buffer
        .get_mut()
        .expect("a new buffer is writable")
        .set_pts(gst::ClockTime::ZERO);
    let (buffers, _) = run_appsink_pipeline(
        "appsrc name=src ! audioconvert ! avenc_aac ! audio/mpeg,stream-format=raw ! appsink name=sink sync=false",
        &caps,
        vec![buffer],
    )?;
    let frames: Vec<Vec<u8>> = buffers
        .iter()
        .filter_map(|b| b.map_readable().ok().map(|m| m.to_vec()))
        .collect();
    // FFmpeg's AAC encoder starts with one frame of priming; what it emits
    // beyond the input's frame count is that delay.
    let input_frames = (pcm.len() / usize::from(config.channels.max(1))).div_ceil(1024);
    let priming = frames.len().saturating_sub(input_frames).min(1) as u32 * 1024;
    Ok((frames, priming))
}
