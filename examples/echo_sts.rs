// SPDX-License-Identifier: MPL-2.0

//! The reference echo STS: a Socket.IO v5 server (socketioxide) that speaks the
//! STS protocol and answers every fragment with a transformed copy of its audio.
//!
//! The transformation is audible and measurable: by default each fragment is
//! played backwards at half the amplitude (−6 dB), re-encoded as AAC and packed
//! as M4A. Switches make it slow, wrong-length or failing, for tests and demos.
//!
//! ```text
//! cargo run --example echo_sts -- --port 8000 [--delay-ms 0] [--duration-factor 1.0]
//!     [--error CODE [--fail-first N]] [--transform reverse|identity|tone|copy] [--tail-silence-ms N] [--gain-db DB]
//!     [--sample-rate HZ]
//!     [--channels N] [--max-inflight 3] [--ping-interval-ms N --ping-timeout-ms N]
//!     [--pause-at N --pause-ms N] [--slow-down-ms N] [--chaos] [--require-token T]
//!     [--complete-at N] [--unknown-answers N] [--pad-reply-kib N] [--malformed KIND]
//!     [--backpressure-flood N]
//! ```
//!
//! The first line on stdout is `listening on http://127.0.0.1:PORT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use gststsdub::audio::transcode;
use gststsdub::container::m4a::{self, AacConfig};
use gststsdub::sts::protocol::*;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;

/// How long the "model" (decode, transform, encode) may take on one fragment.
const MODEL_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    /// Backwards at half amplitude: clearly not the input, easy to measure.
    Reverse,
    /// Decoded and re-encoded as it is.
    Identity,
    /// A steady 440 Hz tone at -12 dBFS, as long as the input: a "voice"
    /// with no ambience, whose end is easy to find in the output.
    Tone,
    /// The fragment's own M4A sent back untouched, with no decode or encode:
    /// an STS that costs nothing, for the scale benchmark. It ignores
    /// --duration-factor, --sample-rate, --channels and --tail-silence-ms.
    Copy,
}

/// The returned audio's format; the input's where unset.
#[derive(Debug, Clone, Copy, Default)]
struct OutputFormat {
    sample_rate: Option<u32>,
    channels: Option<u8>,
    /// The last this many ms of the returned audio are silence.
    tail_silence_ms: u32,
    /// The returned speech this many dB hotter (or quieter, below 0) than
    /// the fragment's, clipped at full scale as a hot STS's would be.
    gain_db: f64,
}

#[derive(Debug, Clone)]
struct Options {
    port: u16,
    delay: Duration,
    duration_factor: f64,
    error: Option<String>,
    transform: Transform,
    max_inflight: u32,
    output: OutputFormat,
    /// With `error`: only the first N fragments fail.
    fail_first: Option<u64>,
    ping_interval: Option<Duration>,
    ping_timeout: Option<Duration>,
    /// Send `backpressure pause` after this many fragments...
    pause_at: Option<u64>,
    /// ...and `none` this long after.
    pause_for: Duration,
    /// Send `backpressure slow_down` with this delay, just before `stream:ready`.
    slow_down: Option<Duration>,
    /// Cycle through malformed, duplicate, unknown and failed answers.
    chaos: bool,
    /// Send `stream:complete` unasked once the Nth fragment is answered.
    complete_at: Option<u64>,
    /// Before each real answer, this many answers for made-up fragment ids.
    unknown_answers: u64,
    /// Each answer carries this many KiB of padding: an oversized reply.
    pad_reply_kib: usize,
    /// Refuse connections whose CONNECT auth lacks {"token": this}.
    require_token: Option<String>,
    /// Every answer spoilt in this way (`Malformed::NAMES`).
    malformed: Option<Malformed>,
    /// Before each answer, this many `backpressure` events (alternating
    /// slow_down of 1 ms and none).
    backpressure_flood: u64,
    /// The connection's `target_language` (from `stream:init`): the words
    /// of its answers are in it.
    language: String,
}

