// SPDX-License-Identifier: MPL-2.0

//! One segment's trip to the STS and back, run on the tokio runtime: pack
//! the frames as M4A, submit, wait for the answer, and fit the dubbed audio to
//! the segment: as AAC frames for codec copy (transcoding them when their
//! format differs), or as decoded speech for the re-encoded output. Never
//! fails: any problem becomes a fallback with its reason.

use std::time::{Duration, Instant};

use super::category::CAT;
use crate::audio::fit::{FitPlan, FitRules};
use crate::audio::transcode;
use crate::audio::voice;
use crate::container::m4a::{self, AacConfig};
use crate::ops::archive::Archive;
use crate::sts::text::SegmentText;
use crate::sts::{Fragment, Reply, SessionHandle, Undubbed};
use crate::timeline::scheduler::{self, FallbackReason, Outcome};
use crate::timeline::segmenter::{Frame, Segment};
use crate::timeline::splice::{self, FrameFit};
use tokio::sync::oneshot;

/// Dubbed audio fitted to its segment.
pub(super) enum DubbedAudio {
    /// AAC frames of the stream's format, timestamps still to be set.
    Frames(Vec<gst::Buffer>),
    /// Speech for the mix: interleaved f32, exactly the segment's length.
    Voice(Vec<f32>),
}

/// How dubbed audio was fitted, as the segment message tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct FitSummary {
    /// "exact", "trimmed", "padded" or "stretched".
    pub kind: &'static str,
    /// Speed-up, pitch kept; 1.0 when none.
    pub stretch: f64,
    /// Samples (per channel) cut or added at the end.
    pub samples: u64,
}

impl From<FrameFit> for FitSummary {
    fn from(fit: FrameFit) -> Self {
        let frames = |n: usize| n as u64 * u64::from(m4a::AAC_FRAME_SAMPLES);
        let (kind, samples) = match fit {
            FrameFit::Exact => ("exact", 0),
            FrameFit::Trimmed(n) => ("trimmed", frames(n)),
            FrameFit::Padded(n) => ("padded", frames(n)),
        };
        Self {
            kind,
            stretch: 1.0,
            samples,
        }
    }
}

impl From<FitPlan> for FitSummary {
    fn from(plan: FitPlan) -> Self {
        Self {
            kind: plan.kind(),
            stretch: plan.factor,
            samples: (plan.trimmed + plan.padded) as u64,
        }
    }
}

/// Dubbed audio fitted to its segment, with how it went.
pub(super) struct DubbedFrames {
    pub audio: DubbedAudio,
    /// The answer's words, cleaned.
    pub text: SegmentText,
    pub fit: FitSummary,
    pub round_trip: Duration,
    /// The fragment's sequence number on its connection.
    pub sequence_number: u64,
}

/// What a runtime task needs to dub one segment.
pub(super) struct FragmentRequest {
    pub stream_id: String,
    pub fragment_id: String,
    pub batch: u64,
    pub pts_ns: u64,
    pub duration_ms: u64,
    pub frames: Vec<gst::Buffer>,
    pub aac: AacConfig,
    /// Where to keep copies of the segment and its dubbed audio, if anywhere.
    pub archive: Option<Archive>,
    /// The STS's `timeout`: the answer comes within it of the send, and its
    /// fitting (transcoding included) within what is left of it plus the
    /// processing allowance, or the segment falls back.
    pub timeout: Duration,
    /// Re-encoded output: the answer is fitted as speech, by these rules.
    pub voice: Option<FitRules>,
}

impl FragmentRequest {
    /// Packs the segment and hands it to the session. Called in segment order
    /// from the streaming thread, so sequence numbers follow the timeline;
    /// packing is one copy of the segment's frames (~70 KB per 6 s).
    pub fn submit(&self, session: &SessionHandle) -> Option<oneshot::Receiver<Reply>> {
        let m4a = self.pack().ok()?;
        if let Some(archive) = &self.archive {
            archive.audio(self.batch, "audio", m4a.clone());
        }
        Some(session.submit(Fragment {
            fragment_id: self.fragment_id.clone(),
            pts_ns: self.pts_ns,
            duration_ms: self.duration_ms,
            m4a,
        }))
    }

