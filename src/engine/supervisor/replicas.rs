//! Starting, stopping and restarting replicas, and running their probes.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::{notify, Internal, Outcome, Phase, SharedPlan, Supervisor, ENDPOINT_CLOSE_GRACE};
use std::collections::BTreeMap;

use crate::backend::{
    AssignedPort, Backend, BackendError, ExitReason, ReplicaEvent, ReplicaId, StartedReplica,
};
use crate::engine::backoff::{random_unit, Backoff};
use crate::engine::plan::RevisionPlan;
use crate::engine::ports::PortLease;
use crate::engine::recorder::DeploymentOutcome;
use crate::engine::replica::{describe_exit, ProbeRole, ProbeState, Replica};
use crate::manifest::{Probe, RestartMode};
use crate::model::{DeploymentStatus, ReplicaState};
use crate::probe::{ProbeOutcome, ProbeTarget};

/// How often a replica with a port but no `healthCheck` is tried until it
/// listens, and the longest wait between tries of a refused probe.
const IMPLICIT_PROBE_PERIOD: Duration = Duration::from_millis(100);

/// First wait after a probe was refused during a replica's first start;
/// it doubles up to [`IMPLICIT_PROBE_PERIOD`].
const FIRST_START_RETRY: Duration = Duration::from_millis(10);

/// Pause between taking a replica out of its endpoints and signalling it.
const SIGNAL_DELAY: Duration = Duration::from_millis(200);

/// How long a replica with neither a port nor a `healthCheck` must run
/// before it counts as ready, so that a program that exits at once fails
/// its rollout instead of passing it.
const MIN_UPTIME: Duration = Duration::from_millis(100);

/// Crashes recorded as events one by one before only every power of two is.
const CRASH_EVENTS_IN_FULL: u32 = 3;

impl<B: Backend> Supervisor<B> {
    pub(super) fn count(&self, predicate: impl Fn(&Replica) -> bool) -> u32 {
        let count = self.replicas.iter().filter(|r| predicate(r)).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Stops every replica that matches and is not stopping already.
    pub(super) fn stop_where(&mut self, predicate: impl Fn(&Replica) -> bool) {
        let matching: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.replicas[i].holds_slot() && predicate(&self.replicas[i]))
            .collect();
        for index in matching {
            self.stop_replica(index);
        }
        self.drop_stopped_entries();
    }

    /// Removes entries marked as stopping that have no process to wait for.
    pub(super) fn drop_stopped_entries(&mut self) {
        self.replicas
            .retain(|r| !(r.is_stopping() && r.handle.is_none()));
    }

    pub(super) fn stop_replica(&mut self, index: usize) {
        let replica = &mut self.replicas[index];
        if replica.is_stopping() {
            // Stopping for a liveness restart already: now it stays down.
            replica.restart_after_stop = false;
            return;
        }
        replica.ready = false;
        replica.readiness = None;
        replica.liveness = None;
        replica.restart_at = None;
        let Some(handle) = replica.handle.as_ref().filter(|_| replica.is_live()) else {
            // Never started or already ended: nothing to signal.
            replica.state = ReplicaState::Stopping;
            replica.handle = None;
            return;
        };
        // Out of the stable endpoints first, so no new connection reaches a
        // replica that is shutting down. The signal follows a moment later:
        // a connection the endpoint opened just before may still sit in the
        // replica's accept queue, and a replica that closes its listener on
        // the signal would reset it.
        let id = handle.id;
        let in_endpoints = self.withdraw_from_endpoints(id.0);
        let replica = &mut self.replicas[index];
        let delay = if in_endpoints {
            SIGNAL_DELAY
        } else {
            Duration::ZERO
        };
        replica.signal_at = Some(Instant::now() + delay);
        replica.state = ReplicaState::Stopping;
        self.signal_due();
    }

    /// Sends the stop signal to replicas whose time has come, and starts
    /// their grace period.
    fn signal_due(&mut self) {
        let now = Instant::now();
        for replica in &mut self.replicas {
            let (Some(at), Some(handle)) = (replica.signal_at, replica.handle.as_ref()) else {
                continue;
            };
            if at > now {
                continue;
            }
            let spec = &replica.plan.spec;
            self.backend.request_stop(handle, spec.stop_signal);
            let grace = Duration::from_secs(u64::from(spec.termination_grace_period_seconds));
            replica.kill_at = Some(now + grace);
            replica.signal_at = None;
        }
    }

