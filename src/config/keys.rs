//! Sources of the master key: a key file in the home, the
//! `SHIPDECK_MASTER_KEY` variable, or a passphrase file through Argon2id.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::cipher::{CipherError, MasterKey, KEY_LEN};
use crate::home::Home;

/// Variable that contains the master key as 64 hexadecimal digits.
pub const MASTER_KEY_VAR: &str = "SHIPDECK_MASTER_KEY";

/// Variable that names a file whose content is the vault passphrase.
pub const PASSPHRASE_FILE_VAR: &str = "SHIPDECK_PASSPHRASE_FILE";

/// Name of the key file in the home.
pub const KEY_FILE_NAME: &str = "master.key";

/// Argon2id cost of a passphrase-derived key: 256 MiB of memory and three
/// passes. RFC 9106 (section 4) recommends at least 64 MiB with three passes;
/// four times the memory brings an unlock to about 0.4 s on a two-core
/// server, slow for guessing while an operator hardly waits. Vaults keep the
/// cost they were made with, so raising it later does not lock them out.
pub const KDF_MEMORY_KIB: u32 = 256 * 1024;
pub const KDF_ITERATIONS: u32 = 3;
pub const KDF_PARALLELISM: u32 = 1;

/// Length of a passphrase salt in bytes.
pub const SALT_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{path} is accessible by group or others (mode {mode:03o}); it guards the secret \
         vault, so run `chmod {fix} {path}` and start the agent again"
    )]
    TooOpen {
        path: PathBuf,
        mode: u32,
        fix: &'static str,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{origin} does not contain a valid master key: {source}")]
    InvalidKey {
        origin: String,
        #[source]
        source: CipherError,
    },
    #[error("passphrase file {path} is empty; write the passphrase into it")]
    EmptyPassphrase { path: PathBuf },
    #[error("{MASTER_KEY_VAR} and {PASSPHRASE_FILE_VAR} are both set; set only one of them")]
    TwoSources,
    #[error("deriving the key from the passphrase failed: {0}")]
    Derive(String),
    #[error(transparent)]
    Cipher(#[from] CipherError),
}

/// The configured source of the master key.
#[derive(Clone)]
pub enum KeySource {
    /// The key file in the home, created on first use.
    File(PathBuf),
    /// A key given in [`MASTER_KEY_VAR`].
    Environment(MasterKey),
    /// A passphrase read from the file named by [`PASSPHRASE_FILE_VAR`].
    Passphrase {
        path: PathBuf,
        passphrase: Zeroizing<String>,
    },
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "File({})", path.display()),
            KeySource::Environment(_) => f.write_str("Environment([REDACTED])"),
            KeySource::Passphrase { path, .. } => {
                write!(f, "Passphrase({}, [REDACTED])", path.display())
            }
        }
    }
}

impl KeySource {
    /// Chooses the key source from the environment, then removes
    /// [`MASTER_KEY_VAR`] from this process's environment so that build
    /// commands and other children do not inherit the key. Call it before
    /// the process starts threads, because changing the environment races
    /// with threads that read it.
    pub fn from_environment(home: &Home) -> Result<Self, KeyError> {
        let key_text = std::env::var_os(MASTER_KEY_VAR).filter(|value| !value.is_empty());
        let passphrase_file =
            std::env::var_os(PASSPHRASE_FILE_VAR).filter(|value| !value.is_empty());
        std::env::remove_var(MASTER_KEY_VAR);

        match (key_text, passphrase_file) {
            (Some(_), Some(_)) => Err(KeyError::TwoSources),
            (Some(text), None) => {
                let text = Zeroizing::new(text.to_string_lossy().into_owned());
                let key = MasterKey::from_hex(&text).map_err(|source| KeyError::InvalidKey {
                    origin: MASTER_KEY_VAR.to_owned(),
                    source,
                })?;
                Ok(KeySource::Environment(key))
            }
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                let passphrase = read_passphrase(&path)?;
                Ok(KeySource::Passphrase { path, passphrase })
            }
            (None, None) => Ok(KeySource::File(home.root().join(KEY_FILE_NAME))),
        }
    }
}

/// Rejects a home directory that group or others can read, write or enter,
/// because it contains the key file, the database and the agent's socket.
pub fn check_private_home(home: &Home) -> Result<(), KeyError> {
    check_mode(home.root(), "700")
}

/// Rejects a file or directory with any permission bit for group or others.
fn check_mode(path: &Path, fix: &'static str) -> Result<(), KeyError> {
    let metadata = fs::metadata(path).map_err(io_error("read the permissions of", path))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_path_buf(),
            mode,
            fix,
        });
    }
    Ok(())
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> KeyError + 'a {
    move |source| KeyError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a private file into memory that is zeroed after use.
