//! `backend: kubernetes` end to end: the real agent drives a fake API
//! server (see `k8s_fake` for what the fake does not cover: scheduling,
//! admission, real probes). Deploy, scale, automatic revert and undeploy
//! are checked both through the CLI and through the requests and objects
//! the fake saw.

mod common;
mod k8s_fake;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use k8s_fake::{FakeApiServer, FakeOptions, MetricsApi, PodBehavior, Usage};
use serde_json::Value;

/// A test home whose agent reads the fake's kubeconfig.
struct KubeHome {
    home: TestHome,
    fake: FakeApiServer,
}

impl KubeHome {
    fn start() -> Self {
        Self::start_with(FakeOptions::default())
    }

    fn start_with(options: FakeOptions) -> Self {
        let home = TestHome::new();
        let fake = FakeApiServer::start_with(options);
        fake.create_namespace("shop");
        let kube = KubeHome { home, fake };
        kube.start_agent();
        kube
    }

    /// Starts the agent with the fake's kubeconfig in its environment.
    fn start_agent(&self) {
        let kubeconfig: PathBuf = self.fake.write_kubeconfig(self.home.work(), "shop");
        let output = self
            .home
            .command(&["agent", "--detach"])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("start the agent");
        assert!(
            output.status.success(),
            "agent --detach: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn manifest(&self, image: &str, extra: &str) -> String {
        let text = format!(
            "name: web\nbackend: kubernetes\nimage: {image}\nreplicas: 2\n\
             ports: [{{ name: http, containerPort: 8080, hostPort: 80 }}]\n\
             strategy: {{ progressDeadlineSeconds: 3 }}\n{extra}"
        );
        let path = self.home.write(
            &format!("web-{}.yaml", image.replace([':', '/'], "-")),
            &text,
        );
        path.to_string_lossy().into_owned()
    }

    /// Returns the values of one series over the last minute, one point a second,
    /// oldest first; gaps are left out.
    fn values(&self, series: &str) -> Vec<f64> {
        let listed = self.home.json(&[
            "metrics", "web", "--metric", series, "--since", "1m", "--step", "1s",
        ]);
        listed[0]["points"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|point| point["value"].as_f64())
            .collect()
    }

    /// Returns the events of the deployment with `action`.
    fn events(&self, action: &str) -> Vec<Value> {
        let events = self.home.json(&["events", "web"]);
        events
            .as_array()
            .into_iter()
            .flatten()
            .filter(|event| event["action"] == action)
            .cloned()
            .collect()
    }

    fn pod_images(&self) -> Vec<String> {
        self.fake
            .objects("pods", Some("shop"))
            .iter()
            .map(|pod| {
                pod["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}

#[test]
fn deploy_scale_undeploy() {
    let kube = KubeHome::start();
    let manifest = kube.manifest("web:1", "");

    let result = kube.home.json(&["deploy", "-f", &manifest, "--wait"]);
    assert_eq!(result["deployment"]["status"], "deployed", "{result:#}");
    assert_eq!(result["deployment"]["backend"], "kubernetes");
    assert_eq!(kube.pod_images(), ["web:1", "web:1"]);

    let applies: Vec<k8s_fake::RecordedRequest> = kube
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    let paths: Vec<&str> = applies.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/apis/apps/v1/namespaces/shop/deployments/web-development",
            "/api/v1/namespaces/shop/services/web-development",
        ]
    );
    for request in &applies {
        assert_eq!(request.query_value("fieldManager"), Some("shipdeck"));
        assert_eq!(request.query_value("force"), Some("true"));
        assert_eq!(
            request.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
    }
    let watches = kube
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.is_watch())
        .count();
    assert!(
        watches >= 2,
        "the agent watches the Deployment and its pods"
    );

    let deployment = kube.home.get("web", &[]);
    assert_eq!(deployment["health"], "healthy", "{deployment:#}");
    let health = kube.home.json(&["health", "web"]);
    let checks = health["checks"].as_array().cloned().unwrap_or_default();
    assert!(
        checks.iter().any(|c| c["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("pod web-development-"))),
        "{health:#}"
    );

    kube.home.ok(&["scale", "web", "--replicas", "3", "--wait"]);
    assert_eq!(kube.pod_images().len(), 3);
    let stored = kube
        .fake
        .object("deployments", "shop", "web-development")
        .expect("deployment");
    assert_eq!(stored["spec"]["replicas"], 3);

    kube.home.ok(&["undeploy", "web", "--wait"]);
    assert!(kube
        .fake
        .object("deployments", "shop", "web-development")
        .is_none());
    assert!(kube
        .fake
        .object("services", "shop", "web-development")
        .is_none());
    assert!(kube.pod_images().is_empty());
    let deployment = kube.home.get("web", &[]);
    assert_eq!(deployment["status"], "undeployed");
    kube.home.finish();
}

#[test]
fn crash_loop_reverts_to_last_healthy() {
    let kube = KubeHome::start_with(FakeOptions {
        crash_interval: Duration::from_millis(200),
        ..FakeOptions::default()
    });
    kube.fake.set_behavior("web:crash", PodBehavior::CrashLoop);
    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:1", ""), "--wait"]);

    let failed = kube
        .home
        .run(&["deploy", "-f", &kube.manifest("web:crash", ""), "--wait"]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success(),
        "a crash-looping revision does not deploy"
    );
    assert!(stderr.contains("CrashLoopBackOff"), "{stderr}");
    assert!(stderr.contains("reverted to revision 1"), "{stderr}");

    kube.fake
        .wait_for("revision 1's pods only", Duration::from_secs(10), |fake| {
            let pods = fake.objects("pods", Some("shop"));
            pods.len() == 2
                && pods
                    .iter()
                    .all(|p| p["spec"]["containers"][0]["image"] == "web:1")
        });
    let deployment = kube.home.get("web", &[]);
    assert_eq!(deployment["status"], "deployed", "{deployment:#}");
    assert_eq!(deployment["revision"], 1);
    let events = wait_for(
        "the cluster's BackOff event in the timeline",
        DEADLINE,
        || {
            let events = kube.home.json(&["events", "web"]);
            let found = events.as_array().is_some_and(|all| {
                all.iter().any(|e| {
                    e["user"] == "cluster"
                        && e["action"] == "k8s-backoff"
                        && e["outcome"] == "error"
                })
            });
            found.then_some(events)
        },
    );
    let backoff = events
        .as_array()
        .and_then(|all| all.iter().find(|e| e["action"] == "k8s-backoff"))
        .cloned()
        .unwrap_or(Value::Null);
    let message = backoff["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("BackOff pod/web-development-"),
        "{backoff:#}"
    );

    let history = kube.home.json(&["history", "web"]);
    let second = history
        .as_array()
        .and_then(|h| h.iter().find(|r| r["revision"] == 2))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(second["status"], "failed", "{history:#}");
    kube.home.finish();
}

#[test]
fn progress_deadline_reverts_with_cluster_reason() {
    let kube = KubeHome::start();
    kube.fake.set_behavior("web:stuck", PodBehavior::Unready);
    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:1", ""), "--wait"]);

    let failed = kube
        .home
        .run(&["deploy", "-f", &kube.manifest("web:stuck", ""), "--wait"]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(stderr.contains("ProgressDeadlineExceeded"), "{stderr}");
    let deployment = kube.home.get("web", &[]);
    assert_eq!(deployment["revision"], 1, "{deployment:#}");
    kube.home.finish();
}

#[test]
fn failed_first_rollout_deletes_objects() {
    let kube = KubeHome::start();
    kube.fake.set_behavior("web:crash", PodBehavior::CrashLoop);
    let failed = kube
        .home
        .run(&["deploy", "-f", &kube.manifest("web:crash", ""), "--wait"]);
    assert!(!failed.status.success());
    let deployment = kube.home.get("web", &[]);
    assert_eq!(deployment["status"], "failed", "{deployment:#}");
    kube.fake
        .wait_for("no objects left", Duration::from_secs(10), |fake| {
            fake.objects("deployments", Some("shop")).is_empty()
                && fake.objects("pods", Some("shop")).is_empty()
        });
    kube.home.finish();
}

#[test]
fn unsupported_setting_rejected_before_storing() {
    let kube = KubeHome::start();
    let error = kube.home.fails(&[
        "deploy",
        "-f",
        &kube.manifest("web:1", "stopSignal: SIGINT\n"),
    ]);
    assert!(error.contains("stopSignal"), "{error}");
    assert!(
        kube.fake.requests().iter().all(|r| r.method != "PATCH"),
        "nothing was applied"
    );
    kube.home.finish();
}

#[test]
fn older_revision_secrets_deleted() {
    let kube = KubeHome::start();
    let output = run_with_input(
        kube.home.command(&["secrets", "set", "api_token"]),
        b"tok-1\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let extra = "env: { TOKEN: \"${SECRET:api_token}\" }\n";
    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:1", extra), "--wait"]);
    assert!(kube
        .fake
        .object("secrets", "shop", "web-development-env-r1")
        .is_some());

    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:2", extra), "--wait"]);
    let names: Vec<Value> = kube
        .fake
        .objects("secrets", Some("shop"))
        .iter()
        .map(|secret| secret["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [Value::from("web-development-env-r2")]);
    let pod = &kube.fake.objects("pods", Some("shop"))[0];
    let text = pod.to_string();
    assert!(
        !text.contains("tok-1"),
        "no secret value in the pod: {text}"
    );
    kube.home.finish();
}

#[test]
fn rollback_applies_stored_revision() {
    let kube = KubeHome::start();
    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:1", ""), "--wait"]);
    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:2", ""), "--wait"]);
    assert_eq!(kube.pod_images(), ["web:2", "web:2"]);

    let result = kube.home.json(&["rollback", "web", "--wait"]);
    assert_eq!(result["revision"], 3, "{result:#}");
    assert_eq!(kube.pod_images(), ["web:1", "web:1"]);
    let deployment = kube
        .fake
        .object("deployments", "shop", "web-development")
        .expect("deployment");
    assert_eq!(deployment["metadata"]["labels"]["shipdeck/revision"], "3");
    kube.home.finish();
}

#[test]
fn agent_restart_reads_cluster_state() {
    let kube = KubeHome::start();
    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:1", ""), "--wait"]);
    kube.home.ok(&["agent", "stop"]);
    assert_eq!(
        kube.pod_images().len(),
        2,
        "the cluster keeps running the pods"
    );

    kube.fake.clear_requests();
    kube.start_agent();
    let deployment = wait_for("the deployment to show healthy again", DEADLINE, || {
        let deployment = kube.home.get("web", &[]);
        (deployment["health"] == "healthy").then_some(deployment)
    });
    assert_eq!(deployment["status"], "deployed", "{deployment:#}");
    let writes: Vec<String> = kube
        .fake
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        writes.is_empty(),
        "a restarted agent reads, and writes nothing: {writes:?}"
    );
    kube.home.finish();
}

#[test]
fn pod_output_reaches_logs() {
    let kube = KubeHome::start_with(FakeOptions {
        crash_interval: Duration::from_millis(300),
        ..FakeOptions::default()
    });
    kube.fake.set_log_lines("web:1", &["hello from a pod"]);
    kube.fake.set_behavior("web:crash", PodBehavior::CrashLoop);
    kube.fake
        .set_log_lines("web:crash", &["booting the bad one"]);
    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:1", ""), "--wait"]);

    let pods: Vec<String> = kube
        .fake
        .objects("pods", Some("shop"))
        .iter()
        .map(|pod| {
            pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let text = wait_for("both pods' output in the logs", DEADLINE, || {
        let text = kube.home.ok(&["logs", "web"]);
        (text.matches("hello from a pod").count() == 2).then_some(text)
    });
    for pod in &pods {
        assert!(
            text.contains(pod.as_str()),
            "lines name their pod {pod}: {text}"
        );
    }

    let pod = &pods[0];
    kube.fake
        .write_log("shop", pod, "web", "a line written later");
    wait_for("a followed line", DEADLINE, || {
        kube.home
            .ok(&["logs", "web", "--replica", pod])
            .contains("a line written later")
            .then_some(())
    });

    let _ = kube
        .home
        .run(&["deploy", "-f", &kube.manifest("web:crash", ""), "--wait"]);
    let crashed = wait_for("the crashing revision's output", DEADLINE, || {
        let text = kube.home.ok(&["logs", "web", "--search", "fatal: exiting"]);
        (!text.trim().is_empty()).then_some(text)
    });
    assert!(crashed.contains("fatal: exiting"), "{crashed}");
    kube.home.finish();
}

#[test]
fn forbidden_watch_shows_in_health() {
    let kube = KubeHome::start();
    kube.fake.forbid("list", "pods", Some("shop"));
    kube.home.ok(&["deploy", "-f", &kube.manifest("web:1", "")]);

    let health = wait_for("the watch failure among the checks", DEADLINE, || {
        let health = kube.home.json(&["health", "web"]);
        let checks = health["checks"].as_array().cloned().unwrap_or_default();
        checks
            .iter()
            .any(|c| c["name"] == "watch")
            .then_some(health)
    });
    let checks = health["checks"].as_array().cloned().unwrap_or_default();
    let watch = checks
        .iter()
        .find(|c| c["name"] == "watch")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(watch["status"], "unhealthy", "{health:#}");
    let message = watch["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cannot list resource \"pods\""),
        "{message}"
    );
    let deployment = kube.home.get("web", &[]);
    assert_eq!(
        deployment["status"], "deploying",
        "no completion without the pods' watch"
    );
    kube.home.finish();
}

/// CPU and memory come from metrics.k8s.io. The fake reports the usage
/// scripted per image; it does not measure anything.
#[test]
fn pod_metrics_stored_and_outage_shown() {
    let kube = KubeHome::start();
    kube.fake.set_usage(
        "web:1",
        Usage {
            cpu_nanocores: 250_000_000,
            memory_bytes: 64 << 20,
        },
    );
    let extra =
        "resources:\n  limits: { cpu: 500m, memory: 128Mi }\nmonitoring: { interval: 1s }\n";
    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:1", extra), "--wait"]);

    let usage = wait_for("both pods' CPU in cpu_usage", DEADLINE, || {
        kube.values("cpu_usage")
            .last()
            .copied()
            .filter(|v| *v == 0.5)
    });
    assert_eq!(usage, 0.5, "two pods at 250m each");
    assert_eq!(kube.values("cpu_percentage").last(), Some(&50.0));
    let memory = f64::from(128u32 << 20);
    assert_eq!(kube.values("memory_usage").last(), Some(&memory));
    assert_eq!(kube.values("memory_percentage").last(), Some(&50.0));
    let fetch = kube
        .fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods")
        .expect("a list of the namespace's pod metrics");
    assert_eq!(fetch.method, "GET");
    let selector = fetch.query_value("labelSelector").unwrap_or_default();
    assert!(
        selector
            .starts_with("shipdeck/deployment=web,shipdeck/environment=development,shipdeck/home="),
        "only this deployment's pods: {selector}"
    );

    kube.fake.set_metrics_api(MetricsApi::NotRegistered);
    let not_served = "the cluster does not serve metrics.k8s.io; install metrics-server";
    wait_for("the view to say the API is not served", DEADLINE, || {
        (kube.home.get("web", &[])["metricsUnavailable"] == not_served).then_some(())
    });
    let output = kube.home.run(&["metrics", "web"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains(not_served), "{stderr}");
    // Several intervals pass without the API; none may store a value.
    std::thread::sleep(Duration::from_secs(3));
    let stored = kube.values("cpu_usage");
    assert!(
        stored.iter().all(|value| *value == 0.5),
        "no zeros while the API is missing: {stored:?}"
    );

    kube.fake.set_metrics_api(MetricsApi::Served);
    wait_for("the view to drop the reason", DEADLINE, || {
        kube.home.get("web", &[])["metricsUnavailable"]
            .is_null()
            .then_some(())
    });
    let unavailable = kube.events("metrics-unavailable");
    assert_eq!(
        unavailable.len(),
        1,
        "one event for the outage: {unavailable:#?}"
    );
    assert_eq!(unavailable[0]["outcome"], "error");
    let message = unavailable[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(not_served), "{message}");
    let recovered = wait_for("the recovery event", DEADLINE, || {
        let events = kube.events("metrics-recovered");
        (!events.is_empty()).then_some(events)
    });
    assert_eq!(recovered.len(), 1, "{recovered:#?}");
    kube.home.finish();
}

/// Returns the requests other than watches, pod log streams and the
/// metrics collector's reads, as `METHOD PATH`.
fn changes_sent(fake: &FakeApiServer) -> Vec<String> {
    fake.requests()
        .iter()
        .filter(|r| !r.is_watch() && !r.path.ends_with("/log"))
        .filter(|r| !r.path.starts_with("/apis/metrics.k8s.io/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn pod_names(fake: &FakeApiServer) -> Vec<String> {
    let mut names: Vec<String> = fake
        .objects("pods", Some("shop"))
        .iter()
        .filter_map(|pod| pod["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// A revision that changes only autoScaling applies the autoscaler alone.
/// The fake runs no HPA controller, so nothing scales the pods here.
#[test]
fn autoscaling_change_keeps_pods() {
    let kube = KubeHome::start();
    kube.home
        .ok(&["deploy", "-f", &kube.manifest("web:1", ""), "--wait"]);
    let pods = pod_names(&kube.fake);
    assert_eq!(pods.len(), 2);

    kube.fake.clear_requests();
    let scaled = kube.manifest(
        "web:1",
        "autoScaling: { minReplicas: 2, maxReplicas: 5, targetCPUUtilization: 60 }\n",
    );
    let result = kube.home.json(&["deploy", "-f", &scaled, "--wait"]);
    assert_eq!(result["revision"], 2, "{result:#}");
    assert_eq!(result["deployment"]["status"], "deployed", "{result:#}");
    let hpa_path = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web-development";
    assert_eq!(
        changes_sent(&kube.fake),
        [format!("GET {hpa_path}"), format!("PATCH {hpa_path}")],
        "the autoscaler alone"
    );
    let apply = kube
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("the autoscaler's apply");
    assert_eq!(apply.query_value("fieldManager"), Some("shipdeck"));
    assert_eq!(apply.query_value("force"), Some("true"));
    let body = apply.body.unwrap_or(Value::Null);
    assert_eq!(body["metadata"]["labels"]["shipdeck/revision"], "2");
    assert_eq!(body["spec"]["minReplicas"], 2);

    let deployment = kube
        .fake
        .object("deployments", "shop", "web-development")
        .expect("the Deployment");
    assert_eq!(deployment["metadata"]["labels"]["shipdeck/revision"], "1");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["shipdeck/revision"], "1",
        "the pod template is unchanged"
    );
    assert_eq!(pod_names(&kube.fake), pods, "no pod was replaced");

    let view = wait_for("revision 2 healthy with both pods", DEADLINE, || {
        let view = kube.home.get("web", &[]);
        (view["health"] == "healthy" && view["replicas"]["ready"] == 2).then_some(view)
    });
    assert_eq!(view["revision"], 2, "{view:#}");
    assert_eq!(view["status"], "deployed", "{view:#}");
    let history = kube.home.json(&["history", "web"]);
    let status_of = |number: u64| {
        history
            .as_array()
            .and_then(|all| all.iter().find(|r| r["revision"] == number))
            .map(|r| r["status"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(status_of(2), "deployed", "{history:#}");
    assert_eq!(status_of(1), "superseded", "{history:#}");

    kube.fake.clear_requests();
    let result = kube.home.json(&[
        "deploy",
        "-f",
        &kube.manifest("web:1", ""),
        "--set",
        "replicas=3",
        "--wait",
    ]);
    assert_eq!(result["revision"], 3, "{result:#}");
    let scale_path = "/apis/apps/v1/namespaces/shop/deployments/web-development/scale";
    assert_eq!(
        changes_sent(&kube.fake),
        [
            format!("GET {hpa_path}"),
            format!("DELETE {hpa_path}"),
            format!("PATCH {scale_path}"),
        ],
        "autoscaling off: the autoscaler goes and the count is set"
    );
    let scale = kube
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("the scale patch");
    assert_eq!(
        scale.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(scale.query_value("fieldManager"), Some("shipdeck"));
    assert_eq!(
        scale.body,
        Some(serde_json::json!({"spec": {"replicas": 3}}))
    );
    assert!(kube
        .fake
        .object("horizontalpodautoscalers", "shop", "web-development")
        .is_none());
    let deployment = kube
        .fake
        .object("deployments", "shop", "web-development")
        .expect("the Deployment");
    assert_eq!(deployment["metadata"]["labels"]["shipdeck/revision"], "1");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let view = wait_for("revision 3 with three ready pods", DEADLINE, || {
        let view = kube.home.get("web", &[]);
        (view["replicas"]["ready"] == 3).then_some(view)
    });
    assert_eq!(view["revision"], 3, "{view:#}");
    let names = pod_names(&kube.fake);
    assert!(
        pods.iter().all(|pod| names.contains(pod)),
        "the first two pods still run: {names:?}"
    );
    kube.home.finish();
}

/// With autoscaling on, the Deployment's count is the autoscaler's. The
/// fake runs no HPA controller, so the API server's default of 1 stays.
#[test]
fn autoscaled_rollout_takes_cluster_count() {
    let kube = KubeHome::start();
    let scaled = kube.manifest(
        "web:1",
        "autoScaling: { minReplicas: 1, maxReplicas: 4, targetCPUUtilization: 60 }\n",
    );
    let result = kube.home.json(&["deploy", "-f", &scaled, "--wait"]);
    assert_eq!(result["deployment"]["status"], "deployed", "{result:#}");
    assert_eq!(kube.pod_images(), ["web:1"]);
    let view = wait_for("the one pod healthy", DEADLINE, || {
        let view = kube.home.get("web", &[]);
        (view["health"] == "healthy").then_some(view)
    });
    assert_eq!(view["replicas"]["ready"], 1, "{view:#}");
    kube.home.finish();
}
