//! Fetching a revision's `source` and running its `build.command`.
//!
//! Each revision gets its own directory under the home's `builds/`, so a
//! rollback finds the exact tree it ran before and never rebuilds.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::DuplexStream;
use tokio::process::Command;

use crate::logs::{CaptureTarget, LogHub, Stream};
use crate::manifest::{Source, SourceKind};

/// Maximum time a fetch or a build may take before it is ended as failed.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Name of the file, beside the tree, that marks a finished build.
const DONE_MARKER: &str = "build.done";

/// Name of the file, beside the tree, that contains the id of the image a
/// container backend built from the tree.
const IMAGE_FILE: &str = "image.id";

/// Room in a build output pipe; a full pipe makes the writer wait.
const PIPE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source {url}: only local paths and file:// URLs are supported; download the archive first and give its path")]
    UnsupportedUrl { url: String },
    #[error("source {url} does not exist; check source.url (relative paths are taken from the manifest's directory)")]
    Missing { url: String },
    #[error("cannot fetch source {url}: {detail}")]
    Fetch { url: String, detail: String },
    #[error("cannot read archive {url}: {source}")]
    Archive {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("build command {command:?} failed: {detail}")]
    Build { command: String, detail: String },
    #[error("{action} in {path} failed: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The directories of one revision's build.
#[derive(Debug, Clone)]
pub struct BuildDirs {
    pub root: PathBuf,
}

impl BuildDirs {
    pub fn new(builds_dir: &Path, deployment_id: &str, revision: u64) -> Self {
        Self {
            root: builds_dir.join(deployment_id).join(revision.to_string()),
        }
    }

    /// The fetched tree, where the build runs and the app starts.
    pub fn tree(&self) -> PathBuf {
        self.root.join("src")
    }

    pub fn is_done(&self) -> bool {
        self.root.join(DONE_MARKER).is_file()
    }

    /// Returns the id of the image built from this tree, if one was.
    pub fn image_id(&self) -> Option<String> {
        let text = fs::read_to_string(self.root.join(IMAGE_FILE)).ok()?;
        let id = text.trim();
        (!id.is_empty()).then(|| id.to_owned())
    }

    /// Records the id of the image built from this tree, so that a rollback
    /// to the revision runs the same image.
    pub fn set_image_id(&self, id: &str) -> Result<(), SourceError> {
        fs::write(self.root.join(IMAGE_FILE), id).map_err(|source| SourceError::Io {
            action: "recording the built image id",
            path: self.root.clone(),
            source,
        })
    }
}

/// The destination of a build's output: log entries of the deployment, marked as
/// build output of the revision.
#[derive(Clone)]
pub struct BuildLog {
    pub hub: LogHub,
    pub deployment_id: String,
    pub revision: u64,
}

impl BuildLog {
    fn target(&self, stream: Stream) -> CaptureTarget {
        CaptureTarget {
            deployment_id: self.deployment_id.clone(),
            source: "build".to_owned(),
            stream,
            revision: self.revision,
            build: true,
        }
    }

    /// Stores `text` (shipdeck's own notes, or output collected at once).
    pub async fn write(&self, stream: Stream, text: &[u8]) {
        self.hub.write_text(self.target(stream), text).await;
    }

    /// Opens a pipe whose lines are stored as build output on `stream`. Drop
    /// the writer, then await the handle, to store a last partial line.
    pub fn pipe(&self, stream: Stream) -> (DuplexStream, tokio::task::JoinHandle<()>) {
        let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
        let capture = self.hub.capture(self.target(stream), reader);
        (writer, capture)
    }
}

/// Turns `source.url` into a local path: a plain path or a file:// URL.
pub fn local_path(url: &str) -> Result<PathBuf, SourceError> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(PathBuf::from(path));
    }
    if url.contains("://") {
        return Err(SourceError::UnsupportedUrl {
            url: url.to_owned(),
        });
    }
    Ok(PathBuf::from(url))
}

/// Fetches the source and runs the build, storing all output as the
/// revision's build log. A revision that was built before is reused as it is.
pub async fn fetch_and_build(
    dirs: &BuildDirs,
    source: &Source,
    build_command: Option<&[String]>,
    env: &[(String, String)],
    log: &BuildLog,
) -> Result<PathBuf, SourceError> {
    if dirs.is_done() {
        return Ok(dirs.tree());
    }
    reset_dir(&dirs.root)?;

    let fetched = tokio::time::timeout(BUILD_TIMEOUT, fetch(source, &dirs.tree(), log)).await;
    match fetched {
        Ok(result) => result?,
        Err(_) => {
            return Err(SourceError::Fetch {
                url: source.url.clone(),
                detail: format!("timed out after {} s", BUILD_TIMEOUT.as_secs()),
            })
        }
    }

    if let Some(command) = build_command {
        run_build(command, &dirs.tree(), env, log).await?;
    }
    fs::write(dirs.root.join(DONE_MARKER), b"").map_err(|source| SourceError::Io {
        action: "marking the build done",
        path: dirs.root.clone(),
        source,
    })?;
    Ok(dirs.tree())
}

fn reset_dir(dir: &Path) -> Result<(), SourceError> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|source| SourceError::Io {
            action: "removing an unfinished build",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    fs::create_dir_all(dir).map_err(|source| SourceError::Io {
        action: "creating the build directory",
        path: dir.to_path_buf(),
        source,
    })
}

