//! A small YAML node tree with source positions, built from `saphyr-parser` events.
//!
//! The typed manifest is read from this tree instead of from a generic YAML value.
//! That way every scalar keeps the exact text the user wrote, and the target
//! type decides how to read it. Every node also keeps its line and column.
//! Anchors, aliases and tags are rejected: a deployment manifest has no need for
//! them, and rejecting them rules out alias expansion bombs.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

use super::de::child_path;

/// Source of a node: a position in the manifest text or a `--set` override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// 1-based line and column in the manifest text.
    Text { line: usize, column: usize },
    /// The full `KEY=VALUE` text of the override and the 1-based column of its value.
    Override { text: String, column: usize },
}

impl Site {
    fn from_span(span: &Span) -> Site {
        Site::Text {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// How a scalar was written, which decides how strictly it is read as a bool or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub site: Site,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { text: String, style: Style },
    Sequence(Vec<Node>),
    Mapping(Vec<Entry>),
}

/// One `key: value` pair; keys are always scalars.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_site: Site,
    pub value: Node,
}

/// A YAML syntax or structure problem, before any field is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Field path of the innermost node being read, empty at the top level.
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl SyntaxError {
    /// Sets the field path unless a deeper node already set it.
    fn at_path(mut self, path: &str) -> Self {
        if self.path.is_empty() {
            self.path = path.to_owned();
        }
        self
    }
}

/// Maximum nesting of mappings and lists.
///
/// A manifest needs fewer than ten levels, and the limit keeps deeply nested
/// input from overflowing the stack of the recursive reader.
const MAX_DEPTH: usize = 64;

impl Node {
    pub fn scalar(text: &str, site: Site) -> Node {
        Node {
            value: Value::Scalar {
                text: text.to_owned(),
                style: Style::Plain,
            },
            site,
        }
    }

    /// Returns true for a plain scalar that YAML 1.2 reads as null (`~`, `null` or nothing).
    pub fn is_null(&self) -> bool {
        match &self.value {
            Value::Scalar {
                text,
                style: Style::Plain,
            } => matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"),
            _ => false,
        }
    }

    /// Describes the node for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Scalar { text, .. } if text.is_empty() => "an empty value".to_owned(),
            Value::Scalar { text, .. } => format!("`{text}`"),
            Value::Sequence(_) => "a list".to_owned(),
            Value::Mapping(_) => "a mapping".to_owned(),
        }
    }
}

/// Parses `text` into the tree of its single document.
pub fn parse_document(text: &str) -> Result<Node, SyntaxError> {
    let mut reader = EventReader {
        parser: Parser::new_from_str(text),
        text,
    };

    reader.expect_stream_start()?;
    let root = reader.read_document()?;
    reader.expect_stream_end()?;

    if !matches!(root.value, Value::Mapping(_)) {
        return Err(error_at(
            &root.site,
            format!(
                "expected a mapping of manifest fields at the top level, found {}",
                root.describe()
            ),
        ));
    }
    Ok(root)
}

struct EventReader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    text: &'a str,
}

