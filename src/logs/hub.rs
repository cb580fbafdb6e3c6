//! The log writer: one thread that turns captured lines into entries, hands
//! them to followers and stores them in blocks, and the queries that read
//! them back.
//!
//! Entries wait in a pending block per deployment until it is full or old
//! enough, then go to the store in one write. Queries read the pending block
//! too, so a line is queryable as soon as the writer has it.
//!
//! # Consistency between pending entries and the store
//!
//! Only the writer moves entries from pending to the store. It inserts the
//! block first and drops the pending copy afterwards, and while the insert
//! runs, the block is still visible as `flushing`. A query copies the pending
//! and flushing entries under the lock, then reads from the store only the
//! blocks that start before the first copied id. So no entry is seen twice,
//! and none is missed unless retention removes its block in the meantime.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;
use tokio::sync::{mpsc, oneshot, Notify};

use super::block::{self, EntryRef};
use super::capture::{self, Batch, CaptureTarget};
use super::context::ContextWindow;
use super::filter::LogFilter;
use super::level::detect_level;
use super::mask::SecretMask;
use super::query::{Edge, Scan};
use super::{LogEntry, LogError, Retention};
use crate::store::Store;

/// Batches in flight between capture tasks and the writer. Each batch is at
/// most one read (32 KiB of lines), so this bounds that memory to a few MiB.
const CHANNEL_BATCHES: usize = 128;

/// A pending block goes to the store at this size ...
const BLOCK_BYTES: usize = 64 * 1024;
/// ... or at this many entries ...
const BLOCK_ENTRIES: usize = 1024;
/// ... or when its oldest entry has waited this long.
const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// How often entries past their age limit are removed.
const AGE_CHECK_EVERY: Duration = Duration::from_secs(30);

/// Entries a follower may fall behind by before the oldest are dropped
/// and counted as missed.
const FOLLOW_QUEUE: usize = 10_000;

/// Messages to the writer thread.
pub(super) enum Message {
    Lines(Batch),
    /// Store every pending entry, then reply.
    Flush(oneshot::Sender<()>),
    /// Wake up to store pending blocks that are old enough.
    Tick,
}

/// The part of the matching entries that a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The newest `n` matches.
    Tail(usize),
    /// Matches from the oldest: skip `offset`, then take up to `limit`.
    Range { offset: usize, limit: usize },
    /// Up to `limit` matches after entry `id`, the oldest first.
    After { id: u64, limit: usize },
    /// Up to `limit` matches before entry `id`, the newest ones.
    Before { id: u64, limit: usize },
}

/// Counts of what the store contains for one deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStats {
    pub lines: u64,
    pub bytes: u64,
    pub blocks: u64,
    /// Time of the oldest stored entry, if any.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub oldest: Option<time::OffsetDateTime>,
}

/// One item of a follow stream. With context, missed counts the entries
/// lost that passed the conditions other than the search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FollowItem {
    Entry(LogEntry),
    /// Entries that matched but were dropped because the follower read too
    /// slowly.
    Missed {
        missed: u64,
    },
}

/// The agent's log capture, storage and queries. Clones share one writer.
#[derive(Clone)]
pub struct LogHub {
    sender: mpsc::Sender<Message>,
    shared: Arc<Shared>,
}

struct Shared {
    store: Store,
    state: Mutex<State>,
    masks: RwLock<HashMap<String, Arc<SecretMask>>>,
}

#[derive(Default)]
struct State {
    deployments: HashMap<String, DeploymentLog>,
}

/// One deployment's log as the writer tracks it.
#[derive(Default)]
struct DeploymentLog {
    pending: Vec<LogEntry>,
    pending_bytes: usize,
    pending_since: Option<Instant>,
    /// A block being written to the store.
    flushing: Vec<LogEntry>,
    /// The stored blocks, oldest first.
    blocks: VecDeque<BlockInfo>,
    stored_lines: u64,
    stored_bytes: u64,
    last_id: u64,
    retention: Retention,
    followers: Vec<Weak<FollowShared>>,
}

#[derive(Debug, Clone, Copy)]
struct BlockInfo {
    first_id: u64,
    last_id: u64,
    lines: u64,
    bytes: u64,
}

impl DeploymentLog {
    /// Most entries a block may hold, so that retention, which drops whole
    /// blocks, stays within an eighth of a small line limit.
    fn block_entries(&self) -> usize {
        let eighth = usize::try_from(self.retention.max_lines / 8).unwrap_or(usize::MAX);
        eighth.clamp(16, BLOCK_ENTRIES)
    }

