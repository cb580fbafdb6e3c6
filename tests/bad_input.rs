//! Bad input through the real CLI: each case must fail with one clear line
//! on standard error and a non-zero exit, stop nothing that was serving,
//! and lose no stored record.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A healthy deployment that every bad input must leave alone.
struct Keeper {
    port: u16,
    pids: Vec<i64>,
    history: Value,
    events: Vec<Value>,
}

impl Keeper {
    fn deploy(home: &TestHome) -> Self {
        // The port after the keeper's is free too, so that the scaling case
        // can hold it.
        let port = free_ports(2);
        let manifest = home.write(
            "keeper.yaml",
            &sample_manifest("keeper", 1, port, "still-here"),
        );
        home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
        let deployment = home.get("keeper", &[]);
        Self {
            port,
            pids: replica_pids(&deployment),
            history: home.json(&["history", "keeper"]),
            events: all_events(home),
        }
    }

    /// Asserts the keeper still serves from the same process and that its
    /// history and every earlier event are still stored.
    fn assert_untouched(&self, home: &TestHome) {
        let deployment = home.get("keeper", &[]);
        assert_eq!(
            deployment["status"], "deployed",
            "keeper after bad input: {deployment:#}"
        );
        assert_eq!(
            replica_counts(&deployment),
            (1, 1),
            "keeper counts: {deployment:#}"
        );
        assert_eq!(
            replica_pids(&deployment),
            self.pids,
            "keeper replica was restarted"
        );
        let body = http_get(self.port, "/")
            .map(|(_, body)| body)
            .unwrap_or_default();
        assert!(
            body.contains("still-here"),
            "keeper stopped serving: {body:?}"
        );
        assert_eq!(
            home.json(&["history", "keeper"]),
            self.history,
            "keeper history changed"
        );
        let events = all_events(home);
        for event in &self.events {
            assert!(events.contains(event), "stored event lost: {event:#}");
        }
    }
}

fn all_events(home: &TestHome) -> Vec<Value> {
    home.json(&["events", "--limit", "1000"])
        .as_array()
        .expect("events list")
        .clone()
}

fn path_arg(path: &std::path::Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn broken_manifest_names_position_and_field() {
    let home = TestHome::new();
    let keeper = Keeper::deploy(&home);

    let unknown = home.write(
        "unknown.yaml",
        "name: broken\nrun:\n  command: [\"sleep\", \"100\"]\nreplicas: 1\nrestartPolicy:\n  polcy: always\n",
    );
    let error = home.fails(&["deploy", "-f", path_arg(&unknown)]);
    assert!(
        error.contains("unknown.yaml:6:3"),
        "file:line:column in {error:?}"
    );
    assert!(
        error.contains("restartPolicy.polcy"),
        "field path in {error:?}"
    );
    assert!(error.contains("policy"), "suggestion in {error:?}");

    let wrong_type = home.write(
        "type.yaml",
        "name: broken\nrun:\n  command: [\"sleep\", \"100\"]\nreplicas: many\n",
    );
    let error = home.fails(&["deploy", "-f", path_arg(&wrong_type)]);
    assert!(
        error.contains("type.yaml:4:11"),
        "file:line:column in {error:?}"
    );
    assert!(error.contains("replicas"), "field path in {error:?}");

    let missing = home.work().join("missing.yaml");
    let error = home.fails(&["deploy", "-f", path_arg(&missing)]);
    assert!(error.contains("missing.yaml"), "file name in {error:?}");

    // A broken file on redeploy leaves the running revision alone.
    let broken_keeper = home.write(
        "keeper-broken.yaml",
        &sample_manifest("keeper", 1, keeper.port, "x")
            .replace("replicas: 1", "replicas: 1\nreplica: 2"),
    );
    let error = home.fails(&["redeploy", "keeper", "-f", path_arg(&broken_keeper)]);
    assert!(
        error.contains("keeper-broken.yaml:"),
        "file name in {error:?}"
    );
    assert!(error.contains("replica"), "field in {error:?}");

    let error = home.fails(&["redeploy", "keeper", "--set", "replicas=-3"]);
    assert!(error.contains("replicas"), "field in {error:?}");

    let listed = home.json(&[
        "ls",
        "--status",
        "pending,building,deploying,deployed,degraded,failed,undeploying,undeployed",
    ]);
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, vec!["keeper"], "a broken manifest stores nothing");
    keeper.assert_untouched(&home);
    home.finish();
}

