// SPDX-License-Identifier: MPL-2.0

//! One stream's session with the STS, a tokio task: connect, `stream:init`,
//! fragments in flight with their timeouts, answers, `stream:end`, and
//! reconnection.
//!
//! The task is driven by commands from its [`SessionHandle`]. Every
//! fragment handed to it gets exactly one reply: the dubbed M4A, or why it
//! was not dubbed. A fragment whose caller gave up (its receiver was
//! dropped, e.g. at a live deadline) is not sent, and a late answer for it
//! is only reported.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::answer::{UNKNOWN_CODE, answer};
use super::breaker::{Admission, Breaker, BreakerState};
use super::exchange::*;
use super::flow::{Action, FlowControl, Gate};
use super::protocol::*;
use super::socketio::{ConnectOptions, Connection, Connector, Incoming};

/// Fragments remembered as sent, to tell a late answer from one for a
/// fragment never sent: more than can be in flight or answered late.
const SENT_REMEMBERED: usize = 256;

pub(super) enum Command {
    Submit(Fragment, oneshot::Sender<Reply>),
    Applied(String),
    End,
}

struct InFlight {
    reply: oneshot::Sender<Reply>,
    sequence_number: u64,
    sent_at: Instant,
    expires: Instant,
}

enum Ended {
    /// The element is done with the session.
    Finished,
    Lost(String),
}

pub(super) struct Session {
    config: SessionConfig,
    events: EventSink,
    commands: mpsc::UnboundedReceiver<Command>,
    waiting: VecDeque<(Fragment, oneshot::Sender<Reply>)>,
    in_flight: HashMap<String, InFlight>,
    max_inflight: u32,
    next_sequence: u64,
    connector: Connector,
    breaker: Breaker,
    reported_breaker: BreakerState,
    flow: FlowControl,
    /// The last fragments sent, oldest first.
    sent: VecDeque<String>,
}

impl Session {
    pub(super) fn new(
        config: SessionConfig,
        events: EventSink,
        commands: mpsc::UnboundedReceiver<Command>,
        connector: Connector,
    ) -> Self {
        let max_inflight = config.max_inflight;
        let breaker = Breaker::new(config.breaker_threshold, config.breaker_cooldown);
        Self {
            config,
            events,
            commands,
            waiting: VecDeque::new(),
            in_flight: HashMap::new(),
            max_inflight,
            next_sequence: 0,
            connector,
            breaker,
            reported_breaker: BreakerState::Closed,
            flow: FlowControl::default(),
            sent: VecDeque::with_capacity(SENT_REMEMBERED),
        }
    }

    pub(super) async fn run(mut self) {
        let mut failures = 0usize;
        loop {
            match self.establish().await {
                Ok(connection) => {
                    failures = 0;
                    match self.serve(connection).await {
                        Ended::Finished => return,
                        Ended::Lost(reason) => {
                            self.fall_back_all(Undubbed::Disconnected, &reason);
                            (self.events)(SessionEvent::Disconnected { reason });
                        }
                    }
                }
                Err(error) => {
                    if self.config.give_up && failures >= self.config.backoff.len() {
                        (self.events)(SessionEvent::GaveUp {
                            attempts: failures + 1,
                            error,
                        });
                        self.fall_back_all(Undubbed::Disconnected, "gave up reconnecting");
                        self.reject_until_end().await;
                        return;
                    }
                    let retry_in = self.backoff(failures);
                    (self.events)(SessionEvent::ConnectFailed { error, retry_in });
                }
            }
            let delay = self.backoff(failures);
            failures += 1;
            if !self.wait_disconnected(delay).await {
                return;
            }
        }
    }

    fn backoff(&self, failures: usize) -> Duration {
        let last = self.config.backoff.len().saturating_sub(1);
        self.config
            .backoff
            .get(failures.min(last))
            .copied()
            .unwrap_or(Duration::from_secs(2))
    }

