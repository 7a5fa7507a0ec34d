//! Prometheus metrics: one registry per process, labelled by `stream_id`, and
//! one `GET /metrics` endpoint however many elements there are. Updating a
//! metric is an atomic add; rendering happens on the runtime, never on a
//! streaming thread.

use std::net::SocketAddr;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cut_policy::CutReason;
use crate::scheduler::FallbackReason;
use crate::sts::flow::Action;
use crate::sts::transport::Traffic;

pub struct Metrics {
    pub registry: Registry,
    pub fragments_total: IntCounterVec,
    pub dubbed_total: IntCounterVec,
    pub fallback_total: IntCounterVec,
    pub late_answers_total: IntCounterVec,
    pub reconnects_total: IntCounterVec,
    pub backpressure_total: IntCounterVec,
    pub bytes_sent_total: IntCounterVec,
    pub bytes_received_total: IntCounterVec,
    pub gst_bus_errors_total: IntCounterVec,
    pub inflight_fragments: IntGaugeVec,
    pub av_sync_delta_ms: GaugeVec,
    pub sts_breaker_state: IntGaugeVec,
    pub latency_ms: IntGaugeVec,
    pub sts_rtt_ms: HistogramVec,
    pub segment_duration_ms: HistogramVec,
    pub segment_cuts_total: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .expect("metric definitions are static and valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), &["stream_id"])
        .expect("metric definitions are static and valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let stream = &["stream_id"];
    let av_sync_delta_ms = GaugeVec::new(
        Opts::new(
            "worker_av_sync_delta_ms",
            "A/V delta of the output: audio minus video running time, ms",
        ),
        stream,
    )
    .expect("metric definitions are static and valid");
    registry
        .register(Box::new(av_sync_delta_ms.clone()))
        .expect("registered once");
    // 50 ms to 10 s: resolves both a fast local STS and one near its timeout.
    let buckets = vec![
        50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 8000.0,
        10000.0,
    ];
    let sts_rtt_ms = HistogramVec::new(
        HistogramOpts::new(
            "worker_sts_rtt_ms",
            "Round trip of a fragment to the STS and back, ms",
        )
        .buckets(buckets),
        stream,
    )
    .expect("metric definitions are static and valid");
    registry
        .register(Box::new(sts_rtt_ms.clone()))
        .expect("registered once");
    // 0.5 s to 60 s: the segment-duration range, finer where pauses cut.
    let segment_buckets = vec![
        500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0, 4000.0, 5000.0, 6000.0, 8000.0, 10000.0,
        20000.0, 60000.0,
    ];
    let segment_duration_ms = HistogramVec::new(
        HistogramOpts::new(
            "worker_segment_duration_ms",
            "Duration of the audio segments cut, ms",
        )
        .buckets(segment_buckets),
        stream,
    )
    .expect("metric definitions are static and valid");
    registry
        .register(Box::new(segment_duration_ms.clone()))
        .expect("registered once");
    Metrics {
        segment_duration_ms,
        segment_cuts_total: counter(
            &registry,
            "worker_segment_cuts_total",
            "Segments cut, by why they closed (pause, longest, eos, discont)",
            &["stream_id", "reason"],
        ),
        fragments_total: counter(
            &registry,
            "worker_audio_fragments_total",
            "Audio segments that left the element",
            stream,
        ),
        dubbed_total: counter(
            &registry,
            "worker_dubbed_total",
            "Segments that left dubbed",
            stream,
        ),
        fallback_total: counter(
            &registry,
            "worker_fallback_total",
            "Segments that left as original audio, by reason",
            &["stream_id", "reason"],
        ),
        late_answers_total: counter(
            &registry,
            "worker_late_answers_total",
            "STS answers that came after their segment fell back",
            stream,
        ),
        reconnects_total: counter(
            &registry,
            "worker_sts_reconnects_total",
            "Failed or lost STS connections, each followed by a reconnect attempt",
            stream,
        ),
        backpressure_total: counter(
            &registry,
            "worker_backpressure_events_total",
            "STS backpressure events, by action",
            &["stream_id", "action"],
        ),
        bytes_sent_total: counter(
            &registry,
            "worker_sts_bytes_sent_total",
            "Websocket payload bytes sent to the STS",
            stream,
        ),
        bytes_received_total: counter(
            &registry,
            "worker_sts_bytes_received_total",
            "Websocket payload bytes received from the STS",
            stream,
        ),
        gst_bus_errors_total: counter(
            &registry,
            "worker_gst_bus_errors_total",
            "Error messages on the bus: every element's with the stsdub-bus-errors tracer, else stsdub's own",
            stream,
        ),
        inflight_fragments: int_gauge(
            &registry,
            "worker_inflight_fragments",
            "Segments waiting for their outcome",
        ),
        sts_breaker_state: int_gauge(
            &registry,
            "worker_sts_breaker_state",
            "Circuit breaker: 0 closed, 1 half_open, 2 open",
        ),
        latency_ms: int_gauge(
            &registry,
            "worker_latency_ms",
            "Latency segments are decided against, ms",
        ),
        av_sync_delta_ms,
        sts_rtt_ms,
        registry,
    }
});

/// One stream's series, looked up once when the stream starts: the element
/// counts through these handles instead of looking its labels up each time.
#[derive(Clone)]
pub struct StreamMetrics {
    pub fragments: IntCounter,
    pub dubbed: IntCounter,
    pub late_answers: IntCounter,
    pub reconnects: IntCounter,
    pub inflight: IntGauge,
    pub breaker_state: IntGauge,
    pub latency_ms: IntGauge,
    pub av_sync_delta_ms: Gauge,
    pub rtt_ms: Histogram,
    pub segment_duration_ms: Histogram,
    fallback: Vec<IntCounter>,
    cuts: Vec<IntCounter>,
    backpressure: Vec<(&'static str, IntCounter)>,
}

impl StreamMetrics {
    /// Every series of `stream_id`, each existing from now on at zero: an
    /// operator's `rate()` and `absent()` alerts then see a stream that has
    /// not yet fallen back, reconnected or erred, instead of no series.
    pub fn announce(stream_id: &str) -> Self {
        let m = &*METRICS;
        let stream = &[stream_id];
        for counter in [
            &m.bytes_sent_total,
            &m.bytes_received_total,
            &m.gst_bus_errors_total,
        ] {
            counter.with_label_values(stream);
        }
        Self {
            fragments: m.fragments_total.with_label_values(stream),
            dubbed: m.dubbed_total.with_label_values(stream),
            late_answers: m.late_answers_total.with_label_values(stream),
            reconnects: m.reconnects_total.with_label_values(stream),
            inflight: m.inflight_fragments.with_label_values(stream),
            breaker_state: m.sts_breaker_state.with_label_values(stream),
            latency_ms: m.latency_ms.with_label_values(stream),
            av_sync_delta_ms: m.av_sync_delta_ms.with_label_values(stream),
            rtt_ms: m.sts_rtt_ms.with_label_values(stream),
            segment_duration_ms: m.segment_duration_ms.with_label_values(stream),
            cuts: CutReason::ALL
                .iter()
                .map(|reason| {
                    m.segment_cuts_total
                        .with_label_values(&[stream_id, reason.as_str()])
                })
                .collect(),
            fallback: FallbackReason::ALL
                .iter()
                .map(|reason| {
                    m.fallback_total
                        .with_label_values(&[stream_id, reason.as_str()])
                })
                .collect(),
            backpressure: Action::NAMES
                .iter()
                .map(|&action| {
                    let counter = m.backpressure_total.with_label_values(&[stream_id, action]);
                    (action, counter)
                })
                .collect(),
        }
    }

