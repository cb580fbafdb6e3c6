//! Printing listings as a table, JSON or YAML.

use serde::Serialize;
use serde_json::Value;

use crate::logs::sanitize_for_terminal;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Renders `value` as pretty JSON or as YAML. Tables are built by the caller.
pub fn structured<T: Serialize>(value: &T, format: Format) -> Result<String, serde_json::Error> {
    let json = serde_json::to_value(value)?;
    let text = match format {
        Format::Yaml => {
            let mut out = String::new();
            write_yaml(&json, 0, &mut out);
            out
        }
        _ => format!("{}\n", serde_json::to_string_pretty(&json)?),
    };
    Ok(escape_controls(text))
}

/// Escapes DEL and the C1 controls (U+0080 to U+009F), which JSON strings
/// may carry as they are, but which some terminals obey (U+009B starts a
/// control sequence). They occur only inside strings, since everything else
/// in JSON is printable ASCII, and `\u00XX` means the same in JSON and in
/// double-quoted YAML.
pub fn escape_controls(text: String) -> String {
    let is_raw_control = |c: char| c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c);
    if !text.chars().any(is_raw_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_raw_control(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes YAML that any YAML 1.1 or 1.2 reader reads back to the same JSON:
/// strings are always double-quoted, so nothing is reinterpreted.
fn write_yaml(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                out.push_str(&" ".repeat(indent));
                out.push_str(&quote(key));
                out.push(':');
                write_nested(item, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&" ".repeat(indent));
                out.push('-');
                write_nested(item, indent, out);
            }
        }
        scalar => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn write_nested(item: &Value, indent: usize, out: &mut String) {
    if is_collection(item) {
        out.push('\n');
        write_yaml(item, indent + 2, out);
    } else {
        out.push(' ');
        out.push_str(&scalar_text(item));
        out.push('\n');
    }
}

fn is_collection(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => quote(text),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
    }
}

/// A JSON string literal is a valid YAML double-quoted scalar.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A plain text table with a header row; every cell is sanitised.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .iter()
                .map(|cell| sanitize_for_terminal(cell))
                .collect(),
        );
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        push_row(&mut out, &header, &widths);
        for row in &self.rows {
            push_row(&mut out, row, &widths);
        }
        out
    }
}

fn push_row(out: &mut String, cells: &[String], widths: &[usize]) {
    let last = cells.len().saturating_sub(1);
    for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
        out.push_str(cell);
        if index < last {
            let pad = width - cell.chars().count() + 2;
            out.push_str(&" ".repeat(pad));
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1_controls_are_escaped_in_json_and_yaml() {
        let value = serde_json::json!({ "message": "a\u{9b}2Jb\u{7f}" });
        for format in [Format::Json, Format::Yaml] {
            let text = structured(&value, format).unwrap();
            assert!(!text.contains('\u{9b}'), "{format:?}: {text:?}");
            assert!(text.contains("\\u009b"), "{format:?}: {text:?}");
            assert!(text.contains("\\u007f"), "{format:?}: {text:?}");
        }
        let parsed: serde_json::Value =
            serde_json::from_str(&structured(&value, Format::Json).unwrap()).unwrap();
        assert_eq!(parsed, value);
    }

    #[test]
    fn yaml_quotes_strings_that_look_like_other_types() {
        let value = serde_json::json!({"version": "010", "flag": "no", "n": 3});
        let yaml = structured(&value, Format::Yaml).unwrap();
        assert!(yaml.contains("\"version\": \"010\""), "{yaml}");
        assert!(yaml.contains("\"flag\": \"no\""), "{yaml}");
        assert!(yaml.contains("\"n\": 3"), "{yaml}");
    }

    #[test]
    fn yaml_nests_lists_of_maps() {
        let value = serde_json::json!([{"a": 1, "b": [1, 2]}]);
        let yaml = structured(&value, Format::Yaml).unwrap();
        assert_eq!(yaml, "-\n  \"a\": 1\n  \"b\":\n    - 1\n    - 2\n");
    }

    #[test]
    fn table_pads_columns() {
        let mut table = Table::new(vec!["NAME", "STATUS"]);
        table.row(vec!["web".into(), "deployed".into()]);
        assert_eq!(table.render(), "NAME  STATUS\nweb   deployed\n");
    }

    #[test]
    fn table_strips_escape_sequences() {
        let mut table = Table::new(vec!["NAME"]);
        table.row(vec!["a\u{1b}[2Jb".into()]);
        assert_eq!(table.render(), "NAME\nab\n");
    }
}
