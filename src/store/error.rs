//! Errors from the store, with the tree, key or path they concern.

use std::path::PathBuf;

/// A failure to open, read or write the store.
///
/// Display messages do not repeat the source error, because callers print the
/// whole `source()` chain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "another shipdeck agent is using the store at {path}; \
         stop it with `shipdeck agent stop` or choose another --home"
    )]
    Locked {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },

    #[error(
        "failed to open the store at {path}; check that the directory and its parent are writable"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },

    #[error(
        "the store at {path} has schema version {found}, but this shipdeck supports \
         only up to version {supported}; upgrade shipdeck to open it"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },

    #[error(
        "the store at {path} has schema version {found}, and this shipdeck has no \
         migration from it to version {supported}; use the shipdeck release that \
         created the store"
    )]
    MissingMigration {
        path: PathBuf,
        found: u64,
        supported: u64,
    },

    #[error("failed to migrate the store at {path} from schema version {from} ({description})")]
    Migration {
        path: PathBuf,
        from: u64,
        description: &'static str,
        #[source]
        source: Box<StoreError>,
    },

    #[error("failed to read or write tree `{tree}` of the store")]
    Storage {
        tree: &'static str,
        #[source]
        source: sled::Error,
    },

    #[error(
        "failed {action} log segment {path}; check the disk space and permissions of the store"
    )]
    LogFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "invalid index entry in tree `logs` at key {key}: {len} bytes; \
         restore the store from a backup or remove that key"
    )]
    LogIndex { key: String, len: usize },

    #[error("failed to flush the store at {path} to disk")]
    Flush {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },

    #[error(
        "invalid record in tree `{tree}` at key {key}; \
         restore the store from a backup or remove that key"
    )]
    Decode {
        tree: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("failed to encode the record for tree `{tree}` at key {key}")]
    Encode {
        tree: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "index tree `{tree}` maps key {key} to a missing record in tree `{target}`; \
         remove the index key or restore the store from a backup"
    )]
    DanglingIndex {
        tree: &'static str,
        key: String,
        target: &'static str,
    },

    #[error(
        "{field} {value:?} contains a NUL byte, which the store uses as a key separator; \
         choose a value without it"
    )]
    InvalidKey { field: &'static str, value: String },

    #[error(
        "invalid key {key} in tree `{tree}`: it lacks the NUL separator between \
         deployment id and name; restore the store from a backup or remove that key"
    )]
    MalformedKey { tree: &'static str, key: String },

    #[error(
        "deployment {name} ({environment}) already exists with id {existing_id}; \
         update that deployment instead of creating {new_id}"
    )]
    KeyTaken {
        name: String,
        environment: String,
        existing_id: String,
        new_id: String,
    },

    #[error(
        "revision {revision} belongs to deployment {revision_deployment_id}, \
         not to deployment {deployment_id}; pass the revision of that deployment"
    )]
    RevisionMismatch {
        deployment_id: String,
        revision_deployment_id: String,
        revision: u64,
    },
}
