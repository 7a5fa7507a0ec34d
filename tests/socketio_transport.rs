// SPDX-License-Identifier: MPL-2.0

//! The Socket.IO client against a bare websocket server that we script
//! packet by packet: what a server does that a friendly echo never does.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use gststsdub::sts::socketio::{ConnectOptions, Connection, Incoming, Traffic, TransportError};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Accepts one websocket, sends the Engine.IO open packet with these ping
/// timings, reads the namespace CONNECT, then runs `script`.
async fn server<F, Fut>(ping_interval_ms: u64, ping_timeout_ms: u64, script: F) -> String
where
    F: FnOnce(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("websocket");
        let open = format!(
            r#"0{{"sid":"s","upgrades":[],"pingInterval":{ping_interval_ms},"pingTimeout":{ping_timeout_ms},"maxPayload":1000000}}"#
        );
        ws.send(Message::text(open)).await.expect("open");
        let connect = ws.next().await.expect("a packet").expect("readable");
        assert!(
            connect.to_text().expect("text").starts_with("40"),
            "namespace CONNECT first"
        );
        script(ws).await;
    });
    format!("http://127.0.0.1:{port}")
}

fn options(url: String) -> ConnectOptions {
    ConnectOptions {
        url,
        headers: vec![("X-Stream-ID", "s".into()), ("X-Worker-ID", "w".into())],
        auth: None,
        timeout: Duration::from_millis(800),
        tls_ca_file: None,
        traffic: Traffic::default(),
        max_message: 1024 * 1024,
    }
}

#[tokio::test]
async fn connect_waits_for_the_namespace_ack() {
    let url = server(25_000, 20_000, |ws| async move {
        // Never acknowledge the namespace; keep the socket open.
        let _ws = ws;
        std::future::pending::<()>().await;
    })
    .await;
    let result = Connection::connect(options(url)).await;
    assert_eq!(result.err(), Some(TransportError::Timeout));
}

