// SPDX-License-Identifier: MPL-2.0

//! An RTSP server (gst-rtsp-server) for tests and the demo: serves an MP4
//! file (H.264 + AAC), played once in real time; every client joins the
//! same (shared) media, so a client that reconnects resumes where it is.
//!
//! ```text
//! cargo run --example rtsp_source -- --file sample.mp4 [--port 0]
//! ```
//!
//! First stdout line: `listening on rtsp://127.0.0.1:PORT/stream`. Video and audio are
//! sent as they are in the file (no re-encoding): rtph264pay and rtpmp4gpay.

use gst::glib;
use gst_rtsp_server::prelude::*;

struct Options {
    file: Option<String>,
    port: u16,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        file: None,
        port: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--file" => options.file = Some(args.next().ok_or("--file needs a path")?),
            "--port" => {
                options.port = args
                    .next()
                    .ok_or("--port needs a number")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

/// The media pipeline: the file's elementary streams, payloaded as they are.
fn launch_line(file: &str) -> String {
    format!(
        "( filesrc location=\"{file}\" ! qtdemux name=d \
           d.video_0 ! queue ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 \
           d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )"
    )
}

fn main() {
    let options = parse_args().unwrap_or_else(|e| {
        eprintln!("rtsp_source: {e}");
        std::process::exit(2);
    });
    if let Err(e) = gst::init() {
        eprintln!("rtsp_source: {e}");
        std::process::exit(1);
    }
    let Some(file) = options.file.clone() else {
        eprintln!("rtsp_source: --file sample.mp4 is required");
        std::process::exit(2);
    };
    let main_loop = glib::MainLoop::new(None, false);
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&options.port.to_string());
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    factory.set_launch(&launch_line(&file));
    // One media for every client, so a reconnecting worker joins the same stream.
    factory.set_shared(true);
    let Some(mounts) = server.mount_points() else {
        eprintln!("rtsp_source: no mount points");
        std::process::exit(1);
    };
    mounts.add_factory("/stream", factory);
    let id = match server.attach(None) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("rtsp_source: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "listening on rtsp://127.0.0.1:{}/stream",
        server.bound_port()
    );
    main_loop.run();
    id.remove();
}
