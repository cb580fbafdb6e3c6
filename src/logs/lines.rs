//! Splitting a byte stream into lines with a bounded buffer, so that a
//! replica that writes without newlines cannot make the agent grow.

/// Collects bytes and hands out complete lines. A line longer than `max`
/// bytes is handed out cut at `max`, with the count of bytes dropped from it.
pub struct LineSplitter {
    buffer: Vec<u8>,
    max: usize,
    /// Bytes dropped from the current line after it reached `max`.
    dropped: usize,
}

/// One line out of a [`LineSplitter`].
#[derive(Debug, PartialEq, Eq)]
pub struct SplitLine {
    pub bytes: Vec<u8>,
    /// Bytes cut off the end of this line because it was too long.
    pub dropped: usize,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self {
            buffer: Vec::new(),
            max,
            dropped: 0,
        }
    }

    /// Adds `chunk` and returns every line it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SplitLine> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.keep(&rest[..end]);
            lines.push(self.take());
            rest = &rest[end + 1..];
        }
        self.keep(rest);
        lines
    }

    /// Returns the unfinished last line, if any, at the end of the stream.
    pub fn finish(&mut self) -> Option<SplitLine> {
        if self.buffer.is_empty() && self.dropped == 0 {
            return None;
        }
        Some(self.take())
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max.saturating_sub(self.buffer.len());
        let kept = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..kept]);
        self.dropped += bytes.len() - kept;
    }

    fn take(&mut self) -> SplitLine {
        let line = SplitLine {
            bytes: std::mem::take(&mut self.buffer),
            dropped: self.dropped,
        };
        self.dropped = 0;
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_joins_lines_across_chunks() {
        let mut splitter = LineSplitter::new(100);
        assert!(splitter.push(b"hel").is_empty());
        let lines = splitter.push(b"lo\nwor");
        assert_eq!(lines[0].bytes, b"hello");
        assert_eq!(splitter.finish().unwrap().bytes, b"wor");
    }

    #[test]
    fn splitter_cuts_long_line_and_keeps_next() {
        let mut splitter = LineSplitter::new(4);
        let lines = splitter.push(b"abcdefgh\nxy\n");
        assert_eq!(
            lines[0],
            SplitLine {
                bytes: b"abcd".to_vec(),
                dropped: 4
            }
        );
        assert_eq!(
            lines[1],
            SplitLine {
                bytes: b"xy".to_vec(),
                dropped: 0
            }
        );
    }

    #[test]
    fn splitter_bounds_memory_without_newlines() {
        let mut splitter = LineSplitter::new(8);
        for _ in 0..1000 {
            splitter.push(&[b'x'; 1024]);
        }
        assert_eq!(splitter.buffer.len(), 8);
        assert_eq!(splitter.finish().unwrap().dropped, 1000 * 1024 - 8);
    }

    #[test]
    fn splitter_finish_is_empty_after_newline() {
        let mut splitter = LineSplitter::new(8);
        splitter.push(b"a\n");
        assert_eq!(splitter.finish(), None);
    }
}
