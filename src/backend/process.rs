//! The process backend: each replica is a child process group of the agent.
//!
//! Replicas die with the agent (`PR_SET_PDEATHSIG` on the group leader), and
//! every replica carries a marker variable naming the agent's home, so an
//! agent that starts after a crash finds and ends the rest of the group
//! before it starts replicas again: no orphans and no duplicates.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::limits::{Limits, ReplicaCgroup, RssWatchdog};
use super::{
    Backend, BackendError, ExitReason, ReplicaEvent, ReplicaId, ReplicaLaunch, StartedReplica,
};
use crate::logs::{CaptureTarget, LogHub, Stream};
use crate::manifest::StopSignal;

/// Name of the variable that ties a replica or a build to the agent home that
/// started it.
pub const HOME_MARKER_VAR: &str = "SHIPDECK_AGENT_HOME";

/// How often the memory watchdog samples replicas without a memory cgroup.
const WATCHDOG_PERIOD: Duration = Duration::from_secs(1);

/// Variables passed from the agent's environment to replicas. Everything
/// else is left out so that the agent's own settings never leak into apps.
const INHERITED_VARS: &[&str] = &["HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

pub struct ProcessBackend {
    home_marker: String,
    limits: Limits,
    /// Memory limits of replicas whose memory no cgroup enforces.
    watchdog: Arc<Mutex<RssWatchdog>>,
    /// Process groups the watchdog killed, so their exit reads as out of memory.
    watchdog_kills: Arc<Mutex<HashSet<i32>>>,
    /// Directory of the running shipdeck binary, put first on replicas' PATH
    /// so that the bundled sample workload resolves by name.
    bin_dir: Option<PathBuf>,
    next_id: AtomicU64,
    logs: LogHub,
}

impl ProcessBackend {
    pub fn new(home: &Path, logs: LogHub) -> Self {
        let bin_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        let home_marker = home.display().to_string();
        let limits = Limits::detect(&instance_name(&home_marker));
        tracing::info!(limits = %limits, "resource limits");
        let backend = Self {
            home_marker,
            limits,
            watchdog: Arc::new(Mutex::new(RssWatchdog::new())),
            watchdog_kills: Arc::new(Mutex::new(HashSet::new())),
            bin_dir,
            next_id: AtomicU64::new(1),
            logs,
        };
        backend.spawn_watchdog();
        backend
    }

    /// Describes how limits are enforced on this host, for `agent status` and logs.
    pub fn limits_summary(&self) -> String {
        self.limits.to_string()
    }

    /// Checks watched process groups once a second and kills those above
    /// their memory limit.
    fn spawn_watchdog(&self) {
        let watchdog = Arc::clone(&self.watchdog);
        let kills = Arc::clone(&self.watchdog_kills);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCHDOG_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let snapshot = lock(&watchdog).clone();
                if snapshot.is_empty() {
                    continue;
                }
                let over = match tokio::task::spawn_blocking(move || snapshot.check()).await {
                    Ok(Ok(over)) => over,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "memory watchdog failed to read /proc");
                        continue;
                    }
                    Err(_) => continue,
                };
                for group in over {
                    tracing::warn!(
                        pgid = group.process_group,
                        resident = group.resident_bytes,
                        limit = group.limit_bytes,
                        "replica above its memory limit; killing it"
                    );
                    lock(&kills).insert(group.process_group);
                    let _ = killpg(Pid::from_raw(group.process_group), Signal::SIGKILL);
                }
            }
        });
    }

    /// Watches the replica's memory when a limit is set that no cgroup
    /// enforces; returns the watched process group.
    fn watch_memory(
        &self,
        launch: &ReplicaLaunch,
        cgroup: Option<&ReplicaCgroup>,
        pid: Option<u32>,
    ) -> Option<i32> {
        let limit = launch.memory_limit?;
        if cgroup.is_some_and(ReplicaCgroup::enforces_memory) {
            return None;
        }
        let group = i32::try_from(pid?).ok()?;
        lock(&self.watchdog).watch(group, limit);
        Some(group)
    }

    /// Puts the replica in its own cgroup when limits are set, or under the
    /// watchdog when no cgroup can enforce its memory limit.
    fn apply_limits(&self, launch: &ReplicaLaunch, command: &mut Command) -> Option<ReplicaCgroup> {
        if launch.memory_limit.is_none() && launch.cpu_millicores.is_none() {
            return None;
        }
        let name = format!(
            "{}-{}-r{}-{}",
            launch.key.name, launch.key.environment, launch.revision, launch.index
        );
        let unique = format!("{name}-{}", self.next_id.load(Ordering::Relaxed));
        match self
            .limits
            .create(&unique, launch.memory_limit, launch.cpu_millicores)
        {
            Ok(cgroup) => {
                cgroup.prepare_attach(command);
                Some(cgroup)
            }
            Err(error) => {
                tracing::warn!(replica = %name, %error, "cannot create a cgroup; memory falls back to the watchdog");
                None
            }
        }
    }

    /// Returns the PATH replicas search, with shipdeck's own directory first.
    pub fn search_path(&self) -> OsString {
        let mut dirs: Vec<PathBuf> = self.bin_dir.iter().cloned().collect();
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        } else {
            dirs.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
        }
        std::env::join_paths(dirs).unwrap_or_default()
    }

    /// Builds the replica environment: a few inherited variables, the
    /// manifest's env, then shipdeck's own variables, which win.
    fn replica_env(&self, launch: &ReplicaLaunch) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = INHERITED_VARS
            .iter()
            .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
            .collect();
        env.insert(
            "PATH".to_owned(),
            self.search_path().to_string_lossy().into_owned(),
        );
        env.extend(launch.env.clone());
        env.insert(HOME_MARKER_VAR.to_owned(), self.home_marker.clone());
        env
    }

    /// Ends every process group left behind by an earlier agent of this home.
    /// Returns how many groups were ended.
    pub fn sweep_orphans(&self) -> usize {
        let own = std::process::id();
        let mut groups = std::collections::BTreeSet::new();
        for pid in marked_processes(&self.home_marker) {
            if pid == own {
                continue;
            }
            if let Ok(pgid) = nix::unistd::getpgid(Some(Pid::from_raw(pid as i32))) {
                groups.insert(pgid);
            }
        }
        let own_group = nix::unistd::getpgrp();
        groups.remove(&own_group);
        for group in &groups {
            tracing::warn!(
                pgid = group.as_raw(),
                "ending replica group left by an earlier agent"
            );
            let _ = killpg(*group, Signal::SIGKILL);
        }
        groups.len()
    }
}

