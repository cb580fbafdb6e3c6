//! A deployment's state in the cluster, kept current by kube's runtime
//! watcher and reflector caches of its Deployment, pods and
//! HorizontalPodAutoscaler, so nothing polls: after the first list, the
//! cluster pushes changes.
//!
//! [`summarize`] turns the cached objects into a [`ClusterStatus`]: replica
//! counts, the Deployment's `Progressing` and `Available` conditions, and
//! each pod's readiness with the container state that explains it
//! (`CrashLoopBackOff`, `ImagePullBackOff`, `OOMKilled`, restarts).

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::watch;

use super::autoscaler::autoscale_view;
use super::connect::Connection;
use super::error::error_chain;
use super::labels::{ObjectIdentity, LABEL_REVISION};

/// Waiting reasons that mean a container cannot start or keeps failing.
const FAILING_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Waiting reasons a rollout fails on at once, before the deadline: the
/// container ran and exited, or its configuration cannot work. Image pulls
/// are retried by the cluster, so they fail only at the deadline.
const FATAL_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// One condition of the Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// One pod and what its containers report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    pub name: String,
    /// The shipdeck revision the pod runs, from its label.
    pub revision: Option<u64>,
    pub ready: bool,
    pub phase: String,
    pub restarts: u32,
    /// The reason the pod is not ready or not well, in the cluster's words.
    pub problem: Option<String>,
    /// Whether the problem is one of [`FATAL_REASONS`].
    pub fatal: bool,
    pub started_at: Option<String>,
}

/// The cluster's report on one deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterStatus {
    /// Whether the Deployment exists.
    pub exists: bool,
    /// The shipdeck revision the Deployment was last applied with.
    pub revision: Option<u64>,
    pub generation: i64,
    pub observed_generation: i64,
    pub desired: u32,
    pub replicas: u32,
    pub updated: u32,
    pub ready: u32,
    pub available: u32,
    pub progressing: Option<Condition>,
    pub available_condition: Option<Condition>,
    pub pods: Vec<PodSummary>,
    /// The last error of the Deployment's or the pods' watch, until the
    /// watch recovers.
    pub watch_error: Option<String>,
    /// The deployment's HorizontalPodAutoscaler, when one exists.
    pub autoscaler: Option<crate::autoscale::AutoscaleView>,
    /// The last error of the autoscaler's watch. It is kept apart from
    /// `watch_error` because a deployment without autoscaling needs no
    /// permission on autoscalers.
    pub autoscaler_error: Option<String>,
}

fn count(value: Option<i32>) -> u32 {
    value.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn revision_label(labels: Option<&std::collections::BTreeMap<String, String>>) -> Option<u64> {
    labels?.get(LABEL_REVISION)?.parse().ok()
}

/// Builds the status from the cached Deployment (if any) and its pods.
pub fn summarize(deployment: Option<&Deployment>, pods: &[&Pod]) -> ClusterStatus {
    let mut pods: Vec<PodSummary> = pods.iter().map(|pod| summarize_pod(pod)).collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    let Some(deployment) = deployment else {
        return ClusterStatus {
            pods,
            ..ClusterStatus::default()
        };
    };
    let status = deployment.status.clone().unwrap_or_default();
    let condition = |kind: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind)
            .map(|c| Condition {
                status: c.status.clone(),
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            })
    };
    ClusterStatus {
        exists: true,
        revision: revision_label(deployment.metadata.labels.as_ref()),
        generation: deployment.metadata.generation.unwrap_or(0),
        observed_generation: status.observed_generation.unwrap_or(0),
        desired: count(deployment.spec.as_ref().and_then(|spec| spec.replicas)),
        replicas: count(status.replicas),
        updated: count(status.updated_replicas),
        ready: count(status.ready_replicas),
        available: count(status.available_replicas),
        progressing: condition("Progressing"),
        available_condition: condition("Available"),
        pods,
        watch_error: None,
        autoscaler: None,
        autoscaler_error: None,
    }
}

