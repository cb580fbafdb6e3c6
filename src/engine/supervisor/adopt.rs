//! Adopting the replicas that an earlier agent of this home left running on
//! the platform (containers outlive the agent), so that an agent restart
//! neither restarts nor duplicates them.
//!
//! A found replica is adopted when it runs, belongs to the revision that
//! should be serving (or, when none served yet, to the revision being rolled
//! out), and has a slot below the desired count that no other replica
//! takes. Every other one is removed, and the usual reconcile starts what
//! is missing.

use std::cmp::Reverse;
use std::time::Instant;

use super::replicas::new_replica;
use super::{Phase, SharedPlan, Supervisor};
use crate::backend::{AssignedPort, Backend, BackendError, FoundReplica};
use crate::engine::ports::PortLease;
use crate::engine::replica::Replica;
use crate::model::ReplicaState;

impl<B: Backend> Supervisor<B> {
    /// Adopts or removes what an earlier agent left, once per agent start.
    /// A failed listing is tried again at the next reconcile.
    pub(super) async fn adopt_left_replicas(&mut self) {
        // A build in progress yields the plan that replicas of its
        // revision are adopted under; the adoption waits for it.
        if !self.adoption_pending || matches!(self.phase, Phase::Building { .. }) {
            return;
        }
        let mut found = match self.backend.find_replicas(&self.deployment.id).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(deployment = %self.deployment.key(), %error, "cannot list the replicas an earlier agent left; trying again");
                return;
            }
        };
        self.adoption_pending = false;
        // Newest first, so that of two replicas in one slot the newest stays.
        found.sort_by_key(|candidate| Reverse(candidate.created));
        let (mut adopted, mut removed) = (0, 0);
        for candidate in found {
            let adoption = match self.adoptable_plan(&candidate) {
                Some((plan, serving)) => self.adopt_one(candidate.clone(), plan, serving).await,
                None => Err(BackendError::CannotAdopt {
                    name: candidate.name.clone(),
                    reason: "it does not belong to a current replica".to_owned(),
                }),
            };
            match adoption {
                Ok(replica) => {
                    self.replicas.push(replica);
                    adopted += 1;
                }
                Err(error) => {
                    tracing::info!(deployment = %self.deployment.key(), %error, "not adopted");
                    self.backend.discard(&candidate).await;
                    removed += 1;
                }
            }
        }
        self.record_adoption(adopted, removed);
    }

    fn record_adoption(&self, adopted: usize, removed: usize) {
        if adopted + removed == 0 {
            return;
        }
        let message = format!(
            "adopted {adopted} running replicas that an earlier agent started; \
             removed {removed} that no current replica claims"
        );
        tracing::info!(deployment = %self.deployment.key(), adopted, removed, "adopted replicas");
        self.recorder
            .agent_event(&self.deployment, "adopt", true, &message);
    }

    /// Returns the plan a found replica is adopted under, and whether it
    /// was serving, if it belongs to a current replica.
    fn adoptable_plan(&self, found: &FoundReplica) -> Option<(SharedPlan, bool)> {
        let rollout = self.rollout.as_ref().map(|rollout| &rollout.plan);
        let (plan, serving) = match (&self.stable, rollout) {
            (Some(stable), _)
                if stable.revision == found.revision
                    || stable.equivalent.contains(&found.revision) =>
            {
                (stable, true)
            }
            (None, Some(rolling)) if rolling.revision == found.revision => (rolling, false),
            _ => return None,
        };
        let slot_taken = self
            .replicas
            .iter()
            .any(|r| r.slot == found.slot && r.revision() == plan.revision && r.holds_slot());
        let current = found.running && found.slot < self.deployment.desired_replicas && !slot_taken;
        current.then(|| (plan.clone(), serving))
    }

    /// Takes over one found replica. One that was serving serves on at once,
    /// and its probes, which run at once, confirm it. One of a rollout
    /// counts as ready only once its probes pass.
    async fn adopt_one(
        &mut self,
        found: FoundReplica,
        plan: SharedPlan,
        serving: bool,
    ) -> Result<Replica, BackendError> {
        let (ports, leases) = adopted_ports(&plan, &found)?;
        let launch = plan.launch(
            &self.deployment.id,
            &self.deployment.key(),
            found.slot,
            ports.clone(),
            self.secrets.as_ref(),
        )?;
        let env = launch.env.clone();
        let (slot, started_at) = (found.slot, found.started_at);
        let handle = self
            .backend
            .adopt(found, launch, self.replica_tx.clone())
            .await?;

        let mut replica = new_replica(slot, plan, handle, ports, leases, &env);
        replica.message = "adopted from an earlier agent".to_owned();
        if serving {
            replica.ready = true;
            replica.was_ready = true;
            replica.state = ReplicaState::Ready;
            replica.ready_at = None;
        }
        replica.started_at = started_at.or(replica.started_at);

        let now = Instant::now();
        for probe in [replica.readiness.as_mut(), replica.liveness.as_mut()]
            .into_iter()
            .flatten()
        {
            probe.next_at = now;
        }
        Ok(replica)
    }
}

/// Maps each manifest port to the port the found replica publishes it on,
/// and leases those ports so that no other replica gets them.
fn adopted_ports(
    plan: &SharedPlan,
    found: &FoundReplica,
) -> Result<(Vec<AssignedPort>, Vec<PortLease>), BackendError> {
    let cannot = |reason: String| BackendError::CannotAdopt {
        name: found.name.clone(),
        reason,
    };
    let mut assigned = Vec::new();
    let mut leases = Vec::new();
    for port in &plan.spec.ports {
        let published = found
            .ports
            .iter()
            .find(|(container, _)| *container == port.container_port)
            .map(|(_, host)| *host)
            .ok_or_else(|| {
                cannot(format!(
                    "it publishes no port for containerPort {}",
                    port.container_port
                ))
            })?;
        let lease = PortLease::claim(published)
            .ok_or_else(|| cannot(format!("port {published} belongs to another replica")))?;
        assigned.push(AssignedPort {
            name: port.name.clone(),
            container_port: port.container_port,
            host_port: port.host_port,
            port: published,
        });
        leases.push(lease);
    }
    Ok((assigned, leases))
}