/// Ways an STS's answer can be wrong while still being a Socket.IO event.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Malformed {
    MissingStatus,
    MissingId,
    WrongTypes,
    EmptyAudio,
    OtherCodec,
    NotAnObject,
    /// Even fragments are answered a second later than odd ones.
    Reorder,
}

impl Malformed {
    const NAMES: [(&'static str, Malformed); 7] = [
        ("missing-status", Malformed::MissingStatus),
        ("missing-id", Malformed::MissingId),
        ("wrong-types", Malformed::WrongTypes),
        ("empty-audio", Malformed::EmptyAudio),
        ("other-codec", Malformed::OtherCodec),
        ("not-an-object", Malformed::NotAnObject),
        ("reorder", Malformed::Reorder),
    ];

    fn parse(name: &str) -> Result<Self, String> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                format!("--malformed: unknown '{name}' ({})", names.join(", "))
            })
    }

    /// Spoils `reply` (a good answer) this way.
    fn apply(self, reply: &mut Value) {
        let audio = &mut reply["dubbed_audio"];
        match self {
            Malformed::MissingStatus => {
                drop(reply.as_object_mut().and_then(|o| o.remove("status")))
            }
            Malformed::MissingId => {
                drop(reply.as_object_mut().and_then(|o| o.remove("fragment_id")))
            }
            Malformed::WrongTypes => {
                reply["sequence_number"] = json!("first");
                reply["dubbed_audio"]["sample_rate_hz"] = json!([48000]);
            }
            Malformed::EmptyAudio => audio["data_base64"] = json!(""),
            Malformed::OtherCodec => {
                if let Some(repacked) = audio["data_base64"].as_str().and_then(as_twinvq) {
                    audio["data_base64"] = json!(repacked);
                }
            }
            Malformed::NotAnObject => *reply = json!("fragment processed, trust me"),
            Malformed::Reorder => {}
        }
    }
}

/// The same frames packed as an M4A whose AudioSpecificConfig says TwinVQ
/// (object type 7): a valid file of a codec no AAC decoder reads.
fn as_twinvq(data_base64: &str) -> Option<String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(data_base64).ok()?;
    let unpacked = m4a::unpack(&bytes).ok()?;
    let mut config_bytes = unpacked.config.audio_specific_config.clone();
    // The object type is the first byte's top five bits.
    *config_bytes.first_mut()? = (config_bytes[0] & 0x07) | (7 << 3);
    let config = AacConfig::from_audio_specific_config(&config_bytes).ok()?;
    let frames: Vec<&[u8]> = unpacked.frames.iter().map(|r| &bytes[r.clone()]).collect();
    Some(engine.encode(m4a::pack(&config, &frames, 0)))
}

/// Every switch, as `--help` prints it.
const USAGE: &str = "echo_sts [--port N] [--delay-ms N] [--duration-factor F]
    [--error CODE [--fail-first N]] [--transform reverse|identity|tone|copy] [--tail-silence-ms N] [--gain-db DB]
    [--sample-rate HZ] [--channels N] [--max-inflight N]
    [--ping-interval-ms N --ping-timeout-ms N] [--pause-at N --pause-ms N]
    [--slow-down-ms N] [--chaos] [--require-token T] [--complete-at N] [--unknown-answers N]
    [--pad-reply-kib N] [--backpressure-flood N] [--malformed missing-status|missing-id|wrong-types|empty-audio|other-codec|not-an-object|reorder]";

