//! Persistent records of the agent in sled: deployments, revisions, events,
//! encrypted secrets, environment configs, config templates, notification
//! channels, alert rules, alert states, silences and autoscaling decisions.
//!
//! The store has its own small interface, and the engine never uses sled
//! types. So the engine can be tested without a database, and sled can be
//! replaced without touching it. One process owns the store, the agent, and
//! sled's file lock makes a second opener fail with [`StoreError::Locked`].
//!
//! Values are JSON, because records are small and JSON keeps a store
//! directory inspectable. Keys are laid out in [`keys`] so that prefix scans
//! list one deployment's revisions and events in order.
//!
//! # Durability
//!
//! sled writes to disk in the background. Every writer that acknowledges a
//! user action must call [`Store::flush`] (or [`Store::flush_async`]) before
//! it answers, so that an acknowledged action survives a crash.
//!
//! # Deleting
//!
//! An undeployed deployment keeps its record with status `undeployed`, so its
//! revision numbers continue when it is deployed again.
//! [`Store::delete_deployment`] removes only the record and its name index,
//! and it keeps the revisions and events for the audit trail.

mod alerts;
mod autoscale;
mod changes;
mod config;
mod deployments;
mod error;
mod events;
mod keys;
mod logs;
mod metrics;
mod notify;
mod revisions;
mod schema;
mod secrets;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "a failed unwrap fails the test with the error"
)]
mod tests;

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

pub use alerts::StoredAlertState;
pub use autoscale::DECISIONS_KEPT;
pub use changes::{Change, ChangeFeed};
pub use error::StoreError;
pub use events::NewEvent;
pub use logs::{LogBlock, LogBlockInfo};
pub use metrics::{MetricPoint, Resolution};
pub use schema::CURRENT_VERSION;
pub use secrets::{KdfRecord, SecretRecord, VaultRecord};

const ALERT_RULES: &str = "alert_rules";
const ALERT_STATE: &str = "alert_state";
const AUTOSCALE_DECISIONS: &str = "autoscale_decisions";
const DEPLOYMENTS: &str = "deployments";
const DEPLOYMENT_KEYS: &str = "deployment_keys";
const ENV_CONFIGS: &str = "env_configs";
const REVISIONS: &str = "revisions";
const EVENTS: &str = "events";
const EVENTS_BY_DEPLOYMENT: &str = "events_by_deployment";
const META: &str = "meta";
const LOGS: &str = "logs";
const METRICS: &str = "metrics";
const NOTIFY_CHANNELS: &str = "notify_channels";
const NOTIFICATIONS: &str = "notifications";
const SECRETS: &str = "secrets";
const SILENCES: &str = "silences";
const TEMPLATES: &str = "templates";

/// Memory for sled's page cache. sled's default is 1 GiB, far more than the
/// small records kept in sled need (log blocks live in segment files), and
/// the agent should stay small on a shared host.
const CACHE_BYTES: u64 = 16 << 20;

/// Text that sled 0.34 puts in the I/O error when another open file
/// description holds the lock on the `db` file. sled has no error variant
/// for it, so the message is the only signal.
const SLED_LOCK_MESSAGE: &str = "could not acquire lock";

/// A handle to the open store. Clones share the same database.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    alert_rules: sled::Tree,
    alert_state: sled::Tree,
    autoscale_decisions: sled::Tree,
    deployments: sled::Tree,
    deployment_keys: sled::Tree,
    env_configs: sled::Tree,
    revisions: sled::Tree,
    events: sled::Tree,
    events_by_deployment: sled::Tree,
    meta: sled::Tree,
    logs: sled::Tree,
    metrics: sled::Tree,
    notify_channels: sled::Tree,
    notifications: sled::Tree,
    secrets: sled::Tree,
    silences: sled::Tree,
    templates: sled::Tree,
    segments: logs::Segments,
    changes: ChangeFeed,
}

/// The records that a scan decoded, and an error for each entry that it
/// could not decode. One invalid value does not hide the other records.
#[derive(Debug)]
pub struct Scan<T> {
    pub records: Vec<T>,
    pub unreadable: Vec<StoreError>,
}

impl<T> Default for Scan<T> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            unreadable: Vec::new(),
        }
    }
}

