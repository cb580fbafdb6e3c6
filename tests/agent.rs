//! The agent as a process: surviving SIGKILL without orphans or lost
//! records, a graceful stop and resume, the API on its Unix socket and on
//! an opt-in TCP listener behind a bearer token, and the user in events.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn deploy_sample(home: &TestHome, name: &str, replicas: u32) -> u16 {
    let base = free_ports(1);
    let manifest = home.write(
        &format!("{name}.yaml"),
        &sample_manifest(name, replicas, base, "hello"),
    );
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    base
}

fn events(home: &TestHome) -> Vec<Value> {
    home.json(&["events", "--limit", "1000"])
        .as_array()
        .expect("events is a list")
        .clone()
}

/// Waits until `get` shows `count` ready replicas and returns the deployment.
fn wait_ready(home: &TestHome, name: &str, count: u64) -> Value {
    wait_for(
        &format!("{count} ready replicas of {name}"),
        DEADLINE,
        || {
            let deployment = home.get(name, &[]);
            (replica_counts(&deployment) == (count, count)
                && replica_pids(&deployment).len() == count as usize)
                .then_some(deployment)
        },
    )
}

#[test]
fn sigkill_agent_restarts_same_replicas() {
    let home = TestHome::new();
    let base = deploy_sample(&home, "survivor", 2);
    home.ok(&["scale", "survivor", "--replicas", "2", "--wait"]);
    let before = home.get("survivor", &[]);
    let old_pids = replica_pids(&before);
    assert_eq!(old_pids.len(), 2, "replicas before the kill: {before:#}");
    let history_before = home.json(&["history", "survivor"]);
    let events_before = events(&home);
    let agent = home.agent_pid().expect("agent pid file");

    kill9(agent);
    home.wait_agent_dead(agent);
    // The replicas die with the agent (parent-death signal).
    for pid in &old_pids {
        let pid = i32::try_from(*pid).expect("pid");
        wait_for(
            &format!("replica {pid} to die with the agent"),
            DEADLINE,
            || (!process_alive(pid)).then_some(()),
        );
    }

    // Any client command starts a new agent, which starts the replicas again.
    let after = wait_ready(&home, "survivor", 2);
    let new_agent = home.agent_pid().expect("new agent pid file");
    assert_ne!(new_agent, agent, "a new agent runs");
    let new_pids = replica_pids(&after);
    assert!(
        new_pids.iter().all(|pid| !old_pids.contains(pid)),
        "replicas were started again: old {old_pids:?}, new {new_pids:?}"
    );
    assert_eq!(
        after["revision"], before["revision"],
        "no new revision on resume"
    );
    assert_eq!(endpoint_ports(&after), vec![base]);
    for port in replica_ports(&after) {
        assert!(
            wait_http_ok(port, "/").contains("hello"),
            "replica port {port} serves the greeting"
        );
    }
    assert!(
        wait_http_ok(base, "/").contains("hello"),
        "stable port serves the greeting"
    );
    wait_balanced(base, &new_pids);
    assert_eq!(
        home.marked_pids().len(),
        2,
        "no duplicate replicas: {:?}",
        home.marked_pids()
    );

    // Nothing stored was lost.
    assert_eq!(home.json(&["history", "survivor"]), history_before);
    let events_after = events(&home);
    for event in &events_before {
        assert!(
            events_after.contains(event),
            "event lost after SIGKILL: {event:#}"
        );
    }
    let start = events_after
        .iter()
        .rev()
        .find(|event| event["action"] == "agent-start")
        .expect("the new agent records its start");
    assert!(
        start["message"]
            .as_str()
            .is_some_and(|message| message.contains("resumed 1 deployments")),
        "agent start event: {start:#}"
    );

    home.finish();
}

#[test]
fn stop_and_resume_agent() {
    let home = TestHome::new();
    let base = deploy_sample(&home, "resumed", 2);
    let before = home.get("resumed", &[]);

    let stopped = home.ok(&["agent", "stop"]);
    assert!(stopped.contains("stopped"), "agent stop output: {stopped}");
    home.wait_no_marked("replicas to stop with the agent");
    wait_port_closed(base);
    for port in replica_ports(&before) {
        wait_port_closed(port);
    }
    let status = home.run(&["agent", "status"]);
    assert!(
        !status.status.success(),
        "agent status after stop should fail"
    );

    let after = wait_ready(&home, "resumed", 2);
    assert_eq!(after["revision"], before["revision"]);
    assert_eq!(after["status"], "deployed", "resumed deployment {after:#}");
    assert_eq!(endpoint_ports(&after), vec![base]);
    for port in replica_ports(&after) {
        assert!(
            wait_http_ok(port, "/").contains("hello"),
            "replica port {port} serves the greeting"
        );
    }
    assert!(
        wait_http_ok(base, "/").contains("hello"),
        "stable port serves the greeting"
    );
    wait_balanced(base, &replica_pids(&after));
    assert_eq!(home.marked_pids().len(), 2);
    home.finish();
}

