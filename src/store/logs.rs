//! The `logs` tree: blocks of log entries, keyed by deployment id and the id
//! of the block's first entry.
//!
//! The store treats blocks as opaque bytes; their layout belongs to the `logs`
//! module. Entry ids grow with time, so a key range is a time range and the
//! last key of a deployment is its newest block.

use std::ops::Deref;

use super::{keys, storage, Store, StoreError, LOGS};

/// The bytes of one stored block, without copying them out of the store.
pub struct LogBlock(sled::IVec);

impl Deref for LogBlock {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Store {
    /// Stores a block of `deployment_id` whose first entry has id `first_id`.
    pub fn put_log_block(
        &self,
        deployment_id: &str,
        first_id: u64,
        block: &[u8],
    ) -> Result<(), StoreError> {
        keys::check_component("deployment id", deployment_id)?;
        let key = keys::numbered(deployment_id, first_id);
        self.logs.insert(key, block).map_err(storage(LOGS))?;
        Ok(())
    }

    /// Removes the blocks of `deployment_id` that start at `first_ids`.
    pub fn remove_log_blocks(
        &self,
        deployment_id: &str,
        first_ids: &[u64],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for first_id in first_ids {
            batch.remove(keys::numbered(deployment_id, *first_id));
        }
        self.logs.apply_batch(batch).map_err(storage(LOGS))
    }

    /// Returns the blocks of `deployment_id` whose first entry id is below `before`,
    /// newest first when `newest_first` is set, else oldest first.
    pub fn log_blocks(
        &self,
        deployment_id: &str,
        before: u64,
        newest_first: bool,
    ) -> Box<dyn Iterator<Item = Result<(u64, LogBlock), StoreError>> + Send> {
        let start = keys::numbered(deployment_id, 0);
        let end = keys::numbered(deployment_id, before);
        let range = self.logs.range(start..end);
        let decode = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (key, value) = item.map_err(storage(LOGS))?;
            let first_id = keys::trailing_number(&key).unwrap_or(0);
            Ok((first_id, LogBlock(value)))
        };
        if newest_first {
            Box::new(range.rev().map(decode))
        } else {
            Box::new(range.map(decode))
        }
    }

    /// Returns every stored block of every deployment, as (deployment id, first entry
    /// id, block), in key order. Used once at start-up to learn what retention
    /// has to work with.
    pub fn all_log_blocks(
        &self,
    ) -> impl Iterator<Item = Result<(String, u64, LogBlock), StoreError>> + '_ {
        self.logs.iter().map(|item| {
            let (key, value) = item.map_err(storage(LOGS))?;
            let split = key.len().saturating_sub(9);
            let deployment_id = String::from_utf8_lossy(&key[..split]).into_owned();
            let first_id = keys::trailing_number(&key).unwrap_or(0);
            Ok((deployment_id, first_id, LogBlock(value)))
        })
    }
}
