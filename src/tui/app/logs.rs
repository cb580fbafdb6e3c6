//! State of the detail view's logs tab: what the operator chose to see (the
//! settings and the search), the window of lines held, and the reads it
//! needs from the agent.
//!
//! The agent filters (replica, level, and in filter mode the search with
//! its context), because the filter applies to the whole stored history
//! and only a window of it is held here. The search highlights and
//! navigates here, over the lines held, and asks the agent for the next
//! match beyond them. Every read carries the generation of the settings it
//! was made for, so that a page that arrives after the settings changed
//! is dropped rather than mixed in.

use std::path::PathBuf;

use crate::logs::{Level, LogEntry};
use crate::model::DeploymentKey;
use crate::tui::action::Command;

pub use super::logs_command::LogsCommand;
pub use super::logs_requests::{
    FetchKind, LogsData, LogsEffect, LogsFetch, LogsQuery, LogsSave, LogsWatch,
};
use super::logs_search::Search;
use super::logs_window::{LogWindow, Select, Viewport, PAGE_LINES, PREFETCH_LINES};

/// Context lines the operator can ask for around each match.
pub const MAX_CONTEXT_LINES: usize = 20;

/// Cells of a time in the time column: `03-01 12:00:00.123`.
pub const TIME_WIDTH: usize = 18;

/// Cells of the level column: the longest level name.
pub const LEVEL_WIDTH: usize = 5;

/// The operator's choice of what to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsSettings {
    /// One replica's index, or every replica.
    pub replica: Option<u32>,
    pub min_level: Level,
    /// New searches are regular expressions rather than plain text.
    pub regex: bool,
    /// Filter mode: only the lines that match, with context around each.
    pub filter: bool,
    pub invert: bool,
    pub context: usize,
    pub wrap: bool,
    pub timestamps: bool,
    pub utc: bool,
}

impl Default for LogsSettings {
    fn default() -> Self {
        Self {
            replica: None,
            min_level: Level::Trace,
            regex: false,
            filter: false,
            invert: false,
            context: 2,
            wrap: false,
            timestamps: true,
            utc: true,
        }
    }
}

/// Reads in flight, so that none is sent twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Pending {
    older: Option<u64>,
    newer: Option<u64>,
    jump: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogsState {
    pub settings: LogsSettings,
    /// The search being typed or last accepted, which highlights.
    pub search: Option<Search>,
    /// The search the agent filters by in filter mode, as last accepted.
    pub filter_search: Option<Search>,
    pub window: LogWindow,
    pub following: bool,
    /// Lines that arrived while the follow was paused.
    pub unseen: u64,
    /// Lines the follow lost since the last reload.
    pub missed: u64,
    /// Waiting for the first lines of the current settings.
    pub loading: bool,
    /// A short note for the status line, until the next command.
    pub notice: Option<String>,
    /// The last failed read, until a read succeeds.
    pub error: Option<String>,
    /// The path being saved to.
    pub saving: Option<PathBuf>,
    pub generation: u64,
    pub viewport: Viewport,
    pending: Pending,
    requests: Vec<LogsEffect>,
    /// The search before `/` opened the input, restored on cancel.
    search_before: Option<Option<Search>>,
    /// Replica indices of every line received, which `c` cycles through
    /// even after a reload emptied the window.
    replicas_seen: std::collections::BTreeSet<u32>,
}

impl Default for LogsState {
    fn default() -> Self {
        Self::new()
    }
}

impl LogsState {
    pub fn new() -> Self {
        Self {
            settings: LogsSettings::default(),
            search: None,
            filter_search: None,
            window: LogWindow::default(),
            following: true,
            unseen: 0,
            missed: 0,
            loading: true,
            notice: None,
            error: None,
            saving: None,
            generation: 1,
            viewport: Viewport::default(),
            pending: Pending::default(),
            requests: Vec::new(),
            search_before: None,
            replicas_seen: std::collections::BTreeSet::new(),
        }
    }

