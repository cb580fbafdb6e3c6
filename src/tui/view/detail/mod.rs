//! The detail view of one deployment: a row of tabs over the open tab.
//! Every text from the agent goes through [`clean`] here, where it is drawn.

mod alerts;
mod autoscale;
mod history;
mod logs;
mod metrics;
mod overview;
mod timeline;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use time::OffsetDateTime;
use unicode_width::UnicodeWidthStr;

use crate::tui::action::Command;
use crate::tui::app::{App, DetailState, DetailTab, Pane};
use crate::tui::keymap::Context;
use crate::tui::layout::DetailAreas;
use crate::tui::sanitize::{clean, truncate};
use crate::tui::theme::Theme;

pub(super) fn draw(frame: &mut Frame, body: Rect, app: &App, theme: &Theme, detail: &DetailState) {
    let areas = DetailAreas::new(body);
    draw_tabs(frame, areas.tabs, app, theme, detail.tab);
    let focused = app.focus == Pane::Detail;
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(if focused { theme.accent } else { theme.border })
        .title(Span::styled(title(app, detail), theme.title));
    if let Some(error) = &detail.error {
        block = block.title_bottom(Span::styled(format!(" {} ", clean(error)), theme.error));
    }
    match detail.tab {
        DetailTab::Overview => overview::draw(frame, areas.content, block, theme, detail),
        DetailTab::Metrics => metrics::draw(frame, areas.content, block, theme, detail),
        DetailTab::History => {
            let mark_key = app.keymap.first_key(Context::Detail, Command::MarkRevision);
            history::draw(frame, &areas, theme, detail, mark_key)
        }
        DetailTab::Alerts => alerts::draw(frame, areas.content, block, theme, detail),
        DetailTab::Timeline => timeline::draw(frame, areas.content, block, theme, detail),
        DetailTab::Logs => logs::draw(frame, areas.content, block, app, theme, detail),
        DetailTab::Autoscale => autoscale::draw(frame, areas.content, block, app, theme, detail),
    }
}

/// Draws the tab titles, each after the key that selects it.
fn draw_tabs(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, current: DetailTab) {
    let mut spans = Vec::new();
    for tab in DetailTab::ALL {
        let key = app
            .keymap
            .first_key(Context::Detail, show_command(tab))
            .map(|key| format!("{key} "))
            .unwrap_or_default();
        let style = if tab == current {
            theme.selection
        } else {
            theme.muted
        };
        spans.push(Span::styled(format!(" {key}{} ", tab.title()), style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn show_command(tab: DetailTab) -> Command {
    match tab {
        DetailTab::Overview => Command::ShowOverview,
        DetailTab::Metrics => Command::ShowMetrics,
        DetailTab::History => Command::ShowHistory,
        DetailTab::Alerts => Command::ShowAlerts,
        DetailTab::Timeline => Command::ShowTimeline,
        DetailTab::Logs => Command::Logs(crate::tui::app::LogsCommand::ShowTab),
        DetailTab::Autoscale => Command::ShowAutoscale,
    }
}

/// Returns the block title: the deployment's name and environment, with its status
/// and autoscaling range from the deployments list when the list has it.
fn title(app: &App, detail: &DetailState) -> String {
    let key = &detail.key;
    let row = app.deployments.all().iter().find(|row| row.key == *key);
    let name = clean(&key.name);
    let environment = clean(&key.environment);
    let Some(row) = row else {
        return format!(" {name} ({environment}) ");
    };
    let autoscaling = row
        .autoscaling
        .map(|range| format!(" · autoscale {}..{}", range.min, range.max))
        .unwrap_or_default();
    format!(
        " {name} ({environment}) · {} · revision {}{autoscaling} ",
        row.status, row.revision
    )
}

/// Builds a line of fixed-width cells. Each text is sanitised, cut to its width
/// and padded by display width, so CJK and emoji keep the columns aligned.
/// The last cell takes what is left of the row.
fn cells<'a>(cells: &[(&str, usize)], style: Style) -> Line<'a> {
    let mut text = String::new();
    let last = cells.len().saturating_sub(1);
    for (index, (cell, width)) in cells.iter().enumerate() {
        let cleaned = clean(cell);
        if index == last {
            text.push_str(&cleaned);
            break;
        }
        let cut = truncate(&cleaned, *width);
        text.push_str(&cut);
        let pad = width.saturating_sub(cut.width()) + 1;
        text.extend(std::iter::repeat_n(' ', pad));
    }
    Line::from(Span::styled(text, style))
}

fn heading<'a>(text: String, theme: &Theme) -> Line<'a> {
    Line::from(Span::styled(text, theme.title))
}

fn muted<'a>(text: &str, theme: &Theme) -> Line<'a> {
    Line::from(Span::styled(format!("  {text}"), theme.muted))
}

/// Formats a time as UTC to the second: `2025-01-01 12:00:05`.
fn format_time(time: OffsetDateTime) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// Cells of a time from [`format_time`].
const TIME_WIDTH: usize = 19;

/// Returns the name serde gives a value, such as `rollingUpdate` or `gt`.
fn wire_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// Draws `lines` from `offset` inside `block`, as far as they fit.
fn draw_scrolled(frame: &mut Frame, area: Rect, block: Block, lines: Vec<Line>, offset: usize) {
    let inner = usize::from(area.height.saturating_sub(2));
    let offset = offset.min(lines.len().saturating_sub(inner));
    let shown: Vec<Line> = lines.into_iter().skip(offset).take(inner).collect();
    frame.render_widget(Paragraph::new(shown).block(block), area);
}
