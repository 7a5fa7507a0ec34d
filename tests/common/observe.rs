// SPDX-License-Identifier: MPL-2.0

//! What the element shows operators: /metrics scrapes and its log lines.
#![allow(dead_code)]

use std::io::{Read, Write};

use super::*;

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

/// One GET of a probe (`/healthz`, `/readyz`): its status and JSON body.
#[track_caller]
pub fn probe(address: &str, path: &str) -> (u16, serde_json::Value) {
    let mut socket = std::net::TcpStream::connect(address).expect("endpoint answers");
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .expect("request");
    let mut response = String::new();
    socket.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, body)
}