    /// Returns the conditions the agent applies now.
    pub fn query(&self) -> LogsQuery {
        let filter = self
            .filter_search
            .as_ref()
            .filter(|search| self.settings.filter && search.is_valid());
        LogsQuery {
            replica: self.settings.replica,
            level: (self.settings.min_level > Level::Trace).then_some(self.settings.min_level),
            search: filter.map(|search| search.text.clone()),
            regex: filter.is_some_and(|search| search.regex),
            invert: filter.is_some() && self.settings.invert,
            context: if filter.is_some() {
                self.settings.context
            } else {
                0
            },
        }
    }

    /// Returns whether the agent filters by the search now.
    pub fn filtering(&self) -> bool {
        self.query().search.is_some()
    }

    pub fn watch(&self, key: &DeploymentKey) -> LogsWatch {
        LogsWatch {
            key: key.clone(),
            query: self.query(),
            generation: self.generation,
        }
    }

    /// Takes the reads asked for since the last call.
    pub fn take_requests(&mut self) -> Vec<LogsEffect> {
        std::mem::take(&mut self.requests)
    }

    /// Sets the area the lines are drawn in, from the terminal's size.
    pub fn set_area(&mut self, rows: usize, columns: usize) {
        self.viewport.rows = rows;
        self.viewport.columns = columns;
        self.refit();
    }

    /// Cells before each line's text: time, source and level columns.
    pub fn prefix_width(&self) -> usize {
        let time = if self.settings.timestamps {
            TIME_WIDTH + 1
        } else {
            0
        };
        time + self.window.source_width + 1 + LEVEL_WIDTH + 1
    }

    fn refit(&mut self) {
        self.viewport.prefix = self.prefix_width();
        self.viewport.wrap = self.settings.wrap;
        self.window.keep_visible(&self.viewport);
    }

    /// Stores one read; returns whether anything on screen changed.
    pub fn receive(&mut self, data: LogsData, key: &DeploymentKey) -> bool {
        let generation = match &data {
            LogsData::Tail { generation, .. }
            | LogsData::Live { generation, .. }
            | LogsData::Missed { generation, .. }
            | LogsData::Page { generation, .. }
            | LogsData::Around { generation, .. }
            | LogsData::NotFound { generation, .. }
            | LogsData::Failed { generation, .. } => Some(*generation),
            LogsData::Saved { .. } => None,
        };
        if generation.is_some_and(|generation| generation != self.generation) {
            return false;
        }
        if !matches!(data, LogsData::Failed { .. } | LogsData::Saved { .. }) {
            self.error = None;
        }
        self.note_replicas(&data);
        match data {
            LogsData::Tail { entries, .. } => self.on_tail(&entries),
            LogsData::Live { entries, .. } => self.on_live(&entries),
            LogsData::Missed { count, .. } => self.on_missed(count, key),
            LogsData::Page { kind, entries, .. } => self.on_page(&kind, &entries, key),
            LogsData::Around { before, after, .. } => self.on_around(&before, &after, key),
            LogsData::NotFound { kind, .. } => {
                self.pending.jump = false;
                self.notice = Some(match kind {
                    FetchKind::FindPrevious { .. } => "no earlier match".to_owned(),
                    _ => "no later match".to_owned(),
                });
            }
            LogsData::Failed { message, .. } => {
                self.pending = Pending::default();
                self.loading = false;
                self.error = Some(message);
            }
            LogsData::Saved { .. } => self.saving = None,
        }
        true
    }

    fn on_tail(&mut self, entries: &[LogEntry]) {
        if !self.following {
            // Paused: the operator reads older lines; the stream only
            // counts what arrives from now on.
            return;
        }
        self.loading = false;
        let at_start = entries.len() < PAGE_LINES;
        self.window.replace(entries, at_start, true, Select::Last);
        self.refit();
    }

    fn on_live(&mut self, entries: &[LogEntry]) {
        if entries.is_empty() {
            return;
        }
        if self.following {
            self.window.append(entries, true);
            let last = self.window.len().saturating_sub(1);
            self.window.selected = last;
            self.refit();
        } else {
            self.unseen += entries.len() as u64;
            self.window.at_end = false;
        }
    }

    fn on_missed(&mut self, count: u64, key: &DeploymentKey) {
        self.missed += count;
        self.notice = Some(format!(
            "skipped {count} lines that arrived faster than the dashboard read them"
        ));
        if self.following {
            // The window has a hole now; the newest page fills it.
            self.reload(key);
        }
    }

