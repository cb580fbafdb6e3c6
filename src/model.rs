//! Domain records shared by the engine, the store and the API.
//!
//! These are plain data: no I/O, no terminal types. The wire format of the API
//! is the serde form of these records (camelCase, RFC 3339 times).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::manifest::{BackendKind, Manifest};

/// The identity of a deployment: its name within an environment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeploymentKey {
    pub name: String,
    pub environment: String,
}

impl DeploymentKey {
    pub fn new(name: impl Into<String>, environment: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            environment: environment.into(),
        }
    }
}

impl fmt::Display for DeploymentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.environment)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    Pending,
    Building,
    Deploying,
    Deployed,
    Degraded,
    Failed,
    Undeploying,
    Undeployed,
}

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 8] = [
        Self::Pending,
        Self::Building,
        Self::Deploying,
        Self::Deployed,
        Self::Degraded,
        Self::Failed,
        Self::Undeploying,
        Self::Undeployed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Building => "building",
            Self::Deploying => "deploying",
            Self::Deployed => "deployed",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
            Self::Undeploying => "undeploying",
            Self::Undeployed => "undeployed",
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeploymentStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "unknown status {text:?}; expected one of {}",
                    known.join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Unhealthy,
    #[default]
    Unknown,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unknown => "unknown",
        })
    }
}

/// The stored record of a deployment. Runtime state (replicas, checks) is not
/// stored here; the engine reports it alongside in [`DeploymentView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub name: String,
    pub environment: String,
    pub backend: BackendKind,
    pub status: DeploymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub version: String,
    /// The revision that is (or is being) rolled out.
    pub revision: u64,
    /// The last revision that became healthy; the target of an automatic revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_healthy_revision: Option<u64>,
    pub desired_replicas: u32,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Deployment {
    pub fn key(&self) -> DeploymentKey {
        DeploymentKey::new(&self.name, &self.environment)
    }

    /// Whether the supervisor should keep replicas of this deployment running.
    pub fn wants_replicas(&self) -> bool {
        !matches!(
            self.status,
            DeploymentStatus::Undeploying | DeploymentStatus::Undeployed
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevisionStatus {
    Pending,
    Building,
    Deploying,
    /// Became healthy and is serving.
    Deployed,
    /// Was serving and was replaced by a later revision.
    Superseded,
    Failed,
}

impl fmt::Display for RevisionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Building => "building",
            Self::Deploying => "deploying",
            Self::Deployed => "deployed",
            Self::Superseded => "superseded",
            Self::Failed => "failed",
        })
    }
}

/// One numbered revision with its full rendered spec; never rewritten except
/// for its status and reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub deployment_id: String,
    pub revision: u64,
    pub version: String,
    pub status: RevisionStatus,
    /// Why this revision exists (`deploy`, `scale`, `rollback to 3` ...) and,
    /// once it failed, why it failed.
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub spec: Manifest,
    /// The manifest as it was sent, before the environment config, the
    /// template and `--set` were layered in, so that a redeploy can layer
    /// the current ones. Revisions stored before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted: Option<SubmittedManifest>,
}

/// A manifest as a client sent it, with the `--set` values that came with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedManifest {
    pub text: String,
    pub origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventOutcome {
    Ok,
    Error,
}

/// An audit record: who did what to which deployment, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Monotonic sequence number assigned by the store.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentKey>,
    /// OS user of the client that asked, or `agent` for the agent's own actions.
    pub user: String,
    pub action: String,
    pub outcome: EventOutcome,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplicaState {
    Starting,
    Running,
    Ready,
    Stopping,
    Exited,
    Failed,
}

impl fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Ready => "ready",
            Self::Stopping => "stopping",
            Self::Exited => "exited",
            Self::Failed => "failed",
        })
    }
}

/// Live state of one replica, as the supervisor last observed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaView {
    pub index: u32,
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub state: ReplicaState,
    pub ready: bool,
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub started_at: Option<OffsetDateTime>,
    /// The container's id, for a replica of `backend: docker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The state of the image's own HEALTHCHECK as the Docker engine reports
    /// it; `None` when the image has none or the replica is no container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_health: Option<ContainerHealth>,
}

/// The state of a container's HEALTHCHECK, as the Docker engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerHealth {
    Starting,
    Healthy,
    Unhealthy,
}

impl ContainerHealth {
    /// Maps the engine's state to the health shipdeck reports: a check that
    /// has not passed or failed yet is unknown.
    pub fn as_health(self) -> Health {
        match self {
            Self::Starting => Health::Unknown,
            Self::Healthy => Health::Healthy,
            Self::Unhealthy => Health::Unhealthy,
        }
    }
}

impl fmt::Display for ContainerHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaCounts {
    pub desired: u32,
    pub ready: u32,
}

/// The replica counts autoscaling keeps a deployment between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaRange {
    pub min: u32,
    pub max: u32,
}