/// Sends one HTTP/1.1 request on the agent's Unix socket.
fn unix_request(home: &TestHome, request: &str) -> (u16, String) {
    let mut stream = UnixStream::connect(home.home().join("run/agent.sock"))
        .expect("connect to the agent socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    parse_response(&response).expect("an HTTP response")
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn unix_socket_api_is_private() {
    let home = TestHome::new();
    deploy_sample(&home, "api", 1);

    let (status, body) = unix_request(
        &home,
        "GET /v1/deployments HTTP/1.1\r\nHost: shipdeck\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "GET /v1/deployments: {body}");
    let list: Value = serde_json::from_str(&body).expect("JSON list");
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, vec!["api"]);

    let (status, body) = unix_request(
        &home,
        "GET /v1/deployments/nope HTTP/1.1\r\nHost: shipdeck\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 404, "unknown deployment: {body}");
    let error: Value = serde_json::from_str(&body).expect("JSON error body");
    assert!(
        error["error"].as_str().is_some_and(|e| e.contains("nope")),
        "error body {body}"
    );

    let (status, body) = unix_request(
        &home,
        "GET /v1/nowhere HTTP/1.1\r\nHost: shipdeck\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 404, "unknown path: {body}");
    let error: Value = serde_json::from_str(&body).expect("JSON error for an unknown path");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("/v1/nowhere")),
        "error body {body}"
    );

    let body = r#"{"manifest": 3}"#;
    let request = format!(
        "POST /v1/deployments HTTP/1.1\r\nHost: shipdeck\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = unix_request(&home, &request);
    assert!(
        (400..500).contains(&status),
        "bad body status {status}: {body}"
    );
    let error: Value = serde_json::from_str(&body).expect("JSON error for a bad body");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("invalid request body")),
        "error body {body}"
    );

    assert_eq!(
        mode(&home.home().join("run/agent.sock")),
        0o600,
        "socket mode"
    );
    assert_eq!(
        mode(&home.home().join("run")),
        0o700,
        "socket directory mode"
    );
    home.finish();
}

/// A foreground agent started by the test, killed if the test fails.
struct ForegroundAgent(Child);

impl Drop for ForegroundAgent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tcp_request(port: u16, token: Option<&str>) -> (u16, String) {
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the TCP listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /v1/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    parse_response(&response).expect("an HTTP response")
}

#[test]
fn tcp_listener_requires_token() {
    let home = TestHome::new();
    let port = free_ports(1);
    let address = format!("127.0.0.1:{port}");
    let child = home
        .command(&["agent", "--listen", &address])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a foreground agent");
    let mut agent = ForegroundAgent(child);
    wait_for("the TCP listener", DEADLINE, || {
        port_open(port).then_some(())
    });

    let token_path = home.home().join("token");
    let token = std::fs::read_to_string(&token_path)
        .expect("token file")
        .trim()
        .to_owned();
    assert!(token.len() >= 32, "token too short: {token:?}");
    assert_eq!(mode(&token_path), 0o600, "token file mode");

    let (status, body) = tcp_request(port, None);
    assert_eq!(status, 401, "without a token: {body}");
    let (status, body) = tcp_request(port, Some("wrong-token"));
    assert_eq!(status, 401, "with a wrong token: {body}");
    let (status, body) = tcp_request(port, Some(&token[..token.len() - 1]));
    assert_eq!(status, 401, "with a truncated token: {body}");
    let (status, body) = tcp_request(port, Some(&token));
    assert_eq!(status, 200, "with the token: {body}");
    assert!(serde_json::from_str::<Value>(&body)
        .expect("JSON")
        .is_array());

    // The CLI still reaches the same agent over its socket.
    let status = home.json(&["agent", "status"]);
    assert_eq!(
        status["pid"].as_u64(),
        Some(u64::from(agent.0.id())),
        "agent status {status:#}"
    );

    home.ok(&["agent", "stop"]);
    let exit = wait_for("the foreground agent to exit", DEADLINE, || {
        agent.0.try_wait().ok().flatten()
    });
    assert!(exit.success(), "foreground agent exit status {exit}");
    assert!(!port_open(port), "TCP listener closed after stop");
    home.finish();
}

#[test]
fn events_record_os_user() {
    let home = TestHome::new();
    deploy_sample(&home, "audited", 1);
    home.ok(&["scale", "audited", "--replicas", "2", "--wait"]);

    let user = current_user();
    let events = home.json(&["events", "audited"]);
    let events = events.as_array().expect("events list");
    let by_client: Vec<&Value> = events
        .iter()
        .filter(|e| matches!(e["action"].as_str(), Some("deploy" | "scale")))
        .collect();
    assert_eq!(by_client.len(), 2, "deploy and scale events in {events:#?}");
    for event in by_client {
        assert_eq!(
            event["user"].as_str(),
            Some(user.as_str()),
            "user of {event:#}"
        );
        assert_eq!(event["deployment"]["name"], "audited");
        assert_eq!(event["outcome"], "ok");
        assert!(event["time"].is_string(), "time in {event:#}");
    }
    home.finish();
}

#[test]
fn events_follow_prints_new_events() {
    let home = TestHome::new();
    deploy_sample(&home, "followed", 1);
    deploy_sample(&home, "other", 1);
    let mut child = home
        .command(&[
            "events", "followed", "--follow", "-o", "json", "--limit", "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start events --follow");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });

    let first: Value =
        serde_json::from_str(&lines_rx.recv_timeout(DEADLINE).expect("the newest event"))
            .expect("a JSON event");
    assert_eq!(first["deployment"]["name"], "followed");
    home.ok(&["scale", "other", "--replicas", "2", "--wait"]);
    home.ok(&["scale", "followed", "--replicas", "2", "--wait"]);
    let scale = wait_for("the scale event of followed", DEADLINE, || {
        let line = lines_rx.recv_timeout(Duration::from_millis(100)).ok()?;
        let event: Value = serde_json::from_str(&line).expect("a JSON event");
        assert_eq!(
            event["deployment"]["name"], "followed",
            "only followed's events: {event:#}"
        );
        (event["action"] == "scale").then_some(event)
    });
    assert_eq!(scale["user"].as_str(), Some(current_user().as_str()));

    let _ = child.kill();
    let _ = child.wait();
    home.finish();
}