    fn block_full(&self) -> bool {
        self.pending_bytes >= BLOCK_BYTES || self.pending.len() >= self.block_entries()
    }
}

impl LogHub {
    /// Starts the writer over `store`, after learning what the store already
    /// holds. Must run inside a tokio runtime.
    pub fn start(store: Store) -> Self {
        let state = load_state(&store);
        let shared = Arc::new(Shared {
            store,
            state: Mutex::new(state),
            masks: RwLock::new(HashMap::new()),
        });
        let (sender, receiver) = mpsc::channel(CHANNEL_BATCHES);

        let writer_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("shipdeck-logs".to_owned())
            .spawn(move || Writer::new(writer_shared).run(receiver));
        if let Err(error) = spawned {
            tracing::error!(%error, "starting the log writer thread failed; output will not be stored");
        }
        tokio::spawn(tick(sender.downgrade()));

        Self { sender, shared }
    }

    /// Captures `reader` until it ends. Spawns a task and returns its handle,
    /// which completes once every line was handed to the writer.
    pub fn capture<R>(&self, target: CaptureTarget, reader: R) -> tokio::task::JoinHandle<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let sender = self.sender.clone();
        tokio::spawn(capture::capture(sender, Arc::new(target), reader))
    }

    /// Stores `text` as lines of `target`, as if a process had written it.
    pub async fn write_text(&self, target: CaptureTarget, text: &[u8]) {
        capture::capture(self.sender.clone(), Arc::new(target), text).await;
    }

    /// Waits until every line sent before this call is stored.
    pub async fn flush(&self) {
        let (done, stored) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = stored.await;
        }
    }

    /// Sets the secret values to mask in `deployment_id`'s lines from now on.
    pub fn set_secrets<I, S>(&self, deployment_id: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut masks = write(&self.shared.masks);
        match SecretMask::new(values) {
            Some(mask) => masks.insert(deployment_id.to_owned(), Arc::new(mask)),
            None => masks.remove(deployment_id),
        };
    }

    /// Sets how much of `deployment_id`'s log to keep. Applied at the next
    /// stored block.
    pub fn set_retention(&self, deployment_id: &str, retention: Retention) {
        let mut state = lock(&self.shared.state);
        let log = state
            .deployments
            .entry(deployment_id.to_owned())
            .or_default();
        log.retention = retention;
    }

    /// Returns what the store contains for `deployment_id`.
    pub fn stats(&self, deployment_id: &str) -> LogStats {
        let state = lock(&self.shared.state);
        let Some(log) = state.deployments.get(deployment_id) else {
            return LogStats::default();
        };
        LogStats {
            lines: log.stored_lines,
            bytes: log.stored_bytes,
            blocks: log.blocks.len() as u64,
            oldest: log
                .blocks
                .front()
                .map(|block| super::time_of(block.first_id)),
        }
    }

    /// Returns the entries of `deployment_id` that pass `filter`, oldest first.
    pub fn query(
        &self,
        deployment_id: &str,
        filter: &LogFilter,
        page: Page,
    ) -> Result<Vec<LogEntry>, LogError> {
        self.scan(deployment_id, filter).page(page)
    }

    /// Registers a follower of `deployment_id` and returns it with the
    /// newest `tail` entries that pass `filter`. The follower goes on from
    /// where those end, with the context of a match among them continuing
    /// into what it returns.
    pub fn follow_tail(
        &self,
        deployment_id: &str,
        filter: LogFilter,
        tail: usize,
    ) -> Result<(Follower, Vec<LogEntry>), LogError> {
        // Registered before the read, so that no entry falls in between.
        let mut follower = self.follow(deployment_id, filter.clone());
        let (recent, edge) = self
            .scan(deployment_id, &filter)
            .tail(tail, filter.context())?;
        follower.start_after(&recent, edge);
        Ok((follower, recent))
    }

    /// Takes a consistent view of `deployment_id`'s entries for one query.
    fn scan<'a>(&'a self, deployment_id: &'a str, filter: &'a LogFilter) -> Scan<'a> {
        let recent = self.recent(deployment_id);
        let stored_before = recent.first().map_or(u64::MAX, |entry| entry.id);
        let block_starts = {
            let state = lock(&self.shared.state);
            state
                .deployments
                .get(deployment_id)
                .map_or_else(Vec::new, |log| {
                    log.blocks.iter().map(|block| block.first_id).collect()
                })
        };
        Scan {
            store: &self.shared.store,
            deployment_id,
            filter,
            recent,
            stored_before,
            block_starts,
        }
    }

    /// Registers a follower of `deployment_id` that receives every new entry
    /// passing `filter`.
    pub fn follow(&self, deployment_id: &str, filter: LogFilter) -> Follower {
        let shared = Arc::new(FollowShared {
            filter,
            queue: Mutex::new(FollowQueue::default()),
            notify: Notify::new(),
        });
        let mut state = lock(&self.shared.state);
        let log = state
            .deployments
            .entry(deployment_id.to_owned())
            .or_default();
        log.followers.retain(|follower| follower.strong_count() > 0);
        log.followers.push(Arc::downgrade(&shared));
        let window = ContextWindow::new(shared.filter.context());
        Follower {
            shared,
            after: 0,
            window,
            ready: VecDeque::new(),
        }
    }

    /// Copies the entries not yet in the store.
    fn recent(&self, deployment_id: &str) -> Vec<LogEntry> {
        let state = lock(&self.shared.state);
        let Some(log) = state.deployments.get(deployment_id) else {
            return Vec::new();
        };
        log.flushing.iter().chain(&log.pending).cloned().collect()
    }
}

