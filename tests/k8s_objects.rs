//! Rendering a revision and applying its objects to a fake API server:
//! the exact requests shipdeck sends (method, path, field manager, force,
//! content type, body), what it leaves alone, and deletion by label.

mod k8s_fake;

use std::collections::BTreeMap;
use std::path::Path;

use k8s_fake::{FakeApiServer, RecordedRequest};
use serde_json::{json, Value};
use shipdeck::backend::kubernetes::apply::{apply_objects, delete_objects, FIELD_MANAGER};
use shipdeck::backend::kubernetes::labels::ObjectIdentity;
use shipdeck::backend::kubernetes::render::{render, ClusterObjects, RevisionInput};
use shipdeck::backend::kubernetes::{
    connect, ClusterTarget, Connection, KubeEnvironment, KubeError,
};
use shipdeck::manifest::Manifest;
use shipdeck::model::DeploymentKey;

const HOME: &str = "/srv/shipdeck-test";

const MANIFEST: &str = r#"
name: web
environment: staging
backend: kubernetes
image: registry.example/web:1
replicas: 2
ports: [{ name: http, containerPort: 8080, hostPort: 80 }]
env:
  GREETING: hello
  TOKEN: ${SECRET:api_token}
healthCheck: { type: http, path: /healthz, port: http }
kubernetes: { namespace: shop }
"#;

async fn connection(fake: &FakeApiServer, dir: &Path, namespace: &str) -> Connection {
    let path = fake.write_kubeconfig(dir, "default");
    let environment = KubeEnvironment {
        kubeconfig: Some(path.into_os_string()),
        ..KubeEnvironment::default()
    };
    let target = ClusterTarget {
        context: None,
        namespace: Some(namespace.to_owned()),
    };
    connect(&environment, &target)
        .await
        .expect("connect to the fake")
}

fn manifest(text: &str) -> Manifest {
    shipdeck::manifest::parse(text, "test.yaml", &[]).expect("a valid manifest")
}

fn identity(home: &str) -> ObjectIdentity {
    ObjectIdentity::new(&DeploymentKey::new("web", "staging"), home)
}

fn objects(spec: &Manifest, identity: &ObjectIdentity, revision: u64) -> ClusterObjects {
    let env: BTreeMap<String, String> = spec
        .env
        .iter()
        .map(|(key, value)| (key.clone(), value.replace("${SECRET:api_token}", "tok-123")))
        .collect();
    render(&RevisionInput {
        identity,
        revision,
        spec,
        namespace: "shop",
        home: HOME,
        env: &env,
    })
    .expect("the manifest renders")
}

fn writes(fake: &FakeApiServer) -> Vec<RecordedRequest> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect()
}

#[tokio::test]
async fn apply_sends_server_side_apply_patches() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path(), "shop").await;
    let identity = identity(HOME);
    let rendered = objects(&manifest(MANIFEST), &identity, 1);

    apply_objects(&connection, &identity, &rendered)
        .await
        .expect("apply");

    let writes = writes(&fake);
    let paths: Vec<(&str, &str)> = writes
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            (
                "PATCH",
                "/api/v1/namespaces/shop/secrets/web-staging-env-r1"
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/shop/deployments/web-staging"
            ),
            ("PATCH", "/api/v1/namespaces/shop/services/web-staging"),
        ]
    );
    for request in &writes {
        assert_eq!(
            request.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "{}",
            request.path
        );
        assert_eq!(
            request.query_value("fieldManager"),
            Some(FIELD_MANAGER),
            "{}",
            request.path
        );
        assert_eq!(
            request.query_value("force"),
            Some("true"),
            "{}",
            request.path
        );
    }
    let expected = serde_json::to_value(&rendered.deployment).expect("serialize");
    assert_eq!(
        writes[1].body.as_ref(),
        Some(&expected),
        "the Deployment is sent as rendered"
    );
    let deployment_text = &writes[1].body_text;
    assert!(
        !deployment_text.contains("tok-123"),
        "no secret value in the Deployment: {deployment_text}"
    );

    let stored = fake
        .object("secrets", "shop", "web-staging-env-r1")
        .expect("the secret exists");
    assert_eq!(stored["data"]["TOKEN"], json!("dG9rLTEyMw=="));
    let managers: Vec<Value> = fake
        .object("deployments", "shop", "web-staging")
        .expect("the deployment exists")["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(managers.len(), 1);
    assert_eq!(managers[0]["manager"], FIELD_MANAGER);
    assert_eq!(managers[0]["operation"], "Apply");
}

