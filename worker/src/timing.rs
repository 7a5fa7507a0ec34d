// SPDX-License-Identifier: MPL-2.0

//! What the worker program prints about a live stream's timing at its end.

use std::time::Instant;

use gst::prelude::*;

/// Live figures, from pad probes: time from PLAYING to the first buffer
/// reaching stsdub (the RTSP connect time on a live source), and how far
/// behind its timestamp each audio buffer reaches the sink (end-to-end
/// latency, to compare with the pipeline latency).
#[derive(Clone, Default)]
pub struct Timing {
    first_buffer: std::sync::Arc<std::sync::Mutex<Option<std::time::Duration>>>,
    sink_delay_ms: std::sync::Arc<std::sync::Mutex<Vec<f64>>>,
}

impl Timing {
    /// Probes stsdub (named `dub`) in `pipeline`, which starts now.
    pub fn attach(pipeline: &gst::Element) -> Self {
        let timing = Self::default();
        let Some(bin) = pipeline.downcast_ref::<gst::Bin>() else {
            return timing;
        };
        let started = Instant::now();
        if let Some(pad) = bin
            .by_name("dub")
            .and_then(|dub| dub.static_pad("audio_sink"))
        {
            let first = timing.first_buffer.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if let Ok(mut first) = first.lock() {
                    first.get_or_insert(started.elapsed());
                }
                gst::PadProbeReturn::Remove
            });
        }
        if let Some(pad) = bin
            .by_name("dub")
            .and_then(|dub| dub.static_pad("audio_src"))
        {
            let delays = timing.sink_delay_ms.clone();
            let element = bin.downgrade();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let (Some(buffer), Some(bin)) = (info.buffer(), element.upgrade()) else {
                    return gst::PadProbeReturn::Ok;
                };
                let now = bin.current_running_time();
                if let (Some(now), Some(pts)) = (now, buffer.pts())
                    && let Ok(mut delays) = delays.lock()
                {
                    delays.push((now.nseconds() as f64 - pts.nseconds() as f64) / 1e6);
                }
                gst::PadProbeReturn::Ok
            });
        }
        timing
    }

    /// Prints the figures, once the stream has ended.
    pub fn report(&self, pipeline: &gst::Element) {
        let mut query = gst::query::Latency::new();
        let live = pipeline.query(&mut query).then(|| query.result());
        if let Some(first) = self.first_buffer.lock().ok().and_then(|f| *f) {
            println!(
                "connect: first audio buffer at stsdub {} ms after PLAYING",
                first.as_millis()
            );
        }
        let delays = self
            .sink_delay_ms
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        if let (Some((true, min, _)), false) = (live, delays.is_empty()) {
            let last = delays.iter().rev().take(50).copied().collect::<Vec<_>>();
            let mean = last.iter().sum::<f64>() / last.len() as f64;
            let latest = delays.iter().copied().fold(f64::MIN, f64::max);
            println!(
                "latency: pipeline {} ms; audio leaves stsdub up to {latest:.0} ms (mean of the last 50: {mean:.0} ms) after its timestamp, so it reaches the sink in time",
                min.mseconds()
            );
        }
    }
}
