//! Memory and CPU limits for process replicas.
//!
//! Where the agent can create cgroups, each replica gets its own cgroup per
//! hierarchy, under the agent's own cgroup:
//! `<mount>/<agent's cgroup>/shipdeck-<instance>/<replica>`. The instance
//! part keeps the cgroups of two agent homes apart, so an agent removes only
//! its own stale cgroups after a crash. Where memory cgroups are not usable,
//! [`RssWatchdog`] enforces memory limits by sampling resident memory, and
//! CPU limits are reported as not enforced.
//!
//! Both cgroup v1 (one mount per controller) and cgroup v2 (the unified
//! hierarchy) are supported, per controller, as `/proc/self/mountinfo` and
//! `/proc/self/cgroup` describe them.

mod detect;
mod watchdog;

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use tokio::process::Command;

use super::ExitReason;

pub use watchdog::{sample, OverLimit, RssWatchdog, WATCHDOG_OOM_REASON};

/// CFS period written with every CPU limit, in microseconds: 100 ms, the
/// period that a new cgroup starts with.
pub const CPU_PERIOD_MICROS: u64 = 100_000;

/// Minimum CFS quota in microseconds: the kernel rejects smaller quotas
/// with EINVAL (checked on Linux 6.18).
const MIN_CPU_QUOTA_MICROS: u64 = 1_000;

/// How often and how long `remove` retries, because a cgroup stays busy for
/// a moment after its last process was reaped.
const REMOVE_ATTEMPTS: u32 = 20;
const REMOVE_RETRY_DELAY: Duration = Duration::from_millis(25);

/// Maximum length in bytes of a replica or instance name, which becomes a
/// cgroup directory name.
const MAX_NAME_BYTES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("invalid cgroup name {name:?}: use 1 to {MAX_NAME_BYTES} letters, digits, '.', '_' or '-', not starting with '.'")]
    InvalidName { name: String },
    #[error("invalid {limit} limit 0; give a positive value or no limit")]
    ZeroLimit { limit: &'static str },
    #[error("cannot create cgroup {path}: {source}; run the agent as root or with a delegated cgroup (memory limits fall back to the RSS watchdog)")]
    Create { path: PathBuf, source: io::Error },
    #[error("cgroup {path} already exists and still contains processes; stop them or use another replica name")]
    Busy { path: PathBuf },
    #[error(
        "cannot write {value:?} to {path}: {source}; check that the agent may write to its cgroups"
    )]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("cannot move process {pid} into {path}: {source}; check that the process exists and the agent may write to its cgroups")]
    Attach {
        pid: u32,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cgroup path {path} contains a NUL byte and cannot be passed to the kernel")]
    NulInPath { path: PathBuf },
    #[error("cannot list processes in /proc: {source}; the memory watchdog cannot check limits until /proc is readable")]
    ScanProc { source: procfs::ProcError },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupVersion::V1 => f.write_str("cgroup v1"),
            CgroupVersion::V2 => f.write_str("cgroup v2"),
        }
    }
}

/// The directory under which one controller's replica cgroups are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: CgroupVersion,
    /// `shipdeck-<instance>` inside the agent's own cgroup of this hierarchy.
    pub base: PathBuf,
}

/// Whether the agent can enforce limits with one cgroup controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerStatus {
    Usable(Hierarchy),
    /// The reason is a phrase fit for `agent status` and the logs.
    Unusable {
        reason: String,
    },
}

impl ControllerStatus {
    pub fn hierarchy(&self) -> Option<&Hierarchy> {
        match self {
            ControllerStatus::Usable(hierarchy) => Some(hierarchy),
            ControllerStatus::Unusable { .. } => None,
        }
    }
}

/// The cgroup controllers this agent can use. Detect it once per agent
/// with [`Limits::detect`] and create one [`ReplicaCgroup`] per replica.
#[derive(Debug, Clone)]
pub struct Limits {
    memory: ControllerStatus,
    cpu: ControllerStatus,
    /// cgroup v1 `cpuacct` hierarchy, read for CPU usage. On cgroup v2,
    /// `cpu.stat` in the replica's cgroup has the usage.
    cpu_accounting: Option<Hierarchy>,
}

impl Limits {
    /// Finds the memory and CPU controllers, creates the instance's base
    /// cgroups and removes empty replica cgroups left by an earlier agent
    /// of the same instance. Never fails: a controller that cannot be used
    /// is reported with its reason.
    ///
    /// On cgroup v2, enabling controllers for child cgroups requires that
    /// the agent's cgroup contains no processes, so detection may move the
    /// agent into a leaf cgroup `shipdeck-<instance>-agent` beside the base.
    pub fn detect(instance: &str) -> Limits {
        let limits = detect::detect(instance);
        tracing::info!(limits = %limits, "detected resource limit support");
        limits
    }

