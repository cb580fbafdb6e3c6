//! The supervisor of a `backend: kubernetes` deployment.
//!
//! The cluster runs the replicas, so this task does not start or probe
//! anything. It applies each revision's objects and follows the Deployment
//! and its pods through the watches in [`crate::backend::kubernetes::status`].
//! What the cluster reports becomes the same statuses, health checks,
//! events and automatic reverts as on the other backends. A rollout that
//! exceeds its progress deadline, or whose pods crash before they are ever
//! ready, is reverted to the last healthy revision.
//!
//! It takes the same [`Command`]s and publishes the same [`Snapshot`] as
//! the process supervisor, so the engine and the API treat both alike.

mod autoscaling;

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use super::plan::RevisionPlan;
use super::recorder::{DeploymentOutcome, Recorder};
use super::supervisor::{Command, Outcome, SharedPlan, Snapshot, SupervisorHandle, Waiter};
use crate::backend::kubernetes::apply::{apply_objects, delete_objects, delete_older_secrets};
use crate::backend::kubernetes::events::{watch_events, ClusterEvent, EventWatch};
use crate::backend::kubernetes::labels::ObjectIdentity;
use crate::backend::kubernetes::logs::{follow_pods, PodLogs};
use crate::backend::kubernetes::metrics::PodMetricsSource;
use crate::backend::kubernetes::render::{render, ClusterObjects, RevisionInput};
use crate::backend::kubernetes::status::{watch_status, ClusterStatus, StatusWatch};
use crate::backend::kubernetes::{connect, ClusterTarget, Connection, KubeEnvironment};
use crate::config::{render_env, Vault};
use crate::logs::LogHub;
use crate::model::{
    Deployment, DeploymentStatus, Health, HealthCheckView, ReplicaState, ReplicaView, Revision,
    RevisionStatus,
};

/// How long to wait before connecting again after a failed connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(10);

/// Time past `progressDeadlineSeconds` after which a rollout that the
/// watches never showed complete or failed fails anyway, so that a watch
/// the cluster forbids cannot leave it deploying for ever.
const DEADLINE_GRACE: Duration = Duration::from_secs(30);

/// The services the supervisor shares with the engine.
pub struct KubeServices {
    pub secrets: Arc<Vault>,
    pub recorder: Recorder,
    /// The agent's home path, which labels every object this agent creates.
    pub home: String,
    pub environment: KubeEnvironment,
    pub logs: LogHub,
}

/// The cluster side of one deployment.
struct Cluster {
    connection: Connection,
    identity: ObjectIdentity,
    target: ClusterTarget,
    watch: StatusWatch,
    metrics: PodMetricsSource,
    /// The pods' log streams, which end when it is dropped.
    _logs: PodLogs,
    _events: EventWatch,
}

struct KubeRollout {
    plan: SharedPlan,
    /// Set when this rollout returns to the last healthy revision; the
    /// reason the newer one failed.
    revert_reason: Option<String>,
    waiters: Vec<Waiter>,
    /// When the supervisor gives up on hearing from the cluster.
    give_up_at: Instant,
}

struct KubeSupervisor {
    services: KubeServices,
    deployment: Deployment,
    cluster: Option<Cluster>,
    /// The revision that runs when no rollout is in progress.
    stable: Option<SharedPlan>,
    rollout: Option<KubeRollout>,
    scale_waiters: Vec<Waiter>,
    /// Waiters of an undeploy, until the cluster's objects are gone.
    undeploy_waiters: Option<Vec<Waiter>>,
    status: Option<ClusterStatus>,
    connect_error: Option<String>,
    snapshot_tx: watch::Sender<Snapshot>,
    /// The sender on which the event watch passes the cluster's events on.
    events_tx: mpsc::Sender<ClusterEvent>,
    finished: bool,
}

