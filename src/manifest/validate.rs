//! Rules that serde types cannot express: ranges, cross-field references and names.
//!
//! Every rule is checked and all problems are collected. [`validate`] returns
//! the first one (in the order the checks run, which roughly follows the field
//! order) and counts the rest in its message, because `parse` returns one error.

use std::collections::{BTreeMap, HashSet};

use super::types::*;

/// Upper bound on `replicas` and `autoScaling.maxReplicas`.
///
/// No shipdeck backend is meant for more replicas than this on one deployment,
/// so a larger number is almost always a typo such as an extra zero.
pub const MAX_REPLICAS: u32 = 1000;

/// One validation failure at a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: String) {
        self.0.push(Problem {
            path: path.into(),
            message,
        });
    }
}

/// Checks every rule and returns the first problem, counting the others in its message.
pub fn validate(manifest: &Manifest) -> Result<(), Problem> {
    let mut problems = Problems::default();

    check_identity(manifest, &mut problems);
    check_workload(manifest, &mut problems);
    check_replicas(manifest, &mut problems);
    check_resources(&manifest.resources, &mut problems);
    check_ports(&manifest.ports, &mut problems);
    check_volumes(&manifest.volumes, &mut problems);
    check_env(&manifest.env, &mut problems);
    check_probes(manifest, &mut problems);
    check_strategy(&manifest.strategy, &mut problems);
    check_restart_policy(&manifest.restart_policy, &mut problems);
    check_logs(manifest, &mut problems);
    check_monitoring(manifest, &mut problems);
    check_auto_scaling(manifest.auto_scaling.as_ref(), &mut problems);
    check_scaling_metrics(manifest, &mut problems);
    check_tags(&manifest.tags, &mut problems);

    first_problem(problems.0)
}

fn first_problem(problems: Vec<Problem>) -> Result<(), Problem> {
    let count = problems.len();
    let Some(mut first) = problems.into_iter().next() else {
        return Ok(());
    };
    if count > 1 {
        let others = count - 1;
        let noun = if others == 1 { "problem" } else { "problems" };
        first
            .message
            .push_str(&format!(" ({others} more {noun} after this one)"));
    }
    Err(first)
}

/// Returns why `value` is not a DNS-1123 label, or `None` if it is one.
pub fn dns_label_problem(value: &str) -> Option<String> {
    let valid_chars = value
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    let alnum_ends = !value.starts_with('-') && !value.ends_with('-');

    if value.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if value.len() > 63 {
        return Some(format!(
            "`{value}` is {} characters; at most 63 are allowed",
            value.len()
        ));
    }
    if !valid_chars || !alnum_ends {
        return Some(format!(
            "`{value}` is not a DNS-1123 label; use lowercase letters, digits and `-`, \
             starting and ending with a letter or digit"
        ));
    }
    None
}

/// Checks a name with the rules of the manifest's `environment` field, a
/// DNS-1123 label, and returns the problem in words.
pub fn validate_environment_name(name: &str) -> Result<(), String> {
    dns_label_problem(name).map_or(Ok(()), Err)
}

fn check_identity(manifest: &Manifest, problems: &mut Problems) {
    if let Some(problem) = dns_label_problem(&manifest.name) {
        problems.add("name", format!("invalid deployment name: {problem}"));
    }
    if let Some(problem) = dns_label_problem(&manifest.environment) {
        problems.add("environment", format!("invalid environment: {problem}"));
    }
    if manifest
        .template
        .as_deref()
        .is_some_and(|name| name.trim().is_empty())
    {
        problems.add(
            "template",
            "template name is empty; name a template or remove the field".to_owned(),
        );
    }
    let namespace = manifest
        .kubernetes
        .as_ref()
        .and_then(|target| target.namespace.as_deref());
    if let Some(problem) = namespace.and_then(dns_label_problem) {
        problems.add(
            "kubernetes.namespace",
            format!("invalid namespace: {problem}"),
        );
    }
}

/// Checks that the backend has something to run.
///
/// The process backend always needs `run.command`, even with `source`, because
/// the build only produces files and the command starts the built app.
fn check_workload(manifest: &Manifest, problems: &mut Problems) {
    match manifest.backend {
        BackendKind::Process => check_process_command(manifest, problems),
        BackendKind::Docker | BackendKind::Kubernetes => {
            if manifest.image.is_none() && manifest.source.is_none() {
                problems.add(
                    "image",
                    "the docker and kubernetes backends need `image` or `source`; set one of them"
                        .to_owned(),
                );
            }
        }
    }

    if manifest
        .image
        .as_deref()
        .is_some_and(|image| image.trim().is_empty())
    {
        problems.add(
            "image",
            "image is empty; name an image such as nginx:1.27".to_owned(),
        );
    }
    if let Some(build) = &manifest.build {
        check_command(&build.command, "build.command", problems);
    }
    if let Some(source) = &manifest.source {
        check_source(source, problems);
    }
}

