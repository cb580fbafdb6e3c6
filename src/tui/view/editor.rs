//! The manifest editor: the text with line numbers, a marker in the gutter
//! and the line in the error colour where the checks found a problem, and
//! under it the problem's message, the agent's error or the check's
//! result. The footer lists the editor's keys.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::{App, EditorState, EditorTarget};
use crate::tui::sanitize::clean;
use crate::tui::theme::Theme;

/// Rows at most for the messages under the text.
const MAX_MESSAGE_ROWS: u16 = 6;

/// The gutter column left of the line numbers, for the problem marker.
const MARKER_WIDTH: u16 = 2;

pub(super) fn draw(frame: &mut Frame, area: Rect, _app: &App, theme: &Theme, editor: &EditorState) {
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.accent)
        .title(Span::styled(title(editor), theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let messages = messages(editor, theme);
    let width = usize::from(inner.width.max(1));
    let wanted: usize = messages
        .iter()
        .map(|line| line.width().div_ceil(width).max(1))
        .sum();
    let rows = u16::try_from(wanted)
        .unwrap_or(u16::MAX)
        .min(MAX_MESSAGE_ROWS);
    let [text_area, message_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(rows)]).areas(inner);

    if editor.loaded {
        draw_text(frame, text_area, theme, editor);
    }
    frame.render_widget(
        Paragraph::new(messages).wrap(Wrap { trim: false }),
        message_area,
    );
}

fn title(editor: &EditorState) -> String {
    let modified = if editor.is_modified() {
        " · modified"
    } else {
        ""
    };
    match &editor.target {
        EditorTarget::New => format!(" new manifest{modified} "),
        EditorTarget::Edit { key, revision } => format!(
            " edit {} ({}) · revision {revision}{modified} ",
            clean(&key.name),
            clean(&key.environment)
        ),
    }
}

/// Draws the text, then marks the problem's line when it is on screen.
fn draw_text(frame: &mut Frame, area: Rect, theme: &Theme, editor: &EditorState) {
    let [gutter, text] =
        Layout::horizontal([Constraint::Length(MARKER_WIDTH), Constraint::Min(1)]).areas(area);
    frame.render_widget(&editor.textarea, text);
    let Some(problem) = editor.problem.as_ref().filter(|_| editor.checked) else {
        return;
    };
    let (top, _) = editor.textarea.scroll_offset();
    let Some(row) = (problem.line - 1).checked_sub(usize::from(top)) else {
        return;
    };
    let Ok(row) = u16::try_from(row) else {
        return;
    };
    if row >= text.height {
        return;
    }
    let marker = Rect {
        y: gutter.y + row,
        height: 1,
        ..gutter
    };
    frame.render_widget(Paragraph::new(Span::styled("▶", theme.error)), marker);
    let line = Rect {
        y: text.y + row,
        height: 1,
        ..text
    };
    frame.buffer_mut().set_style(line, theme.error);
}

fn messages<'a>(editor: &EditorState, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    if let Some(error) = &editor.agent_error {
        lines.push(Line::from(Span::styled(
            format!("✗ {}", clean(error)),
            theme.error,
        )));
    }
    if !editor.loaded {
        if editor.agent_error.is_none() {
            lines.push(Line::from(Span::styled(
                "reading the manifest from the agent…",
                theme.muted,
            )));
        }
        return lines;
    }
    if editor.sending {
        lines.push(Line::from(Span::styled(
            "sent; waiting for the agent…",
            theme.muted,
        )));
    }
    match (&editor.problem, editor.checked) {
        (_, false) => lines.push(Line::from(Span::styled("checking…", theme.muted))),
        (Some(problem), true) => lines.push(Line::from(Span::styled(
            format!("✗ {}", clean(&problem.to_string())),
            theme.error,
        ))),
        (None, true) => {
            let mut spans = vec![Span::styled("✓ the manifest is valid", theme.ok)];
            if let Some(template) = &editor.template {
                spans.push(Span::styled(
                    format!(
                        "; template {} is merged by the agent, which checks the rest",
                        clean(template)
                    ),
                    theme.muted,
                ));
            }
            lines.push(Line::from(spans));
        }
    }
    lines
}
