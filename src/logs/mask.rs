//! Replacing known secret values in captured lines before they are stored.

use aho_corasick::{AhoCorasick, MatchKind};
use zeroize::Zeroize;

/// The text that replaces a secret value.
pub const MASK: &str = "****";

/// Values shorter than this are not masked. A two-letter value occurs in
/// ordinary text so often that masking it would destroy every line while
/// hiding nothing an attacker could not guess.
pub const MIN_MASKED_LEN: usize = 4;

/// The secret values of one deployment, ready to be found in a line.
pub struct SecretMask {
    finder: AhoCorasick,
}

impl SecretMask {
    /// Builds a mask for `values`, or `None` when none is long enough to mask.
    pub fn new<I, S>(values: I) -> Option<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> = values
            .into_iter()
            .map(|value| value.as_ref().to_owned())
            .filter(|value| value.len() >= MIN_MASKED_LEN)
            .collect();
        if patterns.is_empty() {
            return None;
        }

        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns);
        wipe(&mut patterns);
        finder.ok().map(|finder| Self { finder })
    }

    /// Checks whether `text` contains a secret value.
    pub fn finds(&self, text: &str) -> bool {
        self.finder.is_match(text)
    }

    /// Returns `line` with every secret value replaced by [`MASK`].
    pub fn apply(&self, line: String) -> String {
        if !self.finder.is_match(&line) {
            return line;
        }
        let mut masked = String::with_capacity(line.len());
        self.finder
            .replace_all_with(&line, &mut masked, |_, _, out| {
                out.push_str(MASK);
                true
            });
        masked
    }
}

/// Overwrites the copies of secret values made while building the finder.
fn wipe(values: &mut Vec<String>) {
    for value in values.iter_mut() {
        value.zeroize();
    }
    values.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_of_every_value() {
        let mask = SecretMask::new(["hunter22", "s3cr3t-token"]).unwrap();
        assert_eq!(
            mask.apply("login hunter22 with s3cr3t-token and hunter22".to_owned()),
            "login **** with **** and ****"
        );
    }

    #[test]
    fn longest_value_wins_when_one_contains_another() {
        let mask = SecretMask::new(["abcd", "abcdefgh"]).unwrap();
        assert_eq!(mask.apply("xabcdefghx".to_owned()), "x****x");
    }

    #[test]
    fn short_values_are_not_masked() {
        assert!(SecretMask::new(["ab", ""]).is_none());
    }

    #[test]
    fn lines_without_secrets_are_unchanged() {
        let mask = SecretMask::new(["hunter22"]).unwrap();
        assert_eq!(mask.apply("plain".to_owned()), "plain");
    }
}
