//! The confirmation dialog and the one-line prompts (replica count and
//! `:` palette), drawn over the table.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::action::Command;
use crate::tui::app::{App, ConfirmDialog, Form, Prompt, PromptMessage};
use crate::tui::keymap::Context;
use crate::tui::sanitize::clean;
use crate::tui::theme::Theme;

/// Widest a dialog grows, in cells, on wide terminals.
const MAX_WIDTH: u16 = 72;

pub(super) fn draw_confirm(
    frame: &mut Frame,
    screen: Rect,
    app: &App,
    theme: &Theme,
    dialog: &ConfirmDialog,
) {
    // The first line states what happens. The lines after it, such as the
    // fields an edited manifest changes, are details.
    let mut lines: Vec<Line> = dialog
        .message
        .lines()
        .enumerate()
        .map(|(index, text)| {
            let style = if index == 0 { theme.text } else { theme.muted };
            let prefix = if index == 0 { "" } else { "  · " };
            Line::from(Span::styled(format!("{prefix}{}", clean(text)), style))
        })
        .collect();
    lines.push(Line::default());
    let context = match &dialog.required_name {
        Some(name) => {
            lines.push(Line::from(Span::styled(
                format!("production: type {} to confirm", clean(name)),
                theme.warning,
            )));
            lines.push(Line::from(vec![
                Span::styled("> ", theme.accent),
                Span::raw(clean(&dialog.typed).into_owned()),
                Span::styled("▏", theme.accent),
            ]));
            Context::ConfirmTyped
        }
        None => Context::Confirm,
    };
    if let Some(error) = &dialog.error {
        lines.push(Line::from(Span::styled(error.clone(), theme.error)));
    }
    lines.push(hints(app, context, theme, false));
    let border = if dialog.required_name.is_some() {
        theme.warning
    } else {
        theme.accent
    };
    draw_box(frame, screen, theme, " confirm ", border, lines);
}

pub(super) fn draw_prompt(
    frame: &mut Frame,
    screen: Rect,
    app: &App,
    theme: &Theme,
    prompt: &Prompt,
) {
    let (title, label) = match &prompt.key {
        Some(key) => (
            format!(" scale {} ({}) ", clean(&key.name), clean(&key.environment)),
            "replicas: ",
        ),
        None => (" command ".to_owned(), ":"),
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(label, theme.accent),
        Span::raw(clean(&prompt.text).into_owned()),
        Span::styled("▏", theme.accent),
    ])];
    match &prompt.message {
        Some(PromptMessage::Error(text)) => {
            lines.push(Line::from(Span::styled(text.clone(), theme.error)));
        }
        Some(PromptMessage::Hint(text)) => {
            lines.push(Line::from(Span::styled(text.clone(), theme.muted)));
        }
        None if prompt.key.is_none() => lines.push(Line::from(Span::styled(
            "scale NAME N · rollback NAME [REV] · redeploy NAME · restart NAME [REPLICA] · undeploy NAME · deploy · edit NAME · secrets · silence NAME RULE [1h] · ack NAME RULE · quit; env:ENV",
            theme.muted,
        ))),
        None => {}
    }
    lines.push(hints(app, Context::Prompt, theme, prompt.key.is_none()));
    draw_box(frame, screen, theme, &title, theme.accent, lines);
}

/// Draws a form: each field on its line, a masked one as one `•` per
/// character, the focused one with the cursor.
pub(super) fn draw_form(frame: &mut Frame, screen: Rect, app: &App, theme: &Theme, form: &Form) {
    let label_width = form
        .fields
        .iter()
        .map(|field| field.label.len())
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for (index, field) in form.fields.iter().enumerate() {
        let shown = if field.masked {
            "•".repeat(field.chars())
        } else {
            clean(field.text()).into_owned()
        };
        let mut spans = vec![
            Span::styled(format!("{:>label_width$}: ", field.label), theme.accent),
            Span::raw(shown),
        ];
        if index == form.focus {
            spans.push(Span::styled("▏", theme.accent));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(Span::styled(
        clean(&form.note).into_owned(),
        theme.muted,
    )));
    if let Some(error) = &form.error {
        lines.push(Line::from(Span::styled(
            clean(error).into_owned(),
            theme.error,
        )));
    }
    let hints = [
        (Command::Confirm, "send"),
        (Command::NextField, "next field"),
        (Command::CancelFilter, "cancel"),
    ];
    lines.push(hint_line(app, Context::Form, theme, &hints));
    draw_box(
        frame,
        screen,
        theme,
        &clean(&form.title),
        theme.accent,
        lines,
    );
}

/// Draws a yes-or-no question that is not about an operation: dropping
/// the editor's changes, deleting a secret.
pub(super) fn draw_question(
    frame: &mut Frame,
    screen: Rect,
    app: &App,
    theme: &Theme,
    title: &str,
    question: String,
) {
    let lines = vec![
        Line::from(Span::styled(question, theme.text)),
        Line::default(),
        hints(app, Context::Confirm, theme, false),
    ];
    draw_box(frame, screen, theme, title, theme.warning, lines);
}

/// Lists the first key of each command in `context` with its label.
pub(super) fn hint_line<'a>(
    app: &App,
    context: Context,
    theme: &Theme,
    labels: &[(Command, &str)],
) -> Line<'a> {
    let mut spans = Vec::new();
    for (command, label) in labels {
        if app.read_only && command.changes_agent() {
            continue;
        }
        if let Some(key) = app.keymap.first_key(context, *command) {
            spans.push(Span::styled(key.to_string(), theme.accent));
            spans.push(Span::styled(format!(" {label}  "), theme.muted));
        }
    }
    Line::from(spans)
}

/// Lists the keys of the dialog; `completes` adds the completion key,
/// which only the palette uses.
fn hints<'a>(app: &App, context: Context, theme: &Theme, completes: bool) -> Line<'a> {
    let labels = [
        (Command::Confirm, "confirm"),
        (Command::CancelFilter, "cancel"),
        (Command::Complete, "complete"),
    ];
    let mut spans = Vec::new();
    for (command, label) in labels {
        if command == Command::Complete && !completes {
            continue;
        }
        let keys: Vec<String> = app
            .keymap
            .describe(context)
            .into_iter()
            .filter(|binding| binding.command == command)
            .flat_map(|binding| binding.keys)
            .map(|key| key.to_string())
            .collect();
        if !keys.is_empty() {
            spans.push(Span::styled(keys.join("/"), theme.accent));
            spans.push(Span::styled(format!(" {label}  "), theme.muted));
        }
    }
    Line::from(spans)
}

/// Draws `lines` in a bordered box centred on `screen`, as tall as the
/// text needs once wrapped.
fn draw_box(
    frame: &mut Frame,
    screen: Rect,
    theme: &Theme,
    title: &str,
    border: ratatui::style::Style,
    lines: Vec<Line<'_>>,
) {
    let width = screen.width.saturating_sub(4).min(MAX_WIDTH);
    let inner_width = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines
        .iter()
        .map(|line| line.width().div_ceil(inner_width).max(1))
        .sum();
    let height = u16::try_from(rows + 2)
        .unwrap_or(u16::MAX)
        .min(screen.height);
    let area = Rect {
        x: screen.x + (screen.width - width) / 2,
        y: screen.y + (screen.height - height) / 2,
        width,
        height,
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Span::styled(title.to_owned(), theme.title));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .style(theme.text)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
