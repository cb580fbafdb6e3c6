//! CPU and memory of Kubernetes deployments, from the cluster's
//! `metrics.k8s.io` API in place of /proc.
//!
//! Each fetch runs in a task of its own and sends its outcome to a
//! channel that the next sweep empties, as scrapes do, so a slow API
//! server never delays the sweep. A cluster that does not serve the API
//! stores no values at all (a gap, never a zero). The deployment's view
//! gives the reason, and the timeline gets one event when the values stop and one
//! when they come back.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{store_values, Collector, Settings};
use crate::backend::kubernetes::metrics::{DeploymentUsage, MetricsError};
use crate::engine::supervisor::Snapshot;
use crate::engine::{Engine, EngineError};

/// Fetch results waiting for the collector; more are dropped as gaps.
const QUEUE: usize = 64;

/// Maximum wait for the metrics API, whatever the interval.
const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// The series that pod metrics give values to.
pub(super) const POD_SERIES: [&str; 4] = [
    "cpu_usage",
    "cpu_percentage",
    "memory_usage",
    "memory_percentage",
];

/// The outcome of one fetch of a deployment's pod metrics.
#[derive(Debug)]
pub(super) struct PodMetricsOutcome {
    deployment_id: String,
    /// When the fetch started, in milliseconds since the epoch.
    time_ms: u64,
    result: Result<DeploymentUsage, MetricsError>,
}

/// Fetches in flight, their results, and why each deployment's last one
/// failed.
pub(super) struct PodFetches {
    sender: mpsc::Sender<PodMetricsOutcome>,
    results: mpsc::Receiver<PodMetricsOutcome>,
    in_flight: HashMap<String, JoinHandle<()>>,
    /// The reason of each deployment's last failed fetch, so that an event
    /// is recorded when fetches start failing and when they recover, not
    /// at every interval.
    problems: HashMap<String, String>,
}

impl PodFetches {
    pub fn new() -> Self {
        let (sender, results) = mpsc::channel(QUEUE);
        PodFetches {
            sender,
            results,
            in_flight: HashMap::new(),
            problems: HashMap::new(),
        }
    }
}

impl Collector {
    /// Starts a fetch of a Kubernetes deployment's pod metrics, unless it
    /// has no cluster connection or its last fetch is still running.
    pub(super) fn start_pod_fetch(
        &mut self,
        snapshot: &Snapshot,
        interval: Duration,
        time_ms: u64,
    ) {
        let Some(source) = snapshot.pod_metrics.clone() else {
            return;
        };
        let id = &snapshot.deployment.id;
        let fetches = &mut self.pods;
        if fetches
            .in_flight
            .get(id)
            .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        // A fetch that is not done before the next one is due has failed.
        let timeout = interval
            .mul_f64(0.9)
            .clamp(Duration::from_millis(500), MAX_TIMEOUT);
        let sender = fetches.sender.clone();
        let deployment_id = id.clone();
        let task = tokio::spawn(async move {
            let outcome = PodMetricsOutcome {
                deployment_id,
                time_ms,
                result: source.fetch(timeout).await,
            };
            if sender.try_send(outcome).is_err() {
                tracing::warn!(
                    "dropped a pod metrics result because the metrics collector is behind"
                );
            }
        });
        fetches.in_flight.insert(id.clone(), task);
    }

    /// Stores the pod metrics fetched since the last sweep, evaluates the
    /// alert rules on their series, and records when the cluster stops or
    /// starts serving them.
    pub(super) fn store_pod_metrics(
        &mut self,
        engine: &Engine,
        snapshots: &[Snapshot],
    ) -> Result<(), EngineError> {
        self.forget_unfetched(engine, snapshots);
        while let Ok(outcome) = self.pods.results.try_recv() {
            let Some(snapshot) = snapshots
                .iter()
                .find(|snapshot| snapshot.deployment.id == outcome.deployment_id)
            else {
                continue;
            };
            let Some(settings) = self.settings_for(engine, snapshot) else {
                continue;
            };
            let usage = match outcome.result {
                Ok(usage) => usage,
                Err(error) => {
                    self.note_pod_metrics_problem(engine, snapshot, Some(&error));
                    continue;
                }
            };
            self.note_pod_metrics_problem(engine, snapshot, None);
            let mut values = usage_values(&usage, &settings);
            values.retain(|(series, _)| settings.groups.collects(series));
            store_values(engine, &outcome.deployment_id, outcome.time_ms, &values)?;
            self.evaluate_alerts(engine, snapshot, &values, |rule| {
                POD_SERIES.contains(&rule.metric.as_str())
            });
        }
        Ok(())
    }