#[test]
fn parallel_clients_share_one_agent() {
    let home = TestHome::new();
    let children: Vec<std::process::Child> = (0..8)
        .map(|_| {
            home.command(&["ls", "-o", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a client")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("client output");
        assert!(
            output.status.success(),
            "a parallel client failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let list: Value = serde_json::from_slice(&output.stdout).expect("JSON list");
        assert_eq!(list, Value::Array(Vec::new()));
    }

    let pid = home.agent_pid().expect("agent pid");
    let status = home.json(&["agent", "status"]);
    assert_eq!(
        status["pid"].as_i64(),
        Some(i64::from(pid)),
        "one agent answers: {status:#}"
    );
    let agents = agent_processes(&home);
    assert_eq!(agents, vec![pid], "agent processes of this home");
    home.finish();
}

/// Pids of `shipdeck --home HOME agent` processes.
fn agent_processes(home: &TestHome) -> Vec<i32> {
    let wanted = home.home().as_os_str().as_encoded_bytes().to_vec();
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.contains(&wanted.as_slice()) && args.contains(&b"agent".as_slice())
        })
        .filter(|pid| process_alive(*pid))
        .collect();
    pids.sort_unstable();
    pids
}

#[test]
fn sigkill_during_rollout_resumes_it() {
    let home = TestHome::new();
    let base = free_ports(1);
    let slow = sample_manifest("midway", 2, base, "second").replace(
        "\"--log-rate\", \"0\"",
        "\"--log-rate\", \"0\", \"--ready-delay\", \"3s\"",
    ) + "strategy: { progressDeadlineSeconds: 30 }\n";
    let first = home.write("midway.yaml", &sample_manifest("midway", 2, base, "first"));
    let slow = home.write("midway-slow.yaml", &slow);
    home.ok(&["deploy", "-f", first.to_str().expect("path"), "--wait"]);
    let history_before = home.json(&["history", "midway"]);

    home.ok(&["redeploy", "midway", "-f", slow.to_str().expect("path")]);
    let agent = home.agent_pid().expect("agent pid");
    kill9(agent);
    home.wait_agent_dead(agent);

    // The next agent starts revision 1 again and serves it through the
    // stable port while the replicas of revision 2 get ready beside it.
    let serving = wait_for_value(Duration::from_secs(3), || {
        let deployment = home.get("midway", &[]);
        let replicas = deployment["replicaDetails"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let old_ready = replicas
            .iter()
            .any(|r| r["revision"] == 1 && r["ready"] == true);
        let new_ready = replicas
            .iter()
            .any(|r| r["revision"] == 2 && r["ready"] == true);
        if old_ready && !new_ready {
            Ok(deployment)
        } else {
            Err(deployment)
        }
    })
    .unwrap_or_else(|last| {
        panic!("no ready replica of revision 1 within 3 s of the restart: {last:#}")
    });
    let old_ports: Vec<u16> = serving["replicaDetails"]
        .as_array()
        .expect("replicaDetails")
        .iter()
        .filter(|r| r["revision"] == 1 && r["ready"] == true)
        .filter_map(|r| r["port"].as_u64().and_then(|p| u16::try_from(p).ok()))
        .collect();
    for port in &old_ports {
        assert!(
            wait_http_ok(*port, "/").contains("first"),
            "replica port {port} of revision 1 serves it"
        );
    }
    let body = wait_http_ok(base, "/");
    let still_old = home.get("midway", &[])["replicaDetails"]
        .as_array()
        .expect("replicaDetails")
        .iter()
        .all(|r| r["revision"] != 2 || r["ready"] != true);
    // The body must come from revision 1 only if no replica of revision 2
    // was ready after the request, so the check is skipped otherwise.
    if still_old {
        assert!(
            body.contains("first"),
            "stable port serves revision 1: {body:?}"
        );
    }

    // The next agent finishes the rollout of revision 2.
    let deployment = wait_for("revision 2 to be deployed", DEADLINE, || {
        let deployment = home.get("midway", &[]);
        (deployment["revision"] == 2
            && deployment["status"] == "deployed"
            && replica_counts(&deployment) == (2, 2))
            .then_some(deployment)
    });
    assert_eq!(endpoint_ports(&deployment), vec![base]);
    for port in replica_ports(&deployment) {
        assert!(
            wait_http_ok(port, "/").contains("second"),
            "replica port {port} serves revision 2"
        );
    }
    assert_every_response(base, "second", 4);
    assert_eq!(replica_pids(&deployment).len(), 2);
    wait_for("replicas of revision 1 to exit", DEADLINE, || {
        (home.marked_pids().len() == 2).then_some(())
    });
    for port in &old_ports {
        wait_port_closed(*port);
    }

    let history = home.json(&["history", "midway"]);
    assert_eq!(history[0]["revision"], 2, "{history:#}");
    assert_eq!(history[0]["status"], "deployed", "{history:#}");
    assert_eq!(history[1]["revision"], history_before[0]["revision"]);
    assert_eq!(history[1]["createdAt"], history_before[0]["createdAt"]);
    home.finish();
}

#[test]
fn build_processes_end_with_agent() {
    let home = TestHome::new();
    home.write("project/app.txt", "app\n");
    let archive = home.work().join("project.tar");
    sh(
        &home.work().join("project"),
        "tar",
        &["-cf", archive.to_str().expect("path"), "."],
    );
    let manifest = home.write(
        "slow-build.yaml",
        &format!(
            "name: slowbuild\nsource: {{type: tar, url: {}}}\nbuild:\n  command: [sh, -c, \"sleep 60; echo done\"]\nrun:\n  command: [\"sleep\", \"100\"]\n",
            archive.display()
        ),
    );
    home.ok(&["deploy", "-f", manifest.to_str().expect("path")]);
    let first = wait_for("the build's shell and sleep to run", DEADLINE, || {
        let pids = home.marked_pids();
        (pids.len() == 2).then_some(pids)
    });

    // A graceful stop ends the whole build, not only its shell.
    home.ok(&["agent", "stop"]);
    home.wait_no_marked("build processes to end with `agent stop`");

    // The next agent builds again; SIGKILL then leaves the sleep behind
    // until the agent after it ends it.
    assert_eq!(home.get("slowbuild", &[])["status"], "building");
    let second = wait_for("the build to run again", DEADLINE, || {
        let pids = home.marked_pids();
        (pids.len() == 2 && pids != first).then_some(pids)
    });
    let agent = home.agent_pid().expect("agent pid");
    kill9(agent);
    home.wait_agent_dead(agent);
    assert_eq!(home.get("slowbuild", &[])["status"], "building");
    let third = wait_for("exactly one build after the restart", DEADLINE, || {
        let pids = home.marked_pids();
        (pids.len() == 2 && pids.iter().all(|pid| !second.contains(pid))).then_some(pids)
    });
    assert_eq!(third.len(), 2, "build processes: {third:?}");
    home.finish();
}
