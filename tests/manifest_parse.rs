//! Parsing and validation of whole manifests, through the public `parse` function.

use shipdeck::manifest::{
    parse, BackendKind, IntOrPercent, Manifest, ManifestError, PortRef, ProbeKind,
};

const DESIGN_EXAMPLE: &str = include_str!("manifest_fixtures/design_example.yaml");
const DOCKER_WEB: &str = include_str!("manifest_fixtures/docker_web.yaml");

const BASE: &str = "name: web\nrun:\n  command: [app]\n";

fn parse_ok(text: &str) -> Manifest {
    match parse(text, "test.yaml", &[]) {
        Ok(manifest) => manifest,
        Err(error) => panic!("expected a valid manifest, got: {error}"),
    }
}

fn parse_err(text: &str) -> ManifestError {
    match parse(text, "test.yaml", &[]) {
        Ok(manifest) => panic!("expected an error, got: {manifest:?}"),
        Err(error) => error,
    }
}

/// Parses `BASE` followed by `extra` and returns the error.
fn base_err(extra: &str) -> ManifestError {
    parse_err(&format!("{BASE}{extra}"))
}

fn assert_mentions(error: &ManifestError, needle: &str) {
    assert!(
        error.message.contains(needle),
        "message does not mention {needle:?}: {error}"
    );
}

// The example from the design document.

#[test]
fn design_example_parses() {
    let manifest = parse_ok(DESIGN_EXAMPLE);
    assert_eq!(manifest.name, "web");
    assert_eq!(manifest.version, "1.4.0");
    assert_eq!(manifest.environment, "staging");
    assert_eq!(manifest.backend, BackendKind::Process);
    assert_eq!(manifest.replicas, 2);
}

#[test]
fn design_example_resources() {
    let resources = parse_ok(DESIGN_EXAMPLE).resources;
    let requests = resources.requests.expect("requests");
    let limits = resources.limits.expect("limits");
    assert_eq!(requests.cpu.expect("cpu request").millicores, 250);
    assert_eq!(requests.memory.expect("memory request").bytes, 134_217_728);
    assert_eq!(limits.cpu.expect("cpu limit").millicores, 1000);
    assert_eq!(limits.memory.expect("memory limit").bytes, 268_435_456);
}

#[test]
fn design_example_nested_fields() {
    let manifest = parse_ok(DESIGN_EXAMPLE);
    assert_eq!(manifest.ports[0].host_port, Some(18080));
    assert_eq!(manifest.env["DATABASE_URL"], "${SECRET:database_url}");
    let health = manifest.health_check.expect("healthCheck");
    assert_eq!(health.kind, ProbeKind::Http);
    assert_eq!(health.port, Some(PortRef::Number(8080)));
    assert_eq!(manifest.restart_policy.backoff_max.as_millis(), 300_000);
    let monitoring = manifest.monitoring.expect("monitoring");
    assert_eq!(monitoring.alerts[0].threshold, 80.0);
    assert_eq!(
        monitoring.alerts[0].for_duration.map(|d| d.as_millis()),
        Some(120_000)
    );
    assert_eq!(manifest.auto_scaling.expect("autoScaling").max_replicas, 6);
    assert_eq!(manifest.tags, vec!["frontend", "shop"]);
    let retention = manifest
        .logs
        .and_then(|logs| logs.retention)
        .expect("logs.retention");
    assert_eq!(retention.max_lines, Some(2_000_000));
    assert_eq!(retention.max_size.map(|size| size.bytes), Some(512 << 20));
    assert_eq!(
        retention.max_age.map(|age| age.as_millis()),
        Some(168 * 3_600_000)
    );
}

#[test]
fn docker_fixture_parses() {
    let manifest = parse_ok(DOCKER_WEB);
    assert_eq!(manifest.strategy.max_surge, IntOrPercent::Percent(25));
    assert_eq!(manifest.strategy.max_unavailable, IntOrPercent::Int(0));
    assert_eq!(manifest.env["FEATURE_X"], "off");
    assert_eq!(manifest.version, "2.0");
}

