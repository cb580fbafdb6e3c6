//! The `?` help: every key of the current context and the global ones,
//! read from the keymap table.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::app::{help_area, help_lines, App, HelpLine, ListCursor};
use crate::tui::keymap::Context;
use crate::tui::theme::Theme;

/// Cells of the keys column.
const KEYS_WIDTH: usize = 16;

pub(super) fn draw(
    frame: &mut Frame,
    screen: Rect,
    app: &App,
    theme: &Theme,
    context: Context,
    cursor: ListCursor,
) {
    let area = help_area(screen);
    let lines = help_lines(&app.keymap, context, app.read_only);
    let page = usize::from(area.height.saturating_sub(2));
    let shown: Vec<Line> = lines[cursor.visible(lines.len(), page)]
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let rendered = render(line, theme);
            if cursor.offset + index == cursor.selected {
                rendered.patch_style(theme.selection)
            } else {
                rendered
            }
        })
        .collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.accent)
        .title(Span::styled(
            format!(" help: {} ", context.name()),
            theme.title,
        ));
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(shown).style(theme.text).block(block), area);
}

fn render<'a>(line: &HelpLine, theme: &Theme) -> Line<'a> {
    match line {
        HelpLine::Heading(text) => Line::from(Span::styled(text.clone(), theme.title)),
        HelpLine::Binding(binding) => {
            let keys: Vec<String> = binding.keys.iter().map(ToString::to_string).collect();
            let keys = if keys.is_empty() {
                "(unbound)".to_owned()
            } else {
                keys.join(" ")
            };
            Line::from(vec![
                Span::styled(format!("  {keys:<KEYS_WIDTH$}"), theme.accent),
                Span::raw(binding.command.description()),
                Span::styled(format!(" [{}]", binding.command.name()), theme.muted),
            ])
        }
        HelpLine::Note(text) => Line::from(Span::styled(format!("  {text}"), theme.muted)),
    }
}
