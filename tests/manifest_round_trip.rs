//! `to_yaml` output parses back to an equal manifest.

use shipdeck::manifest::{parse, to_yaml, Manifest};

const DESIGN_EXAMPLE: &str = include_str!("manifest_fixtures/design_example.yaml");
const DOCKER_WEB: &str = include_str!("manifest_fixtures/docker_web.yaml");
const MINIMAL_PROCESS: &str = include_str!("manifest_fixtures/minimal_process.yaml");

/// Uses every field, and strings that YAML 1.1 or a careless writer would change.
const FULL: &str = r##"
name: full
version: "010"
environment: prod-eu-1
backend: kubernetes
run:
  command: ["sh", "-c", "echo \"quoted\" \\ back\tslash"]
  workdir: /srv/app
image: registry.example/full:1.0
source:
  type: git
  url: https://git.example/full.git
  tag: v1.0
  credentials: { username: ci, passwordSecret: token }
build: { command: [make] }
replicas: 0
resources:
  requests: { cpu: 0.0001, memory: 129e6 }
  limits: { cpu: 1k, memory: 0.5Gi }
ports:
  - { name: http, containerPort: 80, hostPort: 18080, protocol: TCP, appProtocol: http }
  - { containerPort: 53, protocol: UDP }
volumes:
  - { name: data, mountPath: /data, type: hostPath, source: /srv/data }
  - { name: scratch, mountPath: /tmp/scratch, type: emptyDir }
  - { name: db, mountPath: /var/db, type: persistentVolume }
env:
  NO: no
  OCTAL: 010
  TIME: 2122:22
  EMPTY: ""
  NULLISH: "null"
  MULTI: "line one\nline two"
  UNICODE: "café ☕"
  _UNDERSCORE: "#not a comment"
template: base
healthCheck: { type: http, port: http, path: /ready, initialDelaySeconds: 2 }
livenessCheck: { type: exec, command: [true] }
stopSignal: SIGINT
terminationGracePeriodSeconds: 0
strategy: { type: RollingUpdate, maxSurge: 25%, maxUnavailable: 10%, progressDeadlineSeconds: 60 }
restartPolicy: { policy: on-failure, backoffInitial: 1.5s, backoffMax: 1h30m }
monitoring:
  enabled: true
  interval: 500ms
  metrics: [cpu]
  scrape: { path: /metrics, port: 80 }
  alerts:
    - { name: hot, metric: cpu_percentage, condition: gte, threshold: 0.1, for: 90s }
    - { name: cold, metric: cpu_percentage, condition: lt, threshold: -2.5e-3 }
autoScaling:
  enabled: true
  minReplicas: 1
  maxReplicas: 1000
  targetCPUUtilization: 70
  targetMemoryUtilization: 80
  scaleUpPolicy:
    selectPolicy: Max
    policies: [{ type: Pods, value: 4, periodSeconds: 15 }, { type: Percent, value: 100, periodSeconds: 15 }]
  scaleDownPolicy: { stabilizationWindowSeconds: 300, selectPolicy: Disabled }
kubernetes: { context: prod, namespace: shop }
tags: [a, "b c", "yes"]
"##;

fn parse_ok(text: &str, origin: &str) -> Manifest {
    match parse(text, origin, &[]) {
        Ok(manifest) => manifest,
        Err(error) => panic!("expected a valid manifest, got: {error}"),
    }
}

fn assert_round_trip(text: &str) {
    let manifest = parse_ok(text, "original");
    let written = to_yaml(&manifest);
    let reread = parse_ok(&written, "written");
    assert_eq!(reread, manifest, "written YAML:\n{written}");
}

#[test]
fn design_example_round_trips() {
    assert_round_trip(DESIGN_EXAMPLE);
}

#[test]
fn docker_fixture_round_trips() {
    assert_round_trip(DOCKER_WEB);
}

#[test]
fn minimal_fixture_round_trips() {
    assert_round_trip(MINIMAL_PROCESS);
}

#[test]
fn full_manifest_round_trips() {
    assert_round_trip(FULL);
}

#[test]
fn full_manifest_keeps_tricky_strings() {
    let manifest = parse_ok(FULL, "full");
    assert_eq!(manifest.env["NO"], "no");
    assert_eq!(manifest.env["OCTAL"], "010");
    assert_eq!(manifest.env["TIME"], "2122:22");
    assert_eq!(manifest.version, "010");
}

#[test]
fn json_round_trip_keeps_manifest() {
    let manifest = parse_ok(FULL, "full");
    let json = serde_json::to_string(&manifest).expect("serializes");
    let reread: Manifest = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(reread, manifest);
}

#[test]
fn written_yaml_starts_with_name() {
    let written = to_yaml(&parse_ok(DESIGN_EXAMPLE, "design"));
    assert!(written.starts_with("name: \"web\"\n"), "{written}");
}

#[test]
fn written_yaml_is_stable() {
    let first = to_yaml(&parse_ok(FULL, "full"));
    let second = to_yaml(&parse_ok(&first, "first"));
    assert_eq!(first, second);
}

#[test]
fn durations_are_written_canonically() {
    let written = to_yaml(&parse_ok(FULL, "full"));
    assert!(written.contains("backoffMax: \"1h30m\""), "{written}");
    assert!(written.contains("backoffInitial: \"1s500ms\""), "{written}");
}
