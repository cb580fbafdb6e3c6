use std::collections::BTreeMap;

use super::*;
use crate::model::DeploymentKey;

const HOME: &str = "/srv/shipdeck";

const FULL: &str = r#"
name: web
version: 1.4.0
environment: staging
backend: kubernetes
image: registry.example/web:1.4.0
run:
  command: ["/app/web", "--port", "${PORT}", "--greeting", "$(not-expanded)"]
  workdir: /app
replicas: 2
resources:
  requests: { cpu: 250m, memory: 128Mi }
  limits: { cpu: "1", memory: 256Mi }
ports:
  - { name: http, containerPort: 8080, hostPort: 18080, appProtocol: http }
  - { name: admin, containerPort: 9090 }
volumes:
  - { name: data, mountPath: /data, type: persistentVolume, source: web-data }
  - { name: scratch, mountPath: /tmp/scratch, type: emptyDir }
  - { name: host, mountPath: /host, type: hostPath, source: /srv/web }
env:
  GREETING: hello
  DATABASE_URL: postgres://app:${SECRET:db_password}@db/app
healthCheck: { type: http, path: /healthz, port: http, periodSeconds: 5 }
livenessCheck: { type: tcp, port: 8080, periodSeconds: 10 }
terminationGracePeriodSeconds: 20
strategy: { type: RollingUpdate, maxSurge: 1, maxUnavailable: 0, progressDeadlineSeconds: 120 }
autoScaling:
  enabled: true
  minReplicas: 1
  maxReplicas: 6
  targetCPUUtilization: 70
  metrics:
    - { name: requests_per_second, averageValue: 0.5 }
    - { name: queue_depth, averageValue: 50 }
  scaleDownPolicy:
    stabilizationWindowSeconds: 300
    policies: [{ type: Pods, value: 1, periodSeconds: 60 }]
kubernetes: { namespace: shop }
"#;

const MINIMAL: &str = r#"
name: worker
environment: production
backend: kubernetes
image: registry.example/worker:2
replicas: 3
"#;

fn manifest(text: &str) -> Manifest {
    crate::manifest::parse(text, "test.yaml", &[]).expect("the test manifest is valid")
}

/// Renders `spec` the way the backend does, with the secret
/// `db_password` set to `s3cret`.
fn render_spec(spec: &Manifest) -> Result<ClusterObjects, RenderError> {
    let secrets = BTreeMap::from([(
        "db_password".to_owned(),
        crate::config::SecretValue::new("s3cret".to_owned()),
    )]);
    let env = crate::config::render_env(&spec.env, &secrets).expect("the env renders");
    let identity = ObjectIdentity::new(&DeploymentKey::new(&spec.name, &spec.environment), HOME);
    render(&RevisionInput {
        identity: &identity,
        revision: 7,
        spec,
        namespace: "shop",
        home: HOME,
        env: &env.env,
    })
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("objects serialize")
}

#[test]
fn full_manifest_deployment() {
    let objects = render_spec(&manifest(FULL)).expect("renders");
    insta::assert_snapshot!("full_deployment", pretty(&objects.deployment));
}

#[test]
fn full_manifest_service() {
    let objects = render_spec(&manifest(FULL)).expect("renders");
    insta::assert_snapshot!("full_service", pretty(&objects.service));
}

#[test]
fn full_manifest_secret() {
    let objects = render_spec(&manifest(FULL)).expect("renders");
    insta::assert_snapshot!("full_secret", pretty(&objects.secret));
}

#[test]
fn full_manifest_autoscaler() {
    let objects = render_spec(&manifest(FULL)).expect("renders");
    insta::assert_snapshot!("full_autoscaler", pretty(&objects.autoscaler));
}

#[test]
fn minimal_manifest_deployment_only() {
    let objects = render_spec(&manifest(MINIMAL)).expect("renders");
    assert!(objects.service.is_none());
    assert!(objects.secret.is_none());
    assert!(objects.autoscaler.is_none());
    insta::assert_snapshot!("minimal_deployment", pretty(&objects.deployment));
}

#[test]
fn secret_value_stays_out_of_pod_spec() {
    let objects = render_spec(&manifest(FULL)).expect("renders");
    let deployment = pretty(&objects.deployment);
    assert!(!deployment.contains("s3cret"), "{deployment}");
    assert!(!format!("{objects:?}").contains("s3cret"));

    let container = &objects
        .deployment
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod spec")
        .containers[0];
    let database = container
        .env
        .iter()
        .flatten()
        .find(|var| var.name == "DATABASE_URL")
        .expect("DATABASE_URL");
    let reference = database
        .value_from
        .as_ref()
        .and_then(|from| from.secret_key_ref.as_ref())
        .expect("a secretKeyRef");
    assert_eq!(reference.name, "web-staging-env-r7");
    assert_eq!(reference.key, "DATABASE_URL");

    let secret = objects.secret.expect("a secret");
    let data = secret.data.expect("secret data");
    assert_eq!(data["DATABASE_URL"].0, b"postgres://app:s3cret@db/app");
    assert!(!data.contains_key("GREETING"));
}

#[test]
fn autoscaling_leaves_replicas_to_autoscaler() {
    let objects = render_spec(&manifest(FULL)).expect("renders");
    assert_eq!(objects.deployment.spec.expect("spec").replicas, None);
    let minimal = render_spec(&manifest(MINIMAL)).expect("renders");
    assert_eq!(minimal.deployment.spec.expect("spec").replicas, Some(3));
}

#[test]
fn unsupported_settings_rejected() {
    let cases = [
        ("restartPolicy: { policy: never }\n", "restartPolicy.policy"),
        ("stopSignal: SIGINT\n", "stopSignal"),
    ];
    for (extra, field) in cases {
        let spec = manifest(&format!("{MINIMAL}{extra}"));
        let error = render_spec(&spec).expect_err(extra);
        assert_eq!(error.field, field, "{extra}: {error}");
    }

    let probed = format!(
        "{MINIMAL}ports: [{{ containerPort: 80 }}]\nhealthCheck: {{ type: tcp, port: 80 }}\n"
    );
    let mut unknown_port = manifest(&probed);
    unknown_port.ports.clear();
    if let Some(check) = unknown_port.health_check.as_mut() {
        check.port = None;
    }
    let error = render_spec(&unknown_port).expect_err("no port to probe");
    assert_eq!(error.field, "healthCheck.port");

    let mut without_image = manifest(MINIMAL);
    without_image.image = None;
    let error = render_spec(&without_image).expect_err("no image");
    assert_eq!(error.field, "image");
}
