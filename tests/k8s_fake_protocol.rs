//! The fake Kubernetes API server against kube-rs: server-side apply and
//! field ownership, resource versions, watches with bookmarks and 410
//! Gone, selectors, the scripted controller and pod logs. These tests pin
//! the fake's behaviour, so that tests of shipdeck's backend against it
//! rest on something checked.

mod k8s_fake;

use std::time::Duration;

use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_fake::selector::{FieldSelector, LabelSelector};
use k8s_fake::{FakeApiServer, FakeOptions, PodBehavior};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::{Client, Config};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn client(fake: &FakeApiServer) -> Client {
    let mut config = Config::new(fake.url().parse().expect("the fake's URL parses"));
    config.default_namespace = "default".to_owned();
    Client::try_from(config).expect("build a client for the fake")
}

fn deployment(image: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    })
}

async fn wait_for_deployment(
    api: &Api<Deployment>,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let current = api.get("web").await.expect("get the deployment");
        let value = serde_json::to_value(&current).expect("serialize the deployment");
        if check(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {value:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn label_selector_terms() {
    let labels = json!({"app": "web", "tier": "front"});
    let labels = labels.as_object();
    let cases = [
        ("app=web", true),
        ("app==web,tier=front", true),
        ("app!=web", false),
        ("app in (api, web)", true),
        ("app notin (web)", false),
        ("tier", true),
        ("!tier", false),
        ("!missing,app in (web)", true),
        ("", true),
    ];
    for (text, expected) in cases {
        let selector = LabelSelector::parse(text).expect(text);
        assert_eq!(selector.matches(labels), expected, "{text}");
    }
}

#[test]
fn field_selector_paths() {
    let event = json!({"involvedObject": {"name": "web", "kind": "Pod"}});
    assert!(FieldSelector::parse("involvedObject.name=web")
        .expect("parses")
        .matches(&event));
    assert!(!FieldSelector::parse("involvedObject.kind!=Pod")
        .expect("parses")
        .matches(&event));
    assert!(FieldSelector::parse("metadata.name=")
        .expect("parses")
        .matches(&event));
}

#[tokio::test]
async fn discovery_lists_served_groups() {
    let fake = FakeApiServer::start();
    let discovery = kube::Discovery::new(client(&fake))
        .run()
        .await
        .expect("discovery runs");
    let mut kinds: Vec<String> = discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .map(|(resource, _)| format!("{}/{}", resource.api_version, resource.kind))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "apps/v1/Deployment",
            "autoscaling/v2/HorizontalPodAutoscaler",
            "metrics.k8s.io/v1beta1/PodMetrics",
            "v1/Event",
            "v1/Namespace",
            "v1/Pod",
            "v1/Secret",
            "v1/Service",
        ]
    );

    fake.set_metrics_api(k8s_fake::MetricsApi::NotRegistered);
    let discovery = kube::Discovery::new(client(&fake))
        .run()
        .await
        .expect("discovery runs");
    assert!(
        !discovery.has_group("metrics.k8s.io"),
        "an unregistered metrics API is not discovered"
    );
}

#[tokio::test]
async fn apply_owns_fields_and_conflicts() {
    let fake = FakeApiServer::start();
    let api: Api<Deployment> = Api::default_namespaced(client(&fake));
    let shipdeck = PatchParams::apply("shipdeck");

    // A Service, because the controller writes a Deployment's status.
    let services: Api<Service> = Api::default_namespaced(api.clone().into_client());
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}});
    let first = services
        .patch("web", &shipdeck, &Patch::Apply(&service))
        .await
        .expect("first apply");
    let again = services
        .patch("web", &shipdeck, &Patch::Apply(&service))
        .await
        .expect("same apply");
    assert_eq!(
        again.metadata.resource_version, first.metadata.resource_version,
        "an unchanged apply writes nothing"
    );
    let managers: Vec<String> = again
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["shipdeck"]);

    api.patch("web", &shipdeck, &Patch::Apply(deployment("web:1", 2)))
        .await
        .expect("apply the deployment");

    let other = PatchParams::apply("someone-else");
    let error = api
        .patch(
            "web",
            &other,
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 5}})),
        )
        .await
        .expect_err("a different value of a field shipdeck owns conflicts");
    let kube::Error::Api(status) = error else {
        panic!("expected an API error, got {error:?}")
    };
    assert_eq!(status.code, 409);
    assert!(
        status
            .message
            .contains("conflict with \"shipdeck\": .spec.replicas"),
        "{}",
        status.message
    );

    let forced = api
        .patch(
            "web",
            &other.force(),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 5}})),
        )
        .await
        .expect("a forced apply takes the field");
    assert_eq!(forced.spec.as_ref().and_then(|s| s.replicas), Some(5));

    let mut without_label = deployment("web:1", 2);
    without_label["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("labels");
    let trimmed = api
        .patch(
            "web",
            &PatchParams::apply("shipdeck").force(),
            &Patch::Apply(without_label),
        )
        .await
        .expect("apply without the label");
    assert_eq!(
        trimmed.metadata.labels, None,
        "a field the manager stopped applying is removed"
    );
}