    pub(super) fn scale_down(&mut self) {
        let desired = self.deployment.desired_replicas;
        self.stop_where(|r| r.slot >= desired);
    }

    /// Starts again, with the replica's backoff, every ended replica whose
    /// restart time has come.
    pub(super) async fn restart_due(&mut self) {
        let now = Instant::now();
        let desired = self.deployment.desired_replicas;
        let wanted: Vec<u64> = self
            .stable
            .iter()
            .chain(self.rollout.as_ref().map(|r| &r.plan))
            .map(|plan| plan.revision)
            .collect();
        let due: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| {
                let r = &self.replicas[i];
                r.has_ended() && r.restart_at.is_some_and(|at| at <= now)
            })
            .collect();
        for index in due.into_iter().rev() {
            let previous = self.replicas.remove(index);
            if !wanted.contains(&previous.revision()) || previous.slot >= desired {
                continue;
            }
            self.start_or_record(previous.slot, previous.plan.clone(), Some(previous))
                .await;
        }
    }

    pub(super) async fn keep_stable_running(&mut self) {
        let Some(stable) = self.stable.clone() else {
            return;
        };
        // Replicas of another revision left from an interrupted rollout go.
        self.stop_where(|r| r.revision() != stable.revision);
        for slot in 0..self.deployment.desired_replicas {
            self.fill_slot(slot, &stable).await;
        }
    }

    /// Starts a replica of `plan` in `slot` unless one is there (running,
    /// starting, or ended and waiting for its restart).
    pub(super) async fn fill_slot(&mut self, slot: u32, plan: &SharedPlan) {
        let occupied = self
            .replicas
            .iter()
            .any(|r| r.slot == slot && r.revision() == plan.revision && r.holds_slot());
        if !occupied {
            self.start_or_record(slot, plan.clone(), None).await;
        }
    }

    /// Starts a replica; one that cannot start is kept as a failed entry so
    /// that status shows why and a restart is tried after its backoff.
    async fn start_or_record(&mut self, slot: u32, plan: SharedPlan, previous: Option<Replica>) {
        let mut replica = match self.start_replica(slot, plan.clone()).await {
            Ok(replica) => replica,
            Err(error) => self.failed_start(slot, plan, error),
        };
        if let Some(previous) = previous {
            replica.restarts = previous.restarts + 1;
            replica.backoff = previous.backoff;
            replica.last_exit = previous.last_exit;
            replica.last_exit_oom = previous.last_exit_oom;
            replica.was_ready |= previous.was_ready && replica.state == ReplicaState::Failed;
        }
        if replica.state == ReplicaState::Failed {
            let delay = replica.backoff.next_delay(Duration::ZERO, random_unit());
            replica.restart_at = Some(Instant::now() + delay);
        }
        self.replicas.push(replica);
    }

    async fn start_replica(
        &mut self,
        slot: u32,
        plan: SharedPlan,
    ) -> Result<Replica, BackendError> {
        let (ports, leases) = plan.assign_ports()?;
        let launch = plan.launch(
            &self.deployment.id,
            &self.deployment.key(),
            slot,
            ports.clone(),
            self.secrets.as_ref(),
        )?;
        // Exec probes run in the replica's environment, as in Kubernetes.
        let env = launch.env.clone();
        let handle = self.backend.start(launch, self.replica_tx.clone()).await?;
        tracing::info!(
            deployment = %self.deployment.key(),
            replica = slot,
            revision = plan.revision,
            pid = ?handle.pid,
            "replica started"
        );

        Ok(new_replica(slot, plan, handle, ports, leases, &env))
    }

    fn failed_start(&self, slot: u32, plan: SharedPlan, error: BackendError) -> Replica {
        let message = error.to_string();
        tracing::warn!(deployment = %self.deployment.key(), replica = slot, %message, "replica failed to start");
        Replica {
            slot,
            backoff: backoff_of(&plan),
            plan,
            handle: None,
            ports: Vec::new(),
            leases: Vec::new(),
            state: ReplicaState::Failed,
            ready: false,
            was_ready: false,
            readiness: None,
            liveness: None,
            message,
            liveness_message: None,
            restarts: 0,
            last_exit: None,
            last_exit_oom: false,
            started_at: None,
            started_instant: None,
            ready_at: None,
            signal_at: None,
            restart_at: None,
            kill_at: None,
            restart_after_stop: false,
            container_health: None,
        }
    }

    pub(super) fn handle_replica_event(&mut self, event: ReplicaEvent) {
        match event {
            ReplicaEvent::Exited {
                id,
                reason,
                out_of_memory,
            } => self.handle_exit(id, reason, out_of_memory),
            ReplicaEvent::OutOfMemory { id, kills } => self.record_oom_kill(id, kills),
            ReplicaEvent::ContainerHealth { id, health } => {
                if let Some(replica) = self.replicas.iter_mut().find(|r| r.id() == Some(id)) {
                    replica.container_health = Some(health);
                }
            }
        }
    }

    /// Records that the kernel killed a process of a replica that goes on.
    fn record_oom_kill(&self, id: ReplicaId, kills: u64) {
        let Some(replica) = self.replicas.iter().find(|r| r.id() == Some(id)) else {
            return;
        };
        let message = format!(
            "replica {} (revision {}): a process was killed by the kernel: out of memory \
             (memory limit reached; {kills} kills since the replica started); the replica goes on",
            replica.slot,
            replica.revision()
        );
        tracing::warn!(deployment = %self.deployment.key(), replica = replica.slot, kills, "out-of-memory kill in a running replica");
        self.recorder
            .agent_event(&self.deployment, "out-of-memory", false, &message);
    }

    fn handle_exit(&mut self, id: ReplicaId, reason: ExitReason, out_of_memory: bool) {
        let Some(index) = self.replicas.iter().position(|r| r.id() == Some(id)) else {
            return;
        };
        let replica = &mut self.replicas[index];
        if replica.is_stopping() && !replica.restart_after_stop {
            self.replicas.remove(index);
            return;
        }

        let exit = describe_exit(reason, out_of_memory);
        let cause = if replica.restart_after_stop {
            format!("{}; {exit}", replica.message)
        } else {
            exit
        };
        replica.state = if reason.success() && !out_of_memory {
            ReplicaState::Exited
        } else {
            ReplicaState::Failed
        };
        replica.ready = false;
        replica.readiness = None;
        replica.liveness = None;
        replica.kill_at = None;
        replica.signal_at = None;
        replica.ready_at = None;
        replica.handle = None;
        replica.last_exit = Some(reason);
        replica.last_exit_oom = out_of_memory;
        replica.message = cause.clone();

        let restart = replica.restart_after_stop
            || restart_allowed(
                replica.plan.spec.restart_policy.policy,
                reason,
                out_of_memory,
            );
        replica.restart_after_stop = false;
        if restart {
            let ran_for = replica
                .started_instant
                .map_or(Duration::ZERO, |started| started.elapsed());
            let delay = replica.backoff.next_delay(ran_for, random_unit());
            replica.restart_at = Some(Instant::now() + delay);
            let at = OffsetDateTime::now_utc() + delay;
            replica.message = format!(
                "{cause}; restart {} in {:.2} s (at {})",
                replica.restarts + 1,
                delay.as_secs_f64(),
                rfc3339(at)
            );
        }
        tracing::info!(
            deployment = %self.deployment.key(),
            replica = replica.slot,
            revision = replica.revision(),
            %reason,
            out_of_memory,
            "replica ended"
        );
        self.record_crash(index);
    }

    /// Writes an event for a replica that ended by itself. A crash loop
    /// writes the first few, then only every power of two, so that the
    /// history stays readable.
    fn record_crash(&self, index: usize) {
        let replica = &self.replicas[index];
        let count = replica.restarts + 1;
        if count > CRASH_EVENTS_IN_FULL && !count.is_power_of_two() {
            return;
        }
        let action = if replica.last_exit_oom {
            "out-of-memory"
        } else {
            "crash"
        };
        let message = format!(
            "replica {} (revision {}): {} (crash {count})",
            replica.slot,
            replica.revision(),
            replica.message
        );
        self.recorder
            .agent_event(&self.deployment, action, false, &message);
    }

    pub(super) fn apply_probe(&mut self, id: ReplicaId, role: ProbeRole, outcome: ProbeOutcome) {
        self.last_checked = Some(OffsetDateTime::now_utc());
        let Some(index) = self.replicas.iter().position(|r| r.id() == Some(id)) else {
            return;
        };
        if !self.replicas[index].is_live() {
            return;
        }
        match role {
            ProbeRole::Readiness => apply_readiness(&mut self.replicas[index], outcome),
            ProbeRole::Liveness => {
                if apply_liveness(&mut self.replicas[index], outcome) {
                    self.replicas[index].restart_after_stop = true;
                    self.stop_replica(index);
                }
            }
        }
    }

    pub(super) fn start_due_probes(&mut self) {
        let now = Instant::now();
        for replica in &mut self.replicas {
            let Some(id) = replica.id().filter(|_| replica.is_live()) else {
                continue;
            };
            let workdir = replica.plan.workdir.clone();
            let roles = [
                (
                    ProbeRole::Readiness,
                    replica.readiness.as_mut(),
                    replica.plan.spec.health_check.as_ref(),
                ),
                (
                    ProbeRole::Liveness,
                    replica.liveness.as_mut(),
                    replica.plan.spec.liveness_check.as_ref(),
                ),
            ];
            let Some(handle) = replica.handle.as_ref() else {
                continue;
            };
            for (role, probe, check) in roles {
                let Some(probe) = probe.filter(|p| !p.in_flight && p.next_at <= now) else {
                    continue;
                };
                probe.in_flight = true;
                let timeout = check
                    .filter(|_| !probe.implicit)
                    .map_or(Duration::from_secs(1), |c| {
                        Duration::from_secs(u64::from(c.timeout_seconds.max(1)))
                    });
                let attempt =
                    self.backend
                        .probe(handle, probe.target.clone(), timeout, workdir.clone());
                let internal = self.internal_tx.clone();
                tokio::spawn(async move {
                    let outcome = attempt.await;
                    let message = Internal::Probe { id, role, outcome };
                    let _ = internal.send(message).await;
                });
            }
        }
    }

    pub(super) fn fire_timers(&mut self) {
        self.signal_due();
        let now = Instant::now();
        for replica in &mut self.replicas {
            if replica.ready_at.is_some_and(|at| at <= now) && replica.is_live() {
                replica.ready_at = None;
                replica.ready = true;
                replica.was_ready = true;
                replica.state = ReplicaState::Ready;
                replica.message = format!("running for {} ms", MIN_UPTIME.as_millis());
            }
            if let (Some(kill_at), Some(handle)) = (replica.kill_at, replica.handle.as_ref()) {
                if kill_at <= now {
                    self.backend.kill(handle);
                    replica.kill_at = None;
                }
            }
        }
    }

    /// Ends a stop once every replica is gone.
    pub(super) fn finish_stop(&mut self) {
        self.drop_stopped_entries();
        if !self.replicas.is_empty() || !matches!(self.phase, Phase::Stopping { .. }) {
            return;
        }
        let Phase::Stopping {
            undeploy,
            waiters,
            shutdown,
            kept,
        } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        for (_, stable) in std::mem::take(&mut self.endpoints) {
            tokio::spawn(async move {
                stable.endpoint.close(ENDPOINT_CLOSE_GRACE).await;
            });
        }
        if undeploy {
            let message = match kept {
                Some(kept) => format!("all replicas stopped; {kept}"),
                None => "all replicas stopped".to_owned(),
            };
            self.set_status(DeploymentStatus::Undeployed, None);
            self.recorder
                .agent_event(&self.deployment, "undeploy", true, &message);
            self.recorder
                .notify_outcome(&self.deployment, DeploymentOutcome::Undeployed, &message);
            notify(waiters, Outcome::Done(message));
        }
        if let Some(shutdown) = shutdown {
            let _ = shutdown.send(());
        }
    }
}