    /// Drops what is kept for deployments that no longer fetch (undeployed,
    /// disconnected or gone), and clears their reason in the engine.
    fn forget_unfetched(&mut self, engine: &Engine, snapshots: &[Snapshot]) {
        let fetching: HashSet<&str> = snapshots
            .iter()
            .filter(|snapshot| snapshot.pod_metrics.is_some())
            .map(|snapshot| snapshot.deployment.id.as_str())
            .collect();
        self.pods
            .in_flight
            .retain(|id, _| fetching.contains(id.as_str()));
        self.pods.problems.retain(|id, _| {
            let keep = fetching.contains(id.as_str());
            if !keep {
                engine.set_metrics_unavailable(id, None);
            }
            keep
        });
    }

    /// Records an event when a deployment's pod metrics stop, change why
    /// they fail, or come back, and keeps the engine's reason current.
    fn note_pod_metrics_problem(
        &mut self,
        engine: &Engine,
        snapshot: &Snapshot,
        error: Option<&MetricsError>,
    ) {
        let deployment = &snapshot.deployment;
        let previous = self.pods.problems.get(&deployment.id);
        match (previous, error) {
            (None, None) => {}
            (Some(_), None) => {
                self.pods.problems.remove(&deployment.id);
                engine.set_metrics_unavailable(&deployment.id, None);
                engine.recorder.agent_event(
                    deployment,
                    "metrics-recovered",
                    true,
                    "the cluster serves the pods' CPU and memory (metrics.k8s.io) again",
                );
            }
            (previous, Some(error)) => {
                let problem = error.to_string();
                if previous != Some(&problem) {
                    tracing::warn!(deployment = %deployment.key(), %problem, "reading pod metrics failed");
                    engine.recorder.agent_event(
                        deployment,
                        "metrics-unavailable",
                        false,
                        &format!("no CPU or memory values from the cluster: {problem}"),
                    );
                }
                engine.set_metrics_unavailable(&deployment.id, Some(problem.clone()));
                self.pods.problems.insert(deployment.id.clone(), problem);
            }
        }
    }
}

/// Computes the CPU and memory series from the pods' summed usage. No pod
/// measured yet is a gap, not a zero.
///
/// Percentages are of the limits of the pods measured, as on the other
/// backends, and of one core per pod without a CPU limit. Without a memory
/// limit there is no memory percentage, because the agent's host is not
/// the nodes the pods run on.
fn usage_values(usage: &DeploymentUsage, settings: &Settings) -> Vec<(&'static str, f64)> {
    if usage.pods == 0 {
        return Vec::new();
    }
    let pods = f64::from(usage.pods);
    let cpu_capacity = settings.cpu_limit_cores.unwrap_or(1.0) * pods;
    let mut values = vec![
        ("cpu_usage", usage.cores),
        ("cpu_percentage", usage.cores / cpu_capacity * 100.0),
        ("memory_usage", usage.memory_bytes),
    ];
    if let Some(limit) = settings.memory_limit_bytes {
        let capacity = limit as f64 * pods;
        values.push(("memory_percentage", usage.memory_bytes / capacity * 100.0));
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        let text = format!("name: app\nbackend: kubernetes\nimage: web:1\n{extra}");
        let spec = crate::manifest::parse(&text, "test.yaml", &[]).expect("a valid manifest");
        Settings::of(&spec)
    }

    fn value(values: &[(&str, f64)], name: &str) -> Option<f64> {
        values
            .iter()
            .find(|(series, _)| *series == name)
            .map(|(_, value)| *value)
    }

    #[test]
    fn usage_values_use_limits_per_pod() {
        let usage = DeploymentUsage {
            pods: 2,
            cores: 0.5,
            memory_bytes: 64.0 * 1024.0 * 1024.0,
        };
        let values = usage_values(
            &usage,
            &settings("resources:\n  limits: { cpu: 500m, memory: 64Mi }\n"),
        );
        assert_eq!(value(&values, "cpu_usage"), Some(0.5));
        assert_eq!(value(&values, "cpu_percentage"), Some(50.0));
        assert_eq!(value(&values, "memory_usage"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(value(&values, "memory_percentage"), Some(50.0));
    }

    #[test]
    fn usage_values_without_limits() {
        let usage = DeploymentUsage {
            pods: 4,
            cores: 1.0,
            memory_bytes: 1024.0,
        };
        let values = usage_values(&usage, &settings(""));
        assert_eq!(
            value(&values, "cpu_percentage"),
            Some(25.0),
            "one core per pod"
        );
        assert_eq!(
            value(&values, "memory_percentage"),
            None,
            "the host's memory says nothing about the nodes"
        );
    }

    #[test]
    fn no_pods_measured_is_gap() {
        let values = usage_values(&DeploymentUsage::default(), &settings(""));
        assert!(values.is_empty(), "{values:?}");
    }
}
