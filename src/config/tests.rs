//! Vault tests against a real store in a temporary directory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::cipher::MasterKey;
use super::keys::{self, KeySource};
use super::vault::{KdfCost, Vault, VaultError};
use super::{render_env, SecretLookup, SecretValue};
use crate::store::Store;

/// The smallest Argon2 cost, so passphrase tests take milliseconds.
const CHEAP: KdfCost = KdfCost {
    memory_kib: 64,
    iterations: 1,
};

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join(keys::KEY_FILE_NAME)
    }

    fn store(&self) -> Store {
        let path = self.dir.path().join("db");
        Store::open_when_unlocked(&path)
            .unwrap_or_else(|error| panic!("open the store at {}: {error}", path.display()))
    }

    /// Opens the vault with `source`; the store is closed again when the
    /// returned vault is dropped.
    fn open(&self, source: KeySource) -> Result<Vault, VaultError> {
        Vault::open_with_cost(self.store(), source, CHEAP)
    }

    fn open_file(&self) -> Result<Vault, VaultError> {
        self.open(KeySource::File(self.key_path()))
    }
}

fn value(text: &str) -> SecretValue {
    SecretValue::new(text.to_owned())
}

fn passphrase(path: &Path, text: &str) -> KeySource {
    KeySource::Passphrase {
        path: path.to_path_buf(),
        passphrase: zeroize::Zeroizing::new(text.to_owned()),
    }
}

fn db_contains(dir: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return true;
            }
        }
    }
    false
}

#[test]
fn vault_round_trip_through_store() {
    let fixture = Fixture::new();
    {
        let vault = fixture.open_file().unwrap();
        vault.set("db_password", &value("canary-7f3a9")).unwrap();
        assert_eq!(vault.get("db_password").unwrap().expose(), "canary-7f3a9");
    }
    let vault = fixture.open_file().unwrap();
    assert_eq!(vault.get("db_password").unwrap().expose(), "canary-7f3a9");
    let names: Vec<String> = vault.list().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["db_password"]);
    drop(vault);
    assert!(!db_contains(
        &fixture.dir.path().join("db"),
        b"canary-7f3a9"
    ));
}