/// Builds the entry of a replica that has just started, with its probes
/// scheduled from now.
pub(super) fn new_replica(
    slot: u32,
    plan: SharedPlan,
    handle: StartedReplica,
    ports: Vec<AssignedPort>,
    leases: Vec<PortLease>,
    env: &BTreeMap<String, String>,
) -> Replica {
    let now = Instant::now();
    let readiness = readiness_probe(&plan, &ports, env, now);
    let liveness = plan.liveness_target(&ports, env).map(|target| {
        let delay = initial_delay(plan.spec.liveness_check.as_ref());
        ProbeState::new(target, false, now + delay)
    });
    // With nothing to probe, a replica is ready once it has stayed up
    // for a moment.
    let ready_at = readiness.is_none().then(|| now + MIN_UPTIME);
    Replica {
        slot,
        backoff: backoff_of(&plan),
        plan,
        handle: Some(handle),
        ports,
        leases,
        state: ReplicaState::Starting,
        ready: false,
        was_ready: false,
        readiness,
        liveness,
        message: "started".to_owned(),
        liveness_message: None,
        restarts: 0,
        last_exit: None,
        last_exit_oom: false,
        started_at: Some(OffsetDateTime::now_utc()),
        started_instant: Some(now),
        ready_at,
        signal_at: None,
        restart_at: None,
        kill_at: None,
        restart_after_stop: false,
        container_health: None,
    }
}

