//! Backends run replicas on a platform. The engine speaks only to [`Backend`].

pub mod docker;
pub mod kubernetes;
pub mod limits;
pub mod process;
pub mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::manifest::Manifest;
use crate::model::{ContainerHealth, DeploymentKey};
use crate::probe::{ProbeOutcome, ProbeTarget};
use source::{BuildDirs, BuildLog};

/// A port as one replica sees it: the manifest's `containerPort` and the
/// port the replica really listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedPort {
    pub name: Option<String>,
    pub container_port: u16,
    /// Where the port's stable endpoint listens, if it has one.
    pub host_port: Option<u16>,
    pub port: u16,
}

/// Everything a backend needs to start one replica. Its `Debug` output
/// lists the environment's names only, because values may be secrets.
#[derive(Clone)]
pub struct ReplicaLaunch {
    pub deployment_id: String,
    pub key: DeploymentKey,
    pub revision: u64,
    pub index: u32,
    pub command: Vec<String>,
    pub workdir: PathBuf,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<AssignedPort>,
    /// `resources.limits.memory` in bytes.
    pub memory_limit: Option<u64>,
    /// `resources.limits.cpu` in millicores.
    pub cpu_millicores: Option<u64>,
    /// The secret values in `env`, so that captured output can mask them.
    pub secret_values: Vec<crate::config::SecretValue>,
    /// What only a container backend uses; `None` for `backend: process`.
    pub container: Option<ContainerLaunch>,
    /// `stopSignal`, which a container engine also needs at creation.
    pub stop_signal: crate::manifest::StopSignal,
}

/// The parts of a replica launch that only container backends use.
#[derive(Debug, Clone)]
pub struct ContainerLaunch {
    pub image: String,
    /// `run.workdir` as written, a path inside the image; `None` keeps the
    /// image's own working directory.
    pub workdir: Option<String>,
    pub volumes: Vec<crate::manifest::Volume>,
    /// Whether to follow the container's stats stream: the revision's
    /// `monitoring.enabled`.
    pub stats: bool,
}

impl fmt::Debug for ReplicaLaunch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaLaunch")
            .field("deployment_id", &self.deployment_id)
            .field("key", &self.key)
            .field("revision", &self.revision)
            .field("index", &self.index)
            .field("command", &self.command)
            .field("workdir", &self.workdir)
            .field("env_names", &self.env.keys().collect::<Vec<_>>())
            .field("ports", &self.ports)
            .field("memory_limit", &self.memory_limit)
            .field("cpu_millicores", &self.cpu_millicores)
            .field("secret_values", &self.secret_values)
            .field("container", &self.container)
            .field("stop_signal", &self.stop_signal)
            .finish()
    }
}

/// Identifies a started replica to its backend; unique within the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicaId(pub u64);

/// The reason a replica ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Code(i32),
    Signal(i32),
    /// The backend lost track of it (for example the wait call failed).
    Unknown,
}

impl ExitReason {
    pub fn success(self) -> bool {
        self == ExitReason::Code(0)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Code(code) => write!(f, "exited with code {code}"),
            ExitReason::Signal(signal) => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| format!("signal {signal}"));
                write!(f, "killed by {name}")
            }
            ExitReason::Unknown => f.write_str("ended for an unknown reason"),
        }
    }
}

/// A message from a backend about a replica it started.
#[derive(Debug, Clone)]
pub enum ReplicaEvent {
    Exited {
        id: ReplicaId,
        reason: ExitReason,
        /// The kernel (or the memory watchdog) killed it for exceeding its
        /// memory limit.
        out_of_memory: bool,
    },
    /// The kernel killed a process of a running replica for exceeding the
    /// replica's memory limit; `kills` counts them since the replica started.
    OutOfMemory { id: ReplicaId, kills: u64 },
    /// The container's HEALTHCHECK changed state, or was read again after
    /// the engine came back.
    ContainerHealth {
        id: ReplicaId,
        health: ContainerHealth,
    },
}

/// Whether a backend reaches the platform its replicas run on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PlatformState {
    /// Reachable, or not tried yet.
    #[default]
    Reachable,
    /// Requests fail; `reason` names the address and the error.
    Unreachable { reason: String },
}

/// A replica that an earlier agent left on the platform, found by its labels.
#[derive(Debug, Clone)]
pub struct FoundReplica {
    /// The platform's id of the replica (a container id).
    pub container: String,
    pub name: String,
    pub revision: u64,
    pub slot: u32,
    pub running: bool,
    /// Published ports: the container port and the port on 127.0.0.1.
    pub ports: Vec<(u16, u16)>,
    pub started_at: Option<OffsetDateTime>,
    /// Creation time in seconds since the epoch, to prefer the newest of
    /// two replicas that claim one slot.
    pub created: i64,
}

