//! Log levels, and detecting the level of a captured line from its text.
//!
//! Detection runs on every captured line, so it reads only the first bytes of
//! plain lines and walks JSON lines without building a value. It never
//! allocates.

use std::fmt;
use std::str::FromStr;

use memchr::{memchr, memchr2, memmem};
use serde::{Deserialize, Serialize};

use super::sanitize::{Token, Tokens};

/// Severity of a log line, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    /// The level of every line whose level cannot be detected.
    #[default]
    Info = 2,
    Warn = 3,
    Error = 4,
    Fatal = 5,
}

impl Level {
    /// All levels, from least to most severe.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// Returns the number stored for this level, 0 (trace) to 5 (fatal).
    /// Stored data depends on these numbers, so they must never change.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Returns the level stored as `number`, or `None` outside 0 to 5.
    pub fn from_u8(number: u8) -> Option<Level> {
        Self::ALL.get(usize::from(number)).copied()
    }

    /// Returns the lowercase name used in JSON, on the command line and in
    /// output.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, so levels line up in columns.
        f.pad(self.as_str())
    }
}

/// Error for a level name that [`Level::from_str`] does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid log level {value:?}: expected one of trace, debug, info, warn, warning, \
     error, err, fatal, critical, crit or panic"
)]
pub struct ParseLevelError {
    value: String,
}

impl ParseLevelError {
    /// Returns the rejected input.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl FromStr for Level {
    type Err = ParseLevelError;

    /// Parses a level name as a user types it (`--level warn`), ignoring case.
    fn from_str(value: &str) -> Result<Level, ParseLevelError> {
        match value.to_ascii_lowercase().as_str() {
            "trace" => Ok(Level::Trace),
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warn" | "warning" => Ok(Level::Warn),
            "error" | "err" => Ok(Level::Error),
            "fatal" | "critical" | "crit" | "panic" => Ok(Level::Fatal),
            _ => Err(ParseLevelError {
                value: value.to_owned(),
            }),
        }
    }
}

/// Bytes at the start of a line that are searched for plain-text forms.
const HEAD_BYTES: usize = 160;

/// Whitespace-separated tokens at the start of a line that are searched for
/// plain-text forms.
const HEAD_TOKENS: usize = 8;

/// Longest bracketed group, brackets included, that may contain spaces and
/// still count as one token, as in `[WARN ]` or `[ error ]`.
const MAX_BRACKET: usize = 12;

const ESC: u8 = 0x1b;

/// Detects the level of one log line, or returns [`Level::Info`].
///
/// The forms tried, first match wins:
///
/// - A JSON object (the line starts with `{`): the first top-level key named
///   `level`, `severity`, `lvl`, `@l` or `log.level` (any case) whose value
///   is a known level name or a level number. Numbers are read as pino and
///   bunyan write them: 10 trace, 20 debug, 30 info, 40 warn, 50 error and
///   60 fatal. Numbers between round down, and numbers above 60 are not
///   recognised. A well-formed object without such a key is `info`, and
///   anything that does not parse as an object falls through to the plain
///   forms.
/// - Whole-line prefixes: glog and klog (`W1204 12:00:00.000000 ...`, the
///   letter I, W, E or F and four digits), a syslog priority (`<3>`),
///   Go's `fatal error:`, Rust's
///   `thread '...' panicked at`, Java's `Exception in thread "` and Python's
///   `Traceback (most recent call last):`.
/// - The first 8 whitespace-separated tokens within the first 160 visible
///   bytes (escape sequences such as SGR colours are removed first), in
///   order:
///   - logfmt `level=`, `lvl=` or `severity=` with a plain or quoted value;
///   - a level name in brackets, `[warn]`, `[ERROR]:`, `<error>`, `[WARN ]`;
///   - a level name followed by a colon, in any case (`ERROR:`, `error:`,
///     `WARNING:root:msg`, Go's `panic:`), or followed by a bracketed tag
///     (`WARN[0000]`, `error[E0308]:`, or Serilog's `INF]`);
///   - a bare level name in capitals (`ERROR`, `WARN`).
///
///   The last two apply only while every earlier token looks like a line
///   prefix, meaning a timestamp, number, bracketed tag, program name or
///   punctuation: a token that contains a digit, starts with `[`, `(` or
///   `<`, ends with a colon, or has no letters. So `2026-12-04 12:00:00,123 ERROR x` and nginx's
///   `2026/12/04 12:00:00 [error] 12#0: ...` are errors, but
///   `user clicked ERROR button` is not.
///
/// Level names, in any case: trace, trc, verbose, debug, dbug, dbg, info, inf,
/// information, notice, warn, wrn, warning, error, err, severe, dpanic,
/// fatal, ftl, critical, crit, panic, emerg, emergency.
///
/// NOTE: a prose line that starts with a number, such as `3 ERROR lines
/// found`, is detected as an error, because the number looks like a prefix.
pub fn detect_level(text: &str) -> Level {
    let trimmed = text.trim_ascii_start();
    if trimmed.starts_with('{') {
        match json_level(trimmed.as_bytes()) {
            JsonLevel::Found(level) => return level,
            JsonLevel::Missing => return Level::Info,
            JsonLevel::NotJson => {}
        }
    }
    plain_level(text).unwrap_or_default()
}

