//! Memory limits without cgroups: resident memory sampled per process group.
//!
//! The watchdog is weaker than a cgroup limit. It reads memory only at each
//! sample, so a replica can exceed its limit in between, and it adds up
//! each process's resident set size, so pages shared by processes of one
//! group count once per process and the total can overstate usage.

use std::collections::HashMap;

use super::LimitsError;

/// Exit reason that the caller records for a replica killed by the
/// watchdog.
pub const WATCHDOG_OOM_REASON: &str = "out of memory (watchdog)";

/// A process group whose resident memory exceeds its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    pub process_group: i32,
    pub resident_bytes: u64,
    pub limit_bytes: u64,
}

/// Memory limits per process group, checked with one pass over /proc.
#[derive(Debug, Default, Clone)]
pub struct RssWatchdog {
    limits: HashMap<i32, u64>,
}

impl RssWatchdog {
    pub fn new() -> RssWatchdog {
        RssWatchdog::default()
    }

    /// Watches a process group with a limit in bytes, replacing any earlier
    /// limit of that group.
    pub fn watch(&mut self, process_group: i32, limit_bytes: u64) {
        self.limits.insert(process_group, limit_bytes);
    }

    pub fn unwatch(&mut self, process_group: i32) {
        self.limits.remove(&process_group);
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// Samples every watched group and returns those above their limit.
    /// The caller kills them and records [`WATCHDOG_OOM_REASON`].
    pub fn check(&self) -> Result<Vec<OverLimit>, LimitsError> {
        if self.limits.is_empty() {
            return Ok(Vec::new());
        }

        let groups: Vec<i32> = self.limits.keys().copied().collect();
        let resident = sample(&groups)?;

        let mut over: Vec<OverLimit> = self
            .limits
            .iter()
            .filter_map(|(&process_group, &limit_bytes)| {
                let resident_bytes = resident.get(&process_group).copied().unwrap_or(0);
                (resident_bytes > limit_bytes).then_some(OverLimit {
                    process_group,
                    resident_bytes,
                    limit_bytes,
                })
            })
            .collect();
        over.sort_by_key(|o| o.process_group);
        Ok(over)
    }
}

/// Returns the resident memory in bytes of each process group in `groups`
/// (0 for a group without processes), from one pass over /proc. The `rss`
/// field of `/proc/PID/stat` is the same page count as the resident field
/// of `/proc/PID/statm`, and that file also gives the group.
pub fn sample(groups: &[i32]) -> Result<HashMap<i32, u64>, LimitsError> {
    let mut totals: HashMap<i32, u64> = groups.iter().map(|&group| (group, 0)).collect();
    if totals.is_empty() {
        return Ok(totals);
    }

    let page_size = procfs::page_size();
    let processes =
        procfs::process::all_processes().map_err(|source| LimitsError::ScanProc { source })?;
    for process in processes.flatten() {
        // A process that exited during the scan has no stat file any more.
        let Ok(stat) = process.stat() else {
            continue;
        };
        if let Some(total) = totals.get_mut(&stat.pgrp) {
            *total += stat.rss * page_size;
        }
    }
    Ok(totals)
}
