//! Finding the agent's cgroups and preparing the instance's base cgroups.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use procfs::process::{MountInfo, Process};
use procfs::ProcessCGroup;

use super::{validate_name, CgroupVersion, ControllerStatus, Hierarchy, Limits};

/// EBUSY: a cgroup v2 cgroup with processes cannot enable controllers for
/// its children.
const EBUSY: i32 = 16;
const EROFS: i32 = 30;

/// The agent's own cgroup directory for one controller, with the version
/// of its hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Located {
    pub version: CgroupVersion,
    pub own_dir: PathBuf,
}

pub(super) fn detect(instance: &str) -> Limits {
    if validate_name(instance).is_err() {
        return unusable(format!(
            "invalid agent instance name {instance:?} for a cgroup directory"
        ));
    }

    let (mounts, own_cgroups) = match read_proc_self() {
        Ok(found) => found,
        Err(reason) => return unusable(reason),
    };
    let base_name = format!("shipdeck-{instance}");
    let mut v2_results: HashMap<PathBuf, Result<PathBuf, String>> = HashMap::new();

    let mut prepare = |controller: &str| -> ControllerStatus {
        let located = match locate(&mounts, &own_cgroups, controller) {
            Ok(located) => located,
            Err(reason) => return ControllerStatus::Unusable { reason },
        };
        let base = match located.version {
            CgroupVersion::V1 => {
                prepare_v1(&located.own_dir, &base_name, v1_probe_file(controller))
            }
            CgroupVersion::V2 => v2_results
                .entry(located.own_dir.clone())
                .or_insert_with(|| prepare_v2(&located.own_dir, &base_name, instance))
                .clone(),
        };
        match base {
            Ok(base) => ControllerStatus::Usable(Hierarchy {
                version: located.version,
                base,
            }),
            Err(reason) => ControllerStatus::Unusable { reason },
        }
    };

    let memory = prepare("memory");
    let cpu = prepare("cpu");
    let cpu_accounting = match cpu.hierarchy() {
        Some(h) if h.version == CgroupVersion::V1 => prepare("cpuacct").hierarchy().cloned(),
        _ => None,
    };

    let limits = Limits {
        memory,
        cpu,
        cpu_accounting,
    };
    for base in limits.base_directories() {
        remove_empty_children(&base);
    }
    limits
}

fn unusable(reason: String) -> Limits {
    Limits {
        memory: ControllerStatus::Unusable {
            reason: reason.clone(),
        },
        cpu: ControllerStatus::Unusable { reason },
        cpu_accounting: None,
    }
}

fn read_proc_self() -> Result<(Vec<MountInfo>, Vec<ProcessCGroup>), String> {
    let process = Process::myself().map_err(|error| format!("cannot open /proc/self: {error}"))?;
    let mounts = process
        .mountinfo()
        .map_err(|error| format!("cannot read /proc/self/mountinfo: {error}"))?;
    let cgroups = process
        .cgroups()
        .map_err(|error| format!("cannot read /proc/self/cgroup: {error}"))?;
    Ok((mounts.0, cgroups.0))
}

/// Finds the agent's cgroup directory for `controller`, preferring a
/// cgroup v1 hierarchy because a controller bound to v1 is absent from v2.
pub(super) fn locate(
    mounts: &[MountInfo],
    own_cgroups: &[ProcessCGroup],
    controller: &str,
) -> Result<Located, String> {
    let v1_mount = mounts
        .iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.contains_key(controller));
    if let Some(mount) = v1_mount {
        let own = own_cgroups
            .iter()
            .find(|c| c.controllers.iter().any(|name| name == controller))
            .ok_or_else(|| {
                format!("the {controller} controller is mounted at {} but /proc/self/cgroup has no entry for it", mount.mount_point.display())
            })?;
        let own_dir = dir_in_mount(mount, &own.pathname)?;
        return Ok(Located {
            version: CgroupVersion::V1,
            own_dir,
        });
    }

    let Some(mount) = mounts.iter().find(|m| m.fs_type == "cgroup2") else {
        return Err(format!(
            "no cgroup file system with the {controller} controller is mounted"
        ));
    };
    let own = own_cgroups
        .iter()
        .find(|c| c.hierarchy == 0)
        .ok_or_else(|| "/proc/self/cgroup has no cgroup v2 entry".to_owned())?;
    let own_dir = dir_in_mount(mount, &own.pathname)?;
    check_v2_controller(&own_dir, controller)?;
    Ok(Located {
        version: CgroupVersion::V2,
        own_dir,
    })
}

