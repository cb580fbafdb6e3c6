//! Alert rules added through the CLI and the API, alert states and silences
//! that survive an agent restart, and the notifications of deployment
//! outcomes, all against a real agent and a webhook receiver on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Sends one HTTP/1.1 request with a JSON body on the agent's Unix socket
/// and returns the status and the body.
fn api(home: &TestHome, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut stream = UnixStream::connect(home.home().join("run/agent.sock"))
        .expect("connect to the agent socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: shipdeck\r\nConnection: close\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    parse_response(&response).expect("an HTTP response")
}

/// Returns the next notification, failing the test when none arrives.
fn next(received: &mpsc::Receiver<Value>, kind: &str) -> Value {
    received
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("no {kind} notification arrived"))
}

fn rule_names(rules: &Value, source: &str) -> Vec<String> {
    rules
        .as_array()
        .expect("a list of rules")
        .iter()
        .filter(|view| view["source"] == source)
        .filter_map(|view| view["rule"]["name"].as_str().map(str::to_owned))
        .collect()
}

const UP_MANIFEST: &str = "name: up\nrun:\n  command: [sleep, \"1000\"]\nmonitoring:\n  interval: 1s\n  alerts:\n    - { name: running, metric: replicas_desired, condition: gte, threshold: 1 }\n";

#[test]
fn rules_crud_through_the_cli() {
    let home = TestHome::new();
    let path = home.write("up.yaml", UP_MANIFEST);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    let add = [
        "alerts",
        "add",
        "up",
        "ready",
        "--metric",
        "replicas_ready",
        "--condition",
        "lt",
        "--threshold",
        "1",
        "--for",
        "3s",
        "--severity",
        "high",
    ];
    home.ok(&add);
    let error = home.fails(&add);
    assert!(
        error.contains("already has an alert rule named \"ready\""),
        "{error}"
    );
    let mut replace = add.to_vec();
    replace.extend(["--repeat-interval", "10m", "--replace"]);
    home.ok(&replace);

    let rules = home.json(&["alerts", "rules", "up"]);
    assert_eq!(rule_names(&rules, "manifest"), ["running"], "{rules:#}");
    assert_eq!(rule_names(&rules, "api"), ["ready"], "{rules:#}");
    let ready = &rules[1]["rule"];
    assert_eq!(ready["condition"], "lt", "{rules:#}");
    assert_eq!(ready["threshold"], 1.0, "{rules:#}");
    assert_eq!(ready["for"], "3s", "{rules:#}");
    assert_eq!(ready["repeatInterval"], "10m", "{rules:#}");
    assert_eq!(ready["severity"], "high", "{rules:#}");
    let table = home.ok(&["alerts", "rules", "up"]);
    assert!(table.contains("replicas_ready lt 1"), "{table}");

    // A redeploy makes a new revision; the API rule belongs to the deployment.
    home.ok(&["redeploy", "up", "--wait"]);
    let rules = home.json(&["alerts", "rules", "up"]);
    assert_eq!(rule_names(&rules, "api"), ["ready"], "{rules:#}");

    home.ok(&["alerts", "rm", "up", "ready"]);
    let rules = home.json(&["alerts", "rules", "up"]);
    assert!(rule_names(&rules, "api").is_empty(), "{rules:#}");
    let error = home.fails(&["alerts", "rm", "up", "ready"]);
    assert!(error.contains("no alert rule named \"ready\""), "{error}");

    let events = home.json(&["events", "up"]);
    let actions: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["action"].as_str())
        .collect();
    for action in [
        "alert-rule-added",
        "alert-rule-replaced",
        "alert-rule-removed",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    home.finish();
}