fn check_process_command(manifest: &Manifest, problems: &mut Problems) {
    match &manifest.run {
        Some(run) => check_command(&run.command, "run.command", problems),
        None => problems.add(
            "run.command",
            "the process backend needs `run.command`, the program and arguments to start \
             (also with `source`, to start the built app)"
                .to_owned(),
        ),
    }
}

fn check_command(command: &[String], path: &str, problems: &mut Problems) {
    match command.first() {
        None => problems.add(
            path,
            "command is empty; write the program and its arguments, such as [\"python3\", \"app.py\"]"
                .to_owned(),
        ),
        Some(program) if program.trim().is_empty() => problems.add(
            format!("{path}[0]"),
            "the program name is empty; write the program to run".to_owned(),
        ),
        Some(_) => {}
    }
}

fn check_source(source: &Source, problems: &mut Problems) {
    if source.url.trim().is_empty() {
        problems.add(
            "source.url",
            "source url is empty; write a path, file://, http:// or https:// URL".to_owned(),
        );
    }
    if source.branch.is_some() && source.tag.is_some() {
        problems.add(
            "source.tag",
            "set either `branch` or `tag`, not both".to_owned(),
        );
    }
    if source.kind != SourceKind::Git && (source.branch.is_some() || source.tag.is_some()) {
        let field = if source.branch.is_some() {
            "branch"
        } else {
            "tag"
        };
        problems.add(
            format!("source.{field}"),
            format!("`{field}` only applies to git sources; remove it or set `type: git`"),
        );
    }
    if let Some(credentials) = &source.credentials {
        check_credentials(credentials, problems);
    }
}

fn check_credentials(credentials: &Credentials, problems: &mut Problems) {
    if credentials.username.trim().is_empty() {
        problems.add(
            "source.credentials.username",
            "username is empty".to_owned(),
        );
    }
    if credentials.password_secret.trim().is_empty() {
        problems.add(
            "source.credentials.passwordSecret",
            "passwordSecret is empty; name the secret that holds the password".to_owned(),
        );
    }
}

fn check_replicas(manifest: &Manifest, problems: &mut Problems) {
    if manifest.replicas > MAX_REPLICAS {
        problems.add("replicas", too_many_replicas(manifest.replicas));
    }
}

fn too_many_replicas(value: u32) -> String {
    format!(
        "{value} replicas is more than the limit of {MAX_REPLICAS}, which guards against typos \
         such as an extra zero; write {MAX_REPLICAS} or fewer"
    )
}

fn check_resources(resources: &Resources, problems: &mut Problems) {
    let (Some(requests), Some(limits)) = (&resources.requests, &resources.limits) else {
        return;
    };
    if let (Some(request), Some(limit)) = (&requests.cpu, &limits.cpu) {
        if limit.millicores < request.millicores {
            problems.add(
                "resources.limits.cpu",
                format!("cpu limit {} is less than the request {}; raise the limit or lower the request", limit.text, request.text),
            );
        }
    }
    if let (Some(request), Some(limit)) = (&requests.memory, &limits.memory) {
        if limit.bytes < request.bytes {
            problems.add(
                "resources.limits.memory",
                format!("memory limit {} is less than the request {}; raise the limit or lower the request", limit.text, request.text),
            );
        }
    }
}

/// Returns why `name` is not an IANA service name as Kubernetes requires for port names.
fn port_name_problem(name: &str) -> Option<String> {
    let valid_chars = name
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    let has_letter = name.bytes().any(|byte| byte.is_ascii_lowercase());
    let well_formed = !name.starts_with('-') && !name.ends_with('-') && !name.contains("--");

    if name.is_empty() || name.len() > 15 || !valid_chars || !has_letter || !well_formed {
        return Some(format!(
            "invalid port name `{name}`; use 1 to 15 lowercase letters, digits and single `-` \
             (not at either end), with at least one letter"
        ));
    }
    None
}

fn check_ports(ports: &[Port], problems: &mut Problems) {
    let mut names = HashSet::new();
    let mut numbers = HashSet::new();
    let mut host_ports = HashSet::new();

    for (index, port) in ports.iter().enumerate() {
        let path = format!("ports[{index}]");
        check_port_ranges(port, &path, problems);

        if !numbers.insert((port.container_port, port.protocol)) {
            problems.add(
                format!("{path}.containerPort"),
                format!("containerPort {} is declared twice; each port number (per protocol) must be unique", port.container_port),
            );
        }
        if let Some(host_port) = port.host_port {
            if !host_ports.insert((host_port, port.protocol)) {
                problems.add(
                    format!("{path}.hostPort"),
                    format!("hostPort {host_port} is used twice; give each port its own hostPort"),
                );
            }
        }
        if let Some(name) = &port.name {
            check_port_name(name, &path, &mut names, problems);
        }
    }
}