    pub fn memory(&self) -> &ControllerStatus {
        &self.memory
    }

    pub fn cpu(&self) -> &ControllerStatus {
        &self.cpu
    }

    /// Returns true when memory limits are enforced by cgroups, so that no
    /// [`RssWatchdog`] is needed.
    pub fn memory_enforced(&self) -> bool {
        self.memory.hierarchy().is_some()
    }

    pub fn cpu_enforced(&self) -> bool {
        self.cpu.hierarchy().is_some()
    }

    /// Creates the replica's cgroups in every usable hierarchy and writes
    /// the limits that are given. A limit whose controller is unusable is
    /// skipped; check [`ReplicaCgroup::enforces_memory`] to decide on the
    /// watchdog. `name` must be unique among running replicas: an existing
    /// empty cgroup of that name is replaced, a busy one is an error.
    pub fn create(
        &self,
        name: &str,
        memory_bytes: Option<u64>,
        cpu_millicores: Option<u64>,
    ) -> Result<ReplicaCgroup, LimitsError> {
        validate_name(name)?;
        if memory_bytes == Some(0) {
            return Err(LimitsError::ZeroLimit { limit: "memory" });
        }
        if cpu_millicores == Some(0) {
            return Err(LimitsError::ZeroLimit { limit: "cpu" });
        }

        let cgroup = ReplicaCgroup::new(
            name,
            self.memory.hierarchy().map(|h| ControlDir::new(h, name)),
            self.cpu.hierarchy().map(|h| ControlDir::new(h, name)),
            self.accounting_dir(name),
        )?;
        cgroup.make_directories()?;

        if let Err(error) = cgroup.write_limits(memory_bytes, cpu_millicores) {
            cgroup.remove_once();
            return Err(error);
        }
        Ok(cgroup)
    }

    /// Removes the instance's empty replica cgroups and its base cgroups,
    /// for a clean agent stop. Busy cgroups stay and are logged.
    pub fn remove_empty(&self) {
        for base in self.base_directories() {
            detect::remove_empty_children(&base);
            if let Err(error) = fs::remove_dir(&base) {
                if error.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %base.display(), %error, "could not remove the agent's base cgroup");
                }
            }
        }
    }

    fn base_directories(&self) -> Vec<PathBuf> {
        let hierarchies = [
            self.memory.hierarchy(),
            self.cpu.hierarchy(),
            self.cpu_accounting.as_ref(),
        ];
        let mut bases = Vec::new();
        for hierarchy in hierarchies.into_iter().flatten() {
            if !bases.contains(&hierarchy.base) {
                bases.push(hierarchy.base.clone());
            }
        }
        bases
    }

    fn accounting_dir(&self, name: &str) -> Option<ControlDir> {
        match (&self.cpu_accounting, self.cpu.hierarchy()) {
            (Some(hierarchy), _) => Some(ControlDir::new(hierarchy, name)),
            (None, Some(cpu)) if cpu.version == CgroupVersion::V2 => {
                Some(ControlDir::new(cpu, name))
            }
            _ => None,
        }
    }
}

/// One line for `agent status` and the logs, for example
/// `memory: cgroup v1 at /sys/fs/cgroup/memory/shipdeck-1a2b; cpu: not enforced (...)`.
impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.memory {
            ControllerStatus::Usable(h) => {
                write!(f, "memory: {} at {}", h.version, h.base.display())?
            }
            ControllerStatus::Unusable { reason } => write!(f, "memory: RSS watchdog ({reason})")?,
        }
        match &self.cpu {
            ControllerStatus::Usable(h) => {
                write!(f, "; cpu: {} at {}", h.version, h.base.display())
            }
            ControllerStatus::Unusable { reason } => write!(f, "; cpu: not enforced ({reason})"),
        }
    }
}

/// A cgroup directory of one replica and the version of its hierarchy.
#[derive(Debug, Clone)]
struct ControlDir {
    version: CgroupVersion,
    path: PathBuf,
}

