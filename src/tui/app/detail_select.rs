//! Selections in the detail view that actions act on: the replica in the
//! overview (for a restart) and the rule or silence in the alerts tab (for
//! silencing, acknowledging and ending a silence).

use super::actions::silence_target_matches;
use super::detail::{DetailState, OVERVIEW_SUMMARY_ROWS};
use crate::monitor::alerts::Silence;
use crate::tui::action::Command;

/// Rows above a section's first item: its heading and column header.
const SECTION_HEAD: usize = 2;

impl DetailState {
    /// Returns the replica index selected in the overview.
    pub fn selected_replica(&self) -> Option<u32> {
        let replicas = &self.deployment.as_ref()?.replica_details;
        replicas
            .get(self.replica_cursor)
            .map(|replica| replica.index)
    }

    /// Returns the rule selected in the alerts tab.
    pub fn selected_rule(&self) -> Option<String> {
        let rules = self.alert_rules.as_ref()?;
        rules
            .get(self.alerts_cursor)
            .map(|view| view.rule.name.clone())
    }

    /// Returns the silence selected in the alerts tab, or the one in force
    /// for the selected rule.
    pub fn selected_silence(&self) -> Option<Silence> {
        let silences = self.silences.as_ref()?;
        let rules = self.alert_rules.as_ref().map_or(0, Vec::len);
        if let Some(index) = self.alerts_cursor.checked_sub(rules) {
            return silences.get(index).map(|view| view.silence.clone());
        }
        let rule = self.selected_rule()?;
        silences
            .iter()
            .find(|view| silence_target_matches(&view.silence.target, &rule))
            .map(|view| view.silence.clone())
    }

    /// Returns the row of the alerts tab that shows the selected item.
    pub fn selected_alerts_row(&self) -> Option<usize> {
        let rules = self.alert_rules.as_ref().map_or(0, Vec::len);
        let silences = self.silences.as_ref().map_or(0, Vec::len);
        if self.alerts_cursor < rules {
            return Some(SECTION_HEAD + self.alerts_cursor);
        }
        let silence = self.alerts_cursor - rules;
        if silence >= silences {
            return None;
        }
        let states = self.alert_states.as_ref().map_or(0, Vec::len).max(1);
        Some(SECTION_HEAD + rules.max(1) + SECTION_HEAD + states + SECTION_HEAD + silence)
    }

    /// Returns the row of the overview that shows the selected replica.
    pub fn selected_replica_row(&self) -> Option<usize> {
        self.selected_replica()?;
        Some(OVERVIEW_SUMMARY_ROWS + SECTION_HEAD + self.replica_cursor)
    }

    /// Moves the replica selection by a row command; page commands and a
    /// deployment without replicas leave it to scrolling.
    pub(super) fn move_replica_selection(&mut self, command: Command, page: usize) -> bool {
        let len = self
            .deployment
            .as_ref()
            .map_or(0, |view| view.replica_details.len());
        if len == 0 || !moves_selection(command) {
            return false;
        }
        self.replica_cursor = step(self.replica_cursor, command, len);
        if let Some(row) = self.selected_replica_row() {
            reveal(&mut self.overview_scroll, row, page);
        }
        true
    }

    pub(super) fn move_alert_selection(&mut self, command: Command, page: usize) -> bool {
        let len = self.alert_rules.as_ref().map_or(0, Vec::len)
            + self.silences.as_ref().map_or(0, Vec::len);
        if len == 0 || !moves_selection(command) {
            return false;
        }
        self.alerts_cursor = step(self.alerts_cursor, command, len);
        if let Some(row) = self.selected_alerts_row() {
            reveal(&mut self.alerts_scroll, row, page);
        }
        true
    }

    /// Keeps the selections inside lists that shrank.
    pub fn clamp_selections(&mut self) {
        let replicas = self
            .deployment
            .as_ref()
            .map_or(0, |view| view.replica_details.len());
        self.replica_cursor = self.replica_cursor.min(replicas.saturating_sub(1));
        let items = self.alert_rules.as_ref().map_or(0, Vec::len)
            + self.silences.as_ref().map_or(0, Vec::len);
        self.alerts_cursor = self.alerts_cursor.min(items.saturating_sub(1));
    }
}

fn moves_selection(command: Command) -> bool {
    matches!(
        command,
        Command::MoveUp | Command::MoveDown | Command::First | Command::Last
    )
}

fn step(current: usize, command: Command, len: usize) -> usize {
    let last = len.saturating_sub(1);
    match command {
        Command::MoveUp => current.saturating_sub(1),
        Command::MoveDown => (current + 1).min(last),
        Command::First => 0,
        Command::Last => last,
        _ => current.min(last),
    }
}

/// Scrolls so that `row` is on a page of `page` rows, showing the section
/// heading above the first item where it fits.
fn reveal(offset: &mut usize, row: usize, page: usize) {
    let page = page.max(1);
    if row < *offset + SECTION_HEAD {
        *offset = row.saturating_sub(SECTION_HEAD);
    } else if row >= *offset + page {
        *offset = row + 1 - page;
    }
}
