//! Collecting CPU, memory and replica counts of every deployment into the
//! store, and reading them back as aligned series.
//!
//! One task sweeps /proc once a second for the deployments whose interval
//! is due, so that two hundred replicas cost one pass over /proc rather than
//! two hundred. Docker replicas are measured from the newest sample of
//! each container's stats stream instead, which the Docker backend keeps.
//!
//! Kubernetes pods are measured by the cluster: their CPU and memory come
//! from its `metrics.k8s.io` API, fetched in a task per deployment whose
//! result the next sweep stores (see [`pods`]).
//!
//! Deployments with `monitoring.scrape` are scraped at the same interval,
//! each scrape in a task of its own whose result the next sweep stores, so
//! an application that responds slowly never delays the sweep.
//!
//! Alert rules of `monitoring.alerts` are evaluated on each collected value,
//! and their transitions (firing, repeat, resolved) are recorded as events.

mod containers;
mod pods;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::alerts::Delivery;
use super::scrape::{self, ScrapeOutcome};
use super::supervisor::Snapshot;
use super::{Engine, EngineError};
use crate::endpoint::{EndpointStats, LatencyHistogram};
use crate::manifest::{metric_group, BackendKind, Manifest, BUILT_IN_METRICS, METRIC_GROUPS};
use crate::model::Deployment;
use crate::model::{PointView, SeriesView};
use crate::monitor::alerts::{AlertRule, AlertState, AlertTransition};
use crate::monitor::collect::{host_memory_bytes, sweep, CpuRates};
use crate::monitor::exposition::{self, Exposition};
use crate::monitor::scrape::{canonical_series, ReplicaKey, ScrapeMemory};
use crate::monitor::series::{align, rollup, AlignedPoint, SeriesRetention, MINUTE_MS};
use crate::store::Resolution;
use containers::{ContainerRates, Measured};

/// How often the task wakes to see which deployments are due.
const TICK: Duration = Duration::from_secs(1);

/// Collection interval when the manifest gives none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The network series that a Docker deployment takes from its containers.
const NETWORK_BYTES: [&str; 2] = ["network_bytes_in", "network_bytes_out"];

/// Scrape results waiting for the collector; more are dropped as gaps.
const SCRAPE_QUEUE: usize = 64;

/// The series that the sweep collects for every deployment: the built-in
/// metrics but the last, `scrape_up`, which comes from scrapes like every
/// scraped series.
pub const SERIES: &[&str] = match BUILT_IN_METRICS.split_last() {
    Some((_, swept)) => swept,
    None => &[],
};

/// The settings of a deployment's current revision that collection uses.
#[derive(Debug, Clone, Copy)]
struct Settings {
    enabled: bool,
    interval: Duration,
    cpu_limit_cores: Option<f64>,
    memory_limit_bytes: Option<u64>,
    retention: SeriesRetention,
    groups: Groups,
}

/// The groups of built-in metrics that `monitoring.metrics` chose; all of
/// them when it lists none.
#[derive(Debug, Clone, Copy)]
struct Groups {
    all: bool,
    chosen: [bool; METRIC_GROUPS.len()],
}

impl Groups {
    fn of(listed: &[String]) -> Self {
        let mut chosen = [false; METRIC_GROUPS.len()];
        for (slot, group) in chosen.iter_mut().zip(METRIC_GROUPS) {
            *slot = listed.iter().any(|name| name == group);
        }
        Self {
            all: listed.is_empty(),
            chosen,
        }
    }

    fn collects(&self, series: &str) -> bool {
        if self.all {
            return true;
        }
        let Some(group) = metric_group(series) else {
            return true;
        };
        METRIC_GROUPS
            .iter()
            .zip(self.chosen)
            .any(|(name, chosen)| chosen && *name == group)
    }
}

/// Returns the retention the manifest sets, with defaults for what it leaves out.
pub fn retention_of(spec: &Manifest) -> SeriesRetention {
    let default = SeriesRetention::default();
    let set = spec
        .monitoring
        .as_ref()
        .and_then(|monitoring| monitoring.retention);
    SeriesRetention {
        raw: set
            .and_then(|set| set.raw)
            .map_or(default.raw, |raw| raw.as_std()),
        minute: set
            .and_then(|set| set.rollups)
            .map_or(default.minute, |rollups| rollups.as_std()),
    }
}

