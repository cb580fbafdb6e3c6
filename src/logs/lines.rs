//! Turning a replica's byte stream into lines the way a terminal shows them.
//!
//! Reads end anywhere, so the bytes of an unfinished line (including half of
//! a multi-byte character) wait in the assembler for the next read. The
//! buffer is bounded: a replica that writes without newlines costs at most
//! [`MAX_LINE_BYTES`] of memory, and the bytes past it are counted, not kept.

use memchr::memchr2;

/// Maximum length of a line. The rest of a longer line is cut, and the
/// entry records how many bytes were cut.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One finished line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledLine {
    /// The line as a terminal would show it, without its line end. Invalid
    /// UTF-8 became U+FFFD.
    pub text: String,
    /// Bytes cut off the end of the line because it was longer than the limit.
    pub cut: usize,
}

/// Collects bytes and hands out finished lines.
///
/// `\n` and `\r\n` end a line. A lone `\r` moves back to the start of the
/// line, and what follows overwrites what was there, as a terminal does with
/// a progress bar.
pub struct LineAssembler {
    max: usize,
    /// The text the line shows up to the last lone `\r`, already decoded.
    shown: String,
    /// Raw bytes written since the last lone `\r`.
    current: Vec<u8>,
    /// A `\r` was the last byte seen; whether it ends the line depends on the
    /// next byte.
    pending_cr: bool,
    cut: usize,
}

impl LineAssembler {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            shown: String::new(),
            current: Vec::new(),
            pending_cr: false,
            cut: 0,
        }
    }

    /// Adds `chunk` and appends every line it finished to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<AssembledLine>) {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.pending_cr {
                self.pending_cr = false;
                match rest[0] {
                    b'\n' => {
                        out.push(self.take());
                        rest = &rest[1..];
                        continue;
                    }
                    b'\r' => {
                        self.pending_cr = true;
                        rest = &rest[1..];
                        continue;
                    }
                    _ => self.carriage_return(),
                }
            }

            let Some(at) = memchr2(b'\n', b'\r', rest) else {
                self.keep(rest);
                break;
            };
            self.keep(&rest[..at]);
            if rest[at] == b'\n' {
                out.push(self.take());
            } else {
                self.pending_cr = true;
            }
            rest = &rest[at + 1..];
        }
    }

    /// Returns the unfinished last line at the end of the stream, if any.
    /// A final line without a newline is still a line.
    pub fn finish(&mut self) -> Option<AssembledLine> {
        self.pending_cr = false;
        if self.shown.is_empty() && self.current.is_empty() && self.cut == 0 {
            return None;
        }
        Some(self.take())
    }

    fn keep(&mut self, bytes: &[u8]) {
        let used = self.shown.len() + self.current.len();
        let room = self.max.saturating_sub(used);
        let kept = bytes.len().min(room);
        self.current.extend_from_slice(&bytes[..kept]);
        self.cut += bytes.len() - kept;
    }

    /// Applies a lone `\r`: what was written since the previous one overwrites
    /// the start of what the line showed.
    fn carriage_return(&mut self) {
        let written = decode(std::mem::take(&mut self.current));
        self.shown = overwrite(&self.shown, &written);
    }

    fn take(&mut self) -> AssembledLine {
        let mut current = std::mem::take(&mut self.current);
        let mut cut = std::mem::take(&mut self.cut);
        if cut > 0 {
            // The limit may have split a character; its first bytes belong
            // with the cut part, not as a replacement character.
            cut += trim_partial_char(&mut current);
        }

        let written = decode(current);
        let text = if self.shown.is_empty() {
            written
        } else {
            overwrite(&std::mem::take(&mut self.shown), &written)
        };
        AssembledLine { text, cut }
    }
}

/// Decodes bytes as UTF-8 without copying when they are valid.
fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }
}

/// Writes `new` over the start of `old`, character by character.
fn overwrite(old: &str, new: &str) -> String {
    let covered = new.chars().count();
    let mut text = String::with_capacity(old.len().max(new.len()));
    text.push_str(new);
    text.extend(old.chars().skip(covered));
    text
}