    fn on_page(&mut self, kind: &FetchKind, entries: &[LogEntry], key: &DeploymentKey) {
        let full = entries.len() >= PAGE_LINES;
        match kind {
            FetchKind::Older { before } => {
                self.pending.older = None;
                if self.window.first_id() == Some(*before) {
                    self.window.prepend(entries, !full);
                }
            }
            FetchKind::Newer { after } => {
                self.pending.newer = None;
                if self.window.last_id() == Some(*after) {
                    self.window.append(entries, !full);
                }
            }
            FetchKind::First => {
                self.pending.jump = false;
                self.loading = false;
                self.window.replace(entries, true, !full, Select::First);
            }
            FetchKind::Around { .. }
            | FetchKind::FindNext { .. }
            | FetchKind::FindPrevious { .. } => {}
        }
        self.refit();
        self.prefetch(key);
    }

    fn on_around(&mut self, before: &[LogEntry], after: &[LogEntry], key: &DeploymentKey) {
        self.pending.jump = false;
        self.loading = false;
        let half = PAGE_LINES / 2;
        let target = after.first().or(before.last()).map(|entry| entry.id);
        let entries: Vec<LogEntry> = before.iter().chain(after).cloned().collect();
        let select = target.map_or(Select::Last, Select::Id);
        self.window
            .replace(&entries, before.len() < half, after.len() < half, select);
        self.refit();
        self.window.center(&self.viewport);
        self.prefetch(key);
    }

    /// Applies a movement command; returns whether it was one.
    pub fn move_selection(&mut self, command: Command, key: &DeploymentKey) -> bool {
        self.notice = None;
        match command {
            Command::First => {
                self.following = false;
                if self.window.at_start {
                    self.window.move_selection(command, &self.viewport);
                } else {
                    self.jump(key, FetchKind::First);
                }
                true
            }
            Command::Last => {
                self.resume(key);
                true
            }
            Command::MoveUp | Command::PageUp => {
                self.following = false;
                self.window.move_selection(command, &self.viewport);
                self.prefetch(key);
                true
            }
            Command::MoveDown | Command::PageDown => {
                self.window.move_selection(command, &self.viewport);
                self.prefetch(key);
                true
            }
            _ => false,
        }
    }

    /// Fetches the next page at an end the selection came close to.
    fn prefetch(&mut self, key: &DeploymentKey) {
        let window = &self.window;
        let near_start = window.selected < PREFETCH_LINES;
        let near_end = window.selected + PREFETCH_LINES >= window.len();
        if near_start && !window.at_start && self.pending.older.is_none() && !self.pending.jump {
            if let Some(before) = window.first_id() {
                self.pending.older = Some(before);
                self.fetch(key, FetchKind::Older { before });
            }
        }
        let window = &self.window;
        let wants_newer = near_end && !window.at_end && !self.following;
        if wants_newer && self.pending.newer.is_none() && !self.pending.jump {
            if let Some(after) = window.last_id() {
                self.pending.newer = Some(after);
                self.fetch(key, FetchKind::Newer { after });
            }
        }
    }

    fn fetch(&mut self, key: &DeploymentKey, kind: FetchKind) {
        self.requests.push(LogsEffect::Fetch(LogsFetch {
            key: key.clone(),
            query: self.query(),
            generation: self.generation,
            kind,
        }));
    }

    /// Replaces the window by a page the agent reads for `kind`.
    fn jump(&mut self, key: &DeploymentKey, kind: FetchKind) {
        self.pending = Pending {
            jump: true,
            ..Pending::default()
        };
        self.fetch(key, kind);
    }

    /// Follows again from the newest line.
    pub fn resume(&mut self, key: &DeploymentKey) {
        let caught_up = self.window.at_end && self.unseen == 0 && !self.pending.jump;
        self.following = true;
        self.unseen = 0;
        if caught_up && !self.window.is_empty() {
            let last = self.window.len() - 1;
            self.window.select(last, &self.viewport);
        } else {
            self.reload(key);
        }
    }

