//! The whole life of a deployment through the real CLI and agent: deploy,
//! scale up and down, redeploy with changes, roll back, undeploy, with live
//! ports checked at every step and no process left at the end.

mod common;

use std::net::{Ipv4Addr, TcpListener};

use common::*;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn greeting(port: u16) -> String {
    wait_http_ok(port, "/")
}

fn assert_counts(home: &TestHome, name: &str, desired: u64, ready: u64) -> Value {
    let deployment = home.get(name, &[]);
    assert_eq!(
        replica_counts(&deployment),
        (desired, ready),
        "replicas of {name} (desired, ready) in {deployment:#}"
    );
    deployment
}

/// Asserts that `endpoints` lists only the stable endpoint on `port`.
fn assert_stable_endpoint(deployment: &Value, port: u16) {
    assert_eq!(
        deployment["endpoints"],
        serde_json::json!([format!("http://127.0.0.1:{port}")]),
        "endpoints in {deployment:#}"
    );
}

/// Asserts that every replica serves `text` on `/` of its own private port,
/// and returns those ports.
fn assert_replicas_serve(deployment: &Value, stable: u16, text: &str) -> Vec<u16> {
    let ports = replica_ports(deployment);
    let count = deployment["replicaDetails"]
        .as_array()
        .map_or(0, |replicas| {
            replicas.iter().filter(|r| r["state"] != "stopping").count()
        });
    assert_eq!(ports.len(), count, "one port per replica in {deployment:#}");
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ports.len(),
        "private ports repeat: {ports:?}"
    );
    for port in &ports {
        assert_ne!(*port, stable, "a replica listens on the stable port");
        assert!(
            greeting(*port).contains(text),
            "replica port {port} should serve {text:?}"
        );
    }
    ports
}

/// Asserts that a [`Watcher`] saw only successful responses with its text.
fn assert_watched(report: WatchReport, during: &str) {
    assert!(report.requests > 0, "no request was sent during {during}");
    assert!(
        report.failures.is_empty(),
        "the stable port failed {} of {} requests during {during}: {:?}",
        report.failures.len(),
        report.requests,
        report.failures
    );
    assert!(
        report.unexpected.is_empty(),
        "unexpected bodies during {during}: {:?}",
        report.unexpected
    );
}

/// Waits until no port of `old` outside `kept` accepts connections.
fn wait_removed_ports_closed(old: &[u16], kept: &[u16]) {
    for port in old.iter().filter(|port| !kept.contains(port)) {
        wait_port_closed(*port);
    }
}

fn parse_time(value: &Value, field: &str) -> OffsetDateTime {
    let text = value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {value:#}"));
    OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|error| panic!("{field} {text:?} is not RFC 3339: {error}"))
}

