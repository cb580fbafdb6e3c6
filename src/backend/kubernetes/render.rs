//! Rendering of one revision into the objects applied to a cluster: a
//! Deployment, a Service for its ports, a Secret for the env values that
//! come from secrets, and an autoscaling/v2 HorizontalPodAutoscaler when
//! autoscaling is on.
//!
//! Secret values never appear in the pod spec: an env var whose value
//! refers to `${SECRET:name}` reads its whole rendered value from the
//! revision's Secret through `secretKeyRef`.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec,
    MetricTarget, PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    HTTPGetAction, HostPathVolumeSource, PersistentVolumeClaimVolumeSource, PodSpec,
    PodTemplateSpec, Probe as KubeProbe, ResourceRequirements, Secret, SecretKeySelector, Service,
    ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;

use super::labels::{ObjectIdentity, ANNOTATION_HOME, ANNOTATION_VERSION};
use crate::backend::process::expand_command;
use crate::manifest::{
    decimal_quantity, AutoScaling, AverageValueTarget, IntOrPercent, Manifest, PortRef, Probe,
    ProbeKind, ResourceList, RestartMode, ScalingPolicy, StopSignal, StrategyKind, VolumeKind,
};

/// A manifest setting that a Kubernetes Deployment cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RenderError {
    pub field: String,
    pub message: String,
}

fn reject(field: &str, message: impl Into<String>) -> RenderError {
    RenderError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// One revision and everything rendering it needs.
pub struct RevisionInput<'a> {
    pub identity: &'a ObjectIdentity,
    pub revision: u64,
    pub spec: &'a Manifest,
    pub namespace: &'a str,
    /// The agent's home path, for an annotation.
    pub home: &'a str,
    /// `spec.env` with every secret reference replaced by its current value.
    pub env: &'a BTreeMap<String, String>,
}

/// The objects of one revision.
#[derive(Clone, PartialEq)]
pub struct ClusterObjects {
    pub deployment: Deployment,
    /// `None` when the manifest declares no ports.
    pub service: Option<Service>,
    /// `None` when no env value refers to a secret.
    pub secret: Option<Secret>,
    /// `None` unless `autoScaling.enabled`.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
}

impl fmt::Debug for ClusterObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret_keys: Option<Vec<&String>> = self
            .secret
            .as_ref()
            .map(|secret| secret.data.iter().flatten().map(|(key, _)| key).collect());
        f.debug_struct("ClusterObjects")
            .field("deployment", &self.deployment)
            .field("service", &self.service)
            .field("secret_keys", &secret_keys)
            .field("autoscaler", &self.autoscaler)
            .finish()
    }
}

/// Renders a revision, rejecting settings a Deployment cannot carry out.
pub fn render(input: &RevisionInput<'_>) -> Result<ClusterObjects, RenderError> {
    check_supported(input.spec)?;
    let (env, secret_data) = container_env(input)?;
    let secret = (!secret_data.is_empty()).then(|| Secret {
        metadata: metadata(input, input.identity.secret_name(input.revision)),
        data: Some(secret_data),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    });
    Ok(ClusterObjects {
        deployment: deployment(input, env)?,
        service: service(input)?,
        secret,
        autoscaler: autoscaler(input),
    })
}

/// Rejects settings a Deployment cannot carry out, before anything is
/// stored or applied.
pub fn check_supported(spec: &Manifest) -> Result<(), RenderError> {
    if spec.source.is_some() {
        return Err(reject(
            "source",
            "backend: kubernetes cannot build from source; build and push an image, then set image",
        ));
    }
    if spec.image.is_none() {
        return Err(reject(
            "image",
            "backend: kubernetes needs an image; set image to a reference the cluster can pull",
        ));
    }
    if spec.restart_policy.policy != RestartMode::Always {
        return Err(reject(
            "restartPolicy.policy",
            "a Kubernetes Deployment always restarts its containers; remove restartPolicy.policy or set it to always",
        ));
    }
    if spec.stop_signal != StopSignal::Term {
        return Err(reject(
            "stopSignal",
            "Kubernetes 1.32 stops containers with SIGTERM only; remove stopSignal or set it to SIGTERM",
        ));
    }
    Ok(())
}

