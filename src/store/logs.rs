//! Log blocks: the bytes in append-only segment files, an index in the
//! `logs` tree.
//!
//! sled keeps about as much memory as the data it holds, which for logs, the
//! bulk of what the agent stores, would be hundreds of megabytes. So blocks
//! go to segment files under `log-blocks/DEPLOYMENT_ID/` in the store's
//! directory. Positioned reads bring them back, served by the kernel's page
//! cache. The `logs` tree holds one small index entry per block, keyed by
//! deployment id and the id of the block's first entry. Entry ids grow with
//! time, so a key range is a time range.
//!
//! The store treats blocks as opaque bytes; their layout belongs to the
//! `logs` module. A block is appended to its segment before its index entry
//! is written, so an index entry never points at bytes not yet written. A
//! segment file is removed once no index entry points into it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{keys, storage, Store, StoreError, LOGS};

/// Name of the directory of segment files, inside the store's directory.
pub(super) const SEGMENTS_DIR: &str = "log-blocks";

/// A segment takes blocks until it reaches this size. Retention frees disk
/// a segment at a time, so this is also how far disk use may lag behind it.
const SEGMENT_BYTES: u64 = 8 << 20;

/// Length of an index entry: segment, offset, length, count, last id.
const INDEX_LEN: usize = 8 + 8 + 4 + 4 + 8;

/// The bytes of one stored block.
pub type LogBlock = Vec<u8>;

/// The location and contents of a block, from its index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBlockInfo {
    pub first_id: u64,
    pub last_id: u64,
    /// Entries in the block.
    pub count: u32,
    /// Bytes of the block in its segment.
    pub len: u32,
    segment: u64,
    offset: u64,
}

impl LogBlockInfo {
    fn encode(&self) -> [u8; INDEX_LEN] {
        let mut out = [0u8; INDEX_LEN];
        out[0..8].copy_from_slice(&self.segment.to_be_bytes());
        out[8..16].copy_from_slice(&self.offset.to_be_bytes());
        out[16..20].copy_from_slice(&self.len.to_be_bytes());
        out[20..24].copy_from_slice(&self.count.to_be_bytes());
        out[24..32].copy_from_slice(&self.last_id.to_be_bytes());
        out
    }

    fn decode(first_id: u64, bytes: &[u8]) -> Option<Self> {
        let number = |range: std::ops::Range<usize>| -> Option<u64> {
            let slice = bytes.get(range)?;
            let mut padded = [0u8; 8];
            padded[8 - slice.len()..].copy_from_slice(slice);
            Some(u64::from_be_bytes(padded))
        };
        if bytes.len() != INDEX_LEN {
            return None;
        }
        Some(Self {
            first_id,
            segment: number(0..8)?,
            offset: number(8..16)?,
            len: u32::try_from(number(16..20)?).ok()?,
            count: u32::try_from(number(20..24)?).ok()?,
            last_id: number(24..32)?,
        })
    }
}

/// The segment files of the store, and the one each deployment appends to.
#[derive(Clone)]
pub(super) struct Segments {
    dir: PathBuf,
    writers: Arc<Mutex<HashMap<String, SegmentWriter>>>,
}

struct SegmentWriter {
    segment: u64,
    file: File,
    len: u64,
}

