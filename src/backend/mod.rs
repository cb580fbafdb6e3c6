//! Backends run replicas on a platform. The engine speaks only to [`Backend`].

pub mod docker;
pub mod kubernetes;
pub mod limits;
pub mod process;
pub mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::model::DeploymentKey;

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
}

/// A replica the backend started.
#[derive(Debug, Clone)]
pub struct StartedReplica {
    pub id: ReplicaId,
    pub pid: Option<u32>,
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
}