/// A deployment as the API shows it: the stored record joined with live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    pub id: String,
    pub name: String,
    pub environment: String,
    pub backend: BackendKind,
    pub status: DeploymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub health: Health,
    pub version: String,
    pub revision: u64,
    pub replicas: ReplicaCounts,
    /// Set while autoscaling owns the replica count, which then moves
    /// within this range by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<ReplicaRange>,
    pub endpoints: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub replica_details: Vec<ReplicaView>,
    /// The reason the CPU and memory series get no new values, such as a
    /// cluster that does not serve metrics.k8s.io. Clients show it in place
    /// of an empty chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_unavailable: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl DeploymentView {
    pub fn key(&self) -> DeploymentKey {
        DeploymentKey::new(&self.name, &self.environment)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckView {
    pub name: String,
    pub status: Health,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    pub status: Health,
    pub checks: Vec<HealthCheckView>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub last_checked: Option<OffsetDateTime>,
}

/// The manifest of a deployment's current revision as YAML, for editing
/// and redeploying. It is the stored spec, with the environment config and
/// template merged in and the current replica count; `env` keeps
/// `${SECRET:name}` references, never secret values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSource {
    pub name: String,
    pub environment: String,
    pub revision: u64,
    pub text: String,
}

/// One row of `history`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub revision: u64,
    pub version: String,
    pub status: RevisionStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub reason: String,
}

impl From<&Revision> for HistoryEntry {
    fn from(revision: &Revision) -> Self {
        Self {
            revision: revision.revision,
            version: revision.version.clone(),
            status: revision.status,
            created_at: revision.created_at,
            reason: revision.reason.clone(),
        }
    }
}

/// One series of a deployment over a window, aligned to steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesView {
    pub name: String,
    pub step_ms: u64,
    pub points: Vec<PointView>,
}

/// One step of a series: its start and the average value, `null` for a gap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PointView {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub value: Option<f64>,
    /// Sum of the samples in the step; for counts per interval, such as
    /// `requests_total`, the count over the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// Lowest and highest sample in the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A named place where notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyChannel {
    pub name: String,
    #[serde(flatten)]
    pub target: NotifyTarget,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The delivery method of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum NotifyTarget {
    /// An HTTP or HTTPS POST of the notification as JSON.
    Webhook {
        url: String,
        /// PEM certificates of a private CA that this channel trusts besides
        /// the system's trust store. Channels stored before HTTPS have none.
        #[serde(default, rename = "caPem", skip_serializing_if = "Option::is_none")]
        ca_pem: Option<String>,
        /// The file `ca_pem` was read from, shown so that operators know
        /// which file to update when the CA changes.
        #[serde(default, rename = "caFile", skip_serializing_if = "Option::is_none")]
        ca_file: Option<String>,
    },
    /// A program that gets the notification as JSON on standard input.
    Command { command: Vec<String> },
    /// Kept by the agent for `shipdeck notify history`.
    InApp,
}

/// The result of removing a channel: the alert rules and deployments that
/// still name it, for a warning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRemoval {
    pub still_named_by: Vec<String>,
}

/// One notification, as channels receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The event: `alert-firing`, `alert-repeat`, `alert-resolved`,
    /// `deployment-succeeded`, `deployment-failed`, `deployment-reverted`,
    /// `deployment-undeployed` or `test`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub message: String,
    pub severity: String,
    pub deployment: String,
    pub environment: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The alert this notification is about, as `DEPLOYMENT/ENVIRONMENT/RULE`,
    /// the same for its firing, reminders and resolving. Absent for
    /// deployment and test notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Increases with every notification the agent sends, across restarts,
    /// so a receiver can order them; not contiguous. Zero in notifications
    /// kept before it existed.
    #[serde(default)]
    pub sequence: u64,
}

/// Origin of an alert rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertRuleSource {
    /// `monitoring.alerts` of the deployment's current revision.
    Manifest,
    /// Added with `shipdeck alerts add` or `PUT .../alert-rules/RULE`; kept
    /// across revisions until removed.
    Api,
}

impl AlertRuleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Api => "api",
        }
    }
}

/// One alert rule of a deployment, for listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleView {
    pub deployment: String,
    pub environment: String,
    pub source: AlertRuleSource,
    /// False for an API rule that a manifest rule of the same name replaces.
    pub active: bool,
    pub rule: crate::manifest::AlertRuleSpec,
}

/// A named environment and the key/value config that every deployment in it
/// starts its `env` from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentConfig {
    pub name: String,
    #[serde(default)]
    pub config: std::collections::BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An environment as the API lists it: its config and the deployments in it
/// that are not undeployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    #[serde(flatten)]
    pub environment: EnvironmentConfig,
    #[serde(default)]
    pub deployments: Vec<String>,
}

/// A stored config template: its YAML text as the user wrote it, comments
/// included, so that `template show` returns what was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRecord {
    pub name: String,
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A template as the API shows it: the stored text with the description
/// and parent read from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The template this one extends, from its `template:` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A template rendered for one environment, as `template render` shows it:
/// every layer merged and every placeholder replaced, with each secret
/// reference shown as `****`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedTemplate {
    pub template: String,
    pub environment: String,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::manifest::Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<crate::manifest::Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_check: Option<crate::manifest::Probe>,
    #[serde(default, skip_serializing_if = "crate::manifest::Resources::is_empty")]
    pub resources: crate::manifest::Resources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<crate::manifest::Monitoring>,
    /// Secrets that `env` refers to, by name.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Referenced secrets that do not exist; a deploy would fail on them.
    #[serde(default)]
    pub missing_secrets: Vec<String>,
}