#[test]
fn bad_rules_get_clear_errors_from_the_cli() {
    let home = TestHome::new();
    let path = home.write("up.yaml", UP_MANIFEST);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let add = |rule: &str, metric: &str, condition: &str, threshold: &str| {
        vec![
            "alerts".to_owned(),
            "add".to_owned(),
            "up".to_owned(),
            rule.to_owned(),
            "--metric".to_owned(),
            metric.to_owned(),
            "--condition".to_owned(),
            condition.to_owned(),
            "--threshold".to_owned(),
            threshold.to_owned(),
        ]
    };
    let fails = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        home.fails(&args)
    };

    let error = fails(add("r", "replicas_ready", "gt", "abc"));
    assert!(error.contains("--threshold \"abc\""), "{error}");
    assert!(error.contains("not a number"), "{error}");
    let error = fails(add("r", "replicas_ready", "gt", "inf"));
    assert!(error.contains("not a finite number"), "{error}");
    let error = fails(add("r", "cpu_percentag", "gt", "50"));
    assert!(error.contains("unknown metric `cpu_percentag`"), "{error}");
    assert!(error.contains("did you mean `cpu_percentage`"), "{error}");
    let error = fails(add("r", "replicas_ready", "above", "50"));
    assert!(error.contains("invalid --condition \"above\""), "{error}");
    let mut severity = add("r", "replicas_ready", "gt", "50");
    severity.extend(["--severity".to_owned(), "urgent".to_owned()]);
    let error = fails(severity);
    assert!(error.contains("unknown severity `urgent`"), "{error}");
    let mut repeat = add("r", "replicas_ready", "gt", "50");
    repeat.extend(["--repeat-interval".to_owned(), "0s".to_owned()]);
    let error = fails(repeat);
    assert!(error.contains("repeatInterval 0s"), "{error}");

    let error = fails(add("running", "replicas_ready", "gt", "50"));
    assert!(
        error.contains("rule \"running\" comes from the manifest of up"),
        "{error}"
    );
    let error = home.fails(&["alerts", "rm", "up", "running"]);
    assert!(
        error.contains("change the manifest and deploy it"),
        "{error}"
    );

    let mut unknown = add("r", "replicas_ready", "gt", "50");
    unknown[2] = "nobody".to_owned();
    let error = fails(unknown);
    assert!(error.contains("deployment \"nobody\" not found"), "{error}");
    let error = home.fails(&["alerts", "rules", "nobody"]);
    assert!(error.contains("deployment \"nobody\" not found"), "{error}");

    let rules = home.json(&["alerts", "rules", "up"]);
    assert!(
        rule_names(&rules, "api").is_empty(),
        "nothing stored: {rules:#}"
    );
    home.finish();
}

