//! Secret values and names, and the rules both must follow.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// Maximum length of a secret name, in bytes.
pub const MAX_NAME_LEN: usize = 63;

/// Maximum length of a secret value, in bytes. Secrets reach a replica only
/// through its environment, and Linux rejects an `execve` whose single
/// `NAME=value` string exceeds 128 KiB (`MAX_ARG_STRLEN`). Half of that
/// leaves room for the name and for other variables.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// A secret value, zeroed in memory when dropped. Its `Debug` output is
/// `[REDACTED]`, and it has no `Display`, so formatting it never prints it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// Returns the value itself, for the few places that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretValue::new)
    }
}

/// An invalid secret name or value. Messages name the secret but never
/// contain its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretRuleError {
    #[error(
        "invalid secret name {name:?}: {reason}; use 1 to {MAX_NAME_LEN} characters \
         from a-z, 0-9, `_`, `.` and `-`, starting with a letter or digit"
    )]
    InvalidName { name: String, reason: &'static str },
    #[error("the value of secret {name:?} is empty; give a value on standard input")]
    EmptyValue { name: String },
    #[error(
        "the value of secret {name:?} is {len} bytes, more than the limit of {MAX_VALUE_LEN}; \
         Linux limits one environment variable to 128 KiB, so store a larger value in a \
         file and put its path in the secret"
    )]
    ValueTooLarge { name: String, len: usize },
}

/// Checks a secret name against the naming rules.
pub fn check_name(name: &str) -> Result<(), SecretRuleError> {
    let invalid = |reason| {
        Err(SecretRuleError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("it is too long");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return invalid("it does not start with a lowercase letter or digit");
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
    if !name.chars().all(allowed) {
        return invalid("it contains a character outside a-z, 0-9, `_`, `.` and `-`");
    }
    Ok(())
}

/// Checks that a value may be stored as secret `name`.
pub fn check_value(name: &str, value: &SecretValue) -> Result<(), SecretRuleError> {
    if value.is_empty() {
        return Err(SecretRuleError::EmptyValue {
            name: name.to_owned(),
        });
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(SecretRuleError::ValueTooLarge {
            name: name.to_owned(),
            len: value.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_is_redacted() {
        let value = SecretValue::new("hunter2".to_owned());
        assert_eq!(format!("{value:?}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&value)), "Some([REDACTED])");
    }

    #[test]
    fn names_follow_the_rules() {
        for good in ["a", "db_password", "api.key-2", "0token", &"x".repeat(63)] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            "has space",
            "a/b",
            "Upper",
            "_lead",
            "-lead",
            "caf\u{e9}",
            &"x".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn name_error_names_the_rule() {
        let message = check_name("my secret").unwrap_err().to_string();
        assert!(message.contains("\"my secret\""), "{message}");
        assert!(message.contains("a-z, 0-9"), "{message}");
    }

    #[test]
    fn values_must_be_non_empty_and_bounded() {
        let empty = SecretValue::new(String::new());
        assert!(matches!(
            check_value("x", &empty),
            Err(SecretRuleError::EmptyValue { .. })
        ));
        let large = SecretValue::new("v".repeat(MAX_VALUE_LEN + 1));
        let error = check_value("x", &large).unwrap_err();
        assert!(matches!(error, SecretRuleError::ValueTooLarge { .. }));
        assert!(!error.to_string().contains("vvvv"), "{error}");
        let largest = SecretValue::new("v".repeat(MAX_VALUE_LEN));
        assert_eq!(check_value("x", &largest), Ok(()));
    }
}