#[tokio::test]
async fn create_conflicts_and_missing_namespace() {
    let fake = FakeApiServer::start();
    let client = client(&fake);
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "db"}, "stringData": {"password": "hunter2"}}),
    )
    .expect("a secret");
    let created = secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the secret");
    let data = created.data.expect("stringData moved into data");
    assert_eq!(data["password"].0, b"hunter2");

    let again = secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect_err("the name is taken");
    assert!(
        matches!(again, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{again:?}"
    );

    let elsewhere: Api<Secret> = Api::namespaced(client.clone(), "missing");
    let error = elsewhere
        .create(&PostParams::default(), &secret)
        .await
        .expect_err("no such namespace");
    assert!(
        matches!(error, kube::Error::Api(ref s) if s.code == 404 && s.message == "namespaces \"missing\" not found"),
        "{error:?}"
    );

    let config_maps: Api<ConfigMap> = Api::default_namespaced(client);
    let error = config_maps
        .get("any")
        .await
        .expect_err("config maps are not served");
    assert!(
        matches!(error, kube::Error::Api(ref s) if s.code == 404),
        "{error:?}"
    );
}

#[tokio::test]
async fn list_and_delete_collection_by_label() {
    let fake = FakeApiServer::start();
    let secrets: Api<Secret> = Api::default_namespaced(client(&fake));
    for (name, owner) in [("a", "shipdeck"), ("b", "shipdeck"), ("c", "other")] {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"owner": owner}}}))
                .expect("a secret");
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("create");
    }
    let mine = secrets
        .list(&ListParams::default().labels("owner=shipdeck"))
        .await
        .expect("list");
    let names: Vec<String> = mine
        .items
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(names, ["a", "b"]);

    let page = secrets
        .list(&ListParams::default().limit(2))
        .await
        .expect("first page");
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("a continue token");
    let rest = secrets
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("second page");
    assert_eq!(rest.items.len(), 1);

    secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("owner=shipdeck"),
        )
        .await
        .expect("delete by label");
    let left: Vec<String> = fake
        .objects("secrets", Some("default"))
        .iter()
        .map(|s| s["metadata"]["name"].to_string())
        .collect();
    assert_eq!(left, ["\"c\""]);
    let request = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE")
        .expect("a DELETE");
    assert_eq!(request.path, "/api/v1/namespaces/default/secrets");
    assert_eq!(request.query_value("labelSelector"), Some("owner=shipdeck"));
}

#[tokio::test]
async fn watch_resumes_and_sends_bookmarks() {
    let fake = FakeApiServer::start_with(FakeOptions {
        bookmark_interval: Duration::from_millis(100),
        ..FakeOptions::default()
    });
    let secrets: Api<Secret> = Api::default_namespaced(client(&fake));
    let list = secrets.list(&ListParams::default()).await.expect("list");
    let version = list
        .metadata
        .resource_version
        .expect("a list resource version");
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "a"}})).expect("a secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create");

    let params = WatchParams::default().timeout(5);
    let mut stream = secrets
        .watch(&params, &version)
        .await
        .expect("watch")
        .boxed();
    let first = stream
        .try_next()
        .await
        .expect("an event")
        .expect("the stream is open");
    assert!(
        matches!(first, WatchEvent::Added(ref s) if s.metadata.name.as_deref() == Some("a")),
        "{first:?}"
    );
    let second = stream
        .try_next()
        .await
        .expect("an event")
        .expect("the stream is open");
    let WatchEvent::Bookmark(bookmark) = second else {
        panic!("expected a bookmark, got {second:?}")
    };
    assert_eq!(
        bookmark.metadata.resource_version,
        fake.revision().to_string()
    );

    fake.compact();
    let mut stale = secrets
        .watch(&WatchParams::default(), &version)
        .await
        .expect("watch")
        .boxed();
    let gone = stale
        .try_next()
        .await
        .expect("an event")
        .expect("the stream is open");
    assert!(
        matches!(gone, WatchEvent::Error(ref s) if s.code == 410),
        "{gone:?}"
    );
}