impl Backend for ProcessBackend {
    async fn start(
        &self,
        launch: ReplicaLaunch,
        events: mpsc::Sender<ReplicaEvent>,
    ) -> Result<StartedReplica, BackendError> {
        let env = self.replica_env(&launch);
        let argv = expand_command(&launch.command, &env)?;
        let program = resolve_program(&argv[0], &launch.workdir, &self.search_path())?;
        if !launch.workdir.is_dir() {
            return Err(BackendError::MissingWorkdir {
                path: launch.workdir.clone(),
            });
        }

        let mut command = Command::new(&program);
        command
            .args(&argv[1..])
            .env_clear()
            .envs(&env)
            .current_dir(&launch.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        die_with_parent(&mut command);
        let cgroup = self.apply_limits(&launch, &mut command);

        let mut child = command.spawn().map_err(|source| BackendError::Spawn {
            command: argv[0].clone(),
            source,
        })?;
        let id = ReplicaId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let pid = child.id();
        let source = format!("{}-{}", launch.key.name, launch.index);
        // Before the first line is read, so that no line escapes the mask.
        self.logs.set_secrets(
            &launch.deployment_id,
            launch.secret_values.iter().map(|value| value.expose()),
        );
        if let Some(stdout) = child.stdout.take() {
            self.logs
                .capture(capture_target(&launch, &source, Stream::Stdout), stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            self.logs
                .capture(capture_target(&launch, &source, Stream::Stderr), stderr);
        }
        let watched = self.watch_memory(&launch, cgroup.as_ref(), pid);
        let exit = ExitWatch {
            id,
            pid,
            cgroup,
            watched,
            watchdog: Arc::clone(&self.watchdog),
            watchdog_kills: Arc::clone(&self.watchdog_kills),
        };
        tokio::spawn(wait_for_exit(child, exit, events));
        Ok(StartedReplica {
            id,
            pid,
            container: None,
        })
    }

    fn request_stop(&self, replica: &StartedReplica, signal: StopSignal) {
        if let Some(pid) = replica.pid {
            let _ = killpg(Pid::from_raw(pid as i32), to_signal(signal));
        }
    }

    fn kill(&self, replica: &StartedReplica) {
        if let Some(pid) = replica.pid {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Asks the kernel to kill the replica (or build) when the agent thread
/// that started it exits. Both are started from tokio worker threads, which
/// live as long as the agent's runtime.
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only makes the
    // prctl system call, which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

/// The data the task that waits for a replica needs to report its end.
struct ExitWatch {
    id: ReplicaId,
    pid: Option<u32>,
    cgroup: Option<ReplicaCgroup>,
    /// The process group the watchdog watches for this replica, if any.
    watched: Option<i32>,
    watchdog: Arc<Mutex<RssWatchdog>>,
    watchdog_kills: Arc<Mutex<HashSet<i32>>>,
}

/// Waits for the replica to end. Meanwhile, where a cgroup enforces its
/// memory limit, reports each out-of-memory kill of one of its processes
/// that the replica survives; returns the exit and the kills reported.
async fn wait_watching_memory(
    child: &mut Child,
    watch: &ExitWatch,
    events: &mpsc::Sender<ReplicaEvent>,
) -> (std::io::Result<std::process::ExitStatus>, u64) {
    let cgroup = watch.cgroup.as_ref().filter(|cg| cg.enforces_memory());
    let mut reported = 0;
    let mut tick = tokio::time::interval(WATCHDOG_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            status = child.wait() => return (status, reported),
            _ = tick.tick(), if cgroup.is_some() => {
                let kills = cgroup.map_or(0, ReplicaCgroup::oom_kills);
                if kills > reported {
                    reported = kills;
                    let event = ReplicaEvent::OutOfMemory { id: watch.id, kills };
                    let _ = events.send(event).await;
                }
            }
        }
    }
}

async fn wait_for_exit(mut child: Child, watch: ExitWatch, events: mpsc::Sender<ReplicaEvent>) {
    let id = watch.id;
    let (status, reported_kills) = wait_watching_memory(&mut child, &watch, &events).await;
    let reason = match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitReason::Code(code),
            (None, Some(signal)) => ExitReason::Signal(signal),
            (None, None) => ExitReason::Unknown,
        },
        Err(error) => {
            tracing::error!(?id, %error, "waiting for a replica failed");
            ExitReason::Unknown
        }
    };

    // Whatever the leader started in its group goes with it, as in a
    // container: a replica is the whole group.
    if let Some(pid) = watch.pid {
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    let mut out_of_memory = false;
    if let Some(group) = watch.watched {
        lock(&watch.watchdog).unwatch(group);
        out_of_memory |= lock(&watch.watchdog_kills).remove(&group);
    }
    if let Some(cgroup) = watch.cgroup {
        // Kills already reported belong to processes the replica survived.
        out_of_memory |= if reported_kills == 0 {
            cgroup.is_oom_exit(reason)
        } else {
            reason == ExitReason::Signal(Signal::SIGKILL as i32)
                && cgroup.oom_kills() > reported_kills
        };
        cgroup.remove().await;
    }

    let event = ReplicaEvent::Exited {
        id,
        reason,
        out_of_memory,
    };
    if events.send(event).await.is_err() {
        tracing::debug!(?id, "replica exited after its supervisor stopped");
    }
}

fn capture_target(launch: &ReplicaLaunch, source: &str, stream: Stream) -> CaptureTarget {
    CaptureTarget {
        deployment_id: launch.deployment_id.clone(),
        source: source.to_owned(),
        stream,
        revision: launch.revision,
        build: false,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Derives a short name for this agent's cgroups from its home path, so
/// that agents of different homes never share them.
fn instance_name(home_marker: &str) -> String {
    // FNV-1a: stable across Rust releases, unlike the std hasher, so a new
    // agent binary still finds the cgroups an older one left.
    let hash = home_marker.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

fn to_signal(signal: StopSignal) -> Signal {
    match signal {
        StopSignal::Term => Signal::SIGTERM,
        StopSignal::Int => Signal::SIGINT,
        StopSignal::Quit => Signal::SIGQUIT,
        StopSignal::Hup => Signal::SIGHUP,
        StopSignal::Usr1 => Signal::SIGUSR1,
        StopSignal::Usr2 => Signal::SIGUSR2,
        StopSignal::Kill => Signal::SIGKILL,
    }
}

/// Expands `${NAME}` references from the replica's environment, without a
/// shell. `$${` stands for a literal `${`.
pub fn expand_command(
    command: &[String],
    env: &BTreeMap<String, String>,
) -> Result<Vec<String>, BackendError> {
    if command.is_empty() || command[0].is_empty() {
        return Err(BackendError::EmptyCommand);
    }
    command.iter().map(|arg| expand_arg(arg, env)).collect()
}

fn expand_arg(arg: &str, env: &BTreeMap<String, String>) -> Result<String, BackendError> {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = env.get(name).ok_or_else(|| BackendError::UnknownVariable {
            name: name.to_owned(),
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Finds the program to run: a path with a slash is taken relative to the
/// working directory, a bare name is searched on `path`.
pub fn resolve_program(
    name: &str,
    workdir: &Path,
    path: &OsString,
) -> Result<PathBuf, BackendError> {
    if name.contains('/') {
        let candidate = workdir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
        return Err(BackendError::CommandNotFound {
            command: name.to_owned(),
            searched: workdir.display().to_string(),
        });
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| BackendError::CommandNotFound {
            command: name.to_owned(),
            searched: "PATH".to_owned(),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Process ids whose environment carries this home's marker.
fn marked_processes(home_marker: &str) -> Vec<u32> {
    let needle = format!("{HOME_MARKER_VAR}={home_marker}");
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .map(|environ| {
                    environ
                        .split(|b| *b == 0)
                        .any(|var| var == needle.as_bytes())
                })
                .unwrap_or(false)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expand_replaces_known_variables() {
        let argv = vec!["serve".to_owned(), "--port=${PORT}".to_owned()];
        let expanded = expand_command(&argv, &env(&[("PORT", "8080")])).unwrap();
        assert_eq!(expanded, vec!["serve", "--port=8080"]);
    }

    #[test]
    fn expand_rejects_unknown_variable() {
        let argv = vec!["serve".to_owned(), "${NOPE}".to_owned()];
        let error = expand_command(&argv, &env(&[])).unwrap_err();
        assert!(error.to_string().contains("${NOPE}"), "{error}");
    }

    #[test]
    fn expand_keeps_escaped_reference() {
        let argv = vec!["echo".to_owned(), "$${PORT}".to_owned()];
        let expanded = expand_command(&argv, &env(&[("PORT", "1")])).unwrap();
        assert_eq!(expanded[1], "${PORT}");
    }

    #[test]
    fn expand_does_not_reexpand_values() {
        let argv = vec!["echo".to_owned(), "${A}".to_owned()];
        let expanded = expand_command(&argv, &env(&[("A", "${B}"), ("B", "x")])).unwrap();
        assert_eq!(expanded[1], "${B}");
    }

    #[test]
    fn resolve_reports_missing_program() {
        let path = OsString::from("/nonexistent");
        let error = resolve_program("no-such-program", Path::new("/"), &path).unwrap_err();
        assert!(error.to_string().contains("no-such-program"), "{error}");
    }
}
