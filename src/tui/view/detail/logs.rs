//! The logs tab: a status line over the lines of the window, each with its
//! time, replica and level, and the search's matches highlighted.
//!
//! A frame touches only the lines on screen, and of each line only the
//! part that fits, so a 200,000-character line or a window of thousands
//! costs no more to draw than a short one. The texts were sanitised when
//! they arrived (see [`LogLine`]).

use std::ops::Range;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use time::OffsetDateTime;
use unicode_width::UnicodeWidthChar;

use super::muted;
use crate::logs::Level;
use crate::tui::app::{
    replica_index, App, DetailState, Layer, LogLine, LogsInput, LogsInputPurpose, LogsState,
    Search, LEVEL_WIDTH,
};
use crate::tui::sanitize::{clean, truncate, width};
use crate::tui::theme::Theme;

pub(super) fn draw(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    app: &App,
    theme: &Theme,
    detail: &DetailState,
) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let logs = &detail.logs;
    let status_area = Rect { height: 1, ..inner };
    let status = match app.layers.last() {
        Some(Layer::LogsInput(input)) => input_line(input, logs, theme),
        _ => status_line(logs, theme),
    };
    let status_width = usize::from(inner.width);
    frame.render_widget(Paragraph::new(fit(status, status_width)), status_area);

    let lines_area = Rect {
        y: inner.y + 1,
        height: inner.height - 1,
        ..inner
    };
    let zone = (!logs.settings.utc)
        .then_some(app.local_zone.as_deref())
        .flatten();
    let rows = body(
        logs,
        theme,
        zone,
        usize::from(lines_area.height),
        usize::from(lines_area.width),
    );
    frame.render_widget(Paragraph::new(rows), lines_area);
}

/// Builds the rows of the lines area: the lines from the window's top as far
/// as they fit, or a note when there is none.
fn body<'a>(
    logs: &'a LogsState,
    theme: &Theme,
    zone: Option<&tz::TimeZone>,
    rows: usize,
    columns: usize,
) -> Vec<Line<'a>> {
    let window = &logs.window;
    if window.is_empty() {
        let note = if logs.loading {
            "loading the logs…"
        } else if logs.filtering() {
            "no line matches the filter"
        } else {
            "no line logged yet"
        };
        return vec![muted(note, theme)];
    }
    let layout = RowLayout {
        columns,
        prefix: logs.prefix_width(),
        source_width: window.source_width,
        timestamps: logs.settings.timestamps,
        wrap: logs.settings.wrap,
        zone,
    };
    let search = logs.search.as_ref().filter(|search| search.is_valid());
    let mut out = Vec::with_capacity(rows);
    for index in window.top..window.len() {
        if out.len() >= rows {
            break;
        }
        let selected = index == window.selected;
        let line = &window.lines[index];
        let skip = if index == window.top {
            window.top_skip
        } else {
            0
        };
        let shown = layout.rows(line, search, selected, skip + rows - out.len(), theme);
        out.extend(shown.into_iter().skip(skip));
    }
    out
}

/// The layout of the lines on this frame.
struct RowLayout<'a> {
    columns: usize,
    prefix: usize,
    source_width: usize,
    timestamps: bool,
    wrap: bool,
    zone: Option<&'a tz::TimeZone>,
}