#[test]
fn minimal_manifest_gets_defaults() {
    let manifest = parse_ok(BASE);
    assert_eq!(manifest.environment, "development");
    assert_eq!(manifest.replicas, 1);
    assert_eq!(manifest.termination_grace_period_seconds, 30);
    assert_eq!(manifest.strategy.progress_deadline_seconds, 600);
    assert_eq!(manifest.restart_policy.backoff_initial.as_millis(), 1_000);
}

// YAML 1.1 surprises: strings stay as written, typed fields reject ambiguous forms.

#[test]
fn string_keeps_leading_zero() {
    assert_eq!(parse_ok(&format!("{BASE}version: 010\n")).version, "010");
}

#[test]
fn string_keeps_no() {
    let manifest = parse_ok(&format!("{BASE}env:\n  GREETING: no\n"));
    assert_eq!(manifest.env["GREETING"], "no");
}

#[test]
fn string_keeps_on_and_yes() {
    let manifest = parse_ok(&format!("{BASE}env:\n  A: on\n  B: yes\n  C: off\n"));
    assert_eq!(manifest.env["A"], "on");
    assert_eq!(manifest.env["B"], "yes");
    assert_eq!(manifest.env["C"], "off");
}

#[test]
fn string_keeps_base60_form() {
    let manifest = parse_ok(&format!("{BASE}env:\n  TIME: 2122:22\n"));
    assert_eq!(manifest.env["TIME"], "2122:22");
}

#[test]
fn string_keeps_float_and_null_text() {
    let manifest = parse_ok(&format!(
        "{BASE}version: 1.10\nenv:\n  RATIO: 0.50\n  EMPTY: ''\n"
    ));
    assert_eq!(manifest.version, "1.10");
    assert_eq!(manifest.env["RATIO"], "0.50");
    assert_eq!(manifest.env["EMPTY"], "");
}

#[test]
fn integer_rejects_leading_zero() {
    let error = base_err("replicas: 010\n");
    assert_eq!(error.path, "replicas");
    assert_eq!((error.line, error.column), (4, 11));
    assert_mentions(&error, "write 10");
}

#[test]
fn integer_rejects_base60() {
    let error = base_err("replicas: 2122:22\n");
    assert_eq!(error.path, "replicas");
    assert_mentions(&error, "base-60");
}

#[test]
fn bool_rejects_yes() {
    let error = base_err("monitoring:\n  enabled: yes\n");
    assert_eq!(error.path, "monitoring.enabled");
    assert_eq!((error.line, error.column), (5, 12));
    assert_mentions(&error, "write true or false");
}

#[test]
fn bool_rejects_off() {
    let error = base_err("autoScaling: { enabled: off, minReplicas: 1, maxReplicas: 2 }\n");
    assert_eq!(error.path, "autoScaling.enabled");
    assert_mentions(&error, "write true or false");
}

#[test]
fn integer_rejects_quoted_number() {
    let error = base_err("replicas: \"3\"\n");
    assert_mentions(&error, "remove the quotes");
}

#[test]
fn duplicate_key_names_both_lines() {
    let error = parse_err("name: web\nreplicas: 1\nrun: { command: [app] }\nreplicas: 2\n");
    assert_eq!(error.path, "replicas");
    assert_eq!((error.line, error.column), (4, 1));
    assert_mentions(&error, "line 4");
    assert_mentions(&error, "line 2");
}

#[test]
fn tab_indentation_is_rejected() {
    let error = parse_err("name: web\nrun:\n\tcommand: [app]\n");
    assert_eq!((error.line, error.column), (3, 1));
    assert_mentions(&error, "indent with spaces");
}

#[test]
fn second_document_is_rejected() {
    let error = parse_err(&format!("{BASE}---\n{BASE}"));
    assert_eq!(error.line, 4);
    assert_mentions(&error, "one deployment");
}