fn check_port_ranges(port: &Port, path: &str, problems: &mut Problems) {
    if port.container_port == 0 {
        problems.add(
            format!("{path}.containerPort"),
            "containerPort 0 is out of range; expected 1 to 65535".to_owned(),
        );
    }
    if port.host_port == Some(0) {
        problems.add(
            format!("{path}.hostPort"),
            "hostPort 0 is out of range; expected 1 to 65535".to_owned(),
        );
    }
}

fn check_port_name(name: &str, path: &str, names: &mut HashSet<String>, problems: &mut Problems) {
    if let Some(problem) = port_name_problem(name) {
        problems.add(format!("{path}.name"), problem);
    }
    if !names.insert(name.to_owned()) {
        problems.add(
            format!("{path}.name"),
            format!("port name `{name}` is used twice; port names must be unique"),
        );
    }
}

fn check_volumes(volumes: &[Volume], problems: &mut Problems) {
    let mut names = HashSet::new();
    let mut mount_paths = HashSet::new();

    for (index, volume) in volumes.iter().enumerate() {
        let path = format!("volumes[{index}]");
        check_volume(volume, &path, problems);

        if !names.insert(volume.name.as_str()) {
            problems.add(
                format!("{path}.name"),
                format!(
                    "volume name `{}` is used twice; volume names must be unique",
                    volume.name
                ),
            );
        }
        if !mount_paths.insert(volume.mount_path.as_str()) {
            problems.add(
                format!("{path}.mountPath"),
                format!("mountPath `{}` is used by two volumes", volume.mount_path),
            );
        }
    }
}

fn check_volume(volume: &Volume, path: &str, problems: &mut Problems) {
    if let Some(problem) = dns_label_problem(&volume.name) {
        problems.add(
            format!("{path}.name"),
            format!("invalid volume name: {problem}"),
        );
    }
    if volume.kind == VolumeKind::HostPath && volume.source.as_deref().is_none_or(str::is_empty) {
        problems.add(
            format!("{path}.source"),
            "a hostPath volume needs `source`, the directory on the host".to_owned(),
        );
    }
    if !volume.mount_path.starts_with('/') {
        problems.add(
            format!("{path}.mountPath"),
            format!(
                "mountPath `{}` is not absolute; write a path starting with /",
                volume.mount_path
            ),
        );
    }
}

/// Checks that `name` is a portable environment variable name: letters,
/// digits and `_`, not starting with a digit.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|byte| byte.is_ascii_alphabetic() || byte == b'_');
    first_ok && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

fn check_env(env: &BTreeMap<String, String>, problems: &mut Problems) {
    for name in env.keys() {
        if !is_env_name(name) {
            problems.add(
                format!("env.{name}"),
                format!(
                    "invalid environment variable name `{name}`; use letters, digits and `_`, \
                     not starting with a digit"
                ),
            );
        }
    }
}

fn check_probes(manifest: &Manifest, problems: &mut Problems) {
    if let Some(probe) = &manifest.health_check {
        check_probe(probe, "healthCheck", &manifest.ports, problems);
    }
    if let Some(probe) = &manifest.liveness_check {
        check_probe(probe, "livenessCheck", &manifest.ports, problems);
        if probe.success_threshold != 1 {
            problems.add(
                "livenessCheck.successThreshold",
                format!(
                    "successThreshold is {}, but a liveness check must use 1",
                    probe.success_threshold
                ),
            );
        }
    }
}

fn check_probe(probe: &Probe, path: &str, ports: &[Port], problems: &mut Problems) {
    match probe.kind {
        ProbeKind::Http | ProbeKind::Tcp => {
            check_probe_port(probe.port.as_ref(), path, ports, problems)
        }
        ProbeKind::Exec => {
            let command = probe.command.as_deref().unwrap_or_default();
            check_command(command, &format!("{path}.command"), problems);
        }
    }

    match (&probe.path, probe.kind) {
        (Some(http_path), ProbeKind::Http) if !http_path.starts_with('/') => problems.add(
            format!("{path}.path"),
            format!("path `{http_path}` must start with /, such as /healthz"),
        ),
        (Some(_), ProbeKind::Tcp | ProbeKind::Exec) => problems.add(
            format!("{path}.path"),
            "path is only used by http checks; remove it or set `type: http`".to_owned(),
        ),
        _ => {}
    }

    check_probe_timing(probe, path, problems);
}

fn check_probe_timing(probe: &Probe, path: &str, problems: &mut Problems) {
    check_at_least_one(
        probe.period_seconds,
        &format!("{path}.periodSeconds"),
        problems,
    );
    check_at_least_one(
        probe.timeout_seconds,
        &format!("{path}.timeoutSeconds"),
        problems,
    );
    check_at_least_one(
        probe.success_threshold,
        &format!("{path}.successThreshold"),
        problems,
    );
    check_at_least_one(
        probe.failure_threshold,
        &format!("{path}.failureThreshold"),
        problems,
    );
}

fn check_at_least_one(value: u32, path: &str, problems: &mut Problems) {
    if value < 1 {
        let field = path.rsplit('.').next().unwrap_or(path);
        problems.add(path, format!("{field} is {value}; it must be at least 1"));
    }
}