impl<'a> EventReader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => Err(scan_error(self.text, &error)),
            None => Err(SyntaxError {
                path: String::new(),
                line: 1,
                column: 1,
                message: "unexpected end of the YAML event stream".to_owned(),
            }),
        }
    }

    fn expect_stream_start(&mut self) -> Result<(), SyntaxError> {
        let (event, span) = self.next()?;
        match event {
            Event::StreamStart => Ok(()),
            other => Err(unexpected(&other, &span)),
        }
    }

    fn read_document(&mut self) -> Result<Node, SyntaxError> {
        let (event, span) = self.next()?;
        match event {
            Event::DocumentStart(_) => {}
            Event::StreamEnd => {
                return Err(error_at(
                    &Site::from_span(&span),
                    "the manifest is empty; write at least `name: <deployment name>`".to_owned(),
                ))
            }
            other => return Err(unexpected(&other, &span)),
        }

        let (event, span) = self.next()?;
        let root = self.read_node(event, span, "", 0)?;

        let (event, span) = self.next()?;
        match event {
            Event::DocumentEnd => Ok(root),
            other => Err(unexpected(&other, &span)),
        }
    }

    fn expect_stream_end(&mut self) -> Result<(), SyntaxError> {
        let (event, span) = self.next()?;
        match event {
            Event::StreamEnd => Ok(()),
            Event::DocumentStart(_) => Err(error_at(
                &Site::from_span(&span),
                "found a second YAML document; a manifest file describes one deployment, \
                 so put each deployment in its own file"
                    .to_owned(),
            )),
            other => Err(unexpected(&other, &span)),
        }
    }

    fn read_node(
        &mut self,
        event: Event<'a>,
        span: Span,
        path: &str,
        depth: usize,
    ) -> Result<Node, SyntaxError> {
        let site = Site::from_span(&span);
        if depth > MAX_DEPTH {
            return Err(error_at(
                &site,
                format!("mappings and lists are nested more than {MAX_DEPTH} levels deep; flatten the document"),
            )
            .at_path(path));
        }
        self.read_node_at_depth(event, span, path, depth)
            .map_err(|error| error.at_path(path))
    }

    fn read_node_at_depth(
        &mut self,
        event: Event<'a>,
        span: Span,
        path: &str,
        depth: usize,
    ) -> Result<Node, SyntaxError> {
        let site = Site::from_span(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                reject_anchor_and_tag(anchor, tag.is_some(), &site)?;
                let value = Value::Scalar {
                    text: text.into_owned(),
                    style: style_of(style),
                };
                Ok(Node { value, site })
            }
            Event::SequenceStart(anchor, tag) => {
                reject_anchor_and_tag(anchor, tag.is_some(), &site)?;
                let items = self.read_sequence(path, depth)?;
                Ok(Node {
                    value: Value::Sequence(items),
                    site,
                })
            }
            Event::MappingStart(anchor, tag) => {
                reject_anchor_and_tag(anchor, tag.is_some(), &site)?;
                let entries = self.read_mapping(path, depth)?;
                Ok(Node {
                    value: Value::Mapping(entries),
                    site,
                })
            }
            Event::Alias(_) => Err(error_at(
                &site,
                "aliases (`*name`) are not supported in manifests; write the value out in full"
                    .to_owned(),
            )),
            other => Err(unexpected(&other, &span)),
        }
    }

    fn read_sequence(&mut self, path: &str, depth: usize) -> Result<Vec<Node>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                return Ok(items);
            }
            let item_path = format!("{path}[{}]", items.len());
            items.push(self.read_node(event, span, &item_path, depth + 1)?);
        }
    }

    fn read_mapping(&mut self, path: &str, depth: usize) -> Result<Vec<Entry>, SyntaxError> {
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                return Ok(entries);
            }

            let key_node = self.read_node(event, span, path, depth + 1)?;
            let (key, key_site) = key_text(key_node)?;
            let value_path = child_path(path, &key);
            reject_duplicate(&entries, &key, &key_site)
                .map_err(|error| error.at_path(&value_path))?;

            let (event, span) = self.next().map_err(|error| error.at_path(&value_path))?;
            let value = self.read_node(event, span, &value_path, depth + 1)?;
            entries.push(Entry {
                key,
                key_site,
                value,
            });
        }
    }
}

fn key_text(node: Node) -> Result<(String, Site), SyntaxError> {
    match node.value {
        Value::Scalar { text, .. } => Ok((text, node.site)),
        _ => Err(error_at(
            &node.site,
            format!("mapping keys must be plain text, found {}", node.describe()),
        )),
    }
}

fn reject_duplicate(entries: &[Entry], key: &str, site: &Site) -> Result<(), SyntaxError> {
    let Some(first) = entries.iter().find(|entry| entry.key == key) else {
        return Ok(());
    };
    let first_line = match first.key_site {
        Site::Text { line, .. } => line,
        Site::Override { .. } => 0,
    };
    let this_line = match site {
        Site::Text { line, .. } => *line,
        Site::Override { .. } => 0,
    };
    Err(error_at(
        site,
        format!(
            "duplicate key `{key}` on line {this_line}; it is already set on line {first_line}, \
             so remove one of them"
        ),
    ))
}

fn reject_anchor_and_tag(anchor: usize, has_tag: bool, site: &Site) -> Result<(), SyntaxError> {
    if anchor != 0 {
        return Err(error_at(
            site,
            "anchors (`&name`) are not supported in manifests; write the value out in full"
                .to_owned(),
        ));
    }
    if has_tag {
        return Err(error_at(
            site,
            "YAML tags such as `!!str` are not supported in manifests; \
             quote the value to make it a string"
                .to_owned(),
        ));
    }
    Ok(())
}

fn style_of(style: ScalarStyle) -> Style {
    match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
        ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
    }
}

fn error_at(site: &Site, message: String) -> SyntaxError {
    let (line, column) = match site {
        Site::Text { line, column } => (*line, *column),
        Site::Override { column, .. } => (1, *column),
    };
    SyntaxError {
        path: String::new(),
        line,
        column,
        message,
    }
}

