// SPDX-License-Identifier: MPL-2.0

//! The transport against real peers: an auth token the server checks (and a
//! clear message when it refuses), wss:// with a CA made here, and secrets
//! kept out of logs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

use common::*;

const LIMIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "s3cr3t-t0ken-4711";

#[test]
fn auth_token_is_sent_and_checked_and_never_logged() {
    let echo = EchoSts::start(&["--require-token", TOKEN]);
    let output = scratch("token.flv");
    let props = format!("sts-url={} auth-token={TOKEN}", echo.url);
    let (run, logs) = with_captured_logs(gst::DebugLevel::Memdump, || {
        run_pipeline(&file_to_flv(&sample(), &output, &props), LIMIT)
    });
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert_eq!(run.statuses(), vec!["dubbed"; 10]);
    assert!(!logs.is_empty(), "debug logs were captured");
    assert!(
        logs.iter().all(|(_, l)| !l.contains(TOKEN)),
        "the token appears in a log line"
    );
    assert!(run.warnings.iter().all(|w| !w.contains(TOKEN)));
}

#[test]
fn a_refused_connection_says_why_and_the_stream_goes_on() {
    let echo = EchoSts::start(&["--require-token", TOKEN]);
    let output = scratch("token-refused.flv");
    let props = format!("sts-url={} auth-token=wrong-token", echo.url);
    let run = run_pipeline(&file_to_flv(&sample(), &output, &props), LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("server refused the connection: invalid token")),
        "{:?}",
        run.warnings
    );
    assert_eq!(run.statuses(), vec!["fallback"; 10]);
    assert!(run.warnings.iter().all(|w| !w.contains("wrong-token")));
}

/// A CA, a server certificate for localhost signed by it, and the CA's PEM.
struct TestPki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

fn make_pki() -> TestPki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "stsdub test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server_params =
        CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    TestPki {
        ca_pem: ca_cert.pem(),
        server_cert: server_cert.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    }
}

/// Terminates TLS on a loopback port and forwards to `plain_port`; dropping
/// it drops its runtime, which ends the accept loop.
struct TlsProxy {
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

impl TlsProxy {
    fn start(pki: &TestPki, plain_port: u16) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(("127.0.0.1", plain_port)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self {
            port,
            _runtime: runtime,
        }
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the URL")
}

#[test]
fn wss_with_a_ca_file_verifies_and_dubs() {
    let echo = EchoSts::start(&[]);
    let pki = make_pki();
    let proxy = TlsProxy::start(&pki, port_of(&echo.url));
    let ca_file = scratch("test-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).expect("write CA");
    let output = scratch("wss.flv");
    let props = format!(
        "sts-url=https://localhost:{} tls-ca-file={}",
        proxy.port,
        ca_file.display()
    );
    let run = run_pipeline(&file_to_flv(&sample(), &output, &props), LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert_eq!(run.statuses(), vec!["dubbed"; 10], "{:?}", run.warnings);
}

#[test]
fn wss_with_an_unknown_ca_is_refused_and_falls_back() {
    let echo = EchoSts::start(&[]);
    let pki = make_pki();
    let proxy = TlsProxy::start(&pki, port_of(&echo.url));
    let output = scratch("wss-untrusted.flv");
    let props = format!("sts-url=wss://localhost:{}", proxy.port);
    let run = run_pipeline(&file_to_flv(&sample(), &output, &props), LIMIT);
    assert!(run.eos && run.errors.is_empty(), "{run:?}");
    assert!(
        run.warnings.iter().any(|w| w.contains("certificate")),
        "the warning names the certificate problem: {:?}",
        run.warnings
    );
    assert_eq!(run.statuses(), vec!["fallback"; 10]);
}

#[test]
fn an_unreadable_ca_file_is_an_error_naming_the_property() {
    let output = scratch("wss-bad-ca.flv");
    let props = "sts-url=wss://localhost:1 tls-ca-file=/nonexistent/ca.pem";
    let run = run_pipeline(&file_to_flv(&sample(), &output, props), LIMIT);
    assert!(!run.eos);
    assert!(
        run.errors.iter().any(|e| e.contains("tls-ca-file")),
        "{:?}",
        run.errors
    );
}
