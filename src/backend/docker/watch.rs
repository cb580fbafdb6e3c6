//! The task that waits for a container to end, reports it and removes it.
//!
//! A wait that ends without the container ending (the engine restarted, or
//! the connection broke) is not an exit: the task waits for the engine to
//! respond, looks at the container again, and goes on waiting while it runs.

use std::sync::Arc;

use bollard::errors::Error as EngineError;
use bollard::models::ContainerState;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{health_of, remove, Shared, MAX_SIGNAL, RETRY, SIGNAL_EXIT_BASE};
use crate::backend::{ExitReason, ReplicaEvent, ReplicaId};

pub(super) struct ExitWatch {
    pub docker: Docker,
    pub container: String,
    pub id: ReplicaId,
    pub shared: Arc<Shared>,
    pub events: mpsc::Sender<ReplicaEvent>,
}

impl ExitWatch {
    pub async fn run(self) {
        let (reason, out_of_memory) = self.wait_for_end().await;
        remove(&self.docker, &self.container).await;
        self.shared.untrack(self.id);

        let event = ReplicaEvent::Exited {
            id: self.id,
            reason,
            out_of_memory,
        };
        if self.events.send(event).await.is_err() {
            tracing::debug!(id = ?self.id, "container exited after its supervisor stopped");
        }
    }

    async fn wait_for_end(&self) -> (ExitReason, bool) {
        loop {
            let mut wait = self.docker.wait_container(&self.container, None);
            // bollard turns a non-zero exit into an error; either way the
            // container's state from inspect is what counts.
            let waited = wait.next().await;
            drop(wait);
            match self.docker.inspect_container(&self.container, None).await {
                Ok(info) => {
                    let state = info.state.as_ref();
                    if !state.and_then(|state| state.running).unwrap_or(false) {
                        return exit_of(state);
                    }
                    // Still running, so the wait broke off. The HEALTHCHECK
                    // may have changed while no event stream was open.
                    if let Some(health) = health_of(&info) {
                        let event = ReplicaEvent::ContainerHealth {
                            id: self.id,
                            health,
                        };
                        let _ = self.events.try_send(event);
                    }
                    tracing::debug!(container = %self.container, ?waited, "waiting for the container again");
                    tokio::time::sleep(RETRY).await;
                }
                Err(EngineError::DockerResponseServerError {
                    status_code: 404, ..
                }) => {
                    tracing::warn!(container = %self.container, "the container was removed by someone else");
                    return (ExitReason::Unknown, false);
                }
                Err(error) => {
                    tracing::debug!(container = %self.container, %error, "cannot inspect the container; waiting for the engine");
                    self.shared.wait_reachable().await;
                }
            }
        }
    }
}

/// Reads the exit from a container's state. An exit code above 128 is read
/// as a signal, as a shell would, because that is how the engine reports a
/// container killed by one.
pub(super) fn exit_of(state: Option<&ContainerState>) -> (ExitReason, bool) {
    let Some(state) = state else {
        return (ExitReason::Unknown, false);
    };
    let reason = match state.exit_code {
        Some(code) if code > SIGNAL_EXIT_BASE && code <= SIGNAL_EXIT_BASE + MAX_SIGNAL => {
            ExitReason::Signal((code - SIGNAL_EXIT_BASE) as i32)
        }
        Some(code) => i32::try_from(code).map_or(ExitReason::Unknown, ExitReason::Code),
        None => ExitReason::Unknown,
    };
    (reason, state.oom_killed.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(code: i64, oom: bool) -> ContainerState {
        ContainerState {
            exit_code: Some(code),
            oom_killed: Some(oom),
            ..Default::default()
        }
    }

    #[test]
    fn exit_reads_codes_and_signals() {
        assert_eq!(exit_of(Some(&state(0, false))).0, ExitReason::Code(0));
        assert_eq!(exit_of(Some(&state(3, false))).0, ExitReason::Code(3));
        assert_eq!(exit_of(Some(&state(137, false))).0, ExitReason::Signal(9));
        assert_eq!(exit_of(Some(&state(255, false))).0, ExitReason::Code(255));
        assert_eq!(exit_of(None).0, ExitReason::Unknown);
    }

    #[test]
    fn exit_reports_out_of_memory() {
        assert!(exit_of(Some(&state(137, true))).1);
        assert!(!exit_of(Some(&state(137, false))).1);
    }
}
