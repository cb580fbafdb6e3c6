//! Status through watches: once the watches of many deployments are up,
//! the cluster pushes every change and the agent sends no list or get
//! request, however long it waits. The autoscaler's status arrives the
//! same way.

mod k8s_fake;

use std::time::Duration;

use k8s_fake::{FakeApiServer, FakeOptions};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use shipdeck::autoscale::{AutoscaleSource, Target};
use shipdeck::backend::kubernetes::labels::ObjectIdentity;
use shipdeck::backend::kubernetes::status::{watch_status, StatusWatch};
use shipdeck::backend::kubernetes::{connect, ClusterTarget, Connection, KubeEnvironment};
use shipdeck::model::DeploymentKey;

const DEPLOYMENTS: usize = 10;
const WAIT: Duration = Duration::from_secs(10);

fn deployment(identity: &ObjectIdentity, replicas: u32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": identity.name, "labels": identity.labels(1)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": identity.selector()},
            "template": {
                "metadata": {"labels": identity.labels(1)},
                "spec": {"containers": [{"name": "app", "image": "web:1"}]},
            },
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_replace_polling() {
    let fake = FakeApiServer::start_with(FakeOptions {
        bookmark_interval: Duration::from_millis(100),
        ..FakeOptions::default()
    });
    let dir = tempfile::tempdir().expect("temporary directory");
    let environment = KubeEnvironment {
        kubeconfig: Some(
            fake.write_kubeconfig(dir.path(), "default")
                .into_os_string(),
        ),
        ..KubeEnvironment::default()
    };
    let connection = connect(&environment, &ClusterTarget::default())
        .await
        .expect("connect");
    let api: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(connection.client().clone());
    let apply = PatchParams::apply("test");

    let mut watches: Vec<(ObjectIdentity, StatusWatch)> = Vec::new();
    for index in 0..DEPLOYMENTS {
        let identity = ObjectIdentity::new(
            &DeploymentKey::new(format!("app{index}"), "staging"),
            "/srv/a",
        );
        api.patch(
            &identity.name,
            &apply,
            &Patch::Apply(deployment(&identity, 1)),
        )
        .await
        .expect("apply");
        let watch = watch_status(&connection, &identity);
        watches.push((identity, watch));
    }
    for (identity, watch) in &mut watches {
        let ready = tokio::time::timeout(
            WAIT,
            watch
                .updates
                .wait_for(|s| s.as_ref().is_some_and(|s| s.ready == 1)),
        )
        .await;
        assert!(
            ready.is_ok(),
            "{} never showed its ready pod",
            identity.name
        );
    }

    fake.clear_requests();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polled: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| !r.is_watch())
        .map(|r| format!("{} {}?{:?}", r.method, r.path, r.query))
        .collect();
    assert!(
        polled.is_empty(),
        "requests while nothing changed: {polled:#?}"
    );

    let (identity, watch) = &mut watches[3];
    api.patch(
        &identity.name,
        &apply,
        &Patch::Apply(deployment(identity, 3)),
    )
    .await
    .expect("scale");
    let scaled = tokio::time::timeout(
        WAIT,
        watch
            .updates
            .wait_for(|s| s.as_ref().is_some_and(|s| s.ready == 3)),
    )
    .await;
    assert!(
        scaled.is_ok(),
        "the change reached the status through the watch"
    );
    let reads: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && !r.is_watch())
        .map(|r| r.path.clone())
        .collect();
    assert!(
        reads.is_empty(),
        "the change was pushed, not read: {reads:?}"
    );
}

fn autoscaler(identity: &ObjectIdentity) -> serde_json::Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": identity.name, "labels": identity.labels(1)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": identity.name},
            "minReplicas": 1,
            "maxReplicas": 6,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Pods", "pods": {"metric": {"name": "requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": "500m"}}},
            ],
        },
    })
}