#[tokio::test]
async fn connect_error_carries_the_servers_message() {
    let url = server(25_000, 20_000, |mut ws| async move {
        let _ = ws
            .send(Message::text(r#"44{"message":"stream quota exceeded"}"#))
            .await;
        std::future::pending::<()>().await;
    })
    .await;
    let result = Connection::connect(options(url)).await;
    assert_eq!(
        result.err(),
        Some(TransportError::Refused("stream quota exceeded".into()))
    );
}

#[tokio::test]
async fn a_silent_peer_is_declared_dead_within_ping_interval_plus_timeout() {
    let url = server(200, 200, |mut ws| async move {
        let _ = ws.send(Message::text(r#"40{"sid":"x"}"#)).await;
        // One ping, then silence: the peer is frozen.
        let _ = ws.send(Message::text("2")).await;
        let pong = ws.next().await.expect("a packet").expect("readable");
        assert_eq!(
            pong.to_text().expect("text"),
            "3",
            "the client answers pings"
        );
        std::future::pending::<()>().await;
    })
    .await;
    let mut connection = Connection::connect(options(url)).await.expect("connected");
    let started = Instant::now();
    let reason = loop {
        match connection.incoming.recv().await {
            Some(Incoming::Closed(reason)) => break reason,
            Some(_) => continue,
            None => panic!("the connection ended without saying why"),
        }
    };
    let waited = started.elapsed();
    assert!(reason.contains("no ping"), "{reason}");
    assert!(
        waited <= Duration::from_millis(400 + 150),
        "declared dead after {waited:?}"
    );
}

#[tokio::test]
async fn events_arrive_in_order_and_large_payloads_pass() {
    let big = "x".repeat(600_000);
    let expected = big.clone();
    let url = server(25_000, 20_000, move |mut ws| async move {
        let _ = ws.send(Message::text(r#"40{"sid":"x"}"#)).await;
        // Echo back whatever event comes in, then two of our own.
        let packet = ws.next().await.expect("a packet").expect("readable");
        let _ = ws.send(packet).await;
        let _ = ws.send(Message::text(r#"42["second",{"n":2}]"#)).await;
        std::future::pending::<()>().await;
    })
    .await;
    let mut connection = Connection::connect(options(url)).await.expect("connected");
    connection
        .emit("first", &serde_json::json!({ "blob": big }))
        .expect("emit");
    let mut names = Vec::new();
    while names.len() < 2 {
        if let Some(Incoming::Event { name, data }) = connection.incoming.recv().await {
            if name == "first" {
                assert_eq!(data["blob"].as_str().map(str::len), Some(expected.len()));
            }
            names.push(name);
        }
    }
    assert_eq!(names, ["first", "second"]);
}

#[tokio::test]
async fn every_payload_byte_is_counted_each_way() {
    const CONNECTED: &str = r#"40{"sid":"x"}"#;
    let url = server(25_000, 20_000, |mut ws| async move {
        let _ = ws.send(Message::text(CONNECTED)).await;
        let _ = ws.send(Message::text("2")).await;
        // The pong and the event, in either order; the event goes back as it came.
        while let Some(Ok(packet)) = ws.next().await {
            if packet.to_text().is_ok_and(|t| t.starts_with("42")) {
                let _ = ws.send(packet).await;
            }
        }
        std::future::pending::<()>().await;
    })
    .await;
    let opts = options(url);
    let traffic = opts.traffic.clone();
    let mut connection = Connection::connect(opts).await.expect("connected");
    let payload = serde_json::json!({ "blob": "y".repeat(1000) });
    connection.emit("echo", &payload).expect("emit");
    let echoed = loop {
        match connection.incoming.recv().await {
            Some(Incoming::Event { name, .. }) if name == "echo" => break true,
            Some(Incoming::Closed(_)) | None => break false,
            Some(_) => continue,
        }
    };
    assert!(echoed, "the event came back");
    let event = format!(r#"42["echo",{payload}]"#).len() as u64;
    let open = r#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    // CONNECT "40", pong "3", the event.
    assert_eq!(traffic.sent.get(), 2 + 1 + event);
    // open, CONNECTED, ping "2", the event.
    assert_eq!(
        traffic.received.get(),
        open.len() as u64 + CONNECTED.len() as u64 + 1 + event
    );
}

/// The next event, or why the connection closed, within 2 s.
async fn next_event(connection: &mut Connection) -> Result<String, String> {
    match tokio::time::timeout(Duration::from_secs(2), connection.incoming.recv()).await {
        Ok(Some(Incoming::Event { name, .. })) => Ok(name),
        // Told apart from any event: an empty name.
        Ok(Some(Incoming::Malformed(_))) => Ok(String::new()),
        Ok(Some(Incoming::Closed(reason))) => Err(reason),
        Ok(None) => Err("ended".into()),
        Err(_) => Err("nothing within 2 s".into()),
    }
}

#[tokio::test]
async fn engine_io_garbage_is_skipped_and_the_next_event_arrives() {
    let url = server(25_000, 20_000, |mut ws| async move {
        let _ = ws.send(Message::text(r#"40{"sid":"x"}"#)).await;
        for garbage in [
            "",
            "9",
            "zzz",
            "4",
            "42",
            "42not json",
            "42{}",
            "42[]",
            "42[7]",
            "0{",
            "\u{feff}42",
        ] {
            let _ = ws.send(Message::text(garbage)).await;
        }
        let _ = ws.send(Message::binary(vec![0xff; 64])).await;
        let _ = ws
            .send(Message::text(r#"42["fragment:ack",{"status":"queued"}]"#))
            .await;
        std::future::pending::<()>().await;
    })
    .await;
    let mut connection = Connection::connect(options(url)).await.expect("connected");
    // Unreadable packets come up as nameless events (the session warns,
    // bounded); the connection stays, and the next real event arrives.
    let mut unreadable = 0;
    let event = loop {
        match next_event(&mut connection).await {
            Ok(name) if name.is_empty() => unreadable += 1,
            other => break other,
        }
    };
    assert_eq!(event, Ok("fragment:ack".to_owned()));
    assert!(unreadable >= 1, "garbage is told, not taken as an event");
}

#[tokio::test]
async fn a_websocket_closed_mid_frame_ends_the_connection_with_a_reason() {
    use tokio::io::AsyncWriteExt;
    let url = server(25_000, 20_000, |mut ws| async move {
        let _ = ws.send(Message::text(r#"40{"sid":"x"}"#)).await;
        // A text frame that announces 1,000 bytes, then 10 of them and the
        // TCP connection gone.
        let tcp = ws.get_mut();
        let _ = tcp.write_all(&[0x81, 126, 0x03, 0xe8]).await;
        let _ = tcp.write_all(b"42[\"fragm").await;
        let _ = tcp.shutdown().await;
        drop(ws);
    })
    .await;
    let mut connection = Connection::connect(options(url)).await.expect("connected");
    let ended = next_event(&mut connection).await;
    assert!(
        matches!(&ended, Err(reason) if reason != "nothing within 2 s" && reason != "ended"),
        "{ended:?}"
    );
}