#[test]
fn empty_file_is_rejected() {
    let error = parse_err("");
    assert_mentions(&error, "empty");
    assert_eq!(error.origin, "test.yaml");
}

#[test]
fn whitespace_file_is_rejected() {
    assert_mentions(&parse_err("\n  \n# comment\n"), "empty");
}

#[test]
fn anchors_are_rejected() {
    let error = parse_err("name: &n web\nrun: { command: [app] }\nversion: *n\n");
    assert_eq!((error.line, error.column), (1, 7));
    assert_mentions(&error, "anchors");
}

#[test]
fn top_level_list_is_rejected() {
    assert_mentions(&parse_err("- name: web\n"), "top level");
}

// Unknown keys, missing fields and wrong types.

#[test]
fn unknown_key_suggests_nearest() {
    let error = base_err("replica: 2\n");
    assert_eq!(error.path, "replica");
    assert_eq!((error.line, error.column), (4, 1));
    assert_mentions(&error, "did you mean `replicas`?");
}

#[test]
fn unknown_nested_key_suggests_nearest() {
    let error = base_err("resources:\n  requests:\n    cpuu: 1\n");
    assert_eq!(error.path, "resources.requests.cpuu");
    assert_eq!((error.line, error.column), (6, 5));
    assert_mentions(&error, "did you mean `cpu`?");
}

#[test]
fn unknown_key_ignores_case_for_suggestion() {
    let error = base_err("ports:\n  - containerport: 80\n");
    assert_eq!(error.path, "ports[0].containerport");
    assert_mentions(&error, "did you mean `containerPort`?");
}

#[test]
fn unknown_key_lists_valid_keys() {
    let error = base_err("resources:\n  database: 1\n");
    assert_mentions(&error, "expected one of `requests`, `limits`");
}

#[test]
fn unknown_enum_value_suggests_nearest() {
    let error = base_err("backend: dockr\n");
    assert_eq!(error.path, "backend");
    assert_eq!((error.line, error.column), (4, 10));
    assert_mentions(&error, "did you mean `docker`?");
}

#[test]
fn missing_field_points_at_mapping() {
    let error = base_err("ports:\n  - name: http\n    hostPort: 18080\n");
    assert_eq!(error.path, "ports[0].containerPort");
    assert_eq!((error.line, error.column), (5, 5));
    assert_mentions(&error, "missing required field `containerPort`");
}

#[test]
fn missing_name_points_at_document() {
    let error = parse_err("run:\n  command: [app]\n");
    assert_eq!(error.path, "name");
    assert_eq!((error.line, error.column), (1, 1));
}

#[test]
fn wrong_type_says_expected_and_found() {
    let error = base_err("replicas: many\n");
    assert_mentions(&error, "expected a whole number");
    assert_mentions(&error, "found `many`");
}

#[test]
fn scalar_for_list_is_rejected() {
    let error = parse_err("name: web\nrun:\n  command: python3 app.py\n");
    assert_eq!(error.path, "run.command");
    assert_eq!((error.line, error.column), (3, 12));
    assert_mentions(&error, "expected a list");
}

#[test]
fn list_for_string_is_rejected() {
    let error = base_err("version: [1, 2]\n");
    assert_mentions(&error, "expected a string, found a list");
}

#[test]
fn negative_replicas_is_rejected() {
    let error = base_err("replicas: -1\n");
    assert_eq!(error.path, "replicas");
    assert_mentions(&error, "negative value `-1`");
}

#[test]
fn port_number_out_of_range() {
    let error = base_err("ports: [{ containerPort: 70000 }]\n");
    assert_eq!(error.path, "ports[0].containerPort");
    assert_mentions(&error, "out of range");
}

#[test]
fn error_display_has_origin_and_position() {
    let error = base_err("replica: 2\n");
    assert!(
        error.to_string().starts_with("test.yaml:4:1: replica: "),
        "{error}"
    );
}

