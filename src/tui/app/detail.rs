//! State of the detail view of one deployment: the tab on screen, the data
//! each tab last received from the worker, and the selections and scroll
//! positions. Texts stay as the agent sent them; the view sanitises each one
//! where it draws it.

use std::collections::BTreeMap;

use crate::autoscale::{AutoscaleSource, AutoscaleView};
use crate::model::{
    AlertRuleView, DeploymentKey, DeploymentView, Event, HealthView, HistoryEntry, Revision,
    SeriesView,
};
use crate::monitor::alerts::{AlertView, SilenceView};
use crate::tui::action::Command;

use super::list::ListCursor;
use super::logs::LogsState;

/// Series the metrics tab charts, in the order it draws them.
pub const DETAIL_SERIES: [&str; 6] = [
    "cpu_percentage",
    "memory_usage",
    "network_bytes_in",
    "network_bytes_out",
    "requests_per_second",
    "response_time_p95",
];

/// Events the overview lists; the timeline reads them all.
pub const RECENT_EVENTS: usize = 20;

/// The tabs, in the order Tab cycles through them and number keys select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetailTab {
    Overview,
    Metrics,
    History,
    Alerts,
    Timeline,
    Logs,
    Autoscale,
}

impl DetailTab {
    pub const ALL: [DetailTab; 7] = [
        Self::Overview,
        Self::Metrics,
        Self::History,
        Self::Alerts,
        Self::Timeline,
        Self::Logs,
        Self::Autoscale,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Overview => "overview",
            Self::Metrics => "metrics",
            Self::History => "history",
            Self::Alerts => "alerts",
            Self::Timeline => "timeline",
            Self::Logs => "logs",
            Self::Autoscale => "autoscale",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|tab| *tab == self).unwrap_or(0)
    }

    fn next(self) -> Self {
        Self::ALL[(self.index() + 1) % Self::ALL.len()]
    }

    fn previous(self) -> Self {
        Self::ALL[(self.index() + Self::ALL.len() - 1) % Self::ALL.len()]
    }
}

/// The time span the metrics tab shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricsWindow {
    #[default]
    FiveMinutes,
    OneHour,
    OneDay,
}

impl MetricsWindow {
    pub fn label(self) -> &'static str {
        match self {
            Self::FiveMinutes => "5m",
            Self::OneHour => "1h",
            Self::OneDay => "24h",
        }
    }

    /// Returns the `since` and `step` query parameters. The steps give 30, 60 and
    /// 96 points, so that a chart in a 200-column terminal shows each
    /// window whole, and the shortest step equals the default ten-second
    /// collection interval.
    pub fn query(self) -> &'static str {
        match self {
            Self::FiveMinutes => "since=5m&step=10s",
            Self::OneHour => "since=1h&step=1m",
            Self::OneDay => "since=24h&step=15m",
        }
    }

    fn next(self) -> Self {
        match self {
            Self::FiveMinutes => Self::OneHour,
            Self::OneHour => Self::OneDay,
            Self::OneDay => Self::FiveMinutes,
        }
    }
}

/// One read for the detail view, sent by the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum DetailData {
    // Boxed, as is the revision, so that every action stays small.
    Deployment(Box<DeploymentView>),
    Health(HealthView),
    /// The newest [`RECENT_EVENTS`] events, newest first.
    RecentEvents(Vec<Event>),
    Metrics {
        window: MetricsWindow,
        series: Vec<SeriesView>,
    },
    History(Vec<HistoryEntry>),
    Revision(Box<Revision>),
    AlertRules(Vec<AlertRuleView>),
    Alerts(Vec<AlertView>),
    Silences(Vec<SilenceView>),
    /// Every stored event of the deployment, newest first.
    Timeline(Vec<Event>),
    Autoscale(Box<AutoscaleView>),
    /// A read that the agent rejected with an error, such as one for a
    /// deployment removed since the view opened.
    Failed {
        what: String,
        message: String,
    },
}