/// Reads what the store contains at start-up, so retention and ids continue
/// where the previous agent left off.
fn load_state(store: &Store) -> State {
    let mut state = State::default();
    for item in store.all_log_blocks() {
        let (deployment_id, stored) = match item {
            Ok(item) => item,
            Err(error) => {
                tracing::warn!(%error, "reading the index of stored log blocks failed; retention starts from what was read");
                break;
            }
        };
        let log = state.deployments.entry(deployment_id).or_default();
        let info = BlockInfo {
            first_id: stored.first_id,
            last_id: stored.last_id,
            lines: u64::from(stored.count),
            bytes: u64::from(stored.len),
        };
        log.stored_lines += info.lines;
        log.stored_bytes += info.bytes;
        log.last_id = log.last_id.max(info.last_id);
        log.blocks.push_back(info);
    }
    state
}

/// Sends a tick to the writer now and then, so that pending blocks of quiet
/// deployments are stored too. Ends when the hub is gone.
async fn tick(sender: mpsc::WeakSender<Message>) {
    let mut interval = tokio::time::interval(FLUSH_AFTER);
    loop {
        interval.tick().await;
        let Some(sender) = sender.upgrade() else {
            return;
        };
        // A full channel means the writer is busy and will store on its own.
        let _ = sender.try_send(Message::Tick);
    }
}

/// The writer thread's own state.
struct Writer {
    shared: Arc<Shared>,
    last_age_check: Instant,
}

