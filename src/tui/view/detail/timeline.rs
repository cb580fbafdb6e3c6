//! The timeline tab: every event of the deployment, newest first.

use ratatui::layout::Rect;
use ratatui::widgets::Block;
use ratatui::Frame;

use super::muted;
use super::overview::{event_header, event_line};
use crate::tui::app::DetailState;
use crate::tui::theme::Theme;

pub(super) fn draw(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    theme: &Theme,
    detail: &DetailState,
) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = vec![event_header(theme)];
    let page = usize::from(inner.height.saturating_sub(1));
    match &detail.timeline {
        None => lines.push(muted("loading the events…", theme)),
        Some(events) if events.is_empty() => lines.push(muted("no event recorded", theme)),
        Some(events) => {
            let cursor = detail.timeline_cursor;
            for index in cursor.visible(events.len(), page) {
                let mut line = event_line(&events[index], theme);
                if index == cursor.selected {
                    line = line.patch_style(theme.selection);
                }
                lines.push(line);
            }
        }
    }
    frame.render_widget(ratatui::widgets::Paragraph::new(lines), inner);
}
