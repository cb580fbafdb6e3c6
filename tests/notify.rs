//! Notification channels end to end: a webhook receiver that the test runs
//! on 127.0.0.1 gets the alert notifications of a real agent, and failures
//! are retried and then recorded as events.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn alert_notifications_reach_a_webhook_once_each() {
    let home = TestHome::new();
    let (port, received) = webhook_receiver(200);
    let url = format!("http://127.0.0.1:{port}/hook");
    home.ok(&["notify", "add", "ops", "--webhook", &url]);
    home.ok(&["notify", "test", "ops"]);
    let test = received
        .recv_timeout(DEADLINE)
        .expect("the test notification");
    assert_eq!(test["type"], "test");

    let manifest = format!(
        "name: hot\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"]\nports: [{{ containerPort: 8080 }}]\nmonitoring:\n  interval: 1s\n  alerts:\n    - {{ name: busy, metric: cpu_percentage, condition: gt, threshold: 20, for: 2s, severity: critical, notifications: [ops] }}\n"
    );
    let path = home.write("hot.yaml", &manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let replica = replica_ports(&home.get("hot", &[]))[0];
    http_post(replica, "/burn-cpu?seconds=6");

    let firing = received
        .recv_timeout(DEADLINE)
        .expect("a firing notification");
    assert_eq!(firing["type"], "alert-firing", "{firing:#}");
    assert_eq!(firing["severity"], "critical");
    assert_eq!(firing["deployment"], "hot");
    assert!(
        firing["title"]
            .as_str()
            .unwrap_or_default()
            .contains("busy firing"),
        "{firing:#}"
    );
    let resolved = received
        .recv_timeout(DEADLINE)
        .expect("a resolved notification");
    assert_eq!(resolved["type"], "alert-resolved", "{resolved:#}");

    // Nothing else arrives: one firing, one resolved, no repeats.
    assert!(received.recv_timeout(Duration::from_secs(3)).is_err());

    let listed = home.json(&["notify", "ls"]);
    assert_eq!(listed[0]["name"], "ops");
    assert_eq!(listed[0]["kind"], "webhook");
}

#[test]
fn failing_webhook_is_retried_then_recorded() {
    let home = TestHome::new();
    let (port, received) = webhook_receiver(500);
    let url = format!("http://127.0.0.1:{port}/hook");
    home.ok(&["notify", "add", "broken", "--webhook", &url]);

    let error = home.fails(&["notify", "test", "broken"]);
    assert!(error.contains("500"), "{error}");
    assert!(
        received.recv_timeout(DEADLINE).is_ok(),
        "the test reached the receiver"
    );

    let manifest = format!(
        "name: hot\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"]\nports: [{{ containerPort: 8080 }}]\nmonitoring:\n  interval: 1s\n  alerts:\n    - {{ name: up, metric: replicas_ready, condition: gte, threshold: 1, notifications: [broken, missing] }}\n"
    );
    let path = home.write("hot.yaml", &manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    let failures = wait_for(
        "failed deliveries in the events",
        Duration::from_secs(40),
        || {
            let events = home.json(&["events", "hot"]);
            let failed: Vec<String> = events
                .as_array()?
                .iter()
                .filter(|event| event["action"] == "notify-failed")
                .filter_map(|event| event["message"].as_str().map(str::to_owned))
                .collect();
            (failed.len() >= 2).then_some(failed)
        },
    );
    assert!(
        failures
            .iter()
            .any(|m| m.contains("channel missing") && m.contains("no channel named")),
        "{failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|m| m.contains("channel broken") && m.contains("500")),
        "{failures:?}"
    );
    let attempts =
        std::iter::from_fn(|| received.recv_timeout(Duration::from_millis(100)).ok()).count();
    assert_eq!(attempts, 4, "four attempts before giving up");
}

