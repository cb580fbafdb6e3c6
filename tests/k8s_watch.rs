//! Status through watches: once the watches of many deployments are up,
//! the cluster pushes every change and the agent sends no list or get
//! request, however long it waits.

mod k8s_fake;

use std::time::Duration;

use k8s_fake::{FakeApiServer, FakeOptions};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use shipdeck::backend::kubernetes::labels::ObjectIdentity;
use shipdeck::backend::kubernetes::status::{watch_status, StatusWatch};
use shipdeck::backend::kubernetes::{connect, ClusterTarget, KubeEnvironment};
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
