//! The supervisor: one task per deployment that owns its replicas and
//! reconciles what runs with what should run.
//!
//! Everything that changes a deployment's replicas goes through this task's
//! command channel, so there is one writer of its runtime state and of its
//! stored status. Readers get a [`Snapshot`] through a watch channel.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};

use super::plan::RevisionPlan;
pub use super::plan::SharedPlan;
use super::recorder::Recorder;
use super::replica::{ReadinessProbe, Replica};
use crate::backend::process::HOME_MARKER_VAR;
use crate::backend::source::{fetch_and_build, BuildDirs};
use crate::backend::{Backend, ExitReason, ReplicaEvent, ReplicaId};
use crate::manifest::{RestartMode, StrategyKind};
use crate::model::{
    Deployment, DeploymentStatus, Health, HealthCheckView, ReplicaState, ReplicaView, Revision,
    RevisionStatus,
};
use crate::probe::{self, ProbeOutcome, ProbeTarget};

/// Delay before a crashed replica starts again.
// NOTE: a fixed delay; exponential backoff with a reset is not built yet.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Upper bound of reconcile steps in one pass.
const MAX_STEPS_PER_RECONCILE: usize = 8;

/// How often a replica with a port but no `healthCheck` is tried until it listens.
const IMPLICIT_PROBE_PERIOD: Duration = Duration::from_millis(100);

/// First wait after a refused probe of a replica that has never been ready.
/// A small server such as `shipdeck-sample` opens its port a few milliseconds
/// after it starts, so the wait starts short and doubles up to
/// `IMPLICIT_PROBE_PERIOD` for programs that take longer.
const FIRST_START_RETRY: Duration = Duration::from_millis(10);

/// How a rollout or another waited-for change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Failed(String),
}

pub type Waiter = oneshot::Sender<Outcome>;

pub enum Command {
    /// Roll out a revision that the engine already stored.
    Rollout {
        revision: Box<Revision>,
        desired: u32,
        ack: oneshot::Sender<()>,
        done: Option<Waiter>,
    },
    Scale {
        replicas: u32,
        ack: oneshot::Sender<()>,
        done: Option<Waiter>,
    },
    Undeploy {
        ack: oneshot::Sender<()>,
        done: Option<Waiter>,
    },
    /// Stop every replica but keep the stored state, for an agent stop.
    Shutdown { done: oneshot::Sender<()> },
}

/// What readers see of a deployment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub deployment: Deployment,
    pub replicas: Vec<ReplicaView>,
    pub checks: Vec<HealthCheckView>,
    pub health: Health,
    pub last_checked: Option<OffsetDateTime>,
    pub endpoints: Vec<String>,
}

enum Internal {
    Probe {
        id: ReplicaId,
        outcome: ProbeOutcome,
    },
    Built {
        revision: u64,
        result: Result<PathBuf, String>,
    },
}

/// A rollout in progress.
struct Rollout {
    plan: SharedPlan,
    /// Set when this rollout returns to the last healthy revision after a
    /// failed one; holds why the failed one failed.
    revert_reason: Option<String>,
    deadline: Instant,
    waiters: Vec<Waiter>,
}

enum Phase {
    /// Nothing should run (a first rollout failed, or nothing was rolled out).
    Idle,
    Building {
        revision: Box<Revision>,
        waiters: Vec<Waiter>,
    },
    Active,
    Stopping {
        undeploy: bool,
        waiters: Vec<Waiter>,
        shutdown: Option<oneshot::Sender<()>>,
    },
}

pub struct Supervisor<B: Backend> {
    backend: Arc<B>,
    recorder: Recorder,
    builds_dir: PathBuf,
    deployment: Deployment,
    phase: Phase,
    stable: Option<SharedPlan>,
    rollout: Option<Rollout>,
    replicas: Vec<Replica>,
    scale_waiters: Vec<Waiter>,
    replica_tx: mpsc::Sender<ReplicaEvent>,
    internal_tx: mpsc::Sender<Internal>,
    snapshot_tx: watch::Sender<Snapshot>,
    last_checked: Option<OffsetDateTime>,
}

/// The engine's side of a supervisor.
#[derive(Clone)]
pub struct SupervisorHandle {
    pub commands: mpsc::Sender<Command>,
    pub snapshot: watch::Receiver<Snapshot>,
}