    /// Connects and opens the stream; fragments arriving meanwhile wait.
    async fn establish(&mut self) -> Result<Connection, String> {
        let mut headers = vec![
            ("X-Stream-ID", self.config.stream_id.clone()),
            ("X-Worker-ID", self.config.worker_id.clone()),
        ];
        // Servers take a token either way: Socket.IO's CONNECT auth payload
        // (python-socketio's `auth`, socket.io's `handshake.auth`) or a header.
        let auth = self.config.auth_token.as_ref().map(|Secret(token)| {
            headers.push(("Authorization", format!("Bearer {token}")));
            serde_json::json!({ "token": token })
        });
        let options = ConnectOptions {
            url: self.config.url.clone(),
            headers,
            auth,
            timeout: CONNECT_TIMEOUT,
            tls_ca_file: self.config.tls_ca_file.clone(),
            traffic: self.config.traffic.clone(),
            max_message: max_message(self.config.stream.chunk_duration_ms),
        };
        let mut connection = (self.connector)(options).await.map_err(|e| e.to_string())?;
        let init = StreamInit {
            stream_id: self.config.stream_id.clone(),
            worker_id: self.config.worker_id.clone(),
            config: self.config.stream.clone(),
            max_inflight: self.config.max_inflight,
            timeout_ms: self.config.timeout.as_millis() as u32,
        };
        connection
            .emit(STREAM_INIT, &init)
            .map_err(|e| e.to_string())?;
        let mut early_advice = Vec::new();
        let ready = tokio::time::timeout(
            CONNECT_TIMEOUT,
            wait_for_ready(&mut connection, &mut early_advice),
        )
        .await
        .map_err(|_| {
            format!(
                "no {STREAM_READY} within {} ms",
                CONNECT_TIMEOUT.as_millis()
            )
        })??;
        // The server's max_inflight wins when it is lower; 0 would stall us.
        self.max_inflight = match ready.max_inflight {
            Some(server) if server > 0 => server.min(self.config.max_inflight),
            _ => self.config.max_inflight,
        };
        self.next_sequence = 0;
        self.flow.reset();
        for advice in early_advice {
            self.on_backpressure(advice);
        }
        (self.events)(SessionEvent::Connected {
            session_id: ready.session_id,
            max_inflight: self.max_inflight,
        });
        Ok(connection)
    }