#[test]
fn key_file_created_private_on_first_use() {
    let fixture = Fixture::new();
    assert!(!fixture.key_path().exists());
    fixture.open_file().unwrap();
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(fixture.key_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
}

#[test]
fn wrong_key_gives_generic_error() {
    let fixture = Fixture::new();
    let key = MasterKey::generate().unwrap();
    fixture.open(KeySource::Environment(key)).unwrap();

    let other = MasterKey::generate().unwrap();
    let error = fixture.open(KeySource::Environment(other)).unwrap_err();
    assert!(matches!(error, VaultError::Locked), "{error}");
    let no_file = fixture.open_file().unwrap_err();
    assert!(
        matches!(no_file, VaultError::KeyFileMissing { .. }),
        "{no_file}"
    );
    keys::write_key_file(&fixture.key_path(), &MasterKey::generate().unwrap()).unwrap();
    let by_file = fixture.open_file().unwrap_err();
    assert_eq!(by_file.to_string(), error.to_string());
    let by_passphrase = fixture
        .open(passphrase(&fixture.key_path(), "guess"))
        .unwrap_err();
    assert_eq!(by_passphrase.to_string(), error.to_string());
}

#[test]
fn passphrase_unlocks_and_wrong_one_fails() {
    let fixture = Fixture::new();
    let path = fixture.dir.path().join("pass");
    {
        let vault = fixture.open(passphrase(&path, "correct horse")).unwrap();
        vault.set("token", &value("abc")).unwrap();
    }
    let record = fixture.store().vault_record().unwrap().unwrap();
    let kdf = record.kdf.unwrap();
    assert_eq!(kdf.algorithm, "argon2id");
    assert_eq!(kdf.salt.len(), keys::SALT_LEN * 2);

    let vault = fixture.open(passphrase(&path, "correct horse")).unwrap();
    assert_eq!(vault.get("token").unwrap().expose(), "abc");
    drop(vault);
    let error = fixture
        .open(passphrase(&path, "correct horsf"))
        .unwrap_err();
    assert!(matches!(error, VaultError::Locked), "{error}");
}

#[test]
fn ciphertext_moved_to_other_name_fails() {
    let fixture = Fixture::new();
    let vault = fixture.open_file().unwrap();
    vault.set("first", &value("one")).unwrap();
    vault.set("second", &value("two")).unwrap();
    drop(vault);

    let store = fixture.store();
    let first = store.secret("first").unwrap().unwrap();
    store.put_secret("second", &first).unwrap();
    drop(store);

    let vault = fixture.open_file().unwrap();
    let error = vault.get("second").unwrap_err();
    assert!(matches!(error, VaultError::Unreadable { .. }), "{error}");
    assert!(!error.to_string().contains("one"), "{error}");
}

#[test]
fn tampered_stored_ciphertext_fails() {
    let fixture = Fixture::new();
    let vault = fixture.open_file().unwrap();
    vault.set("name", &value("value")).unwrap();
    drop(vault);

    let store = fixture.store();
    let mut record = store.secret("name").unwrap().unwrap();
    let last = record.ciphertext.pop().unwrap();
    record.ciphertext.push(if last == '0' { '1' } else { '0' });
    store.put_secret("name", &record).unwrap();
    drop(store);

    let vault = fixture.open_file().unwrap();
    assert!(matches!(
        vault.get("name"),
        Err(VaultError::Unreadable { .. })
    ));
}

#[test]
fn rotation_keeps_values_and_retires_old_key() {
    let fixture = Fixture::new();
    let vault = fixture.open_file().unwrap();
    for index in 0..20 {
        vault
            .set(&format!("secret{index}"), &value(&format!("value-{index}")))
            .unwrap();
    }
    let old_key = keys::read_key_file(&fixture.key_path()).unwrap().unwrap();
    let rotation = vault.rotate(None).unwrap();
    assert_eq!(rotation.secrets, 20);
    for index in 0..20 {
        let got = vault.get(&format!("secret{index}")).unwrap();
        assert_eq!(got.expose(), format!("value-{index}"));
    }
    drop(vault);

    let new_key = keys::read_key_file(&fixture.key_path()).unwrap().unwrap();
    assert_ne!(new_key.to_hex(), old_key.to_hex());
    let error = fixture.open(KeySource::Environment(old_key)).unwrap_err();
    assert!(matches!(error, VaultError::Locked), "{error}");

    let vault = fixture.open_file().unwrap();
    assert_eq!(vault.get("secret7").unwrap().expose(), "value-7");
}

#[test]
fn rotation_with_environment_key_needs_new_key() {
    let fixture = Fixture::new();
    let old = MasterKey::generate().unwrap();
    let vault = fixture.open(KeySource::Environment(old.clone())).unwrap();
    vault.set("a", &value("1")).unwrap();

    assert!(matches!(
        vault.rotate(None),
        Err(VaultError::ReplacementMissing { .. })
    ));
    let same = SecretValue::new(old.to_hex().to_string());
    assert!(matches!(
        vault.rotate(Some(&same)),
        Err(VaultError::SameKey)
    ));

    let new = MasterKey::generate().unwrap();
    let rotation = vault
        .rotate(Some(&SecretValue::new(new.to_hex().to_string())))
        .unwrap();
    assert!(rotation.notice.is_some());
    drop(vault);

    assert!(fixture.open(KeySource::Environment(old)).is_err());
    let vault = fixture.open(KeySource::Environment(new)).unwrap();
    assert_eq!(vault.get("a").unwrap().expose(), "1");
}

#[test]
fn rotation_with_passphrase_uses_new_salt() {
    let fixture = Fixture::new();
    let path = fixture.dir.path().join("pass");
    let vault = fixture.open(passphrase(&path, "old phrase")).unwrap();
    vault.set("a", &value("1")).unwrap();
    let before = fixture_salt(&vault);
    vault.rotate(Some(&value("new phrase"))).unwrap();
    assert_ne!(fixture_salt(&vault), before);
    drop(vault);

    assert!(fixture.open(passphrase(&path, "old phrase")).is_err());
    let vault = fixture.open(passphrase(&path, "new phrase")).unwrap();
    assert_eq!(vault.get("a").unwrap().expose(), "1");
}

fn fixture_salt(vault: &Vault) -> String {
    // The vault's store is the only handle; read the record through lookup's store.
    vault.record_for_tests().kdf.unwrap().salt
}

#[test]
fn interrupted_rotation_is_finished_on_open() {
    let fixture = Fixture::new();
    let vault = fixture.open_file().unwrap();
    vault.set("a", &value("1")).unwrap();
    vault.rotate(None).unwrap();
    drop(vault);

    // A crash after the store changed but before the rename leaves the new
    // key in `master.key.next` and the old one in `master.key`.
    let new_key = keys::read_key_file(&fixture.key_path()).unwrap().unwrap();
    let pending = fixture.dir.path().join("master.key.next");
    fs::rename(fixture.key_path(), &pending).unwrap();
    keys::write_key_file(&fixture.key_path(), &MasterKey::generate().unwrap()).unwrap();

    let vault = fixture.open_file().unwrap();
    assert_eq!(vault.get("a").unwrap().expose(), "1");
    assert!(!pending.exists());
    let current = keys::read_key_file(&fixture.key_path()).unwrap().unwrap();
    assert_eq!(current.to_hex(), new_key.to_hex());
}

#[test]
fn missing_key_file_is_named() {
    let fixture = Fixture::new();
    fixture.open_file().unwrap();
    fs::remove_file(fixture.key_path()).unwrap();
    let message = fixture.open_file().unwrap_err().to_string();
    assert!(message.contains("master.key"), "{message}");
}

#[test]
fn bad_names_and_values_are_rejected() {
    let fixture = Fixture::new();
    let vault = fixture.open_file().unwrap();
    assert!(matches!(
        vault.set("with space", &value("v")),
        Err(VaultError::Rule(_))
    ));
    assert!(matches!(
        vault.set("a/b", &value("v")),
        Err(VaultError::Rule(_))
    ));
    assert!(matches!(
        vault.set("ok", &value("")),
        Err(VaultError::Rule(_))
    ));
    let large = SecretValue::new("x".repeat(super::MAX_VALUE_LEN + 1));
    assert!(matches!(vault.set("ok", &large), Err(VaultError::Rule(_))));
    assert!(vault.list().unwrap().is_empty(), "nothing half-written");
    assert!(matches!(
        vault.delete("absent"),
        Err(VaultError::NotFound { .. })
    ));
}

#[test]
fn render_reads_current_values() {
    let fixture = Fixture::new();
    let vault = fixture.open_file().unwrap();
    vault.set("s", &value("first")).unwrap();
    let env: BTreeMap<String, String> = [("A".to_owned(), "${SECRET:s}".to_owned())].into();
    assert_eq!(render_env(&env, &vault).unwrap().env["A"], "first");
    vault.set("s", &value("second")).unwrap();
    assert_eq!(render_env(&env, &vault).unwrap().env["A"], "second");
    assert!(vault.lookup("absent").unwrap().is_none());
    let missing = vault
        .missing(&["s".to_owned(), "x".to_owned(), "y".to_owned()])
        .unwrap();
    assert_eq!(missing, ["x", "y"]);
}