fn metadata(input: &RevisionInput<'_>, name: String) -> ObjectMeta {
    let mut annotations = BTreeMap::from([(ANNOTATION_HOME.to_owned(), input.home.to_owned())]);
    if !input.spec.version.is_empty() {
        annotations.insert(ANNOTATION_VERSION.to_owned(), input.spec.version.clone());
    }
    ObjectMeta {
        name: Some(name),
        namespace: Some(input.namespace.to_owned()),
        labels: Some(input.identity.labels(input.revision)),
        annotations: Some(annotations),
        ..ObjectMeta::default()
    }
}

/// Escapes `$(` as `$$(`, because Kubernetes expands `$(VAR)` in a
/// container's command and env values, and shipdeck already expanded its own
/// `${VAR}` placeholders.
fn escape_dependent(text: &str) -> String {
    text.replace("$(", "$$(")
}

/// Builds the container's env, sorted by name, and the Secret's data. An
/// env value that refers to a secret moves whole into the Secret.
fn container_env(
    input: &RevisionInput<'_>,
) -> Result<(Vec<EnvVar>, BTreeMap<String, ByteString>), RenderError> {
    let mut plain = input.env.clone();
    let mut secret_data = BTreeMap::new();
    for (key, raw) in &input.spec.env {
        let single = BTreeMap::from([(key.clone(), raw.clone())]);
        let references = crate::config::render::secret_references(&single)
            .map_err(|error| reject(&format!("env.{key}"), error.to_string()))?;
        if !references.is_empty() {
            if let Some(value) = plain.remove(key) {
                secret_data.insert(key.clone(), ByteString(value.into_bytes()));
            }
        }
    }
    for (name, value) in shipdeck_env(input) {
        plain.insert(name, value);
    }

    let mut env: Vec<EnvVar> = plain
        .into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(escape_dependent(&value)),
            value_from: None,
        })
        .collect();
    let secret_name = input.identity.secret_name(input.revision);
    env.extend(secret_data.keys().map(|key| EnvVar {
        name: key.clone(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret_name.clone(),
                key: key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }));
    env.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((env, secret_data))
}

/// Returns the variables every backend gives a replica. The application listens
/// on its `containerPort` inside the pod, so `PORT` names that port.
// NOTE: SHIPDECK_REPLICA (the replica's index) has no equivalent in a
// Deployment's pods, which are interchangeable, so it is left out.
fn shipdeck_env(input: &RevisionInput<'_>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(first) = input.spec.ports.first() {
        env.insert("PORT".to_owned(), first.container_port.to_string());
    }
    for port in &input.spec.ports {
        if let Some(name) = &port.name {
            let suffix = name.to_ascii_uppercase().replace('-', "_");
            env.insert(format!("PORT_{suffix}"), port.container_port.to_string());
        }
    }
    env.insert(
        "SHIPDECK_DEPLOYMENT".to_owned(),
        input.identity.key.name.clone(),
    );
    env.insert(
        "SHIPDECK_ENVIRONMENT".to_owned(),
        input.identity.key.environment.clone(),
    );
    env.insert("SHIPDECK_REVISION".to_owned(), input.revision.to_string());
    env
}

