//! The secret vault: secret values encrypted under the master key and kept
//! in the store.
//!
//! The vault is unlocked once, when the agent starts, and keeps the key in
//! memory that is zeroed when it is dropped. The store contains a check
//! ciphertext that only the right key decrypts, so a wrong key or
//! passphrase is caught at start, before anything is encrypted under it.
//! One lock serialises every operation, so a key rotation never races a
//! write.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::cipher::{self, CipherError, MasterKey};
use super::keys::{self, KdfParams, KeyError, KeySource, MASTER_KEY_VAR, PASSPHRASE_FILE_VAR};
use super::render::SecretLookup;
use super::secret::{check_name, check_value, SecretRuleError, SecretValue};
use crate::store::{KdfRecord, SecretRecord, Store, StoreError, VaultRecord};

/// Version of the vault record written by this build.
const VAULT_FORMAT: u32 = 1;

/// Context and text of the check ciphertext.
const CHECK_CONTEXT: &[u8] = b"shipdeck-vault-check";
const CHECK_TEXT: &[u8] = b"shipdeck vault key check";

const ARGON2ID: &str = "argon2id";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "cannot unlock the secret vault: the master key or passphrase is not the one the \
         vault was created with; start the agent with that key or passphrase"
    )]
    Locked,
    #[error(
        "the secret vault exists, but no master key is configured and the key file {path} \
         is missing; restore the key file from a backup, or give the key in \
         {MASTER_KEY_VAR} or a passphrase file in {PASSPHRASE_FILE_VAR}"
    )]
    KeyFileMissing { path: PathBuf },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Rule(#[from] SecretRuleError),
    #[error("secret {name:?} not found; list secrets with `shipdeck secrets ls`")]
    NotFound { name: String },
    #[error(
        "secret {name:?} cannot be decrypted ({source}); set it again with \
         `shipdeck secrets set {name}` or remove it with `shipdeck secrets rm {name}`"
    )]
    Unreadable {
        name: String,
        #[source]
        source: CipherError,
    },
    #[error("the stored record of {record} is not valid hex; restore the store from a backup")]
    Corrupt { record: String },
    #[error("encrypting secret {name:?} failed: {source}")]
    Encrypt {
        name: String,
        #[source]
        source: CipherError,
    },
    #[error(
        "this agent's master key is the key file {path}, and rotating it generates the new \
         key; run `shipdeck secrets rotate-key` without --stdin"
    )]
    UnexpectedReplacement { path: PathBuf },
    #[error(
        "this agent's master key comes from {origin}; pass the new {expected} on standard input \
         with `shipdeck secrets rotate-key --stdin`"
    )]
    ReplacementMissing {
        origin: &'static str,
        expected: &'static str,
    },
    #[error("the new master key or passphrase is the current one; choose another")]
    SameKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A secret's name and when it was last set, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The result of a key rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// Number of secrets encrypted again under the new key.
    pub secrets: usize,
    pub key_id: u32,
    /// The change the operator must make before the agent starts again, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// Memory and passes of the passphrase key derivation.
#[derive(Debug, Clone, Copy)]
pub struct KdfCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for KdfCost {
    fn default() -> Self {
        Self {
            memory_kib: keys::KDF_MEMORY_KIB,
            iterations: keys::KDF_ITERATIONS,
        }
    }
}

/// The source of the unlocked key, which decides how rotation works.
enum KeyOrigin {
    File(PathBuf),
    Environment,
    Passphrase,
}

struct Unlocked {
    key: MasterKey,
    key_id: u32,
    origin: KeyOrigin,
}