    /// Waits for the answer and fits it; never fails, falls back.
    pub async fn outcome(self, reply: oneshot::Receiver<Reply>) -> (u64, Outcome<DubbedFrames>) {
        let outcome = match reply.await {
            Ok(Ok(dubbed)) => {
                if dubbed.partial {
                    // The plan's "partial": dubbed audio that does not cover
                    // the whole segment; it goes out, fitted like any other.
                    gst::info!(CAT, "{}: the STS answered partial", self.label());
                }
                if dubbed.text_cleaned.any() {
                    gst::warning!(
                        CAT,
                        "{}: the answer's text was cleaned ({:?}); the audio is not affected",
                        self.label(),
                        dubbed.text_cleaned
                    );
                }
                if let Some(archive) = &self.archive {
                    archive.audio(self.batch, "dubbed", dubbed.m4a.clone());
                    archive.text(
                        self.batch,
                        &dubbed.text.transcript,
                        &dubbed.text.translation,
                    );
                }
                let limit = self.timeout.saturating_sub(dubbed.round_trip)
                    + Duration::from(scheduler::PROCESSING_ALLOWANCE);
                match self.fit_in_time(dubbed.m4a, limit).await {
                    Ok((audio, fit)) => Outcome::Dubbed(DubbedFrames {
                        audio,
                        text: dubbed.text,
                        fit,
                        round_trip: dubbed.round_trip,
                        sequence_number: dubbed.sequence_number,
                    }),
                    Err(FitError::TooSlow) => {
                        gst::warning!(
                            CAT,
                            "{}: dubbed audio not fitted within {} ms of its answer",
                            self.label(),
                            limit.as_millis()
                        );
                        Outcome::Original(FallbackReason::Timeout)
                    }
                    Err(FitError::Unusable(message)) => {
                        gst::warning!(CAT, "{}: unusable dubbed audio: {message}", self.label());
                        Outcome::Original(FallbackReason::InvalidReply)
                    }
                }
            }
            Ok(Err(fallback)) => {
                let reason = FallbackReason::from(fallback.reason);
                gst::warning!(
                    CAT,
                    "{}: falls back ({}): {}",
                    self.label(),
                    reason.as_str(),
                    fallback.detail
                );
                Outcome::Original(reason)
            }
            Err(_) => Outcome::Original(FallbackReason::Disconnected),
        };
        (self.batch, outcome)
    }

    /// What log lines about this fragment start with.
    pub fn label(&self) -> String {
        format!(
            "stream {} batch {} fragment {}",
            self.stream_id, self.batch, self.fragment_id
        )
    }

    /// Unpacking, and transcoding when needed, is CPU work: keep it off the
    /// runtime's workers, and done by the deadline (the transcoding
    /// pipelines are bounded by it too, so no blocking thread is left behind).
    async fn fit_in_time(
        &self,
        m4a: Vec<u8>,
        limit: Duration,
    ) -> Result<(DubbedAudio, FitSummary), FitError> {
        let (aac, wanted, label) = (self.aac.clone(), self.frames.len(), self.label());
        let voice_rules = self.voice;
        let deadline = Instant::now() + limit;
        let fitting = tokio::task::spawn_blocking(move || match voice_rules {
            Some(rules) => fit_voice(&aac, &m4a, wanted, &rules, limit),
            None => fit_dubbed(&aac, &m4a, wanted, &label, limit)
                .map(|(frames, fit)| (DubbedAudio::Frames(frames), fit.into())),
        });
        match tokio::time::timeout_at(deadline.into(), fitting).await {
            Ok(Ok(fitted)) => fitted.map_err(FitError::Unusable),
            Ok(Err(e)) => Err(FitError::Unusable(format!(
                "dubbed audio processing failed: {e}"
            ))),
            Err(_) => Err(FitError::TooSlow),
        }
    }

    fn pack(&self) -> Result<Vec<u8>, gst::glib::BoolError> {
        let maps = self
            .frames
            .iter()
            .map(|b| b.map_readable())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(m4a::pack(&self.aac, &maps, 0))
    }
}

/// Why dubbed audio could not be fitted.
enum FitError {
    /// Not by its time limit (a stalled transcode).
    TooSlow,
    Unusable(String),
}