/// Detects a level from the plain-text forms, looking through escape
/// sequences when the head of the line contains any.
fn plain_level(text: &str) -> Option<Level> {
    let head = head_of(text, HEAD_BYTES);
    // 0xc2 is the first byte of every 8-bit C1 control such as CSI.
    if memchr2(ESC, 0xc2, head.as_bytes()).is_none() {
        return head_level(head.as_bytes());
    }

    // Escape sequences take up bytes, so read further to fill the buffer
    // with visible text.
    let mut visible = [0u8; HEAD_BYTES];
    let mut len = 0;
    for token in Tokens::new(head_of(text, 4 * HEAD_BYTES)) {
        let Token::Text(run) = token else { continue };
        let take = run.len().min(HEAD_BYTES - len);
        visible[len..len + take].copy_from_slice(&run.as_bytes()[..take]);
        len += take;
        if len == HEAD_BYTES {
            break;
        }
    }
    head_level(&visible[..len])
}

/// Returns the longest prefix of `text` of at most `max` bytes that ends on
/// a character boundary.
fn head_of(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn head_level(head: &[u8]) -> Option<Level> {
    let line = head.trim_ascii_start();
    if let Some(level) = prefix_level(line) {
        return Some(level);
    }

    let mut rules = TokenRules::for_line(line);
    for token in Words::new(line).take(HEAD_TOKENS) {
        if let Some(level) = rules.level_of(token) {
            return Some(level);
        }
        rules.leading_word &= is_prefix_like(token);
        if !rules.any() {
            break;
        }
    }
    None
}

/// The token rules that can still match in a line.
struct TokenRules {
    logfmt: bool,
    bracketed: bool,
    /// Level name followed by a colon or tag, or alone in capitals. Applies
    /// only while every earlier token looks like a prefix.
    leading_word: bool,
}

impl TokenRules {
    /// Most lines match no rule. Ruling out logfmt and brackets for the
    /// whole line up front lets such lines stop at the first token that is
    /// not a prefix.
    fn for_line(line: &[u8]) -> Self {
        Self {
            logfmt: memchr(b'=', line).is_some(),
            bracketed: memchr2(b'[', b'<', line).is_some(),
            leading_word: true,
        }
    }

    fn any(&self) -> bool {
        self.logfmt || self.bracketed || self.leading_word
    }

    fn level_of(&self, token: &[u8]) -> Option<Level> {
        if self.logfmt {
            if let Some(level) = logfmt_level(token) {
                return Some(level);
            }
        }
        if self.bracketed {
            if let Some(level) = bracketed_level(token) {
                return Some(level);
            }
        }
        if self.leading_word {
            return leading_word_level(token);
        }
        None
    }
}

/// Beginnings that mark a whole line, checked before the token rules.
const LINE_PREFIXES: &[(&[u8], Level)] = &[
    (b"fatal error: ", Level::Fatal),
    (b"Exception in thread \"", Level::Error),
    (b"Traceback (most recent call last):", Level::Error),
];

fn prefix_level(line: &[u8]) -> Option<Level> {
    if let Some(level) = glog_level(line) {
        return Some(level);
    }
    if let Some(level) = syslog_level(line) {
        return Some(level);
    }
    if line.starts_with(b"thread '") && memmem::find(line, b"' panicked at").is_some() {
        return Some(Level::Fatal);
    }
    LINE_PREFIXES
        .iter()
        .find(|(prefix, _)| line.starts_with(prefix))
        .map(|&(_, level)| level)
}

/// Reads a syslog priority prefix `<N>`, as systemd and the kernel write it
/// to journald-aware output: 0 to 2 fatal, 3 error, 4 warn, 5 and 6 info,
/// 7 debug. Only the severity digit is read, so `<11>` (facility 1) is not.
fn syslog_level(line: &[u8]) -> Option<Level> {
    let [b'<', digit, b'>', ..] = line else {
        return None;
    };
    match digit {
        b'0'..=b'2' => Some(Level::Fatal),
        b'3' => Some(Level::Error),
        b'4' => Some(Level::Warn),
        b'5' | b'6' => Some(Level::Info),
        b'7' => Some(Level::Debug),
        _ => None,
    }
}

/// Reads the glog header `Lmmdd hh:mm:ss.uuuuuu`, where L is the level letter.
fn glog_level(line: &[u8]) -> Option<Level> {
    let header = line.get(..7)?;
    let date_and_space = header[1..5].iter().all(u8::is_ascii_digit) && header[5] == b' ';
    if !date_and_space || !header[6].is_ascii_digit() {
        return None;
    }
    match header[0] {
        b'I' => Some(Level::Info),
        b'W' => Some(Level::Warn),
        b'E' => Some(Level::Error),
        b'F' => Some(Level::Fatal),
        _ => None,
    }
}

fn logfmt_level(token: &[u8]) -> Option<Level> {
    let equals = token.iter().position(|&b| b == b'=')?;
    let key = &token[..equals];
    let is_level_key = [&b"level"[..], b"lvl", b"severity"]
        .iter()
        .any(|name| key.eq_ignore_ascii_case(name));
    if !is_level_key {
        return None;
    }

    let value = &token[equals + 1..];
    let value = value.strip_prefix(b"\"").unwrap_or(value);
    let value = value.strip_suffix(b"\"").unwrap_or(value);
    word_level(value)
}

/// Reads `[name]` or `<name>`, optionally followed by punctuation such as `:`.
fn bracketed_level(token: &[u8]) -> Option<Level> {
    let (&open, rest) = token.split_first()?;
    let close = match open {
        b'[' => b']',
        b'<' => b'>',
        _ => return None,
    };
    let end = rest.iter().position(|&b| b == close)?;
    if rest.get(end + 1).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    word_level(rest[..end].trim_ascii())
}

/// Reads a level name at the start of a token, accepting it by what follows:
/// nothing (capitals only), a colon (any case), or a bracketed tag
/// (capitals, or any case when the tag ends with `]:`).
fn leading_word_level(token: &[u8]) -> Option<Level> {
    let word_len = token
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(token.len());
    let (word, suffix) = token.split_at(word_len);
    let level = word_level(word)?;

    let capitals = word.iter().all(u8::is_ascii_uppercase);
    let accepted = match suffix.first() {
        None => capitals,
        Some(b':') => true,
        Some(b'[') => capitals || suffix.ends_with(b"]:"),
        Some(b']') => capitals && suffix.len() == 1,
        Some(_) => false,
    };
    accepted.then_some(level)
}

/// True for tokens that commonly come before the level in a line header:
/// timestamps, process ids, thread names in brackets, separators, and a
/// program name with a colon (`cc1: error: ...`, as GNU tools write).
fn is_prefix_like(token: &[u8]) -> bool {
    let bracketed = matches!(token.first(), Some(b'[' | b'(' | b'<'));
    let program = token.len() > 1 && token.ends_with(b":");
    bracketed
        || program
        || token.iter().any(u8::is_ascii_digit)
        || !token.iter().any(u8::is_ascii_alphabetic)
}

/// Level names, matched ignoring ASCII case.
const LEVEL_NAMES: &[(&[u8], Level)] = &[
    (b"trace", Level::Trace),
    (b"trc", Level::Trace),
    (b"verbose", Level::Trace),
    (b"debug", Level::Debug),
    (b"dbug", Level::Debug),
    (b"dbg", Level::Debug),
    (b"info", Level::Info),
    (b"inf", Level::Info),
    (b"information", Level::Info),
    (b"notice", Level::Info),
    (b"warn", Level::Warn),
    (b"wrn", Level::Warn),
    (b"warning", Level::Warn),
    (b"error", Level::Error),
    (b"err", Level::Error),
    (b"severe", Level::Error),
    (b"dpanic", Level::Error),
    (b"fatal", Level::Fatal),
    (b"ftl", Level::Fatal),
    (b"critical", Level::Fatal),
    (b"crit", Level::Fatal),
    (b"panic", Level::Fatal),
    (b"emerg", Level::Fatal),
    (b"emergency", Level::Fatal),
];

/// Lengths of the shortest and longest names in [`LEVEL_NAMES`]. Most
/// tokens fail this check, which is cheaper than the table.
const NAME_LENGTHS: std::ops::RangeInclusive<usize> = 3..=11;

/// Returns the level a name stands for, ignoring ASCII case.
fn word_level(word: &[u8]) -> Option<Level> {
    if !NAME_LENGTHS.contains(&word.len()) {
        return None;
    }
    LEVEL_NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|&(_, level)| level)
}