#[test]
fn sample_full_lifecycle() {
    let home = TestHome::new();
    let base = free_ports(1);
    let manifest = home.write("web.yaml", &sample_manifest("web", 2, base, "hello"));
    let manifest = manifest.to_str().expect("UTF-8 path");

    // Deploy two replicas behind the stable port.
    let result = home.json(&["deploy", "-f", manifest, "--wait"]);
    assert_eq!(result["revision"], 1, "deploy result {result:#}");
    assert_eq!(
        result["deployment"]["status"], "deployed",
        "deploy --wait result {result:#}"
    );
    assert_eq!(
        replica_counts(&result["deployment"]),
        (2, 2),
        "deploy --wait result {result:#}"
    );
    let deployment = assert_counts(&home, "web", 2, 2);
    assert_eq!(deployment["status"], "deployed");
    assert_eq!(deployment["health"], "healthy");
    assert_eq!(deployment["revision"], 1);
    assert_eq!(deployment["version"], "1.0");
    assert_eq!(deployment["environment"], "development");
    assert_eq!(deployment["backend"], "process");
    assert_stable_endpoint(&deployment, base);
    assert_replicas_serve(&deployment, base, "hello");
    assert_every_response(base, "hello", 4);
    wait_balanced(base, &replica_pids(&deployment));

    // Scale up to four, then down to one, while the stable port serves.
    let watcher = Watcher::start(base, "hello");
    home.ok(&["scale", "web", "--replicas", "4", "--wait"]);
    let deployment = assert_counts(&home, "web", 4, 4);
    assert_stable_endpoint(&deployment, base);
    let four_ports = assert_replicas_serve(&deployment, base, "hello");
    assert_eq!(four_ports.len(), 4, "ports in {deployment:#}");
    let four_pids = replica_pids(&deployment);
    assert_eq!(four_pids.len(), 4, "pids in {deployment:#}");
    wait_balanced(base, &four_pids);

    home.ok(&["scale", "web", "--replicas", "1", "--wait"]);
    let deployment = assert_counts(&home, "web", 1, 1);
    assert_stable_endpoint(&deployment, base);
    let one_port = assert_replicas_serve(&deployment, base, "hello");
    assert_eq!(one_port.len(), 1, "ports in {deployment:#}");
    wait_removed_ports_closed(&four_ports, &one_port);
    assert_every_response(base, "hello", 4);
    assert_eq!(deployment["revision"], 1, "scaling creates no revision");
    wait_for("removed replicas to exit", DEADLINE, || {
        (home.marked_pids().len() == 1).then_some(())
    });
    assert_watched(watcher.stop(), "scale to 4 and back to 1");

    // Redeploy with a changed variable: the scale of one is kept, and the
    // stable port serves throughout.
    let watcher = Watcher::start(base, "from shipdeck-sample");
    let result = home.json(&["redeploy", "web", "--set", "env.GREETING=bonjour", "--wait"]);
    assert_watched(watcher.stop(), "redeploy --set");
    assert_eq!(result["revision"], 2, "redeploy result {result:#}");
    let deployment = assert_counts(&home, "web", 1, 1);
    assert_eq!(deployment["revision"], 2);
    assert_stable_endpoint(&deployment, base);
    let bonjour_ports = assert_replicas_serve(&deployment, base, "bonjour");
    wait_removed_ports_closed(&one_port, &bonjour_ports);
    assert_every_response(base, "bonjour", 4);

    // Redeploy from a changed file: its version and replica count apply.
    let changed =
        sample_manifest("web", 2, base, "hola").replace("version: \"1.0\"", "version: \"2.0\"");
    let changed = home.write("web-v2.yaml", &changed);
    let watcher = Watcher::start(base, "from shipdeck-sample");
    let result = home.json(&[
        "redeploy",
        "web",
        "-f",
        changed.to_str().expect("path"),
        "--wait",
    ]);
    assert_watched(watcher.stop(), "redeploy -f");
    assert_eq!(result["revision"], 3, "redeploy -f result {result:#}");
    let deployment = assert_counts(&home, "web", 2, 2);
    assert_eq!(deployment["version"], "2.0");
    assert_stable_endpoint(&deployment, base);
    let hola_ports = assert_replicas_serve(&deployment, base, "hola");
    wait_removed_ports_closed(&bonjour_ports, &hola_ports);
    assert_every_response(base, "hola", 4);
    wait_balanced(base, &replica_pids(&deployment));

    // Roll back to the previous healthy revision (2), then to revision 1.
    let watcher = Watcher::start(base, "from shipdeck-sample");
    let result = home.json(&["rollback", "web", "--wait"]);
    assert_watched(watcher.stop(), "rollback");
    assert_eq!(result["revision"], 4, "rollback result {result:#}");
    let deployment = assert_counts(&home, "web", 2, 2);
    assert_eq!(
        deployment["version"], "1.0",
        "rollback to revision 2 restores its version"
    );
    let rolled_back_ports = assert_replicas_serve(&deployment, base, "bonjour");
    wait_removed_ports_closed(&hola_ports, &rolled_back_ports);
    assert_every_response(base, "bonjour", 4);

    let watcher = Watcher::start(base, "from shipdeck-sample");
    let result = home.json(&["rollback", "web", "--to-revision", "1", "--wait"]);
    assert_watched(watcher.stop(), "rollback --to-revision 1");
    assert_eq!(
        result["revision"], 5,
        "rollback --to-revision result {result:#}"
    );
    let deployment = assert_counts(&home, "web", 2, 2);
    assert_eq!(deployment["revision"], 5);
    assert_stable_endpoint(&deployment, base);
    let last_ports = assert_replicas_serve(&deployment, base, "hello");
    wait_removed_ports_closed(&rolled_back_ports, &last_ports);
    assert_every_response(base, "hello", 4);

    // History: newest first, every revision kept.
    let history = home.json(&["history", "web"]);
    let entries = history.as_array().expect("history is a list");
    let revisions: Vec<u64> = entries
        .iter()
        .map(|e| e["revision"].as_u64().expect("revision"))
        .collect();
    assert_eq!(revisions, vec![5, 4, 3, 2, 1], "history {history:#}");
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["status"].as_str().expect("status"))
        .collect();
    assert_eq!(
        statuses,
        vec![
            "deployed",
            "superseded",
            "superseded",
            "superseded",
            "superseded"
        ],
        "history {history:#}"
    );
    let versions: Vec<&str> = entries
        .iter()
        .map(|e| e["version"].as_str().expect("version"))
        .collect();
    assert_eq!(
        versions,
        vec!["1.0", "1.0", "2.0", "1.0", "1.0"],
        "history {history:#}"
    );
    assert_eq!(entries[0]["reason"], "rollback to revision 1");
    assert_eq!(entries[1]["reason"], "rollback to revision 2");
    let times: Vec<OffsetDateTime> = entries.iter().map(|e| parse_time(e, "createdAt")).collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "createdAt newest first: {times:?}"
    );

    // Undeploy: every port closes, no replica is left, history stays.
    home.ok(&["undeploy", "web", "--wait"]);
    let deployment = home.get("web", &[]);
    assert_eq!(
        deployment["status"], "undeployed",
        "after undeploy {deployment:#}"
    );
    assert_eq!(replica_counts(&deployment).1, 0);
    wait_port_closed(base);
    for port in &last_ports {
        wait_port_closed(*port);
    }
    home.wait_no_marked("replicas to exit after undeploy");
    assert_eq!(
        home.json(&["history", "web"]).as_array().map(Vec::len),
        Some(5)
    );
    let listed = home.json(&["ls"]);
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(0),
        "ls hides undeployed: {listed:#}"
    );
    let listed = home.json(&["ls", "--status", "undeployed"]);
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "ls --status undeployed: {listed:#}"
    );

    home.finish();
}