// Validation after typing.

#[test]
fn name_must_be_dns_label() {
    let error = parse_err("name: Web_App\nrun: { command: [app] }\n");
    assert_eq!(error.path, "name");
    assert_eq!((error.line, error.column), (1, 7));
    assert_mentions(&error, "DNS-1123");
}

#[test]
fn environment_must_be_dns_label() {
    let error = base_err("environment: Prod\n");
    assert_eq!(error.path, "environment");
    assert_eq!((error.line, error.column), (4, 14));
}

#[test]
fn long_name_is_rejected() {
    let error = parse_err(&format!(
        "name: {}\nrun: {{ command: [app] }}\n",
        "a".repeat(64)
    ));
    assert_mentions(&error, "at most 63");
}

#[test]
fn process_needs_command() {
    let error = parse_err("name: web\n");
    assert_eq!(error.path, "run.command");
    assert_mentions(&error, "run.command");
}

#[test]
fn process_with_source_needs_command() {
    let error = parse_err("name: web\nsource: { type: git, url: /srv/web.git }\n");
    assert_eq!(error.path, "run.command");
}

#[test]
fn empty_command_is_rejected() {
    let error = parse_err("name: web\nrun:\n  command: []\n");
    assert_eq!(error.path, "run.command");
    assert_eq!((error.line, error.column), (3, 12));
}

#[test]
fn docker_needs_image_or_source() {
    let error = parse_err("name: web\nbackend: docker\n");
    assert_eq!(error.path, "image");
    assert_mentions(&error, "`image` or `source`");
}

#[test]
fn kubernetes_accepts_source() {
    let manifest =
        parse_ok("name: web\nbackend: kubernetes\nsource: { type: zip, url: ./web.zip }\n");
    assert_eq!(manifest.backend, BackendKind::Kubernetes);
}

#[test]
fn replicas_above_limit_is_rejected() {
    let error = base_err("replicas: 5000\n");
    assert_eq!(error.path, "replicas");
    assert_mentions(&error, "limit of 1000");
}

#[test]
fn container_port_zero_is_rejected() {
    let error = base_err("ports: [{ containerPort: 0 }]\n");
    assert_eq!(error.path, "ports[0].containerPort");
}

#[test]
fn duplicate_port_number_is_rejected() {
    let error = base_err("ports: [{ containerPort: 80 }, { containerPort: 80 }]\n");
    assert_eq!(error.path, "ports[1].containerPort");
    assert_mentions(&error, "declared twice");
}

#[test]
fn same_port_number_per_protocol_is_allowed() {
    let manifest = parse_ok(&format!(
        "{BASE}ports: [{{ containerPort: 53, protocol: TCP }}, {{ containerPort: 53, protocol: UDP }}]\n"
    ));
    assert_eq!(manifest.ports.len(), 2);
}

#[test]
fn duplicate_port_name_is_rejected() {
    let error = base_err(
        "ports:\n  - { name: web, containerPort: 80 }\n  - { name: web, containerPort: 81 }\n",
    );
    assert_eq!(error.path, "ports[1].name");
    assert_eq!((error.line, error.column), (6, 13));
}

#[test]
fn port_name_must_be_service_name() {
    let error = base_err("ports: [{ name: HTTP_Port, containerPort: 80 }]\n");
    assert_eq!(error.path, "ports[0].name");
    assert_mentions(&error, "invalid port name");
}

#[test]
fn probe_port_must_be_declared() {
    let error =
        base_err("ports: [{ containerPort: 80 }]\nhealthCheck: { type: tcp, port: 8080 }\n");
    assert_eq!(error.path, "healthCheck.port");
    assert_eq!((error.line, error.column), (5, 33));
    assert_mentions(&error, "not declared");
}

#[test]
fn probe_port_name_must_be_declared() {
    let error = base_err(
        "ports: [{ name: http, containerPort: 80 }]\nhealthCheck: { type: http, port: web }\n",
    );
    assert_mentions(&error, "port `web` is not declared");
}

