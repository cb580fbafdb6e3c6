//! The deployments table: one row per deployment on the page, with the
//! columns that fit the width.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::header::sort_name;
use super::{environment_style, health_style, status_style};
use crate::manifest::BackendKind;
use crate::tui::app::{format_age, App, Connection, DeploymentRow, Pane, RowMetrics, SortColumn};
use crate::tui::sanitize::truncate;
use crate::tui::theme::Theme;

/// A column of the table. Columns with a lower `keep` are dropped first
/// when the width is short; the name takes what the others leave. The
/// autoscale column shows only while a deployment autoscales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Name,
    Environment,
    Backend,
    Status,
    Health,
    Ready,
    Autoscale,
    Revision,
    Version,
    Cpu,
    Memory,
    Requests,
    Age,
    Trend,
}

const COLUMNS: [Column; 14] = [
    Column::Name,
    Column::Environment,
    Column::Backend,
    Column::Status,
    Column::Health,
    Column::Ready,
    Column::Autoscale,
    Column::Revision,
    Column::Version,
    Column::Cpu,
    Column::Memory,
    Column::Requests,
    Column::Age,
    Column::Trend,
];

/// The narrowest the name column gets.
const NAME_MIN: u16 = 12;
/// The widest the name column gets; DNS-1123 labels have at most 63
/// characters, and most are far shorter.
const NAME_MAX: u16 = 40;
/// Cells of the CPU sparkline.
const TREND_WIDTH: u16 = 10;
/// Blank cells between two columns.
const SPACING: u16 = 1;

impl Column {
    fn title(self) -> &'static str {
        match self {
            Self::Name => "NAME",
            Self::Environment => "ENV",
            Self::Backend => "BACKEND",
            Self::Status => "STATUS",
            Self::Health => "HEALTH",
            Self::Ready => "READY",
            Self::Autoscale => "AUTO",
            Self::Revision => "REV",
            Self::Version => "VERSION",
            Self::Cpu => "CPU",
            Self::Memory => "MEM",
            Self::Requests => "REQ/S",
            Self::Age => "AGE",
            Self::Trend => "CPU TREND",
        }
    }

    fn width(self) -> u16 {
        match self {
            Self::Name => NAME_MIN,
            Self::Environment | Self::Status => 11,
            Self::Backend => 10,
            Self::Health => 9,
            // `1..10` and `10..100`; wider ranges are cut.
            Self::Ready | Self::Autoscale => 7,
            Self::Revision => 4,
            Self::Version => 8,
            Self::Cpu | Self::Requests => 6,
            Self::Memory => 7,
            Self::Age => 4,
            Self::Trend => TREND_WIDTH,
        }
    }

    /// Returns how much the column is worth keeping. The name and the
    /// status are always kept.
    fn keep(self) -> u8 {
        match self {
            Self::Name | Self::Status => u8::MAX,
            Self::Environment => 13,
            Self::Ready => 12,
            Self::Cpu => 11,
            // Failing checks say more than a trend at 80 columns, where
            // one of the two has to go.
            Self::Health => 10,
            Self::Memory => 9,
            // A count that moves by itself, and a scale key that the agent
            // rejects, need explaining more than the age does.
            Self::Autoscale => 8,
            Self::Age => 7,
            Self::Trend => 6,
            Self::Requests => 5,
            Self::Revision => 4,
            Self::Version => 3,
            Self::Backend => 2,
        }
    }

    fn sorted_by(self) -> Option<SortColumn> {
        Some(match self {
            Self::Name => SortColumn::Name,
            Self::Environment => SortColumn::Environment,
            Self::Status => SortColumn::Status,
            Self::Health => SortColumn::Health,
            Self::Ready => SortColumn::Ready,
            Self::Revision => SortColumn::Revision,
            Self::Cpu => SortColumn::Cpu,
            Self::Memory => SortColumn::Memory,
            Self::Requests => SortColumn::Requests,
            Self::Age => SortColumn::Age,
            Self::Backend | Self::Version | Self::Trend | Self::Autoscale => return None,
        })
    }
}

