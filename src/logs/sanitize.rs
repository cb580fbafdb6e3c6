//! Sanitising captured text before it reaches a terminal.
//!
//! Stored lines keep every byte an application wrote, colours included, so
//! that nothing is lost. Text shown to an operator must pass through one of
//! these functions first, so that a replica cannot move the cursor, clear the
//! screen, retitle the window, plant a hyperlink or hide text behind
//! backspaces.
//!
//! The parser knows the shapes of ECMA-48 control functions (CSI sequences,
//! control strings such as OSC and DCS, two-byte escapes, C0 and C1 controls)
//! only well enough to find where each one ends. It keeps no terminal state
//! except the SGR style in [`styled_spans`].

use std::borrow::Cow;
use std::ops::Range;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const DEL: u8 = 0x7f;

/// The first byte of every C1 control (U+0080 to U+009F) in UTF-8.
const C1_LEAD: u8 = 0xc2;

/// Resets all SGR attributes, so colours never run past the end of a line.
const SGR_RESET: &str = "\x1b[0m";

/// A run of text shown in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyledSpan {
    pub text: String,
    pub style: TextStyle,
}

/// Character attributes set by SGR sequences. Blink, conceal and strike-through
/// are left out on purpose, because a log viewer has no use for them and
/// honouring conceal would let an application hide text from the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TextStyle {
    /// Foreground colour, or `None` for the terminal's default.
    pub fg: Option<Colour>,
    /// Background colour, or `None` for the terminal's default.
    pub bg: Option<Colour>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub reverse: bool,
}

/// A colour as SGR names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colour {
    /// An entry of the terminal's 256-colour palette: 0 to 7 are the basic
    /// colours, 8 to 15 their bright forms.
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// Removes every escape sequence and control character except tab, keeping
/// the text a terminal would print.
pub fn sanitize_for_terminal(text: &str) -> String {
    visible_text(text).into_owned()
}

/// Returns the text a terminal would print (what a search should match),
/// the same as [`sanitize_for_terminal`]. Borrows `text` when it contains no
/// control character, which is the common case.
pub fn visible_text(text: &str) -> Cow<'_, str> {
    let Some(first) = first_control(text.as_bytes(), 0) else {
        return Cow::Borrowed(text);
    };

    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first]);
    for token in Tokens::starting_at(text, first) {
        if let Token::Text(run) = token {
            out.push_str(run);
        }
    }
    Cow::Owned(out)
}

/// Removes every escape sequence and control character except tab and SGR
/// sequences whose parameters are only digits, `;` and `:`. Kept SGR
/// sequences are rewritten in the 7-bit form (`ESC [`), and a reset is
/// appended after the last one so that colours end with the line.
pub fn keep_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + SGR_RESET.len());
    let mut coloured = false;
    for token in Tokens::new(text) {
        match token {
            Token::Text(run) => out.push_str(run),
            Token::Sgr(params) => {
                out.push_str("\x1b[");
                out.push_str(params);
                out.push('m');
                coloured = true;
            }
        }
    }

    if coloured {
        out.push_str(SGR_RESET);
    }
    out
}

/// Splits the visible text into runs of one style, applying SGR sequences
/// and dropping every other control. Each line starts in the default style.
pub fn styled_spans(text: &str) -> Vec<StyledSpan> {
    let mut spans: Vec<StyledSpan> = Vec::new();
    let mut style = TextStyle::default();
    for token in Tokens::new(text) {
        match token {
            Token::Text(run) => push_span(&mut spans, run, style),
            Token::Sgr(params) => style.apply_sgr(params),
        }
    }
    spans
}

fn push_span(spans: &mut Vec<StyledSpan>, run: &str, style: TextStyle) {
    match spans.last_mut() {
        Some(last) if last.style == style => last.text.push_str(run),
        _ => spans.push(StyledSpan {
            text: run.to_owned(),
            style,
        }),
    }
}

