//! The supervisor's side of a backend's platform, such as the Docker engine:
//! what it leaves alone while the platform does not respond, and what it
//! catches up on once the platform responds again.

use std::time::Instant;

use tokio::sync::{oneshot, watch};

use super::{Phase, Supervisor};
use crate::backend::{Backend, PlatformState};
use crate::manifest::BackendKind;

/// Waits for the next change of the platform's state; never returns for a
/// backend without a platform, or once the backend dropped its sender.
pub(super) async fn changed(platform: &mut Option<watch::Receiver<PlatformState>>) {
    if let Some(receiver) = platform.as_mut() {
        if receiver.changed().await.is_ok() {
            return;
        }
        *platform = None;
    }
    std::future::pending::<()>().await;
}

impl<B: Backend> Supervisor<B> {
    /// Returns why the platform does not respond, if it does not.
    pub(super) fn platform_problem(&self) -> Option<String> {
        match &*self.platform.as_ref()?.borrow() {
            PlatformState::Reachable => None,
            PlatformState::Unreachable { reason } => Some(reason.clone()),
        }
    }

    /// Records an outage and its end, and catches up on stops that were
    /// asked for while the platform did not respond.
    pub(super) fn platform_changed(&mut self) {
        let problem = self.platform_problem();
        let previous = std::mem::replace(&mut self.platform_problem, problem.clone());
        let supervising = !matches!(self.phase, Phase::Idle) || !self.replicas.is_empty();
        match (previous, problem) {
            (None, Some(reason)) if supervising => {
                tracing::warn!(deployment = %self.deployment.key(), %reason, "platform unreachable; replicas are left as last seen");
                let message = format!(
                    "{reason}; health is unknown and nothing is restarted until it responds"
                );
                self.recorder.agent_event(
                    &self.deployment,
                    "platform-unreachable",
                    false,
                    &message,
                );
            }
            (Some(_), None) => {
                if supervising {
                    let message = format!(
                        "{} responds again; supervision resumes",
                        platform_name(self.deployment.backend)
                    );
                    self.recorder.agent_event(
                        &self.deployment,
                        "platform-reachable",
                        true,
                        &message,
                    );
                }
                self.signal_stopping_again();
            }
            _ => {}
        }
    }

    /// Sends the stop signal again to replicas that were stopping while the
    /// platform did not respond, because it may never have arrived. Their
    /// grace period starts over.
    fn signal_stopping_again(&mut self) {
        let now = Instant::now();
        for replica in &mut self.replicas {
            if replica.is_stopping() && replica.handle.is_some() {
                replica.signal_at = Some(now);
                replica.kill_at = None;
            }
        }
    }

    /// Fails a rollout whose progress deadline passed while the platform did
    /// not respond, naming the platform's problem.
    pub(super) async fn fail_stalled_rollout(&mut self, problem: &str) {
        let Some(rollout) = self.rollout.as_ref() else {
            return;
        };
        if Instant::now() < rollout.deadline {
            return;
        }
        let reason = format!(
            "revision {} did not become ready within progressDeadlineSeconds={}: {problem}",
            rollout.plan.revision, rollout.plan.spec.strategy.progress_deadline_seconds
        );
        self.fail_rollout(reason).await;
    }

    /// Leaves every replica running for the next agent to adopt, for an
    /// agent stop on a backend whose replicas outlive the agent.
    pub(super) fn leave_running(&mut self, done: oneshot::Sender<()>) {
        self.cut_short("agent stopped");
        let left = self.replicas.iter().filter(|r| r.handle.is_some()).count();
        if left > 0 {
            tracing::info!(deployment = %self.deployment.key(), replicas = left, "leaving replicas running for the next agent");
        }
        self.replicas.clear();
        self.phase = Phase::Stopping {
            undeploy: false,
            waiters: Vec::new(),
            shutdown: Some(done),
            kept: None,
        };
    }
}

/// Names the platform of a backend in messages.
fn platform_name(backend: BackendKind) -> &'static str {
    match backend {
        BackendKind::Docker => "the Docker engine",
        BackendKind::Kubernetes => "the Kubernetes cluster",
        BackendKind::Process => "the host",
    }
}
