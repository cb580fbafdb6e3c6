//! Reading a deployment's entries back: a scan over the stored blocks and
//! the entries not yet stored, forwards or backwards between two ids, and
//! the pages built on it.
//!
//! Pages by id ([`Page::After`], [`Page::Before`]) stay the same while new
//! entries arrive, which pages by offset do not, and with context they
//! continue the context of a match on the far side of their anchor (see
//! [`ContextWindow`]).

use std::ops::ControlFlow;

use super::block::{self, EntryRef};
use super::context::ContextWindow;
use super::filter::LogFilter;
use super::hub::Page;
use super::{LogEntry, LogError};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

/// The newest entries that passed a follow's conditions other than the
/// search when its first page was read, for the follower to continue from.
#[derive(Debug, Default)]
pub(super) struct Edge {
    /// The newest such entry's id; 0 when there is none.
    pub newest_id: u64,
    /// The newest `context` of them, oldest first, each with whether it
    /// passed the search.
    pub entries: Vec<(LogEntry, bool)>,
}

/// One query's view of a deployment's log: the entries not yet stored,
/// copied, and the stored blocks before them.
pub(super) struct Scan<'a> {
    pub store: &'a Store,
    pub deployment_id: &'a str,
    pub filter: &'a LogFilter,
    pub recent: Vec<LogEntry>,
    /// Stored blocks start below this id; later entries are in `recent`.
    pub stored_before: u64,
    /// First ids of the stored blocks, oldest first, where a forward scan
    /// finds its first block.
    pub block_starts: Vec<u64>,
}

