//! Kubernetes resource quantities (`250m`, `0.5`, `128Mi`, `1G`, `129e6`).
//!
//! The grammar and suffixes are those of Kubernetes' `resource.Quantity`, so a
//! manifest means the same on every backend. Values are computed with exact
//! integer arithmetic: floats would turn `0.1` CPU into 99 or 101 millicores.

use serde::{Deserialize, Serialize};

/// CPU amount in millicores, keeping the text the user wrote.
///
/// Like Kubernetes, amounts finer than one millicore are rounded up, so `0.0001` is 1m.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpuQuantity {
    pub millicores: u64,
    pub text: String,
}

impl TryFrom<String> for CpuQuantity {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let parsed = parse(&text)?;
        if parsed.negative && parsed.mantissa != 0 {
            return Err(format!(
                "negative CPU quantity `{text}`; write zero or more"
            ));
        }

        let (millicores, exact) = parsed.scaled(3).ok_or_else(|| too_large(&text))?;
        let millicores = millicores + u128::from(!exact);
        let millicores = u64::try_from(millicores).map_err(|_| too_large(&text))?;
        Ok(CpuQuantity { millicores, text })
    }
}

impl From<CpuQuantity> for String {
    fn from(q: CpuQuantity) -> String {
        q.text
    }
}

/// Memory amount in bytes, keeping the text the user wrote.
///
/// Amounts that are not a whole number of bytes are rejected instead of rounded,
/// because they are nearly always a mistaken suffix (`1m` is a thousandth of a byte).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemoryQuantity {
    pub bytes: u64,
    pub text: String,
}

impl TryFrom<String> for MemoryQuantity {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let parsed = parse(&text)?;
        if parsed.negative && parsed.mantissa != 0 {
            return Err(format!(
                "negative memory quantity `{text}`; write zero or more"
            ));
        }

        let (bytes, exact) = parsed.scaled(0).ok_or_else(|| too_large(&text))?;
        if !exact {
            return Err(fractional_bytes_message(&text, &parsed));
        }
        let bytes = u64::try_from(bytes).map_err(|_| too_large(&text))?;
        Ok(MemoryQuantity { bytes, text })
    }
}

impl From<MemoryQuantity> for String {
    fn from(q: MemoryQuantity) -> String {
        q.text
    }
}

/// Returns the value of a quantity as a float, for amounts that a cluster
/// reports rather than a manifest sets, such as `123456789n` cores or
/// `51200Ki` bytes of a pod's usage. Precision beyond an `f64` is lost.
pub fn quantity_value(text: &str) -> Result<f64, String> {
    let parsed = parse(text)?;
    let exp10 = i32::try_from(parsed.exp10).map_err(|_| too_large(text))?;
    let exp2 = i32::try_from(parsed.exp2).map_err(|_| too_large(text))?;
    // Dividing by an exact power of ten rounds once, where multiplying by
    // an inexact 10^-k would round twice (250125m would not be 250.125).
    let decimal = if exp10 >= 0 {
        parsed.mantissa as f64 * 10f64.powi(exp10)
    } else {
        parsed.mantissa as f64 / 10f64.powi(-exp10)
    };
    let magnitude = decimal * 2f64.powi(exp2);
    if !magnitude.is_finite() {
        return Err(too_large(text));
    }
    Ok(if parsed.negative {
        -magnitude
    } else {
        magnitude
    })
}

/// Writes a positive amount as a decimal quantity the API server accepts:
/// a whole number without a suffix (`50`), otherwise a whole number of
/// milli, micro or nano units (`0.5` is `500m`). An amount finer than a
/// nano unit rounds up, as the API server rounds it. Zero, negative and
/// non-finite amounts are written as `0`.
pub fn decimal_quantity(value: f64) -> String {
    if !(value.is_finite() && value > 0.0) {
        return "0".to_owned();
    }
    // Display of an f64 is its shortest exact decimal form, never in
    // scientific notation, so the digits can be read off the text.
    let text = value.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if fraction.is_empty() {
        return whole.to_owned();
    }
    let (digits, suffix) = match fraction.len() {
        1..=3 => (3, "m"),
        4..=6 => (6, "u"),
        _ => (9, "n"),
    };
    let kept = &fraction[..fraction.len().min(digits)];
    let dropped = fraction.len() > digits;
    let padded = format!("{whole}{kept:0<digits$}");
    let Ok(mut units) = padded.parse::<u128>() else {
        return whole.to_owned();
    };
    if dropped {
        units += 1;
    }
    format!("{units}{suffix}")
}

/// The most significant digits a quantity may have; 10^38 still fits in a `u128`.
const MAX_DIGITS: usize = 38;

/// A parsed quantity: `mantissa * 10^exp10 * 2^exp2`, with a sign.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    negative: bool,
    mantissa: u128,
    exp10: i64,
    exp2: u32,
    suffix: String,
    number: String,
}