/// The reads the worker repeats every second while the detail view is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailRequest {
    pub key: DeploymentKey,
    pub tab: DetailTab,
    pub window: MetricsWindow,
    /// Revisions whose spec is needed and not yet held. A revision's spec
    /// never changes, so each one is read once.
    pub revisions: Vec<u64>,
    /// Whether autoscaling is on, as the deployments list last reported.
    /// The autoscale tab reads nothing while it is off.
    pub autoscaled: bool,
}

/// One line of a spec diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub change: similar::ChangeTag,
    pub text: String,
}

/// The two revisions a diff compares and its lines, older revision first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecDiff {
    pub from: u64,
    pub to: u64,
    pub lines: Vec<DiffLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DetailState {
    pub key: DeploymentKey,
    pub tab: DetailTab,
    pub window: MetricsWindow,
    pub deployment: Option<DeploymentView>,
    pub health: Option<HealthView>,
    pub recent_events: Option<Vec<Event>>,
    /// Series for [`DetailState::window`]; `None` until they arrive.
    pub metrics: Option<Vec<SeriesView>>,
    /// Revisions, newest first, as the agent lists them.
    pub history: Option<Vec<HistoryEntry>>,
    pub history_cursor: ListCursor,
    /// The revision marked to compare with the selected one.
    pub marked: Option<u64>,
    /// Specs read so far, by revision number.
    pub revisions: BTreeMap<u64, Revision>,
    pub diff: Option<SpecDiff>,
    pub diff_scroll: usize,
    pub alert_rules: Option<Vec<AlertRuleView>>,
    pub alert_states: Option<Vec<AlertView>>,
    pub silences: Option<Vec<SilenceView>>,
    pub timeline: Option<Vec<Event>>,
    pub timeline_cursor: ListCursor,
    /// The autoscaling with its decisions newest first; `None` until read,
    /// and again once autoscaling is off.
    pub autoscale: Option<AutoscaleView>,
    /// First row shown of the overview, the alerts and the autoscale tab.
    pub overview_scroll: usize,
    pub alerts_scroll: usize,
    pub autoscale_scroll: usize,
    /// The last failed read, until a read succeeds.
    pub error: Option<String>,
    /// The replica selected in the overview, the target of a restart.
    pub replica_cursor: usize,
    /// The rule or silence selected in the alerts tab: rules first, then
    /// silences.
    pub alerts_cursor: usize,
    pub logs: LogsState,
}

impl DetailState {
    pub fn new(key: DeploymentKey) -> Self {
        Self {
            key,
            tab: DetailTab::Overview,
            window: MetricsWindow::default(),
            deployment: None,
            health: None,
            recent_events: None,
            metrics: None,
            history: None,
            history_cursor: ListCursor::default(),
            marked: None,
            revisions: BTreeMap::new(),
            diff: None,
            diff_scroll: 0,
            alert_rules: None,
            alert_states: None,
            silences: None,
            timeline: None,
            timeline_cursor: ListCursor::default(),
            autoscale: None,
            overview_scroll: 0,
            alerts_scroll: 0,
            autoscale_scroll: 0,
            error: None,
            replica_cursor: 0,
            alerts_cursor: 0,
            logs: LogsState::new(),
        }
    }

    /// Returns the revision selected in the history tab, the target of a
    /// rollback.
    pub fn selected_revision(&self) -> Option<u64> {
        let history = self.history.as_ref()?;
        history
            .get(self.history_cursor.selected)
            .map(|entry| entry.revision)
    }

    /// Returns what the worker should read for the tab on screen.
    pub fn request(&self) -> DetailRequest {
        let mut revisions = Vec::new();
        let mut want = |number: u64| {
            if !self.revisions.contains_key(&number) && !revisions.contains(&number) {
                revisions.push(number);
            }
        };
        match self.tab {
            DetailTab::Overview => {
                if let Some(deployment) = &self.deployment {
                    want(deployment.revision);
                }
            }
            DetailTab::History => match (self.marked, self.selected_revision()) {
                (Some(marked), Some(selected)) if marked != selected => {
                    want(marked);
                    want(selected);
                }
                _ => {}
            },
            _ => {}
        }
        DetailRequest {
            key: self.key.clone(),
            tab: self.tab,
            window: self.window,
            revisions,
            // The state does not see the deployments list, so the app
            // sets this from it.
            autoscaled: true,
        }
    }