fn read_private(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    check_mode(path, "600")?;
    let mut text = Zeroizing::new(String::new());
    fs::File::open(path)
        .and_then(|mut file| file.read_to_string(&mut text))
        .map_err(io_error("read", path))?;
    Ok(text)
}

/// Reads a passphrase file; one trailing newline is not part of the passphrase.
fn read_passphrase(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let mut text = read_private(path)?;
    trim_one_newline(&mut text);
    if text.is_empty() {
        return Err(KeyError::EmptyPassphrase {
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

/// Removes one trailing `\n` or `\r\n`.
pub fn trim_one_newline(text: &mut String) {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
}

/// Reads the key file, or returns `None` if there is none.
pub fn read_key_file(path: &Path) -> Result<Option<MasterKey>, KeyError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = read_private(path)?;
    let key = MasterKey::from_hex(&text).map_err(|source| KeyError::InvalidKey {
        origin: path.display().to_string(),
        source,
    })?;
    Ok(Some(key))
}

/// Writes `key` as hex to a new file at `path` with mode 0600 and syncs it.
/// An existing file at `path` is replaced.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), KeyError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("remove", path)(error)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("create", path))?;
    let mut text = key.to_hex();
    text.push('\n');
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error("write", path))
}

/// Moves `from` over `to` and syncs the directory, so the rename survives a
/// crash.
pub fn replace_file(from: &Path, to: &Path) -> Result<(), KeyError> {
    fs::rename(from, to).map_err(io_error("rename the new key file to", to))?;
    if let Some(dir) = to.parent() {
        let synced = fs::File::open(dir).and_then(|dir| dir.sync_all());
        synced.map_err(io_error("sync the directory", dir))?;
    }
    Ok(())
}

/// Argon2id parameters of a passphrase-derived key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub salt: Vec<u8>,
}

impl KdfParams {
    /// The standard cost with a fresh random salt.
    pub fn fresh() -> Result<Self, KeyError> {
        let mut salt = vec![0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(CipherError::Random)?;
        Ok(Self {
            memory_kib: KDF_MEMORY_KIB,
            iterations: KDF_ITERATIONS,
            parallelism: KDF_PARALLELISM,
            salt,
        })
    }
}

/// Derives the master key from `passphrase` with Argon2id.
pub fn derive_key(passphrase: &str, params: &KdfParams) -> Result<MasterKey, KeyError> {
    let argon_params = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|error| KeyError::Derive(error.to_string()))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase.as_bytes(), &params.salt, bytes.as_mut_slice())
        .map_err(|error| KeyError::Derive(error.to_string()))?;
    Ok(MasterKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_trimmed() {
        for (input, expected) in [
            ("pass\n", "pass"),
            ("pass\r\n", "pass"),
            ("pass\n\n", "pass\n"),
            ("pass", "pass"),
        ] {
            let mut text = input.to_owned();
            trim_one_newline(&mut text);
            assert_eq!(text, expected, "{input:?}");
        }
    }

    #[test]
    fn key_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let key = MasterKey::generate().unwrap();
        write_key_file(&path, &key).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let read = read_key_file(&path).unwrap().unwrap();
        assert_eq!(read.to_hex(), key.to_hex());
    }

    #[test]
    fn open_key_file_is_rejected_with_chmod_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        write_key_file(&path, &MasterKey::generate().unwrap()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let message = read_key_file(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("640"), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
    }

    #[test]
    fn open_home_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_private_home(&home).is_ok());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o750)).unwrap();
        let message = check_private_home(&home).unwrap_err().to_string();
        assert!(message.contains("chmod 700"), "{message}");
        assert!(message.contains("750"), "{message}");
    }

    #[test]
    fn derived_key_depends_on_passphrase_and_salt() {
        let params = KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            salt: vec![1; SALT_LEN],
        };
        let first = derive_key("correct horse", &params).unwrap();
        let again = derive_key("correct horse", &params).unwrap();
        let other = derive_key("wrong horse", &params).unwrap();
        let salted = derive_key(
            "correct horse",
            &KdfParams {
                salt: vec![2; SALT_LEN],
                ..params.clone()
            },
        )
        .unwrap();
        assert_eq!(first.to_hex(), again.to_hex());
        assert_ne!(first.to_hex(), other.to_hex());
        assert_ne!(first.to_hex(), salted.to_hex());
    }

    #[test]
    fn standard_cost_meets_the_minimum() {
        let params = KdfParams::fresh().unwrap();
        assert!(params.memory_kib >= 64 * 1024);
        assert!(params.iterations >= 3);
        assert_eq!(params.salt.len(), SALT_LEN);
    }
}