impl RowLayout<'_> {
    /// Builds the screen rows of one log line, at most `max_rows`.
    fn rows<'a>(
        &self,
        line: &'a LogLine,
        search: Option<&Search>,
        selected: bool,
        max_rows: usize,
        theme: &Theme,
    ) -> Vec<Line<'a>> {
        let over = |style: Style| {
            if selected {
                style.patch(theme.selection)
            } else {
                style
            }
        };
        let text_style = over(if line.context {
            theme.muted
        } else {
            theme.text
        });
        let highlight = theme.highlight;
        let mut first = self.prefix_spans(line, theme, &over);

        let matches = search
            .map(|search| search.find(&line.text))
            .unwrap_or_default();
        let first_width = self.columns.saturating_sub(self.prefix);
        let (first_width, next_width, indent) = if first_width >= 10 || !self.wrap {
            (first_width, first_width, self.prefix)
        } else {
            (first_width, self.columns, 0)
        };
        let max_rows = if self.wrap { max_rows.max(1) } else { 1 };
        let cut = cut_rows(&line.text, &matches, first_width, next_width, max_rows);
        let mut rows = Vec::with_capacity(cut.rows.len());
        for (row, pieces) in cut.rows.into_iter().enumerate() {
            let mut spans = if row == 0 {
                std::mem::take(&mut first)
            } else {
                vec![Span::styled(" ".repeat(indent), text_style)]
            };
            for piece in pieces {
                let style = if piece.highlight {
                    highlight
                } else {
                    text_style
                };
                spans.push(Span::styled(&line.text[piece.bytes], style));
            }
            rows.push(Line::from(spans));
        }
        if cut.truncated && !self.wrap {
            if let Some(row) = rows.last_mut() {
                mark_cut(row, self.columns, text_style);
            }
        }
        if selected {
            for row in &mut rows {
                pad(row, self.columns, theme.selection);
            }
        }
        rows
    }

    /// Builds the time, source and level columns.
    fn prefix_spans<'a>(
        &self,
        line: &LogLine,
        theme: &Theme,
        over: &impl Fn(Style) -> Style,
    ) -> Vec<Span<'a>> {
        let mut spans = Vec::with_capacity(4);
        if self.timestamps {
            spans.push(Span::styled(
                format!("{} ", format_time(line.time, self.zone)),
                over(theme.muted),
            ));
        }
        let source = truncate(&line.source, self.source_width);
        let pad = self.source_width.saturating_sub(width(&source));
        let colour = replica_index(&line.source).map_or(theme.text, |index| {
            theme.replica(usize::try_from(index).unwrap_or(0))
        });
        spans.push(Span::styled(
            format!("{source}{} ", " ".repeat(pad)),
            over(colour),
        ));
        spans.push(Span::styled(
            format!("{:<LEVEL_WIDTH$} ", level_name(line.level)),
            over(level_style(line.level, theme)),
        ));
        spans
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "TRACE",
        Level::Debug => "DEBUG",
        Level::Info => "INFO",
        Level::Warn => "WARN",
        Level::Error => "ERROR",
        Level::Fatal => "FATAL",
    }
}

fn level_style(level: Level, theme: &Theme) -> Style {
    match level {
        Level::Trace | Level::Debug => theme.muted,
        Level::Info => theme.text,
        Level::Warn => theme.warning,
        Level::Error | Level::Fatal => theme.error,
    }
}

/// Formats a time as `03-01 12:00:00.123`, in `zone` or else in UTC.
pub fn format_time(time: OffsetDateTime, zone: Option<&tz::TimeZone>) -> String {
    let offset = zone
        .and_then(|zone| zone.find_local_time_type(time.unix_timestamp()).ok())
        .and_then(|local| time::UtcOffset::from_whole_seconds(local.ut_offset()).ok())
        .unwrap_or(time::UtcOffset::UTC);
    let shown = time.to_offset(offset);
    format!(
        "{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        u8::from(shown.month()),
        shown.day(),
        shown.hour(),
        shown.minute(),
        shown.second(),
        shown.millisecond()
    )
}

/// A run of one row's text, highlighted or not.
struct Piece {
    bytes: Range<usize>,
    highlight: bool,
}

/// A line's text cut into rows.
struct Cut {
    rows: Vec<Vec<Piece>>,
    /// Text was left out after the last row.
    truncated: bool,
}