#[test]
fn unknown_deployment_is_not_found() {
    let home = TestHome::new();
    let keeper = Keeper::deploy(&home);

    let commands: [&[&str]; 7] = [
        &["get", "nope"],
        &["history", "nope"],
        &["health", "nope"],
        &["scale", "nope", "--replicas", "2"],
        &["redeploy", "nope"],
        &["rollback", "nope"],
        &["undeploy", "nope"],
    ];
    for args in commands {
        let error = home.fails(args);
        assert!(
            error.contains("\"nope\"") && error.contains("not found"),
            "`{}`: {error:?}",
            args.join(" ")
        );
    }
    let error = home.fails(&["get", "keeper", "--env", "production"]);
    assert!(error.contains("production"), "environment in {error:?}");

    let error = home.fails(&["rollback", "keeper", "--to-revision", "9"]);
    assert!(error.contains("revision 9"), "revision in {error:?}");
    let error = home.fails(&["rollback", "keeper"]);
    assert!(error.contains("no earlier healthy revision"), "{error:?}");

    keeper.assert_untouched(&home);
    home.finish();
}

#[test]
fn name_in_two_environments_needs_env() {
    let home = TestHome::new();
    let manifest = home.write(
        "twin.yaml",
        "name: twin\nrun:\n  command: [\"sleep\", \"300\"]\nreplicas: 1\nterminationGracePeriodSeconds: 1\n",
    );
    for env in ["staging", "production"] {
        home.ok(&["deploy", "-f", path_arg(&manifest), "--env", env, "--wait"]);
    }

    for args in [
        &["get", "twin"][..],
        &["scale", "twin", "--replicas", "3"],
        &["undeploy", "twin"],
        &["history", "twin"],
    ] {
        let error = home.fails(args);
        assert!(
            error.contains("staging") && error.contains("production") && error.contains("--env"),
            "`{}`: {error:?}",
            args.join(" ")
        );
    }

    for env in ["staging", "production"] {
        let deployment = home.get("twin", &["--env", env]);
        assert_eq!(deployment["environment"], env);
        assert_eq!(
            replica_counts(&deployment),
            (1, 1),
            "twin in {env}: {deployment:#}"
        );
    }
    assert_eq!(home.marked_pids().len(), 2, "both environments still run");
    home.finish();
}

#[test]
fn port_in_use_is_rejected() {
    let home = TestHome::new();
    let keeper = Keeper::deploy(&home);
    let base = free_ports(1);
    let _held = TcpListener::bind((Ipv4Addr::LOCALHOST, base)).expect("hold a port");

    let manifest = home.write("busy.yaml", &sample_manifest("busy", 2, base, "x"));
    let error = home.fails(&["deploy", "-f", path_arg(&manifest)]);
    assert!(error.contains(&base.to_string()), "port in {error:?}");
    assert!(error.contains("ports[0].hostPort"), "field in {error:?}");

    // Moving the keeper onto the held port is rejected too.
    let moved = home.write(
        "keeper-moved.yaml",
        &sample_manifest("keeper", 1, base, "x"),
    );
    let error = home.fails(&["redeploy", "keeper", "-f", path_arg(&moved)]);
    assert!(error.contains(&base.to_string()), "port in {error:?}");

    let error = home.fails(&["get", "busy"]);
    assert!(
        error.contains("not found"),
        "nothing stored for busy: {error:?}"
    );
    keeper.assert_untouched(&home);
    home.finish();
}

