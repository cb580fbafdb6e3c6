//! Resource limits on real cgroups and the RSS watchdog on real processes.
//!
//! Cgroup tests need an agent that may create cgroups (root, or a delegated
//! cgroup). Where it may not, they print why and pass, unless
//! `SHIPDECK_REQUIRE_CGROUPS=1` is set, which turns the skip into a failure.
//! Each test uses its own instance name, so tests can run in parallel, and
//! a guard kills its process groups and removes its cgroups even on failure.

use std::fs;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use shipdeck::backend::limits::{sample, Limits, ReplicaCgroup, RssWatchdog};
use shipdeck::backend::ExitReason;
use tokio::process::{Child, Command};

const MIB: u64 = 1 << 20;

/// How long a test waits for a child to be killed or to reach a state.
const PATIENCE: Duration = Duration::from_secs(60);

/// Allocates 200 MiB in 10 MiB steps, then sleeps. `bytearray(n)` writes
/// its n zero bytes, so the memory is resident, not only reserved.
const ALLOCATE_200_MIB: &str =
    "import time\nb = []\nfor _ in range(20):\n    b.append(bytearray(10 * 2**20))\ntime.sleep(60)";

/// Kills the test's process groups and removes its cgroups when dropped.
struct Cleanup {
    limits: Option<Limits>,
    process_groups: Vec<i32>,
    directories: Vec<PathBuf>,
}

impl Cleanup {
    fn new(limits: Option<Limits>) -> Cleanup {
        Cleanup {
            limits,
            process_groups: Vec::new(),
            directories: Vec::new(),
        }
    }

    fn limits(&self) -> &Limits {
        self.limits.as_ref().expect("the test detected cgroups")
    }

    fn create(&mut self, name: &str, memory: Option<u64>, cpu: Option<u64>) -> ReplicaCgroup {
        let cgroup = self
            .limits()
            .create(name, memory, cpu)
            .expect("create the test cgroup");
        self.directories.extend_from_slice(cgroup.directories());
        cgroup
    }

    /// Spawns a child in its own process group, in `cgroup` if one is given.
    /// The child is killed when the returned handle is dropped.
    fn spawn(&mut self, cgroup: Option<&ReplicaCgroup>, program: &str, args: &[&str]) -> Child {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cgroup) = cgroup {
            cgroup.prepare_attach(&mut command);
        }

        let child = command.spawn().expect("spawn the test child");
        self.process_groups.push(pid_of(&child));
        child
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &group in &self.process_groups {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
        for dir in self.directories.iter().rev() {
            remove_dir_patiently(dir);
        }
        if let Some(limits) = &self.limits {
            limits.remove_empty();
        }
    }
}

fn remove_dir_patiently(dir: &Path) {
    for _ in 0..80 {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return,
            Err(_) => thread::sleep(Duration::from_millis(25)),
        }
    }
    eprintln!("could not remove test cgroup {}", dir.display());
}

/// Detects cgroups for a test-specific instance, or returns `None` after
/// printing why the test is skipped.
fn detect_or_skip(test: &str) -> Option<Cleanup> {
    let instance = format!("test{}-{test}", std::process::id());
    let limits = Limits::detect(&instance);
    if limits.memory_enforced() && limits.cpu_enforced() {
        return Some(Cleanup::new(Some(limits)));
    }

    let required = std::env::var("SHIPDECK_REQUIRE_CGROUPS").is_ok_and(|value| value == "1");
    assert!(
        !required,
        "SHIPDECK_REQUIRE_CGROUPS=1 but cgroups are not usable: {limits}"
    );
    eprintln!("skipping {test}: cgroups are not usable here: {limits}");
    limits.remove_empty();
    None
}

fn pid_of(child: &Child) -> i32 {
    let pid = child.id().expect("a running child has a pid");
    i32::try_from(pid).expect("pids fit in i32")
}

fn procs_of(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .expect("read cgroup.procs")
        .lines()
        .map(|line| line.parse().expect("cgroup.procs lists pids"))
        .collect()
}

/// Reads the first of `names` that exists in `dir`, because cgroup v1 and
/// v2 name the same setting differently.
fn read_setting(dir: &Path, names: &[&str]) -> String {
    for name in names {
        if let Ok(text) = fs::read_to_string(dir.join(name)) {
            return text.trim().to_owned();
        }
    }
    panic!("none of {names:?} exists in {}", dir.display());
}