/// Whitespace-separated tokens of a line, where a short bracketed group
/// stays one token even with spaces inside.
struct Words<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Words<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let bytes = self.bytes;
        while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        if start == bytes.len() {
            return None;
        }

        if let Some(end) = bracket_end(&bytes[start..]) {
            self.pos = start + end;
        }
        while self.pos < bytes.len() && !bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        Some(&bytes[start..self.pos])
    }
}

/// Returns the length of a bracketed group at the start of `bytes` if it is
/// at most [`MAX_BRACKET`] bytes long.
fn bracket_end(bytes: &[u8]) -> Option<usize> {
    let close = match bytes.first()? {
        b'[' => b']',
        b'<' => b'>',
        _ => return None,
    };
    let window = &bytes[1..bytes.len().min(MAX_BRACKET)];
    window.iter().position(|&b| b == close).map(|at| at + 2)
}

enum JsonLevel {
    Found(Level),
    /// A whole object was read without a recognised level.
    Missing,
    NotJson,
}

/// Walks the top-level keys of the JSON object at the start of `bytes`,
/// skipping values without parsing them.
fn json_level(bytes: &[u8]) -> JsonLevel {
    let mut pos = 1;
    loop {
        pos = skip_whitespace(bytes, pos);
        match bytes.get(pos) {
            Some(b'"') => {}
            Some(b'}') => return JsonLevel::Missing,
            _ => return JsonLevel::NotJson,
        }
        let Some(key_end) = string_end(bytes, pos + 1) else {
            return JsonLevel::NotJson;
        };
        let key = &bytes[pos + 1..key_end];

        pos = skip_whitespace(bytes, key_end + 1);
        if bytes.get(pos) != Some(&b':') {
            return JsonLevel::NotJson;
        }
        pos = skip_whitespace(bytes, pos + 1);
        if is_json_level_key(key) {
            if let Some(level) = json_value_level(&bytes[pos..]) {
                return JsonLevel::Found(level);
            }
        }

        let Some(value_end) = skip_value(bytes, pos) else {
            return JsonLevel::NotJson;
        };
        pos = skip_whitespace(bytes, value_end);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') => return JsonLevel::Missing,
            _ => return JsonLevel::NotJson,
        }
    }
}

