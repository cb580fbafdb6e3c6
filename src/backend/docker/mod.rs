//! The Docker backend: each replica is a container of the Docker engine at
//! `DOCKER_HOST` (default `unix:///var/run/docker.sock`), driven through
//! bollard.
//!
//! Every container carries labels naming its deployment, revision, replica
//! and the agent home that made it. The backend lists, stops and removes
//! only containers with this home's label. A container is removed once it
//! exits (anonymous volumes with it), and a restart starts a new one.
//!
//! Containers outlive the agent: an agent that stops, or crashes, leaves
//! them running, and the next agent of the same home adopts them by their
//! labels. While the engine does not respond, the backend reports the
//! platform as unreachable and every container task waits for the engine
//! to come back, then looks at its container again.
//!
//! The container environment contains the rendered secrets, and anyone who can
//! run `docker inspect` on the host can read it.

mod adopt;
mod build;
mod events;
mod exec;
mod logs;
pub mod spec;
pub mod stats;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bollard::errors::Error as EngineError;
use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, KillContainerOptions, RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch as channel, OnceCell};

use super::{
    Backend, BackendError, FoundReplica, ImageBuild, PlatformState, ReplicaEvent, ReplicaId,
    ReplicaLaunch, StartedReplica,
};
use crate::logs::{CaptureTarget, LogHub, Stream};
use crate::manifest::{Manifest, StopSignal};
use crate::model::{ContainerHealth, DeploymentKey};
use crate::probe::{ProbeOutcome, ProbeTarget};
pub use stats::StatsSample;

/// The engine's address when `DOCKER_HOST` is not set, as the docker CLI uses.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Replica ids of this backend have the top bit set, so that they never
/// equal a process replica's id in the same agent.
const ID_BASE: u64 = 1 << 63;

/// Containers killed by a signal report 128 plus the signal number as their
/// exit code; signal numbers on Linux stay below 65.
const SIGNAL_EXIT_BASE: i64 = 128;
const MAX_SIGNAL: i64 = 64;

/// Pause before a container task sends a request again after one failed,
/// so that an engine that is going away gets no requests in a loop.
const RETRY: Duration = Duration::from_secs(1);

/// Prefix of the ids of images that shipdeck built; such an image is never
/// pulled, because no registry has it.
const IMAGE_ID_PREFIX: &str = "sha256:";

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
    #[error("image {image} that revision {revision} was built as is no longer on the Docker engine; deploy the source again to build a new revision")]
    BuiltImageGone { image: String, revision: u64 },
    #[error("backend: docker needs `image`; set it to the image to run")]
    MissingImage,
    #[error("the source of revision {revision} has no Dockerfile at {path}; add one at the top of the source")]
    MissingDockerfile { revision: u64, path: PathBuf },
    #[error("docker build of revision {revision} failed: {message}{}", last_lines(.tail))]
    Build {
        revision: u64,
        message: String,
        tail: Vec<String>,
    },
    #[error("packing the build context {path} failed: {source}")]
    Context {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Docker engine request to {action} {target} failed: {source}")]
    Request {
        action: &'static str,
        target: String,
        #[source]
        source: EngineError,
    },
}

fn last_lines(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    format!("; last lines of its output:\n{}", tail.join("\n"))
}

pub struct DockerBackend {
    /// Connected and version-negotiated on first use; a failed attempt is
    /// retried on the next use, so the backend recovers once the engine
    /// responds again.
    connection: OnceCell<Docker>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    logs: LogHub,
}

/// State that the backend shares with the tasks that follow its containers.
struct Shared {
    /// The engine address, for messages.
    address: String,
    /// The value of the home label on this agent's containers.
    home: String,
    tracked: Mutex<HashMap<ReplicaId, Tracked>>,
    platform: channel::Sender<PlatformState>,
    /// Whether the engine ever responded to this agent.
    reached: AtomicBool,
    /// The newest stats sample of each tracked container, by container id.
    samples: Mutex<HashMap<String, StatsSample>>,
}

/// A container this agent follows.
struct Tracked {
    container: String,
    events: mpsc::Sender<ReplicaEvent>,
    /// The task following the stats stream, when metrics are collected.
    stats: Option<tokio::task::AbortHandle>,
}

impl Shared {
    fn untrack(&self, id: ReplicaId) {
        let Some(tracked) = lock(&self.tracked).remove(&id) else {
            return;
        };
        if let Some(stats) = tracked.stats {
            stats.abort();
        }
        lock(&self.samples).remove(&tracked.container);
    }

    fn is_tracked(&self, container: &str) -> bool {
        lock(&self.tracked)
            .values()
            .any(|tracked| tracked.container == container)
    }

