//! State of the global alerts pane: the alerts firing now, across every
//! deployment, newest first.

use std::collections::HashSet;

use time::OffsetDateTime;

use super::list::ListCursor;
use crate::monitor::alerts::{AlertState, AlertView};
use crate::tui::sanitize::clean;

/// One firing alert, with every text sanitised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub deployment: String,
    pub environment: String,
    pub rule: String,
    pub since: OffsetDateTime,
    pub silenced: bool,
    /// Who acknowledged it, if anyone did.
    pub acknowledged_by: Option<String>,
}

impl AlertRow {
    fn from_view(view: &AlertView) -> Option<Self> {
        let AlertState::Firing {
            since,
            acknowledged,
            ..
        } = &view.state
        else {
            return None;
        };
        Some(Self {
            deployment: clean(&view.deployment).into_owned(),
            environment: clean(&view.environment).into_owned(),
            rule: clean(&view.rule).into_owned(),
            since: *since,
            silenced: view.silenced,
            acknowledged_by: acknowledged
                .as_ref()
                .map(|ack| clean(&ack.author).into_owned()),
        })
    }

    fn identity(&self) -> (&str, &str, &str) {
        (&self.deployment, &self.environment, &self.rule)
    }
}

/// An alert that started or stopped firing between two lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertChange {
    pub row: AlertRow,
    pub firing: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsState {
    firing: Vec<AlertRow>,
    pub cursor: ListCursor,
    pub shown: bool,
    pub loaded: bool,
}

impl AlertsState {
    /// Replaces the firing alerts from a full list. Returns `None` when
    /// nothing changed, else what started and stopped firing (nothing for
    /// the first list).
    pub fn replace(&mut self, views: &[AlertView], page: usize) -> Option<Vec<AlertChange>> {
        let mut firing: Vec<AlertRow> = views.iter().filter_map(AlertRow::from_view).collect();
        firing.sort_by(|a, b| {
            b.since
                .cmp(&a.since)
                .then_with(|| a.identity().cmp(&b.identity()))
        });
        if self.loaded && firing == self.firing {
            return None;
        }
        let changes = if self.loaded {
            changes(&self.firing, &firing)
        } else {
            Vec::new()
        };
        self.firing = firing;
        self.loaded = true;
        self.cursor.clamp(self.firing.len(), page);
        Some(changes)
    }

    pub fn firing(&self) -> &[AlertRow] {
        &self.firing
    }

    /// Returns the rows on the page, newest first.
    pub fn page(&self, page: usize) -> &[AlertRow] {
        &self.firing[self.cursor.visible(self.firing.len(), page)]
    }
}

fn changes(before: &[AlertRow], after: &[AlertRow]) -> Vec<AlertChange> {
    let old: HashSet<_> = before.iter().map(AlertRow::identity).collect();
    let new: HashSet<_> = after.iter().map(AlertRow::identity).collect();
    let started = after
        .iter()
        .filter(|row| !old.contains(&row.identity()))
        .map(|row| AlertChange {
            row: row.clone(),
            firing: true,
        });
    let stopped = before
        .iter()
        .filter(|row| !new.contains(&row.identity()))
        .map(|row| AlertChange {
            row: row.clone(),
            firing: false,
        });
    started.chain(stopped).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::datetime;

    pub(crate) fn firing(deployment: &str, rule: &str, minute: u8) -> AlertView {
        let since = datetime!(2025-01-01 00:00:00 UTC) + time::Duration::minutes(minute.into());
        AlertView {
            deployment: deployment.to_owned(),
            environment: "production".to_owned(),
            rule: rule.to_owned(),
            silenced: false,
            silenced_until: None,
            state: AlertState::Firing {
                since,
                last_sample: since,
                last_notified: None,
                muted: false,
                acknowledged: None,
            },
        }
    }

    fn inactive(deployment: &str, rule: &str) -> AlertView {
        AlertView {
            deployment: deployment.to_owned(),
            environment: "production".to_owned(),
            rule: rule.to_owned(),
            silenced: false,
            silenced_until: None,
            state: AlertState::Inactive,
        }
    }

    #[test]
    fn keeps_firing_alerts_newest_first() {
        let mut state = AlertsState::default();
        state.replace(
            &[
                firing("web", "high-cpu", 1),
                inactive("api", "errors"),
                firing("api", "latency", 5),
            ],
            10,
        );
        let rules: Vec<&str> = state.firing().iter().map(|row| row.rule.as_str()).collect();
        assert_eq!(rules, ["latency", "high-cpu"]);
    }

    #[test]
    fn reports_fired_and_resolved() {
        let mut state = AlertsState::default();
        assert_eq!(
            state.replace(&[firing("web", "high-cpu", 1)], 10),
            Some(Vec::new())
        );
        assert_eq!(state.replace(&[firing("web", "high-cpu", 1)], 10), None);
        let changes = state
            .replace(
                &[inactive("web", "high-cpu"), firing("api", "latency", 5)],
                10,
            )
            .unwrap();
        let summary: Vec<(&str, bool)> = changes
            .iter()
            .map(|change| (change.row.rule.as_str(), change.firing))
            .collect();
        assert_eq!(summary, [("latency", true), ("high-cpu", false)]);
    }
}