impl Settings {
    fn of(spec: &Manifest) -> Self {
        let monitoring = spec.monitoring.as_ref();
        let limits = spec.resources.limits.as_ref();
        Self {
            retention: retention_of(spec),
            groups: Groups::of(monitoring.map_or(&[][..], |monitoring| &monitoring.metrics)),
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
struct Collector {
    rates: CpuRates,
    containers: ContainerRates,
    /// Settings per deployment id and revision, so the spec is read once.
    settings: HashMap<(String, u64), Settings>,
    last_run: HashMap<String, Instant>,
    last_rollup: HashMap<String, u64>,
    /// Each deployment's stable endpoint counters at its last sweep.
    traffic: HashMap<String, Traffic>,
    /// Alert rules per deployment id, revision and API rule generation.
    rules: HashMap<(String, u64, u64), Arc<Vec<AlertRule>>>,
    scrapes: Scrapes,
    pods: pods::PodFetches,
}

/// Counters of a deployment's stable endpoints, by listening address.
struct Traffic {
    at: Instant,
    endpoints: HashMap<SocketAddr, EndpointStats>,
}

/// Scrapes in flight, their results, and what each deployment's last ones left.
struct Scrapes {
    sender: mpsc::Sender<ScrapeOutcome>,
    results: mpsc::Receiver<ScrapeOutcome>,
    in_flight: HashMap<String, JoinHandle<()>>,
    memory: HashMap<String, ScrapeMemory>,
    /// The problem of each deployment's last scrape, so that an event is
    /// recorded when scrapes start failing and when they recover, not at
    /// every interval.
    problems: HashMap<String, String>,
}

impl Collector {
    fn new() -> Self {
        let (sender, results) = mpsc::channel(SCRAPE_QUEUE);
        Self {
            rates: CpuRates::default(),
            containers: ContainerRates::default(),
            settings: HashMap::new(),
            last_run: HashMap::new(),
            last_rollup: HashMap::new(),
            rules: HashMap::new(),
            traffic: HashMap::new(),
            scrapes: Scrapes {
                sender,
                results,
                in_flight: HashMap::new(),
                memory: HashMap::new(),
                problems: HashMap::new(),
            },
            pods: pods::PodFetches::new(),
        }
    }
}

/// Runs until the engine is dropped.
pub(super) async fn run(engine: Weak<Engine>) {
    let mut collector = Collector::new();
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
        let snapshots = engine.all_snapshots();
        self.store_scrapes(engine, &snapshots)?;
        self.store_pod_metrics(engine, &snapshots)?;
        // Every running replica keeps its CPU baseline, not only those due
        // now: deployments with other intervals or start times are due in
        // other sweeps, and a lost baseline would leave their next reading
        // without a rate.
        let live: HashSet<i32> = snapshots
            .iter()
            .flat_map(|snapshot| snapshot.replicas.iter().filter_map(|replica| replica.pid))
            .filter_map(|pid| i32::try_from(pid).ok())
            .collect();
        let live_containers: HashSet<String> = snapshots
            .iter()
            .flat_map(|snapshot| &snapshot.replicas)
            .filter_map(|replica| replica.container.clone())
            .collect();

        let live_ids: HashSet<String> = snapshots
            .iter()
            .map(|snapshot| snapshot.deployment.id.clone())
            .collect();
        let due: Vec<(Snapshot, Settings)> = snapshots
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

        // Docker replicas are measured from their stats streams instead.
        let groups: HashSet<i32> = due
            .iter()
            .filter(|(snapshot, _)| snapshot.deployment.backend != BackendKind::Docker)
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
            self.start_scrape(snapshot, settings, time_ms);
            self.start_pod_fetch(snapshot, settings.interval, time_ms);
            let measured = self.measure(engine, snapshot, &usage, now);
            let mut values = self.values(snapshot, settings, &measured, host_memory);
            let mut traffic = self.traffic_values(snapshot, now);
            if snapshot.deployment.backend == BackendKind::Docker {
                // The containers' own counters replace the stable endpoints'
                // bytes, and also count traffic that bypasses the endpoints.
                traffic.retain(|(series, _)| !NETWORK_BYTES.contains(series));
            }
            values.extend(traffic);
            values.retain(|(series, _)| settings.groups.collects(series));
            let readings = &engine.autoscale_readings;
            readings.record_replicas(&snapshot.deployment.id, &measured.per_replica, now);
            readings.record_series(&snapshot.deployment.id, values.iter().copied(), now);
            store_values(engine, &snapshot.deployment.id, time_ms, &values)?;
            self.evaluate_alerts(engine, snapshot, &values, |rule| {
                SERIES.contains(&rule.metric.as_str())
            });
            self.roll_up(engine, &snapshot.deployment.id, time_ms, settings.retention)?;
        }
        engine.autoscale_readings.retain(|id| live_ids.contains(id));
        self.rates.retain(&live);
        self.containers
            .retain(&live_containers.iter().map(String::as_str).collect());
        Ok(())
    }

    /// Measures the CPU, memory and network of a deployment's replicas: from
    /// /proc for processes, from the stats streams for containers.
    fn measure(
        &mut self,
        engine: &Engine,
        snapshot: &Snapshot,
        usage: &HashMap<i32, crate::monitor::collect::GroupUsage>,
        now: Instant,
    ) -> Measured {
        if snapshot.deployment.backend == BackendKind::Docker {
            return self
                .containers
                .measure(&engine.docker, &snapshot.replicas, now);
        }
        let mut measured = Measured::default();
        for replica in &snapshot.replicas {
            let Some(pgid) = replica.pid.and_then(|pid| i32::try_from(pid).ok()) else {
                continue;
            };
            let Some(group) = usage.get(&pgid) else {
                continue;
            };
            let cores = self.rates.cores(pgid, group.cpu_ticks, now);
            if let Some(used) = cores {
                *measured.cores.get_or_insert(0.0) += used;
            }
            *measured.memory_bytes.get_or_insert(0u64) += group.rss_bytes;
            measured
                .per_replica
                .push((replica.index, (cores, Some(group.rss_bytes))));
        }
        measured
    }

    /// Starts a scrape of the deployment's ready replicas, unless the last
    /// one is still running.
    fn start_scrape(&mut self, snapshot: &Snapshot, settings: &Settings, time_ms: u64) {
        if snapshot.scrape_targets.is_empty() {
            return;
        }
        let id = &snapshot.deployment.id;
        if self
            .scrapes
            .in_flight
            .get(id)
            .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        let task = scrape::spawn(
            id.clone(),
            snapshot.scrape_targets.clone(),
            settings.interval,
            time_ms,
            self.scrapes.sender.clone(),
        );
        self.scrapes.in_flight.insert(id.clone(), task);
    }

    /// Stores the scrapes that finished since the last sweep and evaluates
    /// the alert rules on scraped series.
    fn store_scrapes(
        &mut self,
        engine: &Engine,
        snapshots: &[Snapshot],
    ) -> Result<(), EngineError> {
        let live: HashSet<&str> = snapshots
            .iter()
            .map(|snapshot| snapshot.deployment.id.as_str())
            .collect();
        self.scrapes
            .memory
            .retain(|id, _| live.contains(id.as_str()));
        self.scrapes
            .problems
            .retain(|id, _| live.contains(id.as_str()));
        self.scrapes
            .in_flight
            .retain(|id, _| live.contains(id.as_str()));

        while let Ok(outcome) = self.scrapes.results.try_recv() {
            let Some(snapshot) = snapshots
                .iter()
                .find(|snapshot| snapshot.deployment.id == outcome.deployment_id)
            else {
                continue;
            };
            let (values, problem) = self.scraped_values(&outcome);
            self.note_scrape_problem(engine, snapshot, problem);
            let borrowed: Vec<(&str, f64)> = values
                .iter()
                .map(|(name, value)| (name.as_str(), *value))
                .collect();
            engine.autoscale_readings.record_series(
                &outcome.deployment_id,
                borrowed.iter().copied(),
                Instant::now(),
            );
            store_values(engine, &outcome.deployment_id, outcome.time_ms, &borrowed)?;
            self.evaluate_alerts(engine, snapshot, &borrowed, |rule| {
                !SERIES.contains(&rule.metric.as_str())
            });
        }
        Ok(())
    }

    /// Parses the responses of a scrape into values, with `scrape_up` (the
    /// number of replicas whose response could be read), and describes what
    /// went wrong, if anything did.
    fn scraped_values(&mut self, outcome: &ScrapeOutcome) -> (Vec<(String, f64)>, Option<String>) {
        let mut problems: Vec<String> = Vec::new();
        let mut parsed: Vec<(ReplicaKey, Exposition)> = Vec::new();
        for (target, response) in &outcome.responses {
            match response {
                Err(reason) => problems.push(format!("{}: {reason}", target.url())),
                Ok(text) => {
                    let exposition = exposition::parse(text);
                    if let Some(error) = exposition.errors.first() {
                        problems.push(format!(
                            "{}: not all of it is the Prometheus text format ({} {}; first, {error})",
                            target.url(),
                            exposition.errors.len(),
                            if exposition.errors.len() == 1 { "problem" } else { "problems" }
                        ));
                    }
                    if exposition.samples.is_empty() && !exposition.errors.is_empty() {
                        continue;
                    }
                    parsed.push((target.replica, exposition));
                }
            }
        }

        let time_ms = i64::try_from(outcome.time_ms).unwrap_or(i64::MAX);
        let scrapes: Vec<(ReplicaKey, &Exposition)> = parsed
            .iter()
            .map(|(replica, exposition)| (*replica, exposition))
            .collect();
        let scraped = self
            .scrapes
            .memory
            .entry(outcome.deployment_id.clone())
            .or_default()
            .values(time_ms, &scrapes);
        if scraped.dropped > 0 {
            problems.push(format!(
                "{} series over the limit of {} were not stored; expose fewer label values",
                scraped.dropped,
                crate::monitor::scrape::MAX_SERIES
            ));
        }

        let mut values = scraped.values;
        values.push(("scrape_up".to_owned(), parsed.len() as f64));
        let problem = match problems.len() {
            0 => None,
            1 => problems.pop(),
            more => Some(format!("{} (and {} more)", problems[0], more - 1)),
        };
        (values, problem)
    }

    /// Records an event when a deployment's scrapes start failing, change
    /// how they fail, or recover.
    fn note_scrape_problem(
        &mut self,
        engine: &Engine,
        snapshot: &Snapshot,
        problem: Option<String>,
    ) {
        let deployment = &snapshot.deployment;
        let previous = self.scrapes.problems.get(&deployment.id);
        match (previous, problem) {
            (None, None) => {}
            (Some(_), None) => {
                self.scrapes.problems.remove(&deployment.id);
                engine.recorder.agent_event(
                    deployment,
                    "scrape-recovered",
                    true,
                    "every replica responds to the metrics scrape again",
                );
            }
            (previous, Some(problem)) => {
                if previous != Some(&problem) {
                    tracing::warn!(deployment = %deployment.key(), %problem, "scraping the application's metrics failed");
                    engine.recorder.agent_event(
                        deployment,
                        "scrape-failed",
                        false,
                        &format!("the application's metrics scrape has a problem: {problem}"),
                    );
                }
                self.scrapes.problems.insert(deployment.id.clone(), problem);
            }
        }
    }

    /// Evaluates the deployment's alert rules that `applies` picks on the
    /// values just collected and records each transition as an event.
    fn evaluate_alerts(
        &mut self,
        engine: &Engine,
        snapshot: &Snapshot,
        values: &[(&str, f64)],
        applies: impl Fn(&AlertRule) -> bool,
    ) {
        let deployment = &snapshot.deployment;
        let rules = self.rules_for(engine, deployment);
        let now = OffsetDateTime::now_utc();
        for rule in rules.iter().filter(|rule| applies(rule)) {
            let value = values
                .iter()
                .find(|(series, _)| *series == rule.metric)
                .map(|(_, value)| *value);
            let transitions = engine.evaluate_alert(&deployment.id, rule, value, now);
            for (transition, delivery) in transitions {
                let (action, ok, mut message) = describe_transition(rule, &transition);
                if delivery == Delivery::Silenced {
                    message.push_str(" (silenced, so not notified)");
                }
                engine
                    .recorder
                    .agent_event(deployment, action, ok, &message);
                if delivery == Delivery::Notify && !rule.notifications.is_empty() {
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
    fn rules_for(&mut self, engine: &Engine, deployment: &Deployment) -> Arc<Vec<AlertRule>> {
        let deployment_id = deployment.id.as_str();
        let revision = deployment.revision;
        let previous = self
            .rules
            .iter()
            .find(|((id, _, _), _)| id == deployment_id)
            .map(|(_, rules)| Arc::clone(rules))
            .unwrap_or_default();
        if engine.is_stopping(deployment_id) {
            self.rules.retain(|(id, _, _), _| id != deployment_id);
            let removed = engine.forget_alert_states(deployment_id, |_| false);
            announce_removed(
                engine,
                deployment,
                &previous,
                removed,
                "the deployment is undeployed",
            );
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
        let removed = engine.forget_alert_states(deployment_id, |name| {
            rules.iter().any(|rule| rule.name == name)
        });
        announce_removed(
            engine,
            deployment,
            &previous,
            removed,
            "its rule was removed",
        );
        let rules = Arc::new(rules);
        self.rules.retain(|(id, _, _), _| id != deployment_id);
        self.rules.insert(key, Arc::clone(&rules));
        rules
    }

    fn settings_for(&mut self, engine: &Engine, snapshot: &Snapshot) -> Option<Settings> {
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
        snapshot: &Snapshot,
        settings: &Settings,
        measured: &Measured,
        host_memory: Option<u64>,
    ) -> Vec<(&'static str, f64)> {
        let (cores, memory) = (measured.cores, measured.memory_bytes);
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
        if let Some((bytes_in, bytes_out)) = measured.network {
            values.push(("network_bytes_in", bytes_in));
            values.push(("network_bytes_out", bytes_out));
        }
        values
    }

    /// Computes the network and request series of the deployment's stable
    /// endpoints since the last sweep. Counts since an endpoint was bound
    /// belong to the first sweep that reads it, so none are lost, and its
    /// rates are then taken over the time since it was bound.
    fn traffic_values(&mut self, snapshot: &Snapshot, now: Instant) -> Vec<(&'static str, f64)> {
        let current: HashMap<SocketAddr, EndpointStats> = snapshot
            .endpoint_stats()
            .into_iter()
            .map(|stats| (stats.address, stats))
            .collect();
        let id = &snapshot.deployment.id;
        if current.is_empty() {
            self.traffic.remove(id);
            return Vec::new();
        }
        let previous = self.traffic.remove(id);
        let mut delta = TrafficDelta::default();
        for (address, stats) in &current {
            let earlier = previous
                .as_ref()
                .and_then(|previous| Some((previous.at, previous.endpoints.get(address)?)));
            match earlier {
                Some((at, before)) if stats.uptime_ms >= before.uptime_ms => {
                    delta.add(stats, Some(before), now.duration_since(at).as_secs_f64());
                }
                _ => delta.add(stats, None, stats.uptime_ms as f64 / 1000.0),
            }
        }
        self.traffic.insert(
            id.clone(),
            Traffic {
                at: now,
                endpoints: current,
            },
        );
        delta.values()
    }

    /// Once a minute, rolls the finished minutes up and drops what is past
    /// retention.
    fn roll_up(
        &mut self,
        engine: &Engine,
        deployment_id: &str,
        now_ms: u64,
        retention: SeriesRetention,
    ) -> Result<(), EngineError> {
        let minute = now_ms - now_ms % MINUTE_MS;
        let last = self.last_rollup.get(deployment_id).copied();
        if last == Some(minute) {
            return Ok(());
        }
        self.last_rollup.insert(deployment_id.to_owned(), minute);
        let from = last.unwrap_or(minute.saturating_sub(MINUTE_MS));

        let raw_cutoff = now_ms.saturating_sub(retention.raw.as_millis() as u64);
        let minute_cutoff = now_ms.saturating_sub(retention.minute.as_millis() as u64);
        for series in engine.store.metric_series(deployment_id)? {
            let series = series.as_str();
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

/// Records and sends the end of each announced firing alert whose rule or
/// deployment went away, so that receivers can close the incident.
pub(super) fn announce_removed(
    engine: &Engine,
    deployment: &Deployment,
    rules: &[AlertRule],
    removed: Vec<(String, AlertState)>,
    reason: &str,
) {
    let now = OffsetDateTime::now_utc();
    for (name, state) in removed {
        let AlertState::Firing {
            since,
            last_notified: Some(_),
            ..
        } = state
        else {
            continue;
        };
        let message = format!("{name}: resolved because {reason}");
        engine
            .recorder
            .agent_event(deployment, "alert-resolved", true, &message);
        let Some(rule) = rules.iter().find(|rule| rule.name == name) else {
            continue;
        };
        if rule.notifications.is_empty() {
            continue;
        }
        let transition = AlertTransition::Resolved { since, value: None };
        let notification = alert_notification(deployment, rule, &transition, message, now);
        engine
            .notifier
            .send(notification, Some(&rule.notifications));
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
        alert: Some(format!(
            "{}/{}/{}",
            deployment.name, deployment.environment, rule.name
        )),
        sequence: 0,
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
        let names: Vec<String> = names
            .iter()
            .map(|name| {
                canonical_series(name.trim()).map_err(|problem| EngineError::Unsupported {
                    field: "metric".to_owned(),
                    message: format!("invalid metric {name:?}: {problem}"),
                })
            })
            .collect::<Result<_, _>>()?;
        let names = names.as_slice();
        let unknown: Vec<&String> = names
            .iter()
            .filter(|name| !SERIES.contains(&name.as_str()))
            .collect();
        if !unknown.is_empty() {
            let stored = self.store.metric_series(&deployment.id)?;
            if let Some(name) = unknown.into_iter().find(|name| !stored.contains(name)) {
                return Err(unknown_metric(name, &stored));
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
        let retention = self
            .store
            .get_revision(&deployment.id, deployment.revision)?
            .map_or_else(SeriesRetention::default, |revision| {
                retention_of(&revision.spec)
            });
        let resolution = if window <= retention.raw {
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

    /// Lists the series that can be queried for a deployment: the built-in
    /// ones, then every other stored series (scraped ones and `scrape_up`).
    pub fn series_names(
        &self,
        name: &str,
        environment: Option<&str>,
    ) -> Result<Vec<String>, EngineError> {
        let deployment = self.resolve(name, environment)?;
        let mut names: Vec<String> = SERIES.iter().map(|series| (*series).to_owned()).collect();
        names.extend(
            self.store
                .metric_series(&deployment.id)?
                .into_iter()
                .filter(|series| !SERIES.contains(&series.as_str())),
        );
        Ok(names)
    }

    /// Starts the collection task; it ends when the engine is dropped.
    pub(super) fn start_metrics(self: &Arc<Self>) {
        tokio::spawn(run(Arc::downgrade(self)));
    }
}

/// Builds the error for a metric that is neither built in nor stored,
/// listing the metrics that exist.
fn unknown_metric(name: &str, stored: &[String]) -> EngineError {
    let scraped: Vec<&str> = stored
        .iter()
        .map(String::as_str)
        .filter(|series| !SERIES.contains(series))
        .collect();
    let mut message = format!(
        "unknown metric {name:?}; the built-in metrics are {}",
        SERIES.join(", ")
    );
    if scraped.is_empty() {
        message.push_str(", and no scraped series is stored for this deployment");
    } else {
        const SHOWN: usize = 20;
        let more = scraped.len().saturating_sub(SHOWN);
        message.push_str(&format!(
            ", and the scraped series include {}",
            scraped[..scraped.len().min(SHOWN)].join(", ")
        ));
        if more > 0 {
            message.push_str(&format!(
                " and {more} more (`shipdeck metrics NAME --list` lists them all)"
            ));
        }
    }
    EngineError::Unsupported {
        field: "metric".to_owned(),
        message,
    }
}

fn point_view(point: AlignedPoint) -> PointView {
    let nanos = i128::from(point.time_ms) * 1_000_000;
    PointView {
        time: OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        value: point.value,
        sum: point.sum,
        min: point.min,
        max: point.max,
    }
}

/// Growth of endpoint counters between two sweeps, over every endpoint of
/// a deployment.
#[derive(Default)]
struct TrafficDelta {
    /// Bytes per second, summed over the endpoints; `None` until an
    /// endpoint has been up long enough to give a rate.
    bytes_in: Option<f64>,
    bytes_out: Option<f64>,
    connections_in: u64,
    connections_out: u64,
    active: u64,
    http: bool,
    requests: u64,
    request_rate: Option<f64>,
    failed: u64,
    latency: Option<LatencyHistogram>,
}

/// Adds a rate to an optional sum, or leaves the sum as it is when the
/// time is too short for a rate.
fn add_rate(sum: &mut Option<f64>, count: u64, seconds: f64) {
    if seconds >= MIN_RATE_SECONDS {
        *sum.get_or_insert(0.0) += count as f64 / seconds;
    }
}

/// Shortest time a rate is computed over: a sweep right after an endpoint
/// opened would otherwise divide by almost nothing.
const MIN_RATE_SECONDS: f64 = 0.1;

/// Returns how much a counter grew. A counter that went down belongs to a new
/// endpoint on the same address, so all of its value is new.
fn growth(now: u64, before: Option<u64>) -> u64 {
    match before {
        Some(before) if now >= before => now - before,
        _ => now,
    }
}

impl TrafficDelta {
    /// Adds one endpoint's growth over `seconds`, from `before` or, without
    /// it, from when the endpoint was bound.
    fn add(&mut self, now: &EndpointStats, before: Option<&EndpointStats>, seconds: f64) {
        let bytes_in = growth(now.bytes_in, before.map(|b| b.bytes_in));
        let bytes_out = growth(now.bytes_out, before.map(|b| b.bytes_out));
        add_rate(&mut self.bytes_in, bytes_in, seconds);
        add_rate(&mut self.bytes_out, bytes_out, seconds);
        self.connections_in += growth(now.accepted, before.map(|b| b.accepted));
        self.active += now.active;
        for backend in &now.backends {
            let earlier = before
                .and_then(|b| b.backends.iter().find(|old| old.id == backend.id))
                .map(|old| old.connections);
            self.connections_out += growth(backend.connections, earlier);
        }

        let Some(requests) = &now.requests else {
            return;
        };
        self.http = true;
        let earlier = before.and_then(|b| b.requests.as_ref());
        let completed = growth(requests.completed, earlier.map(|r| r.completed));
        self.requests += completed;
        add_rate(&mut self.request_rate, completed, seconds);
        self.failed += growth(requests.failed, earlier.map(|r| r.failed));
        let latency = match earlier {
            Some(earlier) => requests.response_time.since(&earlier.response_time),
            None => requests.response_time.clone(),
        };
        match &mut self.latency {
            Some(total) => total.merge(&latency),
            None => self.latency = Some(latency),
        }
    }

    fn values(self) -> Vec<(&'static str, f64)> {
        let mut values = vec![
            ("network_connections_in", self.connections_in as f64),
            ("network_connections_out", self.connections_out as f64),
            ("network_connections_active", self.active as f64),
        ];
        if let Some(rate) = self.bytes_in {
            values.push(("network_bytes_in", rate));
        }
        if let Some(rate) = self.bytes_out {
            values.push(("network_bytes_out", rate));
        }
        if !self.http {
            return values;
        }

        values.push(("requests_total", self.requests as f64));
        values.push(("requests_failed", self.failed as f64));
        if let Some(rate) = self.request_rate {
            values.push(("requests_per_second", rate));
        }
        let latency = self.latency.unwrap_or_default();
        if let Some(mean) = latency.mean_micros() {
            values.push(("response_time", mean / 1000.0));
        }
        if let Some(p95) = latency.quantile(0.95) {
            values.push(("response_time_p95", p95 / 1000.0));
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        let text = format!("name: app\nrun:\n  command: [\"true\"]\n{extra}");
        let spec = crate::manifest::parse(&text, "test.yaml", &[]).expect("a valid manifest");
        Settings::of(&spec)
    }

    #[test]
    fn series_exclude_scrape_up() {
        assert_eq!(BUILT_IN_METRICS.last(), Some(&"scrape_up"));
        assert!(!SERIES.contains(&"scrape_up"));
        assert_eq!(SERIES.len(), BUILT_IN_METRICS.len() - 1);
    }

    #[test]
    fn traffic_counts_since_bind_and_rates_after() {
        use crate::endpoint::RequestStats;

        let stats = |accepted: u64, bytes: u64, completed: u64, failed: u64| EndpointStats {
            address: SocketAddr::from(([127, 0, 0, 1], 8080)),
            uptime_ms: 4_000,
            accepted,
            active: 1,
            failed_no_backend: 0,
            failed_connect: 0,
            bytes_in: bytes,
            bytes_out: bytes * 2,
            backends: Vec::new(),
            requests: Some(RequestStats {
                completed,
                failed,
                response_time: LatencyHistogram::default(),
            }),
        };
        let value = |values: &[(&str, f64)], name: &str| {
            values
                .iter()
                .find(|(series, _)| *series == name)
                .map(|(_, value)| *value)
        };

        let mut first = TrafficDelta::default();
        first.add(&stats(3, 100, 10, 2), None, 0.05);
        let values = first.values();
        assert_eq!(value(&values, "requests_total"), Some(10.0));
        assert_eq!(value(&values, "requests_failed"), Some(2.0));
        assert_eq!(value(&values, "network_connections_in"), Some(3.0));
        assert_eq!(
            value(&values, "network_bytes_in"),
            None,
            "too soon for a rate"
        );
        assert_eq!(value(&values, "response_time"), None, "no responses timed");

        let mut second = TrafficDelta::default();
        second.add(&stats(5, 300, 16, 2), Some(&stats(3, 100, 10, 2)), 2.0);
        let values = second.values();
        assert_eq!(value(&values, "requests_total"), Some(6.0));
        assert_eq!(value(&values, "requests_failed"), Some(0.0));
        assert_eq!(value(&values, "requests_per_second"), Some(3.0));
        assert_eq!(value(&values, "network_bytes_in"), Some(100.0));
        assert_eq!(value(&values, "network_bytes_out"), Some(200.0));

        // A new endpoint on the same address starts from zero.
        let mut replaced = TrafficDelta::default();
        replaced.add(&stats(1, 10, 4, 1), Some(&stats(5, 300, 16, 2)), 1.0);
        let values = replaced.values();
        assert_eq!(value(&values, "requests_total"), Some(4.0));
        assert_eq!(value(&values, "requests_failed"), Some(1.0));
    }

    #[test]
    fn settings_treat_zero_limits_as_none() {
        let zero = settings("resources:\n  limits: { cpu: \"0\", memory: \"0\" }\n");
        assert_eq!(zero.cpu_limit_cores, None);
        assert_eq!(zero.memory_limit_bytes, None);

        let half = settings("resources:\n  limits: { cpu: 500m, memory: 64Mi }\n");
        assert_eq!(half.cpu_limit_cores, Some(0.5));
        assert_eq!(half.memory_limit_bytes, Some(64 * 1024 * 1024));
    }

    #[test]
    fn settings_groups_filter_built_in_series_only() {
        let all = settings("");
        assert!(all.groups.collects("cpu_usage"));
        assert!(all.groups.collects("requests_total"));

        let chosen = settings("monitoring:\n  metrics: [cpu, replicas]\n");
        assert!(chosen.groups.collects("cpu_percentage"));
        assert!(chosen.groups.collects("replicas_ready"));
        assert!(!chosen.groups.collects("memory_usage"));
        assert!(!chosen.groups.collects("network_bytes_in"));
        assert!(!chosen.groups.collects("response_time_p95"));
        assert!(
            chosen.groups.collects("app_queue_depth"),
            "scraped series stay"
        );
    }

    #[test]
    fn settings_retention_defaults_and_overrides() {
        assert_eq!(settings("").retention, SeriesRetention::default());
        let set = settings("monitoring:\n  retention: { raw: 2h }\n").retention;
        assert_eq!(set.raw, Duration::from_secs(7200));
        assert_eq!(set.minute, SeriesRetention::default().minute);
    }
}
