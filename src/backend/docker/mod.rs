//! The Docker backend: each replica is a container of the Docker engine at
//! `DOCKER_HOST` (default `unix:///var/run/docker.sock`), driven through
//! bollard.
//!
//! Every container carries labels naming its deployment, revision, replica
//! and the agent home that made it. The backend lists, stops and removes
//! only containers with this home's label. A container is removed once it
//! exits (anonymous volumes with it), and a restart starts a new one.
//!
//! The container environment contains the rendered secrets, and anyone who can
//! run `docker inspect` on the host can read it.

mod logs;
pub mod spec;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bollard::errors::Error as EngineError;
use bollard::models::{ContainerInspectResponse, ContainerState};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, KillContainerOptions, ListContainersOptions,
    RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::{mpsc, OnceCell};

use super::{
    Backend, BackendError, ExitReason, ReplicaEvent, ReplicaId, ReplicaLaunch, StartedReplica,
};
use crate::logs::{CaptureTarget, LogHub, Stream};
use crate::manifest::StopSignal;

/// The engine's address when `DOCKER_HOST` is not set, as the docker CLI uses.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Replica ids of this backend have the top bit set, so that they never
/// equal a process replica's id in the same agent.
const ID_BASE: u64 = 1 << 63;

/// Containers killed by a signal report 128 plus the signal number as their
/// exit code; signal numbers on Linux stay below 65.
const SIGNAL_EXIT_BASE: i64 = 128;
const MAX_SIGNAL: i64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker engine at {address}: {source}; start dockerd, or set DOCKER_HOST to the engine's address")]
    Unreachable {
        address: String,
        #[source]
        source: EngineError,
    },
    #[error("image {image:?} is not on this host and pulling it failed: {source}; check the name and tag, or load the image with `docker load`")]
    Pull {
        image: String,
        #[source]
        source: EngineError,
    },
    #[error("backend: docker needs `image`; set it to the image to run")]
    MissingImage,
    #[error("Docker engine request to {action} {target} failed: {source}")]
    Request {
        action: &'static str,
        target: String,
        #[source]
        source: EngineError,
    },
}

pub struct DockerBackend {
    /// The engine address, for messages.
    address: String,
    /// The value of the home label on this agent's containers.
    home: String,
    /// Connected and version-negotiated on first use; a failed attempt is
    /// retried on the next use, so the backend recovers once the engine
    /// responds again.
    connection: OnceCell<Docker>,
    containers: Arc<Mutex<HashMap<ReplicaId, String>>>,
    next_id: AtomicU64,
    logs: LogHub,
}

impl DockerBackend {
    /// Creates the backend without contacting the engine.
    pub fn new(home: &Path, logs: LogHub) -> Self {
        let address = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_HOST.to_owned());
        Self {
            address,
            home: home.display().to_string(),
            connection: OnceCell::new(),
            containers: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(ID_BASE + 1),
            logs,
        }
    }

    /// Connects to the engine, if it responds, and removes the containers an
    /// earlier agent of this home left behind.
    pub async fn prepare(&self) -> Result<(), DockerError> {
        self.docker().await.map(|_| ())
    }

    async fn docker(&self) -> Result<&Docker, DockerError> {
        self.connection
            .get_or_try_init(|| async {
                let docker = self.connect().await?;
                let removed = self.remove_leftovers(&docker).await?;
                if removed > 0 {
                    tracing::warn!(
                        containers = removed,
                        "removed containers left by an earlier agent"
                    );
                }
                Ok(docker)
            })
            .await
    }

    async fn connect(&self) -> Result<Docker, DockerError> {
        let unreachable = |source| DockerError::Unreachable {
            address: self.address.clone(),
            source,
        };
        let docker = Docker::connect_with_host(&self.address).map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        tracing::info!(address = %self.address, api = %docker.client_version(), "connected to the Docker engine");
        Ok(docker)
    }

    /// Removes every container with this home's label. It runs before the
    /// first container of this agent starts, so all it finds are leftovers.
    // NOTE: running containers of the current revision are replaced rather
    // than adopted: the supervisor has no way yet to take over a replica it
    // did not start, so an agent crash costs one restart of each container.
    async fn remove_leftovers(&self, docker: &Docker) -> Result<usize, DockerError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{}={}", spec::LABEL_HOME, self.home)],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let found = docker
            .list_containers(Some(options))
            .await
            .map_err(|source| DockerError::Request {
                action: "list",
                target: "containers".to_owned(),
                source,
            })?;
        let ids: Vec<String> = found.into_iter().filter_map(|c| c.id).collect();
        for id in &ids {
            tracing::warn!(container = %id, "removing a container left by an earlier agent");
            remove(docker, id).await;
        }
        Ok(ids.len())
    }

    fn container_of(&self, replica: &StartedReplica) -> Option<String> {
        lock(&self.containers).get(&replica.id).cloned()
    }

    /// Creates and starts the container; returns its id and inspect data.
    async fn run_container(
        &self,
        docker: &Docker,
        launch: &ReplicaLaunch,
    ) -> Result<(String, ContainerInspectResponse), BackendError> {
        let container = launch.container.as_ref().ok_or(DockerError::MissingImage)?;
        ensure_image(docker, &container.image).await?;
        let body = spec::container_body(launch, container, &self.home)?;
        let name = spec::container_name(launch);
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = docker
            .create_container(Some(options), body)
            .await
            .map_err(|source| request_error("create", &name, source))?;
        let id = created.id;
        if let Err(source) = docker.start_container(&id, None).await {
            remove(docker, &id).await;
            return Err(request_error("start", &name, source).into());
        }
        match docker.inspect_container(&id, None).await {
            Ok(info) => Ok((id, info)),
            Err(source) => {
                remove(docker, &id).await;
                Err(request_error("inspect", &name, source).into())
            }
        }
    }

    fn spawn_signal(&self, replica: &StartedReplica, signal: &'static str) {
        let (Some(docker), Some(container)) =
            (self.connection.get().cloned(), self.container_of(replica))
        else {
            return;
        };
        tokio::spawn(async move {
            let options = KillContainerOptions {
                signal: signal.to_owned(),
            };
            if let Err(error) = docker.kill_container(&container, Some(options)).await {
                // The engine returns 409 for a container that already exited; its exit
                // watcher reports and removes it.
                tracing::debug!(%container, signal, %error, "signalling a container failed");
            }
        });
    }
}

