// SPDX-License-Identifier: MPL-2.0

//! Words → captions: rows of at most [`ROW_LETTERS`] letters, broken
//! between words, at most [`ROWS`] rows a caption, and each caption given
//! its share of the segment's time in proportion to its length.

/// CEA-608's row width.
pub const ROW_LETTERS: usize = 32;
/// Rows a pop-on caption of ours shows at once.
pub const ROWS: usize = 2;

/// One caption and when it is meant to show, in ns of running time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedCaption {
    pub start: u64,
    pub end: u64,
    pub rows: Vec<String>,
}

/// `text` broken into rows between words; a word longer than a row is
/// broken inside (it would not show otherwise).
pub fn rows(text: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > ROW_LETTERS {
            if !row.is_empty() {
                rows.push(std::mem::take(&mut row));
            }
            rows.push(word.drain(..ROW_LETTERS).collect());
        }
        let letters = row.chars().count();
        let needed = word.len() + usize::from(letters > 0);
        if letters + needed > ROW_LETTERS {
            rows.push(std::mem::take(&mut row));
        }
        if !row.is_empty() {
            row.push(' ');
        }
        row.extend(word);
    }
    if !row.is_empty() {
        rows.push(row);
    }
    rows
}

/// `text`'s captions over `start .. start + duration`: successive, each
/// lasting in proportion to its letters, the last ending with the segment.
pub fn captions(text: &str, start: u64, duration: u64) -> Vec<TimedCaption> {
    let groups: Vec<Vec<String>> = rows(text).chunks(ROWS).map(<[String]>::to_vec).collect();
    let letters = |rows: &[String]| rows.iter().map(|r| r.chars().count()).sum::<usize>() as u64;
    let total = groups.iter().map(|g| letters(g)).sum::<u64>().max(1);
    let mut before = 0u64;
    groups
        .into_iter()
        .map(|rows| {
            let from = start + duration * before / total;
            before += letters(&rows);
            let to = start + duration * before / total;
            TimedCaption {
                start: from,
                end: to,
                rows,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_break_between_words_at_32_letters() {
        let text = "Señoras y señores, bienvenidos a la transmisión de esta noche desde Madrid.";
        let rows = rows(text);
        assert!(
            rows.iter().all(|r| r.chars().count() <= ROW_LETTERS),
            "{rows:?}"
        );
        assert_eq!(rows.join(" "), text);
        assert_eq!(rows[0], "Señoras y señores, bienvenidos a");
    }

    #[test]
    fn a_word_longer_than_a_row_is_broken_inside_it() {
        let word = "x".repeat(40);
        assert_eq!(
            rows(&format!("a {word}")),
            ["a", &"x".repeat(32), "xxxxxxxx"]
        );
    }

    #[test]
    fn captions_share_the_segment_by_length_and_end_with_it() {
        let text = format!("{} {} {}", "a".repeat(30), "b".repeat(10), "c".repeat(25));
        let captions = captions(&text, 1_000, 6_500);
        // Rows: 30 a, 10 b, 25 c → captions [a, b] (40 letters), [c] (25).
        assert_eq!(captions.len(), 2);
        assert_eq!((captions[0].start, captions[0].end), (1_000, 5_000));
        assert_eq!((captions[1].start, captions[1].end), (5_000, 7_500));
        assert_eq!(captions[1].rows, ["c".repeat(25)]);
    }

    #[test]
    fn no_words_no_captions() {
        assert!(captions("   ", 0, 1_000).is_empty());
    }
}