#[test]
fn rules_crud_through_the_api() {
    let home = TestHome::new();
    let path = home.write("up.yaml", UP_MANIFEST);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let rule = "/v1/deployments/up/alert-rules/ready";
    let body = r#"{"metric": "replicas_ready", "condition": "gte", "threshold": 1}"#;

    let (status, created) = api(&home, "PUT", rule, "", body);
    assert_eq!(status, 201, "{created}");
    let created: Value = serde_json::from_str(&created).expect("JSON");
    assert_eq!(created["source"], "api");
    assert_eq!(created["rule"]["name"], "ready");
    let (status, replaced) = api(&home, "PUT", rule, "", body);
    assert_eq!(status, 200, "{replaced}");
    let (status, error) = api(&home, "PUT", rule, "If-None-Match: *\r\n", body);
    assert_eq!(status, 412, "{error}");

    let (status, listed) = api(
        &home,
        "GET",
        "/v1/deployments/up/alert-rules?env=development",
        "",
        "",
    );
    assert_eq!(status, 200, "{listed}");
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(rule_names(&listed, "manifest"), ["running"], "{listed:#}");
    assert_eq!(rule_names(&listed, "api"), ["ready"], "{listed:#}");

    let bad_threshold = r#"{"metric": "replicas_ready", "condition": "gte", "threshold": "abc"}"#;
    let (status, error) = api(&home, "PUT", rule, "", bad_threshold);
    assert_eq!(status, 422, "{error}");
    assert!(error.contains(r#"\"abc\""#), "{error}");
    let unknown_metric = r#"{"metric": "nope", "condition": "gte", "threshold": 1}"#;
    let (status, error) = api(&home, "PUT", rule, "", unknown_metric);
    assert_eq!(status, 422, "{error}");
    assert!(error.contains("unknown metric `nope`"), "{error}");
    let other_name =
        r#"{"name": "other", "metric": "cpu_usage", "condition": "gt", "threshold": 1}"#;
    let (status, error) = api(&home, "PUT", rule, "", other_name);
    assert_eq!(status, 400, "{error}");
    let manifest_rule = "/v1/deployments/up/alert-rules/running";
    let (status, error) = api(&home, "PUT", manifest_rule, "", body);
    assert_eq!(status, 409, "{error}");
    assert!(error.contains("comes from the manifest"), "{error}");
    let (status, error) = api(&home, "DELETE", manifest_rule, "", "");
    assert_eq!(status, 409, "{error}");
    let unknown = "/v1/deployments/nobody/alert-rules/ready";
    let (status, error) = api(&home, "PUT", unknown, "", body);
    assert_eq!(status, 404, "{error}");
    let (status, error) = api(&home, "GET", "/v1/deployments/nobody/alert-rules", "", "");
    assert_eq!(status, 404, "{error}");
    let (status, error) = api(&home, "PUT", &format!("{rule}?env=production"), "", body);
    assert_eq!(status, 404, "{error}");

    let (status, _) = api(&home, "DELETE", rule, "", "");
    assert_eq!(status, 204);
    let (status, error) = api(&home, "DELETE", rule, "", "");
    assert_eq!(status, 404, "{error}");
    home.finish();
}

#[test]
fn stored_rule_state_survives_restart() {
    let home = TestHome::new();
    let (port, received) = webhook_receiver(200);
    let url = format!("http://127.0.0.1:{port}/hook");
    home.ok(&["notify", "add", "ops", "--webhook", &url]);
    let manifest = "name: up\nrun:\n  command: [sleep, \"1000\"]\nmonitoring:\n  interval: 1s\n";
    let path = home.write("up.yaml", manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    // replicas_desired stays 1 across the restart, while replicas_ready
    // could drop for a moment as the replica restarts.
    for rule in ["loud", "quiet"] {
        home.ok(&[
            "alerts",
            "add",
            "up",
            rule,
            "--metric",
            "replicas_desired",
            "--condition",
            "gte",
            "--threshold",
            "1",
            "--notify",
            "ops",
        ]);
    }
    let mut titles: Vec<String> = (0..2)
        .map(|_| next(&received, "firing"))
        .map(|firing| {
            assert_eq!(firing["type"], "alert-firing", "{firing:#}");
            firing["title"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    titles.sort();
    assert!(titles[0].starts_with("loud firing"), "{titles:?}");
    assert!(titles[1].starts_with("quiet firing"), "{titles:?}");

    home.ok(&[
        "alerts",
        "silence",
        "up",
        "--rule",
        "quiet",
        "--for",
        "1h",
        "--comment",
        "maintenance",
    ]);
    let events = home.json(&["events", "up"]);
    let silenced = events
        .as_array()
        .and_then(|events| events.iter().find(|e| e["action"] == "alert-silenced"))
        .expect("an alert-silenced event")
        .clone();
    assert_eq!(
        silenced["user"].as_str(),
        Some(current_user().as_str()),
        "the operator who silenced, not the agent: {silenced:#}"
    );
    // One evaluation under the silence marks the firing alert as muted.
    std::thread::sleep(Duration::from_millis(2500));
    let before = home.json(&["alerts", "ls", "up"]);
    assert_eq!(before[1]["rule"], "quiet", "{before:#}");
    assert_eq!(before[1]["muted"], true, "{before:#}");

    let pid = home.agent_pid().expect("the agent runs");
    home.ok(&["agent", "stop"]);
    home.wait_agent_dead(pid);
    let after = home.json(&["alerts", "ls", "up"]);
    assert_ne!(home.agent_pid(), Some(pid), "a new agent runs");
    for index in 0..2 {
        assert_eq!(after[index]["rule"], before[index]["rule"], "{after:#}");
        assert_eq!(after[index]["state"], "firing", "{after:#}");
        assert_eq!(after[index]["since"], before[index]["since"], "{after:#}");
    }
    assert_eq!(after[1]["silenced"], true, "{after:#}");

    // Several evaluations run after the restart and send nothing.
    assert!(
        received.recv_timeout(Duration::from_secs(5)).is_err(),
        "no notification after the restart"
    );
    let later = home.json(&["alerts", "ls", "up"]);
    assert_ne!(later[0]["lastSample"], after[0]["lastSample"], "{later:#}");
    assert_eq!(
        later[0]["lastNotified"], before[0]["lastNotified"],
        "{later:#}"
    );

    // Removing the rule removes its alert.
    home.ok(&["alerts", "rm", "up", "loud"]);
    let remaining = home.json(&["alerts", "ls", "up"]);
    assert_eq!(remaining.as_array().map(Vec::len), Some(1), "{remaining:#}");
    assert_eq!(remaining[0]["rule"], "quiet", "{remaining:#}");
    home.finish();
}

#[test]
fn deployment_outcomes_reach_the_manifest_channels() {
    let home = TestHome::new();
    let (port, received) = webhook_receiver(200);
    let url = format!("http://127.0.0.1:{port}/hook");
    home.ok(&["notify", "add", "deploys", "--webhook", &url]);
    let healthy = format!(
        "name: web\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"]\nports: [{{ containerPort: 8080 }}]\nhealthCheck: {{ type: tcp, port: 8080, periodSeconds: 1 }}\nmonitoring:\n  notifications: [deploys]\n"
    );
    let exits = "run:\n  command: [sh, -c, \"exit 3\"]\nports: [{ containerPort: 8080 }]\nhealthCheck: { type: tcp, port: 8080, periodSeconds: 1 }\nmonitoring:\n  notifications: [deploys]\n";

    let path = home.write("web.yaml", &healthy);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let succeeded = next(&received, "deployment-succeeded");
    assert_eq!(succeeded["type"], "deployment-succeeded", "{succeeded:#}");
    assert_eq!(succeeded["severity"], "low", "{succeeded:#}");
    assert_eq!(succeeded["deployment"], "web", "{succeeded:#}");
    assert_eq!(succeeded["environment"], "development", "{succeeded:#}");
    assert!(
        succeeded["message"]
            .as_str()
            .is_some_and(|message| message.contains("revision 1 is ready")),
        "{succeeded:#}"
    );

    let broken = home.write("web-broken.yaml", &format!("name: web\n{exits}"));
    let error = home.fails(&["deploy", "-f", broken.to_str().unwrap(), "--wait"]);
    assert!(error.contains("reverted to revision 1"), "{error}");
    let reverted = next(&received, "deployment-reverted");
    assert_eq!(reverted["type"], "deployment-reverted", "{reverted:#}");
    assert_eq!(reverted["severity"], "high", "{reverted:#}");
    assert!(
        reverted["message"]
            .as_str()
            .is_some_and(|message| message.contains("exited")),
        "{reverted:#}"
    );

    home.ok(&["undeploy", "web", "--wait"]);
    let undeployed = next(&received, "deployment-undeployed");
    assert_eq!(
        undeployed["type"], "deployment-undeployed",
        "{undeployed:#}"
    );
    assert_eq!(undeployed["severity"], "low", "{undeployed:#}");

    let failing = home.write("bad.yaml", &format!("name: bad\n{exits}"));
    home.fails(&["deploy", "-f", failing.to_str().unwrap(), "--wait"]);
    let failed = next(&received, "deployment-failed");
    assert_eq!(failed["type"], "deployment-failed", "{failed:#}");
    assert_eq!(failed["deployment"], "bad", "{failed:#}");
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|message| message.contains("before it became ready")),
        "{failed:#}"
    );

    assert!(
        received.recv_timeout(Duration::from_secs(2)).is_err(),
        "one notification per outcome"
    );
    home.finish();
}

#[test]
fn deployment_outcome_without_channels_stays_in_app() {
    let home = TestHome::new();
    let path = home.write("up.yaml", UP_MANIFEST);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let history = wait_for("the in-app deployment notification", DEADLINE, || {
        let history = home.json(&["notify", "history"]);
        (history.as_array()?.len() == 1).then_some(history)
    });
    assert_eq!(history[0]["type"], "deployment-succeeded", "{history:#}");
    assert_eq!(history[0]["deployment"], "up", "{history:#}");

    let error = home.fails(&[
        "deploy",
        "-f",
        home.write(
            "empty-channel.yaml",
            "name: up\nrun:\n  command: [sleep, \"1000\"]\nmonitoring:\n  notifications: [\"\"]\n",
        )
        .to_str()
        .unwrap(),
    ]);
    assert!(error.contains("monitoring.notifications[0]"), "{error}");
    assert!(error.contains("channel name is empty"), "{error}");
    home.finish();
}

#[test]
fn silence_until_time_is_checked() {
    let home = TestHome::new();
    let manifest = "name: quiet\nrun:\n  command: [sleep, \"1000\"]\nmonitoring:\n  alerts:\n    - { name: up, metric: replicas_ready, condition: lt, threshold: 1 }\n";
    let path = home.write("quiet.yaml", manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    let later = later
        .replace_nanosecond(0)
        .expect("zero nanoseconds")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let output = home.ok(&[
        "alerts",
        "silence",
        "quiet",
        "--until",
        &later,
        "--comment",
        "upgrade",
    ]);
    assert!(output.contains(&later), "{output}");

    let error = home.fails(&[
        "alerts",
        "silence",
        "quiet",
        "--until",
        "2001-01-01T00:00:00Z",
        "--comment",
        "late",
    ]);
    assert!(error.contains("is in the past"), "{error}");
    let error = home.fails(&[
        "alerts",
        "silence",
        "quiet",
        "--until",
        "tomorrow",
        "--comment",
        "vague",
    ]);
    assert!(error.contains("not an RFC 3339 time"), "{error}");
    let error = home.fails(&["alerts", "silence", "quiet", "--comment", "open-ended"]);
    assert!(error.contains("--for"), "{error}");
    home.finish();
}

#[test]
fn silences_are_listed_checked_and_ended() {
    let home = TestHome::new();
    let path = home.write("up.yaml", UP_MANIFEST);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    let error = home.fails(&[
        "alerts",
        "silence",
        "up",
        "--rule",
        "nosuch",
        "--for",
        "1m",
        "--comment",
        "typo",
    ]);
    assert!(error.contains("no alert rule named \"nosuch\""), "{error}");
    assert!(
        error.contains("running"),
        "names the rules there are: {error}"
    );
    let error = home.fails(&[
        "alerts",
        "silence",
        "up",
        "--for",
        "31d",
        "--comment",
        "too long",
    ]);
    assert!(error.contains("at most 30 days"), "{error}");
    let error = home.fails(&[
        "alerts",
        "silence",
        "up",
        "--for",
        "0s",
        "--comment",
        "none",
    ]);
    assert!(error.contains("for is 0s"), "{error}");

    home.ok(&[
        "alerts",
        "silence",
        "up",
        "--rule",
        "running",
        "--for",
        "2h",
        "--comment",
        "deploy window",
    ]);
    let silences = home.json(&["alerts", "silences", "up"]);
    let list = silences.as_array().expect("a list");
    assert_eq!(list.len(), 1, "{silences:#}");
    assert_eq!(list[0]["comment"], "deploy window");
    assert_eq!(list[0]["target"]["rule"], "running");
    let id = list[0]["id"].as_str().expect("an id").to_owned();
    let table = home.ok(&["alerts", "silences"]);
    assert!(
        table.contains(&id) && table.contains("deploy window"),
        "{table}"
    );

    let alerts = wait_for("the alert listed as silenced", DEADLINE, || {
        let table = home.ok(&["alerts", "ls", "up"]);
        table.contains("silenced until").then_some(table)
    });
    assert!(alerts.contains("running"), "{alerts}");

    let error = home.fails(&["alerts", "unsilence", "up", "ffffffff"]);
    assert!(error.contains("no silence \"ffffffff\""), "{error}");
    home.ok(&["alerts", "unsilence", "up", &id]);
    let silences = home.json(&["alerts", "silences", "up"]);
    assert_eq!(silences.as_array().map(Vec::len), Some(0), "{silences:#}");
    home.finish();
}

#[test]
fn silenced_history_and_removed_rule() {
    let home = TestHome::new();
    let (port, received) = webhook_receiver(200);
    let url = format!("http://127.0.0.1:{port}/hook");
    home.ok(&["notify", "add", "ops", "--webhook", &url]);
    let manifest = "name: hist\nrun:\n  command: [sleep, \"1000\"]\nmonitoring:\n  interval: 1s\n";
    let path = home.write("hist.yaml", manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    // A silence set before the rule exists covers the whole deployment, so
    // the rule fires in silence: the history has it, the webhook does not.
    home.ok(&[
        "alerts",
        "silence",
        "hist",
        "--for",
        "1h",
        "--comment",
        "quiet",
    ]);
    let add = |rule: &str| {
        home.ok(&[
            "alerts",
            "add",
            "hist",
            rule,
            "--metric",
            "replicas_desired",
            "--condition",
            "gte",
            "--threshold",
            "1",
            "--notify",
            "ops",
        ]);
    };
    add("muted");
    let events = wait_for("a silenced firing in the history", DEADLINE, || {
        let events = home.ok(&["events", "hist"]);
        events
            .contains("silenced, so not notified")
            .then_some(events)
    });
    assert!(events.contains("alert-firing"), "{events}");

    let silences = home.json(&["alerts", "silences", "hist"]);
    let id = silences[0]["id"].as_str().expect("an id").to_owned();
    home.ok(&["alerts", "unsilence", "hist", &id]);
    let firing = next(&received, "firing after the silence");
    assert_eq!(firing["type"], "alert-firing", "{firing:#}");

    // Removing the firing rule sends the channel a resolved notification.
    home.ok(&["alerts", "rm", "hist", "muted"]);
    let resolved = next(&received, "resolved after removal");
    assert_eq!(resolved["type"], "alert-resolved", "{resolved:#}");
    let message = resolved["message"].as_str().unwrap_or_default();
    assert!(message.contains("its rule was removed"), "{message}");
    home.finish();
}

#[test]
fn rule_condition_signs_get_keywords() {
    let home = TestHome::new();
    let error = home.fails(&[
        "alerts",
        "add",
        "x",
        "y",
        "--metric",
        "cpu_usage",
        "--condition",
        ">=",
        "--threshold",
        "1",
    ]);
    assert!(error.contains("for >=, write gte"), "{error}");
    let error = home.fails(&[
        "alerts",
        "add",
        "x",
        "",
        "--metric",
        "cpu_usage",
        "--condition",
        "gt",
        "--threshold",
        "1",
    ]);
    assert!(error.contains("the rule name is empty"), "{error}");
}