#[test]
fn scale_needs_no_more_host_ports() {
    let home = TestHome::new();
    let keeper = Keeper::deploy(&home);

    // Replicas listen on private ports behind the one stable port, so a
    // held port after the keeper's does not stop a scale-up.
    let _next = TcpListener::bind((Ipv4Addr::LOCALHOST, keeper.port + 1))
        .expect("hold the port after the keeper's");
    home.ok(&["scale", "keeper", "--replicas", "2", "--wait"]);
    let deployment = home.get("keeper", &[]);
    assert_eq!(replica_counts(&deployment), (2, 2), "{deployment:#}");
    assert_eq!(endpoint_ports(&deployment), vec![keeper.port]);
    let ports = replica_ports(&deployment);
    assert_eq!(ports.len(), 2, "replica ports in {deployment:#}");
    assert!(
        !ports.contains(&(keeper.port + 1)),
        "a replica got the held port: {ports:?}"
    );
    for port in &ports {
        assert!(
            wait_http_ok(*port, "/").contains("still-here"),
            "replica port {port}"
        );
    }
    wait_balanced(keeper.port, &replica_pids(&deployment));
    home.finish();
}

#[test]
fn missing_command_is_rejected() {
    let home = TestHome::new();
    let keeper = Keeper::deploy(&home);

    let manifest = home.write(
        "ghost.yaml",
        "name: ghost\nrun:\n  command: [\"no-such-program-shipdeck-test\", \"--flag\"]\n",
    );
    let error = home.fails(&["deploy", "-f", path_arg(&manifest)]);
    assert!(
        error.contains("no-such-program-shipdeck-test"),
        "program in {error:?}"
    );
    assert!(error.contains("not found"), "{error:?}");

    let absolute = home.write(
        "ghost-abs.yaml",
        "name: ghost\nrun:\n  command: [\"/nonexistent/bin/tool\"]\n",
    );
    let error = home.fails(&["deploy", "-f", path_arg(&absolute)]);
    assert!(
        error.contains("/nonexistent/bin/tool"),
        "program in {error:?}"
    );

    let error = home.fails(&["redeploy", "keeper", "-f", path_arg(&manifest)]);
    assert!(!error.is_empty());

    keeper.assert_untouched(&home);
    home.finish();
}

#[test]
fn unfetchable_source_fails() {
    let home = TestHome::new();
    let keeper = Keeper::deploy(&home);

    let manifest = home.write(
        "nosrc.yaml",
        "name: nosrc\nsource: {type: tar, url: /nonexistent.tar}\nrun:\n  command: [\"sleep\", \"100\"]\n",
    );
    let error = home.fails(&[
        "deploy",
        "-f",
        path_arg(&manifest),
        "--wait",
        "--timeout",
        "20s",
    ]);
    assert!(error.contains("/nonexistent.tar"), "url in {error:?}");
    assert!(error.contains("does not exist"), "{error:?}");

    let history = home.json(&["history", "nosrc"]);
    assert_eq!(history[0]["status"], "failed", "history {history:#}");
    assert!(
        history[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("/nonexistent.tar")),
        "reason in {history:#}"
    );
    let deployment = home.get("nosrc", &[]);
    assert_eq!(deployment["status"], "failed", "{deployment:#}");

    let remote = home.write(
        "remote.yaml",
        "name: remote\nsource: {type: zip, url: \"ftp://example.invalid/app.zip\"}\nrun:\n  command: [\"sleep\", \"100\"]\n",
    );
    let output = home.run(&[
        "deploy",
        "-f",
        path_arg(&remote),
        "--wait",
        "--timeout",
        "20s",
    ]);
    assert!(!output.status.success(), "an ftp:// source must fail");

    keeper.assert_untouched(&home);
    home.finish();
}

