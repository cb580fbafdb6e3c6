//! Encrypted secrets and the vault's key metadata.
//!
//! The store keeps only what the vault hands it: ciphertexts and the
//! parameters needed to check a master key. It never receives a secret value or
//! a key, so nothing here can leak one.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use time::OffsetDateTime;

use super::{decode, encode, storage, transaction_error, Scan, Store, StoreError, META, SECRETS};

/// Key in `meta` of the vault's [`VaultRecord`].
const VAULT_KEY: &[u8] = b"vault";

/// One stored secret: its ciphertext (hex) and when it was last set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRecord {
    pub ciphertext: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The vault's key metadata, by which it recognises its master key: the key
/// id, a check ciphertext that only the right key decrypts, and the key
/// derivation parameters when the key comes from a passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultRecord {
    pub format: u32,
    pub key_id: u32,
    /// Hex ciphertext of a fixed text, encrypted under the master key.
    pub check: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<KdfRecord>,
}

/// Argon2 parameters and salt of a passphrase-derived master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdfRecord {
    pub algorithm: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hex salt.
    pub salt: String,
}

impl Store {
    /// Reads the vault's key metadata, or `None` for a vault never used.
    pub fn vault_record(&self) -> Result<Option<VaultRecord>, StoreError> {
        let value = self.meta.get(VAULT_KEY).map_err(storage(META))?;
        value
            .map(|bytes| decode(META, VAULT_KEY, &bytes))
            .transpose()
    }

    /// Writes the vault's key metadata and flushes it, because losing it
    /// after secrets were encrypted would lock them away.
    pub fn put_vault_record(&self, record: &VaultRecord) -> Result<(), StoreError> {
        let bytes = encode(META, VAULT_KEY, record)?;
        self.meta.insert(VAULT_KEY, bytes).map_err(storage(META))?;
        self.flush()
    }

    /// Reads the secret stored under `name`.
    pub fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        let value = self.secrets.get(name).map_err(storage(SECRETS))?;
        value
            .map(|bytes| decode(SECRETS, name.as_bytes(), &bytes))
            .transpose()
    }

    /// Lists every secret with its name, ordered by name.
    pub fn secrets(&self) -> Scan<(String, SecretRecord)> {
        let mut scan = Scan::default();
        for entry in self.secrets.iter() {
            let result = entry.map_err(storage(SECRETS)).and_then(|(key, value)| {
                let record = decode(SECRETS, &key, &value)?;
                Ok((String::from_utf8_lossy(&key).into_owned(), record))
            });
            scan.push(result);
        }
        scan
    }

    /// Inserts or replaces the secret `name` and flushes it to disk.
    pub fn put_secret(&self, name: &str, record: &SecretRecord) -> Result<(), StoreError> {
        let bytes = encode(SECRETS, name.as_bytes(), record)?;
        self.secrets.insert(name, bytes).map_err(storage(SECRETS))?;
        self.flush()
    }

    /// Removes the secret `name`; returns whether it existed.
    pub fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self.secrets.remove(name).map_err(storage(SECRETS))?;
        self.flush()?;
        Ok(removed.is_some())
    }

    /// Replaces the vault metadata and every listed secret in one
    /// transaction, as a key rotation needs: either all secrets are under
    /// the new key with the new metadata, or nothing changed.
    pub fn rotate_vault(
        &self,
        record: &VaultRecord,
        secrets: &[(String, SecretRecord)],
    ) -> Result<(), StoreError> {
        let meta_value = encode(META, VAULT_KEY, record)?;
        let mut encoded = Vec::with_capacity(secrets.len());
        for (name, secret) in secrets {
            encoded.push((name.as_str(), encode(SECRETS, name.as_bytes(), secret)?));
        }

        (&self.meta, &self.secrets)
            .transaction(|(meta, stored)| {
                meta.insert(VAULT_KEY, meta_value.as_slice())?;
                for (name, value) in &encoded {
                    stored.insert(name.as_bytes(), value.as_slice())?;
                }
                Ok(())
            })
            .map_err(transaction_error("meta, secrets"))?;
        self.flush()
    }
}
