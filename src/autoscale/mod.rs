//! Shipdeck's own autoscaler for the process and Docker backends, with the
//! algorithm of the Kubernetes HorizontalPodAutoscaler (autoscaling/v2), so
//! that one `autoScaling` block behaves the same on every backend.
//!
//! This module is pure: it takes the policy, an observation of the
//! replicas and the time, and returns a [`Decision`] that carries every
//! input it used. The engine collects the observations, applies the
//! decisions and stores them; a cluster runs its own controller and
//! shipdeck only reads the HorizontalPodAutoscaler's status.

mod algorithm;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{AutoScaling, ScalingPolicy, ScalingRule, ScalingRuleKind, SelectPolicy};

/// The band around a target inside which no scaling happens, as the
/// controller's default `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;

/// The CPU target when a manifest names none, as a cluster applies.
pub const DEFAULT_CPU_UTILIZATION: u32 = 80;

/// The evaluation period when a manifest gives none, as the controller's
/// default `--horizontal-pod-autoscaler-sync-period`.
pub const DEFAULT_INTERVAL_SECONDS: u64 = 15;

/// The targets and rate limits of one deployment: a manifest's
/// `autoScaling` with the defaults of autoscaling/v2 filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub targets: Vec<Target>,
    pub scale_up: Behavior,
    pub scale_down: Behavior,
    pub tolerance: f64,
}

/// One thing to hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Target {
    /// The ready replicas' CPU use as a percentage of their CPU request.
    CpuUtilization { percent: u32 },
    /// The ready replicas' memory use as a percentage of their memory request.
    MemoryUtilization { percent: u32 },
    /// A series collected for the whole deployment (requests per second, a
    /// scraped gauge), held at `value` per replica as the HPA treats an
    /// external metric with an `AverageValue` target.
    AverageValue { metric: String, value: f64 },
}

/// The rules of one scaling direction: the HPA's `HPAScalingRules`.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    pub stabilization_window_seconds: u32,
    pub select: SelectPolicy,
    pub rules: Vec<ScalingRule>,
}

impl Behavior {
    /// autoscaling/v2's default for scaling up: no window; at most 4 pods
    /// or double, whichever is more, every 15 seconds.
    pub fn default_up() -> Self {
        Self {
            stabilization_window_seconds: 0,
            select: SelectPolicy::Max,
            rules: vec![
                rule(ScalingRuleKind::Pods, 4, 15),
                rule(ScalingRuleKind::Percent, 100, 15),
            ],
        }
    }

    /// autoscaling/v2's default for scaling down: a 300 second window;
    /// then any number of replicas every 15 seconds.
    pub fn default_down() -> Self {
        Self {
            stabilization_window_seconds: 300,
            select: SelectPolicy::Max,
            rules: vec![rule(ScalingRuleKind::Percent, 100, 15)],
        }
    }

    /// Returns the manifest's policy over `default`, which fills in what it leaves out.
    fn over(set: Option<&ScalingPolicy>, default: Self) -> Self {
        let Some(set) = set else {
            return default;
        };
        Self {
            stabilization_window_seconds: set
                .stabilization_window_seconds
                .unwrap_or(default.stabilization_window_seconds),
            select: set.select_policy.unwrap_or(default.select),
            rules: if set.policies.is_empty() {
                default.rules
            } else {
                set.policies.clone()
            },
        }
    }
}

fn rule(kind: ScalingRuleKind, value: u32, period_seconds: u32) -> ScalingRule {
    ScalingRule {
        kind,
        value,
        period_seconds,
    }
}

impl Policy {
    pub fn of(scaling: &AutoScaling) -> Self {
        let mut targets = Vec::new();
        if let Some(percent) = scaling.target_cpu_utilization {
            targets.push(Target::CpuUtilization { percent });
        }
        if let Some(percent) = scaling.target_memory_utilization {
            targets.push(Target::MemoryUtilization { percent });
        }
        targets.extend(scaling.metrics.iter().map(|target| Target::AverageValue {
            metric: target.name.clone(),
            value: target.average_value,
        }));
        if targets.is_empty() {
            targets.push(Target::CpuUtilization {
                percent: DEFAULT_CPU_UTILIZATION,
            });
        }
        Self {
            min_replicas: scaling.min_replicas,
            max_replicas: scaling.max_replicas,
            targets,
            scale_up: Behavior::over(scaling.scale_up_policy.as_ref(), Behavior::default_up()),
            scale_down: Behavior::over(
                scaling.scale_down_policy.as_ref(),
                Behavior::default_down(),
            ),
            tolerance: TOLERANCE,
        }
    }
}