#[test]
fn failing_build_keeps_its_output() {
    let home = TestHome::new();
    let keeper = Keeper::deploy(&home);

    home.write("project/app.txt", "app\n");
    let archive = home.work().join("project.tar");
    sh(
        &home.work().join("project"),
        "tar",
        &["-cf", path_arg(&archive), "."],
    );
    let manifest = home.write(
        "broken-build.yaml",
        &format!(
            "name: bb\nsource: {{type: tar, url: {}}}\nbuild:\n  command: [sh, -c, \"echo building; exit 3\"]\nrun:\n  command: [\"sleep\", \"100\"]\n",
            path_arg(&archive)
        ),
    );
    let error = home.fails(&[
        "deploy",
        "-f",
        path_arg(&manifest),
        "--wait",
        "--timeout",
        "20s",
    ]);
    assert!(error.contains("exit status: 3"), "exit status in {error:?}");
    assert!(error.contains("logs"), "hint at the build log in {error:?}");

    let log = home.ok(&["logs", "bb", "--build"]);
    assert!(log.contains("building"), "build output: {log:?}");
    let history = home.json(&["history", "bb"]);
    assert_eq!(history[0]["status"], "failed", "{history:#}");
    assert!(
        history[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("exit status: 3")),
        "reason in {history:#}"
    );
    assert_eq!(home.marked_pids().len(), 1, "only the keeper runs");

    keeper.assert_untouched(&home);
    home.finish();
}

#[test]
fn negative_replicas_are_rejected() {
    let home = TestHome::new();
    let keeper = Keeper::deploy(&home);

    let error = home.fails(&["scale", "keeper", "--replicas", "-1"]);
    assert!(error.contains("-1"), "value in {error:?}");
    let error = home.fails(&["scale", "keeper", "--replicas", "1001"]);
    assert!(error.contains("1001"), "value in {error:?}");
    let error = home.fails(&["scale", "keeper", "--replicas", "two"]);
    assert!(error.contains("two"), "value in {error:?}");
    let error = home.fails(&[
        "deploy",
        "-f",
        path_arg(&home.work().join("keeper.yaml")),
        "--set",
        "replicas=-1",
    ]);
    assert!(error.contains("replicas"), "field in {error:?}");

    keeper.assert_untouched(&home);
    home.finish();
}