    async fn serve(&mut self, mut connection: Connection) -> Ended {
        let mut ending: Option<Instant> = None;
        loop {
            let send_gate = self.send_waiting(&connection);
            self.report_breaker();
            let next_expiry = self.in_flight.values().map(|f| f.expires).min();
            let half_open_at = self.breaker.reopens_at().map(Instant::from_std);
            let wake = [next_expiry, ending, send_gate, half_open_at]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                command = self.commands.recv(), if ending.is_none() => match command {
                    Some(Command::Submit(fragment, reply)) => self.waiting.push_back((fragment, reply)),
                    Some(Command::Applied(fragment_id)) => {
                        let ack = FragmentAck { fragment_id, status: "applied".into() };
                        let _ = connection.emit(FRAGMENT_ACK, &ack);
                    }
                    Some(Command::End) => {
                        let end = StreamEnd { stream_id: self.config.stream_id.clone() };
                        let _ = connection.emit(STREAM_END, &end);
                        ending = Some(Instant::now() + END_WAIT);
                    }
                    None => {
                        connection.close().await;
                        return Ended::Finished;
                    }
                },
                incoming = connection.incoming.recv() => match incoming {
                    Some(Incoming::Event { name, data }) => {
                        if self.on_event(&name, data) {
                            connection.close().await;
                            if ending.is_none() {
                                // Not asked for: that session is over, the
                                // stream is not. Reconnect and go on dubbing.
                                return Ended::Lost(format!(
                                    "the STS sent {STREAM_COMPLETE} before {STREAM_END}"
                                ));
                            }
                            self.fall_back_all(Undubbed::Disconnected, "stream complete");
                            return Ended::Finished;
                        }
                    }
                    Some(Incoming::Malformed(reason)) => {
                        self.warn(None, format!("unreadable packet from the STS: {reason}"));
                    }
                    Some(Incoming::Closed(reason)) => return Ended::Lost(reason),
                    None => return Ended::Lost("connection task ended".into()),
                },
                _ = sleep_until_opt(wake) => {
                    if ending.is_some_and(|deadline| Instant::now() >= deadline) {
                        (self.events)(SessionEvent::Warning {
                            fragment_id: None,
                            message: format!("no {STREAM_COMPLETE} within {} ms of {STREAM_END}", END_WAIT.as_millis()),
                        });
                        self.fall_back_all(Undubbed::Timeout, "stream ended");
                        connection.close().await;
                        return Ended::Finished;
                    }
                    self.expire(Instant::now());
                }
            }
        }
    }

    /// Sends queued fragments while there is a free slot, the STS does not
    /// hold us back and the breaker admits them; skips abandoned ones.
    /// Returns when to try again if a `slow_down` spacing holds the head.
    fn send_waiting(&mut self, connection: &Connection) -> Option<Instant> {
        while (self.in_flight.len() as u32) < self.max_inflight {
            let (fragment, reply) = self.waiting.pop_front()?;
            if reply.is_closed() {
                continue;
            }
            let now = Instant::now();
            match self.flow.gate(now.into_std()) {
                Gate::Open => {}
                Gate::Wait(at) => {
                    self.waiting.push_front((fragment, reply));
                    return Some(Instant::from_std(at));
                }
                Gate::Paused => {
                    let _ = reply.send(Err(Fallback::new(
                        Undubbed::Paused,
                        "the STS asked to pause",
                    )));
                    continue;
                }
            }
            match self.breaker.admit(now.into_std(), &fragment.fragment_id) {
                Admission::Refuse => {
                    let _ = reply.send(Err(Fallback::new(
                        Undubbed::BreakerOpen,
                        "circuit breaker open",
                    )));
                    continue;
                }
                Admission::Probe | Admission::Send => {}
            }
            self.send(connection, fragment, reply, now);
        }
        None
    }

    fn send(
        &mut self,
        connection: &Connection,
        fragment: Fragment,
        reply: oneshot::Sender<Reply>,
        now: Instant,
    ) {
        let sequence_number = self.next_sequence;
        let data = FragmentData {
            fragment_id: fragment.fragment_id.clone(),
            stream_id: self.config.stream_id.clone(),
            sequence_number,
            timestamp: unix_millis(),
            audio: AudioPayload {
                format: AUDIO_FORMAT.into(),
                sample_rate_hz: self.config.stream.sample_rate_hz,
                channels: self.config.stream.channels,
                duration_ms: fragment.duration_ms,
                data_base64: base64::engine::general_purpose::STANDARD.encode(&fragment.m4a),
            },
            metadata: FragmentMetadata {
                pts_ns: fragment.pts_ns,
            },
        };
        if let Err(e) = connection.emit(FRAGMENT_DATA, &data) {
            self.breaker.no_verdict(&fragment.fragment_id);
            let _ = reply.send(Err(Fallback::new(Undubbed::Disconnected, e.to_string())));
            return;
        }
        self.next_sequence += 1;
        self.flow.sent(now.into_std());
        if self.sent.len() == SENT_REMEMBERED {
            self.sent.pop_front();
        }
        self.sent.push_back(fragment.fragment_id.clone());
        self.in_flight.insert(
            fragment.fragment_id,
            InFlight {
                reply,
                sequence_number,
                sent_at: now,
                expires: now + self.config.timeout,
            },
        );
    }

    fn report_breaker(&mut self) {
        let state = self.breaker.state(Instant::now().into_std());
        if state != self.reported_breaker {
            self.reported_breaker = state;
            (self.events)(SessionEvent::BreakerChanged { state });
        }
    }

    fn on_backpressure(&mut self, action: Action) {
        self.flow.apply(action);
        if action == Action::Pause {
            // Produced while paused: falls back now rather than waits.
            for (_, reply) in self.waiting.drain(..) {
                let _ = reply.send(Err(Fallback::new(
                    Undubbed::Paused,
                    "the STS asked to pause",
                )));
            }
        }
        (self.events)(SessionEvent::Backpressure { action });
    }

    /// Handles one server event; true once the stream is complete.
    fn on_event(&mut self, name: &str, data: Value) -> bool {
        match ServerEvent::read(name, data) {
            Ok(ServerEvent::FragmentProcessed(processed)) => self.on_processed(*processed),
            Ok(ServerEvent::Backpressure(action)) => self.on_backpressure(action),
            Ok(ServerEvent::FragmentAck | ServerEvent::StreamReady(_)) => {}
            Ok(ServerEvent::StreamComplete(complete)) => {
                (self.events)(SessionEvent::Completed {
                    total_fragments: complete.total_fragments,
                    statistics: complete.statistics,
                });
                return true;
            }
            Err(error) => self.on_unreadable(error),
        }
        false
    }

    /// An event that cannot be acted on: a warning; the fragment it names,
    /// if in flight, falls back.
    fn on_unreadable(&mut self, error: EventError) {
        let message = error.to_string();
        let EventError::Malformed {
            fragment_id: Some(id),
            ..
        } = error
        else {
            return self.warn(None, message);
        };
        match self.in_flight.remove(&id) {
            Some(flight) => {
                self.breaker.no_verdict(&id);
                self.warn(Some(id), message.clone());
                let _ = flight
                    .reply
                    .send(Err(Fallback::new(Undubbed::InvalidReply, message)));
            }
            None => self.warn(None, message),
        }
    }

    fn on_processed(&mut self, processed: FragmentProcessed) {
        let Some(flight) = self.in_flight.remove(&processed.fragment_id) else {
            let fragment_id = processed.fragment_id;
            let event = if self.sent.contains(&fragment_id) {
                SessionEvent::LateAnswer { fragment_id }
            } else {
                SessionEvent::UnknownAnswer { fragment_id }
            };
            (self.events)(event);
            return;
        };
        let fragment_id = processed.fragment_id.clone();
        let failure_code = match processed.status {
            ProcessedStatus::Failed => Some(
                processed
                    .error
                    .as_ref()
                    .map_or(ErrorCode::Other(UNKNOWN_CODE.into()), |e| e.code.clone()),
            ),
            _ => None,
        };
        let reply = answer(processed, flight.sequence_number, flight.sent_at.elapsed());
        match (&reply, failure_code) {
            (Ok(_), _) => self.breaker.record_success(),
            (Err(_), Some(code)) => {
                self.breaker
                    .record_failure(&fragment_id, &code, Instant::now().into_std());
            }
            (Err(_), None) => self.breaker.no_verdict(&fragment_id),
        }
        if flight.reply.send(reply).is_err() {
            // The element gave up on it at its deadline while we waited.
            (self.events)(SessionEvent::LateAnswer { fragment_id });
        }
    }

    fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(flight) = self.in_flight.remove(&id) {
                self.breaker
                    .record_failure(&id, &ErrorCode::Timeout, now.into_std());
                let detail = format!("no answer within {} ms", self.config.timeout.as_millis());
                let _ = flight
                    .reply
                    .send(Err(Fallback::new(Undubbed::Timeout, detail)));
            }
        }
    }

    fn fall_back_all(&mut self, reason: Undubbed, detail: &str) {
        self.breaker.probe_lost();
        for (_, flight) in self.in_flight.drain() {
            let _ = flight.reply.send(Err(Fallback::new(reason, detail)));
        }
        for (_, reply) in self.waiting.drain(..) {
            let _ = reply.send(Err(Fallback::new(reason, detail)));
        }
    }

    /// Waits out a backoff; fragments meanwhile fall back at once. False when
    /// the element is done with the session.
    async fn wait_disconnected(&mut self, delay: Duration) -> bool {
        self.fall_back_all(Undubbed::Disconnected, "not connected to the STS");
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Submit(_, reply)) => {
                        let _ = reply.send(Err(Fallback::new(Undubbed::Disconnected, "not connected to the STS")));
                    }
                    Some(Command::Applied(_)) => {}
                    Some(Command::End) | None => return false,
                },
                _ = tokio::time::sleep_until(until) => return true,
            }
        }
    }

    /// After giving up: every fragment falls back until the element ends.
    async fn reject_until_end(&mut self) {
        while let Some(command) = self.commands.recv().await {
            match command {
                Command::Submit(_, reply) => {
                    let _ = reply.send(Err(Fallback::new(
                        Undubbed::Disconnected,
                        "gave up reconnecting",
                    )));
                }
                Command::Applied(_) => {}
                Command::End => return,
            }
        }
    }

    fn warn(&self, fragment_id: Option<String>, message: String) {
        (self.events)(SessionEvent::Warning {
            fragment_id,
            message,
        });
    }
}

