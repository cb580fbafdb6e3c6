//! `shipdeck restart` against a real agent: one replica, every replica as
//! a rolling new revision, the errors and the operator event. Also the
//! manifest route that the dashboard's editor starts from.

mod common;

use common::*;
use serde_json::Value;
use shipdeck::api::client::Client;
use shipdeck::model::ManifestSource;

/// Returns the pid of replica `index`, leaving out stopping replicas.
fn pid_of(deployment: &Value, index: u64) -> Option<i64> {
    deployment["replicaDetails"]
        .as_array()?
        .iter()
        .filter(|replica| replica["state"] != "stopping")
        .find(|replica| replica["index"] == index)
        .and_then(|replica| replica["pid"].as_i64())
}

#[test]
fn restart_one_replica_then_all() {
    let home = TestHome::new();
    let manifest = home.write("web.yaml", &sample_manifest("web", 2, free_ports(1), "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let before = home.get("web", &[]);
    let first = pid_of(&before, 0).expect("replica 0 runs");
    let second = pid_of(&before, 1).expect("replica 1 runs");

    let output = home.ok(&["restart", "web", "--replica", "1", "--wait"]);
    assert!(output.contains("restarted replica 1"), "{output}");
    let after = wait_for("replica 1 replaced and ready", DEADLINE, || {
        let deployment = home.get("web", &[]);
        let replaced = pid_of(&deployment, 1).is_some_and(|pid| pid != second);
        (replaced && replica_counts(&deployment) == (2, 2)).then_some(deployment)
    });
    assert_eq!(pid_of(&after, 0), Some(first), "replica 0 keeps running");
    assert_eq!(after["revision"], 1, "a replica restart adds no revision");

    let events = home.json(&["events", "web"]);
    let restart = events
        .as_array()
        .expect("events")
        .iter()
        .find(|event| event["action"] == "restart")
        .expect("a restart event");
    assert_eq!(restart["message"], "replica 1");
    assert_eq!(restart["user"], current_user());

    let error = home.fails(&["restart", "web", "--replica", "5"]);
    assert!(error.contains("replica 5 does not exist"), "{error}");
    assert!(error.contains("replicas 0 to 1"), "{error}");

    let old: Vec<i64> = replica_pids(&home.get("web", &[]));
    let output = home.ok(&["restart", "web", "--wait"]);
    assert!(output.contains("restarted revision 2"), "{output}");
    let deployment = home.get("web", &[]);
    assert_eq!(deployment["status"], "deployed");
    let new = replica_pids(&deployment);
    assert_eq!(new.len(), 2);
    assert!(
        new.iter().all(|pid| !old.contains(pid)),
        "every replica was replaced: {old:?} -> {new:?}"
    );
    let history = home.json(&["history", "web"]);
    assert_eq!(history[0]["reason"], "restart of revision 1");
    home.finish();
}

#[test]
fn restart_unknown_deployment_fails() {
    let home = TestHome::new();
    home.ok(&["agent", "--detach"]);
    let error = home.fails(&["restart", "nope"]);
    assert!(error.contains("deployment \"nope\" not found"), "{error}");
    home.finish();
}

#[tokio::test(flavor = "current_thread")]
async fn manifest_route_returns_references() {
    let home = TestHome::new();
    let output = run_with_input(home.command(&["secrets", "set", "token"]), b"s3cret-value");
    assert!(output.status.success(), "{output:?}");
    let text = sample_manifest("web", 1, free_ports(1), "hi").replace(
        "  GREETING: hi\n",
        "  GREETING: hi\n  TOKEN: ${SECRET:token}\n",
    );
    let manifest = home.write("web.yaml", &text);
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    home.ok(&["scale", "web", "--replicas", "2", "--wait"]);

    let client = Client::new(&home.home().join("run/agent.sock"));
    let source: ManifestSource = client
        .get("/v1/deployments/web/manifest")
        .await
        .expect("the manifest route responds");
    assert_eq!((source.name.as_str(), source.revision), ("web", 1));
    assert!(source.text.contains("${SECRET:token}"), "{}", source.text);
    assert!(!source.text.contains("s3cret-value"), "{}", source.text);
    assert!(source.text.contains("replicas: 2"), "{}", source.text);
    let parsed = shipdeck::manifest::parse(&source.text, "source", &[]).expect("valid manifest");
    assert_eq!(parsed.replicas, 2);

    let error = client
        .get::<ManifestSource>("/v1/deployments/nope/manifest")
        .await
        .expect_err("no such deployment");
    assert!(error.to_string().contains("not found"), "{error}");
    home.finish();
}