/// One replica's newest measurements. `None` where no sample exists yet,
/// such as CPU before a replica's second reading.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSample {
    pub slot: u32,
    /// Passing its readiness check (or running, where it has none).
    pub ready: bool,
    pub cpu_cores: Option<f64>,
    pub memory_bytes: Option<u64>,
}

/// The input of one evaluation of a deployment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// The replica count the deployment is set to now.
    pub current_replicas: u32,
    /// The replicas that exist, ready or not.
    pub replicas: Vec<ReplicaSample>,
    /// The CPU request of each replica, in cores.
    pub cpu_request_cores: Option<f64>,
    /// The memory request of each replica, in bytes.
    pub memory_request_bytes: Option<u64>,
    /// The newest value of each series an `AverageValue` target names,
    /// left out when none is recent enough to trust.
    pub series: BTreeMap<String, f64>,
}

/// One target's reading and recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricReading {
    pub target: Target,
    /// Utilization in percent, or the value per replica, as measured over
    /// the replicas that had samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<f64>,
    /// Replicas whose samples counted, had none, or were not ready.
    pub ready: u32,
    pub missing: u32,
    pub unready: u32,
    /// The replica count this target recommends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<u32>,
    /// The reason this target could not recommend, such as "cannot compute CPU
    /// utilization: no cpu request".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The bound on the stabilized recommendation, in the HPA's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitReason {
    /// Within min, max and the rate policies.
    DesiredWithinRange,
    ScaleUpLimit,
    ScaleDownLimit,
    TooManyReplicas,
    TooFewReplicas,
    /// `selectPolicy: Disabled` for the direction asked.
    ScalingDisabled,
}

/// A condition in the HPA's terms: `AbleToScale`, `ScalingActive`,
/// `ScalingLimited`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

/// One evaluation, with every input that led to its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub current_replicas: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub metrics: Vec<MetricReading>,
    /// The largest recommendation of the targets, before stabilization;
    /// `None` when no target could recommend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<u32>,
    /// The recommendation after the stabilization windows.
    pub stabilized: u32,
    pub limit: LimitReason,
    /// The rule that limited the change, such as "Pods 4 per 15s", when a
    /// rate policy did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limiting_rule: Option<String>,
    /// The replica count to set.
    pub desired: u32,
    /// One sentence an operator reads: why this count.
    pub reason: String,
    pub conditions: Vec<Condition>,
}

impl Decision {
    pub fn scales(&self) -> bool {
        self.desired != self.current_replicas
    }
}

/// The memory of one deployment between evaluations: its recent
/// recommendations and scale changes, kept in memory as the Kubernetes
/// controller keeps them.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// (time in ms, recommendation before stabilization)
    recommendations: Vec<(u64, u32)>,
    /// (time in ms, replicas added)
    scale_ups: Vec<(u64, u32)>,
    /// (time in ms, replicas removed)
    scale_downs: Vec<(u64, u32)>,
    /// Set once the down window was seeded with the count found at the
    /// first evaluation, so that an agent restart does not scale down at once.
    seeded: bool,
}

/// The source of a deployment's autoscaling state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AutoscaleSource {
    /// Shipdeck's own autoscaler (process and Docker backends).
    Shipdeck,
    /// The cluster's HorizontalPodAutoscaler.
    Cluster,
}

/// A deployment's autoscaling as `autoscale status` and the dashboard show
/// it, the same shape for every backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscaleView {
    pub source: AutoscaleSource,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub targets: Vec<Target>,
    pub current_replicas: u32,
    pub desired_replicas: u32,
    /// The newest reading of each target.
    pub metrics: Vec<MetricReading>,
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_ms: Option<u64>,
    /// Recent evaluations, newest first; a cluster keeps none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

/// True when two revisions' specs differ in `autoScaling` and nothing else
/// (the replica count aside, which the deployment carries), so a new
/// revision can take over without replacing a replica.
pub fn differs_only_in_autoscaling(
    old: &crate::manifest::Manifest,
    new: &crate::manifest::Manifest,
) -> bool {
    if old.auto_scaling == new.auto_scaling {
        return false;
    }
    let mut old = old.clone();
    let mut new = new.clone();
    old.auto_scaling = None;
    new.auto_scaling = None;
    new.replicas = old.replicas;
    old == new
}