pub struct Vault {
    store: Store,
    cost: KdfCost,
    state: Mutex<Unlocked>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("store", &self.store.path())
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl Vault {
    /// Unlocks the vault in `store` with the key from `source`, creating
    /// the vault (and the key file) on first use.
    pub fn open(store: Store, source: KeySource) -> Result<Self, VaultError> {
        Self::open_with_cost(store, source, KdfCost::default())
    }

    /// Like [`Vault::open`], with the cost of a new passphrase derivation.
    /// An existing vault always uses the parameters stored with it.
    pub fn open_with_cost(
        store: Store,
        source: KeySource,
        cost: KdfCost,
    ) -> Result<Self, VaultError> {
        let record = store.vault_record()?;
        let (key, origin, kdf) = match source {
            KeySource::File(path) => {
                let key = file_key(&path, record.as_ref())?;
                (key, KeyOrigin::File(path), None)
            }
            KeySource::Environment(key) => (key, KeyOrigin::Environment, None),
            KeySource::Passphrase { passphrase, .. } => {
                let params = match &record {
                    Some(record) => stored_params(record)?,
                    None => fresh_params(cost)?,
                };
                let key = keys::derive_key(&passphrase, &params)?;
                (key, KeyOrigin::Passphrase, Some(params))
            }
        };

        let key_id = match &record {
            Some(record) => {
                verify(&key, record)?;
                record.key_id
            }
            None => {
                let key_id = random_key_id()?;
                store.put_vault_record(&new_record(&key, key_id, kdf.as_ref())?)?;
                key_id
            }
        };
        Ok(Self {
            store,
            cost,
            state: Mutex::new(Unlocked {
                key,
                key_id,
                origin,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, Unlocked> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Encrypts and stores `value` as secret `name`, replacing an older value.
    pub fn set(&self, name: &str, value: &SecretValue) -> Result<SecretInfo, VaultError> {
        check_name(name)?;
        check_value(name, value)?;
        let state = self.state();
        let record = seal(&state, name, value, OffsetDateTime::now_utc())?;
        self.store.put_secret(name, &record)?;
        Ok(SecretInfo {
            name: name.to_owned(),
            updated_at: record.updated_at,
        })
    }

    /// Returns the value of secret `name`.
    pub fn get(&self, name: &str) -> Result<SecretValue, VaultError> {
        self.lookup(name)?.ok_or_else(|| VaultError::NotFound {
            name: name.to_owned(),
        })
    }

    /// Lists the secrets' names and update times, ordered by name. Records
    /// that cannot be read are logged and left out.
    pub fn list(&self) -> Result<Vec<SecretInfo>, VaultError> {
        let scan = self.store.secrets();
        for error in &scan.unreadable {
            tracing::error!(%error, "skipping an unreadable secret record");
        }
        let list = scan
            .records
            .into_iter()
            .map(|(name, record)| SecretInfo {
                name,
                updated_at: record.updated_at,
            })
            .collect();
        Ok(list)
    }

    /// Removes secret `name`.
    pub fn delete(&self, name: &str) -> Result<(), VaultError> {
        check_name(name)?;
        let _state = self.state();
        if !self.store.delete_secret(name)? {
            return Err(VaultError::NotFound {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Returns which of `names` have no stored secret, in the given order.
    pub fn missing<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<Vec<String>, VaultError> {
        let mut missing = Vec::new();
        for name in names {
            if self.store.secret(name)?.is_none() {
                missing.push(name.clone());
            }
        }
        Ok(missing)
    }

    /// Encrypts every secret again under a new master key in one store
    /// transaction, after which the old key no longer opens the vault.
    ///
    /// With a key file the vault generates the new key. With a key from
    /// [`MASTER_KEY_VAR`] or a passphrase, `replacement` is the new key (64
    /// hexadecimal digits) or the new passphrase.
    pub fn rotate(&self, replacement: Option<&SecretValue>) -> Result<Rotation, VaultError> {
        let mut state = self.state();
        let (key, kdf, notice) = self.next_key(&state, replacement)?;
        let key_id = state.key_id.wrapping_add(1);
        let record = new_record(&key, key_id, kdf.as_ref())?;

        let mut next = Unlocked {
            key,
            key_id,
            origin: match &state.origin {
                KeyOrigin::File(path) => KeyOrigin::File(path.clone()),
                KeyOrigin::Environment => KeyOrigin::Environment,
                KeyOrigin::Passphrase => KeyOrigin::Passphrase,
            },
        };
        let secrets = self.reencrypt_all(&state, &next)?;
        let count = secrets.len();

        // A key file is written beside the current one before the store
        // changes, and moved over it after: a crash in between leaves both
        // files, and the next start keeps the one that opens the vault.
        let key_file = match &state.origin {
            KeyOrigin::File(path) => Some(path.clone()),
            _ => None,
        };
        if let Some(path) = &key_file {
            keys::write_key_file(&pending_key_path(path), &next.key)?;
        }
        if let Err(error) = self.store.rotate_vault(&record, &secrets) {
            if let Some(path) = &key_file {
                let _ = std::fs::remove_file(pending_key_path(path));
            }
            return Err(error.into());
        }

        // The store is under the new key from here on, so the vault must
        // use it even if moving the key file fails.
        std::mem::swap(&mut *state, &mut next);
        if let Some(path) = &key_file {
            keys::replace_file(&pending_key_path(path), path)?;
        }
        Ok(Rotation {
            secrets: count,
            key_id,
            notice,
        })
    }

    /// Chooses the next key for [`Vault::rotate`].
    fn next_key(
        &self,
        state: &Unlocked,
        replacement: Option<&SecretValue>,
    ) -> Result<(MasterKey, Option<KdfParams>, Option<String>), VaultError> {
        match (&state.origin, replacement) {
            (KeyOrigin::File(_), None) => {
                Ok((MasterKey::generate().map_err(KeyError::from)?, None, None))
            }
            (KeyOrigin::File(path), Some(_)) => {
                Err(VaultError::UnexpectedReplacement { path: path.clone() })
            }
            (KeyOrigin::Environment, None) => Err(VaultError::ReplacementMissing {
                origin: MASTER_KEY_VAR,
                expected: "key (64 hexadecimal digits)",
            }),
            (KeyOrigin::Passphrase, None) => Err(VaultError::ReplacementMissing {
                origin: PASSPHRASE_FILE_VAR,
                expected: "passphrase",
            }),
            (KeyOrigin::Environment, Some(text)) => {
                let key =
                    MasterKey::from_hex(text.expose()).map_err(|source| KeyError::InvalidKey {
                        origin: "the new key".to_owned(),
                        source,
                    })?;
                if key.to_hex() == state.key.to_hex() {
                    return Err(VaultError::SameKey);
                }
                let notice =
                    format!("set {MASTER_KEY_VAR} to the new key before the agent starts again");
                Ok((key, None, Some(notice)))
            }
            (KeyOrigin::Passphrase, Some(passphrase)) => {
                if passphrase.is_empty() {
                    return Err(VaultError::ReplacementMissing {
                        origin: PASSPHRASE_FILE_VAR,
                        expected: "passphrase",
                    });
                }
                let params = fresh_params(self.cost)?;
                let key = keys::derive_key(passphrase.expose(), &params)?;
                let notice = format!(
                    "write the new passphrase into the file named by {PASSPHRASE_FILE_VAR} \
                     before the agent starts again"
                );
                Ok((key, Some(params), Some(notice)))
            }
        }
    }

    /// Decrypts every secret under `old` and encrypts it under `new`. Any
    /// unreadable record stops the rotation, because it would stay under a
    /// key that no longer exists.
    fn reencrypt_all(
        &self,
        old: &Unlocked,
        new: &Unlocked,
    ) -> Result<Vec<(String, SecretRecord)>, VaultError> {
        let scan = self.store.secrets();
        if let Some(error) = scan.unreadable.into_iter().next() {
            return Err(error.into());
        }
        let mut out = Vec::with_capacity(scan.records.len());
        for (name, record) in scan.records {
            let value = open(old, &name, &record)?;
            let sealed = seal(new, &name, &value, record.updated_at)?;
            out.push((name, sealed));
        }
        Ok(out)
    }
}

impl SecretLookup for Vault {
    fn lookup(&self, name: &str) -> Result<Option<SecretValue>, VaultError> {
        let state = self.state();
        let Some(record) = self.store.secret(name)? else {
            return Ok(None);
        };
        open(&state, name, &record).map(Some)
    }
}

fn seal(
    state: &Unlocked,
    name: &str,
    value: &SecretValue,
    updated_at: OffsetDateTime,
) -> Result<SecretRecord, VaultError> {
    let sealed = cipher::encrypt(
        &state.key,
        state.key_id,
        name.as_bytes(),
        value.expose().as_bytes(),
    )
    .map_err(|source| VaultError::Encrypt {
        name: name.to_owned(),
        source,
    })?;
    Ok(SecretRecord {
        ciphertext: hex::encode(sealed),
        updated_at,
    })
}

fn open(state: &Unlocked, name: &str, record: &SecretRecord) -> Result<SecretValue, VaultError> {
    let sealed = hex::decode(&record.ciphertext).map_err(|_| VaultError::Corrupt {
        record: format!("secret {name:?}"),
    })?;
    let unreadable = |source| VaultError::Unreadable {
        name: name.to_owned(),
        source,
    };
    let plain =
        cipher::decrypt(&state.key, state.key_id, name.as_bytes(), &sealed).map_err(unreadable)?;
    let text = String::from_utf8(plain.to_vec()).map_err(|error| {
        // The bytes are the secret; wipe them instead of keeping them in the error.
        zeroize::Zeroize::zeroize(&mut error.into_bytes());
        unreadable(CipherError::Decrypt)
    })?;
    Ok(SecretValue::new(text))
}

/// Returns the key file's key, finishing a rotation that a crash cut short.
fn file_key(path: &std::path::Path, record: Option<&VaultRecord>) -> Result<MasterKey, VaultError> {
    let pending = pending_key_path(path);
    let Some(record) = record else {
        let _ = std::fs::remove_file(&pending);
        if let Some(key) = keys::read_key_file(path)? {
            return Ok(key);
        }
        let key = MasterKey::generate().map_err(KeyError::from)?;
        keys::write_key_file(path, &key)?;
        tracing::info!(path = %path.display(), "created the master key file");
        return Ok(key);
    };

    let current = keys::read_key_file(path)?;
    if let Some(key) = current.filter(|key| verify(key, record).is_ok()) {
        let _ = std::fs::remove_file(&pending);
        return Ok(key);
    }
    if let Some(key) = keys::read_key_file(&pending)?.filter(|key| verify(key, record).is_ok()) {
        keys::replace_file(&pending, path)?;
        tracing::warn!(path = %path.display(), "finished a key rotation that an earlier agent did not complete");
        return Ok(key);
    }
    if !path.exists() {
        return Err(VaultError::KeyFileMissing {
            path: path.to_path_buf(),
        });
    }
    Err(VaultError::Locked)
}

fn pending_key_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// Checks that `key` decrypts the vault's check ciphertext. Every failure
/// is the same [`VaultError::Locked`], so the error reveals nothing about
/// which part did not match.
fn verify(key: &MasterKey, record: &VaultRecord) -> Result<(), VaultError> {
    let sealed = hex::decode(&record.check).map_err(|_| VaultError::Locked)?;
    match cipher::decrypt(key, record.key_id, CHECK_CONTEXT, &sealed) {
        Ok(text) if text.as_slice() == CHECK_TEXT => Ok(()),
        _ => Err(VaultError::Locked),
    }
}

fn new_record(
    key: &MasterKey,
    key_id: u32,
    kdf: Option<&KdfParams>,
) -> Result<VaultRecord, VaultError> {
    let check = cipher::encrypt(key, key_id, CHECK_CONTEXT, CHECK_TEXT).map_err(KeyError::from)?;
    Ok(VaultRecord {
        format: VAULT_FORMAT,
        key_id,
        check: hex::encode(check),
        kdf: kdf.map(|params| KdfRecord {
            algorithm: ARGON2ID.to_owned(),
            memory_kib: params.memory_kib,
            iterations: params.iterations,
            parallelism: params.parallelism,
            salt: hex::encode(&params.salt),
        }),
    })
}

/// Reads the passphrase parameters of an existing vault. A vault without
/// them was not made from a passphrase, which is reported like any other
/// wrong key.
fn stored_params(record: &VaultRecord) -> Result<KdfParams, VaultError> {
    let kdf = record.kdf.as_ref().ok_or(VaultError::Locked)?;
    if kdf.algorithm != ARGON2ID {
        return Err(VaultError::Locked);
    }
    let salt = hex::decode(&kdf.salt).map_err(|_| VaultError::Corrupt {
        record: "the vault's passphrase salt".to_owned(),
    })?;
    Ok(KdfParams {
        memory_kib: kdf.memory_kib,
        iterations: kdf.iterations,
        parallelism: kdf.parallelism,
        salt,
    })
}

fn fresh_params(cost: KdfCost) -> Result<KdfParams, VaultError> {
    let mut params = KdfParams::fresh()?;
    params.memory_kib = cost.memory_kib;
    params.iterations = cost.iterations;
    Ok(params)
}

fn random_key_id() -> Result<u32, VaultError> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|error| KeyError::from(CipherError::Random(error)))?;
    Ok(u32::from_be_bytes(bytes))
}

#[cfg(test)]
impl Vault {
    pub(crate) fn record_for_tests(&self) -> VaultRecord {
        self.store.vault_record().unwrap().unwrap()
    }
}
