//! Replica output: capture into a bounded in-memory tail per deployment, and
//! sanitising before anything reaches an operator's terminal.
//!
//! NOTE: lines are kept in memory only (the newest few hundred per
//! deployment) and are lost when the agent restarts; persistent storage,
//! levels and search are not built yet.

mod level;
mod lines;
mod sanitize;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Lines kept per deployment. Bounded so that 200 chatty replicas cost a
/// few megabytes at most.
const LINES_PER_DEPLOYMENT: usize = 500;

pub use level::{detect_level, Level, ParseLevelError};
pub use lines::{LineSplitter, SplitLine};
pub use sanitize::{
    keep_colours, sanitize_for_terminal, styled_spans, visible_text, Colour, StyledSpan, TextStyle,
};

/// Maximum length of a stored line; the rest is cut and the cut is marked.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub source: String,
    pub stream: Stream,
    pub revision: u64,
    pub text: String,
}

/// The destination of captured replica output.
pub trait LogSink: Send + Sync {
    fn append(
        &self,
        deployment_id: &str,
        source: &str,
        stream: Stream,
        revision: u64,
        line: &SplitLine,
    );
}

/// The newest lines of every deployment.
#[derive(Default)]
pub struct RecentLogs {
    lines: Mutex<HashMap<String, VecDeque<LogLine>>>,
}

impl RecentLogs {
    /// Returns up to `limit` newest lines of a deployment, oldest first.
    pub fn tail(&self, deployment_id: &str, limit: usize) -> Vec<LogLine> {
        let lines = self
            .lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(buffer) = lines.get(deployment_id) else {
            return Vec::new();
        };
        let skip = buffer.len().saturating_sub(limit);
        buffer.iter().skip(skip).cloned().collect()
    }
}

impl LogSink for RecentLogs {
    fn append(
        &self,
        deployment_id: &str,
        source: &str,
        stream: Stream,
        revision: u64,
        line: &SplitLine,
    ) {
        let entry = LogLine {
            time: OffsetDateTime::now_utc(),
            source: source.to_owned(),
            stream,
            revision,
            text: decode_line(line),
        };
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let buffer = lines.entry(deployment_id.to_owned()).or_default();
        if buffer.len() == LINES_PER_DEPLOYMENT {
            buffer.pop_front();
        }
        buffer.push_back(entry);
    }
}

/// Turns a captured line into text: invalid UTF-8 becomes U+FFFD, a
/// trailing `\r` goes, and a cut line says how much was cut.
fn decode_line(line: &SplitLine) -> String {
    let bytes = line.bytes.strip_suffix(b"\r").unwrap_or(&line.bytes);
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if line.dropped > 0 {
        text.push_str(&format!(" [cut {} bytes]", line.dropped));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(bytes: &[u8], dropped: usize) -> SplitLine {
        SplitLine {
            bytes: bytes.to_vec(),
            dropped,
        }
    }

    #[test]
    fn decode_replaces_invalid_utf8() {
        assert_eq!(decode_line(&split(b"a\xffb\r", 0)), "a\u{fffd}b");
    }

    #[test]
    fn decode_marks_cut_line() {
        assert_eq!(decode_line(&split(b"abc", 10)), "abc [cut 10 bytes]");
    }

    #[test]
    fn tail_keeps_newest_lines() {
        let logs = RecentLogs::default();
        for i in 0..(LINES_PER_DEPLOYMENT + 5) {
            logs.append(
                "d",
                "web-0",
                Stream::Stdout,
                1,
                &split(format!("{i}").as_bytes(), 0),
            );
        }
        let tail = logs.tail("d", 2);
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[1].text, format!("{}", LINES_PER_DEPLOYMENT + 4));
    }
}