#[test]
fn python_http_server_scales() {
    let home = TestHome::new();
    let base = free_ports(1);
    home.write("site/index.html", "served by python\n");
    let manifest = home.write(
        "py.yaml",
        &format!(
            r#"name: py
environment: staging
run:
  command: ["python3", "-m", "http.server", "--bind", "127.0.0.1", "${{PORT}}"]
  workdir: site
replicas: 1
ports:
  - {{ name: http, containerPort: 8000, hostPort: {base} }}
healthCheck: {{ type: http, path: /, port: 8000, periodSeconds: 1 }}
terminationGracePeriodSeconds: 5
"#
        ),
    );

    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let deployment = assert_counts(&home, "py", 1, 1);
    assert_eq!(deployment["environment"], "staging");
    assert_stable_endpoint(&deployment, base);
    assert_eq!(wait_http_ok(base, "/index.html"), "served by python\n");

    home.ok(&["scale", "py", "--replicas", "3", "--wait"]);
    let deployment = assert_counts(&home, "py", 3, 3);
    assert_stable_endpoint(&deployment, base);
    let three_ports = replica_ports(&deployment);
    assert_eq!(three_ports.len(), 3, "ports in {deployment:#}");
    for port in &three_ports {
        assert_eq!(
            wait_http_ok(*port, "/index.html"),
            "served by python\n",
            "replica port {port}"
        );
    }
    assert_eq!(wait_http_ok(base, "/index.html"), "served by python\n");

    home.ok(&["scale", "py", "--replicas", "1", "--wait"]);
    let deployment = assert_counts(&home, "py", 1, 1);
    let kept = replica_ports(&deployment);
    assert_eq!(kept.len(), 1, "ports in {deployment:#}");
    wait_removed_ports_closed(&three_ports, &kept);
    assert_eq!(wait_http_ok(base, "/index.html"), "served by python\n");

    home.ok(&["undeploy", "py", "--wait"]);
    wait_port_closed(base);
    wait_port_closed(kept[0]);
    home.wait_no_marked("python replicas to exit after undeploy");
    home.finish();
}