    /// Returns the replica and the event channel of a tracked container.
    fn replica_of(&self, container: &str) -> Option<(ReplicaId, mpsc::Sender<ReplicaEvent>)> {
        lock(&self.tracked)
            .iter()
            .find(|(_, tracked)| tracked.container == container)
            .map(|(id, tracked)| (*id, tracked.events.clone()))
    }

    fn set_platform(&self, state: PlatformState) {
        if state == PlatformState::Reachable {
            self.reached.store(true, Ordering::Relaxed);
        }
        self.platform.send_if_modified(|current| {
            if *current == state {
                return false;
            }
            match &state {
                PlatformState::Reachable => {
                    tracing::info!(address = %self.address, "the Docker engine responds")
                }
                // An agent that never reached an engine may have no Docker
                // deployments at all, so that is no warning.
                PlatformState::Unreachable { reason } if self.reached.load(Ordering::Relaxed) => {
                    tracing::warn!(address = %self.address, %reason, "the Docker engine does not respond")
                }
                PlatformState::Unreachable { reason } => {
                    tracing::info!(address = %self.address, %reason, "no Docker engine responds; docker deployments wait for one")
                }
            }
            *current = state;
            true
        });
    }

    /// Waits a moment, then until the engine responds.
    async fn wait_reachable(&self) {
        tokio::time::sleep(RETRY).await;
        let mut platform = self.platform.subscribe();
        // `self` owns the sender, so the channel is never closed here.
        let _ = platform
            .wait_for(|state| *state == PlatformState::Reachable)
            .await;
    }
}