#[test]
fn quoted_probe_port_gets_hint() {
    let error =
        base_err("ports: [{ containerPort: 80 }]\nhealthCheck: { type: tcp, port: \"80\" }\n");
    assert_mentions(&error, "without quotes");
}

#[test]
fn quoted_surge_number_gets_hint() {
    let error = base_err("strategy: { maxSurge: \"1\" }\n");
    assert_mentions(&error, "write 1 without quotes");
}

#[test]
fn probe_port_by_name_is_accepted() {
    let manifest = parse_ok(&format!(
        "{BASE}ports: [{{ name: http, containerPort: 80 }}]\nhealthCheck: {{ type: http, port: http }}\n"
    ));
    let probe = manifest.health_check.expect("healthCheck");
    assert_eq!(probe.port, Some(PortRef::Name("http".to_owned())));
}

#[test]
fn http_probe_needs_port() {
    let error = base_err("healthCheck:\n  type: http\n");
    assert_eq!(error.path, "healthCheck.port");
    assert_eq!((error.line, error.column), (5, 3));
}

#[test]
fn exec_probe_needs_command() {
    let error = base_err("livenessCheck: { type: exec }\n");
    assert_eq!(error.path, "livenessCheck.command");
}

#[test]
fn http_probe_path_needs_slash() {
    let error = base_err(
        "ports: [{ containerPort: 80 }]\nhealthCheck: { type: http, port: 80, path: healthz }\n",
    );
    assert_eq!(error.path, "healthCheck.path");
    assert_mentions(&error, "must start with /");
}

#[test]
fn probe_period_must_be_positive() {
    let error = base_err(
        "ports: [{ containerPort: 80 }]\nhealthCheck: { type: tcp, port: 80, periodSeconds: 0 }\n",
    );
    assert_eq!(error.path, "healthCheck.periodSeconds");
}

#[test]
fn probe_threshold_must_be_positive() {
    let error = base_err("ports: [{ containerPort: 80 }]\nhealthCheck: { type: tcp, port: 80, failureThreshold: 0 }\n");
    assert_eq!(error.path, "healthCheck.failureThreshold");
}

#[test]
fn probe_timeout_must_be_positive() {
    let error = base_err(
        "ports: [{ containerPort: 80 }]\nhealthCheck: { type: tcp, port: 80, timeoutSeconds: 0 }\n",
    );
    assert_eq!(error.path, "healthCheck.timeoutSeconds");
}

#[test]
fn cpu_limit_below_request_is_rejected() {
    let error = base_err("resources:\n  requests: { cpu: 500m }\n  limits: { cpu: 0.25 }\n");
    assert_eq!(error.path, "resources.limits.cpu");
    assert_eq!((error.line, error.column), (6, 18));
}

#[test]
fn memory_limit_below_request_is_rejected() {
    let error = base_err("resources:\n  requests: { memory: 1Gi }\n  limits: { memory: 512Mi }\n");
    assert_eq!(error.path, "resources.limits.memory");
}

#[test]
fn auto_scaling_min_above_max_is_rejected() {
    let error = base_err("autoScaling: { minReplicas: 5, maxReplicas: 2 }\n");
    assert_eq!(error.path, "autoScaling.maxReplicas");
}

#[test]
fn auto_scaling_min_zero_is_rejected() {
    let error = base_err("autoScaling: { minReplicas: 0, maxReplicas: 2 }\n");
    assert_eq!(error.path, "autoScaling.minReplicas");
}

#[test]
fn env_name_is_checked() {
    let error = base_err("env:\n  MY-VAR: x\n");
    assert_eq!(error.path, "env.MY-VAR");
    assert_eq!((error.line, error.column), (5, 11));
}

#[test]
fn empty_tag_is_rejected() {
    let error = base_err("tags: [web, '']\n");
    assert_eq!(error.path, "tags[1]");
}