fn deployment(input: &RevisionInput<'_>, env: Vec<EnvVar>) -> Result<Deployment, RenderError> {
    let spec = input.spec;
    // The revision label on pods shows which revision each pod runs.
    let template_labels = input.identity.labels(input.revision);
    let autoscaled = spec
        .auto_scaling
        .as_ref()
        .is_some_and(|scaling| scaling.enabled);

    Ok(Deployment {
        metadata: metadata(input, input.identity.name.clone()),
        spec: Some(DeploymentSpec {
            // The autoscaler owns the replica count when it is on.
            replicas: (!autoscaled).then(|| to_i32(spec.replicas)),
            selector: LabelSelector {
                match_labels: Some(input.identity.selector()),
                match_expressions: None,
            },
            strategy: Some(strategy(spec)),
            progress_deadline_seconds: Some(to_i32(spec.strategy.progress_deadline_seconds)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(template_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(input, env)?),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn int_or_percent(value: IntOrPercent) -> IntOrString {
    match value {
        IntOrPercent::Int(count) => IntOrString::Int(to_i32(count)),
        IntOrPercent::Percent(percent) => IntOrString::String(format!("{percent}%")),
    }
}

fn strategy(spec: &Manifest) -> DeploymentStrategy {
    match spec.strategy.kind {
        StrategyKind::Recreate => DeploymentStrategy {
            type_: Some("Recreate".to_owned()),
            rolling_update: None,
        },
        StrategyKind::RollingUpdate => DeploymentStrategy {
            type_: Some("RollingUpdate".to_owned()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(int_or_percent(spec.strategy.max_surge)),
                max_unavailable: Some(int_or_percent(spec.strategy.max_unavailable)),
            }),
        },
    }
}

fn pod_spec(input: &RevisionInput<'_>, env: Vec<EnvVar>) -> Result<PodSpec, RenderError> {
    let spec = input.spec;
    Ok(PodSpec {
        containers: vec![container(input, env)?],
        volumes: volumes(spec)?,
        termination_grace_period_seconds: Some(i64::from(spec.termination_grace_period_seconds)),
        restart_policy: Some("Always".to_owned()),
        ..PodSpec::default()
    })
}

fn container(input: &RevisionInput<'_>, env: Vec<EnvVar>) -> Result<Container, RenderError> {
    let spec = input.spec;
    let command = match spec.run.as_ref().map(|run| &run.command) {
        Some(command) if !command.is_empty() => Some(expanded_command(input, command)?),
        _ => None,
    };
    let ports: Vec<ContainerPort> = spec
        .ports
        .iter()
        .map(|port| ContainerPort {
            name: port.name.clone(),
            container_port: i32::from(port.container_port),
            protocol: Some(protocol(port.protocol).to_owned()),
            ..ContainerPort::default()
        })
        .collect();
    let mounts: Vec<VolumeMount> = spec
        .volumes
        .iter()
        .map(|volume| VolumeMount {
            name: volume.name.clone(),
            mount_path: volume.mount_path.clone(),
            ..VolumeMount::default()
        })
        .collect();

    Ok(Container {
        name: input.identity.key.name.clone(),
        image: spec.image.clone(),
        command,
        working_dir: spec.run.as_ref().and_then(|run| run.workdir.clone()),
        env: Some(env),
        ports: (!ports.is_empty()).then_some(ports),
        resources: resources(spec),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        readiness_probe: spec
            .health_check
            .as_ref()
            .map(|probe| kube_probe("healthCheck", probe, spec))
            .transpose()?,
        liveness_probe: spec
            .liveness_check
            .as_ref()
            .map(|probe| kube_probe("livenessCheck", probe, spec))
            .transpose()?,
        ..Container::default()
    })
}

/// Expands `${VAR}` in `run.command` with the replica's plain env, as the
/// other backends do. Secrets cannot appear there: deploy rejects a
/// command that refers to one.
fn expanded_command(
    input: &RevisionInput<'_>,
    command: &[String],
) -> Result<Vec<String>, RenderError> {
    let mut variables = input.env.clone();
    variables.extend(shipdeck_env(input));
    let expanded = expand_command(command, &variables)
        .map_err(|error| reject("run.command", error.to_string()))?;
    Ok(expanded.iter().map(|arg| escape_dependent(arg)).collect())
}

fn protocol(protocol: crate::manifest::PortProtocol) -> &'static str {
    match protocol {
        crate::manifest::PortProtocol::Tcp => "TCP",
        crate::manifest::PortProtocol::Udp => "UDP",
    }
}

fn quantities(list: Option<&ResourceList>) -> Option<BTreeMap<String, Quantity>> {
    let list = list?;
    let mut quantities = BTreeMap::new();
    if let Some(cpu) = &list.cpu {
        quantities.insert("cpu".to_owned(), Quantity(cpu.text.clone()));
    }
    if let Some(memory) = &list.memory {
        quantities.insert("memory".to_owned(), Quantity(memory.text.clone()));
    }
    (!quantities.is_empty()).then_some(quantities)
}

/// Copies the manifest's quantities as written: they use the grammar of
/// Kubernetes' `resource.Quantity`, so the cluster reads them unchanged.
fn resources(spec: &Manifest) -> Option<ResourceRequirements> {
    let requests = quantities(spec.resources.requests.as_ref());
    let limits = quantities(spec.resources.limits.as_ref());
    if requests.is_none() && limits.is_none() {
        return None;
    }
    Some(ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    })
}

fn kube_probe(field: &str, probe: &Probe, spec: &Manifest) -> Result<KubeProbe, RenderError> {
    let port = || -> Result<IntOrString, RenderError> {
        match &probe.port {
            Some(PortRef::Number(number)) => Ok(IntOrString::Int(i32::from(*number))),
            Some(PortRef::Name(name)) => Ok(IntOrString::String(name.clone())),
            None => spec
                .ports
                .first()
                .map(|port| IntOrString::Int(i32::from(port.container_port)))
                .ok_or_else(|| {
                    reject(
                        &format!("{field}.port"),
                        "set the port to probe, because the manifest declares no ports",
                    )
                }),
        }
    };
    let mut kube = KubeProbe {
        initial_delay_seconds: Some(to_i32(probe.initial_delay_seconds)),
        period_seconds: Some(to_i32(probe.period_seconds)),
        timeout_seconds: Some(to_i32(probe.timeout_seconds)),
        success_threshold: Some(to_i32(probe.success_threshold)),
        failure_threshold: Some(to_i32(probe.failure_threshold)),
        ..KubeProbe::default()
    };
    match probe.kind {
        ProbeKind::Http => {
            kube.http_get = Some(HTTPGetAction {
                path: Some(probe.path.clone().unwrap_or_else(|| "/".to_owned())),
                port: port()?,
                ..HTTPGetAction::default()
            });
        }
        ProbeKind::Tcp => {
            kube.tcp_socket = Some(TCPSocketAction {
                port: port()?,
                ..TCPSocketAction::default()
            });
        }
        ProbeKind::Exec => {
            kube.exec = Some(ExecAction {
                command: probe.command.clone(),
            });
        }
    }
    Ok(kube)
}

fn volumes(spec: &Manifest) -> Result<Option<Vec<Volume>>, RenderError> {
    let mut volumes = Vec::new();
    for (index, volume) in spec.volumes.iter().enumerate() {
        let source = || {
            volume.source.clone().ok_or_else(|| {
                reject(
                    &format!("volumes[{index}].source"),
                    "set the source of this volume",
                )
            })
        };
        let mut kube = Volume {
            name: volume.name.clone(),
            ..Volume::default()
        };
        match volume.kind {
            VolumeKind::HostPath => {
                kube.host_path = Some(HostPathVolumeSource {
                    path: source()?,
                    type_: None,
                });
            }
            VolumeKind::EmptyDir => kube.empty_dir = Some(EmptyDirVolumeSource::default()),
            VolumeKind::PersistentVolume => {
                kube.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: source()?,
                    read_only: None,
                });
            }
        }
        volumes.push(kube);
    }
    Ok((!volumes.is_empty()).then_some(volumes))
}

/// Builds a ClusterIP Service whose port is each `hostPort` (or the
/// `containerPort` without one), forwarding to the `containerPort`.
fn service(input: &RevisionInput<'_>) -> Result<Option<Service>, RenderError> {
    let spec = input.spec;
    if spec.ports.is_empty() {
        return Ok(None);
    }
    let several = spec.ports.len() > 1;
    let mut ports = Vec::new();
    for port in &spec.ports {
        // A Service with several ports needs a name on each.
        let name = match (&port.name, several) {
            (Some(name), _) => Some(name.clone()),
            (None, true) => Some(format!("port-{}", port.container_port)),
            (None, false) => None,
        };
        ports.push(ServicePort {
            name,
            port: i32::from(port.host_port.unwrap_or(port.container_port)),
            target_port: Some(IntOrString::Int(i32::from(port.container_port))),
            protocol: Some(protocol(port.protocol).to_owned()),
            app_protocol: port.app_protocol.clone(),
            ..ServicePort::default()
        });
    }
    Ok(Some(Service {
        metadata: metadata(input, input.identity.name.clone()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(input.identity.selector()),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        status: None,
    }))
}

fn autoscaler(input: &RevisionInput<'_>) -> Option<HorizontalPodAutoscaler> {
    let scaling = input
        .spec
        .auto_scaling
        .as_ref()
        .filter(|scaling| scaling.enabled)?;
    Some(HorizontalPodAutoscaler {
        metadata: metadata(input, input.identity.name.clone()),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: input.identity.name.clone(),
            },
            min_replicas: Some(to_i32(scaling.min_replicas)),
            max_replicas: to_i32(scaling.max_replicas),
            metrics: metrics(scaling),
            behavior: behavior(scaling),
        }),
        status: None,
    })
}

