//! Collecting CPU, memory and replica counts of every deployment into the
//! store, and reading them back as aligned series.
//!
//! One task sweeps /proc once a second for the deployments whose interval
//! is due, so that two hundred replicas cost one pass over /proc rather than
//! two hundred.
//!
//! Alert rules of `monitoring.alerts` are evaluated on each collected value,
//! and their transitions (firing, repeat, resolved) are recorded as events.
//!
//! NOTE: network, request and scraped metrics, silences and
//! acknowledgements through the API, and notifications are not built yet.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::{Engine, EngineError};
use crate::manifest::Manifest;
use crate::model::{PointView, SeriesView};
use crate::monitor::alerts::{AlertRule, AlertTransition};
use crate::monitor::collect::{host_memory_bytes, sweep, CpuRates};
use crate::monitor::series::{align, rollup, AlignedPoint, SeriesRetention, MINUTE_MS};
use crate::store::Resolution;

/// How often the task wakes to see which deployments are due.
const TICK: Duration = Duration::from_secs(1);

/// Collection interval when the manifest gives none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The series collected for every deployment.
pub const SERIES: &[&str] = &[
    "cpu_usage",
    "cpu_percentage",
    "memory_usage",
    "memory_percentage",
    "replicas_desired",
    "replicas_available",
    "replicas_ready",
];

/// The settings of a deployment's current revision that collection uses.
#[derive(Debug, Clone, Copy)]
struct Settings {
    enabled: bool,
    interval: Duration,
    cpu_limit_cores: Option<f64>,
    memory_limit_bytes: Option<u64>,
}

impl Settings {
    fn of(spec: &Manifest) -> Self {
        let monitoring = spec.monitoring.as_ref();
        let limits = spec.resources.limits.as_ref();
        Self {
            enabled: monitoring.is_none_or(|monitoring| monitoring.enabled),
            interval: monitoring
                .map(|monitoring| monitoring.interval.as_std())
                .filter(|interval| !interval.is_zero())
                .unwrap_or(DEFAULT_INTERVAL),
            cpu_limit_cores: limits
                .and_then(|limits| limits.cpu.as_ref())
                .map(|cpu| cpu.millicores as f64 / 1000.0)
                .filter(|cores| *cores > 0.0),
            memory_limit_bytes: limits
                .and_then(|limits| limits.memory.as_ref())
                .map(|memory| memory.bytes)
                .filter(|bytes| *bytes > 0),
        }
    }
}

/// The collection task's memory between sweeps.
#[derive(Default)]
struct Collector {
    rates: CpuRates,
    /// Settings per deployment id and revision, so the spec is read once.
    settings: HashMap<(String, u64), Settings>,
    last_run: HashMap<String, Instant>,
    last_rollup: HashMap<String, u64>,
    retention: SeriesRetention,
    /// Alert rules per deployment id, revision and API rule generation.
    rules: HashMap<(String, u64, u64), Arc<Vec<AlertRule>>>,
}

/// Runs until the engine is dropped.
pub(super) async fn run(engine: Weak<Engine>) {
    let mut collector = Collector::default();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(strong) = engine.upgrade() else {
            return;
        };
        // Reading /proc and the store blocks, so it runs off the async workers.
        let swept = tokio::task::spawn_blocking(move || {
            let result = collector.collect(&strong);
            (collector, result)
        })
        .await;
        let Ok((returned, result)) = swept else {
            tracing::error!("the metrics collection task panicked; collection stops");
            return;
        };
        collector = returned;
        if let Err(error) = result {
            tracing::warn!(%error, "collecting metrics failed; trying again at the next interval");
        }
    }
}