#[test]
fn empty_source_url_is_rejected() {
    let error = base_err("source: { type: git, url: '' }\n");
    assert_eq!(error.path, "source.url");
}

#[test]
fn branch_and_tag_together_are_rejected() {
    let error = base_err("source: { type: git, url: /r.git, branch: main, tag: v1 }\n");
    assert_eq!(error.path, "source.tag");
    assert_mentions(&error, "not both");
}

#[test]
fn percent_above_hundred_is_rejected() {
    let error = base_err("strategy: { maxUnavailable: 150% }\n");
    assert_eq!(error.path, "strategy.maxUnavailable");
}

#[test]
fn invalid_percent_is_rejected() {
    let error = base_err("strategy: { maxSurge: lots }\n");
    assert_eq!(error.path, "strategy.maxSurge");
    assert_mentions(&error, "`lots`");
}

#[test]
fn zero_surge_and_unavailable_is_rejected() {
    let error = base_err("strategy: { maxSurge: 0, maxUnavailable: 0% }\n");
    assert_eq!(error.path, "strategy.maxSurge");
}

#[test]
fn several_problems_are_counted() {
    let error = parse_err("name: Web\nenvironment: Prod\nrun: { command: [app] }\n");
    assert_eq!(error.path, "name");
    assert_mentions(&error, "1 more problem");
}

// Quantities and durations inside a manifest.

#[test]
fn unquoted_cpu_numbers_keep_text() {
    let manifest = parse_ok(&format!(
        "{BASE}resources:\n  requests: {{ cpu: 0.5 }}\n  limits: {{ cpu: 2 }}\n"
    ));
    let requests = manifest.resources.requests.expect("requests");
    let limits = manifest.resources.limits.expect("limits");
    assert_eq!(requests.cpu.as_ref().map(|q| q.millicores), Some(500));
    assert_eq!(requests.cpu.map(|q| q.text), Some("0.5".to_owned()));
    assert_eq!(limits.cpu.map(|q| q.millicores), Some(2000));
}

#[test]
fn memory_exponent_form() {
    let manifest = parse_ok(&format!(
        "{BASE}resources:\n  requests: {{ memory: 129e6 }}\n"
    ));
    let memory = manifest.resources.requests.and_then(|r| r.memory);
    assert_eq!(memory.map(|q| q.bytes), Some(129_000_000));
}

#[test]
fn memory_milli_is_rejected_with_hint() {
    let error = base_err("resources:\n  requests:\n    memory: 1m\n");
    assert_eq!(error.path, "resources.requests.memory");
    assert_eq!((error.line, error.column), (6, 13));
    assert_mentions(&error, "a thousandth of a byte");
    assert_mentions(&error, "1Mi");
}

#[test]
fn invalid_quantity_names_value() {
    let error = base_err("resources: { limits: { memory: 1MB } }\n");
    assert_eq!(error.path, "resources.limits.memory");
    assert_mentions(&error, "`1MB`");
}

#[test]
fn negative_cpu_is_rejected() {
    let error = base_err("resources: { requests: { cpu: -1 } }\n");
    assert_mentions(&error, "negative");
}

#[test]
fn duration_combinations_parse() {
    let manifest = parse_ok(&format!(
        "{BASE}restartPolicy: {{ backoffInitial: 1.5s, backoffMax: 1h30m }}\n"
    ));
    assert_eq!(manifest.restart_policy.backoff_initial.as_millis(), 1_500);
    assert_eq!(manifest.restart_policy.backoff_max.as_millis(), 5_400_000);
}

#[test]
fn duration_without_unit_gets_hint() {
    let error = base_err("restartPolicy:\n  backoffInitial: 30\n");
    assert_eq!(error.path, "restartPolicy.backoffInitial");
    assert_eq!((error.line, error.column), (5, 19));
    assert_mentions(&error, "write 30s");
}

