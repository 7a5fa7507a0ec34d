// SPDX-License-Identifier: MPL-2.0

//! Subtitle sidecars: each dubbed segment's words (its `stsdub-segment`
//! message's `translated-text`) as WebVTT and SRT cues, one pair of files
//! per language, split and timed as the in-video captions are
//! (`gststsdub::captions::layout`), and written as the segments leave, so
//! a live stream's sidecars grow with it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use gststsdub::captions::layout;

/// The sidecars of one run: `{dir}/{language}.vtt` and `.srt`.
pub struct Sidecars {
    dir: PathBuf,
    languages: HashMap<String, Sidecar>,
}

struct Sidecar {
    vtt: File,
    srt: File,
    cues: usize,
}

impl Sidecars {
    /// Sidecars in `dir` (made if missing).
    pub fn new(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            languages: HashMap::new(),
        })
    }

    /// The words of the segment at `pts` (ns), `duration` (ns) long, in
    /// `language`'s files.
    pub fn segment(
        &mut self,
        language: &str,
        pts: u64,
        duration: u64,
        words: &str,
    ) -> io::Result<()> {
        let sidecar = match self.languages.entry(language.to_owned()) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let name = file_name(language);
                let mut vtt = File::create(self.dir.join(format!("{name}.vtt")))?;
                vtt.write_all(b"WEBVTT\n\n")?;
                let srt = File::create(self.dir.join(format!("{name}.srt")))?;
                entry.insert(Sidecar { vtt, srt, cues: 0 })
            }
        };
        for caption in layout::captions(words, pts, duration) {
            sidecar.cues += 1;
            let (start, end) = (caption.start, caption.end);
            let vtt_text: Vec<String> = caption.rows.iter().map(|r| vtt_escaped(r)).collect();
            write!(
                sidecar.vtt,
                "{} --> {}\n{}\n\n",
                timestamp(start, '.'),
                timestamp(end, '.'),
                vtt_text.join("\n")
            )?;
            write!(
                sidecar.srt,
                "{}\n{} --> {}\n{}\n\n",
                sidecar.cues,
                timestamp(start, ','),
                timestamp(end, ','),
                caption.rows.join("\n")
            )?;
        }
        sidecar.vtt.flush()?;
        sidecar.srt.flush()
    }
}

/// A language tag as a file name: letters, digits, '-' and '_' only.
pub(crate) fn file_name(language: &str) -> String {
    let name: String = language
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    if name.is_empty() { "und".into() } else { name }
}

/// `HH:MM:SS.mmm` (WebVTT) or `HH:MM:SS,mmm` (SRT).
pub(crate) fn timestamp(ns: u64, separator: char) -> String {
    let ms = ns / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// WebVTT cue text: `&`, `<` and `>` as character references.
pub(crate) fn vtt_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_hours_minutes_seconds_and_milliseconds() {
        assert_eq!(timestamp(3_723_456_000_000, '.'), "01:02:03.456");
        assert_eq!(timestamp(59_999_999, ','), "00:00:00,059");
    }

    #[test]
    fn each_language_gets_its_cues_in_both_files() {
        let dir = std::env::temp_dir().join(format!("stsdub-subtitles-{}", std::process::id()));
        let mut sidecars = Sidecars::new(&dir).expect("dir");
        sidecars
            .segment("es", 6_000_000_000, 2_000_000_000, "Hola <y> adiós & más")
            .expect("written");
        sidecars
            .segment("es", 8_000_000_000, 2_000_000_000, "")
            .expect("no cue");
        let vtt = std::fs::read_to_string(dir.join("es.vtt")).expect("vtt");
        assert_eq!(
            vtt,
            "WEBVTT\n\n00:00:06.000 --> 00:00:08.000\nHola &lt;y&gt; adiós &amp; más\n\n"
        );
        let srt = std::fs::read_to_string(dir.join("es.srt")).expect("srt");
        assert_eq!(
            srt,
            "1\n00:00:06,000 --> 00:00:08,000\nHola <y> adiós & más\n\n"
        );
        assert_eq!(file_name("../pt BR"), "ptBR");
        let _ = std::fs::remove_dir_all(dir);
    }
}