fn check_probe_port(port: Option<&PortRef>, path: &str, ports: &[Port], problems: &mut Problems) {
    let Some(port) = port else {
        problems.add(
            format!("{path}.port"),
            "http and tcp checks need `port`, a containerPort number or port name".to_owned(),
        );
        return;
    };
    check_port_ref(port, &format!("{path}.port"), ports, problems);
}

fn check_port_ref(port: &PortRef, path: &str, ports: &[Port], problems: &mut Problems) {
    let declared = ports.iter().any(|declared| match port {
        PortRef::Number(number) => declared.container_port == *number,
        PortRef::Name(name) => declared.name.as_deref() == Some(name.as_str()),
    });
    if declared {
        return;
    }
    if let PortRef::Name(name) = port {
        if name.bytes().all(|byte| byte.is_ascii_digit()) {
            let message = format!(
                "port \"{name}\" is quoted, so it is read as a port name, and no port has that name; \
                 write {name} without quotes"
            );
            problems.add(path, message);
            return;
        }
    }

    let port_text = match port {
        PortRef::Number(number) => number.to_string(),
        PortRef::Name(name) => format!("`{name}`"),
    };
    problems.add(
        path,
        format!(
            "port {port_text} is not declared in `ports`; use a containerPort number or port name \
             from `ports` ({}), or declare it there",
            declared_ports(ports)
        ),
    );
}

fn declared_ports(ports: &[Port]) -> String {
    if ports.is_empty() {
        return "none are declared".to_owned();
    }
    let list: Vec<String> = ports
        .iter()
        .map(|port| match &port.name {
            Some(name) => format!("{} `{name}`", port.container_port),
            None => port.container_port.to_string(),
        })
        .collect();
    format!("declared: {}", list.join(", "))
}

fn check_strategy(strategy: &Strategy, problems: &mut Problems) {
    if let IntOrPercent::Percent(percent) = strategy.max_unavailable {
        if percent > 100 {
            problems.add(
                "strategy.maxUnavailable",
                format!("maxUnavailable is {percent}%; it can be at most 100%"),
            );
        }
    }
    let is_zero =
        |value: IntOrPercent| matches!(value, IntOrPercent::Int(0) | IntOrPercent::Percent(0));
    if strategy.kind == StrategyKind::RollingUpdate
        && is_zero(strategy.max_surge)
        && is_zero(strategy.max_unavailable)
    {
        problems.add(
            "strategy.maxSurge",
            "maxSurge and maxUnavailable are both 0, so a rolling update could never make progress; \
             set one of them above 0"
                .to_owned(),
        );
    }
    check_at_least_one(
        strategy.progress_deadline_seconds,
        "strategy.progressDeadlineSeconds",
        problems,
    );
}

fn check_restart_policy(policy: &RestartPolicy, problems: &mut Problems) {
    if policy.backoff_initial.as_millis() == 0 {
        problems.add(
            "restartPolicy.backoffInitial",
            "backoffInitial is 0s; write a positive duration such as 1s".to_owned(),
        );
    }
    if policy.backoff_max < policy.backoff_initial {
        problems.add(
            "restartPolicy.backoffMax",
            format!(
                "backoffMax {} is shorter than backoffInitial {}; raise backoffMax",
                policy.backoff_max, policy.backoff_initial
            ),
        );
    }
}

/// Smallest line limit: below it, retention would drop lines before an
/// operator could read them.
const MIN_LOG_LINES: u64 = 100;
/// Smallest size limit, for the same reason.
const MIN_LOG_BYTES: u64 = 64 * 1024;

fn check_logs(manifest: &Manifest, problems: &mut Problems) {
    let Some(retention) = manifest
        .logs
        .as_ref()
        .and_then(|logs| logs.retention.as_ref())
    else {
        return;
    };
    if let Some(lines) = retention.max_lines.filter(|lines| *lines < MIN_LOG_LINES) {
        problems.add(
            "logs.retention.maxLines",
            format!("maxLines {lines} is below the minimum of {MIN_LOG_LINES}; keep at least {MIN_LOG_LINES} lines"),
        );
    }
    if let Some(size) = retention
        .max_size
        .as_ref()
        .filter(|size| size.bytes < MIN_LOG_BYTES)
    {
        problems.add(
            "logs.retention.maxSize",
            format!(
                "maxSize {} is below the minimum of 64Ki; write 64Ki or more",
                size.text
            ),
        );
    }
    if retention
        .max_age
        .is_some_and(|age| age.as_millis() < 60_000)
    {
        problems.add(
            "logs.retention.maxAge",
            "maxAge is below the minimum of 1m; write 1m or more, such as 168h".to_owned(),
        );
    }
}

