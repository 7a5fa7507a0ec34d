// SPDX-License-Identifier: MPL-2.0

//! The process's one HTTP endpoint: `GET /metrics` (Prometheus), `/healthz`
//! and `/readyz` (orchestrator probes, see `health.rs`), served on the
//! runtime however many elements there are.
//!
//! Hand-written on tokio rather than on hyper or axum: three GET routes with
//! no body, a bounded head and a read timeout are ~100 lines, and the plugin
//! is loaded into every application that embeds it; hyper would add an HTTP
//! stack (and its parser's attack surface) for requests we refuse anyway.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ops::{health, metrics};

static SERVER: Mutex<Option<SocketAddr>> = Mutex::new(None);

/// A request head larger than this is not a scrape.
const MAX_REQUEST_HEAD: usize = 8192;
/// A client that has not sent its request head by then is dropped, so idle
/// connections cannot pile up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The route a request head asks for: its method must be GET, its path one
/// of ours (a query string is allowed and ignored).
fn route(head: &str) -> Option<&'static str> {
    let mut words = head.split_whitespace();
    if words.next() != Some("GET") {
        return None;
    }
    let path = words.next()?;
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    ["/metrics", "/healthz", "/readyz"]
        .into_iter()
        .find(|route| *route == path)
}

/// Status, content type and body for a request head.
fn respond(head: &str) -> (u16, &'static str, String) {
    const JSON: &str = "application/json";
    match route(head) {
        Some("/metrics") => (200, "text/plain; version=0.0.4", metrics::render()),
        Some("/healthz") => {
            let (status, body) = health::healthz();
            (status, JSON, body)
        }
        Some("/readyz") => {
            let (status, body) = health::readyz();
            (status, JSON, body)
        }
        _ => (
            404,
            "text/plain",
            "only /metrics, /healthz and /readyz here\n".to_owned(),
        ),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Service Unavailable",
    }
}

/// Reads one HTTP request head and answers it.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut socket: S) {
    let Ok(Some(head)) = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut socket)).await else {
        return;
    };
    let (status, content_type, body) = respond(&head);
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason_phrase(status),
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

/// Where the endpoint is served after a call to [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// This call bound it.
    Bound(SocketAddr),
    /// An earlier call had bound it; the address asked for now is not used.
    AlreadyServed(SocketAddr),
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `address`, once per
/// process: later calls with any address reuse the first endpoint.
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
        metrics::StreamMetrics::announce("metrics-unit");
        let response = exchange(&["GET /met", "rics HTTP/1.1\r\nHost: x\r\n", "\r\n"]).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("worker_audio_fragments_total{stream_id=\"metrics-unit\"} 0"));
        let with_query = exchange(&["GET /metrics?name[]=x HTTP/1.1\r\n\r\n"]).await;
        assert!(with_query.starts_with("HTTP/1.1 200 OK\r\n"));
    }

    #[tokio::test]
    async fn the_probes_answer_json_with_their_status() {
        // Other tests of this binary may hold streams: only the form and
        // the agreement of status and body are the same whatever they do.
        for path in ["/healthz", "/readyz?verbose"] {
            let response = exchange(&[&format!("GET {path} HTTP/1.1\r\n\r\n")]).await;
            let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
            assert!(head.contains("Content-Type: application/json"), "{head}");
            let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
            let ok = body["status"] == "ok";
            let status = if ok {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}")),
                "{path}: {response}"
            );
        }
    }

    #[tokio::test]
    async fn other_paths_and_methods_get_404() {
        for request in [
            "GET / HTTP/1.1\r\n\r\n",
            "GET /metricsx HTTP/1.1\r\n\r\n",
            "GET /healthz/x HTTP/1.1\r\n\r\n",
            "HEAD /readyz HTTP/1.1\r\n\r\n",
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
