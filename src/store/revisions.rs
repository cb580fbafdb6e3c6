//! Numbered revisions of each deployment, keyed so that a prefix scan lists
//! them in ascending order.

use serde::de::DeserializeOwned;

use crate::model::{HistoryEntry, Revision};

use super::{decode, encode, keys, storage, Scan, Store, StoreError, REVISIONS};

impl Store {
    /// Inserts a revision, or replaces it to record a new status or reason.
    pub fn put_revision(&self, revision: &Revision) -> Result<(), StoreError> {
        keys::check_component("deployment id", &revision.deployment_id)?;
        let key = keys::numbered(&revision.deployment_id, revision.revision);
        let value = encode(REVISIONS, &key, revision)?;

        self.revisions
            .insert(key, value)
            .map_err(storage(REVISIONS))?;
        Ok(())
    }

    /// Reads revision `number` of the deployment with `id`.
    pub fn get_revision(&self, id: &str, number: u64) -> Result<Option<Revision>, StoreError> {
        let key = keys::numbered(id, number);
        let value = self.revisions.get(&key).map_err(storage(REVISIONS))?;
        value
            .map(|bytes| decode(REVISIONS, &key, &bytes))
            .transpose()
    }

    /// Lists the revisions of a deployment with their specs, oldest first.
    pub fn revisions(&self, id: &str) -> Result<Scan<Revision>, StoreError> {
        self.scan_revisions(id)
    }

    /// Lists the history rows of a deployment, newest first. This skips the
    /// specs, so it reads less than [`Store::revisions`].
    pub fn history(&self, id: &str) -> Result<Scan<HistoryEntry>, StoreError> {
        let mut scan: Scan<HistoryEntry> = self.scan_revisions(id)?;
        scan.records.reverse();
        Ok(scan)
    }

    /// Reads the revision with the highest number, with its spec.
    pub fn latest_revision(&self, id: &str) -> Result<Option<Revision>, StoreError> {
        let last = self.revisions.scan_prefix(keys::prefix(id)).next_back();
        let Some(entry) = last else {
            return Ok(None);
        };
        let (key, value) = entry.map_err(storage(REVISIONS))?;
        decode(REVISIONS, &key, &value).map(Some)
    }

    /// Returns the highest revision number of a deployment from the keys
    /// alone, so an invalid value does not block numbering the next revision.
    pub fn latest_revision_number(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let last = self.revisions.scan_prefix(keys::prefix(id)).next_back();
        let Some(entry) = last else {
            return Ok(None);
        };
        let (key, _) = entry.map_err(storage(REVISIONS))?;
        Ok(keys::trailing_number(&key))
    }

    /// Decodes every revision of a deployment as `T`, in ascending order.
    /// Fields that `T` lacks, such as the spec for [`HistoryEntry`], are skipped.
    fn scan_revisions<T: DeserializeOwned>(&self, id: &str) -> Result<Scan<T>, StoreError> {
        let mut scan = Scan::default();

        for entry in self.revisions.scan_prefix(keys::prefix(id)) {
            let (key, value) = entry.map_err(storage(REVISIONS))?;
            scan.push(decode(REVISIONS, &key, &value));
        }
        Ok(scan)
    }
}
