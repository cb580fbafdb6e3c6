//! Running the agent: one per home, found by clients through its socket.
//!
//! The agent holds an exclusive lock on `run/agent.lock` for its whole life,
//! so a second agent on the same home fails at once with a clear message.
//! Clients that find no agent start one in the background and wait until
//! its socket responds, as tmux does with its server.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use nix::fcntl::{Flock, FlockArg};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Notify;

use crate::api::client::Client;
use crate::api::server::{self, AgentState, PeerUser};
use crate::api::wire::{AgentStatus, ErrorBody};
use crate::config::keys::{check_private_home, KeyError, KeySource};
use crate::config::{Vault, VaultError};
use crate::engine::Engine;
use crate::home::{Home, HomeError};
use crate::store::{Store, StoreError};

/// How long a client waits for an agent it started to respond.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a graceful stop may take before the agent exits anyway; each
/// replica has its own grace period inside this.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error("another shipdeck agent is already running for {home}{}; stop it with `shipdeck agent stop` or choose another --home", pid_note(.pid))]
    AlreadyRunning { home: PathBuf, pid: Option<u32> },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("starting the engine failed: {0}")]
    Engine(#[from] crate::engine::EngineError),
    #[error("{action} {path} failed: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot listen on {address}: {source}; choose another address with --listen")]
    Listen {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the agent did not start within {seconds} s; see {log}")]
    StartTimeout { seconds: u64, log: PathBuf },
    #[error("the agent exited as it started ({status}): {detail}; see {log}")]
    StartFailed {
        status: String,
        detail: String,
        log: PathBuf,
    },
    #[error(
        "the agent of {home}{} holds the home but does not answer, probably because it is \
         stopping; wait a few seconds and run the command again",
        pid_note(.pid)
    )]
    Busy { home: PathBuf, pid: Option<u32> },
}

fn pid_note(pid: &Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> AgentError + 'a {
    move |source| AgentError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Options of `shipdeck agent`.
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// Also serve the API on this TCP address, behind a bearer token.
    pub listen: Option<SocketAddr>,
    /// Source of the vault's master key. `None` reads the environment when
    /// the agent starts.
    pub key_source: Option<KeySource>,
}

/// Runs the agent in the foreground until a signal or an API request stops it.
pub async fn run(home: Home, options: AgentOptions) -> Result<(), AgentError> {
    home.prepare()?;
    check_private_home(&home)?;
    let _lock = lock_home(&home)?;
    home.prepare_private(&home.db_dir())?;
    // Holding the home's lock means no other agent runs here, so a locked
    // store belongs to one that has just stopped and is let go shortly.
    let store = Store::open_when_unlocked(&home.db_dir())?;
    let key_source = match options.key_source {
        Some(source) => source,
        None => KeySource::from_environment(&home)?,
    };
    let vault = Arc::new(Vault::open(store.clone(), key_source)?);
    let engine = Engine::start(home.clone(), store, vault)?;

    let socket_path = home.socket_path();
    let unix = bind_socket(&socket_path)?;
    write_pid(&home)?;
    let stop = Arc::new(Notify::new());
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let state = Arc::new(AgentState {
        engine: engine.clone(),
        started: Instant::now(),
        home: home.root().display().to_string(),
        stop: stop.clone(),
        closing,
    });
    let router = server::router(state);

    if let Some(address) = options.listen {
        serve_tcp(&home, address, router.clone()).await?;
    }
    tracing::info!(pid = std::process::id(), socket = %socket_path.display(), "agent started");

    let service = router.into_make_service_with_connect_info::<PeerUser>();
    let shutdown = async move {
        stop_requested(stop).await;
        closing_tx.send_replace(true);
    };
    let serving = axum::serve(unix, service).with_graceful_shutdown(shutdown);
    if let Err(error) = serving.await {
        tracing::error!(%error, "the API server failed");
    }

    tracing::info!("stopping replicas");
    engine.shutdown(STOP_TIMEOUT).await;
    let _ = fs::remove_file(&socket_path);
    let _ = fs::remove_file(home.pid_path());
    tracing::info!("agent stopped");
    Ok(())
}

/// Ends on SIGTERM, SIGINT or a stop request through the API.
async fn stop_requested(stop: Arc<Notify>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = stop.notified() => tracing::info!("stop requested through the API"),
    }
}

fn lock_home(home: &Home) -> Result<Flock<File>, AgentError> {
    let path = home.lock_path();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_error("opening", &path))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| AgentError::AlreadyRunning {
        home: home.root().to_path_buf(),
        pid: read_pid(home),
    })
}

fn read_pid(home: &Home) -> Option<u32> {
    fs::read_to_string(home.pid_path())
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn write_pid(home: &Home) -> Result<(), AgentError> {
    let path = home.pid_path();
    fs::write(&path, format!("{}\n", std::process::id())).map_err(io_error("writing", &path))
}

/// Binds the control socket, private to this user. A socket file left by a
/// crashed agent is removed first; the home lock proves no agent uses it.
fn bind_socket(path: &Path) -> Result<UnixListener, AgentError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("removing the old socket", path)(error)),
    }
    let listener = UnixListener::bind(path).map_err(io_error("binding the socket", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_error("restricting the socket", path))?;
    Ok(listener)
}

async fn serve_tcp(
    home: &Home,
    address: SocketAddr,
    router: axum::Router,
) -> Result<(), AgentError> {
    let token = Arc::new(load_or_create_token(&home.token_path())?);
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| AgentError::Listen { address, source })?;
    let guarded = router.layer(middleware::from_fn(move |request: Request, next: Next| {
        let token = token.clone();
        async move { require_token(&token, request, next).await }
    }));
    let service = guarded.into_make_service_with_connect_info::<PeerUser>();
    tracing::info!(%address, "serving the API on TCP with a bearer token");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, service).await {
            tracing::error!(%error, "the TCP listener failed");
        }
    });
    Ok(())
}

