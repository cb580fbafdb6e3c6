//! Kubernetes backend costs against the fake API server in `tests/k8s_fake`:
//!
//! 1. API requests per minute to keep N deployments watched. Each runs what
//!    the agent's supervisor runs: the status watches (its Deployment, its
//!    pods and its HorizontalPodAutoscaler) and the event watch. The window starts once every watch
//!    has listed, and should hold no list or get, only watch renewals.
//! 2. Time to compute the status of M deployments from cached objects (two
//!    ready pods each, built in memory), which is what a status read costs
//!    once the caches are up.
//!
//! Run: `cargo bench --profile dev --bench k8s_watch -- [DEPLOYMENTS]
//! [SECONDS] [STATUSES]` (defaults 100, 330 and 1000). 330 s covers one
//! renewal of each watch, because kube sets `timeoutSeconds=290` on every
//! watch request (kube-core 4.0, `WatchParams`).
//! The fake's pod log streams are not included.

#[path = "../tests/k8s_fake/mod.rs"]
mod k8s_fake;

use std::time::{Duration, Instant};

use k8s_fake::{FakeApiServer, FakeOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use shipdeck::backend::kubernetes::events::watch_events;
use shipdeck::backend::kubernetes::labels::ObjectIdentity;
use shipdeck::backend::kubernetes::status::{summarize, watch_status};
use shipdeck::backend::kubernetes::{connect, ClusterTarget, Connection, KubeEnvironment};
use shipdeck::model::DeploymentKey;

fn argument(index: usize, default: u64) -> u64 {
    std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .nth(index)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(default)
}

fn manifest(identity: &ObjectIdentity, replicas: u32) -> serde_json::Value {
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

async fn create(connection: &Connection, count: u64) -> Vec<ObjectIdentity> {
    let api: Api<Deployment> = Api::default_namespaced(connection.client().clone());
    let mut identities = Vec::new();
    for index in 0..count {
        let identity = ObjectIdentity::new(
            &DeploymentKey::new(format!("app{index}"), "bench"),
            "/srv/bench",
        );
        let params = PatchParams::apply("bench");
        if let Err(error) = api
            .patch(
                &identity.name,
                &params,
                &Patch::Apply(manifest(&identity, 2)),
            )
            .await
        {
            panic!("applying {} failed: {error}", identity.name);
        }
        identities.push(identity);
    }
    identities
}

async fn requests_per_minute(deployments: u64, seconds: u64) {
    // A real API server sends a bookmark about once a minute.
    let fake = FakeApiServer::start_with(FakeOptions {
        bookmark_interval: Duration::from_secs(60),
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
        .expect("connect to the fake");
    let identities = create(&connection, deployments).await;

    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move { while events_rx.recv().await.is_some() {} });
    let mut running = Vec::new();
    let started = Instant::now();
    for identity in &identities {
        let mut status = watch_status(&connection, identity);
        let events = watch_events(&connection, identity, events_tx.clone());
        status
            .updates
            .wait_for(Option::is_some)
            .await
            .expect("the status watch runs");
        running.push((status, events));
    }
    let listed = started.elapsed();
    // The event watches list in the background; let them settle first.
    tokio::time::sleep(Duration::from_secs(5)).await;

    fake.clear_requests();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let requests = fake.requests();
    let watches = requests.iter().filter(|r| r.is_watch()).count();
    let others = requests.len() - watches;
    let minutes = seconds as f64 / 60.0;
    // Per deployment: its Deployment, pods and autoscaler, and its events.
    println!(
        "| deployments watched | {deployments} ({} watches) |",
        deployments * 4
    );
    println!(
        "| time until every status watch listed | {:.2} s |",
        listed.as_secs_f64()
    );
    println!("| window | {seconds} s |");
    println!(
        "| watch requests in the window | {watches} ({:.1} per minute) |",
        watches as f64 / minutes
    );
    println!(
        "| list and get requests in the window | {others} ({:.1} per minute) |",
        others as f64 / minutes
    );
    drop(running);
}

/// A Deployment and its two ready pods, as the caches hold them after a
/// rollout.
fn cached_objects(index: u64) -> (Deployment, Vec<Pod>) {
    let identity = ObjectIdentity::new(
        &DeploymentKey::new(format!("app{index}"), "bench"),
        "/srv/bench",
    );
    let mut deployment = manifest(&identity, 2);
    deployment["metadata"]["generation"] = json!(1);
    deployment["status"] = json!({
        "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
        "availableReplicas": 2,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "ok"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ok"},
        ],
    });
    let pods = (0..2)
        .map(|replica| {
            let pod = json!({
                "metadata": {"name": format!("{}-abc-{replica}", identity.name), "labels": identity.labels(1)},
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "app", "image": "web:1", "imageID": "", "ready": true,
                        "restartCount": 0, "state": {"running": {}}}],
                },
            });
            serde_json::from_value(pod).expect("a pod")
        })
        .collect();
    (
        serde_json::from_value(deployment).expect("a deployment"),
        pods,
    )
}

fn status_from_cache(statuses: u64) {
    let cached: Vec<(Deployment, Vec<Pod>)> = (0..statuses).map(cached_objects).collect();
    let started = Instant::now();
    let mut ready = 0;
    for (deployment, pods) in &cached {
        let pods: Vec<&Pod> = pods.iter().collect();
        ready += summarize(Some(deployment), &pods).ready;
    }
    let took = started.elapsed();
    println!("| statuses computed from cached objects | {statuses} ({ready} ready pods) |");
    println!(
        "| time for all of them | {:.1} ms |",
        took.as_secs_f64() * 1000.0
    );
}

fn main() {
    let deployments = argument(0, 100);
    let seconds = argument(1, 330);
    let statuses = argument(2, 1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the runtime");
    runtime.block_on(async {
        println!("| measure | value |\n| --- | --- |");
        requests_per_minute(deployments, seconds).await;
    });
    status_from_cache(statuses);
}
