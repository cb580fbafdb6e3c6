//! Stable endpoint: a TCP load balancer on one listening address (a manifest port's
//! `hostPort`) in front of the ready replicas, which listen on private ports.
//!
//! The listener stays open for the whole life of the endpoint, while the supervisor
//! changes the backends behind it with [`Endpoint::set_backends`] during scaling,
//! restarts and rolling updates. Each new client connection goes to the backend with
//! the fewest open connections, with ties taken in turn. When a connect fails, every
//! other backend is tried once before the client connection is closed. A client that
//! arrives while no backend is ready waits up to [`EndpointConfig::backend_wait`].
//!
//! Stopping a replica: [`Endpoint::drain`] takes the backend out of rotation when it is
//! called and returns a future that completes once the backend's open connections have
//! all closed, or closes them when the grace runs out. The endpoint never signals the
//! replica. To stop a replica as Kubernetes does, a supervisor calls `drain` with the
//! replica's termination grace period, sends the stop signal at the same time, and
//! waits for both. Connections then get the whole grace period, unless the replica
//! exits earlier and so ends them itself.

mod error;
mod histogram;
mod http;
mod proxy;
mod stats;
mod table;
mod tracker;
mod warning;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

pub use error::EndpointError;
pub use histogram::{bucket_bounds_micros, LatencyHistogram, BUCKETS_PER_DOUBLING, BUCKET_COUNT};
pub use stats::{BackendStats, EndpointStats, RequestStats};

use proxy::Shared;
use stats::read;
use table::BackendState;

/// How long a drain or close waits for connection tasks to end after telling them to
/// close. They end at their next poll, so this only bounds a stuck task.
const FORCE_CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A replica that takes connections: its id and the address it listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Replica id, unique among the backends of one endpoint.
    pub id: u64,
    /// Address of the replica's private port.
    pub addr: SocketAddr,
}

/// Timeouts and protocol of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// How long a client connection waits for a backend when none is ready, which covers
    /// a restart or a rollout step that briefly leaves the rotation empty.
    pub backend_wait: Duration,
    /// Maximum time for one connect to a backend before the next backend is tried.
    pub connect_timeout: Duration,
    /// Whether clients speak HTTP/1.1 (a port with `appProtocol: http`). The endpoint then
    /// counts requests and response times, and answers a client that no backend can take
    /// with `503 Service Unavailable` instead of closing the connection.
    pub http: bool,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            backend_wait: Duration::from_secs(5),
            // Linux resends an unanswered SYN after 1 s (TCP_TIMEOUT_INIT, as RFC 6298
            // sets it), so 2 s allows one resend.
            connect_timeout: Duration::from_secs(2),
            http: false,
        }
    }
}

/// Outcome of [`Endpoint::drain`] or [`Endpoint::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections still open when the grace ran out, which were then closed.
    pub forced_closed: usize,
}

/// Handle to a listening endpoint. Clones share the endpoint. When the last handle is
/// dropped without [`Endpoint::close`], the endpoint stops accepting and closes clients
/// still waiting for a backend, and its proxied connections continue until they end.
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.stop_accepting.send_replace(true);
    }
}

impl Endpoint {
    /// Listens on `address` with the default configuration and starts accepting on the
    /// current tokio runtime. See [`Endpoint::bind_with_config`].
    pub async fn bind(address: SocketAddr) -> Result<Endpoint, EndpointError> {
        Self::bind_with_config(address, EndpointConfig::default()).await
    }

