//! Scraping an application's Prometheus endpoint end to end: the real agent
//! scrapes the sample workload's `/metrics`, stores its series and
//! evaluates alert rules on them.
//!
//! Not covered here: a scrape that hangs (the unit tests of
//! `engine::scrape` cover timeouts and oversized responses).

mod common;

use common::*;
use serde_json::Value;

fn manifest(name: &str, scrape_path: &str, alerts: &str) -> String {
    format!(
        "name: {name}\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"]\nports: [{{ name: http, containerPort: 8080 }}]\nmonitoring:\n  interval: 1s\n  scrape: {{ port: http, path: {scrape_path} }}\n{alerts}"
    )
}

/// Returns the newest stored value of `metric`, if any was collected yet.
/// A series that no scrape stored yet is an unknown metric, so a failing
/// query also reads as "no value yet".
fn last_value(home: &TestHome, name: &str, metric: &str) -> Option<f64> {
    let output = home.run(&[
        "metrics", name, "--since", "1m", "--step", "1s", "--metric", metric, "-o", "json",
    ]);
    if !output.status.success() {
        return None;
    }
    let series: Value = serde_json::from_slice(&output.stdout).ok()?;
    let points = series[0]["points"].as_array()?.clone();
    points
        .iter()
        .rev()
        .find_map(|point| point["value"].as_f64())
}

/// Returns the value of the unlabelled sample `name` in an exposition.
fn exposed(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

fn events_with(home: &TestHome, name: &str, action: &str) -> Vec<Value> {
    home.json(&["events", name])
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|event| event["action"] == action)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn scraped_series_match_what_the_workload_exposes() {
    let home = TestHome::new();
    let path = home.write("app.yaml", &manifest("app", "/metrics", ""));
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let port = replica_ports(&home.get("app", &[]))[0];

    const REQUESTS: usize = 7;
    for _ in 0..REQUESTS {
        let (status, _) = http_get(port, "/").expect("the workload responds");
        assert_eq!(status, 200);
    }

    // Only this loop requests "/", so the scraped counter must reach exactly
    // the number of requests, and stay there.
    let counted = wait_for("the scraped request counter", DEADLINE, || {
        last_value(
            &home,
            "app",
            "sample_requests_total{code=\"200\",path=\"/\"}",
        )
        .filter(|count| *count >= REQUESTS as f64)
    });
    assert_eq!(counted, REQUESTS as f64);

    let (_, exposition) = http_get(port, "/metrics").expect("the workload responds");
    let start = exposed(&exposition, "process_start_time_seconds").expect("a start time");
    let stored = last_value(&home, "app", "process_start_time_seconds").expect("stored");
    assert!(
        (stored - start).abs() < 1e-6,
        "stored {stored}, exposed {start}"
    );
    assert_eq!(last_value(&home, "app", "sample_healthy"), Some(1.0));
    assert_eq!(last_value(&home, "app", "scrape_up"), Some(1.0));

    // Scrapes themselves are requests to /metrics, so its counter grows at
    // about one per second, which the rate shows.
    let rate = wait_for("a request rate", DEADLINE, || {
        last_value(&home, "app", "sample_requests_total:rate").filter(|rate| *rate > 0.0)
    });
    assert!(rate < 50.0, "about one scrape per second: {rate}");
    wait_for("a latency quantile", DEADLINE, || {
        last_value(&home, "app", "sample_request_duration_seconds:p95")
    });

    // Labels may come in any order, as the application prints them.
    let reordered = last_value(
        &home,
        "app",
        "sample_requests_total{path=\"/\",code=\"200\"}",
    );
    assert_eq!(reordered, Some(REQUESTS as f64));
    let listed = home.ok(&["metrics", "app", "--list"]);
    assert!(listed.contains("cpu_usage"), "{listed}");
    assert!(
        listed.contains("sample_requests_total{code=\"200\",path=\"/\"}"),
        "{listed}"
    );

    let error = home.fails(&["metrics", "app", "--metric", "sample_nope"]);
    assert!(error.contains("unknown metric \"sample_nope\""), "{error}");
    assert!(error.contains("sample_healthy"), "{error}");
    assert!(events_with(&home, "app", "scrape-failed").is_empty());
    home.finish();
}

#[test]
fn scrape_of_non_exposition_is_recorded() {
    let home = TestHome::new();
    let path = home.write("web.yaml", &manifest("web", "/", ""));
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    let failed = wait_for("a scrape-failed event", DEADLINE, || {
        let found = events_with(&home, "web", "scrape-failed");
        (!found.is_empty()).then_some(found)
    });
    let message = failed[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Prometheus text format"), "{message}");
    assert!(message.contains("/"), "{message}");

    // The scrape counts as down, and the sweep goes on meanwhile.
    wait_for("scrape_up 0", DEADLINE, || {
        last_value(&home, "web", "scrape_up").filter(|up| *up == 0.0)
    });
    wait_for("CPU despite the failing scrape", DEADLINE, || {
        last_value(&home, "web", "cpu_usage")
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        events_with(&home, "web", "scrape-failed").len(),
        1,
        "the same failure is recorded once, not at every interval"
    );
    home.finish();
}

#[test]
fn scraped_gauge_alert_fires_and_resolves() {
    let home = TestHome::new();
    let alerts = "  alerts:\n    - { name: unhealthy, metric: sample_healthy, condition: lt, threshold: 1, severity: critical }\n";
    let path = home.write("gauge.yaml", &manifest("gauge", "/metrics", alerts));
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let port = replica_ports(&home.get("gauge", &[]))[0];
    wait_for("a first scrape", DEADLINE, || {
        last_value(&home, "gauge", "sample_healthy")
    });
    assert!(events_with(&home, "gauge", "alert-firing").is_empty());

    http_post(port, "/fail-health");
    let firing = wait_for("the alert to fire", DEADLINE, || {
        let found = events_with(&home, "gauge", "alert-firing");
        (!found.is_empty()).then_some(found)
    });
    let message = firing[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("sample_healthy lt 1"), "{message}");

    http_post(port, "/recover-health");
    wait_for("the alert to resolve", DEADLINE, || {
        let found = events_with(&home, "gauge", "alert-resolved");
        (!found.is_empty()).then_some(found)
    });
    home.finish();
}