impl Writer {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            last_age_check: Instant::now(),
        }
    }

    fn run(mut self, mut receiver: mpsc::Receiver<Message>) {
        while let Some(message) = receiver.blocking_recv() {
            match message {
                Message::Lines(batch) => self.append(batch),
                Message::Flush(done) => {
                    self.store_pending(|_| true);
                    let _ = done.send(());
                }
                Message::Tick => self.store_pending(|log| {
                    log.pending_since
                        .is_some_and(|since| since.elapsed() >= FLUSH_AFTER)
                }),
            }
            if self.last_age_check.elapsed() >= AGE_CHECK_EVERY {
                self.last_age_check = Instant::now();
                self.apply_age_limits();
            }
        }
        self.store_pending(|_| true);
    }

    fn append(&mut self, batch: Batch) {
        let target = &batch.target;
        let mask = read(&self.shared.masks).get(&target.deployment_id).cloned();
        let prepared: Vec<(String, super::Level)> = batch
            .lines
            .into_iter()
            .map(|line| {
                let mut text = line.text;
                if line.cut > 0 {
                    text.push_str(&format!(" [cut {} bytes]", line.cut));
                }
                if let Some(mask) = &mask {
                    text = mask_line(mask, text);
                }
                let level = detect_level(&text);
                (text, level)
            })
            .collect();

        let full = {
            let mut state = lock(&self.shared.state);
            let log = state
                .deployments
                .entry(target.deployment_id.clone())
                .or_default();
            for (message, level) in prepared {
                let id = batch.time.max(log.last_id + 1);
                log.last_id = id;
                let entry = LogEntry {
                    id,
                    time: super::time_of(id),
                    level,
                    source: target.source.clone(),
                    stream: target.stream,
                    revision: target.revision,
                    build: target.build,
                    message,
                    context: false,
                };
                deliver(&mut log.followers, &entry);
                log.pending_bytes += block::encoded_len(&entry);
                log.pending.push(entry);
            }
            log.pending_since.get_or_insert_with(Instant::now);
            log.block_full()
        };

        if full {
            self.store_block(&target.deployment_id);
        }
    }

    /// Stores the pending block of every deployment that `due` selects.
    fn store_pending(&mut self, due: impl Fn(&DeploymentLog) -> bool) {
        let ids: Vec<String> = {
            let state = lock(&self.shared.state);
            state
                .deployments
                .iter()
                .filter(|(_, log)| !log.pending.is_empty() && due(log))
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in ids {
            self.store_block(&id);
        }
    }

    /// Moves `deployment_id`'s pending entries into a block in the store,
    /// then applies its retention.
    fn store_block(&mut self, deployment_id: &str) {
        let entries = {
            let mut state = lock(&self.shared.state);
            let Some(log) = state.deployments.get_mut(deployment_id) else {
                return;
            };
            log.pending_bytes = 0;
            log.pending_since = None;
            log.flushing = std::mem::take(&mut log.pending);
            log.flushing.clone()
        };
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        let encoded = block::encode(&entries);
        let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let stored =
            self.shared
                .store
                .put_log_block(deployment_id, first.id, last.id, count, &encoded);
        let info = BlockInfo {
            first_id: first.id,
            last_id: last.id,
            lines: entries.len() as u64,
            bytes: encoded.len() as u64,
        };

        let mut state = lock(&self.shared.state);
        let Some(log) = state.deployments.get_mut(deployment_id) else {
            return;
        };
        match stored {
            Ok(_) => {
                log.flushing.clear();
                log.blocks.push_back(info);
                log.stored_lines += info.lines;
                log.stored_bytes += info.bytes;
                let expired = over_limits(log, |_| false);
                drop(state);
                self.remove_blocks(deployment_id, &expired);
            }
            Err(error) => {
                // Keep the entries pending, so a passing storage problem
                // loses nothing; they are tried again with the next block.
                let mut retry = std::mem::take(&mut log.flushing);
                retry.append(&mut log.pending);
                log.pending_bytes = retry.iter().map(block::encoded_len).sum();
                log.pending = retry;
                log.pending_since = Some(Instant::now());
                tracing::error!(deployment_id, %error, "storing a log block failed; its lines stay in memory and are retried");
            }
        }
    }

    fn apply_age_limits(&mut self) {
        let now = super::capture::now_nanos();
        let expired: Vec<(String, Vec<u64>)> = {
            let mut state = lock(&self.shared.state);
            state
                .deployments
                .iter_mut()
                .map(|(id, log)| {
                    let max_age =
                        u64::try_from(log.retention.max_age.as_nanos()).unwrap_or(u64::MAX);
                    let oldest_kept = now.saturating_sub(max_age);
                    (
                        id.clone(),
                        over_limits(log, |block| block.last_id < oldest_kept),
                    )
                })
                .filter(|(_, expired)| !expired.is_empty())
                .collect()
        };
        for (id, first_ids) in expired {
            self.remove_blocks(&id, &first_ids);
        }
    }

    fn remove_blocks(&self, deployment_id: &str, first_ids: &[u64]) {
        if first_ids.is_empty() {
            return;
        }
        if let Err(error) = self
            .shared
            .store
            .remove_log_blocks(deployment_id, first_ids)
        {
            tracing::warn!(deployment_id, %error, "removing log blocks past retention failed; they are removed at the next start");
        }
    }
}

/// Masks the secret values in `text`, also where escape sequences split a
/// value: then the line is stored as its visible text, without colours,
/// because the mask cannot be placed in the raw bytes.
fn mask_line(mask: &SecretMask, text: String) -> String {
    let text = mask.apply(text);
    match super::sanitize::visible_text(&text) {
        Cow::Owned(visible) if mask.finds(&visible) => mask.apply(visible),
        _ => text,
    }
}

