//! Request and response bodies shared by the server and the client.

use serde::{Deserialize, Serialize};

/// A manifest as a client sends it: the text, not a path, because the agent
/// may not be able to read the client's files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBody {
    pub text: String,
    #[serde(default)]
    pub origin: String,
    /// Absolute directory the manifest's relative paths start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dir: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployBody {
    pub manifest: ManifestBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
    #[serde(default)]
    pub wait: bool,
    /// How long to wait, in milliseconds, when `wait` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeployBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestBody>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_revision: Option<u64>,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Signed so that a negative count reaches the engine's own check and
    /// gets its message, rather than a JSON type error.
    pub replicas: i64,
    /// Turns autoscaling off first, where it is on.
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscaleBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The new `autoScaling`; none turns autoscaling off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<crate::manifest::AutoScaling>,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UndeployBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// Body of `POST /v1/deployments/{name}/restart`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The replica (0-based slot) to restart; every replica when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// The response to a verb.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    pub deployment: crate::model::DeploymentView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// Set when the client waited: how the change ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub pid: u32,
    pub version: String,
    pub home: String,
    pub uptime_seconds: u64,
    pub deployments: usize,
    pub replicas: usize,
    /// Description of how resource limits are enforced on this host.
    #[serde(default)]
    pub limits: String,
}

/// Body of `PUT /v1/secrets/{name}`: the value travels in the body, never
/// in the URL, which proxies and logs may record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretBody {
    pub value: crate::config::SecretValue,
}

/// Response of `GET /v1/secrets/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevealedSecret {
    pub name: String,
    pub value: crate::config::SecretValue,
}

/// Body of `POST /v1/vault/rotate-key`: the new master key (64 hex digits)
/// or passphrase, for agents whose key does not come from the key file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RotateKeyBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<crate::config::SecretValue>,
}

/// Body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: String,
}

/// Query of `GET /v1/deployments`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Comma-separated statuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Comma-separated tags; a deployment must carry all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    #[serde(default)]
    pub desc: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: usize,
}

/// Query of the per-deployment reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
}

/// Changes to an environment's config: keys to set, then keys to remove.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentChangeBody {
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// A template's YAML text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateBody {
    pub source: String,
}

/// What to render a template for: an environment and `--set` arguments
/// (`env.KEY=VALUE` and `var.NAME=VALUE`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateRenderBody {
    pub environment: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
}

/// One line of `GET /v1/watch`, the stream of changes that dashboards
/// follow instead of polling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum WatchItem {
    /// The deployment as it is now, after one or more changes.
    Deployment {
        deployment: Box<crate::model::DeploymentView>,
    },
    /// The deployment with this id no longer exists.
    Removed { id: String },
    /// An event was recorded.
    Event { event: Box<crate::model::Event> },
    /// New metric samples of the deployment with this id were stored.
    Metrics { id: String },
    /// The reader fell behind and `count` notices were lost: read the lists
    /// again.
    Missed { count: u64 },
}
