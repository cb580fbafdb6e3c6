//! Schema version and migrations.
//!
//! The `meta` tree stores the schema version. A new store gets
//! [`CURRENT_VERSION`]. An older store runs the steps of [`MIGRATIONS`] in
//! order, and the version is written after each step, so an interrupted
//! migration resumes at the step that did not finish.

use std::path::Path;

use super::{decode, storage, StoreError, META};

/// Schema version that this build reads and writes.
pub const CURRENT_VERSION: u64 = 1;

const VERSION_KEY: &[u8] = b"schema_version";

/// One step that converts a store at schema version `from` to `from + 1`.
pub(super) struct Migration {
    pub from: u64,
    pub description: &'static str,
    pub apply: fn(&sled::Db) -> Result<(), StoreError>,
}

/// Steps from each old schema version. The table is empty while version 1 is
/// the only version.
pub(super) const MIGRATIONS: &[Migration] = &[];

/// Writes the current version into a new store, rejects a newer store and
/// migrates an older one.
pub(super) fn prepare(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    match read_version(db)? {
        None => write_version(db, CURRENT_VERSION),
        Some(found) if found > CURRENT_VERSION => Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: CURRENT_VERSION,
        }),
        Some(found) => migrate(db, path, found, CURRENT_VERSION, MIGRATIONS),
    }
}

/// Applies the steps of `steps` from version `found` up to `target`.
pub(super) fn migrate(
    db: &sled::Db,
    path: &Path,
    found: u64,
    target: u64,
    steps: &[Migration],
) -> Result<(), StoreError> {
    let mut version = found;

    while version < target {
        let step = steps
            .iter()
            .find(|step| step.from == version)
            .ok_or_else(|| StoreError::MissingMigration {
                path: path.to_owned(),
                found: version,
                supported: target,
            })?;

        (step.apply)(db).map_err(|source| StoreError::Migration {
            path: path.to_owned(),
            from: version,
            description: step.description,
            source: Box::new(source),
        })?;

        version += 1;
        write_version(db, version)?;
        db.flush().map_err(|source| StoreError::Flush {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(())
}

pub(super) fn read_version(db: &sled::Db) -> Result<Option<u64>, StoreError> {
    let meta = db.open_tree(META).map_err(storage(META))?;
    let Some(bytes) = meta.get(VERSION_KEY).map_err(storage(META))? else {
        return Ok(None);
    };
    decode(META, VERSION_KEY, &bytes).map(Some)
}

pub(super) fn write_version(db: &sled::Db, version: u64) -> Result<(), StoreError> {
    let meta = db.open_tree(META).map_err(storage(META))?;
    let bytes = version.to_string().into_bytes();
    meta.insert(VERSION_KEY, bytes).map_err(storage(META))?;
    Ok(())
}