fn is_json_level_key(key: &[u8]) -> bool {
    [&b"level"[..], b"severity", b"lvl", b"@l", b"log.level"]
        .iter()
        .any(|name| key.eq_ignore_ascii_case(name))
}

fn json_value_level(value: &[u8]) -> Option<Level> {
    match value.first()? {
        b'"' => word_level(&value[1..string_end(value, 1)?]),
        b'0'..=b'9' => numeric_level(value),
        _ => None,
    }
}

/// Maps a pino or bunyan level number to a level.
fn numeric_level(value: &[u8]) -> Option<Level> {
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 2 {
        return None;
    }
    let number = value[..digits]
        .iter()
        .fold(0u8, |number, digit| number * 10 + (digit - b'0'));
    match number {
        0..=19 => Some(Level::Trace),
        20..=29 => Some(Level::Debug),
        30..=39 => Some(Level::Info),
        40..=49 => Some(Level::Warn),
        50..=59 => Some(Level::Error),
        60 => Some(Level::Fatal),
        _ => None,
    }
}

fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
        pos += 1;
    }
    pos
}

/// Returns the index of the quote that closes the JSON string whose content
/// starts at `from`.
fn string_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    loop {
        // A plain loop, not memchr, because strings in log lines are mostly
        // a few bytes long.
        let found = pos
            + bytes
                .get(pos..)?
                .iter()
                .position(|&b| b == b'"' || b == b'\\')?;
        if bytes[found] == b'"' {
            return Some(found);
        }
        // Skip the backslash and the byte it escapes.
        pos = found + 2;
    }
}

