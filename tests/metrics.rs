//! Metrics collection end to end: the real agent sweeps /proc for the
//! replicas of the sample workload, reads the counters of its HTTP-aware
//! stable endpoint, and stores the series in sled.
//!
//! Scraped series are in tests/scrape.rs, notifications in tests/notify.rs
//! and API alert rules in tests/alert_rules.rs.

mod common;

use common::*;
use serde_json::Value;

fn manifest(name: &str, extra_args: &str) -> String {
    format!(
        "name: {name}\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"{extra_args}]\nreplicas: 2\nports: [{{ containerPort: 8080 }}]\nresources:\n  limits: {{ cpu: 500m, memory: 256Mi }}\nmonitoring:\n  interval: 1s\n"
    )
}

/// Returns the newest value of `metric` for `name`, if any was collected yet.
fn last_value(home: &TestHome, name: &str, metric: &str) -> Option<f64> {
    let series = home.json(&[
        "metrics", name, "--since", "1m", "--step", "1s", "--metric", metric,
    ]);
    let points = series[0]["points"].as_array()?.clone();
    points
        .iter()
        .rev()
        .find_map(|point| point["value"].as_f64())
}

#[test]
fn cpu_memory_and_replicas_are_collected() {
    let home = TestHome::new();
    let busy = home.write("busy.yaml", &manifest("busy", ", \"--burn-cpu\""));
    let idle = home.write("idle.yaml", &manifest("idle", ""));
    home.ok(&["deploy", "-f", busy.to_str().unwrap(), "--wait"]);
    home.ok(&["deploy", "-f", idle.to_str().unwrap(), "--wait"]);

    // Two replicas each try to keep one core busy. With a limit of half a
    // core each (enforced where the agent can make cgroups) they use at
    // least half a core together, which is over 50% of the limit.
    let busy_cpu = wait_for("CPU of the busy deployment", DEADLINE, || {
        last_value(&home, "busy", "cpu_usage").filter(|cores| *cores > 0.5)
    });
    assert!(
        busy_cpu < 2.5,
        "two replicas cannot use more than two cores: {busy_cpu}"
    );
    let percentage = last_value(&home, "busy", "cpu_percentage").expect("a percentage");
    assert!(percentage > 50.0, "percentage of the limit: {percentage}");

    let idle_cpu = wait_for("CPU of the idle deployment", DEADLINE, || {
        last_value(&home, "idle", "cpu_usage")
    });
    assert!(
        idle_cpu < 0.3,
        "an idle sample workload uses little CPU: {idle_cpu}"
    );

    let memory = last_value(&home, "idle", "memory_usage").expect("memory");
    assert!(memory > 100_000.0, "resident bytes: {memory}");
    assert!(memory < 512.0 * 1024.0 * 1024.0, "resident bytes: {memory}");
    let memory_percentage = last_value(&home, "idle", "memory_percentage").expect("memory %");
    assert!(memory_percentage > 0.0, "{memory_percentage}");
    assert!(memory_percentage < 100.0, "{memory_percentage}");

    assert_eq!(last_value(&home, "idle", "replicas_desired"), Some(2.0));
    let ready = wait_for("ready replicas", DEADLINE, || {
        last_value(&home, "idle", "replicas_ready").filter(|ready| *ready == 2.0)
    });
    assert_eq!(ready, 2.0);

    // The table shows every series with a sparkline.
    let table = home.ok(&["metrics", "idle", "--since", "5m"]);
    assert!(table.contains("cpu_usage"), "{table}");
    assert!(table.contains("cores"), "{table}");
    assert!(table.contains("MiB"), "{table}");
}

/// Counts the collected points of `metric` for `name` in the last minute.
fn points(home: &TestHome, name: &str, metric: &str) -> usize {
    let series = home.json(&[
        "metrics", name, "--since", "1m", "--step", "1s", "--metric", metric,
    ]);
    series[0]["points"].as_array().map_or(0, |points| {
        points
            .iter()
            .filter(|point| point["value"].is_number())
            .count()
    })
}

#[test]
fn cpu_rates_survive_other_intervals() {
    let home = TestHome::new();
    let every_second = home.write("fast.yaml", &manifest("fast", ""));
    let slower = manifest("slow", "").replace("interval: 1s", "interval: 2s");
    let slower = home.write("slow.yaml", &slower);
    home.ok(&["deploy", "-f", every_second.to_str().unwrap(), "--wait"]);
    home.ok(&["deploy", "-f", slower.to_str().unwrap(), "--wait"]);

    // The slow deployment is due in every other sweep; in the sweeps
    // between, only the fast one is read, and its CPU baseline must stay.
    wait_for("three CPU points of the slow deployment", DEADLINE, || {
        (points(&home, "slow", "cpu_usage") >= 3).then_some(())
    });
    assert!(points(&home, "fast", "cpu_usage") >= 3);
}

#[test]
fn bad_metric_queries_get_clear_errors() {
    let home = TestHome::new();
    let idle = home.write("idle.yaml", &manifest("idle", ""));
    home.ok(&["deploy", "-f", idle.to_str().unwrap(), "--wait"]);

    let error = home.fails(&["metrics", "idle", "--metric", "cpu_usgae"]);
    assert!(error.contains("unknown metric \"cpu_usgae\""), "{error}");
    assert!(error.contains("cpu_usage"), "{error}");
    let error = home.fails(&["metrics", "idle", "--since", "soon"]);
    assert!(error.contains("since"), "{error}");
    let error = home.fails(&["metrics", "idle", "--since", "0s"]);
    assert!(error.contains("since=0s"), "{error}");
    let series: Value = home.json(&["metrics", "idle", "--since", "1m", "--step", "1ms"]);
    let points = series[0]["points"].as_array().expect("points");
    assert!(
        points.len() <= 61,
        "a step below a second is raised to one: {}",
        points.len()
    );
}

