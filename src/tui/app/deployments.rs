//! State of the deployments table: every row the agent listed, the filter
//! and sort that choose and order them, the selection, and each row's
//! recent metrics.

use std::cmp::Ordering;
use std::collections::HashMap;

use time::OffsetDateTime;

use super::filter::Filter;
use super::list::ListCursor;
use crate::manifest::BackendKind;
use crate::model::{
    DeploymentKey, DeploymentStatus, DeploymentView, Health, ReplicaRange, SeriesView,
};
use crate::tui::action::Command;
use crate::tui::sanitize::clean;

/// Series fetched for each visible row.
pub const ROW_SERIES: [&str; 3] = ["cpu_percentage", "memory_usage", "requests_per_second"];

/// One deployment as the table shows it, with every text sanitised.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRow {
    /// The identity as the agent spells it, for requests.
    pub key: DeploymentKey,
    pub name: String,
    pub environment: String,
    pub backend: BackendKind,
    pub status: DeploymentStatus,
    pub health: Health,
    pub ready: u32,
    pub desired: u32,
    /// The range autoscaling keeps the count in, while it is on.
    pub autoscaling: Option<ReplicaRange>,
    pub revision: u64,
    pub version: String,
    pub tags: Vec<String>,
    pub created_at: OffsetDateTime,
}

impl From<&DeploymentView> for DeploymentRow {
    fn from(view: &DeploymentView) -> Self {
        Self {
            key: DeploymentKey::new(&view.name, &view.environment),
            name: clean(&view.name).into_owned(),
            environment: clean(&view.environment).into_owned(),
            backend: view.backend,
            status: view.status,
            health: view.health,
            ready: view.replicas.ready,
            desired: view.replicas.desired,
            autoscaling: view.autoscaling,
            revision: view.revision,
            version: clean(&view.version).into_owned(),
            tags: view
                .tags
                .iter()
                .map(|tag| clean(tag).into_owned())
                .collect(),
            created_at: view.created_at,
        }
    }
}

/// The latest values of a row's series and its CPU history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowMetrics {
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<f64>,
    pub requests_per_second: Option<f64>,
    /// CPU percentage per step, oldest first; `None` for gaps.
    pub cpu_history: Vec<Option<f64>>,
}

impl RowMetrics {
    pub fn from_series(series: &[SeriesView]) -> Self {
        let points = |name: &str| {
            series
                .iter()
                .find(|series| series.name == name)
                .map(|series| &series.points)
        };
        let last = |name: &str| {
            points(name).and_then(|points| points.iter().rev().find_map(|point| point.value))
        };
        Self {
            cpu_percent: last(ROW_SERIES[0]),
            memory_bytes: last(ROW_SERIES[1]),
            requests_per_second: last(ROW_SERIES[2]),
            cpu_history: points(ROW_SERIES[0])
                .map(|points| points.iter().map(|point| point.value).collect())
                .unwrap_or_default(),
        }
    }
}

/// The columns the table sorts by, in the order the sort key cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Name,
    Environment,
    Status,
    Health,
    Ready,
    Revision,
    Cpu,
    Memory,
    Requests,
    Age,
}

impl SortColumn {
    const CYCLE: [SortColumn; 10] = [
        Self::Name,
        Self::Environment,
        Self::Status,
        Self::Health,
        Self::Ready,
        Self::Revision,
        Self::Cpu,
        Self::Memory,
        Self::Requests,
        Self::Age,
    ];