    /// Pauses the follow, or resumes it.
    pub fn toggle_follow(&mut self, key: &DeploymentKey) {
        if self.following {
            self.following = false;
            self.unseen = 0;
        } else {
            self.resume(key);
        }
    }

    /// Starts over with the current settings: from the newest line when
    /// following, else around the selected line.
    pub fn reload(&mut self, key: &DeploymentKey) {
        self.generation += 1;
        self.pending = Pending::default();
        self.missed = 0;
        self.loading = true;
        let anchor = self.window.selected_line().map(|line| line.id);
        self.window = LogWindow::default();
        match anchor {
            Some(id) if !self.following => self.jump(key, FetchKind::Around { id }),
            // The new generation's stream brings the newest page.
            _ => self.following = true,
        }
    }

    /// Opens the search input; the previous search comes back on cancel.
    pub fn start_search(&mut self) {
        self.search_before = Some(self.search.clone());
    }

    /// Replaces the search being typed; the highlight follows at once.
    pub fn edit_search(&mut self, text: &str) {
        self.search = Some(Search::new(text, self.settings.regex));
    }

    /// Restores the search from before the input opened.
    pub fn cancel_search(&mut self) {
        if let Some(previous) = self.search_before.take() {
            self.search = previous;
        }
    }

    /// Keeps the typed search: the filter takes it, and the selection
    /// moves to a match (the newest one when following).
    pub fn accept_search(&mut self, key: &DeploymentKey) {
        self.search_before = None;
        if self
            .search
            .as_ref()
            .is_some_and(|search| search.text.is_empty())
        {
            self.search = None;
        }
        self.apply_filter_search(key);
        if self.search.as_ref().is_some_and(Search::is_valid) && !self.filtering() {
            // The selected line counts: following, it is the newest.
            let forward = !self.following;
            self.find_match(forward, true, key);
        }
    }

    /// Hands the search to the agent's filter, when filter mode is on and
    /// the search changed.
    fn apply_filter_search(&mut self, key: &DeploymentKey) {
        let before = self.query();
        self.filter_search = self.search.clone();
        if self.query() != before {
            self.reload(key);
        }
    }

    /// Selects the next (or, with `forward` false, previous) line that
    /// matches the search, asking the agent when none is held.
    pub fn next_match(&mut self, forward: bool, key: &DeploymentKey) {
        self.find_match(forward, false, key);
    }

    /// Selects the nearest match in a direction, from the selected line
    /// itself when `inclusive`.
    fn find_match(&mut self, forward: bool, inclusive: bool, key: &DeploymentKey) {
        self.notice = None;
        let Some(search) = self.search.clone().filter(Search::is_valid) else {
            self.notice = Some("no search: press / to type one".to_owned());
            return;
        };
        let window = &self.window;
        let from = window.selected + usize::from(!inclusive);
        let to = (window.selected + usize::from(inclusive)).min(window.len());
        let found = if forward {
            window.find(from..window.len(), |line| search.is_match(&line.text))
        } else {
            window.find((0..to).rev(), |line| search.is_match(&line.text))
        };
        if let Some(index) = found {
            self.following = false;
            self.window.select(index, &self.viewport);
            self.prefetch(key);
            return;
        }
        let edge = if forward {
            (!window.at_end).then(|| window.last_id()).flatten()
        } else {
            (!window.at_start).then(|| window.first_id()).flatten()
        };
        let Some(edge) = edge else {
            self.notice = Some(if forward {
                "no later match".to_owned()
            } else {
                "no earlier match".to_owned()
            });
            return;
        };
        self.following = false;
        let (text, regex) = (search.text.clone(), search.regex);
        let kind = if forward {
            FetchKind::FindNext {
                after: edge,
                search: text,
                regex,
            }
        } else {
            FetchKind::FindPrevious {
                before: edge,
                search: text,
                regex,
            }
        };
        self.jump(key, kind);
    }

    /// Clears the search and the filter; returns false when there was
    /// neither, so that the key can do what it does elsewhere.
    pub fn clear_search(&mut self, key: &DeploymentKey) -> bool {
        if self.search.is_none() && !self.settings.filter {
            return false;
        }
        self.search = None;
        self.settings.filter = false;
        self.settings.invert = false;
        self.apply_filter_search(key);
        true
    }

