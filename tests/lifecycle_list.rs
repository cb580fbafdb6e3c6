//! `shipdeck ls` filters, order and paging, and the output formats, over
//! deployments of `sleep` in several environments.

mod common;

use common::*;
use saphyr::LoadableYamlNode;
use serde_json::Value;

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("ls returns a list")
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["environment"].as_str().unwrap_or("?"),
                d["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn deploy_sleep(home: &TestHome, name: &str, env: &str, tags: &str) {
    let file = home.write(
        &format!("{name}-{env}.yaml"),
        &format!(
            "name: {name}\nenvironment: {env}\nrun:\n  command: [\"sleep\", \"300\"]\nterminationGracePeriodSeconds: 1\ntags: [{tags}]\n"
        ),
    );
    home.ok(&["deploy", "-f", file.to_str().expect("path"), "--wait"]);
}

#[test]
fn list_filters_sort_and_page() {
    let home = TestHome::new();
    deploy_sleep(&home, "api", "staging", "backend, shop");
    deploy_sleep(&home, "web", "staging", "frontend, shop");
    deploy_sleep(&home, "api", "production", "backend");
    deploy_sleep(&home, "worker", "production", "backend, batch");

    assert_eq!(
        names(&home.json(&["ls"])),
        vec![
            "production/api",
            "staging/api",
            "staging/web",
            "production/worker"
        ],
        "default order is by name, then environment"
    );
    assert_eq!(
        names(&home.json(&["ls", "--env", "staging"])),
        vec!["staging/api", "staging/web"]
    );
    assert_eq!(
        names(&home.json(&["ls", "--name", "ork"])),
        vec!["production/worker"]
    );
    assert_eq!(
        names(&home.json(&["ls", "--tag", "backend", "--tag", "shop"])),
        vec!["staging/api"],
        "every given tag is required"
    );
    assert_eq!(
        names(&home.json(&["ls", "--sort", "createdAt"])),
        vec![
            "staging/api",
            "staging/web",
            "production/api",
            "production/worker"
        ]
    );
    assert_eq!(
        names(&home.json(&["ls", "--sort", "createdAt", "--desc", "--limit", "2"])),
        vec!["production/worker", "production/api"]
    );
    assert_eq!(
        names(&home.json(&["ls", "--sort", "name", "--offset", "1", "--limit", "2"])),
        vec!["staging/api", "staging/web"]
    );

    home.ok(&["undeploy", "web", "--wait"]);
    assert_eq!(
        names(&home.json(&["ls", "--status", "undeployed"])),
        vec!["staging/web"]
    );
    assert_eq!(
        names(&home.json(&["ls", "--env", "staging"])),
        vec!["staging/api"]
    );
    assert_eq!(
        names(&home.json(&["ls", "--status", "deployed,undeployed", "--env", "staging"])),
        vec!["staging/api", "staging/web"]
    );

    let error = home.fails(&["ls", "--status", "sleeping"]);
    assert!(error.contains("sleeping"), "status in {error:?}");
    let error = home.fails(&["ls", "--sort", "size"]);
    assert!(error.contains("size"), "sort key in {error:?}");
    home.finish();
}

#[test]
fn output_formats() {
    let home = TestHome::new();
    deploy_sleep(&home, "fmt", "development", "example");

    let table = home.ok(&["ls"]);
    let header = table.lines().next().unwrap_or_default();
    for column in ["NAME", "ENVIRONMENT", "STATUS", "READY", "REVISION"] {
        assert!(header.contains(column), "table header {header:?}");
    }
    assert!(
        table.contains("fmt") && table.contains("1/1"),
        "table {table}"
    );

    // The YAML form must read back as the same data as the JSON form.
    let yaml = home.ok(&["get", "fmt", "-o", "yaml"]);
    let docs = saphyr::Yaml::load_from_str(&yaml).expect("valid YAML");
    let doc = &docs[0];
    assert_eq!(doc["name"].as_str(), Some("fmt"), "yaml {yaml}");
    assert_eq!(doc["status"].as_str(), Some("deployed"), "yaml {yaml}");
    assert_eq!(
        doc["replicas"]["ready"].as_integer(),
        Some(1),
        "yaml {yaml}"
    );

    let deployment = home.get("fmt", &[]);
    for field in [
        "id",
        "name",
        "environment",
        "backend",
        "status",
        "health",
        "version",
        "revision",
        "replicas",
        "endpoints",
        "createdAt",
        "updatedAt",
    ] {
        assert!(
            deployment.get(field).is_some(),
            "field {field} missing in {deployment:#}"
        );
    }
    // Without ports there is no stable endpoint and no private port.
    assert_eq!(deployment["endpoints"], Value::Array(Vec::new()));
    let replica = &deployment["replicaDetails"][0];
    assert_eq!(replica["index"], 0, "{deployment:#}");
    assert_eq!(replica["revision"], 1, "{deployment:#}");
    assert_eq!(replica["ready"], true, "{deployment:#}");
    assert!(replica["pid"].is_u64(), "pid in {deployment:#}");
    assert!(replica.get("port").is_none(), "port in {deployment:#}");

    let history = home.json(&["history", "fmt"]);
    for field in ["revision", "version", "status", "createdAt", "reason"] {
        assert!(
            history[0].get(field).is_some(),
            "history field {field} missing in {history:#}"
        );
    }

    let error = home.fails(&["ls", "-o", "xml"]);
    assert!(error.contains("xml"), "format in {error:?}");
    home.finish();
}