fn summarize_pod(pod: &Pod) -> PodSummary {
    let status = pod.status.clone().unwrap_or_default();
    let containers = status.container_statuses.clone().unwrap_or_default();
    let ready_condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready");
    let ready = ready_condition.is_some_and(|c| c.status == "True");
    let restarts = containers
        .iter()
        .map(|c| count(Some(c.restart_count)))
        .sum();

    let mut problem = containers.iter().find_map(container_problem);
    let fatal = containers
        .iter()
        .any(|c| waiting_reason(c).is_some_and(|reason| FATAL_REASONS.contains(&reason)));
    if problem.is_none() && !ready {
        problem = ready_condition
            .and_then(|c| c.message.clone())
            .or_else(|| status.phase.clone().map(|phase| format!("pod is {phase}")));
    }
    PodSummary {
        name: pod.metadata.name.clone().unwrap_or_default(),
        revision: revision_label(pod.metadata.labels.as_ref()),
        ready,
        phase: status.phase.clone().unwrap_or_default(),
        restarts,
        problem,
        fatal,
        started_at: status.start_time.as_ref().map(|time| time.0.to_string()),
    }
}

fn waiting_reason(container: &ContainerStatus) -> Option<&str> {
    container
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .as_deref()
}

/// Describes what is wrong with one container, if anything: a failing
/// waiting state, or a last run that was killed for memory or failed.
fn container_problem(container: &ContainerStatus) -> Option<String> {
    let last = container
        .last_state
        .as_ref()
        .and_then(|state| state.terminated.as_ref())
        .map(|terminated| {
            let reason = terminated
                .reason
                .clone()
                .unwrap_or_else(|| "Error".to_owned());
            format!(
                "last run ended: {reason} (exit code {})",
                terminated.exit_code
            )
        });
    let restarts = match container.restart_count {
        0 => String::new(),
        1 => ", restarted once".to_owned(),
        n => format!(", restarted {n} times"),
    };
    let waiting = container
        .state
        .as_ref()
        .and_then(|state| state.waiting.as_ref());
    if let Some(reason) = waiting
        .and_then(|w| w.reason.as_deref())
        .filter(|r| FAILING_REASONS.contains(r))
    {
        let message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
        let last = last.map(|text| format!("; {text}")).unwrap_or_default();
        return Some(format!(
            "container {}: {reason}: {message}{last}{restarts}",
            container.name
        ));
    }
    if let Some(terminated) = container
        .state
        .as_ref()
        .and_then(|state| state.terminated.as_ref())
    {
        let reason = terminated
            .reason
            .clone()
            .unwrap_or_else(|| "Error".to_owned());
        return Some(format!(
            "container {}: exited: {reason} (exit code {}){restarts}",
            container.name, terminated.exit_code
        ));
    }
    last.filter(|_| container.restart_count > 0)
        .map(|text| format!("container {}: {text}{restarts}", container.name))
}

impl ClusterStatus {
    /// Returns whether `revision` has rolled out completely: the controller saw the
    /// last change, every replica runs `revision` and is available, and no
    /// older pod is left. The pods' own watch must agree, because it can
    /// lag behind the Deployment's, and the status shown next is read from
    /// the pods.
    pub fn rollout_complete(&self, revision: u64) -> bool {
        self.exists
            && self.revision == Some(revision)
            && self.observed_generation >= self.generation
            && self.updated == self.desired
            && self.available >= self.desired
            && self.replicas == self.updated
            && self.pods.iter().all(|pod| pod.revision == Some(revision))
            && self.ready_pods(revision) >= self.desired
    }

    /// Returns the cluster's reason when the rollout of `revision` exceeded
    /// its progress deadline.
    pub fn deadline_exceeded(&self, revision: u64) -> Option<String> {
        let progressing = self.progressing.as_ref()?;
        let current =
            self.revision == Some(revision) && self.observed_generation >= self.generation;
        (current && progressing.reason == "ProgressDeadlineExceeded")
            .then(|| format!("{}: {}", progressing.reason, progressing.message))
    }

    /// Finds a pod of `revision` that keeps failing before it was ever ready.
    pub fn failing_pod(&self, revision: u64) -> Option<&PodSummary> {
        self.pods
            .iter()
            .find(|pod| pod.revision == Some(revision) && pod.fatal && !pod.ready)
    }

    /// Counts the pods that run `revision` and are ready.
    pub fn ready_pods(&self, revision: u64) -> u32 {
        let ready = self
            .pods
            .iter()
            .filter(|pod| pod.ready && pod.revision == Some(revision))
            .count();
        u32::try_from(ready).unwrap_or(u32::MAX)
    }
}