fn check_monitoring(manifest: &Manifest, problems: &mut Problems) {
    let Some(monitoring) = &manifest.monitoring else {
        return;
    };
    if monitoring.interval.as_millis() == 0 {
        problems.add(
            "monitoring.interval",
            "interval is 0s; write a positive duration such as 10s".to_owned(),
        );
    }
    for (index, group) in monitoring.metrics.iter().enumerate() {
        if !METRIC_GROUPS.contains(&group.as_str()) {
            let hint = super::suggest::closest(group, METRIC_GROUPS)
                .map(|close| format!("did you mean `{close}`? "))
                .unwrap_or_default();
            problems.add(
                format!("monitoring.metrics[{index}]"),
                format!(
                    "unknown metric group `{group}`; {hint}use some of {}, or leave the list out to collect them all",
                    METRIC_GROUPS.join(", ")
                ),
            );
        }
    }
    if let Some(scrape) = &monitoring.scrape {
        check_scrape(scrape, &manifest.ports, problems);
    }
    if let Some(retention) = &monitoring.retention {
        check_metrics_retention(retention, problems);
    }
    check_alerts(monitoring, problems);
    check_channel_names(
        &monitoring.notifications,
        "monitoring.notifications",
        problems,
    );
}

/// Groups of built-in metrics that `monitoring.metrics` can choose.
pub const METRIC_GROUPS: &[&str] = &["cpu", "memory", "network", "requests", "replicas"];

/// Returns the group of a built-in metric, or `None` for a scraped one.
pub fn metric_group(metric: &str) -> Option<&'static str> {
    let group = match metric {
        "cpu_usage" | "cpu_percentage" => "cpu",
        "memory_usage" | "memory_percentage" => "memory",
        "replicas_desired" | "replicas_available" | "replicas_ready" => "replicas",
        _ if metric.starts_with("network_") => "network",
        _ if metric.starts_with("requests_") || metric.starts_with("response_time") => "requests",
        _ => return None,
    };
    Some(group)
}

/// Smallest raw retention: rollups are made from raw points once a minute,
/// so a shorter one would drop points before they are rolled up.
const MIN_RAW_RETENTION_MS: u64 = 5 * 60_000;

fn check_metrics_retention(retention: &MetricsRetention, problems: &mut Problems) {
    let raw = retention.raw.map(|raw| raw.as_millis());
    if raw.is_some_and(|raw| raw < MIN_RAW_RETENTION_MS) {
        problems.add(
            "monitoring.retention.raw",
            "raw is below the minimum of 5m; write 5m or more, such as 24h".to_owned(),
        );
    }
    let rollups = retention.rollups.map(|rollups| rollups.as_millis());
    if rollups.is_some_and(|rollups| rollups < MIN_RAW_RETENTION_MS) {
        problems.add(
            "monitoring.retention.rollups",
            "rollups is below the minimum of 5m; write 5m or more, such as 30d".to_owned(),
        );
    }
}

fn check_scrape(scrape: &Scrape, ports: &[Port], problems: &mut Problems) {
    if !scrape.path.starts_with('/') {
        problems.add(
            "monitoring.scrape.path",
            format!("path `{}` must start with /, such as /metrics", scrape.path),
        );
    }
    check_port_ref(&scrape.port, "monitoring.scrape.port", ports, problems);
}

/// Metrics that alert rules may name without a scrape. Scraped series can
/// have any name, so with `monitoring.scrape` other names are accepted.
pub const BUILT_IN_METRICS: &[&str] = &[
    "cpu_usage",
    "cpu_percentage",
    "memory_usage",
    "memory_percentage",
    "network_bytes_in",
    "network_bytes_out",
    "network_connections_in",
    "network_connections_out",
    "network_connections_active",
    "requests_total",
    "requests_failed",
    "requests_per_second",
    "response_time",
    "response_time_p95",
    "replicas_desired",
    "replicas_available",
    "replicas_ready",
    // Last, because the metrics collector sweeps every metric before it.
    "scrape_up",
];

const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];

fn check_alerts(monitoring: &Monitoring, problems: &mut Problems) {
    let mut names = HashSet::new();
    for (index, alert) in monitoring.alerts.iter().enumerate() {
        let path = format!("monitoring.alerts[{index}].");
        if !names.insert(alert.name.as_str()) {
            problems.add(
                format!("{path}name"),
                format!(
                    "alert name `{}` is used twice; alert names must be unique",
                    alert.name
                ),
            );
        }
        check_alert(alert, &path, Some(monitoring), problems);
    }
}

