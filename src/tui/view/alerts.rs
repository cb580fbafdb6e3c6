//! The global alerts pane: alerts firing now, newest first.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::environment_style;
use crate::tui::app::{format_age, AlertRow, App, Pane};
use crate::tui::sanitize::truncate;
use crate::tui::theme::Theme;

/// Cells of the deployment and rule columns.
const NAME_WIDTH: u16 = 18;

pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let alerts = &app.alerts;
    let focused = app.focus == Pane::Alerts;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(if focused { theme.accent } else { theme.border })
        .title(Span::styled(
            format!(" alerts firing {} ", alerts.firing().len()),
            theme.title,
        ));
    if alerts.firing().is_empty() {
        let message = if alerts.loaded {
            "no alert is firing"
        } else {
            "waiting for the agent's alerts…"
        };
        frame.render_widget(
            Paragraph::new(Span::styled(message, theme.muted)).block(block),
            area,
        );
        return;
    }

    let now = app.now();
    let page = app.alert_page();
    let rows = alerts.page(page).iter().map(|alert| row(alert, now, theme));
    let widths = [
        Constraint::Length(4),
        Constraint::Length(NAME_WIDTH),
        Constraint::Length(11),
        Constraint::Length(NAME_WIDTH),
        Constraint::Min(0),
    ];

    let selected = alerts.cursor.selected.saturating_sub(alerts.cursor.offset);
    let mut state = TableState::default().with_selected(focused.then_some(selected));
    let table = Table::new(rows, widths)
        .style(theme.text)
        .row_highlight_style(theme.selection)
        .block(block);
    frame.render_stateful_widget(table, area, &mut state);
}

fn row<'a>(alert: &'a AlertRow, now: time::OffsetDateTime, theme: &Theme) -> Row<'a> {
    let width = usize::from(NAME_WIDTH);
    let mut notes = Vec::new();
    if alert.silenced {
        notes.push("silenced".to_owned());
    }
    if let Some(author) = &alert.acknowledged_by {
        notes.push(format!("acknowledged by {author}"));
    }
    Row::new([
        Cell::from(format_age(now - alert.since)).style(theme.error),
        Cell::from(truncate(&alert.deployment, width).into_owned()),
        Cell::from(truncate(&alert.environment, 11).into_owned())
            .style(environment_style(&alert.environment, theme)),
        Cell::from(truncate(&alert.rule, width).into_owned()).style(theme.error),
        Cell::from(notes.join(", ")).style(theme.muted),
    ])
}