    pub fn toggle_regex(&mut self, key: &DeploymentKey) {
        self.settings.regex = !self.settings.regex;
        if let Some(search) = &self.search {
            self.search = Some(Search::new(&search.text, self.settings.regex));
        }
        self.apply_filter_search(key);
    }

    /// Turns filter mode on or off; it needs a valid search.
    pub fn toggle_filter(&mut self, key: &DeploymentKey) {
        if !self.settings.filter && !self.search.as_ref().is_some_and(Search::is_valid) {
            self.notice = Some("type a search with / first".to_owned());
            return;
        }
        self.settings.filter = !self.settings.filter;
        self.filter_search = self.search.clone();
        self.reload(key);
    }

    /// Turns the inverse filter on or off; turning it on turns filter
    /// mode on.
    pub fn toggle_invert(&mut self, key: &DeploymentKey) {
        if !self.settings.invert && !self.search.as_ref().is_some_and(Search::is_valid) {
            self.notice = Some("type a search with / first".to_owned());
            return;
        }
        self.settings.invert = !self.settings.invert;
        if self.settings.invert {
            self.settings.filter = true;
        }
        self.filter_search = self.search.clone();
        self.reload(key);
    }

    /// Changes the context lines by `delta`, within bounds.
    pub fn change_context(&mut self, delta: isize, key: &DeploymentKey) {
        let context = self
            .settings
            .context
            .saturating_add_signed(delta)
            .min(MAX_CONTEXT_LINES);
        if context == self.settings.context {
            return;
        }
        self.settings.context = context;
        if self.filtering() {
            self.reload(key);
        }
    }

    /// Raises the minimum level; after the highest, shows every level.
    pub fn next_level(&mut self, key: &DeploymentKey) {
        let levels = Level::ALL;
        let index = levels
            .iter()
            .position(|level| *level == self.settings.min_level)
            .unwrap_or(0);
        self.settings.min_level = levels[(index + 1) % levels.len()];
        self.reload(key);
    }

    /// Shows the next of `replicas` (indices, ascending), after the last
    /// every replica again.
    pub fn next_replica(&mut self, replicas: &[u32], key: &DeploymentKey) {
        let next = match self.settings.replica {
            None => replicas.first().copied(),
            Some(current) => replicas.iter().copied().find(|index| *index > current),
        };
        if next == self.settings.replica {
            return;
        }
        self.settings.replica = next;
        self.reload(key);
    }

    pub fn toggle_wrap(&mut self) {
        self.settings.wrap = !self.settings.wrap;
        self.refit();
    }

    pub fn toggle_timestamps(&mut self) {
        self.settings.timestamps = !self.settings.timestamps;
        self.refit();
    }

    pub fn toggle_utc(&mut self) {
        self.settings.utc = !self.settings.utc;
    }

    /// Asks the worker to write the whole view to `path`.
    pub fn save(&mut self, key: &DeploymentKey, path: PathBuf) {
        self.saving = Some(path.clone());
        self.requests.push(LogsEffect::Save(LogsSave {
            key: key.clone(),
            query: self.query(),
            path,
        }));
    }

    /// Returns the indices of the replicas whose lines arrived so far,
    /// such as 2 for `web-2`, ascending.
    pub fn replicas_seen(&self) -> Vec<u32> {
        self.replicas_seen.iter().copied().collect()
    }

    fn note_replicas(&mut self, data: &LogsData) {
        let entries: Box<dyn Iterator<Item = &LogEntry>> = match data {
            LogsData::Tail { entries, .. }
            | LogsData::Live { entries, .. }
            | LogsData::Page { entries, .. } => Box::new(entries.iter()),
            LogsData::Around { before, after, .. } => Box::new(before.iter().chain(after)),
            _ => Box::new(std::iter::empty()),
        };
        for entry in entries {
            if let Some(index) = replica_index(&entry.source) {
                self.replicas_seen.insert(index);
            }
        }
    }
}

/// Returns the index at the end of a replica's name: 2 for `web-2`.
pub fn replica_index(source: &str) -> Option<u32> {
    source.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;