/// Cuts `text` into rows of `first_width` then `next_width` cells, at most
/// `max_rows`, splitting runs where a match in `matches` starts or ends.
/// A wide character that does not fit at the end of a row starts the next.
fn cut_rows(
    text: &str,
    matches: &[Range<usize>],
    first_width: usize,
    next_width: usize,
    max_rows: usize,
) -> Cut {
    let mut rows: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut used = 0;
    let mut limit = first_width;
    let mut next_match = 0;
    for (at, character) in text.char_indices() {
        let cells = character.width().unwrap_or(0);
        if used + cells > limit {
            if rows.len() >= max_rows || next_width == 0 {
                return Cut {
                    rows,
                    truncated: true,
                };
            }
            rows.push(Vec::new());
            used = 0;
            limit = next_width;
        }
        while next_match < matches.len() && matches[next_match].end <= at {
            next_match += 1;
        }
        let highlight = matches
            .get(next_match)
            .is_some_and(|found| found.start <= at && at < found.end);
        let end = at + character.len_utf8();
        let Some(row) = rows.last_mut() else {
            break;
        };
        match row.last_mut() {
            Some(piece) if piece.highlight == highlight && piece.bytes.end == at => {
                piece.bytes.end = end;
            }
            _ => row.push(Piece {
                bytes: at..end,
                highlight,
            }),
        }
        used += cells;
    }
    Cut {
        rows,
        truncated: false,
    }
}

/// Replaces the last cell of a full row with `…`, to show the line goes on.
fn mark_cut(row: &mut Line<'_>, columns: usize, style: Style) {
    let mut cells = row.width();
    while cells >= columns {
        let Some(span) = row.spans.last_mut() else {
            return;
        };
        let mut text = span.content.to_string();
        let Some(character) = text.pop() else {
            row.spans.pop();
            continue;
        };
        cells -= character.width().unwrap_or(0);
        span.content = text.into();
    }
    row.spans.push(Span::styled("…", style));
}

/// Pads a row with spaces in `style` to `columns`, so that the selection
/// bar spans the row.
fn pad(row: &mut Line<'_>, columns: usize, style: Style) {
    let missing = columns.saturating_sub(row.width());
    if missing > 0 {
        row.spans.push(Span::styled(" ".repeat(missing), style));
    }
}