#[test]
fn second_agent_on_same_home_fails() {
    let home = TestHome::new();
    let keeper = Keeper::deploy(&home);

    let mut second = home
        .command(&["agent"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a second agent");
    let status = wait_for_value(DEADLINE, || second.try_wait().ok().flatten().ok_or(()));
    let Ok(status) = status else {
        let _ = second.kill();
        let _ = second.wait();
        panic!("a second agent on the same home kept running");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "second agent exit status {status}");
    let home_path = home.home().display().to_string();
    assert!(
        stderr.contains("already running") && stderr.contains(&home_path),
        "stderr: {stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("shipdeck: "),
        "one-line error at the end: {stderr}"
    );

    let status = home.json(&["agent", "status"]);
    assert_eq!(
        status["pid"].as_i64(),
        home.agent_pid().map(i64::from),
        "first agent still runs"
    );
    keeper.assert_untouched(&home);
    home.finish();
}

#[test]
fn bad_redeploy_reverts_while_serving() {
    let home = TestHome::new();
    // No host port: the old replica keeps its own port during the rollout.
    let manifest = format!(
        r#"name: steady
version: good
run:
  command: ["{SAMPLE}", "serve", "--log-rate", "0"]
replicas: 2
ports:
  - {{ name: http, containerPort: 8080 }}
healthCheck: {{ type: http, path: /healthz, port: 8080, periodSeconds: 1 }}
strategy: {{ progressDeadlineSeconds: 3 }}
terminationGracePeriodSeconds: 5
"#
    );
    let good = home.write("steady.yaml", &manifest);
    home.ok(&["deploy", "-f", path_arg(&good), "--wait"]);
    let before = home.get("steady", &[]);
    let ports = endpoint_ports(&before);
    assert_eq!(ports.len(), 2, "{before:#}");
    let pids = replica_pids(&before);

    // Watch the old replicas for the whole redeploy.
    let stop = Arc::new(AtomicBool::new(false));
    let misses = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, misses, ports) = (stop.clone(), misses.clone(), ports.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for port in &ports {
                    if http_get(*port, "/healthz").map(|(s, _)| s) != Some(200) {
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let bad = home.write(
        "steady-bad.yaml",
        &manifest.replace("version: good", "version: bad").replace(
            "\"--log-rate\", \"0\"",
            "\"--log-rate\", \"0\", \"--fail-health\"",
        ),
    );
    let error = home.fails(&[
        "redeploy",
        "steady",
        "-f",
        path_arg(&bad),
        "--wait",
        "--timeout",
        "30s",
    ]);
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher thread");
    assert!(error.contains("revision 2"), "failed revision in {error:?}");
    assert!(error.contains("revert"), "revert in {error:?}");
    assert_eq!(
        misses.load(Ordering::Relaxed),
        0,
        "old replicas stopped answering during the redeploy"
    );

    let after = home.get("steady", &[]);
    assert_eq!(after["status"], "deployed", "{after:#}");
    assert_eq!(after["version"], "good", "{after:#}");
    assert_eq!(replica_counts(&after), (2, 2), "{after:#}");
    assert_eq!(
        replica_pids(&after),
        pids,
        "the first revision's replicas kept running"
    );
    for port in &ports {
        assert_eq!(
            http_get(*port, "/healthz").map(|(s, _)| s),
            Some(200),
            "port {port} after revert"
        );
    }
    wait_for("failed replicas to exit", DEADLINE, || {
        (home.marked_pids().len() == 2).then_some(())
    });

    let history = home.json(&["history", "steady"]);
    assert_eq!(history[0]["revision"], 2, "{history:#}");
    assert_eq!(history[0]["status"], "failed", "{history:#}");
    assert_eq!(history[0]["version"], "bad", "{history:#}");
    assert!(
        history[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("did not become ready")),
        "reason of the failed revision in {history:#}"
    );
    assert_eq!(history[1]["revision"], 1, "{history:#}");
    assert_eq!(history[1]["status"], "deployed", "{history:#}");

    let events = all_events(&home);
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "revert" && e["outcome"] == "ok"),
        "a revert event in {events:#?}"
    );
    home.finish();
}

#[test]
fn bad_revision_never_takes_traffic() {
    let home = TestHome::new();
    let port = free_ports(1);
    let manifest = sample_manifest("guarded", 2, port, "good-revision")
        + "strategy: { progressDeadlineSeconds: 3 }\n";
    let good = home.write("guarded.yaml", &manifest);
    home.ok(&["deploy", "-f", path_arg(&good), "--wait"]);
    let before = home.get("guarded", &[]);
    let pids = replica_pids(&before);

    // The bad revision serves `/` but fails its health check, so the
    // stable port must never send a request to it.
    let bad = home.write(
        "guarded-bad.yaml",
        &manifest
            .replace("GREETING: good-revision", "GREETING: bad-revision")
            .replace(
                "\"--log-rate\", \"0\"",
                "\"--log-rate\", \"0\", \"--fail-health\"",
            ),
    );
    let watcher = Watcher::start(port, "good-revision");
    let error = home.fails(&[
        "redeploy",
        "guarded",
        "-f",
        path_arg(&bad),
        "--wait",
        "--timeout",
        "30s",
    ]);
    let report = watcher.stop();
    assert!(error.contains("revision 2"), "failed revision in {error:?}");
    assert!(report.requests > 0, "no request sent during the redeploy");
    assert!(
        report.failures.is_empty(),
        "the stable port failed {} of {} requests: {:?}",
        report.failures.len(),
        report.requests,
        report.failures
    );
    assert!(
        report.unexpected.is_empty(),
        "the bad revision served: {:?}",
        report.unexpected
    );

    let after = home.get("guarded", &[]);
    assert_eq!(after["status"], "deployed", "{after:#}");
    assert_eq!(replica_counts(&after), (2, 2), "{after:#}");
    assert_eq!(replica_pids(&after), pids, "the good replicas kept running");
    assert_eq!(endpoint_ports(&after), vec![port]);
    assert_every_response(port, "good-revision", 4);
    wait_for("failed replicas to exit", DEADLINE, || {
        (home.marked_pids().len() == 2).then_some(())
    });
    home.finish();
}