/// Waits for `stream:ready`; `backpressure` advice that comes first is kept
/// for the caller to apply before the first fragment goes out.
async fn wait_for_ready(
    connection: &mut Connection,
    early_advice: &mut Vec<Action>,
) -> Result<StreamReady, String> {
    loop {
        let (name, data) = match connection.incoming.recv().await {
            Some(Incoming::Event { name, data }) => (name, data),
            Some(Incoming::Malformed(_)) => continue,
            Some(Incoming::Closed(reason)) => return Err(reason),
            None => return Err("connection closed".into()),
        };
        match ServerEvent::read(&name, data) {
            Ok(ServerEvent::StreamReady(ready)) => return Ok(ready),
            Ok(ServerEvent::Backpressure(action)) => early_advice.push(action),
            Err(
                error @ EventError::Malformed {
                    event: STREAM_READY,
                    ..
                },
            ) => {
                return Err(error.to_string());
            }
            _ => continue,
        }
    }
}

async fn sleep_until_opt(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sts::SessionHandle;
    use crate::sts::socketio::{Traffic, TransportError};
    use std::sync::{Arc, Mutex};

    fn config(give_up: bool) -> SessionConfig {
        SessionConfig {
            url: "http://127.0.0.1:9".into(),
            stream_id: "s".into(),
            worker_id: "w".into(),
            stream: StreamConfig {
                source_language: "en".into(),
                target_language: "es".into(),
                voice_profile: "default".into(),
                format: "m4a".into(),
                sample_rate_hz: 48000,
                channels: 2,
                chunk_duration_ms: 6000,
            },
            max_inflight: 3,
            timeout: Duration::from_secs(8),
            backoff: doubling_backoff(Duration::from_secs(2), 5),
            give_up,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            auth_token: None,
            tls_ca_file: None,
            traffic: Traffic::default(),
        }
    }

    /// The STS is unreachable: every connect attempt is refused at once.
    fn refusing() -> Connector {
        Arc::new(|_| Box::pin(async { Err(TransportError::Connect("connection refused".into())) }))
    }

    /// Every session event, with when it came after the start.
    type EventLog = Arc<Mutex<Vec<(Duration, SessionEvent)>>>;

    fn recording() -> (EventSink, EventLog) {
        let start = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink_log = log.clone();
        let sink: EventSink = Arc::new(move |event| {
            sink_log.lock().unwrap().push((start.elapsed(), event));
        });
        (sink, log)
    }

    fn fragment(id: &str) -> Fragment {
        Fragment {
            fragment_id: id.into(),
            pts_ns: 0,
            duration_ms: 6000,
            m4a: vec![],
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reconnects_after_2_4_8_16_32_s_then_probes_every_32_s() {
        let (events, log) = recording();
        let handle = SessionHandle::start_with(
            &tokio::runtime::Handle::current(),
            config(false),
            events,
            refusing(),
        );
        tokio::time::sleep(Duration::from_secs(200)).await;
        let attempts: Vec<u64> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| matches!(e, SessionEvent::ConnectFailed { .. }))
            .map(|(at, _)| at.as_secs())
            .collect();
        assert_eq!(attempts, [0, 2, 6, 14, 30, 62, 94, 126, 158, 190]);
        drop(handle);
    }

    #[tokio::test(start_paused = true)]
    async fn fragments_fall_back_at_once_while_disconnected() {
        let (events, _) = recording();
        let handle = SessionHandle::start_with(
            &tokio::runtime::Handle::current(),
            config(false),
            events,
            refusing(),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent_at = Instant::now();
        let reply = handle.submit(fragment("a")).await.expect("a reply");
        assert_eq!(reply.unwrap_err().reason, Undubbed::Disconnected);
        assert_eq!(
            sent_at.elapsed(),
            Duration::ZERO,
            "no waiting for the reconnect"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_attempts_when_asked_to() {
        let (events, log) = recording();
        let handle = SessionHandle::start_with(
            &tokio::runtime::Handle::current(),
            config(true),
            events,
            refusing(),
        );
        tokio::time::sleep(Duration::from_secs(300)).await;
        let gave_up: Vec<(u64, usize)> = log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(at, e)| match e {
                SessionEvent::GaveUp { attempts, .. } => Some((at.as_secs(), *attempts)),
                _ => None,
            })
            .collect();
        assert_eq!(
            gave_up,
            [(62, 6)],
            "the first connect and 5 retries, then an error"
        );
        let reply = handle.submit(fragment("b")).await.expect("a reply");
        assert_eq!(reply.unwrap_err().reason, Undubbed::Disconnected);
    }
}
