//! Autoscaling from the dashboard: the setting typed in the palette, the
//! questions before autoscaling is turned on, changed or off, and the offer
//! to force a scale that the agent rejected because autoscaling sets the
//! count.

use std::hash::{Hash, Hasher};

use super::{App, ConfirmDialog, Effects, Layer, Prompt, PromptMessage, ToastLevel, PRODUCTION};
use crate::autoscale::{AutoscaleView, Target};
use crate::manifest::{AutoScaling, AverageValueTarget};
use crate::model::{DeploymentKey, ReplicaRange};
use crate::tui::action::{Command, Operation};
use crate::tui::keymap::Context;

/// An autoscaling setting as the palette takes it: the bounds and the
/// targets. The evaluation interval and the rate policies are left out,
/// and the agent keeps the ones the current revision has.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AutoscaleSetting {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub cpu_percent: Option<u32>,
    pub memory_percent: Option<u32>,
    pub metrics: Vec<MetricTarget>,
}

/// A collected series held at a value per replica.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricTarget {
    pub name: String,
    pub per_replica: PerReplica,
}

/// A target value per replica: a finite number above 0. Values compare by
/// their bits, so that an [`Operation`] can be `Eq` and `Hash`.
#[derive(Debug, Clone, Copy)]
pub struct PerReplica(f64);