impl Collector {
    fn collect(&mut self, engine: &Arc<Engine>) -> Result<(), EngineError> {
        let now = Instant::now();
        let due: Vec<(super::supervisor::Snapshot, Settings)> = engine
            .all_snapshots()
            .into_iter()
            .filter_map(|snapshot| {
                let settings = self.settings_for(engine, &snapshot)?;
                let last = self.last_run.get(&snapshot.deployment.id);
                let is_due = last
                    .is_none_or(|last| now.duration_since(*last) + TICK / 2 >= settings.interval);
                (settings.enabled && is_due).then_some((snapshot, settings))
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }

        let groups: HashSet<i32> = due
            .iter()
            .flat_map(|(snapshot, _)| snapshot.replicas.iter().filter_map(|replica| replica.pid))
            .filter_map(|pid| i32::try_from(pid).ok())
            .collect();
        let usage = sweep(&groups).map_err(|error| EngineError::Unsupported {
            field: "metrics".to_owned(),
            message: error.to_string(),
        })?;
        let time_ms = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(0);
        let host_memory = host_memory_bytes();

        for (snapshot, settings) in &due {
            self.last_run.insert(snapshot.deployment.id.clone(), now);
            let values = self.values(snapshot, settings, &usage, now, host_memory);
            store_values(engine, &snapshot.deployment.id, time_ms, &values)?;
            self.evaluate_alerts(engine, snapshot, &values);
            self.roll_up(engine, &snapshot.deployment.id, time_ms)?;
        }
        self.rates.retain(&groups);
        Ok(())
    }

    /// Evaluates the deployment's alert rules on the values just collected
    /// and records each transition as an event.
    fn evaluate_alerts(
        &mut self,
        engine: &Engine,
        snapshot: &super::supervisor::Snapshot,
        values: &[(&'static str, f64)],
    ) {
        let deployment = &snapshot.deployment;
        let rules = self.rules_for(engine, &deployment.id, deployment.revision);
        let now = OffsetDateTime::now_utc();
        for rule in rules.iter() {
            let value = values
                .iter()
                .find(|(series, _)| *series == rule.metric)
                .map(|(_, value)| *value);
            let transitions = engine.evaluate_alert(&deployment.id, rule, value, now);
            for transition in transitions {
                let (action, ok, message) = describe_transition(rule, &transition);
                engine
                    .recorder
                    .agent_event(deployment, action, ok, &message);
                if !rule.notifications.is_empty() {
                    let notification =
                        alert_notification(deployment, rule, &transition, message, now);
                    engine
                        .notifier
                        .send(notification, Some(&rule.notifications));
                }
            }
        }
    }

    /// Returns the rules to evaluate: the revision's manifest rules merged
    /// with the API rules. A deployment that is being undeployed or is
    /// undeployed has none, and its alert states are dropped, so that
    /// stopping its replicas does not fire `replicas_ready` rules.
    fn rules_for(
        &mut self,
        engine: &Engine,
        deployment_id: &str,
        revision: u64,
    ) -> Arc<Vec<AlertRule>> {
        if engine.is_stopping(deployment_id) {
            self.rules.retain(|(id, _, _), _| id != deployment_id);
            engine.forget_alert_states(deployment_id, |_| false);
            return Arc::new(Vec::new());
        }
        let key = (
            deployment_id.to_owned(),
            revision,
            engine.alert_rules_generation(),
        );
        if let Some(rules) = self.rules.get(&key) {
            return Arc::clone(rules);
        }
        let specs = engine.merged_alert_rules(deployment_id, revision);
        let rules: Vec<AlertRule> = specs
            .iter()
            .filter_map(|spec| match AlertRule::from_spec(spec) {
                Ok(rule) => Some(rule),
                Err(error) => {
                    tracing::warn!(deployment_id, %error, "skipped an alert rule the evaluator cannot use");
                    None
                }
            })
            .collect();
        // A rule that a redeploy or the API dropped leaves no state behind.
        engine.forget_alert_states(deployment_id, |name| {
            rules.iter().any(|rule| rule.name == name)
        });
        let rules = Arc::new(rules);
        self.rules.retain(|(id, _, _), _| id != deployment_id);
        self.rules.insert(key, Arc::clone(&rules));
        rules
    }

    fn settings_for(
        &mut self,
        engine: &Engine,
        snapshot: &super::supervisor::Snapshot,
    ) -> Option<Settings> {
        let key = (snapshot.deployment.id.clone(), snapshot.deployment.revision);
        if let Some(settings) = self.settings.get(&key) {
            return Some(*settings);
        }
        let revision = engine.store.get_revision(&key.0, key.1).ok()??;
        let settings = Settings::of(&revision.spec);
        self.settings.retain(|(id, _), _| *id != key.0);
        self.settings.insert(key, settings);
        Some(settings)
    }

    /// Computes this sweep's value of each series. A series without a value
    /// (the first CPU reading, no replica running) is left out, which shows
    /// as a gap rather than a false zero.
    fn values(
        &mut self,
        snapshot: &super::supervisor::Snapshot,
        settings: &Settings,
        usage: &HashMap<i32, crate::monitor::collect::GroupUsage>,
        now: Instant,
        host_memory: Option<u64>,
    ) -> Vec<(&'static str, f64)> {
        let mut cores = None;
        let mut memory = None;
        for pid in snapshot.replicas.iter().filter_map(|replica| replica.pid) {
            let Ok(pgid) = i32::try_from(pid) else {
                continue;
            };
            let Some(group) = usage.get(&pgid) else {
                continue;
            };
            if let Some(used) = self.rates.cores(pgid, group.cpu_ticks, now) {
                *cores.get_or_insert(0.0) += used;
            }
            *memory.get_or_insert(0u64) += group.rss_bytes;
        }

        let replicas = snapshot.replicas.len();
        let mut values = vec![
            (
                "replicas_desired",
                f64::from(snapshot.deployment.desired_replicas),
            ),
            ("replicas_available", replicas as f64),
            (
                "replicas_ready",
                snapshot
                    .replicas
                    .iter()
                    .filter(|replica| replica.ready)
                    .count() as f64,
            ),
        ];
        if let Some(cores) = cores {
            // Without a limit, the percentage is of one core per replica.
            let capacity = settings.cpu_limit_cores.unwrap_or(1.0) * replicas.max(1) as f64;
            values.push(("cpu_usage", cores));
            values.push(("cpu_percentage", cores / capacity * 100.0));
        }
        if let Some(bytes) = memory {
            let capacity = settings
                .memory_limit_bytes
                .map(|limit| limit.saturating_mul(replicas.max(1) as u64))
                .or(host_memory)
                .filter(|capacity| *capacity > 0);
            values.push(("memory_usage", bytes as f64));
            if let Some(capacity) = capacity {
                values.push(("memory_percentage", bytes as f64 / capacity as f64 * 100.0));
            }
        }
        values
    }

    /// Once a minute, rolls the finished minutes up and drops what is past
    /// retention.
    fn roll_up(
        &mut self,
        engine: &Engine,
        deployment_id: &str,
        now_ms: u64,
    ) -> Result<(), EngineError> {
        let minute = now_ms - now_ms % MINUTE_MS;
        let last = self.last_rollup.get(deployment_id).copied();
        if last == Some(minute) {
            return Ok(());
        }
        self.last_rollup.insert(deployment_id.to_owned(), minute);
        let from = last.unwrap_or(minute.saturating_sub(MINUTE_MS));

        let raw_cutoff = now_ms.saturating_sub(self.retention.raw.as_millis() as u64);
        let minute_cutoff = now_ms.saturating_sub(self.retention.minute.as_millis() as u64);
        for series in SERIES {
            let raw =
                engine
                    .store
                    .metric_points(deployment_id, series, Resolution::Raw, from, minute)?;
            let rolled = rollup(&raw, MINUTE_MS);
            if !rolled.is_empty() {
                engine.store.put_metric_points(
                    deployment_id,
                    series,
                    Resolution::Minute,
                    &rolled,
                )?;
            }
            engine.store.remove_metric_points_before(
                deployment_id,
                series,
                Resolution::Raw,
                raw_cutoff,
            )?;
            engine.store.remove_metric_points_before(
                deployment_id,
                series,
                Resolution::Minute,
                minute_cutoff,
            )?;
        }
        Ok(())
    }
}

fn alert_notification(
    deployment: &crate::model::Deployment,
    rule: &AlertRule,
    transition: &AlertTransition,
    message: String,
    time: OffsetDateTime,
) -> crate::model::Notification {
    let (kind, state) = match transition {
        AlertTransition::Firing { .. } => ("alert-firing", "firing"),
        AlertTransition::Repeat { .. } => ("alert-repeat", "still firing"),
        AlertTransition::Resolved { .. } => ("alert-resolved", "resolved"),
    };
    crate::model::Notification {
        kind: kind.to_owned(),
        title: format!("{} {state} on {}", rule.name, deployment.key()),
        message,
        severity: rule.severity.to_string(),
        deployment: deployment.name.clone(),
        environment: deployment.environment.clone(),
        time,
    }
}

/// Turns an alert transition into an event's action, outcome and message.
fn describe_transition(
    rule: &AlertRule,
    transition: &AlertTransition,
) -> (&'static str, bool, String) {
    let condition = format!("{} {} {}", rule.metric, rule.condition, rule.threshold);
    match transition {
        AlertTransition::Firing { value, .. } => (
            "alert-firing",
            false,
            format!(
                "{} ({}): {condition} holds, value {value:.3}",
                rule.name, rule.severity
            ),
        ),
        AlertTransition::Repeat { value, .. } => (
            "alert-firing",
            false,
            format!(
                "{} ({}): still firing, {condition}, value {value:.3}",
                rule.name, rule.severity
            ),
        ),
        AlertTransition::Resolved { value, .. } => (
            "alert-resolved",
            true,
            match value {
                Some(value) => format!(
                    "{}: {condition} no longer holds, value {value:.3}",
                    rule.name
                ),
                None => format!(
                    "{}: resolved because {} has no recent value",
                    rule.name, rule.metric
                ),
            },
        ),
    }
}

fn store_values(
    engine: &Engine,
    deployment_id: &str,
    time_ms: u64,
    values: &[(&str, f64)],
) -> Result<(), EngineError> {
    let finite: Vec<(&str, f64)> = values
        .iter()
        .copied()
        .filter(|(_, value)| value.is_finite())
        .collect();
    engine
        .store
        .put_metric_samples(deployment_id, time_ms, &finite)?;
    Ok(())
}

impl Engine {
    /// Returns series of a deployment over the `window` before now, aligned
    /// to `step` (by default a 60th of the window, at least a second). Raw
    /// points serve windows up to the raw retention; longer ones read the
    /// minute rollups.
    pub fn metrics(
        &self,
        name: &str,
        environment: Option<&str>,
        names: &[String],
        window: Duration,
        step: Option<Duration>,
    ) -> Result<Vec<SeriesView>, EngineError> {
        let deployment = self.resolve(name, environment)?;
        for name in names {
            if !SERIES.contains(&name.as_str()) {
                return Err(EngineError::Unsupported {
                    field: "metric".to_owned(),
                    message: format!("unknown metric {name:?}; choose from {}", SERIES.join(", ")),
                });
            }
        }
        let wanted: Vec<&str> = if names.is_empty() {
            SERIES.to_vec()
        } else {
            names.iter().map(String::as_str).collect()
        };

        let now_ms = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(0);
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let from_ms = now_ms.saturating_sub(window_ms);
        let step_ms = step
            .map(|step| u64::try_from(step.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(window_ms / 60)
            .max(1_000);
        let resolution = if window <= SeriesRetention::default().raw {
            Resolution::Raw
        } else {
            Resolution::Minute
        };

        wanted
            .into_iter()
            .map(|series| {
                let points = self.store.metric_points(
                    &deployment.id,
                    series,
                    resolution,
                    from_ms,
                    now_ms + 1,
                )?;
                Ok(SeriesView {
                    name: series.to_owned(),
                    step_ms,
                    points: align(&points, from_ms, now_ms + 1, step_ms)
                        .into_iter()
                        .map(point_view)
                        .collect(),
                })
            })
            .collect()
    }

    /// Starts the collection task; it ends when the engine is dropped.
    pub(super) fn start_metrics(self: &Arc<Self>) {
        tokio::spawn(run(Arc::downgrade(self)));
    }
}

fn point_view(point: AlignedPoint) -> PointView {
    let nanos = i128::from(point.time_ms) * 1_000_000;
    PointView {
        time: OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        value: point.value,
    }
}