/// Chooses the columns that fit `width`, in display order, and the name's
/// width; the autoscale column only when `autoscaled`.
fn fit_columns(width: u16, autoscaled: bool) -> (Vec<Column>, u16) {
    let mut shown: Vec<Column> = COLUMNS
        .into_iter()
        .filter(|column| autoscaled || *column != Column::Autoscale)
        .collect();
    let needed = |columns: &[Column]| -> u16 {
        columns
            .iter()
            .map(|column| column.width() + SPACING)
            .sum::<u16>()
            - SPACING
    };
    while needed(&shown) > width {
        let Some(weakest) = shown
            .iter()
            .copied()
            .filter(|column| column.keep() < u8::MAX)
            .min_by_key(|column| column.keep())
        else {
            break;
        };
        shown.retain(|column| *column != weakest);
    }
    let name_width = (NAME_MIN + width.saturating_sub(needed(&shown))).min(NAME_MAX);
    (shown, name_width)
}

pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let deployments = &app.deployments;
    let block = block(app, theme);
    let inner = block.inner(area);
    let page = app.table_page();
    if deployments.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(empty_message(app), theme.muted)).block(block),
            area,
        );
        return;
    }

    // Any row, not only those on the page, so that the columns stay put
    // while the operator scrolls.
    let autoscaled = deployments
        .all()
        .iter()
        .any(|row| row.autoscaling.is_some());
    let (columns, name_width) = fit_columns(inner.width, autoscaled);
    let now = app.now();
    let rows = deployments.page(page).map(|row| {
        let metrics = deployments.metrics(&row.key);
        Row::new(
            columns
                .iter()
                .map(|column| cell(*column, row, metrics, name_width, now, theme)),
        )
    });
    let widths = columns.iter().map(|column| {
        Constraint::Length(if *column == Column::Name {
            name_width
        } else {
            column.width()
        })
    });

    let selected = deployments
        .cursor
        .selected
        .saturating_sub(deployments.cursor.offset);
    let mut state = TableState::default().with_selected(Some(selected));
    let table = Table::new(rows, widths)
        .header(header_row(&columns, app, theme))
        .column_spacing(SPACING)
        .style(theme.text)
        .row_highlight_style(theme.selection)
        .block(block);
    frame.render_stateful_widget(table, area, &mut state);
}

/// Builds the column titles, with an arrow on the sort column.
fn header_row<'a>(columns: &[Column], app: &App, theme: &Theme) -> Row<'a> {
    let sort = app.deployments.sort;
    Row::new(columns.iter().map(|column| {
        let sorted = column.sorted_by() == Some(sort.column);
        let arrow = if sort.descending { "↓" } else { "↑" };
        let title = if sorted {
            format!("{}{arrow}", column.title())
        } else {
            column.title().to_owned()
        };
        Cell::from(title).style(if sorted { theme.accent } else { theme.muted })
    }))
}

fn block<'a>(app: &App, theme: &Theme) -> Block<'a> {
    let deployments = &app.deployments;
    let focused = app.focus == Pane::Deployments;
    let mut title = vec![Span::styled(
        format!(
            " deployments {} of {} ",
            deployments.len(),
            deployments.total()
        ),
        theme.title,
    )];
    title.push(Span::styled(
        format!("by {} ", sort_name(deployments.sort.column)),
        theme.muted,
    ));
    if matches!(app.connection, Connection::Lost { .. }) {
        title.push(Span::styled(" stale ", theme.warning));
    }
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focused { theme.accent } else { theme.border })
        .title(Line::from(title))
}

fn empty_message(app: &App) -> String {
    let deployments = &app.deployments;
    if !deployments.loaded {
        "waiting for the agent's list of deployments…".to_owned()
    } else if deployments.total() == 0 {
        "no deployments yet: deploy one with `shipdeck deploy -f app.yaml`".to_owned()
    } else {
        format!(
            "no deployment matches /{}; press esc to clear the filter",
            deployments.filter_text
        )
    }
}

fn cell<'a>(
    column: Column,
    row: &'a DeploymentRow,
    metrics: Option<&RowMetrics>,
    name_width: u16,
    now: time::OffsetDateTime,
    theme: &Theme,
) -> Cell<'a> {
    let width = usize::from(column.width());
    match column {
        Column::Name => Cell::from(truncate(&row.name, usize::from(name_width)).into_owned()),
        Column::Environment => Cell::from(truncate(&row.environment, width).into_owned())
            .style(environment_style(&row.environment, theme)),
        Column::Backend => Cell::from(backend_name(row.backend)),
        Column::Status => Cell::from(row.status.as_str()).style(status_style(row.status, theme)),
        Column::Health => Cell::from(row.health.to_string()).style(health_style(row.health, theme)),
        Column::Ready => {
            Cell::from(format!("{}/{}", row.ready, row.desired)).style(ready_style(row, theme))
        }
        Column::Autoscale => match row.autoscaling {
            Some(range) => {
                Cell::from(truncate(&format!("{}..{}", range.min, range.max), width).into_owned())
                    .style(theme.accent)
            }
            None => Cell::from("-").style(theme.muted),
        },
        Column::Revision => Cell::from(row.revision.to_string()),
        Column::Version => Cell::from(truncate(&row.version, width).into_owned()),
        Column::Cpu => metric_cell(
            metrics
                .and_then(|m| m.cpu_percent)
                .map(|value| format!("{value:.1}%")),
            theme,
        ),
        Column::Memory => metric_cell(
            metrics.and_then(|m| m.memory_bytes).map(format_bytes),
            theme,
        ),
        Column::Requests => metric_cell(
            metrics.and_then(|m| m.requests_per_second).map(format_rate),
            theme,
        ),
        Column::Age => Cell::from(format_age(now - row.created_at)),
        Column::Trend => Cell::from(sparkline(
            metrics.map_or(&[][..], |m| &m.cpu_history),
            usize::from(TREND_WIDTH),
        ))
        .style(theme.accent),
    }
}

