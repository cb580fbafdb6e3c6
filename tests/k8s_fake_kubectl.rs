//! The fake Kubernetes API server against kubectl, a client written outside
//! this project: if kubectl can get, apply and delete through it, the fake speaks
//! the protocol closely enough for our own client's tests to mean
//! something.
//!
//! Each test skips (printing why) when kubectl is not installed, unless
//! `SHIPDECK_REQUIRE_KUBECTL=1`, which turns a missing kubectl into a
//! failure. What the fake does not cover (scheduling, admission, real
//! probes, RBAC) is listed in its module documentation.

mod k8s_fake;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use k8s_fake::FakeApiServer;
use serde_json::Value;

/// Returns whether kubectl runs here, failing when it must.
fn kubectl_available() -> bool {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|output| output.status.success());
    let required = std::env::var("SHIPDECK_REQUIRE_KUBECTL").is_ok_and(|v| v == "1");
    assert!(
        found || !required,
        "SHIPDECK_REQUIRE_KUBECTL=1 but `kubectl version --client` failed"
    );
    found
}

macro_rules! kubectl_or_skip {
    () => {
        if !kubectl_available() {
            eprintln!("skipped: kubectl is not installed");
            return;
        }
    };
}

/// Runs kubectl against the fake with a private discovery cache.
fn kubectl(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(["--request-timeout", "10s"])
        .args(args)
        .env("HOME", dir)
        .output()
        .expect("run kubectl")
}

fn succeed(output: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kubectl {what} failed: {stdout}\n{stderr}"
    );
    stdout
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: web:1
        ports: [{containerPort: 8080}]
"#;

#[test]
fn kubectl_applies_gets_and_deletes() {
    kubectl_or_skip!();
    let fake = FakeApiServer::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "default");
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).expect("write the manifest");
    let manifest = manifest.to_string_lossy().into_owned();

    let applied = succeed(
        kubectl(
            dir.path(),
            &kubeconfig,
            &["apply", "--server-side", "-f", &manifest],
        ),
        "apply --server-side",
    );
    assert!(
        applied.contains("deployment.apps/web serverside-applied"),
        "{applied}"
    );
    let apply = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("kubectl sent a PATCH");
    assert_eq!(
        apply.path,
        "/apis/apps/v1/namespaces/default/deployments/web"
    );
    assert_eq!(
        apply.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(apply.query_value("fieldManager"), Some("kubectl"));

    fake.wait_for("two ready pods", Duration::from_secs(10), |fake| {
        fake.object("deployments", "default", "web")
            .is_some_and(|d| d["status"]["readyReplicas"] == 2)
    });
    let listed = succeed(
        kubectl(
            dir.path(),
            &kubeconfig,
            &["get", "deployments", "-o", "json"],
        ),
        "get deployments",
    );
    let listed: Value = serde_json::from_str(&listed).expect("kubectl printed JSON");
    assert_eq!(listed["items"][0]["metadata"]["name"], "web");
    assert_eq!(listed["items"][0]["status"]["availableReplicas"], 2);

    let pods = succeed(
        kubectl(dir.path(), &kubeconfig, &["get", "pods", "-l", "app=web"]),
        "get pods",
    );
    assert_eq!(
        pods.lines().filter(|line| line.starts_with("web-")).count(),
        2,
        "{pods}"
    );

    let deleted = succeed(
        kubectl(dir.path(), &kubeconfig, &["delete", "deployment", "web"]),
        "delete",
    );
    assert!(
        deleted.contains("deployment.apps \"web\" deleted"),
        "{deleted}"
    );
    assert!(fake.object("deployments", "default", "web").is_none());
    assert!(fake.objects("pods", Some("default")).is_empty());
}

#[test]
fn kubectl_client_side_apply_creates_then_patches() {
    kubectl_or_skip!();
    let fake = FakeApiServer::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "default");
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).expect("write the manifest");
    let manifest_path = manifest.to_string_lossy().into_owned();

    let created = succeed(
        kubectl(dir.path(), &kubeconfig, &["apply", "-f", &manifest_path]),
        "apply (create)",
    );
    assert!(created.contains("deployment.apps/web created"), "{created}");

    std::fs::write(&manifest, DEPLOYMENT.replace("replicas: 2", "replicas: 3"))
        .expect("write the manifest");
    let configured = succeed(
        kubectl(dir.path(), &kubeconfig, &["apply", "-f", &manifest_path]),
        "apply (patch)",
    );
    assert!(
        configured.contains("deployment.apps/web configured"),
        "{configured}"
    );
    let stored = fake
        .object("deployments", "default", "web")
        .expect("the deployment exists");
    assert_eq!(stored["spec"]["replicas"], 3);
}

