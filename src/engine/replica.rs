//! One replica as the supervisor tracks it.

use std::time::Instant;

use time::OffsetDateTime;

use super::plan::SharedPlan;
use super::ports::PortLease;
use crate::backend::{AssignedPort, ExitReason, ReplicaId, StartedReplica};
use crate::model::{ReplicaState, ReplicaView};
use crate::probe::ProbeTarget;

/// Readiness checking of one replica.
#[derive(Debug)]
pub struct ReadinessProbe {
    pub target: ProbeTarget,
    /// An implicit probe (a port without a `healthCheck`) stops after the
    /// first success; an explicit one keeps running.
    pub implicit: bool,
    pub next_at: Instant,
    pub in_flight: bool,
    pub successes: u32,
    pub failures: u32,
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
    pub probe: Option<ReadinessProbe>,
    pub message: String,
    pub restarts: u32,
    pub last_exit: Option<ExitReason>,
    pub started_at: Option<OffsetDateTime>,
    pub restart_at: Option<Instant>,
    /// Set once a stop was requested; SIGKILL follows at this time.
    pub kill_at: Option<Instant>,
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

    pub fn view(&self) -> ReplicaView {
        ReplicaView {
            index: self.slot,
            revision: self.revision(),
            pid: self.handle.as_ref().and_then(|handle| handle.pid),
            port: self.ports.first().map(|port| port.port),
            state: self.state,
            ready: self.ready,
            restarts: self.restarts,
            last_exit: self.last_exit.map(|exit| exit.to_string()),
            started_at: self.started_at,
        }
    }
}