impl ControlDir {
    fn new(hierarchy: &Hierarchy, name: &str) -> ControlDir {
        ControlDir {
            version: hierarchy.version,
            path: hierarchy.base.join(name),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// The cgroups of one replica: one directory per hierarchy in use.
#[derive(Debug)]
pub struct ReplicaCgroup {
    name: String,
    directories: Vec<PathBuf>,
    memory: Option<ControlDir>,
    cpu: Option<ControlDir>,
    cpu_accounting: Option<ControlDir>,
    /// `cgroup.procs` of every directory, converted before any fork because
    /// the child may not allocate between fork and exec.
    procs_files: Arc<[CString]>,
}

impl ReplicaCgroup {
    fn new(
        name: &str,
        memory: Option<ControlDir>,
        cpu: Option<ControlDir>,
        cpu_accounting: Option<ControlDir>,
    ) -> Result<ReplicaCgroup, LimitsError> {
        let mut directories: Vec<PathBuf> = Vec::new();
        for dir in [&memory, &cpu, &cpu_accounting].into_iter().flatten() {
            if !directories.contains(&dir.path) {
                directories.push(dir.path.clone());
            }
        }

        let procs_files = directories
            .iter()
            .map(|dir| procs_file_cstring(dir))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(ReplicaCgroup {
            name: name.to_owned(),
            directories,
            memory,
            cpu,
            cpu_accounting,
            procs_files: procs_files.into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the replica's cgroup directories, one per hierarchy. The list
    /// is empty when no controller is usable.
    pub fn directories(&self) -> &[PathBuf] {
        &self.directories
    }

    pub fn enforces_memory(&self) -> bool {
        self.memory.is_some()
    }

    pub fn enforces_cpu(&self) -> bool {
        self.cpu.is_some()
    }

    /// Makes the child started by `command` join the replica's cgroups
    /// before it executes the program, so that everything it allocates is
    /// charged to them. If joining fails, spawning fails with that error.
    /// Does nothing when no controller is usable.
    #[allow(unsafe_code)]
    pub fn prepare_attach(&self, command: &mut Command) {
        if self.procs_files.is_empty() {
            return;
        }

        let procs_files = Arc::clone(&self.procs_files);
        // SAFETY: the closure runs in the child between fork and exec. It
        // only calls open, write and close, which are async-signal-safe, on
        // C strings made before the fork, and allocates nothing: errno
        // converts to io::Error without allocating. Writing "0" to
        // cgroup.procs moves the writing process, in cgroup v1 and v2.
        unsafe {
            command.pre_exec(move || {
                for file in procs_files.iter() {
                    let fd = nix::fcntl::open(
                        file.as_c_str(),
                        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )?;
                    let fd = OwnedFd::from_raw_fd(fd);
                    nix::unistd::write(&fd, b"0")?;
                }
                Ok(())
            });
        }
    }

    /// Moves a running process into the replica's cgroups, for processes
    /// started without [`ReplicaCgroup::prepare_attach`]. Its children that
    /// already exist stay where they are.
    pub fn attach(&self, pid: u32) -> Result<(), LimitsError> {
        for dir in &self.directories {
            let path = dir.join("cgroup.procs");
            fs::write(&path, pid.to_string()).map_err(|source| LimitsError::Attach {
                pid,
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// Returns how many processes the kernel killed in this cgroup for
    /// exceeding its memory limit (`oom_kill` in cgroup v2 `memory.events`
    /// or in cgroup v1 `memory.oom_control`). Returns 0 where the kernel
    /// does not report it, as older cgroup v1 kernels do not.
    pub fn oom_kills(&self) -> u64 {
        self.oom_kill_counter().unwrap_or(0)
    }

    /// Decides whether a replica that ended with `reason` was killed for
    /// exceeding its memory limit: it died of SIGKILL and the cgroup's
    /// `oom_kill` counter is above 0. The counter counts any process of
    /// the cgroup, so a killed helper process of the replica also counts.
    /// On cgroup v1 kernels without the counter, a heuristic is used
    /// instead: SIGKILL and a `memory.failcnt` above 0, meaning the cgroup
    /// reached its limit at least once.
    pub fn is_oom_exit(&self, reason: ExitReason) -> bool {
        if reason != ExitReason::Signal(Signal::SIGKILL as i32) {
            return false;
        }

        match self.oom_kill_counter() {
            Some(kills) => kills > 0,
            None => self.memory_limit_hits().is_some_and(|hits| hits > 0),
        }
    }

    /// Returns the memory charged to the cgroup in bytes (cgroup v1
    /// `memory.usage_in_bytes`, which includes page cache, or cgroup v2
    /// `memory.current`).
    pub fn memory_usage(&self) -> Option<u64> {
        let dir = self.memory.as_ref()?;
        let file = match dir.version {
            CgroupVersion::V1 => "memory.usage_in_bytes",
            CgroupVersion::V2 => "memory.current",
        };
        read_number(&dir.file(file))
    }

    /// Returns the CPU time used by the cgroup's processes so far (cgroup
    /// v1 `cpuacct.usage`, or `usage_usec` of cgroup v2 `cpu.stat`).
    pub fn cpu_usage(&self) -> Option<Duration> {
        let dir = self.cpu_accounting.as_ref()?;
        match dir.version {
            CgroupVersion::V1 => read_number(&dir.file("cpuacct.usage")).map(Duration::from_nanos),
            CgroupVersion::V2 => {
                read_keyed_number(&dir.file("cpu.stat"), "usage_usec").map(Duration::from_micros)
            }
        }
    }

    /// Removes the replica's cgroups once its processes are gone, retrying
    /// for about half a second. Never fails: a cgroup that stays busy is
    /// logged, and the next [`Limits::detect`] of this instance removes it
    /// once it is empty.
    pub async fn remove(self) {
        for dir in self.directories.iter().rev() {
            remove_with_retry(dir).await;
        }
    }

    fn oom_kill_counter(&self) -> Option<u64> {
        let dir = self.memory.as_ref()?;
        let file = match dir.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        };
        read_keyed_number(&dir.file(file), "oom_kill")
    }

    fn memory_limit_hits(&self) -> Option<u64> {
        let dir = self.memory.as_ref()?;
        match dir.version {
            CgroupVersion::V1 => read_number(&dir.file("memory.failcnt")),
            CgroupVersion::V2 => read_keyed_number(&dir.file("memory.events"), "max"),
        }
    }

    fn make_directories(&self) -> Result<(), LimitsError> {
        for (made, dir) in self.directories.iter().enumerate() {
            if let Err(error) = make_replica_dir(dir) {
                for earlier in &self.directories[..made] {
                    let _ = fs::remove_dir(earlier);
                }
                return Err(error);
            }
        }
        Ok(())
    }

    fn write_limits(
        &self,
        memory_bytes: Option<u64>,
        cpu_millicores: Option<u64>,
    ) -> Result<(), LimitsError> {
        if let (Some(dir), Some(bytes)) = (&self.memory, memory_bytes) {
            write_memory_limit(dir, bytes)?;
        }
        if let (Some(dir), Some(millicores)) = (&self.cpu, cpu_millicores) {
            write_cpu_limit(dir, millicores)?;
        }
        Ok(())
    }

    fn remove_once(&self) {
        for dir in self.directories.iter().rev() {
            if let Err(error) = fs::remove_dir(dir) {
                tracing::warn!(path = %dir.display(), %error, "could not remove a replica cgroup");
            }
        }
    }
}

fn write_memory_limit(dir: &ControlDir, bytes: u64) -> Result<(), LimitsError> {
    match dir.version {
        CgroupVersion::V1 => {
            write_control(&dir.file("memory.limit_in_bytes"), &bytes.to_string())?;
            // With swap accounting, memory plus swap gets the same limit, so
            // the replica cannot exceed its limit by swapping.
            write_if_present(&dir.file("memory.memsw.limit_in_bytes"), &bytes.to_string())
        }
        CgroupVersion::V2 => {
            write_control(&dir.file("memory.max"), &bytes.to_string())?;
            write_if_present(&dir.file("memory.swap.max"), "0")?;
            // Kill all processes of the replica together, so that an
            // out-of-memory kill never leaves a replica half running.
            write_if_present(&dir.file("memory.oom.group"), "1")
        }
    }
}

fn write_cpu_limit(dir: &ControlDir, millicores: u64) -> Result<(), LimitsError> {
    let quota = cpu_quota_micros(millicores);
    match dir.version {
        CgroupVersion::V1 => {
            write_control(
                &dir.file("cpu.cfs_period_us"),
                &CPU_PERIOD_MICROS.to_string(),
            )?;
            write_control(&dir.file("cpu.cfs_quota_us"), &quota.to_string())
        }
        CgroupVersion::V2 => write_control(
            &dir.file("cpu.max"),
            &format!("{quota} {CPU_PERIOD_MICROS}"),
        ),
    }
}

/// Converts millicores to a CFS quota per [`CPU_PERIOD_MICROS`]: 1000
/// millicores are one full period. Quotas below 1 ms are raised to 1 ms,
/// the kernel's minimum, so limits under 10 millicores allow 10.
fn cpu_quota_micros(millicores: u64) -> u64 {
    let quota = millicores.saturating_mul(CPU_PERIOD_MICROS) / 1000;
    quota.max(MIN_CPU_QUOTA_MICROS)
}

fn make_replica_dir(dir: &Path) -> Result<(), LimitsError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            // A cgroup left by a replica of the same name: counters such as
            // oom_kill must start at 0, so replace it.
            fs::remove_dir(dir).map_err(|_| LimitsError::Busy {
                path: dir.to_path_buf(),
            })?;
            fs::create_dir(dir).map_err(|source| LimitsError::Create {
                path: dir.to_path_buf(),
                source,
            })
        }
        Err(source) => Err(LimitsError::Create {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

async fn remove_with_retry(dir: &Path) {
    for attempt in 1..=REMOVE_ATTEMPTS {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return,
            Err(error) if attempt == REMOVE_ATTEMPTS => {
                tracing::warn!(
                    path = %dir.display(),
                    %error,
                    attempts = REMOVE_ATTEMPTS,
                    "could not remove a replica cgroup; the next agent start removes it once it is empty"
                );
            }
            Err(_) => tokio::time::sleep(REMOVE_RETRY_DELAY).await,
        }
    }
}

fn write_control(path: &Path, value: &str) -> Result<(), LimitsError> {
    fs::write(path, value).map_err(|source| LimitsError::Write {
        path: path.to_path_buf(),
        value: value.to_owned(),
        source,
    })
}

/// Writes an optional control file, which only some kernels or
/// configurations have (swap accounting, for example).
fn write_if_present(path: &Path, value: &str) -> Result<(), LimitsError> {
    if path.exists() {
        write_control(path, value)
    } else {
        Ok(())
    }
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_keyed_number(path: &Path, key: &str) -> Option<u64> {
    parse_keyed_number(&fs::read_to_string(path).ok()?, key)
}

/// Finds `key` in a flat-keyed control file such as `memory.events`, where
/// each line is `<key> <number>`.
fn parse_keyed_number(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        if name == key {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

fn procs_file_cstring(dir: &Path) -> Result<CString, LimitsError> {
    let path = dir.join("cgroup.procs");
    CString::new(path.as_os_str().as_bytes()).map_err(|_| LimitsError::NulInPath { path })
}

/// Accepts names that are safe as one directory component.
fn validate_name(name: &str) -> Result<(), LimitsError> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.starts_with('.') || !valid_chars {
        return Err(LimitsError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quota_scales_with_period() {
        assert_eq!(cpu_quota_micros(1000), 100_000);
        assert_eq!(cpu_quota_micros(100), 10_000);
        assert_eq!(cpu_quota_micros(2500), 250_000);
    }

    #[test]
    fn cpu_quota_raised_to_kernel_minimum() {
        assert_eq!(cpu_quota_micros(1), MIN_CPU_QUOTA_MICROS);
        assert_eq!(cpu_quota_micros(10), MIN_CPU_QUOTA_MICROS);
    }

    #[test]
    fn keyed_number_found_by_exact_key() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_keyed_number(v1, "oom_kill"), Some(3));

        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_keyed_number(v2, "oom_kill"), Some(1));
        assert_eq!(parse_keyed_number(v2, "max"), Some(12));
    }

    #[test]
    fn keyed_number_missing_key() {
        let old_kernel = "oom_kill_disable 0\nunder_oom 0\n";
        assert_eq!(parse_keyed_number(old_kernel, "oom_kill"), None);
    }

    #[test]
    fn names_valid_as_directory() {
        for name in ["web-0", "api.v2_1", "a"] {
            assert!(validate_name(name).is_ok(), "{name} should be valid");
        }
    }

    #[test]
    fn names_rejected() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        for name in ["", ".", "..", ".hidden", "a/b", "a b", "ä", long.as_str()] {
            assert!(validate_name(name).is_err(), "{name:?} should be rejected");
        }
    }

    #[test]
    fn zero_limits_rejected() {
        let limits = Limits {
            memory: ControllerStatus::Unusable {
                reason: "test".into(),
            },
            cpu: ControllerStatus::Unusable {
                reason: "test".into(),
            },
            cpu_accounting: None,
        };

        let memory = limits.create("web-0", Some(0), None).unwrap_err();
        assert!(matches!(memory, LimitsError::ZeroLimit { limit: "memory" }));

        let cpu = limits.create("web-0", None, Some(0)).unwrap_err();
        assert!(matches!(cpu, LimitsError::ZeroLimit { limit: "cpu" }));
    }

    #[test]
    fn create_without_controllers_has_no_directories() {
        let limits = Limits {
            memory: ControllerStatus::Unusable {
                reason: "test".into(),
            },
            cpu: ControllerStatus::Unusable {
                reason: "test".into(),
            },
            cpu_accounting: None,
        };

        let cgroup = limits.create("web-0", Some(1 << 20), Some(100)).unwrap();
        assert!(cgroup.directories().is_empty());
        assert!(!cgroup.enforces_memory());
        assert!(!cgroup.enforces_cpu());
        assert_eq!(cgroup.oom_kills(), 0);
    }
}
