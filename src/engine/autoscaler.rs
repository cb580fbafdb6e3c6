//! Shipdeck's own autoscaler for process and Docker deployments: a task
//! that evaluates each autoscaled deployment at its `autoScaling.interval`
//! with the HPA algorithm of [`crate::autoscale`], stores every decision,
//! and scales when a decision changes the count.
//!
//! The metrics collector leaves the newest per-replica CPU and memory and
//! the newest value of every series in [`Readings`]; the task reads them
//! there rather than from the store, which keeps only deployment totals.
//! A Kubernetes deployment is left to its cluster's HorizontalPodAutoscaler.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::supervisor::Snapshot;
use super::{Caller, Engine, EngineError};
use crate::autoscale::{
    AutoscaleSource, AutoscaleView, Decision, History, Observation, Policy, ReplicaSample, Target,
    DEFAULT_INTERVAL_SECONDS,
};
use crate::manifest::{BackendKind, Manifest};
use crate::model::{Deployment, ReplicaRange, ReplicaState};

/// How often the task wakes to see which deployments are due.
const TICK: Duration = Duration::from_secs(1);

/// The user that autoscaling events carry.
pub const AUTOSCALER_USER: &str = "autoscaler";

/// Decisions that `autoscale status` shows by default.
pub const RECENT_DECISIONS: usize = 20;

/// One replica's newest CPU (cores) and memory (bytes).
pub type ReplicaUsage = (Option<f64>, Option<u64>);

/// The newest measurements of every deployment, which the collector
/// writes at each sweep and the autoscaler reads.
#[derive(Default)]
pub struct Readings {
    inner: Mutex<HashMap<String, DeploymentReadings>>,
}

#[derive(Default)]
struct DeploymentReadings {
    replicas: HashMap<u32, (Instant, ReplicaUsage)>,
    series: HashMap<String, (Instant, f64)>,
}

impl Readings {
    /// Records the usage of the replicas measured in one sweep, by slot.
    pub fn record_replicas(&self, deployment_id: &str, usage: &[(u32, ReplicaUsage)], at: Instant) {
        let mut guard = self.lock();
        let entry = guard.entry(deployment_id.to_owned()).or_default();
        entry.replicas.clear();
        entry
            .replicas
            .extend(usage.iter().map(|(slot, usage)| (*slot, (at, *usage))));
    }

    /// Records the values of series collected or scraped in one sweep.
    pub fn record_series<'a>(
        &self,
        deployment_id: &str,
        values: impl IntoIterator<Item = (&'a str, f64)>,
        at: Instant,
    ) {
        let mut guard = self.lock();
        let entry = guard.entry(deployment_id.to_owned()).or_default();
        for (name, value) in values {
            entry.series.insert(name.to_owned(), (at, value));
        }
    }