impl PerReplica {
    /// Returns `None` for 0, a negative number, NaN or infinity, which the
    /// agent rejects.
    pub fn new(value: f64) -> Option<Self> {
        (value.is_finite() && value > 0.0).then_some(Self(value))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for PerReplica {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for PerReplica {}

impl Hash for PerReplica {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl AutoscaleSetting {
    /// Converts to the manifest's `autoScaling`, as `shipdeck autoscale`
    /// sends it.
    pub fn to_manifest(&self) -> AutoScaling {
        AutoScaling {
            enabled: true,
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            target_cpu_utilization: self.cpu_percent,
            target_memory_utilization: self.memory_percent,
            metrics: self
                .metrics
                .iter()
                .map(|target| AverageValueTarget {
                    name: target.name.clone(),
                    average_value: target.per_replica.get(),
                })
                .collect(),
            interval: None,
            scale_up_policy: None,
            scale_down_policy: None,
        }
    }

    /// Reads the setting a view shows, so that the palette can offer it
    /// for editing.
    pub fn from_view(view: &AutoscaleView) -> Self {
        let mut setting = Self {
            min_replicas: view.min_replicas,
            max_replicas: view.max_replicas,
            cpu_percent: None,
            memory_percent: None,
            metrics: Vec::new(),
        };
        for target in &view.targets {
            match target {
                Target::CpuUtilization { percent } => setting.cpu_percent = Some(*percent),
                Target::MemoryUtilization { percent } => setting.memory_percent = Some(*percent),
                Target::AverageValue { metric, value } => {
                    if let Some(per_replica) = PerReplica::new(*value) {
                        setting.metrics.push(MetricTarget {
                            name: metric.clone(),
                            per_replica,
                        });
                    }
                }
            }
        }
        setting
    }

    /// Describes the targets for the confirmation, such as `cpu at 70% of
    /// its request, requests_per_second at 50 per replica`.
    pub fn targets_text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(percent) = self.cpu_percent {
            parts.push(format!("cpu at {percent}% of its request"));
        }
        if let Some(percent) = self.memory_percent {
            parts.push(format!("memory at {percent}% of its request"));
        }
        for target in &self.metrics {
            parts.push(format!(
                "{} at {} per replica",
                target.name,
                target.per_replica.get()
            ));
        }
        if parts.is_empty() {
            return format!(
                "cpu at {}% of its request (the default)",
                crate::autoscale::DEFAULT_CPU_UTILIZATION
            );
        }
        parts.join(", ")
    }

    /// Returns the palette words after the name: `MIN MAX KEY=VALUE...`.
    pub fn palette_words(&self) -> String {
        let mut words = vec![self.min_replicas.to_string(), self.max_replicas.to_string()];
        if let Some(percent) = self.cpu_percent {
            words.push(format!("cpu={percent}"));
        }
        if let Some(percent) = self.memory_percent {
            words.push(format!("memory={percent}"));
        }
        for target in &self.metrics {
            words.push(format!("{}={}", target.name, target.per_replica.get()));
        }
        words.join(" ")
    }
}

/// The hint under the palette line that [`Command::Autoscale`] opens.
const AUTOSCALE_HINT: &str =
    "MIN MAX [cpu=PERCENT] [memory=PERCENT] [METRIC=VALUE]..., or autoscale off NAME";

impl App {
    /// Handles the commands of this module; `None` for any other.
    pub(super) fn on_autoscale_command(
        &mut self,
        command: Command,
        effects: &mut Effects,
    ) -> Option<bool> {
        match command {
            Command::ForceScale => Some(self.force_rejected_scale(effects)),
            Command::Autoscale => Some(self.open_autoscale_palette()),
            _ => None,
        }
    }

    /// Returns the range autoscaling keeps `key` in, as the agent last
    /// listed it; `None` while autoscaling is off or the row is unknown.
    pub fn autoscaling_of(&self, key: &DeploymentKey) -> Option<ReplicaRange> {
        self.row(key).and_then(|row| row.autoscaling)
    }

    /// Returns how the palette names `key`: its name, and `env:ENV` when
    /// the name is deployed in more than one environment.
    pub fn palette_target(&self, key: &DeploymentKey) -> String {
        let environments = self
            .deployments
            .all()
            .iter()
            .filter(|row| row.key.name == key.name)
            .count();
        if environments > 1 {
            format!("{} env:{}", key.name, key.environment)
        } else {
            key.name.clone()
        }
    }

    /// Opens the palette on `autoscale NAME`, followed by the current
    /// setting when the autoscale tab has loaded it.
    fn open_autoscale_palette(&mut self) -> bool {
        let Some(key) = self.target_key() else {
            return true;
        };
        let mut text = format!("autoscale {} ", self.palette_target(&key));
        let shown_view = self
            .detail
            .as_ref()
            .filter(|detail| detail.key == key && self.autoscaling_of(&key).is_some())
            .and_then(|detail| detail.autoscale.as_ref());
        if let Some(view) = shown_view {
            text.push_str(&AutoscaleSetting::from_view(view).palette_words());
        }
        self.layers.push(Layer::Prompt(Prompt {
            key: None,
            text,
            message: Some(PromptMessage::Hint(AUTOSCALE_HINT.to_owned())),
        }));
        true
    }

    /// Tells the operator that the agent rejected a scale while autoscaling is on, and how to
    /// force it, and remembers the scale for [`Command::ForceScale`].
    pub(super) fn on_scale_rejected(
        &mut self,
        operation: &Operation,
        message: &str,
        effects: &mut Effects,
    ) {
        effects.redraw();
        let Operation::Scale { key, replicas, .. } = operation else {
            tracing::error!(
                ?operation,
                "a rejection for an operation that is not a scale"
            );
            return;
        };
        // The agent's advice after the first clause names CLI flags; the
        // dashboard's own ways replace it.
        let reason = message.split_once("; ").map_or(message, |(first, _)| first);
        let force_key = [self.pane_context(), Context::Deployments]
            .iter()
            .find_map(|context| self.keymap.first_key(*context, Command::ForceScale))
            .map(|key| format!("press {key} or "))
            .unwrap_or_default();
        let toast = format!(
            "{} failed: {reason}; {force_key}type :scale {} {replicas} --force to turn it off and scale",
            operation.done(),
            self.palette_target(key),
        );
        self.toast(ToastLevel::Error, toast);
        self.rejected_scale = Some((key.clone(), *replicas));
    }

    /// Asks to repeat the last rejected scale with autoscaling turned off.
    fn force_rejected_scale(&mut self, effects: &mut Effects) -> bool {
        let Some((key, replicas)) = self.rejected_scale.take() else {
            self.toast(
                ToastLevel::Info,
                "no rejected scale to force; to scale a deployment that autoscales, type :scale NAME COUNT --force"
                    .to_owned(),
            );
            return true;
        };
        let operation = Operation::Scale {
            key,
            replicas,
            force: true,
        };
        self.request(operation, effects);
        true
    }

    /// Asks before autoscaling is turned on, changed or off, and before a
    /// scale that turns it off.
    pub(super) fn request_autoscale_change(&mut self, operation: Operation, effects: &mut Effects) {
        effects.redraw();
        let key = operation.key().clone();
        let target = format!("{} ({})", key.name, key.environment);
        let current = self.row(&key).map_or(0, |row| row.desired);
        let range = self.autoscaling_of(&key);
        let message = match (&operation, range) {
            (Operation::Scale { replicas, .. }, Some(range)) => format!(
                "Turn autoscaling off for {target} and scale it from {current} to {replicas} replicas\n\
                 autoscaling between {} and {} replicas stays off until :autoscale turns it on again",
                range.min, range.max
            ),
            // Autoscaling is off as the table last listed it, so this is a
            // plain scale. Should it have come on since, the agent rejects it
            // and the toast offers the force again.
            (Operation::Scale { replicas, .. }, None) => {
                let plain = Operation::Scale {
                    key,
                    replicas: *replicas,
                    force: false,
                };
                return self.request(plain, effects);
            }
            (
                Operation::Autoscale {
                    setting: Some(setting),
                    ..
                },
                _,
            ) => autoscale_message(&target, current, range, setting),
            (Operation::Autoscale { setting: None, .. }, None) => {
                self.toast(
                    ToastLevel::Info,
                    format!("autoscaling is already off for {target}"),
                );
                return;
            }
            (Operation::Autoscale { setting: None, .. }, Some(range)) => format!(
                "Turn autoscaling off for {target}: the count stays at {current} replicas until you scale it\n\
                 autoscaling now keeps it between {} and {} replicas",
                range.min, range.max
            ),
            (other, _) => {
                tracing::error!(operation = ?other, "not an autoscaling change; ignored");
                return;
            }
        };
        let required_name = (key.environment == PRODUCTION).then(|| key.name.clone());
        self.layers.push(Layer::Confirm(ConfirmDialog {
            operation,
            message,
            required_name,
            typed: String::new(),
            error: None,
        }));
    }
}

fn autoscale_message(
    target: &str,
    current: u32,
    range: Option<ReplicaRange>,
    setting: &AutoscaleSetting,
) -> String {
    let (min, max) = (setting.min_replicas, setting.max_replicas);
    let first = match range {
        Some(range) => format!(
            "Change the autoscaling of {target} from {}..{} to {min}..{max} replicas (now {current})",
            range.min, range.max
        ),
        None => format!("Autoscale {target} between {min} and {max} replicas (now {current})"),
    };
    format!(
        "{first}\ntargets: {}\na new revision records the setting; the replicas keep running",
        setting.targets_text()
    )
}

#[cfg(test)]
#[path = "autoscale_tests.rs"]
mod tests;