impl DockerBackend {
    /// Creates the backend without contacting the engine.
    pub fn new(home: &Path, logs: LogHub) -> Self {
        let address = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_HOST.to_owned());
        let (platform, _) = channel::channel(PlatformState::Reachable);
        Self {
            connection: OnceCell::new(),
            shared: Arc::new(Shared {
                address,
                home: home.display().to_string(),
                tracked: Mutex::new(HashMap::new()),
                platform,
                reached: AtomicBool::new(false),
                samples: Mutex::new(HashMap::new()),
            }),
            next_id: AtomicU64::new(ID_BASE + 1),
            logs,
        }
    }

    /// Starts watching the engine: whether it responds, and the health of
    /// this home's containers. Runs until the backend is dropped.
    pub fn prepare(self: &Arc<Self>) {
        tokio::spawn(events::watch_engine(Arc::downgrade(self)));
    }

    /// Returns the newest stats sample of a container this agent follows.
    pub fn stats_sample(&self, container: &str) -> Option<StatsSample> {
        lock(&self.shared.samples).get(container).cloned()
    }

    /// Removes this home's containers whose deployment `claimed` does not
    /// name, once the engine responds: those of deployments that no longer
    /// run, left by an earlier agent.
    pub fn sweep_unclaimed(
        self: &Arc<Self>,
        claimed: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) {
        let backend = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match backend.remove_unclaimed(&claimed).await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::debug!(%error, "cannot look for containers of earlier agents yet");
                        backend.shared.wait_reachable().await;
                    }
                }
            }
        });
    }

    async fn docker(&self) -> Result<&Docker, DockerError> {
        self.connection.get_or_try_init(|| self.connect()).await
    }

    async fn connect(&self) -> Result<Docker, DockerError> {
        let address = &self.shared.address;
        let unreachable = |source| DockerError::Unreachable {
            address: address.clone(),
            source,
        };
        let docker = Docker::connect_with_host(address).map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        tracing::info!(%address, api = %docker.client_version(), "connected to the Docker engine");
        Ok(docker)
    }

    /// Turns a failed request into the error to report: one that shows the
    /// engine does not respond names its address.
    fn request_error(
        &self,
        action: &'static str,
        target: &str,
        source: EngineError,
    ) -> DockerError {
        if is_connection_error(&source) {
            return DockerError::Unreachable {
                address: self.shared.address.clone(),
                source,
            };
        }
        request_error(action, target, source)
    }

    fn container_of(&self, replica: &StartedReplica) -> Option<String> {
        replica.container.clone()
    }

    /// Creates and starts the container; returns its id and inspect data.
    async fn run_container(
        &self,
        docker: &Docker,
        launch: &ReplicaLaunch,
    ) -> Result<(String, ContainerInspectResponse), BackendError> {
        let container = launch.container.as_ref().ok_or(DockerError::MissingImage)?;
        self.ensure_image(docker, &container.image, launch.revision)
            .await?;
        self.ensure_volumes(docker, launch, container).await?;
        let body = spec::container_body(launch, container, &self.shared.home)?;
        let name = spec::container_name(launch);
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = match docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Err(EngineError::DockerResponseServerError {
                status_code: 409, ..
            }) if self.remove_leftover(docker, &name).await => {
                docker.create_container(Some(options), body).await
            }
            other => other,
        };
        let id = created
            .map_err(|source| self.request_error("create", &name, source))?
            .id;
        if let Err(source) = docker.start_container(&id, None).await {
            remove(docker, &id).await;
            return Err(self.request_error("start", &name, source).into());
        }
        match docker.inspect_container(&id, None).await {
            Ok(info) => Ok((id, info)),
            Err(source) => {
                remove(docker, &id).await;
                Err(self.request_error("inspect", &name, source).into())
            }
        }
    }

    /// Removes the container named `name` if this home made it and no
    /// replica of this agent runs in it: one that an earlier agent left, or
    /// whose removal failed. Returns whether it removed one.
    async fn remove_leftover(&self, docker: &Docker, name: &str) -> bool {
        let Ok(info) = docker.inspect_container(name, None).await else {
            return false;
        };
        let home = info
            .config
            .as_ref()
            .and_then(|config| config.labels.as_ref())
            .and_then(|labels| labels.get(spec::LABEL_HOME));
        let Some(id) = info.id.as_deref() else {
            return false;
        };
        if home != Some(&self.shared.home) || self.shared.is_tracked(id) {
            return false;
        }
        tracing::warn!(
            container = name,
            "removing a leftover container that holds the name of a new replica"
        );
        remove(docker, id).await;
        true
    }

    /// Pulls the image unless the engine has it already. An image that
    /// shipdeck built (named by its id) is never pulled.
    async fn ensure_image(
        &self,
        docker: &Docker,
        image: &str,
        revision: u64,
    ) -> Result<(), DockerError> {
        match docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(EngineError::DockerResponseServerError {
                status_code: 404, ..
            }) if image.starts_with(IMAGE_ID_PREFIX) => {
                return Err(DockerError::BuiltImageGone {
                    image: image.to_owned(),
                    revision,
                })
            }
            Err(EngineError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(source) => return Err(self.request_error("inspect image", image, source)),
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

    /// Creates the named volumes of `persistentVolume`s that shipdeck names,
    /// labelled with the deployment that uses them. The engine returns a
    /// volume that exists already as it is.
    async fn ensure_volumes(
        &self,
        docker: &Docker,
        launch: &ReplicaLaunch,
        container: &super::ContainerLaunch,
    ) -> Result<(), DockerError> {
        for request in spec::volumes_to_create(launch, container, &self.shared.home) {
            let name = request.name.clone().unwrap_or_default();
            docker
                .create_volume(request)
                .await
                .map_err(|source| self.request_error("create volume", &name, source))?;
        }
        Ok(())
    }

    /// Follows a container's exit, stats and HEALTHCHECK from now on, and
    /// its output from `log_since`. That is an entry id in nanoseconds, and
    /// `None` takes all of the output.
    fn attach(
        &self,
        docker: &Docker,
        launch: &ReplicaLaunch,
        container: &str,
        info: &ContainerInspectResponse,
        events: mpsc::Sender<ReplicaEvent>,
        log_since: Option<u64>,
    ) -> StartedReplica {
        let id = ReplicaId(self.next_id.fetch_add(1, Ordering::Relaxed));

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
            source: replica_source(&launch.key, launch.index),
            stream: Stream::Stdout,
            revision: launch.revision,
            build: false,
        };
        let follow = logs::LogFollow {
            docker: docker.clone(),
            container: container.to_owned(),
            tty,
            since: log_since,
            shared: Arc::clone(&self.shared),
        };
        follow.start(&self.logs, target);

        let collect_stats = launch.container.as_ref().is_some_and(|c| c.stats);
        let stats = collect_stats.then(|| {
            let follow = stats::follow(
                docker.clone(),
                container.to_owned(),
                Arc::clone(&self.shared),
            );
            tokio::spawn(follow).abort_handle()
        });
        lock(&self.shared.tracked).insert(
            id,
            Tracked {
                container: container.to_owned(),
                events: events.clone(),
                stats,
            },
        );
        if let Some(health) = health_of(info) {
            // The channel has room: the supervisor reads it between steps.
            let _ = events.try_send(ReplicaEvent::ContainerHealth { id, health });
        }
        let exit = watch::ExitWatch {
            docker: docker.clone(),
            container: container.to_owned(),
            id,
            shared: Arc::clone(&self.shared),
            events,
        };
        tokio::spawn(exit.run());

        StartedReplica {
            id,
            pid: pid_of(info),
            container: Some(container.to_owned()),
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
        Ok(self.attach(&docker, &launch, &container, &info, events, None))
    }

    fn request_stop(&self, replica: &StartedReplica, signal: StopSignal) {
        self.spawn_signal(replica, spec::signal_name(signal));
    }

    fn kill(&self, replica: &StartedReplica) {
        // The exit watcher removes the container once it has ended.
        self.spawn_signal(replica, "SIGKILL");
    }

    fn platform(&self) -> Option<channel::Receiver<PlatformState>> {
        Some(self.shared.platform.subscribe())
    }

    async fn find_replicas(&self, deployment_id: &str) -> Result<Vec<FoundReplica>, BackendError> {
        let docker = self.docker().await?;
        Ok(self.find(docker, deployment_id).await?)
    }

    async fn adopt(
        &self,
        found: FoundReplica,
        launch: ReplicaLaunch,
        events: mpsc::Sender<ReplicaEvent>,
    ) -> Result<StartedReplica, BackendError> {
        let docker = self.docker().await?.clone();
        let info = docker
            .inspect_container(&found.container, None)
            .await
            .map_err(|source| self.request_error("inspect", &found.name, source))?;
        let since = self.last_logged(&launch);
        tracing::info!(container = %found.name, revision = found.revision, replica = found.slot, "adopted a running container");
        Ok(self.attach(&docker, &launch, &found.container, &info, events, since))
    }

    async fn discard(&self, found: &FoundReplica) {
        let Some(docker) = self.connection.get() else {
            return;
        };
        tracing::info!(container = %found.name, "removing a container no current replica claims");
        remove(docker, &found.container).await;
    }

    fn replicas_outlive_agent(&self) -> bool {
        true
    }

    fn probe(
        &self,
        replica: &StartedReplica,
        target: ProbeTarget,
        timeout: Duration,
        workdir: PathBuf,
    ) -> impl std::future::Future<Output = ProbeOutcome> + Send + 'static {
        let docker = self.connection.get().cloned();
        let container = self.container_of(replica);
        async move {
            match (target, docker, container) {
                (ProbeTarget::Exec { command, .. }, Some(docker), Some(container)) => {
                    exec::probe(&docker, &container, &command, timeout).await
                }
                (ProbeTarget::Exec { .. }, _, _) => {
                    ProbeOutcome::fail("the replica's container is not known".to_owned())
                }
                (target, _, _) => crate::probe::run(&target, timeout, &workdir).await,
            }
        }
    }

    async fn build_image(&self, build: ImageBuild) -> Result<Option<String>, BackendError> {
        let docker = self.docker().await?;
        let image = build::build(docker, &build, &self.shared.home).await?;
        Ok(Some(image))
    }

    fn kept_after_undeploy(&self, key: &DeploymentKey, spec: &Manifest) -> Option<String> {
        let kept = spec::kept_volumes(key, spec);
        if kept.is_empty() {
            return None;
        }
        Some(format!(
            "kept the persistent volumes {} with their data; remove them with `docker volume rm {}`",
            kept.join(", "),
            kept.join(" ")
        ))
    }
}