/// Checks one alert rule whose field paths start with `prefix` (such as
/// `monitoring.alerts[0].`, or nothing for a rule sent on its own).
/// `monitoring` is the deployment's, which decides whether the rule can ever
/// get a value: without it, the defaults (enabled, no scrape, every group).
fn check_alert(
    alert: &AlertRuleSpec,
    prefix: &str,
    monitoring: Option<&Monitoring>,
    problems: &mut Problems,
) {
    check_alert_name(&alert.name, &format!("{prefix}name"), problems);
    if monitoring.is_some_and(|monitoring| !monitoring.enabled) {
        problems.add(
            format!("{prefix}metric"),
            "monitoring.enabled is false, so no metric is collected and the rule could never fire; remove `enabled: false` or the rule".to_owned(),
        );
    }
    if let Some(problem) = metric_problem(alert.metric.trim(), monitoring) {
        problems.add(format!("{prefix}metric"), problem);
    }
    if !alert.threshold.is_finite() {
        problems.add(
            format!("{prefix}threshold"),
            format!("threshold {} is not a finite number", alert.threshold),
        );
    }
    if let Some(severity) = alert
        .severity
        .as_deref()
        .filter(|s| !SEVERITIES.contains(s))
    {
        problems.add(
            format!("{prefix}severity"),
            format!(
                "unknown severity `{severity}`; use one of {}",
                SEVERITIES.join(", ")
            ),
        );
    }
    check_channel_names(
        &alert.notifications,
        &format!("{prefix}notifications"),
        problems,
    );
}

/// Checks one alert rule that is not part of a manifest, such as one sent
/// through the API, with the same rules as `monitoring.alerts`, against the
/// `monitoring` of the deployment's current revision.
pub fn validate_alert_rule(
    alert: &AlertRuleSpec,
    monitoring: Option<&Monitoring>,
) -> Result<(), Problem> {
    let mut problems = Problems::default();
    check_alert(alert, "", monitoring, &mut problems);
    first_problem(problems.0)
}

/// Rule names appear in URLs, events and notification titles, so they keep
/// to the characters of channel names, in either case.
fn check_alert_name(name: &str, path: &str, problems: &mut Problems) {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        problems.add(
            path,
            format!(
                "invalid alert name {name:?}: use 1 to 63 letters, digits, '.', '_' and '-', starting with a letter or digit, such as high-cpu"
            ),
        );
    }
}

/// Describes why a rule on `metric` could never get a value, if it could not.
fn metric_problem(metric: &str, monitoring: Option<&Monitoring>) -> Option<String> {
    if metric.is_empty() {
        return Some(
            "metric is empty; name the metric to watch, such as cpu_percentage".to_owned(),
        );
    }
    let scraped = monitoring.is_some_and(|monitoring| monitoring.scrape.is_some());
    if BUILT_IN_METRICS.contains(&metric) {
        return built_in_problem(metric, monitoring, scraped);
    }
    if let Err(problem) = crate::monitor::scrape::canonical_series(metric) {
        return Some(format!("invalid metric `{metric}`: {problem}"));
    }

    if !scraped {
        let hint = super::suggest::closest(metric, BUILT_IN_METRICS)
            .map(|close| format!("did you mean `{close}`? "))
            .unwrap_or_default();
        return Some(format!(
            "unknown metric `{metric}`; {hint}use one of {}, or configure monitoring.scrape for the application's own metrics",
            BUILT_IN_METRICS.join(", ")
        ));
    }
    // A scraped series may have any name, but one two edits from a built-in
    // metric, or cut short of one, is far more likely a slip. Wider
    // distances would catch common names such as http_requests_total.
    let near = BUILT_IN_METRICS.iter().find(|built_in| {
        let cut_mid_word = built_in
            .strip_prefix(metric)
            .is_some_and(|rest| !rest.starts_with('_'));
        strsim::levenshtein(metric, built_in) <= 2 || (metric.len() >= 6 && cut_mid_word)
    })?;
    Some(format!(
        "unknown metric `{metric}`; did you mean the built-in `{near}`? A scraped series this close to a built-in name is not accepted; rename it in the application"
    ))
}

fn built_in_problem(
    metric: &str,
    monitoring: Option<&Monitoring>,
    scraped: bool,
) -> Option<String> {
    if metric == "scrape_up" && !scraped {
        return Some(
            "`scrape_up` counts the replicas that answer monitoring.scrape, which this deployment does not set; configure monitoring.scrape".to_owned(),
        );
    }
    let listed = &monitoring?.metrics;
    let group = metric_group(metric)?;
    if listed.is_empty() || listed.iter().any(|name| name == group) {
        return None;
    }
    Some(format!(
        "`{metric}` is in the `{group}` group, which monitoring.metrics leaves out; add `{group}` to monitoring.metrics"
    ))
}

fn check_channel_names(channels: &[String], path: &str, problems: &mut Problems) {
    for (index, channel) in channels.iter().enumerate() {
        if channel.trim().is_empty() {
            problems.add(
                format!("{path}[{index}]"),
                "channel name is empty; name a channel from `shipdeck notify ls`".to_owned(),
            );
        }
    }
}

fn check_auto_scaling(auto_scaling: Option<&AutoScaling>, problems: &mut Problems) {
    let Some(scaling) = auto_scaling else {
        return;
    };
    if scaling.min_replicas < 1 {
        problems.add(
            "autoScaling.minReplicas",
            "minReplicas is 0; it must be at least 1".to_owned(),
        );
    }
    if scaling.min_replicas > scaling.max_replicas {
        problems.add(
            "autoScaling.maxReplicas",
            format!(
                "maxReplicas {} is less than minReplicas {}",
                scaling.max_replicas, scaling.min_replicas
            ),
        );
    }
    if scaling.max_replicas > MAX_REPLICAS {
        problems.add(
            "autoScaling.maxReplicas",
            too_many_replicas(scaling.max_replicas),
        );
    }
    check_scaling_targets(scaling, problems);
}

