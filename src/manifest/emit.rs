//! Writes a manifest as block-style YAML.
//!
//! The manifest is first serialized to a `serde_json::Value` (so serde's rename
//! and skip attributes apply), then written by hand. Every string is
//! double-quoted, so no value can be read back as another type: `"no"`, `"010"`
//! and `"1"` stay strings, and the parser's string fields accept quoted text.

use serde_json::{Map, Value};

use super::types::Manifest;

pub fn to_yaml(manifest: &Manifest) -> String {
    // `to_value` fails only for maps with non-string keys, and every map in
    // `Manifest` has `String` keys. A failure would write `null`, which `parse` rejects.
    let value = serde_json::to_value(manifest).unwrap_or(Value::Null);

    let mut out = String::new();
    match &value {
        Value::Object(map) if !map.is_empty() => write_mapping(map, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// Top-level keys written first, so a reader sees which deployment this is before its details.
const LEADING_KEYS: &[&str] = &["name", "version", "environment", "backend"];

fn write_mapping(map: &Map<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (key, value) in ordered_entries(map, indent == 0) {
        out.push_str(&format!("{pad}{}:", key_text(key)));
        write_value_after_key(value, indent, out);
    }
}

/// Returns the entries in key order, with [`LEADING_KEYS`] first at the top level.
fn ordered_entries(map: &Map<String, Value>, top_level: bool) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if top_level {
        let rank = |key: &str| {
            LEADING_KEYS
                .iter()
                .position(|leading| *leading == key)
                .unwrap_or(LEADING_KEYS.len())
        };
        entries.sort_by_key(|(key, _)| rank(key));
    }
    entries
}

fn write_value_after_key(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_mapping(map, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_sequence(items, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn write_sequence(items: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Value::Object(map) if !map.is_empty() => {
                // Write the mapping one level deeper, then turn its first indent into `- `.
                let mut nested = String::new();
                write_mapping(map, indent + 2, &mut nested);
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&nested[indent + 2..]);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push_str(&format!("{pad}-\n"));
                write_sequence(inner, indent + 2, out);
            }
            other => out.push_str(&format!("{pad}- {}\n", scalar(other))),
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => quote(text),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// Keys that are identifiers are written plain; anything else is quoted.
fn key_text(key: &str) -> String {
    let mut chars = key.chars();
    let identifier = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier {
        key.to_owned()
    } else {
        quote(key)
    }
}

/// Writes a YAML double-quoted scalar, escaping every character YAML does not allow unescaped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters outside YAML's printable set (C0 and C1 controls, DEL, BOM, noncharacters).
fn needs_escape(c: char) -> bool {
    let code = u32::from(c);
    code < 0x20 || (0x7F..=0x9F).contains(&code) || matches!(code, 0xFEFF | 0xFFFE | 0xFFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_specials() {
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(quote("\u{7f}"), "\"\\u007F\"");
    }

    #[test]
    fn odd_keys_are_quoted() {
        assert_eq!(key_text("GREETING"), "GREETING");
        assert_eq!(key_text("a b"), "\"a b\"");
        assert_eq!(key_text("1x"), "\"1x\"");
    }
}