async fn watched(fake: &FakeApiServer, dir: &std::path::Path) -> (Connection, ObjectIdentity) {
    let environment = KubeEnvironment {
        kubeconfig: Some(fake.write_kubeconfig(dir, "default").into_os_string()),
        ..KubeEnvironment::default()
    };
    let connection = connect(&environment, &ClusterTarget::default())
        .await
        .expect("connect");
    let identity = ObjectIdentity::new(&DeploymentKey::new("web", "staging"), "/srv/a");
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(connection.client().clone());
    deployments
        .patch(
            &identity.name,
            &PatchParams::apply("test"),
            &Patch::Apply(deployment(&identity, 1)),
        )
        .await
        .expect("apply the Deployment");
    (connection, identity)
}

/// The fake runs no HPA controller: the test scripts the status it writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_status_reaches_watch() {
    let fake = FakeApiServer::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (connection, identity) = watched(&fake, dir.path()).await;
    let autoscalers: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::default_namespaced(connection.client().clone());
    autoscalers
        .patch(
            &identity.name,
            &PatchParams::apply("test"),
            &Patch::Apply(autoscaler(&identity)),
        )
        .await
        .expect("apply the autoscaler");
    fake.set_autoscaler_status(
        "default",
        &identity.name,
        json!({
            "currentReplicas": 1,
            "desiredReplicas": 3,
            "lastScaleTime": "2026-03-01T12:00:00Z",
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": 150, "averageValue": "300m"}}},
            ],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                    "message": "the HPA controller was able to update the target scale to 3"},
                {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
                    "message": "the HPA was able to successfully calculate a replica count"},
                {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange",
                    "message": "the desired count is within the acceptable range"},
            ],
        }),
    );

    let mut watch = watch_status(&connection, &identity);
    let status = tokio::time::timeout(
        WAIT,
        watch.updates.wait_for(|s| {
            s.as_ref()
                .and_then(|s| s.autoscaler.as_ref())
                .is_some_and(|a| a.desired_replicas == 3)
        }),
    )
    .await
    .expect("the scripted status reached the watch")
    .expect("the watch runs")
    .clone()
    .expect("a status");
    let view = status.autoscaler.expect("the autoscaler's view");
    assert_eq!(view.source, AutoscaleSource::Cluster);
    assert_eq!((view.min_replicas, view.max_replicas), (1, 6));
    assert_eq!(view.current_replicas, 1);
    assert_eq!(view.last_scale_ms, Some(1_772_366_400_000));
    assert_eq!(
        view.targets,
        [
            Target::CpuUtilization { percent: 60 },
            Target::AverageValue {
                metric: "requests_per_second".to_owned(),
                value: 0.5
            },
        ]
    );
    let current: Vec<Option<f64>> = view.metrics.iter().map(|m| m.current).collect();
    assert_eq!(current, [Some(150.0), None], "no pods metric measured yet");
    let conditions: Vec<(&str, bool)> = view
        .conditions
        .iter()
        .map(|c| (c.kind.as_str(), c.status))
        .collect();
    assert_eq!(
        conditions,
        [
            ("AbleToScale", true),
            ("ScalingActive", true),
            ("ScalingLimited", false)
        ]
    );
    assert_eq!(status.autoscaler_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_autoscalers_leave_status() {
    let fake = FakeApiServer::start();
    fake.forbid("list", "horizontalpodautoscalers", Some("default"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let (connection, identity) = watched(&fake, dir.path()).await;

    let mut watch = watch_status(&connection, &identity);
    let status = tokio::time::timeout(
        WAIT,
        watch.updates.wait_for(|s| {
            s.as_ref()
                .is_some_and(|s| s.ready == 1 && s.autoscaler_error.is_some())
        }),
    )
    .await
    .expect("the status with the autoscaler's error")
    .expect("the watch runs")
    .clone()
    .expect("a status");
    assert_eq!(status.watch_error, None, "the pods' status is whole");
    assert_eq!(status.autoscaler, None);
    let error = status.autoscaler_error.unwrap_or_default();
    assert!(
        error.contains("horizontalpodautoscalers"),
        "names the resource: {error}"
    );
}