/// Removes an incomplete UTF-8 sequence at the end of `bytes` and returns how
/// many bytes it had.
fn trim_partial_char(bytes: &mut Vec<u8>) -> usize {
    let tail_start = bytes.len().saturating_sub(3);
    for start in (tail_start..bytes.len()).rev() {
        let byte = bytes[start];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue;
        }
        let needed = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        let have = bytes.len() - start;
        if have < needed {
            bytes.truncate(start);
            return have;
        }
        return 0;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(max: usize, chunks: &[&[u8]]) -> Vec<AssembledLine> {
        let mut assembler = LineAssembler::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            assembler.push(chunk, &mut lines);
        }
        lines.extend(assembler.finish());
        lines
    }

    fn texts(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        assemble(max, chunks)
            .into_iter()
            .map(|line| line.text)
            .collect()
    }

    /// A case name, the reads, and the lines they make.
    type Case<'a> = (&'a str, &'a [&'a [u8]], &'a [&'a str]);

    #[test]
    fn line_assembly_table() {
        let cases: &[Case<'_>] = &[
            ("one line", &[b"hello\n"], &["hello"]),
            (
                "joined across reads",
                &[b"hel", b"lo\nwor", b"ld\n"],
                &["hello", "world"],
            ),
            ("final line without newline", &[b"a\nb"], &["a", "b"]),
            ("empty lines are lines", &[b"\n\n"], &["", ""]),
            ("crlf is one line end", &[b"a\r\nb\r\n"], &["a", "b"]),
            ("crlf split across reads", &[b"a\r", b"\nb\n"], &["a", "b"]),
            ("lone cr overwrites", &[b"10%\r20%\r100%\n"], &["100%"]),
            (
                "shorter rewrite keeps the tail",
                &[b"abcdef\rXY\n"],
                &["XYcdef"],
            ),
            ("cr at the end of a read", &[b"abc\r", b"X\n"], &["Xbc"]),
            ("repeated cr", &[b"abc\r\r\rX\n"], &["Xbc"]),
            ("cr then crlf", &[b"abc\r\r\n"], &["abc"]),
            ("trailing cr at end of stream", &[b"abc\r"], &["abc"]),
            (
                "split two-byte char",
                &[b"caf\xc3", b"\xa9\n"],
                &["caf\u{e9}"],
            ),
            (
                "split four-byte char",
                &[b"\xf0\x9f", b"\x9a", b"\x80\n"],
                &["\u{1f680}"],
            ),
            ("invalid utf-8", &[b"a\xffb\x00c\n"], &["a\u{fffd}b\u{0}c"]),
            (
                "truncated char at end of stream",
                &[b"ab\xe2\x82"],
                &["ab\u{fffd}"],
            ),
            (
                "multi-byte overwrite",
                &[b"\xc3\xa9\xc3\xa9\xc3\xa9\rx\n"],
                &["x\u{e9}\u{e9}"],
            ),
        ];
        for (name, chunks, expected) in cases {
            assert_eq!(texts(MAX_LINE_BYTES, chunks), *expected, "case {name}");
        }
    }

    #[test]
    fn long_line_is_cut_and_the_next_is_kept() {
        let lines = assemble(4, &[b"abcdefgh\nxy\n"]);
        assert_eq!(
            lines,
            vec![
                AssembledLine {
                    text: "abcd".to_owned(),
                    cut: 4
                },
                AssembledLine {
                    text: "xy".to_owned(),
                    cut: 0
                },
            ]
        );
    }

    #[test]
    fn cut_inside_a_character_moves_it_to_the_cut_part() {
        // "aé" is 3 bytes; a limit of 2 splits the é.
        let lines = assemble(2, &[b"a\xc3\xa9z\n"]);
        assert_eq!(lines[0].text, "a");
        assert_eq!(lines[0].cut, 3);
    }

    #[test]
    fn memory_stays_bounded_without_newlines() {
        let mut assembler = LineAssembler::new(8);
        let mut lines = Vec::new();
        for _ in 0..1000 {
            assembler.push(&[b'x'; 1024], &mut lines);
        }
        assert!(lines.is_empty());
        assert_eq!(assembler.current.len(), 8);
        let last = assembler.finish().expect("a final line");
        assert_eq!(last.cut, 1000 * 1024 - 8);
    }

    #[test]
    fn progress_bar_without_newline_stays_bounded() {
        let mut assembler = LineAssembler::new(64);
        let mut lines = Vec::new();
        for percent in 0..10_000 {
            assembler.push(format!("\r{percent:>5}%").as_bytes(), &mut lines);
        }
        assert!(lines.is_empty());
        let last = assembler.finish().expect("a final line");
        assert_eq!((last.text.as_str(), last.cut), (" 9999%", 0));
    }

    #[test]
    fn finish_after_newline_has_nothing() {
        let mut assembler = LineAssembler::new(8);
        assembler.push(b"a\n", &mut Vec::new());
        assert_eq!(assembler.finish(), None);
    }

    #[test]
    fn ten_megabyte_line_then_more_lines() {
        let mut assembler = LineAssembler::new(MAX_LINE_BYTES);
        let mut lines = Vec::new();
        let block = vec![b'z'; 1 << 20];
        for _ in 0..10 {
            assembler.push(&block, &mut lines);
        }
        assembler.push(b"\nafter\n", &mut lines);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text.len(), MAX_LINE_BYTES);
        assert_eq!(lines[0].cut, 10 * (1 << 20) - MAX_LINE_BYTES);
        assert_eq!(lines[1].text, "after");
    }
}
