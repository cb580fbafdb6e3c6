//! Reading the CPU time and resident memory of process groups from /proc.
//!
//! A process replica is a process group led by the replica's main process,
//! so its usage is the sum over every process in that group. One sweep reads
//! `/proc/PID/stat` of every process once and sums by group, which costs the
//! same for one replica as for two hundred.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use procfs::process::all_processes;

/// The usage of the processes of one group at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupUsage {
    /// User and system CPU time of the live processes, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    pub processes: u32,
}

/// Failure to read /proc at all; single processes that exit mid-sweep are
/// skipped instead.
#[derive(Debug, thiserror::Error)]
#[error("reading /proc failed; metrics of process replicas need a mounted /proc")]
pub struct SweepError(#[source] pub procfs::ProcError);

/// Sums the usage of every process whose group is in `groups`.
pub fn sweep(groups: &HashSet<i32>) -> Result<HashMap<i32, GroupUsage>, SweepError> {
    let mut usage: HashMap<i32, GroupUsage> = HashMap::new();
    if groups.is_empty() {
        return Ok(usage);
    }
    let page_size = procfs::page_size();

    for process in all_processes().map_err(SweepError)?.flatten() {
        // A process may exit between the listing and the read.
        let Ok(stat) = process.stat() else { continue };
        if !groups.contains(&stat.pgrp) {
            continue;
        }
        let group = usage.entry(stat.pgrp).or_default();
        group.cpu_ticks += stat.utime + stat.stime;
        group.rss_bytes += stat.rss * page_size;
        group.processes += 1;
    }
    Ok(usage)
}

/// Turns successive CPU tick counts of each group into cores in use.
#[derive(Debug, Default)]
pub struct CpuRates {
    previous: HashMap<i32, (u64, Instant)>,
}

impl CpuRates {
    /// Returns the cores that group `pgid` used since its previous reading,
    /// or `None` for its first reading, when there is nothing to compare
    /// with. A count that went down (a process of the group exited and took
    /// its time with it) starts a new baseline rather than a negative rate.
    pub fn cores(&mut self, pgid: i32, ticks: u64, now: Instant) -> Option<f64> {
        let previous = self.previous.insert(pgid, (ticks, now));
        let (last_ticks, last_time) = previous?;
        let seconds = now.checked_duration_since(last_time)?.as_secs_f64();
        if seconds <= 0.0 || ticks < last_ticks {
            return None;
        }
        let ticks_per_second = procfs::ticks_per_second() as f64;
        Some((ticks - last_ticks) as f64 / ticks_per_second / seconds)
    }

    /// Forgets groups that are gone, so that a reused pid starts afresh.
    pub fn retain(&mut self, live: &HashSet<i32>) {
        self.previous.retain(|pgid, _| live.contains(pgid));
    }
}

/// Total memory of the host in bytes, for percentages of replicas without
/// a memory limit.
pub fn host_memory_bytes() -> Option<u64> {
    use procfs::Current;
    procfs::Meminfo::current().ok().map(|info| info.mem_total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sweep_finds_this_test_process_group() {
        let own_group = nix::unistd::getpgrp().as_raw();
        let usage = sweep(&HashSet::from([own_group])).unwrap();
        let group = usage.get(&own_group).expect("this process's group");
        assert!(group.processes >= 1);
        assert!(group.rss_bytes > 0);
    }

    #[test]
    fn empty_sweep_reads_nothing() {
        assert!(sweep(&HashSet::new()).unwrap().is_empty());
    }

    #[test]
    fn first_reading_has_no_rate() {
        let mut rates = CpuRates::default();
        let start = Instant::now();
        assert_eq!(rates.cores(7, 100, start), None);
        let per_second = procfs::ticks_per_second();
        let later = start + Duration::from_secs(2);
        let cores = rates.cores(7, 100 + per_second, later).unwrap();
        assert!((cores - 0.5).abs() < 1e-9, "{cores}");
    }

    #[test]
    fn falling_count_and_zero_interval_give_no_rate() {
        let mut rates = CpuRates::default();
        let start = Instant::now();
        rates.cores(7, 500, start);
        assert_eq!(rates.cores(7, 400, start + Duration::from_secs(1)), None);
        assert_eq!(
            rates.cores(7, 450, start + Duration::from_secs(1)),
            None,
            "same instant"
        );
    }

    #[test]
    fn retain_forgets_gone_groups() {
        let mut rates = CpuRates::default();
        let start = Instant::now();
        rates.cores(7, 500, start);
        rates.retain(&HashSet::new());
        assert_eq!(rates.cores(7, 900, start + Duration::from_secs(1)), None);
    }
}
