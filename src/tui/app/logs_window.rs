//! The part of a deployment's log the logs tab holds: a bounded window of
//! lines, the selection in it and the first line on screen.
//!
//! The window holds at most [`WINDOW_LINES`] lines of a history that may be
//! millions long. Pages of [`PAGE_LINES`] join at either end as the
//! operator scrolls towards it, and lines fall off the far end, so memory
//! stays bounded wherever the operator looks.

use std::collections::VecDeque;

use time::OffsetDateTime;
use unicode_width::UnicodeWidthStr;

use crate::logs::{Level, LogEntry};
use crate::tui::action::Command;
use crate::tui::sanitize::clean;

/// Lines fetched per page.
pub const PAGE_LINES: usize = 1000;

/// Maximum lines in the window: five pages.
pub const WINDOW_LINES: usize = 5 * PAGE_LINES;

/// A page at an end is fetched once the selection is this close to it.
pub const PREFETCH_LINES: usize = 200;

/// Widest source column, in cells; longer sources are cut.
pub const MAX_SOURCE_WIDTH: usize = 16;

/// One entry as the tab draws it. The texts are sanitised when the entry
/// arrives, so that a frame never cleans the same long line again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub id: u64,
    pub time: OffsetDateTime,
    pub level: Level,
    /// The replica (`web-0`) or `build`, sanitised.
    pub source: String,
    /// The message, sanitised: no escape sequence, control or bidi
    /// formatting character.
    pub text: String,
    /// Display width of `text`, in cells.
    pub width: usize,
    /// Shown only as context around a matching line.
    pub context: bool,
}

impl LogLine {
    pub fn from_entry(entry: &LogEntry) -> Self {
        let text = clean(&entry.message).into_owned();
        Self {
            id: entry.id,
            time: entry.time,
            level: entry.level,
            source: clean(&entry.source).into_owned(),
            width: text.width(),
            text,
            context: entry.context,
        }
    }
}

/// The line to select after the window is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    First,
    Last,
    /// The line with this id, or the first after it.
    Id(u64),
}

/// The size of the area the lines are drawn in, and the cells each line's
/// time, source and level take before its text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Viewport {
    pub rows: usize,
    pub columns: usize,
    pub prefix: usize,
    pub wrap: bool,
}

impl Viewport {
    /// Returns the rows `line` takes: one, or with wrapping as many as its text
    /// needs beside the prefix.
    pub fn rows_of(&self, line: &LogLine) -> usize {
        if !self.wrap {
            return 1;
        }
        let available = self.text_columns();
        line.width.div_ceil(available).max(1)
    }