/// A running watch of one deployment's Deployment, pods and autoscaler.
/// Dropping it ends the watches.
pub struct StatusWatch {
    /// `None` until the Deployment's and the pods' watches have listed
    /// their objects once.
    pub updates: watch::Receiver<Option<ClusterStatus>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StatusWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The reflector caches a status is read from.
struct Caches {
    deployments: Store<Deployment>,
    pods: Store<Pod>,
    autoscalers: Store<HorizontalPodAutoscaler>,
    /// The name of the Deployment and of its autoscaler.
    name: String,
}

/// Starts watching the objects that carry `identity`'s labels.
pub fn watch_status(connection: &Connection, identity: &ObjectIdentity) -> StatusWatch {
    let (sender, updates) = watch::channel(None);
    let client = connection.client().clone();
    let namespace = connection.namespace.as_str();
    let apis = Apis {
        deployments: Api::namespaced(client.clone(), namespace),
        pods: Api::namespaced(client.clone(), namespace),
        autoscalers: Api::namespaced(client, namespace),
    };
    let config = watcher::Config::default().labels(&identity.selector_text());
    let name = identity.name.clone();
    let task = tokio::spawn(run_watch(apis, config, name, sender));
    StatusWatch { updates, task }
}

struct Apis {
    deployments: Api<Deployment>,
    pods: Api<Pod>,
    autoscalers: Api<HorizontalPodAutoscaler>,
}

/// Indexes of the watches in [`run_watch`]'s arrays.
const DEPLOYMENT: usize = 0;
const PODS: usize = 1;
const AUTOSCALER: usize = 2;

async fn run_watch(
    apis: Apis,
    config: watcher::Config,
    name: String,
    sender: watch::Sender<Option<ClusterStatus>>,
) {
    let (deployment_cache, deployment_writer) = reflector::store::<Deployment>();
    let (pod_cache, pod_writer) = reflector::store::<Pod>();
    let (autoscaler_cache, autoscaler_writer) = reflector::store::<HorizontalPodAutoscaler>();
    let mut deployment_events = reflector::reflector(
        deployment_writer,
        watcher(apis.deployments, config.clone()).default_backoff(),
    )
    .boxed();
    let mut pod_events = reflector::reflector(
        pod_writer,
        watcher(apis.pods, config.clone()).default_backoff(),
    )
    .boxed();
    let mut autoscaler_events = reflector::reflector(
        autoscaler_writer,
        watcher(apis.autoscalers, config).default_backoff(),
    )
    .boxed();
    let caches = Caches {
        deployments: deployment_cache,
        pods: pod_cache,
        autoscalers: autoscaler_cache,
        name,
    };
    let mut listed = [false; 3];
    let mut errors: [Option<String>; 3] = [None, None, None];

    loop {
        // Each side reports whether it finished a list, or its error.
        let outcome = tokio::select! {
            event = deployment_events.next() => event.map(|e| (DEPLOYMENT, e.map(|e| is_init_done(&e)))),
            event = pod_events.next() => event.map(|e| (PODS, e.map(|e| is_init_done(&e)))),
            event = autoscaler_events.next() => event.map(|e| (AUTOSCALER, e.map(|e| is_init_done(&e)))),
        };
        let Some((side, event)) = outcome else {
            return;
        };
        match event {
            Ok(init_done) => {
                listed[side] |= init_done;
                errors[side] = None;
            }
            Err(failure) => {
                let text = error_chain(&failure);
                tracing::warn!(deployment = %caches.name, error = %text, "watch failed; retrying");
                errors[side] = Some(text);
            }
        }
        // A watch that fails before it ever listed (a forbidden list) is
        // reported too, so the failure shows instead of no status at all.
        // The autoscaler's watch only adds to a status, so the status does
        // not wait for it.
        let failing = errors[DEPLOYMENT].is_some() || errors[PODS].is_some();
        if (listed[DEPLOYMENT] && listed[PODS]) || failing {
            let error = errors[..AUTOSCALER]
                .iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            let error = (!error.is_empty()).then_some(error);
            let mut status = current(&caches, error);
            status.autoscaler_error = errors[AUTOSCALER].clone();
            sender.send_if_modified(|slot| {
                let changed = slot.as_ref() != Some(&status);
                if changed {
                    *slot = Some(status);
                }
                changed
            });
        }
    }
}

fn is_init_done<K>(event: &watcher::Event<K>) -> bool {
    matches!(event, watcher::Event::InitDone)
}

fn current(caches: &Caches, error: Option<String>) -> ClusterStatus {
    let named = |meta: &kube::api::ObjectMeta| meta.name.as_deref() == Some(caches.name.as_str());
    let deployments = caches.deployments.state();
    let deployment = deployments.iter().find(|d| named(&d.metadata));
    let pods = caches.pods.state();
    let pod_refs: Vec<&Pod> = pods.iter().map(|pod| pod.as_ref()).collect();
    let mut status = summarize(deployment.map(|d| d.as_ref()), &pod_refs);
    status.watch_error = error;
    status.autoscaler = caches
        .autoscalers
        .state()
        .iter()
        .find(|hpa| named(&hpa.metadata))
        .and_then(|hpa| autoscale_view(hpa));
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, revision: u64, ready: bool, container: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {LABEL_REVISION: revision.to_string()}},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                    "message": "containers with unready status: [web]"}],
                "containerStatuses": [container],
            },
        }))
        .expect("a pod")
    }

    fn container(
        state: serde_json::Value,
        last: serde_json::Value,
        restarts: i32,
    ) -> serde_json::Value {
        json!({"name": "web", "image": "web:1", "imageID": "", "ready": false,
            "restartCount": restarts, "state": state, "lastState": last})
    }

    fn deployment(revision: u64, conditions: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 2, "labels": {LABEL_REVISION: revision.to_string()}},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                "readyReplicas": 1, "availableReplicas": 1, "conditions": conditions},
        }))
        .expect("a deployment")
    }

    #[test]
    fn crash_loop_is_fatal_problem() {
        let crashing = pod(
            "web-1",
            3,
            false,
            container(
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}),
                json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
                4,
            ),
        );
        let status = summarize(None, &[&crashing]);
        let summary = &status.pods[0];
        assert!(summary.fatal);
        assert_eq!(summary.restarts, 4);
        assert_eq!(
            summary.problem.as_deref(),
            Some("container web: CrashLoopBackOff: back-off 10s; last run ended: Error (exit code 1), restarted 4 times")
        );
        assert_eq!(
            status.failing_pod(3).map(|p| p.name.as_str()),
            Some("web-1")
        );
        assert!(status.failing_pod(2).is_none(), "another revision's pod");
    }

    #[test]
    fn image_pull_back_off_not_fatal() {
        let pulling = pod(
            "web-1",
            1,
            false,
            container(
                json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}),
                json!({}),
                0,
            ),
        );
        let status = summarize(None, &[&pulling]);
        assert!(
            !status.pods[0].fatal,
            "the cluster retries pulls until the deadline"
        );
        assert_eq!(
            status.pods[0].problem.as_deref(),
            Some("container web: ImagePullBackOff: Back-off pulling image")
        );
    }

    #[test]
    fn oom_killed_restart_reported() {
        let restarted = pod(
            "web-1",
            1,
            true,
            container(
                json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}),
                json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
                1,
            ),
        );
        let status = summarize(None, &[&restarted]);
        assert_eq!(
            status.pods[0].problem.as_deref(),
            Some("container web: last run ended: OOMKilled (exit code 137), restarted once")
        );
        assert!(!status.pods[0].fatal);
    }

    #[test]
    fn unready_pod_takes_condition_message() {
        let unready = pod(
            "web-1",
            1,
            false,
            container(json!({"running": {}}), json!({}), 0),
        );
        let status = summarize(None, &[&unready]);
        assert_eq!(
            status.pods[0].problem.as_deref(),
            Some("containers with unready status: [web]")
        );
    }

    #[test]
    fn rollout_complete_needs_current_revision() {
        let ready = pod(
            "web-1",
            5,
            true,
            container(json!({"running": {}}), json!({}), 0),
        );
        let conditions = json!([{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "done"}]);
        let status = summarize(Some(&deployment(5, conditions)), &[&ready]);
        assert!(status.rollout_complete(5));
        assert!(!status.rollout_complete(6));
        assert!(status.deadline_exceeded(5).is_none());
    }

    #[test]
    fn deadline_exceeded_carries_cluster_reason() {
        let conditions = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"web-abc\" has timed out progressing."}]);
        let status = summarize(Some(&deployment(5, conditions)), &[]);
        assert_eq!(
            status.deadline_exceeded(5).as_deref(),
            Some("ProgressDeadlineExceeded: ReplicaSet \"web-abc\" has timed out progressing.")
        );
        assert!(
            status.deadline_exceeded(4).is_none(),
            "the condition is about revision 5"
        );
    }
}