    /// Stores one read; returns whether anything changed.
    pub fn receive(&mut self, data: DetailData) -> bool {
        if let DetailData::Failed { what, message } = data {
            let error = format!("reading {what} failed: {message}");
            return replace(&mut self.error, error);
        }
        let cleared = self.error.take().is_some();
        let changed = self.store(data);
        self.clamp_selections();
        cleared || changed
    }

    fn store(&mut self, data: DetailData) -> bool {
        match data {
            DetailData::Failed { .. } => false,
            DetailData::Deployment(view) => replace(&mut self.deployment, *view),
            DetailData::Health(view) => replace(&mut self.health, view),
            DetailData::RecentEvents(events) => replace(&mut self.recent_events, events),
            DetailData::Metrics { window, series } => {
                window == self.window && replace(&mut self.metrics, series)
            }
            DetailData::History(entries) => {
                let changed = replace(&mut self.history, entries);
                self.history_cursor.clamp(self.history_len(), 0);
                let diff_changed = self.update_diff();
                changed || diff_changed
            }
            DetailData::Revision(revision) => {
                let changed = self.revisions.get(&revision.revision) != Some(&*revision);
                self.revisions.insert(revision.revision, *revision);
                let diff_changed = self.update_diff();
                changed || diff_changed
            }
            DetailData::AlertRules(rules) => replace(&mut self.alert_rules, rules),
            DetailData::Alerts(alerts) => replace(&mut self.alert_states, alerts),
            DetailData::Silences(silences) => replace(&mut self.silences, silences),
            DetailData::Timeline(events) => {
                let changed = replace(&mut self.timeline, events);
                let len = self.timeline.as_ref().map_or(0, Vec::len);
                self.timeline_cursor.clamp(len, 0);
                changed
            }
            DetailData::Autoscale(view) => replace(&mut self.autoscale, *view),
        }
    }

    /// Applies a detail command, with `page` rows in the tab's list;
    /// returns whether anything changed.
    pub fn command(&mut self, command: Command, page: usize) -> bool {
        match command {
            Command::NextTab => self.show(self.tab.next()),
            Command::PreviousTab => self.show(self.tab.previous()),
            Command::ShowOverview => self.show(DetailTab::Overview),
            Command::ShowMetrics => self.show(DetailTab::Metrics),
            Command::ShowHistory => self.show(DetailTab::History),
            Command::ShowAlerts => self.show(DetailTab::Alerts),
            Command::ShowTimeline => self.show(DetailTab::Timeline),
            Command::ShowAutoscale => self.show(DetailTab::Autoscale),
            Command::NextWindow => self.next_window(),
            Command::MarkRevision => self.toggle_mark(),
            Command::ScrollDiffDown => self.scroll_diff(1, page),
            Command::ScrollDiffUp => self.scroll_diff(-1, page),
            movement => self.move_in_tab(movement, page),
        }
    }

    /// Shows `tab`; returns whether it was not shown already.
    pub fn show_tab(&mut self, tab: DetailTab) -> bool {
        self.show(tab)
    }

    fn show(&mut self, tab: DetailTab) -> bool {
        let changed = self.tab != tab;
        self.tab = tab;
        changed
    }

    /// Switches the metrics window; the series of the old window go, so
    /// that no chart shows one window's data under another's label.
    fn next_window(&mut self) -> bool {
        if self.tab != DetailTab::Metrics {
            return false;
        }
        self.window = self.window.next();
        self.metrics = None;
        true
    }

    /// Marks the selected revision, or unmarks it when it is the marked one.
    fn toggle_mark(&mut self) -> bool {
        if self.tab != DetailTab::History {
            return false;
        }
        let Some(selected) = self.selected_revision() else {
            return false;
        };
        self.marked = if self.marked == Some(selected) {
            None
        } else {
            Some(selected)
        };
        self.update_diff();
        true
    }