/// Applies a readiness result with Kubernetes' thresholds.
fn apply_readiness(replica: &mut Replica, outcome: ProbeOutcome) {
    let check = replica.plan.spec.health_check.as_ref();
    let was_ready = replica.was_ready;
    let Some(probe) = replica.readiness.as_mut() else {
        return;
    };
    probe.in_flight = false;
    let success_threshold = check.map_or(1, |c| c.success_threshold.max(1));
    let failure_threshold = check.map_or(1, |c| c.failure_threshold.max(1));
    let period = match check {
        Some(check) if !probe.implicit => {
            Duration::from_secs(u64::from(check.period_seconds.max(1)))
        }
        _ => IMPLICIT_PROBE_PERIOD,
    };
    // Until a replica first passes, a refused connection only means it has
    // not opened its port yet: look again soon, sooner at first, rather
    // than a whole period later, so a rollout is not held up by the schedule.
    let starting = outcome.refused && !was_ready;
    probe.next_at = Instant::now()
        + if starting {
            first_start_retry(probe.failures)
        } else {
            period
        };

    replica.message = outcome.message;
    if outcome.success {
        probe.failures = 0;
        probe.successes += 1;
        if probe.successes >= success_threshold {
            replica.ready = true;
            replica.was_ready = true;
            replica.state = ReplicaState::Ready;
            if probe.implicit {
                replica.readiness = None;
            }
        }
        return;
    }
    probe.successes = 0;
    probe.failures += 1;
    if probe.failures >= failure_threshold && replica.ready {
        replica.ready = false;
        replica.state = ReplicaState::Running;
    }
}

