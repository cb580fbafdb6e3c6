//! Watching the engine: whether it responds, and the HEALTHCHECK changes of
//! this home's containers, through one event stream for all of them.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use futures_util::StreamExt;

use super::spec::LABEL_HOME;
use super::{DockerBackend, DockerError, Shared, RETRY};
use crate::backend::{PlatformState, ReplicaEvent};
use crate::model::ContainerHealth;

/// Pause before subscribing again after the event stream ended while the
/// engine still responds.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(100);

/// Keeps the backend's platform state current until the backend is dropped:
/// reachable while the event stream runs, unreachable from the moment a
/// request fails until the engine responds again.
pub(super) async fn watch_engine(backend: Weak<DockerBackend>) {
    loop {
        let Some(strong) = backend.upgrade() else {
            return;
        };
        let shared = Arc::clone(&strong.shared);
        let connected = strong.docker().await.cloned();
        drop(strong);
        match connected {
            Ok(docker) => match docker.ping().await {
                Ok(_) => {
                    shared.set_platform(PlatformState::Reachable);
                    follow_events(&docker, &shared).await;
                    tokio::time::sleep(RESUBSCRIBE_DELAY).await;
                    continue;
                }
                Err(source) => {
                    let error = DockerError::Unreachable {
                        address: shared.address.clone(),
                        source,
                    };
                    shared.set_platform(unreachable(&error));
                }
            },
            Err(error) => shared.set_platform(unreachable(&error)),
        }
        tokio::time::sleep(RETRY).await;
    }
}

fn unreachable(error: &DockerError) -> PlatformState {
    PlatformState::Unreachable {
        reason: error.to_string(),
    }
}

/// Hands each HEALTHCHECK change of this home's containers to the replica's
/// supervisor, until the stream ends.
async fn follow_events(docker: &Docker, shared: &Shared) {
    let filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        ("event".to_owned(), vec!["health_status".to_owned()]),
        (
            "label".to_owned(),
            vec![format!("{LABEL_HOME}={}", shared.home)],
        ),
    ]);
    let options = EventsOptions {
        filters: Some(filters),
        ..Default::default()
    };
    let mut stream = docker.events(Some(options));
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => route_health(shared, &event),
            Err(error) => {
                tracing::debug!(%error, "the Docker event stream ended");
                return;
            }
        }
    }
}

fn route_health(shared: &Shared, event: &EventMessage) {
    let Some(health) = event.action.as_deref().and_then(parse_health_action) else {
        return;
    };
    let Some(container) = event.actor.as_ref().and_then(|actor| actor.id.as_deref()) else {
        return;
    };
    let Some((id, events)) = shared.replica_of(container) else {
        return;
    };
    // A full channel means the supervisor is busy; the next change, or the
    // next look after an outage, brings the state again.
    if let Err(error) = events.try_send(ReplicaEvent::ContainerHealth { id, health }) {
        tracing::debug!(%container, %error, "dropped a HEALTHCHECK change");
    }
}

/// Reads `health_status: healthy` and its siblings, as the engine names them.
fn parse_health_action(action: &str) -> Option<ContainerHealth> {
    match action.strip_prefix("health_status:")?.trim() {
        "starting" => Some(ContainerHealth::Starting),
        "healthy" => Some(ContainerHealth::Healthy),
        "unhealthy" => Some(ContainerHealth::Unhealthy),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_action_parses_each_state() {
        assert_eq!(
            parse_health_action("health_status: healthy"),
            Some(ContainerHealth::Healthy)
        );
        assert_eq!(
            parse_health_action("health_status: unhealthy"),
            Some(ContainerHealth::Unhealthy)
        );
        assert_eq!(
            parse_health_action("health_status: starting"),
            Some(ContainerHealth::Starting)
        );
        assert_eq!(parse_health_action("die"), None);
    }
}