/// A piece of text that survives sanitising.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// Printable text, tabs included. Never empty.
    Text(&'a str),
    /// The parameters of an SGR sequence, between `CSI` and `m`.
    Sgr(&'a str),
}

/// Iterates over the text runs and SGR sequences of a line and skips all
/// other controls.
pub(crate) struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self::starting_at(text, 0)
    }

    /// `pos` must be a character boundary.
    fn starting_at(text: &'a str, pos: usize) -> Self {
        Self { text, pos }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() {
            let start = self.pos;
            let end = first_control(bytes, start).unwrap_or(bytes.len());
            if end > start {
                self.pos = end;
                return Some(Token::Text(&self.text[start..end]));
            }

            // Every control starts at an ASCII byte or a C1 lead byte, and
            // every sequence ends before one or at the end, so `pos` stays on
            // a character boundary.
            let (sgr, next) = parse_control(bytes, start);
            self.pos = next;
            if let Some(params) = sgr {
                return Some(Token::Sgr(&self.text[params]));
            }
        }
        None
    }
}

/// Bytes checked at once by [`first_control`] before it looks at single bytes.
const BLOCK: usize = 16;

/// Returns the index of the first control character at or after `from`.
fn first_control(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;

    // A fold without early exit over a fixed-size block compiles to vector
    // compares, so clean text is checked a block at a time.
    while i + BLOCK <= bytes.len() {
        let block = &bytes[i..i + BLOCK];
        if block.iter().fold(false, |any, &b| any | may_be_control(b)) {
            if let Some(found) = (i..i + BLOCK).find(|&j| is_control_at(bytes, j)) {
                return Some(found);
            }
        }
        i += BLOCK;
    }
    (i..bytes.len()).find(|&j| is_control_at(bytes, j))
}

/// True for every byte that starts a control, and for tab and the lead byte
/// of U+0080..U+00BF, which need a closer look.
fn may_be_control(b: u8) -> bool {
    b < 0x20 || b == DEL || b == C1_LEAD
}

fn is_control_at(bytes: &[u8], i: usize) -> bool {
    match bytes[i] {
        b'\t' => false,
        b if b < 0x20 || b == DEL => true,
        C1_LEAD => matches!(bytes.get(i + 1), Some(0x80..=0x9f)),
        _ => false,
    }
}

/// Parses the control that starts at `at` and returns the parameter range if
/// it is an SGR sequence, and the index just past it.
fn parse_control(bytes: &[u8], at: usize) -> (Option<Range<usize>>, usize) {
    match bytes[at] {
        ESC => parse_escape(bytes, at + 1),
        // `is_control_at` found a C1 continuation byte after the lead byte.
        C1_LEAD => parse_c1(bytes, bytes[at + 1], at + 2),
        _ => (None, at + 1),
    }
}

/// Parses what follows an ESC at `at`.
fn parse_escape(bytes: &[u8], at: usize) -> (Option<Range<usize>>, usize) {
    match bytes.get(at) {
        None => (None, at),
        Some(b'[') => parse_csi(bytes, at + 1),
        // OSC, DCS, SOS, PM and APC, which run until a terminator.
        Some(b']' | b'P' | b'X' | b'^' | b'_') => (None, skip_control_string(bytes, at + 1)),
        // nF escapes such as `ESC ( B` or `ESC # 8`: intermediates, then a final byte.
        Some(0x20..=0x2f) => (None, skip_nf_escape(bytes, at + 1)),
        // Two-byte escapes such as `ESC c` (full reset), `ESC 7` or `ESC \`.
        Some(0x30..=0x7e) => (None, at + 1),
        // An ESC before a control or non-ASCII character is dropped alone,
        // and what follows is read afresh.
        Some(_) => (None, at),
    }
}

/// Parses an 8-bit C1 control whose second UTF-8 byte is `code`.
fn parse_c1(bytes: &[u8], code: u8, at: usize) -> (Option<Range<usize>>, usize) {
    match code {
        0x9b => parse_csi(bytes, at),
        0x90 | 0x98 | 0x9d | 0x9e | 0x9f => (None, skip_control_string(bytes, at)),
        _ => (None, at),
    }
}

/// Parses a CSI sequence whose parameters start at `at`.
///
/// A byte outside the CSI ranges ends the sequence without being consumed,
/// so a cut-off sequence cannot swallow the text that follows. Terminals
/// execute C0 controls inside a CSI and go on. Here the sequence ends
/// instead, which shows a few more characters but never an escape.
fn parse_csi(bytes: &[u8], at: usize) -> (Option<Range<usize>>, usize) {
    let mut end = at;
    while matches!(bytes.get(end), Some(0x20..=0x3f)) {
        end += 1;
    }

    match bytes.get(end) {
        Some(b'm') if is_sgr_params(&bytes[at..end]) => (Some(at..end), end + 1),
        Some(0x40..=0x7e) => (None, end + 1),
        _ => (None, end),
    }
}

