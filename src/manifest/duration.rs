//! Durations written as `500ms`, `30s`, `5m`, `1h`, `1h30m` or `1.5s`.
//!
//! The unit is required because a bare `30` is ambiguous between tools
//! (seconds in Kubernetes fields, milliseconds elsewhere). The resolution is one
//! millisecond: `us` and `ns` are rejected, and so is any value with a fraction
//! of a millisecond, since no backend can act on it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ManifestDuration {
    millis: u64,
}

impl ManifestDuration {
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }

    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }
}

const MILLIS_PER_UNIT: &[(&str, u64)] = &[
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl TryFrom<String> for ManifestDuration {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        parse_duration(&text).map(Self::from_millis)
    }
}

/// Writes the duration as hours, minutes, seconds and milliseconds, leaving out zero parts.
impl From<ManifestDuration> for String {
    fn from(duration: ManifestDuration) -> String {
        if duration.millis == 0 {
            return "0s".to_owned();
        }

        let mut rest = duration.millis;
        let mut text = String::new();
        for (unit, millis) in MILLIS_PER_UNIT {
            let count = rest / millis;
            rest %= millis;
            if count > 0 {
                text.push_str(&format!("{count}{unit}"));
            }
        }
        text
    }
}

impl std::fmt::Display for ManifestDuration {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&String::from(*self))
    }
}

fn parse_duration(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err("empty duration; write a number with a unit such as 30s".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!(
            "negative duration `{text}`; write zero or more, such as 0s"
        ));
    }
    if is_number(text) {
        return Err(format!(
            "duration `{text}` has no unit; write {text}s (or ms, m, h, d)"
        ));
    }

    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (millis, remaining) = parse_component(text, rest)?;
        total = total
            .checked_add(millis)
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
        rest = remaining;
    }
    Ok(total)
}

/// Parses one `<number><unit>` at the start of `rest` and returns its milliseconds and what follows.
fn parse_component<'a>(text: &str, rest: &'a str) -> Result<(u64, &'a str), String> {
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, after_number) = rest.split_at(number_len);
    let unit_len = after_number
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(after_number.len());
    let (unit, remaining) = after_number.split_at(unit_len);

    if !is_number(number) {
        return Err(invalid(text));
    }
    let unit_millis = unit_millis(text, unit)?;
    let millis = exact_millis(text, number, unit_millis)?;
    Ok((millis, remaining))
}

fn unit_millis(text: &str, unit: &str) -> Result<u64, String> {
    if let Some((_, millis)) = MILLIS_PER_UNIT.iter().find(|(name, _)| *name == unit) {
        return Ok(*millis);
    }
    if matches!(unit, "us" | "µs" | "ns") {
        return Err(format!(
            "duration `{text}` uses `{unit}`, but the smallest supported unit is ms"
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "duration `{text}` has a number without a unit; add one of ms, s, m, h or d"
        ));
    }
    Err(format!(
        "duration `{text}` has unknown unit `{unit}`; use ms, s, m, h or d"
    ))
}

/// Multiplies `number` (which may have a fraction) by `unit_millis`, rejecting fractions of a millisecond.
fn exact_millis(text: &str, number: &str, unit_millis: u64) -> Result<u64, String> {
    let too_large = || format!("duration `{text}` is too large");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let fraction = fraction.trim_end_matches('0');

    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let whole_millis = whole.checked_mul(unit_millis).ok_or_else(too_large)?;
    if fraction.is_empty() {
        return Ok(whole_millis);
    }

    // A fraction longer than 18 digits cannot come out to whole milliseconds of any unit here.
    let not_whole = || format!("duration `{text}` is not a whole number of milliseconds");
    let scale = u32::try_from(fraction.len())
        .ok()
        .and_then(|len| 10u128.checked_pow(len))
        .filter(|_| fraction.len() <= 18)
        .ok_or_else(not_whole)?;
    let numerator = fraction.parse::<u128>().map_err(|_| invalid(text))? * u128::from(unit_millis);
    if numerator % scale != 0 {
        return Err(not_whole());
    }

    let fraction_millis = u64::try_from(numerator / scale).map_err(|_| too_large())?;
    whole_millis
        .checked_add(fraction_millis)
        .ok_or_else(too_large)
}

fn is_number(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    (!whole.is_empty() || !fraction.is_empty()) && digits(whole) && digits(fraction)
}

fn invalid(text: &str) -> String {
    format!("invalid duration `{text}`; write a number with a unit, such as 500ms, 30s, 5m, 1h or 1h30m")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(text: &str) -> Result<u64, String> {
        ManifestDuration::try_from(text.to_owned()).map(ManifestDuration::as_millis)
    }

    #[test]
    fn duration_table() {
        let cases: &[(&str, u64)] = &[
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("1.5s", 1_500),
            ("0.5m", 30_000),
            ("1s500ms", 1_500),
            ("0s", 0),
            (".5s", 500),
            ("1.0010s", 1_001),
            ("2m2s", 122_000),
        ];
        for (text, expected) in cases {
            assert_eq!(millis(text).as_ref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bare_number_gets_hint() {
        let message = millis("30").expect_err("30");
        assert!(message.contains("write 30s"), "{message}");
    }

    #[test]
    fn invalid_durations_are_rejected() {
        for text in [
            "", "s", "1w", "1.2.3s", "1 s", "1h-", "-5s", "1.0001s", "5us", "5ns", "1hm",
        ] {
            let message = millis(text).expect_err(text);
            assert!(
                message.contains(&format!("`{text}`")) || text.is_empty(),
                "{text}: {message}"
            );
        }
    }

    #[test]
    fn overflow_is_rejected() {
        let message = millis("99999999999999999999h").expect_err("overflow");
        assert!(message.contains("too large"), "{message}");
    }

    #[test]
    fn canonical_text_round_trips() {
        for value in [
            0,
            1,
            999,
            1_000,
            1_500,
            60_000,
            5_400_000,
            3_723_004,
            u64::MAX,
        ] {
            let text = String::from(ManifestDuration::from_millis(value));
            assert_eq!(millis(&text), Ok(value), "{text}");
        }
    }

    #[test]
    fn canonical_text_is_compact() {
        assert_eq!(
            String::from(ManifestDuration::from_millis(5_400_000)),
            "1h30m"
        );
        assert_eq!(
            String::from(ManifestDuration::from_millis(1_500)),
            "1s500ms"
        );
    }
}