impl Segments {
    pub(super) fn new(store_dir: &Path) -> Self {
        Self {
            dir: store_dir.join(SEGMENTS_DIR),
            writers: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn deployment_dir(&self, deployment_id: &str) -> PathBuf {
        self.dir.join(deployment_id)
    }

    fn path(&self, deployment_id: &str, segment: u64) -> PathBuf {
        self.deployment_dir(deployment_id)
            .join(format!("{segment:016x}.seg"))
    }

    fn writers(&self) -> MutexGuard<'_, HashMap<String, SegmentWriter>> {
        self.writers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `block` to the deployment's current segment, starting a new
    /// segment named `first_id` when there is none or it is full. Returns the
    /// segment and the offset of the block.
    fn append(
        &self,
        deployment_id: &str,
        first_id: u64,
        block: &[u8],
    ) -> Result<(u64, u64), StoreError> {
        let mut writers = self.writers();
        let full = writers
            .get(deployment_id)
            .is_none_or(|writer| writer.len >= SEGMENT_BYTES);
        if full {
            let writer = self.create(deployment_id, first_id)?;
            writers.insert(deployment_id.to_owned(), writer);
        }
        let Some(writer) = writers.get_mut(deployment_id) else {
            return Err(self.io_error("opening", &self.deployment_dir(deployment_id), None));
        };

        let offset = writer.len;
        if let Err(source) = writer.file.write_all(block) {
            // A partial write leaves bytes that no index entry points to;
            // later blocks go after them.
            writer.len = writer.file.metadata().map_or(writer.len, |meta| meta.len());
            let path = self.path(deployment_id, writer.segment);
            return Err(self.io_error("writing", &path, Some(source)));
        }
        writer.len += block.len() as u64;
        Ok((writer.segment, offset))
    }

    fn create(&self, deployment_id: &str, segment: u64) -> Result<SegmentWriter, StoreError> {
        let dir = self.deployment_dir(deployment_id);
        fs::create_dir_all(&dir).map_err(|source| self.io_error("creating", &dir, Some(source)))?;
        let path = self.path(deployment_id, segment);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| self.io_error("creating", &path, Some(source)))?;
        let len = file.metadata().map_or(0, |meta| meta.len());
        Ok(SegmentWriter { segment, file, len })
    }

    /// Reads one block with a positioned read.
    fn read(
        &self,
        deployment_id: &str,
        info: &LogBlockInfo,
        open: &mut Option<(u64, File)>,
    ) -> Result<LogBlock, StoreError> {
        let path = self.path(deployment_id, info.segment);
        let reuse = open
            .as_ref()
            .is_some_and(|(segment, _)| *segment == info.segment);
        if !reuse {
            let file = File::open(&path)
                .map_err(|source| self.io_error("reading", &path, Some(source)))?;
            *open = Some((info.segment, file));
        }
        let Some((_, file)) = open.as_ref() else {
            return Err(self.io_error("reading", &path, None));
        };
        let mut block = vec![0u8; info.len as usize];
        file.read_exact_at(&mut block, info.offset)
            .map_err(|source| self.io_error("reading", &path, Some(source)))?;
        Ok(block)
    }

    /// Removes the deployment's segments below `keep_from` except the one it
    /// appends to.
    fn remove_below(&self, deployment_id: &str, keep_from: u64) -> Result<(), StoreError> {
        let current = self
            .writers()
            .get(deployment_id)
            .map(|writer| writer.segment);
        let dir = self.deployment_dir(deployment_id);
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(segment) = name
                .to_str()
                .and_then(|name| name.strip_suffix(".seg"))
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            else {
                continue;
            };
            if segment < keep_from && Some(segment) != current {
                let path = entry.path();
                fs::remove_file(&path)
                    .map_err(|source| self.io_error("removing", &path, Some(source)))?;
            }
        }
        Ok(())
    }

    /// Writes the open segments to disk.
    pub(super) fn sync(&self) -> Result<(), StoreError> {
        for (deployment_id, writer) in self.writers().iter() {
            if let Err(source) = writer.file.sync_data() {
                let path = self.path(deployment_id, writer.segment);
                return Err(self.io_error("syncing", &path, Some(source)));
            }
        }
        Ok(())
    }

    fn io_error(
        &self,
        action: &'static str,
        path: &Path,
        source: Option<std::io::Error>,
    ) -> StoreError {
        StoreError::LogFile {
            action,
            path: path.to_path_buf(),
            source: source.unwrap_or_else(|| std::io::Error::other("no open segment")),
        }
    }
}

