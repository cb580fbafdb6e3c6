//! Toasts: a stack of short messages in the bottom-right corner, above the
//! footer, drawn over whatever is there.

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::level_style;
use crate::tui::app::App;
use crate::tui::sanitize::{width, wrap};
use crate::tui::theme::Theme;

/// The widest a toast gets on a narrow screen, borders included; wider
/// screens give toasts up to two thirds of their width.
const MIN_WIDTH: u16 = 64;

/// Rows one toast may wrap onto, so that the advice at the end of an error
/// stays readable.
const ROWS_PER_TOAST: usize = 3;

pub(super) fn draw(frame: &mut Frame, footer: Rect, app: &App, theme: &Theme) {
    if app.toasts.is_empty() {
        return;
    }
    let box_width = MIN_WIDTH.max(footer.width / 3 * 2).min(footer.width);
    let text_width = usize::from(box_width.saturating_sub(2));
    let lines: Vec<Line> = app
        .toasts
        .iter()
        .flat_map(|toast| {
            let style = level_style(toast.level, theme);
            wrap(&toast.message, text_width, ROWS_PER_TOAST)
                .into_iter()
                .map(move |row| Line::styled(row, style))
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