impl Parsed {
    /// Returns `|value| * 10^extra10` truncated to an integer, and whether no fraction was dropped.
    ///
    /// `None` means the result does not fit in a `u128`.
    fn scaled(&self, extra10: i64) -> Option<(u128, bool)> {
        if self.mantissa == 0 {
            return Some((0, true));
        }
        let numerator = self.mantissa.checked_mul(1u128.checked_shl(self.exp2)?)?;
        let exponent = self.exp10 + extra10;

        if exponent >= 0 {
            let factor = 10u128.checked_pow(u32::try_from(exponent).ok()?)?;
            return Some((numerator.checked_mul(factor)?, true));
        }

        // A nonzero u128 is below 10^39, so dividing by a larger power leaves only a fraction.
        let Some(divisor) = u32::try_from(-exponent)
            .ok()
            .and_then(|power| 10u128.checked_pow(power))
        else {
            return Some((0, false));
        };
        Some((numerator / divisor, numerator % divisor == 0))
    }
}

fn invalid(text: &str) -> String {
    format!(
        "invalid quantity `{text}`; expected a number with an optional suffix, \
         such as 250m, 0.5, 2, 128Mi, 1G or 129e6"
    )
}

fn too_large(text: &str) -> String {
    format!("quantity `{text}` is too large")
}

fn fractional_bytes_message(text: &str, parsed: &Parsed) -> String {
    if parsed.suffix == "m" {
        let number = &parsed.number;
        let amount = if number == "1" {
            "a thousandth of a byte".to_owned()
        } else {
            format!("{number} thousandths of a byte")
        };
        return format!(
            "memory quantity `{text}` is {amount}, because `m` means milli; \
             write {number}Mi for mebibytes or {number}M for megabytes"
        );
    }
    format!(
        "memory quantity `{text}` is not a whole number of bytes; \
         write a whole number of bytes or a value with a suffix such as Ki or Mi"
    )
}

/// Parses `<sign><number><suffix>` as Kubernetes does.
fn parse(text: &str) -> Result<Parsed, String> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };

    let number_len = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_len);

    let (whole, fraction) = split_number(number).ok_or_else(|| invalid(text))?;
    let (suffix_exp10, exp2) = parse_suffix(suffix).ok_or_else(|| invalid(text))?;
    let (mantissa, digits_exp10) = mantissa_of(whole, fraction).ok_or_else(|| too_large(text))?;

    Ok(Parsed {
        negative,
        mantissa,
        exp10: digits_exp10 + suffix_exp10,
        exp2,
        suffix: suffix.to_owned(),
        number: number.to_owned(),
    })
}

/// Splits `12.5` into `("12", "5")`; at least one digit and at most one `.` are required.
fn split_number(number: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    Some((whole, fraction))
}

/// Returns the decimal and binary exponents of a suffix, or `None` if it is not one.
fn parse_suffix(suffix: &str) -> Option<(i64, u32)> {
    let known = match suffix {
        "" => Some((0, 0)),
        "Ki" => Some((0, 10)),
        "Mi" => Some((0, 20)),
        "Gi" => Some((0, 30)),
        "Ti" => Some((0, 40)),
        "Pi" => Some((0, 50)),
        "Ei" => Some((0, 60)),
        "n" => Some((-9, 0)),
        "u" => Some((-6, 0)),
        "m" => Some((-3, 0)),
        "k" => Some((3, 0)),
        "M" => Some((6, 0)),
        "G" => Some((9, 0)),
        "T" => Some((12, 0)),
        "P" => Some((15, 0)),
        "E" => Some((18, 0)),
        _ => None,
    };
    known.or_else(|| parse_exponent(suffix).map(|exp10| (exp10, 0)))
}

/// Parses a decimal exponent suffix such as `e6`, `E3` or `e-3`.
fn parse_exponent(suffix: &str) -> Option<i64> {
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // Exponents beyond ±10^6 are out of range for any quantity. They are clamped,
    // so a long exponent is reported as too large (or rounded up), not as invalid.
    let value: i64 = exponent.parse().unwrap_or(if exponent.starts_with('-') {
        -1_000_000
    } else {
        1_000_000
    });
    Some(value.clamp(-1_000_000, 1_000_000))
}