async fn fetch(source: &Source, tree: &Path, log: &BuildLog) -> Result<(), SourceError> {
    let path = local_path(&source.url)?;
    if !path.exists() {
        return Err(SourceError::Missing {
            url: source.url.clone(),
        });
    }
    let note = format!("fetching {} ({:?})\n", source.url, source.kind);
    log.write(Stream::Stdout, note.as_bytes()).await;

    match source.kind {
        SourceKind::Git => clone_git(source, &path, tree, log).await,
        SourceKind::Zip | SourceKind::Tar => {
            let kind = source.kind;
            let url = source.url.clone();
            let tree = tree.to_path_buf();
            tokio::task::spawn_blocking(move || unpack(kind, &path, &tree, &url))
                .await
                .map_err(|error| SourceError::Fetch {
                    url: source.url.clone(),
                    detail: error.to_string(),
                })?
        }
    }
}

async fn clone_git(
    source: &Source,
    path: &Path,
    tree: &Path,
    log: &BuildLog,
) -> Result<(), SourceError> {
    let mut command = Command::new("git");
    command
        .arg("clone")
        .arg("--depth=1")
        .arg("--quiet")
        // A local path would otherwise be hard-linked; --no-local copies
        // through the pack protocol, so --depth applies.
        .arg("--no-local");
    if let Some(reference) = source.branch.as_ref().or(source.tag.as_ref()) {
        command.arg("--branch").arg(reference);
    }
    command
        .arg("--")
        .arg(path)
        .arg(tree)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null());

    let output = command.output().await.map_err(|error| SourceError::Fetch {
        url: source.url.clone(),
        detail: format!("cannot run git: {error}; install git"),
    })?;
    log.write(Stream::Stdout, &output.stdout).await;
    log.write(Stream::Stderr, &output.stderr).await;
    if output.status.success() {
        return Ok(());
    }
    Err(SourceError::Fetch {
        url: source.url.clone(),
        detail: format!(
            "git clone {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

fn unpack(kind: SourceKind, archive: &Path, tree: &Path, url: &str) -> Result<(), SourceError> {
    let archive_error = |source: io::Error| SourceError::Archive {
        url: url.to_owned(),
        source,
    };
    fs::create_dir_all(tree).map_err(archive_error)?;
    let file = fs::File::open(archive).map_err(archive_error)?;

    match kind {
        SourceKind::Zip => {
            let mut zip = zip::ZipArchive::new(file).map_err(|error| {
                archive_error(io::Error::new(io::ErrorKind::InvalidData, error))
            })?;
            // `extract` rejects entries whose paths leave the target directory.
            zip.extract(tree)
                .map_err(|error| archive_error(io::Error::new(io::ErrorKind::InvalidData, error)))
        }
        _ => {
            let reader = open_maybe_gzip(file).map_err(archive_error)?;
            // `unpack` skips entries with `..` or absolute paths.
            tar::Archive::new(reader)
                .unpack(tree)
                .map_err(archive_error)
        }
    }
}

/// Wraps a reader in a gzip decoder when the file starts with gzip's magic.
fn open_maybe_gzip(mut file: fs::File) -> io::Result<Box<dyn Read>> {
    let mut magic = [0u8; 2];
    let read = file.read(&mut magic)?;
    let prefix = io::Cursor::new(magic[..read].to_vec());
    let chained = prefix.chain(file);
    if read == 2 && magic == [0x1f, 0x8b] {
        return Ok(Box::new(flate2::read::GzDecoder::new(chained)));
    }
    Ok(Box::new(chained))
}

/// Kills a build's whole process group when the build ends, times out or
/// is dropped with the agent's runtime. `kill_on_drop` alone ends only the
/// leader, so a shell's children would outlive the agent.
struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) else {
            return;
        };
        // The group may be gone already; ESRCH is expected then.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

async fn run_build(
    command: &[String],
    tree: &Path,
    env: &[(String, String)],
    log: &BuildLog,
) -> Result<(), SourceError> {
    let shown = command.join(" ");
    let Some((program, args)) = command.split_first() else {
        return Err(SourceError::Build {
            command: shown,
            detail: "build.command is empty".to_owned(),
        });
    };

    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(tree)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    super::process::die_with_parent(&mut command);
    let mut child = command.spawn().map_err(|error| SourceError::Build {
        command: shown.clone(),
        detail: format!("cannot start {program:?}: {error}"),
    })?;
    let _group = KillGroupOnDrop(child.id());
    let captures = [
        child
            .stdout
            .take()
            .map(|out| log.hub.capture(log.target(Stream::Stdout), out)),
        child
            .stderr
            .take()
            .map(|err| log.hub.capture(log.target(Stream::Stderr), err)),
    ];

    let waited = tokio::time::timeout(BUILD_TIMEOUT, child.wait()).await;
    // The output is complete before the result is reported, so the build log
    // that a failure points to contains its last lines.
    for capture in captures.into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(5), capture).await;
    }
    match waited {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(SourceError::Build {
            command: shown,
            detail: status.to_string(),
        }),
        Ok(Err(error)) => Err(SourceError::Build {
            command: shown,
            detail: error.to_string(),
        }),
        Err(_) => Err(SourceError::Build {
            command: shown,
            detail: format!("timed out after {} s", BUILD_TIMEOUT.as_secs()),
        }),
    }
}
