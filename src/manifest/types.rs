//! Manifest types: the shape of one deployment document.
//!
//! Field names follow Kubernetes where a Kubernetes user would look for them.
//! Parsing and validation live in the sibling modules; these types only carry
//! values that already passed both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::ManifestDuration;
use super::quantity::{CpuQuantity, MemoryQuantity};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default = "default_environment")]
    pub environment: String,
    #[serde(default)]
    pub backend: BackendKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_check: Option<Probe>,
    #[serde(default)]
    pub stop_signal: StopSignal,
    #[serde(default = "default_grace_seconds")]
    pub termination_grace_period_seconds: u32,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling: Option<AutoScaling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

fn default_environment() -> String {
    "development".to_owned()
}

fn default_replicas() -> u32 {
    1
}

fn default_grace_seconds() -> u32 {
    30
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Process,
    Docker,
    Kubernetes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Run {
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: SourceKind,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Git,
    Zip,
    Tar,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    /// Name of the secret that contains the password; never the password itself.
    pub password_secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Build {
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceList>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.requests.is_none() && self.limits.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuQuantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryQuantity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub container_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    #[serde(default)]
    pub protocol: PortProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PortProtocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    pub mount_path: String,
    #[serde(rename = "type")]
    pub kind: VolumeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VolumeKind {
    HostPath,
    EmptyDir,
    PersistentVolume,
}

/// A readiness or liveness probe, with the Kubernetes field names and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    #[serde(rename = "type")]
    pub kind: ProbeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A `containerPort` number or a port name; resolved per replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub initial_delay_seconds: u32,
    #[serde(default = "default_period_seconds")]
    pub period_seconds: u32,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u32,
    #[serde(default = "default_success_threshold")]
    pub success_threshold: u32,
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
}

fn default_period_seconds() -> u32 {
    10
}

fn default_timeout_seconds() -> u32 {
    1
}

fn default_success_threshold() -> u32 {
    1
}

fn default_failure_threshold() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    Http,
    Tcp,
    Exec,
}

/// Serialized as a YAML number or string; see `serde_impls.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopSignal {
    #[default]
    #[serde(rename = "SIGTERM")]
    Term,
    #[serde(rename = "SIGINT")]
    Int,
    #[serde(rename = "SIGQUIT")]
    Quit,
    #[serde(rename = "SIGHUP")]
    Hup,
    #[serde(rename = "SIGUSR1")]
    Usr1,
    #[serde(rename = "SIGUSR2")]
    Usr2,
    #[serde(rename = "SIGKILL")]
    Kill,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Strategy {
    #[serde(rename = "type", default)]
    pub kind: StrategyKind,
    #[serde(default = "default_max_surge")]
    pub max_surge: IntOrPercent,
    #[serde(default = "default_max_unavailable")]
    pub max_unavailable: IntOrPercent,
    #[serde(default = "default_progress_deadline")]
    pub progress_deadline_seconds: u32,
}

impl Default for Strategy {
    fn default() -> Self {
        Self {
            kind: StrategyKind::default(),
            max_surge: default_max_surge(),
            max_unavailable: default_max_unavailable(),
            progress_deadline_seconds: default_progress_deadline(),
        }
    }
}

/// Kubernetes' default `maxSurge`.
fn default_max_surge() -> IntOrPercent {
    IntOrPercent::Percent(25)
}

/// Kubernetes' default `maxUnavailable`.
fn default_max_unavailable() -> IntOrPercent {
    IntOrPercent::Percent(25)
}

/// Kubernetes' default `progressDeadlineSeconds`.
fn default_progress_deadline() -> u32 {
    600
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrategyKind {
    #[default]
    RollingUpdate,
    Recreate,
}

/// An absolute count or a percentage such as `25%`, as in Kubernetes' `IntOrString`.
///
/// Serialized as a YAML number or a `N%` string; see `serde_impls.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(u32),
    Percent(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartPolicy {
    #[serde(default)]
    pub policy: RestartMode,
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial: ManifestDuration,
    #[serde(default = "default_backoff_max")]
    pub backoff_max: ManifestDuration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            policy: RestartMode::default(),
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
        }
    }
}

fn default_backoff_initial() -> ManifestDuration {
    ManifestDuration::from_millis(1_000)
}

fn default_backoff_max() -> ManifestDuration {
    ManifestDuration::from_millis(300_000)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMode {
    #[default]
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Monitoring {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_monitoring_interval")]
    pub interval: ManifestDuration,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape: Option<Scrape>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertRuleSpec>,
    /// Channels that get the deployment's own notifications (succeeded,
    /// failed, reverted, undeployed). Without any, those notifications are
    /// kept only in the agent's in-app history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<MetricsRetention>,
}

/// How long stored series are kept; each limit left out has the agent's
/// default (24 hours of raw points, 30 days of one-minute rollups).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsRetention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<ManifestDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollups: Option<ManifestDuration>,
}

/// Settings for the captured output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<LogRetention>,
}

/// How much captured output the store keeps; each limit left out has the
/// agent's default. The oldest lines go first when any limit is passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogRetention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<MemoryQuantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<ManifestDuration>,
}

fn default_true() -> bool {
    true
}

fn default_monitoring_interval() -> ManifestDuration {
    ManifestDuration::from_millis(10_000)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scrape {
    #[serde(default = "default_scrape_path")]
    pub path: String,
    pub port: PortRef,
}

fn default_scrape_path() -> String {
    "/metrics".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertRuleSpec {
    pub name: String,
    pub metric: String,
    pub condition: AlertCondition,
    pub threshold: f64,
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_duration: Option<ManifestDuration>,
    /// Time between reminders while the alert fires; none without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<ManifestDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertCondition {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoScaling {
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub min_replicas: u32,
    pub max_replicas: u32,
    #[serde(
        rename = "targetCPUUtilization",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_cpu_utilization: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_memory_utilization: Option<u32>,
    /// Collected series held at an average value per replica, such as
    /// `requests_per_second` or a scraped gauge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<AverageValueTarget>,
    /// How often shipdeck's autoscaler evaluates the targets (15 s when
    /// left out, as the Kubernetes controller); a cluster uses its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<ManifestDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up_policy: Option<ScalingPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_policy: Option<ScalingPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AverageValueTarget {
    /// A series of the deployment, as `shipdeck metrics NAME --list` shows.
    pub name: String,
    /// The value per replica to hold.
    pub average_value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<ScalingRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingRule {
    #[serde(rename = "type")]
    pub kind: ScalingRuleKind,
    pub value: u32,
    pub period_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalingRuleKind {
    Pods,
    Percent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}