    fn next(self) -> Self {
        let index = Self::CYCLE
            .iter()
            .position(|column| *column == self)
            .unwrap_or(0);
        Self::CYCLE[(index + 1) % Self::CYCLE.len()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: SortColumn,
    pub descending: bool,
}

/// Failures first, then changes in progress, then the settled states.
fn status_rank(status: DeploymentStatus) -> u8 {
    match status {
        DeploymentStatus::Failed => 0,
        DeploymentStatus::Degraded => 1,
        DeploymentStatus::Deploying => 2,
        DeploymentStatus::Building => 3,
        DeploymentStatus::Pending => 4,
        DeploymentStatus::Undeploying => 5,
        DeploymentStatus::Deployed => 6,
        DeploymentStatus::Undeployed => 7,
    }
}

fn health_rank(health: Health) -> u8 {
    match health {
        Health::Unhealthy => 0,
        Health::Unknown => 1,
        Health::Healthy => 2,
    }
}

/// A deployment that appeared, or whose status, revision or scale changed,
/// between two lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub name: String,
    pub environment: String,
    /// `None` for a deployment the previous list did not have.
    pub from: Option<DeploymentStatus>,
    pub to: DeploymentStatus,
    /// Revisions before and after.
    pub revision: (u64, u64),
    /// Desired replicas before and after.
    pub desired: (u32, u32),
}

impl StatusChange {
    /// The toast text. A rollout that finishes between two lists shows
    /// only as a new revision, so that is named too.
    pub fn message(&self) -> String {
        let target = format!("{} ({})", self.name, self.environment);
        let (old_revision, revision) = self.revision;
        let (old_desired, desired) = self.desired;
        match self.from {
            None => format!("{target}: new, {} at revision {revision}", self.to),
            Some(from) if from != self.to => {
                let mut text = format!("{target}: {from} → {}", self.to);
                if revision != old_revision {
                    text.push_str(&format!(" (revision {revision})"));
                }
                text
            }
            Some(_) if revision != old_revision => {
                format!("{target}: revision {revision} {}", self.to)
            }
            Some(_) => format!("{target}: scaled from {old_desired} to {desired} replicas"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentsState {
    rows: Vec<DeploymentRow>,
    /// Indices into `rows` of the rows the filter keeps, in sort order.
    order: Vec<usize>,
    pub cursor: ListCursor,
    selected_key: Option<DeploymentKey>,
    pub sort: Sort,
    pub filter: Filter,
    /// The filter as typed, shown in the status line.
    pub filter_text: String,
    /// Why the typed filter is invalid; the previous valid one stays.
    pub filter_error: Option<String>,
    metrics: HashMap<DeploymentKey, RowMetrics>,
    /// Whether a list arrived since the dashboard started.
    pub loaded: bool,
}

impl Default for DeploymentsState {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            order: Vec::new(),
            cursor: ListCursor::default(),
            selected_key: None,
            sort: Sort {
                column: SortColumn::Name,
                descending: false,
            },
            filter: Filter::default(),
            filter_text: String::new(),
            filter_error: None,
            metrics: HashMap::new(),
            loaded: false,
        }
    }
}

impl DeploymentsState {
    /// Replaces the rows with a fresh list. Returns `None` when nothing
    /// changed, else the status changes (empty for the first list).
    pub fn replace(&mut self, views: &[DeploymentView], page: usize) -> Option<Vec<StatusChange>> {
        let rows: Vec<DeploymentRow> = views.iter().map(DeploymentRow::from).collect();
        if self.loaded && rows == self.rows {
            return None;
        }
        let changes = if self.loaded {
            status_changes(&self.rows, &rows)
        } else {
            Vec::new()
        };
        self.rows = rows;
        self.loaded = true;
        let present: std::collections::HashSet<&DeploymentKey> =
            self.rows.iter().map(|row| &row.key).collect();
        self.metrics.retain(|key, _| present.contains(key));
        self.rebuild(page);
        Some(changes)
    }

    /// Stores a row's metrics; returns whether they changed.
    pub fn set_metrics(&mut self, key: DeploymentKey, series: &[SeriesView]) -> bool {
        if !self.rows.iter().any(|row| row.key == key) {
            return false;
        }
        let metrics = RowMetrics::from_series(series);
        if self.metrics.get(&key) == Some(&metrics) {
            return false;
        }
        self.metrics.insert(key, metrics);
        true
    }

    pub fn metrics(&self, key: &DeploymentKey) -> Option<&RowMetrics> {
        self.metrics.get(key)
    }

    /// Handles a command of the deployments context; returns whether it
    /// changed anything.
    pub fn command(&mut self, command: Command, page: usize) -> bool {
        match command {
            Command::NextSort => self.sort.column = self.sort.column.next(),
            Command::ReverseSort => self.sort.descending = !self.sort.descending,
            Command::ClearFilter if self.filter_text.is_empty() => return false,
            Command::ClearFilter => {
                self.filter_text.clear();
                self.filter = Filter::default();
                self.filter_error = None;
            }
            movement => {
                let moved = self.cursor.apply(movement, self.order.len(), page);
                self.remember_selection();
                return moved;
            }
        }
        self.rebuild(page);
        true
    }

    /// Sets the typed filter; an invalid one keeps the last valid filter
    /// and records why.
    pub fn set_filter_text(&mut self, text: String, page: usize) {
        match Filter::parse(&text) {
            Ok(filter) => {
                self.filter = filter;
                self.filter_error = None;
            }
            Err(error) => self.filter_error = Some(error),
        }
        self.filter_text = text;
        self.rebuild(page);
    }

    /// Recomputes the order and keeps the selected deployment selected.
    pub fn rebuild(&mut self, page: usize) {
        let mut order: Vec<usize> = (0..self.rows.len())
            .filter(|index| self.filter.matches(&self.rows[*index]))
            .collect();
        order.sort_by(|a, b| self.compare(&self.rows[*a], &self.rows[*b]));
        self.order = order;
        if let Some(key) = &self.selected_key {
            if let Some(position) = self
                .order
                .iter()
                .position(|index| self.rows[*index].key == *key)
            {
                self.cursor.selected = position;
            }
        }
        self.cursor.clamp(self.order.len(), page);
        self.remember_selection();
    }

    fn remember_selection(&mut self) {
        self.selected_key = self.selected().map(|row| row.key.clone());
    }

    fn compare(&self, a: &DeploymentRow, b: &DeploymentRow) -> Ordering {
        // NOTE: only the rows on screen have metrics, so a CPU, memory or
        // request sort orders those and puts every other row after them as
        // if it had none.
        let metric = |row: &DeploymentRow, pick: fn(&RowMetrics) -> Option<f64>| {
            self.metrics.get(&row.key).and_then(pick).unwrap_or(-1.0)
        };
        let primary = match self.sort.column {
            SortColumn::Name => Ordering::Equal,
            SortColumn::Environment => a.environment.cmp(&b.environment),
            SortColumn::Status => status_rank(a.status).cmp(&status_rank(b.status)),
            SortColumn::Health => health_rank(a.health).cmp(&health_rank(b.health)),
            SortColumn::Ready => (a.ready, a.desired).cmp(&(b.ready, b.desired)),
            SortColumn::Revision => a.revision.cmp(&b.revision),
            SortColumn::Cpu => {
                metric(a, |m| m.cpu_percent).total_cmp(&metric(b, |m| m.cpu_percent))
            }
            SortColumn::Memory => {
                metric(a, |m| m.memory_bytes).total_cmp(&metric(b, |m| m.memory_bytes))
            }
            SortColumn::Requests => metric(a, |m| m.requests_per_second)
                .total_cmp(&metric(b, |m| m.requests_per_second)),
            // Youngest first reads as "newest", which is what an age sort is for.
            SortColumn::Age => b.created_at.cmp(&a.created_at),
        };
        let ordered = primary
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.environment.cmp(&b.environment));
        if self.sort.descending {
            ordered.reverse()
        } else {
            ordered
        }
    }

    /// Rows the filter keeps.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Returns every row the agent listed.
    pub fn total(&self) -> usize {
        self.rows.len()
    }

    pub fn all(&self) -> &[DeploymentRow] {
        &self.rows
    }

    pub fn selected(&self) -> Option<&DeploymentRow> {
        self.order
            .get(self.cursor.selected)
            .map(|index| &self.rows[*index])
    }

    /// Returns the rows on the page, in order.
    pub fn page(&self, page: usize) -> impl Iterator<Item = &DeploymentRow> {
        self.order[self.cursor.visible(self.order.len(), page)]
            .iter()
            .map(|index| &self.rows[*index])
    }

    /// How many deployments have each status, failures first, leaving out
    /// statuses nobody has.
    pub fn counts(&self) -> Vec<(DeploymentStatus, usize)> {
        let mut statuses = DeploymentStatus::ALL;
        statuses.sort_by_key(|status| status_rank(*status));
        statuses
            .into_iter()
            .map(|status| {
                (
                    status,
                    self.rows.iter().filter(|row| row.status == status).count(),
                )
            })
            .filter(|(_, count)| *count > 0)
            .collect()
    }
}

fn status_changes(before: &[DeploymentRow], after: &[DeploymentRow]) -> Vec<StatusChange> {
    let previous: HashMap<&DeploymentKey, &DeploymentRow> =
        before.iter().map(|row| (&row.key, row)).collect();
    after
        .iter()
        .filter_map(|row| {
            let old = previous.get(&row.key);
            let change = StatusChange {
                name: row.name.clone(),
                environment: row.environment.clone(),
                from: old.map(|old| old.status),
                to: row.status,
                revision: (old.map_or(row.revision, |old| old.revision), row.revision),
                desired: (old.map_or(row.desired, |old| old.desired), row.desired),
            };
            let changed = change.from != Some(change.to)
                || change.revision.0 != change.revision.1
                || change.desired.0 != change.desired.1;
            changed.then_some(change)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::ReplicaCounts;
    use time::macros::datetime;

    pub(crate) fn view(name: &str, environment: &str, status: DeploymentStatus) -> DeploymentView {
        DeploymentView {
            id: format!("{name}-{environment}"),
            name: name.to_owned(),
            environment: environment.to_owned(),
            backend: BackendKind::Process,
            status,
            status_reason: None,
            health: Health::Healthy,
            version: "1.0.0".to_owned(),
            revision: 1,
            replicas: ReplicaCounts {
                desired: 2,
                ready: 2,
            },
            autoscaling: None,
            endpoints: Vec::new(),
            tags: Vec::new(),
            replica_details: Vec::new(),
            metrics_unavailable: None,
            created_at: datetime!(2025-01-01 00:00:00 UTC),
            updated_at: datetime!(2025-01-01 00:00:00 UTC),
        }
    }

    pub(crate) fn row(
        name: &str,
        environment: &str,
        status: DeploymentStatus,
        tags: &[&str],
    ) -> DeploymentRow {
        let mut view = view(name, environment, status);
        view.tags = tags.iter().map(|tag| (*tag).to_owned()).collect();
        DeploymentRow::from(&view)
    }

    fn names(state: &DeploymentsState) -> Vec<String> {
        state.page(100).map(|row| row.name.clone()).collect()
    }

    fn state_of(views: &[DeploymentView]) -> DeploymentsState {
        let mut state = DeploymentsState::default();
        state.replace(views, 10);
        state
    }

    #[test]
    fn identical_list_changes_nothing() {
        let views = [view("web", "staging", DeploymentStatus::Deployed)];
        let mut state = state_of(&views);
        assert_eq!(state.replace(&views, 10), None);
    }

    #[test]
    fn status_changes_are_reported_after_the_first_list() {
        let mut state = DeploymentsState::default();
        let first = state.replace(&[view("web", "staging", DeploymentStatus::Deploying)], 10);
        assert_eq!(first, Some(Vec::new()));
        let changes = state
            .replace(
                &[
                    view("web", "staging", DeploymentStatus::Failed),
                    view("new", "staging", DeploymentStatus::Pending),
                ],
                10,
            )
            .unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].from, Some(DeploymentStatus::Deploying));
        assert_eq!(changes[0].to, DeploymentStatus::Failed);
        assert_eq!(changes[1].from, None, "a new deployment");
        assert_eq!(
            changes[1].message(),
            "new (staging): new, pending at revision 1"
        );

        let mut redeployed = view("web", "staging", DeploymentStatus::Failed);
        redeployed.revision += 1;
        redeployed.replicas.desired += 1;
        let changes = state.replace(&[redeployed], 10).unwrap();
        assert_eq!(changes[0].message(), "web (staging): revision 2 failed");
        let mut scaled = view("web", "staging", DeploymentStatus::Failed);
        scaled.revision += 1;
        scaled.replicas.desired += 2;
        let changes = state.replace(&[scaled], 10).unwrap();
        assert_eq!(
            changes[0].message(),
            "web (staging): scaled from 3 to 4 replicas"
        );
    }

    #[test]
    fn sort_cycles_and_reverses() {
        let mut state = state_of(&[
            view("b", "production", DeploymentStatus::Deployed),
            view("a", "staging", DeploymentStatus::Failed),
            view("c", "development", DeploymentStatus::Degraded),
        ]);
        assert_eq!(names(&state), ["a", "b", "c"]);
        state.command(Command::NextSort, 10);
        assert_eq!(state.sort.column, SortColumn::Environment);
        assert_eq!(names(&state), ["c", "b", "a"]);
        state.command(Command::NextSort, 10);
        assert_eq!(names(&state), ["a", "c", "b"], "failed, degraded, deployed");
        state.command(Command::ReverseSort, 10);
        assert_eq!(names(&state), ["b", "c", "a"]);
        for _ in 0..8 {
            state.command(Command::NextSort, 10);
        }
        assert_eq!(state.sort.column, SortColumn::Name, "the cycle wraps");
    }

    #[test]
    fn selection_follows_the_deployment_across_reorders() {
        let mut state = state_of(&[
            view("a", "staging", DeploymentStatus::Deployed),
            view("b", "staging", DeploymentStatus::Deployed),
        ]);
        state.command(Command::MoveDown, 10);
        assert_eq!(state.selected().unwrap().name, "b");
        state.command(Command::ReverseSort, 10);
        assert_eq!(state.selected().unwrap().name, "b");
        assert_eq!(state.cursor.selected, 0);
    }

    #[test]
    fn invalid_filter_keeps_the_last_valid_one() {
        let mut state = state_of(&[
            view("web", "staging", DeploymentStatus::Deployed),
            view("api", "production", DeploymentStatus::Failed),
        ]);
        state.set_filter_text("env:staging".to_owned(), 10);
        assert_eq!(names(&state), ["web"]);
        state.set_filter_text("env:staging status:wat".to_owned(), 10);
        assert!(state.filter_error.is_some());
        assert_eq!(names(&state), ["web"]);
        state.command(Command::ClearFilter, 10);
        assert_eq!(names(&state), ["api", "web"]);
    }

    #[test]
    fn metrics_of_unknown_rows_are_ignored() {
        let mut state = state_of(&[view("web", "staging", DeploymentStatus::Deployed)]);
        assert!(!state.set_metrics(DeploymentKey::new("gone", "staging"), &[]));
        assert!(state.set_metrics(DeploymentKey::new("web", "staging"), &[]));
        assert!(
            !state.set_metrics(DeploymentKey::new("web", "staging"), &[]),
            "unchanged"
        );
    }
}
