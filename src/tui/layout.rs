//! Screen geometry shared by the state (which must know how many rows a
//! page has, and which rows are visible) and the views (which draw there).

use ratatui::layout::{Constraint, Layout, Rect};

/// Below this many columns the layout does not fit; a message says so.
pub const MIN_WIDTH: u16 = 60;
/// Below this many rows the layout does not fit; a message says so.
pub const MIN_HEIGHT: u16 = 15;

/// Rows of the header: agent, counts, and the status line.
const HEADER_ROWS: u16 = 3;
/// Rows of the alerts pane when shown, borders included, at most.
const ALERTS_ROWS: u16 = 10;

/// Areas of the dashboard's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub table: Rect,
    pub alerts: Option<Rect>,
    pub footer: Rect,
}

/// Returns whether an area of `width` × `height` fits the dashboard.
pub fn fits(width: u16, height: u16) -> bool {
    width >= MIN_WIDTH && height >= MIN_HEIGHT
}

impl Areas {
    /// Splits `area`; the caller checks [`fits`] first.
    pub fn new(area: Rect, alerts_shown: bool) -> Self {
        let [header, body, footer] = Layout::vertical([
            Constraint::Length(HEADER_ROWS),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        if !alerts_shown {
            return Self {
                header,
                table: body,
                alerts: None,
                footer,
            };
        }
        let alerts_rows = ALERTS_ROWS.min(body.height / 2);
        let [table, alerts] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(alerts_rows)]).areas(body);
        Self {
            header,
            table,
            alerts: Some(alerts),
            footer,
        }
    }

    /// Data rows the deployments table shows: its height less the two
    /// borders and the column header.
    pub fn table_rows(&self) -> usize {
        usize::from(self.table.height.saturating_sub(3))
    }

    /// Data rows the alerts pane shows: its height less the two borders.
    pub fn alert_rows(&self) -> usize {
        self.alerts
            .map_or(0, |area| usize::from(area.height.saturating_sub(2)))
    }
}

/// Where the parts of the detail view go inside the body of the screen:
/// a row of tab titles over the bordered content of the tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailAreas {
    pub tabs: Rect,
    pub content: Rect,
}

impl DetailAreas {
    pub fn new(body: Rect) -> Self {
        let [tabs, content] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
        Self { tabs, content }
    }

    /// Rows inside the content's borders.
    pub fn inner_rows(&self) -> usize {
        usize::from(self.content.height.saturating_sub(2))
    }

    /// Rows of log lines in the logs tab: inner rows less its status line.
    pub fn logs_rows(&self) -> usize {
        self.inner_rows().saturating_sub(1)
    }

    /// Columns inside the content's borders.
    pub fn logs_columns(&self) -> usize {
        usize::from(self.content.width.saturating_sub(2))
    }

    /// Data rows of a table in the content: inner rows less its header.
    pub fn table_rows(&self) -> usize {
        self.inner_rows().saturating_sub(1)
    }

    /// Splits the history tab into the revisions table (two fifths) over
    /// the spec diff.
    pub fn history(&self) -> (Rect, Rect) {
        let [list, diff] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Min(0)]).areas(self.content);
        (list, diff)
    }

    /// Data rows of the revisions table: its height less the borders and
    /// the header.
    pub fn history_rows(&self) -> usize {
        usize::from(self.history().0.height.saturating_sub(3))
    }

    /// Lines of the diff inside its borders.
    pub fn diff_rows(&self) -> usize {
        usize::from(self.history().1.height.saturating_sub(2))
    }
}

/// Returns a centred rectangle of `percent_x` × `percent_y` of `area`, for popups.
pub fn centered(area: Rect, percent_x: u16, percent_y: u16) -> Rect {
    let width = area.width * percent_x / 100;
    let height = area.height * percent_y / 100;
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_at_80_by_24() {
        let areas = Areas::new(Rect::new(0, 0, 80, 24), false);
        assert_eq!(areas.table_rows(), 17);
        let with_alerts = Areas::new(Rect::new(0, 0, 80, 24), true);
        assert_eq!(with_alerts.alert_rows(), 8);
        assert_eq!(with_alerts.table_rows(), 7);
    }

    #[test]
    fn tiny_areas_do_not_underflow() {
        let areas = Areas::new(Rect::new(0, 0, 0, 0), true);
        assert_eq!(areas.table_rows(), 0);
        assert_eq!(areas.alert_rows(), 0);
        assert_eq!(
            centered(Rect::new(0, 0, 0, 0), 70, 70),
            Rect::new(0, 0, 0, 0)
        );
    }
}
