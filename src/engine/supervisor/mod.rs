//! The supervisor: one task per deployment that owns its replicas and its
//! stable endpoints, and reconciles what runs with what should run.
//!
//! Everything that changes a deployment's replicas goes through this task's
//! command channel, so there is one writer of its runtime state and of its
//! stored status. Readers get a [`Snapshot`] through a watch channel.

mod adopt;
mod platform;
mod replicas;
mod rollout;
mod status;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};

use super::plan::RevisionPlan;
pub use super::plan::SharedPlan;
use super::recorder::Recorder;
use super::replica::{ProbeRole, Replica};
use super::scrape::ScrapeTarget;
use crate::backend::source::BuildDirs;
use crate::backend::{Backend, PlatformState, ReplicaEvent, ReplicaId};
use crate::config::Vault;
use crate::endpoint::{Endpoint, EndpointStats, EndpointStatsReader};
use crate::logs::LogHub;
use crate::model::{Deployment, Health, HealthCheckView, ReplicaView, Revision};
use crate::probe::ProbeOutcome;

/// Upper bound of reconcile steps in one pass.
const MAX_STEPS_PER_RECONCILE: usize = 8;

/// How long open connections of a closed endpoint may go on.
const ENDPOINT_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The result of a rollout, or of another change a client waits for.
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
    /// Stop the replica in `slot` and start a fresh one of the same
    /// revision there; `done` resolves once every replica is ready again.
    RestartReplica {
        slot: u32,
        ack: oneshot::Sender<()>,
        done: Option<Waiter>,
    },
    /// Stop every replica but keep the stored state, for an agent stop.
    Shutdown { done: oneshot::Sender<()> },
}

/// The view of a deployment that readers get.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub deployment: Deployment,
    pub replicas: Vec<ReplicaView>,
    pub checks: Vec<HealthCheckView>,
    pub health: Health,
    pub last_checked: Option<OffsetDateTime>,
    pub endpoints: Vec<String>,
    /// Where to scrape the ready replicas, when the revision has `monitoring.scrape`.
    pub scrape_targets: Vec<ScrapeTarget>,
    /// Readers of the counters of the deployment's stable endpoints, one per open
    /// `hostPort`. They read live counters when called, so an old snapshot still
    /// returns current counts.
    pub endpoint_readers: Vec<EndpointStatsReader>,
    /// The cluster's HorizontalPodAutoscaler as last seen, for Kubernetes
    /// deployments with autoscaling on; shipdeck's own autoscaler keeps
    /// its state in the engine instead.
    pub cluster_autoscaler: Option<crate::autoscale::AutoscaleView>,
    /// The source of the pods' CPU and memory for the metrics collector, for
    /// a Kubernetes deployment connected to its cluster.
    pub pod_metrics: Option<crate::backend::kubernetes::metrics::PodMetricsSource>,
}

impl Snapshot {
    /// Reads the counters of every stable endpoint of the deployment now.
    pub fn endpoint_stats(&self) -> Vec<EndpointStats> {
        self.endpoint_readers
            .iter()
            .map(EndpointStatsReader::stats)
            .collect()
    }
}

enum Internal {
    Probe {
        id: ReplicaId,
        role: ProbeRole,
        outcome: ProbeOutcome,
    },
    Built {
        revision: u64,
        result: Result<BuiltTree, String>,
    },
}

/// The output of a finished build.
struct BuiltTree {
    tree: PathBuf,
    /// The image built from the tree, for a container backend.
    image: Option<String>,
}

/// A rollout in progress.
struct Rollout {
    plan: SharedPlan,
    /// Set when this rollout returns to the last healthy revision after a
    /// failed one; contains why the failed one failed.
    revert_reason: Option<String>,
    /// Reset whenever another new replica becomes ready, as Kubernetes
    /// resets its progress deadline on progress.
    deadline: Instant,
    ready_seen: u32,
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
        /// A description of what the undeploy leaves on the platform on
        /// purpose, for its outcome message.
        kept: Option<String>,
    },
}

/// A stable endpoint and the replicas it last balanced over.
struct StableEndpoint {
    endpoint: Endpoint,
    backends: Vec<(u64, SocketAddr)>,
}