#[tokio::test]
async fn memory_limit_kills_with_oom() {
    let Some(mut cleanup) = detect_or_skip("oom") else {
        return;
    };
    let cgroup = cleanup.create("oom", Some(64 * MIB), None);
    let mut child = cleanup.spawn(Some(&cgroup), "python3", &["-c", ALLOCATE_200_MIB]);

    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("the child should be killed before the timeout")
        .unwrap();

    assert_eq!(
        status.signal(),
        Some(Signal::SIGKILL as i32),
        "status: {status:?}"
    );
    assert!(cgroup.oom_kills() >= 1, "oom_kills: {}", cgroup.oom_kills());
    assert!(cgroup.is_oom_exit(ExitReason::Signal(Signal::SIGKILL as i32)));
    assert!(!cgroup.is_oom_exit(ExitReason::Code(1)));
}

#[tokio::test]
async fn memory_limit_spares_small_process() {
    let Some(mut cleanup) = detect_or_skip("spare") else {
        return;
    };
    let cgroup = cleanup.create("spare", Some(64 * MIB), None);
    let script = "b = bytearray(8 * 2**20)";
    let mut child = cleanup.spawn(Some(&cgroup), "python3", &["-c", script]);

    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(status.code(), Some(0), "status: {status:?}");
    assert_eq!(cgroup.oom_kills(), 0);
    assert!(cgroup.memory_usage().is_some());
}

#[tokio::test]
async fn cpu_limit_throttles_busy_loop() {
    let Some(mut cleanup) = detect_or_skip("cpu") else {
        return;
    };
    let cgroup = cleanup.create("cpu", None, Some(100));
    let before = cgroup.cpu_usage().expect("cpu usage should be readable");
    let started = Instant::now();
    let _child = cleanup.spawn(Some(&cgroup), "sh", &["-c", "while :; do :; done"]);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cgroup.cpu_usage().unwrap() - before;
    let share = used.as_secs_f64() / started.elapsed().as_secs_f64();

    // 100 millicores is 10% of one core. Other load on the machine can only
    // lower the share, and the first period may run before throttling.
    assert!(
        share < 0.2,
        "busy loop used {share:.3} of a core over {:?}",
        started.elapsed()
    );
    assert!(
        share > 0.01,
        "busy loop used {share:.3} of a core; it barely ran"
    );
}

#[tokio::test]
async fn limits_written_to_cgroup_files() {
    let Some(mut cleanup) = detect_or_skip("files") else {
        return;
    };
    let cgroup = cleanup.create("files", Some(256 * MIB), Some(1500));

    let memory: Vec<String> = cgroup
        .directories()
        .iter()
        .filter_map(|dir| {
            ["memory.limit_in_bytes", "memory.max"]
                .iter()
                .find_map(|name| fs::read_to_string(dir.join(name)).ok())
        })
        .collect();
    assert_eq!(
        memory.len(),
        1,
        "one directory should hold the memory limit"
    );
    assert_eq!(memory[0].trim(), (256 * MIB).to_string());

    let cpu_dir = cgroup
        .directories()
        .iter()
        .find(|dir| dir.join("cpu.cfs_quota_us").exists() || dir.join("cpu.max").exists())
        .unwrap();
    let cpu = read_setting(cpu_dir, &["cpu.cfs_quota_us", "cpu.max"]);
    assert!(
        cpu == "150000" || cpu == "150000 100000",
        "cpu limit: {cpu}"
    );
}

#[tokio::test]
async fn child_joins_every_cgroup_before_exec() {
    let Some(mut cleanup) = detect_or_skip("child") else {
        return;
    };
    let cgroup = cleanup.create("child", Some(128 * MIB), Some(500));
    let child = cleanup.spawn(Some(&cgroup), "sleep", &["30"]);
    let pid = pid_of(&child);

    assert!(!cgroup.directories().is_empty());
    for dir in cgroup.directories() {
        assert_eq!(procs_of(dir), vec![pid], "processes in {}", dir.display());
    }
}

#[tokio::test]
async fn attach_moves_running_process() {
    let Some(mut cleanup) = detect_or_skip("parent") else {
        return;
    };
    let cgroup = cleanup.create("parent", Some(128 * MIB), Some(500));
    let child = cleanup.spawn(None, "sleep", &["30"]);
    let pid = pid_of(&child);

    cgroup.attach(u32::try_from(pid).unwrap()).unwrap();

    for dir in cgroup.directories() {
        assert_eq!(procs_of(dir), vec![pid], "processes in {}", dir.display());
    }
}

#[tokio::test]
async fn spawn_fails_when_cgroup_is_gone() {
    let Some(mut cleanup) = detect_or_skip("gone") else {
        return;
    };
    let cgroup = cleanup.create("gone", Some(64 * MIB), None);
    for dir in cgroup.directories() {
        fs::remove_dir(dir).unwrap();
    }

    let mut command = Command::new("sleep");
    command.arg("30").process_group(0).kill_on_drop(true);
    cgroup.prepare_attach(&mut command);
    let error = command.spawn().unwrap_err();

    assert_eq!(error.kind(), io::ErrorKind::NotFound, "error: {error}");
}