    /// `worker_fallback_total{reason}` of this stream.
    pub fn fallback(&self, reason: FallbackReason) -> Option<&IntCounter> {
        let index = FallbackReason::ALL.iter().position(|r| *r == reason)?;
        self.fallback.get(index)
    }

    /// `worker_segment_cuts_total{reason}` of this stream.
    pub fn cuts(&self, reason: CutReason) -> Option<&IntCounter> {
        let index = CutReason::ALL.iter().position(|r| *r == reason)?;
        self.cuts.get(index)
    }

    /// `worker_backpressure_total{action}` of this stream.
    pub fn backpressure(&self, action: &str) -> Option<&IntCounter> {
        self.backpressure
            .iter()
            .find(|(name, _)| *name == action)
            .map(|(_, counter)| counter)
    }
}

/// The byte counters of one stream, for its STS connections.
pub fn traffic(stream_id: &str) -> Traffic {
    Traffic {
        sent: METRICS.bytes_sent_total.with_label_values(&[stream_id]),
        received: METRICS.bytes_received_total.with_label_values(&[stream_id]),
    }
}

/// The registry in Prometheus text format.
pub fn render() -> String {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

static SERVER: Mutex<Option<SocketAddr>> = Mutex::new(None);

/// A request head larger than this is not a scrape.
const MAX_REQUEST_HEAD: usize = 8192;
/// A client that has not sent its request head by then is dropped, so idle
/// connections cannot pile up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one HTTP request head and answers it: the registry for
/// `GET /metrics` (query string allowed), 404 for anything else.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut socket: S) {
    let Ok(Some(head)) = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut socket)).await else {
        return;
    };
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let wanted = head.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?"));
    let (status, body) = if wanted {
        ("200 OK", render())
    } else {
        ("404 Not Found", "only /metrics here\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// The request head, however it is split across reads; None if the client
/// closes first or sends more than a head can be.
async fn read_head<S: AsyncRead + Unpin>(socket: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 || head.len() + read > MAX_REQUEST_HEAD {
            return None;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Where `/metrics` is served after a call to [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// This call bound it.
    Bound(SocketAddr),
    /// An earlier call had bound it; the address asked for now is not used.
    AlreadyServed(SocketAddr),
}

/// Serves `GET /metrics` on `address`, once per process: later calls with
/// any address reuse the first endpoint.
pub fn serve(runtime: &tokio::runtime::Handle, address: &str) -> std::io::Result<Endpoint> {
    let mut server = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(bound) = *server {
        return Ok(Endpoint::AlreadyServed(bound));
    }
    let listener = std::net::TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let _guard = runtime.enter();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    runtime.spawn(async move {
        loop {
            let socket = match listener.accept().await {
                Ok((socket, _)) => socket,
                // Out of descriptors or a connection reset before accept:
                // keep serving, after a pause so a full table is not spun on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            tokio::spawn(answer(socket));
        }
    });
    *server = Some(bound);
    Ok(Endpoint::Bound(bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `answer` writes back for what the client sends, in pieces.
    async fn exchange(pieces: &[&str]) -> String {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let answering = tokio::spawn(answer(server));
        for piece in pieces {
            client.write_all(piece.as_bytes()).await.expect("write");
        }
        let mut response = String::new();
        client.read_to_string(&mut response).await.expect("read");
        answering.await.expect("answered");
        response
    }

    #[tokio::test]
    async fn a_scrape_split_across_packets_is_answered() {
        StreamMetrics::announce("metrics-unit");
        let response = exchange(&["GET /met", "rics HTTP/1.1\r\nHost: x\r\n", "\r\n"]).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("worker_audio_fragments_total{stream_id=\"metrics-unit\"} 0"));
        let with_query = exchange(&["GET /metrics?name[]=x HTTP/1.1\r\n\r\n"]).await;
        assert!(with_query.starts_with("HTTP/1.1 200 OK\r\n"));
    }

    #[tokio::test]
    async fn other_paths_and_methods_get_404() {
        for request in [
            "GET / HTTP/1.1\r\n\r\n",
            "GET /metricsx HTTP/1.1\r\n\r\n",
            "POST /metrics HTTP/1.1\r\n\r\n",
        ] {
            let response = exchange(&[request]).await;
            assert!(
                response.starts_with("HTTP/1.1 404 "),
                "{request}: {response}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_dropped_after_the_timeout() {
        let (mut client, server) = tokio::io::duplex(1024);
        let answering = tokio::spawn(answer(server));
        let mut response = Vec::new();
        // Paused time jumps to the timeout once everything waits.
        client.read_to_end(&mut response).await.expect("closed");
        answering.await.expect("ended");
        assert!(response.is_empty());
    }

    #[tokio::test]
    async fn an_endless_head_is_refused() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let answering = tokio::spawn(answer(server));
        let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
        for _ in 0..(MAX_REQUEST_HEAD / line.len() + 2) {
            if client.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        let mut response = Vec::new();
        let _ = client.read_to_end(&mut response).await;
        answering.await.expect("ended");
        assert!(response.is_empty());
    }
}