fn number(flag: &str, value: String) -> Result<u64, String> {
    value.parse().map_err(|e| format!("{flag}: {e}"))
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        port: 8000,
        delay: Duration::ZERO,
        duration_factor: 1.0,
        error: None,
        transform: Transform::Reverse,
        max_inflight: 3,
        output: OutputFormat::default(),
        fail_first: None,
        ping_interval: None,
        ping_timeout: None,
        pause_at: None,
        complete_at: None,
        unknown_answers: 0,
        pad_reply_kib: 0,
        pause_for: Duration::from_secs(1),
        slow_down: None,
        chaos: false,
        require_token: None,
        malformed: None,
        backpressure_flood: 0,
        language: "es".into(),
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
                    "tone" => Transform::Tone,
                    "copy" => Transform::Copy,
                    other => {
                        return Err(format!(
                            "--transform: unknown '{other}' (reverse, identity, tone, copy)"
                        ));
                    }
                }
            }
            "--fail-first" => options.fail_first = Some(number(&flag, value()?)?),
            "--ping-interval-ms" => {
                options.ping_interval = Some(Duration::from_millis(number(&flag, value()?)?))
            }
            "--ping-timeout-ms" => {
                options.ping_timeout = Some(Duration::from_millis(number(&flag, value()?)?))
            }
            "--pause-at" => options.pause_at = Some(number(&flag, value()?)?),
            "--complete-at" => options.complete_at = Some(number(&flag, value()?)?),
            "--unknown-answers" => options.unknown_answers = number(&flag, value()?)?,
            "--pad-reply-kib" => options.pad_reply_kib = number(&flag, value()?)? as usize,
            "--pause-ms" => options.pause_for = Duration::from_millis(number(&flag, value()?)?),
            "--slow-down-ms" => {
                options.slow_down = Some(Duration::from_millis(number(&flag, value()?)?))
            }
            "--chaos" => options.chaos = true,
            "--backpressure-flood" => options.backpressure_flood = number(&flag, value()?)?,
            "--malformed" => options.malformed = Some(Malformed::parse(&value()?)?),
            "--require-token" => options.require_token = Some(value()?),
            "--sample-rate" => {
                options.output.sample_rate = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--sample-rate: {e}"))?,
                )
            }
            "--channels" => {
                options.output.channels =
                    Some(value()?.parse().map_err(|e| format!("--channels: {e}"))?)
            }
            "--gain-db" => {
                let gain: f64 = value()?.parse().map_err(|e| format!("--gain-db: {e}"))?;
                if !(-40.0..=40.0).contains(&gain) {
                    return Err("--gain-db must be within -40..=40".into());
                }
                options.output.gain_db = gain;
            }
            "--tail-silence-ms" => options.output.tail_silence_ms = number(&flag, value()?)? as u32,
            "--max-inflight" => {
                options.max_inflight = value()?
                    .parse()
                    .map_err(|e| format!("--max-inflight: {e}"))?
            }
            "--help" | "-h" => {
                println!("{USAGE}");
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
    in_flight: AtomicU64,
}

static STARTED: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// Fragments seen by this process, across connections: fault switches count them.
static SEEN: AtomicU64 = AtomicU64::new(0);

