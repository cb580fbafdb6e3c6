//! Environment configs and templates through the real CLI and agent. The
//! tests cover the built-in ones on a fresh home, the precedence of every
//! layer as a replica's environment shows it, placeholders, template
//! management and rendering, and cycles. A rollback must reproduce its
//! revision's config while it picks up the current value of each secret.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// Reads the environment a replica started with from `/proc/PID/environ`.
fn replica_env(pid: i64) -> BTreeMap<String, String> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_else(|error| panic!("read /proc/{pid}/environ: {error}"));
    bytes
        .split(|byte| *byte == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (key, value) = text.split_once('=')?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Returns the environment of the one replica of deployment `name`.
fn only_replica_env(home: &TestHome, name: &str) -> BTreeMap<String, String> {
    let pids = replica_pids(&home.get(name, &[]));
    assert_eq!(pids.len(), 1, "replicas of {name}: {pids:?}");
    replica_env(pids[0])
}

fn path_arg(path: &std::path::Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Builds a manifest in `staging` that runs the sample workload with
/// `template` and `env` lines (each `KEY: value`, indented by the caller).
fn templated_manifest(name: &str, template: &str, env: &str) -> String {
    format!(
        r#"name: {name}
environment: staging
template: {template}
run:
  command: ["{SAMPLE}", "serve", "--log-rate", "0"]
env:
{env}terminationGracePeriodSeconds: 2
"#
    )
}

/// Builds a template whose port and health check fit the sample workload.
fn sample_template(env: &str) -> String {
    format!(
        "description: test template\nports:\n  - {{ name: http, containerPort: 8080 }}\n\
         healthCheck: {{ type: http, path: /healthz, port: http, periodSeconds: 1 }}\nenv:\n{env}"
    )
}

#[test]
fn fresh_home_has_built_ins() {
    let home = TestHome::new();
    let environments = home.json(&["env", "ls"]);
    let levels: BTreeMap<&str, (&str, &str)> = environments
        .as_array()
        .expect("a list")
        .iter()
        .map(|env| {
            (
                env["name"].as_str().expect("name"),
                (
                    env["config"]["LOG_LEVEL"].as_str().expect("LOG_LEVEL"),
                    env["config"]["NODE_ENV"].as_str().expect("NODE_ENV"),
                ),
            )
        })
        .collect();
    assert_eq!(levels["development"], ("debug", "development"));
    assert_eq!(levels["staging"], ("info", "staging"));
    assert_eq!(levels["production"], ("warn", "production"));
    assert_eq!(levels.len(), 3, "{environments:#}");

    let templates = home.json(&["template", "ls"]);
    let names: Vec<&str> = templates
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["api-service", "web-app"]);
    let web = home.ok(&["template", "show", "web-app"]);
    assert!(web.contains("NODE_ENV: ${ENVIRONMENT}"), "{web}");
    assert!(web.contains("${SECRET:session_secret}"), "{web}");

    // A removed or changed built-in stays as the user left it after a restart.
    home.ok(&["env", "rm", "development"]);
    home.ok(&["env", "set", "production", "LOG_LEVEL=error"]);
    home.ok(&["template", "rm", "api-service"]);
    home.ok(&["agent", "stop"]);
    let error = home.fails(&["env", "show", "development"]);
    assert!(error.contains("not found"), "{error}");
    let production = home.json(&["env", "show", "production"]);
    assert_eq!(production["config"]["LOG_LEVEL"], "error");
    let error = home.fails(&["template", "show", "api-service"]);
    assert!(error.contains("not found"), "{error}");
    home.finish();
}

#[test]
fn every_layer_in_precedence_order() {
    let home = TestHome::new();
    set_secret(&home, "layer_secret", "secret-from-vault");
    home.ok(&[
        "env",
        "set",
        "staging",
        "SAME=from-environment",
        "ONLY_ENVIRONMENT=e",
        "ENV_AND_TEMPLATE=from-environment",
    ]);
    let template = sample_template(
        "  SAME: from-template\n  ONLY_TEMPLATE: t\n  ENV_AND_TEMPLATE: from-template\n  \
         TEMPLATE_AND_MANIFEST: from-template\n  WHERE: ${ENVIRONMENT}-${REGION}\n  \
         TOKEN: ${SECRET:layer_secret}\n  LITERAL: $${REGION}\n",
    );
    let file = home.write("layers.yaml", &template);
    home.ok(&["template", "create", "layers", "-f", path_arg(&file)]);

    let manifest = templated_manifest(
        "layered",
        "layers",
        "  SAME: from-manifest\n  ONLY_MANIFEST: m\n  TEMPLATE_AND_MANIFEST: from-manifest\n  \
         MANIFEST_AND_SET: from-manifest\n",
    );
    let path = home.write("layered.yaml", &manifest);
    home.ok(&[
        "deploy",
        "-f",
        path_arg(&path),
        "--set",
        "env.SAME=from-set",
        "--set",
        "env.ONLY_SET=s",
        "--set",
        "env.MANIFEST_AND_SET=from-set",
        "--set",
        "var.REGION=eu",
        "--wait",
    ]);

    let env = only_replica_env(&home, "layered");
    let expected = [
        ("SAME", "from-set"),
        ("ONLY_ENVIRONMENT", "e"),
        ("ONLY_TEMPLATE", "t"),
        ("ONLY_MANIFEST", "m"),
        ("ONLY_SET", "s"),
        ("ENV_AND_TEMPLATE", "from-template"),
        ("TEMPLATE_AND_MANIFEST", "from-manifest"),
        ("MANIFEST_AND_SET", "from-set"),
        ("NODE_ENV", "staging"),
        ("LOG_LEVEL", "info"),
        ("WHERE", "staging-eu"),
        ("TOKEN", "secret-from-vault"),
        ("LITERAL", "${REGION}"),
    ];
    for (key, value) in expected {
        assert_eq!(env.get(key).map(String::as_str), Some(value), "{key}");
    }

    // The revision keeps the merged env with the secret as a reference.
    let history = home.json(&["history", "layered"]);
    let history_text = history.to_string();
    assert!(
        !history_text.contains("secret-from-vault"),
        "{history_text}"
    );
    let events = home.ok(&["events", "-o", "json"]);
    assert!(!events.contains("secret-from-vault"));
    home.finish();
}

#[test]
fn revision_stores_references_and_layers() {
    let home = TestHome::new();
    set_secret(&home, "session_secret", "s3ss");
    set_secret(&home, "database_url", "pg://db");
    let base = free_ports(1);
    let manifest = format!(
        "name: webby\nenvironment: production\ntemplate: web-app\nrun:\n  command: [\"{SAMPLE}\", \"serve\", \"--log-rate\", \"0\"]\n\
         ports:\n  - {{ name: http, containerPort: 8080, hostPort: {base} }}\nterminationGracePeriodSeconds: 2\n"
    );
    let path = home.write("webby.yaml", &manifest);
    home.ok(&["deploy", "-f", path_arg(&path), "--wait"]);

    let env = only_replica_env(&home, "webby");
    assert_eq!(env["NODE_ENV"], "production");
    assert_eq!(env["SESSION_SECRET"], "s3ss");
    assert_eq!(env["DATABASE_URL"], "pg://db");
    // The template's log level is above the environment's.
    assert_eq!(env["LOG_LEVEL"], "info");
    wait_http_ok(base, "/healthz");

    home.ok(&["agent", "stop"]);
    let references = files_containing(&home.home().join("db"), "${SECRET:session_secret}");
    assert!(!references.is_empty(), "the revision keeps the reference");
    for value in ["s3ss", "pg://db"] {
        let leaked = files_containing(home.home(), value);
        assert!(leaked.is_empty(), "{value} is in plain text in {leaked:?}");
    }
    home.finish();
}

#[test]
fn missing_secrets_of_all_layers_named() {
    let home = TestHome::new();
    home.ok(&["env", "set", "staging", "FROM_ENV=${SECRET:env_missing}"]);
    let file = home.write(
        "t.yaml",
        &sample_template("  FROM_TEMPLATE: ${SECRET:template_missing}\n"),
    );
    home.ok(&["template", "create", "needs", "-f", path_arg(&file)]);
    set_secret(&home, "present", "here");
    let manifest = templated_manifest(
        "needy",
        "needs",
        "  A: ${SECRET:manifest_missing}\n  B: ${SECRET:present}\n",
    );
    let path = home.write("needy.yaml", &manifest);
    let error = home.fails(&[
        "deploy",
        "-f",
        path_arg(&path),
        "--set",
        "env.C=${SECRET:set_missing}",
    ]);
    for name in [
        "env_missing",
        "template_missing",
        "manifest_missing",
        "set_missing",
    ] {
        assert!(error.contains(name), "{name}: {error}");
    }
    assert!(!error.contains("present"), "{error}");
    assert!(error.contains("secrets set"), "{error}");
    assert_eq!(home.json(&["ls"]), serde_json::json!([]));
    assert!(home.marked_pids().is_empty(), "nothing started");
    home.finish();
}

#[test]
fn bad_placeholders_and_names_rejected() {
    let home = TestHome::new();
    let file = home.write("t.yaml", &sample_template("  WHERE: ${REGION}\n"));
    home.ok(&["template", "create", "regional", "-f", path_arg(&file)]);
    let path = home.write(
        "m.yaml",
        &templated_manifest("regional", "regional", "  A: b\n"),
    );

    let error = home.fails(&["deploy", "-f", path_arg(&path)]);
    assert!(error.contains("${REGION}"), "{error}");
    assert!(error.contains("--set var.REGION="), "{error}");
    assert!(error.contains("template regional"), "{error}");

    let error = home.fails(&[
        "deploy",
        "-f",
        path_arg(&path),
        "--env",
        "stagin",
        "--set",
        "var.REGION=eu",
    ]);
    assert!(error.contains("\"stagin\""), "{error}");
    assert!(error.contains("did you mean \"staging\""), "{error}");
    assert!(
        error.contains("development, production, staging"),
        "{error}"
    );
    assert!(
        error.contains("shipdeck env set stagin KEY=VALUE"),
        "{error}"
    );

    let typo = home.write(
        "typo.yaml",
        &templated_manifest("typo", "regionl", "  A: b\n"),
    );
    let error = home.fails(&["deploy", "-f", path_arg(&typo)]);
    assert!(error.contains("\"regionl\" not found"), "{error}");
    assert!(error.contains("did you mean \"regional\""), "{error}");

    let error = home.fails(&["env", "set", "staging", "BROKEN=x ${OPEN"]);
    assert!(error.contains("BROKEN"), "{error}");
    assert!(error.contains("not closed"), "{error}");
    let error = home.fails(&["env", "set", "staging", "1BAD=x"]);
    assert!(error.contains("\"1BAD\""), "{error}");
    let error = home.fails(&[
        "deploy",
        "-f",
        path_arg(&path),
        "--set",
        "var.ENVIRONMENT=x",
    ]);
    assert!(error.contains("--env"), "{error}");

    assert_eq!(home.json(&["ls"]), serde_json::json!([]));
    home.finish();
}

#[test]
fn template_management_and_masked_render() {
    let home = TestHome::new();
    set_secret(&home, "session_secret", "very-secret-session");
    let base_file = home.write(
        "base.yaml",
        "description: base\nenv:\n  FROM_BASE: b\n  SHARED: base\n",
    );
    home.ok(&["template", "create", "base", "-f", path_arg(&base_file)]);
    let child_file = home.write(
        "child.yaml",
        "template: base\nenv:\n  SHARED: child\n  SESSION: x-${SECRET:session_secret}\n  \
         DB: ${SECRET:database_url}\n  WHERE: ${ENVIRONMENT}\n",
    );
    home.ok(&["template", "create", "child", "-f", path_arg(&child_file)]);

    let error = home.fails(&["template", "create", "child", "-f", path_arg(&child_file)]);
    assert!(error.contains("already exists"), "{error}");
    let error = home.fails(&["template", "update", "nobody", "-f", path_arg(&child_file)]);
    assert!(error.contains("not found"), "{error}");

    let listed = home.json(&["template", "ls"]);
    let child = listed
        .as_array()
        .expect("a list")
        .iter()
        .find(|t| t["name"] == "child")
        .expect("child listed");
    assert_eq!(child["parent"], "base");

    let rendered = home.ok(&[
        "template",
        "render",
        "child",
        "--env",
        "production",
        "--set",
        "env.EXTRA=${V}",
        "--set",
        "var.V=vee",
    ]);
    assert!(!rendered.contains("very-secret-session"), "{rendered}");
    assert!(rendered.contains("x-****"), "{rendered}");
    assert!(
        rendered.contains("missing secrets: database_url"),
        "{rendered}"
    );
    let json: Value = home.json(&["template", "render", "child", "--env", "production"]);
    assert_eq!(json["env"]["SHARED"], "child");
    assert_eq!(json["env"]["FROM_BASE"], "b");
    assert_eq!(json["env"]["WHERE"], "production");
    assert_eq!(json["env"]["LOG_LEVEL"], "warn");
    assert_eq!(json["missingSecrets"], serde_json::json!(["database_url"]));

    // A parent cannot go while a child extends it, and no cycle can form.
    let error = home.fails(&["template", "rm", "base"]);
    assert!(error.contains("child"), "{error}");
    let looped = home.write("loop.yaml", "template: child\n");
    let error = home.fails(&["template", "update", "base", "-f", path_arg(&looped)]);
    assert!(error.contains("base -> child -> base"), "{error}");
    let own = home.write("own.yaml", "template: own\n");
    let error = home.fails(&["template", "create", "own", "-f", path_arg(&own)]);
    assert!(error.contains("own -> own"), "{error}");
    let unknown = home.write("unknown.yaml", "env:\n  A: b\nport: 80\n");
    let error = home.fails(&["template", "create", "odd", "-f", path_arg(&unknown)]);
    assert!(error.contains("template odd:3:1"), "{error}");
    assert!(error.contains("did you mean `ports`"), "{error}");

    let updated = home.write("child2.yaml", "template: base\nenv:\n  SHARED: updated\n");
    home.ok(&["template", "update", "child", "-f", path_arg(&updated)]);
    assert!(home
        .ok(&["template", "show", "child"])
        .contains("SHARED: updated"));
    home.ok(&["template", "rm", "child"]);
    home.ok(&["template", "rm", "base"]);
    let error = home.fails(&["template", "show", "base"]);
    assert!(error.contains("not found"), "{error}");
    home.finish();
}

#[test]
fn rollback_keeps_config_and_takes_current_secret() {
    let home = TestHome::new();
    set_secret(&home, "rolling", "first-value");
    home.ok(&["env", "set", "qa", "CONFIG=v1", "TOKEN=${SECRET:rolling}"]);
    let file = home.write("plain.yaml", &sample_template("  X: y\n"));
    home.ok(&["template", "create", "plain", "-f", path_arg(&file)]);
    let manifest = templated_manifest("roller", "plain", "  A: b\n")
        .replace("environment: staging", "environment: qa");
    let path = home.write("roller.yaml", &manifest);
    home.ok(&["deploy", "-f", path_arg(&path), "--wait"]);
    let env = only_replica_env(&home, "roller");
    assert_eq!(env["CONFIG"], "v1");
    assert_eq!(env["TOKEN"], "first-value");

    home.ok(&["env", "set", "qa", "CONFIG=v2"]);
    set_secret(&home, "rolling", "second-value");
    home.ok(&["redeploy", "roller", "-f", path_arg(&path), "--wait"]);
    let env = only_replica_env(&home, "roller");
    assert_eq!(env["CONFIG"], "v2");
    assert_eq!(env["TOKEN"], "second-value");

    set_secret(&home, "rolling", "third-value");
    home.ok(&["rollback", "roller", "--to-revision", "1", "--wait"]);
    let env = wait_for("the rolled back replica", DEADLINE, || {
        let pids = replica_pids(&home.get("roller", &[]));
        let env = replica_env(*pids.first()?);
        (pids.len() == 1 && env.get("CONFIG").map(String::as_str) == Some("v1")).then_some(env)
    });
    assert_eq!(env["TOKEN"], "third-value");

    let error = home.fails(&["env", "rm", "qa"]);
    assert!(error.contains("roller"), "{error}");
    assert!(error.contains("undeploy"), "{error}");
    home.ok(&["undeploy", "roller", "--wait"]);
    home.ok(&["env", "rm", "qa"]);
    home.finish();
}

#[test]
fn redeploy_takes_current_config() {
    let home = TestHome::new();
    home.ok(&["env", "set", "staging", "CONFIG=v1"]);
    let file = home.write("plain.yaml", &sample_template("  X: first\n"));
    home.ok(&["template", "create", "plain", "-f", path_arg(&file)]);
    let path = home.write(
        "again.yaml",
        &templated_manifest("again", "plain", "  A: b\n"),
    );
    home.ok(&[
        "deploy",
        "-f",
        path_arg(&path),
        "--set",
        "env.FROM_SET=s",
        "--wait",
    ]);
    home.ok(&["scale", "again", "--replicas", "2", "--wait"]);

    home.ok(&["env", "set", "staging", "CONFIG=v2"]);
    let file = home.write("plain2.yaml", &sample_template("  X: second\n"));
    home.ok(&["template", "update", "plain", "-f", path_arg(&file)]);
    home.ok(&["redeploy", "again", "--wait"]);
    let deployment = home.get("again", &[]);
    assert_eq!(replica_counts(&deployment), (2, 2), "the scale stays");
    for pid in replica_pids(&deployment) {
        let env = replica_env(pid);
        assert_eq!(env["CONFIG"], "v2", "the environment's new value");
        assert_eq!(env["X"], "second", "the template's new value");
        assert_eq!(env["FROM_SET"], "s", "the deploy's --set");
        assert_eq!(env["A"], "b", "the manifest's own env");
    }

    home.ok(&["redeploy", "again", "--set", "replicas=1", "--wait"]);
    assert_eq!(replica_counts(&home.get("again", &[])), (1, 1));
    home.finish();
}
