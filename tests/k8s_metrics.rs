//! Reading pod CPU and memory from `metrics.k8s.io` against the fake API
//! server, in each of the ways a cluster serves it or lacks it. The fake
//! reports usage scripted per image; it measures nothing and serves no
//! node metrics.

mod k8s_fake;

use std::time::Duration;

use k8s_fake::{FakeApiServer, MetricsApi, Usage};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use shipdeck::backend::kubernetes::labels::ObjectIdentity;
use shipdeck::backend::kubernetes::metrics::{MetricsError, PodMetricsSource, NOT_SERVED};
use shipdeck::backend::kubernetes::{connect, ClusterTarget, Connection, KubeEnvironment};
use shipdeck::model::DeploymentKey;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn connection(fake: &FakeApiServer, dir: &std::path::Path) -> Connection {
    let environment = KubeEnvironment {
        kubeconfig: Some(fake.write_kubeconfig(dir, "shop").into_os_string()),
        ..KubeEnvironment::default()
    };
    connect(&environment, &ClusterTarget::default())
        .await
        .expect("connect to the fake")
}

/// Applies a Deployment of `replicas` pods labelled as `identity`'s.
async fn deploy(connection: &Connection, identity: &ObjectIdentity, image: &str, replicas: u32) {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(connection.client().clone(), "shop");
    let object = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": identity.name, "labels": identity.labels(1)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": identity.selector()},
            "template": {
                "metadata": {"labels": identity.labels(1)},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    });
    api.patch(
        &identity.name,
        &PatchParams::apply("test"),
        &Patch::Apply(&object),
    )
    .await
    .expect("apply the Deployment");
}

fn running_pods(fake: &FakeApiServer, prefix: &str) -> usize {
    fake.objects("pods", Some("shop"))
        .iter()
        .filter(|pod| {
            pod["metadata"]["name"]
                .as_str()
                .is_some_and(|name| name.starts_with(prefix))
                && pod["status"]["containerStatuses"][0]["state"]
                    .get("running")
                    .is_some()
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_summed_over_selected_pods() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path()).await;
    let web = ObjectIdentity::new(&DeploymentKey::new("web", "staging"), "/srv/a");
    let other = ObjectIdentity::new(&DeploymentKey::new("api", "staging"), "/srv/a");
    fake.set_usage(
        "web:1",
        Usage {
            cpu_nanocores: 125_000_000,
            memory_bytes: 32 << 20,
        },
    );
    deploy(&connection, &web, "web:1", 3).await;
    deploy(&connection, &other, "api:1", 2).await;
    fake.wait_for("five running pods", TIMEOUT, |fake| {
        running_pods(fake, "web-staging-") == 3 && running_pods(fake, "api-staging-") == 2
    });

    fake.clear_requests();
    let usage = PodMetricsSource::new(&connection, &web)
        .fetch(TIMEOUT)
        .await
        .expect("the fake serves pod metrics");
    assert_eq!(usage.pods, 3, "only web's pods");
    assert_eq!(usage.cores, 0.375);
    assert_eq!(usage.memory_bytes, f64::from(96u32 << 20));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "one list, no discovery: {requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods"
    );
    assert_eq!(
        requests[0].query_value("labelSelector"),
        Some(web.selector_text().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_running_pods_is_no_usage() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path()).await;
    let web = ObjectIdentity::new(&DeploymentKey::new("web", "staging"), "/srv/a");
    let usage = PodMetricsSource::new(&connection, &web)
        .fetch(TIMEOUT)
        .await
        .expect("an empty list");
    assert_eq!(usage.pods, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_api_is_not_served() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    fake.set_metrics_api(MetricsApi::NotRegistered);
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path()).await;
    let web = ObjectIdentity::new(&DeploymentKey::new("web", "staging"), "/srv/a");

    let error = PodMetricsSource::new(&connection, &web)
        .fetch(TIMEOUT)
        .await
        .expect_err("no metrics API");
    assert!(matches!(error, MetricsError::NotServed), "{error:?}");
    assert_eq!(error.to_string(), NOT_SERVED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_metrics_server_is_unavailable() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    fake.set_metrics_api(MetricsApi::Unavailable);
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path()).await;
    let web = ObjectIdentity::new(&DeploymentKey::new("web", "staging"), "/srv/a");

    let error = PodMetricsSource::new(&connection, &web)
        .fetch(TIMEOUT)
        .await
        .expect_err("the API answers 503");
    assert!(error.is_unserved(), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("503 Service Unavailable"), "{text}");
    assert!(text.contains("metrics-server"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_are_request_error() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    fake.require_token("right");
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path()).await;
    let web = ObjectIdentity::new(&DeploymentKey::new("web", "staging"), "/srv/a");

    let error = PodMetricsSource::new(&connection, &web)
        .fetch(TIMEOUT)
        .await
        .expect_err("no token");
    assert!(!error.is_unserved(), "a failed request, not a missing API");
    let text = error.to_string();
    assert!(text.contains("401 Unauthorized"), "{text}");
}
