//! Autoscaling on the process backend against a real agent. The sample
//! workload's CPU switch scales a deployment up to its maximum. Once the
//! load stops and a shortened down window passes, it scales back to its
//! minimum, with every step's reason recorded. Also the CLI's settings, the refusal
//! of a manual scale and `--force`, and that a setting keeps the replicas.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Builds a manifest of the sample workload with a small CPU request (so
/// that one busy core is ten times the request) and fast collection and
/// evaluation.
fn autoscaled_manifest(name: &str, port: u16) -> String {
    format!(
        r#"name: {name}
run:
  command: ["{SAMPLE}", "serve", "--log-rate", "0"]
ports:
  - {{ name: http, containerPort: 8080, hostPort: {port}, appProtocol: http }}
healthCheck: {{ type: http, path: /healthz, port: http, periodSeconds: 1 }}
resources:
  requests: {{ cpu: 100m, memory: 64Mi }}
monitoring: {{ interval: 1s }}
autoScaling:
  minReplicas: 1
  maxReplicas: 3
  targetCPUUtilization: 50
  interval: 2s
  scaleDownPolicy: {{ stabilizationWindowSeconds: 8 }}
terminationGracePeriodSeconds: 2
"#
    )
}

fn autoscale_events(home: &TestHome, name: &str) -> Vec<Value> {
    home.json(&["events", name])
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["action"] == "autoscale")
        .cloned()
        .collect()
}

fn desired(home: &TestHome, name: &str) -> u64 {
    home.get(name, &[])["replicas"]["desired"]
        .as_u64()
        .expect("a desired replica count")
}

#[test]
fn cpu_load_scales_up_and_down() {
    let home = TestHome::new();
    let port = free_ports(1);
    let manifest = home.write("web.yaml", &autoscaled_manifest("web", port));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    wait_http_ok(port, "/healthz");

    // One replica burns a core: about 1000% of its 100m request.
    let (status, _) = post(port, "/burn-cpu?seconds=12");
    assert_eq!(status, 202, "the sample workload starts burning");
    wait_for("three replicas", Duration::from_secs(40), || {
        (desired(&home, "web") == 3).then_some(())
    });
    let up = autoscale_events(&home, "web");
    let first = up.first().expect("an autoscale event");
    let message = first["message"].as_str().expect("message");
    assert!(message.starts_with("scaling from 1 to 3"), "{message}");
    assert!(message.contains("the maximum"), "{message}");
    assert!(message.contains("CPU at"), "{message}");
    assert_eq!(first["user"], "autoscaler");

    // Once the burn ends, the 8 s down window passes and it scales in.
    wait_for("back to one replica", Duration::from_secs(60), || {
        (desired(&home, "web") == 1).then_some(())
    });
    let events = autoscale_events(&home, "web");
    let down = events
        .iter()
        .filter_map(|event| event["message"].as_str())
        .find(|message| message.starts_with("scaling from 3 to 1"))
        .expect("a scale-down event with its reason");
    assert!(down.contains("below the target of 50%"), "{down}");

    let status = home.json(&["autoscale", "status", "web", "--decisions", "200"]);
    assert_eq!(status["source"], "shipdeck");
    let decisions = status["decisions"].as_array().expect("decisions");
    let scaled: Vec<&Value> = decisions
        .iter()
        .filter(|decision| decision["desired"] != decision["currentReplicas"])
        .collect();
    assert!(scaled.len() >= 2, "an up and a down decision: {scaled:?}");
    for decision in &scaled {
        let metrics = decision["metrics"].as_array().expect("metric readings");
        assert!(
            metrics.iter().any(|reading| reading["current"].is_number()),
            "a scaling decision records the values it read: {decision}"
        );
        assert!(decision["recommendation"].is_number(), "{decision}");
        assert!(decision["reason"].is_string(), "{decision}");
    }
    assert!(
        decisions
            .iter()
            .any(|decision| decision["limit"] == "TooManyReplicas"),
        "the maximum limited the scale-up"
    );
    home.finish();
}