/// Lists the utilisation targets, then each `autoScaling.metrics` entry as
/// a `Pods` metric with an `AverageValue` target. Without any target, the
/// cluster's default (80% CPU) applies.
// NOTE: the cluster reads a `Pods` metric from custom.metrics.k8s.io, so
// such a target needs an adapter (such as prometheus-adapter) that serves
// the series under the same name. shipdeck sends its own series nowhere.
fn metrics(scaling: &AutoScaling) -> Option<Vec<MetricSpec>> {
    let target = |resource: &str, percent: u32| MetricSpec {
        type_: "Resource".to_owned(),
        resource: Some(ResourceMetricSource {
            name: resource.to_owned(),
            target: MetricTarget {
                type_: "Utilization".to_owned(),
                average_utilization: Some(to_i32(percent)),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    };
    let mut metrics = Vec::new();
    if let Some(percent) = scaling.target_cpu_utilization {
        metrics.push(target("cpu", percent));
    }
    if let Some(percent) = scaling.target_memory_utilization {
        metrics.push(target("memory", percent));
    }
    metrics.extend(scaling.metrics.iter().map(pods_metric));
    (!metrics.is_empty()).then_some(metrics)
}

fn pods_metric(target: &AverageValueTarget) -> MetricSpec {
    MetricSpec {
        type_: "Pods".to_owned(),
        pods: Some(PodsMetricSource {
            metric: MetricIdentifier {
                name: target.name.clone(),
                selector: None,
            },
            target: MetricTarget {
                type_: "AverageValue".to_owned(),
                average_value: Some(Quantity(decimal_quantity(target.average_value))),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

fn behavior(scaling: &AutoScaling) -> Option<HorizontalPodAutoscalerBehavior> {
    let rules = |policy: &ScalingPolicy| HPAScalingRules {
        stabilization_window_seconds: policy.stabilization_window_seconds.map(to_i32),
        select_policy: policy.select_policy.map(|select| format!("{select:?}")),
        policies: (!policy.policies.is_empty()).then(|| {
            policy
                .policies
                .iter()
                .map(|rule| HPAScalingPolicy {
                    type_: format!("{:?}", rule.kind),
                    value: to_i32(rule.value),
                    period_seconds: to_i32(rule.period_seconds),
                })
                .collect()
        }),
    };
    let scale_up = scaling.scale_up_policy.as_ref().map(rules);
    let scale_down = scaling.scale_down_policy.as_ref().map(rules);
    if scale_up.is_none() && scale_down.is_none() {
        return None;
    }
    Some(HorizontalPodAutoscalerBehavior {
        scale_up,
        scale_down,
    })
}

#[cfg(test)]
mod tests;
