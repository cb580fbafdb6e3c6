//! One replica as the supervisor tracks it.

use std::time::Instant;

use time::OffsetDateTime;

use super::backoff::Backoff;
use super::plan::SharedPlan;
use super::ports::PortLease;
use crate::backend::{AssignedPort, ExitReason, ReplicaId, StartedReplica};
use crate::model::{ContainerHealth, ReplicaState, ReplicaView};
use crate::probe::ProbeTarget;

/// The schedule and counters of one probe of one replica.
#[derive(Debug)]
pub struct ProbeState {
    pub target: ProbeTarget,
    /// An implicit readiness probe (a port without a `healthCheck`) stops
    /// after the first success; an explicit one keeps running.
    pub implicit: bool,
    pub next_at: Instant,
    pub in_flight: bool,
    pub successes: u32,
    pub failures: u32,
}

impl ProbeState {
    pub fn new(target: ProbeTarget, implicit: bool, next_at: Instant) -> Self {
        Self {
            target,
            implicit,
            next_at,
            in_flight: false,
            successes: 0,
            failures: 0,
        }
    }
}

/// The probe of a replica that a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeRole {
    Readiness,
    Liveness,
}

#[derive(Debug)]
pub struct Replica {
    pub slot: u32,
    pub plan: SharedPlan,
    pub handle: Option<StartedReplica>,
    pub ports: Vec<AssignedPort>,
    /// Keeps the free ports picked for this replica from going to another.
    #[expect(dead_code, reason = "held only for its Drop, which returns the ports")]
    pub leases: Vec<PortLease>,
    pub state: ReplicaState,
    pub ready: bool,
    pub was_ready: bool,
    pub readiness: Option<ProbeState>,
    pub liveness: Option<ProbeState>,
    /// Last readiness probe message or exit, for `health` and `get`.
    pub message: String,
    /// Last liveness probe message, when the replica has a liveness probe.
    pub liveness_message: Option<String>,
    pub restarts: u32,
    pub backoff: Backoff,
    pub last_exit: Option<ExitReason>,
    pub last_exit_oom: bool,
    pub started_at: Option<OffsetDateTime>,
    pub started_instant: Option<Instant>,
    pub restart_at: Option<Instant>,
    /// For a replica with neither a port nor a `healthCheck`: when it
    /// counts as ready if it is still running.
    pub ready_at: Option<Instant>,
    /// When a requested stop sends the stop signal.
    pub signal_at: Option<Instant>,
    /// Set once the stop signal was sent; SIGKILL follows at this time.
    pub kill_at: Option<Instant>,
    /// The stop was requested by a failing liveness probe: the replica is
    /// restarted once it has ended, as after a crash.
    pub restart_after_stop: bool,
    /// The state of the container's own HEALTHCHECK, for a container whose
    /// image has one.
    pub container_health: Option<ContainerHealth>,
}

impl Replica {
    pub fn id(&self) -> Option<ReplicaId> {
        self.handle.as_ref().map(|handle| handle.id)
    }

    pub fn revision(&self) -> u64 {
        self.plan.revision
    }

    /// Running or on its way up, and not being stopped.
    pub fn is_live(&self) -> bool {
        matches!(
            self.state,
            ReplicaState::Starting | ReplicaState::Running | ReplicaState::Ready
        )
    }

    pub fn is_stopping(&self) -> bool {
        self.state == ReplicaState::Stopping
    }

    /// Returns whether the replica keeps its slot, which is true unless it is
    /// stopping for good. One that a failing liveness probe stops comes back
    /// in the same slot.
    pub fn holds_slot(&self) -> bool {
        !self.is_stopping() || self.restart_after_stop
    }

    /// Ended, and waiting for its restart (or for nothing, with `never`).
    pub fn has_ended(&self) -> bool {
        matches!(self.state, ReplicaState::Exited | ReplicaState::Failed)
    }

    pub fn view(&self) -> ReplicaView {
        ReplicaView {
            index: self.slot,
            revision: self.revision(),
            pid: self.handle.as_ref().and_then(|handle| handle.pid),
            port: self.ports.first().map(|port| port.port),
            state: self.state,
            ready: self.ready,
            restarts: self.restarts,
            last_exit: self
                .last_exit
                .map(|exit| describe_exit(exit, self.last_exit_oom)),
            started_at: self.started_at,
            container: self.handle.as_ref().and_then(|h| h.container.clone()),
            container_health: self.container_health,
        }
    }
}

/// Returns whether a replica is on its first start: never ready, never
/// restarted, still up.
pub fn is_first_start(replica: &Replica) -> bool {
    !replica.was_ready
        && replica.restarts == 0
        && matches!(
            replica.state,
            ReplicaState::Starting | ReplicaState::Running
        )
}

/// Describes an exit as operators read it, naming an out-of-memory kill as such.
pub fn describe_exit(reason: ExitReason, out_of_memory: bool) -> String {
    if out_of_memory {
        format!("{reason}: out of memory")
    } else {
        reason.to_string()
    }
}
