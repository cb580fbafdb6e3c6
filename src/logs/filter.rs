//! The conditions that select the entries of a query or a follower.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::block::EntryRef;
use super::level::Level;
use super::sanitize::visible_text;
use super::LogError;

/// Maximum length of a search text or pattern. Longer ones are almost always
/// a mistake (a pasted file), and a huge pattern costs memory to compile.
const MAX_PATTERN_LEN: usize = 4096;

/// Compiled patterns are capped so that a pathological one fails with an
/// error instead of taking the agent's memory.
const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// Maximum context entries around each selected one. Each entry of context
/// is held in memory while a query or follower waits for the next match.
pub const MAX_CONTEXT: usize = 1000;

/// The conditions of a log query, as a client sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    /// Lowest level shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Text to find: a case-insensitive substring, or a regular expression
    /// when `regex` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    #[serde(default)]
    pub regex: bool,
    /// Select the entries that do not match `search` instead, as `grep -v`
    /// does.
    #[serde(default)]
    pub invert: bool,
    /// Entries shown before and after each selected one, as `grep -C` does.
    /// They pass the other conditions but not the search, and come back
    /// with [`LogEntry::context`](super::LogEntry::context) set.
    #[serde(default)]
    pub context: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// Source to show: a replica name such as `web-1`, or its index `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// Build output instead of the replicas' output.
    #[serde(default)]
    pub build: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// A [`LogQuery`] made ready to test entries.
#[derive(Debug, Clone)]
pub struct LogFilter {
    min_level: Level,
    matcher: Option<Regex>,
    invert: bool,
    context: usize,
    since: u64,
    until: u64,
    replica: Option<String>,
    build: bool,
    revision: Option<u64>,
}

impl LogFilter {
    /// Checks and compiles `query`. An invalid pattern is an error that names
    /// the pattern and the problem.
    pub fn new(query: &LogQuery) -> Result<Self, LogError> {
        let matcher = query
            .search
            .as_deref()
            .filter(|search| !search.is_empty())
            .map(|search| compile(search, query.regex))
            .transpose()?;
        if query.invert && matcher.is_none() {
            return Err(LogError::InvertWithoutSearch);
        }
        if query.context > MAX_CONTEXT {
            return Err(LogError::ContextTooLarge {
                context: query.context,
                max: MAX_CONTEXT,
            });
        }
        let since = query.since.unwrap_or(0);
        let until = query.until.unwrap_or(u64::MAX);
        if since > until {
            return Err(LogError::EmptyTimeRange {
                since: super::rfc3339(since),
                until: super::rfc3339(until),
            });
        }

        Ok(Self {
            min_level: query.level.unwrap_or(Level::Trace),
            // Context surrounds matches, so without a search there is none.
            context: if matcher.is_some() { query.context } else { 0 },
            invert: query.invert,
            matcher,
            since,
            until,
            replica: query.replica.clone().filter(|replica| !replica.is_empty()),
            build: query.build,
            revision: query.revision,
        })
    }

    /// Returns a filter that lets every replica entry through.
    pub fn everything() -> Self {
        Self {
            min_level: Level::Trace,
            matcher: None,
            invert: false,
            context: 0,
            since: 0,
            until: u64::MAX,
            replica: None,
            build: false,
            revision: None,
        }
    }

    pub fn since(&self) -> u64 {
        self.since
    }

    pub fn until(&self) -> u64 {
        self.until
    }

    /// Returns the entries of context around each selected entry; zero
    /// without a search.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Checks whether `entry` passes every condition, the search included.
    pub fn matches(&self, entry: &EntryRef<'_>) -> bool {
        self.passes_base(entry) && self.selects(entry)
    }

    /// Checks the conditions other than the search. The cheap checks come
    /// first.
    pub fn passes_base(&self, entry: &EntryRef<'_>) -> bool {
        if entry.id < self.since || entry.id > self.until {
            return false;
        }
        if entry.level < self.min_level || entry.build != self.build {
            return false;
        }
        if self
            .revision
            .is_some_and(|revision| revision != entry.revision)
        {
            return false;
        }
        match &self.replica {
            Some(replica) => source_is(entry.source, replica),
            None => true,
        }
    }

