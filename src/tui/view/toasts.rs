//! Toasts: a stack of short messages in the bottom-right corner, above the
//! footer, drawn over whatever is there.

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::level_style;
use crate::tui::app::App;
use crate::tui::sanitize::{truncate, width};
use crate::tui::theme::Theme;

/// The widest a toast gets, borders included.
const MAX_WIDTH: u16 = 64;

pub(super) fn draw(frame: &mut Frame, footer: Rect, app: &App, theme: &Theme) {
    if app.toasts.is_empty() {
        return;
    }
    let box_width = MAX_WIDTH.min(footer.width);
    let text_width = usize::from(box_width.saturating_sub(2));
    let lines: Vec<Line> = app
        .toasts
        .iter()
        .map(|toast| {
            Line::styled(
                truncate(&toast.message, text_width).into_owned(),
                level_style(toast.level, theme),
            )
        })
        .collect();

    let widest = lines
        .iter()
        .map(|line| width(&line.to_string()))
        .max()
        .unwrap_or(0);
    let box_width = u16::try_from(widest + 2)
        .unwrap_or(box_width)
        .min(box_width);
    // Above the bottom border of the pane over the footer.
    let bottom = footer.y.saturating_sub(1);
    let box_height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(bottom);
    let area = Rect {
        x: footer.x + footer.width - box_width,
        y: bottom - box_height,
        width: box_width,
        height: box_height,
    };

    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border),
        ),
        area,
    );
}