fn is_sgr_params(params: &[u8]) -> bool {
    params
        .iter()
        .all(|&b| b.is_ascii_digit() || b == b';' || b == b':')
}

/// Returns the index after the terminator of a control string (OSC, DCS,
/// SOS, PM, APC) whose content starts at `at`, or the end of the text when it
/// is unterminated. BEL ends every kind, as xterm accepts it for OSC. An ESC
/// that does not start ST ends the string and is read as a new escape.
fn skip_control_string(bytes: &[u8], at: usize) -> usize {
    let mut i = at;
    while i < bytes.len() {
        match bytes[i] {
            BEL | CAN | SUB => return i + 1,
            ESC if bytes.get(i + 1) == Some(&b'\\') => return i + 2,
            ESC => return i,
            C1_LEAD if bytes.get(i + 1) == Some(&0x9c) => return i + 2,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_nf_escape(bytes: &[u8], at: usize) -> usize {
    let mut end = at;
    while matches!(bytes.get(end), Some(0x20..=0x2f)) {
        end += 1;
    }
    match bytes.get(end) {
        Some(0x30..=0x7e) => end + 1,
        _ => end,
    }
}

impl TextStyle {
    /// Applies the parameters of one SGR sequence. Unknown and malformed
    /// parameters are ignored.
    fn apply_sgr(&mut self, params: &str) {
        // An empty parameter counts as 0, so `ESC [ m` resets.
        let mut fields = params.split(';');
        while let Some(field) = fields.next() {
            if field.contains(':') {
                self.apply_colon_field(field);
                continue;
            }
            match parse_param(field) {
                Some(38) => self.fg = extended_colour(&mut fields).or(self.fg),
                Some(48) => self.bg = extended_colour(&mut fields).or(self.bg),
                Some(code) => self.apply_code(code),
                None => {}
            }
        }
    }

    fn apply_code(&mut self, code: u16) {
        match code {
            0 => *self = Self::default(),
            1 => self.bold = true,
            2 => self.dim = true,
            3 => self.italic = true,
            4 => self.underline = true,
            7 => self.reverse = true,
            22 => (self.bold, self.dim) = (false, false),
            23 => self.italic = false,
            24 => self.underline = false,
            27 => self.reverse = false,
            30..=37 => self.fg = Some(basic_colour(code - 30)),
            39 => self.fg = None,
            40..=47 => self.bg = Some(basic_colour(code - 40)),
            49 => self.bg = None,
            90..=97 => self.fg = Some(basic_colour(code - 90 + 8)),
            100..=107 => self.bg = Some(basic_colour(code - 100 + 8)),
            _ => {}
        }
    }

    /// Applies a parameter with colon-separated sub-parameters, as in
    /// `38:2::255:0:0` (ITU T.416 colours) or `4:3` (curly underline).
    fn apply_colon_field(&mut self, field: &str) {
        let mut parts = field.split(':');
        match parts.next().and_then(parse_param) {
            Some(38) => self.fg = colon_colour(parts).or(self.fg),
            Some(48) => self.bg = colon_colour(parts).or(self.bg),
            // Any underline style counts as underlined, and `4:0` turns it off.
            Some(4) => self.underline = parts.next().and_then(parse_param) != Some(0),
            _ => {}
        }
    }
}

/// Parses one SGR parameter. An empty one means 0, and numbers too large
/// for u16 are rejected.
fn parse_param(field: &str) -> Option<u16> {
    if field.is_empty() {
        return Some(0);
    }
    field.parse().ok()
}

fn parse_byte(field: &str) -> Option<u8> {
    parse_param(field).and_then(|n| u8::try_from(n).ok())
}

/// `code` is below 16, so the cast cannot truncate.
fn basic_colour(code: u16) -> Colour {
    Colour::Indexed(code as u8)
}

/// Reads the `5;n` or `2;r;g;b` that follows 38 or 48 in the
/// semicolon form, consuming those fields even when they are invalid so that
/// they are not read as attributes.
fn extended_colour<'a>(fields: &mut impl Iterator<Item = &'a str>) -> Option<Colour> {
    match fields.next().and_then(parse_param)? {
        5 => fields.next().and_then(parse_byte).map(Colour::Indexed),
        2 => {
            let (red, green, blue) = (fields.next(), fields.next(), fields.next());
            Some(Colour::Rgb(
                red.and_then(parse_byte)?,
                green.and_then(parse_byte)?,
                blue.and_then(parse_byte)?,
            ))
        }
        _ => None,
    }
}

/// Reads the sub-parameters after `38:` or `48:`: `5:n`, `2:r:g:b`, or
/// `2:colourspace:r:g:b` as ITU T.416 writes it.
fn colon_colour<'a>(mut parts: impl Iterator<Item = &'a str>) -> Option<Colour> {
    match parts.next().and_then(parse_param)? {
        5 => parts.next().and_then(parse_byte).map(Colour::Indexed),
        2 => {
            let mut values = [""; 4];
            let mut count = 0;
            for part in parts {
                *values.get_mut(count)? = part;
                count += 1;
            }
            let [red, green, blue] = match count {
                3 => [values[0], values[1], values[2]],
                4 => [values[1], values[2], values[3]],
                _ => return None,
            };
            Some(Colour::Rgb(
                parse_byte(red)?,
                parse_byte(green)?,
                parse_byte(blue)?,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs with what `sanitize_for_terminal` must turn them into.
    const SANITIZE_CASES: &[(&str, &str, &str)] = &[
        ("plain text", "hello world", "hello world"),
        ("tab kept", "a\tb", "a\tb"),
        ("sgr 16 colours", "\x1b[31mred\x1b[0m", "red"),
        ("sgr 256 colours", "\x1b[38;5;208mo\x1b[m", "o"),
        ("sgr truecolour", "\x1b[38;2;255;0;0mx\x1b[39m", "x"),
        ("clear screen", "a\x1b[2Jb", "ab"),
        ("cursor position", "a\x1b[10;5Hb", "ab"),
        ("cursor up", "a\x1b[Ab", "ab"),
        ("private mode", "a\x1b[?25lb\x1b[?1049h", "ab"),
        ("osc title bel", "x\x1b]0;pwned\x07y", "xy"),
        ("osc title st", "x\x1b]2;pwned\x1b\\y", "xy"),
        ("osc title 8-bit st", "x\x1b]2;pwned\u{9c}y", "xy"),
        (
            "osc 8 hyperlink",
            "see \x1b]8;;http://evil.example/\x1b\\docs\x1b]8;;\x1b\\ now",
            "see docs now",
        ),
        ("unterminated osc", "x\x1b]0;title without end", "x"),
        ("osc ended by escape", "x\x1b]0;t\x1b[1my", "xy"),
        ("8-bit csi", "a\u{9b}2Jb", "ab"),
        ("8-bit osc", "a\u{9d}0;t\u{7}b", "ab"),
        ("8-bit csi sgr", "a\u{9b}31mb", "ab"),
        ("other c1", "a\u{85}b\u{84}c", "abc"),
        ("dcs", "a\x1bPq#0;2;0;0;0\x1b\\b", "ab"),
        (
            "apc pm sos",
            "a\x1b_x\x1b\\b\x1b^y\x1b\\c\x1bXz\x1b\\d",
            "abcd",
        ),
        ("lone esc at end", "abc\x1b", "abc"),
        ("esc before non-ascii", "a\x1bé", "aé"),
        ("full reset", "a\x1bcb", "ab"),
        ("charset designation", "a\x1b(Bb\x1b#8c", "abc"),
        ("nul bytes", "a\0b\0", "ab"),
        (
            "backspace",
            "secret\x08\x08\x08\x08\x08\x08public",
            "secretpublic",
        ),
        ("bell cr del", "a\x07b\rc\x7fd", "abcd"),
        ("cut-off csi", "a\x1b[12", "a"),
        ("csi cut by newline", "a\x1b[3\nb", "ab"),
        ("non-control latin-1", "© ¡ À", "© ¡ À"),
        (
            "coloured level",
            "\x1b[31mERROR\x1b[0m: boom",
            "ERROR: boom",
        ),
    ];

    #[test]
    fn sanitize_table() {
        for (name, input, expected) in SANITIZE_CASES {
            assert_eq!(sanitize_for_terminal(input), *expected, "case {name}");
        }
    }

    #[test]
    fn visible_text_matches_sanitize() {
        for (name, input, expected) in SANITIZE_CASES {
            assert_eq!(visible_text(input), *expected, "case {name}");
        }
    }

    #[test]
    fn visible_text_borrows_clean_text() {
        let long = "a clean line with a tab\tand © but no controls, long enough for blocks";
        assert!(matches!(visible_text(long), Cow::Borrowed(_)));
        assert!(matches!(visible_text(""), Cow::Borrowed(_)));
    }

    #[test]
    fn visible_text_finds_control_in_any_block() {
        for control in ['\x07', '\u{85}'] {
            for position in 0..40 {
                let mut text = "x".repeat(40);
                text.insert(position, control);
                assert_eq!(
                    visible_text(&text),
                    "x".repeat(40),
                    "{control:?} at {position}"
                );
            }
        }
    }

    #[test]
    fn keep_colours_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("plain unchanged", "hello", "hello"),
            ("sgr kept and reset", "\x1b[31mred", "\x1b[31mred\x1b[0m"),
            (
                "256 and truecolour kept",
                "\x1b[38;5;208ma\x1b[48;2;1;2;3mb",
                "\x1b[38;5;208ma\x1b[48;2;1;2;3mb\x1b[0m",
            ),
            (
                "colon form kept",
                "\x1b[38:2::1:2:3mx",
                "\x1b[38:2::1:2:3mx\x1b[0m",
            ),
            ("empty sgr kept", "\x1b[mx", "\x1b[mx\x1b[0m"),
            ("8-bit csi sgr rewritten", "\u{9b}1mx", "\x1b[1mx\x1b[0m"),
            ("cursor movement dropped", "a\x1b[2J\x1b[Hb", "ab"),
            ("private sgr dropped", "a\x1b[>4;2mb", "ab"),
            ("osc dropped", "\x1b]0;t\x07\x1b[1mx", "\x1b[1mx\x1b[0m"),
            ("controls dropped", "a\0\x08b\tc", "ab\tc"),
        ];
        for (name, input, expected) in cases {
            assert_eq!(keep_colours(input), *expected, "case {name}");
        }
    }

    fn span(text: &str, style: TextStyle) -> StyledSpan {
        StyledSpan {
            text: text.to_owned(),
            style,
        }
    }

    fn fg(colour: Colour) -> TextStyle {
        TextStyle {
            fg: Some(colour),
            ..TextStyle::default()
        }
    }

    #[test]
    fn styled_spans_basic_colours() {
        let spans = styled_spans("a\x1b[31mb\x1b[0mc\x1b[94md");
        assert_eq!(
            spans,
            vec![
                span("a", TextStyle::default()),
                span("b", fg(Colour::Indexed(1))),
                span("c", TextStyle::default()),
                span("d", fg(Colour::Indexed(12))),
            ]
        );
    }

    #[test]
    fn styled_spans_extended_colours() {
        let cases: &[(&str, TextStyle)] = &[
            ("\x1b[38;5;208mx", fg(Colour::Indexed(208))),
            ("\x1b[38;2;10;20;30mx", fg(Colour::Rgb(10, 20, 30))),
            ("\x1b[38:5:208mx", fg(Colour::Indexed(208))),
            ("\x1b[38:2:10:20:30mx", fg(Colour::Rgb(10, 20, 30))),
            ("\x1b[38:2::10:20:30mx", fg(Colour::Rgb(10, 20, 30))),
            (
                "\x1b[48;5;4mx",
                TextStyle {
                    bg: Some(Colour::Indexed(4)),
                    ..TextStyle::default()
                },
            ),
            (
                "\x1b[103mx",
                TextStyle {
                    bg: Some(Colour::Indexed(11)),
                    ..TextStyle::default()
                },
            ),
        ];
        for (input, style) in cases {
            assert_eq!(styled_spans(input), vec![span("x", *style)], "{input:?}");
        }
    }

    #[test]
    fn styled_spans_attributes_on_and_off() {
        let on = TextStyle {
            bold: true,
            dim: true,
            italic: true,
            underline: true,
            reverse: true,
            ..TextStyle::default()
        };
        let spans = styled_spans("\x1b[1;2;3;4;7ma\x1b[22;23;24;27mb");
        assert_eq!(spans, vec![span("a", on), span("b", TextStyle::default())]);
    }

    #[test]
    fn styled_spans_default_colours() {
        let spans = styled_spans("\x1b[31;42ma\x1b[39mb\x1b[49mc");
        let both = TextStyle {
            fg: Some(Colour::Indexed(1)),
            bg: Some(Colour::Indexed(2)),
            ..TextStyle::default()
        };
        let bg_only = TextStyle {
            bg: Some(Colour::Indexed(2)),
            ..TextStyle::default()
        };
        assert_eq!(
            spans,
            vec![
                span("a", both),
                span("b", bg_only),
                span("c", TextStyle::default())
            ]
        );
    }

    #[test]
    fn styled_spans_merge_same_style() {
        let spans = styled_spans("a\x1b[2Jb\x1b[0mc\x1b]0;t\x07d");
        assert_eq!(spans, vec![span("abcd", TextStyle::default())]);
    }

    #[test]
    fn styled_spans_ignore_malformed_sgr() {
        let cases = [
            "\x1b[38mx",
            "\x1b[38;5mx",
            "\x1b[38;5;300mx",
            "\x1b[38;2;1;2mx",
            "\x1b[38;9mx",
            "\x1b[99999999999mx",
            "\x1b[38:2:1mx",
            "\x1b[38:2:1:2:3:4:5mx",
            "\x1b[5;8;9mx",
        ];
        for input in cases {
            assert_eq!(
                styled_spans(input),
                vec![span("x", TextStyle::default())],
                "{input:?}"
            );
        }
    }

    #[test]
    fn styled_spans_invalid_rgb_not_read_as_attributes() {
        // 300 is out of range, and the 4 after it is the blue value, not
        // underline.
        assert_eq!(
            styled_spans("\x1b[38;2;300;1;4mx"),
            vec![span("x", TextStyle::default())]
        );
    }

    #[test]
    fn styled_spans_colon_underline() {
        let underlined = TextStyle {
            underline: true,
            ..TextStyle::default()
        };
        assert_eq!(styled_spans("\x1b[4:3mx"), vec![span("x", underlined)]);
        assert_eq!(
            styled_spans("\x1b[4m\x1b[4:0mx"),
            vec![span("x", TextStyle::default())]
        );
    }

    #[test]
    fn styled_spans_empty_input() {
        assert!(styled_spans("").is_empty());
        assert!(styled_spans("\x1b[31m\x1b[0m").is_empty());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Characters weighted towards the ones that start, fill and end
        /// escape sequences, so that random strings form real sequences.
        fn line() -> impl Strategy<Value = String> {
            let special = prop::sample::select(vec![
                '\x1b', '[', ']', 'P', '_', '\\', '\x07', '\u{9b}', '\u{9c}', '\u{9d}', ';', ':',
                '3', '8', '2', '5', 'm', 'H', '\t', '\0', '\x08', '\x7f', '\u{85}', 'é',
            ]);
            let chars = prop_oneof![3 => special, 1 => any::<char>()];
            prop::collection::vec(chars, 0..64).prop_map(String::from_iter)
        }

        fn is_forbidden(c: char) -> bool {
            (c < ' ' && c != '\t') || ('\u{7f}'..='\u{9f}').contains(&c)
        }

        /// Checks that every ESC starts `ESC [ params m` and returns the
        /// text with those sequences removed.
        fn strip_sgr(text: &str) -> String {
            let mut rest = text;
            let mut out = String::new();
            while let Some(esc) = rest.find('\x1b') {
                out.push_str(&rest[..esc]);
                let after = rest[esc + 1..]
                    .strip_prefix('[')
                    .expect("ESC not followed by [");
                let end = after.find('m').expect("SGR without final m");
                assert!(after[..end]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ';' || c == ':'));
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            out
        }

        proptest! {
            #[test]
            fn sanitized_has_no_controls(text in line()) {
                let clean = sanitize_for_terminal(&text);
                prop_assert!(!clean.chars().any(is_forbidden), "{:?} -> {:?}", text, clean);
                prop_assert_eq!(sanitize_for_terminal(&clean), clean.clone());
                prop_assert_eq!(visible_text(&text), clean);
            }

            #[test]
            fn kept_colours_are_only_sgr(text in line()) {
                let coloured = keep_colours(&text);
                let stripped = strip_sgr(&coloured);
                prop_assert!(!stripped.chars().any(is_forbidden), "{:?} -> {:?}", text, coloured);
                prop_assert_eq!(stripped, sanitize_for_terminal(&text));
            }

            #[test]
            fn spans_hold_visible_text(text in line()) {
                let joined: String = styled_spans(&text).into_iter().map(|s| s.text).collect();
                prop_assert_eq!(joined, sanitize_for_terminal(&text));
            }
        }
    }
}