#[test]
fn kubectl_reads_logs_and_errors() {
    kubectl_or_skip!();
    let fake = FakeApiServer::start();
    fake.set_log_lines("web:1", &["hello from web"]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "default");
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).expect("write the manifest");
    succeed(
        kubectl(
            dir.path(),
            &kubeconfig,
            &["apply", "--server-side", "-f", &manifest.to_string_lossy()],
        ),
        "apply",
    );
    fake.wait_for("ready pods", Duration::from_secs(10), |fake| {
        fake.object("deployments", "default", "web")
            .is_some_and(|d| d["status"]["readyReplicas"] == 2)
    });
    let pod = fake.objects("pods", Some("default"))[0]["metadata"]["name"]
        .as_str()
        .expect("pod name")
        .to_owned();
    let logs = succeed(kubectl(dir.path(), &kubeconfig, &["logs", &pod]), "logs");
    assert_eq!(logs, "hello from web\n");

    let missing = kubectl(dir.path(), &kubeconfig, &["get", "deployment", "nothing"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("deployments.apps \"nothing\" not found"),
        "{stderr}"
    );

    fake.forbid("list", "secrets", Some("default"));
    let forbidden = kubectl(dir.path(), &kubeconfig, &["get", "secrets"]);
    let stderr = String::from_utf8_lossy(&forbidden.stderr);
    assert!(
        stderr.contains("cannot list resource \"secrets\""),
        "{stderr}"
    );
}

#[test]
fn kubectl_top_reads_pod_metrics() {
    kubectl_or_skip!();
    let fake = FakeApiServer::start();
    fake.set_usage(
        "web:1",
        k8s_fake::Usage {
            cpu_nanocores: 250_000_000,
            memory_bytes: 64 << 20,
        },
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "default");
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).expect("write the manifest");
    succeed(
        kubectl(
            dir.path(),
            &kubeconfig,
            &["apply", "--server-side", "-f", &manifest.to_string_lossy()],
        ),
        "apply",
    );
    fake.wait_for("ready pods", Duration::from_secs(10), |fake| {
        fake.object("deployments", "default", "web")
            .is_some_and(|d| d["status"]["readyReplicas"] == 2)
    });

    let top = succeed(
        kubectl(dir.path(), &kubeconfig, &["top", "pod", "-l", "app=web"]),
        "top pod",
    );
    let rows: Vec<Vec<&str>> = top
        .lines()
        .filter(|line| line.starts_with("web-"))
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{top}");
    for row in &rows {
        assert_eq!(row[1..], ["250m", "64Mi"], "{top}");
    }

    fake.set_metrics_api(k8s_fake::MetricsApi::NotRegistered);
    let missing = kubectl(dir.path(), &kubeconfig, &["top", "pod"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("Metrics API not available"), "{stderr}");
}

#[test]
fn kubectl_speaks_mutual_tls() {
    kubectl_or_skip!();
    use base64::Engine as _;

    let fake = FakeApiServer::start_tls();
    let issued = fake.client_certificate("kubectl-user");
    let dir = tempfile::tempdir().expect("temporary directory");
    let encode = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n{}users:\n- name: fake\n  user:\n    \
         client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: fake\n  context:\n    \
         cluster: fake\n    user: fake\ncurrent-context: fake\n",
        fake.kubeconfig_cluster(),
        encode(&issued.certificate_pem),
        encode(&issued.key_pem)
    );
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, config).expect("write the kubeconfig");

    let namespaces = succeed(
        kubectl(
            dir.path(),
            &kubeconfig,
            &["get", "namespaces", "-o", "name"],
        ),
        "get namespaces over TLS",
    );
    assert!(namespaces.contains("namespace/default"), "{namespaces}");
    let request = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/namespaces")
        .expect("the namespaces list");
    assert_eq!(
        request.client_certificate.as_deref(),
        Some(issued.der.as_slice())
    );
}
