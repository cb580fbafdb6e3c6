//! Request and log counters, rendered in the Prometheus text exposition format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::logs::Level;

/// Upper bounds of the request duration histogram buckets, in seconds.
const DURATION_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Counters shared by every connection thread and the logger.
pub struct Metrics {
    requests: Mutex<RequestCounters>,
    log_lines: [AtomicU64; Level::ALL.len()],
    start_time_seconds: f64,
}

#[derive(Default)]
struct RequestCounters {
    /// Requests served, by route label and status code.
    totals: BTreeMap<(&'static str, u16), u64>,
    /// Observations per histogram bucket, not yet cumulative. The last entry is +Inf.
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    duration_sum_seconds: f64,
    count: u64,
}

/// Values that are read when a scrape happens rather than counted.
pub struct Gauges {
    pub healthy: bool,
    pub open_connections: usize,
}

impl Metrics {
    pub fn new() -> Self {
        let start_time_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());

        Self {
            requests: Mutex::new(RequestCounters::default()),
            log_lines: Default::default(),
            start_time_seconds,
        }
    }

    /// Counts one served request. `route` must be a fixed label, never raw client input,
    /// so that the number of series stays bounded.
    pub fn record_request(&self, route: &'static str, status: u16, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DURATION_BUCKETS.len());

        let mut counters = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *counters.totals.entry((route, status)).or_default() += 1;
        counters.buckets[bucket] += 1;
        counters.duration_sum_seconds += seconds;
        counters.count += 1;
    }

    pub fn record_log_line(&self, level: Level) {
        self.log_lines[level as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Renders every metric in the text exposition format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(2048);

        self.render_requests(&mut out);
        self.render_log_lines(&mut out);

        write_gauge(
            &mut out,
            "sample_healthy",
            "Whether /healthz currently returns 200 (1) or 503 (0).",
            if gauges.healthy { 1.0 } else { 0.0 },
        );
        write_gauge(
            &mut out,
            "sample_open_connections",
            "Client connections currently open.",
            gauges.open_connections as f64,
        );
        write_gauge(
            &mut out,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds.",
            self.start_time_seconds,
        );
        if let Some(bytes) = resident_memory_bytes() {
            write_gauge(
                &mut out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                bytes as f64,
            );
        }
        out
    }

    fn render_requests(&self, out: &mut String) {
        let counters = self.requests.lock().unwrap_or_else(PoisonError::into_inner);

        out.push_str(
            "# HELP sample_requests_total HTTP requests answered, by route and status code.\n",
        );
        out.push_str("# TYPE sample_requests_total counter\n");
        for ((route, status), count) in &counters.totals {
            let _ = writeln!(
                out,
                "sample_requests_total{{path=\"{route}\",code=\"{status}\"}} {count}"
            );
        }

        out.push_str("# HELP sample_request_duration_seconds Time from reading a request head to writing its response.\n");
        out.push_str("# TYPE sample_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, observations) in DURATION_BUCKETS.iter().zip(&counters.buckets) {
            cumulative += observations;
            let _ = writeln!(
                out,
                "sample_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "sample_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            counters.count
        );
        let _ = writeln!(
            out,
            "sample_request_duration_seconds_sum {}",
            counters.duration_sum_seconds
        );
        let _ = writeln!(
            out,
            "sample_request_duration_seconds_count {}",
            counters.count
        );
    }

    fn render_log_lines(&self, out: &mut String) {
        out.push_str("# HELP sample_log_lines_total Log lines written, by level.\n");
        out.push_str("# TYPE sample_log_lines_total counter\n");
        for level in Level::ALL {
            let count = self.log_lines[level as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "sample_log_lines_total{{level=\"{}\"}} {count}",
                level.name()
            );
        }
    }
}

fn write_gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// Reads the resident set size from the second field of `/proc/self/statm`, which counts pages.
/// Returns `None` where `/proc` is missing, so the metric is left out rather than reported as 0.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;

    let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    let page_size = u64::try_from(page_size).ok()?;
    Some(pages * page_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(metrics: &Metrics) -> String {
        metrics.render(&Gauges {
            healthy: true,
            open_connections: 2,
        })
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::new();
        metrics.record_request("/", 200, Duration::from_micros(100));
        metrics.record_request("/", 200, Duration::from_millis(20));
        metrics.record_request("/", 404, Duration::from_secs(3));

        let text = rendered(&metrics);
        assert!(
            text.contains("sample_request_duration_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sample_request_duration_seconds_bucket{le=\"0.025\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("sample_request_duration_seconds_bucket{le=\"1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("sample_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("sample_request_duration_seconds_count 3\n"),
            "{text}"
        );
        assert!(
            text.contains("sample_requests_total{path=\"/\",code=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("sample_requests_total{path=\"/\",code=\"404\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn log_lines_listed_for_every_level() {
        let metrics = Metrics::new();
        metrics.record_log_line(Level::Warn);

        let text = rendered(&metrics);
        assert!(
            text.contains("sample_log_lines_total{level=\"warn\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sample_log_lines_total{level=\"debug\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn resident_memory_is_read() {
        let bytes = resident_memory_bytes().expect("/proc/self/statm on Linux");
        assert!(bytes > 0);
    }
}