impl<T> Scan<T> {
    fn push(&mut self, result: Result<T, StoreError>) {
        match result {
            Ok(record) => self.records.push(record),
            Err(error) => self.unreadable.push(error),
        }
    }
}

impl Store {
    /// Opens or creates the store in `dir`, then checks or migrates its schema.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|source| open_error(dir, source))?;
        schema::prepare(&db, dir)?;

        let tree = |name: &'static str| db.open_tree(name).map_err(storage(name));
        Ok(Store {
            path: dir.to_owned(),
            alert_rules: tree(ALERT_RULES)?,
            alert_state: tree(ALERT_STATE)?,
            autoscale_decisions: tree(AUTOSCALE_DECISIONS)?,
            deployments: tree(DEPLOYMENTS)?,
            deployment_keys: tree(DEPLOYMENT_KEYS)?,
            env_configs: tree(ENV_CONFIGS)?,
            revisions: tree(REVISIONS)?,
            events: tree(EVENTS)?,
            events_by_deployment: tree(EVENTS_BY_DEPLOYMENT)?,
            meta: tree(META)?,
            logs: tree(LOGS)?,
            metrics: tree(METRICS)?,
            notify_channels: tree(NOTIFY_CHANNELS)?,
            notifications: tree(NOTIFICATIONS)?,
            segments: logs::Segments::new(dir),
            changes: ChangeFeed::default(),
            secrets: tree(SECRETS)?,
            silences: tree(SILENCES)?,
            templates: tree(TEMPLATES)?,
            db,
        })
    }

    /// Opens the store like [`Store::open`], but retries for up to 5 s while
    /// it is locked. The file lock is released a moment after its previous
    /// holder let go (sled's flusher thread, or an agent that just stopped),
    /// so the agent, which already holds the home's lock, and tests that
    /// reopen a store use this.
    pub fn open_when_unlocked(dir: &Path) -> Result<Store, StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match Store::open(dir) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                result => return result,
            }
        }
    }

    /// Starts following the changes this store's writers announce.
    pub fn follow_changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.follow()
    }

    /// Announces a change that a reader cannot see in the store itself,
    /// such as a supervisor's new view of its replicas.
    pub fn announce(&self, change: Change) {
        self.changes.announce(change);
    }

    /// Directory the store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes all pending changes to disk and waits for the write to finish.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.segments.sync()?;
        self.db.flush().map_err(|source| self.flush_error(source))?;
        Ok(())
    }

    /// Writes all pending changes to disk without blocking the async runtime.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        self.segments.sync()?;
        let flushed = self.db.flush_async().await;
        flushed.map_err(|source| self.flush_error(source))?;
        Ok(())
    }

    fn flush_error(&self, source: sled::Error) -> StoreError {
        StoreError::Flush {
            path: self.path.clone(),
            source,
        }
    }
}

fn open_error(dir: &Path, source: sled::Error) -> StoreError {
    let locked = matches!(
        &source,
        sled::Error::Io(io) if io.to_string().contains(SLED_LOCK_MESSAGE)
    );

    if locked {
        StoreError::Locked {
            path: dir.to_owned(),
            source,
        }
    } else {
        StoreError::Open {
            path: dir.to_owned(),
            source,
        }
    }
}

/// Returns a mapper from a sled error to [`StoreError::Storage`] for `tree`.
fn storage(tree: &'static str) -> impl Fn(sled::Error) -> StoreError {
    move |source| StoreError::Storage { tree, source }
}

/// Converts a failed transaction over `trees` into a [`StoreError`].
fn transaction_error(trees: &'static str) -> impl Fn(TransactionError<StoreError>) -> StoreError {
    move |error| match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(source) => StoreError::Storage {
            tree: trees,
            source,
        },
    }
}

/// Aborts a transaction with `error`.
fn abort<T>(error: StoreError) -> Result<T, ConflictableTransactionError<StoreError>> {
    Err(ConflictableTransactionError::Abort(error))
}

fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|source| StoreError::Decode {
        tree,
        key: keys::describe(tree, key),
        source,
    })
}

fn encode<T: Serialize>(tree: &'static str, key: &[u8], record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|source| StoreError::Encode {
        tree,
        key: keys::describe(tree, key),
        source,
    })
}