impl Store {
    /// Stores a block of `deployment_id` whose entries have ids `first_id`
    /// to `last_id`.
    pub fn put_log_block(
        &self,
        deployment_id: &str,
        first_id: u64,
        last_id: u64,
        count: u32,
        block: &[u8],
    ) -> Result<LogBlockInfo, StoreError> {
        keys::check_component("deployment id", deployment_id)?;
        let (segment, offset) = self.segments.append(deployment_id, first_id, block)?;
        let info = LogBlockInfo {
            first_id,
            last_id,
            count,
            len: u32::try_from(block.len()).unwrap_or(u32::MAX),
            segment,
            offset,
        };
        let key = keys::numbered(deployment_id, first_id);
        self.logs
            .insert(key, &info.encode()[..])
            .map_err(storage(LOGS))?;
        Ok(info)
    }

    /// Removes the blocks of `deployment_id` that start at `first_ids`, and
    /// the segment files that no block points into any more.
    pub fn remove_log_blocks(
        &self,
        deployment_id: &str,
        first_ids: &[u64],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for first_id in first_ids {
            batch.remove(keys::numbered(deployment_id, *first_id));
        }
        self.logs.apply_batch(batch).map_err(storage(LOGS))?;

        let oldest_kept = self.logs.scan_prefix(keys::prefix(deployment_id)).next();
        let keep_from = match oldest_kept {
            Some(Ok((key, value))) => {
                let first_id = keys::trailing_number(&key).unwrap_or(0);
                LogBlockInfo::decode(first_id, &value).map_or(0, |info| info.segment)
            }
            Some(Err(error)) => return Err(storage(LOGS)(error)),
            None => u64::MAX,
        };
        self.segments.remove_below(deployment_id, keep_from)
    }

    /// Returns the blocks of `deployment_id` whose first entry id is below
    /// `before`, newest first when `newest_first` is set, else oldest first.
    pub fn log_blocks(
        &self,
        deployment_id: &str,
        before: u64,
        newest_first: bool,
    ) -> impl Iterator<Item = Result<(LogBlockInfo, LogBlock), StoreError>> + '_ {
        self.log_blocks_between(deployment_id, 0, before, newest_first)
    }

    /// Returns the blocks of `deployment_id` whose first entry id is at
    /// least `from` and below `before`, in the order [`Store::log_blocks`]
    /// gives them.
    pub fn log_blocks_between(
        &self,
        deployment_id: &str,
        from: u64,
        before: u64,
        newest_first: bool,
    ) -> impl Iterator<Item = Result<(LogBlockInfo, LogBlock), StoreError>> + '_ {
        let start = keys::numbered(deployment_id, from.min(before));
        let end = keys::numbered(deployment_id, before);
        let range = self.logs.range(start..end);
        let range: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + Send> =
            if newest_first {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };

        let deployment_id = deployment_id.to_owned();
        let mut open = None;
        range.map(move |item| {
            let (key, value) = item.map_err(storage(LOGS))?;
            let info = decode_index(&key, &value)?;
            let block = self.segments.read(&deployment_id, &info, &mut open)?;
            Ok((info, block))
        })
    }

    /// Returns the index entry of every stored block of every deployment, in
    /// key order, without reading the blocks. Used at start-up to learn what
    /// retention has to work with.
    pub fn all_log_blocks(
        &self,
    ) -> impl Iterator<Item = Result<(String, LogBlockInfo), StoreError>> + '_ {
        self.logs.iter().map(|item| {
            let (key, value) = item.map_err(storage(LOGS))?;
            let split = key.len().saturating_sub(9);
            let deployment_id = String::from_utf8_lossy(&key[..split]).into_owned();
            Ok((deployment_id, decode_index(&key, &value)?))
        })
    }
}

fn decode_index(key: &[u8], value: &[u8]) -> Result<LogBlockInfo, StoreError> {
    let first_id = keys::trailing_number(key).unwrap_or(0);
    LogBlockInfo::decode(first_id, value).ok_or_else(|| StoreError::LogIndex {
        key: keys::describe(LOGS, key),
        len: value.len(),
    })
}