/// Starts the supervisor task. `stable` is the revision that should be
/// running (on agent start), `resume` a revision whose rollout was cut short.
pub fn spawn(
    services: KubeServices,
    deployment: Deployment,
    stable: Option<SharedPlan>,
    resume: Option<Revision>,
) -> SupervisorHandle {
    let (commands_tx, commands_rx) = mpsc::channel(32);
    let (events_tx, events_rx) = mpsc::channel(64);
    let (snapshot_tx, snapshot_rx) = watch::channel(Snapshot {
        deployment: deployment.clone(),
        replicas: Vec::new(),
        checks: Vec::new(),
        health: Health::Unknown,
        last_checked: None,
        endpoints: Vec::new(),
        scrape_targets: Vec::new(),
        endpoint_readers: Vec::new(),
        cluster_autoscaler: None,
        pod_metrics: None,
    });
    let supervisor = KubeSupervisor {
        services,
        deployment,
        cluster: None,
        stable,
        rollout: None,
        scale_waiters: Vec::new(),
        undeploy_waiters: None,
        status: None,
        connect_error: None,
        snapshot_tx,
        events_tx,
        finished: false,
    };
    tokio::spawn(supervisor.run(commands_rx, events_rx, resume));
    SupervisorHandle {
        commands: commands_tx,
        snapshot: snapshot_rx,
    }
}

fn notify(waiters: Vec<Waiter>, outcome: Outcome) {
    for waiter in waiters {
        let _ = waiter.send(outcome.clone());
    }
}