/// Checks that each series an autoscaling target names can get a value,
/// because a target that is never read keeps the count fixed for good.
fn check_scaling_metrics(manifest: &Manifest, problems: &mut Problems) {
    let Some(scaling) = manifest.auto_scaling.as_ref() else {
        return;
    };
    // A cluster reads these from its own metrics adapters, not from shipdeck.
    if manifest.backend == BackendKind::Kubernetes {
        return;
    }
    let http = manifest.ports.iter().any(|port| {
        port.app_protocol
            .as_deref()
            .is_some_and(|protocol| protocol.eq_ignore_ascii_case("http"))
    });
    for (index, target) in scaling.metrics.iter().enumerate() {
        let path = format!("autoScaling.metrics[{index}].name");
        let name = target.name.as_str();
        if let Some(problem) = metric_problem(name, manifest.monitoring.as_ref()) {
            problems.add(path, problem);
        } else if metric_group(name) == Some("requests") && !http {
            problems.add(
                path,
                format!(
                    "`{name}` is counted only on ports with `appProtocol: http`, and no port has it; add it to the port that serves HTTP"
                ),
            );
        }
    }
}

fn check_scaling_targets(scaling: &AutoScaling, problems: &mut Problems) {
    for (field, target) in [
        ("targetCPUUtilization", scaling.target_cpu_utilization),
        ("targetMemoryUtilization", scaling.target_memory_utilization),
    ] {
        if target == Some(0) {
            problems.add(
                format!("autoScaling.{field}"),
                format!("{field} is 0; write a percentage of at least 1"),
            );
        }
    }
    for (index, target) in scaling.metrics.iter().enumerate() {
        let path = format!("autoScaling.metrics[{index}]");
        if target.name.trim().is_empty() {
            problems.add(
                format!("{path}.name"),
                "name is empty; name a series from `shipdeck metrics NAME --list`".to_owned(),
            );
        }
        if !(target.average_value.is_finite() && target.average_value > 0.0) {
            problems.add(
                format!("{path}.averageValue"),
                format!(
                    "averageValue is {}; write the value per replica to hold, above 0",
                    target.average_value
                ),
            );
        }
    }
    if let Some(interval) = scaling.interval {
        if interval.as_std() < std::time::Duration::from_secs(1) {
            problems.add(
                "autoScaling.interval",
                format!("interval is {interval}; write at least 1s"),
            );
        }
    }
    for (name, policy) in [
        ("scaleUpPolicy", &scaling.scale_up_policy),
        ("scaleDownPolicy", &scaling.scale_down_policy),
    ] {
        if let Some(policy) = policy {
            check_scaling_policy(policy, &format!("autoScaling.{name}"), problems);
        }
    }
}

/// Kubernetes' limits for HPA behavior: a window of at most one hour, and rule periods of 1 to 1800 seconds.
fn check_scaling_policy(policy: &ScalingPolicy, path: &str, problems: &mut Problems) {
    if policy
        .stabilization_window_seconds
        .is_some_and(|seconds| seconds > 3600)
    {
        problems.add(
            format!("{path}.stabilizationWindowSeconds"),
            "stabilizationWindowSeconds can be at most 3600 (one hour)".to_owned(),
        );
    }
    for (index, rule) in policy.policies.iter().enumerate() {
        let rule_path = format!("{path}.policies[{index}]");
        check_at_least_one(rule.value, &format!("{rule_path}.value"), problems);
        if rule.period_seconds < 1 || rule.period_seconds > 1800 {
            problems.add(
                format!("{rule_path}.periodSeconds"),
                format!(
                    "periodSeconds is {}; it must be from 1 to 1800",
                    rule.period_seconds
                ),
            );
        }
    }
}