    /// Checks the search alone, on the visible text, so escape bytes never
    /// match. With `invert`, an entry is selected when it does not match.
    pub fn selects(&self, entry: &EntryRef<'_>) -> bool {
        match &self.matcher {
            Some(matcher) => matcher.is_match(&visible_text(entry.message)) != self.invert,
            None => true,
        }
    }
}

/// Checks whether `source` is the replica `wanted`, given by name (`web-1`)
/// or by index (`1`).
fn source_is(source: &str, wanted: &str) -> bool {
    if source == wanted {
        return true;
    }
    let is_index = wanted.bytes().all(|byte| byte.is_ascii_digit());
    is_index
        && source
            .rsplit_once('-')
            .is_some_and(|(_, index)| index == wanted)
}

fn compile(search: &str, is_regex: bool) -> Result<Regex, LogError> {
    if search.len() > MAX_PATTERN_LEN {
        return Err(LogError::PatternTooLong {
            len: search.len(),
            max: MAX_PATTERN_LEN,
        });
    }

    let pattern = if is_regex {
        search.to_owned()
    } else {
        regex::escape(search)
    };
    RegexBuilder::new(&pattern)
        .case_insensitive(!is_regex)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| LogError::BadPattern {
            pattern: search.to_owned(),
            detail: one_line(&error),
        })
}