async fn require_token(token: &str, request: Request, next: Next) -> Response {
    if server::token_matches(request.headers(), token) {
        return next.run(request).await;
    }
    let body = ErrorBody {
        error: "missing or wrong bearer token; send `Authorization: Bearer TOKEN` with the token from the agent's home".to_owned(),
    };
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

/// Reads the TCP token, creating a random one in a 0600 file on first use.
fn load_or_create_token(path: &Path) -> Result<String, AgentError> {
    if let Ok(mut file) = File::open(path) {
        let mut token = String::new();
        file.read_to_string(&mut token)
            .map_err(io_error("reading the token", path))?;
        let token = token.trim().to_owned();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| AgentError::Io {
        action: "generating a token for",
        path: path.to_path_buf(),
        source: io::Error::other(error.to_string()),
    })?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("creating the token", path))?;
    file.write_all(token.as_bytes())
        .map_err(io_error("writing the token", path))?;
    Ok(token)
}

/// Returns a client of the home's agent, starting the agent in the
/// background if none responds.
pub async fn connect_or_start(home: &Home) -> Result<Client, crate::cli::CliError> {
    let client = Client::new(&home.socket_path());
    match client.get::<AgentStatus>("/v1/agent").await {
        Ok(_) => return Ok(client),
        Err(error) if error.is_unreachable() => {}
        Err(error) => return Err(error.into()),
    }
    start_detached(home, None).await?;
    Ok(client)
}

/// Starts `shipdeck agent` in its own session, with output to the agent
/// log, and waits until it responds.
pub async fn start_detached(home: &Home, listen: Option<SocketAddr>) -> Result<u32, AgentError> {
    home.prepare()?;
    let log_path = home.log_path();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(io_error("opening the agent log", &log_path))?;
    let log_err = log
        .try_clone()
        .map_err(io_error("opening the agent log", &log_path))?;
    let exe = std::env::current_exe().map_err(io_error(
        "finding the shipdeck binary",
        Path::new("/proc/self/exe"),
    ))?;
    let log_size = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);

    let mut command = std::process::Command::new(exe);
    command.arg("--home").arg(home.root()).arg("agent");
    if let Some(address) = listen {
        command.arg("--listen").arg(address.to_string());
    }
    command.stdin(Stdio::null()).stdout(log).stderr(log_err);
    new_session(&mut command);
    let mut child = command
        .spawn()
        .map_err(io_error("starting the agent from", home.root()))?;

    let client = Client::new(&home.socket_path());
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(status) = client.get::<AgentStatus>("/v1/agent").await {
            return Ok(status.pid);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Another client may have started an agent at the same moment;
            // ours then exits because the home is locked. That agent may
            // still be opening the store, so wait for it while it holds the
            // lock rather than failing at once.
            let locked = !lock_is_free(home);
            if locked && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            if client.get::<AgentStatus>("/v1/agent").await.is_ok() {
                return Ok(read_pid(home).unwrap_or_default());
            }
            if locked {
                return Err(AgentError::Busy {
                    home: home.root().to_path_buf(),
                    pid: read_pid(home),
                });
            }
            return Err(AgentError::StartFailed {
                status: status.to_string(),
                detail: log_tail(&log_path, log_size),
                log: log_path,
            });
        }
        if Instant::now() >= deadline {
            return Err(AgentError::StartTimeout {
                seconds: START_TIMEOUT.as_secs(),
                log: log_path,
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Returns the last error the agent wrote to its log since `offset` (or its
/// last line when it wrote no error), for the start failure message. Another
/// agent that is still stopping may write to the same log, and its warnings
/// would hide why this one exited.
fn log_tail(path: &Path, offset: u64) -> String {
    let text = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(0).min(text.len());
    let fresh = String::from_utf8_lossy(&text[start..]);
    let mut lines = fresh.lines().rev().filter(|line| !line.trim().is_empty());
    let last_error = lines
        .clone()
        .find(|line| line.contains("ERROR") || line.contains("Error:"));
    let last = last_error.or_else(|| lines.next()).unwrap_or("");
    crate::logs::sanitize_for_terminal(last.trim())
}

/// Puts the agent in a session of its own, so that closing the terminal
/// that started it does not hang it up.
#[allow(unsafe_code)]
fn new_session(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and the closure allocates nothing.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(io::Error::from));
    }
}

/// Asks the agent to stop and waits until it has released its home.
pub async fn stop(home: &Home) -> Result<bool, crate::cli::CliError> {
    let client = Client::new(&home.socket_path());
    match client.post_empty("/v1/agent/stop").await {
        Ok(()) => {}
        Err(error) if error.is_unreachable() => return Ok(false),
        Err(error) => return Err(error.into()),
    }
    let deadline = Instant::now() + STOP_TIMEOUT + Duration::from_secs(5);
    while Instant::now() < deadline {
        // The lock goes last, after the store is flushed.
        if lock_is_free(home) {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(crate::cli::CliError::Message(format!(
        "the agent did not stop within {} s; see {}",
        STOP_TIMEOUT.as_secs() + 5,
        home.log_path().display()
    )))
}

fn lock_is_free(home: &Home) -> bool {
    let Ok(file) = OpenOptions::new().write(true).open(home.lock_path()) else {
        return true;
    };
    Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok()
}