fn check_tags(tags: &[String], problems: &mut Problems) {
    for (index, tag) in tags.iter().enumerate() {
        if tag.trim().is_empty() {
            problems.add(
                format!("tags[{index}]"),
                "tag is empty; remove it or write a tag".to_owned(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_label_accepts_valid_names() {
        for name in ["web", "a", "web-2", "0abc", &"a".repeat(63)] {
            assert_eq!(dns_label_problem(name), None, "{name}");
        }
    }

    #[test]
    fn dns_label_rejects_invalid_names() {
        for name in [
            "",
            "Web",
            "-web",
            "web-",
            "web_1",
            "web.app",
            &"a".repeat(64),
        ] {
            assert!(dns_label_problem(name).is_some(), "{name}");
        }
    }

    #[test]
    fn port_name_rules() {
        assert_eq!(port_name_problem("http"), None);
        assert_eq!(port_name_problem("metrics-2"), None);
        for name in ["HTTP", "8080", "a--b", "-a", "a-", "abcdefghijklmnop", ""] {
            assert!(port_name_problem(name).is_some(), "{name}");
        }
    }

    #[test]
    fn env_name_rules() {
        assert!(is_env_name("GREETING"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("MY-VAR"));
        assert!(!is_env_name(""));
    }

    #[test]
    fn extra_problems_are_counted() {
        let problems = vec![
            Problem {
                path: "a".to_owned(),
                message: "first".to_owned(),
            },
            Problem {
                path: "b".to_owned(),
                message: "second".to_owned(),
            },
        ];
        let first = first_problem(problems).expect_err("has problems");
        assert_eq!(first.path, "a");
        assert!(first.message.ends_with("(1 more problem after this one)"));
    }

    fn rule(metric: &str, threshold: f64) -> AlertRuleSpec {
        AlertRuleSpec {
            name: "busy".to_owned(),
            metric: metric.to_owned(),
            condition: AlertCondition::Gt,
            threshold,
            for_duration: None,
            repeat_interval: None,
            severity: None,
            notifications: Vec::new(),
        }
    }

    #[test]
    fn single_rule_gets_field_paths_without_prefix() {
        assert_eq!(
            validate_alert_rule(&rule("cpu_percentage", 80.0), None),
            Ok(())
        );

        let unknown = validate_alert_rule(&rule("cpu_percentag", 80.0), None).unwrap_err();
        assert_eq!(unknown.path, "metric");
        assert!(unknown.message.contains("did you mean `cpu_percentage`"));

        let infinite = validate_alert_rule(&rule("cpu_percentage", f64::INFINITY), None);
        assert_eq!(infinite.unwrap_err().path, "threshold");

        let mut severity = rule("cpu_percentage", 80.0);
        severity.severity = Some("urgent".to_owned());
        assert_eq!(
            validate_alert_rule(&severity, None).unwrap_err().path,
            "severity"
        );

        let mut channel = rule("cpu_percentage", 80.0);
        channel.notifications = vec![" ".to_owned()];
        let empty = validate_alert_rule(&channel, None).unwrap_err();
        assert_eq!(empty.path, "notifications[0]");
    }

    fn scraping() -> Monitoring {
        let text = "name: a\nrun:\n  command: [\"true\"]\nports: [{ name: http, containerPort: 8080 }]\nmonitoring:\n  scrape: { port: http }\n";
        crate::manifest::parse(text, "test.yaml", &[])
            .expect("a valid manifest")
            .monitoring
            .expect("monitoring")
    }

    #[test]
    fn rule_checks_what_could_never_fire() {
        let scraping = scraping();
        let near = validate_alert_rule(&rule("cpu_percent", 1.0), Some(&scraping)).unwrap_err();
        assert!(
            near.message
                .contains("did you mean the built-in `cpu_percentage`"),
            "{}",
            near.message
        );

        for common in ["http_requests_total", "requests", "memory_bytes", "cpu"] {
            assert_eq!(
                validate_alert_rule(&rule(common, 1.0), Some(&scraping)),
                Ok(()),
                "{common}"
            );
        }

        let labelled = rule(r#"sample_requests_total{path="/",code="200"}"#, 1.0);
        assert_eq!(validate_alert_rule(&labelled, Some(&scraping)), Ok(()));
        let broken = rule(r#"sample_requests_total{path=/}"#, 1.0);
        let error = validate_alert_rule(&broken, Some(&scraping)).unwrap_err();
        assert!(error.message.contains("double quotes"), "{}", error.message);

        let up = validate_alert_rule(&rule("scrape_up", 1.0), None).unwrap_err();
        assert!(
            up.message.contains("configure monitoring.scrape"),
            "{}",
            up.message
        );

        let mut off = scraping.clone();
        off.enabled = false;
        let error = validate_alert_rule(&rule("cpu_usage", 1.0), Some(&off)).unwrap_err();
        assert!(
            error.message.contains("monitoring.enabled is false"),
            "{}",
            error.message
        );

        let mut cpu_only = scraping;
        cpu_only.metrics = vec!["cpu".to_owned()];
        let error =
            validate_alert_rule(&rule("requests_failed", 1.0), Some(&cpu_only)).unwrap_err();
        assert!(
            error.message.contains("add `requests`"),
            "{}",
            error.message
        );

        for name in ["bad name!", "a/b", "x?y=1", "", "-lead"] {
            let mut named = rule("cpu_usage", 1.0);
            named.name = name.to_owned();
            let error = validate_alert_rule(&named, None).unwrap_err();
            assert_eq!(error.path, "name", "{name:?}");
        }
    }

    #[test]
    fn scrape_allows_any_metric_name() {
        assert_eq!(
            validate_alert_rule(&rule("queue_depth", 10.0), Some(&scraping())),
            Ok(())
        );
        assert!(validate_alert_rule(&rule("queue_depth", 10.0), None).is_err());
    }
}