impl<B: Backend> Supervisor<B> {
    /// Starts the supervisor task. `stable` is the revision that should be
    /// running (on agent start), `resume` one whose rollout was cut short.
    pub fn spawn(
        backend: Arc<B>,
        recorder: Recorder,
        builds_dir: PathBuf,
        deployment: Deployment,
        stable: Option<SharedPlan>,
        resume: Option<Revision>,
    ) -> SupervisorHandle {
        let (commands_tx, commands_rx) = mpsc::channel(32);
        let (replica_tx, replica_rx) = mpsc::channel(256);
        let (internal_tx, internal_rx) = mpsc::channel(256);
        let (snapshot_tx, snapshot_rx) = watch::channel(Snapshot {
            deployment: deployment.clone(),
            replicas: Vec::new(),
            checks: Vec::new(),
            health: Health::Unknown,
            last_checked: None,
            endpoints: Vec::new(),
        });

        let phase = if stable.is_some() {
            Phase::Active
        } else {
            Phase::Idle
        };
        let mut supervisor = Supervisor {
            backend,
            recorder,
            builds_dir,
            deployment,
            phase,
            stable,
            rollout: None,
            replicas: Vec::new(),
            scale_waiters: Vec::new(),
            replica_tx,
            internal_tx,
            snapshot_tx,
            last_checked: None,
        };
        tokio::spawn(async move {
            if let Some(revision) = resume {
                supervisor.begin_rollout(revision, None).await;
            }
            supervisor.run(commands_rx, replica_rx, internal_rx).await;
        });
        SupervisorHandle {
            commands: commands_tx,
            snapshot: snapshot_rx,
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut replica_events: mpsc::Receiver<ReplicaEvent>,
        mut internal: mpsc::Receiver<Internal>,
    ) {
        self.reconcile().await;
        loop {
            let wake = self.next_wake();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command).await,
                    None => break,
                },
                Some(event) = replica_events.recv() => self.handle_replica_event(event),
                Some(message) = internal.recv() => self.handle_internal(message).await,
                _ = sleep_until(wake) => {}
            }
            self.reconcile().await;
            if self.finished() {
                break;
            }
        }
        tracing::debug!(deployment = %self.deployment.key(), "supervisor ended");
    }

    /// Whether the task can end: stopped for an undeploy or a shutdown.
    fn finished(&self) -> bool {
        matches!(self.phase, Phase::Idle)
            && self.replicas.is_empty()
            && !self.deployment.wants_replicas()
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
                self.deployment.desired_replicas = replicas;
                self.save_deployment();
                self.scale_waiters.extend(done);
                let _ = ack.send(());
            }
            Command::Undeploy { ack, done } => {
                self.begin_stop(true, done.into_iter().collect(), None);
                self.set_status(DeploymentStatus::Undeploying, None);
                let _ = ack.send(());
            }
            Command::Shutdown { done } => self.begin_stop(false, Vec::new(), Some(done)),
        }
    }

    /// Takes a new revision: builds it first if it has a `source`.
    async fn begin_rollout(&mut self, revision: Revision, done: Option<Waiter>) {
        self.abandon_rollout(revision.revision);
        self.deployment.revision = revision.revision;
        self.deployment.version = revision.spec.version.clone();
        self.deployment.tags = revision.spec.tags.clone();

        if revision.spec.source.is_some() {
            self.start_build(revision, done);
            return;
        }
        let workdir = run_workdir(&revision, None);
        self.start_rollout(
            plan_of(&revision, workdir),
            None,
            done.into_iter().collect(),
        );
    }

    fn start_build(&mut self, revision: Revision, done: Option<Waiter>) {
        let dirs = BuildDirs::new(&self.builds_dir, &self.deployment.id, revision.revision);
        let spec = revision.spec.clone();
        let number = revision.revision;
        let internal = self.internal_tx.clone();
        // The builds directory is `builds/` under the agent's home.
        let marker = self
            .builds_dir
            .parent()
            .map(|home| home.display().to_string());
        self.recorder
            .revision_status(&self.deployment.id, number, RevisionStatus::Building, None);
        tokio::spawn(async move {
            let Some(source) = spec.source.as_ref() else {
                return;
            };
            let build = spec.build.as_ref().map(|build| build.command.as_slice());
            let mut env: Vec<(String, String)> = spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // The marker lets the next agent end a build that a crashed one
            // left running, as it does with replicas.
            env.extend(marker.map(|home| (HOME_MARKER_VAR.to_owned(), home)));
            let result = fetch_and_build(&dirs, source, build, &env)
                .await
                .map_err(|error| error.to_string());
            let _ = internal
                .send(Internal::Built {
                    revision: number,
                    result,
                })
                .await;
        });
        self.phase = Phase::Building {
            revision: Box::new(revision),
            waiters: done.into_iter().collect(),
        };
        self.set_status(DeploymentStatus::Building, None);
    }

    fn start_rollout(
        &mut self,
        plan: SharedPlan,
        revert_reason: Option<String>,
        waiters: Vec<Waiter>,
    ) {
        let deadline = Instant::now() + progress_deadline(&plan);
        if revert_reason.is_none() {
            self.recorder.revision_status(
                &self.deployment.id,
                plan.revision,
                RevisionStatus::Deploying,
                None,
            );
        }
        self.rollout = Some(Rollout {
            plan,
            revert_reason,
            deadline,
            waiters,
        });
        self.phase = Phase::Active;
        self.set_status(DeploymentStatus::Deploying, None);
    }

    /// Drops a rollout in progress because a newer revision replaces it.
    fn abandon_rollout(&mut self, newer: u64) {
        let reason = format!("replaced by revision {newer} before it became ready");
        if let Some(rollout) = self.rollout.take() {
            if rollout.revert_reason.is_none() {
                self.recorder.revision_status(
                    &self.deployment.id,
                    rollout.plan.revision,
                    RevisionStatus::Failed,
                    Some(&reason),
                );
            }
            notify(rollout.waiters, Outcome::Failed(reason.clone()));
        }
        if let Phase::Building { revision, waiters } =
            std::mem::replace(&mut self.phase, Phase::Idle)
        {
            self.recorder.revision_status(
                &self.deployment.id,
                revision.revision,
                RevisionStatus::Failed,
                Some(&reason),
            );
            notify(waiters, Outcome::Failed(reason));
        }
        self.phase = if self.stable.is_some() {
            Phase::Active
        } else {
            Phase::Idle
        };
    }

    fn begin_stop(
        &mut self,
        undeploy: bool,
        waiters: Vec<Waiter>,
        shutdown: Option<oneshot::Sender<()>>,
    ) {
        let reason = if undeploy {
            "undeployed"
        } else {
            "agent stopped"
        };
        if let Some(rollout) = self.rollout.take() {
            notify(
                rollout.waiters,
                Outcome::Failed(format!("rollout cut short: {reason}")),
            );
        }
        if let Phase::Building { waiters, .. } = std::mem::replace(&mut self.phase, Phase::Idle) {
            notify(
                waiters,
                Outcome::Failed(format!("build cut short: {reason}")),
            );
        }
        if undeploy {
            self.stable = None;
        }
        self.phase = Phase::Stopping {
            undeploy,
            waiters,
            shutdown,
        };
        let indices: Vec<usize> = (0..self.replicas.len()).collect();
        for index in indices {
            self.stop_replica(index);
        }
        self.replicas.retain(|replica| replica.is_stopping());
    }

    async fn handle_internal(&mut self, message: Internal) {
        match message {
            Internal::Probe { id, outcome } => self.apply_probe(id, outcome),
            Internal::Built { revision, result } => self.finish_build(revision, result),
        }
    }

    fn finish_build(&mut self, number: u64, result: Result<PathBuf, String>) {
        // A build that a newer revision or a stop replaced has no phase to end.
        if !matches!(self.phase, Phase::Building { .. }) {
            return;
        }
        let Phase::Building { revision, waiters } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        if revision.revision != number {
            self.phase = Phase::Building { revision, waiters };
            return;
        }
        match result {
            Ok(tree) => {
                let workdir = run_workdir(&revision, Some(&tree));
                self.start_rollout(plan_of(&revision, workdir), None, waiters);
            }
            Err(error) => {
                let reason = format!("build of revision {number} failed: {error}");
                self.recorder.revision_status(
                    &self.deployment.id,
                    number,
                    RevisionStatus::Failed,
                    Some(&reason),
                );
                self.recorder
                    .agent_event(&self.deployment, "build", false, &reason);
                self.after_failed_rollout(reason, waiters);
            }
        }
    }

    /// Shared end of a failed build or rollout: back to the last healthy
    /// revision if there is one, else stop.
    fn after_failed_rollout(&mut self, reason: String, waiters: Vec<Waiter>) {
        match self.stable.clone() {
            Some(stable)
                if stable.revision != self.deployment.revision || self.rollout_was_running() =>
            {
                let message = format!("{reason}; reverting to revision {}", stable.revision);
                self.recorder
                    .agent_event(&self.deployment, "revert", true, &message);
                self.deployment.revision = stable.revision;
                self.deployment.version = stable.spec.version.clone();
                self.start_rollout(stable, Some(reason), waiters);
            }
            _ => {
                notify(waiters, Outcome::Failed(reason.clone()));
                let indices: Vec<usize> = (0..self.replicas.len()).collect();
                for index in indices {
                    self.stop_replica(index);
                }
                self.replicas.retain(|replica| replica.is_stopping());
                self.stable = None;
                self.phase = Phase::Idle;
                self.set_status(DeploymentStatus::Failed, Some(reason));
            }
        }
    }

    fn rollout_was_running(&self) -> bool {
        true
    }

    fn handle_replica_event(&mut self, event: ReplicaEvent) {
        let ReplicaEvent::Exited { id, reason } = event;
        let Some(index) = self.replicas.iter().position(|r| r.id() == Some(id)) else {
            return;
        };
        if self.replicas[index].is_stopping() {
            self.replicas.remove(index);
            return;
        }

        let restart = {
            let replica = &mut self.replicas[index];
            replica.state = if reason.success() {
                ReplicaState::Exited
            } else {
                ReplicaState::Failed
            };
            replica.ready = false;
            replica.probe = None;
            replica.last_exit = Some(reason);
            replica.message = format!("{reason}");
            restart_allowed(replica.plan.spec.restart_policy.policy, reason)
        };
        let replica = &mut self.replicas[index];
        if restart {
            replica.restart_at = Some(Instant::now() + RESTART_DELAY);
            replica.message = format!("{reason}; restarting in {} s", RESTART_DELAY.as_secs());
        }
        tracing::info!(
            deployment = %self.deployment.key(),
            replica = replica.slot,
            revision = replica.revision(),
            %reason,
            "replica ended"
        );
    }

    fn apply_probe(&mut self, id: ReplicaId, outcome: ProbeOutcome) {
        self.last_checked = Some(OffsetDateTime::now_utc());
        let Some(replica) = self.replicas.iter_mut().find(|r| r.id() == Some(id)) else {
            return;
        };
        if !replica.is_live() {
            return;
        }
        let Some(probe) = replica.probe.as_mut() else {
            return;
        };
        probe.in_flight = false;
        replica.message = outcome.message.clone();

        let check = replica.plan.spec.health_check.as_ref();
        let success_threshold = check.map_or(1, |c| c.success_threshold.max(1));
        let failure_threshold = check.map_or(1, |c| c.failure_threshold.max(1));
        let period = match check {
            Some(check) if !probe.implicit => {
                Duration::from_secs(u64::from(check.period_seconds.max(1)))
            }
            _ => IMPLICIT_PROBE_PERIOD,
        };
        // Until a replica first passes, a refused connection only means it
        // has not opened its port yet: look again soon rather than a whole
        // period later, so a rollout is not held up by the probe schedule.
        let starting = outcome.refused && !replica.was_ready;
        probe.next_at = Instant::now()
            + if starting {
                first_start_retry_delay(probe.failures)
            } else {
                period
            };

        if outcome.success {
            probe.failures = 0;
            probe.successes += 1;
            if probe.successes >= success_threshold {
                replica.ready = true;
                replica.was_ready = true;
                replica.state = ReplicaState::Ready;
                if probe.implicit {
                    replica.probe = None;
                }
            }
        } else {
            probe.successes = 0;
            probe.failures += 1;
            if probe.failures >= failure_threshold && replica.ready {
                replica.ready = false;
                replica.state = ReplicaState::Running;
            }
        }
    }

    /// Brings what runs closer to what should run, as far as it can without
    /// waiting, then publishes the result.
    async fn reconcile(&mut self) {
        self.fire_timers();
        // One step can enable the next (a failed rollout turns into a
        // revert, a finished rollout into steady supervision), so step
        // until nothing changes; the bound only guards against a bug.
        for _ in 0..MAX_STEPS_PER_RECONCILE {
            let before = self.progress_marker();
            if matches!(self.phase, Phase::Active) {
                self.scale_down();
                if self.rollout.is_some() {
                    self.step_rollout().await;
                } else {
                    self.keep_stable_running().await;
                }
            }
            self.finish_stop();
            if self.progress_marker() == before {
                break;
            }
        }
        self.start_due_probes();
        self.refresh_status();
        self.settle_scale_waiters();
        self.publish();
    }

    /// A cheap summary of the state that steps change, to tell whether a
    /// step did anything.
    fn progress_marker(&self) -> (usize, Option<u64>, usize, bool) {
        let states = self
            .replicas
            .iter()
            .map(|r| r.state as usize + r.slot as usize * 8)
            .sum();
        let rollout = self.rollout.as_ref().map(|r| r.plan.revision);
        (self.replicas.len(), rollout, states, self.stable.is_some())
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        for replica in &mut self.replicas {
            if let (Some(kill_at), Some(handle)) = (replica.kill_at, replica.handle.as_ref()) {
                if kill_at <= now {
                    self.backend.kill(handle);
                    replica.kill_at = None;
                }
            }
        }
    }

    fn scale_down(&mut self) {
        let desired = self.deployment.desired_replicas;
        let extra: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.replicas[i].slot >= desired && !self.replicas[i].is_stopping())
            .collect();
        for index in extra {
            self.stop_replica(index);
        }
        self.replicas
            .retain(|replica| replica.is_stopping() || replica.slot < desired);
    }

    async fn keep_stable_running(&mut self) {
        let Some(stable) = self.stable.clone() else {
            return;
        };
        // Replicas of another revision left from an interrupted rollout go.
        let stray: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| {
                self.replicas[i].revision() != stable.revision && !self.replicas[i].is_stopping()
            })
            .collect();
        for index in stray {
            self.stop_replica(index);
        }
        self.replicas
            .retain(|r| r.is_stopping() || r.revision() == stable.revision);

        for slot in 0..self.deployment.desired_replicas {
            self.ensure_slot(slot, &stable).await;
        }
    }

    /// Starts the replica of `slot` if none is live and no restart is pending.
    async fn ensure_slot(&mut self, slot: u32, plan: &SharedPlan) -> bool {
        let now = Instant::now();
        let existing = self
            .replicas
            .iter()
            .position(|r| r.slot == slot && r.revision() == plan.revision && !r.is_stopping());
        let restarts = match existing {
            Some(index) if self.replicas[index].is_live() => return true,
            Some(index) => match self.replicas[index].restart_at {
                Some(at) if at <= now => {
                    let previous = self.replicas.remove(index);
                    Some((previous.restarts + 1, previous.last_exit))
                }
                _ => return false,
            },
            None => None,
        };
        if self.slot_port_busy(slot, plan) {
            return false;
        }
        match self.start_replica(slot, plan.clone()).await {
            Ok(index) => {
                if let Some((count, last_exit)) = restarts {
                    self.replicas[index].restarts = count;
                    self.replicas[index].last_exit = last_exit;
                }
                true
            }
            Err(error) => {
                self.record_start_failure(slot, plan, error, restarts);
                false
            }
        }
    }

    /// With fixed host ports a replica cannot start while another one of the
    /// same slot still holds them.
    fn slot_port_busy(&self, slot: u32, plan: &RevisionPlan) -> bool {
        plan.has_host_ports()
            && self
                .replicas
                .iter()
                .any(|r| r.slot == slot && (r.is_stopping() || r.is_live()))
    }

    async fn start_replica(
        &mut self,
        slot: u32,
        plan: SharedPlan,
    ) -> Result<usize, crate::backend::BackendError> {
        let (ports, leases) = plan.assign_ports(slot)?;
        let launch = plan.launch(
            &self.deployment.id,
            &self.deployment.key(),
            slot,
            ports.clone(),
        );
        let handle = self.backend.start(launch, self.replica_tx.clone()).await?;
        let probe = readiness_probe(&plan, &ports);
        let ready = probe.is_none();
        tracing::info!(
            deployment = %self.deployment.key(),
            replica = slot,
            revision = plan.revision,
            pid = ?handle.pid,
            "replica started"
        );
        self.replicas.push(Replica {
            slot,
            plan,
            handle: Some(handle),
            ports,
            leases,
            state: if ready {
                ReplicaState::Ready
            } else {
                ReplicaState::Starting
            },
            ready,
            was_ready: ready,
            probe,
            message: "started".to_owned(),
            restarts: 0,
            last_exit: None,
            started_at: Some(OffsetDateTime::now_utc()),
            restart_at: None,
            kill_at: None,
        });
        Ok(self.replicas.len() - 1)
    }

    /// Keeps a replica that could not start as a failed entry, so that
    /// status shows why and a restart is tried later.
    fn record_start_failure(
        &mut self,
        slot: u32,
        plan: &SharedPlan,
        error: crate::backend::BackendError,
        restarts: Option<(u32, Option<ExitReason>)>,
    ) {
        let message = error.to_string();
        tracing::warn!(deployment = %self.deployment.key(), replica = slot, %message, "replica failed to start");
        self.replicas.push(Replica {
            slot,
            plan: plan.clone(),
            handle: None,
            ports: Vec::new(),
            leases: Vec::new(),
            state: ReplicaState::Failed,
            ready: false,
            was_ready: false,
            probe: None,
            message,
            restarts: restarts.map_or(0, |(count, _)| count),
            last_exit: restarts.and_then(|(_, exit)| exit),
            started_at: None,
            restart_at: Some(Instant::now() + RESTART_DELAY),
            kill_at: None,
        });
    }

    async fn step_rollout(&mut self) {
        let Some(rollout) = self.rollout.as_ref() else {
            return;
        };
        let plan = rollout.plan.clone();

        if let Some(reason) = self.rollout_failure(&plan) {
            self.fail_rollout(reason);
            return;
        }
        let done = if self.stable.is_none() || plan.spec.strategy.kind == StrategyKind::Recreate {
            self.step_all_at_once(&plan).await
        } else {
            self.step_rolling(&plan).await
        };
        if done {
            self.complete_rollout();
        }
    }

    /// Why the rollout of `plan` has failed, if it has.
    fn rollout_failure(&self, plan: &SharedPlan) -> Option<String> {
        let failed = self.replicas.iter().find(|r| {
            r.revision() == plan.revision
                && matches!(r.state, ReplicaState::Exited | ReplicaState::Failed)
                && !r.was_ready
        });
        if let Some(replica) = failed {
            return Some(format!(
                "replica {} of revision {} {} before it became ready",
                replica.slot,
                plan.revision,
                match replica.last_exit {
                    Some(exit) => exit.to_string(),
                    None => format!("could not start: {}", replica.message),
                }
            ));
        }
        let deadline = self.rollout.as_ref().map(|r| r.deadline)?;
        if Instant::now() >= deadline {
            let waiting = self
                .replicas
                .iter()
                .find(|r| r.revision() == plan.revision && !r.ready)
                .map(|r| format!(" (replica {}: {})", r.slot, r.message))
                .unwrap_or_default();
            return Some(format!(
                "revision {} did not become ready within progressDeadlineSeconds={}{waiting}",
                plan.revision, plan.spec.strategy.progress_deadline_seconds
            ));
        }
        None
    }

    /// First rollout or `Recreate`: stop every other revision, then start
    /// all replicas at once.
    async fn step_all_at_once(&mut self, plan: &SharedPlan) -> bool {
        let others: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| {
                self.replicas[i].revision() != plan.revision && !self.replicas[i].is_stopping()
            })
            .collect();
        for index in others {
            self.stop_replica(index);
        }
        self.replicas
            .retain(|r| r.is_stopping() || r.revision() == plan.revision);
        if plan.has_host_ports() && self.replicas.iter().any(|r| r.is_stopping()) {
            return false;
        }

        let mut all_ready = true;
        for slot in 0..self.deployment.desired_replicas {
            self.ensure_slot(slot, plan).await;
            all_ready &= self.slot_ready(slot, plan.revision);
        }
        all_ready
    }

    /// `RollingUpdate`: one slot at a time, each new replica ready before the
    /// old one of its slot stops (or, with fixed host ports, right after).
    async fn step_rolling(&mut self, plan: &SharedPlan) -> bool {
        for slot in 0..self.deployment.desired_replicas {
            if self.slot_ready(slot, plan.revision) {
                self.stop_old_in_slot(slot, plan.revision);
                continue;
            }
            let has_new = self
                .replicas
                .iter()
                .any(|r| r.slot == slot && r.revision() == plan.revision && !r.is_stopping());
            if !has_new && plan.has_host_ports() {
                self.stop_old_in_slot(slot, plan.revision);
            }
            self.ensure_slot(slot, plan).await;
            self.keep_stable_in_later_slots(slot + 1).await;
            return false;
        }
        true
    }

    /// Starts the stable revision in empty slots from `first` on, which the
    /// rollout has not reached yet. They are empty when an agent resumes a
    /// rollout after a crash, and would otherwise serve nothing until the
    /// rollout gets to them.
    async fn keep_stable_in_later_slots(&mut self, first: u32) {
        let Some(stable) = self.stable.clone() else {
            return;
        };
        for slot in first..self.deployment.desired_replicas {
            let occupied = self.replicas.iter().any(|r| r.slot == slot);
            if !occupied {
                self.ensure_slot(slot, &stable).await;
            }
        }
    }

    fn slot_ready(&self, slot: u32, revision: u64) -> bool {
        self.replicas
            .iter()
            .any(|r| r.slot == slot && r.revision() == revision && r.ready && r.is_live())
    }

    fn stop_old_in_slot(&mut self, slot: u32, revision: u64) {
        let old: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| {
                let r = &self.replicas[i];
                r.slot == slot && r.revision() != revision && !r.is_stopping()
            })
            .collect();
        for index in old {
            self.stop_replica(index);
        }
        self.replicas
            .retain(|r| r.is_stopping() || r.slot != slot || r.revision() == revision);
    }

    fn fail_rollout(&mut self, reason: String) {
        let Some(rollout) = self.rollout.take() else {
            return;
        };
        tracing::warn!(deployment = %self.deployment.key(), %reason, "rollout failed");

        // Replicas of the failed revision that still run go away.
        let failed_revision = rollout.plan.revision;
        let failed: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| {
                self.replicas[i].revision() == failed_revision && !self.replicas[i].is_stopping()
            })
            .collect();
        for index in failed {
            self.stop_replica(index);
        }
        self.replicas
            .retain(|r| r.is_stopping() || r.revision() != failed_revision);

        if let Some(first_reason) = rollout.revert_reason {
            // The revert itself failed: keep supervising the last healthy
            // revision, which shows as degraded while it does not come up.
            let message = format!("{first_reason}; the revert failed too: {reason}");
            notify(rollout.waiters, Outcome::Failed(message.clone()));
            self.recorder
                .agent_event(&self.deployment, "revert", false, &message);
            self.set_status(DeploymentStatus::Degraded, Some(message));
            return;
        }
        self.recorder.revision_status(
            &self.deployment.id,
            failed_revision,
            RevisionStatus::Failed,
            Some(&reason),
        );
        self.recorder
            .agent_event(&self.deployment, "rollout", false, &reason);
        let has_other_stable = self
            .stable
            .as_ref()
            .is_some_and(|s| s.revision != failed_revision);
        if has_other_stable {
            self.after_failed_rollout(reason, rollout.waiters);
        } else {
            self.stable = None;
            self.after_failed_rollout(reason, rollout.waiters);
        }
    }

    fn complete_rollout(&mut self) {
        let Some(rollout) = self.rollout.take() else {
            return;
        };
        let plan = rollout.plan;
        let previous = self.stable.replace(plan.clone());

        if let Some(first_reason) = rollout.revert_reason {
            let message = format!("{first_reason}; reverted to revision {}", plan.revision);
            self.recorder
                .agent_event(&self.deployment, "revert", true, &message);
            notify(rollout.waiters, Outcome::Failed(message.clone()));
            self.deployment.status_reason = Some(message);
            self.set_status(
                DeploymentStatus::Deployed,
                self.deployment.status_reason.clone(),
            );
            return;
        }

        // After an undeploy nothing is stable any more, but the revision
        // that served last is still marked deployed in the history.
        let previous = previous
            .map(|p| p.revision)
            .or(self.deployment.last_healthy_revision);
        if let Some(previous) = previous.filter(|&p| p != plan.revision) {
            self.recorder.revision_status(
                &self.deployment.id,
                previous,
                RevisionStatus::Superseded,
                None,
            );
        }
        self.recorder.revision_status(
            &self.deployment.id,
            plan.revision,
            RevisionStatus::Deployed,
            None,
        );
        self.deployment.last_healthy_revision = Some(plan.revision);
        let message = format!(
            "revision {} is ready ({} of {} replicas)",
            plan.revision, self.deployment.desired_replicas, self.deployment.desired_replicas
        );
        self.recorder
            .agent_event(&self.deployment, "rollout", true, &message);
        notify(rollout.waiters, Outcome::Done(message));
        self.set_status(DeploymentStatus::Deployed, None);
    }

    fn stop_replica(&mut self, index: usize) {
        let replica = &mut self.replicas[index];
        if replica.is_stopping() {
            return;
        }
        let Some(handle) = replica.handle.as_ref().filter(|_| replica.is_live()) else {
            // Never started or already ended: nothing to signal. Marking it
            // stopping lets the callers' `retain` drop it.
            replica.state = ReplicaState::Stopping;
            replica.handle = None;
            return;
        };
        let spec = &replica.plan.spec;
        self.backend.request_stop(handle, spec.stop_signal);
        let grace = Duration::from_secs(u64::from(spec.termination_grace_period_seconds));
        replica.kill_at = Some(Instant::now() + grace);
        replica.state = ReplicaState::Stopping;
        replica.ready = false;
        replica.probe = None;
    }

    /// Ends a stop once every replica is gone.
    fn finish_stop(&mut self) {
        // Entries that were never started have no exit to wait for.
        self.replicas
            .retain(|r| !(r.is_stopping() && r.handle.is_none()));
        if !self.replicas.is_empty() || !matches!(self.phase, Phase::Stopping { .. }) {
            return;
        }
        let Phase::Stopping {
            undeploy,
            waiters,
            shutdown,
        } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        if undeploy {
            self.set_status(DeploymentStatus::Undeployed, None);
            self.recorder
                .agent_event(&self.deployment, "undeploy", true, "all replicas stopped");
            notify(waiters, Outcome::Done("all replicas stopped".to_owned()));
        } else {
            // Shutting down keeps the stored state: the next agent resumes it.
            self.stable = None;
            self.deployment.status = DeploymentStatus::Undeployed;
        }
        if let Some(shutdown) = shutdown {
            let _ = shutdown.send(());
        }
    }

    fn start_due_probes(&mut self) {
        let now = Instant::now();
        for replica in &mut self.replicas {
            let Some(id) = replica.id() else {
                continue;
            };
            let Some(probe) = replica.probe.as_mut() else {
                continue;
            };
            if probe.in_flight
                || probe.next_at > now
                || !matches!(
                    replica.state,
                    ReplicaState::Starting | ReplicaState::Running | ReplicaState::Ready
                )
            {
                continue;
            }
            probe.in_flight = true;
            let target = probe.target.clone();
            let timeout = replica
                .plan
                .spec
                .health_check
                .as_ref()
                .filter(|_| !probe.implicit)
                .map_or(Duration::from_secs(1), |c| {
                    Duration::from_secs(u64::from(c.timeout_seconds.max(1)))
                });
            let workdir = replica.plan.workdir.clone();
            let internal = self.internal_tx.clone();
            tokio::spawn(async move {
                let outcome = probe::run(&target, timeout, &workdir).await;
                let _ = internal.send(Internal::Probe { id, outcome }).await;
            });
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let replica_times = self.replicas.iter().flat_map(|r| {
            let probe = r.probe.as_ref().filter(|p| !p.in_flight).map(|p| p.next_at);
            [r.kill_at, r.restart_at, probe]
        });
        let deadline = self.rollout.as_ref().map(|r| r.deadline);
        replica_times.chain([deadline]).flatten().min()
    }

    /// Derives the status from the replicas while the deployment is steady.
    fn refresh_status(&mut self) {
        if !matches!(self.phase, Phase::Active) || self.rollout.is_some() {
            return;
        }
        let desired = self.deployment.desired_replicas;
        let ready = self.ready_count();
        if ready >= desired {
            let keep = self
                .deployment
                .status_reason
                .clone()
                .filter(|_| self.deployment.status == DeploymentStatus::Deployed);
            self.set_status(DeploymentStatus::Deployed, keep);
            return;
        }
        let unready: Vec<&Replica> = self
            .replicas
            .iter()
            .filter(|r| !r.ready && !r.is_stopping())
            .collect();
        // Replicas that are only starting (after a scale-up) are progress,
        // not trouble; one that failed or lost readiness degrades.
        let in_trouble = unready.iter().find(|r| !is_first_start(r));
        let (status, detail) = match in_trouble {
            Some(replica) => (DeploymentStatus::Degraded, replica),
            None => match unready.first() {
                Some(replica) => (DeploymentStatus::Deploying, replica),
                None => {
                    self.set_status(
                        DeploymentStatus::Degraded,
                        Some(format!("{ready} of {desired} replicas ready")),
                    );
                    return;
                }
            },
        };
        let reason = format!(
            "{ready} of {desired} replicas ready; replica {}: {}",
            detail.slot, detail.message
        );
        self.set_status(status, Some(reason));
    }

    fn ready_count(&self) -> u32 {
        let revision = self.deployment.revision;
        let count = self
            .replicas
            .iter()
            .filter(|r| r.ready && r.is_live() && r.revision() == revision)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    fn settle_scale_waiters(&mut self) {
        if self.scale_waiters.is_empty() || self.rollout.is_some() {
            return;
        }
        let desired = self.deployment.desired_replicas;
        let settled = self.ready_count() == desired
            && self
                .replicas
                .iter()
                .all(|r| r.slot < desired && !r.is_stopping());
        if settled {
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
            self.recorder
                .agent_event(&self.deployment, status.as_str(), true, &message);
        }
    }

    fn save_deployment(&mut self) {
        self.deployment.updated_at = OffsetDateTime::now_utc();
        self.recorder.save_deployment(&self.deployment);
    }

    fn publish(&self) {
        let replicas: Vec<ReplicaView> = {
            let mut views: Vec<ReplicaView> = self.replicas.iter().map(Replica::view).collect();
            views.sort_by_key(|view| (view.index, view.revision));
            views
        };
        let checks = self.checks();
        let desired = self.deployment.desired_replicas;
        let health = if desired == 0 || !self.deployment.wants_replicas() {
            Health::Unknown
        } else if self.ready_count() >= desired {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        let snapshot = Snapshot {
            deployment: self.deployment.clone(),
            replicas,
            checks,
            health,
            last_checked: self.last_checked,
            endpoints: self.endpoints(),
        };
        self.snapshot_tx.send_replace(snapshot);
    }

    fn checks(&self) -> Vec<HealthCheckView> {
        let mut replicas: Vec<&Replica> =
            self.replicas.iter().filter(|r| !r.is_stopping()).collect();
        replicas.sort_by_key(|r| (r.slot, r.revision()));
        replicas
            .into_iter()
            .map(|r| HealthCheckView {
                name: format!("replica-{} (revision {})", r.slot, r.revision()),
                status: if r.ready {
                    Health::Healthy
                } else {
                    Health::Unhealthy
                },
                message: r.message.clone(),
            })
            .collect()
    }

    fn endpoints(&self) -> Vec<String> {
        let mut live: Vec<&Replica> = self.replicas.iter().filter(|r| r.is_live()).collect();
        live.sort_by_key(|r| r.slot);
        let mut endpoints = Vec::new();
        for replica in live {
            for (assigned, port) in replica.ports.iter().zip(&replica.plan.spec.ports) {
                let scheme = match port.app_protocol.as_deref() {
                    Some(protocol) => protocol.to_owned(),
                    None if port.name.as_deref().is_some_and(|n| n.starts_with("http")) => {
                        "http".to_owned()
                    }
                    None => "tcp".to_owned(),
                };
                endpoints.push(format!("{scheme}://127.0.0.1:{}", assigned.port));
            }
        }
        endpoints
    }
}

fn readiness_probe(
    plan: &RevisionPlan,
    ports: &[crate::backend::AssignedPort],
) -> Option<ReadinessProbe> {
    let now = Instant::now();
    if let Some(target) = plan.readiness_target(ports) {
        let delay = plan
            .spec
            .health_check
            .as_ref()
            .map_or(0, |c| u64::from(c.initial_delay_seconds));
        return Some(ReadinessProbe {
            target,
            implicit: false,
            next_at: now + Duration::from_secs(delay),
            in_flight: false,
            successes: 0,
            failures: 0,
        });
    }
    let first = ports.first()?;
    Some(ReadinessProbe {
        target: ProbeTarget::Tcp { port: first.port },
        implicit: true,
        next_at: now,
        in_flight: false,
        successes: 0,
        failures: 0,
    })
}

/// Wait before probing again a replica that has never been ready and just
/// refused a probe, after `earlier_failures` failed ones: 10, 20, 40, 80 ms,
/// then 100 ms.
fn first_start_retry_delay(earlier_failures: u32) -> Duration {
    let doubled = FIRST_START_RETRY.saturating_mul(1 << earlier_failures.min(4));
    doubled.min(IMPLICIT_PROBE_PERIOD)
}

/// A replica on its first start: never ready, never restarted, still up.
fn is_first_start(replica: &Replica) -> bool {
    !replica.was_ready
        && replica.restarts == 0
        && matches!(
            replica.state,
            ReplicaState::Starting | ReplicaState::Running
        )
}

fn restart_allowed(mode: RestartMode, reason: ExitReason) -> bool {
    match mode {
        RestartMode::Always => true,
        RestartMode::OnFailure => !reason.success(),
        RestartMode::Never => false,
    }
}

fn progress_deadline(plan: &RevisionPlan) -> Duration {
    Duration::from_secs(u64::from(
        plan.spec.strategy.progress_deadline_seconds.max(1),
    ))
}

/// The directory replicas of `revision` start in.
fn run_workdir(revision: &Revision, tree: Option<&std::path::Path>) -> PathBuf {
    let workdir = revision
        .spec
        .run
        .as_ref()
        .and_then(|run| run.workdir.as_deref())
        .unwrap_or(".");
    match tree {
        Some(tree) => tree.join(workdir),
        None => PathBuf::from(workdir),
    }
}

fn plan_of(revision: &Revision, workdir: PathBuf) -> SharedPlan {
    Arc::new(RevisionPlan {
        revision: revision.revision,
        spec: revision.spec.clone(),
        workdir,
    })
}

pub fn plan_for_restart(revision: &Revision, builds_dir: &std::path::Path) -> SharedPlan {
    let tree = revision
        .spec
        .source
        .as_ref()
        .map(|_| BuildDirs::new(builds_dir, &revision.deployment_id, revision.revision).tree());
    plan_of(revision, run_workdir(revision, tree.as_deref()))
}

fn notify(waiters: Vec<Waiter>, outcome: Outcome) {
    for waiter in waiters {
        let _ = waiter.send(outcome.clone());
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_retry_doubles_to_period() {
        let delays: Vec<u64> = (0..7)
            .map(|failures| first_start_retry_delay(failures).as_millis() as u64)
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 100, 100, 100]);
        assert_eq!(first_start_retry_delay(u32::MAX), IMPLICIT_PROBE_PERIOD);
    }
}
