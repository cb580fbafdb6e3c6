//! Strict readers for plain scalars used as booleans and numbers.
//!
//! YAML 1.1 parsers read `yes`/`no`/`on`/`off` as booleans, `010` as octal 8 and
//! `2122:22` as a base-60 number. YAML 1.2 does not, but users move manifests
//! between tools, so these forms are rejected with a hint instead of being read
//! either way.

/// Words that YAML 1.1 reads as booleans but that are not `true`/`false`.
const YAML11_BOOLEANS: &[&str] = &["yes", "no", "on", "off", "y", "n"];

/// Parses `true` or `false`. For any other word, the error message names the form to write instead.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "true" => return Ok(true),
        "false" => return Ok(false),
        _ => {}
    }

    let lower = text.to_ascii_lowercase();
    if lower == "true" || lower == "false" {
        return Err(format!(
            "expected true or false, found `{text}`; write {lower} in lower case"
        ));
    }
    if YAML11_BOOLEANS.contains(&lower.as_str()) {
        return Err(format!(
            "expected true or false, found `{text}`, which YAML 1.1 reads as a boolean \
             but YAML 1.2 as a string; write true or false"
        ));
    }
    Err(format!("expected true or false, found `{text}`"))
}

/// Parses a plain decimal integer with an optional sign.
pub fn parse_integer(text: &str) -> Result<i128, String> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);

    if is_base60(digits) {
        return Err(format!(
            "expected a whole number, found `{text}`, which YAML 1.1 reads as a base-60 number; \
             write a plain decimal number, or quote the value if it is text"
        ));
    }
    if is_radix_prefixed(digits) {
        return Err(format!(
            "expected a decimal whole number, found `{text}`; write the value in decimal"
        ));
    }
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("expected a whole number, found `{text}`"));
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(leading_zero_message(text, digits));
    }

    text.parse::<i128>()
        .map_err(|_| format!("`{text}` is too large for a whole number"))
}

/// Parses a finite decimal number such as `80`, `0.5`, `-1.5` or `1e3`.
pub fn parse_float(text: &str) -> Result<f64, String> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };

    if !is_decimal_mantissa(mantissa) || !exponent.is_none_or(is_signed_digits) {
        return Err(format!(
            "expected a number such as 80 or 0.5, found `{text}`"
        ));
    }
    let integer_part = mantissa.split('.').next().unwrap_or_default();
    if integer_part.len() > 1 && integer_part.starts_with('0') {
        return Err(leading_zero_message(text, integer_part));
    }

    text.parse::<f64>()
        .map_err(|_| format!("expected a number such as 80 or 0.5, found `{text}`"))
}

fn leading_zero_message(text: &str, digits: &str) -> String {
    let trimmed = digits.trim_start_matches('0');
    let suggestion = if trimmed.is_empty() { "0" } else { trimmed };
    format!(
        "`{text}` has a leading zero, which YAML 1.1 reads as an octal number; \
         write {suggestion} without the leading zero, or quote the value if it is text"
    )
}

fn is_base60(text: &str) -> bool {
    text.contains(':')
        && text
            .split(':')
            .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
}

fn is_radix_prefixed(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["0x", "0o", "0b"]
        .iter()
        .any(|prefix| lower.len() > 2 && lower.starts_with(prefix))
}

fn is_decimal_mantissa(text: &str) -> bool {
    let mut parts = text.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next().unwrap_or_default();
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    (!whole.is_empty() || !fraction.is_empty()) && all_digits(whole) && all_digits(fraction)
}

fn is_signed_digits(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_accepts_true_and_false() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
    }

    #[test]
    fn bool_rejects_yaml11_words() {
        for word in ["yes", "no", "on", "off", "Yes", "OFF", "y", "n"] {
            let message = parse_bool(word).expect_err(word);
            assert!(message.contains("write true or false"), "{word}: {message}");
        }
    }

    #[test]
    fn bool_rejects_capitalised_true() {
        assert!(parse_bool("True").expect_err("True").contains("lower case"));
    }

    #[test]
    fn integer_accepts_decimal() {
        assert_eq!(parse_integer("0"), Ok(0));
        assert_eq!(parse_integer("8080"), Ok(8080));
        assert_eq!(parse_integer("-1"), Ok(-1));
        assert_eq!(parse_integer("+3"), Ok(3));
    }

    #[test]
    fn integer_rejects_leading_zero() {
        let message = parse_integer("010").expect_err("010");
        assert!(message.contains("write 10"), "{message}");
    }

    #[test]
    fn integer_rejects_base60() {
        let message = parse_integer("2122:22").expect_err("2122:22");
        assert!(message.contains("base-60"), "{message}");
    }

    #[test]
    fn integer_rejects_hex_and_octal() {
        assert!(parse_integer("0x1F").is_err());
        assert!(parse_integer("0o17").is_err());
    }

    #[test]
    fn integer_rejects_fraction_and_words() {
        assert!(parse_integer("1.5").is_err());
        assert!(parse_integer("three").is_err());
        assert!(parse_integer("").is_err());
        assert!(parse_integer("-").is_err());
    }

    #[test]
    fn float_accepts_decimal_forms() {
        assert_eq!(parse_float("80"), Ok(80.0));
        assert_eq!(parse_float("0.5"), Ok(0.5));
        assert_eq!(parse_float("-1.5"), Ok(-1.5));
        assert_eq!(parse_float("1e3"), Ok(1000.0));
        assert_eq!(parse_float(".5"), Ok(0.5));
    }

    #[test]
    fn float_rejects_special_values() {
        for text in [".inf", ".nan", "inf", "NaN", "1.2.3", "", "e3", "1e"] {
            assert!(parse_float(text).is_err(), "{text}");
        }
    }

    #[test]
    fn float_rejects_leading_zero() {
        assert!(parse_float("08.5").is_err());
    }
}
