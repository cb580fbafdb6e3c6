//! Replica and build output: capture, level detection, secret masking,
//! storage with retention, query and follow, and sanitising before anything
//! reaches an operator's terminal.
//!
//! Capture tasks turn bytes into lines ([`lines`]) and send them to one
//! writer thread ([`hub`]), which masks secrets, detects levels, numbers the
//! entries, hands them to followers and stores them in blocks ([`block`]).

mod block;
mod capture;
mod context;
mod filter;
mod hub;
mod level;
mod lines;
mod mask;
mod query;
mod sanitize;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use block::BlockError;
pub use capture::CaptureTarget;
pub use context::ContextWindow;
pub use filter::{parse_time_bound, LogFilter, LogQuery, MAX_CONTEXT};
pub use hub::{FollowItem, Follower, LogHub, LogStats, Page};
pub use level::{detect_level, Level, ParseLevelError};
pub use lines::{AssembledLine, LineAssembler, MAX_LINE_BYTES};
pub use mask::{SecretMask, MASK};
pub use sanitize::{
    keep_colours, sanitize_for_terminal, styled_spans, visible_text, Colour, StyledSpan, TextStyle,
};

/// The output stream of a process that a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Position in the deployment's log: the capture time in nanoseconds
    /// since the epoch, raised where needed so that ids never repeat. JSON
    /// carries it as a string, because it is beyond the 2^53 that JSON
    /// numbers keep exactly in JavaScript and jq.
    #[serde(with = "id_text")]
    pub id: u64,
    /// The time of capture, from `id`.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub level: Level,
    /// The replica (`web-0`) or `build`.
    pub source: String,
    pub stream: Stream,
    pub revision: u64,
    /// Whether this is build output rather than a replica's output.
    #[serde(default)]
    pub build: bool,
    /// The line as captured, colours included, secrets masked. Pass it
    /// through [`sanitize_for_terminal`] or [`keep_colours`] before printing.
    pub message: String,
    /// Whether a query with context returned this entry only as context
    /// around a selected one. Never set on stored entries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub context: bool,
}

/// Turns an entry id into its time.
pub fn time_of(id: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(id)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats a time as RFC 3339 in UTC with microseconds, always the same
/// width, so that columns of times line up.
pub fn format_time(time: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| time.to_string())
}

/// Formats the time of entry id `id` as [`format_time`] does.
pub fn rfc3339(id: u64) -> String {
    format_time(time_of(id))
}

/// Entry ids as JSON strings, read back from strings or numbers.
mod id_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Id {
            Text(String),
            Number(u64),
        }
        match Id::deserialize(deserializer)? {
            Id::Number(id) => Ok(id),
            Id::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// How much of a deployment's log the store keeps. The oldest entries go
/// first when any limit is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_lines: u64,
    /// Stored bytes: the compressed blocks, about 30 bytes per entry plus
    /// the text, divided by how well the lines compress.
    pub max_bytes: u64,
    pub max_age: Duration,
}

impl Default for Retention {
    /// Two million lines, 512 MiB or seven days per deployment: enough for
    /// a day of a busy service, and small enough that a dozen deployments fit
    /// on an ordinary disk.
    fn default() -> Self {
        Self {
            max_lines: 2_000_000,
            max_bytes: 512 << 20,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Errors of log queries.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "the search pattern `{pattern}` is not a valid regular expression: {detail}; \
         fix the pattern, or search for it as plain text instead"
    )]
    BadPattern { pattern: String, detail: String },

    #[error("the search text is {len} bytes long; at most {max} are accepted")]
    PatternTooLong { len: usize, max: usize },

    #[error(
        "`{value}` is not a time; write a duration back from now (30s, 15m, 2h, 7d) \
         or an RFC 3339 time such as 2026-12-04T10:00:00Z"
    )]
    BadTime { value: String },

    #[error("invert selects the lines that do not match a search, but no search was given; add a search or leave out invert")]
    InvertWithoutSearch,

    #[error("context of {context} lines is more than the {max} accepted; ask for fewer")]
    ContextTooLarge { context: usize, max: usize },

    #[error("since {since} is after until {until}, so nothing can match; swap the two times")]
    EmptyTimeRange { since: String, until: String },

    #[error("reading stored logs failed")]
    Store(#[from] crate::store::StoreError),
}