/// Maps a cgroup path from `/proc/self/cgroup` to a directory, using the
/// mount's root: a bind mount or cgroup namespace may mount a subtree.
fn dir_in_mount(mount: &MountInfo, cgroup_path: &str) -> Result<PathBuf, String> {
    let relative = Path::new(cgroup_path)
        .strip_prefix(&mount.root)
        .map_err(|_| {
            format!(
                "the agent's cgroup {cgroup_path} is outside the subtree {} mounted at {}",
                mount.root,
                mount.mount_point.display()
            )
        })?;
    if relative.as_os_str().is_empty() {
        Ok(mount.mount_point.clone())
    } else {
        Ok(mount.mount_point.join(relative))
    }
}

fn check_v2_controller(own_dir: &Path, controller: &str) -> Result<(), String> {
    let path = own_dir.join("cgroup.controllers");
    let available = fs::read_to_string(&path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if available.split_whitespace().any(|name| name == controller) {
        Ok(())
    } else {
        Err(format!(
            "the {controller} controller is not available to the agent's cgroup {} (its cgroup.controllers lists {:?}), so delegate it to the agent",
            own_dir.display(),
            available.trim()
        ))
    }
}

fn v1_probe_file(controller: &str) -> &'static str {
    match controller {
        "memory" => "memory.limit_in_bytes",
        "cpu" => "cpu.cfs_quota_us",
        _ => "cpuacct.usage",
    }
}

/// Creates the base cgroup in a cgroup v1 hierarchy and checks that the
/// kernel has the control file that the limit needs.
fn prepare_v1(own_dir: &Path, base_name: &str, probe_file: &str) -> Result<PathBuf, String> {
    let base = own_dir.join(base_name);
    make_base_dir(&base)?;

    if !base.join(probe_file).exists() {
        return Err(format!(
            "{} is missing, so this kernel cannot enforce the limit",
            base.join(probe_file).display()
        ));
    }
    Ok(base)
}

/// Creates the base cgroup in the cgroup v2 hierarchy with the memory and
/// cpu controllers enabled for replica cgroups.
// NOTE: the integration tests run on cgroup v1 hosts; this cgroup v2 path,
// including the move into a leaf cgroup, is checked only by reading.
fn prepare_v2(own_dir: &Path, base_name: &str, instance: &str) -> Result<PathBuf, String> {
    let controllers = available_of(&["memory", "cpu"], own_dir);
    enable_for_children(own_dir, &controllers, instance)?;

    let base = own_dir.join(base_name);
    make_base_dir(&base)?;
    enable_controllers(&base, &controllers)
        .map_err(|error| subtree_error(&base, &controllers, &error))?;
    Ok(base)
}

fn available_of<'a>(controllers: &[&'a str], own_dir: &Path) -> Vec<&'a str> {
    controllers
        .iter()
        .copied()
        .filter(|controller| check_v2_controller(own_dir, controller).is_ok())
        .collect()
}

/// Enables controllers in the agent's cgroup for its children. cgroup v2
/// allows that only in a cgroup without processes (except the root), so on
/// EBUSY the agent moves itself into a leaf cgroup and tries once more.
fn enable_for_children(own_dir: &Path, controllers: &[&str], instance: &str) -> Result<(), String> {
    match enable_controllers(own_dir, controllers) {
        Ok(()) => return Ok(()),
        Err(error) if error.raw_os_error() != Some(EBUSY) => {
            return Err(subtree_error(own_dir, controllers, &error))
        }
        Err(_) => {}
    }

    let leaf = own_dir.join(format!("shipdeck-{instance}-agent"));
    make_base_dir(&leaf)?;
    let procs = leaf.join("cgroup.procs");
    fs::write(&procs, std::process::id().to_string())
        .map_err(|error| format!("cannot move the agent into {}: {error}", procs.display()))?;
    tracing::info!(cgroup = %leaf.display(), "moved the agent into a leaf cgroup so its cgroup can enable controllers");

    enable_controllers(own_dir, controllers).map_err(|error| {
        format!(
            "{} (other processes share the agent's cgroup, so start the agent in a cgroup of its own, for example with systemd-run --scope -p Delegate=yes)",
            subtree_error(own_dir, controllers, &error)
        )
    })
}