pub struct Supervisor<B: Backend> {
    backend: Arc<B>,
    /// The vault from which replica launches read the current secret values.
    secrets: Arc<Vault>,
    recorder: Recorder,
    builds_dir: PathBuf,
    logs: LogHub,
    deployment: Deployment,
    phase: Phase,
    stable: Option<SharedPlan>,
    rollout: Option<Rollout>,
    replicas: Vec<Replica>,
    /// One per `hostPort`, listening for as long as a revision uses it.
    endpoints: BTreeMap<u16, StableEndpoint>,
    scale_waiters: Vec<Waiter>,
    replica_tx: mpsc::Sender<ReplicaEvent>,
    internal_tx: mpsc::Sender<Internal>,
    snapshot_tx: watch::Sender<Snapshot>,
    last_checked: Option<OffsetDateTime>,
    /// Set by an agent stop: the task ends once the replicas are gone,
    /// without changing the stored status.
    shutting_down: bool,
    /// Whether the backend reaches its platform, for a backend that has one.
    platform: Option<watch::Receiver<PlatformState>>,
    /// The reason the platform was unreachable at the last look, to record
    /// an event when that changes.
    platform_problem: Option<String>,
    /// Set when an agent resumes the deployment: the replicas an earlier
    /// agent left on the platform are adopted or removed before any starts.
    adoption_pending: bool,
}