fn unexpected(event: &Event<'_>, span: &Span) -> SyntaxError {
    error_at(
        &Site::from_span(span),
        format!("unexpected YAML event {event:?}"),
    )
}

/// Converts a parser error, reporting a tab in indentation as such.
///
/// The parser reports tabs with several messages, and sometimes at a position
/// before the tab, such as the end of the previous line. So the lines up to one
/// past the error are searched for a tab in their leading whitespace.
fn scan_error(text: &str, error: &ScanError) -> SyntaxError {
    let marker = error.marker();
    if let Some((line, column)) = find_indent_tab(text, marker.line() + 1) {
        return SyntaxError {
            path: String::new(),
            line,
            column,
            message: "tab character used for indentation; YAML does not allow tabs there, \
                      so indent with spaces"
                .to_owned(),
        };
    }
    SyntaxError {
        path: String::new(),
        line: marker.line(),
        column: marker.col() + 1,
        message: format!("invalid YAML: {}", error.info()),
    }
}

/// Returns the 1-based line and column of the first tab in the indentation of a line up to `last_line`.
fn find_indent_tab(text: &str, last_line: usize) -> Option<(usize, usize)> {
    for (index, line) in text.lines().take(last_line).enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(offset) = line[..indent].find('\t') {
            return Some((index + 1, offset + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> SyntaxError {
        parse_document(text).expect_err("expected a syntax error")
    }

    #[test]
    fn scalar_keeps_text_and_position() {
        let root = parse_document("a: 1\nb:\n  c: 010\n").expect("valid YAML");
        let Value::Mapping(entries) = root.value else {
            panic!("root is not a mapping")
        };
        let Value::Mapping(inner) = &entries[1].value.value else {
            panic!("b is not a mapping")
        };
        assert_eq!(inner[0].value.site, Site::Text { line: 3, column: 6 });
        assert_eq!(
            inner[0].value.value,
            Value::Scalar {
                text: "010".to_owned(),
                style: Style::Plain
            }
        );
    }

    #[test]
    fn duplicate_key_names_both_lines() {
        let error = parse_error("name: a\nreplicas: 1\nname: b\n");
        assert_eq!((error.line, error.column), (3, 1));
        assert!(error.message.contains("line 3"), "{}", error.message);
        assert!(error.message.contains("line 1"), "{}", error.message);
    }

    #[test]
    fn tab_indentation_is_located() {
        let error = parse_error("a:\n\tb: 1\n");
        assert_eq!((error.line, error.column), (2, 1));
        assert!(error.message.contains("indent with spaces"));
    }

    #[test]
    fn tab_after_spaces_is_located() {
        let error = parse_error("a: 1\n  \tb: 1\n");
        assert_eq!((error.line, error.column), (2, 3));
    }

    #[test]
    fn tab_inside_value_is_allowed() {
        assert!(parse_document("a: b\tc\n").is_ok());
    }

    #[test]
    fn second_document_is_rejected() {
        let error = parse_error("a: 1\n---\nb: 2\n");
        assert_eq!(error.line, 2);
        assert!(error.message.contains("second YAML document"));
    }

    #[test]
    fn empty_text_is_rejected() {
        assert!(parse_error("").message.contains("empty"));
    }

    #[test]
    fn comment_only_text_is_rejected() {
        assert!(parse_error("# nothing\n").message.contains("empty"));
    }

    #[test]
    fn alias_is_rejected() {
        let error = parse_error("a: 1\nb: *x\n");
        assert!(error.message.contains("alias") || error.message.contains("invalid YAML"));
    }

    #[test]
    fn anchor_is_rejected() {
        let error = parse_error("a: &x 1\nb: *x\n");
        assert_eq!((error.line, error.column), (1, 4));
        assert!(error.message.contains("anchors"));
    }

    #[test]
    fn tag_is_rejected() {
        assert!(parse_error("a: !!str 010\n").message.contains("tags"));
    }

    #[test]
    fn scalar_root_is_rejected() {
        assert!(parse_error("hello\n").message.contains("top level"));
    }

    #[test]
    fn duplicate_key_has_path() {
        let error = parse_error("a:\n  b: 1\n  b: 2\n");
        assert_eq!(error.path, "a.b");
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let text = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert!(parse_error(&text).message.contains("nested"));
    }

    #[test]
    fn explicit_document_end_is_accepted() {
        assert!(parse_document("---\na: 1\n...\n").is_ok());
    }
}
