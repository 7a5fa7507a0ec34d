// SPDX-License-Identifier: MPL-2.0

//! When the head of the video queue may leave on `video_src`.
//!
//! The rule never waits for anything that only the audio sink pad's input can
//! bring: a demuxer feeds both sink pads from one thread, and a muxer
//! downstream takes audio only when it also has video, so any such wait can
//! close a circle (audio_src blocked in the muxer, waiting for video; video
//! waiting for audio to leave).
//!
//! - Not live: video leaves at once. The muxer interleaves by timestamp, and
//!   how far the video runs ahead is bounded by the demuxer's interleaving,
//!   since its thread is held in the audio chain while the STS is busy.
//! - Live: video is held for the element's latency, like its audio, so a
//!   muxer's live timeout never fires. It leaves once the audio of its
//!   instant has left, or at its render time less the decision margin,
//!   whichever comes first. The clock bounds that wait.
//! - With captions, a frame also waits for the words around it (the
//!   outcomes of the segments it and the next caption's load fall in):
//!   not live, until they are decided (each is, within its timeout, and
//!   all at the audio's end: neither waits on what the muxer takes); live,
//!   at most until its render time less the margin, as above.

/// What to do with the head of the video queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    Now,
    /// Wait until this clock time.
    At(gst::ClockTime),
    /// Wait until the words around it are decided (the audio path wakes it).
    Later,
}

/// How far the audio output has got, in running time.
#[derive(Debug, Clone, Copy, Default)]
pub struct AudioOut {
    /// Running time up to which audio has left; None before any.
    pub position: Option<gst::ClockTime>,
    /// EOS has left on audio_src.
    pub done: bool,
}

/// `head`: running time of the head buffer (None for events and untimed
/// buffers). `live_due`: in a live pipeline, the clock time at which the head
/// must leave to be on time; None when not live. `now`: the clock's time.
/// `words_known`: the captions' words around the head are known (true
/// without captions).
pub fn video_release(
    head: Option<gst::ClockTime>,
    audio: AudioOut,
    live_due: Option<gst::ClockTime>,
    now: Option<gst::ClockTime>,
    words_known: bool,
) -> Release {
    let Some(head) = head else {
        return Release::Now;
    };
    let Some(due) = live_due else {
        return if words_known {
            Release::Now
        } else {
            Release::Later
        };
    };
    if words_known && (audio.done || audio.position.is_some_and(|position| position >= head)) {
        return Release::Now;
    }
    match now {
        Some(now) if now < due => Release::At(due),
        _ => Release::Now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: gst::ClockTime = gst::ClockTime::MSECOND;

    fn audio_at(ms: u64) -> AudioOut {
        AudioOut {
            position: Some(ms * MS),
            done: false,
        }
    }

    #[test]
    fn with_captions_a_frame_waits_for_its_words_not_live_until_known_live_until_due() {
        let (head, due, now) = (Some(500 * MS), Some(900 * MS), Some(100 * MS));
        assert_eq!(
            video_release(head, audio_at(0), None, now, false),
            Release::Later
        );
        assert_eq!(
            video_release(head, audio_at(0), None, now, true),
            Release::Now
        );
        // Live: the audio has left, the words are not known: wait, but only
        // until the frame is due.
        assert_eq!(
            video_release(head, audio_at(600), due, now, false),
            Release::At(900 * MS)
        );
        assert_eq!(
            video_release(head, audio_at(600), due, Some(950 * MS), false),
            Release::Now
        );
        assert_eq!(
            video_release(head, audio_at(600), due, now, true),
            Release::Now
        );
    }

    #[test]
    fn not_live_video_never_waits_for_audio() {
        for audio in [AudioOut::default(), audio_at(0), audio_at(10)] {
            assert_eq!(
                video_release(Some(500 * MS), audio, None, Some(MS), true),
                Release::Now,
                "{audio:?}"
            );
        }
    }

    #[test]
    fn live_video_waits_for_its_audio_or_its_due_time() {
        let due = Some(14_000 * MS);
        let now = Some(1_000 * MS);
        assert_eq!(
            video_release(Some(500 * MS), AudioOut::default(), due, now, true),
            Release::At(14_000 * MS),
            "no audio out yet"
        );
        assert_eq!(
            video_release(Some(500 * MS), audio_at(499), due, now, true),
            Release::At(14_000 * MS),
            "audio just short of the head"
        );
        assert_eq!(
            video_release(Some(500 * MS), audio_at(500), due, now, true),
            Release::Now,
            "audio of its instant has left"
        );
        assert_eq!(
            video_release(Some(500 * MS), AudioOut::default(), due, due, true),
            Release::Now,
            "due"
        );
        assert_eq!(
            video_release(Some(500 * MS), AudioOut::default(), due, None, true),
            Release::Now,
            "no clock to wait on"
        );
    }

    #[test]
    fn live_video_leaves_once_audio_has_ended() {
        let done = AudioOut {
            position: None,
            done: true,
        };
        assert_eq!(
            video_release(Some(500 * MS), done, Some(14_000 * MS), Some(MS), true),
            Release::Now
        );
    }

    #[test]
    fn events_and_untimed_buffers_leave_at_once() {
        assert_eq!(
            video_release(None, AudioOut::default(), Some(14_000 * MS), Some(MS), true),
            Release::Now
        );
    }
}