    /// Returns the cells left for the text beside the prefix; when the prefix
    /// leaves too few, wrapped rows start under it instead.
    pub fn text_columns(&self) -> usize {
        let beside = self.columns.saturating_sub(self.prefix);
        if beside >= 10 {
            beside
        } else {
            self.columns.max(1)
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogWindow {
    pub lines: VecDeque<LogLine>,
    /// The first line is the oldest of the view: nothing older to fetch.
    pub at_start: bool,
    /// The last line is the newest known: nothing newer to fetch.
    pub at_end: bool,
    pub selected: usize,
    /// The first line on screen.
    pub top: usize,
    /// Rows of the first line scrolled off the top, when only its end
    /// fits above the lines after it.
    pub top_skip: usize,
    /// Widest source in the window, capped at [`MAX_SOURCE_WIDTH`].
    pub source_width: usize,
}

impl LogWindow {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn first_id(&self) -> Option<u64> {
        self.lines.front().map(|line| line.id)
    }

    pub fn last_id(&self) -> Option<u64> {
        self.lines.back().map(|line| line.id)
    }

    pub fn selected_line(&self) -> Option<&LogLine> {
        self.lines.get(self.selected)
    }

    pub fn is_last_selected(&self) -> bool {
        self.selected + 1 >= self.lines.len()
    }

    /// Replaces every line.
    pub fn replace(&mut self, entries: &[LogEntry], at_start: bool, at_end: bool, select: Select) {
        self.lines = entries.iter().map(LogLine::from_entry).collect();
        self.at_start = at_start;
        self.at_end = at_end;
        self.source_width = 0;
        self.widen_sources(0..self.lines.len());
        self.selected = match select {
            Select::First => 0,
            Select::Last => self.lines.len().saturating_sub(1),
            Select::Id(id) => self
                .lines
                .iter()
                .position(|line| line.id >= id)
                .unwrap_or(self.lines.len().saturating_sub(1)),
        };
        self.top = 0;
        self.top_skip = 0;
        self.trim_back();
    }

    /// Adds an older page before the first line; the selection stays on
    /// its line.
    pub fn prepend(&mut self, entries: &[LogEntry], at_start: bool) {
        let first = self.first_id().unwrap_or(u64::MAX);
        let older: Vec<LogLine> = entries
            .iter()
            .filter(|entry| entry.id < first)
            .map(LogLine::from_entry)
            .collect();
        let count = older.len();
        for line in older.into_iter().rev() {
            self.lines.push_front(line);
        }
        self.selected += count;
        self.top += count;
        self.at_start = at_start;
        self.widen_sources(0..count);
        self.trim_back();
    }

    /// Adds newer lines after the last one; `at_end` is whether they
    /// reach the newest known.
    pub fn append(&mut self, entries: &[LogEntry], at_end: bool) {
        let last = self.last_id();
        let start = self.lines.len();
        self.lines.extend(
            entries
                .iter()
                .filter(|entry| last.is_none_or(|last| entry.id > last))
                .map(LogLine::from_entry),
        );
        self.at_end = at_end;
        self.widen_sources(start..self.lines.len());
        self.trim_front();
    }

    /// Drops the oldest lines past [`WINDOW_LINES`], never the selected one.
    fn trim_front(&mut self) {
        let over = self.lines.len().saturating_sub(WINDOW_LINES);
        let dropped = over.min(self.selected);
        if dropped == 0 {
            return;
        }
        self.lines.drain(..dropped);
        self.selected -= dropped;
        if self.top < dropped {
            self.top_skip = 0;
        }
        self.top = self.top.saturating_sub(dropped);
        self.at_start = false;
    }

    /// Drops the newest lines past [`WINDOW_LINES`], never the selected one.
    fn trim_back(&mut self) {
        let keep = WINDOW_LINES.max(self.selected + 1);
        if self.lines.len() <= keep {
            return;
        }
        self.lines.truncate(keep);
        self.at_end = false;
    }

    fn widen_sources(&mut self, range: std::ops::Range<usize>) {
        for index in range {
            let width = self.lines[index].source.width().min(MAX_SOURCE_WIDTH);
            self.source_width = self.source_width.max(width);
        }
    }

    /// Moves the selection; returns whether the command was a movement.
    pub fn move_selection(&mut self, command: Command, viewport: &Viewport) -> bool {
        let last = self.lines.len().saturating_sub(1);
        let step = viewport.rows.max(1);
        self.selected = match command {
            Command::MoveUp => self.selected.saturating_sub(1),
            Command::MoveDown => (self.selected + 1).min(last),
            Command::PageUp => self.selected.saturating_sub(step),
            Command::PageDown => (self.selected + step).min(last),
            Command::First => 0,
            Command::Last => last,
            _ => return false,
        };
        self.keep_visible(viewport);
        true
    }

    /// Selects line `index` and scrolls it onto the screen.
    pub fn select(&mut self, index: usize, viewport: &Viewport) {
        self.selected = index.min(self.lines.len().saturating_sub(1));
        self.keep_visible(viewport);
    }

    /// Scrolls so that the selected line is in the middle of the screen,
    /// where a jump to it lands.
    pub fn center(&mut self, viewport: &Viewport) {
        self.top = self.selected.saturating_sub(viewport.rows / 2);
        self.top_skip = 0;
        self.keep_visible(viewport);
    }

    /// Scrolls so that the selected line is on screen, as far down as it
    /// can be when it was below, and so that no rows stay empty below the
    /// last line while earlier lines could fill them.
    pub fn keep_visible(&mut self, viewport: &Viewport) {
        if self.lines.is_empty() {
            self.selected = 0;
            self.top = 0;
            self.top_skip = 0;
            return;
        }
        self.selected = self.selected.min(self.lines.len() - 1);
        let rows = viewport.rows;
        if self.selected < self.top || rows == 0 {
            self.top = self.selected;
            self.top_skip = 0;
            return;
        }
        // The top line may have become shorter since (wrap turned off).
        let top_rows = viewport.rows_of(&self.lines[self.top]);
        self.top_skip = self.top_skip.min(top_rows - 1);
        // Every line takes at least a row, so this skips what cannot fit
        // before measuring what is left.
        if self.selected - self.top >= rows {
            self.top = self.selected + 1 - rows;
            self.top_skip = 0;
        }
        let mut used: usize = (self.top..=self.selected)
            .map(|index| viewport.rows_of(&self.lines[index]))
            .sum::<usize>()
            - self.top_skip;
        while used > rows && self.top < self.selected {
            used -= viewport.rows_of(&self.lines[self.top]) - self.top_skip;
            self.top += 1;
            self.top_skip = 0;
        }
        if used > rows {
            // The selected line alone is taller than the screen: its start.
            self.top_skip = 0;
            return;
        }
        self.fill_from_above(viewport);
    }

    /// Moves the top up while the lines from it to the end leave rows
    /// empty, the last one taken in part when only its end fits.
    fn fill_from_above(&mut self, viewport: &Viewport) {
        let rows = viewport.rows;
        let mut used = 0;
        for index in self.top..self.lines.len() {
            used += viewport.rows_of(&self.lines[index]);
            if used >= rows + self.top_skip {
                return;
            }
        }
        used -= self.top_skip;
        self.top_skip = 0;
        while used < rows && self.top > 0 {
            self.top -= 1;
            let height = viewport.rows_of(&self.lines[self.top]);
            if used + height > rows {
                self.top_skip = used + height - rows;
                return;
            }
            used += height;
        }
    }

    /// Returns the index of the first line in `range` (in the order given)
    /// that `matches` accepts.
    pub fn find(
        &self,
        mut range: impl Iterator<Item = usize>,
        matches: impl Fn(&LogLine) -> bool,
    ) -> Option<usize> {
        range.find(|index| matches(&self.lines[*index]))
    }
}