    fn scroll_diff(&mut self, delta: isize, page: usize) -> bool {
        if self.tab != DetailTab::History {
            return false;
        }
        let len = self.diff.as_ref().map_or(0, |diff| diff.lines.len());
        let before = self.diff_scroll;
        self.diff_scroll = self
            .diff_scroll
            .saturating_add_signed(delta)
            .min(len.saturating_sub(page.max(1)));
        self.diff_scroll != before
    }

    fn move_in_tab(&mut self, command: Command, page: usize) -> bool {
        match self.tab {
            DetailTab::History => {
                let before = self.history_cursor;
                let moved = self.history_cursor.apply(command, self.history_len(), page);
                if moved && before != self.history_cursor {
                    self.update_diff();
                }
                moved
            }
            DetailTab::Timeline => {
                let len = self.timeline.as_ref().map_or(0, Vec::len);
                self.timeline_cursor.apply(command, len, page)
            }
            DetailTab::Overview => {
                if self.move_replica_selection(command, page) {
                    return true;
                }
                let rows = self.overview_rows();
                scroll(&mut self.overview_scroll, command, rows, page)
            }
            DetailTab::Alerts => {
                if self.move_alert_selection(command, page) {
                    return true;
                }
                let rows = self.alerts_rows();
                scroll(&mut self.alerts_scroll, command, rows, page)
            }
            DetailTab::Autoscale => {
                let rows = self.autoscale_rows();
                scroll(&mut self.autoscale_scroll, command, rows, page)
            }
            DetailTab::Metrics => false,
            DetailTab::Logs => {
                let key = self.key.clone();
                self.logs.move_selection(command, &key)
            }
        }
    }

    /// Keeps the selections on screen after the terminal was resized;
    /// `pages` contains the rows of the history list, the diff, the timeline
    /// and the scrolled tabs, in that order.
    pub fn fit(&mut self, pages: [usize; 4]) {
        let [history, diff, timeline, scrolled] = pages;
        self.history_cursor.clamp(self.history_len(), history);
        let timeline_len = self.timeline.as_ref().map_or(0, Vec::len);
        self.timeline_cursor.clamp(timeline_len, timeline);
        let diff_len = self.diff.as_ref().map_or(0, |diff| diff.lines.len());
        self.diff_scroll = self.diff_scroll.min(diff_len.saturating_sub(diff.max(1)));
        let overview_last = self.overview_rows().saturating_sub(scrolled.max(1));
        self.overview_scroll = self.overview_scroll.min(overview_last);
        let alerts_last = self.alerts_rows().saturating_sub(scrolled.max(1));
        self.alerts_scroll = self.alerts_scroll.min(alerts_last);
        let autoscale_last = self.autoscale_rows().saturating_sub(scrolled.max(1));
        self.autoscale_scroll = self.autoscale_scroll.min(autoscale_last);
    }

    /// Forgets what the autoscale tab read once autoscaling is off, so
    /// that turning it on again shows no decisions of the old setting.
    pub fn forget_autoscale(&mut self) {
        self.autoscale_scroll = 0;
        self.autoscale = None;
    }

    fn history_len(&self) -> usize {
        self.history.as_ref().map_or(0, Vec::len)
    }

    /// Returns the rows of the overview, as the view lays them out: the summary, then
    /// one heading and one column header over each table.
    pub fn overview_rows(&self) -> usize {
        let replicas = self
            .deployment
            .as_ref()
            .map_or(0, |view| view.replica_details.len().max(1));
        let checks = self
            .health
            .as_ref()
            .map_or(0, |health| health.checks.len().max(1));
        let events = self
            .recent_events
            .as_ref()
            .map_or(0, |events| events.len().max(1));
        OVERVIEW_SUMMARY_ROWS + 3 * 2 + replicas + checks + events
    }

    /// Returns the rows of the alerts tab: three sections, each a heading, a column
    /// header and its rows (one line when empty).
    pub fn alerts_rows(&self) -> usize {
        let len = |list: Option<usize>| list.unwrap_or(0).max(1);
        3 * 2
            + len(self.alert_rules.as_ref().map(Vec::len))
            + len(self.alert_states.as_ref().map(Vec::len))
            + len(self.silences.as_ref().map(Vec::len))
    }