impl Scan<'_> {
    /// Returns the entries of `page`, oldest first.
    pub fn page(&self, page: Page) -> Result<Vec<LogEntry>, LogError> {
        match page {
            Page::Tail(count) => Ok(self.tail(count, 0)?.0),
            Page::Range { offset, limit } => {
                let mut window = ContextWindow::new(self.filter.context());
                self.collect(0, u64::MAX, Direction::Forward, &mut window, limit, offset)
            }
            Page::After { id, limit } => self.after(id, limit),
            Page::Before { id, limit } => self.before(id, limit),
        }
    }

    /// Returns the newest `count` entries and, for a follower, the newest
    /// `edge` entries that pass the conditions other than the search.
    pub fn tail(&self, count: usize, edge: usize) -> Result<(Vec<LogEntry>, Edge), LogError> {
        let mut window = ContextWindow::new(self.filter.context());
        let mut found = Vec::new();
        let mut seen = Edge::default();
        self.visit(0, u64::MAX, Direction::Backward, &mut |entry| {
            let selected = self.filter.selects(entry);
            if seen.newest_id == 0 {
                seen.newest_id = entry.id;
            }
            if seen.entries.len() < edge {
                seen.entries.push((entry.to_entry(), selected));
            }
            if found.len() < count {
                window.feed(entry, selected, &mut found);
            }
            if found.len() >= count && seen.entries.len() >= edge {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        found.truncate(count);
        found.reverse();
        seen.entries.reverse();
        Ok((found, seen))
    }

    /// Returns up to `limit` entries after entry `id`.
    fn after(&self, id: u64, limit: usize) -> Result<Vec<LogEntry>, LogError> {
        let Some(lower) = id.checked_add(1) else {
            return Ok(Vec::new());
        };
        let mut window = ContextWindow::new(self.filter.context());
        for selected in self.nearest(id, Direction::Backward)?.into_iter().rev() {
            window.prime(selected);
        }
        self.collect(lower, u64::MAX, Direction::Forward, &mut window, limit, 0)
    }

    /// Returns up to `limit` entries before entry `id`, the nearest ones.
    fn before(&self, id: u64, limit: usize) -> Result<Vec<LogEntry>, LogError> {
        let Some(upper) = id.checked_sub(1) else {
            return Ok(Vec::new());
        };
        let mut window = ContextWindow::new(self.filter.context());
        for selected in self.nearest(id, Direction::Forward)?.into_iter().rev() {
            window.prime(selected);
        }
        self.collect(0, upper, Direction::Backward, &mut window, limit, 0)
    }

    /// Returns whether each of the `context` entries from `id` on in
    /// `direction`, `id` included, passes the search: the far side of a
    /// page's anchor.
    fn nearest(&self, id: u64, direction: Direction) -> Result<Vec<bool>, LogError> {
        let count = self.filter.context();
        let mut selected = Vec::with_capacity(count);
        if count == 0 {
            return Ok(selected);
        }
        let (lower, upper) = match direction {
            Direction::Forward => (id, u64::MAX),
            Direction::Backward => (0, id),
        };
        self.visit(lower, upper, direction, &mut |entry| {
            selected.push(self.filter.selects(entry));
            if selected.len() >= count {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(selected)
    }

    /// Returns up to `limit` shown entries between `lower` and `upper`,
    /// after skipping `skip` of them, oldest first.
    fn collect(
        &self,
        lower: u64,
        upper: u64,
        direction: Direction,
        window: &mut ContextWindow,
        limit: usize,
        skip: usize,
    ) -> Result<Vec<LogEntry>, LogError> {
        let mut found = Vec::new();
        let mut skipped = 0;
        if limit == 0 {
            return Ok(found);
        }
        let context = self.filter.context() > 0;
        self.visit(lower, upper, direction, &mut |entry| {
            let selected = self.filter.selects(entry);
            if !context {
                // Counted without a copy, so that a deep offset stays cheap.
                if !selected {
                    return ControlFlow::Continue(());
                }
                if skipped < skip {
                    skipped += 1;
                    return ControlFlow::Continue(());
                }
            }
            window.feed(entry, selected, &mut found);
            if skipped < skip {
                let dropped = (skip - skipped).min(found.len());
                found.drain(..dropped);
                skipped += dropped;
            }
            if found.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        found.truncate(limit);
        if direction == Direction::Backward {
            found.reverse();
        }
        Ok(found)
    }

    /// Calls `visit` with each entry whose id lies in `lower..=upper` and
    /// that passes the conditions other than the search, in `direction`,
    /// until it returns `Break`.
    fn visit(
        &self,
        lower: u64,
        upper: u64,
        direction: Direction,
        visit: &mut dyn FnMut(&EntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<(), LogError> {
        let lower = lower.max(self.filter.since());
        let upper = upper.min(self.filter.until());
        if lower > upper {
            return Ok(());
        }
        let mut take = |entry: &EntryRef<'_>| {
            if entry.id < lower || entry.id > upper || !self.filter.passes_base(entry) {
                return ControlFlow::Continue(());
            }
            visit(entry)
        };
        let stored_end = self.stored_before.min(upper.saturating_add(1));
        match direction {
            Direction::Forward => {
                let from = self.block_containing(lower);
                let blocks =
                    self.store
                        .log_blocks_between(self.deployment_id, from, stored_end, false);
                for item in blocks {
                    let (info, bytes) = item?;
                    if info.last_id < lower {
                        continue;
                    }
                    let body = Body::read(self.deployment_id, info.first_id, &bytes);
                    for entry in body.entries() {
                        if take(&entry).is_break() {
                            return Ok(());
                        }
                    }
                }
                for entry in &self.recent {
                    if take(&EntryRef::from(entry)).is_break() {
                        return Ok(());
                    }
                }
            }
            Direction::Backward => {
                for entry in self.recent.iter().rev() {
                    if take(&EntryRef::from(entry)).is_break() {
                        return Ok(());
                    }
                }
                let blocks = self.store.log_blocks(self.deployment_id, stored_end, true);
                for item in blocks {
                    let (info, bytes) = item?;
                    if info.last_id < lower {
                        break;
                    }
                    let body = Body::read(self.deployment_id, info.first_id, &bytes);
                    for entry in body.entries().iter().rev() {
                        if take(entry).is_break() {
                            return Ok(());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Returns the first id of the stored block that may contain `id`.
    fn block_containing(&self, id: u64) -> u64 {
        let after = self.block_starts.partition_point(|first| *first <= id);
        after
            .checked_sub(1)
            .map_or(0, |index| self.block_starts[index])
    }
}

/// One stored block, decompressed; a damaged block reads as the entries
/// before the damage.
struct Body<'a> {
    deployment_id: &'a str,
    first_id: u64,
    bytes: Vec<u8>,
    count: u32,
}

impl<'a> Body<'a> {
    fn read(deployment_id: &'a str, first_id: u64, bytes: &[u8]) -> Self {
        let decoded = block::header(bytes)
            .and_then(|header| block::body(bytes, &header).map(|body| (body, header.count)));
        let (bytes, count) = decoded.unwrap_or_else(|error| {
            tracing::warn!(deployment_id, first_id, %error, "skipped an unreadable log block");
            (Vec::new(), 0)
        });
        Self {
            deployment_id,
            first_id,
            bytes,
            count,
        }
    }

    /// Decodes the entries, keeping those before a damaged one.
    fn entries(&self) -> Vec<EntryRef<'_>> {
        let mut decoded = Vec::with_capacity(self.count as usize);
        for entry in block::entries(&self.bytes, self.count) {
            match entry {
                Ok(entry) => decoded.push(entry),
                Err(error) => {
                    tracing::warn!(
                        deployment_id = self.deployment_id,
                        first_id = self.first_id,
                        %error,
                        "skipped the damaged rest of a log block"
                    );
                }
            }
        }
        decoded
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