impl Backend for DockerBackend {
    async fn start(
        &self,
        launch: ReplicaLaunch,
        events: mpsc::Sender<ReplicaEvent>,
    ) -> Result<StartedReplica, BackendError> {
        let docker = self.docker().await?.clone();
        let (container, info) = self.run_container(&docker, &launch).await?;
        let id = ReplicaId(self.next_id.fetch_add(1, Ordering::Relaxed));
        lock(&self.containers).insert(id, container.clone());

        // Before the first line is read, so that no line escapes the mask.
        self.logs.set_secrets(
            &launch.deployment_id,
            launch.secret_values.iter().map(|value| value.expose()),
        );
        let tty = info
            .config
            .as_ref()
            .and_then(|config| config.tty)
            .unwrap_or(false);
        let target = CaptureTarget {
            deployment_id: launch.deployment_id.clone(),
            source: format!("{}-{}", launch.key.name, launch.index),
            stream: Stream::Stdout,
            revision: launch.revision,
            build: false,
        };
        logs::follow(docker.clone(), container.clone(), tty, &self.logs, target);

        // The container's init is a host process, so the /proc collector
        // measures it as it does a process replica.
        let pid = info
            .state
            .as_ref()
            .and_then(|state| state.pid)
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0);
        let watch = ExitWatch {
            docker,
            container,
            id,
            containers: Arc::clone(&self.containers),
        };
        tokio::spawn(watch.run(events));
        Ok(StartedReplica { id, pid })
    }

    fn request_stop(&self, replica: &StartedReplica, signal: StopSignal) {
        self.spawn_signal(replica, spec::signal_name(signal));
    }

    fn kill(&self, replica: &StartedReplica) {
        // The exit watcher removes the container once it has ended.
        self.spawn_signal(replica, "SIGKILL");
    }
}

/// The task that waits for a container to end, reports it and removes it.
struct ExitWatch {
    docker: Docker,
    container: String,
    id: ReplicaId,
    containers: Arc<Mutex<HashMap<ReplicaId, String>>>,
}

impl ExitWatch {
    async fn run(self, events: mpsc::Sender<ReplicaEvent>) {
        let mut wait = self.docker.wait_container(&self.container, None);
        // bollard turns a non-zero exit into an error; either way the
        // container's state from inspect is what counts.
        if let Some(Err(error)) = wait.next().await {
            tracing::debug!(container = %self.container, %error, "wait ended with an error");
        }
        drop(wait);
        let (reason, out_of_memory) = match self
            .docker
            .inspect_container(&self.container, None)
            .await
        {
            Ok(info) => exit_of(info.state.as_ref()),
            Err(error) => {
                tracing::error!(container = %self.container, %error, "inspecting an ended container failed");
                (ExitReason::Unknown, false)
            }
        };
        remove(&self.docker, &self.container).await;
        lock(&self.containers).remove(&self.id);

        let event = ReplicaEvent::Exited {
            id: self.id,
            reason,
            out_of_memory,
        };
        if events.send(event).await.is_err() {
            tracing::debug!(id = ?self.id, "container exited after its supervisor stopped");
        }
    }
}

/// Reads the exit from a container's state. An exit code above 128 is read
/// as a signal, as a shell would, because that is how the engine reports a
/// container killed by one.
fn exit_of(state: Option<&ContainerState>) -> (ExitReason, bool) {
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

/// Pulls the image unless the engine has it already.
async fn ensure_image(docker: &Docker, image: &str) -> Result<(), DockerError> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(EngineError::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(source) => return Err(request_error("inspect image", image, source)),
    }
    tracing::info!(image, "pulling image");
    let (name, tag) = spec::pull_reference(image);
    let options = CreateImageOptions {
        from_image: Some(name),
        tag: Some(tag),
        ..Default::default()
    };
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(step) = progress.next().await {
        step.map_err(|source| DockerError::Pull {
            image: image.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Removes a container, killing it first if it still runs, with its
/// anonymous volumes. A container already gone is fine.
async fn remove(docker: &Docker, container: &str) {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(container, Some(options)).await {
        Ok(()) => {}
        Err(EngineError::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(error) => tracing::error!(%container, %error, "removing a container failed"),
    }
}

fn request_error(action: &'static str, target: &str, source: EngineError) -> DockerError {
    DockerError::Request {
        action,
        target: target.to_owned(),
        source,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
