//! The agent's home directory and the files in it.
//!
//! Everything an agent owns lives under one directory, so two homes are two
//! independent agents (tests rely on this). The layout:
//!
//! ```text
//! $SHIPDECK_HOME/
//!   db/          sled database (only the agent opens it)
//!   run/         0700: agent.sock (0600), agent.lock, agent.pid
//!   agent.log    the agent's own log when it runs in the background
//!   token        0600 bearer token for the optional TCP listener
//!   builds/      fetched sources and build output, per deployment and revision
//! ```

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot find a home directory: set SHIPDECK_HOME or HOME")]
    NoHome,
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is accessible by other users (mode {mode:o}); run `chmod 700 {path}` so only you can reach the agent"
    )]
    TooOpen { path: PathBuf, mode: u32 },
}

/// Paths under one shipdeck home.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Resolves the home from an explicit directory, `SHIPDECK_HOME`, or the
    /// XDG data directory, in that order.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, HomeError> {
        if let Some(dir) = explicit {
            return Ok(Self::at(dir));
        }
        if let Some(dir) = std::env::var_os("SHIPDECK_HOME").filter(|d| !d.is_empty()) {
            return Ok(Self::at(Path::new(&dir)));
        }
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return Ok(Self::at(&Path::new(&data).join("shipdeck")));
        }
        let home = std::env::var_os("HOME")
            .filter(|d| !d.is_empty())
            .ok_or(HomeError::NoHome)?;
        Ok(Self::at(&Path::new(&home).join(".local/share/shipdeck")))
    }

    /// A home at `dir`, made absolute so that replicas started from any
    /// working directory see the same paths.
    pub fn at(dir: &Path) -> Self {
        let root = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db_dir(&self) -> PathBuf {
        self.root.join("db")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.run_dir().join("agent.sock")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.run_dir().join("agent.lock")
    }

    pub fn pid_path(&self) -> PathBuf {
        self.run_dir().join("agent.pid")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("agent.log")
    }

    pub fn token_path(&self) -> PathBuf {
        self.root.join("token")
    }

    pub fn builds_dir(&self) -> PathBuf {
        self.root.join("builds")
    }

    /// Creates the home and its private run directory. The home itself is
    /// made 0700 only when shipdeck creates it; an existing directory chosen
    /// by the user keeps its mode, but the run directory is always private.
    pub fn prepare(&self) -> Result<(), HomeError> {
        create_private_dir(&self.root)?;
        create_private_dir(&self.run_dir())?;
        ensure_private(&self.run_dir())
    }
}

impl Home {
    /// Creates `dir` as 0700, or tightens it, so that stored records stay
    /// private even in a home that others may read.
    pub fn prepare_private(&self, dir: &Path) -> Result<(), HomeError> {
        create_private_dir(dir)?;
        ensure_private(dir)
    }
}

fn create_private_dir(path: &Path) -> Result<(), HomeError> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(source) => Err(HomeError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Tightens a directory to 0700 if it is open to group or others.
fn ensure_private(path: &Path) -> Result<(), HomeError> {
    let mode = fs::metadata(path)
        .map_err(|source| HomeError::Create {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|_| HomeError::TooOpen {
        path: path.to_path_buf(),
        mode: mode & 0o777,
    })
}
