//! Connecting to a cluster as kubectl would: merged KUBECONFIG files, the
//! current context and its namespace, the manifest's overrides, and exec
//! credential plugins without a terminal. Also the errors for an
//! unreachable cluster, failed authentication, a forbidden request and a
//! missing namespace. Clusters are fake API servers on 127.0.0.1.

mod k8s_fake;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_fake::FakeApiServer;
use shipdeck::backend::kubernetes::{
    connect, list_contexts, ClusterTarget, KubeEnvironment, KubeError, RequestScope,
};

const TIMEOUT: Duration = Duration::from_secs(5);

fn environment(files: &[&Path]) -> KubeEnvironment {
    KubeEnvironment {
        kubeconfig: Some(std::env::join_paths(files).expect("join paths")),
        home: None,
        in_cluster: false,
        exec_timeout: Duration::from_secs(5),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a file");
    path
}

/// Builds a kubeconfig with one cluster, user and context named `name`.
fn kubeconfig(
    name: &str,
    server: &str,
    namespace: Option<&str>,
    user: &str,
    current: Option<&str>,
) -> String {
    let namespace = namespace
        .map(|ns| format!("    namespace: {ns}\n"))
        .unwrap_or_default();
    let current = current
        .map(|c| format!("current-context: {c}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}\n\
         users:\n- name: {name}\n  user:\n{user}contexts:\n- name: {name}\n  context:\n    cluster: {name}\n    \
         user: {name}\n{namespace}{current}"
    )
}

/// Returns a port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn merged_kubeconfig_picks_current_context() {
    let first = FakeApiServer::start();
    let second = FakeApiServer::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let a = write(
        dir.path(),
        "a",
        &kubeconfig("a", &first.url(), Some("team"), "    {}\n", Some("a")),
    );
    // The second file's current-context loses to the first file's.
    let b = write(
        dir.path(),
        "b",
        &kubeconfig("b", &second.url(), None, "    {}\n", Some("b")),
    );
    let missing = dir.path().join("missing");
    let environment = environment(&[&a, &missing, &b]);

    let current = connect(&environment, &ClusterTarget::default())
        .await
        .expect("connect");
    assert_eq!(current.context, "a");
    assert_eq!(current.server, first.url());
    assert_eq!(current.namespace, "team");

    let target = ClusterTarget {
        context: Some("b".to_owned()),
        namespace: Some("shop".to_owned()),
    };
    let chosen = connect(&environment, &target).await.expect("connect to b");
    assert_eq!(chosen.context, "b");
    assert_eq!(chosen.server, second.url());
    assert_eq!(chosen.namespace, "shop");
    let version = chosen
        .server_version(TIMEOUT)
        .await
        .expect("the second cluster responds");
    assert_eq!(version, "v1.32.0-shipdeck-fake");
    assert!(
        first.requests().iter().all(|r| r.path != "/version"),
        "only the chosen cluster was asked"
    );

    let default_namespace = connect(
        &environment,
        &ClusterTarget {
            context: Some("b".to_owned()),
            namespace: None,
        },
    )
    .await
    .expect("connect to b");
    assert_eq!(default_namespace.namespace, "default");
}

#[tokio::test]
async fn missing_configuration_names_files() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let missing = dir.path().join("nothing-here");
    let error = connect(&environment(&[&missing]), &ClusterTarget::default())
        .await
        .expect_err("no kubeconfig");
    assert!(
        matches!(error, KubeError::NoConfiguration { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );

    let home = KubeEnvironment {
        home: Some(dir.path().to_owned()),
        ..environment(&[])
    };
    let home = KubeEnvironment {
        kubeconfig: None,
        ..home
    };
    let error = connect(&home, &ClusterTarget::default())
        .await
        .expect_err("no ~/.kube/config");
    assert!(error.to_string().contains(".kube/config"), "{error}");
}

#[tokio::test]
async fn unknown_context_lists_known_ones() {
    let fake = FakeApiServer::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let a = write(
        dir.path(),
        "a",
        &kubeconfig("a", &fake.url(), None, "    {}\n", None),
    );
    let environment = environment(&[&a]);

    let error = connect(&environment, &ClusterTarget::default())
        .await
        .expect_err("no current context");
    assert!(
        matches!(error, KubeError::NoCurrentContext { .. }),
        "{error:?}"
    );

    let target = ClusterTarget {
        context: Some("prod".to_owned()),
        namespace: None,
    };
    let error = connect(&environment, &target)
        .await
        .expect_err("unknown context");
    let text = error.to_string();
    assert!(text.contains("context \"prod\" not found"), "{text}");
    assert!(text.contains("known contexts: a"), "{text}");
}

#[tokio::test]
async fn unreachable_cluster_names_server() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = format!("http://127.0.0.1:{}", closed_port());
    let a = write(
        dir.path(),
        "a",
        &kubeconfig("a", &server, None, "    {}\n", Some("a")),
    );
    let connection = connect(&environment(&[&a]), &ClusterTarget::default())
        .await
        .expect("connect");
    let error = connection
        .server_version(TIMEOUT)
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, KubeError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains(&server), "{error}");
}