/// Cuts a status or input line to `columns` cells.
fn fit(line: Line<'_>, columns: usize) -> Line<'_> {
    if line.width() <= columns {
        return line;
    }
    let mut kept = Vec::new();
    let mut used = 0;
    for span in line.spans {
        let cells = span.width();
        if used + cells <= columns {
            used += cells;
            kept.push(span);
            continue;
        }
        let room = columns - used;
        let cut = truncate(&span.content, room).into_owned();
        kept.push(Span::styled(cut, span.style));
        break;
    }
    Line::from(kept)
}

/// Builds the status line: follow state, notices, the search, the filter and the
/// settings.
fn status_line<'a>(logs: &LogsState, theme: &Theme) -> Line<'a> {
    let settings = &logs.settings;
    let mut spans = Vec::new();
    if logs.following {
        spans.push(Span::styled("● following", theme.ok));
    } else {
        spans.push(Span::styled("‖ paused", theme.warning));
        if logs.unseen > 0 {
            spans.push(Span::styled(
                format!(" +{} new", logs.unseen),
                theme.warning,
            ));
        }
    }
    let separator = |spans: &mut Vec<Span<'a>>| spans.push(Span::styled(" · ", theme.muted));
    if let Some(error) = &logs.error {
        separator(&mut spans);
        spans.push(Span::styled(clean(error).into_owned(), theme.error));
    }
    if let Some(search) = &logs.search {
        separator(&mut spans);
        spans.extend(search_spans(search, theme));
    }
    if logs.filtering() {
        separator(&mut spans);
        let name = if settings.invert {
            "inverse filter"
        } else {
            "filter"
        };
        spans.push(Span::styled(
            format!("{name} ±{}", settings.context),
            theme.accent,
        ));
    }
    if let Some(notice) = &logs.notice {
        separator(&mut spans);
        spans.push(Span::styled(notice.clone(), theme.warning));
    }
    if let Some(path) = &logs.saving {
        separator(&mut spans);
        let text = format!("saving to {}…", clean(&path.display().to_string()));
        spans.push(Span::styled(text, theme.muted));
    }
    separator(&mut spans);
    let replica = settings.replica.map_or_else(
        || "all replicas".to_owned(),
        |index| format!("replica {index}"),
    );
    let mut settings_text = replica;
    if settings.min_level > Level::Trace {
        settings_text.push_str(&format!(" · ≥{}", settings.min_level));
    }
    if settings.wrap {
        settings_text.push_str(" · wrap");
    }
    if settings.timestamps {
        settings_text.push_str(if settings.utc { " · UTC" } else { " · local" });
    }
    if logs.missed > 0 {
        settings_text.push_str(&format!(" · {} skipped", logs.missed));
    }
    spans.push(Span::styled(settings_text, theme.muted));
    Line::from(spans)
}

/// Shows the search as `/text/` with its kind, or its error.
fn search_spans<'a>(search: &Search, theme: &Theme) -> Vec<Span<'a>> {
    let text = clean(&search.text).into_owned();
    let kind = if search.regex { " regex" } else { "" };
    let mut spans = vec![Span::styled(format!("/{text}/{kind}"), theme.accent)];
    if let Some(error) = search.error() {
        spans.push(Span::styled(format!(" {error}"), theme.error));
    }
    spans
}

/// Builds the line being typed, with its error or hint.
fn input_line<'a>(input: &LogsInput, logs: &LogsState, theme: &Theme) -> Line<'a> {
    let label = match input.purpose {
        LogsInputPurpose::Search if logs.settings.regex => "regex /",
        LogsInputPurpose::Search => "/",
        LogsInputPurpose::Save => "save the lines shown to: ",
    };
    let mut spans = vec![
        Span::styled(label, theme.accent),
        Span::styled(clean(&input.text).into_owned(), theme.text),
        Span::styled("▏", theme.accent),
    ];
    let error = match input.purpose {
        LogsInputPurpose::Search => logs
            .search
            .as_ref()
            .and_then(Search::error)
            .map(str::to_owned),
        LogsInputPurpose::Save => input.error.clone(),
    };
    match error {
        Some(error) => spans.push(Span::styled(format!("  {error}"), theme.error)),
        None => spans.push(Span::styled("  enter keep · esc cancel", theme.muted)),
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str, cut: &Cut) -> Vec<String> {
        cut.rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|piece| {
                        let part = &text[piece.bytes.clone()];
                        if piece.highlight {
                            format!("[{part}]")
                        } else {
                            part.to_owned()
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn cut_rows_splits_by_width_and_matches() {
        let text = "abc timeout def timeout";
        let cut = cut_rows(text, &[4..11, 16..23], 10, 10, 5);
        assert_eq!(
            texts(text, &cut),
            ["abc [timeou]", "[t] def [time]", "[out]"]
        );
        assert!(!cut.truncated);
    }

    #[test]
    fn wide_characters_move_to_the_next_row() {
        let text = "ab🚀ウェブ";
        let cut = cut_rows(text, &[], 3, 3, 5);
        assert_eq!(texts(text, &cut), ["ab", "🚀", "ウ", "ェ", "ブ"]);
    }

    #[test]
    fn long_line_stops_after_max_rows() {
        let text = "x".repeat(200_000);
        let cut = cut_rows(&text, &[], 80, 80, 2);
        assert_eq!(cut.rows.len(), 2);
        assert!(cut.truncated);
    }

    #[test]
    fn local_time_uses_the_zone_offset() {
        let time = time::macros::datetime!(2025-03-01 12:00:00.250 UTC);
        assert_eq!(format_time(time, None), "03-01 12:00:00.250");
        let zone = tz::TimeZone::fixed(-5 * 3600).unwrap();
        assert_eq!(format_time(time, Some(&zone)), "03-01 07:00:00.250");
        // Each time takes the offset in force then: summer time in July.
        let berlin = tz::TimeZone::from_posix_tz("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(format_time(time, Some(&berlin)), "03-01 13:00:00.250");
        let july = time::macros::datetime!(2025-07-01 12:00:00 UTC);
        assert_eq!(format_time(july, Some(&berlin)), "07-01 14:00:00.000");
    }
}