#[test]
fn settings_keep_replicas_and_manual_scale_needs_force() {
    let home = TestHome::new();
    let manifest = home.write("web.yaml", &sample_manifest("web", 2, free_ports(1), "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let pids = replica_pids(&home.get("web", &[]));

    let output = home.ok(&["autoscale", "web", "--min", "2", "--max", "4", "--wait"]);
    assert!(output.contains("revision 2"), "{output}");
    let error = home.fails(&["scale", "web", "--replicas", "3"]);
    assert!(error.contains("autoscaling is on"), "{error}");
    assert!(error.contains("shipdeck autoscale off web"), "{error}");
    assert!(error.contains("--force"), "{error}");

    // The setting is a revision, but the replicas keep running under it.
    let deployment = home.get("web", &[]);
    assert_eq!(deployment["revision"], 2);
    assert_eq!(replica_pids(&deployment), pids, "no replica was replaced");
    let history = home.json(&["history", "web"]);
    let newest = &history.as_array().expect("history")[0];
    assert_eq!(newest["reason"], "autoscale 2..4");

    // Without a CPU request, the CPU target (80% by default) cannot be read.
    let status = wait_for("a decision with a problem", DEADLINE, || {
        let status = home.json(&["autoscale", "status", "web"]);
        status["metrics"][0]["problem"].as_str().map(str::to_owned)
    });
    assert!(
        status.contains("cannot compute CPU utilization: no cpu request"),
        "{status}"
    );
    assert_eq!(
        desired(&home, "web"),
        2,
        "a target it cannot read never scales"
    );

    let output = home.ok(&["scale", "web", "--replicas", "3", "--force", "--wait"]);
    assert!(output.contains("scaled to 3"), "{output}");
    let error = home.fails(&["autoscale", "status", "web"]);
    assert!(error.contains("autoscaling is off"), "{error}");
    let history = home.json(&["history", "web"]);
    assert_eq!(
        history.as_array().expect("history")[0]["reason"],
        "autoscale off"
    );

    let error = home.fails(&["autoscale", "off", "web"]);
    assert!(error.contains("autoscaling is off"), "{error}");

    // A target that could never be read is rejected up front.
    let error = home.fails(&[
        "autoscale",
        "web",
        "--min",
        "1",
        "--max",
        "2",
        "--metric",
        "cpu_percent=5",
    ]);
    assert!(error.contains("did you mean `cpu_percentage`"), "{error}");
    let error = home.fails(&[
        "autoscale",
        "web",
        "--min",
        "1",
        "--max",
        "2",
        "--metric",
        "requests_per_second=5",
    ]);
    assert!(error.contains("appProtocol: http"), "{error}");

    // The autoscaler carries out a minimum above the count, with an event
    // that gives the reason.
    home.ok(&["autoscale", "web", "--min", "4", "--max", "5", "--wait"]);
    wait_for("four replicas", Duration::from_secs(30), || {
        (desired(&home, "web") == 4).then_some(())
    });
    let events = autoscale_events(&home, "web");
    let message = events
        .iter()
        .filter_map(|event| event["message"].as_str())
        .find(|message| message.starts_with("scaling from 3 to 4"))
        .unwrap_or_else(|| panic!("an autoscale event for the new minimum: {events:?}"));
    assert!(message.contains("below minReplicas"), "{message}");

    let error = home.fails(&["autoscale", "web", "--min", "5", "--max", "2"]);
    assert!(
        error.contains("maxReplicas 2 is less than minReplicas 5"),
        "{error}"
    );
    let error = home.fails(&[
        "autoscale",
        "web",
        "--min",
        "1",
        "--max",
        "2",
        "--metric",
        "rps",
    ]);
    assert!(error.contains("invalid --metric \"rps\""), "{error}");
    home.finish();
}

/// Sends an empty POST and returns the status and body.
fn post(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the endpoint");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    parse_response(&raw).expect("an HTTP response")
}
