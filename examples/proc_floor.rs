//! The floor for the metrics collection benchmark (benches/metrics_collect.py):
//! the smallest loop that reads what the agent's collector needs.
//!
//! Once a second it reads `/proc/PID/stat` and `/proc/PID/statm` for every
//! pid given on the command line, or with `--scan-all` it reads the `stat`
//! of every process under /proc, as the agent does to sum usage by process
//! group. Files are opened anew on every read, as the agent does. It runs
//! until killed.
//!
//! Usage: `proc_floor [--scan-all] PID...`

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let mut scan_all = false;
    let mut pids = Vec::new();
    for argument in std::env::args().skip(1) {
        if argument == "--scan-all" {
            scan_all = true;
            continue;
        }
        match argument.parse::<u32>() {
            Ok(pid) => pids.push(pid),
            Err(_) => {
                eprintln!("proc_floor: {argument:?} is not a pid; pass numbers or --scan-all");
                std::process::exit(2);
            }
        }
    }

    let period = Duration::from_secs(1);
    let mut next = Instant::now();
    loop {
        let total = if scan_all { sweep_all() } else { sweep(&pids) };
        // Keep the result alive so that the reads cannot be optimized away.
        std::hint::black_box(total);

        next += period;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Sums the bytes read from the `stat` and `statm` files of `pids`.
fn sweep(pids: &[u32]) -> usize {
    let mut total = 0;
    for pid in pids {
        for file in ["stat", "statm"] {
            // A replica may exit between two sweeps, so skip it as the agent does.
            if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/{file}")) {
                total += text.len();
            }
        }
    }
    total
}

/// Sums the bytes read from the `stat` file of every process under /proc.
fn sweep_all() -> usize {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|byte| byte.is_ascii_digit()) {
            continue;
        }
        if let Ok(text) = fs::read_to_string(format!("/proc/{name}/stat")) {
            total += text.len();
        }
    }
    total
}