#[test]
fn cpu_alert_fires_once_and_resolves() {
    let home = TestHome::new();
    let manifest = format!(
        "name: hot\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"]\nports: [{{ containerPort: 8080 }}]\nmonitoring:\n  interval: 1s\n  alerts:\n    - {{ name: busy, metric: cpu_percentage, condition: gt, threshold: 20, for: 2s, severity: high }}\n"
    );
    let path = home.write("hot.yaml", &manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let port = replica_ports(&home.get("hot", &[]))[0];

    // Burn for 8 s: pending for 2 s, then firing, then resolved once the
    // burn ends.
    http_post(port, "/burn-cpu?seconds=8");
    let alert_events = |action: &str| -> Vec<Value> {
        let events = home.json(&["events", "hot"]);
        events
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter(|e| e["action"] == action)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let firing = wait_for("the alert to fire", DEADLINE, || {
        let found = alert_events("alert-firing");
        (!found.is_empty()).then_some(found)
    });
    let message = firing[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("busy (high)"), "{message}");
    assert!(message.contains("cpu_percentage gt 20"), "{message}");

    let resolved = wait_for("the alert to resolve", DEADLINE, || {
        let found = alert_events("alert-resolved");
        (!found.is_empty()).then_some(found)
    });
    assert_eq!(resolved.len(), 1, "resolved once: {resolved:#?}");
    assert_eq!(
        alert_events("alert-firing").len(),
        1,
        "fired once, no repeat interval"
    );
}

#[test]
fn alert_on_unknown_metric_is_rejected() {
    let home = TestHome::new();
    let path = home.write(
        "bad.yaml",
        "name: bad\nrun:\n  command: [sleep, \"100\"]\nmonitoring:\n  alerts:\n    - { name: x, metric: cpu_percentag, condition: gt, threshold: 5 }\n",
    );
    let error = home.fails(&["deploy", "-f", path.to_str().unwrap()]);
    assert!(error.contains("monitoring.alerts[0].metric"), "{error}");
    assert!(error.contains("did you mean `cpu_percentage`"), "{error}");
}

/// Sends `paths` as keep-alive HTTP/1.1 requests on one connection, one at a
/// time, and returns the status of each.
fn keep_alive_statuses(port: u16, paths: &[&str]) -> Vec<u16> {
    use std::io::{BufRead, BufReader, Read, Write};

    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut statuses = Vec::new();
    for path in paths {
        write!(writer, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
        let mut line = String::new();
        reader.read_line(&mut line).expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status code");
        let mut length = 0usize;
        loop {
            line.clear();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().expect("a length");
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).expect("body");
        statuses.push(status);
    }
    statuses
}

/// Sums the per-step totals of `metric` over the last minute.
fn total(home: &TestHome, name: &str, metric: &str) -> f64 {
    let series = home.json(&[
        "metrics", name, "--since", "2m", "--step", "1s", "--metric", metric,
    ]);
    series[0]["points"]
        .as_array()
        .map(|points| points.iter().filter_map(|p| p["sum"].as_f64()).sum())
        .unwrap_or(0.0)
}

#[test]
fn request_counts_through_the_http_endpoint_are_exact() {
    let home = TestHome::new();
    let host_port = free_ports(1);
    let manifest = format!(
        "name: web\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"]\nreplicas: 2\nports: [{{ containerPort: 8080, hostPort: {host_port}, appProtocol: http }}]\nmonitoring:\n  interval: 1s\n"
    );
    let path = home.write("web.yaml", &manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    // A bounded loop: 20 successes and 5 server errors on separate
    // connections, then 6 more (2 of them 503) on one keep-alive connection.
    for _ in 0..20 {
        let (status, _) = http_get(host_port, "/").expect("a response");
        assert_eq!(status, 200);
    }
    for _ in 0..5 {
        let (status, _) = http_get(host_port, "/status/500").expect("a response");
        assert_eq!(status, 500);
    }
    let statuses = keep_alive_statuses(
        host_port,
        &["/", "/status/503", "/", "/status/404", "/status/503", "/"],
    );
    assert_eq!(statuses, vec![200, 503, 200, 404, 503, 200]);

    let counted = wait_for("every request counted", DEADLINE, || {
        let counted = total(&home, "web", "requests_total");
        (counted >= 31.0).then_some(counted)
    });
    assert_eq!(counted, 31.0);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        total(&home, "web", "requests_total"),
        31.0,
        "no request counted twice"
    );
    assert_eq!(total(&home, "web", "requests_failed"), 7.0);
    assert_eq!(total(&home, "web", "network_connections_in"), 26.0);

    let response_time = last_value(&home, "web", "response_time");
    assert!(
        response_time.is_none_or(|ms| ms > 0.0 && ms < 5_000.0),
        "milliseconds: {response_time:?}"
    );
    let series = home.json(&[
        "metrics",
        "web",
        "--since",
        "2m",
        "--metric",
        "response_time_p95",
    ]);
    let p95 = series[0]["points"]
        .as_array()
        .and_then(|points| points.iter().find_map(|p| p["value"].as_f64()))
        .expect("a p95 while requests ran");
    assert!(p95 > 0.0 && p95 < 5_000.0, "milliseconds: {p95}");
    let bytes = wait_for("bytes out", DEADLINE, || {
        let series = home.json(&[
            "metrics",
            "web",
            "--since",
            "2m",
            "--metric",
            "network_bytes_out",
        ]);
        series[0]["points"]
            .as_array()
            .and_then(|points| points.iter().find_map(|p| p["value"].as_f64()))
            .filter(|rate| *rate > 0.0)
    });
    assert!(bytes > 0.0);
    home.finish();
}
