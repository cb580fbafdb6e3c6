//! Making application-supplied text safe and measurable for one terminal
//! cell row.
//!
//! Names, messages and reasons come from manifests and applications. Before
//! they reach the screen, [`clean`] drops what [`visible_text`] drops:
//! escape sequences, C0 and C1 controls. It turns tabs and line breaks into
//! spaces. It replaces bidirectional formatting characters with U+FFFD, so
//! that none of them can reorder the rest of a row, and the operator sees
//! that something was there. Widths are display widths
//! (CJK and most emoji take two cells), so columns stay aligned.

use std::borrow::Cow;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::logs::visible_text;

const ELLIPSIS: char = '…';

/// Returns `text` fit for one row: no controls, no bidi formatting.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_replacing) {
        return visible_text(text);
    }
    // Line breaks become spaces before the controls go, so that the words
    // on either side stay apart.
    let replaced: String = text
        .chars()
        .map(|character| match character {
            '\t' | '\n' | '\r' => ' ',
            character if is_bidi_control(character) => char::REPLACEMENT_CHARACTER,
            character => character,
        })
        .collect();
    Cow::Owned(visible_text(&replaced).into_owned())
}

fn needs_replacing(character: char) -> bool {
    matches!(character, '\t' | '\n' | '\r') || is_bidi_control(character)
}

/// Returns whether `character` is one of the explicit directional
/// formatting characters of Unicode's bidirectional algorithm (UAX #9):
/// embeddings, overrides, isolates and marks.
fn is_bidi_control(character: char) -> bool {
    matches!(
        character,
        '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Returns the number of terminal cells `text` takes.
pub fn width(text: &str) -> usize {
    text.width()
}

/// Cuts `text` to at most `max` cells, ending with `…` when something was
/// cut. A wide character that would straddle the limit is left out.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.width() <= max {
        return Cow::Borrowed(text);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let budget = max - 1;
    let mut used = 0;
    let mut out = String::with_capacity(max + 2);
    for character in text.chars() {
        let cells = character.width().unwrap_or(0);
        if used + cells > budget {
            break;
        }
        used += cells;
        out.push(character);
    }
    out.push(ELLIPSIS);
    Cow::Owned(out)
}

/// Breaks `text` into rows of at most `max` cells, at most `rows` of them;
/// the last row ends with `…` when text was left over. Rows break at the
/// last space that fits, or inside a word longer than a row.
pub fn wrap(text: &str, max: usize, rows: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() && out.len() < rows && max > 0 {
        if out.len() + 1 == rows || rest.width() <= max {
            out.push(truncate(rest, max).into_owned());
            break;
        }
        let (row, after) = split_row(rest, max);
        out.push(row.trim_end().to_owned());
        rest = after.trim_start();
    }
    out
}

/// Splits off the longest start of `text` that fits `max` cells, ending at
/// a space when one is in it.
fn split_row(text: &str, max: usize) -> (&str, &str) {
    let mut used = 0;
    let mut end = 0;
    let mut last_space = None;
    for (index, character) in text.char_indices() {
        let cells = character.width().unwrap_or(0);
        if used + cells > max {
            break;
        }
        used += cells;
        end = index + character.len_utf8();
        if character == ' ' {
            last_space = Some(index);
        }
    }
    let breaks_after = text[end..].starts_with(' ');
    let cut = match last_space {
        Some(space) if space > 0 && end < text.len() && !breaks_after => space,
        _ => end.max(text.chars().next().map_or(0, char::len_utf8)),
    };
    text.split_at(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_the_last_row() {
        assert_eq!(wrap("scale web to 3", 20, 3), ["scale web to 3"]);
        assert_eq!(wrap("scale web to 3", 9, 3), ["scale web", "to 3"]);
        assert_eq!(wrap("abcdefghij", 4, 3), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one two three four", 8, 2), ["one two", "three f…"]);
        assert_eq!(wrap("ウェブショップ", 6, 2), ["ウェブ", "ショ…"]);
        assert!(wrap("", 5, 2).is_empty());
        assert!(wrap("text", 0, 2).is_empty());
    }

    #[test]
    fn clean_removes_escapes_and_controls() {
        assert_eq!(clean("web\x1b[2J\x1b]0;pwned\x07-1"), "web-1");
        assert_eq!(clean("a\tb\nc"), "a b c");
        assert_eq!(clean("c1\u{9b}31mred"), "c1red");
    }

    #[test]
    fn clean_makes_bidi_visible() {
        assert_eq!(clean("abc\u{202e}fed"), "abc\u{fffd}fed");
        assert_eq!(clean("\u{2067}x\u{2069}"), "\u{fffd}x\u{fffd}");
    }

    #[test]
    fn clean_borrows_plain_text() {
        assert!(matches!(clean("web-1 ウェブ 🚀"), Cow::Borrowed(_)));
    }

    #[test]
    fn truncate_by_display_width() {
        assert_eq!(truncate("web", 5), "web");
        assert_eq!(truncate("storefront", 5), "stor…");
        assert_eq!(truncate("ウェブサイト", 5), "ウェ…");
        assert_eq!(
            truncate("ウェブサイト", 6),
            "ウェ…",
            "a wide character never straddles"
        );
        assert_eq!(truncate("🚀🚀🚀", 4), "🚀…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("abc", 1), "…");
        assert!(width(&truncate("ウェブサイト", 6)) <= 6);
    }
}