/// Unpacks dubbed M4A and fits it to `wanted` frames of the stream's format.
fn fit_dubbed(
    stream: &AacConfig,
    data: &[u8],
    wanted: usize,
    label: &str,
    limit: Duration,
) -> Result<(Vec<gst::Buffer>, FrameFit), String> {
    let unpacked = m4a::unpack(data).map_err(|e| e.to_string())?;
    let silence =
        splice::silent_frame(stream).ok_or("no silence frame for this AAC configuration")?;
    let frame = |r: &std::ops::Range<usize>| &data[r.clone()];
    let frames: Vec<Vec<u8>> = match splice::check_compatible(stream, &unpacked.config) {
        Ok(()) => unpacked
            .presented_frames()
            .iter()
            .map(|r| frame(r).to_vec())
            .collect(),
        Err(why) => {
            gst::debug!(CAT, "{label}: transcoding dubbed audio: {why}");
            let needed = splice::frames_worth_decoding(
                &unpacked.config,
                stream.sample_rate,
                wanted * m4a::AAC_FRAME_SAMPLES as usize,
                1.0,
                unpacked.priming_samples,
            );
            let all: Vec<&[u8]> = unpacked.frames.iter().take(needed).map(frame).collect();
            transcode::transcode(
                &all,
                &unpacked.config,
                stream,
                unpacked.priming_samples,
                limit,
            )
            .map_err(|e| format!("{why}, and transcoding failed: {e}"))?
        }
    };
    let (fitted, fit) = splice::fit(frames, wanted, &silence);
    Ok((
        fitted
            .into_iter()
            .map(gst::Buffer::from_mut_slice)
            .collect(),
        fit,
    ))
}

/// Decodes dubbed M4A to speech exactly `wanted` frames long, stretched
/// or trimmed by `rules`.
fn fit_voice(
    stream: &AacConfig,
    data: &[u8],
    wanted: usize,
    rules: &FitRules,
    limit: Duration,
) -> Result<(DubbedAudio, FitSummary), String> {
    let samples = wanted * m4a::AAC_FRAME_SAMPLES as usize;
    let voice = voice::prepare(stream, data, samples, rules, limit)?;
    Ok((DubbedAudio::Voice(voice.samples), voice.plan.into()))
}

/// Dubbed frame i takes the timestamps of original frame i.
pub(super) fn retimed(
    segment: &Segment<gst::Buffer>,
    dubbed: Vec<gst::Buffer>,
) -> Vec<gst::Buffer> {
    dubbed
        .into_iter()
        .zip(&segment.frames)
        .map(|(buffer, original)| stamped(buffer, original))
        .collect()
}

/// The original frames, on the segment's sample timeline. Each buffer is
/// moved, not shared, so that retiming it needs no copy of its metadata.
pub(super) fn originals(segment: Segment<gst::Buffer>) -> Vec<gst::Buffer> {
    segment
        .frames
        .into_iter()
        .map(|frame| {
            let discont = frame.data.flags().contains(gst::BufferFlags::DISCONT);
            timed(frame.data, frame.pts, frame.duration, discont)
        })
        .collect()
}

/// `buffer` with the timestamps the segmenter gave `frame` (jitter-free,
/// sample-exact), and the input's DISCONT flag.
fn stamped(buffer: gst::Buffer, frame: &Frame<gst::Buffer>) -> gst::Buffer {
    let discont = frame.data.flags().contains(gst::BufferFlags::DISCONT);
    timed(buffer, frame.pts, frame.duration, discont)
}

fn timed(mut buffer: gst::Buffer, pts: u64, duration: u64, discont: bool) -> gst::Buffer {
    let b = buffer.make_mut();
    b.set_pts(gst::ClockTime::from_nseconds(pts));
    b.set_dts(gst::ClockTime::NONE);
    b.set_duration(gst::ClockTime::from_nseconds(duration));
    if discont {
        b.set_flags(gst::BufferFlags::DISCONT);
    } else {
        b.unset_flags(gst::BufferFlags::DISCONT);
    }
    buffer
}

/// The STS client's reasons are the timeline's fallback reasons; the
/// deadline is the element's own.
impl From<Undubbed> for FallbackReason {
    fn from(reason: Undubbed) -> Self {
        match reason {
            Undubbed::Timeout => FallbackReason::Timeout,
            Undubbed::Disconnected => FallbackReason::Disconnected,
            Undubbed::Failed => FallbackReason::Error,
            Undubbed::InvalidReply => FallbackReason::InvalidReply,
            Undubbed::BreakerOpen => FallbackReason::BreakerOpen,
            Undubbed::Paused => FallbackReason::Paused,
        }
    }
}