    /// Listens on `address` and starts accepting on the current tokio runtime. Fails at
    /// once when the port is in use, so a deploy can report it before starting replicas.
    /// Until [`Endpoint::set_backends`] is called, clients wait for a backend.
    pub async fn bind_with_config(
        address: SocketAddr,
        config: EndpointConfig,
    ) -> Result<Endpoint, EndpointError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|error| EndpointError::from_bind(address, error))?;
        let local_address = listener
            .local_addr()
            .map_err(|error| EndpointError::from_bind(address, error))?;

        let shared = Arc::new(Shared::new(local_address, config));
        let accept_task = tokio::spawn(proxy::accept_loop(listener, Arc::clone(&shared)));
        info!(endpoint = %local_address, "endpoint listening");

        Ok(Endpoint {
            inner: Arc::new(Inner {
                shared,
                accept_task: Mutex::new(Some(accept_task)),
            }),
        })
    }

    /// Returns the address the endpoint listens on, with the actual port when bound to port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared().address
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Makes `backends` the set that takes new connections. Connections to backends left
    /// out stay open until they end or are drained. A backend with the same id and
    /// address as before keeps its counters. Of two entries with one id, the first is used.
    pub fn set_backends(&self, backends: impl IntoIterator<Item = Backend>) {
        let backends: Vec<Backend> = backends.into_iter().collect();
        let shared = self.shared();

        let (duplicates, rotation_len) = {
            let mut table = shared.table();
            let duplicates = table.replace(&backends);
            (duplicates, table.rotation_len())
        };
        shared.publish_rotation_len(rotation_len);

        let ids: Vec<u64> = backends.iter().map(|backend| backend.id).collect();
        info!(endpoint = %shared.address, backends = ?ids, "endpoint backends changed");
        if !duplicates.is_empty() {
            warn!(endpoint = %shared.address, duplicates = ?duplicates,
                "backend ids were given more than once; only the first address of each is used");
        }
    }

    /// Takes backend `id` out of rotation now, and returns a future that completes when
    /// the backend's open connections have closed, or after `grace`, when it closes those
    /// still open. The future does not borrow the endpoint, so it can be spawned. A later
    /// [`Endpoint::set_backends`] that lists `id` puts the backend back into rotation
    /// with new counters, and the drain leaves the connections made after that open.
    pub fn drain(
        &self,
        id: u64,
        grace: Duration,
    ) -> impl Future<Output = DrainReport> + Send + 'static {
        let shared = Arc::clone(&self.inner.shared);
        let states = {
            let mut table = shared.table();
            let states = table.remove(id);
            shared.publish_rotation_len(table.rotation_len());
            states
        };
        info!(endpoint = %shared.address, backend = id, ?grace, "draining backend");

        async move {
            let forced_closed = close_after_grace(&states, grace).await;
            info!(endpoint = %shared.address, backend = id, forced_closed, "backend drained");
            DrainReport { forced_closed }
        }
    }

    /// Stops accepting, frees the port, and waits for open connections to end, closing
    /// those still open after `grace`. Clients waiting for a backend are closed at once.
    pub async fn close(&self, grace: Duration) -> DrainReport {
        let shared = self.shared();
        shared.stop_accepting.send_replace(true);
        self.wait_accept_loop().await;

        let forced_closed = if shared.connections.wait_idle(grace).await {
            0
        } else {
            let open = shared.connections.open();
            shared.force_close.send_replace(true);
            shared.connections.wait_idle(FORCE_CLOSE_WAIT).await;
            open
        };

        info!(endpoint = %shared.address, forced_closed, "endpoint closed");
        DrainReport { forced_closed }
    }

    async fn wait_accept_loop(&self) {
        let task = self
            .inner
            .accept_task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();

        if let Some(task) = task {
            if let Err(error) = task.await {
                warn!(endpoint = %self.shared().address, %error, "the endpoint's accept loop failed");
            }
        }
    }

    /// Sets whether new client connections are observed as HTTP/1.1, as
    /// [`EndpointConfig::http`] does at bind. Open connections keep their mode, and the
    /// request counters keep counting from where they were.
    pub fn set_http(&self, http: bool) {
        let shared = self.shared();
        if shared.set_http(http) != http {
            info!(endpoint = %shared.address, http, "endpoint protocol changed");
        }
    }

    /// Returns the endpoint's counters and those of its backends.
    pub fn stats(&self) -> EndpointStats {
        stats_of(self.shared())
    }

    /// Returns a handle that reads this endpoint's counters without keeping it open.
    pub fn stats_reader(&self) -> EndpointStatsReader {
        EndpointStatsReader {
            shared: Arc::clone(&self.inner.shared),
        }
    }
}

/// Reads the counters of an endpoint, from [`Endpoint::stats_reader`]. Unlike an
/// [`Endpoint`] handle, it does not keep the endpoint accepting: once the endpoint is
/// closed or its handles are dropped, the reader returns the final counts.
#[derive(Debug, Clone)]
pub struct EndpointStatsReader {
    shared: Arc<Shared>,
}

impl EndpointStatsReader {
    /// Returns the endpoint's counters and those of its backends, as [`Endpoint::stats`] does.
    pub fn stats(&self) -> EndpointStats {
        stats_of(&self.shared)
    }

    /// Returns the address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.address
    }
}

fn stats_of(shared: &Shared) -> EndpointStats {
    let counters = &shared.counters;
    let backends = shared.table().snapshot();

    EndpointStats {
        address: shared.address,
        uptime_ms: u64::try_from(shared.bound_at.elapsed().as_millis()).unwrap_or(u64::MAX),
        accepted: read(&counters.accepted),
        active: shared.connections.open() as u64,
        failed_no_backend: read(&counters.failed_no_backend),
        failed_connect: read(&counters.failed_connect),
        bytes_in: read(&counters.bytes_in),
        bytes_out: read(&counters.bytes_out),
        backends,
        requests: shared.is_http().then(|| shared.requests.snapshot()),
    }
}

/// Waits until the connections of `states` have closed or `grace` has passed, then
/// closes the ones still open. Returns how many were closed that way.
async fn close_after_grace(states: &[Arc<BackendState>], grace: Duration) -> usize {
    let deadline = Instant::now() + grace;
    for state in states {
        let remaining = deadline.saturating_duration_since(Instant::now());
        state.connections.wait_idle(remaining).await;
    }

    let still_open: usize = states.iter().map(|state| state.connections.open()).sum();
    if still_open == 0 {
        return 0;
    }

    for state in states {
        state.force_close.send_replace(true);
    }
    for state in states {
        state.connections.wait_idle(FORCE_CLOSE_WAIT).await;
    }
    still_open
}