#[tokio::test]
async fn ready_rollout_completes() {
    let fake = FakeApiServer::start();
    let api: Api<Deployment> = Api::default_namespaced(client(&fake));
    api.patch(
        "web",
        &PatchParams::apply("shipdeck"),
        &Patch::Apply(deployment("web:1", 2)),
    )
    .await
    .expect("apply");
    let done = wait_for_deployment(&api, "a complete rollout", |d| {
        d["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["reason"] == "NewReplicaSetAvailable"))
    })
    .await;
    assert_eq!(done["status"]["readyReplicas"], 2);
    assert_eq!(done["status"]["observedGeneration"], 1);

    api.patch(
        "web",
        &PatchParams::apply("shipdeck"),
        &Patch::Apply(deployment("web:2", 2)),
    )
    .await
    .expect("apply v2");
    let rolled = wait_for_deployment(&api, "the second rollout", |d| {
        d["status"]["observedGeneration"] == 2
            && d["status"]["replicas"] == 2
            && d["status"]["updatedReplicas"] == 2
    })
    .await;
    assert_eq!(rolled["status"]["readyReplicas"], 2);
    let images: Vec<Value> = fake
        .objects("pods", Some("default"))
        .iter()
        .map(|p| p["spec"]["containers"][0]["image"].clone())
        .collect();
    assert_eq!(images, [json!("web:2"), json!("web:2")]);
}

#[tokio::test]
async fn unready_rollout_exceeds_deadline() {
    let fake = FakeApiServer::start();
    fake.set_behavior("web:stuck", PodBehavior::Unready);
    let api: Api<Deployment> = Api::default_namespaced(client(&fake));
    api.patch(
        "web",
        &PatchParams::apply("shipdeck"),
        &Patch::Apply(deployment("web:stuck", 1)),
    )
    .await
    .expect("apply");
    let stuck = wait_for_deployment(&api, "ProgressDeadlineExceeded", |d| {
        d["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["reason"] == "ProgressDeadlineExceeded"))
    })
    .await;
    assert_eq!(stuck["status"]["readyReplicas"], 0);
    assert_eq!(stuck["status"]["unavailableReplicas"], 1);
}

#[tokio::test]
async fn crash_loop_reports_container_state_and_logs() {
    let fake = FakeApiServer::start_with(FakeOptions {
        crash_interval: Duration::from_millis(150),
        ..FakeOptions::default()
    });
    fake.set_behavior("web:crash", PodBehavior::CrashLoop);
    fake.set_log_lines("web:crash", &["booting"]);
    let client = client(&fake);
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.patch(
        "web",
        &PatchParams::apply("shipdeck"),
        &Patch::Apply(deployment("web:crash", 1)),
    )
    .await
    .expect("apply");

    let pods: Api<Pod> = Api::default_namespaced(client);
    let deadline = tokio::time::Instant::now() + WAIT;
    let pod = loop {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .expect("list pods");
        let restarted = list.items.into_iter().find(|pod| {
            pod.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|c| c[0].restart_count >= 2)
        });
        if let Some(pod) = restarted {
            break pod;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for restarts"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = &pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .expect("container statuses")[0];
    let waiting = status
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .expect("waiting");
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    let terminated = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("last state");
    assert_eq!(terminated.exit_code, 1);

    let name = pod.metadata.name.clone().expect("pod name");
    let previous = pods
        .logs(
            &name,
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("previous logs");
    assert_eq!(previous, "booting\nfatal: exiting\n");

    let events = fake.objects("events", Some("default"));
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "BackOff" && e["involvedObject"]["name"] == name.as_str()),
        "{events:#?}"
    );
}

#[tokio::test]
async fn follow_streams_new_log_lines() {
    let fake = FakeApiServer::start();
    fake.set_log_lines("web:1", &["first"]);
    let client = client(&fake);
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.patch(
        "web",
        &PatchParams::apply("shipdeck"),
        &Patch::Apply(deployment("web:1", 1)),
    )
    .await
    .expect("apply");
    wait_for_deployment(&api, "a ready pod", |d| d["status"]["readyReplicas"] == 1).await;
    let pod = fake.objects("pods", Some("default"))[0]["metadata"]["name"]
        .as_str()
        .expect("pod name")
        .to_owned();

    let pods: Api<Pod> = Api::default_namespaced(client);
    let mut lines = pods
        .log_stream(
            &pod,
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("follow logs")
        .lines();
    assert_eq!(lines.next().await.expect("a line").expect("read"), "first");
    fake.write_log("default", &pod, "app", "second");
    assert_eq!(lines.next().await.expect("a line").expect("read"), "second");

    let error = pods
        .logs(
            &pod,
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .expect_err("no previous container");
    assert!(
        matches!(error, kube::Error::Api(ref s) if s.code == 400 && s.message.contains("previous terminated container")),
        "{error:?}"
    );
}

#[tokio::test]
async fn scripted_forbidden_names_verb_and_namespace() {
    let fake = FakeApiServer::start();
    fake.forbid("patch", "deployments", Some("default"));
    let api: Api<Deployment> = Api::default_namespaced(client(&fake));
    let error = api
        .patch(
            "web",
            &PatchParams::apply("shipdeck"),
            &Patch::Apply(deployment("web:1", 1)),
        )
        .await
        .expect_err("forbidden");
    let kube::Error::Api(status) = error else {
        panic!("expected an API error, got {error:?}")
    };
    assert_eq!(status.code, 403);
    assert!(
        status.message.contains("cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"default\""),
        "{}",
        status.message
    );
}
