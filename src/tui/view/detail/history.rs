//! The history tab: the revisions over the diff between the marked and the
//! selected one.

use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use similar::ChangeTag;

use super::{cells, format_time, muted, TIME_WIDTH};
use crate::model::{HistoryEntry, RevisionStatus};
use crate::tui::action::KeyPress;
use crate::tui::app::DetailState;
use crate::tui::layout::DetailAreas;
use crate::tui::sanitize::clean;
use crate::tui::theme::Theme;

/// Draws the tab; `mark_key` is the key bound to marking, for the hint.
pub(super) fn draw(
    frame: &mut Frame,
    areas: &DetailAreas,
    theme: &Theme,
    detail: &DetailState,
    mark_key: Option<KeyPress>,
) {
    let (list_area, diff_area) = areas.history();
    let mut list_block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.accent)
        .title(Span::styled(" revisions ", theme.title));
    if let Some(error) = &detail.error {
        let text = format!(" {} ", clean(error));
        list_block = list_block.title_bottom(Span::styled(text, theme.error));
    }
    let inner = list_block.inner(list_area);
    frame.render_widget(list_block, list_area);
    frame.render_widget(
        Paragraph::new(list_lines(detail, theme, areas.history_rows())),
        inner,
    );

    let diff_block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(diff_title(detail), theme.title));
    let inner = diff_block.inner(diff_area);
    frame.render_widget(diff_block, diff_area);
    let rows = areas.diff_rows();
    let lines = diff_lines(detail, theme, rows, mark_key);
    frame.render_widget(Paragraph::new(lines), inner);
}

fn list_lines<'a>(detail: &DetailState, theme: &Theme, page: usize) -> Vec<Line<'a>> {
    let mut lines = vec![cells(
        &[
            ("  rev", 6),
            ("status", 10),
            ("version", 12),
            ("time", TIME_WIDTH),
            ("reason", 0),
        ],
        theme.muted,
    )];
    let Some(history) = &detail.history else {
        lines.push(muted("loading the history…", theme));
        return lines;
    };
    if history.is_empty() {
        lines.push(muted("no revision recorded", theme));
        return lines;
    }
    let cursor = detail.history_cursor;
    for index in cursor.visible(history.len(), page) {
        let entry = &history[index];
        let mut line = entry_line(entry, detail.marked == Some(entry.revision), theme);
        if index == cursor.selected {
            line = line.patch_style(theme.selection);
        }
        lines.push(line);
    }
    lines
}

fn entry_line<'a>(entry: &HistoryEntry, marked: bool, theme: &Theme) -> Line<'a> {
    let style = match entry.status {
        RevisionStatus::Deployed => theme.ok,
        RevisionStatus::Failed => theme.error,
        RevisionStatus::Superseded => theme.muted,
        _ => theme.warning,
    };
    let mark = if marked { "*" } else { " " };
    cells(
        &[
            (&format!("{mark} {}", entry.revision), 6),
            (&entry.status.to_string(), 10),
            (&entry.version, 12),
            (&format_time(entry.created_at), TIME_WIDTH),
            (&entry.reason, 0),
        ],
        style,
    )
}

fn diff_title(detail: &DetailState) -> String {
    match &detail.diff {
        Some(diff) => format!(" spec diff: revision {} → {} ", diff.from, diff.to),
        None => " spec diff ".to_owned(),
    }
}

fn diff_lines<'a>(
    detail: &DetailState,
    theme: &Theme,
    page: usize,
    mark_key: Option<KeyPress>,
) -> Vec<Line<'a>> {
    let Some(diff) = &detail.diff else {
        let hint = match (detail.marked, detail.selected_revision(), mark_key) {
            (Some(marked), Some(selected), _) if marked != selected => {
                "loading the revisions…".to_owned()
            }
            (Some(_), _, _) => {
                "move to another revision to compare it with the marked one".to_owned()
            }
            (None, _, Some(key)) => {
                format!("mark a revision with {key}, then move to another to compare them")
            }
            (None, _, None) => "bind a key to mark in [detail] to compare revisions".to_owned(),
        };
        return vec![muted(&hint, theme)];
    };
    if diff
        .lines
        .iter()
        .all(|line| line.change == ChangeTag::Equal)
    {
        return vec![muted("the two specs are the same", theme)];
    }
    diff.lines
        .iter()
        .skip(detail.diff_scroll)
        .take(page)
        .map(|line| {
            let (sign, style) = match line.change {
                ChangeTag::Insert => ('+', theme.ok),
                ChangeTag::Delete => ('-', theme.error),
                ChangeTag::Equal => (' ', theme.muted),
            };
            Line::from(Span::styled(format!("{sign} {}", clean(&line.text)), style))
        })
        .collect()
}