fn plan_of(revision: &Revision) -> SharedPlan {
    Arc::new(RevisionPlan {
        revision: revision.revision,
        spec: revision.spec.clone(),
        workdir: std::path::PathBuf::new(),
        image: None,
        equivalent: Vec::new(),
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Waits for the next status of a watch, or forever without one.
async fn next_status(
    updates: Option<&mut watch::Receiver<Option<ClusterStatus>>>,
) -> Option<ClusterStatus> {
    match updates {
        Some(updates) => match updates.changed().await {
            Ok(()) => updates.borrow_and_update().clone(),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

impl KubeSupervisor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut events: mpsc::Receiver<ClusterEvent>,
        resume: Option<Revision>,
    ) {
        if let Some(stable) = self.stable.clone() {
            self.ensure_cluster(&stable).await;
        }
        if let Some(revision) = resume {
            self.begin_rollout(revision, None).await;
        }
        self.reconcile().await;
        while !self.finished {
            let mut updates = self.cluster.as_ref().map(|c| c.watch.updates.clone());
            let retry = self.connect_error.is_some() && self.current_plan().is_some();
            let give_up_at = self.rollout.as_ref().map(|rollout| rollout.give_up_at);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command).await,
                    None => break,
                },
                Some(event) = events.recv() => self.record_cluster_event(&event),
                status = next_status(updates.as_mut()) => {
                    if status.is_some() {
                        self.status = status;
                    }
                }
                _ = sleep_until(give_up_at) => {}
                _ = tokio::time::sleep(RECONNECT_AFTER), if retry => {
                    if let Some(plan) = self.current_plan() {
                        self.ensure_cluster(&plan).await;
                    }
                }
            }
            self.reconcile().await;
        }
        tracing::debug!(deployment = %self.deployment.key(), "kubernetes supervisor ended");
    }

    fn current_plan(&self) -> Option<SharedPlan> {
        self.rollout
            .as_ref()
            .map(|rollout| rollout.plan.clone())
            .or_else(|| self.stable.clone())
    }

    async fn handle_command(&mut self, command: Command) {
        match command {
            Command::Rollout {
                revision,
                desired,
                ack,
                done,
            } => {
                self.deployment.desired_replicas = desired;
                self.begin_rollout(*revision, done).await;
                let _ = ack.send(());
            }
            Command::Scale {
                replicas,
                ack,
                done,
            } => {
                self.scale(replicas, done).await;
                let _ = ack.send(());
            }
            Command::Undeploy { ack, done } => {
                self.begin_undeploy(done).await;
                let _ = ack.send(());
            }
            // The engine rejects these for Kubernetes before sending, so this
            // only keeps a waiter from seeing a dropped channel.
            Command::RestartReplica { ack, done, .. } => {
                if let Some(done) = done {
                    let _ = done.send(Outcome::Failed(
                        "pods have no index to restart one by".to_owned(),
                    ));
                }
                let _ = ack.send(());
            }
            Command::Shutdown { done } => {
                // The cluster keeps running the pods; the next agent
                // reads their state again.
                self.finished = true;
                let _ = done.send(());
            }
        }
    }

    /// Connects to the cluster that `plan` names and starts watching, if not
    /// connected yet. Returns the failure, which is also kept for the status.
    async fn ensure_cluster(&mut self, plan: &SharedPlan) -> Option<String> {
        let target = ClusterTarget::from(plan.spec.kubernetes.as_ref());
        if let Some(cluster) = &self.cluster {
            if cluster.target == target {
                return None;
            }
            return Some(format!(
                "kubernetes.context or kubernetes.namespace changed (from {:?} to {:?}), which would \
                 leave the running objects behind; undeploy first, then deploy again",
                cluster.target, target
            ));
        }
        match connect(&self.services.environment, &target).await {
            Ok(connection) => {
                let identity = ObjectIdentity::new(&self.deployment.key(), &self.services.home);
                let watch = watch_status(&connection, &identity);
                let events = watch_events(&connection, &identity, self.events_tx.clone());
                let logs = follow_pods(
                    &connection,
                    watch.updates.clone(),
                    self.services.logs.clone(),
                    self.deployment.id.clone(),
                );
                let metrics = PodMetricsSource::new(&connection, &identity);
                self.cluster = Some(Cluster {
                    connection,
                    identity,
                    metrics,
                    target,
                    watch,
                    _logs: logs,
                    _events: events,
                });
                self.connect_error = None;
                None
            }
            Err(error) => {
                let message = error.to_string();
                tracing::warn!(deployment = %self.deployment.key(), error = %message, "cannot connect to the cluster");
                self.connect_error = Some(message.clone());
                Some(message)
            }
        }
    }

    /// Renders `plan` with the current secret values and `replicas`, and
    /// applies it.
    async fn apply_plan(&mut self, plan: &SharedPlan, replicas: u32) -> Result<(), String> {
        let objects = self.render_plan(plan, replicas).await?;
        let Some(cluster) = self.cluster.as_ref() else {
            return Err("not connected to the cluster".to_owned());
        };
        apply_objects(&cluster.connection, &cluster.identity, &objects)
            .await
            .map_err(|error| error.to_string())
    }

    /// Connects to `plan`'s cluster if needed and renders `plan`'s objects
    /// with the current secret values and `replicas`.
    async fn render_plan(
        &mut self,
        plan: &SharedPlan,
        replicas: u32,
    ) -> Result<ClusterObjects, String> {
        if let Some(error) = self.ensure_cluster(plan).await {
            return Err(error);
        }
        let Some(cluster) = self.cluster.as_ref() else {
            return Err("not connected to the cluster".to_owned());
        };
        let env = render_env(&plan.spec.env, self.services.secrets.as_ref())
            .map_err(|error| error.to_string())?;
        let mut spec = plan.spec.clone();
        spec.replicas = replicas;
        let input = RevisionInput {
            identity: &cluster.identity,
            revision: plan.revision,
            spec: &spec,
            namespace: &cluster.connection.namespace,
            home: &self.services.home,
            env: &env.env,
        };
        render(&input).map_err(|error| error.to_string())
    }

    async fn begin_rollout(&mut self, revision: Revision, done: Option<Waiter>) {
        let plan = plan_of(&revision);
        if let Some(stable) = self.autoscaling_change_from(&plan) {
            self.change_autoscaling(stable, plan, done).await;
            return;
        }
        if let Some(previous) = self.rollout.take() {
            let reason = format!("replaced by revision {}", revision.revision);
            self.recorder().revision_status(
                &self.deployment.id,
                previous.plan.revision,
                RevisionStatus::Failed,
                Some(&reason),
            );
            notify(previous.waiters, Outcome::Failed(reason));
        }
        self.deployment.revision = revision.revision;
        self.deployment.version = revision.spec.version.clone();
        self.deployment.tags = revision.spec.tags.clone();
        self.start_rollout(plan, None, done.into_iter().collect())
            .await;
    }

    async fn start_rollout(
        &mut self,
        plan: SharedPlan,
        revert_reason: Option<String>,
        waiters: Vec<Waiter>,
    ) {
        let replicas = self.deployment.desired_replicas;
        if let Err(reason) = self.apply_plan(&plan, replicas).await {
            let reason = format!("applying revision {} failed: {reason}", plan.revision);
            self.rollout = Some(KubeRollout {
                plan,
                revert_reason,
                waiters,
                give_up_at: Instant::now(),
            });
            self.fail_rollout(reason).await;
            return;
        }
        self.recorder().revision_status(
            &self.deployment.id,
            plan.revision,
            RevisionStatus::Deploying,
            None,
        );
        let deadline = Duration::from_secs(u64::from(plan.spec.strategy.progress_deadline_seconds));
        self.rollout = Some(KubeRollout {
            plan,
            revert_reason,
            waiters,
            give_up_at: Instant::now() + deadline + DEADLINE_GRACE,
        });
        self.set_status(DeploymentStatus::Deploying, None);
    }

    /// Adds a cluster event to the timeline. Warnings count as errors.
    fn record_cluster_event(&self, event: &ClusterEvent) {
        let message = format!("{} {}: {}", event.reason, event.object, event.message);
        let action = format!("k8s-{}", event.reason.to_ascii_lowercase());
        self.recorder()
            .cluster_event(&self.deployment, &action, !event.is_warning(), &message);
    }

    fn recorder(&self) -> &Recorder {
        &self.services.recorder
    }

    /// Returns whether the revision that runs, or rolls out, has autoscaling on.
    fn autoscaled(&self) -> bool {
        self.current_plan()
            .is_some_and(|plan| is_autoscaled(&plan.spec))
    }

    async fn scale(&mut self, replicas: u32, done: Option<Waiter>) {
        let plan = self.current_plan();
        if self.autoscaled() {
            let message =
                "autoScaling is on, so the HorizontalPodAutoscaler sets the replica count; \
                           change autoScaling.minReplicas or maxReplicas instead"
                    .to_owned();
            notify(done.into_iter().collect(), Outcome::Failed(message));
            return;
        }
        self.deployment.desired_replicas = replicas;
        self.save_deployment();
        let Some(plan) = plan else {
            // Nothing runs (a failed first rollout): the next rollout uses the count.
            let message = format!("{replicas} replicas set; nothing runs until the next deploy");
            notify(done.into_iter().collect(), Outcome::Done(message));
            return;
        };
        match self.apply_plan(&plan, replicas).await {
            Ok(()) => self.scale_waiters.extend(done),
            Err(reason) => notify(
                done.into_iter().collect(),
                Outcome::Failed(format!("scale failed: {reason}")),
            ),
        }
    }

    async fn begin_undeploy(&mut self, done: Option<Waiter>) {
        if let Some(rollout) = self.rollout.take() {
            notify(
                rollout.waiters,
                Outcome::Failed("rollout cut short: undeployed".to_owned()),
            );
        }
        self.stable = None;
        self.set_status(DeploymentStatus::Undeploying, None);
        let waiters: Vec<Waiter> = done.into_iter().collect();
        let Some(cluster) = self.cluster.as_ref() else {
            self.undeploy_waiters = Some(waiters);
            self.finish_undeploy();
            return;
        };
        match delete_objects(&cluster.connection, &cluster.identity).await {
            Ok(_) => self.undeploy_waiters = Some(waiters),
            Err(error) => {
                let message = format!("undeploy failed: {error}");
                self.recorder()
                    .agent_event(&self.deployment, "undeploy", false, &message);
                self.set_status(DeploymentStatus::Degraded, Some(message.clone()));
                notify(waiters, Outcome::Failed(message));
            }
        }
    }

    /// Brings the stored status and the waiters up to date with the
    /// cluster, then publishes.
    async fn reconcile(&mut self) {
        if self.undeploy_waiters.is_some() {
            let gone = self
                .status
                .as_ref()
                .is_some_and(|s| s.watch_error.is_none() && !s.exists && s.pods.is_empty());
            if gone {
                self.finish_undeploy();
            }
        } else if self.rollout.is_some() {
            self.step_rollout().await;
        } else if self.stable.is_some() {
            self.refresh_status();
            self.settle_scale_waiters();
        }
        self.publish();
    }

    fn finish_undeploy(&mut self) {
        let waiters = self.undeploy_waiters.take().unwrap_or_default();
        self.cluster = None;
        self.status = None;
        self.set_status(DeploymentStatus::Undeployed, None);
        let message = "all objects deleted from the cluster";
        self.recorder()
            .agent_event(&self.deployment, "undeploy", true, message);
        self.recorder()
            .notify_outcome(&self.deployment, DeploymentOutcome::Undeployed, message);
        notify(waiters, Outcome::Done(message.to_owned()));
        self.finished = true;
    }

    async fn step_rollout(&mut self) {
        if let Some(reason) = self.unseen_rollout() {
            self.fail_rollout(reason).await;
            return;
        }
        let (Some(rollout), Some(status)) = (self.rollout.as_ref(), self.status.as_ref()) else {
            return;
        };
        let revision = rollout.plan.revision;
        // With autoscaling on, the Deployment's count is the autoscaler's.
        let desired_set = self.autoscaled() || status.desired == self.deployment.desired_replicas;
        if status.rollout_complete(revision) && desired_set {
            self.complete_rollout().await;
            return;
        }
        let failure = match (
            status.failing_pod(revision),
            status.deadline_exceeded(revision),
        ) {
            (Some(pod), _) => Some(format!(
                "pod {} of revision {revision} failed before it became ready: {}",
                pod.name,
                pod.problem.clone().unwrap_or_default()
            )),
            (None, Some(reason)) => Some(format!(
                "revision {revision} did not become ready: {reason}"
            )),
            (None, None) => None,
        };
        if let Some(reason) = failure {
            self.fail_rollout(reason).await;
        }
    }

    /// Returns why the rollout fails when the cluster did not show its end
    /// in time, with the watch or connection error if there is one.
    fn unseen_rollout(&self) -> Option<String> {
        let rollout = self.rollout.as_ref()?;
        if Instant::now() < rollout.give_up_at {
            return None;
        }
        let error = self
            .connect_error
            .clone()
            .or_else(|| {
                self.status
                    .as_ref()
                    .and_then(|status| status.watch_error.clone())
            })
            .map(|error| format!("; last error: {error}"))
            .unwrap_or_default();
        Some(format!(
            "revision {} did not finish rolling out within progressDeadlineSeconds={} and {} s more{error}",
            rollout.plan.revision,
            rollout.plan.spec.strategy.progress_deadline_seconds,
            DEADLINE_GRACE.as_secs()
        ))
    }

    async fn complete_rollout(&mut self) {
        let Some(rollout) = self.rollout.take() else {
            return;
        };
        let plan = rollout.plan;
        self.delete_older_secrets(plan.revision).await;
        let previous = self.stable.replace(plan.clone());
        match rollout.revert_reason {
            Some(first_reason) => self.finish_revert(&plan, &first_reason, rollout.waiters),
            None => {
                let desired = self.desired_now();
                let message = format!(
                    "revision {} is ready ({desired} of {desired} replicas)",
                    plan.revision
                );
                self.finish_success(&plan, previous, rollout.waiters, message);
            }
        }
    }

    /// Records that the last healthy revision runs again after `first_reason`.
    fn finish_revert(&mut self, plan: &SharedPlan, first_reason: &str, waiters: Vec<Waiter>) {
        let message = format!("{first_reason}; reverted to revision {}", plan.revision);
        self.recorder()
            .agent_event(&self.deployment, "revert", true, &message);
        self.recorder()
            .notify_outcome(&self.deployment, DeploymentOutcome::Reverted, &message);
        notify(waiters, Outcome::Failed(message.clone()));
        self.set_status(DeploymentStatus::Deployed, Some(message));
    }

    /// Records that `plan` rolled out and supersedes `previous`, with
    /// `message` in the timeline and for the waiters.
    fn finish_success(
        &mut self,
        plan: &SharedPlan,
        previous: Option<SharedPlan>,
        waiters: Vec<Waiter>,
        message: String,
    ) {
        let previous = previous
            .map(|p| p.revision)
            .or(self.deployment.last_healthy_revision);
        if let Some(previous) = previous.filter(|&p| p != plan.revision) {
            self.recorder().revision_status(
                &self.deployment.id,
                previous,
                RevisionStatus::Superseded,
                None,
            );
        }
        self.recorder().revision_status(
            &self.deployment.id,
            plan.revision,
            RevisionStatus::Deployed,
            None,
        );
        self.deployment.last_healthy_revision = Some(plan.revision);
        self.recorder()
            .agent_event(&self.deployment, "rollout", true, &message);
        self.recorder()
            .notify_outcome(&self.deployment, DeploymentOutcome::Succeeded, &message);
        notify(waiters, Outcome::Done(message));
        self.set_status(DeploymentStatus::Deployed, None);
    }

    /// Deletes the Secrets of revisions other than `keep`. A failure only
    /// leaves them behind until the next rollout or undeploy.
    async fn delete_older_secrets(&self, keep: u64) {
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        if let Err(error) = delete_older_secrets(&cluster.connection, &cluster.identity, keep).await
        {
            tracing::warn!(deployment = %self.deployment.key(), %error, "cannot delete older revisions' Secrets");
        }
    }

    async fn fail_rollout(&mut self, reason: String) {
        let Some(rollout) = self.rollout.take() else {
            return;
        };
        tracing::warn!(deployment = %self.deployment.key(), %reason, "rollout failed");
        if let Some(first_reason) = rollout.revert_reason {
            let message = format!("{first_reason}; the revert failed too: {reason}");
            notify(rollout.waiters, Outcome::Failed(message.clone()));
            self.recorder()
                .agent_event(&self.deployment, "revert", false, &message);
            self.recorder()
                .notify_outcome(&self.deployment, DeploymentOutcome::Failed, &message);
            self.set_status(DeploymentStatus::Degraded, Some(message));
            return;
        }
        let failed = rollout.plan.revision;
        self.recorder().revision_status(
            &self.deployment.id,
            failed,
            RevisionStatus::Failed,
            Some(&reason),
        );
        self.recorder()
            .agent_event(&self.deployment, "rollout", false, &reason);
        match self
            .stable
            .clone()
            .filter(|stable| stable.revision != failed)
        {
            Some(stable) => {
                let message = format!("{reason}; reverting to revision {}", stable.revision);
                self.recorder()
                    .agent_event(&self.deployment, "revert", true, &message);
                self.deployment.revision = stable.revision;
                self.deployment.version = stable.spec.version.clone();
                Box::pin(self.start_rollout(stable, Some(reason), rollout.waiters)).await;
            }
            None => self.fail_without_stable(reason, rollout.waiters).await,
        }
    }

    /// Ends a failed first rollout. Nothing healthy can take over, so the
    /// failing objects go, as the other backends stop failing replicas.
    async fn fail_without_stable(&mut self, reason: String, waiters: Vec<Waiter>) {
        if let Some(cluster) = self.cluster.as_ref() {
            if let Err(error) = delete_objects(&cluster.connection, &cluster.identity).await {
                tracing::warn!(deployment = %self.deployment.key(), %error, "cannot delete the failed revision's objects");
            }
        }
        notify(waiters, Outcome::Failed(reason.clone()));
        self.stable = None;
        self.recorder()
            .notify_outcome(&self.deployment, DeploymentOutcome::Failed, &reason);
        self.set_status(DeploymentStatus::Failed, Some(reason));
    }

    /// Returns the replica count the deployment should have now: with
    /// autoscaling on, the Deployment's own, because the
    /// HorizontalPodAutoscaler sets it; otherwise the count shipdeck set.
    fn desired_now(&self) -> u32 {
        match self.status.as_ref() {
            Some(status) if status.exists && self.autoscaled() => status.desired,
            _ => self.deployment.desired_replicas,
        }
    }

    /// Returns the revision label of the pods that run the current
    /// revision: its own, except after revisions that changed only
    /// autoscaling, which keep the pods of the revision before them (whose
    /// label the Deployment still carries).
    fn template_revision(&self) -> u64 {
        if self.rollout.is_some() {
            return self.deployment.revision;
        }
        self.status
            .as_ref()
            .filter(|status| status.exists)
            .and_then(|status| status.revision)
            .unwrap_or(self.deployment.revision)
    }

    /// Returns the revision a pod with revision label `label` runs, as
    /// clients see it: pods of [`Self::template_revision`] run the current
    /// revision.
    fn shown_revision(&self, label: Option<u64>) -> Option<u64> {
        if label == Some(self.template_revision()) {
            Some(self.deployment.revision)
        } else {
            label
        }
    }

    /// Derives the status from the cluster while no rollout runs.
    fn refresh_status(&mut self) {
        let desired = self.desired_now();
        let revision = self.template_revision();
        let (status, reason) = match (&self.status, &self.connect_error) {
            (_, Some(error)) => (
                DeploymentStatus::Degraded,
                Some(format!("cluster unreachable: {error}")),
            ),
            (None, None) => return,
            (Some(status), None) => {
                let ready = status.ready_pods(revision);
                if ready >= desired && status.exists {
                    let keep = self
                        .deployment
                        .status_reason
                        .clone()
                        .filter(|_| self.deployment.status == DeploymentStatus::Deployed);
                    (DeploymentStatus::Deployed, keep)
                } else {
                    let detail = status
                        .pods
                        .iter()
                        .find_map(|pod| {
                            pod.problem
                                .as_ref()
                                .map(|p| format!("; pod {}: {p}", pod.name))
                        })
                        .unwrap_or_default();
                    (
                        DeploymentStatus::Degraded,
                        Some(format!("{ready} of {desired} replicas ready{detail}")),
                    )
                }
            }
        };
        self.set_status(status, reason);
    }

    fn settle_scale_waiters(&mut self) {
        let Some(status) = self.status.as_ref() else {
            return;
        };
        let desired = self.deployment.desired_replicas;
        let settled = status.desired == desired
            && status.ready_pods(self.template_revision()) == desired
            && status.pods.len() == desired as usize;
        if settled && !self.scale_waiters.is_empty() {
            let message = format!("{desired} of {desired} replicas ready");
            notify(
                std::mem::take(&mut self.scale_waiters),
                Outcome::Done(message),
            );
        }
    }

    fn set_status(&mut self, status: DeploymentStatus, reason: Option<String>) {
        if self.deployment.status == status && self.deployment.status_reason == reason {
            return;
        }
        let previous = self.deployment.status;
        self.deployment.status = status;
        self.deployment.status_reason = reason.clone();
        self.save_deployment();
        let noteworthy = matches!(
            (previous, status),
            (DeploymentStatus::Deployed, DeploymentStatus::Degraded)
                | (DeploymentStatus::Degraded, DeploymentStatus::Deployed)
        );
        if noteworthy {
            let message = reason.unwrap_or_else(|| "all replicas ready".to_owned());
            self.recorder()
                .agent_event(&self.deployment, status.as_str(), true, &message);
        }
    }

    fn save_deployment(&mut self) {
        self.deployment.updated_at = OffsetDateTime::now_utc();
        self.services.recorder.save_deployment(&self.deployment);
    }

    fn publish(&self) {
        let desired = self.desired_now();
        let revision = self.template_revision();
        let status = self.status.as_ref();
        let ready = status.map_or(0, |s| s.ready_pods(revision));
        let health = if desired == 0 || !self.deployment.wants_replicas() || status.is_none() {
            Health::Unknown
        } else if ready >= desired {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        let snapshot = Snapshot {
            deployment: self.deployment.clone(),
            replicas: status
                .map(|status| self.replica_views(status))
                .unwrap_or_default(),
            checks: self.checks(),
            health,
            last_checked: status.map(|_| OffsetDateTime::now_utc()),
            endpoints: self.endpoints(),
            scrape_targets: Vec::new(),
            endpoint_readers: Vec::new(),
            cluster_autoscaler: status.and_then(|status| status.autoscaler.clone()),
            pod_metrics: self.cluster.as_ref().map(|cluster| cluster.metrics.clone()),
        };
        let changed = {
            let old = self.snapshot_tx.borrow();
            old.deployment != snapshot.deployment
                || old.replicas != snapshot.replicas
                || old.health != snapshot.health
                || old.endpoints != snapshot.endpoints
                || old.checks != snapshot.checks
                || old.pod_metrics.is_some() != snapshot.pod_metrics.is_some()
                || old.cluster_autoscaler != snapshot.cluster_autoscaler
        };
        if changed {
            self.snapshot_tx.send_replace(snapshot);
            self.services
                .recorder
                .announce_deployment(&self.deployment.id);
        }
    }

    /// One check per pod, with the container state that explains it, plus
    /// the Deployment's `Progressing` condition and any connection or
    /// watch failure.
    fn checks(&self) -> Vec<HealthCheckView> {
        let mut checks = Vec::new();
        if let Some(error) = &self.connect_error {
            checks.push(HealthCheckView {
                name: "cluster".to_owned(),
                status: Health::Unhealthy,
                message: error.clone(),
            });
        }
        let Some(status) = self.status.as_ref() else {
            return checks;
        };
        if let Some(error) = &status.watch_error {
            checks.push(HealthCheckView {
                name: "watch".to_owned(),
                status: Health::Unhealthy,
                message: error.clone(),
            });
        }
        if let Some(error) = status
            .autoscaler_error
            .as_ref()
            .filter(|_| self.autoscaled())
        {
            checks.push(HealthCheckView {
                name: "autoscaler watch".to_owned(),
                status: Health::Unhealthy,
                message: error.clone(),
            });
        }
        if let Some(progressing) = &status.progressing {
            checks.push(HealthCheckView {
                name: "deployment progressing".to_owned(),
                status: if progressing.status == "True" {
                    Health::Healthy
                } else {
                    Health::Unhealthy
                },
                message: format!("{}: {}", progressing.reason, progressing.message),
            });
        }
        for pod in &status.pods {
            let revision = self
                .shown_revision(pod.revision)
                .map(|r| format!(" (revision {r})"))
                .unwrap_or_default();
            checks.push(HealthCheckView {
                name: format!("pod {}{revision}", pod.name),
                status: if pod.ready {
                    Health::Healthy
                } else {
                    Health::Unhealthy
                },
                message: pod
                    .problem
                    .clone()
                    .unwrap_or_else(|| format!("{}, ready", pod.phase)),
            });
        }
        checks
    }

    /// The Service's address inside the cluster for each port.
    fn endpoints(&self) -> Vec<String> {
        let (Some(cluster), Some(plan)) = (self.cluster.as_ref(), self.current_plan()) else {
            return Vec::new();
        };
        plan.spec
            .ports
            .iter()
            .map(|port| {
                let scheme = port
                    .app_protocol
                    .clone()
                    .unwrap_or_else(|| "tcp".to_owned());
                format!(
                    "{scheme}://{}.{}.svc:{}",
                    cluster.identity.name,
                    cluster.connection.namespace,
                    port.host_port.unwrap_or(port.container_port)
                )
            })
            .collect()
    }

    fn replica_views(&self, status: &ClusterStatus) -> Vec<ReplicaView> {
        status
            .pods
            .iter()
            .enumerate()
            .map(|(index, pod)| ReplicaView {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                revision: self.shown_revision(pod.revision).unwrap_or(0),
                pid: None,
                port: None,
                state: match (pod.ready, pod.fatal, pod.phase.as_str()) {
                    (true, _, _) => ReplicaState::Ready,
                    (false, true, _) => ReplicaState::Failed,
                    (false, false, "Running") => ReplicaState::Running,
                    (false, false, "Failed" | "Succeeded") => ReplicaState::Exited,
                    _ => ReplicaState::Starting,
                },
                ready: pod.ready,
                restarts: pod.restarts,
                last_exit: pod.problem.clone(),
                started_at: pod.started_at.as_deref().and_then(|text| {
                    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
                }),
                container: None,
                container_health: None,
            })
            .collect()
    }
}

fn is_autoscaled(spec: &crate::manifest::Manifest) -> bool {
    spec.auto_scaling
        .as_ref()
        .is_some_and(|scaling| scaling.enabled)
}