/// Applies a liveness result; returns whether the replica must restart.
fn apply_liveness(replica: &mut Replica, outcome: ProbeOutcome) -> bool {
    let Some(check) = replica.plan.spec.liveness_check.as_ref() else {
        return false;
    };
    let Some(probe) = replica.liveness.as_mut() else {
        return false;
    };
    probe.in_flight = false;
    probe.next_at = Instant::now() + Duration::from_secs(u64::from(check.period_seconds.max(1)));
    replica.liveness_message = Some(outcome.message.clone());
    if outcome.success {
        probe.failures = 0;
        return false;
    }
    probe.failures += 1;
    if probe.failures < check.failure_threshold.max(1) {
        return false;
    }
    replica.message = format!(
        "liveness probe failed {} times in a row: {}; restarting",
        probe.failures, outcome.message
    );
    true
}

/// 10 ms, 20 ms, 40 ms ... up to the implicit probe period.
fn first_start_retry(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.min(8));
    FIRST_START_RETRY
        .saturating_mul(factor)
        .min(IMPLICIT_PROBE_PERIOD)
}

fn readiness_probe(
    plan: &RevisionPlan,
    ports: &[crate::backend::AssignedPort],
    env: &std::collections::BTreeMap<String, String>,
    now: Instant,
) -> Option<ProbeState> {
    if let Some(target) = plan.readiness_target(ports, env) {
        let delay = initial_delay(plan.spec.health_check.as_ref());
        return Some(ProbeState::new(target, false, now + delay));
    }
    let first = ports.first()?;
    Some(ProbeState::new(
        ProbeTarget::Tcp { port: first.port },
        true,
        now,
    ))
}

fn initial_delay(check: Option<&Probe>) -> Duration {
    Duration::from_secs(check.map_or(0, |c| u64::from(c.initial_delay_seconds)))
}

fn backoff_of(plan: &RevisionPlan) -> Backoff {
    let policy = &plan.spec.restart_policy;
    Backoff::new(policy.backoff_initial.as_std(), policy.backoff_max.as_std())
}

fn restart_allowed(mode: RestartMode, reason: ExitReason, out_of_memory: bool) -> bool {
    match mode {
        RestartMode::Always => true,
        RestartMode::OnFailure => !reason.success() || out_of_memory,
        RestartMode::Never => false,
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_retry_doubles_to_period() {
        assert_eq!(first_start_retry(0), Duration::from_millis(10));
        assert_eq!(first_start_retry(1), Duration::from_millis(20));
        assert_eq!(first_start_retry(5), IMPLICIT_PROBE_PERIOD);
        assert_eq!(first_start_retry(100), IMPLICIT_PROBE_PERIOD);
    }
}