#[tokio::test]
async fn reapply_changes_nothing() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path(), "shop").await;
    let identity = identity(HOME);
    let rendered = objects(&manifest(MANIFEST), &identity, 1);
    apply_objects(&connection, &identity, &rendered)
        .await
        .expect("apply");
    let service_version = fake
        .object("services", "shop", "web-staging")
        .expect("service")["metadata"]["resourceVersion"]
        .clone();

    apply_objects(&connection, &identity, &rendered)
        .await
        .expect("apply again");
    let after = fake
        .object("services", "shop", "web-staging")
        .expect("service")["metadata"]["resourceVersion"]
        .clone();
    assert_eq!(after, service_version, "an unchanged apply writes nothing");
}

#[tokio::test]
async fn object_of_another_home_left_alone() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    fake.insert(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-staging", "namespace": "shop", "labels": {"app": "someone-elses"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "x", "image": "x:1"}]}}},
    }));
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path(), "shop").await;
    let identity = identity(HOME);
    fake.clear_requests();

    let error = apply_objects(
        &connection,
        &identity,
        &objects(&manifest(MANIFEST), &identity, 1),
    )
    .await
    .expect_err("the name is taken by another owner");
    assert!(matches!(error, KubeError::NotOurs { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("deployments.apps \"web-staging\""),
        "{error}"
    );
    let patched: Vec<String> = writes(&fake)
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        patched,
        ["/api/v1/namespaces/shop/secrets/web-staging-env-r1"],
        "only our own Secret was applied"
    );
    let untouched = fake
        .object("deployments", "shop", "web-staging")
        .expect("still there");
    assert_eq!(untouched["metadata"]["labels"]["app"], "someone-elses");
}

#[tokio::test]
async fn revision_without_ports_deletes_service() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path(), "shop").await;
    let identity = identity(HOME);
    apply_objects(
        &connection,
        &identity,
        &objects(&manifest(MANIFEST), &identity, 1),
    )
    .await
    .expect("apply");

    let without_ports = MANIFEST
        .replace(
            "ports: [{ name: http, containerPort: 8080, hostPort: 80 }]\n",
            "",
        )
        .replace(
            "healthCheck: { type: http, path: /healthz, port: http }\n",
            "",
        );
    fake.clear_requests();
    apply_objects(
        &connection,
        &identity,
        &objects(&manifest(&without_ports), &identity, 2),
    )
    .await
    .expect("apply");

    assert!(fake.object("services", "shop", "web-staging").is_none());
    let delete = writes(&fake)
        .into_iter()
        .find(|r| r.method == "DELETE")
        .expect("a DELETE");
    assert_eq!(delete.path, "/api/v1/namespaces/shop/services/web-staging");
    let uid = delete
        .body
        .as_ref()
        .and_then(|b| b["preconditions"]["uid"].as_str())
        .map(str::to_owned);
    assert!(
        uid.is_some(),
        "the delete names the uid it read: {}",
        delete.body_text
    );
}

#[tokio::test]
async fn autoscaler_applied_and_removed() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path(), "shop").await;
    let identity = identity(HOME);
    let scaled = format!(
        "{MANIFEST}autoScaling: {{ minReplicas: 1, maxReplicas: 4, targetCPUUtilization: 60,\n  \
         metrics: [{{ name: requests_per_second, averageValue: 2.5 }}] }}\n"
    );
    apply_objects(
        &connection,
        &identity,
        &objects(&manifest(&scaled), &identity, 1),
    )
    .await
    .expect("apply");

    let autoscaler = fake
        .object("horizontalpodautoscalers", "shop", "web-staging")
        .expect("an autoscaler");
    assert_eq!(autoscaler["spec"]["maxReplicas"], 4);
    assert_eq!(
        autoscaler["spec"]["metrics"][1],
        json!({
            "type": "Pods",
            "pods": {
                "metric": {"name": "requests_per_second"},
                "target": {"type": "AverageValue", "averageValue": "2500m"},
            },
        }),
        "the per-replica value as a quantity"
    );
    let deployment = fake
        .object("deployments", "shop", "web-staging")
        .expect("a deployment");
    assert_eq!(
        deployment["spec"]["replicas"], 1,
        "the server's default, left to the autoscaler"
    );

    apply_objects(
        &connection,
        &identity,
        &objects(&manifest(MANIFEST), &identity, 2),
    )
    .await
    .expect("apply");
    assert!(fake
        .object("horizontalpodautoscalers", "shop", "web-staging")
        .is_none());
}