/// Turns the digits into an integer mantissa and a power of ten, dropping leading and trailing zeros.
fn mantissa_of(whole: &str, fraction: &str) -> Option<(u128, i64)> {
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    if trimmed.is_empty() {
        return Some((0, 0));
    }
    if trimmed.len() > MAX_DIGITS {
        return None;
    }

    let trailing_zeros = i64::try_from(significant.len() - trimmed.len()).ok()?;
    let fraction_len = i64::try_from(fraction.len()).ok()?;
    let mantissa = trimmed.parse::<u128>().ok()?;
    Some((mantissa, trailing_zeros - fraction_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(text: &str) -> Result<u64, String> {
        CpuQuantity::try_from(text.to_owned()).map(|q| q.millicores)
    }

    fn memory(text: &str) -> Result<u64, String> {
        MemoryQuantity::try_from(text.to_owned()).map(|q| q.bytes)
    }

    #[test]
    fn cpu_table() {
        let cases: &[(&str, u64)] = &[
            ("500m", 500),
            ("0.5", 500),
            ("2", 2000),
            ("1k", 1_000_000),
            ("0.0001", 1),
            ("0.0015", 2),
            ("1.5", 1500),
            ("250m", 250),
            ("1000000n", 1),
            ("1500000n", 2),
            ("1u", 1),
            ("1e3", 1_000_000),
            ("1E3", 1_000_000),
            ("1e-3", 1),
            ("5.", 5000),
            (".5", 500),
            ("+1", 1000),
            ("0", 0),
            ("-0", 0),
            ("1Ki", 1_024_000),
            ("0.1", 100),
            ("0.000000000000000000000000000000000000000000000001", 1),
        ];
        for (text, expected) in cases {
            assert_eq!(cpu(text).as_ref(), Ok(expected), "cpu {text}");
        }
    }

    #[test]
    fn memory_table() {
        let cases: &[(&str, u64)] = &[
            ("128Mi", 134_217_728),
            ("1Gi", 1_073_741_824),
            ("1G", 1_000_000_000),
            ("129e6", 129_000_000),
            ("129E6", 129_000_000),
            ("0.5Gi", 536_870_912),
            ("1024", 1024),
            ("1Ki", 1024),
            ("1k", 1000),
            ("1Ti", 1 << 40),
            ("1Pi", 1 << 50),
            ("1Ei", 1 << 60),
            ("1E", 1_000_000_000_000_000_000),
            ("1000m", 1),
            ("1.5k", 1500),
            ("0", 0),
            ("1000000000000000000000000000000e-20", 10_000_000_000),
        ];
        for (text, expected) in cases {
            assert_eq!(memory(text).as_ref(), Ok(expected), "memory {text}");
        }
    }

    #[test]
    fn invalid_forms_are_rejected() {
        let cases = [
            "1.2.3", "Mi", "1MB", "1 Gi", "", "1ki", "+-1", "1K", "1e", "1e+", ".", "-", "1i",
            "1Mii", "1.5.Gi", "e3", "0x10", "1,5",
        ];
        for text in cases {
            let message = memory(text).expect_err(text);
            assert!(message.contains(&format!("`{text}`")), "{text}: {message}");
            assert!(cpu(text).is_err(), "cpu {text}");
        }
    }

    #[test]
    fn negative_is_rejected() {
        assert!(cpu("-1").expect_err("-1").contains("negative"));
        assert!(memory("-1Mi").expect_err("-1Mi").contains("negative"));
    }

    #[test]
    fn memory_milli_gets_hint() {
        let message = memory("1m").expect_err("1m");
        assert!(message.contains("thousandth"), "{message}");
        assert!(message.contains("1Mi"), "{message}");
        assert!(message.contains("1M "), "{message}");
    }

    #[test]
    fn memory_fraction_is_rejected() {
        let message = memory("1.5").expect_err("1.5");
        assert!(message.contains("whole number of bytes"), "{message}");
    }

    #[test]
    fn overflow_is_rejected() {
        for text in ["16Ei", "1e20", "99999999999999999999", "1e1000000000000"] {
            assert!(
                memory(text).expect_err(text).contains("too large"),
                "{text}"
            );
        }
        assert!(cpu("1e17").expect_err("1e17").contains("too large"));
    }

    #[test]
    fn tiny_exponent_rounds_cpu_up() {
        assert_eq!(cpu("1e-1000000000000"), Ok(1));
    }

    #[test]
    fn text_is_kept() {
        let quantity = CpuQuantity::try_from("0.5".to_owned()).expect("valid");
        assert_eq!(quantity.text, "0.5");
    }

    #[test]
    fn quantity_value_reads_cluster_amounts() {
        assert_eq!(quantity_value("250000000n"), Ok(0.25));
        assert_eq!(quantity_value("500m"), Ok(0.5));
        assert_eq!(quantity_value("2"), Ok(2.0));
        assert_eq!(quantity_value("51200Ki"), Ok(51200.0 * 1024.0));
        assert_eq!(quantity_value("1e3"), Ok(1000.0));
        assert_eq!(quantity_value("0"), Ok(0.0));
        assert!(quantity_value("12 cores").is_err());
        assert!(quantity_value("1e1000000").is_err(), "beyond an f64");
    }

    #[test]
    fn decimal_quantity_table() {
        let cases: &[(f64, &str)] = &[
            (50.0, "50"),
            (0.5, "500m"),
            (1.5, "1500m"),
            (0.25, "250m"),
            (0.1, "100m"),
            (2.0005, "2000500u"),
            (0.0000005, "500n"),
            (0.0000000001, "1n"),
            (1.0000000001, "1000000001n"),
            (1e21, "1000000000000000000000"),
            (0.0, "0"),
            (-1.0, "0"),
            (f64::NAN, "0"),
        ];
        for (value, expected) in cases {
            assert_eq!(decimal_quantity(*value), *expected, "{value}");
        }
    }

    #[test]
    fn decimal_quantity_reads_back() {
        for value in [0.5, 3.75, 12.0, 0.001, 250.125] {
            let text = decimal_quantity(value);
            assert_eq!(quantity_value(&text), Ok(value), "{text}");
        }
    }
}
