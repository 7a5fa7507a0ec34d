// SPDX-License-Identifier: MPL-2.0

//! The optional segment archive (`archive-dir`): each segment's audio as sent,
//! its dubbed audio as received, and the video of the same span, named as the
//! plan names them: `{stream_id}/{batch:06}_audio.m4a`, `_dubbed.m4a`,
//! `_video.mp4`. Files are written off the streaming threads, under a
//! temporary name renamed when complete, so a reader never sees half a file.
//!
//! Video is cut on keyframes: the video file of batch N starts at the first
//! keyframe at or after the start of audio segment N, so every file decodes
//! on its own and every video frame is in exactly one file.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use gst::prelude::*;

use crate::ops::runtime::RUNTIME;

/// The archive's own category: a library module, it serves the element but
/// does not depend on it.
static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "stsdub-archive",
        gst::DebugColorFlags::empty(),
        Some("stsdub's segment archive"),
    )
});

/// One stream's archive directory and the writes under way for it.
#[derive(Clone, Debug)]
pub struct Archive {
    dir: PathBuf,
    writes: Arc<Writes>,
}

#[derive(Debug, Default)]
struct Writes {
    pending: Mutex<usize>,
    done: Condvar,
}

impl Archive {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            writes: Arc::default(),
        }
    }

    /// `{dir}/{batch:06}_{kind}.{extension}`.
    pub fn path(&self, batch: u64, kind: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{batch:06}_{kind}.{extension}"))
    }

    /// Keeps `data` as `{batch:06}_{kind}.m4a`.
    pub fn audio(&self, batch: u64, kind: &str, data: Vec<u8>) {
        let path = self.path(batch, kind, "m4a");
        self.spawn(path, move |part| std::fs::write(part, &data));
    }

    /// Keeps a segment's words as `{batch:06}_text.json`
    /// (`{"transcript": …, "translated_text": …}`, the answer's names).
    pub fn text(&self, batch: u64, transcript: &str, translation: &str) {
        let path = self.path(batch, "text", "json");
        let json = serde_json::json!({
            "transcript": transcript,
            "translated_text": translation,
        })
        .to_string();
        self.spawn(path, move |part| std::fs::write(part, json.as_bytes()));
    }

    /// Keeps the video `frames` (of `caps`) as `{batch:06}_video.mp4`.
    pub fn video(&self, batch: u64, caps: gst::Caps, frames: Vec<gst::Buffer>) {
        let path = self.path(batch, "video", "mp4");
        self.spawn(path, move |part| {
            mux_mp4(part, &caps, frames).map_err(std::io::Error::other)
        });
    }

    /// Waits until the writes started so far are done, at most `limit`: a
    /// stopping element must not lose its last files with the process.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let pending = lock(&self.writes.pending);
        let (pending, _) = self
            .writes
            .done
            .wait_timeout_while(pending, limit, |n| *n > 0)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *pending == 0
    }

    /// Runs `write` on a blocking thread; a failure is logged, never fatal.
    fn spawn(
        &self,
        path: PathBuf,
        write: impl FnOnce(&Path) -> std::io::Result<()> + Send + 'static,
    ) {
        *lock(&self.writes.pending) += 1;
        let writes = self.writes.clone();
        RUNTIME.spawn_blocking(move || {
            if let Err(e) = write_complete(&path, write) {
                gst::warning!(CAT, "cannot archive {}: {e}", path.display());
            }
            *lock(&writes.pending) -= 1;
            writes.done.notify_all();
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `write` on `path.part`, then renames it to `path`.
fn write_complete(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    write(&part)?;
    std::fs::rename(&part, path)
}

/// appsrc → parser → mp4mux → filesink, timestamps moved so the file starts
/// at 0 (an MP4 that starts late opens with an empty edit: a black screen).
fn mux_mp4(path: &Path, caps: &gst::Caps, buffers: Vec<gst::Buffer>) -> Result<(), String> {
    let parser = match caps.structure(0).map(|s| s.name().as_str()) {
        Some("video/x-h264") => "h264parse",
        Some("video/x-h265") => "h265parse",
        _ => "identity",
    };
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time ! {parser} ! mp4mux ! filesink name=sink"
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline".to_owned())?;
    let by_name = |name: &str| {
        pipeline
            .by_name(name)
            .ok_or_else(|| format!("no {name} in the archive pipeline"))
    };
    by_name("sink")?.set_property("location", path.to_string_lossy().as_ref());
    let src = by_name("src")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| "appsrc is not an AppSrc".to_owned())?;
    src.set_caps(Some(caps));
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let origin = buffers
        .iter()
        .filter_map(|b| b.dts_or_pts())
        .min()
        .unwrap_or(gst::ClockTime::ZERO);
    for mut buffer in buffers {
        let b = buffer.make_mut();
        b.set_pts(b.pts().map(|t| t.saturating_sub(origin)));
        b.set_dts(b.dts().map(|t| t.saturating_sub(origin)));
        if src.push_buffer(buffer).is_err() {
            break;
        }
    }
    let _ = src.end_of_stream();
    let result = wait_for_end(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn wait_for_end(pipeline: &gst::Pipeline) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("no bus")?;
    let message = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .ok_or("muxing did not finish within 30 s")?;
    match message.view() {
        gst::MessageView::Error(e) => Err(e.error().to_string()),
        _ => Ok(()),
    }
}

/// The video half of `archive-dir`: frames are cut per batch as they leave.
pub struct VideoArchive {
    archive: Archive,
    caps: Option<gst::Caps>,
    cutter: VideoCutter<gst::Buffer>,
    /// EOS has left on video_src / the last audio segment is known: the
    /// file under way is written once both are true, since video may end
    /// before the audio's last segments are cut.
    video_ended: bool,
    audio_ended: bool,
}

impl VideoArchive {
    pub fn new(archive: Archive) -> Self {
        Self {
            archive,
            caps: None,
            cutter: VideoCutter::default(),
            video_ended: false,
            audio_ended: false,
        }
    }

    pub fn segment_started(&mut self, batch: u64, running_time: gst::ClockTime) {
        let done = self.cutter.segment_started(batch, running_time.nseconds());
        self.write(done);
    }

    /// No audio segment starts after this one.
    pub fn audio_ended(&mut self) {
        self.audio_ended = true;
        if self.video_ended {
            self.flush();
        }
    }

    /// Takes a copy (a reference) of a buffer leaving on video_src, at its
    /// running time.
    pub fn on_buffer(&mut self, buffer: &gst::Buffer, running_time: Option<gst::ClockTime>) {
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let at = running_time.map_or(0, gst::ClockTime::nseconds);
        let done = self
            .cutter
            .push(buffer.clone(), at, keyframe && running_time.is_some());
        self.write(done);
    }

    /// An event leaving on video_src: new caps start a new file, EOS ends it.
    pub fn on_event(&mut self, event: &gst::Event) {
        match event.view() {
            gst::EventView::Caps(caps) if self.caps.as_ref() != Some(&caps.caps_owned()) => {
                self.flush();
                self.caps = Some(caps.caps_owned());
            }
            gst::EventView::Eos(_) => {
                self.video_ended = true;
                if self.audio_ended {
                    self.flush();
                }
            }
            _ => {}
        }
    }

    /// Writes the file under way (EOS, caps change, flush, stop).
    pub fn flush(&mut self) {
        let done = self.cutter.finish();
        self.write(done);
    }

    fn write(&self, files: impl IntoIterator<Item = VideoFile<gst::Buffer>>) {
        let Some(caps) = &self.caps else { return };
        for (batch, frames) in files {
            self.archive.video(batch, caps.clone(), frames);
        }
    }
}

/// Decides which video frames go into which batch's file. Pure: the element
/// tells it where audio segments start and hands it each frame as it leaves.
/// Video may leave before the audio segment it belongs to is cut (a file is
/// read as fast as the muxer takes it), so frames past the last known start
/// stay in the file under way until the next start is known, and the cut is
/// made then.
#[derive(Debug)]
pub struct VideoCutter<B> {
    /// Batch of the file under way; None until a segment is known.
    batch: Option<u64>,
    /// Its frames: (frame, running time, may start a file).
    frames: Vec<(B, u64, bool)>,
    /// Segments announced after the file under way began: (batch, start).
    next_starts: VecDeque<(u64, u64)>,
}

impl<B> Default for VideoCutter<B> {
    fn default() -> Self {
        Self {
            batch: None,
            frames: Vec::new(),
            next_starts: VecDeque::new(),
        }
    }
}

/// One batch's video frames, complete.
pub type VideoFile<B> = (u64, Vec<B>);

impl<B> VideoCutter<B> {
    /// Audio segment `batch` starts at `running_time` (ns); returns the files
    /// this completes.
    pub fn segment_started(&mut self, batch: u64, running_time: u64) -> Vec<VideoFile<B>> {
        match self.batch {
            // Frames that came before any segment was known belong to the first.
            None => self.batch = Some(batch),
            Some(_) => self.next_starts.push_back((batch, running_time)),
        }
        self.cut()
    }

    /// Adds a frame; returns the files it completes (the previous one, when
    /// this keyframe starts the next).
    pub fn push(&mut self, frame: B, running_time: u64, keyframe: bool) -> Vec<VideoFile<B>> {
        self.frames.push((frame, running_time, keyframe));
        self.cut()
    }

    /// The file under way, complete (EOS or stop). Frames for which no
    /// segment was ever known go into batch 0.
    pub fn finish(&mut self) -> Option<VideoFile<B>> {
        let frames = std::mem::take(&mut self.frames);
        (!frames.is_empty()).then(|| {
            let frames = frames.into_iter().map(|(frame, _, _)| frame).collect();
            (self.batch.unwrap_or(0), frames)
        })
    }

    /// Cuts the file under way at the first keyframe at or after each known
    /// next start; a keyframe past several starts opens the latest of them.
    fn cut(&mut self) -> Vec<VideoFile<B>> {
        let mut files = Vec::new();
        while let Some(&(mut next, start)) = self.next_starts.front() {
            let Some(at) = self
                .frames
                .iter()
                .position(|&(_, rt, keyframe)| keyframe && rt >= start)
            else {
                break;
            };
            let opens_at = self.frames[at].1;
            self.next_starts.pop_front();
            while let Some(&(batch, _)) = self.next_starts.front().filter(|s| s.1 <= opens_at) {
                next = batch;
                self.next_starts.pop_front();
            }
            let rest = self.frames.split_off(at);
            files.extend(self.finish());
            self.frames = rest;
            self.batch = Some(next);
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// 25 fps, a keyframe every `gop` frames, segments every 6 s.
    fn cut(frames: u64, gop: u64) -> Vec<(u64, Vec<u64>)> {
        let mut cutter = VideoCutter::default();
        let mut files = Vec::new();
        for batch in 0..frames.div_ceil(150) {
            cutter.segment_started(batch, batch * 6 * S);
        }
        for n in 0..frames {
            files.extend(cutter.push(n, n * S / 25, n % gop == 0));
        }
        files.extend(cutter.finish());
        files
    }

    #[test]
    fn keyframes_on_segment_starts_cut_exactly_there() {
        let files = cut(1500, 50);
        assert_eq!(files.len(), 10);
        for (batch, frames) in &files {
            assert_eq!(frames.first(), Some(&(batch * 150)));
            assert_eq!(frames.len(), 150);
        }
    }

    #[test]
    fn a_file_starts_on_the_first_keyframe_after_its_segment_start() {
        // Keyframes every 4 s: 0, 4, 8, 12 …; segments at 0, 6, 12 …
        let files = cut(600, 100);
        let starts: Vec<(u64, u64)> = files.iter().map(|(b, f)| (*b, f[0])).collect();
        assert_eq!(starts, [(0, 0), (1, 200), (2, 300), (3, 500)]);
        let all: Vec<u64> = files.into_iter().flat_map(|(_, f)| f).collect();
        assert_eq!(
            all,
            (0..600).collect::<Vec<_>>(),
            "each frame once, in order"
        );
    }

    #[test]
    fn frames_before_any_segment_belong_to_the_first() {
        let mut cutter = VideoCutter::default();
        assert!(cutter.push("a", 0, true).is_empty());
        assert!(cutter.segment_started(7, 0).is_empty());
        assert!(cutter.push("b", S, false).is_empty());
        assert_eq!(cutter.finish(), Some((7, vec!["a", "b"])));
        assert_eq!(cutter.finish(), None);
    }

    #[test]
    fn a_segment_without_a_keyframe_shares_its_frames_with_the_previous_file() {
        // One keyframe at 0 only: everything is batch 0's.
        let files = cut(450, 1000);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, 0);
        assert_eq!(files[0].1.len(), 450);
    }

    /// As `cut`, but every frame leaves `ahead` frames before the audio
    /// segment it belongs to is announced (video read ahead of audio).
    fn cut_with_video_ahead(frames: u64, gop: u64, ahead: u64) -> Vec<(u64, Vec<u64>)> {
        let mut cutter = VideoCutter::default();
        let mut files = Vec::new();
        for n in 0..frames + ahead {
            if n >= ahead && (n - ahead).is_multiple_of(150) {
                let batch = (n - ahead) / 150;
                files.extend(cutter.segment_started(batch, batch * 6 * S));
            }
            if n < frames {
                files.extend(cutter.push(n, n * S / 25, n % gop == 0));
            }
        }
        files.extend(cutter.finish());
        files
    }

    #[test]
    fn video_that_leaves_before_its_segment_is_cut_where_it_would_have_been() {
        for ahead in [1, 37, 149, 150, 400] {
            assert_eq!(
                cut_with_video_ahead(1500, 50, ahead),
                cut(1500, 50),
                "{ahead} frames ahead"
            );
            assert_eq!(
                cut_with_video_ahead(600, 100, ahead),
                cut(600, 100),
                "{ahead} frames ahead, keyframes every 4 s"
            );
        }
    }
}
