//! The metrics tab: one sparkline per series over the chosen window. A
//! step without samples is drawn as a shaded column, never as a zero.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, SparklineBar, Wrap};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::muted;
use crate::model::SeriesView;
use crate::tui::app::{DetailState, DETAIL_SERIES};
use crate::tui::sanitize::clean;
use crate::tui::theme::Theme;

/// Values are scaled by this before they become the integers a sparkline
/// takes, so that fractions of a percent still show.
const SCALE: f64 = 100.0;

pub(super) fn draw(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    theme: &Theme,
    detail: &DetailState,
) {
    let block = block.title_bottom(Span::styled(
        format!(
            " window {} · newest on the right · ░ no samples ",
            detail.window.label()
        ),
        theme.muted,
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(series) = &detail.metrics else {
        frame.render_widget(Paragraph::new(muted("loading the metrics…", theme)), inner);
        return;
    };
    let unavailable = detail
        .deployment
        .as_ref()
        .and_then(|deployment| deployment.metrics_unavailable.as_deref());
    let inner = match unavailable {
        Some(reason) => draw_unavailable(frame, inner, reason, theme),
        None => inner,
    };
    let rows = Layout::vertical([Constraint::Ratio(1, 6); 6]).split(inner);
    for (name, row) in DETAIL_SERIES.iter().zip(rows.iter()) {
        let found = series.iter().find(|series| series.name == *name);
        draw_series(frame, *row, name, found, theme);
    }
}

/// Draws why the CPU and memory charts get no new values above them, so
/// that empty charts are not read as idle replicas, and returns the area
/// left for the charts.
fn draw_unavailable(frame: &mut Frame, area: Rect, reason: &str, theme: &Theme) -> Rect {
    let text = format!("no CPU or memory values: {}", clean(reason));
    let width = usize::from(area.width.max(1));
    let lines = text.width().div_ceil(width).clamp(1, 3);
    let [notice, rest] = Layout::vertical([
        Constraint::Length(u16::try_from(lines).unwrap_or(1)),
        Constraint::Min(0),
    ])
    .areas(area);
    let paragraph = Paragraph::new(Span::styled(text, theme.warning)).wrap(Wrap { trim: true });
    frame.render_widget(paragraph, notice);
    rest
}

fn draw_series(
    frame: &mut Frame,
    area: Rect,
    name: &str,
    series: Option<&SeriesView>,
    theme: &Theme,
) {
    let (label, unit) = describe(name);
    let values: Vec<Option<f64>> = series
        .map(|series| series.points.iter().map(|point| point.value).collect())
        .unwrap_or_default();
    let present: Vec<f64> = values.iter().flatten().copied().collect();

    let title = match (present.last(), present.iter().copied().reduce(f64::max)) {
        (Some(last), Some(max)) => format!(
            "{label}  last {}  max {}",
            format_value(*last, unit),
            format_value(max, unit)
        ),
        _ => format!("{label}  no data in this window"),
    };
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(theme.border)
        .title(Span::styled(title, theme.text));

    if present.is_empty() {
        frame.render_widget(block, area);
        return;
    }

    let width = usize::from(area.width);
    // The newest points when the window has more steps than columns;
    // otherwise each step is widened so that the window fills the row.
    let shown = &values[values.len().saturating_sub(width)..];
    let columns_per_step = (width / shown.len().max(1)).max(1);
    let bars: Vec<SparklineBar> = shown
        .iter()
        .flat_map(|value| std::iter::repeat_n(*value, columns_per_step))
        .map(|value| SparklineBar::from(value.map(scaled)))
        .collect();
    let max = present
        .iter()
        .copied()
        .map(scaled)
        .max()
        .unwrap_or(1)
        .max(1);
    let sparkline = Sparkline::default()
        .block(block)
        .data(bars)
        .max(max)
        .style(theme.accent)
        .absent_value_symbol("░")
        .absent_value_style(theme.muted);
    frame.render_widget(sparkline, area);
}

fn scaled(value: f64) -> u64 {
    // Saturating float-to-int conversion; no series is negative.
    (value.max(0.0) * SCALE).round() as u64
}

/// Returns the label and unit of a series.
fn describe(name: &str) -> (&'static str, Unit) {
    match name {
        "cpu_percentage" => ("cpu", Unit::Percent),
        "memory_usage" => ("memory", Unit::Bytes),
        "network_bytes_in" => ("network in", Unit::BytesPerSecond),
        "network_bytes_out" => ("network out", Unit::BytesPerSecond),
        "requests_per_second" => ("requests", Unit::PerSecond),
        "response_time_p95" => ("response time p95", Unit::Milliseconds),
        _ => ("series", Unit::Plain),
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Percent,
    Bytes,
    BytesPerSecond,
    PerSecond,
    Milliseconds,
    Plain,
}

fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Percent => format!("{value:.1}%"),
        Unit::Bytes => format_bytes(value),
        Unit::BytesPerSecond => format!("{}/s", format_bytes(value)),
        Unit::PerSecond => format!("{value:.1}/s"),
        Unit::Milliseconds => format!("{value:.1} ms"),
        Unit::Plain => format!("{value:.2}"),
    }
}

fn format_bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{scaled:.0} B")
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}
