//! The confirmation dialog and the one-line prompts (replica count and
//! `:` palette), drawn over the table.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::action::Command;
use crate::tui::app::{App, ConfirmDialog, Prompt, PromptMessage};
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
    let mut lines = vec![
        Line::from(Span::styled(
            clean(&dialog.message).into_owned(),
            theme.text,
        )),
        Line::default(),
    ];
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
            "scale NAME N · rollback NAME [REV] · redeploy NAME · undeploy NAME · quit; env:ENV",
            theme.muted,
        ))),
        None => {}
    }
    lines.push(hints(app, Context::Prompt, theme, prompt.key.is_none()));
    draw_box(frame, screen, theme, &title, theme.accent, lines);
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