    /// Forgets deployments that no longer run.
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        self.lock().retain(|id, _| live(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DeploymentReadings>> {
        // A panic while holding the lock leaves plain data behind; the next
        // sweep overwrites it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Builds the autoscaler's observation of a deployment, trusting only
    /// readings younger than the settings' `fresh`.
    fn observe(&self, snapshot: &Snapshot, settings: &Settings, now: Instant) -> Observation {
        let guard = self.lock();
        let readings = guard.get(&snapshot.deployment.id);
        let is_fresh = |at: &Instant| now.duration_since(*at) <= settings.fresh;
        let replicas = snapshot
            .replicas
            .iter()
            .filter(|replica| counts_as_existing(replica.state))
            .map(|replica| {
                let usage = readings
                    .and_then(|readings| readings.replicas.get(&replica.index))
                    .filter(|(at, _)| is_fresh(at))
                    .map(|(_, usage)| *usage)
                    .unwrap_or((None, None));
                ReplicaSample {
                    slot: replica.index,
                    ready: replica.ready,
                    cpu_cores: usage.0,
                    memory_bytes: usage.1,
                }
            })
            .collect();
        let series = settings
            .series
            .iter()
            .filter_map(|name| {
                let (at, value) = readings?.series.get(name)?;
                is_fresh(at).then(|| (name.clone(), *value))
            })
            .collect();
        Observation {
            current_replicas: snapshot.deployment.desired_replicas,
            replicas,
            cpu_request_cores: settings.cpu_request_cores,
            memory_request_bytes: settings.memory_request_bytes,
            series,
        }
    }
}

/// Replicas that are starting or running count; stopping, exited and
/// failed ones are gone as far as the controller is concerned.
fn counts_as_existing(state: ReplicaState) -> bool {
    matches!(
        state,
        ReplicaState::Starting | ReplicaState::Running | ReplicaState::Ready
    )
}

/// The parts of a revision's spec that the autoscaler uses.
struct Settings {
    policy: Policy,
    interval: Duration,
    /// The age limit of a reading: two collection intervals and a second.
    fresh: Duration,
    cpu_request_cores: Option<f64>,
    memory_request_bytes: Option<u64>,
    /// The series that `AverageValue` targets name.
    series: Vec<String>,
}

impl Settings {
    /// Returns `None` when autoscaling is off in `spec`.
    fn of(spec: &Manifest) -> Option<Self> {
        let scaling = spec
            .auto_scaling
            .as_ref()
            .filter(|scaling| scaling.enabled)?;
        let policy = Policy::of(scaling);
        let requests = spec.resources.requests.as_ref();
        let collection = spec
            .monitoring
            .as_ref()
            .map(|monitoring| monitoring.interval.as_std())
            .filter(|interval| !interval.is_zero())
            .unwrap_or(Duration::from_secs(10));
        let series = policy
            .targets
            .iter()
            .filter_map(|target| match target {
                Target::AverageValue { metric, .. } => Some(metric.clone()),
                _ => None,
            })
            .collect();
        Some(Self {
            interval: scaling
                .interval
                .map(|interval| interval.as_std())
                .unwrap_or(Duration::from_secs(DEFAULT_INTERVAL_SECONDS)),
            fresh: collection * 2 + Duration::from_secs(1),
            cpu_request_cores: requests
                .and_then(|requests| requests.cpu.as_ref())
                .map(|cpu| cpu.millicores as f64 / 1000.0),
            memory_request_bytes: requests
                .and_then(|requests| requests.memory.as_ref())
                .map(|memory| memory.bytes),
            series,
            policy,
        })
    }
}

/// The task's memory between ticks.
#[derive(Default)]
struct Autoscaler {
    histories: HashMap<String, History>,
    /// Settings per deployment id and revision; `None` when autoscaling is off.
    settings: HashMap<(String, u64), Option<Arc<Settings>>>,
    last_run: HashMap<String, Instant>,
}

/// A decision to scale, to carry out after the evaluation round.
struct Scaling {
    deployment: Deployment,
    decision: Decision,
}

/// Runs until the engine is dropped.
pub(super) async fn run(engine: Weak<Engine>) {
    let mut autoscaler = Autoscaler::default();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(strong) = engine.upgrade() else {
            return;
        };
        // Reading revisions and storing decisions blocks on sled.
        let round = tokio::task::spawn_blocking(move || {
            let scalings = autoscaler.evaluate_due(&strong);
            (autoscaler, strong, scalings)
        })
        .await;
        let Ok((returned, strong, scalings)) = round else {
            tracing::error!("the autoscaler task panicked; autoscaling stops");
            return;
        };
        autoscaler = returned;
        for scaling in scalings {
            autoscaler.apply(&strong, scaling).await;
        }
    }
}

impl Autoscaler {
    fn evaluate_due(&mut self, engine: &Engine) -> Vec<Scaling> {
        let now = Instant::now();
        let now_ms = unix_ms(OffsetDateTime::now_utc());
        let snapshots = engine.all_snapshots();
        self.forget_gone(&snapshots);

        let mut scalings = Vec::new();
        for snapshot in &snapshots {
            let Some(settings) = self.settings_for(engine, &snapshot.deployment) else {
                self.histories.remove(&snapshot.deployment.id);
                continue;
            };
            let id = &snapshot.deployment.id;
            let due = self
                .last_run
                .get(id)
                .is_none_or(|last| now.duration_since(*last) + TICK / 2 >= settings.interval);
            if !due {
                continue;
            }
            self.last_run.insert(id.clone(), now);

            let observation = engine.autoscale_readings.observe(snapshot, &settings, now);
            let history = self.histories.entry(id.clone()).or_default();
            let decision = history.evaluate(&settings.policy, &observation, now_ms);
            if let Err(error) = engine.store.put_autoscale_decision(id, &decision) {
                tracing::warn!(%error, deployment = %snapshot.deployment.name, "storing an autoscaling decision failed");
            }
            if decision.scales() {
                scalings.push(Scaling {
                    deployment: snapshot.deployment.clone(),
                    decision,
                });
            }
        }
        scalings
    }

    /// Applies one decision to scale and remembers it for the rate policies.
    async fn apply(&mut self, engine: &Engine, scaling: Scaling) {
        let Scaling {
            deployment,
            decision,
        } = scaling;
        let caller = Caller {
            user: AUTOSCALER_USER.to_owned(),
        };
        match engine
            .scale_to(
                &deployment,
                decision.desired,
                &caller,
                "autoscale",
                &decision.reason,
            )
            .await
        {
            Ok(()) => {
                if let Some(history) = self.histories.get_mut(&deployment.id) {
                    history.record_scale(
                        decision.current_replicas,
                        decision.desired,
                        decision.at_ms,
                    );
                }
            }
            Err(error) => {
                tracing::warn!(%error, deployment = %deployment.name, "autoscaling could not scale");
            }
        }
    }

    fn settings_for(&mut self, engine: &Engine, deployment: &Deployment) -> Option<Arc<Settings>> {
        if deployment.backend == BackendKind::Kubernetes || !deployment.wants_replicas() {
            return None;
        }
        let key = (deployment.id.clone(), deployment.revision);
        if let Some(settings) = self.settings.get(&key) {
            return settings.clone();
        }
        let spec = match engine
            .store
            .get_revision(&deployment.id, deployment.revision)
        {
            Ok(Some(revision)) => revision.spec,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, deployment = %deployment.name, "reading the revision for autoscaling failed");
                return None;
            }
        };
        let settings = Settings::of(&spec).map(Arc::new);
        self.settings.insert(key, settings.clone());
        settings
    }

