//! Container metrics from the engine's stats stream: one long-lived stream
//! per container, which the engine feeds about once a second, keeping only
//! the newest sample for the metrics collector to read.
//!
//! A sample keeps the counters as the engine reports them. The collector
//! turns two samples into rates over its own interval. CPU cores are the
//! growth of the container's total usage over the growth of the host's
//! system usage, times the online CPUs, as `docker stats` computes its
//! CPU %. Network rates are bytes per second. A first sample, a stopped
//! container (whose samples the engine sends with every counter zero or
//! missing) and missing fields give no value, which the collector stores
//! as a gap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{ContainerMemoryStats, ContainerStatsResponse};
use bollard::query_parameters::StatsOptions;
use bollard::Docker;
use futures_util::StreamExt;
use time::OffsetDateTime;

use super::{lock, Shared};

/// A sample older than this is stale: its stream stopped (the container
/// ended, or the engine went away), so it is not used.
pub const STALE_AFTER: Duration = Duration::from_secs(5);

/// One sample of a container's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSample {
    /// When the agent received it.
    pub received: Instant,
    /// When the engine read it, from the sample's `read` field.
    pub read: Option<OffsetDateTime>,
    pub cpu: Option<CpuCounters>,
    /// Memory in use without the page cache that the kernel can drop.
    pub memory_bytes: Option<u64>,
    pub network: Option<NetworkCounters>,
}

/// CPU counters in nanoseconds: the container's total usage and the host's
/// usage summed over every CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuCounters {
    pub total: u64,
    pub system: u64,
    pub online_cpus: u32,
}

/// Bytes received and sent, summed over the container's interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl StatsSample {
    /// Reads the counters of one sample, leaving out what is missing or zero.
    pub fn from_response(response: &ContainerStatsResponse, received: Instant) -> Self {
        Self {
            received,
            read: response
                .read
                .as_ref()
                .and_then(|read| read_time(&read.to_string())),
            cpu: cpu_counters(response),
            memory_bytes: response
                .memory_stats
                .as_ref()
                .and_then(memory_without_cache),
            network: network_counters(response),
        }
    }

    pub fn is_stale(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.received) > STALE_AFTER
    }
}

/// Returns the cores a container used between two samples: the growth of
/// its usage over the growth of the host's, times the online CPUs. `None`
/// when either sample lacks counters, when no host time passed, or when the
/// usage went down (a new container under the same id).
pub fn cpu_cores(earlier: &StatsSample, later: &StatsSample) -> Option<f64> {
    let (before, after) = (earlier.cpu?, later.cpu?);
    let used = after.total.checked_sub(before.total)?;
    let system = after.system.checked_sub(before.system)?;
    if system == 0 {
        return None;
    }
    Some(used as f64 / system as f64 * f64::from(after.online_cpus))
}

/// Returns bytes per second received and sent between two samples, over
/// the engine's read times. `None` without counters or times in both, or
/// when a counter went down.
pub fn network_rates(earlier: &StatsSample, later: &StatsSample) -> Option<(f64, f64)> {
    let (before, after) = (earlier.network?, later.network?);
    let seconds = (later.read? - earlier.read?).as_seconds_f64();
    if seconds <= 0.0 {
        return None;
    }
    let rx = after.rx_bytes.checked_sub(before.rx_bytes)?;
    let tx = after.tx_bytes.checked_sub(before.tx_bytes)?;
    Some((rx as f64 / seconds, tx as f64 / seconds))
}

/// Follows the container's stats stream, keeping the newest sample, and
/// opens it again when it breaks off. Runs until aborted, which the exit
/// watcher does when the container ends.
pub(super) async fn follow(docker: Docker, container: String, shared: Arc<Shared>) {
    loop {
        let options = StatsOptions {
            stream: true,
            one_shot: false,
        };
        let mut stream = docker.stats(&container, Some(options));
        while let Some(item) = stream.next().await {
            match item {
                Ok(response) => {
                    let sample = StatsSample::from_response(&response, Instant::now());
                    lock(&shared.samples).insert(container.clone(), sample);
                }
                Err(error) => {
                    tracing::debug!(%container, %error, "the stats stream ended");
                    break;
                }
            }
        }
        shared.wait_reachable().await;
    }
}

/// Parses the sample's read time; the engine sends year 1 for a container
/// that does not run.
fn read_time(text: &str) -> Option<OffsetDateTime> {
    let time = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    (time.year() > 1).then_some(time)
}

fn cpu_counters(response: &ContainerStatsResponse) -> Option<CpuCounters> {
    let cpu = response.cpu_stats.as_ref()?;
    let usage = cpu.cpu_usage.as_ref()?;
    let system = cpu.system_cpu_usage.filter(|system| *system > 0)?;
    // Engines before API 1.27 left out `online_cpus`; the per-CPU list has
    // one entry per CPU there, as `docker stats` falls back to.
    let online_cpus = cpu.online_cpus.filter(|cpus| *cpus > 0).or_else(|| {
        let listed = usage.percpu_usage.as_ref()?.len();
        u32::try_from(listed).ok().filter(|cpus| *cpus > 0)
    })?;
    Some(CpuCounters {
        total: usage.total_usage?,
        system,
        online_cpus,
    })
}