#[tokio::test]
async fn rejected_token_is_authentication_error() {
    let fake = FakeApiServer::start();
    fake.require_token("right");
    let dir = tempfile::tempdir().expect("temporary directory");
    let a = write(
        dir.path(),
        "a",
        &kubeconfig("a", &fake.url(), None, "    token: wrong\n", Some("a")),
    );
    let connection = connect(&environment(&[&a]), &ClusterTarget::default())
        .await
        .expect("connect");
    let error = connection
        .server_version(TIMEOUT)
        .await
        .expect_err("the token is wrong");
    assert!(matches!(error, KubeError::Unauthorized { .. }), "{error:?}");
    assert!(error.to_string().contains("401 Unauthorized"), "{error}");
}

#[tokio::test]
async fn forbidden_and_missing_namespace_errors() {
    let fake = FakeApiServer::start();
    fake.forbid("list", "deployments", Some("default"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let a = write(
        dir.path(),
        "a",
        &kubeconfig("a", &fake.url(), None, "    {}\n", Some("a")),
    );
    let connection = connect(&environment(&[&a]), &ClusterTarget::default())
        .await
        .expect("connect");

    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(connection.client().clone(), "default");
    let error = deployments
        .list(&Default::default())
        .await
        .expect_err("forbidden");
    let scope = RequestScope {
        verb: "list",
        resource: "deployments.apps",
        namespace: Some("default"),
    };
    let error = connection.classify(error, scope);
    let text = error.to_string();
    assert!(matches!(error, KubeError::Forbidden { .. }), "{error:?}");
    assert!(
        text.contains("may not list deployments.apps in namespace \"default\""),
        "{text}"
    );

    connection
        .ensure_namespace()
        .await
        .expect("the default namespace exists");
    let elsewhere = connect(
        &environment(&[&a]),
        &ClusterTarget {
            context: None,
            namespace: Some("nope".to_owned()),
        },
    )
    .await
    .expect("connect");
    let error = elsewhere
        .ensure_namespace()
        .await
        .expect_err("no such namespace");
    assert!(
        matches!(error, KubeError::NamespaceNotFound { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("kubectl create namespace nope"),
        "{error}"
    );
}

/// Writes an executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = write(dir, name, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the script executable");
    path
}

fn exec_user(command: &Path, extra: &str) -> String {
    format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n{extra}",
        command.display()
    )
}

#[tokio::test]
async fn exec_plugin_token_reaches_server() {
    let fake = FakeApiServer::start();
    fake.require_token("from-plugin");
    let dir = tempfile::tempdir().expect("temporary directory");
    let info = dir.path().join("exec-info");
    let plugin = script(
        dir.path(),
        "plugin",
        &format!(
            "printf '%s' \"$KUBERNETES_EXEC_INFO\" > {}\n\
             echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"from-plugin\"}}}}'",
            info.display()
        ),
    );
    let a = write(
        dir.path(),
        "a",
        &kubeconfig("a", &fake.url(), None, &exec_user(&plugin, ""), Some("a")),
    );
    let connection = connect(&environment(&[&a]), &ClusterTarget::default())
        .await
        .expect("connect");
    connection
        .server_version(TIMEOUT)
        .await
        .expect("the plugin's token is accepted");

    let request = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/version")
        .expect("a version request");
    assert_eq!(request.authorization.as_deref(), Some("Bearer from-plugin"));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info).expect("the plugin wrote its input"))
            .expect("JSON");
    assert_eq!(info["spec"]["interactive"], false);
    assert_eq!(info["kind"], "ExecCredential");
}

#[tokio::test]
async fn exec_plugin_waiting_for_input_fails() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = format!("http://127.0.0.1:{}", closed_port());

    // Standard input is closed, so a prompt reads end of file at once.
    let prompt = script(
        dir.path(),
        "prompt",
        "echo 'password:' >&2\nread answer || exit 3\necho '{}'",
    );
    let a = write(
        dir.path(),
        "a",
        &kubeconfig("a", &server, None, &exec_user(&prompt, ""), Some("a")),
    );
    let error = connect(&environment(&[&a]), &ClusterTarget::default())
        .await
        .expect_err("no input");
    assert!(matches!(error, KubeError::ExecFailed { .. }), "{error:?}");
    assert!(error.to_string().contains("password:"), "{error}");

    let pid_file = dir.path().join("pid");
    let child_file = dir.path().join("child");
    let waiting = script(
        dir.path(),
        "waiting",
        &format!(
            "echo $$ > {}\nsleep 30 &\necho $! > {}\nwait",
            pid_file.display(),
            child_file.display()
        ),
    );
    let b = write(
        dir.path(),
        "b",
        &kubeconfig("b", &server, None, &exec_user(&waiting, ""), Some("b")),
    );
    let quick = KubeEnvironment {
        exec_timeout: Duration::from_millis(500),
        ..environment(&[&b])
    };
    let error = connect(&quick, &ClusterTarget::default())
        .await
        .expect_err("the plugin hangs");
    assert!(matches!(error, KubeError::ExecTimedOut { .. }), "{error:?}");
    for file in [&pid_file, &child_file] {
        let pid = std::fs::read_to_string(file).expect("the plugin wrote a pid");
        wait_until_gone(pid.trim());
    }

    let always = exec_user(&prompt, "      interactiveMode: Always\n");
    let c = write(
        dir.path(),
        "c",
        &kubeconfig("c", &server, None, &always, Some("c")),
    );
    let error = connect(&environment(&[&c]), &ClusterTarget::default())
        .await
        .expect_err("interactive");
    assert!(
        matches!(error, KubeError::ExecInteractive { .. }),
        "{error:?}"
    );
}