#[test]
fn backoff_max_below_initial_is_rejected() {
    let error = base_err("restartPolicy: { backoffInitial: 10s, backoffMax: 1s }\n");
    assert_eq!(error.path, "restartPolicy.backoffMax");
}

#[test]
fn alert_threshold_accepts_integer_and_fraction() {
    let text = format!(
        "{BASE}monitoring:\n  alerts:\n    - {{ name: a, metric: cpu_percentage, condition: gt, threshold: 80 }}\n    - {{ name: b, metric: cpu_percentage, condition: lt, threshold: 0.5 }}\n"
    );
    let alerts = parse_ok(&text).monitoring.expect("monitoring").alerts;
    assert_eq!(alerts[0].threshold, 80.0);
    assert_eq!(alerts[1].threshold, 0.5);
}

#[test]
fn alert_threshold_rejects_infinity() {
    let error = base_err(
        "monitoring:\n  alerts: [{ name: a, metric: cpu_percentage, condition: gt, threshold: .inf }]\n",
    );
    assert_eq!(error.path, "monitoring.alerts[0].threshold");
}

#[test]
fn alert_rules_name_known_metrics_and_severities() {
    let error = base_err(
        "monitoring:\n  alerts: [{ name: a, metric: memory_percent, condition: gt, threshold: 5 }]\n",
    );
    assert_eq!(error.path, "monitoring.alerts[0].metric");
    assert!(
        error.message.contains("did you mean `memory_percentage`"),
        "{}",
        error.message
    );

    let error = base_err(
        "monitoring:\n  alerts: [{ name: a, metric: cpu_usage, condition: gt, threshold: 5, severity: urgent }]\n",
    );
    assert_eq!(error.path, "monitoring.alerts[0].severity");
    assert!(
        error.message.contains("low, medium, high, critical"),
        "{}",
        error.message
    );

    let scraped = format!(
        "{BASE}ports: [{{ name: http, containerPort: 8080 }}]\nmonitoring:\n  scrape: {{ port: http }}\n  alerts: [{{ name: a, metric: http_requests_total, condition: gt, threshold: 5 }}]\n"
    );
    let alerts = parse_ok(&scraped).monitoring.expect("monitoring").alerts;
    assert_eq!(
        alerts[0].metric, "http_requests_total",
        "a scrape may provide any metric"
    );
}

#[test]
fn monitoring_metrics_name_known_groups() {
    let error = base_err("monitoring:\n  metrics: [cpu, memroy]\n");
    assert_eq!(error.path, "monitoring.metrics[1]");
    assert_mentions(&error, "did you mean `memory`");

    let error = base_err(
        "monitoring:\n  metrics: [memory]\n  alerts: [{ name: a, metric: cpu_percentage, condition: gt, threshold: 5 }]\n",
    );
    assert_eq!(error.path, "monitoring.alerts[0].metric");
    assert_mentions(&error, "add `cpu` to monitoring.metrics");

    let text = format!("{BASE}monitoring:\n  metrics: [cpu, requests]\n");
    let metrics = parse_ok(&text).monitoring.expect("monitoring").metrics;
    assert_eq!(metrics, vec!["cpu", "requests"]);
}

#[test]
fn metrics_retention_has_a_minimum() {
    let error = base_err("monitoring:\n  retention: { raw: 1m }\n");
    assert_eq!(error.path, "monitoring.retention.raw");
    assert_mentions(&error, "minimum of 5m");

    let text = format!("{BASE}monitoring:\n  retention: {{ raw: 2h, rollups: 90d }}\n");
    let retention = parse_ok(&text)
        .monitoring
        .and_then(|monitoring| monitoring.retention)
        .expect("retention");
    assert_eq!(retention.raw.map(|raw| raw.as_millis()), Some(7_200_000));
    assert_eq!(
        retention.rollups.map(|rollups| rollups.as_millis()),
        Some(90 * 86_400_000)
    );
}