#[tokio::main]
async fn main() {
    let options = match parse_args() {
        Ok(options) => Arc::new(options),
        Err(e) => {
            eprintln!("echo_sts: {e}");
            std::process::exit(2);
        }
    };
    std::sync::LazyLock::force(&STARTED);
    if let Err(e) = gst::init() {
        eprintln!("echo_sts: cannot initialise GStreamer: {e}");
        std::process::exit(1);
    }
    let mut builder = SocketIo::builder()
        // A 6 s stereo segment is ~130 KB of JSON; leave room for long ones.
        .max_payload(16 * 1024 * 1024)
        // --unknown-answers emits hundreds of packets at once; socketioxide
        // drops what does not fit its queue (128 by default).
        .max_buffer_size(64 * 1024);
    if let Some(interval) = options.ping_interval {
        builder = builder.ping_interval(interval);
    }
    if let Some(timeout) = options.ping_timeout {
        builder = builder.ping_timeout(timeout);
    }
    let (layer, io) = builder.build_layer();
    let port = options.port;
    // Handlers are registered in a connect middleware: socketioxide runs it
    // before it acknowledges the namespace, while it spawns the connect
    // handler after, so a fast client's `stream:init` could beat it.
    let register = move |socket: SocketRef, TryData(auth): TryData<Value>| {
        let options = options.clone();
        async move {
            if let Some(required) = &options.require_token {
                let token = auth
                    .ok()
                    .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_owned));
                if token.as_deref() != Some(required.as_str()) {
                    eprintln!("echo_sts: refused a connection without the right token");
                    return Err("invalid token".to_owned());
                }
            }
            on_connect(socket, options);
            Ok(())
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
    let language = Arc::new(std::sync::Mutex::new(options.language.clone()));

    let init_options = options.clone();
    let init_language = language.clone();
    socket.on(STREAM_INIT, async move |socket: SocketRef, Data(data): Data<Value>| {
        match serde_json::from_value::<StreamInit>(data) {
            Ok(init) => {
                if let Ok(mut language) = init_language.lock() {
                    language.clone_from(&init.config.target_language);
                }
                let max_inflight = init.max_inflight.min(init_options.max_inflight);
                let ready = json!({
                    "session_id": uuid::Uuid::new_v4().to_string(),
                    "max_inflight": max_inflight,
                    "capabilities": {"formats": ["m4a"], "transform": format!("{:?}", init_options.transform)},
                });
                if let Some(delay) = init_options.slow_down {
                    let advice = json!({"stream_id": init.stream_id, "severity": "medium", "current_inflight": 0,
                        "queue_depth": 0, "action": "slow_down", "recommended_delay_ms": delay.as_millis() as u64});
                    let _ = socket.emit(BACKPRESSURE, &advice);
                }
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
            let index = SEEN.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "echo_sts: fragment {} sequence {} at_ms {}",
                fragment.fragment_id,
                fragment.sequence_number,
                STARTED.elapsed().as_millis()
            );
            // A real STS refuses work beyond the max_inflight it announced.
            let in_flight = fragment_counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            if in_flight > u64::from(options.max_inflight) {
                eprintln!("echo_sts: QUEUE_FULL, {in_flight} in flight");
                fragment_counters.in_flight.fetch_sub(1, Ordering::SeqCst);
                let reply = json!({"fragment_id": fragment.fragment_id, "stream_id": fragment.stream_id,
                    "sequence_number": fragment.sequence_number, "status": "failed",
                    "error": {"code": "QUEUE_FULL", "message": "more fragments in flight than max_inflight", "retryable": true}});
                let _ = socket.emit(FRAGMENT_PROCESSED, &reply);
                return;
            }
            let ack = json!({"fragment_id": fragment.fragment_id, "status": "queued"});
            let _ = socket.emit(FRAGMENT_ACK, &ack);
            if options.pause_at == Some(index + 1) {
                pause_then_resume(
                    socket.clone(),
                    fragment.stream_id.clone(),
                    options.pause_for,
                );
            }
            let mut options = (*options).clone();
            if let Ok(language) = language.lock() {
                options.language.clone_from(&language);
            }
            let counters = fragment_counters.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                tokio::time::sleep(options.delay).await;
                if options.chaos {
                    chaos(&socket, &fragment, index, &options, started).await;
                } else {
                    let mut reply = answer(&fragment, &options, index, started).await;
                    if let Some(malformed) = options.malformed {
                        malformed.apply(&mut reply);
                        if malformed == Malformed::Reorder && index.is_multiple_of(2) {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    counters.in_flight.fetch_sub(1, Ordering::SeqCst);
                    for n in 0..options.backpressure_flood {
                        let action = if n % 2 == 0 { "slow_down" } else { "none" };
                        let advice = json!({"stream_id": fragment.stream_id, "severity": "low",
                            "action": action, "recommended_delay_ms": 1});
                        let _ = socket.emit(BACKPRESSURE, &advice);
                    }
                    for _ in 0..options.unknown_answers {
                        let made_up = json!({"fragment_id": uuid::Uuid::new_v4().to_string(),
                            "stream_id": fragment.stream_id, "sequence_number": fragment.sequence_number,
                            "status": "failed", "error": {"code": "MODEL_ERROR", "message": "made up"}});
                        let _ = socket.emit(FRAGMENT_PROCESSED, &made_up);
                    }
                    let _ = socket.emit(FRAGMENT_PROCESSED, &reply);
                    if options.complete_at == Some(index + 1) {
                        eprintln!("echo_sts: stream:complete unasked");
                        let complete = json!({"total_fragments": index + 1, "statistics": {}});
                        let _ = socket.emit(STREAM_COMPLETE, &complete);
                    }
                    return;
                }
                counters.in_flight.fetch_sub(1, Ordering::SeqCst);
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

fn pause_then_resume(socket: SocketRef, stream_id: String, pause_for: Duration) {
    let advice = move |action: &str| {
        json!({"stream_id": stream_id, "severity": "high", "current_inflight": 1, "queue_depth": 9,
               "action": action, "recommended_delay_ms": 0})
    };
    let _ = socket.emit(BACKPRESSURE, &advice("pause"));
    eprintln!("echo_sts: backpressure pause");
    tokio::spawn(async move {
        tokio::time::sleep(pause_for).await;
        let _ = socket.emit(BACKPRESSURE, &advice("none"));
        eprintln!("echo_sts: backpressure none");
    });
}

/// What an unreliable STS does; the cycle is fixed so tests know what to expect:
/// 0 good, 1 bad base64, 2 not M4A, 3 wrong-typed field, 4 answered twice,
/// 5 answer for an unknown fragment (the real one never comes),
/// 6 failed with a non-retryable code. An unknown event goes with each.
async fn chaos(
    socket: &SocketRef,
    fragment: &FragmentData,
    index: u64,
    options: &Options,
    started: Instant,
) {
    let _ = socket.emit("surprise", &json!({"hello": index}));
    let good = answer(fragment, options, index, started).await;
    let mut reply = good.clone();
    match index % 7 {
        0 => {}
        1 => reply["dubbed_audio"]["data_base64"] = json!("%%% not base64 %%%"),
        2 => {
            reply["dubbed_audio"]["data_base64"] =
                json!(base64::engine::general_purpose::STANDARD.encode(b"not an m4a file"))
        }
        3 => reply["status"] = json!(5),
        4 => {
            let _ = socket.emit(FRAGMENT_PROCESSED, &good);
        }
        5 => reply["fragment_id"] = json!(uuid::Uuid::new_v4().to_string()),
        _ => {
            reply["status"] = json!("failed");
            reply["error"] =
                json!({"code": "INVALID_SEQUENCE", "message": "chaos", "retryable": false});
        }
    }
    let _ = socket.emit(FRAGMENT_PROCESSED, &reply);
}

async fn answer(fragment: &FragmentData, options: &Options, index: u64, started: Instant) -> Value {
    let base = json!({
        "fragment_id": fragment.fragment_id,
        "stream_id": fragment.stream_id,
        "sequence_number": fragment.sequence_number,
    });
    let failing = options.fail_first.is_none_or(|first| index < first);
    let result = match &options.error {
        Some(code) if failing => Err((code.clone(), "error injected by --error".to_owned())),
        _ => {
            let (audio, transform, factor, output) = (
                fragment.audio.clone(),
                options.transform,
                options.duration_factor,
                options.output,
            );
            tokio::task::spawn_blocking(move || dub(&audio, transform, factor, output))
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
            let (transcript, translation) = echo_text(fragment.sequence_number, &options.language);
            reply["transcript"] = json!(transcript);
            reply["translated_text"] = json!(translation);
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
    if options.pad_reply_kib > 0 {
        reply["padding"] = json!("x".repeat(options.pad_reply_kib * 1024));
    }
    reply["processing_time_ms"] = json!(elapsed);
    reply["stage_timings"] = json!({"asr_ms": 0, "translation_ms": 0, "tts_ms": elapsed});
    reply
}

/// Words for the answer to fragment `sequence` in `language`: distinct per
/// fragment and per language, with the accented letters captions must
/// carry (a language without phrases of its own gets Spanish ones, tagged).
fn echo_text(sequence: u64, language: &str) -> (String, String) {
    const SPANISH: [&str; 6] = [
        "Señoras y señores, bienvenidos.",
        "¡Qué partido! El árbitro pitó el final.",
        "Über München scheint heute die Sonne.",
        "Ça commence à l'heure, même sous la pluie.",
        "Años después, el niño volvió a casa.",
        "Él está aquí: ¿dónde está Sofía?",
    ];
    const FRENCH: [&str; 3] = [
        "Mesdames et messieurs, bienvenue.",
        "Quel match ! L'arbitre a sifflé la fin.",
        "Où êtes-vous ? Là-bas, près du château.",
    ];
    const GERMAN: [&str; 3] = [
        "Meine Damen und Herren, willkommen.",
        "Was für ein Spiel! Schluss in München.",
        "Größer, schöner, über alles: die Bühne.",
    ];
    let pick = |phrases: &[&str]| phrases[(sequence % phrases.len() as u64) as usize].to_owned();
    let translation = match language {
        "fr" => pick(&FRENCH),
        "de" => pick(&GERMAN),
        "es" => pick(&SPANISH),
        other => format!("{} [{other}]", pick(&SPANISH)),
    };
    (
        format!("Segment {sequence}, as it was said."),
        format!("{sequence}. {translation}"),
    )
}

type DubError = (String, String);

/// `gain_db` on 16-bit samples, clipped at full scale.
fn apply_gain(pcm: &mut [i16], gain_db: f64) {
    if gain_db == 0.0 {
        return;
    }
    let gain = 10f64.powf(gain_db / 20.0);
    for sample in pcm {
        *sample = (f64::from(*sample) * gain).round().clamp(-32768.0, 32767.0) as i16;
    }
}

/// Decodes the fragment, transforms the samples, encodes and packs them again.
fn dub(
    audio: &AudioPayload,
    transform: Transform,
    factor: f64,
    output: OutputFormat,
) -> Result<AudioPayload, DubError> {
    if matches!(transform, Transform::Copy) {
        return Ok(audio.clone());
    }
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
    let out_config = AacConfig::aac_lc(
        output.sample_rate.unwrap_or(config.sample_rate),
        output.channels.unwrap_or(config.channels),
    )
    .map_err(|e| invalid(e.to_string()))?;
    let mut pcm = transcode::decode(
        &config,
        &frames,
        out_config.sample_rate,
        out_config.channels,
        MODEL_TIME_LIMIT,
    )
    .map_err(model)?;
    let channels = usize::from(out_config.channels.max(1));
    match transform {
        Transform::Reverse => {
            reverse_frames(&mut pcm, channels);
            pcm.iter_mut().for_each(|s| *s /= 2);
        }
        Transform::Tone => tone(&mut pcm, channels, out_config.sample_rate),
        Transform::Identity | Transform::Copy => {}
    }
    apply_gain(&mut pcm, output.gain_db);
    let wanted = ((pcm.len() / channels) as f64 * factor).round() as usize * channels;
    resize_looping(&mut pcm, wanted);
    let silent =
        output.tail_silence_ms as usize * out_config.sample_rate as usize / 1000 * channels;
    let from = pcm.len().saturating_sub(silent);
    pcm[from..].iter_mut().for_each(|s| *s = 0);
    let encoded = transcode::encode(&out_config, &pcm, MODEL_TIME_LIMIT).map_err(model)?;
    let packed = m4a::pack(&out_config, &encoded, 0);
    Ok(AudioPayload {
        format: AUDIO_FORMAT.into(),
        sample_rate_hz: out_config.sample_rate,
        channels: out_config.channels,
        duration_ms: (wanted / channels) as u64 * 1000 / u64::from(out_config.sample_rate),
        data_base64: base64::engine::general_purpose::STANDARD.encode(packed),
    })
}

fn tone(pcm: &mut [i16], channels: usize, rate: u32) {
    for (i, frame) in pcm.chunks_mut(channels).enumerate() {
        let phase = std::f64::consts::TAU * 440.0 * i as f64 / f64::from(rate);
        let value = (0.25 * phase.sin() * 32767.0) as i16;
        frame.iter_mut().for_each(|s| *s = value);
    }
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