    fn forget_gone(&mut self, snapshots: &[Snapshot]) {
        let live = |id: &str| {
            snapshots
                .iter()
                .any(|snapshot| snapshot.deployment.id == id)
        };
        self.histories.retain(|id, _| live(id));
        self.last_run.retain(|id, _| live(id));
        self.settings.retain(|(id, revision), _| {
            snapshots.iter().any(|snapshot| {
                snapshot.deployment.id == *id && snapshot.deployment.revision == *revision
            })
        });
    }
}

fn unix_ms(time: OffsetDateTime) -> u64 {
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The autoscaling range of each deployment's current revision, by
/// deployment id, so that listing deployments reads no revision spec. A
/// stored revision never changes, so an entry stays right until the
/// deployment moves to another revision.
#[derive(Default)]
pub(super) struct RangeCache {
    inner: Mutex<HashMap<String, (u64, Option<ReplicaRange>)>>,
}

impl RangeCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Option<ReplicaRange>)>> {
        // Each entry is written whole, so a panic elsewhere leaves none half set.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Engine {
    /// Shows a deployment's autoscaling: the cluster's HPA for Kubernetes,
    /// else shipdeck's newest decisions.
    pub fn autoscale_status(
        &self,
        name: &str,
        environment: Option<&str>,
        decisions: usize,
    ) -> Result<AutoscaleView, EngineError> {
        let deployment = self.resolve(name, environment)?;
        let revision = self.revision(&deployment, deployment.revision)?;
        let since_ms = unix_ms(revision.created_at);
        let spec = revision.spec;
        let scaling = spec
            .auto_scaling
            .as_ref()
            .filter(|scaling| scaling.enabled)
            .ok_or_else(|| EngineError::AutoscalingOff {
                name: deployment.name.clone(),
            })?;
        if deployment.backend == BackendKind::Kubernetes {
            let snapshot = self.snapshot(&deployment.id);
            return snapshot
                .and_then(|snapshot| snapshot.cluster_autoscaler)
                .ok_or_else(|| EngineError::AutoscalerNotSeen {
                    name: deployment.name.clone(),
                });
        }

        let policy = Policy::of(scaling);
        // One read serves both the recent decisions and the last scale.
        let mut recent = self
            .store
            .autoscale_decisions(&deployment.id, crate::store::DECISIONS_KEPT)?;
        let last_scale_ms = recent
            .iter()
            .find(|decision| decision.scales())
            .map(|decision| decision.at_ms);
        recent.truncate(decisions.max(1));
        // Decisions made under an earlier setting do not describe this one.
        let newest = recent.first().filter(|decision| decision.at_ms >= since_ms);
        Ok(AutoscaleView {
            source: AutoscaleSource::Shipdeck,
            min_replicas: policy.min_replicas,
            max_replicas: policy.max_replicas,
            targets: policy.targets,
            current_replicas: deployment.desired_replicas,
            desired_replicas: newest
                .map_or(deployment.desired_replicas, |decision| decision.desired),
            metrics: newest
                .map(|decision| decision.metrics.clone())
                .unwrap_or_default(),
            conditions: newest
                .map(|decision| decision.conditions.clone())
                .unwrap_or_default(),
            last_scale_ms,
            decisions: recent.into_iter().take(decisions).collect(),
        })
    }

    /// Returns the range autoscaling keeps `deployment` in, or `None`
    /// while autoscaling is off in its current revision.
    pub(super) fn autoscaling_range(&self, deployment: &Deployment) -> Option<ReplicaRange> {
        if let Some((revision, range)) = self.autoscaling_ranges.lock().get(&deployment.id) {
            if *revision == deployment.revision {
                return *range;
            }
        }
        let range = match self.store.get_revision(&deployment.id, deployment.revision) {
            Ok(Some(revision)) => revision
                .spec
                .auto_scaling
                .filter(|scaling| scaling.enabled)
                .map(|scaling| ReplicaRange {
                    min: scaling.min_replicas,
                    max: scaling.max_replicas,
                }),
            // The record can name a revision a moment before it is
            // stored; the next view reads it again.
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, deployment = %deployment.name, "reading the revision for its autoscaling range failed");
                return None;
            }
        };
        self.autoscaling_ranges
            .lock()
            .insert(deployment.id.clone(), (deployment.revision, range));
        range
    }

    pub(super) fn start_autoscaler(self: &Arc<Self>) {
        tokio::spawn(run(Arc::downgrade(self)));
    }
}