/// The services every supervisor shares with the engine.
pub struct Services<B: Backend> {
    pub backend: Arc<B>,
    pub secrets: Arc<Vault>,
    pub recorder: Recorder,
    pub builds_dir: PathBuf,
    pub logs: LogHub,
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
        services: Services<B>,
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
            scrape_targets: Vec::new(),
            endpoint_readers: Vec::new(),
            cluster_autoscaler: None,
            pod_metrics: None,
        });

        let phase = if stable.is_some() {
            Phase::Active
        } else {
            Phase::Idle
        };
        let adoption_pending = stable.is_some() || resume.is_some();
        let Services {
            backend,
            secrets,
            recorder,
            builds_dir,
            logs,
        } = services;
        let mut supervisor = Supervisor {
            backend,
            secrets,
            recorder,
            builds_dir,
            logs,
            deployment,
            phase,
            stable,
            rollout: None,
            replicas: Vec::new(),
            endpoints: BTreeMap::new(),
            scale_waiters: Vec::new(),
            replica_tx,
            internal_tx,
            snapshot_tx,
            last_checked: None,
            shutting_down: false,
            platform: None,
            platform_problem: None,
            adoption_pending,
        };
        supervisor.platform = supervisor.backend.platform();
        tokio::spawn(async move {
            // The last healthy revision serves again first, so that a
            // resumed rollout replaces it step by step as any rollout does.
            if let Some(stable) = supervisor.stable.clone() {
                let retention = rollout::log_retention(&stable.spec);
                supervisor
                    .logs
                    .set_retention(&supervisor.deployment.id, retention);
                if let Err(reason) = supervisor.ensure_endpoints(&stable).await {
                    tracing::error!(deployment = %supervisor.deployment.key(), %reason, "cannot open the stable endpoints");
                }
            }
            match resume {
                // Nothing served before: the rollout starts at once, and
                // replicas of its revision that an earlier agent left are
                // adopted into it.
                Some(revision) if supervisor.stable.is_none() => {
                    supervisor.begin_rollout(revision, None).await;
                    supervisor.reconcile().await;
                }
                resume => {
                    supervisor.reconcile().await;
                    if let Some(revision) = resume {
                        supervisor.begin_rollout(revision, None).await;
                    }
                }
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
        let mut platform = self.platform.clone();
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
                () = platform::changed(&mut platform) => self.platform_changed(),
                _ = sleep_until(wake) => {}
            }
            self.reconcile().await;
            if self.finished() {
                break;
            }
        }
        tracing::debug!(deployment = %self.deployment.key(), "supervisor ended");
    }

    /// Returns whether the task can end: stopped for an undeploy or a shutdown.
    fn finished(&self) -> bool {
        matches!(self.phase, Phase::Idle)
            && self.replicas.is_empty()
            && (self.shutting_down || !self.deployment.wants_replicas())
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
                self.set_status(crate::model::DeploymentStatus::Undeploying, None);
                let _ = ack.send(());
            }
            Command::RestartReplica { slot, ack, done } => {
                self.restart_replica(slot, done);
                let _ = ack.send(());
            }
            Command::Shutdown { done } => {
                self.shutting_down = true;
                if self.backend.replicas_outlive_agent() {
                    self.leave_running(done);
                } else {
                    self.begin_stop(false, Vec::new(), Some(done));
                }
            }
        }
    }

    /// Stops the serving replica in `slot`. The next reconcile starts a
    /// fresh one there while the old one drains, so at most one replica's
    /// capacity is missing, as when a Kubernetes pod is deleted.
    fn restart_replica(&mut self, slot: u32, done: Option<Waiter>) {
        let busy = self.rollout.is_some() || !matches!(self.phase, Phase::Active);
        let index = self
            .replicas
            .iter()
            .position(|r| r.slot == slot && r.holds_slot() && !r.is_stopping());
        match (busy, index) {
            (false, Some(index)) => {
                tracing::info!(deployment = %self.deployment.key(), replica = slot, "restarting a replica");
                self.stop_replica(index);
                self.scale_waiters.extend(done);
            }
            (true, _) => notify(
                done.into_iter().collect(),
                Outcome::Failed(format!(
                    "replica {slot} was not restarted: a rollout or stop is in progress; try again once it has finished"
                )),
            ),
            (false, None) => notify(
                done.into_iter().collect(),
                Outcome::Failed(format!("replica {slot} is not running")),
            ),
        }
    }

    async fn handle_internal(&mut self, message: Internal) {
        match message {
            Internal::Probe { id, role, outcome } => self.apply_probe(id, role, outcome),
            Internal::Built { revision, result } => self.finish_build(revision, result).await,
        }
    }

    /// Brings what runs closer to what should run, as far as it can without
    /// waiting, then publishes the result.
    async fn reconcile(&mut self) {
        self.fire_timers();
        let problem = self.platform_problem();
        match &problem {
            None => self.adopt_left_replicas().await,
            Some(problem) => self.fail_stalled_rollout(problem).await,
        }
        let reachable = problem.is_none();
        // One step can enable the next (a failed rollout turns into a
        // revert, a finished rollout into steady supervision), so step
        // until nothing changes; the bound only guards against a bug.
        for _ in 0..MAX_STEPS_PER_RECONCILE {
            let before = self.progress_marker();
            // While the platform is unreachable nothing can start, and what
            // runs there cannot be seen: the replicas stay as they were
            // last seen until it responds again.
            if matches!(self.phase, Phase::Active) && reachable && !self.adoption_pending {
                self.scale_down();
                self.restart_due().await;
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
        if reachable {
            self.start_due_probes();
            self.refresh_status();
        }
        self.sync_endpoints();
        self.settle_scale_waiters();
        self.publish();
    }

    /// Summarises the state that steps change, to tell whether a step did
    /// anything.
    fn progress_marker(&self) -> (usize, Option<u64>, usize, bool) {
        let states = self
            .replicas
            .iter()
            .map(|r| r.state as usize + r.slot as usize * 8)
            .sum();
        let rollout = self.rollout.as_ref().map(|r| r.plan.revision);
        (self.replicas.len(), rollout, states, self.stable.is_some())
    }

    fn next_wake(&self) -> Option<Instant> {
        let probe_time = |probe: &Option<super::replica::ProbeState>| {
            probe.as_ref().filter(|p| !p.in_flight).map(|p| p.next_at)
        };
        let replica_times = self.replicas.iter().flat_map(|r| {
            [
                r.kill_at,
                r.signal_at,
                r.restart_at,
                r.ready_at,
                probe_time(&r.readiness),
                probe_time(&r.liveness),
            ]
        });
        let deadline = self.rollout.as_ref().map(|r| r.deadline);
        replica_times.chain([deadline]).flatten().min()
    }
}

fn progress_deadline(plan: &RevisionPlan) -> Duration {
    Duration::from_secs(u64::from(
        plan.spec.strategy.progress_deadline_seconds.max(1),
    ))
}

/// Returns the directory that replicas of `revision` start in.
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

fn plan_of(revision: &Revision, workdir: PathBuf, image: Option<String>) -> SharedPlan {
    Arc::new(RevisionPlan {
        revision: revision.revision,
        spec: revision.spec.clone(),
        workdir,
        image,
        equivalent: Vec::new(),
    })
}

/// Returns the plan of a revision that ran before the agent started: its
/// build tree and the image built from it, as the build left them.
pub fn plan_for_restart(revision: &Revision, builds_dir: &std::path::Path) -> SharedPlan {
    let dirs = revision
        .spec
        .source
        .as_ref()
        .map(|_| BuildDirs::new(builds_dir, &revision.deployment_id, revision.revision));
    let tree = dirs.as_ref().map(BuildDirs::tree);
    let image = dirs.as_ref().and_then(BuildDirs::image_id);
    plan_of(revision, run_workdir(revision, tree.as_deref()), image)
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
