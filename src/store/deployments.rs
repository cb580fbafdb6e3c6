//! Deployment records and the name index that finds them by name and environment.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use crate::model::{Deployment, DeploymentKey, Revision};

use super::{
    abort, decode, encode, keys, storage, transaction_error, Change, Scan, Store, StoreError,
    DEPLOYMENTS, DEPLOYMENT_KEYS, REVISIONS,
};

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Store {
    /// Inserts or replaces a deployment and its name index in one transaction.
    ///
    /// Fails with [`StoreError::KeyTaken`] if another deployment id already
    /// has the same name and environment. A changed name or environment moves
    /// the index entry.
    pub fn put_deployment(&self, deployment: &Deployment) -> Result<(), StoreError> {
        let record = DeploymentWrite::new(deployment)?;

        (&self.deployments, &self.deployment_keys)
            .transaction(|(deployments, index)| record.apply(deployments, index))
            .map_err(transaction_error("deployments, deployment_keys"))?;
        self.announce_deployment(&deployment.id);
        Ok(())
    }

    /// Writes a deployment and one of its revisions in one transaction, as a
    /// deploy, rollback or scale does.
    pub fn put_deployment_and_revision(
        &self,
        deployment: &Deployment,
        revision: &Revision,
    ) -> Result<(), StoreError> {
        if revision.deployment_id != deployment.id {
            return Err(StoreError::RevisionMismatch {
                deployment_id: deployment.id.clone(),
                revision_deployment_id: revision.deployment_id.clone(),
                revision: revision.revision,
            });
        }
        let record = DeploymentWrite::new(deployment)?;
        let revision_key = keys::numbered(&revision.deployment_id, revision.revision);
        let revision_value = encode(REVISIONS, &revision_key, revision)?;

        (&self.deployments, &self.deployment_keys, &self.revisions)
            .transaction(|(deployments, index, revisions)| {
                record.apply(deployments, index)?;
                revisions.insert(revision_key.as_slice(), revision_value.as_slice())?;
                Ok(())
            })
            .map_err(transaction_error("deployments, deployment_keys, revisions"))?;
        self.announce_deployment(&deployment.id);
        Ok(())
    }

    /// Reads the deployment with `id`.
    pub fn get_deployment(&self, id: &str) -> Result<Option<Deployment>, StoreError> {
        let value = self.deployments.get(id).map_err(storage(DEPLOYMENTS))?;
        value
            .map(|bytes| decode(DEPLOYMENTS, id.as_bytes(), &bytes))
            .transpose()
    }

    /// Finds the deployment with this name and environment with one index read.
    pub fn find_deployment(&self, key: &DeploymentKey) -> Result<Option<Deployment>, StoreError> {
        let index_key = keys::deployment_index(key);
        let id = self
            .deployment_keys
            .get(&index_key)
            .map_err(storage(DEPLOYMENT_KEYS))?;

        match id {
            None => Ok(None),
            Some(id) => self.resolve_index(&index_key, &id).map(Some),
        }
    }

    /// Lists the deployments with `name` in every environment, ordered by
    /// environment.
    pub fn deployments_named(&self, name: &str) -> Result<Scan<Deployment>, StoreError> {
        let mut scan = Scan::default();

        for entry in self.deployment_keys.scan_prefix(keys::prefix(name)) {
            let (index_key, id) = entry.map_err(storage(DEPLOYMENT_KEYS))?;
            scan.push(self.resolve_index(&index_key, &id));
        }
        Ok(scan)
    }

    /// Lists all deployments, ordered by name and then environment.
    pub fn list_deployments(&self) -> Result<Scan<Deployment>, StoreError> {
        let mut scan: Scan<Deployment> = Scan::default();

        for entry in self.deployments.iter() {
            let (id, value) = entry.map_err(storage(DEPLOYMENTS))?;
            scan.push(decode(DEPLOYMENTS, &id, &value));
        }

        scan.records
            .sort_by(|a, b| (&a.name, &a.environment).cmp(&(&b.name, &b.environment)));
        Ok(scan)
    }

    /// Removes a deployment record and its name index, and returns the removed
    /// record. Its revisions and events stay in the store.
    pub fn delete_deployment(&self, id: &str) -> Result<Option<Deployment>, StoreError> {
        let removed = (&self.deployments, &self.deployment_keys)
            .transaction(|(deployments, index)| {
                let Some(old) = read_deployment(deployments, id)? else {
                    return Ok(None);
                };
                deployments.remove(id.as_bytes())?;
                index.remove(keys::deployment_index(&old.key()))?;
                Ok(Some(old))
            })
            .map_err(transaction_error("deployments, deployment_keys"))?;
        if removed.is_some() {
            self.announce_deployment(id);
        }
        Ok(removed)
    }

    fn announce_deployment(&self, id: &str) {
        self.announce(Change::Deployment { id: id.to_owned() });
    }

    /// Reads the deployment that an index entry points to.
    fn resolve_index(&self, index_key: &[u8], id: &[u8]) -> Result<Deployment, StoreError> {
        let value = self.deployments.get(id).map_err(storage(DEPLOYMENTS))?;
        let Some(value) = value else {
            return Err(StoreError::DanglingIndex {
                tree: DEPLOYMENT_KEYS,
                key: keys::describe(DEPLOYMENT_KEYS, index_key),
                target: DEPLOYMENTS,
            });
        };
        decode(DEPLOYMENTS, id, &value)
    }
}

/// A deployment encoded once, outside the transaction, because sled may run
/// a transaction closure more than once.
struct DeploymentWrite<'a> {
    deployment: &'a Deployment,
    value: Vec<u8>,
    index_key: Vec<u8>,
}

impl<'a> DeploymentWrite<'a> {
    fn new(deployment: &'a Deployment) -> Result<Self, StoreError> {
        keys::check_component("deployment id", &deployment.id)?;
        keys::check_component("deployment name", &deployment.name)?;
        keys::check_component("environment", &deployment.environment)?;

        Ok(Self {
            deployment,
            value: encode(DEPLOYMENTS, deployment.id.as_bytes(), deployment)?,
            index_key: keys::deployment_index(&deployment.key()),
        })
    }

    fn apply(&self, deployments: &TransactionalTree, index: &TransactionalTree) -> TxResult<()> {
        let id = self.deployment.id.as_bytes();

        if let Some(owner) = index.get(&self.index_key)? {
            if owner.as_ref() != id {
                return abort(self.key_taken(&owner));
            }
        }

        if let Some(old) = read_deployment(deployments, &self.deployment.id)? {
            if old.key() != self.deployment.key() {
                index.remove(keys::deployment_index(&old.key()))?;
            }
        }

        deployments.insert(id, self.value.as_slice())?;
        index.insert(self.index_key.as_slice(), id)?;
        Ok(())
    }

    fn key_taken(&self, owner: &[u8]) -> StoreError {
        StoreError::KeyTaken {
            name: self.deployment.name.clone(),
            environment: self.deployment.environment.clone(),
            existing_id: String::from_utf8_lossy(owner).into_owned(),
            new_id: self.deployment.id.clone(),
        }
    }
}

fn read_deployment(deployments: &TransactionalTree, id: &str) -> TxResult<Option<Deployment>> {
    let Some(value) = deployments.get(id.as_bytes())? else {
        return Ok(None);
    };
    match decode(DEPLOYMENTS, id.as_bytes(), &value) {
        Ok(deployment) => Ok(Some(deployment)),
        Err(error) => abort(error),
    }
}