fn metric_cell<'a>(text: Option<String>, theme: &Theme) -> Cell<'a> {
    match text {
        Some(text) => Cell::from(text),
        None => Cell::from("-").style(theme.muted),
    }
}

fn ready_style(row: &DeploymentRow, theme: &Theme) -> Style {
    if row.desired == 0 {
        theme.muted
    } else if row.ready >= row.desired {
        theme.ok
    } else if row.ready == 0 {
        theme.error
    } else {
        theme.warning
    }
}

fn backend_name(backend: BackendKind) -> &'static str {
    match backend {
        BackendKind::Process => "process",
        BackendKind::Docker => "docker",
        BackendKind::Kubernetes => "kubernetes",
    }
}

/// Formats bytes in binary units with at most four digits: `512K`, `1.5G`.
pub(super) fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 && unit > 0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

fn format_rate(rate: f64) -> String {
    if rate >= 1000.0 {
        format!("{:.1}k", rate / 1000.0)
    } else if rate >= 10.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

/// Draws the last `width` points with block characters on a scale from 0
/// to 100% (or the highest point, when higher), so that two rows compare
/// at a glance. Gaps are blank.
pub(super) fn sparkline(points: &[Option<f64>], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let recent = &points[points.len().saturating_sub(width)..];
    let top = recent.iter().flatten().copied().fold(100.0_f64, f64::max);
    let mut line: String = " ".repeat(width - recent.len());
    for point in recent {
        line.push(match point {
            Some(value) if value.is_finite() => {
                let level = (value.max(0.0) / top * 7.0).round() as usize;
                BARS[level.min(7)]
            }
            _ => ' ',
        });
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_80_and_200() {
        let (narrow, name) = fit_columns(78, false);
        assert_eq!(
            narrow,
            [
                Column::Name,
                Column::Environment,
                Column::Status,
                Column::Health,
                Column::Ready,
                Column::Cpu,
                Column::Memory,
                Column::Age
            ]
        );
        assert!(name >= NAME_MIN);
        let (wide, _) = fit_columns(198, false);
        assert_eq!(wide.len(), COLUMNS.len() - 1);
        let (tiny, name) = fit_columns(10, false);
        assert_eq!(tiny, [Column::Name, Column::Status]);
        assert_eq!(name, NAME_MIN);
    }

    #[test]
    fn autoscale_column_replaces_age_at_80() {
        let (narrow, _) = fit_columns(78, true);
        assert_eq!(
            narrow,
            [
                Column::Name,
                Column::Environment,
                Column::Status,
                Column::Health,
                Column::Ready,
                Column::Autoscale,
                Column::Cpu,
                Column::Memory,
            ]
        );
        let (wide, _) = fit_columns(198, true);
        assert_eq!(wide.len(), COLUMNS.len());
    }

    #[test]
    fn sparkline_scales_and_pads() {
        assert_eq!(sparkline(&[Some(0.0), Some(50.0), Some(100.0)], 5), "  ▁▅█");
        assert_eq!(sparkline(&[None, Some(200.0), Some(100.0)], 3), " █▅");
        assert_eq!(sparkline(&[], 3), "   ");
    }

    #[test]
    fn bytes_and_rates() {
        assert_eq!(format_bytes(512.0), "512B");
        assert_eq!(format_bytes(1536.0), "1.5K");
        assert_eq!(format_bytes(300.0 * 1024.0 * 1024.0), "300M");
        assert_eq!(format_rate(3.25), "3.2");
        assert_eq!(format_rate(1234.0), "1.2k");
    }
}
