//! Context around selected entries, as `grep -C N` shows it.
//!
//! An entry shows when it is selected (it passes the search) or when it
//! lies within N entries of a selected one, counting only the entries that
//! pass the other conditions. The set of shown entries depends only on the
//! log, not on where a page starts, so that pages fetched one after the
//! other in either direction join without gaps or repeats.
//!
//! [`ContextWindow`] decides this for entries fed in scan order, forwards
//! or backwards: the rule is symmetric. Entries on the far side of a page's
//! anchor, which earlier pages showed already, go through
//! [`ContextWindow::prime`] so that the context after a match there still
//! continues into the page.

use std::collections::VecDeque;

use super::block::EntryRef;
use super::LogEntry;

/// The state of a scan with context: entries seen since the last shown
/// one, and how many more entries to show after the last selected one.
#[derive(Debug, Clone)]
pub struct ContextWindow {
    context: usize,
    /// Up to `context` entries not shown yet, in scan order. They show if
    /// a selected entry follows closely enough.
    before: VecDeque<LogEntry>,
    after_left: usize,
}

impl ContextWindow {
    pub fn new(context: usize) -> Self {
        Self {
            context,
            before: VecDeque::with_capacity(context),
            after_left: 0,
        }
    }

    /// Accounts for an entry on the far side of the anchor, which never
    /// shows again, and clears the held entries.
    pub fn prime(&mut self, selected: bool) {
        self.before.clear();
        self.after_left = if selected {
            self.context
        } else {
            self.after_left.saturating_sub(1)
        };
    }

    /// Feeds the next entry in scan order and appends to `out` what now
    /// shows: held entries and this one when it is selected, this one when
    /// it follows a selected one closely enough, else nothing.
    pub fn feed(&mut self, entry: &EntryRef<'_>, selected: bool, out: &mut Vec<LogEntry>) {
        if selected {
            out.extend(self.before.drain(..));
            out.push(entry.to_entry());
            self.after_left = self.context;
        } else if self.after_left > 0 {
            self.after_left -= 1;
            let mut shown = entry.to_entry();
            shown.context = true;
            out.push(shown);
        } else if self.context > 0 {
            self.hold(entry);
        }
    }

    /// Forgets every held entry and pending context, after entries were
    /// lost between two fed ones.
    pub fn reset(&mut self) {
        self.before.clear();
        self.after_left = 0;
    }

    /// Keeps `entry` among the last `context` unshown ones, reusing the
    /// buffers of the one it pushes out: a search over a million entries
    /// holds every one of them for a moment.
    fn hold(&mut self, entry: &EntryRef<'_>) {
        let held = if self.before.len() == self.context {
            self.before.pop_front().map(|mut reused| {
                entry.copy_into(&mut reused);
                reused
            })
        } else {
            None
        };
        let mut held = held.unwrap_or_else(|| entry.to_entry());
        held.context = true;
        self.before.push_back(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{Level, Stream};

    fn entry(id: u64, message: &str) -> EntryRef<'_> {
        EntryRef {
            id,
            level: Level::Info,
            stream: Stream::Stdout,
            build: false,
            revision: 1,
            source: "web-0",
            message,
        }
    }

    /// Feeds `ids` 0..n where `selected` lists the selected ones; returns
    /// the shown ids with a `c` suffix on context entries.
    fn run(
        window: &mut ContextWindow,
        ids: impl Iterator<Item = u64>,
        selected: &[u64],
    ) -> Vec<String> {
        let mut out = Vec::new();
        for id in ids {
            window.feed(&entry(id, "x"), selected.contains(&id), &mut out);
        }
        out.iter()
            .map(|entry| format!("{}{}", entry.id, if entry.context { "c" } else { "" }))
            .collect()
    }

    #[test]
    fn shows_context_on_both_sides() {
        let mut window = ContextWindow::new(2);
        let shown = run(&mut window, 0..12, &[5, 6, 11]);
        assert_eq!(shown, ["3c", "4c", "5", "6", "7c", "8c", "9c", "10c", "11"]);
    }

    #[test]
    fn backwards_scan_shows_the_same_set() {
        let mut forward = ContextWindow::new(2);
        let mut backward = ContextWindow::new(2);
        let selected = [1, 5, 6, 11];
        let mut ahead = run(&mut forward, 0..14, &selected);
        let mut behind = run(&mut backward, (0..14).rev(), &selected);
        ahead.sort();
        behind.sort();
        assert_eq!(ahead, behind);
    }

    #[test]
    fn primed_match_continues_into_the_page() {
        let mut window = ContextWindow::new(3);
        // Entries 8, 9 and 10 on the far side of the anchor; 9 matched.
        for selected in [false, true, false] {
            window.prime(selected);
        }
        let shown = run(&mut window, 11..15, &[]);
        assert_eq!(shown, ["11c", "12c"], "three after 9: 10 (seen), 11, 12");
    }

    #[test]
    fn without_context_only_selected_show() {
        let mut window = ContextWindow::new(0);
        assert_eq!(run(&mut window, 0..6, &[2, 4]), ["2", "4"]);
    }

    #[test]
    fn reset_drops_held_entries() {
        let mut window = ContextWindow::new(2);
        let mut out = Vec::new();
        window.feed(&entry(1, "a"), false, &mut out);
        window.reset();
        window.feed(&entry(2, "b"), true, &mut out);
        let ids: Vec<u64> = out.iter().map(|entry| entry.id).collect();
        assert_eq!(ids, [2]);
    }
}