/// Drops the oldest blocks from `log`'s accounting while it is over its line
/// or byte limit (keeping the newest block), or while `expired` reports the
/// oldest as too old. Returns the first ids of the dropped blocks.
///
/// Room for one pending block is kept within the line limit, so that the
/// entries a query returns, stored and pending together, stay within it.
fn over_limits(log: &mut DeploymentLog, expired: impl Fn(&BlockInfo) -> bool) -> Vec<u64> {
    let pending_room = log.block_entries() as u64;
    let max_stored_lines = log.retention.max_lines.saturating_sub(pending_room);
    let mut dropped = Vec::new();
    while let Some(oldest) = log.blocks.front().copied() {
        let over = log.blocks.len() > 1
            && (log.stored_lines > max_stored_lines || log.stored_bytes > log.retention.max_bytes);
        if !over && !expired(&oldest) {
            break;
        }
        log.blocks.pop_front();
        log.stored_lines -= oldest.lines;
        log.stored_bytes -= oldest.bytes;
        dropped.push(oldest.first_id);
    }
    dropped
}

/// Hands `entry` to every live follower whose filter passes it.
fn deliver(followers: &mut Vec<Weak<FollowShared>>, entry: &LogEntry) {
    if followers.is_empty() {
        return;
    }
    followers.retain(|follower| {
        let Some(follower) = follower.upgrade() else {
            return false;
        };
        if follower.wants(&EntryRef::from(entry)) {
            follower.push(entry.clone());
        }
        true
    });
}

struct FollowShared {
    filter: LogFilter,
    queue: Mutex<FollowQueue>,
    notify: Notify,
}

#[derive(Default)]
struct FollowQueue {
    entries: VecDeque<LogEntry>,
    missed: u64,
}

impl FollowShared {
    /// Checks whether `entry` goes into the queue: with context, every entry
    /// that may show as context around a match does.
    fn wants(&self, entry: &EntryRef<'_>) -> bool {
        if self.filter.context() > 0 {
            self.filter.passes_base(entry)
        } else {
            self.filter.matches(entry)
        }
    }

    /// Queues `entry`. A full queue drops its oldest entry instead of waiting,
    /// so a slow follower never holds up the writer.
    fn push(&self, entry: LogEntry) {
        {
            let mut queue = lock(&self.queue);
            if queue.entries.len() >= FOLLOW_QUEUE {
                queue.entries.pop_front();
                queue.missed += 1;
            }
            queue.entries.push_back(entry);
        }
        self.notify.notify_one();
    }
}

/// New entries of one deployment as they arrive. Dropping it unregisters it.
pub struct Follower {
    shared: Arc<FollowShared>,
    after: u64,
    window: ContextWindow,
    /// Entries the context window let through, not returned yet.
    ready: VecDeque<LogEntry>,
}

impl Follower {
    /// Skips entries with ids up to `id`, which the caller already showed.
    pub fn skip_through(&mut self, id: u64) {
        self.after = self.after.max(id);
    }

    /// Continues after `shown`, the first page, given the newest entries
    /// of the view that page was read from.
    fn start_after(&mut self, shown: &[LogEntry], edge: Edge) {
        let last_shown = shown.last().map_or(0, |entry| entry.id);
        let mut discarded = Vec::new();
        for (entry, selected) in &edge.entries {
            if entry.id <= last_shown {
                self.window.prime(*selected);
            } else {
                // Not shown yet, and only shown if a match follows: held.
                self.window
                    .feed(&EntryRef::from(entry), *selected, &mut discarded);
            }
        }
        self.skip_through(edge.newest_id.max(last_shown));
    }

    /// Waits for the next item: a count of missed entries first if any were
    /// dropped, else the next entry.
    pub async fn next(&mut self) -> FollowItem {
        loop {
            if let Some(item) = self.try_next() {
                return item;
            }
            self.shared.notify.notified().await;
        }
    }

    fn try_next(&mut self) -> Option<FollowItem> {
        if let Some(entry) = self.ready.pop_front() {
            return Some(FollowItem::Entry(entry));
        }
        let mut queue = lock(&self.shared.queue);
        if queue.missed > 0 {
            let missed = std::mem::take(&mut queue.missed);
            self.window.reset();
            return Some(FollowItem::Missed { missed });
        }
        let context = self.shared.filter.context() > 0;
        let mut shown = Vec::new();
        while let Some(entry) = queue.entries.pop_front() {
            if entry.id <= self.after {
                continue;
            }
            if !context {
                return Some(FollowItem::Entry(entry));
            }
            let selected = self.shared.filter.selects(&EntryRef::from(&entry));
            self.window
                .feed(&EntryRef::from(&entry), selected, &mut shown);
            if !shown.is_empty() {
                break;
            }
        }
        drop(queue);
        self.ready.extend(shown);
        self.ready.pop_front().map(FollowItem::Entry)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