/// Returns the index just after the JSON value that starts at `pos`.
fn skip_value(bytes: &[u8], pos: usize) -> Option<usize> {
    match bytes.get(pos)? {
        b'"' => string_end(bytes, pos + 1).map(|end| end + 1),
        b'{' | b'[' => skip_nested(bytes, pos),
        _ => {
            let len = bytes[pos..]
                .iter()
                .take_while(|&&b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                .count();
            (len > 0).then_some(pos + len)
        }
    }
}

/// Skips an object or array, counting brackets outside strings.
fn skip_nested(bytes: &[u8], pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = pos;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i + 1)?,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_order() {
        assert!(Level::Trace < Level::Debug);
        assert!(Level::Debug < Level::Info);
        assert!(Level::Info < Level::Warn);
        assert!(Level::Warn < Level::Error);
        assert!(Level::Error < Level::Fatal);
    }

    #[test]
    fn level_numbers_round_trip() {
        for (number, level) in Level::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(level.as_u8()), number);
            assert_eq!(Level::from_u8(level.as_u8()), Some(level));
        }
        assert_eq!(Level::from_u8(6), None);
        assert_eq!(Level::from_u8(255), None);
    }

    #[test]
    fn level_default_is_info() {
        assert_eq!(Level::default(), Level::Info);
    }

    #[test]
    fn level_display_and_serde() {
        for level in Level::ALL {
            let json = serde_json::to_string(&level).unwrap();
            assert_eq!(json, format!("\"{level}\""));
            assert_eq!(serde_json::from_str::<Level>(&json).unwrap(), level);
            assert_eq!(level.to_string(), level.as_str());
        }
        assert_eq!(format!("{:<5}|", Level::Warn), "warn |");
    }

    #[test]
    fn level_from_str_accepts_aliases() {
        let cases = [
            ("trace", Level::Trace),
            ("DEBUG", Level::Debug),
            ("Info", Level::Info),
            ("warn", Level::Warn),
            ("WARNING", Level::Warn),
            ("error", Level::Error),
            ("err", Level::Error),
            ("fatal", Level::Fatal),
            ("critical", Level::Fatal),
            ("CRIT", Level::Fatal),
            ("panic", Level::Fatal),
        ];
        for (input, level) in cases {
            assert_eq!(input.parse::<Level>(), Ok(level), "{input}");
        }
    }

    #[test]
    fn level_from_str_rejects_unknown() {
        let error = "loud".parse::<Level>().unwrap_err();
        assert_eq!(error.value(), "loud");
        let message = error.to_string();
        assert!(message.contains("\"loud\""), "{message}");
        assert!(message.contains("warning"), "{message}");
        assert!("".parse::<Level>().is_err());
        assert!(" warn".parse::<Level>().is_err());
    }

    /// Lines with the level `detect_level` must find in them.
    const DETECT_CASES: &[(&str, Level)] = &[
        // JSON
        (r#"{"level":"warn","msg":"x"}"#, Level::Warn),
        (r#"{"msg":"x","severity":"ERROR"}"#, Level::Error),
        (r#"{"lvl":"Error"}"#, Level::Error),
        (
            r#"{"@t":"2026-12-04","@l":"Warning","@m":"x"}"#,
            Level::Warn,
        ),
        (r#"{"Level":"CRITICAL"}"#, Level::Fatal),
        (r#"{"lvl":"dbug","msg":"x"}"#, Level::Debug),
        ("myprog: error: something failed", Level::Error),
        ("shipdeck-sample: error: PORT is not set", Level::Error),
        ("cc1: warning: command-line option", Level::Warn),
        ("<3>systemd err prefix", Level::Error),
        ("<4>kernel: low memory", Level::Warn),
        ("<6>started", Level::Info),
        ("<7>details", Level::Debug),
        ("<2>critical failure", Level::Fatal),
        ("Note: the error count is zero", Level::Info),
        (r#"{"log.level":"debug"}"#, Level::Debug),
        (r#"  { "level" : "trace" }"#, Level::Trace),
        (r#"{"level":10,"msg":"x"}"#, Level::Trace),
        (r#"{"level":20}"#, Level::Debug),
        (r#"{"level":30,"time":1,"pid":7,"msg":"ok"}"#, Level::Info),
        (r#"{"level":40}"#, Level::Warn),
        (r#"{"level":50}"#, Level::Error),
        (r#"{"level":60}"#, Level::Fatal),
        (r#"{"level":35}"#, Level::Info),
        (
            r#"{"time":"t","ctx":{"level":"debug","a":[1,{"b":"}"}]},"msg":"q\"}","level":"error"}"#,
            Level::Error,
        ),
        (r#"{"level":"http","severity":"warning"}"#, Level::Warn),
        (r#"{"msg":"ERROR in the message only"}"#, Level::Info),
        (r#"{"level":700}"#, Level::Info),
        (r#"{"level":null}"#, Level::Info),
        (r#"{"level":"error","msg":"a line cut sho"#, Level::Error),
        ("{worker-1} ERROR boom", Level::Error),
        // logfmt
        ("level=warn msg=hi", Level::Warn),
        (
            "time=2026-12-04T12:00:00Z level=error msg=\"x\"",
            Level::Error,
        ),
        ("ts=1 caller=main.go:10 lvl=debug msg=x", Level::Debug),
        (
            "time=\"2026-12-04 12:00\" level=\"warning\" msg=x",
            Level::Warn,
        ),
        ("severity=CRITICAL x", Level::Fatal),
        (
            "time=2026-12-04T12:00:00Z level=INFO msg=\"ERROR count\"",
            Level::Info,
        ),
        // bracketed
        ("[warn] disk almost full", Level::Warn),
        ("[ERROR] boom", Level::Error),
        ("<error> boom", Level::Error),
        ("[ERROR]: boom", Level::Error),
        ("[WARN ] padded", Level::Warn),
        ("[main] [debug] x", Level::Debug),
        (
            "2026/12/04 12:00:00 [error] 12#0: *1 open() failed",
            Level::Error,
        ),
        (
            "2026/12/04 12:00:00 [notice] 1#1: start worker",
            Level::Info,
        ),
        // colon
        ("WARNING:root:disk almost full", Level::Warn),
        ("ERROR: boom", Level::Error),
        ("error: could not compile `x`", Level::Error),
        ("warning: unused variable", Level::Warn),
        ("error[E0308]: mismatched types", Level::Error),
        ("Error: ENOENT: no such file", Level::Error),
        ("info: server started", Level::Info),
        ("debug: x", Level::Debug),
        ("SEVERE: connection lost", Level::Error),
        ("panic: runtime error: index out of range", Level::Fatal),
        ("2026-12-04 12:00:00 warning: x", Level::Warn),
        // capitals after a prefix
        ("ERROR boom", Level::Error),
        ("FATAL boom", Level::Fatal),
        ("TRACE x", Level::Trace),
        ("NOTICE x", Level::Info),
        ("PANIC x", Level::Fatal),
        ("ERR x", Level::Error),
        ("2026-12-04 12:00:00,123 ERROR x", Level::Error),
        (
            "2026-12-04 12:00:00.123 [main] WARN com.example.App - x",
            Level::Warn,
        ),
        (
            "2026-12-04T12:00:00.123Z  DEBUG 4242 --- [main] x",
            Level::Debug,
        ),
        ("12:00:00.123 [pool-1] CRITICAL x", Level::Fatal),
        ("web-1  | ERROR x", Level::Error),
        ("WARN[0000] logrus terminal format", Level::Warn),
        ("[12:00:00 WRN] serilog console", Level::Warn),
        // glog and klog
        (
            "I1204 12:00:00.000000       1 main.go:10] started",
            Level::Info,
        ),
        (
            "W1204 12:00:00.000000       1 main.go:10] slow",
            Level::Warn,
        ),
        (
            "E1204 12:00:00.000000       1 main.go:10] failed",
            Level::Error,
        ),
        (
            "F1204 12:00:00.000000       1 main.go:10] dead",
            Level::Fatal,
        ),
        // crashes
        ("thread 'main' panicked at src/main.rs:2:5:", Level::Fatal),
        (
            "thread '<unnamed>' panicked at src/lib.rs:9:1:",
            Level::Fatal,
        ),
        (
            "fatal error: all goroutines are asleep - deadlock!",
            Level::Fatal,
        ),
        (
            "Exception in thread \"main\" java.lang.NullPointerException",
            Level::Error,
        ),
        ("Traceback (most recent call last):", Level::Error),
        // escape sequences around the level
        ("\x1b[31mERROR\x1b[0m boom", Level::Error),
        ("\x1b[1;33mWARN\x1b[0m: slow", Level::Warn),
        (
            "2026-12-04 12:00:00 \x1b[31m[error]\x1b[39m x",
            Level::Error,
        ),
        (
            "\x1b[2m2026-12-04T12:00:00Z\x1b[0m \x1b[33m WARN\x1b[0m x",
            Level::Warn,
        ),
        ("\u{9b}31mFATAL\u{9b}0m x", Level::Fatal),
        ("level=\x1b[31merror\x1b[0m", Level::Error),
        // negatives
        ("", Level::Info),
        ("   ", Level::Info),
        ("server started on port 8080", Level::Info),
        ("user clicked ERROR button", Level::Info),
        ("2026-12-04 12:00:00 user clicked ERROR button", Level::Info),
        ("an error: something", Level::Info),
        ("Error connecting to the database", Level::Info),
        ("ERRORS are counted", Level::Info),
        ("ERROR, said the robot", Level::Info),
        ("information overload", Level::Info),
        ("levels=warn x", Level::Info),
        ("level=loud x", Level::Info),
        ("X1204 12:00:00.000000 1 a.go:1] x", Level::Info),
        ("I12 x", Level::Info),
        ("thread 'main' started", Level::Info),
        (
            "one two three four five six seven eight [error]",
            Level::Info,
        ),
        ("[errorhandler] started", Level::Info),
        ("[ERROR]x", Level::Info),
        ("ünïcödé ERROR text", Level::Info),
        ("\x1b[31m", Level::Info),
        ("\x1b]0;ERROR\x07 x", Level::Info),
    ];

    #[test]
    fn level_names_fit_length_filter() {
        for (name, _) in LEVEL_NAMES {
            assert!(NAME_LENGTHS.contains(&name.len()), "{name:?}");
        }
    }

    #[test]
    fn detect_level_table() {
        for (line, expected) in DETECT_CASES {
            assert_eq!(detect_level(line), *expected, "line {line:?}");
        }
    }

    #[test]
    fn detect_level_reads_only_head() {
        let late = format!("{} [error]", "x ".repeat(200));
        assert_eq!(detect_level(&late), Level::Info);
    }

    #[test]
    fn detect_level_survives_hostile_input() {
        let lines = [
            "{".to_owned(),
            "{\"".to_owned(),
            "{\"level\":\"\\".to_owned(),
            "{\"a\":[[[[".to_owned(),
            "{\"a\":}".to_owned(),
            "{\"level\"".to_owned(),
            "[".repeat(1000),
            "\x1b[".repeat(1000),
            "é".repeat(200),
            format!("{}ERROR", "\x1b[0m".repeat(100)),
            "\0\u{1}\u{2}".repeat(50),
        ];
        for line in &lines {
            // Any level will do; the line must not panic.
            let _ = detect_level(line);
        }
    }

    #[test]
    fn detect_level_sees_through_many_escapes() {
        let line = format!("{}ERROR boom", "\x1b[0m".repeat(40));
        assert_eq!(detect_level(&line), Level::Error);
    }
}