/// Keeps the last line of a regex error, which names the problem. The regex
/// crate draws the pattern and a caret on the lines before it.
fn one_line(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().last().unwrap_or_default().trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

/// Parses `--since`/`--until`: a duration back from `now` (`90s`, `15m`,
/// `2h`, `7d`) or an RFC 3339 time. Returns nanoseconds since the epoch.
pub fn parse_time_bound(text: &str, now: OffsetDateTime) -> Result<u64, LogError> {
    let text = text.trim();
    let invalid = || LogError::BadTime {
        value: text.to_owned(),
    };
    if let Ok(time) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return nanos_since_epoch(time).ok_or_else(invalid);
    }

    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let seconds_per_unit = match unit {
        "ms" => 0,
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    let back = if unit == "ms" {
        time::Duration::milliseconds(number)
    } else {
        time::Duration::seconds(number.checked_mul(seconds_per_unit).ok_or_else(invalid)?)
    };
    let time = now.checked_sub(back).ok_or_else(invalid)?;
    nanos_since_epoch(time).ok_or_else(invalid)
}

/// Times before 1970 count as the start of the log and times after 2554
/// (where nanoseconds overflow 64 bits) as its end: no entry lies outside.
fn nanos_since_epoch(time: OffsetDateTime) -> Option<u64> {
    let nanos = time.unix_timestamp_nanos().max(0);
    Some(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Stream;

    fn entry<'a>(source: &'a str, level: Level, message: &'a str) -> EntryRef<'a> {
        EntryRef {
            id: 1_000,
            level,
            stream: Stream::Stdout,
            build: false,
            revision: 2,
            source,
            message,
        }
    }

    fn filter(query: LogQuery) -> LogFilter {
        LogFilter::new(&query).unwrap()
    }

    #[test]
    fn text_search_is_case_insensitive_and_literal() {
        let f = filter(LogQuery {
            search: Some("Timeout (db)".to_owned()),
            ..LogQuery::default()
        });
        assert!(f.matches(&entry("web-0", Level::Info, "a TIMEOUT (DB) here")));
        assert!(!f.matches(&entry("web-0", Level::Info, "timeout db")));
    }

    #[test]
    fn search_matches_visible_text_not_escape_bytes() {
        let f = filter(LogQuery {
            search: Some("31mred".to_owned()),
            ..LogQuery::default()
        });
        assert!(!f.matches(&entry("web-0", Level::Info, "\u{1b}[31mred\u{1b}[0m")));
        let f = filter(LogQuery {
            search: Some("red text".to_owned()),
            ..LogQuery::default()
        });
        assert!(f.matches(&entry("web-0", Level::Info, "\u{1b}[31mred\u{1b}[0m text")));
    }

    #[test]
    fn invalid_regex_is_a_clear_error() {
        let error = LogFilter::new(&LogQuery {
            search: Some("(".to_owned()),
            regex: true,
            ..LogQuery::default()
        })
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`(`"), "{message}");
        assert!(message.contains("as plain text"), "{message}");
    }

    #[test]
    fn paren_without_regex_is_plain_text() {
        let f = filter(LogQuery {
            search: Some("(".to_owned()),
            ..LogQuery::default()
        });
        assert!(f.matches(&entry("web-0", Level::Info, "f(x)")));
    }

    #[test]
    fn level_replica_and_revision_filters() {
        let f = filter(LogQuery {
            level: Some(Level::Warn),
            replica: Some("1".to_owned()),
            revision: Some(2),
            ..LogQuery::default()
        });
        assert!(f.matches(&entry("web-1", Level::Error, "x")));
        assert!(!f.matches(&entry("web-1", Level::Info, "x")));
        assert!(!f.matches(&entry("web-11", Level::Error, "x")));
        assert!(!f.matches(&entry("web-0", Level::Error, "x")));
    }

    #[test]
    fn build_entries_only_with_build() {
        let mut build_entry = entry("build", Level::Info, "compiling");
        build_entry.build = true;
        assert!(!filter(LogQuery::default()).matches(&build_entry));
        let f = filter(LogQuery {
            build: true,
            ..LogQuery::default()
        });
        assert!(f.matches(&build_entry));
    }

    #[test]
    fn time_bounds() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let second = 1_000_000_000;
        assert_eq!(
            parse_time_bound("90s", now).unwrap(),
            (1_000_000 - 90) * second
        );
        assert_eq!(
            parse_time_bound("2h", now).unwrap(),
            (1_000_000 - 7200) * second
        );
        assert_eq!(
            parse_time_bound("1970-01-12T13:46:40Z", now).unwrap(),
            1_000_000 * second
        );
        assert_eq!(
            parse_time_bound("2999-01-01T00:00:00Z", now).unwrap(),
            u64::MAX
        );
        assert_eq!(parse_time_bound("1900-01-01T00:00:00Z", now).unwrap(), 0);
        for bad in ["", "5", "5x", "yesterday", "-5m", "99999999999999999d"] {
            assert!(parse_time_bound(bad, now).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn invert_selects_the_entries_that_do_not_match() {
        let f = filter(LogQuery {
            search: Some("health".to_owned()),
            invert: true,
            ..LogQuery::default()
        });
        assert!(!f.matches(&entry("web-0", Level::Info, "GET /healthz")));
        assert!(f.matches(&entry("web-0", Level::Info, "order 42 paid")));
        let error = LogFilter::new(&LogQuery {
            invert: true,
            ..LogQuery::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("no search was given"), "{error}");
    }

    #[test]
    fn context_needs_a_search_and_a_bound() {
        let without_search = filter(LogQuery {
            context: 3,
            ..LogQuery::default()
        });
        assert_eq!(without_search.context(), 0);
        let with_search = filter(LogQuery {
            search: Some("x".to_owned()),
            context: 3,
            ..LogQuery::default()
        });
        assert_eq!(with_search.context(), 3);
        let error = LogFilter::new(&LogQuery {
            search: Some("x".to_owned()),
            context: MAX_CONTEXT + 1,
            ..LogQuery::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("1001"), "{error}");
    }

    #[test]
    fn since_after_until_is_an_error() {
        let error = LogFilter::new(&LogQuery {
            since: Some(10),
            until: Some(5),
            ..LogQuery::default()
        });
        assert!(error.is_err());
    }
}