    /// Returns the rows of the autoscale tab, as the view lays them out.
    /// After the summary come the targets, the conditions and the
    /// decisions, each section under a heading and a column header. A
    /// target with a problem takes two rows, a decision two, and an empty
    /// section one.
    pub fn autoscale_rows(&self) -> usize {
        let Some(view) = &self.autoscale else {
            return 1;
        };
        let problems = view
            .targets
            .iter()
            .filter(|target| {
                view.metrics
                    .iter()
                    .any(|reading| &reading.target == *target && reading.problem.is_some())
            })
            .count();
        let targets = (view.targets.len() + problems).max(1);
        let conditions = view.conditions.len().max(1);
        let decisions = match view.source {
            AutoscaleSource::Cluster => 1,
            AutoscaleSource::Shipdeck => (2 * view.decisions.len()).max(1),
        };
        AUTOSCALE_SUMMARY_ROWS + 3 * 2 + targets + conditions + decisions
    }

    /// Recomputes the diff between the marked and the selected revision
    /// once both specs are held.
    fn update_diff(&mut self) -> bool {
        let diff = match (self.marked, self.selected_revision()) {
            (Some(marked), Some(selected)) if marked != selected => {
                let (from, to) = (marked.min(selected), marked.max(selected));
                match (self.revisions.get(&from), self.revisions.get(&to)) {
                    (Some(old), Some(new)) => Some(spec_diff(old, new)),
                    _ => None,
                }
            }
            _ => None,
        };
        if diff == self.diff {
            return false;
        }
        // Start a few lines above the first change, which a long spec
        // would otherwise push below the pane.
        self.diff_scroll = diff
            .as_ref()
            .and_then(|diff| {
                diff.lines
                    .iter()
                    .position(|line| line.change != similar::ChangeTag::Equal)
            })
            .map_or(0, |first| first.saturating_sub(DIFF_CONTEXT));
        self.diff = diff;
        true
    }
}

/// Unchanged lines shown above the first change when a diff opens.
const DIFF_CONTEXT: usize = 3;

/// Rows of the autoscale tab's summary: the source, the replicas, then a
/// blank row.
pub const AUTOSCALE_SUMMARY_ROWS: usize = 3;

/// Rows of the overview's summary: status, image or command, ports,
/// env names, resources, strategy, endpoints, then a blank row.
pub const OVERVIEW_SUMMARY_ROWS: usize = 8;

fn replace<T: PartialEq>(slot: &mut Option<T>, value: T) -> bool {
    if slot.as_ref() == Some(&value) {
        return false;
    }
    *slot = Some(value);
    true
}

/// Moves a scroll offset over `rows` rows showing `page` at a time.
fn scroll(offset: &mut usize, command: Command, rows: usize, page: usize) -> bool {
    let last = rows.saturating_sub(page.max(1));
    let step = page.max(1);
    let next = match command {
        Command::MoveUp => offset.saturating_sub(1),
        Command::MoveDown => (*offset + 1).min(last),
        Command::PageUp => offset.saturating_sub(step),
        Command::PageDown => (*offset + step).min(last),
        Command::First => 0,
        Command::Last => last,
        _ => return false,
    };
    let changed = next != *offset;
    *offset = next;
    changed
}

/// Diffs two revisions' specs line by line, as the YAML a manifest file
/// would hold. Secrets stay `${SECRET:name}` references because revisions
/// store them so.
pub fn spec_diff(old: &Revision, new: &Revision) -> SpecDiff {
    let before = crate::manifest::to_yaml(&old.spec);
    let after = crate::manifest::to_yaml(&new.spec);
    let lines = similar::TextDiff::from_lines(&before, &after)
        .iter_all_changes()
        .map(|change| DiffLine {
            change: change.tag(),
            text: change.value().trim_end_matches('\n').to_owned(),
        })
        .collect();
    SpecDiff {
        from: old.revision,
        to: new.revision,
        lines,
    }
}

#[cfg(test)]
#[path = "detail_tests.rs"]
mod tests;