/// Returns the log source of a replica, `NAME-INDEX`, as process replicas have.
fn replica_source(key: &DeploymentKey, index: u32) -> String {
    format!("{}-{}", key.name, index)
}

/// Reads the container's main process id: a host process.
fn pid_of(info: &ContainerInspectResponse) -> Option<u32> {
    info.state
        .as_ref()
        .and_then(|state| state.pid)
        .and_then(|pid| u32::try_from(pid).ok())
        .filter(|pid| *pid > 0)
}

/// Reads the state of the image's HEALTHCHECK; `None` when it has none.
fn health_of(info: &ContainerInspectResponse) -> Option<ContainerHealth> {
    let status = info.state.as_ref()?.health.as_ref()?.status?;
    health_from(status)
}

fn health_from(status: HealthStatusEnum) -> Option<ContainerHealth> {
    match status {
        HealthStatusEnum::STARTING => Some(ContainerHealth::Starting),
        HealthStatusEnum::HEALTHY => Some(ContainerHealth::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(ContainerHealth::Unhealthy),
        HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
    }
}

/// Tells whether a failed request shows that the engine does not respond,
/// rather than that it rejected the request.
fn is_connection_error(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::HyperResponseError { .. }
            | EngineError::HyperLegacyError { .. }
            | EngineError::IOError { .. }
            | EngineError::RequestTimeoutError
            | EngineError::SocketNotFoundError(_)
    )
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
        // The engine is removing it already.
        Err(EngineError::DockerResponseServerError {
            status_code: 409, ..
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
