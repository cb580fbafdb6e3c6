//! Supervision as operators rely on it: restart backoff, probes, rolling
//! updates through the stable endpoint without dropped requests, automatic
//! revert, and memory limits. Each test runs a real agent on its own home.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Builds the shared sample manifest with `extra` top-level fields added.
fn rolling_manifest(name: &str, replicas: u32, port: u16, greeting: &str, extra: &str) -> String {
    sample_manifest(name, replicas, port, greeting) + extra
}

/// Sends requests through `port` until `stop` is set; counts the results.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    worker: Option<thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (stop_flag, ok_count, failed_count) = (stop.clone(), ok.clone(), failed.clone());
        let worker = thread::spawn(move || {
            let mut bodies = Vec::new();
            // Bounded in time: the loop ends by itself after two minutes.
            let end = Instant::now() + Duration::from_secs(120);
            while !stop_flag.load(Ordering::Relaxed) && Instant::now() < end {
                match http_get(port, "/") {
                    Some((200, body)) => {
                        ok_count.fetch_add(1, Ordering::Relaxed);
                        if bodies.len() < 10_000 {
                            bodies.push(body);
                        }
                    }
                    _ => {
                        failed_count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
            bodies
        });
        Load {
            stop,
            ok,
            failed,
            worker: Some(worker),
        }
    }

    fn finish(mut self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let bodies = self
            .worker
            .take()
            .map(|worker| worker.join().expect("load thread"))
            .unwrap_or_default();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            bodies,
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn live_counts(deployment: &Value) -> (usize, usize) {
    let replicas = deployment["replicaDetails"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = replicas
        .iter()
        .filter(|r| r["state"] != "stopping" && r["state"] != "exited" && r["state"] != "failed")
        .count();
    let ready = replicas.iter().filter(|r| r["ready"] == true).count();
    (total, ready)
}

#[test]
fn rolling_updates_drop_no_requests() {
    let home = TestHome::new();
    let port = free_ports(1);
    let strategy = "strategy: { type: RollingUpdate, maxSurge: 1, maxUnavailable: 0 }\n";
    let file = home.write(
        "web.yaml",
        &rolling_manifest("web", 3, port, "v0", strategy),
    );
    // A readiness delay makes each update take a while, so that requests
    // keep arriving while old and new replicas come and go.
    let slow_start = [
        "--set",
        "run.command[4]=--ready-delay",
        "--set",
        "run.command[5]=300ms",
    ];
    let mut deploy = vec!["deploy", "-f", file.to_str().unwrap(), "--wait"];
    deploy.extend(slow_start);
    home.ok(&deploy);
    wait_http_ok(port, "/");

    let load = Load::start(port);
    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = sampler_stop.clone();
        let home_dir = home.home().to_path_buf();
        thread::spawn(move || {
            let mut worst = (0usize, usize::MAX);
            while !stop.load(Ordering::Relaxed) {
                let output = std::process::Command::new(SHIPDECK)
                    .args([
                        "--home",
                        home_dir.to_str().unwrap(),
                        "get",
                        "web",
                        "-o",
                        "json",
                    ])
                    .output()
                    .expect("get");
                if let Ok(value) = serde_json::from_slice::<Value>(&output.stdout) {
                    let (total, ready) = live_counts(&value);
                    worst = (worst.0.max(total), worst.1.min(ready));
                }
                thread::sleep(Duration::from_millis(20));
            }
            worst
        })
    };

    for round in 1..=5 {
        let greeting = format!("env.GREETING=v{round}");
        home.ok(&["redeploy", "web", "--set", &greeting, "--wait"]);
    }
    sampler_stop.store(true, Ordering::Relaxed);
    let (max_total, min_ready) = sampler.join().expect("sampler");
    let (ok, failed, bodies) = load.finish();

    assert_eq!(
        failed, 0,
        "failed requests during 5 rolling updates ({ok} succeeded)"
    );
    assert!(ok > 100, "only {ok} requests were sent");
    assert!(
        max_total <= 4,
        "more than desired + maxSurge replicas: {max_total}"
    );
    assert!(
        min_ready >= 3,
        "fewer than desired - maxUnavailable ready: {min_ready}"
    );
    assert!(
        bodies.last().is_some_and(|body| body.contains("v5")),
        "the last revision serves at the end"
    );
    home.finish();
}

#[test]
fn unready_revision_takes_no_traffic_and_reverts() {
    let home = TestHome::new();
    let port = free_ports(1);
    let deadline = "strategy: { progressDeadlineSeconds: 3 }\n";
    let file = home.write(
        "web.yaml",
        &rolling_manifest("web", 2, port, "good", deadline),
    );
    home.ok(&["deploy", "-f", file.to_str().unwrap(), "--wait"]);
    wait_http_ok(port, "/");

    let load = Load::start(port);
    let bad = "run.command[4]=--fail-health";
    let sets = [
        "redeploy",
        "web",
        "--set",
        "run.command[3]=0",
        "--set",
        bad,
        "--wait",
    ];
    let error = home.fails(&sets);
    let (ok, failed, bodies) = load.finish();

    assert!(error.contains("progressDeadlineSeconds"), "{error}");
    assert!(error.contains("reverted to revision 1"), "{error}");
    assert_eq!(
        failed, 0,
        "requests failed during the bad rollout ({ok} succeeded)"
    );
    assert!(
        bodies.iter().all(|body| body.contains("good")),
        "only the old revision served"
    );
    let history = home.json(&["history", "web"]);
    assert_eq!(history[0]["status"], "failed");
    assert!(history[0]["reason"]
        .as_str()
        .is_some_and(|reason| reason.contains("did not become ready")));
    let deployment = home.get("web", &[]);
    assert_eq!(deployment["revision"], 1);
    assert_eq!(deployment["status"], "deployed");
    home.finish();
}

#[test]
fn crash_loop_backs_off_exponentially() {
    let home = TestHome::new();
    let manifest = r#"name: crasher
run:
  command: ["sh", "-c", "sleep 0.2; exit 3"]
restartPolicy: { policy: always, backoffInitial: 300ms, backoffMax: 5s }
"#;
    let file = home.write("crasher.yaml", manifest);
    home.ok(&["deploy", "-f", file.to_str().unwrap(), "--wait"]);

    let delays = wait_for("four crash events", Duration::from_secs(30), || {
        let events = home.json(&["events", "crasher"]);
        let delays: Vec<f64> = events
            .as_array()?
            .iter()
            .filter(|e| e["action"] == "crash")
            .filter_map(|e| restart_delay(e["message"].as_str()?))
            .collect();
        (delays.len() >= 4).then_some(delays)
    });
    for (index, delay) in delays.iter().take(4).enumerate() {
        let expected = 0.3 * f64::from(1u32 << index);
        assert!(
            (delay - expected).abs() <= expected * 0.11,
            "restart {} waited {delay} s, expected {expected} s ± 10%: {delays:?}",
            index + 1
        );
    }

    let deployment = home.get("crasher", &[]);
    assert_eq!(deployment["status"], "degraded");
    let reason = deployment["statusReason"].as_str().unwrap_or_default();
    assert!(reason.contains("exited with code 3"), "{reason}");
    assert!(reason.contains("restart"), "{reason}");
    let restarts = deployment["replicaDetails"][0]["restarts"]
        .as_u64()
        .unwrap_or(0);
    assert!(restarts >= 3, "restarts counted: {restarts}");
    let health = home.json(&["health", "crasher"]);
    assert!(health["checks"][0]["message"]
        .as_str()
        .is_some_and(|message| message.contains("exited with code 3")));
    home.finish();
}

/// Reads `3.20` from "...; restart 2 in 3.20 s (at ...)".
fn restart_delay(message: &str) -> Option<f64> {
    let after = message.split(" in ").nth(1)?;
    after.split(' ').next()?.parse().ok()
}

#[test]
fn failing_liveness_restarts_replica() {
    let home = TestHome::new();
    let port = free_ports(1);
    let liveness = "livenessCheck: { type: http, path: /healthz, port: 8080, periodSeconds: 1, failureThreshold: 2 }\n";
    let file = home.write("web.yaml", &rolling_manifest("web", 1, port, "x", liveness));
    home.ok(&["deploy", "-f", file.to_str().unwrap(), "--wait"]);
    let before = home.get("web", &[]);
    let private = before["replicaDetails"][0]["port"].as_u64().unwrap() as u16;
    let pid = before["replicaDetails"][0]["pid"].as_i64().unwrap();

    http_post(private, "/fail-health");
    let after = wait_for(
        "a restart after liveness failed",
        Duration::from_secs(15),
        || {
            let deployment = home.get("web", &[]);
            let replica = &deployment["replicaDetails"][0];
            (replica["restarts"].as_u64()? >= 1
                && replica["pid"].as_i64()? != pid
                && replica["ready"] == true)
                .then_some(deployment)
        },
    );
    assert_eq!(after["replicas"]["ready"], 1);
    let health = home.json(&["health", "web"]);
    let names: Vec<&str> = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|check| check["name"].as_str())
        .collect();
    assert!(
        names.iter().any(|name| name.ends_with("liveness")),
        "{names:?}"
    );
    let events = home.json(&["events", "web"]);
    let text = events.to_string();
    assert!(text.contains("liveness probe failed"), "{text}");
    home.finish();
}

#[test]
fn failing_readiness_restarts_nothing() {
    let home = TestHome::new();
    let port = free_ports(1);
    let file = home.write("web.yaml", &rolling_manifest("web", 1, port, "x", ""));
    home.ok(&["deploy", "-f", file.to_str().unwrap(), "--wait"]);
    let before = home.get("web", &[]);
    let private = before["replicaDetails"][0]["port"].as_u64().unwrap() as u16;
    let pid = before["replicaDetails"][0]["pid"].as_i64().unwrap();

    http_post(private, "/fail-health");
    wait_for(
        "the replica to turn unready",
        Duration::from_secs(10),
        || {
            let deployment = home.get("web", &[]);
            (deployment["replicas"]["ready"] == 0).then_some(())
        },
    );
    thread::sleep(Duration::from_secs(3));
    let after = home.get("web", &[]);
    assert_eq!(after["replicaDetails"][0]["pid"].as_i64(), Some(pid));
    assert_eq!(after["replicaDetails"][0]["restarts"], 0);
    assert_eq!(after["status"], "degraded");

    http_post(private, "/recover-health");
    wait_for(
        "the replica to be ready again",
        Duration::from_secs(10),
        || {
            let deployment = home.get("web", &[]);
            (deployment["replicas"]["ready"] == 1).then_some(())
        },
    );
    home.finish();
}

#[test]
fn memory_limit_kills_and_restarts() {
    let home = TestHome::new();
    let manifest = r#"name: hog
run:
  command: ["python3", "-c", "import time\nb = []\nwhile True:\n    b.append(bytearray(8 * 2**20))\n    time.sleep(0.01)"]
resources:
  limits: { memory: 64Mi }
restartPolicy: { backoffInitial: 500ms, backoffMax: 2s }
"#;
    let file = home.write("hog.yaml", manifest);
    home.ok(&["deploy", "-f", file.to_str().unwrap(), "--wait"]);

    let events = wait_for("an out-of-memory event", Duration::from_secs(20), || {
        let events = home.json(&["events", "hog"]);
        let found = events
            .as_array()?
            .iter()
            .any(|e| e["action"] == "out-of-memory");
        found.then_some(events)
    });
    let text = events.to_string();
    assert!(text.contains("out of memory"), "{text}");
    let deployment = wait_for("a restart", Duration::from_secs(20), || {
        let deployment = home.get("hog", &[]);
        (deployment["replicaDetails"][0]["restarts"].as_u64()? >= 1).then_some(deployment)
    });
    let last_exit = deployment["replicaDetails"][0]["lastExit"]
        .as_str()
        .unwrap_or_default();
    assert!(last_exit.contains("out of memory"), "{last_exit}");
    home.finish();
}

#[test]
fn oom_kill_of_a_child_is_reported() {
    let home = TestHome::new();
    // The main process starts a child that allocates past the limit, then
    // waits; only the child is killed.
    let manifest = r#"name: forker
run:
  command: ["python3", "-c", "import subprocess, sys, time\nsubprocess.run([sys.executable, '-c', 'b = [bytearray(8 * 2**20) for _ in range(40)]'])\ntime.sleep(3600)"]
resources:
  limits: { memory: 64Mi }
"#;
    let file = home.write("forker.yaml", manifest);
    home.ok(&["deploy", "-f", file.to_str().unwrap(), "--wait"]);

    let events = wait_for("an out-of-memory event", Duration::from_secs(20), || {
        let events = home.json(&["events", "forker"]);
        let found = events
            .as_array()?
            .iter()
            .any(|e| e["action"] == "out-of-memory");
        found.then_some(events)
    });
    let text = events.to_string();
    assert!(text.contains("the replica goes on"), "{text}");
    let deployment = home.get("forker", &[]);
    assert_eq!(deployment["replicaDetails"][0]["restarts"], 0);
    assert_eq!(deployment["replicas"]["ready"], 1);
    home.finish();
}