#[tokio::test]
async fn missing_namespace_named_in_error() {
    let fake = FakeApiServer::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path(), "shop").await;
    let identity = identity(HOME);
    let error = apply_objects(
        &connection,
        &identity,
        &objects(&manifest(MANIFEST), &identity, 1),
    )
    .await
    .expect_err("no namespace shop");
    assert!(
        matches!(error, KubeError::NamespaceNotFound { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"shop\""), "{error}");
}

#[tokio::test]
async fn forbidden_apply_names_verb_and_resource() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    fake.forbid("patch", "deployments", Some("shop"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path(), "shop").await;
    let identity = identity(HOME);
    let error = apply_objects(
        &connection,
        &identity,
        &objects(&manifest(MANIFEST), &identity, 1),
    )
    .await
    .expect_err("forbidden");
    let text = error.to_string();
    assert!(
        text.contains("may not patch deployments.apps in namespace \"shop\""),
        "{text}"
    );
}

#[tokio::test]
async fn undeploy_deletes_only_own_objects() {
    let fake = FakeApiServer::start();
    fake.create_namespace("shop");
    let dir = tempfile::tempdir().expect("temporary directory");
    let connection = connection(&fake, dir.path(), "shop").await;
    let ours = identity(HOME);
    apply_objects(&connection, &ours, &objects(&manifest(MANIFEST), &ours, 1))
        .await
        .expect("apply ours");
    apply_objects(&connection, &ours, &objects(&manifest(MANIFEST), &ours, 2))
        .await
        .expect("apply revision 2");

    // The same deployment name from another home, in another namespace
    // with the same labels apart from the home.
    fake.create_namespace("other");
    let other_connection = connection_in(&fake, dir.path(), "other").await;
    let theirs = identity("/srv/another-home");
    let mut their_objects = objects(&manifest(MANIFEST), &theirs, 1);
    their_objects.deployment.metadata.namespace = Some("other".to_owned());
    if let Some(service) = their_objects.service.as_mut() {
        service.metadata.namespace = Some("other".to_owned());
    }
    if let Some(secret) = their_objects.secret.as_mut() {
        secret.metadata.namespace = Some("other".to_owned());
    }
    apply_objects(&other_connection, &theirs, &their_objects)
        .await
        .expect("apply theirs");
    // In our namespace, a Secret labelled for this deployment by another home.
    fake.insert(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-staging-env-r9", "namespace": "shop", "labels": theirs.labels(9)},
    }));
    fake.wait_for("our pods", std::time::Duration::from_secs(10), |fake| {
        fake.objects("pods", Some("shop")).len() == 2
    });

    let deleted = delete_objects(&connection, &ours).await.expect("undeploy");
    assert_eq!(
        deleted, 4,
        "the Deployment, the Service and two revisions' Secrets"
    );
    assert!(fake.objects("deployments", Some("shop")).is_empty());
    assert!(fake.objects("services", Some("shop")).is_empty());
    let secrets: Vec<Value> = fake
        .objects("secrets", Some("shop"))
        .iter()
        .map(|s| s["metadata"]["name"].clone())
        .collect();
    assert_eq!(
        secrets,
        [json!("web-staging-env-r9")],
        "only the other home's Secret stays"
    );
    assert!(
        fake.objects("pods", Some("shop")).is_empty(),
        "pods go with their Deployment"
    );
    assert_eq!(
        fake.objects("deployments", Some("other")).len(),
        1,
        "the other home's objects stay"
    );

    let lists: Vec<RecordedRequest> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.query_value("labelSelector").is_some())
        .collect();
    assert!(!lists.is_empty());
    for list in lists {
        assert_eq!(
            list.query_value("labelSelector"),
            Some(ours.selector_text().as_str()),
            "{}",
            list.path
        );
    }
}

async fn connection_in(fake: &FakeApiServer, dir: &Path, namespace: &str) -> Connection {
    let sub = dir.join(namespace);
    std::fs::create_dir_all(&sub).expect("a directory");
    connection(fake, &sub, namespace).await
}
