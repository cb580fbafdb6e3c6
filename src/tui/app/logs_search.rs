//! The logs tab's search pattern: a case-insensitive substring or a
//! regular expression, compiled as the agent compiles it, so that a line
//! highlighted here is a line the agent's filter selects.

use std::ops::Range;

use regex::{Regex, RegexBuilder};

/// Maximum length of a pattern in bytes, as in the agent.
const MAX_PATTERN_LEN: usize = 4096;

/// Compiled patterns are capped so that a pathological one fails with an
/// error instead of taking the dashboard's memory.
const REGEX_SIZE_LIMIT: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct Search {
    pub text: String,
    pub regex: bool,
    /// The compiled pattern, or why it does not compile.
    compiled: Result<Regex, String>,
}

impl PartialEq for Search {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.regex == other.regex
    }
}

impl Search {
    /// Compiles `text`; an invalid pattern is kept with its error, so that
    /// the tab shows what is wrong while the operator edits it.
    pub fn new(text: &str, regex: bool) -> Self {
        Self {
            text: text.to_owned(),
            regex,
            compiled: compile(text, regex),
        }
    }

    /// Returns why the pattern does not compile, if it does not.
    pub fn error(&self) -> Option<&str> {
        self.compiled.as_ref().err().map(String::as_str)
    }

    /// Whether the pattern is usable: not empty and valid.
    pub fn is_valid(&self) -> bool {
        !self.text.is_empty() && self.compiled.is_ok()
    }

    pub fn is_match(&self, text: &str) -> bool {
        match &self.compiled {
            Ok(regex) if !self.text.is_empty() => regex.is_match(text),
            _ => false,
        }
    }

    /// Returns the byte ranges of the non-empty matches in `text`.
    pub fn find(&self, text: &str) -> Vec<Range<usize>> {
        match &self.compiled {
            Ok(regex) if !self.text.is_empty() => regex
                .find_iter(text)
                .filter(|found| !found.is_empty())
                .map(|found| found.range())
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn compile(text: &str, regex: bool) -> Result<Regex, String> {
    if text.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "the pattern is {} bytes long; at most {MAX_PATTERN_LEN} are accepted",
            text.len()
        ));
    }
    let pattern = if regex {
        text.to_owned()
    } else {
        regex::escape(text)
    };
    RegexBuilder::new(&pattern)
        .case_insensitive(!regex)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| {
            // The regex crate draws the pattern and a caret first; the last
            // line names the problem.
            let text = error.to_string();
            let last = text.lines().last().unwrap_or_default().trim();
            format!(
                "invalid regex: {}; fix it, or press r for plain text",
                last.strip_prefix("error: ").unwrap_or(last)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_ignores_case_and_is_literal() {
        let search = Search::new("Time(out", false);
        assert!(search.is_valid());
        assert!(search.is_match("a TIME(OUT here"));
        assert_eq!(search.find("x time(out y Time(Out"), [2..10, 13..21]);
    }

    #[test]
    fn invalid_regex_is_an_error_not_a_panic() {
        let search = Search::new("(unclosed", true);
        assert!(!search.is_valid());
        let error = search.error().unwrap();
        assert!(error.starts_with("invalid regex: "), "{error}");
        assert!(error.contains("unclosed group"), "{error}");
        assert!(!search.is_match("(unclosed"));
        assert!(search.find("(unclosed").is_empty());
    }

    #[test]
    fn regex_is_case_sensitive() {
        let search = Search::new("^GET /[a-z]+", true);
        assert!(search.is_match("GET /healthz"));
        assert!(!search.is_match("get /healthz"));
    }

    #[test]
    fn empty_pattern_matches_nothing() {
        let search = Search::new("", false);
        assert!(!search.is_valid());
        assert!(search.find("abc").is_empty());
    }
}
