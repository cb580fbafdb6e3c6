//! The three header rows: the agent, the counts, and a status line that
//! shows the connection banner, the filter being typed, or the sort.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{environment_style, status_style};
use crate::tui::app::{App, Connection, Layer, SortColumn};
use crate::tui::sanitize::clean;
use crate::tui::theme::Theme;

pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let lines = vec![
        agent_line(app, theme),
        counts_line(app, theme),
        status_line(app, theme),
    ];
    frame.render_widget(Paragraph::new(lines).style(theme.text), area);
}

fn agent_line<'a>(app: &'a App, theme: &Theme) -> Line<'a> {
    let mut spans = vec![
        Span::styled(" shipdeck ", theme.title),
        Span::styled("agent ", theme.muted),
    ];
    match &app.agent {
        Some(agent) => {
            spans.push(Span::raw(clean(&agent.home).into_owned()));
            spans.push(Span::styled(
                format!("  pid {}  v{}", agent.pid, clean(&agent.version)),
                theme.muted,
            ));
        }
        None => spans.push(Span::raw(clean(&app.socket).into_owned())),
    }
    if app.read_only {
        spans.push(Span::styled("  read-only", theme.accent));
    }
    Line::from(spans)
}

/// Alerts first and failures before successes, so that a narrow terminal
/// cuts the least urgent counts.
fn counts_line<'a>(app: &'a App, theme: &Theme) -> Line<'a> {
    let deployments = &app.deployments;
    let firing = app.alerts.firing().len();
    let mut spans = vec![match firing {
        0 => Span::styled(" no alerts firing", theme.ok),
        1 => Span::styled(" 1 alert firing", theme.error),
        n => Span::styled(format!(" {n} alerts firing"), theme.error),
    }];
    spans.push(Span::styled(" │ ", theme.muted));
    spans.push(Span::raw(format!("{} deployments", deployments.total())));
    let production = deployments
        .all()
        .iter()
        .filter(|row| row.environment == "production")
        .count();
    if production > 0 {
        spans.push(Span::styled(
            format!(" ({production} in production)"),
            environment_style("production", theme),
        ));
    }
    // The counts are of every environment; a separator of their own keeps
    // them from reading as the production ones.
    for (index, (status, count)) in deployments.counts().into_iter().enumerate() {
        spans.push(Span::styled(
            if index == 0 { " │ " } else { " · " },
            theme.muted,
        ));
        spans.push(Span::styled(
            format!("{count} {status}"),
            status_style(status, theme),
        ));
    }
    Line::from(spans)
}

fn status_line<'a>(app: &'a App, theme: &Theme) -> Line<'a> {
    if let Connection::Lost { since, reason } = &app.connection {
        return banner(*since, reason, theme);
    }
    let typing = matches!(app.layers.last(), Some(Layer::Filter { .. }));
    if typing || !app.deployments.filter_text.is_empty() {
        return filter_line(app, typing, theme);
    }
    if let Some(error) = &app.last_error {
        return Line::from(Span::styled(format!(" {}", clean(error)), theme.error));
    }
    if app.connection == Connection::Connecting {
        return Line::from(Span::styled(" connecting to the agent…", theme.muted));
    }
    let sort = app.deployments.sort;
    let direction = if sort.descending {
        "descending"
    } else {
        "ascending"
    };
    Line::from(Span::styled(
        format!(" sorted by {} {direction}", sort_name(sort.column)),
        theme.muted,
    ))
}

/// Draws the connection-lost banner, in reverse video so that it is noticed.
fn banner<'a>(since: time::OffsetDateTime, reason: &str, theme: &Theme) -> Line<'a> {
    let time = since
        .format(&time::macros::format_description!(
            "[hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    Line::from(Span::styled(
        format!(
            " agent unreachable since {time} UTC, retrying (start it with `shipdeck agent --detach`); the data shown is stale: {}",
            clean(reason)
        ),
        theme.error.add_modifier(Modifier::REVERSED),
    ))
}

/// The filter as typed, how many rows it keeps, and why it is invalid.
fn filter_line<'a>(app: &'a App, typing: bool, theme: &Theme) -> Line<'a> {
    let deployments = &app.deployments;
    let mut spans = vec![
        Span::styled(" /", theme.accent),
        Span::raw(clean(&deployments.filter_text).into_owned()),
    ];
    if typing {
        spans.push(Span::styled("▏", theme.accent));
    }
    spans.push(Span::styled(
        format!("  {} of {}", deployments.len(), deployments.total()),
        theme.muted,
    ));
    if let Some(error) = &deployments.filter_error {
        spans.push(Span::styled(format!("  {error}"), theme.error));
    }
    Line::from(spans)
}

pub(super) fn sort_name(column: SortColumn) -> &'static str {
    match column {
        SortColumn::Name => "name",
        SortColumn::Environment => "environment",
        SortColumn::Status => "status",
        SortColumn::Health => "health",
        SortColumn::Ready => "ready replicas",
        SortColumn::Revision => "revision",
        SortColumn::Cpu => "CPU",
        SortColumn::Memory => "memory",
        SortColumn::Requests => "requests per second",
        SortColumn::Age => "age",
    }
}