fn enable_controllers(dir: &Path, controllers: &[&str]) -> io::Result<()> {
    let path = dir.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&path)?;
    let missing: Vec<String> = controllers
        .iter()
        .filter(|controller| !enabled.split_whitespace().any(|name| name == **controller))
        .map(|controller| format!("+{controller}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::write(&path, missing.join(" "))
}

fn subtree_error(dir: &Path, controllers: &[&str], error: &io::Error) -> String {
    format!(
        "cannot enable {} in {}: {}",
        controllers.join(" and "),
        dir.join("cgroup.subtree_control").display(),
        describe_io_error(error)
    )
}

fn make_base_dir(path: &Path) -> Result<(), String> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(format!(
            "cannot create {}: {}",
            path.display(),
            describe_io_error(&error)
        )),
    }
}

fn describe_io_error(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::PermissionDenied {
        "permission denied, so run the agent as root or in a delegated cgroup".to_owned()
    } else if error.raw_os_error() == Some(EROFS) {
        "the cgroup file system is mounted read-only".to_owned()
    } else {
        error.to_string()
    }
}

/// Removes the empty replica cgroups under `base`, such as those left by
/// an agent that crashed. Cgroups that still contain processes stay.
pub(super) fn remove_empty_children(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        match fs::remove_dir(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "removed a stale replica cgroup"),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "a stale replica cgroup still has processes; leaving it")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use procfs::FromBufRead;

    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const OWN_CGROUPS: &str = "\
4:memory:/process_api/010f
2:cpuacct:/
1:cpu:/
0::/
";

    fn mounts(text: &str) -> Vec<MountInfo> {
        procfs::process::MountInfos::from_buf_read(text.as_bytes())
            .unwrap()
            .0
    }

    fn own(text: &str) -> Vec<ProcessCGroup> {
        procfs::ProcessCGroups::from_buf_read(text.as_bytes())
            .unwrap()
            .0
    }

    #[test]
    fn v1_nested_memory_cgroup() {
        let located = locate(&mounts(MOUNTINFO), &own(OWN_CGROUPS), "memory").unwrap();
        assert_eq!(located.version, CgroupVersion::V1);
        assert_eq!(
            located.own_dir,
            PathBuf::from("/sys/fs/cgroup/memory/process_api/010f")
        );
    }

    #[test]
    fn v1_root_cgroup_has_no_trailing_slash() {
        let located = locate(&mounts(MOUNTINFO), &own(OWN_CGROUPS), "cpu").unwrap();
        assert_eq!(located.own_dir, PathBuf::from("/sys/fs/cgroup/cpu"));
    }

    #[test]
    fn v1_co_mounted_controllers() {
        let text = "40 31 0:40 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let cgroups = own("3:cpu,cpuacct:/agent\n");

        let cpu = locate(&mounts(text), &cgroups, "cpu").unwrap();
        let cpuacct = locate(&mounts(text), &cgroups, "cpuacct").unwrap();
        assert_eq!(
            cpu.own_dir,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/agent")
        );
        assert_eq!(cpu, cpuacct);
    }

    #[test]
    fn mount_root_is_stripped() {
        let text = "50 31 0:50 /kubepods /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let cgroups = own("4:memory:/kubepods/pod1\n");

        let located = locate(&mounts(text), &cgroups, "memory").unwrap();
        assert_eq!(located.own_dir, PathBuf::from("/sys/fs/cgroup/memory/pod1"));
    }

    #[test]
    fn cgroup_outside_mounted_subtree() {
        let text = "50 31 0:50 /kubepods /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let cgroups = own("4:memory:/system.slice\n");

        let reason = locate(&mounts(text), &cgroups, "memory").unwrap_err();
        assert!(reason.contains("outside the subtree"), "{reason}");
    }

    #[test]
    fn no_cgroup_mounts() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n";

        let reason = locate(&mounts(text), &own("0::/\n"), "memory").unwrap_err();
        assert!(reason.contains("no cgroup file system"), "{reason}");
    }

    #[test]
    fn io_errors_described_with_fix() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(describe_io_error(&denied).contains("run the agent as root"));

        let read_only = io::Error::from_raw_os_error(EROFS);
        assert!(describe_io_error(&read_only).contains("read-only"));
    }
}