#[test]
fn scale_to_zero_and_back() {
    let home = TestHome::new();
    let base = free_ports(1);
    let manifest = home.write("zero.yaml", &sample_manifest("zero", 2, base, "hi"));

    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let two_ports = replica_ports(&home.get("zero", &[]));
    assert_eq!(two_ports.len(), 2, "replica ports at scale 2");
    home.ok(&["scale", "zero", "--replicas", "0", "--wait"]);
    let deployment = assert_counts(&home, "zero", 0, 0);
    assert_stable_endpoint(&deployment, base);
    for port in &two_ports {
        wait_port_closed(*port);
    }
    home.wait_no_marked("replicas to exit at scale 0");
    // The agent keeps the stable port at scale 0, so no other process can
    // take it, but no replica serves behind it.
    assert!(
        TcpListener::bind((Ipv4Addr::LOCALHOST, base)).is_err(),
        "the stable port {base} was released at scale 0"
    );
    assert_eq!(http_get(base, "/"), None, "expected no response at scale 0");

    home.ok(&[
        "scale",
        "zero",
        "--replicas",
        "2",
        "--wait",
        "--timeout",
        "20s",
    ]);
    let deployment = assert_counts(&home, "zero", 2, 2);
    assert_replicas_serve(&deployment, base, "hi");
    assert_every_response(base, "hi", 4);

    // Scaling back up while the removed replica still stops starts a new
    // replica beside it.
    home.ok(&["scale", "zero", "--replicas", "1"]);
    home.ok(&[
        "scale",
        "zero",
        "--replicas",
        "2",
        "--wait",
        "--timeout",
        "20s",
    ]);
    let deployment = assert_counts(&home, "zero", 2, 2);
    assert_replicas_serve(&deployment, base, "hi");
    assert_every_response(base, "hi", 4);
    wait_balanced(base, &replica_pids(&deployment));
    home.finish();
}

#[test]
fn killed_replica_is_restarted() {
    let home = TestHome::new();
    let base = free_ports(1);
    let manifest = home.write("crashy.yaml", &sample_manifest("crashy", 2, base, "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);

    let health = home.json(&["health", "crashy"]);
    assert_eq!(health["status"], "healthy", "{health:#}");
    let checks = health["checks"].as_array().expect("checks list");
    assert_eq!(checks.len(), 2, "one check per replica: {health:#}");
    for check in checks {
        assert_eq!(check["status"], "healthy", "{check:#}");
        assert!(
            check["name"].is_string() && check["message"].is_string(),
            "{check:#}"
        );
    }
    parse_time(&health, "lastChecked");

    let before = home.get("crashy", &[]);
    let victim = before["replicaDetails"][1]["pid"]
        .as_i64()
        .expect("pid of replica 1");
    kill9(i32::try_from(victim).expect("pid"));

    let after = wait_for("replica 1 to be restarted and ready", DEADLINE, || {
        let deployment = home.get("crashy", &[]);
        let replica = &deployment["replicaDetails"][1];
        let restarted = replica["pid"].as_i64().is_some_and(|pid| pid != victim);
        (restarted && replica["ready"] == true && replica_counts(&deployment) == (2, 2))
            .then_some(deployment)
    });
    assert_eq!(after["replicaDetails"][1]["restarts"], 1, "{after:#}");
    assert_eq!(
        after["replicaDetails"][0]["pid"], before["replicaDetails"][0]["pid"],
        "replica 0 untouched"
    );
    assert_eq!(after["revision"], 1, "a restart creates no revision");
    let restarted_port = after["replicaDetails"][1]["port"]
        .as_u64()
        .and_then(|port| u16::try_from(port).ok())
        .expect("port of replica 1");
    assert!(wait_http_ok(restarted_port, "/").contains("hi"));
    assert_every_response(base, "hi", 4);
    wait_balanced(base, &replica_pids(&after));
    assert_eq!(home.marked_pids().len(), 2);
    home.finish();
}

#[test]
fn deploy_again_after_undeploy() {
    let home = TestHome::new();
    let base = free_ports(1);
    let manifest = home.write("again.yaml", &sample_manifest("again", 1, base, "back"));
    let manifest = manifest.to_str().expect("path");

    home.ok(&["deploy", "-f", manifest, "--wait"]);
    home.ok(&["undeploy", "again", "--wait"]);
    wait_port_closed(base);
    let error = home.fails(&["scale", "again", "--replicas", "2"]);
    assert!(
        error.contains("undeployed"),
        "scale of an undeployed deployment: {error:?}"
    );

    let result = home.json(&["deploy", "-f", manifest, "--wait"]);
    assert_eq!(result["revision"], 2, "{result:#}");
    let deployment = assert_counts(&home, "again", 1, 1);
    assert_eq!(deployment["status"], "deployed");
    assert_stable_endpoint(&deployment, base);
    assert!(wait_http_ok(base, "/").contains("back"));

    let history = home.json(&["history", "again"]);
    let statuses: Vec<&str> = history
        .as_array()
        .expect("history list")
        .iter()
        .map(|e| e["status"].as_str().expect("status"))
        .collect();
    assert_eq!(
        statuses,
        vec!["deployed", "superseded"],
        "one deployed revision: {history:#}"
    );
    home.finish();
}