/// Memory in use minus the inactive page cache, which the kernel drops
/// before it counts a container as out of memory, as `docker stats` shows
/// it. cgroup v1 reports `total_inactive_file` (older engines only
/// `cache`), cgroup v2 `inactive_file`.
fn memory_without_cache(memory: &ContainerMemoryStats) -> Option<u64> {
    let usage = memory.usage.filter(|usage| *usage > 0)?;
    let stats = memory.stats.as_ref();
    let stat = |name: &str| stats.and_then(|stats| stats.get(name)).copied();
    let cgroup_v1 = stat("total_inactive_file").is_some() || stat("cache").is_some();
    let cache = if cgroup_v1 {
        stat("total_inactive_file").or_else(|| stat("cache"))
    } else {
        stat("inactive_file")
    };
    // A cache count above the usage comes from a counting race, so the
    // usage is taken as it is.
    Some(match cache {
        Some(cache) if cache < usage => usage - cache,
        _ => usage,
    })
}

fn network_counters(response: &ContainerStatsResponse) -> Option<NetworkCounters> {
    let networks = response.networks.as_ref().filter(|n| !n.is_empty())?;
    let mut counters = NetworkCounters {
        rx_bytes: 0,
        tx_bytes: 0,
    };
    for interface in networks.values() {
        counters.rx_bytes += interface.rx_bytes?;
        counters.tx_bytes += interface.tx_bytes?;
    }
    Some(counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two consecutive samples of one stream, recorded from Docker 20.10 on
    /// cgroup v1 (`docker import`ed dd writing 64 MiB to /tmp, then busy).
    const V1_STREAM: &str = include_str!("testdata/stats-v1-stream.jsonl");
    /// A sample of a stopped container, recorded from the same engine.
    const V1_STOPPED: &str = include_str!("testdata/stats-v1-stopped.json");
    /// Two consecutive samples written in the shape that engines on cgroup
    /// v2 send (no `percpu_usage`, `inactive_file` rather than
    /// `total_inactive_file`). This host runs cgroup v1, so they were not
    /// recorded here.
    const V2_STREAM: &str = include_str!("testdata/stats-v2-stream.jsonl");

    fn samples(stream: &str) -> Vec<StatsSample> {
        let start = Instant::now();
        stream
            .lines()
            .enumerate()
            .map(|(index, line)| {
                let response: ContainerStatsResponse =
                    serde_json::from_str(line).expect("recorded sample parses");
                let received = start + Duration::from_secs(index as u64);
                StatsSample::from_response(&response, received)
            })
            .collect()
    }

    #[test]
    fn v1_cpu_from_usage_deltas() {
        let samples = samples(V1_STREAM);
        let cores = cpu_cores(&samples[0], &samples[1]).expect("a rate");

        // (1749966570 - 861700407) / (23030520000000 - 23028510000000) * 2
        let expected = 888_266_163.0 / 2_010_000_000.0 * 2.0;
        assert!((cores - expected).abs() < 1e-9, "{cores}");
    }

    #[test]
    fn v1_memory_leaves_out_inactive_file() {
        let samples = samples(V1_STREAM);

        // usage 69959680 minus total_inactive_file 67108864
        assert_eq!(samples[0].memory_bytes, Some(2_850_816));
    }

    #[test]
    fn v1_network_rates_over_read_times() {
        let samples = samples(V1_STREAM);
        let (rx, tx) = network_rates(&samples[0], &samples[1]).expect("rates");

        // 250 bytes received in 1.003031359 s, none sent
        assert!((rx - 250.0 / 1.003_031_359).abs() < 1e-6, "{rx}");
        assert_eq!(tx, 0.0);
    }

    #[test]
    fn first_sample_alone_gives_no_rate() {
        let samples = samples(V1_STREAM);

        assert_eq!(cpu_cores(&samples[0], &samples[0]), None);
    }

    #[test]
    fn stopped_container_gives_gaps() {
        let stopped = samples(V1_STOPPED).remove(0);
        let running = samples(V1_STREAM).remove(0);

        assert_eq!(stopped.cpu, None);
        assert_eq!(stopped.memory_bytes, None);
        assert_eq!(stopped.network, None);
        assert_eq!(stopped.read, None);
        assert_eq!(cpu_cores(&running, &stopped), None);
        assert_eq!(cpu_cores(&stopped, &running), None);
        assert_eq!(network_rates(&running, &stopped), None);
    }

    #[test]
    fn v2_memory_and_cpu() {
        let samples = samples(V2_STREAM);
        let cores = cpu_cores(&samples[0], &samples[1]).expect("a rate");

        // usage 52428800 minus inactive_file 20971520
        assert_eq!(samples[0].memory_bytes, Some(31_457_280));
        // 500 ms of usage over 4 s of host time on 4 CPUs
        assert!((cores - 0.5).abs() < 1e-9, "{cores}");
    }

    #[test]
    fn missing_fields_give_gaps() {
        let response: ContainerStatsResponse = serde_json::from_str(
            r#"{"read":"2026-12-05T04:30:26.082517064Z","cpu_stats":{"cpu_usage":{"total_usage":5}},"memory_stats":{"stats":{}}}"#,
        )
        .expect("partial sample parses");
        let sample = StatsSample::from_response(&response, Instant::now());

        assert_eq!(sample.cpu, None, "no system usage");
        assert_eq!(sample.memory_bytes, None, "no usage");
        assert_eq!(sample.network, None, "no networks");
    }

    #[test]
    fn counter_going_down_gives_no_rate() {
        let mut samples = samples(V1_STREAM);
        samples.swap(0, 1);

        assert_eq!(cpu_cores(&samples[0], &samples[1]), None);
        assert_eq!(network_rates(&samples[0], &samples[1]), None);
    }

    #[test]
    fn old_samples_are_stale() {
        let sample = samples(V1_STREAM).remove(0);

        assert!(!sample.is_stale(sample.received + Duration::from_secs(1)));
        assert!(sample.is_stale(sample.received + STALE_AFTER + Duration::from_secs(1)));
    }
}