#[tokio::test]
async fn remove_deletes_directories() {
    let Some(mut cleanup) = detect_or_skip("remove") else {
        return;
    };
    let cgroup = cleanup.create("remove", Some(64 * MIB), Some(200));
    let directories = cgroup.directories().to_vec();
    let mut child = cleanup.spawn(Some(&cgroup), "true", &[]);
    child.wait().await.unwrap();

    cgroup.remove().await;

    for dir in &directories {
        assert!(!dir.exists(), "{} should be removed", dir.display());
    }
}

#[tokio::test]
async fn detection_removes_empty_stale_cgroups() {
    let Some(mut cleanup) = detect_or_skip("stale") else {
        return;
    };
    let stale = cleanup.create("stale", Some(64 * MIB), None);
    let busy = cleanup.create("busy", Some(64 * MIB), None);
    let _child = cleanup.spawn(Some(&busy), "sleep", &["30"]);

    // A second detection of the same instance acts as an agent restarting
    // after a crash that left both cgroups behind.
    let instance = format!("test{}-stale", std::process::id());
    let _restarted = Limits::detect(&instance);

    for dir in stale.directories() {
        assert!(
            !dir.exists(),
            "empty stale {} should be removed",
            dir.display()
        );
    }
    for dir in busy.directories() {
        assert!(dir.exists(), "busy {} should stay", dir.display());
    }
}

#[tokio::test]
async fn detection_summary_names_hierarchies() {
    let Some(cleanup) = detect_or_skip("summary") else {
        return;
    };
    let summary = cleanup.limits().to_string();

    assert!(!summary.contains('\n'), "summary: {summary}");
    assert!(
        summary.starts_with("memory: cgroup v"),
        "summary: {summary}"
    );
    assert!(summary.contains("; cpu: cgroup v"), "summary: {summary}");
    assert!(summary.contains("shipdeck-test"), "summary: {summary}");
}

#[test]
fn detection_summary_gives_reason() {
    let limits = Limits::detect("bad/instance");
    let summary = limits.to_string();

    assert!(!limits.memory_enforced());
    assert!(!limits.cpu_enforced());
    assert!(!summary.contains('\n'), "summary: {summary}");
    assert!(
        summary.starts_with("memory: RSS watchdog (invalid agent instance name"),
        "summary: {summary}"
    );
    assert!(
        summary.contains("; cpu: not enforced ("),
        "summary: {summary}"
    );
}

/// Starts two processes of about 40 MiB each in one process group: each is
/// under a 60 MiB limit, together they are over it.
#[tokio::test]
async fn watchdog_sums_process_group() {
    let mut cleanup = Cleanup::new(None);
    let allocate = "import time; b = bytearray(40 * 2**20); time.sleep(60)";
    let script = format!("python3 -c '{allocate}' & python3 -c '{allocate}' & wait");
    let big_child = cleanup.spawn(None, "sh", &["-c", &script]);
    let small_child = cleanup.spawn(None, "sleep", &["60"]);
    let (big, small) = (pid_of(&big_child), pid_of(&small_child));

    let mut watchdog = RssWatchdog::new();
    watchdog.watch(big, 60 * MIB);
    watchdog.watch(small, 60 * MIB);

    let deadline = Instant::now() + PATIENCE;
    let over = loop {
        let over = watchdog.check().unwrap();
        if !over.is_empty() || Instant::now() > deadline {
            break over;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(over.len(), 1, "over limit: {over:?}");
    assert_eq!(over[0].process_group, big);
    assert_eq!(over[0].limit_bytes, 60 * MIB);
    assert!(
        over[0].resident_bytes > 60 * MIB,
        "resident: {}",
        over[0].resident_bytes
    );
}

#[tokio::test]
async fn watchdog_ignores_unwatched_group() {
    let mut cleanup = Cleanup::new(None);
    let child = cleanup.spawn(None, "sleep", &["60"]);
    let group = pid_of(&child);

    let mut watchdog = RssWatchdog::new();
    watchdog.watch(group, 1);
    watchdog.unwatch(group);

    assert!(watchdog.is_empty());
    assert!(watchdog.check().unwrap().is_empty());
}

#[tokio::test]
async fn sample_counts_resident_memory() {
    let mut cleanup = Cleanup::new(None);
    let sleeper_child = cleanup.spawn(None, "sleep", &["60"]);
    let sleeper = pid_of(&sleeper_child);
    let mut finished = cleanup.spawn(None, "true", &[]);
    let exited = pid_of(&finished);
    finished.wait().await.unwrap();

    let resident = sample(&[sleeper, exited]).unwrap();

    assert_eq!(resident.len(), 2);
    assert!(resident[&sleeper] > 0, "sleep should have resident pages");
    assert_eq!(resident[&exited], 0);
}