#[test]
fn bad_channels_get_clear_errors() {
    let home = TestHome::new();
    let error = home.fails(&[
        "notify",
        "add",
        "ops",
        "--webhook",
        "https://hooks.example.test/x",
    ]);
    assert!(error.contains("https:// is not supported"), "{error}");
    let error = home.fails(&["notify", "add", "Ops Team", "--in-app"]);
    assert!(error.contains("invalid channel name"), "{error}");
    let error = home.fails(&["notify", "rm", "nobody"]);
    assert!(error.contains("no channel named \"nobody\""), "{error}");
    home.ok(&["notify", "add", "inbox", "--in-app"]);
    home.ok(&["notify", "test", "inbox"]);
    let history = home.json(&["notify", "history"]);
    assert_eq!(history[0]["type"], "test");
}

#[test]
fn command_channel_gets_json_on_stdin() {
    let home = TestHome::new();
    let out = home.work().join("notification.json");
    let script = format!("cat > {}", out.display());
    home.ok(&["notify", "add", "script", "--command", "sh", "-c", &script]);
    home.ok(&["notify", "test", "script"]);
    let written: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("the command wrote its input"))
            .expect("JSON on standard input");
    assert_eq!(written["type"], "test");

    home.ok(&["notify", "add", "failing", "--command", "false"]);
    let error = home.fails(&["notify", "test", "failing"]);
    assert!(error.contains("exited with"), "{error}");
}

#[test]
fn repeats_stop_when_acknowledged_and_silences_are_listed() {
    let home = TestHome::new();
    let (port, received) = webhook_receiver(200);
    let url = format!("http://127.0.0.1:{port}/hook");
    home.ok(&["notify", "add", "ops", "--webhook", &url]);

    let manifest = "name: up\nrun:\n  command: [sleep, \"1000\"]\nmonitoring:\n  interval: 1s\n  alerts:\n    - { name: running, metric: replicas_ready, condition: gte, threshold: 1, repeatInterval: 2s, notifications: [ops] }\n";
    let path = home.write("up.yaml", manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    let first = received
        .recv_timeout(DEADLINE)
        .expect("a firing notification");
    assert_eq!(first["type"], "alert-firing", "{first:#}");
    let repeat = received.recv_timeout(DEADLINE).expect("a reminder");
    assert_eq!(repeat["type"], "alert-repeat", "{repeat:#}");

    let listed = home.json(&["alerts", "ls", "up"]);
    assert_eq!(listed[0]["rule"], "running", "{listed:#}");
    assert_eq!(listed[0]["state"], "firing", "{listed:#}");

    home.ok(&["alerts", "ack", "up", "running"]);
    // A reminder already on its way may still arrive; after that, none.
    while received.recv_timeout(Duration::from_millis(1500)).is_ok() {}
    assert!(
        received.recv_timeout(Duration::from_secs(4)).is_err(),
        "no reminders after the acknowledgement"
    );
    let listed = home.json(&["alerts", "ls"]);
    assert_eq!(
        listed[0]["acknowledged"]["author"],
        current_user(),
        "{listed:#}"
    );

    home.ok(&[
        "alerts",
        "silence",
        "up",
        "--for",
        "1h",
        "--comment",
        "maintenance",
    ]);
    let listed = home.json(&["alerts", "ls", "up"]);
    assert_eq!(listed[0]["silenced"], true, "{listed:#}");

    let error = home.fails(&["alerts", "ack", "up", "nosuchrule"]);
    assert!(
        error.contains("no alert from a rule named \"nosuchrule\""),
        "{error}"
    );
    let error = home.fails(&["alerts", "silence", "up", "--for", "1h", "--comment", " "]);
    assert!(error.contains("comment"), "{error}");
    let events = home.json(&["events", "up"]);
    let actions: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["action"].as_str())
        .collect();
    assert!(actions.contains(&"alert-acknowledged"), "{actions:?}");
    assert!(actions.contains(&"alert-silenced"), "{actions:?}");
}
