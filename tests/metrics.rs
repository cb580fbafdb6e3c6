//! Metrics collection end to end: the real agent sweeps /proc for the
//! replicas of the sample workload and stores the series in sled.
//!
//! Not covered here: network, request and scraped metrics, alert rules and
//! notifications, which are not collected yet.

mod common;

use common::*;
use serde_json::Value;

fn manifest(name: &str, extra_args: &str) -> String {
    format!(
        "name: {name}\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"{extra_args}]\nreplicas: 2\nports: [{{ containerPort: 8080 }}]\nresources:\n  limits: {{ cpu: 500m, memory: 256Mi }}\nmonitoring:\n  interval: 1s\n"
    )
}

/// The newest value of `metric` for `name`, if any was collected yet.
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