/// Waits until process `pid` has ended (a zombie counts as ended).
fn wait_until_gone(pid: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        if matches!(state, None | Some("Z")) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} of the timed-out plugin still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn contexts_report_which_respond() {
    let fake = FakeApiServer::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let up = write(
        dir.path(),
        "up",
        &kubeconfig("up", &fake.url(), Some("team"), "    {}\n", Some("up")),
    );
    let server = format!("http://127.0.0.1:{}", closed_port());
    let down = write(
        dir.path(),
        "down",
        &kubeconfig("down", &server, None, "    {}\n", None),
    );

    let statuses = list_contexts(&environment(&[&up, &down]), TIMEOUT)
        .await
        .expect("list");
    let names: Vec<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["up", "down"]);
    assert!(statuses[0].current);
    assert_eq!(statuses[0].namespace, "team");
    assert_eq!(
        statuses[0].version.as_deref(),
        Some("v1.32.0-shipdeck-fake")
    );
    assert!(!statuses[1].current);
    assert_eq!(statuses[1].version, None);
    let error = statuses[1].error.clone().unwrap_or_default();
    assert!(error.contains("unreachable"), "{error}");
}

#[test]
fn contexts_command_prints_table() {
    let fake = FakeApiServer::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let up = write(
        dir.path(),
        "up",
        &kubeconfig("up", &fake.url(), None, "    {}\n", Some("up")),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_shipdeck"))
        .args(["contexts", "--timeout", "5s"])
        .env("KUBECONFIG", OsString::from(&up))
        .env("SHIPDECK_HOME", dir.path().join("home"))
        .output()
        .expect("run shipdeck contexts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row = stdout.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with("*"), "{stdout}");
    assert!(row.contains("up"), "{stdout}");
    assert!(row.contains("yes (v1.32.0-shipdeck-fake)"), "{stdout}");
}

/// An exec plugin may return a client certificate instead of a token; the
/// client then presents it in the TLS handshake. The fake records the
/// certificate but does not authenticate by it, so the test checks the
/// certificate that arrived.
#[tokio::test]
async fn exec_plugin_certificate_reaches_server() {
    let fake = FakeApiServer::start_tls();
    let issued = fake.client_certificate("shipdeck-test");
    let dir = tempfile::tempdir().expect("temporary directory");
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": issued.certificate_pem,
            "clientKeyData": issued.key_pem,
            "expirationTimestamp": "2099-01-01T00:00:00Z",
        },
    });
    let output = write(dir.path(), "credential.json", &credential.to_string());
    let plugin = script(dir.path(), "plugin", &format!("cat {}", output.display()));
    let user = exec_user(&plugin, "");
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n{}users:\n- name: a\n  user:\n{user}\
         contexts:\n- name: a\n  context:\n    cluster: a\n    user: a\ncurrent-context: a\n",
        fake.kubeconfig_cluster()
    );
    let a = write(dir.path(), "a", &config);

    let connection = connect(&environment(&[&a]), &ClusterTarget::default())
        .await
        .expect("connect");
    connection
        .server_version(TIMEOUT)
        .await
        .expect("the server answers over TLS");

    let request = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/version")
        .expect("a version request");
    assert_eq!(
        request.client_certificate.as_deref(),
        Some(issued.der.as_slice()),
        "the plugin's certificate was presented"
    );
    assert_eq!(request.authorization, None, "no token came with it");
}

#[tokio::test]
async fn exec_plugin_half_certificate_rejected() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let plugin = script(
        dir.path(),
        "plugin",
        "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\
         \"status\":{\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\"}}'",
    );
    let server = format!("http://127.0.0.1:{}", closed_port());
    let a = write(
        dir.path(),
        "a",
        &kubeconfig("a", &server, None, &exec_user(&plugin, ""), Some("a")),
    );
    let error = connect(&environment(&[&a]), &ClusterTarget::default())
        .await
        .expect_err("a certificate without its key");
    let text = error.to_string();
    assert!(matches!(error, KubeError::ExecOutput { .. }), "{error:?}");
    assert!(text.contains("no status.clientKeyData"), "{text}");
    assert!(text.contains("must return both"), "{text}");
}