/// A request to build a revision's image from its fetched source tree.
pub struct ImageBuild {
    pub key: DeploymentKey,
    pub deployment_id: String,
    pub revision: u64,
    pub dirs: BuildDirs,
    pub log: BuildLog,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("command {command:?} not found in {searched}; install it or give its full path in run.command")]
    CommandNotFound { command: String, searched: String },
    #[error("run.command is empty; give the program to run, for example [\"python3\", \"-m\", \"http.server\"]")]
    EmptyCommand,
    #[error("run.command refers to ${{{name}}}, which is not set for the replica; set it in env or remove the reference")]
    UnknownVariable { name: String },
    #[error("port {port} is already in use by another process; free it or change {field}")]
    PortInUse { port: u16, field: String },
    #[error("no free port left for {field}")]
    NoFreePort { field: String },
    #[error("working directory {path} does not exist; create it or fix run.workdir")]
    MissingWorkdir { path: PathBuf },
    #[error(transparent)]
    Secrets(#[from] crate::config::RenderError),
    #[error(transparent)]
    Docker(#[from] docker::DockerError),
    #[error("failed to start {command:?}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot take over {name}, which an earlier agent started: {reason}; it is removed and a new replica starts in its place")]
    CannotAdopt { name: String, reason: String },
}

/// A replica the backend started.
#[derive(Debug, Clone)]
pub struct StartedReplica {
    pub id: ReplicaId,
    pub pid: Option<u32>,
    /// The container id, for a replica that runs in a container.
    pub container: Option<String>,
}

/// The seam between the engine and a platform.
pub trait Backend: Send + Sync + 'static {
    /// Starts one replica. Its end is reported later on `events`.
    fn start(
        &self,
        launch: ReplicaLaunch,
        events: tokio::sync::mpsc::Sender<ReplicaEvent>,
    ) -> impl std::future::Future<Output = Result<StartedReplica, BackendError>> + Send;

    /// Asks a replica to stop with `signal`; the backend reports the exit.
    fn request_stop(&self, replica: &StartedReplica, signal: crate::manifest::StopSignal);

    /// Ends a replica at once, with everything it started.
    fn kill(&self, replica: &StartedReplica);

    /// Returns a receiver of whether the platform is reachable, or `None`
    /// for a backend that has nothing remote to reach.
    fn platform(&self) -> Option<watch::Receiver<PlatformState>> {
        None
    }

    /// Lists the replicas of a deployment that an earlier agent left behind,
    /// leaving out those that this agent started.
    fn find_replicas(
        &self,
        _deployment_id: &str,
    ) -> impl Future<Output = Result<Vec<FoundReplica>, BackendError>> + Send {
        std::future::ready(Ok(Vec::new()))
    }

    /// Takes over a replica that [`Backend::find_replicas`] returned: its
    /// output, its exit and its metrics, as if this agent had started it.
    fn adopt(
        &self,
        found: FoundReplica,
        _launch: ReplicaLaunch,
        _events: mpsc::Sender<ReplicaEvent>,
    ) -> impl Future<Output = Result<StartedReplica, BackendError>> + Send {
        std::future::ready(Err(BackendError::CannotAdopt {
            name: found.name,
            reason: "this backend cannot take over replicas".to_owned(),
        }))
    }

    /// Removes a found replica that no current replica claims, and returns
    /// once it is gone, so that a replacement can take its name.
    fn discard(&self, _found: &FoundReplica) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// Tells whether replicas keep running when the agent stops, for the
    /// next agent to adopt, rather than stopping with it.
    fn replicas_outlive_agent(&self) -> bool {
        false
    }

    /// Runs one probe of a replica. Exec probes run where the replica runs.
    fn probe(
        &self,
        _replica: &StartedReplica,
        target: ProbeTarget,
        timeout: Duration,
        workdir: PathBuf,
    ) -> impl Future<Output = ProbeOutcome> + Send + 'static {
        async move { crate::probe::run(&target, timeout, &workdir).await }
    }

    /// Builds a revision's image from its fetched source tree and returns the
    /// image id, or `None` for a backend that runs the tree itself.
    fn build_image(
        &self,
        _build: ImageBuild,
    ) -> impl Future<Output = Result<Option<String>, BackendError>> + Send {
        std::future::ready(Ok(None))
    }

    /// Describes what an undeploy of a deployment with `spec` leaves on the
    /// platform on purpose, such as volumes that hold data.
    fn kept_after_undeploy(&self, _key: &DeploymentKey, _spec: &Manifest) -> Option<String> {
        None
    }
}
